use baton_core::{ExitCode, plural};

use crate::cli::{CleanArgs, Global};
use crate::context;
use crate::error::CliError;

pub(crate) fn run(global: &Global, args: CleanArgs) -> Result<ExitCode, CliError> {
    let repo = context::repo(global)?;
    let Some(store) = context::existing_store(&repo)? else {
        if args.run.is_some() {
            return Err(context::no_run(args.run.as_deref()).into());
        }
        println!("no runs in this repository: nothing to clean");
        return Ok(ExitCode::Success);
    };
    let report = baton_engine::clean(&repo, &store, args.run.as_deref(), args.refs)?;
    let w = report.workspaces_removed;
    let mut text = format!(
        "removed {w} {} of {} {}",
        plural(w, "workspace", "workspaces"),
        report.runs.len(),
        plural(report.runs.len(), "run", "runs")
    );
    if args.refs {
        text.push_str(&format!(
            "; deleted {} {}",
            report.refs_deleted,
            plural(report.refs_deleted, "ref", "refs")
        ));
    } else {
        text.push_str("; candidate refs kept (refs/baton/runs/...)");
    }
    println!("{text}");
    Ok(ExitCode::Success)
}
