//! [`MessageId`] and [`MessageIdGenerator`].
//!
//! A MESH message id is `YYYYMMDDHHMMSSffffff_XXXXXX`: the 20-digit UTC
//! creation time to the microsecond, `_`, and 6 upper-case hex digits.
//!
//! Invariants and why:
//! - The 20 digits form a real UTC date-time in 1970..=9999 and the suffix is
//!   exactly 6 characters of `0-9A-F`. Because every field is fixed-width,
//!   comparing the text compares the time first, so the derived `Ord` sorts
//!   ids by creation time (ties broken by suffix).
//! - One [`MessageIdGenerator`] never issues two ids with the same or a
//!   decreasing timestamp, even if the clock stalls or steps backwards: each
//!   id's time is `max(now, last + 1µs)`. Ids from one generator are
//!   therefore unique regardless of the random suffix, and a generator that
//!   has [`MessageIdGenerator::observe`]d every recovered id cannot re-issue
//!   one of them after a restart.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::error::bounded_input;
use super::{string_id_common, IdError};
use crate::random::RandomSource;
use crate::time::Timestamp;

/// Length of a message id in characters.
const LEN: usize = 27;
/// Number of time digits at the front.
const TIME_DIGITS: usize = 20;
/// Largest suffix value (6 hex digits).
const MAX_SUFFIX: u32 = 0xFF_FFFF;

/// A validated MESH message id; orders by creation time.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
#[rkyv(derive(Debug))]
pub struct MessageId(String);

impl MessageId {
    /// Length of every message id, in characters.
    pub const LEN: usize = LEN;

    /// Parses a message id, checking its shape and that its time is a real
    /// UTC date-time.
    pub fn parse(input: &str) -> Result<MessageId, IdError> {
        let len = input.chars().count();
        if len != LEN {
            return Err(format_error(
                input,
                format!("is {len} characters long, not {LEN}"),
            ));
        }
        for (position, c) in input.chars().enumerate() {
            let (ok, expected) = match position {
                p if p < TIME_DIGITS => (c.is_ascii_digit(), "a digit"),
                TIME_DIGITS => (c == '_', "'_'"),
                _ => (
                    matches!(c, '0'..='9' | 'A'..='F'),
                    "an upper-case hex digit (0-9, A-F)",
                ),
            };
            if !ok {
                return Err(format_error(
                    input,
                    format!("has {c:?} at position {position} where {expected} belongs"),
                ));
            }
        }
        // Every character is ASCII now, so byte offsets are character offsets.
        let time = input.get(..TIME_DIGITS).unwrap_or_default();
        Timestamp::parse_mesh(time).map_err(|source| IdError::MessageTime {
            input: bounded_input(input),
            source,
        })?;
        Ok(MessageId(input.to_owned()))
    }

    /// Builds the id for `timestamp` with the given 24-bit `suffix`.
    pub fn from_parts(timestamp: Timestamp, suffix: u32) -> Result<MessageId, IdError> {
        if suffix > MAX_SUFFIX {
            return Err(IdError::MessageSuffix { suffix });
        }
        Timestamp::try_from_micros(timestamp.as_micros()).map_err(|source| {
            IdError::MessageTime {
                input: timestamp.as_micros().to_string(),
                source,
            }
        })?;
        Ok(MessageId(format!(
            "{}_{suffix:06X}",
            timestamp.format_mesh()
        )))
    }

    /// The creation time encoded in the id.
    pub fn timestamp(&self) -> Timestamp {
        // Validated on construction; the fallback is unreachable for a value
        // built by `parse`/`from_parts` and only guards against a value
        // deserialised from an archive without re-validation.
        self.0
            .get(..TIME_DIGITS)
            .and_then(|t| Timestamp::parse_mesh(t).ok())
            .unwrap_or(Timestamp::ZERO)
    }

    /// The 24-bit random suffix.
    pub fn suffix(&self) -> u32 {
        self.0
            .get(TIME_DIGITS + 1..)
            .and_then(|s| u32::from_str_radix(s, 16).ok())
            .unwrap_or(0)
    }
}

fn format_error(input: &str, problem: String) -> IdError {
    IdError::MessageFormat {
        input: bounded_input(input),
        problem,
    }
}

string_id_common!(MessageId);

/// Issues strictly increasing [`MessageId`]s.
///
/// The generator is plain data (no clock, no randomness inside): the caller
/// passes the current time and a [`RandomSource`] to each
/// [`MessageIdGenerator::next`], which keeps it deterministic under the
/// simulator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageIdGenerator {
    last: Timestamp,
}

impl MessageIdGenerator {
    /// A generator that has issued nothing yet.
    pub fn new() -> MessageIdGenerator {
        MessageIdGenerator::default()
    }

    /// The newest timestamp issued or observed so far.
    pub fn last(&self) -> Timestamp {
        self.last
    }

    /// Issues the next id: its time is `max(now, last + 1µs)` and its suffix
    /// is 24 random bits from `rng`.
    ///
    /// Fails only if that time would pass 9999-12-31T23:59:59.999999Z
    /// (a clock far in the future), because no later id could be written.
    pub fn next(
        &mut self,
        now: Timestamp,
        rng: &mut dyn RandomSource,
    ) -> Result<MessageId, IdError> {
        let exhausted = IdError::MessageClockExhausted { last: self.last };
        let floor = self
            .last
            .checked_add(Duration::from_micros(1))
            .ok_or_else(|| exhausted.clone())?;
        let at = now.max(floor);
        if at > Timestamp::MAX {
            return Err(exhausted);
        }
        // The top bits of xoshiro output are the strongest; 64 - 40 = 24 bits.
        let suffix = (rng.next_u64() >> 40) as u32;
        let id = MessageId::from_parts(at, suffix)?;
        self.last = at;
        Ok(id)
    }

    /// Records an id issued earlier (e.g. found during recovery) so that no
    /// later id from this generator has the same or an earlier timestamp.
    pub fn observe(&mut self, id: &MessageId) {
        self.last = self.last.max(id.timestamp());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;
    use crate::ErrorCode;
    use proptest::prelude::*;

    const SAMPLE: &str = "20200601122152994285_D59900";

    #[test]
    fn parses_mesh_ids() {
        let id = MessageId::parse(SAMPLE).unwrap();
        assert_eq!(id.as_str(), SAMPLE);
        assert_eq!(id.timestamp().to_rfc3339(), "2020-06-01T12:21:52.994285Z");
        assert_eq!(id.suffix(), 0xD5_9900);
        assert_eq!(MessageId::from_parts(id.timestamp(), 0xD5_9900), Ok(id));
    }

    #[test]
    fn rejects_malformed_ids() {
        let cases = [
            ("", "is 0 characters long, not 27"),
            (
                "20200601122152994285-D59900",
                "'-' at position 20 where '_' belongs",
            ),
            (
                "20200601122152994285_d59900",
                "'d' at position 21 where an upper-case hex",
            ),
            (
                "2020060112215299428X_D59900",
                "'X' at position 19 where a digit belongs",
            ),
            ("20200601122152994285_D5990G", "'G' at position 26"),
            ("20200601122152994285_D599000", "28 characters long"),
            ("２0200601122152994285_D59900", "'２' at position 0"),
        ];
        for (input, expected) in cases {
            let e = MessageId::parse(input).unwrap_err();
            assert_eq!(e.code(), "ID_MESSAGE_INVALID");
            assert!(e.to_string().contains(expected), "{input}: {e}");
        }
        let e = MessageId::parse("20210229122152994285_D59900").unwrap_err();
        assert!(matches!(e, IdError::MessageTime { .. }), "{e}");
        assert!(
            e.to_string().contains("day 29 does not exist in 2021-02"),
            "{e}"
        );
        assert!(MessageId::parse("19691231235959999999_000000").is_err());
    }

    #[test]
    fn from_parts_checks_inputs() {
        assert!(matches!(
            MessageId::from_parts(Timestamp::ZERO, 0x100_0000),
            Err(IdError::MessageSuffix { .. })
        ));
        assert!(MessageId::from_parts(Timestamp::from_micros(u64::MAX), 0).is_err());
        assert_eq!(
            MessageId::from_parts(Timestamp::ZERO, 0xA)
                .unwrap()
                .as_str(),
            "19700101000000000000_00000A"
        );
    }

    #[test]
    fn generator_survives_stalled_and_backward_clocks() {
        let mut g = MessageIdGenerator::new();
        let mut rng = SeededRandom::new(7);
        let t = Timestamp::from_micros(1_795_480_569_123_456);
        let a = g.next(t, &mut rng).unwrap();
        let b = g.next(t, &mut rng).unwrap();
        let c = g.next(Timestamp::from_micros(5), &mut rng).unwrap();
        assert_eq!(a.timestamp(), t);
        assert_eq!(b.timestamp().as_micros(), t.as_micros() + 1);
        assert_eq!(c.timestamp().as_micros(), t.as_micros() + 2);
        assert!(a < b && b < c);
    }

    #[test]
    fn generator_respects_observed_ids() {
        let recovered = MessageId::parse(SAMPLE).unwrap();
        let mut g = MessageIdGenerator::new();
        g.observe(&recovered);
        g.observe(&MessageId::parse("20000101000000000000_000000").unwrap());
        assert_eq!(g.last(), recovered.timestamp());
        let mut rng = SeededRandom::new(1);
        let next = g.next(Timestamp::ZERO, &mut rng).unwrap();
        assert!(next > recovered);
        assert_eq!(
            next.timestamp().as_micros(),
            recovered.timestamp().as_micros() + 1
        );
    }

    #[test]
    fn generator_reports_exhaustion_instead_of_repeating() {
        let mut g = MessageIdGenerator::new();
        let mut rng = SeededRandom::new(1);
        let last = g.next(Timestamp::MAX, &mut rng).unwrap();
        assert_eq!(last.timestamp(), Timestamp::MAX);
        let e = g.next(Timestamp::MAX, &mut rng).unwrap_err();
        assert_eq!(e.code(), "ID_MESSAGE_CLOCK_EXHAUSTED");
        let mut g = MessageIdGenerator::new();
        assert!(g.next(Timestamp::from_micros(u64::MAX), &mut rng).is_err());
        assert_eq!(
            g.last(),
            Timestamp::ZERO,
            "a failed next must not move the generator"
        );
    }

    #[test]
    fn serde_and_rkyv() {
        let id = MessageId::parse(SAMPLE).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{SAMPLE}\""));
        assert_eq!(serde_json::from_str::<MessageId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<MessageId>("\"20200601122152994285_d59900\"").is_err());
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&id).unwrap();
        assert_eq!(
            rkyv::from_bytes::<MessageId, rkyv::rancor::Error>(&bytes).unwrap(),
            id
        );
    }

    proptest! {
        #[test]
        fn ids_sort_by_time(a in 0..=Timestamp::MAX.as_micros(), b in 0..=Timestamp::MAX.as_micros(), sa in 0..=MAX_SUFFIX, sb in 0..=MAX_SUFFIX) {
            let ia = MessageId::from_parts(Timestamp::from_micros(a), sa).unwrap();
            let ib = MessageId::from_parts(Timestamp::from_micros(b), sb).unwrap();
            prop_assert_eq!(ia.cmp(&ib), (a, sa).cmp(&(b, sb)));
        }

        #[test]
        fn valid_ids_round_trip(micros in 0..=Timestamp::MAX.as_micros(), suffix in 0..=MAX_SUFFIX) {
            let id = MessageId::from_parts(Timestamp::from_micros(micros), suffix).unwrap();
            let shown = id.to_string();
            let parsed = MessageId::parse(&shown).unwrap();
            prop_assert_eq!(&parsed, &id);
            prop_assert_eq!(parsed.timestamp().as_micros(), micros);
            prop_assert_eq!(parsed.suffix(), suffix);
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<MessageId>(&json).unwrap(), id);
        }

        #[test]
        fn generated_ids_strictly_increase(
            seed: u64,
            start in 0u64..=Timestamp::MAX.as_micros() / 2,
            steps in proptest::collection::vec(-1_000i64..1_000, 1..100),
        ) {
            let mut g = MessageIdGenerator::new();
            let mut rng = SeededRandom::new(seed);
            let mut now = start;
            let mut prev: Option<MessageId> = None;
            for step in steps {
                now = now.saturating_add_signed(step);
                let id = g.next(Timestamp::from_micros(now), &mut rng).unwrap();
                prop_assert_eq!(MessageId::parse(id.as_str()), Ok(id.clone()));
                prop_assert!(id.timestamp() >= Timestamp::from_micros(now));
                if let Some(p) = &prev {
                    prop_assert!(p < &id, "{} !< {}", p, id);
                    prop_assert!(p.timestamp() < id.timestamp());
                }
                prev = Some(id);
            }
        }

        #[test]
        fn restored_generator_never_reissues(seed: u64, issued in proptest::collection::vec(0..=Timestamp::MAX.as_micros() - 1, 1..20), now in 0..=Timestamp::MAX.as_micros()) {
            let mut rng = SeededRandom::new(seed);
            let ids: Vec<MessageId> = issued
                .iter()
                .map(|&t| MessageId::from_parts(Timestamp::from_micros(t), 0).unwrap())
                .collect();
            let mut g = MessageIdGenerator::new();
            for id in &ids {
                g.observe(id);
            }
            let next = g.next(Timestamp::from_micros(now), &mut rng).unwrap();
            prop_assert!(ids.iter().all(|old| old.timestamp() < next.timestamp()));
        }

        #[test]
        fn arbitrary_input_never_panics(s in ".{0,30}") {
            let _ = MessageId::parse(&s);
        }

        #[test]
        fn shaped_input_never_panics(s in "[0-9]{20}_[0-9A-F]{6}") {
            if let Ok(id) = MessageId::parse(&s) {
                prop_assert_eq!(id.as_str(), s.as_str());
                prop_assert_eq!(id.timestamp().format_mesh(), &s[..20]);
            }
        }
    }
}
