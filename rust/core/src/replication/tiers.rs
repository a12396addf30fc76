//! Distance tiers: how often an entity may be re-sent to a client, by its horizontal
//! distance from the client's viewer.
//!
//! The default is the design brief's: 30 Hz within 50 m, 10 Hz within 200 m, 2 Hz beyond (up
//! to the area-of-interest radius). A rate becomes a send *interval in ticks*,
//! `ceil(tick_hz / rate_hz)`, so at a 30 Hz tick the defaults give intervals of 1, 3 and 15
//! ticks. Rounding up means a tier is never sent faster than its configured rate.
//!
//! Each band also has a **priority weight**: how fast an entity's priority accumulator grows
//! per tick while it sits in that band (times its category's base weight). The rate is a
//! *cap*; the weight decides who gets the byte budget when there is not enough for every
//! band to run at its cap.
//!
//! Why a separate weight, and why the defaults (1000 near, 10 mid, 2 beyond) favour the near
//! band so strongly: under a binding budget every entity is sent when its accumulator reaches
//! a common threshold, so send rates are proportional to growth rates. If growth were the
//! tier rate (30 / 10 / 2), a crowd with 150 entities within 50 m and 800 between 50 and
//! 200 m would give the mid band 800 × 10 / (150 × 30 + 800 × 10) ≈ 64 % of the sends, and
//! the near entities — the ones a player looks at and fights — would update at about 2 Hz.
//! With weights 1000 / 10 the ratio near : mid is 100 : 1, so a mid entity outranks a near
//! one only after waiting 100 times as long: the near band takes what it needs up to its
//! 30 Hz cap, and mid and beyond share what is left 5 : 1 (their old ratio). Near entities
//! sent every tick also have fresh baselines, so their delta records are the cheapest ones,
//! which leaves more of the budget for the others.
//!
//! Starvation freedom is kept: every weight is positive, so the accumulator of a visible
//! entity that is never sent grows without bound (up to saturation) until it outranks
//! entities that were just sent. What the weights change is *how long* the far ones wait:
//! when the near band alone needs more than the budget, a mid entity waits about 100 times
//! (and a beyond entity about 500 times) as long as a near one. Configure flatter weights for
//! zones where distant entities matter more (open-field PvP with long-range weapons).

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::time::TickRate;

/// One distance band: entities at most `max_distance_m` away (and beyond the previous band)
/// are sent at most `rate_hz` times per second.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistanceTier {
    /// Outer edge of the band, metres (horizontal distance). Finite and positive.
    pub max_distance_m: f32,
    /// Highest send rate inside the band, Hz. Positive; rates above the tick rate act as
    /// "every tick".
    pub rate_hz: u32,
    /// Per-tick growth of the priority accumulator inside the band (times the category's
    /// base weight); see the module docs. In `1..=`[`TierConfig::MAX_PRIORITY_WEIGHT`].
    pub priority_weight: u32,
}

/// The configured list of distance bands.
///
/// Invariants checked by [`TierConfig::validate`]: `tiers` sorted by strictly increasing
/// `max_distance_m`, every distance finite and positive, every rate positive, rates never
/// increasing with distance (`beyond_rate_hz` included), every priority weight in
/// `1..=`[`TierConfig::MAX_PRIORITY_WEIGHT`] and never increasing with distance
/// (`beyond_priority_weight` included), at most [`TierConfig::MAX_TIERS`] bands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TierConfig {
    /// Bands from nearest to farthest.
    pub tiers: Vec<DistanceTier>,
    /// Rate of entities beyond the last band (still inside the area of interest), Hz.
    pub beyond_rate_hz: u32,
    /// Priority weight of entities beyond the last band.
    pub beyond_priority_weight: u32,
}

impl TierConfig {
    /// Most bands a configuration may list (the tier index is stored in a byte).
    pub const MAX_TIERS: usize = 16;

    /// Largest priority weight. With the largest category weight (8) an accumulator grows
    /// by at most 80,000 per tick, so it takes 26,843 ticks (about 15 minutes at 30 Hz) of
    /// never being sent to saturate at [`ACCUMULATOR_MAX`](super::ACCUMULATOR_MAX).
    pub const MAX_PRIORITY_WEIGHT: u32 = 10_000;

    /// Checks the invariants listed on the type; the error names the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tiers.len() > Self::MAX_TIERS {
            return Err(ConfigError::new("tiers.tiers", "lists more than 16 tiers"));
        }
        let mut previous: Option<DistanceTier> = None;
        for (i, tier) in self.tiers.iter().enumerate() {
            if !(tier.max_distance_m.is_finite() && tier.max_distance_m > 0.0) {
                return Err(ConfigError::new(
                    format!("tiers.tiers[{i}].max_distance_m"),
                    "must be finite and positive",
                ));
            }
            if tier.rate_hz == 0 {
                return Err(ConfigError::new(
                    format!("tiers.tiers[{i}].rate_hz"),
                    "must be positive",
                ));
            }
            if !(1..=Self::MAX_PRIORITY_WEIGHT).contains(&tier.priority_weight) {
                return Err(ConfigError::new(
                    format!("tiers.tiers[{i}].priority_weight"),
                    "must be between 1 and 10000",
                ));
            }
            if let Some(prev) = previous {
                if tier.max_distance_m <= prev.max_distance_m {
                    return Err(ConfigError::new(
                        format!("tiers.tiers[{i}].max_distance_m"),
                        "must be greater than the previous tier's (tiers sorted by distance)",
                    ));
                }
                if tier.rate_hz > prev.rate_hz {
                    return Err(ConfigError::new(
                        format!("tiers.tiers[{i}].rate_hz"),
                        "must not exceed the previous (nearer) tier's rate",
                    ));
                }
                if tier.priority_weight > prev.priority_weight {
                    return Err(ConfigError::new(
                        format!("tiers.tiers[{i}].priority_weight"),
                        "must not exceed the previous (nearer) tier's weight",
                    ));
                }
            }
            previous = Some(*tier);
        }
        if self.beyond_rate_hz == 0 {
            return Err(ConfigError::new("tiers.beyond_rate_hz", "must be positive"));
        }
        if previous.is_some_and(|p| self.beyond_rate_hz > p.rate_hz) {
            return Err(ConfigError::new(
                "tiers.beyond_rate_hz",
                "must not exceed the last tier's rate",
            ));
        }
        if !(1..=Self::MAX_PRIORITY_WEIGHT).contains(&self.beyond_priority_weight) {
            return Err(ConfigError::new(
                "tiers.beyond_priority_weight",
                "must be between 1 and 10000",
            ));
        }
        if previous.is_some_and(|p| self.beyond_priority_weight > p.priority_weight) {
            return Err(ConfigError::new(
                "tiers.beyond_priority_weight",
                "must not exceed the last tier's weight",
            ));
        }
        Ok(())
    }
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            tiers: vec![
                DistanceTier {
                    max_distance_m: 50.0,
                    rate_hz: 30,
                    priority_weight: 1000,
                },
                DistanceTier {
                    max_distance_m: 200.0,
                    rate_hz: 10,
                    priority_weight: 10,
                },
            ],
            beyond_rate_hz: 2,
            beyond_priority_weight: 2,
        }
    }
}

/// One resolved band of a [`TierTable`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResolvedTier {
    /// Squared outer edge, m² (`f32::INFINITY` for the "beyond" band).
    pub max_distance_sq_m2: f32,
    /// Minimum ticks between two sends of one entity in this band; at least 1.
    pub interval_ticks: u32,
    /// The configured rate, Hz.
    pub rate_hz: u32,
    /// Per-tick growth factor of the priority accumulator (times the category weight).
    pub priority_weight: u32,
}

/// A validated [`TierConfig`] resolved against a tick rate, ready for the hot loop: squared
/// distances (no square root per entity) and intervals in ticks. The last entry is the
/// "beyond" band with an infinite edge, so every distance maps to a tier.
#[derive(Clone, Debug, PartialEq)]
pub struct TierTable {
    tiers: Vec<ResolvedTier>,
}

impl TierTable {
    /// Validates `config` and resolves it for `tick_rate`.
    pub fn new(config: &TierConfig, tick_rate: TickRate) -> Result<Self, ConfigError> {
        config.validate()?;
        let tick_hz = tick_rate.hz();
        let resolve = |max_distance_sq_m2: f32, rate_hz: u32, priority_weight: u32| ResolvedTier {
            max_distance_sq_m2,
            interval_ticks: tick_hz.div_ceil(rate_hz).max(1),
            rate_hz,
            priority_weight,
        };
        let mut tiers: Vec<ResolvedTier> = config
            .tiers
            .iter()
            .map(|t| {
                resolve(
                    t.max_distance_m * t.max_distance_m,
                    t.rate_hz,
                    t.priority_weight,
                )
            })
            .collect();
        tiers.push(resolve(
            f32::INFINITY,
            config.beyond_rate_hz,
            config.beyond_priority_weight,
        ));
        Ok(TierTable { tiers })
    }

    /// Index of the band containing an entity `distance_sq_m2` (squared metres) away.
    #[must_use]
    pub fn tier_for(&self, distance_sq_m2: f32) -> u8 {
        let mut i = 0;
        // The last band has an infinite edge, so the loop stops inside the table for every
        // non-NaN distance; NaN falls through to the last band.
        while i + 1 < self.tiers.len() && distance_sq_m2 > self.tiers[i].max_distance_sq_m2 {
            i += 1;
        }
        i as u8
    }

    /// The band at `index` (as returned by [`TierTable::tier_for`]).
    ///
    /// # Panics
    /// When `index` is out of range (a caller bug).
    #[must_use]
    pub fn tier(&self, index: u8) -> &ResolvedTier {
        &self.tiers[usize::from(index)]
    }

    /// All bands, nearest first; the last one is "beyond".
    #[must_use]
    pub fn tiers(&self) -> &[ResolvedTier] {
        &self.tiers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_intervals_at_30_hz_are_1_3_15() {
        let table = TierTable::new(&TierConfig::default(), TickRate::DEFAULT).unwrap();
        let intervals: Vec<u32> = table.tiers().iter().map(|t| t.interval_ticks).collect();
        assert_eq!(intervals, vec![1, 3, 15]);
        assert_eq!(table.tier_for(0.0), 0);
        assert_eq!(table.tier_for(50.0 * 50.0), 0);
        assert_eq!(table.tier_for(50.1 * 50.1), 1);
        assert_eq!(table.tier_for(200.0 * 200.0), 1);
        assert_eq!(table.tier_for(1e9), 2);
    }

    #[test]
    fn intervals_round_up_so_rates_are_never_exceeded() {
        let config = TierConfig {
            tiers: vec![DistanceTier {
                max_distance_m: 10.0,
                rate_hz: 60,
                priority_weight: 5,
            }],
            beyond_rate_hz: 7,
            beyond_priority_weight: 5,
        };
        let table = TierTable::new(&config, TickRate::new(20).unwrap()).unwrap();
        assert_eq!(table.tier(0).interval_ticks, 1, "faster than the tick rate");
        assert_eq!(
            table.tier(1).interval_ticks,
            3,
            "20/7 Hz rounds up to 3 ticks"
        );
    }

    #[test]
    fn validation_names_the_bad_field() {
        let mut config = TierConfig::default();
        config.tiers[1].max_distance_m = 40.0;
        assert_eq!(
            config.validate().unwrap_err().field,
            "tiers.tiers[1].max_distance_m"
        );
        let mut config = TierConfig::default();
        config.tiers[0].rate_hz = 0;
        assert_eq!(
            config.validate().unwrap_err().field,
            "tiers.tiers[0].rate_hz"
        );
        let mut config = TierConfig::default();
        config.tiers[0].max_distance_m = f32::NAN;
        assert_eq!(
            config.validate().unwrap_err().field,
            "tiers.tiers[0].max_distance_m"
        );
        let config = TierConfig {
            beyond_rate_hz: 20,
            ..TierConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().field, "tiers.beyond_rate_hz");
        let mut config = TierConfig::default();
        config.tiers[1].priority_weight = 0;
        assert_eq!(
            config.validate().unwrap_err().field,
            "tiers.tiers[1].priority_weight"
        );
        let mut config = TierConfig::default();
        config.tiers[1].priority_weight = 2000;
        assert_eq!(
            config.validate().unwrap_err().field,
            "tiers.tiers[1].priority_weight",
            "farther tiers must not weigh more"
        );
        let mut config = TierConfig::default();
        config.tiers[0].priority_weight = TierConfig::MAX_PRIORITY_WEIGHT + 1;
        assert_eq!(
            config.validate().unwrap_err().field,
            "tiers.tiers[0].priority_weight"
        );
        let config = TierConfig {
            beyond_priority_weight: 11,
            ..TierConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().field,
            "tiers.beyond_priority_weight"
        );
        let config = TierConfig {
            tiers: Vec::new(),
            beyond_rate_hz: 5,
            beyond_priority_weight: 1,
        };
        assert!(
            config.validate().is_ok(),
            "a single band for everything is fine"
        );
    }
}
