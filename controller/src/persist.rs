//! The durable state file: written to a temporary file, fsynced, renamed
//! over the old one and the directory fsynced, so a crash leaves either the
//! old state or the new one, never a torn file. A file that cannot be parsed
//! stops the daemon with its path: guessing a term would risk a double vote.
//! A write that fails is tried again a few times within a second (a
//! descriptor or disk shortage may pass) before the failure is returned.
//!
//! While a daemon runs it holds an exclusive lock on `lock` in the state
//! directory (an advisory `flock`, released by the kernel when the process
//! dies, however it dies). Two processes of one node must never run at
//! once: each would vote and renew from its own copy of the state, and
//! their votes in one term could differ. A second process is refused with
//! the process id the holder wrote into the lock file.
//!
//! The file names the cluster and the node it belongs to, and a file that
//! names another is refused: a vote recorded in another cluster (a staging
//! copy with the same member names, a state directory restored to the wrong
//! host) says nothing about this node's votes, and trusting it could let
//! this node vote twice in one term.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use backon::{BlockingRetryable, ExponentialBuilder};

use std::sync::Arc;

use std::time::SystemTime;

use failover_core::{
    ActivationCause, Chosen, DurableState, Led, MaintenanceSetting, NodeId, PauseSetting, ScheduledSwitchover, Term,
};

use crate::clock;

use crate::maintenance_notes::{Notebook, Notes, SiteNote};
use serde::{Deserialize, Serialize};

/// On-disk form of [`DurableState`], with member names instead of indices
/// so a reordered member list cannot change its meaning.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct OnDisk {
    term: u64,
    voted_for: Option<String>,
    last_chosen: Option<(String, u64)>,
    pause_version: u64,
    pause_by: Option<String>,
    paused: bool,
    /// Absent in files written before it existed: then the configured lease.
    #[serde(default)]
    bound_ms: u64,
    /// The cluster's name; absent in files written before it existed.
    #[serde(default)]
    cluster: Option<String>,
    /// The node's own name; absent in files written before it existed.
    #[serde(default)]
    node: Option<String>,
    /// The fingerprint of the shared configuration at the last write.
    #[serde(default)]
    config_fingerprint: Option<String>,
    /// The term this site won and still acts as active in; absent in files
    /// written before it existed (then a restart never resumes the role).
    #[serde(default)]
    led: Option<LedOnDisk>,
    /// The maintenance setting's version; absent in files written before it
    /// existed (then no site is in maintenance).
    #[serde(default)]
    maintenance_version: u64,
    /// The node that last changed it.
    #[serde(default)]
    maintenance_by: Option<String>,
    /// The sites in maintenance.
    #[serde(default)]
    maintenance_sites: Vec<String>,
    /// Who put each site in maintenance, when and why, for the version they
    /// belong to.
    #[serde(default)]
    maintenance_notes: Option<NotesOnDisk>,
    /// The node lost its state and has not caught up with the cluster yet;
    /// absent in files written before it existed (then false).
    #[serde(default)]
    recovering: bool,
    /// A switchover this active site scheduled; absent in files written
    /// before it was kept (then a restart forgot it).
    #[serde(default)]
    scheduled_switchover: Option<ScheduledOnDisk>,
}

/// On-disk form of [`ScheduledSwitchover`]: the due time as wall-clock
/// milliseconds since the Unix epoch, since the protocol clock
/// (`CLOCK_BOOTTIME`) starts again at a reboot. It is read back against
/// both clocks at load; a wall clock stepped while the node was down moves
/// the due time with it, as it would move the operator's `--at`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct ScheduledOnDisk {
    to: String,
    at_unix_ms: u64,
}

/// On-disk form of [`Notes`].
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct NotesOnDisk {
    version: u64,
    by: Option<String>,
    sites: Vec<NoteOnDisk>,
}

/// On-disk form of [`crate::maintenance_notes::SiteNote`].
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct NoteOnDisk {
    site: String,
    by: String,
    reason: String,
    since_unix_ms: u64,
}

/// On-disk form of [`Led`].
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct LedOnDisk {
    term: u64,
    cause: CauseOnDisk,
    resumes: u16,
}

/// On-disk form of [`ActivationCause`], by name.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum CauseOnDisk {
    Reclaim,
    AutomaticFailover,
    ApprovedFailover,
    Handoff,
    Forced,
}

impl From<ActivationCause> for CauseOnDisk {
    fn from(c: ActivationCause) -> Self {
        match c {
            ActivationCause::Reclaim => CauseOnDisk::Reclaim,
            ActivationCause::AutomaticFailover => CauseOnDisk::AutomaticFailover,
            ActivationCause::ApprovedFailover => CauseOnDisk::ApprovedFailover,
            ActivationCause::Handoff => CauseOnDisk::Handoff,
            ActivationCause::Forced => CauseOnDisk::Forced,
        }
    }
}

impl From<CauseOnDisk> for ActivationCause {
    fn from(c: CauseOnDisk) -> Self {
        match c {
            CauseOnDisk::Reclaim => ActivationCause::Reclaim,
            CauseOnDisk::AutomaticFailover => ActivationCause::AutomaticFailover,
            CauseOnDisk::ApprovedFailover => ActivationCause::ApprovedFailover,
            CauseOnDisk::Handoff => ActivationCause::Handoff,
            CauseOnDisk::Forced => ActivationCause::Forced,
        }
    }
}

/// Whose state a file holds: written into it, checked when it is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The cluster's name (`cluster.name`).
    pub cluster: String,
    /// This node's member name.
    pub node: String,
    /// The fingerprint of the shared configuration now.
    pub config_fingerprint: String,
}

/// What [`StateFile::load`] found.
#[derive(Debug, PartialEq)]
pub struct Stored {
    /// The state; with no file, that of a node that lost it
    /// ([`DurableState::lost`]): only [`StateFile::init`] makes a new node.
    pub state: DurableState,
    /// Whether a file was there.
    pub existed: bool,
    /// The fingerprint the file was last written under, when it differs
    /// from today's: the shared configuration changed while it was down.
    pub config_changed_from: Option<String>,
}

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not ours or is damaged.
    #[error(
        "{path}: not a valid state file ({problem}); move it aside (an older copy would roll its vote back): the \
         node then starts as one that lost its state and votes only once it has caught up with the other members"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Another process of this node runs on the same state directory.
    #[error(
        "{path}: held by another process ({holder}): a second process of one node must never run beside the \
         first; stop that one first"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as the holder wrote it ("pid N"), or "unknown".
        holder: String,
    },
    /// The file belongs to another cluster or another node.
    #[error(
        "{path}: this state file belongs to {what} {found:?}, not {expected:?}: point node.state_dir at this \
         node's own directory; its votes are not this node's"
    )]
    NotOurs {
        /// The file.
        path: PathBuf,
        /// "cluster" or "node".
        what: &'static str,
        /// The name in the file.
        found: String,
        /// The name configured here.
        expected: String,
    },
}

/// Why [`StateFile::init`] refused.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// There is a state file already.
    #[error(
        "{0}: a state file is already there: this node has run before. `init` is for the first start of a node of \
         a new cluster; a node that ran keeps its file"
    )]
    Exists(PathBuf),
    /// Writing it failed.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// Attempts at one write of the state file, the first included.
pub const STORE_ATTEMPTS: usize = 5;

/// Wait before the first retry; doubled for each further one (50, 100,
/// 200, 400 ms: 750 ms over all attempts).
const STORE_RETRY_FIRST: Duration = Duration::from_millis(50);

/// Runs `write` up to [`STORE_ATTEMPTS`] times, with a growing pause
/// between attempts (the calling thread sleeps), until it succeeds;
/// returns the last error otherwise. Each failure is logged as a warning.
fn with_retries(write: impl FnMut() -> Result<(), PersistError>) -> Result<(), PersistError> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(STORE_RETRY_FIRST)
        .with_max_delay(STORE_RETRY_FIRST * 8)
        .with_max_times(STORE_ATTEMPTS - 1);
    write
        .retry(backoff)
        .sleep(std::thread::sleep)
        .notify(|e: &PersistError, wait: Duration| {
            tracing::warn!(error = %e, retry_in = ?wait, "could not write the state file; trying again");
        })
        .call()
}

/// Reads and writes one node's durable state.
pub struct StateFile {
    path: PathBuf,
    names: Vec<String>,
    owner: Owner,
    /// The notes that explain the maintenance setting, written with it.
    notes: Arc<Notebook>,
    /// Held (locked) for as long as this value lives.
    _lock: fs::File,
}

impl StateFile {
    /// The state file in `dir` (created if missing) of `owner`, in a
    /// cluster whose members are `names`, in order.
    /// Takes the directory's lock first: refused while another process
    /// holds it.
    pub fn open(dir: &Path, names: Vec<String>, owner: Owner) -> Result<StateFile, PersistError> {
        fs::create_dir_all(dir).map_err(|source| PersistError::Io { path: dir.to_owned(), source })?;
        let lock = lock_dir(dir)?;
        Ok(StateFile { path: dir.join("state.json"), names, owner, notes: Arc::default(), _lock: lock })
    }

    /// Writes `fingerprint` into the file from now on instead of today's
    /// (a repair keeps the one the file had).
    pub fn keep_fingerprint(&mut self, fingerprint: String) {
        self.owner.config_fingerprint = fingerprint;
    }

    /// The maintenance notes written with the state (filled by
    /// [`StateFile::load`]).
    pub fn notebook(&self) -> Arc<Notebook> {
        self.notes.clone()
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn id(&self, name: &str) -> Result<NodeId, PersistError> {
        self.names.iter().position(|n| n == name).and_then(|i| u8::try_from(i).ok()).map(NodeId).ok_or_else(|| {
            PersistError::Corrupt {
                path: self.path.clone(),
                problem: format!("names member {name:?}, which is not configured"),
            }
        })
    }

    fn name(&self, id: NodeId) -> String {
        self.names.get(id.index()).cloned().unwrap_or_default()
    }

    /// The stored state, or that of a node that lost it when there is no
    /// file; refused if the file names another cluster or node.
    pub fn load(&self) -> Result<Stored, PersistError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Stored { state: DurableState::lost(), existed: false, config_changed_from: None })
            }
            Err(source) => return Err(PersistError::Io { path: self.path.clone(), source }),
        };
        let disk: OnDisk = serde_json::from_str(&text)
            .map_err(|e| PersistError::Corrupt { path: self.path.clone(), problem: e.to_string() })?;
        for (what, found, expected) in
            [("cluster", &disk.cluster, &self.owner.cluster), ("node", &disk.node, &self.owner.node)]
        {
            if let Some(found) = found.as_ref().filter(|f| *f != expected) {
                return Err(PersistError::NotOurs {
                    path: self.path.clone(),
                    what,
                    found: found.clone(),
                    expected: expected.clone(),
                });
            }
        }
        let config_changed_from = disk.config_fingerprint.clone().filter(|f| *f != self.owner.config_fingerprint);
        let voted_for = disk.voted_for.as_deref().map(|n| self.id(n)).transpose()?;
        let last_chosen = match &disk.last_chosen {
            Some((n, t)) => Some(Chosen { site: self.id(n)?, term: Term(*t) }),
            None => None,
        };
        let by = match &disk.pause_by {
            Some(n) => self.id(n)?.0,
            None => 0,
        };
        let mut maintenance = MaintenanceSetting { version: disk.maintenance_version, by: 0, sites: 0 };
        if let Some(n) = &disk.maintenance_by {
            maintenance.by = self.id(n)?.0;
        }
        for site in &disk.maintenance_sites {
            maintenance.sites = maintenance.with(self.id(site)?, true);
        }
        let state = DurableState {
            term: Term(disk.term),
            voted_for,
            last_chosen,
            pause: PauseSetting { version: disk.pause_version, by, paused: disk.paused },
            bound_ms: disk.bound_ms,
            led: disk.led.map(|l| Led { term: Term(l.term), cause: l.cause.into(), resumes: l.resumes }),
            maintenance,
            scheduled: match &disk.scheduled_switchover {
                Some(s) => Some(ScheduledSwitchover {
                    to: self.id(&s.to)?,
                    at: clock::instant_of_unix_ms(s.at_unix_ms, clock::now(), SystemTime::now()),
                }),
                None => None,
            },
            recovering: disk.recovering,
        };
        if let Some(notes) = &disk.maintenance_notes {
            // Notes only explain: one naming a member no longer configured
            // is left out rather than refusing the file.
            let known = |n: &str| self.names.iter().position(|m| m == n).and_then(|i| u8::try_from(i).ok());
            let sites = notes
                .sites
                .iter()
                .filter_map(|n| {
                    Some(SiteNote {
                        site: NodeId(known(&n.site)?),
                        by: NodeId(known(&n.by)?),
                        reason: n.reason.clone(),
                        since_unix_ms: n.since_unix_ms,
                    })
                })
                .collect();
            let by = notes.by.as_deref().and_then(known).unwrap_or(0);
            self.notes.replace(Notes { version: notes.version, by, sites });
        }
        Ok(Stored { state, existed: true, config_changed_from })
    }

    /// Writes the state of a node of a new cluster (term 0, no vote, not
    /// recovering): the explicit first start. Refused when a file is there.
    pub fn init(&self) -> Result<(), InitError> {
        if self.path.try_exists().map_err(|source| PersistError::Io { path: self.path.clone(), source })? {
            return Err(InitError::Exists(self.path.clone()));
        }
        Ok(self.store(&DurableState::default())?)
    }

    /// [`StateFile::store`], tried up to [`STORE_ATTEMPTS`] times within a
    /// second before its error is returned. Blocks the calling thread.
    pub fn store_retrying(&self, state: &DurableState) -> Result<(), PersistError> {
        with_retries(|| self.store(state))
    }

    /// Writes `state` durably (write, fsync, rename, fsync the directory).
    pub fn store(&self, state: &DurableState) -> Result<(), PersistError> {
        let disk = OnDisk {
            term: state.term.0,
            voted_for: state.voted_for.map(|id| self.name(id)),
            last_chosen: state.last_chosen.map(|c| (self.name(c.site), c.term.0)),
            pause_version: state.pause.version,
            pause_by: (state.pause.version > 0).then(|| self.name(NodeId(state.pause.by))),
            paused: state.pause.paused,
            bound_ms: state.bound_ms,
            cluster: Some(self.owner.cluster.clone()),
            node: Some(self.owner.node.clone()),
            config_fingerprint: Some(self.owner.config_fingerprint.clone()),
            led: state.led.map(|l| LedOnDisk { term: l.term.0, cause: l.cause.into(), resumes: l.resumes }),
            recovering: state.recovering,
            maintenance_version: state.maintenance.version,
            maintenance_by: (state.maintenance.version > 0).then(|| self.name(NodeId(state.maintenance.by))),
            maintenance_sites: (0..self.names.len())
                .filter_map(|i| u8::try_from(i).ok().map(NodeId))
                .filter(|&id| state.maintenance.contains(id))
                .map(|id| self.name(id))
                .collect(),
            maintenance_notes: Some(self.notes.current()).filter(|n| n.version > 0).map(|n| NotesOnDisk {
                version: n.version,
                by: Some(self.name(NodeId(n.by))),
                sites: n
                    .sites
                    .iter()
                    .map(|s| NoteOnDisk {
                        site: self.name(s.site),
                        by: self.name(s.by),
                        reason: s.reason.clone(),
                        since_unix_ms: s.since_unix_ms,
                    })
                    .collect(),
            }),
            scheduled_switchover: state.scheduled.map(|s| ScheduledOnDisk {
                to: self.name(s.to),
                at_unix_ms: clock::unix_ms_of(s.at, clock::now(), SystemTime::now()),
            }),
        };
        let io = |source| PersistError::Io { path: self.path.clone(), source };
        let tmp = self.path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(&disk).map_err(|e| io(std::io::Error::other(e)))?;
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(&json).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

/// Takes the exclusive lock on `dir/lock` and writes this process's id
/// into it. The kernel drops the lock when the process ends.
fn lock_dir(dir: &Path) -> Result<fs::File, PersistError> {
    let path = dir.join("lock");
    let io = |source| PersistError::Io { path: path.clone(), source };
    let mut file =
        fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
            return Err(PersistError::Locked { path, holder: holder.unwrap_or_else(|| "unknown".into()) });
        }
        Err(fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.write_all(format!("pid {}\n", std::process::id()).as_bytes()).map_err(io)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["site-a".to_string(), "site-b".to_string(), "witness".to_string()]
    }

    fn owner(cluster: &str, node: &str, config_fingerprint: &str) -> Owner {
        Owner { cluster: cluster.into(), node: node.into(), config_fingerprint: config_fingerprint.into() }
    }

    #[test]
    fn init_writes_a_new_node_s_state_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::open(dir.path(), names(), owner("prod", "site-b", "f1")).expect("open");
        file.init().expect("first init");
        let stored = file.load().expect("load");
        assert_eq!((stored.state, stored.existed), (DurableState::default(), true));
        file.store(&DurableState { term: Term(4), ..DurableState::default() }).expect("store");
        let err = file.init().expect_err("a second init");
        assert!(matches!(&err, InitError::Exists(p) if p == file.path()), "{err}");
        assert_eq!(file.load().expect("load").state.term, Term(4), "the refused init wrote something");
    }

    #[test]
    fn round_trip_and_corruption_is_reported_with_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::open(dir.path(), names(), owner("prod", "site-b", "f1")).expect("open");
        let empty = file.load().expect("empty");
        assert_eq!(
            (empty.state, empty.existed),
            (DurableState::lost(), false),
            "no file: a lost state, not a new node"
        );
        let state = DurableState {
            term: Term(7),
            voted_for: Some(NodeId(1)),
            last_chosen: Some(Chosen { site: NodeId(1), term: Term(7) }),
            pause: PauseSetting { version: 2, by: 2, paused: true },
            bound_ms: 6000,
            led: Some(Led { term: Term(7), cause: ActivationCause::AutomaticFailover, resumes: 3 }),
            maintenance: MaintenanceSetting { version: 5, by: 0, sites: 0b10 },
            scheduled: None,
            recovering: true,
        };
        let note = SiteNote { site: NodeId(1), by: NodeId(0), reason: "kernel 6.12".into(), since_unix_ms: 1_700_000 };
        let notes = Notes { version: 5, by: 0, sites: vec![note] };
        file.notebook().replace(notes.clone());
        file.store(&state).expect("store");
        file.notebook().replace(Notes::default());
        assert_eq!(file.load().expect("load"), Stored { state, existed: true, config_changed_from: None });
        assert_eq!(file.notebook().current(), notes, "the notes are read back with the state");
        fs::write(file.path(), b"{ not json").expect("write");
        let err = file.load().expect_err("corrupt");
        assert!(err.to_string().contains("state.json"), "{err}");
    }

    #[test]
    fn a_file_of_another_cluster_or_node_is_refused_and_a_changed_config_is_noticed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = |o| StateFile::open(dir.path(), names(), o).expect("open");
        let state = DurableState { term: Term(4), voted_for: Some(NodeId(0)), ..DurableState::default() };
        open(owner("staging", "site-b", "f1")).store(&state).expect("store");
        for (o, named) in
            [(owner("prod", "site-b", "f1"), "\"staging\""), (owner("staging", "site-a", "f1"), "\"site-b\"")]
        {
            let err = open(o).load().expect_err("not ours");
            assert!(matches!(err, PersistError::NotOurs { .. }), "{err}");
            assert!(err.to_string().contains(named), "{err}");
        }
        let changed = open(owner("staging", "site-b", "f2")).load().expect("same cluster, new config");
        assert_eq!((changed.state, changed.config_changed_from), (state, Some("f1".to_string())));
        // A file written before the names were recorded is accepted as ours.
        fs::write(
            dir.path().join("state.json"),
            br#"{"term": 3, "voted_for": "site-a", "last_chosen": null,
            "pause_version": 0, "pause_by": null, "paused": false}"#,
        )
        .expect("write");
        let old = open(owner("prod", "site-b", "f1")).load().expect("older file");
        assert_eq!((old.state.term, old.state.voted_for), (Term(3), Some(NodeId(0))));
        assert_eq!(old.state.maintenance, MaintenanceSetting::default(), "no site in maintenance in an older file");
    }

    #[test]
    fn a_scheduled_switchover_is_stored_in_wall_clock_form_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::open(dir.path(), names(), owner("prod", "site-a", "f1")).expect("open");
        let hour = Duration::from_secs(3600);
        let at = clock::now() + hour;
        let state =
            DurableState { scheduled: Some(ScheduledSwitchover { to: NodeId(1), at }), ..DurableState::default() };
        let wall_before = clock::unix_ms(SystemTime::now());
        file.store(&state).expect("store");
        let wall_after = clock::unix_ms(SystemTime::now());
        let disk: OnDisk = serde_json::from_str(&fs::read_to_string(file.path()).expect("read")).expect("parse");
        let stored = disk.scheduled_switchover.expect("stored");
        assert_eq!(stored.to, "site-b");
        let hour_ms = hour.as_millis() as u64;
        assert!((wall_before + hour_ms..=wall_after + hour_ms).contains(&stored.at_unix_ms), "{stored:?}");
        let back = file.load().expect("load").state.scheduled.expect("read back");
        assert_eq!(back.to, NodeId(1));
        // Read back against both clocks, which moved on together: the same
        // instant (a second of slack for a wall clock stepped meanwhile).
        let slack = Duration::from_secs(1);
        assert!(back.at >= at - slack && back.at <= at + slack, "stored {at}, read back {}", back.at);
    }

    #[test]
    fn a_second_process_on_the_same_directory_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = StateFile::open(dir.path(), names(), owner("prod", "site-a", "f1")).expect("first");
        // A second open file description on the lock conflicts exactly as
        // another process's would (flock locks belong to the description).
        let Err(err) = StateFile::open(dir.path(), names(), owner("prod", "site-a", "f1")) else {
            panic!("a second holder of the state directory was let in");
        };
        let pid = format!("pid {}", std::process::id());
        assert!(matches!(err, PersistError::Locked { .. }) && err.to_string().contains(&pid), "{err}");
        drop(first);
        StateFile::open(dir.path(), names(), owner("prod", "site-a", "f1")).expect("free again once the first is gone");
    }

    fn failure() -> PersistError {
        PersistError::Io { path: PathBuf::from("state.json"), source: std::io::Error::other("disk away") }
    }

    #[test]
    fn a_write_that_fails_a_few_times_is_retried_until_it_succeeds() {
        let mut calls = 0;
        let result = with_retries(|| {
            calls += 1;
            if calls < 3 {
                Err(failure())
            } else {
                Ok(())
            }
        });
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(calls, 3);
    }

    #[test]
    fn a_write_that_keeps_failing_gives_up_after_the_attempts_with_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::open(dir.path(), names(), owner("prod", "site-a", "f1")).expect("open");
        // The temporary file's name taken by a directory: every write fails.
        fs::create_dir(file.path().with_extension("json.tmp")).expect("obstacle");
        let err = file.store_retrying(&DurableState::default()).expect_err("cannot succeed");
        assert!(err.to_string().contains("state.json"), "{err}");

        let mut calls = 0;
        let result = with_retries(|| {
            calls += 1;
            Err(failure())
        });
        assert!(result.is_err());
        assert_eq!(calls, STORE_ATTEMPTS);
    }
}
