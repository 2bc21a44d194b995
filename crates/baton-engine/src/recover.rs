use std::path::Path;

use baton_core::RunId;
use baton_git::Repo;
use baton_store::{RunRow, Store};
use baton_workspace::Workspace;

use crate::error::Refusal;
use crate::{EngineError, candidate_ref};

/// Finds a run by id or unique prefix; the latest run when `prefix` is `None`.
pub fn find_run(store: &Store, prefix: Option<&str>) -> Result<RunRow, EngineError> {
    let id = match prefix {
        None => return store.latest_run()?.ok_or(EngineError::NoRuns),
        Some(p) => {
            let matches = store.find_run(p)?;
            match matches.len() {
                0 => return Err(EngineError::UnknownRun(p.to_owned())),
                1 => matches.into_iter().next().expect("one match"),
                _ => {
                    return Err(EngineError::AmbiguousRun {
                        prefix: p.to_owned(),
                        matches: matches.iter().map(ToString::to_string).collect(),
                    });
                }
            }
        }
    };
    store.run(&id)?.ok_or_else(|| EngineError::UnknownRun(id.to_string()))
}

/// What recovery did for one run whose baton process died.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub run: RunId,
    pub killed_groups: usize,
    pub collected: Vec<String>,
}

/// Finds runs still marked running whose baton process is gone (it crashed or was killed),
/// ends the process groups they left, saves uncollected work from their workspaces onto refs,
/// and marks them failed. Safe to call at the start of every command.
pub fn recover_abandoned(repo: &Repo, store: &Store) -> Result<Vec<Recovered>, EngineError> {
    let mut out = Vec::new();
    for run in store.running_runs()? {
        let alive = match (run.owner_pid, run.owner_start) {
            (Some(pid), Some(start)) => baton_exec::identity_of(pid).is_some_and(|i| i.start_ticks == start),
            (Some(pid), None) => baton_exec::identity_of(pid).is_some(),
            // A run that never recorded its owner is being set up right now, or died within
            // milliseconds of starting: leave it.
            (None, _) => true,
        };
        if alive {
            continue;
        }
        let mut killed = 0;
        for p in store.unfinished_processes(&run.id)? {
            if baton_exec::kill_recorded_group(baton_exec::ProcessIdentity {
                pid: p.pid,
                start_ticks: p.start_ticks,
            }) {
                killed += 1;
            }
        }
        let mut collected = Vec::new();
        let base = repo.git().try_resolve(&run.base_commit)?;
        for cand in store.candidates(&run.id)? {
            let (Some(ws_tree), None, Some(base)) = (&cand.workspace, &cand.commit, &base) else { continue };
            let Some(root) = Path::new(ws_tree).parent() else { continue };
            let Some(ws) = Workspace::reopen(repo, root) else { continue };
            let message =
                format!("baton: candidate {} of run {} (recovered after baton stopped)\n", cand.id, run.id);
            if let Ok(commit) = ws.snapshot(base, &message)
                && ws.publish(repo, &commit, &candidate_ref(&run.id, &cand.id)).is_ok()
            {
                collected.push(cand.id.to_string());
            }
        }
        store.mark_abandoned(&run.id)?;
        out.push(Recovered { run: run.id, killed_groups: killed, collected });
    }
    Ok(out)
}

/// What `clean` removed.
#[derive(Debug, Clone, Default)]
pub struct CleanReport {
    pub workspaces_removed: usize,
    /// Base-commit snapshots (under overlay workspaces) no longer in use.
    pub snapshots_removed: usize,
    /// Agent CLI home directories (their caches and session state) of finished runs.
    pub agent_homes_removed: usize,
    pub runs: Vec<RunId>,
    pub refs_deleted: usize,
}

/// Removes the workspaces of finished runs (one run, or all). Candidate refs stay unless
/// `delete_refs` says otherwise; a running run is never touched.
pub fn clean(
    repo: &Repo,
    store: &Store,
    run: Option<&str>,
    delete_refs: bool,
) -> Result<CleanReport, EngineError> {
    let runs = match run {
        Some(p) => vec![find_run(store, Some(p))?],
        None => store.runs(usize::MAX >> 1)?,
    };
    let mut report = CleanReport::default();
    for r in runs {
        if r.status == baton_core::RunStatus::Running {
            if run.is_some() {
                return Err(Refusal::StillRunning { run: r.id.to_string() }.into());
            }
            continue;
        }
        // The agent CLIs' own homes (session state, caches) are of no use once a run is over.
        for entry in std::fs::read_dir(store.artifacts_dir(&r.id)).into_iter().flatten().flatten() {
            let home = entry.path().join("home");
            if home.is_dir() && std::fs::remove_dir_all(&home).is_ok() {
                report.agent_homes_removed += 1;
            }
        }
        let dir = Path::new(&r.workspace_root);
        if dir.is_dir() {
            report.workspaces_removed += std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
            crate::run::remove_run_workspaces(repo, dir);
        }
        if delete_refs {
            let git = repo.git();
            for (name, _) in git.refs(&format!("refs/baton/runs/{}/", r.id))? {
                git.delete_ref(&name)?;
                report.refs_deleted += 1;
            }
        }
        report.runs.push(r.id);
    }
    // Snapshots of base commits that no remaining workspace sits on.
    if let Some(r) = store.runs(1)?.first()
        && let Some(repo_dir) = Path::new(&r.workspace_root).parent()
    {
        report.snapshots_removed += baton_workspace::remove_unused_snapshots(&repo_dir.join("snapshots"));
    }
    Ok(report)
}
