//! A token bucket with time as an argument: `burst` tokens at most, refilled at
//! `refill_per_s` tokens per second. Used for handshakes per address (the gateway) and for
//! datagrams per connection (the server's connection tasks).

/// Scale of the token counts: one token is this many micro-tokens, so a refill of `r`
/// tokens per second adds exactly `r` micro-tokens per microsecond.
const MICRO_TOKENS_PER_TOKEN: u64 = 1_000_000;

/// See the module docs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenBucket {
    /// Tokens, in micro-tokens; at most `burst * MICRO_TOKENS_PER_TOKEN`.
    micro_tokens: u64,
    /// When `micro_tokens` was last brought up to date.
    updated_us: u64,
    /// `burst * MICRO_TOKENS_PER_TOKEN`.
    full: u64,
    refill_per_s: u64,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens (at least 1) refilling at `refill_per_s` (at least 1).
    pub(crate) fn new(burst: u32, refill_per_s: u32, now_us: u64) -> Self {
        let full = u64::from(burst.max(1)) * MICRO_TOKENS_PER_TOKEN;
        TokenBucket {
            micro_tokens: full,
            updated_us: now_us,
            full,
            refill_per_s: u64::from(refill_per_s.max(1)),
        }
    }

    /// Takes one token at `now_us`; false when none is left. Time going backwards adds
    /// nothing.
    pub(crate) fn take(&mut self, now_us: u64) -> bool {
        let elapsed_us = now_us.saturating_sub(self.updated_us);
        self.micro_tokens = self
            .micro_tokens
            .saturating_add(elapsed_us.saturating_mul(self.refill_per_s))
            .min(self.full);
        self.updated_us = self.updated_us.max(now_us);
        if self.micro_tokens >= MICRO_TOKENS_PER_TOKEN {
            self.micro_tokens -= MICRO_TOKENS_PER_TOKEN;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_refill_rate_and_no_credit_for_time_going_back() {
        let mut b = TokenBucket::new(3, 2, 1_000);
        assert!(b.take(1_000) && b.take(1_000) && b.take(1_000));
        assert!(!b.take(1_000));
        // Half a second at 2/s is one token.
        assert!(b.take(501_000));
        assert!(!b.take(501_000));
        assert!(!b.take(0), "time going backwards refills nothing");
        // A long pause refills to the burst, not beyond.
        let later = 100_000_000;
        assert!(b.take(later) && b.take(later) && b.take(later));
        assert!(!b.take(later));
    }
}
