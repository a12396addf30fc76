//! The server: a quinn endpoint whose connections are bridged to one [`Zone`].
//!
//! Tasks and channels:
//!
//! - The accept task takes each incoming connection and spawns a connection task.
//! - A connection task finishes the handshake, accepts the client's bidirectional control
//!   stream, registers with the zone, then forwards datagrams (dropped when the zone's inbox
//!   is full: they are unreliable anyway) and control-stream bytes (waiting for room, which
//!   pushes back on the client through QUIC flow control) to the zone's bounded inbox.
//! - The zone runs on its own thread (a current-thread tokio runtime used only for its
//!   timer and channel waits). Between ticks it applies what arrives, and decides each login
//!   with the configured [`LoginAuthority`] (a refused token closes the connection with the
//!   authority's reason; a second login of an account closes the first with
//!   [`DisconnectReason::DuplicateLogin`]); at each tick it handles timeouts, runs [`Zone::run_tick`], and moves each connection's transmits to that connection's
//!   bounded outbox with `try_send`. The tick never awaits the network: a full outbox drops
//!   datagrams, and closes the connection when control bytes do not fit.
//! - A writer task per connection drains its outbox to the QUIC connection.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmo_core::control::DisconnectReason;
use mmo_core::session::Transmit;
use mmo_core::session::server::ServerEvent;
use mmo_core::zone::{ConnectionId, Zone, ZoneConfig};
use tokio::sync::{mpsc, oneshot};

use crate::NetError;
use crate::auth::LoginAuthority;
use crate::tls::{Fingerprint, ServerCert};

/// How long a client has, after the QUIC handshake, to open its control stream.
const CONTROL_STREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many ticks are run back to back to catch up after a stall; the rest are
/// skipped.
const MAX_CATCH_UP_TICKS: u32 = 5;

/// Everything a server needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// UDP address to bind (`127.0.0.1:0` in tests).
    pub bind_addr: SocketAddr,
    /// The zone.
    pub zone: ZoneConfig,
    /// The certificate presented to clients.
    pub cert: ServerCert,
    /// Capacity of the zone's inbox (datagrams and stream chunks of all connections).
    pub inbox_capacity: usize,
    /// Capacity of each connection's outbox (transmits waiting for the writer).
    pub outbox_capacity: usize,
    /// Decides every login.
    pub authority: Arc<dyn LoginAuthority>,
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
            cert,
            inbox_capacity: 8_192,
            outbox_capacity: 256,
            authority,
        }
    }
}

type Inspect = Box<dyn FnOnce(&Zone, &[ConnectionId]) + Send>;

/// What network tasks tell the zone thread.
enum ZoneMsg {
    /// A connection finished its handshake and opened its control stream.
    Connect {
        outbox: mpsc::Sender<Transmit>,
        reply: oneshot::Sender<ConnectionId>,
    },
    Datagram(ConnectionId, Vec<u8>),
    Stream(ConnectionId, Vec<u8>),
    /// The QUIC connection is gone.
    Lost(ConnectionId),
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
        let zone = Zone::new(config.zone.clone()).map_err(NetError::Config)?;
        let mut server_config =
            quinn::ServerConfig::with_crypto(crate::tls::quic_server_crypto(&config.cert)?);
        server_config.transport_config(crate::transport_config());
        let endpoint = quinn::Endpoint::server(server_config, config.bind_addr)?;
        let local_addr = endpoint.local_addr()?;
        let (inbox, inbox_rx) = mpsc::channel(config.inbox_capacity);
        let zone_thread = std::thread::Builder::new().name("mmo-zone".into()).spawn({
            let authority = config.authority.clone();
            move || run_zone(zone, authority, inbox_rx)
        })?;
        let accept_task = tokio::spawn(accept_loop(
            endpoint.clone(),
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
    /// stream), waits up to `grace` for the connections to close, then closes the endpoint.
    pub async fn shutdown(mut self, grace: Duration) {
        self.endpoint.set_server_config(None);
        self.accept_task.abort();
        let _ = self.inbox.send(ZoneMsg::Shutdown).await;
        if let Some(thread) = self.zone_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
        self.endpoint
            .close(crate::bridge::CLOSE_OK.into(), b"shutdown");
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

async fn accept_loop(
    endpoint: quinn::Endpoint,
    inbox: mpsc::Sender<ZoneMsg>,
    outbox_capacity: usize,
) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(run_connection(incoming, inbox.clone(), outbox_capacity));
    }
}

async fn run_connection(
    incoming: quinn::Incoming,
    inbox: mpsc::Sender<ZoneMsg>,
    outbox_capacity: usize,
) {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "handshake failed");
            return;
        }
    };
    let (send, recv) =
        match tokio::time::timeout(CONTROL_STREAM_TIMEOUT, connection.accept_bi()).await {
            Ok(Ok(streams)) => streams,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "no control stream");
                return;
            }
            Err(_) => {
                connection.close(1u32.into(), b"no control stream");
                return;
            }
        };
    let (outbox, outbox_rx) = mpsc::channel(outbox_capacity);
    let (reply, id) = oneshot::channel();
    if inbox
        .send(ZoneMsg::Connect { outbox, reply })
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
    ));
    let reader = tokio::spawn(crate::bridge::read_stream(recv, inbox.clone(), move |b| {
        ZoneMsg::Stream(id, b)
    }));
    while let Ok(d) = connection.read_datagram().await {
        if inbox.try_send(ZoneMsg::Datagram(id, d.to_vec())).is_err() {
            tracing::debug!(connection = id.0, "zone inbox full: datagram dropped");
        }
    }
    // Control bytes already read reach the zone before the loss does.
    let _ = reader.await;
    let _ = inbox.send(ZoneMsg::Lost(id)).await;
    tracing::debug!(%remote, connection = id.0, "connection ended");
}

/// The zone thread's state.
struct ZoneLoop {
    zone: Zone,
    authority: Arc<dyn LoginAuthority>,
    outboxes: BTreeMap<ConnectionId, mpsc::Sender<Transmit>>,
    /// The account of each logged-in connection, and the connection of each account
    /// (inverse maps; an entry is in both or in neither).
    accounts: BTreeMap<ConnectionId, String>,
    connections_by_account: BTreeMap<String, ConnectionId>,
    start: Instant,
    datagrams_dropped: u64,
}

fn run_zone(zone: Zone, authority: Arc<dyn LoginAuthority>, inbox: mpsc::Receiver<ZoneMsg>) {
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
    let mut zone_loop = ZoneLoop {
        zone,
        authority,
        outboxes: BTreeMap::new(),
        accounts: BTreeMap::new(),
        connections_by_account: BTreeMap::new(),
        start: Instant::now(),
        datagrams_dropped: 0,
    };
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
                        tracing::warn!("zone tick overran; skipping ticks");
                        next_tick = now + tick;
                    }
                }
            }
        }
        let ids: Vec<ConnectionId> = self.outboxes.keys().copied().collect();
        for id in ids {
            self.zone
                .close(id, DisconnectReason::ServerShutdown, "server shutting down");
        }
        self.handle_events();
        // Dropping the outboxes lets each writer finish its stream and close.
        self.outboxes.clear();
        tracing::debug!(datagrams_dropped = self.datagrams_dropped, "zone stopped");
    }

    fn handle(&mut self, msg: ZoneMsg) {
        let now_us = self.now_us();
        match msg {
            ZoneMsg::Connect { outbox, reply } => {
                let id = self.zone.connect(now_us);
                if reply.send(id).is_ok() {
                    self.outboxes.insert(id, outbox);
                } else {
                    self.zone.remove(id);
                }
            }
            ZoneMsg::Datagram(id, d) => self.zone.handle_datagram(id, now_us, &d),
            ZoneMsg::Stream(id, s) => self.zone.handle_stream(id, now_us, &s),
            ZoneMsg::Lost(id) => {
                self.zone.remove(id);
                self.outboxes.remove(&id);
                if let Some(account) = self.accounts.remove(&id) {
                    self.connections_by_account.remove(&account);
                }
            }
            ZoneMsg::Inspect(f) => {
                let ids: Vec<ConnectionId> = self.outboxes.keys().copied().collect();
                f(&self.zone, &ids);
            }
            ZoneMsg::Shutdown => {}
        }
        self.handle_events();
    }

    fn tick(&mut self) {
        let now_us = self.now_us();
        self.zone.handle_timeouts(now_us);
        self.handle_events();
        self.zone.run_tick();
        let ids: Vec<ConnectionId> = self.outboxes.keys().copied().collect();
        for id in ids {
            self.flush(id);
        }
        // A flush may have closed a slow connection.
        self.handle_events();
    }

    /// Answers logins (all accepted for now) and retires closed connections after
    /// flushing their last frames.
    fn handle_events(&mut self) {
        let events: Vec<(ConnectionId, ServerEvent)> = self.zone.drain_events().collect();
        for (id, event) in events {
            match event {
                ServerEvent::LoginRequested { token } => self.decide_login(id, &token),
                ServerEvent::Closed { reason } => {
                    tracing::debug!(connection = id.0, reason = reason.as_str(), "closed");
                    if let Some(account) = self.accounts.remove(&id) {
                        self.connections_by_account.remove(&account);
                    }
                    self.flush(id);
                    self.zone.remove(id);
                    // Dropping the outbox ends the writer, which closes the connection.
                    self.outboxes.remove(&id);
                }
                ServerEvent::Chat { .. } | ServerEvent::InputRejected(_) => {}
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
                    metrics::counter!(crate::metrics::LOGINS_TOTAL, "outcome" => "accepted")
                        .increment(1);
                    tracing::info!(account = %grant.account, connection = id.0, "logged in");
                    self.connections_by_account
                        .insert(grant.account.clone(), id);
                    self.accounts.insert(id, grant.account);
                }
            }
            Err(refusal) => {
                metrics::counter!(crate::metrics::LOGINS_TOTAL, "outcome" => refusal.reason.as_str())
                    .increment(1);
                tracing::info!(connection = id.0, reason = refusal.reason.as_str(), message = %refusal.message, "login refused");
                self.zone.close(id, refusal.reason, &refusal.message);
            }
        }
        self.flush(id);
    }

    /// Moves a connection's transmits to its outbox without waiting.
    fn flush(&mut self, id: ConnectionId) {
        let Some(outbox) = self.outboxes.get(&id) else {
            // Not registered (or already retired): discard.
            while self.zone.poll_transmit(id).is_some() {}
            return;
        };
        let mut stalled = false;
        while let Some(t) = self.zone.poll_transmit(id) {
            match outbox.try_send(t) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(Transmit::Datagram(_))) => {
                    self.datagrams_dropped += 1;
                }
                Err(mpsc::error::TrySendError::Full(Transmit::Stream(_))) => stalled = true,
                // The writer is gone; `Lost` follows.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        if stalled {
            tracing::warn!(connection = id.0, "control stream backlog: closing");
            self.zone
                .close(id, DisconnectReason::Kicked, "control stream backlog");
            // Its events are handled by the caller's next `handle_events`; the disconnect
            // frame may not fit either, and the connection is closed regardless.
            while self.zone.poll_transmit(id).is_some() {}
            self.outboxes.remove(&id);
        }
    }
}
