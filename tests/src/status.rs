//! The one place the tests' helpers and the benchmark read a node's
//! `/status` document. Every question they ask of it is a method here, so
//! that a change of the document's shape is a change of this file only.
//!
//! It must never fetch anything itself nor judge the cluster: it answers
//! questions about one document a caller already has.

use std::time::Duration;

use failover_controller::status_doc::StatusDoc;

/// One node's `/status` answer, as the controller's typed document.
#[derive(Clone, Debug)]
pub struct NodeStatus(StatusDoc);

impl NodeStatus {
    /// Reads a `/status` body; `None` if it is not a status document.
    pub fn parse(body: &str) -> Option<NodeStatus> {
        serde_json::from_str(body).ok().map(NodeStatus)
    }

    /// Whether the node counts every other member as reachable and heard
    /// from each within `within`.
    pub fn heard_from_everyone_within(&self, within: Duration) -> bool {
        let limit = u64::try_from(within.as_millis()).unwrap_or(u64::MAX);
        let sites = &self.0.sites;
        !sites.is_empty() && sites.iter().all(|m| m.reachable && m.last_seen_ms.is_some_and(|ms| ms <= limit))
    }

    /// The active site's epoch as this node knows it (its own while it is
    /// the active site).
    pub fn epoch(&self) -> Option<u64> {
        self.0.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heard_from_everyone_needs_every_member_reachable_and_recent() {
        let document = |sites: &str| {
            format!(r#"{{"node":"a","role":"standby","term":1,"mode":"automatic","paused":false,"sites":[{sites}]}}"#)
        };
        let doc = |a: &str, b: &str| NodeStatus::parse(&document(&format!("{a},{b}"))).unwrap();
        let site = |reachable, ms| {
            format!(r#"{{"id":"b","kind":"site","priority":1,"reachable":{reachable},"last_seen_ms":{ms}}}"#)
        };
        let (fresh, late, cut) = (site(true, 1500), site(true, 1501), site(false, 10));
        let (fresh, late, cut) = (fresh.as_str(), late.as_str(), cut.as_str());
        let within = Duration::from_millis(1500);
        assert!(doc(fresh, fresh).heard_from_everyone_within(within));
        assert!(!doc(fresh, late).heard_from_everyone_within(within));
        assert!(!doc(cut, fresh).heard_from_everyone_within(within));
        assert!(!NodeStatus::parse(&document("")).unwrap().heard_from_everyone_within(within));
        assert!(NodeStatus::parse("not json").is_none());
    }

    #[test]
    fn epoch_is_the_documents_own() {
        let active = r#"{"node":"a","role":"active","epoch":7,"term":3,"mode":"automatic","paused":false,"sites":[]}"#;
        assert_eq!(NodeStatus::parse(active).and_then(|s| s.epoch()), Some(7));
        let standby = r#"{"node":"a","role":"standby","term":3,"mode":"automatic","paused":false,"sites":[]}"#;
        assert_eq!(NodeStatus::parse(standby).and_then(|s| s.epoch()), None);
    }
}
