//! `failover-code-pages`: keeps only the code a daemon runs in memory.
//!
//! The kernel maps a program's code in blocks: around each page a process
//! first runs it maps every neighbour already in the page cache
//! (fault-around, 64 KiB), and code is read ahead so that the neighbours
//! usually are. Start-up runs code from all over the binary and its
//! libraries (parsing the config, TLS, every component's set-up), so a
//! daemon that has started holds most of them mapped, though at idle it
//! runs a small part. [`StartUpMappings::trim`], called once a daemon has
//! started, unmaps those pages (`MADV_DONTNEED`); the kernel maps back the
//! ones that run again, with their neighbourhoods, and the start-up code
//! stays out.
//!
//! It must never drop a page whose content differs from the file, nor
//! touch memory that is no longer what it was: only private, read-only
//! file mappings holding no anonymous (copied-on-write) page are dropped,
//! which are code and read-only data, never relocated data (RELRO),
//! writable data, the heap or a stack; and only mappings that were already
//! there when the process started ([`StartUpMappings::record`]), which are
//! the executable's, the dynamic loader's and the libraries it loaded
//! before `main`: the loader never unloads those (it unloads only
//! libraries opened later with `dlopen`), so a range seen then is the same
//! mapping when it is dropped. Dropping such a page cannot change what the
//! program reads: the next access reads the same bytes from the page cache
//! or the file, which the kernel does not let anyone write while it is
//! being run. This crate holds the project's only `unsafe` code, for that
//! reason.

mod smaps;

use rustix::mm::Advice;

pub use smaps::{Mapping, SmapsError};

/// What [`StartUpMappings::trim`] did, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trimmed {
    /// The mappings that were unmapped (the executable's and its
    /// libraries' code and read-only data).
    pub mappings: usize,
    /// Their resident pages (KiB) before.
    pub resident_kib_before: u64,
    /// Their resident pages (KiB) right after (the pages the process ran
    /// meanwhile).
    pub resident_kib_after: u64,
}

/// Why trimming did nothing, or stopped half-way (harmless either way: the
/// pages stay mapped as the kernel mapped them).
#[derive(Debug, thiserror::Error)]
pub enum TrimError {
    /// `/proc/self/smaps` could not be read.
    #[error("reading /proc/self/smaps")]
    Proc(#[source] std::io::Error),
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

/// The read-only file mappings the process had when it started: the
/// executable's, the dynamic loader's and its libraries'. Only these are
/// ever dropped (see the crate's documentation for why).
#[derive(Clone, Debug)]
pub struct StartUpMappings {
    mappings: Vec<Mapping>,
}

impl StartUpMappings {
    /// Reads the process's mappings. Call it first thing in `main`, before
    /// anything could open a library with `dlopen`.
    pub fn record() -> Result<Self, TrimError> {
        Ok(Self { mappings: read_smaps()?.into_iter().filter(Mapping::droppable).collect() })
    }

    /// Unmaps the pages of the start-up mappings that are still as they
    /// were and still hold no anonymous page, so that only the ones the
    /// process still runs are mapped again. Call it once the daemon has
    /// started: code run only at start-up is not mapped again.
    pub fn trim(&self) -> Result<Trimmed, TrimError> {
        let resident_kib = |mapped: &[Mapping]| self.to_drop(mapped).map(|m| m.rss_kib).sum();
        let mapped = read_smaps()?;
        let dropped: Vec<&Mapping> = self.to_drop(&mapped).collect();
        for m in &dropped {
            // SAFETY: `m` was mapped when the process started, at the same
            // range and of the same file, and such mappings stay for the
            // life of the process (the crate's documentation says why);
            // `Mapping::droppable` found it private, not writable and
            // holding no anonymous page. `MADV_DONTNEED` on such a mapping
            // unmaps pages that equal the file's content, which the kernel
            // maps again on the next access; no anonymous page can have
            // appeared since, as nothing can write to the mapping.
            unsafe { rustix::mm::madvise(m.start as *mut std::ffi::c_void, m.end - m.start, Advice::LinuxDontNeed) }
                .map_err(|source| TrimError::Unmap { start: m.start, end: m.end, source })?;
        }
        Ok(Trimmed {
            mappings: dropped.len(),
            resident_kib_before: resident_kib(&mapped),
            resident_kib_after: resident_kib(&read_smaps()?),
        })
    }

    /// Those of the mappings `now` that may be dropped: droppable, and
    /// mapped at start-up at the same range of the same file.
    fn to_drop<'a>(&'a self, now: &'a [Mapping]) -> impl Iterator<Item = &'a Mapping> + 'a {
        now.iter().filter(|m| m.droppable() && self.mappings.iter().any(|then| then.same_as(m)))
    }
}

fn read_smaps() -> Result<Vec<Mapping>, TrimError> {
    let text = std::fs::read_to_string("/proc/self/smaps").map_err(TrimError::Proc)?;
    Ok(smaps::parse(&text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(start: usize, perms: &str, path: &str, anonymous_kib: u64) -> Mapping {
        Mapping {
            start,
            end: start + 0x1000,
            perms: perms.to_owned(),
            path: path.to_owned(),
            rss_kib: 4,
            anonymous_kib,
        }
    }

    #[test]
    fn only_start_up_mappings_still_as_they_were_are_dropped() {
        let exe = mapping(0x1000, "r-xp", "/usr/bin/failover-witness", 0);
        let libc = mapping(0x9000, "r-xp", "/usr/lib/libc.so.6", 0);
        let heap = mapping(0x5000, "rw-p", "[heap]", 4);
        let start_up = StartUpMappings { mappings: vec![exe.clone(), libc.clone(), heap.clone()] };
        let late_library = mapping(0x20000, "r-xp", "/usr/lib/libnss_extra.so.2", 0);
        let reused_range = mapping(0x9000, "r-xp", "/usr/lib/other.so", 0);
        let copied = mapping(0x1000, "r-xp", "/usr/bin/failover-witness", 4);
        let now = [exe.clone(), libc.clone(), heap, late_library, reused_range];
        let dropped: Vec<&Mapping> = start_up.to_drop(&now).collect();
        assert_eq!(dropped, [&exe, &libc], "not the heap, a library opened later or another file at a start-up range");
        assert_eq!(start_up.to_drop(&[copied]).count(), 0, "not a mapping that now holds a copied page");
    }
}
