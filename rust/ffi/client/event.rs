//! The events an `mmo_client` reports through `mmo_client_poll_event`, as plain C types:
//! the event kind, the disconnect reason (the stable wire codes plus one local code for a
//! connection that was never made), the chat channel, and the flat event struct.

use mmo_core::control::{ChatChannel, DisconnectReason};
use mmo_core::session::client::ClientEvent;

use crate::types::{mmo_character_state, mmo_vec3};

/// What an `mmo_client_event` reports (`mmo_client_event.kind`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum mmo_client_event_kind {
    /// Not an event (only in a zeroed struct; never returned).
    #[default]
    None = 0,
    /// Logged in: `entity_id` is the controlled entity, `spawn` its starting state. The
    /// local character exists from now on; inputs may be sent.
    Welcome = 1,
    /// A remote entity came into view: `entity_id`, `archetype`, `position_m`.
    EntitySpawned = 2,
    /// A remote entity left the view: `entity_id`.
    EntityDespawned = 3,
    /// The server disagreed with the prediction; it was corrected (and is smoothed):
    /// `position_error_m`, `replayed_inputs`.
    Correction = 4,
    /// A chat line: `entity_id` is the sender, `chat_channel`, the text with
    /// `mmo_client_event_text` (`text_len_bytes` bytes).
    Chat = 5,
    /// The session is over and the connection closed: `disconnect_reason`, the message
    /// with `mmo_client_event_text`. The last event of a client.
    Disconnected = 6,
}

/// Why a client's session ended (`mmo_client_event.disconnect_reason`). Values 1..=999 are
/// the protocol's stable disconnect codes (never reused); 1000 and up are local to this
/// library and never sent on the wire.
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum mmo_disconnect_reason {
    /// No reason (only in events of other kinds).
    #[default]
    None = 0,
    /// The client asked to leave (`mmo_client_disconnect`).
    ClientQuit = 1,
    /// The server is shutting down.
    ServerShutdown = 2,
    /// Client and server speak different protocol versions.
    ProtocolMismatch = 3,
    /// The login token was refused (malformed, forged, expired, unknown).
    BadToken = 4,
    /// The server or zone is at capacity.
    ServerFull = 5,
    /// A peer broke the protocol.
    ProtocolViolation = 6,
    /// Nothing was heard from the server for `idle_timeout_ms`.
    Timeout = 7,
    /// Removed by the server (anti-cheat, an operator).
    Kicked = 8,
    /// The account logged in again from elsewhere.
    DuplicateLogin = 9,
    /// The connection could not be made: the host did not resolve, the QUIC handshake
    /// failed or timed out, or the server's certificate does not match the pinned
    /// fingerprint. The message says which.
    ConnectFailed = 1000,
}

impl From<DisconnectReason> for mmo_disconnect_reason {
    fn from(r: DisconnectReason) -> Self {
        match r {
            DisconnectReason::ClientQuit => mmo_disconnect_reason::ClientQuit,
            DisconnectReason::ServerShutdown => mmo_disconnect_reason::ServerShutdown,
            DisconnectReason::ProtocolMismatch => mmo_disconnect_reason::ProtocolMismatch,
            DisconnectReason::BadToken => mmo_disconnect_reason::BadToken,
            DisconnectReason::ServerFull => mmo_disconnect_reason::ServerFull,
            DisconnectReason::ProtocolViolation => mmo_disconnect_reason::ProtocolViolation,
            DisconnectReason::Timeout => mmo_disconnect_reason::Timeout,
            DisconnectReason::Kicked => mmo_disconnect_reason::Kicked,
            DisconnectReason::DuplicateLogin => mmo_disconnect_reason::DuplicateLogin,
        }
    }
}

/// Chat channel of a chat event.
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum mmo_chat_channel {
    /// Everyone in the sender's zone.
    #[default]
    Zone = 0,
    /// Everyone on the server.
    Global = 1,
}

impl From<ChatChannel> for mmo_chat_channel {
    fn from(c: ChatChannel) -> Self {
        match c {
            ChatChannel::Zone => mmo_chat_channel::Zone,
            ChatChannel::Global => mmo_chat_channel::Global,
        }
    }
}

impl From<mmo_chat_channel> for ChatChannel {
    fn from(c: mmo_chat_channel) -> Self {
        match c {
            mmo_chat_channel::Zone => ChatChannel::Zone,
            mmo_chat_channel::Global => ChatChannel::Global,
        }
    }
}

/// One client event. Only the fields named by `kind` are meaningful; the others are zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct mmo_client_event {
    /// What happened.
    pub kind: mmo_client_event_kind,
    /// Welcome: the controlled entity. Spawned/despawned: the remote entity. Chat: the
    /// sender.
    pub entity_id: u32,
    /// Spawned: the actor class to spawn.
    pub archetype: u16,
    /// Spawned: where the entity is, metres.
    pub position_m: mmo_vec3,
    /// Welcome: the local character's starting state.
    pub spawn: mmo_character_state,
    /// Correction: distance between predicted and authoritative position, metres (0 for a
    /// resync after the history ran out).
    pub position_error_m: f32,
    /// Correction: inputs replayed on top of the server's state.
    pub replayed_inputs: u32,
    /// Chat: the channel.
    pub chat_channel: mmo_chat_channel,
    /// Disconnected: why.
    pub disconnect_reason: mmo_disconnect_reason,
    /// Chat and disconnected: length in bytes (without NUL) of the text read with
    /// `mmo_client_event_text`; 0 for other kinds.
    pub text_len_bytes: usize,
}

/// The C event for a core event, and its text (chat line or disconnect message; empty for
/// other kinds).
pub(crate) fn to_c(event: ClientEvent) -> (mmo_client_event, String) {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let mut e = mmo_client_event::default();
    let mut text = String::new();
    match event {
        ClientEvent::Welcome {
            entity_id, spawn, ..
        } => {
            e.kind = mmo_client_event_kind::Welcome;
            e.entity_id = entity_id.0;
            e.spawn = (&spawn).into();
        }
        ClientEvent::EntityEntered {
            id,
            archetype,
            position_m,
        } => {
            e.kind = mmo_client_event_kind::EntitySpawned;
            e.entity_id = id.0;
            e.archetype = archetype;
            e.position_m = position_m.into();
        }
        ClientEvent::EntityLeft { id } => {
            e.kind = mmo_client_event_kind::EntityDespawned;
            e.entity_id = id.0;
        }
        ClientEvent::Corrected {
            position_error_m,
            replayed_inputs,
        } => {
            e.kind = mmo_client_event_kind::Correction;
            e.position_error_m = position_error_m;
            e.replayed_inputs = count(replayed_inputs);
        }
        ClientEvent::Chat {
            from,
            channel,
            text: line,
        } => {
            e.kind = mmo_client_event_kind::Chat;
            e.entity_id = from.0;
            e.chat_channel = channel.into();
            text = line;
        }
        ClientEvent::Disconnected { reason, message } => {
            return disconnected(reason.into(), message);
        }
        // Not forwarded by the caller (gameplay events get their own C functions).
        ClientEvent::AbilityResult(_)
        | ClientEvent::InventoryResult(_)
        | ClientEvent::Inventory(_)
        | ClientEvent::Resources(_)
        | ClientEvent::Combat(_) => {}
    }
    e.text_len_bytes = text.len();
    (e, text)
}

/// A disconnected event with `reason` and `message`.
pub(crate) fn disconnected(
    reason: mmo_disconnect_reason,
    message: String,
) -> (mmo_client_event, String) {
    let e = mmo_client_event {
        kind: mmo_client_event_kind::Disconnected,
        disconnect_reason: reason,
        text_len_bytes: message.len(),
        ..mmo_client_event::default()
    };
    (e, message)
}
