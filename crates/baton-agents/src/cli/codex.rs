//! Codex CLI: `codex exec --json --sandbox workspace-write PROMPT`.
//!
//! Events: `thread.started`, `turn.started`, `item.started`/`item.completed` (items of type
//! `command_execution`, `agent_message`, `file_change`, `reasoning`, `error`, ...), then
//! `turn.completed` with the usage, or `turn.failed` (and top-level `error` events). An `error`
//! *item* is a notice (such as unknown model metadata), not a failure.
//!
//! A base URL becomes a custom provider given with `-c`: Codex 0.169 ignores `OPENAI_BASE_URL`
//! for its built-in provider. `CODEX_HOME` must exist, and must not lie under `TMPDIR` (Codex then
//! refuses to create the helper its sandbox runs), so both get their own directories in the
//! candidate's HOME.

use baton_config::AgentConfig;
use baton_core::AgentActivity;
use serde_json::Value;

use super::{Command, Dialect, Home, Tally, Verdict, clip, is_fatal, num, text};

/// Whether the user's extra arguments already choose a sandbox (or none).
pub(crate) fn sandbox_disabled(args: &[String]) -> bool {
    args.iter().any(|a| a == "--dangerously-bypass-approvals-and-sandbox" || a == "--yolo")
}

/// Whether the user's extra arguments choose a sandbox mode themselves.
pub(crate) fn chooses_sandbox(args: &[String]) -> bool {
    sandbox_disabled(args)
        || args.iter().any(|a| a == "--sandbox" || a == "-s" || a.starts_with("--sandbox="))
}

/// `confined`: baton's sandbox already confines Codex, and Codex's own (bubblewrap inside
/// bubblewrap) cannot start there: its commands then run as Codex itself does, confined alike.
pub(crate) fn command(
    c: &AgentConfig,
    prompt: &str,
    key: Option<String>,
    home: &Home,
    confined: bool,
    cmd: &mut Command,
) -> std::io::Result<()> {
    let codex_home = home.root.join(".codex");
    std::fs::create_dir_all(&codex_home)?;
    cmd.env("CODEX_HOME", codex_home.to_string_lossy());
    cmd.arg("exec").arg("--json").arg("--skip-git-repo-check");
    if !chooses_sandbox(&c.args) {
        cmd.arg("--sandbox").arg(if confined { "danger-full-access" } else { "workspace-write" });
    }
    cmd.arg("-c").arg("check_for_update_on_startup=false");
    if let Some(m) = &c.model {
        cmd.arg("--model").arg(m);
    }
    if let Some(e) = &c.effort {
        cmd.arg("-c").arg(format!("model_reasoning_effort=\"{e}\""));
    }
    if let Some(url) = &c.base_url {
        let env_key = match (&c.api_key_env, &key) {
            (Some(k), Some(_)) => k.clone(),
            _ if std::env::var_os("OPENAI_API_KEY").is_some() => "OPENAI_API_KEY".into(),
            _ => {
                cmd.env("BATON_CODEX_KEY", "baton-no-key");
                "BATON_CODEX_KEY".into()
            }
        };
        if let (Some(k), Some(v)) = (&c.api_key_env, &key) {
            cmd.env(k, v.clone());
        }
        cmd.arg("-c").arg("model_provider=\"baton\"");
        cmd.arg("-c").arg(format!(
            "model_providers.baton={{name=\"baton\",base_url=\"{}\",env_key=\"{env_key}\",wire_api=\"responses\",request_max_retries={retries},stream_max_retries={retries}}}",
            url.replace('\\', "\\\\").replace('"', "\\\""),
            retries = super::claude::RETRIES,
        ));
    }
    // The prompt is positional; `--` keeps one that starts with `-` from being read as a flag.
    cmd.arg("--").arg(prompt);
    Ok(())
}

#[derive(Default)]
pub(crate) struct Events {
    last_message: Option<String>,
}

impl Dialect for Events {
    fn event(&mut self, _line: &str, json: Option<&Value>, tally: &mut Tally) -> Vec<AgentActivity> {
        let Some(v) = json else { return Vec::new() };
        let mut out = Vec::new();
        let item = &v["item"];
        match (text(v, &["type"]), text(item, &["type"])) {
            (Some("thread.started"), _) => out.push(AgentActivity::Started {
                model: None,
                session: text(v, &["thread_id"]).map(str::to_owned),
            }),
            (Some("item.started"), Some("command_execution")) => {
                tally.turns += 1;
                out.push(AgentActivity::ToolCall {
                    tool: "shell".into(),
                    detail: clip(text(item, &["command"]).unwrap_or(""), 200),
                });
            }
            (Some("item.started"), Some("mcp_tool_call" | "web_search")) => {
                tally.turns += 1;
                let tool = text(item, &["tool"]).or(text(item, &["type"])).unwrap_or("tool");
                let detail = text(item, &["query"]).or(text(item, &["server"])).unwrap_or("");
                out.push(AgentActivity::ToolCall { tool: tool.into(), detail: clip(detail, 200) });
            }
            (Some("item.completed"), Some("command_execution")) => {
                let code = item["exit_code"].as_i64();
                // Its own sandbox could not start: the command never ran, whatever Codex says.
                let output = text(item, &["aggregated_output"]).unwrap_or("");
                if code != Some(0)
                    && let Some(line) = output.lines().find(|l| l.starts_with("bwrap: "))
                {
                    tally.sandbox_failure.get_or_insert_with(|| clip(line, 160));
                }
                out.push(AgentActivity::ToolResult {
                    tool: "shell".into(),
                    ok: code == Some(0),
                    detail: match code {
                        Some(c) => format!(
                            "exit {c}: {}",
                            clip(text(item, &["aggregated_output"]).unwrap_or(""), 160)
                        ),
                        None => text(item, &["status"]).unwrap_or("").to_owned(),
                    },
                });
            }
            (Some("item.completed"), Some("agent_message")) => {
                tally.turns += 1;
                let t = text(item, &["text"]).unwrap_or("").to_owned();
                self.last_message = Some(t.clone());
                out.push(AgentActivity::Message { text: t });
            }
            (Some("item.completed"), Some("file_change")) => {
                for change in item["changes"].as_array().into_iter().flatten() {
                    if let Some(p) = text(change, &["path"]) {
                        tally.touched.push(p.to_owned());
                        out.push(AgentActivity::ToolCall {
                            tool: format!("file_change ({})", text(change, &["kind"]).unwrap_or("update")),
                            detail: p.to_owned(),
                        });
                    }
                }
            }
            (Some("item.completed"), Some("error")) => {
                out.push(AgentActivity::Warning {
                    message: clip(text(item, &["message"]).unwrap_or(""), 300),
                });
            }
            (Some("turn.completed"), _) => {
                let u = &v["usage"];
                tally.input_tokens += num(u, &["input_tokens"]);
                tally.output_tokens += num(u, &["output_tokens"]);
                out.push(tally.usage());
                tally.verdict = Some(Verdict::Success);
                out.push(AgentActivity::Finished {
                    text: self.last_message.clone().unwrap_or_default(),
                    turns: Some(tally.turns),
                });
            }
            (Some("turn.failed"), _) => {
                let message = text(v, &["error", "message"]).unwrap_or("the turn failed").to_owned();
                out.push(AgentActivity::Error { message: clip(&message, 300) });
                tally.verdict = Some(Verdict::Failure(clip(&message, 300)));
            }
            (Some("error"), _) => {
                let message = text(v, &["message"]).unwrap_or("error").to_owned();
                tally.last_error = Some(clip(&message, 300));
                out.push(AgentActivity::Error { message: clip(&message, 300) });
                // "Reconnecting... 1/5 (unexpected status 401 Unauthorized: ...)": a rejected
                // key is retried like a dropped connection. "Reconnecting... waiting for
                // network (...)": the endpoint cannot be reached, and Codex never gives up.
                if is_fatal(None, &message) {
                    tally.fatal = Some(clip(&message, 300));
                } else if message.starts_with("Reconnecting") && !message.contains("unexpected status") {
                    tally.unreachable(&message);
                }
            }
            _ => {}
        }
        out
    }

    fn terminal(&self) -> &'static str {
        "turn.completed"
    }
}
