//! The repository's state at one moment, and what changed between two.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use baton_core::{RepoChange, RepoChangeFix};
use baton_git::{Git, GitError, Oid, Repo};

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
