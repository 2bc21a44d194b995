//! Coding-agent CLIs (Claude Code, Codex, Gemini CLI, opencode, qwen-code, aider), all driven the
//! same way.
//!
//! # How an agent CLI runs
//!
//! [`CliAgent::plan`] builds the command line for the CLI's headless, structured mode (one
//! module per CLI knows its flags) and an environment built from nothing: a short list of the
//! user's variables (PATH, locale, proxies, certificates), the CLI's own key variables and the
//! agent's `env_pass`, by name, and a HOME, TMPDIR and XDG directories of the candidate's own
//! under the run's artifacts, so that concurrent candidates never share session state. The user's
//! login files for the CLI are linked into that HOME. Stdin is closed: Codex waits forever on an
//! open pipe.
//!
//! The CLI's stdout goes to a [`CliParser`]: a per-CLI [`Dialect`] turns each JSON line into
//! normalized [`AgentActivity`] and notes the CLI's terminal event, and the shared part counts
//! turns, tokens and cost against the agent's budgets, reports lines it cannot read, and warns
//! when a tool call names a file outside the workspace. The outcome comes from the terminal
//! event, not the exit code: aider exits 0 on API errors, Claude and Gemini exit 0 on SIGINT
//! (see `shared/research/agent-clis.md`).

mod aider;
mod claude;
mod codex;
mod gemini;
mod opencode;
mod qwen;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use baton_config::{AgentConfig, AgentKind};
use baton_core::{AgentActivity, AgentOutcome};
use baton_exec::{End, Spec, StdinSource};
use serde_json::Value;

use crate::{Agent, AgentContext, AgentError, OutputParser, Plan, Stop, resolve_program};

/// What baton knows about one agent CLI.
#[derive(Debug, Clone, Copy)]
pub struct CliInfo {
    pub kind: AgentKind,
    /// The binary's name on PATH.
    pub program: &'static str,
    /// How to install it.
    pub install: &'static str,
    /// Environment variables that hold its API keys, any one of which will do.
    pub keys: &'static [&'static str],
    /// Login files under the user's HOME that stand in for a key.
    pub logins: &'static [&'static str],
    /// Variables the CLI reads besides its keys (endpoints, project ids), passed through too.
    pub passthrough: &'static [&'static str],
    /// The oldest version known to have every flag baton uses, and the flag that needs it.
    pub min_version: (u32, u32, u32),
    pub min_version_for: &'static str,
}

const CLIS: [CliInfo; 6] = [
    CliInfo {
        kind: AgentKind::Claude,
        program: "claude",
        install: "npm install -g @anthropic-ai/claude-code",
        keys: &["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"],
        logins: &[".claude/.credentials.json"],
        passthrough: &[
            "ANTHROPIC_BASE_URL",
            "CLAUDE_CODE_USE_BEDROCK",
            "CLAUDE_CODE_USE_VERTEX",
            "AWS_REGION",
            "AWS_PROFILE",
        ],
        min_version: (1, 0, 0),
        min_version_for: "--output-format stream-json",
    },
    CliInfo {
        kind: AgentKind::Codex,
        program: "codex",
        install: "npm install -g @openai/codex",
        keys: &["OPENAI_API_KEY", "CODEX_API_KEY"],
        logins: &[".codex/auth.json"],
        passthrough: &[],
        min_version: (0, 44, 0),
        min_version_for: "`codex exec --json` thread/item events",
    },
    CliInfo {
        kind: AgentKind::Gemini,
        program: "gemini",
        install: "npm install -g @google/gemini-cli",
        keys: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        logins: &[".gemini/oauth_creds.json", ".gemini/google_accounts.json"],
        passthrough: &[
            "GOOGLE_GENAI_USE_VERTEXAI",
            "GOOGLE_CLOUD_PROJECT",
            "GOOGLE_CLOUD_LOCATION",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ],
        min_version: (0, 10, 0),
        min_version_for: "--output-format stream-json",
    },
    CliInfo {
        kind: AgentKind::Opencode,
        program: "opencode",
        install: "npm install -g opencode-ai",
        keys: &[
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "GEMINI_API_KEY",
            "OPENROUTER_API_KEY",
            "GROQ_API_KEY",
        ],
        logins: &[".local/share/opencode/auth.json"],
        passthrough: &[],
        min_version: (0, 15, 0),
        min_version_for: "`opencode run --format json`",
    },
    CliInfo {
        kind: AgentKind::Qwen,
        program: "qwen",
        install: "npm install -g @qwen-code/qwen-code",
        keys: &["OPENAI_API_KEY", "DASHSCOPE_API_KEY"],
        logins: &[".qwen/oauth_creds.json", ".qwen/settings.json"],
        passthrough: &["OPENAI_BASE_URL", "OPENAI_MODEL"],
        min_version: (0, 1, 0),
        min_version_for: "--output-format stream-json",
    },
    CliInfo {
        kind: AgentKind::Aider,
        program: "aider",
        install: "pipx install aider-chat (or: python3 -m pip install aider-chat)",
        keys: &[
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "GEMINI_API_KEY",
            "DEEPSEEK_API_KEY",
            "OPENROUTER_API_KEY",
        ],
        logins: &[],
        passthrough: &["OPENAI_API_BASE", "AIDER_MODEL"],
        min_version: (0, 80, 0),
        min_version_for: "--no-show-release-notes",
    },
];

impl CliInfo {
    /// The agent CLI of `kind`; `None` for `command` and `patch`.
    pub fn of(kind: AgentKind) -> Option<&'static CliInfo> {
        CLIS.iter().find(|c| c.kind == kind)
    }

    pub fn all() -> &'static [CliInfo] {
        &CLIS
    }

    /// Whether a key variable is set or a login file exists in the user's HOME.
    pub fn credentials(&self, extra: Option<&str>) -> Credentials {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        if let Some(k) = extra {
            return if set(k) { Credentials::Key(k.to_owned()) } else { Credentials::Missing };
        }
        if let Some(k) = self.keys.iter().find(|k| set(k)) {
            return Credentials::Key((*k).to_owned());
        }
        let home = user_home();
        match self.logins.iter().find(|f| home.join(f).is_file()) {
            Some(f) => Credentials::Login(home.join(f)),
            None => Credentials::Missing,
        }
    }
}

/// How an agent CLI would authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// This environment variable is set (its value is never read by baton for display).
    Key(String),
    /// The CLI's login file.
    Login(PathBuf),
    Missing,
}

fn user_home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"))
}

/// Runs `program --version` and returns the first `x.y.z` it prints. Remembered per program for
/// the life of the process: a node CLI takes up to 3 s to say its version, and every agent of
/// a run (checked by the front end and again by the engine) would ask again. A version found is
/// also kept on disk (see [`VersionCache`]) for the next runs, while the program's file is
/// unchanged and for at most a day.
pub fn cli_version(program: &Path) -> Result<(u32, u32, u32), VersionError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Versions = Mutex<HashMap<PathBuf, Result<(u32, u32, u32), VersionError>>>;
    static SEEN: OnceLock<Versions> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(v) = seen.lock().unwrap_or_else(|e| e.into_inner()).get(program) {
        return v.clone();
    }
    let cache = VersionCache::default_location();
    let v = match cache.as_ref().and_then(|c| c.get(program)) {
        Some(v) => Ok(v),
        None => {
            let v = ask_version(program);
            if let (Some(cache), Ok(v)) = (&cache, &v) {
                cache.put(program, *v);
            }
            v
        }
    };
    seen.lock().unwrap_or_else(|e| e.into_inner()).insert(program.to_owned(), v.clone());
    v
}

/// Versions of agent CLIs found by earlier runs, in `baton/cli-versions.json` under the user's
/// cache directory. An entry holds while the program's file (the end of its symlinks) has the
/// size and modification time it had, and for a day at most: a CLI behind a wrapper script can
/// change without the wrapper changing.
pub(crate) struct VersionCache {
    file: PathBuf,
}

/// How long a version found is trusted without asking again.
const VERSION_TTL_SECS: u64 = 24 * 3600;

impl VersionCache {
    pub(crate) fn at(file: PathBuf) -> VersionCache {
        VersionCache { file }
    }

    fn default_location() -> Option<VersionCache> {
        let cache = baton_core::user_cache_dir()?;
        Some(VersionCache::at(cache.join("baton").join("cli-versions.json")))
    }

    /// What identifies the program's file as it is now: its resolved path, size and mtime.
    fn identity(program: &Path) -> Option<(String, String)> {
        let real = program.canonicalize().ok()?;
        let meta = std::fs::metadata(&real).ok()?;
        let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
        Some((program.display().to_string(), format!("{}|{}|{mtime}", real.display(), meta.len())))
    }

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    fn read(&self) -> serde_json::Map<String, serde_json::Value> {
        std::fs::read(&self.file)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default()
    }

    /// The version kept for `program`, if its file is unchanged and the entry is fresh.
    pub(crate) fn get(&self, program: &Path) -> Option<(u32, u32, u32)> {
        let (key, identity) = VersionCache::identity(program)?;
        let entry = self.read().remove(&key)?;
        let fresh =
            entry["at"].as_u64().is_some_and(|at| VersionCache::now().saturating_sub(at) < VERSION_TTL_SECS);
        if !fresh || entry["file"].as_str() != Some(identity.as_str()) {
            return None;
        }
        let v = entry["version"].as_array()?;
        let part = |i: usize| v.get(i)?.as_u64().and_then(|n| u32::try_from(n).ok());
        Some((part(0)?, part(1)?, part(2)?))
    }

    /// Keeps `version` for `program`. Best effort: a cache that cannot be written is asked again.
    pub(crate) fn put(&self, program: &Path, version: (u32, u32, u32)) {
        use std::sync::Mutex;
        static WRITING: Mutex<()> = Mutex::new(());
        let Some((key, identity)) = VersionCache::identity(program) else { return };
        let _one_at_a_time = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read();
        all.insert(
            key,
            serde_json::json!({"file": identity, "at": VersionCache::now(), "version": [version.0, version.1, version.2]}),
        );
        let Some(dir) = self.file.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let tmp = self.file.with_extension(format!("tmp-{}", std::process::id()));
        if std::fs::write(&tmp, serde_json::Value::Object(all).to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, &self.file);
        }
    }
}

/// Why a CLI's version is not known.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VersionError {
    #[error("cannot run {} --version", program.display())]
    CannotRun {
        program: PathBuf,
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    #[error("{} --version printed no version: {said}", program.display())]
    NoVersion { program: PathBuf, said: String },
}

fn ask_version(program: &Path) -> Result<(u32, u32, u32), VersionError> {
    let mut cmd = std::process::Command::new(program);
    cmd.arg("--version");
    let out = baton_exec::run_sync(cmd, None).map_err(|e| VersionError::CannotRun {
        program: program.to_owned(),
        source: std::sync::Arc::new(e),
    })?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    parse_version(&text).ok_or_else(|| VersionError::NoVersion {
        program: program.to_owned(),
        said: text.lines().next().unwrap_or("").trim().to_owned(),
    })
}

fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.')).find_map(|w| {
        let mut it = w.split('.').map(|p| p.parse::<u32>());
        match (it.next(), it.next(), it.next()) {
            (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Some((a, b, c)),
            _ => None,
        }
    })
}

/// Variables passed from the user's environment to every agent CLI, when set.
const BASE_ENV: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "USER",
    "LOGNAME",
    "SHELL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "NODE_OPTIONS",
];

/// A prompt this long no longer goes on the command line (one argument may not exceed 128 KiB
/// on Linux); the CLI is told to read the prompt file instead.
const MAX_ARG_PROMPT: usize = 100 * 1024;

/// An agent CLI, configured.
#[derive(Debug, Clone)]
pub struct CliAgent {
    info: &'static CliInfo,
    config: AgentConfig,
}

impl CliAgent {
    /// `None` when the config's kind is not an agent CLI.
    pub fn new(config: AgentConfig) -> Option<CliAgent> {
        CliInfo::of(config.kind).map(|info| CliAgent { info, config })
    }

    pub fn info(&self) -> &'static CliInfo {
        self.info
    }

    /// The program: the configured one, else the kind's name on PATH.
    pub fn program(&self) -> Option<PathBuf> {
        match &self.config.program {
            Some(p) => resolve_program(&p.to_string_lossy(), Path::new("/")),
            None => resolve_program(self.info.program, Path::new("/")),
        }
    }

    fn err(&self, reason: String) -> AgentError {
        AgentError::Unusable { agent: self.config.name.clone(), reason }
    }
}

impl Agent for CliAgent {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn when_confined(&self) -> Option<String> {
        (self.config.kind == AgentKind::Codex && !codex::chooses_sandbox(&self.config.args)).then(|| {
            format!(
                "{}: Codex's own sandbox is off, as it cannot start inside baton's, which confines it instead",
                self.config.name
            )
        })
    }

    fn preflight(&self) -> Result<(), AgentError> {
        let c = &self.config;
        let Some(program) = self.program() else {
            let wanted = c
                .program
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| self.info.program.into());
            return Err(AgentError::CliNotInstalled {
                agent: c.name.clone(),
                program: wanted,
                install: self.info.install.into(),
            });
        };
        let version = cli_version(&program).map_err(|e| self.err(baton_core::error_chain(&e)))?;
        if version < self.info.min_version {
            let (a, b, d) = version;
            let (x, y, z) = self.info.min_version;
            return Err(self.err(format!(
                "{} is version {a}.{b}.{d}; baton needs {x}.{y}.{z} or newer for {} (upgrade: {})",
                program.display(),
                self.info.min_version_for,
                self.info.install
            )));
        }
        if c.effort.is_some() && matches!(c.kind, AgentKind::Gemini | AgentKind::Qwen) {
            return Err(self.err(format!("{} takes no reasoning effort: remove `effort`", self.info.program)));
        }
        if c.base_url.is_some()
            && c.model.is_none()
            && matches!(c.kind, AgentKind::Opencode | AgentKind::Aider)
        {
            return Err(self.err(format!(
                "with base_url, {} needs `model`: the model's name on that endpoint",
                self.info.program
            )));
        }
        match (&c.base_url, self.info.credentials(c.api_key_env.as_deref())) {
            (_, Credentials::Key(_) | Credentials::Login(_)) => {}
            // A custom endpoint (a local model server) may need no key at all.
            (Some(_), Credentials::Missing) if c.api_key_env.is_none() => {}
            (_, Credentials::Missing) => {
                let vars = match &c.api_key_env {
                    Some(k) => k.clone(),
                    None => self.info.keys.join(" or "),
                };
                return Err(AgentError::MissingKey { agent: c.name.clone(), vars });
            }
        }
        if c.kind == AgentKind::Codex
            && !codex::sandbox_disabled(&c.args)
            && resolve_program("bwrap", Path::new("/")).is_none()
        {
            return Err(self.err(
                "codex runs commands in its workspace-write sandbox, which needs bubblewrap: install it (apt-get install bubblewrap), or add `args = [\"--dangerously-bypass-approvals-and-sandbox\"]` to run unsandboxed".into(),
            ));
        }
        Ok(())
    }

    fn plan(&self, ctx: &AgentContext) -> Result<Plan, AgentError> {
        let program = self.program().ok_or_else(|| AgentError::CliNotInstalled {
            agent: self.config.name.clone(),
            program: self.info.program.into(),
            install: self.info.install.into(),
        })?;
        let home = Home::create(&ctx.home)
            .map_err(|e| self.err(format!("cannot prepare {}: {e}", ctx.home.display())))?;
        home.link_logins(self.info.logins);
        let prompt = if ctx.prompt.len() <= MAX_ARG_PROMPT {
            ctx.prompt.clone()
        } else {
            format!(
                "Your task is described in the file {}. Read it completely, then carry it out.",
                ctx.prompt_file.display()
            )
        };
        let mut cmd = Command { args: Vec::new(), env: BTreeMap::new() };
        let key = self.key_value();
        match self.config.kind {
            AgentKind::Claude => claude::command(&self.config, &prompt, key, &mut cmd),
            AgentKind::Codex => codex::command(&self.config, &prompt, key, &home, ctx.confined, &mut cmd),
            AgentKind::Gemini => gemini::command(&self.config, &prompt, key, &home, &mut cmd),
            AgentKind::Opencode => opencode::command(&self.config, &prompt, key, &mut cmd),
            AgentKind::Qwen => qwen::command(&self.config, &prompt, key, &mut cmd),
            AgentKind::Aider => aider::command(&self.config, &prompt, key, &home, &ctx.workspace, &mut cmd),
            AgentKind::Command | AgentKind::Patch => unreachable!("CliAgent::new accepts agent CLIs only"),
        }
        .map_err(|e| self.err(format!("cannot prepare its configuration: {e}")))?;
        cmd.args.extend(self.config.args.iter().cloned());

        let mut spec = Spec::new(&program, &ctx.workspace)
            .args(&cmd.args)
            .stdin(StdinSource::Null)
            .log(&ctx.log, ctx.log_limit)
            .timeouts(Some(self.config.timeout.unwrap_or(ctx.timeout)), ctx.silence_timeout)
            .grace(ctx.grace);
        spec.env_clear = true;
        let pass = BASE_ENV
            .iter()
            .chain(self.info.keys)
            .chain(self.info.passthrough)
            .map(|s| s.to_string())
            .chain(self.config.env_pass.iter().cloned());
        for name in pass {
            if let Some(v) = std::env::var_os(&name) {
                spec = spec.env(name, v);
            }
        }
        let git_config = user_home().join(".gitconfig");
        if std::env::var_os("GIT_CONFIG_GLOBAL").is_none() && git_config.is_file() {
            spec = spec.env("GIT_CONFIG_GLOBAL", git_config);
        }
        for (k, v) in home.env() {
            spec = spec.env(k, v);
        }
        spec = spec
            .env("BATON_CANDIDATE", ctx.candidate.as_str())
            .env("BATON_RUN", ctx.run.as_str())
            .env("BATON_PROMPT_FILE", &ctx.prompt_file);
        for (k, v) in cmd.env.iter().chain(&self.config.env) {
            spec = spec.env(k, v);
        }
        let dialect: Box<dyn Dialect> = match self.config.kind {
            AgentKind::Claude => Box::new(claude::StreamJson::new("claude")),
            AgentKind::Qwen => Box::new(claude::StreamJson::new("qwen")),
            AgentKind::Codex => Box::new(codex::Events::default()),
            AgentKind::Gemini => Box::new(gemini::Events::default()),
            AgentKind::Opencode => Box::new(opencode::Events::default()),
            AgentKind::Aider => Box::new(aider::Text::default()),
            AgentKind::Command | AgentKind::Patch => unreachable!("CliAgent::new accepts agent CLIs only"),
        };
        let limits = Limits {
            max_turns: self.config.max_turns,
            max_tokens: self.config.max_tokens,
            max_cost_usd: self.config.max_cost_usd,
            price: self.config.price.map(|p| (p.input, p.output)),
            own_endpoint: self.config.base_url.is_some(),
        };
        let parser =
            CliParser::new(self.info.program, dialect, limits, &ctx.workspace, &ctx.home, ctx.exit_timeout);
        Ok(Plan::Process { spec: Box::new(spec), parser: Box::new(parser) })
    }

    fn timeout(&self) -> Option<Duration> {
        self.config.timeout
    }

    fn only_endpoint(&self) -> Result<Option<baton_config::Endpoint>, AgentError> {
        self.config.only_endpoint().map_err(|m| self.err(m))
    }
}

impl CliAgent {
    /// The key for `base_url` from `api_key_env`, to hand to the CLI under its own variable.
    fn key_value(&self) -> Option<String> {
        self.config.api_key_env.as_ref().and_then(|k| std::env::var(k).ok())
    }
}

/// What a CLI module adds: arguments and variables.
pub(crate) struct Command {
    pub(crate) args: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
}

impl Command {
    pub(crate) fn arg(&mut self, a: impl Into<String>) -> &mut Command {
        self.args.push(a.into());
        self
    }

    pub(crate) fn env(&mut self, k: &str, v: impl Into<String>) -> &mut Command {
        self.env.insert(k.into(), v.into());
        self
    }
}

/// The candidate's own HOME and the directories the CLIs put state in.
pub(crate) struct Home {
    pub(crate) root: PathBuf,
}

impl Home {
    fn create(root: &Path) -> std::io::Result<Home> {
        let home = Home { root: root.to_path_buf() };
        for d in ["tmp", ".config", ".cache", ".local/share", ".local/state"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        Ok(home)
    }

    fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("HOME", self.root.clone()),
            ("TMPDIR", self.root.join("tmp")),
            ("XDG_CONFIG_HOME", self.root.join(".config")),
            ("XDG_CACHE_HOME", self.root.join(".cache")),
            ("XDG_DATA_HOME", self.root.join(".local/share")),
            ("XDG_STATE_HOME", self.root.join(".local/state")),
        ]
    }

    /// Links the user's login files in, so a CLI logged in with an account (not a key) works.
    fn link_logins(&self, files: &[&str]) {
        let real = user_home();
        for f in files {
            let (from, to) = (real.join(f), self.root.join(f));
            if from.is_file() && !to.exists() {
                if let Some(parent) = to.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = std::os::unix::fs::symlink(&from, &to);
            }
        }
    }

    pub(crate) fn write(&self, rel: &str, content: &str) -> std::io::Result<PathBuf> {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, content)?;
        Ok(p)
    }
}

/// Budgets checked as the CLI reports its progress.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    max_turns: Option<u32>,
    max_tokens: Option<u64>,
    max_cost_usd: Option<f64>,
    /// US dollars per million input and output tokens.
    price: Option<(f64, f64)>,
    /// The model is served at a `base_url` of the agent's: the CLI prices it at its vendor's
    /// list prices.
    own_endpoint: bool,
}

/// How a CLI's terminal event judged the session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    Success,
    Failure(String),
}

/// What a dialect learns from the output, beyond the activities it returns.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) turns: u32,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cost_usd: Option<f64>,
    /// Set by the CLI's terminal event.
    pub(crate) verdict: Option<Verdict>,
    /// The last error the CLI reported, for the outcome when no terminal event came.
    pub(crate) last_error: Option<String>,
    /// Files the CLI's tools wrote, as they named them.
    pub(crate) touched: Vec<String>,
    /// An error no retry can cure (a rejected key, an exhausted quota), in the CLI's words:
    /// the agent is stopped at once instead of retrying for minutes.
    pub(crate) fatal: Option<String>,
    /// The CLI's own sandbox failed to run one of its commands (`bwrap: Can't ...`), in its
    /// words: whatever it then reports, it worked blind, and the candidate fails.
    pub(crate) sandbox_failure: Option<String>,
    /// How many times in a row the CLI reported that it could not reach its model endpoint,
    /// and its last words about it.
    pub(crate) unreachable: u32,
    pub(crate) unreachable_words: String,
    /// The agent's `price` and whether its model is served at its own `base_url` (see
    /// [`Limits`]), for [`Tally::cost`].
    price: Option<(f64, f64)>,
    own_endpoint: bool,
}

/// A CLI that says this many times in a row that it cannot reach its endpoint is stopped:
/// some retry forever (Codex printed "Reconnecting..." until the wall limit).
pub(crate) const UNREACHABLE_LIMIT: u32 = 3;

/// Whether an HTTP status or an error's text says no retry will help: the key was rejected,
/// the account may not use the API, or its quota or credit is gone. A rate limit (429 without
/// a word about quota) passes with time, so it is not.
pub(crate) fn is_fatal(status: Option<u64>, text: &str) -> bool {
    let t = text.to_lowercase();
    matches!(status, Some(401..=403))
        || [
            "401 unauthorized",
            "403 forbidden",
            "authentication_failed",
            "authentication_error",
            "authenticationerror",
            "invalid_api_key",
            "invalid api key",
            "invalid x-api-key",
            "billing_error",
            "insufficient_quota",
            "exceeded your current quota",
            "quota exceeded",
            "credit balance is too low",
            "permission_denied",
        ]
        .iter()
        .any(|w| t.contains(w))
}

impl Tally {
    /// The CLI reported that a request got no answer (connection refused, DNS, reset).
    pub(crate) fn unreachable(&mut self, words: &str) {
        self.unreachable += 1;
        self.unreachable_words = clip(words, 300);
    }
}

impl Tally {
    pub(crate) fn usage(&self) -> AgentActivity {
        AgentActivity::Usage {
            turns: self.turns,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cost_usd: self.cost(),
            cost_estimated: self.price.is_none() && self.own_endpoint && self.cost_usd.is_some(),
        }
    }

    /// The cost so far: from the agent's `price` when it has one, else as the CLI reports it.
    pub(crate) fn cost(&self) -> Option<f64> {
        match self.price {
            Some((input, output)) => {
                Some((self.input_tokens as f64 * input + self.output_tokens as f64 * output) / 1e6)
            }
            None => self.cost_usd,
        }
    }
}

/// One CLI's output format.
pub(crate) trait Dialect: Send {
    /// One JSON event (structured dialects) or `None` with the raw line (aider).
    fn event(&mut self, line: &str, json: Option<&Value>, tally: &mut Tally) -> Vec<AgentActivity>;
    /// Whether the CLI prints JSON lines.
    fn structured(&self) -> bool {
        true
    }
    /// The verdict of a CLI without a terminal event, from how it ended.
    fn verdict_at_exit(&self, _end: &End, _tally: &Tally) -> Option<Verdict> {
        None
    }
    /// The terminal event's name, for messages.
    fn terminal(&self) -> &'static str;
}

/// Reads an agent CLI's output through its dialect, enforces budgets and decides the outcome.
pub(crate) struct CliParser {
    cli: &'static str,
    dialect: Box<dyn Dialect>,
    tally: Tally,
    limits: Limits,
    workspace: PathBuf,
    home: PathBuf,
    exit_timeout: Duration,
    stopped: Option<String>,
    lines: usize,
    json_lines: usize,
    first_garbage: Option<String>,
    warned: BTreeSet<String>,
}

impl CliParser {
    pub(crate) fn new(
        cli: &'static str,
        dialect: Box<dyn Dialect>,
        limits: Limits,
        workspace: &Path,
        home: &Path,
        exit_timeout: Duration,
    ) -> CliParser {
        CliParser {
            cli,
            dialect,
            tally: Tally { price: limits.price, own_endpoint: limits.own_endpoint, ..Tally::default() },
            limits,
            workspace: normalize(workspace),
            home: normalize(home),
            exit_timeout,
            stopped: None,
            lines: 0,
            json_lines: 0,
            first_garbage: None,
            warned: BTreeSet::new(),
        }
    }

    fn check_limits(&mut self) -> Option<AgentActivity> {
        if self.stopped.is_some() || self.tally.verdict.is_some() {
            return None;
        }
        let t = &self.tally;
        let reason = if let Some(n) = self.limits.max_turns.filter(|n| t.turns > *n) {
            format!("stopped after {} turns: max_turns is {n}", t.turns)
        } else if let Some(n) = self.limits.max_tokens.filter(|n| t.input_tokens + t.output_tokens > *n) {
            format!("stopped after {} tokens: max_tokens is {n}", t.input_tokens + t.output_tokens)
        } else if let Some(n) = self.limits.max_cost_usd.filter(|n| t.cost().is_some_and(|c| c > *n)) {
            format!("stopped after ${:.4}: max_cost_usd is {n}", t.cost().unwrap_or_default())
        } else {
            return None;
        };
        self.stopped = Some(reason.clone());
        Some(AgentActivity::Warning { message: reason })
    }

    /// Stops the agent at the first error no retry can cure, and after the CLI said
    /// [`UNREACHABLE_LIMIT`] times in a row that it cannot reach its endpoint.
    fn check_errors(&mut self) -> Option<AgentActivity> {
        if self.stopped.is_some() || self.tally.verdict.is_some() {
            return None;
        }
        let reason = if let Some(e) = self.tally.fatal.take() {
            format!("{e} (stopped at once: retrying cannot fix this)")
        } else if self.tally.unreachable >= UNREACHABLE_LIMIT {
            format!(
                "stopped: {} reported {} times in a row that it cannot reach its model endpoint: {}",
                self.cli, self.tally.unreachable, self.tally.unreachable_words
            )
        } else {
            return None;
        };
        self.stopped = Some(reason.clone());
        Some(AgentActivity::Error { message: reason })
    }

    /// A warning for each file a tool wrote outside the workspace (and the CLI's own HOME).
    fn check_paths(&mut self) -> Vec<AgentActivity> {
        let mut out = Vec::new();
        for p in std::mem::take(&mut self.tally.touched) {
            let abs = normalize(&self.workspace.join(&p));
            if abs.starts_with(&self.workspace) || abs.starts_with(&self.home) {
                continue;
            }
            let shown = abs.display().to_string();
            if self.warned.insert(shown.clone()) {
                out.push(AgentActivity::Warning {
                    message: format!("{} wrote {shown}, outside its workspace", self.cli),
                });
            }
        }
        out
    }
}

impl OutputParser for CliParser {
    fn line(&mut self, line: &str) -> Vec<AgentActivity> {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Vec::new();
        }
        self.lines += 1;
        let mut out = if self.dialect.structured() {
            match serde_json::from_str::<Value>(trimmed) {
                Ok(v) if v.is_object() => {
                    self.json_lines += 1;
                    self.dialect.event(trimmed, Some(&v), &mut self.tally)
                }
                _ => {
                    if self.first_garbage.is_none() {
                        self.first_garbage = Some(clip(trimmed, 160));
                        vec![AgentActivity::Warning {
                            message: format!(
                                "{} printed a line that is not a JSON event: {}",
                                self.cli,
                                clip(trimmed, 160)
                            ),
                        }]
                    } else {
                        Vec::new()
                    }
                }
            }
        } else {
            self.dialect.event(trimmed, None, &mut self.tally)
        };
        // Any sign of the model answering ends a streak of unreachable reports.
        if out.iter().any(|a| {
            matches!(
                a,
                AgentActivity::Message { .. } | AgentActivity::ToolCall { .. } | AgentActivity::Usage { .. }
            )
        }) {
            self.tally.unreachable = 0;
        }
        out.extend(self.check_paths());
        out.extend(self.check_limits());
        out.extend(self.check_errors());
        // Files in the workspace are shown as the repository names them.
        let prefix = format!("{}/", self.workspace.display());
        for a in &mut out {
            if let AgentActivity::ToolCall { detail, .. } = a
                && let Some(rel) = detail.strip_prefix(&prefix)
            {
                *detail = rel.to_owned();
            }
        }
        out
    }

    fn outcome(&self, end: &End) -> AgentOutcome {
        if let Some(reason) = &self.stopped {
            return AgentOutcome::Failed { reason: reason.clone() };
        }
        if let Some(failure) = &self.tally.sandbox_failure {
            return AgentOutcome::Failed {
                reason: format!("{}'s own sandbox could not run its commands: {failure}", self.cli),
            };
        }
        let verdict = self.tally.verdict.clone().or_else(|| self.dialect.verdict_at_exit(end, &self.tally));
        match verdict {
            Some(Verdict::Success) => return AgentOutcome::Completed,
            Some(Verdict::Failure(reason)) => return AgentOutcome::Failed { reason },
            None => {}
        }
        let how = match end {
            End::TimedOut { kind } => return AgentOutcome::TimedOut { kind: *kind },
            End::Cancelled => return AgentOutcome::Cancelled,
            End::SpawnFailed { message } => return AgentOutcome::SpawnFailed { message: message.clone() },
            End::Exited { code } => format!("exited with code {code}"),
            End::Signaled { signal } => format!("was killed by signal {signal}"),
        };
        let reason = if self.lines == 0 {
            format!("{} {how} without printing anything", self.cli)
        } else if self.json_lines == 0 && self.dialect.structured() {
            format!(
                "{} {how} and printed no JSON events (first line: {})",
                self.cli,
                self.first_garbage.as_deref().unwrap_or("")
            )
        } else {
            format!("{} {how} before its final `{}` event", self.cli, self.dialect.terminal())
        };
        let reason = match &self.tally.last_error {
            Some(e) => format!("{reason}: {e}"),
            None => reason,
        };
        AgentOutcome::Failed { reason }
    }

    fn stop(&self) -> Option<Stop> {
        if self.stopped.is_some() {
            Some(Stop::Now)
        } else if self.tally.verdict.is_some() {
            Some(Stop::After(self.exit_timeout))
        } else {
            None
        }
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system (the file may not exist yet).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The first line of `s`, at most `max` characters.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        format!("{}…", line.chars().take(max).collect::<String>())
    }
}

/// `v[a][b]...` as a string, if it is one.
pub(crate) fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str)
}

/// `v[a][b]...` as a number (0 when absent).
pub(crate) fn num(v: &Value, path: &[&str]) -> u64 {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_u64).unwrap_or(0)
}

/// What a tool call is about: its file, command, pattern or URL; else its arguments, short.
pub(crate) fn describe_input(input: &Value) -> String {
    for k in [
        "file_path",
        "filePath",
        "path",
        "absolute_path",
        "notebook_path",
        "command",
        "cmd",
        "pattern",
        "url",
        "query",
        "description",
    ] {
        match input.get(k) {
            Some(Value::String(s)) => return clip(s, 200),
            Some(Value::Array(a)) => {
                let words: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                return clip(&words.join(" "), 200);
            }
            _ => {}
        }
    }
    clip(&input.to_string(), 120)
}

/// The file a tool writes, when it is a file-writing tool.
pub(crate) fn written_file(tool: &str, input: &Value) -> Option<String> {
    const WRITERS: &[&str] = &[
        "Write",
        "Edit",
        "MultiEdit",
        "NotebookEdit",
        "write_file",
        "write",
        "edit",
        "replace",
        "patch",
        "apply_patch",
    ];
    if !WRITERS.contains(&tool) {
        return None;
    }
    ["file_path", "filePath", "path", "absolute_path", "notebook_path"]
        .iter()
        .find_map(|k| input.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests;
