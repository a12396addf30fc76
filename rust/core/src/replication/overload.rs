//! Overload control: when ticks run long, replication sends less, far tiers first, and
//! recovers by itself; inputs are never held back.
//!
//! [`OverloadGovernor`] watches how long each tick took against the tick period (the driver
//! measures wall time; this type reads no clock) and sets a *level*, `0..=MAX_LEVEL`. A
//! zone at level `L > 0` lets each client's snapshot fill at most its fixed part plus
//! [`budget_share_percent`]`(L)` percent of what the budget's per-tick bytes
//! (`budget_bytes_per_s / tick rate`) leave for records after it (at level 0 a snapshot may
//! also spend the budget's carry). Replication time
//! is nearly proportional to records written, so this sheds load; which records go is
//! decided by priority as usual (the candidates are the top of the priority order, as many
//! as the size estimate fits; only records that come out larger than estimated are
//! skipped in id order by the encoder), and priority favours the near tier (tier weights
//! 1000 / 10 / 2), so the far and mid tiers lose their updates first. The byte budget
//! itself is not touched (it refills as usual, so a client's rate comes back as soon as
//! the level drops).
//!
//! Rule, per tick: a tick that took more than [`OVER_PERCENT`] % of the period raises the
//! level by one, at most once every [`RAISE_GAP_TICKS`] ticks (the effect of a step shows
//! within a tick or two); [`RECOVER_TICKS`] ticks in a row under [`UNDER_PERCENT`] % lower it
//! by one. Between the two thresholds the level holds, so it does not oscillate around one.

/// Highest level.
pub const MAX_LEVEL: u8 = 3;
/// A tick longer than this share of the period is an overrun, percent.
pub const OVER_PERCENT: u64 = 90;
/// A tick shorter than this share of the period counts towards recovery, percent.
pub const UNDER_PERCENT: u64 = 60;
/// Ticks between two raises.
pub const RAISE_GAP_TICKS: u32 = 5;
/// Calm ticks in a row before one step down.
pub const RECOVER_TICKS: u32 = 60;

/// Share of the budget's per-tick record bytes a client's snapshot may fill at `level`,
/// percent (100 at level 0, where the budget's carry may be spent too).
#[must_use]
pub fn budget_share_percent(level: u8) -> usize {
    match level {
        0 => 100,
        1 => 70,
        2 => 45,
        _ => 25,
    }
}

/// A level change reported by [`OverloadGovernor::on_tick`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelChange {
    /// Level before the tick.
    pub from: u8,
    /// Level from now on.
    pub to: u8,
}

/// Chooses the replication level from measured tick durations. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct OverloadGovernor {
    level: u8,
    /// Ticks since the last raise (saturating).
    since_raise: u32,
    /// Calm ticks in a row.
    calm: u32,
}

impl OverloadGovernor {
    /// Level 0, nothing measured.
    #[must_use]
    pub fn new() -> Self {
        OverloadGovernor {
            level: 0,
            since_raise: RAISE_GAP_TICKS,
            calm: 0,
        }
    }

    /// The current level.
    #[must_use]
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Takes one tick's duration (`tick_us`) against the period (`period_us`); returns the
    /// change of level it caused, if any.
    pub fn on_tick(&mut self, tick_us: u64, period_us: u64) -> Option<LevelChange> {
        let from = self.level;
        self.since_raise = self.since_raise.saturating_add(1);
        let share_percent = tick_us.saturating_mul(100) / period_us.max(1);
        if share_percent > OVER_PERCENT {
            self.calm = 0;
            if self.level < MAX_LEVEL && self.since_raise >= RAISE_GAP_TICKS {
                self.level += 1;
                self.since_raise = 0;
            }
        } else if share_percent < UNDER_PERCENT {
            self.calm += 1;
            if self.calm >= RECOVER_TICKS && self.level > 0 {
                self.level -= 1;
                self.calm = 0;
            }
        } else {
            self.calm = 0;
        }
        (self.level != from).then_some(LevelChange {
            from,
            to: self.level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD_US: u64 = 33_333;

    #[test]
    fn long_ticks_raise_the_level_step_by_step_and_calm_ones_lower_it() {
        let mut g = OverloadGovernor::new();
        assert_eq!(g.on_tick(10_000, PERIOD_US), None);
        // An overrun raises at once, then at most once per RAISE_GAP_TICKS.
        assert_eq!(
            g.on_tick(40_000, PERIOD_US),
            Some(LevelChange { from: 0, to: 1 })
        );
        for _ in 1..RAISE_GAP_TICKS {
            assert_eq!(g.on_tick(40_000, PERIOD_US), None);
        }
        assert_eq!(
            g.on_tick(40_000, PERIOD_US),
            Some(LevelChange { from: 1, to: 2 })
        );
        for _ in 0..100 {
            g.on_tick(80_000, PERIOD_US);
        }
        assert_eq!(g.level(), MAX_LEVEL);
        // Ticks between the thresholds hold the level and reset the calm count.
        for _ in 0..RECOVER_TICKS * 2 {
            assert_eq!(g.on_tick(25_000, PERIOD_US), None);
        }
        assert_eq!(g.level(), MAX_LEVEL);
        // Calm ticks step it down, one step per RECOVER_TICKS.
        for _ in 1..RECOVER_TICKS {
            assert_eq!(g.on_tick(5_000, PERIOD_US), None);
        }
        assert_eq!(
            g.on_tick(5_000, PERIOD_US),
            Some(LevelChange { from: 3, to: 2 })
        );
        for _ in 0..RECOVER_TICKS * 2 {
            g.on_tick(5_000, PERIOD_US);
        }
        assert_eq!(g.level(), 0);
    }

    #[test]
    fn shares_fall_with_the_level() {
        let shares: Vec<usize> = (0..=MAX_LEVEL).map(budget_share_percent).collect();
        assert_eq!(shares[0], 100);
        assert!(shares.windows(2).all(|w| w[1] < w[0]), "{shares:?}");
    }
}
