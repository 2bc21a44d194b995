use std::path::PathBuf;

use baton_git::GitError;

/// Why a run, merge or cleanup could not be done. The CLI maps each to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Git(GitError),
    #[error(transparent)]
    Store(#[from] baton_store::StoreError),
    #[error(transparent)]
    Agent(#[from] baton_agents::AgentError),
    #[error(transparent)]
    Setup(#[from] baton_verify::SetupError),
    #[error("unknown strategy `{name}` (known: {})", known.join(", "))]
    UnknownStrategy { name: String, known: Vec<String> },
    #[error("the working tree has uncommitted changes ({})", summarize(paths))]
    DirtyTree { paths: Vec<String> },
    #[error("no agents to run")]
    NoAgents,
    #[error(
        "{agents} {} x {strategies} {} x {repeats} {} = {} candidates: one run has at most {}",
        baton_core::plural(*agents, "agent", "agents"),
        baton_core::plural(*strategies, "strategy", "strategies"),
        baton_core::plural(*repeats, "repeat", "repeats"),
        agents * strategies * repeats,
        crate::plan::MAX_CANDIDATES
    )]
    TooManyCandidates { agents: usize, strategies: usize, repeats: usize },
    #[error("run `{0}` does not exist")]
    UnknownRun(String),
    #[error("`{prefix}` matches {} runs ({})", matches.len(), matches.join(", "))]
    AmbiguousRun { prefix: String, matches: Vec<String> },
    #[error("there are no runs yet")]
    NoRuns,
    #[error("run {run} has no candidate `{candidate}` (it has {})", known.join(", "))]
    UnknownCandidate { run: String, candidate: String, known: Vec<String> },
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// `merge` of a run that was merged before.
    #[error("run {run} is already merged{}: commit {commit}", candidate.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    AlreadyMerged { run: String, candidate: Option<String>, commit: String },
    #[error("hidden tests `{spec}`: {problem}")]
    HiddenTests { spec: String, problem: HiddenTestsProblem },
    /// The sandbox asked for cannot be had, or its settings are wrong.
    #[error("{0}")]
    Sandbox(String),
    #[error("the disk is full: {0}")]
    DiskFull(String),
    /// The user's repository changed while the run worked, and not by baton. `candidates` ran
    /// since the last check that found it unchanged (`c2 (agent)`); none when it changed while
    /// candidates were verified.
    #[error(
        "your repository changed while {}: {}{}",
        if candidates.is_empty() { "candidates were verified".to_owned() } else { format!("{} ran", candidates.join(", ")) },
        changes.first().map(|c| c.change.to_string()).unwrap_or_default(),
        match changes.len() { 0 | 1 => String::new(), n => format!(" (and {} more {})", n - 1, baton_core::plural(n - 1, "change", "changes")) }
    )]
    RepositoryChanged { root: PathBuf, candidates: Vec<String>, changes: Vec<baton_core::RepoChangeFix> },
    #[error("cannot write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Something inside baton went wrong (a task that panicked, a recorder that stopped).
    #[error("{0}")]
    Failed(String),
}

/// Why baton will not go ahead: to protect the user's work, or because what they asked for
/// cannot be done as asked. The CLI adds what to do about each.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "run {run} is already merged ({merged} as {commit}): its target moved with that merge, so {wanted} would land on changes it was not verified with"
    )]
    MergedOther { run: String, merged: String, commit: String, wanted: String },
    #[error("run {run} has no winner")]
    NoWinner { run: String },
    #[error("candidate {candidate} of run {run} was never verified: {why}")]
    NeverVerified { run: String, candidate: String, why: &'static str },
    #[error("candidate {candidate} of run {run} has no collected work to merge")]
    NoWork { run: String, candidate: String },
    #[error("HEAD was detached when run {run} started, so it has no target branch")]
    NoTarget { run: String },
    #[error("branch `{target}` does not exist")]
    NoBranch { target: String },
    #[error(
        "branch `{target}` moved since run {run} started (it was {expected}, it is {current}): baton does not merge onto changes it did not verify"
    )]
    TargetMoved { target: String, run: String, expected: String, current: String },
    #[error(
        "the working tree has uncommitted changes ({}){}",
        summarize(paths),
        if *differ_from_snapshot { " that differ from the snapshot the run started from" } else { "" }
    )]
    Uncommitted { paths: Vec<String>, target: String, differ_from_snapshot: bool },
    #[error("candidate {candidate} changes lines of your uncommitted work in {}", paths.join(", "))]
    TouchesUncommitted { candidate: String, paths: Vec<String> },
    #[error("candidate {candidate} conflicts with `{target}` in {}", paths.join(", "))]
    Conflicts { candidate: String, target: String, paths: Vec<String> },
    #[error("run {run} is still running")]
    StillRunning { run: String },
}

/// What is wrong with the hidden tests the user named.
#[derive(Debug, thiserror::Error)]
pub enum HiddenTestsProblem {
    #[error("there is no such directory or file, and it names no commit")]
    NotFound,
    #[error("cannot read the directory: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("the patch does not apply to the base {base}: {detail}")]
    PatchDoesNotApply { base: String, detail: String },
    #[error("it holds no file")]
    Empty,
    #[error(
        "none of the {} {} it holds is a test, by verify.protected or by its name: {}",
        files.len(),
        baton_core::plural(files.len(), "file", "files"),
        files.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
    )]
    NoTests { files: Vec<String> },
}

fn summarize(paths: &[String]) -> String {
    let shown: Vec<&str> = paths.iter().take(3).map(String::as_str).collect();
    match paths.len().saturating_sub(3) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

impl EngineError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> EngineError {
        let path = path.into();
        move |source| {
            if source.raw_os_error() == Some(28) {
                EngineError::DiskFull(format!("cannot write {}", path.display()))
            } else {
                EngineError::Io { path, source }
            }
        }
    }

    /// Git errors caused by a full disk become [`EngineError::DiskFull`].
    pub(crate) fn from_git(e: GitError) -> EngineError {
        e.into()
    }
}

impl From<GitError> for EngineError {
    /// A full disk is its own error, whichever git command ran into it.
    fn from(e: GitError) -> EngineError {
        if e.is_disk_full() { EngineError::DiskFull(e.to_string()) } else { EngineError::Git(e) }
    }
}
