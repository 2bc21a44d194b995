//! Verification units: which trees to verify (each candidate's with protected paths put back
//! from the base and the hidden tests laid over, once per distinct tree), which related tests
//! each runs, and the unit that runs the stages and probes on one subject.

use std::collections::{BTreeSet, HashMap};

use baton_core::{AgentOutcome, CandidateId, ProbeOutcome, RunEvent, StageResult, Subject};
use baton_git::{FileChange, Oid};
use baton_verify::{
    BaseResults, BaseResultsSender, ProbeRunner, Protected, Split, StageRunner, SubjectContext,
};
use baton_workspace::Workspace;

use crate::EngineError;
use crate::context::{Bench, Shared};
use crate::hidden::LaidOver;

/// A subject's stage results and probe outcomes.
pub(crate) type Verification = (Vec<StageResult>, Vec<ProbeOutcome>);

/// What verification needs of a candidate: its work as collected.
pub(crate) struct Collected<'a> {
    pub(crate) id: &'a CandidateId,
    pub(crate) outcome: Option<&'a AgentOutcome>,
    pub(crate) commit: Option<&'a Oid>,
    pub(crate) changes: &'a [FileChange],
}

/// A distinct tree to verify and the candidates that share it.
pub(crate) struct VerifyTarget {
    /// The first candidate with this tree: its workspace is where it is verified.
    pub(crate) primary: usize,
    pub(crate) primary_id: CandidateId,
    pub(crate) commit: Oid,
    pub(crate) tree: Oid,
    /// The workspace already holds exactly this tree (nothing protected was restored).
    pub(crate) in_place: bool,
    pub(crate) changed: Vec<String>,
    pub(crate) related: Vec<String>,
    pub(crate) split: Split,
}

/// The distinct trees of a run and which candidate shares which.
#[derive(Default)]
pub(crate) struct Targets {
    pub(crate) targets: Vec<VerifyTarget>,
    /// candidate -> the candidate whose tree it shares.
    pub(crate) shared: HashMap<usize, usize>,
    /// candidate -> its tree with protected paths put back (what its evidence is read from),
    /// and the protected paths it changed.
    pub(crate) evidence_trees: HashMap<usize, (Oid, Vec<String>)>,
}

/// A Python script a candidate added at the repository's top, outside protected paths: an
/// agent's reproduction of the problem (`reproduce_bug.py`), not a change to the project.
pub(crate) fn is_top_level_script(change: &FileChange, protected: &Protected) -> bool {
    change.kind == baton_git::ChangeKind::Added
        && baton_verify::is_script_path(&change.path)
        && !protected.is_protected(&change.path)
}

/// Whether a candidate changed more of the project than scripts at the top (the same test as
/// the ranking's gate: more files changed outside protected paths than scripts added). A
/// candidate that did not is not verified where another did: its scripts run on the others.
pub(crate) fn changes_project(changes: &[FileChange], protected: &Protected) -> bool {
    let scripts = changes.iter().filter(|c| is_top_level_script(c, protected)).count();
    changes.iter().filter(|c| !protected.is_protected(&c.path)).count() > scripts
}

impl Targets {
    /// Adds candidate `i`'s tree. `None` when it is not verified (its agent did not finish, its
    /// work was not collected, it changed only protected files); `Some(true)` when it is a new
    /// distinct tree, `Some(false)` when it shares one verified already (and says so).
    pub(crate) fn add(
        &mut self,
        i: usize,
        c: &Collected<'_>,
        shared: &Shared,
        hidden: Option<&LaidOver>,
    ) -> Result<Option<bool>, EngineError> {
        let (repo, base, protected) = (&shared.plan.repo, &shared.base, &shared.plan.protected);
        let (scratch, emitter) = (&shared.bench.artifacts, &shared.bench.emitter);
        let (Some(commit), Some(AgentOutcome::Completed)) = (c.commit, c.outcome) else {
            return Ok(None);
        };
        let git = repo.git();
        let protected_changed: Vec<String> =
            c.changes.iter().filter(|f| protected.is_protected(&f.path)).map(|f| f.path.clone()).collect();
        if protected_changed.len() == c.changes.len() {
            return Ok(None);
        }
        let tree = git.tree_with_paths_from(commit, base, &protected_changed, scratch)?;
        self.evidence_trees.insert(i, (tree.clone(), protected_changed));
        let tree = match hidden {
            Some(h) => git.tree_with_paths_from(&tree, &h.source, &h.files, scratch)?,
            None => tree,
        };
        if let Some(t) = self.targets.iter().find(|t| t.tree == tree) {
            self.shared.insert(i, t.primary);
            emitter.emit(RunEvent::VerifyShared { candidate: c.id.clone(), same_as: t.primary_id.clone() });
            return Ok(Some(false));
        }
        let vcommit =
            git.commit_tree(&tree, &[commit], &format!("baton: verification tree of {}", c.id), None)?;
        let in_place = git.tree_of(commit)? == tree;
        self.targets.push(VerifyTarget {
            primary: i,
            primary_id: c.id.clone(),
            commit: vcommit,
            tree,
            in_place,
            changed: Vec::new(),
            related: Vec::new(),
            split: Split::None,
        });
        Ok(Some(true))
    }

    /// Which files each target changed and which related tests each runs, and the base's share:
    /// every subject runs the tests related to the union of all candidates' changes (and the
    /// hidden tests, which relate to every candidate), so that results compare test by test
    /// across all of them, within `verify.related_budget` (see [`Split`]).
    pub(crate) fn plan_related(
        &mut self,
        changes: &[&[FileChange]],
        shared: &Shared,
        base_commit: &Oid,
        hidden: Option<&LaidOver>,
        has_base: bool,
    ) -> Result<BasePlan, EngineError> {
        let plan = &shared.plan;
        let (runner, related, protected) = (&plan.runner, &plan.related, &plan.protected);
        let git = plan.repo.git();
        let base_paths = git.tree_paths(base_commit)?;
        let base_set: BTreeSet<&str> = base_paths.iter().map(String::as_str).collect();
        let mut base_changed = BTreeSet::new();
        let mut base_related = BTreeSet::new();
        let mut own_related = Vec::with_capacity(self.targets.len());
        let mut target_paths = Vec::with_capacity(self.targets.len());
        for t in &mut self.targets {
            let changed: Vec<String> = changes[t.primary].iter().map(|c| c.path.clone()).collect();
            let paths = git.tree_paths(&t.tree)?;
            let path_set: BTreeSet<&str> = paths.iter().map(String::as_str).collect();
            t.changed = changed.iter().filter(|p| path_set.contains(p.as_str())).cloned().collect();
            base_changed.extend(changed.iter().filter(|p| base_set.contains(p.as_str())).cloned());
            let own: BTreeSet<String> = if runner.uses_related_tests() {
                related.related(&changed, &base_paths, protected).into_iter().collect()
            } else {
                BTreeSet::new()
            };
            base_related.extend(own.iter().cloned());
            own_related.push(own);
            target_paths.push(paths);
        }
        if let Some(h) = hidden {
            base_related.extend(h.files.iter().cloned());
            for own in &mut own_related {
                own.extend(h.files.iter().cloned());
            }
        }
        let union: Vec<String> = base_related.iter().cloned().collect();
        let parts = if has_base { baton_verify::related_parts(&union, &own_related) } else { Vec::new() };
        for ((t, paths), own) in self.targets.iter_mut().zip(&target_paths).zip(&own_related) {
            if parts.is_empty() {
                t.related = baton_verify::present_in(&union, paths);
                continue;
            }
            let present = |groups: Vec<(usize, &Vec<String>)>| -> Vec<(usize, Vec<String>)> {
                groups
                    .into_iter()
                    .map(|(i, files)| (i, baton_verify::present_in(files, paths)))
                    .filter(|(_, files)| !files.is_empty())
                    .collect()
            };
            let (mine, others): (Vec<_>, Vec<_>) =
                parts.iter().enumerate().partition(|(_, files)| files.iter().all(|f| own.contains(f)));
            let mine = present(mine);
            t.related = mine.iter().flat_map(|(_, files)| files.iter().cloned()).collect();
            t.split = Split::Candidate { own: mine, others: present(others) };
        }
        Ok(BasePlan {
            changed: base_changed.into_iter().collect(),
            related: base_related.into_iter().collect(),
            split: if parts.is_empty() { Split::None } else { Split::Base { parts } },
            paths: base_paths,
        })
    }
}

/// What the base runs: the files candidates changed that it has, the union of related tests,
/// how they split; and its paths (for the check of `verify.protected`).
pub(crate) struct BasePlan {
    pub(crate) changed: Vec<String>,
    pub(crate) related: Vec<String>,
    pub(crate) split: Split,
    pub(crate) paths: Vec<String>,
}

/// One subject's verification: where, at which commit, with which placeholders.
pub(crate) struct VerifyJob {
    pub(crate) subject: Subject,
    pub(crate) ws: Workspace,
    /// The commit to check out first; `None` when the workspace already holds it.
    pub(crate) commit: Option<Oid>,
    pub(crate) changed: Vec<String>,
    pub(crate) related: Vec<String>,
    /// How the related tests are split (see `Split`).
    pub(crate) split: Split,
}

/// The stages of one subject. `base` carries the base's verdicts to a candidate (to rerun only
/// failures beyond the base's, to judge split groups by the base's time); `publish` sends the
/// base's. The workspace is checked out at the job's commit first.
pub(crate) async fn run_stages(
    job: &VerifyJob,
    runner: &StageRunner,
    base: Option<BaseResults>,
    publish: Option<BaseResultsSender>,
    bench: &Bench,
) -> Vec<StageResult> {
    if bench.cancel.is_cancelled() {
        return Vec::new();
    }
    if let Some(commit) = &job.commit
        && let Err(e) = checkout(&job.ws, commit).await
    {
        bench.emitter.emit(RunEvent::Warning {
            message: format!("cannot prepare {} for verification: {e}", job.subject),
        });
        return Vec::new();
    }
    let ctx = context(job, base, publish, bench);
    let results = runner.run(&ctx, bench.cancel.clone(), &bench.emitter.sink()).await;
    if let Some(publish) = &ctx.publish {
        publish.send(&results);
    }
    results
}

/// The probes of one subject, in its workspace as its stages left it.
pub(crate) async fn run_probes(job: &VerifyJob, probes: &ProbeRunner, bench: &Bench) -> Vec<ProbeOutcome> {
    if probes.probes.is_empty() || bench.cancel.is_cancelled() {
        return Vec::new();
    }
    let ctx = context(job, None, None, bench);
    let outcomes = probes.run(&ctx, bench.cancel.clone(), &bench.emitter.sink()).await;
    bench.emitter.emit(RunEvent::ProbesRun { subject: job.subject.clone(), probes: outcomes.clone() });
    outcomes
}

fn context(
    job: &VerifyJob,
    base: Option<BaseResults>,
    publish: Option<BaseResultsSender>,
    bench: &Bench,
) -> SubjectContext {
    SubjectContext {
        subject: job.subject.clone(),
        workspace: job.ws.tree.clone(),
        artifacts: bench.artifacts.clone(),
        changed_files: job.changed.clone(),
        related_tests: job.related.clone(),
        base,
        publish,
        split: job.split.clone(),
        confine: bench.containment.subject(&job.ws),
    }
}

/// Checks a workspace out at `commit`, off the async threads.
pub(crate) async fn checkout(ws: &Workspace, commit: &Oid) -> Result<(), baton_git::GitError> {
    let (ws, commit) = (ws.clone(), commit.clone());
    tokio::task::spawn_blocking(move || ws.checkout(&commit))
        .await
        .unwrap_or_else(|e| Err(baton_git::GitError::Spawn(std::io::Error::other(e.to_string()))))
}
