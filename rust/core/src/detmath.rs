//! Deterministic math for the movement step.
//!
//! The movement step must produce the same bits on a Windows client and a Linux server. The
//! platform `libm` (`sin`, `cos`, `exp`, ...) is *not* required to be correctly rounded and
//! differs between C runtimes, so nothing in here calls it. Everything is built from `+`,
//! `-`, `*`, `/`, comparisons and `sqrt`, which IEEE 754 requires to be correctly rounded.
//! Rust never contracts `a * b + c` into a fused multiply-add on its own, so the same source
//! gives the same result on every conforming target (x86-64 SSE2, AArch64).
//!
//! Beware `f32::min`/`max`/`clamp` in the step: with `-0.0` and `+0.0` they may return
//! either zero depending on the target's instruction, so the step uses explicit comparisons.
//!
//! Trigonometry takes the *quantized* yaw (`u16`, 65536 steps per turn) that the input
//! carries on the wire, so client and server evaluate the polynomial on identical inputs.

/// Radians per yaw step: `2*pi / 65536`, in `f64`.
const RAD_PER_YAW_STEP: f64 = std::f64::consts::TAU / 65536.0;

/// Yaw steps in a quarter turn.
const QUARTER_TURN_STEPS: u16 = 16384;

/// Yaw steps in an eighth of a turn (used to centre the reduced angle on zero).
const EIGHTH_TURN_STEPS: u16 = 8192;

/// Sine and cosine of the quantized yaw `yaw_q` (`65536` = one full turn), as `(sin, cos)`.
///
/// Deterministic: quadrant reduction on the integer, then Taylor polynomials of degree 15/16
/// evaluated in `f64` on `[-pi/4, pi/4)` (truncation error below `1e-16`), rounded once to
/// `f32`. The result is within one `f32` ulp of the true value (tested against `f64`
/// `sin`/`cos` over all 65536 inputs to `< 1e-6`, in practice `< 1e-7`). Exact at the four
/// axis directions (`0`, `16384`, `32768`, `49152` give `(0, 1)`, `(1, 0)`, `(0, -1)`,
/// `(-1, 0)`), and never returns `-0.0`.
#[must_use]
pub fn sin_cos_from_yaw_q(yaw_q: u16) -> (f32, f32) {
    // Rotate by an eighth turn so that the quadrant index rounds to the nearest axis; the
    // remainder is then in [-8192, 8191] steps, i.e. [-pi/4, pi/4).
    let shifted = yaw_q.wrapping_add(EIGHTH_TURN_STEPS);
    let quadrant = shifted / QUARTER_TURN_STEPS; // 0..=3
    let offset_steps = i32::from(shifted % QUARTER_TURN_STEPS) - i32::from(EIGHTH_TURN_STEPS);
    let x = f64::from(offset_steps) * RAD_PER_YAW_STEP;
    let (s, c) = sin_cos_reduced_f64(x);
    let (sin, cos) = match quadrant {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    };
    // `+ 0.0` turns a `-0.0` into `+0.0`, so the axis directions are exact and sign-clean.
    ((sin as f32) + 0.0, (cos as f32) + 0.0)
}

/// Sine and cosine of `x` for `|x| <= pi/4`, Taylor series in Horner form, in `f64`.
fn sin_cos_reduced_f64(x: f64) -> (f64, f64) {
    // Inverse factorials, evaluated by the compiler with IEEE arithmetic (deterministic).
    const S3: f64 = 1.0 / 6.0;
    const S5: f64 = S3 / 20.0;
    const S7: f64 = S5 / 42.0;
    const S9: f64 = S7 / 72.0;
    const S11: f64 = S9 / 110.0;
    const S13: f64 = S11 / 156.0;
    const S15: f64 = S13 / 210.0;
    const C2: f64 = 1.0 / 2.0;
    const C4: f64 = C2 / 12.0;
    const C6: f64 = C4 / 30.0;
    const C8: f64 = C6 / 56.0;
    const C10: f64 = C8 / 90.0;
    const C12: f64 = C10 / 132.0;
    const C14: f64 = C12 / 182.0;
    const C16: f64 = C14 / 240.0;

    let x2 = x * x;
    let sin_poly =
        1.0 - x2 * (S3 - x2 * (S5 - x2 * (S7 - x2 * (S9 - x2 * (S11 - x2 * (S13 - x2 * S15))))));
    let cos_poly = 1.0
        - x2 * (C2
            - x2 * (C4 - x2 * (C6 - x2 * (C8 - x2 * (C10 - x2 * (C12 - x2 * (C14 - x2 * C16)))))));
    (x * sin_poly, cos_poly)
}

/// Length of the 2D vector `(x, y)`, using the correctly rounded `sqrt` only.
#[must_use]
pub fn length_xy(x: f32, y: f32) -> f32 {
    (x * x + y * y).sqrt()
}

/// Moves the 2D velocity `(vx, vy)` toward `(target_x, target_y)` by at most `max_delta`
/// (a non-negative length), reaching the target exactly when it is within reach.
///
/// Deterministic: only arithmetic and `sqrt`. `max_delta` must be finite and `>= 0`.
#[must_use]
pub fn approach_xy(vx: f32, vy: f32, target_x: f32, target_y: f32, max_delta: f32) -> (f32, f32) {
    debug_assert!(
        max_delta.is_finite() && max_delta >= 0.0,
        "max_delta must be finite and >= 0"
    );
    let dx = target_x - vx;
    let dy = target_y - vy;
    let dist = length_xy(dx, dy);
    if dist <= max_delta {
        (target_x, target_y)
    } else {
        // dist > max_delta >= 0, so dist > 0 and the division is safe.
        let k = max_delta / dist;
        (vx + dx * k, vy + dy * k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sin_cos_matches_f64_reference_everywhere() {
        let mut max_err = 0.0_f64;
        for q in 0..=u16::MAX {
            let (s, c) = sin_cos_from_yaw_q(q);
            let a = f64::from(q) * RAD_PER_YAW_STEP;
            let es = (f64::from(s) - a.sin()).abs();
            let ec = (f64::from(c) - a.cos()).abs();
            max_err = max_err.max(es).max(ec);
            assert!(
                es < 1e-6 && ec < 1e-6,
                "yaw_q {q}: ({s}, {c}) err ({es}, {ec})"
            );
        }
        // Rounding a near-exact f64 to f32 costs at most half an f32 ulp of 1.0 (6e-8).
        assert!(max_err < 1e-7, "max error {max_err}");
    }

    #[test]
    fn axis_directions_are_exact() {
        assert_eq!(sin_cos_from_yaw_q(0), (0.0, 1.0));
        assert_eq!(sin_cos_from_yaw_q(16384), (1.0, 0.0));
        assert_eq!(sin_cos_from_yaw_q(32768), (0.0, -1.0));
        assert_eq!(sin_cos_from_yaw_q(49152), (-1.0, 0.0));
        for q in [0, 16384, 32768, 49152] {
            let (s, c) = sin_cos_from_yaw_q(q);
            assert!(!(s == 0.0 && s.is_sign_negative()));
            assert!(!(c == 0.0 && c.is_sign_negative()));
        }
    }

    #[test]
    fn unit_length_and_symmetry() {
        for q in (0..=u16::MAX).step_by(97) {
            let (s, c) = sin_cos_from_yaw_q(q);
            assert!((s * s + c * c - 1.0).abs() < 1e-6);
            // sin(-a) = -sin(a), cos(-a) = cos(a)
            let (sn, cn) = sin_cos_from_yaw_q(q.wrapping_neg());
            assert!((sn + s).abs() <= f32::EPSILON && (cn - c).abs() <= f32::EPSILON);
        }
    }

    #[test]
    fn approach_reaches_and_limits() {
        assert_eq!(approach_xy(0.0, 0.0, 3.0, 4.0, 10.0), (3.0, 4.0));
        let (x, y) = approach_xy(0.0, 0.0, 3.0, 4.0, 1.0);
        assert!((x - 0.6).abs() < 1e-6 && (y - 0.8).abs() < 1e-6);
        assert_eq!(approach_xy(1.0, 1.0, 1.0, 1.0, 0.0), (1.0, 1.0));
    }
}
