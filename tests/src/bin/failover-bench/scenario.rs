//! The scenarios: what fault each one injects, on which shape of lab,
//! and whether the active site should move under it.
//!
//! Most run on two sites and a witness. The five-voter set (`five-…`)
//! runs on three sites and two witnesses ([`Shape::FiveVoters`]), our
//! system only: where two sites are left, whichever takes over is decided
//! by priority, and the trial records which one did.
//!
//! Whether a scenario should move the active site is decided here, by
//! [`Scenario::should_move`], and nowhere else: the trial's waits and the
//! strict check both ask it.

use std::time::Duration;

use crate::lab::System;
use crate::shape::Shape;

/// How long a killed daemon stays down before it is started again in
/// `kill-restart-active` (systemd's `RestartSec=100ms`).
pub const RESTART_DELAY: Duration = Duration::from_millis(100);

/// One fault (or operator action) at `t0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// kill -9 of the active site's daemon.
    KillActive,
    /// kill -9 of everything the active site runs: for etcd, the elector
    /// and the site's etcd member (only etcd runs it: everywhere else it is
    /// `KillActive`).
    KillActiveSite,
    /// kill -9 of the active site's daemon, started again
    /// [`RESTART_DELAY`] after it (and anything it ran) exited, with the
    /// same config and state directory.
    KillRestartActive,
    /// The active site's host drops every packet from its peers, and they
    /// drop its packets.
    IsolateActive,
    /// The two sites drop each other's packets; the witness sees both.
    CutAB,
    /// kill -9 of the witness.
    KillWitness,
    /// kill -9 of the witness, then of the active site 2 s later.
    KillWitnessThenActive,
    /// `POST /admin/switchover` to the other site.
    PlannedSwitchover,
    /// Five voters: kill -9 of the active site's daemon; one of the two
    /// other sites takes over.
    FiveKillActive,
    /// Five voters: the active site isolated as in `isolate-active`; one
    /// of the two other sites takes over once its lease has run out.
    FiveIsolateActive,
    /// Five voters: kill -9 of both witnesses; the three sites are still a
    /// majority, so nothing moves.
    FiveLoseTwoVoters,
}

impl Scenario {
    /// Every scenario, in the order they run.
    pub const ALL: [Scenario; 11] = [
        Scenario::KillActive,
        Scenario::KillActiveSite,
        Scenario::KillRestartActive,
        Scenario::IsolateActive,
        Scenario::CutAB,
        Scenario::KillWitness,
        Scenario::KillWitnessThenActive,
        Scenario::PlannedSwitchover,
        Scenario::FiveKillActive,
        Scenario::FiveIsolateActive,
        Scenario::FiveLoseTwoVoters,
    ];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::KillActive => "kill-active",
            Scenario::KillActiveSite => "kill-active-site",
            Scenario::KillRestartActive => "kill-restart-active",
            Scenario::IsolateActive => "isolate-active",
            Scenario::CutAB => "cut-a-b",
            Scenario::KillWitness => "kill-witness",
            Scenario::KillWitnessThenActive => "kill-witness-then-active",
            Scenario::PlannedSwitchover => "planned-switchover",
            Scenario::FiveKillActive => "five-kill-active",
            Scenario::FiveIsolateActive => "five-isolate-active",
            Scenario::FiveLoseTwoVoters => "five-lose-two-voters",
        }
    }

    /// The scenario called `name`.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The lab it runs on.
    pub fn shape(self) -> Shape {
        match self {
            Scenario::FiveKillActive | Scenario::FiveIsolateActive | Scenario::FiveLoseTwoVoters => Shape::FiveVoters,
            _ => Shape::ThreeVoters,
        }
    }

    /// Whether `system` runs this scenario (keepalived has no witness and
    /// no switchover; only an etcd site runs more than one daemon; only
    /// ours runs on five voters).
    pub fn runs_on(self, system: System) -> bool {
        if self.shape() == Shape::FiveVoters {
            return system == System::Failover;
        }
        match system {
            System::Failover => self != Scenario::KillActiveSite,
            System::Etcd => true,
            System::Keepalived => matches!(
                self,
                Scenario::KillActive | Scenario::KillRestartActive | Scenario::IsolateActive | Scenario::CutAB
            ),
        }
    }

    /// Whether the active site should move to another one: when a
    /// majority is left and the active site is lost or asked to move (on
    /// five voters, losing any two of them leaves a majority).
    /// keepalived has no majority, so a cut moves it too (both hold the VIP).
    /// A restarted etcd elector starts a new session, whose campaign queues
    /// behind the other site's, so a restart moves etcd.
    pub fn should_move(self, system: System) -> bool {
        match self {
            Scenario::KillActive
            | Scenario::KillActiveSite
            | Scenario::IsolateActive
            | Scenario::PlannedSwitchover
            | Scenario::FiveKillActive
            | Scenario::FiveIsolateActive => true,
            Scenario::CutAB => system == System::Keepalived,
            Scenario::KillWitness | Scenario::KillWitnessThenActive | Scenario::FiveLoseTwoVoters => false,
            Scenario::KillRestartActive => system != System::Failover,
        }
    }

    /// Whether the active site's daemon is restarted within the trial and
    /// should take its role back (restart in place).
    pub fn restarts(self) -> bool {
        self == Scenario::KillRestartActive
    }
}

impl serde::Serialize for Scenario {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Scenario {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::report::by_name(d, "scenario", Scenario::from_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
        }
        assert_eq!(Scenario::from_name("kill-everything"), None);
    }

    #[test]
    fn our_system_moves_only_when_a_majority_is_left_and_the_active_site_is_lost_or_asked() {
        let moving: Vec<&str> = Scenario::ALL
            .into_iter()
            .filter(|s| s.runs_on(System::Failover) && s.should_move(System::Failover))
            .map(Scenario::name)
            .collect();
        assert_eq!(
            moving,
            ["kill-active", "isolate-active", "planned-switchover", "five-kill-active", "five-isolate-active"]
        );
        assert!(Scenario::CutAB.should_move(System::Keepalived));
        assert!(Scenario::KillRestartActive.should_move(System::Keepalived));
        let on_keepalived: Vec<&str> =
            Scenario::ALL.into_iter().filter(|s| s.runs_on(System::Keepalived)).map(Scenario::name).collect();
        assert_eq!(on_keepalived, ["kill-active", "kill-restart-active", "isolate-active", "cut-a-b"]);
        assert!(!Scenario::KillActiveSite.runs_on(System::Failover));
        let etcd_moving: Vec<&str> = Scenario::ALL
            .into_iter()
            .filter(|s| s.runs_on(System::Etcd) && s.should_move(System::Etcd))
            .map(Scenario::name)
            .collect();
        assert_eq!(
            etcd_moving,
            ["kill-active", "kill-active-site", "kill-restart-active", "isolate-active", "planned-switchover"]
        );
        let five: Vec<&str> =
            Scenario::ALL.into_iter().filter(|s| s.shape() == Shape::FiveVoters).map(Scenario::name).collect();
        assert_eq!(five, ["five-kill-active", "five-isolate-active", "five-lose-two-voters"]);
        for s in Scenario::ALL {
            let others = [System::Keepalived, System::Etcd];
            assert_eq!(s.shape() == Shape::FiveVoters, others.iter().all(|o| !s.runs_on(*o)), "{}", s.name());
        }
        assert!(Scenario::ALL.into_iter().all(|s| s.runs_on(System::Etcd) || s.shape() == Shape::FiveVoters));
        let restarting: Vec<&str> = Scenario::ALL.into_iter().filter(|s| s.restarts()).map(Scenario::name).collect();
        assert_eq!(restarting, ["kill-restart-active"]);
    }
}
