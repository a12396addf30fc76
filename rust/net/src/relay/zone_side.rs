//! The zone role: relay batches in, sessions on zone threads, relay batches out (see the
//! module docs of `relay`).
//!
//! For each connection a gateway opens, the relay task makes what a single server's
//! connection task makes (an outbox, a control chunk channel, a [`Link`]) and registers it
//! with the connection's home zone thread, which cannot tell the difference. Client
//! datagrams go to the inbox of the zone the connection is routed to now (a handoff
//! between zones of this process switches it, as on a single server), stamped with their
//! arrival on the zones' clock; control bytes go to the chunk channel in order. After each
//! zone tick the task drains every outbox into one batch per gateway.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mmo_core::control::DisconnectReason;
use mmo_core::relay::{
    AckFields, Batch, Item, ReliableReceiver, ReliableSender, SessionTicket, StreamItem,
};
use mmo_core::session::Transmit;
use mmo_core::world::ZoneId;
use mmo_core::zone::{ConnectionId, Zone};
use tokio::sync::{mpsc, oneshot};

use super::SessionRef;
use super::{PEER_TIMEOUT_US, RETRANSMIT_AFTER_US, RelaySettings, ZONE_HEARTBEAT_US, count};
use crate::NetError;
use crate::auth::LoginGrant;
use crate::bridge::{Link, MAX_DATAGRAM_AGE, Queued};
use crate::server::ServerConfig;
use crate::shard::ZoneShard;
use crate::zone_set::ZoneSet;
use crate::zone_thread::ZoneMsg;

mod handoff;
mod replay;

pub(super) use handoff::publish_peer;

/// The relay task's timer, besides the zone ticks: retransmissions, timeouts, stragglers.
const TIMER: Duration = Duration::from_millis(50);
/// How long a connection that ended is remembered, so a late duplicate of its opening
/// does not open it again, µs.
const ENDED_MEMORY_US: u64 = 60_000_000;

/// A running zone process: the zone threads of a world, serving the connections gateways
/// relay to it over NATS.
#[derive(Debug)]
pub struct ZoneProcess {
    zones: ZoneSet,
    id: u64,
    /// The zones' leases in the fleet's directory (`None` without a directory).
    leases: Option<super::directory::ZoneLeases>,
    relay_task: tokio::task::JoinHandle<()>,
    /// Tells the relay task the zones stopped: send what is left, then end.
    stopping: Option<oneshot::Sender<()>>,
    /// Relayed connections the relay task knows (ended ones until forgotten).
    connections: Arc<std::sync::atomic::AtomicUsize>,
    health: super::RelayHealth,
    /// Account presence across the world (with a directory) and its renewal task.
    presence: Option<super::FleetPresence>,
    presence_renewer: Option<tokio::task::JoinHandle<()>>,
    /// The shard loads task (with a directory).
    loads: Option<ShardLoadsTask>,
    /// Becomes true once every shard here merged into another and emptied.
    retired: tokio::sync::watch::Receiver<bool>,
    /// The world's name (for the directory's keys).
    world: String,
}

/// A zone process's shard loads task and what removing its entries takes.
#[derive(Debug)]
struct ShardLoadsTask {
    /// Its own connection, for removing the entries at a clean stop.
    connection: redis::aio::ConnectionManager,
    task: tokio::task::JoinHandle<()>,
    zone_count: u16,
    /// The instances run here.
    local: Vec<u16>,
}

impl ZoneProcess {
    /// Connects to NATS, starts every zone of `config` (as [`crate::server::Server`] does;
    /// its QUIC fields are not read) and serves the connections relayed to them.
    ///
    /// # Errors
    /// A bad setting, NATS unreachable, a zone thread that cannot start.
    pub async fn start(
        config: &ServerConfig,
        relay: RelaySettings,
    ) -> Result<ZoneProcess, NetError> {
        let id: u64 = rand::random();
        let all_zones = crate::zone_set::zone_ids(config);
        // Where new connections start (spares take its shards first; lanes follow it).
        let home_zone = crate::server::home_zone(config) as u16;
        // Below 2^16 zones by the layout's own limits.
        let zone_count = all_zones.len() as u16;
        if (relay.zones.is_some() || relay.take_free_zone) && relay.redis_url.is_none() {
            return Err(NetError::Config(
                "fleet.zones (a zone process running some zones of the world) needs the fleet directory: set --redis-url".into(),
            ));
        }
        // `fleet.zones` names zones (their shard 0); only a spare's lease gives a process
        // another shard.
        if let Some(bad) = relay.zones.iter().flatten().find(|&&z| z >= zone_count) {
            return Err(NetError::Config(format!(
                "fleet.zones: zone {bad} is not a zone of the world layout (zones 0 to {})",
                zone_count.saturating_sub(1)
            )));
        }
        if relay.zones.is_some() && relay.take_free_zone {
            return Err(NetError::Config(
                "fleet.zones: name zones or take a free one (`auto`), not both".into(),
            ));
        }
        let (leases, mut fleet, local_zones) = match &relay.redis_url {
            Some(url) => {
                let (local_zones, leases) = if relay.take_free_zone {
                    let (zone, leases) = super::directory::take_free_zone(
                        url,
                        &relay.world,
                        id,
                        &all_zones,
                        home_zone,
                    )
                    .await?;
                    (vec![zone], leases)
                } else {
                    let local_zones = relay.zones.clone().unwrap_or_else(|| all_zones.clone());
                    // The named zones' shard 0: their instance ids are the zone ids.
                    let leases = super::directory::ZoneLeases::acquire(
                        url,
                        &relay.world,
                        id,
                        zone_count,
                        local_zones.iter().copied(),
                    )
                    .await?;
                    (local_zones, leases)
                };
                let labels: Vec<String> = local_zones
                    .iter()
                    .map(|&i| ZoneShard::of_instance(i, zone_count).label())
                    .collect();
                tracing::info!(process = %format!("{id:016x}"), zones = ?labels, "zone leases taken");
                let epoch_unix_us =
                    super::directory::world_epoch_unix_us(url, &relay.world).await?;
                let fleet = crate::zone_set::FleetPart {
                    runs: local_zones
                        .iter()
                        .filter_map(|&z| leases.token(z).map(|token| (z, token)))
                        .collect(),
                    local_instances: local_zones.clone(),
                    epoch_unix_us,
                    // Set below, once NATS is connected.
                    presence: None,
                };
                (Some(leases), Some(fleet), local_zones)
            }
            None => (None, None, all_zones.clone()),
        };
        let client = relay.connect(&format!("mmo-zone-{id:016x}")).await?;
        let my_subject = relay.zone_process_subject(id);
        let subscribe = |subject: String| {
            let client = client.clone();
            async move {
                client
                    .subscribe(subject.clone())
                    .await
                    .map_err(|e| NetError::Connection(format!("NATS subscribe {subject}: {e}")))
            }
        };
        // Batches: new connections on each local zone's subject, the rest on our own.
        let mut batch_subjects = vec![subscribe(my_subject.clone()).await?];
        let mut peer_subjects = vec![subscribe(relay.peer_process_subject(id)).await?];
        // Account presence across the world's zone processes (with a directory).
        let mut presence_parts = None;
        if let (Some(url), Some(fleet)) = (&relay.redis_url, fleet.as_mut()) {
            let (presence, kicks, renewer) = super::presence::FleetPresence::start(
                url,
                &relay.world,
                relay.peer_kick_subject(),
                client.clone(),
            )
            .await?;
            peer_subjects.push(subscribe(relay.peer_kick_subject()).await?);
            fleet.presence = Some(presence.clone());
            presence_parts = Some((presence, kicks, renewer));
        }
        // Resumptions of sessions over another gateway: every zone process hears them.
        batch_subjects.push(subscribe(relay.resume_subject()).await?);
        for &zone in &local_zones {
            batch_subjects.push(subscribe(relay.zone_subject(zone)).await?);
            peer_subjects.push(subscribe(relay.peer_zone_subject(zone)).await?);
        }
        // Subscriptions are registered before any gateway can be told this process runs.
        client
            .flush()
            .await
            .map_err(|e| NetError::Connection(format!("NATS flush: {e}")))?;
        let tick = Arc::new(tokio::sync::Notify::new());
        let mut zones = ZoneSet::start(config, Some(tick.clone()), fleet.as_ref())?;
        let remote = handoff::forward_remote(std::mem::take(&mut zones.remote));
        // Shard loads (with a directory): what gateways place by and the lanes read; with a
        // cap, the merging of shards nobody needs.
        let (retired_tx, retired) = tokio::sync::watch::channel(false);
        let loads = match &relay.redis_url {
            Some(url) => Some(ShardLoadsTask {
                connection: super::directory::connect(url).await?,
                task: tokio::spawn(super::shard_loads::publish_loads(
                    super::shard_loads::LoadsTask {
                        connection: super::directory::connect(url).await?,
                        world: relay.world.clone(),
                        local: local_zones.clone(),
                        players: zones.players.clone(),
                        lanes: zones.lanes.clone(),
                        merging: relay.shard_cap.map(|cap| super::shard_loads::Merging {
                            inboxes: zones.inboxes.clone(),
                            cap,
                            after: relay.shard_merge_after,
                            home_zone,
                            retired: retired_tx,
                        }),
                    },
                )),
                zone_count,
                local: local_zones.clone(),
            }),
            None => None,
        };
        let (stopping, stop_rx) = oneshot::channel();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let health = super::RelayHealth::default();
        let (handoff_tasks_tx, handoff_tasks_rx) = mpsc::unbounded_channel();
        let (presence, kicks, presence_renewer) = match presence_parts {
            Some((presence, kicks, renewer)) => (Some(presence), kicks, Some(renewer)),
            // Never yields: no presence, no kicks of our own.
            None => (None, mpsc::unbounded_channel().1, None),
        };
        let relay_loop = RelayLoop {
            health: health.clone(),
            connections: connections.clone(),
            client,
            me: id,
            settings: relay.clone(),
            my_subject,
            inboxes: zones.inboxes.clone(),
            zone_clock: zones.start,
            outbox_capacity: config.outbox_capacity,
            conns: HashMap::new(),
            ended: HashMap::new(),
            outgoing: HashMap::new(),
            last_sent_us: HashMap::new(),
            clock: Instant::now(),
            stopping: false,
            peers: handoff::Peers {
                senders: zones.peers.clone(),
                local: zones.local.clone(),
                accounts: zones.accounts.clone(),
                border_backlog: zones.border_backlog.clone(),
                chat: zones.chat.clone(),
                fencing: leases.as_ref().map(super::directory::ZoneLeases::fencing),
            },
            moving: HashMap::new(),
            arrived: HashMap::new(),
            handoff_tasks: handoff_tasks_tx,
            presence: presence.clone(),
            flush_soon: false,
        };
        let relay_task = tokio::spawn(relay_loop.run(RelayInputs {
            incoming: futures_util::stream::select_all(batch_subjects),
            peer_incoming: futures_util::stream::select_all(peer_subjects),
            remote,
            handoff_tasks: handoff_tasks_rx,
            kicks,
            tick,
            stopping: stop_rx,
        }));
        tracing::info!(process = %format!("{id:016x}"), world = %relay.world, zones = ?local_zones, "zone process relaying");
        Ok(ZoneProcess {
            zones,
            id,
            leases,
            loads,
            retired,
            world: relay.world.clone(),
            relay_task,
            stopping: Some(stopping),
            connections,
            health,
            presence,
            presence_renewer,
        })
    }

    /// This process's id (in its subject).
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The fencing token of `zone`'s lease (its shard 0; `None` without a directory).
    #[must_use]
    pub fn fencing_token(&self, zone: ZoneId) -> Option<u64> {
        self.leases.as_ref()?.token(zone.0)
    }

    /// Resolves if the relay stopped while the zones run (its NATS subscriptions closed):
    /// nobody can reach the zones any more (`mmo-server` shuts down and exits with 1).
    /// Never resolves otherwise.
    pub async fn relay_failed(&self) {
        self.health.wait().await;
    }

    /// Resolves with the reason when this process lost a zone's lease (another process may
    /// own the zone now): the caller must stop acting as its owner. Never resolves without
    /// a directory or while every lease is held.
    pub async fn ownership_lost(&self) -> String {
        match &self.leases {
            Some(leases) => leases.lost().await,
            None => std::future::pending().await,
        }
    }

    /// Resolves once every zone instance here was a shard nobody needed any more: its
    /// players moved to another shard of its zone ([`super::shard_merge`]), and the process
    /// should stop cleanly (its supervisor starts a new spare). Never resolves for a
    /// process running a shard 0, or without merging (`RelaySettings::shard_cap`).
    pub async fn retired(&self) {
        let mut retired = self.retired.clone();
        if retired.wait_for(|r| *r).await.is_err() {
            // The loads task ended without retiring (never, while the process runs).
            std::future::pending::<()>().await;
        }
    }

    /// Relayed connections this process knows now: open ones, and ended ones until both
    /// sides are done with them (also the gauge `mmo_relay_connections`).
    #[must_use]
    pub fn relayed_connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The zone instances run here, as metrics name them (`3`, or `3.1` for zone 3's shard
    /// 1; `crate::shard`).
    #[must_use]
    pub fn zone_labels(&self) -> Vec<String> {
        let zone_count = self.zones.lanes.zone_count();
        (0u16..)
            .zip(self.zones.local.iter())
            .filter(|&(_, &local)| local)
            .map(|(id, _)| ZoneShard::of_instance(id, zone_count).label())
            .collect()
    }

    /// How many zones (threads) run here.
    #[must_use]
    pub fn zone_count(&self) -> usize {
        self.zones.local.iter().filter(|&&l| l).count()
    }

    /// The chat hub of every zone (operator mutes, who is online).
    #[must_use]
    pub fn chat(&self) -> &crate::chat::ChatHub {
        &self.zones.chat
    }

    /// Runs `f` on `zone`'s thread between ticks (see
    /// [`crate::server::Server::inspect_zone`]); `zone` is a zone instance id
    /// ([`crate::shard`]: a zone's own id names its shard 0).
    pub async fn inspect_zone<R: Send + 'static>(
        &self,
        zone: ZoneId,
        f: impl FnOnce(&Zone, &[ConnectionId]) -> R + Send + 'static,
    ) -> Option<R> {
        self.zones.inspect_zone(zone, f).await
    }

    /// Closes every session with `ServerShutdown` (the gateways close their clients with
    /// it), offers every character's last save, stops the zones, and sends the relay's
    /// last batches for up to `grace`.
    pub async fn shutdown(mut self, grace: Duration) {
        self.zones.shutdown().await;
        // The zones released their sessions' presence keys; let those calls finish.
        if let Some(presence) = &self.presence {
            presence.settle(grace).await;
        }
        if let Some(renewer) = self.presence_renewer.take() {
            renewer.abort();
        }
        if let Some(stopping) = self.stopping.take() {
            let _ = stopping.send(());
        }
        if tokio::time::timeout(grace, &mut self.relay_task)
            .await
            .is_err()
        {
            tracing::warn!("zone process relay did not finish within the grace period");
            self.relay_task.abort();
        }
        if let Some(mut loads) = self.loads.take() {
            loads.task.abort();
            super::shard_loads::remove_loads(
                &mut loads.connection,
                &self.world,
                loads.zone_count,
                &loads.local,
            )
            .await;
        }
        if let Some(leases) = self.leases.take() {
            leases.release().await;
        }
        tracing::info!(process = %format!("{:016x}", self.id), "zone process stopped");
    }
}

impl Drop for ZoneProcess {
    fn drop(&mut self) {
        self.relay_task.abort();
        if let Some(loads) = &self.loads {
            loads.task.abort();
        }
        if let Some(renewer) = &self.presence_renewer {
            renewer.abort();
        }
        if self.zones.is_running() {
            self.zones.stop_now();
        }
    }
}

/// One relayed connection as the zone process knows it.
struct ZoneConn {
    /// The gateway's subject (the `reply_to` of its batches).
    gateway_subject: String,
    /// The session's id once the home zone registered it.
    id: Option<ConnectionId>,
    reply: Option<oneshot::Receiver<ConnectionId>>,
    outbox: mpsc::Receiver<Queued>,
    /// The session ended (the zone dropped the outbox's sender); our `End` is queued.
    outbox_closed: bool,
    control: mpsc::Sender<Vec<u8>>,
    link: Arc<Link>,
    to_gateway: ReliableSender,
    from_gateway: ReliableReceiver,
    /// What the gateway was told about the session so far.
    announced: Announced,
    /// The gateway's `End` arrived; `lost` waits to reach the zone.
    gateway_ended: bool,
    lost: Option<DisconnectReason>,
    /// The gateway stopped acknowledging.
    gateway_gone: bool,
    /// When our `End` was acknowledged (the connection is forgotten at the gateway's
    /// `End`, or [`PEER_TIMEOUT_US`] after this at the latest).
    end_acked_at_us: Option<u64>,
    /// Item 0 (`Open`) was delivered.
    opened_seen: bool,
    /// Being handed to another zone process (the transfer's id): the gateway's items are
    /// neither delivered nor acknowledged, its datagrams are forwarded.
    moving: Option<u64>,
    /// Handed over: our last item is `Moved` (to this process, resuming at this item of
    /// the gateway's), and the connection is forgotten once it is acknowledged.
    moved_to: Option<StreamItem>,
    /// Client datagrams that arrived after its zone handed it to another process and before
    /// the relay heard of the handoff (forwarded with it).
    held: Vec<Vec<u8>>,
    /// The session's name for account presence (the connection it logged in on; kept
    /// across handoffs and resumptions).
    session: SessionRef,
    /// The resumption token's secret and the session's recent control bytes.
    replay: replay::ServerReplay,
}

impl ZoneConn {
    /// A connection of the gateway on `gateway_subject` whose session is `session`, the
    /// zone's end of its channels given: fresh streams, nothing announced, nothing ended.
    fn new(
        gateway_subject: &str,
        session: SessionRef,
        outbox: mpsc::Receiver<Queued>,
        control: mpsc::Sender<Vec<u8>>,
        link: Arc<Link>,
    ) -> ZoneConn {
        ZoneConn {
            gateway_subject: gateway_subject.to_owned(),
            id: None,
            reply: None,
            outbox,
            outbox_closed: false,
            control,
            link,
            to_gateway: ReliableSender::new(),
            from_gateway: ReliableReceiver::new(),
            announced: Announced::default(),
            gateway_ended: false,
            lost: None,
            gateway_gone: false,
            end_acked_at_us: None,
            opened_seen: false,
            moving: None,
            moved_to: None,
            held: Vec::new(),
            session,
            replay: replay::ServerReplay::new(),
        }
    }
}

/// What a zone process told a gateway about a session (`LoggedIn`, `Session`).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Announced {
    /// `LoggedIn` was queued.
    pub(super) logged_in: bool,
    /// The zone instance of the last `Session` item queued.
    pub(super) session_zone: Option<u16>,
}

/// How a gateway opened a connection here (its item 0).
enum Opening {
    /// `Open`: a new connection, whose client logs in, starting in this zone instance.
    Login { home_zone: u16 },
    /// `Rejoin`: a session whose zone process stopped, restarted from its last save.
    Rejoin(SessionTicket),
}

/// A connection: its gateway and the gateway's number for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ConnKey {
    gateway: u64,
    local: u64,
}

/// Where a batch goes: a gateway's subject and its id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GatewayAddress {
    subject: String,
    gateway: u64,
}

struct RelayLoop {
    client: async_nats::Client,
    /// This zone process's id.
    me: u64,
    settings: RelaySettings,
    my_subject: String,
    inboxes: Arc<[mpsc::Sender<ZoneMsg>]>,
    zone_clock: Instant,
    outbox_capacity: usize,
    conns: HashMap<ConnKey, ZoneConn>,
    /// Connections forgotten recently, and when (µs of `clock`).
    ended: HashMap<ConnKey, u64>,
    /// Items to publish, by gateway.
    outgoing: HashMap<GatewayAddress, Vec<Item>>,
    /// When a batch last went to each gateway this process has connections with (µs of
    /// `clock`): the heartbeat.
    last_sent_us: HashMap<GatewayAddress, u64>,
    clock: Instant,
    /// The zones stopped: new connections are answered `ServerShutdown`.
    stopping: bool,
    /// `conns.len()` after each flush, for [`ZoneProcess::relayed_connections`].
    connections: Arc<std::sync::atomic::AtomicUsize>,
    health: super::RelayHealth,
    /// The zone threads' shared tables the handoffs need.
    peers: handoff::Peers,
    /// Handoffs sent and not answered yet, by transfer id.
    moving: HashMap<u64, handoff::Moving>,
    /// Handoffs received, by transfer id: the answer given and the connection (forgotten
    /// after [`ENDED_MEMORY_US`]).
    arrived: HashMap<u64, handoff::Arrived>,
    /// Where a handoff's directory tasks (the receiver's fencing check and claim, the
    /// sender's abort) send their results.
    handoff_tasks: mpsc::UnboundedSender<handoff::TaskDone>,
    /// Account presence across the world (with a directory).
    presence: Option<super::FleetPresence>,
    /// A handoff changed state (sent, answered): flush now rather than at the next tick,
    /// so its `Moved` item and the datagrams it forwards do not wait up to a tick.
    flush_soon: bool,
}

/// What the relay task waits on.
struct RelayInputs {
    /// Batches from gateways (the process's and its zones' subjects).
    incoming: futures_util::stream::SelectAll<async_nats::Subscriber>,
    /// Peer messages from other zone processes (handoffs, answers, borders, kicks).
    peer_incoming: futures_util::stream::SelectAll<async_nats::Subscriber>,
    /// What local zones send to remote ones.
    remote: mpsc::UnboundedReceiver<handoff::RemoteMsg>,
    /// Handoffs' directory tasks that finished.
    handoff_tasks: mpsc::UnboundedReceiver<handoff::TaskDone>,
    /// Sessions here whose presence key a newer login took.
    kicks: mpsc::UnboundedReceiver<super::presence::LocalKick>,
    /// Woken after each zone tick.
    tick: Arc<tokio::sync::Notify>,
    /// The zones stopped.
    stopping: oneshot::Receiver<()>,
}

impl RelayLoop {
    fn now_us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    async fn run(mut self, inputs: RelayInputs) {
        let RelayInputs {
            mut incoming,
            mut peer_incoming,
            mut remote,
            mut handoff_tasks,
            mut kicks,
            tick,
            mut stopping,
        } = inputs;
        // Every batch subscription carries the same batches (section 1 of
        // `RELAY_FORMAT.md`).
        let mut guard = self.health.guard();
        let mut timer = tokio::time::interval(TIMER);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopped = false;
        loop {
            if self.flush_soon {
                self.flush_soon = false;
                self.flush().await;
            }
            tokio::select! {
                message = incoming.next() => {
                    let Some(message) = message else {
                        self.health.fail("the zone process's NATS subscriptions closed");
                        break;
                    };
                    if let Some(batch) = super::decode(&message.payload) {
                        self.receive(batch);
                    }
                }
                message = peer_incoming.next() => {
                    let Some(message) = message else {
                        self.health.fail("the zone process's NATS peer subscriptions closed");
                        break;
                    };
                    self.receive_peer(&message.payload).await;
                }
                Some(msg) = remote.recv() => self.send_remote(msg).await,
                Some(done) = handoff_tasks.recv() => self.handoff_task_done(done).await,
                Some(kick) = kicks.recv() => self.kick_session(&kick.account, kick.session),
                () = tick.notified() => self.flush().await,
                _ = timer.tick() => {
                    self.flush().await;
                    if stopped && self.conns.is_empty() {
                        break;
                    }
                }
                _ = &mut stopping, if !stopped => {
                    stopped = true;
                    self.stopping = true;
                }
            }
        }
        guard.armed = false;
        // What was published reaches the NATS server before the task ends.
        if let Err(e) = self.client.flush().await {
            tracing::debug!(error = %e, "NATS flush at the relay's end failed");
        }
    }

    fn receive(&mut self, batch: Batch) {
        let gateway = batch.gateway;
        let zone_now_us = self.zone_clock.elapsed().as_micros() as u64;
        let mut touched: Vec<ConnKey> = Vec::new();
        for item in batch.items {
            match item {
                Item::Datagram { conn, bytes } => {
                    let key = ConnKey {
                        gateway,
                        local: conn,
                    };
                    let Some(c) = self.conns.get_mut(&key) else {
                        continue;
                    };
                    if let Some(transfer_id) = c.moving {
                        if let Some(m) = self.moving.get_mut(&transfer_id) {
                            m.forward(bytes);
                        }
                        continue;
                    }
                    if c.moved_to.is_some() {
                        continue;
                    }
                    let zone = usize::from(c.link.zone());
                    if !self.peers.is_local(zone) {
                        // Its zone just handed it to another process (the relay hears of it
                        // next): kept for the handoff to forward.
                        if c.held.len() >= handoff::MAX_HELD_DATAGRAMS {
                            c.held.remove(0);
                        }
                        c.held.push(bytes);
                        continue;
                    }
                    let routed = self.inboxes.get(zone);
                    match (c.id, routed) {
                        (Some(id), Some(inbox)) if c.link.is_logged_in() => {
                            if inbox
                                .try_send(ZoneMsg::Datagram(id, bytes, zone_now_us))
                                .is_err()
                            {
                                c.link.drop_datagram("inbox_full");
                            }
                        }
                        _ => c.link.drop_datagram("unauthenticated"),
                    }
                }
                Item::Stream { conn, seq, item } => {
                    let key = ConnKey {
                        gateway,
                        local: conn,
                    };
                    if !self.conns.contains_key(&key) {
                        match &item {
                            StreamItem::Open { home_zone } if seq == 0 => {
                                if self.ended.contains_key(&key) {
                                    continue;
                                }
                                let how = Opening::Login {
                                    home_zone: *home_zone,
                                };
                                self.open(key, how, &batch.reply_to);
                            }
                            StreamItem::Rejoin(ticket) if seq == 0 => {
                                if self.ended.contains_key(&key) {
                                    continue;
                                }
                                let how = Opening::Rejoin(ticket.clone());
                                self.open(key, how, &batch.reply_to);
                            }
                            StreamItem::Resume {
                                token,
                                received_bytes,
                            } if seq == 0 => {
                                if self.ended.contains_key(&key) {
                                    continue;
                                }
                                let (token, received_bytes) = (token.clone(), *received_bytes);
                                if !self.resume(key, &token, received_bytes, &batch.reply_to) {
                                    // Another process's session (or none): they answer.
                                    continue;
                                }
                            }
                            StreamItem::End { .. } => {
                                // Its acknowledgement was lost after we forgot it.
                                self.queue(
                                    GatewayAddress {
                                        subject: batch.reply_to.clone(),
                                        gateway,
                                    },
                                    Item::Ack {
                                        conn,
                                        next_seq: seq.saturating_add(1),
                                        credit_end: seq.saturating_add(1),
                                    },
                                );
                                continue;
                            }
                            _ => continue,
                        }
                    }
                    let Some(c) = self.conns.get_mut(&key) else {
                        continue;
                    };
                    // The gateway sends these again to the new zone process (`Moved`).
                    if c.moving.is_some() || c.moved_to.is_some() {
                        continue;
                    }
                    touched.push(key);
                    if let Err(e) = c.from_gateway.on_item(seq, item) {
                        count("stream_refused");
                        tracing::warn!(error = %e, "gateway broke the relay stream: ending the session");
                        c.gateway_ended = true;
                        end_session(c, DisconnectReason::ProtocolViolation);
                    }
                }
                Item::Ack {
                    conn,
                    next_seq,
                    credit_end,
                } => {
                    if let Some(c) = self.conns.get_mut(&ConnKey {
                        gateway,
                        local: conn,
                    }) && let Err(e) = c.to_gateway.on_ack(AckFields {
                        next_seq,
                        credit_end,
                    }) {
                        count("stream_refused");
                        tracing::warn!(error = %e, "bad relay acknowledgement: ending the session");
                        c.gateway_ended = true;
                        end_session(c, DisconnectReason::ProtocolViolation);
                    }
                }
            }
        }
        // Control bytes reach the zone without waiting for the tick's drain.
        touched.sort_unstable();
        touched.dedup();
        for key in touched {
            if let Some(c) = self.conns.get_mut(&key) {
                deliver(c, &self.inboxes);
            }
        }
    }

    /// Registers a new connection: a login in zone instance `home_zone` (zone 0 when there
    /// is no such zone here), or a rejoin in the ticket's instance (refused with
    /// `service_unavailable` when that instance is not run here).
    fn open(&mut self, key: ConnKey, how: Opening, gateway_subject: &str) {
        let (home, rejoin) = match how {
            Opening::Login { home_zone } if usize::from(home_zone) < self.inboxes.len() => {
                (home_zone, None)
            }
            Opening::Login { .. } => (0, None),
            Opening::Rejoin(ticket) => {
                count("rejoin_opened");
                let grant = LoginGrant {
                    account: ticket.account,
                    character_id: ticket.character_id,
                };
                (ticket.zone, Some(grant))
            }
        };
        // A rejoin sent to a zone subject this process no longer serves (a login's home
        // zone not run here is refused below, by its closed inbox, as before rejoins).
        let rejoin_elsewhere = rejoin.is_some()
            && !(usize::from(home) < self.inboxes.len() && self.peers.is_local(usize::from(home)));
        let link = Arc::new(Link::new(DisconnectReason::ServerShutdown, true));
        link.set_zone(home);
        let (outbox, outbox_rx) = mpsc::channel(self.outbox_capacity);
        // As small as a single server's: the credit keeps the rest at the gateway.
        let (control, control_rx) = mpsc::channel(crate::server::control_chunks());
        let (reply, reply_rx) = oneshot::channel();
        let session = SessionRef {
            gateway: key.gateway,
            conn_serial: mmo_core::relay::conn_serial(key.local),
        };
        let mut conn = ZoneConn::new(gateway_subject, session, outbox_rx, control, link.clone());
        conn.reply = Some(reply_rx);
        let connect = ZoneMsg::Connect {
            outbox,
            control: control_rx,
            link,
            reply,
            session: Some(conn.session),
            rejoin,
        };
        let refused = if self.stopping {
            Some(DisconnectReason::ServerShutdown)
        } else if rejoin_elsewhere {
            Some(DisconnectReason::ServiceUnavailable)
        } else {
            match self.inboxes[usize::from(home)].try_send(connect) {
                Ok(()) => None,
                // A single server's connection task would wait for room; a relay cannot
                // hold every other connection up, so the client hears `server_full`.
                Err(mpsc::error::TrySendError::Full(_)) => Some(DisconnectReason::ServerFull),
                Err(mpsc::error::TrySendError::Closed(_)) => Some(DisconnectReason::ServerShutdown),
            }
        };
        if let Some(reason) = refused {
            count("open_refused");
            conn.reply = None;
            conn.outbox_closed = true;
            conn.to_gateway.push(StreamItem::End {
                reason_code: reason.code(),
            });
        }
        count("opened");
        self.conns.insert(key, conn);
    }

    /// A gateway's `Resume` as item 0 of connection `key` (`RELAY_FORMAT.md` section 8):
    /// when a session here issued `token`, it continues over `key` (the gateway on
    /// `gateway_subject`), its control bytes the client missed are sent again, and the
    /// connection it had is ended with `duplicate_login`; returns true (also when it is
    /// refused: the client missed more than is kept, the session is moving to another
    /// process, or an earlier resumption is not answered yet). False, doing nothing, when
    /// no session here has the token (another process's, or none: whoever
    /// has it answers, and the gateway times out otherwise).
    fn resume(
        &mut self,
        key: ConnKey,
        token: &[u8],
        received_bytes: u64,
        gateway_subject: &str,
    ) -> bool {
        let found = self.conns.iter().find(|(_, c)| {
            c.replay.matches(token)
                && c.id.is_some()
                && c.moving.is_none()
                && c.moved_to.is_none()
                && !c.outbox_closed
                && !c.gateway_gone
                && !c.gateway_ended
                && c.lost.is_none()
        });
        let Some((&old_key, old)) = found else {
            return false;
        };
        // Not while its zone hands it to another process (the receiver takes the token over
        // with the session and answers it once registered), nor while an earlier resumption waits for its zone's answer (the session
        // must read its stream up to one boundary at a time).
        let settled = if !self.peers.is_local(usize::from(old.link.zone())) {
            Err("the session is moving to another zone process".to_owned())
        } else if old.link.is_resume_pending() {
            Err("an earlier resumption of the session is not answered yet".to_owned())
        } else {
            Ok(())
        };
        let missed = match settled.and_then(|()| old.replay.missed_from(received_bytes)) {
            Ok(missed) => missed,
            Err(e) => {
                count("resume_refused");
                tracing::info!(error = %e, "resumption refused");
                let mut refused = ended_conn(gateway_subject, old.session);
                refused.to_gateway.push(StreamItem::End {
                    reason_code: DisconnectReason::ServiceUnavailable.code(),
                });
                self.conns.insert(key, refused);
                return true;
            }
        };
        let Some(mut conn) = self.conns.remove(&old_key) else {
            return false;
        };
        // What is left of the old connection: its streams, ended by us with the reason the
        // client would see there (it moved to another connection).
        let mut left = ended_conn(&conn.gateway_subject, conn.session);
        left.to_gateway = std::mem::replace(&mut conn.to_gateway, ReliableSender::new());
        left.from_gateway = std::mem::replace(&mut conn.from_gateway, ReliableReceiver::new());
        left.to_gateway.push(StreamItem::End {
            reason_code: DisconnectReason::DuplicateLogin.code(),
        });
        // The session, over the new connection: fresh streams, `LoggedIn` for the gateway
        // (which relays datagrams from then on), then what the client missed; its zone
        // answers `Resumed` once it read what came over the old connection.
        conn.gateway_subject = gateway_subject.to_owned();
        conn.opened_seen = false;
        conn.announced = Announced {
            logged_in: true,
            session_zone: None,
        };
        conn.to_gateway.push(StreamItem::LoggedIn);
        let missed_bytes = missed.len();
        if !missed.is_empty() {
            conn.to_gateway.push(StreamItem::Bytes(missed));
        }
        // Taken by whichever zone thread has the session (also one it arrives at later).
        conn.link.ask_resume();
        if let (Some(id), Some(zone)) = (
            conn.id,
            self.peers.senders.get(usize::from(conn.link.zone())),
        ) {
            let _ = zone.send(crate::zone_thread::PeerMsg::Resume(id));
        }
        count("resumed");
        tracing::info!(
            connection = conn.id.map(|id| id.0),
            missed_bytes,
            "session resumed over another connection"
        );
        self.conns.insert(key, conn);
        self.conns.insert(old_key, left);
        true
    }

    /// Closes the session `session` names with `duplicate_login` if it runs here (an
    /// account presence kick, `RELAY_FORMAT.md` section 6). A session being handed to
    /// another process is left alone: the kick is published again until it lands.
    fn kick_session(&mut self, account: &str, session: SessionRef) {
        let found = self.conns.iter().find(|(_, c)| {
            c.session == session && c.moving.is_none() && c.moved_to.is_none() && !c.outbox_closed
        });
        let Some((_, c)) = found else {
            return;
        };
        let Some(id) = c.id else {
            return;
        };
        let Some(zone) = self.peers.senders.get(usize::from(c.link.zone())) else {
            return;
        };
        count("presence_kicked");
        tracing::info!(
            account,
            connection = id.0,
            "logged in again elsewhere in the fleet: closing this session"
        );
        // Answered by nobody: the release of the account's key is what the new login
        // waits for.
        let done: crate::zone_thread::KickDone = Arc::default();
        let _ = zone.send(crate::zone_thread::PeerMsg::Kick(
            id,
            DisconnectReason::DuplicateLogin,
            "logged in from another connection",
            done,
        ));
    }

    fn queue(&mut self, to: GatewayAddress, item: Item) {
        self.outgoing.entry(to).or_default().push(item);
    }

    /// Drains every connection's outbox, queues stream items and acknowledgements,
    /// publishes one batch per gateway, and forgets finished connections.
    async fn flush(&mut self) {
        let now_us = self.now_us();
        let mut due = Vec::new();
        let mut datagrams = Vec::new();
        let mut finished = Vec::new();
        for (&key, c) in &mut self.conns {
            deliver(c, &self.inboxes);
            let items = self
                .outgoing
                .entry(GatewayAddress {
                    subject: c.gateway_subject.clone(),
                    gateway: key.gateway,
                })
                .or_default();
            datagrams.clear();
            drain_outbox(c, key.local, &mut datagrams, &self.peers.local, false);
            due.clear();
            if !c.gateway_gone {
                c.to_gateway
                    .poll_transmit(now_us, RETRANSMIT_AFTER_US, &mut due);
            }
            for d in due.drain(..) {
                items.push(Item::Stream {
                    conn: key.local,
                    seq: d.seq,
                    item: d.item,
                });
            }
            if let Some(ack) = c.from_gateway.take_ack(now_us, RETRANSMIT_AFTER_US) {
                items.push(Item::Ack {
                    conn: key.local,
                    next_seq: ack.next_seq,
                    credit_end: ack.credit_end,
                });
            }
            // After the stream items: the session's first snapshot follows its welcome.
            items.append(&mut datagrams);
            if !c.gateway_gone
                && c.to_gateway
                    .oldest_unacked_age_us(now_us)
                    .is_some_and(|age| age > PEER_TIMEOUT_US)
            {
                // What is left of a connection whose session resumed elsewhere has no
                // session to end: its gateway is likely the one that died.
                if !(c.outbox_closed && c.id.is_none()) {
                    count("peer_timeout");
                    tracing::warn!("gateway silent: ending the session");
                }
                c.gateway_gone = true;
                c.gateway_ended = true;
                end_session(c, DisconnectReason::Timeout);
            }
            if c.outbox_closed && c.to_gateway.is_idle() {
                c.end_acked_at_us.get_or_insert(now_us);
            }
            // Forgotten once both ends are over, or the gateway is gone; or when the
            // gateway acknowledged our end but its own never came (it forgot the connection
            // after a timeout of its own): after the peer timeout.
            let acked_long_ago = c
                .end_acked_at_us
                .is_some_and(|at_us| now_us.saturating_sub(at_us) > PEER_TIMEOUT_US);
            let both_over = c.end_acked_at_us.is_some() && c.gateway_ended;
            // Handed over: done once the gateway has our `Moved`.
            let moved = c.moved_to.is_some() && c.end_acked_at_us.is_some();
            if c.outbox_closed && (both_over || c.gateway_gone || acked_long_ago || moved) {
                finished.push(key);
            }
        }
        self.poll_handoffs(now_us).await;
        for key in finished {
            self.conns.remove(&key);
            self.ended.insert(key, now_us);
            count("ended");
        }
        self.ended
            .retain(|_, ended_at_us| now_us.saturating_sub(*ended_at_us) < ENDED_MEMORY_US);
        self.connections
            .store(self.conns.len(), std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!(crate::metrics::RELAY_CONNECTIONS).set(self.conns.len() as f64);
        for (to, items) in self.outgoing.iter_mut() {
            let heartbeat_due = self
                .last_sent_us
                .get(to)
                .is_none_or(|&at_us| now_us.saturating_sub(at_us) >= ZONE_HEARTBEAT_US);
            if !items.is_empty() {
                let items = std::mem::take(items);
                super::publish(
                    &self.client,
                    &to.subject,
                    to.gateway,
                    &self.my_subject,
                    items,
                )
                .await;
                self.last_sent_us.insert(to.clone(), now_us);
            } else if heartbeat_due {
                super::publish_empty(&self.client, &to.subject, to.gateway, &self.my_subject).await;
                self.last_sent_us.insert(to.clone(), now_us);
            }
        }
        // Every gateway with a connection here has an entry (maybe empty) this flush.
        let outgoing = &self.outgoing;
        self.last_sent_us.retain(|to, _| outgoing.contains_key(to));
        self.outgoing.retain(|_, items| items.capacity() > 0);
    }
}

/// A connection with no session behind it (its outbox closed): what remains of one whose
/// session resumed elsewhere, or a refused resumption. Forgotten like any ended one.
fn ended_conn(gateway_subject: &str, session: SessionRef) -> ZoneConn {
    let (_, outbox) = mpsc::channel(1);
    let (control, _) = mpsc::channel(1);
    let link = Arc::new(Link::new(DisconnectReason::ServerShutdown, true));
    let mut conn = ZoneConn::new(gateway_subject, session, outbox, control, link);
    conn.outbox_closed = true;
    conn
}

/// Learns the session id, hands the gateway's in-order items to the zone (control bytes
/// while the chunk channel has room: a full one leaves them unacknowledged, which stops the
/// gateway at its window), and tells the zone of the client's loss once it can.
fn deliver(c: &mut ZoneConn, inboxes: &[mpsc::Sender<ZoneMsg>]) {
    if c.moving.is_some() || c.moved_to.is_some() {
        return;
    }
    learn_id(c);
    let mut woke = false;
    while c.control.capacity() > 0 {
        let Some(item) = c.from_gateway.pop() else {
            break;
        };
        match item {
            StreamItem::Bytes(bytes) => {
                // Cannot be full (capacity checked); closed means the session is over.
                let _ = c.control.try_send(bytes);
                woke = true;
            }
            StreamItem::End { reason_code } => {
                c.gateway_ended = true;
                let reason =
                    DisconnectReason::try_from(reason_code).unwrap_or(DisconnectReason::ClientQuit);
                end_session(c, reason);
            }
            // Item 0 was handled at opening.
            StreamItem::Open { .. } | StreamItem::Rejoin(_) | StreamItem::Resume { .. }
                if !c.opened_seen =>
            {
                c.opened_seen = true;
            }
            // Only a zone process sends `LoggedIn`, `Moved` and `Session`; a second `Open`,
            // `Rejoin` or `Resume` is out of place.
            StreamItem::Open { .. }
            | StreamItem::Rejoin(_)
            | StreamItem::Resume { .. }
            | StreamItem::LoggedIn
            | StreamItem::Moved { .. }
            | StreamItem::Session(_)
            | StreamItem::TakenOver(_) => {
                count("wrong_direction");
            }
        }
    }
    let Some(id) = c.id else { return };
    let Some(inbox) = inboxes.get(usize::from(c.link.zone())) else {
        return;
    };
    if woke {
        // A lost wake-up only waits for the tick, which drains every channel.
        let _ = inbox.try_send(ZoneMsg::Wake(id));
    }
    if let Some(reason) = c.lost
        && !c.outbox_closed
        && inbox.try_send(ZoneMsg::Lost(id, reason)).is_ok()
    {
        c.lost = None;
    }
}

/// Takes the session's id from its zone's reply, once it came.
fn learn_id(c: &mut ZoneConn) {
    if let Some(reply) = &mut c.reply {
        match reply.try_recv() {
            Ok(id) => {
                c.id = Some(id);
                c.reply = None;
            }
            Err(oneshot::error::TryRecvError::Empty) => {}
            Err(oneshot::error::TryRecvError::Closed) => c.reply = None,
        }
    }
}

/// Tells the zone the client is gone for `reason` (once it can, see [`deliver`]) and makes
/// `reason` the code of our `End` (the session records no reason of its own for a lost
/// connection).
fn end_session(c: &mut ZoneConn, reason: DisconnectReason) {
    c.link.set_close_reason(reason);
    c.lost.get_or_insert(reason);
}

/// Moves the session's transmits to the gateway: datagrams as they are into `datagrams`
/// (stale ones dropped, as a single server's writer does), control bytes into the stream
/// while the window has room (everything when `whole`: a handoff's sender, whose tail and
/// resumption count must hold all the session wrote), and the session's end.
/// `local_zones[z]`: zone instance `z` runs in this process.
fn drain_outbox(
    c: &mut ZoneConn,
    local: u64,
    datagrams: &mut Vec<Item>,
    local_zones: &[bool],
    whole: bool,
) {
    if !c.announced.logged_in && c.link.is_logged_in() {
        c.announced.logged_in = true;
        c.to_gateway.push(StreamItem::LoggedIn);
    }
    // What a restart elsewhere needs, once known and whenever the zone instance changed
    // (not while the session is leaving for another process, nor for a zone another
    // process runs, which the session's zone names as soon as it hands the player over:
    // the next process tells; a restart must start where this process saved).
    let zone = c.link.zone();
    if c.announced.logged_in
        && local_zones.get(usize::from(zone)).copied().unwrap_or(false)
        && c.announced.session_zone != Some(zone)
        && c.moving.is_none()
        && c.moved_to.is_none()
        && !c.outbox_closed
        && let Some(identity) = c.link.identity()
    {
        c.announced.session_zone = Some(zone);
        c.to_gateway.push(StreamItem::Session(SessionTicket {
            zone,
            account: identity.account,
            character_id: identity.character_id,
        }));
    }
    // The resumption token: the first of the stream's bytes once logged in (at a frame
    // boundary: each of the session's transmits is whole frames).
    if c.announced.logged_in
        && c.moving.is_none()
        && c.moved_to.is_none()
        && !c.outbox_closed
        && let Some(frame) = c.replay.token_frame()
    {
        c.to_gateway.push(StreamItem::Bytes(frame));
    }
    // A gone gateway acknowledges nothing: take everything (it is dropped) so the
    // session's end is seen.
    while !c.outbox_closed && (whole || c.gateway_gone || c.to_gateway.has_room()) {
        match c.outbox.try_recv() {
            Ok(Queued {
                transmit: Transmit::Datagram(_),
                at,
            }) if at.elapsed() > MAX_DATAGRAM_AGE => c.link.drop_datagram("stale"),
            Ok(Queued {
                transmit: Transmit::Datagram(bytes),
                ..
            }) => datagrams.push(Item::Datagram { conn: local, bytes }),
            Ok(Queued {
                transmit: Transmit::Stream(bytes),
                ..
            }) => {
                c.replay.sent(&bytes);
                c.to_gateway.push(StreamItem::Bytes(bytes));
            }
            Err(mpsc::error::TryRecvError::Empty) => break,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                c.outbox_closed = true;
                // Handed over: `Moved` instead of `End` (the session goes on elsewhere).
                let last = c.moved_to.clone().unwrap_or(StreamItem::End {
                    reason_code: c.link.close_reason().code(),
                });
                c.to_gateway.push(last);
            }
        }
    }
}
