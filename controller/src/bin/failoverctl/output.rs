//! What failoverctl prints: every line goes through [`line`], so a reader
//! that goes away (`failoverctl status | head -1`) ends the program quietly.

use std::io::Write;

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

fn field(v: &Value, k: &str) -> String {
    text(v.get(k))
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

/// `failoverctl status`: the answering node's view of the cluster.
///
/// `active_view` is the active site's own `/status` when another node
/// answered: only the active site holds a scheduled switchover.
pub fn print_status(v: &Value, active_view: Option<&Value>) {
    let s = |k: &str| field(v, k);
    let node = s("node");
    let active = v.get("active_site").and_then(Value::as_str);
    let epoch = match (v.get("epoch").and_then(Value::as_u64), v.get("last_known_epoch").and_then(Value::as_u64)) {
        (Some(e), _) => e.to_string(),
        (None, Some(last)) => format!("- (last known {last})"),
        (None, None) => "-".to_owned(),
    };
    say!(
        "active: {}   epoch: {epoch}   term: {}   mode: {}   paused: {}",
        active.unwrap_or("none"),
        s("term"),
        s("mode"),
        s("paused")
    );
    say!("answered by: {node} ({})", s("role"));
    if v.get("peer_authentication").and_then(Value::as_str) == Some("none") {
        say!(
            "PEERS UNAUTHENTICATED: {node} runs without mutual TLS; anyone who reaches a peer port can vote and grant \
             leases as any member (set up [tls] with failoverctl certs init)"
        );
    }
    if let Some(p) = v.get("pending_failover").filter(|p| !p.is_null()) {
        let target = field(p, "target");
        say!("PENDING FAILOVER to {target}: {} (since {})", field(p, "reason"), field(p, "since"));
        say!("  approve with: failoverctl approve --to {target}");
    }
    print_schedule(active_view.unwrap_or(v), active.filter(|_| active_view.is_none()));
    if let Some(stored) = v.get("fence_ahead").and_then(Value::as_u64) {
        say!(
            "FENCE ALARM: a target holds epoch {stored}, which {node} (epoch {}) was not elected with: forged, or left \
             by a forced promotion; {node} stays active and writes nothing over that target until it is corrected",
            s("epoch"),
        );
    }
    for m in v.get("config_mismatches").and_then(Value::as_array).into_iter().flatten() {
        let peer = field(m, "peer");
        match m.get("theirs").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            Some(theirs) => say!(
                "CONFIG MISMATCH: {peer}'s members, votes or priorities differ from {node}'s (fingerprint {theirs} \
                 there, {} here): messages both ways are refused until [[members]] is the same on every node",
                s("cluster_fingerprint")
            ),
            None => say!("UNVERIFIED CONFIG: {peer} sends no cluster fingerprint (an older build)"),
        }
    }
    print_sites(v);
    let actuators = v.get("actuators").and_then(Value::as_array).filter(|a| !a.is_empty());
    if let Some(actuators) = actuators {
        say!("actuators of {node}:");
        say!("  {:<20} {:<8} {:<10} {:>6}  DETAIL", "NAME", "KIND", "STATE", "EPOCH");
        for a in actuators {
            let f = |k: &str| field(a, k);
            say!("  {:<20} {:<8} {:<10} {:>6}  {}", f("name"), f("kind"), f("state"), f("epoch"), f("detail"));
        }
    }
    if let Some(m) = v.get("mongodb").filter(|m| !m.is_null()) {
        print_mongodb(m, &node);
    }
}

/// A scheduled switchover, which only the active site holds: shown when the
/// answer has it, and when the answering node is not the active site and the
/// active site did not answer, where to ask instead.
fn print_schedule(v: &Value, active: Option<&str>) {
    if let Some(sw) = v.get("scheduled_switchover").filter(|x| !x.is_null()) {
        let left = sw.get("in_ms").and_then(Value::as_u64).map_or_else(
            || "-".to_owned(),
            |ms| humantime::format_duration(std::time::Duration::from_secs(ms / 1000)).to_string(),
        );
        say!("SCHEDULED SWITCHOVER to {} at {} (in {left})", field(sw, "to"), field(sw, "at"));
        say!("  cancel with: failoverctl switchover --cancel");
        return;
    }
    let Some(active) = active.filter(|_| v.get("role").and_then(Value::as_str) != Some("active")) else { return };
    let address = v
        .get("sites")
        .and_then(Value::as_array)
        .and_then(|sites| sites.iter().find(|s| s.get("id").and_then(Value::as_str) == Some(active)))
        .and_then(|s| s.get("http_address"))
        .and_then(Value::as_str)
        .map_or_else(String::new, |a| format!(" (failoverctl -e {a} status)"));
    say!(
        "scheduled switchover: unknown; {} is not the active site, and only {active} knows whether one is due{address}",
        field(v, "node")
    );
}

/// The members' table. What an unreachable peer last reported may no
/// longer hold: its health and data are shown as unknown.
fn print_sites(v: &Value) {
    let header = ["SITE", "KIND", "PRIORITY", "HEALTHY", "CAUGHT-UP", "REACHABLE", "LAST SEEN"];
    let row = |c: [String; 7]| {
        say!("{:<12} {:<8} {:>8} {:>8} {:>9} {:>10} {:>10}", c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
    };
    row(header.map(str::to_owned));
    for site in v.get("sites").and_then(Value::as_array).into_iter().flatten() {
        let f = |k: &str| field(site, k);
        let unreachable = site.get("reachable") == Some(&Value::Bool(false));
        let now = |k: &str| if unreachable { "unknown".to_owned() } else { f(k) };
        let seen =
            site.get("last_seen_ms").and_then(Value::as_u64).map_or_else(|| "never".to_owned(), |ms| format!("{ms}ms"));
        row([f("id"), f("kind"), f("priority"), now("healthy"), now("caught_up"), f("reachable"), seen]);
    }
}

/// The replica set as the answering node sees it.
fn print_mongodb(m: &Value, node: &str) {
    let view = m.get("view").filter(|v| !v.is_null());
    match view {
        Some(view) => say!(
            "MongoDB replica set {} as {node} sees it: shape {}, primary {} ({}), majority writes {}, state store {}",
            field(view, "set"),
            field(view, "shape"),
            field(view, "primary"),
            field(view, "primary_site"),
            if view.get("majority_writes_available") == Some(&Value::Bool(true)) { "available" } else { "UNAVAILABLE" },
            field(m, "state_store"),
        ),
        None => say!("MongoDB replica set: not read yet (state store {})", field(m, "state_store")),
    }
    if view.and_then(|v| v.get("majority_needs_every_data_member")) == Some(&Value::Bool(true)) {
        say!("  losing one data member stops majority writes (primary-secondary-arbiter)");
    }
    if let Some(e) = m.get("error").and_then(Value::as_str) {
        say!("  cannot read the set: {e}");
    }
    match m.get("not_caught_up_because").and_then(Value::as_str) {
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
    for member in view.and_then(|v| v.get("members")).and_then(Value::as_array).into_iter().flatten() {
        let lag = member.get("lag_ms").and_then(Value::as_u64).map_or("-".to_string(), |ms| format!("{ms}ms"));
        say!(
            "  {:<24} {:<10} {:<26} {:>7} {:>8} {:>5} {:>10}",
            field(member, "host"),
            field(member, "site"),
            field(member, "state"),
            field(member, "healthy"),
            field(member, "priority"),
            field(member, "votes"),
            lag
        );
    }
}
