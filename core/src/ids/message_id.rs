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
use super::IdError;
use crate::random::RandomSource;
use crate::time::Timestamp;

/// Length of a message id in characters.
const LEN: usize = 27;
/// Number of time digits at the front.
const TIME_DIGITS: usize = 20;
/// Largest suffix value (6 hex digits).
const MAX_SUFFIX: u32 = 0xFF_FFFF;

/// A validated MESH message id; orders by creation time.
///
/// Stored inline as its 27 ASCII bytes, so it is `Copy`, never allocates,
/// and compares as three big-endian integers (the same order as its bytes;
/// ids key every index of the message store, so comparing is hot: a heap
/// pointer per id cost a cache miss per comparison, and a `memcmp` call per
/// comparison was still 5 % of a busy node's CPU).
#[derive(
    Copy, Clone, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
#[rkyv(derive(Debug))]
pub struct MessageId([u8; LEN]);

impl MessageId {
    /// The id's bytes as big-endian integers: comparing these compares
    /// the bytes lexicographically.
    fn words(&self) -> (u128, u64, u32) {
        let mut hi = [0u8; 16];
        hi.copy_from_slice(&self.0[..16]);
        let mut mid = [0u8; 8];
        mid.copy_from_slice(&self.0[16..24]);
        let mut lo = [0u8; 4];
        lo[..3].copy_from_slice(&self.0[24..]);
        (
            u128::from_be_bytes(hi),
            u64::from_be_bytes(mid),
            u32::from_be_bytes(lo),
        )
    }
}

impl PartialEq for MessageId {
    fn eq(&self, other: &Self) -> bool {
        self.words() == other.words()
    }
}

impl Eq for MessageId {}

impl Ord for MessageId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.words().cmp(&other.words())
    }
}

impl PartialOrd for MessageId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::hash::Hash for MessageId {
    /// Hashes as the text does, so that `Borrow<str>`-style lookups agree.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MessageId").field(&self.as_str()).finish()
    }
}

impl MessageId {
    /// Length of every message id, in characters.
    pub const LEN: usize = LEN;

    /// The smallest valid id (the epoch, suffix 0): every id sorts at or
    /// after it, so `(key, MessageId::MIN)..` ranges over all ids of `key`
    /// in an index keyed by `(key, MessageId)`.
    pub const MIN: MessageId = MessageId(*b"19700101000000000000_000000");

    /// Parses a message id, checking its shape and that its time is a real
    /// UTC date-time.
    pub fn parse(input: &str) -> Result<MessageId, IdError> {
        // Ids are parsed on every request that names one: the bytes are
        // checked in place, and characters are walked only to describe
        // what is wrong.
        let Some(bytes) = <[u8; LEN]>::try_from(input.as_bytes())
            .ok()
            .filter(|b| (0..LEN).all(|p| allowed_at(p, char::from(b[p])).0))
        else {
            return Err(malformed(input));
        };
        // All ASCII now, so the first TIME_DIGITS bytes are that many characters.
        let time = input.get(..TIME_DIGITS).unwrap_or_default();
        Timestamp::parse_mesh(time).map_err(|source| IdError::MessageTime {
            input: bounded_input(input),
            source,
        })?;
        Ok(MessageId(bytes))
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
        let c = timestamp.to_civil();
        let mut bytes = [0u8; LEN];
        let fields: [(u64, usize); 7] = [
            (u64::from(c.year), 4),
            (u64::from(c.month), 2),
            (u64::from(c.day), 2),
            (u64::from(c.hour), 2),
            (u64::from(c.minute), 2),
            (u64::from(c.second), 2),
            (u64::from(c.micro), 6),
        ];
        let mut at = 0;
        for (value, width) in fields {
            write_digits(&mut bytes[at..at + width], value, 10);
            at += width;
        }
        bytes[TIME_DIGITS] = b'_';
        write_digits(&mut bytes[TIME_DIGITS + 1..], u64::from(suffix), 16);
        Ok(MessageId(bytes))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Always ASCII when built by `parse`/`from_parts`; a value decoded
        // from an archive is re-parsed through `as_str` before use, and
        // non-UTF-8 bytes show as "" there, which `parse` refuses.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The creation time encoded in the id.
    pub fn timestamp(&self) -> Timestamp {
        // Validated on construction; the fallback is unreachable for a value
        // built by `parse`/`from_parts` and only guards against a value
        // deserialised from an archive without re-validation.
        self.as_str()
            .get(..TIME_DIGITS)
            .and_then(|t| Timestamp::parse_mesh(t).ok())
            .unwrap_or(Timestamp::ZERO)
    }

    /// The 24-bit random suffix.
    pub fn suffix(&self) -> u32 {
        self.as_str()
            .get(TIME_DIGITS + 1..)
            .and_then(|s| u32::from_str_radix(s, 16).ok())
            .unwrap_or(0)
    }
}

/// Writes `value` into `out` as fixed-width upper-case digits in `radix`
/// (10 or 16), most significant first, zero-padded.
fn write_digits(out: &mut [u8], mut value: u64, radix: u64) {
    for slot in out.iter_mut().rev() {
        let digit = (value % radix) as u8;
        *slot = if digit < 10 {
            b'0' + digit
        } else {
            b'A' + digit - 10
        };
        value /= radix;
    }
}

/// Whether `c` may stand at `position` of an id, and what belongs there.
fn allowed_at(position: usize, c: char) -> (bool, &'static str) {
    match position {
        p if p < TIME_DIGITS => (c.is_ascii_digit(), "a digit"),
        TIME_DIGITS => (c == '_', "'_'"),
        _ => (
            matches!(c, '0'..='9' | 'A'..='F'),
            "an upper-case hex digit (0-9, A-F)",
        ),
    }
}

/// What is wrong with `input`, which is not `LEN` allowed characters.
fn malformed(input: &str) -> IdError {
    let len = input.chars().count();
    if len != LEN {
        return format_error(input, format!("is {len} characters long, not {LEN}"));
    }
    match input
        .chars()
        .enumerate()
        .find_map(|(p, c)| match allowed_at(p, c) {
            (true, _) => None,
            (false, expected) => Some((p, c, expected)),
        }) {
        Some((position, c, expected)) => format_error(
            input,
            format!("has {c:?} at position {position} where {expected} belongs"),
        ),
        None => format_error(input, "is not a message id".to_string()),
    }
}

fn format_error(input: &str, problem: String) -> IdError {
    IdError::MessageFormat {
        input: bounded_input(input),
        problem,
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MessageId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageId::parse(s)
    }
}

impl TryFrom<String> for MessageId {
    type Error = IdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        MessageId::parse(&s)
    }
}

impl TryFrom<&str> for MessageId {
    type Error = IdError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        MessageId::parse(s)
    }
}

impl AsRef<str> for MessageId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> String {
        id.as_str().to_owned()
    }
}

/// A residue a generated id's suffix carries: `suffix % modulus == value`.
///
/// Invariant: `1 <= modulus <= 2^16` and `value < modulus` (enforced by
/// [`IdTag::new`]), so a tagged suffix always exists within 24 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdTag {
    modulus: u32,
    value: u32,
}

impl IdTag {
    /// No tag: the suffix is fully random.
    pub const NONE: IdTag = IdTag {
        modulus: 1,
        value: 0,
    };

    /// Largest modulus accepted (leaves at least 8 random suffix bits).
    pub const MAX_MODULUS: u32 = 1 << 16;

    /// A tag of `value` modulo `modulus`; `None` unless
    /// `1 <= modulus <= MAX_MODULUS` and `value < modulus`.
    pub fn new(modulus: u32, value: u32) -> Option<IdTag> {
        ((1..=IdTag::MAX_MODULUS).contains(&modulus) && value < modulus)
            .then_some(IdTag { modulus, value })
    }

    /// The residue `id`'s suffix has modulo `modulus` (0 for `modulus` 0).
    pub fn of(id: &MessageId, modulus: u32) -> u32 {
        id.suffix().checked_rem(modulus).unwrap_or(0)
    }

    /// The suffix nearest below `random` that carries this tag.
    fn apply(self, random: u32) -> u32 {
        let base = random - random % self.modulus;
        let tagged = base + self.value;
        if tagged > MAX_SUFFIX {
            // base + modulus > MAX_SUFFIX + 1 cannot hold for base itself,
            // so stepping down one modulus stays in range.
            tagged - self.modulus
        } else {
            tagged
        }
    }
}

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
        self.next_tagged(now, rng, IdTag::NONE)
    }

    /// Like [`MessageIdGenerator::next`], but the suffix is chosen so that
    /// `suffix % tag.modulus == tag.value`: the id itself then says which
    /// partition owns it (see [`IdTag::of`]), so finding a message needs no
    /// global index. The suffix keeps `24 - log2(modulus)` random bits;
    /// uniqueness never depended on them (the time part is strictly
    /// increasing).
    pub fn next_tagged(
        &mut self,
        now: Timestamp,
        rng: &mut dyn RandomSource,
        tag: IdTag,
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
        let random = (rng.next_u64() >> 40) as u32;
        let suffix = tag.apply(random);
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
    fn min_is_valid_and_the_smallest_id() {
        assert_eq!(
            MessageId::parse(MessageId::MIN.as_str()),
            Ok(MessageId::MIN)
        );
        assert_eq!(
            MessageId::from_parts(Timestamp::ZERO, 0),
            Ok(MessageId::MIN)
        );
        assert!(MessageId::MIN <= MessageId::parse(SAMPLE).unwrap());
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

    #[test]
    fn id_tags_are_checked() {
        assert!(IdTag::new(0, 0).is_none());
        assert!(IdTag::new(8, 8).is_none());
        assert!(IdTag::new(IdTag::MAX_MODULUS + 1, 0).is_none());
        assert!(IdTag::new(IdTag::MAX_MODULUS, IdTag::MAX_MODULUS - 1).is_some());
        let id = MessageId::parse(SAMPLE).unwrap();
        assert_eq!(IdTag::of(&id, 0), 0);
        assert_eq!(IdTag::of(&id, 1), 0);
        assert_eq!(IdTag::of(&id, 0x100), 0);
    }

    proptest! {
        /// Ids order, and are equal, exactly as their text does, including
        /// ids that differ only in the last bytes or share a timestamp.
        #[test]
        fn ids_compare_as_their_text(
            a in 0..=Timestamp::MAX.as_micros() / 2,
            b in 0..=Timestamp::MAX.as_micros() / 2,
            same_time: bool,
            sa in 0..=MAX_SUFFIX,
            sb in 0..=MAX_SUFFIX,
        ) {
            let b = if same_time { a } else { b };
            let x = MessageId::from_parts(Timestamp::from_micros(a), sa).unwrap();
            let y = MessageId::from_parts(Timestamp::from_micros(b), sb).unwrap();
            prop_assert_eq!(x.cmp(&y), x.as_str().cmp(y.as_str()));
            prop_assert_eq!(x == y, x.as_str() == y.as_str());
            prop_assert_eq!(x.partial_cmp(&y), Some(x.cmp(&y)));
        }

        #[test]
        fn tagged_ids_carry_their_tag(
            seed: u64,
            modulus in 1..=IdTag::MAX_MODULUS,
            value_seed: u32,
            now in 0..=Timestamp::MAX.as_micros() / 2,
        ) {
            let value = value_seed % modulus;
            let tag = IdTag::new(modulus, value).unwrap();
            let mut g = MessageIdGenerator::new();
            let mut rng = SeededRandom::new(seed);
            for _ in 0..8 {
                let id = g.next_tagged(Timestamp::from_micros(now), &mut rng, tag).unwrap();
                prop_assert_eq!(IdTag::of(&id, modulus), value);
                prop_assert!(id.suffix() <= MAX_SUFFIX);
            }
        }

        #[test]
        fn tag_apply_stays_in_range(random in 0..=MAX_SUFFIX, modulus in 1..=IdTag::MAX_MODULUS, v: u32) {
            let tag = IdTag::new(modulus, v % modulus).unwrap();
            let s = tag.apply(random);
            prop_assert!(s <= MAX_SUFFIX);
            prop_assert_eq!(s % modulus, v % modulus);
        }

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
                prop_assert_eq!(MessageId::parse(id.as_str()), Ok(id));
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
