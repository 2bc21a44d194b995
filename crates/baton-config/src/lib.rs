//! `baton.toml`: the schema, the embedded defaults, and the layering that resolves them into
//! one [`Config`] before a run starts.
//!
//! Layers, each overriding the one before: the embedded defaults (`default.toml`, which doubles
//! as the reference documentation), the user's file, the repository's `baton.toml`, files given
//! with `--config`, environment variables, and `--set key=value`. Each layer is parsed and
//! checked on its own, so an unknown key or a bad value is reported with the file, line and
//! column where it was written. Tables then merge key by key; `[[agent]]` entries merge by
//! name (a later layer's entry replaces the one of the same name, new names are added); any
//! other list replaces the one before. Every value of the result can be traced to the layer
//! that set it ([`Resolved::origin`]), so an error found only in the whole configuration still
//! names the file and line, the variable or the flag that wrote the value at fault.

mod detect;
mod endpoint;
mod error;
mod load;
mod schema;
mod values;

pub use detect::{DetectedStage, detect_stages};
pub use endpoint::{BadEndpoint, Endpoint, EndpointHost};
pub use error::{ConfigError, Location};
pub use load::{
    ConfigSources, KeyPath, KeySeg, Layer, LayerSource, MAX_JOBS, MAX_REPEATS, Resolved, load, resolve,
};
pub use schema::{
    AgentConfig, AgentKind, AgentNetwork, Better, CommandLine, Config, FAILING_TESTS, LimitsConfig,
    MergeConfig, ParserKind, Price, ProbeConfig, RelatedRule, RunConfig, SandboxMode, StageConfig,
    StrategyConfig, VerifyConfig, WorkspaceMode, only_endpoint,
};
pub use values::{ByteSize, ValueError, parse_duration};

/// The embedded defaults, with a comment on every key.
pub const DEFAULTS: &str = include_str!("default.toml");

/// The repository's configuration file, at its root. Baton's own file: an uncommitted one is
/// not the user's work in progress, so it neither blocks a run nor a merge.
pub const REPO_FILE: &str = "baton.toml";
