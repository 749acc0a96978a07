//! How close the active site came to losing its lease: the lease it had
//! left at the moment each renewal took effect (a renewal round that a
//! majority acknowledged moved the lease end later).
//!
//! With the heartbeat at a third of the lease (the default), a healthy
//! renewal takes effect with about two thirds of the lease left. Less than
//! a third left (a near miss) means at least one renewal round was lost or
//! late: under CPU load or on a lossy link the next such delay ends the
//! lease, the site steps down and a failover follows that nothing else
//! called for. A lease that had already run out when it was extended is not
//! a renewal (the site was no longer active) and is not counted.
//!
//! Plain data and pure functions: the protocol loop gives [`renewal`] the
//! lease ends it published before and after a step; nothing here reads a
//! clock or decides anything.

use std::time::Duration;

use failover_core::Instant;

/// Upper bounds of the histogram's buckets, in milliseconds: from 10 ms
/// (the near misses of a 600 ms lease) to 10 s. Renewals with more left
/// fall in the `+Inf` bucket.
pub const BUCKETS_MS: [u64; 14] = [10, 25, 50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000];

/// A renewal with less than `lease / NEAR_MISS_DIVISOR` left is a near miss.
pub const NEAR_MISS_DIVISOR: u32 = 3;

/// One renewal, as it took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Renewal {
    /// The lease left just before it: the old end less the time it took
    /// effect.
    pub margin: Duration,
    /// Less than a third of the lease was left.
    pub near_miss: bool,
}

/// The renewal a step made at `at`, if it moved the end of this site's
/// lease from `before` to a later `after` while the lease was still valid
/// (`before` after `at`). `None` for no lease on either side (not active),
/// an end that did not move, or a lease that had run out by `at`.
pub fn renewal(before: Option<Instant>, after: Option<Instant>, at: Instant, lease: Duration) -> Option<Renewal> {
    let (before, after) = (before?, after?);
    if after <= before || before <= at {
        return None;
    }
    let margin = before.saturating_since(at);
    Some(Renewal { margin, near_miss: margin < lease / NEAR_MISS_DIVISOR })
}

/// Every renewal since start, as the histogram and the near-miss counter
/// show them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Margins {
    /// Renewals per bucket of [`BUCKETS_MS`] (each counted once, in the
    /// first bucket whose bound is at least its margin), then those above
    /// the last bound.
    pub buckets: [u64; BUCKETS_MS.len() + 1],
    /// The sum of every margin.
    pub sum: Duration,
    /// Renewals that took effect with less than a third of the lease left.
    pub near_misses: u64,
}

impl Margins {
    /// Counts one renewal.
    pub fn record(&mut self, r: Renewal) {
        let ms = r.margin.as_millis();
        let bucket = BUCKETS_MS.iter().position(|&bound| ms <= u128::from(bound)).unwrap_or(BUCKETS_MS.len());
        self.buckets[bucket] = self.buckets[bucket].saturating_add(1);
        self.sum = self.sum.saturating_add(r.margin);
        self.near_misses = self.near_misses.saturating_add(u64::from(r.near_miss));
    }

    /// How many renewals were counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().fold(0, |total, &n| total.saturating_add(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(3_000);

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn the_margin_is_the_old_end_less_the_time_the_renewal_took_effect() {
        let r = renewal(Some(at(12_000)), Some(at(13_000)), at(10_000), LEASE);
        assert_eq!(r, Some(Renewal { margin: Duration::from_millis(2_000), near_miss: false }));
    }

    #[test]
    fn less_than_a_third_of_the_lease_left_is_a_near_miss_and_a_third_is_not() {
        let fast = Duration::from_millis(600);
        for (lease, left_ms, near_miss) in
            [(LEASE, 1_000, false), (LEASE, 999, true), (LEASE, 1, true), (fast, 200, false), (fast, 199, true)]
        {
            let r = renewal(Some(at(10_000 + left_ms)), Some(at(20_000)), at(10_000), lease);
            let margin = Duration::from_millis(left_ms);
            assert_eq!(r, Some(Renewal { margin, near_miss }), "{left_ms} ms left of {lease:?}");
        }
    }

    #[test]
    fn a_lease_that_had_run_out_is_not_a_renewal() {
        assert_eq!(renewal(Some(at(10_000)), Some(at(13_000)), at(10_000), LEASE), None);
        assert_eq!(renewal(Some(at(9_000)), Some(at(13_000)), at(10_000), LEASE), None);
    }

    #[test]
    fn an_end_that_did_not_move_later_or_no_lease_is_not_a_renewal() {
        assert_eq!(renewal(Some(at(12_000)), Some(at(12_000)), at(10_000), LEASE), None);
        assert_eq!(renewal(Some(at(12_000)), Some(at(11_000)), at(10_000), LEASE), None);
        assert_eq!(renewal(None, Some(at(13_000)), at(10_000), LEASE), None, "a new lease (elected, resumed)");
        assert_eq!(renewal(Some(at(12_000)), None, at(10_000), LEASE), None, "stepped down");
    }

    #[test]
    fn each_renewal_is_counted_in_the_first_bucket_that_holds_it() {
        let mut margins = Margins::default();
        for (ms, near_miss) in [(10, true), (11, true), (2_000, false), (10_001, false)] {
            margins.record(Renewal { margin: Duration::from_millis(ms), near_miss });
        }
        let mut expected = [0; BUCKETS_MS.len() + 1];
        expected[0] = 1; // 10 ms: le 0.01
        expected[1] = 1; // 11 ms: le 0.025
        expected[10] = 1; // 2 s: le 2
        expected[BUCKETS_MS.len()] = 1; // beyond 10 s: +Inf
        assert_eq!(margins.buckets, expected);
        assert_eq!(margins.count(), 4);
        assert_eq!(margins.sum, Duration::from_millis(12_022));
        assert_eq!(margins.near_misses, 2);
    }
}
