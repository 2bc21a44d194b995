#!/usr/bin/env python3
"""Create the Python environments the selection benchmark needs.

    python3 setup_envs.py --instances dev/instances.jsonl --snapshots /work/.mirror [--cache DIR]
                          [--only NAME_OR_REPO ...] [--force] [--list]

One virtualenv per distinct (repository, Python, setup commit), following
ENVIRONMENTS.md (which follows SWE-bench's harness specs). Envs live in
<cache>/envs/<name> (default cache ~/.cache/baton-bench); the checkout an env
was installed from lives in <cache>/src/<name> and must be kept (editable
installs point at it). <cache>/envs/index.json maps "repo@version" to an env
name; score.py and harness.py read it.

Idempotent: an env whose marker (<env>/.bench-env.json) records the same spec,
whose import check passes (the modules of its version's own dependencies) and
that has run one of the repository's tests (once, remembered in the marker) is
skipped; anything else is rebuilt from scratch. Never reads the oracle: django's (and pytest's, sphinx's) requirements
come from a fixed table of SWE-bench setup commits per version (see
common.SETUP_COMMITS), falling back to the newest base_commit of that version
in the instances file.

How the code under test is found: the env may hold an install of the project
at its setup commit (so entry points and metadata exist, as in SWE-bench), but
every test command puts the working copy first on PYTHONPATH (`$PWD`, or
`$PWD/src` for pytest), so each candidate's workspace tests its own code and
any number of workspaces can share one env. See README.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402


# Distributions whose import name differs from their name.
IMPORT_NAMES = {"attrs": "attr", "more-itertools": "more_itertools", "setuptools_scm": "setuptools_scm",
                "setuptools-scm": "setuptools_scm"}
# Installed to build the project, not imported by it.
BUILD_TOOLS = {"pip", "setuptools", "setuptools_scm", "setuptools-scm", "wheel"}


def check_modules(spec: C.EnvSpec) -> list[str]:
    """The modules an env must import. For pytest they follow the pins of its own version
    (SWE-bench's, the first install step): pytest 5 has no `iniconfig`, 6 and later need it,
    older ones need `six` or `atomicwrites`. A fixed list failed its own check on pytest 5."""
    if spec.repo != "pytest-dev/pytest" or not spec.steps:
        return spec.check_modules
    mods = []
    for req in spec.steps[0].get("pip", []):
        name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
        if not name or name.startswith("-") or name.lower() in BUILD_TOOLS:
            continue
        mods.append(IMPORT_NAMES.get(name.lower(), name.replace("-", "_")))
    return mods + ["pytest"]


# Where each repository keeps test files, for the test an env must run before it is ready.
SMOKE_TESTS = {
    "pytest-dev/pytest": "testing/test_*.py",
    "django/django": "tests/*/tests.py",
    "pylint-dev/pylint": "tests/**/test_*.py",
    "sphinx-doc/sphinx": "tests/test_*.py",
}


def smoke_test(envdir: Path, spec: C.EnvSpec, checkout: Path | None, tries: int = 3) -> tuple[bool, str]:
    """Runs one of the repository's test files in the env, with the benchmark's own test
    command and log parser, from the checkout the env was installed from: an env whose imports
    succeed can still run no test at all (the harness's test stage then reads no result). The
    smallest files first (a few seconds each); ready when one reports a passing test."""
    pattern = SMOKE_TESTS.get(spec.repo)
    if checkout is None or pattern is None:
        return True, "no checkout to run a test from"
    files = sorted((p for p in checkout.glob(pattern) if p.is_file() and p.stat().st_size >= 1024),
                   key=lambda p: (p.stat().st_size, str(p)))[:tries]
    if not files:
        return False, f"no test file matches {pattern} in {checkout}"
    parse = C.PARSERS[spec.repo]
    why = ""
    for f in files:
        rel = str(f.relative_to(checkout))
        rc, out, secs = C.run_shell(C.test_command(spec.repo, [rel]), checkout, C.env_vars(envdir), 600)
        statuses = parse(out)
        passed = sum(1 for st in statuses.values() if st == "pass")
        if passed:
            return True, f"{rel}: {passed} passed in {secs:.1f} s"
        tail = " | ".join(line.strip() for line in out.strip().splitlines()[-3:])
        why = f"{rel}: no passing test in its output (exit {rc}, {len(statuses)} results read): {tail}"
    return False, why


def ready(envdir: Path, spec: C.EnvSpec, cache: Path) -> tuple[bool, str]:
    """The import check, then (once, remembered in the marker) a test of the repository."""
    ok, why = quick_check(envdir, spec)
    if not ok:
        return ok, why
    marker_path = envdir / ".bench-env.json"
    marker = json.loads(marker_path.read_text())
    if marker.get("smoke_test", {}).get("ok"):
        return True, "ok"
    checkout = cache / "src" / spec.name if spec.setup_commit else None
    ok, why = smoke_test(envdir, spec, checkout)
    marker["smoke_test"] = {"ok": ok, "result": why}
    marker_path.write_text(json.dumps(marker, indent=1))
    return ok, why if not ok else "ok"


def quick_check(envdir: Path, spec: C.EnvSpec) -> tuple[bool, str]:
    py = envdir / "bin" / "python"
    marker = envdir / ".bench-env.json"
    if not py.exists() or not marker.exists():
        return False, "missing"
    try:
        m = json.loads(marker.read_text())
    except ValueError:
        return False, "bad marker"
    if m.get("key") != spec.key():
        return False, "spec changed"
    modules = check_modules(spec)
    code = "import " + ", ".join(modules) if modules else "pass"
    r = subprocess.run([str(py), "-c", code], cwd="/", capture_output=True, text=True,
                       env=C.env_vars(envdir), timeout=300)
    if r.returncode != 0:
        return False, "import check failed: " + r.stderr.strip().splitlines()[-1:][0] if r.stderr.strip() else "import check failed"
    return True, "ok"


def pip(envdir: Path, args: list[str], cwd: Path, logfh) -> int:
    cmd = [str(envdir / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
           "--no-input", *args]
    logfh.write(f"\n$ (cd {cwd}) {' '.join(cmd)}\n")
    logfh.flush()
    env = C.env_vars(envdir)
    r = subprocess.run(cmd, cwd=cwd, stdout=logfh, stderr=subprocess.STDOUT, env=env, timeout=3600)
    return r.returncode


def build(spec: C.EnvSpec, cache: Path, snapshot: Path | None) -> dict:
    envdir = cache / "envs" / spec.name
    srcdir = cache / "src" / spec.name
    logdir = cache / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    logpath = logdir / f"setup-{spec.name}.log"
    if envdir.exists():
        shutil.rmtree(envdir)
    t0 = time.monotonic()
    notes: list[str] = []
    with open(logpath, "w") as logfh:
        base_py = C.pyenv_python(spec.python)
        C.log(f"  venv with {base_py}")
        subprocess.run([str(base_py), "-m", "venv", str(envdir)], check=True,
                       stdout=logfh, stderr=subprocess.STDOUT)
        if spec.python == "3.6":
            if pip(envdir, ["-U", "pip<22"], Path("/"), logfh):
                raise RuntimeError("pip upgrade failed")
        checkout = None
        if spec.setup_commit:
            assert snapshot is not None
            C.log(f"  checkout {spec.repo}@{spec.setup_commit[:10]} -> {srcdir}")
            checkout = C.prepare_worktree(snapshot, srcdir, spec.setup_commit)
        for step in spec.steps:
            cwd = checkout if step.get("cwd") == "checkout" else Path("/")
            if "requirements" in step:
                req = (checkout / step["requirements"]).read_text()
                optional = step.get("optional", [])
                keep, dropped = [], []
                for line in req.splitlines():
                    name = line.split(";")[0].strip().split(" ")[0].split(">")[0].split("=")[0].split("<")[0]
                    (dropped if name in optional else keep).append(line)
                with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as tf:
                    tf.write("\n".join(keep) + "\n")
                C.log(f"  pip install -r {step['requirements']} (without {', '.join(optional)})")
                if pip(envdir, ["-r", tf.name], checkout, logfh):
                    raise RuntimeError(f"pip install -r {step['requirements']} failed (see {logpath})")
                for line in dropped:
                    spec_str = line.split("#")[0].strip()
                    C.log(f"  optional: pip install '{spec_str}'")
                    if pip(envdir, [spec_str], checkout, logfh):
                        notes.append(f"optional package not installed: {spec_str}")
                        C.log(f"    (failed, skipped: optional)")
                continue
            args = list(step["pip"])
            if step.get("constraints"):
                with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as tf:
                    tf.write("\n".join(step["constraints"]) + "\n")
                args = ["-c", tf.name, *args]
            C.log(f"  pip install {' '.join(step['pip'])}" + (f" (in {cwd})" if cwd != Path('/') else "")
                  + (f" with constraints {step['constraints']}" if step.get("constraints") else ""))
            if pip(envdir, args, cwd, logfh):
                raise RuntimeError(f"pip install {' '.join(step['pip'])} failed (see {logpath})")
        freeze = subprocess.run([str(envdir / "bin" / "python"), "-m", "pip", "freeze"],
                                capture_output=True, text=True, env=C.env_vars(envdir)).stdout
    secs = time.monotonic() - t0
    marker = {"key": spec.key(), "name": spec.name, "repo": spec.repo, "versions": spec.versions,
              "python": spec.python, "setup_commit": spec.setup_commit, "setup_note": spec.setup_note,
              "steps": spec.steps, "notes": notes, "seconds": round(secs, 1),
              "built": time.strftime("%Y-%m-%d %H:%M:%S"), "freeze": freeze.splitlines()}
    (envdir / ".bench-env.json").write_text(json.dumps(marker, indent=1))
    ok, why = ready(envdir, spec, cache)
    if not ok:
        raise RuntimeError(f"env {spec.name} built but fails its check: {why}")
    return json.loads((envdir / ".bench-env.json").read_text())


def plan(instances: list[dict], snapshots: Path) -> tuple[dict[str, C.EnvSpec], dict[str, str], dict[str, Path]]:
    specs: dict[str, C.EnvSpec] = {}
    index: dict[str, str] = {}
    snaps: dict[str, Path] = {}
    seen: set[tuple[str, str]] = set()
    for inst in instances:
        key = (inst["repo"], inst["version"])
        if key in seen:
            continue
        seen.add(key)
        repo, version = key
        snap = None
        if repo != "sympy/sympy":
            snap = snaps.get(repo) or C.find_snapshot(snapshots, repo)
            snaps[repo] = snap
        spec = C.env_spec(repo, version, snap, instances)
        if spec.name in specs:
            if version not in specs[spec.name].versions:
                specs[spec.name].versions.append(version)
        else:
            specs[spec.name] = spec
        index[f"{repo}@{version}"] = spec.name
    return specs, index, snaps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", required=True, help="instances.jsonl (never the oracle)")
    ap.add_argument("--snapshots", required=True, help="folder holding the git snapshots (e.g. /work/.mirror)")
    ap.add_argument("--cache", default=str(C.DEFAULT_CACHE), help="cache root (default %(default)s)")
    ap.add_argument("--only", nargs="*", default=[], help="env names or repos (sympy, django, ...) to handle")
    ap.add_argument("--force", action="store_true", help="rebuild even if the env passes its check")
    ap.add_argument("--list", action="store_true", help="print the plan and exit")
    a = ap.parse_args()
    cache = Path(a.cache).expanduser().resolve()
    instances = C.load_jsonl(a.instances)
    specs, index, snaps = plan(instances, Path(a.snapshots))

    # the index is merged so several instances files can share one cache
    ipath = C.env_index_path(cache)
    ipath.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(ipath.read_text()) if ipath.exists() else {}
    old.update(index)
    ipath.write_text(json.dumps(old, indent=1, sort_keys=True))

    todo = [s for s in specs.values()
            if not a.only or s.name in a.only or C.REPO_SHORT[s.repo] in a.only or s.repo in a.only]
    for s in todo:
        print(f"{s.name:32} {s.repo} {','.join(s.versions):12} py{s.python} "
              f"setup={s.setup_commit[:10] if s.setup_commit else '-'} ({s.setup_note})")
    if a.list:
        return 0
    results = []
    failed = 0
    for s in todo:
        envdir = cache / "envs" / s.name
        ok, why = (False, "forced") if a.force else ready(envdir, s, cache)
        if ok:
            prev = json.loads((envdir / ".bench-env.json").read_text())
            C.log(f"{s.name}: exists and passes its check, skipped (built in {prev.get('seconds')} s)")
            results.append((s.name, "kept", prev.get("seconds"), prev.get("notes", [])))
            continue
        C.log(f"{s.name}: building ({why})")
        try:
            m = build(s, cache, snaps.get(s.repo))
            C.log(f"{s.name}: done in {m['seconds']} s")
            results.append((s.name, "built", m["seconds"], m["notes"]))
        except Exception as e:  # keep going with the others
            failed += 1
            C.log(f"{s.name}: FAILED: {e}")
            results.append((s.name, "FAILED", None, [str(e)]))
    print("\nenv                              status  seconds  notes")
    for name, st, secs, notes in results:
        print(f"{name:32} {st:7} {secs if secs is not None else '-':>7}  {'; '.join(notes)}")
    print(f"\nindex: {ipath}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
