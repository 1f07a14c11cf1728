//! The production clock and randomness: the real-world implementations of
//! [`spine_core::time::Clock`] and [`spine_core::random::RandomSource`].
//!
//! Core never reads the wall clock or the operating system's randomness;
//! the binary builds these two and passes them in, while the simulator
//! passes `ManualClock` and `SeededRandom` instead.
//!
//! Invariants and why:
//! - [`SystemClock::now`] never panics and never leaves the calendar domain:
//!   a wall clock set before 1970 reads as [`Timestamp::ZERO`], one past
//!   9999-12-31 as [`Timestamp::MAX`]. The wall clock can jump either way
//!   (NTP, an operator); callers that need ordering keep their own
//!   monotonic state.
//! - [`OsRandom`] asks the operating system (`getrandom`) for its seed
//!   exactly once, in the fallible [`OsRandom::new`]. If the OS cannot
//!   supply randomness the node refuses to start; there is no weaker
//!   fallback (such as the time or the process id). After construction
//!   every draw is in-process arithmetic, so the infallible
//!   [`RandomSource`] methods cannot fail or panic.
//! - Quality: the stream is `SeededRandom` (xoshiro256**) from a 64-bit OS
//!   seed. Values are unpredictable to anyone who has not seen earlier
//!   output, which is what salts and message-id suffixes need, but the
//!   generator is **not** cryptographically secure: its state can be
//!   reconstructed from a few consecutive outputs. Do not use it for
//!   secrets that an observer of other outputs must not guess (session
//!   tokens, keys); those need a CSPRNG.
//! - `Debug` of [`OsRandom`] never prints the generator state.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use spine_core::random::{RandomSource, SeededRandom};
use spine_core::time::{Clock, Timestamp};
use spine_core::ErrorCode;

/// Errors from the operating-system services in this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemError {
    /// The OS random number source failed.
    #[error("the operating system could not supply random bytes ({detail}); the node needs OS randomness for password salts and message ids and will not start without it; check that getrandom(2) or /dev/urandom is available to this process (containers and seccomp profiles can block it)")]
    RandomUnavailable {
        /// The OS error, as text.
        detail: String,
    },
}

impl ErrorCode for SystemError {
    fn code(&self) -> &'static str {
        match self {
            SystemError::RandomUnavailable { .. } => "SYS_RANDOM_UNAVAILABLE",
        }
    }
}

/// The wall clock, in microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The system wall clock.
    pub fn new() -> SystemClock {
        SystemClock
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        timestamp_of(SystemTime::now())
    }
}

/// Converts a wall-clock reading, clamping it into the calendar domain.
fn timestamp_of(time: SystemTime) -> Timestamp {
    match time.duration_since(UNIX_EPOCH) {
        // Before the epoch: the clock is wrong; read it as the epoch.
        Err(_) => Timestamp::ZERO,
        Ok(since) => {
            let micros = u64::try_from(since.as_micros()).unwrap_or(u64::MAX);
            Timestamp::from_micros(micros.min(Timestamp::MAX.as_micros()))
        }
    }
}

/// Randomness seeded once from the operating system.
pub struct OsRandom {
    inner: SeededRandom,
}

impl OsRandom {
    /// Seeds a generator from the OS; fails (rather than falling back to
    /// anything weaker) if the OS cannot supply randomness.
    pub fn new() -> Result<OsRandom, SystemError> {
        let seed = getrandom::u64().map_err(|e| SystemError::RandomUnavailable {
            detail: e.to_string(),
        })?;
        Ok(OsRandom {
            inner: SeededRandom::new(seed),
        })
    }
}

impl fmt::Debug for OsRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OsRandom { .. }")
    }
}

impl RandomSource for OsRandom {
    fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn clock_reads_the_wall_clock() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        let now = SystemClock::new().now().as_micros();
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        assert!(
            before <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
        // Sanity: after 2020-01-01.
        assert!(now > 1_577_836_800_000_000);
    }

    #[test]
    fn clock_is_usable_as_a_trait_object() {
        let clock: Box<dyn Clock> = Box::new(SystemClock);
        assert!(clock.now() > Timestamp::ZERO);
    }

    #[test]
    fn conversion_is_exact_in_microseconds() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(
            timestamp_of(t),
            Timestamp::from_micros(1_700_000_000_123_456)
        );
        assert_eq!(timestamp_of(UNIX_EPOCH), Timestamp::ZERO);
    }

    #[test]
    fn before_the_epoch_clamps_to_zero() {
        let t = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(timestamp_of(t), Timestamp::ZERO);
        let t = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(timestamp_of(t), Timestamp::ZERO);
    }

    #[test]
    fn past_year_9999_clamps_to_max() {
        let t = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(timestamp_of(t), Timestamp::MAX);
    }

    #[test]
    fn os_random_instances_are_independent() {
        let mut a = OsRandom::new().unwrap();
        let mut b = OsRandom::new().unwrap();
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        // Equal only if the OS returned the same 64-bit seed twice.
        assert_ne!(xa, xb);
    }

    #[test]
    fn os_random_fills_any_length() {
        let mut r = OsRandom::new().unwrap();
        for len in [0usize, 1, 7, 8, 9, 16, 33] {
            let mut buf = vec![0u8; len];
            r.fill_bytes(&mut buf);
            if len >= 16 {
                assert!(buf.iter().any(|&b| b != 0), "{len} bytes all zero");
            }
        }
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        r.fill_bytes(&mut x);
        r.fill_bytes(&mut y);
        assert_ne!(x, y);
    }

    #[test]
    fn os_random_debug_hides_state() {
        let r = OsRandom::new().unwrap();
        assert_eq!(format!("{r:?}"), "OsRandom { .. }");
    }

    #[test]
    fn os_random_works_as_dyn_source() {
        let mut r = OsRandom::new().unwrap();
        let d: &mut dyn RandomSource = &mut r;
        let mut salt = [0u8; 16];
        d.fill_bytes(&mut salt);
        assert!(salt.iter().any(|&b| b != 0));
    }

    #[test]
    fn error_has_a_stable_code_and_says_what_to_check() {
        let e = SystemError::RandomUnavailable {
            detail: "errno 38".into(),
        };
        assert_eq!(e.code(), "SYS_RANDOM_UNAVAILABLE");
        assert!(e.to_string().contains("getrandom(2)"));
    }
}
