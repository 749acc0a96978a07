//! Rules for `[[members]]` that the protocol core does not need but the
//! daemon does: names fit for DNS fences and TLS certificates, and addresses
//! the other nodes can connect to.

use std::net::SocketAddr;

use super::{BadSetting, MemberSection};

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
        for (field, address) in [("peer_address", m.peer_address), ("http_address", m.http_address)] {
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
/// and one port.
fn connectable(address: SocketAddr) -> Result<(), String> {
    if address.ip().is_unspecified() {
        return Err(format!(
            "{address} is an unspecified address; give the address the other nodes reach this member on"
        ));
    }
    if address.port() == 0 {
        return Err(format!("{address}: port 0 is not a port the other nodes can connect to"));
    }
    Ok(())
}

/// The key of an address given before `members[i].field`, if `address` is.
fn earlier_use(members: &[MemberSection], i: usize, field: &str, address: SocketAddr) -> Option<String> {
    let earlier = members[..i]
        .iter()
        .enumerate()
        .flat_map(|(j, o)| [(j, "peer_address", o.peer_address), (j, "http_address", o.http_address)]);
    let own = (field == "http_address").then_some((i, "peer_address", members[i].peer_address));
    earlier.chain(own).find(|(_, _, a)| *a == address).map(|(j, f, _)| format!("members[{j}].{f}"))
}
