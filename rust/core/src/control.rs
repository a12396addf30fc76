//! Control messages: the reliable, ordered messages of the control stream (login, welcome,
//! chat, disconnect reasons, and the gameplay requests, results and events of
//! [`crate::gameplay::messages`]), and their framing.
//!
//! Messages are serde types encoded with postcard. On the stream each message is one frame:
//! an unsigned LEB128 length (at most [`MAX_FRAME_LEN_BYTES`]) followed by that many bytes of
//! postcard. [`FrameDecoder`] reassembles frames from arbitrary stream chunks and refuses a
//! declared length over the limit before buffering it, so a hostile peer cannot make us
//! allocate. The byte layout is specified in `codec/WIRE_FORMAT.md`.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::entity::{CharacterState, EntityId};
use crate::gameplay::messages::{
    AbilityRequest, AbilityResult, CombatEvent, InventoryRequest, InventoryResult, InventoryView,
    MAX_COMBAT_EVENTS, MAX_KIND_LEN_BYTES, MAX_MESSAGE_LEN_BYTES, Refusal, ResourceView,
};
use crate::movement::MovementConfig;
use crate::time::Tick;

/// Largest control frame body accepted or produced, in bytes.
pub const MAX_FRAME_LEN_BYTES: usize = 16 * 1024;

/// Longest chat text accepted, in bytes of UTF-8.
pub const MAX_CHAT_LEN_BYTES: usize = 512;

/// Longest login token accepted, in bytes.
pub const MAX_TOKEN_LEN_BYTES: usize = 4096;

/// Longest resumption token a server issues or a client presents, bytes
/// (`WIRE_FORMAT.md`, 8.10).
pub const MAX_RESUME_TOKEN_LEN_BYTES: usize = 64;

/// Why a connection ended or a login was refused. The numeric codes are stable and never
/// reused: they reach logs, metrics, the C ABI and the wire (encoded as the code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
#[repr(u16)]
pub enum DisconnectReason {
    /// The client asked to leave.
    ClientQuit = 1,
    /// The server is shutting down.
    ServerShutdown = 2,
    /// Client and server speak different protocol versions.
    ProtocolMismatch = 3,
    /// The login token is malformed, forged or expired.
    BadToken = 4,
    /// The server or zone is at capacity.
    ServerFull = 5,
    /// The peer broke the protocol (undecodable frame or datagram, message out of order).
    ProtocolViolation = 6,
    /// Nothing was heard from the peer for too long.
    Timeout = 7,
    /// Removed by the server (anti-cheat strikes, an operator).
    Kicked = 8,
    /// Logged in again from elsewhere.
    DuplicateLogin = 9,
    /// A service the login needs (the character database) is unreachable; try again later.
    ServiceUnavailable = 10,
}

impl DisconnectReason {
    /// The stable numeric code.
    #[must_use]
    pub fn code(self) -> u16 {
        self as u16
    }

    /// A short snake_case name for logs and metric labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientQuit => "client_quit",
            DisconnectReason::ServerShutdown => "server_shutdown",
            DisconnectReason::ProtocolMismatch => "protocol_mismatch",
            DisconnectReason::BadToken => "bad_token",
            DisconnectReason::ServerFull => "server_full",
            DisconnectReason::ProtocolViolation => "protocol_violation",
            DisconnectReason::Timeout => "timeout",
            DisconnectReason::Kicked => "kicked",
            DisconnectReason::DuplicateLogin => "duplicate_login",
            DisconnectReason::ServiceUnavailable => "service_unavailable",
        }
    }
}

impl DisconnectReason {
    /// Every reason, in code order.
    pub const ALL: [DisconnectReason; 10] = [
        DisconnectReason::ClientQuit,
        DisconnectReason::ServerShutdown,
        DisconnectReason::ProtocolMismatch,
        DisconnectReason::BadToken,
        DisconnectReason::ServerFull,
        DisconnectReason::ProtocolViolation,
        DisconnectReason::Timeout,
        DisconnectReason::Kicked,
        DisconnectReason::DuplicateLogin,
        DisconnectReason::ServiceUnavailable,
    ];
}

impl From<DisconnectReason> for u16 {
    fn from(reason: DisconnectReason) -> u16 {
        reason.code()
    }
}

impl TryFrom<u16> for DisconnectReason {
    type Error = String;
    fn try_from(code: u16) -> Result<Self, Self::Error> {
        DisconnectReason::ALL
            .into_iter()
            .find(|r| r.code() == code)
            .ok_or_else(|| format!("unknown disconnect reason code {code}"))
    }
}

/// Chat channel of a chat message. Zone and global can be left and joined again
/// ([`ClientControl::ChatLeave`]); say and whisper cannot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChatChannel {
    /// Everyone in the sender's zone (every process serving that zone id).
    Zone,
    /// Everyone on every server process.
    Global,
    /// Players within the say radius of the speaker.
    Say,
    /// One named player, wherever they are online.
    Whisper,
}

impl ChatChannel {
    /// Every channel, in wire order.
    pub const ALL: [ChatChannel; 4] = [
        ChatChannel::Zone,
        ChatChannel::Global,
        ChatChannel::Say,
        ChatChannel::Whisper,
    ];

    /// A short snake_case name for logs, metric labels and the Redis payload.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ChatChannel::Zone => "zone",
            ChatChannel::Global => "global",
            ChatChannel::Say => "say",
            ChatChannel::Whisper => "whisper",
        }
    }

    /// Whether a player may leave (and join again) this channel.
    #[must_use]
    pub fn can_leave(self) -> bool {
        matches!(self, ChatChannel::Zone | ChatChannel::Global)
    }
}

/// Why a chat line or a join/leave was refused. The kinds are stable (their names reach
/// clients, logs and metric labels); append new ones at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChatRefusalKind {
    /// Over [`MAX_CHAT_LEN_BYTES`].
    TooLong,
    /// Nothing printable left after control characters were removed.
    Empty,
    /// The player sends faster than the rate limit.
    RateLimited,
    /// The player is muted (the message says until when).
    Muted,
    /// The whisper's recipient is not online anywhere.
    UnknownRecipient,
    /// The whisper's recipient is missing or not a valid character name, or the line names
    /// a recipient on a channel that takes none.
    BadRecipient,
    /// The player left this channel.
    NotJoined,
    /// Say and whisper cannot be left.
    CannotLeave,
}

impl ChatRefusalKind {
    /// Every kind, in wire order.
    pub const ALL: [ChatRefusalKind; 8] = [
        ChatRefusalKind::TooLong,
        ChatRefusalKind::Empty,
        ChatRefusalKind::RateLimited,
        ChatRefusalKind::Muted,
        ChatRefusalKind::UnknownRecipient,
        ChatRefusalKind::BadRecipient,
        ChatRefusalKind::NotJoined,
        ChatRefusalKind::CannotLeave,
    ];

    /// The stable name (`chat_too_long`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ChatRefusalKind::TooLong => "chat_too_long",
            ChatRefusalKind::Empty => "chat_empty",
            ChatRefusalKind::RateLimited => "chat_rate_limited",
            ChatRefusalKind::Muted => "chat_muted",
            ChatRefusalKind::UnknownRecipient => "chat_unknown_recipient",
            ChatRefusalKind::BadRecipient => "chat_bad_recipient",
            ChatRefusalKind::NotJoined => "chat_not_joined",
            ChatRefusalKind::CannotLeave => "chat_cannot_leave",
        }
    }
}

/// Messages from client to server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClientControl {
    /// First message on the stream.
    Login {
        /// The client's [`crate::PROTOCOL_VERSION`].
        protocol_version: u16,
        /// Session token issued by the login service (at most [`MAX_TOKEN_LEN_BYTES`]).
        token: String,
    },
    /// A chat line (at most [`MAX_CHAT_LEN_BYTES`]).
    Chat {
        /// Where to say it.
        channel: ChatChannel,
        /// The recipient's character name for [`ChatChannel::Whisper`] (at most
        /// [`crate::persist::MAX_CHARACTER_NAME_BYTES`]); `None` on every other channel.
        to: Option<String>,
        /// What to say.
        text: String,
    },
    /// The client is leaving.
    Disconnect,
    /// `ServerExecuteAbility`: use an ability (answered by [`ServerControl::AbilityResult`]).
    UseAbility(AbilityRequest),
    /// Stop the cast in progress (no refund).
    CancelCast,
    /// An inventory operation (answered by [`ServerControl::InventoryResult`]).
    Inventory(InventoryRequest),
    /// Receive this channel again (zone and global; others are refused).
    ChatJoin(ChatChannel),
    /// Stop receiving this channel (zone and global; others are refused).
    ChatLeave(ChatChannel),
    /// The answer to [`ServerControl::Rejoined`]: the client reset its snapshot history, and
    /// its input datagrams from `next_datagram_seq` on (the header `seq` of the first one
    /// it sends after the reset) acknowledge the restarted session's snapshots only
    /// (`WIRE_FORMAT.md`, 8.9).
    RejoinAccepted {
        /// The header `seq` of the client's next input datagram.
        next_datagram_seq: u16,
    },
    /// First message on a new connection that continues a session whose connection was
    /// lost (instead of `Login`; `WIRE_FORMAT.md`, 8.10). In a fleet the gateway reads it
    /// and asks the zone processes for the session; the session never sees it.
    Resume {
        /// The client's [`crate::PROTOCOL_VERSION`].
        protocol_version: u16,
        /// The session's last [`ServerControl::ResumeToken`] (at most
        /// [`MAX_RESUME_TOKEN_LEN_BYTES`]).
        token: Vec<u8>,
        /// Control-stream bytes of whole frames the client took after that token's frame.
        received_bytes: u64,
    },
}

/// What a welcome (or `Rejoined`) tells the client besides its entity and spawn: the
/// server's content and simulation, so the client predicts as the server simulates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WelcomeTerms {
    /// SHA-256 of the gameplay content.
    pub content_hash: [u8; 32],
    /// The movement settings (its geometry is the server's; only `world_hash` is sent).
    pub movement: MovementConfig,
    /// SHA-256 of the world geometry file, zeros without one.
    pub world_hash: [u8; 32],
}

/// Messages from server to client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServerControl {
    /// Login accepted.
    Welcome {
        /// The server's [`crate::PROTOCOL_VERSION`].
        protocol_version: u16,
        /// The entity the client controls.
        entity_id: EntityId,
        /// Server tick at the time of the welcome.
        tick: Tick,
        /// Simulation rate in Hz.
        tick_rate_hz: u32,
        /// Where the character starts.
        spawn: CharacterState,
        /// SHA-256 of the server's gameplay content
        /// ([`crate::gameplay::content::Content::hash`]); a client with other content
        /// shows wrong names and costs.
        content_hash: [u8; 32],
        /// The movement settings the client predicts with (the geometry is not sent: see
        /// `world_hash`).
        movement: MovementConfig,
        /// SHA-256 of the server's world geometry file (`geometry/WORLD_FORMAT.md`), all
        /// zeros when the server has none (a flat world); a client with other geometry is
        /// corrected at every obstacle.
        world_hash: [u8; 32],
    },
    /// A chat line from someone.
    Chat {
        /// Who said it: a character name (at most
        /// [`crate::persist::MAX_CHARACTER_NAME_BYTES`]).
        from_name: String,
        /// The speaker's entity when in the receiver's zone; `EntityId(0)` when the line
        /// came from another zone or process.
        from_entity: EntityId,
        /// Where it was said.
        channel: ChatChannel,
        /// What was said.
        text: String,
    },
    /// The connection is ending; sent before the server closes it.
    Disconnect {
        /// Why.
        reason: DisconnectReason,
        /// Human-readable detail for logs and the player.
        message: String,
    },
    /// The answer to [`ClientControl::UseAbility`].
    AbilityResult(AbilityResult),
    /// The answer to [`ClientControl::Inventory`].
    InventoryResult(InventoryResult),
    /// The owner's inventory: after login and after every change.
    Inventory(InventoryView),
    /// The owner's pools: after login and whenever a whole point changes.
    Resources(ResourceView),
    /// Combat events of one tick (at most [`MAX_COMBAT_EVENTS`]).
    Combat(Vec<CombatEvent>),
    /// A chat line, join or leave of this client was refused.
    ChatRefused {
        /// Why (stable kind).
        kind: ChatRefusalKind,
        /// Human-readable detail (at most [`MAX_MESSAGE_LEN_BYTES`]); for a mute, until when.
        message: String,
    },
    /// The session was restarted from the character's last save by another zone process
    /// (the one that ran it stopped). Only after the welcome. The client forgets every
    /// remote entity, every snapshot and every unanswered request, and continues from
    /// `spawn` as the new `entity_id`; its input sequence numbers go on
    /// (`WIRE_FORMAT.md`, 8.9).
    Rejoined {
        /// The entity the client controls from now on.
        entity_id: EntityId,
        /// Server tick at the time of the rejoin.
        tick: Tick,
        /// Simulation rate in Hz (the session's so far: another is a protocol violation).
        tick_rate_hz: u32,
        /// Where the character stands (its last saved state).
        spawn: CharacterState,
        /// SHA-256 of the server's gameplay content, as in the welcome. (The movement
        /// settings and world are not repeated: a fleet runs one of each.)
        content_hash: [u8; 32],
    },
    /// The secret with which the client can continue this session on a new connection if
    /// its connection is lost (`WIRE_FORMAT.md`, 8.10). Sent by a fleet, never by a single
    /// server; may come before the welcome; a later one replaces an earlier one. The
    /// control-stream bytes counted for a resumption start after this frame.
    ResumeToken {
        /// Opaque to the client (at most [`MAX_RESUME_TOKEN_LEN_BYTES`]).
        token: Vec<u8>,
    },
    /// The answer to [`ClientControl::Resume`]: the session continues on this connection.
    /// The client sends its control frames again from the one numbered `received_frames`.
    Resumed {
        /// Control frames of the client the session took: every frame since the `Login`
        /// (the `Login` is frame 0) or, after a rejoin, since the `RejoinAccepted` (frame
        /// 0).
        received_frames: u64,
    },
}

/// What can go wrong reading or writing control frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The declared frame length exceeds the limit.
    #[error("control frame of {len_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    FrameTooLong {
        /// Declared or produced length.
        len_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// The length prefix is not a valid LEB128 value.
    #[error("control frame length prefix is malformed")]
    BadLengthPrefix,
    /// The frame body is not a valid message.
    #[error("control frame body does not decode: {0}")]
    Body(String),
    /// A field is outside its documented limit.
    #[error("control message field {field} is {len_bytes} bytes, over the limit of {max_bytes}")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// The peer speaks another protocol version.
    #[error("protocol version {peer} does not match ours ({ours})")]
    VersionMismatch {
        /// The peer's version.
        peer: u16,
        /// Ours.
        ours: u16,
    },
}

impl ClientControl {
    /// Checks the documented field limits (a decoded message may still be hostile).
    pub fn validate(&self) -> Result<(), ControlError> {
        match self {
            ClientControl::Login { token, .. } => check_len("token", token, MAX_TOKEN_LEN_BYTES),
            ClientControl::Chat { to, text, .. } => {
                check_len("chat text", text, MAX_CHAT_LEN_BYTES)?;
                check_len(
                    "chat recipient",
                    to.as_deref().unwrap_or(""),
                    crate::persist::MAX_CHARACTER_NAME_BYTES,
                )
            }
            ClientControl::ChatJoin(_)
            | ClientControl::ChatLeave(_)
            | ClientControl::Disconnect
            | ClientControl::UseAbility(_)
            | ClientControl::CancelCast
            | ClientControl::Inventory(_)
            | ClientControl::RejoinAccepted { .. } => Ok(()),
            ClientControl::Resume { token, .. } => check_bytes_len(token),
        }
    }
}

impl ServerControl {
    /// Checks the documented field limits.
    pub fn validate(&self) -> Result<(), ControlError> {
        match self {
            ServerControl::Chat {
                from_name, text, ..
            } => {
                check_len("chat text", text, MAX_CHAT_LEN_BYTES)?;
                check_len(
                    "chat sender",
                    from_name,
                    crate::persist::MAX_CHARACTER_NAME_BYTES,
                )
            }
            ServerControl::ChatRefused { message, .. } => {
                check_len("chat refusal message", message, MAX_MESSAGE_LEN_BYTES)
            }
            ServerControl::AbilityResult(AbilityResult { refusal, .. })
            | ServerControl::InventoryResult(InventoryResult { refusal, .. }) => {
                check_refusal(refusal.as_ref())
            }
            ServerControl::Combat(events) if events.len() > MAX_COMBAT_EVENTS => {
                Err(ControlError::FieldTooLong {
                    field: "combat events",
                    len_bytes: events.len(),
                    max_bytes: MAX_COMBAT_EVENTS,
                })
            }
            ServerControl::ResumeToken { token } => check_bytes_len(token),
            ServerControl::Welcome { .. }
            | ServerControl::Rejoined { .. }
            | ServerControl::Resumed { .. }
            | ServerControl::Disconnect { .. }
            | ServerControl::Inventory(_)
            | ServerControl::Resources(_)
            | ServerControl::Combat(_) => Ok(()),
        }
    }
}

fn check_refusal(refusal: Option<&Refusal>) -> Result<(), ControlError> {
    match refusal {
        Some(r) => {
            check_len("refusal kind", &r.kind, MAX_KIND_LEN_BYTES)?;
            check_len("refusal message", &r.message, MAX_MESSAGE_LEN_BYTES)
        }
        None => Ok(()),
    }
}

fn check_bytes_len(token: &[u8]) -> Result<(), ControlError> {
    if token.len() > MAX_RESUME_TOKEN_LEN_BYTES {
        Err(ControlError::FieldTooLong {
            field: "resume token",
            len_bytes: token.len(),
            max_bytes: MAX_RESUME_TOKEN_LEN_BYTES,
        })
    } else {
        Ok(())
    }
}

fn check_len(field: &'static str, text: &str, max_bytes: usize) -> Result<(), ControlError> {
    if text.len() > max_bytes {
        Err(ControlError::FieldTooLong {
            field,
            len_bytes: text.len(),
            max_bytes,
        })
    } else {
        Ok(())
    }
}

/// Compares a peer's protocol version with [`crate::PROTOCOL_VERSION`].
pub fn check_protocol_version(peer: u16) -> Result<(), ControlError> {
    if peer == crate::PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ControlError::VersionMismatch {
            peer,
            ours: crate::PROTOCOL_VERSION,
        })
    }
}

/// Appends one frame (length prefix + postcard body) carrying `message` to `out`.
pub fn encode_frame<T: Serialize>(message: &T, out: &mut Vec<u8>) -> Result<(), ControlError> {
    let body = postcard::to_stdvec(message).map_err(|e| ControlError::Body(e.to_string()))?;
    if body.len() > MAX_FRAME_LEN_BYTES {
        return Err(ControlError::FrameTooLong {
            len_bytes: body.len(),
            max_bytes: MAX_FRAME_LEN_BYTES,
        });
    }
    let mut len = body.len();
    loop {
        // Low 7 bits of what is left, so the cast cannot truncate meaningful bits.
        let byte = (len & 0x7F) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&body);
    Ok(())
}

/// Reassembles frames from stream chunks.
///
/// Invariant: `buf` holds at most one partial frame plus whatever complete frames were pushed
/// and not yet taken; a declared length over [`MAX_FRAME_LEN_BYTES`] is refused at once.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// An empty decoder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned as frames.
    #[must_use]
    pub fn buffered_len_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` when more bytes are needed, or an error when the
    /// stream is corrupt (the connection should then be closed with
    /// [`DisconnectReason::ProtocolViolation`]).
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ControlError> {
        let Some((body_len, prefix_len)) = read_length_prefix(&self.buf)? else {
            return Ok(None);
        };
        let frame_len = prefix_len + body_len;
        if self.buf.len() < frame_len {
            return Ok(None);
        }
        let result = postcard::from_bytes::<T>(&self.buf[prefix_len..frame_len])
            .map_err(|e| ControlError::Body(e.to_string()));
        self.buf.drain(..frame_len);
        result.map(Some)
    }
}

/// Parses a LEB128 length prefix: `Ok(None)` if incomplete, else `(body_len, prefix_len)`.
fn read_length_prefix(buf: &[u8]) -> Result<Option<(usize, usize)>, ControlError> {
    let mut value = 0usize;
    for (i, &byte) in buf.iter().enumerate() {
        // MAX_FRAME_LEN_BYTES fits in 3 LEB128 bytes; a 4th byte can only mean too long.
        if i >= 3 {
            return Err(ControlError::BadLengthPrefix);
        }
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(ControlError::BadLengthPrefix); // non-minimal encoding
            }
            if value > MAX_FRAME_LEN_BYTES {
                return Err(ControlError::FrameTooLong {
                    len_bytes: value,
                    max_bytes: MAX_FRAME_LEN_BYTES,
                });
            }
            return Ok(Some((value, i + 1)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use glam::Vec3;
    use proptest::prelude::*;

    fn welcome() -> ServerControl {
        ServerControl::Welcome {
            protocol_version: crate::PROTOCOL_VERSION,
            entity_id: EntityId(7),
            tick: Tick(1234),
            tick_rate_hz: 30,
            spawn: CharacterState::at(Vec3::new(1.0, 2.0, 0.0)),
            content_hash: [7; 32],
            movement: MovementConfig::default(),
            world_hash: [9; 32],
        }
    }

    #[test]
    fn frames_round_trip_across_arbitrary_chunking() {
        let messages = vec![
            ClientControl::Login {
                protocol_version: 1,
                token: "abc".into(),
            },
            ClientControl::Chat {
                channel: ChatChannel::Zone,
                to: None,
                text: "x".repeat(300),
            },
            ClientControl::Chat {
                channel: ChatChannel::Whisper,
                to: Some("Bob".into()),
                text: "psst".into(),
            },
            ClientControl::ChatJoin(ChatChannel::Global),
            ClientControl::ChatLeave(ChatChannel::Zone),
            ClientControl::Disconnect,
        ];
        let mut stream = Vec::new();
        for m in &messages {
            encode_frame(m, &mut stream).unwrap();
        }
        for chunk in [1, 2, 7, stream.len()] {
            let mut decoder = FrameDecoder::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                decoder.push(piece);
                while let Some(m) = decoder.next_message::<ClientControl>().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, messages, "chunk size {chunk}");
            assert_eq!(decoder.buffered_len_bytes(), 0);
        }
        let mut out = Vec::new();
        encode_frame(&welcome(), &mut out).unwrap();
        let mut decoder = FrameDecoder::new();
        decoder.push(&out);
        assert_eq!(
            decoder.next_message::<ServerControl>().unwrap(),
            Some(welcome())
        );
    }

    #[test]
    fn oversized_declared_length_is_refused_before_buffering() {
        let mut decoder = FrameDecoder::new();
        // 0x80 0x80 0x02 = 32768 > 16384
        decoder.push(&[0x80, 0x80, 0x02]);
        assert_eq!(
            decoder.next_message::<ClientControl>(),
            Err(ControlError::FrameTooLong {
                len_bytes: 32768,
                max_bytes: MAX_FRAME_LEN_BYTES
            })
        );
        let mut decoder = FrameDecoder::new();
        decoder.push(&[0x80, 0x80, 0x80, 0x01]);
        assert_eq!(
            decoder.next_message::<ClientControl>(),
            Err(ControlError::BadLengthPrefix)
        );
    }

    #[test]
    fn oversized_message_is_not_encoded() {
        let big = ClientControl::Chat {
            channel: ChatChannel::Global,
            to: None,
            text: "y".repeat(20_000),
        };
        let mut out = Vec::new();
        assert!(matches!(
            encode_frame(&big, &mut out),
            Err(ControlError::FrameTooLong { .. })
        ));
        assert!(out.is_empty(), "nothing written on failure");
    }

    #[test]
    fn field_limits_and_versions_are_checked() {
        let chat = ClientControl::Chat {
            channel: ChatChannel::Zone,
            to: None,
            text: "z".repeat(513),
        };
        let whisper = ClientControl::Chat {
            channel: ChatChannel::Whisper,
            to: Some("n".repeat(200)),
            text: "hi".into(),
        };
        assert!(matches!(
            whisper.validate(),
            Err(ControlError::FieldTooLong {
                field: "chat recipient",
                ..
            })
        ));
        let line = ServerControl::Chat {
            from_name: "x".repeat(200),
            from_entity: EntityId(0),
            channel: ChatChannel::Global,
            text: "hi".into(),
        };
        assert!(line.validate().is_err());
        assert!(matches!(
            chat.validate(),
            Err(ControlError::FieldTooLong {
                field: "chat text",
                ..
            })
        ));
        assert!(check_protocol_version(crate::PROTOCOL_VERSION).is_ok());
        assert_eq!(
            check_protocol_version(crate::PROTOCOL_VERSION + 1),
            Err(ControlError::VersionMismatch {
                peer: crate::PROTOCOL_VERSION + 1,
                ours: crate::PROTOCOL_VERSION
            })
        );
    }

    #[test]
    fn garbage_body_is_an_error_and_the_frame_is_consumed() {
        let mut decoder = FrameDecoder::new();
        decoder.push(&[2, 0xFF, 0xFF]);
        assert!(matches!(
            decoder.next_message::<ClientControl>(),
            Err(ControlError::Body(_))
        ));
        assert_eq!(decoder.buffered_len_bytes(), 0);
    }

    /// The byte layout of `WIRE_FORMAT.md` section 7, computed by hand.
    #[test]
    fn frames_match_the_specified_bytes() {
        let mut out = Vec::new();
        encode_frame(
            &ClientControl::Login {
                protocol_version: 1,
                token: "abc".into(),
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [0x06, 0x00, 0x01, 0x03, b'a', b'b', b'c']);
        out.clear();
        let bye = ServerControl::Disconnect {
            reason: DisconnectReason::ServerShutdown,
            message: "bye".into(),
        };
        encode_frame(&bye, &mut out).unwrap();
        assert_eq!(out, [0x06, 0x02, 0x02, 0x03, b'b', b'y', b'e']);
        out.clear();
        let rejoined = ServerControl::Rejoined {
            entity_id: EntityId(7),
            tick: Tick(1234),
            tick_rate_hz: 30,
            spawn: CharacterState::at(Vec3::new(1.0, 2.0, 0.0)),
            content_hash: [7; 32],
        };
        encode_frame(&rejoined, &mut out).unwrap();
        assert_eq!(out.len(), 67);
        assert_eq!(out[..6], [0x42, 0x09, 0x07, 0xd2, 0x09, 0x1e]);
        assert_eq!(out[6..10], 1.0f32.to_le_bytes());
        assert_eq!(out[10..14], 2.0f32.to_le_bytes());
        assert!(out[14..34].iter().all(|&b| b == 0));
        assert_eq!(out[34], 1);
        assert_eq!(out[35..], [7; 32]);
        let mut decoder = FrameDecoder::new();
        decoder.push(&out);
        assert_eq!(decoder.next_message::<ServerControl>(), Ok(Some(rejoined)));
        out.clear();
        encode_frame(
            &ClientControl::Chat {
                channel: ChatChannel::Global,
                to: None,
                text: "hi".into(),
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [0x06, 0x01, 0x01, 0x00, 0x02, b'h', b'i']);
        out.clear();
        encode_frame(
            &ClientControl::Chat {
                channel: ChatChannel::Whisper,
                to: Some("Bo".into()),
                text: "hi".into(),
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            [0x09, 0x01, 0x03, 0x01, 0x02, b'B', b'o', 0x02, b'h', b'i']
        );
        out.clear();
        encode_frame(&ClientControl::ChatLeave(ChatChannel::Global), &mut out).unwrap();
        assert_eq!(out, [0x02, 0x07, 0x01]);
        out.clear();
        encode_frame(
            &ServerControl::Chat {
                from_name: "Al".into(),
                from_entity: EntityId(5),
                channel: ChatChannel::Say,
                text: "yo".into(),
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            [0x09, 0x01, 0x02, b'A', b'l', 0x05, 0x02, 0x02, b'y', b'o']
        );
        out.clear();
        encode_frame(
            &ServerControl::ChatRefused {
                kind: ChatRefusalKind::Muted,
                message: "m".into(),
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [0x04, 0x08, 0x03, 0x01, b'm']);
        out.clear();
        encode_frame(
            &ClientControl::Inventory(crate::gameplay::messages::InventoryRequest {
                request: 1,
                op: crate::gameplay::messages::InventoryOp::Move { from: 0, to: 23 },
            }),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [0x05, 0x05, 0x01, 0x00, 0x00, 0x17]);
        out.clear();
        encode_frame(
            &ClientControl::UseAbility(AbilityRequest {
                request: 2,
                ability: crate::gameplay::content::AbilityId(0),
                target: crate::gameplay::messages::WireTarget::Entity(EntityId(9)),
                view_tick: Tick(300),
                view_fraction: 0.5,
            }),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            [
                0x0b, 0x03, 0x02, 0x00, 0x01, 0x09, 0xac, 0x02, 0x00, 0x00, 0x00, 0x3f
            ]
        );
        // An unknown reason code is a decode error, not a panic.
        let mut decoder = FrameDecoder::new();
        decoder.push(&[0x03, 0x02, 0x63, 0x00]);
        assert!(matches!(
            decoder.next_message::<ServerControl>(),
            Err(ControlError::Body(_))
        ));
    }

    #[test]
    fn chat_refusal_kinds_are_stable() {
        let names: Vec<&str> = ChatRefusalKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "chat_too_long",
                "chat_empty",
                "chat_rate_limited",
                "chat_muted",
                "chat_unknown_recipient",
                "chat_bad_recipient",
                "chat_not_joined",
                "chat_cannot_leave"
            ]
        );
        for kind in ChatRefusalKind::ALL {
            let message = ServerControl::ChatRefused {
                kind,
                message: kind.as_str().into(),
            };
            let mut out = Vec::new();
            encode_frame(&message, &mut out).unwrap();
            let mut decoder = FrameDecoder::new();
            decoder.push(&out);
            assert_eq!(
                decoder.next_message::<ServerControl>().unwrap(),
                Some(message)
            );
        }
        assert!(ChatChannel::Global.can_leave() && ChatChannel::Zone.can_leave());
        assert!(!ChatChannel::Say.can_leave() && !ChatChannel::Whisper.can_leave());
    }

    #[test]
    fn disconnect_codes_are_stable() {
        for reason in DisconnectReason::ALL {
            assert_eq!(DisconnectReason::try_from(reason.code()), Ok(reason));
        }
        assert_eq!(DisconnectReason::ClientQuit.code(), 1);
        assert_eq!(DisconnectReason::DuplicateLogin.code(), 9);
        assert_eq!(DisconnectReason::Kicked.as_str(), "kicked");
    }

    proptest! {
        #[test]
        fn random_stream_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut decoder = FrameDecoder::new();
            decoder.push(&bytes);
            for _ in 0..8 {
                match decoder.next_message::<ClientControl>() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
