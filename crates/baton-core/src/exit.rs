/// The exit codes of the `baton` command. Documented in the README; never reuse a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// The command did what was asked (for `run`: a winner was chosen).
    Success,
    /// Something baton tried failed: git, the disk, a process it could not start.
    Failure,
    /// The command line is wrong, or names a run, candidate or path that does not exist.
    Usage,
    /// A configuration file or `--set` value is invalid.
    Config,
    /// The run finished, but no candidate passed the gates or the evidence did not name a
    /// confident winner.
    NoWinner,
    /// Refused to protect the user's work: dirty working tree, moved merge target, ...
    Refused,
    /// The user's repository (its refs, HEAD, index or working tree) changed while a run
    /// worked, and not by baton: the run failed and says what changed and how to undo it.
    RepositoryChanged,
    /// Interrupted by the user (Ctrl-C).
    Interrupted,
    /// A bug in baton.
    Internal,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::Config => 3,
            ExitCode::NoWinner => 4,
            ExitCode::Refused => 5,
            ExitCode::RepositoryChanged => 6,
            ExitCode::Interrupted => 130,
            ExitCode::Internal => 101,
        }
    }
}
