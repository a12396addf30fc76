//! Per-client baseline bookkeeping on both ends, driven by acks.
//!
//! **Server** ([`SentHistory`], one per client): numbers snapshots, remembers for each sent
//! seq which entity states and leaves it carried, and on each ack from the client learns
//! which were delivered. Per entity, the baseline is the newest *delivered* state. An entity
//! with no delivered state since it (re)entered is sent as an enter record again and again
//! until one is delivered; a leave is repeated in every snapshot until a snapshot carrying
//! it is delivered. The wire does not name a delta record's baseline (protocol 6): it is the
//! entity's newest state the client applied in a snapshot at or before the header baseline
//! `B` (the newest delivered snapshot). The server's delivered baseline `S` is that state
//! when it knows the fate of every record of the entity sent after `S` up to `B`; when a
//! record's fate can never be known (see below) the entity is sent as full records until a
//! newer record of it is delivered.
//!
//! **Client** ([`ReceivedHistory`]): applies decoded snapshots and keeps, per entity, a
//! bounded ring of the states it received (seq + quantized state) and resolves a delta's
//! baseline as the newest state held from a snapshot at or before `B`. **Rule: a snapshot
//! older than (or equal to) the newest one applied is dropped and not acknowledged.** So
//! "delivered" on the server means "applied" on the client, which is what makes both ends
//! agree on what the client holds. A delta for an entity the client holds no such state of
//! fails with [`CodecError::UnknownBaseline`]; the snapshot is not applied nor acknowledged.
//!
//! **Why both ends pick the same baseline.** When the server learns from an ack naming
//! snapshot `A` as the newest applied, the ack's bitfield lists every snapshot the client had
//! applied among the [`ACK_WINDOW`] (32) before `A`; the client never applies an older
//! snapshot after `A`, so the ones not listed are never applied (known lost). Snapshots
//! further back that no received ack ever covered are *unsure*: applied or not, nobody will
//! say. At encode time every snapshot up to `B` (the newest named) is resolved: delivered,
//! known lost or unsure. The client's newest state of `E` at or before `B` comes from the
//! newest delivered record of `E` up to `B`, which is the server's `S`, unless a newer
//! record of `E` up to `B` sits in an unsure snapshot; the server then sends full records
//! (`SentEntity::sure_from_seq`). Entities that left and entered again: records of an
//! earlier incarnation are older than any delivered record of the current one.
//!
//! **Why the client still holds that state.** A later snapshot `N'` has `B' >= N' - 32`, so
//! after applying snapshot `N` the client may be asked for the newest state at or before any
//! seq from `N - 31` on. Of the states at or before `N - 31` only the newest can be that
//! one, and at most 31 states are newer (one per seq), so a ring of [`RING_LEN`] (33) that
//! drops its oldest state first keeps every state a later delta can use. The client may
//! also drop states older than the baseline a record used: `B` never moves back, so
//! neither does the newest state at or before it.
//!
//! Memory: the server keeps `SLOTS` (64) seq slots (with the owner state each snapshot
//! carried) and, per entity, one cache line (64 bytes: baseline, its seq and the seq it
//! must reach, id, handle generation; the second-order predictor's acceleration, 16
//! bytes, sits in a parallel array read only when it is not zero) in a
//! dense array indexed by a per-client handle (a sorted id to handle array finds it, see
//! `handle_index`, unless the caller's record key leads to it: a hint table of 4 bytes per
//! handle, see [`SentHistory::base_for_keyed`]; slot records carry the handle and its
//! generation). The slots' records
//! share one ring of the records *in flight*: a slot is dead once its snapshot is
//! acknowledged, or once the client acknowledged a newer snapshot without it (the client
//! applies snapshots in seq order only, so it will never acknowledge that one), or when it
//! falls out of the 64-seq tracking window; the ring drops records from its front up to the
//! oldest live slot. At a 100 ms round trip and 30 Hz that is about six snapshots' records
//! instead of 64. A slot that falls out of the window unresolved is unsure (above).

use std::collections::{BTreeMap, VecDeque};

use super::ack::{ACK_WINDOW, ReceiveOutcome, ReceiveTracker, SendTracker};
use super::entity_state::{CHANNELS, QuantizedEntity};
use super::error::CodecError;
use super::handle_index::HandleIndex;
use super::packet::AckFields;
use super::snapshot::{
    BASELINE_WINDOW, BaselineLookup, DecodedSnapshot, RecordBase, SnapshotCodec, SnapshotHead,
    WrittenRecord,
};
use crate::entity::{CharacterState, EntityId};
use crate::fast_hash::IdMap;
use crate::time::Tick;

/// States kept per entity on the client: enough for the newest state at or before any
/// snapshot baseline a later snapshot may give (see the module docs).
pub const RING_LEN: usize = BASELINE_WINDOW as usize + 1;
/// Snapshots remembered per client (a ring). A snapshot whose ack arrives after its slot
/// was reused (64 seqs later) is unsure (see the module docs): its records never become
/// baselines and their entities get full records until newer ones are delivered. Deltas
/// also need a snapshot baseline within [`BASELINE_WINDOW`] (32) seqs, so beyond a round
/// trip of about 31 snapshots (1.03 s at 30 Hz, 0.52 s at 60 Hz) every record is full; up
/// to 64, deliveries are still learnt, so enters stop repeating (full records instead)
/// and leaves end. (32 slots were tried: they took the zone's heap per client from 943 to
/// 621 KiB in the replication scenario, but at 60 Hz a client with a round trip over
/// 530 ms would never have a delivered record again: every record an enter, every leave
/// repeated forever.)
const SLOTS: usize = 64;

/// The slot that holds snapshot `seq` (extended) while it is among the last `SLOTS` sent.
#[inline]
fn slot_index(seq: u64) -> usize {
    (seq % SLOTS as u64) as usize
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct SentSlot {
    /// Extended seq this slot holds (the last one it held once dead).
    seq: u64,
    live: bool,
    /// The slot's records in [`SentHistory::records`]: absolute ring positions
    /// `records_from..records_to` (valid while `live`).
    records_from: u64,
    records_to: u64,
    leaves: Vec<EntityId>,
    /// The owner state the snapshot carried (see [`SentHistory::note_owner`]).
    owner: Option<CharacterState>,
}

/// One entity record a snapshot carried.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct SentRecord {
    /// The entity's handle when the record was sent (see `SentHistory::handles`).
    handle: u32,
    /// The handle's generation then (see [`SentEntity::generation`]).
    generation: u32,
    /// The state the client holds once the snapshot is applied.
    state: QuantizedEntity,
}

/// `SentEntity::delivered_seq` when nothing was delivered.
const NOT_DELIVERED: u64 = u64::MAX;

/// A key hint that leads nowhere (handles stay far below `u32::MAX`).
const NO_HINT: u32 = u32::MAX;

/// [`SentEntity::id`] of a free handle: no entity has id 0 (the wire codes ids as gaps
/// from 0, and the encoder refuses 0), so a hint to a freed handle never matches.
const FREE_ID: EntityId = EntityId(0);

/// Fewest places of a non-empty hint table (a power of two).
const MIN_HINT_PLACES: usize = 64;

/// The handle `key`'s hint leads to, if it still holds `id`. The table has a power of two
/// places (or none) and a key uses place `key mod places`: keys that share a place just
/// overwrite each other's hints.
#[inline]
fn hinted_handle(
    key_hints: &[u32],
    entities: &[SentEntity],
    id: EntityId,
    key: Option<u32>,
) -> Option<u32> {
    let mask = key_hints.len().checked_sub(1)?;
    let handle = *key_hints.get(key? as usize & mask)?;
    let e = entities.get(handle as usize)?;
    (e.id == id && id != FREE_ID).then_some(handle)
}

// `base_for` reads one line per record.
const _: () = assert!(std::mem::size_of::<SentEntity>() == 64);

/// A [`QuantizedEntity`] without its derived second difference (kept apart, in
/// `SentHistory::accels`: only the second-order predictor has one), so that a
/// [`SentEntity`] fits one cache line.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct CompactState {
    pos_q: [i32; 3],
    tick: Tick,
    vel_fp: [i32; CHANNELS],
    yaw_q: u16,
    span_ticks: u16,
    flags: u8,
    /// The acceleration is not zero (read it from `accels`).
    has_acc: bool,
}

/// What `SentHistory` keeps per entity: one cache line (`base_for` reads it for every
/// record, an acknowledgement writes it).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[repr(align(64))]
struct SentEntity {
    /// The entity holding the handle, [`FREE_ID`] while it is free: what a key hint is
    /// checked against.
    id: EntityId,
    /// Bumped each time the handle is freed: records sent to an earlier holder (another
    /// entity, or this one before it left) carry an older generation, and their
    /// acknowledgements are ignored.
    generation: u32,
    /// Seq of the newest delivered record ([`NOT_DELIVERED`]: none).
    delivered_seq: u64,
    /// The delivered record is the client's newest state of the entity only when its seq
    /// is at least this: one past the newest record of the entity (this incarnation) whose
    /// delivery will never be known (its snapshot fell out of every ack's window). Until a
    /// newer record is delivered the entity is sent as full records.
    sure_from_seq: u64,
    /// Its state.
    delivered: CompactState,
}

/// Server-side record of what was sent to one client and what it acknowledged.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SentHistory {
    tracker: SendTracker,
    slots: Vec<SentSlot>,
    /// The records of the live slots (and of dead ones between them), oldest first.
    records: VecDeque<SentRecord>,
    /// Absolute position of `records[0]` (positions only grow).
    records_front: u64,
    /// Every snapshot before this seq is resolved (its slot dead); the ring starts at this
    /// snapshot's records.
    oldest_unresolved: u64,
    /// Per-entity state, dense, indexed by the entity's handle. A handle is given when an
    /// entity is first sent and freed (reused first) when it is removed; slot records keep
    /// the handle, so an acknowledgement reaches the entity without a lookup, and the index
    /// below holds 4-byte handles instead of whole states.
    entities: Vec<SentEntity>,
    /// The delivered state's acceleration, by handle (read only when `has_acc`; empty until
    /// one is not zero).
    accels: Vec<[i32; CHANNELS]>,
    /// Entity -> handle, for the entities the client has or is being sent.
    handles: HandleIndex,
    /// Per caller's record key, the handle of the record last sent under it, or
    /// [`NO_HINT`] (see [`SentHistory::base_for_keyed`]). A hint counts only while that
    /// handle holds the id looked up, so a stale or foreign hint is a miss, never a wrong
    /// handle.
    key_hints: Vec<u32>,
    /// Records whose handle `on_sent_keyed` found through a hint (tests check hints hit).
    #[cfg(test)]
    hint_hits: u64,
    /// Freed handles.
    free_handles: Vec<u32>,
    /// Entities the client must forget, each with the seq of the first snapshot that can
    /// carry its current leave: only the delivery of a snapshot from then on ends it (a
    /// late ack of an earlier leave of the same entity, which left, came back and left
    /// again, does not).
    pending_leaves: BTreeMap<EntityId, u64>,
    /// Scratch copy of `pending_leaves`' ids in ascending order, for the encoder.
    leave_list: Vec<EntityId>,
    newest_delivered: Option<u64>,
}

impl Default for SentHistory {
    fn default() -> Self {
        Self::new()
    }
}

impl SentHistory {
    /// An empty history; the first snapshot gets seq 0.
    #[must_use]
    pub fn new() -> Self {
        SentHistory {
            tracker: SendTracker::new(),
            slots: vec![SentSlot::default(); SLOTS],
            records: VecDeque::new(),
            records_front: 0,
            oldest_unresolved: 0,
            entities: Vec::new(),
            accels: Vec::new(),
            handles: HandleIndex::default(),
            key_hints: Vec::new(),
            #[cfg(test)]
            hint_hits: 0,
            free_handles: Vec::new(),
            pending_leaves: BTreeMap::new(),
            leave_list: Vec::new(),
            newest_delivered: None,
        }
    }

    /// Extended seq of the next snapshot.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.tracker.next_seq()
    }

    /// The snapshot baseline for the next snapshot: newest delivered seq, if within the
    /// window.
    #[must_use]
    pub fn baseline_seq(&self) -> Option<u64> {
        let next = self.next_seq();
        self.newest_delivered
            .filter(|&s| next - s <= BASELINE_WINDOW)
    }

    /// How `id` must be coded in the next snapshot. `archetype` is used if it must enter.
    ///
    /// The delivered baseline is used unless a newer record of `id` may have been applied
    /// unbeknown to the server (see the module docs); then the record is full.
    #[must_use]
    pub fn base_for(&self, id: EntityId, archetype: u16) -> RecordBase {
        self.base_for_keyed(id, None, archetype)
    }

    /// [`SentHistory::base_for`] with the record's `key`: a small number the caller gives
    /// the entity's record (the zone uses its index in the tick's world frame), used as a
    /// hint to find the entity's handle without searching the id index. [`on_sent_keyed`]
    /// notes, per key, the handle of the record sent under it; a hint counts only while
    /// that handle still holds `id` (a freed handle holds none), so a key that now
    /// stands for another entity (the frame changed, or the client was handed over from
    /// another zone) or a handle freed since just falls back to the index. Any key gives
    /// the same result; the right one is faster.
    ///
    /// [`on_sent_keyed`]: SentHistory::on_sent_keyed
    #[must_use]
    pub fn base_for_keyed(&self, id: EntityId, key: Option<u32>, archetype: u16) -> RecordBase {
        let Some((handle, e)) = self
            .hinted_handle_of(id, key)
            .or_else(|| self.handles.get(id))
            .and_then(|h| Some((h, self.entities.get(h as usize)?)))
        else {
            return RecordBase::Enter { archetype };
        };
        if e.delivered_seq == NOT_DELIVERED {
            return RecordBase::Enter { archetype };
        }
        if e.delivered_seq >= e.sure_from_seq {
            RecordBase::Delta {
                seq: e.delivered_seq,
                state: self.expand(handle, &e.delivered),
            }
        } else {
            RecordBase::Full
        }
    }

    /// [`hinted_handle`] in this history.
    #[inline]
    fn hinted_handle_of(&self, id: EntityId, key: Option<u32>) -> Option<u32> {
        hinted_handle(&self.key_hints, &self.entities, id, key)
    }

    /// The full state of a compact one held under `handle`.
    #[inline]
    fn expand(&self, handle: u32, c: &CompactState) -> QuantizedEntity {
        QuantizedEntity {
            pos_q: c.pos_q,
            yaw_q: c.yaw_q,
            flags: c.flags,
            vel_fp: c.vel_fp,
            acc_fp: if c.has_acc {
                self.accels
                    .get(handle as usize)
                    .copied()
                    .unwrap_or([0; CHANNELS])
            } else {
                [0; CHANNELS]
            },
            span_ticks: c.span_ticks,
            tick: c.tick,
        }
    }

    /// Leaves to send in the next snapshot, ascending.
    #[must_use]
    pub fn pending_leaves(&mut self) -> &[EntityId] {
        self.leave_list.clear();
        self.leave_list.extend(self.pending_leaves.keys().copied());
        &self.leave_list
    }

    /// The client must forget `id`: a leave is repeated until delivered, and the entity's
    /// baselines are dropped (if it comes back it enters again). Callers must call this when
    /// an entity leaves the client's interest or despawns: entries are only freed here.
    pub fn remove(&mut self, id: EntityId) {
        if let Some(h) = self.handles.remove(id) {
            if let Some(e) = self.entities.get_mut(h as usize) {
                e.generation = e.generation.wrapping_add(1);
                e.id = FREE_ID;
                e.delivered_seq = NOT_DELIVERED;
            }
            self.free_handles.push(h);
            let next = self.next_seq();
            self.pending_leaves.insert(id, next);
        }
    }

    /// Records that the snapshot with extended seq `seq` (must be [`SentHistory::next_seq`])
    /// was sent carrying `written` and the first `leaves_written` pending leaves (in the
    /// order [`SentHistory::pending_leaves`] gave them).
    pub fn on_sent(&mut self, seq: u64, written: &[WrittenRecord], leaves_written: usize) {
        self.on_sent_keyed(seq, written, leaves_written, |_| None);
    }

    /// [`SentHistory::on_sent`] with each written record's key (see
    /// [`SentHistory::base_for_keyed`]): the record's handle is found through the key's hint
    /// when it is still valid, and the hint is set to it.
    pub fn on_sent_keyed(
        &mut self,
        seq: u64,
        written: &[WrittenRecord],
        leaves_written: usize,
        key_of: impl Fn(&WrittenRecord) -> Option<u32>,
    ) {
        debug_assert_eq!(seq, self.next_seq(), "on_sent out of order");
        let Self {
            tracker,
            slots,
            records,
            records_front,
            oldest_unresolved,
            entities,
            handles,
            key_hints,
            #[cfg(test)]
            hint_hits,
            free_handles,
            pending_leaves,
            leave_list,
            ..
        } = self;
        // The slot's previous snapshot is 64 seqs old: if no ack resolved it, none will.
        tracker.on_send(|_| {});
        let Some(slot) = slots.get_mut(slot_index(seq)) else {
            return;
        };
        kill_unsure(slot, records, *records_front, entities);
        *oldest_unresolved = (*oldest_unresolved).max(seq.saturating_sub(SLOTS as u64 - 1));
        Self::trim(seq, slots, records, records_front, oldest_unresolved);
        let Some(slot) = slots.get_mut(slot_index(seq)) else {
            return;
        };
        slot.seq = seq;
        slot.live = true;
        slot.records_from = *records_front + records.len() as u64;
        slot.leaves.clear();
        slot.owner = None;
        for rec in written {
            let key = key_of(rec);
            let hinted = hinted_handle(key_hints, entities, rec.id, key);
            #[cfg(test)]
            {
                *hint_hits += u64::from(hinted.is_some());
            }
            let make = || match free_handles.pop() {
                Some(h) => {
                    if let Some(e) = entities.get_mut(h as usize) {
                        // Freed with its generation bumped and nothing delivered.
                        e.id = rec.id;
                        e.sure_from_seq = 0;
                    }
                    h
                }
                None => {
                    entities.push(SentEntity {
                        id: rec.id,
                        generation: 0,
                        delivered_seq: NOT_DELIVERED,
                        sure_from_seq: 0,
                        delivered: CompactState::default(),
                    });
                    // Handles count entities present at once (at most the grid's entities,
                    // far below 2^32).
                    (entities.len() - 1) as u32
                }
            };
            let handle = match hinted {
                Some(h) => h,
                None => handles.get_or_insert_with(rec.id, make),
            };
            if let Some(key) = key {
                // As many places as handles (a power of two): grows with the entities the
                // client has, whatever the keys' range. Growing drops the hints.
                if key_hints.len() < entities.len() {
                    let places = entities.len().next_power_of_two().max(MIN_HINT_PLACES);
                    key_hints.clear();
                    key_hints.resize(places, NO_HINT);
                }
                // At least MIN_HINT_PLACES places now (the handle exists, so entities is
                // not empty).
                let mask = key_hints.len() - 1;
                if let Some(hint) = key_hints.get_mut(key as usize & mask) {
                    *hint = handle;
                }
            }
            let Some(e) = entities.get_mut(handle as usize) else {
                debug_assert!(false, "handle {handle} out of range");
                continue;
            };
            // A record for an entity with a pending leave is its re-enter: the client applies
            // leaves before records, so the leave is no longer needed.
            pending_leaves.remove(&rec.id);
            records.push_back(SentRecord {
                handle,
                generation: e.generation,
                state: rec.state,
            });
        }
        slot.records_to = *records_front + records.len() as u64;
        slot.leaves.extend(
            leave_list
                .iter()
                .take(leaves_written)
                .filter(|id| pending_leaves.contains_key(id)),
        );
    }

    /// Moves `oldest_unresolved` past resolved snapshots (up to `next`, the next seq to
    /// send) and drops the records before its snapshot's from the ring; gives back capacity
    /// a burst left behind (every entity entering at once): the ring keeps room for twice
    /// what it holds, and at least 256 records. Amortized O(1) per snapshot.
    fn trim(
        next: u64,
        slots: &[SentSlot],
        records: &mut VecDeque<SentRecord>,
        records_front: &mut u64,
        oldest_unresolved: &mut u64,
    ) {
        while *oldest_unresolved < next
            && slots
                .get(slot_index(*oldest_unresolved))
                .is_none_or(|s| !s.live || s.seq != *oldest_unresolved)
        {
            *oldest_unresolved += 1;
        }
        let ring_end = *records_front + records.len() as u64;
        let keep_from = if *oldest_unresolved < next {
            slots
                .get(slot_index(*oldest_unresolved))
                .map_or(ring_end, |s| s.records_from)
        } else {
            ring_end
        };
        let drop_len = (keep_from.saturating_sub(*records_front) as usize).min(records.len());
        records.drain(..drop_len);
        *records_front += drop_len as u64;
        if records.capacity() > 2 * records.len().max(256) {
            records.shrink_to(records.len() + records.len() / 2);
        }
    }

    /// Notes the owner state the snapshot `seq` (just sent: call after
    /// [`SentHistory::on_sent`]) carried, so that a later snapshot whose baseline it is can
    /// code its owner state against it.
    pub fn note_owner(&mut self, seq: u64, owner: Option<CharacterState>) {
        if let Some(slot) = self.slots.get_mut(slot_index(seq))
            && slot.seq == seq
        {
            slot.owner = owner;
        }
    }

    /// The owner state snapshot `seq` carried, while its slot still holds it (the snapshot
    /// baseline is at most 32 seqs back, the slots reach 64).
    #[must_use]
    pub fn owner_at(&self, seq: u64) -> Option<&CharacterState> {
        let slot = self.slots.get(slot_index(seq))?;
        (slot.seq == seq).then_some(slot.owner.as_ref()).flatten()
    }

    /// Processes the client's ack of snapshots.
    pub fn on_ack(&mut self, ack: AckFields) {
        let Self {
            tracker,
            slots,
            records,
            records_front,
            oldest_unresolved,
            entities,
            accels,
            handles,
            pending_leaves,
            newest_delivered,
            ..
        } = self;
        tracker.on_ack(
            ack,
            |seq| {
                let Some(slot) = slots.get_mut(slot_index(seq)) else {
                    return;
                };
                if !slot.live || slot.seq != seq {
                    return;
                }
                slot.live = false;
                if newest_delivered.is_none_or(|n| seq > n) {
                    *newest_delivered = Some(seq);
                }
                let from = slot.records_from.saturating_sub(*records_front) as usize;
                let to = slot.records_to.saturating_sub(*records_front) as usize;
                for rec in records.range(from.min(records.len())..to.min(records.len())) {
                    if let Some(e) = entities.get_mut(rec.handle as usize)
                        && e.generation == rec.generation
                        && (e.delivered_seq == NOT_DELIVERED || seq > e.delivered_seq)
                    {
                        let st = &rec.state;
                        let has_acc = st.acc_fp != [0; CHANNELS];
                        if has_acc {
                            // Grown only once an acceleration shows up (the second-order
                            // predictor): nothing per entity otherwise.
                            let h = rec.handle as usize;
                            if accels.len() <= h {
                                accels.resize(h + 1, [0; CHANNELS]);
                            }
                            if let Some(a) = accels.get_mut(h) {
                                *a = st.acc_fp;
                            }
                        }
                        e.delivered_seq = seq;
                        e.delivered = CompactState {
                            pos_q: st.pos_q,
                            tick: st.tick,
                            vel_fp: st.vel_fp,
                            yaw_q: st.yaw_q,
                            span_ticks: st.span_ticks,
                            flags: st.flags,
                            has_acc,
                        };
                    }
                }
                for id in &slot.leaves {
                    if !handles.contains(*id)
                        && pending_leaves.get(id).is_some_and(|&since| seq >= since)
                    {
                        pending_leaves.remove(id);
                    }
                }
            },
            // The tracker's "lost" seqs (more than ACK_WINDOW behind this ack, never
            // acknowledged) are older than the newest delivered one, so the pass below
            // resolves them, as unsure.
            |_| {},
        );
        // The client applies snapshots in seq order and acknowledges only what it applied,
        // so a snapshot older than one it acknowledged and not acknowledged itself by now
        // never will be: its records cannot become baselines. The ack that named the newest
        // one listed every snapshot the client had applied among the ACK_WINDOW before it,
        // so those not listed are known not applied; an older one may have been applied
        // with every ack naming it lost (unsure: nothing will ever say).
        if let Some(newest) = *newest_delivered {
            for seq in *oldest_unresolved..newest {
                if let Some(slot) = slots.get_mut(slot_index(seq))
                    && slot.seq == seq
                {
                    if seq + ACK_WINDOW < newest {
                        kill_unsure(slot, records, *records_front, entities);
                    } else {
                        slot.live = false;
                    }
                }
            }
        }
        let next = tracker.next_seq();
        Self::trim(next, slots, records, records_front, oldest_unresolved);
    }

    /// Heap bytes this history holds, from its buffers' capacities (the set of pending
    /// leaves counted at twice its elements' size, an estimate of a B-tree's nodes).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.slots.capacity() * size_of::<SentSlot>()
            + self
                .slots
                .iter()
                .map(|s| s.leaves.capacity() * size_of::<EntityId>())
                .sum::<usize>()
            + self.records.capacity() * size_of::<SentRecord>()
            + self.entities.capacity() * size_of::<SentEntity>()
            + self.accels.capacity() * size_of::<[i32; CHANNELS]>()
            + self.handles.heap_bytes()
            + self.key_hints.capacity() * size_of::<u32>()
            + self.free_handles.capacity() * size_of::<u32>()
            + self.pending_leaves.len() * 2 * size_of::<EntityId>()
            + self.leave_list.capacity() * size_of::<EntityId>()
    }

    /// Records whose handle [`SentHistory::on_sent_keyed`] found through a hint.
    #[cfg(test)]
    pub(crate) fn hint_hits(&self) -> u64 {
        self.hint_hits
    }

    /// Records held for snapshots in flight (for tests and diagnostics).
    #[must_use]
    pub fn records_in_flight(&self) -> usize {
        self.records.len()
    }

    /// The newest delivered state of `id` and its seq (for tests and diagnostics).
    #[must_use]
    pub fn delivered(&self, id: EntityId) -> Option<(u64, QuantizedEntity)> {
        let h = self.handles.get(id)?;
        let e = self.entities.get(h as usize)?;
        (e.delivered_seq != NOT_DELIVERED).then(|| (e.delivered_seq, self.expand(h, &e.delivered)))
    }
}

/// Marks a live `slot` dead without knowing whether its snapshot was applied: each entity
/// it carried a record of (same incarnation) may now hold that record on the client
/// unbeknown to the server, so it gets full records until a newer record of it is
/// delivered ([`SentEntity::sure_from_seq`]).
fn kill_unsure(
    slot: &mut SentSlot,
    records: &VecDeque<SentRecord>,
    records_front: u64,
    entities: &mut [SentEntity],
) {
    if !slot.live {
        return;
    }
    slot.live = false;
    let from = slot.records_from.saturating_sub(records_front) as usize;
    let to = slot.records_to.saturating_sub(records_front) as usize;
    for rec in records.range(from.min(records.len())..to.min(records.len())) {
        if let Some(e) = entities.get_mut(rec.handle as usize)
            && e.generation == rec.generation
        {
            e.sure_from_seq = e.sure_from_seq.max(slot.seq + 1);
        }
    }
}

/// What [`ReceivedHistory::on_snapshot`] did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Decoded and applied; it will be acknowledged.
    Applied,
    /// Not newer than the newest applied snapshot: dropped, not acknowledged.
    Stale,
}

/// Client-side record of received entity states.
#[derive(Debug, Clone, Default)]
pub struct ReceivedHistory {
    tracker: ReceiveTracker,
    entities: IdMap<VecDeque<(u64, QuantizedEntity)>>,
    /// The owner states of the newest applied snapshots (at most [`RING_LEN`]), oldest
    /// first: a snapshot's owner state may be coded against its snapshot baseline's.
    owners: VecDeque<(u64, CharacterState)>,
}

impl BaselineLookup for ReceivedHistory {
    fn newest_at_or_before(&self, id: EntityId, seq: u64) -> Option<(u64, &QuantizedEntity)> {
        self.entities
            .get(&id)?
            .iter()
            .rev()
            .find(|(s, _)| *s <= seq)
            .map(|(s, st)| (*s, st))
    }

    fn owner_at(&self, seq: u64) -> Option<&CharacterState> {
        self.owners
            .iter()
            .rev()
            .find(|(s, _)| *s == seq)
            .map(|(_, o)| o)
    }
}

impl ReceivedHistory {
    /// An empty history.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The ack to put in the next input datagram.
    #[must_use]
    pub fn ack_fields(&self) -> Option<AckFields> {
        self.tracker.ack_fields()
    }

    /// Number of entities the client holds.
    #[must_use]
    pub fn entity_count(&self) -> usize {
        self.entities.len()
    }

    /// The owner state of the newest applied snapshot that carried one.
    #[must_use]
    pub fn newest_owner(&self) -> Option<&CharacterState> {
        self.owners.back().map(|(_, o)| o)
    }

    /// The newest state held for `id`.
    #[must_use]
    pub fn latest(&self, id: EntityId) -> Option<&QuantizedEntity> {
        self.entities.get(&id)?.back().map(|(_, s)| s)
    }

    /// Decodes only the fixed part of snapshot datagram `seq` (wire) and takes the snapshot
    /// as applied without reading its records (a client that tracks no remote entities, see
    /// `SnapshotHandling::HeaderOnly`): it will be acknowledged. `Ok(None)`: stale (not
    /// newer than the newest one), dropped. The server then codes deltas against states
    /// this history does not hold, so a history used this way must never decode a full
    /// snapshot afterwards.
    pub fn on_snapshot_head(
        &mut self,
        codec: &SnapshotCodec,
        seq: u16,
        payload: &[u8],
    ) -> Result<Option<SnapshotHead>, CodecError> {
        if !self.tracker.is_newest(seq) {
            return Ok(None);
        }
        let seq_ext = self.tracker.extend(seq);
        let head = codec.decode_head(payload, seq_ext, self)?;
        self.note_owner(seq_ext, head.owner);
        let outcome = self.tracker.record(seq);
        debug_assert_eq!(outcome, ReceiveOutcome::Newest);
        Ok(Some(head))
    }

    /// Keeps the owner state of applied snapshot `seq` (extended) for later deltas.
    fn note_owner(&mut self, seq: u64, owner: Option<CharacterState>) {
        if let Some(o) = owner {
            while self.owners.len() >= RING_LEN {
                self.owners.pop_front();
            }
            self.owners.push_back((seq, o));
        }
    }

    /// Decodes the payload of snapshot datagram `seq` (wire) into `out` and applies it, or
    /// drops it when stale. Errors leave the history unchanged.
    pub fn on_snapshot(
        &mut self,
        codec: &SnapshotCodec,
        seq: u16,
        payload: &[u8],
        out: &mut DecodedSnapshot,
    ) -> Result<ApplyOutcome, CodecError> {
        if !self.tracker.is_newest(seq) {
            return Ok(ApplyOutcome::Stale);
        }
        let seq_ext = self.tracker.extend(seq);
        codec.decode(payload, seq_ext, self, out)?;
        self.note_owner(seq_ext, out.owner);
        for id in &out.leaves {
            self.entities.remove(id);
        }
        for rec in &out.entities {
            let ring = self.entities.entry(rec.id).or_default();
            // Enter and full records keep older states: an enter is repeated until the
            // server learns one was delivered, and it may then reference any of them. States
            // of an earlier incarnation (re-enter without the leave arriving) sit at older
            // seqs the server never references again.
            if let Some(b) = rec.baseline_seq {
                // The server's baseline only moves forward: older states are useless.
                while ring.front().is_some_and(|(s, _)| *s < b) {
                    ring.pop_front();
                }
            }
            while ring.len() >= RING_LEN {
                ring.pop_front();
            }
            ring.push_back((seq_ext, rec.state));
        }
        let outcome = self.tracker.record(seq);
        debug_assert_eq!(outcome, ReceiveOutcome::Newest);
        Ok(ApplyOutcome::Applied)
    }
}
