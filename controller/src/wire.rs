//! Conversion between the gRPC wire types and the core's messages. Anything
//! from a peer that does not fit (unknown sender or target, missing fields,
//! unknown enum values) is rejected here with an error naming the field,
//! before it can reach the protocol.

use failover_core::{
    ActivationCause, Chosen, ClusterConfig, Heartbeat, HeartbeatReply, LeaseRenewal, MaintenanceSetting, Message,
    NodeId, PauseSetting, ProposalNotice, ProposalReason, Refusal, SiteReport, StateAnswer, Term, VoteReply,
    VoteRequest,
};

use crate::maintenance_notes::{Notes, SiteNote};
use failover_proto::v1 as pb;

/// A peer message that cannot be accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// A required field is absent.
    #[error("field {0} is missing")]
    Missing(&'static str),
    /// A member name that is not configured.
    #[error("field {field}: {name:?} is not a configured member")]
    UnknownMember {
        /// The field.
        field: &'static str,
        /// The name received.
        name: String,
    },
    /// An enum value this version does not know.
    #[error("field {field}: unknown value {value}")]
    BadEnum {
        /// The field.
        field: &'static str,
        /// The value received.
        value: i32,
    },
    /// A term, pause or maintenance version no cluster reaches: corrupt or
    /// hostile.
    #[error("a term, pause or maintenance version above {max} (2^48), which no cluster reaches", max = failover_core::MAX_TERM)]
    CounterOutOfRange,
    /// A lease time longer than any node grants: corrupt or hostile.
    #[error("field {field}: {ms} ms is more than the limit of {max} ms (a day), longer than any lease", max = failover_core::MAX_BOUND_MS)]
    DurationOutOfRange {
        /// The field.
        field: &'static str,
        /// The value received, in milliseconds.
        ms: u64,
    },
}

/// A lease time from a peer, refused beyond the longest binding any node
/// makes ([`failover_core::MAX_BOUND_MS`], a day: leases are validated to at
/// most that, and so is the quiet period after a restart). The other
/// durations a peer sends are bounded where they are used: the cooldown
/// left by the node's own cooldown, a proposal's age by saturating.
fn lease_ms(field: &'static str, ms: u64) -> Result<u64, WireError> {
    if ms > failover_core::MAX_BOUND_MS {
        return Err(WireError::DurationOutOfRange { field, ms });
    }
    Ok(ms)
}

fn member(cfg: &ClusterConfig, field: &'static str, name: &str) -> Result<NodeId, WireError> {
    cfg.id_of(name).ok_or_else(|| WireError::UnknownMember { field, name: name.to_owned() })
}

fn name(cfg: &ClusterConfig, id: NodeId) -> String {
    cfg.member(id).map(|m| m.name.clone()).unwrap_or_default()
}

fn report_in(r: Option<pb::SiteReport>, field: &'static str) -> Result<SiteReport, WireError> {
    let r = r.ok_or(WireError::Missing(field))?;
    Ok(SiteReport { healthy: r.healthy, caught_up: r.caught_up, sees_quorum: r.sees_quorum })
}

fn report_out(r: SiteReport) -> pb::SiteReport {
    pb::SiteReport { healthy: r.healthy, caught_up: r.caught_up, sees_quorum: r.sees_quorum }
}

/// `fields`: the setting's name and its `by`'s, for errors.
fn pause_in(
    cfg: &ClusterConfig,
    p: Option<pb::PauseSetting>,
    fields: (&'static str, &'static str),
) -> Result<PauseSetting, WireError> {
    let p = p.ok_or(WireError::Missing(fields.0))?;
    let by = if p.version == 0 { 0 } else { member(cfg, fields.1, &p.by)?.0 };
    Ok(PauseSetting { version: p.version, by, paused: p.paused })
}

fn pause_out(cfg: &ClusterConfig, p: PauseSetting) -> pb::PauseSetting {
    pb::PauseSetting {
        version: p.version,
        by: if p.version == 0 { String::new() } else { name(cfg, NodeId(p.by)) },
        paused: p.paused,
    }
}

fn maintenance_out(cfg: &ClusterConfig, m: MaintenanceSetting) -> pb::MaintenanceSetting {
    pb::MaintenanceSetting {
        version: m.version,
        by: if m.version == 0 { String::new() } else { name(cfg, NodeId(m.by)) },
        sites: cfg.ids().filter(|&s| m.contains(s)).map(|s| name(cfg, s)).collect(),
        notes: Vec::new(),
    }
}

fn request_in(r: pb::VoteRequest) -> Result<VoteRequest, WireError> {
    Ok(VoteRequest {
        term: Term(r.term),
        report: report_in(r.report, "vote_request.report")?,
        approved: r.approved,
        handoff: r.handoff,
    })
}

fn request_out(r: VoteRequest) -> pb::VoteRequest {
    pb::VoteRequest { term: r.term.0, report: Some(report_out(r.report)), approved: r.approved, handoff: r.handoff }
}

fn refusal_in(v: i32) -> Result<Option<Refusal>, WireError> {
    use pb::Refusal as P;
    let p = P::try_from(v).map_err(|_| WireError::BadEnum { field: "vote_reply.refusal", value: v })?;
    Ok(match p {
        P::Unspecified => None,
        P::StaleTerm => Some(Refusal::StaleTerm),
        P::AlreadyVoted => Some(Refusal::AlreadyVoted),
        P::LeaseHeld => Some(Refusal::LeaseHeld),
        P::NotElectable => Some(Refusal::NotElectable),
        P::CandidateUnhealthy => Some(Refusal::CandidateUnhealthy),
        P::CandidateLagging => Some(Refusal::CandidateLagging),
        P::NeedsApproval => Some(Refusal::NeedsApproval),
        P::Paused => Some(Refusal::Paused),
        P::Cooldown => Some(Refusal::Cooldown),
        P::BetterCandidate => Some(Refusal::BetterCandidate),
        P::InMaintenance => Some(Refusal::InMaintenance),
        P::Recovering => Some(Refusal::Recovering),
    })
}

fn refusal_out(r: Option<Refusal>) -> pb::Refusal {
    use pb::Refusal as P;
    match r {
        None => P::Unspecified,
        Some(Refusal::StaleTerm) => P::StaleTerm,
        Some(Refusal::AlreadyVoted) => P::AlreadyVoted,
        Some(Refusal::LeaseHeld) => P::LeaseHeld,
        Some(Refusal::NotElectable) => P::NotElectable,
        Some(Refusal::CandidateUnhealthy) => P::CandidateUnhealthy,
        Some(Refusal::CandidateLagging) => P::CandidateLagging,
        Some(Refusal::NeedsApproval) => P::NeedsApproval,
        Some(Refusal::Paused) => P::Paused,
        Some(Refusal::Cooldown) => P::Cooldown,
        Some(Refusal::BetterCandidate) => P::BetterCandidate,
        Some(Refusal::InMaintenance) => P::InMaintenance,
        Some(Refusal::Recovering) => P::Recovering,
    }
}

fn reply_in(r: pb::VoteReply) -> Result<VoteReply, WireError> {
    Ok(VoteReply {
        term: Term(r.term),
        granted: r.granted,
        refusal: refusal_in(r.refusal)?,
        lease_held_ms: lease_ms("vote_reply.lease_held_ms", r.lease_held_ms)?,
        bound_ms: lease_ms("vote_reply.bound_ms", r.bound_ms)?,
    })
}

fn reply_out(r: VoteReply) -> pb::VoteReply {
    pb::VoteReply {
        term: r.term.0,
        granted: r.granted,
        refusal: refusal_out(r.refusal) as i32,
        lease_held_ms: r.lease_held_ms,
        bound_ms: r.bound_ms,
    }
}

fn cause_in(v: i32) -> Result<ActivationCause, WireError> {
    use pb::ActivationCause as P;
    match P::try_from(v) {
        Ok(P::Reclaim) => Ok(ActivationCause::Reclaim),
        Ok(P::AutomaticFailover) => Ok(ActivationCause::AutomaticFailover),
        Ok(P::ApprovedFailover) => Ok(ActivationCause::ApprovedFailover),
        Ok(P::Handoff) => Ok(ActivationCause::Handoff),
        Ok(P::Forced) => Ok(ActivationCause::Forced),
        _ => Err(WireError::BadEnum { field: "heartbeat.lease.cause", value: v }),
    }
}

fn cause_out(c: ActivationCause) -> pb::ActivationCause {
    use pb::ActivationCause as P;
    match c {
        ActivationCause::Reclaim => P::Reclaim,
        ActivationCause::AutomaticFailover => P::AutomaticFailover,
        ActivationCause::ApprovedFailover => P::ApprovedFailover,
        ActivationCause::Handoff => P::Handoff,
        ActivationCause::Forced => P::Forced,
    }
}

fn reason_in(v: i32) -> Result<ProposalReason, WireError> {
    use pb::ProposalReason as P;
    match P::try_from(v) {
        Ok(P::ManualMode) => Ok(ProposalReason::ManualMode),
        Ok(P::TargetLagging) => Ok(ProposalReason::TargetLagging),
        Ok(P::Cooldown) => Ok(ProposalReason::Cooldown),
        Ok(P::ActiveUnhealthy) => Ok(ProposalReason::ActiveUnhealthy),
        Ok(P::Failback) => Ok(ProposalReason::Failback),
        Ok(P::PromotionDeclined) => Ok(ProposalReason::PromotionDeclined),
        Ok(P::Paused) => Ok(ProposalReason::Paused),
        Ok(P::TargetInMaintenance) => Ok(ProposalReason::TargetInMaintenance),
        _ => Err(WireError::BadEnum { field: "heartbeat.proposal.reason", value: v }),
    }
}

fn reason_out(r: ProposalReason) -> pb::ProposalReason {
    use pb::ProposalReason as P;
    match r {
        ProposalReason::ManualMode => P::ManualMode,
        ProposalReason::TargetLagging => P::TargetLagging,
        ProposalReason::Cooldown => P::Cooldown,
        ProposalReason::ActiveUnhealthy => P::ActiveUnhealthy,
        ProposalReason::Failback => P::Failback,
        ProposalReason::PromotionDeclined => P::PromotionDeclined,
        ProposalReason::Paused => P::Paused,
        ProposalReason::TargetInMaintenance => P::TargetInMaintenance,
    }
}

/// The fields of a heartbeat's maintenance setting, for errors.
const HEARTBEAT_MAINTENANCE: (&str, &str) = ("heartbeat.maintenance.by", "heartbeat.maintenance.sites");

/// The maintenance setting a heartbeat or a state answer carries (`fields`:
/// its `by` and `sites`, for errors); none from a build that does not know
/// it.
fn maintenance_in(
    cfg: &ClusterConfig,
    m: Option<&pb::MaintenanceSetting>,
    fields: (&'static str, &'static str),
) -> Result<MaintenanceSetting, WireError> {
    let Some(m) = m else { return Ok(MaintenanceSetting::default()) };
    let by = if m.version == 0 { 0 } else { member(cfg, fields.0, &m.by)?.0 };
    let mut setting = MaintenanceSetting { version: m.version, by, sites: 0 };
    for site in &m.sites {
        setting.sites = setting.with(member(cfg, fields.1, site)?, true);
    }
    Ok(setting)
}

/// The notes a heartbeat carries beside its maintenance setting, for the
/// version they belong to. Notes that do not fit (an unknown member, a
/// reason beyond the bound or with control characters, more notes than
/// members) are left out: they explain, they never decide.
pub fn maintenance_notes(cfg: &ClusterConfig, env: &pb::Envelope) -> Option<Notes> {
    let Some(pb::envelope::Body::Heartbeat(h)) = &env.body else { return None };
    let m = h.maintenance.as_ref()?;
    if m.notes.is_empty() || m.notes.len() > failover_core::config::MAX_MEMBERS {
        return None;
    }
    let setting = maintenance_in(cfg, Some(m), HEARTBEAT_MAINTENANCE).ok()?;
    let sites = m
        .notes
        .iter()
        .filter(|n| crate::maintenance_notes::check_reason(&n.reason).is_ok())
        .filter_map(|n| {
            Some(SiteNote {
                site: cfg.id_of(&n.site)?,
                by: cfg.id_of(&n.by)?,
                reason: n.reason.clone(),
                since_unix_ms: n.since_unix_ms,
            })
        })
        .collect();
    Some(Notes { version: setting.version, by: setting.by, sites })
}

/// Adds `notes` to a heartbeat envelope, when they belong to the setting it
/// carries.
pub fn attach_notes(cfg: &ClusterConfig, env: &mut pb::Envelope, notes: &Notes) {
    let Some(pb::envelope::Body::Heartbeat(h)) = &mut env.body else { return };
    let Some(m) = &mut h.maintenance else { return };
    let by = if m.version == 0 { 0 } else { cfg.id_of(&m.by).map_or(u8::MAX, |id| id.0) };
    if notes.version != m.version || notes.by != by || notes.sites.is_empty() {
        return;
    }
    m.notes = notes
        .sites
        .iter()
        .map(|n| pb::MaintenanceNote {
            site: name(cfg, n.site),
            by: name(cfg, n.by),
            reason: n.reason.clone(),
            since_unix_ms: n.since_unix_ms,
        })
        .collect();
}

/// Decodes an envelope into (sender, message), checking every field.
pub fn decode(cfg: &ClusterConfig, env: pb::Envelope) -> Result<(NodeId, Message), WireError> {
    use pb::envelope::Body;
    let from = member(cfg, "from", &env.from)?;
    let message = match env.body.ok_or(WireError::Missing("body"))? {
        Body::PreVote(r) => Message::PreVote(request_in(r)?),
        Body::PreVoteReply(r) => Message::PreVoteReply(reply_in(r)?),
        Body::Vote(r) => Message::Vote(request_in(r)?),
        Body::VoteReply(r) => Message::VoteReply(reply_in(r)?),
        Body::Heartbeat(h) => {
            let lease = h
                .lease
                .map(|l| {
                    Ok::<_, WireError>(LeaseRenewal {
                        seq: l.seq,
                        cause: cause_in(l.cause)?,
                        cooldown_ms: l.cooldown_ms,
                    })
                })
                .transpose()?;
            let pause = pause_in(cfg, h.pause, ("heartbeat.pause", "heartbeat.pause.by"))?;
            let proposal = h
                .proposal
                .map(|p| {
                    Ok::<_, WireError>(ProposalNotice {
                        target: member(cfg, "heartbeat.proposal.target", &p.target)?,
                        reason: reason_in(p.reason)?,
                        age_ms: p.age_ms,
                    })
                })
                .transpose()?;
            Message::Heartbeat(Heartbeat {
                term: Term(h.term),
                lease,
                report: report_in(h.report, "heartbeat.report")?,
                pause,
                proposal,
                maintenance: maintenance_in(cfg, h.maintenance.as_ref(), HEARTBEAT_MAINTENANCE)?,
            })
        }
        Body::HeartbeatReply(r) => Message::HeartbeatReply(HeartbeatReply {
            term: Term(r.term),
            seq: r.seq,
            granted: r.granted,
            bound_ms: lease_ms("heartbeat_reply.bound_ms", r.bound_ms)?,
        }),
        Body::ReleaseLease(r) => {
            Message::ReleaseLease { term: Term(r.term), to: member(cfg, "release_lease.to", &r.to)? }
        }
        Body::ReleaseAck(r) => Message::ReleaseAck { term: Term(r.term) },
        Body::TimeoutNow(r) => Message::TimeoutNow { term: Term(r.term) },
        Body::StateQuery(_) => Message::StateQuery,
        Body::StateAnswer(a) => {
            let last_chosen = match a.last_chosen.as_str() {
                "" => None,
                site => Some(Chosen {
                    site: member(cfg, "state_answer.last_chosen", site)?,
                    term: Term(a.last_chosen_term),
                }),
            };
            Message::StateAnswer(StateAnswer {
                term: Term(a.term),
                last_chosen,
                pause: pause_in(cfg, a.pause, ("state_answer.pause", "state_answer.pause.by"))?,
                maintenance: maintenance_in(
                    cfg,
                    a.maintenance.as_ref(),
                    ("state_answer.maintenance.by", "state_answer.maintenance.sites"),
                )?,
            })
        }
    };
    if !message.within_bounds() {
        return Err(WireError::CounterOutOfRange);
    }
    Ok((from, message))
}

/// Encodes a message from `from` for the wire, with the sender's cluster
/// fingerprint and cluster name.
pub fn encode(cfg: &ClusterConfig, cluster: &str, cluster_name: &str, from: NodeId, message: Message) -> pb::Envelope {
    use pb::envelope::Body;
    let body = match message {
        Message::PreVote(r) => Body::PreVote(request_out(r)),
        Message::PreVoteReply(r) => Body::PreVoteReply(reply_out(r)),
        Message::Vote(r) => Body::Vote(request_out(r)),
        Message::VoteReply(r) => Body::VoteReply(reply_out(r)),
        Message::Heartbeat(h) => Body::Heartbeat(pb::Heartbeat {
            term: h.term.0,
            lease: h.lease.map(|l| pb::LeaseRenewal {
                seq: l.seq,
                cause: cause_out(l.cause) as i32,
                cooldown_ms: l.cooldown_ms,
            }),
            report: Some(report_out(h.report)),
            pause: Some(pause_out(cfg, h.pause)),
            proposal: h.proposal.map(|p| pb::ProposalNotice {
                target: name(cfg, p.target),
                reason: reason_out(p.reason) as i32,
                age_ms: p.age_ms,
            }),
            maintenance: Some(maintenance_out(cfg, h.maintenance)),
        }),
        Message::HeartbeatReply(r) => Body::HeartbeatReply(pb::HeartbeatReply {
            term: r.term.0,
            seq: r.seq,
            granted: r.granted,
            bound_ms: r.bound_ms,
        }),
        Message::ReleaseLease { term, to } => Body::ReleaseLease(pb::ReleaseLease { term: term.0, to: name(cfg, to) }),
        Message::ReleaseAck { term } => Body::ReleaseAck(pb::ReleaseAck { term: term.0 }),
        Message::TimeoutNow { term } => Body::TimeoutNow(pb::TimeoutNow { term: term.0 }),
        Message::StateQuery => Body::StateQuery(pb::StateQuery {}),
        Message::StateAnswer(a) => Body::StateAnswer(pb::StateAnswer {
            term: a.term.0,
            last_chosen: a.last_chosen.map(|c| name(cfg, c.site)).unwrap_or_default(),
            last_chosen_term: a.last_chosen.map_or(0, |c| c.term.0),
            pause: Some(pause_out(cfg, a.pause)),
            maintenance: Some(maintenance_out(cfg, a.maintenance)),
        }),
    };
    pb::Envelope {
        from: name(cfg, from),
        cluster: cluster.to_owned(),
        cluster_name: cluster_name.to_owned(),
        body: Some(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use failover_core::{Member, Policy, Timers};

    fn cfg() -> ClusterConfig {
        ClusterConfig {
            members: vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")],
            timers: Timers::default(),
            policy: Policy::default(),
        }
    }

    #[test]
    fn maintenance_notes_travel_with_the_setting_they_belong_to_and_bad_ones_are_left_out() {
        let cfg = cfg();
        let report = SiteReport { healthy: true, caught_up: true, sees_quorum: true };
        let heartbeat = |maintenance| {
            Message::Heartbeat(Heartbeat {
                term: Term(4),
                lease: None,
                report,
                pause: PauseSetting::default(),
                proposal: None,
                maintenance,
            })
        };
        let setting = MaintenanceSetting { version: 3, by: 2, sites: 0b10 };
        let note = |reason: &str| SiteNote { site: NodeId(1), by: NodeId(2), reason: reason.into(), since_unix_ms: 17 };
        let notes = Notes { version: 3, by: 2, sites: vec![note("kernel")] };
        let mut env = encode(&cfg, "c", "prod", NodeId(2), heartbeat(setting));
        attach_notes(&cfg, &mut env, &notes);
        assert_eq!(maintenance_notes(&cfg, &env), Some(notes.clone()));
        assert_eq!(decode(&cfg, env).map(|(_, m)| m), Ok(heartbeat(setting)));
        // Notes of another version are not sent with this one.
        let mut env = encode(&cfg, "c", "prod", NodeId(2), heartbeat(MaintenanceSetting { version: 4, ..setting }));
        attach_notes(&cfg, &mut env, &notes);
        assert_eq!(maintenance_notes(&cfg, &env), None);
        // A reason with a control character or beyond the bound is dropped.
        let long = "x".repeat(crate::maintenance_notes::MAX_REASON_CHARS + 1);
        for bad in ["two\nlines", long.as_str()] {
            let mut env = encode(&cfg, "c", "prod", NodeId(2), heartbeat(setting));
            attach_notes(&cfg, &mut env, &Notes { sites: vec![note(bad)], ..notes.clone() });
            assert_eq!(maintenance_notes(&cfg, &env).map(|n| n.sites), Some(vec![]), "{bad:?}");
        }
        // A setting from a build that does not send it: no site in maintenance.
        let mut env = encode(&cfg, "c", "prod", NodeId(2), heartbeat(setting));
        if let Some(pb::envelope::Body::Heartbeat(h)) = &mut env.body {
            h.maintenance = None;
        }
        assert_eq!(decode(&cfg, env).map(|(_, m)| m), Ok(heartbeat(MaintenanceSetting::default())));
        // A version beyond the bound is refused like a pause version.
        let huge = MaintenanceSetting { version: failover_core::MAX_TERM + 1, ..setting };
        let env = encode(&cfg, "c", "prod", NodeId(2), heartbeat(huge));
        assert_eq!(decode(&cfg, env), Err(WireError::CounterOutOfRange));
    }

    #[test]
    fn every_message_survives_the_round_trip() {
        let cfg = cfg();
        let report = SiteReport { healthy: true, caught_up: false, sees_quorum: true };
        let req = VoteRequest { term: Term(3), report, approved: true, handoff: false };
        let messages = [
            Message::PreVote(req),
            Message::Vote(req),
            Message::VoteReply(VoteReply {
                term: Term(3),
                granted: false,
                refusal: Some(Refusal::LeaseHeld),
                lease_held_ms: 1234,
                bound_ms: 0,
            }),
            Message::Heartbeat(Heartbeat {
                term: Term(4),
                lease: Some(LeaseRenewal { seq: 9, cause: ActivationCause::Handoff, cooldown_ms: 5 }),
                report,
                pause: PauseSetting { version: 2, by: 2, paused: true },
                proposal: Some(ProposalNotice { target: NodeId(1), reason: ProposalReason::Cooldown, age_ms: 10 }),
                maintenance: MaintenanceSetting { version: 7, by: 1, sites: 0b11 },
            }),
            Message::HeartbeatReply(HeartbeatReply { term: Term(4), seq: 9, granted: true, bound_ms: 3000 }),
            Message::VoteReply(VoteReply {
                term: Term(5),
                granted: true,
                refusal: None,
                lease_held_ms: 0,
                bound_ms: 2999,
            }),
            Message::ReleaseLease { term: Term(4), to: NodeId(1) },
            Message::ReleaseAck { term: Term(4) },
            Message::TimeoutNow { term: Term(4) },
            Message::VoteReply(VoteReply {
                term: Term(5),
                granted: false,
                refusal: Some(Refusal::Recovering),
                lease_held_ms: 0,
                bound_ms: 0,
            }),
            Message::StateQuery,
            Message::StateAnswer(StateAnswer {
                term: Term(6),
                last_chosen: Some(Chosen { site: NodeId(1), term: Term(5) }),
                pause: PauseSetting { version: 2, by: 2, paused: true },
                maintenance: MaintenanceSetting { version: 7, by: 1, sites: 0b10 },
            }),
            Message::StateAnswer(StateAnswer {
                term: Term(0),
                last_chosen: None,
                pause: PauseSetting::default(),
                maintenance: MaintenanceSetting::default(),
            }),
        ];
        for m in messages {
            let env = encode(&cfg, "0123456789abcdef", "prod", NodeId(0), m);
            assert_eq!((env.cluster.as_str(), env.cluster_name.as_str()), ("0123456789abcdef", "prod"));
            assert_eq!(decode(&cfg, env), Ok((NodeId(0), m)));
        }
    }

    #[test]
    fn bad_input_names_the_field() {
        let cfg = cfg();
        let mut env = encode(&cfg, "", "", NodeId(0), Message::ReleaseAck { term: Term(1) });
        env.from = "intruder".into();
        assert_eq!(decode(&cfg, env).unwrap_err().to_string(), "field from: \"intruder\" is not a configured member");
        let env = pb::Envelope { from: "site-a".into(), body: None, ..Default::default() };
        assert_eq!(decode(&cfg, env), Err(WireError::Missing("body")));
        let mut env = encode(
            &cfg,
            "",
            "",
            NodeId(0),
            Message::VoteReply(VoteReply {
                term: Term(1),
                granted: true,
                refusal: None,
                lease_held_ms: 0,
                bound_ms: 0,
            }),
        );
        if let Some(pb::envelope::Body::VoteReply(r)) = env.body.as_mut() {
            r.refusal = 99;
        }
        assert_eq!(decode(&cfg, env), Err(WireError::BadEnum { field: "vote_reply.refusal", value: 99 }));
        let answer = StateAnswer {
            term: Term(1),
            last_chosen: None,
            pause: PauseSetting::default(),
            maintenance: MaintenanceSetting { version: 1, by: 0, sites: 0b1 },
        };
        let mut env = encode(&cfg, "", "", NodeId(0), Message::StateAnswer(answer));
        if let Some(pb::envelope::Body::StateAnswer(a)) = env.body.as_mut() {
            a.last_chosen = "intruder".into();
        }
        assert_eq!(
            decode(&cfg, env.clone()),
            Err(WireError::UnknownMember { field: "state_answer.last_chosen", name: "intruder".into() })
        );
        if let Some(pb::envelope::Body::StateAnswer(a)) = env.body.as_mut() {
            a.last_chosen = String::new();
            if let Some(m) = a.maintenance.as_mut() {
                m.sites = vec!["intruder".into()];
            }
        }
        assert_eq!(
            decode(&cfg, env.clone()),
            Err(WireError::UnknownMember { field: "state_answer.maintenance.sites", name: "intruder".into() })
        );
        if let Some(pb::envelope::Body::StateAnswer(a)) = env.body.as_mut() {
            a.pause = None;
        }
        assert_eq!(decode(&cfg, env), Err(WireError::Missing("state_answer.pause")));
    }

    /// A lease time a day long is the longest a peer's message may carry.
    #[test]
    fn lease_times_beyond_a_day_are_refused_naming_the_field() {
        let cfg = cfg();
        let max = failover_core::MAX_BOUND_MS;
        for ms in [0, 1, max, max + 1, i64::MAX as u64, u64::MAX] {
            let ok = ms <= max;
            let reply = |lease_held_ms, bound_ms| {
                Message::VoteReply(VoteReply { term: Term(1), granted: false, refusal: None, lease_held_ms, bound_ms })
            };
            let messages = [
                (reply(ms, 0), "vote_reply.lease_held_ms"),
                (reply(0, ms), "vote_reply.bound_ms"),
                (
                    Message::HeartbeatReply(HeartbeatReply { term: Term(1), seq: 1, granted: true, bound_ms: ms }),
                    "heartbeat_reply.bound_ms",
                ),
            ];
            for (m, field) in messages {
                let got = decode(&cfg, encode(&cfg, "", "", NodeId(1), m));
                if ok {
                    assert_eq!(got, Ok((NodeId(1), m)));
                } else {
                    assert_eq!(got, Err(WireError::DurationOutOfRange { field, ms }));
                    let text = got.unwrap_err().to_string();
                    assert!(text.contains(field) && text.contains(&ms.to_string()) && text.contains(&max.to_string()));
                }
            }
        }
    }
}
