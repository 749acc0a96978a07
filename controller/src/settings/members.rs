//! Rules for `[[members]]` that the protocol core does not need but the
//! daemon does: names fit for DNS fences and TLS certificates, and addresses
//! the other nodes can connect to.

use std::net::SocketAddr;

use super::{BadSetting, MemberSection, NodeSection};
use crate::host_port::HostPort;

/// The first member that breaks a rule: its key (`members[i].field`) and
/// the problem.
pub(super) fn check(members: &[MemberSection]) -> Result<(), BadSetting> {
    for (i, m) in members.iter().enumerate() {
        let key = |field: &str| format!("members[{i}].{field}");
        crate::member_name::check(&m.name).map_err(|e| BadSetting::new(key("name"), e.to_string()))?;
        if let Some((j, o)) = members[..i].iter().enumerate().find(|(_, o)| o.name.eq_ignore_ascii_case(&m.name)) {
            if o.name != m.name {
                return Err(BadSetting::new(
                    key("name"),
                    format!(
                        "{:?} differs from members[{j}].name {:?} only in case; DNS names, and so the nodes' \
                         certificates, ignore case",
                        m.name, o.name
                    ),
                ));
            }
        }
        for (field, address) in [("peer_address", &m.peer_address), ("http_address", &m.http_address)] {
            connectable(address).map_err(|problem| BadSetting::new(key(field), problem))?;
            if let Some(other) = earlier_use(members, i, field, address) {
                return Err(BadSetting::new(
                    key(field),
                    format!("{address} is already {other}; each address may be used once"),
                ));
            }
        }
    }
    Ok(())
}

/// Other nodes connect to a member's addresses, so they must name one host
/// and one port (the parser refuses port 0).
fn connectable(address: &HostPort) -> Result<(), String> {
    match address.ip_literal() {
        Some(ip) if ip.ip().is_unspecified() => Err(format!(
            "{address} is an unspecified address; give the address the other nodes reach this member on (to bind \
             every interface, set node.listen_peer_address or node.listen_http_address)"
        )),
        _ => Ok(()),
    }
}

/// The key of an address given before `members[i].field`, if `address` is
/// (the same IP literal, or the same name whatever its case).
fn earlier_use(members: &[MemberSection], i: usize, field: &str, address: &HostPort) -> Option<String> {
    let earlier = members[..i]
        .iter()
        .enumerate()
        .flat_map(|(j, o)| [(j, "peer_address", &o.peer_address), (j, "http_address", &o.http_address)]);
    let own = (field == "http_address").then_some((i, "peer_address", &members[i].peer_address));
    earlier.chain(own).find(|(_, _, a)| a.same_as(address)).map(|(j, f, _)| format!("members[{j}].{f}"))
}

/// `node.listen_peer_address` and `node.listen_http_address`: a port to
/// bind (any address, `0.0.0.0` included, but not port 0: the other nodes
/// must know the port), and not both the same.
pub(super) fn check_listen(node: &NodeSection) -> Result<(), BadSetting> {
    let listen = [("listen_peer_address", node.listen_peer_address), ("listen_http_address", node.listen_http_address)];
    for (field, address) in listen {
        if address.is_some_and(|a| a.port() == 0) {
            return Err(BadSetting::new(
                format!("node.{field}"),
                "port 0 would bind a port the other nodes cannot know; give the port",
            ));
        }
    }
    if let (Some(peer), Some(http)) = (node.listen_peer_address, node.listen_http_address) {
        if same_port(peer, http) {
            return Err(BadSetting::new(
                "node.listen_http_address",
                format!("{http} is also node.listen_peer_address; the two ports must differ"),
            ));
        }
    }
    Ok(())
}

/// Whether binding both would collide.
fn same_port(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}
