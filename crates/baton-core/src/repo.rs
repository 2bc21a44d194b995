//! Changes to the user's repository that no command of baton's made: what the engine's guard
//! reports when an agent (or a test it runs) wrote to the user's refs, HEAD, index or working
//! tree while a run worked.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One change, found by comparing the repository with how it was when the agents started.
/// Commits are full ids; paths are relative to the repository's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RepoChange {
    /// HEAD names another branch (`refs/heads/main`) or another commit.
    Head {
        was: String,
        now: String,
    },
    /// A ref points elsewhere. A symbolic ref's value reads `ref: <target>`.
    RefMoved {
        name: String,
        was: String,
        now: String,
    },
    RefCreated {
        name: String,
        now: String,
    },
    RefDeleted {
        name: String,
        was: String,
    },
    /// What the index holds for these paths changed (staged, added or removed).
    Index {
        paths: Vec<String>,
    },
    FileCreated {
        path: String,
    },
    FileModified {
        path: String,
    },
    FileDeleted {
        path: String,
    },
}

impl fmt::Display for RepoChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepoChange::Head { was, now } => write!(f, "HEAD moved from {was} to {now}"),
            RepoChange::RefMoved { name, was, now } => write!(f, "{name} moved from {was} to {now}"),
            RepoChange::RefCreated { name, now } => write!(f, "new ref {name} at {now}"),
            RepoChange::RefDeleted { name, was } => write!(f, "{name} was deleted (it was at {was})"),
            RepoChange::Index { paths } => {
                let shown: Vec<&str> = paths.iter().take(5).map(String::as_str).collect();
                write!(f, "the index changed at {}", shown.join(", "))?;
                match paths.len().saturating_sub(shown.len()) {
                    0 => Ok(()),
                    more => write!(f, " and {more} more {}", crate::plural(more, "path", "paths")),
                }
            }
            RepoChange::FileCreated { path } => write!(f, "{path} was created in the working tree"),
            RepoChange::FileModified { path } => write!(f, "{path} was modified in the working tree"),
            RepoChange::FileDeleted { path } => write!(f, "{path} was deleted from the working tree"),
        }
    }
}

/// A change and the commands, run at the repository's root in the order given (refs and HEAD,
/// then the index, then files), that put it back as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoChangeFix {
    #[serde(flatten)]
    pub change: RepoChange,
    pub undo: Vec<String>,
}
