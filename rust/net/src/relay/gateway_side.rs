//! The gateway role: QUIC connections in, relay batches out (see the module docs of
//! `relay`).
//!
//! Each accepted connection is served by [`serve_relayed`] (its datagram loop, its control
//! stream reader and writer, as on a single server) and registered with the one relay task,
//! which owns every connection's reliable streams: client control bytes and the
//! connection's end go to the zone process as stream items, client datagrams as datagram
//! items; from the zone process, datagrams and control bytes go to the connection's outbox
//! (the same writer task as on a single server), `LoggedIn` opens the datagram path and
//! `End` closes the QUIC connection with the session's reason.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mmo_core::control::DisconnectReason;
use mmo_core::relay::{
    AckFields, Batch, FrameCursor, Item, ReliableReceiver, ReliableSender, SenderTail,
    SessionTicket, StreamItem, conn_incarnation, conn_number, conn_serial,
};
use mmo_core::session::Transmit;
use tokio::sync::mpsc;

use super::{
    OPEN_TIMEOUT_US, PEER_TIMEOUT_US, REJOIN_TIMEOUT_US, RETRANSMIT_AFTER_US, RelaySettings,
    ZONE_SILENCE_US, count,
};
use crate::NetError;
use crate::bridge::{Link, Queued};
use crate::gateway::Gateway;
use crate::server::{OpenedConnection, ServerConfig, Upstream};
use crate::tls::Fingerprint;

/// Commands from the connection tasks to the relay task; datagrams beyond it are dropped.
const COMMAND_CAPACITY: usize = 65_536;
/// The relay task's timer: control bytes left behind, retransmissions, timeouts.
const TIMER: Duration = Duration::from_millis(20);
/// How long a connection's first control frame is awaited before it is opened as a login
/// anyway (the zone process then times out a client that says nothing), µs.
const FIRST_FRAME_WAIT_US: u64 = 1_000_000;
/// Client traffic is held at most this long to share a batch with what follows it (one
/// NATS message per datagram cost more CPU in the gateway, the NATS server and the zone
/// process than the relay's whole work otherwise; see `docs/fleet.md`).
const COALESCE: Duration = Duration::from_millis(1);

/// What a connection task tells the relay task.
enum Command {
    /// A connection opened its control stream.
    Open {
        local: u64,
        /// The zone instance it starts in (the home zone's shard placed on).
        home: u16,
        outbox: mpsc::Sender<Queued>,
        control: mpsc::Receiver<Vec<u8>>,
        link: Arc<Link>,
    },
    /// Control bytes wait in the connection's chunk channel.
    Wake { local: u64 },
    /// A client datagram to relay.
    Datagram { local: u64, bytes: Vec<u8> },
    /// The QUIC connection ended, with this reason (after its last control bytes).
    Lost {
        local: u64,
        reason: DisconnectReason,
    },
    /// The gateway is stopping: end every connection with `ServerShutdown`.
    Shutdown,
}

/// The connection tasks' way to the relay task.
#[derive(Clone)]
pub(crate) struct RelayHandle {
    commands: mpsc::Sender<Command>,
    next_local: Arc<AtomicU64>,
    /// The home zone's instance id (shard 0), where connections start without placement.
    home: u16,
    /// Placement among the home zone's shards (with the directory and a shard cap).
    placement: Option<Arc<super::shard_placement::ShardPlacement>>,
}

impl RelayHandle {
    fn wake(&self, local: u64) {
        // A lost wake-up (full channel) only waits for the timer.
        let _ = self.commands.try_send(Command::Wake { local });
    }
}

/// A running gateway process: a QUIC endpoint whose connections are relayed to the zone
/// process of [`RelaySettings::world`] over NATS.
#[derive(Debug)]
pub struct GatewayProcess {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    fingerprint: Fingerprint,
    id: u64,
    accept_task: tokio::task::JoinHandle<()>,
    relay_task: tokio::task::JoinHandle<()>,
    commands: mpsc::Sender<Command>,
    health: super::RelayHealth,
    counts: Arc<crate::gateway::GatewayCounts>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("relay command")
    }
}

impl GatewayProcess {
    /// Connects to NATS, binds the QUIC endpoint on `config.bind_addr` with `config.cert`
    /// behind `config.gateway`'s gate, and starts relaying. New connections start in the
    /// zone that owns `config.zone.spawn_position_m` in `config.layout`. The zone fields
    /// of `config` other than those are not read (the zone process has its own).
    ///
    /// # Errors
    /// A bad setting, a socket that cannot be bound, NATS unreachable.
    pub async fn start(
        config: &ServerConfig,
        relay: RelaySettings,
    ) -> Result<GatewayProcess, NetError> {
        if config.outbox_capacity == 0 {
            return Err(NetError::Config("outbox_capacity must be positive".into()));
        }
        let gate = Gateway::new(config.gateway.clone())?;
        let id: u64 = rand::random();
        let client = relay.connect(&format!("mmo-gateway-{id:016x}")).await?;
        let my_subject = relay.gateway_subject(id);
        let subscriber = client
            .subscribe(my_subject.clone())
            .await
            .map_err(|e| NetError::Connection(format!("NATS subscribe {my_subject}: {e}")))?;
        let (endpoint, local_addr) = crate::server::bind_endpoint(config)?;
        let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let home = crate::server::home_zone(config) as u16;
        let placement = match (&relay.redis_url, relay.shard_cap) {
            (Some(url), Some(cap)) => {
                // Below 2^16 zones by the layout's own limits.
                let zone_count = crate::zone_set::zone_ids(config).len() as u16;
                Some(Arc::new(
                    super::shard_placement::ShardPlacement::connect(
                        url,
                        &relay.world,
                        home,
                        zone_count,
                        cap,
                    )
                    .await?,
                ))
            }
            (None, Some(_)) => {
                return Err(NetError::Config(
                    "fleet.shard_cap needs the fleet directory: set --redis-url".into(),
                ));
            }
            (_, None) => None,
        };
        let health = super::RelayHealth::default();
        let relay_task = tokio::spawn(
            RelayLoop {
                client,
                settings: relay.clone(),
                id,
                my_subject,
                conns: HashMap::new(),
                outgoing: HashMap::new(),
                dirty: Vec::new(),
                clock: Instant::now(),
                stopping: false,
                last_heard_us: HashMap::new(),
                health: health.clone(),
            }
            .run(subscriber, command_rx),
        );
        let handle = RelayHandle {
            commands: commands.clone(),
            next_local: Arc::new(AtomicU64::new(1)),
            home,
            placement,
        };
        let counts = Arc::new(crate::gateway::GatewayCounts::default());
        let accept_task = tokio::spawn(crate::server::accept_loop(
            endpoint.clone(),
            gate,
            Upstream::Relay(handle),
            config.outbox_capacity,
            Instant::now(),
            counts.clone(),
        ));
        tracing::info!(%local_addr, gateway = %format!("{id:016x}"), world = %relay.world, fingerprint = %config.cert.fingerprint().to_hex(), "gateway listening");
        Ok(GatewayProcess {
            endpoint,
            local_addr,
            fingerprint: config.cert.fingerprint(),
            id,
            accept_task,
            relay_task,
            commands,
            health,
            counts,
        })
    }

    /// Reads this gateway's open QUIC connections (handshaking ones included) whenever
    /// called: what the fleet's placement compares between gateways.
    #[must_use]
    pub fn open_connections(&self) -> std::sync::Arc<dyn Fn() -> usize + Send + Sync> {
        let counts = self.counts.clone();
        std::sync::Arc::new(move || counts.load().live_connections)
    }

    /// The bound UDP address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The fingerprint clients must pin.
    #[must_use]
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Resolves if the relay stopped while the gateway runs (its NATS subscription closed):
    /// the gateway cannot serve any more, and should be restarted (`mmo-server` exits with
    /// 1). Never resolves otherwise.
    pub async fn relay_failed(&self) {
        self.health.wait().await;
    }

    /// This gateway's id (in its subject and every batch it sends).
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Stops accepting, ends every connection with `ServerShutdown` (the zone process
    /// closes the sessions and offers their saves), waits up to `grace` for the zone
    /// process to acknowledge every end and up to `grace` for the connections to close,
    /// then closes the endpoint.
    pub async fn shutdown(mut self, grace: Duration) {
        self.endpoint.set_server_config(None);
        self.accept_task.abort();
        let _ = self.commands.send(Command::Shutdown).await;
        // The relay ends once every connection's end was acknowledged by the zone process
        // (or forgotten), after flushing NATS.
        if tokio::time::timeout(grace, &mut self.relay_task)
            .await
            .is_err()
        {
            tracing::warn!("gateway relay did not finish within the grace period");
            self.relay_task.abort();
        }
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
        let reason = DisconnectReason::ServerShutdown;
        self.endpoint
            .close(u32::from(reason.code()).into(), reason.as_str().as_bytes());
        tracing::info!(local_addr = %self.local_addr, "gateway stopped");
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.relay_task.abort();
    }
}

/// Serves one connection through the relay: the gateway's part of what
/// `server::serve_local` does on a single server.
pub(crate) async fn serve_relayed(opened: OpenedConnection, relay: RelayHandle) {
    let OpenedConnection {
        connection,
        send,
        recv,
        link,
        outbox_capacity,
        mut datagram_rate,
    } = opened;
    let local = relay.next_local.fetch_add(1, Ordering::Relaxed);
    let (outbox, outbox_rx) = mpsc::channel(outbox_capacity);
    let (control_tx, control) = mpsc::channel(crate::server::control_chunks());
    let home = match &relay.placement {
        Some(placement) => placement.place().await,
        None => relay.home,
    };
    let open = Command::Open {
        local,
        home,
        outbox,
        control,
        link: link.clone(),
    };
    if relay.commands.send(open).await.is_err() {
        crate::bridge::close_with(
            &connection,
            DisconnectReason::ServerShutdown,
            "gateway stopping",
        );
        return;
    }
    tokio::spawn(crate::bridge::write_transmits(
        connection.clone(),
        send,
        outbox_rx,
        link.clone(),
    ));
    let reader = tokio::spawn({
        let relay = relay.clone();
        crate::bridge::read_stream(recv, control_tx, |chunk| chunk, move || relay.wake(local))
    });
    let clock = Instant::now();
    let error = loop {
        match connection.read_datagram().await {
            Ok(d) => {
                if !link.is_logged_in() {
                    link.drop_datagram("unauthenticated");
                } else if !datagram_rate.take(clock.elapsed().as_micros() as u64) {
                    link.drop_datagram("rate_limited");
                } else if relay
                    .commands
                    .try_send(Command::Datagram {
                        local,
                        bytes: d.to_vec(),
                    })
                    .is_err()
                {
                    link.drop_datagram("relay_full");
                }
            }
            Err(e) => break e,
        }
    };
    let (reason, message) = crate::bridge::reason_of(&error, DisconnectReason::ClientQuit);
    // Control bytes already read reach the zone before the loss does.
    let _ = reader.await;
    relay.wake(local);
    let _ = relay.commands.send(Command::Lost { local, reason }).await;
    tracing::debug!(connection = local, reason = reason.as_str(), %message, "relayed connection ended");
}

/// The zone process a session is moving to, heard from before the move completed.
struct NextZone {
    subject: String,
    from_zone: ReliableReceiver,
    /// Its item 0 `TakenOver`: it took the session (`switch_to_taker`).
    taken_over: Option<SenderTail>,
}

/// What a gateway needs to have a session restarted when its zone process stops
/// (`RELAY_FORMAT.md` section 7).
#[derive(Default)]
struct Restart {
    /// The zone process's last `Session` item: who the session is and where it plays.
    ticket: Option<SessionTicket>,
    /// Where the client's control bytes passed on so far stand in its frames.
    cursor: FrameCursor,
    /// Restarting since then (µs of the relay's clock): `Rejoin` sent, no `LoggedIn` yet.
    since_us: Option<u64>,
    /// The stopped process took part of the client's current frame: the rest of it is
    /// dropped, so the new process starts at a frame.
    finishing_frame: bool,
}

/// A connection's first control bytes, held until they show whether the client logs in
/// (item 0 `Open`) or resumes a session (item 0 `Resume`, `RELAY_FORMAT.md` section 8).
struct FirstFrame {
    /// The zone instance a login starts in.
    home: u16,
    bytes: Vec<u8>,
    /// When the connection registered (µs of the relay's clock).
    since_us: u64,
}

/// One relayed connection as the relay task knows it.
struct GatewayConn {
    /// `None` once the client's writer was told to close.
    outbox: Option<mpsc::Sender<Queued>>,
    control: mpsc::Receiver<Vec<u8>>,
    link: Arc<Link>,
    to_zone: ReliableSender,
    from_zone: ReliableReceiver,
    /// Where its items go: the home zone's subject until the zone process names its own.
    zone_subject: String,
    /// A zone process answered (`zone_subject` is its subject).
    zone_answered: bool,
    /// Stream items from another zone process, which the session is moving to; delivered
    /// after the current one's `Moved`.
    next: Option<NextZone>,
    /// The zone process the session moved away from, and our final acknowledgement of its
    /// stream (given again if it sends its `Moved` again: the first one was lost).
    moved_from: Option<(String, AckFields)>,
    /// The incarnation of its streams (the low 16 bits of its `conn` number in items):
    /// one more at each `Moved`.
    incarnation: u16,
    /// The QUIC connection ended (our `End` is queued).
    client_gone: bool,
    /// The zone's `End` arrived.
    zone_ended: bool,
    /// When our `End` was acknowledged (the connection is forgotten at the zone's `End`,
    /// or [`PEER_TIMEOUT_US`] after this at the latest).
    end_acked_at_us: Option<u64>,
    /// Restarting the session if its zone process stops.
    restart: Restart,
    /// Item 0 not chosen yet: the client's first bytes.
    first_frame: Option<FirstFrame>,
    /// Item 0 is `Resume`.
    resuming: bool,
}

struct RelayLoop {
    client: async_nats::Client,
    settings: RelaySettings,
    id: u64,
    my_subject: String,
    conns: HashMap<u64, GatewayConn>,
    /// Items to publish, by subject.
    outgoing: HashMap<String, Vec<Item>>,
    /// Connections touched since the last flush (polled for stream items then).
    dirty: Vec<u64>,
    clock: Instant,
    /// [`Command::Shutdown`] came: the loop ends once every connection is forgotten.
    stopping: bool,
    /// When a batch last came from each zone process subject (µs of `clock`).
    last_heard_us: HashMap<String, u64>,
    health: super::RelayHealth,
}

impl RelayLoop {
    fn now_us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    async fn run(
        mut self,
        mut subscriber: async_nats::Subscriber,
        mut commands: mpsc::Receiver<Command>,
    ) {
        let mut guard = self.health.guard();
        let mut timer = tokio::time::interval(TIMER);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // When the client traffic taken since the last flush must go at the latest.
        let mut flush_at: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else {
                        if !self.stopping {
                            self.health.fail("the gateway's command channel closed");
                        }
                        break;
                    };
                    self.handle(command);
                    flush_at.get_or_insert_with(|| tokio::time::Instant::now() + COALESCE);
                }
                () = sleep_until(flush_at), if flush_at.is_some() => {
                    flush_at = None;
                    self.flush(false).await;
                }
                message = subscriber.next() => {
                    let Some(message) = message else {
                        if !self.stopping {
                            self.health.fail("the gateway's NATS subscription closed");
                        }
                        break;
                    };
                    if let Some(batch) = super::decode(&message.payload) {
                        self.receive(batch);
                    }
                    flush_at = None;
                    self.flush(false).await;
                }
                _ = timer.tick() => {
                    flush_at = None;
                    self.flush(true).await;
                }
            }
            if self.stopping && self.conns.is_empty() {
                break;
            }
        }
        guard.armed = false;
        // What was published reaches the NATS server before the task ends.
        if let Err(e) = self.client.flush().await {
            tracing::debug!(error = %e, "NATS flush at the relay's end failed");
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Open {
                local,
                home,
                outbox,
                control,
                link,
            } => {
                let since_us = self.now_us();
                self.conns.insert(
                    local,
                    GatewayConn {
                        outbox: Some(outbox),
                        control,
                        link,
                        to_zone: ReliableSender::new(),
                        from_zone: ReliableReceiver::new(),
                        zone_subject: self.settings.zone_subject(home),
                        zone_answered: false,
                        next: None,
                        moved_from: None,
                        incarnation: 0,
                        client_gone: false,
                        zone_ended: false,
                        end_acked_at_us: None,
                        restart: Restart::default(),
                        first_frame: Some(FirstFrame {
                            home,
                            bytes: Vec::new(),
                            since_us,
                        }),
                        resuming: false,
                    },
                );
                self.dirty.push(local);
            }
            Command::Wake { local } => self.dirty.push(local),
            Command::Datagram { local, bytes } => {
                if let Some(conn) = self.conns.get(&local)
                    && !conn.zone_ended
                    && conn.restart.since_us.is_none()
                {
                    self.outgoing
                        .entry(conn.zone_subject.clone())
                        .or_default()
                        .push(Item::Datagram {
                            conn: conn_number(local, conn.incarnation),
                            bytes,
                        });
                }
            }
            Command::Lost { local, reason } => {
                if let Some(conn) = self.conns.get_mut(&local)
                    && !conn.client_gone
                {
                    drain_control(conn, Drain::All, &self.settings);
                    if unanswered_resume(conn) {
                        self.conns.remove(&local);
                        return;
                    }
                    conn.client_gone = true;
                    conn.outbox = None;
                    conn.to_zone.push(StreamItem::End {
                        reason_code: reason.code(),
                    });
                    self.dirty.push(local);
                }
            }
            Command::Shutdown => {
                self.stopping = true;
                // Every connection's last bytes go before its end (an unanswered resumption
                // is forgotten instead, as when its client leaves).
                self.conns.retain(|_, conn| {
                    drain_control(conn, Drain::All, &self.settings);
                    !unanswered_resume(conn)
                });
                for (&local, conn) in &mut self.conns {
                    conn.link.set_close_reason(DisconnectReason::ServerShutdown);
                    if !conn.client_gone {
                        conn.client_gone = true;
                        conn.to_zone.push(StreamItem::End {
                            reason_code: DisconnectReason::ServerShutdown.code(),
                        });
                    }
                    // The writer finishes the control stream and closes the connection.
                    conn.outbox = None;
                    self.dirty.push(local);
                }
            }
        }
    }

    fn receive(&mut self, batch: Batch) {
        if batch.gateway != self.id {
            count("foreign_gateway");
            return;
        }
        let now_us = self.now_us();
        self.last_heard_us.insert(batch.reply_to.clone(), now_us);
        for item in batch.items {
            match item {
                Item::Datagram {
                    conn: number,
                    bytes,
                } => {
                    let Some(conn) = self.conns.get(&conn_serial(number)) else {
                        continue;
                    };
                    // Snapshots of a handoff's old or next process are as good (the session
                    // moves with its baselines); a restarted session's old process is not
                    // (its client reset: `RELAY_FORMAT.md` section 7).
                    let incarnation = conn_incarnation(number);
                    let current = incarnation == conn.incarnation
                        || incarnation == conn.incarnation.wrapping_add(1)
                        || (incarnation == conn.incarnation.wrapping_sub(1)
                            && conn.moved_from.is_some());
                    if !current {
                        count("stale_incarnation");
                        continue;
                    }
                    if let Some(outbox) = &conn.outbox
                        && outbox
                            .try_send(Queued::now(Transmit::Datagram(bytes)))
                            .is_err()
                    {
                        conn.link.drop_datagram("outbox_full");
                    }
                }
                Item::Stream {
                    conn: number,
                    seq,
                    item,
                } => {
                    let local = conn_serial(number);
                    let incarnation = conn_incarnation(number);
                    let Some(conn) = self.conns.get_mut(&local) else {
                        // A retransmitted end (or move) of a connection already forgotten:
                        // its acknowledgement was lost, so give it again.
                        if matches!(item, StreamItem::End { .. } | StreamItem::Moved { .. }) {
                            self.outgoing
                                .entry(batch.reply_to.clone())
                                .or_default()
                                .push(Item::Ack {
                                    conn: number,
                                    next_seq: seq.saturating_add(1),
                                    credit_end: seq.saturating_add(1),
                                });
                        }
                        continue;
                    };
                    if incarnation == conn.incarnation {
                        if !conn.zone_answered {
                            conn.zone_subject.clone_from(&batch.reply_to);
                            conn.zone_answered = true;
                        }
                        if let Err(e) = conn.from_zone.on_item(seq, item) {
                            count("stream_refused");
                            tracing::warn!(connection = local, error = %e, "zone process broke the relay stream: closing");
                            close_client(conn, DisconnectReason::ServiceUnavailable);
                        }
                    } else if incarnation == conn.incarnation.wrapping_add(1) {
                        // The zone process the session is moving to: its items wait for the
                        // current one's `Moved` (RELAY_FORMAT.md section 5).
                        let next = match &mut conn.next {
                            Some(next) if next.subject == batch.reply_to => next,
                            next => next.insert(NextZone {
                                subject: batch.reply_to.clone(),
                                from_zone: ReliableReceiver::new(),
                                taken_over: None,
                            }),
                        };
                        if seq == 0
                            && let StreamItem::TakenOver(tail) = &item
                        {
                            next.taken_over.get_or_insert_with(|| tail.clone());
                        }
                        if let Err(e) = next.from_zone.on_item(seq, item) {
                            count("stream_refused");
                            tracing::warn!(connection = local, error = %e, "next zone process broke the relay stream: closing");
                            close_client(conn, DisconnectReason::ServiceUnavailable);
                        }
                    } else if incarnation == conn.incarnation.wrapping_sub(1)
                        && let Some((subject, ack)) = &conn.moved_from
                    {
                        // The process the session left did not get our final ack. After a
                        // switch without its `Moved` (`switch_to_taker`) the final ack did
                        // not cover its last items: a `Moved` or `End` from it is
                        // acknowledged through itself, so it stops sending.
                        let last =
                            matches!(item, StreamItem::Moved { .. } | StreamItem::End { .. });
                        let through = if last { seq.saturating_add(1) } else { 0 };
                        self.outgoing
                            .entry(subject.clone())
                            .or_default()
                            .push(Item::Ack {
                                conn: number,
                                next_seq: ack.next_seq.max(through),
                                credit_end: ack.credit_end.max(through),
                            });
                        continue;
                    } else {
                        count("stale_incarnation");
                        continue;
                    }
                    self.dirty.push(local);
                }
                Item::Ack {
                    conn: number,
                    next_seq,
                    credit_end,
                } => {
                    let local = conn_serial(number);
                    let Some(conn) = self.conns.get_mut(&local) else {
                        continue;
                    };
                    // Only the current incarnation's process was sent anything.
                    if conn_incarnation(number) != conn.incarnation {
                        continue;
                    }
                    if !conn.zone_answered {
                        conn.zone_subject.clone_from(&batch.reply_to);
                        conn.zone_answered = true;
                    }
                    if let Err(e) = conn.to_zone.on_ack(AckFields {
                        next_seq,
                        credit_end,
                    }) {
                        count("stream_refused");
                        tracing::warn!(connection = local, error = %e, "bad relay acknowledgement: closing");
                        close_client(conn, DisconnectReason::ServiceUnavailable);
                    }
                    self.dirty.push(local);
                }
            }
        }
    }

    /// Delivers what arrived in order, queues stream items and acknowledgements for the
    /// touched connections (every connection when `all`), publishes, and forgets the
    /// connections whose both ends are over.
    async fn flush(&mut self, all: bool) {
        let now_us = self.now_us();
        // While this gateway's own NATS link is down, its silence says nothing about the
        // zone processes: their clocks restart when it is back.
        if self.client.connection_state() != async_nats::connection::State::Connected {
            for at_us in self.last_heard_us.values_mut() {
                *at_us = now_us;
            }
        }
        let mut locals = std::mem::take(&mut self.dirty);
        if all {
            locals.clear();
            locals.extend(self.conns.keys().copied());
        } else {
            locals.sort_unstable();
            locals.dedup();
        }
        let mut due = Vec::new();
        for &local in &locals {
            let Some(conn) = self.conns.get_mut(&local) else {
                continue;
            };
            let incarnation = conn.incarnation;
            if let Some(final_ack) = deliver(conn, &self.settings, now_us, &mut self.last_heard_us)
            {
                self.outgoing
                    .entry(final_ack.subject)
                    .or_default()
                    .push(Item::Ack {
                        conn: conn_number(local, incarnation),
                        next_seq: final_ack.ack.next_seq,
                        credit_end: final_ack.ack.credit_end,
                    });
            }
            let number = conn_number(local, conn.incarnation);
            drain_control(conn, Drain::WhileRoom, &self.settings);
            // After the drain: a first frame waiting in the channel is read before this.
            if conn
                .first_frame
                .as_ref()
                .is_some_and(|first| now_us.saturating_sub(first.since_us) > FIRST_FRAME_WAIT_US)
            {
                choose_opening(conn, &self.settings, true);
            }
            due.clear();
            conn.to_zone
                .poll_transmit(now_us, RETRANSMIT_AFTER_US, &mut due);
            let items = self.outgoing.entry(conn.zone_subject.clone()).or_default();
            for d in due.drain(..) {
                items.push(Item::Stream {
                    conn: number,
                    seq: d.seq,
                    item: d.item,
                });
            }
            if let Some(ack) = conn.from_zone.take_ack(now_us, RETRANSMIT_AFTER_US) {
                items.push(Item::Ack {
                    conn: number,
                    next_seq: ack.next_seq,
                    credit_end: ack.credit_end,
                });
            }
            if let Some(next) = &mut conn.next
                && let Some(ack) = next.from_zone.take_ack(now_us, RETRANSMIT_AFTER_US)
            {
                self.outgoing
                    .entry(next.subject.clone())
                    .or_default()
                    .push(Item::Ack {
                        conn: conn_number(local, conn.incarnation.wrapping_add(1)),
                        next_seq: ack.next_seq,
                        credit_end: ack.credit_end,
                    });
            }
            let limit_us = if conn.restart.since_us.is_some() {
                REJOIN_TIMEOUT_US
            } else if conn.to_zone.acked_count() == 0 {
                OPEN_TIMEOUT_US
            } else {
                PEER_TIMEOUT_US
            };
            let unacknowledged = conn
                .to_zone
                .oldest_unacked_age_us(now_us)
                .is_some_and(|age_us| age_us > limit_us);
            // Its zone process (known once it answered) fell silent: no batch, not even
            // the heartbeat.
            let silent = self
                .last_heard_us
                .get(&conn.zone_subject)
                .is_some_and(|&at_us| now_us.saturating_sub(at_us) > ZONE_SILENCE_US);
            if silent
                && !unacknowledged
                && switch_to_taker(conn, &self.settings, now_us, &mut self.last_heard_us)
            {
                tracing::warn!(
                    connection = local,
                    "zone process silent after the session's handoff was taken: switching to the receiver"
                );
                count("moved_without_sender");
                self.dirty.push(local);
                continue;
            }
            if silent && !unacknowledged && start_rejoin(conn, &self.settings, now_us) {
                tracing::warn!(
                    connection = local,
                    "zone process silent: restarting the session from its last save"
                );
                count("rejoin_started");
                self.dirty.push(local);
                continue;
            }
            let timed_out = unacknowledged || silent;
            if timed_out {
                count(if silent {
                    "zone_silent"
                } else {
                    "peer_timeout"
                });
                tracing::warn!(
                    connection = local,
                    rejoining = conn.restart.since_us.is_some(),
                    "zone process silent or not answering: closing the client"
                );
                close_client(conn, DisconnectReason::ServiceUnavailable);
            }
            if conn.client_gone && conn.to_zone.is_idle() {
                conn.end_acked_at_us.get_or_insert(now_us);
            }
            // Forgotten once both ends are over; or when the zone process acknowledged our
            // end but its own never came (it forgot the connection after a timeout of its
            // own): after the peer timeout.
            let done = conn.end_acked_at_us.is_some_and(|at_us| {
                conn.zone_ended || now_us.saturating_sub(at_us) > PEER_TIMEOUT_US
            });
            if done || timed_out {
                // A process the session was moving to is told it is over (once: if this is
                // lost, its own timeout ends the session there).
                if let Some(next) = &conn.next {
                    self.outgoing
                        .entry(next.subject.clone())
                        .or_default()
                        .push(Item::Stream {
                            conn: conn_number(local, conn.incarnation.wrapping_add(1)),
                            seq: 0,
                            item: StreamItem::End {
                                reason_code: conn.link.close_reason().code(),
                            },
                        });
                }
                self.conns.remove(&local);
                count("gateway_ended");
            }
        }
        // Connections touched during the loop (a restart started) stay due.
        locals.clear();
        locals.append(&mut self.dirty);
        self.dirty = locals;
        if all {
            // Zone processes nobody is connected to any more (they restart with new ids).
            let conns = &self.conns;
            self.last_heard_us
                .retain(|subject, _| conns.values().any(|c| &c.zone_subject == subject));
        }
        metrics::gauge!(crate::metrics::RELAY_CONNECTIONS).set(self.conns.len() as f64);
        for (subject, items) in self.outgoing.iter_mut() {
            if !items.is_empty() {
                let items = std::mem::take(items);
                super::publish(&self.client, subject, self.id, &self.my_subject, items).await;
            }
        }
        self.outgoing.retain(|_, items| items.capacity() > 0);
    }
}

/// Sleeps until `at` (forever when `None`; the `select!` branch is disabled then).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How much of the client's control bytes to take.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Drain {
    /// While the stream has room: a full stream stops the reading, and QUIC flow control
    /// pushes back on the client.
    WhileRoom,
    /// Everything (the connection is ending: its last bytes go before its end; the
    /// credit holds them until the zone has room).
    All,
}

/// Moves the client's control bytes waiting in the chunk channel into the stream.
fn drain_control(conn: &mut GatewayConn, how: Drain, settings: &RelaySettings) {
    if conn.client_gone {
        return;
    }
    while how == Drain::All || conn.to_zone.has_room() {
        match conn.control.try_recv() {
            Ok(mut chunk) => {
                if let Some(first) = &mut conn.first_frame {
                    first.bytes.append(&mut chunk);
                    choose_opening(conn, settings, false);
                    continue;
                }
                let restart = &mut conn.restart;
                if restart.finishing_frame {
                    let dropped = restart.cursor.finish_frame(&chunk);
                    chunk.drain(..dropped);
                    if restart.cursor.is_broken() {
                        // The stopped process would have closed the session for it, and
                        // the new one cannot be given a frame: closed here.
                        count("client_framing_broken");
                        close_client(conn, DisconnectReason::ProtocolViolation);
                        break;
                    }
                    restart.finishing_frame = !restart.cursor.at_boundary();
                    if chunk.is_empty() {
                        continue;
                    }
                }
                // Outside a restart a broken framing is the zone process's to find (it
                // closes the session with a `Disconnect` naming it).
                restart.cursor.advance(&chunk);
                conn.to_zone.push(StreamItem::Bytes(chunk));
            }
            Err(_) => break,
        }
    }
    if how == Drain::All {
        // The connection ends: its item 0 comes before its end.
        choose_opening(conn, settings, true);
    }
}

/// True when `conn`, whose client is leaving, resumes a session no zone process answered
/// for yet: it is forgotten without an `End` (counted as `resume_abandoned`), so that a
/// process that takes the session over by it keeps the session for the client's next
/// try (which takes it over again) instead of ending it with this connection.
fn unanswered_resume(conn: &GatewayConn) -> bool {
    let unanswered = conn.resuming && !conn.zone_answered && !conn.client_gone;
    if unanswered {
        count("resume_abandoned");
    }
    unanswered
}

/// Chooses item 0 once the client's first control frame is whole (or when `force`d: the
/// connection ends, or the frame is late or cannot be one): `Resume` on the subject every
/// zone process hears when it is a `Resume` of this protocol version (its frame is not
/// passed on; the bytes after it are), otherwise `Open` in the placed zone instance,
/// followed by every byte (the zone process reads the login, or refuses what is not one).
fn choose_opening(conn: &mut GatewayConn, settings: &RelaySettings, force: bool) {
    let Some(first) = &conn.first_frame else {
        return;
    };
    let mut decoder = mmo_core::control::FrameDecoder::new();
    decoder.push(&first.bytes);
    let resume = match decoder.next_message::<mmo_core::control::ClientControl>() {
        Ok(Some(mmo_core::control::ClientControl::Resume {
            protocol_version,
            token,
            received_bytes,
        })) if protocol_version == mmo_core::PROTOCOL_VERSION
            && token.len() <= mmo_core::control::MAX_RESUME_TOKEN_LEN_BYTES =>
        {
            let frame_len = first.bytes.len() - decoder.buffered_len_bytes();
            Some((token, received_bytes, frame_len))
        }
        Ok(None) if !force => return,
        _ => None,
    };
    let Some(first) = conn.first_frame.take() else {
        return;
    };
    let mut bytes = first.bytes;
    match resume {
        Some((token, received_bytes, frame_len)) => {
            count("resume_asked");
            conn.resuming = true;
            conn.zone_subject = settings.resume_subject();
            conn.to_zone.push(StreamItem::Resume {
                token,
                received_bytes,
            });
            bytes.drain(..frame_len);
        }
        None => {
            conn.zone_subject = settings.zone_subject(first.home);
            conn.to_zone.push(StreamItem::Open {
                home_zone: first.home,
            });
        }
    }
    if !bytes.is_empty() {
        conn.restart.cursor.advance(&bytes);
        conn.to_zone.push(StreamItem::Bytes(bytes));
    }
}

/// Hands the zone's in-order stream items to the client's writer; at `Moved`, switches
/// the connection to the new zone process and returns the old one's subject with the final
/// acknowledgement of its stream (to send there).
fn deliver(
    conn: &mut GatewayConn,
    settings: &RelaySettings,
    now_us: u64,
    last_heard_us: &mut HashMap<String, u64>,
) -> Option<FinalAck> {
    let mut final_ack = None;
    while let Some(item) = conn.from_zone.pop() {
        if let Some(ack) = deliver_item(conn, item, settings, now_us, last_heard_us) {
            final_ack = Some(ack);
        }
    }
    final_ack
}

/// One in-order item of the zone's stream (see [`deliver`]).
fn deliver_item(
    conn: &mut GatewayConn,
    item: StreamItem,
    settings: &RelaySettings,
    now_us: u64,
    last_heard_us: &mut HashMap<String, u64>,
) -> Option<FinalAck> {
    match item {
        StreamItem::Bytes(bytes) => {
            if let Some(outbox) = &conn.outbox
                && outbox
                    .try_send(Queued::now(Transmit::Stream(bytes)))
                    .is_err()
            {
                // The client does not read its control stream fast enough; its writer
                // times out a stalled stream the same way (`bridge::write_transmits`).
                count("outbox_full");
                close_client(conn, DisconnectReason::Timeout);
            }
        }
        StreamItem::LoggedIn => {
            conn.link.set_logged_in();
            if let Some(since_us) = conn.restart.since_us.take() {
                let took_s = now_us.saturating_sub(since_us) as f64 / 1e6;
                metrics::histogram!(crate::metrics::REJOIN_SECONDS).record(took_s);
                count("rejoined");
                tracing::info!(took_s, "session restarted from its last save");
            }
        }
        StreamItem::Session(ticket) => conn.restart.ticket = Some(ticket),
        StreamItem::End { reason_code } => {
            let reason =
                DisconnectReason::try_from(reason_code).unwrap_or(DisconnectReason::ServerShutdown);
            close_client(conn, reason);
            conn.zone_ended = true;
        }
        StreamItem::Moved {
            zone_process,
            resume_seq,
        } => {
            let subject = settings.zone_process_subject(zone_process);
            count("moved");
            return Some(switch_process(
                conn,
                subject,
                resume_seq,
                now_us,
                last_heard_us,
            ));
        }
        // Delivered after the sender's `Moved`: the switch is done.
        StreamItem::TakenOver(_) => {}
        // Only a gateway opens.
        StreamItem::Open { .. } | StreamItem::Rejoin(_) | StreamItem::Resume { .. } => {
            count("wrong_direction");
        }
    }
    None
}

/// The zone process `conn` was being handed from fell silent, and the process it was being
/// handed to took the session (its item 0 `TakenOver` arrived): switches as the sender's
/// `Moved` would have (`RELAY_FORMAT.md` section 5), first delivering the sender's items
/// this gateway never received (from the tail the receiver carries). False (nothing
/// changed) without such a receiver, or when either end is over.
fn switch_to_taker(
    conn: &mut GatewayConn,
    settings: &RelaySettings,
    now_us: u64,
    last_heard_us: &mut HashMap<String, u64>,
) -> bool {
    if conn.client_gone || conn.zone_ended || conn.outbox.is_none() {
        return false;
    }
    let Some(next) = conn.next.as_mut() else {
        return false;
    };
    // Everything received in order was delivered (`deliver` runs first).
    let received = conn.from_zone.next_seq();
    if next
        .taken_over
        .as_ref()
        .is_some_and(|tail| received < tail.first_seq)
    {
        // The sender's tail was left out (too large): switching would lose control bytes
        // mid-stream; the client is closed instead.
        return false;
    }
    let Some(tail) = next.taken_over.take() else {
        return false;
    };
    let subject = next.subject.clone();
    // The sender is gone: no final acknowledgement for it.
    let _ = switch_process(conn, subject, tail.resume_seq, now_us, last_heard_us);
    for (seq, item) in (tail.first_seq..).zip(tail.items) {
        // Only what a session writes before its handoff; a `Moved` or `End` cannot be
        // among these items, and a nested `TakenOver` is ignored.
        let wanted = matches!(
            item,
            StreamItem::Bytes(_) | StreamItem::LoggedIn | StreamItem::Session(_)
        );
        if seq >= received && wanted {
            let _ = deliver_item(conn, item, settings, now_us, last_heard_us);
        }
    }
    true
}

/// Our last word to a zone process a session moved away from: the final acknowledgement
/// of its stream, sent to its subject.
struct FinalAck {
    /// The old process's subject.
    subject: String,
    /// What we received of its stream.
    ack: AckFields,
}

/// Switches `conn` to the zone process on `subject` under the next incarnation (a handoff,
/// `RELAY_FORMAT.md` section 5): both directions start again at item 0, ours with the items
/// numbered `resume_seq` and above that the old process did not take, theirs with what the
/// new process sent already. Returns our final acknowledgement for the old process.
fn switch_process(
    conn: &mut GatewayConn,
    subject: String,
    resume_seq: u64,
    now_us: u64,
    last_heard_us: &mut HashMap<String, u64>,
) -> FinalAck {
    let ack = AckFields {
        next_seq: conn.from_zone.next_seq(),
        credit_end: conn
            .from_zone
            .next_seq()
            .saturating_add(mmo_core::relay::reliable::WINDOW_ITEMS),
    };
    let old = std::mem::replace(&mut conn.zone_subject, subject.clone());
    conn.moved_from = Some((old.clone(), ack));
    conn.incarnation = conn.incarnation.wrapping_add(1);
    let resend = conn.to_zone.take_unacked_from(resume_seq);
    conn.to_zone = ReliableSender::new();
    for item in resend {
        conn.to_zone.push(item);
    }
    conn.from_zone = match conn.next.take() {
        Some(next) if next.subject == subject => next.from_zone,
        _ => ReliableReceiver::new(),
    };
    last_heard_us.entry(subject).or_insert(now_us);
    FinalAck { subject: old, ack }
}

/// Starts restarting `conn`'s session in the next process of its zone instance, when the
/// zone process that ran it fell silent (`RELAY_FORMAT.md` section 7): new streams two
/// incarnations on, opened by `Rejoin` on the instance's subject (retransmitted until
/// a process serves it); the client's datagrams wait for the new `LoggedIn`, its control
/// bytes go on at the next frame. False (nothing changed) when the session cannot be
/// restarted: no ticket yet, either end over, a rejoin already running, the client's
/// framing broken, or a handoff's receiver heard from (it may own the session: the client
/// is closed, and that process saves the session when it ends there, as before rejoins).
fn start_rejoin(conn: &mut GatewayConn, settings: &RelaySettings, now_us: u64) -> bool {
    let Some(ticket) = conn.restart.ticket.clone() else {
        return false;
    };
    if conn.client_gone
        || conn.zone_ended
        || conn.outbox.is_none()
        || conn.restart.since_us.is_some()
        || conn.restart.cursor.is_broken()
        || conn.next.is_some()
    {
        return false;
    }
    // Two on: items a handoff's receiver may still send under the next one are not mixed
    // with the restarted session's.
    conn.incarnation = conn.incarnation.wrapping_add(2);
    conn.zone_subject = settings.zone_subject(ticket.zone);
    conn.zone_answered = false;
    conn.moved_from = None;
    conn.to_zone = ReliableSender::new();
    conn.to_zone.push(StreamItem::Rejoin(ticket));
    conn.from_zone = ReliableReceiver::new();
    conn.restart.since_us = Some(now_us);
    conn.restart.finishing_frame = !conn.restart.cursor.at_boundary();
    true
}

/// Closes the client's QUIC connection with `reason` (the writer finishes the control
/// stream first), once.
fn close_client(conn: &mut GatewayConn, reason: DisconnectReason) {
    conn.link.set_close_reason(reason);
    conn.outbox = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RelaySettings {
        RelaySettings {
            nats_url: "nats://127.0.0.1:4222".to_owned(),
            world: "w".to_owned(),
            redis_url: None,
            nats_security: None,
            zones: None,
            take_free_zone: false,
            shard_cap: None,
            shard_merge_after: Duration::from_secs(60),
        }
    }

    /// A connection whose writer is `outbox`.
    fn conn(outbox: mpsc::Sender<Queued>) -> GatewayConn {
        GatewayConn {
            outbox: Some(outbox),
            control: mpsc::channel(1).1,
            link: Arc::new(Link::new(DisconnectReason::ClientQuit, false)),
            to_zone: ReliableSender::new(),
            from_zone: ReliableReceiver::new(),
            zone_subject: "mmo.w.zproc.000000000000000a".to_owned(),
            zone_answered: true,
            next: None,
            moved_from: None,
            incarnation: 0,
            client_gone: false,
            zone_ended: false,
            end_acked_at_us: None,
            restart: Restart::default(),
            first_frame: None,
            resuming: false,
        }
    }

    /// What the client's writer got: the control bytes, in order.
    fn written(outbox: &mut mpsc::Receiver<Queued>) -> Vec<Vec<u8>> {
        let mut bytes = Vec::new();
        while let Ok(queued) = outbox.try_recv() {
            if let Transmit::Stream(b) = queued.transmit {
                bytes.push(b);
            }
        }
        bytes
    }

    /// The sender (A) got items 0..3 to the gateway before it fell silent; the receiver's
    /// tail starts at A's item 1 and holds five items: the gateway delivers the two it
    /// never got (numbers 3 and 4: bytes and a ticket) once, then the receiver's own
    /// items, and sends the receiver its items from `resume_seq` on, renumbered from 0.
    #[test]
    fn a_takeover_delivers_only_the_senders_items_the_gateway_missed_then_the_receivers() {
        let settings = settings();
        let (outbox_tx, mut outbox) = mpsc::channel(64);
        let mut conn = conn(outbox_tx);
        let mut heard = HashMap::new();
        for seq in 0..3u8 {
            conn.from_zone
                .on_item(u64::from(seq), StreamItem::Bytes(vec![seq]))
                .unwrap();
        }
        assert!(deliver(&mut conn, &settings, 0, &mut heard).is_none());
        assert_eq!(written(&mut outbox), vec![vec![0], vec![1], vec![2]]);
        for client_item in 0..10u8 {
            conn.to_zone
                .push(StreamItem::Bytes(vec![100 + client_item]));
        }
        let ticket = SessionTicket {
            zone: 3,
            account: "alice".to_owned(),
            character_id: Some(7),
        };
        let tail = SenderTail {
            resume_seq: 7,
            first_seq: 1,
            items: vec![
                StreamItem::Bytes(vec![1]),
                StreamItem::Bytes(vec![2]),
                StreamItem::Bytes(vec![3]),
                StreamItem::Session(ticket.clone()),
                StreamItem::Bytes(vec![4]),
            ],
        };
        let receiver = "mmo.w.zproc.000000000000000b".to_owned();
        let mut next = NextZone {
            subject: receiver.clone(),
            from_zone: ReliableReceiver::new(),
            taken_over: Some(tail.clone()),
        };
        next.from_zone
            .on_item(0, StreamItem::TakenOver(tail))
            .unwrap();
        next.from_zone
            .on_item(1, StreamItem::Bytes(vec![9]))
            .unwrap();
        conn.next = Some(next);

        assert!(switch_to_taker(&mut conn, &settings, 5, &mut heard));
        assert!(deliver(&mut conn, &settings, 5, &mut heard).is_none());
        assert_eq!(
            written(&mut outbox),
            vec![vec![3], vec![4], vec![9]],
            "the sender's missed items once, then the receiver's"
        );
        assert_eq!(conn.restart.ticket, Some(ticket), "the tail's ticket");
        assert_eq!(conn.zone_subject, receiver);
        assert_eq!(conn.incarnation, 1);
        assert!(conn.next.is_none());
        let (first, resent) = conn.to_zone.unacked();
        assert_eq!(first, 0, "the receiver's stream starts at item 0");
        assert_eq!(
            resent,
            vec![
                StreamItem::Bytes(vec![107]),
                StreamItem::Bytes(vec![108]),
                StreamItem::Bytes(vec![109]),
            ],
            "the client's items from resume_seq on"
        );
        // No takeover twice, nor without a receiver that took the session.
        assert!(!switch_to_taker(&mut conn, &settings, 6, &mut heard));
    }

    /// A tail the sender left out (too large: `first_seq` past what the gateway got) is
    /// not switched to: the client would miss control bytes mid-stream.
    #[test]
    fn a_takeover_whose_tail_was_left_out_is_not_switched_to() {
        let settings = settings();
        let (outbox_tx, _outbox) = mpsc::channel(64);
        let mut conn = conn(outbox_tx);
        let mut heard = HashMap::new();
        conn.from_zone
            .on_item(0, StreamItem::Bytes(vec![0]))
            .unwrap();
        assert!(deliver(&mut conn, &settings, 0, &mut heard).is_none());
        conn.next = Some(NextZone {
            subject: "mmo.w.zproc.000000000000000b".to_owned(),
            from_zone: ReliableReceiver::new(),
            taken_over: Some(SenderTail {
                resume_seq: 0,
                first_seq: 5,
                items: Vec::new(),
            }),
        });
        assert!(!switch_to_taker(&mut conn, &settings, 5, &mut heard));
        assert_eq!(conn.incarnation, 0, "still on the sender's streams");
    }
}
