#!/usr/bin/env python3
"""baton's overhead against a plain shell loop doing the same work, from one run.

    python3 bench/overhead/run.py [--files 20000] [--candidates 16] [--jobs N] [--baton PATH]

A synthetic repository of FILES small files; CANDIDATES candidates whose agent appends one line
to one file (a different file each, so every tree is distinct and verified); a trivial test
stage. The loop does, per candidate and one after the other: clone --shared with checkout, run
the agent, run the test, commit the result (baton collects every candidate's work onto a ref,
so the loop keeps it too). baton does that plus the baseline's workspace and verification.

Printed: wall time, CPU time (the process and all its children), and for baton its own CPU
time (sampled from /proc until it exits) and its peak RSS. Targets from the issue: baton's wall
time at most 0.5x the loop's; baton's own CPU at most 5% of the total.

With --sandbox-compare, baton runs unconfined (run.sandbox = "off") and in its bubblewrap
sandbox (run.sandbox = "bwrap") in turns, --rounds times each, and the medians are printed side
by side with their ratio (target: the sandbox within 10%).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TICK = os.sysconf("SC_CLK_TCK")

AGENT = """#!/bin/sh
# Appends one line to the file this candidate owns.
n=${BATON_CANDIDATE#c}
echo "changed by candidate $n" >> "src/m000/f$(printf %03d "$n").txt"
"""

CONFIG = """[run]
grace = "2s"
log_limit = "1MiB"

[[verify.stage]]
name = "test"
run = "test -s src/m000/f000.txt"
parser = "exit-code"
"""

LOOP = """#!/bin/sh
set -e
repo=$1; work=$2; n=$3
i=1
while [ $i -le $n ]; do
  ws=$work/ws$i
  git clone -q --shared "$repo" "$ws"
  (cd "$ws" && BATON_CANDIDATE=c$i sh "$work/agent.sh" && test -s src/m000/f000.txt \\
     && git add -A && git -c user.name=loop -c user.email=loop@x commit -qm "candidate $i")
  i=$((i + 1))
done
"""


def make_repo(path: Path, files: int) -> None:
    if (path / ".git").is_dir():
        return
    tmp = path.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    per_dir = 100
    for i in range(files):
        d = tmp / "src" / f"m{i // per_dir:03}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i % per_dir:03}.txt").write_text("".join(f"line {j} of file {i}\n" for j in range(20)))
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    run = lambda *a: subprocess.run(a, cwd=tmp, check=True, env=env, stdout=subprocess.DEVNULL)
    run("git", "init", "-q", "-b", "main")
    run("git", "add", "-A")
    run("git", "-c", "user.name=bench", "-c", "user.email=bench@x", "commit", "-qm", "synthetic")
    run("git", "repack", "-adq")
    tmp.rename(path)


def proc_sample(pid: int):
    """(own cpu seconds, peak RSS in KiB) of a live process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    hwm = next((int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM:")), 0)
    return cpu, hwm


def timed(cmd, env, cwd, sample=False):
    """Runs cmd; returns (wall s, total cpu s incl. children, own cpu s, peak rss KiB, rc)."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = (0.0, 0)
    while True:
        # Sample before reaping: the last sample is within 10 ms of the exit.
        if sample:
            s = proc_sample(p.pid)
            if s is not None:
                last = (s[0], max(s[1], last[1]))
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            break
        time.sleep(0.01)
    wall = time.monotonic() - start
    err = p.stderr.read().decode(errors="replace")
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode not in (0,):
        sys.stderr.write(err)
    return wall, ru.ru_utime + ru.ru_stime, last[0], last[1], p.returncode


def collect_times(db: Path) -> list[float]:
    """Seconds from each agent's end to its work on its ref, from the run's stamped events."""
    import datetime
    import json
    import sqlite3
    if not db.exists():
        return []
    con = sqlite3.connect(db)
    ended, out = {}, []
    for at, body in con.execute("SELECT at, body FROM events ORDER BY run_id, seq"):
        e = json.loads(body)
        t = datetime.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        if e.get("event") == "agent_finished":
            ended[e["candidate"]] = t
        elif e.get("event") == "collected" and e["candidate"] in ended:
            out.append(t - ended.pop(e["candidate"]))
    con.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--candidates", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    default_baton = ROOT / "target" / "release" / "baton"
    ap.add_argument("--baton", default=str(default_baton),
                    help="the baton binary (default: target/release/baton, built if missing)")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/baton-bench/overhead"))
    ap.add_argument("--workspace", default="auto", choices=["auto", "overlay", "clone", "worktree"],
                    help="baton's run.workspace (auto: an overlay where mounting works, else a clone)")
    ap.add_argument("--sandbox-compare", action="store_true",
                    help="run baton unconfined and sandboxed in turns and compare them")
    ap.add_argument("--rounds", type=int, default=3, help="turns of each with --sandbox-compare")
    args = ap.parse_args()

    # baton runs in the synthetic repository, not here: a path given relative to where the
    # benchmark was started must be made absolute first (a bare name is looked up on PATH).
    if "/" in args.baton:
        args.baton = str(Path(args.baton).resolve())
    else:
        args.baton = shutil.which(args.baton) or args.baton
    if not Path(args.baton).exists():
        if Path(args.baton) != default_baton:
            print(f"bench/overhead: --baton {args.baton}: no such file", file=sys.stderr)
            return 2
        print(f"building {args.baton} (cargo build --release)", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release", "--bin", "baton"], cwd=ROOT, check=True)
    cache = Path(args.cache).resolve()
    repo = cache / f"repo-{args.files}"
    print(f"synthetic repository: {args.files} files ({repo})", file=sys.stderr)
    make_repo(repo, args.files)

    # Work beside the repository, not in /tmp: both sides then write to the same directory tree
    # (on some machines /tmp is watched or otherwise slower for file creation).
    with tempfile.TemporaryDirectory(prefix="work-", dir=cache) as tmp:
        tmp = Path(tmp)
        (tmp / "agent.sh").write_text(AGENT)
        (tmp / "agent.sh").chmod(0o755)
        (tmp / "loop.sh").write_text(LOOP)
        (tmp / "bench.toml").write_text(CONFIG)
        env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
                   XDG_CACHE_HOME=str(tmp / "cache"), XDG_CONFIG_HOME=str(tmp / "config"))
        # Warm the page cache the same way for both.
        subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], check=True, stdout=subprocess.DEVNULL, env=env)

        work = tmp / "loop"
        work.mkdir()
        shutil.copy(tmp / "agent.sh", work / "agent.sh")
        loop = timed(["sh", str(tmp / "loop.sh"), str(repo), str(work), str(args.candidates)], env, tmp)
        shutil.rmtree(work)

        def run_baton(sandbox=None):
            cmd = [args.baton, "run", "Append a line to your file", "--agent", f"command:{tmp / 'agent.sh'}",
                   "--set", f"run.workspace={args.workspace}",
                   "-n", str(args.candidates), "--jobs", str(args.jobs), "--config", str(tmp / "bench.toml"),
                   "--quiet"]
            if sandbox:
                cmd += ["--sandbox", sandbox]
            result = timed(cmd, env, repo, sample=True)
            times = collect_times(repo / ".git" / "baton" / "baton.db")
            # Workspaces stay after a run (as the loop's clones do); remove them outside the timing.
            subprocess.run([args.baton, "-C", str(repo), "clean", "--quiet"], env=env, stdout=subprocess.DEVNULL)
            # The run left refs in the cached repository: drop them so the next run starts alike.
            refs = subprocess.run(["git", "-C", str(repo), "for-each-ref", "--format=%(refname)", "refs/baton/"],
                                  capture_output=True, text=True, env=env).stdout.split()
            for r in refs:
                subprocess.run(["git", "-C", str(repo), "update-ref", "-d", r], env=env)
            shutil.rmtree(repo / ".git" / "baton", ignore_errors=True)
            return result, times

        if args.sandbox_compare:
            runs = {"off": [], "bwrap": []}
            for _ in range(args.rounds):
                for mode in ("off", "bwrap"):
                    runs[mode].append(run_baton(mode)[0])
        baton, collect = run_baton()

    lw, lc, _, _, lrc = loop
    bw, bc, own, hwm, brc = baton
    print(f"bench/overhead: {args.candidates} candidates, {args.files} files, {os.cpu_count()} cores, "
          f"baton --jobs {args.jobs}, workspaces: {args.workspace}")
    print(f"{'':18}{'wall':>9}{'cpu, all':>11}{'own cpu':>10}{'peak RSS':>11}  exit")
    print(f"{'shell loop':18}{lw:8.2f}s{lc:10.2f}s{'':>10}{'':>11}  {lrc}")
    print(f"{'baton run':18}{bw:8.2f}s{bc:10.2f}s{own:9.2f}s{hwm / 1024:8.1f} MB  {brc}")
    print(f"baton / loop wall time: {bw / lw:.2f}  (target <= 0.50)")
    print(f"baton's own CPU: {100 * own / bc:.1f}% of the run's CPU  (target <= 5%)")
    if args.sandbox_compare:
        med = lambda xs: sorted(xs)[len(xs) // 2]
        print(f"sandbox, {args.rounds} runs of each in turns (medians):")
        for mode in ("off", "bwrap"):
            rs = runs[mode]
            print(f"{'  ' + mode:18}{med([r[0] for r in rs]):8.2f}s{med([r[1] for r in rs]):10.2f}s"
                  f"{med([r[2] for r in rs]):9.2f}s{med([r[3] for r in rs]) / 1024:8.1f} MB  "
                  f"{','.join(str(r[4]) for r in rs)}")
        off, on = med([r[0] for r in runs["off"]]), med([r[0] for r in runs["bwrap"]])
        print(f"sandboxed / unconfined wall time: {on / off:.2f}  (target <= 1.10)")
    if collect:
        collect.sort()
        print(f"collecting a candidate's work: median {1000 * collect[len(collect) // 2]:.0f} ms, "
              f"max {1000 * collect[-1]:.0f} ms  (from each agent's end to its work on a ref)")
    return 0 if lrc == 0 and brc in (0, 4) else 1


if __name__ == "__main__":
    sys.exit(main())
