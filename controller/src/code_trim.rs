//! Unmapping code the daemon no longer runs: a daemon that has started
//! holds most of its binary and libraries mapped, because start-up runs
//! code from all over them, though at idle it runs a small part (see
//! `failover_code_pages`); a role change (an election, a switchover, the
//! actuators and hooks it drives) maps more that idle does not need
//! either. So the code is unmapped five seconds after start and again once
//! a role change has settled. It must never stop or slow the daemon: each
//! unmapping runs on a blocking thread, and failing costs only memory.

use std::time::{Duration, Instant};

use failover_code_pages::{StartUpMappings, TrimError};
use failover_core::{NodeId, RoleName, Term};

use crate::snapshot::NodeSnapshot;

/// How long after start the daemon unmaps its code: by then it has run its
/// start-up code, which it does not need again, and its first heartbeats,
/// which it keeps running.
const TRIM_CODE_AFTER: Duration = Duration::from_secs(5);

/// How long the role must stay unchanged after a change before the code
/// that change ran is unmapped: long enough for the actuators to converge
/// and the hooks to finish.
const SETTLED_AFTER: Duration = Duration::from_secs(60);

/// How often the role is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Unmaps the start-up code [`TRIM_CODE_AFTER`] from now, then the code of
/// each role change once it has settled, and logs what it did.
pub fn spawn(start_up: Result<StartUpMappings, TrimError>, snapshot: NodeSnapshot) {
    tokio::spawn(async move {
        tokio::time::sleep(TRIM_CODE_AFTER).await;
        let Some(start_up) = trim(start_up, "start-up code unmapped").await else { return };
        let role = |s: &NodeSnapshot| RoleShape::of(&s.status());
        let mut settling = Settling::new(role(&snapshot));
        let mut look = tokio::time::interval(LOOK_EVERY);
        loop {
            look.tick().await;
            if settling.settled(role(&snapshot), Instant::now()) {
                trim(Ok(start_up.clone()), "code run by the last role change unmapped").await;
            }
        }
    });
}

/// Unmaps, logs, and gives the mappings back for the next time (`None`
/// when they could not be read: nothing will be unmapped).
async fn trim(start_up: Result<StartUpMappings, TrimError>, done: &'static str) -> Option<StartUpMappings> {
    let trimmed = tokio::task::spawn_blocking(move || {
        let start_up = start_up?;
        start_up.trim().map(|t| (t, start_up))
    })
    .await;
    match trimmed {
        Ok(Ok((t, start_up))) => {
            tracing::info!(
                mappings = t.mappings,
                resident_kib_before = t.resident_kib_before,
                resident_kib_after = t.resident_kib_after,
                "{done}; the code that still runs is mapped again as it runs"
            );
            Some(start_up)
        }
        Ok(Err(e)) => {
            tracing::warn!(
                error = %crate::describe::with_causes(&e),
                "could not unmap the code; it stays mapped as the kernel mapped it"
            );
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "unmapping the code did not finish");
            None
        }
    }
}

/// What a role change changes: the role, the term, the active site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RoleShape {
    role: RoleName,
    term: Term,
    active_site: Option<NodeId>,
}

impl RoleShape {
    fn of(status: &failover_core::Status) -> Self {
        Self { role: status.role, term: status.term, active_site: status.active_site }
    }
}

/// Tells when a role change has settled: the role unchanged for
/// [`SETTLED_AFTER`] since the last change, once per change.
#[derive(Debug)]
struct Settling {
    seen: RoleShape,
    changed_at: Option<Instant>,
}

impl Settling {
    fn new(seen: RoleShape) -> Self {
        Self { seen, changed_at: None }
    }

    /// Takes the role as it is at `now`; true once it has stayed so for
    /// [`SETTLED_AFTER`] since it last changed (then not again until the
    /// next change).
    fn settled(&mut self, now_seen: RoleShape, now: Instant) -> bool {
        if now_seen != self.seen {
            self.seen = now_seen;
            self.changed_at = Some(now);
            return false;
        }
        match self.changed_at {
            Some(at) if now.saturating_duration_since(at) >= SETTLED_AFTER => {
                self.changed_at = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(role: RoleName, term: u64) -> RoleShape {
        RoleShape { role, term: Term(term), active_site: None }
    }

    #[test]
    fn a_change_is_settled_once_the_role_has_held_for_a_minute_and_only_once() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut s = Settling::new(shape(RoleName::Standby, 1));
        assert!(!s.settled(shape(RoleName::Standby, 1), at(100)), "no change yet: nothing to unmap");
        assert!(!s.settled(shape(RoleName::Active, 2), at(105)), "a change starts the wait");
        assert!(!s.settled(shape(RoleName::Active, 2), at(164)));
        assert!(s.settled(shape(RoleName::Active, 2), at(165)), "held for a minute");
        assert!(!s.settled(shape(RoleName::Active, 2), at(300)), "once per change");
    }

    #[test]
    fn a_further_change_restarts_the_wait() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut s = Settling::new(shape(RoleName::Active, 1));
        assert!(!s.settled(shape(RoleName::HandingOff, 1), at(10)));
        assert!(!s.settled(shape(RoleName::Standby, 2), at(40)), "the switchover goes on");
        assert!(!s.settled(shape(RoleName::Standby, 2), at(99)), "a minute from the last change, not the first");
        assert!(s.settled(shape(RoleName::Standby, 2), at(100)));
    }
}
