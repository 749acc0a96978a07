//! Which members' peer addresses did not resolve when they were last
//! needed, and why: written by the peer senders each time they resolve,
//! read by `/status`. It holds text for people only; nothing decides on it.
//!
//! The lock is a `std::sync::Mutex` held for one map access, never across
//! an await. Poisoning cannot leave a torn entry (each write replaces or
//! removes one whole value), so the data is taken back and used.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::host_port::Unresolvable;

/// The latest resolution problem of each member's peer address, by member
/// name. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Unresolved {
    problems: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Unresolved {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        self.problems.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records how `member`'s peer address resolved just now; `true` when
    /// that differs from the last time (so the caller logs changes only).
    pub fn record(&self, member: &str, outcome: Result<(), &Unresolvable>) -> bool {
        let mut problems = self.lock();
        match outcome {
            Ok(()) => problems.remove(member).is_some(),
            Err(e) => {
                let text = format!("peer-address {e}");
                problems.insert(member.to_owned(), text.clone()).as_ref() != Some(&text)
            }
        }
    }

    /// What is wrong with `member`'s peer address, if its name did not
    /// resolve the last time: `peer-address NAME:PORT does not resolve: ...`.
    pub fn problem(&self, member: &str) -> Option<String> {
        self.lock().get(member).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(detail: &str) -> Unresolvable {
        let address = "site-b.example:7000".parse().expect("address");
        Unresolvable { address, detail: detail.into() }
    }

    #[test]
    fn a_problem_is_shown_until_the_name_resolves_again_and_only_changes_are_news() {
        let unresolved = Unresolved::default();
        assert_eq!(unresolved.problem("site-b"), None);
        assert!(unresolved.record("site-b", Err(&failure("Name or service not known"))));
        assert_eq!(
            unresolved.problem("site-b").as_deref(),
            Some("peer-address site-b.example:7000 does not resolve: Name or service not known")
        );
        assert!(!unresolved.record("site-b", Err(&failure("Name or service not known"))), "the same again");
        assert!(unresolved.record("site-b", Err(&failure("Temporary failure in name resolution"))));
        assert_eq!(unresolved.problem("witness"), None, "another member's");
        assert!(unresolved.record("site-b", Ok(())));
        assert_eq!(unresolved.problem("site-b"), None);
        assert!(!unresolved.record("site-b", Ok(())));
    }
}
