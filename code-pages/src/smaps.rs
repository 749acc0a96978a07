//! Reads `/proc/self/smaps`: each mapping's range, permissions, file and
//! resident and anonymous sizes.

/// One mapping of the process, as `/proc/<pid>/smaps` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First address.
    pub start: usize,
    /// One past the last address.
    pub end: usize,
    /// `rwxp`-style permissions: read, write, execute, private or shared.
    pub perms: String,
    /// The mapped file's path, or a name such as `[heap]`, or empty.
    pub path: String,
    /// Resident KiB.
    pub rss_kib: u64,
    /// KiB of anonymous pages: for a file mapping, the pages copied on
    /// write, which differ from the file.
    pub anonymous_kib: u64,
}

impl Mapping {
    /// Whether dropping its pages cannot change what the process reads:
    /// a private, read-only mapping of a file, without an anonymous page.
    pub fn droppable(&self) -> bool {
        let perms = self.perms.as_bytes();
        self.path.starts_with('/')
            && perms.first() == Some(&b'r')
            && perms.get(1) == Some(&b'-')
            && perms.get(3) == Some(&b'p')
            && self.anonymous_kib == 0
    }

    /// Whether `other` maps the same range of the same file.
    pub fn same_as(&self, other: &Mapping) -> bool {
        (self.start, self.end) == (other.start, other.end) && self.path == other.path
    }
}

/// A line of smaps that does not read as the kernel writes it.
#[derive(Debug, thiserror::Error)]
#[error("/proc/self/smaps line {line}: {problem}: {text:?}")]
pub struct SmapsError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub problem: &'static str,
    /// The line.
    pub text: String,
}

/// Parses smaps text: a header line per mapping
/// (`start-end perms offset dev inode [path]`), then `Key: value kB` lines.
pub fn parse(text: &str) -> Result<Vec<Mapping>, SmapsError> {
    let mut out: Vec<Mapping> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |problem| SmapsError { line: i + 1, problem, text: line.to_owned() };
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if let Some((start, end)) = first.split_once('-') {
            let address = |s| usize::from_str_radix(s, 16).map_err(|_| bad("an address is not hexadecimal"));
            let (start, end) = (address(start)?, address(end)?);
            if end < start {
                return Err(bad("a mapping ends before it starts"));
            }
            let perms = fields.next().ok_or_else(|| bad("no permissions"))?.to_owned();
            out.push(Mapping { start, end, perms, path: path_of(line).to_owned(), rss_kib: 0, anonymous_kib: 0 });
            continue;
        }
        let rss = match first {
            "Rss:" => true,
            "Anonymous:" => false,
            _ => continue,
        };
        let current = out.last_mut().ok_or_else(|| bad("a size before the first mapping"))?;
        let kib = fields.next().and_then(|v| v.parse().ok()).ok_or_else(|| bad("a size is not a number"))?;
        if rss {
            current.rss_kib = kib;
        } else {
            current.anonymous_kib = kib;
        }
    }
    Ok(out)
}

/// The path of a header line: what follows its five fields (range,
/// permissions, offset, device, inode), spaces within it kept.
fn path_of(line: &str) -> &str {
    let mut rest = line;
    for _ in 0..5 {
        rest = rest.trim_start();
        rest = rest.find(char::is_whitespace).map_or("", |at| &rest[at..]);
    }
    rest.trim_start()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/usr/bin/failover witness";
    const SMAPS: &str = "\
5581e0a00000-5581e0b2c000 r--p 00000000 fd:01 918 /usr/bin/failover witness
Size:               1200 kB
Rss:                1100 kB
Anonymous:             0 kB
VmFlags: rd mr mw me dw sd
5581e0b2c000-5581e1a00000 r-xp 0012c000 fd:01 918 /usr/bin/failover witness
Size:              15184 kB
Rss:                9500 kB
Anonymous:             0 kB
5581e1a00000-5581e1b00000 r--p 01000000 fd:01 918 /usr/bin/failover witness
Rss:                 640 kB
Anonymous:           636 kB
5581e1b00000-5581e1b10000 rw-p 01100000 fd:01 918 /usr/bin/failover witness
Rss:                  64 kB
Anonymous:            64 kB
5581e2000000-5581e2100000 rw-p 00000000 00:00 0 [heap]
Rss:                 300 kB
Anonymous:           300 kB
7f0000000000-7f0000001000 rw-p 00000000 00:00 0
Rss:                   4 kB
Anonymous:             4 kB
7f0000100000-7f0000280000 r-xp 00028000 fd:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 900 kB
Anonymous:             0 kB
";

    #[test]
    fn reads_ranges_permissions_paths_and_sizes() {
        let maps = parse(SMAPS).unwrap();
        assert_eq!(maps.len(), 7);
        assert_eq!((maps[1].start, maps[1].end), (0x5581e0b2c000, 0x5581e1a00000));
        assert_eq!(maps[1].perms, "r-xp");
        assert_eq!(maps[1].path, EXE, "a path with a space is read whole");
        assert_eq!((maps[1].rss_kib, maps[1].anonymous_kib), (9500, 0));
        assert_eq!(maps[4].path, "[heap]");
        assert_eq!(maps[5].path, "");
    }

    #[test]
    fn only_read_only_file_pages_without_copies_are_droppable() {
        let maps = parse(SMAPS).unwrap();
        let droppable: Vec<bool> = maps.iter().map(Mapping::droppable).collect();
        // Headers and read-only data, code, a library's code: yes.
        // Relocated data made read-only (RELRO, anonymous pages), writable
        // data, heap, anonymous memory: no.
        assert_eq!(droppable, [true, true, false, false, false, false, true]);
        let shared = Mapping { perms: "r--s".to_owned(), ..maps[0].clone() };
        assert!(!shared.droppable(), "a shared mapping is never dropped");
    }

    #[test]
    fn the_same_mapping_is_the_same_range_of_the_same_file() {
        let maps = parse(SMAPS).unwrap();
        assert!(maps[1].same_as(&maps[1].clone()));
        assert!(!maps[1].same_as(&Mapping { end: maps[1].end + 4096, ..maps[1].clone() }));
        assert!(!maps[1].same_as(&Mapping { path: format!("{EXE} (deleted)"), ..maps[1].clone() }));
    }

    #[test]
    fn text_that_is_not_smaps_is_refused_with_its_line() {
        let err = parse("zz-10 r--p 0 0 0\n").unwrap_err();
        assert_eq!((err.line, err.problem), (1, "an address is not hexadecimal"));
        let err = parse("Rss: 4 kB\n").unwrap_err();
        assert_eq!(err.problem, "a size before the first mapping");
        let err = parse("10-20 r--p 0 0 0\nRss: many kB\n").unwrap_err();
        assert_eq!((err.line, err.problem), (2, "a size is not a number"));
        let err = parse("20-10 r--p 0 0 0\n").unwrap_err();
        assert_eq!(err.problem, "a mapping ends before it starts");
    }
}
