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
