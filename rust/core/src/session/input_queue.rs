//! The server's per-client queue of received movement inputs.
//!
//! Inputs arrive redundantly (each datagram repeats the unacknowledged ones), late, duplicated
//! or reordered. The queue keeps each input sequence number once, in order, and hands the zone
//! at most a few per tick. The character is stepped exactly once per input, in sequence order:
//! the server state after input `n` is the result of inputs `1..=n`, which is what the client
//! predicted, so legal inputs never cause a correction however the network behaves. A missing
//! input (lost in every redundant copy) is skipped once the queue holds later inputs past a
//! bounded wait, so one loss cannot stall the character.
//!
//! **Depth.** One input per tick keeps a character's motion even, so the queue absorbs
//! delivery jitter: two inputs landing in one tick wait one tick each. But inputs arrive one
//! per tick on average, so a queue that once held one more input than it consumed keeps it
//! until a late delivery uses it up: meanwhile every input waits a tick longer (33 ms at
//! 30 Hz) without absorbing any jitter. Behind a relay that bunches deliveries this cost
//! about half the fleet's inputs a tick (`docs/performance.md`, "Fleet capacity"). So a queue
//! that still holds an input after every tick for [`InputQueueConfig::drain_after_ticks`]
//! ticks in a row takes one extra input in the next tick (a *drain*); a queue that runs
//! empty at least once in that many ticks is absorbing jitter and is left alone. Past
//! [`InputQueueConfig::target_depth`] it catches up faster (a delay spike), and that is not
//! a drain.
//!
//! Ticks spent waiting for a missing input count as ticks that left an input behind; a
//! drain due while the front is still a gap takes nothing and starts the count again. When
//! a drain takes the input before a gap, the wait for the gap starts in that tick, as after
//! any other take.
//!
//! A tick that takes no input although the connection is active is *starved*
//! ([`InputQueue::starved_ticks`]): the character stands still for that tick. A client
//! sends one input per tick, so starved ticks measure the hitches that delivery jitter (and
//! a drain that was premature) cost.

use std::collections::VecDeque;

use crate::input::MoveInput;

/// Tuning of an [`InputQueue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InputQueueConfig {
    /// Most inputs held; anything beyond is dropped (a flooding client gains nothing).
    pub capacity: usize,
    /// Most inputs consumed in one tick when the queue has fallen behind (catch-up after a
    /// delay spike). 1 means never catch up; the input-rate validation bounds the long run.
    pub max_per_tick: usize,
    /// Queue depth above which the zone consumes more than one input per tick.
    pub target_depth: usize,
    /// Ticks to wait for a missing sequence number before skipping over it.
    pub gap_wait_ticks: u32,
    /// Ticks in a row with an input left after the tick's take, after which the next tick
    /// takes one input more (a standing backlog is latency without benefit, see the module
    /// docs); 0 never drains it. Draining needs `max_per_tick >= 2`.
    pub drain_after_ticks: u32,
}

impl Default for InputQueueConfig {
    fn default() -> Self {
        InputQueueConfig {
            capacity: 64,
            max_per_tick: 3,
            target_depth: 2,
            gap_wait_ticks: 4,
            drain_after_ticks: 30,
        }
    }
}

/// What [`InputQueue::insert`] did with an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Newly queued.
    Queued,
    /// Already queued or already consumed: a redundant copy, not an error.
    Duplicate,
    /// The queue is full; the input was dropped.
    Overflow,
}

/// Received inputs in sequence order, and the sequence number of the last one consumed.
///
/// Invariants: `pending` is sorted by sequence with no duplicates, every entry is greater
/// than `last_consumed_seq`, and `pending.len() <= config.capacity`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct InputQueue {
    config: InputQueueConfig,
    pending: VecDeque<(u32, MoveInput)>,
    last_consumed_seq: u32,
    gap_waited_ticks: u32,
    skipped_inputs: u64,
    /// Ticks in a row whose take left an input behind.
    ticks_not_emptied: u32,
    /// Extra inputs taken to drain a standing backlog, since creation.
    drained_inputs: u64,
    /// Ticks that took no input, since creation.
    starved_ticks: u64,
}

impl InputQueue {
    /// An empty queue expecting input sequence 1 next.
    #[must_use]
    pub fn new(config: InputQueueConfig) -> Self {
        InputQueue {
            config,
            pending: VecDeque::with_capacity(config.capacity),
            last_consumed_seq: 0,
            gap_waited_ticks: 0,
            skipped_inputs: 0,
            ticks_not_emptied: 0,
            drained_inputs: 0,
            starved_ticks: 0,
        }
    }

    /// Queues one received input.
    pub fn insert(&mut self, seq: u32, input: MoveInput) -> Inserted {
        if seq <= self.last_consumed_seq {
            return Inserted::Duplicate;
        }
        let at = self.pending.partition_point(|&(s, _)| s < seq);
        if self.pending.get(at).is_some_and(|&(s, _)| s == seq) {
            return Inserted::Duplicate;
        }
        if self.pending.len() >= self.config.capacity {
            return Inserted::Overflow;
        }
        self.pending.insert(at, (seq, input));
        Inserted::Queued
    }

    /// Takes the inputs to simulate this tick (in order) into `out`, cleared first.
    pub fn take_for_tick(&mut self, out: &mut Vec<(u32, MoveInput)>) {
        out.clear();
        let standing = self.config.drain_after_ticks > 0
            && self.ticks_not_emptied >= self.config.drain_after_ticks;
        let catching_up = self.pending.len() > self.config.target_depth;
        let drain = standing && !catching_up;
        let budget = if catching_up {
            self.config.max_per_tick
        } else if drain {
            self.config.max_per_tick.min(2)
        } else {
            1
        };
        while out.len() < budget {
            let Some(&(seq, input)) = self.pending.front() else {
                break;
            };
            if seq != self.last_consumed_seq.wrapping_add(1) {
                // A gap: wait a little for the missing input, then skip over it.
                if self.gap_waited_ticks < self.config.gap_wait_ticks {
                    self.gap_waited_ticks += 1;
                    break;
                }
                self.skipped_inputs += u64::from(seq - self.last_consumed_seq - 1);
            }
            self.gap_waited_ticks = 0;
            self.pending.pop_front();
            self.last_consumed_seq = seq;
            out.push((seq, input));
        }
        if standing {
            self.ticks_not_emptied = 0;
        }
        if drain && out.len() == 2 {
            self.drained_inputs += 1;
        }
        if out.is_empty() {
            self.starved_ticks += 1;
        }
        if self.pending.is_empty() {
            self.ticks_not_emptied = 0;
        } else {
            self.ticks_not_emptied = self.ticks_not_emptied.saturating_add(1);
        }
    }

    /// Sequence number of the last input simulated (0 before the first).
    #[must_use]
    pub fn last_consumed_seq(&self) -> u32 {
        self.last_consumed_seq
    }

    /// Inputs waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Inputs never received and skipped over, since creation.
    #[must_use]
    pub fn skipped_inputs(&self) -> u64 {
        self.skipped_inputs
    }

    /// Extra inputs taken to drain a standing backlog (see the module docs), since creation.
    #[must_use]
    pub fn drained_inputs(&self) -> u64 {
        self.drained_inputs
    }

    /// Ticks that took no input (see the module docs), since creation.
    #[must_use]
    pub fn starved_ticks(&self) -> u64 {
        self.starved_ticks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(n: i8) -> MoveInput {
        MoveInput {
            forward_q: n,
            ..Default::default()
        }
    }

    fn take(q: &mut InputQueue) -> Vec<u32> {
        let mut out = Vec::new();
        q.take_for_tick(&mut out);
        out.into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn redundant_and_reordered_copies_are_kept_once_in_order() {
        let mut q = InputQueue::new(InputQueueConfig::default());
        assert_eq!(q.insert(2, input(2)), Inserted::Queued);
        assert_eq!(q.insert(1, input(1)), Inserted::Queued);
        assert_eq!(q.insert(2, input(2)), Inserted::Duplicate);
        assert_eq!(take(&mut q), vec![1]);
        assert_eq!(
            q.insert(1, input(1)),
            Inserted::Duplicate,
            "already consumed"
        );
        assert_eq!(take(&mut q), vec![2]);
        assert_eq!(take(&mut q), Vec::<u32>::new());
        assert_eq!(q.last_consumed_seq(), 2);
    }

    /// Feeds one input per tick after a head start of `backlog`, for `ticks` ticks; the
    /// inputs each tick took.
    fn steady(q: &mut InputQueue, backlog: u32, ticks: u32) -> Vec<Vec<u32>> {
        let mut next = 1;
        for _ in 0..backlog {
            q.insert(next, input(0));
            next += 1;
        }
        (0..ticks)
            .map(|_| {
                q.insert(next, input(0));
                next += 1;
                take(q)
            })
            .collect()
    }

    #[test]
    fn a_standing_backlog_is_drained_after_drain_after_ticks() {
        let config = InputQueueConfig {
            drain_after_ticks: 5,
            ..Default::default()
        };
        let mut q = InputQueue::new(config);
        // One input ahead, then one per tick: without draining, each waits a tick.
        let taken = steady(&mut q, 1, 12);
        // Five ticks leave an input behind; the sixth takes two; then none is left.
        assert!(taken[..5].iter().all(|t| t.len() == 1), "{taken:?}");
        assert_eq!(taken[5], vec![6, 7]);
        assert!(taken[6..].iter().all(|t| t.len() == 1), "{taken:?}");
        assert!(q.is_empty());
        assert_eq!(q.drained_inputs(), 1);
        // Every input taken once, in order.
        let all: Vec<u32> = taken.into_iter().flatten().collect();
        assert_eq!(all, (1..=13).collect::<Vec<u32>>());
    }

    #[test]
    fn a_queue_that_runs_empty_is_left_alone_and_draining_can_be_off() {
        let config = InputQueueConfig {
            drain_after_ticks: 3,
            ..Default::default()
        };
        let mut q = InputQueue::new(config);
        // Jitter: two inputs in one tick, none in the next, over and over. The queue runs
        // empty every other tick, so the spare input is absorbing jitter: no drain.
        let mut next = 1;
        for _ in 0..20 {
            q.insert(next, input(0));
            q.insert(next + 1, input(0));
            next += 2;
            assert_eq!(take(&mut q).len(), 1);
            assert_eq!(take(&mut q).len(), 1);
        }
        assert_eq!(q.drained_inputs(), 0);
        // drain_after_ticks 0, or max_per_tick 1: a standing backlog stays.
        for config in [
            InputQueueConfig {
                drain_after_ticks: 0,
                ..Default::default()
            },
            InputQueueConfig {
                drain_after_ticks: 3,
                max_per_tick: 1,
                ..Default::default()
            },
        ] {
            let mut q = InputQueue::new(config);
            let taken = steady(&mut q, 1, 20);
            assert!(taken.iter().all(|t| t.len() == 1), "{config:?}: {taken:?}");
            assert_eq!(q.len(), 1, "{config:?}");
        }
    }

    #[test]
    fn a_drain_due_on_a_gap_takes_nothing_and_catch_up_is_not_a_drain() {
        let config = InputQueueConfig {
            drain_after_ticks: 2,
            gap_wait_ticks: 4,
            ..Default::default()
        };
        let mut q = InputQueue::new(config);
        // Input 1 is lost; 2 waits at the front.
        q.insert(2, input(0));
        assert_eq!(take(&mut q), Vec::<u32>::new());
        assert_eq!(take(&mut q), Vec::<u32>::new());
        // The drain is due, but the front is a gap: nothing taken, nothing counted.
        assert_eq!(take(&mut q), Vec::<u32>::new());
        assert_eq!(q.drained_inputs(), 0);
        assert_eq!(q.starved_ticks(), 3);
        // The wait ends after 4 ticks as without draining; 1 is skipped.
        assert_eq!(take(&mut q), Vec::<u32>::new());
        assert_eq!(take(&mut q), vec![2]);
        assert_eq!(q.skipped_inputs(), 1);

        // Catch-up past the target depth takes up to 3, and is not counted as a drain.
        let mut q = InputQueue::new(InputQueueConfig {
            drain_after_ticks: 1,
            max_per_tick: 2,
            ..Default::default()
        });
        for s in 1..=6 {
            q.insert(s, input(0));
        }
        assert_eq!(take(&mut q), vec![1, 2]);
        assert_eq!(take(&mut q), vec![3, 4]);
        assert_eq!(q.drained_inputs(), 0);
        // Two left, at the target depth: the standing backlog is drained now.
        assert_eq!(take(&mut q), vec![5, 6]);
        assert_eq!(q.drained_inputs(), 1);
        assert_eq!(q.starved_ticks(), 0);
    }

    #[test]
    fn catches_up_when_behind_but_bounded_per_tick() {
        let mut q = InputQueue::new(InputQueueConfig::default());
        for s in 1..=10 {
            q.insert(s, input(0));
        }
        assert_eq!(take(&mut q), vec![1, 2, 3]);
        assert_eq!(take(&mut q), vec![4, 5, 6]);
        assert_eq!(take(&mut q), vec![7, 8, 9]);
        assert_eq!(
            take(&mut q),
            vec![10],
            "at or below target depth: one per tick"
        );
    }

    #[test]
    fn a_lost_input_is_waited_for_then_skipped() {
        let config = InputQueueConfig {
            gap_wait_ticks: 2,
            ..Default::default()
        };
        let mut q = InputQueue::new(config);
        q.insert(1, input(0));
        assert_eq!(take(&mut q), vec![1]);
        q.insert(3, input(0));
        assert!(take(&mut q).is_empty());
        assert!(take(&mut q).is_empty());
        assert_eq!(take(&mut q), vec![3]);
        assert_eq!(q.skipped_inputs(), 1);
        // The late copy of 2 is now a duplicate.
        assert_eq!(q.insert(2, input(0)), Inserted::Duplicate);
    }

    #[test]
    fn a_late_input_arriving_within_the_wait_fills_the_gap() {
        let mut q = InputQueue::new(InputQueueConfig::default());
        q.insert(2, input(0));
        assert!(take(&mut q).is_empty());
        q.insert(1, input(0));
        assert_eq!(take(&mut q), vec![1]);
        assert_eq!(take(&mut q), vec![2]);
        assert_eq!(q.skipped_inputs(), 0);
    }

    #[test]
    fn flooding_is_bounded() {
        let config = InputQueueConfig {
            capacity: 4,
            ..Default::default()
        };
        let mut q = InputQueue::new(config);
        for s in 1..=4 {
            assert_eq!(q.insert(s, input(0)), Inserted::Queued);
        }
        assert_eq!(q.insert(5, input(0)), Inserted::Overflow);
        assert_eq!(q.len(), 4);
    }
}
