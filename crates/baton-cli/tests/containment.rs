//! Misbehaving agents against the sandbox: what they try to do to the user's repository, HOME,
//! keys and processes does not happen, and a fix they also make is still verified and wins.
//! Each runs under bubblewrap and, where bubblewrap cannot start, under Landlock: where a
//! sandbox cannot run its tests say they are skipped (CI, which installs bubblewrap, sets
//! BATON_REQUIRE_SANDBOX and fails them instead).

#[expect(dead_code, reason = "the helpers are shared with e2e.rs, which uses the rest")]
mod common;

use std::path::Path;
use std::time::Duration;

use common::{Env, FIX, sandbox_works, text};

fn landlock_works() -> bool {
    match baton_exec::Landlock::probe() {
        Ok(_) => true,
        Err(e) => {
            assert!(std::env::var_os("BATON_REQUIRE_SANDBOX").is_none(), "no Landlock here: {e}");
            eprintln!("skipped: no Landlock here: {e}");
            false
        }
    }
}

/// What the user would see of their repository: HEAD, branches, status, stash.
fn user_state(env: &Env) -> String {
    [
        env.repo.git(&["rev-parse", "HEAD"]),
        env.repo.git(&["for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/tags"]),
        env.repo.git(&["status", "--porcelain", "--untracked-files=all"]),
    ]
    .join("\n")
}

#[test]
fn an_agent_cannot_touch_the_users_repository_home_or_keys_and_its_fix_still_wins() {
    if sandbox_works() {
        agent_is_contained("bwrap", "sandboxed with bubblewrap");
    }
}

#[test]
fn under_landlock_an_agent_cannot_write_the_users_repository_or_home_and_its_fix_still_wins() {
    if landlock_works() {
        agent_is_contained("landlock", "sandboxed with Landlock");
    }
}

/// An agent that tries everything against the user's repository, HOME and keys under the
/// sandbox `mode` (whose run header says `says`), then fixes the bug.
fn agent_is_contained(mode: &str, says: &str) {
    let env = Env::new();
    std::fs::create_dir_all(env.home.path().join(".ssh")).unwrap();
    std::fs::write(env.home.path().join(".ssh/id_ed25519"), "SECRET-KEY-MATERIAL\n").unwrap();
    let before = user_state(&env);
    let head = env.repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let (user, home) = (env.repo.path().display().to_string(), env.home.path().display().to_string());
    // Each attempt reports how it went into the agent's own tree; then the agent fixes the bug.
    let script = format!(
        r#"#!/bin/sh
try() {{ if sh -c "$2" >/dev/null 2>&1; then echo "$1: done" >> attempts.txt; else echo "$1: refused" >> attempts.txt; fi; }}
try tree "echo pwned > {user}/PWNED"
try edit "echo pwned >> {user}/src/calc.sh"
try update-ref "git -C {user} update-ref refs/heads/main HEAD~0^{{tree}} || git -C {user} update-ref refs/heads/main $(git -C {user} hash-object -w /dev/null)"
try branch "git -C {user} branch evil"
try push "git push {user} HEAD:refs/heads/pushed"
try home "echo pwned > {home}/PWNED"
try key "cat {home}/.ssh/id_ed25519 >> attempts.txt"
{fix}"#,
        fix = FIX.trim_start_matches("#!/bin/sh\n"),
    );
    let bad = env.agent("bad", &script);
    let out = env.baton(&["run", "fix add", "--agent", &bad, "--sandbox", mode]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(says), "the run header says so: {}", text(&out));

    assert_eq!(user_state(&env), before, "the user's repository changed");
    assert_eq!(env.repo.git(&["rev-parse", "main"]).trim(), head);
    assert!(!Path::new(&format!("{home}/PWNED")).exists(), "the agent wrote into the user's HOME");
    let show = env.show();
    assert_eq!(show["winner"], "c1", "{show:#}");
    let reference = format!("refs/baton/runs/{}/c1", show["run"].as_str().unwrap());
    let attempts = env.repo.git(&["show", &format!("{reference}:attempts.txt")]);
    for attempt in ["tree", "edit", "update-ref", "branch", "push", "home", "key"] {
        assert!(attempts.contains(&format!("{attempt}: refused")), "{attempt} was not refused:\n{attempts}");
    }
    assert!(!attempts.contains("SECRET"), "the agent read the user's key:\n{attempts}");
}

#[test]
fn a_test_stage_reaches_no_network_and_keys_stay_out_of_its_environment() {
    if sandbox_works() {
        stage_is_contained("bwrap");
    }
}

#[test]
fn under_landlock_a_test_stage_makes_no_tcp_connection_and_gets_no_agent_key() {
    if landlock_works() {
        stage_is_contained("landlock");
    }
}

/// A test stage that tries to reach a listener on 127.0.0.1 and to read an agent's key, under
/// the sandbox `mode`.
fn stage_is_contained(mode: &str) {
    let env = Env::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A review stage that says what it can reach and see.
    std::fs::write(
        env.repo.path().join("probe_env.py"),
        format!(
            "import os, socket\n\
             print('KEY-SEEN' if os.environ.get('ANTHROPIC_API_KEY') else 'NO-KEY')\n\
             try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('NETWORK-REACHED')\n\
             except OSError:\n    print('NO-NETWORK')\n"
        ),
    )
    .unwrap();
    let config = "[run]\ngrace = \"1s\"\n\n[[verify.stage]]\nname = \"test\"\nrun = \"sh tests/run.sh\"\nparser = \"tap\"\n\n\
                  [[verify.stage]]\nname = \"reach\"\nkind = \"custom\"\nrun = \"python3 probe_env.py\"\n";
    std::fs::write(env.repo.path().join("baton.toml"), config).unwrap();
    env.repo.git(&["add", "-A"]);
    env.repo.git(&["commit", "-qm", "a stage that reports what it reaches"]);
    let fix = env.agent("fix", FIX);
    let out = env
        .command(&["run", "fix add", "--agent", &fix, "--sandbox", mode])
        .env("ANTHROPIC_API_KEY", "sk-ant-should-not-leak")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = env.show()["run"].as_str().unwrap().to_owned();
    let log = std::fs::read_to_string(
        env.repo.path().join(".git/baton/runs").join(run).join("base/verify-reach.log"),
    )
    .unwrap();
    assert!(log.contains("NO-KEY") && log.contains("NO-NETWORK"), "{log}");
    drop(listener);
}

#[test]
fn an_agent_that_escapes_with_setsid_dies_with_a_killed_baton() {
    if !sandbox_works() {
        return;
    }
    let env = Env::new();
    let name = format!("baton-escapee-{}", std::process::id());
    let copy = env.agents.join(&name);
    std::fs::copy("/bin/sleep", &copy).unwrap();
    let script = format!("#!/bin/sh\nsetsid {} 1000 &\nsleep 1000\n", copy.display());
    let agent = env.agent("escapes", &script);
    let mut child = env
        .command(&["run", "fix add", "--agent", &agent, "--sandbox", "bwrap"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("cmdline")).ok())
            .any(|c| c.contains(&name))
    };
    let mut waited = 0;
    while !running() {
        assert!(waited < 600, "the agent never started its escapee");
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for _ in 0..100 {
        if !running() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!running(), "a process that left with setsid outlived the baton that was killed");
}

#[test]
fn a_fork_bomb_stops_at_the_process_limit() {
    if baton_exec::cgroups().pids.is_none() {
        // Without cgroups the limit is an rlimit, which never binds root and counts all of a
        // user's processes: no fork bomb is run where nothing could bound it.
        eprintln!("skipped: no cgroup can be made here");
        return;
    }
    let env = Env::new();
    // A fork bomb for three seconds (`timeout` ends its whole process group), then the fix.
    // The bomb's first shell forks once and becomes a `sleep`: a shell that cannot fork exits,
    // and would let `timeout` return early, leaving the bomb to starve the fix of processes.
    let bomb = env.agent(
        "bomb",
        &format!(
            "#!/bin/sh
timeout -s KILL 3 sh -c 'b() {{ b | b & }}; b & exec sleep 10' 2> bomb.err
{}",
            FIX.trim_start_matches("#!/bin/sh\n")
        ),
    );
    let out = env.baton(&["run", "fix add", "--agent", &bomb, "--set", "run.limits.processes=64"]);
    let all = text(&out);
    assert!(all.contains("64 processes per process tree"), "the header says the limit: {all}");
    assert_eq!(out.status.code(), Some(0), "the machine survived and the fix won: {all}");
    let show = env.show();
    let reference = format!("refs/baton/runs/{}/c1", show["run"].as_str().unwrap());
    let errors = env.repo.git(&["show", &format!("{reference}:bomb.err")]);
    assert!(errors.to_lowercase().contains("fork"), "the bomb hit the limit: {errors}");
}

#[test]
fn auto_confines_with_landlock_where_bubblewrap_cannot_start_and_says_so() {
    use std::os::unix::fs::PermissionsExt;
    if !landlock_works() {
        return;
    }
    let env = Env::new();
    // A bubblewrap that fails as it does where user namespaces are off.
    let fake = env.home.path().join("fake-bin");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(
        fake.join("bwrap"),
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(fake.join("bwrap"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default());
    let user = env.repo.path().display().to_string();
    let bad = env.agent(
        "bad",
        &format!(
            "#!/bin/sh\necho pwned > {user}/PWNED 2>/dev/null && echo done > attempt.txt || echo refused > attempt.txt\n{}",
            FIX.trim_start_matches("#!/bin/sh\n")
        ),
    );
    let out = env.command(&["run", "fix add", "--agent", &bad]).env("PATH", &path).output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("sandboxed with Landlock"), "the run header says which sandbox: {all}");
    assert!(
        all.contains("bubblewrap cannot start here (bwrap: No permissions to create new namespace)"),
        "the run says why not bubblewrap: {all}"
    );
    assert!(!env.repo.path().join("PWNED").exists(), "the agent wrote into the user's repository");
    let show = env.show();
    let reference = format!("refs/baton/runs/{}/c1", show["run"].as_str().unwrap());
    assert_eq!(env.repo.git(&["show", &format!("{reference}:attempt.txt")]).trim(), "refused");
    let doctor = env.command(&["doctor", "--json", "--no-check"]).env("PATH", &path).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(doc["sandbox"]["mode"], "auto", "{doc:#}");
    assert_eq!(doc["sandbox"]["confines"], true, "{doc:#}");
    assert!(doc["sandbox"]["landlock"]["abi"].as_i64().is_some_and(|abi| abi >= 1), "{doc:#}");
    assert!(doc["sandbox"]["says"].as_str().unwrap().starts_with("auto: Landlock ABI"), "{doc:#}");
}
