//! The in-process chat hub: every zone thread of a server hands it the chat lines, joins
//! and leaves of its players; it checks them with [`mmo_core::chat::ChatMember`] (one per
//! online character, so limits and mutes follow a player across zones) and routes zone,
//! global and whisper lines to the zone threads that hold their recipients (say stays in
//! the speaker's zone: [`Zone::say`]).
//!
//! A character's chat state outlives its connection: a duplicate login takes it over, and
//! a character going offline while still restricted (muted, allowance not full, recent
//! rate-limit hits) leaves it in a bounded table until it settles
//! ([`ChatMember::settles_at_ms`]), so reconnecting lifts no mute or limit. The table holds
//! at most [`MAX_REMEMBERED_MEMBERS`] names (a few hundred bytes each); past that, the
//! entry that settles soonest is forgotten first. An operator mute of a name offline here
//! is remembered the same way.
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

use std::collections::{BTreeMap, BTreeSet};
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

/// Most offline characters whose chat state (mute, limiter) a hub remembers; past that,
/// the entry that settles soonest is forgotten. Each entry is a few hundred bytes, so the
/// table stays under about 30 MB.
pub const MAX_REMEMBERED_MEMBERS: usize = 65_536;

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

/// Invariant: `by_conn[c] == name` exactly when `by_name[name].connection == c`; a name is
/// never both in `by_name` and in `remembered`.
#[derive(Debug, Default)]
struct Online {
    by_name: BTreeMap<String, Presence>,
    by_conn: BTreeMap<ConnectionId, String>,
    /// Chat state of characters offline here that have not settled yet.
    remembered: Remembered,
}

/// Chat state of offline characters, until it settles.
///
/// Invariants: `by_expiry` holds `(settles_at_ms, name)` exactly for the entries of
/// `by_name` (with that time); `by_name.len() <= MAX_REMEMBERED_MEMBERS`.
#[derive(Debug, Default)]
struct Remembered {
    by_name: BTreeMap<String, (ChatMember, u64)>,
    by_expiry: BTreeSet<(u64, String)>,
}

impl Remembered {
    /// Takes the remembered state of `name`, if any.
    fn take(&mut self, name: &str) -> Option<ChatMember> {
        let (member, settles_at_ms) = self.by_name.remove(name)?;
        self.by_expiry.remove(&(settles_at_ms, name.to_owned()));
        Some(member)
    }

    /// Keeps `member` for `name` unless it has settled at `now_ms`; forgets settled entries
    /// and, when full, the one that settles soonest.
    fn keep(&mut self, config: &ChatConfig, name: &str, member: ChatMember, now_ms: u64) {
        self.take(name);
        self.forget_settled(now_ms);
        let settles_at_ms = member.settles_at_ms(config);
        if settles_at_ms <= now_ms {
            return;
        }
        while self.by_name.len() >= MAX_REMEMBERED_MEMBERS {
            let Some((_, soonest)) = self.by_expiry.pop_first() else {
                break;
            };
            self.by_name.remove(&soonest);
        }
        self.by_expiry.insert((settles_at_ms, name.to_owned()));
        self.by_name
            .insert(name.to_owned(), (member, settles_at_ms));
    }

    fn forget_settled(&mut self, now_ms: u64) {
        while let Some((settles_at_ms, _)) = self.by_expiry.first() {
            if *settles_at_ms > now_ms {
                break;
            }
            if let Some((_, name)) = self.by_expiry.pop_first() {
                self.by_name.remove(&name);
            }
        }
    }

    fn len(&self) -> usize {
        self.by_name.len()
    }
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
    /// character is online in this process; when it is not, the mute is remembered and
    /// applies when it logs in here (see [`MAX_REMEMBERED_MEMBERS`]).
    pub fn mute(&self, name: &str, until_ms: u64) -> bool {
        let now_ms = now_ms();
        let mut online = self.inner.lock();
        if let Some(p) = online.by_name.get_mut(name) {
            p.member.mute_until(until_ms);
            return true;
        }
        let config = &self.inner.config;
        let mut member = online
            .remembered
            .take(name)
            .unwrap_or_else(|| ChatMember::new(config, now_ms));
        member.mute_until(until_ms);
        online.remembered.keep(config, name, member, now_ms);
        false
    }

    /// How many offline characters' chat state this hub remembers (at most
    /// [`MAX_REMEMBERED_MEMBERS`]).
    #[must_use]
    pub fn remembered_count(&self) -> usize {
        self.inner.lock().remembered.len()
    }

    /// Names of the characters online in this process.
    #[must_use]
    pub fn online_names(&self) -> Vec<String> {
        self.inner.lock().by_name.keys().cloned().collect()
    }

    /// `name` logged in on `connection` in `zone`. A previous entry of the name (a
    /// duplicate login) is replaced; its chat state, or the state remembered since the
    /// name went offline, carries over (membership back to the defaults).
    pub(crate) fn online(&self, name: &str, zone: u16, connection: ConnectionId) {
        {
            let mut online = self.inner.lock();
            let online = &mut *online;
            let previous = match online.by_name.remove(name) {
                Some(old) => {
                    online.by_conn.remove(&old.connection);
                    Some(old.member)
                }
                None => online.remembered.take(name),
            };
            let member = match previous {
                Some(mut member) => {
                    member.new_session();
                    member
                }
                None => ChatMember::new(&self.inner.config, now_ms()),
            };
            let presence = Presence {
                zone,
                connection,
                member,
            };
            online.by_name.insert(name.to_owned(), presence);
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
            if let Some(p) = online.by_name.remove(&name) {
                online
                    .remembered
                    .keep(&self.inner.config, &name, p.member, now_ms());
            }
            name
        };
        self.inner.bridge.presence(&name, false);
    }

    /// The character name `connection` chats under, if online here.
    pub(crate) fn name_of(&self, connection: ConnectionId) -> Option<String> {
        self.inner.lock().by_conn.get(&connection).cloned()
    }

    /// `connection` moved to another zone process, which announced it online there: it is
    /// forgotten here without telling the bridge it went offline.
    pub(crate) fn moved_away(&self, connection: ConnectionId) {
        let mut online = self.inner.lock();
        if let Some(name) = online.by_conn.remove(&connection) {
            online.by_name.remove(&name);
        }
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

    /// A chat line from `connection` of `zone` (zone instance `instance`, see
    /// `crate::shard`: zone chat stays within a shard): checked, then said, routed or
    /// refused.
    pub(crate) fn on_chat(
        &self,
        zone: &mut Zone,
        instance: u16,
        connection: ConnectionId,
        channel: ChatChannel,
        to: Option<String>,
        text: &str,
    ) {
        let zone_id = instance;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn muted_until(config: &ChatConfig, until_ms: u64) -> ChatMember {
        let mut m = ChatMember::new(config, 0);
        m.mute_until(until_ms);
        m
    }

    #[test]
    fn remembered_state_expires_and_is_bounded() {
        let config = ChatConfig::default();
        let mut r = Remembered::default();
        // A settled state is not kept.
        r.keep(&config, "fresh", ChatMember::new(&config, 0), 10);
        assert_eq!(r.len(), 0);
        r.keep(&config, "alice", muted_until(&config, 1_000), 10);
        assert_eq!(r.len(), 1);
        // Keeping a name again replaces its entry.
        r.keep(&config, "alice", muted_until(&config, 2_000), 10);
        assert_eq!(r.len(), 1);
        assert_eq!(r.by_expiry.len(), 1);
        // Entries settled by the next keep are forgotten.
        r.keep(&config, "bob", muted_until(&config, 5_000), 2_000);
        assert!(r.take("alice").is_none());
        let bob = r.take("bob").expect("bob is still muted");
        assert_eq!(bob.muted_until_ms(4_999), Some(5_000));
        assert_eq!(r.len(), 0);
        // Full: the entry that settles soonest goes first.
        for i in 0..MAX_REMEMBERED_MEMBERS as u64 {
            r.keep(
                &config,
                &format!("p{i}"),
                muted_until(&config, 10_000 + i),
                0,
            );
        }
        assert_eq!(r.len(), MAX_REMEMBERED_MEMBERS);
        r.keep(&config, "late", muted_until(&config, 1_000_000), 0);
        assert_eq!(r.len(), MAX_REMEMBERED_MEMBERS);
        assert_eq!(r.by_expiry.len(), MAX_REMEMBERED_MEMBERS);
        assert!(
            r.take("p0").is_none(),
            "the soonest to settle was forgotten"
        );
        assert!(r.take("p1").is_some());
        assert!(r.take("late").is_some());
    }
}
