//! A fast hash map keyed by [`EntityId`] for the per-client histories (hot path: one or two
//! lookups per entity per snapshot).
//!
//! The hash is a single multiply by a 64-bit odd constant (Fibonacci hashing). It is not
//! DoS-resistant, which is fine here: entity ids are assigned by the server, never chosen by
//! a peer. Lookup only: nothing iterates these maps in a way that reaches the wire or the
//! simulation, so iteration order cannot break determinism.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::entity::EntityId;

/// Hasher for small integer keys (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct IdHasher {
    hash: u64,
}

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash = (self.hash.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.hash = (self.hash.rotate_left(5) ^ u64::from(i)).wrapping_mul(K);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.hash = (self.hash.rotate_left(5) ^ i).wrapping_mul(K);
    }
}

/// A `HashMap` from [`EntityId`] using [`IdHasher`].
pub type IdMap<V> = HashMap<EntityId, V, BuildHasherDefault<IdHasher>>;
