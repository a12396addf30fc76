//! The server-to-client snapshot datagram: encoder and decoder.
//!
//! A snapshot carries the server tick, the last input sequence the server processed for
//! this client, the owner's own [`CharacterState`] losslessly (`f32` bit patterns, raw or
//! XORed with the snapshot baseline's; reconciliation compares them bit for bit), leave
//! records, and one record per remote entity: *enter*
//! (archetype + absolute state) for entities the client does not have, *full* (absolute
//! state) when no usable baseline exists, or *delta* (changed-field mask + residuals against
//! a prediction from the entity's baseline, see `entity_state`). The bit layout is specified
//! in `WIRE_FORMAT.md`.
//!
//! Budget: the encoder writes records in the order given (ids strictly ascending) and skips
//! any record that would push the datagram over `max_len_bytes`, then carries on with the
//! next one (a smaller record may still fit). It reports exactly what it wrote through
//! [`WrittenRecord`]s so the caller's history and priority accumulators stay honest. The
//! encode path does no per-entity heap allocation (the output vectors are reused).
//!
//! Measured (codec scenario, 250 steering walkers, 1 cm, 6-tick-old baselines): 10.4 bits
//! per delta record with 10-bit yaw (11.2 with 12-bit yaw; 11.9 in protocol 5; 15.1 with
//! per-axis parabolic prediction and X/Y residuals); in the replication scenario's crowd,
//! 17.7 bits per record (28.1 in protocol 5, where most records named a baseline older
//! than the snapshot's; `docs/performance.md`). Kept:
//! X/Y predicted along a circular arc turned by the derived yaw rate, yaw extrapolated at
//! constant rate (the parabola overshot turn-rate ramps), X/Y residuals in the along/cross-
//! track frame of the predicted displacement, orders 0 (position) and 2 (yaw) at short
//! prediction intervals, larger for longer ones ([`residual_orders`]). Tried and
//! not kept: a per-entity adaptive exp-Golomb order (no gain over the fixed orders); yaw
//! predicted from the decoded displacement direction and, the other way round, the
//! cross-track prediction corrected by the decoded yaw residual (both cost bits: the chord
//! direction over 6 ticks is far coarser than a 12-bit yaw); an exp-Golomb order for yaw
//! chosen from the baseline's yaw second difference (helped only while yaw was predicted
//! parabolically).
//! The caller must pass records sorted by id; choosing *which* entities go in (priority)
//! is the replication module's job.
//!
//! Baselines (protocol 6): the snapshot baseline `B` (header) is at most
//! [`BASELINE_WINDOW`] seqs back, and a delta record is coded against its entity's newest
//! state the client applied in a snapshot at or before `B`, however old. Nothing on the
//! wire names that state: both ends know it (the server from the client's acks, see
//! `baseline`). Before protocol 6 each record named its baseline, which cost about 10 bits
//! in a crowd where most records' baselines were older than `B`. The residuals' exp-Golomb
//! orders grow with the ticks the prediction spans ([`residual_orders`]), so a rarely sent
//! entity's delta stays short; the id gaps' order is chosen per snapshot. A delta whose
//! residuals would not fit 32 bits (a prediction held 255 ticks from extreme derived
//! motion) is written as a full record instead.

use super::bits::{BitReader, BitWriter};
use super::entity_state::{
    CHANNELS, Quantization, QuantizedEntity, QuantizedState, TrackFrame, derive_velocity, predict,
};
use super::error::CodecError;
use super::packet::{AckFields, PacketHeader, PacketKind};
use super::record_cache::{CachedBody, MAX_BODY_BITS, RecordCache};
use super::varint::{
    EXP_GOLOMB_MAX_K, exp_golomb_len_bits, read_exp_golomb, read_signed_exp_golomb,
    write_exp_golomb, write_signed_exp_golomb,
};
use crate::entity::{CharacterState, EntityId};
use crate::time::Tick;

/// Largest distance of the snapshot baseline `B` (header). A delta record's baseline is the
/// newest state of its entity the client applied in a snapshot at or before `B`, however
/// old (protocol 6, see `baseline`).
pub const BASELINE_WINDOW: u64 = 32;
/// Most leave records in one snapshot.
pub const MAX_LEAVES: usize = 255;
/// Most entity records in one snapshot (11-bit count).
pub const MAX_RECORDS: usize = 2047;

/// Mask bit: X/Y residual present.
pub const MASK_XY: u32 = 1;
/// Mask bit: Z residual present.
pub const MASK_Z: u32 = 2;
/// Mask bit: yaw residual present.
pub const MASK_YAW: u32 = 4;
/// Mask bit: flags byte present.
pub const MASK_FLAGS: u32 = 8;
/// Record head: the number `h` of one bits before a zero bit (at most 6, then no zero).
/// The shortest heads go to the commonest records of a moving crowd (in the replication
/// scenario about 71 % of deltas change X/Y and yaw, 12 % only yaw, 8 % nothing, 4 % only
/// X/Y; characters whose yaw follows their path exactly send mostly X/Y only).
const HEAD_DELTA_XY_YAW: u32 = 0;
const HEAD_DELTA_XY: u32 = 1;
const HEAD_DELTA_YAW: u32 = 2;
const HEAD_DELTA_STILL: u32 = 3;
const HEAD_DELTA_MASK: u32 = 4;
const HEAD_FULL: u32 = 5;
const HEAD_ENTER: u32 = 6;
/// Bits of the header field that gives the exp-Golomb order of the records' id gaps.
const ID_ORDER_BITS: u32 = 2;

#[inline]
fn write_head(w: &mut BitWriter, h: u32) {
    if h >= HEAD_ENTER {
        w.write_bits(0b11_1111, 6);
    } else {
        w.write_bits((1 << h) - 1, h + 1);
    }
}

#[inline]
fn read_head(r: &mut BitReader<'_>) -> Result<u32, CodecError> {
    let h = r.peek_bits(6).trailing_ones().min(HEAD_ENTER);
    r.read_bits((h + 1).min(6), "record head")?;
    Ok(h)
}

/// Writes a delta record's head for `mask`, then the mask if the head does not imply it.
#[inline]
fn write_delta_head(w: &mut BitWriter, mask: u32) {
    match mask {
        m if m == MASK_XY | MASK_YAW => write_head(w, HEAD_DELTA_XY_YAW),
        MASK_XY => write_head(w, HEAD_DELTA_XY),
        MASK_YAW => write_head(w, HEAD_DELTA_YAW),
        0 => write_head(w, HEAD_DELTA_STILL),
        m => {
            write_head(w, HEAD_DELTA_MASK);
            w.write_bits(m, 4);
        }
    }
}

/// Upper bounds (inclusive) of the prediction-interval classes of [`residual_orders`],
/// ticks; longer intervals are the last class.
const ORDER_CLASS_TICKS: [u32; 7] = [6, 8, 10, 16, 32, 64, 96];
/// Added to `position_k` per class (and for longer intervals).
const POSITION_ORDER_GROWTH: [u32; 8] = [0, 0, 2, 6, 7, 8, 9, 10];
/// Added to `yaw_k` per class.
const YAW_ORDER_GROWTH: [u32; 8] = [0, 1, 2, 3, 5, 6, 7, 7];

/// Exp-Golomb orders of a delta record's residuals (position, yaw): the configured orders
/// grown with the ticks `dt` the prediction spans (prediction errors grow with it), capped
/// at [`EXP_GOLOMB_MAX_K`]. The growth tables were fitted to the replication scenario's
/// residuals (1 cm, 12-bit yaw at order 3; for the default 10-bit yaw, order 2 measured
/// best with the same growth): an entity updated every few ticks keeps the configured
/// orders, one updated once a second (mid tier) or less gets orders 8-10, which saves
/// 5-7 bits per channel against order 0.
#[inline]
#[must_use]
pub fn residual_orders(config: &super::entity_state::SnapshotConfig, dt_ticks: u32) -> [u32; 2] {
    let class = ORDER_CLASS_TICKS
        .iter()
        .position(|&bound| dt_ticks <= bound)
        .unwrap_or(ORDER_CLASS_TICKS.len());
    [
        (config.position_k + POSITION_ORDER_GROWTH[class]).min(EXP_GOLOMB_MAX_K),
        (config.yaw_k + YAW_ORDER_GROWTH[class]).min(EXP_GOLOMB_MAX_K),
    ]
}

/// The prediction interval of a state at `tick` from a baseline at `base_tick`, ticks: as
/// in `entity_state::predict` (0 when the baseline is not older, at most 255).
#[inline]
fn prediction_ticks(tick: Tick, base_tick: Tick) -> u32 {
    tick.0.saturating_sub(base_tick.0).min(255)
}

/// The exp-Golomb order (`0..=3`) that codes `ids`' gaps (ascending, from 0) in the
/// fewest bits; the encoder writes it in the header.
fn id_gap_order(ids: impl Iterator<Item = u32>) -> u32 {
    let mut bits = [0u64; 1 << ID_ORDER_BITS];
    let mut prev = 0u32;
    for id in ids {
        let gap = id.wrapping_sub(prev).wrapping_sub(1);
        prev = id;
        for (k, b) in bits.iter_mut().enumerate() {
            *b += u64::from(exp_golomb_len_bits(gap, k as u32));
        }
    }
    // `bits` is not empty, so there is a minimum.
    (0..bits.len()).min_by_key(|&k| bits[k]).unwrap_or(0) as u32
}

/// The computed part of a delta record (see [`SnapshotCodec::delta_body`]).
#[derive(Debug, Clone, Copy)]
struct DeltaBody {
    moved: QuantizedEntity,
    /// `MASK_*` bits.
    mask: u32,
    /// Position residuals: along-track, cross-track (or X, Y), Z.
    residuals: [i32; 3],
    yaw_residual: i32,
    /// Ticks the prediction spans (sets the residuals' orders).
    dt_ticks: u32,
}

/// What [`SnapshotCodec::write_record`] wrote.
#[derive(Debug, Clone, Copy)]
struct RecordWritten {
    /// The state the client will hold.
    state: QuantizedEntity,
    /// Coded against a baseline (else enter or full).
    delta: bool,
}

/// The per-snapshot inputs a record's id gap and head depend on.
#[derive(Debug, Clone, Copy)]
struct RecordContext<'a> {
    snap: &'a SnapshotIn,
    /// Seqs from the snapshot back to its header baseline, if it has one.
    header_back: Option<u64>,
    /// The previous record's id (0 before the first).
    prev_id: u32,
    /// Exp-Golomb order of the id gaps (header).
    id_order: u32,
}

/// What an entity record is coded against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RecordBase {
    /// The client does not have the entity: send archetype and absolute state.
    Enter {
        /// Game-defined archetype (which actor class to spawn).
        archetype: u16,
    },
    /// The client has the entity but no usable baseline: absolute state.
    Full,
    /// Residuals against the client's copy of the state sent in snapshot `seq` (extended),
    /// which must be the entity's newest state the client applied in a snapshot at or
    /// before the snapshot baseline (`SnapshotIn::baseline_seq`): the wire does not name
    /// it. Written as a full record when there is no snapshot baseline or `seq` is newer.
    Delta {
        /// Extended seq of the snapshot that carried the baseline state.
        seq: u64,
        /// That baseline state.
        state: QuantizedEntity,
    },
}

/// One entity the caller wants in the snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntityRecordIn {
    /// Entity id (ids must be strictly ascending within one encode call).
    pub id: EntityId,
    /// The state to send.
    pub state: super::entity_state::NetEntityState,
    /// What to code it against.
    pub base: RecordBase,
}

/// An entity record already quantized (from a world frame): the zone's hot path, which
/// quantizes each entity once per tick instead of once per record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantizedRecordIn {
    /// Entity id (ids must be strictly ascending within one encode call).
    pub id: EntityId,
    /// The quantized state to send.
    pub state: QuantizedState,
    /// What to code it against.
    pub base: RecordBase,
    /// The record's key for the sent history's handle hints
    /// (`baseline::SentHistory::base_for_keyed`): the zone gives the entity's index in the
    /// tick's world frame. Never changes the bits.
    pub key: Option<u32>,
}

/// What the encoder needs of one record: [`EntityRecordIn`] (float state, quantized by the
/// encoder) and [`QuantizedRecordIn`] (quantized once per tick by the caller).
pub trait RecordSource {
    /// Entity id.
    fn id(&self) -> EntityId;
    /// What to code it against.
    fn base(&self) -> RecordBase;
    /// The quantized state at `tick`, with no derived motion.
    fn quantized(&self, q: &Quantization, tick: Tick) -> QuantizedEntity;
    /// The key the record's base was looked up with (`SentHistory::base_for_keyed`), so
    /// the history finds the entity's handle again when the record is sent.
    fn key(&self) -> Option<u32> {
        None
    }
}

impl RecordSource for EntityRecordIn {
    #[inline]
    fn id(&self) -> EntityId {
        self.id
    }
    #[inline]
    fn base(&self) -> RecordBase {
        self.base
    }
    #[inline]
    fn quantized(&self, q: &Quantization, tick: Tick) -> QuantizedEntity {
        q.quantize(&self.state, tick)
    }
}

impl RecordSource for QuantizedRecordIn {
    #[inline]
    fn id(&self) -> EntityId {
        self.id
    }
    #[inline]
    fn base(&self) -> RecordBase {
        self.base
    }
    #[inline]
    fn quantized(&self, _q: &Quantization, tick: Tick) -> QuantizedEntity {
        self.state.at(tick)
    }
    #[inline]
    fn key(&self) -> Option<u32> {
        self.key
    }
}

/// A record the encoder wrote (in wire order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrittenRecord {
    /// Index of the record in the caller's input slice.
    pub index: usize,
    /// Entity id.
    pub id: EntityId,
    /// The quantized state the client will hold (derived velocity included).
    pub state: QuantizedEntity,
    /// True when written as an enter record.
    pub enter: bool,
}

/// The per-snapshot fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapshotIn {
    /// A tighter datagram length limit than the configuration's `max_len_bytes`, bytes,
    /// applied to the entity records (the client's byte budget): a record that would take
    /// the datagram past it is skipped like one past `max_len_bytes`, and the encoder
    /// carries on with the next. The fixed part (header, owner, leaves) is always written,
    /// even past this limit. `None`: the configuration's limit alone.
    pub len_limit_bytes: Option<usize>,
    /// Extended seq of this datagram (the wire carries its low 16 bits).
    pub seq: u64,
    /// Ack of the client's input datagrams.
    pub ack: Option<AckFields>,
    /// Server tick of the snapshot.
    pub tick: Tick,
    /// Last input sequence the server processed for this client.
    pub ack_input_seq: u32,
    /// Extended seq of the newest snapshot known delivered, within [`BASELINE_WINDOW`].
    pub baseline_seq: Option<u64>,
    /// The owner's own character, sent losslessly.
    pub owner: Option<CharacterState>,
    /// The owner state the snapshot at `baseline_seq` carried, if any: the owner state is
    /// then coded against it (exactly; `WIRE_FORMAT.md` 5.1). Ignored without a baseline.
    pub owner_baseline: Option<CharacterState>,
}

/// What the encoder produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeReport {
    /// Datagram length, bytes (header included).
    pub len_bytes: usize,
    /// Entity records written.
    pub records_written: usize,
    /// Entity records skipped because they did not fit (or were out of order).
    pub records_skipped: usize,
    /// Leave records written (the first `leaves_written` of the caller's slice).
    pub leaves_written: usize,
    /// Bits spent on entity records (ids, heads, masks, fields).
    pub record_bits: usize,
    /// Of those, the bits of the records' id gaps.
    pub id_bits: usize,
    /// Records written as enter or full records (absolute state, no baseline).
    pub absolute_records: usize,
}

/// A decoded entity record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodedEntity {
    /// Entity id.
    pub id: EntityId,
    /// `Some(archetype)` for an enter record.
    pub enter_archetype: Option<u16>,
    /// Extended seq of the baseline it was coded against (`None`: enter/full).
    pub baseline_seq: Option<u64>,
    /// The reconstructed quantized state.
    pub state: QuantizedEntity,
}

/// A decoded snapshot. Reuse one across calls to avoid allocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedSnapshot {
    /// Extended seq of the datagram.
    pub seq: u64,
    /// Server tick.
    pub tick: Tick,
    /// Last input sequence the server processed.
    pub ack_input_seq: u32,
    /// Extended seq of the snapshot baseline, if any.
    pub baseline_seq: Option<u64>,
    /// The owner's character, bit-exact.
    pub owner: Option<CharacterState>,
    /// Leave records.
    pub leaves: Vec<EntityId>,
    /// Entity records, ids ascending.
    pub entities: Vec<DecodedEntity>,
}

/// The fixed part of a snapshot before its leaves and records: what a client that does not
/// track remote entities (a load-test bot) needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapshotHead {
    /// Server tick.
    pub tick: Tick,
    /// Last input sequence the server processed.
    pub ack_input_seq: u32,
    /// Extended seq of the snapshot baseline, if any.
    pub baseline_seq: Option<u64>,
    /// The owner's character, bit-exact.
    pub owner: Option<CharacterState>,
}

/// Where the decoder finds baselines (the client's `ReceivedHistory` implements it).
pub trait BaselineLookup {
    /// The newest state of `id` held that arrived in a snapshot at or before `seq`
    /// (extended), with that snapshot's seq: a delta record's baseline when `seq` is the
    /// snapshot's header baseline.
    fn newest_at_or_before(&self, id: EntityId, seq: u64) -> Option<(u64, &QuantizedEntity)>;

    /// The owner state the applied snapshot `seq` (extended) carried, if still held (the
    /// owner state of a snapshot may be coded against the snapshot baseline's). None by
    /// default: such snapshots then fail with `UnknownBaseline` for entity 0.
    fn owner_at(&self, _seq: u64) -> Option<&CharacterState> {
        None
    }
}

/// A lookup with no baselines (decodes only snapshots without delta records).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBaselines;

impl BaselineLookup for NoBaselines {
    fn newest_at_or_before(&self, _id: EntityId, _seq: u64) -> Option<(u64, &QuantizedEntity)> {
        None
    }
}

/// The snapshot codec for one validated configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapshotCodec {
    q: Quantization,
}

/// The owner state's seven floats in wire order: position, velocity, yaw.
fn owner_fields(c: &CharacterState) -> [u32; 7] {
    let [px, py, pz] = c.position_m.to_array();
    let [vx, vy, vz] = c.velocity_mps.to_array();
    [px, py, pz, vx, vy, vz, c.yaw_rad].map(f32::to_bits)
}

/// The owner state from its seven floats' bit patterns and `on_ground`.
fn owner_from_fields(f: [u32; 7], on_ground: bool) -> CharacterState {
    let [px, py, pz, vx, vy, vz, yaw] = f.map(f32::from_bits);
    CharacterState {
        position_m: glam::Vec3::new(px, py, pz),
        velocity_mps: glam::Vec3::new(vx, vy, vz),
        yaw_rad: yaw,
        on_ground,
    }
}

/// Writes the owner state: raw bit patterns, or, against `base`, each float's bit pattern
/// XORed with the baseline's: `0` when equal, else `1`, u(5) `n - 1` where `n` is the bit
/// length of the XOR, and its `n - 1` bits below the leading one.
fn write_owner(w: &mut BitWriter, c: &CharacterState, base: Option<&CharacterState>) {
    let fields = owner_fields(c);
    match base {
        None => {
            for v in fields {
                w.write_bits(v, 32);
            }
        }
        Some(base) => {
            for (v, b) in fields.into_iter().zip(owner_fields(base)) {
                let x = v ^ b;
                if x == 0 {
                    w.write_bool(false);
                } else {
                    let n = 32 - x.leading_zeros();
                    w.write_bool(true);
                    w.write_bits(n - 1, 5);
                    w.write_bits(x & !(1 << (n - 1)), n - 1);
                }
            }
        }
    }
    w.write_bool(c.on_ground);
}

/// Bits of the seven floats of `c` coded against `base` by [`write_owner`].
fn owner_delta_bits(c: &CharacterState, base: &CharacterState) -> u32 {
    owner_fields(c)
        .into_iter()
        .zip(owner_fields(base))
        .map(|(v, b)| match v ^ b {
            0 => 1,
            x => 6 + (31 - x.leading_zeros()),
        })
        .sum()
}

/// Reads an owner state written by [`write_owner`] (against `base` when given).
fn read_owner(
    r: &mut BitReader<'_>,
    base: Option<&CharacterState>,
) -> Result<CharacterState, CodecError> {
    let mut f = [0u32; 7];
    match base {
        None => {
            for v in &mut f {
                *v = r.read_bits(32, "owner state")?;
            }
        }
        Some(base) => {
            for (v, b) in f.iter_mut().zip(owner_fields(base)) {
                *v = b;
                if r.read_bool("owner field changed")? {
                    let n = r.read_bits(5, "owner xor length")? + 1;
                    let low = r.read_bits(n - 1, "owner xor bits")?;
                    *v = b ^ (1 << (n - 1)) ^ low;
                }
            }
        }
    }
    Ok(owner_from_fields(f, r.read_bool("owner on_ground")?))
}

impl SnapshotCodec {
    /// A codec for the validated quantization `q`.
    #[must_use]
    pub fn new(q: Quantization) -> Self {
        SnapshotCodec { q }
    }

    /// The quantization in use.
    #[must_use]
    pub fn quantization(&self) -> &Quantization {
        &self.q
    }

    fn write_absolute(&self, w: &mut BitWriter, s: &QuantizedEntity) {
        let q = &self.q;
        w.write_bits((s.pos_q[0] + q.half_q_xy) as u32, q.bits_xy);
        w.write_bits((s.pos_q[1] + q.half_q_xy) as u32, q.bits_xy);
        w.write_bits((s.pos_q[2] + q.half_q_z) as u32, q.bits_z);
        w.write_bits(u32::from(s.yaw_q), q.config.yaw_bits);
        w.write_bits(u32::from(s.flags), 8);
    }

    fn read_absolute(
        &self,
        r: &mut BitReader<'_>,
        tick: Tick,
    ) -> Result<QuantizedEntity, CodecError> {
        let q = &self.q;
        let mut axis = |bits: u32, half: i32| -> Result<i32, CodecError> {
            let v = r.read_bits(bits, "absolute position")?;
            if v > 2 * half as u32 {
                return Err(CodecError::ValueOutOfRange {
                    field: "absolute position",
                });
            }
            Ok(v as i32 - half)
        };
        let x = axis(q.bits_xy, q.half_q_xy)?;
        let y = axis(q.bits_xy, q.half_q_xy)?;
        let z = axis(q.bits_z, q.half_q_z)?;
        let yaw_q = r.read_bits(q.config.yaw_bits, "yaw")? as u16;
        let flags = r.read_bits(8, "flags")? as u8;
        Ok(QuantizedEntity {
            pos_q: [x, y, z],
            yaw_q,
            flags,
            vel_fp: [0; CHANNELS],
            acc_fp: [0; CHANNELS],
            span_ticks: 0,
            tick,
        })
    }

    /// Encodes a snapshot datagram (header included) into `out` (cleared first), writing
    /// `written` (cleared first) with the records that made it in. `leaves` must be
    /// ascending; at most [`MAX_LEAVES`] are written. Fails only when the fixed part (header,
    /// owner, leaves) does not fit `max_len_bytes`.
    pub fn encode<R: RecordSource>(
        &self,
        snap: &SnapshotIn,
        leaves: &[EntityId],
        records: &[R],
        out: &mut Vec<u8>,
        written: &mut Vec<WrittenRecord>,
    ) -> Result<EncodeReport, CodecError> {
        self.encode_with(snap, leaves, records, out, written, None)
    }

    /// [`SnapshotCodec::encode`] with a `cache`: the bodies of delta records an earlier
    /// call (for another client) computed are copied from it, and the ones computed here
    /// are stored (see [`record_cache`](super::record_cache)). The datagram is bit for bit
    /// what `encode` writes.
    pub fn encode_with<R: RecordSource>(
        &self,
        snap: &SnapshotIn,
        leaves: &[EntityId],
        records: &[R],
        out: &mut Vec<u8>,
        written: &mut Vec<WrittenRecord>,
        mut cache: Option<&mut RecordCache>,
    ) -> Result<EncodeReport, CodecError> {
        if let Some(cache) = cache.as_deref_mut() {
            cache.use_config(&self.q.config);
        }
        out.clear();
        written.clear();
        let q = &self.q;
        let max_bits = q.config.max_len_bytes * 8;
        PacketHeader {
            kind: PacketKind::Snapshot,
            seq: snap.seq as u16,
            ack: snap.ack,
        }
        .encode(out);
        let mut w = BitWriter::from_vec(std::mem::take(out));
        w.write_bits(snap.tick.0, 32);
        w.write_bits(snap.ack_input_seq, 32);
        // The baseline must be 1..=32 seqs back; anything else is treated as absent.
        let header_back = snap
            .baseline_seq
            .and_then(|b| snap.seq.checked_sub(b))
            .filter(|d| (1..=BASELINE_WINDOW).contains(d));
        match header_back {
            Some(d) => {
                w.write_bool(true);
                w.write_bits((d - 1) as u32, 5);
            }
            None => w.write_bool(false),
        }
        match &snap.owner {
            Some(c) => {
                w.write_bool(true);
                // Against the baseline's owner state only when that is shorter than raw.
                let base = header_back
                    .and(snap.owner_baseline.as_ref())
                    .filter(|b| owner_delta_bits(c, b) < 7 * 32);
                if header_back.is_some() {
                    w.write_bool(base.is_some());
                }
                write_owner(&mut w, c, base);
            }
            None => w.write_bool(false),
        }
        let n_leaves = leaves.len().min(MAX_LEAVES);
        w.write_bits(n_leaves as u32, 8);
        let mut prev = 0u32;
        for id in leaves.iter().take(n_leaves) {
            debug_assert!(
                id.0 > prev,
                "leaves must be strictly ascending and non-zero"
            );
            write_exp_golomb(&mut w, id.0.wrapping_sub(prev).wrapping_sub(1), 0);
            prev = id.0;
        }
        let count_pos = w.bit_len();
        w.write_bits(0, 11);
        let id_order = id_gap_order(records.iter().map(|r| r.id().0));
        w.write_bits(id_order, ID_ORDER_BITS);
        if w.bit_len() > max_bits {
            return Err(CodecError::LengthOverLimit {
                field: "snapshot fixed part",
                len: w.byte_len(),
                max: q.config.max_len_bytes,
            });
        }
        // Records are held to the tighter of the two limits (the fixed part is already out).
        let max_bits = snap
            .len_limit_bytes
            .map_or(max_bits, |room| max_bits.min(room.saturating_mul(8)));
        let mut report = EncodeReport {
            leaves_written: n_leaves,
            ..EncodeReport::default()
        };
        let mut prev_id = 0u32;
        for (index, rec) in records.iter().enumerate() {
            let id = rec.id();
            if id.0 <= prev_id || written.len() >= MAX_RECORDS {
                debug_assert!(
                    id.0 > prev_id,
                    "entity ids must be strictly ascending and non-zero"
                );
                report.records_skipped += 1;
                continue;
            }
            let base = rec.base();
            let mark = w.mark();
            let RecordWritten { state, delta } = self.write_record(
                &mut w,
                RecordContext {
                    snap,
                    header_back,
                    prev_id,
                    id_order,
                },
                id,
                base,
                rec.quantized(q, snap.tick),
                cache.as_deref_mut(),
            );
            if w.bit_len() > max_bits {
                w.rewind(mark);
                report.records_skipped += 1;
                continue;
            }
            report.record_bits += w.bit_len() - mark;
            report.id_bits += exp_golomb_len_bits(id.0 - prev_id - 1, id_order) as usize;
            if !delta {
                report.absolute_records += 1;
            }
            prev_id = id.0;
            written.push(WrittenRecord {
                index,
                id,
                state,
                enter: matches!(base, RecordBase::Enter { .. }),
            });
        }
        report.records_written = written.len();
        w.patch_bits(count_pos, written.len() as u32, 11);
        *out = w.finish();
        report.len_bytes = out.len();
        Ok(report)
    }

    /// The body of a delta record of `state` against `base` at `tick`: the state the client
    /// reconstructs, the change mask and the residuals; `None` when a residual does not fit
    /// the wire's 32-bit signed codes (a prediction far outside the bounds, e.g. a parabola
    /// held for 255 ticks after a teleport: the record is then full).
    #[inline]
    fn delta_body(
        &self,
        tick: Tick,
        base: &QuantizedEntity,
        state: QuantizedEntity,
    ) -> Option<DeltaBody> {
        let q = &self.q;
        let mut moved = state;
        derive_velocity(&mut moved, base, &q.yaw, q.config.second_order);
        let (pred, pred_yaw) = predict(base, tick, &q.yaw);
        let mut r = [
            i64::from(moved.pos_q[0]) - pred[0],
            i64::from(moved.pos_q[1]) - pred[1],
            i64::from(moved.pos_q[2]) - pred[2],
        ];
        let disp = [
            pred[0] - i64::from(base.pos_q[0]),
            pred[1] - i64::from(base.pos_q[1]),
        ];
        if let Some(frame) = TrackFrame::new(disp) {
            [r[0], r[1]] = frame.to_track([r[0], r[1]]);
        }
        let [Ok(r0), Ok(r1), Ok(r2)] = r.map(i32::try_from) else {
            return None;
        };
        let ryaw = q.yaw.wrapping_diff(u32::from(moved.yaw_q), pred_yaw);
        let mut mask = 0;
        if r0 != 0 || r1 != 0 {
            mask |= MASK_XY;
        }
        if r2 != 0 {
            mask |= MASK_Z;
        }
        if ryaw != 0 {
            mask |= MASK_YAW;
        }
        if moved.flags != base.flags {
            mask |= MASK_FLAGS;
        }
        Some(DeltaBody {
            moved,
            mask,
            residuals: [r0, r1, r2],
            yaw_residual: ryaw,
            dt_ticks: prediction_ticks(tick, base.tick),
        })
    }

    /// Writes a delta body's fields after the head (and mask).
    #[inline]
    fn write_delta_fields(&self, w: &mut BitWriter, body: &DeltaBody) {
        let [position_k, yaw_k] = residual_orders(&self.q.config, body.dt_ticks);
        let mask = body.mask;
        let [r0, r1, r2] = body.residuals;
        if mask & MASK_XY != 0 {
            write_signed_exp_golomb(w, r0, position_k);
            write_signed_exp_golomb(w, r1, position_k);
        }
        if mask & MASK_Z != 0 {
            write_signed_exp_golomb(w, r2, position_k);
        }
        if mask & MASK_YAW != 0 {
            write_signed_exp_golomb(w, body.yaw_residual, yaw_k);
        }
        if mask & MASK_FLAGS != 0 {
            w.write_bits(u32::from(body.moved.flags), 8);
        }
    }

    /// Writes one record; returns the quantized state the client will reconstruct and the
    /// kind of record. With a cache, a delta body computed before for the same (tick,
    /// state, baseline) is copied.
    #[inline]
    fn write_record(
        &self,
        w: &mut BitWriter,
        ctx: RecordContext<'_>,
        id: EntityId,
        base: RecordBase,
        quantized: QuantizedEntity,
        cache: Option<&mut RecordCache>,
    ) -> RecordWritten {
        let RecordContext {
            snap,
            header_back,
            prev_id,
            id_order,
        } = ctx;
        debug_assert_eq!(
            quantized.tick, snap.tick,
            "a record source gives the state at the snapshot's tick"
        );
        write_exp_golomb(w, id.0 - prev_id - 1, id_order);
        // A delta is coded against the entity's newest state the client applied at or
        // before the header baseline: the caller's baseline must be that one, so it cannot
        // be newer than the header baseline.
        if let (RecordBase::Delta { seq, state: base }, Some(hb)) = (base, header_back)
            && snap.seq.checked_sub(seq).is_some_and(|d| d >= hb)
        {
            let current = QuantizedState {
                pos_q: quantized.pos_q,
                yaw_q: quantized.yaw_q,
                flags: quantized.flags,
            };
            match cache {
                Some(cache) => match cache.get(snap.tick, id, &current, &base) {
                    Some(CachedBody::Delta {
                        mask,
                        len_bits,
                        bits,
                        moved,
                    }) => {
                        write_delta_head(w, u32::from(mask));
                        let len = u32::from(len_bits);
                        w.write_u64(bits[0], len.min(64));
                        if len > 64 {
                            w.write_u64(bits[1], len - 64);
                        }
                        return RecordWritten {
                            state: moved,
                            delta: true,
                        };
                    }
                    Some(CachedBody::NoDelta) => {}
                    None => match self.delta_body(snap.tick, &base, quantized) {
                        Some(body) => {
                            write_delta_head(w, body.mask);
                            let mark = w.mark();
                            self.write_delta_fields(w, &body);
                            let len = (w.bit_len() - mark) as u32;
                            if len <= MAX_BODY_BITS {
                                let low = w.read_back(mark, len.min(64));
                                let high = if len > 64 {
                                    w.read_back(mark + 64, len - 64)
                                } else {
                                    0
                                };
                                let cached = CachedBody::Delta {
                                    // Four mask bits.
                                    mask: body.mask as u8,
                                    // At most MAX_BODY_BITS (128).
                                    len_bits: len as u8,
                                    bits: [low, high],
                                    moved: body.moved,
                                };
                                cache.put(snap.tick, id, &current, &base, cached);
                            }
                            return RecordWritten {
                                state: body.moved,
                                delta: true,
                            };
                        }
                        None => cache.put(snap.tick, id, &current, &base, CachedBody::NoDelta),
                    },
                },
                None => {
                    if let Some(body) = self.delta_body(snap.tick, &base, quantized) {
                        write_delta_head(w, body.mask);
                        self.write_delta_fields(w, &body);
                        return RecordWritten {
                            state: body.moved,
                            delta: true,
                        };
                    }
                }
            }
        }
        match base {
            RecordBase::Enter { archetype } => {
                write_head(w, HEAD_ENTER);
                w.write_bits(u32::from(archetype), 16);
            }
            _ => write_head(w, HEAD_FULL),
        }
        self.write_absolute(w, &quantized);
        RecordWritten {
            state: quantized,
            delta: false,
        }
    }

    /// Reads the fixed part up to the owner state of a snapshot whose extended seq is
    /// `seq`: tick, acknowledged input, snapshot baseline (extended), owner state (coded
    /// against the owner state `baselines` holds for the snapshot baseline, when the
    /// datagram says so).
    fn read_fixed(
        r: &mut BitReader<'_>,
        seq: u64,
        baselines: &impl BaselineLookup,
    ) -> Result<SnapshotHead, CodecError> {
        let tick = Tick(r.read_bits(32, "tick")?);
        let ack_input_seq = r.read_bits(32, "ack_input_seq")?;
        let baseline_seq = if r.read_bool("has_baseline")? {
            let d = u64::from(r.read_bits(5, "baseline_back")?) + 1;
            Some(seq.checked_sub(d).ok_or(CodecError::ValueOutOfRange {
                field: "baseline_back",
            })?)
        } else {
            None
        };
        let owner = if r.read_bool("has_owner")? {
            let base = match baseline_seq {
                Some(b) if r.read_bool("owner_delta")? => {
                    Some(baselines.owner_at(b).ok_or(CodecError::UnknownBaseline {
                        entity: 0,
                        seq: b as u16,
                    })?)
                }
                _ => None,
            };
            Some(read_owner(r, base)?)
        } else {
            None
        };
        Ok(SnapshotHead {
            tick,
            ack_input_seq,
            baseline_seq,
            owner,
        })
    }

    /// Decodes only the fixed part of a snapshot payload whose extended seq is `seq` (tick,
    /// acknowledged input, the owner's state, which may need the owner state of the
    /// snapshot baseline from `baselines`); leaves and records are not read, so nothing
    /// after the owner state is checked.
    pub fn decode_head(
        &self,
        payload: &[u8],
        seq: u64,
        baselines: &impl BaselineLookup,
    ) -> Result<SnapshotHead, CodecError> {
        Self::read_fixed(&mut BitReader::new(payload), seq, baselines)
    }

    /// Decodes the payload of a snapshot datagram (the bytes after the header) whose
    /// extended seq is `seq`, resolving delta records through `baselines`, into `out`.
    /// On error `out` holds partial data and must not be applied.
    pub fn decode(
        &self,
        payload: &[u8],
        seq: u64,
        baselines: &impl BaselineLookup,
        out: &mut DecodedSnapshot,
    ) -> Result<(), CodecError> {
        let q = &self.q;
        let cfg = &q.config;
        out.leaves.clear();
        out.entities.clear();
        out.seq = seq;
        let mut r = BitReader::new(payload);
        let head = Self::read_fixed(&mut r, seq, baselines)?;
        out.tick = head.tick;
        out.ack_input_seq = head.ack_input_seq;
        out.baseline_seq = head.baseline_seq;
        out.owner = head.owner;
        let n_leaves = r.read_bits(8, "leave_count")? as usize;
        let mut prev = 0u32;
        for _ in 0..n_leaves {
            let gap = read_exp_golomb(&mut r, 0, "leave id")?;
            prev = prev
                .checked_add(gap)
                .and_then(|v| v.checked_add(1))
                .ok_or(CodecError::ValueOutOfRange { field: "leave id" })?;
            out.leaves.push(EntityId(prev));
        }
        let n_records = r.read_bits(11, "record_count")? as usize;
        let id_order = r.read_bits(ID_ORDER_BITS, "id_order")?;
        // Each record takes at least 2 bits: bound the allocation by what the bytes can hold.
        if n_records * 2 > r.remaining_bits() {
            return Err(CodecError::Truncated {
                field: "entity records",
            });
        }
        out.entities.reserve(n_records);
        let mut prev_id = 0u32;
        for _ in 0..n_records {
            let gap = read_exp_golomb(&mut r, id_order, "entity id")?;
            let id = prev_id
                .checked_add(gap)
                .and_then(|v| v.checked_add(1))
                .ok_or(CodecError::ValueOutOfRange { field: "entity id" })?;
            prev_id = id;
            let head = read_head(&mut r)?;
            let (kind, mask) = match head {
                HEAD_DELTA_XY_YAW => (HEAD_DELTA_MASK, MASK_XY | MASK_YAW),
                HEAD_DELTA_XY => (HEAD_DELTA_MASK, MASK_XY),
                HEAD_DELTA_YAW => (HEAD_DELTA_MASK, MASK_YAW),
                HEAD_DELTA_STILL => (HEAD_DELTA_MASK, 0),
                HEAD_DELTA_MASK => (HEAD_DELTA_MASK, r.read_bits(4, "mask")?),
                h => (h, 0),
            };
            let rec = match kind {
                HEAD_ENTER => {
                    let archetype = r.read_bits(16, "archetype")? as u16;
                    DecodedEntity {
                        id: EntityId(id),
                        enter_archetype: Some(archetype),
                        baseline_seq: None,
                        state: self.read_absolute(&mut r, out.tick)?,
                    }
                }
                HEAD_FULL => DecodedEntity {
                    id: EntityId(id),
                    enter_archetype: None,
                    baseline_seq: None,
                    state: self.read_absolute(&mut r, out.tick)?,
                },
                _ => {
                    let header_seq = out.baseline_seq.ok_or(CodecError::ValueOutOfRange {
                        field: "delta record without a snapshot baseline",
                    })?;
                    let (base_seq, base) = baselines
                        .newest_at_or_before(EntityId(id), header_seq)
                        .ok_or(CodecError::UnknownBaseline {
                            entity: id,
                            seq: header_seq as u16,
                        })?;
                    let [position_k, yaw_k] =
                        residual_orders(cfg, prediction_ticks(out.tick, base.tick));
                    let (pred, pred_yaw) = predict(base, out.tick, &q.yaw);
                    let mut res = [0i64; 3];
                    if mask & MASK_XY != 0 {
                        res[0] =
                            i64::from(read_signed_exp_golomb(&mut r, position_k, "residual x")?);
                        res[1] =
                            i64::from(read_signed_exp_golomb(&mut r, position_k, "residual y")?);
                    }
                    if mask & MASK_Z != 0 {
                        res[2] =
                            i64::from(read_signed_exp_golomb(&mut r, position_k, "residual z")?);
                    }
                    let disp = [
                        pred[0] - i64::from(base.pos_q[0]),
                        pred[1] - i64::from(base.pos_q[1]),
                    ];
                    if let Some(frame) = TrackFrame::new(disp) {
                        [res[0], res[1]] = frame.from_track([res[0], res[1]]);
                    }
                    let pos = [pred[0] + res[0], pred[1] + res[1], pred[2] + res[2]];
                    if !q.position_in_bounds(pos) {
                        return Err(CodecError::ValueOutOfRange {
                            field: "delta position",
                        });
                    }
                    let yaw_q = if mask & MASK_YAW != 0 {
                        let ry = read_signed_exp_golomb(&mut r, yaw_k, "residual yaw")?;
                        q.yaw.wrapping_add(pred_yaw, ry)
                    } else {
                        pred_yaw
                    };
                    let flags = if mask & MASK_FLAGS != 0 {
                        r.read_bits(8, "flags")? as u8
                    } else {
                        base.flags
                    };
                    let mut state = QuantizedEntity {
                        // In bounds (checked above), so the casts are exact.
                        pos_q: pos.map(|c| c as i32),
                        yaw_q: yaw_q as u16,
                        flags,
                        vel_fp: [0; CHANNELS],
                        acc_fp: [0; CHANNELS],
                        span_ticks: 0,
                        tick: out.tick,
                    };
                    derive_velocity(&mut state, base, &q.yaw, cfg.second_order);
                    DecodedEntity {
                        id: EntityId(id),
                        enter_archetype: None,
                        baseline_seq: Some(base_seq),
                        state,
                    }
                }
            };
            out.entities.push(rec);
        }
        r.expect_end()
    }
}
