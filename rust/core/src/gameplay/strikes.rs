//! The anti-cheat strike counter of one player: every rejection the server treats as a
//! likely cheat adds a strike, strikes are forgiven slowly, and a player above the threshold
//! is kicked.
//!
//! Forgiveness keeps honest players safe from rare false positives (an input burst after a
//! network stall, a request that raced a cooldown): one strike is forgiven per
//! `forgive_interval_ms` without new strikes, so only a sustained pattern reaches the
//! threshold. Sans-IO: time is `now_ms`.

/// Strike policy, shared by every player of a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrikeConfig {
    /// A player whose strikes exceed this is kicked; `0` disables kicking (strikes are still
    /// counted and reported).
    pub kick_above: u32,
    /// One strike is forgiven per this many milliseconds; `0` never forgives.
    pub forgive_interval_ms: u32,
}

impl Default for StrikeConfig {
    fn default() -> Self {
        StrikeConfig {
            kick_above: 20,
            forgive_interval_ms: 5_000,
        }
    }
}

/// What adding a strike decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrikeOutcome {
    /// Strikes after this one.
    pub strikes: u32,
    /// True when the player must be kicked now.
    pub kick: bool,
}

/// One player's strikes. Invariant: `last_forgive_ms <= ` the newest `now_ms` seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StrikeCounter {
    strikes: u32,
    /// Forgiveness is counted from here.
    last_forgive_ms: u64,
    /// Strikes ever added (never forgiven), for logs and tests.
    total: u64,
    /// When the last throttled strike was added ([`StrikeCounter::strike_throttled`]).
    last_throttled_ms: Option<u64>,
}

impl StrikeCounter {
    /// A clean record starting at `now_ms`.
    #[must_use]
    pub fn new(now_ms: u64) -> Self {
        StrikeCounter {
            strikes: 0,
            last_forgive_ms: now_ms,
            total: 0,
            last_throttled_ms: None,
        }
    }

    /// Current strikes after forgiveness up to `now_ms`.
    #[must_use]
    pub fn current(&self, config: &StrikeConfig, now_ms: u64) -> u32 {
        let mut copy = *self;
        copy.forgive(config, now_ms);
        copy.strikes
    }

    /// Strikes ever added.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.total
    }

    fn forgive(&mut self, config: &StrikeConfig, now_ms: u64) {
        if config.forgive_interval_ms == 0 || now_ms <= self.last_forgive_ms {
            return;
        }
        let interval_ms = u64::from(config.forgive_interval_ms);
        let periods = (now_ms - self.last_forgive_ms) / interval_ms;
        if self.strikes == 0 {
            self.last_forgive_ms = now_ms;
            return;
        }
        let forgiven = u32::try_from(periods).unwrap_or(u32::MAX);
        self.strikes = self.strikes.saturating_sub(forgiven);
        self.last_forgive_ms += periods * interval_ms;
    }

    /// Adds a strike at `now_ms` and says whether the player must be kicked.
    pub fn strike(&mut self, config: &StrikeConfig, now_ms: u64) -> StrikeOutcome {
        self.forgive(config, now_ms);
        if self.strikes == 0 {
            // Forgiveness of the next strike counts from the first one.
            self.last_forgive_ms = now_ms;
        }
        self.strikes = self.strikes.saturating_add(1);
        self.total += 1;
        StrikeOutcome {
            strikes: self.strikes,
            kick: config.kick_above > 0 && self.strikes > config.kick_above,
        }
    }
}

impl StrikeCounter {
    /// Like [`StrikeCounter::strike`], but at most one such strike per `min_gap_ms`
    /// (`None` when throttled). For checks where one misbehaviour produces a burst of
    /// rejections, e.g. an input-rate burst after an honest client's stall: the burst
    /// counts once, a sustained speed hack still adds a strike per gap.
    pub fn strike_throttled(
        &mut self,
        config: &StrikeConfig,
        now_ms: u64,
        min_gap_ms: u64,
    ) -> Option<StrikeOutcome> {
        if self
            .last_throttled_ms
            .is_some_and(|last| now_ms < last.saturating_add(min_gap_ms))
        {
            return None;
        }
        self.last_throttled_ms = Some(now_ms);
        Some(self.strike(config, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: StrikeConfig = StrikeConfig {
        kick_above: 3,
        forgive_interval_ms: 1000,
    };

    #[test]
    fn a_burst_above_the_threshold_kicks() {
        let mut c = StrikeCounter::new(0);
        for expected in 1..=3 {
            let out = c.strike(&CONFIG, 10);
            assert_eq!(out.strikes, expected);
            assert!(!out.kick);
        }
        let out = c.strike(&CONFIG, 10);
        assert_eq!(out.strikes, 4);
        assert!(out.kick);
        assert_eq!(c.total(), 4);
    }

    #[test]
    fn slow_strikes_are_forgiven_and_never_kick() {
        let mut c = StrikeCounter::new(0);
        for i in 0..100u64 {
            let out = c.strike(&CONFIG, 5_000 + i * 1_000);
            assert!(!out.kick, "strike {i} kicked: {out:?}");
            assert_eq!(out.strikes, 1, "each strike is forgiven before the next");
        }
        assert_eq!(c.total(), 100);
        assert_eq!(c.current(&CONFIG, 200_000), 0);
    }

    #[test]
    fn forgiveness_is_one_per_interval() {
        let mut c = StrikeCounter::new(0);
        for _ in 0..3 {
            c.strike(&CONFIG, 100);
        }
        assert_eq!(c.current(&CONFIG, 1_099), 3);
        assert_eq!(c.current(&CONFIG, 1_100), 2);
        assert_eq!(c.current(&CONFIG, 3_100), 0);
    }

    #[test]
    fn throttled_strikes_count_a_burst_once() {
        let mut c = StrikeCounter::new(0);
        assert_eq!(
            c.strike_throttled(&CONFIG, 100, 1000).map(|o| o.strikes),
            Some(1)
        );
        for t in [100, 200, 1099] {
            assert_eq!(c.strike_throttled(&CONFIG, t, 1000), None);
        }
        assert_eq!(
            c.strike_throttled(&CONFIG, 1100, 1000).map(|o| o.strikes),
            Some(1)
        );
        assert_eq!(c.total(), 2);
    }

    #[test]
    fn zero_threshold_counts_but_never_kicks() {
        let config = StrikeConfig {
            kick_above: 0,
            forgive_interval_ms: 0,
        };
        let mut c = StrikeCounter::new(0);
        for _ in 0..1000 {
            assert!(!c.strike(&config, 1).kick);
        }
        assert_eq!(c.current(&config, u64::MAX), 1000);
    }
}
