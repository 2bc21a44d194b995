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
    #[error(
        "the working tree has uncommitted changes ({}): commit or stash them, or pass --include-dirty to run on a snapshot of them",
        summarize(paths)
    )]
    DirtyTree { paths: Vec<String> },
    #[error(
        "no agents to run: pass --agent (e.g. --agent command:./fix.sh or --agent patch:fix.diff) or set run.agents in baton.toml"
    )]
    NoAgents,
    #[error("run `{0}` does not exist (see `baton status` for the runs there are)")]
    UnknownRun(String),
    #[error("`{prefix}` matches {} runs ({}); give more of the id", matches.len(), matches.join(", "))]
    AmbiguousRun { prefix: String, matches: Vec<String> },
    #[error("there are no runs yet; start one with `baton run`")]
    NoRuns,
    #[error("run {run} has no candidate `{candidate}` (it has {})", known.join(", "))]
    UnknownCandidate { run: String, candidate: String, known: Vec<String> },
    #[error("{0}")]
    Refused(String),
    /// `merge` of a run that was merged before.
    #[error("run {run} is already merged{}: commit {commit}", candidate.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    AlreadyMerged { run: String, candidate: Option<String>, commit: String },
    /// Something the user gave does not exist or does not fit.
    #[error("{0}")]
    BadInput(String),
    #[error("the disk is full: {0}")]
    DiskFull(String),
    #[error("cannot write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
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
