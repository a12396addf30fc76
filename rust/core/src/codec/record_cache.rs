//! Shared encoding: the body of a delta record computed once per distinct input and copied
//! to every client that needs the same one.
//!
//! A delta record is the entity id gap, a head, the change mask and the residuals (see
//! `snapshot`). The id gap and the head depend on the client (on the record before it and
//! on the client's seq numbering); everything after the head is a pure function of
//! exactly three things: the snapshot's tick, the entity's state at that tick and the
//! baseline state the client holds (its position, yaw, flags, derived motion, span and
//! tick). Clients whose baseline of an entity is the same state, which is common (the
//! baseline is the newest acknowledged state, and clients are sent the same entity at the
//! same ticks more often than not), get the same bits. The cache keeps, per tick, the
//! computed result for each (entity, baseline) it saw: the change mask, the residual bits
//! and the state the client will reconstruct.
//!
//! Exactness: an entry is used only when the entity id, the tick, the current state and the
//! *whole* baseline state are equal to what it was computed from (compared, not hashed), so
//! a hit gives bit for bit what computing would give; the test
//! `snapshot_tests::the_record_cache_changes_no_bit` checks it. The table is direct mapped
//! by a hash of (tick, id, baseline tick, baseline span), with the hash's digest kept in a
//! separate small array probed first; a collision just replaces the entry. Entries of
//! another tick do not match, so nothing is cleared between ticks.
//!
//! One cache per thread (no locking); a thread's hit rate depends on which clients it
//! replicates, never the output.
//!
//! Cost: the zone uses it only with `ZoneConfig::shared_encoding`, off by default. In the
//! replication benchmark (1000 clients on a lossy link) three delta records in four hit,
//! yet the phase is 8-14 % slower with the cache than without (and still slower with a
//! table of 4 entries per entity, hit rate 0.50): computing a body takes about 100 ns,
//! and reading an entry that the clients' own state pushed out of the processor's caches
//! costs as much. It pays when a body costs more than a cache miss to compute.

use super::entity_state::{QuantizedEntity, QuantizedState, SnapshotConfig};
use crate::entity::EntityId;
use crate::time::Tick;

/// Most residual bits an entry holds; a longer body is recomputed every time.
pub const MAX_BODY_BITS: u32 = 128;

/// The shareable part of a delta record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum CachedBody {
    /// The residuals do not fit the wire's 32-bit codes: the record must be full.
    NoDelta,
    /// A delta: mask, residual bits (first written bit lowest) and the state the client
    /// reconstructs.
    Delta {
        /// Change mask (`MASK_*` of `snapshot`).
        mask: u8,
        /// Length of `bits`, at most [`MAX_BODY_BITS`].
        len_bits: u8,
        /// The residuals as written.
        bits: [u64; 2],
        /// The state the client will hold.
        moved: QuantizedEntity,
    },
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// `None`: empty.
    tick: Option<Tick>,
    id: EntityId,
    state: QuantizedState,
    base: QuantizedEntity,
    body: CachedBody,
}

/// Counters of a [`RecordCache`] since it was made (or [`RecordCache::take_counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Delta records whose body came from the cache.
    pub hits: u64,
    /// Delta records whose body was computed and stored (records that then did not fit the
    /// datagram count too: their work was done).
    pub misses: u64,
}

/// See the module docs. Pass one to `SnapshotCodec::encode_with`.
#[derive(Clone, Debug, Default)]
pub struct RecordCache {
    /// The configuration of the codec the entries were computed with.
    config: Option<SnapshotConfig>,
    /// Per entry, a 64-bit digest of its key (0: empty): probed first, so a miss reads 8
    /// bytes of a table that stays in cache (64 KiB per 8192 entries) instead of a whole
    /// entry (a hit still compares the whole key).
    tags: Vec<u64>,
    entries: Vec<Entry>,
    counts: CacheCounts,
}

/// Fewest and most entries of a cache.
const MIN_ENTRIES: usize = 1 << 10;
const MAX_ENTRIES: usize = 1 << 16;

impl RecordCache {
    /// An empty cache (it sizes itself on [`RecordCache::fit`]).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sizes the table for `entities` replicated entities: 32 entries each, a power of two
    /// between 2^10 and 2^16 entries (about 180 bytes each with the tag: at most 11.5 MiB).
    /// It grows at once and shrinks only when it is four times what is needed, so an entity
    /// count going back and forth across a power of two does not reallocate every tick.
    /// In the replication benchmark (1000 clients, lossy link) an entity has about 25
    /// distinct baselines per tick among the clients sent it: 8 entries per entity gave a
    /// hit rate of 0.62, 32 give 0.76 (the table is direct mapped, so entries of different
    /// entities may evict each other). Resizing empties it.
    pub fn fit(&mut self, entities: usize) {
        let want = (entities.saturating_mul(32))
            .next_power_of_two()
            .clamp(MIN_ENTRIES, MAX_ENTRIES);
        let have = self.entries.len();
        if want > have || want.saturating_mul(4) <= have {
            self.resize(want);
        }
    }

    fn resize(&mut self, len: usize) {
        self.tags = vec![0; len];
        self.entries = vec![
            Entry {
                tick: None,
                id: EntityId(0),
                state: QuantizedState::default(),
                base: QuantizedEntity::default(),
                body: CachedBody::NoDelta,
            };
            len
        ];
    }

    /// Makes the entries those of `config`'s codec: empties the cache when it held another
    /// configuration's (their bits would differ).
    #[inline]
    pub(crate) fn use_config(&mut self, config: &SnapshotConfig) {
        if self.config.as_ref() != Some(config) {
            self.config = Some(*config);
            self.tags.fill(0);
        }
    }

    /// Heap bytes held (capacity of the tag and entry tables).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.tags.capacity() * std::mem::size_of::<u64>()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
    }

    /// The counters so far, reset to zero.
    pub fn take_counts(&mut self) -> CacheCounts {
        std::mem::take(&mut self.counts)
    }

    /// The key's digest (never 0) and table index.
    #[inline]
    fn slot(&self, tick: Tick, id: EntityId, base: &QuantizedEntity) -> Option<(u64, usize)> {
        if self.entries.is_empty() {
            return None;
        }
        let key = (u64::from(id.0) << 32)
            ^ (u64::from(base.tick.0) << 8)
            ^ u64::from(base.span_ticks)
            ^ (u64::from(tick.0) << 20);
        let mut z = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z ^= z >> 29;
        z = z.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z ^= z >> 32;
        Some((z | 1, (z >> 1) as usize & (self.entries.len() - 1)))
    }

    /// The body of `id`'s record at `tick` for `state` against `base`, if computed before.
    #[inline]
    pub(crate) fn get(
        &mut self,
        tick: Tick,
        id: EntityId,
        state: &QuantizedState,
        base: &QuantizedEntity,
    ) -> Option<CachedBody> {
        let (tag, i) = self.slot(tick, id, base)?;
        if self.tags.get(i) != Some(&tag) {
            return None;
        }
        let e = self.entries.get(i)?;
        if e.tick == Some(tick) && e.id == id && e.state == *state && e.base == *base {
            if matches!(e.body, CachedBody::Delta { .. }) {
                self.counts.hits += 1;
            }
            Some(e.body)
        } else {
            None
        }
    }

    /// Stores a computed body.
    #[inline]
    pub(crate) fn put(
        &mut self,
        tick: Tick,
        id: EntityId,
        state: &QuantizedState,
        base: &QuantizedEntity,
        body: CachedBody,
    ) {
        if matches!(body, CachedBody::Delta { .. }) {
            self.counts.misses += 1;
        }
        if let Some((tag, i)) = self.slot(tick, id, base)
            && let Some(e) = self.entries.get_mut(i)
            && let Some(t) = self.tags.get_mut(i)
        {
            *t = tag;
            *e = Entry {
                tick: Some(tick),
                id,
                state: *state,
                base: *base,
                body,
            };
        }
    }
}
