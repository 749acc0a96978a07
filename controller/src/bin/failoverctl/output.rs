//! What failoverctl prints: every line goes through [`line`], so a reader
//! that goes away (`failoverctl status | head -1`) ends the program quietly.

use std::io::Write;

use failover_controller::reports::{EventRecord, MongoReport};
use failover_controller::status_doc::{ScheduledSwitchoverDoc, StatusDoc};
use serde::Serialize;
use serde_json::Value;

/// Writes one line to stdout. When the reader has gone (broken pipe) there
/// is no one left to tell: the program ends at once with success.
pub fn line(args: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        stdout_failed(&e);
    }
}

/// Writes `bytes` to stdout as they are, as [`line`] does.
pub fn bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        stdout_failed(&e);
    }
}

fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    let _ = writeln!(std::io::stderr(), "failoverctl: cannot write to stdout: {e}");
    std::process::exit(1)
}

/// A JSON value as a table cell: strings bare, null and absent as `-`.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A field of the status document as a table cell, written as its JSON
/// (so numbers read as the node sent them): strings bare, none as `-`.
fn cell<T: Serialize>(v: &T) -> String {
    text(serde_json::to_value(v).ok().as_ref())
}

/// One line saying what a successful admin call did, from the command, its
/// arguments and the node's answer (`node`, and `before`: the state it
/// changed as that node saw it just before).
pub fn done(command: &str, to: Option<&str>, at: Option<&str>, answer: &Value) -> String {
    let before = |k: &str| answer.pointer(&format!("/before/{k}")).filter(|v| !v.is_null());
    let by = answer.get("node").and_then(Value::as_str).map_or_else(String::new, |n| format!(" (by {n})"));
    let to = to.unwrap_or("?");
    match command {
        "pause" if before("paused") == Some(&Value::Bool(true)) => {
            format!("paused automatic actions cluster-wide (already paused){by}")
        }
        "pause" => format!("paused automatic actions cluster-wide{by}"),
        "resume" if before("paused") == Some(&Value::Bool(false)) => {
            format!("resumed automatic actions cluster-wide (they were not paused){by}")
        }
        "resume" => format!("resumed automatic actions cluster-wide{by}"),
        "switchover" => match at {
            Some(at) => format!("switchover to {to} scheduled for {at}{by}"),
            None => format!("switchover to {to} started{by}"),
        },
        "cancel-switchover" => match before("scheduled_switchover").and_then(Value::as_str) {
            Some(target) => format!("cancelled the scheduled switchover to {target}{by}"),
            None => format!("cancelled the scheduled switchover{by}"),
        },
        "approve" => {
            let target = answer.pointer("/before/pending_failover").and_then(Value::as_str);
            format!("approved the failover to {}{by}", target.unwrap_or(to))
        }
        "force-promote" => format!("forced {to} active without a majority{by}"),
        other => format!("{other}: done{by}"),
    }
}

/// `failoverctl whoami`: the operator, from a `whoami` answer.
pub fn whoami(answer: &Value) -> String {
    let operator = answer.get("operator").and_then(Value::as_str).unwrap_or("?");
    let node = answer.get("node").and_then(Value::as_str).unwrap_or("?");
    let access = if answer.get("read_only") == Some(&Value::Bool(true)) { "read-only" } else { "read-write" };
    format!("operator {operator} ({access}), as {node} knows the token")
}

/// `failoverctl history`: a table, newest first; the operator column is
/// `-` for protocol events.
pub fn print_history(events: &[EventRecord]) {
    let rows: Vec<[String; 3]> = events
        .iter()
        .map(|e| {
            let operator = e.admin.as_ref().map_or("-", |a| a.operator.as_str());
            [e.at.clone(), format!("{}#{}", e.node, e.seq), operator.to_owned()]
        })
        .collect();
    let titles = ["AT", "EVENT", "OPERATOR"];
    let w: Vec<usize> =
        (0..3).map(|i| rows.iter().map(|r| r[i].len()).chain([titles[i].len()]).max().unwrap_or(0)).collect();
    say!("{:w0$}  {:w1$}  {:w2$}  WHAT", titles[0], titles[1], titles[2], w0 = w[0], w1 = w[1], w2 = w[2]);
    for (r, e) in rows.iter().zip(events) {
        say!("{:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], e.event, w0 = w[0], w1 = w[1], w2 = w[2]);
    }
}

/// The MongoDB state store's event log as a node answered it, newest
/// first.
pub fn print_stored_history(answer: &Value) -> anyhow::Result<()> {
    use failover_controller::mongo::store::StoredEvent;
    let events: Vec<StoredEvent> = serde_json::from_value(answer.get("events").cloned().unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("the event log's answer is not a list of events: {e}"))?;
    let from = |key: &str| answer.get(key).and_then(Value::as_str).unwrap_or("?").to_owned();
    say!(
        "event log of the MongoDB state store (database {}, read by {}), newest first:",
        from("database"),
        from("node")
    );
    let w0 = events.iter().map(|e| e.at.len()).chain(["AT".len()]).max().unwrap_or(0);
    let w1 = events.iter().map(|e| e.node.len()).chain(["NODE".len()]).max().unwrap_or(0);
    say!("{:w0$}  {:w1$}  WHAT", "AT", "NODE");
    for e in &events {
        say!("{:w0$}  {:w1$}  {}", e.at, e.node, e.event);
    }
    Ok(())
}

/// One line saying what `maintenance on|off` did.
pub fn maintenance_done(site: &str, on: bool, answer: &Value) -> String {
    let by = answer.get("node").and_then(Value::as_str).map_or_else(String::new, |n| format!(" (by {n})"));
    let before = answer.pointer("/before/maintenance").and_then(Value::as_array);
    let was_on = before.map(|sites| sites.iter().any(|s| s.as_str() == Some(site)));
    match (on, was_on) {
        (true, Some(true)) => format!("{site} is in maintenance (it already was){by}"),
        (true, _) => format!("{site} is in maintenance: no failover or switchover goes to it{by}"),
        (false, Some(false)) => format!("{site} is out of maintenance (it was not in maintenance){by}"),
        (false, _) => format!("maintenance of {site} ended{by}"),
    }
}

/// One line for a peer that is of another cluster, has another config, or
/// does not say (an older build). A node of a build that shows no cluster
/// name, or a mismatch without one, is judged on the fingerprint alone.
pub fn mismatch(v: &StatusDoc, m: &failover_controller::agreement::Mismatch) -> String {
    let (peer, node) = (&m.peer, &v.node);
    let theirs = &m.theirs;
    if !m.cluster.is_empty() && !v.cluster_name.is_empty() && m.cluster != v.cluster_name {
        format!(
            "ANOTHER CLUSTER: {peer} answers as a node of cluster {:?}, {node} is in cluster {:?}: messages both ways \
             are refused (check {peer}'s address in [[members]] and its cluster.name)",
            m.cluster, v.cluster_name
        )
    } else if !theirs.is_empty() && *theirs != v.cluster_fingerprint {
        format!(
            "CONFIG MISMATCH: {peer}'s members, votes or priorities differ from {node}'s (fingerprint {theirs} there, \
             {} here): messages both ways are refused until [[members]] is the same on every node",
            v.cluster_fingerprint
        )
    } else if theirs.is_empty() {
        format!("UNVERIFIED CONFIG: {peer} sends no cluster fingerprint (an older build)")
    } else {
        format!("UNVERIFIED CLUSTER: {peer} sends no cluster name (an older build): accepted on its fingerprint")
    }
}

/// `failoverctl status`: the answering node's view of the cluster.
///
/// `active_view` is the active site's own `/status` when another node
/// answered: only the active site holds a scheduled switchover.
pub fn print_status(v: &StatusDoc, active_view: Option<&StatusDoc>) {
    let node = &v.node;
    let active = v.active_site.as_deref();
    let epoch = match (v.epoch, v.last_known_epoch) {
        (Some(e), _) => e.to_string(),
        (None, Some(last)) => format!("- (last known {last})"),
        (None, None) => "-".to_owned(),
    };
    say!(
        "active: {}   epoch: {epoch}   term: {}   mode: {}   paused: {}",
        active.unwrap_or("none"),
        v.term,
        v.mode,
        v.paused
    );
    say!("answered by: {node} ({})", v.role);
    if let Some(waiting) = &v.recovering {
        say!(
            "RECOVERING: {node} lost its state file and votes only once it has caught up; it waits to hear from: {}",
            waiting.join(", ")
        );
    }
    if v.peer_authentication == "none" {
        say!(
            "PEERS UNAUTHENTICATED: {node} runs without mutual TLS; anyone who reaches a peer port can vote and grant \
             leases as any member (set up [tls] with failoverctl certs init)"
        );
    }
    for m in &v.maintenance {
        let unknown = || "unknown".to_owned();
        let reason = m.reason.as_deref().filter(|r| !r.is_empty()).map_or_else(String::new, |r| format!(": {r}"));
        say!(
            "MAINTENANCE: {} (by {}, since {}){reason}; no failover or switchover goes to it",
            m.site,
            m.by.clone().unwrap_or_else(unknown),
            m.since.clone().unwrap_or_else(unknown)
        );
    }
    if let Some(p) = &v.pending_failover {
        let target = &p.target;
        say!("PENDING FAILOVER to {target}: {} (since {})", p.reason, p.since);
        if v.maintenance.iter().any(|m| &m.site == target) {
            say!("  approval is refused while {target} is in maintenance; end it with: failoverctl maintenance off --site {target}");
        } else {
            say!("  approve with: failoverctl approve --to {target}");
        }
    }
    print_schedule(active_view.unwrap_or(v), active.filter(|_| active_view.is_none()));
    if let Some(stored) = v.fence_ahead {
        say!(
            "FENCE ALARM: a target holds epoch {stored}, which {node} (epoch {}) was not elected with: forged, or left \
             by a forced promotion; {node} stays active and writes nothing over that target until it is corrected",
            cell(&v.epoch),
        );
    }
    for alarm in &v.fence_unreadable {
        say!(
            "FENCE ALARM: {alarm}; {node} stays active and writes nothing over that target until it holds a proper \
             epoch (docs/actuators.md)"
        );
    }
    for m in &v.config_mismatches {
        say!("{}", mismatch(v, m));
    }
    for (site, problem) in v.sites.iter().filter_map(|s| s.address_problem.as_ref().map(|p| (&s.id, p))) {
        say!("UNRESOLVED: {node} cannot reach {site}: {problem}");
    }
    for warning in v.certificates.iter().filter_map(|c| c.warning.as_deref()) {
        say!("CERTIFICATE: {node}'s {warning}");
    }
    print_sites(v);
    if !v.actuators.is_empty() {
        say!("actuators of {node}:");
        say!("  {:<20} {:<8} {:<7} {:<12} {:>6}  DETAIL", "NAME", "KIND", "MODE", "STATE", "EPOCH");
        for a in &v.actuators {
            let (mode, state) = (a.actuation.as_str(), a.state.as_str());
            say!("  {:<20} {:<8} {mode:<7} {state:<12} {:>6}  {}", a.name, a.kind, cell(&a.epoch), a.detail);
        }
    }
    if let Some(m) = &v.mongodb {
        print_mongodb(m, node);
    }
}

/// A scheduled switchover, which only the active site holds: shown when the
/// answer has it, and when the answering node is not the active site and the
/// active site did not answer, where to ask instead.
fn print_schedule(v: &StatusDoc, active: Option<&str>) {
    if let Some(ScheduledSwitchoverDoc { to, in_ms, at }) = &v.scheduled_switchover {
        let left = humantime::format_duration(std::time::Duration::from_secs(in_ms / 1000));
        say!("SCHEDULED SWITCHOVER to {to} at {at} (in {left})");
        say!("  cancel with: failoverctl switchover --cancel");
        return;
    }
    let Some(active) = active.filter(|_| v.role != "active") else { return };
    let address = v
        .site(active)
        .and_then(|s| s.http_address.as_deref())
        .map_or_else(String::new, |a| format!(" (failoverctl -e {a} status)"));
    say!(
        "scheduled switchover: unknown; {} is not the active site, and only {active} knows whether one is due{address}",
        v.node
    );
}

/// The members' table. What an unreachable peer last reported may no
/// longer hold: its health and data are shown as unknown.
fn print_sites(v: &StatusDoc) {
    let header = ["SITE", "KIND", "PRIORITY", "HEALTHY", "CAUGHT-UP", "REACHABLE", "LAST SEEN"];
    let row = |c: [String; 7]| {
        say!("{:<12} {:<8} {:>8} {:>8} {:>9} {:>10} {:>10}", c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
    };
    row(header.map(str::to_owned));
    for site in &v.sites {
        let now = |value: Option<bool>| if site.reachable { cell(&value) } else { "unknown".to_owned() };
        let seen = site.last_seen_ms.map_or_else(|| "never".to_owned(), |ms| format!("{ms}ms"));
        row([
            site.id.clone(),
            site.kind.clone(),
            site.priority.to_string(),
            now(site.healthy),
            now(site.caught_up),
            site.reachable.to_string(),
            seen,
        ]);
    }
}

/// The replica set as the answering node sees it.
fn print_mongodb(m: &MongoReport, node: &str) {
    let view = m.view.as_ref();
    match view {
        Some(view) => say!(
            "MongoDB replica set {} as {node} sees it: shape {}, primary {} ({}), majority writes {}, state store {}",
            view.set,
            view.shape,
            cell(&view.primary),
            cell(&view.primary_site),
            if view.majority_writes_available { "available" } else { "UNAVAILABLE" },
            m.state_store,
        ),
        None => say!("MongoDB replica set: not read yet (state store {})", m.state_store),
    }
    if view.is_some_and(|v| v.majority_needs_every_data_member) {
        say!("  losing one data member stops majority writes (primary-secondary-arbiter)");
    }
    for missing in view.map(|v| v.configured_not_in_set(None)).unwrap_or_default() {
        say!("  CONFIG: {missing}; [[mongodb.members]] hosts must be written as rs.status().members[].name shows them");
    }
    if let Some(e) = &m.error {
        say!("  cannot read the set ({} failed reads in a row): {e}", m.consecutive_failures);
    }
    let read_at = m.updated_at.as_deref().unwrap_or("never");
    if view.is_some() && m.error.is_some() {
        say!("  the members below are as read at {read_at}, before the reads failed: they may no longer hold");
    } else if view.is_some() {
        say!("  read at {read_at}");
    }
    match &m.not_caught_up_because {
        Some(why) => say!("  {node} is NOT eligible for automatic failover: {why}"),
        None => say!("  {node}'s data is caught up"),
    }
    say!(
        "  {:<24} {:<10} {:<26} {:>7} {:>8} {:>5} {:>10}",
        "MEMBER",
        "SITE",
        "STATE",
        "HEALTHY",
        "PRIORITY",
        "VOTES",
        "LAG"
    );
    for member in view.map(|v| v.members.as_slice()).unwrap_or_default() {
        let lag = member.lag_ms.map_or("-".to_string(), |ms| format!("{ms}ms"));
        say!(
            "  {:<24} {:<10} {:<26} {:>7} {:>8} {:>5} {:>10}",
            member.host,
            cell(&member.site),
            member.state,
            member.healthy,
            cell(&member.priority),
            cell(&member.votes),
            lag
        );
    }
}
