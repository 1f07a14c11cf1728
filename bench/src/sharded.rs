//! [`ShardedMap`]: a hash table split into shards, so that no single table
//! grows large.
//!
//! The load generator's tables (the messages its consumers took or
//! received) reach millions of entries in a run. A hash table grows by
//! doubling and moving every entry at once: near a million entries that is
//! tens of milliseconds, spent under the lock all consumers share and on a
//! runtime worker the producers need too, so it showed up as the
//! generator's own latency tail. Split into [`SHARDS`] tables, each growth
//! moves a 256th of that. Pre-sizing one table instead was measured worse
//! (it faults in ~100 MB under the lock at the start).
//!
//! Invariant: a key always lives in the shard [`shard_of`] picks, which
//! uses bits of its hash that the shard's own table does not use for
//! placement (hashbrown takes the low bits for the bucket and the top 7 for
//! its tag), so the shards' tables stay as well spread as one table would.

use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hash};

use rustc_hash::{FxBuildHasher, FxHashMap};

/// Shards per table.
pub(crate) const SHARDS: usize = 256;

/// A hash map in [`SHARDS`] shards.
#[derive(Debug)]
pub(crate) struct ShardedMap<K, V> {
    shards: Box<[FxHashMap<K, V>]>,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            shards: (0..SHARDS).map(|_| FxHashMap::default()).collect(),
        }
    }
}

/// The shard of `key`: bits 32..40 of its hash.
fn shard_of<K: Hash>(key: &K) -> usize {
    ((FxBuildHasher.hash_one(key) >> 32) as usize) % SHARDS
}

impl<K: Eq + Hash, V> ShardedMap<K, V> {
    fn shard(&self, key: &K) -> &FxHashMap<K, V> {
        &self.shards[shard_of(key)]
    }

    fn shard_mut(&mut self, key: &K) -> &mut FxHashMap<K, V> {
        &mut self.shards[shard_of(key)]
    }

    /// The entry of `key`.
    pub(crate) fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        self.shard_mut(&key).entry(key)
    }

    /// Inserts; answers the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.shard_mut(&key).insert(key, value)
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.shard(key).get(key)
    }

    /// Whether `key` is present.
    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.shard(key).contains_key(key)
    }

    /// Removes `key`; answers its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        self.shard_mut(key).remove(key)
    }

    /// Entries in all shards.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// Whether every shard is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn keys_spread_over_every_shard_and_within_each() {
        let mut m = ShardedMap::default();
        for k in 0..100_000u64 {
            m.insert(k, ());
        }
        assert_eq!(m.len(), 100_000);
        let (min, max) = m.shards.iter().fold((usize::MAX, 0), |(lo, hi), s| {
            (lo.min(s.len()), hi.max(s.len()))
        });
        // 390 a shard on average; a shard far off it means the shard bits
        // are not spread.
        assert!(min > 250 && max < 550, "shard sizes {min}..{max}");
    }

    proptest! {
        #[test]
        fn behaves_as_one_map(ops in proptest::collection::vec((0u8..4, 0u16..300, any::<u32>()), 0..400)) {
            let mut sharded = ShardedMap::default();
            let mut model = HashMap::new();
            for (op, key, value) in ops {
                match op {
                    0 => prop_assert_eq!(sharded.insert(key, value), model.insert(key, value)),
                    1 => prop_assert_eq!(sharded.remove(&key), model.remove(&key)),
                    2 => {
                        let fresh = matches!(sharded.entry(key), Entry::Vacant(_));
                        prop_assert_eq!(fresh, !model.contains_key(&key));
                        sharded.entry(key).or_insert(value);
                        model.entry(key).or_insert(value);
                    }
                    _ => prop_assert_eq!(sharded.contains_key(&key), model.contains_key(&key)),
                }
                prop_assert_eq!(sharded.get(&key), model.get(&key));
                prop_assert_eq!(sharded.len(), model.len());
                prop_assert_eq!(sharded.is_empty(), model.is_empty());
            }
        }
    }
}
