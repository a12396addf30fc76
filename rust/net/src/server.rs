//! The server: a quinn endpoint whose connections pass the [`crate::gateway`] and are bridged
//! to one [`Zone`].
//!
//! Tasks and channels:
//!
//! - The endpoint's UDP socket is bound by [`crate::udp::bind_udp`] with large buffers.
//! - The accept task decides each incoming attempt with the [`Gateway`] (Retry, per-address
//!   rate, connection cap) and spawns a connection task for those it accepts.
//! - A connection task finishes the handshake and waits for the client's bidirectional
//!   control stream (datagrams before it are dropped and counted as `unauthenticated`;
//!   without it the connection is closed with [`DisconnectReason::Timeout`] after
//!   [`GatewayConfig::control_stream_timeout`]). It then registers with the zone and
//!   forwards control-stream bytes (waiting for room, which pushes back on the client
//!   through QUIC flow control) and, once the zone accepted the login, datagrams (dropped
//!   when the zone's inbox is full: they are unreliable anyway) to the zone's bounded inbox.
//!   When the QUIC connection ends it tells the zone why.
//! - The zone runs on its own thread (a current-thread tokio runtime used only for its
//!   timer and channel waits). Between ticks it applies what arrives, and decides each login
//!   with the configured [`LoginAuthority`] (a refused token closes the connection with the
//!   authority's reason; a second login of an account closes the first with
//!   [`DisconnectReason::DuplicateLogin`]); at each tick it handles timeouts, runs
//!   [`Zone::run_tick`], and moves each connection's transmits to that connection's bounded
//!   outbox with `try_send`. The tick never awaits the network: a full outbox drops
//!   datagrams, and closes the connection when control bytes do not fit.
//! - A writer task per connection drains its outbox to the QUIC connection and closes it
//!   with the session's disconnect reason as the QUIC close code.
//!
//! Metrics (names in [`crate::metrics`]) are recorded where the information is: the gate
//! (handshakes, connections), the connection tasks and writers (dropped datagrams), and the
//! zone thread (ticks, players, logins, disconnects, rejections, protocol violations, and
//! bytes per client sampled about once a second from each session's counters).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmo_core::control::DisconnectReason;
use mmo_core::session::Transmit;
use mmo_core::session::server::{ConnectionStats, ServerEvent};
use mmo_core::zone::{ConnectionId, Zone, ZoneConfig};
use tokio::sync::{mpsc, oneshot};

use crate::NetError;
use crate::auth::LoginAuthority;
use crate::bridge::Link;
use crate::gateway::{Admission, CountGuard, Gateway, GatewayConfig, GatewayCounts};
use crate::metrics as names;
use crate::tls::{Fingerprint, ServerCert};

/// At most this many ticks are run back to back to catch up after a stall; the rest are
/// skipped.
const MAX_CATCH_UP_TICKS: u32 = 5;

/// Per-client byte rates are sampled this often.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Everything a server needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// UDP address to bind (`127.0.0.1:0` in tests).
    pub bind_addr: SocketAddr,
    /// The zone.
    pub zone: ZoneConfig,
    /// The zone's id: the `zone` label of its metrics.
    pub zone_id: u32,
    /// The certificate presented to clients.
    pub cert: ServerCert,
    /// Capacity of the zone's inbox (datagrams and stream chunks of all connections).
    pub inbox_capacity: usize,
    /// Capacity of each connection's outbox (transmits waiting for the writer).
    pub outbox_capacity: usize,
    /// Decides every login.
    pub authority: Arc<dyn LoginAuthority>,
    /// Connection cap, handshake rate, address validation, socket buffers.
    pub gateway: GatewayConfig,
}

impl ServerConfig {
    /// Defaults around an address, a zone, a certificate and a login authority.
    #[must_use]
    pub fn new(
        bind_addr: SocketAddr,
        zone: ZoneConfig,
        cert: ServerCert,
        authority: Arc<dyn LoginAuthority>,
    ) -> Self {
        ServerConfig {
            bind_addr,
            zone,
            zone_id: 0,
            cert,
            inbox_capacity: 8_192,
            outbox_capacity: 256,
            authority,
            gateway: GatewayConfig::default(),
        }
    }
}

type Inspect = Box<dyn FnOnce(&Zone, &[ConnectionId]) + Send>;

/// What network tasks tell the zone thread.
enum ZoneMsg {
    /// A connection finished its handshake and opened its control stream.
    Connect {
        outbox: mpsc::Sender<Transmit>,
        link: Arc<Link>,
        reply: oneshot::Sender<ConnectionId>,
    },
    Datagram(ConnectionId, Vec<u8>),
    Stream(ConnectionId, Vec<u8>),
    /// The QUIC connection is gone, for this reason (as the network saw it).
    Lost(ConnectionId, DisconnectReason),
    /// Run a closure against the zone (tests, admin).
    Inspect(Inspect),
    /// Close every connection, flush, and stop.
    Shutdown,
}

/// A running server; [`Server::shutdown`] stops it.
#[derive(Debug)]
pub struct Server {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    fingerprint: Fingerprint,
    inbox: mpsc::Sender<ZoneMsg>,
    zone_thread: Option<std::thread::JoinHandle<()>>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds the endpoint, starts the zone thread and the accept task. Must be called
    /// within a tokio runtime with I/O and time enabled.
    pub async fn start(config: ServerConfig) -> Result<Server, NetError> {
        if config.inbox_capacity == 0 || config.outbox_capacity == 0 {
            return Err(NetError::Config(
                "channel capacities must be positive".into(),
            ));
        }
        let gateway = Gateway::new(config.gateway.clone())?;
        let zone = Zone::new(config.zone.clone()).map_err(NetError::Config)?;
        let mut server_config =
            quinn::ServerConfig::with_crypto(crate::tls::quic_server_crypto(&config.cert)?);
        server_config.transport_config(crate::transport_config());
        let (socket, _, _) =
            crate::udp::bind_udp(config.bind_addr, config.gateway.udp_buffer_bytes)?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        let local_addr = endpoint.local_addr()?;
        let (inbox, inbox_rx) = mpsc::channel(config.inbox_capacity);
        let zone_thread = std::thread::Builder::new().name("mmo-zone".into()).spawn({
            let authority = config.authority.clone();
            let zone_label = config.zone_id.to_string();
            move || run_zone(zone, zone_label, authority, inbox_rx)
        })?;
        let accept_task = tokio::spawn(accept_loop(
            endpoint.clone(),
            gateway,
            inbox.clone(),
            config.outbox_capacity,
        ));
        tracing::info!(%local_addr, fingerprint = %config.cert.fingerprint().to_hex(), "server listening");
        Ok(Server {
            endpoint,
            local_addr,
            fingerprint: config.cert.fingerprint(),
            inbox,
            zone_thread: Some(zone_thread),
            accept_task,
        })
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

    /// Runs `f` on the zone thread between ticks, with the zone and the ids of its live
    /// connections, and returns its result (`None` when the zone has stopped).
    pub async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Zone, &[ConnectionId]) -> R + Send + 'static,
    ) -> Option<R> {
        let (reply, result) = oneshot::channel();
        let job: Inspect = Box::new(move |zone, ids| {
            let _ = reply.send(f(zone, ids));
        });
        self.inbox.send(ZoneMsg::Inspect(job)).await.ok()?;
        result.await.ok()
    }

    /// Stops accepting connections, closes every connection with
    /// [`DisconnectReason::ServerShutdown`] (the reason is delivered on each control
    /// stream and as the QUIC close code), waits up to `grace` for the connections to close,
    /// then closes the endpoint.
    pub async fn shutdown(mut self, grace: Duration) {
        self.endpoint.set_server_config(None);
        self.accept_task.abort();
        let _ = self.inbox.send(ZoneMsg::Shutdown).await;
        if let Some(thread) = self.zone_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
        let reason = DisconnectReason::ServerShutdown;
        self.endpoint
            .close(u32::from(reason.code()).into(), reason.as_str().as_bytes());
        tracing::info!(local_addr = %self.local_addr, "server stopped");
    }
}

impl Drop for Server {
    /// A server dropped without [`Server::shutdown`] still stops: no more connections are
    /// accepted and the zone thread is told to close everything and exit (without waiting).
    fn drop(&mut self) {
        self.accept_task.abort();
        if self.zone_thread.is_some() {
            self.endpoint.set_server_config(None);
            let _ = self.inbox.try_send(ZoneMsg::Shutdown);
        }
    }
}

fn count_handshake(outcome: &'static str) {
    metrics::counter!(names::HANDSHAKES_TOTAL, "outcome" => outcome).increment(1);
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    mut gateway: Gateway,
    inbox: mpsc::Sender<ZoneMsg>,
    outbox_capacity: usize,
) {
    let counts = Arc::new(GatewayCounts::default());
    let control_stream_timeout = gateway.config().control_stream_timeout;
    let start = Instant::now();
    while let Some(incoming) = endpoint.accept().await {
        let remote = incoming.remote_address();
        let retry_possible = !incoming.remote_address_validated() && incoming.may_retry();
        let now_us = start.elapsed().as_micros() as u64;
        let admission = gateway.admit(remote.ip(), retry_possible, now_us, counts.load());
        if let Some(outcome) = admission.outcome() {
            count_handshake(outcome);
        }
        match admission {
            Admission::Retry => {
                if let Err(e) = incoming.retry() {
                    // Unreachable: a Retry is only chosen when `may_retry()`.
                    tracing::debug!(%remote, error = %e, "retry refused");
                    e.into_incoming().refuse();
                }
            }
            Admission::RateLimited => {
                tracing::debug!(%remote, "handshake rate exceeded: ignored");
                incoming.ignore();
            }
            Admission::FullRefuse => {
                tracing::debug!(%remote, "server full: refused");
                incoming.refuse();
            }
            Admission::FullClose => {
                tracing::debug!(%remote, "server full: closing after the handshake");
                let guard = CountGuard::refusal(&counts);
                tokio::spawn(async move {
                    let _guard = guard;
                    if let Ok(connection) = incoming.await {
                        crate::bridge::close_with(
                            &connection,
                            crate::gateway::FULL_REASON,
                            crate::gateway::FULL_TEXT,
                        );
                    }
                });
            }
            Admission::Accept => {
                let live = CountGuard::live(&counts);
                let pending = CountGuard::pending(&counts);
                tokio::spawn(run_connection(
                    incoming,
                    inbox.clone(),
                    outbox_capacity,
                    control_stream_timeout,
                    (live, pending),
                ));
            }
        }
    }
}

/// Counts a connection that ended without reaching the zone's session.
fn count_disconnect(reason: DisconnectReason) {
    metrics::counter!(names::DISCONNECTS_TOTAL, "reason" => reason.as_str()).increment(1);
}

async fn run_connection(
    incoming: quinn::Incoming,
    inbox: mpsc::Sender<ZoneMsg>,
    outbox_capacity: usize,
    control_stream_timeout: Duration,
    (_live, pending): (CountGuard, CountGuard),
) {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            count_handshake("failed");
            tracing::debug!(%remote, error = %e, "handshake failed");
            return;
        }
    };
    drop(pending);
    count_handshake("accepted");
    let link = Arc::new(Link::new(DisconnectReason::ServerShutdown, true));

    // Until the control stream is open the client is not even waiting for a login:
    // datagrams are read (so quinn's buffer does not hold them) and dropped.
    let deadline = tokio::time::Instant::now() + control_stream_timeout;
    let streams = loop {
        tokio::select! {
            streams = connection.accept_bi() => break streams,
            datagram = connection.read_datagram() => match datagram {
                Ok(_) => link.drop_datagram("unauthenticated"),
                Err(e) => break Err(e),
            },
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(%remote, "no control stream: closing");
                count_disconnect(DisconnectReason::Timeout);
                crate::bridge::close_with(&connection, DisconnectReason::Timeout, "no control stream");
                return;
            }
        }
    };
    let (send, recv) = match streams {
        Ok(streams) => streams,
        Err(e) => {
            let (reason, message) = crate::bridge::reason_of(&e, DisconnectReason::ClientQuit);
            tracing::debug!(%remote, error = %message, "ended before its control stream");
            count_disconnect(reason);
            return;
        }
    };
    let (outbox, outbox_rx) = mpsc::channel(outbox_capacity);
    let (reply, id) = oneshot::channel();
    if inbox
        .send(ZoneMsg::Connect {
            outbox,
            link: link.clone(),
            reply,
        })
        .await
        .is_err()
    {
        return;
    }
    let Ok(id) = id.await else {
        return;
    };
    tracing::debug!(%remote, connection = id.0, "connected");
    tokio::spawn(crate::bridge::write_transmits(
        connection.clone(),
        send,
        outbox_rx,
        link.clone(),
    ));
    let reader = tokio::spawn(crate::bridge::read_stream(recv, inbox.clone(), move |b| {
        ZoneMsg::Stream(id, b)
    }));
    let error = loop {
        match connection.read_datagram().await {
            Ok(d) => {
                if !link.is_logged_in() {
                    link.drop_datagram("unauthenticated");
                } else if inbox.try_send(ZoneMsg::Datagram(id, d.to_vec())).is_err() {
                    link.drop_datagram("inbox_full");
                }
            }
            Err(e) => break e,
        }
    };
    let (reason, message) = crate::bridge::reason_of(&error, DisconnectReason::ClientQuit);
    // Control bytes already read reach the zone before the loss does.
    let _ = reader.await;
    let _ = inbox.send(ZoneMsg::Lost(id, reason)).await;
    tracing::debug!(%remote, connection = id.0, reason = reason.as_str(), %message, "connection ended");
}

/// One connection as the zone thread knows it.
struct Conn {
    outbox: mpsc::Sender<Transmit>,
    link: Arc<Link>,
    /// The session's byte counters at the last sample.
    sampled: ConnectionStats,
}

/// The zone thread's metric handles (registered once; recording is a no-op without a
/// recorder).
struct ZoneMetrics {
    zone_label: String,
    tick_duration: metrics::Histogram,
    tick_duration_max: metrics::Gauge,
    max_tick_s: f64,
    ticks_skipped: metrics::Counter,
    players: metrics::Gauge,
    bytes_in: metrics::Counter,
    bytes_out: metrics::Counter,
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
            players: metrics::gauge!(names::ZONE_PLAYERS, "zone" => zone),
            bytes_in: metrics::counter!(names::BYTES_IN_TOTAL),
            bytes_out: metrics::counter!(names::BYTES_OUT_TOTAL),
            client_bytes_in_per_s: metrics::histogram!(names::CLIENT_BYTES_IN_PER_SECOND),
            client_bytes_out_per_s: metrics::histogram!(names::CLIENT_BYTES_OUT_PER_SECOND),
            zone_label,
        }
    }
}

/// The zone thread's state.
struct ZoneLoop {
    zone: Zone,
    authority: Arc<dyn LoginAuthority>,
    conns: BTreeMap<ConnectionId, Conn>,
    /// The account of each logged-in connection, and the connection of each account
    /// (inverse maps; an entry is in both or in neither).
    accounts: BTreeMap<ConnectionId, String>,
    connections_by_account: BTreeMap<String, ConnectionId>,
    start: Instant,
    last_sample: Instant,
    metrics: ZoneMetrics,
}

fn run_zone(
    zone: Zone,
    zone_label: String,
    authority: Arc<dyn LoginAuthority>,
    inbox: mpsc::Receiver<ZoneMsg>,
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
    let now = Instant::now();
    let mut zone_loop = ZoneLoop {
        zone,
        authority,
        conns: BTreeMap::new(),
        accounts: BTreeMap::new(),
        connections_by_account: BTreeMap::new(),
        start: now,
        last_sample: now,
        metrics: ZoneMetrics::new(zone_label),
    };
    zone_loop.metrics.players.set(0.0);
    runtime.block_on(zone_loop.run(inbox));
}

impl ZoneLoop {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    async fn run(&mut self, mut inbox: mpsc::Receiver<ZoneMsg>) {
        let tick = Duration::from_micros(self.zone.config().tick_rate.tick_us());
        let mut next_tick = self.start + tick;
        loop {
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(ZoneMsg::Shutdown) | None => break,
                    Some(msg) => self.handle(msg),
                },
                () = tokio::time::sleep_until(next_tick.into()) => {
                    self.tick();
                    next_tick += tick;
                    let now = Instant::now();
                    if now > next_tick + tick * MAX_CATCH_UP_TICKS {
                        let behind = now.saturating_duration_since(next_tick);
                        let skipped = (behind.as_micros() / tick.as_micros().max(1)) as u64;
                        tracing::warn!(zone = %self.metrics.zone_label, skipped, "zone tick overran; skipping ticks");
                        self.metrics.ticks_skipped.increment(skipped);
                        next_tick = now + tick;
                    }
                }
            }
        }
        let ids: Vec<ConnectionId> = self.conns.keys().copied().collect();
        for id in ids {
            self.zone
                .close(id, DisconnectReason::ServerShutdown, "server shutting down");
        }
        self.handle_events();
        // Dropping the outboxes lets each writer finish its stream and close.
        self.conns.clear();
        tracing::debug!(zone = %self.metrics.zone_label, "zone stopped");
    }

    fn handle(&mut self, msg: ZoneMsg) {
        let now_us = self.now_us();
        match msg {
            ZoneMsg::Connect {
                outbox,
                link,
                reply,
            } => {
                let id = self.zone.connect(now_us);
                if reply.send(id).is_ok() {
                    self.conns.insert(
                        id,
                        Conn {
                            outbox,
                            link,
                            sampled: ConnectionStats::default(),
                        },
                    );
                } else {
                    self.zone.remove(id);
                }
            }
            ZoneMsg::Datagram(id, d) => self.zone.handle_datagram(id, now_us, &d),
            ZoneMsg::Stream(id, s) => self.zone.handle_stream(id, now_us, &s),
            ZoneMsg::Lost(id, reason) => {
                // A session still open lost its transport: that is its disconnect. (One
                // the zone closed was retired already and is not counted twice.)
                if self.zone.connection(id).is_some_and(|c| !c.is_closed()) {
                    count_disconnect(reason);
                }
                self.retire(id);
            }
            ZoneMsg::Inspect(f) => {
                let ids: Vec<ConnectionId> = self.conns.keys().copied().collect();
                f(&self.zone, &ids);
            }
            ZoneMsg::Shutdown => {}
        }
        self.handle_events();
    }

    fn tick(&mut self) {
        let started = Instant::now();
        let now_us = self.now_us();
        self.zone.handle_timeouts(now_us);
        self.handle_events();
        self.zone.run_tick();
        let ids: Vec<ConnectionId> = self.conns.keys().copied().collect();
        for id in ids {
            self.flush(id);
        }
        // A flush may have closed a slow connection.
        self.handle_events();
        let tick_s = started.elapsed().as_secs_f64();
        self.metrics.tick_duration.record(tick_s);
        if tick_s > self.metrics.max_tick_s {
            self.metrics.max_tick_s = tick_s;
            self.metrics.tick_duration_max.set(tick_s);
        }
        if self.last_sample.elapsed() >= SAMPLE_INTERVAL {
            self.sample_bytes();
        }
    }

    /// Adds each connection's bytes since the last sample to the totals and records its
    /// rates.
    fn sample_bytes(&mut self) {
        let now = Instant::now();
        let elapsed_s = now.duration_since(self.last_sample).as_secs_f64().max(1e-3);
        self.last_sample = now;
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
        let bytes_in = stats.bytes_in.saturating_sub(conn.sampled.bytes_in);
        let bytes_out = stats.bytes_out.saturating_sub(conn.sampled.bytes_out);
        conn.sampled = stats;
        self.metrics.bytes_in.increment(bytes_in);
        self.metrics.bytes_out.increment(bytes_out);
        Some((bytes_in, bytes_out))
    }

    /// Forgets a connection: its last bytes go to the totals, its session and character
    /// leave the zone, its outbox is dropped (which ends the writer, which closes the QUIC
    /// connection with the reason on its link).
    fn retire(&mut self, id: ConnectionId) {
        let _ = self.take_byte_delta(id);
        self.zone.remove(id);
        self.conns.remove(&id);
        if let Some(account) = self.accounts.remove(&id) {
            self.connections_by_account.remove(&account);
        }
        self.metrics.players.set(self.accounts.len() as f64);
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
                }
                ServerEvent::Chat { .. } => {}
            }
        }
    }

    /// Asks the authority about `token`; accepts the login, or closes the connection with
    /// the refusal's reason. An account already logged in elsewhere is closed there first.
    fn decide_login(&mut self, id: ConnectionId, token: &str) {
        match self.authority.verify(token, crate::auth::unix_now_s()) {
            Ok(grant) => {
                if let Some(previous) = self.connections_by_account.remove(&grant.account) {
                    self.accounts.remove(&previous);
                    tracing::info!(account = %grant.account, connection = previous.0, "logged in again: closing the older connection");
                    self.zone.close(
                        previous,
                        DisconnectReason::DuplicateLogin,
                        "logged in from another connection",
                    );
                    self.flush(previous);
                }
                if self.zone.accept_login(id).is_some() {
                    metrics::counter!(names::LOGINS_TOTAL, "outcome" => "accepted").increment(1);
                    tracing::info!(account = %grant.account, connection = id.0, "logged in");
                    if let Some(conn) = self.conns.get(&id) {
                        // Before the welcome is flushed, so the client's first input is
                        // let through.
                        conn.link.set_logged_in();
                    }
                    self.connections_by_account
                        .insert(grant.account.clone(), id);
                    self.accounts.insert(id, grant.account);
                    self.metrics.players.set(self.accounts.len() as f64);
                }
            }
            Err(refusal) => {
                metrics::counter!(names::LOGINS_TOTAL, "outcome" => refusal.reason.as_str())
                    .increment(1);
                tracing::info!(connection = id.0, reason = refusal.reason.as_str(), message = %refusal.message, "login refused");
                self.zone.close(id, refusal.reason, &refusal.message);
            }
        }
        self.flush(id);
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
            match conn.outbox.try_send(t) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(Transmit::Datagram(_))) => {
                    conn.link.drop_datagram("outbox_full");
                }
                Err(mpsc::error::TrySendError::Full(Transmit::Stream(_))) => stalled = true,
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
        }
    }
}
