//! Link conditioner configuration, presets and validation.

use std::fmt;

/// Burst loss by a Gilbert-Elliott two-state model.
///
/// Before each packet the link may change state: from Good to Bad with `p_enter_bad`, from
/// Bad back to Good with `p_exit_bad`. In Good the packet is lost with
/// [`LinkConfig::loss_probability`], in Bad with `loss_in_bad`. The mean length of a Bad
/// period is `1 / p_exit_bad` packets, so losses cluster into runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurstLoss {
    /// Probability per packet of moving from Good to Bad, `[0, 1]`.
    pub p_enter_bad: f64,
    /// Probability per packet of moving from Bad to Good, `(0, 1]` (0 would never recover).
    pub p_exit_bad: f64,
    /// Loss probability while in the Bad state, `[0, 1]`.
    pub loss_in_bad: f64,
}

/// Configuration of one direction of a simulated link.
///
/// Effects are applied in this order to each sent packet: bandwidth queue (tail drop when the
/// queue is full), in-flight bound, random/burst loss, delay (`latency_us` + uniform jitter
/// in `[0, jitter_us]` + `reorder_extra_us` for explicitly reordered packets), duplication
/// (the copy gets its own jitter). Jitter larger than the packet spacing reorders packets
/// naturally.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way latency, microseconds. No packet arrives sooner than this after it was
    /// sent.
    pub latency_us: u64,
    /// Maximum random extra delay, microseconds; each packet draws uniformly from
    /// `[0, jitter_us]`.
    pub jitter_us: u64,
    /// Independent loss probability per packet (in the Good state when `burst` is set),
    /// `[0, 1]`.
    pub loss_probability: f64,
    /// Optional burst loss model; `None` means independent losses only.
    pub burst: Option<BurstLoss>,
    /// Probability that a delivered packet is delivered twice, `[0, 1]`.
    pub duplicate_probability: f64,
    /// Probability that a packet is held back by `reorder_extra_us`, `[0, 1]`.
    pub reorder_probability: f64,
    /// Extra delay of explicitly reordered packets, microseconds. Must be non-zero when
    /// `reorder_probability` is non-zero.
    pub reorder_extra_us: u64,
    /// Optional bandwidth cap, bytes per second (non-zero). Packets are serialized one after
    /// another at this rate, which adds queueing delay.
    pub bandwidth_bytes_per_s: Option<u64>,
    /// Bytes the bandwidth queue holds before tail-dropping; only used with a bandwidth cap.
    pub max_queue_bytes: usize,
    /// Bound on packets in flight (memory bound); further packets are dropped and counted in
    /// [`super::LinkStats::dropped_queue`]. Non-zero.
    pub max_in_flight_packets: usize,
}

impl LinkConfig {
    /// Zero latency, no loss, no jitter, no cap: packets come out in order at the time sent.
    #[must_use]
    pub fn perfect() -> Self {
        LinkConfig {
            latency_us: 0,
            jitter_us: 0,
            loss_probability: 0.0,
            burst: None,
            duplicate_probability: 0.0,
            reorder_probability: 0.0,
            reorder_extra_us: 0,
            bandwidth_bytes_per_s: None,
            max_queue_bytes: 1 << 20,
            max_in_flight_packets: 1 << 16,
        }
    }

    /// A local network: 250 µs latency, 100 µs jitter, no loss.
    #[must_use]
    pub fn lan() -> Self {
        LinkConfig {
            latency_us: 250,
            jitter_us: 100,
            ..Self::perfect()
        }
    }

    /// A good home connection to a nearby data centre: 20 ms latency, 3 ms jitter, 0.1 %
    /// loss.
    #[must_use]
    pub fn broadband() -> Self {
        LinkConfig {
            latency_us: 20_000,
            jitter_us: 3_000,
            loss_probability: 0.001,
            ..Self::perfect()
        }
    }

    /// A poor mobile connection: 80 ms latency, 40 ms jitter, 2 % loss plus bursts (mean run
    /// of 4 packets at 50 % loss), 0.5 % duplication, 1 % held back by 30 ms, 128 kB/s with a
    /// 64 KiB queue.
    #[must_use]
    pub fn bad_mobile() -> Self {
        LinkConfig {
            latency_us: 80_000,
            jitter_us: 40_000,
            loss_probability: 0.02,
            burst: Some(BurstLoss {
                p_enter_bad: 0.01,
                p_exit_bad: 0.25,
                loss_in_bad: 0.5,
            }),
            duplicate_probability: 0.005,
            reorder_probability: 0.01,
            reorder_extra_us: 30_000,
            bandwidth_bytes_per_s: Some(128_000),
            max_queue_bytes: 64 * 1024,
            max_in_flight_packets: 1 << 16,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), LinkConfigError> {
        check_probability("loss_probability", self.loss_probability)?;
        check_probability("duplicate_probability", self.duplicate_probability)?;
        check_probability("reorder_probability", self.reorder_probability)?;
        if let Some(burst) = &self.burst {
            check_probability("burst.p_enter_bad", burst.p_enter_bad)?;
            check_probability("burst.p_exit_bad", burst.p_exit_bad)?;
            check_probability("burst.loss_in_bad", burst.loss_in_bad)?;
            if burst.p_exit_bad == 0.0 {
                return Err(LinkConfigError {
                    field: "burst.p_exit_bad",
                    reason: "must be above 0, or the link never leaves the bad state",
                });
            }
        }
        if self.reorder_probability > 0.0 && self.reorder_extra_us == 0 {
            return Err(LinkConfigError {
                field: "reorder_extra_us",
                reason: "must be above 0 when reorder_probability is above 0",
            });
        }
        if self.bandwidth_bytes_per_s == Some(0) {
            return Err(LinkConfigError {
                field: "bandwidth_bytes_per_s",
                reason: "must be above 0 (use None for no cap)",
            });
        }
        if self.bandwidth_bytes_per_s.is_some() && self.max_queue_bytes == 0 {
            return Err(LinkConfigError {
                field: "max_queue_bytes",
                reason: "must be above 0 when a bandwidth cap is set",
            });
        }
        if self.max_in_flight_packets == 0 {
            return Err(LinkConfigError {
                field: "max_in_flight_packets",
                reason: "must be above 0",
            });
        }
        // Keep delivery times far from u64::MAX so `now_us + delay` cannot overflow in any
        // realistic run (an hour of delay is already absurd for a link).
        const MAX_DELAY_US: u64 = 3_600_000_000;
        for (field, value) in [
            ("latency_us", self.latency_us),
            ("jitter_us", self.jitter_us),
            ("reorder_extra_us", self.reorder_extra_us),
        ] {
            if value > MAX_DELAY_US {
                return Err(LinkConfigError {
                    field,
                    reason: "must be at most one hour",
                });
            }
        }
        Ok(())
    }
}

impl Default for LinkConfig {
    /// [`LinkConfig::perfect`].
    fn default() -> Self {
        Self::perfect()
    }
}

fn check_probability(field: &'static str, p: f64) -> Result<(), LinkConfigError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(LinkConfigError {
            field,
            reason: "must be a probability in [0, 1]",
        })
    }
}

/// A [`LinkConfig`] field holds a value the conditioner cannot use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkConfigError {
    /// The offending field, as spelled in [`LinkConfig`] (`burst.` prefix for [`BurstLoss`]).
    pub field: &'static str,
    /// Why the value is refused.
    pub reason: &'static str,
}

impl fmt::Display for LinkConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid link config: {} {}", self.field, self.reason)
    }
}

impl std::error::Error for LinkConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for config in [
            LinkConfig::perfect(),
            LinkConfig::lan(),
            LinkConfig::broadband(),
            LinkConfig::bad_mobile(),
            LinkConfig::default(),
        ] {
            assert_eq!(config.validate(), Ok(()), "{config:?}");
        }
    }

    #[test]
    fn validate_names_the_bad_field() {
        let bad = LinkConfig {
            loss_probability: 1.5,
            ..LinkConfig::perfect()
        };
        assert_eq!(bad.validate().unwrap_err().field, "loss_probability");
        let nan = LinkConfig {
            duplicate_probability: f64::NAN,
            ..LinkConfig::perfect()
        };
        assert_eq!(nan.validate().unwrap_err().field, "duplicate_probability");
        let reorder = LinkConfig {
            reorder_probability: 0.1,
            ..LinkConfig::perfect()
        };
        assert_eq!(reorder.validate().unwrap_err().field, "reorder_extra_us");
        let stuck = LinkConfig {
            burst: Some(BurstLoss {
                p_enter_bad: 0.1,
                p_exit_bad: 0.0,
                loss_in_bad: 1.0,
            }),
            ..LinkConfig::perfect()
        };
        assert_eq!(stuck.validate().unwrap_err().field, "burst.p_exit_bad");
        let cap = LinkConfig {
            bandwidth_bytes_per_s: Some(0),
            ..LinkConfig::perfect()
        };
        assert_eq!(cap.validate().unwrap_err().field, "bandwidth_bytes_per_s");
        let flight = LinkConfig {
            max_in_flight_packets: 0,
            ..LinkConfig::perfect()
        };
        assert_eq!(
            flight.validate().unwrap_err().field,
            "max_in_flight_packets"
        );
        let msg = bad.validate().unwrap_err().to_string();
        assert!(msg.contains("loss_probability"), "{msg}");
    }
}
