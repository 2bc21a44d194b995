use baton_core::{CandidateId, ExitCode};
use baton_engine::{EngineError, MergeRequest};

use crate::cli::{Global, MergeArgs};
use crate::context;
use crate::error::CliError;

pub(crate) fn run(global: &Global, args: MergeArgs) -> Result<ExitCode, CliError> {
    let repo = context::repo(global)?;
    let Some(mut store) = context::existing_store(&repo)? else {
        return Err(context::no_run(args.run.as_deref()).into());
    };
    let mut run = args.run.clone();
    let mut candidate = args.candidate.clone();
    // `baton merge c1`: where no run has that id, a candidate of the latest run does, as for
    // `baton diff c1`.
    if let (Some(id), None) = (&args.run, &args.candidate)
        && let Err(EngineError::UnknownRun(_)) = baton_engine::find_run(&store, Some(id))
        && let Ok(latest) = baton_engine::find_run(&store, None)
        && store.candidates(&latest.id)?.iter().any(|c| c.id.as_str() == id)
    {
        run = Some(latest.id.to_string());
        candidate = Some(id.clone());
    }
    let candidate = candidate
        .as_deref()
        .map(|c| CandidateId::new(c).map_err(|e| CliError::usage(e.to_string())))
        .transpose()?;
    let request = MergeRequest { run, candidate, target: args.target, force: args.force };
    let merged = match baton_engine::merge(&repo, &mut store, &request) {
        Ok(merged) => merged,
        // Merging what is merged already is done: say so, with the commit.
        Err(e @ EngineError::AlreadyMerged { .. }) => {
            println!("{e}");
            return Ok(ExitCode::Success);
        }
        Err(e) => return Err(e.into()),
    };
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
    if let Ok(Some(run)) = store.run(&merged.run)
        && let Ok(report) = baton_engine::clean(&repo, &store, Some(run.id.as_str()), false, false)
    {
        super::clean::tell_kept(&report.kept);
    }
    Ok(ExitCode::Success)
}
