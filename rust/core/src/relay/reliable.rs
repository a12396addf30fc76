//! One direction of a connection's reliable stream over at-most-once messaging: items
//! numbered from 0, sent again until acknowledged, delivered in order exactly once.
//!
//! The sender ([`ReliableSender`]) keeps every item not yet acknowledged, at most
//! [`WINDOW_ITEMS`] of them ([`ReliableSender::has_room`] tells the caller to stop taking
//! more: the gateway then stops reading the client's control stream, which pushes back on
//! the client through QUIC flow control; the zone side stops draining the session's outbox,
//! which makes the zone close a session whose control bytes do not fit, as on a single
//! server). [`ReliableSender::poll_transmit`] gives the items never sent and those sent at
//! least `retransmit_after_us` ago. An acknowledgement is cumulative: "every item below
//! `next_seq` arrived".
//!
//! The receiver ([`ReliableReceiver`]) buffers items that arrive early (up to the window),
//! drops duplicates, hands items out in order ([`ReliableReceiver::pop`]) and says when an
//! acknowledgement is due (after any item arrived, duplicates included, so a lost
//! acknowledgement is repaired by the retransmission it causes).
//!
//! No timer lives here: the caller decides how often to poll (the zone side once per
//! tick, the gateway on a short timer) and when the peer is gone
//! ([`ReliableSender::oldest_unacked_age_us`]).

use std::collections::{BTreeMap, VecDeque};

use super::message::{RelayError, StreamItem};

/// Items one direction may have in flight (sent, not acknowledged); the receiver accepts
/// items at most this far ahead of the next one it expects.
pub const WINDOW_ITEMS: u64 = 256;

#[derive(Clone, Debug)]
struct Pending {
    seq: u64,
    item: StreamItem,
    /// When it was last sent (`None`: not yet).
    sent_at_us: Option<u64>,
    /// When it was first sent.
    first_sent_at_us: Option<u64>,
}

/// The sending half; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct ReliableSender {
    next_seq: u64,
    unacked: VecDeque<Pending>,
}

impl ReliableSender {
    /// A sender whose first item is number 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// True while fewer than [`WINDOW_ITEMS`] items wait for their acknowledgement.
    #[must_use]
    pub fn has_room(&self) -> bool {
        (self.unacked.len() as u64) < WINDOW_ITEMS
    }

    /// Queues `item` and returns its number. Callers check [`ReliableSender::has_room`]
    /// first; an item pushed without room is still kept (the window is the receiver's
    /// limit: it may have to wait for a retransmission).
    pub fn push(&mut self, item: StreamItem) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.unacked.push_back(Pending {
            seq,
            item,
            sent_at_us: None,
            first_sent_at_us: None,
        });
        seq
    }

    /// Items pushed so far (the next item's number).
    #[must_use]
    pub fn sent_count(&self) -> u64 {
        self.next_seq
    }

    /// Items acknowledged so far (every item below this number).
    #[must_use]
    pub fn acked_count(&self) -> u64 {
        self.unacked.front().map_or(self.next_seq, |p| p.seq)
    }

    /// True when every pushed item was acknowledged.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.unacked.is_empty()
    }

    /// Forgets every item below `next_seq`.
    ///
    /// # Errors
    /// [`RelayError::AckBeyondSent`] when `next_seq` exceeds the items pushed (the peer is
    /// confused or hostile; nothing is changed).
    pub fn on_ack(&mut self, next_seq: u64) -> Result<(), RelayError> {
        if next_seq > self.next_seq {
            return Err(RelayError::AckBeyondSent {
                next_seq,
                sent: self.next_seq,
            });
        }
        while self.unacked.front().is_some_and(|p| p.seq < next_seq) {
            self.unacked.pop_front();
        }
        Ok(())
    }

    /// Appends to `out` (number, item) for every item never sent or last sent at least
    /// `retransmit_after_us` before `now_us`, oldest first, and marks them sent now.
    pub fn poll_transmit(
        &mut self,
        now_us: u64,
        retransmit_after_us: u64,
        out: &mut Vec<(u64, StreamItem)>,
    ) {
        for p in &mut self.unacked {
            let due = p
                .sent_at_us
                .is_none_or(|at| now_us.saturating_sub(at) >= retransmit_after_us);
            if due {
                p.sent_at_us = Some(now_us);
                p.first_sent_at_us.get_or_insert(now_us);
                out.push((p.seq, p.item.clone()));
            }
        }
    }

    /// How long the oldest unacknowledged item has waited since it was first sent
    /// (`None`: nothing waits). The caller declares the peer gone past its limit.
    #[must_use]
    pub fn oldest_unacked_age_us(&self, now_us: u64) -> Option<u64> {
        self.unacked
            .front()
            .and_then(|p| p.first_sent_at_us)
            .map(|at| now_us.saturating_sub(at))
    }
}

/// The receiving half; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct ReliableReceiver {
    next_seq: u64,
    early: BTreeMap<u64, StreamItem>,
    ack_due: bool,
}

impl ReliableReceiver {
    /// A receiver expecting item 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes item `seq` as received. Duplicates (below the next expected number, or already
    /// buffered) are dropped.
    ///
    /// # Errors
    /// [`RelayError::BeyondWindow`] for an item [`WINDOW_ITEMS`] or more ahead of the next
    /// expected one (dropped; the caller closes the connection).
    pub fn on_item(&mut self, seq: u64, item: StreamItem) -> Result<(), RelayError> {
        self.ack_due = true;
        if seq < self.next_seq {
            return Ok(());
        }
        if seq - self.next_seq >= WINDOW_ITEMS {
            return Err(RelayError::BeyondWindow {
                seq,
                next_seq: self.next_seq,
            });
        }
        self.early.entry(seq).or_insert(item);
        Ok(())
    }

    /// The next item in order, if it has arrived.
    pub fn pop(&mut self) -> Option<StreamItem> {
        let item = self.early.remove(&self.next_seq)?;
        self.next_seq += 1;
        Some(item)
    }

    /// The cumulative acknowledgement to send, when one is due (items arrived since the
    /// last one). Call after popping what is ready, so it covers them.
    pub fn take_ack(&mut self) -> Option<u64> {
        std::mem::take(&mut self.ack_due).then_some(self.next_seq)
    }

    /// The next item number expected in order.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator (xorshift) so the lossy link is reproducible.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn bytes(i: u8) -> StreamItem {
        StreamItem::Bytes(vec![i; usize::from(i % 5) + 1])
    }

    #[test]
    fn items_arrive_in_order_exactly_once_over_a_lossy_reordering_duplicating_link() {
        for seed in 1..=20u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut sender = ReliableSender::new();
            let mut receiver = ReliableReceiver::new();
            let mut delivered = Vec::new();
            let mut next_item = 0u8;
            // (arrival time, seq, item) in flight to the receiver; acks in flight back.
            let mut to_receiver: Vec<(u64, u64, StreamItem)> = Vec::new();
            let mut to_sender: Vec<(u64, u64)> = Vec::new();
            let mut out = Vec::new();
            for now_us in (0..20_000_000u64).step_by(10_000) {
                while next_item < 200 && sender.has_room() && rng.below(3) == 0 {
                    sender.push(bytes(next_item));
                    next_item += 1;
                }
                out.clear();
                sender.poll_transmit(now_us, 100_000, &mut out);
                for (seq, item) in out.drain(..) {
                    // 30 % lost, 10 % duplicated, delays of 0-80 ms (reordering).
                    if rng.below(10) < 3 {
                        continue;
                    }
                    let copies = if rng.below(10) == 0 { 2 } else { 1 };
                    for _ in 0..copies {
                        to_receiver.push((now_us + rng.below(80_000), seq, item.clone()));
                    }
                }
                to_receiver.retain(|(at, seq, item)| {
                    if *at > now_us {
                        return true;
                    }
                    receiver.on_item(*seq, item.clone()).unwrap();
                    false
                });
                while let Some(item) = receiver.pop() {
                    delivered.push(item);
                }
                if let Some(ack) = receiver.take_ack()
                    && rng.below(10) >= 3
                {
                    to_sender.push((now_us + rng.below(80_000), ack));
                }
                to_sender.retain(|(at, ack)| {
                    if *at > now_us {
                        return true;
                    }
                    sender.on_ack(*ack).unwrap();
                    false
                });
            }
            let want: Vec<StreamItem> = (0..200).map(bytes).collect();
            assert_eq!(delivered, want, "seed {seed}");
            assert!(sender.is_idle(), "seed {seed}: everything acknowledged");
        }
    }

    #[test]
    fn the_window_bounds_both_ends() {
        let mut sender = ReliableSender::new();
        for i in 0..WINDOW_ITEMS {
            assert!(sender.has_room());
            assert_eq!(sender.push(bytes(i as u8)), i);
        }
        assert!(!sender.has_room());
        sender.on_ack(10).unwrap();
        assert!(sender.has_room());
        assert_eq!(
            sender.on_ack(WINDOW_ITEMS + 1),
            Err(RelayError::AckBeyondSent {
                next_seq: WINDOW_ITEMS + 1,
                sent: WINDOW_ITEMS
            })
        );

        let mut receiver = ReliableReceiver::new();
        assert_eq!(
            receiver.on_item(WINDOW_ITEMS, bytes(1)),
            Err(RelayError::BeyondWindow {
                seq: WINDOW_ITEMS,
                next_seq: 0
            })
        );
        receiver.on_item(WINDOW_ITEMS - 1, bytes(1)).unwrap();
        assert_eq!(receiver.pop(), None, "item 0 has not arrived");
    }

    #[test]
    fn retransmission_waits_for_the_interval_and_ages_count_from_the_first_send() {
        let mut sender = ReliableSender::new();
        sender.push(bytes(1));
        let mut out = Vec::new();
        sender.poll_transmit(1_000, 100_000, &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        sender.poll_transmit(50_000, 100_000, &mut out);
        assert!(out.is_empty(), "not yet due");
        sender.poll_transmit(101_000, 100_000, &mut out);
        assert_eq!(out.len(), 1, "due again");
        assert_eq!(sender.oldest_unacked_age_us(301_000), Some(300_000));
        assert_eq!(sender.acked_count(), 0);
        sender.on_ack(1).unwrap();
        assert_eq!(sender.acked_count(), 1);
        assert_eq!(sender.oldest_unacked_age_us(301_000), None);
    }

    #[test]
    fn duplicates_make_an_acknowledgement_due() {
        let mut receiver = ReliableReceiver::new();
        receiver.on_item(0, bytes(0)).unwrap();
        assert_eq!(receiver.pop(), Some(bytes(0)));
        assert_eq!(receiver.take_ack(), Some(1));
        assert_eq!(receiver.take_ack(), None);
        receiver.on_item(0, bytes(0)).unwrap();
        assert_eq!(receiver.pop(), None, "a duplicate is not delivered again");
        assert_eq!(receiver.take_ack(), Some(1), "but it is acknowledged again");
    }
}
