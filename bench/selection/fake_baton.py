#!/usr/bin/env python3
"""A stand-in for baton, to test harness.py end to end without the real binary:

    python3 harness.py ... --baton bench/selection/fake_baton.py

`run` accepts baton's arguments, checks them, picks the candidate with the
smallest diff that touches a non-test .py or .rs file (exit 0), or abstains when there
is none (exit 4); `show --json` prints the result in baton's shape. It runs no
verification at all: its figures are a "smallest patch" baseline, nothing more.
State lives in .git/fake-baton.json of the working copy. It runs under whatever
python3 is first on PATH (the env's: 3.6 for old django), hence its old style.
"""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path


def state_path() -> Path:
    gitdir = subprocess.check_output(["git", "rev-parse", "--git-dir"], universal_newlines=True).strip()
    return Path(gitdir) / "fake-baton.json"


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd")  # (runs under the env's python, 3.6 for old django)
    r = sub.add_parser("run")
    r.add_argument("--task-file", required=True)
    r.add_argument("--agent", action="append", required=True)
    r.add_argument("--config", required=True)
    r.add_argument("--json", action="store_true")
    r.add_argument("--jobs", type=int, default=1)
    s = sub.add_parser("show")
    s.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.cmd is None:
        ap.error("a command is required")
    if a.cmd == "run":
        for p in [a.task_file, a.config]:
            if not Path(p).is_file():
                print(f"no such file: {p}", file=sys.stderr)
                return 2
        cands = []
        for n, ag in enumerate(a.agent, 1):
            if not ag.startswith("patch:"):
                print(f"unsupported agent {ag}", file=sys.stderr)
                return 2
            path = Path(ag[len("patch:"):])
            diff = path.read_text()
            files = re.findall(r"^diff --git a/(\S+) b/", diff, re.M)
            code = [f for f in files if f.endswith((".py", ".rs")) and "/" in f and not re.search(r"(^|/)tests?/|test_", f)]
            cands.append({"id": f"k{n:02d}", "agent": path.stem, "size": len(diff), "code": bool(code)})
        ok = [c for c in cands if c["code"]]
        winner = min(ok, key=lambda c: c["size"])["id"] if ok else None
        for rank, c in enumerate(sorted(cands, key=lambda c: (not c["code"], c["size"])), 1):
            c["rank"] = rank
        out = {"run": f"fake-{os.getpid()}", "winner": winner, "candidates": cands}
        state_path().write_text(json.dumps(out))
        if a.json:
            print(json.dumps(out))
        return 0 if winner else 4
    out = json.loads(state_path().read_text())
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
