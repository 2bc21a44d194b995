//! `baton doctor`: what `baton run` needs and whether this machine has it.

use std::path::Path;

use baton_agents::{CliAgent, CliInfo, Credentials, cli_version, resolve_program};
use baton_config::{AgentConfig, Config};
use baton_core::ExitCode;
use serde_json::{Value, json};

use crate::cli::{DoctorArgs, Global};
use crate::commands::run::resolve_agents;
use crate::context;
use crate::error::CliError;

pub(crate) fn run(global: &Global, args: DoctorArgs) -> Result<ExitCode, CliError> {
    let cwd = context::working_dir(global)?;
    let repo = baton_git::Repo::discover(&cwd).ok();
    let config = context::config(global, repo.as_ref().map(|r| r.root.as_path()))?;

    let git = tool_version("git", &["--version"]);
    let bwrap = tool_version("bwrap", &["--version"]);
    let sandbox = sandbox_state(config.run.sandbox, bwrap.as_deref());
    // Every endpoint an [[agent]] names, asked once: a closed port is not "ready".
    let mut endpoints: Vec<Value> = Vec::new();
    for a in config.agents.iter().filter(|a| a.kind.is_cli()) {
        if let Some(url) = &a.base_url
            && !endpoints.iter().any(|e| e["url"] == url.as_str())
        {
            let answer = check_endpoint(url, ENDPOINT_TIMEOUT);
            endpoints.push(json!({"url": url, "ok": answer.is_ok(),
                                  "answer": answer.as_ref().ok(), "problem": answer.as_ref().err()}));
        }
    }
    let endpoint_problem = |url: Option<&String>| {
        let e = endpoints.iter().find(|e| url.is_some_and(|u| e["url"] == u.as_str()))?;
        e["problem"]
            .as_str()
            .map(|p| format!("its endpoint {} does not answer: {p}", e["url"].as_str().unwrap_or("")))
    };
    let mut clis = Vec::new();
    for info in CliInfo::all() {
        let mut c = check_cli(info, &config);
        if c["ready"] == true
            && let Some(problem) = endpoint_problem(c["base_url"].as_str().map(str::to_owned).as_ref())
        {
            c["ready"] = json!(false);
            c["problem"] = json!(problem);
        }
        clis.push(c);
    }
    // The agents `baton run` uses without --agent.
    let mut agents = Vec::new();
    for spec in &config.run.agents {
        let base_url = config.agents.iter().find(|a| &a.name == spec).and_then(|a| a.base_url.as_ref());
        let problem = resolve_agents(std::slice::from_ref(spec), &config, &cwd)
            .err()
            .map(|e| e.message)
            .or_else(|| endpoint_problem(base_url));
        agents.push(json!({"agent": spec, "ok": problem.is_none(), "problem": problem}));
    }
    let warnings = ignored_variables(&config);
    let any_ready = clis.iter().any(|c| c["ready"] == true);
    // The verification stages, as `baton run` would use them, once on HEAD.
    let check = match &repo {
        Some(repo) if !args.check.no_check && repo.head().is_ok() => {
            let mut config = config.clone();
            if config.verify.stages.is_empty() {
                let head = repo.head()?;
                baton_engine::detect_stages(repo, &head, &mut config);
            }
            (!config.verify.stages.is_empty())
                .then(|| super::check::run(repo, &config, args.check.check_timeout))
                .transpose()?
        }
        _ => None,
    };
    let stages_ok = check.as_ref().is_none_or(|c| c.problems.is_empty());
    // Without a ready agent CLI, command: and patch: agents still work: that is no failure.
    let ok = git.is_some() && stages_ok && agents.iter().all(|a| a["ok"] == true);
    let verdict = if !ok {
        let mut not = Vec::new();
        if git.is_none() {
            not.push("git is missing".to_owned());
        }
        if !stages_ok {
            not.push("the verification stages cannot verify".to_owned());
        }
        let bad: Vec<&str> =
            agents.iter().filter(|a| a["ok"] != true).filter_map(|a| a["agent"].as_str()).collect();
        if !bad.is_empty() {
            not.push(format!("run.agents cannot run: {}", bad.join(", ")));
        }
        format!("baton run cannot work here yet: {} (see above)", not.join("; "))
    } else if any_ready || !agents.is_empty() {
        "baton run can work here".to_owned()
    } else {
        "baton run can work here with command:PROGRAM and patch:FILE agents; no agent CLI is ready (see above)"
            .to_owned()
    };

    if args.json {
        let doc = json!({
            "ok": ok,
            "git": git,
            "sandbox": sandbox,
            "repository": repo.as_ref().map(|r| r.root.display().to_string()),
            "clis": clis,
            "any_cli_ready": any_ready,
            "endpoints": endpoints,
            "agents": agents,
            "warnings": warnings,
            "verdict": verdict,
            "stage_check": check.as_ref().map(super::check::json),
        });
        println!("{doc:#}");
    } else {
        print_report(&git, &sandbox, repo.as_ref(), &clis, &agents, &config);
        if !endpoints.is_empty() {
            println!();
            for e in &endpoints {
                let url = e["url"].as_str().unwrap_or("");
                match (e["answer"].as_str(), e["problem"].as_str()) {
                    (Some(a), _) => println!("endpoint  {url}: {a}"),
                    (_, Some(p)) => println!("endpoint  {url}: DOES NOT ANSWER: {p}"),
                    _ => {}
                }
            }
        }
        for w in &warnings {
            println!("warning: {w}");
        }
        if let Some(check) = &check {
            println!();
            print!("{}", super::check::text(check, args.check.check_timeout));
        }
        println!();
        println!("{verdict}");
    }
    Ok(if ok { ExitCode::Success } else { ExitCode::Failure })
}

/// What confines a run here under `mode`: `{mode, bwrap, landlock: {abi, problem}, confines,
/// problem, says}`. `problem` is why bubblewrap cannot start, `landlock.problem` why Landlock
/// is not available (`abi` is its version where it is).
fn sandbox_state(mode: baton_config::SandboxMode, bwrap: Option<&str>) -> Value {
    use baton_config::SandboxMode;
    use baton_engine::SandboxChoice;
    let mut found = baton_engine::Sandboxes::probe();
    if let Err(e) = &mut found.bwrap
        && baton_exec::find_bwrap().is_none()
    {
        *e = baton_exec::Unavailable::Refused(
            "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)".to_owned(),
        );
    }
    let mode_name = match mode {
        SandboxMode::Auto => "auto",
        SandboxMode::Bwrap => "bwrap",
        SandboxMode::Landlock => "landlock",
        SandboxMode::Off => "off",
    };
    let guarantees = "agents, tests and examples write only to their workspace, their own HOME and temporary \
                      directory; your repository is read-only to them; keys under your HOME are hidden; tests \
                      and examples have no network";
    let (confines, says) = match found.choose(mode) {
        SandboxChoice::Unconfined { why: None } => {
            (false, "off: nothing confines agents; baton checks your repository after each agent".to_owned())
        }
        SandboxChoice::Bwrap(_) => {
            (true, format!("{mode_name}: bubblewrap {}: {guarantees}", bwrap.unwrap_or("?")))
        }
        SandboxChoice::Landlock { landlock, no_bwrap } => {
            let instead = no_bwrap.map(|e| format!(" (bubblewrap cannot start: {e})")).unwrap_or_default();
            let network = if landlock.abi() >= 4 {
                "tests and examples make no TCP connection, not even to 127.0.0.1 (UDP is not filtered)"
            } else {
                "tests and examples reach the network (this kernel's Landlock has no network rules)"
            };
            let says = format!(
                "{mode_name}: Landlock ABI {}{instead}: agents, tests and examples write only to their workspace, \
                 their own HOME and temporary directory; your repository is read-only to them; key files under \
                 your HOME are unreadable (not hidden: their names show); {network}; no process namespace, and \
                 /proc shows other processes' environment",
                landlock.abi()
            );
            (true, says)
        }
        SandboxChoice::Refused(_) => {
            let why = match mode {
                SandboxMode::Landlock => found.landlock.as_ref().err(),
                _ => found.bwrap.as_ref().err(),
            };
            (
                false,
                format!(
                    "{mode_name}: no sandbox can start here, so runs refuse: {}",
                    why.map_or_else(|| "?".to_owned(), ToString::to_string)
                ),
            )
        }
        SandboxChoice::Unconfined { why: Some(e) } => (
            false,
            format!("auto: no sandbox can start here ({e}): agents run unconfined, checked after each one"),
        ),
    };
    let landlock = json!({"abi": found.landlock.as_ref().ok().map(|l| l.abi()),
                          "problem": found.landlock.as_ref().err().map(ToString::to_string)});
    json!({"mode": mode_name, "bwrap": bwrap, "landlock": landlock, "confines": confines,
           "problem": found.bwrap.as_ref().err().map(ToString::to_string), "says": says})
}

fn print_report(
    git: &Option<String>,
    sandbox: &Value,
    repo: Option<&baton_git::Repo>,
    clis: &[Value],
    agents: &[Value],
    config: &Config,
) {
    println!("{:<10}{}", "git", git.as_deref().unwrap_or("MISSING: baton needs git on PATH"));
    println!("{:<10}{}", "sandbox", sandbox["says"].as_str().unwrap_or(""));
    match repo {
        Some(r) => println!("{:<10}{}", "repo", r.root.display()),
        None => println!("{:<10}not inside a git repository (baton run needs one)", "repo"),
    }
    println!();
    for c in clis {
        let name = c["kind"].as_str().unwrap_or("");
        match c["version"].as_str() {
            None => {
                let why = c["problem"].as_str().unwrap_or("");
                println!("{name:<10}{why}");
            }
            Some(v) => {
                let key = c["credentials"].as_str().unwrap_or("");
                let status = if c["ready"] == true { "ready" } else { "NOT READY" };
                println!("{name:<10}{v:<10}{status}: {key}");
                println!("{:<10}{}", "", c["program"].as_str().unwrap_or(""));
                if let Some(p) = c["problem"].as_str() {
                    println!("{:<10}{p}", "");
                }
            }
        }
    }
    println!();
    if agents.is_empty() {
        println!(
            "no default agents (run.agents is empty): pass --agent KIND[:MODEL] to baton run{}",
            if config.agents.is_empty() {
                String::new()
            } else {
                format!(" or an [[agent]] name ({})", names(config))
            }
        );
    } else {
        for a in agents {
            let name = a["agent"].as_str().unwrap_or("");
            match a["problem"].as_str() {
                None => println!("agent {name}: ready"),
                Some(p) => println!("agent {name}: {p}"),
            }
        }
    }
}

fn names(config: &Config) -> String {
    config.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// One agent CLI: the configured program for its kind (an [[agent]] named after the kind, else
/// the first of that kind), else the kind's name on PATH.
fn check_cli(info: &CliInfo, config: &Config) -> Value {
    let kind = info.kind.as_str();
    let template = config
        .agents
        .iter()
        .find(|a| a.kind == info.kind && a.name == kind)
        .or_else(|| config.agents.iter().find(|a| a.kind == info.kind))
        .cloned()
        .unwrap_or_else(|| AgentConfig::of_kind(kind, info.kind));
    let agent = CliAgent::new(template.clone()).expect("a CLI kind");
    let Some(program) = agent.program() else {
        let wanted =
            template.program.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| info.program.into());
        return json!({"kind": kind, "installed": false, "ready": false,
                      "problem": format!("not installed ({wanted} not found); install: {}", info.install)});
    };
    let version = cli_version(&program);
    let credentials = match info.credentials(template.api_key_env.as_deref()) {
        Credentials::Key(var) => format!("key in ${var}"),
        Credentials::Login(path) => format!("logged in ({})", path.display()),
        Credentials::Missing if template.base_url.is_some() => {
            format!("no key needed for {}", template.base_url.as_deref().unwrap_or(""))
        }
        Credentials::Missing => {
            format!("no key: set {}", template.api_key_env.clone().unwrap_or_else(|| info.keys.join(" or ")))
        }
    };
    let (version, problem) = match &version {
        Ok((a, b, c)) if (*a, *b, *c) < info.min_version => {
            let (x, y, z) = info.min_version;
            (
                Some(format!("{a}.{b}.{c}")),
                Some(format!("too old: baton needs {x}.{y}.{z} or newer for {}", info.min_version_for)),
            )
        }
        Ok((a, b, c)) => (Some(format!("{a}.{b}.{c}")), None),
        Err(e) => (Some("?".into()), Some(baton_core::error_chain(e))),
    };
    let usable = baton_agents::Agent::preflight(&agent);
    let problem = problem.or_else(|| usable.as_ref().err().map(|e| e.to_string()));
    json!({"kind": kind, "installed": true, "program": program.display().to_string(), "version": version,
           "credentials": credentials, "ready": usable.is_ok(), "problem": problem,
           "base_url": template.base_url})
}

/// How long `doctor` waits for an endpoint to connect and answer.
const ENDPOINT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Whether a model endpoint answers: a TCP connection, then (for `http://`) one cheap request,
/// `HEAD` on its base path, whose status line is enough; no model is called. For `https://`
/// only the connection is tried (baton has no TLS client).
fn check_endpoint(url: &str, timeout: std::time::Duration) -> Result<String, String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let (scheme, rest) = url.split_once("://").ok_or_else(|| "not a URL (no scheme://)".to_owned())?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        other => return Err(format!("unknown scheme `{other}`")),
    };
    let host_port = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    };
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {authority}"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    if scheme == "https" {
        return Ok("accepts connections (TLS not checked)".into());
    }
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    stream
        .write_all(
            format!("HEAD {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .map_err(|e| format!("connected, but the request failed: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| format!("connected, but no answer: {e}"))?;
    let status = String::from_utf8_lossy(&head[..n]).lines().next().unwrap_or("").to_owned();
    if status.starts_with("HTTP/") {
        Ok(format!("answers ({})", status.trim()))
    } else {
        Err(format!("connected, but it does not speak HTTP (got {:?})", status.trim()))
    }
}

/// Variables an agent CLI ignores although a user would expect it to read them. Codex (0.169)
/// does not read OPENAI_BASE_URL for its own provider: it kept reconnecting to its vendor's
/// host until the wall limit.
fn ignored_variables(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for a in config.agents.iter().filter(|a| a.kind == baton_config::AgentKind::Codex && a.base_url.is_none())
    {
        let var = "OPENAI_BASE_URL";
        let given = a.env.contains_key(var)
            || a.env_pass.iter().any(|v| v == var)
            || std::env::var_os(var).is_some_and(|v| !v.is_empty());
        if given {
            out.push(format!(
                "agent `{}`: codex ignores {var} (it talks to its own provider's host); set `base_url` in its [[agent]] instead",
                a.name
            ));
        }
    }
    if config.agents.iter().all(|a| a.kind != baton_config::AgentKind::Codex)
        && std::env::var_os("OPENAI_BASE_URL").is_some_and(|v| !v.is_empty())
    {
        out.push(
            "codex ignores OPENAI_BASE_URL (it talks to its own provider's host): give a codex [[agent]] a `base_url` instead".into(),
        );
    }
    out
}

/// `tool ARGS` → the first `x.y.z` it prints, if the tool is on PATH.
fn tool_version(tool: &str, args: &[&str]) -> Option<String> {
    let path = resolve_program(tool, Path::new("/"))?;
    let mut cmd = std::process::Command::new(path);
    cmd.args(args);
    let out = baton_exec::run_sync(cmd, None).ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let word = text.split_whitespace().find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    Some(word.to_owned())
}
