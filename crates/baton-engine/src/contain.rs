//! Containment: what agents, stages and probes may touch, and what confines them.
//!
//! One [`Containment`] per run says, for every process the run starts, which directories it
//! may write (its workspace and git directory, its own HOME and `/tmp`, the configured
//! caches), what it sees read-only (the user's repository and git directory), what it does not
//! see at all (keys and credentials under the user's HOME, the agents' key variables for
//! stages and probes) and whether it reaches the network (agents do; stages only when they
//! say so; probes never). The run's executor enforces it where it can ([`baton_exec::Bwrap`],
//! else [`baton_exec::Landlock`]: see [`crate::sandbox`]); where nothing can, the run says so
//! and the repository guard checks afterwards.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_agents::CliInfo;
use baton_config::{RunConfig, SandboxMode};
use baton_exec::{Confinement, Executor, Network};
use baton_git::Repo;
use baton_workspace::Workspace;

use crate::{EngineError, SandboxChoice};

/// Files and directories under the user's HOME that hold keys or credentials: hidden from
/// every confined process. Agent CLIs' own login files are linked into each agent's HOME.
const SECRETS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker/config.json",
    ".netrc",
    ".git-credentials",
    ".config/git/credentials",
    ".npmrc",
    ".yarnrc.yml",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".config/gh",
    ".config/hub",
    ".password-store",
    ".local/share/keyrings",
    ".vault-token",
    ".terraform.d/credentials.tfrc.json",
];

/// The run's containment policy.
#[derive(Debug, Clone)]
pub(crate) struct Containment {
    /// Whether the executor enforces it (otherwise the guard checks afterwards).
    pub(crate) enforced: bool,
    protect: Vec<PathBuf>,
    secrets: Vec<PathBuf>,
    /// The agent CLIs' login files: hidden from stages and probes.
    logins: Vec<PathBuf>,
    /// The agent CLIs' key variables: stages and probes do not get them.
    keys: Vec<String>,
    writable: Vec<PathBuf>,
}

impl Containment {
    /// The policy for a run on `repo`, with `config.sandbox_writable` checked.
    pub(crate) fn new(repo: &Repo, config: &RunConfig, enforced: bool) -> Result<Containment, EngineError> {
        let home = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute());
        let under_home = |rel: &str| home.as_ref().map(|h| h.join(rel));
        let protect = vec![repo.root.clone(), repo.common_dir.clone()];
        let mut writable = Vec::new();
        for entry in &config.sandbox_writable {
            let path = match entry.strip_prefix("~/") {
                Some(rest) => under_home(rest).ok_or_else(|| {
                    EngineError::Sandbox(format!(
                        "run.sandbox_writable: `{entry}` starts with ~ but HOME is not set"
                    ))
                })?,
                None if entry == "~" => home.clone().unwrap_or_default(),
                None => PathBuf::from(entry),
            };
            if !path.is_absolute() {
                return Err(EngineError::Sandbox(format!(
                    "run.sandbox_writable: `{entry}` is not an absolute path (write it from / or ~/)"
                )));
            }
            if let Some(p) = protect.iter().find(|p| p.starts_with(&path)) {
                return Err(EngineError::Sandbox(format!(
                    "run.sandbox_writable: `{entry}` holds {}, which stays read-only to agents and tests; \
                     name the directories inside it that they may write",
                    p.display()
                )));
            }
            writable.push(path);
        }
        let clis = CliInfo::all();
        Ok(Containment {
            enforced,
            protect,
            secrets: SECRETS.iter().filter_map(|s| under_home(s)).collect(),
            logins: clis.iter().flat_map(|c| c.logins).filter_map(|s| under_home(s)).collect(),
            keys: clis.iter().flat_map(|c| c.keys.iter().map(|k| (*k).to_owned())).collect(),
            writable,
        })
    }

    /// Whether every process the run starts sees the user's repository and git directory
    /// read-only: the executor enforces the policy and no writable directory lies inside them.
    pub(crate) fn keeps_repo_read_only(&self) -> bool {
        self.enforced && !self.writable.iter().any(|w| self.protect.iter().any(|p| w.starts_with(p)))
    }

    /// For an agent working in `ws` with its own `home`: the network (it needs its model), its
    /// login files (linked into `home`), no other key.
    pub(crate) fn agent(&self, ws: &Workspace, home: &Path) -> Option<Confinement> {
        self.enforced.then(|| Confinement {
            writable: [ws.tree.clone(), ws.git_dir.clone(), home.to_owned()]
                .into_iter()
                .chain(self.writable.iter().cloned())
                .collect(),
            protect: self.protect.clone(),
            hide: self.secrets.clone(),
            tmp: Some(home.join("tmp")),
            hide_env: Vec::new(),
            network: Network::Host,
            route: None,
        })
    }

    /// For the stages and probes run in `ws`: no network (a stage may ask for it), and none of
    /// the agents' keys or login files.
    pub(crate) fn subject(&self, ws: &Workspace) -> Option<Confinement> {
        self.enforced.then(|| Confinement {
            writable: [ws.tree.clone(), ws.git_dir.clone()]
                .into_iter()
                .chain(self.writable.iter().cloned())
                .collect(),
            protect: self.protect.clone(),
            hide: self.secrets.iter().chain(&self.logins).cloned().collect(),
            tmp: Some(ws.root.join("tmp")),
            hide_env: self.keys.clone(),
            network: Network::Private,
            route: None,
        })
    }
}

/// The executor a run's processes go through under `mode`, over `inner`; a warning when
/// `auto` found no sandbox, or only Landlock. `bwrap` or `landlock` without that sandbox is an
/// error.
/// Mounts past which a warning says what they cost. bubblewrap binds every mount of the machine
/// into each sandbox it starts and makes each read-only, one by one: measured here at about
/// 0.7 ms a mount, so 200 mounts add some 0.15 s to every agent, stage and example started.
const CROWDED_MOUNTS: usize = 200;

/// What the mounts of this machine (`/proc/self/mountinfo`) cost each sandboxed start, when
/// there are many: most often overlay workspaces that earlier runs kept.
fn crowded(mountinfo: &str) -> Option<String> {
    let mounts: Vec<&str> = mountinfo.lines().filter(|l| !l.trim().is_empty()).collect();
    if mounts.len() <= CROWDED_MOUNTS {
        return None;
    }
    // A line reads `id parent dev root mountpoint options ... - fstype source super-options`.
    let workspaces = mounts
        .iter()
        .filter(|l| {
            let mut fields = l.split(" - ");
            let point = fields.next().and_then(|f| f.split(' ').nth(4)).unwrap_or("");
            let fstype = fields.next().and_then(|f| f.split(' ').next()).unwrap_or("");
            fstype == "overlay" && point.ends_with("/merged")
        })
        .count();
    Some(format!(
        "{} mounts on this machine, {workspaces} of them overlay workspaces (most likely kept by earlier runs): \
         bubblewrap binds each one into every sandbox it starts, which makes each agent, stage and example \
         start slower; `baton clean` in a repository unmounts the workspaces its runs kept \
         (`run.keep_workspaces = false` keeps none)",
        mounts.len()
    ))
}

pub(crate) fn executor(
    mode: SandboxMode,
    inner: Arc<dyn Executor>,
) -> Result<(Arc<dyn Executor>, Option<String>), EngineError> {
    if mode == SandboxMode::Off || inner.confines() {
        return Ok((inner, None));
    }
    match crate::Sandboxes::probe().choose(mode) {
        SandboxChoice::Bwrap(b) => {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            Ok((Arc::new(b.over(inner)), crowded(&mountinfo)))
        }
        SandboxChoice::Landlock { landlock, no_bwrap } => {
            let warning = no_bwrap.map(|e| {
                format!(
                    "bubblewrap cannot start here ({e}): agents and tests are confined with Landlock instead, \
                     which is weaker: key files are unreadable but not hidden, tests get no TCP at all (not even \
                     127.0.0.1) and there is no process namespace (install bubblewrap, or allow user namespaces, \
                     for the stronger sandbox)"
                )
            });
            Ok((Arc::new(landlock.over(inner)), warning))
        }
        SandboxChoice::Refused(e) => Err(EngineError::Sandbox(e)),
        SandboxChoice::Unconfined { why } => Ok((
            inner,
            why.map(|e| {
                format!(
                    "agents and tests run unconfined: {e}; baton checks your repository after each agent \
                     instead (install bubblewrap to confine them)"
                )
            }),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: usize, point: &str, fstype: &str) -> String {
        format!("{id} 27 0:{id} / {point} rw,relatime - {fstype} {fstype} rw\n")
    }

    /// The per-agent checks of the guard are left out only where no process can write the
    /// repository: the sandbox enforces, and nothing writable lies inside the repository.
    #[test]
    fn the_repository_is_read_only_only_where_the_sandbox_enforces_and_nothing_inside_is_writable() {
        let test_repo = baton_testkit::TestRepo::with_files(&[("a.txt", "a\n")]);
        let repo = Repo::discover(test_repo.path()).unwrap();
        let with = |writable: Vec<String>| RunConfig { sandbox_writable: writable, ..RunConfig::default() };
        let outside = tempfile::tempdir().unwrap();
        let cache = outside.path().display().to_string();
        let read_only = |config: &RunConfig, enforced: bool| {
            Containment::new(&repo, config, enforced).unwrap().keeps_repo_read_only()
        };
        assert!(read_only(&with(vec![]), true));
        assert!(read_only(&with(vec![cache.clone()]), true), "a cache outside the repository");
        assert!(!read_only(&with(vec![]), false), "nothing enforces it");
        let target = repo.root.join("target").display().to_string();
        assert!(!read_only(&with(vec![cache, target]), true), "its target/ is writable");
    }

    #[test]
    fn many_mounts_are_named_with_the_workspaces_among_them() {
        let mut info = line(1, "/", "ext4") + &line(2, "/proc", "proc");
        assert_eq!(crowded(&info), None, "a machine with few mounts says nothing");
        for i in 0..150 {
            info += &line(10 + i, &format!("/home/u/.cache/baton/workspaces/r-1/run/c{i}/merged"), "overlay");
        }
        for i in 0..60 {
            info += &line(200 + i, &format!("/var/lib/docker/overlay2/{i}/merged2"), "overlay");
        }
        let said = crowded(&info).expect("212 mounts are many");
        assert!(said.starts_with("212 mounts on this machine, 150 of them overlay workspaces"), "{said}");
        assert!(said.contains("`baton clean`"), "{said}");
    }
}
