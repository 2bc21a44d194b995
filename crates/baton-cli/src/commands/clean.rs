use baton_core::{ExitCode, plural};
use baton_engine::KeptWorkspace;

use crate::cli::{CleanArgs, Global};
use crate::context;
use crate::error::CliError;

pub(crate) fn run(global: &Global, args: CleanArgs) -> Result<ExitCode, CliError> {
    let repo = context::repo(global)?;
    // Where this repository's workspaces are, as configured; a configuration that does not load
    // still leaves the runs' own records of where theirs are.
    let repo_dir = context::config(global, Some(&repo.root))
        .ok()
        .map(|c| baton_engine::repo_workspaces(&c.run.workspace_root, &repo));
    let Some(store) = context::existing_store(&repo)? else {
        if args.run.is_some() {
            return Err(context::no_run(args.run.as_deref()).into());
        }
        // A baton killed before it made its store can still have left a directory behind.
        if let Some(dir) = &repo_dir {
            baton_engine::tidy(dir);
        }
        println!("no runs in this repository: nothing to clean");
        return Ok(ExitCode::Success);
    };
    let report = baton_engine::clean_in(
        &repo,
        &store,
        args.run.as_deref(),
        args.refs,
        args.force,
        repo_dir.as_deref(),
    )?;
    let w = report.workspaces_removed;
    let mut text = format!(
        "removed {w} {} of {} {}",
        plural(w, "workspace", "workspaces"),
        report.runs.len(),
        plural(report.runs.len(), "run", "runs")
    );
    if !report.kept.is_empty() {
        let k = report.kept.len();
        text.push_str(&format!(", kept {k} that {} work on no ref", plural(k, "holds", "hold")));
    }
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
    tell_kept(&report.kept);
    Ok(ExitCode::Success)
}

/// Says, on stderr, which workspaces were kept because removing them would lose work, and what
/// the user can do.
pub(crate) fn tell_kept(kept: &[KeptWorkspace]) {
    if kept.is_empty() {
        return;
    }
    for k in kept {
        eprintln!("kept the workspace of {} of run {} ({}): {}", k.candidate, k.run, k.why, k.tree.display());
    }
    eprintln!(
        "  hint: copy what you want to keep out of {} (its files are the work); `baton clean --force` removes {} anyway",
        plural(kept.len(), "it", "them"),
        plural(kept.len(), "it", "them")
    );
}
