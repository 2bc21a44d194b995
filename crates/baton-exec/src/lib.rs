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
//! A [`Spec`] may carry a [`Redactor`]: its log is then written through a [`StreamRedactor`],
//! so no key reaches the file, even one split across two reads (see [`redact`]). The
//! [`Redacting`] executor gives every process started through it one.
//!
//! [`run_sync`] is the blocking variant for short commands (git plumbing): same process group,
//! same bookkeeping, output captured in memory.
//!
//! Every process baton starts, by either way, carries [`OWNER_VAR`] in its environment: the
//! identity of the baton that started it. Children inherit it, including those that leave the
//! group with `setsid` and those started in the instant before baton could record them. The
//! subreaper dies with a SIGKILLed baton; the marker does not, so the next baton finds what a
//! dead one left by reading `/proc/*/environ` ([`end_marked`]).

mod cancel;
mod executor;
mod landlock;
mod limits;
mod procfs;
pub mod proxy;
pub mod redact;
mod sandbox;
mod supervise;
mod sync;

pub use cancel::{Cancel, CancelHandle, CancelLevel};
pub use executor::{Executor, Limited, Local, Redacting};
pub use landlock::Landlock;
pub use limits::{Cgroups, Limits, cgroups, describe as describe_limits};
pub use procfs::{ProcessIdentity, identity_of, kill_recorded_group};
pub use proxy::{Relay, Route};
pub use redact::{Redactor, StreamRedactor};
pub use sandbox::{Bwrap, Confinement, Network, Unavailable, find_bwrap};
pub use supervise::{End, Finished, Process, Spec, StdinSource, spawn};
pub use sync::{SyncOutput, run_sync};

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

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

/// Kills and reaps every child of this process that carries its marker but that it does not
/// track (a grandchild re-parented to it once its parent exited), and returns how many it
/// found. Children started another way are left alone. Safe to call at any time; call it when no supervised process is
/// running (the end of a run, before exit), since a stray may belong to a live agent.
pub fn reap_strays() -> usize {
    let me = std::process::id();
    let known = known_children();
    // Only what this baton started carries its marker: a child the process started another way
    // (a test's own git command, on another thread) is not ours to end.
    let mine = format!("{OWNER_VAR}={}", my_marker()).into_bytes();
    let strays: Vec<u32> = procfs::children_of(me)
        .into_iter()
        .filter(|p| !known.contains(p) && procfs::has_env(*p, &mine))
        .collect();
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

/// The environment variable that marks each process baton starts with its owner: the baton
/// process that started it, as [`owner_marker`] writes it.
pub const OWNER_VAR: &str = "BATON_OWNER";

/// The marker of the baton process `owner`: `<pid>-<start ticks>`, or the pid alone where its
/// start time cannot be read. A pid is reused; with its start time it names one process.
pub fn owner_marker(owner: u32, start_ticks: Option<u64>) -> String {
    match start_ticks {
        Some(t) => format!("{owner}-{t}"),
        None => owner.to_string(),
    }
}

/// This process's marker, which every process it starts carries.
pub(crate) fn my_marker() -> &'static str {
    static MINE: OnceLock<String> = OnceLock::new();
    MINE.get_or_init(|| {
        let me = std::process::id();
        owner_marker(me, identity_of(me).map(|i| i.start_ticks))
    })
}

/// Ends every process that carries `marker` (a baton's that is gone, see [`owner_marker`]):
/// `SIGTERM`, up to `grace` for them to exit, then `SIGKILL`; again for any a dying one
/// started meanwhile. Returns how many it found. This process is never among them; processes
/// of a live baton carry that baton's marker, never a dead one's.
pub fn end_marked(marker: &str, grace: Duration) -> usize {
    let entry = format!("{OWNER_VAR}={marker}").into_bytes();
    let mut ended = HashSet::new();
    for _ in 0..5 {
        let found = procfs::processes_with_env(&entry);
        if found.is_empty() {
            break;
        }
        for &pid in &found {
            procfs::signal(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !procfs::processes_with_env(&entry).is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in procfs::processes_with_env(&entry) {
            procfs::signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
        ended.extend(found);
    }
    ended.len()
}
