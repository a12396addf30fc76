//! Configuration of the hitbox history: how much is kept and how far a shot may rewind.

use crate::time::TickRate;

/// How much hitbox history the server keeps and how far back it will rewind a target.
///
/// The rewind clamp bounds how much a high-latency shooter can "shoot around corners": with
/// the default 400 ms, a shooter with up to about 250 ms of round trip plus a 100 ms
/// interpolation delay (and a frame of slack) is fully compensated; beyond that the shot is
/// refused and the shooter has to lead the target. The history (64 ticks) covers more than
/// one second at the highest tick rate (60 Hz), so the clamp, not the memory, decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LagCompensationConfig {
    /// The server's simulation rate; converts ticks to milliseconds.
    pub tick_rate: TickRate,
    /// Ticks of history kept per entity (a ring of this many samples). Must cover
    /// `max_rewind_ms` at `tick_rate` plus one tick to interpolate from; at most
    /// [`LagCompensationConfig::MAX_HISTORY_TICKS`].
    pub max_history_ticks: u32,
    /// Furthest a target may be rewound behind the current tick, milliseconds.
    pub max_rewind_ms: u32,
    /// Most entities tracked at once; recording a new entity beyond this is refused.
    pub max_entities: usize,
}

impl LagCompensationConfig {
    /// Upper bound on `max_history_ticks` (over a minute at 60 Hz).
    pub const MAX_HISTORY_TICKS: u32 = 4096;

    /// Ticks of history needed to rewind `max_rewind_ms` and still have the earlier tick to
    /// interpolate from.
    #[must_use]
    pub fn required_history_ticks(&self) -> u32 {
        let rewind_ticks =
            (u64::from(self.max_rewind_ms) * u64::from(self.tick_rate.hz())).div_ceil(1000);
        u32::try_from(rewind_ticks.saturating_add(2)).unwrap_or(u32::MAX)
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), LagCompensationConfigError> {
        if self.max_history_ticks == 0 || self.max_history_ticks > Self::MAX_HISTORY_TICKS {
            return Err(LagCompensationConfigError {
                field: "max_history_ticks",
                reason: "must be in 1..=4096",
            });
        }
        if self.max_history_ticks < self.required_history_ticks() {
            return Err(LagCompensationConfigError {
                field: "max_history_ticks",
                reason: "must cover max_rewind_ms at tick_rate plus two ticks",
            });
        }
        if self.max_entities == 0 {
            return Err(LagCompensationConfigError {
                field: "max_entities",
                reason: "must be above 0",
            });
        }
        Ok(())
    }
}

impl Default for LagCompensationConfig {
    fn default() -> Self {
        LagCompensationConfig {
            tick_rate: TickRate::default(),
            max_history_ticks: 64,
            max_rewind_ms: 400,
            max_entities: 16_384,
        }
    }
}

/// A [`LagCompensationConfig`] field holds a value the history cannot use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid lag compensation config: {field} {reason}")]
pub struct LagCompensationConfigError {
    /// The offending field, as spelled in [`LagCompensationConfig`].
    pub field: &'static str,
    /// Why the value is refused.
    pub reason: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_at_every_rate() {
        for hz in [TickRate::MIN_HZ, 30, TickRate::MAX_HZ] {
            let config = LagCompensationConfig {
                tick_rate: TickRate::new(hz).unwrap(),
                ..LagCompensationConfig::default()
            };
            assert_eq!(config.validate(), Ok(()), "{hz} Hz");
            assert!(
                config.max_history_ticks >= hz,
                "at least a second of history"
            );
        }
    }

    #[test]
    fn validate_names_the_bad_field() {
        let short = LagCompensationConfig {
            tick_rate: TickRate::new(60).unwrap(),
            max_history_ticks: 20,
            ..LagCompensationConfig::default()
        };
        assert_eq!(short.required_history_ticks(), 26);
        assert_eq!(short.validate().unwrap_err().field, "max_history_ticks");
        let huge = LagCompensationConfig {
            max_history_ticks: 5000,
            ..LagCompensationConfig::default()
        };
        assert_eq!(huge.validate().unwrap_err().field, "max_history_ticks");
        let none = LagCompensationConfig {
            max_entities: 0,
            ..LagCompensationConfig::default()
        };
        assert_eq!(none.validate().unwrap_err().field, "max_entities");
        assert!(
            none.validate()
                .unwrap_err()
                .to_string()
                .contains("max_entities")
        );
    }
}
