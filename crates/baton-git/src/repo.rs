use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{BATON_EMAIL, BATON_NAME, GitError};

/// A full object id as git prints it (40 or 64 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(String);

impl Oid {
    pub fn parse(s: &str) -> Option<Oid> {
        let s = s.trim();
        let ok = matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| Oid(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 10 digits, for people.
    pub fn short(&self) -> &str {
        &self.0[..10]
    }

    fn zero_like(&self) -> String {
        "0".repeat(self.0.len())
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of change a file underwent between two trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    /// Type changed (file to symlink and the like).
    TypeChanged,
}

/// One file's change between two trees, with its line counts (`None` for binary files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub kind: ChangeKind,
    pub added: Option<usize>,
    pub deleted: Option<usize>,
}

/// The result of a three-way merge of trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    Clean { tree: Oid },
    Conflicts { paths: Vec<String> },
}

/// A repository the user works in, as found from a directory inside it.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The top of the working tree.
    pub root: PathBuf,
    /// The git directory of this working tree.
    pub git_dir: PathBuf,
    /// The directory shared by all worktrees (where baton keeps its store).
    pub common_dir: PathBuf,
}

impl Repo {
    /// Finds the repository that contains `path`.
    pub fn discover(path: &Path) -> Result<Repo, GitError> {
        let git = Git::at(path);
        let out = git.output([
            "rev-parse",
            "--path-format=absolute",
            "--show-toplevel",
            "--git-dir",
            "--git-common-dir",
        ])?;
        if !out.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("must be run in a work tree") && git.is_bare() {
                return Err(GitError::BareRepository { path: path.to_owned() });
            }
            if stderr.contains("not a git repository") || stderr.contains("must be run in a work tree") {
                return Err(GitError::NotARepository { path: path.to_owned() });
            }
            return Err(GitError::Failed {
                args: "rev-parse --show-toplevel".into(),
                code: out.code,
                stderr: stderr.into_owned(),
            });
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        let [root, git_dir, common_dir] = lines[..] else {
            // A bare repository prints no toplevel.
            if git.is_bare() {
                return Err(GitError::BareRepository { path: path.to_owned() });
            }
            return Err(GitError::NotARepository { path: path.to_owned() });
        };
        Ok(Repo { root: root.into(), git_dir: git_dir.into(), common_dir: common_dir.into() })
    }

    pub fn git(&self) -> Git {
        Git::at(&self.root)
    }

    /// The commit HEAD points at; an error naming the repository if there is none yet.
    pub fn head(&self) -> Result<Oid, GitError> {
        self.git().try_resolve("HEAD")?.ok_or_else(|| GitError::NoCommits { path: self.root.clone() })
    }
}

/// Runs git in one directory, optionally with an explicit git dir and work tree.
#[derive(Debug, Clone)]
pub struct Git {
    cwd: PathBuf,
    git_dir: Option<PathBuf>,
    work_tree: Option<PathBuf>,
    /// Where new objects go, and where else objects are read from (see
    /// [`Git::writing_objects_to`]).
    objects: Option<(PathBuf, Vec<PathBuf>)>,
}

/// Variables that would redirect git away from the directory we name.
const SCRUBBED_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_PREFIX",
    "GIT_EXTERNAL_DIFF",
    "GIT_DIFF_OPTS",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_TRACE",
];

/// Configuration that keeps the user's setup from changing what plumbing prints or runs.
const FIXED_CONFIG: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.quotePath=false",
    "color.ui=false",
    "diff.noprefix=false",
    "diff.mnemonicPrefix=false",
    "diff.external=",
    "diff.renames=false",
    "advice.detachedHead=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
];

impl Git {
    pub fn at(dir: impl Into<PathBuf>) -> Git {
        Git { cwd: dir.into(), git_dir: None, work_tree: None, objects: None }
    }

    /// Git for a checkout whose git directory is elsewhere.
    pub fn split(git_dir: impl Into<PathBuf>, work_tree: impl Into<PathBuf>) -> Git {
        let work_tree = work_tree.into();
        Git {
            cwd: work_tree.clone(),
            git_dir: Some(git_dir.into()),
            work_tree: Some(work_tree),
            objects: None,
        }
    }

    /// This git, writing the objects it makes into `objects` (another repository's object
    /// directory) and reading objects from `also` as well: a workspace's collected work lands in
    /// the user's repository as it is made, with no fetch after.
    pub fn writing_objects_to(mut self, objects: impl Into<PathBuf>, also: Vec<PathBuf>) -> Git {
        self.objects = Some((objects.into(), also));
        self
    }

    pub fn dir(&self) -> &Path {
        &self.cwd
    }

    /// The command with baton's fixed environment, ready for arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.cwd);
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd.env("LC_ALL", "C")
            .env("LANGUAGE", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "")
            .env("SSH_ASKPASS", "")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("GIT_NO_REPLACE_OBJECTS", "1");
        for c in FIXED_CONFIG {
            cmd.arg("-c").arg(c);
        }
        if let Some(d) = &self.git_dir {
            cmd.arg("--git-dir").arg(d);
        }
        if let Some(w) = &self.work_tree {
            cmd.arg("--work-tree").arg(w);
        }
        if let Some((objects, also)) = &self.objects {
            cmd.env("GIT_OBJECT_DIRECTORY", objects);
            if let Ok(joined) = std::env::join_paths(also) {
                cmd.env("GIT_ALTERNATE_OBJECT_DIRECTORIES", joined);
            }
        }
        cmd
    }

    /// Whether the directory is a bare repository (or inside one).
    pub(crate) fn is_bare(&self) -> bool {
        self.output(["rev-parse", "--is-bare-repository"])
            .is_ok_and(|o| o.success() && String::from_utf8_lossy(&o.stdout).trim() == "true")
    }

    pub(crate) fn output<I, S>(&self, args: I) -> Result<baton_exec::SyncOutput, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        baton_exec::run_sync(cmd, None).map_err(GitError::Spawn)
    }

    /// Runs git with extra environment variables (a private `GIT_INDEX_FILE`) and optional
    /// input; stdout, or an error carrying stderr.
    pub fn output_with(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        input: Option<&[u8]>,
    ) -> Result<Vec<u8>, GitError> {
        let mut cmd = self.command();
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = baton_exec::run_sync(cmd, input).map_err(GitError::Spawn)?;
        if !out.success() {
            return Err(GitError::Failed {
                args: args.join(" "),
                code: out.code,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(out.stdout)
    }

    /// Runs git and returns stdout, or an error carrying stderr.
    pub fn run(&self, args: &[&str]) -> Result<String, GitError> {
        let out = self.output_with(args, &[], None)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn run_oid(&self, args: &[&str], env: &[(&str, &str)], input: Option<&[u8]>) -> Result<Oid, GitError> {
        let out = self.output_with(args, env, input)?;
        let text = String::from_utf8_lossy(&out);
        Oid::parse(text.lines().next().unwrap_or(""))
            .ok_or_else(|| GitError::Unexpected { args: args.join(" "), output: text.into_owned() })
    }

    /// The commit `rev` names, or `None` if it names none.
    pub fn try_resolve(&self, rev: &str) -> Result<Option<Oid>, GitError> {
        let spec = format!("{rev}^{{commit}}");
        let out = self.output(["rev-parse", "--verify", "--quiet", "--end-of-options", &spec])?;
        Ok(if out.success() { Oid::parse(&String::from_utf8_lossy(&out.stdout)) } else { None })
    }

    /// The commit `rev` names; [`GitError::BadRevision`] if none.
    pub fn resolve(&self, rev: &str) -> Result<Oid, GitError> {
        self.try_resolve(rev)?.ok_or_else(|| GitError::BadRevision { rev: rev.to_owned() })
    }

    /// The short name of the checked-out branch; `None` when HEAD is detached.
    pub fn current_branch(&self) -> Result<Option<String>, GitError> {
        let out = self.output(["symbolic-ref", "--quiet", "--short", "HEAD"])?;
        Ok(out.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    /// Paths with uncommitted changes: staged, unstaged or untracked (ignored files excluded).
    pub fn dirty_paths(&self) -> Result<Vec<String>, GitError> {
        let out =
            self.output_with(&["status", "--porcelain=v1", "-z", "--untracked-files=all"], &[], None)?;
        let mut paths = Vec::new();
        let mut fields = out.split(|&b| b == 0).filter(|f| !f.is_empty());
        while let Some(entry) = fields.next() {
            let entry = String::from_utf8_lossy(entry);
            if entry.len() < 4 {
                continue;
            }
            // Renames and copies carry the source path as the next field.
            if matches!(entry.as_bytes()[0], b'R' | b'C') {
                fields.next();
            }
            paths.push(entry[3..].to_owned());
        }
        Ok(paths)
    }

    /// Commits the working tree as it is (tracked changes and untracked files that are not
    /// ignored) on top of `parent`, through a temporary index so that the user's index is left
    /// alone. Returns the new commit; no ref points to it yet.
    pub fn snapshot_worktree(&self, parent: &Oid, message: &str, scratch: &Path) -> Result<Oid, GitError> {
        let index = scratch.join("snapshot.index");
        let index_str = index.to_string_lossy().into_owned();
        let env = [("GIT_INDEX_FILE", index_str.as_str())];
        self.output_with(&["read-tree", parent.as_str()], &env, None)?;
        self.output_with(&["add", "--all", "--", "."], &env, None)?;
        let tree = self.run_oid(&["write-tree"], &env, None)?;
        let _ = std::fs::remove_file(&index);
        self.commit_tree(&tree, &[parent], message, None)
    }

    /// Commits the files under `dir` (at the same relative paths) on top of `parent`, through a
    /// temporary index: files of `parent` that `dir` lacks stay as they are. Returns the commit.
    pub fn commit_directory_over(
        &self,
        parent: &Oid,
        dir: &Path,
        message: &str,
        scratch: &Path,
    ) -> Result<Oid, GitError> {
        let index = scratch.join(format!("overlay-{}.index", std::process::id()));
        let index_str = index.to_string_lossy().into_owned();
        let env = [("GIT_INDEX_FILE", index_str.as_str())];
        let result = (|| {
            self.output_with(&["read-tree", parent.as_str()], &env, None)?;
            let dir_str = dir.to_string_lossy().into_owned();
            self.output_with(
                &["--work-tree", &dir_str, "add", "--ignore-removal", "--force", "--", "."],
                &env,
                None,
            )?;
            let tree = self.run_oid(&["write-tree"], &env, None)?;
            self.commit_tree(&tree, &[parent], message, None)
        })();
        let _ = std::fs::remove_file(&index);
        result
    }

    /// The files a patch file changes (`git apply --numstat`), checking that it applies to
    /// `base` without writing anything: an error with git's words when it does not.
    pub fn patch_paths(&self, base: &Oid, patch: &Path, scratch: &Path) -> Result<Vec<String>, GitError> {
        let index = scratch.join(format!("patch-check-{}.index", std::process::id()));
        let index_str = index.to_string_lossy().into_owned();
        let env = [("GIT_INDEX_FILE", index_str.as_str())];
        let patch_str = patch.to_string_lossy().into_owned();
        let result = (|| {
            self.output_with(&["read-tree", base.as_str()], &env, None)?;
            self.output_with(&["apply", "--cached", "--check", &patch_str], &env, None)?;
            let out = self.output_with(&["apply", "--numstat", "-z", &patch_str], &env, None)?;
            // "added\tdeleted\tpath\0" per file
            Ok(out
                .split(|&b| b == 0)
                .filter_map(|rec| {
                    let rec = String::from_utf8_lossy(rec);
                    rec.splitn(3, '\t').nth(2).map(str::to_owned)
                })
                .filter(|p| !p.is_empty())
                .collect())
        })();
        let _ = std::fs::remove_file(&index);
        result
    }

    /// Applies a patch file to `parent` through a temporary index and commits the result;
    /// `parent`'s other files stay as they are. Returns the commit.
    pub fn commit_patch_over(
        &self,
        parent: &Oid,
        patch: &Path,
        message: &str,
        scratch: &Path,
    ) -> Result<Oid, GitError> {
        let index = scratch.join(format!("patch-{}.index", std::process::id()));
        let index_str = index.to_string_lossy().into_owned();
        let env = [("GIT_INDEX_FILE", index_str.as_str())];
        let patch_str = patch.to_string_lossy().into_owned();
        let result = (|| {
            self.output_with(&["read-tree", parent.as_str()], &env, None)?;
            self.output_with(&["apply", "--cached", &patch_str], &env, None)?;
            self.run_oid(&["write-tree"], &env, None)
        })();
        let _ = std::fs::remove_file(&index);
        self.commit_tree(&result?, &[parent], message, None)
    }

    /// Writes a commit of `tree` with `parents`. `author` is `(name, email)`; baton's own
    /// identity when `None`.
    pub fn commit_tree(
        &self,
        tree: &Oid,
        parents: &[&Oid],
        message: &str,
        author: Option<(&str, &str)>,
    ) -> Result<Oid, GitError> {
        let (name, email) = author.unwrap_or((BATON_NAME, BATON_EMAIL));
        let mut args = vec!["commit-tree", tree.as_str()];
        for p in parents {
            args.push("-p");
            args.push(p.as_str());
        }
        let env = [
            ("GIT_AUTHOR_NAME", name),
            ("GIT_AUTHOR_EMAIL", email),
            ("GIT_COMMITTER_NAME", name),
            ("GIT_COMMITTER_EMAIL", email),
        ];
        self.run_oid(&args, &env, Some(message.as_bytes()))
    }

    /// The user's identity as git would use it for a commit here, if configured.
    pub fn user_identity(&self) -> Option<(String, String)> {
        let name = self.run(&["config", "user.name"]).ok()?.trim().to_owned();
        let email = self.run(&["config", "user.email"]).ok()?.trim().to_owned();
        (!name.is_empty()).then_some((name, email))
    }

    pub fn tree_of(&self, commit: &Oid) -> Result<Oid, GitError> {
        self.run_oid(&["rev-parse", &format!("{commit}^{{tree}}")], &[], None)
    }

    /// Sets `name` to `new` only if it currently is `old` (`None`: only if it does not exist).
    pub fn update_ref(&self, name: &str, new: &Oid, old: Option<&Oid>) -> Result<(), GitError> {
        let old = old.map(|o| o.to_string()).unwrap_or_else(|| new.zero_like());
        match self.output_with(&["update-ref", "-m", "baton", name, new.as_str(), &old], &[], None) {
            Ok(_) => Ok(()),
            Err(GitError::Failed { stderr, .. })
                if stderr.contains("but expected") || stderr.contains("already exists") =>
            {
                let found =
                    self.try_resolve(name)?.map(|o| o.to_string()).unwrap_or_else(|| "nothing".into());
                Err(GitError::RefMoved { name: name.to_owned(), expected: old, found })
            }
            Err(e) => Err(e),
        }
    }

    pub fn delete_ref(&self, name: &str) -> Result<(), GitError> {
        self.run(&["update-ref", "-d", name]).map(drop)
    }

    /// Refs under `prefix` (e.g. `refs/baton/`), with the commit each points to.
    pub fn refs(&self, prefix: &str) -> Result<Vec<(String, Oid)>, GitError> {
        let text = self.run(&["for-each-ref", "--format=%(objectname) %(refname)", prefix])?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let (oid, name) = l.split_once(' ')?;
                Some((name.to_owned(), Oid::parse(oid)?))
            })
            .collect())
    }

    /// Whether `ancestor` is reachable from `descendant`.
    pub fn is_ancestor(&self, ancestor: &Oid, descendant: &Oid) -> Result<bool, GitError> {
        let out = self.output(["merge-base", "--is-ancestor", ancestor.as_str(), descendant.as_str()])?;
        match out.code {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            code => Err(GitError::Failed {
                args: "merge-base --is-ancestor".into(),
                code,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }),
        }
    }

    /// Files that differ between two commits or trees, with line counts.
    pub fn diff_files(&self, from: &Oid, to: &Oid) -> Result<Vec<FileChange>, GitError> {
        let status = self.output_with(
            &["diff-tree", "-r", "-z", "--no-renames", "--name-status", from.as_str(), to.as_str()],
            &[],
            None,
        )?;
        let numstat = self.output_with(
            &["diff-tree", "-r", "-z", "--no-renames", "--numstat", from.as_str(), to.as_str()],
            &[],
            None,
        )?;
        let mut counts = std::collections::HashMap::new();
        for rec in numstat.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            let rec = String::from_utf8_lossy(rec);
            let mut parts = rec.splitn(3, '\t');
            let (Some(a), Some(d), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
            counts.insert(path.to_owned(), (a.parse().ok(), d.parse().ok()));
        }
        let mut out = Vec::new();
        let mut fields = status.split(|&b| b == 0).filter(|r| !r.is_empty());
        while let (Some(kind), Some(path)) = (fields.next(), fields.next()) {
            let kind = match kind.first() {
                Some(b'A') => ChangeKind::Added,
                Some(b'D') => ChangeKind::Deleted,
                Some(b'T') => ChangeKind::TypeChanged,
                _ => ChangeKind::Modified,
            };
            let path = String::from_utf8_lossy(path).into_owned();
            let (added, deleted) = counts.get(&path).copied().unwrap_or((None, None));
            out.push(FileChange { path, kind, added, deleted });
        }
        Ok(out)
    }

    /// The unified diff between two commits or trees.
    pub fn diff_patch(&self, from: &Oid, to: &Oid) -> Result<Vec<u8>, GitError> {
        self.diff_tree_patch(from, to, None)
    }

    /// [`Git::diff_patch`] with every changed file whole as context: each line of both sides is
    /// in it, so that a reader can tell which function a changed line belongs to.
    pub fn diff_patch_whole_files(&self, from: &Oid, to: &Oid) -> Result<Vec<u8>, GitError> {
        self.diff_tree_patch(from, to, Some("--unified=100000000"))
    }

    fn diff_tree_patch(&self, from: &Oid, to: &Oid, context: Option<&str>) -> Result<Vec<u8>, GitError> {
        let mut args = vec!["diff-tree", "-p", "--binary", "--no-renames", "--full-index"];
        args.extend(context);
        args.extend([from.as_str(), to.as_str()]);
        self.output_with(&args, &[], None)
    }

    /// Every file path in a commit's tree.
    pub fn tree_paths(&self, commit: &Oid) -> Result<Vec<String>, GitError> {
        let out = self.output_with(
            &["ls-tree", "-r", "-z", "--name-only", "--full-tree", commit.as_str()],
            &[],
            None,
        )?;
        Ok(out
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }

    /// Whether the repository has the object `id` (in its own store or an alternate).
    pub fn has_object(&self, id: &Oid) -> Result<bool, GitError> {
        Ok(self.output(["cat-file", "-e", id.as_str()])?.success())
    }

    /// The blob id of `path` in a commit or tree; `None` when it has no such file.
    pub fn blob_id(&self, rev: &Oid, path: &str) -> Result<Option<Oid>, GitError> {
        let spec = format!("{}:{path}", rev.as_str());
        let out = self.output(["rev-parse", "--verify", "--quiet", spec.as_str()])?;
        if !out.success() {
            return Ok(None);
        }
        Ok(Oid::parse(String::from_utf8_lossy(&out.stdout).trim()))
    }

    /// The content of `path` in a commit or tree; `None` when it has no such file.
    pub fn file_at(&self, rev: &Oid, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let spec = format!("{}:{path}", rev.as_str());
        let out = self.output(["cat-file", "blob", spec.as_str()])?;
        Ok(out.success().then_some(out.stdout))
    }

    /// Lines of a commit's files that match an extended regular expression, as `(path, text)`,
    /// in the files `pathspecs` select (all when empty). No match is an empty list.
    pub fn grep(
        &self,
        commit: &Oid,
        pattern: &str,
        pathspecs: &[&str],
    ) -> Result<Vec<(String, String)>, GitError> {
        let mut args =
            vec!["grep", "-I", "-z", "--no-color", "--full-name", "-E", "-e", pattern, commit.as_str(), "--"];
        args.extend_from_slice(pathspecs);
        let out = self.output(&args)?;
        match out.code {
            Some(0) => {}
            Some(1) => return Ok(Vec::new()),
            code => {
                return Err(GitError::Failed {
                    args: args.join(" "),
                    code,
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                });
            }
        }
        // `<commit>:<path>\0<text>` per line
        let prefix = format!("{}:", commit.as_str());
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (path, text) = l.split_once('\0')?;
                Some((path.strip_prefix(&prefix).unwrap_or(path).to_owned(), text.to_owned()))
            })
            .collect())
    }

    /// Copies objects and sets `dst_ref` here from `src_ref` in the repository at `from`.
    pub fn fetch_ref(&self, from: &Path, src_ref: &str, dst_ref: &str) -> Result<(), GitError> {
        let from = from.to_string_lossy();
        let spec = format!("+{src_ref}:{dst_ref}");
        self.run(&["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc", &from, &spec])
            .map(drop)
    }

    /// Three-way merge of trees without touching any working tree (`git merge-tree`).
    pub fn merge_trees(&self, base: &Oid, ours: &Oid, theirs: &Oid) -> Result<MergeOutcome, GitError> {
        let base_arg = format!("--merge-base={base}");
        let out = self.output([
            "merge-tree",
            "--write-tree",
            "--name-only",
            "-z",
            &base_arg,
            ours.as_str(),
            theirs.as_str(),
        ])?;
        let fields: Vec<String> =
            out.stdout.split(|&b| b == 0).map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        match out.code {
            Some(0) => {
                let tree =
                    fields.first().and_then(|f| Oid::parse(f)).ok_or_else(|| GitError::Unexpected {
                        args: "merge-tree".into(),
                        output: String::from_utf8_lossy(&out.stdout).into_owned(),
                    })?;
                Ok(MergeOutcome::Clean { tree })
            }
            Some(1) => {
                // The tree, then the conflicted paths, then an empty field and the messages.
                let paths = fields.iter().skip(1).take_while(|f| !f.is_empty()).cloned().collect();
                Ok(MergeOutcome::Conflicts { paths })
            }
            code => Err(GitError::Failed {
                args: "merge-tree --write-tree".into(),
                code,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }),
        }
    }

    /// `git merge --ff-only COMMIT` in a working tree: moves the checked-out branch and updates
    /// index and files, refusing if that would overwrite local changes.
    pub fn merge_ff_only(&self, commit: &Oid) -> Result<(), GitError> {
        self.run(&["merge", "--ff-only", "--quiet", "--no-edit", commit.as_str()]).map(drop)
    }

    /// Moves the checked-out branch `branch_ref` from `old` to `commit` (a compare-and-swap)
    /// and brings the working tree from the tree of `from` to that of `to` where they differ,
    /// leaving the rest of it alone; the index becomes `commit`'s tree. So a change made on top
    /// of uncommitted work lands on the branch while that work stays uncommitted. The caller
    /// checks that the working tree is `from`'s tree.
    pub fn advance_keeping_uncommitted(
        &self,
        branch_ref: &str,
        old: &Oid,
        commit: &Oid,
        from: &Oid,
        to: &Oid,
    ) -> Result<(), GitError> {
        let changes = self.diff_files(from, to)?;
        self.update_ref(branch_ref, commit, Some(old))?;
        let (deleted, written): (Vec<&FileChange>, Vec<&FileChange>) =
            changes.iter().partition(|c| c.kind == ChangeKind::Deleted);
        if !written.is_empty() {
            let mut args = vec!["checkout", to.as_str(), "--"];
            args.extend(written.iter().map(|c| c.path.as_str()));
            self.run(&args)?;
        }
        for c in deleted {
            let path = self.dir().join(&c.path);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(GitError::Io {
                    context: format!("could not remove {}", path.display()),
                    source: e,
                });
            }
        }
        self.run(&["read-tree", commit.as_str()]).map(drop)
    }

    /// Which of `paths` git ignores (`git check-ignore`), with the environment `env` (a private
    /// index: files it tracks are never ignored).
    pub fn ignored(
        &self,
        paths: &[String],
        env: &[(&str, &str)],
    ) -> Result<std::collections::HashSet<String>, GitError> {
        if paths.is_empty() {
            return Ok(Default::default());
        }
        let input: Vec<u8> = paths.iter().flat_map(|p| p.as_bytes().iter().copied().chain([0])).collect();
        let mut cmd = self.command();
        cmd.args(["check-ignore", "--stdin", "-z"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = baton_exec::run_sync(cmd, Some(&input)).map_err(GitError::Spawn)?;
        // 0: some are ignored, 1: none is; anything else went wrong.
        if !matches!(out.code, Some(0 | 1)) {
            return Err(GitError::Failed {
                args: "check-ignore --stdin".into(),
                code: out.code,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(out
            .stdout
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }

    /// git's version as (major, minor).
    pub fn version() -> Result<(u32, u32), GitError> {
        let text = Git::at(".").run(&["version"])?;
        let v = text.split_whitespace().nth(2).unwrap_or("");
        let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        Ok((parts.next().unwrap_or(0), parts.next().unwrap_or(0)))
    }
}

impl Git {
    /// The tree of `commit` with each of `paths` replaced by its version in `from` (removed
    /// when `from` lacks it). Used to verify a candidate's code against the base's tests.
    pub fn tree_with_paths_from(
        &self,
        commit: &Oid,
        from: &Oid,
        paths: &[String],
        scratch: &Path,
    ) -> Result<Oid, GitError> {
        if paths.is_empty() {
            return self.tree_of(commit);
        }
        let index = scratch.join(format!("restore-{}.index", std::process::id()));
        let index_str = index.to_string_lossy().into_owned();
        let env = [("GIT_INDEX_FILE", index_str.as_str())];
        let result = (|| {
            self.output_with(&["read-tree", commit.as_str()], &env, None)?;
            let mut ls = vec!["ls-tree", "-z", "--full-tree", from.as_str(), "--"];
            ls.extend(paths.iter().map(String::as_str));
            let listed = self.output_with(&ls, &[], None)?;
            let mut present = std::collections::HashSet::new();
            let mut info = Vec::new();
            for rec in listed.split(|&b| b == 0).filter(|r| !r.is_empty()) {
                // "<mode> <type> <oid>\t<path>"
                let Some(tab) = rec.iter().position(|&b| b == b'\t') else { continue };
                let (meta, path) = (&rec[..tab], &rec[tab + 1..]);
                let meta = String::from_utf8_lossy(meta);
                let mut parts = meta.split(' ');
                let (Some(mode), Some(_), Some(oid)) = (parts.next(), parts.next(), parts.next()) else {
                    continue;
                };
                present.insert(String::from_utf8_lossy(path).into_owned());
                info.extend_from_slice(format!("{mode} {oid}\t").as_bytes());
                info.extend_from_slice(path);
                info.push(0);
            }
            self.output_with(&["update-index", "-z", "--index-info"], &env, Some(&info))?;
            let absent: Vec<&str> =
                paths.iter().filter(|p| !present.contains(*p)).map(String::as_str).collect();
            if !absent.is_empty() {
                let mut rm = vec!["update-index", "--force-remove", "--"];
                rm.extend(absent);
                self.output_with(&rm, &env, None)?;
            }
            self.run_oid(&["write-tree"], &env, None)
        })();
        let _ = std::fs::remove_file(&index);
        result
    }
}
