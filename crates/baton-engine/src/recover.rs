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
    /// Processes found by the marker in their environment: escaped from their group, or
    /// started but not recorded yet.
    pub killed_processes: usize,
    pub collected: Vec<String>,
}

/// How long a process a dead baton left gets between `SIGTERM` and `SIGKILL`.
const RECOVERY_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Finds runs still marked running whose baton process is gone (it crashed or was killed),
/// ends the process groups they left and every other process that dead baton started (found by
/// the marker each carries in its environment: those that escaped their group with `setsid`,
/// those started but not recorded yet), saves uncollected work from their workspaces onto
/// refs, and marks them failed. Safe to call at the start of every command.
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
        // A live baton's processes carry its own marker, never this one.
        let killed_processes = run
            .owner_pid
            .map(|pid| {
                baton_exec::end_marked(&baton_exec::owner_marker(pid, run.owner_start), RECOVERY_GRACE)
            })
            .unwrap_or(0);
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
        out.push(Recovered { run: run.id, killed_groups: killed, killed_processes, collected });
    }
    Ok(out)
}

/// What `clean` removed, and what it kept.
#[derive(Debug, Clone, Default)]
pub struct CleanReport {
    pub workspaces_removed: usize,
    /// Workspaces whose tree holds work that is on no ref, left in place.
    pub kept: Vec<KeptWorkspace>,
    /// Base-commit snapshots (under overlay workspaces) no longer in use.
    pub snapshots_removed: usize,
    /// Agent CLI home directories (their caches and session state) of finished runs.
    pub agent_homes_removed: usize,
    /// What a baton that died left while it worked (an overlay probe, a half-built snapshot).
    pub leftovers_removed: usize,
    pub runs: Vec<RunId>,
    pub refs_deleted: usize,
}

/// A workspace `clean` did not remove: its tree differs from the commit on its candidate's ref
/// (or from the base, when the candidate has none), so removing it would lose that work.
#[derive(Debug, Clone)]
pub struct KeptWorkspace {
    pub run: RunId,
    pub candidate: String,
    /// The checkout that holds the work.
    pub tree: std::path::PathBuf,
    /// Why it was kept: "its tree differs from refs/baton/runs/..." or the error that kept it
    /// from telling.
    pub why: String,
}

/// Removes the workspaces of finished runs (one run, or all). Candidate refs stay unless
/// `delete_refs` says otherwise; a running run is never touched. A workspace whose tree holds
/// work that is on no ref is kept (and reported) unless `force`.
pub fn clean(
    repo: &Repo,
    store: &Store,
    run: Option<&str>,
    delete_refs: bool,
    force: bool,
) -> Result<CleanReport, EngineError> {
    clean_in(repo, store, run, delete_refs, force, None)
}

/// [`clean`], also tidying `repo_dir` (this repository's directory under the configured
/// workspace root, see [`repo_workspaces`]) when no run names it: a baton killed before it
/// recorded its run leaves what it made there.
pub fn clean_in(
    repo: &Repo,
    store: &Store,
    run: Option<&str>,
    delete_refs: bool,
    force: bool,
    repo_dir: Option<&Path>,
) -> Result<CleanReport, EngineError> {
    let runs = match run {
        Some(p) => vec![find_run(store, Some(p))?],
        None => store.runs(usize::MAX >> 1)?,
    };
    let mut report = CleanReport::default();
    let mut repo_dirs: std::collections::BTreeSet<std::path::PathBuf> =
        repo_dir.filter(|_| run.is_none()).map(Path::to_owned).into_iter().collect();
    for r in runs {
        if let Some(parent) = Path::new(&r.workspace_root).parent() {
            repo_dirs.insert(parent.to_owned());
        }
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
            let base = repo.git().try_resolve(&r.base_commit)?;
            let (removed, kept) = remove_workspaces(repo, &r.id, dir, base.as_ref(), force);
            report.workspaces_removed += removed;
            report.kept.extend(kept);
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
    for repo_dir in repo_dirs {
        let (leftovers, snapshots) = tidy(&repo_dir);
        report.leftovers_removed += leftovers;
        report.snapshots_removed += snapshots;
    }
    Ok(report)
}

/// Removes from a repository's workspace directory what a dead baton left (an overlay probe, a
/// half-built snapshot), snapshots no workspace sits on, and the directory itself when nothing
/// is left in it. Returns the leftovers and snapshots removed.
pub fn tidy(repo_dir: &Path) -> (usize, usize) {
    let leftovers = baton_workspace::remove_leftovers(repo_dir);
    let snapshots = baton_workspace::remove_unused_snapshots(&repo_dir.join("snapshots"));
    // Only when nothing is left in it: a run dir not recorded yet may belong to a baton starting now.
    let _ = std::fs::remove_dir(repo_dir);
    (leftovers, snapshots)
}

/// This repository's directory under the workspace root `configured` (empty: the default), where
/// its runs keep their workspaces and overlay snapshots.
pub fn repo_workspaces(configured: &Path, repo: &Repo) -> std::path::PathBuf {
    let root = if configured.as_os_str().is_empty() {
        crate::default_workspace_root()
    } else {
        configured.to_owned()
    };
    crate::paths::repo_workspace_dir(&root, &repo.root)
}

/// Removes the workspaces of run `run` under `dir`, but (unless `force`) not one whose tree
/// holds work that is on no ref: its tree is neither the commit on its candidate's ref (the
/// base, when it has none) nor what baton last checked out in it. The base's own workspace
/// never holds a candidate's work. Returns how many it removed, and those it kept.
pub(crate) fn remove_workspaces(
    repo: &Repo,
    run: &RunId,
    dir: &Path,
    base: Option<&baton_git::Oid>,
    force: bool,
) -> (usize, Vec<KeptWorkspace>) {
    let mut kept = Vec::new();
    let mut keep = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if force || name == "base" {
            continue;
        }
        let Some(ws) = Workspace::reopen(repo, &entry.path()) else { continue };
        let reference = match baton_core::CandidateId::new(&name) {
            Ok(id) => candidate_ref(run, &id),
            Err(_) => continue,
        };
        let saved = repo.git().try_resolve(&reference).ok().flatten();
        let (saved, against) = match (saved, base) {
            (Some(commit), _) => (commit, reference),
            (None, Some(base)) => (base.clone(), format!("the base {}", base.short())),
            // Nothing to tell it by: keep it.
            (None, None) => {
                keep.push(entry.path());
                kept.push(KeptWorkspace {
                    run: run.clone(),
                    candidate: name,
                    tree: ws.tree,
                    why: "neither its ref nor the run's base exists any more".into(),
                });
                continue;
            }
        };
        let unsaved = match ws.holds_unsaved_work(repo, base.unwrap_or(&saved), &saved) {
            Ok(false) => continue,
            Ok(true) => format!("its tree differs from {against}"),
            Err(e) => format!("cannot tell whether its tree differs from {against}: {e}"),
        };
        keep.push(entry.path());
        kept.push(KeptWorkspace { run: run.clone(), candidate: name, tree: ws.tree, why: unsaved });
    }
    let removed = crate::run::remove_run_workspaces(repo, dir, &keep);
    (removed, kept)
}
