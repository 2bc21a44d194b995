//! Secrets out of what a run writes.
//!
//! One [`Redactor`] per run, built with the plan from the keys an agent may be handed: every
//! agent CLI's key variables, each configured agent's `api_key_env` and `env_pass`, the values
//! configuration gives secret-named variables, and every variable of baton's environment whose
//! name says it holds a secret. It is applied where text is written, once:
//!
//! - process logs (agents, stages, probes): the run's executor is wrapped in
//!   [`baton_exec::Redacting`], so every process's log is redacted as it streams;
//! - events: the recorder redacts each event before the store and the reporter see it, so what
//!   is stored (the scoreboard's notes, an agent's messages and errors, quoted log lines) is
//!   what is shown, and neither holds a key;
//! - a candidate's commit message, which quotes the agent's outcome;
//! - what an agent leaves in its own HOME (an agent CLI's session transcripts), once it ended.
//!
//! What it cannot catch: a secret shorter than [`baton_exec::redact::MIN_SECRET_LEN`] bytes,
//! one baton does not know of whose shape is not a known token format, and any secret written
//! transformed (base64, split by the program itself, escaped).

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use baton_agents::CliInfo;
use baton_config::Config;
use baton_core::RunEvent;
use baton_exec::Redactor;
use baton_exec::redact::is_secret_name;
use serde_json::Value;

/// The run's redactor for `config`, from baton's environment as it is now.
pub(crate) fn redactor(config: &Config) -> Arc<Redactor> {
    let keys: Vec<&str> = CliInfo::all().iter().flat_map(|c| c.keys.iter().copied()).collect();
    let names = keys.iter().copied().chain(
        config.agents.iter().flat_map(|a| a.api_key_env.iter().chain(&a.env_pass).map(String::as_str)),
    );
    // Values written into configuration itself, under a name that says what they are.
    let configured = config
        .agents
        .iter()
        .flat_map(|a| &a.env)
        .chain(config.verify.stages.iter().flat_map(|s| &s.env))
        .filter(|(name, _)| is_secret_name(name) || keys.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()));
    Arc::new(Redactor::from_env(names, configured))
}

/// `event` with every secret in its text replaced. Every string in it is redacted, whatever
/// the event: a new event or field cannot be missed.
pub(crate) fn event(redactor: &Redactor, event: RunEvent) -> RunEvent {
    // An event that cannot be serialized cannot be stored either; the store says so.
    let Ok(mut value) = serde_json::to_value(&event) else { return event };
    if !redact_value(redactor, &mut value) {
        return event;
    }
    serde_json::from_value(value).unwrap_or_else(|_| RunEvent::Warning {
        message: "an event was left out: it held a secret, and redacted it no longer read as an event".into(),
    })
}

/// Files larger than this are left as they are: an agent's HOME holds caches too, and a
/// transcript never comes close.
const MAX_REDACTED_FILE: u64 = 64 << 20;

/// Replaces every file under `dir` that holds a secret by a redacted copy; a file that cannot
/// be replaced is removed. Links are never written through: a symbolic link is not followed
/// (those in an agent's HOME are the user's own login files), and the copy takes the file's
/// name by a rename, so another hard link to it keeps what it had.
pub(crate) fn files_under(redactor: &Redactor, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            files_under(redactor, &path);
        } else if kind.is_file() && entry.metadata().is_ok_and(|m| m.len() <= MAX_REDACTED_FILE) {
            let Ok(bytes) = std::fs::read(&path) else { continue };
            if let Cow::Owned(redacted) = redactor.redact_bytes(&bytes) {
                let mut copy = path.clone().into_os_string();
                copy.push(".baton-redacted");
                let replaced = std::fs::write(&copy, redacted).and_then(|()| std::fs::rename(&copy, &path));
                if replaced.is_err() {
                    let _ = std::fs::remove_file(&copy);
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
}

/// Redacts every string (and object key) in `value`; whether anything changed.
fn redact_value(redactor: &Redactor, value: &mut Value) -> bool {
    match value {
        Value::String(s) => match redactor.redact(s) {
            Cow::Borrowed(_) => false,
            Cow::Owned(redacted) => {
                *s = redacted;
                true
            }
        },
        Value::Array(items) => items.iter_mut().fold(false, |changed, v| redact_value(redactor, v) | changed),
        Value::Object(map) => {
            let mut changed = map.values_mut().fold(false, |changed, v| redact_value(redactor, v) | changed);
            let keys: Vec<String> =
                map.keys().filter(|k| matches!(redactor.redact(k), Cow::Owned(_))).cloned().collect();
            for key in keys {
                if let Some(v) = map.remove(&key) {
                    map.insert(redactor.redact(&key).into_owned(), v);
                    changed = true;
                }
            }
            changed
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::{AgentActivity, AgentOutcome, CandidateId};

    const KEY: &str = "sk-test-SECRETVALUE1234567890abcdef";

    fn redactor() -> Redactor {
        Redactor::new([("OPENAI_API_KEY", KEY)])
    }

    #[test]
    fn every_string_of_an_event_is_redacted() {
        let r = redactor();
        let e = RunEvent::AgentActivity {
            candidate: CandidateId::nth(1),
            activity: AgentActivity::ToolResult {
                tool: "bash".into(),
                ok: false,
                // A token after an escaped newline: redacted as text, not as its JSON.
                detail: format!("the key is {KEY}\nghp_0123456789abcdefghijABCDEFGHIJ012345"),
            },
        };
        assert_eq!(
            event(&r, e),
            RunEvent::AgentActivity {
                candidate: CandidateId::nth(1),
                activity: AgentActivity::ToolResult {
                    tool: "bash".into(),
                    ok: false,
                    detail: "the key is [redacted: OPENAI_API_KEY]\n[redacted]".into(),
                },
            }
        );
        let e = RunEvent::AgentFinished {
            candidate: CandidateId::nth(2),
            outcome: AgentOutcome::Failed { reason: format!("401: invalid key {KEY}") },
            millis: 5,
        };
        let RunEvent::AgentFinished { outcome: AgentOutcome::Failed { reason }, millis: 5, .. } =
            event(&r, e)
        else {
            panic!("not the same event")
        };
        assert_eq!(reason, "401: invalid key [redacted: OPENAI_API_KEY]");
    }

    #[test]
    fn files_are_redacted_in_place_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("login.json");
        std::fs::write(&outside, format!("{{\"key\":\"{KEY}\"}}")).unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".cli/sessions")).unwrap();
        std::fs::write(home.join(".cli/sessions/1.jsonl"), format!("{{\"out\":\"key={KEY}\"}}\n")).unwrap();
        std::fs::write(home.join("plain.txt"), "nothing here\n").unwrap();
        std::os::unix::fs::symlink(&outside, home.join("login.json")).unwrap();
        std::fs::hard_link(&outside, home.join("hard.json")).unwrap();
        files_under(&redactor(), &home);
        assert_eq!(
            std::fs::read_to_string(home.join(".cli/sessions/1.jsonl")).unwrap(),
            "{\"out\":\"key=[redacted: OPENAI_API_KEY]\"}\n"
        );
        assert_eq!(std::fs::read_to_string(home.join("plain.txt")).unwrap(), "nothing here\n");
        // The user's own file, behind a link, is theirs; the hard link's name now holds a copy.
        assert!(std::fs::read_to_string(&outside).unwrap().contains(KEY));
        assert_eq!(
            std::fs::read_to_string(home.join("hard.json")).unwrap(),
            "{\"key\":\"[redacted: OPENAI_API_KEY]\"}"
        );
        let names: Vec<_> = std::fs::read_dir(&home).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 4, "no copy left behind: {names:?}");
    }

    #[test]
    fn an_event_without_secrets_is_left_as_it_is() {
        let e = RunEvent::Warning { message: "the key sk-short is fine".into() };
        assert_eq!(event(&redactor(), e.clone()), e);
    }
}
