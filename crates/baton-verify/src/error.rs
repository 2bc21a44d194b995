//! What can be wrong with verification settings. baton-config validates the files; these are
//! the settings as verification builds its parts from them, each naming the setting at fault.

/// A verification setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("`{glob}` in verify.protected is not a valid glob: {source}")]
    Glob {
        glob: String,
        #[source]
        source: globset::Error,
    },
    #[error("verify.protected: {0}")]
    Globs(#[source] globset::Error),
    #[error("`{pattern}` in verify.related is not a valid regex: {source}")]
    Related {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("stage `{stage}` uses the {parser} parser but has no `pattern`")]
    NoPattern { stage: String, parser: &'static str },
    #[error("the {which} of stage `{stage}` is not a valid regex: {detail}")]
    BadPattern { stage: String, which: &'static str, detail: String },
    #[error("the pattern of stage `{stage}` has no named group `{group}`: add `(?P<{group}>...)`")]
    NoGroup { stage: String, group: &'static str },
    #[error("stage `{stage}` maps `{text}` to `{status}`; use pass, fail, error, skip, xfail or xpass")]
    BadStatus { stage: String, text: String, status: String },
}

/// The last line of a regex error (a syntax error spans the pattern, a caret and the message).
pub(crate) fn regex_detail(e: &regex::Error) -> String {
    let message = e.to_string();
    let last = message.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    last.trim_start_matches("error: ").to_owned()
}
