//! Process-table queries. On Linux they read `/proc`; elsewhere they degrade to what `kill(2)`
//! can tell (the group exists or not).

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use stat_file::Stat;

/// What identifies a process beyond its pid, which the kernel reuses: its start time in clock
/// ticks since boot. Recorded so that a later baton can stop the groups a crashed one left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessIdentity {
    pub pid: u32,
    pub start_ticks: u64,
}

/// The identity of a live process, if it exists and `/proc` can tell.
pub fn identity_of(pid: u32) -> Option<ProcessIdentity> {
    stat(pid).map(|s| ProcessIdentity { pid, start_ticks: s.start_ticks })
}

/// Kills the process group that `leader` led, if it is still the same group: the leader is
/// alive with the recorded start time, or gone while members of its group remain (a pid that
/// is some group's id is not reused while the group exists). Returns whether it sent a signal.
pub fn kill_recorded_group(leader: ProcessIdentity) -> bool {
    let same_leader = match stat(leader.pid) {
        Some(s) => s.start_ticks == leader.start_ticks,
        None => true,
    };
    if !same_leader || !group_exists(leader.pid) {
        return false;
    }
    killpg(Pid::from_raw(leader.pid as i32), Signal::SIGKILL).is_ok()
}

/// Whether any process is in the group `pgid`.
pub(crate) fn group_exists(pgid: u32) -> bool {
    // Signal 0 checks existence and permission without sending anything.
    match killpg(Pid::from_raw(pgid as i32), None) {
        Ok(()) => !group_is_only_zombies(pgid),
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// A group whose members are all zombies cannot be signalled usefully; they are waiting to be
/// reaped by their parent. `kill(0)` still reports them, so look closer where we can.
fn group_is_only_zombies(pgid: u32) -> bool {
    let Some(all) = all_stats() else { return false };
    let members: Vec<&Stat> = all.iter().filter(|s| s.pgrp == pgid).collect();
    !members.is_empty() && members.iter().all(|s| s.state == 'Z')
}

/// Number of live (non-zombie) processes in group `pgid`; `None` if `/proc` cannot tell.
pub(crate) fn group_size(pgid: u32) -> Option<usize> {
    let all = all_stats()?;
    Some(all.iter().filter(|s| s.pgrp == pgid && s.state != 'Z').count())
}

/// Pids whose parent is `parent`.
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
    all_stats().unwrap_or_default().into_iter().filter(|s| s.ppid == parent).map(|s| s.pid).collect()
}

pub(crate) fn kill_pid_and_group(pid: u32) {
    let p = Pid::from_raw(pid as i32);
    if let Some(s) = stat(pid)
        && s.pgrp == pid
    {
        let _ = killpg(p, Signal::SIGKILL);
    }
    let _ = kill(p, Signal::SIGKILL);
}

/// Whether the environment of process `pid` holds `entry` (`NAME=value`) exactly.
pub(crate) fn has_env(pid: u32, entry: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == entry))
}

/// Pids of the live processes whose environment holds `entry` (`NAME=value`) exactly, this
/// process excepted. Only processes whose environment this user may read are seen (all of the
/// user's own); a zombie has none left.
pub(crate) fn processes_with_env(entry: &[u8]) -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| has_env(pid, entry))
        .filter(|&pid| stat(pid).is_some_and(|s| s.state != 'Z'))
        .collect()
}

pub(crate) fn signal(pid: u32, signal: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), signal);
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Stat::parse(&text)
}

fn all_stats() -> Option<Vec<Stat>> {
    let dir = std::fs::read_dir("/proc").ok()?;
    Some(
        dir.filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(stat)
            .collect(),
    )
}

mod stat_file {
    /// The fields of `/proc/<pid>/stat` that baton uses.
    #[derive(Debug)]
    pub(crate) struct Stat {
        pub(crate) pid: u32,
        pub(crate) state: char,
        pub(crate) ppid: u32,
        pub(crate) pgrp: u32,
        pub(crate) start_ticks: u64,
    }

    impl Stat {
        /// Parses `pid (comm) state ppid pgrp session ... starttime ...`. The command name may
        /// hold spaces and parentheses, so fields are counted from the last `)`.
        pub(crate) fn parse(text: &str) -> Option<Stat> {
            let open = text.find('(')?;
            let close = text.rfind(')')?;
            let pid = text[..open].trim().parse().ok()?;
            let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
            // rest[0] is field 3 (state); starttime is field 22.
            Some(Stat {
                pid,
                state: rest.first()?.chars().next()?,
                ppid: rest.get(1)?.parse().ok()?,
                pgrp: rest.get(2)?.parse().ok()?,
                start_ticks: rest.get(19)?.parse().ok()?,
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_names_with_spaces_and_parens() {
            let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
            let s = Stat::parse(line).unwrap();
            assert_eq!((s.pid, s.state, s.ppid, s.pgrp, s.start_ticks), (4242, 'S', 1, 4242, 987654));
        }
    }
}
