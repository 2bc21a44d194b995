use std::fmt;
use std::path::PathBuf;

/// Where a configuration value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file, with 1-based line and column when known.
    File { path: PathBuf, line: Option<usize>, column: Option<usize> },
    /// The built-in defaults.
    Defaults,
    /// An environment variable.
    Env { var: String },
    /// A command-line argument, as typed (`--set run.jobs=2`, `--jobs 2`).
    Flag { arg: String },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { path, line: Some(l), column: Some(c) } => {
                write!(f, "{}:{l}:{c}", path.display())
            }
            Location::File { path, line: Some(l), column: None } => write!(f, "{}:{l}", path.display()),
            Location::File { path, .. } => write!(f, "{}", path.display()),
            Location::Defaults => f.write_str("<built-in defaults>"),
            Location::Env { var } => write!(f, "environment variable {var}"),
            Location::Flag { arg } => f.write_str(arg),
        }
    }
}

/// A configuration problem, always with where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ConfigError {
    pub(crate) fn at(location: Location, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { location, message: message.into() }
    }
}

/// Turns a byte offset into 1-based (line, column), counting columns in characters.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}
