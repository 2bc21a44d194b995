use baton_core::{CandidateId, ExitCode, RunStatus};
use baton_engine::EngineError;
use baton_store::{CandidateRow, RunRow, Store};

use crate::cli::{DiffArgs, Global};
use crate::context;
use crate::error::CliError;

pub(crate) fn run(global: &Global, args: DiffArgs) -> Result<ExitCode, CliError> {
    let repo = context::repo(global)?;
    let store = context::existing_store(&repo)?;
    let (run, id) = match args.ids.as_slice() {
        [] => {
            let run = context::find_run(store.as_ref(), None)?;
            let id = winner(&run)?;
            (run, id)
        }
        [one] => one_id(store.as_ref(), one)?,
        [run, cand] => {
            let run = context::find_run(store.as_ref(), Some(run))?;
            let id = candidate_of(store.as_ref(), &run, cand)?;
            (run, id)
        }
        _ => return Err(CliError::usage("give CANDIDATE, RUN CANDIDATE, or nothing for the latest winner")),
    };
    let reference = baton_engine::candidate_ref(&run.id, &id);
    let git = repo.git();
    let Some(commit) = git.try_resolve(&reference)? else {
        return Err(CliError::new(
            ExitCode::Usage,
            format!("candidate {id} of run {} has no collected work", run.id),
        ));
    };
    if args.ids.len() < 2 && !global.quiet {
        eprintln!("candidate {id} of run {}", run.id);
    }
    if args.stat {
        let base = git.resolve(&run.base_commit)?;
        for f in git.diff_files(&base, &commit)? {
            let counts = match (f.added, f.deleted) {
                (Some(a), Some(d)) => format!("+{a} -{d}"),
                _ => "binary".into(),
            };
            println!("{:>12}  {:?}  {}", counts, f.kind, f.path);
        }
    } else {
        print!("{}", git.run(&["diff", "--no-color", "--no-ext-diff", &run.base_commit, commit.as_str()])?);
    }
    Ok(ExitCode::Success)
}

/// One id: a candidate of the latest run, else a run (its winner).
fn one_id(store: Option<&Store>, id: &str) -> Result<(RunRow, CandidateId), CliError> {
    let latest = context::find_run(store, None)?;
    let candidates = candidates(store, &latest)?;
    if let Ok(cand) = CandidateId::new(id)
        && candidates.iter().any(|c| c.id == cand)
    {
        return Ok((latest, cand));
    }
    match context::find_run(store, Some(id)) {
        Ok(run) => {
            let id = winner(&run)?;
            Ok((run, id))
        }
        Err(EngineError::UnknownRun(_)) => Err(unknown_candidate(&latest, &candidates, id).into()),
        Err(e) => Err(e.into()),
    }
}

fn candidates(store: Option<&Store>, run: &RunRow) -> Result<Vec<CandidateRow>, CliError> {
    Ok(match store {
        Some(s) => s.candidates(&run.id)?,
        None => Vec::new(),
    })
}

fn candidate_of(store: Option<&Store>, run: &RunRow, cand: &str) -> Result<CandidateId, CliError> {
    let candidates = candidates(store, run)?;
    match CandidateId::new(cand) {
        Ok(id) if candidates.iter().any(|c| c.id == id) => Ok(id),
        _ => Err(unknown_candidate(run, &candidates, cand).into()),
    }
}

fn unknown_candidate(run: &RunRow, candidates: &[CandidateRow], cand: &str) -> EngineError {
    EngineError::UnknownCandidate {
        run: run.id.to_string(),
        candidate: cand.to_owned(),
        known: candidates.iter().map(|c| c.id.to_string()).collect(),
    }
}

/// The run's winner, or why there is none.
fn winner(run: &RunRow) -> Result<CandidateId, CliError> {
    if let Some(w) = &run.winner {
        return Ok(w.clone());
    }
    let why = match run.status {
        RunStatus::Running => "it is still running",
        RunStatus::Cancelled => "it was cancelled before it was ranked",
        RunStatus::Failed => "it failed before it was ranked",
        RunStatus::Finished => "no candidate was good enough (see `baton show`)",
    };
    Err(CliError::new(
        ExitCode::NoWinner,
        format!(
            "run {} has no winner: {why}; name a candidate to see its change: baton diff {} CANDIDATE",
            run.id, run.id
        ),
    ))
}
