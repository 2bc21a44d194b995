//! The cross-candidate test matrix: the tests candidates wrote, run on the base and on every
//! distinct candidate. A test one candidate wrote that fails on the base and passes on another
//! is evidence for the other from an independent author.

use std::collections::HashMap;
use std::sync::Arc;

use baton_core::{AgentOutcome, CandidateId, Phase, RunEvent, Subject};
use baton_git::{FileChange, Oid, Repo};
use baton_verify::{Protected, Split, StageRunner, SubjectContext, looks_like_test};
use baton_workspace::Workspace;
use tokio::sync::Semaphore;

use crate::EngineError;
use crate::context::Bench;
use crate::util::futures_join_all;
use crate::verify::{VerifyTarget, checkout};

/// Test files one or more candidates wrote: (path, blob) pairs, a commit holding them, and the
/// candidates that wrote exactly these.
type WrittenTests = (Vec<(String, String)>, Oid, Vec<CandidateId>);

/// One candidate as the matrix sees it.
pub(crate) struct Author<'a> {
    pub(crate) id: &'a CandidateId,
    pub(crate) outcome: Option<&'a AgentOutcome>,
    pub(crate) commit: Option<&'a Oid>,
    pub(crate) changes: &'a [FileChange],
    pub(crate) workspace: Option<&'a Workspace>,
}

/// Everything the matrix needs of the run.
pub(crate) struct Matrix<'a> {
    pub(crate) slots: &'a [Author<'a>],
    pub(crate) repo: &'a Repo,
    pub(crate) protected: &'a Protected,
    pub(crate) runner: &'a StageRunner,
    pub(crate) limit: usize,
    pub(crate) jobs: usize,
    pub(crate) bench: &'a Bench,
}

impl Matrix<'_> {
    /// The cross-candidate test matrix: the test files each candidate wrote (set aside during
    /// verification, being protected) are laid over the base's and every distinct candidate's
    /// verification tree and run there, one distinct set of files at a time.
    pub(crate) async fn run(
        &self,
        targets: &[VerifyTarget],
        base: Option<(Workspace, Oid)>,
        known: &std::collections::HashSet<String>,
    ) -> Result<Vec<baton_core::MatrixRow>, EngineError> {
        let (slots, runner) = (self.slots, self.runner);
        let git = self.repo.git();
        let mut sets = self.written_sets()?;
        sets.truncate(self.limit);
        if sets.is_empty() {
            return Ok(Vec::new());
        }
        self.bench
            .emitter
            .emit(RunEvent::PhaseStarted { phase: Phase::Verify, total: sets.len() * (targets.len() + 1) });

        // Per subject (in parallel across subjects), each set in turn in its workspace.
        let mut subjects: Vec<(Subject, Workspace, Oid)> = Vec::new();
        if let Some((ws, commit)) = base {
            subjects.push((Subject::Base, ws, commit));
        }
        for t in targets {
            if let Some(ws) = slots[t.primary].workspace {
                subjects.push((
                    Subject::Candidate(slots[t.primary].id.clone()),
                    ws.clone(),
                    t.commit.clone(),
                ));
            }
        }
        let limit = Arc::new(Semaphore::new(self.jobs.max(1)));
        let sets_ref = &sets;
        let futures = subjects.into_iter().map(|(subject, ws, own_commit)| {
            let (limit, emitter, cancel, git) =
                (limit.clone(), self.bench.emitter.clone(), self.bench.cancel.clone(), git.clone());
            let artifacts = self.bench.artifacts.clone();
            let confine = self.bench.containment.subject(&ws);
            async move {
                let _permit = limit.acquire_owned().await;
                let mut cells: Vec<Vec<baton_core::TestCase>> = Vec::new();
                for (k, (files, author, _)) in sets_ref.iter().enumerate() {
                    if cancel.is_cancelled() {
                        cells.push(Vec::new());
                        continue;
                    }
                    let paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
                    let prepared = git
                        .tree_with_paths_from(&own_commit, author, &paths, &artifacts)
                        .and_then(|tree| git.commit_tree(&tree, &[&own_commit], "baton: test matrix", None));
                    let checked_out = match prepared {
                        Ok(commit) => checkout(&ws, &commit).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = checked_out {
                        emitter.emit(RunEvent::Warning {
                            message: format!("test matrix: cannot prepare {subject}: {e}"),
                        });
                        cells.push(Vec::new());
                        continue;
                    }
                    let ctx = SubjectContext {
                        subject: subject.clone(),
                        workspace: ws.tree.clone(),
                        artifacts: artifacts.join("matrix").join((k + 1).to_string()),
                        changed_files: paths.clone(),
                        related_tests: paths,
                        base: None,
                        publish: None,
                        split: Split::None,
                        confine: confine.clone(),
                    };
                    let results = runner.run_tests(&ctx, cancel.clone(), &emitter.sink()).await;
                    let flaky: Vec<&String> = results.iter().flat_map(|r| r.flaky.iter()).collect();
                    cells.push(
                        results
                            .iter()
                            .flat_map(|r| r.tests.iter())
                            .filter(|t| !flaky.contains(&&t.name) && !known.contains(&t.name))
                            .cloned()
                            .collect(),
                    );
                    emitter.emit(RunEvent::Verified { subject: subject.clone() });
                }
                // Leave the workspace as the candidate's verification left it.
                let _ = checkout(&ws, &own_commit).await;
                (subject, cells)
            }
        });
        let by_subject = futures_join_all(futures.collect()).await;

        Ok(rows(&sets, &by_subject))
    }

    /// The distinct sets of test files candidates wrote: (path, blob) pairs, each with the
    /// commit that has them and their authors.
    fn written_sets(&self) -> Result<Vec<WrittenTests>, EngineError> {
        let (slots, protected) = (self.slots, self.protected);
        let git = self.repo.git();
        let mut sets: Vec<WrittenTests> = Vec::new();
        for slot in slots {
            let (Some(commit), Some(AgentOutcome::Completed)) = (slot.commit, slot.outcome) else {
                continue;
            };
            let mut files = Vec::new();
            for c in slot.changes {
                if c.kind == baton_git::ChangeKind::Deleted
                    || !protected.is_protected(&c.path)
                    || !looks_like_test(&c.path)
                {
                    continue;
                }
                let Some(blob) = git.blob_id(commit, &c.path)? else { continue };
                files.push((c.path.clone(), blob.to_string()));
            }
            if files.is_empty() {
                continue;
            }
            match sets.iter_mut().find(|(f, _, _)| *f == files) {
                Some((_, _, authors)) => authors.push(slot.id.clone()),
                None => sets.push((files, commit.clone(), vec![slot.id.clone()])),
            }
        }
        Ok(sets)
    }
}

/// The matrix's rows: each set of written tests, and what it did on every subject against the
/// base. Files that hold no test beyond the base's say nothing about anyone.
fn rows(
    sets: &[WrittenTests],
    by_subject: &[(Subject, Vec<Vec<baton_core::TestCase>>)],
) -> Vec<baton_core::MatrixRow> {
    let base_cells =
        by_subject.iter().find(|(s, _)| *s == Subject::Base).map(|(_, c)| c.clone()).unwrap_or_default();
    sets.iter()
        .enumerate()
        .map(|(k, (files, _, authors))| {
            let base_status: HashMap<&str, bool> = base_cells
                .get(k)
                .map(|tests| tests.iter().map(|t| (t.name.as_str(), t.status.is_ok())).collect())
                .unwrap_or_default();
            let cells = by_subject
                .iter()
                .map(|(subject, cells)| {
                    let tests = cells.get(k).map(Vec::as_slice).unwrap_or(&[]);
                    let passing = tests.iter().filter(|t| t.status.is_ok()).count();
                    let fixed = tests
                        .iter()
                        .filter(|t| t.status.is_ok() && base_status.get(t.name.as_str()) == Some(&false))
                        .count();
                    let broken = tests
                        .iter()
                        .filter(|t| !t.status.is_ok() && base_status.get(t.name.as_str()) == Some(&true))
                        .count();
                    baton_core::MatrixCell {
                        subject: subject.clone(),
                        passing,
                        failing: tests.len() - passing,
                        fixed,
                        broken,
                    }
                })
                .collect();
            baton_core::MatrixRow {
                authors: authors.clone(),
                files: files.iter().map(|(p, _)| p.clone()).collect(),
                cells,
            }
        })
        // Files that hold no test beyond the base's (a test edited or deleted, not added)
        // say nothing about anyone.
        .filter(|row: &baton_core::MatrixRow| row.cells.iter().any(|c| c.passing + c.failing > 0))
        .collect()
}
