//! `baton config`: the configuration a run would use, each value with the layer that set it.

use baton_config::{KeyPath, KeySeg, LayerSource, Location, Resolved};
use baton_core::ExitCode;
use serde_json::json;
use toml::{Table, Value};

use crate::cli::{ConfigArgs, Global};
use crate::context;
use crate::error::CliError;

pub(crate) fn run(global: &Global, args: ConfigArgs) -> Result<ExitCode, CliError> {
    let cwd = context::working_dir(global)?;
    // Outside a repository there is no repository file, and the rest still applies.
    let repo = baton_git::Repo::discover(&cwd).ok();
    let resolved = context::resolve(global, repo.as_ref().map(|r| r.root.as_path()), Vec::new())?;
    if args.json {
        let mut values = Vec::new();
        leaves(&resolved, &KeyPath::default(), &resolved.table, &mut values);
        let list: Vec<_> = values
            .into_iter()
            .map(|(path, value, (source, location))| {
                json!({
                    "key": path.to_string(),
                    "value": value,
                    "layer": source.kind(),
                    "from": from(&source, &location),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
    } else {
        print!("{}", text(&resolved));
    }
    Ok(ExitCode::Success)
}

/// Where a value came from, for people: `default`, `repository file /r/baton.toml:3:8`,
/// `environment BATON_JOBS`, `--set run.jobs=2`.
fn from(source: &LayerSource, location: &Location) -> String {
    match (source, location) {
        (LayerSource::Defaults, _) => "default".into(),
        (LayerSource::Env(var), _) => format!("environment {var}"),
        (LayerSource::Flag(arg), _) => arg.clone(),
        (_, location) => format!("{} {location}", source.kind()),
    }
}

/// The effective configuration as TOML, with the origin of every value in a comment.
pub(crate) fn text(resolved: &Resolved) -> String {
    let mut out = String::from(
        "# The configuration `baton run` would use here: every value, with the layer that set it.\n\
         # Layers, each overriding the one before: default, user file, repository file, --config\n\
         # file, environment, command line. [[agent]] entries merge by name; other lists replace.\n",
    );
    table_text(resolved, &KeyPath::default(), &resolved.table, &mut out);
    if !resolved.table.contains_key("verify")
        || resolved.table["verify"].get("stage").is_none_or(|s| s.as_array().is_some_and(Vec::is_empty))
    {
        out.push_str(
            "\n# No [[verify.stage]]: `baton run` detects a test command from the repository's files.\n",
        );
    }
    out
}

fn is_table_list(v: &Value) -> bool {
    matches!(v, Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_table))
}

fn line(out: &mut String, key: &str, value: &Value, origin: &(LayerSource, Location)) {
    let assignment = format!("{} = {value}", KeyPath(vec![KeySeg::Key(key.to_owned())]));
    out.push_str(&format!("{assignment:<40} # {}\n", from(&origin.0, &origin.1)));
}

fn table_text(resolved: &Resolved, path: &KeyPath, table: &Table, out: &mut String) {
    for (key, value) in table {
        if !value.is_table() && !is_table_list(value) {
            let here = child(path, key);
            line(out, key, value, &resolved.origin(&here));
        }
    }
    // The sections in the order a baton.toml usually has them.
    const ORDER: [&str; 5] = ["run", "merge", "agent", "strategy", "verify"];
    let mut keys: Vec<&String> = table.keys().collect();
    if path.0.is_empty() {
        keys.sort_by_key(|k| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    }
    for key in keys {
        let value = &table[key];
        let here = child(path, key);
        match value {
            Value::Table(t) => {
                // A table of tables only (`[strategy]`) needs no header of its own.
                if t.values().any(|v| !v.is_table()) {
                    out.push_str(&format!("\n[{here}]\n"));
                }
                table_text(resolved, &here, t, out);
            }
            v if is_table_list(v) => {
                for (i, entry) in v.as_array().into_iter().flatten().enumerate() {
                    let at = entry_path(&here, i, entry);
                    out.push_str(&format!("\n[[{here}]]\n"));
                    let Some(fields) = entry.as_table() else { continue };
                    // The name first: it is what the entry is known by.
                    let mut names: Vec<&String> = fields.keys().collect();
                    names.sort_by_key(|k| *k != "name");
                    for k in names {
                        line(out, k, &fields[k], &resolved.origin(&child(&at, k)));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Every value with its path and origin, lists of tables entry by entry.
fn leaves(
    resolved: &Resolved,
    path: &KeyPath,
    table: &Table,
    out: &mut Vec<(KeyPath, Value, (LayerSource, Location))>,
) {
    for (key, value) in table {
        let here = child(path, key);
        match value {
            Value::Table(t) => leaves(resolved, &here, t, out),
            v if is_table_list(v) => {
                for (i, entry) in v.as_array().into_iter().flatten().enumerate() {
                    let at = entry_path(&here, i, entry);
                    for (k, field) in entry.as_table().into_iter().flatten() {
                        let p = child(&at, k);
                        let origin = resolved.origin(&p);
                        out.push((p, field.clone(), origin));
                    }
                }
            }
            v => {
                let origin = resolved.origin(&here);
                out.push((here, v.clone(), origin));
            }
        }
    }
}

fn child(path: &KeyPath, key: &str) -> KeyPath {
    let mut p = path.clone();
    p.0.push(KeySeg::Key(key.to_owned()));
    p
}

/// `[[agent]]` entries are addressed by name, other entries by position.
fn entry_path(list: &KeyPath, i: usize, entry: &Value) -> KeyPath {
    let mut p = list.clone();
    match entry.get("name").and_then(Value::as_str) {
        Some(name) if list.0 == [KeySeg::Key("agent".into())] => p.0.push(KeySeg::Key(name.to_owned())),
        _ => p.0.push(KeySeg::Index(i)),
    }
    p
}
