//! The node's event history: its protocol events and the admin calls made
//! to it, each numbered (`seq`) after the node's previous one, the newest
//! [`KEPT`] kept in memory and in `history.jsonl` in the state directory,
//! so that `failoverctl history` still shows them after a restart.
//!
//! The file holds one JSON event a line. A writer thread appends each new
//! event and fsyncs the batch; when the file holds more than
//! [`KEPT`] + [`KEPT`]/2 lines it is rewritten with the newest [`KEPT`]
//! the way the state file is (a temporary file, fsync, rename, fsync of the
//! directory). A crash can lose the events not yet synced and tear the last
//! line, which is dropped when the file is read; it never loses what was
//! synced before.
//!
//! The history explains, it never decides, so a file that cannot be read
//! must never stop the node: it is renamed `history.jsonl.bad-<unix ms>`,
//! a warning names both files, and a new history starts, numbered after the
//! highest number the bad file still showed (a number is never reused for
//! another event of the node while an older file could still hold it).

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::clock;
use crate::reports::{AdminCall, EventRecord};

/// Events kept, in memory and on disk.
pub const KEPT: usize = 1000;

/// The history file's name in the state directory.
pub const FILE: &str = "history.jsonl";

/// What the history file held, as read at start.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Read {
    /// The newest [`KEPT`] events, oldest first.
    pub events: Vec<EventRecord>,
    /// The number the next event gets.
    pub next_seq: u64,
    /// Why the file cannot be used, when it cannot (it is then set aside).
    pub corrupt: Option<String>,
}

/// Reads a history file's text. A last line without its newline is a write
/// a crash tore, and is dropped; any other line that is not an event makes
/// the file corrupt.
pub fn read(text: &str) -> Read {
    let mut events = VecDeque::new();
    let mut highest = 0;
    let mut corrupt = None;
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<EventRecord>(line) {
            Ok(e) => {
                highest = highest.max(e.seq);
                events.push_back(e);
                if events.len() > KEPT {
                    events.pop_front();
                }
            }
            Err(_) if i + 1 == lines.len() && !complete => {}
            Err(e) if corrupt.is_none() => corrupt = Some(format!("line {}: {e}", i + 1)),
            Err(_) => {}
        }
    }
    if corrupt.is_some() {
        events.clear();
    }
    Read { events: events.into(), next_seq: highest.saturating_add(1), corrupt }
}

enum ToWriter {
    Append(EventRecord),
    Sync(mpsc::SyncSender<()>),
}

/// Numbering and the events in memory; the writer's queue, so that events
/// reach the file in the order of their numbers.
#[derive(Debug)]
struct Numbered {
    next_seq: u64,
    events: VecDeque<EventRecord>,
    writer: Option<mpsc::Sender<ToWriter>>,
}

/// The history handle; clones share it. Recording never blocks on the disk.
#[derive(Clone, Debug)]
pub struct History {
    node: Arc<str>,
    inner: Arc<Mutex<Numbered>>,
}

impl History {
    /// The history of `node` kept in `dir`; a file that cannot be read is
    /// set aside with a warning, and a file that cannot be written leaves a
    /// history in memory only (with an error in the log).
    pub fn open(dir: &Path, node: &str) -> History {
        let path = dir.join(FILE);
        let text = match fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => format!("unreadable: {e}\n"),
        };
        let mut read = read(&text);
        if let Some(why) = &read.corrupt {
            let aside = path.with_extension(format!("jsonl.bad-{}", clock::unix_ms(SystemTime::now())));
            match fs::rename(&path, &aside) {
                Ok(()) => tracing::warn!(
                    file = %path.display(), kept_as = %aside.display(), problem = %why,
                    "the event history cannot be read: it is kept aside and a new one starts"
                ),
                Err(e) => tracing::warn!(
                    file = %path.display(), problem = %why, error = %e,
                    "the event history cannot be read nor set aside: a new one replaces it"
                ),
            }
        }
        let writer = match Writer::start(path.clone(), &read.events) {
            Ok(tx) => Some(tx),
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot write the event history: it is kept in memory only");
                None
            }
        };
        let events = std::mem::take(&mut read.events).into();
        History { node: node.into(), inner: Arc::new(Mutex::new(Numbered { next_seq: read.next_seq, events, writer })) }
    }

    /// A history kept in memory only.
    pub fn in_memory(node: &str) -> History {
        let numbered = Numbered { next_seq: 1, events: VecDeque::new(), writer: None };
        History { node: node.into(), inner: Arc::new(Mutex::new(numbered)) }
    }

    /// Records an event now: numbers it, keeps it and queues it for the
    /// file. The record is returned.
    pub fn record(&self, event: String, admin: Option<AdminCall>) -> EventRecord {
        let at_unix_ms = clock::unix_ms(SystemTime::now());
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let record = EventRecord {
            at: clock::wall_from_unix_ms(at_unix_ms),
            event,
            node: self.node.to_string(),
            seq: inner.next_seq,
            at_unix_ms,
            admin,
        };
        inner.next_seq = inner.next_seq.saturating_add(1);
        inner.events.push_back(record.clone());
        if inner.events.len() > KEPT {
            inner.events.pop_front();
        }
        if let Some(tx) = &inner.writer {
            // A writer that has gone has logged why; memory still has it.
            let _ = tx.send(ToWriter::Append(record.clone()));
        }
        record
    }

    /// The events kept, oldest first.
    pub fn events(&self) -> Vec<EventRecord> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).events.iter().cloned().collect()
    }

    /// Waits (at most `within`) until every event recorded so far is on
    /// disk; false if it did not get there. Blocks the calling thread.
    pub fn sync(&self, within: Duration) -> bool {
        let (ack, done) = mpsc::sync_channel(1);
        let sent = {
            let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner.writer.as_ref().is_some_and(|tx| tx.send(ToWriter::Sync(ack)).is_ok())
        };
        sent && done.recv_timeout(within).is_ok()
    }
}

/// The thread that owns the file.
struct Writer {
    path: PathBuf,
    file: fs::File,
    /// The newest [`KEPT`] events written, for a rewrite.
    tail: VecDeque<EventRecord>,
    /// Lines in the file.
    lines: usize,
}

impl Writer {
    /// Writes the file with `events` and starts the thread.
    fn start(path: PathBuf, events: &[EventRecord]) -> std::io::Result<mpsc::Sender<ToWriter>> {
        let mut writer = Writer { file: append_to(&path)?, path, tail: events.iter().cloned().collect(), lines: 0 };
        // Rewritten at once: a torn last line goes, and the count is known.
        writer.rewrite()?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("event-history".into()).spawn(move || writer.run(rx))?;
        Ok(tx)
    }

    fn run(mut self, rx: mpsc::Receiver<ToWriter>) {
        let mut failing = false;
        while let Ok(first) = rx.recv() {
            let mut acks = Vec::new();
            let mut buf = Vec::new();
            for message in std::iter::once(first).chain(rx.try_iter()) {
                match message {
                    ToWriter::Append(e) => {
                        if let Ok(line) = serde_json::to_vec(&e) {
                            buf.extend_from_slice(&line);
                            buf.push(b'\n');
                            self.lines += 1;
                        }
                        self.tail.push_back(e);
                        if self.tail.len() > KEPT {
                            self.tail.pop_front();
                        }
                    }
                    ToWriter::Sync(ack) => acks.push(ack),
                }
            }
            let written = self.file.write_all(&buf).and_then(|()| self.file.sync_data()).and_then(|()| {
                if self.lines > KEPT + KEPT / 2 {
                    self.rewrite()
                } else {
                    Ok(())
                }
            });
            match written {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::error!(file = %self.path.display(), error = %e, "cannot write the event history");
                }
                Err(_) => {}
            }
            for ack in acks {
                let _ = ack.send(());
            }
        }
    }

    /// Replaces the file with the newest [`KEPT`] events, crash-safely.
    fn rewrite(&mut self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut text = Vec::new();
        for e in &self.tail {
            text.extend_from_slice(&serde_json::to_vec(e).map_err(std::io::Error::other)?);
            text.push(b'\n');
        }
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        self.file = append_to(&self.path)?;
        self.lines = self.tail.len();
        Ok(())
    }
}

fn append_to(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITHIN: Duration = Duration::from_secs(10);

    fn lines(dir: &Path) -> usize {
        fs::read_to_string(dir.join(FILE)).expect("history file").lines().count()
    }

    #[test]
    fn events_outlive_a_restart_and_numbers_go_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = History::open(dir.path(), "site-a");
        let first = h.record("one".into(), None);
        h.record("two".into(), None);
        assert!(h.sync(WITHIN));
        assert_eq!((first.node.as_str(), first.seq), ("site-a", 1));
        let again = History::open(dir.path(), "site-a");
        let texts: Vec<String> = again.events().into_iter().map(|e| e.event).collect();
        assert_eq!(texts, ["one", "two"]);
        assert_eq!(again.record("three".into(), None).seq, 3);
    }

    #[test]
    fn the_file_stays_bounded_and_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = History::open(dir.path(), "site-a");
        let total = KEPT * 3 + 7;
        for i in 0..total {
            h.record(format!("e{i}"), None);
            if i % 100 == 0 {
                assert!(h.sync(WITHIN));
                assert!(lines(dir.path()) <= KEPT + KEPT / 2, "{} lines after {i} events", lines(dir.path()));
            }
        }
        assert!(h.sync(WITHIN));
        assert!(lines(dir.path()) <= KEPT + KEPT / 2, "{} lines", lines(dir.path()));
        assert_eq!(h.events().len(), KEPT);
        let again = History::open(dir.path(), "site-a");
        let kept = again.events();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept.first().map(|e| e.event.clone()), Some(format!("e{}", total - KEPT)));
        assert_eq!(kept.last().map(|e| e.seq), Some(total as u64));
        assert_eq!(lines(dir.path()), KEPT, "rewritten at start");
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = History::open(dir.path(), "site-a");
        h.record("one".into(), None);
        assert!(h.sync(WITHIN));
        let mut f = append_to(&dir.path().join(FILE)).expect("open");
        f.write_all(b"{\"at\":\"2026-").expect("tear");
        let again = History::open(dir.path(), "site-a");
        assert_eq!(again.events().len(), 1);
        assert_eq!(again.record("two".into(), None).seq, 2);
        assert!(again.sync(WITHIN));
        assert_eq!(History::open(dir.path(), "site-a").events().len(), 2);
    }

    #[test]
    fn a_corrupt_file_is_set_aside_and_a_new_history_numbers_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = History::open(dir.path(), "site-a");
        for i in 0..3 {
            h.record(format!("e{i}"), None);
        }
        assert!(h.sync(WITHIN));
        let path = dir.path().join(FILE);
        let mut text = fs::read_to_string(&path).expect("read");
        text.insert_str(0, "not an event\n");
        fs::write(&path, &text).expect("write");
        let again = History::open(dir.path(), "site-a");
        assert!(again.events().is_empty());
        assert_eq!(again.record("after".into(), None).seq, 4);
        let aside: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("history.jsonl.bad-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(fs::read_to_string(dir.path().join(&aside[0])).expect("bad file"), text);
    }

    #[test]
    fn reading_names_the_bad_line() {
        let good = serde_json::to_string(&History::in_memory("w").record("x".into(), None)).expect("json");
        let r = read(&format!("{good}\n{{\"at\": 1}}\n{good}\n"));
        assert!(r.corrupt.as_deref().is_some_and(|c| c.starts_with("line 2: ")), "{r:?}");
        assert_eq!(read("").next_seq, 1);
    }
}
