//! `host:port`: how the configuration writes an address that a node or a
//! server is reached at. The host is a name (`witness.example:7400`) or an
//! IP literal (`127.0.0.1:7400`, an IPv6 address in brackets:
//! `[2001:db8::1]:7400`).
//!
//! A name is resolved with the system resolver (`getaddrinfo`, so
//! `/etc/hosts` and nsswitch apply) each time it is needed, that is each
//! time a connection is made; no answer is kept. Moving a member to another
//! address then needs only a DNS (or hosts file) change and a reconnect.
//! This module only parses and resolves: it never connects.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// A host and a port, as written in the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    host: Host,
    port: u16,
}

/// The host part of a [`HostPort`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Host {
    /// An IP literal: used as it is.
    Ip(IpAddr),
    /// A DNS name: resolved each time it is used.
    Name(String),
}

/// Why a text is not a `host:port`; each message quotes the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostPortError {
    /// No `:port` at the end.
    #[error("{0:?} has no port: write host:port, e.g. witness.example:7400 (an IPv6 address in brackets, [2001:db8::1]:7400)")]
    NoPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("{value:?}: {port:?} is not a port (1 to 65535)")]
    BadPort {
        /// The whole text.
        value: String,
        /// The part after the last `:`.
        port: String,
    },
    /// The host is neither an IP address nor a DNS name.
    #[error("{value:?}: {host:?} is neither an IP address nor a host name: {why}")]
    BadHost {
        /// The whole text.
        value: String,
        /// The host part.
        host: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// A name that gave no address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{address} does not resolve: {detail}")]
pub struct Unresolvable {
    /// The address whose name did not resolve.
    pub address: HostPort,
    /// What the resolver said.
    pub detail: String,
}

impl HostPort {
    /// The socket address, when the host is an IP literal.
    pub fn ip_literal(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Name(_) => None,
        }
    }

    /// Whether `other` names the same host and port (names compared
    /// without regard to case, as DNS does).
    pub fn same_as(&self, other: &HostPort) -> bool {
        self.port == other.port
            && match (&self.host, &other.host) {
                (Host::Ip(a), Host::Ip(b)) => a == b,
                (Host::Name(a), Host::Name(b)) => a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.')),
                _ => false,
            }
    }

    /// Every address the host has now, in the resolver's order, without
    /// repeats (an IP literal: itself). Asks the system resolver afresh.
    pub async fn resolve(&self) -> Result<Vec<SocketAddr>, Unresolvable> {
        match &self.host {
            Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, self.port)]),
            Host::Name(name) => {
                let found = tokio::net::lookup_host((name.as_str(), self.port)).await;
                self.addresses(found.map(Iterator::collect))
            }
        }
    }

    /// [`HostPort::resolve`] for code outside the async runtime
    /// (`check-config`); it blocks while the resolver answers.
    pub fn resolve_blocking(&self) -> Result<Vec<SocketAddr>, Unresolvable> {
        use std::net::ToSocketAddrs;
        match &self.host {
            Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, self.port)]),
            Host::Name(name) => self.addresses((name.as_str(), self.port).to_socket_addrs().map(Iterator::collect)),
        }
    }

    fn addresses(&self, found: std::io::Result<Vec<SocketAddr>>) -> Result<Vec<SocketAddr>, Unresolvable> {
        let unresolvable = |detail: String| Unresolvable { address: self.clone(), detail };
        let mut found = found.map_err(|e| unresolvable(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        found.retain(|a| seen.insert(*a));
        if found.is_empty() {
            return Err(unresolvable("the resolver gave no address".into()));
        }
        Ok(found)
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}:{}", self.port),
            Host::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

impl FromStr for HostPort {
    type Err = HostPortError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let bad_host = |host: &str, why| HostPortError::BadHost { value: value.into(), host: host.into(), why };
        let (host, port) = if let Some(rest) = value.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or_else(|| bad_host(value, "no ] after the IPv6 address"))?;
            let port = after.strip_prefix(':').ok_or_else(|| HostPortError::NoPort(value.into()))?;
            let ip = Ipv6Addr::from_str(inside).map_err(|_| bad_host(inside, "not an IPv6 address inside [ ]"))?;
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            let (host, port) = value.rsplit_once(':').ok_or_else(|| HostPortError::NoPort(value.into()))?;
            if host.contains(':') {
                return Err(bad_host(host, "an IPv6 address goes in brackets: [2001:db8::1]:7400"));
            }
            match Ipv4Addr::from_str(host) {
                Ok(ip) => (Host::Ip(IpAddr::V4(ip)), port),
                Err(_) => (Host::Name(checked_name(host).map_err(|why| bad_host(host, why))?.to_owned()), port),
            }
        };
        let bad_port = || HostPortError::BadPort { value: value.into(), port: port.into() };
        // Digits only: `parse` would take a sign.
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err(bad_port()),
        };
        Ok(HostPort { host, port })
    }
}

/// `name` if it is a DNS host name: labels of letters, digits, `-` and `_`
/// (not starting or ending with `-`), 1 to 63 characters each, 253 in
/// all, a final dot allowed, and a last label that is not all digits (so
/// that a mistyped IPv4 address is not taken for a name).
fn checked_name(name: &str) -> Result<&str, &'static str> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err("empty");
    }
    if bare.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in bare.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label has 1 to 63 characters");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err("a name has only letters, digits, '-', '_' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label does not start or end with '-'");
        }
    }
    if bare.rsplit('.').next().is_some_and(|last| last.chars().all(|c| c.is_ascii_digit())) {
        return Err("not an IPv4 address, and a name does not end in a number");
    }
    Ok(name)
}

impl<'de> serde::Deserialize<'de> for HostPort {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> HostPort {
        text.parse().unwrap_or_else(|e| panic!("{text:?} refused: {e}"))
    }

    #[test]
    fn names_and_ip_literals_parse_and_print_as_written() {
        for text in ["127.0.0.1:7400", "[::1]:7400", "[2001:db8::1]:1", "witness.example:65535", "localhost:7400"] {
            assert_eq!(parsed(text).to_string(), text);
        }
        assert_eq!(parsed("127.0.0.1:7400").ip_literal(), Some(SocketAddr::from(([127, 0, 0, 1], 7400))));
        assert_eq!(parsed("[::1]:7").ip_literal(), Some("[::1]:7".parse().expect("literal")));
        assert_eq!(parsed("site-b.example.:7400").host, Host::Name("site-b.example.".into()));
        assert_eq!(parsed("my_host-1.example:80").port, 80);
        assert_eq!(parsed("localhost:7400").ip_literal(), None);
    }

    #[test]
    fn bad_addresses_are_refused_quoting_the_value() {
        let cases = [
            ("witness.example", "has no port"),
            ("witness.example:", "is not a port"),
            ("witness.example:0", "is not a port"),
            ("witness.example:65536", "is not a port"),
            ("witness.example:+80", "is not a port"),
            ("witness.example:http", "is not a port"),
            (":7400", "empty"),
            ("::1:7400", "an IPv6 address goes in brackets"),
            ("[::1]7400", "has no port"),
            ("[::1:7400", "no ]"),
            ("[witness]:7400", "not an IPv6 address inside"),
            ("127.0.0.256:7400", "does not end in a number"),
            ("wit ness:7400", "only letters, digits"),
            ("-witness:7400", "does not start or end with '-'"),
            ("a..b:7400", "1 to 63 characters"),
        ];
        for (text, problem) in cases {
            let error = text.parse::<HostPort>().expect_err(text).to_string();
            assert!(error.contains(problem), "{text:?}: {error}");
            assert!(error.contains(&format!("{text:?}")), "{text:?}: the error does not quote it: {error}");
        }
        let long = format!("{}.example:80", ["a"; 130].join("."));
        assert!(long.parse::<HostPort>().expect_err("long").to_string().contains("253"));
        assert!(format!("{}:80", "a".repeat(64)).parse::<HostPort>().is_err());
        assert!(format!("{}:80", "a".repeat(63)).parse::<HostPort>().is_ok());
    }

    #[test]
    fn the_same_host_is_recognised_whatever_the_case_or_final_dot() {
        assert!(parsed("Witness.Example:7400").same_as(&parsed("witness.example.:7400")));
        assert!(!parsed("witness.example:7400").same_as(&parsed("witness.example:7401")));
        assert!(parsed("127.0.0.1:1").same_as(&parsed("127.0.0.1:1")));
        assert!(!parsed("127.0.0.1:1").same_as(&parsed("localhost:1")));
    }

    #[tokio::test]
    async fn a_name_resolves_through_the_system_resolver_and_a_literal_to_itself() {
        // /etc/hosts has localhost on every machine this runs on.
        let found = parsed("localhost:7400").resolve().await.expect("localhost resolves");
        assert!(found.iter().all(|a| a.ip().is_loopback() && a.port() == 7400), "{found:?}");
        assert_eq!(parsed("localhost:7400").resolve_blocking().expect("resolves"), found);
        let literal = parsed("127.0.0.1:9").resolve().await.expect("a literal");
        assert_eq!(literal, vec![SocketAddr::from(([127, 0, 0, 1], 9))]);
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_says_which_and_why() {
        // `.invalid` never resolves (RFC 6761).
        let address = parsed("site-b.invalid:7000");
        let error = address.resolve().await.expect_err("resolved");
        assert_eq!(error.address, address);
        let text = error.to_string();
        assert!(text.starts_with("site-b.invalid:7000 does not resolve: "), "{text}");
        assert!(text.len() > "site-b.invalid:7000 does not resolve: ".len(), "no reason: {text}");
        assert!(address.resolve_blocking().is_err());
    }
}
