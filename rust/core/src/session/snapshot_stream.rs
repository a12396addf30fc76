//! The snapshot half of a server connection: what was sent to the client, what it
//! acknowledged, and how large its records run.
//!
//! **Acknowledgements are processed in the replication phase.** A snapshot ack arrives in
//! the header of every input datagram, between ticks, on the zone thread. Processing it
//! there (walking the acknowledged slots, moving per-entity baselines) would put
//! replication work outside the replication phase, where neither the tick budget nor the
//! benchmarks see it. So an ack is only queued when it arrives ([`SnapshotStream::queue_ack`],
//! a copy of 8 bytes) and the queue is processed, in arrival order, at the start of the
//! client's next replication ([`SnapshotStream::process_acks`], before the records' bases
//! are taken; [`SnapshotStream::encode_next`] processes what is left only after sending,
//! since the bases must match the snapshot baseline it writes). The outcome is exactly the
//! one of processing each ack on arrival: nothing is sent between the arrival and the
//! processing, and the send tracker's result depends only on the order of sends and acks.
//! The queue holds at most [`MAX_PENDING_ACKS`] acks; one more processes the queue first,
//! which keeps the order and so the outcome (more can arrive between two replications: a
//! datagram burst, or ticks the zone simulates without replicating).

use crate::codec::CodecError;
use crate::codec::baseline::SentHistory;
use crate::codec::packet::AckFields;
use crate::codec::record_cache::RecordCache;
use crate::codec::snapshot::{
    EncodeReport, RecordBase, RecordSource, SnapshotCodec, SnapshotIn, WrittenRecord,
};
use crate::entity::EntityId;

/// Acks queued between two replications of one client, at most.
pub const MAX_PENDING_ACKS: usize = 64;

/// Bits per record assumed before the first snapshot measured it.
const INITIAL_RECORD_BITS: u32 = 48;

/// One connection's snapshot sequence, baselines and queued acks. See the module docs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SnapshotStream {
    sent: SentHistory,
    /// Acks received since the last processing, oldest first.
    pending_acks: Vec<AckFields>,
    /// Running mean of bits per entity record (fixed point, 1/16 bit), for budget
    /// estimates.
    record_bits_x16: u32,
}

impl Default for SnapshotStream {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotStream {
    /// Nothing sent yet; the first snapshot gets seq 0.
    #[must_use]
    pub fn new() -> Self {
        SnapshotStream {
            sent: SentHistory::new(),
            pending_acks: Vec::new(),
            record_bits_x16: INITIAL_RECORD_BITS * 16,
        }
    }

    /// Queues an ack from an input datagram's header (processed by
    /// [`SnapshotStream::process_acks`]).
    pub fn queue_ack(&mut self, ack: AckFields) {
        if self.pending_acks.len() >= MAX_PENDING_ACKS {
            self.process_acks();
        }
        self.pending_acks.push(ack);
    }

    /// Acks queued and not processed yet.
    #[must_use]
    pub fn pending_ack_count(&self) -> usize {
        self.pending_acks.len()
    }

    /// Applies the queued acks in arrival order.
    pub fn process_acks(&mut self) {
        for ack in self.pending_acks.drain(..) {
            self.sent.on_ack(ack);
        }
    }

    /// How entity `id` must be coded in the next snapshot (process the acks first); `key`
    /// is the record's hint key (`SentHistory::base_for_keyed`: never changes the result),
    /// to be given again by the record's [`RecordSource::key`].
    #[must_use]
    pub fn record_base(&self, id: EntityId, key: Option<u32>, archetype: u16) -> RecordBase {
        self.sent.base_for_keyed(id, key, archetype)
    }

    /// Heap bytes of the snapshot history and the queued acknowledgements (capacities).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.sent.heap_bytes() + self.pending_acks.capacity() * std::mem::size_of::<AckFields>()
    }

    /// The client must forget `id`: a leave record is repeated until delivered.
    pub fn forget_entity(&mut self, id: EntityId) {
        self.sent.remove(id);
    }

    /// Estimated encoded size of one entity record, bits (running mean of what was sent).
    #[must_use]
    pub fn estimated_record_bits(&self) -> u32 {
        self.record_bits_x16.div_ceil(16)
    }

    /// Encodes the next snapshot into `out.datagram`: `snap`'s seq, baseline and owner
    /// baseline are filled in here (the caller's are ignored), the pending leaves go first,
    /// then `records` until the datagram is full. `out.written` receives the records that
    /// made it in.
    ///
    /// `records`' bases must come from [`SnapshotStream::record_base`] with no ack processed
    /// since: the wire does not name a delta's baseline, so the snapshot baseline written
    /// here must be the one the bases were chosen for. Acks still queued are therefore
    /// processed after the snapshot is sent, not before (call
    /// [`SnapshotStream::process_acks`] before taking the bases).
    pub fn encode_next<R: RecordSource>(
        &mut self,
        codec: &SnapshotCodec,
        mut snap: SnapshotIn,
        records: &[R],
        out: &mut EncodeBuffers<'_>,
    ) -> Result<EncodeReport, CodecError> {
        let EncodeBuffers {
            datagram,
            written,
            cache,
        } = out;
        let seq = self.sent.next_seq();
        snap.seq = seq;
        snap.baseline_seq = self.sent.baseline_seq();
        snap.owner_baseline = snap
            .baseline_seq
            .and_then(|b| self.sent.owner_at(b))
            .copied();
        let report = {
            let leaves = self.sent.pending_leaves();
            codec.encode_with(
                &snap,
                leaves,
                records,
                datagram,
                written,
                cache.as_deref_mut(),
            )?
        };
        self.sent
            .on_sent_keyed(seq, written, report.leaves_written, |w| {
                records.get(w.index).and_then(RecordSource::key)
            });
        self.sent.note_owner(seq, snap.owner);
        self.process_acks();
        if let Some(bits) = report.record_bits.checked_div(report.records_written) {
            // Exponential mean with weight 1/8 on the newest snapshot.
            self.record_bits_x16 = (self.record_bits_x16 * 7 + bits as u32 * 16) / 8;
        }
        Ok(report)
    }
}

/// Where a snapshot is encoded: reused from client to client.
#[derive(Debug)]
pub struct EncodeBuffers<'a> {
    /// The datagram (cleared first).
    pub datagram: &'a mut Vec<u8>,
    /// The records that made it in (cleared first).
    pub written: &'a mut Vec<WrittenRecord>,
    /// With a cache, delta record bodies computed for other clients are reused (the
    /// datagram is the same; see `codec::record_cache`).
    pub cache: Option<&'a mut RecordCache>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::entity_state::{NetEntityState, Quantization, SnapshotConfig};
    use crate::codec::snapshot::EntityRecordIn;
    use crate::time::Tick;

    /// The fields of a snapshot at `tick` with no owner and no input ack (the stream fills
    /// in seq and baseline).
    fn bare_snapshot(tick: u32) -> SnapshotIn {
        SnapshotIn {
            owner_baseline: None,
            len_limit_bytes: None,
            seq: 0,
            ack: None,
            tick: Tick(tick),
            ack_input_seq: 0,
            baseline_seq: None,
            owner: None,
        }
    }

    /// Sends 40 snapshots of three entities on two streams; `a` applies each ack to its
    /// history as it arrives (the old behaviour, bypassing the queue), `b` queues them (two
    /// or three a tick, in order) until its next snapshot. Every record base and datagram
    /// is the same.
    #[test]
    fn queued_acks_give_what_acks_applied_on_arrival_give() {
        let codec = SnapshotCodec::new(Quantization::new(SnapshotConfig::default()).unwrap());
        let (mut a, mut b) = (SnapshotStream::new(), SnapshotStream::new());
        let (mut out_a, mut out_b, mut written) = (Vec::new(), Vec::new(), Vec::new());
        let ids = [EntityId(3), EntityId(7), EntityId(9)];
        for tick in 1..=40u32 {
            if tick == 20 {
                a.forget_entity(ids[1]);
                b.forget_entity(ids[1]);
            }
            let records = |s: &SnapshotStream| -> Vec<EntityRecordIn> {
                ids.iter()
                    .filter(|id| tick < 20 || **id != ids[1])
                    .map(|&id| EntityRecordIn {
                        id,
                        state: NetEntityState {
                            position_m: glam::Vec3::new(tick as f32 * 0.1, id.0 as f32, 0.0),
                            yaw_rad: 0.0,
                            flags: 1,
                        },
                        base: s.record_base(id, None, 1),
                    })
                    .collect()
            };
            let (ra, rb) = (records(&a), {
                b.process_acks();
                records(&b)
            });
            assert_eq!(ra, rb, "bases at tick {tick}");
            let snap = bare_snapshot(tick);
            a.encode_next(
                &codec,
                snap,
                &ra,
                &mut EncodeBuffers {
                    datagram: &mut out_a,
                    written: &mut written,
                    cache: None,
                },
            )
            .unwrap();
            b.encode_next(
                &codec,
                snap,
                &rb,
                &mut EncodeBuffers {
                    datagram: &mut out_b,
                    written: &mut written,
                    cache: None,
                },
            )
            .unwrap();
            assert_eq!(out_a, out_b, "datagram at tick {tick}");
            // Input datagrams arrive two or three a tick, each acking what the client had
            // then (snapshots two ticks old, every 5th lost): `a` applies each at once,
            // `b` queues them.
            for late in [4u32, 3, 3] {
                let Some(newest) = tick.checked_sub(late) else {
                    continue;
                };
                if late == 4 && tick % 2 == 0 {
                    continue;
                }
                let newest = newest - u32::from(newest % 5 == 0 && newest > 0);
                let ack = AckFields {
                    ack: u16::try_from(newest).unwrap(),
                    ack_bits: 0b10,
                };
                a.sent.on_ack(ack);
                b.queue_ack(ack);
            }
        }
        assert!(matches!(
            a.record_base(ids[0], None, 1),
            RecordBase::Delta { .. }
        ));
    }

    /// Records given with keys (`QuantizedRecordIn::key`, as the zone gives them) reach
    /// the history's hints through `encode_next`, and the datagrams are those of records
    /// without keys.
    #[test]
    fn record_keys_reach_the_hints_and_change_no_datagram() {
        use crate::codec::entity_state::QuantizedState;
        use crate::codec::snapshot::QuantizedRecordIn;
        let codec = SnapshotCodec::new(Quantization::new(SnapshotConfig::default()).unwrap());
        let (mut plain, mut keyed) = (SnapshotStream::new(), SnapshotStream::new());
        let (mut out_plain, mut out_keyed, mut written) = (Vec::new(), Vec::new(), Vec::new());
        for tick in 1..=20u32 {
            let mut datagrams = Vec::new();
            for (s, out, use_keys) in [
                (&mut plain, &mut out_plain, false),
                (&mut keyed, &mut out_keyed, true),
            ] {
                let records: Vec<QuantizedRecordIn> = (1..=8u32)
                    .map(|id| {
                        let key = use_keys.then_some(id - 1);
                        QuantizedRecordIn {
                            id: EntityId(id),
                            state: QuantizedState {
                                pos_q: [(tick * id) as i32, 0, 0],
                                yaw_q: 0,
                                flags: 0,
                            },
                            base: s.record_base(EntityId(id), key, 1),
                            key,
                        }
                    })
                    .collect();
                let snap = bare_snapshot(tick);
                let buffers = &mut EncodeBuffers {
                    datagram: out,
                    written: &mut written,
                    cache: None,
                };
                s.encode_next(&codec, snap, &records, buffers).unwrap();
                datagrams.push(buffers.datagram.clone());
                // Every snapshot is acknowledged before the next tick.
                s.queue_ack(AckFields {
                    ack: u16::try_from(tick - 1).unwrap(),
                    ack_bits: 0,
                });
            }
            assert_eq!(datagrams[0], datagrams[1], "datagram at tick {tick}");
        }
        assert_eq!(plain.sent.hint_hits(), 0);
        // Eight entities, the first send of each finds no hint.
        assert_eq!(keyed.sent.hint_hits(), 8 * 19);
    }

    #[test]
    fn a_full_queue_is_processed_before_the_next_ack() {
        let mut s = SnapshotStream::new();
        let ack = AckFields {
            ack: 0,
            ack_bits: 0,
        };
        for _ in 0..MAX_PENDING_ACKS {
            s.queue_ack(ack);
        }
        assert_eq!(s.pending_ack_count(), MAX_PENDING_ACKS);
        s.queue_ack(ack);
        assert_eq!(s.pending_ack_count(), 1);
        s.process_acks();
        assert_eq!(s.pending_ack_count(), 0);
    }

    /// An ack queued after the bases were taken must not move the snapshot baseline the
    /// snapshot is written with: the wire does not name a delta's baseline, so the client
    /// would decode against a newer state than the one the server coded against.
    #[test]
    fn an_ack_queued_after_the_bases_were_taken_waits_for_the_next_snapshot() {
        use crate::codec::baseline::{ApplyOutcome, ReceivedHistory};
        use crate::codec::packet::PacketHeader;
        use crate::codec::snapshot::DecodedSnapshot;
        /// A server stream and a client history that applies every snapshot.
        struct Link {
            codec: SnapshotCodec,
            stream: SnapshotStream,
            client: ReceivedHistory,
            datagram: Vec<u8>,
            written: Vec<WrittenRecord>,
            dec: DecodedSnapshot,
            tick: u32,
        }
        impl Link {
            /// Sends entity 5 at `x` metres with its base taken first (`ack_between` is
            /// queued after that); the client must decode exactly what was written.
            fn send(&mut self, x: f32, ack_between: Option<AckFields>) {
                self.tick += 1;
                let records = [EntityRecordIn {
                    id: EntityId(5),
                    state: NetEntityState {
                        position_m: glam::Vec3::new(x, 0.0, 0.0),
                        yaw_rad: 0.0,
                        flags: 0,
                    },
                    base: self.stream.record_base(EntityId(5), None, 1),
                }];
                if let Some(ack) = ack_between {
                    self.stream.queue_ack(ack);
                }
                let mut out = EncodeBuffers {
                    datagram: &mut self.datagram,
                    written: &mut self.written,
                    cache: None,
                };
                let snap = bare_snapshot(self.tick);
                self.stream
                    .encode_next(&self.codec, snap, &records, &mut out)
                    .unwrap();
                let (h, payload) = PacketHeader::decode(&self.datagram).unwrap();
                let outcome = self
                    .client
                    .on_snapshot(&self.codec, h.seq, payload, &mut self.dec);
                assert_eq!(outcome, Ok(ApplyOutcome::Applied), "tick {}", self.tick);
                assert_eq!(self.dec.entities[0].state, self.written[0].state);
            }
        }
        let mut l = Link {
            codec: SnapshotCodec::new(Quantization::new(SnapshotConfig::default()).unwrap()),
            stream: SnapshotStream::new(),
            client: ReceivedHistory::new(),
            datagram: Vec::new(),
            written: Vec::new(),
            dec: DecodedSnapshot::default(),
            tick: 0,
        };
        l.send(1.0, None);
        let ack = l.client.ack_fields().unwrap();
        l.stream.queue_ack(ack);
        l.stream.process_acks();
        // Seq 1 is a delta against seq 0; the client applies it, its ack arrives late.
        l.send(2.0, None);
        let late = l.client.ack_fields().unwrap();
        // Seq 2's base is taken before that ack (against seq 0); the ack is queued before
        // the encode. Processed first, it would make seq 1 the snapshot baseline and the
        // client would decode against seq 1's state.
        l.send(3.5, Some(late));
        // Processed after seq 2: seq 3 is coded against seq 1.
        l.send(4.0, None);
        assert_eq!(l.dec.entities[0].baseline_seq, Some(1));
    }
}
