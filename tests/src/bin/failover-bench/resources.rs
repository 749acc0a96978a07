//! The daemons' CPU time and memory, read from /proc, turned into usage
//! over a stretch of time.
//!
//! It only reads /proc; it must never signal or otherwise touch the
//! processes it looks at.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::lab::Lab;
use crate::report::Usage;
use crate::watch::ms;

/// The daemons whose usage is reported.
const DAEMONS: [&str; 3] = ["site-a", "site-b", "witness"];

/// CPU time (ms), RSS and its anonymous part (KiB) of each daemon at one
/// moment.
pub struct Sample([Option<(f64, u64, u64)>; 3]);

/// Reads CPU time (ms), RSS and anonymous RSS (KiB) of `pid` from /proc.
/// RSS also counts the pages of the binary's code that are mapped: clean,
/// shared and dropped by the kernel under memory pressure; the anonymous
/// part is what the daemon itself allocated.
fn proc_usage(pid: u32) -> Option<(f64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        status.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
    };
    Some((ticks * 10.0, kib("VmRSS:")?, kib("RssAnon:")?))
}

impl Sample {
    /// The daemons' counters now.
    pub fn take(lab: &Lab) -> Sample {
        Sample(DAEMONS.map(|h| lab.pid(h).and_then(proc_usage)))
    }

    /// Each daemon's CPU (% of one core) since this sample, `elapsed` ago,
    /// and its RSS now.
    pub fn usage_since(&self, lab: &Lab, elapsed: Duration) -> BTreeMap<String, Usage> {
        let mut out = BTreeMap::new();
        for (h, before) in DAEMONS.iter().zip(&self.0) {
            if let (Some((c0, _, _)), Some((c1, rss, anon))) = (before, lab.pid(h).and_then(proc_usage)) {
                let cpu = (c1 - c0) / ms(elapsed) * 100.0;
                let cpu_percent = (cpu * 100.0).round() / 100.0;
                out.insert((*h).to_owned(), Usage { cpu_percent, rss_anon_kib: anon, rss_kib: rss });
            }
        }
        out
    }
}
