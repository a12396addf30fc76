//! Configuration of the replication module, with safe defaults and validation.

use serde::{Deserialize, Serialize};

use super::{ConfigError, TierConfig};
use crate::time::TickRate;

/// Everything the [`Replicator`](super::Replicator) needs to know up front.
///
/// Invariants checked by [`ReplicationConfig::validate`]: distances finite and positive
/// (the hysteresis may be zero), the area of interest reaches beyond the last distance tier,
/// a positive byte budget, an interest refresh interval in range, valid tiers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplicationConfig {
    /// The simulation tick rate; distance tiers become intervals in these ticks.
    pub tick_rate: TickRate,
    /// Entities farther than this (horizontally) from a client's viewer are not replicated
    /// to it at all. Default 300 m: the 200 m mid tier plus a 100 m ring at the far rate,
    /// which keeps the visible set in the low hundreds at town densities.
    pub area_of_interest_radius_m: f32,
    /// A visible entity only leaves once it is farther than `area_of_interest_radius_m +
    /// aoi_hysteresis_m`, so an entity pacing on the edge does not enter and leave every
    /// tick. Default 10 m.
    pub aoi_hysteresis_m: f32,
    /// Edge of a spatial grid cell. Default 50 m (a 300 m query overlaps 13 × 13 cells).
    pub cell_size_m: f32,
    /// Distance tiers (send rates by distance).
    pub tiers: TierConfig,
    /// Long-run snapshot payload budget per client. Default 10,000 B/s.
    pub budget_bytes_per_s: u32,
    /// How many ticks' worth of unused budget may carry over into a later tick. Default 2
    /// (a tick after a quiet spell may send at most 3 ticks' worth).
    pub max_carry_ticks: u32,
    /// Each client re-queries the grid (interest, distance tiers, categories) every this
    /// many ticks, staggered by client id; in between its visible set and each entry's tier
    /// and category are reused, so enter and leave caused by movement, tier changes and
    /// category changes show up to `interest_refresh_ticks - 1` ticks late. Removed
    /// entities still leave at the next plan. In `1..=`[`Self::MAX_INTEREST_REFRESH_TICKS`];
    /// 1 refreshes every tick. Default 6 (200 ms at 30 Hz: a runner moves about 1.4 m,
    /// well inside the 10 m hysteresis).
    pub interest_refresh_ticks: u32,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            tick_rate: TickRate::DEFAULT,
            area_of_interest_radius_m: 300.0,
            aoi_hysteresis_m: 10.0,
            cell_size_m: 50.0,
            tiers: TierConfig::default(),
            budget_bytes_per_s: 10_000,
            max_carry_ticks: 2,
            interest_refresh_ticks: 6,
        }
    }
}

impl ReplicationConfig {
    /// Largest [`ReplicationConfig::interest_refresh_ticks`].
    pub const MAX_INTEREST_REFRESH_TICKS: u32 = 1_000;

    /// Checks the invariants listed on the type; the error names the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if !positive(self.area_of_interest_radius_m) {
            return Err(ConfigError::new(
                "area_of_interest_radius_m",
                "must be finite and positive",
            ));
        }
        if !(self.aoi_hysteresis_m.is_finite() && self.aoi_hysteresis_m >= 0.0) {
            return Err(ConfigError::new(
                "aoi_hysteresis_m",
                "must be finite and not negative",
            ));
        }
        if !positive(self.cell_size_m) {
            return Err(ConfigError::new(
                "cell_size_m",
                "must be finite and positive",
            ));
        }
        if self.budget_bytes_per_s == 0 {
            return Err(ConfigError::new("budget_bytes_per_s", "must be positive"));
        }
        if !(1..=Self::MAX_INTEREST_REFRESH_TICKS).contains(&self.interest_refresh_ticks) {
            return Err(ConfigError::new(
                "interest_refresh_ticks",
                "must be between 1 and 1000",
            ));
        }
        self.tiers.validate()?;
        if let Some(last) = self.tiers.tiers.last()
            && last.max_distance_m >= self.area_of_interest_radius_m
        {
            return Err(ConfigError::new(
                "area_of_interest_radius_m",
                "must be greater than the last tier's max_distance_m",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        ReplicationConfig::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        type Mutation = fn(&mut ReplicationConfig);
        let cases: [(Mutation, &str); 6] = [
            (
                |c| c.area_of_interest_radius_m = 0.0,
                "area_of_interest_radius_m",
            ),
            (
                |c| c.area_of_interest_radius_m = 150.0,
                "area_of_interest_radius_m",
            ),
            (|c| c.aoi_hysteresis_m = -1.0, "aoi_hysteresis_m"),
            (|c| c.cell_size_m = f32::INFINITY, "cell_size_m"),
            (|c| c.budget_bytes_per_s = 0, "budget_bytes_per_s"),
            (|c| c.interest_refresh_ticks = 0, "interest_refresh_ticks"),
        ];
        for (mutate, field) in cases {
            let mut config = ReplicationConfig::default();
            mutate(&mut config);
            assert_eq!(config.validate().unwrap_err().field, field);
        }
    }
}
