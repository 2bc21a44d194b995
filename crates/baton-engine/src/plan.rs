//! The plan: everything a run needs, resolved and checked before anything is created. The front
//! end hands a [`RunRequest`] to [`plan`]; [`crate::run`] takes the [`RunPlan`] as plain data and
//! resolves nothing more.

use std::sync::Arc;

use baton_agents::Agent;
use baton_config::{Config, WorkspaceMode};
use baton_core::{RunId, Task};
use baton_exec::Executor;
use baton_git::{Oid, Repo};
use baton_verify::{Probe, ProbeKind, ProbeRunner, Protected, RelatedTests, StageRunner, extract_probes};
use baton_workspace::{Local, WorkspaceKind, WorkspaceProvider};

use crate::EngineError;
use crate::events::{Clock, SystemClock};
use crate::hidden::{self, HiddenTests};

/// What the front end asks for: the user's words, before anything is checked.
pub struct RunRequest {
    pub repo: Repo,
    pub config: Config,
    pub task: Task,
    /// The revision candidates start from, as the user wrote it.
    pub base_rev: String,
    /// Commit uncommitted changes into a snapshot and start from it.
    pub include_dirty: bool,
    pub agents: Vec<Arc<dyn Agent>>,
    /// Strategy names, each defined in `config.strategies`.
    pub strategies: Vec<String>,
    pub repeats: usize,
    /// Verifications at once (CPU-bound): 0 means one per core.
    pub jobs: usize,
    /// Agents at once (they mostly wait on a model): 0 means all candidates at once.
    pub agent_jobs: usize,
    /// Where `merge` lands; defaults to `merge.target`, then the checked-out branch.
    pub target_branch: Option<String>,
    /// Probe commands from the command line, on top of `[[verify.probe]]`.
    pub probes: Vec<String>,
    /// Acceptance tests kept from the agents: a directory, a patch file, or a revision whose
    /// changes against the base hold them. Overrides `verify.hidden_tests`.
    pub hidden_tests: Option<String>,
    /// Where times come from ([`SystemClock`] unless a test pins it).
    pub clock: Arc<dyn Clock>,
    /// The run's id; `None`: one from the clock and the system's randomness.
    pub run_id: Option<RunId>,
    /// Where the run's processes run ([`baton_exec::Local`]: this machine).
    pub executor: Arc<dyn Executor>,
    /// The program that holds an agent to its endpoint inside its sandbox, run as
    /// `PROGRAM __forward ...` (the baton binary; see [`baton_exec::proxy`]). Without it, an
    /// agent with `network = "endpoint"` is refused.
    pub forwarder: Option<std::path::PathBuf>,
}

impl RunRequest {
    /// A request with the defaults a front end starts from: one repeat, jobs from the
    /// configuration, the system clock.
    pub fn new(repo: Repo, config: Config, task: Task, agents: Vec<Arc<dyn Agent>>) -> RunRequest {
        RunRequest {
            repeats: config.run.repeats,
            jobs: config.run.jobs,
            agent_jobs: config.run.agent_jobs,
            repo,
            config,
            task,
            base_rev: "HEAD".into(),
            include_dirty: false,
            agents,
            strategies: Vec::new(),
            target_branch: None,
            probes: Vec::new(),
            hidden_tests: None,
            clock: Arc::new(SystemClock),
            run_id: None,
            executor: Arc::new(baton_exec::Local),
            forwarder: None,
        }
    }
}

/// A checked run, ready to start: nothing in it needs resolving again.
pub struct RunPlan {
    pub(crate) repo: Repo,
    pub(crate) config: Config,
    pub(crate) task: Task,
    pub(crate) base_rev: String,
    pub(crate) head: Oid,
    /// The commit candidates start from (a snapshot of the dirty tree is made from `head` when
    /// the run starts, if `dirty` is not empty).
    pub(crate) base: Oid,
    pub(crate) dirty: Vec<String>,
    pub(crate) agents: Vec<Arc<dyn Agent>>,
    /// (name, prompt) of each strategy.
    pub(crate) strategies: Vec<(String, String)>,
    pub(crate) repeats: usize,
    pub(crate) jobs: usize,
    pub(crate) agent_jobs: usize,
    pub(crate) target_branch: Option<String>,
    pub(crate) target_commit: Option<Oid>,
    pub(crate) runner: StageRunner,
    pub(crate) protected: Protected,
    pub(crate) related: RelatedTests,
    pub(crate) hidden: Option<HiddenTests>,
    pub(crate) probes: ProbeRunner,
    /// (file, text) of the repository's guidance files (AGENTS.md, CLAUDE.md) at the base.
    pub(crate) guidance: Vec<(String, String)>,
    /// `verify.protected` globs that come from the defaults (they cover many languages, so
    /// some always match nothing: only the user's own are worth a warning).
    pub(crate) default_protected: Vec<String>,
    /// Things the user should know before the run starts (what it verifies with).
    pub(crate) notes: Vec<String>,
    pub(crate) warnings: Vec<String>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) run_id: Option<RunId>,
    /// What each process may touch (see [`crate::contain`]).
    pub(crate) containment: crate::contain::Containment,
    /// Where candidates' workspaces come from.
    pub(crate) workspaces: Arc<dyn WorkspaceProvider>,
    /// Where the run's processes run.
    pub(crate) executor: Arc<dyn Executor>,
    /// Secrets kept out of everything the run writes (see [`crate::redact`]).
    pub(crate) redactor: Arc<baton_exec::Redactor>,
    /// The directory under which this repository's runs keep their workspaces.
    pub(crate) workspace_root: std::path::PathBuf,
    /// See [`RunRequest::forwarder`].
    pub(crate) forwarder: Option<std::path::PathBuf>,
}

impl RunPlan {
    /// How many candidates the run will have.
    pub fn candidates(&self) -> usize {
        self.agents.len() * self.strategies.len() * self.repeats
    }
}

/// The most candidates one run may have, however they are asked for (agents x strategies x
/// repeats, from the command line or any configuration file): each is a workspace and a process
/// tree on this machine, verified against every other one.
pub const MAX_CANDIDATES: usize = 256;

/// Checks everything a run needs and resolves it, changing nothing: bad input ends here with an
/// error that names it.
pub fn plan(req: RunRequest) -> Result<RunPlan, EngineError> {
    let repo = req.repo.clone();
    let git = repo.git();
    let head = repo.head()?;
    let base = git.resolve(&req.base_rev)?;
    let dirty: Vec<String> = if base == head {
        git.dirty_paths()?.into_iter().filter(|p| p != baton_config::REPO_FILE).collect()
    } else {
        Vec::new()
    };
    if !dirty.is_empty() && !req.include_dirty {
        return Err(EngineError::DirtyTree { paths: dirty });
    }
    if req.agents.is_empty() {
        return Err(EngineError::NoAgents);
    }
    preflight(&req.agents)?;
    let mut config = req.config;
    let (mut notes, mut warnings) = (Vec::new(), Vec::new());
    if config.verify.stages.is_empty() {
        match detect_stages(&repo, &base, &mut config) {
            Some(note) => notes.push(note),
            None => warnings.push(
                "no [[verify.stage]] in baton.toml and no test command recognized: nothing but the task's examples can tell candidates apart (see `baton init`)".into(),
            ),
        }
    }
    let (executor, redactor, limits) = executor_for(&config, req.executor.clone(), &mut warnings)?;
    let containment = crate::contain::Containment::new(&repo, &config.run, executor.confines())?;
    crate::endpoint::check(&req.agents, executor.as_ref(), config.run.sandbox, req.forwarder.as_deref())?;
    if containment.enforced {
        notes.push(format!("agents, tests and examples run {}", executor.describe()));
        notes.extend(req.agents.iter().filter_map(|a| a.when_confined()));
    }
    if !limits.is_empty() {
        notes.push(format!("limits: {}", baton_exec::describe_limits(&limits)));
    }
    let runner = StageRunner::new(&config.verify, &config.run)?
        .watching_repo(&repo.root)
        .with_executor(executor.clone());
    let protected = Protected::new(&config.verify.protected)?;
    let related = RelatedTests::new(&config.verify.related)?;
    let strategies = strategies(&req.strategies, &config, req.agents.len(), req.repeats)?;
    let hidden_spec = req.hidden_tests.clone().filter(|h| !h.is_empty()).or_else(|| {
        let h = &config.verify.hidden_tests;
        (!h.is_empty()).then(|| h.clone())
    });
    let hidden = match hidden_spec {
        None => None,
        Some(h) => Some(hidden::resolve(&repo, &base, &h, &protected)?),
    };
    let probes = probe_runner(&req.task, &req.probes, &config, &repo, &base, executor.clone())?;
    let target_branch = match &req.target_branch {
        Some(t) => Some(t.clone()),
        None if !config.merge.target.is_empty() => Some(config.merge.target.clone()),
        None => git.current_branch()?,
    };
    let target_commit = match &target_branch {
        Some(t) => git.try_resolve(&format!("refs/heads/{t}"))?,
        None => None,
    };
    let guidance = config
        .run
        .guidance_files
        .iter()
        .filter_map(|f| {
            git.file_at(&base, f)
                .ok()
                .flatten()
                .map(|b| (f.clone(), String::from_utf8_lossy(&b).into_owned()))
        })
        .collect();
    let default_protected =
        baton_config::load(&Default::default()).map(|(c, _)| c.verify.protected).unwrap_or_default();
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let workspace_root = crate::recover::repo_workspaces(&config.run.workspace_root, &repo);
    let workspaces =
        workspace_provider(config.run.workspace, containment.enforced, &workspace_root, &mut warnings);
    Ok(RunPlan {
        jobs: if req.jobs == 0 { cores } else { req.jobs },
        agent_jobs: req.agent_jobs,
        repeats: req.repeats.max(1),
        repo,
        task: req.task,
        base_rev: req.base_rev,
        head,
        base,
        dirty,
        agents: req.agents,
        strategies,
        target_branch,
        target_commit,
        runner,
        protected,
        related,
        hidden,
        probes,
        guidance,
        default_protected,
        notes,
        warnings,
        clock: req.clock,
        run_id: req.run_id,
        workspaces,
        workspace_root,
        executor,
        redactor,
        containment,
        forwarder: req.forwarder,
        config,
    })
}

/// Every agent's preflight at once: the CLIs' version checks take a second or more each, and
/// one after another they kept a run of six CLIs from starting for ten.
fn preflight(agents: &[Arc<dyn Agent>]) -> Result<(), EngineError> {
    let results: Vec<Result<(), baton_agents::AgentError>> = std::thread::scope(|s| {
        let handles: Vec<_> = agents.iter().map(|a| s.spawn(move || a.preflight())).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    results.into_iter().collect::<Result<(), _>>().map_err(EngineError::from)
}

/// Without configured stages, the ones a repository's files suggest (`Cargo.toml`, `go.mod`,
/// `package.json`, a Python project, a Makefile's `test` target), put into `config`; a note
/// saying what will run, or `None` when nothing was recognized.
pub fn detect_stages(repo: &Repo, rev: &Oid, config: &mut Config) -> Option<String> {
    let git = repo.git();
    let detected = baton_config::detect_stages(|f| {
        git.file_at(rev, f).ok().flatten().map(|b| String::from_utf8_lossy(&b).into_owned())
    });
    if detected.is_empty() {
        return None;
    }
    let runs: Vec<String> =
        detected.iter().map(|d| format!("`{}` (from {})", d.stage.run, d.evidence)).collect();
    config.verify.stages = detected.into_iter().map(|d| d.stage).collect();
    Some(format!("no [[verify.stage]] in baton.toml; verifying with {}", runs.join(" and ")))
}

/// The modules of the project that define the names the task's Python examples use, so that an
/// example runs as it did for its author, who had imported them (see [`ProbeRunner::imports`]).
fn python_imports(
    repo: &Repo,
    base: &Oid,
    probes: &[Probe],
    packages: &[String],
) -> Result<Vec<(String, Vec<String>)>, EngineError> {
    let names = baton_verify::used_names(probes);
    if packages.is_empty() || names.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = names.into_iter().take(50).collect();
    let definitions = repo.git().grep(base, &baton_verify::definition_pattern(&names), &["*.py"])?;
    Ok(baton_verify::definition_modules(&names, &definitions, packages))
}

/// The executor processes start through, the redactor of their logs, and their limits.
type ContainedExecutor = (Arc<dyn baton_exec::Executor>, Arc<baton_exec::Redactor>, baton_exec::Limits);

/// The executor a run's processes start through, from the inside out: the sandbox (or none),
/// the limits, and outermost the redactor of their logs. Warnings say where it is unconfined.
fn executor_for(
    config: &Config,
    requested: Arc<dyn baton_exec::Executor>,
    warnings: &mut Vec<String>,
) -> Result<ContainedExecutor, EngineError> {
    let (executor, unconfined) = crate::contain::executor(config.run.sandbox, requested)?;
    let limits = baton_exec::Limits {
        processes: config.run.limits.processes,
        memory: config.run.limits.memory.0,
        file_size: config.run.limits.file_size.0,
        open_files: config.run.limits.open_files,
    };
    let executor: Arc<dyn baton_exec::Executor> =
        if limits.is_empty() { executor } else { Arc::new(baton_exec::Limited { limits, inner: executor }) };
    // Outermost: whoever builds a process's spec, its log is redacted.
    let redactor = crate::redact::redactor(config);
    let executor: Arc<dyn baton_exec::Executor> =
        Arc::new(baton_exec::Redacting { redactor: redactor.clone(), inner: executor });
    warnings.extend(unconfined);
    Ok((executor, redactor, limits))
}

/// The strategies asked for, each with its prompt (none: the default), checked against the
/// configuration and against the most candidates a run may have.
fn strategies(
    names: &[String],
    config: &Config,
    agents: usize,
    repeats: usize,
) -> Result<Vec<(String, String)>, EngineError> {
    let mut strategies = Vec::new();
    for name in names {
        let Some(s) = config.strategies.get(name) else {
            return Err(EngineError::UnknownStrategy {
                name: name.clone(),
                known: config.strategies.keys().cloned().collect(),
            });
        };
        strategies.push((name.clone(), s.prompt.clone()));
    }
    if strategies.is_empty() {
        strategies.push(("default".into(), String::new()));
    }
    let candidates = agents * strategies.len() * repeats.max(1);
    if candidates > MAX_CANDIDATES {
        return Err(EngineError::TooManyCandidates {
            agents,
            strategies: strategies.len(),
            repeats: repeats.max(1),
        });
    }
    Ok(strategies)
}

/// The probes of a run: the configured ones, `--probe`s, and the task's examples, with the
/// project's Python packages and the imports examples need.
fn probe_runner(
    task: &Task,
    extra: &[String],
    config: &Config,
    repo: &Repo,
    base: &Oid,
    executor: Arc<dyn baton_exec::Executor>,
) -> Result<ProbeRunner, EngineError> {
    let git = repo.git();
    let mut probes: Vec<Probe> = config
        .verify
        .probes
        .iter()
        .map(|p| (p.name.clone(), p.run.clone()))
        .chain(extra.iter().enumerate().map(|(i, run)| (format!("--probe {}", i + 1), run.clone())))
        .map(|(name, run)| Probe { name, kind: ProbeKind::Command { run }, shown: vec![None] })
        .collect();
    if config.verify.task_probes {
        probes.extend(extract_probes(&task.body));
    }
    let packages = if probes.iter().any(|p| !matches!(p.kind, ProbeKind::Command { .. })) {
        baton_verify::python_packages(&git.tree_paths(base)?)
    } else {
        Vec::new()
    };
    Ok(ProbeRunner {
        imports: python_imports(repo, base, &probes, &packages)?,
        packages,
        probes,
        python: config.verify.probe_python.clone(),
        timeout: config.verify.probe_timeout,
        grace: config.run.grace,
        executor,
    })
}

/// Where candidates' workspaces come from: the kind configured (`auto`: the best this machine
/// has), but never a worktree in a sandbox, whose git directory would lie in the read-only
/// repository.
fn workspace_provider(
    mode: WorkspaceMode,
    confined: bool,
    workspace_root: &std::path::Path,
    warnings: &mut Vec<String>,
) -> Arc<dyn WorkspaceProvider> {
    Arc::new(Local(match mode {
        WorkspaceMode::Clone => WorkspaceKind::Clone,
        // A worktree's git directory lies inside the user's, which a sandbox keeps read-only.
        WorkspaceMode::Worktree if confined => {
            warnings.push(
                "run.workspace = \"worktree\" keeps each candidate's git directory inside your repository, \
                 which the sandbox keeps read-only: using clones (set run.sandbox = \"off\" to use worktrees, unconfined)"
                    .into(),
            );
            WorkspaceKind::Clone
        }
        WorkspaceMode::Worktree => WorkspaceKind::Worktree,
        WorkspaceMode::Overlay => WorkspaceKind::Overlay,
        WorkspaceMode::Auto => baton_workspace::best_local(workspace_root),
    }))
}
