#!/usr/bin/env python3
"""Build the Rust selection benchmark from Rust-SWE-bench's published runs and the upstream
repositories' history, for the instance ids in a file.

    python3 build.py --ids /work/shared/bench/selection-rust/dev-ids.txt [--cache DIR]
                     [--snapshots /work/.mirror] [--only ID ...] [--upto recon|lock|truth|labels]
                     [--timeout 1800] [--redo STEP ...] [--out-dir DIR]

Every step of every instance is cached in <cache>/build/<id>/<step>.json (test runs in
<cache>/verdicts/), so the command can be stopped and run again: it goes on where it was.
Steps, per instance:

1. recon (git only, seconds). Candidates: one patch per agent system from the Claude runs and
   one per system from the o4-mini runs (empty patches left out), shuffled under opaque ids
   c01..; their published labels from the runs' reports. The fix: a commit on a branch or tag
   whose subject ends with `(#N)`, else `Merge pull request #N`, else mentions `#N` (N from the
   id), else the pull request's head ref (refs/pull/N/head, for rebase-merged projects); its
   change is diff(first parent, fix) (for a pull head: diff(fork point, head)). The base: the
   commit on the fix's first-parent history, walking down from the fix's parent, whose blobs
   match every candidate's pre-image (`index OLD..` lines); the nearest such commit wins;
   among several fix commits (backports), the one with the nearest base. The fix is split hunk
   by hunk as the dataset did: a hunk whose text (file header included) contains test, tests,
   testing or e2e goes to the test patch, the rest is the gold (source) patch.
2. lock (network). `cargo generate-lockfile` at the base for each workspace the test targets
   live in (and the root), recorded with `rustc -V` in <cache>/locks/<id>/; then `cargo fetch`
   of the base, of the fixed tree and of every candidate that touches a Cargo.toml, into the
   shared <cache>/cargo-home, so every later test run works offline.
3. truth (cargo). The fixed tree (gold + test hunks) is tested with the first feature set of
   the ladder (rustbench.FEATURE_LADDER: every declared feature but debug ones first -- the dataset
   used --all-features --, then fewer) under which
   it builds; its test commands are then fixed. Fixed tree and base + test hunks, twice each;
   a test whose verdict differs between two runs of one tree is flaky and left out.
   FAIL_TO_PASS: passes in both fixed runs and does not pass before (a test that does not
   compile before the fix counts as failing); PASS_TO_PASS: passes in all four.
4. labels (cargo). Every candidate through score.py's procedure (candidate, then the test
   hunks on top one by one, then the pinned lock), compared with the published labels.

Dropped instances get exactly one reason (counted and printed): the fix commit cannot be found;
no base matches every pre-image; it needs nightly; it does not build with today's toolchain;
FAIL_TO_PASS comes out empty (also: the fix's source part or its test hunks do not apply to the
base); local and published labels disagree on more than one candidate.

Output (the kept instances whose steps are done, whatever --only said): <out-dir>/instances.jsonl
(what baton may see: instance_id, repo, base_commit, version, problem_statement, candidates)
and <out-dir>/oracle.jsonl (scoring only), the format of ../selection's shared README; out-dir
defaults to <cache>/sets/<ids file stem>. The data stays in the cache: the dataset's licence is
unknown.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rustbench as R  # noqa: E402
from rustbench import C  # noqa: E402
from score import Scorer, spec_key  # noqa: E402

STEPS = ["recon", "lock", "truth", "labels"]
REASONS = {
    "no-fix": "the fix commit cannot be found",
    "no-base": "no base matches every pre-image",
    "nightly": "it needs nightly",
    "no-build": "it does not build with today's toolchain",
    "no-f2p": "FAIL_TO_PASS comes out empty",
    "disagree": "local and published labels disagree on more than one candidate",
    "no-candidates": "no candidate patch in the Claude and o4-mini runs (not in the issue's list)",
}
MAX_WALK = 3000  # first-parent commits searched for a base


def drop(reason: str, detail: str) -> dict:
    return {"reason": reason, "detail": detail[:2000]}


# ------------------------------------------------------------------ step 1: recon

class History:
    """Subjects of one repository's branches and tags, read once."""

    def __init__(self, gitdir: Path):
        self.gitdir = gitdir
        out = C.git("log", "--branches", "--tags", "--format=%H%x00%s", cwd=gitdir, timeout=600).stdout
        self.subjects = [tuple(l.split("\x00", 1)) for l in out.splitlines() if "\x00" in l]
        self.default = C.git("rev-parse", "HEAD", cwd=gitdir).stdout.strip()

    def fix_candidates(self, n: int) -> list[tuple[str, str]]:
        """[(how found, commit)] best first."""
        tiers: list[tuple[str, str]] = []
        seen = set()
        pats = [("(#N) in subject", re.compile(rf"\(#{n}\)\s*$")),
                ("Merge pull request #N", re.compile(rf"^Merge pull request #{n}\b")),
                ("#N in subject", re.compile(rf"#{n}\b"))]
        for how, pat in pats:
            for sha, subj in self.subjects:
                if sha not in seen and pat.search(subj):
                    tiers.append((how, sha))
                    seen.add(sha)
        r = C.git("rev-parse", "--verify", "-q", f"refs/pull/{n}/head^{{commit}}", cwd=self.gitdir, check=False)
        if r.returncode == 0 and r.stdout.strip() not in seen:
            tiers.append(("pull request head", r.stdout.strip()))
        return tiers


def find_base(gitdir: Path, start: str, wanted: dict[str, str]) -> tuple[str | None, int]:
    """Nearest commit on `start`'s first-parent history (start included) whose blob of every
    path in `wanted` starts with the wanted abbreviated id. (commit, distance) or (None, -1)."""
    commits = C.git("rev-list", "--first-parent", f"--max-count={MAX_WALK}", start, cwd=gitdir).stdout.split()
    if not wanted:
        return (commits[0], 0) if commits else (None, -1)
    paths = sorted(wanted)
    for lo in range(0, len(commits), 200):
        chunk = commits[lo:lo + 200]
        query = "".join(f"{c}:{p}\n" for c in chunk for p in paths)
        r = subprocess.run(["git", "cat-file", "--batch-check=%(objectname)"], cwd=gitdir, input=query,
                           text=True, capture_output=True, check=True)
        lines = r.stdout.splitlines()
        for i, c in enumerate(chunk):
            got = lines[i * len(paths):(i + 1) * len(paths)]
            if all(g.startswith(wanted[p]) for g, p in zip(got, paths)):
                return c, lo + i
    return None, -1


def existing_objects(gitdir: Path, ids: set[str]) -> set[str]:
    """The abbreviated object ids of `ids` that name an object of the repository."""
    ids = sorted(ids)
    if not ids:
        return set()
    r = subprocess.run(["git", "cat-file", "--batch-check=%(objecttype)"], cwd=gitdir, input="".join(i + "\n" for i in ids),
                       text=True, capture_output=True, check=True)
    return {i for i, line in zip(ids, r.stdout.splitlines()) if line.strip() in ("blob", "tree", "commit", "tag")}


def step_recon(iid: str, ds: R.Dataset, snapshots: Path, histories: dict) -> dict:
    repo = R.instance_repo(iid)
    n = R.instance_number(iid)
    rec: dict = {"instance_id": iid, "repo": repo}
    if repo not in R.REPOS:
        rec["warning"] = f"{repo} is not one of the benchmark's repositories (no config for it)"
    gitdir = C.find_snapshot(snapshots, repo)  # FileNotFoundError: reported by the caller
    cands = []
    for fw in R.FRAMEWORKS:
        for model in R.MODELS:
            p = ds.predictions(fw, model).get(iid) or ""
            if p.strip():
                cands.append({"source": f"{fw}-{model}", "patch": R.normalize_patch(p),
                              "published": ds.published_label(fw, model, iid)})
    rng = random.Random(f"baton-bench-rust:{iid}")
    rng.shuffle(cands)
    for k, c in enumerate(cands, 1):
        c["id"] = f"c{k:02d}"
    rec["candidates"] = cands
    rec["problem_statement"] = ds.issue_texts().get(iid)
    rec["dataset_toolchain_group"] = ds.toolchain_groups().get(iid)
    if not cands:
        rec["drop"] = drop("no-candidates", "no non-empty patch in the 10 runs")
        return rec
    if rec["problem_statement"] is None:
        rec["warning"] = "no issue text in the dataset snapshot"
        rec["problem_statement"] = ""
    wanted: dict[str, str] = {}
    conflict = []
    # some runs (Agentless) write `index` lines that name no object of the repository: those
    # say nothing about the base and are left out (whether such a patch applies is the
    # scorer's business)
    pre = {c["id"]: R.preimage_blobs(c["patch"]) for c in cands}
    known = existing_objects(gitdir, {b for d in pre.values() for b in d.values()})
    rec["ignored_preimages"] = {c["source"]: sorted(p for p, b in pre[c["id"]].items() if b not in known)
                                for c in cands if any(b not in known for b in pre[c["id"]].values())}
    for c in cands:
        for path, blob in pre[c["id"]].items():
            if blob not in known:
                continue
            short = min(len(blob), len(wanted.get(path, blob)))
            if path in wanted and wanted[path][:short] != blob[:short]:
                conflict.append(f"{path}: {wanted[path]} vs {blob} ({c['source']})")
            if len(blob) > len(wanted.get(path, "")):
                wanted[path] = blob
    rec["preimages"] = wanted
    if repo not in histories:
        histories[repo] = History(gitdir)
    hist = histories[repo]
    fixes = hist.fix_candidates(n)
    rec["fix_candidates"] = [f"{how}: {sha[:12]}" for how, sha in fixes]
    if not fixes:
        rec["drop"] = drop("no-fix", f"no commit subject with (#{n}) / Merge pull request #{n} / #{n}, no refs/pull/{n}/head")
        return rec
    if conflict:
        rec["drop"] = drop("no-base", "candidates disagree on a pre-image: " + "; ".join(conflict[:3]))
        return rec
    best = None
    for tier in dict.fromkeys(how for how, _ in fixes):
        found = []
        for how, sha in fixes:
            if how != tier:
                continue
            if how == "pull request head":
                parent = C.git("merge-base", sha, hist.default, cwd=gitdir, check=False).stdout.strip()
            else:
                parent = C.git("rev-parse", f"{sha}^1", cwd=gitdir, check=False).stdout.strip()
            if not parent:
                continue
            base, dist = find_base(gitdir, parent, wanted)
            if base:
                found.append((dist, sha, parent, base, how))
        if found:
            best = min(found, key=lambda t: t[0])
            break
    if best is None:
        rec["drop"] = drop("no-base", f"no commit within {MAX_WALK} first-parent commits below "
                           f"{', '.join(s[:10] for _, s in fixes)} matches {len(wanted)} pre-image blob(s)")
        return rec
    dist, fix, parent, base, how = best
    rec.update(fix_commit=fix, fix_parent=parent, fix_found_by=how, base_commit=base, base_distance=dist)
    full = C.git("diff", "--no-renames", "--binary", "--no-color", parent, fix, cwd=gitdir, timeout=300).stdout
    src, tst = R.split_fix(full)
    rec.update(fix_patch=full, gold_patch=src, test_patch=tst)
    toml = C.git("show", f"{base}:Cargo.toml", cwd=gitdir, check=False).stdout
    try:
        t = R.tomllib.loads(toml) if toml else {}
    except R.tomllib.TOMLDecodeError:
        t = {}
    v = (t.get("package") or {}).get("version") or ((t.get("workspace") or {}).get("package") or {}).get("version")
    rec["version"] = v if isinstance(v, str) else ""
    return rec


# ------------------------------------------------------------------ step 2: lock

def cargo(args: list[str], cwd: Path, env: dict, timeout: float = 900) -> tuple[int | None, str]:
    rc, out, _ = C.run_shell("nice -n 15 cargo " + " ".join(C.sh_quote(a) for a in args), cwd, env, timeout)
    return rc, out


def step_lock(rec: dict, scorer: Scorer, cache: Path) -> dict:
    iid, repo = rec["instance_id"], rec["repo"]
    out: dict = {"instance_id": iid}
    env = R.cargo_env(cache, repo, offline=False)
    wd = scorer.workdir(repo)
    snap = scorer.snapshot(repo)
    # which workspaces: those of the crates the test patch touches, and the root's
    C.prepare_worktree(snap, wd, rec["base_commit"])
    if rec["gold_patch"].strip():
        C.apply_patch(wd, rec["gold_patch"])
    R.apply_hunks(wd, rec["test_patch"])
    roots = set()
    for f in R.parse_diff(rec["test_patch"]) + R.parse_diff(rec["gold_patch"]):
        crate = R.crate_dir_of(wd, f.path)
        if crate is not None:
            roots.add(R.workspace_root(wd, crate))
    C.prepare_worktree(snap, wd, rec["base_commit"])
    if (wd / "Cargo.toml").exists():
        roots.add(R.workspace_root(wd, ""))
    roots = sorted(r for r in roots if (wd / r / "Cargo.toml").exists())
    out["roots"] = roots
    if not roots:
        out["drop"] = drop("no-build", "no Cargo.toml at the base for the test targets")
        return out
    ldir = R.lock_dir(cache, iid)
    R.rmtree(ldir)
    paths = []
    for r in roots:
        rc, log = cargo(["generate-lockfile"], wd / r, env)
        if rc != 0:
            out["drop"] = drop("nightly" if R.needs_nightly(log) else "no-build",
                               f"cargo generate-lockfile in /{r}: {log.strip()[-1500:]}")
            return out
        rel = f"{r}/Cargo.lock" if r else "Cargo.lock"
        (ldir / "tree" / rel).parent.mkdir(parents=True, exist_ok=True)
        (ldir / "tree" / rel).write_text((wd / rel).read_text())
        paths.append(rel)
    meta = {"paths": paths, "toolchain": R.toolchain(env), "generated": time.strftime("%Y-%m-%d %H:%M:%S")}
    (ldir / "lock.json").write_text(json.dumps(meta, indent=1))
    (ldir / "rustc-version.txt").write_text(meta["toolchain"].split(";")[0] + "\n")
    out.update(meta)
    lock = R.load_lock(cache, iid)
    # fetch for every tree a test run may build: base, the fixed tree, candidates with manifests
    trees = [("base", "", False), ("fixed", rec["gold_patch"], True)]
    trees += [(c["id"], c["patch"], True) for c in rec["candidates"]
              if any(f.path.endswith("Cargo.toml") for f in R.parse_diff(c["patch"]))]
    fetched = {}
    for name, patch, tests in trees:
        C.prepare_worktree(snap, wd, rec["base_commit"])
        if patch.strip() and not C.apply_patch(wd, patch)[0]:
            fetched[name] = "patch does not apply"
            continue
        if tests:
            R.apply_hunks(wd, rec["test_patch"])
        R.write_lock_files(wd, lock)
        res = []
        for r in roots:
            rc, log = cargo(["fetch"], wd / r, env)
            res.append("ok" if rc == 0 else f"failed: {log.strip().splitlines()[-1] if log.strip() else rc}")
        fetched[name] = "; ".join(res)
    out["fetch"] = fetched
    if not fetched["base"].startswith("ok"):
        out["drop"] = drop("no-build", f"cargo fetch at the base: {fetched['base']}")
    return out


# ------------------------------------------------------------------ step 3: truth

def step_truth(rec: dict, scorer: Scorer, cache: Path) -> dict:
    iid, repo = rec["instance_id"], rec["repo"]
    inst = {"instance_id": iid, "repo": repo, "base_commit": rec["base_commit"]}
    out: dict = {"instance_id": iid, "tries": []}
    tp, src = rec["test_patch"], rec["gold_patch"]
    if not tp.strip():
        out["drop"] = drop("no-f2p", "the fix has no test hunk")
        return out
    ladder = R.FEATURE_LADDER.get(repo, R.DEFAULT_LADDER)
    chosen = None
    for feat in ladder:
        v = scorer.run(inst, {"test_patch": tp, "features": feat}, src, 0)
        out["tries"].append({"features": feat, "applied": v.get("applied"), "hunks_failed": v.get("test_hunks_failed"),
                             "build_failed": v.get("build_failed"), "needs_nightly": v.get("needs_nightly"),
                             "tests": len(v.get("status", {})), "seconds": v.get("seconds"), "log": v.get("log"),
                             "infra_error": v.get("infra_error")})
        if v.get("infra_error"):
            raise RuntimeError(v["infra_error"])
        if v.get("log") and Path(v["log"]).exists():  # the next rung writes the same log path
            keep = cache / "build" / iid / f"truth-rung{len(out['tries'])}.log"
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_bytes(Path(v["log"]).read_bytes())
            out["tries"][-1]["log"] = str(keep)
        if not v.get("applied"):
            out["drop"] = drop("no-f2p", "the fix's source part does not apply to the base: " + v.get("apply_error", "")[-800:])
            return out
        if v.get("test_hunks_failed"):
            out["drop"] = drop("no-f2p", "test hunks do not apply to the fixed base: " + "; ".join(v["test_hunks_failed"][:5]))
            return out
        if not v.get("build_failed") and not v.get("timed_out") and v.get("status"):
            chosen = (feat, v)
            break
    if chosen is None:
        nightly = any(t.get("needs_nightly") for t in out["tries"])
        out["drop"] = drop("nightly" if nightly else "no-build",
                           f"the fixed tree's tests do not build (or ran nothing) with {ladder}; logs: "
                           + ", ".join(str(t.get("log")) for t in out["tries"]))
        return out
    feat, after0 = chosen
    spec = {"test_patch": tp, "test_cmds": after0["test_cmds"]}
    lock = R.load_lock(cache, iid)
    # the chosen run is the fixed tree's first run under the fixed commands: keep it under that key
    after0 = dict(after0, key=spec_key(spec, lock))
    after0.pop("cached", None)
    scorer.cache_path(iid, src, 0).write_text(json.dumps(after0, indent=1))
    after1 = scorer.run(inst, spec, src, 1)
    before0 = scorer.run(inst, spec, "", 0)
    before1 = scorer.run(inst, spec, "", 1)
    for v in (after1, before0, before1):
        if v.get("infra_error"):
            raise RuntimeError(v["infra_error"])
    if before0.get("test_hunks_failed"):
        out["drop"] = drop("no-f2p", "test hunks do not apply to the base: " + "; ".join(before0["test_hunks_failed"][:5]))
        return out
    a0, a1, b0, b1 = (v.get("status", {}) for v in (after0, after1, before0, before1))
    names = set(a0) | set(a1) | set(b0) | set(b1)
    flaky = sorted(t for t in names if a0.get(t) != a1.get(t) or b0.get(t) != b1.get(t))
    f2p = sorted(t for t in names if t not in flaky and a0.get(t) == "pass" and b0.get(t) != "pass")
    p2p = sorted(t for t in names if t not in flaky and a0.get(t) == "pass" and b0.get(t) == "pass")
    out.update(features=feat, test_cmds=after0["test_cmds"], FAIL_TO_PASS=f2p, PASS_TO_PASS=p2p, flaky=flaky,
               after_failing=sorted(t for t in a0 if a0[t] in ("fail", "error") and t not in flaky),
               before_build_failed=bool(before0.get("build_failed")),
               timed_out=[n for n, v in (("after0", after0), ("after1", after1), ("before0", before0),
                                         ("before1", before1)) if v.get("timed_out")],
               seconds={n: v.get("test_seconds") for n, v in (("after0", after0), ("after1", after1),
                                                              ("before0", before0), ("before1", before1))},
               logs={"after": after0.get("log"), "before": before0.get("log")})
    if not f2p:
        out["drop"] = drop("no-f2p", f"{len(p2p)} tests pass before and after, none fails before and passes after "
                           f"({len(flaky)} flaky)")
    return out


# ------------------------------------------------------------------ step 4: labels

def step_labels(rec: dict, truth: dict, scorer: Scorer) -> dict:
    iid = rec["instance_id"]
    inst = {"instance_id": iid, "repo": rec["repo"], "base_commit": rec["base_commit"]}
    orc = {"test_patch": rec["test_patch"], "test_cmds": truth["test_cmds"],
           "FAIL_TO_PASS": truth["FAIL_TO_PASS"], "PASS_TO_PASS": truth["PASS_TO_PASS"]}
    out: dict = {"instance_id": iid, "label": {}, "verdicts": {}}
    for c in rec["candidates"]:
        v = scorer.verdict(inst, orc, c["patch"])
        if v.get("infra_error"):
            raise RuntimeError(f"{c['id']}: {v['infra_error']}")
        out["label"][c["id"]] = v["resolved"]
        out["verdicts"][c["id"]] = {k: v.get(k) for k in ("applied", "apply_method", "test_hunks_failed", "timed_out",
                                                          "build_failed", "f2p_failed", "p2p_failed", "seconds",
                                                          "test_seconds", "log", "cached")}
        C.log(f"    {iid} {c['id']} {c['source']:22} local={v['resolved']!s:5} published={c['published']!s:5} "
              f"{v.get('seconds', 0):6.0f}s{' (cached)' if v.get('cached') else ''}")
    pub = {c["id"]: c["published"] for c in rec["candidates"] if c["published"] is not None}
    dis = sorted(cid for cid, lab in pub.items() if out["label"][cid] != lab)
    out.update(published=pub, disagree=dis, agree=len(pub) - len(dis), compared=len(pub))
    if len(dis) > 1:
        out["drop"] = drop("disagree", f"{len(dis)} of {len(pub)} candidates: {', '.join(dis)}")
    return out


# ------------------------------------------------------------------ driver

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", required=True, help="file with one instance id per line")
    ap.add_argument("--cache", default=str(R.DEFAULT_CACHE))
    ap.add_argument("--snapshots", default=str(R.DEFAULT_SNAPSHOTS))
    ap.add_argument("--only", nargs="*", default=[])
    ap.add_argument("--upto", choices=STEPS, default="labels", help="stop after this step")
    ap.add_argument("--redo", nargs="*", default=[], choices=STEPS, help="recompute these steps (test runs stay cached)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per test run (default 1800)")
    ap.add_argument("--out-dir", help="where instances.jsonl and oracle.jsonl go (default <cache>/sets/<ids stem>)")
    a = ap.parse_args()
    cache = Path(a.cache).expanduser().resolve()
    ids = [l.split("#")[0].strip() for l in Path(a.ids).read_text().splitlines()]
    ids = list(dict.fromkeys(i for i in ids if i))
    work = [i for i in ids if not a.only or i in a.only]
    outdir = Path(a.out_dir) if a.out_dir else cache / "sets" / Path(a.ids).stem
    snapshots = Path(a.snapshots)
    ds = R.Dataset(snapshots)
    scorer = Scorer(cache, snapshots, a.timeout)
    histories: dict = {}
    C.log(f"{len(work)} of {len(ids)} ids; cache {cache}; scorer slot {scorer.slot}")

    redo = set(a.redo)
    done_redo: set[tuple[str, str]] = set()

    def load(iid: str, step: str) -> dict | None:
        p = cache / "build" / iid / f"{step}.json"
        if (step in redo and iid in work and (iid, step) not in done_redo) or not p.exists():
            return None
        return json.loads(p.read_text())

    def save(iid: str, step: str, d: dict) -> dict:
        p = cache / "build" / iid / f"{step}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(d, indent=1))
        return d

    errors: dict[str, str] = {}
    # steps in passes, so that cheap steps of every instance come first
    for step in STEPS[: STEPS.index(a.upto) + 1]:
        for iid in work:
            if iid in errors:
                continue
            prev = [load(iid, s) for s in STEPS[: STEPS.index(step)]]
            if any(p is None for p in prev) or any(p.get("drop") for p in prev):
                continue
            if load(iid, step) is not None:
                continue
            t0 = time.monotonic()
            try:
                if step == "recon":
                    d = step_recon(iid, ds, snapshots, histories)
                elif step == "lock":
                    d = step_lock(prev[0], scorer, cache)
                elif step == "truth":
                    d = step_truth(prev[0], scorer, cache)
                else:
                    d = step_labels(prev[0], prev[2], scorer)
            except Exception as e:  # infrastructure (no snapshot, git failure): not cached, reported
                errors[iid] = f"{step}: {type(e).__name__}: {e}"
                C.log(f"!! {iid} {step}: {type(e).__name__}: {str(e)[:500]}")
                continue
            d["seconds"] = round(time.monotonic() - t0, 1)
            save(iid, step, d)
            done_redo.add((iid, step))
            what = f"DROP {d['drop']['reason']}: {d['drop']['detail'][:200]}" if d.get("drop") else "ok"
            C.log(f"{step:6} {iid}: {what} ({d['seconds']:.0f} s)")
    done_redo.update((i, s) for i in work for s in STEPS)  # the report reads what is on disk
    return report(ids, cache, outdir, errors, load)


def report(ids: list[str], cache: Path, outdir: Path, errors: dict, load) -> int:
    rows, orows, drops, pending = [], [], {}, []
    times = {s: 0.0 for s in STEPS}
    agree = compared = labelled = agree_kept = compared_kept = 0
    for iid in ids:
        st = {s: load(iid, s) for s in STEPS}
        for s, d in st.items():
            if d:
                times[s] += d.get("seconds", 0)
        dropped = next((d["drop"] for d in st.values() if d and d.get("drop")), None)
        if dropped:
            drops.setdefault(dropped["reason"], []).append(iid)
            if st.get("labels"):
                agree += st["labels"]["agree"]
                compared += st["labels"]["compared"]
            continue
        if any(st[s] is None for s in STEPS):
            pending.append(iid)
            continue
        rec, lock, truth, lab = (st[s] for s in STEPS)
        labelled += len(lab["label"])
        agree += lab["agree"]
        compared += lab["compared"]
        agree_kept += lab["agree"]
        compared_kept += lab["compared"]
        k = sum(lab["label"].values())
        kind = "all-failed" if k == 0 else "all-resolved" if k == len(lab["label"]) else "mixed"
        rows.append({"instance_id": iid, "repo": rec["repo"], "base_commit": rec["base_commit"],
                     "version": rec["version"], "problem_statement": rec["problem_statement"],
                     "candidates": [{"id": c["id"], "patch": c["patch"]} for c in rec["candidates"]]})
        orows.append({"instance_id": iid, "repo": rec["repo"], "test_patch": rec["test_patch"],
                      "FAIL_TO_PASS": truth["FAIL_TO_PASS"], "PASS_TO_PASS": truth["PASS_TO_PASS"],
                      "gold_patch": rec["gold_patch"], "kind": kind,
                      "candidate_source": {c["id"]: c["source"] for c in rec["candidates"]},
                      "label": lab["label"], "published_label": lab["published"],
                      "test_cmds": truth["test_cmds"], "features": truth["features"], "flaky": truth["flaky"],
                      "fix_commit": rec["fix_commit"], "fix_found_by": rec["fix_found_by"],
                      "fix_patch": rec["fix_patch"], "base_distance": rec["base_distance"],
                      "lock_paths": lock["paths"], "toolchain": lock["toolchain"],
                      "dataset_toolchain_group": rec.get("dataset_toolchain_group")})
    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir / "instances.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    with open(outdir / "oracle.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in orows)
    # the dev set's figures from the labels
    oracle = sum(1 for o in orows if any(o["label"].values()))
    mixed = sum(1 for o in orows if o["kind"] == "mixed")
    rnd = sum(sum(o["label"].values()) / len(o["label"]) for o in orows if o["label"])
    per_src: dict[str, int] = {}
    for o in orows:
        for cid, src in o["candidate_source"].items():
            per_src[src] = per_src.get(src, 0) + (1 if o["label"][cid] else 0)
    best = max(per_src.items(), key=lambda kv: kv[1]) if per_src else ("-", 0)
    summary = {"ids": len(ids), "built": len(rows), "pending": pending, "errors": errors,
               "dropped": {r: len(v) for r, v in drops.items()}, "dropped_ids": drops,
               "candidates_labelled": labelled, "agreement": [agree, compared],
               "agreement_kept": [agree_kept, compared_kept],
               "oracle": oracle, "mixed": mixed, "random_expected": round(rnd, 2),
               "best_single_source": list(best), "per_source": per_src,
               "step_seconds": {s: round(t) for s, t in times.items()}}
    (outdir / "build-summary.json").write_text(json.dumps(summary, indent=1))
    print()
    print(f"ids {len(ids)}: built {len(rows)}, dropped {sum(len(v) for v in drops.values())}, "
          f"pending {len(pending)}, errors {len(errors)}")
    for r, text in REASONS.items():
        if r in drops:
            print(f"  dropped, {text}: {len(drops[r])}   {' '.join(drops[r])}")
    for iid, e in errors.items():
        print(f"  error {iid}: {e[:300]}")
    if pending:
        print(f"  pending (steps not done yet): {' '.join(pending)}")
    print(f"candidates labelled {labelled} (kept instances); agreement with published labels {agree_kept}/{compared_kept} "
          f"on the kept instances, {agree}/{compared} with those dropped for disagreeing")
    print(f"oracle {oracle}; mixed {mixed}; random pick {rnd:.1f}"
          + (f" ({rnd / oracle:.2f} of oracle)" if oracle else "")
          + f"; best single source {best[1]} ({best[0]})")
    print(f"step time (s): " + ", ".join(f"{s} {round(t)}" for s, t in times.items()))
    print(f"written: {outdir / 'instances.jsonl'}, {outdir / 'oracle.jsonl'}, {outdir / 'build-summary.json'}")
    return 0 if not errors else 2


if __name__ == "__main__":
    sys.exit(main())
