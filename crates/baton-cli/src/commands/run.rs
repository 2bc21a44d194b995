use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use baton_agents::{Agent, CliAgent, CommandAgent, PatchAgent};
use baton_config::{AgentConfig, AgentKind, CommandLine, Config};
use baton_core::{ExitCode, RunStatus, Task};
use baton_engine::{RunOutcome, RunRequest};
use baton_exec::CancelHandle;
use baton_git::Repo;

use crate::cli::{Global, RunArgs};
use crate::context;
use crate::error::CliError;
use crate::render::{self, RunView};
use crate::report;

pub(crate) fn run(global: &Global, args: RunArgs) -> Result<ExitCode, CliError> {
    let repo = context::repo(global)?;
    let cwd = context::working_dir(global)?;
    // `-n`, `--jobs` and `--agent-jobs` are layered like `--set run.repeats=N`: one value, one
    // meaning, one check.
    let mut options = Vec::new();
    if let Some(n) = args.repeats {
        options.push((format!("-n {n}"), "run.repeats".to_owned(), n.to_string()));
    }
    if let Some(j) = args.jobs {
        options.push((format!("--jobs {j}"), "run.jobs".to_owned(), j.to_string()));
    }
    if let Some(j) = args.agent_jobs {
        options.push((format!("--agent-jobs {j}"), "run.agent_jobs".to_owned(), j.to_string()));
    }
    if let Some(mode) = &args.sandbox {
        options.push((format!("--sandbox {mode}"), "run.sandbox".to_owned(), mode.clone()));
    }
    let resolved = context::resolve(global, Some(&repo.root), options)?;
    let config = resolved.config.clone();
    let task = read_task(&args, &cwd)?;
    let specs = if args.agents.is_empty() { config.run.agents.clone() } else { args.agents.clone() };
    let agents = resolve_agents(&specs, &config, &cwd)?;
    let strategies =
        if args.strategies.is_empty() { config.run.strategies.clone() } else { args.strategies.clone() };
    repo.head()?;
    repo.git().resolve(&args.base)?;
    check_target(&repo, args.target.as_deref(), &resolved)?;
    let mut request = RunRequest::new(repo.clone(), config, task, agents);
    // This binary holds agents to their endpoints inside their sandboxes (`baton __forward`).
    request.forwarder = std::env::current_exe().ok();
    request.base_rev = args.base.clone();
    request.include_dirty = args.include_dirty;
    request.strategies = strategies;
    request.target_branch = args.target.clone();
    request.probes = args.probes.clone();
    // A directory or a patch file is taken relative to where the user stands; anything else is
    // a revision.
    request.hidden_tests = args.hidden_tests.as_ref().map(|h| match cwd.join(h) {
        path if path.exists() => path.to_string_lossy().into_owned(),
        _ => h.clone(),
    });
    let plan = baton_engine::plan(request)?;
    let outcome = execute(&repo, plan, report::reporter(args.json, global.quiet))?;
    finish(&repo, &outcome, args.json)
}

/// The branch `baton merge` would land on must exist before the run starts, not only when
/// its winner is merged.
fn check_target(repo: &Repo, flag: Option<&str>, resolved: &baton_config::Resolved) -> Result<(), CliError> {
    let configured = &resolved.config.merge.target;
    let (target, named_by) = match flag {
        Some(t) => (t, format!("--target {t}")),
        None if !configured.is_empty() => {
            let path = baton_config::KeyPath(vec![
                baton_config::KeySeg::Key("merge".into()),
                baton_config::KeySeg::Key("target".into()),
            ]);
            (configured.as_str(), format!("{}: merge.target", resolved.origin(&path).1))
        }
        None => return Ok(()),
    };
    if repo.git().try_resolve(&format!("refs/heads/{target}"))?.is_some() {
        return Ok(());
    }
    let code = if flag.is_some() { ExitCode::Usage } else { ExitCode::Config };
    Err(CliError::new(
        code,
        format!(
            "{named_by}: there is no branch `{target}` to merge onto; create it (git branch {target}) or name an existing branch"
        ),
    ))
}

/// Runs the engine under a Ctrl-C handler: the first interrupt stops gracefully, the second
/// kills. SIGTERM and SIGHUP count as interrupts too.
pub(crate) fn execute(
    repo: &Repo,
    plan: baton_engine::RunPlan,
    reporter: report::Reporter,
) -> Result<RunOutcome, CliError> {
    let runtime = super::runtime()?;
    let dir = context::store_dir(repo);
    let fresh = !dir.exists();
    let store = context::store(repo)?;
    let result = runtime.block_on(async move {
        let (handle, cancel) = CancelHandle::new();
        let signals = tokio::spawn(forward_signals(handle));
        let result = baton_engine::run(plan, store, cancel, reporter).await;
        signals.abort();
        result.map_err(CliError::from)
    });
    // The engine checks its input before it creates a run, but after the store was opened: a
    // refusal in a repository that had no store leaves none behind.
    if result.is_err() && fresh {
        remove_unused_store(&dir);
    }
    result
}

/// Removes a run store that holds no run (and so no one's work).
fn remove_unused_store(dir: &Path) {
    let unused = baton_store::Store::open(dir).and_then(|s| s.runs(1)).is_ok_and(|runs| runs.is_empty());
    if unused {
        let _ = std::fs::remove_dir_all(dir);
    }
}

pub(crate) async fn forward_signals(handle: CancelHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
    else {
        return;
    };
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        handle.escalate();
    }
}

/// Prints the scoreboard (unless events went out as JSON) and picks the exit code.
pub(crate) fn finish(repo: &Repo, outcome: &RunOutcome, json: bool) -> Result<ExitCode, CliError> {
    let store = baton_store::Store::open(&repo.common_dir.join("baton"))?;
    if !json && let Some(run) = store.run(&outcome.run)? {
        let view = RunView::load(&store, run)?;
        println!();
        print!("{}", render::text(&view));
    }
    Ok(match outcome.status {
        RunStatus::Cancelled => ExitCode::Interrupted,
        RunStatus::Failed => ExitCode::Failure,
        RunStatus::Running | RunStatus::Finished => {
            if outcome.scoreboard.as_ref().and_then(|b| b.decision.winner()).is_some() {
                ExitCode::Success
            } else {
                ExitCode::NoWinner
            }
        }
    })
}

fn read_task(args: &RunArgs, cwd: &Path) -> Result<Task, CliError> {
    use std::os::unix::ffi::OsStrExt;
    let task = match (&args.task, &args.task_file) {
        (Some(text), _) => Task::from_text(&task_text(text.as_bytes().to_vec(), "the task")?, "argument"),
        (None, Some(file)) if file.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| CliError::usage(format!("cannot read the task from stdin: {e}")))?;
            Task::from_text(&task_text(bytes, "the task on stdin")?, "stdin")
        }
        (None, Some(file)) => {
            let path = cwd.join(file);
            let bytes = std::fs::read(&path)
                .map_err(|e| CliError::usage(format!("--task-file {}: {e}", file.display())))?;
            let text = task_text(bytes, &format!("--task-file {}", file.display()))?;
            Task::from_text(&text, path.to_string_lossy())
        }
        (None, None) => return Err(CliError::usage("give the task as text or with --task-file FILE")),
    };
    if task.is_empty() {
        return Err(CliError::usage("the task is empty: say what the agents should do"));
    }
    Ok(task)
}

/// The task's text, refused before anything starts when it is not text: a NUL byte or bytes
/// that are not UTF-8 (a binary file given by mistake, a file in another encoding) would reach
/// every agent's prompt and the run store garbled.
fn task_text(bytes: Vec<u8>, what: &str) -> Result<String, CliError> {
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(CliError::usage(format!(
            "{what} has a NUL byte at byte offset {at}: it is not text (a binary file?)"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        CliError::usage(format!(
            "{what} is not valid UTF-8 at byte offset {at}: save it as UTF-8 (e.g. iconv -t UTF-8)"
        ))
    })
}

/// Turns agent specs into agents: `command:PROGRAM [ARGS]`, `patch:FILE`, the name of an
/// `[[agent]]`, or an agent CLI as `kind[:model]` (`claude`, `claude:opus`, `codex:gpt-5`).
/// Relative paths are taken from `cwd`.
pub(crate) fn resolve_agents(
    specs: &[String],
    config: &Config,
    cwd: &Path,
) -> Result<Vec<Arc<dyn Agent>>, CliError> {
    let mut agents: Vec<Arc<dyn Agent>> = Vec::new();
    let mut names = std::collections::HashSet::new();
    // Every agent that cannot run is named at once (a missing CLI, a missing key), not one per
    // attempt.
    let mut unusable: Vec<baton_agents::AgentError> = Vec::new();
    for spec in specs {
        let agent: Arc<dyn Agent> = if let Some(cmd) = spec.strip_prefix("command:") {
            let argv = CommandLine::Line(cmd.to_owned())
                .argv()
                .map_err(|m| CliError::usage(format!("--agent {spec}: {m}")))?;
            let stem =
                Path::new(&argv[0]).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let name = unique(&mut names, &stem);
            Arc::new(CommandAgent::new(name, argv, Default::default(), None, cwd))
        } else if let Some(file) = spec.strip_prefix("patch:") {
            if file.is_empty() {
                return Err(CliError::usage(format!(
                    "--agent {spec}: give the diff file, e.g. patch:fix.diff"
                )));
            }
            let path = cwd.join(file);
            let stem =
                path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "patch".into());
            Arc::new(PatchAgent::named(unique(&mut names, &stem), path))
        } else if let Some(a) = config.agents.iter().find(|a| &a.name == spec) {
            let name = unique(&mut names, &a.name);
            match a.kind {
                AgentKind::Command => {
                    let argv = a
                        .command
                        .as_ref()
                        .map(CommandLine::argv)
                        .transpose()
                        .map_err(CliError::usage)?
                        .unwrap_or_default();
                    Arc::new(
                        CommandAgent::new(name, argv, a.env.clone(), a.timeout, cwd)
                            .endpoint(a.base_url.clone(), a.network),
                    )
                }
                AgentKind::Patch => Arc::new(PatchAgent::named(name, a.patch.clone().unwrap_or_default())),
                AgentKind::Claude
                | AgentKind::Codex
                | AgentKind::Gemini
                | AgentKind::Opencode
                | AgentKind::Qwen
                | AgentKind::Aider => {
                    let config = AgentConfig { name, ..a.clone() };
                    Arc::new(CliAgent::new(config).expect("a CLI kind"))
                }
            }
        } else if let Some(kind) = spec.split(':').next().and_then(AgentKind::parse).filter(|k| k.is_cli()) {
            let model = spec.split_once(':').map(|(_, m)| m.to_owned());
            if model.as_deref() == Some("") {
                return Err(CliError::usage(format!(
                    "--agent {spec}: give the model after the colon, e.g. {}:MODEL, or leave out the colon",
                    kind.as_str()
                )));
            }
            // Settings for this kind from an [[agent]] named after it (`claude` in baton.toml),
            // with the model from the command line.
            let name = unique(&mut names, spec);
            let mut config = match config.agents.iter().find(|a| a.name == kind.as_str() && a.kind == kind) {
                Some(template) => AgentConfig { name, ..template.clone() },
                None => AgentConfig::of_kind(name, kind),
            };
            if model.is_some() {
                config.model = model;
            }
            Arc::new(CliAgent::new(config).expect("a CLI kind"))
        } else {
            let known: Vec<&str> = config.agents.iter().map(|a| a.name.as_str()).collect();
            let hint = if known.is_empty() {
                String::new()
            } else {
                format!(" (defined in configuration: {})", known.join(", "))
            };
            let kinds: Vec<&str> = AgentKind::ALL.iter().filter(|k| k.is_cli()).map(|k| k.as_str()).collect();
            return Err(CliError::usage(format!(
                "`{spec}` is not an agent: use an agent CLI as KIND[:MODEL] ({}), command:PROGRAM, patch:FILE.diff, or the name of an [[agent]] in baton.toml{hint}",
                kinds.join(", ")
            )));
        };
        match agent.preflight() {
            Ok(()) => agents.push(agent),
            Err(e) => unusable.push(e),
        }
    }
    match unusable.len() {
        0 => Ok(agents),
        1 => Err(unusable.remove(0).into()),
        n => {
            let lines: Vec<String> = unusable.iter().map(|e| format!("  {e}")).collect();
            Err(CliError::usage(format!("{n} agents cannot run:\n{}", lines.join("\n"))))
        }
    }
}

fn unique(names: &mut std::collections::HashSet<String>, wanted: &str) -> String {
    let wanted = if wanted.is_empty() { "agent" } else { wanted };
    let mut name = wanted.to_owned();
    let mut n = 2;
    while !names.insert(name.clone()) {
        name = format!("{wanted}-{n}");
        n += 1;
    }
    name
}
