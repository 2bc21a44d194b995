//! A hermetic environment for running the `baton` binary: its own HOME, caches and git
//! configuration, and a small repository whose tests are a shell script that prints TAP.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use baton_testkit::TestRepo;

pub(crate) struct Env {
    pub(crate) home: tempfile::TempDir,
    pub(crate) repo: TestRepo,
    pub(crate) agents: PathBuf,
}

/// `add` has a bug (it subtracts); one of the three TAP tests fails on it.
pub(crate) const CALC: &str = "add() { echo $(( $1 - $2 )); }\n";

pub(crate) const TESTS: &str = r#"#!/bin/sh
. ./src/calc.sh
n=0
check() { n=$((n+1)); if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
echo "1..3"
check adds "$(add 2 3)" 5
check adds_zero "$(add 4 0)" 4
check identity "$(add 0 0)" 0
"#;

pub(crate) const CONFIG: &str = r#"[run]
grace = "1s"
jobs = 4

[[verify.stage]]
name = "test"
run = "sh tests/run.sh"
parser = "tap"
timeout = "60s"
"#;

/// The correct fix, as a script agent.
pub(crate) const FIX: &str = "#!/bin/sh\nsed -i 's/\\$1 - \\$2/$1 + $2/' src/calc.sh\n";

impl Env {
    pub(crate) fn new() -> Env {
        let repo =
            TestRepo::with_files(&[("src/calc.sh", CALC), ("tests/run.sh", TESTS), ("baton.toml", CONFIG)]);
        let home = tempfile::Builder::new().prefix("baton-home-").tempdir().unwrap();
        let agents = home.path().join("agents");
        std::fs::create_dir_all(&agents).unwrap();
        Env { home, repo, agents }
    }

    /// Writes an executable agent script and returns `command:PATH`.
    pub(crate) fn agent(&self, name: &str, script: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = self.agents.join(format!("{name}.sh"));
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        format!("command:{}", path.display())
    }

    /// Writes a diff file and returns `patch:PATH`.
    pub(crate) fn patch(&self, name: &str, diff: &str) -> String {
        let path = self.agents.join(format!("{name}.diff"));
        std::fs::write(&path, diff).unwrap();
        format!("patch:{}", path.display())
    }

    pub(crate) fn cache(&self) -> PathBuf {
        self.home.path().join("cache")
    }

    /// `baton ARGS` in the repository.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        self.command_in(self.repo.path(), args)
    }

    pub(crate) fn command_in(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.current_dir(dir).args(args);
        cmd.env_clear();
        for var in ["PATH", "LANG", "TMPDIR"] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        cmd.env("HOME", self.home.path())
            .env("XDG_CACHE_HOME", self.cache())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("NO_COLOR", "1");
        for (k, v) in baton_testkit::hermetic_git_env() {
            cmd.env(k, v);
        }
        cmd
    }

    pub(crate) fn baton(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub(crate) fn baton_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.command_in(dir, args).output().unwrap()
    }

    /// `baton show --json` of the latest run.
    pub(crate) fn show(&self) -> serde_json::Value {
        let out = self.baton(&["show", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Workspace directories that exist under the cache.
    pub(crate) fn workspaces(&self) -> Vec<PathBuf> {
        let root = self.cache().join("baton").join("workspaces");
        let mut out = Vec::new();
        for repo_dir in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            // `snapshots/` holds the read-only base checkouts that overlays share: a cache, not
            // workspaces.
            for run_dir in std::fs::read_dir(repo_dir.path()).into_iter().flatten().flatten() {
                if run_dir.file_name() == "snapshots" {
                    continue;
                }
                for ws in std::fs::read_dir(run_dir.path()).into_iter().flatten().flatten() {
                    out.push(ws.path());
                }
            }
        }
        out
    }
}

impl Drop for Env {
    /// Workspaces stay after a run; on machines where baton mounts overlays they are mount
    /// points, which a temporary directory cannot delete. Detach them first.
    fn drop(&mut self) {
        let home = self.home.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for point in mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|p| p.starts_with(&home)) {
            let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// stdout and stderr, for assertion messages.
pub(crate) fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Alive means: exists and is not a zombie.
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s[s.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

/// Pids written, one per line, into files matching `dir/*.pid`.
pub(crate) fn recorded_pids(dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "pid") {
            for line in std::fs::read_to_string(e.path()).unwrap().lines() {
                if let Ok(p) = line.trim().parse() {
                    pids.push(p);
                }
            }
        }
    }
    pids
}

/// The candidate object with `agent == name` in a `show --json` document.
pub(crate) fn candidate<'a>(show: &'a serde_json::Value, agent: &str) -> &'a serde_json::Value {
    show["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["agent"] == agent)
        .unwrap_or_else(|| panic!("no {agent} in {show:#}"))
}

/// Whether bubblewrap can start a sandbox here; where it cannot, the calling test says it is
/// skipped (CI sets BATON_REQUIRE_SANDBOX, and there it fails instead).
pub(crate) fn sandbox_works() -> bool {
    let works = baton_exec::find_bwrap().is_some_and(|p| baton_exec::Bwrap::probe(&p).is_ok());
    if !works {
        assert!(std::env::var_os("BATON_REQUIRE_SANDBOX").is_none(), "bubblewrap cannot run here");
        eprintln!("skipped: bubblewrap cannot run here");
    }
    works
}
