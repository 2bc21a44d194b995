//! Misbehaving agents and stages against `--sandbox landlock`, the sandbox for machines where
//! bubblewrap cannot start: what they try against the user's repository, HOME and keys fails,
//! and a fix they also make is still verified and wins. Where the kernel has no Landlock they
//! say they are skipped (CI sets BATON_REQUIRE_SANDBOX and fails them instead).

#[expect(dead_code, reason = "the helpers are shared with e2e.rs, which uses the rest")]
mod common;

use std::path::Path;

use common::{Env, FIX, text};

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

/// What the user would see of their repository: HEAD, branches, status.
fn user_state(env: &Env) -> String {
    [
        env.repo.git(&["rev-parse", "HEAD"]),
        env.repo.git(&["for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/tags"]),
        env.repo.git(&["status", "--porcelain", "--untracked-files=all"]),
    ]
    .join("\n")
}

#[test]
fn under_landlock_an_agent_cannot_write_the_users_repository_or_home_and_its_fix_still_wins() {
    if !landlock_works() {
        return;
    }
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
    let out = env.baton(&["run", "fix add", "--agent", &bad, "--sandbox", "landlock"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("sandboxed with Landlock"), "the run header says so: {}", text(&out));

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
fn under_landlock_a_test_stage_makes_no_tcp_connection_and_gets_no_agent_key() {
    if !landlock_works() {
        return;
    }
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
        .command(&["run", "fix add", "--agent", &fix, "--sandbox", "landlock"])
        .env("ANTHROPIC_API_KEY", "sk-ant-should-not-leak")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let show = env.show();
    assert_eq!(show["winner"], "c1", "the fix was verified under Landlock and won: {show:#}");
    let run = show["run"].as_str().unwrap().to_owned();
    let log = std::fs::read_to_string(
        env.repo.path().join(".git/baton/runs").join(run).join("base/verify-reach.log"),
    )
    .unwrap();
    assert!(log.contains("NO-KEY") && log.contains("NO-NETWORK"), "{log}");
    drop(listener);
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
