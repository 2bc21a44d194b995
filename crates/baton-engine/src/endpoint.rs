//! `[[agent]] network = "endpoint"`: an agent that reaches its model and nothing else.
//!
//! Such an agent runs in a network of its own, whose one way out is a relay to its
//! `base_url`'s host and port ([`baton_exec::proxy`] says how, and why the agent keeps its URL
//! and its TLS). This module decides, before a run starts, whether that can be had: only an
//! executor that confines the network can give it, and never is such an agent run with the
//! whole network instead. Then, for each candidate, it opens the relay in the candidate's
//! artifact directory and points the agent's confinement at it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_agents::Agent;
use baton_config::{Endpoint, EndpointHost, SandboxMode};
use baton_exec::{Confinement, Executor, Network, Relay, Route, Spec};

use crate::EngineError;

/// Proxy variables the agent does not get: it reaches its endpoint directly, and a proxy
/// could not be reached from its sandbox anyway.
const PROXY_VARS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// The longest unix socket path the kernel takes is 107 bytes; a candidate's artifact
/// directory deep in a repository may be longer.
const MAX_SOCKET_PATH: usize = 100;

/// Checks, before anything starts, that every agent held to its endpoint can be: the run's
/// executor confines the network, the front end gave the forwarder, and the port can be
/// listened on in the sandbox.
pub(crate) fn check(
    agents: &[Arc<dyn Agent>],
    executor: &dyn Executor,
    mode: SandboxMode,
    forwarder: Option<&Path>,
) -> Result<(), EngineError> {
    for agent in agents {
        let Some(endpoint) = agent.only_endpoint()? else { continue };
        let held = |why: String| {
            EngineError::Sandbox(format!(
                "agent `{}` may reach only {} (network = \"endpoint\"), but {why}",
                agent.name(),
                endpoint.origin()
            ))
        };
        if !executor.confines_network() {
            let why = match mode {
                SandboxMode::Off => "run.sandbox is \"off\"".to_owned(),
                _ => "no sandbox here can confine its network".to_owned(),
            };
            return Err(held(format!(
                "{why}: baton will not run it with the whole network (install bubblewrap and set \
                 run.sandbox = \"bwrap\", or give the agent network = \"host\")"
            )));
        }
        if forwarder.is_none() {
            return Err(held("this front end cannot start the relay inside its sandbox".into()));
        }
        if endpoint.port < 1024 && !baton_exec::proxy::privileged_ports_allowed() {
            return Err(held(format!(
                "port {} is below 1024, which its sandbox may listen on only when baton runs as root \
                 (use an endpoint on a port of 1024 or above, such as a relay of your own on 127.0.0.1, \
                 or give the agent network = \"host\")",
                endpoint.port
            )));
        }
    }
    Ok(())
}

/// One candidate's agent, held to its endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) endpoint: Endpoint,
    forwarder: PathBuf,
    /// The candidate's artifact directory: the relay's socket and the hosts file go there.
    dir: PathBuf,
}

impl Held {
    /// `agent`'s, for the candidate whose artifacts are in `dir`; `None` when it has the
    /// network.
    pub(crate) fn of(
        agent: &dyn Agent,
        forwarder: Option<&Path>,
        dir: &Path,
    ) -> Result<Option<Held>, EngineError> {
        let Some(endpoint) = agent.only_endpoint()? else { return Ok(None) };
        let forwarder = forwarder
            .ok_or_else(|| {
                EngineError::Sandbox(format!(
                    "agent `{}`: no forwarder to hold it to its endpoint",
                    agent.name()
                ))
            })?
            .to_owned();
        Ok(Some(Held { endpoint, forwarder, dir: dir.to_owned() }))
    }

    /// Starts the relay and confines `spec` to it: a private network, left only by the route
    /// to the endpoint, and no proxy variables. The relay must outlive the process.
    pub(crate) fn open(&self, spec: &mut Spec, confine: &mut Confinement) -> Result<Opened, String> {
        let e = &self.endpoint;
        let socket = self.dir.join("endpoint.sock");
        let (socket, scratch) = if socket.as_os_str().len() <= MAX_SOCKET_PATH {
            (socket, None)
        } else {
            let scratch = std::env::temp_dir().join(format!("baton-endpoint-{}", std::process::id()));
            let scratch = scratch.join(self.dir.file_name().unwrap_or_default());
            std::fs::create_dir_all(&scratch)
                .map_err(|err| format!("cannot create {}: {err}", scratch.display()))?;
            (scratch.join("endpoint.sock"), Some(scratch))
        };
        let (listen, hosts) = match &e.host {
            EndpointHost::Loopback(ip) => {
                let ip = match ip {
                    IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    ip => *ip,
                };
                (vec![SocketAddr::new(ip, e.port)], None)
            }
            EndpointHost::Name(name) => {
                // The name is the endpoint's, inside: 127.0.0.1, where the relay listens.
                let mut text = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n");
                if name != "localhost" {
                    text.push_str(&format!("127.0.0.1\t{name}\n"));
                }
                let hosts = self.dir.join("hosts");
                std::fs::write(&hosts, text)
                    .map_err(|err| format!("cannot write {}: {err}", hosts.display()))?;
                let listen = vec![
                    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), e.port),
                    SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), e.port),
                ];
                (listen, Some(hosts))
            }
        };
        let relay = Relay::start(&socket, &e.host.to_string(), e.port)
            .map_err(|err| format!("cannot listen on {}: {err}", socket.display()))?;
        confine.network = Network::Private;
        confine.route = Some(Route { forwarder: self.forwarder.clone(), socket, listen, hosts });
        spec.env.retain(|(k, _)| !PROXY_VARS.iter().any(|p| k == p));
        spec.env_remove.extend(PROXY_VARS.iter().map(Into::into));
        Ok(Opened { _relay: relay, scratch })
    }
}

/// A candidate's open relay: it stops, and what it made goes, when dropped.
pub(crate) struct Opened {
    _relay: Relay,
    scratch: Option<PathBuf>,
}

impl Drop for Opened {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// For the run header, when any candidate is held to its endpoint: which network each has.
pub(crate) fn notes(slots: &[crate::dispatcher::Slot]) -> Vec<String> {
    let reach: Vec<Option<String>> =
        slots.iter().map(|s| s.agent.only_endpoint().ok().flatten().map(|e| e.origin())).collect();
    if reach.iter().all(Option::is_none) {
        return Vec::new();
    }
    slots
        .iter()
        .zip(reach)
        .map(|(s, r)| {
            let network = match r {
                Some(origin) => format!("only {origin}"),
                None => "the machine's".to_owned(),
            };
            format!("{} ({}): network: {network}", s.id, s.agent.name())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(url: &str, dir: &Path) -> Held {
        Held { endpoint: Endpoint::parse(url).unwrap(), forwarder: "/bin/baton".into(), dir: dir.to_owned() }
    }

    #[tokio::test]
    async fn a_held_agent_gets_a_private_network_a_route_to_its_endpoint_and_no_proxy() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec =
            Spec::new("agent", dir.path()).env("HTTPS_PROXY", "http://proxy:3128").env("KEEP", "1");
        let mut c = Confinement::default().network(Network::Host);
        let opened = held("https://LLM.example.com:8443/v1", dir.path()).open(&mut spec, &mut c).unwrap();
        assert_eq!(c.network, Network::Private);
        let route = c.route.clone().unwrap();
        let listen: Vec<String> = route.listen.iter().map(ToString::to_string).collect();
        assert_eq!(listen, ["127.0.0.1:8443", "[::1]:8443"]);
        let hosts = std::fs::read_to_string(route.hosts.unwrap()).unwrap();
        assert!(hosts.contains("127.0.0.1\tllm.example.com\n"), "{hosts}");
        assert!(route.socket.exists());
        let env: Vec<_> = spec.env.iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        assert_eq!(env, ["KEEP"]);
        assert!(spec.env_remove.iter().any(|k| k == "https_proxy"));
        drop(opened);
        assert!(!route.socket.exists());

        // A loopback address needs no hosts file: the relay listens on it.
        let mut c = Confinement::default();
        let _opened = held("http://127.0.0.2:9000", dir.path()).open(&mut spec, &mut c).unwrap();
        let route = c.route.unwrap();
        assert_eq!((route.listen[0].to_string(), route.hosts), ("127.0.0.2:9000".to_owned(), None));
    }

    #[tokio::test]
    async fn a_socket_too_deep_for_the_kernel_goes_to_the_temporary_directory_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(100)).join("c1");
        std::fs::create_dir_all(&deep).unwrap();
        let mut c = Confinement::default();
        let opened = held("http://127.0.0.1:9000", &deep).open(&mut Spec::new("a", &deep), &mut c).unwrap();
        let socket = c.route.unwrap().socket;
        assert!(socket.starts_with(std::env::temp_dir()) && socket.exists(), "{}", socket.display());
        drop(opened);
        assert!(!socket.parent().unwrap().exists());
    }
}
