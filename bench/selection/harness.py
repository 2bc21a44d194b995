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
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
from score import Scorer  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_BATON = HERE.parent.parent / "target" / "release" / "baton"


def agent_to_candidate(agent: str | None) -> str | None:
    if not agent:
        return None
    a = agent.strip()
    if a.startswith("patch:"):
        a = a[len("patch:"):]
    a = os.path.basename(a)
    return a[:-5] if a.endswith(".diff") else a


def run_baton(args: argparse.Namespace, inst: dict, envdir: Path, rundir: Path) -> dict:
    iid, repo = inst["instance_id"], inst["repo"]
    idir = rundir / iid
    inputs = idir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    task = inputs / "task.md"
    task.write_text(inst["problem_statement"], encoding="utf-8")
    agents = []
    for c in inst["candidates"]:
        p = inputs / f"{c['id']}.diff"
        p.write_text(c["patch"], encoding="utf-8")
        agents += ["--agent", f"patch:{p.resolve()}"]
    wd = C.prepare_worktree(C.find_snapshot(args.snapshots, repo), idir / "repo", inst["base_commit"])
    C.git("checkout", "-q", "-B", "main", cwd=wd)  # on a branch, as a user's repository would be
    config = (HERE / "configs" / f"{C.REPO_SHORT[repo]}.toml").resolve()
    env = C.env_vars(envdir)
    # baton keeps candidate workspaces by default (run.keep_workspaces); put them
    # next to the instance's files so they are removed with it
    env["BATON_WORKSPACE_ROOT"] = str((idir / "workspaces").resolve())
    cmd = [str(args.baton), "run", "--task-file", str(task.resolve()), *agents,
           "--config", str(config), "--json", "--jobs", str(args.jobs)]
    rec: dict = {"instance_id": iid, "cmd": " ".join(C.sh_quote(x) for x in cmd), "workdir": str(wd)}
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, cwd=wd, env=env, capture_output=True, text=True, timeout=args.baton_timeout)
        rec["exit"], out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        rec["exit"], out, err = None, (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), \
            f"timed out after {args.baton_timeout} s"
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
            s = subprocess.run([str(args.baton), "show", "--json"], cwd=wd, env=env, capture_output=True,
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
    if not args.keep:
        # `baton clean` unmounts overlay workspaces; deleting the directories alone would leave
        # their mounts behind
        try:
            subprocess.run([str(args.baton), "clean", "-q"], cwd=wd, env=env, capture_output=True, timeout=300)
        except (subprocess.TimeoutExpired, OSError):
            pass
        shutil.rmtree(idir / "repo", ignore_errors=True)
        shutil.rmtree(idir / "workspaces", ignore_errors=True)
    return rec


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
        rows.append(rec)
        status = ("ERROR" if rec["exit"] not in (0, 4) else "abstain" if rec["exit"] == 4 else
                  f"pick {rec['pick']} -> {'resolved' if rec['pick_resolved'] else 'NOT resolved'}")
        C.log(f"[{n}/{len(ids)}] {iid}: exit={rec['exit']} {status} ({rec['n_resolving']}/{rec['n_candidates']} resolve) "
              f"{rec['seconds']} s" + (f"  !! {rec['anomaly']}" if rec.get("anomaly") else ""))
        if rec["exit"] not in (0, 4):
            print("    " + (rec["stderr_tail"] or "(no stderr)").replace("\n", "\n    "), flush=True)
    wall = time.monotonic() - t_all

    summary = summarize(rows, wall)
    print_table(rows, summary)
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "instances": rows, "run_dir": str(rundir),
                                              "baton": str(args.baton)}, indent=1, default=str))
        print(f"\nresults: {args.out}")
    return 0


def summarize(rows: list[dict], wall: float) -> dict:
    n = len(rows)
    oracle = sum(1 for r in rows if r["n_resolving"] > 0)
    selected = sum(1 for r in rows if r["pick_resolved"])
    mixed = [r for r in rows if r["kind"] == "mixed"]
    sel_mixed = sum(1 for r in mixed if r["pick_resolved"])
    random_exp = sum(r["n_resolving"] / r["n_candidates"] for r in rows if r["n_candidates"])
    random_mixed = sum(r["n_resolving"] / r["n_candidates"] for r in mixed)
    per_source: dict[str, int] = {}
    per_source_mixed: dict[str, int] = {}
    for r in rows:
        for cid, src in r["sources"].items():
            per_source.setdefault(src, 0)
            per_source_mixed.setdefault(src, 0)
            if r["resolved"].get(cid):
                per_source[src] += 1
                if r["kind"] == "mixed":
                    per_source_mixed[src] += 1
    best = max(per_source.items(), key=lambda kv: kv[1]) if per_source else ("-", 0)
    abst = [r for r in rows if r["exit"] == 4]
    errors = [r for r in rows if r["exit"] not in (0, 4)]
    ver = [r["verifications"] for r in rows if r["exit"] in (0, 4)]
    ncand = sum(r["n_candidates"] for r in rows if r["exit"] in (0, 4))
    kind_mismatch = [r["instance_id"] for r in rows if r.get("oracle_kind") and r["oracle_kind"] != r["kind"]]
    return {
        "instances": n, "oracle": oracle, "selected": selected,
        "selected_over_oracle": selected / oracle if oracle else None,
        "mixed": len(mixed), "selected_mixed": sel_mixed,
        "contested_accuracy": sel_mixed / len(mixed) if mixed else None,
        "random_expected": random_exp, "random_over_oracle": random_exp / oracle if oracle else None,
        "random_contested": random_mixed / len(mixed) if mixed else None,
        "best_source": best[0], "best_source_selected": best[1],
        "best_source_over_oracle": best[1] / oracle if oracle else None,
        "best_source_contested": per_source_mixed.get(best[0], 0) / len(mixed) if mixed else None,
        "abstentions": len(abst), "abstentions_without_resolving": sum(1 for r in abst if r["n_resolving"] == 0),
        "errors": len(errors), "error_ids": [r["instance_id"] for r in errors],
        "wall_seconds": round(wall, 1), "baton_seconds": round(sum(r["seconds"] for r in rows), 1),
        "verifications": (sum(ver) if ver and all(v is not None for v in ver) else None),
        "candidates": ncand,
        "score_infra_errors": sum(len(r["score_infra_errors"]) for r in rows),
        "kind_differs_from_oracle": kind_mismatch,
        "per_source": per_source,
        # picks by the confidence baton gave them: how often each kind was right
        "by_confidence": {
            level: {"picks": sum(1 for r in rows if r["pick"] and r.get("confidence") == level),
                    "right": sum(1 for r in rows if r["pick_resolved"] and r.get("confidence") == level)}
            for level in ("high", "medium", "low")
        },
    }


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def print_table(rows: list[dict], s: dict) -> None:
    print()
    print(f"{'instance':34} {'kind':12} {'pick':7} {'resolved?':9} {'resolving':>9} {'exit':>4} {'baton s':>8} {'verif':>5}  confidence (deciding evidence)")
    for r in rows:
        pick = r["pick"] or ("(abstain)" if r["exit"] == 4 else "(error)" if r["exit"] not in (0, 4) else "-")
        ok = "-" if r["pick"] is None else ("yes" if r["pick_resolved"] else "NO")
        print(f"{r['instance_id']:34} {r['kind']:12} {pick:7} {ok:9} {r['n_resolving']:>4}/{r['n_candidates']:<4} "
              f"{r['exit'] if r['exit'] is not None else 'T/O':>4} {r['seconds']:>8.1f} "
              f"{r['verifications'] if r['verifications'] is not None else 'n/a':>5}"
              + (f"  {r['confidence']} ({r['decided_by']})" if r.get("confidence") else "")
              + (f"  !! {r['anomaly']}" if r.get("anomaly") else ""))
    n = s["instances"]
    print()
    print(f"instances                         {n}")
    print(f"oracle (>= 1 candidate resolves)  {s['oracle']}")
    print(f"selected (pick resolves)          {s['selected']}")
    print(f"selected / oracle                 {pct(s['selected_over_oracle'])}")
    print(f"contested accuracy                {s['selected_mixed']}/{s['mixed']} = {pct(s['contested_accuracy'])}   (mixed instances)")
    print(f"random pick (expected)            {s['random_expected']:.1f}   ({pct(s['random_over_oracle'])} of oracle; contested {pct(s['random_contested'])})")
    print(f"best single source                {s['best_source_selected']}   ({s['best_source']}; {pct(s['best_source_over_oracle'])} of oracle; contested {pct(s['best_source_contested'])})")
    print(f"abstentions                       {s['abstentions']}   (of which no candidate resolves: {s['abstentions_without_resolving']})")
    print(f"errors                            {s['errors']}" + (f"   {', '.join(s['error_ids'])}" if s["error_ids"] else ""))
    print(f"wall time                         {s['wall_seconds']:.0f} s   (baton: {s['baton_seconds']:.0f} s)")
    conf = "; ".join(f"{k} {v['right']}/{v['picks']}" for k, v in s["by_confidence"].items() if v["picks"])
    print(f"picks right, by baton's confidence {conf or 'n/a'}")
    ver = "n/a" if s["verifications"] is None else str(s["verifications"])
    print(f"verifications run vs candidates   {ver} / {s['candidates']}")
    if s["score_infra_errors"]:
        print(f"!! ground truth could not be computed for {s['score_infra_errors']} candidate(s); counted as not resolving")
    if s["kind_differs_from_oracle"]:
        print(f"!! recomputed kind differs from the oracle's for {', '.join(s['kind_differs_from_oracle'])}")


if __name__ == "__main__":
    sys.exit(main())
