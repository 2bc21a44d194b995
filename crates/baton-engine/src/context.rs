//! What every unit of a run shares: the plan, the run's identity, and where units report.

use std::path::PathBuf;

use baton_core::RunId;
use baton_exec::Cancel;
use baton_git::Oid;

use crate::events::Emitter;
use crate::plan::RunPlan;

/// What every unit of a run shares.
pub(crate) struct Shared {
    pub(crate) plan: RunPlan,
    pub(crate) run: RunId,
    /// The commit candidates start from (a snapshot, with `--include-dirty`).
    pub(crate) base: Oid,
    pub(crate) ws_dir: PathBuf,
    pub(crate) bench: Bench,
    /// Stops the run as the user's first Ctrl-C would (the guard, when the user's repository
    /// changed): raises the level every unit's [`Cancel`] sees.
    pub(crate) stop: baton_exec::CancelHandle,
}

/// What a verification unit shares with the run.
#[derive(Clone)]
pub(crate) struct Bench {
    pub(crate) artifacts: PathBuf,
    pub(crate) emitter: Emitter,
    pub(crate) cancel: Cancel,
    /// What each process may touch.
    pub(crate) containment: crate::contain::Containment,
}
