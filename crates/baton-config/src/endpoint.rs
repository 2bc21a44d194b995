//! An agent's model endpoint, as `network = "endpoint"` needs it: where to connect, and what
//! the agent's sandbox must stand in for.

use std::fmt;
use std::net::IpAddr;

/// The host, port and scheme of an agent's `base_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as configured.
    pub url: String,
    pub tls: bool,
    pub host: EndpointHost,
    pub port: u16,
}

/// How a `base_url` names its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointHost {
    /// A name the agent resolves (`localhost`, `llm.internal`).
    Name(String),
    /// A loopback address (`127.0.0.1`, `[::1]`). Other literal addresses are refused: inside
    /// its sandbox nothing can answer for them (see [`Endpoint::parse`]).
    Loopback(IpAddr),
}

/// A `base_url` an agent cannot be held to, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadEndpoint(String);

impl Endpoint {
    /// Reads `url` (`http(s)://host[:port][/path]`). The host must be a name or a loopback
    /// address: an agent confined to its endpoint connects to what its URL names, and inside
    /// its own network namespace only a loopback address, or a name baton points at one, can
    /// be answered by baton's relay. The message says what is wrong.
    pub fn parse(url: &str) -> Result<Endpoint, BadEndpoint> {
        Endpoint::read(url).map_err(BadEndpoint)
    }

    fn read(url: &str) -> Result<Endpoint, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("`{url}` is not an http:// or https:// URL"));
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        // Credentials in the URL are the agent's business; the host is what follows them.
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) =
                bracketed.split_once(']').ok_or_else(|| format!("`{url}` has an unclosed `[`"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| format!("`{url}`: a port follows `]:`"))?),
            };
            (host, port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{url}` names no host"));
        }
        let port = match port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(format!("`{url}`: `{p}` is not a port (1 to 65535)")),
            },
        };
        let host = match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() || ip.is_unspecified() => EndpointHost::Loopback(ip),
            Ok(ip) => {
                return Err(format!(
                    "`{url}` names the address {ip}: inside the agent's sandbox nothing can answer for it \
                     (give the endpoint by a host name, or a loopback address)"
                ));
            }
            Err(_) => EndpointHost::Name(host.to_ascii_lowercase()),
        };
        Ok(Endpoint { url: url.to_owned(), tls, host, port })
    }

    /// `scheme://host:port`, the part of the URL the agent is held to.
    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        match &self.host {
            EndpointHost::Loopback(IpAddr::V6(ip)) => format!("{scheme}://[{ip}]:{}", self.port),
            host => format!("{scheme}://{host}:{}", self.port),
        }
    }
}

impl fmt::Display for EndpointHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointHost::Name(n) => f.write_str(n),
            EndpointHost::Loopback(ip) => write!(f, "{ip}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_port_and_scheme() {
        let e = Endpoint::parse("http://127.0.0.1:8080/v1").unwrap();
        assert_eq!((e.tls, e.port, e.origin()), (false, 8080, "http://127.0.0.1:8080".into()));
        assert_eq!(e.host, EndpointHost::Loopback("127.0.0.1".parse().unwrap()));
        let e = Endpoint::parse("https://user:pw@LLM.example.com/v1?x=1").unwrap();
        assert_eq!(e.host, EndpointHost::Name("llm.example.com".into()));
        assert_eq!((e.tls, e.port), (true, 443));
        assert_eq!(Endpoint::parse("http://[::1]:9/").unwrap().origin(), "http://[::1]:9");
        assert_eq!(Endpoint::parse("http://localhost").unwrap().port, 80);
    }

    #[test]
    fn what_cannot_be_an_endpoint_is_refused_saying_why() {
        for (url, says) in [
            ("ftp://x", "not an http"),
            ("127.0.0.1:8080", "not an http"),
            ("http://:80", "no host"),
            ("http://h:0", "not a port"),
            ("http://h:http", "not a port"),
            ("http://[::1", "unclosed"),
            ("http://10.1.2.3:8000/v1", "nothing can answer for it"),
        ] {
            let e = Endpoint::parse(url).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
        }
    }
}
