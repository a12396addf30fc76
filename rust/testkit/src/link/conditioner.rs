//! One direction of a simulated network link, seeded and reproducible.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::{LinkConfig, LinkConfigError};

/// Counters of what a [`LinkConditioner`] did. Every sent packet ends up in exactly one of
/// `lost`, `dropped_queue` or (once it arrives) `delivered`; duplicates add to `delivered`
/// and `duplicated`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets given to [`LinkConditioner::send`].
    pub sent: u64,
    /// Payload bytes given to [`LinkConditioner::send`].
    pub bytes_sent: u64,
    /// Packets (including duplicate copies) returned by [`LinkConditioner::poll_deliver`].
    pub delivered: u64,
    /// Payload bytes returned by [`LinkConditioner::poll_deliver`].
    pub bytes_delivered: u64,
    /// Packets lost at random (independent or burst loss).
    pub lost: u64,
    /// Of `lost`, those lost while the burst model was in its Bad state.
    pub lost_in_burst: u64,
    /// Packets tail-dropped because the bandwidth queue or the in-flight bound was full.
    pub dropped_queue: u64,
    /// Extra copies created by duplication.
    pub duplicated: u64,
    /// Original packets delivered after a packet sent later than them (measured at
    /// delivery, whatever the cause: jitter or explicit hold-back).
    pub reordered: u64,
}

/// A packet on its way. Ordered by delivery time, then by the order it was scheduled, so
/// ties come out first-scheduled-first and runs are reproducible.
#[derive(Debug)]
struct InFlight {
    deliver_at_us: u64,
    schedule_order: u64,
    send_seq: u64,
    is_copy: bool,
    payload: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deliver_at_us, self.schedule_order).cmp(&(other.deliver_at_us, other.schedule_order))
    }
}

/// A one-direction link with latency, jitter, loss, burst loss, duplication, reordering and
/// an optional bandwidth cap, driven by the caller's clock and a seeded ChaCha8 generator.
///
/// The same config, seed and sequence of calls always give the same deliveries. Sans-IO:
/// time is an argument, `now_us` must not decrease between calls (a smaller value is treated
/// as the last one seen).
#[derive(Debug)]
pub struct LinkConditioner {
    config: LinkConfig,
    rng: ChaCha8Rng,
    /// Min-heap by delivery time. Invariant: `len() <= config.max_in_flight_packets`.
    in_flight: BinaryHeap<Reverse<InFlight>>,
    /// True while the burst model is in its Bad state.
    in_bad_state: bool,
    /// Time the bandwidth serializer finishes the last accepted packet; `<=` now when idle.
    busy_until_us: u64,
    /// Latest `now_us` seen, to keep time monotonic.
    last_now_us: u64,
    next_send_seq: u64,
    next_schedule_order: u64,
    /// Highest `send_seq` of an original packet delivered so far.
    highest_delivered_seq: Option<u64>,
    stats: LinkStats,
}

impl LinkConditioner {
    /// A conditioner for `config`, its randomness seeded from `seed`.
    pub fn new(config: LinkConfig, seed: u64) -> Result<Self, LinkConfigError> {
        config.validate()?;
        Ok(LinkConditioner {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            in_flight: BinaryHeap::new(),
            in_bad_state: false,
            busy_until_us: 0,
            last_now_us: 0,
            next_send_seq: 0,
            next_schedule_order: 0,
            highest_delivered_seq: None,
            stats: LinkStats::default(),
        })
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Packets currently in flight (including scheduled duplicates).
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Sends `payload` at `now_us`. It is delivered later, dropped, or duplicated as the
    /// config and the generator decide.
    pub fn send(&mut self, now_us: u64, payload: Vec<u8>) {
        let now_us = self.observe(now_us);
        let len_bytes = payload.len();
        let send_seq = self.next_send_seq;
        self.next_send_seq += 1;
        self.stats.sent += 1;
        self.stats.bytes_sent += len_bytes as u64;

        // Bandwidth: serialize behind whatever is queued, tail-drop when the queue is full.
        let mut departs_at_us = now_us;
        if let Some(rate) = self.config.bandwidth_bytes_per_s {
            let start_us = self.busy_until_us.max(now_us);
            let backlog_us = start_us - now_us;
            let backlog_bytes = u128::from(backlog_us) * u128::from(rate) / 1_000_000;
            if backlog_bytes + len_bytes as u128 > self.config.max_queue_bytes as u128 {
                self.stats.dropped_queue += 1;
                return;
            }
            let transmit_us = (len_bytes as u128 * 1_000_000).div_ceil(u128::from(rate));
            let transmit_us = u64::try_from(transmit_us).unwrap_or(u64::MAX);
            self.busy_until_us = start_us.saturating_add(transmit_us);
            departs_at_us = self.busy_until_us;
        }

        // Loss, with the burst model stepping once per packet.
        let loss_probability = match self.config.burst {
            Some(burst) => {
                let flip = self.rng.random::<f64>();
                if self.in_bad_state {
                    if flip < burst.p_exit_bad {
                        self.in_bad_state = false;
                    }
                } else if flip < burst.p_enter_bad {
                    self.in_bad_state = true;
                }
                if self.in_bad_state {
                    burst.loss_in_bad
                } else {
                    self.config.loss_probability
                }
            }
            None => self.config.loss_probability,
        };
        if self.rng.random::<f64>() < loss_probability {
            self.stats.lost += 1;
            if self.in_bad_state {
                self.stats.lost_in_burst += 1;
            }
            return;
        }

        let held_back = self.config.reorder_probability > 0.0
            && self.rng.random::<f64>() < self.config.reorder_probability;
        let duplicate = self.config.duplicate_probability > 0.0
            && self.rng.random::<f64>() < self.config.duplicate_probability;

        let mut delay_us = self.config.latency_us + self.draw_jitter_us();
        if held_back {
            delay_us += self.config.reorder_extra_us;
        }
        if duplicate {
            let copy_delay_us = self.config.latency_us + self.draw_jitter_us();
            if self.schedule(
                departs_at_us,
                copy_delay_us,
                send_seq,
                true,
                payload.clone(),
            ) {
                self.stats.duplicated += 1;
            }
        }
        self.schedule(departs_at_us, delay_us, send_seq, false, payload);
    }

    /// The next packet due at or before `now_us`, if any. Call until `None` to drain.
    pub fn poll_deliver(&mut self, now_us: u64) -> Option<Vec<u8>> {
        let now_us = self.observe(now_us);
        let due = self
            .in_flight
            .peek()
            .is_some_and(|Reverse(p)| p.deliver_at_us <= now_us);
        if !due {
            return None;
        }
        let Reverse(packet) = self.in_flight.pop()?;
        self.stats.delivered += 1;
        self.stats.bytes_delivered += packet.payload.len() as u64;
        if !packet.is_copy {
            match self.highest_delivered_seq {
                Some(highest) if packet.send_seq < highest => self.stats.reordered += 1,
                _ => self.highest_delivered_seq = Some(packet.send_seq),
            }
        }
        Some(packet.payload)
    }

    /// When the next packet becomes deliverable, or `None` when nothing is in flight.
    #[must_use]
    pub fn next_delivery_us(&self) -> Option<u64> {
        self.in_flight.peek().map(|Reverse(p)| p.deliver_at_us)
    }

    fn observe(&mut self, now_us: u64) -> u64 {
        debug_assert!(
            now_us >= self.last_now_us,
            "link time went backwards: {now_us} < {}",
            self.last_now_us
        );
        self.last_now_us = self.last_now_us.max(now_us);
        self.last_now_us
    }

    fn draw_jitter_us(&mut self) -> u64 {
        if self.config.jitter_us == 0 {
            0
        } else {
            self.rng.random_range(0..=self.config.jitter_us)
        }
    }

    /// Queues a packet; false when the in-flight bound is hit (an original is then counted as
    /// a queue drop, a duplicate copy is simply not made).
    fn schedule(
        &mut self,
        departs_at_us: u64,
        delay_us: u64,
        send_seq: u64,
        is_copy: bool,
        payload: Vec<u8>,
    ) -> bool {
        if self.in_flight.len() >= self.config.max_in_flight_packets {
            if !is_copy {
                self.stats.dropped_queue += 1;
            }
            return false;
        }
        let schedule_order = self.next_schedule_order;
        self.next_schedule_order += 1;
        self.in_flight.push(Reverse(InFlight {
            deliver_at_us: departs_at_us.saturating_add(delay_us),
            schedule_order,
            send_seq,
            is_copy,
            payload,
        }));
        true
    }
}
