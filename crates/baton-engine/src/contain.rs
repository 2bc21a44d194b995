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
pub(crate) fn executor(
    mode: SandboxMode,
    inner: Arc<dyn Executor>,
) -> Result<(Arc<dyn Executor>, Option<String>), EngineError> {
    if mode == SandboxMode::Off || inner.confines() {
        return Ok((inner, None));
    }
    match crate::Sandboxes::probe().choose(mode) {
        SandboxChoice::Bwrap(b) => Ok((Arc::new(b.over(inner)), None)),
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
