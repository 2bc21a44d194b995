use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use baton_core::StageKind;
use regex::Regex;
use toml::de::{DeTable, DeValue};
use toml::{Spanned, Table, Value};

use crate::DEFAULTS;
use crate::error::{ConfigError, Location, line_col};
use crate::schema::{AgentKind, AgentNetwork, Config, FAILING_TESTS, ParserKind};

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
    /// Command-line options that stand for a key (`--jobs 2` for `run.jobs`): `(the option as
    /// typed, key, value)`. They come last, so that a value means the same whether it is
    /// written in a file, an environment variable, `--set` or its own option.
    pub options: Vec<(String, String, String)>,
}

/// What a layer came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerSource {
    /// The embedded `default.toml`.
    Defaults,
    /// The user's file (`~/.config/baton/config.toml`).
    UserFile(PathBuf),
    /// The repository's `baton.toml`.
    RepoFile(PathBuf),
    /// A file given with `--config` or `$BATON_CONFIG`.
    ConfigFile(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line argument, as typed: `--set run.jobs=2`, `--jobs 2`.
    Flag(String),
}

impl LayerSource {
    /// What kind of layer this is, in a word or two: `default`, `user file`, `repository
    /// file`, `--config file`, `environment`, `command line`.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSource::Defaults => "default",
            LayerSource::UserFile(_) => "user file",
            LayerSource::RepoFile(_) => "repository file",
            LayerSource::ConfigFile(_) => "--config file",
            LayerSource::Env(_) => "environment",
            LayerSource::Flag(_) => "command line",
        }
    }

    fn file(&self) -> Option<&Path> {
        match self {
            LayerSource::UserFile(p) | LayerSource::RepoFile(p) | LayerSource::ConfigFile(p) => Some(p),
            LayerSource::Defaults | LayerSource::Env(_) | LayerSource::Flag(_) => None,
        }
    }

    fn location(&self, text: &str, offset: Option<usize>) -> Location {
        match self {
            LayerSource::Defaults => Location::Defaults,
            LayerSource::UserFile(path) | LayerSource::RepoFile(path) | LayerSource::ConfigFile(path) => {
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

/// One step of a path to a value in the configuration: a key, or an index into a list.
/// `[[agent]]` entries are reached by their name (`agent`, `fixer`, `model`), since layers
/// merge them by name; other lists by position (`verify`, `stage`, 0, `run`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeySeg {
    Key(String),
    Index(usize),
}

impl KeySeg {
    fn key(k: &str) -> KeySeg {
        KeySeg::Key(k.to_owned())
    }
}

/// A path to a value, shown the way TOML would address it: `run.jobs`, `agent.fixer.model`,
/// `verify.stage[0].run`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KeyPath(pub Vec<KeySeg>);

impl KeyPath {
    fn of(segs: &[&str]) -> KeyPath {
        KeyPath(segs.iter().map(|s| KeySeg::key(s)).collect())
    }

    fn child(&self, seg: KeySeg) -> KeyPath {
        let mut p = self.clone();
        p.0.push(seg);
        p
    }

    fn key(&self, k: &str) -> KeyPath {
        self.child(KeySeg::key(k))
    }

    fn index(&self, i: usize) -> KeyPath {
        self.child(KeySeg::Index(i))
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                KeySeg::Key(k) => {
                    let bare =
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if bare { f.write_str(k)? } else { write!(f, "{}", Value::String(k.clone()))? }
                }
                KeySeg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Where in a layer's text a value was written, and whether the layer replaces it as a whole.
#[derive(Debug, Clone, Copy)]
struct Written {
    offset: usize,
    /// A table merges key by key with the layers before it; anything else (a value, a list, an
    /// `[[agent]]` entry) replaces what they said.
    table: bool,
}

/// One parsed layer.
#[derive(Debug, Clone)]
pub struct Layer {
    pub source: LayerSource,
    text: String,
    table: Table,
    written: HashMap<KeyPath, Written>,
}

/// The configuration, resolved from every layer, with what each layer said: for error
/// messages and for `baton config`, every value can be traced to the layer that set it.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config: Config,
    /// The merged values, as TOML (relative paths made absolute).
    pub table: Table,
    layers: Vec<Layer>,
}

impl Resolved {
    /// The layers that took part, in order.
    pub fn sources(&self) -> Vec<LayerSource> {
        self.layers.iter().map(|l| l.source.clone()).collect()
    }

    /// The layer that set the value at `path`, and where in it. See [`origin`].
    pub fn origin(&self, path: &KeyPath) -> (LayerSource, Location) {
        origin(&self.layers, path)
    }
}

/// Environment variables that set configuration keys.
const ENV_KEYS: &[(&str, &str)] =
    &[("BATON_JOBS", "run.jobs"), ("BATON_WORKSPACE_ROOT", "run.workspace_root")];

/// The most verifications (`run.jobs`, `--jobs`; 0 means one per core) or agents
/// (`run.agent_jobs`, `--agent-jobs`; 0 means all at once) at once.
pub const MAX_JOBS: usize = 256;
/// The most candidates per agent and strategy (`run.repeats`, `-n`).
pub const MAX_REPEATS: usize = 64;

/// Reads and checks every layer and resolves them into one configuration. Returns the layers
/// that took part, for `baton config`-style reporting.
pub fn load(sources: &ConfigSources) -> Result<(Config, Vec<LayerSource>), ConfigError> {
    let resolved = resolve(sources)?;
    let layers = resolved.sources();
    Ok((resolved.config, layers))
}

/// Like [`load`], keeping every layer, so that each value can be traced to where it was set.
pub fn resolve(sources: &ConfigSources) -> Result<Resolved, ConfigError> {
    let mut layers = vec![parse_layer(LayerSource::Defaults, DEFAULTS.to_owned())?];
    let optional = [
        sources.user_file.as_ref().map(|p| LayerSource::UserFile(p.clone())),
        sources.repo_file.as_ref().map(|p| LayerSource::RepoFile(p.clone())),
    ];
    for source in optional.into_iter().flatten() {
        let path = source.file().expect("a file layer").to_owned();
        match std::fs::read_to_string(&path) {
            Ok(text) => layers.push(parse_layer(source, text)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ConfigError::Read { path, source }),
        }
    }
    for path in &sources.extra_files {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        layers.push(parse_layer(LayerSource::ConfigFile(path.clone()), text)?);
    }
    for (var, value) in &sources.env {
        let Some((_, key)) = ENV_KEYS.iter().find(|(v, _)| v == var) else { continue };
        layers.push(parse_layer(LayerSource::Env(var.clone()), assignment(key, value))?);
    }
    for arg in &sources.sets {
        let shown = format!("--set {arg}");
        let Some((key, value)) = arg.split_once('=') else {
            return Err(ConfigError::at(
                Location::Flag { arg: shown },
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
                Location::Flag { arg: shown },
                format!("`{key}` is not a key such as run.jobs"),
            ));
        }
        layers.push(parse_layer(LayerSource::Flag(shown), assignment(key, value))?);
    }
    for (shown, key, value) in &sources.options {
        layers.push(parse_layer(LayerSource::Flag(shown.clone()), assignment(key, value))?);
    }

    let mut merged = Table::new();
    for layer in &layers {
        merge(&mut merged, layer.table.clone(), true);
    }
    let config: Config = Value::Table(merged.clone())
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::at(Location::Defaults, e.message().to_owned()))?;
    validate(&config, &layers)?;
    Ok(Resolved { config, table: merged, layers })
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
    let parse_err = |e: toml::de::Error| {
        ConfigError::at(source.location(&text, e.span().map(|s| s.start)), e.message().trim().to_owned())
    };
    let mut table: Table = text.parse().map_err(parse_err)?;
    let doc = DeTable::parse(&text).map_err(parse_err)?;
    // Check the layer on its own, so errors point into the file that holds them. Keys the layer
    // leaves out take placeholder values here; the real ones come from the defaults layer.
    toml::from_str::<Config>(&text).map_err(parse_err)?;
    let mut written = HashMap::new();
    walk_table(&KeyPath::default(), doc.get_ref(), &mut written);
    // Entries of one layer with the same name would silently replace each other.
    if let Some(Value::Array(agents)) = table.get("agent") {
        let mut seen = std::collections::HashSet::new();
        for (i, agent) in agents.iter().enumerate() {
            let Some(name) = agent.get("name").and_then(Value::as_str) else { continue };
            if !seen.insert(name) {
                let offset = nth_agent_name(doc.get_ref(), i);
                return Err(ConfigError::at(
                    source.location(&text, offset),
                    format!("two agents are named `{name}`"),
                ));
            }
        }
    }
    if let Some(dir) = source.file().map(|p| p.parent().unwrap_or(Path::new(".")).to_owned()) {
        resolve_relative_paths(&mut table, &dir);
    }
    Ok(Layer { source, text, table, written })
}

/// Records where each value of a layer was written. `[[agent]]` entries are addressed by name.
fn walk_table(path: &KeyPath, table: &DeTable<'_>, out: &mut HashMap<KeyPath, Written>) {
    for (key, value) in table.iter() {
        let here = path.key(key.get_ref());
        if path.0.is_empty()
            && key.get_ref() == "agent"
            && let DeValue::Array(agents) = value.get_ref()
        {
            out.insert(here.clone(), Written { offset: value.span().start, table: true });
            for (i, agent) in agents.iter().enumerate() {
                let entry = match agent.get_ref() {
                    DeValue::Table(t) => t,
                    _ => continue,
                };
                let name = entry.get("name").map(Spanned::get_ref).and_then(DeValue::as_str);
                let at = match name {
                    Some(n) => here.key(n),
                    None => here.index(i),
                };
                let offset = entry.get("name").map(|n| n.span().start).unwrap_or(agent.span().start);
                out.insert(at.clone(), Written { offset, table: false });
                walk_fields(&at, entry, out);
            }
            continue;
        }
        walk_value(here, value, out);
    }
}

fn walk_fields(path: &KeyPath, table: &DeTable<'_>, out: &mut HashMap<KeyPath, Written>) {
    for (key, value) in table.iter() {
        walk_value(path.key(key.get_ref()), value, out);
    }
}

fn walk_value(path: KeyPath, value: &Spanned<DeValue<'_>>, out: &mut HashMap<KeyPath, Written>) {
    match value.get_ref() {
        DeValue::Table(t) => {
            out.insert(path.clone(), Written { offset: value.span().start, table: true });
            walk_fields(&path, t, out);
        }
        DeValue::Array(items) => {
            out.insert(path.clone(), Written { offset: value.span().start, table: false });
            for (i, item) in items.iter().enumerate() {
                walk_value(path.index(i), item, out);
            }
        }
        _ => {
            out.insert(path, Written { offset: value.span().start, table: false });
        }
    }
}

/// Where the `name` of the `i`th `[[agent]]` of a layer was written.
fn nth_agent_name(doc: &DeTable<'_>, i: usize) -> Option<usize> {
    let DeValue::Array(agents) = doc.get("agent")?.get_ref() else { return None };
    let DeValue::Table(entry) = agents.get(i)?.get_ref() else { return None };
    entry.get("name").map(|n| n.span().start)
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

/// Lays `over` on `base`: tables merge key by key; `[[agent]]` entries merge by name (an entry
/// replaces the earlier one of its name, in its place; new names are added at the end); any
/// other value, lists included, replaces the one before.
fn merge(base: &mut Table, over: Table, top: bool) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Array(earlier)), Value::Array(later)) if top && key == "agent" => {
                for entry in later {
                    let name = entry.get("name").and_then(Value::as_str).map(str::to_owned);
                    match earlier
                        .iter_mut()
                        .find(|e| name.is_some() && e.get("name").and_then(Value::as_str) == name.as_deref())
                    {
                        Some(slot) => *slot = entry,
                        None => earlier.push(entry),
                    }
                }
            }
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o, false),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// The layer that set the value at `path`, and where in it: the last layer that wrote it or
/// something that replaces it as a whole (a list it is in, its `[[agent]]` entry). Found from
/// each layer's structure, never by searching its text.
fn origin(layers: &[Layer], path: &KeyPath) -> (LayerSource, Location) {
    for layer in layers.iter().rev() {
        let mut decided = None;
        for n in 1..=path.0.len() {
            let prefix = KeyPath(path.0[..n].to_vec());
            match layer.written.get(&prefix) {
                None => break,
                Some(w) if !w.table || n == path.0.len() => {
                    decided = Some(*w);
                    break;
                }
                Some(_) => {}
            }
        }
        let Some(unit) = decided else { continue };
        // The value itself when the layer wrote it, else the nearest thing it wrote around it.
        let offset = (1..=path.0.len())
            .rev()
            .find_map(|n| layer.written.get(&KeyPath(path.0[..n].to_vec())))
            .map(|w| w.offset)
            .unwrap_or(unit.offset);
        return (layer.source.clone(), layer.source.location(&layer.text, Some(offset)));
    }
    let last = layers.last().map(|l| l.source.clone()).unwrap_or(LayerSource::Defaults);
    (last.clone(), last.location("", None))
}

/// Rules that need the whole configuration. Each error points at the layer that set the
/// value at fault.
fn validate(config: &Config, layers: &[Layer]) -> Result<(), ConfigError> {
    let err = |path: KeyPath, message: String| ConfigError::at(origin(layers, &path).1, message);
    let agent_path = |name: &str| KeyPath::of(&["agent", name]);

    let mut names = std::collections::HashSet::new();
    for agent in &config.agents {
        let at = || agent_path(&agent.name);
        names.insert(agent.name.as_str());
        if agent.name.is_empty() || agent.name.contains(|c: char| c.is_whitespace() || c == ':') {
            return Err(err(
                at(),
                format!("agent name `{}` must be non-empty, without spaces or `:`", agent.name),
            ));
        }
        if agent.kind == AgentKind::Patch && agent.network == AgentNetwork::Endpoint {
            return Err(err(
                at().key("network"),
                format!(
                    "agent `{}` is a patch agent: it starts no process, so it has no network to limit",
                    agent.name
                ),
            ));
        }
        agent.only_endpoint().map_err(|m| {
            let field = if agent.base_url.is_some() { "base_url" } else { "network" };
            err(at().key(field), format!("agent `{}`: {m}", agent.name))
        })?;
        match agent.kind {
            AgentKind::Command => {
                let Some(cmd) = &agent.command else {
                    return Err(err(
                        at(),
                        format!("agent `{}` is a command agent but has no `command`", agent.name),
                    ));
                };
                cmd.argv().map_err(|m| err(at().key("command"), format!("agent `{}`: {m}", agent.name)))?;
            }
            AgentKind::Patch => {
                if agent.patch.is_none() {
                    return Err(err(
                        at(),
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
                let field = if agent.command.is_some() { "command" } else { "patch" };
                if agent.command.is_some() || agent.patch.is_some() {
                    return Err(err(
                        at().key(field),
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
    for (i, name) in config.run.agents.iter().enumerate() {
        let kind = name.split(':').next().and_then(AgentKind::parse);
        if !names.contains(name.as_str()) && !kind.is_some_and(AgentKind::is_cli) {
            return Err(err(
                KeyPath::of(&["run", "agents"]).index(i),
                format!("run.agents names `{name}`, but no [[agent]] has that name"),
            ));
        }
    }
    for (i, name) in config.run.strategies.iter().enumerate() {
        if !config.strategies.contains_key(name) {
            let known: Vec<&str> = config.strategies.keys().map(String::as_str).collect();
            return Err(err(
                KeyPath::of(&["run", "strategies"]).index(i),
                format!(
                    "run.strategies names `{name}`, which is not a strategy (known: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    if config.run.repeats == 0 || config.run.repeats > MAX_REPEATS {
        return Err(err(
            KeyPath::of(&["run", "repeats"]),
            format!("run.repeats is {}: it must be from 1 to {MAX_REPEATS}", config.run.repeats),
        ));
    }
    if config.run.jobs > MAX_JOBS {
        return Err(err(
            KeyPath::of(&["run", "jobs"]),
            format!("run.jobs is {}: it must be at most {MAX_JOBS} (0: one per CPU core)", config.run.jobs),
        ));
    }
    if config.run.agent_jobs > MAX_JOBS {
        return Err(err(
            KeyPath::of(&["run", "agent_jobs"]),
            format!(
                "run.agent_jobs is {}: it must be at most {MAX_JOBS} (0: every candidate at once)",
                config.run.agent_jobs
            ),
        ));
    }
    for (i, glob) in config.verify.protected.iter().enumerate() {
        if let Err(e) = globset::Glob::new(glob) {
            return Err(err(
                KeyPath::of(&["verify", "protected"]).index(i),
                format!("`{glob}` in verify.protected is not a valid glob: {e}"),
            ));
        }
    }
    for (i, rule) in config.verify.related.iter().enumerate() {
        Regex::new(&rule.from).map_err(|e| {
            err(
                KeyPath::of(&["verify", "related"]).index(i).key("from"),
                format!("`from` in verify.related is not a valid regex: {e}"),
            )
        })?;
    }
    let mut stage_names = std::collections::HashSet::new();
    for (i, stage) in config.verify.stages.iter().enumerate() {
        let at = |field: &str| KeyPath::of(&["verify", "stage"]).index(i).key(field);
        if !stage_names.insert(stage.name.as_str()) {
            return Err(err(at("name"), format!("two stages are named `{}`", stage.name)));
        }
        if stage.run.trim().is_empty() {
            return Err(err(at("run"), format!("stage `{}` has an empty `run` command", stage.name)));
        }
        if let Some(rerun) = &stage.rerun {
            if stage.kind != StageKind::Test {
                return Err(err(
                    at("rerun"),
                    format!(
                        "stage `{}` has a `rerun` command, but only test stages run again (its kind is {})",
                        stage.name,
                        stage.kind.as_str()
                    ),
                ));
            }
            if !rerun.contains(FAILING_TESTS) {
                return Err(err(
                    at("rerun"),
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
                        at("name"),
                        format!("stage `{}` uses the regex parser but has no `pattern`", stage.name),
                    ));
                };
                let re = Regex::new(pattern).map_err(|e| {
                    err(
                        at("pattern"),
                        format!("the pattern of stage `{}` is not a valid regex: {e}", stage.name),
                    )
                })?;
                if let Some(section) = &stage.section {
                    let sre = Regex::new(section).map_err(|e| {
                        err(
                            at("section"),
                            format!(
                                "the section pattern of stage `{}` is not a valid regex: {e}",
                                stage.name
                            ),
                        )
                    })?;
                    if !sre.capture_names().flatten().any(|n| n == "section") {
                        return Err(err(
                            at("section"),
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
                        at("pattern"),
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
                        at("name"),
                        format!(
                            "stage `{}` uses the {} parser but has no `pattern`",
                            stage.name,
                            stage.parser.as_str()
                        ),
                    ));
                };
                let re = Regex::new(pattern).map_err(|e| {
                    err(
                        at("pattern"),
                        format!("the pattern of stage `{}` is not a valid regex: {e}", stage.name),
                    )
                })?;
                if stage.parser == ParserKind::Metric && !re.capture_names().flatten().any(|n| n == "value") {
                    return Err(err(
                        at("pattern"),
                        format!("the pattern of stage `{}` needs a named group `value`", stage.name),
                    ));
                }
            }
            ParserKind::Sarif if stage.report.is_none() => {
                return Err(err(
                    at("name"),
                    format!("stage `{}` uses the sarif parser but has no `report` path", stage.name),
                ));
            }
            ParserKind::Junit if stage.report.is_none() => {
                return Err(err(
                    at("name"),
                    format!("stage `{}` uses the junit parser but has no `report` path", stage.name),
                ));
            }
            _ => {}
        }
        for (text, status) in &stage.status {
            if baton_core::TestStatus::parse(status).is_none() {
                return Err(err(
                    at("status").key(text),
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
