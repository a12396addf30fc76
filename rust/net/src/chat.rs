//! The in-process chat hub: every zone thread of a server hands it the chat lines, joins
//! and leaves of its players; it checks them with [`mmo_core::chat::ChatMember`] (one per
//! online character, so limits and mutes follow a player across zones) and routes zone,
//! global and whisper lines to the zone threads that hold their recipients (say stays in
//! the speaker's zone: [`Zone::say`]).
//!
//! A shared registry maps each online character name to its zone and connection, like the
//! account registry of [`crate::zone_thread`]. Lines also go to a [`ChatBridge`], which
//! carries them to other server processes (the Redis bridge of `mmo-server`) and hands
//! theirs back through [`ChatInbound`]; the default [`InProcessBridge`] does nothing, and a
//! whisper to a name not online in this process is then refused `chat_unknown_recipient`.
//!
//! Nothing here blocks a zone thread: the registry lock is held for one lookup or one pass
//! over the online players, and deliveries go through the zones' unbounded peer channels.
//! A line routed while its recipient is being handed to another zone is lost for that
//! recipient (the next one reaches it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use mmo_core::chat::{ChatConfig, ChatLine, ChatMember, ChatRefusal};
use mmo_core::control::{ChatChannel, ChatRefusalKind};
use mmo_core::entity::EntityId;
use mmo_core::zone::{ConnectionId, Zone};
use tokio::sync::mpsc;

use crate::zone_thread::PeerMsg;

/// Counter of admitted chat lines, labelled `channel` (say, zone, global, whisper).
pub const CHAT_LINES_TOTAL: &str = "mmo_chat_lines_total";
/// Counter of refused chat requests, labelled `kind` (`chat_rate_limited`, ...).
pub const CHAT_REFUSALS_TOTAL: &str = "mmo_chat_refusals_total";

/// Carries chat lines to and from other server processes.
pub trait ChatBridge: Send + Sync + std::fmt::Debug {
    /// Called once when the server starts: lines and refusals from other processes go to
    /// `inbound`.
    fn attach(&self, inbound: ChatInbound);
    /// Whether lines can reach other processes. When `false`, a whisper to a name not
    /// online here is refused at once.
    fn is_remote(&self) -> bool;
    /// A zone, global or whisper line of this process for the others. Called on zone
    /// threads: must not block (queue it).
    fn publish(&self, line: &ChatLine);
    /// A character came online (`true`) or went offline in this process. Must not block.
    fn presence(&self, name: &str, online: bool);
}

/// The default bridge: chat stays in this process.
#[derive(Debug, Default, Clone, Copy)]
pub struct InProcessBridge;

impl ChatBridge for InProcessBridge {
    fn attach(&self, _inbound: ChatInbound) {}
    fn is_remote(&self) -> bool {
        false
    }
    fn publish(&self, _line: &ChatLine) {}
    fn presence(&self, _name: &str, _online: bool) {}
}

/// What the hub tells a zone thread (carried by its peer channel).
#[derive(Debug)]
pub(crate) enum ChatDelivery {
    /// Send `line` to these connections of the zone; `from_entity` is the speaker's entity
    /// when it is in that zone, else `EntityId(0)`.
    Line {
        line: Arc<ChatLine>,
        from_entity: EntityId,
        to: Vec<ConnectionId>,
    },
    /// Tell this connection its line was refused (decided after it left the zone thread,
    /// e.g. by another process).
    Refused(ConnectionId, ChatRefusal),
}

/// One online character.
#[derive(Debug)]
struct Presence {
    zone: u16,
    connection: ConnectionId,
    member: ChatMember,
}

/// Invariant: `by_conn[c] == name` exactly when `by_name[name].connection == c`.
#[derive(Debug, Default)]
struct Online {
    by_name: BTreeMap<String, Presence>,
    by_conn: BTreeMap<ConnectionId, String>,
}

#[derive(Debug)]
struct HubInner {
    config: ChatConfig,
    peers: Arc<[mpsc::UnboundedSender<PeerMsg>]>,
    online: Mutex<Online>,
    bridge: Arc<dyn ChatBridge>,
}

/// The server's chat hub (cheap to clone; shared by every zone thread).
#[derive(Clone, Debug)]
pub struct ChatHub {
    inner: Arc<HubInner>,
}

/// Lines and refusals from other processes, handed to the hub by a [`ChatBridge`]. It does
/// not keep the hub alive: once the server is gone, [`ChatInbound::is_closed`] is true and
/// the bridge should stop.
#[derive(Clone, Debug)]
pub struct ChatInbound {
    inner: Weak<HubInner>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ChatHub {
    /// A hub routing to the zone threads' peer channels (indexed by zone id).
    pub(crate) fn new(
        config: ChatConfig,
        peers: Arc<[mpsc::UnboundedSender<PeerMsg>]>,
        bridge: Option<Arc<dyn ChatBridge>>,
    ) -> Self {
        let bridge = bridge.unwrap_or_else(|| Arc::new(InProcessBridge));
        let hub = ChatHub {
            inner: Arc::new(HubInner {
                config,
                peers,
                online: Mutex::new(Online::default()),
                bridge,
            }),
        };
        hub.inner.bridge.attach(ChatInbound {
            inner: Arc::downgrade(&hub.inner),
        });
        hub
    }

    /// Mutes `name` until `until_ms` (Unix ms), an operator action. Returns whether the
    /// character is online in this process.
    pub fn mute(&self, name: &str, until_ms: u64) -> bool {
        let mut online = self.inner.lock();
        match online.by_name.get_mut(name) {
            Some(p) => {
                p.member.mute_until(until_ms);
                true
            }
            None => false,
        }
    }

    /// Names of the characters online in this process.
    #[must_use]
    pub fn online_names(&self) -> Vec<String> {
        self.inner.lock().by_name.keys().cloned().collect()
    }

    /// `name` logged in on `connection` in `zone`. A previous entry of the name (a
    /// duplicate login) is replaced.
    pub(crate) fn online(&self, name: &str, zone: u16, connection: ConnectionId) {
        {
            let mut online = self.inner.lock();
            let presence = Presence {
                zone,
                connection,
                member: ChatMember::new(&self.inner.config, now_ms()),
            };
            if let Some(old) = online.by_name.insert(name.to_owned(), presence) {
                online.by_conn.remove(&old.connection);
            }
            online.by_conn.insert(connection, name.to_owned());
        }
        self.inner.bridge.presence(name, true);
    }

    /// `connection` is gone.
    pub(crate) fn offline(&self, connection: ConnectionId) {
        let name = {
            let mut online = self.inner.lock();
            let Some(name) = online.by_conn.remove(&connection) else {
                return;
            };
            online.by_name.remove(&name);
            name
        };
        self.inner.bridge.presence(&name, false);
    }

    /// `connection` was handed over to `zone`.
    pub(crate) fn moved(&self, connection: ConnectionId, zone: u16) {
        let mut online = self.inner.lock();
        let online = &mut *online;
        if let Some(p) = online
            .by_conn
            .get(&connection)
            .and_then(|name| online.by_name.get_mut(name))
        {
            p.zone = zone;
        }
    }

    /// A chat line from `connection` of `zone`: checked, then said, routed or refused.
    pub(crate) fn on_chat(
        &self,
        zone: &mut Zone,
        connection: ConnectionId,
        channel: ChatChannel,
        to: Option<String>,
        text: &str,
    ) {
        let zone_id = zone.zone_id().0;
        let admitted = {
            let mut online = self.inner.lock();
            let Some(name) = online.by_conn.get(&connection).cloned() else {
                return;
            };
            let Some(p) = online.by_name.get_mut(&name) else {
                return;
            };
            p.member
                .admit(&self.inner.config, channel, to.as_deref(), text, now_ms())
                .map(|text| (name, text))
        };
        let (from_name, text) = match admitted {
            Ok(ok) => ok,
            Err(refusal) => {
                count_refusal(refusal.kind);
                zone.send_chat_refused(connection, &refusal);
                return;
            }
        };
        metrics::counter!(CHAT_LINES_TOTAL, "channel" => channel.as_str()).increment(1);
        if channel == ChatChannel::Say {
            zone.say(
                connection,
                &from_name,
                &text,
                self.inner.config.say_radius_m,
            );
            return;
        }
        let line = ChatLine {
            from_name,
            channel,
            zone_id,
            to,
            text,
        };
        let from_entity = zone.chat_entity(connection).unwrap_or(EntityId(0));
        let delivered = self.inner.route(&line, Some((zone_id, from_entity)));
        let bridge = &self.inner.bridge;
        match channel {
            ChatChannel::Whisper if delivered => {}
            ChatChannel::Whisper if bridge.is_remote() => bridge.publish(&line),
            ChatChannel::Whisper => {
                let refusal = unknown_recipient(line.to.as_deref().unwrap_or(""));
                count_refusal(refusal.kind);
                zone.send_chat_refused(connection, &refusal);
            }
            _ => bridge.publish(&line),
        }
    }

    /// A join (`joined`) or leave of `channel` by `connection`.
    pub(crate) fn on_membership(
        &self,
        zone: &mut Zone,
        connection: ConnectionId,
        channel: ChatChannel,
        joined: bool,
    ) {
        let result = {
            let mut online = self.inner.lock();
            let online = &mut *online;
            match online
                .by_conn
                .get(&connection)
                .and_then(|name| online.by_name.get_mut(name))
            {
                Some(p) => p.member.set_joined(channel, joined),
                None => return,
            }
        };
        if let Err(refusal) = result {
            count_refusal(refusal.kind);
            zone.send_chat_refused(connection, &refusal);
        }
    }
}

impl HubInner {
    fn lock(&self) -> MutexGuard<'_, Online> {
        // Every critical section leaves the maps consistent: a poisoned lock is usable.
        self.online.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `line` to its recipients online in this process, grouped by zone thread;
    /// `origin` is the speaker's zone and entity when the speaker is in this process.
    /// Returns whether anyone here was addressed.
    fn route(&self, line: &ChatLine, origin: Option<(u16, EntityId)>) -> bool {
        let mut by_zone: BTreeMap<u16, Vec<ConnectionId>> = BTreeMap::new();
        {
            let online = self.lock();
            match line.channel {
                ChatChannel::Whisper => {
                    if let Some(p) = line.to.as_deref().and_then(|to| online.by_name.get(to)) {
                        by_zone.entry(p.zone).or_default().push(p.connection);
                    }
                }
                ChatChannel::Global | ChatChannel::Zone => {
                    for p in online.by_name.values() {
                        let wanted = p.member.receives(line.channel)
                            && (line.channel == ChatChannel::Global || p.zone == line.zone_id);
                        if wanted {
                            by_zone.entry(p.zone).or_default().push(p.connection);
                        }
                    }
                }
                ChatChannel::Say => {}
            }
        }
        let addressed = !by_zone.is_empty();
        let shared = Arc::new(line.clone());
        for (zone, to) in by_zone {
            let from_entity = match origin {
                Some((origin_zone, entity)) if origin_zone == zone => entity,
                _ => EntityId(0),
            };
            if let Some(peer) = self.peers.get(usize::from(zone)) {
                let _ = peer.send(PeerMsg::Chat(ChatDelivery::Line {
                    line: shared.clone(),
                    from_entity,
                    to,
                }));
            }
        }
        addressed
    }
}

impl ChatInbound {
    /// Delivers a line from another process to its recipients here (it is validated
    /// first; a bad one is dropped with a warning). Returns whether anyone here was
    /// addressed.
    pub fn deliver(&self, line: &ChatLine) -> bool {
        if let Err(e) = line.validate() {
            tracing::warn!(error = %e, "chat line from another process dropped");
            return false;
        }
        self.inner
            .upgrade()
            .is_some_and(|hub| hub.route(line, None))
    }

    /// Whether the server (its hub) is gone.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.strong_count() == 0
    }

    /// Tells `name`, if online here, that its line was refused (by another process's
    /// decision, e.g. an unknown whisper recipient).
    pub fn refuse(&self, name: &str, refusal: ChatRefusal) {
        let Some(hub) = self.inner.upgrade() else {
            return;
        };
        let target = {
            let online = hub.lock();
            online.by_name.get(name).map(|p| (p.zone, p.connection))
        };
        if let Some((zone, connection)) = target {
            count_refusal(refusal.kind);
            if let Some(peer) = hub.peers.get(usize::from(zone)) {
                let _ = peer.send(PeerMsg::Chat(ChatDelivery::Refused(connection, refusal)));
            }
        }
    }

    /// Whether `name` is online in this process.
    #[must_use]
    pub fn is_online(&self, name: &str) -> bool {
        self.inner
            .upgrade()
            .is_some_and(|hub| hub.lock().by_name.contains_key(name))
    }

    /// Names of the characters online in this process (presence refresh).
    #[must_use]
    pub fn online_names(&self) -> Vec<String> {
        self.inner
            .upgrade()
            .map(|hub| hub.lock().by_name.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// The refusal of a whisper to `name`, online nowhere.
#[must_use]
pub fn unknown_recipient(name: &str) -> ChatRefusal {
    ChatRefusal::new(
        ChatRefusalKind::UnknownRecipient,
        format!("`{name}` is not online"),
    )
}

fn count_refusal(kind: ChatRefusalKind) {
    metrics::counter!(CHAT_REFUSALS_TOTAL, "kind" => kind.as_str()).increment(1);
}

/// Applies a delivery on the zone thread.
pub(crate) fn deliver(zone: &mut Zone, delivery: ChatDelivery) {
    match delivery {
        ChatDelivery::Line {
            line,
            from_entity,
            to,
        } => {
            for id in to {
                zone.send_chat(id, &line.from_name, from_entity, line.channel, &line.text);
            }
        }
        ChatDelivery::Refused(id, refusal) => {
            zone.send_chat_refused(id, &refusal);
        }
    }
}
