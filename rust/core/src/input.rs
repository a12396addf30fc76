//! The player's movement input for one tick, in the quantized form that is both simulated
//! and sent on the wire.
//!
//! The client quantizes once, when it samples the controls, and from then on the client's
//! prediction, the wire and the server's simulation all see the same integers. That is what
//! lets prediction and the server agree bit for bit.

use serde::{Deserialize, Serialize};

/// Quantized move axis: `-127..=127` maps to `-1.0..=1.0`. `-128` is out of range: it can
/// only come from a hostile or broken client and is rejected by validation.
pub type AxisQ = i8;

/// Largest valid magnitude of a quantized axis.
pub const AXIS_Q_MAX: i8 = 127;

/// Button flags carried with each input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Buttons(pub u8);

impl Buttons {
    /// Sprint held.
    pub const SPRINT: u8 = 1 << 0;
    /// Jump pressed.
    pub const JUMP: u8 = 1 << 1;
    /// Bits that carry a meaning; any other bit set is a protocol violation.
    pub const KNOWN: u8 = Self::SPRINT | Self::JUMP;

    /// True when sprint is held.
    #[must_use]
    pub fn sprint(self) -> bool {
        self.0 & Self::SPRINT != 0
    }

    /// True when jump is pressed.
    #[must_use]
    pub fn jump(self) -> bool {
        self.0 & Self::JUMP != 0
    }
}

/// One tick of movement input.
///
/// `forward`/`right` are relative to `yaw`: forward moves along the facing, right
/// perpendicular to it (toward +Y when facing +X).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MoveInput {
    /// Forward axis, quantized (`AxisQ`).
    pub forward_q: AxisQ,
    /// Right axis, quantized (`AxisQ`).
    pub right_q: AxisQ,
    /// Facing, `0..=65535` maps to `[0, 2*pi)` radians.
    pub yaw_q: u16,
    /// Button flags.
    pub buttons: Buttons,
}

impl MoveInput {
    /// Quantizes controls as sampled from the device. NaN axes become 0, the (forward,
    /// right) vector is scaled down to length 1 when longer (a keyboard diagonal is
    /// `(0.707, 0.707)`, not `(1, 1)`, so it passes the server's magnitude check), and yaw is
    /// wrapped into `[0, 2*pi)`.
    #[must_use]
    pub fn from_controls(forward: f32, right: f32, yaw_rad: f32, buttons: Buttons) -> Self {
        let forward = if forward.is_nan() {
            0.0
        } else {
            forward.clamp(-1.0, 1.0)
        };
        let right = if right.is_nan() {
            0.0
        } else {
            right.clamp(-1.0, 1.0)
        };
        let length = (forward * forward + right * right).sqrt();
        let scale = if length > 1.0 { 1.0 / length } else { 1.0 };
        MoveInput {
            forward_q: quantize_axis(forward * scale),
            right_q: quantize_axis(right * scale),
            yaw_q: quantize_yaw(yaw_rad),
            buttons,
        }
    }

    /// Forward axis as a float in `[-1, 1]` (or slightly below -1 for the invalid `-128`).
    #[must_use]
    pub fn forward(self) -> f32 {
        f32::from(self.forward_q) / f32::from(AXIS_Q_MAX)
    }

    /// Right axis as a float in `[-1, 1]` (or slightly below -1 for the invalid `-128`).
    #[must_use]
    pub fn right(self) -> f32 {
        f32::from(self.right_q) / f32::from(AXIS_Q_MAX)
    }

    /// Facing in radians, `[0, 2*pi)`.
    #[must_use]
    pub fn yaw_rad(self) -> f32 {
        f32::from(self.yaw_q) * (std::f32::consts::TAU / 65536.0)
    }
}

fn quantize_axis(v: f32) -> AxisQ {
    if v.is_nan() {
        return 0;
    }
    // In range after the clamp, so the cast cannot saturate.
    (v.clamp(-1.0, 1.0) * f32::from(AXIS_Q_MAX)).round() as AxisQ
}

fn quantize_yaw(yaw_rad: f32) -> u16 {
    if !yaw_rad.is_finite() {
        return 0;
    }
    let turns = (yaw_rad / std::f32::consts::TAU).rem_euclid(1.0);
    // `turns` is in [0, 1]; 1.0 can appear through rounding and wraps to 0.
    ((turns * 65536.0).round() as u32 & 0xFFFF) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_clamp_and_round() {
        let i = MoveInput::from_controls(2.0, 0.0, 0.0, Buttons::default());
        assert_eq!((i.forward_q, i.right_q), (127, 0));
        let j = MoveInput::from_controls(0.3, -0.5, 0.0, Buttons::default());
        assert_eq!((j.forward_q, j.right_q), (38, -64));
        let n = MoveInput::from_controls(f32::NAN, f32::NEG_INFINITY, f32::NAN, Buttons::default());
        assert_eq!((n.forward_q, n.right_q, n.yaw_q), (0, -127, 0));
    }

    #[test]
    fn diagonals_are_scaled_to_unit_length_and_pass_validation() {
        let d = MoveInput::from_controls(1.0, 1.0, 0.0, Buttons::default());
        assert_eq!((d.forward_q, d.right_q), (90, 90));
        for (f, r) in [(1.0, 1.0), (-1.0, 1.0), (5.0, -3.0), (0.9, 0.9), (1.0, 0.0)] {
            let i = MoveInput::from_controls(f, r, 0.0, Buttons::default());
            assert!(
                crate::validation::validate_input(&i).is_ok(),
                "({f}, {r}) -> {i:?}"
            );
        }
    }

    #[test]
    fn yaw_wraps() {
        let a =
            MoveInput::from_controls(0.0, 0.0, -std::f32::consts::FRAC_PI_2, Buttons::default());
        assert_eq!(a.yaw_q, 49152);
        let b = MoveInput::from_controls(0.0, 0.0, std::f32::consts::TAU, Buttons::default());
        assert_eq!(b.yaw_q, 0);
        assert!(
            (MoveInput {
                yaw_q: 16384,
                ..Default::default()
            }
            .yaw_rad()
                - std::f32::consts::FRAC_PI_2)
                .abs()
                < 1e-6
        );
    }
}
