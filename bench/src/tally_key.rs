//! [`TallyKey`]: how the load generator's consumer table keys a message.
//!
//! The native consumers keep one table entry per message received in a run
//! (over a million in a busy 8 s run), so the entry's size is what the
//! table costs: every doubling of a large table zero-fills fresh memory
//! (slow on a VM: it was 12 % of the load generator's CPU) while its lock
//! is held, and every lookup is a cache miss. A [`MessageId`] is 27 bytes;
//! its digits and hex suffix pack losslessly into 16 ([`PackedId`]), which
//! halves the entry. The compare peers' ids are already a `u64` and MESH's
//! ids are kept as text.
//!
//! Invariant: `key` is injective (two different ids never share a key), so
//! the table's answers are exactly those it would give keyed by the id.

use std::hash::Hash;

use spine_core::ids::MessageId;

/// An id the tally can record, and the key it records it under.
pub(crate) trait TallyKey: Eq + Hash {
    /// The key (injective in the id).
    type Key: Eq + Hash;
    fn key(&self) -> Self::Key;
}

impl TallyKey for u64 {
    type Key = u64;
    fn key(&self) -> u64 {
        *self
    }
}

impl TallyKey for String {
    type Key = String;
    fn key(&self) -> String {
        self.clone()
    }
}

/// A [`MessageId`] (`YYYYMMDDHHMMSSffffff_XXXXXX`: 20 digits, `_`, 6 hex
/// digits) as 26 nibbles: the first 16 digits in `.0`, the last 4 digits
/// and the 6 hex digits in `.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PackedId(u64, u64);

impl TallyKey for MessageId {
    type Key = PackedId;
    fn key(&self) -> PackedId {
        let nibble = |b: u8| -> u64 {
            match b {
                b'0'..=b'9' => u64::from(b - b'0'),
                // A validated id has only upper-case hex after the '_'.
                _ => u64::from(b.wrapping_sub(b'A')) + 10,
            }
        };
        let bytes = self.as_str().as_bytes();
        let mut hi = 0u64;
        let mut lo = 0u64;
        for (i, &b) in bytes.iter().enumerate() {
            match i {
                0..16 => hi = hi << 4 | nibble(b),
                20 => {} // the '_'
                _ => lo = lo << 4 | nibble(b),
            }
        }
        PackedId(hi, lo)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id(text: &str) -> MessageId {
        MessageId::parse(text).unwrap()
    }

    #[test]
    fn every_character_of_the_id_shows_in_its_key() {
        let base = id("20261124213000123456_0A1B2C");
        // One character changed in each position (the '_' is fixed).
        for other in [
            "30261124213000123456_0A1B2C",
            "20261124213000123457_0A1B2C",
            "20261124213000123456_0A1B2D",
            "20261124213000123456_1A1B2C",
            "20261124213001123456_0A1B2C",
        ] {
            assert_ne!(base.key(), id(other).key(), "{other}");
        }
        assert_eq!(base.key(), id("20261124213000123456_0A1B2C").key());
    }

    /// Any valid id: a day in 2000..=2099, any time of day, any suffix.
    fn any_id() -> impl Strategy<Value = MessageId> {
        (
            0u32..100,
            1u32..=12,
            1u32..=28,
            0u32..24,
            0u32..60,
            0u32..60,
        )
            .prop_flat_map(|date| (Just(date), 0u32..1_000_000, 0u32..=0xFF_FFFF))
            .prop_map(|((y, mo, d, h, mi, s), micros, suffix)| {
                let text =
                    format!("20{y:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}{micros:06}_{suffix:06X}");
                id(&text)
            })
    }

    proptest! {
        #[test]
        fn different_ids_never_share_a_key(a in any_id(), b in any_id()) {
            prop_assert_eq!(a == b, a.key() == b.key());
            prop_assert_eq!(a.key(), id(a.as_str()).key());
        }
    }
}
