use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Agent, AgentContext, AgentError, Plan};

/// Applies a recorded diff: how benchmarks and the demo replay what real agents wrote.
#[derive(Debug, Clone)]
pub struct PatchAgent {
    name: String,
    path: PathBuf,
}

impl PatchAgent {
    /// The agent is named after the file's stem: `patch:/x/c01.diff` is `c01`.
    pub fn new(path: PathBuf) -> PatchAgent {
        let name =
            path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "patch".into());
        PatchAgent { name, path }
    }

    pub fn named(name: impl Into<String>, path: PathBuf) -> PatchAgent {
        PatchAgent { name: name.into(), path }
    }
}

impl Agent for PatchAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn preflight(&self) -> Result<(), AgentError> {
        if !self.path.is_file() {
            return Err(AgentError::MissingFile { agent: self.name.clone(), path: self.path.clone() });
        }
        std::fs::File::open(&self.path).map(drop).map_err(|source| AgentError::Read {
            agent: self.name.clone(),
            path: self.path.clone(),
            source,
        })
    }

    fn plan(&self, _ctx: &AgentContext) -> Result<Plan, AgentError> {
        let patch = std::fs::read(&self.path).map_err(|source| AgentError::Read {
            agent: self.name.clone(),
            path: self.path.clone(),
            source,
        })?;
        Ok(Plan::ApplyPatch { patch, source: self.path.clone() })
    }
}

/// How a patch went in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMethod {
    /// `git apply`: exact.
    GitApply,
    /// `patch --fuzz`: hunks found at shifted or slightly different context.
    Fuzzy,
}

/// Why a patch did not go in.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("the patch is empty")]
    Empty,
    #[error("cannot run git apply")]
    CannotRun(#[source] std::io::Error),
    /// Neither `git apply` nor `patch` with fuzz took it; `git` is what `git apply` said.
    #[error("{}", if git.is_empty() { "the patch does not apply" } else { git.as_str() })]
    DoesNotApply { git: String },
}

/// Applies a unified diff to the checkout at `dir`: `git apply` first, then `patch` with fuzz
/// (as real-world patches often need). Leaves the tree untouched when neither works and returns
/// what `git apply` said.
pub fn apply_patch(dir: &Path, patch: &[u8]) -> Result<ApplyMethod, PatchError> {
    if patch.iter().all(u8::is_ascii_whitespace) {
        return Err(PatchError::Empty);
    }
    let mut git = baton_git::Git::at(dir).command();
    git.args(["apply", "--whitespace=nowarn", "-"]);
    let out = baton_exec::run_sync(git, Some(patch)).map_err(PatchError::CannotRun)?;
    if out.success() {
        return Ok(ApplyMethod::GitApply);
    }
    let git_error = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let mut dry = Command::new("patch");
    dry.current_dir(dir).args(["--batch", "--fuzz=5", "-p1", "--dry-run", "--silent"]);
    let fits = baton_exec::run_sync(dry, Some(patch)).map(|o| o.success()).unwrap_or(false);
    if fits {
        let mut real = Command::new("patch");
        real.current_dir(dir).args(["--batch", "--fuzz=5", "-p1", "--silent", "--no-backup-if-mismatch"]);
        if baton_exec::run_sync(real, Some(patch)).map(|o| o.success()).unwrap_or(false) {
            return Ok(ApplyMethod::Fuzzy);
        }
    }
    Err(PatchError::DoesNotApply { git: git_error })
}
