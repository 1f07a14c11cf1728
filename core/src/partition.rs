//! Mailbox-to-partition assignment.
//!
//! Every mailbox belongs to exactly one partition, and the partition owns its
//! state and its write-ahead log. The assignment must therefore be identical
//! on every machine, every build and every restart, or a restarted node would
//! look for a mailbox's messages in the wrong log. Hence:
//!
//! - The key hash is `xxh3_64_with_seed` over the mailbox id's bytes (always
//!   upper case: [`MailboxId`] normalises on parse) with the fixed seed
//!   [`PARTITION_HASH_SEED`]. std's `RandomState`, `DefaultHasher` or any
//!   per-process seeded hasher must never be used here.
//! - The bucket is chosen by Jump Consistent Hash (Lamping & Veach, 2014), so
//!   growing from `n` to `n + 1` partitions moves only about `1 / (n + 1)` of
//!   the mailboxes, all of them into the new partition.
//! - The jump step uses integer arithmetic
//!   (`floor((b + 1) * 2^31 / ((key >> 33) + 1))`) instead of the paper's
//!   floating-point expression, so the result does not depend on any
//!   platform's floating-point behaviour. It keeps the algorithm's
//!   properties: each candidate `j` is strictly greater than `b` and the
//!   sequence of candidates does not depend on the bucket count.
//!
//! Changing the seed, the hash or the jump step re-homes mailboxes; the
//! golden-value tests below exist to make such a change impossible to miss.

use std::fmt;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::ids::{IdTag, MailboxId, MessageId};
use crate::ErrorCode;

/// Seed for the partition key hash (ASCII "SPINEPT1"). Never change it: doing
/// so moves every mailbox to a different partition.
pub const PARTITION_HASH_SEED: u64 = 0x5350_494E_4550_5431;

/// Largest supported partition count.
pub const MAX_PARTITIONS: u32 = 65_536;

/// Index of a partition, in `0..partition_count`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PartitionId(pub u32);

impl PartitionId {
    /// The index as a `usize`, for indexing per-partition arrays.
    pub fn index(self) -> usize {
        // u32 always fits in usize on the 32- and 64-bit targets we support.
        self.0 as usize
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a partition map could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    /// A partition count of zero was requested.
    #[error("partition count is 0; use at least 1 partition")]
    CountZero,
    /// More than [`MAX_PARTITIONS`] partitions were requested.
    #[error(
        "partition count {requested} exceeds the maximum of {MAX_PARTITIONS}; use fewer partitions"
    )]
    CountTooLarge {
        /// The requested count.
        requested: u32,
    },
}

impl ErrorCode for PartitionError {
    fn code(&self) -> &'static str {
        match self {
            Self::CountZero => "PART_COUNT_ZERO",
            Self::CountTooLarge { .. } => "PART_COUNT_TOO_LARGE",
        }
    }
}

/// Maps mailboxes onto a fixed number of partitions (1..=[`MAX_PARTITIONS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionMap {
    partitions: u32,
}

impl PartitionMap {
    /// A map over `partitions` partitions.
    pub fn new(partitions: u32) -> Result<PartitionMap, PartitionError> {
        match partitions {
            0 => Err(PartitionError::CountZero),
            n if n > MAX_PARTITIONS => Err(PartitionError::CountTooLarge { requested: n }),
            n => Ok(PartitionMap { partitions: n }),
        }
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> u32 {
        self.partitions
    }

    /// All partition ids, in order.
    pub fn partition_ids(&self) -> impl Iterator<Item = PartitionId> {
        (0..self.partitions).map(PartitionId)
    }

    /// The tag for ids of messages to `mailbox`: an id issued with it
    /// names `mailbox`'s partition (see [`PartitionMap::hinted_by`]).
    pub fn id_tag(&self, mailbox: &MailboxId) -> IdTag {
        IdTag::new(self.partitions, self.partition_of(mailbox).0).unwrap_or(IdTag::NONE)
    }

    /// The partition an id's tag names. It owns the message whenever the
    /// id was issued with [`PartitionMap::id_tag`] under this partition
    /// count; ids issued otherwise (an earlier partition count) must be
    /// looked up elsewhere. Always `< partition_count()`.
    pub fn hinted_by(&self, id: &MessageId) -> PartitionId {
        PartitionId(IdTag::of(id, self.partitions))
    }

    /// The partition that owns `mailbox`. Always `< partition_count()`.
    pub fn partition_of(&self, mailbox: &MailboxId) -> PartitionId {
        PartitionId(jump_consistent_hash(
            key_hash(mailbox.as_str()),
            self.partitions,
        ))
    }
}

/// The stable 64-bit key of a mailbox id.
fn key_hash(mailbox_id: &str) -> u64 {
    xxh3_64_with_seed(mailbox_id.as_bytes(), PARTITION_HASH_SEED)
}

/// Jump Consistent Hash with an exact integer jump step. Returns a value in
/// `0..buckets` (0 when `buckets` is 0, which [`PartitionMap::new`] refuses).
fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    let buckets = u64::from(buckets);
    let mut b: u64 = 0;
    let mut j: u64 = 0;
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // (b + 1) <= 2^16 and 2^31 keep the product below 2^48: no overflow.
        // The divisor is in 1..=2^31, so j >= b + 1 and the loop terminates.
        j = ((b + 1) << 31) / ((key >> 33) + 1);
    }
    // b < buckets <= u32::MAX + 1 here, so the conversion cannot fail.
    u32::try_from(b).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(s: &str) -> MailboxId {
        MailboxId::parse(s).unwrap()
    }

    fn synthetic_ids(n: usize) -> Vec<MailboxId> {
        (0..n)
            .map(|i| id(&format!("X{:02}OT{:03}", i % 97, i)))
            .collect()
    }

    #[test]
    fn zero_and_too_many_refused() {
        assert_eq!(PartitionMap::new(0).unwrap_err().code(), "PART_COUNT_ZERO");
        let e = PartitionMap::new(MAX_PARTITIONS + 1).unwrap_err();
        assert_eq!(e.code(), "PART_COUNT_TOO_LARGE");
        assert!(e.to_string().contains("65537"));
        assert!(PartitionMap::new(1).is_ok());
        assert!(PartitionMap::new(MAX_PARTITIONS).is_ok());
    }

    /// Golden values. If this fails, the hash changed and every deployed
    /// mailbox would move partition: revert the change.
    #[test]
    fn golden_partitions() {
        assert_eq!(key_hash("X26ABC1"), GOLDEN_KEY_X26ABC1);
        let cases: [(&str, u32, u32); 9] = [
            ("X26ABC1", 1, 0),
            ("X26ABC1", 8, GOLDEN[0]),
            ("X26ABC1", 64, GOLDEN[1]),
            ("X26ABC2", 8, GOLDEN[2]),
            ("X26ABC2", 64, GOLDEN[3]),
            ("X26ABC3", 8, GOLDEN[4]),
            ("X26ABC3", 64, GOLDEN[5]),
            ("X26ABC3", 65_536, GOLDEN[6]),
            ("X26ABC1", 65_536, GOLDEN[7]),
        ];
        for (mailbox, n, want) in cases {
            let map = PartitionMap::new(n).unwrap();
            assert_eq!(
                map.partition_of(&id(mailbox)),
                PartitionId(want),
                "{mailbox} over {n}"
            );
        }
    }

    const GOLDEN_KEY_X26ABC1: u64 = 0x609b_a5e6_e8df_17e3;
    const GOLDEN: [u32; 8] = [1, 21, 5, 17, 6, 14, 76, 2289];

    /// Reference vectors for the jump step, independent of xxh3.
    #[test]
    fn golden_jump_values() {
        let got: Vec<u32> = [0u64, 1, 0xDEAD_BEEF, u64::MAX]
            .iter()
            .map(|&k| jump_consistent_hash(k, 1000))
            .collect();
        assert_eq!(got, GOLDEN_JUMP);
    }

    const GOLDEN_JUMP: [u32; 4] = [0, 549, 285, 313];

    /// The paper's floating-point formulation, used only to show that the
    /// integer jump step picks the same buckets.
    fn reference_float_jump(mut key: u64, buckets: u32) -> u32 {
        let (mut b, mut j) = (-1i64, 0i64);
        while j < i64::from(buckets) {
            b = j;
            key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
            j = ((b + 1) as f64 * ((1i64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
        }
        u32::try_from(b).unwrap()
    }

    #[test]
    fn case_of_input_does_not_matter() {
        let map = PartitionMap::new(64).unwrap();
        assert_eq!(
            map.partition_of(&id("x26abc1")),
            map.partition_of(&id("X26ABC1"))
        );
    }

    #[test]
    fn one_partition_maps_everything_to_zero() {
        let map = PartitionMap::new(1).unwrap();
        for m in synthetic_ids(500) {
            assert_eq!(map.partition_of(&m), PartitionId(0));
        }
    }

    #[test]
    fn roughly_uniform_over_10_000_ids() {
        let ids = synthetic_ids(10_000);
        for n in [2u32, 7, 16, 64] {
            let map = PartitionMap::new(n).unwrap();
            let mut counts = vec![0usize; n as usize];
            for m in &ids {
                counts[map.partition_of(m).index()] += 1;
            }
            let expected = 10_000.0 / f64::from(n);
            for (p, &c) in counts.iter().enumerate() {
                let ratio = c as f64 / expected;
                assert!(
                    (0.75..=1.25).contains(&ratio),
                    "n={n} partition {p}: {c} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn growth_moves_about_one_over_n_plus_one_and_only_to_the_new_partition() {
        let ids = synthetic_ids(10_000);
        for n in [1u32, 4, 10, 31] {
            let before = PartitionMap::new(n).unwrap();
            let after = PartitionMap::new(n + 1).unwrap();
            let mut moved = 0usize;
            for m in &ids {
                let (a, b) = (before.partition_of(m), after.partition_of(m));
                if a != b {
                    moved += 1;
                    assert_eq!(b, PartitionId(n), "{m} moved to an old partition");
                }
            }
            let expected = 10_000.0 / f64::from(n + 1);
            let ratio = moved as f64 / expected;
            assert!(
                (0.8..=1.2).contains(&ratio),
                "n={n}: moved {moved}, expected ~{expected}"
            );
        }
    }

    #[test]
    fn partition_ids_enumerates_all() {
        let map = PartitionMap::new(5).unwrap();
        let all: Vec<u32> = map.partition_ids().map(|p| p.0).collect();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
        assert_eq!(map.partition_count(), 5);
    }

    #[test]
    fn tagged_ids_name_their_partition() {
        use crate::random::SeededRandom;
        use crate::time::Timestamp;
        let map = PartitionMap::new(7).unwrap();
        let mut g = crate::ids::MessageIdGenerator::new();
        let mut rng = SeededRandom::new(3);
        for name in ["X26ABC1", "X26ABC2", "ALICE", "B", "LONG_MAILBOX_ID_1"] {
            let mb = MailboxId::parse(name).unwrap();
            let id = g
                .next_tagged(Timestamp::from_micros(1), &mut rng, map.id_tag(&mb))
                .unwrap();
            assert_eq!(map.hinted_by(&id), map.partition_of(&mb), "{name}");
            assert!(map.hinted_by(&id).0 < 7);
        }
    }

    proptest! {
        #[test]
        fn result_is_below_partition_count(
            raw in crate::ids::strategies::mailbox(),
            n in 1u32..=MAX_PARTITIONS,
        ) {
            let map = PartitionMap::new(n).unwrap();
            let m = MailboxId::parse(&raw).unwrap();
            prop_assert!(map.partition_of(&m).0 < n);
        }

        #[test]
        fn integer_jump_matches_reference(key in any::<u64>(), n in 1u32..=MAX_PARTITIONS) {
            prop_assert_eq!(jump_consistent_hash(key, n), reference_float_jump(key, n));
        }

        #[test]
        fn jump_is_monotone_in_bucket_count(key in any::<u64>(), n in 1u32..MAX_PARTITIONS) {
            let a = jump_consistent_hash(key, n);
            let b = jump_consistent_hash(key, n + 1);
            prop_assert!(a < n);
            prop_assert!(b == a || b == n);
        }
    }
}
