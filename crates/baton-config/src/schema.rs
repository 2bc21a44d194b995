use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use baton_core::StageKind;
use serde::Deserialize;

use crate::endpoint::Endpoint;
use crate::values::{ByteSize, de_duration, de_opt_duration};

/// The whole configuration, resolved from every layer by [`crate::load`].
///
/// `Default` gives placeholder values (zeros and empty lists), used only to check a single
/// layer that leaves keys out; baton's real defaults are the embedded `default.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub run: RunConfig,
    pub merge: MergeConfig,
    #[serde(rename = "agent")]
    pub agents: Vec<AgentConfig>,
    #[serde(rename = "strategy")]
    pub strategies: BTreeMap<String, StrategyConfig>,
    pub verify: VerifyConfig,
}

/// `[run]`: how a run is carried out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Verifications at once (tests are CPU-bound); 0: one per CPU core.
    pub jobs: usize,
    /// Agents at once (they mostly wait on their model); 0: every candidate at once.
    pub agent_jobs: usize,
    pub repeats: usize,
    pub agents: Vec<String>,
    pub strategies: Vec<String>,
    #[serde(deserialize_with = "de_duration")]
    pub agent_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub silence_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub grace: Duration,
    /// How long an agent may keep running after it reported its final result.
    #[serde(deserialize_with = "de_duration")]
    pub exit_timeout: Duration,
    pub log_limit: ByteSize,
    pub workspace: WorkspaceMode,
    pub workspace_root: PathBuf,
    pub keep_workspaces: bool,
    pub guidance_files: Vec<String>,
    pub sandbox: SandboxMode,
    pub sandbox_writable: Vec<String>,
    pub limits: LimitsConfig,
}

/// `[run.limits]`: 0 leaves a resource unlimited.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub processes: u64,
    pub memory: ByteSize,
    pub file_size: ByteSize,
    pub open_files: u64,
}

/// What confines agents, tests and examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxMode {
    /// bubblewrap where it can start a sandbox, else Landlock where the kernel has it, else
    /// nothing.
    #[default]
    Auto,
    /// bubblewrap, and no run without it.
    Bwrap,
    /// Landlock (no namespaces needed, weaker than bubblewrap), and no run without it.
    Landlock,
    /// Nothing: baton checks the user's repository after each agent instead.
    Off,
}

impl std::str::FromStr for SandboxMode {
    type Err = crate::ValueError;
    fn from_str(s: &str) -> Result<SandboxMode, crate::ValueError> {
        match s {
            "auto" => Ok(SandboxMode::Auto),
            "bwrap" => Ok(SandboxMode::Bwrap),
            "landlock" => Ok(SandboxMode::Landlock),
            "off" => Ok(SandboxMode::Off),
            other => Err(crate::ValueError::Sandbox(other.to_owned())),
        }
    }
}

impl RunConfig {
    /// `jobs`, with 0 resolved to the number of CPU cores.
    pub fn effective_jobs(&self) -> usize {
        if self.jobs > 0 {
            self.jobs
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
        }
    }

    /// The silence limit, `None` when turned off.
    pub fn silence(&self) -> Option<Duration> {
        (!self.silence_timeout.is_zero()).then_some(self.silence_timeout)
    }
}

/// How workspaces are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceMode {
    /// An overlay where this process may mount one, else a clone.
    #[default]
    Auto,
    Overlay,
    Clone,
    Worktree,
}

/// `[merge]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MergeConfig {
    pub target: String,
}

/// The kinds of agent baton can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// Any program.
    Command,
    /// Applies a recorded diff.
    Patch,
    /// Claude Code (`claude -p --output-format stream-json`).
    Claude,
    /// OpenAI Codex CLI (`codex exec --json`).
    Codex,
    /// Gemini CLI (`gemini -p --output-format stream-json`).
    Gemini,
    /// opencode (`opencode run --format json`).
    Opencode,
    /// qwen-code (`qwen --output-format stream-json`).
    Qwen,
    /// aider (`aider --message`, plain text output).
    Aider,
}

impl AgentKind {
    /// Every kind, in the order `baton doctor` lists them.
    pub const ALL: [AgentKind; 8] = [
        AgentKind::Claude,
        AgentKind::Codex,
        AgentKind::Gemini,
        AgentKind::Opencode,
        AgentKind::Qwen,
        AgentKind::Aider,
        AgentKind::Command,
        AgentKind::Patch,
    ];

    /// The name used in configuration and in `kind[:model]` on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Command => "command",
            AgentKind::Patch => "patch",
            AgentKind::Claude => "claude",
            AgentKind::Codex => "codex",
            AgentKind::Gemini => "gemini",
            AgentKind::Opencode => "opencode",
            AgentKind::Qwen => "qwen",
            AgentKind::Aider => "aider",
        }
    }

    pub fn parse(s: &str) -> Option<AgentKind> {
        AgentKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether this kind drives a coding-agent CLI (as opposed to `command` and `patch`).
    pub fn is_cli(self) -> bool {
        !matches!(self, AgentKind::Command | AgentKind::Patch)
    }
}

/// A program and its arguments: a string split like a shell would (no shell features), or a
/// list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    Line(String),
    Argv(Vec<String>),
}

impl CommandLine {
    /// The argument vector; an error message if the string has unbalanced quotes or is empty.
    pub fn argv(&self) -> Result<Vec<String>, String> {
        let argv = match self {
            CommandLine::Line(s) => {
                shell_words::split(s).map_err(|e| format!("cannot split `{s}` into words: {e}"))?
            }
            CommandLine::Argv(v) => v.clone(),
        };
        if argv.is_empty() || argv[0].is_empty() { Err("the command is empty".into()) } else { Ok(argv) }
    }
}

/// One `[[agent]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub name: String,
    pub kind: AgentKind,
    /// For `command` agents.
    #[serde(default)]
    pub command: Option<CommandLine>,
    /// For `patch` agents: the diff file, relative to the file that declared it.
    #[serde(default)]
    pub patch: Option<PathBuf>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
    /// Extra environment variables, set as given.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// For agent CLIs: the binary to run instead of the kind's name on PATH.
    #[serde(default)]
    pub program: Option<PathBuf>,
    /// The model, as the CLI names it.
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort, for CLIs that take one (claude, codex, opencode, aider).
    #[serde(default)]
    pub effort: Option<String>,
    /// Extra arguments added to the CLI's command line.
    #[serde(default)]
    pub args: Vec<String>,
    /// A different model endpoint (an OpenAI-compatible, Anthropic or Gemini base URL).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The environment variable that holds the key for `base_url`.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Names of the user's environment variables to pass through (values are never logged).
    #[serde(default)]
    pub env_pass: Vec<String>,
    /// Stop the agent after this many model turns.
    #[serde(default)]
    pub max_turns: Option<u32>,
    /// Stop the agent once it has used this many tokens (input plus output), as it reports them.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Stop the agent once it has spent this much: priced with `price` when set, else as the
    /// CLI reports it (Claude Code reports cost).
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
    /// What the model costs, in US dollars per million input and output tokens: the cost
    /// shown and checked against `max_cost_usd` is computed from it.
    #[serde(default)]
    pub price: Option<Price>,
    /// What its process may reach when sandboxed.
    #[serde(default)]
    pub network: AgentNetwork,
}

/// `network` of an `[[agent]]`: what a sandboxed agent reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentNetwork {
    /// The network, as the user's programs do.
    #[default]
    Host,
    /// Only its `base_url`'s host and port, through baton's relay.
    Endpoint,
}

/// `price = { input = 3.0, output = 15.0 }`: US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl AgentConfig {
    /// The endpoint its process is held to: `None` when it has the network; an error when it
    /// is held to one that it does not name or that cannot be held to (see [`Endpoint::parse`]).
    pub fn only_endpoint(&self) -> Result<Option<Endpoint>, String> {
        only_endpoint(self.network, self.base_url.as_deref())
    }

    /// An agent of `kind` with everything else left to the defaults.
    pub fn of_kind(name: impl Into<String>, kind: AgentKind) -> AgentConfig {
        AgentConfig {
            name: name.into(),
            kind,
            command: None,
            patch: None,
            timeout: None,
            env: BTreeMap::new(),
            program: None,
            model: None,
            effort: None,
            args: Vec::new(),
            base_url: None,
            api_key_env: None,
            env_pass: Vec::new(),
            max_turns: None,
            max_tokens: None,
            max_cost_usd: None,
            price: None,
            network: AgentNetwork::Host,
        }
    }
}

/// The endpoint an agent with `network` and `base_url` is held to (see
/// [`AgentConfig::only_endpoint`]).
pub fn only_endpoint(network: AgentNetwork, base_url: Option<&str>) -> Result<Option<Endpoint>, String> {
    match (network, base_url) {
        (AgentNetwork::Host, _) => Ok(None),
        (AgentNetwork::Endpoint, None) => {
            Err("network = \"endpoint\" needs `base_url`: the endpoint it may reach".into())
        }
        (AgentNetwork::Endpoint, Some(url)) => {
            Endpoint::parse(url).map(Some).map_err(|e| format!("network = \"endpoint\": base_url {e}"))
        }
    }
}

/// One `[strategy.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    pub prompt: String,
}

/// `[verify]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// How many times a test stage with failing tests runs again to tell flaky tests apart.
    pub reruns: u32,
    pub protected: Vec<String>,
    pub related: Vec<RelatedRule>,
    /// How long a candidate may spend on related tests that only other candidates' changes
    /// relate to, judged by the base's time on them; 0 runs only its own.
    #[serde(deserialize_with = "de_duration")]
    pub related_budget: Duration,
    #[serde(rename = "stage")]
    pub stages: Vec<StageConfig>,
    /// Commands whose output is the behaviour the task is about.
    #[serde(rename = "probe")]
    pub probes: Vec<ProbeConfig>,
    /// Also take probes from runnable examples in the task text.
    pub task_probes: bool,
    /// The interpreter for probes taken from the task.
    pub probe_python: String,
    #[serde(deserialize_with = "de_duration")]
    pub probe_timeout: Duration,
    /// At most this many distinct Python scripts that candidates added at the repository's top
    /// (their reproductions of the problem) run as probes on every subject; 0 runs none.
    pub candidate_scripts: usize,
    /// Run the tests candidates wrote on the base and on every candidate.
    pub matrix: bool,
    /// At most this many distinct sets of candidate-written tests go into the matrix.
    pub matrix_limit: usize,
    /// Acceptance tests the agents never see: a directory laid out like the repository
    /// (relative to the repository's root), or a revision whose changes are the tests.
    pub hidden_tests: String,
}

/// One `[[verify.probe]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    pub name: String,
    /// Run through `sh -c` in the workspace; its output and exit code are the behaviour.
    pub run: String,
}

/// A path-mapping rule from a changed file to related tests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelatedRule {
    pub from: String,
    pub to: Vec<String>,
}

/// How a stage's output is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParserKind {
    ExitCode,
    Junit,
    Libtest,
    Pytest,
    Unittest,
    Tap,
    GoJson,
    Regex,
    /// Lint or type-check findings: every line matching `pattern` is one.
    Findings,
    /// SARIF (security scanners): the results in the `report` file.
    Sarif,
    /// A number (`pattern`'s group `value`) compared with the base's, e.g. a benchmark.
    Metric,
}

impl ParserKind {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ParserKind::ExitCode => "exit-code",
            ParserKind::Junit => "junit",
            ParserKind::Libtest => "libtest",
            ParserKind::Pytest => "pytest",
            ParserKind::Unittest => "unittest",
            ParserKind::Tap => "tap",
            ParserKind::GoJson => "go-json",
            ParserKind::Regex => "regex",
            ParserKind::Findings => "findings",
            ParserKind::Sarif => "sarif",
            ParserKind::Metric => "metric",
        }
    }
}

/// The placeholder in a stage's `rerun` command for the failing tests' names.
pub const FAILING_TESTS: &str = "{failing_tests}";

/// One `[[verify.stage]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    pub name: String,
    #[serde(default = "default_stage_kind")]
    pub kind: StageKind,
    pub run: String,
    /// For a test stage: the command that runs the failing tests again (`{failing_tests}`: their
    /// names as the parser reports them), to tell flaky ones apart. Without it the whole stage
    /// runs again.
    #[serde(default)]
    pub rerun: Option<String>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default = "default_parser")]
    pub parser: ParserKind,
    #[serde(default)]
    pub report: Option<String>,
    #[serde(default)]
    pub pattern: Option<String>,
    /// For the regex parser: a line matching this pattern (group `section`) starts a section,
    /// such as a test file's header; the names of the tests that follow are prefixed with it.
    #[serde(default)]
    pub section: Option<String>,
    #[serde(default)]
    pub status: BTreeMap<String, String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// For the metric parser: whether a lower or a higher value is better.
    #[serde(default)]
    pub better: Better,
    /// For the metric parser: the relative change tolerated before it counts as worse.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Whether it may reach the network when sandboxed (a setup stage that installs packages);
    /// without it, only a loopback of its own.
    #[serde(default)]
    pub network: bool,
}

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    #[default]
    Lower,
    Higher,
}

fn default_tolerance() -> f64 {
    0.05
}

fn default_stage_kind() -> StageKind {
    StageKind::Test
}

fn default_parser() -> ParserKind {
    ParserKind::ExitCode
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_a_shell_without_expansion() {
        let c = CommandLine::Line(r#"./fix.sh --msg "two words" 'it''s' a\ b $HOME"#.into());
        assert_eq!(c.argv().unwrap(), ["./fix.sh", "--msg", "two words", "its", "a b", "$HOME"]);
        assert!(CommandLine::Line("echo 'oops".into()).argv().unwrap_err().contains("cannot split"));
        assert!(CommandLine::Line("   ".into()).argv().unwrap_err().contains("empty"));
    }
}
