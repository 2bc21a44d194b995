//! Resource limits for one process and everything it starts.
//!
//! Two mechanisms, the stronger where this machine allows it:
//! - **cgroups**: each limited process gets cgroups of its own (v1 `pids` and `memory`
//!   controllers, made beneath baton's own), so a limit holds for the whole process tree, for
//!   root too, and whatever is left in them when the process ends (a `setsid` escape) is ended
//!   with it. Cgroups are only used where baton can create them (root, or a delegated tree).
//! - **rlimits** (`setrlimit` between fork and exec), inherited by every descendant: file size
//!   and open files always; processes only bind a user other than root (the kernel exempts
//!   root), and each process counts all of its user's processes.
//!
//! Limits can only be lowered: a hard limit above the current one is kept at the current one.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Limits for one process tree; 0 leaves a resource unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Processes and threads at once.
    pub processes: u64,
    /// Bytes in any one file it writes.
    pub file_size: u64,
    /// Files open at once, per process.
    pub open_files: u64,
    /// Bytes of memory, for the whole tree (cgroups only).
    pub memory: u64,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// Where this machine can make cgroups for baton's processes.
#[derive(Debug, Clone, Default)]
pub struct Cgroups {
    /// baton's own cgroup in the v1 `pids` hierarchy, when children can be made there.
    pub pids: Option<PathBuf>,
    /// The same for `memory`.
    pub memory: Option<PathBuf>,
}

/// The cgroups this process may make children in, found once.
pub fn cgroups() -> &'static Cgroups {
    static FOUND: OnceLock<Cgroups> = OnceLock::new();
    FOUND.get_or_init(|| {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let usable = |controller: &str| {
            let path = own.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
                names.split(',').any(|n| n == controller).then(|| path.trim_start_matches('/').to_owned())
            })?;
            let dir = Path::new("/sys/fs/cgroup").join(controller).join(path);
            let probe = dir.join(format!("baton-probe-{}", std::process::id()));
            std::fs::create_dir(&probe).ok()?;
            let _ = std::fs::remove_dir(&probe);
            remove_dead(&dir);
            Some(dir)
        };
        Cgroups { pids: usable("pids"), memory: usable("memory") }
    })
}

/// Removes the cgroups under `dir` that a baton no longer alive made and could not remove (it
/// was killed): `baton-<pid>-<n>` whose pid is gone, once nothing is in them. Left alone, they
/// pile up, and a later baton with the same pid would find its names taken.
fn remove_dead(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("baton-")) else { continue };
        let owner = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
        let gone = owner.is_some_and(|pid| {
            pid != std::process::id() as i32
                && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                    == Err(nix::errno::Errno::ESRCH)
        });
        if gone {
            // Fails, and keeps it, while a process is still in it.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// How `limits` are enforced here, for the run header and `doctor`.
pub fn describe(limits: &Limits) -> String {
    let cg = cgroups();
    let mut parts = Vec::new();
    let mb = |b: u64| {
        if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
            format!("{} GiB", b >> 30)
        } else {
            format!("{} MiB", b >> 20)
        }
    };
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if limits.processes > 0 {
        parts.push(match (&cg.pids, root) {
            (Some(_), _) => format!("{} processes per process tree (cgroup)", limits.processes),
            (None, false) => format!("{} processes of your user per process (rlimit)", limits.processes),
            (None, true) => "processes: not enforced (root, and no cgroup can be made here)".to_owned(),
        });
    }
    if limits.memory > 0 {
        parts.push(match &cg.memory {
            Some(_) => format!("{} of memory per process tree (cgroup)", mb(limits.memory)),
            None => "memory: not enforced (no cgroup can be made here)".to_owned(),
        });
    }
    if limits.file_size > 0 {
        parts.push(format!("files up to {} (rlimit)", mb(limits.file_size)));
    }
    if limits.open_files > 0 {
        parts.push(format!("{} open files per process (rlimit)", limits.open_files));
    }
    if parts.is_empty() { "no limits".into() } else { parts.join(", ") }
}

/// The cgroups of one limited process, removed (and anything still in them ended) on drop.
#[derive(Debug)]
pub(crate) struct Group {
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` of each, open for the child to write itself into.
    procs: Vec<OwnedFd>,
}

impl Group {
    /// Cgroups for one process under `limits`, or `None` where none are needed or can be made.
    pub(crate) fn create(limits: &Limits) -> io::Result<Option<Group>> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let cg = cgroups();
        let name = format!("baton-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut wanted: Vec<(&Path, &str, u64)> = Vec::new();
        if let (Some(dir), n) = (&cg.pids, limits.processes)
            && n > 0
        {
            wanted.push((dir, "pids.max", n));
        }
        if let (Some(dir), n) = (&cg.memory, limits.memory)
            && n > 0
        {
            wanted.push((dir, "memory.limit_in_bytes", n));
        }
        if wanted.is_empty() {
            return Ok(None);
        }
        let mut group = Group { dirs: Vec::new(), procs: Vec::new() };
        for (parent, file, value) in wanted {
            let dir = parent.join(&name);
            if let Err(e) = std::fs::create_dir(&dir) {
                // Left by a dead baton that had this pid: taken over once it is empty.
                if e.kind() != io::ErrorKind::AlreadyExists || std::fs::remove_dir(&dir).is_err() {
                    return Err(e);
                }
                std::fs::create_dir(&dir)?;
            }
            group.dirs.push(dir.clone());
            std::fs::write(dir.join(file), value.to_string())?;
            let procs = std::fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs"))?;
            group.procs.push(procs.into());
        }
        Ok(Some(group))
    }

    pub(crate) fn procs_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(AsRawFd::as_raw_fd).collect()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for dir in &self.dirs {
            // Whatever is left in it (a process that left the group with setsid) ends now.
            for _ in 0..50 {
                let left: Vec<i32> = std::fs::read_to_string(dir.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect();
                if left.is_empty() {
                    break;
                }
                for pid in left {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The rlimits for `limits`: (resource, value), each no higher than the current hard limit.
pub(crate) fn rlimits(limits: &Limits) -> Vec<(libc::c_int, libc::rlim_t)> {
    let mut out = Vec::new();
    for (resource, value) in [
        (libc::RLIMIT_NPROC, limits.processes),
        (libc::RLIMIT_FSIZE, limits.file_size),
        (libc::RLIMIT_NOFILE, limits.open_files),
    ] {
        if value == 0 {
            continue;
        }
        let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes into the struct we own.
        if unsafe { libc::getrlimit(resource as _, &mut current) } != 0 {
            continue;
        }
        out.push((resource as libc::c_int, (value as libc::rlim_t).min(current.rlim_max)));
    }
    out
}

/// Runs in the child between fork and exec: joins the cgroups, then lowers the rlimits. Only
/// async-signal-safe calls: `write` and `setrlimit`, on data made before the fork.
pub(crate) fn enter(procs: &[RawFd], rlimits: &[(libc::c_int, libc::rlim_t)]) -> io::Result<()> {
    for fd in procs {
        // "0": the process that writes it.
        // SAFETY: fd is an open file descriptor the parent made; the buffer is static.
        if unsafe { libc::write(*fd, b"0".as_ptr().cast(), 1) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    for (resource, value) in rlimits {
        let limit = libc::rlimit { rlim_cur: *value, rlim_max: *value };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(*resource as _, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a killed baton left is removed; a live one's (this process's) is not.
    #[test]
    fn cgroups_of_dead_batons_are_removed_and_live_ones_kept() {
        let Some(dir) = cgroups().pids.clone() else {
            eprintln!("skipped: no cgroup can be made here");
            return;
        };
        // A pid past the kernel's largest: no process has it.
        let dead = dir.join("baton-4194305-7");
        let live = dir.join(format!("baton-{}-999999", std::process::id()));
        std::fs::create_dir(&dead).unwrap();
        std::fs::create_dir(&live).unwrap();
        remove_dead(&dir);
        let (dead_left, live_left) = (dead.exists(), live.exists());
        let _ = std::fs::remove_dir(&live);
        assert!(!dead_left, "a dead baton's cgroup was kept");
        assert!(live_left, "a live baton's cgroup was removed");
    }
}
