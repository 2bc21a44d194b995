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
    let mut clis = Vec::new();
    for info in CliInfo::all() {
        clis.push(check_cli(info, &config));
    }
    // The agents `baton run` uses without --agent.
    let mut agents = Vec::new();
    for spec in &config.run.agents {
        let problem = resolve_agents(std::slice::from_ref(spec), &config, &cwd).err().map(|e| e.message);
        agents.push(json!({"agent": spec, "ok": problem.is_none(), "problem": problem}));
    }
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
    let ok = git.is_some()
        && stages_ok
        && agents.iter().all(|a| a["ok"] == true)
        && (!agents.is_empty() || any_ready);

    if args.json {
        let doc = json!({
            "ok": ok,
            "git": git,
            "sandbox": {"bwrap": bwrap},
            "repository": repo.as_ref().map(|r| r.root.display().to_string()),
            "clis": clis,
            "agents": agents,
            "stage_check": check.as_ref().map(super::check::json),
        });
        println!("{doc:#}");
    } else {
        print_report(&git, &bwrap, repo.as_ref(), &clis, &agents, &config);
        if let Some(check) = &check {
            println!();
            print!("{}", super::check::text(check, args.check.check_timeout));
        }
        println!();
        println!(
            "{}",
            if ok { "baton run can work here" } else { "baton run cannot work here yet: see above" }
        );
    }
    Ok(if ok { ExitCode::Success } else { ExitCode::Failure })
}

fn print_report(
    git: &Option<String>,
    bwrap: &Option<String>,
    repo: Option<&baton_git::Repo>,
    clis: &[Value],
    agents: &[Value],
    config: &Config,
) {
    println!("{:<10}{}", "git", git.as_deref().unwrap_or("MISSING: baton needs git on PATH"));
    println!(
        "{:<10}{}",
        "sandbox",
        match bwrap {
            Some(v) => format!("bubblewrap {v} (Codex runs commands in its workspace-write sandbox)"),
            None => "no bubblewrap: codex agents need it (apt-get install bubblewrap) or --dangerously-bypass-approvals-and-sandbox".into(),
        }
    );
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
        Err(e) => (Some("?".into()), Some(e.clone())),
    };
    let usable = baton_agents::Agent::preflight(&agent);
    let problem = problem.or_else(|| usable.as_ref().err().map(|e| e.to_string()));
    json!({"kind": kind, "installed": true, "program": program.display().to_string(), "version": version,
           "credentials": credentials, "ready": usable.is_ok(), "problem": problem})
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
