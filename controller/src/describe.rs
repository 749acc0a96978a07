//! Protocol events, proposal reasons and command refusals in words, with
//! member names, for logs, `/status`, `/history` and admin answers. It only
//! formats: it must never decide anything nor read any state but what it is
//! given.

use failover_core::{ClusterConfig, CommandError, Event, NodeId};

use crate::reports::MongoReport;
use crate::{clock, hooks, member_name};

/// Why a site's data is not caught up, in this node's view of the data
/// store (no data member mapped to it, none up, how far behind); `None`
/// when the node has no such view. The protocol only carries "not caught
/// up", so this is what turns it into the real cause.
pub type DataCause<'a> = &'a dyn Fn(NodeId) -> Option<String>;

/// A `DataCause` with nothing to say: the node reads no data store.
pub fn no_data_cause(_: NodeId) -> Option<String> {
    None
}

/// The `DataCause` of the last replica set view read, if any.
pub fn data_cause_of<'a>(
    cfg: &'a ClusterConfig,
    mongo: Option<&'a MongoReport>,
) -> impl Fn(NodeId) -> Option<String> + 'a {
    move |site| mongo?.why_not_caught_up(&member_name::of(cfg, site))
}

/// An event in words, with member names.
pub fn event(cfg: &ClusterConfig, e: &Event, data: DataCause) -> String {
    let n = |id: NodeId| member_name::of(cfg, id);
    match *e {
        Event::ElectionStarted { term, approved, handoff } => {
            format!("election started in term {} (approved: {approved}, handoff: {handoff})", term.0)
        }
        Event::VoteRefused { by, term, refusal } => format!("{} refused a vote in term {}: {refusal:?}", n(by), term.0),
        Event::Elected { epoch, cause } => {
            format!("elected with epoch {} ({})", epoch.0, hooks::activation_reason(cause))
        }
        Event::BecameActive { epoch, cause } => {
            format!("became active with epoch {} ({})", epoch.0, hooks::activation_reason(cause))
        }
        Event::SteppedDown { epoch, reason } => {
            let why = match reason {
                failover_core::StepDownReason::Handoff { to, why } => format!("handing over to {} ({why:?})", n(to)),
                other => format!("{other:?}"),
            };
            format!("stepped down from epoch {}: {why}", epoch.0)
        }
        Event::ResumeStarted { epoch } => format!(
            "restarted while active with epoch {}: asking a majority to renew the lease (restart in place)",
            epoch.0
        ),
        Event::ActiveRoleResumed { epoch } => {
            format!("active again with epoch {} after a restart in place (no election, nothing moved)", epoch.0)
        }
        Event::ResumeAbandoned { epoch, reason } => format!(
            "restart in place with epoch {} given up ({reason:?}): standing by; an ordinary election follows",
            epoch.0
        ),
        Event::ActiveSiteChanged { site, epoch, cause } => {
            format!("{} is active with epoch {} ({})", n(site), epoch.0, hooks::activation_reason(cause))
        }
        Event::FailoverProposed { target, reason } => {
            format!("failover to {} proposed, waiting for approval: {}", n(target), proposal(reason, target, data))
        }
        Event::FailoverApproved { target } => format!("failover to {} approved", n(target)),
        Event::HandoffStarted { to, why } => format!("handing over to {}: {why:?}", n(to)),
        Event::SwitchoverScheduled { to, at } => format!("switchover to {} scheduled for {}", n(to), clock::wall(at)),
        Event::SwitchoverCancelled { to, reason } => {
            format!("scheduled switchover to {} cancelled: {}", n(to), cancel_reason(cfg, reason, data))
        }
        Event::Paused { by } => format!("paused (by {})", n(by)),
        Event::Resumed { by } => format!("resumed (by {})", n(by)),
        Event::MaintenanceChanged { site, on: true, by } => {
            format!("{} is in maintenance (by {}): no failover or switchover goes to it", n(site), n(by))
        }
        Event::MaintenanceChanged { site, on: false, by } => {
            format!("maintenance of {} ended (by {})", n(site), n(by))
        }
        Event::StateRecovered { term, last_chosen } => format!(
            "caught up after losing its state file: term {}, last chosen site {}; votes again from the next term",
            term.0,
            last_chosen.map_or_else(|| "none".to_owned(), |c| n(c.site))
        ),
        Event::ForcedPromotion { epoch } => format!("FORCED promotion with epoch {}", epoch.0),
        Event::UnhealthyWithoutSuccessor => "checks fail and no eligible site can take over".into(),
        Event::FenceAhead { epoch, stored } => format!(
            "ALARM: a target holds epoch {}, newer than this site's {} while it holds its lease: forged (or left by a \
             forced promotion); staying active and writing nothing over it",
            stored.0, epoch.0
        ),
    }
}

/// Why a scheduled switchover was dropped, in words.
pub fn cancel_reason(cfg: &ClusterConfig, reason: failover_core::SwitchoverCancelReason, data: DataCause) -> String {
    use failover_core::SwitchoverCancelReason as R;
    match reason {
        R::Operator => "an operator cancelled it".into(),
        R::Replaced => "another switchover replaced it".into(),
        R::LostRole => "this site no longer holds the active role".into(),
        R::NotActive => "this site was not acting as active when it was due".into(),
        R::TargetIneligible(e) => format!("when it was due, {}", refusal(cfg, &e, data)),
        R::NotResumedAfterRestart => {
            "this site restarted and did not take its active role back, so the schedule it held cannot run".into()
        }
    }
}

/// Why failing over to `target` waits for approval, in words: the data
/// store's own cause when the target's data is what holds it.
pub fn proposal(r: failover_core::ProposalReason, target: NodeId, data: DataCause) -> String {
    match (r, data(target)) {
        (failover_core::ProposalReason::TargetLagging, Some(cause)) => format!("the target is not caught up: {cause}"),
        _ => proposal_reason(r).to_owned(),
    }
}

/// A proposal's reason in words, without the data store's cause.
pub fn proposal_reason(r: failover_core::ProposalReason) -> &'static str {
    use failover_core::ProposalReason as R;
    match r {
        R::ManualMode => "manual mode: failovers wait for approval",
        R::TargetLagging => "the target's data lags beyond max_lag_on_failover",
        R::Cooldown => "within the cooldown after an automatic failover",
        R::ActiveUnhealthy => "the active site's health checks fail",
        R::Failback => "a higher-priority site is back (failback waits for approval in manual mode)",
        R::PromotionDeclined => "the elected site's pre_promote hook failed",
        R::Paused => "no site is active and automatic actions are paused: approve, or resume",
        R::TargetInMaintenance => {
            "the target is in maintenance: nothing moves to it and approval is refused; end its maintenance \
             (failoverctl maintenance off --site TARGET), or promote a site by force"
        }
    }
}

/// A refusal in words, with member names.
pub fn refusal(cfg: &ClusterConfig, e: &CommandError, data: DataCause) -> String {
    let n = |id: NodeId| member_name::of(cfg, id);
    match *e {
        CommandError::NotActive { active } => {
            format!("not the active site; active: {}", active.map_or_else(|| "none".into(), n))
        }
        CommandError::HeldElsewhere { target } => format!("carried out by {}", n(target)),
        CommandError::NotElectable(id) => format!("{} cannot become active (witness or priority 0)", n(id)),
        CommandError::AlreadyActive(id) => format!("{} is already the active site", n(id)),
        CommandError::TargetNotEligible { target, why } => format!("{} is not eligible: {why}", n(target)),
        CommandError::TargetLagging { target } => format!(
            "{} is not eligible: {}",
            n(target),
            data(target).unwrap_or_else(|| "its data lags beyond max_lag_on_failover".into())
        ),
        CommandError::LeaseMayBeHeld { holder, remaining } => format!(
            "{} may still hold a lease for {remaining:?}; wait, or restore the majority",
            holder.map_or_else(|| "a site (this node restarted recently)".into(), n)
        ),
        CommandError::MaintenanceOfActive { site } => {
            let other = cfg
                .ids()
                .filter(|&id| id != site && cfg.priority(id) > 0)
                .max_by_key(|&id| (cfg.priority(id), std::cmp::Reverse(id)))
                .map_or_else(|| "OTHER".to_owned(), n);
            format!(
                "{} is the active site: move the role first (failoverctl switchover --to {other}), then put {} in \
                 maintenance",
                n(site),
                n(site)
            )
        }
        CommandError::TargetInMaintenance { target } => format!(
            "{} is in maintenance: end it first (failoverctl maintenance off --site {}), or promote a site by force",
            n(target),
            n(target)
        ),
        ref other => other.to_string(),
    }
}

/// `e` and each error that caused it, joined by ": ".
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use failover_core::{Instant, NodeId};

    use super::*;

    /// A scheduled switchover is described whatever instant it holds, the
    /// ends of the protocol clock included (the loop logs every event).
    #[test]
    fn a_switchover_at_any_instant_is_described() {
        let cfg = crate::test_node::cluster();
        for ms in [0, 1, i64::MAX as u64, u64::MAX - 1, u64::MAX] {
            let text = event(
                &cfg,
                &Event::SwitchoverScheduled { to: NodeId(0), at: Instant::from_millis(ms) },
                &no_data_cause,
            );
            let when = text.strip_prefix("switchover to a scheduled for ").unwrap_or_default();
            assert!(humantime::parse_rfc3339(when).is_ok() || when.starts_with("(no date: "), "{ms}: {text}");
        }
        let far = event(
            &cfg,
            &Event::SwitchoverScheduled { to: NodeId(0), at: Instant::from_millis(u64::MAX) },
            &no_data_cause,
        );
        assert!(far.contains("later than 9999-12-31T23:59:59Z"), "{far}");
    }

    /// "Not caught up" reaches operators as the data store's own cause
    /// (here: no data member mapped to the target) in the proposal, the
    /// refusal and the logged or stored event; without a cause it falls
    /// back to the lag bound.
    #[test]
    fn a_target_that_is_not_caught_up_is_described_by_the_data_store_s_cause() {
        let cfg = crate::test_node::cluster();
        let b = NodeId(0);
        let cause = |site: NodeId| (site == b).then(|| "no data member of the replica set is mapped to a".to_owned());
        let lagging = CommandError::TargetLagging { target: b };
        assert_eq!(
            refusal(&cfg, &lagging, &cause),
            "a is not eligible: no data member of the replica set is mapped to a"
        );
        assert_eq!(
            refusal(&cfg, &lagging, &no_data_cause),
            "a is not eligible: its data lags beyond max_lag_on_failover"
        );
        let proposed = Event::FailoverProposed { target: b, reason: failover_core::ProposalReason::TargetLagging };
        assert_eq!(
            event(&cfg, &proposed, &cause),
            "failover to a proposed, waiting for approval: the target is not caught up: no data member of the replica \
             set is mapped to a"
        );
        let manual = Event::FailoverProposed { target: b, reason: failover_core::ProposalReason::ManualMode };
        assert_eq!(
            event(&cfg, &manual, &cause),
            "failover to a proposed, waiting for approval: manual mode: failovers wait for approval"
        );
        let cancelled = failover_core::SwitchoverCancelReason::TargetIneligible(lagging);
        assert!(cancel_reason(&cfg, cancelled, &cause).ends_with("mapped to a"));
    }
}
