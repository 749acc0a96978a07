//! Repair of counters at the ceiling ([`MAX_TERM`], 2^48), done with the
//! node stopped (`repair-ceiling` of the daemons).
//!
//! No honest run reaches the ceiling (one election a second lasts nearly nine
//! million years), but with peer TLS off anyone who reaches the peer port can
//! send a message at term 2^48 or a pause or maintenance setting at version
//! 2^48. A node at the last term never runs again, and a register at the last
//! version can never be changed; both survive restarts.
//!
//! The repair maps every counter at or over the ceiling (or a lower
//! threshold `from`, for a hostile counter a little below it) to one value
//! `to`, chosen by the operator above every counter below that threshold on
//! every node of the cluster, and leaves every other counter as it is. That
//! is a
//! relabelling that keeps order: every comparison the protocol makes between
//! two counters gives the same answer after it as before, except that the
//! ceiling is no longer the end. On top of it, a node whose term is moved
//! forgets its vote in that term and the role it led in it, so after the
//! repair nobody has voted in `to` or later. docs/operations.md ("Counters at
//! the ceiling") has the procedure and the argument that it cannot make two
//! sites active.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use failover_core::{DurableState, MAX_TERM};

use crate::persist::{Owner, PersistError, StateFile};

/// What [`repair`] changed: the new state, the new version of the
/// maintenance notes, and one line per change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    /// The state to write.
    pub state: DurableState,
    /// The version the maintenance notes belong to.
    pub notes_version: u64,
    /// What changed, one line each, for the operator.
    pub changes: Vec<String>,
}

/// Why a repair value is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RepairError {
    /// `to` is 0 or not below the ceiling.
    #[error("--to {to}: the new value must be above 0 and below the ceiling {MAX_TERM}")]
    OutOfRange {
        /// The value asked for.
        to: u64,
    },
    /// `from` is 0 or above the ceiling.
    #[error("--from {from}: the threshold must be above 0 and at most the ceiling {MAX_TERM}")]
    FromOutOfRange {
        /// The threshold asked for.
        from: u64,
    },
    /// `to` is not above a counter below the ceiling: that counter would
    /// overtake the repaired ones, or a term with votes would be reused.
    #[error(
        "--to {to} is not above this node's {counter} {value}: take the highest counter below the ceiling (or \
         --from) over every node of the cluster (and the epoch the targets hold), and a value above it"
    )]
    NotAbove {
        /// Which counter.
        counter: &'static str,
        /// Its value.
        value: u64,
        /// The value asked for.
        to: u64,
    },
}

/// Every counter of `state` (and the notes' version), by name.
pub fn counters(state: &DurableState, notes_version: u64) -> Vec<(&'static str, u64)> {
    let mut all = vec![("term", state.term.0)];
    all.extend(state.last_chosen.map(|c| ("term of the site last chosen", c.term.0)));
    all.extend(state.led.map(|l| ("term this site leads in", l.term.0)));
    all.push(("pause version", state.pause.version));
    all.push(("maintenance version", state.maintenance.version));
    all.push(("maintenance notes version", notes_version));
    all
}

/// The counters at or over the ceiling.
pub fn at_ceiling(state: &DurableState, notes_version: u64) -> Vec<(&'static str, u64)> {
    at_or_over(state, notes_version, MAX_TERM)
}

/// The counters at or over `from`.
pub fn at_or_over(state: &DurableState, notes_version: u64, from: u64) -> Vec<(&'static str, u64)> {
    counters(state, notes_version).into_iter().filter(|&(_, v)| v >= from).collect()
}

/// The highest counter below the ceiling (0 when there is none).
pub fn highest_below_ceiling(state: &DurableState, notes_version: u64) -> u64 {
    highest_below(state, notes_version, MAX_TERM)
}

/// The highest counter below `from` (0 when there is none).
pub fn highest_below(state: &DurableState, notes_version: u64, from: u64) -> u64 {
    counters(state, notes_version).into_iter().map(|(_, v)| v).filter(|&v| v < from).max().unwrap_or(0)
}

/// `state` with every counter at or over `from` (the ceiling, unless a
/// hostile counter sits a little below it) set to `to`; a term moved loses
/// its vote, the role led in it and a switchover scheduled in that role.
/// `to` must be below the ceiling and above every counter below `from`.
/// `names` are the members' names, in order, for the report.
pub fn repair(
    state: &DurableState,
    notes_version: u64,
    to: u64,
    from: u64,
    names: &[String],
) -> Result<Repair, RepairError> {
    if to == 0 || to >= MAX_TERM {
        return Err(RepairError::OutOfRange { to });
    }
    if from == 0 || from > MAX_TERM {
        return Err(RepairError::FromOutOfRange { from });
    }
    if let Some((counter, value)) = counters(state, notes_version).into_iter().find(|&(_, v)| v < from && v >= to) {
        return Err(RepairError::NotAbove { counter, value, to });
    }
    let name = |id: failover_core::NodeId| names.get(id.index()).cloned().unwrap_or_else(|| format!("member {}", id.0));
    let mut s = *state;
    let mut changes = Vec::new();
    if s.term.0 >= from {
        changes.push(format!("term {} -> {to}", s.term.0));
        s.term = failover_core::Term(to);
        if let Some(v) = s.voted_for.take() {
            changes.push(format!("vote for {} in term {}: cleared (no vote in term {to} yet)", name(v), state.term.0));
        }
    }
    if let Some(led) = s.led.filter(|l| l.term.0 >= from || l.term != s.term) {
        changes.push(format!(
            "role led in term {}: cleared (the site does not take it back in place; an election decides)",
            led.term.0
        ));
        s.led = None;
        if let Some(sched) = s.scheduled.take() {
            changes.push(format!("switchover to {} scheduled by that role: cleared", name(sched.to)));
        }
    }
    if let Some(chosen) = s.last_chosen.as_mut().filter(|c| c.term.0 >= from) {
        changes.push(format!("term of the site last chosen ({}) {} -> {to}", name(chosen.site), chosen.term.0));
        chosen.term = failover_core::Term(to);
    }
    if s.pause.version >= from {
        let what = if s.pause.paused { "paused" } else { "not paused" };
        changes.push(format!(
            "pause version {} -> {to} (still {what}, by {})",
            s.pause.version,
            name(failover_core::NodeId(s.pause.by))
        ));
        s.pause.version = to;
    }
    if s.maintenance.version >= from {
        let sites: Vec<String> = (0..names.len())
            .filter_map(|i| u8::try_from(i).ok().map(failover_core::NodeId))
            .filter(|&id| s.maintenance.contains(id))
            .map(name)
            .collect();
        let sites = if sites.is_empty() { "none".to_owned() } else { sites.join(", ") };
        changes.push(format!(
            "maintenance version {} -> {to} (sites in maintenance kept: {sites})",
            s.maintenance.version
        ));
        s.maintenance.version = to;
    }
    let mut notes = notes_version;
    if notes >= from {
        changes.push(format!("maintenance notes version {notes} -> {to}"));
        notes = to;
    }
    Ok(Repair { state: s, notes_version: notes, changes })
}

/// Why `repair-ceiling` could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum RepairCommandError {
    /// The state file could not be locked, read or written (a running
    /// daemon holds the lock: it is refused with its process id).
    #[error(transparent)]
    State(#[from] PersistError),
    /// The value asked for does not fit.
    #[error(transparent)]
    Value(#[from] RepairError),
    /// The rewritten file could not be given its owner and mode back.
    #[error("{path}: giving the file its owner and mode back: {source}")]
    Owner {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// `repair-ceiling`: with the node stopped (its state directory's lock is
/// taken, so a running daemon makes this fail), reports the counters of the
/// state file in `dir` and, given `to`, sets those at or over the ceiling
/// (or `from`) to it. The file keeps its owner, mode and configuration
/// fingerprint. Returns the report for the operator.
pub fn repair_state_dir(
    dir: &Path,
    names: Vec<String>,
    owner: Owner,
    to: Option<u64>,
    from: Option<u64>,
) -> Result<String, RepairCommandError> {
    let from = from.unwrap_or(MAX_TERM);
    if from == 0 || from > MAX_TERM {
        return Err(RepairError::FromOutOfRange { from }.into());
    }
    let (limit, short) = match from {
        MAX_TERM => (format!("the ceiling ({MAX_TERM})"), "the ceiling".to_owned()),
        _ => (from.to_string(), from.to_string()),
    };
    if !dir.join("state.json").is_file() {
        return Ok(format!("{}: no state file: nothing to repair\n", dir.join("state.json").display()));
    }
    let mut file = StateFile::open(dir, names.clone(), owner)?;
    let stored = file.load()?;
    if let Some(old) = stored.config_changed_from {
        // Written back under the fingerprint it had, so the daemon still
        // notices at start that the shared configuration changed.
        file.keep_fingerprint(old);
    }
    let path = file.path().to_owned();
    let notes = file.notebook().current();
    let high = at_or_over(&stored.state, notes.version, from);
    let mut out = format!("{}: ", path.display());
    if high.is_empty() {
        out.push_str(&format!("no counter at or over {limit}: nothing to repair\n"));
        return Ok(out);
    }
    let listed: Vec<String> = high.iter().map(|(name, v)| format!("{name} {v}")).collect();
    out.push_str(&format!("at or over {limit}: {}\n", listed.join(", ")));
    let below = highest_below(&stored.state, notes.version, from);
    out.push_str(&format!("highest counter below {short}: {below}\n"));
    let Some(to) = to else {
        out.push_str(
            "nothing changed. With every node of the cluster stopped, run this on each node, take the highest \
             figure over all of them and over the epochs the targets hold, and run it again on each node with \
             --to a value above it (docs/operations.md, \"Counters at the ceiling\")\n",
        );
        return Ok(out);
    };
    let r = repair(&stored.state, notes.version, to, from, &names)?;
    let before = std::fs::metadata(&path).map_err(|source| PersistError::Io { path: path.clone(), source })?;
    file.notebook().replace(crate::maintenance_notes::Notes { version: r.notes_version, ..notes });
    file.store(&r.state)?;
    let give_back = || -> std::io::Result<()> {
        std::os::unix::fs::chown(&path, Some(before.uid()), Some(before.gid()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(before.mode() & 0o7777))
    };
    give_back().map_err(|source| RepairCommandError::Owner { path: path.clone(), source })?;
    for change in &r.changes {
        out.push_str(&format!("changed: {change}\n"));
    }
    out.push_str("written; start the node once every node of the cluster is repaired\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    use failover_core::{
        ActivationCause, Chosen, Led, MaintenanceSetting, NodeId, PauseSetting, ScheduledSwitchover, Term,
    };

    fn names() -> Vec<String> {
        vec!["site-a".into(), "site-b".into(), "witness".into()]
    }

    /// A node pushed to the last term by a hostile vote request, with the
    /// pause switch pinned at the last version, paused.
    fn pinned() -> DurableState {
        DurableState {
            term: Term(MAX_TERM),
            voted_for: Some(NodeId(1)),
            last_chosen: Some(Chosen { site: NodeId(1), term: Term(MAX_TERM) }),
            pause: PauseSetting { version: MAX_TERM, by: 1, paused: true },
            bound_ms: 1500,
            led: None,
            maintenance: MaintenanceSetting { version: 3, by: 0, sites: 0b10 },
            scheduled: None,
            recovering: false,
        }
    }

    #[test]
    fn counters_at_the_ceiling_move_to_the_value_and_the_rest_stays() {
        let before = pinned();
        assert_eq!(at_ceiling(&before, 3).len(), 3);
        assert_eq!(highest_below_ceiling(&before, 3), 3);
        let r = repair(&before, 3, 42, MAX_TERM, &names()).expect("repaired");
        let want = DurableState {
            term: Term(42),
            voted_for: None,
            last_chosen: Some(Chosen { site: NodeId(1), term: Term(42) }),
            pause: PauseSetting { version: 42, by: 1, paused: true },
            ..before
        };
        assert_eq!(r.state, want);
        assert_eq!(r.notes_version, 3);
        assert_eq!(
            r.changes,
            vec![
                format!("term {MAX_TERM} -> 42"),
                format!("vote for site-b in term {MAX_TERM}: cleared (no vote in term 42 yet)"),
                format!("term of the site last chosen (site-b) {MAX_TERM} -> 42"),
                format!("pause version {MAX_TERM} -> 42 (still paused, by site-b)"),
            ]
        );
        assert!(at_ceiling(&r.state, r.notes_version).is_empty());
        // The node can run again: a next term exists.
        assert_eq!(r.state.term.next(), Some(Term(43)));
    }

    #[test]
    fn values_over_the_ceiling_are_repaired_too_and_the_ceiling_itself_counts() {
        let mut s = DurableState {
            term: Term(u64::MAX),
            maintenance: MaintenanceSetting { version: MAX_TERM + 1, by: 2, sites: 0b01 },
            ..DurableState::default()
        };
        let r = repair(&s, MAX_TERM, 10, MAX_TERM, &names()).expect("repaired");
        assert_eq!((r.state.term, r.state.maintenance.version, r.notes_version), (Term(10), 10, 10));
        assert_eq!(r.state.maintenance.sites, 0b01, "the sites in maintenance are kept");
        assert!(r.changes.iter().any(|c| c.contains("sites in maintenance kept: site-a")), "{:?}", r.changes);
        // One below the ceiling is not at it.
        s = DurableState { term: Term(MAX_TERM - 1), ..DurableState::default() };
        assert!(at_ceiling(&s, 0).is_empty());
        assert_eq!(highest_below_ceiling(&s, 0), MAX_TERM - 1);
    }

    #[test]
    fn a_state_below_the_ceiling_is_left_as_it_is() {
        let s = DurableState {
            term: Term(7),
            voted_for: Some(NodeId(0)),
            led: Some(Led { term: Term(7), cause: ActivationCause::Reclaim, resumes: 0 }),
            ..DurableState::default()
        };
        let r = repair(&s, 0, 8, MAX_TERM, &names()).expect("nothing to do");
        assert_eq!((r.state, r.notes_version, r.changes), (s, 0, Vec::<String>::new()));
    }

    #[test]
    fn a_moved_term_loses_the_role_led_in_it_and_its_scheduled_switchover() {
        let at = failover_core::Instant::from_millis(5_000);
        let s = DurableState {
            term: Term(MAX_TERM),
            voted_for: Some(NodeId(0)),
            led: Some(Led { term: Term(MAX_TERM), cause: ActivationCause::AutomaticFailover, resumes: 2 }),
            scheduled: Some(ScheduledSwitchover { to: NodeId(1), at }),
            ..DurableState::default()
        };
        let r = repair(&s, 0, 100, MAX_TERM, &names()).expect("repaired");
        assert_eq!((r.state.term, r.state.voted_for, r.state.led, r.state.scheduled), (Term(100), None, None, None));
        assert!(r.changes.iter().any(|c| c.starts_with(&format!("role led in term {MAX_TERM}: cleared"))));
        assert!(
            r.changes.iter().any(|c| c == "switchover to site-b scheduled by that role: cleared"),
            "{:?}",
            r.changes
        );
    }

    fn owner(fingerprint: &str) -> Owner {
        Owner { cluster: "prod".into(), node: "site-b".into(), config_fingerprint: fingerprint.into() }
    }

    #[test]
    fn the_state_directory_is_repaired_under_its_lock_keeping_mode_and_fingerprint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        assert!(repair_state_dir(dir.path(), names(), owner("f2"), Some(9), None)
            .expect("no file")
            .contains("no state file"));
        {
            let file = StateFile::open(dir.path(), names(), owner("f1")).expect("open");
            file.store(&pinned()).expect("store");
            // Held, as by a running daemon: refused, and nothing written.
            let held = repair_state_dir(dir.path(), names(), owner("f2"), Some(9), None).expect_err("locked");
            assert!(matches!(held, RepairCommandError::State(PersistError::Locked { .. })), "{held}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let shown = repair_state_dir(dir.path(), names(), owner("f2"), None, None).expect("dry run");
        assert!(shown.contains("highest counter below the ceiling: 3") && shown.contains("nothing changed"), "{shown}");
        let refused = repair_state_dir(dir.path(), names(), owner("f2"), Some(3), None).expect_err("not above");
        assert!(matches!(refused, RepairCommandError::Value(RepairError::NotAbove { .. })), "{refused}");
        let file = StateFile::open(dir.path(), names(), owner("f1")).expect("open");
        assert_eq!(file.load().expect("load").state, pinned(), "a dry run or a refused value wrote something");
        drop(file);

        let done = repair_state_dir(dir.path(), names(), owner("f2"), Some(9), None).expect("repaired");
        assert!(done.contains(&format!("changed: term {MAX_TERM} -> 9")), "{done}");
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "the file's mode is kept");
        let file = StateFile::open(dir.path(), names(), owner("f2")).expect("open");
        let stored = file.load().expect("load");
        assert_eq!((stored.state.term, stored.state.voted_for), (Term(9), None));
        assert_eq!(stored.config_changed_from.as_deref(), Some("f1"), "the old fingerprint is kept");
    }

    #[test]
    fn a_hostile_counter_a_little_below_the_ceiling_is_repaired_with_a_lower_threshold() {
        // The message was at 2^48 - 1: the ceiling is not reached, yet the
        // figure leaves no room for a value below the ceiling.
        let s = DurableState {
            term: Term(MAX_TERM - 1),
            voted_for: Some(NodeId(0)),
            pause: PauseSetting { version: 5, by: 0, paused: false },
            ..DurableState::default()
        };
        assert_eq!(highest_below_ceiling(&s, 0), MAX_TERM - 1);
        assert_eq!(
            repair(&s, 0, MAX_TERM - 1, MAX_TERM, &names()),
            Err(RepairError::NotAbove { counter: "term", value: MAX_TERM - 1, to: MAX_TERM - 1 })
        );
        let from = 1_000_000;
        assert_eq!(at_or_over(&s, 0, from), vec![("term", MAX_TERM - 1)]);
        assert_eq!(highest_below(&s, 0, from), 5);
        let r = repair(&s, 0, 6, from, &names()).expect("repaired");
        assert_eq!((r.state.term, r.state.voted_for, r.state.pause.version), (Term(6), None, 5));
        // A counter at the threshold itself is moved; one below it stays.
        let at = DurableState { term: Term(from), ..DurableState::default() };
        assert_eq!(repair(&at, 0, 6, from, &names()).map(|r| r.state.term), Ok(Term(6)));
        let under = DurableState { term: Term(from - 1), ..DurableState::default() };
        assert_eq!(repair(&under, 0, from, from, &names()).map(|r| r.state.term), Ok(Term(from - 1)));
        for bad in [0, MAX_TERM + 1] {
            assert_eq!(repair(&s, 0, 6, bad, &names()), Err(RepairError::FromOutOfRange { from: bad }));
        }
    }

    #[test]
    fn the_value_must_be_below_the_ceiling_and_above_every_counter_below_it() {
        let s = pinned();
        for to in [0, MAX_TERM, MAX_TERM + 1] {
            assert_eq!(repair(&s, 3, to, MAX_TERM, &names()), Err(RepairError::OutOfRange { to }));
        }
        // The maintenance version (3) is the highest counter below the
        // ceiling: 3 would tie it, so the pinned pause could lose its place.
        let err = repair(&s, 3, 3, MAX_TERM, &names()).expect_err("not above");
        assert_eq!(err, RepairError::NotAbove { counter: "maintenance version", value: 3, to: 3 });
        assert!(err.to_string().contains("every node of the cluster"), "{err}");
        let s = DurableState { term: Term(50), pause: PauseSetting { version: MAX_TERM, by: 0, paused: false }, ..s };
        let s = DurableState { voted_for: None, last_chosen: None, ..s };
        assert_eq!(
            repair(&s, 3, 50, MAX_TERM, &names()),
            Err(RepairError::NotAbove { counter: "term", value: 50, to: 50 })
        );
        assert_eq!(repair(&s, 3, 51, MAX_TERM, &names()).map(|r| r.state.pause.version), Ok(51));
    }
}
