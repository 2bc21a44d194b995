use std::path::{Path, PathBuf};

use baton_git::{Git, GitError, Oid, Repo};

use crate::overlay::{io_err, mount_overlay, remove_dir_all_forcibly, snapshot, unmount};

/// How a workspace shares the user's repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceKind {
    /// `git clone --shared`: own refs, objects borrowed from the repository. An agent cannot
    /// see other candidates or move the user's branches.
    Clone,
    /// `git worktree add`: refs are shared with the user's repository.
    Worktree,
    /// A copy-on-write overlay (Linux overlayfs) on a read-only snapshot of the base commit,
    /// itself a `Clone`: the same isolation as a clone, made in milliseconds whatever the size
    /// of the repository, holding only what the agent changes. Needs the right to mount.
    Overlay,
}

/// One isolated checkout for one candidate (or for the baseline).
#[derive(Debug, Clone)]
pub struct Workspace {
    pub kind: WorkspaceKind,
    /// The directory that holds everything of this workspace.
    pub root: PathBuf,
    /// The checkout the agent works in.
    pub tree: PathBuf,
    /// Its git directory, outside `tree`.
    pub git_dir: PathBuf,
    repo_root: PathBuf,
    /// The user's repository's object directory.
    repo_objects: PathBuf,
}

const RESULT_REF: &str = "refs/baton/result";

/// The file in a workspace's root naming the commit baton last checked out in its tree.
const CHECKED_OUT: &str = "checked-out";

/// What collecting a workspace's work found.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The work, on top of the base; no ref points to it yet.
    pub commit: Oid,
    /// Why the workspace's own git directory could not be used, when it could not: the work
    /// was then read from the tree's files alone.
    pub git_dir_problem: Option<String>,
}

/// A git directory of baton's for reading a checkout whose own is gone: a bare repository in
/// the workspace's root, removed when dropped. The objects it makes go to the user's
/// repository, which is also where it reads the base from.
struct ScratchGit {
    dir: PathBuf,
    git: Git,
}

impl ScratchGit {
    fn new(ws: &Workspace) -> Result<ScratchGit, GitError> {
        let dir = ws.root.join("scratch-git");
        let _ = remove_dir_all_forcibly(&dir);
        Git::at(&ws.root).run(&["init", "--quiet", "--bare", &dir.to_string_lossy()])?;
        let git = Git::split(&dir, &ws.tree).writing_objects_to(&ws.repo_objects, Vec::new());
        Ok(ScratchGit { dir, git })
    }
}

impl Drop for ScratchGit {
    fn drop(&mut self) {
        let _ = remove_dir_all_forcibly(&self.dir);
    }
}

fn first_line(e: &GitError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

/// `git worktree add` names a worktree's admin directory after the path's last component (all
/// of ours end in `tree`) and numbers clashes without a lock, and `git worktree prune` may drop
/// an entry that an add is still writing: in one process, these run one at a time.
fn worktree_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Workspace {
    /// Creates a workspace at `root` (which must not exist) with `commit` checked out on a new
    /// local branch `branch`.
    pub fn create(
        repo: &Repo,
        kind: WorkspaceKind,
        root: &Path,
        commit: &Oid,
        branch: &str,
    ) -> Result<Workspace, GitError> {
        std::fs::create_dir_all(root).map_err(GitError::Spawn)?;
        let tree = root.join("tree");
        let result = match kind {
            WorkspaceKind::Clone => Self::create_clone(repo, root, &tree, commit, branch),
            WorkspaceKind::Worktree => Self::create_worktree(repo, root, &tree, commit, branch),
            WorkspaceKind::Overlay => {
                let snapshots = root.parent().and_then(Path::parent).unwrap_or(root).join("snapshots");
                Self::create_overlay(repo, root, &snapshots, commit, branch)
            }
        };
        if result.is_err() {
            if kind == WorkspaceKind::Overlay {
                unmount(&root.join("merged"));
            }
            let _ = remove_dir_all_forcibly(root);
            if kind == WorkspaceKind::Worktree {
                let _serial = worktree_lock();
                let _ = repo.git().run(&["worktree", "prune"]);
            }
        }
        result
    }

    pub(crate) fn create_clone(
        repo: &Repo,
        root: &Path,
        tree: &Path,
        commit: &Oid,
        branch: &str,
    ) -> Result<Workspace, GitError> {
        let git_dir = root.join("git");
        let src = repo.root.to_string_lossy().into_owned();
        Git::at(root).run(&[
            "clone",
            "--quiet",
            "--shared",
            "--no-checkout",
            "--separate-git-dir",
            &git_dir.to_string_lossy(),
            &src,
            &tree.to_string_lossy(),
        ])?;
        let git = Git::split(&git_dir, tree);
        // Without a remote the agent has no path back to the user's repository.
        git.run(&["remote", "remove", "origin"])?;
        git.run(&["checkout", "--quiet", "--force", "-B", branch, commit.as_str()])?;
        Ok(Workspace {
            kind: WorkspaceKind::Clone,
            root: root.to_owned(),
            tree: tree.to_owned(),
            git_dir,
            repo_root: repo.root.clone(),
            repo_objects: repo.common_dir.join("objects"),
        })
    }

    /// Mounts an overlay at `root/merged` on the snapshot of `commit` kept under `snapshots`
    /// (made on first use, shared by every run on that commit).
    fn create_overlay(
        repo: &Repo,
        root: &Path,
        snapshots: &Path,
        commit: &Oid,
        branch: &str,
    ) -> Result<Workspace, GitError> {
        let lower = snapshot(repo, snapshots, commit)?;
        let (upper, work, merged) = (root.join("upper"), root.join("work"), root.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).map_err(|e| io_err(format!("cannot create {}", d.display()), e))?;
        }
        mount_overlay(&lower, &upper, &work, &merged)?;
        let ws = Workspace {
            kind: WorkspaceKind::Overlay,
            root: root.to_owned(),
            tree: merged.join("tree"),
            git_dir: merged.join("git"),
            repo_root: repo.root.clone(),
            repo_objects: repo.common_dir.join("objects"),
        };
        // The snapshot is already at `commit`: name the branch without a checkout, which would
        // stat every file through the overlay.
        let git = ws.git();
        git.run(&["update-ref", &format!("refs/heads/{branch}"), commit.as_str()])?;
        git.run(&["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")])?;
        Ok(ws)
    }

    fn create_worktree(
        repo: &Repo,
        root: &Path,
        tree: &Path,
        commit: &Oid,
        branch: &str,
    ) -> Result<Workspace, GitError> {
        let git = repo.git();
        let _serial = worktree_lock();
        git.run(&[
            "worktree",
            "add",
            "--quiet",
            "--force",
            "-B",
            branch,
            &tree.to_string_lossy(),
            commit.as_str(),
        ])?;
        let git_dir = Git::at(tree).run(&["rev-parse", "--path-format=absolute", "--git-dir"])?.trim().into();
        Ok(Workspace {
            kind: WorkspaceKind::Worktree,
            root: root.to_owned(),
            tree: tree.to_owned(),
            git_dir,
            repo_root: repo.root.clone(),
            repo_objects: repo.common_dir.join("objects"),
        })
    }

    /// Git addressed with explicit `--git-dir` and `--work-tree`: works whatever the agent did
    /// to `.git` inside the tree.
    pub fn git(&self) -> Git {
        Git::split(&self.git_dir, &self.tree)
    }

    /// Commits everything in the tree (ignored files excepted) as one commit on top of `base`,
    /// whatever the agent committed or staged itself, and returns it: what `git add --all`
    /// would record. See [`Workspace::collect`].
    pub fn snapshot(&self, base: &Oid, message: &str) -> Result<Oid, GitError> {
        self.collect(base, message).map(|c| c.commit)
    }

    /// Commits everything in the tree (ignored files excepted) as one commit on top of `base`,
    /// whatever the agent committed or staged itself: what `git add --all` would record. Uses a
    /// private index so a lock or a half-written index left by a killed agent does not matter.
    /// An overlay's upper layer lists what changed, so only that is read; the other kinds scan
    /// the tree.
    ///
    /// An agent can delete or break the workspace's git directory (it is a sibling of the
    /// tree, within reach). The work is in the files, not there: then the tree is read through
    /// a scratch git directory of baton's, the objects going straight to the user's repository,
    /// and [`Collected::git_dir_problem`] says what was wrong.
    pub fn collect(&self, base: &Oid, message: &str) -> Result<Collected, GitError> {
        let problem = match self.git_dir_problem() {
            Some(problem) => problem,
            None => match self.collect_with_own_git(base, message) {
                Ok(commit) => return Ok(Collected { commit, git_dir_problem: None }),
                Err(e) if e.is_disk_full() => return Err(e),
                Err(e) => format!("{} is broken ({})", self.git_dir.display(), first_line(&e)),
            },
        };
        let scratch = ScratchGit::new(self)?;
        let tree = self.tree_with(&scratch.git, base, false)?;
        let commit = scratch.git.commit_tree(&tree, &[base], message, None)?;
        Ok(Collected { commit, git_dir_problem: Some(problem) })
    }

    /// Why the workspace's own git directory cannot be used; `None` when it looks usable.
    pub fn git_dir_problem(&self) -> Option<String> {
        if !self.git_dir.is_dir() {
            return Some(format!("{} is gone", self.git_dir.display()));
        }
        match self.git().run(&["rev-parse", "--git-dir"]) {
            Ok(_) => None,
            Err(e) => Some(format!("{} is broken ({})", self.git_dir.display(), first_line(&e))),
        }
    }

    fn collect_with_own_git(&self, base: &Oid, message: &str) -> Result<Oid, GitError> {
        let git = self.own_git();
        let tree = self.tree_with(&git, base, true)?;
        let commit = git.commit_tree(&tree, &[base], message, None)?;
        let git = self.git();
        git.update_ref(RESULT_REF, &commit, None)
            .or_else(|_| git.run(&["update-ref", RESULT_REF, commit.as_str()]).map(drop))?;
        Ok(commit)
    }

    /// The workspace's git as collection uses it: an overlay's objects go straight to the
    /// user's repository (everything they are made from is there: the base's, or the tree's).
    fn own_git(&self) -> Git {
        match self.kind {
            WorkspaceKind::Overlay => self.git().writing_objects_to(&self.repo_objects, Vec::new()),
            WorkspaceKind::Clone | WorkspaceKind::Worktree => self.git(),
        }
    }

    /// The tree a collection would record now, without a commit or a ref: for telling whether
    /// the checkout holds work that is saved nowhere.
    pub fn tree(&self, base: &Oid) -> Result<Oid, GitError> {
        if self.git_dir_problem().is_none()
            && let Ok(tree) = self.tree_with(&self.own_git(), base, true)
        {
            return Ok(tree);
        }
        let scratch = ScratchGit::new(self)?;
        self.tree_with(&scratch.git, base, false)
    }

    /// Whether the checkout holds work that no commit has: its tree, as a collection would
    /// record it, is neither `saved`'s (the candidate's collected commit, or the base when it
    /// has none) nor that of the commit baton last checked out in it (verification sets a
    /// candidate's tree to what it verifies). Files git ignores do not count; files a test run
    /// left that git does not ignore do.
    pub fn holds_unsaved_work(&self, repo: &Repo, base: &Oid, saved: &Oid) -> Result<bool, GitError> {
        let tree = self.tree(base)?;
        let git = repo.git();
        if git.tree_of(saved)? == tree {
            return Ok(false);
        }
        let checked_out = std::fs::read_to_string(self.root.join(CHECKED_OUT)).ok();
        if let Some(commit) = checked_out.as_deref().and_then(Oid::parse)
            && git.tree_of(&commit).is_ok_and(|t| t == tree)
        {
            return Ok(false);
        }
        Ok(true)
    }

    /// The tree of the checkout through `git`: only the paths an overlay's upper layer lists,
    /// or a scan of the whole tree (starting from the agent's own index when `own_index`).
    fn tree_with(&self, git: &Git, base: &Oid, own_index: bool) -> Result<Oid, GitError> {
        let listed = match self.kind {
            WorkspaceKind::Overlay => crate::overlay::changed_paths(&self.root.join("upper").join("tree")),
            WorkspaceKind::Clone | WorkspaceKind::Worktree => None,
        };
        match listed {
            Some(paths) => self.tree_of_paths(git, base, &paths),
            None => self.tree_of_scan(git, base, own_index),
        }
    }

    /// The tree as `git add --all` over the whole checkout records it.
    fn tree_of_scan(&self, git: &Git, base: &Oid, own_index: bool) -> Result<Oid, GitError> {
        let index = self.root.join("collect.index");
        let _ = std::fs::remove_file(&index);
        let agents_index = self.git_dir.join("index");
        // Starting from the agent's index reuses its file stat data; fall back to a fresh one.
        // The copy keeps the index's time: git trusts an entry's stat data (to the second) only
        // for a file older than the index, so with the copy's own, newer time, a file edited in
        // the same second as the checkout and left the same size would look unchanged.
        let copied = own_index
            && std::fs::copy(&agents_index, &index)
                .and_then(|_| {
                    let time = std::fs::metadata(&agents_index)?.modified()?;
                    std::fs::File::options().write(true).open(&index)?.set_modified(time)
                })
                .is_ok();
        let index_str = index.to_string_lossy().into_owned();
        let env = [("GIT_INDEX_FILE", index_str.as_str())];
        let run_with_index = |args: &[&str]| git.output_with(args, &env, None);
        let result = (|| {
            if !copied || run_with_index(&["add", "--all", "--", "."]).is_err() {
                // No index to start from, or the copied one is corrupt: start from the base.
                let _ = std::fs::remove_file(&index);
                run_with_index(&["read-tree", base.as_str()])?;
                run_with_index(&["add", "--all", "--", "."])?;
            }
            run_with_index(&["write-tree"])
        })();
        let _ = std::fs::remove_file(&index);
        parse_tree(&result?)
    }

    /// The tree of `base` with `paths` (changed, added or removed) taken from the checkout as
    /// `git add --all` takes them: new files that git ignores stay out, and so do the
    /// workspace's own git files. The rest of the tree is not read.
    fn tree_of_paths(&self, git: &Git, base: &Oid, paths: &[String]) -> Result<Oid, GitError> {
        let index = self.root.join("collect.index");
        let _ = std::fs::remove_file(&index);
        let index_str = index.to_string_lossy().into_owned();
        let env = [("GIT_INDEX_FILE", index_str.as_str()), ("GIT_LITERAL_PATHSPECS", "1")];
        let result = (|| {
            // The base's index, read once per base for every overlay on it (50,000 entries take
            // a tenth of a second to read from the tree each time), its cached trees primed so
            // that only the directories of the changed paths are written again.
            let copied = self.base_index(git, base).is_some_and(|from| std::fs::copy(from, &index).is_ok());
            if !copied {
                git.output_with(&["read-tree", base.as_str()], &env, None)?;
            }
            // With the base's tree as the index, a file the base tracks is never called ignored:
            // `git add --all` stages changes to it, as here. (check-ignore takes no pathspec
            // magic; it reads each line as a path.)
            let ignored = git.ignored(paths, &env[..1])?;
            let wanted: Vec<u8> = paths
                .iter()
                .filter(|p| !ignored.contains(*p))
                .flat_map(|p| p.as_bytes().iter().copied().chain([0]))
                .collect();
            if !wanted.is_empty() {
                git.output_with(
                    &["add", "--all", "--pathspec-from-file=-", "--pathspec-file-nul"],
                    &env,
                    Some(&wanted),
                )?;
            }
            git.output_with(&["write-tree"], &env, None)
        })();
        let _ = std::fs::remove_file(&index);
        parse_tree(&result?)
    }

    /// An index of `base`'s tree with its cached trees written, kept beside the overlay
    /// snapshots (one per base commit); made on first use, atomically, so that overlays
    /// collected at once share it. `None` where it cannot be made.
    fn base_index(&self, git: &Git, base: &Oid) -> Option<PathBuf> {
        let dir = self.root.parent()?.parent()?.join("snapshots");
        let path = dir.join(format!("{base}.index"));
        if path.is_file() {
            return Some(path);
        }
        std::fs::create_dir_all(&dir).ok()?;
        // Workspaces of one run are collected side by side: each makes its own before the
        // first rename wins.
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!("{base}.index.{}.{n}", std::process::id()));
        let tmp_str = tmp.to_string_lossy().into_owned();
        let env = [("GIT_INDEX_FILE", tmp_str.as_str())];
        let made = git.output_with(&["read-tree", base.as_str()], &env, None).is_ok()
            && git.output_with(&["write-tree"], &env, None).is_ok()
            && std::fs::rename(&tmp, &path).is_ok();
        let _ = std::fs::remove_file(&tmp);
        made.then_some(path)
    }

    /// Makes `commit` the result of this workspace in the user's repository under `dst_ref`.
    /// For a clone this copies the objects over; a worktree already shares them.
    pub fn publish(&self, repo: &Repo, commit: &Oid, dst_ref: &str) -> Result<(), GitError> {
        // A worktree shares the repository's objects, and an overlay's collection wrote them
        // there: only a clone's need fetching.
        let git = repo.git();
        let in_repo = self.kind == WorkspaceKind::Worktree || git.has_object(commit)?;
        if in_repo {
            git.run(&["update-ref", dst_ref, commit.as_str()]).map(drop)
        } else {
            git.fetch_ref(&self.git_dir, RESULT_REF, dst_ref)
        }
    }

    /// Resets the tree to exactly `commit`: tracked files restored, untracked files removed
    /// (ignored ones, such as build caches, are kept).
    pub fn checkout(&self, commit: &Oid) -> Result<(), GitError> {
        let _ = std::fs::remove_file(self.git_dir.join("index.lock"));
        let git = self.git();
        git.run(&["checkout", "--quiet", "--force", "--detach", commit.as_str()])?;
        git.run(&["clean", "--quiet", "--force", "-d"])?;
        // What baton put there, not an agent: see `holds_unsaved_work`.
        let _ = std::fs::write(self.root.join(CHECKED_OUT), commit.as_str());
        Ok(())
    }

    /// Removes the workspace from disk (and from the repository's worktree list).
    pub fn remove(&self) -> std::io::Result<()> {
        if self.kind == WorkspaceKind::Overlay {
            unmount(&self.root.join("merged"));
        }
        let result = remove_dir_all_forcibly(&self.root);
        if self.kind == WorkspaceKind::Worktree {
            let _serial = worktree_lock();
            let _ = Git::at(&self.repo_root).run(&["worktree", "prune"]);
        }
        result
    }

    /// A workspace that exists on disk, found again by its root (for `baton clean`).
    pub fn reopen(repo: &Repo, root: &Path) -> Option<Workspace> {
        if root.join("upper").is_dir() {
            let merged = root.join("merged");
            return Some(Workspace {
                kind: WorkspaceKind::Overlay,
                root: root.into(),
                tree: merged.join("tree"),
                git_dir: merged.join("git"),
                repo_root: repo.root.clone(),
                repo_objects: repo.common_dir.join("objects"),
            });
        }
        let tree = root.join("tree");
        let git_dir = root.join("git");
        if git_dir.is_dir() {
            return Some(Workspace {
                kind: WorkspaceKind::Clone,
                root: root.into(),
                tree,
                git_dir,
                repo_root: repo.root.clone(),
                repo_objects: repo.common_dir.join("objects"),
            });
        }
        if !tree.is_dir() {
            return None;
        }
        // A worktree's checkout names its git directory, inside the user's, in its `.git` file.
        // A checkout with neither is a clone whose git directory an agent removed: its work is
        // still in its files (see `collect`).
        let named = std::fs::read_to_string(tree.join(".git"))
            .ok()
            .and_then(|text| Some(tree.join(text.strip_prefix("gitdir:")?.trim())))
            .filter(|dir| *dir != git_dir);
        let (kind, git_dir) = match named {
            Some(dir) => (WorkspaceKind::Worktree, dir),
            None => (WorkspaceKind::Clone, git_dir),
        };
        Some(Workspace {
            kind,
            root: root.into(),
            tree,
            git_dir,
            repo_root: repo.root.clone(),
            repo_objects: repo.common_dir.join("objects"),
        })
    }
}

fn parse_tree(out: &[u8]) -> Result<Oid, GitError> {
    let text = String::from_utf8_lossy(out);
    Oid::parse(text.trim())
        .ok_or_else(|| GitError::Unexpected { args: "write-tree".into(), output: text.into_owned() })
}
