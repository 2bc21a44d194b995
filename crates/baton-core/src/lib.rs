//! The nouns of baton, shared by every other crate.
//!
//! This crate has no I/O and depends on nothing of ours. It holds the identifiers of runs and
//! candidates, the task, the exhaustive outcome enums of agents and processes, the evidence that
//! verification produces, the ranking result, the [`RunEvent`] stream that every reporter
//! consumes, and the process exit codes that the CLI documents.

mod event;
mod evidence;
mod exit;
mod ids;
mod outcome;
mod repo;
mod scoreboard;
mod task;

pub use event::{AgentActivity, Phase, PlannedCandidate, RunEvent, RunStatus, Stamped, Subject};
pub use evidence::{
    ExpectationEdit, Metric, ProbeOutcome, StageComparison, StageKind, StageResult, StageStatus, TestCase,
    TestChange, TestDelta, TestPart, TestStatus,
};
pub use exit::ExitCode;
pub use ids::{CandidateId, IdError, RunId};
pub use outcome::{AgentOutcome, TimeoutKind};
pub use repo::{RepoChange, RepoChangeFix};
pub use scoreboard::{
    CandidateScore, Confidence, DecidedBy, Decision, Gate, GateName, MatrixCell, MatrixRow, PinnedTests,
    Scoreboard, Separation,
};
pub use task::Task;

/// One line of text in the plural form that fits `n`: `plural(1, "file", "files")`.
///
/// The single place where user-facing text chooses between singular and plural.
pub fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// An error and its causes in one line, `: `-joined; a cause whose words the message already
/// holds is not repeated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let cause = s.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = s.source();
    }
    text
}

/// The user's cache directory: `$XDG_CACHE_HOME`, else `~/.cache`; `None` when neither is set.
pub fn user_cache_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(std::path::PathBuf::from).or_else(|| {
        std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| std::path::PathBuf::from(h).join(".cache"))
    })
}
