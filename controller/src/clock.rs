//! The protocol's clock: `CLOCK_BOOTTIME`, which is monotonic and keeps
//! counting while the machine is suspended, so a lease holder never
//! under-estimates how much time has passed ("Time" in docs/protocol.md). Wall time is
//! never used for protocol decisions.

use failover_core::Instant;
use rustix::time::{clock_gettime, ClockId};

/// Milliseconds on `CLOCK_BOOTTIME`.
pub fn now() -> Instant {
    let ts = clock_gettime(ClockId::Boottime);
    let ms = u64::try_from(ts.tv_sec).unwrap_or(0) * 1000 + u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000_000;
    Instant::from_millis(ms)
}
