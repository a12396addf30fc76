//! The replicated state of a remote entity, its quantized form, and the prediction both
//! ends run from a baseline.
//!
//! A server quantizes a [`NetEntityState`] into a [`QuantizedEntity`] with a
//! [`SnapshotConfig`]; that quantized value is exactly what the client reconstructs. Each
//! quantized state also carries a *derived velocity* (`vel_fp`, `yaw_rate_fp`): the change
//! from the baseline it was coded against, divided by the ticks between them, in 24.8 fixed
//! point. Both ends compute it with the same integer arithmetic from the same integers, so it
//! costs no bits and never drifts. A state coded without a baseline (enter, full) has zero
//! derived velocity. The prediction for a later tick extrapolates it (see [`predict`]: a
//! circular arc turned by the yaw rate for a moving entity's X/Y); a delta record only
//! carries the residual against that prediction, X/Y rotated into the along/cross-track
//! frame of the predicted displacement ([`TrackFrame`]).

use glam::Vec3;
use serde::{Deserialize, Serialize};

use super::quantize::{AngleQuantizer, QuantizeError};
use crate::time::Tick;

/// Fractional bits of the derived velocity fixed point.
pub const VEL_FRAC_BITS: u32 = 8;
/// Largest elapsed tick count the prediction extrapolates over; beyond it, it holds still.
pub const MAX_PREDICT_TICKS: u32 = 255;
/// Magnitude bound of a derived velocity (fixed point), keeps all arithmetic in range.
const VEL_FP_LIMIT: i64 = 1 << 30;

/// The replicated state of a remote entity (what other clients see).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// Bits of the yaw angle, `4..=16` (default 10: 0.35 degrees, four times finer than
    /// Unreal's default byte rotation for replicated movement; 12 bits cost about 2 bits
    /// more per record, see `docs/performance.md`).
    pub yaw_bits: u32,
    /// Exp-Golomb order of position residuals predicted over at most 6 ticks, `0..=8`
    /// (default 0); longer predictions use larger orders
    /// (`snapshot::residual_orders`).
    pub position_k: u32,
    /// Exp-Golomb order of yaw residuals predicted over at most 6 ticks, `0..=8`
    /// (default 2; 3 suits 12-bit yaw); grows likewise.
    pub yaw_k: u32,
    /// Largest datagram the encoder produces, bytes (header included; default 1140: QUIC
    /// paths start at 1200-byte packets, which carry DATAGRAM frames of at most 1162 bytes
    /// (measured with quinn, `tests/transport.rs`); a larger snapshot would be dropped by the
    /// sender until path MTU discovery raises the limit, and for good on a path that does
    /// not).
    pub max_len_bytes: usize,
    /// Predict with the derived second difference too (parabolic), not only the rate.
    pub second_order: bool,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            precision_m: 0.01,
            half_extent_xy_m: 8192.0,
            half_extent_z_m: 1024.0,
            yaw_bits: 10,
            position_k: 0,
            yaw_k: 2,
            max_len_bytes: 1140,
            second_order: false,
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
    /// `1 / precision_m` (server-side quantization only; the client never quantizes).
    pub inv_precision: f64,
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
            inv_precision: 1.0 / f64::from(p),
        })
    }

    #[inline]
    fn quantize_axis(&self, v: f32, half_q: i32) -> i32 {
        if v.is_nan() {
            return 0;
        }
        let x = f64::from(v) * self.inv_precision;
        // Round half away from zero without a libm call (`as` truncates and saturates).
        let q = (x + 0.5f64.copysign(x)) as i64;
        q.clamp(-i64::from(half_q), i64::from(half_q)) as i32
    }

    /// Quantized position (clamped into the bounds; NaN gives 0).
    #[inline]
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
    #[inline]
    #[must_use]
    pub fn quantize(&self, s: &NetEntityState, tick: Tick) -> QuantizedEntity {
        self.quantize_state(s).at(tick)
    }

    /// Quantizes a state's replicated fields (what a world frame holds).
    #[inline]
    #[must_use]
    pub fn quantize_state(&self, s: &NetEntityState) -> QuantizedState {
        QuantizedState {
            pos_q: self.quantize_position(s.position_m),
            yaw_q: self.yaw.quantize_fast(s.yaw_rad) as u16,
            flags: s.flags,
        }
    }

    /// True when `s` is a state this quantization can produce (positions within the
    /// bounds, yaw below `2^yaw_bits`): what a frame from elsewhere must hold.
    #[must_use]
    pub fn state_in_range(&self, s: &QuantizedState) -> bool {
        self.position_in_bounds(s.pos_q.map(i64::from))
            && u32::from(s.yaw_q) < (1u32 << self.config.yaw_bits)
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

/// Motion channels of a [`QuantizedEntity`]: X, Y, Z position and yaw.
pub const CHANNELS: usize = 4;

/// The replicated fields of an entity after quantization, without derived motion: what
/// the world frame holds for each entity once per tick (the derived motion of a record
/// depends on the baseline it is coded against, so it is added per record).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QuantizedState {
    /// Position in steps of `precision_m` (X, Y, Z), within the configured bounds.
    pub pos_q: [i32; 3],
    /// Yaw in steps of `2*pi / 2^yaw_bits`, below `2^yaw_bits`.
    pub yaw_q: u16,
    /// Flags, verbatim (a player character's layout is `crate::entity_flags`).
    pub flags: u8,
}

impl QuantizedState {
    /// This state at `tick` with no derived motion (an enter or full record's state).
    #[inline]
    #[must_use]
    pub fn at(self, tick: Tick) -> QuantizedEntity {
        QuantizedEntity {
            pos_q: self.pos_q,
            yaw_q: self.yaw_q,
            flags: self.flags,
            vel_fp: [0; CHANNELS],
            acc_fp: [0; CHANNELS],
            span_ticks: 0,
            tick,
        }
    }
}

/// A remote entity state as both ends hold it after quantization.
///
/// Invariants: `pos_q` within the configured bounds; `yaw_q < 2^yaw_bits`;
/// `|vel_fp[i]|, |acc_fp[i]| <= 2^30`; `span_ticks == 0` implies zero `vel_fp` and `acc_fp`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct QuantizedEntity {
    /// Position in steps of `precision_m`.
    pub pos_q: [i32; 3],
    /// Yaw in steps of `2*pi / 2^yaw_bits`.
    pub yaw_q: u16,
    /// Flags, verbatim.
    pub flags: u8,
    /// Derived rate per channel (X, Y, Z steps, yaw steps) per tick, 24.8 fixed point: the
    /// mean over the `span_ticks` before this state.
    pub vel_fp: [i32; CHANNELS],
    /// Derived second difference per channel, steps per tick squared, 24.8 fixed point
    /// (zero unless the config enables the second-order predictor).
    pub acc_fp: [i32; CHANNELS],
    /// Ticks between this state and the baseline it was coded against (0: none).
    pub span_ticks: u16,
    /// The server tick of this state.
    pub tick: Tick,
}

impl QuantizedEntity {
    #[inline]
    fn channel(&self, i: usize) -> i64 {
        match i {
            0..=2 => i64::from(self.pos_q.get(i).copied().unwrap_or(0)),
            _ => i64::from(self.yaw_q),
        }
    }
}

/// Fixed-point reciprocal of `d` (`1..=510`): `(2^16 + d / 2) / d`.
const fn recip(d: u32) -> i64 {
    ((65536 + d / 2) / d) as i64
}

const RECIP_TABLE: [i64; 511] = {
    let mut t = [0i64; 511];
    let mut d = 1;
    while d < 511 {
        t[d] = recip(d as u32);
        d += 1;
    }
    t
};

/// `num / den` as both ends compute it: `(num * recip(den) + 2^15) >> 16` (arithmetic
/// shift), with `recip` from [`RECIP_TABLE`] for `den` in `1..=510`; 0 otherwise. Not
/// exactly a rounded division, but integer-only and identical everywhere, which is all the
/// prediction needs, and several times faster than a 64-bit divide.
#[inline]
fn approx_div(num: i64, den: i64) -> i64 {
    match usize::try_from(den).ok().and_then(|d| RECIP_TABLE.get(d)) {
        Some(&r) if den > 0 => (num * r + (1 << 15)) >> 16,
        _ => 0,
    }
}

/// The elapsed ticks the prediction uses from `base` to `tick` (clamped).
#[inline]
#[must_use]
pub fn elapsed_ticks(base: &QuantizedEntity, tick: Tick) -> i64 {
    i64::from(tick.since(base.tick).min(MAX_PREDICT_TICKS))
}

/// `1.0` in the Q30 fixed point of [`sin_cos_q30`].
const ONE_Q30: i64 = 1 << 30;
/// `round(pi / 2 * 2^30)`.
const HALF_PI_Q30: i64 = 1_686_629_713;
/// Below this squared derived planar speed (24.8 fixed point squared: 0.5 steps per tick)
/// the planar prediction stays parabolic instead of following a circular arc.
const ARC_MIN_SPEED_SQ: i64 = 128 * 128;

/// Sine and cosine of the binary angle `a` (`2^32` = one turn), Q30, integer only: the
/// octant by symmetry, then Taylor polynomials (to `x^7` and `x^8`) on `[0, pi/4]` evaluated
/// with arithmetic shifts. Both ends compute the same integers; the error against the true
/// functions is below `2^-21`.
#[inline]
#[must_use]
pub fn sin_cos_q30(a: u32) -> (i64, i64) {
    let quadrant = a >> 30;
    let r = a & 0x3fff_ffff;
    let upper = r > 0x2000_0000;
    let r = if upper { 0x4000_0000 - r } else { r };
    let x = (i64::from(r) * HALF_PI_Q30) >> 30;
    let x2 = (x * x) >> 30;
    // Taylor coefficients in Q30: 1/3!, 1/5!, 1/7! and 1/2!, 1/4!, 1/6!, 1/8!.
    let s = ONE_Q30
        - ((x2 * (178_956_971 - ((x2 * (8_947_849 - ((x2 * 213_044) >> 30))) >> 30))) >> 30);
    let s = (x * s) >> 30;
    let c = ONE_Q30
        - ((x2
            * (536_870_912
                - ((x2 * (44_739_243 - ((x2 * (1_491_308 - ((x2 * 26_631) >> 30))) >> 30)))
                    >> 30)))
            >> 30);
    let (s, c) = if upper { (c, s) } else { (s, c) };
    match quadrant {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// The predicted quantized position and yaw at `tick` from `base` (may be out of bounds;
/// residuals are coded against it as is). Yaw wraps modulo `2^yaw_bits`.
///
/// Per channel, `p = base + (2 * vel * dt + acc * dt * (dt + span) + 2^8) >> 9`: the exact
/// continuation of a parabola whose mean slope over the previous `span` ticks is `vel`.
/// X and Y instead follow a circular arc when the entity moves (derived planar speed at
/// least 0.5 steps per tick): characters face where they move, so the derived yaw rate is
/// the turn rate of the path. The mean planar velocity over the previous `span` ticks is
/// rotated by the yaw rate times `(span + dt) / 2` (from the middle of the previous span
/// to the middle of the predicted one) and extrapolated over `dt` ticks at constant speed.
/// See `WIRE_FORMAT.md` 5.4 for the exact integer arithmetic.
#[inline(always)]
#[must_use]
pub fn predict(base: &QuantizedEntity, tick: Tick, yaw: &AngleQuantizer) -> ([i64; 3], u32) {
    let dt = elapsed_ticks(base, tick);
    let span = i64::from(base.span_ticks);
    let mut out = [0i64; CHANNELS];
    for (i, o) in out.iter_mut().enumerate() {
        let v = i64::from(base.vel_fp.get(i).copied().unwrap_or(0));
        // Yaw is predicted at a constant rate: the turn rate changes in short ramps, and a
        // parabola through them overshoots (measured: 1.4 bits more per record).
        let a = if i < 3 {
            i64::from(base.acc_fp.get(i).copied().unwrap_or(0))
        } else {
            0
        };
        let term = 2 * v * dt + a * dt * (dt + span);
        *o = base.channel(i) + ((term + (1 << VEL_FRAC_BITS)) >> (VEL_FRAC_BITS + 1));
    }
    let [vx, vy, _, vyaw] = base.vel_fp.map(i64::from);
    if vx * vx + vy * vy >= ARC_MIN_SPEED_SQ {
        // Binary angle (2^32 per turn) of vyaw * (span + dt) / 2 yaw steps; exact, wraps.
        let turn = ((vyaw * (span + dt)) << (23 - yaw.bits())) as u32;
        let (sin, cos) = sin_cos_q30(turn);
        let rx = (vx * cos - vy * sin) >> 30;
        let ry = (vx * sin + vy * cos) >> 30;
        out[0] = base.channel(0) + ((rx * dt + (1 << (VEL_FRAC_BITS - 1))) >> VEL_FRAC_BITS);
        out[1] = base.channel(1) + ((ry * dt + (1 << (VEL_FRAC_BITS - 1))) >> VEL_FRAC_BITS);
    }
    let [x, y, z, w] = out;
    ([x, y, z], yaw.wrapping_add(0, w as i32))
}

/// Shortest predicted planar displacement (steps) for which X/Y residuals are coded in the
/// along-track / cross-track frame.
const TRACK_MIN_LEN: u32 = 8;
/// Largest predicted planar displacement component (steps) for which they are.
const TRACK_MAX_COMPONENT: i64 = 1 << 15;

/// The along-track / cross-track frame of a predicted planar displacement: X/Y residuals
/// are rotated into it by an exactly invertible integer rotation (a quarter turn, then three
/// lifting shears), so the decoder recovers the residuals bit for bit. See `WIRE_FORMAT.md`
/// 5.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackFrame {
    quarter: u8,
    /// `sin` of the remaining angle, Q14.
    sin_q14: i64,
    /// `tan` of half the remaining angle, Q14.
    tan_half_q14: i64,
}

#[inline]
fn mul_q14(a: i64, b: i64) -> i64 {
    (a * b + (1 << 13)) >> 14
}

impl TrackFrame {
    /// The frame of the predicted displacement `d` (X, Y steps), or `None` (residuals stay in
    /// X/Y) when it is shorter than 8 steps or a component exceeds `2^15` steps (327 m at
    /// 1 cm: no character moves that far between a baseline and a snapshot).
    #[inline]
    #[must_use]
    pub fn new(d: [i64; 2]) -> Option<Self> {
        let [dx, dy] = d;
        if dx.abs() > TRACK_MAX_COMPONENT || dy.abs() > TRACK_MAX_COMPONENT {
            return None;
        }
        // Both components are within 2^15: the square sum fits a u32.
        let len = ((dx * dx + dy * dy) as u32).isqrt();
        if len < TRACK_MIN_LEN {
            return None;
        }
        // Quarter turns bring the direction within 45 degrees of +X.
        let (quarter, ax, ay) = if dx > 0 && dy.abs() <= dx {
            (0, dx, dy)
        } else if dy > 0 && dx.abs() <= dy {
            (1, dy, -dx)
        } else if dx < 0 && dy.abs() <= -dx {
            (2, -dx, -dy)
        } else {
            (3, -dy, dx)
        };
        // |ay| <= len < 2^16: the Q14 numerator fits 32 bits.
        let num = (ay.unsigned_abs() as u32) << 14;
        let sign = ay.signum();
        Some(TrackFrame {
            quarter,
            sin_q14: sign * i64::from(num / len),
            tan_half_q14: sign * i64::from(num / (len + ax as u32)),
        })
    }

    /// X/Y residual to (along, cross).
    #[inline]
    #[must_use]
    pub fn to_track(&self, r: [i64; 2]) -> [i64; 2] {
        let [mut x, mut y] = r;
        for _ in 0..self.quarter {
            (x, y) = (y, -x);
        }
        let x1 = x + mul_q14(self.tan_half_q14, y);
        let y1 = y - mul_q14(self.sin_q14, x1);
        let x2 = x1 + mul_q14(self.tan_half_q14, y1);
        [x2, y1]
    }

    /// (along, cross) back to the X/Y residual (exact inverse of [`TrackFrame::to_track`]).
    #[inline]
    #[must_use]
    pub fn from_track(&self, t: [i64; 2]) -> [i64; 2] {
        let [x2, y1] = t;
        let x1 = x2 - mul_q14(self.tan_half_q14, y1);
        let y = y1 + mul_q14(self.sin_q14, x1);
        let mut x = x1 - mul_q14(self.tan_half_q14, y);
        let mut y = y;
        for _ in 0..self.quarter {
            (x, y) = (-y, x);
        }
        [x, y]
    }
}

/// Fills `new`'s derived motion from the change since `base`: the mean rate over the
/// ticks between them and, when `second_order`, the change of rate against `base`'s own
/// rate. Zero elapsed ticks gives no motion.
#[inline(always)]
pub fn derive_velocity(
    new: &mut QuantizedEntity,
    base: &QuantizedEntity,
    yaw: &AngleQuantizer,
    second_order: bool,
) {
    let d = i64::from(new.tick.since(base.tick));
    if d <= 0 {
        new.vel_fp = [0; CHANNELS];
        new.acc_fp = [0; CHANNELS];
        new.span_ticks = 0;
        return;
    }
    let d = d.min(i64::from(MAX_PREDICT_TICKS));
    new.span_ticks = d as u16;
    let base_span = i64::from(base.span_ticks);
    for i in 0..CHANNELS {
        let delta = if i < 3 {
            new.channel(i) - base.channel(i)
        } else {
            i64::from(yaw.wrapping_diff(u32::from(new.yaw_q), u32::from(base.yaw_q)))
        };
        let v = approx_div(delta << VEL_FRAC_BITS, d).clamp(-VEL_FP_LIMIT, VEL_FP_LIMIT);
        let a = if second_order && base_span > 0 {
            let bv = i64::from(base.vel_fp.get(i).copied().unwrap_or(0));
            approx_div(2 * (v - bv), d + base_span).clamp(-VEL_FP_LIMIT, VEL_FP_LIMIT)
        } else {
            0
        };
        if let Some(slot) = new.vel_fp.get_mut(i) {
            *slot = v as i32;
        }
        if let Some(slot) = new.acc_fp.get_mut(i) {
            *slot = a as i32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sin_cos_q30_is_accurate() {
        for i in 0..4096u32 {
            let a = i.wrapping_mul(1_048_573).wrapping_add(i << 20);
            let (s, c) = sin_cos_q30(a);
            let rad = f64::from(a) / 4_294_967_296.0 * std::f64::consts::TAU;
            let one = (1u64 << 30) as f64;
            assert!((s as f64 / one - rad.sin()).abs() < 5e-7, "sin {a}");
            assert!((c as f64 / one - rad.cos()).abs() < 5e-7, "cos {a}");
        }
        assert_eq!(sin_cos_q30(0), (0, 1 << 30));
        assert_eq!(sin_cos_q30(1 << 30), (1 << 30, 0));
    }

    #[test]
    fn track_frame_round_trips_and_aligns() {
        for (i, d) in [
            [100i64, 0],
            [0, 100],
            [-100, 3],
            [5, -100],
            [70, 70],
            [-70, 70],
            [-70, -70],
            [70, -71],
            [1 << 15, -(1 << 15)],
        ]
        .into_iter()
        .enumerate()
        {
            let f = TrackFrame::new(d).unwrap();
            for rx in -40i64..=40 {
                for ry in -40i64..=40 {
                    let r = [rx * 977 % 2000 + i as i64, ry * 31];
                    assert_eq!(f.from_track(f.to_track(r)), r, "{d:?} {r:?}");
                }
            }
            // The displacement itself lies along the track.
            let t = f.to_track(d);
            assert!(t[0] > 0 && t[1].abs() <= 1 + t[0] / 1000, "{d:?} -> {t:?}");
        }
        assert!(TrackFrame::new([5, 5]).is_none());
        assert!(TrackFrame::new([(1 << 15) + 1, 0]).is_none());
    }

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
        // 12-bit yaw (4096 steps a turn).
        let q = Quantization::new(SnapshotConfig {
            yaw_bits: 12,
            ..SnapshotConfig::default()
        })
        .unwrap();
        let mut a = QuantizedEntity {
            pos_q: [0, 0, 0],
            yaw_q: 4000,
            tick: Tick(0),
            ..Default::default()
        };
        let mut b = QuantizedEntity {
            pos_q: [100, -60, 0],
            yaw_q: 4000,
            tick: Tick(6),
            ..Default::default()
        };
        derive_velocity(&mut b, &a, &q.yaw, false);
        let (p, y) = predict(&b, Tick(12), &q.yaw);
        assert_eq!(p, [200, -120, 0]);
        assert_eq!(y, 4000);
        // Turning in place: the yaw rate continues, the position holds.
        a.pos_q = [0, 0, 0];
        b.pos_q = [0, 0, 0];
        b.yaw_q = 4090;
        derive_velocity(&mut b, &a, &q.yaw, false);
        let (p, y) = predict(&b, Tick(12), &q.yaw);
        assert_eq!(p, [0, 0, 0]);
        assert_eq!(y, (4090 + 90) % 4096);
    }

    #[test]
    fn moving_while_turning_follows_an_arc() {
        // A quarter turn (1024 steps) over 6 ticks on a circle of radius 1000 steps: the
        // chord from 0 to 6 and the rate carry on around the circle. 12-bit yaw.
        let q = Quantization::new(SnapshotConfig {
            yaw_bits: 12,
            ..SnapshotConfig::default()
        })
        .unwrap();
        let r = 1000.0f64;
        let at = |quarter: f64, yaw_q: u16, tick: u32| QuantizedEntity {
            pos_q: [
                (r * (quarter * std::f64::consts::FRAC_PI_2).sin()).round() as i32,
                (r - r * (quarter * std::f64::consts::FRAC_PI_2).cos()).round() as i32,
                0,
            ],
            yaw_q,
            tick: Tick(tick),
            ..Default::default()
        };
        let a = at(0.0, 0, 0);
        let mut b = at(1.0, 1024, 6);
        derive_velocity(&mut b, &a, &q.yaw, false);
        let (p, y) = predict(&b, Tick(12), &q.yaw);
        let want = at(2.0, 2048, 12);
        assert_eq!(y, 2048);
        for c in 0..2 {
            assert!(
                (p[c] - i64::from(want.pos_q[c])).abs() <= 2,
                "{p:?} {want:?}"
            );
        }
    }
}
