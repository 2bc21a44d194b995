//! Issue 14, item 2: an agent with `network = "endpoint"` reaches its model's endpoint and
//! nothing else; an agent without it keeps the network. These need bubblewrap: where it cannot
//! run they say they are skipped (CI, which installs it, sets BATON_REQUIRE_SANDBOX and fails
//! them instead).

#[expect(dead_code, reason = "the helpers are shared with e2e.rs, which uses the rest")]
mod common;

use std::io::Read;
use std::net::TcpListener;

use baton_testkit::{ModelServer, Script, Step};
use common::{Env, FIX, sandbox_works, stderr, text};

/// An agent that asks its model (at `$BATON_BASE_URL`) for a completion and tries another
/// server on 127.0.0.1 (at `$OTHER_PORT`, sending its candidate id), writes how each went into
/// its tree, then fixes the bug.
const AGENT: &str = r#"#!/bin/sh
python3 - <<'PY'
import json, os, socket, urllib.request
body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
request = urllib.request.Request(os.environ["BATON_BASE_URL"] + "/v1/chat/completions", data=body,
                                 headers={"content-type": "application/json"})
try:
    reply = urllib.request.urlopen(request, timeout=30).read().decode()
except OSError as e:
    reply = "FAILED: %s" % e
open("model.txt", "w").write(reply)
try:
    s = socket.create_connection(("127.0.0.1", int(os.environ["OTHER_PORT"])), timeout=5)
    s.sendall(os.environ["BATON_CANDIDATE"].encode())
    s.close()
    other = "reached"
except OSError as e:
    other = "refused: %s" % e
open("other.txt", "w").write(other)
PY
"#;

/// What every connection `listener` took so far sent.
fn received(listener: &TcpListener) -> Vec<String> {
    listener.set_nonblocking(true).unwrap();
    let mut out = Vec::new();
    while let Ok((mut s, _)) = listener.accept() {
        s.set_nonblocking(false).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        out.push(text);
    }
    out
}

#[test]
fn an_agent_held_to_its_endpoint_reaches_its_model_and_nothing_else() {
    if !sandbox_works() {
        return;
    }
    let env = Env::new();
    let server = ModelServer::start(Script::new(vec![Step::Text("unused".into())]));
    for name in ["held", "named", "open"] {
        server.script(name, Script::new(vec![Step::Text(format!("hello, {name}"))]));
    }
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = other.local_addr().unwrap().port();
    let script = env.agent("agent", &format!("{AGENT}{}", FIX.trim_start_matches("#!/bin/sh\n")));
    let program = script.trim_start_matches("command:");
    let entry = |name: &str, url: String, network: &str| {
        format!(
            "[[agent]]\nname = \"{name}\"\nkind = \"command\"\ncommand = \"{program}\"\nbase_url = \"{url}\"\n\
             env = {{ OTHER_PORT = \"{other_port}\" }}\n{network}\n"
        )
    };
    // Held to its endpoint by address and by name; and one with the network, as agents have
    // by default.
    let config = [
        entry("held", server.script_url("held"), "network = \"endpoint\""),
        entry("named", format!("http://localhost:{}/s/named", server.port()), "network = \"endpoint\""),
        entry("open", server.script_url("open"), ""),
    ]
    .join("\n");
    let config_file = env.home.path().join("agents.toml");
    std::fs::write(&config_file, config).unwrap();
    let config_arg = config_file.to_str().unwrap();
    let out = env.baton(&[
        "run",
        "fix add",
        "--config",
        config_arg,
        "--agent",
        "held",
        "--agent",
        "named",
        "--agent",
        "open",
        "--sandbox",
        "bwrap",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = stderr(&out);
    let port = server.port();
    for note in [
        format!("c1 (held): network: only http://127.0.0.1:{port}"),
        format!("c2 (named): network: only http://localhost:{port}"),
        "c3 (open): network: the machine's".to_owned(),
    ] {
        assert!(err.contains(&note), "the run header says `{note}`:\n{err}");
    }

    let show = env.show();
    let run = show["run"].as_str().unwrap();
    let file = |candidate: &str, name: &str| {
        env.repo.git(&["show", &format!("refs/baton/runs/{run}/{candidate}:{name}")])
    };
    for held in ["c1", "c2"] {
        assert!(
            file(held, "model.txt").contains("chat.completion"),
            "{held} reached its model: {}",
            file(held, "model.txt")
        );
        assert!(file(held, "other.txt").starts_with("refused"), "{held}: {}", file(held, "other.txt"));
    }
    assert_eq!(
        file("c3", "other.txt"),
        "reached",
        "an agent without network = \"endpoint\" keeps the network"
    );
    assert_eq!(received(&other), ["c3"], "the other server heard only from the agent with the network");
    let scripts: Vec<String> = server.requests().iter().map(|r| r.script.clone()).collect();
    for name in ["held", "named", "open"] {
        assert!(scripts.iter().any(|s| s == name), "{name} reached the model: {}", server.summary());
    }
    for c in show["candidates"].as_array().unwrap() {
        assert_eq!(c["outcome"]["outcome"], "completed", "{c:#}");
    }
}

#[test]
fn an_agent_held_to_its_endpoint_is_never_run_without_a_sandbox() {
    let env = Env::new();
    let fix = env.agent("fix", FIX);
    let config_file = env.home.path().join("agents.toml");
    std::fs::write(
        &config_file,
        format!(
            "[[agent]]\nname = \"held\"\nkind = \"command\"\ncommand = \"{}\"\nbase_url = \"http://127.0.0.1:8080/v1\"\nnetwork = \"endpoint\"\n",
            fix.trim_start_matches("command:")
        ),
    )
    .unwrap();
    let out = env.baton(&[
        "run",
        "fix add",
        "--config",
        config_file.to_str().unwrap(),
        "--agent",
        "held",
        "--sandbox",
        "off",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains(
            "agent `held` may reach only http://127.0.0.1:8080 (network = \"endpoint\"), but run.sandbox is \"off\": \
             baton will not run it with the whole network"
        ),
        "{}",
        text(&out)
    );
    assert!(!env.repo.path().join(".git/baton").exists(), "nothing was started");
}
