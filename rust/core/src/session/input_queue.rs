//! The server's per-client queue of received movement inputs.
//!
//! Inputs arrive redundantly (each datagram repeats the unacknowledged ones), late, duplicated
//! or reordered. The queue keeps each input sequence number once, in order, and hands the zone
//! at most a few per tick. The character is stepped exactly once per input, in sequence order:
//! the server state after input `n` is the result of inputs `1..=n`, which is what the client
//! predicted, so legal inputs never cause a correction however the network behaves. A missing
//! input (lost in every redundant copy) is skipped once the queue holds later inputs past a
//! bounded wait, so one loss cannot stall the character.

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
}

impl Default for InputQueueConfig {
    fn default() -> Self {
        InputQueueConfig {
            capacity: 64,
            max_per_tick: 3,
            target_depth: 2,
            gap_wait_ticks: 4,
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
        let budget = if self.pending.len() > self.config.target_depth {
            self.config.max_per_tick
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
