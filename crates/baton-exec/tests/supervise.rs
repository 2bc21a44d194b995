//! Supervision against real processes: `sh` scripts that crash, hang, ignore SIGTERM, leave
//! grandchildren behind, escape their group, and flood their output.

use std::path::Path;
use std::time::Duration;

use baton_core::TimeoutKind;
use baton_exec::{Cancel, CancelHandle, CancelLevel, End, Spec, StdinSource};

fn sh(dir: &Path, script: &str) -> Spec {
    Spec::shell(script, dir).grace(Duration::from_millis(300))
}

/// Alive means: exists and is not a zombie waiting to be reaped.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s[s.rfind(')').unwrap() + 2..].chars().next().unwrap();
            state != 'Z'
        }
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

/// Waits up to a minute: on a loaded machine a background shell can take seconds to start.
async fn wait_for_file(path: &Path) {
    for _ in 0..6000 {
        if path.exists() && !std::fs::read_to_string(path).unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let f = baton_exec::spawn(sh(dir.path(), "exit 7")).wait(Cancel::never(), None).await;
    assert_eq!(f.end, End::Exited { code: 7 });
    let f = baton_exec::spawn(sh(dir.path(), "kill -SEGV $$")).wait(Cancel::never(), None).await;
    assert_eq!(f.end, End::Signaled { signal: 11 });
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_failure_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let f =
        baton_exec::spawn(Spec::new("baton-no-such-program", dir.path())).wait(Cancel::never(), None).await;
    match f.end {
        End::SpawnFailed { message } => {
            assert!(message.contains("`baton-no-such-program` was not found"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn output_goes_to_the_log_and_lines_to_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out.log");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let spec = sh(dir.path(), "read x; echo \"got $x\"; echo err >&2; printf 'no newline'")
        .stdin(StdinSource::Bytes(b"hello\n".to_vec()))
        .log(&log, 1 << 20);
    let f = baton_exec::spawn(spec).wait(Cancel::never(), Some(tx)).await;
    assert_eq!(f.end, End::Exited { code: 0 });
    let mut lines = Vec::new();
    while let Ok(l) = rx.try_recv() {
        lines.push(l);
    }
    assert_eq!(lines, ["got hello", "no newline"]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("got hello") && text.contains("err"), "{text}");
}

#[tokio::test]
async fn a_hung_process_and_its_children_are_gone_after_the_wall_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let script = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
    let spec = sh(dir.path(), &script).timeouts(Some(Duration::from_millis(300)), None);
    let f = baton_exec::spawn(spec).wait(Cancel::never(), None).await;
    assert_eq!(f.end, End::TimedOut { kind: TimeoutKind::Wall });
    assert!(!alive(read_pid(&pidfile)), "the grandchild survived");
}

#[tokio::test]
async fn silence_timeout_fires_only_without_output() {
    let dir = tempfile::tempdir().unwrap();
    // Talks every 50 ms for 0.6 s: longer than the silence limit in total, never silent for it.
    let chatty = sh(dir.path(), "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo $i; sleep 0.05; done")
        .timeouts(None, Some(Duration::from_millis(400)));
    let f = baton_exec::spawn(chatty).wait(Cancel::never(), None).await;
    assert_eq!(f.end, End::Exited { code: 0 });
    let quiet = sh(dir.path(), "echo start; sleep 1000").timeouts(None, Some(Duration::from_millis(300)));
    let f = baton_exec::spawn(quiet).wait(Cancel::never(), None).await;
    assert_eq!(f.end, End::TimedOut { kind: TimeoutKind::Silence });
}

#[tokio::test]
async fn a_process_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ready");
    let script = format!("trap '' TERM; echo 1 > {}; while :; do sleep 0.05; done", marker.display());
    let spec = sh(dir.path(), &script).timeouts(Some(Duration::from_millis(400)), None);
    let p = baton_exec::spawn(spec);
    let pid = p.pid().unwrap();
    let f = p.wait(Cancel::never(), None).await;
    assert_eq!(f.end, End::TimedOut { kind: TimeoutKind::Wall });
    assert!(
        f.duration >= Duration::from_millis(650),
        "killed before the grace period ended: {:?}",
        f.duration
    );
    assert!(!alive(pid));
}

#[tokio::test]
async fn a_grandchild_that_outlives_its_parent_is_stopped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    // The shell exits at once; its background child would live on.
    let script =
        format!("(trap '' TERM; exec sleep 1000) > /dev/null 2>&1 & echo $! > {}; exit 0", pidfile.display());
    let f = baton_exec::spawn(sh(dir.path(), &script)).wait(Cancel::never(), None).await;
    assert_eq!(f.end, End::Exited { code: 0 });
    assert_eq!(f.stragglers, 1);
    assert!(!alive(read_pid(&pidfile)));
}

#[tokio::test]
async fn a_process_that_leaves_the_group_is_caught_by_the_subreaper() {
    assert!(baton_exec::init(), "subreaper is Linux-only; these tests run on Linux");
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("escaped.pid");
    // The parent exits only once the escapee has its own session: before that, it is still in
    // the group, and baton rightly kills it as a straggler.
    let script = format!(
        "setsid sh -c 'echo $$ > {0}; exec sleep 1000' > /dev/null 2>&1 < /dev/null & while [ ! -s {0} ]; do sleep 0.01; done; exit 0",
        pidfile.display()
    );
    let f = baton_exec::spawn(sh(dir.path(), &script)).wait(Cancel::never(), None).await;
    assert_eq!(f.end, End::Exited { code: 0 });
    wait_for_file(&pidfile).await;
    let escaped = read_pid(&pidfile);
    assert!(alive(escaped), "the escapee should still run: it left the group");
    // Other tests in this binary may have processes running; the escapee is a stray either way.
    for _ in 0..1500 {
        baton_exec::reap_strays();
        if !alive(escaped) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(escaped), "reap_strays left the escaped process running");
}

#[tokio::test]
async fn a_flood_of_output_is_capped_keeping_head_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("flood.log");
    // 1 GB of output between two markers.
    let script = "echo FIRST; head -c 1000000000 /dev/zero | tr '\\0' x; echo; echo LAST";
    let f = baton_exec::spawn(sh(dir.path(), script).log(&log, 1 << 20)).wait(Cancel::never(), None).await;
    assert_eq!(f.end, End::Exited { code: 0 });
    assert!(f.output_bytes > 1_000_000_000);
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(size <= (1 << 20) + 100, "log is {size} bytes");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("FIRST\n"));
    assert!(text.trim_end().ends_with("LAST"));
    assert!(text.contains("bytes of output omitted here"));
    assert_eq!(f.log_dropped, f.output_bytes - (1 << 20));
}

#[tokio::test]
async fn graceful_cancel_terminates_and_force_cancel_kills_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");

    let (handle, cancel) = CancelHandle::new();
    let script = format!("trap 'exit 3' TERM; echo 1 > {}; while :; do sleep 0.05; done", ready.display());
    let task = tokio::spawn(baton_exec::spawn(sh(dir.path(), &script)).wait(cancel, None));
    wait_for_file(&ready).await;
    assert_eq!(handle.escalate(), CancelLevel::Graceful);
    let f = task.await.unwrap();
    assert_eq!(f.end, End::Cancelled);
    assert!(f.duration < Duration::from_secs(5));

    std::fs::remove_file(&ready).unwrap();
    let (handle, cancel) = CancelHandle::new();
    let script = format!("trap '' TERM; echo 1 > {}; while :; do sleep 0.05; done", ready.display());
    let spec = sh(dir.path(), &script).grace(Duration::from_secs(60));
    let task = tokio::spawn(baton_exec::spawn(spec).wait(cancel, None));
    wait_for_file(&ready).await;
    handle.escalate();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(handle.escalate(), CancelLevel::Force);
    let f = tokio::time::timeout(Duration::from_secs(10), task).await.expect("force did not kill").unwrap();
    assert_eq!(f.end, End::Cancelled);
}

#[tokio::test]
async fn dropping_a_process_kills_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let p = baton_exec::spawn(sh(dir.path(), "sleep 1000"));
    let pid = p.pid().unwrap();
    assert!(alive(pid));
    drop(p);
    for _ in 0..100 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("dropped process {pid} still runs");
}

#[test]
fn run_sync_captures_output_and_exit_code() {
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "cat; echo oops >&2; exit 2"]);
    let out = baton_exec::run_sync(cmd, Some(b"in")).unwrap();
    assert_eq!(out.code, Some(2));
    assert_eq!(out.stdout, b"in");
    assert_eq!(out.stderr, b"oops\n");
}

/// A user watching a long test run (or an agent) reads its log while it runs: what the process
/// wrote is in the file before it ends, not held back until then.
#[tokio::test]
async fn the_log_fills_while_the_process_runs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out.log");
    let go = dir.path().join("go");
    let script = format!("echo started; while [ ! -e {} ]; do sleep 0.05; done; echo done", go.display());
    let process = baton_exec::spawn(sh(dir.path(), &script).log(&log, 1 << 20));
    let running = tokio::spawn(process.wait(Cancel::never(), None));
    wait_for_file(&log).await;
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "started\n");
    assert!(!running.is_finished());
    std::fs::write(&go, "").unwrap();
    let f = running.await.unwrap();
    assert_eq!(f.end, End::Exited { code: 0 });
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "started\ndone\n");
}

/// With one pipe for stdout and stderr, the log keeps the order the process wrote in: a
/// parser that reads headers from stderr and results from stdout (cargo test) relies on it.
#[tokio::test]
async fn merged_output_keeps_the_order_of_stdout_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out.log");
    let script = "i=0; while [ $i -lt 300 ]; do echo \"out $i\"; echo \"err $i\" >&2; i=$((i+1)); done";
    let f = baton_exec::spawn(sh(dir.path(), script).log(&log, 1 << 20).merge_output())
        .wait(Cancel::never(), None)
        .await;
    assert_eq!(f.end, End::Exited { code: 0 });
    let expected: String = (0..300).map(|i| format!("out {i}\nerr {i}\n")).collect();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), expected);
}

/// Limits hold for the whole process tree: a fork bomb stops at the process limit, a file at
/// the size limit, an allocation at the memory limit; and a `setsid` escape inside cgroups ends
/// with its process. Where this machine cannot make cgroups (not root, nothing delegated) the
/// process and memory limits are not enforced, and those parts say they are skipped.
#[tokio::test]
async fn limits_bound_a_fork_bomb_a_big_file_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let cgroups = baton_exec::cgroups();
    // Files: SIGXFSZ ends the writer at the limit.
    let limits = baton_exec::Limits { file_size: 1 << 20, ..Default::default() };
    let big = sh(dir.path(), "exec head -c 3000000 /dev/zero > big").limits(limits);
    let end = baton_exec::spawn(big).wait(Cancel::never(), None).await.end;
    assert!(matches!(end, End::Signaled { signal } if signal == libc::SIGXFSZ), "{end:?}");
    assert_eq!(std::fs::metadata(dir.path().join("big")).unwrap().len(), 1 << 20);

    if cgroups.pids.is_none() {
        eprintln!("skipped the process limit: no cgroup can be made here");
    } else {
        // 60 sleepers against a limit of 20: the shell reports that it cannot fork, and at no
        // time do more than 20 of its processes exist.
        let bomb = "n=0; while [ $n -lt 60 ]; do sleep 3 & n=$((n+1)); done; wait; echo done";
        let limits = baton_exec::Limits { processes: 20, ..Default::default() };
        let log = dir.path().join("bomb.log");
        let spec = sh(dir.path(), bomb).limits(limits).log(&log, 1 << 20).merge_output();
        let f = baton_exec::spawn(spec).wait(Cancel::never(), None).await;
        let out = std::fs::read_to_string(&log).unwrap();
        assert!(out.to_lowercase().contains("fork"), "{out} {:?}", f.end);
    }
    if cgroups.memory.is_none() {
        eprintln!("skipped the memory limit: no cgroup can be made here");
    } else {
        let limits = baton_exec::Limits { memory: 64 << 20, ..Default::default() };
        let hog = sh(dir.path(), "python3 -c 'b = bytearray(300 << 20); print(len(b))'").limits(limits);
        let end = baton_exec::spawn(hog).wait(Cancel::never(), None).await.end;
        assert!(!end.success(), "300 MiB under a 64 MiB limit: {end:?}");
    }
    if let Some(pids) = &cgroups.pids {
        // An escape from the process group is still in the cgroup: it ends with its process.
        let marker = dir.path().join("escapee.pid");
        let script = format!("setsid sh -c 'echo $$ > {}; exec sleep 300' & sleep 0.3", marker.display());
        let limits = baton_exec::Limits { processes: 50, ..Default::default() };
        let end =
            baton_exec::spawn(sh(dir.path(), &script).limits(limits)).wait(Cancel::never(), None).await.end;
        assert!(end.success());
        wait_for_file(&marker).await;
        let escapee = read_pid(&marker);
        for _ in 0..100 {
            if !alive(escapee) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(escapee), "the escapee outlived its process's cgroup");
        let left: Vec<_> = std::fs::read_dir(pids)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name().to_string_lossy().starts_with(&format!("baton-{}-", std::process::id()))
            })
            .collect();
        assert!(left.is_empty(), "cgroups left behind: {left:?}");
    }
}

#[tokio::test]
async fn every_process_carries_the_marker_of_the_baton_that_started_it() {
    let dir = tempfile::tempdir().unwrap();
    let me = std::process::id();
    let mine = baton_exec::owner_marker(me, baton_exec::identity_of(me).map(|i| i.start_ticks));
    let log = dir.path().join("out.log");
    // Not even a spec that names the variable itself replaces it.
    let spec = sh(dir.path(), "echo \"$BATON_OWNER\"").env(baton_exec::OWNER_VAR, "other").log(&log, 1 << 20);
    let f = baton_exec::spawn(spec).wait(Cancel::never(), None).await;
    assert_eq!(f.end, End::Exited { code: 0 });
    assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), mine);
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "echo \"$BATON_OWNER\""]);
    let out = baton_exec::run_sync(cmd, None).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), mine);
}

/// What a SIGKILLed baton leaves: a process that escaped its group with `setsid`, which the
/// subreaper (dead with baton) no longer catches. The next baton finds it by the marker in its
/// environment; a process marked by another baton is left alone.
#[tokio::test]
async fn processes_marked_by_a_dead_owner_are_found_and_ended() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().display();
    // As a baton that is gone (pid past the kernel's largest) would have started it.
    let dead = baton_exec::owner_marker(4_194_305, Some(1));
    let escapee = dir.path().join("escapee.pid");
    let status = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "setsid sh -c 'trap \"\" TERM; echo $$ > {p}/escapee.pid; exec sleep 1000' > /dev/null 2>&1 < /dev/null &"
            ),
        ])
        .env(baton_exec::OWNER_VAR, &dead)
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_file(&escapee).await;
    let escapee = read_pid(&escapee);
    let mut other = std::process::Command::new("sleep")
        .arg("1000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .env(baton_exec::OWNER_VAR, baton_exec::owner_marker(4_194_305, Some(2)))
        .spawn()
        .unwrap();
    assert_eq!(baton_exec::end_marked(&dead, Duration::from_millis(300)), 1);
    for _ in 0..200 {
        if !alive(escapee) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // It ignored SIGTERM: the SIGKILL after the grace period ended it.
    assert!(!alive(escapee), "the escaped process survived");
    assert!(alive(other.id()), "another owner's process was touched");
    other.kill().unwrap();
    other.wait().unwrap();
    assert_eq!(baton_exec::end_marked(&dead, Duration::from_millis(300)), 0);
}

/// Issue 14, item 6: a key the process prints never reaches its log, even printed in two
/// pieces, and even where the log's size limit cuts through a flood of it.
#[tokio::test]
async fn a_redacting_log_keeps_no_key_even_split_or_cut() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let key = "sk-test-SECRETVALUE1234567890abcdef";
    let redactor = Arc::new(baton_exec::Redactor::new([("OPENAI_API_KEY", key)]));
    let log = dir.path().join("agent.log");
    let script = "printf 'the key is sk-test-SECR'; sleep 0.3; printf 'ETVALUE1234567890abcdef, a token ghp_0123456789'; \
                  sleep 0.3; printf 'abcdefghijABCDEFGHIJ012345\\n'; echo \"env: $OPENAI_API_KEY\"; echo done";
    let f = baton_exec::spawn(
        sh(dir.path(), script).env("OPENAI_API_KEY", key).log(&log, 1 << 20).redact(redactor.clone()),
    )
    .wait(Cancel::never(), None)
    .await;
    assert_eq!(f.end, End::Exited { code: 0 });
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "the key is [redacted: OPENAI_API_KEY], a token [redacted]\nenv: [redacted: OPENAI_API_KEY]\ndone\n"
    );

    // A flood of keys, cut to 64 KiB: the cuts fall on redacted text, never on a key.
    let flood = dir.path().join("flood.log");
    let script = "echo FIRST; yes \"x $OPENAI_API_KEY\" | head -n 80000 | tr -d '\\n'; echo; echo LAST";
    let f = baton_exec::spawn(
        sh(dir.path(), script).env("OPENAI_API_KEY", key).log(&flood, 64 << 10).redact(redactor),
    )
    .wait(Cancel::never(), None)
    .await;
    assert_eq!(f.end, End::Exited { code: 0 });
    assert!(f.log_dropped > 0);
    let text = std::fs::read_to_string(&flood).unwrap();
    assert!(text.starts_with("FIRST\nx [redacted: OPENAI_API_KEY]x [redacted"), "{}", &text[..100]);
    assert!(text.trim_end().ends_with("LAST"));
    for piece in key.as_bytes().windows(8) {
        let piece = std::str::from_utf8(piece).unwrap();
        assert!(!text.contains(piece), "part of the key, {piece:?}, is in the log");
    }
}

/// A child this process started some other way (a test's own git command on another thread)
/// is not a stray: reaping leaves it running.
#[test]
fn reaping_strays_leaves_children_started_without_baton_alone() {
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    baton_exec::reap_strays();
    assert!(child.try_wait().unwrap().is_none(), "reap_strays killed a child it did not start");
    child.kill().unwrap();
    child.wait().unwrap();
}
