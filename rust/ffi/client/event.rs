//! The events an `mmo_client` reports through `mmo_client_poll_event`, as plain C types:
//! the event kind, the disconnect reason (the stable wire codes plus one local code for a
//! connection that was never made), the chat channel, the combat event kind, and the flat
//! event struct.
//!
//! Gameplay answers carry their refusal as the event text `"<kind>: <message>"`, where the
//! first `refusal_kind_len_bytes` bytes are the stable `snake_case` kind (such as
//! `inventory_bad_slot`). Inventory and resource changes carry no payload: the new state
//! is read with the gameplay functions (`gameplay.rs`).

use mmo_core::control::{ChatChannel, DisconnectReason};
use mmo_core::gameplay::messages::{CombatEvent, CombatEventKind, Refusal};
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
    /// A chat line: `chat_channel`; `entity_id` is the sender's entity when it is in this
    /// client's zone (0 otherwise); the text read with `mmo_client_event_text` is
    /// `"<sender name>: <line>"`, the name being its first `chat_from_len_bytes` bytes.
    Chat = 5,
    /// The session is over and the connection closed: `disconnect_reason`, the message
    /// with `mmo_client_event_text`. The last event of a client.
    Disconnected = 6,
    /// The server answered `mmo_client_use_ability`: `request`, `ability_id`, `accepted`
    /// (1 = the cast started), `cast_ms`, `global_cooldown_ms`, `cooldown_ms` (time left
    /// when the server decided). A refusal's `"<kind>: <message>"` is the event text, its
    /// kind the first `refusal_kind_len_bytes` bytes.
    AbilityResult = 7,
    /// The server answered `mmo_client_inventory_op`: `request`, `accepted` (1 = applied;
    /// an `INVENTORY_CHANGED` event came just before). A refusal's `"<kind>: <message>"` is
    /// the event text, its kind the first `refusal_kind_len_bytes` bytes.
    InventoryResult = 8,
    /// The inventory changed (also once after login): read it with
    /// `mmo_client_inventory_slot_count`, `mmo_client_inventory_slot` and
    /// `mmo_client_equipment_slot`.
    InventoryChanged = 9,
    /// The local character's pools changed (also once after login): read them with
    /// `mmo_client_resources`.
    ResourcesChanged = 10,
    /// Something happened in combat near the local character (or to it):
    /// `source_entity_id`, `target_entity_id` (also in `entity_id`), `has_ability` and
    /// `ability_id`, `combat_kind` and its values (`amount`, `dot_ticks`, `slow_factor`,
    /// `duration_ms`, `distance_m`), `target_health`, `target_health_max`, `server_tick`.
    Combat = 11,
    /// The server refused a chat line, join or leave of this client: the text is
    /// `"<kind>: <message>"` (kinds `chat_too_long`, `chat_empty`, `chat_rate_limited`,
    /// `chat_muted`, `chat_unknown_recipient`, `chat_bad_recipient`, `chat_not_joined`,
    /// `chat_cannot_leave`), the kind its first `refusal_kind_len_bytes` bytes.
    ChatRefused = 12,
    /// The server restarted the session from the character's last save (the zone process
    /// that ran it stopped): `entity_id` is the controlled entity from now on, `spawn` where
    /// it stands. Every remote entity left just before (an `ENTITY_DESPAWNED` each);
    /// requests not answered yet will not be; the inventory and pools follow.
    Rejoined = 13,
    /// The session continues over the connection `mmo_client_resume` opened: same entity,
    /// same prediction; control messages lost with the old connection were sent again both
    /// ways. Only after `mmo_client_resume`.
    Resumed = 14,
}

/// What happened in a combat event (`mmo_client_event.combat_kind`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum mmo_combat_kind {
    /// Not a combat event.
    #[default]
    None = 0,
    /// Health removed: `amount` points.
    Damage = 1,
    /// Health restored: `amount` points.
    Heal = 2,
    /// The target died.
    Died = 3,
    /// A damage over time effect started: `dot_ticks` ticks to come.
    DotApplied = 4,
    /// The target is slowed: speed multiplied by `slow_factor` for `duration_ms`.
    Slowed = 5,
    /// The target was pushed `distance_m` metres away.
    KnockedBack = 6,
    /// The target came back to life.
    Respawned = 7,
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
    /// A service the login needs (the character database) is unreachable; try again
    /// later.
    ServiceUnavailable = 10,
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
            DisconnectReason::ServiceUnavailable => mmo_disconnect_reason::ServiceUnavailable,
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
    /// Everyone on every server process.
    Global = 1,
    /// Players within the say radius of the speaker.
    Say = 2,
    /// One named player, wherever they are online.
    Whisper = 3,
}

impl From<ChatChannel> for mmo_chat_channel {
    fn from(c: ChatChannel) -> Self {
        match c {
            ChatChannel::Zone => mmo_chat_channel::Zone,
            ChatChannel::Global => mmo_chat_channel::Global,
            ChatChannel::Say => mmo_chat_channel::Say,
            ChatChannel::Whisper => mmo_chat_channel::Whisper,
        }
    }
}

impl From<mmo_chat_channel> for ChatChannel {
    fn from(c: mmo_chat_channel) -> Self {
        match c {
            mmo_chat_channel::Zone => ChatChannel::Zone,
            mmo_chat_channel::Global => ChatChannel::Global,
            mmo_chat_channel::Say => ChatChannel::Say,
            mmo_chat_channel::Whisper => ChatChannel::Whisper,
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
    /// sender. Combat: the target (as `target_entity_id`).
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
    /// Chat, disconnected and refused gameplay answers: length in bytes (without NUL) of
    /// the text read with `mmo_client_event_text`; 0 for other kinds.
    pub text_len_bytes: usize,
    /// Ability and inventory results: the request number their function returned.
    pub request: u32,
    /// Ability and inventory results: 1 when the server accepted the request, 0 when it
    /// refused it (the text says why).
    pub accepted: u8,
    /// Refused ability and inventory results: length in bytes of the refusal kind at the
    /// start of the text (`inventory_bad_slot`, `ability_cooldown`...); 0 otherwise.
    pub refusal_kind_len_bytes: usize,
    /// Ability results and combat events (when `has_ability` is 1): the ability.
    pub ability_id: u16,
    /// Combat: 1 when `ability_id` names the ability that caused it, 0 for respawns and
    /// items.
    pub has_ability: u8,
    /// Ability results: cast time left, ms (0 for instant abilities and refusals).
    pub cast_ms: u32,
    /// Ability results: global cooldown left when the server decided, ms.
    pub global_cooldown_ms: u32,
    /// Ability results: the ability's own cooldown left when the server decided, ms.
    pub cooldown_ms: u32,
    /// Combat: who caused it (the target itself for respawns and item use).
    pub source_entity_id: u32,
    /// Combat: who it happened to.
    pub target_entity_id: u32,
    /// Combat: what happened.
    pub combat_kind: mmo_combat_kind,
    /// Combat damage and heal: points.
    pub amount: u32,
    /// Combat damage over time applied: ticks to come.
    pub dot_ticks: u32,
    /// Combat slow: speed multiplier.
    pub slow_factor: f32,
    /// Combat slow: for how long, ms.
    pub duration_ms: u32,
    /// Combat knockback: distance, metres.
    pub distance_m: f32,
    /// Combat: the target's health after it, points.
    pub target_health: u32,
    /// Combat: the target's maximum health, points.
    pub target_health_max: u32,
    /// Combat: the server tick it happened at.
    pub server_tick: u32,
    /// Chat: length in bytes of the sender's name at the start of the text.
    pub chat_from_len_bytes: usize,
}

/// The C event for a core event, and its text (chat line, disconnect message or refusal;
/// empty for other kinds).
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
        ClientEvent::Rejoined {
            entity_id, spawn, ..
        } => {
            e.kind = mmo_client_event_kind::Rejoined;
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
        ClientEvent::Resumed => e.kind = mmo_client_event_kind::Resumed,
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
            from_name,
            from_entity,
            channel,
            text: line,
        } => {
            e.kind = mmo_client_event_kind::Chat;
            e.entity_id = from_entity.0;
            e.chat_channel = channel.into();
            e.chat_from_len_bytes = from_name.len();
            text = format!("{from_name}: {line}");
        }
        ClientEvent::ChatRefused { kind, message } => {
            e.kind = mmo_client_event_kind::ChatRefused;
            e.refusal_kind_len_bytes = kind.as_str().len();
            text = format!("{}: {message}", kind.as_str());
        }
        ClientEvent::Disconnected { reason, message } => {
            return disconnected(reason.into(), message);
        }
        ClientEvent::AbilityResult(result) => {
            e.kind = mmo_client_event_kind::AbilityResult;
            e.request = result.request;
            e.ability_id = result.ability.0;
            e.cast_ms = result.cast_ms;
            e.global_cooldown_ms = result.global_cooldown_ms;
            e.cooldown_ms = result.cooldown_ms;
            text = refusal(&mut e, result.refusal.as_ref());
        }
        ClientEvent::InventoryResult(result) => {
            e.kind = mmo_client_event_kind::InventoryResult;
            e.request = result.request;
            text = refusal(&mut e, result.refusal.as_ref());
        }
        ClientEvent::Inventory(_) => e.kind = mmo_client_event_kind::InventoryChanged,
        ClientEvent::Resources(_) => e.kind = mmo_client_event_kind::ResourcesChanged,
        ClientEvent::Combat(combat) => combat_to_c(&mut e, &combat),
    }
    e.text_len_bytes = text.len();
    (e, text)
}

/// Sets `accepted` and `refusal_kind_len_bytes` of a result event; returns its text
/// (`"<kind>: <message>"` for a refusal, empty otherwise).
fn refusal(e: &mut mmo_client_event, refusal: Option<&Refusal>) -> String {
    match refusal {
        None => {
            e.accepted = 1;
            String::new()
        }
        Some(r) => {
            e.accepted = 0;
            e.refusal_kind_len_bytes = r.kind.len();
            format!("{}: {}", r.kind, r.message)
        }
    }
}

/// Fills the combat fields of `e` from `c`.
fn combat_to_c(e: &mut mmo_client_event, c: &CombatEvent) {
    e.kind = mmo_client_event_kind::Combat;
    e.entity_id = c.target.0;
    e.source_entity_id = c.source.0;
    e.target_entity_id = c.target.0;
    if let Some(ability) = c.ability {
        e.has_ability = 1;
        e.ability_id = ability.0;
    }
    e.target_health = c.target_health;
    e.target_health_max = c.target_health_max;
    e.server_tick = c.tick.0;
    e.combat_kind = match c.kind {
        CombatEventKind::Damage { amount } => {
            e.amount = amount;
            mmo_combat_kind::Damage
        }
        CombatEventKind::Heal { amount } => {
            e.amount = amount;
            mmo_combat_kind::Heal
        }
        CombatEventKind::Died => mmo_combat_kind::Died,
        CombatEventKind::DotApplied { ticks } => {
            e.dot_ticks = ticks;
            mmo_combat_kind::DotApplied
        }
        CombatEventKind::Slowed {
            factor,
            duration_ms,
        } => {
            e.slow_factor = factor;
            e.duration_ms = duration_ms;
            mmo_combat_kind::Slowed
        }
        CombatEventKind::KnockedBack { distance_m } => {
            e.distance_m = distance_m;
            mmo_combat_kind::KnockedBack
        }
        CombatEventKind::Respawned => mmo_combat_kind::Respawned,
    };
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
