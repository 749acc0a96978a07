//! Role-change hooks: shell commands run with the epoch, site and reason in
//! their environment (when `on_standby`, `on_pending` and `on_fault` are due
//! is [`crate::hook_triggers`]'s to say), each with a time limit ([`crate::shell`]: a clean
//! environment, and the whole process group killed on timeout). Their outcome is logged and
//! kept for `/status`. A hook never blocks the protocol loop: it runs in its
//! own task and reports back.

use std::time::Duration;

use failover_core::{ActivationCause, HandoffReason, NodeId, ProposalReason, RoleName, StepDownReason};
use serde::{Deserialize, Serialize};

use crate::shell::{self, RunAs, Script};

/// `[hooks]`: commands run through `sh -c` with only `PATH`,
/// `FAILOVER_EPOCH`, `FAILOVER_SITE`, `FAILOVER_REASON`, `FAILOVER_HOOK`,
/// (for some) `FAILOVER_TO` or `FAILOVER_ACTIVE`, and the variables of
/// `pass_env` in the environment ([`crate::shell`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksSection {
    /// Runs before taking the active role; non-zero exit declines it.
    pub pre_promote: Option<String>,
    /// Runs after taking the active role.
    pub post_promote: Option<String>,
    /// Runs after leaving the active role.
    pub on_demote: Option<String>,
    /// Runs when the site becomes standby and knows the active site: at
    /// start, or after another role.
    pub on_standby: Option<String>,
    /// Runs on the node that raised a failover proposal awaiting approval.
    pub on_pending: Option<String>,
    /// Runs when the local health checks go from passing to failing.
    pub on_fault: Option<String>,
    /// Time limit for each hook (above zero, at most
    /// [`crate::settings::MAX_DURATION`]).
    #[serde(with = "humantime_serde", default = "default_hook_timeout")]
    pub timeout: Duration,
    /// Variables of the daemon's environment passed on to the hooks.
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// The user (`user` or `user:group`) hooks and command checks run as,
    /// instead of the daemon's own: then they cannot read the daemon's
    /// files, its admin token file among them ([`crate::shell`]).
    #[serde(default)]
    pub run_as: Option<String>,
    /// `run_as` resolved when the file was loaded.
    #[serde(skip)]
    pub run_as_user: Option<RunAs>,
}

fn default_hook_timeout() -> Duration {
    Duration::from_secs(30)
}

/// A file without `[hooks]` gets the same defaults as an empty `[hooks]`.
impl Default for HooksSection {
    fn default() -> Self {
        HooksSection {
            pre_promote: None,
            post_promote: None,
            on_demote: None,
            on_standby: None,
            on_pending: None,
            on_fault: None,
            timeout: default_hook_timeout(),
            pass_env: Vec::new(),
            run_as: None,
            run_as_user: None,
        }
    }
}

impl HooksSection {
    /// The command configured for `hook`, if any.
    pub fn command(&self, hook: HookKind) -> Option<&String> {
        match hook {
            HookKind::PrePromote => self.pre_promote.as_ref(),
            HookKind::PostPromote => self.post_promote.as_ref(),
            HookKind::OnDemote => self.on_demote.as_ref(),
            HookKind::OnStandby => self.on_standby.as_ref(),
            HookKind::OnPending => self.on_pending.as_ref(),
            HookKind::OnFault => self.on_fault.as_ref(),
        }
    }
}

impl HooksSection {
    /// The hooks that have a command, in [`HookKind::ALL`]'s order.
    pub fn configured(&self) -> impl Iterator<Item = HookKind> + '_ {
        HookKind::ALL.into_iter().filter(|&h| self.command(h).is_some())
    }
}

/// Which hook: its name is its key in `[hooks]`, its `FAILOVER_HOOK` and
/// its name in `/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    /// Before taking the active role.
    PrePromote,
    /// After taking the active role.
    PostPromote,
    /// After leaving the active role.
    OnDemote,
    /// On becoming standby, once the active site is known.
    OnStandby,
    /// On raising a failover proposal that awaits approval.
    OnPending,
    /// When the local checks go from passing to failing.
    OnFault,
}

impl HookKind {
    /// Every hook.
    pub const ALL: [HookKind; 6] = [
        HookKind::PrePromote,
        HookKind::PostPromote,
        HookKind::OnDemote,
        HookKind::OnStandby,
        HookKind::OnPending,
        HookKind::OnFault,
    ];

    /// Its key in `[hooks]`: `pre_promote`, `post_promote`, `on_demote`,
    /// `on_standby`, `on_pending` or `on_fault`.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::PrePromote => "pre_promote",
            HookKind::PostPromote => "post_promote",
            HookKind::OnDemote => "on_demote",
            HookKind::OnStandby => "on_standby",
            HookKind::OnPending => "on_pending",
            HookKind::OnFault => "on_fault",
        }
    }
}

/// The last run of one hook.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HookOutcome {
    /// Which hook.
    pub hook: HookKind,
    /// The epoch it ran for.
    pub epoch: u64,
    /// Whether it exited 0 within its time limit.
    pub ok: bool,
    /// Exit status, timeout or spawn error.
    pub detail: String,
}

/// Where and how hooks run.
#[derive(Clone, Copy, Debug)]
pub struct HookLimits<'a> {
    /// Time limit of each hook.
    pub timeout: Duration,
    /// Variables passed from the daemon's environment.
    pub pass_env: &'a [String],
    /// The user to run as, if not the daemon's.
    pub run_as: Option<&'a RunAs>,
}

/// Every way a site becomes active, for the words of each.
pub const ACTIVATION_CAUSES: [ActivationCause; 5] = [
    ActivationCause::Reclaim,
    ActivationCause::AutomaticFailover,
    ActivationCause::ApprovedFailover,
    ActivationCause::Handoff,
    ActivationCause::Forced,
];

/// Everything that starts a handoff.
pub const HANDOFF_REASONS: [HandoffReason; 6] = [
    HandoffReason::Switchover,
    HandoffReason::Failback,
    HandoffReason::Unhealthy,
    HandoffReason::Shutdown,
    HandoffReason::PromotionDeclined,
    HandoffReason::Approved,
];

/// One step-down reason of each kind, for the words of each (the epoch and
/// the site they name are placeholders).
pub fn step_down_reasons() -> impl Iterator<Item = StepDownReason> {
    [
        StepDownReason::LeaseExpired,
        StepDownReason::HigherTerm,
        StepDownReason::PromotionDeclined,
        StepDownReason::ShutdownWithoutSuccessor,
        StepDownReason::Fenced { by: failover_core::Epoch(0) },
    ]
    .into_iter()
    .chain(HANDOFF_REASONS.map(|why| StepDownReason::Handoff { to: NodeId(0), why }))
}

/// `FAILOVER_REASON` of `pre_promote` and `post_promote`: how the site was
/// elected. Also the words of events and `/status`.
pub fn activation_reason(cause: ActivationCause) -> &'static str {
    match cause {
        ActivationCause::Reclaim => "reclaim",
        ActivationCause::AutomaticFailover => "automatic_failover",
        ActivationCause::ApprovedFailover => "approved_failover",
        ActivationCause::Handoff => "handoff",
        ActivationCause::Forced => "forced",
    }
}

/// `FAILOVER_REASON` of `on_demote`, and the site taking over when the
/// site hands over to one (`FAILOVER_TO`).
pub fn demotion_reason(reason: StepDownReason) -> (&'static str, Option<NodeId>) {
    match reason {
        StepDownReason::LeaseExpired => ("lease_expired", None),
        StepDownReason::HigherTerm => ("higher_term", None),
        StepDownReason::PromotionDeclined => ("promotion_declined", None),
        StepDownReason::ShutdownWithoutSuccessor => ("shutdown", None),
        StepDownReason::Fenced { .. } => ("fenced", None),
        StepDownReason::Handoff { to, why } => (handoff_reason(why), Some(to)),
    }
}

/// What started a handoff, in the words of `FAILOVER_REASON` and metrics.
pub fn handoff_reason(why: HandoffReason) -> &'static str {
    match why {
        HandoffReason::Switchover => "switchover",
        HandoffReason::Failback => "failback",
        HandoffReason::Unhealthy => "unhealthy",
        HandoffReason::Shutdown => "shutdown",
        HandoffReason::PromotionDeclined => "promotion_declined",
        HandoffReason::Approved => "approved_failover",
    }
}

/// `FAILOVER_REASON` of `on_standby`: `start` at the daemon's start, else
/// the role the site left.
pub fn standby_reason(from: Option<RoleName>) -> &'static str {
    from.map_or("start", RoleName::as_str)
}

/// `FAILOVER_REASON` of `on_pending`: why the failover waits.
pub fn proposal_reason(reason: ProposalReason) -> &'static str {
    match reason {
        ProposalReason::ManualMode => "manual_mode",
        ProposalReason::TargetLagging => "target_lagging",
        ProposalReason::Cooldown => "cooldown",
        ProposalReason::ActiveUnhealthy => "active_unhealthy",
        ProposalReason::Failback => "failback",
        ProposalReason::PromotionDeclined => "promotion_declined",
        ProposalReason::Paused => "paused",
        ProposalReason::TargetInMaintenance => "target_in_maintenance",
    }
}

/// `FAILOVER_REASON` of `on_fault`.
pub const FAULT_REASON: &str = "checks_failed";

/// One run of a hook: which, for which epoch, why, to whom when the site
/// hands over or a proposal would move the role, and the active site as
/// known (for `on_standby`, `on_pending` and `on_fault`).
#[derive(Clone, Debug)]
pub struct HookCall {
    /// Which hook.
    pub hook: HookKind,
    /// The epoch of the role change.
    pub epoch: u64,
    /// This site's member name.
    pub site: String,
    /// [`activation_reason`], [`demotion_reason`], [`standby_reason`],
    /// [`proposal_reason`] or [`FAULT_REASON`].
    pub reason: &'static str,
    /// `FAILOVER_TO`: the site taking over, for an `on_demote` that hands
    /// over; the site that would become active, for `on_pending`.
    pub to: Option<String>,
    /// `FAILOVER_ACTIVE`: the active site as this node knows it, for
    /// `on_standby`, `on_pending` and `on_fault` (unset when none is known).
    pub active: Option<String>,
}

/// Runs `command` through `sh -c` with `FAILOVER_EPOCH`, `FAILOVER_SITE`,
/// `FAILOVER_REASON`, `FAILOVER_HOOK` and, when the call has them,
/// `FAILOVER_TO` and `FAILOVER_ACTIVE` set, killing its process group after
/// the time limit.
pub async fn run(command: &str, call: HookCall, limits: HookLimits<'_>) -> HookOutcome {
    let HookCall { hook, epoch, site, reason, to, active } = call;
    let mut vars = vec![
        ("FAILOVER_EPOCH", epoch.to_string()),
        ("FAILOVER_SITE", site),
        ("FAILOVER_REASON", reason.to_owned()),
        ("FAILOVER_HOOK", hook.name().to_owned()),
    ];
    vars.extend(to.map(|to| ("FAILOVER_TO", to)));
    vars.extend(active.map(|active| ("FAILOVER_ACTIVE", active)));
    let script =
        Script { command, vars: &vars, pass_env: limits.pass_env, timeout: limits.timeout, run_as: limits.run_as };
    let (ok, detail) = match shell::run(script).await {
        Ok(status) if status.success() => (true, "exit 0".to_string()),
        Ok(status) => (false, format!("failed: {status}")),
        Err(e) => (false, e.to_string()),
    };
    if ok {
        tracing::info!(hook = hook.name(), epoch, %detail, "hook finished");
    } else {
        tracing::warn!(hook = hook.name(), epoch, %detail, "hook failed");
    }
    HookOutcome { hook, epoch, ok, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(hook: HookKind, to: Option<&str>) -> HookCall {
        HookCall {
            hook,
            epoch: 9,
            site: "site-b".into(),
            reason: "switchover",
            to: to.map(str::to_owned),
            active: None,
        }
    }

    /// Every value a hook can be given is in the table of the configuration
    /// guide, and no other.
    #[test]
    fn the_documented_reasons_are_the_ones_given() {
        let doc = include_str!("../../docs/configuration.md");
        let row = |var: &str| {
            let line = doc.lines().find(|l| l.starts_with(&format!("| `{var}`"))).unwrap_or_default().to_owned();
            let mut words: Vec<String> = line.split('`').skip(3).step_by(2).map(str::to_owned).collect();
            words.retain(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            words.sort();
            words.dedup();
            words
        };
        let mut given: Vec<String> = ACTIVATION_CAUSES.map(|c| activation_reason(c).to_owned()).into();
        given.extend(step_down_reasons().map(|d| demotion_reason(d).0.to_owned()));
        let left =
            [RoleName::Active, RoleName::HandingOff, RoleName::Promoting, RoleName::Resuming, RoleName::Candidate];
        given.push(standby_reason(None).to_owned());
        given.extend(left.map(|r| standby_reason(Some(r)).to_owned()));
        let proposals = [
            ProposalReason::ManualMode,
            ProposalReason::TargetLagging,
            ProposalReason::Cooldown,
            ProposalReason::ActiveUnhealthy,
            ProposalReason::Failback,
            ProposalReason::PromotionDeclined,
            ProposalReason::Paused,
            ProposalReason::TargetInMaintenance,
        ];
        given.extend(proposals.map(|r| proposal_reason(r).to_owned()));
        given.push(FAULT_REASON.to_owned());
        given.extend(HookKind::ALL.map(|h| h.name().to_owned()));
        given.sort();
        given.dedup();
        assert_eq!(row("FAILOVER_REASON"), given, "docs/configuration.md's FAILOVER_REASON row");
    }

    #[test]
    fn each_hook_runs_its_own_command_and_is_shown_by_its_key() {
        let hooks = HooksSection {
            pre_promote: Some("pre".into()),
            post_promote: None,
            on_demote: Some("demote".into()),
            on_standby: Some("standby".into()),
            on_pending: None,
            on_fault: Some("fault".into()),
            ..HooksSection::default()
        };
        let commands = HookKind::ALL.map(|h| hooks.command(h).map(String::as_str));
        assert_eq!(commands, [Some("pre"), None, Some("demote"), Some("standby"), None, Some("fault")]);
        let pending = HooksSection { on_pending: Some("pending".into()), ..HooksSection::default() };
        assert_eq!(pending.command(HookKind::OnPending).map(String::as_str), Some("pending"));
        let configured: Vec<HookKind> = hooks.configured().collect();
        assert_eq!(configured, [HookKind::PrePromote, HookKind::OnDemote, HookKind::OnStandby, HookKind::OnFault]);
        assert_eq!(pending.configured().collect::<Vec<_>>(), [HookKind::OnPending]);
        assert_eq!(HooksSection::default().configured().count(), 0);
        for hook in HookKind::ALL {
            assert_eq!(serde_json::to_value(hook).ok(), Some(serde_json::Value::from(hook.name())));
        }
    }

    fn limits(timeout: Duration) -> HookLimits<'static> {
        HookLimits { timeout, pass_env: &[], run_as: None }
    }

    #[tokio::test]
    async fn outcome_reports_exit_status_environment_and_timeout() {
        let t = limits(Duration::from_secs(10));
        let check = "test \"$FAILOVER_EPOCH\" = 9 && test \"$FAILOVER_SITE\" = site-b";
        assert!(run(check, call(HookKind::PrePromote, None), t).await.ok);
        let failed = run("exit 3", call(HookKind::PrePromote, None), t).await;
        assert!(!failed.ok);
        assert!(failed.detail.contains('3'), "{}", failed.detail);
        let slow = run("sleep 5", call(HookKind::OnDemote, None), limits(Duration::from_millis(100))).await;
        assert!(!slow.ok && slow.detail.contains("timed out"), "{}", slow.detail);
    }

    #[tokio::test]
    async fn a_timed_out_hook_takes_its_background_children_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let command = crate::shell::tests::command_with_background_child(dir.path());
        let outcome = run(&command, call(HookKind::PostPromote, None), limits(Duration::from_secs(2))).await;
        assert!(!outcome.ok && outcome.detail.contains("timed out"), "{}", outcome.detail);
        crate::shell::tests::assert_group_gone(dir.path()).await;
    }

    #[tokio::test]
    async fn a_hook_sees_the_active_site_and_the_target_only_when_its_call_has_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("env");
        let write = format!("env > {}", out.display());
        let pending = HookCall {
            hook: HookKind::OnPending,
            epoch: 4,
            site: "site-b".into(),
            reason: proposal_reason(ProposalReason::ManualMode),
            to: Some("site-b".into()),
            active: Some("site-a".into()),
        };
        assert!(run(&write, pending, limits(Duration::from_secs(30))).await.ok);
        let env = crate::shell::tests::read_env(&out);
        let var = |name: &str| env.get(name).map(String::as_str);
        assert_eq!(var("FAILOVER_HOOK"), Some("on_pending"));
        assert_eq!(var("FAILOVER_REASON"), Some("manual_mode"));
        assert_eq!(var("FAILOVER_TO"), Some("site-b"));
        assert_eq!(var("FAILOVER_ACTIVE"), Some("site-a"));
        let fault = HookCall {
            hook: HookKind::OnFault,
            reason: FAULT_REASON,
            to: None,
            active: None,
            ..call(HookKind::OnFault, None)
        };
        assert!(run(&write, fault, limits(Duration::from_secs(30))).await.ok);
        let env = crate::shell::tests::read_env(&out);
        assert_eq!(env.get("FAILOVER_REASON").map(String::as_str), Some("checks_failed"));
        assert!(!env.contains_key("FAILOVER_ACTIVE") && !env.contains_key("FAILOVER_TO"), "{env:?}");
    }

    #[tokio::test]
    async fn a_hook_sees_path_its_failover_variables_and_pass_env_only() {
        // Unique names: no other test reads them.
        std::env::set_var("HOOK_TEST_ADMIN_TOKEN", "hook-secret");
        std::env::set_var("HOOK_TEST_LANG", "C.UTF-8");
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("env");
        let pass = ["HOOK_TEST_LANG".to_string()];
        let limits = HookLimits { timeout: Duration::from_secs(30), pass_env: &pass, run_as: None };
        let call = call(HookKind::OnDemote, Some("site-a"));
        let outcome = run(&format!("env > {}", out.display()), call, limits).await;
        assert!(outcome.ok, "{}", outcome.detail);
        let env = crate::shell::tests::read_env(&out);
        let expected = [
            ("FAILOVER_EPOCH", "9"),
            ("FAILOVER_SITE", "site-b"),
            ("FAILOVER_REASON", "switchover"),
            ("FAILOVER_HOOK", "on_demote"),
            ("FAILOVER_TO", "site-a"),
            ("HOOK_TEST_LANG", "C.UTF-8"),
        ];
        for (name, value) in expected {
            assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}: {env:?}");
        }
        assert!(env.get("PATH").is_some_and(|p| !p.is_empty()), "no PATH: {env:?}");
        assert!(!env.values().any(|v| v.contains("hook-secret")), "the daemon's secret leaked: {env:?}");
        let extra: Vec<&String> = env
            .keys()
            .filter(|k| k.as_str() != "PATH" && !expected.iter().any(|(n, _)| n == k))
            .filter(|k| !crate::shell::tests::SHELL_OWN.contains(&k.as_str()))
            .collect();
        assert!(extra.is_empty(), "variables the hook must not see: {extra:?}");
    }
}
