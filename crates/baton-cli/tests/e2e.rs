//! The `baton` binary end to end, against real git repositories in temporary directories.
//! Agents are shell scripts: they stand in for a model, everything else is real.

#[expect(dead_code, reason = "the sandbox helper is for the sandbox tests")]
mod common;

use std::time::Duration;

use common::{Env, FIX, alive, candidate, recorded_pids, stderr, text};

#[test]
fn run_show_diff_merge_happy_path() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let noop = env.agent("noop", "#!/bin/sh\necho nothing to do\n");
    let before = env.repo.user_state();
    let out = env.baton(&["run", "Make add() add", "--agent", &fix, "--agent", &noop]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The user's working tree, index and branches are untouched by a run.
    assert_eq!(env.repo.user_state(), before);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("winner: c1 (fix): fixes 1 test and breaks none"), "{stdout}");

    let show = env.show();
    assert_eq!(show["winner"], "c1");
    assert_eq!(show["status"], "finished");
    let c1 = candidate(&show, "fix");
    assert_eq!(c1["rank"], 1);
    assert_eq!(c1["eligible"], true);
    assert_eq!(c1["evidence"]["fixed"], serde_json::json!(["adds"]));
    let noop_c = candidate(&show, "noop");
    assert_eq!(noop_c["eligible"], false);
    assert!(noop_c["explanation"][0].as_str().unwrap().contains("it changed nothing"), "{noop_c:#}");

    let run = show["run"].as_str().unwrap().to_owned();
    let diff = env.baton(&["diff", &run, "c1"]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff));
    assert!(String::from_utf8_lossy(&diff.stdout).contains("+add() { echo $(( $1 + $2 )); }"));
    let short = env.baton(&["diff", "c1", "--stat"]);
    assert!(String::from_utf8_lossy(&short.stdout).contains("src/calc.sh"), "{}", text(&short));

    let merge = env.baton(&["merge"]);
    assert_eq!(merge.status.code(), Some(0), "{}", text(&merge));
    assert!(String::from_utf8_lossy(&merge.stdout).contains("merged c1 of run"), "{}", text(&merge));
    assert_eq!(env.repo.read("src/calc.sh"), "add() { echo $(( $1 + $2 )); }\n");
    assert!(env.repo.git(&["status", "--porcelain"]).is_empty());
    let message = env.repo.git(&["log", "-1", "--format=%an|%s|%b"]);
    assert!(message.starts_with("Test User|Make add() add|"), "{message}");
    assert!(message.contains(&format!("Baton-Run: {run}")), "{message}");
    // The refs outlive the merge; workspaces do not.
    assert!(env.repo.git_ok(&["rev-parse", "--verify", &format!("refs/baton/runs/{run}/c2")]));
    assert!(env.workspaces().is_empty(), "{:?}", env.workspaces());
    let status = env.baton(&["status"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("merged"), "{}", text(&status));
}

#[test]
fn misbehaving_agents_end_as_they_should_and_leave_no_process() {
    let env = Env::new();
    let pids = env.home.path().join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    let p = pids.display();
    let crash = env.agent("crash", "#!/bin/sh\necho 'x' >> src/calc.sh\nkill -SEGV $$\n");
    let hang = env.agent("hang", &format!("#!/bin/sh\nsleep 1000 & echo $! > {p}/hang.pid\nwait\n"));
    let stubborn = env.agent(
        "stubborn",
        &format!("#!/bin/sh\ntrap '' TERM\necho $$ > {p}/stubborn.pid\nwhile :; do sleep 0.1; done\n"),
    );
    let orphan = env.agent(
        "orphan",
        &format!(
            "#!/bin/sh\n(trap '' TERM; exec sleep 1000) > /dev/null 2>&1 &\necho $! > {p}/orphan.pid\n{}",
            FIX.trim_start_matches("#!/bin/sh\n")
        ),
    );
    let escapee = env.agent(
        "escapee",
        &format!("#!/bin/sh\nsetsid sh -c 'echo $$ > {p}/escapee.pid; exec sleep 1000' > /dev/null 2>&1 < /dev/null &\nsleep 0.2\n"),
    );
    let deleter = env.agent("deleter", "#!/bin/sh\nrm -rf src tests\n");
    // 1 GB of output takes a few seconds to drain on a busy machine: this agent gets its own
    // time limit, from an [[agent]] entry in an extra configuration file.
    let flood = env.agent("flood", "#!/bin/sh\nhead -c 1000000000 /dev/zero\necho done\n");
    let extra = env.home.path().join("flood.toml");
    let flood_path = flood.trim_start_matches("command:");
    std::fs::write(
        &extra,
        format!(
            "[[agent]]\nname = \"flood\"\nkind = \"command\"\ncommand = \"{flood_path}\"\ntimeout = \"5m\"\n"
        ),
    )
    .unwrap();
    let extra = extra.to_str().unwrap();
    let out = env.baton(&[
        "--config",
        extra,
        "run",
        "Make add() add",
        "--set",
        "run.agent_timeout=2s",
        "--set",
        "run.log_limit=1MiB",
        // Unconfined: the agents record their pids outside their workspaces, as seen from
        // here (a sandbox has pids of its own); containment.rs has the sandboxed escapee.
        "--sandbox",
        "off",
        "--jobs",
        "7",
        "--agent",
        &crash,
        "--agent",
        &hang,
        "--agent",
        &stubborn,
        "--agent",
        &orphan,
        "--agent",
        &escapee,
        "--agent",
        &deleter,
        "--agent",
        "flood",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let show = env.show();
    let outcome = |agent: &str| candidate(&show, agent)["outcome"].clone();
    assert_eq!(outcome("crash"), serde_json::json!({"outcome": "failed", "reason": "killed by signal 11"}));
    assert_eq!(outcome("hang"), serde_json::json!({"outcome": "timed_out", "kind": "wall"}));
    assert_eq!(outcome("stubborn"), serde_json::json!({"outcome": "timed_out", "kind": "wall"}));
    assert_eq!(outcome("orphan")["outcome"], "completed");
    assert_eq!(outcome("deleter")["outcome"], "completed");
    assert_eq!(outcome("flood")["outcome"], "completed");
    // The orphan's parent did the fix; its leftover child did not stop it from winning.
    assert_eq!(show["winner"], candidate(&show, "orphan")["id"]);
    // Crashed and timed-out agents' partial work is on their refs.
    let crash_c = candidate(&show, "crash");
    assert_eq!(crash_c["files_changed"], 1, "{crash_c:#}");
    assert!(env.repo.git_ok(&["rev-parse", "--verify", crash_c["ref"].as_str().unwrap()]));
    // The deleter's deletions are collected as deletions, and it cannot pass verification.
    let deleter_c = candidate(&show, "deleter");
    assert_eq!(deleter_c["deletions"].as_u64().unwrap(), 9, "{deleter_c:#}");
    assert_eq!(deleter_c["eligible"], false);
    // The 1 GB log was capped at the limit.
    let run = show["run"].as_str().unwrap();
    let flood_id = candidate(&show, "flood")["id"].as_str().unwrap().to_owned();
    let log = env.repo.path().join(".git/baton/runs").join(run).join(flood_id).join("agent.log");
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(size <= (1 << 20) + 200, "agent log is {size} bytes");
    // No process outlives baton: not the grandchildren, not the escapee, not the stubborn one.
    let recorded = recorded_pids(&pids);
    assert_eq!(recorded.len(), 4, "{recorded:?}");
    for pid in recorded {
        assert!(!alive(pid), "process {pid} survived baton");
    }
}

#[test]
fn identical_candidates_are_verified_once() {
    let env = Env::new();
    let diff = "--- a/src/calc.sh\n+++ b/src/calc.sh\n@@ -1 +1 @@\n-add() { echo $(( $1 - $2 )); }\n+add() { echo $(( $1 + $2 )); }\n";
    let a = env.patch("a", diff);
    let b = env.patch("b", diff);
    let c = env.agent("c", FIX);
    let out = env.baton(&["run", "fix add", "--agent", &a, "--agent", &b, "--agent", &c, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let shared = events.iter().filter(|e| e["event"] == "verify_shared").count();
    assert_eq!(shared, 2, "three identical trees, two shared verifications");
    let stage_runs = events.iter().filter(|e| e["event"] == "stage_started").count();
    assert_eq!(stage_runs, 2, "the base and one candidate");
    let show = env.show();
    assert_eq!(show["verifications"], 1);
    // Whichever agent finished first was verified; the others share its verification.
    let primary: Vec<&serde_json::Value> =
        ["a", "b", "c"].iter().map(|a| candidate(&show, a)).filter(|c| c["verified_as"].is_null()).collect();
    assert_eq!(primary.len(), 1, "{show:#}");
    for agent in ["a", "b", "c"] {
        let c = candidate(&show, agent);
        assert!(c["verified_as"].is_null() || c["verified_as"] == primary[0]["id"], "{show:#}");
    }
    assert_eq!(candidate(&show, "a")["evidence"]["agrees_with"], serde_json::json!(["c2", "c3"]));
}

/// Three candidates fix add() and add a helper file: `a` and `b` write the same helper in other
/// layouts (and comments, quotes, ...), `c`'s helper does something else.
fn same_change_laid_out_differently(file: &str, a: &str, b: &str, c: &str) {
    let env = Env::new();
    let helper = |name: &str, body: &str| env.agent(name, &format!("{FIX}cat > {file} <<'SRC'\n{body}SRC\n"));
    let (a, b, c) = (helper("a", a), helper("b", b), helper("c", c));
    let out = env.baton(&["run", "fix add", "--agent", &a, "--agent", &b, "--agent", &c]);
    // Both changes fix the test: agreement decides nothing, and size only where they differ in it.
    assert!(matches!(out.status.code(), Some(0 | 4)), "{}", text(&out));
    let show = env.show();
    assert_eq!(show["verifications"], 3, "three different trees");
    assert_eq!(candidate(&show, "a")["evidence"]["agrees_with"], serde_json::json!(["c2"]), "{file}");
    assert_eq!(candidate(&show, "b")["evidence"]["agrees_with"], serde_json::json!(["c1"]), "{file}");
    assert_eq!(candidate(&show, "c")["evidence"]["agrees_with"], serde_json::json!([]), "{file}");
}

#[test]
fn the_same_python_change_laid_out_differently_is_agreement() {
    same_change_laid_out_differently(
        "src/helper.py",
        "def total(xs):\n    return sum([x for x in xs], start=0) + len('')\n",
        "def total(xs):\n    \"\"\"Sum them.\"\"\"\n    # start at zero\n    return sum(\n        [x for x in xs],\n        start=0,\n    ) + len(\"\")\n",
        "def total(xs):\n    return sum([x for x in xs], start=1) + len('')\n",
    );
}

#[test]
fn the_same_rust_typescript_or_go_change_laid_out_differently_is_agreement() {
    same_change_laid_out_differently(
        "src/helper.rs",
        "/// Sums them.\npub fn total(xs: &[i64]) -> i64 { xs.iter().sum::<i64>() + 0 }\n",
        "pub fn total(\n    xs: &[i64],\n) -> i64 {\n    // start at zero\n    xs.iter().sum::<i64>() + 0\n}\n",
        "pub fn total(xs: &[i64]) -> i64 { xs.iter().sum::<i64>() + 1 }\n",
    );
    same_change_laid_out_differently(
        "src/helper.ts",
        "export function total(xs: number[]): number { return xs.reduce((a, b) => a + b, 0) + ''.length }\n",
        "// start at zero\nexport function total(xs: number[]): number {\n  return xs.reduce((a, b) => a + b, 0,) + \"\".length;\n}\n",
        "export function total(xs: number[]): number { return xs.reduce((a, b) => a + b, 1) + ''.length }\n",
    );
    same_change_laid_out_differently(
        "helper.go",
        "package calc\n\nfunc Total(xs []int) int { t := 0; for _, x := range xs { t += x }; return t }\n",
        "package calc\n\n// Total sums them.\nfunc Total(xs []int) int {\n\tt := 0\n\tfor _, x := range xs {\n\t\tt += x\n\t}\n\treturn t\n}\n",
        "package calc\n\nfunc Total(xs []int) int { t := 1; for _, x := range xs { t += x }; return t }\n",
    );
}

#[test]
fn a_candidate_that_edits_tests_to_pass_loses_to_an_honest_one() {
    let env = Env::new();
    let honest = env.agent("honest", FIX);
    let cheat = env.agent(
        "cheat",
        "#!/bin/sh\nsed -i 's/check adds \"$(add 2 3)\" 5/check adds \"$(add 2 3)\" -1/' tests/run.sh\necho '# touched' >> src/calc.sh\n",
    );
    let out = env.baton(&["run", "fix add", "--agent", &cheat, "--agent", &honest]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let show = env.show();
    assert_eq!(show["winner"], candidate(&show, "honest")["id"]);
    let cheat_c = candidate(&show, "cheat");
    assert_eq!(cheat_c["evidence"]["protected_edits"], serde_json::json!(["tests/run.sh"]));
    assert_eq!(cheat_c["evidence"]["fixed"], serde_json::json!([]));
}

#[test]
fn no_winner_is_a_valid_answer_with_its_own_exit_code() {
    let env = Env::new();
    let broken = env.agent("broken", "#!/bin/sh\necho 'add() { echo 0; }' > src/calc.sh\n");
    let out = env.baton(&["run", "fix add", "--agent", &broken]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("no winner: nothing that ran shows that c1 does what the task asks"),
        "{}",
        text(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("c1: breaks adds_zero"), "{}", text(&out));
    assert_eq!(env.show()["winner"], serde_json::Value::Null);
}

/// Waits up to 30 s for `marker` to exist; fails with `what` if it does not.
fn wait_for(marker: &std::path::Path, what: &str) {
    for _ in 0..600 {
        if marker.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}");
}

/// Sends SIGINT to a running `baton run` once `marker` appears, and checks that nothing is left.
fn interrupt_when(env: &Env, args: &[&str], marker: &std::path::Path) {
    let child = env
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(marker, "the run never reached the point to interrupt");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(stderr(&out).contains("stopping"), "{}", text(&out));
    assert!(env.workspaces().is_empty(), "workspaces left behind: {:?}", env.workspaces());
    let show = env.show();
    assert_eq!(show["status"], "cancelled");
}

#[test]
fn ctrl_c_during_agents_keeps_refs_and_leaves_nothing_running() {
    let env = Env::new();
    let pids = env.home.path().join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    let marker = pids.join("started");
    let slow = env.agent(
        "slow",
        &format!(
            "#!/bin/sh\necho work >> src/calc.sh\nsleep 1000 & echo $! >> {0}/slow.pid\ntouch {1}\nwait\n",
            pids.display(),
            marker.display()
        ),
    );
    // The agents signal the test through a file outside their workspaces: unconfined.
    interrupt_when(&env, &["run", "fix add", "--agent", &slow, "-n", "2", "--sandbox", "off"], &marker);
    for pid in recorded_pids(&pids) {
        assert!(!alive(pid), "{pid} survived");
    }
    let show = env.show();
    for c in show["candidates"].as_array().unwrap() {
        let reference = c["ref"].as_str().unwrap_or_else(|| panic!("no ref: {c:#}"));
        assert!(env.repo.git(&["show", &format!("{reference}:src/calc.sh")]).contains("work"));
    }
}

#[test]
fn ctrl_c_during_verification_leaves_nothing_running() {
    let env = Env::new();
    let pids = env.home.path().join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    let marker = pids.join("verifying");
    env.repo.write(
        "baton.toml",
        &format!(
            // Slow on the candidate only: the base is verified while agents run, and the marker
            // must mean that the candidate's agent is done.
            "[run]\ngrace = \"1s\"\n\n[[verify.stage]]\nname = \"slow\"\nrun = \"grep -q '1 + ' src/calc.sh || exit 0; sleep 1000 & echo $! >> {0}/verify.pid; touch {1}; wait\"\n",
            pids.display(),
            marker.display()
        ),
    );
    env.repo.commit_all("slow verification");
    let fix = env.agent("fix", FIX);
    interrupt_when(&env, &["run", "fix add", "--agent", &fix, "--sandbox", "off"], &marker);
    let recorded = recorded_pids(&pids);
    assert!(!recorded.is_empty());
    for pid in recorded {
        assert!(!alive(pid), "{pid} survived");
    }
    let show = env.show();
    assert!(env.repo.git_ok(&["rev-parse", "--verify", show["candidates"][0]["ref"].as_str().unwrap()]));
}

#[test]
fn merge_refuses_when_the_target_moved_or_the_tree_is_dirty() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    assert_eq!(env.baton(&["run", "fix add", "--agent", &fix]).status.code(), Some(0));
    env.repo.write("notes.txt", "local\n");
    let out = env.baton(&["merge"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(stderr(&out).contains("uncommitted changes (notes.txt)"), "{}", text(&out));
    env.repo.commit_all("someone else's commit");
    let before = env.repo.user_state();
    let out = env.baton(&["merge"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(stderr(&out).contains("branch `main` moved since run"), "{}", text(&out));
    assert_eq!(env.repo.user_state(), before);
}

#[test]
fn merge_onto_a_branch_that_is_not_checked_out_moves_only_that_branch() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    env.repo.git(&["branch", "release"]);
    assert_eq!(env.baton(&["run", "fix add", "--agent", &fix, "--target", "release"]).status.code(), Some(0));
    let out = env.baton(&["merge"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.repo.git(&["show", "release:src/calc.sh"]), "add() { echo $(( $1 + $2 )); }\n");
    assert_eq!(env.repo.read("src/calc.sh"), common::CALC, "the checked-out branch is untouched");
}

#[test]
fn bad_input_is_refused_with_a_clear_message_and_changes_nothing() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let not_repo = tempfile::tempdir().unwrap();
    let empty = baton_testkit::TestRepo::empty();
    let before = env.repo.all_refs();
    let cases: Vec<(Vec<String>, Option<&std::path::Path>, i32, &str)> = vec![
        (
            vec!["run".into(), "x".into(), "--agent".into(), fix.clone()],
            Some(not_repo.path()),
            2,
            "is not inside a git repository",
        ),
        (
            vec!["run".into(), "x".into(), "--agent".into(), fix.clone()],
            Some(empty.path()),
            2,
            "has no commits yet",
        ),
        (
            vec!["run".into(), "x".into(), "--agent".into(), fix.clone(), "--base".into(), "nope".into()],
            None,
            2,
            "`nope` does not name a commit",
        ),
        (
            vec!["run".into(), "x".into(), "--agent".into(), "command:baton-no-such-agent".into()],
            None,
            2,
            "`baton-no-such-agent` was not found on PATH",
        ),
        (
            vec!["run".into(), "x".into(), "--agent".into(), "patch:missing.diff".into()],
            None,
            2,
            "missing.diff does not exist",
        ),
        (
            vec!["run".into(), "x".into(), "--agent".into(), "robot".into()],
            None,
            2,
            "`robot` is not an agent",
        ),
        (vec!["run".into(), "x".into()], None, 2, "no agents to run"),
        (vec!["run".into(), "   ".into(), "--agent".into(), fix.clone()], None, 2, "the task is empty"),
        (
            vec![
                "run".into(),
                "x".into(),
                "--agent".into(),
                fix.clone(),
                "--set".into(),
                "run.jbos=1".into(),
            ],
            None,
            3,
            "--set run.jbos=1: unknown field `jbos`",
        ),
        (
            vec!["run".into(), "x".into(), "--agent".into(), fix.clone(), "--strategy".into(), "yolo".into()],
            None,
            3,
            "unknown strategy `yolo`",
        ),
        (vec!["show".into(), "no-such-run".into()], None, 2, "run `no-such-run` does not exist"),
        (vec!["diff".into(), "c9".into()], None, 2, "there are no runs yet"),
        (vec!["merge".into()], None, 2, "there are no runs yet"),
    ];
    for (args, dir, code, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = match dir {
            Some(d) => env.baton_in(d, &args),
            None => env.baton(&args),
        };
        assert_eq!(out.status.code(), Some(code), "baton {args:?}\n{}", text(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.contains(message),
            "baton {args:?}: expected {message:?}\n{}",
            text(&out)
        );
    }
    assert_eq!(env.repo.all_refs(), before, "a refused command created refs");
    assert!(env.workspaces().is_empty());

    // A malformed baton.toml names file, line and column.
    env.repo.write("baton.toml", "[run]\njobs = \"many\"\n");
    let out = env.baton(&["run", "x", "--agent", &fix]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(stderr(&out).contains("baton.toml:2:8: invalid type"), "{}", text(&out));
    env.repo.write("baton.toml", common::CONFIG);

    // A dirty tree is refused unless asked for, and then it is the base.
    env.repo.write("src/calc.sh", "add() { echo $(( $1 * $2 )); }\n");
    let out = env.baton(&["run", "x", "--agent", &fix]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(stderr(&out).contains("uncommitted changes (src/calc.sh)"), "{}", text(&out));
    assert_eq!(env.repo.all_refs(), before);
    let out = env.baton(&["run", "x", "--agent", &env.agent("noop", "#!/bin/sh\ntrue\n"), "--include-dirty"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(stderr(&out).contains("running on a snapshot of 1 uncommitted change"), "{}", text(&out));
    assert_eq!(
        env.repo.read("src/calc.sh"),
        "add() { echo $(( $1 * $2 )); }\n",
        "the dirty file is untouched"
    );

    // Unknown candidates of a run that exists.
    let out = env.baton(&["diff", "c9"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("has no candidate `c9` (it has c1)"), "{}", text(&out));
    let out = env.baton(&["merge", "--candidate", "c7"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn merge_from_a_detached_head_needs_a_target() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let head = env.repo.head();
    env.repo.git(&["checkout", "--quiet", "--detach", &head]);
    assert_eq!(env.baton(&["run", "fix add", "--agent", &fix]).status.code(), Some(0));
    let out = env.baton(&["merge"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(stderr(&out).contains("HEAD was detached when run"), "{}", text(&out));
    assert!(stderr(&out).contains("pass --target BRANCH"), "{}", text(&out));
    let out = env.baton(&["merge", "--target", "main"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.repo.git(&["show", "main:src/calc.sh"]), "add() { echo $(( $1 + $2 )); }\n");
}

#[test]
fn clean_removes_workspaces_and_keeps_refs_unless_told() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    assert_eq!(env.baton(&["run", "fix add", "--agent", &fix]).status.code(), Some(0));
    assert_eq!(env.workspaces().len(), 2, "the candidate's and the baseline's");
    let out = env.baton(&["clean"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(env.workspaces().is_empty());
    assert_eq!(env.repo.git(&["for-each-ref", "refs/baton/"]).lines().count(), 2, "base and c1 refs stay");
    let out = env.baton(&["clean", "--refs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(env.repo.git(&["for-each-ref", "refs/baton/"]).is_empty());
}

#[test]
fn init_writes_a_config_that_loads_and_refuses_to_overwrite() {
    let env = Env::new();
    std::fs::remove_file(env.repo.file("baton.toml")).unwrap();
    env.repo.write("Cargo.toml", "[package]\nname = \"x\"\n");
    let out = env.baton(&["init", "--no-check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!stderr(&out).contains("ran the stages"), "{}", text(&out));
    let written = env.repo.read("baton.toml");
    assert!(written.contains("run = \"cargo test"), "{written}");
    let out = env.baton(&["init"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(stderr(&out).contains("already exists; pass --force"));
}

/// `init` runs the stages it wrote once on HEAD and says whether they read test results;
/// `doctor` does the same with the stages a run would use, and a runner that is missing makes
/// it say that `baton run` cannot work here.
#[test]
fn init_and_doctor_run_the_stages_once_and_say_whether_they_can_verify() {
    let env = Env::new();
    std::fs::remove_file(env.repo.file("baton.toml")).unwrap();
    env.repo.write("Cargo.toml", "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n");
    env.repo.write(".gitignore", "target\n");
    env.repo.write("src/lib.rs", "#[cfg(test)]\nmod tests {\n    #[test]\n    fn works() {}\n}\n");
    env.repo.commit_all("a crate");
    let out =
        env.command(&["init", "--check-timeout", "5m"]).env("PATH", path_with_cargo()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("ran the stages once on HEAD"), "{err}");
    assert!(
        err.contains("1 test, 1 passing, 0 failing") && err.contains("reads results test by test"),
        "{err}"
    );
    assert!(!err.contains("problem:"), "{err}");

    env.repo.write(
        "baton.toml",
        "[[verify.stage]]\nname = \"test\"\nrun = \"no-such-runner --all\"\nparser = \"tap\"\n",
    );
    let before = env.repo.user_state();
    let out = env.baton(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = doc["stage_check"]["problems"].to_string();
    assert!(problems.contains("stage `test` exited 127 on the base"), "{problems}");
    assert!(problems.contains("no-such-runner: not found"), "{problems}");
    assert_eq!(env.repo.user_state(), before, "a check changes nothing of the user's");
    let out = env.baton(&["doctor", "--no-check", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["stage_check"].is_null());
}

/// A new user's first steps, as the README gives them: the `baton.toml` that `init` just wrote
/// (not committed yet) neither blocks the run nor the merge, and stays as it is.
#[test]
fn init_then_run_then_merge_works_as_written() {
    let env = Env::new();
    env.repo.git(&["rm", "--quiet", "baton.toml"]);
    env.repo.commit_all("no config yet");
    let out = env.baton(&["init", "--no-check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The detected stages cannot run this repository's shell tests: configure them by hand, as
    // the message after `init` says, without committing.
    env.repo.write("baton.toml", common::CONFIG);
    let out = env.baton(&["run", "fix add", "--agent", &env.agent("fix", FIX)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = env.baton(&["merge"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.repo.read("src/calc.sh"), "add() { echo $(( $1 + $2 )); }\n");
    assert_eq!(env.repo.read("baton.toml"), common::CONFIG, "the uncommitted config stays");
    assert!(env.repo.git(&["status", "--porcelain"]).contains("?? baton.toml"));
}

/// A run on a snapshot of uncommitted work lands its change on the branch it started from; the
/// work stays uncommitted beside it. Work that changed since the run is refused, untouched.
#[test]
fn a_run_on_uncommitted_work_merges_onto_its_branch_and_keeps_the_work_uncommitted() {
    let env = Env::new();
    env.repo.write("notes.txt", "my notes\n");
    env.repo.write("tests/run.sh", &format!("{}# my local tweak\n", common::TESTS));
    let out = env.baton(&["run", "fix add", "--agent", &env.agent("fix", FIX), "--include-dirty"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let head = env.repo.head();

    // Work that moved on since the run is not what was verified.
    env.repo.write("notes.txt", "my notes, edited later\n");
    let before = env.repo.user_state();
    let out = env.baton(&["merge"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(stderr(&out).contains("differ from the snapshot the run started from"), "{}", text(&out));
    assert_eq!(env.repo.user_state(), before);

    env.repo.write("notes.txt", "my notes\n");
    let out = env.baton(&["merge"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let merged = env.repo.head();
    assert_eq!(
        env.repo.git(&["rev-parse", "HEAD~1"]).trim(),
        head,
        "one commit on the branch it started from"
    );
    assert_eq!(env.repo.git(&["show", "HEAD:src/calc.sh"]), "add() { echo $(( $1 + $2 )); }\n");
    assert_eq!(
        env.repo.git(&["show", "HEAD:tests/run.sh"]),
        common::TESTS,
        "the user's work is not committed"
    );
    assert_ne!(merged, head);
    assert_eq!(env.repo.read("src/calc.sh"), "add() { echo $(( $1 + $2 )); }\n");
    assert_eq!(env.repo.read("notes.txt"), "my notes\n");
    assert!(env.repo.read("tests/run.sh").ends_with("# my local tweak\n"));
    let status = env.repo.git(&["status", "--porcelain"]);
    assert!(status.contains(" M tests/run.sh") && status.contains("?? notes.txt"), "{status}");
    assert!(!status.contains("calc.sh"), "{status}");
}

/// The stages `init` finds for a Rust crate, run by real cargo: each test keeps the name of its
/// binary (two tests named `same` stay apart), and the rerun runs only the failing tests, which
/// tells a flaky one apart.
#[test]
fn a_rust_crate_s_detected_stages_keep_binaries_apart_and_rerun_only_failures() {
    let env = Env::new();
    std::fs::remove_file(env.repo.file("baton.toml")).unwrap();
    env.repo.write("Cargo.toml", "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n");
    env.repo.write(".gitignore", "target\n.flipped\n");
    // `flip` fails the first time it runs in a workspace, and passes after
    env.repo.write(
        "src/lib.rs",
        "pub fn add(a: i32, b: i32) -> i32 { a - b }\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn same() {}\n    #[test]\n    fn flip() {\n        let p = std::path::Path::new(env!(\"CARGO_MANIFEST_DIR\")).join(\".flipped\");\n        if !p.exists() { std::fs::write(&p, \"\").unwrap(); panic!(\"first run\"); }\n    }\n}\n",
    );
    env.repo.write("tests/it.rs", "#[test]\nfn same() { assert_eq!(calc::add(2, 3), 5); }\n");
    env.repo.commit_all("a crate with a bug");
    let out = env.baton(&["init", "--no-check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    env.repo.commit_all("baton.toml");
    let fix = env.agent("fix", "#!/bin/sh\nsed -i 's/a - b/a + b/' src/lib.rs\n");
    let out =
        env.command(&["run", "fix add", "--agent", &fix]).env("PATH", path_with_cargo()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let show = env.show();
    assert_eq!(
        candidate(&show, "fix")["evidence"]["fixed"],
        serde_json::json!(["it::test::same"]),
        "{show:#}"
    );
    assert_eq!(candidate(&show, "fix")["evidence"]["broken"], serde_json::json!([]), "{show:#}");
    // the base's rerun: its two failing tests, by their paths, in their binaries, and no other
    let rerun = env
        .repo
        .path()
        .join(".git/baton/runs")
        .join(show["run"].as_str().unwrap())
        .join("base/verify-test.rerun1.log");
    let rerun = std::fs::read_to_string(&rerun).unwrap();
    let mut ran: Vec<&str> =
        rerun.lines().filter(|l| l.starts_with("test ") && l.contains(" ... ")).collect();
    ran.sort();
    assert_eq!(ran, ["test same ... FAILED", "test tests::flip ... ok"], "{rerun}");
    let shown = text(&env.baton(&["show"]));
    assert!(
        shown.contains("3 tests, 1 passing, 2 failing, 1 flaky"),
        "the baseline names its flaky test: {shown}"
    );
}

#[test]
fn demo_picks_the_minimal_correct_fix() {
    let env = Env::new();
    let dir = env.home.path().join("demo");
    let out = env.baton_in(env.home.path(), &["demo", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("winner: c1 (minimal-fix)"), "{stdout}");
    // Both fixes pass every test; only size separates them, and the scoreboard says so.
    assert!(stdout.contains("confidence: low (decided by size:"), "{stdout}");
    let show = env.baton_in(&dir.join("sample"), &["show", "--json"]);
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let place = |agent: &str| candidate(&show, agent)["rank"].as_u64().unwrap();
    assert!(place("minimal-fix") < place("sprawling-fix"));
    assert!(place("sprawling-fix") < place("edits-the-tests"));
    for agent in ["edits-the-tests", "hangs", "crashes"] {
        assert_eq!(candidate(&show, agent)["eligible"], false, "{agent}");
    }
    // Breaking a test is evidence against it, not a gate: it ranks below both fixes.
    let breaker = candidate(&show, "breaks-other-tests");
    assert_eq!(breaker["eligible"], true);
    assert!(place("breaks-other-tests") > place("sprawling-fix"));
    assert!(breaker["evidence"]["negative"][0].as_str().unwrap().starts_with("breaks "), "{breaker}");
    let tamper = &candidate(&show, "edits-the-tests")["evidence"]["tamper"];
    assert!(
        tamper[0].as_str().unwrap().starts_with("tests/test_pager.py:")
            && tamper[0].as_str().unwrap().contains("deletes the test `test_page_count_matches`"),
        "{tamper}"
    );
    assert_eq!(candidate(&show, "hangs")["outcome"]["outcome"], "timed_out");
    assert_eq!(show["decided_by"], serde_json::json!({"evidence": "size", "confidence": "low"}));
    // The test editor only deleted and weakened tests: its file adds no test to the matrix.
    assert_eq!(show["matrix"], serde_json::json!([]), "{:#}", show["matrix"]);
}

#[test]
fn every_workspace_kind_runs_the_same_tournament() {
    for mode in ["clone", "worktree", "auto"] {
        let env = Env::new();
        let fix = env.agent("fix", FIX);
        let noop = env.agent("noop", "#!/bin/sh\ntrue\n");
        let before = env.repo.user_state();
        let set = format!("run.workspace={mode}");
        let out = env.baton(&["run", "fix add", "--agent", &noop, "--agent", &fix, "--set", &set]);
        assert_eq!(out.status.code(), Some(0), "{mode}: {}", text(&out));
        assert_eq!(env.repo.user_state(), before, "{mode}");
        let show = env.show();
        assert_eq!(show["winner"], "c2", "{mode}");
        assert_eq!(show["verifications"], 1, "{mode}");
        let out = env.baton(&["clean"]);
        assert_eq!(out.status.code(), Some(0), "{mode}: {}", text(&out));
        assert!(env.workspaces().is_empty(), "{mode}: {:?}", env.workspaces());
        assert_eq!(
            env.repo.git(&["worktree", "list"]).lines().count(),
            1,
            "{mode}: a worktree was left registered"
        );
    }
}

#[test]
fn probes_show_which_candidates_change_the_behaviour() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let other = env.agent("other", "#!/bin/sh\necho '# a comment' >> src/calc.sh\n");
    let probe = "sh -c '. ./src/calc.sh; add 2 3'";
    let out = env.baton(&[
        "run",
        "add(2, 3) prints -1",
        "--agent",
        &other,
        "--agent",
        &fix,
        "--probe",
        probe,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let outputs: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "probes_run")
        .map(|e| {
            (
                e["subject"].as_str().unwrap().to_owned(),
                e["probes"][0]["statements"][0].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(outputs.contains(&("base".into(), "-1".into())), "{outputs:?}");
    assert!(outputs.contains(&("c2".into(), "5".into())), "{outputs:?}");
    let show = env.show();
    assert_eq!(candidate(&show, "fix")["evidence"]["probe_changed"], 1);
    assert_eq!(candidate(&show, "other")["evidence"]["probe_changed"], 0);
    let why = candidate(&show, "fix")["explanation"].to_string();
    assert!(why.contains("--probe 1: output differs from the base's"), "{why}");
}

/// An agent's reproduction script, left at the top of the repository, runs on the base and on
/// every candidate: the candidate under which it runs to its end beats a smaller change under
/// which it still fails.
#[test]
fn a_candidates_reproduction_script_is_evidence_for_every_candidate() {
    let env = Env::new();
    // No test separates the candidates here: only the script can.
    env.repo.write(
        "baton.toml",
        "[run]\ngrace = \"1s\"\n\n[[verify.stage]]\nname = \"syntax\"\nrun = \"sh -n src/calc.sh\"\nparser = \"exit-code\"\n",
    );
    env.repo.commit_all("check only the syntax");
    let script = "import subprocess\nout = subprocess.run(['sh', '-c', '. ./src/calc.sh; add 2 3'], capture_output=True, text=True).stdout.strip()\nif out != '5':\n    raise ValueError('add(2, 3) gives ' + out)\nprint('add works')\n";
    let wrong = env.agent(
        "wrong",
        &format!("#!/bin/sh\nsed -i 's/\\$1 - \\$2/$1 * $2/' src/calc.sh\ncat > reproduce.py <<'EOF'\n{script}EOF\n"),
    );
    let fix = env.agent(
        "fix",
        &format!("{FIX}for i in 1 2 3 4 5 6 7 8 9 10; do echo \"# note $i\" >> src/calc.sh; done\n"),
    );
    // Only a script, and nothing of the project changed: out, however small.
    let lazy = env.agent("lazy", "#!/bin/sh\necho \"print('looked')\" > check.py\n");
    let out =
        env.baton(&["run", "add(2, 3) prints -1", "--agent", &wrong, "--agent", &fix, "--agent", &lazy]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let show = env.show();
    assert_eq!(show["winner"], candidate(&show, "fix")["id"], "{show:#}");
    let lazy_gates = candidate(&show, "lazy")["gates"].to_string();
    assert!(lazy_gates.contains("it only added a script at the repository's top"), "{lazy_gates}");
    assert!(candidate(&show, "lazy")["verified_as"].is_null(), "its tree is the base's: not verified");
    assert_eq!(show["decided_by"]["evidence"], "examples", "{show:#}");
    assert_eq!(candidate(&show, "fix")["evidence"]["probe_fixed"], 1);
    assert_eq!(candidate(&show, "wrong")["evidence"]["probe_fixed"], 0);
    let why = candidate(&show, "fix")["explanation"].to_string();
    assert!(
        why.contains("reproduce.py: runs to its end; fails on the base with ValueError: add(2, 3) gives -1"),
        "{why}"
    );
    let wrong_why = candidate(&show, "wrong")["explanation"].to_string();
    assert!(
        wrong_why.contains(
            "also adds a script at the repository's top (a reproduction, it seems); a merge lands it"
        ),
        "{wrong_why}"
    );

    let off = env.baton(&[
        "run",
        "add(2, 3) prints -1",
        "--agent",
        &wrong,
        "--agent",
        &fix,
        "--set",
        "verify.candidate_scripts=0",
    ]);
    // Without the script nothing that ran separates them, and the smaller change is no better
    // than chance: no winner.
    assert_eq!(off.status.code(), Some(4), "{}", text(&off));
    let show = env.show();
    assert_eq!(show["winner"], serde_json::Value::Null);
    assert_eq!(show["shortlist"].as_array().map(Vec::len), Some(2), "{show:#}");
}

#[test]
fn hidden_tests_judge_candidates_but_no_agent_can_find_them() {
    let env = Env::new();
    env.repo.write(
        "baton.toml",
        "[run]\ngrace = \"1s\"\n\n[[verify.stage]]\nname = \"test\"\nrun = \"for t in tests/*.sh; do sh $t; done\"\nparser = \"tap\"\n",
    );
    env.repo.commit_all("run every test script");
    let hidden = env.home.path().join("acceptance");
    std::fs::create_dir_all(hidden.join("tests")).unwrap();
    std::fs::write(
        hidden.join("tests/hidden.sh"),
        "#!/bin/sh\n. ./src/calc.sh\necho 1..1\nif [ \"$(add 10 20)\" = 30 ]; then echo 'ok 1 - adds_big'; else echo 'not ok 1 - adds_big'; fi\n",
    )
    .unwrap();
    let fix = env.agent("fix", FIX);
    let searcher = env.agent(
        "searcher",
        "#!/bin/sh\n{ grep -rl adds_big . ; git log --all -p | grep adds_big; git grep adds_big $(git rev-list --all); } > found.txt 2>/dev/null\necho '# looked around' >> src/calc.sh\n",
    );
    let hidden_arg = hidden.to_str().unwrap();
    let out =
        env.baton(&["run", "fix add", "--agent", &searcher, "--agent", &fix, "--hidden-tests", hidden_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let show = env.show();
    assert_eq!(show["winner"], candidate(&show, "fix")["id"]);
    let fixed = &candidate(&show, "fix")["evidence"]["fixed"];
    assert!(fixed.as_array().unwrap().contains(&serde_json::json!("adds_big")), "{fixed}");
    let searched = candidate(&show, "searcher")["ref"].as_str().unwrap().to_owned();
    assert_eq!(
        env.repo.git(&["show", &format!("{searched}:found.txt")]),
        "",
        "the agent found the hidden tests"
    );
    // The hidden test is not in any candidate's work, nor in the user's branches.
    assert!(!env.repo.git_ok(&["cat-file", "-e", &format!("{searched}:tests/hidden.sh")]));
    assert!(!env.repo.file("tests/hidden.sh").exists());

    assert_eq!(show["hidden_tests"]["files"], serde_json::json!(["tests/hidden.sh"]), "{show:#}");
    assert!(stderr(&out).contains("hidden tests from "), "{}", text(&out));

    let out = env.baton(&["run", "fix add", "--agent", &fix, "--hidden-tests", "no-such-dir-or-rev"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("hidden tests `no-such-dir-or-rev`: there is no such directory or file"),
        "{}",
        text(&out)
    );
}

/// Hidden tests from a revision or a patch file take only the tests: the fix beside them in the
/// same commit or patch would otherwise reach every candidate. What was taken and what was left
/// out is said in the run, in `show` and in `show --json`.
#[test]
fn hidden_tests_from_a_revision_or_a_patch_take_only_the_tests() {
    let env = Env::new();
    env.repo.write(
        "baton.toml",
        "[run]\ngrace = \"1s\"\n\n[[verify.stage]]\nname = \"test\"\nrun = \"for t in tests/*.sh; do sh $t; done\"\nparser = \"tap\"\n",
    );
    env.repo.commit_all("run every test script");
    let main = env.repo.head();
    let hidden_test = "#!/bin/sh\n. ./src/calc.sh\necho 1..1\nif [ \"$(add 10 20)\" = 30 ]; then echo 'ok 1 - adds_big'; else echo 'not ok 1 - adds_big'; fi\n";
    // The maintainers' commit: the fix and its test.
    env.repo.git(&["checkout", "--quiet", "-b", "upstream"]);
    env.repo.write("src/calc.sh", "add() { echo $(( $1 + $2 )); }\n");
    env.repo.write("tests/hidden.sh", hidden_test);
    env.repo.commit_all("fix add, with a test");
    let patch = env.home.path().join("upstream.diff");
    std::fs::write(&patch, env.repo.git(&["diff", &main, "HEAD"])).unwrap();
    env.repo.git(&["checkout", "--quiet", "main"]);
    let idle = env.agent("idle", "#!/bin/sh\necho 'sub() { echo $(( $1 - $2 )); }' >> src/calc.sh\n");
    for source in ["upstream", patch.to_str().unwrap()] {
        let out = env.baton(&["run", "fix add", "--agent", &idle, "--hidden-tests", source]);
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("hidden tests from {source}: 1 file (tests/hidden.sh)")), "{err}");
        assert!(err.contains("warning: left out 1 file that is not tests (a fix among them would reach every candidate): src/calc.sh"), "{err}");
        let show = env.show();
        assert_eq!(show["hidden_tests"]["left_out"], serde_json::json!(["src/calc.sh"]), "{show:#}");
        // Had the fix come along, the idle candidate would pass the hidden test.
        let idle_c = candidate(&show, "idle");
        assert_eq!(idle_c["evidence"]["fixed"], serde_json::json!([]), "{show:#}");
        let shown = text(&env.baton(&["show"]));
        assert!(shown.contains("hidden tests from"), "{shown}");
    }
    // A patch that does not apply to the base is refused, saying so.
    let stale = env.home.path().join("stale.diff");
    std::fs::write(&stale, "--- a/src/calc.sh\n+++ b/src/calc.sh\n@@ -1 +1 @@\n-nothing like this\n+x\n")
        .unwrap();
    let before = env.repo.all_refs();
    let out = env.baton(&["run", "fix add", "--agent", &idle, "--hidden-tests", stale.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("the patch does not apply to the base"), "{}", text(&out));
    assert_eq!(env.repo.all_refs(), before, "a refused run changes nothing");
}

#[test]
fn tests_one_candidate_wrote_are_evidence_for_the_others() {
    let env = Env::new();
    env.repo.write(
        "baton.toml",
        "[run]\ngrace = \"1s\"\n\n[[verify.stage]]\nname = \"test\"\nrun = \"for t in tests/*.sh; do sh $t; done\"\nparser = \"tap\"\n",
    );
    env.repo.commit_all("run every test script");
    let with_test = env.agent(
        "with-test",
        &format!(
            "{FIX}cat > tests/more.sh <<'EOF'\n. ./src/calc.sh\necho 1..1\nif [ \"$(add 1 1)\" = 2 ]; then echo 'ok 1 - adds_ones'; else echo 'not ok 1 - adds_ones'; fi\nEOF\n"
        ),
    );
    let plain = env.agent("plain", &format!("{FIX}echo '# same fix, other words' >> src/calc.sh\n"));
    let wrong = env.agent("wrong", "#!/bin/sh\nsed -i 's/\\$1 - \\$2/$1 * $2/' src/calc.sh\n");
    let out = env.baton(&["run", "fix add", "--agent", &wrong, "--agent", &plain, "--agent", &with_test]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let show = env.show();
    let ev = |agent: &str| candidate(&show, agent)["evidence"].clone();
    assert_eq!(ev("plain")["matrix_fixed_others"], 1, "{show:#}");
    assert_eq!(ev("with-test")["matrix_fixed_own"], 1);
    assert_eq!(ev("wrong")["matrix_fixed_others"], 0);
    let row = &show["matrix"][0];
    assert_eq!(row["files"], serde_json::json!(["tests/more.sh"]));
    assert_eq!(row["authors"], serde_json::json!([candidate(&show, "with-test")["id"]]));
    let base_cell = row["cells"].as_array().unwrap().iter().find(|c| c["subject"] == "base").unwrap();
    assert_eq!((base_cell["passing"].as_u64(), base_cell["failing"].as_u64()), (Some(0), Some(1)));
    let text_show = env.baton(&["show"]);
    assert!(
        String::from_utf8_lossy(&text_show.stdout).contains("tests the candidates wrote"),
        "{}",
        text(&text_show)
    );
}

#[test]
fn the_next_baton_ends_what_a_killed_baton_left_and_saves_its_work() {
    let env = Env::new();
    let pids = env.home.path().join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    let marker = pids.join("working");
    let slow = env.agent(
        "slow",
        &format!(
            "#!/bin/sh\necho 'unsaved work' >> src/calc.sh\necho $$ > {0}/agent.pid\ntouch {1}\nsleep 1000\n",
            pids.display(),
            marker.display()
        ),
    );
    let mut child = env
        // Unconfined: its agent outlives a killed baton only outside a sandbox (inside one
        // it dies with baton; see containment.rs), and it writes its pid outside its workspace.
        .command(&["run", "fix add", "--agent", &slow, "--sandbox", "off"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&marker, "the agent never started");
    // baton dies without a chance to clean up; its agent lives on in its own process group.
    child.kill().unwrap();
    child.wait().unwrap();
    let agent = recorded_pids(&pids)[0];
    assert!(alive(agent), "the agent should have outlived the killed baton");

    let out = env.baton(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stderr(&out).contains("was left running by a baton that stopped"), "{}", text(&out));
    for _ in 0..100 {
        if !alive(agent) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(agent), "the orphaned agent is still running");
    let show = env.show();
    assert_eq!(show["status"], "failed");
    let reference = format!("refs/baton/runs/{}/c1", show["run"].as_str().unwrap());
    assert!(env.repo.git(&["show", &format!("{reference}:src/calc.sh")]).contains("unsaved work"));
    // Only once: the next command finds nothing to recover.
    assert!(!stderr(&env.baton(&["status"])).contains("left running"));
}

#[test]
fn a_full_disk_while_collecting_fails_the_run_and_leaves_the_repository_as_it_was() {
    // A private mount namespace with a 3 MB tmpfs for the repository; the agent writes 5 MB of
    // incompressible data, which cannot be collected into it.
    let probe = std::process::Command::new("unshare").args(["--mount", "--map-root-user", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipped: this machine cannot create a private mount namespace (unshare --mount --map-root-user)"
        );
        return;
    }
    let env = Env::new();
    let mnt = env.home.path().join("small-disk");
    std::fs::create_dir_all(&mnt).unwrap();
    let big = env
        .agent("big", "#!/bin/sh\nhead -c 5000000 /dev/urandom > big.bin\necho 'real work' >> src/calc.sh\n");
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=3m tmpfs {mnt}
cp -a {repo}/. {mnt}/
cd {mnt}
before="$(git rev-parse HEAD) $(git status --porcelain) $(git for-each-ref --format='%(refname)' refs/heads)"
set +e
{baton} run "fix add" --agent {big}
code=$?
set -e
after="$(git rev-parse HEAD) $(git status --porcelain) $(git for-each-ref --format='%(refname)' refs/heads)"
[ "$before" = "$after" ] && echo "REPOSITORY UNCHANGED"
exit $code
"#,
        mnt = mnt.display(),
        repo = env.repo.path().display(),
        baton = env!("CARGO_BIN_EXE_baton"),
        big = big,
    );
    // The same hermetic environment as every other baton command of these tests.
    let hermetic = env.command(&[]);
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--map-root-user", "sh", "-c", &script])
        .env_clear()
        .envs(hermetic.get_envs().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))))
        .current_dir(env.home.path())
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("the disk is full"), "{all}");
    assert!(all.contains("REPOSITORY UNCHANGED"), "{all}");
}

#[test]
fn a_protected_glob_of_the_users_that_matches_nothing_is_warned_about() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let out = env.baton(&[
        "run",
        "fix add",
        "--agent",
        &fix,
        "--set",
        r#"verify.protected=["tests/**", "spec/**"]"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("warning: verify.protected: `spec/**` matches no file of the base"),
        "{}",
        text(&out)
    );
    assert!(!stderr(&out).contains("`tests/**` matches no file"), "{}", text(&out));
}

/// Each candidate runs the tests related to its own changes; tests related only to another
/// candidate's changes run on it while the base's time on them fits in `verify.related_budget`.
#[test]
fn a_slow_test_module_only_one_candidate_touched_stays_within_the_budget() {
    let env = Env::new();
    env.repo.write(
        "baton.toml",
        r#"[run]
grace = "1s"

[verify]
related_budget = "1s"
related = [{ from = '^src/(?P<stem>\w+)\.sh$', to = ["tests/test_{stem}.sh"] }]

[[verify.stage]]
name = "test"
run = "for t in {related_tests}; do sh $t; done"
parser = "tap"
"#,
    );
    env.repo.write("tests/test_calc.sh", common::TESTS);
    env.repo.write("src/slow.sh", "slow() { echo slow; }\n");
    env.repo.write("tests/test_slow.sh", "sleep 3\necho 1..1\necho 'ok 1 - slow_works'\n");
    env.repo.commit_all("a slow test module");
    let fix = env.agent("fix", FIX);
    let detour = env.agent("detour", &format!("{FIX}echo '# looked here too' >> src/slow.sh\n"));
    let out = env.baton(&["run", "fix add", "--agent", &detour, "--agent", &fix]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("left out tests related only to other candidates' changes"),
        "the run says what it left out: {}",
        text(&out)
    );
    let show = env.show();
    assert_eq!(
        candidate(&show, "fix")["left_out_tests"],
        serde_json::json!(["tests/test_slow.sh"]),
        "{show:#}"
    );
    assert_eq!(candidate(&show, "detour")["left_out_tests"], serde_json::json!([]));
    let shown = text(&env.baton(&["show"]));
    assert!(
        shown.contains("did not run 1 test file related only to other candidates' changes (verify.related_budget): tests/test_slow.sh"),
        "show says what was left out: {shown}"
    );
    // What the fix did not run is not held against it: nothing is missing or broken.
    assert_eq!(candidate(&show, "fix")["evidence"]["broken"], serde_json::json!([]), "{show:#}");
    assert_eq!(show["winner"], candidate(&show, "fix")["id"], "{show:#}");

    let out = env.baton(&[
        "run",
        "fix add",
        "--agent",
        &detour,
        "--agent",
        &fix,
        "--set",
        "verify.related_budget=1m",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let show = env.show();
    assert_eq!(
        candidate(&show, "fix")["left_out_tests"],
        serde_json::json!([]),
        "within the budget: {show:#}"
    );
}

/// PATH with the cargo that built this test first: rustup's proxy cannot choose a toolchain
/// where HOME is a temporary directory.
fn path_with_cargo() -> std::ffi::OsString {
    let cargo_bin = std::path::Path::new(env!("CARGO")).parent().unwrap().to_owned();
    std::env::join_paths(
        std::iter::once(cargo_bin)
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap()
}

/// A setup that verifies nothing names no winner, says why, and points at the log: a runner
/// that is missing, test modules that fail to load on every side, tests that import the
/// user's checkout instead of the workspace (an editable install).
#[test]
fn a_setup_that_verifies_nothing_names_no_winner() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "missing runner",
            "[[verify.stage]]\nname = \"test\"\nrun = \"no-such-runner tests\"\nparser = \"tap\"\n".into(),
            "stage `test` exited 127 on the base",
        ),
        (
            "collection errors",
            // What pytest prints when no test module imports: here on every side.
            "[[verify.stage]]\nname = \"test\"\nrun = '''printf 'ERROR tests/test_calc.py - ModuleNotFoundError: No module named calc\\n'; exit 2'''\nparser = \"pytest\"\n".into(),
            "stage `test` passed no test on the base or on any candidate",
        ),
    ];
    for (what, config, expected) in cases {
        let env = Env::new();
        env.repo.write("baton.toml", &config);
        env.repo.commit_all(what);
        let out = env.baton(&["run", "fix add", "--agent", &env.agent("fix", FIX)]);
        assert_eq!(out.status.code(), Some(4), "{what}: {}", text(&out));
        let show = env.show();
        let problems = show["setup_problems"].to_string();
        assert!(problems.contains(expected), "{what}: {problems}");
        assert!(problems.contains("verify-test.log"), "{what}: the log is named: {problems}");
        assert!(text(&env.baton(&["show"])).contains("setup: "), "{what}");
    }
}

/// Tests that import the user's checkout (an editable install does that through a path entry)
/// see none of the candidates' changes: the run says so and names no winner.
#[test]
fn tests_that_read_the_users_checkout_name_no_winner() {
    let env = Env::new();
    env.repo.write("src/calc.py", "def add(a, b):\n    return a - b\n");
    env.repo.write(
        "tests/test_calc.py",
        "import unittest\nfrom calc import add\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n    def test_add_zero(self):\n        self.assertEqual(add(4, 0), 4)\n",
    );
    let main_checkout = env.repo.path().join("src");
    env.repo.write(
        "baton.toml",
        &format!(
            "[[verify.stage]]\nname = \"test\"\nrun = \"PYTHONPATH={} python3 -m unittest -v tests.test_calc\"\nparser = \"unittest\"\n",
            main_checkout.display()
        ),
    );
    env.repo.commit_all("a python project tested through the main checkout");
    let fix = env.agent("fix", "#!/bin/sh\nsed -i 's/a - b/a + b/' src/calc.py\n");
    let out = env.baton(&["run", "fix add", "--agent", &fix]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(stdout_of(&out).contains("its tests and examples gave the base's results"), "{}", text(&out));
    // The check before any run finds out why: emptying the sources changes nothing.
    let out = env.baton(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = doc["stage_check"]["problems"].to_string();
    assert!(
        problems.contains("gave the same results with the project's 2 source files emptied"),
        "{problems}"
    );
    // Where the tests do read the workspace, the check is satisfied.
    env.repo.write(
        "baton.toml",
        "[[verify.stage]]\nname = \"test\"\nrun = \"PYTHONPATH=src python3 -m unittest -v tests.test_calc\"\nparser = \"unittest\"\n",
    );
    let out = env.baton(&["doctor", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["stage_check"]["problems"], serde_json::json!([]), "{doc:#}");
}

/// A change of whitespace only is no change: out on the gate, however the rest goes.
#[test]
fn a_whitespace_only_change_is_no_change() {
    let env = Env::new();
    let spaces =
        env.agent("spaces", "#!/bin/sh\nsed -i 's/$/   /' src/calc.sh\nprintf '\\n\\n' >> src/calc.sh\n");
    let out = env.baton(&["run", "fix add", "--agent", &spaces, "--agent", &env.agent("fix", FIX)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let show = env.show();
    assert_eq!(show["winner"], candidate(&show, "fix")["id"]);
    let gates = candidate(&show, "spaces")["gates"].to_string();
    assert!(gates.contains("it changed only whitespace, comments or layout"), "{gates}");
    // Alone, it is no winner.
    let out = env.baton(&["run", "fix add", "--agent", &spaces]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        stdout_of(&out).contains("no candidate passed the gates (1 failed \"changed something\")"),
        "{}",
        text(&out)
    );
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What people read, held as snapshots: the scoreboard of `baton show` and the lines the run
/// prints, for a tournament with a winner, a breaker, a cheat and a crash. Run ids, times,
/// durations, commits and paths are redacted: they differ from run to run.
#[test]
fn the_scoreboard_and_the_run_lines_read_as_they_did() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let breaker = env.agent("breaker", "#!/bin/sh\necho 'add() { echo 5; }' > src/calc.sh\n");
    let cheat = env.agent("cheat", "#!/bin/sh\nsed -i 's/check adds/: check adds/' tests/run.sh\n");
    let crash = env.agent("crash", "#!/bin/sh\nexit 3\n");
    let out = env.baton(&[
        "run",
        // The header names the sandbox, which differs from machine to machine.
        "--sandbox",
        "off",
        "fix add",
        "--agent",
        &fix,
        "--agent",
        &breaker,
        "--agent",
        &cheat,
        "--agent",
        &crash,
        "--jobs",
        "1",
        "--agent-jobs",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let filters = vec![
        (r"\d{8}-\d{6}-[0-9a-f]{4}", "[RUN]"),
        (r"\b[0-9a-f]{40}\b", "[COMMIT]"),
        (r"\b[0-9a-f]{10}\b", "[SHORT]"),
        (r"\(\d+(\.\d+)?(ms|s)\)", "([TIME])"),
        (r"after \d+(\.\d+)?(ms|s)", "after [TIME]"),
        (r"in \d+(\.\d+)?(ms|s)", "in [TIME]"),
        (r"/tmp/[^ \n]*", "[PATH]"),
    ];
    insta::with_settings!({ filters => filters.clone() }, {
        insta::assert_snapshot!("show", String::from_utf8_lossy(&env.baton(&["show"]).stdout));
    });
    // The candidates' lines (and their notes) depend on which finished first; the run's own
    // lines do not.
    let mut lines: Vec<String> = Vec::new();
    let mut candidate_line = false;
    for l in stderr(&out).lines() {
        // Where the limits live (a cgroup, an rlimit) differs from machine to machine.
        if (l.starts_with("    note:") && candidate_line) || l.starts_with("note: limits:") {
            continue;
        }
        candidate_line = ["c1", "c2", "c3", "c4"].iter().any(|c| l.starts_with(c));
        if !candidate_line {
            lines.push(l.to_owned());
        }
    }
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!("run_lines", lines.join("\n"));
    });
}
