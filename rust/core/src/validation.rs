//! Server-side anti-cheat primitives: every check returns a typed [`Rejection`].
//!
//! Clients send inputs and requests, never positions or results, but even inputs can cheat:
//! an out-of-range axis, undefined button bits, inputs sent faster than real time (a speed
//! hack by time dilation), or replayed / rewound sequence numbers. This module holds the
//! small, pure checks the server composes:
//!
//! - [`validate_input`]: one [`MoveInput`] is well-formed (axes, magnitude, buttons);
//! - [`InputRateLimiter`]: a per-client token bucket, measured in ticks, that admits inputs
//!   at the tick rate plus a small slack and a burst allowance for network jitter;
//! - [`SequenceGuard`]: input sequences only move forward; redundant copies are recognised
//!   as harmless duplicates;
//! - [`check_speed`], [`check_teleport`], [`check_resource_cost`], [`check_cooldown`],
//!   [`check_range`]: reusable checks for gameplay actions.
//!
//! Every rejection has a [`RejectionKind`] whose [`RejectionKind::as_str`] is a stable metric
//! label, and a human-readable detail for logs. [`RejectionCounts`] tallies them per kind.
//! Sans-IO: time is always an argument (`now_us`, `elapsed_s`).

use std::fmt;

use glam::Vec3;
use serde::{Deserialize, Serialize};

use crate::input::{AXIS_Q_MAX, Buttons, MoveInput};
use crate::time::TickRate;

/// Why a client's input or request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RejectionKind {
    /// A quantized axis holds `-128`, outside `-127..=127`.
    AxisOutOfRange,
    /// The move vector is longer than 1 (plus quantization tolerance).
    InputMagnitude,
    /// Button bits outside [`Buttons::KNOWN`] are set.
    UnknownButtons,
    /// Inputs arrive faster than real time allows (time dilation / speed hack).
    InputRate,
    /// An input sequence went backwards beyond the duplicate window, or jumped too far ahead.
    SequenceNotMonotonic,
    /// Moved faster than allowed.
    Speed,
    /// Position jumped farther than any legal move.
    Teleport,
    /// A position, duration or amount is NaN or infinite.
    NonFinite,
    /// Not enough of a resource (mana, stamina, currency) for the cost.
    ResourceCost,
    /// The action is still on cooldown.
    Cooldown,
    /// The target is out of range.
    Range,
}

impl RejectionKind {
    /// Every kind, in declaration order (for registering metrics up front).
    pub const ALL: [RejectionKind; 11] = [
        RejectionKind::AxisOutOfRange,
        RejectionKind::InputMagnitude,
        RejectionKind::UnknownButtons,
        RejectionKind::InputRate,
        RejectionKind::SequenceNotMonotonic,
        RejectionKind::Speed,
        RejectionKind::Teleport,
        RejectionKind::NonFinite,
        RejectionKind::ResourceCost,
        RejectionKind::Cooldown,
        RejectionKind::Range,
    ];

    /// Stable `snake_case` name, used as a metric label and in logs. Never changes once
    /// released.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionKind::AxisOutOfRange => "axis_out_of_range",
            RejectionKind::InputMagnitude => "input_magnitude",
            RejectionKind::UnknownButtons => "unknown_buttons",
            RejectionKind::InputRate => "input_rate",
            RejectionKind::SequenceNotMonotonic => "sequence_not_monotonic",
            RejectionKind::Speed => "speed",
            RejectionKind::Teleport => "teleport",
            RejectionKind::NonFinite => "non_finite",
            RejectionKind::ResourceCost => "resource_cost",
            RejectionKind::Cooldown => "cooldown",
            RejectionKind::Range => "range",
        }
    }

    /// Position of this kind in [`RejectionKind::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused input or request: the kind (for metrics) and a detail (for logs).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct Rejection {
    /// What kind of violation.
    pub kind: RejectionKind,
    /// Human-readable specifics, e.g. `"moved 9.10 m in 1.000 s, limit 4.40 m"`.
    pub detail: String,
}

impl Rejection {
    /// A rejection of `kind` with `detail`.
    #[must_use]
    pub fn new(kind: RejectionKind, detail: impl Into<String>) -> Self {
        Rejection {
            kind,
            detail: detail.into(),
        }
    }
}

/// Per-kind rejection tally, e.g. one per client or per zone, exported as metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RejectionCounts {
    counts: [u64; RejectionKind::ALL.len()],
}

impl RejectionCounts {
    /// Counts one rejection of `kind`.
    pub fn record(&mut self, kind: RejectionKind) {
        let c = &mut self.counts[kind.index()];
        *c = c.saturating_add(1);
    }

    /// Rejections of `kind` so far.
    #[must_use]
    pub fn get(&self, kind: RejectionKind) -> u64 {
        self.counts[kind.index()]
    }

    /// All rejections so far.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0, |a, &c| a.saturating_add(c))
    }

    /// `(kind, count)` for every kind, in [`RejectionKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (RejectionKind, u64)> + '_ {
        RejectionKind::ALL.iter().map(|&k| (k, self.get(k)))
    }
}

// ---------------------------------------------------------------------------------------
// Input well-formedness
// ---------------------------------------------------------------------------------------

/// Tolerance on the move vector's length: a normalised stick vector can round up by at most
/// `0.5 * sqrt(2)` quantization steps (`~0.56 %`); 1 % leaves margin.
pub const INPUT_MAGNITUDE_TOLERANCE: f32 = 0.01;

/// Largest accepted `forward_q² + right_q²`: `floor((127 * (1 + INPUT_MAGNITUDE_TOLERANCE))²)`.
pub const MAX_INPUT_MAGNITUDE_SQ_Q: i32 = 16453;

/// Checks that one input is well-formed: both axes within `-127..=127`, no undefined button
/// bits, and the move vector no longer than 1 (+ [`INPUT_MAGNITUDE_TOLERANCE`]).
///
/// Note: an honest client must normalise the (forward, right) vector *before* quantizing;
/// a raw keyboard diagonal `(127, 127)` has length `sqrt(2)` and is rejected here.
pub fn validate_input(input: &MoveInput) -> Result<(), Rejection> {
    for (name, q) in [("forward_q", input.forward_q), ("right_q", input.right_q)] {
        if q < -AXIS_Q_MAX {
            return Err(Rejection::new(
                RejectionKind::AxisOutOfRange,
                format!("{name} = {q}, valid range -127..=127"),
            ));
        }
    }
    let unknown = input.buttons.0 & !Buttons::KNOWN;
    if unknown != 0 {
        return Err(Rejection::new(
            RejectionKind::UnknownButtons,
            format!("undefined button bits {unknown:#04x} set"),
        ));
    }
    let f = i32::from(input.forward_q);
    let r = i32::from(input.right_q);
    let magnitude_sq_q = f * f + r * r;
    if magnitude_sq_q > MAX_INPUT_MAGNITUDE_SQ_Q {
        let magnitude = (magnitude_sq_q as f32).sqrt() / f32::from(AXIS_Q_MAX);
        return Err(Rejection::new(
            RejectionKind::InputMagnitude,
            format!("move vector ({f}, {r}) has length {magnitude:.4}, limit 1.01"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Input rate (time dilation)
// ---------------------------------------------------------------------------------------

/// Token units one input costs. Credit refills at `hz * (1000 + slack_permille)` units per
/// microsecond, so at zero slack exactly `hz` inputs per second are admitted. Integer
/// arithmetic keeps the limiter exact and free of drift.
const UNITS_PER_INPUT: u64 = 1_000_000 * 1000;

/// Elapsed time beyond this is treated as this much (the bucket is full long before), which
/// keeps the refill product far from `u64` overflow.
const MAX_REFILL_ELAPSED_US: u64 = 60_000_000;

/// Tuning of the [`InputRateLimiter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRateConfig {
    /// The simulation rate clients produce inputs at.
    pub tick_rate: TickRate,
    /// Sustained rate allowed above the tick rate, in permille (`50` = 5 %). Covers client
    /// clock drift; every permille is a permille of speed a cheater gets for free, so keep
    /// it small. `0..=1000`.
    pub slack_permille: u32,
    /// Inputs that may arrive at once after a quiet period (bucket capacity, in ticks).
    /// Must cover the worst honest clump: network jitter plus a client frame hitch. At 30 Hz
    /// the default 10 ticks is 333 ms. `1..=600`.
    pub burst_ticks: u32,
}

impl Default for InputRateConfig {
    fn default() -> Self {
        InputRateConfig {
            tick_rate: TickRate::DEFAULT,
            slack_permille: 50,
            burst_ticks: 10,
        }
    }
}

/// An [`InputRateConfig`] field with an unusable value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid input rate config: `{field}` {reason}")]
pub struct InputRateConfigError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl InputRateConfig {
    /// Checks every field's invariant; the error names the first bad field.
    pub fn validate(&self) -> Result<(), InputRateConfigError> {
        if self.slack_permille > 1000 {
            return Err(InputRateConfigError {
                field: "slack_permille",
                reason: "must be within 0..=1000",
            });
        }
        if !(1..=600).contains(&self.burst_ticks) {
            return Err(InputRateConfigError {
                field: "burst_ticks",
                reason: "must be within 1..=600",
            });
        }
        Ok(())
    }
}

/// Result of [`InputRateLimiter::admit`]: how many of the offered inputs may be simulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    /// Inputs admitted (the oldest `accepted` of those offered).
    pub accepted: u32,
    /// Inputs over the budget, to be discarded.
    pub dropped: u32,
}

impl Admission {
    /// An [`RejectionKind::InputRate`] rejection when anything was dropped.
    #[must_use]
    pub fn rejection(&self) -> Option<Rejection> {
        (self.dropped > 0).then(|| {
            Rejection::new(
                RejectionKind::InputRate,
                format!(
                    "{} inputs over the real-time budget ({} admitted)",
                    self.dropped, self.accepted
                ),
            )
        })
    }
}

/// Per-client token bucket that admits inputs no faster than real time allows.
///
/// Credit refills continuously at `tick_rate * (1 + slack)` inputs per second up to
/// `burst_ticks` inputs; each admitted input costs one. Offer only *new* inputs (those
/// [`SequenceGuard`] reports as [`SequenceVerdict::New`]); redundant copies and sequences
/// that were skipped (never arrived) cost nothing. The bucket starts full.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct InputRateLimiter {
    config: InputRateConfig,
    /// Credit in token units. Invariant: `<= capacity_units`.
    credit_units: u64,
    /// `burst_ticks * UNITS_PER_INPUT`.
    capacity_units: u64,
    /// Time of the last refill; `None` before the first call.
    last_us: Option<u64>,
    dropped_total: u64,
}

impl InputRateLimiter {
    /// A limiter with a full bucket.
    pub fn new(config: InputRateConfig) -> Result<Self, InputRateConfigError> {
        config.validate()?;
        let capacity_units = u64::from(config.burst_ticks) * UNITS_PER_INPUT;
        Ok(InputRateLimiter {
            config,
            credit_units: capacity_units,
            capacity_units,
            last_us: None,
            dropped_total: 0,
        })
    }

    /// Offers `count` new inputs received at `now_us`; admits as many as the credit allows.
    /// A `now_us` earlier than the previous call (a driver bug) counts as no time passing.
    pub fn admit(&mut self, now_us: u64, count: u32) -> Admission {
        self.refill(now_us);
        let affordable = self.credit_units / UNITS_PER_INPUT;
        let accepted = u64::from(count).min(affordable);
        self.credit_units -= accepted * UNITS_PER_INPUT;
        // accepted <= count, which is a u32.
        let accepted = accepted as u32;
        let dropped = count - accepted;
        self.dropped_total = self.dropped_total.saturating_add(u64::from(dropped));
        Admission { accepted, dropped }
    }

    fn refill(&mut self, now_us: u64) {
        let elapsed_us = match self.last_us {
            Some(last) => now_us.saturating_sub(last).min(MAX_REFILL_ELAPSED_US),
            None => 0,
        };
        self.last_us = Some(self.last_us.map_or(now_us, |last| last.max(now_us)));
        let rate_units_per_us =
            u64::from(self.config.tick_rate.hz()) * (1000 + u64::from(self.config.slack_permille));
        // <= 6e7 * 60 * 2000 = 7.2e12: no overflow.
        let refill_units = elapsed_us * rate_units_per_us;
        self.credit_units = (self.credit_units + refill_units).min(self.capacity_units);
    }

    /// Inputs that could be admitted right now without waiting (whole inputs).
    #[must_use]
    pub fn available_inputs(&self) -> u64 {
        self.credit_units / UNITS_PER_INPUT
    }

    /// Inputs dropped since creation.
    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }
}

// ---------------------------------------------------------------------------------------
// Input sequences
// ---------------------------------------------------------------------------------------

/// Tuning of the [`SequenceGuard`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceGuardConfig {
    /// How far behind the newest sequence an input may be and still count as a harmless
    /// duplicate (redundant resends). Should exceed the client's prediction history
    /// (`PredictionConfig::history_len`, 128 by default). `>= 1`.
    pub duplicate_window: u32,
    /// Largest forward jump accepted (inputs lost in transit). `>= 1`.
    pub max_forward_jump: u32,
}

impl Default for SequenceGuardConfig {
    fn default() -> Self {
        SequenceGuardConfig {
            duplicate_window: 256,
            max_forward_jump: 1024,
        }
    }
}

/// A [`SequenceGuardConfig`] field with an unusable value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid sequence guard config: `{field}` must be >= 1")]
pub struct SequenceGuardConfigError {
    /// The offending field.
    pub field: &'static str,
}

impl SequenceGuardConfig {
    /// Checks every field's invariant; the error names the first bad field.
    pub fn validate(&self) -> Result<(), SequenceGuardConfigError> {
        if self.duplicate_window == 0 {
            return Err(SequenceGuardConfigError {
                field: "duplicate_window",
            });
        }
        if self.max_forward_jump == 0 {
            return Err(SequenceGuardConfigError {
                field: "max_forward_jump",
            });
        }
        Ok(())
    }
}

/// What [`SequenceGuard::check`] decided about an accepted sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceVerdict {
    /// Newer than anything seen: simulate it.
    New {
        /// Sequences between the previous newest and this one that never arrived.
        skipped: u32,
    },
    /// Not newer than the newest seen, within the window: a redundant copy (or an input that
    /// arrived after the server moved past it). Ignore it; not a cheat.
    Duplicate,
}

/// Tracks one client's newest input sequence. Sequences must move forward; see
/// [`SequenceVerdict`] and [`RejectionKind::SequenceNotMonotonic`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SequenceGuard {
    config: SequenceGuardConfig,
    /// Newest accepted sequence; `None` before the first input.
    newest: Option<u32>,
}

impl SequenceGuard {
    /// A guard that has seen nothing yet (the first sequence is accepted as new).
    pub fn new(config: SequenceGuardConfig) -> Result<Self, SequenceGuardConfigError> {
        config.validate()?;
        Ok(SequenceGuard {
            config,
            newest: None,
        })
    }

    /// Classifies `seq`. A rejected sequence does not change the guard.
    pub fn check(&mut self, seq: u32) -> Result<SequenceVerdict, Rejection> {
        let Some(newest) = self.newest else {
            self.newest = Some(seq);
            return Ok(SequenceVerdict::New { skipped: 0 });
        };
        if seq > newest {
            let jump = seq - newest;
            if jump > self.config.max_forward_jump {
                return Err(Rejection::new(
                    RejectionKind::SequenceNotMonotonic,
                    format!(
                        "sequence {seq} jumps {jump} ahead of {newest}, limit {}",
                        self.config.max_forward_jump
                    ),
                ));
            }
            self.newest = Some(seq);
            return Ok(SequenceVerdict::New { skipped: jump - 1 });
        }
        let age = newest - seq;
        if age <= self.config.duplicate_window {
            Ok(SequenceVerdict::Duplicate)
        } else {
            Err(Rejection::new(
                RejectionKind::SequenceNotMonotonic,
                format!(
                    "sequence {seq} is {age} behind {newest}, window {}",
                    self.config.duplicate_window
                ),
            ))
        }
    }

    /// The newest accepted sequence, if any.
    #[must_use]
    pub fn newest(&self) -> Option<u32> {
        self.newest
    }
}

// ---------------------------------------------------------------------------------------
// Reusable action checks
// ---------------------------------------------------------------------------------------

fn non_finite(what: &str) -> Rejection {
    Rejection::new(RejectionKind::NonFinite, format!("{what} is not finite"))
}

/// Checks that moving from `prev_pos_m` to `new_pos_m` in `elapsed_s` seconds stays within
/// `max_speed_mps * (1 + tolerance_frac)`. Distance is 3D: for a horizontal check pass both
/// positions with `z` set to 0. `elapsed_s <= 0` allows no movement at all.
pub fn check_speed(
    prev_pos_m: Vec3,
    new_pos_m: Vec3,
    elapsed_s: f32,
    max_speed_mps: f32,
    tolerance_frac: f32,
) -> Result<(), Rejection> {
    if !(prev_pos_m.is_finite() && new_pos_m.is_finite()) {
        return Err(non_finite("position"));
    }
    if !(elapsed_s.is_finite() && max_speed_mps.is_finite() && tolerance_frac.is_finite()) {
        return Err(non_finite("elapsed_s, max_speed_mps or tolerance_frac"));
    }
    let distance_m = prev_pos_m.distance(new_pos_m);
    let allowed_m = max_speed_mps * elapsed_s.max(0.0) * (1.0 + tolerance_frac);
    if distance_m > allowed_m {
        return Err(Rejection::new(
            RejectionKind::Speed,
            format!("moved {distance_m:.2} m in {elapsed_s:.3} s, limit {allowed_m:.2} m"),
        ));
    }
    Ok(())
}

/// Checks that a position change is no longer than `max_jump_m` (any single legal move).
pub fn check_teleport(prev_pos_m: Vec3, new_pos_m: Vec3, max_jump_m: f32) -> Result<(), Rejection> {
    if !(prev_pos_m.is_finite() && new_pos_m.is_finite()) {
        return Err(non_finite("position"));
    }
    let distance_m = prev_pos_m.distance(new_pos_m);
    // Written so that a NaN limit rejects.
    if distance_m <= max_jump_m {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionKind::Teleport,
            format!("position jumped {distance_m:.2} m, limit {max_jump_m:.2} m"),
        ))
    }
}

/// Checks that `available` covers `cost` (mana, stamina, gold...). Works for integers and
/// floats; a NaN on either side rejects.
pub fn check_resource_cost<T>(available: T, cost: T) -> Result<(), Rejection>
where
    T: PartialOrd + fmt::Display + Copy,
{
    if available >= cost {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionKind::ResourceCost,
            format!("needs {cost}, has {available}"),
        ))
    }
}

/// Checks that an action whose cooldown ends at `ready_at_us` may be used at `now_us`.
pub fn check_cooldown(now_us: u64, ready_at_us: u64) -> Result<(), Rejection> {
    if now_us >= ready_at_us {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionKind::Cooldown,
            format!("ready in {} us", ready_at_us - now_us),
        ))
    }
}

/// Checks that `target_m` is within `max_range_m` of `origin_m`.
pub fn check_range(origin_m: Vec3, target_m: Vec3, max_range_m: f32) -> Result<(), Rejection> {
    if !(origin_m.is_finite() && target_m.is_finite()) {
        return Err(non_finite("position"));
    }
    let distance_m = origin_m.distance(target_m);
    if distance_m <= max_range_m {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionKind::Range,
            format!("target at {distance_m:.2} m, range {max_range_m:.2} m"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mi(forward_q: i8, right_q: i8, buttons: u8) -> MoveInput {
        MoveInput {
            forward_q,
            right_q,
            yaw_q: 1234,
            buttons: Buttons(buttons),
        }
    }

    fn kind<T: fmt::Debug>(r: Result<T, Rejection>) -> RejectionKind {
        r.expect_err("expected a rejection").kind
    }

    #[test]
    fn kind_names_are_unique_snake_case() {
        let mut names: Vec<&str> = RejectionKind::ALL.iter().map(|k| k.as_str()).collect();
        for (i, k) in RejectionKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RejectionKind::ALL.len());
        let r = Rejection::new(RejectionKind::Speed, "too fast");
        assert_eq!(r.to_string(), "speed: too fast");
    }

    #[test]
    fn counts_per_kind() {
        let mut c = RejectionCounts::default();
        c.record(RejectionKind::Speed);
        c.record(RejectionKind::Speed);
        c.record(RejectionKind::InputRate);
        assert_eq!(c.get(RejectionKind::Speed), 2);
        assert_eq!(c.get(RejectionKind::Teleport), 0);
        assert_eq!(c.total(), 3);
        assert_eq!(c.iter().count(), RejectionKind::ALL.len());
    }

    #[test]
    fn input_validation() {
        assert!(validate_input(&mi(0, 0, 0)).is_ok());
        assert!(validate_input(&mi(127, 0, Buttons::KNOWN)).is_ok());
        assert!(validate_input(&mi(-127, 0, 0)).is_ok());
        // A normalised diagonal, quantized, rounds up slightly: still fine.
        assert!(validate_input(&mi(90, 90, 0)).is_ok());
        assert!(validate_input(&mi(-90, 90, 0)).is_ok());
        assert_eq!(
            kind(validate_input(&mi(-128, 0, 0))),
            RejectionKind::AxisOutOfRange
        );
        assert_eq!(
            kind(validate_input(&mi(0, -128, 0))),
            RejectionKind::AxisOutOfRange
        );
        assert_eq!(
            kind(validate_input(&mi(127, 127, 0))),
            RejectionKind::InputMagnitude
        );
        assert_eq!(
            kind(validate_input(&mi(92, 92, 0))),
            RejectionKind::InputMagnitude
        );
        assert_eq!(
            kind(validate_input(&mi(0, 0, 0x80))),
            RejectionKind::UnknownButtons
        );
        let detail = validate_input(&mi(0, 0, 0x84)).unwrap_err().detail;
        assert!(detail.contains("0x84"), "{detail}");
    }

    #[test]
    fn every_normalised_direction_passes() {
        // Any unit vector quantized the way the client does must be accepted.
        for step in 0..3600 {
            let a = step as f64 * std::f64::consts::TAU / 3600.0;
            let q = |v: f64| (v * 127.0).round() as i8;
            let i = mi(q(a.cos()), q(a.sin()), 0);
            assert!(validate_input(&i).is_ok(), "{i:?}");
        }
    }

    /// Arrival times (µs) of datagrams sent once per tick, each carrying the newest input,
    /// with deterministic pseudo-random extra delay up to `jitter_us`.
    fn new_inputs_per_arrival(
        ticks: u64,
        tick_us: u64,
        jitter_us: u64,
        seed: u64,
    ) -> Vec<(u64, u32)> {
        let mut rng = seed;
        let mut arrivals: Vec<(u64, u64)> = (1..=ticks)
            .map(|seq| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                (seq * tick_us + 40_000 + rng % (jitter_us + 1), seq)
            })
            .collect();
        arrivals.sort_unstable();
        // With redundancy a datagram carries every input up to its sequence, so the number
        // of new inputs is how far it moves the newest sequence.
        let mut newest = 0;
        let mut out = Vec::new();
        for (t, seq) in arrivals {
            if seq > newest {
                out.push((t, (seq - newest) as u32));
                newest = seq;
            }
        }
        out
    }

    #[test]
    fn honest_jittery_stream_is_never_rate_limited() {
        for hz in [10, 30, 60] {
            let rate = TickRate::new(hz).unwrap();
            let mut limiter = InputRateLimiter::new(InputRateConfig {
                tick_rate: rate,
                ..Default::default()
            })
            .unwrap();
            // 20 simulated minutes with up to 150 ms of jitter.
            let ticks = u64::from(hz) * 60 * 20;
            let mut total = 0;
            for (t, n) in new_inputs_per_arrival(ticks, rate.tick_us(), 150_000, 0xABCD + ticks) {
                let a = limiter.admit(t, n);
                assert_eq!(a.dropped, 0, "{hz} Hz at {t} us offered {n}");
                assert!(a.rejection().is_none());
                total += u64::from(a.accepted);
            }
            assert_eq!(total, ticks);
            assert_eq!(limiter.dropped_total(), 0);
        }
    }

    #[test]
    fn time_dilation_is_limited() {
        let rate = TickRate::DEFAULT;
        let mut limiter = InputRateLimiter::new(InputRateConfig::default()).unwrap();
        // A speed hack running the client clock 25 % fast for 60 s.
        let fast_tick_us = rate.tick_us() * 4 / 5;
        let mut accepted = 0_u64;
        let mut rejections = 0;
        let mut now_us = 0;
        while now_us < 60_000_000 {
            let a = limiter.admit(now_us, 1);
            accepted += u64::from(a.accepted);
            if let Some(r) = a.rejection() {
                assert_eq!(r.kind, RejectionKind::InputRate);
                rejections += 1;
            }
            now_us += fast_tick_us;
        }
        let real_time_ticks = 60 * u64::from(rate.hz());
        // At most the slack (5 %) plus the initial burst beyond real time.
        assert!(accepted <= real_time_ticks * 105 / 100 + 10, "{accepted}");
        assert!(accepted >= real_time_ticks, "{accepted}");
        assert!(rejections > 300, "{rejections}");
        assert_eq!(limiter.dropped_total(), rejections);
    }

    #[test]
    fn rate_limiter_burst_and_clock_edge_cases() {
        let mut limiter = InputRateLimiter::new(InputRateConfig::default()).unwrap();
        // A full bucket admits a burst, not more.
        assert_eq!(
            limiter.admit(1_000, 25),
            Admission {
                accepted: 10,
                dropped: 15
            }
        );
        assert_eq!(limiter.available_inputs(), 0);
        // Time going backwards refills nothing.
        assert_eq!(limiter.admit(0, 1).accepted, 0);
        // One tick later (33 333 µs at 30 Hz, +5 %) one input is affordable again.
        assert_eq!(limiter.admit(1_000 + 33_334, 2).accepted, 1);
        // A long silence refills to the burst only.
        assert_eq!(limiter.admit(u64::MAX, 100).accepted, 10);
        assert!(
            InputRateLimiter::new(InputRateConfig {
                burst_ticks: 0,
                ..Default::default()
            })
            .unwrap_err()
            .to_string()
            .contains("burst_ticks")
        );
        assert_eq!(
            InputRateConfig {
                slack_permille: 1001,
                ..Default::default()
            }
            .validate()
            .unwrap_err()
            .field,
            "slack_permille"
        );
    }

    #[test]
    fn sequence_guard() {
        let mut g = SequenceGuard::new(SequenceGuardConfig {
            duplicate_window: 8,
            max_forward_jump: 100,
        })
        .unwrap();
        assert_eq!(g.check(1), Ok(SequenceVerdict::New { skipped: 0 }));
        assert_eq!(g.check(2), Ok(SequenceVerdict::New { skipped: 0 }));
        // Redundant resends of already-seen inputs.
        assert_eq!(g.check(2), Ok(SequenceVerdict::Duplicate));
        assert_eq!(g.check(1), Ok(SequenceVerdict::Duplicate));
        assert_eq!(g.check(5), Ok(SequenceVerdict::New { skipped: 2 }));
        // A lost-then-late input within the window: harmless.
        assert_eq!(g.check(4), Ok(SequenceVerdict::Duplicate));
        assert_eq!(g.check(20), Ok(SequenceVerdict::New { skipped: 14 }));
        // Rewinding beyond the window is a violation and changes nothing.
        assert_eq!(kind(g.check(11)), RejectionKind::SequenceNotMonotonic);
        assert_eq!(kind(g.check(0)), RejectionKind::SequenceNotMonotonic);
        assert_eq!(g.check(12), Ok(SequenceVerdict::Duplicate));
        // Jumping absurdly far ahead too.
        assert_eq!(kind(g.check(121)), RejectionKind::SequenceNotMonotonic);
        assert_eq!(kind(g.check(u32::MAX)), RejectionKind::SequenceNotMonotonic);
        assert_eq!(g.newest(), Some(20));
        assert_eq!(g.check(120), Ok(SequenceVerdict::New { skipped: 99 }));
        assert_eq!(
            SequenceGuard::new(SequenceGuardConfig {
                duplicate_window: 0,
                ..Default::default()
            })
            .unwrap_err()
            .field,
            "duplicate_window"
        );
    }

    #[test]
    fn honest_redundant_stream_passes_sequence_guard() {
        let mut g = SequenceGuard::new(SequenceGuardConfig::default()).unwrap();
        // Each datagram carries the last 4 inputs; some datagrams are lost.
        let mut new_total = 0;
        for newest in 1..=1000_u32 {
            if newest % 7 == 0 {
                continue; // lost datagram
            }
            for seq in newest.saturating_sub(3).max(1)..=newest {
                if let SequenceVerdict::New { skipped } = g.check(seq).expect("honest") {
                    assert_eq!(skipped, 0);
                    new_total += 1;
                }
            }
        }
        assert_eq!(new_total, 1000);
    }

    #[test]
    fn speed_check() {
        let a = Vec3::ZERO;
        assert!(check_speed(a, Vec3::new(4.0, 0.0, 0.0), 1.0, 4.0, 0.1).is_ok());
        assert!(check_speed(a, Vec3::new(4.4, 0.0, 0.0), 1.0, 4.0, 0.1).is_ok());
        assert_eq!(
            kind(check_speed(a, Vec3::new(4.5, 0.0, 0.0), 1.0, 4.0, 0.1)),
            RejectionKind::Speed
        );
        assert!(check_speed(a, a, 0.0, 4.0, 0.1).is_ok());
        assert_eq!(
            kind(check_speed(a, Vec3::X * 0.01, 0.0, 4.0, 0.1)),
            RejectionKind::Speed
        );
        assert_eq!(
            kind(check_speed(a, Vec3::NAN, 1.0, 4.0, 0.1)),
            RejectionKind::NonFinite
        );
        assert_eq!(
            kind(check_speed(a, a, f32::INFINITY, 4.0, 0.1)),
            RejectionKind::NonFinite
        );
        let d = check_speed(a, Vec3::new(9.1, 0.0, 0.0), 1.0, 4.0, 0.1)
            .unwrap_err()
            .detail;
        assert!(d.contains("9.10") && d.contains("4.40"), "{d}");
    }

    #[test]
    fn teleport_check() {
        assert!(check_teleport(Vec3::ZERO, Vec3::new(3.0, 4.0, 0.0), 5.0).is_ok());
        assert_eq!(
            kind(check_teleport(Vec3::ZERO, Vec3::new(3.0, 4.1, 0.0), 5.0)),
            RejectionKind::Teleport
        );
        assert_eq!(
            kind(check_teleport(Vec3::ZERO, Vec3::ZERO, f32::NAN)),
            RejectionKind::Teleport
        );
        assert_eq!(
            kind(check_teleport(Vec3::INFINITY, Vec3::ZERO, 5.0)),
            RejectionKind::NonFinite
        );
    }

    #[test]
    fn resource_cooldown_and_range_checks() {
        assert!(check_resource_cost(50_u32, 50).is_ok());
        assert_eq!(
            kind(check_resource_cost(49_u32, 50)),
            RejectionKind::ResourceCost
        );
        assert!(check_resource_cost(10.5_f32, 10.0).is_ok());
        assert_eq!(
            kind(check_resource_cost(f32::NAN, 1.0)),
            RejectionKind::ResourceCost
        );
        assert_eq!(
            kind(check_resource_cost(5.0_f32, f32::NAN)),
            RejectionKind::ResourceCost
        );
        assert!(
            check_resource_cost(3_u32, 7)
                .unwrap_err()
                .detail
                .contains("needs 7, has 3")
        );
        assert!(check_cooldown(1_000, 1_000).is_ok());
        assert_eq!(kind(check_cooldown(999, 1_000)), RejectionKind::Cooldown);
        assert!(check_range(Vec3::ZERO, Vec3::new(0.0, 30.0, 0.0), 30.0).is_ok());
        assert_eq!(
            kind(check_range(Vec3::ZERO, Vec3::new(0.0, 30.1, 0.0), 30.0)),
            RejectionKind::Range
        );
        assert_eq!(
            kind(check_range(Vec3::NAN, Vec3::ZERO, 30.0)),
            RejectionKind::NonFinite
        );
    }
}
