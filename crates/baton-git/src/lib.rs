//! git, run as a subprocess with a fixed environment.
//!
//! Every call goes through [`Git::command`]: an explicit directory, `LC_ALL=C`, no prompts, no
//! user hooks or fsmonitor, no inherited `GIT_DIR`-style variables, porcelain or plumbing
//! output only, arguments as a vector (never a shell string). Commits that baton makes for
//! itself carry a fixed identity; the squash commit of a merge carries the user's.
//!
//! [`Git::split`] addresses a checkout whose git directory lives beside the tree, not inside it,
//! with explicit `--git-dir`/`--work-tree`: how baton's workspaces (crate `baton-workspace`)
//! keep an agent that deletes or rewrites `.git` from losing its own work.

mod error;
mod repo;

pub use error::GitError;
pub use repo::{ChangeKind, FileChange, Git, MergeOutcome, Oid, Repo};

/// Identity of the commits baton writes itself (candidate snapshots).
pub const BATON_NAME: &str = "baton";
pub const BATON_EMAIL: &str = "baton@localhost";
