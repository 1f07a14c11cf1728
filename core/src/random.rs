//! Randomness as an injected dependency.
//!
//! Invariants and why:
//! - Core never asks the operating system for random numbers: everything
//!   random (message-id suffixes, jitter, ...) comes through a
//!   [`RandomSource`] passed in by the caller. The simulator passes a
//!   [`SeededRandom`], so a failing run replays bit-for-bit from its seed.
//! - [`SeededRandom`] is xoshiro256** (Blackman & Vigna) with its 256-bit
//!   state expanded from a `u64` seed by splitmix64, as the authors
//!   recommend. The same seed always yields the same stream on every
//!   platform (pure integer arithmetic, fixed little-endian byte order in
//!   [`RandomSource::fill_bytes`]). It is fast and statistically good but
//!   **not** cryptographically secure; secrets must come from the production
//!   OS-backed source, which lives outside core.

/// A source of uniformly distributed random bits.
pub trait RandomSource: Send {
    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64;

    /// Fills `buf` with random bytes, taking eight bytes (little-endian) from
    /// each [`RandomSource::next_u64`] call; a partial last word is truncated.
    fn fill_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            for (dst, src) in chunk.iter_mut().zip(word) {
                *dst = src;
            }
        }
    }
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }

    fn fill_bytes(&mut self, buf: &mut [u8]) {
        (**self).fill_bytes(buf);
    }
}

impl<R: RandomSource + ?Sized> RandomSource for Box<R> {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }

    fn fill_bytes(&mut self, buf: &mut [u8]) {
        (**self).fill_bytes(buf);
    }
}

/// Deterministic xoshiro256** generator seeded through splitmix64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededRandom {
    state: [u64; 4],
}

impl SeededRandom {
    /// A generator whose whole stream is determined by `seed`.
    pub fn new(seed: u64) -> SeededRandom {
        let mut sm = seed;
        // splitmix64 is a bijection of its counter, so four consecutive
        // outputs are distinct and the state can never be all zeros (the one
        // state xoshiro cannot leave).
        let state = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        SeededRandom { state }
    }
}

impl RandomSource for SeededRandom {
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

/// One step of splitmix64: advances `state` and returns the mixed output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splitmix64_matches_reference() {
        // First output of the reference splitmix64.c seeded with 0.
        let mut s = 0;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn golden_stream_seed_0() {
        // Computed with an independent implementation of splitmix64 +
        // xoshiro256**; pinned so the stream never silently changes (recorded
        // simulator seeds depend on it).
        let mut r = SeededRandom::new(0);
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                0x99EC_5F36_CB75_F2B4,
                0xBF6E_1F78_4956_452A,
                0x1A5F_849D_4933_E6E0,
                0x6AA5_94F1_262D_2D2C
            ]
        );
    }

    #[test]
    fn golden_stream_seed_42() {
        let mut r = SeededRandom::new(42);
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                0x1578_0B2E_0C2E_C716,
                0x6104_D986_6D11_3A7E,
                0xAE17_5332_39E4_99A1,
                0xECB8_AD47_03B3_60A1
            ]
        );
    }

    #[test]
    fn fill_bytes_is_little_endian_words() {
        let mut a = SeededRandom::new(0);
        let mut buf = [0u8; 11];
        a.fill_bytes(&mut buf);
        assert_eq!(buf[..8], 0x99EC_5F36_CB75_F2B4u64.to_le_bytes());
        assert_eq!(buf[8..], 0xBF6E_1F78_4956_452Au64.to_le_bytes()[..3]);
        a.fill_bytes(&mut []);
        assert_eq!(a.next_u64(), 0x1A5F_849D_4933_E6E0);
    }

    #[test]
    fn works_through_dyn_and_box() {
        let mut r = SeededRandom::new(0);
        let d: &mut dyn RandomSource = &mut r;
        assert_eq!(d.next_u64(), 0x99EC_5F36_CB75_F2B4);
        let mut b: Box<dyn RandomSource> = Box::new(SeededRandom::new(0));
        assert_eq!(b.next_u64(), 0x99EC_5F36_CB75_F2B4);
        fn first<R: RandomSource>(mut source: R) -> u64 {
            source.next_u64()
        }
        assert_eq!(first(&mut r), 0xBF6E_1F78_4956_452A);
    }

    proptest! {
        #[test]
        fn same_seed_same_stream(seed: u64) {
            let mut a = SeededRandom::new(seed);
            let mut b = SeededRandom::new(seed);
            for _ in 0..32 {
                prop_assert_eq!(a.next_u64(), b.next_u64());
            }
            let (mut x, mut y) = ([0u8; 37], [0u8; 37]);
            a.fill_bytes(&mut x);
            b.fill_bytes(&mut y);
            prop_assert_eq!(x, y);
        }

        #[test]
        fn different_seeds_differ(seed: u64, other: u64) {
            prop_assume!(seed != other);
            let a: Vec<u64> = {
                let mut r = SeededRandom::new(seed);
                (0..4).map(|_| r.next_u64()).collect()
            };
            let b: Vec<u64> = {
                let mut r = SeededRandom::new(other);
                (0..4).map(|_| r.next_u64()).collect()
            };
            prop_assert_ne!(a, b);
        }

        #[test]
        fn fill_bytes_any_length(seed: u64, len in 0usize..100) {
            let mut r = SeededRandom::new(seed);
            let mut buf = vec![0u8; len];
            r.fill_bytes(&mut buf);
            let mut words = SeededRandom::new(seed);
            let expected: Vec<u8> = (0..len.div_ceil(8))
                .flat_map(|_| words.next_u64().to_le_bytes())
                .take(len)
                .collect();
            prop_assert_eq!(buf, expected);
        }
    }
}
