//! Live reload of the configuration file (SIGHUP, `failoverctl reload`,
//! the unit's `ExecReload`): the whole file is read and validated again
//! with the checks `check-config` makes, compared key by key with the one
//! running, and applied without a restart, so the active site keeps its
//! lease and epoch throughout.
//!
//! It must never apply any part of a file that fails validation (the node
//! keeps running on the old one and says why), nor a change that needs the
//! whole cluster to agree or that this build reads only at start: such a
//! reload is refused as a whole, naming every key and why. Keys applied
//! live: the hooks, the health checks, the admin token, the log level and
//! format, and what a stop does.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::admin_auth::AdminGate;
use crate::health::HealthChecks;
use crate::hooks::HooksSection;
use crate::logging::LogControl;
use crate::reports::ReloadReport;
use crate::settings::Loaded;
use crate::snapshot::NodeSnapshot;

/// Keys whose changes this build applies live, by prefix.
const LIVE: [&str; 7] =
    ["hooks", "checks", "admin.token", "admin.token_file", "node.log_format", "node.log_level", "node.on_stop"];

/// Why a changed key needs a restart, or `None` when it is applied live.
pub fn restart_only(key: &str) -> Option<&'static str> {
    let under = |prefix: &str| {
        key == prefix || key.starts_with(&format!("{prefix}.")) || key.starts_with(&format!("{prefix}["))
    };
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
    } else if under("tls") || under("admin.tls_cert_file") || under("admin.tls_key_file") || under("admin.tls_ca_file")
    {
        "TLS files are read at start by this build: restart the node (an active site keeps its role across a \
         restart)"
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

/// The files `[tls]` and the admin TLS keys name, with their content, to
/// see a file replaced under the same path (a renewed certificate).
pub fn tls_files(settings: &crate::settings::Settings) -> Vec<(String, Option<Vec<u8>>)> {
    let mut files: Vec<(&str, Option<&Path>)> = Vec::new();
    if let Some(t) = &settings.tls {
        files.push(("tls.ca_file", Some(t.ca_file.as_path())));
        files.push(("tls.cert_file", Some(t.cert_file.as_path())));
        files.push(("tls.key_file", Some(t.key_file.as_path())));
    }
    let admin = &settings.admin;
    files.push(("admin.tls_cert_file", admin.tls_cert_file.as_deref()));
    files.push(("admin.tls_key_file", admin.tls_key_file.as_deref()));
    files.push(("admin.tls_ca_file", admin.tls_ca_file.as_deref()));
    files.into_iter().filter_map(|(key, path)| path.map(|p| (key.to_owned(), std::fs::read(p).ok()))).collect()
}

/// What a reload may apply, or every reason it may not: the keys that
/// changed between the running file's text and the new one's, and the TLS
/// files whose content changed under the same key.
pub fn judge(
    old_text: &str,
    new_text: &str,
    old_tls: &[(String, Option<Vec<u8>>)],
    new_tls: &[(String, Option<Vec<u8>>)],
) -> Result<Vec<String>, Vec<String>> {
    let parse = |text: &str| text.parse::<toml::Table>().map(toml::Value::Table).map_err(|e| e.to_string());
    let (old, new) = match (parse(old_text), parse(new_text)) {
        (Ok(a), Ok(b)) => (a, b),
        (_, Err(e)) | (Err(e), _) => return Err(vec![e]),
    };
    let changed = changed_keys(&old, &new);
    let mut problems: Vec<String> =
        changed.iter().filter_map(|k| restart_only(k).map(|why| format!("{k}: changed; {why}"))).collect();
    for (key, content) in new_tls {
        let before = old_tls.iter().find(|(k, _)| k == key).map(|(_, c)| c);
        if before.is_some_and(|b| b != content) && !changed.contains(key) {
            problems.push(format!("{key}: the file's content changed; {}", restart_only(key).unwrap_or_default()));
        }
    }
    if problems.is_empty() {
        Ok(changed)
    } else {
        Err(problems)
    }
}

/// The parts of the running daemon a reload changes.
pub struct LiveParts {
    /// The admin token.
    pub admin: Arc<AdminGate>,
    /// The hooks the protocol loop runs.
    pub hooks: mpsc::Sender<HooksSection>,
    /// The health checks.
    pub checks: Arc<HealthChecks>,
    /// The log's level and format.
    pub log: LogControl,
    /// Where the outcome is shown.
    pub snapshot: NodeSnapshot,
}

/// Reads and validates a file as the daemon does at start (its problems,
/// one a line, when it cannot be used).
pub type Validate = Box<dyn Fn(&Path) -> Result<Loaded, String> + Send + Sync>;

/// Reloads the running configuration on request; one reload at a time.
pub struct Reloader {
    running: Loaded,
    text: String,
    tls: Vec<(String, Option<Vec<u8>>)>,
    live: LiveParts,
    validate: Validate,
    applied_total: u64,
    refused_total: u64,
}

impl Reloader {
    /// A reloader for the daemon running `loaded`.
    pub fn new(loaded: Loaded, live: LiveParts, validate: Validate) -> Reloader {
        let text = std::fs::read_to_string(&loaded.path).unwrap_or_default();
        let tls = tls_files(&loaded.settings);
        Reloader { running: loaded, text, tls, live, validate, applied_total: 0, refused_total: 0 }
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
            Ok(new) => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let tls = tls_files(&new.settings);
                match judge(&self.text, &text, &self.tls, &tls) {
                    Ok(changed) => match self.apply(&new).await {
                        Ok(()) => {
                            (self.text, self.tls, self.running) = (text, tls, new);
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
    /// a token file may hold a new token under the same name).
    async fn apply(&self, new: &Loaded) -> Result<(), String> {
        self.live.log.apply(new.log_format, new.settings.node.log_level.as_deref())?;
        self.live.admin.set_token(new.token.clone());
        if self.live.hooks.send(new.settings.hooks.clone()).await.is_err() {
            return Err("hooks: the protocol loop has stopped".into());
        }
        self.live.checks.replace(new.checks.clone()).await;
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
        judge(BASE, new, &[], &[])
    }

    #[test]
    fn live_keys_are_applied_and_listed() {
        let new = BASE
            .replace("on_demote = \"a\"", "on_demote = \"b\"\npost_promote = \"c\"")
            .replace("token_file = \"/t\"", "token_file = \"/u\"")
            .replace("state_dir = \"/x\"", "state_dir = \"/x\"\nlog_level = \"debug\"")
            + "[[checks]]\nname = \"c\"\n";
        assert_eq!(
            judged(&new),
            Ok(vec![
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
            + "[actuators]\naddresses = [\"127.0.0.10\"]\n";
        let problems = judged(&new).expect_err("refused");
        let keys: Vec<&str> = problems.iter().map(|p| p.split(':').next().unwrap_or_default()).collect();
        assert_eq!(keys, ["actuators", "cluster.lease", "cluster.name", "members[1].priority", "node.state_dir"]);
        assert!(problems.iter().all(|p| p.contains("restart")), "{problems:?}");
        assert!(problems[3].contains("fingerprint"), "{problems:?}");
    }

    #[test]
    fn a_tls_file_replaced_under_the_same_path_is_named() {
        let old = vec![("tls.cert_file".to_owned(), Some(b"old".to_vec()))];
        let same = judge(BASE, BASE, &old, &old);
        assert_eq!(same, Ok(vec![]));
        let new = vec![("tls.cert_file".to_owned(), Some(b"new".to_vec()))];
        let problems = judge(BASE, BASE, &old, &new).expect_err("refused");
        assert!(problems[0].starts_with("tls.cert_file: the file's content changed"), "{problems:?}");
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
