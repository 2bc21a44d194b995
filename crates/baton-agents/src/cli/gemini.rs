//! Gemini CLI: `gemini -p PROMPT --output-format stream-json --yolo`.
//!
//! Events: `init`, `message` (the assistant's text arrives in `delta` pieces), `tool_use`,
//! `tool_result`, and a final `result` whose `status` is `success` or `error`, with `stats`.
//! The final text is not in `result`: it is the assistant's messages put together. Gemini exits
//! 0 on SIGINT/SIGTERM without a `result`, and re-launches itself as a child node process unless
//! `GEMINI_CLI_NO_RELAUNCH` is set (baton kills the whole process group either way).
//!
//! Its settings file goes in the candidate's HOME: auto-update, usage statistics and telemetry
//! off, and the auth type forced to an API key, because a base URL alone makes the CLI infer a
//! `gateway` auth that headless mode rejects (exit 41).

use baton_config::AgentConfig;
use baton_core::AgentActivity;
use serde_json::{Value, json};

use super::{
    Command, Dialect, Home, Tally, Verdict, clip, describe_input, is_fatal, num, text, written_file,
};

pub(crate) fn command(
    c: &AgentConfig,
    prompt: &str,
    key: Option<String>,
    home: &Home,
    cmd: &mut Command,
) -> std::io::Result<()> {
    cmd.arg("-p").arg(prompt).arg("--output-format").arg("stream-json");
    if !c.args.iter().any(|a| a == "--yolo" || a == "-y" || a.starts_with("--approval-mode")) {
        cmd.arg("--yolo");
    }
    if let Some(m) = &c.model {
        cmd.arg("--model").arg(m);
    }
    cmd.env("GEMINI_CLI_TRUST_WORKSPACE", "true").env("GEMINI_CLI_NO_RELAUNCH", "true");
    let has_key =
        key.is_some() || ["GEMINI_API_KEY", "GOOGLE_API_KEY"].iter().any(|k| std::env::var_os(k).is_some());
    if let Some(url) = &c.base_url {
        cmd.env("GOOGLE_GEMINI_BASE_URL", url);
        if !has_key {
            cmd.env("GEMINI_API_KEY", "baton-no-key");
        }
    }
    if let Some(k) = key {
        cmd.env("GEMINI_API_KEY", k);
    }
    let auth = if has_key || c.base_url.is_some() {
        "gemini-api-key"
    } else if std::env::var_os("GOOGLE_GENAI_USE_VERTEXAI").is_some() {
        "vertex-ai"
    } else {
        "oauth-personal"
    };
    let mut settings = json!({
        // 10 attempts with backoff by default (minutes on a failing endpoint).
        "general": {"disableAutoUpdate": true, "disableUpdateNag": true,
                    "maxAttempts": super::claude::RETRIES.parse::<u32>().unwrap_or(3) + 1},
        "privacy": {"usageStatisticsEnabled": false},
        "telemetry": {"enabled": false},
        "security": {"auth": {"selectedType": auth}},
    });
    if let Some(n) = c.max_turns {
        settings["model"] = json!({"maxSessionTurns": n});
    }
    home.write(".gemini/settings.json", &settings.to_string())?;
    Ok(())
}

#[derive(Default)]
pub(crate) struct Events {
    /// The assistant's text since the last other event, sent as one message.
    pending: String,
    all_text: String,
    tools: std::collections::HashMap<String, String>,
}

impl Events {
    fn flush(&mut self, out: &mut Vec<AgentActivity>) {
        if !self.pending.trim().is_empty() {
            out.push(AgentActivity::Message { text: std::mem::take(&mut self.pending) });
        }
        self.pending.clear();
    }
}

impl Dialect for Events {
    fn event(&mut self, _line: &str, json: Option<&Value>, tally: &mut Tally) -> Vec<AgentActivity> {
        let Some(v) = json else { return Vec::new() };
        let mut out = Vec::new();
        let kind = text(v, &["type"]);
        if kind == Some("message") && text(v, &["role"]) == Some("assistant") {
            let piece = text(v, &["content"]).unwrap_or("");
            if self.pending.is_empty() {
                tally.turns += 1;
            }
            self.pending.push_str(piece);
            self.all_text.push_str(piece);
            return out;
        }
        self.flush(&mut out);
        match kind {
            Some("init") => out.push(AgentActivity::Started {
                model: text(v, &["model"]).map(str::to_owned),
                session: text(v, &["session_id"]).map(str::to_owned),
            }),
            Some("tool_use") => {
                tally.turns += 1;
                let tool = text(v, &["tool_name"]).unwrap_or("?").to_owned();
                let params = &v["parameters"];
                if let Some(id) = text(v, &["tool_id"]) {
                    self.tools.insert(id.to_owned(), tool.clone());
                }
                if let Some(f) = written_file(&tool, params) {
                    tally.touched.push(f);
                }
                out.push(AgentActivity::ToolCall { detail: describe_input(params), tool });
            }
            Some("tool_result") => {
                let id = text(v, &["tool_id"]).unwrap_or("");
                out.push(AgentActivity::ToolResult {
                    tool: self.tools.get(id).cloned().unwrap_or_else(|| "tool".into()),
                    ok: text(v, &["status"]) == Some("success"),
                    detail: clip(text(v, &["error", "message"]).or(text(v, &["output"])).unwrap_or(""), 200),
                });
            }
            Some("error") => {
                let message = clip(text(v, &["message"]).unwrap_or("error"), 300);
                tally.last_error = Some(message.clone());
                if is_fatal(None, &message) {
                    tally.fatal = Some(message.clone());
                }
                out.push(AgentActivity::Error { message });
            }
            Some("result") => {
                let stats = &v["stats"];
                tally.input_tokens = num(stats, &["input_tokens"]);
                tally.output_tokens = num(stats, &["output_tokens"]);
                out.push(tally.usage());
                if text(v, &["status"]) == Some("success") {
                    tally.verdict = Some(Verdict::Success);
                } else {
                    let message = text(v, &["error", "message"])
                        .map(str::to_owned)
                        .or_else(|| tally.last_error.clone())
                        .unwrap_or_else(|| format!("status {}", v["status"]));
                    out.push(AgentActivity::Error { message: clip(&message, 300) });
                    tally.verdict = Some(Verdict::Failure(clip(&message, 300)));
                }
                out.push(AgentActivity::Finished { text: self.all_text.clone(), turns: Some(tally.turns) });
            }
            _ => {}
        }
        out
    }

    fn terminal(&self) -> &'static str {
        "result"
    }
}
