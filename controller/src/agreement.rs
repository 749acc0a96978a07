//! Whether the members agree on the shared part of the config, and belong
//! to the same cluster.
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
//! Two clusters can share a CA and member names (staging next to
//! production), so the fingerprint alone would count a node of the other
//! cluster as a member. Every envelope also carries the sender's
//! `cluster.name` (`Envelope.cluster_name`), and a node refuses a message
//! from a cluster of another name, shown with both names. The name is a
//! field of its own rather than part of the fingerprint, so that the
//! fingerprint of a build from before it stays comparable.
//!
//! An empty fingerprint or name (a build from before it was sent) is
//! accepted, so a rolling upgrade keeps its majority; it is shown as
//! unverified. Such a peer is checked on what it does send: a node of an
//! older build without the name is accepted on its fingerprint alone, and an
//! older build ignores the name it receives (an unknown protobuf field), so
//! it refuses a node of another cluster only if their members differ.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use failover_core::{ClusterConfig, MemberKind, NodeId};
use sha2::{Digest, Sha256};

/// What a node last saw of a peer's fingerprint and cluster name, when
/// either differs from its own or is missing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mismatch {
    /// The peer's member name.
    pub peer: String,
    /// The fingerprint it sent, or answered with when it refused ours;
    /// empty when it sends none (an older build).
    pub theirs: String,
    /// The cluster name it sent, or answered with when it refused ours;
    /// empty when it sends none (an older build, or a node that did not
    /// say).
    #[serde(default)]
    pub cluster: String,
    /// Whether messages are refused (another cluster, or another
    /// fingerprint), rather than accepted unverified.
    #[serde(default)]
    pub refused: bool,
}

/// Why a peer's messages are refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// It belongs to a cluster of another name.
    #[error(
        "another cluster: this node belongs to cluster {ours:?}, the message comes from a node of cluster \
         {theirs:?}"
    )]
    OtherCluster {
        /// This node's cluster name.
        ours: String,
        /// The peer's.
        theirs: String,
    },
    /// Its members, votes or priorities differ.
    #[error(
        "cluster config differs: this node's members, votes and priorities have fingerprint {ours}, the \
         message's {theirs}"
    )]
    ConfigDiffers {
        /// This node's fingerprint.
        ours: String,
        /// The peer's.
        theirs: String,
    },
}

/// This node's fingerprint and cluster name and what it has seen of its
/// peers'. A small handle behind a std mutex: it is held only to read or
/// update a map of a few entries, never across an await.
#[derive(Debug)]
pub struct Agreement {
    ours: String,
    cluster: String,
    names: Vec<String>,
    /// Peers whose last word carried another (or no) fingerprint or name.
    differing: Mutex<BTreeMap<NodeId, Mismatch>>,
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

/// Whether `text` has the form of a cluster name (the rule of a member
/// name, as `cluster.name` is validated), or is empty, as from a build that
/// sends none. Anything else from a peer is refused before it is logged or
/// shown.
pub fn well_formed_name(text: &str) -> bool {
    text.is_empty() || crate::member_name::check(text).is_ok()
}

impl Agreement {
    /// The agreement state of a node of `cfg` in the cluster named
    /// `cluster` (`cluster.name`).
    pub fn new(cfg: &ClusterConfig, cluster: &str) -> Agreement {
        Agreement {
            ours: fingerprint(cfg),
            cluster: cluster.to_owned(),
            names: cfg.members.iter().map(|m| m.name.clone()).collect(),
            differing: Mutex::new(BTreeMap::new()),
        }
    }

    /// This node's fingerprint.
    pub fn ours(&self) -> &str {
        &self.ours
    }

    /// This node's cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Notes the fingerprint and cluster name `peer` sent or answered with;
    /// logs when what is known of it changes. `Ok` when it may be talked
    /// to: the same cluster name, or none (an older build), and the same
    /// fingerprint, or none; else why not.
    pub fn observe(&self, peer: NodeId, theirs: &str, their_cluster: &str) -> Result<(), Refused> {
        let name = self.names.get(peer.index()).map_or("?", String::as_str);
        let verdict = if !their_cluster.is_empty() && their_cluster != self.cluster {
            Err(Refused::OtherCluster { ours: self.cluster.clone(), theirs: their_cluster.to_owned() })
        } else if !theirs.is_empty() && theirs != self.ours {
            Err(Refused::ConfigDiffers { ours: self.ours.clone(), theirs: theirs.to_owned() })
        } else {
            Ok(())
        };
        let mut differing = self.differing.lock().unwrap_or_else(PoisonError::into_inner);
        if theirs == self.ours && their_cluster == self.cluster {
            if differing.remove(&peer).is_some() {
                tracing::info!(peer = %name, fingerprint = %self.ours, cluster = %self.cluster, "peer's cluster and config agree again");
            }
            return Ok(());
        }
        let seen = Mismatch {
            peer: name.to_owned(),
            theirs: theirs.to_owned(),
            cluster: their_cluster.to_owned(),
            refused: verdict.is_err(),
        };
        if differing.get(&peer) != Some(&seen) {
            match &verdict {
                Err(refused @ Refused::OtherCluster { .. }) => {
                    tracing::error!(peer = %name, "peer is a node of another cluster: its messages are refused: {refused}");
                }
                Err(Refused::ConfigDiffers { .. }) => tracing::error!(
                    peer = %name, ours = %self.ours, theirs = %theirs,
                    "peer's members, votes or priorities differ from this node's: its messages are refused until the configs agree"
                ),
                Ok(()) if theirs.is_empty() => {
                    tracing::warn!(peer = %name, ours = %self.ours, "peer sends no cluster fingerprint (an older build): its config is unverified");
                }
                Ok(()) => {
                    tracing::warn!(peer = %name, cluster = %self.cluster, "peer sends no cluster name (an older build): accepted on its fingerprint, its cluster is unverified");
                }
            }
            differing.insert(peer, seen);
        }
        verdict
    }

    /// Every peer whose last word carried another or no fingerprint or
    /// cluster name.
    pub fn mismatches(&self) -> Vec<Mismatch> {
        let differing = self.differing.lock().unwrap_or_else(PoisonError::into_inner);
        differing.values().cloned().collect()
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

    fn seen(peer: &str, theirs: &str, cluster: &str, refused: bool) -> Mismatch {
        Mismatch { peer: peer.into(), theirs: theirs.into(), cluster: cluster.into(), refused }
    }

    #[test]
    fn a_differing_peer_is_refused_and_listed_until_it_agrees_and_an_older_build_is_listed_but_accepted() {
        let a = Agreement::new(&cfg(three()), "prod");
        let ours = a.ours().to_owned();
        assert_eq!(a.observe(NodeId(1), &ours, "prod"), Ok(()));
        assert!(a.mismatches().is_empty());
        let refused = a.observe(NodeId(1), "0123456789abcdef", "prod");
        assert!(matches!(refused, Err(Refused::ConfigDiffers { .. })), "{refused:?}");
        assert_eq!(a.observe(NodeId(2), "", ""), Ok(()), "an older build is accepted");
        assert_eq!(
            a.mismatches(),
            vec![seen("site-b", "0123456789abcdef", "prod", true), seen("witness", "", "", false)]
        );
        assert_eq!(a.observe(NodeId(1), &ours, "prod"), Ok(()));
        assert_eq!(a.mismatches(), vec![seen("witness", "", "", false)]);
    }

    #[test]
    fn a_node_of_another_cluster_is_refused_naming_both_clusters_even_with_the_same_members() {
        let a = Agreement::new(&cfg(three()), "prod");
        let ours = a.ours().to_owned();
        let refused = a.observe(NodeId(1), &ours, "staging");
        assert_eq!(refused, Err(Refused::OtherCluster { ours: "prod".into(), theirs: "staging".into() }));
        let text = refused.unwrap_err().to_string();
        assert!(
            text.contains("another cluster") && text.contains("\"prod\"") && text.contains("\"staging\""),
            "{text}"
        );
        assert_eq!(a.mismatches(), vec![seen("site-b", &ours, "staging", true)]);
        // Another cluster and other members: the cluster is the reason given.
        let refused = a.observe(NodeId(1), "0123456789abcdef", "staging");
        assert!(matches!(refused, Err(Refused::OtherCluster { .. })), "{refused:?}");
        // Back in this cluster: taken back.
        assert_eq!(a.observe(NodeId(1), &ours, "prod"), Ok(()));
        assert!(a.mismatches().is_empty());
    }

    #[test]
    fn an_older_build_without_the_name_is_accepted_on_its_fingerprint_and_listed_as_unverified() {
        let a = Agreement::new(&cfg(three()), "prod");
        let ours = a.ours().to_owned();
        assert_eq!(a.observe(NodeId(2), &ours, ""), Ok(()));
        assert_eq!(a.mismatches(), vec![seen("witness", &ours, "", false)]);
        let refused = a.observe(NodeId(2), "0123456789abcdef", "");
        assert!(matches!(refused, Err(Refused::ConfigDiffers { .. })), "{refused:?}");
    }

    #[test]
    fn only_a_member_name_or_nothing_is_a_cluster_name() {
        assert!(well_formed_name("") && well_formed_name("prod") && well_formed_name("staging-2"));
        for bad in ["two words", "line\nbreak", "../prod", &"x".repeat(300)] {
            assert!(!well_formed_name(bad), "{bad:?}");
        }
    }
}
