use baton_core::{CandidateId, RunId};
use baton_git::{MergeOutcome, Oid, Repo};
use baton_store::Store;

use crate::events::{Clock, SystemClock};
use crate::recover::find_run;
use crate::{EngineError, Refusal, candidate_ref};

/// What to merge where.
#[derive(Debug, Clone, Default)]
pub struct MergeRequest {
    /// A run id or unique prefix; the latest run when `None`.
    pub run: Option<String>,
    /// The run's winner when `None`.
    pub candidate: Option<CandidateId>,
    /// The branch the run recorded when `None`.
    pub target: Option<String>,
    /// Merge a candidate baton never verified (its run ended before verification).
    pub force: bool,
}

/// What a merge did.
#[derive(Debug, Clone)]
pub struct Merged {
    pub run: RunId,
    pub candidate: CandidateId,
    pub target: String,
    pub previous: Oid,
    pub commit: Oid,
    /// The target was checked out, so the working tree was updated too.
    pub updated_worktree: bool,
}

/// Squash-commits a candidate onto the target branch. The branch moves only from the commit
/// the run recorded for it (a compare-and-swap); a moved target, a dirty working tree or a
/// conflict is refused and nothing changes.
pub fn merge(repo: &Repo, store: &mut Store, req: &MergeRequest) -> Result<Merged, EngineError> {
    let run = find_run(store, req.run.as_deref())?;
    let candidates = store.candidates(&run.id)?;
    let git = repo.git();
    // A second merge of a run would find its target moved (by the first): say what happened.
    if let Some(merged) = &run.merged_commit {
        return Err(already_merged(&git, &run.id, merged, req.candidate.as_ref()));
    }
    let candidate = match &req.candidate {
        Some(c) => c.clone(),
        None => run.winner.clone().ok_or_else(|| Refusal::NoWinner { run: run.id.to_string() })?,
    };
    let Some(row) = candidates.iter().find(|c| c.id == candidate) else {
        return Err(EngineError::UnknownCandidate {
            run: run.id.to_string(),
            candidate: candidate.to_string(),
            known: candidates.iter().map(|c| c.id.to_string()).collect(),
        });
    };
    // A candidate with no score was never verified (its run was cancelled or failed first):
    // nothing but the user's own reading stands behind it.
    let verified = run.scoreboard.as_ref().is_some_and(|b| b.candidates.iter().any(|c| c.id == candidate));
    if !verified && !req.force {
        let why = match run.status {
            baton_core::RunStatus::Cancelled => "the run was cancelled before it was verified",
            baton_core::RunStatus::Failed => "the run failed before it was verified",
            baton_core::RunStatus::Running => "the run is still going",
            baton_core::RunStatus::Finished => "the run did not verify it",
        };
        return Err(Refusal::NeverVerified {
            run: run.id.to_string(),
            candidate: candidate.to_string(),
            why,
        }
        .into());
    }
    let cand_commit = git
        .try_resolve(&candidate_ref(&run.id, &candidate))?
        .ok_or_else(|| Refusal::NoWork { run: run.id.to_string(), candidate: candidate.to_string() })?;
    let base = git.resolve(&run.base_commit)?;

    let target = match (&req.target, &run.target_branch) {
        (Some(t), _) => t.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => return Err(Refusal::NoTarget { run: run.id.to_string() }.into()),
    };
    let target_ref = format!("refs/heads/{target}");
    let Some(current) = git.try_resolve(&target_ref)? else {
        return Err(Refusal::NoBranch { target }.into());
    };
    let expected = if Some(&target) == run.target_branch.as_ref() {
        run.target_commit.clone().unwrap_or_else(|| base.to_string())
    } else {
        base.to_string()
    };
    // A user who committed exactly the tree the run started from (its snapshot of their
    // uncommitted work) has not moved the branch away from what was verified.
    let committed_the_base = current.as_str() != expected && git.tree_of(&current)? == git.tree_of(&base)?;
    if current.as_str() != expected && !committed_the_base {
        return Err(Refusal::TargetMoved {
            target,
            run: run.id.to_string(),
            expected: expected[..expected.len().min(10)].to_owned(),
            current: current.short().to_owned(),
        }
        .into());
    }
    let checked_out = git.current_branch()?.as_deref() == Some(target.as_str());
    // With uncommitted work in the checked-out branch's working tree, a merge can go ahead only
    // when that work is exactly what the run started from (`--include-dirty`): the change lands
    // on the branch and the work stays uncommitted beside it.
    let beside_uncommitted = checked_out
        && uncommitted_is_the_base(&git, store, &run.id, &base, &current, &target, committed_the_base)?;
    let tree = match git.merge_trees(&base, &current, &cand_commit)? {
        MergeOutcome::Clean { tree } => tree,
        MergeOutcome::Conflicts { paths } if beside_uncommitted => {
            return Err(Refusal::TouchesUncommitted { candidate: candidate.to_string(), paths }.into());
        }
        MergeOutcome::Conflicts { paths } => {
            return Err(Refusal::Conflicts { candidate: candidate.to_string(), target, paths }.into());
        }
    };
    let message = commit_message(&run, &candidates, row, &candidate);
    let identity = git.user_identity();
    let commit = git.commit_tree(
        &tree,
        &[&current],
        &message,
        identity.as_ref().map(|(n, e)| (n.as_str(), e.as_str())),
    )?;
    if beside_uncommitted {
        git.advance_keeping_uncommitted(&target_ref, &current, &commit, &base, &cand_commit)?;
    } else if checked_out {
        // Moves the branch, index and files together, and refuses if it would overwrite
        // anything; the parent check makes it a compare-and-swap on the branch.
        git.merge_ff_only(&commit)?;
    } else {
        git.update_ref(&target_ref, &commit, Some(&current))?;
    }
    // The merge is part of the run's story: it joins the run's events.
    let event = baton_core::RunEvent::Merged {
        candidate: candidate.clone(),
        target: target.clone(),
        previous: current.to_string(),
        commit: commit.to_string(),
    };
    store.record(&run.id, &baton_core::Stamped { at: crate::events::stamp(SystemClock.now()), event })?;
    Ok(Merged { run: run.id, candidate, target, previous: current, commit, updated_worktree: checked_out })
}

/// The task's text without its first line where that line is the title, which is already
/// the commit's subject.
fn body_after_title(task: &baton_core::Task) -> String {
    let body = task.body.trim();
    let mut lines = body.lines();
    match lines.next() {
        Some(first) if first.trim().trim_start_matches('#').trim() == task.title => {
            lines.collect::<Vec<_>>().join("\n").trim().to_owned()
        }
        _ => body.to_owned(),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Why a run merged before is not merged again: it was, with this commit (or with another
/// candidate than the one asked for).
fn already_merged(
    git: &baton_git::Git,
    run: &baton_core::RunId,
    merged: &str,
    wanted: Option<&CandidateId>,
) -> EngineError {
    let message = git.run(&["log", "-1", "--format=%B", merged]).unwrap_or_default();
    let merged_candidate =
        message.lines().find_map(|l| l.strip_prefix("Baton-Candidate:")).map(|c| c.trim().to_owned());
    let short = merged[..merged.len().min(10)].to_owned();
    match (wanted, &merged_candidate) {
        (Some(wanted), Some(done)) if wanted.as_str() != done => Refusal::MergedOther {
            run: run.to_string(),
            merged: done.clone(),
            commit: short,
            wanted: wanted.to_string(),
        }
        .into(),
        _ => EngineError::AlreadyMerged {
            run: run.to_string(),
            candidate: merged_candidate,
            commit: merged.to_owned(),
        },
    }
}

/// The merge commit's message: the task, why this candidate (baton's pick, or the user's), and
/// trailers that name the run and the candidate.
fn commit_message(
    run: &baton_store::RunRow,
    candidates: &[baton_store::CandidateRow],
    row: &baton_store::CandidateRow,
    candidate: &CandidateId,
) -> String {
    let decision = run.scoreboard.as_ref().map(|b| &b.decision);
    let of = format!(
        "{} {} in run {}: {candidate} (agent {}, strategy {})",
        candidates.len(),
        baton_core::plural(candidates.len(), "candidate", "candidates"),
        run.id,
        row.agent,
        row.strategy,
    );
    let why = match decision {
        Some(baton_core::Decision::Winner { candidate: w, reason }) if w == candidate => {
            format!("Chosen by baton from {of}.\n{}.", capitalize(reason))
        }
        Some(baton_core::Decision::Winner { candidate: w, .. }) => {
            format!("Chosen by hand from {of}; baton's pick was {w}.")
        }
        Some(baton_core::Decision::NoWinner { .. }) => {
            format!("Chosen by hand from {of}; baton named no winner.")
        }
        None => format!("Chosen by hand from {of}, merged with --force: baton never verified it."),
    };
    let body = body_after_title(&run.task);
    format!(
        "{}\n\n{}{why}\n\nBaton-Run: {}\nBaton-Candidate: {}\n",
        run.task.title,
        if body.is_empty() { String::new() } else { format!("{body}\n\n") },
        run.id,
        candidate
    )
}

/// Whether the checked-out branch's uncommitted work is exactly what the run started from
/// (`--include-dirty`): then the change lands on the branch and the work stays uncommitted
/// beside it. Other uncommitted work refuses the merge.
fn uncommitted_is_the_base(
    git: &baton_git::Git,
    store: &Store,
    run: &baton_core::RunId,
    base: &Oid,
    current: &Oid,
    target: &str,
    committed_the_base: bool,
) -> Result<bool, EngineError> {
    let dirty: Vec<String> =
        git.dirty_paths()?.into_iter().filter(|p| p != baton_config::REPO_FILE).collect();
    if !dirty.is_empty() {
        let scratch = store.artifacts_dir(run);
        std::fs::create_dir_all(&scratch).map_err(EngineError::io(&scratch))?;
        let worktree = git.snapshot_worktree(current, "baton: the working tree at merge", &scratch)?;
        if base != current && git.tree_of(&worktree)? == git.tree_of(base)? {
            return Ok(true);
        }
        return Err(Refusal::Uncommitted {
            paths: dirty,
            target: target.to_owned(),
            differ_from_snapshot: base != current && !committed_the_base,
        }
        .into());
    }
    Ok(false)
}
