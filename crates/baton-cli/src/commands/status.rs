use baton_core::{ExitCode, plural};
use serde_json::json;

use crate::cli::{Global, StatusArgs};
use crate::context;
use crate::error::CliError;

pub(crate) fn run(global: &Global, args: StatusArgs) -> Result<ExitCode, CliError> {
    let repo = context::repo(global)?;
    // No store: no run ever started here, and asking creates nothing.
    let Some(store) = context::existing_store(&repo)? else {
        if args.json {
            println!("[]");
        } else {
            eprintln!("no runs yet in this repository; start one with `baton run \"TASK\" --agent ...`");
        }
        return Ok(ExitCode::Success);
    };
    let runs = store.runs(args.limit)?;
    if args.json {
        let list: Vec<_> = runs
            .iter()
            .map(|r| {
                json!({
                    "run": r.id, "status": r.status.as_str(), "started_at": r.started_at,
                    "finished_at": r.finished_at, "task": r.task.title, "winner": r.winner,
                    "merged_commit": r.merged_commit,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(ExitCode::Success);
    }
    if runs.is_empty() {
        eprintln!("no runs yet in this repository; start one with `baton run \"TASK\" --agent ...`");
        return Ok(ExitCode::Success);
    }
    for r in &runs {
        let n = store.candidates(&r.id)?.len();
        let outcome = match (&r.winner, &r.merged_commit) {
            (_, Some(m)) => format!("merged {}", &m[..m.len().min(10)]),
            (Some(w), None) => format!("winner {w}"),
            (None, None) => "no winner".into(),
        };
        println!(
            "{}  {:<9}  {:>2} {}  {:<16}  {}",
            r.id,
            r.status.as_str(),
            n,
            plural(n, "candidate ", "candidates"),
            outcome,
            r.task.title
        );
    }
    Ok(ExitCode::Success)
}
