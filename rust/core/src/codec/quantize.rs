//! Quantizers: the public building blocks for entity layouts.
//!
//! * [`BoundedQuantizer`]: a float in `[min, max]` at a step of `precision`; values outside
//!   are clamped, NaN maps to `min`. Round-trip error `<= precision / 2` (plus f32 rounding)
//!   inside the range.
//! * [`AngleQuantizer`]: an angle in radians on `bits` bits (`[0, 2*pi)` in `2^bits` steps),
//!   error `<= pi / 2^bits`, with a wrap-aware signed difference.
//! * [`QuatQuantizer`]: smallest-three unit quaternion: 2 bits for the index of the
//!   largest-magnitude component, then the other three in `[-1/sqrt2, 1/sqrt2]` on
//!   `bits_per_component` bits each (the largest is rebuilt from the unit norm, made
//!   non-negative by flipping the sign of the whole quaternion, which is the same rotation).
//! * [`OctQuantizer`]: unit vector via octahedral mapping, two `bits_per_axis` fields.
//!
//! Every `read_*` validates what it reads; every `write_*` writes exactly `bits()` bits.

use glam::{Quat, Vec2, Vec3};

use super::bits::{BitReader, BitWriter};
use super::error::CodecError;

/// A quantizer configuration that cannot be represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantizeError {
    /// Bounds are not finite, `min >= max`, or the precision is not a positive number.
    #[error("quantizer bounds or precision are invalid")]
    BadParameters,
    /// More than 31 bits (or fewer than 1 bit) would be needed.
    #[error("quantizer needs {bits} bits, outside 1..=31")]
    TooManyBits {
        /// Bits the configuration would need.
        bits: u32,
    },
}

/// A float in `[min, max]` quantized at a step of `precision`.
///
/// Invariant: `1 <= bits <= 31`, `max_q = ceil((max - min) / precision) < 2^bits`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundedQuantizer {
    min: f32,
    precision: f32,
    max_q: u32,
    bits: u32,
}

impl BoundedQuantizer {
    /// A quantizer over `[min, max]` with step `precision` (same unit as the values).
    pub fn new(min: f32, max: f32, precision: f32) -> Result<Self, QuantizeError> {
        if !(min.is_finite() && max.is_finite() && precision.is_finite())
            || min >= max
            || precision <= 0.0
        {
            return Err(QuantizeError::BadParameters);
        }
        let steps = ((f64::from(max) - f64::from(min)) / f64::from(precision)).ceil();
        if steps >= f64::from(1u32 << 31) {
            return Err(QuantizeError::TooManyBits { bits: 32 });
        }
        let max_q = steps as u32;
        let bits = (32 - max_q.leading_zeros()).max(1);
        Ok(BoundedQuantizer {
            min,
            precision,
            max_q,
            bits,
        })
    }

    /// Bits per value on the wire.
    #[must_use]
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Largest quantized value.
    #[must_use]
    pub fn max_q(&self) -> u32 {
        self.max_q
    }

    /// Quantizes `v` (clamped into range; NaN gives 0).
    #[must_use]
    pub fn quantize(&self, v: f32) -> u32 {
        if v.is_nan() {
            return 0;
        }
        let q = ((f64::from(v) - f64::from(self.min)) / f64::from(self.precision)).round();
        q.clamp(0.0, f64::from(self.max_q)) as u32
    }

    /// The value `q` stands for (`q` above `max_q` is clamped).
    #[must_use]
    pub fn dequantize(&self, q: u32) -> f32 {
        let q = q.min(self.max_q);
        (f64::from(self.min) + f64::from(q) * f64::from(self.precision)) as f32
    }

    /// Writes `quantize(v)` on `bits()` bits.
    pub fn write(&self, w: &mut BitWriter, v: f32) {
        w.write_bits(self.quantize(v), self.bits);
    }

    /// Reads a value written by [`BoundedQuantizer::write`], rejecting `q > max_q`.
    pub fn read(&self, r: &mut BitReader<'_>, field: &'static str) -> Result<f32, CodecError> {
        let q = r.read_bits(self.bits, field)?;
        if q > self.max_q {
            return Err(CodecError::ValueOutOfRange { field });
        }
        Ok(self.dequantize(q))
    }
}

/// An angle on `bits` bits: `q` stands for `q * 2*pi / 2^bits` radians.
///
/// Invariant: `1 <= bits <= 16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AngleQuantizer {
    bits: u32,
}

impl AngleQuantizer {
    /// An angle quantizer with `bits` bits (`1..=16`).
    pub fn new(bits: u32) -> Result<Self, QuantizeError> {
        if (1..=16).contains(&bits) {
            Ok(AngleQuantizer { bits })
        } else {
            Err(QuantizeError::TooManyBits { bits })
        }
    }

    /// Bits per angle.
    #[must_use]
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Quantizes `rad` (wrapped into `[0, 2*pi)`; non-finite gives 0).
    #[must_use]
    pub fn quantize(&self, rad: f32) -> u32 {
        if !rad.is_finite() {
            return 0;
        }
        let turns = (f64::from(rad) / std::f64::consts::TAU).rem_euclid(1.0);
        let steps = f64::from(1u32 << self.bits);
        ((turns * steps).round() as u32) & ((1u32 << self.bits) - 1)
    }

    /// Like [`AngleQuantizer::quantize`] without a libm call (hot path): the nearest step
    /// of `rad` (half away from zero), modulo `2^bits`. May differ from `quantize` by one
    /// step exactly at a half-way point; non-finite and huge (`|rad| >= 2^40`) give 0.
    #[inline]
    #[must_use]
    pub fn quantize_fast(&self, rad: f32) -> u32 {
        let x = f64::from(rad) * (f64::from(1u32 << self.bits) / std::f64::consts::TAU);
        if x.is_nan() || x.abs() >= (1u64 << 40) as f64 {
            return 0;
        }
        let q = (x + 0.5f64.copysign(x)) as i64;
        (q as u32) & ((1u32 << self.bits) - 1)
    }

    /// The angle `q` stands for, in `[0, 2*pi)` (bits above `bits` are ignored).
    #[must_use]
    pub fn dequantize(&self, q: u32) -> f32 {
        let q = q & ((1u32 << self.bits) - 1);
        (f64::from(q) * std::f64::consts::TAU / f64::from(1u32 << self.bits)) as f32
    }

    /// The signed shortest difference `a - b` in steps, in `[-2^(bits-1), 2^(bits-1))`.
    #[must_use]
    pub fn wrapping_diff(&self, a: u32, b: u32) -> i32 {
        let shift = 32 - self.bits;
        (a.wrapping_sub(b) << shift) as i32 >> shift
    }

    /// `base + delta` modulo `2^bits`.
    #[must_use]
    pub fn wrapping_add(&self, base: u32, delta: i32) -> u32 {
        base.wrapping_add(delta as u32) & ((1u32 << self.bits) - 1)
    }
}

/// Smallest-three quaternion quantizer.
///
/// Invariant: `2 <= bits_per_component <= 20`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuatQuantizer {
    bits_per_component: u32,
}

const INV_SQRT2: f32 = std::f32::consts::FRAC_1_SQRT_2;

impl QuatQuantizer {
    /// A quantizer with `bits_per_component` bits for each of the three smallest components
    /// (`2..=20`; 9 to 10 is typical for characters).
    pub fn new(bits_per_component: u32) -> Result<Self, QuantizeError> {
        if (2..=20).contains(&bits_per_component) {
            Ok(QuatQuantizer { bits_per_component })
        } else {
            Err(QuantizeError::TooManyBits {
                bits: bits_per_component,
            })
        }
    }

    /// Bits per quaternion: `2 + 3 * bits_per_component`.
    #[must_use]
    pub fn bits(&self) -> u32 {
        2 + 3 * self.bits_per_component
    }

    fn max_q(&self) -> u32 {
        (1u32 << self.bits_per_component) - 1
    }

    /// Writes `q` (normalized first; a non-finite or zero quaternion writes identity).
    pub fn write(&self, w: &mut BitWriter, q: Quat) {
        let mut c = q.to_array();
        let len = q.length();
        if !len.is_finite() || len < 1e-6 {
            c = Quat::IDENTITY.to_array();
        } else {
            c = c.map(|x| x / len);
        }
        let mut largest = 0usize;
        let mut largest_abs = -1.0f32;
        for (i, x) in c.iter().enumerate() {
            if x.abs() > largest_abs {
                largest_abs = x.abs();
                largest = i;
            }
        }
        let sign = if c.get(largest).copied().unwrap_or(1.0) < 0.0 {
            -1.0
        } else {
            1.0
        };
        w.write_bits(largest as u32, 2);
        let max_q = self.max_q() as f32;
        for (i, x) in c.iter().enumerate() {
            if i == largest {
                continue;
            }
            let unit = ((x * sign) / INV_SQRT2).clamp(-1.0, 1.0); // [-1, 1]
            let q = ((unit + 1.0) * 0.5 * max_q).round() as u32;
            w.write_bits(q, self.bits_per_component);
        }
    }

    /// Reads a quaternion written by [`QuatQuantizer::write`] (unit length, `w`-sign of the
    /// largest component non-negative).
    pub fn read(&self, r: &mut BitReader<'_>, field: &'static str) -> Result<Quat, CodecError> {
        let largest = r.read_bits(2, field)? as usize;
        let max_q = self.max_q() as f32;
        let mut c = [0.0f32; 4];
        let mut sum_sq = 0.0f32;
        for (i, slot) in c.iter_mut().enumerate() {
            if i == largest {
                continue;
            }
            let q = r.read_bits(self.bits_per_component, field)? as f32;
            let x = (q / max_q * 2.0 - 1.0) * INV_SQRT2;
            sum_sq += x * x;
            *slot = x;
        }
        if let Some(slot) = c.get_mut(largest) {
            *slot = (1.0 - sum_sq).max(0.0).sqrt();
        }
        Ok(Quat::from_array(c).normalize())
    }
}

/// Unit vector quantizer using the octahedral mapping.
///
/// Invariant: `2 <= bits_per_axis <= 24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OctQuantizer {
    bits_per_axis: u32,
}

impl OctQuantizer {
    /// A quantizer with `bits_per_axis` bits for each of the two octahedral coordinates.
    pub fn new(bits_per_axis: u32) -> Result<Self, QuantizeError> {
        if (2..=24).contains(&bits_per_axis) {
            Ok(OctQuantizer { bits_per_axis })
        } else {
            Err(QuantizeError::TooManyBits {
                bits: bits_per_axis,
            })
        }
    }

    /// Bits per vector: `2 * bits_per_axis`.
    #[must_use]
    pub fn bits(&self) -> u32 {
        2 * self.bits_per_axis
    }

    fn max_q(&self) -> f32 {
        ((1u32 << self.bits_per_axis) - 1) as f32
    }

    /// Writes the direction of `v` (a zero or non-finite vector writes +Z).
    pub fn write(&self, w: &mut BitWriter, v: Vec3) {
        let l1 = v.x.abs() + v.y.abs() + v.z.abs();
        let n = if l1.is_finite() && l1 > 1e-12 {
            v / l1
        } else {
            Vec3::Z
        };
        let mut p = Vec2::new(n.x, n.y);
        if n.z < 0.0 {
            let sx = if p.x >= 0.0 { 1.0 } else { -1.0 };
            let sy = if p.y >= 0.0 { 1.0 } else { -1.0 };
            p = Vec2::new((1.0 - n.y.abs()) * sx, (1.0 - n.x.abs()) * sy);
        }
        let max_q = self.max_q();
        for c in [p.x, p.y] {
            let q = ((c.clamp(-1.0, 1.0) + 1.0) * 0.5 * max_q).round() as u32;
            w.write_bits(q, self.bits_per_axis);
        }
    }

    /// Reads a unit vector written by [`OctQuantizer::write`].
    pub fn read(&self, r: &mut BitReader<'_>, field: &'static str) -> Result<Vec3, CodecError> {
        let max_q = self.max_q();
        let x = r.read_bits(self.bits_per_axis, field)? as f32 / max_q * 2.0 - 1.0;
        let y = r.read_bits(self.bits_per_axis, field)? as f32 / max_q * 2.0 - 1.0;
        let z = 1.0 - x.abs() - y.abs();
        let t = (-z).max(0.0);
        let v = Vec3::new(
            x + if x >= 0.0 { -t } else { t },
            y + if y >= 0.0 { -t } else { t },
            z,
        );
        Ok(v.normalize_or(Vec3::Z))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bad_parameters() {
        assert!(BoundedQuantizer::new(1.0, 0.0, 0.1).is_err());
        assert!(BoundedQuantizer::new(0.0, 1.0, 0.0).is_err());
        assert!(BoundedQuantizer::new(0.0, 1e9, 1e-3).is_err());
        assert!(AngleQuantizer::new(0).is_err());
        assert!(QuatQuantizer::new(1).is_err());
        assert!(OctQuantizer::new(30).is_err());
        let q = BoundedQuantizer::new(-8192.0, 8192.0, 0.01).unwrap();
        assert_eq!(q.bits(), 21);
    }

    #[test]
    fn bounded_rejects_out_of_range_q() {
        let q = BoundedQuantizer::new(0.0, 1.0, 0.25).unwrap(); // max_q 4, 3 bits
        let mut w = BitWriter::new();
        w.write_bits(7, 3);
        let bytes = w.finish();
        assert!(q.read(&mut BitReader::new(&bytes), "f").is_err());
    }

    proptest! {
        #[test]
        fn bounded_error(v in -9000.0f32..9000.0, prec in 0.001f32..1.0) {
            let q = BoundedQuantizer::new(-8192.0, 8192.0, prec).unwrap();
            let mut w = BitWriter::new();
            q.write(&mut w, v);
            prop_assert_eq!(w.bit_len(), q.bits() as usize);
            let bytes = w.finish();
            let back = q.read(&mut BitReader::new(&bytes), "v").unwrap();
            let clamped = v.clamp(-8192.0, q.dequantize(q.max_q()));
            prop_assert!((back - clamped).abs() <= prec * 0.5 + 2e-3, "{} -> {}", v, back);
        }

        #[test]
        fn angle_error(rad in -20.0f32..20.0, bits in 4u32..=16) {
            let a = AngleQuantizer::new(bits).unwrap();
            let back = a.dequantize(a.quantize(rad));
            let diff = (back - rad).rem_euclid(std::f32::consts::TAU);
            let err = diff.min(std::f32::consts::TAU - diff);
            prop_assert!(err <= std::f32::consts::PI / (1u32 << bits) as f32 + 1e-5);
        }

        #[test]
        fn angle_wrapping(a in 0u32..4096, b in 0u32..4096) {
            let q = AngleQuantizer::new(12).unwrap();
            let d = q.wrapping_diff(a, b);
            prop_assert!((-2048..2048).contains(&d));
            prop_assert_eq!(q.wrapping_add(b, d), a);
        }

        #[test]
        fn quat_error(x in -1.0f32..1.0, y in -1.0f32..1.0, z in -1.0f32..1.0, w in -1.0f32..1.0) {
            let q = Quat::from_xyzw(x, y, z, w);
            prop_assume!(q.length() > 0.1);
            let q = q.normalize();
            let qq = QuatQuantizer::new(10).unwrap();
            let mut wr = BitWriter::new();
            qq.write(&mut wr, q);
            prop_assert_eq!(wr.bit_len(), 32);
            let bytes = wr.finish();
            let back = qq.read(&mut BitReader::new(&bytes), "q").unwrap();
            // Same rotation up to sign: |dot| close to 1. Angle error <= ~0.5 deg at 10 bits.
            prop_assert!(back.dot(q).abs() > 0.9999, "{:?} vs {:?}", q, back);
        }

        #[test]
        fn oct_error(x in -1.0f32..1.0, y in -1.0f32..1.0, z in -1.0f32..1.0) {
            let v = Vec3::new(x, y, z);
            prop_assume!(v.length() > 0.1);
            let o = OctQuantizer::new(12).unwrap();
            let mut w = BitWriter::new();
            o.write(&mut w, v);
            let bytes = w.finish();
            let back = o.read(&mut BitReader::new(&bytes), "v").unwrap();
            prop_assert!(back.dot(v.normalize()) > 0.99999 - 1e-6, "{:?} vs {:?}", v, back);
        }
    }
}
