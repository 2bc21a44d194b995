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

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use baton_core::{RepoChange, RepoChangeFix};
use baton_git::{Git, GitError, Oid, Repo};
use tokio::sync::mpsc;

use crate::EngineError;

/// Refs baton writes in the user's repository while a run works: candidates' refs and the
/// branches of worktree workspaces (of this run or another one running beside it).
const OWN_REFS: &[&str] = &["refs/baton/", "refs/heads/baton/"];

/// More changed index paths than this are put back with one `git read-tree` where that is exact.
const INDEX_PATHS_ONE_BY_ONE: usize = 10;

/// What the repository looked like at one moment: the parts an agent must not change.
#[derive(Debug, Clone)]
pub(crate) struct RepoState {
    /// The branch HEAD names (`refs/heads/main`), or the commit when it is detached.
    head: String,
    /// The commit HEAD resolves to.
    head_commit: Option<Oid>,
    /// Every ref but baton's own: its commit, or `ref: <target>` for a symbolic one.
    refs: BTreeMap<String, String>,
    /// The index: every entry by path, each `(stage, mode, blob)`.
    index: BTreeMap<Vec<u8>, Vec<IndexEntry>>,
    /// Whether the index held nothing staged (it was HEAD's tree).
    index_is_head: bool,
    /// Every path `git status` lists, as it is on disk.
    files: BTreeMap<Vec<u8>, FileState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexEntry {
    stage: u8,
    mode: String,
    oid: String,
}

/// A path in the working tree.
#[derive(Debug, Clone)]
enum FileState {
    Absent,
    File {
        oid: String,
        exec: bool,
        stat: Stat,
    },
    Link {
        oid: String,
        target: Vec<u8>,
    },
    /// A directory: a submodule, or a repository of its own inside the tree.
    Dir,
}

/// What tells that a file was not written since it was last hashed: `ctime` moves with every
/// write and cannot be set back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

impl FileState {
    fn same(&self, other: &FileState) -> bool {
        match (self, other) {
            (FileState::Absent, FileState::Absent) | (FileState::Dir, FileState::Dir) => true,
            (FileState::File { oid: a, exec: x, .. }, FileState::File { oid: b, exec: y, .. }) => {
                a == b && x == y
            }
            (FileState::Link { oid: a, .. }, FileState::Link { oid: b, .. }) => a == b,
            _ => false,
        }
    }

    /// The working tree's file as the index entry of a path says it is (for a path `git status`
    /// does not list: it matches the index).
    fn of_index(entries: Option<&Vec<IndexEntry>>) -> FileState {
        let Some(e) = entries.and_then(|es| es.iter().find(|e| e.stage == 0)) else {
            return FileState::Absent;
        };
        match e.mode.as_str() {
            "120000" => FileState::Link { oid: e.oid.clone(), target: Vec::new() },
            "160000" => FileState::Dir,
            mode => FileState::File { oid: e.oid.clone(), exec: mode == "100755", stat: Stat::NONE },
        }
    }
}

impl Stat {
    const NONE: Stat = Stat { len: u64::MAX, mtime: (0, 0), ctime: (0, 0), ino: 0 };

    fn of(meta: &std::fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
        }
    }
}

impl RepoState {
    /// The repository as it is now. Paths under `exclude` (relative to the root: a workspace
    /// root configured inside the repository) are left out. A file whose stat data is the same
    /// as in `known` keeps the blob id found there; with `keep_blobs` the blobs hashed are
    /// written to the object store.
    pub(crate) fn capture(
        repo: &Repo,
        exclude: &[Vec<u8>],
        known: Option<&RepoState>,
        keep_blobs: bool,
    ) -> Result<RepoState, GitError> {
        let git = repo.git();
        let head_ref = git.output_with(&["symbolic-ref", "-q", "HEAD"], &[], None).ok();
        let head_commit = git.try_resolve("HEAD")?;
        let head = match head_ref {
            Some(name) => String::from_utf8_lossy(&name).trim().to_owned(),
            None => head_commit.as_ref().map(ToString::to_string).unwrap_or_default(),
        };
        let mut refs = BTreeMap::new();
        let listed =
            git.output_with(&["for-each-ref", "--format=%(refname)%00%(objectname)%00%(symref)"], &[], None)?;
        for line in listed.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let mut parts = line.split(|&b| b == 0).map(|p| String::from_utf8_lossy(p).into_owned());
            let (Some(name), Some(oid), symref) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if OWN_REFS.iter().any(|own| name.starts_with(own)) {
                continue;
            }
            let value = match symref.filter(|s| !s.is_empty()) {
                Some(target) => format!("ref: {target}"),
                None => oid,
            };
            refs.insert(name, value);
        }
        let mut index: BTreeMap<Vec<u8>, Vec<IndexEntry>> = BTreeMap::new();
        for rec in git.output_with(&["ls-files", "--stage", "-z"], &[], None)?.split(|&b| b == 0) {
            // "<mode> <oid> <stage>\t<path>"
            let Some(tab) = rec.iter().position(|&b| b == b'\t') else { continue };
            let (meta, path) = (String::from_utf8_lossy(&rec[..tab]), &rec[tab + 1..]);
            let mut parts = meta.split(' ');
            let (Some(mode), Some(oid), Some(stage)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if excluded(path, exclude) {
                continue;
            }
            index.entry(path.to_vec()).or_default().push(IndexEntry {
                stage: stage.parse().unwrap_or(0),
                mode: mode.to_owned(),
                oid: oid.to_owned(),
            });
        }
        let (paths, staged) = status_paths(&git)?;
        let files =
            file_states(&repo.root, paths.into_iter().filter(|p| !excluded(p, exclude)), known, keep_blobs)?;
        Ok(RepoState { head, head_commit, refs, index, index_is_head: !staged, files })
    }

    /// What changed from `self` (the earlier state) to `now`, each change with the commands
    /// that undo it: HEAD and refs first, then the index, then the files.
    pub(crate) fn diff(&self, now: &RepoState) -> Vec<RepoChangeFix> {
        let mut out = Vec::new();
        if self.head != now.head {
            let undo = if self.head.starts_with("refs/") {
                format!("git symbolic-ref HEAD {}", quote(&self.head))
            } else {
                format!("git update-ref --no-deref HEAD {}", self.head)
            };
            out.push(RepoChangeFix {
                change: RepoChange::Head { was: self.head.clone(), now: now.head.clone() },
                undo: vec![undo],
            });
        }
        let names: BTreeSet<&String> = self.refs.keys().chain(now.refs.keys()).collect();
        for name in names {
            let q = quote(name);
            match (self.refs.get(name), now.refs.get(name)) {
                (Some(was), Some(current)) if was != current => out.push(RepoChangeFix {
                    change: RepoChange::RefMoved {
                        name: name.clone(),
                        was: was.clone(),
                        now: current.clone(),
                    },
                    undo: vec![match (was.strip_prefix("ref: "), current.starts_with("ref: ")) {
                        (Some(target), _) => format!("git symbolic-ref {q} {}", quote(target)),
                        (None, true) => format!("git update-ref --no-deref {q} {was}"),
                        (None, false) => format!("git update-ref {q} {was} {current}"),
                    }],
                }),
                (None, Some(current)) => out.push(RepoChangeFix {
                    change: RepoChange::RefCreated { name: name.clone(), now: current.clone() },
                    undo: vec![if current.starts_with("ref: ") {
                        format!("git symbolic-ref --delete {q}")
                    } else if let Some(branch) = name.strip_prefix("refs/heads/") {
                        format!("git branch -D {}", quote(branch))
                    } else if let Some(tag) = name.strip_prefix("refs/tags/") {
                        format!("git tag -d {}", quote(tag))
                    } else {
                        format!("git update-ref -d {q} {current}")
                    }],
                }),
                (Some(was), None) => out.push(RepoChangeFix {
                    change: RepoChange::RefDeleted { name: name.clone(), was: was.clone() },
                    undo: vec![match was.strip_prefix("ref: ") {
                        Some(target) => format!("git symbolic-ref {q} {}", quote(target)),
                        None => format!("git update-ref {q} {was}"),
                    }],
                }),
                _ => {}
            }
        }
        self.diff_index(now, &mut out);
        self.diff_files(now, &mut out);
        out
    }

    fn diff_index(&self, now: &RepoState, out: &mut Vec<RepoChangeFix>) {
        let paths: BTreeSet<&Vec<u8>> = self.index.keys().chain(now.index.keys()).collect();
        let changed: Vec<&Vec<u8>> =
            paths.into_iter().filter(|p| self.index.get(*p) != now.index.get(*p)).collect();
        if changed.is_empty() {
            return;
        }
        let undo = match &self.head_commit {
            Some(head) if self.index_is_head && changed.len() > INDEX_PATHS_ONE_BY_ONE => {
                vec![format!("git read-tree {head}")]
            }
            _ => changed.iter().flat_map(|p| undo_index_entry(p, self.index.get(*p))).collect(),
        };
        out.push(RepoChangeFix {
            change: RepoChange::Index { paths: changed.iter().map(|p| display(p)).collect() },
            undo,
        });
    }

    fn diff_files(&self, now: &RepoState, out: &mut Vec<RepoChangeFix>) {
        let paths: BTreeSet<&Vec<u8>> = self.files.keys().chain(now.files.keys()).collect();
        for path in paths {
            let (was, is) = (self.file(path), now.file(path));
            if was.same(&is) {
                continue;
            }
            let p = quote(&display(path));
            let mut undo = Vec::new();
            if matches!(is, FileState::Dir) {
                undo.push(format!("rm -rf -- {p}"));
            }
            let change = match (&was, &is) {
                (FileState::Absent, _) => {
                    if !matches!(is, FileState::Dir) {
                        undo.push(format!("rm -f -- {p}"));
                    }
                    RepoChange::FileCreated { path: display(path) }
                }
                (_, FileState::Absent) => RepoChange::FileDeleted { path: display(path) },
                _ => RepoChange::FileModified { path: display(path) },
            };
            let from_index = FileState::of_index(self.index.get(path));
            match &was {
                FileState::Absent => {}
                // It was as the index has it: checking it out again puts it back, once the
                // index is back too.
                was if was.same(&from_index) && !matches!(was, FileState::Dir) => {
                    undo.push(format!("git checkout -- {p}"));
                }
                FileState::File { oid, exec, .. } => {
                    if let Some(parent) = Path::new(std::ffi::OsStr::from_bytes(path)).parent()
                        && !parent.as_os_str().is_empty()
                    {
                        undo.push(format!("mkdir -p -- {}", quote(&parent.to_string_lossy())));
                    }
                    undo.push(format!("git cat-file blob {oid} > {p}"));
                    if *exec {
                        undo.push(format!("chmod +x -- {p}"));
                    } else if matches!(is, FileState::File { exec: true, .. }) {
                        undo.push(format!("chmod -x -- {p}"));
                    }
                }
                FileState::Link { target, .. } => {
                    undo.push(format!("ln -sfn -- {} {p}", quote(&String::from_utf8_lossy(target))));
                }
                FileState::Dir => {
                    undo.push(format!(
                        "# {p} was a directory of its own (a submodule or a repository): put it back by hand"
                    ));
                }
            }
            out.push(RepoChangeFix { change, undo });
        }
    }

    /// A path of the working tree as it was: as listed, or, if `git status` did not list it,
    /// as the index has it.
    fn file(&self, path: &[u8]) -> FileState {
        match self.files.get(path) {
            Some(state) => state.clone(),
            None => FileState::of_index(self.index.get(path)),
        }
    }
}

/// The commands that put back the index entries of `path` as `was` has them.
fn undo_index_entry(path: &[u8], was: Option<&Vec<IndexEntry>>) -> Vec<String> {
    let p = display(path);
    match was.map(Vec::as_slice) {
        None | Some([]) => vec![format!("git update-index --force-remove -- {}", quote(&p))],
        Some([e]) if e.stage == 0 => {
            vec![format!(
                "git update-index --add --cacheinfo {}",
                quote(&format!("{},{},{p}", e.mode, e.oid))
            )]
        }
        Some(entries) => {
            let mut undo = vec![format!("git update-index --force-remove -- {}", quote(&p))];
            for e in entries {
                let line = format!("{} {} {}\t{}", e.mode, e.oid, e.stage, p.replace('%', "%%"));
                undo.push(format!("printf {} | git update-index --index-info", quote(&format!("{line}\\n"))));
            }
            undo
        }
    }
}

/// Every path `git status` lists (changed, added, removed, untracked; not ignored), and whether
/// anything is staged or unmerged.
fn status_paths(git: &Git) -> Result<(BTreeSet<Vec<u8>>, bool), GitError> {
    let out = git.output_with(
        &["status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames"],
        &[],
        None,
    )?;
    let mut paths = BTreeSet::new();
    let mut staged = false;
    let mut fields = out.split(|&b| b == 0);
    while let Some(f) = fields.next() {
        // `1 XY sub mH mI mW hH hI path`, `2 ... Xscore path` + the original path in the next
        // field, `u XY sub m1 m2 m3 mW h1 h2 h3 path`, `? path`.
        let (skip, xy) = match f.first() {
            Some(b'1') => (8, f.get(2)),
            Some(b'2') => (9, f.get(2)),
            Some(b'u') => {
                staged = true;
                (10, None)
            }
            Some(b'?') => (1, None),
            _ => continue,
        };
        if xy.is_some_and(|&x| x != b'.') {
            staged = true;
        }
        let Some(path) = f.splitn(skip + 1, |&b| b == b' ').nth(skip) else { continue };
        // An untracked directory of its own (a nested repository) is listed with a slash.
        paths.insert(path.strip_suffix(b"/").unwrap_or(path).to_vec());
        if f.first() == Some(&b'2')
            && let Some(orig) = fields.next()
        {
            paths.insert(orig.to_vec());
        }
    }
    Ok((paths, staged))
}

/// Each path as it is on disk, files hashed as git would store them (unless `known` has them
/// with the same stat data).
fn file_states(
    root: &Path,
    paths: impl Iterator<Item = Vec<u8>>,
    known: Option<&RepoState>,
    keep_blobs: bool,
) -> Result<BTreeMap<Vec<u8>, FileState>, GitError> {
    let git = Git::at(root);
    let mut files = BTreeMap::new();
    let mut to_hash: Vec<(Vec<u8>, bool, Stat)> = Vec::new();
    for path in paths {
        let full = root.join(std::ffi::OsStr::from_bytes(&path));
        let state = match std::fs::symlink_metadata(&full) {
            Err(_) => FileState::Absent,
            Ok(meta) if meta.is_dir() => FileState::Dir,
            Ok(meta) if meta.file_type().is_symlink() => {
                let target =
                    std::fs::read_link(&full).map(|t| t.as_os_str().as_bytes().to_vec()).unwrap_or_default();
                let mut args = vec!["hash-object", "--stdin"];
                if keep_blobs {
                    args.push("-w");
                }
                let oid = git.output_with(&args, &[], Some(&target))?;
                FileState::Link { oid: String::from_utf8_lossy(&oid).trim().to_owned(), target }
            }
            Ok(meta) => {
                use std::os::unix::fs::PermissionsExt;
                let (stat, exec) = (Stat::of(&meta), meta.permissions().mode() & 0o111 != 0);
                match known.and_then(|k| k.files.get(&path)) {
                    Some(FileState::File { oid, stat: was, .. }) if *was == stat => {
                        FileState::File { oid: oid.clone(), exec, stat }
                    }
                    // `--stdin-paths` reads one path a line.
                    _ if path.contains(&b'\n') => FileState::File { oid: String::new(), exec, stat },
                    _ => {
                        to_hash.push((path, exec, stat));
                        continue;
                    }
                }
            }
        };
        files.insert(path, state);
    }
    if !to_hash.is_empty() {
        let mut args = vec!["hash-object", "--stdin-paths"];
        if keep_blobs {
            args.push("-w");
        }
        let input: Vec<u8> = to_hash.iter().flat_map(|(p, _, _)| p.iter().copied().chain([b'\n'])).collect();
        let out = git.output_with(&args, &[], Some(&input))?;
        let oids: Vec<String> = String::from_utf8_lossy(&out).lines().map(str::to_owned).collect();
        if oids.len() != to_hash.len() {
            return Err(GitError::Unexpected {
                args: "hash-object --stdin-paths".into(),
                output: String::from_utf8_lossy(&out).into_owned(),
            });
        }
        for ((path, exec, stat), oid) in to_hash.into_iter().zip(oids) {
            files.insert(path, FileState::File { oid, exec, stat });
        }
    }
    Ok(files)
}

fn excluded(path: &[u8], exclude: &[Vec<u8>]) -> bool {
    exclude.iter().any(|prefix| {
        path == prefix.as_slice() || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
    })
}

fn display(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// `s` as one shell word.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use baton_testkit::TestRepo;

    fn state(t: &TestRepo, known: Option<&RepoState>) -> RepoState {
        let repo = Repo::discover(t.path()).unwrap();
        RepoState::capture(&repo, &[b"ws".to_vec()], known, known.is_none()).unwrap()
    }

    fn sh(t: &TestRepo, script: &str) {
        let status = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(t.path())
            .envs(baton_testkit::hermetic_git_env())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    }

    /// Changes something, checks that the guard says what, then runs the undo commands it gave
    /// and checks that the repository is as it was.
    fn changed_and_undone(t: &TestRepo, change: &str) -> Vec<RepoChange> {
        let before = state(t, None);
        let shown = t.user_state() + &t.all_refs() + &t.git(&["ls-files", "--stage"]);
        sh(t, change);
        let now = state(t, Some(&before));
        let found = before.diff(&now);
        let undo: Vec<String> = found.iter().flat_map(|f| f.undo.clone()).collect();
        sh(t, &undo.join("\n"));
        let again = state(t, Some(&before));
        assert!(
            before.diff(&again).is_empty(),
            "{change}: not undone by {undo:#?}: {:#?}",
            before.diff(&again)
        );
        assert_eq!(t.user_state() + &t.all_refs() + &t.git(&["ls-files", "--stage"]), shown, "{change}");
        found.into_iter().map(|f| f.change).collect()
    }

    fn repo() -> TestRepo {
        let t =
            TestRepo::with_files(&[("a.txt", "a\n"), ("dir/b.txt", "b\n"), (".gitignore", "*.log\nws/\n")]);
        t.git(&["branch", "other"]);
        t.write("a.txt", "uncommitted\n");
        t.write("untracked.txt", "mine\n");
        t.write("build.log", "ignored\n");
        t.write("ws/c1/tree/x", "a workspace\n");
        t
    }

    #[test]
    fn nothing_changed_is_nothing_found() {
        let t = repo();
        let before = state(&t, None);
        // Ignored files, and paths under the workspace root, are not the user's work.
        t.write("build.log", "rebuilt\n");
        t.write("ws/c2/tree/y", "another\n");
        t.git(&["update-ref", "refs/baton/runs/r/c1", "HEAD"]);
        t.git(&["update-ref", "refs/heads/baton/r/c1", "HEAD"]);
        assert!(before.diff(&state(&t, Some(&before))).is_empty());
    }

    #[test]
    fn every_kind_of_change_is_named_and_undone() {
        let t = repo();
        let head = t.head();
        let main_moved = changed_and_undone(
            &t,
            "git update-ref refs/heads/main $(git commit-tree -p HEAD -m x HEAD^{tree})",
        );
        assert!(
            matches!(&main_moved[..], [RepoChange::RefMoved { name, was, .. }] if name == "refs/heads/main" && *was == head),
            "{main_moved:?}"
        );
        let created = changed_and_undone(&t, "git branch new && git tag v1");
        assert!(
            matches!(&created[..], [RepoChange::RefCreated { .. }, RepoChange::RefCreated { .. }]),
            "{created:?}"
        );
        let deleted = changed_and_undone(&t, "git branch -D other");
        assert!(matches!(&deleted[..], [RepoChange::RefDeleted { .. }]), "{deleted:?}");
        let switched = changed_and_undone(&t, "git checkout -q -b topic");
        assert!(
            matches!(&switched[..], [RepoChange::Head { .. }, RepoChange::RefCreated { .. }]),
            "{switched:?}"
        );
        let detached = changed_and_undone(&t, "git checkout -q --detach");
        assert!(matches!(&detached[..], [RepoChange::Head { .. }]), "{detached:?}");
        let staged = changed_and_undone(&t, "git add a.txt untracked.txt");
        assert!(matches!(&staged[..], [RepoChange::Index { paths }] if paths.len() == 2), "{staged:?}");
        let files = changed_and_undone(
            &t,
            "echo agent > dir/b.txt; echo agent > a.txt; rm untracked.txt; echo new > dir/new.txt; rm -r dir/b.txt",
        );
        let names: Vec<String> = files.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "a.txt was modified in the working tree",
                "dir/b.txt was deleted from the working tree",
                "dir/new.txt was created in the working tree",
                "untracked.txt was deleted from the working tree",
            ]
        );
        let modes = changed_and_undone(&t, "chmod +x dir/b.txt; ln -s a.txt link");
        assert_eq!(modes.len(), 2, "{modes:?}");
    }

    #[test]
    fn many_index_changes_are_undone_at_once() {
        let t = TestRepo::with_files(&[("keep.txt", "k\n")]);
        let files: Vec<String> = (0..20).map(|i| format!("f{i}.txt")).collect();
        for f in &files {
            t.write(f, "x\n");
        }
        t.commit_all("many");
        let before = state(&t, None);
        sh(&t, "git rm -q --cached f*.txt");
        let found = before.diff(&state(&t, Some(&before)));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].undo, [format!("git read-tree {}", t.head())]);
        sh(&t, &found[0].undo.join("\n"));
        assert!(before.diff(&state(&t, Some(&before))).is_empty());
    }
}
