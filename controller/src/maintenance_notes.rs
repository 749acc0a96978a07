//! Who put a site in maintenance, when and why: the operator's words and
//! the wall time beside the core's maintenance setting. The core decides
//! with the setting alone (a register of sites, ordered by version); the
//! notes only explain it to people. They travel in heartbeats beside the
//! setting and are written in the state file beside it, and they belong to
//! one version of the setting: notes for another version are never shown
//! as if they explained this one.
//!
//! A node that learns a new setting from a peer takes the notes that peer
//! sent with it; one that carries out the command itself writes its own
//! note for the site it changed and keeps the others'. A note that never
//! arrived (a node restarted between writing the setting and the notes)
//! is shown as unknown, never guessed.

use std::sync::{Mutex, MutexGuard};

use failover_core::{MaintenanceSetting, NodeId};

/// The longest reason, in characters, the admin API accepts.
pub const MAX_REASON_CHARS: usize = 200;

/// Why a reason text is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    /// Longer than [`MAX_REASON_CHARS`].
    #[error("the reason is {0} characters long; at most {MAX_REASON_CHARS} are accepted")]
    TooLong(usize),
    /// It holds a control character (a newline, an escape...).
    #[error("the reason holds a control character; use plain text on one line")]
    ControlCharacter,
}

/// Checks an operator's reason text.
pub fn check_reason(reason: &str) -> Result<(), ReasonError> {
    let chars = reason.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(ReasonError::TooLong(chars));
    }
    if reason.chars().any(char::is_control) {
        return Err(ReasonError::ControlCharacter);
    }
    Ok(())
}

/// One site's maintenance, as the node that put it there recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteNote {
    /// The site in maintenance.
    pub site: NodeId,
    /// The node that carried the command out.
    pub by: NodeId,
    /// The operator's reason (may be empty).
    pub reason: String,
    /// When, in milliseconds since the Unix epoch on that node's wall clock.
    pub since_unix_ms: u64,
}

/// The notes for one version of the maintenance setting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// The setting's version they belong to.
    pub version: u64,
    /// The setting's `by` they belong to.
    pub by: u8,
    /// One note per site in maintenance (at most one per site).
    pub sites: Vec<SiteNote>,
}

impl Notes {
    fn belongs_to(&self, setting: MaintenanceSetting) -> bool {
        self.version == setting.version && self.by == setting.by
    }

    /// The note for `site`, if any.
    pub fn site(&self, site: NodeId) -> Option<&SiteNote> {
        self.sites.iter().find(|n| n.site == site)
    }
}

#[derive(Debug, Default)]
struct Book {
    current: Notes,
    /// The newest notes a peer sent.
    offered: Option<Notes>,
    /// A command this node is about to carry out: the site, on or off, and
    /// its note.
    staged: Option<(bool, SiteNote)>,
}

/// The notes this node holds, shared by the loop, the peer transport and
/// the state file.
#[derive(Debug, Default)]
pub struct Notebook {
    book: Mutex<Book>,
}

impl Notebook {
    /// A notebook holding `notes` (read from the state file).
    pub fn with(notes: Notes) -> Notebook {
        Notebook { book: Mutex::new(Book { current: notes, offered: None, staged: None }) }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // Every update leaves the book whole: a panic elsewhere while the
        // lock was held cannot have torn it.
        self.book.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the notes held (with those read from the state file).
    pub fn replace(&self, notes: Notes) {
        self.book().current = notes;
    }

    /// The notes held now.
    pub fn current(&self) -> Notes {
        self.book().current.clone()
    }

    /// Notes a peer sent beside its setting; the newest are kept.
    pub fn offer(&self, notes: Notes) {
        let mut book = self.book();
        if book.offered.as_ref().is_none_or(|o| (o.version, o.by) < (notes.version, notes.by)) {
            book.offered = Some(notes);
        }
    }

    /// Before this node carries out a maintenance command: its note.
    pub fn stage(&self, on: bool, note: SiteNote) {
        self.book().staged = Some((on, note));
    }

    /// The command was refused: forget its note.
    pub fn unstage(&self) {
        self.book().staged = None;
    }

    /// Brings the notes in line with the core's `setting`, after a step of
    /// node `me`. Returns whether they changed (then they must be written).
    pub fn settle(&self, setting: MaintenanceSetting, me: NodeId) -> bool {
        let mut book = self.book();
        if book.current.belongs_to(setting) {
            return false;
        }
        if let Some(offered) = book.offered.take_if(|o| o.belongs_to(setting)) {
            book.current = keep_only(offered, setting);
            return true;
        }
        let staged = book.staged.as_ref().is_some_and(|(on, note)| setting.contains(note.site) == *on);
        if setting.by != me.0 || !staged {
            return false;
        }
        let Some((on, note)) = book.staged.take() else { return false };
        let mut sites: Vec<SiteNote> = book.current.sites.drain(..).filter(|n| n.site != note.site).collect();
        if on {
            sites.push(note);
        }
        book.current = keep_only(Notes { version: setting.version, by: setting.by, sites }, setting);
        true
    }
}

/// `notes` for `setting`, without notes for sites not in it.
fn keep_only(mut notes: Notes, setting: MaintenanceSetting) -> Notes {
    notes.sites.retain(|n| setting.contains(n.site));
    notes.sites.sort_by_key(|n| n.site);
    notes.sites.dedup_by_key(|n| n.site);
    notes.version = setting.version;
    notes.by = setting.by;
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(site: u8, by: u8, reason: &str) -> SiteNote {
        SiteNote { site: NodeId(site), by: NodeId(by), reason: reason.into(), since_unix_ms: 1_700_000_000_000 }
    }

    fn setting(version: u64, by: u8, sites: u16) -> MaintenanceSetting {
        MaintenanceSetting { version, by, sites }
    }

    #[test]
    fn reasons_are_bounded_and_plain_text() {
        assert_eq!(check_reason("patching the kernel"), Ok(()));
        assert_eq!(check_reason(&"é".repeat(MAX_REASON_CHARS)), Ok(()));
        assert_eq!(check_reason(&"x".repeat(MAX_REASON_CHARS + 1)), Err(ReasonError::TooLong(MAX_REASON_CHARS + 1)));
        for bad in ["two\nlines", "bell\u{7}", "esc\u{1b}[31m", "nul\0"] {
            assert_eq!(check_reason(bad), Err(ReasonError::ControlCharacter), "{bad:?}");
        }
    }

    #[test]
    fn a_local_command_adds_its_note_and_keeps_the_others() {
        let book = Notebook::default();
        book.stage(true, note(1, 0, "kernel"));
        assert!(!book.settle(setting(1, 2, 0b10), NodeId(0)), "another node's change is not ours to explain");
        assert!(book.settle(setting(1, 0, 0b10), NodeId(0)));
        assert_eq!(book.current().sites, vec![note(1, 0, "kernel")]);
        book.stage(true, note(3, 0, "disk"));
        assert!(book.settle(setting(2, 0, 0b1010), NodeId(0)));
        assert_eq!(book.current().sites, vec![note(1, 0, "kernel"), note(3, 0, "disk")]);
        book.stage(false, note(1, 0, ""));
        assert!(book.settle(setting(3, 0, 0b1000), NodeId(0)));
        assert_eq!(book.current().sites, vec![note(3, 0, "disk")]);
        assert!(!book.settle(setting(3, 0, 0b1000), NodeId(0)), "nothing new");
    }

    #[test]
    fn notes_from_a_peer_are_taken_only_for_the_setting_they_belong_to() {
        let book = Notebook::default();
        let theirs = Notes { version: 4, by: 2, sites: vec![note(1, 2, "patch"), note(3, 2, "not in the set")] };
        book.offer(theirs.clone());
        assert!(!book.settle(setting(3, 2, 0b10), NodeId(0)), "older setting: not theirs");
        assert!(book.current().sites.is_empty());
        assert!(book.settle(setting(4, 2, 0b10), NodeId(0)));
        assert_eq!(book.current(), Notes { version: 4, by: 2, sites: vec![note(1, 2, "patch")] });
        book.offer(Notes { version: 2, ..theirs });
        assert!(!book.settle(setting(4, 2, 0b10), NodeId(0)));
    }
}
