"""Shared pieces of the selection benchmark: data loading, repository snapshots,
working copies, patch application, per-(repo, version) environment specs, the
reference test commands and their result-line parsers.

Stdlib only (Python 3.11). Nothing here is imported by baton; the harness only
uses it to prepare inputs and to score outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path(os.environ.get("BATON_BENCH_CACHE", Path.home() / ".cache" / "baton-bench"))
PYENV_ROOT = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))

# repository -> short name used for config files and env names
REPO_SHORT = {
    "sympy/sympy": "sympy",
    "django/django": "django",
    "pytest-dev/pytest": "pytest",
    "pylint-dev/pylint": "pylint",
    "sphinx-doc/sphinx": "sphinx",
}


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


# --------------------------------------------------------------------------- data

def load_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_instances(path: str | Path) -> dict[str, dict]:
    return {d["instance_id"]: d for d in load_jsonl(path)}


def load_oracle(path: str | Path) -> dict[str, dict]:
    return {d["instance_id"]: d for d in load_jsonl(path)}


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def patch_files(diff: str) -> list[str]:
    """Paths a unified diff touches (new side; old side for deletions), in order."""
    out: list[str] = []
    for m in re.finditer(r"^diff --git a/(\S+) b/(\S+)$", diff, re.M):
        p = m.group(2)
        if p not in out:
            out.append(p)
    if not out:  # plain unified diff without git headers
        for m in re.finditer(r"^\+\+\+ (?:b/)?(\S+)", diff, re.M):
            p = m.group(1)
            if p != "/dev/null" and p not in out:
                out.append(p)
    return out


# ------------------------------------------------------------------ snapshots / git

def git(*args: str, cwd: str | Path | None = None, check: bool = True,
        capture: bool = True, timeout: float | None = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, check=check, text=True,
                          capture_output=capture, timeout=timeout)


def find_snapshot(snapshots: str | Path, repo: str) -> Path:
    """Locate the bare git directory of `repo` under `snapshots`.

    Accepted layouts (first match wins): <owner>+<name>/repo (what `fetch`
    produces), <owner>+<name>, <name>.git, <name>, and, for forks,
    <anyone>+<name>/repo (e.g. apprent1c3+django for django/django)."""
    snapshots = Path(snapshots)
    owner, name = repo.split("/")
    cands = [snapshots / f"{owner}+{name}" / "repo", snapshots / f"{owner}+{name}",
             snapshots / f"{name}.git", snapshots / name]
    cands += sorted(snapshots.glob(f"*+{name}/repo")) + sorted(snapshots.glob(f"*+{name}"))
    for c in cands:
        if c.is_dir() and git("rev-parse", "--git-dir", cwd=c, check=False).returncode == 0:
            return c.resolve()
    raise FileNotFoundError(f"no snapshot of {repo} under {snapshots} (tried {', '.join(map(str, cands[:4]))}, */{name})")


def has_commit(gitdir: Path, sha: str) -> bool:
    return git("cat-file", "-e", f"{sha}^{{commit}}", cwd=gitdir, check=False).returncode == 0


def commit_time(gitdir: Path, sha: str) -> int:
    return int(git("log", "-1", "--format=%ct", sha, cwd=gitdir).stdout.strip())


def prepare_worktree(snapshot: Path, dest: Path, commit: str) -> Path:
    """Clean working copy of `snapshot` at `commit` in `dest` (created with
    `git clone --shared --no-checkout` the first time, reset afterwards)."""
    dest = Path(dest)
    if not (dest / ".git").exists():
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        git("clone", "-q", "--shared", "--no-checkout", str(snapshot), str(dest))
        git("config", "user.email", "bench@localhost", cwd=dest)
        git("config", "user.name", "bench", cwd=dest)
    git("checkout", "-q", "-f", "--detach", commit, cwd=dest)
    git("reset", "-q", "--hard", commit, cwd=dest)
    git("clean", "-q", "-f", "-d", "-x", cwd=dest)
    return dest


def apply_patch(workdir: Path, diff: str) -> tuple[bool, str]:
    """SWE-bench's order: `git apply`, `git apply --reject`, `patch --batch --fuzz=5 -p1`.
    Returns (applied, method or error text)."""
    if not diff.strip():
        return False, "empty patch"
    data = diff if diff.endswith("\n") else diff + "\n"
    tries = [
        ("git apply", ["git", "apply", "--verbose", "-"]),
        ("git apply --reject", ["git", "apply", "--verbose", "--reject", "-"]),
        ("patch --fuzz=5", ["patch", "--batch", "--fuzz=5", "-p1", "-i", "-"]),
    ]
    errs = []
    for name, cmd in tries:
        r = subprocess.run(cmd, cwd=workdir, input=data, text=True, capture_output=True)
        if r.returncode == 0:
            return True, name
        errs.append(f"{name}: {(r.stdout + r.stderr).strip()[-400:]}")
        # undo partial work before the next attempt (keep tracked changes clean)
        git("checkout", "-q", "-f", "HEAD", "--", ".", cwd=workdir, check=False)
        git("clean", "-q", "-f", "-d", cwd=workdir, check=False)
    return False, "\n".join(errs)


# ----------------------------------------------------------------- environments

# `environment_setup_commit` per version, as published in the SWE-bench dataset
# (every instance of one (repo, version) shares it). Public facts, not oracle data.
SETUP_COMMITS: dict[str, dict[str, str]] = {
    "django/django": {
        "3.0": "419a78300f7cd27611196e1e464d50fd0385ff27",
        "3.1": "0668164b4ac93a5be79f5b87fae83c657124d9ab",
        "3.2": "65dfb06a1ab56c238cc80f5e1c31f61210c4577d",
        "4.0": "475cffd1d64c690cdad16ede4d5e81985738ceb4",
        "4.1": "647480166bfe7532e8c471fef0146e3a17e6c0c9",
        "4.2": "0fbdb9784da915fce5dcc1fe82bac9b4785749e5",
        "5.0": "4a72da71001f154ea60906a2f74898d32b7322a7",
    },
    "pytest-dev/pytest": {
        "4.4": "4ccaa987d47566e3907f2f74167c4ab7997f622f",
        "4.5": "693c3b7f61d4d32f8927a74f34ce8ac56d63958e",
        "4.6": "d5843f89d3c008ddcb431adbc335b080a79e617e",
        "5.0": "c2f762460f4c42547de906d53ea498dd499ea837",
        "5.1": "c1361b48f83911aa721b21a4515a5446515642e2",
        "5.2": "f36ea240fe3579f945bf5d6cc41b5e45a572249d",
        "5.3": "92767fec5122a14fbf671374c9162e947278339b",
        "5.4": "678c1a0745f1cf175c442c719906a1f13e496910",
        "6.0": "634cde9506eb1f48dec3ec77974ee8dc952207c6",
        "6.2": "902739cfc3bbc3379e6ef99c8e250de35f52ecde",
        "6.3": "634312b14a45db8d60d72016e01294284e3a18d4",
        "7.0": "e2ee3144ed6e241dea8d96215fcdca18b3892551",
        "7.1": "4a8f8ada431974f2837260af3ed36299fd382814",
        "7.2": "572b5657d7ca557593418ce0319fabff88800c73",
        "7.4": "797b924fc44189d0b9c2ad905410f0bd89461ab7",
        "8.0": "10056865d2a4784934ce043908a0e78d0578f677",
    },
    "sphinx-doc/sphinx": {
        "3.5": "4f8cb861e3b29186b38248fe81e4944fd987fcce",
    },
}
# When a table commit is absent from the snapshot (the django fork lacks the 3.0
# and 3.2 setup commits), use the commit of this other version (ENVIRONMENTS.md:
# "3.1's serves 3.0 and 3.2").
SETUP_ALIASES = {"django/django": {"3.0": "3.1", "3.2": "3.1"}}

# SWE-bench's per-version pins for pytest (constants/python.py, SPECS_PYTEST).
_P_OLD = ["atomicwrites==1.4.1", "attrs==23.1.0", "more-itertools==10.1.0"]
PYTEST_PINS = {
    "4.4": _P_OLD + ["pluggy==0.13.1", "py==1.11.0", "setuptools==68.0.0", "six==1.16.0"],
    "4.5": _P_OLD + ["pluggy==0.11.0", "py==1.11.0", "setuptools==68.0.0", "six==1.16.0", "wcwidth==0.2.6"],
    "4.6": _P_OLD + ["packaging==23.1", "pluggy==0.13.1", "py==1.11.0", "six==1.16.0", "wcwidth==0.2.6"],
    **{k: _P_OLD + ["packaging==23.1", "pluggy==0.13.1", "py==1.11.0", "wcwidth==0.2.6"] for k in ("5.0", "5.1", "5.2")},
    "5.3": ["attrs==23.1.0", "more-itertools==10.1.0", "packaging==23.1", "pluggy==0.13.1", "py==1.11.0", "wcwidth==0.2.6"],
    "5.4": ["py==1.11.0", "packaging==23.1", "attrs==23.1.0", "more-itertools==10.1.0", "pluggy==0.13.1"],
    "6.0": ["attrs==23.1.0", "iniconfig==2.0.0", "more-itertools==10.1.0", "packaging==23.1", "pluggy==0.13.1", "py==1.11.0", "toml==0.10.2"],
    **{k: ["attrs==23.1.0", "iniconfig==2.0.0", "packaging==23.1", "pluggy==0.13.1", "py==1.11.0", "toml==0.10.2"] for k in ("6.2", "6.3")},
    "7.0": ["attrs==23.1.0", "iniconfig==2.0.0", "packaging==23.1", "pluggy==0.13.1", "py==1.11.0"],
    **{k: ["attrs==23.1.0", "iniconfig==2.0.0", "packaging==23.1", "pluggy==0.13.1", "py==1.11.0", "tomli==2.0.1"] for k in ("7.1", "7.2")},
    **{k: ["iniconfig==2.0.0", "packaging==23.1", "pluggy==1.3.0", "exceptiongroup==1.1.3", "tomli==2.0.1"] for k in ("7.4", "8.0", "8.1", "8.2")},
}

# Sphinx 3.x/4.x: SWE-bench caps these in setup.py with sed; we pass the same
# caps to pip as a constraints file so the setup checkout stays untouched.
def sphinx_constraints(version: str) -> list[str]:
    major = version.split(".")[0]
    if major not in ("3", "4"):
        return []
    return ["Jinja2<3.0", "sphinxcontrib-applehelp<=1.0.7", "sphinxcontrib-devhelp<=1.0.5",
            "sphinxcontrib-qthelp<=1.0.6", "alabaster>=0.7,<0.7.12", "markupsafe<=2.0.1",
            "sphinxcontrib-htmlhelp<=2.0.4", "sphinxcontrib-serializinghtml<=1.1.9"]


def vkey(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))


def python_for(repo: str, version: str) -> str:
    if repo == "django/django":
        v = vkey(version)
        if v < (3, 0):
            raise ValueError(f"django {version} is not supported (needs Python 3.5)")
        if v < (4, 0):
            return "3.6"
        if v < (4, 1):
            return "3.8"
        if v < (5, 0):
            return "3.9"
        return "3.11"
    if repo == "sphinx-doc/sphinx" and vkey(version) >= (8, 0):
        return "3.10"
    if repo in REPO_SHORT:
        return "3.9"
    raise ValueError(f"unsupported repository {repo}")


@dataclass
class EnvSpec:
    name: str             # directory name under <cache>/envs
    repo: str
    versions: list[str]   # versions of the instances file served by this env
    python: str
    setup_commit: str | None
    setup_note: str       # how the setup commit was chosen
    steps: list[dict] = field(default_factory=list)   # install steps, see setup_envs.py
    check_modules: list[str] = field(default_factory=list)

    def key(self) -> str:
        blob = json.dumps([self.repo, self.python, self.setup_commit, self.steps], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def choose_setup_commit(repo: str, version: str, snapshot: Path,
                        instances: list[dict]) -> tuple[str, str]:
    """Setup commit for (repo, version) without looking at the oracle:
    1. the SWE-bench table above, if the commit is in the snapshot;
    2. the alias version's table commit (django 3.0/3.2 -> 3.1);
    3. otherwise the newest base_commit (by commit date) among the instances of
       that (repo, version) in the instances file."""
    table = SETUP_COMMITS.get(repo, {})
    sha = table.get(version)
    if sha and has_commit(snapshot, sha):
        return sha, f"SWE-bench setup commit of {version}"
    alias = SETUP_ALIASES.get(repo, {}).get(version)
    if alias and table.get(alias) and has_commit(snapshot, table[alias]):
        return table[alias], f"SWE-bench setup commit of {alias} (that of {version} is not in the snapshot)"
    bases = [d["base_commit"] for d in instances if d["repo"] == repo and d["version"] == version]
    bases = [b for b in bases if has_commit(snapshot, b)]
    if not bases:
        raise RuntimeError(f"no usable commit for {repo} {version}")
    newest = max(bases, key=lambda b: commit_time(snapshot, b))
    return newest, f"newest base_commit among the {version} instances"


def env_spec(repo: str, version: str, snapshot: Path | None, instances: list[dict]) -> EnvSpec:
    short = REPO_SHORT[repo]
    py = python_for(repo, version)
    if repo == "sympy/sympy":
        # bin/test puts its own checkout first on sys.path, so the env only needs
        # mpmath; one env serves every sympy version.
        return EnvSpec(f"sympy-py{py}", repo, [version], py, None, "no checkout needed",
                       steps=[{"pip": ["mpmath==1.3.0"]}], check_modules=["mpmath"])
    assert snapshot is not None
    setup, note = choose_setup_commit(repo, version, snapshot, instances)
    name = f"{short}-py{py}-{setup[:10]}"
    steps: list[dict] = []
    if repo == "django/django":
        if py == "3.6":
            steps.append({"pip": ["pip<22", "setuptools<60", "wheel"]})
        else:
            steps.append({"pip": ["setuptools<70", "wheel"]})
        steps.append({"requirements": "tests/requirements/py3.txt",
                      "optional": ["pylibmc", "pywatchman"]})
        extra = []
        if vkey(version) < (4, 0):
            extra.append("pymemcache>=3.4.0")
        if (4, 1) <= vkey(version) < (5, 0):
            extra.append("python-memcached>=1.59")
        if extra:
            steps.append({"pip": extra})
        steps.append({"pip": ["-e", "."], "cwd": "checkout"})
        check = ["asgiref", "sqlparse", "django"]
    elif repo == "pytest-dev/pytest":
        pins = PYTEST_PINS.get(version)
        if pins is None:
            raise ValueError(f"no pins for pytest {version}")
        steps.append({"pip": pins + ["setuptools_scm", "setuptools>=64,<70", "wheel"]})
        # the `testing` extra is what tox.ini installs for pytest's own test suite
        # (attrs, hypothesis, pygments, xmlschema, ...): baton runs whole test
        # modules, some of which import them at the top
        # (attrs pinned as in SWE-bench's older pins: newer attrs breaks pytest's
        # attrs-repr tests of that era)
        steps.append({"pip": ["--no-build-isolation", "-e", ".[testing]"], "cwd": "checkout",
                      "constraints": ["attrs==23.1.0"]})
        check = ["pluggy", "iniconfig", "pytest"]
    elif repo == "pylint-dev/pylint":
        # pylint >= 2.14 keeps its metadata in pyproject.toml: setuptools >= 61 is
        # needed, or the editable install comes out as a package named UNKNOWN
        # without pylint's dependencies
        steps.append({"pip": ["toml", "setuptools>=64,<70", "wheel"]})
        steps.append({"pip": ["--no-build-isolation", "-r", "requirements_test.txt"], "cwd": "checkout"})
        check = ["astroid", "pytest", "pylint", "platformdirs", "isort", "mccabe", "dill", "tomlkit"]
    elif repo == "sphinx-doc/sphinx":
        steps.append({"pip": ["tox==4.16.0", "tox-current-env==0.0.11", "Jinja2==3.0.3",
                              "setuptools<70", "docutils<0.22", "wheel"]})
        steps.append({"pip": ["-e", ".[test]"], "cwd": "checkout",
                      "constraints": sphinx_constraints(version)})
        check = ["docutils", "jinja2", "pytest", "sphinx"]
    else:
        raise ValueError(repo)
    return EnvSpec(name, repo, [version], py, setup, note, steps=steps, check_modules=check)


def env_index_path(cache: Path) -> Path:
    return Path(cache) / "envs" / "index.json"


def load_env_index(cache: Path) -> dict:
    p = env_index_path(cache)
    if not p.exists():
        raise SystemExit(f"{p} is missing: run setup_envs.py first")
    return json.loads(p.read_text())


def env_dir_for(cache: Path, repo: str, version: str, index: dict | None = None) -> Path:
    index = index if index is not None else load_env_index(cache)
    name = index.get(f"{repo}@{version}")
    if not name:
        raise SystemExit(f"no environment for {repo} {version}: run setup_envs.py with this instances file")
    return Path(cache) / "envs" / name


def pyenv_python(version: str) -> Path:
    vers = sorted((p for p in PYENV_ROOT.glob(f"versions/{version}.*") if (p / "bin" / "python").exists()),
                  key=lambda p: vkey(p.name))
    if not vers:
        raise FileNotFoundError(f"no pyenv Python {version} under {PYENV_ROOT}/versions")
    return vers[-1] / "bin" / "python"


# ------------------------------------------------------- reference test commands

def test_command(repo: str, files: list[str]) -> str:
    """The SWE-bench test command (ENVIRONMENTS.md) for `files`, as one shell
    string run with `sh -c` from the working copy. The working copy always comes
    first on PYTHONPATH so the code under test is the checkout's, whatever the
    env has installed."""
    q = " ".join(sh_quote(f) for f in files)
    if repo == "sympy/sympy":
        return ("PYTHONWARNINGS='ignore::UserWarning,ignore::SyntaxWarning' "
                f"python bin/test -C --verbose {q}")
    if repo == "django/django":
        labels = []
        for f in files:
            f = re.sub(r"^tests/", "", f)
            f = re.sub(r"\.py$", "", f)
            labels.append(f.replace("/", "."))
        ql = " ".join(sh_quote(x) for x in labels)
        return ('PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" LANG=C.UTF-8 LC_ALL=C.UTF-8 '
                f"python ./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1 {ql}")
    if repo == "pytest-dev/pytest":
        # src/_pytest/_version.py is generated at install time (setuptools_scm) and
        # imported by the assertion rewriter: write it into the working copy first
        return (f"{{ test -f src/_pytest/_version.py || python -m setuptools_scm --force-write-version-files "
                f"|| SETUPTOOLS_SCM_PRETEND_VERSION=0.0.0 python -m setuptools_scm --force-write-version-files; }} "
                f">/dev/null 2>&1; "
                f'PYTHONPATH="$PWD/src${{PYTHONPATH:+:$PYTHONPATH}}" python -m pytest -rA {q}')
    if repo == "pylint-dev/pylint":
        return f'PYTHONPATH="$PWD${{PYTHONPATH:+:$PYTHONPATH}}" python -m pytest -rA {q}'
    if repo == "sphinx-doc/sphinx":
        return ('PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" '
                "PYTHONWARNINGS='all,ignore::ImportWarning:importlib._bootstrap_external,"
                "ignore::DeprecationWarning:site,ignore::DeprecationWarning:distutils' "
                f"python -X dev -m pytest -rA --durations 25 {q}")
    raise ValueError(repo)


NON_TEST_EXTS = (".json", ".png", ".csv", ".txt", ".md", ".jpg", ".jpeg", ".pkl", ".yml", ".yaml", ".toml", ".rst")


def test_targets(test_patch: str) -> list[str]:
    """Files of the test patch to hand to the test command (data files dropped,
    as SWE-bench does)."""
    return [f for f in patch_files(test_patch) if not f.lower().endswith(NON_TEST_EXTS)]


def sh_quote(s: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:=@%+,-]+", s):
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"


def env_vars(envdir: Path) -> dict[str, str]:
    """Process environment for running tests in `envdir`: its bin/ first on PATH."""
    env = dict(os.environ)
    for k in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTEST_ADDOPTS",
              "PIP_REQUIRE_VIRTUALENV", "DJANGO_SETTINGS_MODULE"):
        env.pop(k, None)
    env["VIRTUAL_ENV"] = str(envdir)
    env["PATH"] = f"{envdir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("LANG", "C.UTF-8")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_shell(cmd: str, cwd: Path, env: dict, timeout: float, out_path: Path | None = None
              ) -> tuple[int | None, str, float]:
    """Run `sh -c cmd`; returns (exit code or None on timeout, combined output, seconds).
    The whole process group is killed on timeout."""
    t0 = time.monotonic()
    with subprocess.Popen(["sh", "-c", cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          start_new_session=True) as p:
        try:
            raw, _ = p.communicate(timeout=timeout)
            rc: int | None = p.returncode
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            raw, _ = p.communicate()
            rc = None
    text = raw.decode("utf-8", errors="replace")
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(text, encoding="utf-8")
    return rc, text, time.monotonic() - t0


# ------------------------------------------------------------------- log parsers
# Statuses: pass, fail, error, skip, xfail, xpass.

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def parse_sympy(log_text: str) -> dict[str, str]:
    codes = {"ok": "pass", "F": "fail", "E": "error", "f": "xfail", "X": "xpass",
             "s": "skip", "T": "error", "w": "skip"}
    res: dict[str, str] = {}
    for line in log_text.splitlines():
        # the last test of a file carries the file's verdict: "test_x ok     [OK]"
        m = re.match(r"^(test_\w+)\s+(ok|F|E|f|X|s|T|w)(?:\s+\[\w+\])?\s*$", line.strip())
        if m:
            res[m.group(1)] = codes[m.group(2)]
    # failures may also show up only in the summary section
    for m in re.finditer(r"^_+ \S+?\.py:(test_\w+) _+$", log_text, re.M):
        res.setdefault(m.group(1), "fail")
    return res


def parse_django(log_text: str) -> dict[str, str]:
    res: dict[str, str] = {}
    prev = None
    suffixes = [(" ... ok", "pass"), (" ... OK", "pass"), (" ...  OK", "pass"),
                (" ... FAIL", "fail"), (" ... ERROR", "error"),
                (" ... expected failure", "xfail"), (" ... unexpected success", "xpass")]
    for raw in log_text.splitlines():
        line = raw.strip()
        if " ... " in line:
            prev = line.split(" ... ")[0]
        hit = False
        for suf, st in suffixes:
            if line.endswith(suf):
                res[line[: -len(suf)]] = st
                hit = True
                break
        if not hit and " ... skipped" in line:
            res[line.split(" ... skipped")[0]] = "skip"
            hit = True
        if line.startswith(("FAIL:", "ERROR:")) and len(line.split()) > 1:
            # traceback header: "FAIL: test_x (mod.Class)"; keep the name + class
            name = line.split(":", 1)[1].strip()
            res[name] = "fail" if line.startswith("FAIL:") else "error"
        elif not hit and prev is not None and line in ("ok", "OK"):
            # output between "..." and the verdict (the test printed something)
            res[prev] = "pass"
    # multi-line interleavings SWE-bench also special-cases
    for pat in (r"^(.*?)\s\.\.\.\sTesting against Django installed in (?s:.*?) silenced\)\.\nok$",
                r"^(.*?)\s\.\.\.\sInternal Server Error: \/(.*)\/\nok$",
                r"^(.*?)\s\.\.\.\sSystem check identified no issues \(0 silenced\)\nok$"):
        for m in re.finditer(pat, log_text, re.M):
            res[m.group(1)] = "pass"
    return res


def parse_pytest(log_text: str) -> dict[str, str]:
    codes = {"PASSED": "pass", "FAILED": "fail", "ERROR": "error", "SKIPPED": "skip",
             "XFAIL": "xfail", "XPASS": "xpass"}
    res: dict[str, str] = {}
    for raw in log_text.splitlines():
        line = ANSI.sub("", raw).strip()
        word = line.split(" ", 1)[0]
        if word not in codes or " " not in line:
            continue
        rest = line.split(" ", 1)[1]
        if word in ("FAILED", "ERROR") and " - " in rest:
            rest = rest.split(" - ")[0]
        name = rest.split()[0] if rest.split() else ""
        if not name or name.startswith("["):
            continue
        res[name] = codes[word]
    return res


def parse_pytest_options(log_text: str) -> dict[str, str]:
    """pytest -rA, with a parametrization id that is an absolute path reduced to
    its last component (SWE-bench does this for pylint: ids hold tmp paths)."""
    out = {}
    for name, st in parse_pytest(log_text).items():
        m = re.match(r"^(.*?)\[(.*)\]$", name)
        if m and m.group(2).startswith("/") and not m.group(2).startswith("//") and "*" not in m.group(2):
            name = f"{m.group(1)}[/{m.group(2).split('/')[-1]}]"
        out[name] = st
    return out


PARSERS = {"sympy/sympy": parse_sympy, "django/django": parse_django,
           "pytest-dev/pytest": parse_pytest, "pylint-dev/pylint": parse_pytest_options,
           "sphinx-doc/sphinx": parse_pytest}


def resolved(status: dict[str, str], f2p: list[str], p2p: list[str]) -> tuple[bool, list[str], list[str]]:
    """README.md's rule. Returns (resolved, failing F2P, failing P2P)."""
    bad_f = [t for t in f2p if status.get(t) not in ("pass", "xfail")]
    bad_p = [t for t in p2p if status.get(t) not in ("pass", "xfail", "skip")]
    return (not bad_f and not bad_p), bad_f, bad_p


# ------------------------------------------------------------- running baton (both harnesses)

def agent_to_candidate(agent: str | None) -> str | None:
    if not agent:
        return None
    a = agent.strip()
    if a.startswith("patch:"):
        a = a[len("patch:"):]
    a = os.path.basename(a)
    return a[:-5] if a.endswith(".diff") else a


def run_baton_in(baton: Path, inst: dict, idir: Path, wd: Path, config: Path, env: dict, jobs: int,
                 timeout: float, keep: bool, sets: list | None = None) -> dict:
    """`baton run` on one instance in the prepared working copy `wd` (on branch `main` at the
    base), then `baton show --json`; returns the harness's record (exit, pick, confidence,
    verifications, ...). Inputs go to <idir>/inputs (task.md, <candidate id>.diff); candidate
    workspaces to <idir>/workspaces; the working copy and workspaces are removed unless `keep`.
    `sets` are `--set KEY=VALUE` settings for the run (a benchmark's shared caches that its
    stages write, in run.sandbox_writable)."""
    iid = inst["instance_id"]
    inputs = idir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    task = inputs / "task.md"
    task.write_text(inst["problem_statement"], encoding="utf-8")
    agents = []
    for c in inst["candidates"]:
        p = inputs / f"{c['id']}.diff"
        p.write_text(c["patch"], encoding="utf-8")
        agents += ["--agent", f"patch:{p.resolve()}"]
    env = dict(env)
    # baton keeps candidate workspaces by default (run.keep_workspaces); put them
    # next to the instance's files so they are removed with it
    env["BATON_WORKSPACE_ROOT"] = str((idir / "workspaces").resolve())
    cmd = [str(baton), "run", "--task-file", str(task.resolve()), *agents,
           "--config", str(config), "--json", "--jobs", str(jobs)]
    for setting in sets or []:
        cmd += ["--set", setting]
    rec: dict = {"instance_id": iid, "cmd": " ".join(sh_quote(x) for x in cmd), "workdir": str(wd)}
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, cwd=wd, env=env, capture_output=True, text=True, timeout=timeout)
        rec["exit"], out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        rec["exit"], out, err = None, (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), \
            f"timed out after {timeout} s"
    except OSError as e:
        rec["exit"], out, err = None, "", f"cannot run baton: {e}"
    rec["seconds"] = round(time.monotonic() - t0, 1)
    (idir / "run.stdout").write_text(out or "")
    (idir / "run.stderr").write_text(err or "")
    try:
        rec["run_json"] = json.loads(out) if out and out.strip() else None
    except ValueError:
        rec["run_json"] = None
    rec["stderr_tail"] = "\n".join((err or "").strip().splitlines()[-6:])
    if rec["exit"] in (0, 4):
        try:
            s = subprocess.run([str(baton), "show", "--json"], cwd=wd, env=env, capture_output=True,
                               text=True, timeout=300)
            (idir / "show.json").write_text(s.stdout)
            rec["show_exit"] = s.returncode
            rec["show"] = json.loads(s.stdout) if s.returncode == 0 and s.stdout.strip() else None
            if s.returncode != 0:
                rec["stderr_tail"] += "\nbaton show: " + "\n".join(s.stderr.strip().splitlines()[-4:])
        except (subprocess.TimeoutExpired, ValueError, OSError) as e:
            rec["show"] = None
            rec["stderr_tail"] += f"\nbaton show failed: {e}"
    show = rec.get("show") or {}
    winner = show.get("winner")
    pick = None
    if winner is not None:
        for c in show.get("candidates", []):
            if c.get("id") == winner:
                pick = agent_to_candidate(c.get("agent"))
                break
        if pick is None:  # winner given directly as an agent name
            pick = agent_to_candidate(str(winner))
    rec["winner"], rec["pick"] = winner, pick
    decided = show.get("decided_by") or {}
    rec["confidence"], rec["decided_by"] = decided.get("confidence"), decided.get("evidence")
    ids = {c["id"] for c in inst["candidates"]}
    if pick is not None and pick not in ids:
        rec["anomaly"] = f"winner maps to unknown candidate {pick!r}"
        rec["pick"] = None
    if rec["exit"] == 0 and rec["pick"] is None:
        rec.setdefault("anomaly", "exit 0 but no winner in `baton show --json`")
    if rec["exit"] == 4 and winner is not None:
        rec["anomaly"] = f"exit 4 (abstain) but show names winner {winner}"
    v = show.get("verifications")
    if isinstance(v, bool):
        v = None
    rec["verifications"] = v if isinstance(v, int) else (len(v) if isinstance(v, list) else None)
    if not keep:
        # `baton clean` unmounts overlay workspaces; deleting the directories alone would leave
        # their mounts behind
        try:
            subprocess.run([str(baton), "clean", "-q"], cwd=wd, env=env, capture_output=True, timeout=300)
        except (subprocess.TimeoutExpired, OSError):
            pass
        shutil.rmtree(idir / "repo", ignore_errors=True)
        shutil.rmtree(idir / "workspaces", ignore_errors=True)
    return rec


def scored_row(rec: dict, inst: dict, orc: dict, verdicts: dict[str, dict], n: int, total: int) -> dict:
    """Adds the ground truth of every candidate to a `run_baton_in` record and logs the line."""
    iid = inst["instance_id"]
    res = {cid: bool(v["resolved"]) for cid, v in verdicts.items()}
    infra = [cid for cid, v in verdicts.items() if v.get("infra_error")]
    rec.update({
        "repo": inst["repo"], "n_candidates": len(res), "n_resolving": sum(res.values()),
        "resolved": res, "score_infra_errors": infra,
        "pick_resolved": (res.get(rec["pick"]) if rec["pick"] else None),
        "sources": orc.get("candidate_source", {}), "oracle_kind": orc.get("kind"),
    })
    k = rec["n_resolving"]
    rec["kind"] = "all-failed" if k == 0 else ("all-resolved" if k == rec["n_candidates"] else "mixed")
    status = ("ERROR" if rec["exit"] not in (0, 4) else "abstain" if rec["exit"] == 4 else
              f"pick {rec['pick']} -> {'resolved' if rec['pick_resolved'] else 'NOT resolved'}")
    log(f"[{n}/{total}] {iid}: exit={rec['exit']} {status} ({rec['n_resolving']}/{rec['n_candidates']} resolve) "
        f"{rec['seconds']} s" + (f"  !! {rec['anomaly']}" if rec.get("anomaly") else ""))
    if rec["exit"] not in (0, 4):
        print("    " + (rec["stderr_tail"] or "(no stderr)").replace("\n", "\n    "), flush=True)
    return rec
