//! Acknowledgement bookkeeping for both ends of a datagram direction.
//!
//! * [`ReceiveTracker`] (receiver): records received sequence numbers and produces the
//!   [`AckFields`] to put in outgoing headers: `ack` = newest seq received, bit `i` of
//!   `ack_bits` = seq `ack - 1 - i` received.
//! * [`SendTracker`] (sender): numbers outgoing datagrams and turns incoming [`AckFields`]
//!   into delivery events: each sent seq is reported exactly once, either delivered (it
//!   appears in an ack) or lost (it fell more than [`ACK_WINDOW`] seqs behind an ack without
//!   being acknowledged, so no future ack can mention it).
//!
//! Both work on 64-bit extended sequence numbers internally (see `packet::unwrap_seq`), so
//! nothing aliases across the `u16` wrap.

use super::packet::{AckFields, checked_unwrap_seq, seq_more_recent, unwrap_seq};

/// How many seqs behind `ack` the bitfield reaches.
pub const ACK_WINDOW: u64 = 32;

/// What [`ReceiveTracker::record`] made of a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveOutcome {
    /// Newer than everything received before; recorded.
    Newest,
    /// Older than the newest but inside the window and not seen before; recorded.
    OutOfOrder,
    /// Already recorded.
    Duplicate,
    /// Too old to represent in the bitfield; ignored.
    TooOld,
}

/// Receiver-side record of which peer seqs arrived.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ReceiveTracker {
    /// Extended newest seq received; `None` before the first.
    newest: Option<u64>,
    /// Bit `i` set: `newest - 1 - i` received.
    bits: u32,
}

impl ReceiveTracker {
    /// A tracker that has received nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The extended newest seq received.
    #[must_use]
    pub fn newest(&self) -> Option<u64> {
        self.newest
    }

    /// Extends a wire seq relative to the newest received (or from 0 before any). A seq
    /// from before the first one received, across the `u16` wrap, saturates to 0 here
    /// ([`record`](Self::record) calls it `TooOld`): callers extend only seqs that
    /// [`is_newest`](Self::is_newest) accepted.
    #[must_use]
    pub fn extend(&self, seq: u16) -> u64 {
        unwrap_seq(seq, self.newest.unwrap_or(0))
    }

    /// True when `seq` is newer than everything recorded so far.
    #[must_use]
    pub fn is_newest(&self, seq: u16) -> bool {
        match self.newest {
            None => true,
            Some(n) => seq_more_recent(seq, n as u16),
        }
    }

    /// Records `seq` as received. A seq older than the first one received and from across
    /// the `u16` wrap (65535 after 1) has no extended value here: it is `TooOld`, never
    /// recorded as some other seq. Senders number from 0 (see [`SendTracker::new`]), so
    /// only a peer that starts elsewhere can produce it.
    pub fn record(&mut self, seq: u16) -> ReceiveOutcome {
        let Some(newest) = self.newest else {
            self.newest = Some(u64::from(seq));
            return ReceiveOutcome::Newest;
        };
        let Some(ext) = checked_unwrap_seq(seq, newest) else {
            return ReceiveOutcome::TooOld;
        };
        if ext > newest {
            let shift = ext - newest;
            self.bits = if shift > 32 {
                0
            } else {
                // The old newest becomes bit `shift - 1`.
                let moved = if shift == 32 { 0 } else { self.bits << shift };
                moved | (1u32 << (shift - 1))
            };
            self.newest = Some(ext);
            ReceiveOutcome::Newest
        } else if ext == newest {
            ReceiveOutcome::Duplicate
        } else {
            let back = newest - ext; // >= 1
            if back > ACK_WINDOW {
                return ReceiveOutcome::TooOld;
            }
            let bit = 1u32 << (back - 1);
            if self.bits & bit != 0 {
                ReceiveOutcome::Duplicate
            } else {
                self.bits |= bit;
                ReceiveOutcome::OutOfOrder
            }
        }
    }

    /// The ack to send, or `None` before anything was received.
    #[must_use]
    pub fn ack_fields(&self) -> Option<AckFields> {
        self.newest.map(|n| AckFields {
            ack: n as u16,
            ack_bits: self.bits,
        })
    }
}

/// Sender-side record of sent seqs awaiting acknowledgement.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SendTracker {
    /// Extended seq the next datagram gets.
    next: u64,
    /// Bit `i` set: seq `next - 1 - i` was sent and is still unresolved. Seqs further back
    /// than 64 are always resolved (reported lost) before they leave this window.
    pending: u64,
}

impl SendTracker {
    /// A tracker whose first datagram gets seq 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The extended seq the next datagram will get.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Assigns the next seq to an outgoing datagram; returns (wire seq, extended seq).
    /// `on_lost` receives seqs that fall out of the 64-seq tracking window unacknowledged.
    pub fn on_send(&mut self, mut on_lost: impl FnMut(u64)) -> (u16, u64) {
        let seq = self.next;
        if self.pending & (1u64 << 63) != 0 && seq >= 64 {
            on_lost(seq - 64);
        }
        self.pending = (self.pending << 1) | 1;
        self.next += 1;
        (seq as u16, seq)
    }

    /// Processes an ack from the peer. Calls `on_delivered(seq)` for each newly acknowledged
    /// sent seq and `on_lost(seq)` for each unresolved seq more than [`ACK_WINDOW`] behind
    /// the ack. Acks for seqs never sent are ignored.
    pub fn on_ack(
        &mut self,
        ack: AckFields,
        mut on_delivered: impl FnMut(u64),
        mut on_lost: impl FnMut(u64),
    ) {
        if self.next == 0 {
            return;
        }
        let last_sent = self.next - 1;
        // An ack naming a seq from before the first one sent is for nothing we sent.
        let Some(acked) = checked_unwrap_seq(ack.ack, last_sent) else {
            return;
        };
        if acked > last_sent || last_sent - acked >= 64 {
            return;
        }
        let mut resolve = |seq: u64, delivered: bool, pending: &mut u64| {
            if seq > last_sent {
                return;
            }
            let idx = last_sent - seq;
            if idx >= 64 {
                return;
            }
            let bit = 1u64 << idx;
            if *pending & bit != 0 {
                *pending &= !bit;
                if delivered {
                    on_delivered(seq);
                } else {
                    on_lost(seq);
                }
            }
        };
        let mut pending = self.pending;
        resolve(acked, true, &mut pending);
        for i in 0..32u64 {
            if ack.ack_bits & (1u32 << i) != 0 && acked > i {
                resolve(acked - 1 - i, true, &mut pending);
            }
        }
        // Older than the window: no future ack can report them.
        if acked > ACK_WINDOW {
            let oldest_reportable = acked - ACK_WINDOW;
            let first = last_sent.saturating_sub(63);
            for seq in first..oldest_reportable {
                resolve(seq, false, &mut pending);
            }
        }
        self.pending = pending;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_bits_and_wrap() {
        let mut t = ReceiveTracker::new();
        assert!(t.ack_fields().is_none());
        assert_eq!(t.record(65534), ReceiveOutcome::Newest);
        assert_eq!(t.record(1), ReceiveOutcome::Newest); // across the wrap
        assert_eq!(t.record(65535), ReceiveOutcome::OutOfOrder);
        assert_eq!(t.record(65535), ReceiveOutcome::Duplicate);
        assert_eq!(t.record(1), ReceiveOutcome::Duplicate);
        let a = t.ack_fields().unwrap();
        assert_eq!(a.ack, 1);
        // 0 missing (bit 0), 65535 received (bit 1), 65534 received (bit 2).
        assert_eq!(a.ack_bits, 0b110);
        assert_eq!(t.newest(), Some(65537));
        assert_eq!(
            t.record(65537u64.wrapping_sub(40) as u16),
            ReceiveOutcome::TooOld
        );
        assert_eq!(t.record(40), ReceiveOutcome::Newest);
        assert_eq!(t.ack_fields().unwrap().ack_bits, 0); // jumped by 39 > 32
    }

    /// Regression (found by `trackers_agree` in CI): the first seq received is just past the
    /// wrap and one from before the wrap arrives next. It must not be recorded as the seq
    /// between them, which never arrived.
    #[test]
    fn seq_from_before_the_first_across_the_wrap_is_not_aliased() {
        let mut t = ReceiveTracker::new();
        assert_eq!(t.record(1), ReceiveOutcome::Newest);
        assert_eq!(t.record(65535), ReceiveOutcome::TooOld);
        assert_eq!(t.ack_fields().unwrap().ack_bits, 0);
        assert_eq!(t.record(0), ReceiveOutcome::OutOfOrder);
        assert_eq!(t.ack_fields().unwrap().ack_bits, 0b1);
        // The sender side: an ack naming a seq from before its first is ignored, not taken
        // as an ack of seq 0.
        let mut s = SendTracker::new();
        s.on_send(|_| panic!("nothing falls out"));
        s.on_send(|_| panic!("nothing falls out"));
        let mut delivered = Vec::new();
        s.on_ack(
            AckFields {
                ack: 65535,
                ack_bits: 0,
            },
            |q| delivered.push(q),
            |_| panic!("nothing is lost"),
        );
        assert!(delivered.is_empty());
    }

    #[test]
    fn send_delivered_and_lost() {
        let mut s = SendTracker::new();
        for _ in 0..40 {
            s.on_send(|_| panic!("nothing falls out yet"));
        }
        let mut delivered = Vec::new();
        let mut lost = Vec::new();
        // Ack 39 with 38 and 36 received.
        s.on_ack(
            AckFields {
                ack: 39,
                ack_bits: 0b101,
            },
            |q| delivered.push(q),
            |q| lost.push(q),
        );
        assert_eq!(delivered, vec![39, 38, 36]);
        assert_eq!(lost, (0..7).collect::<Vec<_>>()); // 0..=6 are > 32 behind 39
        delivered.clear();
        lost.clear();
        // A duplicate ack reports nothing new.
        s.on_ack(
            AckFields {
                ack: 39,
                ack_bits: 0b101,
            },
            |q| delivered.push(q),
            |q| lost.push(q),
        );
        assert!(delivered.is_empty() && lost.is_empty());
        // An ack for a seq never sent is ignored.
        s.on_ack(
            AckFields {
                ack: 500,
                ack_bits: 0,
            },
            |q| delivered.push(q),
            |q| lost.push(q),
        );
        assert!(delivered.is_empty());
    }

    #[test]
    fn send_wraps_u16() {
        let mut s = SendTracker {
            next: 65530,
            pending: 0,
        };
        let mut sent = Vec::new();
        for _ in 0..10 {
            sent.push(s.on_send(|_| {}));
        }
        assert_eq!(sent[6], (0, 65536));
        let mut delivered = Vec::new();
        s.on_ack(
            AckFields {
                ack: 2,
                ack_bits: 1 << 2,
            },
            |q| delivered.push(q),
            |_| {},
        );
        assert_eq!(delivered, vec![65538, 65535]);
    }

    proptest::proptest! {
        /// Over a lossy, reordering link across the u16 wrap, the receiver's ack names
        /// exactly the received seqs in its window (compared as wire values: each end
        /// extends seqs from its own first one), and the sender resolves every seq at most
        /// once, delivered only if it was really received.
        #[test]
        fn trackers_agree(start in 65_000u64..65_600, n in 1usize..300, drops in proptest::collection::vec(proptest::bool::weighted(0.2), 300), swaps in proptest::collection::vec(proptest::bool::weighted(0.1), 300)) {
            let mut s = SendTracker { next: start, pending: 0 };
            let mut r = ReceiveTracker::new();
            let mut received = std::collections::BTreeSet::new();
            let mut resolved = std::collections::BTreeMap::new();
            let mut in_flight: Option<u16> = None;
            for i in 0..n {
                let (wire, ext) = s.on_send(|q| { assert!(resolved.insert(q, false).is_none()); });
                if drops[i] {
                    continue;
                }
                let deliver = |r: &mut ReceiveTracker, seq: u16, received: &mut std::collections::BTreeSet<u16>| {
                    if matches!(r.record(seq), ReceiveOutcome::Newest | ReceiveOutcome::OutOfOrder) {
                        received.insert(seq);
                    }
                };
                if swaps[i] && in_flight.is_none() {
                    in_flight = Some(wire);
                } else {
                    deliver(&mut r, wire, &mut received);
                    if let Some(held) = in_flight.take() {
                        deliver(&mut r, held, &mut received);
                    }
                }
                let _ = ext;
                if let Some(a) = r.ack_fields() {
                    let newest = r.newest().unwrap();
                    // The ack names exactly what was received in the window.
                    for back in 0..=32u64 {
                        if back > newest { break; }
                        let seq = newest - back;
                        let named = back == 0 || a.ack_bits & (1 << (back - 1)) != 0;
                        proptest::prop_assert_eq!(named, received.contains(&(seq as u16)));
                    }
                    let mut got_d = Vec::new();
                    let mut got_l = Vec::new();
                    s.on_ack(a, |q| got_d.push(q), |q| got_l.push(q));
                    let got = got_d.into_iter().map(|q| (q, true)).chain(got_l.into_iter().map(|q| (q, false)));
                    for (q, d) in got {
                        proptest::prop_assert!(resolved.insert(q, d).is_none(), "resolved twice");
                    }
                }
            }
            for (seq, delivered) in resolved {
                if delivered {
                    proptest::prop_assert!(received.contains(&(seq as u16)));
                }
            }
        }
    }

    #[test]
    fn unacked_falls_out_of_window_as_lost() {
        let mut s = SendTracker::new();
        let mut lost = Vec::new();
        for _ in 0..70 {
            s.on_send(|q| lost.push(q));
        }
        assert_eq!(lost, (0..6).collect::<Vec<_>>());
    }
}
