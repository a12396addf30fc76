//! The datagram codec: bit packing, quantization, the datagram header with acks, the input
//! datagram and the delta-compressed snapshot datagram, plus the baseline bookkeeping that
//! lets both ends agree on what the client holds. The byte-level specification is
//! `WIRE_FORMAT.md` next to this file; golden vectors in `tests/data/` pin it.
//!
//! Everything here is sans-IO: bytes in, bytes out. Every decoder returns
//! `Result<_, CodecError>`, bounds every count and allocation, and never panics on any input.

pub mod ack;
pub mod baseline;
pub mod bits;
pub mod entity_state;
pub mod error;
#[cfg(test)]
mod golden;
pub mod id_map;
pub mod input_codec;
pub mod packet;
pub mod quantize;
pub mod snapshot;
#[cfg(test)]
mod snapshot_tests;
pub mod varint;

pub use error::CodecError;
