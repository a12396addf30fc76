//! Per-client baseline bookkeeping on both ends, driven by acks.
//!
//! **Server** ([`SentHistory`], one per client): numbers snapshots, remembers for each sent
//! seq which entity states and leaves it carried, and on each ack from the client learns
//! which were delivered. Per entity, the baseline is the newest *delivered* state (the
//! client is guaranteed to hold it). An entity with no delivered state since it (re)entered
//! is sent as an enter record again and again until one is delivered; a leave is repeated in
//! every snapshot until a snapshot carrying it is delivered. Baselines more than
//! [`BASELINE_WINDOW`] seqs old are not used (a full record is sent instead).
//!
//! **Client** ([`ReceivedHistory`]): applies decoded snapshots and keeps, per entity, a
//! bounded ring of the states it received (seq + quantized state) so it can resolve any
//! baseline the server may reference. **Rule: a snapshot older than (or equal to) the newest
//! one received is dropped and not acknowledged.** So "delivered" on the server means
//! "applied" on the client, which is what makes both ends agree on what the client holds.
//! A snapshot whose delta references a state the client no longer has fails with
//! [`CodecError::UnknownBaseline`]; it is not applied nor acknowledged (the session may ask
//! for a full resend; in any case the server stops using the baseline once it leaves the
//! window).
//!
//! Memory: the server keeps 64 seq slots (reused vectors) and one baseline per entity; the
//! client keeps at most [`RING_LEN`] states per entity and prunes states older than the
//! baseline the server last referenced.

use std::collections::{BTreeSet, VecDeque};

use super::ack::{ReceiveOutcome, ReceiveTracker, SendTracker};
use super::entity_state::QuantizedEntity;
use super::error::CodecError;
use super::id_map::IdMap;
use super::packet::AckFields;
use super::snapshot::{
    BASELINE_WINDOW, BaselineLookup, DecodedSnapshot, RecordBase, SnapshotCodec, WrittenRecord,
};
use crate::entity::EntityId;

/// States kept per entity on the client.
pub const RING_LEN: usize = BASELINE_WINDOW as usize + 1;
const SLOTS: usize = 64;

#[derive(Debug, Clone, Default)]
struct SentSlot {
    /// Extended seq this slot holds; meaningful only when `live`.
    seq: u64,
    live: bool,
    records: Vec<(EntityId, QuantizedEntity)>,
    leaves: Vec<EntityId>,
}

#[derive(Debug, Clone, Copy)]
struct SentEntity {
    /// Deliveries of snapshots older than this seq are ignored (they predate a re-enter).
    since_seq: u64,
    /// Newest delivered state and its seq.
    delivered: Option<(u64, QuantizedEntity)>,
}

/// Server-side record of what was sent to one client and what it acknowledged.
#[derive(Debug, Clone)]
pub struct SentHistory {
    tracker: SendTracker,
    slots: Vec<SentSlot>,
    entities: IdMap<SentEntity>,
    pending_leaves: BTreeSet<EntityId>,
    /// Scratch copy of `pending_leaves` in ascending order, for the encoder.
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
            entities: IdMap::default(),
            pending_leaves: BTreeSet::new(),
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
    #[must_use]
    pub fn base_for(&self, id: EntityId, archetype: u16) -> RecordBase {
        let next = self.next_seq();
        match self.entities.get(&id).and_then(|e| e.delivered) {
            None => RecordBase::Enter { archetype },
            Some((seq, state)) if next - seq <= BASELINE_WINDOW => RecordBase::Delta { seq, state },
            Some(_) => RecordBase::Full,
        }
    }

    /// Leaves to send in the next snapshot, ascending.
    #[must_use]
    pub fn pending_leaves(&mut self) -> &[EntityId] {
        self.leave_list.clear();
        self.leave_list.extend(self.pending_leaves.iter().copied());
        &self.leave_list
    }

    /// The client must forget `id`: a leave is repeated until delivered, and the entity's
    /// baselines are dropped (if it comes back it enters again). Callers must call this when
    /// an entity leaves the client's interest or despawns: entries are only freed here.
    pub fn remove(&mut self, id: EntityId) {
        if self.entities.remove(&id).is_some() {
            self.pending_leaves.insert(id);
        }
    }

    /// Records that the snapshot with extended seq `seq` (must be [`SentHistory::next_seq`])
    /// was sent carrying `written` and the first `leaves_written` pending leaves (in the
    /// order [`SentHistory::pending_leaves`] gave them).
    pub fn on_sent(&mut self, seq: u64, written: &[WrittenRecord], leaves_written: usize) {
        debug_assert_eq!(seq, self.next_seq(), "on_sent out of order");
        let Self {
            tracker,
            slots,
            entities,
            pending_leaves,
            leave_list,
            ..
        } = self;
        tracker.on_send(|lost| {
            if let Some(s) = slots.get_mut((lost % SLOTS as u64) as usize) {
                s.live = false;
            }
        });
        let Some(slot) = slots.get_mut((seq % SLOTS as u64) as usize) else {
            return;
        };
        slot.seq = seq;
        slot.live = true;
        slot.records.clear();
        slot.leaves.clear();
        for rec in written {
            let e = entities.entry(rec.id).or_insert(SentEntity {
                since_seq: seq,
                delivered: None,
            });
            let _ = e;
            // A record for an entity with a pending leave is its re-enter: the client applies
            // leaves before records, so the leave is no longer needed.
            pending_leaves.remove(&rec.id);
            slot.records.push((rec.id, rec.state));
        }
        slot.leaves.extend(
            leave_list
                .iter()
                .take(leaves_written)
                .filter(|id| pending_leaves.contains(id)),
        );
    }

    /// Processes the client's ack of snapshots.
    pub fn on_ack(&mut self, ack: AckFields) {
        let Self {
            tracker,
            slots,
            entities,
            pending_leaves,
            newest_delivered,
            ..
        } = self;
        let mut lost_seqs = [0u64; SLOTS];
        let mut n_lost = 0;
        tracker.on_ack(
            ack,
            |seq| {
                let Some(slot) = slots.get_mut((seq % SLOTS as u64) as usize) else {
                    return;
                };
                if !slot.live || slot.seq != seq {
                    return;
                }
                slot.live = false;
                if newest_delivered.is_none_or(|n| seq > n) {
                    *newest_delivered = Some(seq);
                }
                for (id, state) in &slot.records {
                    if let Some(e) = entities.get_mut(id)
                        && seq >= e.since_seq
                        && e.delivered.is_none_or(|(s, _)| seq > s)
                    {
                        e.delivered = Some((seq, *state));
                    }
                }
                for id in &slot.leaves {
                    if !entities.contains_key(id) {
                        pending_leaves.remove(id);
                    }
                }
            },
            |seq| {
                if let Some(l) = lost_seqs.get_mut(n_lost) {
                    *l = seq;
                    n_lost += 1;
                }
            },
        );
        for seq in lost_seqs.iter().take(n_lost) {
            if let Some(slot) = slots.get_mut((seq % SLOTS as u64) as usize)
                && slot.seq == *seq
            {
                slot.live = false;
            }
        }
    }

    /// The newest delivered state of `id` and its seq (for tests and diagnostics).
    #[must_use]
    pub fn delivered(&self, id: EntityId) -> Option<(u64, QuantizedEntity)> {
        self.entities.get(&id).and_then(|e| e.delivered)
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
}

impl BaselineLookup for ReceivedHistory {
    fn baseline(&self, id: EntityId, seq: u64) -> Option<&QuantizedEntity> {
        self.entities
            .get(&id)?
            .iter()
            // Pruning keeps the last referenced baseline at the front, and the server's
            // next reference is usually at or just after it: search from the front.
            .find(|(s, _)| *s == seq)
            .map(|(_, st)| st)
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

    /// The newest state held for `id`.
    #[must_use]
    pub fn latest(&self, id: EntityId) -> Option<&QuantizedEntity> {
        self.entities.get(&id)?.back().map(|(_, s)| s)
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
