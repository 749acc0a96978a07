//! The one place the tests' helpers and the benchmark read a node's
//! `/status` document. Every question they ask of it is a method here, so
//! that a change of the document's shape is a change of this file only.
//!
//! It must never fetch anything itself nor judge the cluster: it answers
//! questions about one document a caller already has.

use std::time::Duration;

use serde_json::Value;

/// One node's `/status` answer.
#[derive(Clone, Debug)]
pub struct NodeStatus(Value);

impl NodeStatus {
    /// Reads a `/status` body; `None` if it is not JSON.
    pub fn parse(body: &str) -> Option<NodeStatus> {
        serde_json::from_str(body).ok().map(NodeStatus)
    }

    /// Whether the node counts every other member as reachable and heard
    /// from each within `within`.
    pub fn heard_from_everyone_within(&self, within: Duration) -> bool {
        let limit = u64::try_from(within.as_millis()).unwrap_or(u64::MAX);
        self.0["sites"].as_array().is_some_and(|members| {
            members.iter().all(|m| m["reachable"] == true && m["last_seen_ms"].as_u64().is_some_and(|ms| ms <= limit))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heard_from_everyone_needs_every_member_reachable_and_recent() {
        let doc = |a: &str, b: &str| NodeStatus::parse(&format!("{{\"sites\":[{a},{b}]}}")).unwrap();
        let fresh = "{\"reachable\":true,\"last_seen_ms\":1500}";
        let late = "{\"reachable\":true,\"last_seen_ms\":1501}";
        let cut = "{\"reachable\":false,\"last_seen_ms\":10}";
        let within = Duration::from_millis(1500);
        assert!(doc(fresh, fresh).heard_from_everyone_within(within));
        assert!(!doc(fresh, late).heard_from_everyone_within(within));
        assert!(!doc(cut, fresh).heard_from_everyone_within(within));
        assert!(!NodeStatus::parse("{}").unwrap().heard_from_everyone_within(within));
        assert!(NodeStatus::parse("not json").is_none());
    }
}
