//! Confinement with Landlock: the kernel's access control for unprivileged processes.
//!
//! [`Landlock`] enforces a [`Confinement`](crate::Confinement) without namespaces and without a helper program.
//! The ruleset is made in baton, every path of it opened there; the child only restricts itself
//! with it between fork and exec ([`Ruleset::enter`]: two system calls, nothing allocated).
//! Whatever the child starts inherits the restriction, and nothing lifts it, root included.
//!
//! Landlock grants rights; it cannot take one away beneath a directory that has it. What that
//! means for each part of a confinement:
//! - **Writes**: only beneath the writable directories and the temporary one, to a few devices
//!   (`/dev/null`, terminals, ...) and to `/dev/shm` (POSIX shared memory, the machine's).
//!   Reading and running programs is allowed everywhere else. A protected directory is
//!   therefore read-only without a rule of its own.
//! - **Hidden paths**: each directory on the way to one may only be listed (and, within a
//!   writable directory, have entries made and removed); every other entry in it gets the rights
//!   on its own. So a hidden file cannot be read or written, but it is not replaced by an empty
//!   one as with bubblewrap: it fails with "permission denied", and its name can be listed. An
//!   entry made in such a directory after the process started is not readable to it either.
//! - **Network** [`Private`](crate::Network::Private): no TCP connect or bind at all (Landlock ABI 4 and
//!   later), 127.0.0.1 included: there is no loopback of its own as in bubblewrap's network
//!   namespace, and UDP is not filtered. From ABI 6 it cannot reach abstract Unix sockets made
//!   outside its sandbox either. On an older kernel the network is not restricted;
//!   [`Landlock::describe`](Executor::describe) says so.
//! - **Other processes**: it cannot signal processes outside its sandbox (ABI 6), nor attach
//!   to them or read their memory. It can still read what `/proc` shows of them, and that
//!   includes the environment each process of the user's started with: variables taken out of
//!   its own environment (`hide_env`) can be read in baton's, if baton was started with them
//!   (measured on Linux 6.18: `/proc/PID/environ` and `maps` readable, `mem` and `exe` not).
//! - **No process namespace**: a process that leaves its group with `setsid` is not ended by
//!   the kernel with the sandbox; baton's subreaper and owner marker find it (see the crate's
//!   documentation).
//!
//! bubblewrap and Landlock are not layered. A process under Landlock cannot mount, so
//! bubblewrap cannot start beneath it; the other way round, Landlock would add little to what
//! bubblewrap already enforces. A run uses one or the other.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::sandbox::prepared;
use crate::{Executor, Process, Spec};

/// Processes confined with Landlock, started by another executor on this machine (one that
/// starts them with [`crate::spawn`], which applies the ruleset a [`Spec`] carries).
#[derive(Debug, Clone)]
pub struct Landlock {
    abi: i32,
    inner: Arc<dyn Executor>,
}

impl Landlock {
    /// Landlock, if the running kernel has it; why not otherwise.
    pub fn probe() -> Result<Landlock, crate::Unavailable> {
        kernel_abi()
            .map(|abi| Landlock { abi, inner: Arc::new(crate::Local) })
            .map_err(crate::Unavailable::Refused)
    }

    /// The kernel's Landlock ABI version: 4 and later filter TCP, 6 and later scope signals
    /// and abstract Unix sockets.
    pub fn abi(&self) -> i32 {
        self.abi
    }

    /// The same sandbox, its processes started by `inner`.
    pub fn over(mut self, inner: Arc<dyn Executor>) -> Landlock {
        self.inner = inner;
        self
    }
}

impl Executor for Landlock {
    fn spawn(&self, mut spec: Spec) -> Process {
        let Some(c) = spec.confine.take() else { return self.inner.spawn(spec) };
        if c.route.is_some() {
            // Landlock cannot give a process a network of its own with one way out of it.
            return crate::supervise::failed(
                spec,
                "cannot hold it to its endpoint: Landlock has no network namespace (that needs bubblewrap)"
                    .into(),
            );
        }
        let made = prepared(&c).map_err(|e| e.to_string()).and_then(|c| Ok((imp::ruleset(&c)?, c)));
        match made {
            Ok((ruleset, c)) => {
                spec.landlock = Some(Arc::new(ruleset));
                spec.env_remove.extend(c.hide_env.iter().map(OsString::from));
                if let Some(tmp) = &c.tmp {
                    for var in ["TMPDIR", "TMP", "TEMP"] {
                        spec.env.push((var.into(), tmp.clone().into_os_string()));
                    }
                }
                self.inner.spawn(spec)
            }
            // Never run it unconfined instead: it fails to start, saying why.
            Err(e) => crate::supervise::failed(spec, format!("cannot prepare the Landlock sandbox: {e}")),
        }
    }

    fn describe(&self) -> String {
        let network = if self.abi >= 4 {
            "tests make no TCP connection, not even to 127.0.0.1 (UDP is not filtered)"
        } else {
            "tests reach the network (this kernel's Landlock has no network rules)"
        };
        format!(
            "sandboxed with Landlock (ABI {}): writes only to its workspace, its own HOME and temporary \
             directory; the user's repository read-only; key files unreadable; {network}; no process namespace",
            self.abi
        )
    }

    fn confines(&self) -> bool {
        true
    }
}

/// A Landlock ruleset made by baton, for one child to restrict itself with between fork and
/// exec. The descriptor is close-on-exec: the program it runs does not get it.
#[derive(Debug)]
pub(crate) struct Ruleset(
    #[cfg_attr(not(target_os = "linux"), expect(dead_code, reason = "Linux only"))] OwnedFd,
);

impl Ruleset {
    /// Restricts the calling process. Only system calls on a descriptor opened before the
    /// fork, nothing allocated: safe between fork and exec.
    pub(crate) fn enter(&self) -> std::io::Result<()> {
        imp::enter(self)
    }
}

/// The running kernel's Landlock ABI version, or why it has none.
fn kernel_abi() -> Result<i32, String> {
    imp::kernel_abi()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::path::{Path, PathBuf};

    use landlock::{
        ABI, Access, AccessFs, AccessNet, BitFlags, PathBeneath, PathFd, RulesetAttr, RulesetCreatedAttr,
        Scope, make_bitflags,
    };

    use super::Ruleset;
    use crate::{Confinement, Network};

    /// The Landlock ABI baton writes its rules for: filesystem rights up to device ioctls (5),
    /// TCP bind and connect (4), signal and abstract-socket scoping (6). A kernel with less
    /// enforces what it has (the crate's best-effort mode), and the run says what that is.
    const TARGET: ABI = ABI::V6;

    /// Devices any program may need to write: the null sinks, randomness, terminals.
    const DEVICES: &[&str] = &[
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "/dev/ptmx",
        "/dev/pts",
    ];

    pub(super) fn kernel_abi() -> Result<i32, String> {
        /// `LANDLOCK_CREATE_RULESET_VERSION`: ask for the ABI version instead of a ruleset.
        const VERSION: libc::c_uint = 1;
        // SAFETY: with no attribute, a size of 0 and the VERSION flag, the call reads nothing
        // and only returns the version.
        let v = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<libc::c_void>(),
                0usize,
                VERSION,
            )
        };
        if v > 0 {
            return Ok(v as i32);
        }
        let err = io::Error::last_os_error();
        Err(match err.raw_os_error() {
            Some(libc::EOPNOTSUPP) => {
                "the kernel has Landlock, but it is not enabled (add landlock to the lsm= boot parameter)"
                    .into()
            }
            Some(libc::ENOSYS) => {
                "the kernel has no Landlock (Linux 5.13 or later has it), or a container's \
                                   seccomp filter hides it"
                    .into()
            }
            _ => format!("cannot ask the kernel for Landlock: {err}"),
        })
    }

    pub(super) fn enter(ruleset: &Ruleset) -> io::Result<()> {
        // The kernel requires no_new_privs (or CAP_SYS_ADMIN) to restrict oneself, so that no
        // set-user-id program runs under restrictions it does not expect; none gains
        // privileges inside (sudo does not work there).
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the descriptor is open (the ruleset owns it) and no flag is given.
        if unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.0.as_raw_fd(), 0u32) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The ruleset that enforces `c` (its paths made and resolved).
    pub(super) fn ruleset(c: &Confinement) -> Result<Ruleset, String> {
        let fail = |e: landlock::RulesetError| e.to_string();
        let private = match c.network {
            Network::Host => false,
            Network::Private => true,
        };
        let mut ruleset = landlock::Ruleset::default()
            .handle_access(AccessFs::from_all(TARGET))
            .and_then(|r| r.scope(Scope::Signal))
            .map_err(fail)?;
        if private {
            ruleset = ruleset
                .handle_access(AccessNet::from_all(TARGET))
                .and_then(|r| r.scope(Scope::AbstractUnixSocket))
                .map_err(fail)?;
        }
        let mut created = ruleset.create().map_err(fail)?;
        for (path, access) in rules(c) {
            let fd = match PathFd::new(&path) {
                Ok(fd) => fd,
                // Gone since it was listed: nothing to grant.
                Err(_) if std::fs::symlink_metadata(&path).is_err() => continue,
                Err(e) => return Err(e.to_string()),
            };
            let access = if path.is_dir() { access } else { access & AccessFs::from_file(TARGET) };
            created = created.add_rule(PathBeneath::new(fd, access)).map_err(fail)?;
        }
        let fd: Option<OwnedFd> = created.into();
        fd.map(Ruleset).ok_or_else(|| "the kernel has no Landlock".to_owned())
    }

    /// Each path the process gets rights beneath, with those rights.
    pub(super) fn rules(c: &Confinement) -> Vec<(PathBuf, BitFlags<AccessFs>)> {
        let all = AccessFs::from_all(TARGET);
        let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;
        let mut out = Vec::new();
        grant(Path::new("/"), AccessFs::from_read(TARGET), &c.hide, &mut out);
        for w in c.writable.iter().chain(&c.tmp) {
            grant(w, all, &c.hide, &mut out);
        }
        for d in DEVICES.iter().map(Path::new).filter(|d| d.exists()) {
            out.push((d.to_owned(), device));
        }
        if Path::new("/dev/shm").is_dir() {
            out.push(("/dev/shm".into(), all));
        }
        out
    }

    /// Grants `access` beneath `path`, except beneath the `hidden` paths. A directory on the way
    /// to one keeps only the rights that read or write no file through it (listing, making and
    /// removing entries, but not moving one elsewhere, which would carry a hidden file out);
    /// each of its other entries is granted on its own. A symlink gets no rule: what it points
    /// to is reached through the path it resolves to, which has its own.
    fn grant(
        path: &Path,
        access: BitFlags<AccessFs>,
        hidden: &[PathBuf],
        out: &mut Vec<(PathBuf, BitFlags<AccessFs>)>,
    ) {
        if hidden.iter().any(|h| h == path) {
            return;
        }
        if !hidden.iter().any(|h| h.starts_with(path)) {
            out.push((path.to_owned(), access));
            return;
        }
        let through = make_bitflags!(AccessFs::{
            ReadDir | RemoveDir | RemoveFile | MakeChar | MakeDir | MakeReg | MakeSock | MakeFifo | MakeBlock | MakeSym
        });
        out.push((path.to_owned(), access & through));
        let Ok(entries) = std::fs::read_dir(path) else { return };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| !t.is_symlink()) {
                grant(&entry.path(), access, hidden, out);
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_hidden_path_is_left_out_and_everything_beside_it_on_the_way_is_granted() {
            let root = tempfile::tempdir().unwrap();
            let r = root.path().canonicalize().unwrap();
            for d in ["home/.ssh", "home/.config/gh", "home/.config/nvim", "home/work"] {
                std::fs::create_dir_all(r.join(d)).unwrap();
            }
            std::fs::write(r.join("home/.bashrc"), "").unwrap();
            std::fs::write(r.join("home/.ssh/id_ed25519"), "").unwrap();
            std::os::unix::fs::symlink(r.join("home/.ssh"), r.join("home/keys")).unwrap();
            let hidden = vec![r.join("home/.ssh"), r.join("home/.config/gh")];
            let read = AccessFs::from_read(TARGET);
            let mut out = Vec::new();
            grant(&r.join("home"), read, &hidden, &mut out);
            out.sort();
            let got: Vec<(String, bool)> = out
                .iter()
                .map(|(p, a)| {
                    (p.strip_prefix(&r).unwrap().display().to_string(), a.contains(AccessFs::ReadFile))
                })
                .collect();
            let want: Vec<(String, bool)> = [
                ("home", false),
                ("home/.bashrc", true),
                ("home/.config", false),
                ("home/.config/nvim", true),
                ("home/work", true),
            ]
            .iter()
            .map(|(p, f)| ((*p).to_owned(), *f))
            .collect();
            assert_eq!(got, want);
            for (path, access) in &out {
                assert!(
                    !access.contains(AccessFs::Refer),
                    "{} could carry a hidden file out",
                    path.display()
                );
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::Ruleset;
    use crate::Confinement;

    pub(super) fn kernel_abi() -> Result<i32, String> {
        Err("Landlock is a Linux feature".into())
    }

    pub(super) fn enter(_: &Ruleset) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    pub(super) fn ruleset(_: &Confinement) -> Result<Ruleset, String> {
        Err(kernel_abi().unwrap_err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cancel, Confinement, Network};
    use std::path::Path;
    use std::time::Duration;

    /// Landlock, or `None` (the test is skipped, and says so) where the kernel lacks it; CI
    /// sets `BATON_REQUIRE_SANDBOX` so that there a missing sandbox fails instead.
    fn landlock() -> Option<Landlock> {
        match Landlock::probe() {
            Ok(l) => Some(l),
            Err(e) if std::env::var_os("BATON_REQUIRE_SANDBOX").is_some() => panic!("no Landlock: {e}"),
            Err(e) => {
                eprintln!("skipped: Landlock is not available here: {e}");
                None
            }
        }
    }

    async fn run(l: &Landlock, script: &str, cwd: &Path, c: Confinement) -> (String, crate::End) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let p = l.spawn(
            Spec::shell(script, cwd)
                .log(&log, 1 << 20)
                .merge_output()
                .timeouts(Some(Duration::from_secs(30)), None)
                .confine(c),
        );
        let f = p.wait(Cancel::never(), None).await;
        (std::fs::read_to_string(&log).unwrap_or_default(), f.end)
    }

    #[tokio::test]
    async fn a_confined_process_writes_only_where_it_may_and_reads_no_keys() {
        let Some(l) = landlock() else { return };
        let root = tempfile::tempdir().unwrap();
        let (ws, user, home) = (root.path().join("ws"), root.path().join("user"), root.path().join("home"));
        for d in [&ws, &user.join(".git"), &home.join(".ssh")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(home.join(".ssh/id_ed25519"), "SECRET").unwrap();
        std::fs::write(home.join(".bashrc"), "BASHRC").unwrap();
        std::fs::write(user.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        // The user's repository is protected; a HOME kept beneath its git directory is not.
        let own_home = user.join(".git/baton/home");
        let c = Confinement {
            writable: vec![ws.clone(), own_home.clone()],
            protect: vec![user.clone()],
            hide: vec![home.join(".ssh")],
            tmp: Some(root.path().join("tmp")),
            hide_env: vec!["BATON_LANDLOCK_TEST_KEY".into()],
            network: Network::Private,
            route: None,
        };
        let script = format!(
            "echo ok > here; echo x > {user}/f 2>/dev/null || echo user-refused; \
             echo x > {user}/.git/HEAD 2>/dev/null || echo git-refused; echo h > {own_home}/h; \
             echo x > {home}/PWNED 2>/dev/null || echo home-refused; \
             sh -c 'echo x > {user}/g' 2>/dev/null || echo child-refused; \
             cat {home}/.ssh/id_ed25519 2>/dev/null || echo no-key; cat {home}/.bashrc; echo; \
             echo t > $TMPDIR/t && echo tmp-ok; echo n > /dev/null && echo null-ok; \
             echo t > /tmp/baton-landlock-test-$$ 2>/dev/null || echo slash-tmp-refused; \
             echo key=${{BATON_LANDLOCK_TEST_KEY:-none}}",
            user = user.display(),
            own_home = own_home.display(),
            home = home.display(),
        );
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("BATON_LANDLOCK_TEST_KEY", "sk-secret") };
        let (out, end) = run(&l, &script, &ws, c).await;
        assert!(end.success(), "{out}");
        for expected in [
            "user-refused",
            "git-refused",
            "home-refused",
            "child-refused",
            "no-key",
            "BASHRC",
            "tmp-ok",
            "null-ok",
            "slash-tmp-refused",
            "key=none",
        ] {
            assert!(out.contains(expected), "{expected} in {out}");
        }
        assert!(!out.contains("SECRET"), "{out}");
        assert_eq!(std::fs::read_to_string(ws.join("here")).unwrap(), "ok\n");
        assert_eq!(std::fs::read_to_string(own_home.join("h")).unwrap(), "h\n");
        assert!(!user.join("f").exists() && !user.join("g").exists() && !home.join("PWNED").exists());
        assert_eq!(std::fs::read_to_string(user.join(".git/HEAD")).unwrap(), "ref: refs/heads/main\n");
        assert_eq!(std::fs::read_to_string(root.path().join("tmp/t")).unwrap(), "t\n");
    }

    #[tokio::test]
    async fn without_network_no_tcp_connection_is_made_not_even_to_loopback() {
        let Some(l) = landlock() else { return };
        if l.abi() < 4 {
            eprintln!("skipped: this kernel's Landlock (ABI {}) has no network rules", l.abi());
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ws = tempfile::tempdir().unwrap();
        let script = format!(
            "python3 -c \"import socket\ntry:\n  socket.create_connection(('127.0.0.1', {port}), timeout=3); print('reached')\nexcept OSError: print('refused')\ntry:\n  s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print('bound')\nexcept OSError: print('no-bind')\""
        );
        let private = Confinement { writable: vec![ws.path().to_owned()], ..Confinement::default() };
        assert_eq!(private.network, Network::Private, "no network unless asked for");
        let (out, _) = run(&l, &script, ws.path(), private.clone()).await;
        assert!(out.contains("refused") && out.contains("no-bind"), "{out}");
        let (out, _) = run(&l, &script, ws.path(), private.network(Network::Host)).await;
        assert!(out.contains("reached") && out.contains("bound"), "{out}");
    }

    #[tokio::test]
    async fn it_cannot_signal_the_baton_that_started_it_nor_read_its_memory() {
        let Some(l) = landlock() else { return };
        if l.abi() < 6 {
            eprintln!("skipped: this kernel's Landlock (ABI {}) does not scope signals", l.abi());
            return;
        }
        let ws = tempfile::tempdir().unwrap();
        let me = std::process::id();
        let script = format!(
            "kill -0 {me} 2>/dev/null && echo signalled || echo no-signal; \
             (exec 3< /proc/{me}/mem) 2>/dev/null && echo memory-opened || echo no-memory"
        );
        let c = Confinement { writable: vec![ws.path().to_owned()], ..Confinement::default() };
        let (out, end) = run(&l, &script, ws.path(), c).await;
        assert!(end.success(), "{out}");
        assert!(out.contains("no-signal") && out.contains("no-memory"), "{out}");
    }

    #[test]
    fn it_says_what_it_enforces() {
        let Some(l) = landlock() else { return };
        assert!(l.confines());
        let says = l.describe();
        assert!(says.contains("Landlock") && says.contains("key files unreadable"), "{says}");
    }
}
