//! Property tests of the edge between the network and the core: whatever
//! arrives on the peer port, as raw bytes or as well-formed messages with
//! absurd values, goes through protobuf decoding and `wire::decode` into
//! running nodes without a panic, and no node's term or pause version ever
//! passes `MAX_TERM`: a counter beyond it is refused at the wire, so none
//! can wrap or be pushed to its end from outside.
//!
//! What is not claimed here: that forged messages *within* the bounds, sent
//! in another member's name, leave the protocol safe. Without mutual TLS a
//! sender's name is not proved, and a forger can do what that member could;
//! the deployment must use mutual TLS (docs/security.md).

use std::time::Duration;

use failover_controller::wire;
use failover_core::sim::SimCluster;
use failover_core::{ClusterConfig, Member, Policy, Timers, MAX_TERM};
use failover_proto::v1 as pb;
use proptest::prelude::*;
use prost::Message as _;

fn cfg() -> ClusterConfig {
    ClusterConfig {
        members: vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")],
        timers: Timers {
            heartbeat_interval: Duration::from_millis(100),
            lease_duration: Duration::from_millis(300),
            ..Timers::default()
        },
        policy: Policy::default(),
    }
}

/// A counter: the edges of the bound, the ends of `u64`, and anything.
fn counter() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..5u64,
        Just(MAX_TERM - 1),
        Just(MAX_TERM),
        Just(MAX_TERM + 1),
        Just(u64::MAX - 1),
        Just(u64::MAX),
        any::<u64>(),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![Just("site-a"), Just("site-b"), Just("witness"), Just("intruder"), Just("")].prop_map(str::to_owned)
}

fn report() -> impl Strategy<Value = Option<pb::SiteReport>> {
    proptest::option::weighted(
        0.9,
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(healthy, caught_up, sees_quorum)| pb::SiteReport {
            healthy,
            caught_up,
            sees_quorum,
        }),
    )
}

fn request() -> impl Strategy<Value = pb::VoteRequest> {
    (counter(), report(), any::<bool>(), any::<bool>()).prop_map(|(term, report, approved, handoff)| pb::VoteRequest {
        term,
        report,
        approved,
        handoff,
    })
}

fn reply() -> impl Strategy<Value = pb::VoteReply> {
    (counter(), any::<bool>(), -1..14i32, counter(), counter()).prop_map(
        |(term, granted, refusal, lease_held_ms, bound_ms)| pb::VoteReply {
            term,
            granted,
            refusal,
            lease_held_ms,
            bound_ms,
        },
    )
}

fn heartbeat() -> impl Strategy<Value = pb::Heartbeat> {
    let lease =
        proptest::option::of((counter(), -1..7i32, counter()).prop_map(|(seq, cause, cooldown_ms)| pb::LeaseRenewal {
            seq,
            cause,
            cooldown_ms,
        }));
    let pause = proptest::option::weighted(
        0.9,
        (counter(), name(), any::<bool>()).prop_map(|(version, by, paused)| pb::PauseSetting { version, by, paused }),
    );
    let proposal =
        proptest::option::of((name(), -1..8i32, counter()).prop_map(|(target, reason, age_ms)| pb::ProposalNotice {
            target,
            reason,
            age_ms,
        }));
    let note = (name(), name(), ".{0,300}", any::<u64>())
        .prop_map(|(site, by, reason, since_unix_ms)| pb::MaintenanceNote { site, by, reason, since_unix_ms });
    let maintenance = proptest::option::of(
        (counter(), name(), proptest::collection::vec(name(), 0..4), proptest::collection::vec(note, 0..20))
            .prop_map(|(version, by, sites, notes)| pb::MaintenanceSetting { version, by, sites, notes }),
    );
    (counter(), lease, report(), pause, proposal, maintenance).prop_map(
        |(term, lease, report, pause, proposal, maintenance)| pb::Heartbeat {
            term,
            lease,
            report,
            pause,
            proposal,
            maintenance,
        },
    )
}

fn envelope() -> impl Strategy<Value = pb::Envelope> {
    use pb::envelope::Body;
    let body = prop_oneof![
        request().prop_map(Body::PreVote),
        request().prop_map(Body::Vote),
        reply().prop_map(Body::PreVoteReply),
        reply().prop_map(Body::VoteReply),
        heartbeat().prop_map(Body::Heartbeat),
        (counter(), counter(), any::<bool>(), counter()).prop_map(|(term, seq, granted, bound_ms)| {
            Body::HeartbeatReply(pb::HeartbeatReply { term, seq, granted, bound_ms })
        }),
        (counter(), name()).prop_map(|(term, to)| Body::ReleaseLease(pb::ReleaseLease { term, to })),
        counter().prop_map(|term| Body::ReleaseAck(pb::ReleaseAck { term })),
        counter().prop_map(|term| Body::TimeoutNow(pb::TimeoutNow { term })),
        Just(Body::StateQuery(pb::StateQuery {})),
        (counter(), name(), counter(), heartbeat()).prop_map(|(term, last_chosen, last_chosen_term, h)| {
            Body::StateAnswer(pb::StateAnswer {
                term,
                last_chosen,
                last_chosen_term,
                pause: h.pause,
                maintenance: h.maintenance,
            })
        }),
    ];
    (name(), proptest::option::weighted(0.95, body)).prop_map(|(from, body)| pb::Envelope {
        from,
        cluster: String::new(),
        cluster_name: String::new(),
        body,
    })
}

/// The largest term or pause version an envelope carries.
fn largest_counter(env: &pb::Envelope) -> u64 {
    use pb::envelope::Body;
    match &env.body {
        Some(Body::PreVote(r) | Body::Vote(r)) => r.term,
        Some(Body::PreVoteReply(r) | Body::VoteReply(r)) => r.term,
        Some(Body::Heartbeat(h)) => h.term.max(h.pause.as_ref().map_or(0, |p| p.version)),
        Some(Body::HeartbeatReply(r)) => r.term,
        Some(Body::ReleaseLease(r)) => r.term,
        Some(Body::ReleaseAck(r)) => r.term,
        Some(Body::TimeoutNow(r)) => r.term,
        Some(Body::StateQuery(_)) => 0,
        Some(Body::StateAnswer(a)) => a.term.max(a.pause.as_ref().map_or(0, |p| p.version)),
        None => 0,
    }
}

/// A three-member cluster in virtual time with site-a active.
fn running_cluster(seed: u64) -> SimCluster {
    let mut sim = SimCluster::new(cfg(), seed).expect("valid config");
    let elected = sim.run_until(10_000, |s| s.active().is_some());
    assert!(elected, "no site was elected");
    sim
}

/// Delivers `env`, if it decodes, from its sender to every other member,
/// and lets the cluster run a little.
fn deliver(sim: &mut SimCluster, env: pb::Envelope) -> Result<(), wire::WireError> {
    if let Some(notes) = wire::maintenance_notes(sim.config(), &env) {
        assert!(notes.sites.iter().all(|n| failover_controller::maintenance_notes::check_reason(&n.reason).is_ok()));
    }
    let (from, message) = wire::decode(sim.config(), env)?;
    assert!(message.within_bounds(), "decoded beyond the bound: {message:?}");
    for to in sim.config().ids().filter(|&id| id != from).collect::<Vec<_>>() {
        sim.inject(from, to, message);
    }
    sim.run_for(50);
    Ok(())
}

fn assert_counters_bounded(sim: &SimCluster) {
    for id in sim.config().ids() {
        if let Some(status) = sim.status(id) {
            assert!(status.term.0 <= MAX_TERM, "{id} reached term {}", status.term.0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_or_leave_every_counter_bounded(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..96), 1..8),
        seed in any::<u64>(),
    ) {
        let mut sim = running_cluster(seed);
        for bytes in frames {
            if let Ok(env) = pb::Envelope::decode(bytes.as_slice()) {
                let _ = deliver(&mut sim, env);
            }
        }
        assert_counters_bounded(&sim);
    }

    #[test]
    fn absurd_messages_beyond_the_bound_are_refused_and_none_pushes_a_counter_past_it(
        envelopes in proptest::collection::vec(envelope(), 1..12),
        seed in any::<u64>(),
    ) {
        let mut sim = running_cluster(seed);
        for env in envelopes {
            let beyond = largest_counter(&env) > MAX_TERM;
            let outcome = deliver(&mut sim, env);
            if beyond {
                prop_assert!(outcome.is_err(), "a counter beyond 2^48 was let through");
            }
        }
        assert_counters_bounded(&sim);
    }
}
