//! The cluster as every node must agree on it: members, votes, priorities,
//! timers and policies. Validated once, before a [`crate::Node`] exists.

use std::fmt;
use std::time::Duration;

use crate::time::millis;

/// Highest priority a site may have (MongoDB's range is 0..=1000).
pub const MAX_PRIORITY: u16 = 1000;
/// Most voting members a cluster may have (as in MongoDB).
pub const MAX_VOTERS: usize = 7;
/// Most members (voting or not) a cluster may have.
pub const MAX_MEMBERS: usize = 16;

/// Index of a member in [`ClusterConfig::members`]. Drivers map it to and
/// from the member's name at the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u8);

impl NodeId {
    /// The index into [`ClusterConfig::members`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node#{}", self.0)
    }
}

/// What a member is.
// Variant fields are named for what they hold; each variant's doc says the rest.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberKind {
    /// A site controller. Priority 0 means it votes but never becomes active.
    Site { priority: u16 },
    /// A witness: votes, never becomes active, runs no actuators.
    Witness,
}

/// One member of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    /// Unique name, for example `site-a`.
    pub name: String,
    /// Site or witness.
    pub kind: MemberKind,
    /// 0 or 1, as in MongoDB.
    pub votes: u8,
}

impl Member {
    /// A site with one vote.
    pub fn site(name: &str, priority: u16) -> Self {
        Member { name: name.to_owned(), kind: MemberKind::Site { priority }, votes: 1 }
    }

    /// A witness with one vote.
    pub fn witness(name: &str) -> Self {
        Member { name: name.to_owned(), kind: MemberKind::Witness, votes: 1 }
    }

    /// Priority of a site; witnesses have none.
    pub fn priority(&self) -> u16 {
        match self.kind {
            MemberKind::Site { priority } => priority,
            MemberKind::Witness => 0,
        }
    }

    /// Whether this member may ever hold the active role.
    pub fn can_be_active(&self) -> bool {
        self.priority() > 0
    }
}

/// Whether an unplanned failover happens by itself or waits for an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailoverMode {
    /// The best eligible site takes over when the active site is lost.
    Automatic,
    /// An unplanned failover is proposed and held until `approve`.
    Manual,
}

/// What happens when a site with higher priority than the active one is
/// healthy again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailbackPolicy {
    /// It takes over through a graceful handoff after `failback_delay`.
    Automatic,
    /// Nothing moves until an operator switches over.
    Manual,
}

/// Protocol timers. All durations on each node's own monotonic clock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Timers {
    /// How often every node sends its heartbeat; the active site renews its
    /// lease with each one.
    pub heartbeat_interval: Duration,
    /// How long a grant (a vote or a heartbeat acknowledgement) binds a voter.
    pub lease_duration: Duration,
    /// Upper bound of the random extra delay before a site starts an election.
    pub election_jitter: Duration,
    /// Largest rate error of any node's clock against true time, in parts
    /// per million (two nodes may then differ by twice this).
    pub max_drift_ppm: u32,
    /// How often the active site re-asserts its actuators (convergence).
    pub actuation_interval: Duration,
    /// How long a returning higher-priority site must stay healthy before an
    /// automatic failback hands over to it.
    pub failback_delay: Duration,
    /// After an automatic failover, another automatic one within this time
    /// needs approval.
    pub failover_cooldown: Duration,
    /// How long a planned switchover drains the old site before handing over.
    pub drain: Duration,
    /// How long a site that declined promotion (failed `pre_promote`) stays
    /// out of elections.
    pub declined_backoff: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            heartbeat_interval: Duration::from_millis(1000),
            lease_duration: Duration::from_millis(3000),
            election_jitter: Duration::from_millis(300),
            max_drift_ppm: 1000,
            actuation_interval: Duration::from_millis(10_000),
            failback_delay: Duration::from_millis(30_000),
            failover_cooldown: Duration::from_millis(300_000),
            drain: Duration::ZERO,
            declined_backoff: Duration::from_millis(10_000),
        }
    }
}

impl Timers {
    /// The part of the lease the holder gives up so that clock drift can never
    /// make it outlive the voters' promises: `2 * rho * lease` rounded up,
    /// plus one millisecond for the whole-millisecond clock. With the default
    /// 1000 ppm that is 1/500 of the lease. See `docs/protocol.md`.
    pub fn drift_margin(&self) -> Duration {
        self.drift_margin_for(self.lease_duration)
    }

    /// The drift margin for a lease of length `lease` (which the voters'
    /// promises may make shorter than the configured one).
    pub fn drift_margin_for(&self, lease: Duration) -> Duration {
        let lease_ms = u128::from(millis(lease));
        let margin = (2 * lease_ms * u128::from(self.max_drift_ppm)).div_ceil(1_000_000);
        Duration::from_millis(u64::try_from(margin).unwrap_or(u64::MAX).saturating_add(1))
    }
}

/// Cluster-wide policies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Automatic or operator-approved failover.
    pub failover_mode: FailoverMode,
    /// Automatic or manual failback.
    pub failback: FailbackPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { failover_mode: FailoverMode::Automatic, failback: FailbackPolicy::Manual }
    }
}

/// Everything the nodes of one cluster must agree on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClusterConfig {
    /// Members; a member's [`NodeId`] is its index here.
    pub members: Vec<Member>,
    /// Protocol timers.
    pub timers: Timers,
    /// Failover and failback policies.
    pub policy: Policy,
}

/// Why a configuration cannot run. Each message names what is wrong.
// Variant fields are named for what they hold; each variant's doc says the rest.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Fewer than one site that can become active.
    #[error("no member can become active: configure at least one site with priority above 0")]
    NoEligibleSite,
    /// Two members with one name.
    #[error("member name {0:?} is used twice; every site and witness needs its own name")]
    DuplicateName(String),
    /// An empty member name.
    #[error("a member has an empty name")]
    EmptyName,
    /// More members than supported.
    #[error("{0} members configured; at most {MAX_MEMBERS} are supported")]
    TooManyMembers(usize),
    /// More voters than supported.
    #[error("{0} voting members configured; at most {MAX_VOTERS} may vote (as in MongoDB)")]
    TooManyVoters(usize),
    /// A vote count other than 0 or 1.
    #[error("member {name:?} has votes = {votes}; votes must be 0 or 1")]
    BadVotes { name: String, votes: u8 },
    /// No voting members at all.
    #[error("no member has a vote, so no quorum can ever form")]
    NoVoters,
    /// A witness without a vote is useless.
    #[error("witness {0:?} has votes = 0; a witness exists only to vote")]
    WitnessWithoutVote(String),
    /// Priority beyond MongoDB's range.
    #[error("site {name:?} has priority {priority}; priorities run from 0 to {MAX_PRIORITY}")]
    PriorityOutOfRange { name: String, priority: u16 },
    /// Heartbeat interval of zero.
    #[error("heartbeat interval must be above zero")]
    ZeroHeartbeat,
    /// Lease too short for the heartbeat interval.
    #[error("lease duration {lease:?} must be at least twice the heartbeat interval {heartbeat:?}, so one lost heartbeat does not end the lease")]
    LeaseTooShort { lease: Duration, heartbeat: Duration },
    /// Drift bound that makes leases meaningless.
    #[error("max clock drift {0} ppm is too large: it must be below 100000 (10%)")]
    DriftTooLarge(u32),
    /// A lease longer than a node will accept from its own state file.
    #[error("lease duration {0:?} is longer than a day: a node could not restart with it")]
    LeaseTooLong(Duration),
    /// Actuation interval of zero.
    #[error("actuation interval must be above zero")]
    ZeroActuationInterval,
}

impl ClusterConfig {
    /// Checks every rule the protocol relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.members.len() > MAX_MEMBERS {
            return Err(ConfigError::TooManyMembers(self.members.len()));
        }
        for (i, m) in self.members.iter().enumerate() {
            if m.name.trim().is_empty() {
                return Err(ConfigError::EmptyName);
            }
            if self.members[..i].iter().any(|o| o.name == m.name) {
                return Err(ConfigError::DuplicateName(m.name.clone()));
            }
            if m.votes > 1 {
                return Err(ConfigError::BadVotes { name: m.name.clone(), votes: m.votes });
            }
            match m.kind {
                MemberKind::Site { priority } if priority > MAX_PRIORITY => {
                    return Err(ConfigError::PriorityOutOfRange { name: m.name.clone(), priority });
                }
                MemberKind::Witness if m.votes == 0 => {
                    return Err(ConfigError::WitnessWithoutVote(m.name.clone()));
                }
                _ => {}
            }
        }
        let voters = self.members.iter().filter(|m| m.votes > 0).count();
        if voters == 0 {
            return Err(ConfigError::NoVoters);
        }
        if voters > MAX_VOTERS {
            return Err(ConfigError::TooManyVoters(voters));
        }
        if !self.members.iter().any(Member::can_be_active) {
            return Err(ConfigError::NoEligibleSite);
        }
        let t = &self.timers;
        if t.heartbeat_interval.is_zero() {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if t.lease_duration < t.heartbeat_interval * 2 {
            return Err(ConfigError::LeaseTooShort { lease: t.lease_duration, heartbeat: t.heartbeat_interval });
        }
        if t.lease_duration > Duration::from_millis(crate::durable::MAX_BOUND_MS) {
            return Err(ConfigError::LeaseTooLong(t.lease_duration));
        }
        if t.max_drift_ppm >= 100_000 {
            return Err(ConfigError::DriftTooLarge(t.max_drift_ppm));
        }
        if t.actuation_interval.is_zero() {
            return Err(ConfigError::ZeroActuationInterval);
        }
        Ok(())
    }

    /// Votes needed for a majority of all configured votes.
    pub fn quorum(&self) -> u32 {
        self.total_votes() / 2 + 1
    }

    /// Sum of all configured votes.
    pub fn total_votes(&self) -> u32 {
        self.members.iter().map(|m| u32::from(m.votes)).sum()
    }

    /// The member behind `id`, if it exists.
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.get(id.index())
    }

    /// The id of the member called `name`.
    pub fn id_of(&self, name: &str) -> Option<NodeId> {
        self.members.iter().position(|m| m.name == name).and_then(|i| u8::try_from(i).ok()).map(NodeId)
    }

    /// Every member id, in order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.members.len()).filter_map(|i| u8::try_from(i).ok()).map(NodeId)
    }

    /// Priority of `id` (0 for witnesses and unknown ids).
    pub fn priority(&self, id: NodeId) -> u16 {
        self.member(id).map_or(0, Member::priority)
    }

    /// Votes of `id` (0 for unknown ids).
    pub fn votes(&self, id: NodeId) -> u32 {
        self.member(id).map_or(0, |m| u32::from(m.votes))
    }

    /// Rank of a site among the sites that can become active, by priority
    /// (0 for the highest; ties broken by id), leaving out `lost` (the active
    /// site whose loss starts the election). Higher ranks wait longer before
    /// they start an election, so the best remaining site usually moves first.
    pub fn election_rank(&self, id: NodeId, lost: Option<NodeId>) -> u32 {
        let mine = self.priority(id);
        let ahead = self
            .ids()
            .filter(|&o| o != id && Some(o) != lost)
            .filter(|&o| {
                let p = self.priority(o);
                p > 0 && (p > mine || (p == mine && o < id))
            })
            .count();
        u32::try_from(ahead).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_sites_and_witness() -> ClusterConfig {
        ClusterConfig {
            members: vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")],
            timers: Timers::default(),
            policy: Policy::default(),
        }
    }

    #[test]
    fn main_case_is_valid_and_needs_two_of_three_votes() {
        let c = two_sites_and_witness();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.quorum(), 2);
        assert_eq!(c.election_rank(NodeId(0), None), 0);
        assert_eq!(c.election_rank(NodeId(1), None), 1);
        assert_eq!(c.election_rank(NodeId(1), Some(NodeId(0))), 0);
    }

    #[test]
    fn each_bad_config_names_its_problem() {
        let mut c = two_sites_and_witness();
        c.members[1].name = "site-a".into();
        assert_eq!(c.validate(), Err(ConfigError::DuplicateName("site-a".into())));

        let mut c = two_sites_and_witness();
        c.members[0].kind = MemberKind::Site { priority: 1001 };
        assert!(matches!(c.validate(), Err(ConfigError::PriorityOutOfRange { priority: 1001, .. })));

        let mut c = two_sites_and_witness();
        c.timers.lease_duration = c.timers.heartbeat_interval;
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("at least twice the heartbeat"), "{err}");

        let mut c = two_sites_and_witness();
        for m in &mut c.members {
            if let MemberKind::Site { .. } = m.kind {
                m.kind = MemberKind::Site { priority: 0 };
            }
        }
        assert_eq!(c.validate(), Err(ConfigError::NoEligibleSite));

        let mut c = two_sites_and_witness();
        c.members = (0..8).map(|i| Member::site(&format!("s{i}"), 1)).collect();
        assert_eq!(c.validate(), Err(ConfigError::TooManyVoters(8)));

        // Quorum impossible: nobody votes.
        let mut c = two_sites_and_witness();
        c.members.truncate(2);
        c.members.iter_mut().for_each(|m| m.votes = 0);
        assert_eq!(c.validate(), Err(ConfigError::NoVoters));
    }

    #[test]
    fn every_limit_is_accepted_at_its_edge_and_refused_past_it() {
        let valid = |f: &dyn Fn(&mut ClusterConfig)| {
            let mut c = two_sites_and_witness();
            f(&mut c);
            c.validate()
        };
        // Members: 16 allowed, 17 not (voters kept at 3).
        let members = |n: usize| {
            move |c: &mut ClusterConfig| {
                c.members.extend((c.members.len()..n).map(|i| Member { votes: 0, ..Member::site(&format!("s{i}"), 1) }))
            }
        };
        assert_eq!(valid(&members(MAX_MEMBERS)), Ok(()));
        assert_eq!(valid(&members(MAX_MEMBERS + 1)), Err(ConfigError::TooManyMembers(MAX_MEMBERS + 1)));
        // Voters: 7 allowed, 8 not.
        let voters =
            |n: usize| move |c: &mut ClusterConfig| c.members.extend((3..n).map(|i| Member::site(&format!("v{i}"), 1)));
        assert_eq!(valid(&voters(MAX_VOTERS)), Ok(()));
        assert_eq!(valid(&voters(MAX_VOTERS + 1)), Err(ConfigError::TooManyVoters(MAX_VOTERS + 1)));
        // Priority: 1000 allowed, 1001 not.
        assert_eq!(valid(&|c| c.members[0].kind = MemberKind::Site { priority: MAX_PRIORITY }), Ok(()));
        // Votes: 0 and 1 for a site; a witness needs its vote.
        assert_eq!(valid(&|c| c.members[1].votes = 0), Ok(()));
        assert!(matches!(valid(&|c| c.members[1].votes = 2), Err(ConfigError::BadVotes { votes: 2, .. })));
        assert_eq!(valid(&|c| c.members[2].votes = 0), Err(ConfigError::WitnessWithoutVote("witness".into())));
        assert_eq!(valid(&|c| c.members[0].name = " ".into()), Err(ConfigError::EmptyName));
        // Lease: exactly twice the heartbeat is enough.
        assert_eq!(valid(&|c| c.timers.lease_duration = c.timers.heartbeat_interval * 2), Ok(()));
        assert_eq!(valid(&|c| c.timers.heartbeat_interval = Duration::ZERO), Err(ConfigError::ZeroHeartbeat));
        // Drift: below 10% allowed.
        assert_eq!(valid(&|c| c.timers.max_drift_ppm = 99_999), Ok(()));
        assert_eq!(valid(&|c| c.timers.max_drift_ppm = 100_000), Err(ConfigError::DriftTooLarge(100_000)));
        assert_eq!(valid(&|c| c.timers.actuation_interval = Duration::ZERO), Err(ConfigError::ZeroActuationInterval));
    }

    #[test]
    fn votes_and_quorum_count_only_voting_members() {
        let mut c = two_sites_and_witness();
        c.members[1].votes = 0;
        assert_eq!((c.votes(NodeId(0)), c.votes(NodeId(1)), c.votes(NodeId(9))), (1, 0, 0));
        assert_eq!((c.total_votes(), c.quorum()), (2, 2));
        c.members.push(Member::witness("witness-2"));
        assert_eq!((c.total_votes(), c.quorum()), (3, 2));
        assert_eq!((c.priority(NodeId(0)), c.priority(NodeId(2)), c.priority(NodeId(9))), (2, 0, 0));
        assert_eq!(c.id_of("witness-2"), Some(NodeId(3)));
        assert_eq!(c.id_of("nobody"), None);
        assert_eq!(NodeId(3).to_string(), "node#3");
    }

    #[test]
    fn election_rank_orders_by_priority_then_id_and_skips_the_lost_site() {
        let mut c = two_sites_and_witness();
        c.members.insert(2, Member::site("site-c", 2));
        c.members.push(Member::site("site-d", 0));
        // site-a 2, site-b 1, site-c 2, witness, site-d 0.
        let rank = |id: u8, lost: Option<u8>| c.election_rank(NodeId(id), lost.map(NodeId));
        assert_eq!(rank(0, None), 0, "ties go to the lower id");
        assert_eq!(rank(2, None), 1);
        assert_eq!(rank(1, None), 2, "two sites rank above it; the witness and priority 0 do not");
        assert_eq!(rank(2, Some(0)), 0);
        assert_eq!(rank(1, Some(2)), 1);
        assert_eq!(rank(1, Some(1)), 2, "its own loss changes nothing");
    }

    #[test]
    fn a_lease_of_a_day_is_the_longest() {
        let day = Duration::from_secs(24 * 3600);
        let mut c = ClusterConfig {
            members: vec![Member::site("site-a", 1)],
            timers: Timers { lease_duration: day, ..Timers::default() },
            policy: Policy::default(),
        };
        assert_eq!(c.validate(), Ok(()));
        c.timers.lease_duration = day + Duration::from_millis(1);
        assert_eq!(c.validate(), Err(ConfigError::LeaseTooLong(day + Duration::from_millis(1))));
    }

    #[test]
    fn drift_margin_is_about_one_five_hundredth_of_the_lease() {
        let t = Timers { lease_duration: Duration::from_millis(3000), ..Timers::default() };
        // 2 * 0.001 * 3000 = 6 ms, plus 1 ms of clock granularity.
        assert_eq!(t.drift_margin(), Duration::from_millis(7));
    }
}
