//! Tuning of remote-entity interpolation: buffer size, render delay bounds, estimator gains,
//! extrapolation limit and teleport detection.

/// Configuration of an [`super::InterpolationBuffer`].
///
/// The render delay is `interval_multiplier * interval + jitter_multiplier * jitter`,
/// clamped to `[min_delay_us, max_delay_us]`, where `interval` is the observed spacing of
/// samples (server time) and `jitter` the mean deviation of their transit time. Gains are
/// the weights of exponentially weighted moving averages; "rise" gains apply when a new
/// observation is above the estimate, "fall" gains when below, so the delay grows quickly
/// when the network gets worse and shrinks slowly when it recovers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InterpolationConfig {
    /// Samples kept per entity; the oldest is dropped beyond this. `2..=1024`.
    pub capacity: usize,
    /// Smallest render delay, microseconds.
    pub min_delay_us: u64,
    /// Largest render delay, microseconds (must cover the slowest send rate, 2 Hz = 500 ms,
    /// plus jitter). `min_delay_us..=10_000_000`.
    pub max_delay_us: u64,
    /// Sample spacing assumed before two samples have been seen, microseconds.
    pub initial_interval_us: u64,
    /// Weight of the sample spacing in the delay. Finite, `>= 0`.
    pub interval_multiplier: f32,
    /// Weight of the jitter (mean deviation) in the delay, `k`. Finite, `>= 0`.
    pub jitter_multiplier: f32,
    /// EWMA gain of the clock offset (arrival time minus server time). `(0, 1]`.
    pub offset_gain: f32,
    /// EWMA gain of the jitter when a deviation is above the estimate. `(0, 1]`.
    pub jitter_rise_gain: f32,
    /// EWMA gain of the jitter when a deviation is below the estimate. `(0, 1]`.
    pub jitter_fall_gain: f32,
    /// EWMA gain of the sample spacing when a spacing is above the estimate. `(0, 1]`.
    pub interval_rise_gain: f32,
    /// EWMA gain of the sample spacing when a spacing is below the estimate. `(0, 1]`.
    pub interval_fall_gain: f32,
    /// How much faster or slower than real time the render clock may run while converging
    /// on its target, as a fraction (0.1 = 90 %..110 %). `[0, 1)`, so render time never goes
    /// backwards.
    pub max_slew: f32,
    /// When the render clock is behind its target by more than this, it jumps forward
    /// instead of slewing, microseconds. Non-zero.
    pub snap_forward_us: u64,
    /// A sample whose transit time differs from the estimate by more than this is an
    /// outlier, microseconds. Must exceed `max_delay_us`.
    pub resync_threshold_us: u64,
    /// Consecutive outliers after which the server clock is assumed to have changed (zone
    /// restart, transfer) and the buffer starts over. `>= 1`.
    pub resync_after_outliers: u32,
    /// Longest extrapolation past the newest sample before holding, microseconds.
    pub max_extrapolation_us: u64,
    /// Consecutive samples further apart than this snap instead of interpolating, metres.
    /// Finite, `> 0`.
    pub teleport_distance_m: f32,
    /// Consecutive samples implying a speed above this snap instead of interpolating,
    /// metres per second. Finite, `> 0`.
    pub teleport_speed_mps: f32,
}

impl Default for InterpolationConfig {
    fn default() -> Self {
        InterpolationConfig {
            capacity: 32,
            min_delay_us: 20_000,
            max_delay_us: 1_000_000,
            initial_interval_us: 33_333,
            interval_multiplier: 1.0,
            jitter_multiplier: 3.0,
            offset_gain: 1.0 / 16.0,
            jitter_rise_gain: 1.0 / 4.0,
            jitter_fall_gain: 1.0 / 64.0,
            interval_rise_gain: 1.0 / 2.0,
            interval_fall_gain: 1.0 / 8.0,
            max_slew: 0.1,
            snap_forward_us: 500_000,
            resync_threshold_us: 2_000_000,
            resync_after_outliers: 3,
            max_extrapolation_us: 250_000,
            teleport_distance_m: 25.0,
            teleport_speed_mps: 50.0,
        }
    }
}

impl InterpolationConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), InterpolationConfigError> {
        let bad = |field, reason| Err(InterpolationConfigError { field, reason });
        if !(2..=1024).contains(&self.capacity) {
            return bad("capacity", "must be in 2..=1024");
        }
        if self.max_delay_us > 10_000_000 {
            return bad("max_delay_us", "must be at most 10 s");
        }
        if self.min_delay_us > self.max_delay_us {
            return bad("min_delay_us", "must not exceed max_delay_us");
        }
        if self.initial_interval_us == 0 || self.initial_interval_us > self.max_delay_us {
            return bad("initial_interval_us", "must be in 1..=max_delay_us");
        }
        for (field, value) in [
            ("interval_multiplier", self.interval_multiplier),
            ("jitter_multiplier", self.jitter_multiplier),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(field, "must be finite and not negative");
            }
        }
        for (field, value) in [
            ("offset_gain", self.offset_gain),
            ("jitter_rise_gain", self.jitter_rise_gain),
            ("jitter_fall_gain", self.jitter_fall_gain),
            ("interval_rise_gain", self.interval_rise_gain),
            ("interval_fall_gain", self.interval_fall_gain),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                return bad(field, "must be in (0, 1]");
            }
        }
        if !(0.0..1.0).contains(&self.max_slew) {
            return bad("max_slew", "must be in [0, 1)");
        }
        if self.snap_forward_us == 0 {
            return bad("snap_forward_us", "must be above 0");
        }
        if self.resync_threshold_us <= self.max_delay_us {
            return bad("resync_threshold_us", "must exceed max_delay_us");
        }
        if self.resync_after_outliers == 0 {
            return bad("resync_after_outliers", "must be at least 1");
        }
        if self.max_extrapolation_us > 10_000_000 {
            return bad("max_extrapolation_us", "must be at most 10 s");
        }
        for (field, value) in [
            ("teleport_distance_m", self.teleport_distance_m),
            ("teleport_speed_mps", self.teleport_speed_mps),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return bad(field, "must be finite and above 0");
            }
        }
        Ok(())
    }
}

/// An [`InterpolationConfig`] field holds a value the buffer cannot use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid interpolation config: {field} {reason}")]
pub struct InterpolationConfigError {
    /// The offending field, as spelled in [`InterpolationConfig`].
    pub field: &'static str,
    /// Why the value is refused.
    pub reason: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(InterpolationConfig::default().validate(), Ok(()));
    }

    #[test]
    fn validate_names_the_bad_field() {
        let d = InterpolationConfig::default();
        let cases: [(InterpolationConfig, &str); 8] = [
            (InterpolationConfig { capacity: 1, ..d }, "capacity"),
            (
                InterpolationConfig {
                    min_delay_us: 2_000_000,
                    ..d
                },
                "min_delay_us",
            ),
            (
                InterpolationConfig {
                    jitter_multiplier: f32::NAN,
                    ..d
                },
                "jitter_multiplier",
            ),
            (
                InterpolationConfig {
                    jitter_fall_gain: 0.0,
                    ..d
                },
                "jitter_fall_gain",
            ),
            (InterpolationConfig { max_slew: 1.0, ..d }, "max_slew"),
            (
                InterpolationConfig {
                    resync_threshold_us: 1_000_000,
                    ..d
                },
                "resync_threshold_us",
            ),
            (
                InterpolationConfig {
                    teleport_speed_mps: 0.0,
                    ..d
                },
                "teleport_speed_mps",
            ),
            (
                InterpolationConfig {
                    initial_interval_us: 0,
                    ..d
                },
                "initial_interval_us",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.to_string().contains(field));
        }
    }
}
