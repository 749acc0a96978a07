//! `failover-code-pages`: keeps only the code a daemon runs in memory.
//!
//! The kernel maps a program's code in blocks: around each page a process
//! first runs it maps every neighbour already in the page cache
//! (fault-around, 64 KiB), and code is read ahead so that the neighbours
//! usually are. Start-up runs code from all over a 15 MB binary (parsing
//! the config, TLS, every component's set-up), so a daemon that has
//! started holds most of its binary mapped, though at idle it runs a small
//! part of it. [`trim`], called once a daemon has started, unmaps the
//! binary's pages (`MADV_DONTNEED`); the kernel maps back those that run
//! again, with their neighbourhoods, and the start-up code stays out.
//!
//! It must never drop a page whose content differs from the file: only the
//! executable's private, read-only mappings holding no anonymous
//! (copied-on-write) page are dropped, which are the code and the read-only
//! data, never the relocated data (RELRO), the writable data, the heap or a
//! stack. Dropping such a page cannot change what the program reads: the
//! next access reads the same bytes from the page cache or the file, which
//! the kernel does not let anyone write while it is being run. This crate
//! holds the project's only `unsafe` code, for that reason.

mod smaps;

use rustix::mm::Advice;

pub use smaps::{Mapping, SmapsError};

/// What [`trim`] did, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trimmed {
    /// The executable's mappings that were unmapped.
    pub mappings: usize,
    /// The executable's resident pages (KiB) before.
    pub resident_kib_before: u64,
    /// The executable's resident pages (KiB) right after (the pages the
    /// process ran meanwhile).
    pub resident_kib_after: u64,
}

/// Why [`trim`] did nothing, or stopped half-way (harmless either way: the
/// pages stay mapped as the kernel mapped them).
#[derive(Debug, thiserror::Error)]
pub enum TrimError {
    /// `/proc/self/smaps` or `/proc/self/exe` could not be read.
    #[error("reading {what}")]
    Proc {
        /// Which file.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// `/proc/self/smaps` does not read as the kernel writes it.
    #[error(transparent)]
    Smaps(#[from] SmapsError),
    /// The kernel refused to unmap a range.
    #[error("madvise(MADV_DONTNEED) on {start:#x}-{end:#x}")]
    Unmap {
        /// The range's first address.
        start: usize,
        /// One past its last address.
        end: usize,
        /// The OS error.
        source: rustix::io::Errno,
    },
}

/// Unmaps this process's executable's pages, so that only the ones it
/// still runs are mapped again. Call it once the daemon has started: code
/// run only at start-up is not mapped again.
pub fn trim() -> Result<Trimmed, TrimError> {
    let proc_err = |what| move |source| TrimError::Proc { what, source };
    let exe = std::fs::read_link("/proc/self/exe").map_err(proc_err("/proc/self/exe"))?;
    let exe = exe.to_string_lossy().into_owned();
    let read = || -> Result<Vec<Mapping>, TrimError> {
        let text = std::fs::read_to_string("/proc/self/smaps").map_err(proc_err("/proc/self/smaps"))?;
        Ok(smaps::parse(&text)?)
    };
    let mapped = read()?;
    let droppable: Vec<&Mapping> = mapped.iter().filter(|m| m.droppable(&exe)).collect();
    let resident_kib_before = resident_kib(&mapped, &exe);
    for m in &droppable {
        // SAFETY: `m` is a mapping of this process's executable that
        // `Mapping::droppable` found private, not writable and holding no
        // anonymous page, and mappings of the executable stay for the life
        // of the process. `MADV_DONTNEED` on such a mapping unmaps pages
        // that equal the file's content, which the kernel maps again on the
        // next access; no anonymous page can have appeared since, as
        // nothing can write to the mapping.
        unsafe { rustix::mm::madvise(m.start as *mut std::ffi::c_void, m.end - m.start, Advice::LinuxDontNeed) }
            .map_err(|source| TrimError::Unmap { start: m.start, end: m.end, source })?;
    }
    Ok(Trimmed { mappings: droppable.len(), resident_kib_before, resident_kib_after: resident_kib(&read()?, &exe) })
}

/// The resident pages (KiB) of the mappings of `exe`.
fn resident_kib(mapped: &[Mapping], exe: &str) -> u64 {
    mapped.iter().filter(|m| m.path == exe).map(|m| m.rss_kib).sum()
}
