//! Whether the members agree on the shared part of the config.
//!
//! Quorums are counted from the member list, votes and priorities each node
//! reads from its own file; two nodes that count differently could both
//! believe they hold a majority. So every envelope carries a fingerprint of
//! that part (`Envelope.cluster`), a node refuses messages whose fingerprint
//! differs from its own, and both sides show the mismatch (status, metric,
//! one log line per change) with both fingerprints. Timers are not part of
//! it: a lease is bounded by what the voters promised, so nodes whose leases
//! differ stay safe, and a rolling change of them needs no agreement.
//!
//! An empty fingerprint (a build from before it was sent) is accepted, so a
//! rolling upgrade keeps its majority; it is shown as unverified.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use failover_core::{ClusterConfig, MemberKind, NodeId};
use sha2::{Digest, Sha256};

/// What a node last saw of a peer's fingerprint, when it differs from its own.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mismatch {
    /// The peer's member name.
    pub peer: String,
    /// The fingerprint it sent, or answered with when it refused ours;
    /// empty when it sends none (an older build).
    pub theirs: String,
}

/// This node's fingerprint and what it has seen of its peers'. A small
/// handle behind a std mutex: it is held only to read or update a map of a
/// few entries, never across an await.
#[derive(Debug)]
pub struct Agreement {
    ours: String,
    names: Vec<String>,
    /// Peers whose last word carried another (or no) fingerprint.
    differing: Mutex<BTreeMap<NodeId, String>>,
}

/// The fingerprint of the shared part of `cfg`: every member's name, kind,
/// votes and priority, in name order (so the order of `[[members]]` in the
/// file does not matter). SHA-256, first 16 hex digits.
pub fn fingerprint(cfg: &ClusterConfig) -> String {
    let mut members: Vec<_> = cfg.members.iter().collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    let mut canonical = String::from("failover cluster v1\n");
    for m in members {
        let kind = match m.kind {
            MemberKind::Site { priority } => format!("site priority={priority}"),
            MemberKind::Witness => "witness".to_owned(),
        };
        let _ = writeln!(canonical, "{} {kind} votes={}", m.name, m.votes);
    }
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().take(8).fold(String::with_capacity(16), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// Whether `text` has the form of a fingerprint (or is empty, as from a
/// build that sends none). Anything else from a peer is refused before it
/// is logged or shown.
pub fn well_formed(text: &str) -> bool {
    text.is_empty() || (text.len() == 16 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

impl Agreement {
    /// The agreement state of a node of `cfg`.
    pub fn new(cfg: &ClusterConfig) -> Agreement {
        Agreement {
            ours: fingerprint(cfg),
            names: cfg.members.iter().map(|m| m.name.clone()).collect(),
            differing: Mutex::new(BTreeMap::new()),
        }
    }

    /// This node's fingerprint.
    pub fn ours(&self) -> &str {
        &self.ours
    }

    /// Notes the fingerprint `peer` sent or answered with; logs when what
    /// is known of it changes. Returns whether it may be talked to: the
    /// same fingerprint, or none at all (an older build).
    pub fn observe(&self, peer: NodeId, theirs: &str) -> bool {
        let name = self.names.get(peer.index()).map_or("?", String::as_str);
        let mut differing = self.differing.lock().unwrap_or_else(PoisonError::into_inner);
        if theirs == self.ours {
            if differing.remove(&peer).is_some() {
                tracing::info!(peer = %name, fingerprint = %self.ours, "peer's cluster config agrees again");
            }
            return true;
        }
        if differing.get(&peer).map(String::as_str) != Some(theirs) {
            if theirs.is_empty() {
                tracing::warn!(peer = %name, ours = %self.ours, "peer sends no cluster fingerprint (an older build): its config is unverified");
            } else {
                tracing::error!(
                    peer = %name, ours = %self.ours, theirs = %theirs,
                    "peer's members, votes or priorities differ from this node's: its messages are refused until the configs agree"
                );
            }
            differing.insert(peer, theirs.to_owned());
        }
        theirs.is_empty()
    }

    /// Every peer whose last word carried another or no fingerprint.
    pub fn mismatches(&self) -> Vec<Mismatch> {
        let differing = self.differing.lock().unwrap_or_else(PoisonError::into_inner);
        differing
            .iter()
            .map(|(id, theirs)| Mismatch {
                peer: self.names.get(id.index()).cloned().unwrap_or_default(),
                theirs: theirs.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use failover_core::{Member, Policy, Timers};

    fn cfg(members: Vec<Member>) -> ClusterConfig {
        ClusterConfig { members, timers: Timers::default(), policy: Policy::default() }
    }

    fn three() -> Vec<Member> {
        vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")]
    }

    #[test]
    fn the_fingerprint_covers_members_votes_and_priorities_but_not_order_or_timers() {
        let base = fingerprint(&cfg(three()));
        assert_eq!(base.len(), 16);
        assert!(base.chars().all(|c| c.is_ascii_hexdigit()), "{base}");
        let mut reordered = three();
        reordered.reverse();
        assert_eq!(fingerprint(&cfg(reordered)), base);
        let mut slower = cfg(three());
        slower.timers.lease_duration *= 2;
        assert_eq!(fingerprint(&slower), base, "timers may differ");
        let mut changed = Vec::new();
        let mut m = three();
        m[1] = Member::site("site-b", 3);
        changed.push(m);
        let mut m = three();
        m[1].votes = 0;
        changed.push(m);
        let mut m = three();
        m.pop();
        changed.push(m);
        let mut m = three();
        m[2] = Member::site("witness", 1);
        changed.push(m);
        let mut m = three();
        m[0].name = "site-z".into();
        changed.push(m);
        for m in changed {
            assert_ne!(fingerprint(&cfg(m.clone())), base, "{m:?}");
        }
    }

    #[test]
    fn only_sixteen_lower_case_hex_digits_or_nothing_is_a_fingerprint() {
        assert!(well_formed(""));
        assert!(well_formed(&fingerprint(&cfg(three()))));
        for bad in ["0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "0123456789abcdeg", "line\nbreak"] {
            assert!(!well_formed(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_differing_peer_is_refused_and_listed_until_it_agrees_and_an_older_build_is_listed_but_accepted() {
        let a = Agreement::new(&cfg(three()));
        let ours = a.ours().to_owned();
        assert!(a.observe(NodeId(1), &ours));
        assert!(a.mismatches().is_empty());
        assert!(!a.observe(NodeId(1), "0123456789abcdef"));
        assert!(a.observe(NodeId(2), ""), "an older build is accepted");
        assert_eq!(
            a.mismatches(),
            vec![
                Mismatch { peer: "site-b".into(), theirs: "0123456789abcdef".into() },
                Mismatch { peer: "witness".into(), theirs: String::new() },
            ]
        );
        assert!(a.observe(NodeId(1), &ours));
        assert_eq!(a.mismatches(), vec![Mismatch { peer: "witness".into(), theirs: String::new() }]);
    }
}
