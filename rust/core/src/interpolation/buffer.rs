//! The per-entity snapshot buffer: stores received samples in server-time order, and
//! renders them behind server time with interpolation, bounded extrapolation and teleport
//! snapping.

use std::collections::VecDeque;

use super::clock::RenderClock;
use super::config::{InterpolationConfig, InterpolationConfigError};
use super::sample::{InterpOutput, InterpSample, PushOutcome, lerp_angle_rad, wrap_angle_rad};

/// A stored sample.
#[derive(Clone, Copy, Debug)]
struct Entry {
    server_time_us: u64,
    sample: InterpSample,
    /// True when this sample is a discontinuity from the previous stored one (teleport):
    /// rendering holds the previous sample until this one's time, then snaps.
    snaps_from_previous: bool,
}

/// Interpolation state of one remote entity.
///
/// Feed every received state with [`InterpolationBuffer::push`]; each frame, call
/// [`InterpolationBuffer::sample`] with the local time to get where to draw the entity.
/// Sans-IO: all times are arguments (`now_us` is the client's local clock, `server_time_us`
/// the server's timestamp of the state).
///
/// Invariants: samples are stored in strictly increasing server time, at most
/// `config.capacity` of them; each entry's `snaps_from_previous` reflects its current
/// predecessor; nothing at or before `consumed_time_us` is ever inserted.
#[derive(Clone, Debug)]
pub struct InterpolationBuffer {
    config: InterpolationConfig,
    entries: VecDeque<Entry>,
    clock: RenderClock,
    /// Server time of the newest sample the render time has reached or passed.
    consumed_time_us: Option<u64>,
    /// Samples accepted since the last reset (saturating).
    samples_seen: u64,
    /// Consecutive outliers seen.
    outlier_run: u32,
}

impl InterpolationBuffer {
    /// An empty buffer.
    pub fn new(config: InterpolationConfig) -> Result<Self, InterpolationConfigError> {
        config.validate()?;
        Ok(InterpolationBuffer {
            config,
            entries: VecDeque::with_capacity(config.capacity),
            clock: RenderClock::new(&config),
            consumed_time_us: None,
            samples_seen: 0,
            outlier_run: 0,
        })
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &InterpolationConfig {
        &self.config
    }

    /// Forgets all samples and estimates (entity left and re-entered interest, say).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.clock.reset(&self.config);
        self.consumed_time_us = None;
        self.samples_seen = 0;
        self.outlier_run = 0;
    }

    /// Stores a state the server stamped `server_time_us`, which arrived at local time
    /// `arrival_now_us`. Duplicates, samples not newer than what has already been rendered,
    /// non-finite samples and transit-time outliers are ignored; see [`PushOutcome`]. Never
    /// panics: the values come from the network.
    pub fn push(
        &mut self,
        server_time_us: u64,
        arrival_now_us: u64,
        sample: InterpSample,
    ) -> PushOutcome {
        if !sample.is_finite() {
            return PushOutcome::Invalid;
        }
        let deviation = self.clock.deviation_us(server_time_us, arrival_now_us);
        if deviation.is_some_and(|d| d.abs() > self.config.resync_threshold_us as f64) {
            self.outlier_run = self.outlier_run.saturating_add(1);
            if self.outlier_run < self.config.resync_after_outliers {
                return PushOutcome::Outlier;
            }
            tracing::debug!(server_time_us, "interpolation resync: server clock changed");
            self.clear();
            self.accept(server_time_us, arrival_now_us, sample);
            return PushOutcome::Resynced;
        }
        self.outlier_run = 0;
        if self
            .entries
            .binary_search_by_key(&server_time_us, |e| e.server_time_us)
            .is_ok()
        {
            return PushOutcome::Duplicate;
        }
        if self
            .consumed_time_us
            .is_some_and(|consumed| server_time_us <= consumed)
        {
            self.clock
                .observe_arrival(&self.config, server_time_us, arrival_now_us);
            return PushOutcome::Stale;
        }
        self.accept(server_time_us, arrival_now_us, sample);
        PushOutcome::Accepted
    }

    /// Advances the render clock to local time `now_us` and returns where to draw the entity
    /// then; `None` before the first sample. Until a second sample arrives (the render clock
    /// needs the sample spacing to start) the first one is shown as is.
    pub fn sample(&mut self, now_us: u64) -> Option<InterpOutput> {
        let first = self.entries.front()?.sample;
        let Some(render_time_us) = self.clock.advance(&self.config, now_us, self.samples_seen)
        else {
            return Some(output(first, false));
        };
        // Drop samples no longer needed: keep the newest one at or before the render time,
        // and always the newest two (extrapolation needs a velocity).
        while self.entries.len() > 2
            && self
                .entries
                .get(1)
                .is_some_and(|e| e.server_time_us as f64 <= render_time_us)
        {
            self.entries.pop_front();
        }
        let consumed = self
            .entries
            .iter()
            .rev()
            .find(|e| e.server_time_us as f64 <= render_time_us)
            .map(|e| e.server_time_us);
        if consumed > self.consumed_time_us {
            self.consumed_time_us = consumed;
        }
        self.sample_at(render_time_us)
    }

    /// The entity at server time `render_time_us` from the stored samples, without touching
    /// the render clock: interpolated between the samples around it, held at the oldest
    /// before it, extrapolated (bounded) then held past the newest, and snapped across
    /// teleports. `None` when empty.
    #[must_use]
    pub fn sample_at(&self, render_time_us: f64) -> Option<InterpOutput> {
        let first = self.entries.front()?;
        if render_time_us <= first.server_time_us as f64 {
            return Some(output(first.sample, false));
        }
        let after = self
            .entries
            .partition_point(|e| e.server_time_us as f64 <= render_time_us);
        // `after >= 1` because the first entry is at or before the render time.
        let from = self.entries.get(after - 1)?;
        if let Some(to) = self.entries.get(after) {
            if to.snaps_from_previous {
                return Some(output(from.sample, false));
            }
            let span_us = (to.server_time_us - from.server_time_us) as f64;
            let t = ((render_time_us - from.server_time_us as f64) / span_us) as f32;
            return Some(InterpOutput {
                position_m: from.sample.position_m.lerp(to.sample.position_m, t),
                yaw_rad: lerp_angle_rad(from.sample.yaw_rad, to.sample.yaw_rad, t),
                extrapolating: false,
            });
        }
        // Past the newest sample (`from`).
        let ahead_us = render_time_us - from.server_time_us as f64;
        if ahead_us <= 0.0 {
            return Some(output(from.sample, false));
        }
        let mut out = output(from.sample, true);
        let previous = after.checked_sub(2).and_then(|i| self.entries.get(i));
        if let Some(previous) = previous.filter(|_| !from.snaps_from_previous) {
            let span_s = (from.server_time_us - previous.server_time_us) as f64 * 1e-6;
            let velocity_mps =
                (from.sample.position_m - previous.sample.position_m) / span_s as f32;
            let extrapolate_s = ahead_us.min(self.config.max_extrapolation_us as f64) * 1e-6;
            out.position_m += velocity_mps * extrapolate_s as f32;
        }
        Some(out)
    }

    /// Samples currently stored.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no sample is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Server time of the newest stored sample.
    #[must_use]
    pub fn newest_server_time_us(&self) -> Option<u64> {
        self.entries.back().map(|e| e.server_time_us)
    }

    /// The server time rendered at the last [`InterpolationBuffer::sample`]; `None` until
    /// the render clock has started (two samples). Never decreases until a reset.
    #[must_use]
    pub fn render_time_us(&self) -> Option<f64> {
        self.clock.render_time_us()
    }

    /// The render delay the clock is converging on, microseconds.
    #[must_use]
    pub fn target_delay_us(&self) -> f64 {
        self.clock.target_delay_us(&self.config)
    }

    /// The render delay actually in effect at the last [`InterpolationBuffer::sample`]
    /// (server-time estimate minus render time), microseconds.
    #[must_use]
    pub fn effective_delay_us(&self) -> Option<f64> {
        self.clock.effective_delay_us()
    }

    /// Estimated arrival jitter, microseconds.
    #[must_use]
    pub fn jitter_us(&self) -> f64 {
        self.clock.jitter_us()
    }

    /// Estimated sample spacing (the entity's effective send interval), microseconds.
    #[must_use]
    pub fn interval_us(&self) -> f64 {
        self.clock.interval_us()
    }

    fn accept(&mut self, server_time_us: u64, arrival_now_us: u64, sample: InterpSample) {
        self.clock
            .observe_arrival(&self.config, server_time_us, arrival_now_us);
        match self.newest_server_time_us() {
            Some(newest) if server_time_us > newest => {
                self.clock
                    .observe_spacing(&self.config, server_time_us - newest);
            }
            _ => {}
        }
        let index = self
            .entries
            .partition_point(|e| e.server_time_us < server_time_us);
        self.entries.insert(
            index,
            Entry {
                server_time_us,
                sample,
                snaps_from_previous: false,
            },
        );
        self.refresh_snap(index);
        self.refresh_snap(index + 1);
        if self.entries.len() > self.config.capacity {
            self.entries.pop_front();
            if let Some(front) = self.entries.front_mut() {
                front.snaps_from_previous = false;
            }
        }
        self.samples_seen = self.samples_seen.saturating_add(1);
    }

    /// Recomputes whether the entry at `index` is a teleport from its predecessor.
    fn refresh_snap(&mut self, index: usize) {
        let Some(previous) = index
            .checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .copied()
        else {
            if let Some(entry) = self.entries.get_mut(index) {
                entry.snaps_from_previous = false;
            }
            return;
        };
        let (distance_m, dt_s) = match self.entries.get(index) {
            Some(entry) => (
                entry.sample.position_m.distance(previous.sample.position_m),
                (entry.server_time_us - previous.server_time_us) as f64 * 1e-6,
            ),
            None => return,
        };
        let speed_mps = f64::from(distance_m) / dt_s;
        let snaps = distance_m > self.config.teleport_distance_m
            || speed_mps > f64::from(self.config.teleport_speed_mps);
        if let Some(entry) = self.entries.get_mut(index) {
            entry.snaps_from_previous = snaps;
        }
    }
}

fn output(sample: InterpSample, extrapolating: bool) -> InterpOutput {
    InterpOutput {
        position_m: sample.position_m,
        yaw_rad: wrap_angle_rad(sample.yaw_rad),
        extrapolating,
    }
}
