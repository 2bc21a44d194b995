//! aider: `aider --message PROMPT --yes-always --no-pretty --no-stream ...`.
//!
//! aider has no structured output. Its text says what happened: `Applied edit to FILE`,
//! `Tokens: 1.2k sent, 340 received.` (with `Cost: ...` when it knows the price), and on API
//! errors a `litellm.SomethingError: ...` line, after which it still exits 0. So the outcome is a
//! failure when such an error line appears, and otherwise follows the exit status.
//!
//! Its history files go to the candidate's HOME, not the workspace, and it neither commits nor
//! edits `.gitignore`.

use std::path::Path;

use baton_config::AgentConfig;
use baton_core::AgentActivity;
use baton_exec::End;
use serde_json::Value;

use super::{Command, Dialect, Home, Tally, Verdict, clip, is_fatal};

pub(crate) fn command(
    c: &AgentConfig,
    prompt: &str,
    key: Option<String>,
    home: &Home,
    workspace: &Path,
    cmd: &mut Command,
) -> std::io::Result<()> {
    let h = |f: &str| home.root.join(f).to_string_lossy().into_owned();
    cmd.arg("--message").arg(prompt);
    for flag in [
        "--yes-always",
        "--no-pretty",
        "--no-stream",
        "--no-fancy-input",
        "--no-show-model-warnings",
        "--no-check-update",
        "--analytics-disable",
        "--no-auto-commits",
        "--no-dirty-commits",
        "--no-gitignore",
        "--no-show-release-notes",
    ] {
        cmd.arg(flag);
    }
    // aider keeps its repository-map cache in the workspace (there is no option to move it):
    // keep it out of the candidate's commit.
    exclude_from_git(workspace, ".aider*")?;
    // Python buffers a pipe: without this, its lines (and baton's events) arrive in bursts.
    cmd.env("PYTHONUNBUFFERED", "1");
    cmd.arg("--chat-history-file").arg(h("aider.chat.history.md"));
    cmd.arg("--input-history-file").arg(h("aider.input.history"));
    if let Some(m) = &c.model {
        // A bare name on a custom endpoint is an OpenAI-compatible model to litellm.
        let m = if c.base_url.is_some() && !m.contains('/') { format!("openai/{m}") } else { m.clone() };
        cmd.arg("--model").arg(m);
    }
    if let Some(e) = &c.effort {
        cmd.arg("--reasoning-effort").arg(e);
    }
    if let Some(url) = &c.base_url {
        cmd.env("OPENAI_API_BASE", url);
        if key.is_none() && std::env::var_os("OPENAI_API_KEY").is_none() {
            cmd.env("OPENAI_API_KEY", "baton-no-key");
        }
    }
    if let Some(k) = key {
        cmd.env("OPENAI_API_KEY", k);
    }
    Ok(())
}

/// Adds `pattern` to the workspace repository's `info/exclude`.
fn exclude_from_git(workspace: &Path, pattern: &str) -> std::io::Result<()> {
    let mut git = baton_git::Git::at(workspace).command();
    git.args(["rev-parse", "--git-path", "info/exclude"]);
    let out = baton_exec::run_sync(git, None)?;
    if !out.success() {
        return Ok(());
    }
    let rel = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let path = workspace.join(rel);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current.lines().any(|l| l.trim() == pattern) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let sep = if current.is_empty() || current.ends_with('\n') { "" } else { "\n" };
    std::fs::write(&path, format!("{current}{sep}{pattern}\n"))
}

#[derive(Default)]
pub(crate) struct Text {
    started: bool,
    error: Option<String>,
}

/// `1.2k` → 1200, `340` → 340.
fn amount(s: &str) -> u64 {
    let s = s.trim().trim_end_matches(',');
    let (num, mult) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1_000.0),
        Some('M') => (&s[..s.len() - 1], 1_000_000.0),
        _ => (s, 1.0),
    };
    (num.parse::<f64>().unwrap_or(0.0) * mult) as u64
}

impl Dialect for Text {
    fn event(&mut self, line: &str, _json: Option<&Value>, tally: &mut Tally) -> Vec<AgentActivity> {
        let mut out = Vec::new();
        if let Some(rest) = line.strip_prefix("Model: ")
            && !self.started
        {
            self.started = true;
            out.push(AgentActivity::Started {
                model: rest.split(' ').next().map(str::to_owned),
                session: None,
            });
        } else if let Some(file) = line.strip_prefix("Applied edit to ") {
            tally.touched.push(file.trim().to_owned());
            out.push(AgentActivity::ToolCall { tool: "edit".into(), detail: file.trim().to_owned() });
        } else if let Some(rest) = line.strip_prefix("Tokens: ") {
            // `Tokens: 912 sent, 17 received.` or `Tokens: 2.5k sent, 1.1k cache write, 120 received. Cost: $0.01 message, $0.02 session.`
            tally.turns += 1;
            let mut sent = 0;
            let mut received = 0;
            let counts = rest.split(" Cost:").next().unwrap_or(rest);
            for part in counts.split(',').map(|p| p.trim().trim_end_matches('.')) {
                if let Some(n) = part.strip_suffix(" sent") {
                    sent += amount(n);
                } else if let Some(n) = part.strip_suffix(" received") {
                    received += amount(n);
                } else if let Some(n) = part.strip_suffix(" cache write").or(part.strip_suffix(" cache hit"))
                {
                    sent += amount(n);
                }
            }
            tally.input_tokens += sent;
            tally.output_tokens += received;
            if let Some(session) = line.split("Cost: ").nth(1).and_then(|c| c.split(", $").nth(1)) {
                let usd: f64 =
                    session.trim_start_matches('$').split(' ').next().unwrap_or("").parse().unwrap_or(0.0);
                tally.cost_usd = Some(usd);
            }
            out.push(tally.usage());
        } else if line.starts_with("litellm.") && line.contains("Error") {
            let message = clip(line, 300);
            tally.last_error = Some(message.clone());
            // aider retries with backoff on its own; these it cannot fix.
            if is_fatal(None, line) {
                tally.fatal = Some(message.clone());
            } else if line.starts_with("litellm.APIConnectionError") || line.starts_with("litellm.Timeout") {
                tally.unreachable(line);
            }
            if self.error.is_none() {
                self.error = Some(message.clone());
                out.push(AgentActivity::Error { message });
            }
        }
        out
    }

    fn structured(&self) -> bool {
        false
    }

    fn verdict_at_exit(&self, end: &End, _tally: &Tally) -> Option<Verdict> {
        match (&self.error, end) {
            (Some(e), End::Exited { .. }) => Some(Verdict::Failure(e.clone())),
            (None, End::Exited { code: 0 }) => Some(Verdict::Success),
            _ => None,
        }
    }

    fn terminal(&self) -> &'static str {
        "Tokens:"
    }
}
