//! Issue 14, item 6: keys never reach what baton writes. Agents, stages and examples print
//! keys (their values, from baton's environment, and tokens of known shapes baton was never
//! given); no log, event, artifact, commit message or report holds them afterwards, and the
//! logs say which variable's value stood where. Runs are unconfined (`--sandbox off`): every
//! process then sees baton's whole environment, keys included, as it does without bubblewrap.

#[expect(dead_code, reason = "the helpers are shared with e2e.rs, which uses the rest")]
mod common;

use std::path::{Path, PathBuf};

use common::{Env, FIX, candidate, text};
/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            out.extend(files_under(&path));
        } else if kind.is_file() {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Issue 14, item 6: keys an agent, a test stage and an example print reach no log, no event,
/// no artifact and no report. The agent prints the key on stdout and stderr, split across two
/// writes, a token of a known shape that baton was never given, and a secret-named variable's
/// value; it fails with the key in its last lines. Unconfined (`--sandbox off`), so that every
/// process sees baton's whole environment, keys included.
#[test]
fn keys_that_agents_stages_and_examples_print_are_redacted_everywhere_baton_writes() {
    let env = Env::new();
    let key = "sk-proj-Zq8vN3xR7tL2mW9kP4sB6yH1cF5gJ0dA-eU_iO8nT2rV7xK3";
    let token = "ghp_R3dact3dT0k3nN0tGiv3nT0BatonAtA1l0xy";
    let service = "plain-service-secret-9f8e7d6c";
    env.repo.write(
        "leak.sh",
        "echo \"stage sees $OPENAI_API_KEY\"\necho \"stage error: $MY_SERVICE_TOKEN\" >&2\n",
    );
    env.repo.write(
        "baton.toml",
        "[run]\ngrace = \"1s\"\n\n[[verify.stage]]\nname = \"test\"\nrun = \"sh tests/run.sh\"\nparser = \"tap\"\n\n\
         [[verify.stage]]\nname = \"leak\"\nkind = \"custom\"\nrun = \"sh leak.sh\"\n",
    );
    env.repo.commit_all("a stage that prints keys");
    let leaky = env.agent(
        "leaky",
        &format!(
            "#!/bin/sh
echo \"using OPENAI_API_KEY=$OPENAI_API_KEY\"
printf 'the key, in two writes: %.20s' \"$OPENAI_API_KEY\"
printf '%s\\n' \"${{OPENAI_API_KEY#????????????????????}}\"
echo \"found {token} in the cache\" >&2
echo \"curl -H 'Authorization: Bearer $MY_SERVICE_TOKEN'\" >&2
echo \"error: 401 Unauthorized: incorrect API key provided: $OPENAI_API_KEY\" >&2
echo \"error: giving up with $OPENAI_API_KEY\"
exit 1
"
        ),
    );
    let fix = env.agent("fix", FIX);
    let out = env
        .command(&[
            "run",
            "fix add",
            "--agent",
            &leaky,
            "--agent",
            &fix,
            "--sandbox",
            "off",
            "--probe",
            "echo example sees $OPENAI_API_KEY",
            "--json",
        ])
        .env("OPENAI_API_KEY", key)
        .env("MY_SERVICE_TOKEN", service)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "the fix still wins: {}", text(&out));
    let show = env.show();
    let run = show["run"].as_str().unwrap().to_owned();
    let leaky_log = env.repo.path().join(".git/baton/runs").join(&run).join("c1/agent.log");
    let log = std::fs::read_to_string(&leaky_log).unwrap();
    assert!(log.contains("using OPENAI_API_KEY=[redacted: OPENAI_API_KEY]"), "{log}");
    assert!(log.contains("the key, in two writes: [redacted: OPENAI_API_KEY]"), "{log}");
    assert!(log.contains("found [redacted] in the cache"), "{log}");
    assert!(log.contains("Authorization: Bearer [redacted: MY_SERVICE_TOKEN]"), "{log}");
    assert!(log.contains("error: giving up with [redacted: OPENAI_API_KEY]"), "{log}");
    let stage_log = std::fs::read_to_string(
        env.repo.path().join(".git/baton/runs").join(&run).join("base/verify-leak.log"),
    )
    .unwrap();
    assert!(stage_log.contains("stage sees [redacted: OPENAI_API_KEY]"), "{stage_log}");
    assert!(stage_log.contains("stage error: [redacted: MY_SERVICE_TOKEN]"), "{stage_log}");

    let secrets = [key, &key[..24], &key[24..], token, service];
    let mut outputs = reports(&env);
    outputs.extend([("the run's events", out.stdout.clone()), ("the run's stderr", out.stderr.clone())]);
    assert_nowhere(&env, &secrets, &outputs);
    // The example's output is stored as evidence, redacted.
    assert!(holds(&out.stdout, "example sees [redacted: OPENAI_API_KEY]"), "{}", text(&out));
}

/// Fails naming the secret and where it is, if any of `secrets` is in a file under the
/// repository's `.git/baton` (the store, logs, artifacts) or in `outputs`.
fn assert_nowhere(env: &Env, secrets: &[&str], outputs: &[(&str, Vec<u8>)]) {
    let files = files_under(&env.repo.path().join(".git/baton"));
    assert!(files.iter().any(|(p, _)| p.ends_with(baton_store::DB_FILE)), "the store is among them");
    for (path, bytes) in &files {
        for secret in secrets {
            assert!(!holds(bytes, secret), "{secret} is in {}", path.display());
        }
    }
    for (what, bytes) in outputs {
        for secret in secrets {
            assert!(!holds(bytes, secret), "{secret} is in {what}: {}", String::from_utf8_lossy(bytes));
        }
    }
}

/// What `baton show`, `baton show --json` and `baton status` print.
fn reports(env: &Env) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("baton show", env.baton(&["show"]).stdout),
        ("baton show --json", env.baton(&["show", "--json"]).stdout),
        ("baton status", env.baton(&["status"]).stdout),
    ]
}

/// A fake agent CLI at `bin/NAME`: answers `--version` with `version`, then runs `body`.
fn fake_cli(env: &Env, name: &str, version: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = env.home.path().join("bin").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        format!("#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{version}'; exit 0; fi\n{body}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Each agent CLI is handed its key and quotes it, as a CLI does when a key is refused: the
/// line is not one of its events (aider's is its error line), so the line reaches the run's
/// events and the candidate's outcome, and from there the store, the reports and the
/// candidate's commit message. None of them holds the key; the outcome says whose it was.
#[test]
fn a_key_every_agent_cli_quotes_is_redacted_from_events_outcomes_and_commits() {
    let env = Env::new();
    let keys = [
        ("OPENAI_API_KEY", "sk-proj-Op3nA1K3yV4lu3-0123456789abcdefGHIJKLmnopqrst"),
        ("ANTHROPIC_API_KEY", "sk-ant-api03-Anthr0p1cK3y-0123456789abcdefGHIJKLmnopqrstuv"),
        ("GEMINI_API_KEY", "AIzaSyGem1n1K3yV4lu3-0123456789abcdefg"),
    ];
    // What a CLI prints when its key is refused, with whichever of the keys it was given, and
    // its session transcript in its HOME.
    let body = "k=\"$OPENAI_API_KEY$ANTHROPIC_API_KEY$GEMINI_API_KEY\"\n\
                mkdir -p \"$HOME/.sessions\"\n\
                echo \"{\\\"request\\\":{\\\"api_key\\\":\\\"$k\\\"}}\" > \"$HOME/.sessions/transcript.jsonl\"\n\
                echo \"litellm.AuthenticationError: Incorrect API key provided: $k\"\n\
                echo \"401 Unauthorized (key $k)\" >&2\n\
                exit 1";
    // Claude's login file, which baton links into the candidate's HOME: the user's, untouched.
    let login = env.home.path().join(".claude/.credentials.json");
    let login_text =
        "{\"claudeAiOauth\":{\"accessToken\":\"sk-ant-oat01-L0g1nT0k3n-0123456789abcdefGHIJ\"}}\n";
    std::fs::create_dir_all(login.parent().unwrap()).unwrap();
    std::fs::write(&login, login_text).unwrap();
    let clis = [
        ("claude", "2.1.197 (Claude Code)", ""),
        ("codex", "codex-cli 0.63.0", "args = [\"--dangerously-bypass-approvals-and-sandbox\"]\n"),
        ("gemini", "0.61.0", ""),
        ("opencode", "1.0.0", ""),
        ("qwen", "0.2.0", ""),
        ("aider", "aider 0.86.1", ""),
    ];
    let mut config = String::from("[run]\ngrace = \"1s\"\nexit_timeout = \"2s\"\n\n");
    for (kind, version, extra) in clis {
        let program = fake_cli(&env, kind, version, body);
        config.push_str(&format!(
            "[[agent]]\nname = \"{kind}\"\nkind = \"{kind}\"\nprogram = \"{}\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:9/v1\"\n{extra}\n",
            program.display()
        ));
    }
    let config_file = env.home.path().join("agents.toml");
    std::fs::write(&config_file, config).unwrap();
    let mut args =
        vec!["--config", config_file.to_str().unwrap(), "run", "fix add", "--sandbox", "off", "--json"];
    for (kind, _, _) in clis {
        args.extend(["--agent", kind]);
    }
    let mut cmd = env.command(&args);
    for (name, value) in keys {
        cmd.env(name, value);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(4), "every CLI failed, so no winner: {}", text(&out));

    let show = env.show();
    let run = show["run"].as_str().unwrap().to_owned();
    let mut outputs = reports(&env);
    outputs.extend([("the run's events", out.stdout.clone()), ("the run's stderr", out.stderr.clone())]);
    for (kind, _, _) in clis {
        let c = candidate(&show, kind);
        let reason = c["outcome"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("Incorrect API key provided: [redacted: "), "{kind}: {reason}");
        let id = c["id"].as_str().unwrap();
        let log = std::fs::read_to_string(
            env.repo.path().join(".git/baton/runs").join(&run).join(id).join("agent.log"),
        )
        .unwrap();
        assert!(log.contains("401 Unauthorized (key [redacted: "), "{kind}: {log}");
        let message = env.repo.git(&["log", "-1", "--format=%B", &format!("refs/baton/runs/{run}/{id}")]);
        assert!(message.contains("[redacted: "), "{kind}: the commit message quotes the outcome: {message}");
        outputs.push(("a commit message", message.into_bytes()));
    }
    let secrets: Vec<&str> = keys.iter().map(|(_, v)| *v).collect();
    assert_nowhere(&env, &secrets, &outputs);
    let claude = candidate(&show, "claude")["id"].as_str().unwrap().to_owned();
    let home = env.repo.path().join(".git/baton/runs").join(&run).join(claude).join("home");
    let transcript = std::fs::read_to_string(home.join(".sessions/transcript.jsonl")).unwrap();
    assert_eq!(transcript, "{\"request\":{\"api_key\":\"[redacted: ANTHROPIC_API_KEY]\"}}\n");
    assert!(home.join(".claude/.credentials.json").is_symlink(), "the login file was linked in");
    assert_eq!(std::fs::read_to_string(&login).unwrap(), login_text);
}
