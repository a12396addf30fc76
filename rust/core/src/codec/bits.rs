//! Bit packing: [`BitWriter`] and [`BitReader`].
//!
//! Bit order is **LSB-first**: the first bit written is bit 0 (the least significant bit) of
//! byte 0, the ninth is bit 0 of byte 1. A field of `n` bits holding `v` stores bit `i` of
//! `v` in stream bit `pos + i`. This is the order of a little-endian shift register, so both
//! directions work on 64-bit words with a shift and a mask (hot path).
//!
//! The writer never fails (it grows its `Vec`); size limits are enforced by callers with
//! [`BitWriter::bit_len`], [`BitWriter::mark`] and [`BitWriter::rewind`]. The reader returns
//! [`CodecError::Truncated`] instead of reading past the end, and never panics.

use super::error::CodecError;

#[inline]
fn low_mask(n_bits: u32) -> u64 {
    if n_bits >= 64 {
        u64::MAX
    } else {
        (1u64 << n_bits) - 1
    }
}

/// Writes bit fields LSB-first into a growable byte vector.
///
/// Invariant: `acc_bits < 32`; the stream is `buf` (whole bytes) followed by the low
/// `acc_bits` bits of `acc`; bits of `acc` above `acc_bits` are zero.
#[derive(Debug, Default, Clone)]
pub struct BitWriter {
    buf: Vec<u8>,
    acc: u64,
    acc_bits: u32,
}

impl BitWriter {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `len_bytes` bytes before it reallocates.
    #[must_use]
    pub fn with_capacity(len_bytes: usize) -> Self {
        BitWriter {
            buf: Vec::with_capacity(len_bytes),
            acc: 0,
            acc_bits: 0,
        }
    }

    /// A writer that appends after the bytes already in `buf` (e.g. a datagram header), and
    /// reuses its allocation. Call [`BitWriter::finish`] to get the vector back.
    #[must_use]
    pub fn from_vec(buf: Vec<u8>) -> Self {
        BitWriter {
            buf,
            acc: 0,
            acc_bits: 0,
        }
    }

    /// Number of bits written so far (including any bytes present at construction).
    #[inline]
    #[must_use]
    pub fn bit_len(&self) -> usize {
        self.buf.len() * 8 + self.acc_bits as usize
    }

    /// Number of bytes [`BitWriter::finish`] would return now.
    #[inline]
    #[must_use]
    pub fn byte_len(&self) -> usize {
        self.bit_len().div_ceil(8)
    }

    /// Writes the low `n_bits` bits of `value` (`n_bits <= 32`; higher bits of `value` are
    /// ignored).
    #[inline]
    pub fn write_bits(&mut self, value: u32, n_bits: u32) {
        debug_assert!(n_bits <= 32, "write_bits takes at most 32 bits");
        let n_bits = n_bits.min(32);
        self.acc |= (u64::from(value) & low_mask(n_bits)) << self.acc_bits;
        self.acc_bits += n_bits;
        if self.acc_bits >= 32 {
            // Truncation intended: the low 32 bits are complete.
            self.buf.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.acc_bits -= 32;
        }
    }

    /// Writes the low `n_bits` bits of `value` (`n_bits <= 64`).
    #[inline]
    pub fn write_u64(&mut self, value: u64, n_bits: u32) {
        debug_assert!(n_bits <= 64, "write_u64 takes at most 64 bits");
        if n_bits <= 32 {
            self.write_bits(value as u32, n_bits);
        } else {
            self.write_bits(value as u32, 32);
            self.write_bits((value >> 32) as u32, n_bits.min(64) - 32);
        }
    }

    /// Writes one bit.
    #[inline]
    pub fn write_bool(&mut self, bit: bool) {
        self.write_bits(u32::from(bit), 1);
    }

    /// Pads with zero bits up to the next byte boundary.
    pub fn align_to_byte(&mut self) {
        let pad = (8 - self.acc_bits % 8) % 8;
        self.write_bits(0, pad);
    }

    /// Aligns to a byte boundary, then appends `bytes` verbatim.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.align_to_byte();
        self.flush_whole_bytes();
        self.buf.extend_from_slice(bytes);
    }

    fn flush_whole_bytes(&mut self) {
        while self.acc_bits >= 8 {
            self.buf.push(self.acc as u8);
            self.acc >>= 8;
            self.acc_bits -= 8;
        }
    }

    /// The current position, to [`BitWriter::rewind`] to if what follows must be undone
    /// (e.g. a record that does not fit the datagram).
    #[inline]
    #[must_use]
    pub fn mark(&self) -> usize {
        self.bit_len()
    }

    /// Drops every bit written after `mark` (a value returned by [`BitWriter::mark`]).
    /// A `mark` beyond the current length is a caller bug (debug assertion; ignored).
    pub fn rewind(&mut self, mark: usize) {
        debug_assert!(mark <= self.bit_len(), "rewind beyond the end");
        if mark >= self.bit_len() {
            return;
        }
        let buf_bits = self.buf.len() * 8;
        if mark >= buf_bits {
            // Only bits in the accumulator go: `mark - buf_bits < acc_bits < 32`.
            self.acc_bits = (mark - buf_bits) as u32;
            self.acc &= low_mask(self.acc_bits);
        } else {
            let keep_bytes = mark / 8;
            let rem_bits = (mark % 8) as u32;
            let partial = self.buf.get(keep_bytes).copied().unwrap_or(0);
            self.buf.truncate(keep_bytes);
            self.acc = u64::from(partial) & low_mask(rem_bits);
            self.acc_bits = rem_bits;
        }
    }

    /// Overwrites `n_bits` (`<= 32`) already written bits starting at bit `pos` with the low
    /// bits of `value` (used to fill in a count once it is known). Bits beyond the written
    /// length are a caller bug (debug assertion; ignored).
    pub fn patch_bits(&mut self, pos: usize, value: u32, n_bits: u32) {
        debug_assert!(
            pos + n_bits as usize <= self.bit_len(),
            "patch beyond the end"
        );
        let buf_bits = self.buf.len() * 8;
        for i in 0..n_bits.min(32) {
            let p = pos + i as usize;
            let bit = (value >> i) & 1;
            if p < buf_bits {
                if let Some(byte) = self.buf.get_mut(p / 8) {
                    let m = 1u8 << (p % 8);
                    *byte = (*byte & !m) | if bit == 1 { m } else { 0 };
                }
            } else if p - buf_bits < self.acc_bits as usize {
                let m = 1u64 << (p - buf_bits);
                self.acc = (self.acc & !m) | if bit == 1 { m } else { 0 };
            }
        }
    }

    /// The `n_bits` (at most 64) written from bit position `from` on, as [`write_u64`]
    /// took them (first written bit lowest); positions past the end read as zero. For
    /// copying a piece of the stream elsewhere (the encoder's shared records).
    ///
    /// [`write_u64`]: BitWriter::write_u64
    #[must_use]
    pub fn read_back(&self, from: usize, n_bits: u32) -> u64 {
        let n_bits = n_bits.min(64);
        let byte_at = |i: usize| -> u128 {
            match self.buf.get(i) {
                Some(&b) => u128::from(b),
                None => {
                    let shift = (i - self.buf.len()) * 8;
                    if shift < 64 {
                        u128::from((self.acc >> shift) as u8)
                    } else {
                        0
                    }
                }
            }
        };
        let first = from / 8;
        let mut window = 0u128;
        for k in 0..9 {
            window |= byte_at(first + k) << (8 * k);
        }
        ((window >> (from % 8)) as u64) & low_mask(n_bits)
    }

    /// Pads the last byte with zero bits and returns the bytes.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        self.align_to_byte();
        self.flush_whole_bytes();
        self.buf
    }
}

/// Reads bit fields LSB-first from a byte slice. Never reads past the end.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Invariant: `pos_bits <= data.len() * 8`.
    pos_bits: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos_bits: 0 }
    }

    /// Bits consumed so far.
    #[inline]
    #[must_use]
    pub fn bit_pos(&self) -> usize {
        self.pos_bits
    }

    /// Bits left to read.
    #[inline]
    #[must_use]
    pub fn remaining_bits(&self) -> usize {
        self.data.len() * 8 - self.pos_bits
    }

    /// The 64 bits starting at byte `byte`, zero-filled past the end.
    #[inline]
    fn load_word(&self, byte: usize) -> u64 {
        if let Some(chunk) = self
            .data
            .get(byte..byte + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
        {
            u64::from_le_bytes(chunk)
        } else {
            let mut word = 0u64;
            for i in 0..8 {
                if let Some(&b) = self.data.get(byte + i) {
                    word |= u64::from(b) << (8 * i);
                }
            }
            word
        }
    }

    /// The next `n_bits` (`<= 32`) bits without consuming them; bits past the end read as 0.
    #[inline]
    #[must_use]
    pub fn peek_bits(&self, n_bits: u32) -> u32 {
        let n_bits = n_bits.min(32);
        let word = self.load_word(self.pos_bits / 8);
        ((word >> (self.pos_bits % 8)) & low_mask(n_bits)) as u32
    }

    /// Reads `n_bits` (`<= 32`) bits as an unsigned value.
    #[inline]
    pub fn read_bits(&mut self, n_bits: u32, field: &'static str) -> Result<u32, CodecError> {
        if n_bits > 32 {
            return Err(CodecError::LengthOverLimit {
                field,
                len: n_bits as usize,
                max: 32,
            });
        }
        if n_bits as usize > self.remaining_bits() {
            return Err(CodecError::Truncated { field });
        }
        let v = self.peek_bits(n_bits);
        self.pos_bits += n_bits as usize;
        Ok(v)
    }

    /// Reads `n_bits` (`<= 64`) bits as an unsigned value.
    pub fn read_u64(&mut self, n_bits: u32, field: &'static str) -> Result<u64, CodecError> {
        if n_bits <= 32 {
            return self.read_bits(n_bits, field).map(u64::from);
        }
        if n_bits > 64 {
            return Err(CodecError::LengthOverLimit {
                field,
                len: n_bits as usize,
                max: 64,
            });
        }
        if n_bits as usize > self.remaining_bits() {
            return Err(CodecError::Truncated { field });
        }
        let lo = self.read_bits(32, field)?;
        let hi = self.read_bits(n_bits - 32, field)?;
        Ok(u64::from(lo) | (u64::from(hi) << 32))
    }

    /// Reads one bit.
    #[inline]
    pub fn read_bool(&mut self, field: &'static str) -> Result<bool, CodecError> {
        Ok(self.read_bits(1, field)? == 1)
    }

    /// Skips to the next byte boundary; the skipped padding bits must be zero.
    pub fn align_to_byte(&mut self) -> Result<(), CodecError> {
        let pad = ((8 - self.pos_bits % 8) % 8) as u32;
        if self.read_bits(pad, "padding")? != 0 {
            return Err(CodecError::TrailingData);
        }
        Ok(())
    }

    /// Aligns (see [`BitReader::align_to_byte`]) and returns the next `len_bytes` bytes.
    pub fn read_bytes(
        &mut self,
        len_bytes: usize,
        field: &'static str,
    ) -> Result<&'a [u8], CodecError> {
        self.align_to_byte()?;
        let start = self.pos_bits / 8;
        let bytes = start
            .checked_add(len_bytes)
            .and_then(|end| self.data.get(start..end))
            .ok_or(CodecError::Truncated { field })?;
        self.pos_bits += len_bytes * 8;
        Ok(bytes)
    }

    /// Checks that only zero padding (fewer than 8 bits, up to the byte boundary) remains.
    pub fn expect_end(&mut self) -> Result<(), CodecError> {
        if self.remaining_bits() >= 8 {
            return Err(CodecError::TrailingData);
        }
        self.align_to_byte()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn read_back_gives_what_was_written(
            pieces in proptest::collection::vec((any::<u64>(), 0u32..=64), 1..40),
            pick in any::<usize>(),
        ) {
            let mut w = BitWriter::new();
            let mut at = Vec::new();
            for &(v, n) in &pieces {
                at.push(w.mark());
                w.write_u64(v, n);
            }
            let i = pick % pieces.len();
            let (v, n) = pieces[i];
            prop_assert_eq!(w.read_back(at[i], n), v & low_mask(n));
        }
    }

    #[test]
    fn lsb_first_layout() {
        let mut w = BitWriter::new();
        w.write_bits(1, 1);
        w.write_bits(0b101, 3);
        w.write_bits(0xABC, 12);
        let bytes = w.finish();
        assert_eq!(bytes, vec![0b1100_1011, 0xAB]);
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.read_bits(1, "a").unwrap(), 1);
        assert_eq!(r.read_bits(3, "b").unwrap(), 0b101);
        assert_eq!(r.read_bits(12, "c").unwrap(), 0xABC);
        assert!(r.read_bits(1, "d").is_err());
    }

    #[test]
    fn rewind_and_patch() {
        let mut w = BitWriter::new();
        w.write_bits(0x3, 2);
        let m = w.mark();
        w.write_bits(0xFFFF_FFFF, 32);
        w.write_bits(0x7, 3);
        w.rewind(m);
        assert_eq!(w.bit_len(), 2);
        w.write_bits(0, 10);
        w.patch_bits(2, 0x155, 10);
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.read_bits(2, "a").unwrap(), 3);
        assert_eq!(r.read_bits(10, "b").unwrap(), 0x155);
        r.expect_end().unwrap();
    }

    #[test]
    fn bytes_align() {
        let mut w = BitWriter::from_vec(vec![9]);
        w.write_bits(1, 3);
        w.write_bytes(&[1, 2, 3]);
        let bytes = w.finish();
        assert_eq!(bytes, vec![9, 1, 1, 2, 3]);
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.read_bits(8, "h").unwrap(), 9);
        assert_eq!(r.read_bits(3, "x").unwrap(), 1);
        assert_eq!(r.read_bytes(3, "b").unwrap(), &[1, 2, 3]);
        r.expect_end().unwrap();
        assert!(BitReader::new(&[0]).read_bytes(2, "b").is_err());
    }

    proptest! {
        #[test]
        fn round_trip(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..64)) {
            let mut w = BitWriter::new();
            for &(v, n) in &fields {
                w.write_u64(v, n);
            }
            let total: usize = fields.iter().map(|f| f.1 as usize).sum();
            prop_assert_eq!(w.bit_len(), total);
            let bytes = w.finish();
            prop_assert_eq!(bytes.len(), total.div_ceil(8));
            let mut r = BitReader::new(&bytes);
            for &(v, n) in &fields {
                prop_assert_eq!(r.read_u64(n, "f").unwrap(), v & low_mask(n));
            }
            prop_assert!(r.expect_end().is_ok());
        }

        #[test]
        fn rewind_matches_fresh(fields in proptest::collection::vec((any::<u32>(), 0u32..=32), 0..40), cut in 0usize..40) {
            let mut w = BitWriter::new();
            let mut marks = Vec::new();
            for &(v, n) in &fields {
                marks.push(w.mark());
                w.write_bits(v, n);
            }
            let cut = cut.min(fields.len());
            if let Some(&m) = marks.get(cut) {
                w.rewind(m);
            }
            let mut fresh = BitWriter::new();
            for &(v, n) in fields.iter().take(cut) {
                fresh.write_bits(v, n);
            }
            prop_assert_eq!(w.finish(), fresh.finish());
        }

        #[test]
        fn reader_never_panics(data in proptest::collection::vec(any::<u8>(), 0..32), ns in proptest::collection::vec(0u32..80, 0..40)) {
            let mut r = BitReader::new(&data);
            for n in ns {
                let _ = r.read_u64(n, "f");
                let _ = r.read_bool("b");
                let _ = r.read_bytes(n as usize % 5, "y");
            }
        }
    }
}
