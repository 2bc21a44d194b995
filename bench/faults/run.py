#!/usr/bin/env python3
"""SIGKILL baton at random moments of runs with misbehaving agents; check what a user would.

    python3 bench/faults/run.py [--trials 200] [--baton PATH] [--seed N] [--sandbox auto|off]
                                [--keep-failures DIR]

Each trial makes a small repository (a shell function with a bug and TAP tests) that the user
left dirty (a modified tracked file, a staged file, an untracked file), starts `baton run` with
three or four agents drawn from the corpus below, and kills baton with SIGKILL after a random
delay (0 to --max-delay seconds; some runs finish first, and are checked alike). Then, as a user
would, it runs `baton status` (the next baton recovers the dead one's run), `baton show --json`
and `baton clean`, and checks:

  processes   no process of the trial is left: none carries the dead baton's marker
              (BATON_OWNER) in its environment, none has its working directory or HOME in the
              trial's directory
  repository  the user's HEAD, branches, tags, index and working tree (contents of the dirty
              files included) are as before the run
  fsck        `git fsck` finds nothing broken
  work        every candidate whose agent recorded that its edit was made has that edit on its
              ref (refs/baton/runs/<run>/<candidate>) or in a workspace `clean` kept and named
  leftovers   after `baton clean` nothing of baton's is left under its workspace root, and no
              mount of the trial remains
  recovery    `baton status` after the kill exits 0 and the run is no longer "running"

The corpus: a fixer; a slow fixer; one that writes into the user's tree by absolute path and
into the real HOME; one that runs `git update-ref`, `git branch` and `git push` against the
user's repository; one that escapes with `setsid` and leaves a sleeper; one that deletes its
workspace's git directory; one that forks a handful of sleepers and waits. Agents record that
their edit is made in a directory given to them through `run.sandbox_writable`.

Prints each trial's failures as they happen, then the counts per failure kind (target: all 0),
how many kills hit a live baton, and how many processes each kill left running before the next
baton recovered (found by the same check: it sees what it must). Exit 1 when any check failed.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

CALC = "add() { echo $(( $1 - $2 )); }\n"

TESTS = """#!/bin/sh
. ./src/calc.sh
n=0
check() { n=$((n+1)); if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
echo "1..3"
check adds "$(add 2 3)" 5
check adds_zero "$(add 4 0)" 4
check identity "$(add 0 0)" 0
"""

CONFIG = """[run]
grace = "1s"

[[verify.stage]]
name = "test"
run = "sleep 0.3; sh tests/run.sh"
parser = "tap"
timeout = "60s"
"""

# Every agent: records its pid, makes its edit (a line naming it, and the fix), records that the
# edit is made, then does what its kind does. $F is the progress directory.
PROLOGUE = """#!/bin/sh
F={progress}
sleep {before}
sed -i 's/\\$1 - \\$2/$1 + $2/' src/calc.sh
echo "# edited by $BATON_CANDIDATE ({name})" >> src/calc.sh
echo "$BATON_CANDIDATE" >> "$F/edited"
"""

KINDS = {
    "fixer": "",
    "slow": "sleep 2\n",
    "writer": "echo agent >> {repo}/src/calc.sh; echo agent > {repo}/agent-was-here.txt; "
              "echo agent > {real_home}/agent-was-here.txt\nsleep 0.5\n",
    "git": "git -C {repo} update-ref refs/heads/main $(git -C {repo} commit-tree -m moved HEAD^{{tree}}) 2>/dev/null; "
           "git -C {repo} branch sneaky 2>/dev/null; git push -q {repo} HEAD:refs/heads/pushed 2>/dev/null\nsleep 0.5\n",
    "escaper": "setsid sleep 1000 > /dev/null 2>&1 < /dev/null &\nsleep 1\n",
    "deleter": "rm -rf ../git .git\nsleep 0.3\n",
    "forker": "kids=; for i in 1 2 3 4 5 6; do sleep 1000 & kids=\"$kids $!\"; done\nsleep 1.5\nkill $kids\n",
}


def git(repo, *args, check=True, env=None):
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {r.stderr}")
    return r.stdout


def user_state(repo, env):
    """What the user would see of their repository, dirty files' contents included."""
    parts = [
        git(repo, "rev-parse", "HEAD", env=env),
        git(repo, "symbolic-ref", "-q", "HEAD", check=False, env=env),
        git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/tags", env=env),
        git(repo, "ls-files", "--stage", env=env),
        git(repo, "status", "--porcelain=v2", "--untracked-files=all", env=env),
    ]
    for f in sorted(p for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts):
        parts.append(f"{f.relative_to(repo)}: {f.read_bytes()!r}")
    return "\n".join(parts)


def processes_of(marker_prefix, trial_dir):
    """Live processes of the trial: by the dead baton's marker, by a working directory or HOME
    in the trial's directory. (Pids agents record are no help: inside a sandbox they are those
    of its own pid namespace.)"""
    found = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        pid = int(d.name)
        try:
            environ = (d / "environ").read_bytes().split(b"\0")
            cwd = os.readlink(d / "cwd")
            stat = (d / "stat").read_text()
        except (OSError, ValueError):
            continue
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            continue
        if marker_prefix and any(e.startswith(b"BATON_OWNER=" + marker_prefix.encode()) for e in environ):
            found.add(pid)
        elif cwd.startswith(str(trial_dir)) or any(e.startswith(b"HOME=" + str(trial_dir).encode()) for e in environ):
            found.add(pid)
    found.discard(os.getpid())
    return sorted(found)


def trial(n, args, rng, base_env):
    failures = []
    trial_dir = Path(tempfile.mkdtemp(prefix=f"baton-fault-{n}-"))
    try:
        home, repo, progress, agents = (trial_dir / d for d in ("home", "repo", "progress", "agents"))
        for d in (home, repo, progress, agents):
            d.mkdir()
        env = dict(base_env, HOME=str(home), XDG_CACHE_HOME=str(home / "cache"),
                   XDG_CONFIG_HOME=str(home / "config"))
        git(repo, "init", "-q", "-b", "main", env=env)
        (repo / "src").mkdir()
        (repo / "tests").mkdir()
        (repo / "src/calc.sh").write_text(CALC)
        (repo / "tests/run.sh").write_text(TESTS)
        (repo / "baton.toml").write_text(CONFIG)
        (repo / "notes.txt").write_text("notes\n")
        git(repo, "add", "-A", env=env)
        git(repo, "commit", "-qm", "initial", env=env)
        # The user's own unsaved work: a modified tracked file, a staged one, an untracked one.
        (repo / "notes.txt").write_text("notes\nmine, not committed\n")
        (repo / "staged.txt").write_text("staged\n")
        git(repo, "add", "staged.txt", env=env)
        (repo / "scratch.txt").write_text("untracked\n")
        before = user_state(repo, env)

        kinds = rng.sample(sorted(KINDS), rng.randint(3, 4))
        cmd = [args.baton, "run", "Make add() add", "--include-dirty", "--sandbox", args.sandbox,
               "--set", f"run.sandbox_writable=[\"{progress}\"]"]
        for kind in kinds:
            script = agents / f"{kind}.sh"
            body = PROLOGUE.format(progress=progress, before=round(rng.uniform(0, 0.8), 2), name=kind)
            body += KINDS[kind].format(repo=repo, real_home=home)
            script.write_text(body)
            script.chmod(0o755)
            cmd += ["--agent", f"command:{script}"]
        delay = rng.uniform(0, args.max_delay)
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=delay)
            hit = False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            hit = True
        stderr = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        # Exit 6: the guard found what an unconfined agent did to the repository, as it should.
        if not hit and proc.returncode not in ((0, 4, 6) if args.sandbox == "off" else (0, 4)):
            failures.append(("run", f"baton run exited {proc.returncode}: {stderr.strip()[-400:]}"))
        marker = f"{proc.pid}-"

        # What the kill left running, seen by the same check as after recovery: the check sees
        # what it must (escaped sleepers, agents' children), and recovery ends it.
        orphans = len(processes_of(marker, trial_dir)) if hit else 0
        status = subprocess.run([args.baton, "status"], cwd=repo, env=env, capture_output=True, text=True)
        if status.returncode != 0:
            failures.append(("recovery", f"baton status exited {status.returncode}: {status.stderr.strip()[-300:]}"))
        show = subprocess.run([args.baton, "show", "--json"], cwd=repo, env=env, capture_output=True, text=True)
        run = None
        if show.returncode == 0:
            run = json.loads(show.stdout)
            if run.get("status") == "running":
                failures.append(("recovery", "the run is still marked running after recovery"))
        elif "no runs" not in show.stderr and hit and delay > 0.5:
            failures.append(("recovery", f"baton show: {show.stderr.strip()[-300:]}"))

        # Recovery ends what the dead baton left (SIGTERM, a grace period, SIGKILL): give it time.
        for _ in range(50):
            left = processes_of(marker, trial_dir)
            if not left:
                break
            time.sleep(0.1)
        if left:
            cmdlines = []
            for pid in left:
                try:
                    cmdlines.append(f"{pid}: {Path(f'/proc/{pid}/cmdline').read_bytes().replace(bytes([0]), b' ').decode()[:80]}")
                except OSError:
                    pass
            failures.append(("processes", "; ".join(cmdlines)))
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

        after = user_state(repo, env)
        if after != before and args.sandbox != "off":
            failures.append(("repository", diff_summary(before, after)))

        fsck = subprocess.run(["git", "-C", str(repo), "fsck", "--no-dangling", "--no-progress"],
                              capture_output=True, text=True, env=env)
        if fsck.returncode != 0 or "error" in fsck.stderr or "missing" in fsck.stdout:
            failures.append(("fsck", (fsck.stdout + fsck.stderr).strip()[-300:]))

        edited = set((progress / "edited").read_text().split()) if (progress / "edited").exists() else set()
        clean = subprocess.run([args.baton, "clean"], cwd=repo, env=env, capture_output=True, text=True)
        kept = clean.stderr
        for cand in sorted(edited):
            line = f"# edited by {cand} ("
            ref = f"refs/baton/runs/{run['run']}/{cand}" if run else None
            on_ref = ref is not None and line in git(repo, "show", f"{ref}:src/calc.sh", check=False, env=env)
            in_kept = f"kept the workspace of {cand} " in kept
            if not on_ref and not in_kept:
                failures.append(("work", f"{cand}'s edit is on no ref and in no kept workspace"))

        if clean.returncode != 0:
            failures.append(("leftovers", f"baton clean exited {clean.returncode}: {clean.stderr.strip()[-300:]}"))
        else:
            # What clean kept on purpose (and said so) is not a leftover; force it out, then
            # nothing may remain.
            subprocess.run([args.baton, "clean", "--force"], cwd=repo, env=env, capture_output=True)
            root = home / "cache" / "baton" / "workspaces"
            remaining = [str(p.relative_to(root)) for p in root.rglob("*")] if root.exists() else []
            if remaining:
                failures.append(("leftovers", f"{len(remaining)} paths, e.g. {remaining[:3]}"))
        mounts = [l for l in Path("/proc/mounts").read_text().splitlines() if str(trial_dir) in l]
        if mounts:
            failures.append(("leftovers", f"{len(mounts)} mounts, e.g. {mounts[0][:120]}"))
            for m in reversed(mounts):
                subprocess.run(["umount", "-l", m.split()[1]], capture_output=True)
        if failures and args.keep_failures:
            dest = Path(args.keep_failures) / f"trial-{n}"
            shutil.copytree(trial_dir, dest, symlinks=True, ignore_dangling_symlinks=True, dirs_exist_ok=True)
            (dest / "baton.stderr").write_text(stderr)
        return hit, kinds, delay, failures, orphans
    finally:
        shutil.rmtree(trial_dir, ignore_errors=True)


def diff_summary(before, after):
    b, a = before.splitlines(), after.splitlines()
    gone = [l for l in b if l not in a][:3]
    new = [l for l in a if l not in b][:3]
    return f"was {gone}, now {new}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--baton", default=str(Path(__file__).resolve().parents[2] / "target/release/baton"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-delay", type=float, default=3.0, help="the latest kill, in seconds after the start")
    ap.add_argument("--sandbox", default="auto", choices=["auto", "bwrap", "landlock", "off"],
                    help="baton's run.sandbox; with off, agents can change the repository (the guard "
                         "reports it, restores nothing), so that check is skipped")
    ap.add_argument("--keep-failures", help="copy a failed trial's directory here")
    args = ap.parse_args()
    args.baton = str(Path(args.baton).resolve())
    if not Path(args.baton).is_file():
        sys.exit(f"no baton at {args.baton}: build it with `cargo build --release` or pass --baton")
    rng = random.Random(args.seed)
    base_env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "TMPDIR")}
    base_env.update(GIT_AUTHOR_NAME="user", GIT_AUTHOR_EMAIL="user@example.com", GIT_COMMITTER_NAME="user",
                    GIT_COMMITTER_EMAIL="user@example.com", GIT_CONFIG_NOSYSTEM="1", NO_COLOR="1")
    counts, hits, kinds_seen, orphans, orphaned_trials = Counter(), 0, Counter(), 0, 0
    failed_trials = 0
    start = time.time()
    for n in range(1, args.trials + 1):
        hit, kinds, delay, failures, left = trial(n, args, rng, base_env)
        hits += hit
        orphans += left
        orphaned_trials += bool(left)
        kinds_seen.update(kinds)
        for kind, what in failures:
            counts[kind] += 1
            print(f"trial {n} ({', '.join(kinds)}; killed after {delay:.2f} s): {kind}: {what}", flush=True)
        failed_trials += bool(failures)
        if n % 20 == 0:
            print(f"  {n}/{args.trials} trials, {hits} kills of a live baton, {failed_trials} with failures "
                  f"({time.time() - start:.0f} s)", flush=True)
    print(f"\n{args.trials} trials (seed {args.seed}, sandbox {args.sandbox}): {hits} SIGKILLs of a live baton, "
          f"{args.trials - hits} runs that ended first; {time.time() - start:.0f} s")
    print(f"processes alive right after a kill, before the next baton recovered: {orphans} in "
          f"{orphaned_trials} trials (all must be gone after recovery)")
    print("agents in the trials: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds_seen.items())))
    print(f"{'check':12}{'failures':>9}   (target: 0)")
    for kind in ("processes", "repository", "fsck", "work", "leftovers", "recovery", "run"):
        print(f"{kind:12}{counts[kind]:>9}")
    return 1 if counts else 0


if __name__ == "__main__":
    sys.exit(main())
