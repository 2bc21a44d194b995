//! One run, from a checked [`RunPlan`] to its scoreboard: the run is created (its id, its
//! artifacts, its base pinned under a ref), the dispatcher does the work, and whatever happens,
//! the workspaces are cleaned up as configured and the run is recorded as finished.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use baton_core::{RunEvent, RunId, RunStatus, Scoreboard};
use baton_exec::{Cancel, CancelHandle, CancelLevel};
use baton_git::Repo;
use baton_store::Store;
use baton_workspace::Workspace;

use crate::context::{Bench, Shared};
use crate::decide::{Decider, EvidenceDecider};
use crate::dispatcher;
use crate::events::{Clock, Recorder, Reporter, watch_cancel};
use crate::plan::RunPlan;
use crate::{EngineError, base_ref};

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

/// Runs a planned run: agents, verification and the decision from the evidence.
pub async fn run(
    plan: RunPlan,
    store: Store,
    cancel: Cancel,
    reporter: Reporter,
) -> Result<RunOutcome, EngineError> {
    run_with(plan, store, cancel, reporter, &EvidenceDecider).await
}

/// [`run`] with another [`Decider`].
pub async fn run_with(
    plan: RunPlan,
    store: Store,
    cancel: Cancel,
    reporter: Reporter,
    decider: &dyn Decider,
) -> Result<RunOutcome, EngineError> {
    let started = Instant::now();
    let repo = plan.repo.clone();
    let git = repo.git();

    // ---- From here on, the run exists.
    let run_id = plan.run_id.clone().unwrap_or_else(|| new_run_id(plan.clock.as_ref()));
    let artifacts = store.artifacts_dir(&run_id);
    std::fs::create_dir_all(&artifacts).map_err(EngineError::io(&artifacts))?;
    let base = if plan.dirty.is_empty() {
        plan.base.clone()
    } else {
        let message = format!("baton: snapshot of uncommitted changes for run {run_id}");
        git.snapshot_worktree(&plan.head, &message, &artifacts)?
    };
    git.update_ref(&base_ref(&run_id), &base, None)?;
    let ws_dir = plan.workspace_root.join(run_id.as_str());
    let mut slots = crate::slot::plan_slots(&plan);

    let (recorder, emitter) =
        Recorder::start(run_id.clone(), store, reporter, plan.clock.clone(), plan.redactor.clone());
    let watcher = tokio::spawn(watch_cancel(cancel.clone(), emitter.clone()));
    emitter.emit(RunEvent::RunStarted {
        run: run_id.clone(),
        base: base.to_string(),
        base_rev: plan.base_rev.clone(),
        target_branch: plan.target_branch.clone(),
        target_commit: plan.target_commit.as_ref().map(ToString::to_string),
        repo_root: repo.root.to_string_lossy().into_owned(),
        workspace_root: ws_dir.to_string_lossy().into_owned(),
        task: plan.task.clone(),
        candidates: crate::slot::announced(&slots),
    });
    announce(&plan, &slots, &base, &emitter);
    let keep_workspaces = plan.config.run.keep_workspaces;
    let containment = plan.containment.clone();
    // The units see the user's cancel and the run's own stop as one.
    let (stop, units_cancel) = CancelHandle::new();
    let forward = tokio::spawn(forward_cancel(cancel.clone(), stop.clone()));
    let shared = Arc::new(Shared {
        plan,
        run: run_id.clone(),
        base,
        ws_dir: ws_dir.clone(),
        bench: Bench { artifacts, emitter: emitter.clone(), cancel: units_cancel, containment },
        stop,
    });
    let result = dispatcher::dispatch(shared.clone(), &mut slots, decider).await;

    // ---- Cleanup: work is on refs by now; workspaces go unless kept.
    let cancelled = cancel.is_cancelled();
    let failed = result.is_err();
    if cancelled || failed || !keep_workspaces {
        remove_workspaces(&slots, &repo, &ws_dir, &shared.base, &emitter).await;
    }
    let (scoreboard, verifications) = match &result {
        Ok(d) => (d.scoreboard.clone(), d.verifications),
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
    forward.abort();
    drop(shared);
    drop(emitter);
    let recorded = recorder.finish().await;
    baton_exec::reap_strays();
    result?;
    recorded?;
    Ok(RunOutcome { run: run_id, status, scoreboard, verifications, candidates: slots.len() })
}

/// Raises `stop` to every level `cancel` reaches.
async fn forward_cancel(mut cancel: Cancel, stop: CancelHandle) {
    let mut level = CancelLevel::None;
    while level < CancelLevel::Force {
        level = cancel.raised_above(level).await;
        stop.raise(level);
    }
}

/// Removes every workspace of a run (the run's directory under the workspace root) but those
/// whose roots are in `keep`; returns how many it removed.
pub(crate) fn remove_run_workspaces(repo: &Repo, dir: &Path, keep: &[std::path::PathBuf]) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let root = entry.path();
        if keep.contains(&root) {
            continue;
        }
        let gone = match Workspace::reopen(repo, &root) {
            Some(ws) => ws.remove(),
            None => std::fs::remove_dir_all(&root),
        };
        removed += usize::from(gone.is_ok());
    }
    let _ = std::fs::remove_dir(dir);
    removed
}

/// `20261124-131107-3fa2`: sortable by time, unique enough to never collide in one repository.
fn new_run_id(clock: &dyn Clock) -> RunId {
    let now = clock.now();
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

/// What the run says before any work: its notes and warnings, the hidden tests it lays over,
/// and the snapshot of uncommitted changes it runs on.
fn announce(
    plan: &RunPlan,
    slots: &[crate::slot::Slot],
    base: &baton_git::Oid,
    emitter: &crate::events::Emitter,
) {
    for message in plan.notes.iter().cloned().chain(crate::endpoint::notes(slots)) {
        emitter.emit(RunEvent::Note { message });
    }
    for message in &plan.warnings {
        emitter.emit(RunEvent::Warning { message: message.clone() });
    }
    if let Some(h) = &plan.hidden {
        emitter.emit(RunEvent::HiddenTests {
            source: h.spec.clone(),
            files: h.files.clone(),
            left_out: h.left_out.clone(),
        });
    }
    if !plan.dirty.is_empty() {
        emitter.emit(RunEvent::Warning {
            message: format!(
                "running on a snapshot of {} uncommitted {} (commit {})",
                plan.dirty.len(),
                baton_core::plural(plan.dirty.len(), "change", "changes"),
                base.short()
            ),
        });
    }
}

/// Removes the run's workspaces, but keeps (and names) a candidate's whose work could not be
/// collected while its tree holds any.
async fn remove_workspaces(
    slots: &[crate::slot::Slot],
    repo: &Repo,
    ws_dir: &Path,
    base: &baton_git::Oid,
    emitter: &crate::events::Emitter,
) {
    // A candidate whose work could not be collected keeps its workspace, if it holds any.
    let uncollected: Vec<(baton_core::CandidateId, Workspace)> = slots
        .iter()
        .filter(|s| s.commit.is_none())
        .filter_map(|s| Some((s.id.clone(), s.workspace.clone()?)))
        .collect();
    let (dir, repo, base) = (ws_dir.to_owned(), repo.clone(), base.clone());
    let kept = tokio::task::spawn_blocking(move || {
        let kept: Vec<(baton_core::CandidateId, Workspace)> = uncollected
            .into_iter()
            .filter(|(_, ws)| ws.holds_unsaved_work(&repo, &base, &base).unwrap_or(true))
            .collect();
        let roots: Vec<std::path::PathBuf> = kept.iter().map(|(_, ws)| ws.root.clone()).collect();
        remove_run_workspaces(&repo, &dir, &roots);
        kept
    })
    .await
    .unwrap_or_default();
    for (id, ws) in kept {
        emitter.emit(RunEvent::Warning {
            message: format!(
                "kept the workspace of {id}: its work is on no ref; copy what you want to keep from {} (`baton clean --force` removes it)",
                ws.tree.display()
            ),
        });
    }
}
