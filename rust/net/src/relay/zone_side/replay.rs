//! What a zone process keeps of a relayed session so that its client can resume it over
//! another gateway (`RELAY_FORMAT.md` section 8, `WIRE_FORMAT.md` 8.10): the secret of the
//! resumption token it gave the client, and the session's most recent control bytes.
//!
//! The token is a version byte and 16 random bytes; it goes to the client in a
//! `ResumeToken` frame, the first of the stream's bytes once the session is logged in. The
//! bytes sent after that frame are counted and the last [`REPLAY_MAX_BYTES`] kept, so a
//! client that says how many it received gets the rest. A handoff to another zone process
//! carries all of it ([`ServerReplay::export`], [`ServerReplay::import`]): the client's
//! token stays valid and its count goes on. A session restarted from its last save (a
//! rejoin) gets a new token.

use std::collections::VecDeque;

use mmo_core::control::ServerControl;
use mmo_core::relay::SessionReplay;

/// How many of a session's most recent control bytes a zone process keeps for a
/// resumption. A client that missed more cannot resume (it logs in again).
pub(super) const REPLAY_MAX_BYTES: usize = 32 * 1024;

/// The token format's version byte.
const TOKEN_VERSION: u8 = 1;

/// A session's resumption secret and recent control bytes. See the module docs.
pub(super) struct ServerReplay {
    secret: [u8; 16],
    /// The `ResumeToken` frame was queued to the gateway.
    token_sent: bool,
    /// Control bytes queued to the gateway after the token's frame.
    sent_bytes: u64,
    /// The last of them (at most [`REPLAY_MAX_BYTES`]).
    kept: VecDeque<u8>,
}

impl ServerReplay {
    /// A new secret, drawn from the operating system's generator (through `rand`).
    pub(super) fn new() -> ServerReplay {
        ServerReplay {
            secret: rand::random(),
            token_sent: false,
            sent_bytes: 0,
            kept: VecDeque::new(),
        }
    }

    /// The state a handoff carries (`None` before the token was sent: the receiver then
    /// starts its own).
    pub(super) fn export(&self) -> Option<SessionReplay> {
        self.token_sent.then(|| SessionReplay {
            secret: self.secret.to_vec(),
            sent_bytes: self.sent_bytes,
            kept: self.kept.iter().copied().collect(),
        })
    }

    /// The state a handoff carried: the token counts as sent. `Err` naming the field when
    /// it is not one this build exports.
    pub(super) fn import(replay: SessionReplay) -> Result<ServerReplay, String> {
        let secret: [u8; 16] = replay.secret.as_slice().try_into().map_err(|_| {
            format!(
                "replay.secret of {} bytes (expected 16)",
                replay.secret.len()
            )
        })?;
        if replay.kept.len() > REPLAY_MAX_BYTES || replay.kept.len() as u64 > replay.sent_bytes {
            return Err(format!(
                "replay.kept of {} bytes (at most {REPLAY_MAX_BYTES}, and at most sent_bytes {})",
                replay.kept.len(),
                replay.sent_bytes
            ));
        }
        Ok(ServerReplay {
            secret,
            token_sent: true,
            sent_bytes: replay.sent_bytes,
            kept: replay.kept.into(),
        })
    }

    /// The `ResumeToken` frame, the first time it is asked for; `None` after.
    pub(super) fn token_frame(&mut self) -> Option<Vec<u8>> {
        if self.token_sent {
            return None;
        }
        self.token_sent = true;
        let mut token = Vec::with_capacity(1 + self.secret.len());
        token.push(TOKEN_VERSION);
        token.extend_from_slice(&self.secret);
        let mut frame = Vec::new();
        // 17 bytes of token: far within every limit.
        mmo_core::control::encode_frame(&ServerControl::ResumeToken { token }, &mut frame).ok()?;
        Some(frame)
    }

    /// Control bytes queued to the gateway (counted once the token went).
    pub(super) fn sent(&mut self, bytes: &[u8]) {
        if !self.token_sent {
            return;
        }
        self.sent_bytes += bytes.len() as u64;
        self.kept.extend(bytes);
        let excess = self.kept.len().saturating_sub(REPLAY_MAX_BYTES);
        self.kept.drain(..excess);
    }

    /// Whether `token` is this session's (compared in constant time).
    pub(super) fn matches(&self, token: &[u8]) -> bool {
        if !self.token_sent || token.len() != 1 + self.secret.len() || token[0] != TOKEN_VERSION {
            return false;
        }
        let differ = token[1..]
            .iter()
            .zip(self.secret.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        differ == 0
    }

    /// The bytes a client that received `received_bytes` after the token has not seen;
    /// `Err` naming why when that count is beyond what was sent or older than what is kept.
    pub(super) fn missed_from(&self, received_bytes: u64) -> Result<Vec<u8>, String> {
        let first_kept = self.sent_bytes - self.kept.len() as u64;
        if received_bytes > self.sent_bytes {
            return Err(format!(
                "the client counts {received_bytes} bytes received; {} were sent",
                self.sent_bytes
            ));
        }
        if received_bytes < first_kept {
            return Err(format!(
                "the client counts {received_bytes} bytes received; bytes from {first_kept} on \
                 are kept only ({REPLAY_MAX_BYTES})"
            ));
        }
        // Below `kept.len()`: both bounds checked above.
        let skip = (received_bytes - first_kept) as usize;
        Ok(self.kept.iter().skip(skip).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_only_its_session_and_missed_bytes_come_from_the_clients_count() {
        let mut a = ServerReplay::new();
        let b = ServerReplay::new();
        a.sent(b"before the token is not counted");
        let frame = a.token_frame().expect("the first time");
        assert!(a.token_frame().is_none(), "once");
        let mut decoder = mmo_core::control::FrameDecoder::new();
        decoder.push(&frame);
        let Ok(Some(ServerControl::ResumeToken { token })) = decoder.next_message() else {
            panic!("a ResumeToken frame");
        };
        assert!(a.matches(&token));
        assert!(!b.matches(&token), "another session's secret");
        let mut forged = token.clone();
        forged[16] ^= 1;
        assert!(!a.matches(&forged));
        assert!(!a.matches(&token[..16]));
        a.sent(b"hello");
        a.sent(b" world");
        assert_eq!(a.missed_from(5).unwrap(), b" world");
        assert_eq!(a.missed_from(11).unwrap(), b"");
        assert!(a.missed_from(12).is_err());
        a.sent(&vec![7u8; REPLAY_MAX_BYTES]);
        assert!(a.missed_from(10).unwrap_err().contains("kept only"));
        assert_eq!(a.missed_from(11).unwrap().len(), REPLAY_MAX_BYTES);
        assert_eq!(a.missed_from(12).unwrap().len(), REPLAY_MAX_BYTES - 1);

        // A handoff carries it whole: the same token, the same counts.
        let moved = ServerReplay::import(a.export().expect("token sent")).unwrap();
        assert!(moved.matches(&token));
        assert_eq!(moved.missed_from(12), a.missed_from(12));
        assert!(ServerReplay::new().export().is_none(), "no token yet");
        let mut bad = a.export().unwrap();
        bad.secret.pop();
        assert!(
            ServerReplay::import(bad)
                .err()
                .unwrap()
                .contains("replay.secret")
        );
        let mut bad = a.export().unwrap();
        bad.sent_bytes = 1;
        assert!(
            ServerReplay::import(bad)
                .err()
                .unwrap()
                .contains("replay.kept")
        );
    }
}
