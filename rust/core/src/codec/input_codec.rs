//! The client-to-server input datagram payload: the last `N <= 16` inputs not yet
//! acknowledged by the server, oldest first, with their `u32` input sequence numbers.
//!
//! Layout (bit-packed after the datagram header, LSB-first; see `WIRE_FORMAT.md`):
//! `first_seq: 32`, `count: 5` (`0..=16`), then the first input absolute
//! (`forward_q: 8`, `right_q: 8`, `yaw_q: 16`, `buttons: 8`), then each following input as a
//! delta against the previous one: one bit "identical"; if 0, three presence bits
//! (axes, yaw, buttons) then the present fields: axes `8 + 8`, yaw as a signed exp-Golomb
//! (order [`YAW_DELTA_K`]) of the wrapping `i16` difference, buttons `8`.
//! Input sequence numbers are consecutive (`first_seq + i`, wrapping at `u32`).
//!
//! Axis values and button bits are carried verbatim; rejecting `-128` axes or unknown
//! buttons is the job of validation, not of the codec.

use super::bits::{BitReader, BitWriter};
use super::error::CodecError;
use super::packet::{AckFields, PacketHeader, PacketKind};
use super::varint::{read_signed_exp_golomb, write_signed_exp_golomb};
use crate::input::{Buttons, MoveInput};

/// Most inputs in one datagram.
pub const MAX_INPUTS: usize = 16;
/// Exp-Golomb order of yaw deltas.
pub const YAW_DELTA_K: u32 = 4;

/// Up to [`MAX_INPUTS`] consecutive inputs, stored inline (no allocation).
///
/// Invariant: `len <= MAX_INPUTS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputBatch {
    /// Sequence number of `inputs[0]`.
    pub first_seq: u32,
    inputs: [MoveInput; MAX_INPUTS],
    len: u8,
}

impl InputBatch {
    /// An empty batch starting at `first_seq`.
    #[must_use]
    pub fn new(first_seq: u32) -> Self {
        InputBatch {
            first_seq,
            ..Default::default()
        }
    }

    /// Appends an input; returns `false` (and drops it) when the batch is full.
    pub fn push(&mut self, input: MoveInput) -> bool {
        match self.inputs.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = input;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The inputs, oldest first.
    #[must_use]
    pub fn inputs(&self) -> &[MoveInput] {
        self.inputs.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The inputs with their sequence numbers.
    pub fn iter(&self) -> impl Iterator<Item = (u32, MoveInput)> + '_ {
        self.inputs()
            .iter()
            .enumerate()
            .map(|(i, m)| (self.first_seq.wrapping_add(i as u32), *m))
    }
}

/// Encodes an input datagram (header included) into `out` (cleared first).
pub fn encode_input_datagram(
    seq: u16,
    ack: Option<AckFields>,
    batch: &InputBatch,
    out: &mut Vec<u8>,
) {
    out.clear();
    PacketHeader {
        kind: PacketKind::Input,
        seq,
        ack,
    }
    .encode(out);
    let mut w = BitWriter::from_vec(std::mem::take(out));
    w.write_bits(batch.first_seq, 32);
    let inputs = batch.inputs();
    w.write_bits(inputs.len() as u32, 5);
    let mut prev: Option<MoveInput> = None;
    for m in inputs {
        match prev {
            None => {
                w.write_bits(m.forward_q as u8 as u32, 8);
                w.write_bits(m.right_q as u8 as u32, 8);
                w.write_bits(u32::from(m.yaw_q), 16);
                w.write_bits(u32::from(m.buttons.0), 8);
            }
            Some(p) if p == *m => w.write_bool(true),
            Some(p) => {
                let axes = p.forward_q != m.forward_q || p.right_q != m.right_q;
                let yaw = p.yaw_q != m.yaw_q;
                let buttons = p.buttons != m.buttons;
                w.write_bits(
                    u32::from(axes) << 1 | u32::from(yaw) << 2 | u32::from(buttons) << 3,
                    4,
                );
                if axes {
                    w.write_bits(m.forward_q as u8 as u32, 8);
                    w.write_bits(m.right_q as u8 as u32, 8);
                }
                if yaw {
                    write_signed_exp_golomb(
                        &mut w,
                        i32::from(m.yaw_q.wrapping_sub(p.yaw_q) as i16),
                        YAW_DELTA_K,
                    );
                }
                if buttons {
                    w.write_bits(u32::from(m.buttons.0), 8);
                }
            }
        }
        prev = Some(*m);
    }
    *out = w.finish();
}

/// Decodes the payload of an input datagram (the bytes after the header).
pub fn decode_input_payload(payload: &[u8]) -> Result<InputBatch, CodecError> {
    let mut r = BitReader::new(payload);
    let mut batch = InputBatch::new(r.read_bits(32, "first_seq")?);
    let count = r.read_bits(5, "input count")? as usize;
    if count > MAX_INPUTS {
        return Err(CodecError::LengthOverLimit {
            field: "input count",
            len: count,
            max: MAX_INPUTS,
        });
    }
    let mut prev: Option<MoveInput> = None;
    for _ in 0..count {
        let m = match prev {
            None => MoveInput {
                forward_q: r.read_bits(8, "forward_q")? as u8 as i8,
                right_q: r.read_bits(8, "right_q")? as u8 as i8,
                yaw_q: r.read_bits(16, "yaw_q")? as u16,
                buttons: Buttons(r.read_bits(8, "buttons")? as u8),
            },
            Some(p) => {
                if r.read_bool("input same")? {
                    p
                } else {
                    let present = r.read_bits(3, "input presence")?;
                    if present == 0 {
                        return Err(CodecError::BadCode {
                            field: "input delta with no field",
                        });
                    }
                    let mut m = p;
                    if present & 1 != 0 {
                        m.forward_q = r.read_bits(8, "forward_q")? as u8 as i8;
                        m.right_q = r.read_bits(8, "right_q")? as u8 as i8;
                    }
                    if present & 2 != 0 {
                        let d = read_signed_exp_golomb(&mut r, YAW_DELTA_K, "yaw delta")?;
                        let d = i16::try_from(d)
                            .map_err(|_| CodecError::ValueOutOfRange { field: "yaw delta" })?;
                        m.yaw_q = p.yaw_q.wrapping_add(d as u16);
                    }
                    if present & 4 != 0 {
                        m.buttons = Buttons(r.read_bits(8, "buttons")? as u8);
                    }
                    m
                }
            }
        };
        // Bounded by `count <= MAX_INPUTS`, so the push cannot fail.
        batch.push(m);
        prev = Some(m);
    }
    r.expect_end()?;
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_input() -> impl Strategy<Value = MoveInput> {
        (any::<i8>(), any::<i8>(), any::<u16>(), any::<u8>()).prop_map(|(f, r, y, b)| MoveInput {
            forward_q: f,
            right_q: r,
            yaw_q: y,
            buttons: Buttons(b),
        })
    }

    #[test]
    fn rejects_over_limit_count() {
        let mut w = BitWriter::new();
        w.write_bits(7, 32);
        w.write_bits(17, 5);
        let bytes = w.finish();
        assert!(matches!(
            decode_input_payload(&bytes),
            Err(CodecError::LengthOverLimit { .. })
        ));
    }

    #[test]
    fn batch_is_bounded() {
        let mut b = InputBatch::new(u32::MAX);
        for _ in 0..MAX_INPUTS {
            assert!(b.push(MoveInput::default()));
        }
        assert!(!b.push(MoveInput::default()));
        let seqs: Vec<u32> = b.iter().map(|(s, _)| s).take(2).collect();
        assert_eq!(seqs, vec![u32::MAX, 0]);
    }

    proptest! {
        #[test]
        fn round_trip(first in any::<u32>(), inputs in proptest::collection::vec(arb_input(), 0..=MAX_INPUTS), repeat in any::<bool>()) {
            let mut batch = InputBatch::new(first);
            for (i, m) in inputs.iter().enumerate() {
                // Exercise the "identical" path too.
                let m = if repeat && i % 2 == 1 { inputs[i - 1] } else { *m };
                batch.push(m);
            }
            let mut out = Vec::new();
            encode_input_datagram(9, None, &batch, &mut out);
            let (h, payload) = PacketHeader::decode(&out).unwrap();
            prop_assert_eq!(h.kind, PacketKind::Input);
            prop_assert_eq!(decode_input_payload(payload).unwrap(), batch);
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_input_payload(&data);
        }
    }
}
