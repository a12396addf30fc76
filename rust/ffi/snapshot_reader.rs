//! `mmo_snapshot_reader`: the client side of the datagram codec, for users who bring their
//! own transport. It decodes snapshot datagrams against the states it holds
//! (`ReceivedHistory`), exposes the last applied snapshot (owner state, entity records,
//! leaves), and encodes input datagrams that carry the acknowledgement of what it applied.
//!
//! Per received datagram: `mmo_snapshot_reader_receive`; when applied, reconcile the
//! predictor with the owner state and `ack_input_seq`, push each entity into its
//! interpolator (`server_time_us = tick * 1e6 / tick_rate_hz`), drop interpolators of
//! leaves. Per simulation tick: `mmo_snapshot_reader_encode_input` with the predictor's
//! unacknowledged inputs, send the bytes as one unreliable datagram.

use mmo_core::codec::baseline::{ApplyOutcome, ReceivedHistory};
use mmo_core::codec::input_codec::{InputBatch, MAX_INPUTS, encode_input_datagram};
use mmo_core::codec::packet::{PacketHeader, PacketKind};
use mmo_core::codec::snapshot::{DecodedSnapshot, SnapshotCodec};

use crate::boundary::{self, FfiError, Out, OutSlice};
use crate::result::mmo_result;
use crate::snapshot_writer::{codec_error, mmo_snapshot_config};
use crate::types::{mmo_character_state, mmo_move_input, mmo_vec3};

/// What `mmo_snapshot_reader_receive` did with a snapshot datagram.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_snapshot_outcome {
    /// Decoded and applied; it becomes the reader's current snapshot and will be
    /// acknowledged by the next input datagram.
    Applied = 0,
    /// Not newer than the newest applied snapshot (duplicate or reordered): dropped, not
    /// acknowledged. The current snapshot is unchanged. Expected on a real network.
    Stale = 1,
}

/// Summary of a received snapshot.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct mmo_snapshot_info {
    /// Applied or stale. When stale, the other fields are zero.
    pub outcome: mmo_snapshot_outcome,
    /// Server tick of the snapshot.
    pub tick: u32,
    /// Newest input sequence the server simulated for this client (reconcile with it).
    pub ack_input_seq: u32,
    /// 1 when `owner` holds the client's own character, else 0.
    pub has_owner: u8,
    /// The client's own character, bit-exact (valid when `has_owner` is 1).
    pub owner: mmo_character_state,
    /// Entity records, read them with `mmo_snapshot_reader_entity`.
    pub entity_count: u32,
    /// Leave records, read them with `mmo_snapshot_reader_leaves`.
    pub leave_count: u32,
    /// Extended sequence number of the snapshot.
    pub seq: u64,
}

/// One decoded entity record (dequantized).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct mmo_snapshot_entity {
    /// Position of the capsule's base, metres (quantized to the config's precision).
    pub position_m: mmo_vec3,
    /// Facing, radians in `[0, 2*pi)`.
    pub yaw_rad: f32,
    /// Entity id.
    pub entity_id: u32,
    /// The archetype, valid when `entered` is 1.
    pub archetype: u16,
    /// Game-defined flags.
    pub flags: u8,
    /// 1 when this record is the entity's enter record (spawn an actor), else 0.
    pub entered: u8,
}

/// Opaque client-side codec state.
pub struct mmo_snapshot_reader {
    codec: SnapshotCodec,
    received: ReceivedHistory,
    /// The last applied snapshot.
    current: DecodedSnapshot,
    /// Scratch decode target, swapped in only when a decode succeeds.
    decoding: DecodedSnapshot,
    next_datagram_seq: u16,
    datagram: Vec<u8>,
}

/// Creates the client codec state with `*config` (copied; must equal the server's). On
/// success `*out` receives a new handle owned by the caller: free it with
/// `mmo_snapshot_reader_free`.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_CONFIG`. Thread-safe (creates
/// independent state).
///
/// # Safety
/// `config` must be NULL or readable; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_reader_new(
    config: *const mmo_snapshot_config,
    out: *mut *mut mmo_snapshot_reader,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or readable.
        let config = unsafe { boundary::in_ref(config, "config") }?;
        let out = Out::new(out, "out")?;
        let reader = mmo_snapshot_reader {
            codec: config.to_codec()?,
            received: ReceivedHistory::new(),
            current: DecodedSnapshot::default(),
            decoding: DecodedSnapshot::default(),
            next_datagram_seq: 0,
            datagram: Vec::new(),
        };
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(boundary::into_handle(reader)) };
        Ok(())
    })
}

/// Frees a snapshot reader. NULL is a no-op. The handle must not be used afterwards.
///
/// # Safety
/// `reader` must be NULL or a live handle, not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_reader_free(reader: *mut mmo_snapshot_reader) {
    boundary::guard_value((), || {
        // SAFETY: per the caller, NULL or a live handle from `mmo_snapshot_reader_new`.
        unsafe { boundary::free_handle(reader) }
    });
}

/// Decodes one datagram received from the server and, when it is newer than the current
/// snapshot, applies it and makes it current; writes the summary to `*out_info`.
///
/// Errors (nothing changes, the current snapshot stays): `MMO_RESULT_NULL_ARGUMENT`
/// (`datagram` may be NULL only with `len` 0), `MMO_RESULT_DECODE_FAILED` (truncated,
/// malformed, or not a snapshot), `MMO_RESULT_UNKNOWN_BASELINE` (a delta against a state no
/// longer held; the server stops using it once it leaves the window). Borrows `datagram`
/// for the call only. Game thread only.
///
/// # Safety
/// `reader` must be NULL or a live handle; `datagram` NULL or readable for `len` bytes;
/// `out_info` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_reader_receive(
    reader: *mut mmo_snapshot_reader,
    datagram: *const u8,
    len: usize,
    out_info: *mut mmo_snapshot_info,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let r = unsafe { boundary::in_mut(reader, "reader") }?;
        // SAFETY: per the caller, NULL or readable for `len` bytes.
        let datagram = unsafe { boundary::in_slice(datagram, len, "datagram") }?;
        let out_info = Out::new(out_info, "out_info")?;
        let (header, payload) = PacketHeader::decode(datagram).map_err(codec_error)?;
        if header.kind != PacketKind::Snapshot {
            return Err(FfiError::new(
                mmo_result::DecodeFailed,
                "not a snapshot datagram (an input datagram was sent to the client)",
            ));
        }
        let outcome = r
            .received
            .on_snapshot(&r.codec, header.seq, payload, &mut r.decoding)
            .map_err(codec_error)?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let info = match outcome {
            ApplyOutcome::Stale => mmo_snapshot_info {
                outcome: mmo_snapshot_outcome::Stale,
                tick: 0,
                ack_input_seq: 0,
                has_owner: 0,
                owner: mmo_character_state::default(),
                entity_count: 0,
                leave_count: 0,
                seq: 0,
            },
            ApplyOutcome::Applied => {
                std::mem::swap(&mut r.current, &mut r.decoding);
                let c = &r.current;
                mmo_snapshot_info {
                    outcome: mmo_snapshot_outcome::Applied,
                    tick: c.tick.0,
                    ack_input_seq: c.ack_input_seq,
                    has_owner: u8::from(c.owner.is_some()),
                    owner: c.owner.as_ref().map(Into::into).unwrap_or_default(),
                    entity_count: count(c.entities.len()),
                    leave_count: count(c.leaves.len()),
                    seq: c.seq,
                }
            }
        };
        // SAFETY: valid per the caller.
        unsafe { out_info.write(info) };
        Ok(())
    })
}

/// Writes entity record `index` (0-based, `< entity_count`, ascending ids) of the current
/// snapshot to `*out`.
///
/// `MMO_RESULT_INVALID_ARGUMENT` when `index` is out of range (also before any snapshot);
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Game thread only.
///
/// # Safety
/// `reader` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_reader_entity(
    reader: *const mmo_snapshot_reader,
    index: usize,
    out: *mut mmo_snapshot_entity,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let r = unsafe { boundary::in_ref(reader, "reader") }?;
        let out = Out::new(out, "out")?;
        let record = r.current.entities.get(index).ok_or_else(|| {
            FfiError::invalid(
                "index",
                format!("is {index}, the snapshot has {}", r.current.entities.len()),
            )
        })?;
        let state = r.codec.quantization().dequantize(&record.state);
        let value = mmo_snapshot_entity {
            position_m: state.position_m.into(),
            yaw_rad: state.yaw_rad,
            entity_id: record.id.0,
            archetype: record.enter_archetype.unwrap_or(0),
            flags: state.flags,
            entered: u8::from(record.enter_archetype.is_some()),
        };
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(value) };
        Ok(())
    })
}

/// Copies the ids of the current snapshot's leave records (ascending) into `out_ids` and
/// their number to `*out_count`.
///
/// `MMO_RESULT_BUFFER_TOO_SMALL` when `capacity < leave_count` (nothing written);
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers (`out_ids` may be NULL when `capacity` is 0).
///
/// # Safety
/// `reader` must be NULL or a live handle; `out_ids` NULL or writable for `capacity`
/// elements; `out_count` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_reader_leaves(
    reader: *const mmo_snapshot_reader,
    out_ids: *mut u32,
    capacity: usize,
    out_count: *mut usize,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let r = unsafe { boundary::in_ref(reader, "reader") }?;
        let out_ids = OutSlice::new(out_ids, capacity, "out_ids")?;
        let out_count = Out::new(out_count, "out_count")?;
        let ids: Vec<u32> = r.current.leaves.iter().map(|id| id.0).collect();
        // SAFETY: writable for `capacity` elements per the caller; `write` checks the size.
        unsafe { out_ids.write(&ids)? };
        // SAFETY: valid per the caller.
        unsafe { out_count.write(ids.len()) };
        Ok(())
    })
}

/// Encodes an input datagram carrying `count` consecutive inputs (`inputs[i]` has sequence
/// `first_seq + i`; pass the predictor's unacknowledged inputs, at most
/// `MMO_MAX_INPUTS_PER_DATAGRAM`) and the acknowledgement of the snapshots applied so far,
/// into `buf`; `*out_len` receives the datagram length. Each success consumes one datagram
/// sequence number.
///
/// Errors (nothing consumed, `buf` untouched): `MMO_RESULT_NULL_ARGUMENT` (`inputs` may be
/// NULL only when `count` is 0), `MMO_RESULT_INVALID_ARGUMENT` (`count` above the maximum),
/// `MMO_RESULT_BUFFER_TOO_SMALL` (`len` below the datagram; 256 bytes always suffice).
///
/// # Safety
/// `reader` must be NULL or a live handle; `inputs` NULL or readable for `count` elements;
/// `buf` NULL or writable for `len` bytes; `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_snapshot_reader_encode_input(
    reader: *mut mmo_snapshot_reader,
    first_seq: u32,
    inputs: *const mmo_move_input,
    count: usize,
    buf: *mut u8,
    len: usize,
    out_len: *mut usize,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let r = unsafe { boundary::in_mut(reader, "reader") }?;
        // Checked before the slice is formed, so an over-long count never reaches it.
        if count > MAX_INPUTS {
            return Err(FfiError::invalid(
                "count",
                format!("is {count}, at most {MAX_INPUTS}"),
            ));
        }
        // SAFETY: per the caller, NULL or readable for `count` elements.
        let inputs = unsafe { boundary::in_slice(inputs, count, "inputs") }?;
        let buf = OutSlice::new(buf, len, "buf")?;
        let out_len = Out::new(out_len, "out_len")?;
        let mut batch = InputBatch::new(first_seq);
        for input in inputs {
            // At most MAX_INPUTS inputs (checked above), so every push fits.
            let pushed = batch.push((*input).into());
            debug_assert!(pushed);
        }
        encode_input_datagram(
            r.next_datagram_seq,
            r.received.ack_fields(),
            &batch,
            &mut r.datagram,
        );
        // SAFETY: writable for `len` bytes per the caller; `write` checks the size.
        unsafe { buf.write(&r.datagram)? };
        r.next_datagram_seq = r.next_datagram_seq.wrapping_add(1);
        // SAFETY: valid per the caller.
        unsafe { out_len.write(r.datagram.len()) };
        Ok(())
    })
}
