//! The settings of one load test run (what the command-line flags fill in), with the seed's
//! scenario as the default.

use std::time::Duration;

use mmo_core::time::TickRate;

use crate::LoadError;

/// Settings of a run. [`LoadOptions::default`] is the seed's scenario: 100 bots started at
/// 200 per second, 100 iterations of 1 s each, 30 Hz inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    /// Bots to run, `>= 1`.
    pub bots: usize,
    /// Bots started per second, finite and `> 0`.
    pub ramp_per_s: f64,
    /// Scenario iterations per bot, `>= 1`.
    pub iterations: u32,
    /// Wall time of one iteration (walk, then idle inputs until it is over); at least one
    /// tick.
    pub iteration: Duration,
    /// Optional cap on the whole run: when it is reached, every bot logs out.
    pub duration_cap: Option<Duration>,
    /// Seeds each bot's walking directions (bot `i` uses `seed ^ i`).
    pub seed: u64,
    /// Inputs per second each bot sends (the server's tick rate), in `10..=60`.
    pub tick_rate_hz: u32,
    /// Draw a progress bar on stderr (the binary also requires stdout to be a terminal).
    pub progress: bool,
    /// Stop the bots (they log out) and the spawned server on Ctrl-C. The binary sets it;
    /// tests leave it off.
    pub stop_on_ctrl_c: bool,
    /// How long a spawned server has to print its ready line.
    pub server_ready_timeout: Duration,
    /// Threads of the runtime the bots run on (their CPU share is judged against it).
    pub worker_threads: usize,
    /// A spawned server starts new characters over a disc of this radius around its spawn
    /// point, metres (0: all at the point, the densest case).
    pub spawn_spread_m: f32,
    /// `Some(n)`: light bots, which read only each snapshot's fixed part (tick, input ack,
    /// own state) and acknowledge it, except a sample of `n` that decode everything (spread
    /// evenly over the bot indices); `None`: every bot decodes everything.
    pub light_with_full_sample: Option<usize>,
    /// HTTP addresses (`host:port`) of more processes whose `/metrics` the report adds as
    /// their own figures (a fleet's zone process, another gateway).
    pub also_metrics: Vec<String>,
    /// `Some`: the report plans a fleet for this many concurrent players from the run's
    /// per-player figures (`crate::capacity`).
    pub plan: Option<PlanRequest>,
}

/// What `--plan-ccu` and the price flags ask for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanRequest {
    /// Concurrent players, `>= 1`.
    pub ccu: u64,
    /// Prices for the monthly cost (all given, or none).
    pub prices: Option<crate::capacity::Prices>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            bots: 100,
            ramp_per_s: 200.0,
            iterations: 100,
            iteration: Duration::from_secs(1),
            duration_cap: None,
            seed: 1,
            tick_rate_hz: TickRate::DEFAULT.hz(),
            progress: false,
            stop_on_ctrl_c: false,
            server_ready_timeout: Duration::from_secs(60),
            worker_threads: 2,
            spawn_spread_m: 0.0,
            light_with_full_sample: None,
            also_metrics: Vec::new(),
            plan: None,
        }
    }
}

impl LoadOptions {
    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<(), LoadError> {
        if self.bots == 0 {
            return Err(LoadError::BadOption("bots must be at least 1".into()));
        }
        if !(self.ramp_per_s.is_finite() && self.ramp_per_s > 0.0) {
            return Err(LoadError::BadOption(format!(
                "ramp_per_s must be a positive number, got {}",
                self.ramp_per_s
            )));
        }
        if self.iterations == 0 {
            return Err(LoadError::BadOption("iterations must be at least 1".into()));
        }
        let rate = self.tick_rate()?;
        if self.iteration < Duration::from_micros(rate.tick_us()) {
            return Err(LoadError::BadOption(format!(
                "iteration ({:?}) must last at least one tick ({} us)",
                self.iteration,
                rate.tick_us()
            )));
        }
        if let Some(plan) = &self.plan {
            if plan.ccu == 0 {
                return Err(LoadError::BadOption("--plan-ccu must be at least 1".into()));
            }
            if let Some(p) = &plan.prices {
                for (name, v) in [
                    ("--usd-per-core-month", p.usd_per_core_month),
                    ("--usd-per-gib-memory-month", p.usd_per_gib_memory_month),
                    ("--usd-per-gib-egress", p.usd_per_gib_egress),
                ] {
                    if !(v.is_finite() && v >= 0.0) {
                        return Err(LoadError::BadOption(format!(
                            "{name} must be a number >= 0, got {v}"
                        )));
                    }
                }
                if let Some(m) = p.monthly_players_per_ccu
                    && !(m.is_finite() && m > 0.0)
                {
                    return Err(LoadError::BadOption(format!(
                        "--monthly-players-per-ccu must be a positive number, got {m}"
                    )));
                }
            }
        }
        if self.duration_cap.is_some_and(|d| d.is_zero()) {
            return Err(LoadError::BadOption("duration cap must be positive".into()));
        }
        Ok(())
    }

    /// The tick rate, or an error naming the bad value.
    pub fn tick_rate(&self) -> Result<TickRate, LoadError> {
        TickRate::new(self.tick_rate_hz).map_err(|e| {
            LoadError::BadOption(format!(
                "tick_rate_hz must be in {}..={}, got {}",
                TickRate::MIN_HZ,
                TickRate::MAX_HZ,
                e.hz
            ))
        })
    }

    /// The interval between two inputs.
    pub fn tick(&self) -> Result<Duration, LoadError> {
        Ok(Duration::from_micros(self.tick_rate()?.tick_us()))
    }
}
