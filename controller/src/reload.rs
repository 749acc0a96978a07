//! Live reload of the configuration file (SIGHUP, `failoverctl reload`,
//! the unit's `ExecReload`): the whole file is read and validated again
//! with the checks `check-config` makes, compared key by key with the one
//! running, and applied without a restart, so the active site keeps its
//! lease and epoch throughout.
//!
//! It must never apply any part of a file that fails validation (the node
//! keeps running on the old one and says why), nor a change that needs the
//! whole cluster to agree or that this build reads only at start: such a
//! reload is refused as a whole, naming every key and why. Applied live:
//! the hooks, the health checks, the actuators, the MongoDB link, the admin
//! tokens and their operators, the TLS files (read again on every reload, so a certificate
//! renewed under the same name is put in use, and its expiry shown), the
//! log level and format, and what a stop does.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::actuate::ActuatorSet;
use crate::admin_auth::AdminGate;
use crate::build::Targets;
use crate::health::HealthChecks;
use crate::hooks::HooksSection;
use crate::http_tls::HttpTls;
use crate::logging::LogControl;
use crate::mongo::MongoLink;
use crate::peer_tls::TlsFiles;
use crate::reports::ReloadReport;
use crate::settings::Loaded;
use crate::snapshot::NodeSnapshot;

/// Keys whose changes this build applies live, by prefix.
const LIVE: [&str; 15] = [
    "hooks",
    "checks",
    "actuators",
    "mongodb",
    "tls",
    "admin.token",
    "admin.token_file",
    "admin.tokens",
    "admin.allow_without_token",
    "admin.tls_cert_file",
    "admin.tls_key_file",
    "admin.tls_ca_file",
    "node.log_format",
    "node.log_level",
    "node.on_stop",
];

/// Why a changed key needs a restart, or `None` when it is applied live.
/// Whether the HTTP ports speak HTTPS at all is judged by [`judge`].
pub fn restart_only(key: &str) -> Option<&'static str> {
    let under = |prefix: &str| {
        key == prefix || key.starts_with(&format!("{prefix}.")) || key.starts_with(&format!("{prefix}["))
    };
    if key == "tls" {
        return Some("turning mutual TLS between the nodes on or off must be done on every node, each with a restart");
    }
    if key == "mongodb" || under("mongodb.state_store") {
        return Some(
            "whether this node coordinates MongoDB, and where the shared state is kept, are fixed for a process's \
             life: restart the node (an active site keeps its role across a restart)",
        );
    }
    if LIVE.iter().any(|p| under(p)) {
        return None;
    }
    Some(if under("members") {
        "members, their votes, priorities and addresses must agree on every node (the config fingerprint): \
         change them node by node, each with a restart"
    } else if under("cluster.name") || under("node.name") || under("node.state_dir") {
        "which cluster and node this process is, and where its votes are kept, are fixed for its life: restart it"
    } else if under("cluster") {
        "the protocol's timers and policy are fixed for a process's life: restart the node (an active site keeps \
         its role across a restart)"
    } else {
        "read at start by this build: restart the node (an active site keeps its role across a restart)"
    })
}

/// Every dotted key whose value differs between two parsed files: tables
/// key by key, arrays element by element (`members[1].priority`), an array
/// whose length changed as a whole.
pub fn changed_keys(old: &toml::Value, new: &toml::Value) -> Vec<String> {
    let mut out = Vec::new();
    diff("", old, new, &mut out);
    out
}

fn diff(at: &str, old: &toml::Value, new: &toml::Value, out: &mut Vec<String>) {
    let join = |k: &str| if at.is_empty() { k.to_owned() } else { format!("{at}.{k}") };
    match (old, new) {
        (toml::Value::Table(a), toml::Value::Table(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff(&join(k), x, y, out),
                    _ => out.push(join(k)),
                }
            }
        }
        (toml::Value::Array(a), toml::Value::Array(b)) if a.len() == b.len() && a.iter().all(toml::Value::is_table) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{at}[{i}]"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(at.to_owned()),
        _ => {}
    }
}

/// The files the TLS and admin token keys name, with their content: a
/// reload shows which of them changed under the same name (a renewed
/// certificate), since no key did.
pub fn named_files(settings: &crate::settings::Settings) -> Vec<(&'static str, Option<Vec<u8>>)> {
    let admin = &settings.admin;
    let tls = settings.tls.as_ref();
    let files = [
        ("tls.ca_file", tls.map(|t| t.ca_file.as_path())),
        ("tls.cert_file", tls.map(|t| t.cert_file.as_path())),
        ("tls.key_file", tls.map(|t| t.key_file.as_path())),
        ("admin.tls_cert_file", admin.tls_cert_file.as_deref()),
        ("admin.tls_key_file", admin.tls_key_file.as_deref()),
        ("admin.tls_ca_file", admin.tls_ca_file.as_deref()),
        ("admin.token_file", admin.token_file.as_deref()),
    ];
    let mut named: Vec<_> =
        files.into_iter().filter_map(|(key, path)| path.map(|p| (key, std::fs::read(p).ok()))).collect();
    // The operators' token files as one: any new token among them shows.
    if !admin.tokens.is_empty() {
        let tokens: Option<Vec<Vec<u8>>> = admin.tokens.iter().map(|t| std::fs::read(&t.token_file).ok()).collect();
        named.push(("admin.tokens", tokens.map(|t| t.join(&b'\n'))));
    }
    named
}

/// The keys of `new` whose file holds other content than in `old`, under
/// the same key, as a reload lists them.
fn new_content(
    old: &[(&'static str, Option<Vec<u8>>)],
    new: &[(&'static str, Option<Vec<u8>>)],
    changed: &[String],
) -> Vec<String> {
    new.iter()
        .filter(|(key, content)| {
            !changed.iter().any(|c| c == key) && old.iter().any(|(k, before)| k == key && before != content)
        })
        .map(|(key, _)| format!("{key} (new content)"))
        .collect()
}

/// What a reload may apply, or every reason it may not: the keys that
/// changed between the running file's text and the new one's.
pub fn judge(old_text: &str, new_text: &str) -> Result<Vec<String>, Vec<String>> {
    let parse = |text: &str| text.parse::<toml::Table>().map(toml::Value::Table).map_err(|e| e.to_string());
    let (old, new) = match (parse(old_text), parse(new_text)) {
        (Ok(a), Ok(b)) => (a, b),
        (_, Err(e)) | (Err(e), _) => return Err(vec![e]),
    };
    let changed = changed_keys(&old, &new);
    let mut problems: Vec<String> =
        changed.iter().filter_map(|k| restart_only(k).map(|why| format!("{k}: changed; {why}"))).collect();
    let https = |v: &toml::Value| v.get("admin").and_then(|a| a.get("tls_cert_file")).is_some();
    if https(&old) != https(&new) {
        problems.push(
            "admin.tls_cert_file: set or removed; whether the HTTP ports speak HTTPS must be the same on every \
             node (each calls the others with its own scheme): change it on every node, each with a restart"
                .to_owned(),
        );
    }
    if problems.is_empty() {
        Ok(changed)
    } else {
        Err(problems)
    }
}

/// The parts of the running daemon a reload changes.
pub struct LiveParts {
    /// The admin operators.
    pub admin: Arc<AdminGate>,
    /// The hooks the protocol loop runs.
    pub hooks: mpsc::Sender<HooksSection>,
    /// The health checks.
    pub checks: Arc<HealthChecks>,
    /// The log's level and format.
    pub log: LogControl,
    /// Where the outcome is shown.
    pub snapshot: NodeSnapshot,
    /// The actuators.
    pub actuators: ActuatorSet,
    /// The peer TLS files, with `[tls]`.
    pub peer_tls: Option<watch::Sender<TlsFiles>>,
    /// The HTTP port's TLS, with `admin.tls_cert_file`.
    pub http_tls: Option<watch::Sender<HttpTls>>,
    /// The client for calls to the other nodes' HTTP ports.
    pub node_client: watch::Sender<reqwest::Client>,
    /// The MongoDB link the monitor and the event log use, with `[mongodb]`.
    pub mongo_links: Option<watch::Sender<MongoLink>>,
}

/// Reads and validates a file as the daemon does at start, and builds
/// what it describes (its problems, one a line, when it cannot be used).
pub type Validate = Box<dyn Fn(&Path) -> Result<(Loaded, Targets), String> + Send + Sync>;

/// Reloads the running configuration on request; one reload at a time.
pub struct Reloader {
    running: Loaded,
    text: String,
    files: Vec<(&'static str, Option<Vec<u8>>)>,
    live: LiveParts,
    validate: Validate,
    applied_total: u64,
    refused_total: u64,
}

impl Reloader {
    /// A reloader for the daemon running `loaded`.
    pub fn new(loaded: Loaded, live: LiveParts, validate: Validate) -> Reloader {
        let text = std::fs::read_to_string(&loaded.path).unwrap_or_default();
        let files = named_files(&loaded.settings);
        Reloader { running: loaded, text, files, live, validate, applied_total: 0, refused_total: 0 }
    }

    /// The configuration in effect.
    pub fn running(&self) -> &Loaded {
        &self.running
    }

    /// Reads the file again and applies it, or keeps the running one and
    /// says why; the outcome is logged, published and returned.
    pub async fn reload(&mut self) -> ReloadReport {
        let path = self.running.path.clone();
        let outcome = match (self.validate)(&path) {
            Err(problems) => Err((Vec::new(), problems.lines().map(str::to_owned).collect())),
            Ok((new, targets)) => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                match judge(&self.text, &text) {
                    Ok(mut changed) => match self.apply(&new, targets).await {
                        Ok(()) => {
                            crate::cert_expiry::publish(&new, &self.live.snapshot);
                            let files = named_files(&new.settings);
                            changed.extend(new_content(&self.files, &files, &changed));
                            (self.text, self.files, self.running) = (text, files, new);
                            Ok(changed)
                        }
                        Err(e) => Err((changed, vec![e])),
                    },
                    Err(problems) => Err((Vec::new(), problems)),
                }
            }
        };
        let report = match outcome {
            Ok(changed) => {
                self.applied_total += 1;
                tracing::info!(file = %path.display(), changed = ?changed, "configuration reloaded");
                ReloadReport { applied: true, changed, ..self.report() }
            }
            Err((changed, problems)) => {
                self.refused_total += 1;
                tracing::error!(
                    file = %path.display(),
                    problems = %problems.join("; "),
                    "configuration NOT reloaded: still running the previous one"
                );
                ReloadReport { applied: false, changed, problems, ..self.report() }
            }
        };
        self.live.snapshot.publish_reload(report.clone());
        report
    }

    fn report(&self) -> ReloadReport {
        ReloadReport {
            at: crate::clock::wall(crate::clock::now()),
            applied_total: self.applied_total,
            refused_total: self.refused_total,
            ..ReloadReport::default()
        }
    }

    /// Puts the live keys of `new` in effect (every one, changed or not:
    /// a file it names may hold a new token, secret or certificate under
    /// the same name). Only the log can still refuse here, before anything
    /// else is applied; the rest was checked when the file was validated.
    async fn apply(&self, new: &Loaded, targets: Targets) -> Result<(), String> {
        let live = &self.live;
        live.log.apply(new.log_format, new.settings.node.log_level.as_deref())?;
        let client = crate::http_tls::node_client(new.http_tls.as_ref())
            .map_err(|e| format!("admin.tls_ca_file: cannot build the client for the other nodes: {e}"))?;
        live.admin.set_operators(new.operators.clone());
        if live.hooks.send(new.settings.hooks.clone()).await.is_err() {
            return Err("hooks: the protocol loop has stopped".into());
        }
        live.checks.replace(new.checks.clone()).await;
        if let (Some(tx), Some(files)) = (&live.peer_tls, &new.tls) {
            tx.send_replace(files.clone());
        }
        if let (Some(tx), Some(tls)) = (&live.http_tls, &new.http_tls) {
            tx.send_replace(tls.clone());
        }
        live.node_client.send_replace(client);
        if let (Some(tx), Some(link)) = (&live.mongo_links, &targets.mongodb) {
            tx.send_replace(link.clone());
        }
        live.actuators.replace(targets.actuators).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[node]\nname = \"site-a\"\nstate_dir = \"/x\"\n[cluster]\nlease = \"3s\"\n\
        [[members]]\nname = \"site-a\"\npriority = 2\n[[members]]\nname = \"site-b\"\npriority = 1\n\
        [hooks]\non_demote = \"a\"\n[admin]\ntoken_file = \"/t\"\n";

    fn judged(new: &str) -> Result<Vec<String>, Vec<String>> {
        judge(BASE, new)
    }

    #[test]
    fn live_keys_are_applied_and_listed() {
        let new = BASE
            .replace("on_demote = \"a\"", "on_demote = \"b\"\npost_promote = \"c\"")
            .replace("token_file = \"/t\"", "token_file = \"/u\"")
            .replace("state_dir = \"/x\"", "state_dir = \"/x\"\nlog_level = \"debug\"")
            + "[[checks]]\nname = \"c\"\n[actuators]\naddresses = [\"127.0.0.10\"]\n";
        assert_eq!(
            judged(&new),
            Ok(vec![
                "actuators".to_owned(),
                "admin.token_file".to_owned(),
                "checks".to_owned(),
                "hooks.on_demote".to_owned(),
                "hooks.post_promote".to_owned(),
                "node.log_level".to_owned(),
            ])
        );
        assert_eq!(judged(BASE), Ok(vec![]), "an unchanged file changes nothing");
    }

    #[test]
    fn every_restart_only_key_is_named_with_why_and_nothing_is_applied() {
        let new = BASE
            .replace("priority = 1", "priority = 3")
            .replace("lease = \"3s\"", "lease = \"5s\"\nname = \"other\"")
            .replace("state_dir = \"/x\"", "state_dir = \"/y\"")
            .replace("on_demote = \"a\"", "on_demote = \"b\"")
            + "[mongodb]\nuri = \"mongodb://127.0.0.1\"\n[tls]\nca_file = \"/ca\"\n";
        let problems = judged(&new).expect_err("refused");
        let keys: Vec<&str> = problems.iter().map(|p| p.split(':').next().unwrap_or_default()).collect();
        assert_eq!(keys, ["cluster.lease", "cluster.name", "members[1].priority", "mongodb", "node.state_dir", "tls"]);
        assert!(problems.iter().all(|p| p.contains("restart")), "{problems:?}");
        assert!(problems[2].contains("fingerprint"), "{problems:?}");
    }

    #[test]
    fn new_tls_paths_are_live_but_https_on_or_off_is_a_restart() {
        let with = |extra: &str| BASE.replace("token_file = \"/t\"", &format!("token_file = \"/t\"\n{extra}"));
        let https = with("tls_cert_file = \"/c\"\ntls_key_file = \"/k\"");
        let moved = with("tls_cert_file = \"/c2\"\ntls_key_file = \"/k\"\ntls_ca_file = \"/ca\"");
        assert_eq!(judge(&https, &moved), Ok(vec!["admin.tls_ca_file".to_owned(), "admin.tls_cert_file".to_owned()]));
        for (from, to) in [(BASE.to_owned(), https.clone()), (https, BASE.to_owned())] {
            let problems = judge(&from, &to).expect_err("refused");
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].starts_with("admin.tls_cert_file: set or removed"), "{problems:?}");
        }
        let peer = |file: &str| format!("{BASE}[tls]\nca_file = \"/ca\"\ncert_file = \"{file}\"\nkey_file = \"/k\"\n");
        assert_eq!(judge(&peer("/a"), &peer("/b")), Ok(vec!["tls.cert_file".to_owned()]));
        let store = format!("{BASE}[mongodb]\nuri = \"mongodb://127.0.0.1\"\n");
        let problems = judge(&store, &format!("{store}state_store = \"mongodb\"\n")).expect_err("refused");
        assert!(problems[0].starts_with("mongodb.state_store: changed"), "{problems:?}");
        assert_eq!(judge(&store, &store.replace("127.0.0.1", "127.0.0.2")), Ok(vec!["mongodb.uri".to_owned()]));
    }

    #[test]
    fn a_file_with_new_content_under_the_same_key_is_listed() {
        let old = vec![("tls.cert_file", Some(b"old".to_vec())), ("tls.key_file", Some(b"k".to_vec()))];
        let new = vec![("tls.cert_file", Some(b"new".to_vec())), ("tls.key_file", Some(b"k".to_vec()))];
        assert_eq!(new_content(&old, &new, &[]), ["tls.cert_file (new content)"]);
        assert!(new_content(&old, &new, &["tls.cert_file".to_owned()]).is_empty(), "a new path is listed once");
        assert!(new_content(&old, &old, &[]).is_empty());
    }

    #[test]
    fn a_file_that_does_not_parse_is_refused_with_the_parser_s_words() {
        let problems = judged("[node\nname = 1").expect_err("refused");
        assert_eq!(problems.len(), 1);
        assert!(!problems[0].is_empty());
    }

    #[test]
    fn arrays_of_tables_that_grow_count_as_one_key() {
        let new = BASE.to_owned() + "[[members]]\nname = \"site-c\"\npriority = 1\n";
        let problems = judged(&new).expect_err("refused");
        assert!(problems[0].starts_with("members: changed"), "{problems:?}");
    }
}
