//! Hidden tests: acceptance tests the agents never see, from a directory, a patch file or a
//! revision. Only test files are taken from them: a revision or a patch that also changes the
//! code under test would hand every candidate the fix. They are checked before a run starts and
//! become objects in the repository only after every agent finished.

use std::path::{Path, PathBuf};

use baton_git::{Oid, Repo};
use baton_verify::{Protected, looks_like_test};

use crate::{EngineError, HiddenTestsProblem};

/// Where hidden tests come from, checked before the run starts.
#[derive(Debug, Clone)]
pub(crate) enum HiddenSource {
    Dir(PathBuf),
    Rev(Oid),
    Patch(PathBuf),
}

/// The hidden tests of a run: what the user named, where they come from, the test files taken,
/// and the files of the source that are not tests (left out, and said).
#[derive(Debug, Clone)]
pub(crate) struct HiddenTests {
    pub(crate) spec: String,
    pub(crate) source: HiddenSource,
    pub(crate) files: Vec<String>,
    pub(crate) left_out: Vec<String>,
}

/// The hidden tests laid over the base, once the agents are done.
#[derive(Debug, Clone)]
pub(crate) struct LaidOver {
    /// The commit the test files are taken from.
    pub(crate) source: Oid,
    /// The base with the test files over it: what the base is verified as.
    pub(crate) base: Oid,
    pub(crate) files: Vec<String>,
}

impl HiddenTests {
    /// Makes the tests objects of the repository and lays them over `base`. Only after every
    /// agent finished: before, an agent could find them there.
    pub(crate) fn lay_over(&self, repo: &Repo, base: &Oid, scratch: &Path) -> Result<LaidOver, EngineError> {
        let git = repo.git();
        let source = match &self.source {
            HiddenSource::Rev(rev) => rev.clone(),
            HiddenSource::Dir(dir) => git.commit_directory_over(base, dir, "baton: hidden tests", scratch)?,
            HiddenSource::Patch(patch) => {
                git.commit_patch_over(base, patch, "baton: hidden tests", scratch)?
            }
        };
        let tree = git.tree_with_paths_from(base, &source, &self.files, scratch)?;
        let with_tests = git.commit_tree(&tree, &[base], "baton: the base with the hidden tests", None)?;
        Ok(LaidOver { source, base: with_tests, files: self.files.clone() })
    }
}

/// Finds the hidden tests `spec` names (a directory, a patch file, or a revision whose changes
/// against the base hold them) and the test files among what it holds; the rest are returned
/// to be reported as left out. Nothing is written: the tests become objects only after the
/// agents finished.
pub(crate) fn resolve(
    repo: &Repo,
    base: &Oid,
    spec: &str,
    protected: &Protected,
) -> Result<HiddenTests, EngineError> {
    let git = repo.git();
    let path = if Path::new(spec).is_absolute() { PathBuf::from(spec) } else { repo.root.join(spec) };
    let bad = |problem| EngineError::HiddenTests { spec: spec.to_owned(), problem };
    let (source, all) = if path.is_dir() {
        let files = files_under(&path).map_err(|e| bad(HiddenTestsProblem::Unreadable(e)))?;
        (HiddenSource::Dir(path), files)
    } else if path.is_file() {
        let files = git.patch_paths(base, &path, &std::env::temp_dir()).map_err(|e| match e {
            baton_git::GitError::Failed { stderr, .. } => bad(HiddenTestsProblem::PatchDoesNotApply {
                base: base.short().to_owned(),
                detail: stderr.trim().to_owned(),
            }),
            other => EngineError::from_git(other),
        })?;
        (HiddenSource::Patch(path), files)
    } else if let Some(rev) = git.try_resolve(spec)? {
        let files = git
            .diff_files(base, &rev)
            .map_err(EngineError::from_git)?
            .into_iter()
            .filter(|f| f.kind != baton_git::ChangeKind::Deleted)
            .map(|f| f.path)
            .collect();
        (HiddenSource::Rev(rev), files)
    } else {
        return Err(bad(HiddenTestsProblem::NotFound));
    };
    let (files, left_out): (Vec<String>, Vec<String>) =
        all.into_iter().partition(|p| protected.is_protected(p) || looks_like_test(p));
    if files.is_empty() {
        return Err(bad(if left_out.is_empty() {
            HiddenTestsProblem::Empty
        } else {
            HiddenTestsProblem::NoTests { files: left_out }
        }));
    }
    Ok(HiddenTests { spec: spec.to_owned(), source, files, left_out })
}

/// The files under `dir`, as paths relative to it with `/` between parts (a `.git` inside is
/// skipped).
fn files_under(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let name = entry.file_name();
            if name == ".git" {
                continue;
            }
            let child = rel.join(&name);
            if entry.file_type()?.is_dir() {
                stack.push(child);
            } else {
                out.push(child.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}
