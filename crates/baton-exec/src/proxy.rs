//! An agent that reaches its model's endpoint and nothing else.
//!
//! # How it works
//!
//! The agent runs in a network namespace of its own ([`Network::Private`](crate::Network)):
//! nothing but a loopback, so no address outside it answers. Two small relays, neither of
//! which reads what it carries, make one way out:
//!
//! ```text
//!  sandbox (own network)                       |  baton (the machine's network)
//!  agent --TCP--> 127.0.0.1:PORT  [forward] --unix socket--> [Relay] --TCP--> endpoint HOST:PORT
//! ```
//!
//! - Outside, a [`Relay`] listens on a unix socket in a directory of the candidate's and, for
//!   each connection, opens one to the endpoint's host and port, the only place it ever
//!   connects to, and copies bytes both ways until both sides are done.
//! - Inside, [`forward`] (the baton binary itself, run as `baton __forward`; see
//!   [`Route::command`]) listens on the endpoint's port on the sandbox's own loopback, relays
//!   each connection to that socket (a file, which the sandbox sees like any other: an
//!   abstract socket would belong to baton's network namespace, out of reach), and runs the
//!   agent as its child, passing on the signals it gets and its exit status.
//!
//! The agent keeps the URL it was given. An endpoint on a loopback address is answered where
//! the agent looks for it; one given by a host name is answered because the sandbox's
//! `/etc/hosts` ([`Route::hosts`]) names that host 127.0.0.1. TLS stays end to end: the relays
//! carry its bytes, so the agent still checks the server's certificate for the name it asked
//! for, and the server sees the name (SNI, `Host`) the agent sent. That is also why an endpoint
//! given by a literal address other than a loopback one cannot be served (inside the
//! namespace nothing can have that address), and why one on a port below 1024 needs baton to
//! run as root (elsewhere bubblewrap starts the agent in a user namespace that does not own
//! its network namespace, so it may not bind such a port there).

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::task::JoinSet;

/// The subcommand of the forwarder program that runs [`forward`].
pub const FORWARD_COMMAND: &str = "__forward";

/// How a confined process reaches its one endpoint (see the [module](self) documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The program that relays inside the sandbox and runs the process as its child: the baton
    /// binary, run as `PROGRAM __forward --socket SOCKET --listen ADDR... -- COMMAND...`.
    pub forwarder: PathBuf,
    /// The unix socket a [`Relay`] serves.
    pub socket: PathBuf,
    /// Where the process looks for its endpoint, inside its sandbox.
    pub listen: Vec<SocketAddr>,
    /// A file that stands in for `/etc/hosts` inside the sandbox (one that names the endpoint's
    /// host 127.0.0.1), when the endpoint is given by a name.
    pub hosts: Option<PathBuf>,
}

impl Route {
    /// The command line that runs `program` with `args` behind the forwarder.
    pub fn command(&self, program: &OsStr, args: &[OsString]) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            self.forwarder.clone().into(),
            FORWARD_COMMAND.into(),
            "--socket".into(),
            self.socket.clone().into(),
        ];
        for addr in &self.listen {
            a.push("--listen".into());
            a.push(addr.to_string().into());
        }
        a.push("--".into());
        a.push(program.to_owned());
        a.extend(args.iter().cloned());
        a
    }

    /// Whether it listens on a port below 1024, which only a privileged process may bind.
    pub fn privileged_port(&self) -> bool {
        self.listen.iter().any(|a| a.port() < 1024)
    }
}

/// Whether a sandbox started by this process may listen on a port below 1024 (see the
/// [module](self) documentation): only when it runs as root.
pub fn privileged_ports_allowed() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The outer relay: connections to its unix socket go to one host and port. It stops, and its
/// socket goes, when dropped.
#[derive(Debug)]
pub struct Relay {
    socket: PathBuf,
    task: tokio::task::JoinHandle<()>,
    connections: Arc<AtomicUsize>,
}

impl Relay {
    /// Listens on `socket` (replacing a file left there) and relays to `host`:`port`. Call it
    /// within a tokio runtime.
    pub fn start(socket: &Path, host: &str, port: u16) -> std::io::Result<Relay> {
        match std::fs::remove_file(socket) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(socket)?;
        let connections = Arc::new(AtomicUsize::new(0));
        let (count, host) = (connections.clone(), host.to_owned());
        let task = tokio::spawn(async move {
            // Dropped with the task: every open connection ends with the relay.
            let mut open = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((inside, _)) = accepted else { continue };
                        count.fetch_add(1, Ordering::Relaxed);
                        let host = host.clone();
                        open.spawn(async move {
                            match TcpStream::connect((host.as_str(), port)).await {
                                Ok(outside) => {
                                    let _ = outside.set_nodelay(true);
                                    splice(inside, outside).await;
                                }
                                Err(e) => tracing::debug!(%host, port, "endpoint relay cannot connect: {e}"),
                            }
                        });
                    }
                    Some(_) = open.join_next(), if !open.is_empty() => {}
                }
            }
        });
        Ok(Relay { socket: socket.to_owned(), task, connections })
    }

    /// How many connections it has taken so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Copies bytes both ways until both directions are closed; each side's end of writing is
/// passed on to the other (a half-close), and an error on either ends both.
async fn splice<A, B>(mut a: A, mut b: B)
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = copy_bidirectional(&mut a, &mut b).await;
}

/// Binds each of `addrs` for [`forward`]. An IPv6 address is skipped where the namespace has
/// no IPv6 loopback; any other failure is an error naming the address.
pub fn listen(addrs: &[SocketAddr]) -> Result<Vec<std::net::TcpListener>, String> {
    let mut out = Vec::new();
    for addr in addrs {
        match std::net::TcpListener::bind(addr) {
            Ok(l) => out.push(l),
            Err(e) if addr.is_ipv6() && e.kind() == std::io::ErrorKind::AddrNotAvailable => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && addr.port() < 1024 => {
                return Err(format!(
                    "cannot listen on {addr}: {e} (a port below 1024 needs baton to run as root)"
                ));
            }
            Err(e) => return Err(format!("cannot listen on {addr}: {e}")),
        }
    }
    if out.is_empty() {
        return Err("no address to listen on".into());
    }
    Ok(out)
}

/// Why [`forward`] could not run its command.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("{0}")]
    Listen(String),
    #[error("cannot start `{}`: {source}", program.to_string_lossy())]
    Spawn {
        program: OsString,
        #[source]
        source: std::io::Error,
    },
}

impl ForwardError {
    /// The exit status a shell gives for the same failure: 127 for a program not found, 126
    /// for one that cannot run, 125 when the forwarder itself could not set up.
    pub fn exit_code(&self) -> i32 {
        match self {
            ForwardError::Listen(_) => 125,
            ForwardError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 127,
            ForwardError::Spawn { .. } => 126,
        }
    }
}

/// The inner relay: each connection taken by `listeners` goes to the unix socket `socket`,
/// while `program` runs with `args`, as a child in a process group of its own (it inherits
/// stdin, stdout, stderr, the working directory and the environment). The signals that stop
/// a process (TERM, INT, HUP, QUIT) are passed on to its group; they do not stop the relay,
/// which ends with the child. Returns its exit code, or 128 + N when signal N ended it (as a
/// shell reports it).
pub async fn forward(
    listeners: Vec<std::net::TcpListener>,
    socket: &Path,
    program: &OsStr,
    args: &[OsString],
) -> Result<i32, ForwardError> {
    use nix::sys::signal::Signal;
    use tokio::signal::unix::{SignalKind, signal};
    // Whatever the process leaves behind is reaped by the sandbox's init, not by this relay.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_child_subreaper(false);
    let mut accepting = JoinSet::new();
    for l in listeners {
        l.set_nonblocking(true).map_err(|e| ForwardError::Listen(e.to_string()))?;
        let l = TcpListener::from_std(l).map_err(|e| ForwardError::Listen(e.to_string()))?;
        let socket = socket.to_owned();
        accepting.spawn(async move {
            let mut open = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = l.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        let _ = tcp.set_nodelay(true);
                        let socket = socket.clone();
                        open.spawn(async move {
                            if let Ok(unix) = UnixStream::connect(&socket).await {
                                splice(tcp, unix).await;
                            }
                        });
                    }
                    Some(_) = open.join_next(), if !open.is_empty() => {}
                }
            }
        });
    }
    // Handlers, not SIG_IGN: the child starts with each of these at its default.
    let handle = |kind: SignalKind| {
        signal(kind).map_err(|e| ForwardError::Listen(format!("cannot handle signals: {e}")))
    };
    let (mut term, mut int) = (handle(SignalKind::terminate())?, handle(SignalKind::interrupt())?);
    let (mut hup, mut quit) = (handle(SignalKind::hangup())?, handle(SignalKind::quit())?);
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .process_group(0)
        .spawn()
        .map_err(|source| ForwardError::Spawn { program: program.to_owned(), source })?;
    let group = child.id().map(|p| nix::unistd::Pid::from_raw(p as i32));
    let pass = |sig: Signal| {
        if let Some(group) = group {
            let _ = nix::sys::signal::killpg(group, sig);
        }
    };
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = term.recv() => pass(Signal::SIGTERM),
            _ = int.recv() => pass(Signal::SIGINT),
            _ = hup.recv() => pass(Signal::SIGHUP),
            _ = quit.recv() => pass(Signal::SIGQUIT),
        }
    };
    accepting.abort_all();
    Ok(match status {
        Ok(s) => s.code().or_else(|| s.signal().map(|n| 128 + n)).unwrap_or(1),
        Err(_) => 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Held by the tests that run [`forward`]: one of them signals this whole process, which
    /// every forwarder running at that moment would pass on.
    static FORWARDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// A server that reads what it is sent until the sender is done writing, answers
    /// `got: WHAT`, and closes.
    async fn answering_server() -> u16 {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = server.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).await.unwrap();
                    s.write_all(format!("got: {}", String::from_utf8_lossy(&got)).as_bytes()).await.unwrap();
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn the_relay_carries_bytes_both_ways_and_closes_cleanly() {
        let port = answering_server().await;
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("endpoint.sock");
        std::fs::write(&socket, "left by a crash").unwrap();
        let relay = Relay::start(&socket, "127.0.0.1", port).unwrap();
        for round in ["one", "two"] {
            let mut c = UnixStream::connect(&socket).await.unwrap();
            c.write_all(round.as_bytes()).await.unwrap();
            // Our end of writing reaches the server as its end of reading, and its close
            // reaches us as ours.
            c.shutdown().await.unwrap();
            let mut reply = String::new();
            c.read_to_string(&mut reply).await.unwrap();
            assert_eq!(reply, format!("got: {round}"));
        }
        assert_eq!(relay.connections(), 2);
        drop(relay);
        assert!(!socket.exists(), "its socket goes with it");
        assert!(UnixStream::connect(&socket).await.is_err());
    }

    #[tokio::test]
    async fn a_relay_to_an_endpoint_that_is_down_closes_the_connection() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s");
        let _relay = Relay::start(&socket, "127.0.0.1", port).unwrap();
        let mut c = UnixStream::connect(&socket).await.unwrap();
        let mut reply = Vec::new();
        let _ = c.read_to_end(&mut reply).await;
        assert!(reply.is_empty());
    }

    #[tokio::test]
    async fn the_forwarder_relays_its_port_to_the_socket_and_exits_as_its_command_did() {
        let _one = FORWARDING.lock().await;
        let port = answering_server().await;
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("endpoint.sock");
        let _relay = Relay::start(&socket, "127.0.0.1", port).unwrap();
        let listeners = listen(&["127.0.0.1:0".parse().unwrap()]).unwrap();
        let inner = listeners[0].local_addr().unwrap().port();
        let out = dir.path().join("reply");
        let script = format!(
            "import socket\nc = socket.create_connection(('127.0.0.1', {inner}))\nc.sendall(b'ping')\n\
             c.shutdown(socket.SHUT_WR)\nopen('{}', 'wb').write(c.makefile('rb').read())\nraise SystemExit(3)\n",
            out.display()
        );
        let code =
            forward(listeners, &socket, "python3".as_ref(), &["-c".into(), script.into()]).await.unwrap();
        assert_eq!(code, 3);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "got: ping");

        let code = forward(
            listen(&["127.0.0.1:0".parse().unwrap()]).unwrap(),
            &socket,
            "sh".as_ref(),
            &["-c".into(), "kill -KILL $$".into()],
        )
        .await
        .unwrap();
        assert_eq!(code, 128 + 9, "killed by a signal, it exits as a shell says so");
        let missing = forward(
            listen(&["127.0.0.1:0".parse().unwrap()]).unwrap(),
            &socket,
            "baton-no-such-program".as_ref(),
            &[],
        )
        .await
        .unwrap_err();
        assert_eq!(missing.exit_code(), 127, "{missing}");
    }

    #[tokio::test]
    async fn the_forwarder_passes_a_stop_signal_to_its_command_and_outlives_it() {
        let _one = FORWARDING.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let script = format!("trap 'exit 7' TERM; sleep 30 & touch {}; wait", ready.display());
        let run = tokio::spawn(async move {
            let listeners = listen(&["127.0.0.1:0".parse().unwrap()]).unwrap();
            forward(listeners, Path::new("/nonexistent"), "sh".as_ref(), &["-c".into(), script.into()]).await
        });
        while !ready.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // As baton's supervisor stops a sandbox: the signal reaches the forwarder.
        nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGTERM).unwrap();
        assert_eq!(run.await.unwrap().unwrap(), 7, "the command got the signal, the forwarder waited for it");
    }

    #[test]
    fn the_route_runs_the_command_behind_the_forwarder() {
        let route = Route {
            forwarder: "/usr/bin/baton".into(),
            socket: "/run/s".into(),
            listen: vec!["127.0.0.1:443".parse().unwrap(), "[::1]:443".parse().unwrap()],
            hosts: None,
        };
        let line = route.command("claude".as_ref(), &["-p".into()]);
        let line: Vec<&str> = line.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            line,
            [
                "/usr/bin/baton",
                "__forward",
                "--socket",
                "/run/s",
                "--listen",
                "127.0.0.1:443",
                "--listen",
                "[::1]:443",
                "--",
                "claude",
                "-p"
            ]
        );
        assert!(route.privileged_port());
    }
}
