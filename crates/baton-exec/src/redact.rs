//! Secrets out of what baton writes.
//!
//! A [`Redactor`] knows two kinds of secret: values (the keys baton hands agents, from the
//! variables that hold them) and shapes (token formats such as `sk-...`, `ghp_...`, `AKIA...`,
//! an `Authorization:` header's token, a `NAME_TOKEN=value` assignment). It replaces each by
//! `[redacted: NAME]` when the variable that holds the value is known, else by `[redacted]`.
//!
//! Output is redacted as it streams ([`StreamRedactor`]): a secret split across two reads is
//! still caught, because what could be the beginning of one is held back until the rest has
//! arrived. No secret spans a line, so every complete line is written at once; of a partial
//! line only its last [`Redactor::window`] bytes wait, and a match that reaches the end of what
//! has arrived waits whole (a token may go on).
//!
//! A redactor never shows the values it holds: its `Debug` says how many there are.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use regex::bytes::{Captures, Regex, RegexBuilder};

/// Values shorter than this are not taken as secrets: redacting them would garble ordinary
/// text, and no real key is this short.
pub const MIN_SECRET_LEN: usize = 8;

/// Suffixes of variable names whose values are taken as secrets (`_KEY` covers `_API_KEY`,
/// `_SECRET_KEY`, `_ACCESS_KEY`, `_PRIVATE_KEY`).
const SECRET_NAME_SUFFIXES: &[&str] =
    &["_KEY", "_APIKEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSWD", "_PASSPHRASE"];

/// Whether a variable of this name holds a secret by its name alone (`GITHUB_TOKEN`,
/// `OPENAI_API_KEY`, `DB_PASSWORD`).
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_SUFFIXES.iter().any(|s| upper.ends_with(s))
        || ["API_KEY", "TOKEN", "SECRET", "PASSWORD"].contains(&upper.as_str())
}

/// The most of a partial line held back for a secret that may not have arrived whole. At
/// least as long as the longest known value; every token format's shortest match fits.
const MIN_WINDOW: usize = 1024;

/// Past this much held back (one enormous token-like run without a newline), the rest is
/// written redacted as it stands.
const MAX_HELD: usize = 64 * 1024;

/// Token formats, each a common credential's shape. Written so that none matches across a line
/// or matches nothing; `\b` keeps `risk-assessment-...` from reading as an `sk-` key.
const TOKENS: &[&str] = &[
    // OpenAI (`sk-`, `sk-proj-`), Anthropic (`sk-ant-api03-`, `sk-ant-oat01-`), and the many
    // services that copied the prefix.
    r"\bsk-[A-Za-z0-9_-]{20,}",
    // GitHub: personal, OAuth, user-to-server, server-to-server and refresh tokens.
    r"\bgh[pousr]_[A-Za-z0-9]{36}",
    r"\bgithub_pat_[A-Za-z0-9_]{22,}",
    // AWS access key ids.
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}",
    // Slack.
    r"\bxox[baprs]-[A-Za-z0-9-]{10,}",
    // Google API keys.
    r"\bAIza[0-9A-Za-z_-]{35}",
    // GitLab personal access tokens.
    r"\bglpat-[A-Za-z0-9_-]{20}",
    // Hugging Face, npm.
    r"\bhf_[A-Za-z0-9]{30,}",
    r"\bnpm_[A-Za-z0-9]{36}",
    // JSON Web Tokens (OAuth access tokens): header, payload, signature.
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
];

/// What a match is, by the capture group that matched: a known value, or what precedes a
/// credential and is kept (a header's name, a variable's name).
const GROUP_VALUE: &str = "value";
const GROUP_HEADER: &str = "header";
const GROUP_ASSIGN: &str = "assign";

/// Replaces secrets by `[redacted]` markers. Cheap to share (`Arc`); immutable once built.
#[derive(Clone)]
pub struct Redactor {
    /// One regex for everything: known values first (longest first), then the shapes.
    regex: Regex,
    /// Each known value, and the variable that holds it.
    names: BTreeMap<Vec<u8>, String>,
    /// See [`Redactor::window`].
    window: usize,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the values themselves: a Debug print lands in logs.
        f.debug_struct("Redactor").field("values", &self.names.len()).finish_non_exhaustive()
    }
}

impl Default for Redactor {
    /// Token shapes only, no known values.
    fn default() -> Redactor {
        Redactor::new(Vec::<(String, Vec<u8>)>::new())
    }
}

impl Redactor {
    /// A redactor for these (variable name, value) pairs, plus every token shape. Values shorter
    /// than [`MIN_SECRET_LEN`] are left out; a multi-line value is taken line by line. Where two
    /// variables hold one value, the first named is the one shown.
    pub fn new<N: Into<String>, V: AsRef<[u8]>>(secrets: impl IntoIterator<Item = (N, V)>) -> Redactor {
        let mut names: BTreeMap<Vec<u8>, String> = BTreeMap::new();
        for (name, value) in secrets {
            let name = name.into();
            for line in value.as_ref().split(|&b| b == b'\n' || b == b'\r') {
                let line = line.trim_ascii();
                if line.len() >= MIN_SECRET_LEN {
                    names.entry(line.to_vec()).or_insert_with(|| name.clone());
                }
            }
        }
        let mut values: Vec<&Vec<u8>> = names.keys().collect();
        // Longest first: where one value begins another, the longer is taken whole.
        values.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        let mut alternatives = Vec::new();
        if !values.is_empty() {
            let literals: Vec<String> = values.iter().map(|v| escape_bytes(v)).collect();
            alternatives.push(format!("(?P<{GROUP_VALUE}>{})", literals.join("|")));
        }
        alternatives.push(keep_prefixes().to_owned());
        alternatives.extend(TOKENS.iter().map(|t| (*t).to_owned()));
        let regex = RegexBuilder::new(&alternatives.join("|"))
            .unicode(false)
            // Thousands of values still compile; the default limit would refuse them.
            .size_limit(256 << 20)
            .build()
            .expect("escaped literals and fixed token formats always compile");
        let window = names.keys().map(Vec::len).max().unwrap_or(0).max(MIN_WINDOW);
        Redactor { regex, names, window }
    }

    /// A redactor for the values of the variables `names` (the keys agents are given) and of
    /// every variable in this process's environment whose name says it holds a secret
    /// ([`is_secret_name`]), plus `extra` (name, value) pairs from configuration.
    pub fn from_env<'a>(
        names: impl IntoIterator<Item = &'a str>,
        extra: impl IntoIterator<Item = (String, String)>,
    ) -> Redactor {
        let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
        for name in names {
            if let Some(v) = std::env::var_os(name) {
                secrets.push((name.to_owned(), v.into_encoded_bytes()));
            }
        }
        let mut by_name: Vec<(String, Vec<u8>)> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                is_secret_name(&k).then(|| (k, v.into_encoded_bytes()))
            })
            .collect();
        by_name.sort();
        secrets.extend(by_name);
        secrets.extend(extra.into_iter().map(|(k, v)| (k, v.into_bytes())));
        Redactor::new(secrets)
    }

    /// The same with a smaller window, to test what happens at its edge.
    #[cfg(test)]
    fn with_window(mut self, window: usize) -> Redactor {
        self.window = window;
        self
    }

    /// How many known values it holds.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The most of a partial line a [`StreamRedactor`] holds back.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Whether `text` holds anything to redact.
    pub fn finds(&self, text: &[u8]) -> bool {
        self.regex.is_match(text)
    }

    /// `text` with every secret replaced.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match self.redact_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Only whole matches are replaced, by ASCII: what was UTF-8 still is; lossy for
            // the impossible case rather than a panic.
            Cow::Owned(bytes) => Cow::Owned(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// `bytes` with every secret replaced.
    pub fn redact_bytes<'t>(&self, bytes: &'t [u8]) -> Cow<'t, [u8]> {
        let found = self.find(bytes, 0);
        if found.is_empty() {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len());
        self.apply(bytes, 0, bytes.len(), &found, &mut out);
        Cow::Owned(out)
    }

    /// Every match in `hay` from `start` on (what lies before is context for `\b`).
    fn find(&self, hay: &[u8], start: usize) -> Vec<Found> {
        let mut found = Vec::new();
        let mut at = start;
        while at < hay.len() {
            let Some(caps) = self.regex.captures_at(hay, at) else { break };
            let whole = caps.get(0).expect("group 0 is the whole match");
            if whole.is_empty() {
                // No alternative matches nothing; never loop on one that would.
                at = whole.end() + 1;
                continue;
            }
            found.push(self.classify(&caps));
            at = whole.end();
        }
        found
    }

    fn classify(&self, caps: &Captures<'_>) -> Found {
        let whole = caps.get(0).expect("group 0 is the whole match");
        let (keep, name) = if let Some(v) = caps.name(GROUP_VALUE) {
            (0, self.names.get(v.as_bytes()).cloned())
        } else if let Some(k) = caps.name(GROUP_HEADER).or_else(|| caps.name(GROUP_ASSIGN)) {
            // A known value after a header or a name is still named by its variable.
            (k.len(), self.names.get(&whole.as_bytes()[k.len()..]).cloned())
        } else {
            (0, None)
        };
        Found { start: whole.start(), end: whole.end(), keep, name }
    }

    /// Appends `hay[from..to]` to `out`, the matches in `found` that lie within it replaced.
    fn apply(&self, hay: &[u8], from: usize, to: usize, found: &[Found], out: &mut Vec<u8>) {
        let mut at = from;
        for f in found.iter().filter(|f| f.start >= from && f.end <= to) {
            out.extend_from_slice(&hay[at..f.start + f.keep]);
            match &f.name {
                Some(name) => {
                    out.extend_from_slice(b"[redacted: ");
                    out.extend_from_slice(name.as_bytes());
                    out.push(b']');
                }
                None => out.extend_from_slice(b"[redacted]"),
            }
            at = f.end;
        }
        out.extend_from_slice(&hay[at..to]);
    }
}

/// One match: `hay[start..end]`, of which the first `keep` bytes stay (a header's name).
#[derive(Debug)]
struct Found {
    start: usize,
    end: usize,
    keep: usize,
    /// The variable that holds the value, when it is a known one.
    name: Option<String>,
}

/// Credentials known by what precedes them, which is kept: an `Authorization:` header and its
/// scheme, a key header (their tokens are URL-safe), or a secret-named variable's assignment
/// (`env` prints them, a shell script quotes them; the value runs to a space or a quote, so a
/// JSON string stays one).
fn keep_prefixes() -> &'static str {
    static PREFIXES: OnceLock<String> = OnceLock::new();
    PREFIXES.get_or_init(|| {
        let names = SECRET_NAME_SUFFIXES.iter().map(|s| escape_bytes(s.as_bytes())).collect::<Vec<_>>().join("|");
        format!(
            r#"(?P<{GROUP_HEADER}>(?i:\b(?:proxy-)?authorization)["']?[ \t]*[:=][ \t]*["']?(?i:bearer|basic|token)[ \t]+|(?i:\bx-(?:goog-)?api-key)["']?[ \t]*[:=][ \t]*["']?)[A-Za-z0-9._~+/=-]{{8,}}|(?P<{GROUP_ASSIGN}>\b[A-Z][A-Z0-9_]*(?:{names})=["']?)[^\s"'\\]{{8,}}"#
        )
    })
}

/// `bytes` as a regex that matches exactly them (with Unicode off, `\xNN` is one byte).
fn escape_bytes(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b == b'_' {
            s.push(b as char);
        } else {
            let _ = write!(s, r"\x{b:02x}");
        }
    }
    s
}

/// Redacts a stream that arrives in pieces (a process's output): each [`push`] returns what
/// can be written now, [`finish`] the rest.
///
/// [`push`]: StreamRedactor::push
/// [`finish`]: StreamRedactor::finish
pub struct StreamRedactor {
    redactor: std::sync::Arc<Redactor>,
    /// What has not been written yet, after `context` bytes already written (the byte before,
    /// so that `\b` sees what really precedes a token).
    buf: Vec<u8>,
    context: usize,
}

impl StreamRedactor {
    pub fn new(redactor: std::sync::Arc<Redactor>) -> StreamRedactor {
        StreamRedactor { redactor, buf: Vec::new(), context: 0 }
    }

    /// Takes the next piece; returns what is safe to write, redacted.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(bytes);
        let len = self.buf.len();
        let found = self.redactor.find(&self.buf, self.context);
        // Complete lines go out at once; of a partial line, its last `window` bytes wait.
        let line_end =
            memchr_last_newline(&self.buf[self.context..]).map_or(self.context, |i| self.context + i + 1);
        let mut cut = line_end.max(len.saturating_sub(self.redactor.window)).max(self.context);
        // A match across the cut, or one that reaches the end (a token that may go on), waits whole.
        if let Some(f) = found.iter().find(|f| f.start < cut && (f.end > cut || f.end == len)) {
            cut = f.start;
        }
        if len - cut > MAX_HELD {
            cut = len;
        }
        self.take(cut, &found)
    }

    /// Everything still held, redacted.
    pub fn finish(&mut self) -> Vec<u8> {
        let found = self.redactor.find(&self.buf, self.context);
        let len = self.buf.len();
        self.take(len, &found)
    }

    /// Bytes held back so far.
    pub fn held(&self) -> usize {
        self.buf.len() - self.context
    }

    /// Writes out `buf[context..cut]`, keeping the last byte written as context.
    fn take(&mut self, cut: usize, found: &[Found]) -> Vec<u8> {
        let mut out = Vec::with_capacity(cut - self.context);
        self.redactor.apply(&self.buf, self.context, cut, found, &mut out);
        let keep_from = if cut > 0 { cut - 1 } else { 0 };
        self.buf.drain(..keep_from);
        self.context = cut - keep_from;
        out
    }
}

fn memchr_last_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const KEY: &str = "sk-test-SECRETVALUE1234567890abcdef";

    fn redactor() -> Redactor {
        Redactor::new([("OPENAI_API_KEY", KEY), ("MY_PROXY_KEY", "hunter2-but-longer")])
    }

    fn r(text: &str) -> String {
        redactor().redact(text).into_owned()
    }

    #[test]
    fn known_values_are_named_by_their_variable() {
        assert_eq!(r(&format!("key is {KEY}.")), "key is [redacted: OPENAI_API_KEY].");
        assert_eq!(r("pw=hunter2-but-longer;"), "pw=[redacted: MY_PROXY_KEY];");
        assert_eq!(r(&format!("OPENAI_API_KEY={KEY}")), "OPENAI_API_KEY=[redacted: OPENAI_API_KEY]");
        // A value in the middle of a word is still the value.
        assert_eq!(r("xxhunter2-but-longerxx"), "xx[redacted: MY_PROXY_KEY]xx");
    }

    #[test]
    fn short_values_are_not_secrets() {
        let r = Redactor::new([("A_TOKEN", "abc"), ("B_TOKEN", "")]);
        assert!(r.is_empty());
        assert_eq!(r.redact("abc abc"), "abc abc");
    }

    /// Each token format, with a token of its shape and a near miss that is not one (too short,
    /// or the prefix inside a word). Every format in [`TOKENS`] has its row.
    const SHAPES: &[(&str, &str, &str)] = &[
        ("OpenAI", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "sk-proj-tooShort123"),
        (
            "Anthropic",
            "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_x",
            "risk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz",
        ),
        ("GitHub personal", "ghp_0123456789abcdefghijABCDEFGHIJ012345", "ghp_0123456789abcdefghij"),
        (
            "GitHub OAuth",
            "gho_0123456789abcdefghijABCDEFGHIJ012345",
            "xgho_0123456789abcdefghijABCDEFGHIJ012345",
        ),
        (
            "GitHub app",
            "ghs_0123456789abcdefghijABCDEFGHIJ012345",
            "ghx_0123456789abcdefghijABCDEFGHIJ012345",
        ),
        (
            "GitHub fine-grained",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "github_pat_short",
        ),
        ("AWS access key id", "AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMP"),
        ("AWS session key id", "ASIAIOSFODNN7EXAMPLE", "ASIA-IOSFODNN7EXAMPLE"),
        ("Slack", "xoxb-1234567890-abcdefghij", "xoxb-12345"),
        ("Google", "AIzaSyA-0123456789abcdefghijklmnopqrstu", "AIzaSyA-0123456789"),
        ("GitLab", "glpat-abcdefghij0123456789", "glpat-abcdefghij"),
        ("Hugging Face", "hf_abcdefghijklmnopqrstuvwxyz0123456", "hf_abcdefghij"),
        ("npm", "npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm_install_failed"),
        (
            "JSON Web Token",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJhbGciOiJIUzI1NiJ9.notapayload.sig",
        ),
    ];

    #[test]
    fn every_token_shape_is_redacted_without_knowing_the_token() {
        let r = Redactor::default();
        for (what, token, near_miss) in SHAPES {
            assert_eq!(r.redact(&format!("got {token} here")), "got [redacted] here", "{what}: {token}");
            assert_eq!(r.redact(&format!("\"{token}\",")), "\"[redacted]\",", "{what} in JSON");
            let text = format!("got {near_miss} here");
            assert_eq!(r.redact(&text), text, "{what}: {near_miss} is no token");
        }
        for shape in TOKENS {
            let one = Regex::new(shape).unwrap();
            assert!(
                SHAPES.iter().any(|(_, token, _)| one.is_match(token.as_bytes())),
                "no case in SHAPES for {shape}"
            );
        }
    }

    #[test]
    fn headers_and_assignments_keep_their_name() {
        let r = Redactor::default();
        assert_eq!(r.redact("Authorization: Bearer abc.def-123_XYZ~+/="), "Authorization: Bearer [redacted]");
        assert_eq!(r.redact("authorization: basic dXNlcjpwYXNzd29yZA=="), "authorization: basic [redacted]");
        assert_eq!(r.redact(r#"{"x-api-key": "abcdef0123456789"}"#), r#"{"x-api-key": "[redacted]"}"#);
        assert_eq!(r.redact("GITHUB_TOKEN=abcdefgh12345 next"), "GITHUB_TOKEN=[redacted] next");
        assert_eq!(r.redact("DB_PASSWORD=correct-horse"), "DB_PASSWORD=[redacted]");
        assert_eq!(
            r.redact("export STRIPE_SECRET_KEY=\"rk_live_abcdef123\""),
            "export STRIPE_SECRET_KEY=\"[redacted]\""
        );
        assert_eq!(r.redact("SIGNING_KEY='abcdefgh12345'"), "SIGNING_KEY='[redacted]'");
        assert_eq!(
            r.redact("Proxy-Authorization: Basic dXNlcjpwYXNzd29yZA=="),
            "Proxy-Authorization: Basic [redacted]"
        );
        assert_eq!(r.redact("x-goog-api-key: AbCdEfGh12345678"), "x-goog-api-key: [redacted]");
        // In JSON, the value ends at its quote: the line stays JSON.
        assert_eq!(
            r.redact(r#"{"out":"ANTHROPIC_API_KEY=whatever-it-is\nPATH=/bin"}"#),
            r#"{"out":"ANTHROPIC_API_KEY=[redacted]\nPATH=/bin"}"#
        );
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let r = redactor();
        let text = "commit 3f786850e387550fdab836ed7e6dc881de23001b\n\
                    run 550e8400-e29b-41d4-a716-446655440000\n\
                    blob aGVsbG8gd29ybGQsIHRoaXMgaXMgYmFzZTY0IGZpbGUgY29udGVudHM=\n\
                    the risk-assessment-for-large-inputs-module and task-abcdefghijklmnopqrstuvwxyz\n\
                    MAX_TOKENS=4096 max_tokens=100000000 TOKEN_COUNT=123456789\n\
                    Authorization: Bearer\n\
                    sk-short and sk-\n\
                    test result: ok. 3 passed; 0 failed\n";
        assert_eq!(r.redact(text), text);
    }

    #[test]
    fn the_first_variable_named_for_a_value_is_the_one_shown() {
        let r = Redactor::new([("OPENAI_API_KEY", "same-value-123"), ("CODEX_API_KEY", "same-value-123")]);
        assert_eq!(r.len(), 1);
        assert_eq!(r.redact("same-value-123"), "[redacted: OPENAI_API_KEY]");
    }

    #[test]
    fn a_longer_value_wins_over_one_it_starts_with() {
        let r = Redactor::new([("SHORT_TOKEN", "abcdefgh"), ("LONG_TOKEN", "abcdefghijklmnop")]);
        assert_eq!(r.redact("abcdefghijklmnop abcdefgh"), "[redacted: LONG_TOKEN] [redacted: SHORT_TOKEN]");
    }

    #[test]
    fn values_with_any_bytes_match_literally() {
        let r = Redactor::new([("WEIRD_SECRET", "a.b*c(d)[e]\\f\"g ünï")]);
        assert_eq!(r.redact("<a.b*c(d)[e]\\f\"g ünï>"), "<[redacted: WEIRD_SECRET]>");
        assert_eq!(r.redact("<aXb*c(d)[e]\\f\"g ünï>"), "<aXb*c(d)[e]\\f\"g ünï>");
    }

    #[test]
    fn a_multi_line_value_is_redacted_line_by_line() {
        let r = Redactor::new([("PEM_SECRET", "line-one-abcdef\nline-two-ghijkl\nshort")]);
        assert_eq!(r.redact("line-two-ghijkl"), "[redacted: PEM_SECRET]");
        assert_eq!(r.redact("short"), "short");
    }

    #[test]
    fn debug_never_shows_a_value() {
        let shown = format!("{:?}", redactor());
        assert!(!shown.contains("SECRETVALUE") && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn secret_names() {
        for n in [
            "OPENAI_API_KEY",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "DB_PASSWORD",
            "my_app_secret",
            "SIGNING_PRIVATE_KEY",
            "CLAUDE_CODE_OAUTH_TOKEN",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in ["PATH", "MAX_TOKENS", "TOKENIZERS_PARALLELISM", "KEYBOARD", "HOME"] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    /// Feeds `pieces` through a stream redactor; returns what it wrote and, after each piece,
    /// how much it held back.
    fn stream(r: Redactor, pieces: &[&[u8]]) -> (String, Vec<usize>) {
        let mut s = StreamRedactor::new(Arc::new(r));
        let (mut out, mut held) = (Vec::new(), Vec::new());
        for p in pieces {
            out.extend(s.push(p));
            held.push(s.held());
        }
        out.extend(s.finish());
        (String::from_utf8(out).unwrap(), held)
    }

    #[test]
    fn a_secret_split_across_reads_is_caught_wherever_it_is_split() {
        let text = format!(
            "first line\nthe key: {KEY} and a token ghp_0123456789abcdefghijABCDEFGHIJ012345 end\nlast"
        );
        let expected = r(&text);
        assert!(expected.contains("[redacted: OPENAI_API_KEY]") && expected.contains(" [redacted] end"));
        let bytes = text.as_bytes();
        for split in 0..=bytes.len() {
            let (out, _) = stream(redactor(), &[&bytes[..split], &bytes[split..]]);
            assert_eq!(out, expected, "split at {split}");
        }
        // One byte at a time.
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(stream(redactor(), &pieces).0, expected);
        // Every token shape, split anywhere, with a window just long enough for the token.
        for (what, token, _) in SHAPES {
            let text = format!("a {token} b\n");
            for split in 0..=text.len() {
                let r = Redactor::default().with_window(token.len() + 2);
                let (out, _) = stream(r, &[&text.as_bytes()[..split], &text.as_bytes()[split..]]);
                assert_eq!(out, "a [redacted] b\n", "{what} split at {split}");
            }
        }
    }

    #[test]
    fn complete_lines_are_written_at_once() {
        let (out, held) = stream(redactor(), &[b"ok 1 - adds\nok 2 - ", b"subtracts\n"]);
        assert_eq!(out, "ok 1 - adds\nok 2 - subtracts\n");
        // Only the partial line waited, and nothing once the line was complete.
        assert_eq!(held, vec![7, 0]);
    }

    #[test]
    fn a_token_at_the_end_of_a_read_waits_for_the_rest() {
        let mut s = StreamRedactor::new(Arc::new(Redactor::default()));
        let first = s.push(b"token sk-abcdefghijklmnopqrstuvwxyz0123");
        assert_eq!(first, b"");
        let rest = s.push(b"456789 done\n");
        assert_eq!(String::from_utf8(rest).unwrap(), "token [redacted] done\n");
    }

    #[test]
    fn a_word_before_a_split_still_counts() {
        // `risk-...` is not a key, even where the part before `sk` was written already: the
        // byte before what is held back is kept as context.
        let text = b"the risk-abcdefghijklmnopqrstuvwxyz0123 module\n";
        for window in [2, 8, 64] {
            for split in 0..text.len() {
                let (out, _) =
                    stream(Redactor::default().with_window(window), &[&text[..split], &text[split..]]);
                assert_eq!(out.as_bytes(), text, "window {window}, split at {split}");
            }
        }
        // And a real key after a space is caught with a window just long enough for the
        // shortest `sk-` key (23 bytes).
        let text = b"a sk-abcdefghijklmnopqrstuvwxyz0123 b\n";
        for split in 0..text.len() {
            let (out, _) = stream(Redactor::default().with_window(23), &[&text[..split], &text[split..]]);
            assert_eq!(out, "a [redacted] b\n", "split at {split}");
        }
    }

    #[test]
    fn a_long_partial_line_is_written_but_its_last_window() {
        let r = Redactor::default();
        let window = r.window();
        let line = vec![b'.'; window * 3];
        let (out, held) = stream(r, &[&line]);
        assert_eq!(out.len(), line.len());
        assert_eq!(held, vec![window]);
    }
}
