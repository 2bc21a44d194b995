#!/usr/bin/env python3
"""Run baton on every instance of the Rust selection benchmark and print the table.

    python3 harness.py --instances <cache>/sets/dev-ids/instances.jsonl --oracle <cache>/sets/dev-ids/oracle.jsonl
                       [--snapshots /work/.mirror] [--baton PATH] [--cache DIR] [--only ID ...]
                       [--jobs N] [--out results.json] [--baton-timeout 3600] [--score-timeout 1800] [--keep]

The contract of ../selection/harness.py, for Rust. Per instance: a fresh working copy at
base_commit on a branch `main`, with ONE commit on top that adds the instance's pinned
Cargo.lock (generated at build time, <cache>/locks/<id>/; baton refuses a dirty tree, and the
lock is what every run of the benchmark builds with: the ground truth uses the same file);
the problem statement in a task file and each candidate's patch in <inputs>/<candidate id>.diff;
then, inside the working copy,

    baton run --task-file TASK --agent patch:/abs/c01.diff ... --config configs/<repo>.toml --json --jobs N
    baton show --json

with the cargo environment in baton's own environment, which its stages inherit:
CARGO_HOME=<cache>/cargo-home (crates fetched at build time), CARGO_NET_OFFLINE=true,
CARGO_TARGET_DIR=<cache>/target/<repo> (shared with the ground truth, so dependencies are
built once per repository), RUSTFLAGS=--cap-lints=warn, RUSTUP_TOOLCHAIN=stable.

Exit code 0 = a winner was picked, 4 = no confident winner (abstention), anything else = error
(recorded, shown, and the harness goes on). Every candidate is then scored with score.py's
ground truth (cached by instance and sha256 of the patch). baton never sees the oracle: only the
problem statement, the candidate patches, the per-repository config, the lock commit and the
cargo environment reach it. The table is ../selection/summary.py's, shared by both benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rustbench as R  # noqa: E402
from rustbench import C  # noqa: E402
from score import Scorer  # noqa: E402
from summary import print_table, summarize  # noqa: E402  (../selection/summary.py)

HERE = Path(__file__).resolve().parent
DEFAULT_BATON = HERE.parent.parent / "target" / "release" / "baton"


def prepare(args: argparse.Namespace, cache: Path, inst: dict, idir: Path) -> tuple[Path, dict]:
    """The working copy baton runs in: base_commit on `main`, plus one commit adding the lock."""
    iid, repo = inst["instance_id"], inst["repo"]
    lock = R.load_lock(cache, iid)
    if not lock:
        raise RuntimeError(f"no pinned Cargo.lock for {iid} in {R.lock_dir(cache, iid)}: run build.py first")
    wd = C.prepare_worktree(C.find_snapshot(args.snapshots, repo), idir / "repo", inst["base_commit"])
    C.git("checkout", "-q", "-B", "main", cwd=wd)  # on a branch, as a user's repository would be
    R.write_lock_files(wd, lock)
    C.git("add", "-f", "--", *lock["files"], cwd=wd)  # -f: libraries often git-ignore Cargo.lock
    C.git("commit", "-q", "--allow-empty", "--no-verify", "-m",
          f"bench: pin Cargo.lock ({lock['toolchain'].split(';')[0]})", cwd=wd)
    return wd, lock


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", required=True)
    ap.add_argument("--oracle", required=True, help="used for scoring only; never given to baton")
    ap.add_argument("--snapshots", default=str(R.DEFAULT_SNAPSHOTS))
    ap.add_argument("--baton", default=str(DEFAULT_BATON))
    ap.add_argument("--cache", default=str(R.DEFAULT_CACHE))
    ap.add_argument("--only", nargs="*", default=[])
    ap.add_argument("--jobs", type=int, default=1, help="passed to `baton run --jobs`")
    ap.add_argument("--out", help="write per-instance results and the summary here (JSON)")
    ap.add_argument("--score-jobs", type=int, default=1,
                    help="accepted for ../selection's contract; cargo runs one at a time here (2 cores)")
    ap.add_argument("--baton-timeout", type=float, default=3600.0, help="seconds per `baton run` (default 3600)")
    ap.add_argument("--score-timeout", type=float, default=1800.0, help="seconds per ground-truth test run")
    ap.add_argument("--keep", action="store_true", help="keep the working copies (<cache>/harness/<run>/<id>/repo)")
    ap.add_argument("--nice", type=int, default=15, help="niceness of the harness, baton and its cargo runs (default 15)")
    args = ap.parse_args()
    if args.nice:
        os.nice(args.nice)  # inherited by baton and every cargo it starts: the machine is shared
    args.baton = Path(args.baton).resolve()
    cache = Path(args.cache).expanduser().resolve()
    if not args.baton.exists():
        print(f"baton not found at {args.baton} (build it: cargo build --release, or pass --baton)", file=sys.stderr)
        return 2

    instances = C.load_instances(args.instances)
    oracle = C.load_oracle(args.oracle)
    ids = [i for i in instances if not args.only or i in args.only]
    missing = [i for i in ids if i not in oracle]
    if missing:
        print(f"no oracle row for {missing}", file=sys.stderr)
        return 2
    scorer = Scorer(cache, Path(args.snapshots), args.score_timeout)
    rundir = cache / "harness" / time.strftime("%Y%m%d-%H%M%S")
    rundir.mkdir(parents=True, exist_ok=True)
    now = R.toolchain(R.cargo_env(cache, instances[ids[0]]["repo"])) if ids else ""
    C.log(f"{len(ids)} instances, baton {args.baton}, run dir {rundir}, toolchain {now.split(';')[0]}")

    t_all = time.monotonic()
    rows = []
    for n, iid in enumerate(ids, 1):
        inst, orc = instances[iid], oracle[iid]
        idir = rundir / iid
        try:
            wd, lock = prepare(args, cache, inst, idir)
            config = (HERE / "configs" / f"{R.REPOS[inst['repo']]}.toml").resolve()
        except Exception as e:  # no lock, no snapshot, no config: an error row, and the next instance
            rec = {"instance_id": iid, "exit": None, "seconds": 0.0, "pick": None, "winner": None,
                   "verifications": None, "stderr_tail": f"cannot prepare the instance: {type(e).__name__}: {e}"}
        else:
            if lock["toolchain"].split(";")[0] != now.split(";")[0]:
                C.log(f"!! {iid}: its lock was made with {lock['toolchain'].split(';')[0]}, this run has {now.split(';')[0]}")
            cargo = R.cargo_env(cache, inst["repo"])
            # The stages build into the shared CARGO_HOME and target directory: baton's sandbox
            # lets them write there and nowhere else outside their workspace.
            writable = json.dumps([cargo["CARGO_HOME"], cargo["CARGO_TARGET_DIR"]])
            rec = C.run_baton_in(args.baton, inst, idir, wd, config, cargo, args.jobs,
                                 args.baton_timeout, args.keep, sets=[f"run.sandbox_writable={writable}"])
        verdicts = {c["id"]: scorer.verdict(inst, orc, c["patch"]) for c in inst["candidates"]}
        for v in verdicts.values():
            v.pop("status", None)
        rows.append(C.scored_row(rec, inst, orc, verdicts, n, len(ids)))
    wall = time.monotonic() - t_all

    summary = summarize(rows, wall)
    print_table(rows, summary)
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "instances": rows, "run_dir": str(rundir),
                                              "baton": str(args.baton)}, indent=1, default=str))
        print(f"\nresults: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
