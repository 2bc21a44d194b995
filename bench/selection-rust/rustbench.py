"""Shared pieces of the Rust selection benchmark (build.py, score.py, harness.py).

What lives here and why:

* where things are: the dataset snapshot (GhabiX/Rust-SWE-Bench: predictions, published
  reports, issue texts), the upstream snapshots, the cache layout;
* unified diffs cut into file sections and hunks: the dataset split each fix into a test patch
  and a source patch hunk by hunk (a hunk whose text, file header included, contains "test" or
  "e2e" is a test hunk), and the ground truth applies test hunks one at a time on top of a
  candidate, because Rust keeps unit tests in the source files a fix changes;
* the cargo side: the environment every build runs in (a shared CARGO_HOME fetched once, one
  target directory per repository, RUSTFLAGS=--cap-lints=warn, offline), the pinned Cargo.lock of
  an instance, the test targets a test patch calls for, and a libtest log parser whose test
  names follow baton's own `libtest` parser (`<binary>::<lib|bin|test|example|bench|doc>::<path>`);
* what the generic benchmark code already does (git working copies, patch application with
  git apply / patch --fuzz, process-group timeouts, the resolved rule, JSONL) comes from
  ../selection/common.py, imported here as C.

Stdlib only (Python 3.11: tomllib reads Cargo.toml).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE.parent / "selection"))  # after this folder: its score.py is not ours
import common as C  # noqa: E402,F401  (re-exported for the scripts)

DEFAULT_CACHE = Path(os.environ.get("BATON_BENCH_RUST_CACHE", Path.home() / ".cache" / "baton-bench-rust"))
DEFAULT_SNAPSHOTS = Path("/work/.mirror")
SHIM_DIR = HERE / "shim"
DATASET_REPO = "GhabiX/Rust-SWE-Bench"

# The thirteen repositories this benchmark is built for -> short name (config file name).
REPOS = {
    "clap-rs/clap": "clap",
    "tokio-rs/bytes": "bytes",
    "tokio-rs/tokio": "tokio",
    "rinja-rs/askama": "askama",
    "tokio-rs/tracing": "tracing",
    "dtolnay/async-trait": "async-trait",
    "bincode-org/bincode": "bincode",
    "rust-fuzz/cargo-fuzz": "cargo-fuzz",
    "sharkdp/fd": "fd",
    "tokio-rs/axum": "axum",
    "rcoh/angle-grinder": "angle-grinder",
    "rust-lang/cc-rs": "cc-rs",
    "mozilla/cbindgen": "cbindgen",
}

# Agent systems and the two model families whose runs give the candidates:
# (source name, predictions file, published report) per framework and model.
FRAMEWORKS = ["agentless", "autocoderover", "openhands", "rustforger", "sweagent"]
MODELS = ["claude", "o4mini"]


def run_files(framework: str, model: str) -> tuple[str, str]:
    if framework == "rustforger":
        return f"patch/rustforger-{model}.jsonl", f"eval_reports/rustforger.final-{model}-500.json"
    return f"patch/{framework}_{model}.jsonl", f"eval_reports/{framework}_{model}.json"


# Ground-truth feature sets, tried in this order on the fixed tree until the test targets build:
# the dataset's harness used --all-features; where a repository's "all features" cannot build
# on stable (tokio's `tracing` feature needs --cfg tokio_unstable), the feature set its own CI
# tests with comes next; plain default features last.
# ALL_BUT_DEBUG stands for --features with every feature the crate's Cargo.toml declares except
# those whose name says "debug" or "nightly", or is `doc`/`docs`/`unstable-doc`: --all-features
# would turn on clap's `debug`, which prints its trace straight to stderr through the test
# harness's result lines, and its `doc`, which needs a nightly compiler (docs.rs builds).
ALL_BUT_DEBUG = "ALL-BUT-DEBUG"
FEATURE_LADDER = {"tokio-rs/tokio": [ALL_BUT_DEBUG, "--features full", ""]}
DEFAULT_LADDER = [ALL_BUT_DEBUG, ""]
EXCLUDED_FEATURE = re.compile(r"debug|nightly|^(?:unstable-)?docs?$")


def feature_args(tree: Path, crate: str, features: str) -> str:
    """The cargo flags for a ladder rung in one crate."""
    if features != ALL_BUT_DEBUG:
        return features
    t = read_toml(tree / crate / "Cargo.toml") or {}
    names = [k for k in (t.get("features") or {}) if not EXCLUDED_FEATURE.search(k)]
    return f"--features {','.join(names)}" if names else ""


def instance_repo(iid: str) -> str:
    """`tokio-rs__bytes-100` -> `tokio-rs/bytes`."""
    m = re.fullmatch(r"(.+?)__(.+)-(\d+)", iid)
    if not m:
        raise ValueError(f"not an instance id: {iid}")
    return f"{m.group(1)}/{m.group(2)}"


def instance_number(iid: str) -> int:
    return int(iid.rsplit("-", 1)[1])


# ------------------------------------------------------------------ dataset snapshot

class Dataset:
    """Read-only access to the Rust-SWE-Bench snapshot (a bare git dir)."""

    def __init__(self, snapshots: Path):
        self.gitdir = C.find_snapshot(snapshots, DATASET_REPO)
        self._json: dict[str, object] = {}

    def show(self, path: str) -> str | None:
        r = C.git("show", f"HEAD:{path}", cwd=self.gitdir, check=False, timeout=120)
        return r.stdout if r.returncode == 0 else None

    def predictions(self, framework: str, model: str) -> dict[str, str]:
        key = f"pred:{framework}:{model}"
        if key not in self._json:
            text = self.show(run_files(framework, model)[0]) or ""
            out = {}
            for line in text.splitlines():
                if line.strip():
                    d = json.loads(line)
                    out[d["instance_id"]] = d.get("model_patch") or ""
            self._json[key] = out
        return self._json[key]  # type: ignore[return-value]

    def report(self, framework: str, model: str) -> dict:
        key = f"rep:{framework}:{model}"
        if key not in self._json:
            text = self.show(run_files(framework, model)[1])
            self._json[key] = json.loads(text) if text else {}
        return self._json[key]  # type: ignore[return-value]

    def published_label(self, framework: str, model: str, iid: str) -> bool | None:
        """True if resolved in the run's report; False if the run completed it unresolved;
        None when the report says nothing (error, missing)."""
        rep = self.report(framework, model)
        if iid in set(rep.get("resolved_ids", [])):
            return True
        if iid in set(rep.get("unresolved_ids", [])) or iid in set(rep.get("completed_ids", [])):
            return False
        return None

    def issue_texts(self) -> dict[str, str]:
        if "issues" not in self._json:
            self._json["issues"] = json.loads(self.show("RustForger/data/rb_all_bug_report.json") or "{}")
        return self._json["issues"]  # type: ignore[return-value]

    def toolchain_groups(self) -> dict[str, str]:
        """The dataset harness's per-instance toolchain group (default, nightly, ...)."""
        if "groups" not in self._json:
            d = json.loads(self.show("Rust-bench/swebench/harness/logs/config.json") or "{}")
            self._json["groups"] = {i: g for g, ids in d.items() for i in ids}
        return self._json["groups"]  # type: ignore[return-value]


# ------------------------------------------------------------------ diffs and hunks

@dataclass
class FileDiff:
    old: str                 # path before ('' for a new file)
    new: str                 # path after ('' for a deleted file)
    header: list[str]        # `diff --git` line up to (not including) the first hunk
    hunks: list[str] = field(default_factory=list)   # each starts with its `@@` line

    @property
    def path(self) -> str:
        return self.new or self.old

    def text(self, hunks: list[str] | None = None) -> str:
        hs = self.hunks if hunks is None else hunks
        return "".join(self.header) + "".join(hs)


def parse_diff(diff: str) -> list[FileDiff]:
    """Split a git-style unified diff into file sections and hunks (binary and mode-only
    sections keep everything in `header` and have no hunks)."""
    files: list[FileDiff] = []
    cur: FileDiff | None = None
    in_hunk = False
    for line in diff.splitlines(keepends=True):
        if line.startswith("diff --git "):
            m = re.match(r"diff --git (?:a/)?(\S+) (?:b/)?(\S+)", line)
            a, b = (m.group(1), m.group(2)) if m else ("", "")
            cur = FileDiff(a, b, [line])
            files.append(cur)
            in_hunk = False
            continue
        if cur is None:
            continue  # text before the first file (a commit message, blank lines)
        if line.startswith("@@"):
            cur.hunks.append(line)
            in_hunk = True
        elif in_hunk and (line[:1] in (" ", "+", "-", "\\") or line in ("\n", "\r\n")):
            cur.hunks[-1] += line
        else:
            in_hunk = False
            if line.startswith("--- "):
                cur.old = "" if line.strip() == "--- /dev/null" else re.sub(r"^--- (?:a/)?", "", line.rstrip("\n"))
            elif line.startswith("+++ "):
                cur.new = "" if line.strip() == "+++ /dev/null" else re.sub(r"^\+\+\+ (?:b/)?", "", line.rstrip("\n"))
            cur.header.append(line)
    return files


def is_test_hunk(f: FileDiff, hunk: str) -> bool:
    """The dataset's rule (mode "new" of its patch splitter): the hunk's text, with a
    `diff --git` / `---` / `+++` header naming its file, contains test, tests, testing or e2e."""
    a = f"a/{f.old}" if f.old else "/dev/null"
    b = f"b/{f.new}" if f.new else "/dev/null"
    text = f"diff --git {a} {b}\n--- {a}\n+++ {b}\n{hunk}"
    return "test" in text or "e2e" in text


def split_fix(diff: str) -> tuple[str, str]:
    """(source patch, test patch) of a fix, hunk by hunk."""
    src, tst = [], []
    for f in parse_diff(diff):
        if not f.hunks:  # binary or mode-only: one unit, judged by its header
            (tst if is_test_hunk(f, "") else src).append(f.text())
            continue
        th = [h for h in f.hunks if is_test_hunk(f, h)]
        sh = [h for h in f.hunks if not is_test_hunk(f, h)]
        if th:
            tst.append(f.text(th))
        if sh:
            src.append(f.text(sh))
    return "".join(src), "".join(tst)


def single_hunks(patch: str) -> list[tuple[FileDiff, str]]:
    """Each hunk of `patch` as a patch of its own: (file section, patch text)."""
    out = []
    for f in parse_diff(patch):
        if not f.hunks:
            out.append((f, f.text()))
        for h in f.hunks:
            out.append((f, f.text([h])))
    return out


def preimage_blobs(patch: str) -> dict[str, str]:
    """path -> abbreviated pre-image blob id, from a patch's `index OLD..NEW` lines (files the
    patch creates are left out)."""
    out: dict[str, str] = {}
    for f in parse_diff(patch):
        if not f.old:
            continue
        for line in f.header:
            m = re.match(r"index ([0-9a-f]{7,40})\.\.([0-9a-f]{7,40})", line)
            if m and set(m.group(1)) != {"0"}:
                out[f.old] = m.group(1)
    return out


def normalize_patch(patch: str) -> str:
    """Leading blank lines dropped, one final newline: some runs prefix a newline."""
    p = patch.lstrip("\n")
    return p if p.endswith("\n") else p + "\n"


HUNK_POLICY = 2  # bump when apply_hunks changes what it does with a hunk that does not apply


def is_test_file(path: str) -> bool:
    """A file that holds tests only: under a `tests/` directory, or a `tests.rs` module."""
    parts = path.split("/")
    return "tests" in parts[:-1] or parts[-1] == "tests.rs"


def apply_hunks(workdir: Path, patch: str, restored: list[str] | None = None) -> list[str]:
    """Apply `patch` hunk by hunk on the working copy as it is. Each hunk: `git apply`, then
    `patch --fuzz`; a hunk that creates a file which already exists (a candidate wrote a test
    file of that name) replaces it. A source file is never restored: Rust keeps unit tests
    beside the code a candidate fixed. Only when a hunk of a test-only file (is_test_file: the
    candidate's own edits to the same test file, e.g. a test added at the same place) does not
    apply is that file put back to HEAD (the base) and all its hunks applied again, as
    SWE-bench does with test files; such files are appended to `restored`. Returns the hunks
    that did not apply (their first lines), empty when all did."""
    failed: list[str] = []
    files: dict[str, list[tuple[FileDiff, str]]] = {}
    for f, text in single_hunks(patch):
        files.setdefault(f.path, []).append((f, text))
    for path, items in files.items():
        bad = [_apply_hunk(workdir, f, text) for f, text in items]
        if any(bad) and is_test_file(path):
            tracked = subprocess.run(["git", "cat-file", "-e", f"HEAD:{path}"], cwd=workdir,
                                     capture_output=True).returncode == 0
            if tracked:
                subprocess.run(["git", "checkout", "-q", "HEAD", "--", path], cwd=workdir, check=True)
            elif (workdir / path).exists():
                (workdir / path).unlink()
            if restored is not None:
                restored.append(path)
            bad = [_apply_hunk(workdir, f, text) for f, text in items]
        failed += [b for b in bad if b]
    return failed


def _apply_hunk(workdir: Path, f: FileDiff, text: str) -> str:
    """'' when the hunk applied, else its description."""
    ok, _ = _apply_one(workdir, text)
    if not ok and not f.old and f.new and (workdir / f.new).exists():
        (workdir / f.new).unlink()
        ok, _ = _apply_one(workdir, text)
    if ok:
        return ""
    first = next((h for h in text.splitlines() if h.startswith("@@")), "")
    return f"{f.path} {first}".strip()


def _apply_one(workdir: Path, text: str) -> tuple[bool, str]:
    for cmd in (["git", "apply", "--recount", "-"],
                ["patch", "--batch", "--forward", "--fuzz=5", "-p1", "--no-backup-if-mismatch", "-r", "-", "-i", "-"]):
        r = subprocess.run(cmd, cwd=workdir, input=text, text=True, capture_output=True)
        if r.returncode == 0:
            return True, " ".join(cmd[:2])
    return False, (r.stdout + r.stderr)[-400:]


# ------------------------------------------------------------------ cargo environment

def cargo_env(cache: Path, repo: str, offline: bool = True) -> dict[str, str]:
    """The environment of every cargo command of the benchmark (ground truth and baton's
    stages alike): shared CARGO_HOME, one target directory per repository, lints capped,
    no network, the toolchain pinned (a repository's rust-toolchain file does not switch it)."""
    env = dict(os.environ)
    env.update({
        "CARGO_HOME": str(Path(cache) / "cargo-home"),
        "CARGO_TARGET_DIR": str(Path(cache) / "target" / REPOS.get(repo, repo.replace("/", "+"))),
        "RUSTFLAGS": "--cap-lints=warn",
        "RUSTDOCFLAGS": "--cap-lints=warn",
        "CARGO_NET_OFFLINE": "true" if offline else "false",
        "CARGO_TERM_COLOR": "never",
        "CARGO_PROFILE_DEV_DEBUG": "0",      # no debug info: faster links, a smaller target dir
        "CARGO_PROFILE_TEST_DEBUG": "0",
        "RUSTUP_TOOLCHAIN": os.environ.get("BATON_BENCH_RUST_TOOLCHAIN", "stable"),
        "RUST_BACKTRACE": "0",
    })
    for k in ("RUSTC_WRAPPER", "CARGO_BUILD_TARGET", "CARGO_ENCODED_RUSTFLAGS", "BATON_BENCH_SHIM_HELD"):
        env.pop(k, None)
    # cargo through shim/cargo (a lock on the shared target directory, and a tree that was not
    # the last one built there marked as new): see that script for why
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != SHIM_DIR]
    real = shutil.which("cargo", path=os.pathsep.join(path))
    if real is None:
        raise RuntimeError("cargo is not on PATH")
    env["BATON_BENCH_REAL_CARGO"] = real
    env["PATH"] = os.pathsep.join([str(SHIM_DIR), *path])
    return env


def toolchain(env: dict[str, str]) -> str:
    r = subprocess.run(["rustc", "-V"], env=env, capture_output=True, text=True)
    c = subprocess.run(["cargo", "-V"], env=env, capture_output=True, text=True)
    return f"{r.stdout.strip()}; {c.stdout.strip()}"


def lock_dir(cache: Path, iid: str) -> Path:
    return Path(cache) / "locks" / iid


def load_lock(cache: Path, iid: str) -> dict:
    """{"files": {relpath: text}, "toolchain": ...} of an instance, or {} if none was made."""
    p = lock_dir(cache, iid) / "lock.json"
    if not p.exists():
        return {}
    meta = json.loads(p.read_text())
    meta["files"] = {rel: (lock_dir(cache, iid) / "tree" / rel).read_text() for rel in meta["paths"]}
    return meta


def write_lock_files(workdir: Path, lock: dict) -> None:
    for rel, text in lock.get("files", {}).items():
        (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (workdir / rel).write_text(text)


def workspace_root(tree: Path, crate_dir: str) -> str:
    """The directory (relative) whose Cargo.lock serves the crate at `crate_dir`: the nearest
    ancestor whose Cargo.toml has a [workspace] listing it, else the crate itself."""
    parts = [p for p in crate_dir.split("/") if p]
    for k in range(len(parts), -1, -1):
        d = "/".join(parts[:k])
        toml = read_toml(tree / d / "Cargo.toml") if (tree / d / "Cargo.toml").exists() else None
        if toml is not None and "workspace" in toml:
            return d
    return crate_dir


def read_toml(path: Path) -> dict | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, tomllib.TOMLDecodeError):
        return None


def crate_dir_of(tree: Path, path: str) -> str | None:
    """Nearest directory at or above `path` holding a Cargo.toml (relative; '' = root)."""
    parts = path.split("/")[:-1]
    for k in range(len(parts), -1, -1):
        d = "/".join(parts[:k])
        if (tree / d / "Cargo.toml").is_file():
            return d
    return None


# ------------------------------------------------------------------ test targets

def _targets(tree: Path, crate: str) -> dict[str, tuple[str, str]]:
    """path (relative to the repository) -> (kind, name) for the crate's explicit and
    auto-discovered lib, bin, test, example and bench targets."""
    root = tree / crate
    t = read_toml(root / "Cargo.toml") or {}
    pkg = t.get("package") or {}
    pname = str(pkg.get("name", Path(crate).name or "crate")).replace("-", "_")
    rel = (lambda p: f"{crate}/{p}" if crate else p)
    out: dict[str, tuple[str, str]] = {}
    lib = t.get("lib") or {}
    if lib.get("path") or (root / "src/lib.rs").exists():
        out[rel(lib.get("path", "src/lib.rs"))] = ("lib", lib.get("name", pname))
    for kind, auto_key, auto_dir in (("bin", "autobins", None), ("test", "autotests", "tests"),
                                     ("example", "autoexamples", "examples"), ("bench", "autobenches", "benches")):
        for e in t.get(kind, []) or []:
            if isinstance(e, dict) and e.get("name"):
                p = e.get("path") or (f"src/bin/{e['name']}.rs" if kind == "bin" else f"{auto_dir}/{e['name']}.rs")
                out[rel(p)] = (kind, e["name"])
        if pkg.get(auto_key, True) is False:
            continue
        if kind == "bin":
            if (root / "src/main.rs").exists():
                out.setdefault(rel("src/main.rs"), ("bin", str(pkg.get("name", ""))))
            d = root / "src/bin"
        else:
            d = root / auto_dir
        if d.is_dir():
            for p in sorted(d.iterdir()):
                if p.suffix == ".rs" and p.is_file():
                    out.setdefault(rel(str(p.relative_to(root))), (kind, p.stem))
                elif p.is_dir() and (p / "main.rs").exists():
                    out.setdefault(rel(str((p / "main.rs").relative_to(root))), (kind, p.name))
    return out


def test_commands(tree: Path, test_patch: str, features: str) -> list[dict]:
    """What to run for a test patch, per crate: [{"dir", "args"}] where args are cargo test
    selectors. The dataset's rule, target-aware: a file that is (or is a module of) an
    integration test, bin, example or bench target runs that target; a test hunk in a library
    source file runs the unit tests (`--lib`) and, when it touched doc comments, the doctests
    (`--doc`, a run of its own since cargo cannot mix it with other selectors); any other .rs
    test file (trybuild inputs, fixtures) runs all test targets of its crate (`--tests`).
    Non-.rs files select nothing, as in the dataset."""
    per: dict[str, dict] = {}
    for f in parse_diff(test_patch):
        path = f.path
        if not path.endswith(".rs"):
            continue
        crate = crate_dir_of(tree, path)
        if crate is None:
            continue
        targets = _targets(tree, crate)
        sel = per.setdefault(crate, {"sel": [], "doc": False, "all": False})
        hit = targets.get(path)
        if hit is None:
            # a module of a target living in a directory: tests/<dir>/main.rs owns tests/<dir>/**
            for tp, (kind, name) in targets.items():
                if kind != "lib" and tp.endswith("/main.rs") and path.startswith(tp[: -len("main.rs")]):
                    hit = (kind, name)
                    break
        if hit is None and re.match(rf"^{re.escape(crate + '/' if crate else '')}src/", path):
            libp = next((p for p, (k, _) in targets.items() if k == "lib"), None)
            binp = [(p, n) for p, (k, n) in targets.items() if k == "bin"]
            if path.startswith((f"{crate}/src/bin/" if crate else "src/bin/")) and binp:
                hit = ("bin", next((n for p, n in binp if path.startswith(p.rsplit("/", 1)[0])), binp[0][1]))
            elif libp:
                hit = ("lib", "")
            elif binp:
                hit = ("bins", "")
        if hit is None:
            sel["all"] = True
            continue
        kind, name = hit
        if kind == "lib":
            sel["sel"].append("--lib")
            if any(re.match(r"^[+-]\s*(///|//!)", ln) for h in f.hunks for ln in h.splitlines()):
                sel["doc"] = True
        elif kind == "bins":
            sel["sel"].append("--bins")
        else:
            sel["sel"].append(f"--{kind} {C.sh_quote(name)}")
    cmds = []
    for crate, s in sorted(per.items()):
        sels = ["--tests"] if s["all"] else list(dict.fromkeys(s["sel"]))
        feats = feature_args(tree, crate, features)
        if sels:
            cmds.append({"dir": crate, "args": " ".join(x for x in [feats] + sels if x)})
        if s["doc"]:
            cmds.append({"dir": crate, "args": " ".join(x for x in [feats, "--doc"] if x)})
    return cmds


def shell_for(cmds: list[dict], nice: int = 15) -> str:
    """One shell script running every command from the repository root (all run, whatever
    the earlier ones did)."""
    lines = []
    for c in cmds:
        d = C.sh_quote(c["dir"]) if c["dir"] else "."
        lines.append(f"(cd {d} && nice -n {nice} cargo test --no-fail-fast {c['args']})")
    return "; ".join(lines) if lines else "true"


# ------------------------------------------------------------------ libtest parser

_RESULT = re.compile(r"^(?P<before>.*) \.\.\. (?P<res>ok|FAILED(?: \(.*\))?|ignored(?:, .*)?|bench: .*?)(?: <[0-9.]+s>)?\s*$")
_DOCLINE = re.compile(r" \(line \d+\)")


def _header(line: str) -> str | None:
    s = line.strip()
    if s.startswith("Doc-tests "):
        return f"{s[len('Doc-tests '):].strip()}::doc"
    if not s.startswith("Running "):
        return None
    rest = s[len("Running "):].strip().strip("`")
    m = re.match(r"^(.*) \((.*)\)$", rest)
    source, binary = (m.group(1).strip(), m.group(2)) if m else (None, rest)
    if "/" not in binary:
        return None
    stem = binary.rsplit("/", 1)[-1]
    m2 = re.match(r"^(.*)-([0-9a-f]+)$", stem)
    if m2:
        stem = m2.group(1)
    if source is None:
        return stem
    if source.startswith("unittests "):
        p = source[len("unittests "):]
        kind = "bin" if p.endswith("main.rs") or "src/bin/" in p else "lib"
    else:
        first = source.split("/")[0]
        kind = {"benches": "bench", "examples": "example"}.get(first, "test")
    return f"{stem}::{kind}"


def parse_libtest(log: str) -> dict[str, str]:
    """`cargo test` output -> {name: pass|fail|skip|error}, names as baton's libtest parser
    makes them. A test left running when its binary died counts as an error. A name seen twice
    keeps the worse status."""
    order = {"error": 4, "fail": 3, "pass": 1, "skip": 0}
    res: dict[str, str] = {}
    prefix, waiting, reporting = "", None, False

    def rec(name: str, st: str) -> None:
        name = name[: -len(" - should panic")] if name.endswith(" - should panic") else name
        name = _DOCLINE.sub("", name)
        full = f"{prefix}::{name}" if prefix else name
        if order[st] >= order.get(res.get(full, "skip"), -1) or full not in res:
            res[full] = st

    for raw in log.splitlines():
        line = raw.rstrip("\r")
        h = _header(line)
        if h is not None:
            if waiting:
                rec(waiting, "error")
            prefix, waiting, reporting = h, None, False
            continue
        t = line.strip()
        if t.startswith("test result: "):
            waiting, reporting = None, False
            continue
        if t in ("failures:", "successes:"):
            reporting, waiting = True, None
        if reporting:
            continue
        if re.match(r"^running \d+ tests?$", t):
            continue
        if t.startswith("error: test failed") or t.startswith("process didn't exit successfully"):
            if waiting:
                rec(waiting, "error")
            waiting = None
            continue
        m = _RESULT.match(line)
        if m:
            before = m.group("before")
            before = before.rsplit(" ... ", 1)[-1]
            mm = re.search(r"(?:^|\s)test (\S.*)$", before)
            if mm:
                r = m.group("res")
                rec(mm.group(1), "pass" if r.startswith(("ok", "bench")) else "skip" if r.startswith("ignored") else "fail")
                waiting = None
                continue
        mm = re.match(r"^test (\S.*?) \.\.\.\s*$", t)
        if mm:
            waiting = mm.group(1)
            continue
        if waiting and re.match(r"^(ok|FAILED)\b", t):
            rec(waiting, "pass" if t.startswith("ok") else "fail")
            waiting = None
    if waiting:
        rec(waiting, "error")
    return res


NIGHTLY_RE = re.compile(r"error\[E0554\]|may not be used on the stable release channel|"
                        r"is only accepted on the nightly compiler|requires a nightly|"
                        r"unstable features are only available in nightly|"
                        r"the option `Z` is only accepted on the nightly")


def build_failed(log: str) -> bool:
    return bool(re.search(r"^error: could not compile|^error: failed to (?:run custom build|select a version|"
                          r"get|load|parse|resolve)|^error: no matching package|^error: failed to download|"
                          r"^error: no (?:test|bin|example|bench) target named|^error: no library targets found|"
                          r"^error: package .* cannot be built",
                          log, re.M))


def needs_nightly(log: str) -> bool:
    return bool(NIGHTLY_RE.search(log))


def rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)
