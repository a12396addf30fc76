//! Variable-length integers.
//!
//! * Byte-aligned unsigned LEB128 ([`write_uleb128`], [`read_uleb128`]): 7 value bits per
//!   byte, low group first, bit 7 = "more bytes follow". At most 10 bytes for a `u64`; the
//!   decoder rejects over-long and non-minimal encodings, so every value has one encoding.
//! * ZigZag ([`zigzag_encode`], [`zigzag_decode`]): maps signed to unsigned,
//!   `0, -1, 1, -2, 2, ...` to `0, 1, 2, 3, 4, ...`.
//! * Bit-level exp-Golomb of order `k` ([`write_exp_golomb`], [`read_exp_golomb`]) for small
//!   residuals on a [`BitWriter`]: with `x = (v >> k) + 1` of `m` significant bits, write
//!   `m - 1` zero bits, one `1` bit, the low `m - 1` bits of `x` (LSB-first, see `bits`),
//!   then the low `k` bits of `v`. Cost: `2 * floor(log2((v >> k) + 1)) + 1 + k` bits. Values
//!   are `u32`, so at most 32 leading zeros; more is a [`CodecError::BadCode`].

use super::bits::{BitReader, BitWriter};
use super::error::CodecError;

/// Longest LEB128 encoding of a `u64`, bytes.
pub const ULEB128_MAX_LEN_BYTES: usize = 10;

/// Largest exp-Golomb order accepted (`k`).
pub const EXP_GOLOMB_MAX_K: u32 = 16;

/// Appends `value` as unsigned LEB128.
pub fn write_uleb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let group = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(group);
            return;
        }
        out.push(group | 0x80);
    }
}

/// Reads an unsigned LEB128 value starting at `*pos` and advances `*pos` past it.
pub fn read_uleb128(data: &[u8], pos: &mut usize) -> Result<u64, CodecError> {
    let mut value = 0u64;
    for i in 0..ULEB128_MAX_LEN_BYTES {
        let byte = *data
            .get(*pos + i)
            .ok_or(CodecError::Truncated { field: "uleb128" })?;
        let group = u64::from(byte & 0x7F);
        if i == ULEB128_MAX_LEN_BYTES - 1 && byte > 1 {
            return Err(CodecError::BadCode { field: "uleb128" });
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(CodecError::BadCode { field: "uleb128" });
            }
            *pos += i + 1;
            return Ok(value);
        }
    }
    Err(CodecError::BadCode { field: "uleb128" })
}

/// ZigZag-maps a signed value to unsigned.
#[inline]
#[must_use]
pub fn zigzag_encode(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// Inverse of [`zigzag_encode`].
#[inline]
#[must_use]
pub fn zigzag_decode(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// Number of bits [`write_exp_golomb`] uses for `value` at order `k`.
#[inline]
#[must_use]
pub fn exp_golomb_len_bits(value: u32, k: u32) -> u32 {
    let x = (u64::from(value) >> k) + 1;
    let m = 64 - x.leading_zeros();
    2 * (m - 1) + 1 + k
}

/// Writes `value` as exp-Golomb of order `k` (`k <= EXP_GOLOMB_MAX_K`).
#[inline(always)]
pub fn write_exp_golomb(w: &mut BitWriter, value: u32, k: u32) {
    debug_assert!(k <= EXP_GOLOMB_MAX_K);
    let k = k.min(EXP_GOLOMB_MAX_K);
    let x = (u64::from(value) >> k) + 1;
    let m = 64 - x.leading_zeros(); // 1..=33
    let zeros = m - 1;
    let low = u64::from(value) & ((1u64 << k) - 1);
    let total = 2 * zeros + 1 + k; // <= 65 + 16
    if total <= 64 {
        // `zeros` zero bits, the one bit, the low `zeros` bits of x, the low k bits of value.
        let rest = x & ((1u64 << zeros) - 1);
        let code = (1u64 << zeros) | (rest << (zeros + 1)) | (low << (2 * zeros + 1));
        w.write_u64(code, total);
    } else {
        w.write_bits(0, zeros.min(32));
        w.write_bits(1, 1);
        w.write_u64(x, zeros); // the low `zeros` bits; the leading one is implicit
        w.write_bits(low as u32, k);
    }
}

/// Reads an exp-Golomb value of order `k`.
#[inline(always)]
pub fn read_exp_golomb(
    r: &mut BitReader<'_>,
    k: u32,
    field: &'static str,
) -> Result<u32, CodecError> {
    if k > EXP_GOLOMB_MAX_K {
        return Err(CodecError::BadCode { field });
    }
    let peek = r.peek_bits(32);
    if peek != 0 {
        let zeros = peek.trailing_zeros();
        let total = 2 * zeros + 1 + k;
        if total <= 32 {
            // The whole code is in the peeked word.
            r.read_bits(total, field)?;
            let rest = (u64::from(peek) >> (zeros + 1)) & ((1u64 << zeros) - 1);
            let x = (1u64 << zeros) | rest;
            let low = (u64::from(peek) >> (2 * zeros + 1)) & ((1u64 << k) - 1);
            let v = ((x - 1) << k) | low;
            return u32::try_from(v).map_err(|_| CodecError::BadCode { field });
        }
        r.read_bits(zeros + 1, field)?;
        let rest = r.read_bits(zeros, field)?;
        let x = (1u64 << zeros) | u64::from(rest);
        let low = r.read_bits(k, field)?;
        let v = ((x - 1) << k) | u64::from(low);
        return u32::try_from(v).map_err(|_| CodecError::BadCode { field });
    }
    // 32 zero bits (or the end): only valid when the 33rd bit is the one.
    r.read_bits(32, field)?;
    if !r.read_bool(field)? {
        return Err(CodecError::BadCode { field });
    }
    let rest = r.read_u64(32, field)?;
    let x = (1u64 << 32) | rest;
    let low = r.read_bits(k, field)?;
    let v = ((x - 1) << k) | u64::from(low);
    u32::try_from(v).map_err(|_| CodecError::BadCode { field })
}

/// Writes a signed value as ZigZag then exp-Golomb of order `k`.
#[inline]
pub fn write_signed_exp_golomb(w: &mut BitWriter, value: i32, k: u32) {
    write_exp_golomb(w, zigzag_encode(value), k);
}

/// Reads a value written by [`write_signed_exp_golomb`].
#[inline]
pub fn read_signed_exp_golomb(
    r: &mut BitReader<'_>,
    k: u32,
    field: &'static str,
) -> Result<i32, CodecError> {
    read_exp_golomb(r, k, field).map(zigzag_decode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_codes() {
        let mut out = Vec::new();
        write_uleb128(&mut out, 300);
        assert_eq!(out, vec![0xAC, 0x02]);
        let mut pos = 0;
        assert_eq!(
            read_uleb128(&[0x80, 0x00], &mut pos),
            Err(CodecError::BadCode { field: "uleb128" })
        );
        assert!(read_uleb128(&[0xFF; 11], &mut pos).is_err());
        assert_eq!(zigzag_encode(-1), 1);
        assert_eq!(zigzag_encode(i32::MIN), u32::MAX);
        // exp-Golomb order 0 of 0 is the single bit 1; of 1 is 0,1,0.
        let mut w = BitWriter::new();
        write_exp_golomb(&mut w, 0, 0);
        write_exp_golomb(&mut w, 1, 0);
        assert_eq!(w.finish(), vec![0b0000_0101]);
    }

    #[test]
    fn golomb_rejects_garbage() {
        let zeros = [0u8; 16];
        assert!(read_exp_golomb(&mut BitReader::new(&zeros), 0, "f").is_err());
        assert!(read_exp_golomb(&mut BitReader::new(&[]), 0, "f").is_err());
        // 32 zeros, a one, then all ones: x = 2^33 - 1 is beyond u32.
        let mut w = BitWriter::new();
        w.write_bits(0, 32);
        w.write_bits(1, 1);
        w.write_bits(u32::MAX, 32);
        let bytes = w.finish();
        assert!(read_exp_golomb(&mut BitReader::new(&bytes), 0, "f").is_err());
    }

    proptest! {
        #[test]
        fn uleb_round_trip(v in any::<u64>()) {
            let mut out = Vec::new();
            write_uleb128(&mut out, v);
            let mut pos = 0;
            prop_assert_eq!(read_uleb128(&out, &mut pos).unwrap(), v);
            prop_assert_eq!(pos, out.len());
        }

        #[test]
        fn zigzag_round_trip(v in any::<i32>()) {
            prop_assert_eq!(zigzag_decode(zigzag_encode(v)), v);
        }

        #[test]
        fn golomb_round_trip(vals in proptest::collection::vec((any::<u32>(), 0u32..=EXP_GOLOMB_MAX_K, any::<i32>()), 0..32)) {
            let mut w = BitWriter::new();
            let mut expect_bits = 0;
            for &(v, k, s) in &vals {
                write_exp_golomb(&mut w, v, k);
                write_signed_exp_golomb(&mut w, s, k);
                expect_bits += exp_golomb_len_bits(v, k) + exp_golomb_len_bits(zigzag_encode(s), k);
            }
            prop_assert_eq!(w.bit_len(), expect_bits as usize);
            let bytes = w.finish();
            let mut r = BitReader::new(&bytes);
            for &(v, k, s) in &vals {
                prop_assert_eq!(read_exp_golomb(&mut r, k, "v").unwrap(), v);
                prop_assert_eq!(read_signed_exp_golomb(&mut r, k, "s").unwrap(), s);
            }
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..24), k in 0u32..20) {
            let mut pos = 0;
            let _ = read_uleb128(&data, &mut pos);
            let mut r = BitReader::new(&data);
            while read_exp_golomb(&mut r, k, "f").is_ok() {}
        }
    }
}
