//! The client's side of a resumption (`WIRE_FORMAT.md`, 8.10): continuing a session over a
//! new connection after the old one was lost, without a new login.
//!
//! A fleet's server sends a `ResumeToken`. From then on the client counts the bytes of
//! whole server frames it took after that token's frame ([`Resumption::received_bytes`])
//! and keeps its own recent control frames numbered from its `Login` (frame 0), or from its
//! `RejoinAccepted` after a rejoin ([`Resumption::restart_numbering`]), up to
//! [`REPLAY_MAX_BYTES`]. On a new connection it sends `Resume` with the token and the byte
//! count; the server replays what the client missed and answers `Resumed` with the number
//! of client frames it took, from which the client sends its frames again
//! ([`Resumption::frames_from`]).

use std::collections::VecDeque;

/// How many bytes of its most recent control frames a client keeps for a resumption. A
/// resumption that needs older frames fails (the session closes): a client that sent more
/// than this while its connection was failing cannot continue.
pub const REPLAY_MAX_BYTES: usize = 64 * 1024;

/// How long a client waits for `Resumed` after sending `Resume`, µs. Then the session
/// closes with `timeout`.
pub const RESUME_ANSWER_TIMEOUT_US: u64 = 5_000_000;

/// A client's resumption bookkeeping. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Resumption {
    /// The server's last `ResumeToken` (none from a single server).
    token: Option<Vec<u8>>,
    /// Bytes of whole server frames taken after that token's frame.
    received_bytes: u64,
    /// Control frames queued since the numbering started (the next one's number).
    sent_frames: u64,
    /// The most recent of those frames, oldest first (numbered `sent_frames - len` on).
    kept: VecDeque<Vec<u8>>,
    /// Their bytes in all.
    kept_bytes: usize,
    /// `Resume` sent at this time (µs of the session's clock), `Resumed` not received yet.
    awaiting_since_us: Option<u64>,
}

impl Resumption {
    /// A new token: the byte count starts again after its frame.
    pub(crate) fn set_token(&mut self, token: Vec<u8>) {
        self.token = Some(token);
        self.received_bytes = 0;
    }

    /// The last token, if a server sent one.
    pub(crate) fn token(&self) -> Option<&[u8]> {
        self.token.as_deref()
    }

    /// A whole server frame of `len_bytes` was taken.
    pub(crate) fn took_frame(&mut self, len_bytes: usize) {
        self.received_bytes += len_bytes as u64;
    }

    /// Bytes of whole server frames taken since the token's frame.
    pub(crate) fn received_bytes(&self) -> u64 {
        self.received_bytes
    }

    /// A control frame was queued for the server: it gets the next number.
    pub(crate) fn sent_frame(&mut self, frame: &[u8]) {
        self.sent_frames += 1;
        self.kept_bytes += frame.len();
        self.kept.push_back(frame.to_vec());
        while self.kept_bytes > REPLAY_MAX_BYTES {
            match self.kept.pop_front() {
                Some(old) => self.kept_bytes -= old.len(),
                None => break,
            }
        }
    }

    /// Numbering starts again at the next frame (after a rejoin, whose `RejoinAccepted` is
    /// frame 0): earlier frames are forgotten.
    pub(crate) fn restart_numbering(&mut self) {
        self.sent_frames = 0;
        self.kept.clear();
        self.kept_bytes = 0;
    }

    /// `Resume` was sent at `now_us` (another attempt while waiting keeps the first
    /// attempt's deadline).
    pub(crate) fn await_answer(&mut self, now_us: u64) {
        self.awaiting_since_us.get_or_insert(now_us);
    }

    /// Waiting for `Resumed` since this time.
    pub(crate) fn awaiting_since_us(&self) -> Option<u64> {
        self.awaiting_since_us
    }

    /// `Resumed` arrived: the frames the server did not take (numbered `received_frames`
    /// on), to send again in order; `Err` naming the gap when some of them are no longer
    /// kept or the number is beyond what was sent.
    pub(crate) fn frames_from(&mut self, received_frames: u64) -> Result<Vec<Vec<u8>>, String> {
        self.awaiting_since_us = None;
        let first_kept = self.sent_frames - self.kept.len() as u64;
        if received_frames > self.sent_frames {
            return Err(format!(
                "the server took {received_frames} control frames; the client sent {}",
                self.sent_frames
            ));
        }
        if received_frames < first_kept {
            return Err(format!(
                "the server took {received_frames} control frames; the client keeps frames \
                 from {first_kept} on only ({REPLAY_MAX_BYTES} bytes)"
            ));
        }
        // Below `kept.len()`: both bounds checked above.
        let skip = (received_frames - first_kept) as usize;
        Ok(self.kept.iter().skip(skip).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_replayed_from_the_servers_count_and_a_gap_beyond_the_kept_ones_is_refused() {
        let mut r = Resumption::default();
        for i in 0..5u8 {
            r.sent_frame(&[i]);
        }
        assert_eq!(r.frames_from(3).unwrap(), vec![vec![3], vec![4]]);
        assert_eq!(r.frames_from(5).unwrap(), Vec::<Vec<u8>>::new());
        assert!(r.frames_from(6).unwrap_err().contains("client sent 5"));
        // Frames of 40 KiB: only the newest fits the kept bytes with the one before.
        let big = vec![0u8; 40 * 1024];
        r.sent_frame(&big);
        r.sent_frame(&big);
        assert_eq!(r.frames_from(6).unwrap().len(), 1);
        assert!(r.frames_from(5).unwrap_err().contains("from 6 on"));
        r.restart_numbering();
        r.sent_frame(&[9]);
        assert_eq!(r.frames_from(0).unwrap(), vec![vec![9]]);
    }

    #[test]
    fn a_new_token_restarts_the_byte_count() {
        let mut r = Resumption::default();
        r.took_frame(10);
        r.set_token(vec![1, 2]);
        assert_eq!(r.received_bytes(), 0);
        r.took_frame(7);
        assert_eq!((r.token(), r.received_bytes()), (Some(&[1u8, 2][..]), 7));
    }
}
