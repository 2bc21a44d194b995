"""The summary table of the selection benchmarks, shared by bench/selection/harness.py (Python,
SWE-bench Lite) and bench/selection-rust/harness.py (Rust-SWE-bench), so that both report the
same figures computed the same way.

Input: one row per instance, as the harnesses build them (keys: instance_id, kind, pick,
pick_resolved, n_resolving, n_candidates, resolved {candidate: bool}, sources {candidate:
system}, exit, seconds, verifications, confidence, decided_by, anomaly, score_infra_errors,
oracle_kind). Proportions of picks come with a 95% Wilson score interval: with a few dozen
instances a bare ratio hides how little it can tell apart.
"""

from __future__ import annotations

import math


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of k successes in n trials (None when n == 0)."""
    if n <= 0:
        return None
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


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
    picks = [r for r in rows if r["pick"]]
    picks_right = sum(1 for r in picks if r["pick_resolved"])
    ver = [r["verifications"] for r in rows if r["exit"] in (0, 4)]
    ncand = sum(r["n_candidates"] for r in rows if r["exit"] in (0, 4))
    kind_mismatch = [r["instance_id"] for r in rows if r.get("oracle_kind") and r["oracle_kind"] != r["kind"]]
    by_conf = {}
    for level in ("high", "medium", "low"):
        lv = [r for r in picks if r.get("confidence") == level]
        right = sum(1 for r in lv if r["pick_resolved"])
        by_conf[level] = {"picks": len(lv), "right": right, "wilson95": wilson(right, len(lv))}
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
        # precision: of the picks baton made, how many resolve
        "picks": len(picks), "picks_right": picks_right,
        "precision": picks_right / len(picks) if picks else None, "precision_wilson95": wilson(picks_right, len(picks)),
        "abstentions": len(abst),
        "abstentions_without_resolving": sum(1 for r in abst if r["n_resolving"] == 0),
        "abstentions_wrong": sum(1 for r in abst if r["n_resolving"] > 0),
        "errors": len(errors), "error_ids": [r["instance_id"] for r in errors],
        "wall_seconds": round(wall, 1), "baton_seconds": round(sum(r["seconds"] or 0 for r in rows), 1),
        "verifications": (sum(ver) if ver and all(v is not None for v in ver) else None),
        "candidates": ncand,
        "score_infra_errors": sum(len(r["score_infra_errors"]) for r in rows),
        "kind_differs_from_oracle": kind_mismatch,
        "per_source": per_source,
        # picks by the confidence baton gave them: how often each kind was right
        "by_confidence": by_conf,
    }


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def ci(w: tuple[float, float] | None) -> str:
    return "" if w is None else f" [95% CI {w[0]:.2f}-{w[1]:.2f}]"


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
    print(f"picks right (precision)           {s['picks_right']}/{s['picks']} = {pct(s['precision'])}{ci(s['precision_wilson95'])}")
    print(f"abstentions                       {s['abstentions']}   (right, no candidate resolves: {s['abstentions_without_resolving']}; "
          f"wrong, some candidate resolves: {s['abstentions_wrong']})")
    print(f"errors                            {s['errors']}" + (f"   {', '.join(s['error_ids'])}" if s["error_ids"] else ""))
    print(f"wall time                         {s['wall_seconds']:.0f} s   (baton: {s['baton_seconds']:.0f} s)")
    print("picks right, by baton's confidence")
    for k, v in s["by_confidence"].items():
        print(f"  {k:6}                          {v['right']}/{v['picks']}"
              + (f" = {v['right'] / v['picks']:.2f}{ci(v['wilson95'])}" if v["picks"] else ""))
    ver = "n/a" if s["verifications"] is None else str(s["verifications"])
    print(f"verifications run vs candidates   {ver} / {s['candidates']}")
    if s["score_infra_errors"]:
        print(f"!! ground truth could not be computed for {s['score_infra_errors']} candidate(s); counted as not resolving")
    if s["kind_differs_from_oracle"]:
        print(f"!! recomputed kind differs from the oracle's for {', '.join(s['kind_differs_from_oracle'])}")


def main(argv: list[str]) -> int:
    """`python3 bench/selection/summary.py OUT.json ...`: one table from the `--out` files of
    harness runs over disjoint instances (a run split in parts, or resumed with `--only`); an
    instance in two files is refused, since it would be counted twice."""
    import json
    import sys

    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(main.__doc__.strip().split("\n\n")[0].replace("`", ""), file=sys.stderr)
        return 2
    rows: list[dict] = []
    wall = 0.0
    seen: dict[str, str] = {}
    for path in argv[1:]:
        try:
            data = json.loads(open(path).read())
        except (OSError, ValueError) as e:
            print(f"summary: cannot read {path}: {e}", file=sys.stderr)
            return 2
        for r in data.get("instances", []):
            if r["instance_id"] in seen:
                print(f"summary: {r['instance_id']} is in both {seen[r['instance_id']]} and {path}", file=sys.stderr)
                return 2
            seen[r["instance_id"]] = path
            rows.append(r)
        wall += data.get("summary", {}).get("wall_seconds", 0.0)
    rows.sort(key=lambda r: r["instance_id"])
    print_table(rows, summarize(rows, wall))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv))
