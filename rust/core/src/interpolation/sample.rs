//! What goes into and comes out of an interpolation buffer, and shortest-arc angle blending.

use std::f32::consts::{PI, TAU};

use glam::Vec3;

/// One received state of a remote entity.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct InterpSample {
    /// Position of the capsule's base, metres.
    pub position_m: Vec3,
    /// Facing, radians (any finite value; blended along the shortest arc).
    pub yaw_rad: f32,
}

impl InterpSample {
    /// True when every component is finite.
    #[must_use]
    pub fn is_finite(&self) -> bool {
        self.position_m.is_finite() && self.yaw_rad.is_finite()
    }
}

/// Where to draw a remote entity this frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InterpOutput {
    /// Position of the capsule's base, metres.
    pub position_m: Vec3,
    /// Facing, radians in `[0, 2*pi)`.
    pub yaw_rad: f32,
    /// True when the render time is past the newest sample: the position is extrapolated
    /// from the last velocity (up to `max_extrapolation_us`) and held after that.
    pub extrapolating: bool,
}

/// What [`super::InterpolationBuffer::push`] did with a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Stored (possibly between older samples when it arrived out of order).
    Accepted,
    /// A sample with the same server time is already stored; ignored.
    Duplicate,
    /// Not newer than the newest sample already rendered past; ignored (it still counts as
    /// a jitter observation: it arrived late).
    Stale,
    /// Non-finite position or yaw; ignored.
    Invalid,
    /// Its transit time is wildly off the estimate (more than `resync_threshold_us`);
    /// ignored unless it repeats.
    Outlier,
    /// The latest of `resync_after_outliers` consecutive outliers: the server clock changed,
    /// the buffer was cleared and restarted from this sample.
    Resynced,
}

/// Blends angles `a_rad` to `b_rad` by `t` along the shorter arc; result in `[0, 2*pi)`.
#[must_use]
pub fn lerp_angle_rad(a_rad: f32, b_rad: f32, t: f32) -> f32 {
    let mut delta = (b_rad - a_rad).rem_euclid(TAU);
    if delta > PI {
        delta -= TAU;
    }
    wrap_angle_rad(a_rad + delta * t)
}

/// `angle_rad` wrapped into `[0, 2*pi)`.
#[must_use]
pub fn wrap_angle_rad(angle_rad: f32) -> f32 {
    let wrapped = angle_rad.rem_euclid(TAU);
    // rem_euclid can round up to exactly TAU for tiny negative inputs.
    if wrapped >= TAU { 0.0 } else { wrapped }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn angle_blend_takes_the_short_way() {
        assert!(approx(lerp_angle_rad(0.0, 1.0, 0.5), 0.5));
        // 6.0 to 0.2 crosses zero: the short arc is about 0.483 rad forward.
        let mid = lerp_angle_rad(6.0, 0.2, 0.5);
        let expected = wrap_angle_rad(6.0 + (0.2 + TAU - 6.0) / 2.0);
        assert!(approx(mid, expected), "{mid} vs {expected}");
        // And back the other way.
        let back = lerp_angle_rad(0.2, 6.0, 0.5);
        assert!(approx(back, expected), "{back}");
        assert!(approx(lerp_angle_rad(-0.5, 0.5, 0.5), 0.0));
        assert!(approx(lerp_angle_rad(1.0, 2.0, 0.0), 1.0));
        assert!(approx(lerp_angle_rad(1.0, 2.0, 1.0), 2.0));
    }

    #[test]
    fn wrap_stays_in_range() {
        for a in [-1e-9f32, -TAU, TAU, 3.0 * TAU + 0.1, -0.1] {
            let w = wrap_angle_rad(a);
            assert!((0.0..TAU).contains(&w), "{a} -> {w}");
        }
    }
}
