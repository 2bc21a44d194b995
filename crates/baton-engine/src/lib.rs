//! One baton run, from plan to scoreboard, and what follows it (merge, cleanup, recovery).
//!
//! # Theory of operation
//!
//! [`plan`] checks everything it can before anything changes (the repository, the base, a dirty
//! tree, every agent at once, every parser, the hidden tests) and resolves the request into a
//! [`RunPlan`]: plain data, nothing left to look up. [`run`] creates the run (its id, its
//! artifacts, its base pinned under `refs/baton/runs/<run>/base`) and hands the work to the
//! dispatcher (`dispatcher.rs`), the one owner of every candidate's state, which starts each
//! unit as soon as what it needs exists:
//!
//! - **provision** a workspace per candidate and one for the base (`dispatcher.rs`);
//! - **agent**: one candidate's agent, supervised by `baton-exec`, its work committed to
//!   `refs/baton/runs/<run>/<cand>` the moment it ends, whatever the outcome (`agent.rs`);
//! - **verify** one subject, base or candidate: its stages, then its probes (`verify.rs`), at
//!   most `jobs` at once; the base while the agents run and each candidate as soon as its agent
//!   is done, where verification does not depend on the other candidates;
//! - the **matrix** of the tests candidates wrote (`matrix.rs`), once they are all known;
//! - the **evidence** (`evidence.rs`) and the **decision**, behind the [`Decider`] seam.
//!
//! Whenever an agent ends, and once the work is done, the **guard** (`guard.rs`) compares the
//! user's repository (HEAD, refs, index, working tree) with its state before the agents
//! started: anything changed ends the run as failed, saying what and how to undo it.
//!
//! Every step emits [`baton_core::RunEvent`]s, stamped by the run's [`Clock`], into one channel.
//! A single recorder task owns the store and the reporter (`events.rs`): it writes each event to
//! SQLite and then hands it to the front end, so what is shown is what is stored; it redacts
//! each event first, as the run's executor redacts every process's log (`redact.rs`). Cancellation
//! arrives through [`baton_exec::Cancel`]: the first level stops agents and stages gracefully
//! and skips what has not started; the second kills. Work is collected before any workspace is
//! removed.

mod agent;
mod check;
mod contain;
mod context;
mod decide;
mod dispatcher;
mod endpoint;
mod error;
mod events;
mod evidence;
mod guard;
mod hidden;
mod matrix;
mod merge;
mod paths;
mod plan;
mod provision;
mod recover;
mod redact;
mod run;
mod sandbox;
mod slot;
mod util;
mod verify;

pub use check::{StageCheck, check_stages};
pub use decide::{Decider, DecisionInput, EvidenceDecider};
pub use error::{EngineError, HiddenTestsProblem, Refusal};
pub use events::{Clock, FixedClock, Reporter, SystemClock};
pub use merge::{MergeRequest, Merged, merge};
pub use paths::{default_workspace_root, run_workspace_dir};
pub use plan::{MAX_CANDIDATES, RunPlan, RunRequest, detect_stages, plan};
pub use recover::{
    CleanReport, KeptWorkspace, Recovered, clean, clean_in, find_run, recover_abandoned, repo_workspaces,
    tidy,
};
pub use run::{RunOutcome, run, run_with};
pub use sandbox::{SandboxChoice, Sandboxes};

/// The ref a candidate's work lives on.
pub fn candidate_ref(run: &baton_core::RunId, candidate: &baton_core::CandidateId) -> String {
    format!("refs/baton/runs/{run}/{candidate}")
}

/// The ref that pins a run's base commit.
pub fn base_ref(run: &baton_core::RunId) -> String {
    format!("refs/baton/runs/{run}/base")
}
