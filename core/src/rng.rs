//! The core's only source of randomness: a generator seeded by the driver.
//!
//! It is SplitMix64, written out here rather than taken from `rand` because
//! the protocol needs three things a general-purpose RNG crate does not
//! promise: the state must be `Hash + Eq` (the model checker stores whole
//! nodes), the stream must never change between crate versions (a pinned
//! simulation seed must replay the same run forever), and the core must stay
//! dependency-free. It is used only for election jitter, never for safety.

/// A seeded jitter generator owned by one node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator whose whole future output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Jitter { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..=max`.
    pub fn up_to(&mut self, max: u64) -> u64 {
        if max == 0 {
            0
        } else {
            self.next_u64() % (max + 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Jitter;

    #[test]
    fn same_seed_same_stream_and_bounds_hold() {
        let mut a = Jitter::new(7);
        let mut b = Jitter::new(7);
        for _ in 0..1000 {
            let x = a.up_to(300);
            assert_eq!(x, b.up_to(300));
            assert!(x <= 300);
        }
        assert_ne!(Jitter::new(1).next_u64(), Jitter::new(2).next_u64());
    }

    #[test]
    fn it_is_splitmix64_and_covers_its_range() {
        // SplitMix64's published first outputs for seed 0.
        let mut g = Jitter::new(0);
        assert_eq!(g.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let mut seen = [false; 4];
        for _ in 0..200 {
            seen[usize::try_from(g.up_to(3)).expect("small")] = true;
        }
        assert_eq!(seen, [true; 4], "0..=3 is covered, both ends included");
        assert_eq!(g.up_to(0), 0);
    }
}
