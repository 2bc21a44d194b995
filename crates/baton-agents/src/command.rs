use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use baton_config::AgentNetwork;
use baton_core::{AgentActivity, AgentOutcome};
use baton_exec::{End, Spec, StdinSource};

use crate::{Agent, AgentContext, AgentError, OutputParser, Plan, outcome_from_exit, resolve_program};

/// Any program. It gets the prompt on stdin, in `$BATON_PROMPT_FILE` and (when it is not too
/// large for the environment) in `$BATON_PROMPT`; it works in `$BATON_WORKSPACE`, its current
/// directory. It succeeds when it exits with code 0. Given a `base_url`, it finds it in
/// `$BATON_BASE_URL`.
#[derive(Debug, Clone)]
pub struct CommandAgent {
    name: String,
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    timeout: Option<Duration>,
    base_url: Option<String>,
    network: AgentNetwork,
}

/// Prompts above this size are not put in the environment, where they could exceed the
/// kernel's limit on one variable (128 KiB on Linux).
const MAX_ENV_PROMPT: usize = 64 * 1024;

impl CommandAgent {
    /// `argv[0]` with a `/` is resolved against `cwd` now, so that a script given relative to
    /// where the user stands still runs from inside the workspace.
    pub fn new(
        name: impl Into<String>,
        mut argv: Vec<String>,
        env: BTreeMap<String, String>,
        timeout: Option<Duration>,
        cwd: &std::path::Path,
    ) -> CommandAgent {
        if let Some(first) = argv.first_mut()
            && first.contains('/')
            && cwd.join(&*first).exists()
        {
            *first = cwd.join(&*first).to_string_lossy().into_owned();
        }
        CommandAgent { name: name.into(), argv, env, timeout, base_url: None, network: AgentNetwork::Host }
    }

    /// Its model endpoint, and whether that is all it may reach.
    pub fn endpoint(mut self, base_url: Option<String>, network: AgentNetwork) -> CommandAgent {
        self.base_url = base_url;
        self.network = network;
        self
    }
}

impl Agent for CommandAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn preflight(&self) -> Result<(), AgentError> {
        let program = &self.argv[0];
        if program.contains('/') {
            let path = PathBuf::from(program);
            if !path.exists() {
                return Err(AgentError::MissingFile { agent: self.name.clone(), path });
            }
            if resolve_program(program, std::path::Path::new("/")).is_none() {
                return Err(AgentError::NotExecutable { agent: self.name.clone(), path });
            }
            Ok(())
        } else if resolve_program(program, std::path::Path::new("/")).is_some() {
            Ok(())
        } else {
            Err(AgentError::ProgramNotFound { agent: self.name.clone(), program: program.clone() })
        }
    }

    fn plan(&self, ctx: &AgentContext) -> Result<Plan, AgentError> {
        let mut spec = Spec::new(&self.argv[0], &ctx.workspace)
            .args(&self.argv[1..])
            .stdin(StdinSource::Bytes(ctx.prompt.clone().into_bytes()))
            .log(&ctx.log, ctx.log_limit)
            .timeouts(Some(self.timeout.unwrap_or(ctx.timeout)), ctx.silence_timeout)
            .grace(ctx.grace)
            .env("BATON_PROMPT_FILE", &ctx.prompt_file)
            .env("BATON_WORKSPACE", &ctx.workspace)
            .env("BATON_CANDIDATE", ctx.candidate.as_str())
            .env("BATON_RUN", ctx.run.as_str())
            .env("BATON_STRATEGY", &ctx.strategy);
        if ctx.prompt.len() <= MAX_ENV_PROMPT {
            spec = spec.env("BATON_PROMPT", &ctx.prompt);
        }
        if let Some(url) = &self.base_url {
            spec = spec.env("BATON_BASE_URL", url);
        }
        for (k, v) in &self.env {
            spec = spec.env(k, v);
        }
        Ok(Plan::Process { spec: Box::new(spec), parser: Box::new(ExitCodeParser) })
    }

    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    fn only_endpoint(&self) -> Result<Option<baton_config::Endpoint>, AgentError> {
        baton_config::only_endpoint(self.network, self.base_url.as_deref())
            .map_err(|reason| AgentError::Unusable { agent: self.name.clone(), reason })
    }
}

/// A plain program reports nothing structured; only its exit status counts.
struct ExitCodeParser;

impl OutputParser for ExitCodeParser {
    fn line(&mut self, _line: &str) -> Vec<AgentActivity> {
        Vec::new()
    }

    fn outcome(&self, end: &End) -> AgentOutcome {
        outcome_from_exit(end)
    }
}
