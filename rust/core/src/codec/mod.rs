//! The datagram codec: bit packing, quantization, the datagram header with acks, the input
//! datagram and the delta-compressed snapshot datagram, plus the baseline bookkeeping that
//! lets both ends agree on what the client holds. The byte-level specification is
//! `WIRE_FORMAT.md` next to this file; golden vectors in `tests/data/` pin it.
//!
//! Everything here is sans-IO: bytes in, bytes out. Every decoder returns
//! `Result<_, CodecError>`, bounds every count and allocation, and never panics on any input.
//!
//! Map of the module:
//! - building blocks: [`bits`] (LSB-first bit packer), [`varint`] (LEB128, zigzag,
//!   exp-Golomb), [`quantize`] (bounded float, angle, smallest-three quaternion, octahedral
//!   unit vector);
//! - datagrams: [`packet`] (9-byte header, wrap-aware seqs), [`ack`] (receive/send ack
//!   trackers), [`input_codec`] (client inputs with redundancy), [`snapshot`] (server
//!   snapshots) over [`entity_state`] (replicated state, quantization, prediction), with
//!   [`record_cache`] sharing delta record bodies between clients;
//! - agreement between ends: [`baseline`] (`SentHistory` on the server, `ReceivedHistory`
//!   on the client).
//!
//! A server tick for one client, in short: `SentHistory::on_ack` with the client's latest
//! ack; build `EntityRecordIn`s with `SentHistory::base_for`; `SnapshotCodec::encode` with
//! `SentHistory::pending_leaves`; `SentHistory::on_sent` with what was written. The client:
//! `PacketHeader::decode`, then `ReceivedHistory::on_snapshot`, and put
//! `ReceivedHistory::ack_fields` in its next input datagram.

pub mod ack;
pub mod baseline;
pub mod bits;
pub mod entity_state;
pub mod error;
#[cfg(test)]
mod golden;
mod handle_index;
pub mod input_codec;
pub mod packet;
pub mod quantize;
pub mod record_cache;
pub mod snapshot;
#[cfg(test)]
mod snapshot_tests;
pub mod varint;

pub use error::CodecError;
