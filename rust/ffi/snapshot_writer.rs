//! `mmo_snapshot_writer`: the server side of the datagram codec for one client, for users
//! who bring their own transport. It numbers and encodes snapshot datagrams (delta-coded
//! against what the client acknowledged: `SentHistory` + `SnapshotCodec`), and decodes the
//! client's input datagrams, whose acks drive the baselines.
//!
//! Per tick: `mmo_snapshot_writer_encode` with the entities to send (ids ascending or not;
//! they are sorted), send the bytes as one unreliable datagram; for every datagram from the
//! client: `mmo_snapshot_writer_receive_input`. When an entity leaves the client's interest:
//! `mmo_snapshot_writer_remove_entity` (a leave record is repeated until delivered).
//! The wire format is specified in `rust/core/src/codec/WIRE_FORMAT.md`.

use mmo_core::codec::CodecError;
use mmo_core::codec::ack::ReceiveTracker;
use mmo_core::codec::baseline::SentHistory;
use mmo_core::codec::entity_state::{NetEntityState, Quantization, SnapshotConfig};
use mmo_core::codec::input_codec::{MAX_INPUTS, decode_input_payload};
use mmo_core::codec::packet::{PacketHeader, PacketKind};
use mmo_core::codec::snapshot::{EntityRecordIn, SnapshotCodec, SnapshotIn, WrittenRecord};
use mmo_core::entity::EntityId;
use mmo_core::time::Tick;

use crate::boundary::{self, FfiError, Out, OutSlice};
use crate::result::mmo_result;
use crate::types::{mmo_character_state, mmo_move_input, mmo_vec3};

/// Most inputs one input datagram carries (`mmo_input_batch.inputs`).
pub const MMO_MAX_INPUTS_PER_DATAGRAM: usize = 16;

// A literal above so that cbindgen can print it; it must equal the core's limit.
const _: () = assert!(MMO_MAX_INPUTS_PER_DATAGRAM == MAX_INPUTS);

/// Quantization parameters of the snapshot codec. Both ends must use identical values.
/// Start from `mmo_snapshot_config_default`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct mmo_snapshot_config {
    /// Position step, metres (> 0). Default 0.01.
    pub precision_m: f32,
    /// Positions cover `[-half_extent_xy_m, +half_extent_xy_m]` on X and Y. Default 8192.
    pub half_extent_xy_m: f32,
    /// Positions cover `[-half_extent_z_m, +half_extent_z_m]` on Z. Default 1024.
    pub half_extent_z_m: f32,
    /// Bits of the yaw angle, 4..=16. Default 10 (0.35 degrees).
    pub yaw_bits: u32,
    /// Exp-Golomb order of position residuals predicted over at most 6 ticks, 0..=8; it
    /// grows with longer predictions (WIRE_FORMAT 5.2). Default: see
    /// `mmo_snapshot_config_default`.
    pub position_k: u32,
    /// Exp-Golomb order of yaw residuals predicted over at most 6 ticks, 0..=8; it grows
    /// likewise. Default: see `mmo_snapshot_config_default`.
    pub yaw_k: u32,
    /// Largest datagram produced, bytes, header included (64..=65507). Default 1140 (fits
    /// the DATAGRAM frame of a 1200-byte QUIC packet).
    pub max_len_bytes: u32,
    /// 1: predict positions with the second difference too (parabolic); 0: rate only.
    /// Must be 0 or 1 (default: see `mmo_snapshot_config_default`).
    pub second_order: u8,
}

impl mmo_snapshot_config {
    /// Validates into the codec.
    pub(crate) fn to_codec(self) -> Result<SnapshotCodec, FfiError> {
        // A bad flag is a config field out of range: INVALID_CONFIG, as `_new` documents.
        let second_order = boundary::flag(self.second_order, "config.second_order")
            .map_err(|e| FfiError::config(e.message))?;
        let config = SnapshotConfig {
            precision_m: self.precision_m,
            half_extent_xy_m: self.half_extent_xy_m,
            half_extent_z_m: self.half_extent_z_m,
            yaw_bits: self.yaw_bits,
            position_k: self.position_k,
            yaw_k: self.yaw_k,
            max_len_bytes: usize::try_from(self.max_len_bytes).unwrap_or(usize::MAX),
            second_order,
        };
        let q = Quantization::new(config).map_err(|e| {
            FfiError::config(format!(
                "invalid snapshot config: {e} (precision_m > 0, finite extents > 0, yaw_bits \
                 4..=16, position_k and yaw_k <= 8, max_len_bytes 64..=65507)"
            ))
        })?;
        Ok(SnapshotCodec::new(q))
    }
}

/// One entity to put in a snapshot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct mmo_snapshot_entity_in {
    /// Position of the capsule's base, metres (finite; clamped into the config's extents).
    pub position_m: mmo_vec3,
    /// Facing, radians (finite, any value).
    pub yaw_rad: f32,
    /// Entity id, non-zero, unique within one call.
    pub entity_id: u32,
    /// Game-defined archetype, sent when the entity enters the client's view.
    pub archetype: u16,
    /// Game-defined flags, carried verbatim.
    pub flags: u8,
}

/// What `mmo_snapshot_writer_encode` produced.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mmo_snapshot_report {
    /// Datagram length, bytes (header included).
    pub len_bytes: usize,
    /// Entity records written.
    pub records_written: u32,
    /// Entity records that did not fit `max_len_bytes` (send them next tick).
    pub records_skipped: u32,
    /// Leave records written.
    pub leaves_written: u32,
    /// Extended sequence number of the snapshot.
    pub seq: u64,
}

/// The inputs decoded from one input datagram, oldest first: `inputs[i]` has sequence
/// `first_seq + i` (wrapping). Inputs are carried verbatim: validate them
/// (`mmo_validate_input`) before simulating.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mmo_input_batch {
    /// Sequence number of `inputs[0]`.
    pub first_seq: u32,
    /// Valid entries in `inputs`, 0..=MMO_MAX_INPUTS_PER_DATAGRAM.
    pub count: u32,
    /// The inputs.
    pub inputs: [mmo_move_input; MMO_MAX_INPUTS_PER_DATAGRAM],
}

/// Opaque server-side codec state for one client.
pub struct mmo_snapshot_writer {
    codec: SnapshotCodec,
    sent: SentHistory,
    input_datagrams: ReceiveTracker,
    records: Vec<EntityRecordIn>,
    datagram: Vec<u8>,
    written: Vec<WrittenRecord>,
    written_ids: Vec<u32>,
}

/// Maps a decoder error to its result code.
pub(crate) fn codec_error(e: CodecError) -> FfiError {
    match e {
        CodecError::UnknownBaseline { .. } => {
            FfiError::new(mmo_result::UnknownBaseline, e.to_string())
        }
        other => FfiError::new(mmo_result::DecodeFailed, other.to_string()),
    }
}

/// Writes the default snapshot config into `*out`.
///
/// `MMO_RESULT_NULL_ARGUMENT` when `out` is NULL. Thread-safe.
///
/// # Safety
/// `out` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_config_default(out: *mut mmo_snapshot_config) -> mmo_result {
    boundary::guard(|| {
        let out = Out::new(out, "out")?;
        let d = SnapshotConfig::default();
        let value = mmo_snapshot_config {
            precision_m: d.precision_m,
            half_extent_xy_m: d.half_extent_xy_m,
            half_extent_z_m: d.half_extent_z_m,
            yaw_bits: d.yaw_bits,
            position_k: d.position_k,
            yaw_k: d.yaw_k,
            max_len_bytes: u32::try_from(d.max_len_bytes).unwrap_or(u32::MAX),
            second_order: u8::from(d.second_order),
        };
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(value) };
        Ok(())
    })
}

/// Creates the codec state for one client with `*config` (copied). On success `*out`
/// receives a new handle owned by the caller: free it with `mmo_snapshot_writer_free`.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_CONFIG`. Thread-safe (creates
/// independent state).
///
/// # Safety
/// `config` must be NULL or readable; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_writer_new(
    config: *const mmo_snapshot_config,
    out: *mut *mut mmo_snapshot_writer,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or readable.
        let config = unsafe { boundary::in_ref(config, "config") }?;
        let out = Out::new(out, "out")?;
        let writer = mmo_snapshot_writer {
            codec: config.to_codec()?,
            sent: SentHistory::new(),
            input_datagrams: ReceiveTracker::new(),
            records: Vec::new(),
            datagram: Vec::new(),
            written: Vec::new(),
            written_ids: Vec::new(),
        };
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(boundary::into_handle(writer)) };
        Ok(())
    })
}

/// Frees a snapshot writer. NULL is a no-op. The handle must not be used afterwards.
///
/// # Safety
/// `writer` must be NULL or a live handle, not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_writer_free(writer: *mut mmo_snapshot_writer) {
    boundary::guard_value((), || {
        // SAFETY: per the caller, NULL or a live handle from `mmo_snapshot_writer_new`.
        unsafe { boundary::free_handle(writer) }
    });
}

/// Encodes the next snapshot datagram for this client into `buf` and writes the report to
/// `*out_report`. The snapshot carries `tick`, `ack_input_seq` (the newest input sequence
/// the server simulated for this client), the owner's own state `*owner` losslessly (NULL:
/// none; always as raw floats: this writer does not code it against the snapshot
/// baseline's, `owner_delta` 0 in `WIRE_FORMAT.md` 5.1), pending leave records, then the
/// `entity_count` records at `entities` (sorted by id here) until `max_len_bytes` is full;
/// records that do not fit are skipped and reported.
///
/// A buffer of the config's `max_len_bytes` always suffices. On any error nothing is
/// recorded as sent (the sequence number is not consumed) and `buf` is untouched.
/// Errors: `MMO_RESULT_NULL_ARGUMENT` (`entities` may be NULL only with a zero count),
/// `MMO_RESULT_INVALID_ARGUMENT` (entity id 0 or repeated, non-finite position or yaw,
/// owner `on_ground` not 0/1), `MMO_RESULT_BUFFER_TOO_SMALL`. Game thread only (or any
/// one thread at a time); all pointers are borrowed for the call only.
///
/// # Safety
/// `writer` must be NULL or a live handle; `owner` NULL or readable; `entities` NULL or
/// readable for `entity_count` elements; `buf` NULL or writable for `len` bytes;
/// `out_report` NULL or writable.
#[allow(clippy::too_many_arguments)] // a C signature: inputs then the output buffer
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_writer_encode(
    writer: *mut mmo_snapshot_writer,
    tick: u32,
    ack_input_seq: u32,
    owner: *const mmo_character_state,
    entities: *const mmo_snapshot_entity_in,
    entity_count: usize,
    buf: *mut u8,
    len: usize,
    out_report: *mut mmo_snapshot_report,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let w = unsafe { boundary::in_mut(writer, "writer") }?;
        // SAFETY: per the caller, NULL or readable.
        let owner = unsafe { owner.as_ref() }
            .map(|o| o.to_core("owner"))
            .transpose()?;
        // SAFETY: per the caller, NULL or readable for `entity_count` elements.
        let entities = unsafe { boundary::in_slice(entities, entity_count, "entities") }?;
        let buf = OutSlice::new(buf, len, "buf")?;
        let out_report = Out::new(out_report, "out_report")?;

        let mut sorted: Vec<&mmo_snapshot_entity_in> = entities.iter().collect();
        sorted.sort_by_key(|e| e.entity_id);
        w.records.clear();
        for (i, e) in sorted.iter().enumerate() {
            if e.entity_id == 0 {
                return Err(FfiError::invalid("entities", "holds entity id 0"));
            }
            if i > 0 && sorted[i - 1].entity_id == e.entity_id {
                return Err(FfiError::invalid(
                    "entities",
                    format!("holds entity id {} twice", e.entity_id),
                ));
            }
            let position_m = e.position_m.finite("entities[].position_m")?;
            let yaw_rad = boundary::finite(e.yaw_rad, "entities[].yaw_rad")?;
            let id = EntityId(e.entity_id);
            w.records.push(EntityRecordIn {
                id,
                state: NetEntityState {
                    position_m,
                    yaw_rad,
                    flags: e.flags,
                },
                base: w.sent.base_for(id, e.archetype),
            });
        }
        let seq = w.sent.next_seq();
        let snap = SnapshotIn {
            owner_baseline: None,
            len_limit_bytes: None,
            seq,
            ack: w.input_datagrams.ack_fields(),
            tick: Tick(tick),
            ack_input_seq,
            baseline_seq: w.sent.baseline_seq(),
            owner,
        };
        let report = {
            let leaves = w.sent.pending_leaves();
            w.codec
                .encode(&snap, leaves, &w.records, &mut w.datagram, &mut w.written)
                .map_err(|e| FfiError::config(format!("snapshot cannot be encoded: {e}")))?
        };
        // SAFETY: `buf` is writable for `len` bytes per the caller; `write` checks the size.
        unsafe { buf.write(&w.datagram)? };
        // Only now that the bytes reached the caller is the snapshot recorded as sent.
        w.sent.on_sent(seq, &w.written, report.leaves_written);
        w.written_ids.clear();
        w.written_ids.extend(w.written.iter().map(|r| r.id.0));
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        // SAFETY: valid per the caller.
        unsafe {
            out_report.write(mmo_snapshot_report {
                len_bytes: report.len_bytes,
                records_written: count(report.records_written),
                records_skipped: count(report.records_skipped),
                leaves_written: count(report.leaves_written),
                seq,
            });
        };
        Ok(())
    })
}

/// Copies the ids of the entity records the last successful `mmo_snapshot_writer_encode`
/// wrote (wire order, ascending) into `out_ids`, and their number to `*out_count` (e.g. for
/// `mmo_replicator_commit`). `MMO_RESULT_BUFFER_TOO_SMALL` when `capacity` is smaller (then
/// nothing is written; `records_written` of the report tells the size needed).
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers (`out_ids` may be NULL when `capacity` is 0).
///
/// # Safety
/// `writer` must be NULL or a live handle; `out_ids` NULL or writable for `capacity`
/// elements; `out_count` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_writer_written_ids(
    writer: *const mmo_snapshot_writer,
    out_ids: *mut u32,
    capacity: usize,
    out_count: *mut usize,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let w = unsafe { boundary::in_ref(writer, "writer") }?;
        let out_ids = OutSlice::new(out_ids, capacity, "out_ids")?;
        let out_count = Out::new(out_count, "out_count")?;
        // SAFETY: writable for `capacity` elements per the caller; `write` checks the size.
        unsafe { out_ids.write(&w.written_ids)? };
        // SAFETY: valid per the caller.
        unsafe { out_count.write(w.written_ids.len()) };
        Ok(())
    })
}

/// The client must forget entity `entity_id` (it left the area of interest or was
/// destroyed): a leave record goes into every snapshot until one carrying it is delivered;
/// if the entity comes back it enters again. Unknown ids are ignored.
///
/// `MMO_RESULT_NULL_ARGUMENT` when `writer` is NULL.
///
/// # Safety
/// `writer` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_writer_remove_entity(
    writer: *mut mmo_snapshot_writer,
    entity_id: u32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let w = unsafe { boundary::in_mut(writer, "writer") }?;
        w.sent.remove(EntityId(entity_id));
        Ok(())
    })
}

/// Decodes one datagram received from this client (an input datagram), processes the
/// snapshot acknowledgement it carries, and writes its inputs to `*out_batch`.
///
/// Inputs are repeated across datagrams for redundancy and are carried verbatim: skip
/// sequences already simulated and validate the rest (`mmo_validate_input`).
/// Errors (nothing changes): `MMO_RESULT_NULL_ARGUMENT` (`datagram` may be NULL only with
/// `len` 0, which then fails to decode), `MMO_RESULT_DECODE_FAILED` (truncated, malformed,
/// or not an input datagram; the last error says why). Borrows `datagram` for the call only.
///
/// # Safety
/// `writer` must be NULL or a live handle; `datagram` NULL or readable for `len` bytes;
/// `out_batch` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_writer_receive_input(
    writer: *mut mmo_snapshot_writer,
    datagram: *const u8,
    len: usize,
    out_batch: *mut mmo_input_batch,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let w = unsafe { boundary::in_mut(writer, "writer") }?;
        // SAFETY: per the caller, NULL or readable for `len` bytes.
        let datagram = unsafe { boundary::in_slice(datagram, len, "datagram") }?;
        let out_batch = Out::new(out_batch, "out_batch")?;
        let (header, payload) = PacketHeader::decode(datagram).map_err(codec_error)?;
        if header.kind != PacketKind::Input {
            return Err(FfiError::new(
                mmo_result::DecodeFailed,
                "not an input datagram (a snapshot was sent to the server)",
            ));
        }
        let batch = decode_input_payload(payload).map_err(codec_error)?;
        w.input_datagrams.record(header.seq);
        if let Some(ack) = header.ack {
            w.sent.on_ack(ack);
        }
        let mut out = mmo_input_batch {
            first_seq: batch.first_seq,
            ..Default::default()
        };
        for (slot, input) in out.inputs.iter_mut().zip(batch.inputs()) {
            *slot = (*input).into();
            out.count += 1;
        }
        // SAFETY: valid per the caller.
        unsafe { out_batch.write(out) };
        Ok(())
    })
}
