//! Confinement: what a process may write, see and reach.
//!
//! A [`Spec`] carries an optional [`Confinement`]; the [`Executor`] decides how far it can be
//! enforced. [`Bwrap`] enforces all of it with bubblewrap: the whole filesystem read-only but
//! the writable directories, the protected ones read-only again even beneath those, secrets
//! replaced by empty ones, a temporary directory of its own, its own process namespace (so nothing it starts
//! outlives it, not even a `setsid` escape: when bubblewrap ends, or baton dies, the kernel
//! ends every process inside), and, unless it may use the network, a network of its own with
//! only a loopback, left at most by a [`Route`] to one endpoint ([`crate::proxy`]). [`Local`](crate::Local) runs the process unconfined; the engine then
//! checks after the fact what could have been prevented.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::proxy::Route;
use crate::{Executor, Process, Spec, spawn};

/// Which network a confined process reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The machine's, as any process of the user's (agents reach their model this way, which
    /// may itself listen on 127.0.0.1).
    Host,
    /// A network namespace of its own with only a loopback: servers a test starts on
    /// 127.0.0.1 work, nothing outside is reachable.
    #[default]
    Private,
}

/// What one process may touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    /// Directories it may write, each made if missing. Everything else is read-only.
    pub writable: Vec<PathBuf>,
    /// Read-only, and seen as they are (the user's repository and its git directory, whose
    /// objects a workspace may borrow). A writable directory beneath one stays writable (the
    /// store keeps agents' HOMEs under the git directory); one that holds a protected
    /// directory must not be given.
    pub protect: Vec<PathBuf>,
    /// Replaced by an empty directory, or an empty file (keys, credentials). Paths that do not
    /// exist are left alone.
    pub hide: Vec<PathBuf>,
    /// A directory of its own for temporary files, writable and named by `TMPDIR` (and `TMP`,
    /// `TEMP`). The machine's `/tmp` stays visible, read-only like the rest: programs and
    /// files kept there still run and read.
    pub tmp: Option<PathBuf>,
    /// Environment variables it does not get (keys for the agents' models).
    pub hide_env: Vec<String>,
    pub network: Network,
    /// With a private network, the one way out of it: to an agent's model endpoint (see
    /// [`crate::proxy`]). An executor that cannot honor it must not run the process.
    pub route: Option<Route>,
}

impl Confinement {
    pub fn network(mut self, network: Network) -> Confinement {
        self.network = network;
        self
    }

    /// The same, also writing `dirs`.
    pub fn writing<I: IntoIterator<Item = PathBuf>>(mut self, dirs: I) -> Confinement {
        self.writable.extend(dirs);
        self
    }
}

/// Why a sandbox cannot be had here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("bubblewrap (bwrap) is not installed")]
    NotInstalled,
    #[error("cannot start {}: {reason}", program.display())]
    CannotStart { program: PathBuf, reason: String },
    /// The sandbox's own words for why it cannot work here.
    #[error("{0}")]
    Refused(String),
}

/// `bwrap` on `PATH`, if there.
pub fn find_bwrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("bwrap")).find(|p| p.is_file())
}

/// Processes confined with bubblewrap, started by another executor (this machine's, or a
/// cluster's job that runs the same command line).
#[derive(Debug, Clone)]
pub struct Bwrap {
    program: PathBuf,
    inner: std::sync::Arc<dyn Executor>,
}

impl Bwrap {
    /// The same sandbox, its processes started by `inner`.
    pub fn over(mut self, inner: std::sync::Arc<dyn Executor>) -> Bwrap {
        self.inner = inner;
        self
    }

    /// bubblewrap at `program`, if it can start a sandbox here (it needs user namespaces, or
    /// root); the reason it cannot otherwise, in bubblewrap's words.
    ///
    /// Tried up to five times: bubblewrap binds the whole filesystem with every mount beneath
    /// it, and fails when a mount goes away meanwhile (another run's overlay workspace being
    /// removed). One such failure must not leave a run unconfined.
    pub fn probe(program: &Path) -> Result<Bwrap, Unavailable> {
        let mut last = String::new();
        for attempt in 0..5u64 {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(25 * attempt));
            }
            let out = std::process::Command::new(program)
                .args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid"])
                .args(["--unshare-net", "--die-with-parent", "--", "true"])
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| Unavailable::CannotStart {
                    program: program.to_owned(),
                    reason: e.to_string(),
                })?;
            if out.status.success() {
                return Ok(Bwrap { program: program.to_owned(), inner: std::sync::Arc::new(crate::Local) });
            }
            let err = String::from_utf8_lossy(&out.stderr);
            last = err.lines().next().unwrap_or("it exited with an error").trim().to_owned();
        }
        Err(Unavailable::Refused(last))
    }

    /// The command line that runs `spec` confined by `c`.
    fn command(&self, spec: &Spec, c: &Confinement) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |items: &[&std::ffi::OsStr]| a.extend(items.iter().map(|s| s.to_os_string()));
        push(&["--ro-bind".as_ref(), "/".as_ref(), "/".as_ref()]);
        push(&["--dev".as_ref(), "/dev".as_ref(), "--proc".as_ref(), "/proc".as_ref()]);
        for p in &c.protect {
            push(&["--ro-bind".as_ref(), p.as_os_str(), p.as_os_str()]);
        }
        for w in c.writable.iter().chain(&c.tmp) {
            push(&["--bind".as_ref(), w.as_os_str(), w.as_os_str()]);
        }
        for h in &c.hide {
            if h.is_dir() {
                push(&["--tmpfs".as_ref(), h.as_os_str()]);
            } else {
                push(&["--ro-bind".as_ref(), "/dev/null".as_ref(), h.as_os_str()]);
            }
        }
        push(&["--unshare-pid".as_ref(), "--unshare-ipc".as_ref(), "--die-with-parent".as_ref()]);
        if c.network == Network::Private || c.route.is_some() {
            push(&["--unshare-net".as_ref()]);
        }
        if let Some(route) = &c.route {
            if let Some(hosts) = &route.hosts {
                push(&["--ro-bind".as_ref(), hosts.as_os_str(), "/etc/hosts".as_ref()]);
            }
            if route.privileged_port() {
                // Root's sandbox may bind it in its own network; nobody else's can (proxy.rs).
                push(&["--cap-add".as_ref(), "CAP_NET_BIND_SERVICE".as_ref()]);
            }
        }
        push(&["--chdir".as_ref(), spec.cwd.as_os_str(), "--".as_ref()]);
        if c.tmp.is_some() {
            // The first thing run inside the sandbox: it says that the sandbox was set up (see
            // RETRY_SETUP), then becomes the command.
            push(&["/bin/sh".as_ref(), "-c".as_ref(), STARTED.as_ref(), "baton-sandboxed".as_ref()]);
        }
        match &c.route {
            Some(route) => a.extend(route.command(&spec.program, &spec.args)),
            None => {
                a.push(spec.program.clone());
                a.extend(spec.args.iter().cloned());
            }
        }
        a
    }
}

/// Runs bubblewrap again when it failed to set the sandbox up: it binds the whole filesystem
/// with every mount beneath it, and fails when a mount goes away meanwhile (another run's overlay
/// workspace being removed), before the command ever started. The first thing that runs inside
/// the sandbox ([`STARTED`]) writes to the status file; only when nothing did is bubblewrap
/// tried again, at most ten times in all, waiting a little longer each time (0.1 s, 0.2 s, ...:
/// a busy machine can unmount many overlays at once). A command that started and failed is
/// never run twice. (bubblewrap's own `--json-status-fd` reports the child before it sets the
/// sandbox up, so it cannot tell.)
const RETRY_SETUP: &str = r#"s=$1; shift; i=0
while :; do
  : > "$s"; "$@" 3>"$s"; rc=$?
  if [ -s "$s" ] || [ $i -ge 9 ]; then rm -f "$s"; exit $rc; fi
  i=$((i+1)); sleep "0.$i"
done"#;

/// Inside the sandbox: says it is set up (to the status file on fd 3), then runs the command.
const STARTED: &str = r#"printf x >&3; exec 3>&-; exec "$@""#;

/// Makes `spec` (bubblewrap's command line, which starts with [`STARTED`] inside) run through
/// [`RETRY_SETUP`], with its status file in the process's own temporary directory `tmp`.
fn retry_setup(spec: &mut Spec, tmp: &Path) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let status = tmp.join(format!(".bwrap-status-{}-{n}", std::process::id()));
    let mut args: Vec<OsString> =
        vec!["-c".into(), RETRY_SETUP.into(), "baton-sandbox".into(), status.into()];
    args.push(std::mem::take(&mut spec.program));
    args.append(&mut spec.args);
    spec.program = "/bin/sh".into();
    spec.args = args;
    // bubblewrap dies with its parent, now this shell: the shell dies with baton.
    spec.die_with_parent = true;
}

/// The paths of `c` as bubblewrap needs them: writable directories made and resolved (a
/// symlink in a mount point's path fails), the rest only where they exist.
pub(crate) fn prepared(c: &Confinement) -> std::io::Result<Confinement> {
    let resolve = |p: &PathBuf| p.canonicalize().ok();
    let mut writable = Vec::new();
    for w in c.writable.iter().chain(&c.tmp) {
        std::fs::create_dir_all(w)?;
    }
    for w in &c.writable {
        if let Some(w) = resolve(w)
            && !writable.contains(&w)
        {
            writable.push(w);
        }
    }
    Ok(Confinement {
        writable,
        protect: c.protect.iter().filter_map(resolve).collect(),
        hide: c.hide.iter().filter_map(resolve).collect(),
        tmp: c.tmp.as_ref().and_then(resolve),
        hide_env: c.hide_env.clone(),
        network: c.network,
        route: c.route.clone(),
    })
}

impl Executor for Bwrap {
    fn spawn(&self, mut spec: Spec) -> Process {
        let Some(c) = spec.confine.take() else { return self.inner.spawn(spec) };
        match prepared(&c) {
            Ok(c) => {
                spec.args = self.command(&spec, &c);
                spec.program = self.program.clone().into_os_string();
                if let Some(tmp) = &c.tmp {
                    retry_setup(&mut spec, tmp);
                }
                spec.exit_code_carries_signal = true;
                spec.env_remove.extend(c.hide_env.iter().map(OsString::from));
                if let Some(tmp) = &c.tmp {
                    for var in ["TMPDIR", "TMP", "TEMP"] {
                        spec.env.push((var.into(), tmp.clone().into_os_string()));
                    }
                }
                self.inner.spawn(spec)
            }
            Err(e) => {
                // Never run it unconfined instead: it fails to start, saying why.
                spec.program = OsString::from(format!("baton: cannot prepare the sandbox: {e}"));
                spawn(spec)
            }
        }
    }

    fn describe(&self) -> String {
        String::from(
            "sandboxed with bubblewrap: writes only to its workspace, its own HOME and temporary directory; \
             the user's repository read-only; keys hidden; tests without network",
        )
    }

    fn confines(&self) -> bool {
        true
    }

    fn confines_network(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cancel;
    use std::time::Duration;

    /// bubblewrap, or `None` (the test is skipped, and says so) where it cannot run; CI sets
    /// `BATON_REQUIRE_SANDBOX` so that there a missing sandbox fails instead.
    fn bwrap() -> Option<Bwrap> {
        let found = find_bwrap().ok_or(Unavailable::NotInstalled);
        match found.and_then(|p| Bwrap::probe(&p)) {
            Ok(b) => Some(b),
            Err(e) if std::env::var_os("BATON_REQUIRE_SANDBOX").is_some() => panic!("no sandbox: {e}"),
            Err(e) => {
                eprintln!("skipped: bubblewrap cannot run here: {e}");
                None
            }
        }
    }

    async fn run(b: &Bwrap, script: &str, cwd: &Path, c: Confinement) -> (String, crate::End) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let p = b.spawn(
            Spec::shell(script, cwd)
                .log(&log, 1 << 20)
                .merge_output()
                .timeouts(Some(Duration::from_secs(30)), None)
                .confine(c),
        );
        let f = p.wait(Cancel::never(), None).await;
        (std::fs::read_to_string(&log).unwrap_or_default(), f.end)
    }

    /// A bubblewrap that fails to set up (as when a mount goes away while it binds the
    /// filesystem) is tried again; a command that started and failed is not run twice.
    #[tokio::test]
    async fn a_sandbox_that_fails_to_set_up_is_tried_again_but_a_failing_command_is_not() {
        let Some(real) = bwrap() else { return };
        let root = tempfile::tempdir().unwrap();
        let (ws, count) = (root.path().join("ws"), root.path().join("attempts"));
        std::fs::create_dir_all(&ws).unwrap();
        // Fails the first two times the way bubblewrap's setup fails, then is bubblewrap.
        let flaky = root.path().join("flaky-bwrap");
        std::fs::write(
            &flaky,
            format!(
                "#!/bin/sh\necho x >> {count}\nif [ $(wc -l < {count}) -le 2 ]; then echo \"bwrap: Can't bind mount /oldroot/x on /newroot/x: No such file or directory\" >&2; exit 1; fi\nexec {real} \"$@\"\n",
                count = count.display(),
                real = real.program.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&flaky, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let b = Bwrap { program: flaky, inner: std::sync::Arc::new(crate::Local) };
        let c = || Confinement {
            writable: vec![ws.clone()],
            tmp: Some(root.path().join("tmp")),
            ..Default::default()
        };
        let (out, end) = run(&b, "echo ran >> runs; echo done", &ws, c()).await;
        assert!(end.success(), "{out}");
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 3, "{out}");
        assert_eq!(std::fs::read_to_string(ws.join("runs")).unwrap(), "ran\n");
        // Started, then failed: once.
        let (_, end) = run(&b, "echo ran >> failed; exit 3", &ws, c()).await;
        assert_eq!(end, crate::End::Exited { code: 3 });
        assert_eq!(std::fs::read_to_string(ws.join("failed")).unwrap(), "ran\n");
        let left: Vec<_> = std::fs::read_dir(root.path().join("tmp")).unwrap().flatten().collect();
        assert!(left.is_empty(), "status files left: {left:?}");
    }

    #[tokio::test]
    async fn a_confined_process_writes_only_where_it_may_and_sees_no_keys() {
        let Some(b) = bwrap() else { return };
        let root = tempfile::tempdir().unwrap();
        let (ws, user, keys) = (root.path().join("ws"), root.path().join("user"), root.path().join("keys"));
        for d in [&ws, &user, &keys] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(keys.join("id_ed25519"), "SECRET").unwrap();
        // The user's repository is protected; a HOME kept beneath its git directory is not.
        let home = user.join(".git/baton/home");
        let c = Confinement {
            writable: vec![ws.clone(), home.clone()],
            protect: vec![user.clone()],
            hide: vec![keys.clone()],
            tmp: Some(root.path().join("tmp")),
            hide_env: vec!["BATON_TEST_KEY".into()],
            network: Network::Private,
            route: None,
        };
        let script = format!(
            "echo ok > here; echo x > {user}/f 2>/dev/null || echo user-refused; \
             echo x > {user}/.git/HEAD 2>/dev/null || echo git-refused; echo h > {home}/h; \
             cat {keys}/id_ed25519 2>/dev/null || echo no-key; echo t > $TMPDIR/t && echo tmp-ok; \
             echo t > /tmp/baton-sandbox-test-$$ 2>/dev/null || echo slash-tmp-refused; \
             echo key=${{BATON_TEST_KEY:-none}}",
            user = user.display(),
            home = home.display(),
            keys = keys.display()
        );
        std::fs::create_dir_all(user.join(".git")).unwrap();
        std::fs::write(user.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("BATON_TEST_KEY", "sk-secret") };
        let (out, end) = run(&b, &script, &ws, c).await;
        assert!(end.success(), "{out}");
        for expected in ["user-refused", "git-refused", "no-key", "tmp-ok", "slash-tmp-refused", "key=none"] {
            assert!(out.contains(expected), "{expected} in {out}");
        }
        assert!(!out.contains("SECRET"), "{out}");
        assert_eq!(std::fs::read_to_string(ws.join("here")).unwrap(), "ok\n");
        assert_eq!(std::fs::read_to_string(home.join("h")).unwrap(), "h\n");
        assert!(!user.join("f").exists());
        assert_eq!(std::fs::read_to_string(user.join(".git/HEAD")).unwrap(), "ref: refs/heads/main\n");
        assert_eq!(std::fs::read_to_string(root.path().join("tmp/t")).unwrap(), "t\n");
    }

    #[tokio::test]
    async fn without_network_only_its_own_loopback_answers() {
        let Some(b) = bwrap() else { return };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ws = tempfile::tempdir().unwrap();
        let script = format!(
            "python3 -c \"import socket\ntry:\n  socket.create_connection(('127.0.0.1', {port}), timeout=3); print('reached')\nexcept OSError: print('refused')\ns = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); socket.create_connection(s.getsockname()); print('own loopback')\""
        );
        let private = Confinement { writable: vec![ws.path().to_owned()], ..Confinement::default() };
        assert_eq!(private.network, Network::Private, "no network unless asked for");
        let (out, _) = run(&b, &script, ws.path(), private.clone()).await;
        assert!(out.contains("refused") && out.contains("own loopback"), "{out}");
        let (out, _) = run(&b, &script, ws.path(), private.network(Network::Host)).await;
        assert!(out.contains("reached"), "{out}");
    }

    #[test]
    fn a_route_out_keeps_the_network_private_and_runs_the_command_behind_the_forwarder() {
        let b = Bwrap { program: "bwrap".into(), inner: std::sync::Arc::new(crate::Local) };
        let route = Route {
            forwarder: "/bin/baton".into(),
            socket: "/s".into(),
            listen: vec!["127.0.0.1:443".parse().unwrap()],
            hosts: Some("/h".into()),
        };
        // Even asked for the machine's network: a route is the only way out.
        let c = Confinement { route: Some(route), ..Confinement::default() }.network(Network::Host);
        let line = b.command(&Spec::new("agent", "/ws").arg("-p"), &c).join(std::ffi::OsStr::new(" "));
        let line = line.to_string_lossy();
        for part in [
            "--unshare-net",
            "--ro-bind /h /etc/hosts",
            "--cap-add CAP_NET_BIND_SERVICE",
            "--chdir /ws -- /bin/baton __forward --socket /s --listen 127.0.0.1:443 -- agent -p",
        ] {
            assert!(line.contains(part), "{part} in {line}");
        }
    }

    #[tokio::test]
    async fn nothing_it_starts_outlives_it_not_even_a_new_session() {
        let Some(b) = bwrap() else { return };
        let ws = tempfile::tempdir().unwrap();
        let marker = format!("baton-escape-{}", std::process::id());
        // The escaped process runs `sleep` under a name we can find: a copy of the binary.
        let copy = ws.path().join(&marker);
        std::fs::copy("/bin/sleep", &copy).unwrap();
        let script = format!("setsid {} 300 & sleep 0.5; exit 0", copy.display());
        // Killed by a signal inside, it is reported so, not as bubblewrap's exit code 139.
        let (_, killed) = run(&b, "kill -SEGV $$", ws.path(), Confinement::default()).await;
        assert!(matches!(killed, crate::End::Signaled { signal: 11 }), "{killed:?}");
        let c = Confinement { writable: vec![ws.path().to_owned()], ..Confinement::default() };
        let (_, end) = run(&b, &script, ws.path(), c).await;
        assert!(end.success());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let alive = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("cmdline")).ok())
            .any(|c| c.contains(&marker));
        assert!(!alive, "a process that left with setsid outlived its sandbox");
    }
}
