use std::path::{Path, PathBuf};

use baton_core::StageKind;
use regex::Regex;
use toml::{Table, Value};

use crate::DEFAULTS;
use crate::error::{ConfigError, Location, line_col};
use crate::schema::{AgentKind, Config, FAILING_TESTS, ParserKind};

/// Where configuration may come from, as the front end found it.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// The user's file; skipped when it does not exist.
    pub user_file: Option<PathBuf>,
    /// The repository's `baton.toml`; skipped when it does not exist.
    pub repo_file: Option<PathBuf>,
    /// Files that must exist (`--config`, `$BATON_CONFIG`).
    pub extra_files: Vec<PathBuf>,
    /// Environment variables that map to keys: `(name, value)`.
    pub env: Vec<(String, String)>,
    /// `--set key=value` arguments.
    pub sets: Vec<String>,
}

/// What a layer came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerSource {
    Defaults,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl LayerSource {
    fn location(&self, text: &str, offset: Option<usize>) -> Location {
        match self {
            LayerSource::Defaults => Location::Defaults,
            LayerSource::File(path) => {
                let (line, column) = match offset.map(|o| line_col(text, o)) {
                    Some((l, c)) => (Some(l), Some(c)),
                    None => (None, None),
                };
                Location::File { path: path.clone(), line, column }
            }
            LayerSource::Env(var) => Location::Env { var: var.clone() },
            LayerSource::Flag(arg) => Location::Flag { arg: arg.clone() },
        }
    }
}

/// One parsed layer.
#[derive(Debug, Clone)]
pub struct Layer {
    pub source: LayerSource,
    text: String,
    table: Table,
}

/// Environment variables that set configuration keys.
const ENV_KEYS: &[(&str, &str)] =
    &[("BATON_JOBS", "run.jobs"), ("BATON_WORKSPACE_ROOT", "run.workspace_root")];

/// Reads and checks every layer and resolves them into one configuration. Returns the layers
/// that took part, for `baton config`-style reporting.
pub fn load(sources: &ConfigSources) -> Result<(Config, Vec<LayerSource>), ConfigError> {
    let mut layers = vec![parse_layer(LayerSource::Defaults, DEFAULTS.to_owned())?];
    let optional = [&sources.user_file, &sources.repo_file];
    for path in optional.into_iter().flatten() {
        match std::fs::read_to_string(path) {
            Ok(text) => layers.push(parse_layer(LayerSource::File(path.clone()), text)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ConfigError::Read { path: path.clone(), source }),
        }
    }
    for path in &sources.extra_files {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        layers.push(parse_layer(LayerSource::File(path.clone()), text)?);
    }
    for (var, value) in &sources.env {
        let Some((_, key)) = ENV_KEYS.iter().find(|(v, _)| v == var) else { continue };
        layers.push(parse_layer(LayerSource::Env(var.clone()), assignment(key, value))?);
    }
    for arg in &sources.sets {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(ConfigError::at(
                Location::Flag { arg: arg.clone() },
                "expected KEY=VALUE, e.g. --set run.jobs=2",
            ));
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-'))
        {
            return Err(ConfigError::at(
                Location::Flag { arg: arg.clone() },
                format!("`{key}` is not a key such as run.jobs"),
            ));
        }
        layers.push(parse_layer(LayerSource::Flag(arg.clone()), assignment(key, value))?);
    }

    let mut merged = Table::new();
    for layer in &layers {
        merge(&mut merged, layer.table.clone());
    }
    let config: Config = Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::at(Location::Defaults, e.message().to_owned()))?;
    validate(&config, &layers)?;
    Ok((config, layers.into_iter().map(|l| l.source).collect()))
}

/// `key = value`, with the value taken as TOML when it is valid TOML and as a string otherwise
/// (so `--set merge.target=main` works without quotes).
fn assignment(key: &str, value: &str) -> String {
    let as_toml = format!("{key} = {value}");
    if as_toml.parse::<Table>().is_ok() {
        as_toml
    } else {
        format!("{key} = {}", Value::String(value.to_owned()))
    }
}

fn parse_layer(source: LayerSource, text: String) -> Result<Layer, ConfigError> {
    let mut table: Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError::at(source.location(&text, e.span().map(|s| s.start)), e.message().trim().to_owned())
    })?;
    // Check the layer on its own, so errors point into the file that holds them. Keys the layer
    // leaves out take placeholder values here; the real ones come from the defaults layer.
    toml::from_str::<Config>(&text).map_err(|e| {
        ConfigError::at(source.location(&text, e.span().map(|s| s.start)), e.message().trim().to_owned())
    })?;
    if let LayerSource::File(path) = &source {
        let dir = path.parent().unwrap_or(Path::new("."));
        resolve_relative_paths(&mut table, dir);
    }
    Ok(Layer { source, text, table })
}

fn resolve_relative_paths(table: &mut Table, dir: &Path) {
    if let Some(Value::Array(agents)) = table.get_mut("agent") {
        for agent in agents {
            if let Some(Value::String(p)) = agent.get_mut("patch")
                && Path::new(p.as_str()).is_relative()
            {
                *p = dir.join(&*p).to_string_lossy().into_owned();
            }
            // A program given as a path (not a bare name looked up on PATH).
            if let Some(Value::String(p)) = agent.get_mut("program")
                && p.contains('/')
                && Path::new(p.as_str()).is_relative()
            {
                *p = dir.join(&*p).to_string_lossy().into_owned();
            }
        }
    }
    if let Some(Value::Table(run)) = table.get_mut("run")
        && let Some(Value::String(p)) = run.get_mut("workspace_root")
        && !p.is_empty()
        && Path::new(p.as_str()).is_relative()
    {
        *p = dir.join(&*p).to_string_lossy().into_owned();
    }
}

fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// Rules that need the whole configuration. The error points at the last layer that mentions
/// the offending text.
fn validate(config: &Config, layers: &[Layer]) -> Result<(), ConfigError> {
    let err = |needle: &str, message: String| ConfigError::at(locate(layers, needle), message);

    let mut names = std::collections::HashSet::new();
    for agent in &config.agents {
        if !names.insert(agent.name.as_str()) {
            return Err(err(&agent.name, format!("two agents are named `{}`", agent.name)));
        }
        if agent.name.is_empty() || agent.name.contains(|c: char| c.is_whitespace() || c == ':') {
            return Err(err(
                &agent.name,
                format!("agent name `{}` must be non-empty, without spaces or `:`", agent.name),
            ));
        }
        match agent.kind {
            AgentKind::Command => {
                let Some(cmd) = &agent.command else {
                    return Err(err(
                        &agent.name,
                        format!("agent `{}` is a command agent but has no `command`", agent.name),
                    ));
                };
                cmd.argv().map_err(|m| err(&agent.name, format!("agent `{}`: {m}", agent.name)))?;
            }
            AgentKind::Patch => {
                if agent.patch.is_none() {
                    return Err(err(
                        &agent.name,
                        format!("agent `{}` is a patch agent but has no `patch` file", agent.name),
                    ));
                }
            }
            AgentKind::Claude
            | AgentKind::Codex
            | AgentKind::Gemini
            | AgentKind::Opencode
            | AgentKind::Qwen
            | AgentKind::Aider => {
                if agent.command.is_some() || agent.patch.is_some() {
                    return Err(err(
                        &agent.name,
                        format!(
                            "agent `{}` is a {} agent: `command` and `patch` are for command and patch agents (use `program` and `args`)",
                            agent.name,
                            agent.kind.as_str()
                        ),
                    ));
                }
            }
        }
    }
    for name in &config.run.agents {
        let kind = name.split(':').next().and_then(AgentKind::parse);
        if !names.contains(name.as_str()) && !kind.is_some_and(AgentKind::is_cli) {
            return Err(err(name, format!("run.agents names `{name}`, but no [[agent]] has that name")));
        }
    }
    for name in &config.run.strategies {
        if !config.strategies.contains_key(name) {
            let known: Vec<&str> = config.strategies.keys().map(String::as_str).collect();
            return Err(err(
                name,
                format!(
                    "run.strategies names `{name}`, which is not a strategy (known: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    if config.run.repeats == 0 {
        return Err(err("repeats", "run.repeats must be at least 1".into()));
    }
    for glob in &config.verify.protected {
        if let Err(e) = globset::Glob::new(glob) {
            return Err(err(glob, format!("`{glob}` in verify.protected is not a valid glob: {e}")));
        }
    }
    for rule in &config.verify.related {
        Regex::new(&rule.from)
            .map_err(|e| err(&rule.from, format!("`from` in verify.related is not a valid regex: {e}")))?;
    }
    let mut stage_names = std::collections::HashSet::new();
    for stage in &config.verify.stages {
        if !stage_names.insert(stage.name.as_str()) {
            return Err(err(&stage.name, format!("two stages are named `{}`", stage.name)));
        }
        if stage.run.trim().is_empty() {
            return Err(err(&stage.name, format!("stage `{}` has an empty `run` command", stage.name)));
        }
        if let Some(rerun) = &stage.rerun {
            if stage.kind != StageKind::Test {
                return Err(err(
                    rerun,
                    format!(
                        "stage `{}` has a `rerun` command, but only test stages run again (its kind is {})",
                        stage.name,
                        stage.kind.as_str()
                    ),
                ));
            }
            if !rerun.contains(FAILING_TESTS) {
                return Err(err(
                    rerun,
                    format!(
                        "the `rerun` command of stage `{}` does not name the tests to run: put {FAILING_TESTS} \
                         where their names go, or leave `rerun` out to run the whole stage again",
                        stage.name
                    ),
                ));
            }
        }
        match stage.parser {
            ParserKind::Regex => {
                let Some(pattern) = &stage.pattern else {
                    return Err(err(
                        &stage.name,
                        format!("stage `{}` uses the regex parser but has no `pattern`", stage.name),
                    ));
                };
                let re = Regex::new(pattern).map_err(|e| {
                    err(pattern, format!("the pattern of stage `{}` is not a valid regex: {e}", stage.name))
                })?;
                if let Some(section) = &stage.section {
                    let sre = Regex::new(section).map_err(|e| {
                        err(
                            section,
                            format!(
                                "the section pattern of stage `{}` is not a valid regex: {e}",
                                stage.name
                            ),
                        )
                    })?;
                    if !sre.capture_names().flatten().any(|n| n == "section") {
                        return Err(err(
                            section,
                            format!(
                                "the section pattern of stage `{}` needs a named group `section`",
                                stage.name
                            ),
                        ));
                    }
                }
                let groups: Vec<_> = re.capture_names().flatten().collect();
                if !groups.contains(&"name") || !groups.contains(&"status") {
                    return Err(err(
                        pattern,
                        format!(
                            "the pattern of stage `{}` needs the named groups `name` and `status`",
                            stage.name
                        ),
                    ));
                }
            }
            ParserKind::Findings | ParserKind::Metric => {
                let Some(pattern) = &stage.pattern else {
                    return Err(err(
                        &stage.name,
                        format!(
                            "stage `{}` uses the {} parser but has no `pattern`",
                            stage.name,
                            stage.parser.as_str()
                        ),
                    ));
                };
                let re = Regex::new(pattern).map_err(|e| {
                    err(pattern, format!("the pattern of stage `{}` is not a valid regex: {e}", stage.name))
                })?;
                if stage.parser == ParserKind::Metric && !re.capture_names().flatten().any(|n| n == "value") {
                    return Err(err(
                        pattern,
                        format!("the pattern of stage `{}` needs a named group `value`", stage.name),
                    ));
                }
            }
            ParserKind::Sarif if stage.report.is_none() => {
                return Err(err(
                    &stage.name,
                    format!("stage `{}` uses the sarif parser but has no `report` path", stage.name),
                ));
            }
            ParserKind::Junit if stage.report.is_none() => {
                return Err(err(
                    &stage.name,
                    format!("stage `{}` uses the junit parser but has no `report` path", stage.name),
                ));
            }
            _ => {}
        }
        for (text, status) in &stage.status {
            if baton_core::TestStatus::parse(status).is_none() {
                return Err(err(
                    status,
                    format!(
                        "stage `{}` maps `{text}` to `{status}`; use pass, fail, error, skip, xfail or xpass",
                        stage.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The last layer whose text contains `needle` (preferably as a quoted string), with the line
/// and column of its first occurrence there.
fn locate(layers: &[Layer], needle: &str) -> Location {
    if !needle.is_empty() {
        for layer in layers.iter().rev() {
            let quoted = [format!("\"{needle}\""), format!("'{needle}'")];
            let found =
                quoted.iter().find_map(|q| layer.text.find(q.as_str())).or_else(|| layer.text.find(needle));
            if let Some(offset) = found {
                return layer.source.location(&layer.text, Some(offset));
            }
        }
    }
    layers.last().map(|l| l.source.location(&l.text, None)).unwrap_or(Location::Defaults)
}
