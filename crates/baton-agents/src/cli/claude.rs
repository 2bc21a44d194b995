//! Claude Code: `claude -p PROMPT --output-format stream-json --verbose`.
//!
//! The stream (also qwen-code's) is `system/init`, then `assistant` messages (text and `tool_use`
//! blocks; one event per block, repeating the message's usage), `user` messages carrying
//! `tool_result`s, and a final `result` with `is_error`, `subtype`, `num_turns`, `usage` and
//! `total_cost_usd`. On an API error the result's `subtype` still says `success`: `is_error`
//! and `api_error_status` tell. Without a `result` line the session did not finish (Claude exits
//! 0 on SIGINT without one).

use std::collections::HashMap;

use baton_config::AgentConfig;
use baton_core::AgentActivity;
use serde_json::Value;

use super::{Command, Dialect, Tally, Verdict, clip, describe_input, is_fatal, num, text, written_file};

/// How many times baton lets a CLI retry a failed model request, where the CLI has a limit.
pub(crate) const RETRIES: &str = "3";

pub(crate) fn command(
    c: &AgentConfig,
    prompt: &str,
    key: Option<String>,
    cmd: &mut Command,
) -> std::io::Result<()> {
    cmd.arg("-p").arg(prompt);
    cmd.arg("--output-format").arg("stream-json").arg("--verbose");
    // Edits inside the workspace without prompts; commands need `args` (see default.toml).
    if !c.args.iter().any(|a| a == "--permission-mode" || a == "--dangerously-skip-permissions") {
        cmd.arg("--permission-mode").arg("acceptEdits");
    }
    if let Some(m) = &c.model {
        cmd.arg("--model").arg(m);
    }
    if let Some(e) = &c.effort {
        cmd.arg("--effort").arg(e);
    }
    if let Some(n) = c.max_turns {
        cmd.arg("--max-turns").arg(n.to_string());
    }
    // Claude Code's own budget counts its vendor's list prices; with a price of the agent's
    // or a model served elsewhere, baton keeps the budget itself.
    if let Some(usd) = c.max_cost_usd.filter(|_| c.price.is_none() && c.base_url.is_none()) {
        cmd.arg("--max-budget-usd").arg(usd.to_string());
    }
    // Claude Code retries a failed request 10 times with backoff (over three minutes); a few
    // are enough for a passing fault. The agent's `env` can set another limit.
    cmd.env("CLAUDE_CODE_MAX_RETRIES", RETRIES);
    cmd.env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_ERROR_REPORTING", "1");
    if let Some(url) = &c.base_url {
        cmd.env("ANTHROPIC_BASE_URL", url);
        if key.is_none()
            && !c.env_pass.iter().any(|k| k.starts_with("ANTHROPIC_"))
            && std::env::var_os("ANTHROPIC_API_KEY").is_none()
        {
            // A local endpoint needs no key, but the CLI refuses to start without one.
            cmd.env("ANTHROPIC_API_KEY", "baton-no-key");
        }
    }
    if let Some(k) = key {
        cmd.env("ANTHROPIC_API_KEY", k);
    }
    Ok(())
}

/// Claude Code's and qwen-code's `stream-json`.
pub(crate) struct StreamJson {
    cli: &'static str,
    last_message: Option<String>,
    /// Usage of the assistant messages seen, by message id (each block repeats it).
    usage: HashMap<String, (u64, u64)>,
    tools: HashMap<String, String>,
}

impl StreamJson {
    pub(crate) fn new(cli: &'static str) -> StreamJson {
        StreamJson { cli, last_message: None, usage: HashMap::new(), tools: HashMap::new() }
    }
}

fn tokens(usage: &Value) -> (u64, u64) {
    let input = num(usage, &["input_tokens"])
        + num(usage, &["cache_creation_input_tokens"])
        + num(usage, &["cache_read_input_tokens"]);
    (input, num(usage, &["output_tokens"]))
}

impl Dialect for StreamJson {
    fn event(&mut self, _line: &str, json: Option<&Value>, tally: &mut Tally) -> Vec<AgentActivity> {
        let Some(v) = json else { return Vec::new() };
        let mut out = Vec::new();
        match (text(v, &["type"]), text(v, &["subtype"])) {
            (Some("system"), Some("init")) => out.push(AgentActivity::Started {
                model: text(v, &["model"]).map(str::to_owned),
                session: text(v, &["session_id"]).map(str::to_owned),
            }),
            (Some("system"), Some("api_retry")) => {
                let status = v.get("error_status").and_then(Value::as_u64);
                let error = text(v, &["error"]).unwrap_or("unknown");
                let words = match status {
                    Some(s) => format!("API error {s} ({error})"),
                    None => format!("API request got no answer ({error})"),
                };
                out.push(AgentActivity::Warning {
                    message: format!(
                        "{words}, retrying (attempt {} of {})",
                        num(v, &["attempt"]),
                        num(v, &["max_retries"])
                    ),
                });
                // A rejected key is retried ten times by default (minutes): it will not heal.
                if is_fatal(status, error) {
                    tally.fatal = Some(words);
                } else if status.is_none() {
                    tally.unreachable(&words);
                }
            }
            (Some("assistant"), _) => {
                let msg = &v["message"];
                let id = text(msg, &["id"]).unwrap_or("").to_owned();
                if text(msg, &["model"]) != Some("<synthetic>") && !self.usage.contains_key(&id) {
                    tally.turns += 1;
                    let (i, o) = tokens(&msg["usage"]);
                    self.usage.insert(id, (i, o));
                    tally.input_tokens = self.usage.values().map(|u| u.0).sum();
                    tally.output_tokens = self.usage.values().map(|u| u.1).sum();
                    out.push(tally.usage());
                }
                for block in msg["content"].as_array().into_iter().flatten() {
                    match text(block, &["type"]) {
                        Some("text") => {
                            let t = text(block, &["text"]).unwrap_or("").to_owned();
                            if t.starts_with("[API Error") {
                                // qwen-code reports API errors as the assistant's text, then a
                                // `result` that claims success.
                                tally.last_error = Some(clip(&t, 300));
                                out.push(AgentActivity::Error { message: clip(&t, 300) });
                            } else if !t.trim().is_empty() {
                                out.push(AgentActivity::Message { text: t.clone() });
                            }
                            self.last_message = Some(t);
                        }
                        Some("tool_use") => {
                            let tool = text(block, &["name"]).unwrap_or("?").to_owned();
                            let input = &block["input"];
                            if let Some(id) = text(block, &["id"]) {
                                self.tools.insert(id.to_owned(), tool.clone());
                            }
                            if let Some(f) = written_file(&tool, input) {
                                tally.touched.push(f);
                            }
                            out.push(AgentActivity::ToolCall { detail: describe_input(input), tool });
                        }
                        _ => {}
                    }
                }
            }
            (Some("user"), _) => {
                for block in v["message"]["content"].as_array().into_iter().flatten() {
                    if text(block, &["type"]) != Some("tool_result") {
                        continue;
                    }
                    let id = text(block, &["tool_use_id"]).unwrap_or("");
                    let content = match &block["content"] {
                        Value::String(s) => s.clone(),
                        Value::Array(parts) => {
                            parts.iter().filter_map(|p| text(p, &["text"])).collect::<Vec<_>>().join("\n")
                        }
                        _ => String::new(),
                    };
                    out.push(AgentActivity::ToolResult {
                        tool: self.tools.get(id).cloned().unwrap_or_else(|| "tool".into()),
                        ok: block["is_error"] != true,
                        detail: clip(&content, 200),
                    });
                }
            }
            (Some("result"), subtype) => {
                let (i, o) = tokens(&v["usage"]);
                if i + o > 0 {
                    tally.input_tokens = i;
                    tally.output_tokens = o;
                }
                if let Some(cost) = v["total_cost_usd"].as_f64() {
                    tally.cost_usd = Some(cost);
                }
                let turns = v["num_turns"].as_u64().map(|n| n as u32);
                if let Some(n) = turns {
                    tally.turns = n;
                }
                out.push(tally.usage());
                let result = text(v, &["result"])
                    .map(str::to_owned)
                    .or_else(|| self.last_message.clone())
                    .unwrap_or_default();
                let denied: Vec<String> = v["permission_denials"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| text(d, &["tool_name"]).map(str::to_owned))
                    .collect();
                if !denied.is_empty() {
                    out.push(AgentActivity::Warning {
                        message: format!("{} was denied permission for: {}", self.cli, denied.join(", ")),
                    });
                }
                let ok =
                    v["is_error"] == false && subtype == Some("success") && !result.starts_with("[API Error");
                tally.verdict = Some(if ok {
                    Verdict::Success
                } else {
                    let why = match (v.get("api_error_status").and_then(Value::as_u64), subtype) {
                        (Some(status), _) => format!("API error {status}: {}", clip(&result, 200)),
                        (None, Some("error_max_turns")) => "reached the turn limit (max_turns)".to_owned(),
                        (None, Some("error_max_budget_usd")) => {
                            "reached the cost limit (max_cost_usd)".to_owned()
                        }
                        (None, Some(s)) if s != "success" => format!("{s}: {}", clip(&result, 200)),
                        _ => clip(&result, 200),
                    };
                    out.push(AgentActivity::Error { message: why.clone() });
                    Verdict::Failure(why)
                });
                out.push(AgentActivity::Finished { text: result, turns });
            }
            _ => {}
        }
        out
    }

    fn terminal(&self) -> &'static str {
        "result"
    }
}
