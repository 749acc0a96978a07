//! A simulated node clock: true (virtual) milliseconds in, the node's own
//! monotonic milliseconds out, running fast or slow by a fixed rate error.

/// One node's clock. `drift_ppm` > 0 runs fast, < 0 slow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DriftClock {
    /// Rate error against true time, in parts per million.
    pub drift_ppm: i64,
}

impl DriftClock {
    /// What the node's clock reads at true time `real` (whole ms, rounded
    /// down, as a millisecond clock would).
    pub fn local_at(self, real: u64) -> u64 {
        let skew = i128::from(real) * i128::from(self.drift_ppm) / 1_000_000;
        u64::try_from(i128::from(real) + skew).unwrap_or(0)
    }

    /// The first true time, not before `not_before`, at which the node's
    /// clock reads `local` or later.
    pub fn real_for(self, local: u64, not_before: u64) -> u64 {
        let guess = i128::from(local) * 1_000_000 / (1_000_000 + i128::from(self.drift_ppm));
        let mut real = u64::try_from(guess.max(0)).unwrap_or(0);
        while self.local_at(real) < local {
            real += 1;
        }
        while real > 0 && self.local_at(real - 1) >= local {
            real -= 1;
        }
        real.max(not_before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_for_is_the_first_true_time_showing_the_reading() {
        for drift_ppm in [-20_000, -1000, 0, 1000, 20_000] {
            let clock = DriftClock { drift_ppm };
            for local in [0, 1, 999, 3000, 123_457] {
                let real = clock.real_for(local, 0);
                assert!(clock.local_at(real) >= local, "{drift_ppm} ppm, {local}");
                assert!(real == 0 || clock.local_at(real - 1) < local, "{drift_ppm} ppm, {local}");
            }
        }
        let slow = DriftClock { drift_ppm: -1000 };
        assert_eq!(slow.local_at(3000), 2997);
        assert_eq!(slow.real_for(50, 100), 100, "never before the floor");
    }
}
