//! Deterministic randomness and the little floating-point maths the
//! generators need.
//!
//! Invariants and why:
//! - Every random draw comes from a [`SeededRandom`] derived from the run's
//!   seed with [`stream`]: one independent stream per purpose (a flow's
//!   arrivals, a class's consumer assignment, passwords, ...). Adding a
//!   fault or a flow therefore never shifts the draws of another stream.
//! - Nothing here calls the platform's `ln`/`exp`/`powf`: those come from
//!   the system's libm and may differ in the last bit between platforms,
//!   which could change a rounded size or a microsecond and so the event
//!   log's hash. [`ln`] and [`exp`] use only `+ - * /`, `sqrt`, `floor`
//!   and bit manipulation, which IEEE 754 defines exactly (Rust never
//!   fuses a multiply and an add on its own), so the same seed gives the
//!   same bits on every machine. They are accurate to a few ulps, which is
//!   plenty for sampling.

use spine_core::random::{RandomSource, SeededRandom};

/// Labels of the independent random streams derived from one seed.
pub mod label {
    /// A flow's arrivals and message specs (index: the flow).
    pub const FLOW: u64 = 1;
    /// Which mailboxes of a class are slow or absent (index: the class).
    pub const CONSUMERS: u64 = 2;
    /// Mailbox passwords (index: the mailbox).
    pub const PASSWORD: u64 = 3;
    /// Credential salts for the directory.
    pub const SALT: u64 = 4;
    /// Poll phases (index: the mailbox).
    pub const PHASE: u64 = 5;
    /// Per-mailbox poll intervals within a class's range (index: the class).
    pub const INTERVAL: u64 = 6;
}

/// splitmix64's finaliser: a bijective mix of 64 bits.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed for stream `(label, index)` of the run seeded with `seed`.
pub fn derive(seed: u64, label: u64, index: u64) -> u64 {
    mix64(seed ^ mix64(label.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ mix64(index)))
}

/// The random stream `(label, index)` of the run seeded with `seed`.
pub fn stream(seed: u64, label: u64, index: u64) -> SeededRandom {
    SeededRandom::new(derive(seed, label, index))
}

/// 2^-53.
const UNIT: f64 = 1.0 / 9_007_199_254_740_992.0;

/// Uniform in `[0, 1)`, 53 random bits.
pub fn unit(rng: &mut impl RandomSource) -> f64 {
    (rng.next_u64() >> 11) as f64 * UNIT
}

/// Uniform in `(0, 1]`, 53 random bits (never zero, so its log is finite).
pub fn open_unit(rng: &mut impl RandomSource) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 * UNIT
}

/// Uniform integer in `[0, n)` (0 when `n` is 0), by Lemire's
/// multiply-high; the bias is below 2^-64 × n, negligible here.
pub fn below(rng: &mut impl RandomSource, n: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

/// Exponentially distributed with mean 1.
pub fn exp1(rng: &mut impl RandomSource) -> f64 {
    -ln(open_unit(rng))
}

/// Standard normal, by Marsaglia's polar method (0 in the astronomically
/// unlikely case of 64 rejections in a row, so it always terminates).
pub fn std_normal(rng: &mut impl RandomSource) -> f64 {
    for _ in 0..64 {
        let u = 2.0 * unit(rng) - 1.0;
        let v = 2.0 * unit(rng) - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * ln(s) / s).sqrt();
        }
    }
    0.0
}

/// ln 2, high part (fdlibm's split: its low bits are zero, so `k × LN2_HI`
/// is exact for the `k` that occur).
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
/// ln 2 - LN2_HI.
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
const MANTISSA_BITS: u32 = 52;
const MANTISSA_MASK: u64 = (1 << MANTISSA_BITS) - 1;
const EXPONENT_BIAS: i64 = 1023;

/// Natural logarithm using only exactly-specified IEEE operations.
/// `ln(0) = -inf`, negative or NaN input gives NaN, `ln(inf) = inf`.
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    let (mut x, mut e) = (x, 0i64);
    if x < f64::MIN_POSITIVE {
        // Subnormal: scale into the normal range first (exact).
        x *= 18_014_398_509_481_984.0; // 2^54
        e -= 54;
    }
    let bits = x.to_bits();
    e += ((bits >> MANTISSA_BITS) & 0x7FF) as i64 - EXPONENT_BIAS;
    let mut m = f64::from_bits((bits & MANTISSA_MASK) | ((EXPONENT_BIAS as u64) << MANTISSA_BITS));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln(m) = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716, s^2 <= 0.0295.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut series = 0.0;
    for k in (0..14).rev() {
        series = series * s2 + 1.0 / f64::from(2 * k + 1);
    }
    let e = e as f64;
    e * LN2_HI + (e * LN2_LO + 2.0 * s * series)
}

/// `e^x` using only exactly-specified IEEE operations.
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x > 709.782_712_893_384 {
        return f64::INFINITY;
    }
    if x < -745.2 {
        return 0.0;
    }
    let k = (x * std::f64::consts::LOG2_E + 0.5).floor();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // |r| <= 0.35: 18 Taylor terms are far below an ulp.
    let mut p = 1.0;
    for n in (1..=18).rev() {
        p = 1.0 + p * r / f64::from(n);
    }
    scale_by_power_of_two(p, k as i64)
}

/// `b^e` for `b > 0` (1 when `e` is 0, 0 when `b` is 0 and `e > 0`).
pub fn powf(b: f64, e: f64) -> f64 {
    if e == 0.0 {
        return 1.0;
    }
    if b == 0.0 && e > 0.0 {
        return 0.0;
    }
    exp(e * ln(b))
}

/// `x * 2^k`, exactly where representable.
fn scale_by_power_of_two(x: f64, k: i64) -> f64 {
    let pow2 = |k: i64| f64::from_bits(((k + EXPONENT_BIAS) as u64) << MANTISSA_BITS);
    match k {
        k if k > 1023 => x * pow2(1023) * pow2(k - 1023),
        k if k < -1022 => x * pow2(-1022) * pow2((k + 1022).max(-1022)),
        k => x * pow2(k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn ln_and_exp_edge_cases() {
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        assert!(close(ln(5e-324), (5e-324f64).ln(), 1e-12));
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
        assert!(close(exp(700.0), 700f64.exp(), 1e-13));
        assert!(close(exp(-740.0), (-740f64).exp(), 1e-6));
        assert_eq!(powf(3.0, 0.0), 1.0);
        assert_eq!(powf(0.0, 2.0), 0.0);
    }

    #[test]
    fn streams_are_reproducible_and_independent() {
        let draw = |seed, label, index| stream(seed, label, index).next_u64();
        assert_eq!(draw(7, label::FLOW, 0), draw(7, label::FLOW, 0));
        assert_ne!(draw(7, label::FLOW, 0), draw(7, label::FLOW, 1));
        assert_ne!(draw(7, label::FLOW, 0), draw(7, label::PHASE, 0));
        assert_ne!(draw(7, label::FLOW, 0), draw(8, label::FLOW, 0));
    }

    #[test]
    fn samplers_have_the_right_moments() {
        let mut rng = stream(1, 99, 0);
        let n = 200_000;
        let mean_exp = (0..n).map(|_| exp1(&mut rng)).sum::<f64>() / f64::from(n);
        assert!((mean_exp - 1.0).abs() < 0.01, "{mean_exp}");
        let zs: Vec<f64> = (0..n).map(|_| std_normal(&mut rng)).collect();
        let mean = zs.iter().sum::<f64>() / f64::from(n);
        let var = zs.iter().map(|z| (z - mean) * (z - mean)).sum::<f64>() / f64::from(n);
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
        let us: Vec<f64> = (0..n).map(|_| unit(&mut rng)).collect();
        assert!(us.iter().all(|u| (0.0..1.0).contains(u)));
        assert!((0..1000).all(|_| below(&mut rng, 7) < 7));
        assert_eq!(below(&mut rng, 0), 0);
    }

    proptest! {
        #[test]
        fn ln_matches_std(x in 1e-300f64..1e300) {
            prop_assert!(close(ln(x), x.ln(), 1e-14) || (ln(x) - x.ln()).abs() < 1e-15);
        }

        #[test]
        fn exp_matches_std(x in -700f64..700.0) {
            prop_assert!(close(exp(x), x.exp(), 1e-14));
        }

        #[test]
        fn powf_matches_std(b in 1e-3f64..1e6, e in -3f64..3.0) {
            prop_assert!(close(powf(b, e), b.powf(e), 1e-12));
        }

        #[test]
        fn open_unit_is_never_zero(seed: u64) {
            let mut rng = SeededRandom::new(seed);
            for _ in 0..64 {
                let u = open_unit(&mut rng);
                prop_assert!(u > 0.0 && u <= 1.0);
            }
        }
    }
}
