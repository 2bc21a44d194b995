//! The provision unit: a workspace per candidate, and one for the base, from the run's base
//! commit, in parallel.

use std::sync::Arc;
use std::time::Instant;

use baton_core::{CandidateId, Phase, RunEvent};
use baton_git::GitError;
use baton_workspace::Workspace;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::EngineError;
use crate::context::Shared;
use crate::dispatcher::Slot;

/// Creates every candidate's workspace (and the baseline's, when there is anything to verify)
/// in parallel. A failure ends the run before any agent starts.
pub(crate) async fn provision(
    shared: &Arc<Shared>,
    slots: &mut [Slot],
    need_base: bool,
) -> Result<Option<Workspace>, EngineError> {
    let plan = &shared.plan;
    let provider = plan.workspaces.clone();
    let total = slots.len() + usize::from(need_base);
    let emitter = &shared.bench.emitter;
    emitter.emit(RunEvent::PhaseStarted { phase: Phase::Provision, total });
    let limit = Arc::new(Semaphore::new(plan.jobs.max(2)));
    let mut set = JoinSet::new();
    let names: Vec<Option<CandidateId>> =
        slots.iter().map(|s| Some(s.id.clone())).chain(need_base.then_some(None)).collect();
    for (i, name) in names.into_iter().enumerate() {
        let (repo, base, limit, provider) =
            (plan.repo.clone(), shared.base.clone(), limit.clone(), provider.clone());
        let who = name.as_ref().map(CandidateId::as_str).unwrap_or("base").to_owned();
        let dir = shared.ws_dir.join(&who);
        let branch = format!("baton/{}/{who}", shared.run);
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let t = Instant::now();
            let ws = tokio::task::spawn_blocking(move || provider.create(&repo, &dir, &base, &branch))
                .await
                .unwrap_or_else(|e| Err(GitError::Spawn(std::io::Error::other(e.to_string()))));
            (i, ws, t.elapsed().as_millis() as u64)
        });
    }
    let mut base_ws = None;
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        let Ok((i, ws, millis)) = joined else { continue };
        match ws {
            Ok(ws) if i < slots.len() => {
                emitter.emit(RunEvent::WorkspaceReady {
                    candidate: slots[i].id.clone(),
                    path: ws.tree.to_string_lossy().into_owned(),
                    millis,
                });
                slots[i].workspace = Some(ws);
            }
            Ok(ws) => base_ws = Some(ws),
            Err(e) => {
                first_error.get_or_insert(EngineError::from(e));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(base_ws),
    }
}
