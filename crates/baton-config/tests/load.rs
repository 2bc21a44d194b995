//! Layering and error locations, against real files.

use std::path::Path;
use std::time::Duration;

use baton_config::{ConfigSources, ParserKind, SandboxMode, WorkspaceMode, load};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn load_err(sources: &ConfigSources) -> String {
    load(sources).unwrap_err().to_string()
}

#[test]
fn the_defaults_alone_make_a_complete_config() {
    let (c, layers) = load(&ConfigSources::default()).unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(c.run.repeats, 1);
    assert_eq!(c.run.agent_timeout, Duration::from_secs(1800));
    assert_eq!(c.run.log_limit.0, 16 << 20);
    assert_eq!(c.run.workspace, WorkspaceMode::Auto);
    assert!(c.strategies.contains_key("minimal") && c.strategies["default"].prompt.is_empty());
    assert!(c.verify.stages.is_empty());
    assert!(c.verify.protected.iter().any(|g| g == "baton.toml"));
}

#[test]
fn layers_override_in_order_and_lists_replace() {
    let dir = tempfile::tempdir().unwrap();
    let user = write(dir.path(), "user.toml", "[run]\njobs = 3\nrepeats = 2\n");
    let repo = write(
        dir.path(),
        "baton.toml",
        "[run]\njobs = 5\n\n[[verify.stage]]\nname = \"test\"\nrun = \"make test\"\n\n[strategy.mine]\nprompt = \"be brief\"\n",
    );
    let sources = ConfigSources {
        user_file: Some(user),
        repo_file: Some(repo),
        env: vec![("BATON_JOBS".into(), "7".into()), ("UNRELATED".into(), "x".into())],
        sets: vec!["run.repeats=4".into(), "merge.target=release".into()],
        ..Default::default()
    };
    let (c, layers) = load(&sources).unwrap();
    assert_eq!(layers.len(), 6);
    assert_eq!(c.run.jobs, 7);
    assert_eq!(c.run.repeats, 4);
    assert_eq!(c.merge.target, "release");
    assert_eq!(c.verify.stages.len(), 1);
    assert_eq!(c.verify.stages[0].parser, ParserKind::ExitCode);
    assert!(c.strategies.contains_key("mine") && c.strategies.contains_key("minimal"));
}

#[test]
fn a_missing_optional_file_is_skipped_but_a_given_one_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let sources = ConfigSources { repo_file: Some(dir.path().join("baton.toml")), ..Default::default() };
    assert!(load(&sources).is_ok());
    let sources = ConfigSources { extra_files: vec![dir.path().join("nope.toml")], ..Default::default() };
    let err = load_err(&sources);
    assert!(err.contains("cannot read") && err.contains("nope.toml"), "{err}");
}

#[test]
fn unknown_keys_and_bad_values_are_reported_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        ("[run]\njobs = 2\njbos = 3\n", "baton.toml:3:1: unknown field `jbos`"),
        ("[run]\njobs = \"many\"\n", "baton.toml:2:8: invalid type: string \"many\", expected usize"),
        ("[run]\nagent_timeout = \"soon\"\n", "baton.toml:2:17: `soon` is not a duration"),
        ("[run]\nlog_limit = \"lots\"\n", "baton.toml:2:13: `lots` is not a size"),
        ("[run]\nworkspace = \"docker\"\n", "baton.toml:2:13: unknown variant `docker`"),
        ("[verify\n", "baton.toml:1:8:"),
        (
            "[[verify.stage]]\nname = \"t\"\nrun = \"x\"\nparser = \"nunit\"\n",
            "baton.toml:4:10: unknown variant `nunit`",
        ),
        ("[[verify.stage]]\nname = \"t\"\n", "baton.toml:1:1: missing field `run`"),
        (
            "[[verify.stage]]\nname = \"t\"\nrun = \"x\"\nparser = \"regex\"\npattern = '(unclosed'\n",
            "baton.toml:5:11: the pattern of stage `t` is not a valid regex",
        ),
        (
            "[[verify.stage]]\nname = \"t\"\nrun = \"x\"\nparser = \"regex\"\npattern = '^(?P<name>\\S+)$'\n",
            "needs the named groups `name` and `status`",
        ),
        (
            "[[agent]]\nname = \"a\"\nkind = \"command\"\n",
            "baton.toml:2:8: agent `a` is a command agent but has no `command`",
        ),
        ("[[agent]]\nname = \"a\"\nkind = \"robot\"\n", "baton.toml:3:8: unknown variant `robot`"),
        (
            "[run]\nagents = [\"ghost\"]\n",
            "baton.toml:2:11: run.agents names `ghost`, but no [[agent]] has that name",
        ),
        ("[run]\nstrategies = [\"yolo\"]\n", "run.strategies names `yolo`, which is not a strategy"),
        (
            "[[verify.stage]]\nname = \"t\"\nrun = \"x\"\nrerun = \"x --again\"\n",
            "baton.toml:4:9: the `rerun` command of stage `t` does not name the tests to run: put {failing_tests}",
        ),
        (
            "[[verify.stage]]\nname = \"b\"\nkind = \"build\"\nrun = \"x\"\nrerun = \"x {failing_tests}\"\n",
            "baton.toml:5:9: stage `b` has a `rerun` command, but only test stages run again (its kind is build)",
        ),
    ];
    for (text, expected) in cases {
        let path = write(dir.path(), "baton.toml", text);
        let err = load_err(&ConfigSources { repo_file: Some(path), ..Default::default() });
        assert!(err.contains(expected), "for {text:?}\n  expected: {expected}\n  got:      {err}");
    }
}

#[test]
fn flags_and_environment_errors_name_their_origin() {
    let err = load_err(&ConfigSources { sets: vec!["run.jobs".into()], ..Default::default() });
    assert_eq!(err, "--set run.jobs: expected KEY=VALUE, e.g. --set run.jobs=2");
    let err = load_err(&ConfigSources { sets: vec!["run.jobz=2".into()], ..Default::default() });
    assert!(err.starts_with("--set run.jobz=2: unknown field `jobz`"), "{err}");
    let err =
        load_err(&ConfigSources { env: vec![("BATON_JOBS".into(), "lots".into())], ..Default::default() });
    assert!(err.starts_with("environment variable BATON_JOBS: invalid type"), "{err}");
}

#[test]
fn patch_paths_are_relative_to_the_file_that_names_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    let extra = write(
        &dir.path().join("conf"),
        "extra.toml",
        "[[agent]]\nname = \"replay\"\nkind = \"patch\"\npatch = \"fix.diff\"\n",
    );
    let (c, _) = load(&ConfigSources { extra_files: vec![extra], ..Default::default() }).unwrap();
    assert_eq!(c.agents[0].patch.as_deref(), Some(dir.path().join("conf/fix.diff").as_path()));
}

#[test]
fn agent_cli_entries_take_model_endpoint_limits_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let repo = write(
        dir.path(),
        "baton.toml",
        r#"[run]
agents = ["opus", "codex:gpt-5"]

[[agent]]
name = "opus"
kind = "claude"
model = "opus"
effort = "high"
args = ["--append-system-prompt", "be brief"]
program = "bin/claude"
base_url = "http://127.0.0.1:9999"
api_key_env = "PROXY_KEY"
env_pass = ["HTTPS_PROXY"]
env = { CLAUDE_CODE_MAX_RETRIES = "0" }
max_turns = 12
max_tokens = 100000
max_cost_usd = 0.5
price = { input = 3.0, output = 15.0 }
"#,
    );
    let (c, _) = load(&ConfigSources { repo_file: Some(repo), ..Default::default() }).unwrap();
    let a = &c.agents[0];
    assert_eq!(a.kind, baton_config::AgentKind::Claude);
    assert_eq!(a.model.as_deref(), Some("opus"));
    assert_eq!(a.program.as_deref(), Some(dir.path().join("bin/claude").as_path()));
    assert_eq!((a.max_turns, a.max_tokens, a.max_cost_usd), (Some(12), Some(100000), Some(0.5)));
    assert_eq!(a.env_pass, ["HTTPS_PROXY"]);
    assert_eq!(a.price, Some(baton_config::Price { input: 3.0, output: 15.0 }));
    assert_eq!(c.run.exit_timeout, Duration::from_secs(10));

    let bad = write(dir.path(), "bad.toml", "[[agent]]\nname = \"x\"\nkind = \"gpt\"\n");
    let e = load_err(&ConfigSources { repo_file: Some(bad), ..Default::default() });
    assert!(e.contains("unknown variant `gpt`") && e.contains("claude"), "{e}");
    let bad =
        write(dir.path(), "bad2.toml", "[[agent]]\nname = \"x\"\nkind = \"codex\"\ncommand = \"codex\"\n");
    let e = load_err(&ConfigSources { repo_file: Some(bad), ..Default::default() });
    assert!(e.contains("is a codex agent: `command` and `patch`"), "{e}");
}

/// Issue 15, item 7: `--config` with one `[[agent]]` replaced the repository's whole agent
/// list. Entries merge by name: a later layer's entry replaces the one of the same name, new
/// names are added, the rest stay.
#[test]
fn agents_merge_by_name_across_layers() {
    let dir = tempfile::tempdir().unwrap();
    let repo = write(
        dir.path(),
        "baton.toml",
        "[run]\nagents = [\"a\", \"b\"]\n\n[[agent]]\nname = \"a\"\nkind = \"command\"\ncommand = \"./a.sh\"\n\n\
         [[agent]]\nname = \"b\"\nkind = \"command\"\ncommand = \"./b.sh\"\n",
    );
    let extra = write(
        dir.path(),
        "extra.toml",
        "[[agent]]\nname = \"b\"\nkind = \"patch\"\npatch = \"b.diff\"\n\n\
         [[agent]]\nname = \"c\"\nkind = \"command\"\ncommand = \"./c.sh\"\n",
    );
    let sources = ConfigSources {
        repo_file: Some(repo.clone()),
        extra_files: vec![extra.clone()],
        ..Default::default()
    };
    let resolved = baton_config::resolve(&sources).unwrap();
    let agents: Vec<(&str, baton_config::AgentKind)> =
        resolved.config.agents.iter().map(|a| (a.name.as_str(), a.kind)).collect();
    use baton_config::AgentKind::{Command, Patch};
    assert_eq!(agents, [("a", Command), ("b", Patch), ("c", Command)]);
    assert_eq!(resolved.config.agents[1].command, None, "an entry replaces the one of its name whole");
    let path = |segs: &[&str]| {
        baton_config::KeyPath(segs.iter().map(|s| baton_config::KeySeg::Key(s.to_string())).collect())
    };
    assert_eq!(
        resolved.origin(&path(&["agent", "a", "command"])).1.to_string(),
        format!("{}:7:11", repo.display())
    );
    assert_eq!(
        resolved.origin(&path(&["agent", "b", "patch"])).1.to_string(),
        format!("{}:4:9", extra.display())
    );

    // Two entries of one name in one file are a mistake in that file.
    let twice = write(
        dir.path(),
        "twice.toml",
        "[[agent]]\nname = \"x\"\nkind = \"patch\"\npatch = \"1.diff\"\n\n[[agent]]\nname = \"x\"\nkind = \"patch\"\npatch = \"2.diff\"\n",
    );
    let e = load_err(&ConfigSources { repo_file: Some(twice), ..Default::default() });
    assert!(e.ends_with("twice.toml:7:8: two agents are named `x`"), "{e}");
}

/// Issue 15, item 8: an error found in the whole configuration was blamed on the last layer
/// whose text happened to contain the offending word (an environment variable, a `--set`).
/// It names the layer that set the value.
#[test]
fn errors_name_the_layer_that_set_the_value_not_one_that_mentions_it() {
    let dir = tempfile::tempdir().unwrap();
    let repo = write(dir.path(), "baton.toml", "[[verify.stage]]\nname = \"t\"\nrun = \"  \"\n");
    let e = load_err(&ConfigSources {
        repo_file: Some(repo.clone()),
        env: vec![("BATON_WORKSPACE_ROOT".into(), "/tmp/t".into())],
        sets: vec!["merge.target=t".into()],
        ..Default::default()
    });
    assert_eq!(e, format!("{}:3:7: stage `t` has an empty `run` command", repo.display()));

    // The value comes from the user's file; the repository's file only mentions the word.
    let user = write(dir.path(), "user.toml", "[run]\nagents = [\"ghost\"]\n");
    let repo = write(dir.path(), "baton.toml", "[strategy.haunt]\nprompt = \"ghost\"\n");
    let e = load_err(&ConfigSources {
        user_file: Some(user.clone()),
        repo_file: Some(repo),
        ..Default::default()
    });
    assert!(e.starts_with(&format!("{}:2:11: run.agents names `ghost`", user.display())), "{e}");

    // A later layer that replaces a list takes the blame for what is in it, and only it.
    let user = write(dir.path(), "user.toml", "[verify]\nprotected = [\"ok/**\", \"[bad\"]\n");
    let repo = write(dir.path(), "baton.toml", "[verify]\nprotected = [\"tests/**\", \"[bad\"]\n");
    let e = load_err(&ConfigSources {
        user_file: Some(user),
        repo_file: Some(repo.clone()),
        ..Default::default()
    });
    assert!(e.starts_with(&format!("{}:2:26: `[bad` in verify.protected", repo.display())), "{e}");

    // A value set on the command line is blamed on the flag as typed.
    let e = load_err(&ConfigSources { sets: vec!["run.repeats=0".into()], ..Default::default() });
    assert!(e.starts_with("--set run.repeats=0: run.repeats is 0"), "{e}");
}

/// Issue 15, item 9: `--jobs 0` was refused while `run.jobs = 0` meant one per core. The
/// options that stand for a key go through the same layering and the same checks.
#[test]
fn a_limit_means_the_same_in_a_file_a_variable_and_an_option() {
    let dir = tempfile::tempdir().unwrap();
    let repo = write(dir.path(), "baton.toml", "[run]\njobs = 3\n");
    let opt = |flag: &str, key: &str, v: &str| (format!("{flag} {v}"), key.to_owned(), v.to_owned());
    for sources in [
        ConfigSources {
            repo_file: Some(write(dir.path(), "zero.toml", "[run]\njobs = 0\n")),
            ..Default::default()
        },
        ConfigSources { env: vec![("BATON_JOBS".into(), "0".into())], ..Default::default() },
        ConfigSources { sets: vec!["run.jobs=0".into()], ..Default::default() },
        ConfigSources {
            repo_file: Some(repo.clone()),
            options: vec![opt("--jobs", "run.jobs", "0")],
            ..Default::default()
        },
    ] {
        let (c, _) = load(&sources).unwrap();
        assert_eq!(c.run.jobs, 0);
        assert!(c.run.effective_jobs() >= 1);
    }
    let too_many = [
        ConfigSources {
            repo_file: Some(write(dir.path(), "many.toml", "[run]\njobs = 300\n")),
            ..Default::default()
        },
        ConfigSources { options: vec![opt("--jobs", "run.jobs", "300")], ..Default::default() },
    ];
    let errors: Vec<String> = too_many.iter().map(load_err).collect();
    assert!(
        errors[0].ends_with("many.toml:2:8: run.jobs is 300: it must be at most 256 (0: one per CPU core)"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[1], "--jobs 300: run.jobs is 300: it must be at most 256 (0: one per CPU core)");
    let e = load_err(&ConfigSources { options: vec![opt("-n", "run.repeats", "0")], ..Default::default() });
    assert_eq!(e, "-n 0: run.repeats is 0: it must be from 1 to 64");
    let e = load_err(&ConfigSources {
        repo_file: Some(write(dir.path(), "r.toml", "[run]\nrepeats = 65\n")),
        ..Default::default()
    });
    assert!(e.ends_with("r.toml:2:11: run.repeats is 65: it must be from 1 to 64"), "{e}");
}

#[test]
fn every_sandbox_mode_is_accepted_from_a_file_and_a_flag_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    for (name, mode) in [
        ("auto", SandboxMode::Auto),
        ("bwrap", SandboxMode::Bwrap),
        ("landlock", SandboxMode::Landlock),
        ("off", SandboxMode::Off),
    ] {
        let path = write(dir.path(), "baton.toml", &format!("[run]\nsandbox = \"{name}\"\n"));
        let (c, _) = load(&ConfigSources { repo_file: Some(path), ..Default::default() }).unwrap();
        assert_eq!(c.run.sandbox, mode, "{name} in a file");
        let (c, _) =
            load(&ConfigSources { sets: vec![format!("run.sandbox={name}")], ..Default::default() }).unwrap();
        assert_eq!(c.run.sandbox, mode, "{name} as --set");
        assert_eq!(name.parse::<SandboxMode>(), Ok(mode));
    }
    let err = "firejail".parse::<SandboxMode>().unwrap_err().to_string();
    assert!(err.contains("landlock"), "{err}");
    let path = write(dir.path(), "baton.toml", "[run]\nsandbox = \"firejail\"\n");
    let err = load_err(&ConfigSources { repo_file: Some(path), ..Default::default() });
    assert!(err.contains("landlock"), "the error lists the modes: {err}");
}

/// Issue 14, item 2: `network = "endpoint"` holds an agent to its `base_url`, so it must have
/// one that can be held to; a mistake is named with the agent and where it was written.
#[test]
fn an_agent_held_to_its_endpoint_must_name_one_that_can_be() {
    let dir = tempfile::tempdir().unwrap();
    let entry = |extra: &str| format!("[[agent]]\nname = \"local\"\nkind = \"codex\"\n{extra}");
    let ok = write(
        dir.path(),
        "ok.toml",
        &entry("base_url = \"http://127.0.0.1:8080/v1\"\nnetwork = \"endpoint\"\n"),
    );
    let (c, _) = load(&ConfigSources { repo_file: Some(ok), ..Default::default() }).unwrap();
    assert_eq!(c.agents[0].network, baton_config::AgentNetwork::Endpoint);
    let only = c.agents[0].only_endpoint().unwrap().unwrap();
    assert_eq!((only.port, only.origin()), (8080, "http://127.0.0.1:8080".to_owned()));
    let open = write(dir.path(), "open.toml", &entry("base_url = \"http://127.0.0.1:8080/v1\"\n"));
    let (c, _) = load(&ConfigSources { repo_file: Some(open), ..Default::default() }).unwrap();
    assert_eq!(c.agents[0].network, baton_config::AgentNetwork::Host, "agents have the network by default");

    for (name, extra, says) in [
        (
            "nourl.toml",
            "network = \"endpoint\"\n",
            ":4:11: agent `local`: network = \"endpoint\" needs `base_url`",
        ),
        (
            "addr.toml",
            "network = \"endpoint\"\nbase_url = \"https://10.0.0.5/v1\"\n",
            ":5:12: agent `local`: network = \"endpoint\": base_url `https://10.0.0.5/v1` names the address 10.0.0.5",
        ),
        ("word.toml", "network = \"none\"\n", "unknown variant `none`, expected `host` or `endpoint`"),
    ] {
        let file = write(dir.path(), name, &entry(extra));
        let e = load_err(&ConfigSources { repo_file: Some(file.clone()), ..Default::default() });
        assert!(e.contains(says), "{name}: {e}");
        assert!(e.starts_with(&file.display().to_string()), "{name}: {e}");
    }
    let patch = write(
        dir.path(),
        "patch.toml",
        "[[agent]]\nname = \"p\"\nkind = \"patch\"\npatch = \"x.diff\"\nnetwork = \"endpoint\"\n",
    );
    let e = load_err(&ConfigSources { repo_file: Some(patch), ..Default::default() });
    assert!(e.contains(":5:11: agent `p` is a patch agent: it starts no process"), "{e}");
}
