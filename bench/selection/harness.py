#!/usr/bin/env python3
"""Run baton on every instance of the selection benchmark and print the table.

    python3 harness.py --instances dev/instances.jsonl --oracle dev/oracle.jsonl --snapshots /work/.mirror
                       [--baton PATH] [--cache DIR] [--only ID ...] [--jobs N] [--out results.json]
                       [--score-jobs 1] [--baton-timeout 3600] [--keep]

Per instance: a fresh working copy of the repository at base_commit (git clone
--shared from the snapshot); the problem statement in a task file and each
candidate's patch in <inputs>/<candidate id>.diff; then, inside the working copy
and with the (repo, version) env's bin/ first on PATH,

    baton run --task-file TASK --agent patch:/abs/c01.diff ... --config configs/<repo>.toml --json --jobs N
    baton show --json

Exit code 0 = a winner was picked, 4 = no confident winner (abstention),
anything else = error (recorded, shown, and the harness goes on). The pick is
`winner` -> that candidate's `agent` (the .diff file stem) -> candidate id.
Every candidate and the pick are then scored with score.py's ground truth
(cached on disk). baton never sees the oracle: only the problem statement, the
candidate patches, the per-repository config and the env's PATH reach it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
from score import Scorer  # noqa: E402
from summary import print_table, summarize  # noqa: E402  (shared with ../selection-rust)

HERE = Path(__file__).resolve().parent
DEFAULT_BATON = HERE.parent.parent / "target" / "release" / "baton"


def run_baton(args: argparse.Namespace, inst: dict, envdir: Path, rundir: Path) -> dict:
    iid, repo = inst["instance_id"], inst["repo"]
    idir = rundir / iid
    wd = C.prepare_worktree(C.find_snapshot(args.snapshots, repo), idir / "repo", inst["base_commit"])
    C.git("checkout", "-q", "-B", "main", cwd=wd)  # on a branch, as a user's repository would be
    config = (HERE / "configs" / f"{C.REPO_SHORT[repo]}.toml").resolve()
    return C.run_baton_in(args.baton, inst, idir, wd, config, C.env_vars(envdir), args.jobs,
                          args.baton_timeout, args.keep)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", required=True)
    ap.add_argument("--oracle", required=True, help="used for scoring only; never given to baton")
    ap.add_argument("--snapshots", required=True)
    ap.add_argument("--baton", default=str(DEFAULT_BATON))
    ap.add_argument("--cache", default=str(C.DEFAULT_CACHE))
    ap.add_argument("--only", nargs="*", default=[])
    ap.add_argument("--jobs", type=int, default=1, help="passed to `baton run --jobs`")
    ap.add_argument("--out", help="write per-instance results and the summary here (JSON)")
    ap.add_argument("--score-jobs", type=int, default=1, help="parallel ground-truth test runs when not cached")
    ap.add_argument("--baton-timeout", type=float, default=3600.0, help="seconds per `baton run` (default 3600)")
    ap.add_argument("--score-timeout", type=float, default=900.0, help="seconds per ground-truth test run")
    ap.add_argument("--keep", action="store_true", help="keep the working copies (<cache>/harness/<run>/<id>/repo)")
    args = ap.parse_args()
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
    index = C.load_env_index(cache)
    scorer = Scorer(instances, oracle, Path(args.snapshots), cache, args.score_jobs, args.score_timeout)
    rundir = cache / "harness" / time.strftime("%Y%m%d-%H%M%S")
    rundir.mkdir(parents=True, exist_ok=True)
    C.log(f"{len(ids)} instances, baton {args.baton}, run dir {rundir}")

    t_all = time.monotonic()
    rows = []
    for n, iid in enumerate(ids, 1):
        inst, orc = instances[iid], oracle[iid]
        envdir = C.env_dir_for(cache, inst["repo"], inst["version"], index)
        rec = run_baton(args, inst, envdir, rundir)
        # ground truth for every candidate (cached by score.py)
        with ThreadPoolExecutor(max_workers=max(1, args.score_jobs)) as ex:
            verdicts = dict(zip([c["id"] for c in inst["candidates"]],
                                ex.map(lambda c: scorer.verdict(iid, c["patch"]), inst["candidates"])))
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
