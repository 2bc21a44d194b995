#!/usr/bin/env python3
"""How well baton overlaps agents and verification, against the ideal, from one run.

    python3 bench/pipeline/run.py [--baton PATH ...] [--agents 8] [--stage-seconds 2] [--jobs 2] [--runs 3]

A small repository; AGENTS command agents, the k-th of which finishes after k seconds and
changes its own file (so every candidate's tree is distinct and verified); a test stage that
takes STAGE_SECONDS. With `--jobs 2` (two verifications at once) the ideal is the last agent's
end plus one verification: AGENTS + STAGE_SECONDS seconds. A run that verifies only after the
last agent (and the base only then) needs AGENTS + (AGENTS + 1) * STAGE_SECONDS / JOBS.

Several `--baton` binaries (say, before and after a change) are timed in the same session, each
RUNS times, alternating, and the median wall time of each is printed beside the ideal.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

AGENT = """#!/bin/sh
# The k-th candidate works k seconds, then changes a file of its own.
n=${BATON_CANDIDATE#c}
sleep "$n"
echo "candidate $n" > "src/c$n.txt"
"""


def config(stage_seconds: float) -> str:
    return f"""[run]
grace = "2s"
# overlay workspaces stay mounted while kept
keep_workspaces = false

[[verify.stage]]
name = "test"
run = "sleep {stage_seconds}; test -d src"
parser = "exit-code"
"""


def make_repo(path: Path, stage_seconds: float) -> None:
    path.mkdir(parents=True)
    (path / "src").mkdir()
    (path / "src" / "base.txt").write_text("base\n")
    (path / "baton.toml").write_text(config(stage_seconds))
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=path, check=True, env=env)


def one_run(baton: Path, work: Path, agents: int, jobs: int) -> float:
    repo = work / "repo"
    agent = work / "agent.sh"
    args = [str(baton), "run", "pipeline bench", "-q", "--jobs", str(jobs)]
    for _ in range(agents):
        args += ["--agent", f"command:{agent}"]
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache"), BATON_WORKSPACE_ROOT=str(work / "ws"))
    t = time.monotonic()
    r = subprocess.run(args, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t
    if r.returncode not in (0, 4):
        sys.exit(f"{baton} exited {r.returncode}:\n{r.stderr}")
    shutil.rmtree(work / "ws", ignore_errors=True)
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baton", action="append", type=Path, help="binaries to time (default: target/release/baton)")
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--stage-seconds", type=float, default=2.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    batons = [b.resolve() for b in (args.baton or [ROOT / "target" / "release" / "baton"])]
    for b in batons:
        if not b.is_file():
            sys.exit(f"no baton binary at {b}: build it (cargo build --release) or pass --baton")
    with tempfile.TemporaryDirectory(prefix="baton-pipeline-") as tmp:
        work = Path(tmp)
        make_repo(work / "repo", args.stage_seconds)
        (work / "agent.sh").write_text(AGENT)
        (work / "agent.sh").chmod(0o755)
        walls = {b: [] for b in batons}
        for i in range(args.runs):
            for b in batons:
                w = one_run(b, work, args.agents, args.jobs)
                walls[b].append(w)
                print(f"run {i + 1}/{args.runs} {b}: {w:.1f} s", file=sys.stderr)
    ideal = args.agents + args.stage_seconds
    serial = args.agents + (args.agents + 1) * args.stage_seconds / args.jobs
    print(f"{args.agents} agents ending after 1..{args.agents} s, a {args.stage_seconds:g} s test stage, --jobs {args.jobs}")
    print(f"{'':44} {'median wall':>12} {'x ideal':>8}")
    print(f"{'ideal (last agent + one verification)':44} {ideal:>10.1f} s {1.0:>8.2f}")
    print(f"{'verify after the last agent (model)':44} {serial:>10.1f} s {serial / ideal:>8.2f}")
    for b, w in walls.items():
        m = statistics.median(w)
        print(f"{str(b)[-44:]:44} {m:>10.1f} s {m / ideal:>8.2f}   (runs: {', '.join(f'{x:.1f}' for x in w)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
