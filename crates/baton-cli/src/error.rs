//! Every failure is classified once, here, into a documented exit code.

use baton_core::ExitCode;
use baton_engine::EngineError;
use baton_git::GitError;

/// An error on its way to the user.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) code: ExitCode,
    pub(crate) message: String,
    pub(crate) causes: Vec<String>,
}

impl CliError {
    pub(crate) fn new(code: ExitCode, message: impl Into<String>) -> CliError {
        CliError { code, message: message.into(), causes: Vec::new() }
    }

    pub(crate) fn usage(message: impl Into<String>) -> CliError {
        CliError::new(ExitCode::Usage, message)
    }

    pub(crate) fn failure(message: impl Into<String>) -> CliError {
        CliError::new(ExitCode::Failure, message)
    }

    fn with_sources(code: ExitCode, e: &dyn std::error::Error) -> CliError {
        let mut causes = Vec::new();
        let mut source = e.source();
        while let Some(s) = source {
            let text = s.to_string();
            if !e.to_string().contains(&text) {
                causes.push(text);
            }
            source = s.source();
        }
        CliError { code, message: e.to_string(), causes }
    }

    /// Prints `error: ...` and its causes on stderr.
    pub(crate) fn print(&self) {
        eprintln!("error: {}", self.message);
        for c in &self.causes {
            eprintln!("  caused by: {c}");
        }
    }
}

impl From<EngineError> for CliError {
    fn from(e: EngineError) -> CliError {
        let code = match &e {
            EngineError::Git(g) => git_code(g),
            EngineError::Setup(_) | EngineError::UnknownStrategy { .. } => ExitCode::Config,
            EngineError::DirtyTree { .. } | EngineError::Refused(_) | EngineError::AlreadyMerged { .. } => {
                ExitCode::Refused
            }
            EngineError::NoAgents
            | EngineError::Agent(_)
            | EngineError::UnknownRun(_)
            | EngineError::AmbiguousRun { .. }
            | EngineError::NoRuns
            | EngineError::UnknownCandidate { .. }
            | EngineError::BadInput(_) => ExitCode::Usage,
            EngineError::Store(_)
            | EngineError::DiskFull(_)
            | EngineError::Io { .. }
            | EngineError::Failed(_) => ExitCode::Failure,
        };
        CliError::with_sources(code, &e)
    }
}

impl From<GitError> for CliError {
    fn from(e: GitError) -> CliError {
        CliError::with_sources(git_code(&e), &e)
    }
}

fn git_code(e: &GitError) -> ExitCode {
    match e {
        GitError::NotARepository { .. }
        | GitError::BareRepository { .. }
        | GitError::NoCommits { .. }
        | GitError::BadRevision { .. } => ExitCode::Usage,
        GitError::RefMoved { .. } => ExitCode::Refused,
        GitError::Failed { .. } | GitError::Spawn(_) | GitError::Io { .. } | GitError::Unexpected { .. } => {
            ExitCode::Failure
        }
    }
}

impl From<baton_config::ConfigError> for CliError {
    fn from(e: baton_config::ConfigError) -> CliError {
        CliError::with_sources(ExitCode::Config, &e)
    }
}

impl From<baton_store::StoreError> for CliError {
    fn from(e: baton_store::StoreError) -> CliError {
        CliError::with_sources(ExitCode::Failure, &e)
    }
}

impl From<baton_agents::AgentError> for CliError {
    fn from(e: baton_agents::AgentError) -> CliError {
        CliError::with_sources(ExitCode::Usage, &e)
    }
}
