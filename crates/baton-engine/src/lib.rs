//! One baton run, from plan to scoreboard, and what follows it (merge, cleanup, recovery).
//!
//! # Theory of operation
//!
//! [`run`] checks everything it can before it changes anything (the repository, the base, a
//! dirty tree, every agent, every parser), so bad input leaves no trace. Then it pins the base
//! under `refs/baton/runs/<run>/base` and goes through the phases in order:
//!
//! 1. **provision**: one workspace per candidate (and one for the baseline), in parallel;
//! 2. **agents**: at most `jobs` at once, each supervised by `baton-exec`; the moment an agent
//!    ends, whatever the outcome, its workspace is committed to `refs/baton/runs/<run>/<cand>`;
//! 3. **verify**: the baseline and every distinct candidate tree (protected paths put back from
//!    the base), at most `jobs` at once;
//! 4. **rank**: pure, in `baton-rank`.
//!
//! Every step emits [`RunEvent`]s into one channel. A single recorder task owns the store and
//! the reporter: it writes each event to SQLite and then hands it to the front end, so what is
//! shown is what is stored. Cancellation arrives through [`baton_exec::Cancel`]: the first
//! level stops agents and stages gracefully and skips what has not started; the second kills.
//! Work is collected before any workspace is removed.

mod check;
mod error;
mod merge;
mod paths;
mod recover;
mod run;

pub use check::{StageCheck, check_stages};
pub use error::EngineError;
pub use merge::{MergeRequest, Merged, merge};
pub use paths::{default_workspace_root, run_workspace_dir};
pub use recover::{CleanReport, Recovered, clean, find_run, recover_abandoned};
pub use run::{RunOutcome, RunRequest, run};

/// The ref a candidate's work lives on.
pub fn candidate_ref(run: &baton_core::RunId, candidate: &baton_core::CandidateId) -> String {
    format!("refs/baton/runs/{run}/{candidate}")
}

/// The ref that pins a run's base commit.
pub fn base_ref(run: &baton_core::RunId) -> String {
    format!("refs/baton/runs/{run}/base")
}
