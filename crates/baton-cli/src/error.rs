//! Every failure is classified once, here, into a documented exit code.

use baton_core::ExitCode;
use baton_engine::{EngineError, Refusal};
use baton_git::GitError;

/// An error on its way to the user.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) code: ExitCode,
    pub(crate) message: String,
    pub(crate) causes: Vec<String>,
    /// What the user can do about it.
    pub(crate) hint: Option<String>,
}

impl CliError {
    pub(crate) fn new(code: ExitCode, message: impl Into<String>) -> CliError {
        CliError { code, message: message.into(), causes: Vec::new(), hint: None }
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
        CliError { code, message: e.to_string(), causes, hint: None }
    }

    /// Prints `error: ...` and its causes on stderr.
    pub(crate) fn print(&self) {
        eprintln!("error: {}", self.message);
        for c in &self.causes {
            eprintln!("  caused by: {c}");
        }
        if let Some(h) = &self.hint {
            eprintln!("  hint: {h}");
        }
    }
}

impl From<EngineError> for CliError {
    fn from(e: EngineError) -> CliError {
        let code = match &e {
            EngineError::Git(g) => git_code(g),
            EngineError::Setup(_) | EngineError::UnknownStrategy { .. } | EngineError::Sandbox(_) => {
                ExitCode::Config
            }
            EngineError::DirtyTree { .. } | EngineError::Refused(_) | EngineError::AlreadyMerged { .. } => {
                ExitCode::Refused
            }
            EngineError::NoAgents
            | EngineError::TooManyCandidates { .. }
            | EngineError::Agent(_)
            | EngineError::UnknownRun(_)
            | EngineError::AmbiguousRun { .. }
            | EngineError::NoRuns
            | EngineError::UnknownCandidate { .. }
            | EngineError::HiddenTests { .. } => ExitCode::Usage,
            EngineError::RepositoryChanged { .. } => ExitCode::RepositoryChanged,
            EngineError::Store(_)
            | EngineError::DiskFull(_)
            | EngineError::Io { .. }
            | EngineError::Failed(_) => ExitCode::Failure,
        };
        let hint = match &e {
            EngineError::Refused(r) => Some(refusal_hint(r)),
            EngineError::DirtyTree { .. } => {
                Some("commit or stash them, or pass --include-dirty to run on a snapshot of them".into())
            }
            EngineError::NoAgents => Some(
                "pass --agent (e.g. --agent command:./fix.sh or --agent patch:fix.diff) or set run.agents in baton.toml"
                    .into(),
            ),
            EngineError::TooManyCandidates { .. } => {
                Some("use fewer agents, strategies or repeats (-n, run.repeats)".into())
            }
            EngineError::UnknownRun(_) => Some("`baton status` lists the runs there are".into()),
            EngineError::AmbiguousRun { .. } => Some("give more of the id".into()),
            EngineError::NoRuns => Some("start one with `baton run`".into()),
            _ => None,
        };
        let mut error = CliError { hint, ..CliError::with_sources(code, &e) };
        if let EngineError::RepositoryChanged { root, changes, .. } = &e {
            for c in changes {
                error.message.push_str(&format!("\n  changed: {}", c.change));
            }
            let undo: Vec<String> =
                changes.iter().flat_map(|c| c.undo.iter().map(|u| format!("\n    {u}"))).collect();
            error.hint = Some(format!(
                "baton restored nothing (it cannot tell your own edits from an agent's); if you did not make these changes, these commands, run in {}, put them back:{}",
                root.display(),
                undo.concat()
            ));
        }
        error
    }
}

/// What to do about a refusal: the library says what is so, the CLI how to go on.
fn refusal_hint(r: &Refusal) -> String {
    match r {
        Refusal::MergedOther { .. } => "start a new run to land another change".into(),
        Refusal::NoWinner { run } => format!("choose one with --candidate (see `baton show {run}`)"),
        Refusal::NeverVerified { run, candidate, .. } => {
            format!("read it (`baton diff {run} {candidate}`) and pass --force to merge it anyway")
        }
        Refusal::NoWork { run, .. } => format!("`baton show {run}` says what happened to it"),
        Refusal::NoTarget { .. } => "pass --target BRANCH".into(),
        Refusal::NoBranch { .. } => "name an existing branch with --target, or create it first".into(),
        Refusal::TargetMoved { target, .. } => format!("start a new run from the new `{target}`"),
        Refusal::Uncommitted { target, .. } => {
            format!("commit or stash them before merging onto the checked-out `{target}`")
        }
        Refusal::TouchesUncommitted { .. } => {
            "commit that work first (exactly as it is), then `baton merge` lands the change on top".into()
        }
        Refusal::Conflicts { .. } => "start a new run from the branch as it is now".into(),
        Refusal::StillRunning { .. } => "wait for it, or stop it (Ctrl-C where it runs)".into(),
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
