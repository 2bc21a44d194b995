use std::path::PathBuf;

/// What went wrong talking to git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{} is not inside a git repository", path.display())]
    NotARepository { path: PathBuf },
    #[error("{} is a bare repository: baton needs a working tree (clone it, or add one with git worktree add)", path.display())]
    BareRepository { path: PathBuf },
    #[error("the repository at {} has no commits yet", path.display())]
    NoCommits { path: PathBuf },
    #[error("`{rev}` does not name a commit in this repository")]
    BadRevision { rev: String },
    #[error("ref {name} moved: expected {expected}, found {found}")]
    RefMoved { name: String, expected: String, found: String },
    #[error("`git {args}` failed{}: {}", code.map(|c| format!(" (exit {c})")).unwrap_or_default(), stderr.trim())]
    Failed { args: String, code: Option<i32>, stderr: String },
    #[error("cannot run git")]
    Spawn(#[source] std::io::Error),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("git printed something unexpected for `git {args}`: {output}")]
    Unexpected { args: String, output: String },
}

impl GitError {
    /// Whether the failure came from a full disk (so the caller can say so plainly).
    pub fn is_disk_full(&self) -> bool {
        match self {
            GitError::Failed { stderr, .. } => {
                stderr.contains("No space left on device") || stderr.contains("Disk quota exceeded")
            }
            GitError::Spawn(e) | GitError::Io { source: e, .. } => e.raw_os_error() == Some(28),
            _ => false,
        }
    }
}
