//! A per-client byte budget: a token bucket refilled once per tick.
//!
//! Tokens are counted in `bytes × tick_hz` so the per-tick refill `budget_bytes_per_s /
//! tick_hz` is exact even when it is not a whole number of bytes (10,000 B/s at 30 Hz is
//! 333⅓ B per tick). Unused tokens carry over for at most `max_carry_ticks` ticks' worth, so
//! a quiet tick does not allow a large burst. A datagram larger than the available tokens
//! puts the bucket in debt, repaid by later refills, so the long-run rate never exceeds the
//! budget: over any run starting at an empty bucket, bytes spent <= ticks ×
//! budget_bytes_per_s / tick_hz + one tick's overshoot still owed. The zone holds a
//! snapshot's datagram to the available bytes when adding records
//! (`SnapshotIn::len_limit_bytes`), so only the fixed part (header, owner state, leaves)
//! of a snapshot sent with fewer bytes available than that part overshoots; over a window
//! that starts with tokens carried over, up to `max_carry_ticks` ticks' refill more can
//! be spent.

use crate::time::{Tick, TickRate};

/// Token bucket of one client. Invariant: `tokens_scaled <= capacity_scaled`.
#[derive(Clone, Debug)]
pub struct ByteBudget {
    /// Refill per tick in scaled units (bytes × tick_hz) = bytes per second.
    refill_scaled: i64,
    /// Largest balance, scaled.
    capacity_scaled: i64,
    /// Current balance, scaled; negative while in debt.
    tokens_scaled: i64,
    tick_hz: i64,
    last_refill: Option<Tick>,
}

impl ByteBudget {
    /// An empty bucket for `budget_bytes_per_s` that may carry the unused refill of at most
    /// `max_carry_ticks` ticks.
    #[must_use]
    pub fn new(budget_bytes_per_s: u32, max_carry_ticks: u32, tick_rate: TickRate) -> Self {
        let refill_scaled = i64::from(budget_bytes_per_s);
        ByteBudget {
            refill_scaled,
            capacity_scaled: refill_scaled * (1 + i64::from(max_carry_ticks)),
            tokens_scaled: 0,
            tick_hz: i64::from(tick_rate.hz()),
            last_refill: None,
        }
    }

    /// Adds the refill of the ticks elapsed since the last refill (one tick on the first
    /// call; none if `tick` was already refilled) and returns the bytes available now.
    pub fn refill(&mut self, tick: Tick) -> u32 {
        let elapsed = match self.last_refill {
            Some(last) => tick.since(last),
            None => 1,
        };
        if elapsed > 0 {
            self.last_refill = Some(tick);
            let added = self.refill_scaled.saturating_mul(i64::from(elapsed));
            self.tokens_scaled = self
                .tokens_scaled
                .saturating_add(added)
                .min(self.capacity_scaled);
        }
        self.available_bytes()
    }

    /// Bytes that may be sent now (zero while in debt).
    #[must_use]
    pub fn available_bytes(&self) -> u32 {
        (self.tokens_scaled.max(0) / self.tick_hz).min(i64::from(u32::MAX)) as u32
    }

    /// Records `bytes` as sent. Spending more than is available creates a debt.
    pub fn spend(&mut self, bytes: u32) {
        self.tokens_scaled = self
            .tokens_scaled
            .saturating_sub(i64::from(bytes) * self.tick_hz);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refill_is_exact_over_a_second() {
        let mut b = ByteBudget::new(10_000, 1_000, TickRate::DEFAULT);
        for t in 0..30 {
            b.refill(Tick(t));
        }
        assert_eq!(b.available_bytes(), 10_000);
    }

    #[test]
    fn carry_is_bounded() {
        let mut b = ByteBudget::new(3_000, 2, TickRate::DEFAULT);
        assert_eq!(b.refill(Tick(0)), 100);
        assert_eq!(b.refill(Tick(100)), 300, "at most 1 + 2 ticks' worth");
    }

    #[test]
    fn overshoot_is_repaid() {
        let mut b = ByteBudget::new(3_000, 2, TickRate::DEFAULT);
        assert_eq!(b.refill(Tick(0)), 100);
        b.spend(250);
        assert_eq!(b.refill(Tick(1)), 0);
        assert_eq!(b.refill(Tick(2)), 50);
    }
}
