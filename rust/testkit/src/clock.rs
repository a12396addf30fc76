//! A virtual clock for driving sans-IO code step by step.
//!
//! The core never reads a clock; tests and the harness own time through a [`VirtualClock`]
//! and pass `now_us` into every call. The clock only moves forward.

/// A monotonic virtual clock in microseconds since an arbitrary epoch (the value given to
/// [`VirtualClock::new`], 0 by default).
///
/// Invariant: `now_us` never decreases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtualClock {
    now_us: u64,
}

impl VirtualClock {
    /// A clock reading `start_us`.
    #[must_use]
    pub fn new(start_us: u64) -> Self {
        VirtualClock { now_us: start_us }
    }

    /// The current time in microseconds.
    #[must_use]
    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Moves the clock forward by `delta_us` (saturating at `u64::MAX`) and returns the new
    /// time.
    pub fn advance(&mut self, delta_us: u64) -> u64 {
        self.now_us = self.now_us.saturating_add(delta_us);
        self.now_us
    }

    /// Moves the clock to `target_us` and returns the new time. A target in the past leaves
    /// the clock where it is (the clock never goes backwards), so "advance to the next event
    /// or stay" can be written without a comparison.
    pub fn advance_to(&mut self, target_us: u64) -> u64 {
        self.now_us = self.now_us.max(target_us);
        self.now_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_and_never_goes_back() {
        let mut clock = VirtualClock::new(10);
        assert_eq!(clock.now_us(), 10);
        assert_eq!(clock.advance(5), 15);
        assert_eq!(clock.advance_to(100), 100);
        assert_eq!(clock.advance_to(50), 100);
        assert_eq!(clock.advance(u64::MAX), u64::MAX);
        assert_eq!(VirtualClock::default().now_us(), 0);
    }
}
