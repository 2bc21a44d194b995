use std::path::PathBuf;

use baton_core::ExitCode;
use clap::{Args, Parser, Subcommand};

/// Run several AI coding agents on one task, verify every result against your tests, ship the
/// best.
#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about,
    long_about = "Run several AI coding agents on one task at once, each in its own workspace from the \
same base commit; verify every candidate with your project's build and tests against a baseline of \
the base commit; rank them on that evidence and merge the winner.\n\nTry it with no setup: `baton demo`.",
    after_help = "Exit codes: 0 success; 1 failure; 2 usage (bad arguments, unknown run or candidate, \
not a repository); 3 configuration error; 4 the run finished without a winner (diff: the run has \
none); 5 refused to protect your work (dirty tree, moved target, never-verified candidate); 101 \
internal error; 130 interrupted.",
    propagate_version = true
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Run as if started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Read configuration from FILE too, on top of baton.toml (repeatable).
    #[arg(long = "config", global = true, value_name = "FILE")]
    pub(crate) config: Vec<PathBuf>,
    /// Override one configuration key, e.g. --set run.jobs=2 (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Print less: only results and errors.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// Print more: debug logging (or set RUST_LOG).
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a commented baton.toml for this repository.
    Init(InitArgs),
    /// Run agents on a task, verify and rank what they produce.
    Run(RunArgs),
    /// List recent runs.
    Status(StatusArgs),
    /// Show a run's scoreboard and the evidence behind each place.
    Show(ShowArgs),
    /// Show a candidate's change against the run's base (the latest winner by default).
    Diff(DiffArgs),
    /// Squash-merge a run's winner (or a chosen candidate) onto the target branch.
    Merge(MergeArgs),
    /// Remove workspaces of finished runs; candidate refs stay.
    Clean(CleanArgs),
    /// Run the whole pipeline on a built-in sample project (no keys or network needed).
    Demo(DemoArgs),
    /// Print the configuration `baton run` would use here, each value with the layer that set
    /// it (default, user file, repository file, --config file, environment, --set).
    Config(ConfigArgs),
    /// Check what `baton run` needs: git, the agent CLIs and their versions, keys (by name,
    /// never values), the sandbox. Exits 1 when the configured agents cannot run.
    Doctor(DoctorArgs),
    /// Inside an agent's sandbox: relay its endpoint and run it (baton starts this itself).
    #[command(name = baton_exec::proxy::FORWARD_COMMAND, hide = true)]
    Forward(ForwardArgs),
}

/// `baton __forward --socket PATH --listen ADDR... -- COMMAND...` (see baton_exec::proxy).
#[derive(Debug, Args)]
pub(crate) struct ForwardArgs {
    /// The unix socket of baton's relay to the endpoint.
    #[arg(long, value_name = "PATH")]
    pub(crate) socket: PathBuf,
    /// Where the agent looks for its endpoint (repeatable).
    #[arg(long, value_name = "ADDR", required = true)]
    pub(crate) listen: Vec<std::net::SocketAddr>,
    /// The agent's command line.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub(crate) command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) check: CheckArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Print a JSON list of {key, value, layer, from}.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Overwrite an existing baton.toml.
    #[arg(long)]
    pub(crate) force: bool,
    #[command(flatten)]
    pub(crate) check: CheckArgs,
}

/// The verification stages, run once on HEAD to see that they can tell candidates apart.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Do not run the verification stages once on HEAD.
    #[arg(long)]
    pub(crate) no_check: bool,
    /// How long each stage may run in that check.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = baton_config::parse_duration)]
    pub(crate) check_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
baton run \"Fix the off-by-one in paginate()\" --agent command:./my-agent.sh -n 3\n  \
baton run --task-file issue.md --agent patch:a.diff --agent patch:b.diff\n  \
baton run \"Add retries\" --agent claude --agent codex:gpt-5 --strategy minimal --strategy test-first\n\n\
Agents: `claude`, `claude:opus`, `codex`, `gemini`, `opencode`, `qwen`, `aider` (KIND[:MODEL]) drive \
that coding-agent CLI in its headless mode (see `baton doctor`); `command:PROGRAM [ARGS]` runs any program in each candidate's workspace, with the prompt \
on stdin and in $BATON_PROMPT_FILE; `patch:FILE` applies a recorded diff; a plain NAME is an \
[[agent]] from baton.toml. Candidates are agents x strategies x repeats (-n).")]
pub(crate) struct RunArgs {
    /// The task, as text. Use --task-file for longer ones.
    #[arg(value_name = "TASK", required_unless_present = "task_file", conflicts_with = "task_file")]
    pub(crate) task: Option<std::ffi::OsString>,
    /// Read the task from FILE (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub(crate) task_file: Option<PathBuf>,
    /// An agent: KIND[:MODEL] (claude, codex, gemini, opencode, qwen, aider), command:PROGRAM,
    /// patch:FILE.diff, or the name of an [[agent]] (repeatable).
    #[arg(short, long = "agent", value_name = "AGENT")]
    pub(crate) agents: Vec<String>,
    /// A strategy: a named addition to the prompt, such as minimal or test-first (repeatable).
    #[arg(short, long = "strategy", value_name = "NAME")]
    pub(crate) strategies: Vec<String>,
    /// Candidates per agent and strategy, 1 to 64 (default: run.repeats). A run has at most 256
    /// candidates (agents x strategies x repeats), however they are asked for.
    #[arg(short = 'n', long = "repeats", value_name = "N")]
    pub(crate) repeats: Option<u32>,
    /// The commit candidates start from.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub(crate) base: String,
    /// Run on a snapshot of uncommitted changes instead of refusing.
    #[arg(long)]
    pub(crate) include_dirty: bool,
    /// How many verifications (builds, tests, probes: CPU work) run at once, at most 256; 0
    /// means one per CPU core (default: run.jobs).
    #[arg(short, long, value_name = "N")]
    pub(crate) jobs: Option<u32>,
    /// How many agents run at once (they mostly wait on their model), at most 256; 0 means
    /// every candidate at once (default: run.agent_jobs).
    #[arg(long, value_name = "N")]
    pub(crate) agent_jobs: Option<u32>,
    /// The branch `baton merge` lands on (default: merge.target, or the current branch).
    #[arg(long, value_name = "BRANCH")]
    pub(crate) target: Option<String>,
    /// What confines agents, tests and examples (default: run.sandbox): `auto` (bubblewrap
    /// where it works, else Landlock where the kernel has it), `bwrap` (bubblewrap or no run),
    /// `landlock` (Landlock or no run: needs no user namespaces, but key files are unreadable
    /// rather than hidden, tests get no TCP at all and no process namespace), `off`
    /// (unconfined; baton checks your repository after each agent instead).
    #[arg(long, value_name = "MODE", value_parser = ["auto", "bwrap", "landlock", "off"])]
    pub(crate) sandbox: Option<String>,
    /// A command whose output shows the behaviour the task is about, run on the base and on
    /// every candidate (repeatable). Examples in the task text are probes too.
    #[arg(long = "probe", value_name = "COMMAND")]
    pub(crate) probes: Vec<String>,
    /// Acceptance tests the agents never see: a directory laid out like the repository, a
    /// patch file, or a revision whose changes against the base hold them. Only test files are
    /// taken (by verify.protected or their names); the run says which, and what it left out.
    /// They join verification only.
    #[arg(long, value_name = "DIR|PATCH|REV")]
    pub(crate) hidden_tests: Option<String>,
    /// Print events as JSON, one per line, on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// How many runs to list.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub(crate) limit: usize,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The run (an id or a unique prefix); the latest when omitted.
    #[arg(value_name = "RUN")]
    pub(crate) run: Option<String>,
    /// Print the scoreboard as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// `CANDIDATE` of the latest run, `RUN CANDIDATE`, `RUN` (its winner), or nothing: the
    /// latest run's winner.
    #[arg(value_name = "RUN_OR_CANDIDATE", num_args = 0..=2)]
    pub(crate) ids: Vec<String>,
    /// Only list changed files with line counts.
    #[arg(long)]
    pub(crate) stat: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// The run (an id or a unique prefix), or a candidate of the latest run; the latest run
    /// when omitted.
    #[arg(value_name = "RUN")]
    pub(crate) run: Option<String>,
    /// Merge this candidate instead of the winner.
    #[arg(short, long, value_name = "ID")]
    pub(crate) candidate: Option<String>,
    /// Merge onto this branch instead of the one the run recorded.
    #[arg(long, value_name = "BRANCH")]
    pub(crate) target: Option<String>,
    /// Merge a candidate that was never verified (its run was cancelled or failed first).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CleanArgs {
    /// Only this run (an id or a unique prefix); all finished runs when omitted.
    #[arg(value_name = "RUN")]
    pub(crate) run: Option<String>,
    /// Also delete the runs' candidate refs (their work is then gone unless merged).
    #[arg(long)]
    pub(crate) refs: bool,
    /// Also remove workspaces whose tree holds work that is on no ref (kept otherwise).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Build the sample here instead of in a new temporary directory (must not exist or be empty).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Print events as JSON, one per line, on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Parses the command line; prints help, version or the usage error itself.
pub(crate) fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitCode::Success,
                _ => ExitCode::Usage,
            };
            let _ = e.print();
            Err(
                if code == ExitCode::Success
                    && e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                {
                    ExitCode::Usage
                } else {
                    code
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
