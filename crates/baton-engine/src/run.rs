use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use baton_agents::{Agent, AgentContext, Plan, apply_patch, compose_prompt};
use baton_config::{Config, WorkspaceMode};
use baton_core::{
    AgentOutcome, CandidateId, Phase, PlannedCandidate, ProbeOutcome, RunEvent, RunId, RunStatus, Scoreboard,
    StageResult, Subject, Task,
};
use baton_exec::Cancel;
use baton_git::{FileChange, Oid, Repo, Workspace, WorkspaceKind};
use baton_rank::CandidateEvidence;
use baton_store::Store;
use baton_verify::{
    BaseResults, Probe, ProbeKind, ProbeRunner, Protected, RelatedTests, Split, StageRunner, SubjectContext,
    extract_probes, looks_like_test,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::{EngineError, base_ref, candidate_ref, default_workspace_root, run_workspace_dir};

/// Everything a run needs, resolved by the front end.
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
    pub jobs: usize,
    /// Where `merge` lands; defaults to `merge.target`, then the checked-out branch.
    pub target_branch: Option<String>,
    /// Probe commands from the command line, on top of `[[verify.probe]]`.
    pub probes: Vec<String>,
    /// Acceptance tests kept from the agents: a directory laid out like the repository, or a
    /// revision whose changes against the base are the tests. Overrides `verify.hidden_tests`.
    pub hidden_tests: Option<String>,
}

/// Where hidden tests come from, checked before the run starts.
#[derive(Debug, Clone)]
enum HiddenSource {
    Dir(PathBuf),
    Rev(Oid),
    Patch(PathBuf),
}

/// The hidden tests of a run: where from, and which of the files there are taken (tests only:
/// a revision or a patch that also changes the code under test would hand every candidate the
/// fix).
#[derive(Debug, Clone)]
struct HiddenTests {
    source: HiddenSource,
    files: Vec<String>,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub run: RunId,
    pub status: RunStatus,
    pub scoreboard: Option<Scoreboard>,
    /// Candidate verifications actually run (after identical trees were merged), and the
    /// number of candidates.
    pub verifications: usize,
    pub candidates: usize,
}

/// The event sink every part of the run shares.
#[derive(Clone)]
struct Emitter {
    tx: mpsc::UnboundedSender<RunEvent>,
}

impl Emitter {
    fn emit(&self, event: RunEvent) {
        // The recorder outlives every sender; a send can only fail after it stopped.
        let _ = self.tx.send(event);
    }
}

/// One planned candidate and what happened to it.
struct Slot {
    id: CandidateId,
    agent: Arc<dyn Agent>,
    strategy: String,
    strategy_prompt: String,
    workspace: Option<Workspace>,
    /// `None` while the agent has not run (and forever, if the run was cancelled first).
    outcome: Option<AgentOutcome>,
    commit: Option<Oid>,
    changes: Vec<FileChange>,
}

/// Runs agents on a task, verifies and ranks what they produce. Every check that can fail on
/// bad input happens before anything is created; after that, failures end the run as failed,
/// with the candidates' work on their refs.
pub async fn run(
    req: RunRequest,
    store: Store,
    cancel: Cancel,
    reporter: Box<dyn FnMut(&RunEvent) + Send>,
) -> Result<RunOutcome, EngineError> {
    let started = Instant::now();
    let repo = req.repo.clone();
    let git = repo.git();

    // ---- Checks. Nothing may change before they all pass.
    let head = repo.head()?;
    let mut base = git.resolve(&req.base_rev)?;
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
    for agent in &req.agents {
        agent.preflight()?;
    }
    let runner = StageRunner::new(&req.config.verify, &req.config.run)
        .map_err(EngineError::Config)?
        .watching_repo(&repo.root);
    let protected = Protected::new(&req.config.verify.protected).map_err(EngineError::Config)?;
    let related = RelatedTests::new(&req.config.verify.related).map_err(EngineError::Config)?;
    let mut strategies = Vec::new();
    for name in &req.strategies {
        let Some(s) = req.config.strategies.get(name) else {
            let known: Vec<&str> = req.config.strategies.keys().map(String::as_str).collect();
            return Err(EngineError::Config(format!(
                "unknown strategy `{name}` (known: {})",
                known.join(", ")
            )));
        };
        strategies.push((name.clone(), s.prompt.clone()));
    }
    if strategies.is_empty() {
        strategies.push(("default".into(), String::new()));
    }
    let hidden_spec = req.hidden_tests.as_deref().filter(|h| !h.is_empty()).or_else(|| {
        let h = &req.config.verify.hidden_tests;
        (!h.is_empty()).then_some(h.as_str())
    });
    let hidden = match hidden_spec {
        None => None,
        Some(h) => Some(resolve_hidden_tests(&repo, &base, h, &protected)?),
    };
    let mut probes: Vec<Probe> = req
        .config
        .verify
        .probes
        .iter()
        .map(|p| (p.name.clone(), p.run.clone()))
        .chain(req.probes.iter().enumerate().map(|(i, run)| (format!("--probe {}", i + 1), run.clone())))
        .map(|(name, run)| Probe { name, kind: ProbeKind::Command { run }, shown: vec![None] })
        .collect();
    if req.config.verify.task_probes {
        probes.extend(extract_probes(&req.task.body));
    }
    let packages = if probes.iter().any(|p| !matches!(p.kind, ProbeKind::Command { .. })) {
        baton_verify::python_packages(&git.tree_paths(&base).map_err(EngineError::from_git)?)
    } else {
        Vec::new()
    };
    let target_branch = match &req.target_branch {
        Some(t) => Some(t.clone()),
        None if !req.config.merge.target.is_empty() => Some(req.config.merge.target.clone()),
        None => git.current_branch()?,
    };
    let target_commit = match &target_branch {
        Some(t) => git.try_resolve(&format!("refs/heads/{t}"))?,
        None => None,
    };
    let guidance: Vec<(String, String)> = req
        .config
        .run
        .guidance_files
        .iter()
        .filter_map(|f| git.run(&["show", &format!("{base}:{f}")]).ok().map(|text| (f.clone(), text)))
        .collect();

    // ---- From here on, the run exists.
    let run_id = new_run_id();
    let artifacts = store.artifacts_dir(&run_id);
    std::fs::create_dir_all(&artifacts).map_err(EngineError::io(&artifacts))?;
    if !dirty.is_empty() {
        let message = format!("baton: snapshot of uncommitted changes for run {run_id}");
        base = git.snapshot_worktree(&head, &message, &artifacts).map_err(EngineError::from_git)?;
    }
    git.update_ref(&base_ref(&run_id), &base, None).map_err(EngineError::from_git)?;

    let ws_root_cfg = &req.config.run.workspace_root;
    let ws_base_dir =
        if ws_root_cfg.as_os_str().is_empty() { default_workspace_root() } else { ws_root_cfg.clone() };
    let ws_dir = run_workspace_dir(&ws_base_dir, &repo.root, &run_id);

    let mut slots = Vec::new();
    for agent in &req.agents {
        for (strategy, prompt) in &strategies {
            for _ in 0..req.repeats.max(1) {
                slots.push(Slot {
                    id: CandidateId::nth(slots.len() + 1),
                    agent: agent.clone(),
                    strategy: strategy.clone(),
                    strategy_prompt: prompt.clone(),
                    workspace: None,
                    outcome: None,
                    commit: None,
                    changes: Vec::new(),
                });
            }
        }
    }

    let (tx, rx) = mpsc::unbounded_channel();
    let emitter = Emitter { tx };
    let store_error = Arc::new(Mutex::new(None::<String>));
    let recorder = tokio::spawn(record(run_id.clone(), store, rx, reporter, store_error.clone()));
    let watcher = tokio::spawn(watch_cancel(cancel.clone(), emitter.clone()));

    emitter.emit(RunEvent::RunStarted {
        run: run_id.clone(),
        base: base.to_string(),
        base_rev: req.base_rev.clone(),
        target_branch: target_branch.clone(),
        target_commit: target_commit.as_ref().map(ToString::to_string),
        repo_root: repo.root.to_string_lossy().into_owned(),
        workspace_root: ws_dir.to_string_lossy().into_owned(),
        task: req.task.clone(),
        candidates: slots
            .iter()
            .map(|s| PlannedCandidate {
                id: s.id.clone(),
                agent: s.agent.name().to_owned(),
                strategy: s.strategy.clone(),
            })
            .collect(),
    });
    if let (Some(h), Some(spec)) = (&hidden, hidden_spec) {
        emitter.emit(RunEvent::HiddenTests {
            source: spec.to_owned(),
            files: h.0.files.clone(),
            left_out: h.1.clone(),
        });
    }
    if !dirty.is_empty() {
        emitter.emit(RunEvent::Warning {
            message: format!(
                "running on a snapshot of {} uncommitted {} (commit {})",
                dirty.len(),
                baton_core::plural(dirty.len(), "change", "changes"),
                base.short()
            ),
        });
    }

    let ctx = RunContext {
        run: run_id.clone(),
        repo: repo.clone(),
        base: base.clone(),
        artifacts: artifacts.clone(),
        config: req.config.clone(),
        emitter: emitter.clone(),
        cancel: cancel.clone(),
        jobs: req.jobs.max(1),
        hidden: hidden.map(|(h, _)| h),
        probes: ProbeRunner {
            packages: packages.clone(),
            imports: python_imports(&git, &base, &probes, &packages)?,
            probes: probes.clone(),
            python: req.config.verify.probe_python.clone(),
            timeout: req.config.verify.probe_timeout,
            grace: req.config.run.grace,
        },
    };
    let result = ctx.phases(&mut slots, &ws_dir, &runner, &protected, &related, &req.task, &guidance).await;

    // ---- Cleanup: work is on refs by now; workspaces go unless kept.
    let cancelled = cancel.is_cancelled();
    let failed = result.is_err();
    if cancelled || failed || !req.config.run.keep_workspaces {
        let (dir, repo) = (ws_dir.clone(), repo.clone());
        let _ = tokio::task::spawn_blocking(move || remove_run_workspaces(&repo, &dir)).await;
    }
    let (scoreboard, verifications) = match &result {
        Ok((board, n)) => (board.clone(), *n),
        Err(_) => (None, 0),
    };
    let status = if failed {
        RunStatus::Failed
    } else if cancelled {
        RunStatus::Cancelled
    } else {
        RunStatus::Finished
    };
    if let Err(e) = &result {
        emitter.emit(RunEvent::Warning { message: format!("the run failed: {e}") });
    }
    emitter.emit(RunEvent::RunFinished {
        run: run_id.clone(),
        status,
        winner: scoreboard.as_ref().and_then(|b| b.decision.winner().cloned()),
        millis: started.elapsed().as_millis() as u64,
    });
    watcher.abort();
    drop(ctx);
    drop(emitter);
    let _store = recorder.await.map_err(|e| EngineError::Failed(format!("the recorder stopped: {e}")))?;
    baton_exec::reap_strays();
    result?;
    if let Some(e) = store_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(EngineError::Failed(format!("could not record the run: {e}")));
    }
    Ok(RunOutcome { run: run_id, status, scoreboard, verifications, candidates: slots.len() })
}

/// What every phase shares.
struct RunContext {
    run: RunId,
    repo: Repo,
    base: Oid,
    artifacts: PathBuf,
    config: Config,
    emitter: Emitter,
    cancel: Cancel,
    jobs: usize,
    hidden: Option<HiddenTests>,
    probes: ProbeRunner,
}

/// Test files one or more candidates wrote: (path, blob) pairs, a commit holding them, and the
/// candidates that wrote exactly these.
type WrittenTests = (Vec<(String, String)>, Oid, Vec<CandidateId>);

/// A subject's stage results and probe outcomes.
type Verification = (Vec<StageResult>, Vec<ProbeOutcome>);

/// One subject's verification: where, at which commit, with which placeholders.
struct VerifyJob {
    subject: Subject,
    ws: Workspace,
    /// The commit to check out first; `None` when the workspace already holds it.
    commit: Option<Oid>,
    changed: Vec<String>,
    related: Vec<String>,
    /// How the related tests are split (see `Split`).
    split: Split,
}

/// A distinct tree to verify and the candidates that share it.
struct VerifyTarget {
    primary: usize,
    commit: Oid,
    tree: Oid,
    /// The workspace already holds exactly this tree (nothing protected was restored).
    in_place: bool,
    changed: Vec<String>,
    related: Vec<String>,
    split: Split,
}

impl RunContext {
    #[expect(clippy::too_many_arguments, reason = "the phases share these borrowed parts of the request")]
    async fn phases(
        &self,
        slots: &mut [Slot],
        ws_dir: &Path,
        runner: &StageRunner,
        protected: &Protected,
        related: &RelatedTests,
        task: &Task,
        guidance: &[(String, String)],
    ) -> Result<(Option<Scoreboard>, usize), EngineError> {
        let verifies = !runner.is_empty() || !self.probes.probes.is_empty();
        let base_ws = self.provision(slots, ws_dir, verifies).await?;
        if self.cancel.is_cancelled() {
            return Ok((None, 0));
        }
        self.run_agents(slots, task, guidance).await?;
        if self.cancel.is_cancelled() {
            return Ok((None, 0));
        }
        let probes = self.with_candidate_scripts(slots, protected)?;

        // Which trees to verify: each usable candidate's tree with protected paths restored,
        // then the hidden tests laid over it. The hidden tests become objects in the repository
        // only now, after every agent has finished.
        let git = self.repo.git();
        // `hidden`: the commit the tests come from, the base with them laid over it, and their
        // paths.
        let hidden = match &self.hidden {
            None => None,
            Some(h) => {
                let source = match &h.source {
                    HiddenSource::Rev(rev) => rev.clone(),
                    HiddenSource::Dir(dir) => git
                        .commit_directory_over(&self.base, dir, "baton: hidden tests", &self.artifacts)
                        .map_err(EngineError::from_git)?,
                    HiddenSource::Patch(patch) => git
                        .commit_patch_over(&self.base, patch, "baton: hidden tests", &self.artifacts)
                        .map_err(EngineError::from_git)?,
                };
                let tree = git
                    .tree_with_paths_from(&self.base, &source, &h.files, &self.artifacts)
                    .map_err(EngineError::from_git)?;
                let with_tests = git
                    .commit_tree(&tree, &[&self.base], "baton: the base with the hidden tests", None)
                    .map_err(EngineError::from_git)?;
                Some((source, with_tests, h.files.clone()))
            }
        };
        let mut evidence_trees: HashMap<usize, (Oid, Vec<String>)> = HashMap::new();
        let mut targets: Vec<VerifyTarget> = Vec::new();
        let mut shared: HashMap<usize, usize> = HashMap::new();
        // A candidate that only added scripts at the top changed nothing the tests exercise, and
        // the ranking puts it out where another candidate changed the project: its scripts run
        // on the others, its own tree is not verified.
        // (The same test as the ranking's gate: more files changed outside protected paths than
        // scripts added.)
        let scripts_added: Vec<usize> = slots
            .iter()
            .map(|s| s.changes.iter().filter(|c| is_top_level_script(c, protected)).count())
            .collect();
        let changes_project = |i: usize| {
            slots[i].changes.iter().filter(|c| !protected.is_protected(&c.path)).count() > scripts_added[i]
        };
        let someone_changes_project = (0..slots.len()).any(|i| {
            slots[i].commit.is_some()
                && matches!(slots[i].outcome, Some(AgentOutcome::Completed))
                && changes_project(i)
        });
        for (i, slot) in slots.iter().enumerate() {
            let (Some(commit), Some(AgentOutcome::Completed)) = (&slot.commit, &slot.outcome) else {
                continue;
            };
            if someone_changes_project && !changes_project(i) {
                continue;
            }
            let protected_changed: Vec<String> = slot
                .changes
                .iter()
                .filter(|c| protected.is_protected(&c.path))
                .map(|c| c.path.clone())
                .collect();
            if protected_changed.len() == slot.changes.len() {
                continue;
            }
            let tree = git
                .tree_with_paths_from(commit, &self.base, &protected_changed, &self.artifacts)
                .map_err(EngineError::from_git)?;
            evidence_trees.insert(i, (tree.clone(), protected_changed));
            let tree = match &hidden {
                Some((h, _, paths)) => git
                    .tree_with_paths_from(&tree, h, paths, &self.artifacts)
                    .map_err(EngineError::from_git)?,
                None => tree,
            };
            match targets.iter().find(|t| t.tree == tree) {
                Some(t) => {
                    shared.insert(i, t.primary);
                    self.emitter.emit(RunEvent::VerifyShared {
                        candidate: slot.id.clone(),
                        same_as: slots[t.primary].id.clone(),
                    });
                }
                None => {
                    let vcommit = git
                        .commit_tree(
                            &tree,
                            &[commit],
                            &format!("baton: verification tree of {}", slot.id),
                            None,
                        )
                        .map_err(EngineError::from_git)?;
                    let in_place = git.tree_of(commit).map_err(EngineError::from_git)? == tree;
                    targets.push(VerifyTarget {
                        primary: i,
                        commit: vcommit,
                        tree,
                        in_place,
                        changed: Vec::new(),
                        related: Vec::new(),
                        split: Split::None,
                    });
                }
            }
        }

        let mut results: HashMap<Subject, Verification> = HashMap::new();
        let verifications = targets.len();
        if verifies && !targets.is_empty() {
            let base_commit = hidden.as_ref().map(|(_, b, _)| b.clone()).unwrap_or_else(|| self.base.clone());
            let base_paths = git.tree_paths(&base_commit).map_err(EngineError::from_git)?;
            let base_set: BTreeSet<&str> = base_paths.iter().map(String::as_str).collect();
            let mut base_changed = BTreeSet::new();
            let mut base_related = BTreeSet::new();
            let mut own_related = Vec::with_capacity(targets.len());
            let mut target_paths = Vec::with_capacity(targets.len());
            for t in &mut targets {
                let changed: Vec<String> = slots[t.primary].changes.iter().map(|c| c.path.clone()).collect();
                let paths = git.tree_paths(&t.tree).map_err(EngineError::from_git)?;
                let path_set: BTreeSet<&str> = paths.iter().map(String::as_str).collect();
                t.changed = changed.iter().filter(|p| path_set.contains(p.as_str())).cloned().collect();
                base_changed.extend(changed.iter().filter(|p| base_set.contains(p.as_str())).cloned());
                let own: BTreeSet<String> = if runner.uses_related_tests() {
                    related.related(&changed, &base_paths, protected).into_iter().collect()
                } else {
                    BTreeSet::new()
                };
                base_related.extend(own.iter().cloned());
                own_related.push(own);
                target_paths.push(paths);
            }
            // Every subject runs the tests related to the union of all candidates' changes (and
            // the hidden tests, which relate to every candidate), so that results compare test
            // by test across all of them, within `verify.related_budget` (see `Split`).
            if let Some((_, _, paths)) = &hidden {
                base_related.extend(paths.iter().cloned());
                for own in &mut own_related {
                    own.extend(paths.iter().cloned());
                }
            }
            let union: Vec<String> = base_related.iter().cloned().collect();
            let parts = if base_ws.is_some() {
                baton_verify::related_parts(&union, &own_related)
            } else {
                Vec::new()
            };
            for ((t, paths), own) in targets.iter_mut().zip(&target_paths).zip(&own_related) {
                if parts.is_empty() {
                    t.related = baton_verify::present_in(&union, paths);
                    continue;
                }
                let present = |groups: Vec<(usize, &Vec<String>)>| -> Vec<(usize, Vec<String>)> {
                    groups
                        .into_iter()
                        .map(|(i, files)| (i, baton_verify::present_in(files, paths)))
                        .filter(|(_, files)| !files.is_empty())
                        .collect()
                };
                let (mine, others): (Vec<_>, Vec<_>) =
                    parts.iter().enumerate().partition(|(_, files)| files.iter().all(|f| own.contains(f)));
                let mine = present(mine);
                t.related = mine.iter().flat_map(|(_, files)| files.iter().cloned()).collect();
                t.split = Split::Candidate { own: mine, others: present(others) };
            }
            let unmatched = protected.unmatched(&base_paths);
            if unmatched.len() == self.config.verify.protected.len() && !unmatched.is_empty() {
                self.emitter.emit(RunEvent::Warning {
                    message: "no file of the base matches verify.protected: candidates' edits to tests are not being set aside".into(),
                });
            } else {
                // The defaults cover many languages, so some of them always match nothing; a
                // glob the user wrote that matches nothing is probably a mistake.
                let defaults = baton_config::load(&Default::default())
                    .map(|(c, _)| c.verify.protected)
                    .unwrap_or_default();
                for glob in unmatched.iter().filter(|g| !defaults.contains(g)) {
                    self.emitter.emit(RunEvent::Warning {
                        message: format!("verify.protected: `{glob}` matches no file of the base"),
                    });
                }
            }
            results = self
                .verify_all(
                    slots,
                    &targets,
                    runner,
                    &probes,
                    base_ws.as_ref().map(|ws| VerifyJob {
                        subject: Subject::Base,
                        ws: ws.clone(),
                        // A fresh checkout of the base, unless hidden tests are laid over it.
                        commit: hidden.as_ref().map(|(_, b, _)| b.clone()),
                        changed: base_changed.into_iter().collect(),
                        related: base_related.into_iter().collect(),
                        split: if parts.is_empty() { Split::None } else { Split::Base { parts } },
                    }),
                )
                .await?;
        }
        if self.cancel.is_cancelled() {
            return Ok((None, verifications));
        }
        let matrix = if self.config.verify.matrix && !runner.is_empty() && !targets.is_empty() {
            let base_job = base_ws.as_ref().map(|ws| {
                (ws.clone(), hidden.as_ref().map(|(_, b, _)| b.clone()).unwrap_or_else(|| self.base.clone()))
            });
            // Only the tests the candidates added count: names the base's own run did not have.
            let known: std::collections::HashSet<String> = results
                .get(&Subject::Base)
                .map(|(stages, _)| {
                    stages.iter().flat_map(|r| r.tests.iter().map(|t| t.name.clone())).collect()
                })
                .unwrap_or_default();
            self.run_matrix(slots, &targets, base_job, protected, runner, &known).await?
        } else {
            Vec::new()
        };
        if self.cancel.is_cancelled() {
            return Ok((None, verifications));
        }

        // Rank.
        let (base_results, base_probes) = results.get(&Subject::Base).cloned().unwrap_or_default();
        let mut evidence = Vec::with_capacity(slots.len());
        let base_tree = git.tree_of(&self.base).map_err(EngineError::from_git)?;
        // The base's files as a parser reads them, shared by every candidate that changed them.
        let mut base_sources: HashMap<String, Option<String>> = HashMap::new();
        for (i, slot) in slots.iter().enumerate() {
            let primary = shared.get(&i).copied().unwrap_or(i);
            let own = results.get(&Subject::Candidate(slots[primary].id.clone()));
            let (normalized, parsed, layout_only, tokens_changed, complexity, protected_edits) =
                match evidence_trees.get(&i) {
                    Some((tree, protected_changed)) => {
                        let diff = git.diff_patch(&base_tree, tree).map_err(EngineError::from_git)?;
                        let diff = String::from_utf8_lossy(&diff);
                        let canonical = canonical_sources(&git, &base_tree, tree, &mut base_sources)?;
                        (
                            baton_rank::normalize_patch(&diff),
                            (!canonical.is_empty())
                                .then(|| baton_rank::normalize_patch_with(&diff, &canonical)),
                            baton_rank::is_layout_only(&diff, &canonical),
                            baton_rank::edit_tokens(&diff),
                            baton_rank::edit_complexity(&diff),
                            protected_changed.clone(),
                        )
                    }
                    None => (
                        String::new(),
                        None,
                        false,
                        0,
                        (0, 0),
                        slot.changes
                            .iter()
                            .filter(|c| protected.is_protected(&c.path))
                            .map(|c| c.path.clone())
                            .collect(),
                    ),
                };
            let (tamper, expectation_edits) = match &slot.commit {
                Some(commit) => {
                    let diff =
                        git.diff_patch_whole_files(&self.base, commit).map_err(EngineError::from_git)?;
                    let diff = String::from_utf8_lossy(&diff);
                    (
                        baton_verify::tamper_flags(&diff, protected)
                            .into_iter()
                            .map(|f| f.to_string())
                            .collect(),
                        baton_verify::expectation_edits(&diff, protected),
                    )
                }
                None => (Vec::new(), Vec::new()),
            };
            evidence.push(CandidateEvidence {
                id: slot.id.clone(),
                agent: slot.agent.name().to_owned(),
                strategy: slot.strategy.clone(),
                outcome: slot.outcome.clone(),
                collected: slot.commit.is_some(),
                files_changed: slot.changes.len(),
                lines_changed: slot
                    .changes
                    .iter()
                    .map(|c| c.added.unwrap_or(1) + c.deleted.unwrap_or(0))
                    .sum(),
                tokens_changed,
                complexity,
                protected_edits,
                scripts_added: scripts_added[i],
                layout_only,
                tamper,
                expectation_edits,
                verified: own.is_some(),
                verified_as: own.is_some().then(|| slots[primary].id.clone()),
                stages: own.map(|(r, _)| baton_verify::compare(&base_results, r)).unwrap_or_default(),
                probes: own.map(|(_, p)| p.clone()).unwrap_or_default(),
                normalized_patch: normalized,
                parsed_patch: parsed,
            });
        }
        let probe_context = baton_rank::ProbeContext {
            names: probes.probes.iter().map(|p| p.name.clone()).collect(),
            shown: probes.probes.iter().map(|p| p.shown.clone()).collect(),
            authors: probes.probes.iter().map(script_authors).collect(),
            base: base_probes,
        };
        let verified: Vec<&[StageResult]> = results
            .iter()
            .filter(|(s, _)| !matches!(s, Subject::Base))
            .map(|(_, (stages, _))| stages.as_slice())
            .collect();
        let setup_problems = if results.contains_key(&Subject::Base) {
            baton_verify::setup_problems(&self.artifacts, &base_results, &verified)
        } else {
            Vec::new()
        };
        let board = baton_rank::rank(&self.run, &probe_context, &matrix, &evidence, &setup_problems);
        self.emitter.emit(RunEvent::Ranked { scoreboard: board.clone() });
        Ok((Some(board), verifications))
    }

    /// The cross-candidate test matrix: the test files each candidate wrote (set aside during
    /// verification, being protected) are laid over the base's and every distinct candidate's
    /// verification tree and run there, one distinct set of files at a time.
    async fn run_matrix(
        &self,
        slots: &[Slot],
        targets: &[VerifyTarget],
        base: Option<(Workspace, Oid)>,
        protected: &Protected,
        runner: &StageRunner,
        known: &std::collections::HashSet<String>,
    ) -> Result<Vec<baton_core::MatrixRow>, EngineError> {
        let git = self.repo.git();
        // Distinct sets of written test files: (path, blob) pairs, with their authors.
        let mut sets: Vec<WrittenTests> = Vec::new();
        for slot in slots {
            let (Some(commit), Some(AgentOutcome::Completed)) = (&slot.commit, &slot.outcome) else {
                continue;
            };
            let mut files = Vec::new();
            for c in &slot.changes {
                if c.kind == baton_git::ChangeKind::Deleted
                    || !protected.is_protected(&c.path)
                    || !looks_like_test(&c.path)
                {
                    continue;
                }
                let blob = git
                    .run(&["rev-parse", &format!("{commit}:{}", c.path)])
                    .map_err(EngineError::from_git)?;
                files.push((c.path.clone(), blob.trim().to_owned()));
            }
            if files.is_empty() {
                continue;
            }
            match sets.iter_mut().find(|(f, _, _)| *f == files) {
                Some((_, _, authors)) => authors.push(slot.id.clone()),
                None => sets.push((files, commit.clone(), vec![slot.id.clone()])),
            }
        }
        sets.truncate(self.config.verify.matrix_limit);
        if sets.is_empty() {
            return Ok(Vec::new());
        }
        self.emitter
            .emit(RunEvent::PhaseStarted { phase: Phase::Verify, total: sets.len() * (targets.len() + 1) });

        // Per subject (in parallel across subjects), each set in turn in its workspace.
        let mut subjects: Vec<(Subject, Workspace, Oid)> = Vec::new();
        if let Some((ws, commit)) = base {
            subjects.push((Subject::Base, ws, commit));
        }
        for t in targets {
            if let Some(ws) = &slots[t.primary].workspace {
                subjects.push((
                    Subject::Candidate(slots[t.primary].id.clone()),
                    ws.clone(),
                    t.commit.clone(),
                ));
            }
        }
        let limit = Arc::new(Semaphore::new(self.jobs));
        let sets_ref = &sets;
        let futures = subjects.into_iter().map(|(subject, ws, own_commit)| {
            let (limit, emitter, cancel, git) =
                (limit.clone(), self.emitter.clone(), self.cancel.clone(), git.clone());
            let artifacts = self.artifacts.clone();
            async move {
                let _permit = limit.acquire_owned().await;
                let mut cells: Vec<Vec<baton_core::TestCase>> = Vec::new();
                for (k, (files, author, _)) in sets_ref.iter().enumerate() {
                    if cancel.is_cancelled() {
                        cells.push(Vec::new());
                        continue;
                    }
                    let paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
                    let prepared = git
                        .tree_with_paths_from(&own_commit, author, &paths, &artifacts)
                        .and_then(|tree| git.commit_tree(&tree, &[&own_commit], "baton: test matrix", None));
                    let ws2 = ws.clone();
                    let checked_out = match prepared {
                        Ok(commit) => {
                            tokio::task::spawn_blocking(move || ws2.checkout(&commit)).await.unwrap_or_else(
                                |e| Err(baton_git::GitError::Spawn(std::io::Error::other(e.to_string()))),
                            )
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(e) = checked_out {
                        emitter.emit(RunEvent::Warning {
                            message: format!("test matrix: cannot prepare {subject}: {e}"),
                        });
                        cells.push(Vec::new());
                        continue;
                    }
                    let ctx = SubjectContext {
                        subject: subject.clone(),
                        workspace: ws.tree.clone(),
                        artifacts: artifacts.join("matrix").join((k + 1).to_string()),
                        changed_files: paths.clone(),
                        related_tests: paths,
                        base: None,
                        publish: None,
                        split: Split::None,
                    };
                    let emit_tx = emitter.tx.clone();
                    let emit = move |e: RunEvent| {
                        let _ = emit_tx.send(e);
                    };
                    let results = runner.run_tests(&ctx, cancel.clone(), &emit).await;
                    let flaky: Vec<&String> = results.iter().flat_map(|r| r.flaky.iter()).collect();
                    cells.push(
                        results
                            .iter()
                            .flat_map(|r| r.tests.iter())
                            .filter(|t| !flaky.contains(&&t.name) && !known.contains(&t.name))
                            .cloned()
                            .collect(),
                    );
                    emitter.emit(RunEvent::Verified { subject: subject.clone() });
                }
                // Leave the workspace as the candidate's verification left it.
                let ws2 = ws.clone();
                let _ = tokio::task::spawn_blocking(move || ws2.checkout(&own_commit)).await;
                (subject, cells)
            }
        });
        let by_subject = futures_join_all(futures.collect()).await;

        let base_cells =
            by_subject.iter().find(|(s, _)| *s == Subject::Base).map(|(_, c)| c.clone()).unwrap_or_default();
        let rows = sets
            .iter()
            .enumerate()
            .map(|(k, (files, _, authors))| {
                let base_status: HashMap<&str, bool> = base_cells
                    .get(k)
                    .map(|tests| tests.iter().map(|t| (t.name.as_str(), t.status.is_ok())).collect())
                    .unwrap_or_default();
                let cells = by_subject
                    .iter()
                    .map(|(subject, cells)| {
                        let tests = cells.get(k).map(Vec::as_slice).unwrap_or(&[]);
                        let passing = tests.iter().filter(|t| t.status.is_ok()).count();
                        let fixed = tests
                            .iter()
                            .filter(|t| t.status.is_ok() && base_status.get(t.name.as_str()) == Some(&false))
                            .count();
                        let broken = tests
                            .iter()
                            .filter(|t| !t.status.is_ok() && base_status.get(t.name.as_str()) == Some(&true))
                            .count();
                        baton_core::MatrixCell {
                            subject: subject.clone(),
                            passing,
                            failing: tests.len() - passing,
                            fixed,
                            broken,
                        }
                    })
                    .collect();
                baton_core::MatrixRow {
                    authors: authors.clone(),
                    files: files.iter().map(|(p, _)| p.clone()).collect(),
                    cells,
                }
            })
            // Files that hold no test beyond the base's (a test edited or deleted, not added)
            // say nothing about anyone.
            .filter(|row: &baton_core::MatrixRow| row.cells.iter().any(|c| c.passing + c.failing > 0))
            .collect();
        Ok(rows)
    }

    /// Creates every candidate's workspace (and the baseline's, when there is anything to
    /// verify) in parallel.
    async fn provision(
        &self,
        slots: &mut [Slot],
        ws_dir: &Path,
        need_base: bool,
    ) -> Result<Option<Workspace>, EngineError> {
        let kind = match self.config.run.workspace {
            WorkspaceMode::Clone => WorkspaceKind::Clone,
            WorkspaceMode::Worktree => WorkspaceKind::Worktree,
            WorkspaceMode::Overlay => WorkspaceKind::Overlay,
            WorkspaceMode::Auto => {
                let parent = ws_dir.parent().unwrap_or(ws_dir).to_owned();
                let _ = std::fs::create_dir_all(&parent);
                if baton_git::overlay_supported(&parent) {
                    WorkspaceKind::Overlay
                } else {
                    WorkspaceKind::Clone
                }
            }
        };
        let total = slots.len() + usize::from(need_base);
        self.emitter.emit(RunEvent::PhaseStarted { phase: Phase::Provision, total });
        let limit = Arc::new(Semaphore::new(self.jobs.max(2)));
        let mut set = JoinSet::new();
        let names: Vec<Option<CandidateId>> =
            slots.iter().map(|s| Some(s.id.clone())).chain(need_base.then_some(None)).collect();
        for (i, name) in names.into_iter().enumerate() {
            let (repo, base, limit) = (self.repo.clone(), self.base.clone(), limit.clone());
            let dir = ws_dir.join(name.as_ref().map(CandidateId::as_str).unwrap_or("base"));
            let branch =
                format!("baton/{}/{}", self.run, name.as_ref().map(CandidateId::as_str).unwrap_or("base"));
            set.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let t = Instant::now();
                let ws =
                    tokio::task::spawn_blocking(move || Workspace::create(&repo, kind, &dir, &base, &branch))
                        .await
                        .unwrap_or_else(|e| {
                            Err(baton_git::GitError::Spawn(std::io::Error::other(e.to_string())))
                        });
                (i, ws, t.elapsed().as_millis() as u64)
            });
        }
        let mut base_ws = None;
        let mut first_error = None;
        while let Some(joined) = set.join_next().await {
            let Ok((i, ws, millis)) = joined else { continue };
            match ws {
                Ok(ws) if i < slots.len() => {
                    self.emitter.emit(RunEvent::WorkspaceReady {
                        candidate: slots[i].id.clone(),
                        path: ws.tree.to_string_lossy().into_owned(),
                        millis,
                    });
                    slots[i].workspace = Some(ws);
                }
                Ok(ws) => base_ws = Some(ws),
                Err(e) => {
                    first_error.get_or_insert(EngineError::from_git(e));
                }
            }
        }
        match first_error {
            // A workspace that cannot be made means the machine cannot host the run as asked.
            Some(e) => Err(e),
            None => Ok(base_ws),
        }
    }

    async fn run_agents(
        &self,
        slots: &mut [Slot],
        task: &Task,
        guidance: &[(String, String)],
    ) -> Result<(), EngineError> {
        self.emitter.emit(RunEvent::PhaseStarted { phase: Phase::Agents, total: slots.len() });
        let limit = Arc::new(Semaphore::new(self.jobs));
        let mut set = JoinSet::new();
        for (i, slot) in slots.iter().enumerate() {
            let Some(ws) = slot.workspace.clone() else { continue };
            let dir = self.artifacts.join(slot.id.as_str());
            std::fs::create_dir_all(&dir).map_err(EngineError::io(&dir))?;
            let prompt = compose_prompt(task, &slot.strategy_prompt, guidance);
            let prompt_file = dir.join("prompt.md");
            std::fs::write(&prompt_file, &prompt).map_err(EngineError::io(&prompt_file))?;
            let actx = AgentContext {
                run: self.run.clone(),
                candidate: slot.id.clone(),
                strategy: slot.strategy.clone(),
                workspace: ws.tree.clone(),
                prompt,
                prompt_file,
                log: dir.join("agent.log"),
                log_limit: self.config.run.log_limit.0,
                timeout: slot.agent.timeout().unwrap_or(self.config.run.agent_timeout),
                silence_timeout: self.config.run.silence(),
                grace: self.config.run.grace,
                home: dir.join("home"),
                exit_timeout: self.config.run.exit_timeout,
            };
            let job = AgentJob {
                agent: slot.agent.clone(),
                ctx: actx,
                ws,
                repo: self.repo.clone(),
                base: self.base.clone(),
                reference: candidate_ref(&self.run, &slot.id),
                emitter: self.emitter.clone(),
                cancel: self.cancel.clone(),
            };
            let limit = limit.clone();
            let mut cancel = self.cancel.clone();
            set.spawn(async move {
                let permit = tokio::select! {
                    p = limit.acquire_owned() => p.ok(),
                    _ = cancel.raised_above(baton_exec::CancelLevel::None) => None,
                };
                if permit.is_none() || job.cancel.is_cancelled() {
                    return (i, None);
                }
                let result = job.run().await;
                drop(permit);
                (i, Some(result))
            });
        }
        let mut disk_full = None;
        while let Some(joined) = set.join_next().await {
            let Ok((i, result)) = joined else { continue };
            let Some(result) = result else { continue };
            slots[i].outcome = Some(result.outcome);
            slots[i].commit = result.commit;
            slots[i].changes = result.changes;
            if let Some(e) = result.collect_error {
                match e {
                    EngineError::DiskFull(_) => {
                        disk_full.get_or_insert(e);
                    }
                    other => self.emitter.emit(RunEvent::Warning {
                        message: format!("could not collect the work of {}: {other}", slots[i].id),
                    }),
                }
            }
        }
        match disk_full {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The run's probes with the scripts candidates added at the top of the repository: an
    /// agent's reproduction of the problem, run on every subject beside the task's examples.
    fn with_candidate_scripts(
        &self,
        slots: &[Slot],
        protected: &Protected,
    ) -> Result<ProbeRunner, EngineError> {
        let limit = self.config.verify.candidate_scripts;
        let mut probes = self.probes.clone();
        if limit == 0 {
            return Ok(probes);
        }
        let git = self.repo.git();
        let mut added = Vec::new();
        for slot in slots {
            let (Some(commit), Some(AgentOutcome::Completed)) = (&slot.commit, &slot.outcome) else {
                continue;
            };
            let mut files = Vec::new();
            for c in slot.changes.iter().filter(|c| is_top_level_script(c, protected)) {
                if let Some(bytes) = git.file_at(commit, &c.path).map_err(EngineError::from_git)?
                    && let Ok(source) = String::from_utf8(bytes)
                {
                    files.push((c.path.clone(), source));
                }
            }
            if !files.is_empty() {
                added.push((slot.id.to_string(), files));
            }
        }
        probes.probes.extend(baton_verify::candidate_scripts(&added, limit));
        Ok(probes)
    }

    async fn verify_all(
        &self,
        slots: &[Slot],
        targets: &[VerifyTarget],
        runner: &StageRunner,
        probe_runner: &ProbeRunner,
        base: Option<VerifyJob>,
    ) -> Result<HashMap<Subject, Verification>, EngineError> {
        self.emitter.emit(RunEvent::PhaseStarted { phase: Phase::Verify, total: targets.len() + 1 });
        let limit = Arc::new(Semaphore::new(self.jobs));
        let mut jobs: Vec<VerifyJob> = base.into_iter().collect();
        for t in targets {
            let slot = &slots[t.primary];
            let Some(ws) = &slot.workspace else { continue };
            jobs.push(VerifyJob {
                subject: Subject::Candidate(slot.id.clone()),
                ws: ws.clone(),
                commit: (!t.in_place).then(|| t.commit.clone()),
                changed: t.changed.clone(),
                related: t.related.clone(),
                split: t.split.clone(),
            });
        }
        // Candidates learn the base's verdicts as soon as it has them (it runs first), to rerun
        // failing tests only when they fail beyond the base, to judge split related tests by the
        // base's time on them, and to skip probes that ran until their limit on the base.
        let (mut base_tx, base_rx) = match jobs.first() {
            Some(j) if j.subject == Subject::Base => {
                let (tx, rx) = BaseResults::channel();
                (Some(tx), Some(rx))
            }
            _ => (None, None),
        };
        // Stages borrow the runner; run them on this task's scope with bounded concurrency.
        let futures = jobs.into_iter().map(|VerifyJob { subject, ws, commit, changed, related, split }| {
            let (publish, base) =
                if subject == Subject::Base { (base_tx.take(), None) } else { (None, base_rx.clone()) };
            let limit = limit.clone();
            let emitter = self.emitter.clone();
            let cancel = self.cancel.clone();
            let artifacts = self.artifacts.clone();
            async move {
                let _permit = limit.acquire_owned().await;
                if cancel.is_cancelled() {
                    return (subject, Verification::default());
                }
                if let Some(commit) = commit {
                    let ws2 = ws.clone();
                    let checked_out =
                        tokio::task::spawn_blocking(move || ws2.checkout(&commit)).await.unwrap_or_else(
                            |e| Err(baton_git::GitError::Spawn(std::io::Error::other(e.to_string()))),
                        );
                    if let Err(e) = checked_out {
                        emitter.emit(RunEvent::Warning {
                            message: format!("cannot prepare {subject} for verification: {e}"),
                        });
                        return (subject, Verification::default());
                    }
                }
                let ctx = SubjectContext {
                    subject: subject.clone(),
                    workspace: ws.tree.clone(),
                    artifacts,
                    changed_files: changed,
                    related_tests: related,
                    base,
                    publish,
                    split,
                };
                let emit_tx = emitter.tx.clone();
                let emit = move |e: RunEvent| {
                    let _ = emit_tx.send(e);
                };
                let results = runner.run(&ctx, cancel.clone(), &emit).await;
                if let Some(publish) = &ctx.publish {
                    publish.send(&results);
                }
                let probes = if probe_runner.probes.is_empty() || cancel.is_cancelled() {
                    Vec::new()
                } else {
                    let outcomes = probe_runner.run(&ctx, cancel, &emit).await;
                    emitter.emit(RunEvent::ProbesRun { subject: subject.clone(), probes: outcomes.clone() });
                    outcomes
                };
                emitter.emit(RunEvent::Verified { subject: subject.clone() });
                (subject, (results, probes))
            }
        });
        let all = futures_join_all(futures.collect()).await;
        Ok(all.into_iter().collect())
    }
}

/// A language-aware reading of each changed file baton has a grammar for, as
/// [`baton_rank::normalize_patch_with`] takes it: the file's canonical text after the change, or
/// `None` when the change altered no token. Deleted files and files that do not parse on either
/// side are left to the line-based comparison. `base_sources` keeps the base's files as read, for
/// the next candidate.
fn canonical_sources(
    git: &baton_git::Git,
    base_tree: &Oid,
    tree: &Oid,
    base_sources: &mut HashMap<String, Option<String>>,
) -> Result<HashMap<String, Option<String>>, EngineError> {
    let mut out = HashMap::new();
    for change in git.diff_files(base_tree, tree).map_err(EngineError::from_git)? {
        if !baton_rank::understands(&change.path) {
            continue;
        }
        let read = |rev: &Oid| -> Result<Option<String>, EngineError> {
            Ok(git
                .file_at(rev, &change.path)
                .map_err(EngineError::from_git)?
                .map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        let Some(after) = read(tree)?.and_then(|t| baton_rank::canonical_source(&change.path, &t)) else {
            continue;
        };
        let before = match base_sources.get(&change.path) {
            Some(before) => before.clone(),
            None => {
                let before = read(base_tree)?.and_then(|t| baton_rank::canonical_source(&change.path, &t));
                base_sources.insert(change.path.clone(), before.clone());
                before
            }
        };
        out.insert(change.path.clone(), (before.as_ref() != Some(&after)).then_some(after));
    }
    Ok(out)
}

/// The modules of the project that define the names the task's Python examples use, so that an
/// example runs as it did for its author, who had imported them (see [`ProbeRunner::imports`]).
fn python_imports(
    git: &baton_git::Git,
    base: &Oid,
    probes: &[Probe],
    packages: &[String],
) -> Result<Vec<(String, Vec<String>)>, EngineError> {
    let names = baton_verify::used_names(probes);
    if packages.is_empty() || names.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = names.into_iter().take(50).collect();
    let pattern = format!(r"^(class|def)[[:space:]]+({})\b", names.join("|"));
    let definitions = git.grep(base, &pattern, &["*.py"]).map_err(EngineError::from_git)?;
    Ok(baton_verify::definition_modules(&names, &definitions, packages))
}

/// A Python script a candidate added at the repository's top, outside protected paths: an
/// agent's reproduction of the problem (`reproduce_bug.py`), not a change to the project.
fn is_top_level_script(change: &baton_git::FileChange, protected: &Protected) -> bool {
    change.kind == baton_git::ChangeKind::Added
        && baton_verify::is_script_path(&change.path)
        && !protected.is_protected(&change.path)
}

/// The candidates that wrote a probe (none for the task's examples and configured probes).
fn script_authors(probe: &Probe) -> Vec<CandidateId> {
    match &probe.kind {
        ProbeKind::CandidateScript { authors, .. } => {
            authors.iter().filter_map(|a| CandidateId::new(a.clone()).ok()).collect()
        }
        ProbeKind::Command { .. } | ProbeKind::Script { .. } | ProbeKind::Session { .. } => Vec::new(),
    }
}

/// Finds the hidden tests `spec` names (a directory, a patch file, or a revision whose changes
/// against the base hold them) and the test files among what it holds; the rest are returned
/// to be reported as left out. Nothing is written: the tests become objects only after the
/// agents finished.
fn resolve_hidden_tests(
    repo: &Repo,
    base: &Oid,
    spec: &str,
    protected: &Protected,
) -> Result<(HiddenTests, Vec<String>), EngineError> {
    let git = repo.git();
    let path = if Path::new(spec).is_absolute() { PathBuf::from(spec) } else { repo.root.join(spec) };
    let bad = |why: String| EngineError::BadInput(format!("hidden tests `{spec}`: {why}"));
    let (source, all) = if path.is_dir() {
        let files = files_under(&path).map_err(|e| bad(format!("cannot read the directory: {e}")))?;
        (HiddenSource::Dir(path), files)
    } else if path.is_file() {
        let files = git.patch_paths(base, &path, &std::env::temp_dir()).map_err(|e| match e {
            baton_git::GitError::Failed { stderr, .. } => {
                bad(format!("the patch does not apply to the base {}: {}", base.short(), stderr.trim()))
            }
            other => EngineError::from_git(other),
        })?;
        (HiddenSource::Patch(path), files)
    } else if let Some(rev) = git.try_resolve(spec)? {
        let files = git
            .diff_files(base, &rev)
            .map_err(EngineError::from_git)?
            .into_iter()
            .filter(|f| f.kind != baton_git::ChangeKind::Deleted)
            .map(|f| f.path)
            .collect();
        (HiddenSource::Rev(rev), files)
    } else {
        return Err(bad("there is no such directory or file, and it names no commit".into()));
    };
    let (files, left_out): (Vec<String>, Vec<String>) =
        all.into_iter().partition(|p| protected.is_protected(p) || looks_like_test(p));
    if files.is_empty() {
        return Err(bad(if left_out.is_empty() {
            "it holds no file".into()
        } else {
            format!(
                "none of the {} {} it holds is a test, by verify.protected or by its name: {}",
                left_out.len(),
                baton_core::plural(left_out.len(), "file", "files"),
                left_out.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            )
        }));
    }
    Ok((HiddenTests { source, files }, left_out))
}

/// The files under `dir`, as paths relative to it with `/` between parts (a `.git` inside is
/// skipped).
fn files_under(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let name = entry.file_name();
            if name == ".git" {
                continue;
            }
            let child = rel.join(&name);
            if entry.file_type()?.is_dir() {
                stack.push(child);
            } else {
                out.push(child.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Awaits futures concurrently on the current task (they borrow from it, so they cannot be
/// spawned), keeping their order.
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future completed")).collect()
}

/// One agent's turn, then the collection of its work.
struct AgentJob {
    agent: Arc<dyn Agent>,
    ctx: AgentContext,
    ws: Workspace,
    repo: Repo,
    base: Oid,
    reference: String,
    emitter: Emitter,
    cancel: Cancel,
}

struct AgentResult {
    outcome: AgentOutcome,
    commit: Option<Oid>,
    changes: Vec<FileChange>,
    collect_error: Option<EngineError>,
}

impl AgentJob {
    async fn run(self) -> AgentResult {
        let id = self.ctx.candidate.clone();
        self.emitter.emit(RunEvent::AgentStarted { candidate: id.clone() });
        let t = Instant::now();
        let outcome = match self.agent.plan(&self.ctx) {
            Err(e) => AgentOutcome::SpawnFailed { message: e.to_string() },
            Ok(Plan::Process { spec, parser }) => {
                let started = |pid| {
                    self.emitter.emit(RunEvent::ProcessStarted {
                        pid,
                        start_ticks: baton_exec::identity_of(pid).map(|i| i.start_ticks),
                        label: format!("agent {id}"),
                    })
                };
                let emit =
                    |activity| self.emitter.emit(RunEvent::AgentActivity { candidate: id.clone(), activity });
                baton_agents::drive(spec, parser, self.cancel.clone(), started, emit).await
            }
            Ok(Plan::ApplyPatch { patch, source }) => {
                let tree = self.ws.tree.clone();
                let applied = tokio::task::spawn_blocking(move || apply_patch(&tree, &patch))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                let note = match &applied {
                    Ok(method) => format!("applied {} ({method:?})\n", source.display()),
                    Err(e) => format!("could not apply {}:\n{e}\n", source.display()),
                };
                let _ = std::fs::write(&self.ctx.log, note);
                match applied {
                    Ok(_) => AgentOutcome::Completed,
                    Err(e) => AgentOutcome::Failed {
                        reason: format!("the patch does not apply: {}", e.lines().next().unwrap_or("")),
                    },
                }
            }
        };
        self.emitter.emit(RunEvent::AgentFinished {
            candidate: id.clone(),
            outcome: outcome.clone(),
            millis: t.elapsed().as_millis() as u64,
        });

        // Collect whatever is there, whatever the outcome.
        let (ws, repo, base, reference) =
            (self.ws.clone(), self.repo.clone(), self.base.clone(), self.reference.clone());
        let message = format!(
            "baton: candidate {id} of run {}\n\nagent: {}\nstrategy: {}\noutcome: {outcome}\n",
            self.ctx.run,
            self.agent.name(),
            self.ctx.strategy
        );
        let collected =
            tokio::task::spawn_blocking(move || -> Result<(Oid, Vec<FileChange>), EngineError> {
                let commit = ws.snapshot(&base, &message).map_err(EngineError::from_git)?;
                ws.publish(&repo, &commit, &reference).map_err(EngineError::from_git)?;
                let changes = repo.git().diff_files(&base, &commit).map_err(EngineError::from_git)?;
                Ok((commit, changes))
            })
            .await
            .unwrap_or_else(|e| Err(EngineError::Failed(e.to_string())));
        match collected {
            Ok((commit, changes)) => {
                self.emitter.emit(RunEvent::Collected {
                    candidate: id,
                    commit: commit.to_string(),
                    reference: self.reference.clone(),
                    files_changed: changes.len(),
                    insertions: changes.iter().filter_map(|c| c.added).sum(),
                    deletions: changes.iter().filter_map(|c| c.deleted).sum(),
                });
                AgentResult { outcome, commit: Some(commit), changes, collect_error: None }
            }
            Err(e) => AgentResult { outcome, commit: None, changes: Vec::new(), collect_error: Some(e) },
        }
    }
}

/// The recorder: the one owner of the store and the reporter. Every event is stored, then shown.
async fn record(
    run: RunId,
    mut store: Store,
    mut rx: mpsc::UnboundedReceiver<RunEvent>,
    mut reporter: Box<dyn FnMut(&RunEvent) + Send>,
    error: Arc<Mutex<Option<String>>>,
) -> Store {
    while let Some(event) = rx.recv().await {
        let result = store.record(&run, &event).and_then(|()| {
            if matches!(event, RunEvent::RunStarted { .. }) {
                let me = std::process::id();
                store.set_owner(&run, me, baton_exec::identity_of(me).map(|i| i.start_ticks))
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            let mut slot = error.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(e.to_string());
            }
        }
        reporter(&event);
    }
    store
}

async fn watch_cancel(mut cancel: Cancel, emitter: Emitter) {
    let mut seen = baton_exec::CancelLevel::None;
    loop {
        let level = cancel.raised_above(seen).await;
        seen = level;
        emitter.emit(RunEvent::Cancelling { force: level == baton_exec::CancelLevel::Force });
        if level == baton_exec::CancelLevel::Force {
            return;
        }
    }
}

/// Removes every workspace of a run (the run's directory under the workspace root).
pub(crate) fn remove_run_workspaces(repo: &Repo, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let root = entry.path();
        match Workspace::reopen(repo, &root) {
            Some(ws) => {
                let _ = ws.remove();
            }
            None => {
                let _ = std::fs::remove_dir_all(&root);
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// `20261124-131107-3fa2`: sortable by time, unique enough to never collide in one repository.
fn new_run_id() -> RunId {
    let now = time::OffsetDateTime::now_utc();
    let mut bytes = [0u8; 2];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map(|()| u16::from_be_bytes(bytes))
        .unwrap_or_else(|_| (now.nanosecond() ^ std::process::id()) as u16);
    let id = format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}-{random:04x}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    RunId::new(id).expect("generated run ids are valid")
}
