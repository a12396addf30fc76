//! Simulation time: ticks and the fixed tick rate.
//!
//! The core never reads a clock. Wall time enters as `now_us: u64` (microseconds since an
//! arbitrary epoch chosen by the driver) and simulation time as [`Tick`]. The simulation
//! advances by a fixed `dt` derived from [`TickRate`], which is what makes the movement
//! step reproducible between client and server.

use serde::{Deserialize, Serialize};

/// A simulation tick number. Tick 0 is the first tick of a zone's simulation; in a fleet,
/// the first tick of the world (its epoch, shared by every zone process: `docs/fleet.md`).
///
/// At 60 Hz a `u32` lasts about 2.2 years (4.5 at 30 Hz) from that start; arithmetic that
/// could overflow saturates, and a zone process refuses to start a world whose epoch is
/// too old for its tick numbers (start the world under a new name).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Tick(pub u32);

impl Tick {
    /// The tick after this one.
    #[must_use]
    pub fn next(self) -> Tick {
        Tick(self.0.saturating_add(1))
    }

    /// Ticks elapsed from `earlier` to `self`; zero when `earlier` is later.
    #[must_use]
    pub fn since(self, earlier: Tick) -> u32 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Error returned when a tick rate outside the supported range is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("tick rate {hz} Hz is outside the supported range {min}..={max} Hz", min = TickRate::MIN_HZ, max = TickRate::MAX_HZ)]
pub struct TickRateError {
    /// The rejected rate.
    pub hz: u32,
}

/// The fixed simulation rate. Invariant: `MIN_HZ <= hz <= MAX_HZ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct TickRate {
    hz: u32,
}

impl TickRate {
    /// Lowest supported rate.
    pub const MIN_HZ: u32 = 10;
    /// Highest supported rate.
    pub const MAX_HZ: u32 = 60;
    /// The default rate (30 Hz).
    pub const DEFAULT: TickRate = TickRate { hz: 30 };

    /// A tick rate of `hz` ticks per second, or an error outside `10..=60`.
    pub fn new(hz: u32) -> Result<Self, TickRateError> {
        if (Self::MIN_HZ..=Self::MAX_HZ).contains(&hz) {
            Ok(TickRate { hz })
        } else {
            Err(TickRateError { hz })
        }
    }

    /// Ticks per second.
    #[must_use]
    pub fn hz(self) -> u32 {
        self.hz
    }

    /// The fixed step in seconds, as used by the movement step.
    #[must_use]
    pub fn dt_s(self) -> f32 {
        1.0 / self.hz as f32
    }

    /// The length of one tick in microseconds (rounded down).
    #[must_use]
    pub fn tick_us(self) -> u64 {
        1_000_000 / u64::from(self.hz)
    }

    /// The start time of `tick` in microseconds after tick 0, exact (no accumulated rounding).
    #[must_use]
    pub fn tick_start_us(self, tick: Tick) -> u64 {
        u64::from(tick.0) * 1_000_000 / u64::from(self.hz)
    }
}

impl Default for TickRate {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u32> for TickRate {
    type Error = TickRateError;
    fn try_from(hz: u32) -> Result<Self, Self::Error> {
        TickRate::new(hz)
    }
}

impl From<TickRate> for u32 {
    fn from(rate: TickRate) -> u32 {
        rate.hz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_bounds_are_enforced() {
        assert!(TickRate::new(9).is_err());
        assert!(TickRate::new(61).is_err());
        assert_eq!(TickRate::new(10).unwrap().hz(), 10);
        assert_eq!(TickRate::new(60).unwrap().hz(), 60);
        assert_eq!(TickRate::default().hz(), 30);
    }

    #[test]
    fn tick_start_has_no_drift() {
        let rate = TickRate::new(30).unwrap();
        assert_eq!(rate.tick_start_us(Tick(30)), 1_000_000);
        assert_eq!(rate.tick_start_us(Tick(30 * 3600)), 3_600_000_000);
    }

    #[test]
    fn tick_arithmetic_saturates() {
        assert_eq!(Tick(u32::MAX).next(), Tick(u32::MAX));
        assert_eq!(Tick(3).since(Tick(5)), 0);
        assert_eq!(Tick(5).since(Tick(3)), 2);
    }
}
