//! One direction of a connection's reliable stream over at-most-once messaging: items
//! numbered from 0, sent again until acknowledged, delivered in order exactly once, with
//! flow control by credit.
//!
//! Two limits, kept apart so that a slow consumer never looks like a lost peer:
//!
//! - **Acknowledgement** (`next_seq`): every item below it *arrived*. The sender forgets
//!   acknowledged items and never sends them again.
//! - **Credit** (`credit_end`): the sender may send items numbered below it. The receiver
//!   grants [`WINDOW_ITEMS`] beyond the items it has *delivered* ([`ReliableReceiver::pop`]),
//!   so it never buffers more than that, whatever the sender does. Before the first
//!   acknowledgement the credit is [`WINDOW_ITEMS`].
//!
//! The sender ([`ReliableSender`]) keeps every item not yet acknowledged; pushing never
//! fails (an item beyond the credit waits in the sender), and [`ReliableSender::has_room`]
//! tells the caller to stop taking more from its source while [`WINDOW_ITEMS`] wait (the
//! gateway then stops reading the client's control stream, which pushes back on the client
//! through QUIC flow control; the zone side stops draining the session's outbox, which
//! makes the zone close a session whose control bytes do not fit, as on a single server).
//! [`ReliableSender::poll_transmit`] gives the items within the credit that were never sent
//! or were last sent at least `retransmit_after_us` ago.
//!
//! The receiver ([`ReliableReceiver`]) buffers items that arrive early (within the credit
//! it granted), drops duplicates, hands items out in order and says when an
//! acknowledgement is due: after any item arrived (duplicates included, so a lost
//! acknowledgement is repaired by the retransmission it causes) and after a delivery that
//! grants new credit; and it repeats that acknowledgement while the sender seems blocked
//! at an older credit (the grant may have been lost, and a blocked sender sends nothing that
//! would make another acknowledgement due). A sender that had exactly that many items and
//! nothing more is taken for blocked too: it costs one acknowledgement per interval.
//!
//! No timer lives here: the caller decides how often to poll (the zone side once per
//! tick, the gateway on a short timer) and when the peer is gone
//! ([`ReliableSender::oldest_unacked_age_us`] counts only items actually sent).

use std::collections::{BTreeMap, VecDeque};

use super::message::{RelayError, StreamItem};

/// Items a receiver accepts beyond those it delivered, and items a sender holds before
/// [`ReliableSender::has_room`] says stop.
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

/// An item due for sending: its number and the item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueItem {
    /// The item's number in its stream.
    pub seq: u64,
    /// The item.
    pub item: StreamItem,
}

/// What a receiver tells the sender: acknowledgement and credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckFields {
    /// Every item below this number arrived.
    pub next_seq: u64,
    /// The sender may send items below this number.
    pub credit_end: u64,
}

/// The sending half; see the module docs.
#[derive(Clone, Debug)]
pub struct ReliableSender {
    next_seq: u64,
    unacked: VecDeque<Pending>,
    credit_end: u64,
}

impl Default for ReliableSender {
    fn default() -> Self {
        ReliableSender {
            next_seq: 0,
            unacked: VecDeque::new(),
            credit_end: WINDOW_ITEMS,
        }
    }
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

    /// Queues `item` and returns its number. Always accepted: an item beyond the credit
    /// waits until the receiver grants more (callers check [`ReliableSender::has_room`]
    /// before taking more from their source, so the queue stays near the window).
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

    /// Takes the items numbered `from_seq` and above that are not acknowledged yet, in
    /// order, leaving the sender without them (the stream moves to another peer, which
    /// gets them again under new numbers).
    pub fn take_unacked_from(&mut self, from_seq: u64) -> Vec<StreamItem> {
        self.unacked
            .drain(..)
            .filter(|p| p.seq >= from_seq)
            .map(|p| p.item)
            .collect()
    }

    /// The items not acknowledged yet (sent or waiting for credit), in order, with the
    /// number of the first (a handoff's sender tells the gateway through the receiver).
    #[must_use]
    pub fn unacked(&self) -> (u64, Vec<StreamItem>) {
        (
            self.acked_count(),
            self.unacked.iter().map(|p| p.item.clone()).collect(),
        )
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

    /// Forgets every item below `ack.next_seq` and takes the credit (credit never shrinks).
    ///
    /// # Errors
    /// [`RelayError::AckBeyondSent`] when `ack.next_seq` exceeds the items pushed (the peer
    /// is confused or hostile; nothing is changed).
    pub fn on_ack(&mut self, ack: AckFields) -> Result<(), RelayError> {
        if ack.next_seq > self.next_seq {
            return Err(RelayError::AckBeyondSent {
                next_seq: ack.next_seq,
                sent: self.next_seq,
            });
        }
        while self.unacked.front().is_some_and(|p| p.seq < ack.next_seq) {
            self.unacked.pop_front();
        }
        self.credit_end = self.credit_end.max(ack.credit_end);
        Ok(())
    }

    /// Appends to `out` every item within the credit never sent or last sent at least
    /// `retransmit_after_us` before `now_us`, oldest first, and marks them sent now.
    pub fn poll_transmit(&mut self, now_us: u64, retransmit_after_us: u64, out: &mut Vec<DueItem>) {
        for p in &mut self.unacked {
            if p.seq >= self.credit_end {
                break;
            }
            let due = p
                .sent_at_us
                .is_none_or(|at| now_us.saturating_sub(at) >= retransmit_after_us);
            if due {
                p.sent_at_us = Some(now_us);
                p.first_sent_at_us.get_or_insert(now_us);
                out.push(DueItem {
                    seq: p.seq,
                    item: p.item.clone(),
                });
            }
        }
    }

    /// How long the oldest unacknowledged item that was sent has waited since it was first
    /// sent (`None`: nothing sent waits). The caller declares the peer gone past its limit.
    #[must_use]
    pub fn oldest_unacked_age_us(&self, now_us: u64) -> Option<u64> {
        self.unacked
            .front()
            .and_then(|p| p.first_sent_at_us)
            .map(|at| now_us.saturating_sub(at))
    }
}

/// The receiving half; see the module docs.
#[derive(Clone, Debug)]
pub struct ReliableReceiver {
    /// Items delivered by [`ReliableReceiver::pop`].
    delivered: u64,
    /// Items received, by number, not yet delivered.
    early: BTreeMap<u64, StreamItem>,
    ack_due: bool,
    /// `credit_end` of the last acknowledgement taken.
    credit_sent: u64,
    /// The sender used up the credit it had (an item numbered just below this credit
    /// arrived) and has not been seen to use a larger one: the acknowledgement that grants
    /// more must reach it, so it is repeated (see [`ReliableReceiver::take_ack`]).
    sender_blocked_at: Option<u64>,
    /// When the last acknowledgement was taken, µs.
    last_ack_at_us: u64,
}

impl Default for ReliableReceiver {
    fn default() -> Self {
        ReliableReceiver {
            delivered: 0,
            early: BTreeMap::new(),
            ack_due: false,
            credit_sent: WINDOW_ITEMS,
            sender_blocked_at: None,
            last_ack_at_us: 0,
        }
    }
}

impl ReliableReceiver {
    /// A receiver expecting item 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes item `seq` as received. Duplicates (already delivered or buffered) are
    /// dropped.
    ///
    /// # Errors
    /// [`RelayError::BeyondWindow`] for an item beyond the credit granted (dropped; the
    /// caller ends the connection: the sender ignores credit).
    pub fn on_item(&mut self, seq: u64, item: StreamItem) -> Result<(), RelayError> {
        self.ack_due = true;
        if seq < self.delivered {
            return Ok(());
        }
        if seq - self.delivered >= WINDOW_ITEMS {
            return Err(RelayError::BeyondWindow {
                seq,
                next_seq: self.delivered,
            });
        }
        self.early.entry(seq).or_insert(item);
        if self.sender_blocked_at.is_some_and(|credit| seq >= credit) {
            // It sent beyond that credit: it got a larger one.
            self.sender_blocked_at = None;
        }
        if seq + 1 >= self.credit_sent {
            self.sender_blocked_at = Some(self.credit_sent);
        }
        Ok(())
    }

    /// The next item in order, if it has arrived. A delivery grants one more item of
    /// credit, so it makes an acknowledgement due.
    pub fn pop(&mut self) -> Option<StreamItem> {
        let item = self.early.remove(&self.delivered)?;
        self.delivered += 1;
        self.ack_due = true;
        Some(item)
    }

    /// The items received in order: every item below this number arrived.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        let mut next = self.delivered;
        while self.early.contains_key(&next) {
            next += 1;
        }
        next
    }

    /// The acknowledgement and credit to send at `now_us`, when one is due: after items
    /// arrived or were delivered, and again every `repeat_after_us` while the sender is
    /// blocked at a credit smaller than the one granted (the acknowledgement that granted
    /// it may have been lost, and the sender sends nothing that would make another due).
    pub fn take_ack(&mut self, now_us: u64, repeat_after_us: u64) -> Option<AckFields> {
        let credit_end = self.delivered + WINDOW_ITEMS;
        let repeat = self
            .sender_blocked_at
            .is_some_and(|blocked| credit_end > blocked)
            && now_us.saturating_sub(self.last_ack_at_us) >= repeat_after_us;
        if !(std::mem::take(&mut self.ack_due) || repeat) {
            return None;
        }
        self.credit_sent = credit_end;
        self.last_ack_at_us = now_us;
        Some(AckFields {
            next_seq: self.next_seq(),
            credit_end,
        })
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

    fn bytes(i: u16) -> StreamItem {
        StreamItem::Bytes(vec![i as u8; usize::from(i % 5) + 1])
    }

    /// An item on the lossy link: when it arrives, its number and the item.
    struct InFlight {
        at_us: u64,
        seq: u64,
        item: StreamItem,
    }

    /// An acknowledgement on the lossy link.
    struct AckInFlight {
        at_us: u64,
        ack: AckFields,
    }

    #[test]
    fn items_arrive_in_order_exactly_once_over_a_lossy_link_to_a_slow_consumer() {
        const ITEMS: u16 = 600;
        for seed in 1..=20u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut sender = ReliableSender::new();
            let mut receiver = ReliableReceiver::new();
            let mut delivered = Vec::new();
            let mut next_item = 0u16;
            let mut to_receiver: Vec<InFlight> = Vec::new();
            let mut to_sender: Vec<AckInFlight> = Vec::new();
            let mut out = Vec::new();
            let mut most_buffered = 0;
            for now_us in (0..60_000_000u64).step_by(10_000) {
                // Bursts past the window too: pushing never fails, credit holds them back.
                while next_item < ITEMS && rng.below(2) == 0 {
                    sender.push(bytes(next_item));
                    next_item += 1;
                }
                out.clear();
                sender.poll_transmit(now_us, 100_000, &mut out);
                for due in out.drain(..) {
                    // 30 % lost, 10 % duplicated, delays of 0-80 ms (reordering).
                    if rng.below(10) < 3 {
                        continue;
                    }
                    let copies = if rng.below(10) == 0 { 2 } else { 1 };
                    for _ in 0..copies {
                        to_receiver.push(InFlight {
                            at_us: now_us + rng.below(80_000),
                            seq: due.seq,
                            item: due.item.clone(),
                        });
                    }
                }
                to_receiver.retain(|f| {
                    if f.at_us > now_us {
                        return true;
                    }
                    receiver
                        .on_item(f.seq, f.item.clone())
                        .expect("the sender keeps to the credit");
                    false
                });
                most_buffered = most_buffered.max(receiver.early.len());
                // A slow consumer: takes at most 3 items every 10 ms, and none half the time.
                if rng.below(2) == 0 {
                    for _ in 0..3 {
                        if let Some(item) = receiver.pop() {
                            delivered.push(item);
                        }
                    }
                }
                if let Some(ack) = receiver.take_ack(now_us, 100_000)
                    && rng.below(10) >= 3
                {
                    to_sender.push(AckInFlight {
                        at_us: now_us + rng.below(80_000),
                        ack,
                    });
                }
                to_sender.retain(|a| {
                    if a.at_us > now_us {
                        return true;
                    }
                    sender.on_ack(a.ack).unwrap();
                    false
                });
            }
            let want: Vec<StreamItem> = (0..ITEMS).map(bytes).collect();
            assert_eq!(delivered, want, "seed {seed}");
            assert!(sender.is_idle(), "seed {seed}: everything acknowledged");
            assert!(
                most_buffered as u64 <= WINDOW_ITEMS,
                "seed {seed}: the receiver buffered {most_buffered} items"
            );
        }
    }

    #[test]
    fn items_that_arrived_are_not_sent_again_while_the_consumer_waits() {
        let mut sender = ReliableSender::new();
        let mut receiver = ReliableReceiver::new();
        let mut out = Vec::new();
        for i in 0..10 {
            sender.push(bytes(i));
        }
        sender.poll_transmit(0, 100_000, &mut out);
        for due in out.drain(..) {
            receiver.on_item(due.seq, due.item).unwrap();
        }
        // Nothing delivered yet, but everything arrived: acknowledged, not resent.
        let ack = receiver.take_ack(0, 100_000).unwrap();
        assert_eq!(ack.next_seq, 10);
        assert_eq!(ack.credit_end, WINDOW_ITEMS);
        sender.on_ack(ack).unwrap();
        assert!(sender.is_idle());
        sender.poll_transmit(1_000_000, 100_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(
            sender.oldest_unacked_age_us(1_000_000),
            None,
            "no false peer timeout"
        );
    }

    #[test]
    fn credit_bounds_what_is_sent_and_delivery_grants_more() {
        let mut sender = ReliableSender::new();
        for i in 0..WINDOW_ITEMS + 10 {
            assert_eq!(sender.push(bytes(i as u16)), i, "pushing never fails");
        }
        assert!(!sender.has_room());
        let mut out = Vec::new();
        sender.poll_transmit(0, 100_000, &mut out);
        assert_eq!(
            out.len() as u64,
            WINDOW_ITEMS,
            "only the initial credit is sent"
        );
        let mut receiver = ReliableReceiver::new();
        for due in out.drain(..) {
            receiver.on_item(due.seq, due.item).unwrap();
        }
        assert_eq!(
            receiver.on_item(WINDOW_ITEMS, bytes(1)),
            Err(RelayError::BeyondWindow {
                seq: WINDOW_ITEMS,
                next_seq: 0
            }),
            "an item beyond the credit is a protocol error"
        );
        let ack = receiver.take_ack(0, 100_000).unwrap();
        sender.on_ack(ack).unwrap();
        sender.poll_transmit(1_000, 100_000, &mut out);
        assert!(out.is_empty(), "no credit until something is delivered");
        assert_eq!(sender.oldest_unacked_age_us(500_000), None);
        for _ in 0..4 {
            receiver.pop().unwrap();
        }
        let ack = receiver
            .take_ack(0, 100_000)
            .expect("a delivery makes an acknowledgement due");
        assert_eq!(ack.credit_end, WINDOW_ITEMS + 4);
        sender.on_ack(ack).unwrap();
        sender.poll_transmit(2_000, 100_000, &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(
            sender.on_ack(AckFields {
                next_seq: WINDOW_ITEMS + 11,
                credit_end: 0
            }),
            Err(RelayError::AckBeyondSent {
                next_seq: WINDOW_ITEMS + 11,
                sent: WINDOW_ITEMS + 10
            })
        );
    }

    #[test]
    fn a_lost_credit_grant_is_repeated_until_the_sender_uses_it() {
        let mut sender = ReliableSender::new();
        let mut receiver = ReliableReceiver::new();
        let mut out = Vec::new();
        for i in 0..WINDOW_ITEMS + 5 {
            sender.push(bytes(i as u16));
        }
        sender.poll_transmit(0, 100_000, &mut out);
        for due in out.drain(..) {
            receiver.on_item(due.seq, due.item).unwrap();
        }
        sender
            .on_ack(receiver.take_ack(0, 100_000).unwrap())
            .unwrap();
        // The consumer catches up; the acknowledgement granting new credit is lost.
        while receiver.pop().is_some() {}
        let lost = receiver.take_ack(10_000, 100_000).unwrap();
        assert_eq!(lost.credit_end, 2 * WINDOW_ITEMS);
        sender.poll_transmit(20_000, 100_000, &mut out);
        assert!(out.is_empty(), "the sender still waits for credit");
        assert_eq!(
            receiver.take_ack(50_000, 100_000),
            None,
            "not before the interval"
        );
        let again = receiver
            .take_ack(110_000, 100_000)
            .expect("the grant is repeated");
        sender.on_ack(again).unwrap();
        sender.poll_transmit(120_000, 100_000, &mut out);
        assert_eq!(out.len(), 5, "the waiting items go");
        for due in out.drain(..) {
            receiver.on_item(due.seq, due.item).unwrap();
        }
        receiver.take_ack(130_000, 100_000).unwrap();
        assert_eq!(
            receiver.take_ack(400_000, 100_000),
            None,
            "no more repeats once the sender used the credit"
        );
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
        sender
            .on_ack(AckFields {
                next_seq: 1,
                credit_end: WINDOW_ITEMS + 1,
            })
            .unwrap();
        assert_eq!(sender.acked_count(), 1);
        assert_eq!(sender.oldest_unacked_age_us(301_000), None);
    }

    #[test]
    fn duplicates_make_an_acknowledgement_due() {
        let mut receiver = ReliableReceiver::new();
        receiver.on_item(0, bytes(0)).unwrap();
        assert_eq!(receiver.pop(), Some(bytes(0)));
        assert_eq!(receiver.take_ack(0, 100_000).map(|a| a.next_seq), Some(1));
        assert_eq!(receiver.take_ack(0, 100_000), None);
        receiver.on_item(0, bytes(0)).unwrap();
        assert_eq!(receiver.pop(), None, "a duplicate is not delivered again");
        assert_eq!(
            receiver.take_ack(0, 100_000).map(|a| a.next_seq),
            Some(1),
            "but it is acknowledged again"
        );
    }
}
