//! The datagram header shared by both directions, and wrap-aware sequence numbers.
//!
//! Layout (9 bytes, little-endian, byte-aligned; see `WIRE_FORMAT.md`):
//!
//! | offset | size | field                                                         |
//! |--------|------|---------------------------------------------------------------|
//! | 0      | 1    | kind byte: bits 0..=6 kind (1 Snapshot, 2 Input), bit 7 = ack valid |
//! | 1      | 2    | `seq`: this datagram's sequence number, wrapping              |
//! | 3      | 2    | `ack`: newest seq received from the peer (0 if not valid)     |
//! | 5      | 4    | `ack_bits`: bit `i` set = seq `ack - 1 - i` received (0 if not valid) |

use super::error::CodecError;

/// Size of the datagram header, bytes.
pub const HEADER_LEN_BYTES: usize = 9;

/// Bit 7 of the kind byte: `ack` and `ack_bits` carry information.
const ACK_VALID_BIT: u8 = 0x80;

/// What a datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketKind {
    /// Server to client: a snapshot (`snapshot` module).
    Snapshot = 1,
    /// Client to server: inputs (`input_codec` module).
    Input = 2,
}

impl TryFrom<u8> for PacketKind {
    type Error = CodecError;
    fn try_from(b: u8) -> Result<Self, CodecError> {
        match b {
            1 => Ok(PacketKind::Snapshot),
            2 => Ok(PacketKind::Input),
            other => Err(CodecError::BadKind(other)),
        }
    }
}

/// The acknowledgement a datagram carries for the peer's datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct AckFields {
    /// Newest sequence number received from the peer.
    pub ack: u16,
    /// Bit `i` set: seq `ack - 1 - i` (wrapping) was also received.
    pub ack_bits: u32,
}

/// The header at the start of every datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketHeader {
    /// What follows the header.
    pub kind: PacketKind,
    /// Sequence number of this datagram in its direction (wraps at `u16::MAX`).
    pub seq: u16,
    /// Acknowledgement of the peer's datagrams; `None` until one has been received.
    pub ack: Option<AckFields>,
}

impl PacketHeader {
    /// Appends the 9 header bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (flag, ack) = match self.ack {
            Some(a) => (ACK_VALID_BIT, a),
            None => (
                0,
                AckFields {
                    ack: 0,
                    ack_bits: 0,
                },
            ),
        };
        out.push(self.kind as u8 | flag);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&ack.ack.to_le_bytes());
        out.extend_from_slice(&ack.ack_bits.to_le_bytes());
    }

    /// Decodes the header at the start of `datagram`; returns it and the payload after it.
    pub fn decode(datagram: &[u8]) -> Result<(PacketHeader, &[u8]), CodecError> {
        let (head, payload) =
            datagram
                .split_first_chunk::<HEADER_LEN_BYTES>()
                .ok_or(CodecError::Truncated {
                    field: "datagram header",
                })?;
        let [k, s0, s1, a0, a1, b0, b1, b2, b3] = *head;
        let kind = PacketKind::try_from(k & !ACK_VALID_BIT)?;
        let seq = u16::from_le_bytes([s0, s1]);
        let ack = u16::from_le_bytes([a0, a1]);
        let ack_bits = u32::from_le_bytes([b0, b1, b2, b3]);
        let ack = if k & ACK_VALID_BIT != 0 {
            Some(AckFields { ack, ack_bits })
        } else if ack != 0 || ack_bits != 0 {
            return Err(CodecError::ValueOutOfRange {
                field: "ack without the ack-valid bit",
            });
        } else {
            None
        };
        Ok((PacketHeader { kind, seq, ack }, payload))
    }
}

/// Wrap-aware comparison: true when `a` is more recent than `b`, i.e. `a - b` (mod 2^16)
/// is in `1..32768`. Exactly half-way apart (`32768`) counts as not more recent both ways.
#[inline]
#[must_use]
pub fn seq_more_recent(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 0x8000
}

/// Wrap-aware signed difference `a - b` in `-32768..=32767`.
#[inline]
#[must_use]
pub fn seq_diff(a: u16, b: u16) -> i32 {
    i32::from(a.wrapping_sub(b) as i16)
}

/// Extends a wire `seq` to the 64-bit counter closest to `reference` (an extended seq).
/// Values that would fall below zero come out as the nearest non-negative candidate.
#[inline]
#[must_use]
pub fn unwrap_seq(seq: u16, reference: u64) -> u64 {
    let d = seq_diff(seq, reference as u16);
    if d < 0 {
        reference.saturating_sub(d.unsigned_abs().into())
    } else {
        reference + d as u64
    }
}

/// Like [`unwrap_seq`], but `None` when the closest candidate would fall below zero: `seq`
/// was sent before the first seq this counter knows (65535 arriving after 1, when the
/// counter started at 1). Saturating it to 0 would alias a seq that may never have arrived.
#[inline]
#[must_use]
pub fn checked_unwrap_seq(seq: u16, reference: u64) -> Option<u64> {
    let d = seq_diff(seq, reference as u16);
    if d < 0 {
        reference.checked_sub(d.unsigned_abs().into())
    } else {
        Some(reference + d as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_round_trip_and_errors() {
        let h = PacketHeader {
            kind: PacketKind::Input,
            seq: 0xFFFF,
            ack: Some(AckFields {
                ack: 7,
                ack_bits: 0x8000_0001,
            }),
        };
        let mut out = Vec::new();
        h.encode(&mut out);
        out.push(42);
        assert_eq!(out.len(), HEADER_LEN_BYTES + 1);
        assert_eq!(out[0], 0x82);
        let (back, payload) = PacketHeader::decode(&out).unwrap();
        assert_eq!(back, h);
        assert_eq!(payload, &[42]);
        assert_eq!(
            PacketHeader::decode(&out[..8]),
            Err(CodecError::Truncated {
                field: "datagram header"
            })
        );
        out[0] = 0x03;
        assert_eq!(PacketHeader::decode(&out), Err(CodecError::BadKind(3)));
        out[0] = 0x02; // ack not valid but non-zero ack fields
        assert!(PacketHeader::decode(&out).is_err());
    }

    #[test]
    fn wrap_around() {
        assert!(seq_more_recent(0, 0xFFFF));
        assert!(seq_more_recent(5, 0xFFF0));
        assert!(!seq_more_recent(0xFFFF, 0));
        assert!(!seq_more_recent(3, 3));
        assert_eq!(seq_diff(1, 0xFFFF), 2);
        assert_eq!(unwrap_seq(1, 65535), 65537);
        assert_eq!(unwrap_seq(65535, 65537), 65535);
        assert_eq!(unwrap_seq(65535, 2), 0);
    }

    proptest! {
        #[test]
        fn unwrap_is_inverse(reference in 0u64..1_000_000, delta in -30000i64..30000) {
            let target = reference as i64 + delta;
            prop_assume!(target >= 0);
            prop_assert_eq!(unwrap_seq(target as u16, reference), target as u64);
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = PacketHeader::decode(&data);
        }
    }
}
