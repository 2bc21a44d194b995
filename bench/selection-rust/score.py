#!/usr/bin/env python3
"""Ground truth for (instance, patch) of the Rust selection benchmark, outside baton.

    python3 score.py --instances I --oracle O [--cache DIR] [--snapshots DIR] [--only ID ...]
                     [--timeout 1800] [--rescore] [--out FILE]        # every candidate, + agreement
    python3 score.py --instances I --oracle O --only ID --patch FILE   # one verdict, as JSON

One run of a patch: a clean working copy of the repository at base_commit (git clone --shared
of the snapshot, one per repository under <cache>/work/score-<k>/, so that the per-repository
target directory rebuilds only what changed); the patch applied (git apply, git apply
--reject, patch --fuzz=5, as in ../selection); then the instance's test patch applied on top
**hunk by hunk** (git apply, then patch --fuzz; a source file is never restored: Rust keeps unit
tests in the source files the candidate changed; only a test-only file -- under tests/, or a
tests.rs module -- whose hunk conflicts with the candidate's own edits to it is put back to the
base before its hunks are applied, as SWE-bench does with test files); then the instance's pinned Cargo.lock
written; then its test commands (`cargo test --no-fail-fast <features> <targets>` per crate,
fixed at build time, `nice -n 15`) with the shared CARGO_HOME offline, the repository's
CARGO_TARGET_DIR and RUSTFLAGS=--cap-lints=warn; the log parsed with the libtest parser.
A run that exceeds --timeout is stopped (its whole process group killed).

A candidate resolves the instance iff the patch applied, every test hunk applied, and every
FAIL_TO_PASS test passes and every PASS_TO_PASS test passes (ignored counts as skipped) -- the
rule of ../selection/common.py.

Runs are cached in <cache>/verdicts/<id>/<sha256 of patch>[.runN].json with the raw test
statuses and a key of what was run (test patch, commands, lock), so a cache entry is reused only
for the same procedure, and `resolved` is recomputed from the statuses against the oracle's
current FAIL_TO_PASS / PASS_TO_PASS. Test logs are kept beside them (.log). build.py uses the
same runs for the before/after states of the ground truth (the empty patch and the fix's source
part, twice each).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rustbench as R  # noqa: E402
from rustbench import C  # noqa: E402

SCORER_VERSION = 1  # bump when the procedure changes: cached runs of other versions are redone


def spec_key(spec: dict, lock: dict) -> str:
    """What a cached run depends on besides the patch."""
    blob = json.dumps([SCORER_VERSION, spec.get("test_patch"), spec.get("test_cmds"), spec.get("features"),
                       sorted(lock.get("files", {}).items())], sort_keys=True)
    return C.sha256_text(blob)[:20]


class Scorer:
    def __init__(self, cache: Path, snapshots: Path, timeout: float = 1800.0, rescore: bool = False):
        self.cache = Path(cache)
        self.snapshots = Path(snapshots)
        self.timeout = timeout
        self.rescore = rescore
        self._snaps: dict[str, Path] = {}
        # one working-copy slot per process: the first free <cache>/work/score-<k> (flock-ed for
        # the life of the process, so build.py and harness.py may share one cache)
        (self.cache / "work").mkdir(parents=True, exist_ok=True)
        k = 0
        while True:
            fd = os.open(self.cache / "work" / f"score-{k}.lock", os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd, self.slot = fd, k
                break
            except OSError:
                os.close(fd)
                k += 1

    def snapshot(self, repo: str) -> Path:
        if repo not in self._snaps:
            self._snaps[repo] = C.find_snapshot(self.snapshots, repo)
        return self._snaps[repo]

    def workdir(self, repo: str) -> Path:
        return self.cache / "work" / f"score-{self.slot}" / R.REPOS.get(repo, repo.replace("/", "+"))

    def cache_path(self, iid: str, patch: str, run: int = 0) -> Path:
        sha = C.sha256_text(patch)
        return self.cache / "verdicts" / iid / (f"{sha}.json" if run == 0 else f"{sha}.run{run}.json")

    # ------------------------------------------------------------------ one run
    def run(self, inst: dict, spec: dict, patch: str, run: int = 0) -> dict:
        """Test statuses of `patch` (+ the test hunks) on the instance, cached.
        `spec`: test_patch and either test_cmds (fixed) or features (commands computed from the
        tree, for the first run of the fixed tree at build time)."""
        iid = inst["instance_id"]
        lock = R.load_lock(self.cache, iid)
        key = spec_key(spec, lock)
        p = self.cache_path(iid, patch, run)
        if not self.rescore and p.exists():
            try:
                v = json.loads(p.read_text())
                # a run that stopped at a test hunk is redone when the hunk policy changed
                stale = v.get("test_hunks_failed") and v.get("hunk_policy") != R.HUNK_POLICY
                if v.get("key") == key and not stale:
                    v["cached"] = True
                    return v
            except ValueError:
                pass
        v = self._run(inst, spec, patch, run, lock, key)
        if not v.get("infra_error"):
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(v, indent=1))
            tmp.replace(p)
        v["cached"] = False
        return v

    def _run(self, inst: dict, spec: dict, patch: str, run: int, lock: dict, key: str) -> dict:
        iid, repo = inst["instance_id"], inst["repo"]
        sha = C.sha256_text(patch)
        v: dict = {"instance_id": iid, "patch_sha256": sha, "run": run, "key": key,
                   "scorer_version": SCORER_VERSION, "applied": None, "apply_method": None,
                   "test_hunks_failed": [], "timed_out": False, "test_rc": None, "build_failed": False,
                   "needs_nightly": False, "status": {}, "seconds": 0.0, "infra_error": None, "log": None}
        t0 = time.monotonic()
        try:
            wd = C.prepare_worktree(self.snapshot(repo), self.workdir(repo), inst["base_commit"])
            if patch.strip():
                ok, how = C.apply_patch(wd, patch)
                v["applied"], v["apply_method"] = ok, how if ok else None
                if not ok:
                    v["apply_error"] = how[-2000:]
                    return v
            else:
                v["applied"], v["apply_method"] = True, "empty"
            v["hunk_policy"], v["restored_test_files"] = R.HUNK_POLICY, []
            v["test_hunks_failed"] = R.apply_hunks(wd, spec["test_patch"], v["restored_test_files"])
            if v["test_hunks_failed"]:
                return v
            R.write_lock_files(wd, lock)
            cmds = spec.get("test_cmds")
            if cmds is None:
                cmds = R.test_commands(wd, spec["test_patch"], spec.get("features", ""))
            v["test_cmds"] = cmds
            if not cmds:
                v["infra_error"] = "no test command for this test patch"
                return v
            logp = self.cache_path(iid, patch, run).with_suffix(".log")
            rc, out, secs = C.run_shell(R.shell_for(cmds), wd, R.cargo_env(self.cache, repo), self.timeout, logp)
            v["log"], v["test_rc"], v["test_seconds"] = str(logp), rc, round(secs, 1)
            v["timed_out"] = rc is None
            v["status"] = R.parse_libtest(out)
            v["build_failed"] = R.build_failed(out)
            v["needs_nightly"] = R.needs_nightly(out)
        except Exception as e:  # infrastructure: reported, not cached
            v["infra_error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}"
        finally:
            v["seconds"] = round(time.monotonic() - t0, 1)
        return v

    # ------------------------------------------------------------------ verdict
    def verdict(self, inst: dict, orc: dict, patch: str) -> dict:
        spec = {"test_patch": orc["test_patch"], "test_cmds": orc["test_cmds"]}
        v = dict(self.run(inst, spec, patch))
        res, bad_f, bad_p = C.resolved(v.get("status", {}), orc["FAIL_TO_PASS"], orc["PASS_TO_PASS"])
        v["resolved"] = bool(v.get("applied") and not v.get("test_hunks_failed") and not v.get("timed_out")
                             and not v.get("infra_error") and res)
        v["f2p_failed"], v["p2p_failed"] = bad_f[:20], bad_p[:20]
        v["n_parsed"] = len(v.get("status", {}))
        return v


def fmt(v: dict) -> str:
    if v.get("infra_error"):
        return "INFRA-ERROR"
    if not v.get("applied"):
        return "no-apply"
    if v.get("test_hunks_failed"):
        return "tests-conflict"
    if v.get("timed_out"):
        return "timeout"
    return "resolved" if v["resolved"] else "unresolved"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", required=True)
    ap.add_argument("--oracle", required=True)
    ap.add_argument("--snapshots", default=str(R.DEFAULT_SNAPSHOTS))
    ap.add_argument("--cache", default=str(R.DEFAULT_CACHE))
    ap.add_argument("--only", nargs="*", default=[])
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per test run (default 1800)")
    ap.add_argument("--patch", help="score this patch file (with one --only ID)")
    ap.add_argument("--rescore", action="store_true", help="ignore cached runs")
    ap.add_argument("--out", help="write all verdicts (JSON) here")
    a = ap.parse_args()
    instances = C.load_instances(a.instances)
    oracle = C.load_oracle(a.oracle)
    ids = [i for i in instances if not a.only or i in a.only]
    scorer = Scorer(Path(a.cache).expanduser(), Path(a.snapshots), a.timeout, a.rescore)
    if a.patch:
        if len(ids) != 1:
            ap.error("--patch needs exactly one --only ID")
        v = scorer.verdict(instances[ids[0]], oracle[ids[0]], Path(a.patch).read_text())
        v.pop("status", None)
        print(json.dumps(v, indent=1))
        return 0
    results, t0 = [], time.monotonic()
    jobs = [(iid, "gold", oracle[iid]["gold_patch"], True) for iid in ids]
    jobs += [(iid, c["id"], c["patch"], oracle[iid].get("published_label", {}).get(c["id"]))
             for iid in ids for c in instances[iid]["candidates"]]
    jobs.sort(key=lambda j: j[0])
    for k, (iid, cid, patch, label) in enumerate(jobs, 1):
        v = scorer.verdict(instances[iid], oracle[iid], patch)
        v.pop("status", None)
        v.update(candidate=cid, published=label, stored=oracle[iid].get("label", {}).get(cid))
        results.append(v)
        agree = "" if label is None else ("agree" if v["resolved"] == label else "DISAGREE")
        C.log(f"[{k}/{len(jobs)}] {iid} {cid:4} {fmt(v):14} published={label!s:5} {agree:8} "
              f"{v['seconds']:7.1f}s{' (cached)' if v.get('cached') else ''}")
    cands = [r for r in results if r["candidate"] != "gold"]
    pub = [r for r in cands if r["published"] is not None and not r.get("infra_error")]
    agree = [r for r in pub if r["resolved"] == r["published"]]
    stored = [r for r in cands if r["stored"] is not None and r["resolved"] == r["stored"]]
    gold_ok = [r for r in results if r["candidate"] == "gold" and r["resolved"]]
    print(f"\nagreement with published labels: {len(agree)}/{len(pub)}; with the oracle's labels: "
          f"{len(stored)}/{len(cands)}; gold resolves {len(gold_ok)}/{len(ids)}; wall {time.monotonic() - t0:.0f} s")
    for r in pub:
        if r not in agree:
            print(f"  DISAGREE {r['instance_id']} {r['candidate']}: published={r['published']} local={r['resolved']} "
                  f"({fmt(r)}; f2p_failed={r['f2p_failed'][:3]} p2p_failed={r['p2p_failed'][:3]}) log={r.get('log')}")
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
