//! Where candidates work: isolated checkouts of the base commit, one per candidate and one for
//! the baseline, behind one [`WorkspaceProvider`] interface.
//!
//! Every workspace keeps its git directory beside its tree, not inside it, so an agent that
//! deletes or rewrites `.git` cannot lose its own work; baton addresses it with explicit
//! `--git-dir`/`--work-tree`. Three kinds exist on one machine today ([`WorkspaceKind`]):
//! a `git clone --shared` (own refs, shared objects), a `git worktree`, and a copy-on-write
//! overlay on a per-commit snapshot (`overlay.rs`). A container or a job on a cluster engine
//! becomes another provider.

mod overlay;
mod workspace;

use std::path::Path;

use baton_git::{GitError, Oid, Repo};

pub use overlay::{overlay_supported, remove_leftovers, remove_unused_snapshots};
pub use workspace::{Collected, Workspace, WorkspaceKind};

/// Makes workspaces of one kind.
pub trait WorkspaceProvider: Send + Sync {
    /// The kind it makes, as the run header and `doctor` name it.
    fn kind(&self) -> WorkspaceKind;

    /// A workspace at `root` (which must not exist) with `commit` checked out on a new local
    /// branch `branch`.
    fn create(&self, repo: &Repo, root: &Path, commit: &Oid, branch: &str) -> Result<Workspace, GitError>;
}

/// Workspaces on this machine, of one kind.
#[derive(Debug, Clone, Copy)]
pub struct Local(pub WorkspaceKind);

impl WorkspaceProvider for Local {
    fn kind(&self) -> WorkspaceKind {
        self.0
    }

    fn create(&self, repo: &Repo, root: &Path, commit: &Oid, branch: &str) -> Result<Workspace, GitError> {
        Workspace::create(repo, self.0, root, commit, branch)
    }
}

/// The fastest kind this process can make under `dir`: an overlay where it can mount one,
/// else a clone.
pub fn best_local(dir: &Path) -> WorkspaceKind {
    let _ = std::fs::create_dir_all(dir);
    if overlay_supported(dir) { WorkspaceKind::Overlay } else { WorkspaceKind::Clone }
}
