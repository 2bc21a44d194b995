//! The agent unit: one candidate's agent runs in its workspace, supervised, and whatever it
//! leaves is committed to the candidate's ref the moment it ends, whatever the outcome.

use std::sync::Arc;
use std::time::Instant;

use baton_agents::{Agent, AgentContext, Plan, apply_patch};
use baton_core::{AgentOutcome, RunEvent};
use baton_exec::{Cancel, Executor};
use baton_git::{FileChange, Oid, Repo};
use baton_workspace::Workspace;

use crate::EngineError;
use crate::events::Emitter;

/// One agent's turn, then the collection of its work.
pub(crate) struct AgentJob {
    pub(crate) agent: Arc<dyn Agent>,
    pub(crate) ctx: AgentContext,
    pub(crate) ws: Workspace,
    pub(crate) repo: Repo,
    pub(crate) base: Oid,
    pub(crate) reference: String,
    pub(crate) emitter: Emitter,
    pub(crate) cancel: Cancel,
    pub(crate) executor: Arc<dyn Executor>,
    /// Keeps secrets out of the commit message, which quotes the outcome.
    pub(crate) redactor: Arc<baton_exec::Redactor>,
    /// What the agent's process may touch, where the executor confines it.
    pub(crate) confine: Option<baton_exec::Confinement>,
    /// The endpoint it is held to, if that is all it may reach.
    pub(crate) endpoint: Option<crate::endpoint::Held>,
}

pub(crate) struct AgentResult {
    pub(crate) outcome: AgentOutcome,
    pub(crate) commit: Option<Oid>,
    pub(crate) changes: Vec<FileChange>,
    pub(crate) collect_error: Option<EngineError>,
}

impl AgentJob {
    pub(crate) async fn run(self) -> AgentResult {
        let id = self.ctx.candidate.clone();
        self.emitter.emit(RunEvent::AgentStarted { candidate: id.clone() });
        let t = Instant::now();
        let outcome = match self.agent.plan(&self.ctx) {
            Err(e) => AgentOutcome::SpawnFailed { message: e.to_string() },
            Ok(Plan::Process { mut spec, parser }) => 'process: {
                let mut confine = self.confine.clone();
                // Kept until the process is gone: its only way out.
                let _relay = match (&self.endpoint, confine.as_mut()) {
                    (None, _) => None,
                    (Some(held), Some(c)) => match held.open(&mut spec, c) {
                        Ok(opened) => Some(opened),
                        Err(message) => break 'process AgentOutcome::SpawnFailed { message },
                    },
                    (Some(held), None) => {
                        let message = format!(
                            "it may reach only {}, and nothing confines it to that",
                            held.endpoint.origin()
                        );
                        break 'process AgentOutcome::SpawnFailed { message };
                    }
                };
                spec.confine = confine.map(Box::new);
                let started = |pid| {
                    self.emitter.emit(RunEvent::ProcessStarted {
                        pid,
                        start_ticks: baton_exec::identity_of(pid).map(|i| i.start_ticks),
                        label: format!("agent {id}"),
                    })
                };
                let emit =
                    |activity| self.emitter.emit(RunEvent::AgentActivity { candidate: id.clone(), activity });
                let outcome = baton_agents::drive(
                    self.executor.as_ref(),
                    *spec,
                    parser,
                    self.cancel.clone(),
                    started,
                    emit,
                )
                .await;
                // Its process is gone: what it left in its own HOME (an agent CLI's session
                // transcripts quote what its tools printed) stays with the run's artifacts.
                let (redactor, home) = (self.redactor.clone(), self.ctx.home.clone());
                let _ =
                    tokio::task::spawn_blocking(move || crate::redact::files_under(&redactor, &home)).await;
                outcome
            }
            Ok(Plan::ApplyPatch { patch, source }) => {
                let tree = self.ws.tree.clone();
                let applied = tokio::task::spawn_blocking(move || {
                    apply_patch(&tree, &patch).map_err(|e| e.to_string())
                })
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
        let message = self.redactor.redact(&message).into_owned();
        let collected = tokio::task::spawn_blocking(
            move || -> Result<(Oid, Vec<FileChange>, Option<String>), EngineError> {
                let collected = ws.collect(&base, &message).map_err(EngineError::from_git)?;
                let commit = collected.commit;
                ws.publish(&repo, &commit, &reference).map_err(EngineError::from_git)?;
                let changes = repo.git().diff_files(&base, &commit).map_err(EngineError::from_git)?;
                Ok((commit, changes, collected.git_dir_problem))
            },
        )
        .await
        .unwrap_or_else(|e| Err(EngineError::Failed(format!("collecting {id}: {e}"))));
        match collected {
            Ok((commit, changes, git_dir_problem)) => {
                if let Some(problem) = git_dir_problem {
                    let message =
                        format!("its git directory {problem}: its work was collected from its files");
                    let activity = baton_core::AgentActivity::Warning { message };
                    self.emitter.emit(RunEvent::AgentActivity { candidate: id.clone(), activity });
                }
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
