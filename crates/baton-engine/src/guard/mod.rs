//! The guard: detection of changes to the user's repository that baton did not make.
//!
//! An agent is an arbitrary program with the user's rights: it can write into the user's
//! working tree by absolute path, or run `git update-ref` against the user's repository. Where
//! a sandbox prevents that, this is a cheap second line of defence; where there is none, it is
//! the only one. Before the agents start, [`RepoState::capture`] records the repository as the
//! user left it: HEAD, every ref outside baton's own (`refs/baton/`, and the `baton/` branches
//! of worktree workspaces), the index entries, and every path `git status` lists (untracked
//! files included, ignored ones not) with its content's blob id. Each later capture is compared
//! with that one whenever an agent ends, after the last, and after verification; any difference
//! ends the run as failed, naming the candidates that ran since the last capture that found
//! nothing, what changed, and the commands that put it back. baton restores nothing itself: it
//! cannot tell the user's own edits from an agent's.
//!
//! It stays fast on a big tree: `git status` reads the tree with the index's stat data, and
//! only the paths it lists are hashed, each again only if its stat data changed. The blobs of
//! the first capture are written to the user's object store, so that the content of a file that
//! was uncommitted when the run started can be put back from there.

mod state;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use baton_core::RepoChangeFix;
use baton_git::Repo;
use tokio::sync::mpsc;

use self::state::RepoState;
use crate::EngineError;

/// What one check found.
#[derive(Debug)]
pub(crate) enum Check {
    /// The repository is as it was.
    Unchanged,
    /// Changes made while only tests ran; they are now the state later checks compare with.
    ByTests(Vec<RepoChangeFix>),
    /// The first changes made while agents ran.
    ByAgents(Found),
    /// Agents' changes, found before (see [`Guard::found`] for what they are now).
    Known,
}

/// What a check found: the changes, and the candidates whose agents ran since the last check
/// that found none.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) suspects: BTreeSet<usize>,
    pub(crate) changes: Vec<RepoChangeFix>,
}

/// The run's guard: the state when the agents started, and which agents ran since the last
/// check that found it unchanged. Agents say they start on [`Guard::started`]; the dispatcher
/// calls [`Guard::check`] when one ends and once more when the work is done.
pub(crate) struct Guard {
    repo: Repo,
    exclude: Arc<Vec<Vec<u8>>>,
    start: Arc<RepoState>,
    started_tx: mpsc::UnboundedSender<usize>,
    started_rx: mpsc::UnboundedReceiver<usize>,
    running: BTreeSet<usize>,
    since_clean: BTreeSet<usize>,
    found: Option<Found>,
}

impl Guard {
    /// Records the repository as it is, before any agent starts. `workspace_root` is left out
    /// where it lies inside the repository.
    pub(crate) async fn start(repo: &Repo, workspace_root: &Path) -> Result<Guard, EngineError> {
        let exclude: Vec<Vec<u8>> = workspace_root
            .strip_prefix(&repo.root)
            .ok()
            .filter(|rel| !rel.as_os_str().is_empty())
            .map(|rel| rel.as_os_str().as_bytes().to_vec())
            .into_iter()
            .collect();
        let exclude = Arc::new(exclude);
        let (r, ex) = (repo.clone(), exclude.clone());
        let start = tokio::task::spawn_blocking(move || RepoState::capture(&r, &ex, None, true))
            .await
            .map_err(|e| EngineError::Failed(format!("recording the repository's state: {e}")))??;
        let (started_tx, started_rx) = mpsc::unbounded_channel();
        Ok(Guard {
            repo: repo.clone(),
            exclude,
            start: Arc::new(start),
            started_tx,
            started_rx,
            running: BTreeSet::new(),
            since_clean: BTreeSet::new(),
            found: None,
        })
    }

    /// Where each agent sends its slot's index as it starts.
    pub(crate) fn started(&self) -> mpsc::UnboundedSender<usize> {
        self.started_tx.clone()
    }

    /// Compares the repository with its state at the start, after agent `ended` ended (`None`:
    /// after the last, or after verification). Returns what was found the first time anything
    /// is; later calls bring the changes up to date.
    ///
    /// Changes made while no agent ran since the last check that found none were made by tests
    /// (a test that reaches into the user's checkout, an editable install writing bytecode
    /// there): those are returned as [`Check::ByTests`], once, and become the state later
    /// checks compare with, so that they are never taken for an agent's. Where tests run
    /// beside an agent, a change cannot be told apart from the agent's: it is the agent's.
    pub(crate) async fn check(&mut self, ended: Option<usize>) -> Result<Check, EngineError> {
        while let Ok(i) = self.started_rx.try_recv() {
            self.running.insert(i);
            self.since_clean.insert(i);
        }
        if let Some(i) = ended {
            self.running.remove(&i);
        }
        let (repo, exclude, start) = (self.repo.clone(), self.exclude.clone(), self.start.clone());
        let changes = tokio::task::spawn_blocking(move || {
            RepoState::capture(&repo, &exclude, Some(&start), false).map(|now| start.diff(&now))
        })
        .await
        .map_err(|e| EngineError::Failed(format!("checking the repository's state: {e}")))??;
        let first = self.found.is_none();
        if changes.is_empty() {
            if first {
                self.since_clean = self.running.clone();
            }
            return Ok(Check::Unchanged);
        }
        if first && self.since_clean.is_empty() {
            let (repo, exclude, start) = (self.repo.clone(), self.exclude.clone(), self.start.clone());
            let now =
                tokio::task::spawn_blocking(move || RepoState::capture(&repo, &exclude, Some(&start), true))
                    .await
                    .map_err(|e| EngineError::Failed(format!("checking the repository's state: {e}")))??;
            self.start = Arc::new(now);
            return Ok(Check::ByTests(changes));
        }
        let found =
            self.found.get_or_insert_with(|| Found { suspects: BTreeSet::new(), changes: Vec::new() });
        found.suspects.extend(self.since_clean.iter().copied());
        found.changes = changes;
        Ok(if first { Check::ByAgents(found.clone()) } else { Check::Known })
    }

    /// What the checks found, if anything.
    pub(crate) fn found(&self) -> Option<&Found> {
        self.found.as_ref()
    }
}
