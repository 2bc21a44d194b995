//! Misbehaving agents against the `baton` binary: agents that write to the user's repository,
//! that delete their workspace's git directory, that escape before baton is SIGKILLed. An agent
//! is an arbitrary program with the user's rights; without a sandbox, baton must notice what it
//! did to the user's repository, never lose its work, and leave nothing behind. They run with
//! `--sandbox off`: the sandbox (tests/containment.rs) prevents what these agents do; the guard
//! is what catches it where there is none.

#[expect(dead_code, reason = "the helpers are shared with e2e.rs, which uses the rest")]
mod common;

use std::path::Path;
use std::time::Duration;

use common::{Env, FIX, alive, candidate, recorded_pids, stderr, text};

/// Runs the undo commands an error's hint gives, in the repository.
fn run_undo(env: &Env, out: &std::process::Output) {
    let err = stderr(out);
    let commands: Vec<&str> = err
        .split_once("put them back:")
        .unwrap_or_else(|| panic!("no undo commands in {err}"))
        .1
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let status = std::process::Command::new("sh")
        .args(["-c", &commands.join("\n")])
        .current_dir(env.repo.path())
        .envs(baton_testkit::hermetic_git_env())
        .status()
        .unwrap();
    assert!(status.success(), "{commands:?}");
}

#[test]
fn an_agent_that_writes_into_the_users_tree_fails_the_run_and_is_named() {
    let env = Env::new();
    let repo = env.repo.path().display().to_string();
    let fix = env.agent("fix", FIX);
    let writer = env.agent(
        "writer",
        &format!(
            "#!/bin/sh\necho 'by the agent' >> {repo}/src/calc.sh\necho 'new' > {repo}/notes.txt\n{}",
            FIX.trim_start_matches("#!/bin/sh\n")
        ),
    );
    let before = env.repo.user_state();
    let out = env.baton(&["run", "--sandbox", "off", "Make add() add", "--agent", &fix, "--agent", &writer]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(6), "{all}");
    let err = stderr(&out);
    assert!(err.contains("your repository changed while") && err.contains("(writer)"), "{all}");
    assert!(err.contains("changed: src/calc.sh was modified in the working tree"), "{all}");
    assert!(err.contains("changed: notes.txt was created in the working tree"), "{all}");
    assert!(err.contains("git checkout -- src/calc.sh") && err.contains("rm -f -- notes.txt"), "{all}");
    // baton restores nothing of the user's: the agent's edits are still there.
    assert!(env.repo.read("src/calc.sh").contains("by the agent"));
    let show = env.show();
    assert_eq!(show["status"], "failed");
    assert_eq!(show["winner"], serde_json::Value::Null, "no winner out of a run that failed");
    let changed = &show["repository_changed"];
    assert!(
        changed["candidates"].as_array().unwrap().contains(&candidate(&show, "writer")["id"]),
        "{show:#}"
    );
    run_undo(&env, &out);
    assert_eq!(env.repo.user_state(), before);
}

#[test]
fn an_agent_that_moves_the_users_branch_fails_the_run_with_the_command_to_undo_it() {
    let env = Env::new();
    let first = env.repo.head();
    env.repo.write("README", "second commit\n");
    let second = env.repo.commit_all("second");
    let repo = env.repo.path().display().to_string();
    let mover = env.agent(
        "mover",
        &format!(
            "#!/bin/sh\ngit -C {repo} update-ref refs/heads/main {first}\n{}",
            FIX.trim_start_matches("#!/bin/sh\n")
        ),
    );
    let out = env.baton(&["run", "--sandbox", "off", "Make add() add", "--agent", &mover]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(6), "{all}");
    assert!(stderr(&out).contains(&format!("refs/heads/main moved from {second} to {first}")), "{all}");
    assert!(stderr(&out).contains(&format!("git update-ref refs/heads/main {second} {first}")), "{all}");
    assert_eq!(env.repo.git(&["rev-parse", "main"]).trim(), first, "baton moves nothing back");
    run_undo(&env, &out);
    assert_eq!(env.repo.git(&["rev-parse", "main"]).trim(), second);
    assert!(env.repo.git(&["status", "--porcelain"]).is_empty());
}

#[test]
fn an_agent_that_creates_a_branch_in_the_users_repository_fails_the_run() {
    let env = Env::new();
    let repo = env.repo.path().display().to_string();
    let brancher = env.agent(
        "brancher",
        &format!("#!/bin/sh\ngit -C {repo} branch sneaky\n{}", FIX.trim_start_matches("#!/bin/sh\n")),
    );
    let refs_before = env.repo.git(&["for-each-ref", "--format=%(refname)", "refs/heads"]);
    let out = env.baton(&["run", "--sandbox", "off", "Make add() add", "--agent", &brancher]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(6), "{all}");
    assert!(stderr(&out).contains("new ref refs/heads/sneaky at"), "{all}");
    assert!(stderr(&out).contains("git branch -D sneaky"), "{all}");
    run_undo(&env, &out);
    assert_eq!(env.repo.git(&["for-each-ref", "--format=%(refname)", "refs/heads"]), refs_before);
}

/// A test that writes into the user's checkout (as one importing from it through an editable
/// install writes bytecode there) is not an agent: a warning with the command that undoes it,
/// and the run goes on to its decision.
#[test]
fn a_test_that_writes_into_the_users_checkout_is_a_warning_not_a_failure() {
    let env = Env::new();
    let user = env.repo.path().display().to_string();
    env.repo.write(
        "baton.toml",
        &common::CONFIG.replace(
            "run = \"sh tests/run.sh\"",
            &format!(
                "run = \"grep -q '1 + ' src/calc.sh && echo cache > {user}/test-cache.txt; sh tests/run.sh\""
            ),
        ),
    );
    env.repo.commit_all("a test stage that writes into the main checkout once add adds");
    let fix = env.agent("fix", FIX);
    let out = env.baton(&["run", "--sandbox", "off", "Make add() add", "--agent", &fix]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let err = stderr(&out);
    assert!(
        err.contains(
            "tests wrote into your repository while candidates were verified: test-cache.txt was created"
        ),
        "{all}"
    );
    assert!(err.contains("rm -f -- test-cache.txt"), "{all}");
    assert_eq!(env.show()["winner"], candidate(&env.show(), "fix")["id"]);
}

#[test]
fn a_run_on_a_dirty_tree_that_stays_as_it_was_is_not_a_change() {
    let env = Env::new();
    env.repo.write("src/calc.sh", &format!("{}# mine, uncommitted\n", common::CALC));
    env.repo.write("scratch.txt", "mine, untracked\n");
    let fix = env.agent("fix", FIX);
    let out = env.baton(&["run", "--sandbox", "off", "Make add() add", "--include-dirty", "--agent", &fix]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn work_is_collected_when_the_agent_deletes_its_workspaces_git_directory() {
    for kind in ["clone", "auto"] {
        let env = Env::new();
        // The git directory is a sibling of the tree, for every kind: `../git`.
        let deleter = env.agent(
            "deleter",
            &format!("#!/bin/sh\nrm -rf ../git .git\n{}", FIX.trim_start_matches("#!/bin/sh\n")),
        );
        let out = env.baton(&[
            "run",
            "--sandbox",
            "off",
            "Make add() add",
            "--set",
            &format!("run.workspace={kind}"),
            "--agent",
            &deleter,
        ]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "{kind}: {all}");
        assert!(stderr(&out).contains("its work was collected from its files"), "{kind}: {all}");
        let show = env.show();
        let c1 = candidate(&show, "deleter");
        let reference = c1["ref"].as_str().unwrap_or_else(|| panic!("{kind}: no ref: {c1:#}"));
        assert_eq!(
            env.repo.git(&["show", &format!("{reference}:src/calc.sh")]),
            "add() { echo $(( $1 + $2 )); }\n",
            "{kind}"
        );
        assert_eq!(show["winner"], c1["id"], "{kind}: {show:#}");
    }
}

#[test]
fn clean_keeps_a_workspace_that_holds_work_on_no_ref_unless_forced() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    assert_eq!(env.baton(&["run", "--sandbox", "off", "fix add", "--agent", &fix]).status.code(), Some(0));
    let show = env.show();
    let tree = candidate(&show, "fix")["workspace"].as_str().unwrap().to_owned();
    // Work that is on no ref: as an agent's that could not be collected, or a person's.
    std::fs::write(Path::new(&tree).join("src/more.sh"), "more work\n").unwrap();
    let out = env.baton(&["clean"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 1 workspace of 1 run, kept 1"), "{all}");
    assert!(
        stderr(&out).contains(&format!("kept the workspace of c1 of run {}", show["run"].as_str().unwrap())),
        "{all}"
    );
    assert!(stderr(&out).contains(&tree), "the message names where the work is: {all}");
    assert!(stderr(&out).contains("baton clean --force"), "{all}");
    assert_eq!(std::fs::read_to_string(Path::new(&tree).join("src/more.sh")).unwrap(), "more work\n");
    assert_eq!(env.workspaces().len(), 1);

    let out = env.baton(&["clean", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(env.workspaces().is_empty(), "{:?}", env.workspaces());
    assert!(!Path::new(&tree).exists());
}

#[test]
fn nothing_of_batons_is_left_after_clean() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    assert_eq!(env.baton(&["run", "--sandbox", "off", "fix add", "--agent", &fix]).status.code(), Some(0));
    let root = env.cache().join("baton").join("workspaces");
    let repo_dir = std::fs::read_dir(&root).unwrap().next().unwrap().unwrap().path();
    // What a baton killed while probing for overlays, or while building a snapshot, leaves
    // (the pid is past the kernel's largest: no process has it).
    std::fs::create_dir_all(repo_dir.join(".overlay-probe-4194305/merged")).unwrap();
    std::fs::create_dir_all(repo_dir.join("snapshots/0123456789abcdef.tmp-4194305/tree")).unwrap();
    let out = env.baton(&["clean"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let left: Vec<_> = walk(&root);
    assert!(left.is_empty(), "left after clean: {left:#?}");
}

/// A baton killed before it recorded its run (or made its store) leaves its repository's
/// workspace directory: the next `clean` removes it, though no run names it.
#[test]
fn clean_removes_what_a_baton_killed_before_its_first_record_left() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    assert_eq!(env.baton(&["run", "--sandbox", "off", "fix add", "--agent", &fix]).status.code(), Some(0));
    let root = env.cache().join("baton").join("workspaces");
    let repo_dir = std::fs::read_dir(&root).unwrap().next().unwrap().unwrap().path();
    assert_eq!(env.baton(&["clean", "--refs"]).status.code(), Some(0));
    std::fs::remove_dir_all(env.repo.path().join(".git/baton")).unwrap();
    std::fs::create_dir_all(repo_dir.join(".overlay-probe-4194305/merged")).unwrap();
    let out = env.baton(&["clean"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(walk(&root).is_empty(), "left after clean: {:#?}", walk(&root));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn a_process_that_escaped_before_baton_was_killed_is_ended_by_the_next_baton() {
    let env = Env::new();
    let pids = env.home.path().join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    let marker = pids.join("escaped");
    let p = pids.display();
    let escaper = env.agent(
        "escaper",
        &format!(
            "#!/bin/sh\nsetsid sh -c 'echo $$ > {p}/escapee.pid; exec sleep 1000' > /dev/null 2>&1 < /dev/null &\necho $$ > {p}/agent.pid\nwhile [ ! -s {p}/escapee.pid ]; do sleep 0.05; done\ntouch {}\nsleep 1000\n",
            marker.display()
        ),
    );
    let mut child = env
        .command(&["run", "--sandbox", "off", "fix add", "--agent", &escaper])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if marker.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(marker.exists(), "the agent never escaped");
    // baton dies without a chance to clean up; its subreaper dies with it.
    child.kill().unwrap();
    child.wait().unwrap();
    let left = recorded_pids(&pids);
    assert_eq!(left.len(), 2, "{left:?}");
    for &pid in &left {
        assert!(alive(pid), "{pid} should have outlived the killed baton");
    }

    let out = env.baton(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stderr(&out).contains("other process"), "{}", text(&out));
    for _ in 0..100 {
        if left.iter().all(|&p| !alive(p)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in left {
        assert!(!alive(pid), "{pid} survived recovery");
    }
}
