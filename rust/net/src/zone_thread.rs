//! One zone's thread: the fixed-tick loop that owns a [`Zone`] and the server side of every
//! session in it, fed by the connection tasks of [`crate::server`] and by its neighbour
//! zones.
//!
//! Channels into a zone thread:
//!
//! - its **inbox** (bounded, from the network tasks): new connections, datagrams, wake-ups
//!   for control bytes, lost connections, inspection jobs, shutdown;
//! - its **peer channel** (from the other zone threads): players handed over, border states,
//!   kicks. It is an unbounded channel because a zone thread never waits on another, and it
//!   is bounded in practice: border exports stop while [`MAX_BORDER_BACKLOG`] of them wait
//!   for the receiver (a stalled zone), players cross one at a time, and kicks follow
//!   logins.
//!
//! Control-stream bytes do not travel through the inbox: each connection has its own
//! bounded chunk channel whose receiver is part of [`Conn`] and moves with the player at a
//! handoff, so the control stream stays in order across zones. The connection task sends a
//! [`ZoneMsg::Wake`] after each chunk; the tick also drains every channel.
//!
//! Per tick, in this order: control bytes, timeouts, [`Zone::run_tick`], departures (each
//! taken out with [`Zone::take_player`] and sent with its [`Conn`] to the zone that owns its
//! position; the connection's route is switched first), border exports to every neighbour,
//! then every remaining connection's transmits to its outbox with `try_send`. Nothing on the
//! tick awaits the network or another zone.
//!
//! Shutdown: a zone leaving its loop closes its peer channel and takes in the players
//! already handed to it; a zone handing a player to a zone that has closed its channel gets
//! the player back and closes it itself. Either way every character is closed in some zone
//! and its logout save is offered (none is lost between zones stopping one after another).
//!
//! Accounts are unique across zones: a shared registry maps each logged-in account to its
//! connection, and a second login of an account kicks the first wherever it is. In a zone
//! process with a directory they are unique across the world's zone processes too
//! (`presence`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bridge::Queued;
use mmo_core::control::DisconnectReason;
use mmo_core::replication::overload::{self, OverloadGovernor};
use mmo_core::session::server::{ConnectionStats, ServerEvent};
use mmo_core::zone::{BorderExport, ConnectionId, PlayerTransfer, Zone};
use tokio::sync::{mpsc, oneshot};

use crate::auth::{LoginAuthority, LoginGrant};
use crate::bridge::{Link, SessionIdentity};
use crate::metrics as names;
use crate::persist::CharacterStore;
use crate::relay::SessionRef;

mod presence;
mod saving;

pub(crate) use saving::SaveState;

/// At most this many ticks are run back to back to catch up after a stall; past that the
/// missed ticks are simulated without replication (up to [`MAX_SIMULATED_MISSED_TICKS`]).
const MAX_CATCH_UP_TICKS: u32 = 5;
/// At most this many missed ticks (half a second at 30 Hz) are simulated without
/// replication at once; the rest are skipped outright (their inputs wait in the queues), so
/// a zone whose simulation itself is too slow still catches up, and a stall does not flush
/// a pile of control frames into the connections' outboxes.
const MAX_SIMULATED_MISSED_TICKS: u64 = 15;

/// Per-client byte rates and session counts are sampled this often.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Border exports queued for one zone (from all its neighbours, at most 8) beyond which
/// more are not sent: the peer channel stays bounded even when that zone stalls.
pub(crate) const MAX_BORDER_BACKLOG: usize = 32;

/// An inspection job: runs on the zone thread with the zone and its live connection ids.
pub(crate) type Inspect = Box<dyn FnOnce(&Zone, &[ConnectionId]) + Send>;

/// What network tasks tell a zone thread.
pub(crate) enum ZoneMsg {
    /// A connection finished its handshake and opened its control stream.
    Connect {
        outbox: mpsc::Sender<Queued>,
        control: mpsc::Receiver<Vec<u8>>,
        link: Arc<Link>,
        reply: oneshot::Sender<ConnectionId>,
        /// The session's name in the fleet (a relayed connection; `None` on a server
        /// holding its QUIC connections).
        session: Option<SessionRef>,
        /// A session restarted here after the zone process that ran it stopped (relayed
        /// connections only): the client logged in there as this grant, so the session
        /// starts with its login pending and answers `Rejoined`.
        rejoin: Option<LoginGrant>,
    },
    /// A datagram and when the network task received it (µs on the zones' clock,
    /// [`Shared::start`]): the input-rate check measures arrival, not processing, time.
    Datagram(ConnectionId, Vec<u8>, u64),
    /// Control bytes are waiting in the connection's chunk channel.
    Wake(ConnectionId),
    /// The QUIC connection is gone, for this reason (as the network saw it).
    Lost(ConnectionId, DisconnectReason),
    /// Move every logged-in player here to zone instance `to`, another shard of this
    /// zone (this shard is merging into it: `relay::shard_merge`).
    MoveAll { to: u16 },
    /// Run a closure against the zone (tests, admin).
    Inspect(Inspect),
    /// Close every connection, flush, and stop.
    Shutdown,
}

/// What zone threads tell each other.
pub(crate) enum PeerMsg {
    /// A player crossed into the receiving zone.
    Arrive {
        id: ConnectionId,
        /// The zone instance it leaves.
        from: u16,
        transfer: Box<PlayerTransfer>,
        conn: Conn,
        account: Option<String>,
        /// Its save state (with a store).
        save: Option<Box<saving::SaveState>>,
    },
    /// The sender's characters near the receiver's border.
    Border(BorderExport),
    /// Close this connection if it is here (a duplicate login elsewhere). The zone that
    /// has it answers the [`KickDone`] once the connection is closed and its logout save
    /// offered; when no zone has it, the last copy is dropped, which also answers.
    Kick(ConnectionId, DisconnectReason, &'static str, KickDone),
    /// Chat lines or a refusal routed by the chat hub ([`crate::chat`]).
    Chat(crate::chat::ChatDelivery),
    /// The connection's session continues over another client connection (a resumption,
    /// `RELAY_FORMAT.md` section 8): read what came over the old one, then answer
    /// `Resumed`.
    Resume(ConnectionId),
}

/// Answered (or dropped) when a kicked connection's zone has closed it and offered its
/// logout save; shared by the kick messages sent to every other zone.
pub(crate) type KickDone = Arc<Mutex<Option<oneshot::Sender<()>>>>;

/// One connection as its zone thread knows it; moves with the player at a handoff.
pub(crate) struct Conn {
    pub(crate) outbox: mpsc::Sender<Queued>,
    /// Control-stream chunks in arrival order.
    pub(crate) control: mpsc::Receiver<Vec<u8>>,
    pub(crate) link: Arc<Link>,
    /// The session's name in the fleet (relayed connections only).
    pub(crate) session: Option<SessionRef>,
    /// The session's byte counters at the last sample.
    sampled: ConnectionStats,
}

impl Conn {
    /// A connection arriving from another process (its byte counters start here).
    pub(crate) fn arriving(
        outbox: mpsc::Sender<Queued>,
        control: mpsc::Receiver<Vec<u8>>,
        link: Arc<Link>,
        stats: ConnectionStats,
        session: Option<SessionRef>,
    ) -> Conn {
        Conn {
            outbox,
            control,
            link,
            session,
            sampled: stats,
        }
    }
}

/// Account -> connection of every logged-in player of the server (all zones).
pub(crate) type AccountRegistry = Arc<Mutex<BTreeMap<String, ConnectionId>>>;

/// What every zone thread of a server shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) authority: Arc<dyn LoginAuthority>,
    pub(crate) accounts: AccountRegistry,
    /// Peer channel of each zone instance (`crate::shard`), indexed by instance id.
    pub(crate) peers: Arc<[mpsc::UnboundedSender<PeerMsg>]>,
    /// The instant tick 0 started: every zone ticks on the same schedule.
    pub(crate) start: Instant,
    /// Border exports waiting in each zone instance's peer channel.
    pub(crate) border_backlog: Arc<[AtomicUsize]>,
    /// Routes chat between zone threads and processes.
    pub(crate) chat: crate::chat::ChatHub,
    /// Set to `true` to stop every zone (a [`crate::server::Server`] dropped without
    /// shutdown); works even when an inbox is full.
    pub(crate) stop: tokio::sync::watch::Receiver<bool>,
    /// Where characters are loaded from and saved to; `None`: new characters, never saved.
    pub(crate) store: Option<Arc<dyn CharacterStore>>,
    /// How often each zone offers its changed characters (positive when `store` is set).
    pub(crate) save_interval: Duration,
    /// Character id -> highest save version offered by any zone of this server, so a
    /// session that loaded a record before an older session's last save was written still
    /// saves with higher versions (see `saving`).
    pub(crate) save_versions: saving::SaveVersions,
    /// Woken after each tick's transmits are in the outboxes, in a zone process whose
    /// connections are relayed (`crate::relay`): the relay sends them as one batch per
    /// gateway. `None` in a process that holds its QUIC connections itself.
    pub(crate) relay_tick: Option<Arc<tokio::sync::Notify>>,
    /// Account presence across the world's zone processes (a zone process with a
    /// directory; see `presence`). `None`: accounts are unique in this process only.
    pub(crate) presence: Option<crate::relay::FleetPresence>,
    /// Sessions (logged in, or registered and logging in) on each zone instance, kept by
    /// its thread: the fleet's shard loads.
    pub(crate) players: Arc<[AtomicUsize]>,
    /// Which zone instances run in the fleet: where crossings go, which neighbours get
    /// border exports (`crate::shard`).
    pub(crate) lanes: crate::shard::Lanes,
}

/// The zone thread's metric handles (registered once; recording is a no-op without a
/// recorder).
struct ZoneMetrics {
    zone_label: String,
    tick_duration: metrics::Histogram,
    tick_duration_max: metrics::Gauge,
    max_tick_s: f64,
    ticks_skipped: metrics::Counter,
    degraded_ticks: metrics::Counter,
    degrade_level: metrics::Gauge,
    replication_histories_bytes: metrics::Gauge,
    replication_views_bytes: metrics::Gauge,
    replication_shared_bytes: metrics::Gauge,
    players: metrics::Gauge,
    handoffs: metrics::Counter,
    sessions: SessionCounters,
    client_bytes_in_per_s: metrics::Histogram,
    client_bytes_out_per_s: metrics::Histogram,
}

impl ZoneMetrics {
    fn new(zone_label: String) -> Self {
        let zone = zone_label.clone();
        ZoneMetrics {
            tick_duration: metrics::histogram!(names::TICK_DURATION_SECONDS, "zone" => zone.clone()),
            tick_duration_max: metrics::gauge!(names::TICK_DURATION_MAX_SECONDS, "zone" => zone.clone()),
            max_tick_s: 0.0,
            ticks_skipped: metrics::counter!(names::TICKS_SKIPPED_TOTAL, "zone" => zone.clone()),
            degraded_ticks: metrics::counter!(names::REPLICATION_DEGRADED_TICKS_TOTAL, "zone" => zone.clone()),
            degrade_level: metrics::gauge!(names::REPLICATION_DEGRADE_LEVEL, "zone" => zone.clone()),
            replication_histories_bytes: metrics::gauge!(names::REPLICATION_HISTORIES_BYTES, "zone" => zone.clone()),
            replication_views_bytes: metrics::gauge!(names::REPLICATION_VIEWS_BYTES, "zone" => zone.clone()),
            replication_shared_bytes: metrics::gauge!(names::REPLICATION_SHARED_BYTES, "zone" => zone.clone()),
            players: metrics::gauge!(names::ZONE_PLAYERS, "zone" => zone.clone()),
            handoffs: metrics::counter!(names::ZONE_HANDOFFS_TOTAL, "zone" => zone),
            sessions: SessionCounters {
                bytes_in: metrics::counter!(names::BYTES_IN_TOTAL),
                bytes_out: metrics::counter!(names::BYTES_OUT_TOTAL),
                inputs_skipped: metrics::counter!(names::INPUTS_SKIPPED_TOTAL),
                inputs_drained: metrics::counter!(names::INPUTS_DRAINED_TOTAL),
                input_starved_ticks: metrics::counter!(names::INPUT_STARVED_TICKS_TOTAL),
            },
            client_bytes_in_per_s: metrics::histogram!(names::CLIENT_BYTES_IN_PER_SECOND),
            client_bytes_out_per_s: metrics::histogram!(names::CLIENT_BYTES_OUT_PER_SECOND),
            zone_label,
        }
    }
}

/// Counts a connection's end by reason.
pub(crate) fn count_disconnect(reason: DisconnectReason) {
    metrics::counter!(names::DISCONNECTS_TOTAL, "reason" => reason.as_str()).increment(1);
}

/// The zone thread's state.
struct ZoneLoop {
    zone: Zone,
    /// This zone's instance id (`crate::shard`): its index in the shared tables.
    instance: u16,
    shared: Shared,
    conns: BTreeMap<ConnectionId, Conn>,
    /// The account of each logged-in connection here (the registry in `shared` maps back).
    accounts: BTreeMap<ConnectionId, String>,
    last_sample: Instant,
    metrics: ZoneMetrics,
    scratch_ids: Vec<ConnectionId>,
    /// Loads, write-behind saves and transfer commits (see `saving`).
    saving: saving::Saving,
    /// Sheds replication load when ticks run long (see `mmo_core::replication::overload`).
    overload: Overload,
    /// Fleet-wide account presence of the sessions here (see `presence`).
    presence: presence::Presence,
    /// Datagrams of connections not here (yet): a player being handed over here whose
    /// datagrams, routed to this zone once the old one let go, overtook it (they come
    /// through the inbox, the player through the peer channel).
    early: EarlyDatagrams,
}

/// Datagrams that arrived before their connection (see `ZoneLoop::early`): kept at most
/// [`EARLY_DATAGRAM_MS`], [`EARLY_PER_CONNECTION`] per connection and [`EARLY_TOTAL`] in all,
/// and fed to the session when it arrives. Those of a connection that leaves this zone (or
/// ends here) are forgotten, so a player coming back later never gets them.
#[derive(Default)]
struct EarlyDatagrams {
    /// Per connection: (bytes, arrival µs on the zones' clock).
    by_connection: BTreeMap<ConnectionId, Vec<(Vec<u8>, u64)>>,
    total: usize,
}

/// How long a datagram waits for its connection to arrive, ms.
const EARLY_DATAGRAM_MS: u64 = 250;
/// Early datagrams kept per connection.
const EARLY_PER_CONNECTION: usize = 16;
/// Early datagrams kept in all.
const EARLY_TOTAL: usize = 1024;

impl EarlyDatagrams {
    /// Keeps `bytes` (received at `received_us`) for `id`; forgets what waited too long.
    fn keep(&mut self, id: ConnectionId, bytes: Vec<u8>, received_us: u64, now_us: u64) {
        let oldest_us = now_us.saturating_sub(EARLY_DATAGRAM_MS * 1000);
        let mut total = 0;
        self.by_connection.retain(|_, list| {
            list.retain(|(_, at)| *at >= oldest_us);
            total += list.len();
            !list.is_empty()
        });
        self.total = total;
        if self.total >= EARLY_TOTAL || received_us < oldest_us {
            return;
        }
        let list = self.by_connection.entry(id).or_default();
        if list.len() < EARLY_PER_CONNECTION {
            list.push((bytes, received_us));
            self.total += 1;
        }
    }

    /// What waited for `id` at most [`EARLY_DATAGRAM_MS`] (at `now_us`), oldest first.
    fn take(&mut self, id: ConnectionId, now_us: u64) -> Vec<(Vec<u8>, u64)> {
        let mut list = self.by_connection.remove(&id).unwrap_or_default();
        self.total = self.total.saturating_sub(list.len());
        let oldest_us = now_us.saturating_sub(EARLY_DATAGRAM_MS * 1000);
        list.retain(|(_, at)| *at >= oldest_us);
        list
    }

    /// Forgets what waited for `id` (it left this zone, or ended).
    fn forget(&mut self, id: ConnectionId) {
        if let Some(list) = self.by_connection.remove(&id) {
            self.total = self.total.saturating_sub(list.len());
        }
    }
}

/// The overload governor and when the current degraded episode began.
#[derive(Default)]
struct Overload {
    governor: OverloadGovernor,
    degraded_since: Option<Instant>,
}

/// Runs `zone` until [`ZoneMsg::Shutdown`] or until every sender is gone. Blocks the calling
/// thread (spawn one per zone).
pub(crate) fn run(
    zone: Zone,
    instance: u16,
    shared: Shared,
    inbox: mpsc::Receiver<ZoneMsg>,
    peers: mpsc::UnboundedReceiver<PeerMsg>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "zone runtime not built");
            return;
        }
    };
    let zone_label =
        crate::shard::ZoneShard::of_instance(instance, shared.lanes.zone_count()).label();
    let mut zone = zone;
    zone.set_transfers_await_commit(shared.store.is_some());
    // Saves are staggered over the interval by zone and shard (`zone × 16 + shard` of
    // `zones × 16`), so the zones of a world, in one process or many, spread theirs out.
    let shard = crate::shard::ZoneShard::of_instance(instance, shared.lanes.zone_count());
    let per_zone = usize::from(crate::shard::MAX_SHARDS_PER_ZONE);
    let saving = saving::Saving::new(
        &shared,
        usize::from(shard.zone) * per_zone + usize::from(shard.shard),
        usize::from(shared.lanes.zone_count()) * per_zone,
    );
    let mut zone_loop = ZoneLoop {
        zone,
        instance,
        saving,
        shared,
        conns: BTreeMap::new(),
        accounts: BTreeMap::new(),
        last_sample: Instant::now(),
        metrics: ZoneMetrics::new(zone_label),
        scratch_ids: Vec::new(),
        overload: Overload::default(),
        presence: presence::Presence::default(),
        early: EarlyDatagrams::default(),
    };
    zone_loop.count_players();
    runtime.block_on(zone_loop.run(inbox, peers));
}

impl ZoneLoop {
    fn now_us(&self) -> u64 {
        self.shared.start.elapsed().as_micros() as u64
    }

    /// This zone's index in the shared tables (its instance id).
    fn index(&self) -> usize {
        usize::from(self.instance)
    }

    /// Publishes how many players are logged in here (the gauge) and the shard's load.
    fn count_players(&self) {
        #[allow(clippy::cast_precision_loss)] // A player count.
        self.metrics.players.set(self.accounts.len() as f64);
        self.publish_load();
    }

    /// The shard's load for the fleet's placement: its sessions, logged in or still
    /// logging in (a login in flight takes its place as soon as it is registered here).
    fn publish_load(&self) {
        if let Some(load) = self.shared.players.get(self.index()) {
            load.store(self.conns.len(), Ordering::Relaxed);
        }
    }

    async fn run(
        &mut self,
        mut inbox: mpsc::Receiver<ZoneMsg>,
        mut peers: mpsc::UnboundedReceiver<PeerMsg>,
    ) {
        let tick = Duration::from_micros(self.zone.config().tick_rate.tick_us());
        // Tick `n` starts at `start + n * tick` (in a fleet the zone starts at the world's
        // current tick, see `zone_set`).
        let mut next_tick = self.shared.start + tick * self.zone.tick().0.saturating_add(1);
        let mut stop = self.shared.stop.clone();
        loop {
            tokio::select! {
                // A closed sender (the server is gone) also stops the zone.
                changed = stop.changed() => if changed.is_err() || *stop.borrow() {
                    break;
                },
                msg = inbox.recv() => match msg {
                    Some(ZoneMsg::Shutdown) | None => break,
                    Some(msg) => self.handle(msg),
                },
                Some(msg) = peers.recv() => self.handle_peer(msg),
                () = tokio::time::sleep_until(next_tick.into()) => {
                    self.tick();
                    next_tick += tick;
                    let now = Instant::now();
                    if now > next_tick + tick * MAX_CATCH_UP_TICKS {
                        let behind = now.saturating_duration_since(next_tick);
                        let skipped = (behind.as_micros() / tick.as_micros().max(1)) as u64;
                        tracing::warn!(zone = %self.metrics.zone_label, skipped, simulated = skipped.min(MAX_SIMULATED_MISSED_TICKS), "zone tick overran; simulating missed ticks without replicating them, skipping the rest");
                        self.metrics.ticks_skipped.increment(skipped);
                        // Stay on the shared schedule, and keep the tick number on it too:
                        // zones compare tick numbers at handoffs and border exports. The
                        // missed ticks are simulated (inputs applied at their ticks, cheap)
                        // but not replicated (the expensive part): inputs never queue up
                        // behind an overloaded replication.
                        next_tick += tick * skipped as u32;
                        for i in 0..skipped {
                            if i < MAX_SIMULATED_MISSED_TICKS {
                                self.zone.run_tick_without_replication();
                            } else {
                                self.zone.advance_tick();
                            }
                        }
                    }
                }
            }
        }
        // Players handed here by zones still ticking: no more can arrive after `close`
        // (their sender gets the player back and closes it there, see
        // `hand_over_departures`); those already sent are taken in, so each is closed below
        // and its logout save offered like everyone else's.
        peers.close();
        while let Ok(msg) = peers.try_recv() {
            self.handle_peer(msg);
        }
        let ids: Vec<ConnectionId> = self.conns.keys().copied().collect();
        for id in ids {
            self.zone
                .close(id, DisconnectReason::ServerShutdown, "server shutting down");
        }
        self.handle_events();
        // Every character was offered as a logout; now what the store refused.
        self.save_at_shutdown().await;
        self.finish_releases(Instant::now() + saving::SHUTDOWN_RETRY)
            .await;
        // Dropping the outboxes lets each writer finish its stream and close.
        self.conns.clear();
        tracing::debug!(zone = %self.metrics.zone_label, "zone stopped");
    }

    fn handle(&mut self, msg: ZoneMsg) {
        let now_us = self.now_us();
        match msg {
            ZoneMsg::Connect {
                outbox,
                control,
                link,
                reply,
                session,
                rejoin,
            } => {
                let id = match rejoin {
                    Some(_) => self.zone.connect_rejoining(now_us),
                    None => self.zone.connect(now_us),
                };
                if reply.send(id).is_ok() {
                    let conn = Conn {
                        outbox,
                        control,
                        link,
                        session,
                        sampled: ConnectionStats::default(),
                    };
                    self.conns.insert(id, conn);
                    self.publish_load();
                    if let Some(grant) = rejoin {
                        tracing::info!(account = %grant.account, connection = id.0, zone = %self.metrics.zone_label, "restarting a session from its last save");
                        self.admit(id, grant);
                        self.flush(id);
                    }
                    self.read_control(id, now_us);
                } else {
                    self.zone.remove(id);
                }
            }
            ZoneMsg::Datagram(id, d, received_us) => {
                if self.zone.connection(id).is_some() {
                    self.zone.handle_datagram(id, received_us.min(now_us), &d);
                } else {
                    self.early.keep(id, d, received_us.min(now_us), now_us);
                }
            }
            ZoneMsg::Wake(id) => self.read_control(id, now_us),
            ZoneMsg::Lost(id, reason) => {
                // Control bytes read before the loss still count.
                self.read_control(id, now_us);
                // A session still open lost its transport: that is its disconnect. (One
                // the zone closed was retired already and is not counted twice.) A loss
                // that races a handoff (it reaches the old zone after the player left, or
                // the new zone before the player arrived) finds nothing here; the
                // session's idle timeout ends it in the zone that has it.
                if self.zone.connection(id).is_some_and(|c| !c.is_closed()) {
                    count_disconnect(reason);
                }
                self.retire(id);
            }
            ZoneMsg::MoveAll { to } => {
                let ids: Vec<ConnectionId> = self.accounts.keys().copied().collect();
                let moved = ids.into_iter().filter(|&id| self.hand_over(id, to)).count();
                if moved > 0 {
                    tracing::info!(zone = %self.metrics.zone_label, to, moved, "players moved to another shard of the zone");
                }
            }
            ZoneMsg::Inspect(f) => {
                let ids: Vec<ConnectionId> = self.conns.keys().copied().collect();
                f(&self.zone, &ids);
            }
            ZoneMsg::Shutdown => {}
        }
        self.handle_events();
    }

    fn handle_peer(&mut self, msg: PeerMsg) {
        match msg {
            PeerMsg::Arrive {
                id,
                from: _,
                transfer,
                conn,
                account,
                save,
            } => match self.zone.insert_player(id, *transfer) {
                Ok(()) => {
                    self.conns.insert(id, conn);
                    self.publish_load();
                    if let Some(save) = save {
                        self.saving.put(id, *save);
                    }
                    self.shared.chat.moved(id, self.instance);
                    let now_us = self.now_us();
                    for (d, received_us) in self.early.take(id, now_us) {
                        self.zone.handle_datagram(id, received_us, &d);
                    }
                    self.read_control(id, now_us);
                    // A resumption that reached its old zone while it was on its way.
                    if self.conns.get(&id).is_some_and(|c| c.link.take_resume()) {
                        self.answer_resume(id);
                    }
                    let Some(account) = account else {
                        return self.handle_events();
                    };
                    self.hold_claim(id, &account);
                    let current = lock(&self.shared.accounts).get(&account).copied();
                    if current != Some(id) {
                        // The account logged in again while this player was between zones:
                        // a kick sent then found it nowhere.
                        tracing::info!(%account, connection = id.0, "arrived after a newer login: closing");
                        self.zone.close(
                            id,
                            DisconnectReason::DuplicateLogin,
                            "logged in from another connection",
                        );
                        self.flush(id);
                    } else {
                        self.accounts.insert(id, account);
                    }
                    self.count_players();
                }
                Err(rejected) => {
                    self.early.forget(id);
                    // Unreachable while ids are globally unique (`mmo_core::world`); if it
                    // happens the player cannot continue anywhere: close it loudly.
                    tracing::error!(connection = id.0, reason = %rejected.reason, "handoff refused: closing the connection");
                    conn.link.set_close_reason(DisconnectReason::Kicked);
                    if let Some(account) = account {
                        self.unregister(id, &account);
                    }
                    self.shared.chat.offline(id);
                    count_disconnect(DisconnectReason::Kicked);
                    // Dropping `conn` ends its writer, which closes the connection.
                }
            },
            PeerMsg::Border(export) => {
                self.shared.border_backlog[self.index()].fetch_sub(1, Ordering::AcqRel);
                if let Err(e) = self.zone.set_ghosts(&export) {
                    tracing::warn!(zone = %self.metrics.zone_label, from = export.from.0, error = %e, "border export refused");
                }
            }
            PeerMsg::Kick(id, reason, message, done) => {
                if self.conns.contains_key(&id) {
                    self.zone.close(id, reason, message);
                    self.flush(id);
                    // Retires it, which offers its logout save, before answering.
                    self.handle_events();
                    let sender = done
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .take();
                    if let Some(sender) = sender {
                        let _ = sender.send(());
                    }
                }
            }
            PeerMsg::Chat(delivery) => crate::chat::deliver(&mut self.zone, delivery),
            PeerMsg::Resume(id) => {
                // Not here: it is between zones, and the zone it arrives at answers.
                if self.conns.get(&id).is_some_and(|c| c.link.take_resume()) {
                    self.answer_resume(id);
                }
            }
        }
        self.handle_events();
    }

    /// The session resumed over another client connection (`RELAY_FORMAT.md` section 8):
    /// reads what came over the old one, then has the session answer `Resumed`.
    fn answer_resume(&mut self, id: ConnectionId) {
        let now_us = self.now_us();
        self.read_control(id, now_us);
        if self.zone.resume(id) {
            self.flush(id);
        } else {
            // Not active (closing): the client gives up after its wait for `Resumed`.
            tracing::info!(connection = id.0, "resumption of a session not active");
        }
    }

    /// Feeds the connection's waiting control chunks to its session, in order.
    fn read_control(&mut self, id: ConnectionId, now_us: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        while let Ok(chunk) = conn.control.try_recv() {
            self.zone.handle_stream(id, now_us, &chunk);
        }
    }

    fn tick(&mut self) {
        let started = Instant::now();
        let now_us = self.now_us();
        let mut ids = std::mem::take(&mut self.scratch_ids);
        ids.clear();
        ids.extend(self.conns.keys().copied());
        for &id in &ids {
            self.read_control(id, now_us);
        }
        self.zone.handle_timeouts(now_us);
        self.handle_events();
        self.poll_loads();
        self.poll_commits();
        self.poll_releases();
        self.zone.run_tick();
        self.commit_transfers();
        self.save_if_due();
        self.hand_over_departures();
        self.export_borders();
        ids.clear();
        ids.extend(self.conns.keys().copied());
        for &id in &ids {
            self.flush(id);
        }
        self.scratch_ids = ids;
        if let Some(relay) = &self.shared.relay_tick {
            relay.notify_one();
        }
        // A flush may have closed a slow connection.
        self.handle_events();
        let tick_s = started.elapsed().as_secs_f64();
        self.metrics.tick_duration.record(tick_s);
        self.govern_overload(started.elapsed());
        if tick_s > self.metrics.max_tick_s {
            self.metrics.max_tick_s = tick_s;
            self.metrics.tick_duration_max.set(tick_s);
        }
        if self.last_sample.elapsed() >= SAMPLE_INTERVAL {
            self.sample_bytes();
        }
    }

    /// Feeds the tick's duration to the overload governor; applies, reports and logs a
    /// change of level.
    fn govern_overload(&mut self, took: Duration) {
        let period_us = self.zone.config().tick_rate.tick_us();
        let level_before = self.overload.governor.level();
        if level_before > 0 {
            self.metrics.degraded_ticks.increment(1);
        }
        let took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let Some(change) = self.overload.governor.on_tick(took_us, period_us) else {
            return;
        };
        self.zone.set_overload_level(change.to);
        self.metrics.degrade_level.set(f64::from(change.to));
        let share = overload::budget_share_percent(change.to);
        match (change.from, change.to) {
            (0, _) => {
                self.overload.degraded_since = Some(Instant::now());
                tracing::warn!(zone = %self.metrics.zone_label, level = change.to, budget_percent = share, tick_ms = took.as_secs_f64() * 1e3, "replication degraded: ticks overrun, snapshots carry fewer records (far tiers first)");
            }
            (_, 0) => {
                let lasted_s = self
                    .overload
                    .degraded_since
                    .take()
                    .map_or(0.0, |t| t.elapsed().as_secs_f64());
                tracing::warn!(zone = %self.metrics.zone_label, lasted_s, "replication recovered: back to full rates");
            }
            _ => {
                tracing::info!(zone = %self.metrics.zone_label, from = change.from, to = change.to, budget_percent = share, "replication overload level changed");
            }
        }
    }

    /// Sends every player whose character left this zone to the zone that owns its
    /// position, with its connection (route switched first, so its next datagrams go
    /// there).
    fn hand_over_departures(&mut self) {
        let departures: Vec<_> = self.zone.drain_departures().collect();
        for departure in departures {
            let to = self.shared.lanes.crossing(self.instance, departure.to.0);
            self.hand_over(departure.connection, to);
        }
    }

    /// Hands player `id` to zone instance `to` (a neighbour, or another shard of this
    /// zone) with its connection, route switched first so its next datagrams go there.
    /// False when it is not here to hand over (not logged in, or gone).
    fn hand_over(&mut self, id: ConnectionId, to: u16) -> bool {
        let Some(peer) = self.shared.peers.get(usize::from(to)).cloned() else {
            tracing::error!(zone = to, "handoff to an unknown zone instance");
            return false;
        };
        if !self.conns.contains_key(&id) {
            return false;
        }
        let Some(transfer) = self.zone.take_player(id) else {
            return false;
        };
        let Some(mut conn) = self.conns.remove(&id) else {
            return false;
        };
        // This zone's share of its bytes goes to the totals here.
        record_delta(
            &self.metrics,
            transfer.connection().stats(),
            &mut conn.sampled,
        );
        conn.link.set_zone(to);
        self.early.forget(id);
        let account = self.accounts.remove(&id);
        self.claim_leaves(id);
        let save = self.saving.take(id).map(Box::new);
        let arrive = PeerMsg::Arrive {
            id,
            from: self.instance,
            transfer: Box::new(transfer),
            conn,
            account,
            save,
        };
        if let Err(mpsc::error::SendError(arrive)) = peer.send(arrive) {
            // The other zone stopped (shutdown): the player comes back here and is
            // closed with the shutdown reason, which offers its logout save (retired
            // by this tick's `handle_events`).
            tracing::debug!(connection = id.0, "handoff target stopped: closing here");
            self.handle_peer(arrive);
            self.zone
                .close(id, DisconnectReason::ServerShutdown, "server shutting down");
            self.flush(id);
            return false;
        }
        self.metrics.handoffs.increment(1);
        self.count_players();
        tracing::debug!(connection = id.0, from = %self.metrics.zone_label, to, "player handed over");
        true
    }

    /// Sends this zone's border states to each neighbour.
    fn export_borders(&mut self) {
        let Some(layout) = self.zone.config().placement.map(|p| p.layout) else {
            return;
        };
        for neighbour in layout.neighbours(self.zone.zone_id()) {
            let Some(to) = self.shared.lanes.border_partner(self.instance, neighbour.0) else {
                continue;
            };
            let to = usize::from(to);
            let (Some(peer), Some(backlog)) = (
                self.shared.peers.get(to),
                self.shared.border_backlog.get(to),
            ) else {
                continue;
            };
            // A neighbour that fell behind gets no more exports until it catches up: each
            // replaces the previous one, so the queued ones are already stale.
            if backlog.load(Ordering::Acquire) >= MAX_BORDER_BACKLOG {
                continue;
            }
            backlog.fetch_add(1, Ordering::AcqRel);
            if peer
                .send(PeerMsg::Border(self.zone.border_export(neighbour)))
                .is_err()
            {
                backlog.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Adds each connection's bytes since the last sample to the totals and records its
    /// rates; publishes the replication state's memory.
    fn sample_bytes(&mut self) {
        let now = Instant::now();
        let elapsed_s = now.duration_since(self.last_sample).as_secs_f64().max(1e-3);
        self.last_sample = now;
        let memory = self.zone.replication_memory();
        #[allow(clippy::cast_precision_loss)] // Gauges; far below 2^52 bytes.
        {
            self.metrics
                .replication_histories_bytes
                .set(memory.histories_bytes as f64);
            self.metrics
                .replication_views_bytes
                .set(memory.views_bytes as f64);
            self.metrics
                .replication_shared_bytes
                .set(memory.shared_bytes as f64);
        }
        let ids: Vec<ConnectionId> = self.conns.keys().copied().collect();
        for id in ids {
            if let Some((bytes_in, bytes_out)) = self.take_byte_delta(id) {
                self.metrics
                    .client_bytes_in_per_s
                    .record(bytes_in as f64 / elapsed_s);
                self.metrics
                    .client_bytes_out_per_s
                    .record(bytes_out as f64 / elapsed_s);
            }
        }
    }

    /// Bytes in and out of a connection's session since its last sample, added to the
    /// totals.
    fn take_byte_delta(&mut self, id: ConnectionId) -> Option<(u64, u64)> {
        let stats = self.zone.connection(id)?.stats();
        let conn = self.conns.get_mut(&id)?;
        Some(record_delta(&self.metrics, stats, &mut conn.sampled))
    }

    /// Forgets a connection: its last bytes go to the totals, its session and character
    /// leave the zone, its outbox is dropped (which ends the writer, which closes the QUIC
    /// connection with the reason on its link).
    fn retire(&mut self, id: ConnectionId) {
        self.early.forget(id);
        let _ = self.take_byte_delta(id);
        // The logout save, while the character is still in the zone (and the account's
        // fleet presence released once it commits).
        self.leave_with_presence(id);
        self.forget_load(id);
        self.zone.remove(id);
        self.conns.remove(&id);
        self.publish_load();
        if let Some(account) = self.accounts.remove(&id) {
            self.unregister(id, &account);
        }
        self.shared.chat.offline(id);
        self.count_players();
    }

    /// Removes `account` from the registry if it still maps to `id`.
    fn unregister(&self, id: ConnectionId, account: &str) {
        let mut registry = lock(&self.shared.accounts);
        if registry.get(account) == Some(&id) {
            registry.remove(account);
        }
    }

    /// Answers logins, counts rejections, and retires closed connections after flushing
    /// their last frames.
    fn handle_events(&mut self) {
        let events: Vec<(ConnectionId, ServerEvent)> = self.zone.drain_events().collect();
        for (id, event) in events {
            match event {
                ServerEvent::LoginRequested { token } => self.decide_login(id, &token),
                ServerEvent::Closed { reason } => {
                    tracing::debug!(connection = id.0, reason = reason.as_str(), "closed");
                    count_disconnect(reason);
                    if matches!(
                        reason,
                        DisconnectReason::ProtocolViolation | DisconnectReason::ProtocolMismatch
                    ) {
                        metrics::counter!(names::PROTOCOL_VIOLATIONS_TOTAL, "reason" => reason.as_str())
                            .increment(1);
                    }
                    if let Some(conn) = self.conns.get(&id) {
                        conn.link.set_close_reason(reason);
                    }
                    self.flush(id);
                    self.retire(id);
                }
                ServerEvent::InputRejected(rejection) => {
                    metrics::counter!(names::VALIDATION_REJECTIONS_TOTAL, "kind" => rejection.kind.as_str())
                        .increment(1);
                    let (account, entity) = self.identity(id);
                    tracing::info!(account, connection = id.0, entity, kind = rejection.kind.as_str(), detail = %rejection.detail, "input rejected");
                }
                ServerEvent::Refused {
                    kind,
                    detail,
                    struck,
                    strikes,
                } => {
                    metrics::counter!(names::VALIDATION_REJECTIONS_TOTAL, "kind" => kind)
                        .increment(1);
                    let (account, entity) = self.identity(id);
                    if struck {
                        tracing::info!(account, connection = id.0, entity, kind, strikes, detail = %detail, "request refused: strike");
                    } else {
                        tracing::debug!(account, connection = id.0, entity, kind, strikes, detail = %detail, "request refused");
                    }
                }
                ServerEvent::Chat { channel, to, text } => {
                    (self.shared.chat).on_chat(
                        &mut self.zone,
                        self.instance,
                        id,
                        channel,
                        to,
                        &text,
                    );
                }
                ServerEvent::ChatJoin(c) => {
                    (self.shared.chat).on_membership(&mut self.zone, id, c, true)
                }
                ServerEvent::ChatLeave(c) => {
                    (self.shared.chat).on_membership(&mut self.zone, id, c, false)
                }
                // The zone consumes gameplay requests itself.
                ServerEvent::AbilityRequested(_)
                | ServerEvent::CastCancelRequested
                | ServerEvent::InventoryRequested(_) => {}
            }
        }
    }

    /// The account (`-` before login) and entity id (0 before login) of a connection, for
    /// log lines.
    fn identity(&self, id: ConnectionId) -> (&str, u32) {
        let account = self.accounts.get(&id).map_or("-", String::as_str);
        let entity = self
            .zone
            .connection(id)
            .and_then(|c| c.entity())
            .map_or(0, |e| e.0);
        (account, entity)
    }

    /// Asks the authority about `token`; accepts the login, or closes the connection with
    /// the refusal's reason. An account already logged in elsewhere (any zone, or with
    /// fleet-wide presence any zone process of the world) is closed there with
    /// [`DisconnectReason::DuplicateLogin`].
    fn decide_login(&mut self, id: ConnectionId, token: &str) {
        match self
            .shared
            .authority
            .verify(token, crate::auth::unix_now_s())
        {
            Ok(grant) => self.admit(id, grant),
            Err(refusal) => {
                metrics::counter!(names::LOGINS_TOTAL, "outcome" => refusal.reason.as_str())
                    .increment(1);
                tracing::info!(connection = id.0, reason = refusal.reason.as_str(), message = %refusal.message, "login refused");
                self.zone.close(id, refusal.reason, &refusal.message);
            }
        }
        self.flush(id);
    }

    /// Lets in the login `grant` on `id` (a verified token, or a rejoin): loads the character
    /// when there is a store or a fleet presence to claim, else spawns it at once.
    fn admit(&mut self, id: ConnectionId, grant: LoginGrant) {
        if self.saving.has_store() || self.presence_session(id).is_some() {
            tracing::debug!(account = %grant.account, connection = id.0, "login accepted: loading the character");
            self.start_load(id, grant);
            return;
        }
        if self.zone.accept_login(id).is_none() {
            // The client left while its token was checked.
            return;
        }
        self.register_account(id, &grant.account);
        self.logged_in(id, &grant.account, &grant.account);
    }

    /// Maps `account` to `id` in the server's registry; an older connection of the account
    /// (any zone) is closed with [`DisconnectReason::DuplicateLogin`].
    ///
    /// Returns a receiver when that older connection is not here: it is answered (or
    /// closed) once the zone that has it closed it and offered its logout save.
    fn register_account(
        &mut self,
        id: ConnectionId,
        account: &str,
    ) -> Option<oneshot::Receiver<()>> {
        let previous = lock(&self.shared.accounts).insert(account.to_owned(), id);
        let previous = previous.filter(|p| *p != id)?;
        tracing::info!(%account, connection = previous.0, "logged in again: closing the older connection");
        self.kick(
            previous,
            DisconnectReason::DuplicateLogin,
            "logged in from another connection",
        )
    }

    /// Completes a login whose character is spawned: counts it, lets the client's inputs
    /// through, records the account here.
    /// `chat_name` is the name the player chats under and is whispered by: the character's
    /// name with a store, the account name without one.
    fn logged_in(&mut self, id: ConnectionId, account: &str, chat_name: &str) {
        metrics::counter!(names::LOGINS_TOTAL, "outcome" => "accepted").increment(1);
        tracing::info!(%account, connection = id.0, zone = %self.metrics.zone_label, "logged in");
        if let Some(conn) = self.conns.get(&id) {
            // Before the welcome is flushed, so the client's first input is let through.
            conn.link.set_logged_in();
            conn.link.set_identity(SessionIdentity {
                account: account.to_owned(),
                character_id: self.saving.character_id(id),
            });
        }
        self.accounts.insert(id, account.to_owned());
        self.count_players();
        self.shared.chat.online(chat_name, self.instance, id);
    }

    /// Closes `id` here, or asks every other zone to (it may have been handed over).
    fn kick(
        &mut self,
        id: ConnectionId,
        reason: DisconnectReason,
        message: &'static str,
    ) -> Option<oneshot::Receiver<()>> {
        // Its account now belongs to the newer connection: retiring it must not unregister.
        self.accounts.remove(&id);
        if self.conns.contains_key(&id) {
            self.zone.close(id, reason, message);
            self.flush(id);
            return None;
        }
        let (sender, done) = oneshot::channel();
        let shared: KickDone = Arc::new(Mutex::new(Some(sender)));
        for (index, peer) in self.shared.peers.iter().enumerate() {
            if index != self.index() {
                let _ = peer.send(PeerMsg::Kick(id, reason, message, shared.clone()));
            }
        }
        Some(done)
    }

    /// Moves a connection's transmits to its outbox without waiting.
    fn flush(&mut self, id: ConnectionId) {
        let Some(conn) = self.conns.get(&id) else {
            // Not registered (or already retired): discard.
            while self.zone.poll_transmit(id).is_some() {}
            return;
        };
        let mut stalled = false;
        while let Some(t) = self.zone.poll_transmit(id) {
            match conn.outbox.try_send(Queued::now(t)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(q)) if q.is_datagram() => {
                    conn.link.drop_datagram("outbox_full");
                }
                Err(mpsc::error::TrySendError::Full(_)) => stalled = true,
                // The writer is gone; `Lost` follows.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        if stalled {
            tracing::warn!(connection = id.0, "control stream backlog: closing");
            conn.link.set_close_reason(DisconnectReason::Kicked);
            self.zone
                .close(id, DisconnectReason::Kicked, "control stream backlog");
            // Its events are handled by the caller's next `handle_events` (which retires
            // it); the disconnect frame may not fit either, and the connection is closed
            // with the Kicked code regardless.
            while self.zone.poll_transmit(id).is_some() {}
            self.conns.remove(&id);
            self.publish_load();
        }
    }
}

/// The counters every session's [`ConnectionStats`] add to (their deltas since the last
/// sample, so a session handed between zones is counted once).
struct SessionCounters {
    bytes_in: metrics::Counter,
    bytes_out: metrics::Counter,
    inputs_skipped: metrics::Counter,
    inputs_drained: metrics::Counter,
    input_starved_ticks: metrics::Counter,
}

/// Adds a session's counts since `sampled` to the totals, moves `sampled` up to `stats`,
/// and returns the bytes in and out.
fn record_delta(
    metrics: &ZoneMetrics,
    stats: ConnectionStats,
    sampled: &mut ConnectionStats,
) -> (u64, u64) {
    let bytes_in = stats.bytes_in.saturating_sub(sampled.bytes_in);
    let bytes_out = stats.bytes_out.saturating_sub(sampled.bytes_out);
    let counters = &metrics.sessions;
    counters.bytes_in.increment(bytes_in);
    counters.bytes_out.increment(bytes_out);
    counters
        .inputs_skipped
        .increment(stats.inputs_skipped.saturating_sub(sampled.inputs_skipped));
    counters
        .inputs_drained
        .increment(stats.inputs_drained.saturating_sub(sampled.inputs_drained));
    counters.input_starved_ticks.increment(
        stats
            .input_starved_ticks
            .saturating_sub(sampled.input_starved_ticks),
    );
    *sampled = stats;
    (bytes_in, bytes_out)
}

/// Locks a table shared by the zone threads (the account registry, the save versions). A
/// poisoned lock (a zone thread panicked while holding it) still holds a consistent map:
/// every critical section is a single insert, remove or max.
fn lock<T>(table: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    table
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_datagrams_wait_for_their_connection_within_bounds() {
        let mut early = EarlyDatagrams::default();
        let (a, b) = (ConnectionId(1), ConnectionId(2));
        early.keep(a, vec![1], 1_000, 1_000);
        early.keep(a, vec![2], 2_000, 2_000);
        early.keep(b, vec![9], 2_000, 2_000);
        assert_eq!(
            early.take(a, 2_000),
            vec![(vec![1], 1_000), (vec![2], 2_000)],
            "in arrival order"
        );
        assert!(early.take(a, 2_000).is_empty(), "taken once");
        // What waited too long is not handed out, even with nothing kept since.
        early.keep(a, vec![7], 3_000, 3_000);
        assert!(
            early
                .take(a, 3_000 + EARLY_DATAGRAM_MS * 1000 + 1)
                .is_empty()
        );
        // A connection that left or ended is forgotten.
        early.keep(a, vec![8], 3_000, 3_000);
        early.forget(a);
        assert!(early.take(a, 3_000).is_empty());
        // Older than EARLY_DATAGRAM_MS: forgotten at the next keep.
        let later_us = 2_000 + EARLY_DATAGRAM_MS * 1000 + 1;
        early.keep(a, vec![3], later_us, later_us);
        assert!(early.take(b, later_us).is_empty(), "b's datagram expired");
        // At most EARLY_PER_CONNECTION per connection.
        for i in 0..EARLY_PER_CONNECTION + 5 {
            early.keep(b, vec![i as u8], later_us, later_us);
        }
        assert_eq!(early.take(b, later_us).len(), EARLY_PER_CONNECTION);
        // At most EARLY_TOTAL in all.
        for id in 0..(EARLY_TOTAL as u32) {
            early.keep(ConnectionId(100 + id), vec![0], later_us, later_us);
        }
        early.keep(ConnectionId(9_999), vec![0], later_us, later_us);
        assert!(
            early.take(ConnectionId(9_999), later_us).is_empty(),
            "over the total"
        );
        assert!(early.total <= EARLY_TOTAL);
    }
}
