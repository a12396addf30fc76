//! The error every codec decoder returns. Wire data is never trusted: each variant names
//! what was wrong with the bytes, never a panic.

/// Why a datagram or one of its fields could not be decoded (or, for encoders, could not be
/// produced within the caller's limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended before the field was complete.
    #[error("truncated: {field} needs more bits than remain")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A field decoded to a value outside its documented range.
    #[error("value out of range in {field}")]
    ValueOutOfRange {
        /// The offending field.
        field: &'static str,
    },
    /// A count or length is above its documented limit.
    #[error("{field} is {len}, over the limit {max}")]
    LengthOverLimit {
        /// The offending field.
        field: &'static str,
        /// The decoded (or requested) length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The datagram kind byte names no known datagram kind.
    #[error("unknown datagram kind byte {0:#04x}")]
    BadKind(u8),
    /// A variable-length code is malformed (too long or non-canonical).
    #[error("malformed variable-length code in {field}")]
    BadCode {
        /// The field being read.
        field: &'static str,
    },
    /// A delta record (or a delta-coded owner state) needs a baseline the receiver does
    /// not hold: no state of the entity from a snapshot at or before the snapshot
    /// baseline (for the owner state: that snapshot's owner state).
    #[error("entity {entity} has no state at or before snapshot baseline seq {seq} here")]
    UnknownBaseline {
        /// The entity id of the record (0: the owner state, coded against the owner state
        /// of snapshot `seq`).
        entity: u32,
        /// The wire sequence number of the snapshot baseline.
        seq: u16,
    },
    /// Bytes (or non-zero padding bits) follow the last field.
    #[error("trailing data after the payload")]
    TrailingData,
}
