//! The two timer sets every system runs at: today's production-like one
//! and the fast, sub-second one, with each system's own knobs set to match;
//! and, for our system's soaks only, shorter leases still, to find the
//! shortest that loses no role under load and loss.
//!
//! Every timer a lab, a trial or a soak uses comes from here, so one set
//! is one column of the report and nothing else varies between them.

use std::time::Duration;

use serde::Serialize;

/// A timer set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerSet {
    /// Heartbeat 1 s, lease 3 s; keepalived advertises every second; etcd
    /// leases of 3 s on its default raft timers.
    Default,
    /// Heartbeat 100 ms, lease 600 ms; keepalived advertises every 100 ms
    /// (VRRPv3); etcd at its minimum TTL.
    Fast,
    /// Soaks of our system only: a lease of 400, 300, 200 or 100 ms, the
    /// heartbeat a sixth of it as in the fast set.
    Lease400,
    Lease300,
    Lease200,
    Lease100,
}

impl TimerSet {
    /// The sets every system runs trials at.
    pub const ALL: [TimerSet; 2] = [TimerSet::Default, TimerSet::Fast];
    /// The shorter leases our system is soaked at (`--soak-sweep`).
    pub const SWEEP: [TimerSet; 4] = [TimerSet::Lease400, TimerSet::Lease300, TimerSet::Lease200, TimerSet::Lease100];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            TimerSet::Default => "default",
            TimerSet::Fast => "fast",
            TimerSet::Lease400 => "lease-400ms",
            TimerSet::Lease300 => "lease-300ms",
            TimerSet::Lease200 => "lease-200ms",
            TimerSet::Lease100 => "lease-100ms",
        }
    }

    /// The set called `name`.
    pub fn from_name(name: &str) -> Option<TimerSet> {
        TimerSet::ALL.into_iter().chain(TimerSet::SWEEP).find(|t| t.name() == name)
    }

    /// Our heartbeat interval.
    pub fn heartbeat(self) -> Duration {
        match self {
            TimerSet::Default => Duration::from_secs(1),
            _ => self.lease() / 6,
        }
    }

    /// Our lease.
    pub fn lease(self) -> Duration {
        Duration::from_millis(match self {
            TimerSet::Default => 3000,
            TimerSet::Fast => 600,
            TimerSet::Lease400 => 400,
            TimerSet::Lease300 => 300,
            TimerSet::Lease200 => 200,
            TimerSet::Lease100 => 100,
        })
    }

    /// Our election jitter: a tenth of the lease.
    pub fn election_jitter(self) -> Duration {
        self.lease() / 10
    }

    /// keepalived's `advert_int`, in seconds as its config writes it
    /// (below one second needs VRRPv3).
    pub fn keepalived_advert_int(self) -> &'static str {
        match self {
            TimerSet::Default => "1",
            _ => "0.1",
        }
    }

    /// etcd's raft heartbeat interval and election timeout, in ms.
    /// etcd wants the election timeout at least five heartbeats.
    pub fn etcd_raft_ms(self) -> (u64, u64) {
        match self {
            TimerSet::Default => (100, 1000),
            _ => (50, 500),
        }
    }

    /// The TTL the etcd elector asks for, in whole seconds (etcd's unit).
    /// etcd raises a TTL below 1.5 election timeouts (rounded up to whole
    /// seconds): 2 s on its default raft timers, 1 s on the fast ones,
    /// which is the least any etcd lease can be.
    pub fn etcd_ttl_s(self) -> u64 {
        match self {
            TimerSet::Default => 3,
            _ => 1,
        }
    }

    /// How long after a daemon's start trials wait: a restarted voter of
    /// ours grants nothing for one lease; one heartbeat more.
    pub fn steady_after_start(self) -> Duration {
        self.lease() + self.heartbeat()
    }

    /// Heard from within this long, a link carries traffic both ways.
    pub fn heard_within(self) -> Duration {
        (self.heartbeat() * 3 / 2).max(Duration::from_millis(300))
    }

    /// How long a trial watches on after a move, and in all where nothing
    /// should move.
    pub fn watch_windows(self) -> (Duration, Duration) {
        match self {
            TimerSet::Default => (Duration::from_secs(2), Duration::from_secs(8)),
            _ => (Duration::from_secs(1), Duration::from_secs(3)),
        }
    }

    /// Every system's settings in this set, as the report states them
    /// (ours alone in a sweep set).
    pub fn describe(self) -> TimerDescription {
        let (etcd_heartbeat_ms, etcd_election_timeout_ms) = self.etcd_raft_ms();
        let others = TimerSet::ALL.contains(&self);
        TimerDescription {
            etcd_election_timeout_ms: others.then_some(etcd_election_timeout_ms),
            etcd_heartbeat_ms: others.then_some(etcd_heartbeat_ms),
            etcd_ttl_s: others.then_some(self.etcd_ttl_s()),
            failover_election_jitter_ms: self.election_jitter().as_millis() as u64,
            failover_heartbeat_ms: self.heartbeat().as_millis() as u64,
            failover_lease_ms: self.lease().as_millis() as u64,
            keepalived_advert_int_s: others.then_some(self.keepalived_advert_int()),
            name: self.name(),
        }
    }
}

impl Serialize for TimerSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for TimerSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::report::by_name(d, "timer set", TimerSet::from_name)
    }
}

/// One timer set, every system's knobs (JSON keys sorted, as the report's).
#[derive(Clone, Debug, Serialize)]
pub struct TimerDescription {
    pub etcd_election_timeout_ms: Option<u64>,
    pub etcd_heartbeat_ms: Option<u64>,
    pub etcd_ttl_s: Option<u64>,
    pub failover_election_jitter_ms: u64,
    pub failover_heartbeat_ms: u64,
    pub failover_lease_ms: u64,
    pub keepalived_advert_int_s: Option<&'static str>,
    pub name: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_fast_set_is_sub_second() {
        for t in TimerSet::ALL {
            assert_eq!(TimerSet::from_name(t.name()), Some(t));
            assert!(t.lease() >= t.heartbeat() * 2, "our config refuses a lease under two heartbeats");
            let (hb, election) = t.etcd_raft_ms();
            assert!(election >= 5 * hb, "etcd refuses an election timeout under five heartbeats");
            // etcd's minimum TTL is 1.5 election timeouts, rounded up.
            assert!(t.etcd_ttl_s() * 1000 >= (election * 3 / 2).div_ceil(1000) * 1000);
        }
        assert_eq!(TimerSet::from_name("slow"), None);
        for t in TimerSet::SWEEP {
            assert_eq!(TimerSet::from_name(t.name()), Some(t));
            assert!(t.heartbeat() * 5 < t.lease() && t.heartbeat() * 7 > t.lease(), "a sixth of the lease");
            assert!(t.lease() < TimerSet::Fast.lease());
        }
        assert!(TimerSet::Fast.lease() < Duration::from_secs(1));
        assert_eq!(TimerSet::Fast.election_jitter(), Duration::from_millis(60));
        assert_eq!(TimerSet::Default.election_jitter(), Duration::from_millis(300));
    }
}
