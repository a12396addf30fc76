//! One fast hasher for the hot-path maps keyed by server-assigned integers (entity ids, grid
//! cells): the interest grid, the per-client baseline histories and the zone's state table.
//!
//! The hash is splitmix64's finalizer over the written integers. It is not DoS-resistant,
//! which is fine here: the keys are assigned by the server, never chosen by a peer. These
//! maps are for lookups: nothing iterates them in a way that reaches the wire or the
//! simulation, so iteration order cannot break determinism.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::entity::EntityId;

/// splitmix64's finalizer as a `Hasher` for integer keys.
#[derive(Default, Clone, Copy, Debug)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.0 = self.0.rotate_left(32) ^ u64::from(n);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(32) ^ n;
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A [`FastMap`] keyed by [`EntityId`].
pub type IdMap<V> = FastMap<EntityId, V>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_ids_spread_over_buckets() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<FastHasher>::default();
        let mut low_bits = std::collections::BTreeSet::new();
        for id in 0..1024u32 {
            low_bits.insert(build.hash_one(EntityId(id)) & 1023);
        }
        // Sequential ids must not collapse onto a few buckets.
        assert!(
            low_bits.len() > 600,
            "only {} distinct buckets",
            low_bits.len()
        );
    }
}
