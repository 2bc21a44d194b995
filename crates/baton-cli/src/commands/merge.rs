use baton_core::{CandidateId, ExitCode};
use baton_engine::MergeRequest;

use crate::cli::{Global, MergeArgs};
use crate::context;
use crate::error::CliError;

pub(crate) fn run(global: &Global, args: MergeArgs) -> Result<ExitCode, CliError> {
    let repo = context::repo(global)?;
    let mut store = context::store(&repo)?;
    let candidate = args
        .candidate
        .as_deref()
        .map(|c| CandidateId::new(c).map_err(|e| CliError::usage(e.to_string())))
        .transpose()?;
    let merged = baton_engine::merge(
        &repo,
        &mut store,
        &MergeRequest { run: args.run, candidate, target: args.target },
    )?;
    println!(
        "merged {} of run {} onto {} as {} (was {}){}",
        merged.candidate,
        merged.run,
        merged.target,
        merged.commit.short(),
        merged.previous.short(),
        if merged.updated_worktree { "; working tree updated" } else { "" }
    );
    // The run's workspaces have served their purpose; the refs stay.
    if let Ok(Some(run)) = store.run(&merged.run) {
        let _ = baton_engine::clean(&repo, &store, Some(run.id.as_str()), false);
    }
    Ok(ExitCode::Success)
}
