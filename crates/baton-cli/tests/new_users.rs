//! What new users tripped on (issue 15): one test per item, each against the real binary, real
//! git repositories in temporary directories and the real run store.

#[expect(dead_code, reason = "the helpers are shared with e2e.rs, which uses the rest")]
mod common;

use common::{Env, FIX, stderr, text};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Item 9: `--jobs 0` was refused while `run.jobs = 0` meant one per core.
#[test]
fn jobs_zero_means_one_per_core_on_the_command_line_too() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let out = env.baton(&["run", "fix add", "--agent", &fix, "--jobs", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before = env.repo.all_refs();
    let out = env.baton(&["run", "fix add", "--agent", &fix, "--jobs", "300"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out)
            .contains("error: --jobs 300: run.jobs is 300: it must be at most 256 (0: one per CPU core)"),
        "{}",
        text(&out)
    );
    let out = env.baton(&["run", "fix add", "--agent", &fix, "-n", "0"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains("error: -n 0: run.repeats is 0: it must be from 1 to 64"),
        "{}",
        text(&out)
    );
    assert_eq!(env.repo.all_refs(), before);
}

/// Item 10: `baton config` prints the effective configuration, each value with the layer that
/// set it.
#[test]
fn config_shows_each_value_with_the_layer_that_set_it() {
    let env = Env::new();
    let user_dir = env.home.path().join("config/baton");
    std::fs::create_dir_all(&user_dir).unwrap();
    std::fs::write(user_dir.join("config.toml"), "[run]\ngrace = \"2s\"\nrepeats = 2\n").unwrap();
    let extra = env.home.path().join("extra.toml");
    std::fs::write(&extra, "[[agent]]\nname = \"fixer\"\nkind = \"command\"\ncommand = \"./fix.sh\"\n")
        .unwrap();
    let mut cmd =
        env.command(&["config", "--config", extra.to_str().unwrap(), "--set", "merge.target=release"]);
    cmd.env("BATON_WORKSPACE_ROOT", "/tmp/ws");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = stdout(&out);
    let line = |key: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in\n{shown}"))
            .to_owned()
    };
    let repo_file = env.repo.file("baton.toml");
    let user_file = user_dir.join("config.toml");
    assert!(line("agent_timeout").ends_with("# default"), "{shown}");
    assert!(line("repeats").ends_with(&format!("# user file {}:3:11", user_file.display())), "{shown}");
    assert!(line("grace").ends_with(&format!("# repository file {}:2:9", repo_file.display())), "{shown}");
    assert!(line("command").ends_with(&format!("# --config file {}:4:11", extra.display())), "{shown}");
    assert!(line("workspace_root").ends_with("# environment BATON_WORKSPACE_ROOT"), "{shown}");
    assert!(line("target").ends_with("# --set merge.target=release"), "{shown}");
    // What it prints is a configuration baton reads back.
    let back = env.home.path().join("back.toml");
    std::fs::write(&back, &shown).unwrap();
    let out = env.baton(&["config", "--json", "--config", back.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let values: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = values.as_array().unwrap().iter().find(|v| v["key"] == "agent.fixer.command").unwrap();
    assert_eq!(entry["layer"], "--config file");
    assert_eq!(entry["value"], "./fix.sh");
}

/// The latest run's id, from `baton show --json`.
fn latest_run(env: &Env) -> String {
    env.show()["run"].as_str().unwrap().to_owned()
}

/// Item 11: `baton diff` with no argument shows the winner of the latest run, or says there is
/// none.
#[test]
fn diff_alone_shows_the_latest_winner_or_says_there_is_none() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let noop = env.agent("noop", "#!/bin/sh\ntrue\n");
    assert_eq!(env.baton(&["run", "fix add", "--agent", &noop, "--agent", &fix]).status.code(), Some(0));
    let run = latest_run(&env);
    let out = env.baton(&["diff"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("+add() { echo $(( $1 + $2 )); }"), "{}", text(&out));
    assert!(stderr(&out).contains(&format!("candidate c2 of run {run}")), "{}", text(&out));
    // A run id alone: its winner.
    let out = env.baton(&["diff", &run, "--stat"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("src/calc.sh"), "{}", text(&out));

    assert_eq!(env.baton(&["run", "do nothing", "--agent", &noop]).status.code(), Some(4));
    let out = env.baton(&["diff"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(stdout(&out).is_empty(), "{}", text(&out));
    assert!(stderr(&out).contains("has no winner: no candidate was good enough"), "{}", text(&out));
    assert!(stderr(&out).contains("baton diff"), "{}", text(&out));
}

/// Item 12: `baton merge c1` said "run `c1` does not exist". Where no run has that id, a
/// candidate of the latest run does, as for `baton diff c1`.
#[test]
fn merge_takes_a_candidate_of_the_latest_run() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let other = env.agent("other", "#!/bin/sh\nsed -i 's/\\$1 - \\$2/$2 + $1/' src/calc.sh\n");
    let out = env.baton(&["run", "fix add", "--agent", &fix, "--agent", &other]);
    assert!(matches!(out.status.code(), Some(0 | 4)), "{}", text(&out));
    let out = env.baton(&["merge", "c2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("merged c2 of run"), "{}", text(&out));
    assert_eq!(env.repo.read("src/calc.sh"), "add() { echo $(( $2 + $1 )); }\n");
    let out = env.baton(&["merge", "c9"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("run `c9` does not exist"), "{}", text(&out));
}

/// Item 13: a candidate of a cancelled, never-verified run was merged without a word, with
/// "Chosen by baton" in its message. It is refused unless `--force`, and the message says who
/// chose it.
#[test]
fn merging_a_never_verified_candidate_needs_force() {
    let env = Env::new();
    let marker = env.home.path().join("fixed");
    let slow_fix = env.agent("slowfix", &format!("{FIX}touch {}\nsleep 1000 &\nwait\n", marker.display()));
    let child = env
        // It signals the test through a file outside its workspace: unconfined.
        .command(&["run", "fix add", "--agent", &slow_fix, "--sandbox", "off"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if marker.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(marker.exists(), "the agent never did its work");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let run = latest_run(&env);
    let before = env.repo.user_state();
    let out = env.baton(&["merge", "-c", "c1"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!(
            "candidate c1 of run {run} was never verified: the run was cancelled before it was verified"
        )),
        "{}",
        text(&out)
    );
    assert!(stderr(&out).contains("pass --force"), "{}", text(&out));
    assert_eq!(env.repo.user_state(), before);
    let out = env.baton(&["merge", "-c", "c1", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let message = env.repo.git(&["log", "-1", "--format=%B"]);
    assert!(!message.contains("Chosen by baton"), "{message}");
    assert!(message.contains("merged with --force: baton never verified it"), "{message}");
}

/// Item 14: a second `baton merge` of a run said "branch moved". It says the run is already
/// merged, with the commit.
#[test]
fn a_second_merge_says_it_is_already_merged() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    assert_eq!(env.baton(&["run", "fix add", "--agent", &fix]).status.code(), Some(0));
    let run = latest_run(&env);
    assert_eq!(env.baton(&["merge"]).status.code(), Some(0));
    let head = env.repo.head();
    let before = env.repo.user_state();
    let out = env.baton(&["merge"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("run {run} is already merged (c1): commit {head}"),
        "{}",
        text(&out)
    );
    assert!(!stderr(&out).contains("moved"), "{}", text(&out));
    assert_eq!(env.repo.user_state(), before);
}

/// Item 15: a task with a NUL byte or bytes that are not UTF-8 is refused before anything
/// starts, naming the byte offset.
#[test]
fn a_task_that_is_not_text_is_refused_with_the_offset() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let nul = env.home.path().join("nul.md");
    std::fs::write(&nul, b"Fix add\n\0oops").unwrap();
    let latin1 = env.home.path().join("latin1.md");
    std::fs::write(&latin1, b"Fix add for caf\xe9").unwrap();
    let before = env.repo.all_refs();
    let out = env.baton(&["run", "--task-file", nul.to_str().unwrap(), "--agent", &fix]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("has a NUL byte at byte offset 8"), "{}", text(&out));
    let out = env.baton(&["run", "--task-file", latin1.to_str().unwrap(), "--agent", &fix]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("is not valid UTF-8 at byte offset 15"), "{}", text(&out));
    let out = env
        .command(&["run", "--agent", &fix])
        .arg(std::ffi::OsStr::from_bytes(b"Fix add for caf\xe9"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("error: the task is not valid UTF-8 at byte offset 15"), "{}", text(&out));
    let mut child = env
        .command(&["run", "--task-file", "-", "--agent", &fix])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"ok\0").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(stderr(&out).contains("the task on stdin has a NUL byte at byte offset 2"), "{}", text(&out));
    assert_eq!(env.repo.all_refs(), before);
    assert!(!env.repo.path().join(".git/baton").exists());
}

/// Item 16: `--target nosuchbranch` was accepted and failed only at merge.
#[test]
fn a_target_branch_that_does_not_exist_is_refused_before_the_run() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let out = env.baton(&["run", "fix add", "--agent", &fix, "--target", "nosuchbranch"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out)
            .contains("error: --target nosuchbranch: there is no branch `nosuchbranch` to merge onto"),
        "{}",
        text(&out)
    );
    let out = env.baton(&["run", "fix add", "--agent", &fix, "--set", "merge.target=gone"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains("error: --set merge.target=gone: merge.target: there is no branch `gone`"),
        "{}",
        text(&out)
    );
    assert!(!env.repo.path().join(".git/baton").exists());
    assert!(env.workspaces().is_empty());
}

/// Item 17: a bare repository was "not inside a git repository".
#[test]
fn a_bare_repository_is_called_one() {
    let env = Env::new();
    let bare = env.home.path().join("bare.git");
    env.repo.git(&["clone", "--quiet", "--bare", ".", bare.to_str().unwrap()]);
    let fix = env.agent("fix", FIX);
    let out = env.baton_in(&bare, &["run", "fix add", "--agent", &fix]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out)
            .contains(&format!("error: {} is a bare repository: baton needs a working tree", bare.display())),
        "{}",
        text(&out)
    );
}

/// Item 18: refused commands created `.git/baton/`. A refusal creates nothing.
#[test]
fn refused_commands_create_nothing() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let store = env.repo.path().join(".git/baton");
    let cases: &[&[&str]] = &[
        &["run", "x", "--agent", &fix, "--strategy", "yolo"],
        &["run", "x", "--agent", &fix, "--base", "nope"],
        &["run", "x", "--agent", &fix, "--hidden-tests", "no/such/dir"],
        &["run", "x"],
        &["show"],
        &["show", "r1"],
        &["diff"],
        &["diff", "c1"],
        &["merge"],
        &["merge", "c1"],
        &["clean", "r1"],
        &["status"],
        &["clean"],
    ];
    for args in cases {
        let out = env.baton(args);
        assert!(!store.exists(), "baton {args:?} created {}\n{}", store.display(), text(&out));
    }
    // A dirty tree is refused by the engine, after the checks of the front end.
    env.repo.write("src/calc.sh", "changed\n");
    let out = env.baton(&["run", "x", "--agent", &fix]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(!store.exists(), "a refused run created {}", store.display());
}

/// Item 20: the merge commit repeated its subject (the task's first line) in its body.
#[test]
fn the_merge_commit_does_not_repeat_its_subject() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let out = env.baton(&["run", "# Make add() add\n\nIt subtracts instead.", "--agent", &fix]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.baton(&["merge"]).status.code(), Some(0));
    let subject = env.repo.git(&["log", "-1", "--format=%s"]);
    let body = env.repo.git(&["log", "-1", "--format=%b"]);
    assert_eq!(subject.trim(), "Make add() add");
    assert!(body.starts_with("It subtracts instead.\n\nChosen by baton from 1 candidate in run "), "{body}");
    assert!(!body.contains("Make add() add"), "{body}");
}

/// Item 20: the second "verifying the base and 4 distinct candidates" line was the test matrix
/// and did not say so.
#[test]
fn the_test_matrix_says_what_it_is() {
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
    let out = env.baton(&["run", "fix add", "--agent", &plain, "--agent", &with_test]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("verifying the base and").count(), 1, "{err}");
    assert!(
        err.contains("test matrix: running the tests candidates wrote on the base and on every distinct candidate (3 runs)"),
        "{err}"
    );
    assert!(err.contains("test matrix done in"), "{err}");
}

/// Item 20: the scoreboard says "2 more decision points"; the README says what that is.
#[test]
fn the_readme_explains_decision_points() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let at = readme.find("**decision points**").expect("the README defines decision points");
    assert!(readme[at..].contains("cyclomatic complexity"), "{}", &readme[at..at + 400]);
}

/// Item 21: `bench/overhead/run.py --baton target/release/baton` failed: the relative path was
/// used after the benchmark moved into its synthetic repository.
#[test]
fn the_overhead_benchmark_takes_a_relative_path_to_baton() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_baton"));
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("python3")
        .current_dir(bin.parent().unwrap())
        .arg(root.join("bench/overhead/run.py"))
        .args([
            "--baton",
            "./baton",
            "--files",
            "40",
            "--candidates",
            "2",
            "--jobs",
            "2",
            "--workspace",
            "clone",
        ])
        .arg("--cache")
        .arg(cache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("baton run"), "{}", text(&out));
}

/// Item 21: the README named `bench/overhead/run.sh`, which does not exist. Every path under
/// bench/ that it names does.
#[test]
fn the_readme_names_benchmarks_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let named: Vec<&str> = readme
        .split(|c: char| c.is_whitespace() || c == '`' || c == '(' || c == ')')
        .filter(|w| w.starts_with("bench/") && w.len() > "bench/".len())
        .collect();
    assert!(!named.is_empty());
    for path in named {
        assert!(
            root.join(path.trim_end_matches([',', '.', ':'])).exists(),
            "the README names {path}, which does not exist"
        );
    }
}

/// Item 6: of several agents that cannot run, only the first was named.
#[test]
fn every_agent_that_cannot_run_is_named_at_once() {
    let env = Env::new();
    let mut cmd = env.command(&["run", "x", "--agent", "codex", "--agent", "gemini", "--agent", "aider"]);
    cmd.env("PATH", "/usr/bin:/bin");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.starts_with("error: 3 agents cannot run:\n"), "{err}");
    for (name, install) in [
        ("codex", "npm install -g @openai/codex"),
        ("gemini", "npm install -g @google/gemini-cli"),
        ("aider", "pipx install aider-chat"),
    ] {
        assert!(
            err.contains(&format!("  agent `{name}`: `{name}` is not installed (install it with: {install}")),
            "{err}"
        );
    }
    assert!(!env.repo.path().join(".git/baton").exists());
}

/// However the candidates are asked for (the command line, a configuration file), one run has
/// at most 256 of them; more is refused before anything is made.
#[test]
fn too_many_candidates_are_refused_wherever_they_are_asked_for() {
    let env = Env::new();
    let agents: Vec<String> = (0..5).map(|i| env.agent(&format!("a{i}"), FIX)).collect();
    let mut args: Vec<&str> = vec!["run", "fix add"];
    for a in &agents {
        args.extend(["--agent", a.as_str()]);
    }
    let from_flag = env.baton(&[args.as_slice(), &["-n", "64"]].concat());
    assert_eq!(from_flag.status.code(), Some(2), "{}", text(&from_flag));
    assert!(
        stderr(&from_flag)
            .contains("5 agents x 1 strategy x 64 repeats = 320 candidates: one run has at most 256"),
        "{}",
        text(&from_flag)
    );
    env.repo.write("baton.toml", &common::CONFIG.replace("[run]\n", "[run]\nrepeats = 64\n"));
    env.repo.commit_all("64 repeats in the configuration");
    let from_config = env.baton(&args);
    assert_eq!(from_config.status.code(), Some(2), "{}", text(&from_config));
    assert!(stderr(&from_config).contains("= 320 candidates"), "{}", text(&from_config));
    assert!(!env.repo.path().join(".git/baton").exists(), "a refused run made its store");
    assert!(env.workspaces().is_empty());
}
