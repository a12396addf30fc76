//! Seeded input generators that move characters like players, and small statistics helpers
//! shared by the scenarios.

use glam::{Vec2, Vec3};
use mmo_core::input::{Buttons, MoveInput};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Wraps an angle into `(-pi, pi]`.
fn wrap_pi(angle_rad: f32) -> f32 {
    let tau = std::f32::consts::TAU;
    let a = angle_rad.rem_euclid(tau);
    if a > std::f32::consts::PI { a - tau } else { a }
}

/// One player steering like a person: walks forward along a heading that drifts and turns
/// smoothly, stops now and then for a few seconds, and turns back toward the centre of its
/// home square when it strays out of it.
#[derive(Clone, Debug)]
pub struct Steering {
    heading_rad: f32,
    turn_rate_radps: f32,
    stop_ticks_left: u32,
}

/// Tuning of [`Steering`], in the scenario's units.
#[derive(Clone, Copy, Debug)]
pub struct SteeringConfig {
    /// Half the side of the square the walker stays in, centred on the origin, metres.
    pub half_side_m: f32,
    /// Simulation step, seconds.
    pub dt_s: f32,
    /// Mean time between stops, seconds.
    pub mean_walk_s: f32,
    /// Longest stop, seconds (uniform in `[0.5, max_stop_s]`).
    pub max_stop_s: f32,
}

impl Steering {
    /// A walker with a random initial heading.
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        Steering {
            heading_rad: rng.random_range(-std::f32::consts::PI..std::f32::consts::PI),
            turn_rate_radps: 0.0,
            stop_ticks_left: 0,
        }
    }

    /// The input for one tick, given where the character is now.
    pub fn next(
        &mut self,
        rng: &mut ChaCha8Rng,
        config: &SteeringConfig,
        position_m: Vec3,
    ) -> MoveInput {
        if self.stop_ticks_left > 0 {
            self.stop_ticks_left -= 1;
            return MoveInput::from_controls(0.0, 0.0, self.heading_rad, Buttons::default());
        }
        let stop_p = f64::from(config.dt_s / config.mean_walk_s);
        if rng.random_bool(stop_p.clamp(0.0, 1.0)) {
            let stop_s = rng.random_range(0.5..config.max_stop_s.max(0.51));
            self.stop_ticks_left = (stop_s / config.dt_s) as u32;
        }
        // Smoothly varying turn rate (a few seconds per change of mind), at most ~1.2 rad/s.
        if rng.random_bool(0.02) {
            self.turn_rate_radps = rng.random_range(-1.2..1.2);
        } else {
            self.turn_rate_radps =
                (self.turn_rate_radps + rng.random_range(-0.05..0.05)).clamp(-1.2, 1.2);
        }
        self.heading_rad += self.turn_rate_radps * config.dt_s;
        // Out of the home square: turn toward its centre at up to 3 rad/s.
        let p = Vec2::new(position_m.x, position_m.y);
        if p.x.abs() > config.half_side_m || p.y.abs() > config.half_side_m {
            let home_rad = (-p.y).atan2(-p.x);
            let turn =
                wrap_pi(home_rad - self.heading_rad).clamp(-3.0 * config.dt_s, 3.0 * config.dt_s);
            self.heading_rad += turn;
        }
        self.heading_rad = wrap_pi(self.heading_rad);
        MoveInput::from_controls(1.0, 0.0, self.heading_rad, Buttons::default())
    }
}

/// A player mashing keys: holds a random direction for a while (10 % chance of a change per
/// tick), sometimes stops, sprints or jumps. Every input is legal.
#[derive(Clone, Debug, Default)]
pub struct RandomKeys {
    current: MoveInput,
}

impl RandomKeys {
    /// The input for one tick.
    pub fn next(&mut self, rng: &mut ChaCha8Rng) -> MoveInput {
        if rng.random_bool(0.1) {
            let stop = rng.random_bool(0.1);
            let mut buttons = 0;
            if rng.random_bool(0.3) {
                buttons |= Buttons::SPRINT;
            }
            if rng.random_bool(0.05) {
                buttons |= Buttons::JUMP;
            }
            let (forward, right) = if stop {
                (0.0, 0.0)
            } else {
                (rng.random_range(-1.0..=1.0), rng.random_range(-1.0..=1.0))
            };
            let yaw = rng.random_range(0.0..std::f32::consts::TAU);
            self.current = MoveInput::from_controls(forward, right, yaw, Buttons(buttons));
        }
        self.current
    }
}

/// The value at quantile `q` (0..=1) of `sorted` (ascending) by nearest rank; 0 when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Rounds to `decimals` decimal places, for readable JSON.
pub fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// A histogram of nanoseconds from 1 ns to 60 s at 3 significant digits.
pub fn ns_histogram() -> Result<hdrhistogram::Histogram<u64>, String> {
    hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())
}

/// Records a duration in nanoseconds (clamped into the histogram's 1 ns..60 s range).
pub fn record_ns(histogram: &mut hdrhistogram::Histogram<u64>, elapsed: std::time::Duration) {
    let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
    histogram.saturating_record(ns);
}

/// The value at quantile `q` of a histogram of nanoseconds, in microseconds.
pub fn quantile_us(histogram: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    histogram.value_at_quantile(q) as f64 / 1_000.0
}
