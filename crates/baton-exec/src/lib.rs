//! The only place in baton that starts processes.
//!
//! # Theory of operation
//!
//! Every child is started in a process group of its own (`setpgid(0, 0)`), with stdin either
//! `/dev/null` or a buffer we write and close. It never shares baton's terminal foreground
//! group, so a Ctrl-C reaches baton alone and baton decides what to stop.
//!
//! [`Process::wait`] drives one child to its end. It reads stdout and stderr into one log file
//! up to a size cap (the rest is counted and dropped, never buffered), forwards stdout lines to
//! an optional channel (agents report progress as JSON lines), and watches four clocks:
//! the wall-clock limit, the silence limit (no output), and the two levels of [`Cancel`].
//! Stopping is always the same sequence: `SIGTERM` to the whole group, a grace period, then
//! `SIGKILL` to the whole group. A forced cancel skips the grace period.
//!
//! When the group's leader has exited, anything left in its group (a grandchild that outlived
//! its parent) is stopped the same way and counted. Processes that left the group with
//! `setsid` are caught by the subreaper: [`init`] makes baton the reaper of its orphaned
//! descendants, and [`reap_strays`] kills and reaps every such stray once no supervised
//! process is running. A [`Process`] that is dropped before it finished kills its group, so a
//! panic or an aborted task cannot leave a child behind.
//!
//! [`run_sync`] is the blocking variant for short commands (git plumbing): same process group,
//! same bookkeeping, output captured in memory.

mod cancel;
mod executor;
mod limits;
mod procfs;
mod sandbox;
mod supervise;
mod sync;

pub use cancel::{Cancel, CancelHandle, CancelLevel};
pub use executor::{Executor, Limited, Local};
pub use limits::{Cgroups, Limits, cgroups, describe as describe_limits};
pub use procfs::{ProcessIdentity, identity_of, kill_recorded_group};
pub use sandbox::{Bwrap, Confinement, Network, find_bwrap};
pub use supervise::{End, Finished, Process, Spec, StdinSource, spawn};
pub use sync::{SyncOutput, run_sync};

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Pids of the children baton started and has not yet reaped. Held while spawning, so that
/// [`reap_strays`] never mistakes a child that is being started for a stray.
fn known_children() -> MutexGuard<'static, HashSet<u32>> {
    static KNOWN: OnceLock<Mutex<HashSet<u32>>> = OnceLock::new();
    KNOWN.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes this process the reaper of its orphaned descendants (Linux), so that a grandchild
/// that escapes its process group with `setsid` is re-parented to baton instead of init and
/// can be found and stopped. Call once, early in `main`. Returns whether it took effect.
pub fn init() -> bool {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_child_subreaper(true).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Kills and reaps every process re-parented to baton that baton did not start itself, and
/// returns how many it found. Safe to call at any time; call it when no supervised process is
/// running (the end of a run, before exit), since a stray may belong to a live agent.
pub fn reap_strays() -> usize {
    let me = std::process::id();
    let known = known_children();
    let strays: Vec<u32> = procfs::children_of(me).into_iter().filter(|p| !known.contains(p)).collect();
    drop(known);
    for &pid in &strays {
        procfs::kill_pid_and_group(pid);
    }
    for &pid in &strays {
        // SAFETY-free: waitpid on a specific pid never steals another child's status.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
    }
    if !strays.is_empty() {
        tracing::debug!(count = strays.len(), "reaped stray processes");
    }
    strays.len()
}

/// Number of supervised processes currently running.
pub fn running_count() -> usize {
    known_children().len()
}
