//! Agents: what baton runs to produce a candidate.
//!
//! An [`Agent`] does not run anything itself. Given the candidate's workspace and prompt it
//! returns a [`Plan`]: either a process to supervise plus a parser for its output (every
//! coding-agent CLI fits this shape: a command line, an environment, a stream of output lines
//! and a final verdict read from that output), or a patch to apply. The engine carries the plan
//! out with `baton-exec`, feeds the output lines to the parser, and asks the parser for the
//! outcome, so adding an agent never touches the engine.

mod cli;
mod command;
mod drive;
mod patch;
mod prompt;

use std::path::{Path, PathBuf};

use baton_core::{AgentActivity, AgentOutcome, CandidateId, RunId};
use baton_exec::End;

pub use cli::{CliAgent, CliInfo, Credentials, VersionError, cli_version};
pub use command::CommandAgent;
pub use drive::drive;
pub use patch::{ApplyMethod, PatchAgent, PatchError, apply_patch};
pub use prompt::compose_prompt;

/// Why an agent cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent `{agent}`: `{program}` was not found on PATH")]
    ProgramNotFound { agent: String, program: String },
    #[error("agent `{agent}`: {} does not exist", path.display())]
    MissingFile { agent: String, path: PathBuf },
    #[error("agent `{agent}`: {} is not executable", path.display())]
    NotExecutable { agent: String, path: PathBuf },
    #[error("agent `{agent}`: cannot read {}", path.display())]
    Read {
        agent: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{spec}` is not an agent: {reason}")]
    BadSpec { spec: String, reason: String },
    #[error("agent `{agent}`: `{program}` is not installed (install it with: {install})")]
    CliNotInstalled { agent: String, program: String, install: String },
    #[error("agent `{agent}`: no API key: set {vars} (or log in with the CLI itself)")]
    MissingKey { agent: String, vars: String },
    #[error("agent `{agent}`: {reason}")]
    Unusable { agent: String, reason: String },
}

/// What an agent is given for one candidate.
#[derive(Debug, Clone)]
pub struct AgentContext {
    pub run: RunId,
    pub candidate: CandidateId,
    pub strategy: String,
    /// The directory the agent works in: the candidate's checkout.
    pub workspace: PathBuf,
    pub prompt: String,
    /// The prompt, also written to a file outside the workspace.
    pub prompt_file: PathBuf,
    /// Where the agent's output log goes.
    pub log: PathBuf,
    pub log_limit: u64,
    pub timeout: std::time::Duration,
    pub silence_timeout: Option<std::time::Duration>,
    pub grace: std::time::Duration,
    /// A directory of the candidate's own, outside the workspace, for the agent's HOME, TMPDIR
    /// and configuration (agent CLIs keep session state there).
    pub home: PathBuf,
    /// How long an agent may run on after it reported its final result.
    pub exit_timeout: std::time::Duration,
    /// Whether baton's sandbox confines the agent's process: a CLI that would sandbox its own
    /// commands leaves that to baton (a sandbox cannot start inside another here).
    pub confined: bool,
}

/// How to produce a candidate.
pub enum Plan {
    /// Run a process in the workspace and read its output with the parser.
    Process { spec: Box<baton_exec::Spec>, parser: Box<dyn OutputParser> },
    /// Apply a recorded diff to the workspace.
    ApplyPatch { patch: Vec<u8>, source: PathBuf },
}

/// Reads an agent's stdout as it arrives and decides how the agent ended.
pub trait OutputParser: Send {
    /// One line of stdout; returns what the agent reported in it, if anything.
    fn line(&mut self, line: &str) -> Vec<AgentActivity>;
    /// The outcome, from everything seen and how the process ended.
    fn outcome(&self, end: &End) -> AgentOutcome;
    /// Asked after every line: whether the agent should be stopped.
    fn stop(&self) -> Option<Stop> {
        None
    }
}

/// Why a parser wants its process stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Now: a budget ran out.
    Now,
    /// The agent reported its final result: stop it if it is still running after this long.
    After(std::time::Duration),
}

/// One kind of agent, configured.
pub trait Agent: Send + Sync {
    /// The name candidates show (`fixer`, `claude:opus`, `c01` for `patch:c01.diff`).
    fn name(&self) -> &str;
    /// Checks, before anything is created, that the agent can run at all.
    fn preflight(&self) -> Result<(), AgentError>;
    /// The plan for one candidate.
    fn plan(&self, ctx: &AgentContext) -> Result<Plan, AgentError>;
    /// The agent's own wall-clock limit, if it overrides the run's.
    fn timeout(&self) -> Option<std::time::Duration> {
        None
    }
    /// What changes about the agent when baton's sandbox confines it, for the run header.
    fn when_confined(&self) -> Option<String> {
        None
    }
    /// The endpoint its process may reach, and nothing else (`network = "endpoint"`); `None`:
    /// it reaches the network as the user's programs do.
    fn only_endpoint(&self) -> Result<Option<baton_config::Endpoint>, AgentError> {
        Ok(None)
    }
}

/// The outcome of a process by its exit status alone: for agents with nothing better to go by.
pub fn outcome_from_exit(end: &End) -> AgentOutcome {
    match end {
        End::Exited { code: 0 } => AgentOutcome::Completed,
        End::Exited { code } => AgentOutcome::Failed { reason: format!("exited with code {code}") },
        End::Signaled { signal } => AgentOutcome::Failed { reason: format!("killed by signal {signal}") },
        End::TimedOut { kind } => AgentOutcome::TimedOut { kind: *kind },
        End::Cancelled => AgentOutcome::Cancelled,
        End::SpawnFailed { message } => AgentOutcome::SpawnFailed { message: message.clone() },
    }
}

/// Finds `program` the way a shell would: as a path when it contains `/` (relative to `cwd`),
/// else on `PATH`. Returns the absolute path.
pub fn resolve_program(program: &str, cwd: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec =
        |p: &Path| p.is_file() && p.metadata().map(|m| m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    if program.contains('/') {
        let p = cwd.join(program);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| is_exec(p))
}
