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

/// Converts a protocol instant into wall-clock text (RFC 3339, to the
/// millisecond), for people only: the result never feeds a decision.
pub fn wall(at: Instant) -> String {
    wall_from(at, now(), std::time::SystemTime::now())
}

/// [`wall`] with both clocks read by the caller: `now` on the protocol
/// clock is `wall_now` on the wall clock.
pub fn wall_from(at: Instant, now: Instant, wall_now: std::time::SystemTime) -> String {
    let when = if at >= now {
        wall_now.checked_add(at.saturating_since(now))
    } else {
        wall_now.checked_sub(now.saturating_since(at))
    };
    humantime::format_rfc3339_millis(when.unwrap_or(std::time::SystemTime::UNIX_EPOCH)).to_string()
}
