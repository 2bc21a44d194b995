//! From what a run collected and verified to the evidence the decision reads: each candidate's
//! change read three ways (lines, tokens, a parser's canonical form), its tamper flags, its
//! stages compared with the base's, its probes; and the probes of the run.

use std::collections::HashMap;

use baton_agents::Agent;
use baton_core::{AgentOutcome, CandidateId, Subject};
use baton_git::{FileChange, Git, Oid, Repo};
use baton_rank::{CandidateEvidence, ProbeContext};
use baton_verify::{Probe, ProbeKind, ProbeRunner, Protected};

use crate::EngineError;
use crate::verify::{Targets, Verification, is_top_level_script};

/// One candidate as the evidence sees it.
pub(crate) struct Candidate<'a> {
    pub(crate) id: &'a CandidateId,
    pub(crate) agent: &'a dyn Agent,
    pub(crate) strategy: &'a str,
    pub(crate) outcome: Option<&'a AgentOutcome>,
    pub(crate) commit: Option<&'a Oid>,
    pub(crate) changes: &'a [FileChange],
}

/// Every candidate's evidence, in planning order.
pub(crate) fn assemble(
    candidates: &[Candidate<'_>],
    repo: &Repo,
    base: &Oid,
    protected: &Protected,
    targets: &Targets,
    results: &HashMap<Subject, Verification>,
) -> Result<Vec<CandidateEvidence>, EngineError> {
    let git = repo.git();
    let (base_results, _) = results.get(&Subject::Base).cloned().unwrap_or_default();
    let base_tree = git.tree_of(base)?;
    // The base's files as a parser reads them, shared by every candidate that changed them.
    let mut base_sources: HashMap<String, Option<String>> = HashMap::new();
    let mut evidence = Vec::with_capacity(candidates.len());
    for (i, c) in candidates.iter().enumerate() {
        let primary = targets.shared.get(&i).copied().unwrap_or(i);
        let own = results.get(&Subject::Candidate(candidates[primary].id.clone()));
        let change = match targets.evidence_trees.get(&i) {
            Some((tree, protected_changed)) => {
                let mut read = read_change(&git, &base_tree, tree, &mut base_sources)?;
                read.protected_edits = protected_changed.clone();
                read
            }
            None => ChangeReading {
                protected_edits: c
                    .changes
                    .iter()
                    .filter(|f| protected.is_protected(&f.path))
                    .map(|f| f.path.clone())
                    .collect(),
                ..ChangeReading::default()
            },
        };
        let (tamper, expectation_edits) = match c.commit {
            Some(commit) => {
                let diff = git.diff_patch_whole_files(base, commit)?;
                let diff = String::from_utf8_lossy(&diff);
                (
                    baton_verify::tamper_flags(&diff, protected).into_iter().map(|f| f.to_string()).collect(),
                    baton_verify::expectation_edits(&diff, protected),
                )
            }
            None => (Vec::new(), Vec::new()),
        };
        evidence.push(CandidateEvidence {
            id: c.id.clone(),
            agent: c.agent.name().to_owned(),
            strategy: c.strategy.to_owned(),
            outcome: c.outcome.cloned(),
            collected: c.commit.is_some(),
            files_changed: c.changes.len(),
            lines_changed: c.changes.iter().map(|f| f.added.unwrap_or(1) + f.deleted.unwrap_or(0)).sum(),
            tokens_changed: change.tokens,
            complexity: change.complexity,
            protected_edits: change.protected_edits,
            scripts_added: c.changes.iter().filter(|f| is_top_level_script(f, protected)).count(),
            layout_only: change.layout_only,
            tamper,
            expectation_edits,
            verified: own.is_some(),
            verified_as: own.is_some().then(|| candidates[primary].id.clone()),
            stages: own.map(|(r, _)| baton_verify::compare(&base_results, r)).unwrap_or_default(),
            probes: own.map(|(_, p)| p.clone()).unwrap_or_default(),
            normalized_patch: change.normalized,
            parsed_patch: change.parsed,
        });
    }
    Ok(evidence)
}

/// A change as the ranking reads it.
#[derive(Default)]
struct ChangeReading {
    normalized: String,
    parsed: Option<String>,
    layout_only: bool,
    tokens: usize,
    complexity: (usize, usize),
    protected_edits: Vec<String>,
}

fn read_change(
    git: &Git,
    base_tree: &Oid,
    tree: &Oid,
    base_sources: &mut HashMap<String, Option<String>>,
) -> Result<ChangeReading, EngineError> {
    let diff = git.diff_patch(base_tree, tree)?;
    let diff = String::from_utf8_lossy(&diff);
    let canonical = canonical_sources(git, base_tree, tree, base_sources)?;
    Ok(ChangeReading {
        normalized: baton_rank::normalize_patch(&diff),
        parsed: (!canonical.is_empty()).then(|| baton_rank::normalize_patch_with(&diff, &canonical)),
        layout_only: baton_rank::is_layout_only(&diff, &canonical),
        tokens: baton_rank::edit_tokens(&diff),
        complexity: baton_rank::edit_complexity(&diff),
        protected_edits: Vec::new(),
    })
}

/// A language-aware reading of each changed file baton has a grammar for, as
/// [`baton_rank::normalize_patch_with`] takes it: the file's canonical text after the change, or
/// `None` when the change altered no token. Deleted files and files that do not parse on either
/// side are left to the line-based comparison. `base_sources` keeps the base's files as read, for
/// the next candidate.
fn canonical_sources(
    git: &Git,
    base_tree: &Oid,
    tree: &Oid,
    base_sources: &mut HashMap<String, Option<String>>,
) -> Result<HashMap<String, Option<String>>, EngineError> {
    let mut out = HashMap::new();
    for change in git.diff_files(base_tree, tree)? {
        if !baton_rank::understands(&change.path) {
            continue;
        }
        let read = |rev: &Oid| -> Result<Option<String>, EngineError> {
            Ok(git.file_at(rev, &change.path)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        let Some(after) = read(tree)?.and_then(|t| baton_rank::canonical_source(&change.path, &t)) else {
            continue;
        };
        let before = match base_sources.get(&change.path) {
            Some(before) => before.clone(),
            None => {
                let before = read(base_tree)?.and_then(|t| baton_rank::canonical_source(&change.path, &t));
                base_sources.insert(change.path.clone(), before.clone());
                before
            }
        };
        out.insert(change.path.clone(), (before.as_ref() != Some(&after)).then_some(after));
    }
    Ok(out)
}

/// The run's probes with the scripts candidates added at the top of the repository: an agent's
/// reproduction of the problem, run on every subject beside the task's examples.
pub(crate) fn with_candidate_scripts(
    probes: &ProbeRunner,
    candidates: &[Candidate<'_>],
    repo: &Repo,
    protected: &Protected,
    limit: usize,
) -> Result<ProbeRunner, EngineError> {
    let mut probes = probes.clone();
    if limit == 0 {
        return Ok(probes);
    }
    let git = repo.git();
    let mut added = Vec::new();
    for c in candidates {
        let (Some(commit), Some(AgentOutcome::Completed)) = (c.commit, c.outcome) else { continue };
        let mut files = Vec::new();
        for f in c.changes.iter().filter(|f| is_top_level_script(f, protected)) {
            if let Some(bytes) = git.file_at(commit, &f.path)?
                && let Ok(source) = String::from_utf8(bytes)
            {
                files.push((f.path.clone(), source));
            }
        }
        if !files.is_empty() {
            added.push((c.id.to_string(), files));
        }
    }
    probes.probes.extend(baton_verify::candidate_scripts(&added, limit));
    Ok(probes)
}

/// The probes as the ranking reads them: what the task shows, who wrote each, what the base did.
pub(crate) fn probe_context(
    probes: &ProbeRunner,
    results: &HashMap<Subject, Verification>,
    task: &str,
) -> ProbeContext {
    ProbeContext {
        names: probes.probes.iter().map(|p| p.name.clone()).collect(),
        shown: probes.probes.iter().map(|p| p.shown.clone()).collect(),
        authors: probes.probes.iter().map(script_authors).collect(),
        base: results.get(&Subject::Base).map(|(_, p)| p.clone()).unwrap_or_default(),
        values: baton_verify::task_values(task),
    }
}

/// The candidates that wrote a probe (none for the task's examples and configured probes).
fn script_authors(probe: &Probe) -> Vec<CandidateId> {
    match &probe.kind {
        ProbeKind::CandidateScript { authors, .. } => {
            authors.iter().filter_map(|a| CandidateId::new(a.clone()).ok()).collect()
        }
        ProbeKind::Command { .. } | ProbeKind::Script { .. } | ProbeKind::Session { .. } => Vec::new(),
    }
}
