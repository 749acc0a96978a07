//! Wall-clock text is total and the operator's scheduled time is bounded:
//! properties over any instant, any wall clock and any text, and the edge
//! values (u64 and i64 extremes, the last second of 9999).

use std::time::{Duration, SystemTime};

use failover_core::Instant;
use proptest::prelude::*;

use super::*;

const MS: Duration = Duration::from_millis(1);

/// 1970 plus (or minus) `secs` seconds and `nanos`, when the wall clock
/// can hold it.
fn wall_at(secs: i64, nanos: u32) -> Option<SystemTime> {
    let whole = Duration::from_secs(secs.unsigned_abs());
    let t =
        if secs >= 0 { SystemTime::UNIX_EPOCH.checked_add(whole) } else { SystemTime::UNIX_EPOCH.checked_sub(whole) };
    t?.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// The distance between two wall-clock times.
fn gap(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b).unwrap_or_else(|e| e.duration())
}

/// The last second shown, and times around it.
fn last_second() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(LAST_SHOWN_SECS)
}

/// Wall-clock text, or the text that says it is no date: nothing else.
fn shown_or_said(text: &str) -> Option<SystemTime> {
    if text.starts_with("(no date: ") {
        return None;
    }
    match humantime::parse_rfc3339(text) {
        Ok(t) => Some(t),
        Err(e) => panic!("{text:?} is neither a time nor says why not: {e}"),
    }
}

/// Checks [`wall_from`] and [`wall_seconds_from`] for one input: a date
/// when the instant maps to one RFC 3339 can show (and the right one),
/// else the text saying why.
fn check_wall(at: Instant, now: Instant, wall_now: SystemTime) {
    let exact = wall_time_of(at, now, wall_now);
    let in_range =
        |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).is_ok_and(|d| d.as_secs() <= LAST_SHOWN_SECS);
    let text = wall_from(at, now, wall_now);
    match (shown_or_said(&text), exact) {
        (Some(shown), Ok(t)) => {
            assert!(in_range(t), "{text} shown for a time outside 1970..=9999");
            assert!(gap(shown, t) < MS, "{text} is not {t:?}");
        }
        (None, Ok(t)) => assert!(!in_range(t), "{t:?} can be shown, but came back as {text}"),
        (None, Err(_)) => {}
        (Some(_), Err(e)) => panic!("{text} shown for an instant off the wall clock: {e}"),
    }
    let text = wall_seconds_from(at, now, wall_now);
    let exact = wall_time_of(at.max(now), now, wall_now);
    match (shown_or_said(&text), exact) {
        (Some(shown), Ok(t)) => {
            assert!(gap(shown, t) <= Duration::from_millis(500), "{text} is not {t:?} to the nearest second");
            assert!(in_range(shown), "{text}");
        }
        (None, Ok(t)) => {
            let rounded_past = t
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(true, |d| d.as_secs() + u64::from(d.subsec_nanos() >= 500_000_000) > LAST_SHOWN_SECS);
            assert!(rounded_past, "{t:?} rounds to a time that can be shown, but came back as {text}");
        }
        (None, Err(_)) => {}
        (Some(_), Err(e)) => panic!("{text} shown for an instant off the wall clock: {e}"),
    }
}

/// Edge instants and wall clocks.
fn edge_instants() -> Vec<Instant> {
    [0, 1, 499, 500, 999, 1000, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX / 1000, u64::MAX - 1, u64::MAX]
        .into_iter()
        .map(Instant::from_millis)
        .collect()
}

fn edge_walls() -> Vec<SystemTime> {
    let mut walls = Vec::new();
    for secs in
        [0, 1, -1, 1_790_000_000, LAST_SHOWN_SECS as i64, LAST_SHOWN_SECS as i64 + 1, i64::MAX, i64::MIN + 1, i64::MIN]
    {
        for nanos in [0, 499_999_999, 500_000_000, 600_000_000, 999_999_999] {
            walls.extend(wall_at(secs, nanos));
        }
    }
    walls
}

#[test]
fn wall_text_is_total_over_the_edge_values() {
    let (instants, walls) = (edge_instants(), edge_walls());
    assert!(walls.len() > 20, "the edge wall clocks must mostly be held: {}", walls.len());
    for &wall_now in &walls {
        for &at in &instants {
            for &now in &instants {
                check_wall(at, now, wall_now);
            }
        }
        let _ = (rfc3339_millis(wall_now), rfc3339_seconds_rounded(wall_now));
    }
}

#[test]
fn the_last_second_of_9999_is_shown_and_rounding_past_it_is_said() {
    let last = last_second();
    assert_eq!(rfc3339_millis(last + Duration::from_millis(999)).as_deref(), Ok("9999-12-31T23:59:59.999Z"));
    assert_eq!(rfc3339_seconds_rounded(last + Duration::from_millis(499)).as_deref(), Ok("9999-12-31T23:59:59Z"));
    // The time that took the status page down: 9999-12-31T23:59:59.6Z,
    // rounded to the nearest second, is in the year 10000.
    let rounded = rfc3339_seconds_rounded(last + Duration::from_millis(600));
    assert_eq!(rounded, Err(WallTextError::AfterYear9999 { secs: LAST_SHOWN_SECS + 1 }));
    let now = Instant::from_millis(1_000);
    let wall_now = last - Duration::from_secs(10);
    let text = wall_seconds_from(now + Duration::from_millis(10_600), now, wall_now);
    assert!(text.starts_with("(no date: ") && text.contains("9999-12-31T23:59:59Z"), "{text}");
    assert!(rfc3339_millis(last + Duration::from_secs(1)).is_err());
    assert!(matches!(rfc3339_millis(SystemTime::UNIX_EPOCH - MS), Err(WallTextError::BeforeEpoch { secs: 1 })));
}

#[test]
fn the_far_future_schedule_is_refused_naming_the_value_and_the_limit() {
    let wall_now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_457_600); // 2026-12-05T08:00:00Z
    let refused = schedule_wait("9999-12-31T23:59:59.6Z", wall_now).expect_err("accepted the year 9999");
    assert!(matches!(refused, ScheduleError::TooFar { limit_days: 365, .. }), "{refused:?}");
    let text = refused.to_string();
    assert!(text.contains("\"9999-12-31T23:59:59.6Z\"") && text.contains("limit of 365 days"), "{text}");
    assert!(text.contains("2027-12-05T08:00:00.000Z"), "the latest time accepted now is named: {text}");
}

#[test]
fn the_schedule_bounds_are_inclusive() {
    let wall_now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_457_600);
    let at = |t: SystemTime| humantime::format_rfc3339_nanos(t).to_string();
    let limit = wall_now + MAX_SCHEDULE_AHEAD;
    assert_eq!(schedule_wait(&at(limit), wall_now), Ok(Some(MAX_SCHEDULE_AHEAD)));
    assert!(matches!(schedule_wait(&at(limit + MS), wall_now), Err(ScheduleError::TooFar { days: 365, .. })));
    assert_eq!(schedule_wait(&at(wall_now - SCHEDULE_PAST_TOLERANCE), wall_now), Ok(None));
    let past = schedule_wait(&at(wall_now - SCHEDULE_PAST_TOLERANCE - MS), wall_now);
    assert!(matches!(past, Err(ScheduleError::Past { .. })), "{past:?}");
    assert!(past.is_err_and(|e| e.to_string().contains("leave out --at")));
}

/// Any wall clock a machine can have, from 1970 to the end of 9999.
fn any_wall() -> impl Strategy<Value = SystemTime> {
    (0..=LAST_SHOWN_SECS, 0..1_000_000_000u32)
        .prop_map(|(secs, nanos)| SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn wall_text_is_total(at in any::<u64>(), now in any::<u64>(), secs in any::<i64>(), nanos in 0..1_000_000_000u32) {
        if let Some(wall_now) = wall_at(secs, nanos) {
            check_wall(Instant::from_millis(at), Instant::from_millis(now), wall_now);
        }
    }

    #[test]
    fn wall_text_is_total_near_the_ends(at in any::<u64>(), now in any::<u64>(), wall_now in any_wall()) {
        check_wall(Instant::from_millis(at), Instant::from_millis(now), wall_now);
        // An instant a few seconds either side of the wall clock's now.
        let near = now.saturating_add(at % 20_000).saturating_sub(10_000);
        check_wall(Instant::from_millis(near), Instant::from_millis(now), wall_now);
    }

    #[test]
    fn any_text_is_read_or_refused_without_panic(text in "\\PC{0,40}", wall_now in any_wall()) {
        let _ = schedule_wait(&text, wall_now);
    }

    #[test]
    fn near_rfc3339_text_is_read_or_refused_without_panic(
        text in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,30})?(Z|[+-][0-9]{2}:[0-9]{2})?",
        wall_now in any_wall(),
    ) {
        if let Ok(Some(wait)) = schedule_wait(&text, wall_now) {
            prop_assert!(wait <= MAX_SCHEDULE_AHEAD, "{text} accepted {wait:?} ahead");
        }
    }

    /// Exactly the times from [`SCHEDULE_PAST_TOLERANCE`] past to
    /// [`MAX_SCHEDULE_AHEAD`] ahead are accepted, each as the wait to it.
    #[test]
    fn the_schedule_is_bounded(wall_now in any_wall(), offset_ms in -(2 * 365 * 86_400_000i64)..(2 * 365 * 86_400_000i64)) {
        let offset = Duration::from_millis(offset_ms.unsigned_abs());
        let target = if offset_ms >= 0 { wall_now.checked_add(offset) } else { wall_now.checked_sub(offset) };
        let Some(target) = target.filter(|t| rfc3339_millis(*t).is_ok()) else { return Ok(()) };
        let text = humantime::format_rfc3339_nanos(target).to_string();
        let got = schedule_wait(&text, wall_now);
        if offset_ms >= 0 && offset <= MAX_SCHEDULE_AHEAD {
            prop_assert_eq!(got, Ok(Some(offset)));
        } else if offset_ms >= 0 {
            prop_assert!(matches!(got, Err(ScheduleError::TooFar { .. })), "{text}: {got:?}");
            prop_assert!(got.is_err_and(|e| e.to_string().contains(&text) && e.to_string().contains("365 days")));
        } else if offset <= SCHEDULE_PAST_TOLERANCE {
            prop_assert_eq!(got, Ok(None));
        } else {
            prop_assert!(matches!(got, Err(ScheduleError::Past { .. })), "{text}: {got:?}");
        }
    }
}

/// A scheduled switchover's due time survives the trip through wall-clock
/// milliseconds (the state file) to the millisecond, across a restart that
/// starts the protocol clock anywhere (a reboot starts it again near 0).
#[test]
fn a_due_time_survives_the_trip_through_wall_clock_milliseconds() {
    let wall_now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let now = Instant::from_millis(5_000_000);
    let at = now + Duration::from_millis(3_600_123);
    let stored = unix_ms_of(at, now, wall_now);
    assert_eq!(stored, 1_790_000_000_000 + 3_600_123);
    // Restarted 100 ms later, the protocol clock where it was.
    let (now2, wall2) = (now + Duration::from_millis(100), wall_now + Duration::from_millis(100));
    assert_eq!(instant_of_unix_ms(stored, now2, wall2), at);
    // After a reboot: the protocol clock starts again near 0.
    let (now3, wall3) = (Instant::from_millis(40), wall_now + Duration::from_secs(60));
    assert_eq!(instant_of_unix_ms(stored, now3, wall3), now3 + Duration::from_millis(3_600_123 - 60_000));
    // Already past when read back: due now.
    assert_eq!(instant_of_unix_ms(stored, now2, wall_now + Duration::from_secs(7200)), now2);
    // The ends of both clocks give an answer, never a panic.
    assert_eq!(unix_ms_of(Instant::from_millis(0), Instant::from_millis(u64::MAX), SystemTime::UNIX_EPOCH), 0);
    let far = unix_ms_of(Instant::from_millis(u64::MAX), Instant::from_millis(0), wall_now);
    assert!(far > stored);
    assert_eq!(
        instant_of_unix_ms(u64::MAX, Instant::from_millis(u64::MAX - 1), SystemTime::UNIX_EPOCH),
        Instant::from_millis(u64::MAX)
    );
}
