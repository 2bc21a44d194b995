use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use baton_core::TimeoutKind;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::cancel::{Cancel, CancelLevel};
use crate::{Redactor, StreamRedactor};
use crate::{known_children, procfs};

/// What to run and under which limits.
#[derive(Debug, Clone)]
pub struct Spec {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    /// Variables to set, after `env_clear` and `env_remove` apply.
    pub env: Vec<(OsString, OsString)>,
    pub env_remove: Vec<OsString>,
    /// Start from an empty environment instead of baton's.
    pub env_clear: bool,
    pub stdin: StdinSource,
    /// Where stdout and stderr go, interleaved as they arrive. `None` discards them.
    pub log: Option<PathBuf>,
    /// Give the child one pipe for stdout and stderr, so the log keeps the order in which it
    /// wrote to them (with two pipes, a line on one may be read before an earlier one on the
    /// other). Their lines then all count as stdout.
    pub merge_output: bool,
    /// Bytes of output kept in the log: the first half and the last half of this many; what
    /// lies between is counted and dropped.
    pub log_limit: u64,
    pub wall_timeout: Option<Duration>,
    pub silence_timeout: Option<Duration>,
    /// Time between `SIGTERM` and `SIGKILL` when stopping.
    pub grace: Duration,
    /// What it may touch, for an executor that confines (see [`crate::Confinement`]); an
    /// executor that does not runs it as it is.
    pub confine: Option<Box<crate::Confinement>>,
    /// The program is a launcher that exits with 128 + N when what it runs is killed by
    /// signal N (bubblewrap): such a code is read as that signal.
    pub exit_code_carries_signal: bool,
    /// Resource limits for it and everything it starts (see [`crate::Limits`]).
    pub limits: Option<crate::Limits>,
    /// Secrets to take out of the log before it is written (see [`crate::redact`]). The cap
    /// of [`Spec::log_limit`] applies to the redacted output, so a cut never leaves part of a
    /// secret behind.
    pub redact: Option<Arc<Redactor>>,
    /// A Landlock ruleset the child restricts itself with between fork and exec (see
    /// [`crate::Landlock`], which sets it).
    pub(crate) landlock: Option<Arc<crate::landlock::Ruleset>>,
    /// Killed when the baton thread that started it ends (`PR_SET_PDEATHSIG`): for a process
    /// that stands between baton and a sandbox that dies with its own parent.
    pub(crate) die_with_parent: bool,
}

/// What the child reads on stdin.
#[derive(Debug, Clone)]
pub enum StdinSource {
    Null,
    Bytes(Vec<u8>),
}

impl Spec {
    pub fn new(program: impl Into<OsString>, cwd: impl Into<PathBuf>) -> Spec {
        Spec {
            program: program.into(),
            args: Vec::new(),
            cwd: cwd.into(),
            env: Vec::new(),
            env_remove: Vec::new(),
            env_clear: false,
            stdin: StdinSource::Null,
            log: None,
            merge_output: false,
            log_limit: 16 << 20,
            wall_timeout: None,
            silence_timeout: None,
            grace: Duration::from_secs(5),
            confine: None,
            exit_code_carries_signal: false,
            limits: None,
            redact: None,
            landlock: None,
            die_with_parent: false,
        }
    }

    /// `sh -c SCRIPT`: for commands the user wrote in configuration.
    pub fn shell(script: &str, cwd: impl Into<PathBuf>) -> Spec {
        Spec::new("sh", cwd).arg("-c").arg(script)
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Spec {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Spec {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Spec {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn log(mut self, path: impl Into<PathBuf>, limit: u64) -> Spec {
        self.log = Some(path.into());
        self.log_limit = limit;
        self
    }

    /// See [`Spec::merge_output`].
    pub fn merge_output(mut self) -> Spec {
        self.merge_output = true;
        self
    }

    pub fn timeouts(mut self, wall: Option<Duration>, silence: Option<Duration>) -> Spec {
        self.wall_timeout = wall;
        self.silence_timeout = silence;
        self
    }

    pub fn limits(mut self, limits: crate::Limits) -> Spec {
        self.limits = Some(limits);
        self
    }

    pub fn confine(mut self, confinement: crate::Confinement) -> Spec {
        self.confine = Some(Box::new(confinement));
        self
    }

    /// See [`Spec::redact`].
    pub fn redact(mut self, redactor: Arc<Redactor>) -> Spec {
        self.redact = Some(redactor);
        self
    }

    pub fn grace(mut self, grace: Duration) -> Spec {
        self.grace = grace;
        self
    }

    pub fn stdin(mut self, stdin: StdinSource) -> Spec {
        self.stdin = stdin;
        self
    }

    /// The command as a person would type it, for messages.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| {
                let s = a.to_string_lossy();
                if s.is_empty() || s.contains(|c: char| c.is_whitespace() || "'\"$\\;&|<>()*?".contains(c)) {
                    format!("'{}'", s.replace('\'', r"'\''"))
                } else {
                    s.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How a supervised process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Exited { code: i32 },
    Signaled { signal: i32 },
    TimedOut { kind: TimeoutKind },
    Cancelled,
    SpawnFailed { message: String },
}

impl End {
    pub fn success(&self) -> bool {
        matches!(self, End::Exited { code: 0 })
    }
}

/// Everything known about a process once it is over.
#[derive(Debug, Clone)]
pub struct Finished {
    pub end: End,
    pub duration: Duration,
    /// Bytes the process wrote to stdout and stderr, including any not kept in the log.
    pub output_bytes: u64,
    /// Bytes dropped from the middle of the log because of the size limit.
    pub log_dropped: u64,
    /// Processes still in the group after its leader exited, which baton then stopped.
    pub stragglers: usize,
}

/// A started process. Dropping it before [`Process::wait`] finished kills its whole group.
pub struct Process {
    spec: Spec,
    started: Instant,
    state: Result<Running, String>,
}

struct Running {
    child: Child,
    guard: GroupGuard,
    log: LogSink,
    /// The read end of the one pipe for stdout and stderr, with [`Spec::merge_output`].
    merged: Option<tokio::net::unix::pipe::Receiver>,
    /// Its cgroups: dropped (and emptied) with it.
    _limits: Option<crate::limits::Group>,
}

/// Kills the group on drop unless disarmed: the last line of defence against orphans when a
/// task is aborted or panics.
struct GroupGuard {
    pgid: u32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = killpg(Pid::from_raw(self.pgid as i32), Signal::SIGKILL);
            known_children().remove(&self.pgid);
        }
    }
}

/// Starts `spec`'s program in a new process group. Never fails: a process that could not be
/// started ends at once with [`End::SpawnFailed`] when waited on.
pub fn spawn(spec: Spec) -> Process {
    let started = Instant::now();
    let state = start(&spec);
    Process { spec, started, state }
}

/// A process that could not be started: it ends at once with [`End::SpawnFailed`] saying
/// `message` when waited on.
pub(crate) fn failed(spec: Spec, message: String) -> Process {
    Process { spec, started: Instant::now(), state: Err(message) }
}

fn start(spec: &Spec) -> Result<Running, String> {
    let log = LogSink::create(spec.log.as_deref(), spec.log_limit, spec.redact.clone()).map_err(|e| {
        format!("cannot create log file {}: {e}", spec.log.as_deref().unwrap_or(Path::new("?")).display())
    })?;
    let mut cmd = tokio::process::Command::new(&spec.program);
    let mut merged = None;
    if spec.merge_output {
        let (reader, writer) = io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
        let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into())
            .map_err(|e| format!("cannot read from a pipe: {e}"))?;
        let second = writer.try_clone().map_err(|e| format!("cannot create a pipe: {e}"))?;
        cmd.stdout(writer).stderr(second);
        merged = Some(receiver);
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    cmd.args(&spec.args).current_dir(&spec.cwd).process_group(0).stdin(match spec.stdin {
        StdinSource::Null => Stdio::null(),
        StdinSource::Bytes(_) => Stdio::piped(),
    });
    if spec.env_clear {
        cmd.env_clear();
    }
    for key in &spec.env_remove {
        cmd.env_remove(key);
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    // Whatever the spec says: the next baton finds this process by it if this one dies.
    cmd.env(crate::OWNER_VAR, crate::my_marker());
    if !spec.cwd.is_dir() {
        return Err(format!("working directory {} does not exist", spec.cwd.display()));
    }
    let limits = spec.limits.unwrap_or_default();
    let group = if limits.is_empty() {
        None
    } else {
        crate::limits::Group::create(&limits)
            .map_err(|e| format!("cannot make the process's cgroups: {e}"))?
    };
    if !limits.is_empty() {
        let procs = group.as_ref().map(crate::limits::Group::procs_fds).unwrap_or_default();
        let rlimits = crate::limits::rlimits(&limits);
        // SAFETY: `enter` makes only async-signal-safe calls (write, setrlimit) on data made
        // before the fork.
        unsafe {
            cmd.pre_exec(move || crate::limits::enter(&procs, &rlimits));
        }
    }
    if spec.die_with_parent {
        // SAFETY: prctl is async-signal-safe and takes no data of ours.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    if let Some(ruleset) = spec.landlock.clone() {
        // Last, once nothing else needs a path: from here on the child may write only where the
        // ruleset lets it.
        // SAFETY: `enter` makes two system calls on a descriptor opened before the fork and
        // allocates nothing.
        unsafe {
            cmd.pre_exec(move || ruleset.enter());
        }
    }
    let mut known = known_children();
    let mut child = cmd.spawn().map_err(|e| describe_spawn_error(&spec.program, e))?;
    // The pipe's write ends are the child's now: the reader sees its end when the child's are
    // closed.
    drop(cmd);
    let pid = child.id().ok_or_else(|| "process exited before it could be tracked".to_owned())?;
    known.insert(pid);
    drop(known);
    if let (StdinSource::Bytes(bytes), Some(mut stdin)) = (&spec.stdin, child.stdin.take()) {
        let bytes = bytes.clone();
        tokio::spawn(async move {
            // A child that does not read its stdin closes the pipe: not our error.
            let _ = stdin.write_all(&bytes).await;
        });
    }
    Ok(Running { child, guard: GroupGuard { pgid: pid, armed: true }, log, merged, _limits: group })
}

fn describe_spawn_error(program: &std::ffi::OsStr, e: io::Error) -> String {
    let program = program.to_string_lossy();
    match e.kind() {
        io::ErrorKind::NotFound => format!("`{program}` was not found (is it installed and on PATH?)"),
        io::ErrorKind::PermissionDenied => format!("`{program}` is not executable (permission denied)"),
        _ => format!("cannot start `{program}`: {e}"),
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Why baton began stopping the process.
#[derive(Clone, Copy)]
enum StopReason {
    Timeout(TimeoutKind),
    Cancelled,
}

impl Process {
    /// The process id, which is also its group id; `None` if it never started.
    pub fn pid(&self) -> Option<u32> {
        self.state.as_ref().ok().map(|r| r.guard.pgid)
    }

    /// Supervises the process to its end. Stdout lines go to `lines` when given.
    pub async fn wait(self, mut cancel: Cancel, lines: Option<mpsc::UnboundedSender<String>>) -> Finished {
        let Process { spec, started, state } = self;
        let mut run = match state {
            Ok(run) => run,
            Err(message) => {
                return Finished {
                    end: End::SpawnFailed { message },
                    duration: started.elapsed(),
                    output_bytes: 0,
                    log_dropped: 0,
                    stragglers: 0,
                };
            }
        };
        let pgid = run.guard.pgid;
        let (tx, mut rx) = mpsc::channel::<(Stream, Vec<u8>)>(16);
        let readers = [
            run.child.stdout.take().map(|r| tokio::spawn(read_into(r, Stream::Stdout, tx.clone()))),
            run.child.stderr.take().map(|r| tokio::spawn(read_into(r, Stream::Stderr, tx.clone()))),
            run.merged.take().map(|r| tokio::spawn(read_into(r, Stream::Stdout, tx.clone()))),
        ];
        drop(tx);
        let mut line_buf = LineSplitter::new(lines);

        let wall_deadline = spec.wall_timeout.map(|d| started + d);
        let mut last_output = Instant::now();
        let mut stop: Option<StopReason> = None;
        let mut kill_at: Option<Instant> = None;
        let mut seen_level = CancelLevel::None;
        let mut readers_open = true;
        let far = started + Duration::from_secs(100 * 365 * 24 * 3600);

        let status: io::Result<ExitStatus> = loop {
            let silence_deadline = spec.silence_timeout.map(|d| last_output + d);
            tokio::select! {
                status = run.child.wait() => break status,
                chunk = rx.recv(), if readers_open => match chunk {
                    Some((stream, bytes)) => {
                        last_output = Instant::now();
                        if matches!(stream, Stream::Stdout) {
                            line_buf.push(&bytes);
                        }
                        run.log.write(stream, &bytes);
                    }
                    None => readers_open = false,
                },
                _ = sleep_until(wall_deadline.unwrap_or(far)), if wall_deadline.is_some() && stop.is_none() => {
                    stop = Some(StopReason::Timeout(TimeoutKind::Wall));
                    kill_at = Some(terminate(pgid, spec.grace));
                }
                _ = sleep_until(silence_deadline.unwrap_or(far)), if silence_deadline.is_some() && stop.is_none() => {
                    stop = Some(StopReason::Timeout(TimeoutKind::Silence));
                    kill_at = Some(terminate(pgid, spec.grace));
                }
                level = cancel.raised_above(seen_level) => {
                    seen_level = level;
                    stop.get_or_insert(StopReason::Cancelled);
                    if level == CancelLevel::Force {
                        kill_group(pgid);
                        kill_at = None;
                    } else if kill_at.is_none() {
                        kill_at = Some(terminate(pgid, spec.grace));
                    }
                }
                _ = sleep_until(kill_at.unwrap_or(far)), if kill_at.is_some() => {
                    kill_group(pgid);
                    kill_at = None;
                }
            }
        };
        known_children().remove(&pgid);

        // The leader is gone; its group may not be. Stop whatever is left of it.
        let mut stragglers = 0;
        if procfs::group_exists(pgid) {
            stragglers = procfs::group_size(pgid).unwrap_or(1);
            let grace =
                if seen_level == CancelLevel::Force || stop.is_some() { Duration::ZERO } else { spec.grace };
            let deadline = terminate(pgid, grace);
            while procfs::group_exists(pgid) && Instant::now() < deadline {
                tokio::select! {
                    chunk = rx.recv(), if readers_open => match chunk {
                        Some((stream, bytes)) => run.log.write(stream, &bytes),
                        None => readers_open = false,
                    },
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
            kill_group(pgid);
            // SIGKILL is delivered asynchronously: wait until the kernel has ended them, so that
            // "finished" means gone.
            let gone_by = Instant::now() + Duration::from_secs(2);
            while procfs::group_exists(pgid) && Instant::now() < gone_by {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        run.guard.armed = false;

        // Drain what the pipes still hold. A process that escaped the group may keep them open:
        // give up after a moment rather than wait for it.
        let drain_deadline = Instant::now() + Duration::from_millis(500);
        while readers_open {
            tokio::select! {
                chunk = rx.recv() => match chunk {
                    Some((stream, bytes)) => {
                        if matches!(stream, Stream::Stdout) {
                            line_buf.push(&bytes);
                        }
                        run.log.write(stream, &bytes);
                    }
                    None => readers_open = false,
                },
                _ = sleep_until(drain_deadline) => break,
            }
        }
        for reader in readers.into_iter().flatten() {
            reader.abort();
        }
        line_buf.finish();
        let (output_bytes, log_dropped) = run.log.finish();

        let end = match (stop, status) {
            (Some(StopReason::Timeout(kind)), _) => End::TimedOut { kind },
            (Some(StopReason::Cancelled), _) => End::Cancelled,
            (None, Ok(status)) => match end_of(status) {
                // A sandbox's launcher reports its child's death by signal N as exit code
                // 128 + N, as a shell does.
                End::Exited { code } if spec.exit_code_carries_signal && (129..=128 + 64).contains(&code) => {
                    End::Signaled { signal: code - 128 }
                }
                end => end,
            },
            (None, Err(e)) => End::SpawnFailed { message: format!("lost track of the process: {e}") },
        };
        tracing::debug!(command = %spec.display(), ?end, "process finished");
        Finished { end, duration: started.elapsed(), output_bytes, log_dropped, stragglers }
    }
}

fn end_of(status: ExitStatus) -> End {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => End::Exited { code },
        (None, Some(signal)) => End::Signaled { signal },
        (None, None) => End::Exited { code: -1 },
    }
}

/// Sends `SIGTERM` to the group and returns when to follow with `SIGKILL`.
fn terminate(pgid: u32, grace: Duration) -> Instant {
    let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGTERM);
    // A stopped process cannot act on SIGTERM until it is continued.
    let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGCONT);
    Instant::now() + grace
}

fn kill_group(pgid: u32) {
    let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
}

async fn read_into<R: AsyncRead + Unpin>(mut r: R, stream: Stream, tx: mpsc::Sender<(Stream, Vec<u8>)>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send((stream, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Splits stdout into lines for the agent parsers. A line longer than [`MAX_LINE`] is cut there:
/// structured agent output never comes close, and a runaway process must not grow memory.
struct LineSplitter {
    tx: Option<mpsc::UnboundedSender<String>>,
    partial: Vec<u8>,
    overlong: bool,
}

const MAX_LINE: usize = 4 << 20;

impl LineSplitter {
    fn new(tx: Option<mpsc::UnboundedSender<String>>) -> Self {
        LineSplitter { tx, partial: Vec::new(), overlong: false }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        if self.tx.is_none() {
            return;
        }
        while let Some(pos) = bytes.iter().position(|&b| b == b'\n') {
            self.append(&bytes[..pos]);
            self.emit();
            bytes = &bytes[pos + 1..];
        }
        self.append(bytes);
    }

    fn append(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.partial.len());
        if bytes.len() > room {
            self.overlong = true;
        }
        self.partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn emit(&mut self) {
        let mut line = String::from_utf8_lossy(&self.partial).into_owned();
        if line.ends_with('\r') {
            line.pop();
        }
        self.partial.clear();
        self.overlong = false;
        if let Some(tx) = &self.tx {
            let _ = tx.send(line);
        }
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
    }
}

/// Writes the first half of the limit straight to the file and keeps the last half in a ring,
/// so both how a command started and how it ended survive a flood of output. The head is not
/// buffered: each chunk read from the process is in the file at once, for whoever watches the
/// log of a long run (a slow test module prints a few bytes a minute).
///
/// With a redactor, output goes through it first and the limits apply to what it lets out: a
/// secret is replaced whole before any cut, and only the end of a partial line waits for the
/// rest of a secret that may not have arrived whole. Stdout and stderr each have their own:
/// a key printed in two pieces on one, with a line on the other between them, would otherwise
/// reach the file in two pieces that neither read as a key.
struct LogSink {
    file: Option<File>,
    /// For stdout and stderr, in this order.
    redact: Option<[StreamRedactor; 2]>,
    head_limit: u64,
    tail_limit: usize,
    written: u64,
    tail: VecDeque<u8>,
    dropped: u64,
    total: u64,
    failed: bool,
}

impl LogSink {
    fn create(path: Option<&Path>, limit: u64, redact: Option<Arc<Redactor>>) -> io::Result<LogSink> {
        let file = match path {
            Some(p) => {
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                Some(File::create(p)?)
            }
            None => None,
        };
        Ok(LogSink {
            // Nothing to redact where nothing is written.
            redact: redact
                .filter(|_| file.is_some())
                .map(|r| [StreamRedactor::new(r.clone()), StreamRedactor::new(r)]),
            file,
            head_limit: limit - limit / 2,
            tail_limit: (limit / 2) as usize,
            written: 0,
            tail: VecDeque::new(),
            dropped: 0,
            total: 0,
            failed: false,
        })
    }

    fn write(&mut self, stream: Stream, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        match &mut self.redact {
            Some(r) => {
                let out = r[stream as usize].push(bytes);
                self.keep(&out);
            }
            None => self.keep(bytes),
        }
    }

    /// Writes to the head while it has room, then keeps the last `tail_limit` bytes.
    fn keep(&mut self, mut bytes: &[u8]) {
        let Some(file) = &mut self.file else { return };
        if self.written < self.head_limit {
            let n = ((self.head_limit - self.written) as usize).min(bytes.len());
            if !self.failed && file.write_all(&bytes[..n]).is_err() {
                // Disk full or similar: keep supervising, stop logging.
                self.failed = true;
            }
            self.written += n as u64;
            bytes = &bytes[n..];
        }
        if bytes.is_empty() {
            return;
        }
        if bytes.len() >= self.tail_limit {
            self.dropped += self.tail.len() as u64 + (bytes.len() - self.tail_limit) as u64;
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_limit..]);
        } else {
            let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_limit);
            self.dropped += overflow as u64;
            self.tail.drain(..overflow);
            self.tail.extend(bytes);
        }
    }

    /// Writes what the redactors held and the kept tail; returns (total bytes seen, bytes
    /// dropped).
    fn finish(&mut self) -> (u64, u64) {
        if let Some(redact) = self.redact.take() {
            for mut r in redact {
                let rest = r.finish();
                self.keep(&rest);
            }
        }
        if let Some(file) = &mut self.file {
            if self.dropped > 0 {
                let _ = write!(file, "\n[baton: {} bytes of output omitted here]\n", self.dropped);
            }
            let (a, b) = self.tail.as_slices();
            let _ = file.write_all(a);
            let _ = file.write_all(b);
        }
        (self.total, self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-test-SECRETVALUE1234567890abcdef";

    fn sink(dir: &Path, limit: u64) -> LogSink {
        let redactor = Arc::new(Redactor::new([("OPENAI_API_KEY", KEY)]));
        LogSink::create(Some(&dir.join("log")), limit, Some(redactor)).unwrap()
    }

    /// A key printed in two pieces on stdout, with a line on stderr between the pieces, is
    /// still one key: each stream is redacted on its own.
    #[test]
    fn a_key_split_around_a_line_of_the_other_stream_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = sink(dir.path(), 1 << 20);
        log.write(Stream::Stdout, b"key: sk-test-SECRET");
        log.write(Stream::Stderr, b"warning: slow\n");
        log.write(Stream::Stdout, b"VALUE1234567890abcdef\n");
        log.write(Stream::Stderr, b"no newline at the end");
        log.finish();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("log")).unwrap(),
            "warning: slow\nkey: [redacted: OPENAI_API_KEY]\nno newline at the end"
        );
    }

    /// The size limit cuts what the redactor let out: the head and the tail keep whole
    /// markers or none, and never a piece of the key.
    #[test]
    fn the_limit_applies_to_redacted_output() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = sink(dir.path(), 200);
        for _ in 0..100 {
            log.write(Stream::Stdout, format!("{KEY}\n").as_bytes());
        }
        let (total, dropped) = log.finish();
        assert_eq!(total, 100 * (KEY.len() as u64 + 1));
        let text = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert!(dropped > 0 && text.contains("bytes of output omitted here"), "{text}");
        assert!(!text.contains("sk-test") && !text.contains("abcdef"), "{text}");
    }
}
