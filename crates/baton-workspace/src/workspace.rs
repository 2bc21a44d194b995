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
    /// would record. Uses a private index so a lock or a half-written index left by a killed
    /// agent does not matter. An overlay's upper layer lists what changed, so only that is
    /// read; the other kinds scan the tree.
    pub fn snapshot(&self, base: &Oid, message: &str) -> Result<Oid, GitError> {
        let listed = match self.kind {
            WorkspaceKind::Overlay => crate::overlay::changed_paths(&self.root.join("upper").join("tree")),
            WorkspaceKind::Clone | WorkspaceKind::Worktree => None,
        };
        let (tree, git) = match listed {
            Some(paths) => (
                self.tree_of_paths(base, &paths)?,
                self.git().writing_objects_to(&self.repo_objects, Vec::new()),
            ),
            None => (self.tree_of_scan(base)?, self.git()),
        };
        let commit = git.commit_tree(&tree, &[base], message, None)?;
        let git = self.git();
        git.update_ref(RESULT_REF, &commit, None)
            .or_else(|_| git.run(&["update-ref", RESULT_REF, commit.as_str()]).map(drop))?;
        Ok(commit)
    }

    /// The tree as `git add --all` over the whole checkout records it.
    fn tree_of_scan(&self, base: &Oid) -> Result<Oid, GitError> {
        let index = self.root.join("collect.index");
        let _ = std::fs::remove_file(&index);
        let own_index = self.git_dir.join("index");
        // Starting from the agent's index reuses its file stat data; fall back to a fresh one.
        // The copy keeps the index's time: git trusts an entry's stat data (to the second) only
        // for a file older than the index, so with the copy's own, newer time, a file edited in
        // the same second as the checkout and left the same size would look unchanged.
        let copied = std::fs::copy(&own_index, &index).and_then(|_| {
            let time = std::fs::metadata(&own_index)?.modified()?;
            std::fs::File::options().write(true).open(&index)?.set_modified(time)
        });
        if copied.is_err() {
            let _ = std::fs::remove_file(&index);
        }
        let index_str = index.to_string_lossy().into_owned();
        let git = self.git();
        let env = [("GIT_INDEX_FILE", index_str.as_str())];
        let run_with_index = |args: &[&str]| git.output_with(args, &env, None);
        if run_with_index(&["add", "--all", "--", "."]).is_err() {
            // The copied index may be corrupt: rebuild from the base tree and try once more.
            let _ = std::fs::remove_file(&index);
            run_with_index(&["read-tree", base.as_str()])?;
            run_with_index(&["add", "--all", "--", "."])?;
        }
        let out = run_with_index(&["write-tree"]);
        let _ = std::fs::remove_file(&index);
        parse_tree(&out?)
    }

    /// The tree of `base` with `paths` (changed, added or removed) taken from the checkout as
    /// `git add --all` takes them: new files that git ignores stay out, and so do the
    /// workspace's own git files. The rest of the tree is not read.
    fn tree_of_paths(&self, base: &Oid, paths: &[String]) -> Result<Oid, GitError> {
        let index = self.root.join("collect.index");
        let _ = std::fs::remove_file(&index);
        let index_str = index.to_string_lossy().into_owned();
        // Everything this reads is the base's (in the user's repository) or the tree's files, so
        // the objects it writes go straight to the user's repository: no fetch after.
        let git = self.git().writing_objects_to(&self.repo_objects, Vec::new());
        let env = [("GIT_INDEX_FILE", index_str.as_str()), ("GIT_LITERAL_PATHSPECS", "1")];
        let result = (|| {
            // The base's index, read once per base for every overlay on it (50,000 entries take
            // a tenth of a second to read from the tree each time), its cached trees primed so
            // that only the directories of the changed paths are written again.
            let copied = self.base_index(base).is_some_and(|from| std::fs::copy(from, &index).is_ok());
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
    fn base_index(&self, base: &Oid) -> Option<PathBuf> {
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
        let git = self.git();
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
        git.run(&["clean", "--quiet", "--force", "-d"]).map(drop)
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
        let out = Git::at(&tree).run(&["rev-parse", "--path-format=absolute", "--git-dir"]).ok()?;
        Some(Workspace {
            kind: WorkspaceKind::Worktree,
            root: root.into(),
            tree,
            git_dir: out.trim().into(),
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
