//! The protocol's clock: `CLOCK_BOOTTIME`, which is monotonic and keeps
//! counting while the machine is suspended, so a lease holder never
//! under-estimates how much time has passed ("Time" in docs/protocol.md). Wall time is
//! never used for protocol decisions.
//!
//! Wall-clock text for people is written here, and every function that
//! writes it is total: a time that RFC 3339 with a four-digit year cannot
//! show (before 1970 or after 9999, or beyond what the wall clock holds)
//! becomes a text saying so, never a panic. The one wall time an operator
//! gives, a switchover's `--at`, is read and bounded here too
//! ([`schedule_wait`]).

use std::time::{Duration, SystemTime};

use failover_core::Instant;
use rustix::time::{clock_gettime, ClockId};

/// The last second RFC 3339 text with a four-digit year can show,
/// 9999-12-31T23:59:59Z, in seconds since 1970.
pub const LAST_SHOWN_SECS: u64 = 253_402_300_799;

/// How far ahead a switchover may be scheduled: 365 days.
pub const MAX_SCHEDULE_AHEAD: Duration = Duration::from_secs(365 * 24 * 3600);

/// How far in the past a scheduled time may be and still count as now:
/// rounding to whole seconds in a script is not a time-zone slip.
pub const SCHEDULE_PAST_TOLERANCE: Duration = Duration::from_secs(1);

/// Milliseconds on `CLOCK_BOOTTIME`.
pub fn now() -> Instant {
    let ts = clock_gettime(ClockId::Boottime);
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let ms = secs.saturating_mul(1000).saturating_add(u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000_000);
    Instant::from_millis(ms)
}

/// Why a wall-clock time cannot be shown as RFC 3339 text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WallTextError {
    /// Before 1970-01-01T00:00:00Z.
    #[error("{secs} s before 1970-01-01T00:00:00Z, earlier than any time shown")]
    BeforeEpoch {
        /// Whole seconds before 1970, rounded up.
        secs: u64,
    },
    /// After 9999-12-31T23:59:59Z (once rounded, where it is rounded).
    #[error("{secs} s after 1970-01-01T00:00:00Z, later than 9999-12-31T23:59:59Z, the last time shown")]
    AfterYear9999 {
        /// Whole seconds after 1970.
        secs: u64,
    },
    /// A protocol instant that lands outside what the wall clock holds.
    #[error("{ms} ms {} now, beyond the wall clock's range", direction(.ahead))]
    OutOfClockRange {
        /// Milliseconds from now.
        ms: u64,
        /// Whether it is after now.
        ahead: bool,
    },
}

fn direction(ahead: &bool) -> &'static str {
    if *ahead {
        "after"
    } else {
        "before"
    }
}

/// The text shown for a time that cannot be written as a date.
fn unshown(e: WallTextError) -> String {
    format!("(no date: {e})")
}

/// The time since 1970, or why the time is before 1970.
fn since_epoch(t: SystemTime) -> Result<Duration, WallTextError> {
    t.duration_since(SystemTime::UNIX_EPOCH).map_err(|e| WallTextError::BeforeEpoch {
        secs: e.duration().as_secs() + u64::from(e.duration().subsec_nanos() > 0),
    })
}

/// `t` as RFC 3339 text to the millisecond, or why it cannot be.
pub fn rfc3339_millis(t: SystemTime) -> Result<String, WallTextError> {
    let since = since_epoch(t)?;
    if since.as_secs() > LAST_SHOWN_SECS {
        return Err(WallTextError::AfterYear9999 { secs: since.as_secs() });
    }
    Ok(humantime::format_rfc3339_millis(t).to_string())
}

/// `t` rounded to the nearest second, as RFC 3339 text to the second, or
/// why it cannot be (rounding up can carry it past 9999).
pub fn rfc3339_seconds_rounded(t: SystemTime) -> Result<String, WallTextError> {
    let since = since_epoch(t)?;
    let secs = since.as_secs().saturating_add(u64::from(since.subsec_nanos() >= 500_000_000));
    if secs > LAST_SHOWN_SECS {
        return Err(WallTextError::AfterYear9999 { secs });
    }
    // Within range, so the addition cannot overflow and humantime can write it.
    let rounded = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    Ok(humantime::format_rfc3339_seconds(rounded).to_string())
}

/// The wall-clock time of the protocol instant `at`, given that `now` on the
/// protocol clock is `wall_now` on the wall clock.
pub fn wall_time_of(at: Instant, now: Instant, wall_now: SystemTime) -> Result<SystemTime, WallTextError> {
    if at >= now {
        let ahead = at.saturating_since(now);
        let ms = at.as_millis() - now.as_millis();
        wall_now.checked_add(ahead).ok_or(WallTextError::OutOfClockRange { ms, ahead: true })
    } else {
        let behind = now.saturating_since(at);
        let ms = now.as_millis() - at.as_millis();
        wall_now.checked_sub(behind).ok_or(WallTextError::OutOfClockRange { ms, ahead: false })
    }
}

/// Converts a protocol instant into wall-clock text (RFC 3339, to the
/// millisecond), for people only: the result never feeds a decision.
pub fn wall(at: Instant) -> String {
    wall_from(at, now(), SystemTime::now())
}

/// [`wall`] with both clocks read by the caller: `now` on the protocol
/// clock is `wall_now` on the wall clock. Total: a time that cannot be
/// shown as a date comes back as a text that says why.
pub fn wall_from(at: Instant, now: Instant, wall_now: SystemTime) -> String {
    wall_time_of(at, now, wall_now).and_then(rfc3339_millis).unwrap_or_else(unshown)
}

/// Wall time as milliseconds since the Unix epoch (0 for a time before it,
/// the largest value for one beyond it), for a note carried to other nodes.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The protocol instant `at` as milliseconds since the Unix epoch, given
/// that `now` on the protocol clock is `wall_now` (0 before the epoch, the
/// largest value beyond what the wall clock holds): the form a scheduled
/// switchover's due time is stored in, since the protocol clock starts
/// again at a reboot.
pub fn unix_ms_of(at: Instant, now: Instant, wall_now: SystemTime) -> u64 {
    match wall_time_of(at, now, wall_now) {
        Ok(t) => unix_ms(t),
        Err(WallTextError::OutOfClockRange { ahead: false, .. }) => 0,
        Err(_) => u64::MAX,
    }
}

/// The protocol instant of `unix_ms` (milliseconds since the Unix epoch),
/// given that `now` on the protocol clock is `wall_now`: a time already
/// past is `now`. The inverse of [`unix_ms_of`] to the millisecond while
/// neither clock steps.
pub fn instant_of_unix_ms(unix_ms: u64, now: Instant, wall_now: SystemTime) -> Instant {
    let wall_now_ms = self::unix_ms(wall_now);
    now + Duration::from_millis(unix_ms.saturating_sub(wall_now_ms))
}

/// Milliseconds since the Unix epoch (from a note another node made) as
/// RFC 3339 text to the millisecond. Total, as [`wall_from`].
pub fn wall_from_unix_ms(ms: u64) -> String {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .ok_or(WallTextError::OutOfClockRange { ms, ahead: true })
        .and_then(rfc3339_millis)
        .unwrap_or_else(unshown)
}

/// [`wall_from`] to the nearest second; an instant already past shows as
/// `wall_now`. Total, as [`wall_from`].
pub fn wall_seconds_from(at: Instant, now: Instant, wall_now: SystemTime) -> String {
    wall_time_of(at.max(now), now, wall_now).and_then(rfc3339_seconds_rounded).unwrap_or_else(unshown)
}

/// Why an operator's scheduled time is refused. Each names the value given
/// and the limit it breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not RFC 3339 (or before 1970, or after 9999).
    #[error("at: {text:?} is not a time: {reason} (give RFC 3339, e.g. 2026-11-22T03:00:00Z)")]
    NotATime {
        /// The text given.
        text: String,
        /// What the parser said.
        reason: String,
    },
    /// Further ahead than [`MAX_SCHEDULE_AHEAD`].
    #[error(
        "at: {text:?} is {days} days ahead, more than the limit of {limit_days} days: a switchover can be \
         scheduled at most {limit_days} days ahead (until {until})"
    )]
    TooFar {
        /// The text given.
        text: String,
        /// Whole days ahead of this node's clock.
        days: u64,
        /// The limit, in days.
        limit_days: u64,
        /// The latest time accepted now, as text.
        until: String,
    },
    /// Further in the past than [`SCHEDULE_PAST_TOLERANCE`].
    #[error("at: {text:?} is {late} in the past (check its time zone); to switch over now, leave out --at")]
    Past {
        /// The text given.
        text: String,
        /// How long ago, in whole seconds, for people.
        late: String,
    },
}

/// Reads an operator's scheduled time `text` (RFC 3339) against the wall
/// clock `wall_now`: how long to wait for it (`None`: now, the time is at
/// most [`SCHEDULE_PAST_TOLERANCE`] past), or why it is refused: not a
/// time, more than [`MAX_SCHEDULE_AHEAD`] ahead, or further in the past.
pub fn schedule_wait(text: &str, wall_now: SystemTime) -> Result<Option<Duration>, ScheduleError> {
    let when = humantime::parse_rfc3339_weak(text)
        .map_err(|e| ScheduleError::NotATime { text: text.to_owned(), reason: e.to_string() })?;
    match when.duration_since(wall_now) {
        Ok(wait) if wait <= MAX_SCHEDULE_AHEAD => Ok(Some(wait)),
        Ok(wait) => Err(ScheduleError::TooFar {
            text: text.to_owned(),
            days: wait.as_secs() / 86_400,
            limit_days: MAX_SCHEDULE_AHEAD.as_secs() / 86_400,
            until: wall_now.checked_add(MAX_SCHEDULE_AHEAD).map_or_else(
                || "beyond the wall clock's range".to_owned(),
                |t| rfc3339_millis(t).unwrap_or_else(unshown),
            ),
        }),
        Err(late) if late.duration() <= SCHEDULE_PAST_TOLERANCE => Ok(None),
        Err(late) => Err(ScheduleError::Past {
            text: text.to_owned(),
            late: humantime::format_duration(Duration::from_secs(late.duration().as_secs())).to_string(),
        }),
    }
}

#[cfg(test)]
mod tests;
