//! The dispatcher: one task owns every candidate's state and starts each unit of work as soon
//! as what it needs exists, under two limits: agents (which mostly wait on their model) and
//! verifications (which use the CPU).
//!
//! 1. Every workspace is provisioned first (milliseconds each); a failure ends the run before
//!    any agent starts.
//! 2. Agents start at once, at most `agent_jobs` together. Where verification does not depend on
//!    the other candidates (no stage uses `{related_tests}`, no hidden tests, which must stay out
//!    of the repository until every agent is done), the base is verified while the agents run,
//!    and each candidate as soon as its agent is done: its tree is known, and identical trees
//!    are still verified once.
//! 3. When the last agent is done: the hidden tests are laid over, the related tests of the
//!    union of all changes are planned, and every subject not verified yet runs its stages; then
//!    every subject runs the probes, which include the scripts candidates added (known only now).
//! 4. The test matrix, once every candidate's tests are known; the evidence; the decision.

use std::collections::HashMap;
use std::sync::Arc;

use baton_agents::{AgentContext, compose_prompt};
use baton_core::{CandidateId, Phase, RunEvent, Scoreboard, StageResult, Subject};
use baton_git::{FileChange, Oid};
use baton_verify::{BaseResults, BaseResultsSender, ProbeRunner, Split};
use baton_workspace::Workspace;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::agent::{AgentJob, AgentResult};
use crate::context::Shared;
use crate::decide::{Decider, DecisionInput};
use crate::evidence::{self, Candidate};
use crate::guard::{Check, Guard};
use crate::hidden::LaidOver;
use crate::matrix::{Author, Matrix};

use crate::provision::provision;
pub(crate) use crate::slot::Slot;
use crate::verify::{self, Targets, Verification, VerifyJob, changes_project};
use crate::{EngineError, candidate_ref};

/// What the dispatcher ends with.
pub(crate) struct Dispatched {
    pub(crate) scoreboard: Option<Scoreboard>,
    /// Distinct candidate trees verified.
    pub(crate) verifications: usize,
}

/// A unit that finished.
enum Done {
    Agent { index: usize, result: Option<AgentResult> },
    Stages { subject: Subject, results: Vec<StageResult> },
}

/// The one owner of a run's state while it works.
struct Dispatcher<'a> {
    shared: Arc<Shared>,
    slots: &'a mut [Slot],
    base_ws: Option<Workspace>,
    /// Whether there is anything to verify at all.
    verifies: bool,
    targets: Targets,
    results: HashMap<Subject, Verification>,
    verify_limit: Arc<Semaphore>,
    /// The base's verdicts, published to the candidates (the sender goes to the base's unit).
    base_tx: Option<BaseResultsSender>,
    base_rx: BaseResults,
    units: JoinSet<Done>,
    /// Watches the user's repository from the moment the agents start.
    guard: Option<Guard>,
}

pub(crate) async fn dispatch(
    shared: Arc<Shared>,
    slots: &mut [Slot],
    decider: &dyn Decider,
) -> Result<Dispatched, EngineError> {
    let plan = &shared.plan;
    let verifies = !plan.runner.is_empty() || !plan.probes.probes.is_empty();
    let base_ws = provision(&shared, slots, verifies).await?;
    let (base_tx, base_rx) = BaseResults::channel();
    let mut d = Dispatcher {
        verify_limit: Arc::new(Semaphore::new(plan.jobs.max(1))),
        shared: shared.clone(),
        slots,
        base_ws,
        verifies,
        targets: Targets::default(),
        results: HashMap::new(),
        base_tx: Some(base_tx),
        base_rx,
        units: JoinSet::new(),
        guard: None,
    };
    let cancelled =
        |d: &Dispatcher<'_>| Dispatched { scoreboard: None, verifications: d.targets.targets.len() };
    if shared.bench.cancel.is_cancelled() {
        return Ok(cancelled(&d));
    }
    d.agents().await?;
    if shared.bench.cancel.is_cancelled() {
        return Ok(cancelled(&d));
    }
    let hidden = match &plan.hidden {
        Some(h) => Some(h.lay_over(&plan.repo, &shared.base, &shared.bench.artifacts)?),
        None => None,
    };
    let probes = d.verify_the_rest(hidden.as_ref()).await?;
    if shared.bench.cancel.is_cancelled() {
        return Ok(cancelled(&d));
    }
    let base_commit = hidden.as_ref().map(|h| h.base.clone()).unwrap_or_else(|| shared.base.clone());
    let matrix = d.matrix(&base_commit).await?;
    d.check_repository(None).await?;
    if shared.bench.cancel.is_cancelled() {
        return Ok(cancelled(&d));
    }
    let board = d.decide(&probes, &matrix, decider)?;
    shared.bench.emitter.emit(RunEvent::Ranked { scoreboard: board.clone() });
    Ok(Dispatched { scoreboard: Some(board), verifications: d.targets.targets.len() })
}

impl Dispatcher<'_> {
    /// Where verification does not depend on the other candidates (no stage uses
    /// `{related_tests}`, no hidden tests), the base is verified while the agents run and each
    /// candidate as soon as its agent is done.
    fn verifies_early(&self) -> bool {
        let plan = &self.shared.plan;
        self.verifies && !plan.runner.uses_related_tests() && plan.hidden.is_none()
    }

    /// The agents, and what can be verified while they run; returns when every agent is done.
    async fn agents(&mut self) -> Result<(), EngineError> {
        if self.verifies_early()
            && let Some(ws) = &self.base_ws
        {
            let job = VerifyJob {
                subject: Subject::Base,
                ws: ws.clone(),
                commit: None,
                changed: Vec::new(),
                related: Vec::new(),
                split: Split::None,
            };
            spawn_stages(&mut self.units, &self.shared, &self.verify_limit, job, None, self.base_tx.take());
        }
        let guard = Guard::start(&self.shared.plan.repo, &self.shared.plan.workspace_root).await?;
        let started = guard.started();
        self.guard = Some(guard);
        if let Err(e) = start_agents(&mut self.units, &self.shared, self.slots, started) {
            // Nothing more starts; what started ends with the units.
            self.units.abort_all();
            return Err(e);
        }
        let mut disk_full = None;
        while let Some(done) = self.units.join_next().await {
            let Ok(done) = done else { continue };
            match done {
                // Cancelled before it started.
                Done::Agent { result: None, .. } => {}
                Done::Agent { index, result: Some(result) } => {
                    if let Some(e) = self.agent_done(index, result) {
                        disk_full.get_or_insert(e);
                    }
                    // Before its verification starts: what its tests do is not taken for the
                    // agent's. Where the sandbox keeps the repository read-only to every
                    // process, neither can change it: the check after the last agent stays as
                    // the second line of defence, and the verification does not wait for a scan
                    // of the user's whole tree after each agent (seconds on a big one).
                    if !self.shared.plan.containment.keeps_repo_read_only() {
                        self.check_repository(Some(index)).await?;
                    }
                    self.verify_early(index)?;
                }
                Done::Stages { subject, results } => {
                    self.results.insert(subject, (results, Vec::new()));
                }
            }
        }
        self.check_repository(None).await?;
        disk_full.map_or(Ok(()), Err)
    }

    /// Compares the user's repository with its state before the agents started, after agent
    /// `ended` ended (`None`: once all are done). The first change found while agents ran stops
    /// the run (the agents still running end as on a Ctrl-C, their work saved); once no unit
    /// runs any more, the changes are reported and end the run as failed. A change made while
    /// only tests ran is a warning with the commands that undo it: the tests reach into the
    /// user's checkout, which the verification says for itself.
    async fn check_repository(&mut self, ended: Option<usize>) -> Result<(), EngineError> {
        let Some(guard) = self.guard.as_mut() else { return Ok(()) };
        let checked = match guard.check(ended).await {
            // A Ctrl-C reaches the git commands of the check too: the run is ending anyway.
            Err(_) if self.shared.bench.cancel.is_cancelled() => return Ok(()),
            checked => checked?,
        };
        match checked {
            Check::ByTests(changes) => {
                let undo: Vec<String> =
                    changes.iter().flat_map(|c| c.undo.iter().map(|u| format!("\n    {u}"))).collect();
                self.shared.bench.emitter.emit(RunEvent::Warning {
                    message: format!(
                        "tests wrote into your repository while candidates were verified: {}; run in {} to undo:{}",
                        changes.iter().map(|c| c.change.to_string()).collect::<Vec<_>>().join("; "),
                        self.shared.plan.repo.root.display(),
                        undo.concat()
                    ),
                });
                return Ok(());
            }
            Check::ByAgents(found) => {
                self.shared.bench.emitter.emit(RunEvent::Warning {
                    message: format!(
                        "your repository changed while {} ran: stopping the run",
                        self.suspects(&found.suspects).join(", ")
                    ),
                });
                self.shared.stop.raise(baton_exec::CancelLevel::Graceful);
            }
            Check::Unchanged | Check::Known => {}
        }
        let Some(found) = self.guard.as_ref().and_then(|g| g.found()).cloned() else { return Ok(()) };
        if ended.is_some() {
            // The rest of the agents are stopping: the report waits for them.
            return Ok(());
        }
        let candidates: Vec<CandidateId> = found.suspects.iter().map(|&i| self.slots[i].id.clone()).collect();
        self.shared
            .bench
            .emitter
            .emit(RunEvent::RepositoryChanged { candidates, changes: found.changes.clone() });
        Err(EngineError::RepositoryChanged {
            root: self.shared.plan.repo.root.clone(),
            candidates: self.suspects(&found.suspects),
            changes: found.changes,
        })
    }

    /// `c2 (agent)` for each candidate.
    fn suspects(&self, indices: &std::collections::BTreeSet<usize>) -> Vec<String> {
        indices.iter().map(|&i| format!("{} ({})", self.slots[i].id, self.slots[i].agent.name())).collect()
    }

    /// Takes in what an agent left. A full disk is returned to end the run once the other
    /// agents are done.
    fn agent_done(&mut self, index: usize, result: AgentResult) -> Option<EngineError> {
        let slot = &mut self.slots[index];
        slot.outcome = Some(result.outcome);
        slot.commit = result.commit;
        slot.changes = result.changes;
        match result.collect_error {
            Some(e @ EngineError::DiskFull(_)) => return Some(e),
            Some(other) => self.shared.bench.emitter.emit(RunEvent::Warning {
                message: format!("could not collect the work of {}: {other}", slot.id),
            }),
            None => {}
        }
        None
    }

    /// Starts the verification of candidate `index`, whose agent is done, where that can start
    /// now.
    fn verify_early(&mut self, index: usize) -> Result<(), EngineError> {
        if self.slots[index].commit.is_none() {
            return Ok(());
        }
        // A candidate that only added scripts waits: whether it is verified depends on whether
        // another changes the project.
        if self.verifies_early() && changes_project(&self.slots[index].changes, &self.shared.plan.protected) {
            let added = self.targets.add(index, &self.slots[index].collected(), &self.shared, None)?;
            if added == Some(true)
                && let Some(job) = target_job(&self.targets, self.targets.targets.len() - 1, self.slots)
            {
                let base = Some(self.base_rx.clone());
                spawn_stages(&mut self.units, &self.shared, &self.verify_limit, job, base, None);
            }
        }
        Ok(())
    }

    /// Everything that needs every candidate: the trees not verified yet, the related tests of
    /// all changes, each subject's remaining stages and its probes (the task's examples and the
    /// scripts candidates added). Returns the probes the run ran.
    async fn verify_the_rest(&mut self, hidden: Option<&LaidOver>) -> Result<ProbeRunner, EngineError> {
        let shared = self.shared.clone();
        let plan = &shared.plan;
        let someone_changes_project = self.slots.iter().any(|s| {
            s.commit.is_some()
                && s.outcome.as_ref().is_some_and(|o| o.is_completed())
                && changes_project(&s.changes, &plan.protected)
        });
        for (i, slot) in self.slots.iter().enumerate() {
            let known = self.targets.evidence_trees.contains_key(&i) || self.targets.shared.contains_key(&i);
            if known || (someone_changes_project && !changes_project(&slot.changes, &plan.protected)) {
                continue;
            }
            self.targets.add(i, &slot.collected(), &shared, hidden)?;
        }
        let probes = evidence::with_candidate_scripts(
            &plan.probes,
            &self.candidates(),
            &plan.repo,
            &plan.protected,
            plan.config.verify.candidate_scripts,
        )?;
        if !self.verifies || self.targets.targets.is_empty() {
            return Ok(probes);
        }
        let base_commit = hidden.map(|h| h.base.clone()).unwrap_or_else(|| shared.base.clone());
        let changes: Vec<&[FileChange]> = self.slots.iter().map(|s| s.changes.as_slice()).collect();
        let base_plan =
            self.targets.plan_related(&changes, &shared, &base_commit, hidden, self.base_ws.is_some())?;
        warn_unmatched_protected(&shared, &base_plan.paths);
        let total = self.targets.targets.len() + 1;
        shared.bench.emitter.emit(RunEvent::PhaseStarted { phase: Phase::Verify, total });
        let mut jobs = Vec::new();
        if let Some(ws) = &self.base_ws {
            jobs.push(VerifyJob {
                subject: Subject::Base,
                // A fresh checkout of the base, unless hidden tests are laid over it.
                commit: hidden.map(|h| h.base.clone()),
                ws: ws.clone(),
                changed: base_plan.changed,
                related: base_plan.related,
                split: base_plan.split,
            });
        }
        jobs.extend((0..self.targets.targets.len()).filter_map(|t| target_job(&self.targets, t, self.slots)));
        let (base_tx, base_rx) = (self.base_tx.take(), self.base_rx.clone());
        let verified =
            verify_remaining(&shared, jobs, &probes, &self.verify_limit, &mut self.results, base_tx, base_rx)
                .await;
        self.results.extend(verified);
        Ok(probes)
    }

    /// The tests candidates wrote, run on the base (as verified, at `base_commit`) and on every
    /// distinct candidate.
    async fn matrix(&self, base_commit: &Oid) -> Result<Vec<baton_core::MatrixRow>, EngineError> {
        let plan = &self.shared.plan;
        if !plan.config.verify.matrix || plan.runner.is_empty() || self.targets.targets.is_empty() {
            return Ok(Vec::new());
        }
        // Only the tests the candidates added count: names the base's own run did not have.
        let known: std::collections::HashSet<String> = self
            .results
            .get(&Subject::Base)
            .map(|(stages, _)| stages.iter().flat_map(|r| r.tests.iter().map(|t| t.name.clone())).collect())
            .unwrap_or_default();
        let authors: Vec<Author<'_>> = self
            .slots
            .iter()
            .map(|s| Author {
                id: &s.id,
                outcome: s.outcome.as_ref(),
                commit: s.commit.as_ref(),
                changes: &s.changes,
                workspace: s.workspace.as_ref(),
            })
            .collect();
        let matrix = Matrix {
            slots: &authors,
            repo: &plan.repo,
            protected: &plan.protected,
            runner: &plan.runner,
            limit: plan.config.verify.matrix_limit,
            jobs: plan.jobs,
            bench: &self.shared.bench,
        };
        let base = self.base_ws.as_ref().map(|ws| (ws.clone(), base_commit.clone()));
        matrix.run(&self.targets.targets, base, &known).await
    }

    /// The evidence, and the decision from it.
    fn decide(
        &self,
        probes: &ProbeRunner,
        matrix: &[baton_core::MatrixRow],
        decider: &dyn Decider,
    ) -> Result<Scoreboard, EngineError> {
        let shared = &self.shared;
        let plan = &shared.plan;
        let evidence = evidence::assemble(
            &self.candidates(),
            &plan.repo,
            &shared.base,
            &plan.protected,
            &self.targets,
            &self.results,
        )?;
        let probe_context = evidence::probe_context(probes, &self.results, &plan.task.body);
        let setup_problems = match self.results.get(&Subject::Base) {
            Some((base_results, _)) => {
                let verified: Vec<&[StageResult]> = self
                    .results
                    .iter()
                    .filter(|(s, _)| !matches!(s, Subject::Base))
                    .map(|(_, (stages, _))| stages.as_slice())
                    .collect();
                baton_verify::setup_problems(&shared.bench.artifacts, base_results, &verified)
            }
            None => Vec::new(),
        };
        Ok(decider.decide(&DecisionInput {
            run: &shared.run,
            probes: &probe_context,
            matrix,
            candidates: &evidence,
            setup_problems: &setup_problems,
        }))
    }

    fn candidates(&self) -> Vec<Candidate<'_>> {
        self.slots
            .iter()
            .map(|s| Candidate {
                id: &s.id,
                agent: s.agent.as_ref(),
                strategy: &s.strategy,
                outcome: s.outcome.as_ref(),
                commit: s.commit.as_ref(),
                changes: &s.changes,
            })
            .collect()
    }
}

/// The verification job of target `t`, in its primary candidate's workspace.
fn target_job(targets: &Targets, t: usize, slots: &[Slot]) -> Option<VerifyJob> {
    let target = &targets.targets[t];
    let ws = slots[target.primary].workspace.clone()?;
    Some(VerifyJob {
        subject: Subject::Candidate(target.primary_id.clone()),
        ws,
        commit: (!target.in_place).then(|| target.commit.clone()),
        changed: target.changed.clone(),
        related: target.related.clone(),
        split: target.split.clone(),
    })
}

/// Starts one subject's stages as a unit, within the verification limit.
fn spawn_stages(
    units: &mut JoinSet<Done>,
    shared: &Arc<Shared>,
    limit: &Arc<Semaphore>,
    job: VerifyJob,
    base: Option<BaseResults>,
    publish: Option<BaseResultsSender>,
) {
    let (shared, limit) = (shared.clone(), limit.clone());
    units.spawn(async move {
        let _permit = limit.acquire_owned().await;
        let results = verify::run_stages(&job, &shared.plan.runner, base, publish, &shared.bench).await;
        Done::Stages { subject: job.subject, results }
    });
}

/// Starts every candidate's agent, at most `agent_jobs` at once (0: all at once).
fn start_agents(
    units: &mut JoinSet<Done>,
    shared: &Arc<Shared>,
    slots: &[Slot],
    started: tokio::sync::mpsc::UnboundedSender<usize>,
) -> Result<(), EngineError> {
    let plan = &shared.plan;
    let bench = &shared.bench;
    bench.emitter.emit(RunEvent::PhaseStarted { phase: Phase::Agents, total: slots.len() });
    let limit =
        Arc::new(Semaphore::new(if plan.agent_jobs == 0 { slots.len().max(1) } else { plan.agent_jobs }));
    for (index, slot) in slots.iter().enumerate() {
        let Some(ws) = slot.workspace.clone() else { continue };
        let dir = bench.artifacts.join(slot.id.as_str());
        let prompt = compose_prompt(&plan.task, &slot.strategy_prompt, &plan.guidance);
        let prompt_file = dir.join("prompt.md");
        std::fs::create_dir_all(&dir).map_err(EngineError::io(&dir))?;
        std::fs::write(&prompt_file, &prompt).map_err(EngineError::io(&prompt_file))?;
        let ctx = AgentContext {
            run: shared.run.clone(),
            candidate: slot.id.clone(),
            strategy: slot.strategy.clone(),
            workspace: ws.tree.clone(),
            prompt,
            prompt_file,
            log: dir.join("agent.log"),
            log_limit: plan.config.run.log_limit.0,
            timeout: slot.agent.timeout().unwrap_or(plan.config.run.agent_timeout),
            silence_timeout: plan.config.run.silence(),
            grace: plan.config.run.grace,
            home: dir.join("home"),
            exit_timeout: plan.config.run.exit_timeout,
            confined: plan.containment.enforced,
        };
        let confine = plan.containment.agent(&ws, &ctx.home);
        let endpoint = crate::endpoint::Held::of(slot.agent.as_ref(), plan.forwarder.as_deref(), &dir)?;
        let job = AgentJob {
            agent: slot.agent.clone(),
            ctx,
            ws,
            repo: plan.repo.clone(),
            base: shared.base.clone(),
            reference: candidate_ref(&shared.run, &slot.id),
            emitter: bench.emitter.clone(),
            cancel: bench.cancel.clone(),
            executor: plan.executor.clone(),
            redactor: plan.redactor.clone(),
            confine,
            endpoint,
        };
        let (limit, mut cancel, started) = (limit.clone(), bench.cancel.clone(), started.clone());
        units.spawn(async move {
            let permit = tokio::select! {
                p = limit.acquire_owned() => p.ok(),
                _ = cancel.raised_above(baton_exec::CancelLevel::None) => None,
            };
            if permit.is_none() || job.cancel.is_cancelled() {
                return Done::Agent { index, result: None };
            }
            let _ = started.send(index);
            Done::Agent { index, result: Some(job.run().await) }
        });
    }
    Ok(())
}

/// The verification not done while agents ran: each job's stages where it has none yet, then
/// its probes, one subject after another in its own workspace, subjects side by side within
/// the limit. The base goes first: candidates wait on its verdicts.
async fn verify_remaining(
    shared: &Arc<Shared>,
    jobs: Vec<VerifyJob>,
    probes: &baton_verify::ProbeRunner,
    limit: &Arc<Semaphore>,
    done: &mut HashMap<Subject, Verification>,
    mut base_tx: Option<BaseResultsSender>,
    base_rx: BaseResults,
) -> Vec<(Subject, Verification)> {
    let bench = &shared.bench;
    let futures = jobs.into_iter().map(|job| {
        let stages = done.remove(&job.subject).map(|(stages, _)| stages);
        let (publish, base) =
            if job.subject == Subject::Base { (base_tx.take(), None) } else { (None, Some(base_rx.clone())) };
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire_owned().await;
            let stages = match stages {
                Some(stages) => stages,
                None => verify::run_stages(&job, &shared.plan.runner, base, publish, bench).await,
            };
            let outcomes = verify::run_probes(&job, probes, bench).await;
            bench.emitter.emit(RunEvent::Verified { subject: job.subject.clone() });
            (job.subject, (stages, outcomes))
        }
    });
    crate::util::futures_join_all(futures.collect()).await
}

/// Warns about `verify.protected` globs that match no file of the base: probably a mistake. The
/// defaults cover many languages, so some of them always match nothing; only the user's count,
/// unless none at all matches.
fn warn_unmatched_protected(shared: &Shared, base_paths: &[String]) {
    let plan = &shared.plan;
    let unmatched = plan.protected.unmatched(base_paths);
    if unmatched.len() == plan.config.verify.protected.len() && !unmatched.is_empty() {
        shared.bench.emitter.emit(RunEvent::Warning {
            message: "no file of the base matches verify.protected: candidates' edits to tests are not being set aside".into(),
        });
        return;
    }
    for glob in unmatched.iter().filter(|g| !plan.default_protected.contains(g)) {
        shared.bench.emitter.emit(RunEvent::Warning {
            message: format!("verify.protected: `{glob}` matches no file of the base"),
        });
    }
}
