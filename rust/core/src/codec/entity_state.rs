//! The replicated state of a remote entity, its quantized form, and the prediction both
//! ends run from a baseline.
//!
//! A server quantizes a [`NetEntityState`] into a [`QuantizedEntity`] with a
//! [`SnapshotConfig`]; that quantized value is exactly what the client reconstructs. Each
//! quantized state also carries a *derived velocity* (`vel_fp`, `yaw_rate_fp`): the change
//! from the baseline it was coded against, divided by the ticks between them, in 24.8 fixed
//! point. Both ends compute it with the same integer arithmetic from the same integers, so it
//! costs no bits and never drifts. A state coded without a baseline (enter, full) has zero
//! derived velocity. The prediction for a later tick is `position + vel * elapsed_ticks`
//! (see [`predict`]); a delta record only carries the residual against that prediction.

use glam::Vec3;

use super::quantize::{AngleQuantizer, QuantizeError};
use crate::time::Tick;

/// Fractional bits of the derived velocity fixed point.
pub const VEL_FRAC_BITS: u32 = 8;
/// Largest elapsed tick count the prediction extrapolates over; beyond it, it holds still.
pub const MAX_PREDICT_TICKS: u32 = 255;
/// Magnitude bound of a derived velocity (fixed point), keeps all arithmetic in range.
const VEL_FP_LIMIT: i64 = 1 << 30;

/// The replicated state of a remote entity (what other clients see).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NetEntityState {
    /// Position of the capsule's base, metres.
    pub position_m: Vec3,
    /// Facing, radians (any value; wrapped into `[0, 2*pi)` by quantization).
    pub yaw_rad: f32,
    /// Game-defined flags (e.g. crouched, in combat), carried verbatim.
    pub flags: u8,
}

/// Quantization parameters of the snapshot codec. Both ends must use the same values
/// (they are part of the session's negotiated protocol parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapshotConfig {
    /// Position step, metres (default 0.01).
    pub precision_m: f32,
    /// Positions cover `[-half_extent_xy_m, +half_extent_xy_m]` on X and Y (default 8192).
    pub half_extent_xy_m: f32,
    /// Positions cover `[-half_extent_z_m, +half_extent_z_m]` on Z (default 1024).
    pub half_extent_z_m: f32,
    /// Bits of the yaw angle, `4..=16` (default 12, 0.088 degrees).
    pub yaw_bits: u32,
    /// Exp-Golomb order of position residuals, `0..=8`.
    pub position_k: u32,
    /// Exp-Golomb order of yaw residuals, `0..=8`.
    pub yaw_k: u32,
    /// Largest datagram the encoder produces, bytes (header included; default 1200).
    pub max_len_bytes: usize,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            precision_m: 0.01,
            half_extent_xy_m: 8192.0,
            half_extent_z_m: 1024.0,
            yaw_bits: 12,
            position_k: 1,
            yaw_k: 1,
            max_len_bytes: 1200,
        }
    }
}

/// A validated [`SnapshotConfig`] with its derived quantities.
///
/// Invariants: `half_q_xy`, `half_q_z` in `1..2^29`; `bits_xy`/`bits_z` = bits of
/// `2 * half_q`; `yaw` has `4..=16` bits; `position_k, yaw_k <= 8`; `max_len_bytes` in
/// `64..=65507`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantization {
    /// The configuration this was built from.
    pub config: SnapshotConfig,
    /// Largest quantized |X| and |Y|.
    pub half_q_xy: i32,
    /// Largest quantized |Z|.
    pub half_q_z: i32,
    /// Bits of an absolute X or Y.
    pub bits_xy: u32,
    /// Bits of an absolute Z.
    pub bits_z: u32,
    /// The yaw quantizer.
    pub yaw: AngleQuantizer,
}

impl Quantization {
    /// Validates `config`.
    pub fn new(config: SnapshotConfig) -> Result<Self, QuantizeError> {
        let p = config.precision_m;
        let ok = p.is_finite()
            && p > 0.0
            && config.half_extent_xy_m.is_finite()
            && config.half_extent_z_m.is_finite()
            && config.half_extent_xy_m > 0.0
            && config.half_extent_z_m > 0.0
            && config.position_k <= 8
            && config.yaw_k <= 8
            && (4..=16).contains(&config.yaw_bits)
            && (64..=65507).contains(&config.max_len_bytes);
        if !ok {
            return Err(QuantizeError::BadParameters);
        }
        let half = |extent: f32| -> Result<i32, QuantizeError> {
            // Tolerate the f32 representation error of the precision (0.01 is not exact).
            let h = (f64::from(extent) / f64::from(p) * (1.0 - 1e-6)).ceil();
            if h >= f64::from(1u32 << 29) {
                Err(QuantizeError::TooManyBits { bits: 31 })
            } else {
                Ok(h as i32)
            }
        };
        let half_q_xy = half(config.half_extent_xy_m)?;
        let half_q_z = half(config.half_extent_z_m)?;
        let bits = |h: i32| 32 - (2 * h as u32).leading_zeros();
        Ok(Quantization {
            config,
            half_q_xy,
            half_q_z,
            bits_xy: bits(half_q_xy),
            bits_z: bits(half_q_z),
            yaw: AngleQuantizer::new(config.yaw_bits)?,
        })
    }

    fn quantize_axis(&self, v: f32, half_q: i32) -> i32 {
        if v.is_nan() {
            return 0;
        }
        let q = (f64::from(v) / f64::from(self.config.precision_m)).round();
        q.clamp(-f64::from(half_q), f64::from(half_q)) as i32
    }

    /// Quantized position (clamped into the bounds; NaN gives 0).
    #[must_use]
    pub fn quantize_position(&self, p: Vec3) -> [i32; 3] {
        [
            self.quantize_axis(p.x, self.half_q_xy),
            self.quantize_axis(p.y, self.half_q_xy),
            self.quantize_axis(p.z, self.half_q_z),
        ]
    }

    /// The position a quantized position stands for, metres.
    #[must_use]
    pub fn dequantize_position(&self, q: [i32; 3]) -> Vec3 {
        let p = f64::from(self.config.precision_m);
        let [x, y, z] = q.map(|c| (f64::from(c) * p) as f32);
        Vec3::new(x, y, z)
    }

    /// True when `q` is inside the bounds (what a decoder accepts).
    #[must_use]
    pub fn position_in_bounds(&self, q: [i64; 3]) -> bool {
        let xy = i64::from(self.half_q_xy);
        let z = i64::from(self.half_q_z);
        q[0].abs() <= xy && q[1].abs() <= xy && q[2].abs() <= z
    }

    /// Quantizes a state with zero derived velocity, at `tick`.
    #[must_use]
    pub fn quantize(&self, s: &NetEntityState, tick: Tick) -> QuantizedEntity {
        QuantizedEntity {
            pos_q: self.quantize_position(s.position_m),
            yaw_q: self.yaw.quantize(s.yaw_rad) as u16,
            flags: s.flags,
            vel_fp: [0; 3],
            yaw_rate_fp: 0,
            tick,
        }
    }

    /// The state a quantized entity stands for.
    #[must_use]
    pub fn dequantize(&self, q: &QuantizedEntity) -> NetEntityState {
        NetEntityState {
            position_m: self.dequantize_position(q.pos_q),
            yaw_rad: self.yaw.dequantize(u32::from(q.yaw_q)),
            flags: q.flags,
        }
    }
}

/// A remote entity state as both ends hold it after quantization.
///
/// Invariants: `pos_q` within the configured bounds; `yaw_q < 2^yaw_bits`;
/// `|vel_fp|, |yaw_rate_fp| <= 2^30`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct QuantizedEntity {
    /// Position in steps of `precision_m`.
    pub pos_q: [i32; 3],
    /// Yaw in steps of `2*pi / 2^yaw_bits`.
    pub yaw_q: u16,
    /// Flags, verbatim.
    pub flags: u8,
    /// Derived velocity, position steps per tick, 24.8 fixed point.
    pub vel_fp: [i32; 3],
    /// Derived yaw rate, yaw steps per tick, 24.8 fixed point.
    pub yaw_rate_fp: i32,
    /// The server tick of this state.
    pub tick: Tick,
}

#[inline]
fn extrapolate(value: i32, rate_fp: i32, dt: i64) -> i64 {
    i64::from(value) + ((i64::from(rate_fp) * dt + (1 << (VEL_FRAC_BITS - 1))) >> VEL_FRAC_BITS)
}

#[inline]
fn rate_fp(delta: i64, dt: i64) -> i32 {
    if dt <= 0 {
        return 0;
    }
    let num = delta << VEL_FRAC_BITS;
    // Round half away from zero; integer division is exact and identical on both ends.
    let r = if num >= 0 {
        (num + dt / 2) / dt
    } else {
        (num - dt / 2) / dt
    };
    r.clamp(-VEL_FP_LIMIT, VEL_FP_LIMIT) as i32
}

/// The elapsed ticks the prediction uses from `base` to `tick` (clamped).
#[inline]
#[must_use]
pub fn elapsed_ticks(base: &QuantizedEntity, tick: Tick) -> i64 {
    i64::from(tick.since(base.tick).min(MAX_PREDICT_TICKS))
}

/// The predicted quantized position and yaw at `tick` from `base` (may be out of bounds;
/// residuals are coded against it as is). Yaw wraps modulo `2^yaw_bits`.
#[inline]
#[must_use]
pub fn predict(base: &QuantizedEntity, tick: Tick, yaw: &AngleQuantizer) -> ([i64; 3], u32) {
    let dt = elapsed_ticks(base, tick);
    let p = [
        extrapolate(base.pos_q[0], base.vel_fp[0], dt),
        extrapolate(base.pos_q[1], base.vel_fp[1], dt),
        extrapolate(base.pos_q[2], base.vel_fp[2], dt),
    ];
    let y = extrapolate(i32::from(base.yaw_q), base.yaw_rate_fp, dt);
    (p, yaw.wrapping_add(0, y as i32))
}

/// Fills `new`'s derived velocity from the change since `base` (zero elapsed ticks gives
/// zero velocity).
#[inline]
pub fn derive_velocity(new: &mut QuantizedEntity, base: &QuantizedEntity, yaw: &AngleQuantizer) {
    let dt = i64::from(new.tick.since(base.tick));
    for i in 0..3 {
        new.vel_fp[i] = rate_fp(i64::from(new.pos_q[i]) - i64::from(base.pos_q[i]), dt);
    }
    let dy = yaw.wrapping_diff(u32::from(new.yaw_q), u32::from(base.yaw_q));
    new.yaw_rate_fp = rate_fp(i64::from(dy), dt);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        let q = Quantization::new(SnapshotConfig::default()).unwrap();
        assert_eq!(q.half_q_xy, 819_200);
        assert_eq!(q.bits_xy, 21);
        assert_eq!(q.bits_z, 18);
        let bad = SnapshotConfig {
            precision_m: 0.0,
            ..SnapshotConfig::default()
        };
        assert!(Quantization::new(bad).is_err());
    }

    #[test]
    fn linear_motion_is_predicted_exactly() {
        let q = Quantization::new(SnapshotConfig::default()).unwrap();
        let mut a = QuantizedEntity {
            pos_q: [0, 0, 0],
            tick: Tick(0),
            ..Default::default()
        };
        let mut b = QuantizedEntity {
            pos_q: [100, -60, 0],
            yaw_q: 4090,
            tick: Tick(6),
            ..Default::default()
        };
        a.yaw_q = 4000;
        derive_velocity(&mut b, &a, &q.yaw);
        let (p, y) = predict(&b, Tick(12), &q.yaw);
        assert_eq!(p, [200, -120, 0]);
        assert_eq!(y, (4090 + 90) % 4096);
    }
}
