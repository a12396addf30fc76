//! Distance tiers: how often an entity may be re-sent to a client, by its horizontal
//! distance from the client's viewer.
//!
//! The default is the design brief's: 30 Hz within 50 m, 10 Hz within 200 m, 2 Hz beyond (up
//! to the area-of-interest radius). A rate becomes a send *interval in ticks*,
//! `ceil(tick_hz / rate_hz)`, so at a 30 Hz tick the defaults give intervals of 1, 3 and 15
//! ticks. Rounding up means a tier is never sent faster than its configured rate.

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
}

/// The configured list of distance bands.
///
/// Invariants checked by [`TierConfig::validate`]: `tiers` sorted by strictly increasing
/// `max_distance_m`, every distance finite and positive, every rate positive, rates never
/// increasing with distance (`beyond_rate_hz` included), at most [`TierConfig::MAX_TIERS`]
/// bands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TierConfig {
    /// Bands from nearest to farthest.
    pub tiers: Vec<DistanceTier>,
    /// Rate of entities beyond the last band (still inside the area of interest), Hz.
    pub beyond_rate_hz: u32,
}

impl TierConfig {
    /// Most bands a configuration may list (the tier index is stored in a byte).
    pub const MAX_TIERS: usize = 16;

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
                },
                DistanceTier {
                    max_distance_m: 200.0,
                    rate_hz: 10,
                },
            ],
            beyond_rate_hz: 2,
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
    /// The configured rate, Hz: the per-tick growth factor of the priority accumulator.
    pub rate_hz: u32,
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
        let resolve = |max_distance_sq_m2: f32, rate_hz: u32| ResolvedTier {
            max_distance_sq_m2,
            interval_ticks: tick_hz.div_ceil(rate_hz).max(1),
            rate_hz,
        };
        let mut tiers: Vec<ResolvedTier> = config
            .tiers
            .iter()
            .map(|t| resolve(t.max_distance_m * t.max_distance_m, t.rate_hz))
            .collect();
        tiers.push(resolve(f32::INFINITY, config.beyond_rate_hz));
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
            }],
            beyond_rate_hz: 7,
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
        let config = TierConfig {
            tiers: Vec::new(),
            beyond_rate_hz: 5,
        };
        assert!(
            config.validate().is_ok(),
            "a single band for everything is fine"
        );
    }
}
