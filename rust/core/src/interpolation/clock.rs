//! The render clock: estimates the server clock's offset, the arrival jitter and the sample
//! spacing from arrivals, derives an adaptive render delay, and advances a render time that
//! converges on `server_now_estimate - delay` by slewing (never by jumping back).

use super::config::InterpolationConfig;

/// Estimators and render time of one interpolation buffer.
///
/// Times are microseconds as `f64`: server times up to 2^53 us (285 years) are exact, and
/// the render time may be fractional or negative (before the server's epoch plus delay).
#[derive(Clone, Debug)]
pub struct RenderClock {
    /// EWMA of `arrival_now_us - server_time_us`; meaningful once `offsets_seen > 0`.
    offset_mean_us: f64,
    /// EWMA of `|offset - offset_mean_us|` with asymmetric gains. `>= 0`.
    jitter_us: f64,
    /// EWMA of the server-time spacing of successive newest samples. `> 0`.
    interval_us: f64,
    /// Whether `interval_us` has been measured (at least one spacing seen).
    interval_measured: bool,
    /// Offsets observed since the last reset.
    offsets_seen: u64,
    /// Server time being rendered; `None` until first advanced after an offset is known.
    render_time_us: Option<f64>,
    /// Latest `now_us` given to [`RenderClock::advance`].
    last_now_us: Option<u64>,
}

impl RenderClock {
    /// A clock with no observations.
    #[must_use]
    pub fn new(config: &InterpolationConfig) -> Self {
        RenderClock {
            offset_mean_us: 0.0,
            jitter_us: 0.0,
            interval_us: config.initial_interval_us as f64,
            interval_measured: false,
            offsets_seen: 0,
            render_time_us: None,
            last_now_us: None,
        }
    }

    /// Forgets everything (server clock changed).
    pub fn reset(&mut self, config: &InterpolationConfig) {
        *self = RenderClock::new(config);
    }

    /// How far `server_time_us` arriving at `arrival_now_us` deviates from the offset
    /// estimate, microseconds; `None` before the first observation.
    #[must_use]
    pub fn deviation_us(&self, server_time_us: u64, arrival_now_us: u64) -> Option<f64> {
        (self.offsets_seen > 0)
            .then(|| offset_us(server_time_us, arrival_now_us) - self.offset_mean_us)
    }

    /// Feeds one arrival into the offset and jitter estimators.
    pub fn observe_arrival(
        &mut self,
        config: &InterpolationConfig,
        server_time_us: u64,
        arrival_now_us: u64,
    ) {
        let offset = offset_us(server_time_us, arrival_now_us);
        if self.offsets_seen == 0 {
            self.offset_mean_us = offset;
            self.jitter_us = 0.0;
        } else {
            // Cap one observation's pull so a single freak arrival cannot wreck the estimate.
            let cap = config.max_delay_us as f64;
            let deviation = (offset - self.offset_mean_us).clamp(-cap, cap);
            self.offset_mean_us += f64::from(config.offset_gain) * deviation;
            let magnitude = deviation.abs();
            let gain = if magnitude > self.jitter_us {
                config.jitter_rise_gain
            } else {
                config.jitter_fall_gain
            };
            self.jitter_us += f64::from(gain) * (magnitude - self.jitter_us);
        }
        self.offsets_seen += 1;
    }

    /// Feeds the server-time spacing between the previous newest sample and a new newest one.
    pub fn observe_spacing(&mut self, config: &InterpolationConfig, spacing_us: u64) {
        let spacing = (spacing_us as f64).clamp(1_000.0, config.max_delay_us as f64);
        if self.interval_measured {
            let gain = if spacing > self.interval_us {
                config.interval_rise_gain
            } else {
                config.interval_fall_gain
            };
            self.interval_us += f64::from(gain) * (spacing - self.interval_us);
        } else {
            self.interval_us = spacing;
            self.interval_measured = true;
        }
    }

    /// The delay the render time converges on, microseconds.
    #[must_use]
    pub fn target_delay_us(&self, config: &InterpolationConfig) -> f64 {
        let raw = f64::from(config.interval_multiplier) * self.interval_us
            + f64::from(config.jitter_multiplier) * self.jitter_us;
        raw.clamp(config.min_delay_us as f64, config.max_delay_us as f64)
    }

    /// Estimated arrival jitter (mean deviation of transit time), microseconds.
    #[must_use]
    pub fn jitter_us(&self) -> f64 {
        self.jitter_us
    }

    /// Estimated sample spacing, microseconds.
    #[must_use]
    pub fn interval_us(&self) -> f64 {
        self.interval_us
    }

    /// Estimated server time at local time `now_us` (as of the latest arrival: the time the
    /// server stamped on packets arriving now, on average).
    #[must_use]
    pub fn server_now_estimate_us(&self, now_us: u64) -> Option<f64> {
        (self.offsets_seen > 0).then_some(now_us as f64 - self.offset_mean_us)
    }

    /// The server time currently rendered, if the clock has started.
    #[must_use]
    pub fn render_time_us(&self) -> Option<f64> {
        self.render_time_us
    }

    /// How far the render time is behind the server-time estimate at the last advance,
    /// microseconds; `None` until the render time has started.
    #[must_use]
    pub fn effective_delay_us(&self) -> Option<f64> {
        let now_us = self.last_now_us?;
        Some(self.server_now_estimate_us(now_us)? - self.render_time_us?)
    }

    /// Advances the render time to local time `now_us` and returns it.
    ///
    /// `samples_seen` is how many samples the buffer has accepted since the last reset. The
    /// render time starts once two have been seen (the spacing is then known): it is set to
    /// its target then and returned from then on; before that this returns `None`. Once
    /// started it runs at `1 ± max_slew` times real speed toward the target, so it never
    /// goes backwards, and jumps (forward only) when behind by more than
    /// `snap_forward_us`. A `now_us` smaller than the previous one counts as no time passing.
    pub fn advance(
        &mut self,
        config: &InterpolationConfig,
        now_us: u64,
        samples_seen: u64,
    ) -> Option<f64> {
        let previous_now_us = self.last_now_us;
        self.last_now_us = Some(previous_now_us.map_or(now_us, |last| last.max(now_us)));
        if samples_seen < 2 {
            return None;
        }
        let target = self.server_now_estimate_us(now_us)? - self.target_delay_us(config);
        let next = match (self.render_time_us, previous_now_us) {
            (Some(render), Some(last_now_us)) => {
                let dt = now_us.saturating_sub(last_now_us) as f64;
                let free = render + dt;
                let error = target - free;
                if error > config.snap_forward_us as f64 {
                    target
                } else {
                    let slew = f64::from(config.max_slew) * dt;
                    free + error.clamp(-slew, slew)
                }
            }
            _ => target,
        };
        self.render_time_us = Some(next);
        Some(next)
    }
}

/// `arrival_now_us - server_time_us` as a float, exact for differences below 2^53.
fn offset_us(server_time_us: u64, arrival_now_us: u64) -> f64 {
    (i128::from(arrival_now_us) - i128::from(server_time_us)) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_time_never_goes_backwards_when_delay_jumps_up() {
        let config = InterpolationConfig::default();
        let mut clock = RenderClock::new(&config);
        clock.observe_arrival(&config, 0, 50_000);
        clock.observe_spacing(&config, 33_333);
        let mut last = clock.advance(&config, 50_000, 2).unwrap();
        // A huge jitter estimate raises the target delay by far more than a frame.
        for i in 0..20 {
            clock.observe_arrival(&config, 100_000 + i, 50_000 + 100_000 + 400_000);
        }
        for frame in 1..200u64 {
            let now = 50_000 + frame * 16_667;
            let t = clock.advance(&config, now, 10).unwrap();
            assert!(t >= last, "render time went back at frame {frame}");
            // At most 10 % slower than real time.
            assert!(t - last >= 0.9 * 16_667.0 - 1e-3, "{frame}: {t} {last}");
            last = t;
        }
    }

    #[test]
    fn time_going_backwards_is_no_time_passing() {
        let config = InterpolationConfig::default();
        let mut clock = RenderClock::new(&config);
        clock.observe_arrival(&config, 0, 0);
        let a = clock.advance(&config, 1_000_000, 2).unwrap();
        let b = clock.advance(&config, 500_000, 2).unwrap();
        assert!(b >= a);
    }
}
