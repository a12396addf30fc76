//! Where the control frames (`WIRE_FORMAT.md` 7.1) of a byte stream begin, read by a relay
//! that passes the stream on in arbitrary chunks without decoding it.
//!
//! A gateway that restarts a session in another zone process (`RELAY_FORMAT.md` section 7)
//! must start the new stream at a frame boundary: the part of a frame the stopped process
//! took is gone, so the rest of that frame is dropped and the new process reads whole
//! frames only. [`FrameCursor`] follows the length prefixes of the bytes it is shown and
//! says how many bytes are left to the end of the current frame.

use crate::control::MAX_FRAME_LEN_BYTES;

/// Position of a [`FrameCursor`] in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// Reading a length prefix: `value` so far from `len_bytes` bytes (0 at a boundary).
    Length { value: u32, len_bytes: u8 },
    /// Inside a frame's body, this many bytes before its end (never 0).
    Body { left_bytes: usize },
    /// The stream broke the framing rules (a length over the limit or a fourth length
    /// byte): the receiver closes the session; boundaries are not known any more.
    Broken,
}

/// Follows frame boundaries in a control byte stream (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameCursor {
    position: Position,
}

impl Default for FrameCursor {
    fn default() -> Self {
        FrameCursor::new()
    }
}

impl FrameCursor {
    /// A cursor at the start of a stream (a boundary).
    #[must_use]
    pub fn new() -> Self {
        FrameCursor {
            position: Position::Length {
                value: 0,
                len_bytes: 0,
            },
        }
    }

    /// True between two frames (or at the start).
    #[must_use]
    pub fn at_boundary(&self) -> bool {
        self.position
            == Position::Length {
                value: 0,
                len_bytes: 0,
            }
    }

    /// True once the stream broke the framing rules.
    #[must_use]
    pub fn is_broken(&self) -> bool {
        self.position == Position::Broken
    }

    /// Moves over `bytes`, the stream's next bytes.
    pub fn advance(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let taken = self.step(rest);
            rest = &rest[taken..];
            if self.is_broken() {
                return;
            }
        }
    }

    /// How many of `bytes` (the stream's next bytes) finish the current frame, moving over
    /// them: 0 at a boundary, `bytes.len()` when the frame goes on past them (or the stream
    /// is broken). The bytes after them start a frame.
    pub fn finish_frame(&mut self, bytes: &[u8]) -> usize {
        let mut taken = 0;
        while taken < bytes.len() && !self.at_boundary() {
            if self.is_broken() {
                return bytes.len();
            }
            taken += self.step(&bytes[taken..]);
        }
        if self.is_broken() { bytes.len() } else { taken }
    }

    /// Takes one length byte, or as much of a body as `bytes` (not empty) holds; returns
    /// how many bytes it took (at least 1).
    fn step(&mut self, bytes: &[u8]) -> usize {
        match self.position {
            Position::Broken => bytes.len(),
            Position::Body { left_bytes } => {
                let n = left_bytes.min(bytes.len());
                self.position = if n == left_bytes {
                    FrameCursor::new().position
                } else {
                    Position::Body {
                        left_bytes: left_bytes - n,
                    }
                };
                n
            }
            Position::Length { value, len_bytes } => {
                let byte = bytes[0];
                let value = value | (u32::from(byte & 0x7f) << (7 * u32::from(len_bytes)));
                let len_bytes = len_bytes + 1;
                self.position = if byte & 0x80 != 0 {
                    if len_bytes >= 3 {
                        Position::Broken
                    } else {
                        Position::Length { value, len_bytes }
                    }
                } else if value as usize > MAX_FRAME_LEN_BYTES {
                    Position::Broken
                } else if value == 0 {
                    // An empty body does not decode as a message; the receiver closes the
                    // session, but the boundary is still known.
                    FrameCursor::new().position
                } else {
                    Position::Body {
                        left_bytes: value as usize,
                    }
                };
                1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{ChatChannel, ClientControl, encode_frame};
    use proptest::prelude::*;

    fn frames(texts: &[usize]) -> (Vec<u8>, Vec<usize>) {
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for &len in texts {
            encode_frame(
                &ClientControl::Chat {
                    channel: ChatChannel::Say,
                    to: None,
                    text: "x".repeat(len),
                },
                &mut stream,
            )
            .unwrap();
            ends.push(stream.len());
        }
        (stream, ends)
    }

    proptest! {
        /// Cut anywhere into chunks, the cursor knows the boundaries exactly where the
        /// frames end, and `finish_frame` reaches the next one.
        #[test]
        fn boundaries_are_found_across_any_chunking(
            texts in proptest::collection::vec(0usize..400, 1..8),
            cuts in proptest::collection::vec(1usize..300, 1..20),
            stop in 0usize..2000,
        ) {
            let (stream, ends) = frames(&texts);
            let stop = stop % stream.len();
            let mut cursor = FrameCursor::new();
            let mut at = 0;
            let mut cuts = cuts.into_iter().cycle();
            while at < stop {
                let n = cuts.next().unwrap().min(stop - at);
                cursor.advance(&stream[at..at + n]);
                at += n;
            }
            prop_assert_eq!(cursor.at_boundary(), at == 0 || ends.contains(&at));
            let skipped = cursor.finish_frame(&stream[at..]);
            let next_end = if at == 0 || ends.contains(&at) {
                at
            } else {
                *ends.iter().find(|&&e| e > at).unwrap()
            };
            prop_assert_eq!(at + skipped, next_end);
            prop_assert!(cursor.at_boundary());
        }
    }

    #[test]
    fn a_frame_split_inside_its_length_prefix_is_finished() {
        let (stream, ends) = frames(&[200, 3]);
        // 200 bytes of text: a two-byte length prefix.
        assert!(stream[0] & 0x80 != 0);
        let mut cursor = FrameCursor::new();
        cursor.advance(&stream[..1]);
        assert!(!cursor.at_boundary());
        assert_eq!(cursor.finish_frame(&stream[1..]), ends[0] - 1);
        assert_eq!(cursor.finish_frame(&stream[ends[0]..]), 0);
    }

    #[test]
    fn a_stream_that_breaks_the_framing_is_broken_for_good() {
        let mut cursor = FrameCursor::new();
        // 32768 > 16384.
        cursor.advance(&[0x80, 0x80, 0x02]);
        assert!(cursor.is_broken());
        assert_eq!(cursor.finish_frame(&[1, 2, 3]), 3);
        let mut cursor = FrameCursor::new();
        cursor.advance(&[0x80, 0x80, 0x80]);
        assert!(cursor.is_broken());
        assert!(!cursor.at_boundary());
    }
}
