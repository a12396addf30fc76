//! The server: a quinn endpoint whose connections pass the [`crate::gateway`] and are bridged
//! to the zones of one world, each simulated on its own thread (the `zone_thread` module).
//!
//! Without a [`ServerConfig::layout`] one zone simulates the whole world. With one, each zone
//! of the layout runs on its own thread; a new connection goes to the zone that owns the
//! spawn position, and a player walking across a border is handed to the neighbour zone on
//! the same connection (the connection's route is switched; see the `zone_thread` module).
//!
//! Tasks and channels:
//!
//! - The endpoint's UDP socket is bound by [`crate::udp::bind_udp`] with large buffers.
//! - The accept task decides each incoming attempt with the [`Gateway`] (Retry, per-address
//!   rate, connection cap) and spawns a connection task for those it accepts.
//! - A connection task finishes the handshake and waits for the client's bidirectional
//!   control stream (datagrams before it are dropped and counted as `unauthenticated`;
//!   without it the connection is closed with [`DisconnectReason::Timeout`] after
//!   [`GatewayConfig::control_stream_timeout`]). It then registers with its home zone and
//!   forwards control-stream bytes into the connection's own chunk channel (waiting for
//!   room, which pushes back on the client through QUIC flow control) and, once the zone
//!   accepted the login, datagrams (dropped when the zone's inbox is full: they are
//!   unreliable anyway) to the bounded inbox of the zone the connection is routed to.
//!   When the QUIC connection ends it tells the zone why.
//! - Each zone runs on its own thread (the `zone_thread` module): it decides logins with the
//!   configured [`LoginAuthority`] (a refused token closes the connection with the
//!   authority's reason; a second login of an account closes the first with
//!   [`DisconnectReason::DuplicateLogin`]), ticks, hands players over, and moves each
//!   connection's transmits to that connection's bounded outbox with `try_send`. The tick
//!   never awaits the network: a full outbox drops datagrams, and closes the connection
//!   when control bytes do not fit.
//! - A writer task per connection drains its outbox to the QUIC connection and closes it
//!   with the session's disconnect reason as the QUIC close code.
//!
//! Metrics (names in [`crate::metrics`]) are recorded where the information is: the gate
//! (handshakes, connections), the connection tasks and writers (dropped datagrams), and the
//! zone thread (ticks, players, logins, disconnects, rejections, protocol violations, and
//! bytes per client sampled about once a second from each session's counters).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmo_core::control::DisconnectReason;
use mmo_core::world::{WorldLayout, ZoneId};
use mmo_core::zone::{ConnectionId, Zone, ZoneConfig};
use tokio::sync::{mpsc, oneshot};

use crate::NetError;
use crate::auth::LoginAuthority;
use crate::bridge::Link;
use crate::chat::ChatHub;
use crate::gateway::{Admission, CountGuard, Gateway, GatewayConfig, GatewayCounts};
use crate::metrics as names;
use crate::persist::CharacterStore;
use crate::tls::{Fingerprint, ServerCert};
use crate::token_bucket::TokenBucket;
use crate::zone_set::ZoneSet;
use crate::zone_thread::{ZoneMsg, count_disconnect};

/// Capacity of each connection's control chunk channel (chunks of up to
/// `STREAM_READ_BYTES`); a full channel stops reading the stream, which pushes back on the
/// client through QUIC flow control.
const CONTROL_CHUNKS: usize = 16;

/// Everything a server needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// UDP address to bind (`127.0.0.1:0` in tests).
    pub bind_addr: SocketAddr,
    /// The zone settings (every zone of the world uses the same; their placement is set per
    /// zone when `layout` is given).
    pub zone: ZoneConfig,
    /// How the world is cut into zones, one thread each; `None` runs one zone for the whole
    /// world. The layout's world must lie within the movement bounds.
    pub layout: Option<WorldLayout>,
    /// The certificate presented to clients.
    pub cert: ServerCert,
    /// Capacity of each zone's inbox (datagrams and wake-ups of all its connections).
    pub inbox_capacity: usize,
    /// Capacity of each connection's outbox (transmits waiting for the writer).
    pub outbox_capacity: usize,
    /// Decides every login.
    pub authority: Arc<dyn LoginAuthority>,
    /// Connection cap, handshake rate, address validation, socket buffers.
    pub gateway: GatewayConfig,
    /// Loads and saves characters; `None`: new characters from the zone defaults, never
    /// saved ([`crate::persist`]).
    pub store: Option<Arc<dyn CharacterStore>>,
    /// How often each zone offers its changed characters to the store.
    pub save_interval: std::time::Duration,
    /// Chat limits and say radius.
    pub chat: mmo_core::chat::ChatConfig,
    /// Carries chat to other server processes; `None`: in-process only
    /// ([`crate::chat::InProcessBridge`]).
    pub chat_bridge: Option<Arc<dyn crate::chat::ChatBridge>>,
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
            layout: None,
            cert,
            inbox_capacity: 8_192,
            outbox_capacity: 256,
            authority,
            gateway: GatewayConfig::default(),
            store: None,
            save_interval: std::time::Duration::from_secs(30),
            chat: mmo_core::chat::ChatConfig::default(),
            chat_bridge: None,
        }
    }
}

/// A running server; [`Server::shutdown`] stops it.
#[derive(Debug)]
pub struct Server {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    fingerprint: Fingerprint,
    zones: ZoneSet,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds the endpoint, starts the zone thread and the accept task. Must be called
    /// within a tokio runtime with I/O and time enabled.
    pub async fn start(config: ServerConfig) -> Result<Server, NetError> {
        // Checks the settings (channel capacities, save interval) before anything binds.
        crate::zone_set::check_config(&config)?;
        let gateway = Gateway::new(config.gateway.clone())?;
        let home = home_zone(&config);
        let (endpoint, local_addr) = bind_endpoint(&config)?;
        let zones = ZoneSet::start(&config, None, None)?;
        let accept_task = tokio::spawn(accept_loop(
            endpoint.clone(),
            gateway,
            Upstream::Local {
                inboxes: zones.inboxes.clone(),
                home,
            },
            config.outbox_capacity,
            zones.start,
            Arc::default(),
        ));
        tracing::info!(%local_addr, zones = zones.inboxes.len(), fingerprint = %config.cert.fingerprint().to_hex(), "server listening");
        Ok(Server {
            endpoint,
            local_addr,
            fingerprint: config.cert.fingerprint(),
            zones,
            accept_task,
        })
    }

    /// The chat hub (operator mutes, who is online).
    #[must_use]
    pub fn chat(&self) -> &ChatHub {
        &self.zones.chat
    }

    /// How many zones (threads) simulate the world.
    #[must_use]
    pub fn zone_count(&self) -> usize {
        self.zones.inboxes.len()
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

    /// Runs `f` on zone 0's thread between ticks (see [`Server::inspect_zone`]).
    pub async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Zone, &[ConnectionId]) -> R + Send + 'static,
    ) -> Option<R> {
        self.inspect_zone(ZoneId(0), f).await
    }

    /// Runs `f` on `zone`'s thread between ticks, with the zone and the ids of its live
    /// connections, and returns its result (`None` when there is no such zone or it has
    /// stopped).
    pub async fn inspect_zone<R: Send + 'static>(
        &self,
        zone: ZoneId,
        f: impl FnOnce(&Zone, &[ConnectionId]) -> R + Send + 'static,
    ) -> Option<R> {
        self.zones.inspect_zone(zone, f).await
    }

    /// Stops accepting connections, closes every connection with
    /// [`DisconnectReason::ServerShutdown`] (the reason is delivered on each control
    /// stream and as the QUIC close code), waits up to `grace` for the connections to close,
    /// then closes the endpoint.
    pub async fn shutdown(mut self, grace: Duration) {
        self.endpoint.set_server_config(None);
        self.accept_task.abort();
        self.zones.shutdown().await;
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
        let reason = DisconnectReason::ServerShutdown;
        self.endpoint
            .close(u32::from(reason.code()).into(), reason.as_str().as_bytes());
        tracing::info!(local_addr = %self.local_addr, "server stopped");
    }
}

impl Drop for Server {
    /// A server dropped without [`Server::shutdown`] still stops: no more connections are
    /// accepted and the zone threads are told to close everything and exit (without
    /// waiting).
    fn drop(&mut self) {
        self.accept_task.abort();
        if self.zones.is_running() {
            self.endpoint.set_server_config(None);
            self.zones.stop_now();
        }
    }
}

/// The QUIC endpoint for `config` (its address, certificate and UDP buffers) and the
/// address it bound.
pub(crate) fn bind_endpoint(
    config: &ServerConfig,
) -> Result<(quinn::Endpoint, SocketAddr), NetError> {
    let mut server_config =
        quinn::ServerConfig::with_crypto(crate::tls::quic_server_crypto(&config.cert)?);
    server_config.transport_config(crate::transport_config());
    let (socket, _, _) = crate::udp::bind_udp(config.bind_addr, config.gateway.udp_buffer_bytes)?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server_config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )?;
    let local_addr = endpoint.local_addr()?;
    Ok((endpoint, local_addr))
}

/// The zone a new connection starts in: the one that owns the spawn position (zone 0 without
/// a layout).
pub(crate) fn home_zone(config: &ServerConfig) -> usize {
    usize::from(match config.layout {
        Some(layout) => layout.zone_at(config.zone.spawn_position_m).0,
        None => 0,
    })
}

fn count_handshake(outcome: &'static str) {
    metrics::counter!(names::HANDSHAKES_TOTAL, "outcome" => outcome).increment(1);
}

/// Where a connection's session runs.
#[derive(Clone)]
pub(crate) enum Upstream {
    /// On a zone thread of this process: connections start in zone `home`.
    Local {
        /// Inbox of each zone thread, indexed by zone id.
        inboxes: Arc<[mpsc::Sender<ZoneMsg>]>,
        /// The zone new connections start in.
        home: usize,
    },
    /// In a zone process, through this gateway's relay (`crate::relay`).
    Relay(crate::relay::RelayHandle),
}

pub(crate) async fn accept_loop(
    endpoint: quinn::Endpoint,
    mut gateway: Gateway,
    upstream: Upstream,
    outbox_capacity: usize,
    zone_clock: Instant,
    counts: Arc<GatewayCounts>,
) {
    let control_stream_timeout = gateway.config().control_stream_timeout;
    let max_datagrams_per_s = gateway.config().max_datagrams_per_s;
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
                    upstream.clone(),
                    ConnectionSettings {
                        outbox_capacity,
                        control_stream_timeout,
                        max_datagrams_per_s,
                        zone_clock,
                    },
                    (live, pending),
                ));
            }
        }
    }
}

/// Per-connection settings handed from the accept loop to each connection task.
#[derive(Clone, Copy)]
struct ConnectionSettings {
    outbox_capacity: usize,
    control_stream_timeout: Duration,
    max_datagrams_per_s: u32,
    /// The zones' clock ([`crate::zone_thread::Shared::start`]): datagrams are stamped
    /// with it on arrival.
    zone_clock: Instant,
}

async fn run_connection(
    incoming: quinn::Incoming,
    upstream: Upstream,
    settings: ConnectionSettings,
    (_live, pending): (CountGuard, CountGuard),
) {
    let ConnectionSettings {
        outbox_capacity,
        control_stream_timeout,
        max_datagrams_per_s,
        zone_clock,
    } = settings;
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
    let opened = OpenedConnection {
        connection,
        send,
        recv,
        link,
        outbox_capacity,
        datagram_rate: TokenBucket::new(max_datagrams_per_s, max_datagrams_per_s, 0),
    };
    match upstream {
        Upstream::Local { inboxes, home } => serve_local(opened, inboxes, home, zone_clock).await,
        Upstream::Relay(relay) => crate::relay::serve_relayed(opened, relay).await,
    }
}

/// A connection past its handshake with its control stream open, ready to be served.
pub(crate) struct OpenedConnection {
    pub(crate) connection: quinn::Connection,
    pub(crate) send: quinn::SendStream,
    pub(crate) recv: quinn::RecvStream,
    pub(crate) link: Arc<Link>,
    pub(crate) outbox_capacity: usize,
    /// The client's datagram rate limit (tokens per second of the connection's clock).
    pub(crate) datagram_rate: TokenBucket,
}

/// Capacity of each connection's control chunk channel (see [`CONTROL_CHUNKS`]).
pub(crate) const fn control_chunks() -> usize {
    CONTROL_CHUNKS
}

/// Serves `opened` on this process's zone threads.
async fn serve_local(
    opened: OpenedConnection,
    inboxes: Arc<[mpsc::Sender<ZoneMsg>]>,
    home: usize,
    zone_clock: Instant,
) {
    let OpenedConnection {
        connection,
        send,
        recv,
        link,
        outbox_capacity,
        mut datagram_rate,
    } = opened;
    let remote = connection.remote_address();
    link.set_zone(home as u16);
    let (outbox, outbox_rx) = mpsc::channel(outbox_capacity);
    let (control_tx, control) = mpsc::channel(CONTROL_CHUNKS);
    let (reply, id) = oneshot::channel();
    let Some(home_inbox) = inboxes.get(home) else {
        return;
    };
    if home_inbox
        .send(ZoneMsg::Connect {
            outbox,
            control,
            link: link.clone(),
            reply,
            session: None,
            rejoin: None,
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
    // Control chunks go into the connection's own channel; after each one the zone the
    // connection is routed to is woken. A lost wake-up (full inbox) only delays the chunk
    // to the next tick, which drains every channel.
    let reader = tokio::spawn({
        let (inboxes, link) = (inboxes.clone(), link.clone());
        crate::bridge::read_stream(
            recv,
            control_tx,
            |chunk| chunk,
            move || {
                if let Some(inbox) = routed(&inboxes, &link) {
                    let _ = inbox.try_send(ZoneMsg::Wake(id));
                }
            },
        )
    });
    let clock = Instant::now();
    let error = loop {
        match connection.read_datagram().await {
            Ok(d) => {
                if !link.is_logged_in() {
                    link.drop_datagram("unauthenticated");
                } else if !datagram_rate.take(clock.elapsed().as_micros() as u64) {
                    link.drop_datagram("rate_limited");
                } else if routed(&inboxes, &link).is_none_or(|inbox| {
                    // Stamped on arrival: a zone thread that falls behind must not make
                    // a client's inputs look faster than real time.
                    let received_us = zone_clock.elapsed().as_micros() as u64;
                    inbox
                        .try_send(ZoneMsg::Datagram(id, d.to_vec(), received_us))
                        .is_err()
                }) {
                    link.drop_datagram("inbox_full");
                }
            }
            Err(e) => break e,
        }
    };
    let (reason, message) = crate::bridge::reason_of(&error, DisconnectReason::ClientQuit);
    // Control bytes already read reach the zone before the loss does.
    let _ = reader.await;
    if let Some(inbox) = routed(&inboxes, &link) {
        let _ = inbox.send(ZoneMsg::Lost(id, reason)).await;
    }
    tracing::debug!(%remote, connection = id.0, reason = reason.as_str(), %message, "connection ended");
}

/// The inbox of the zone `link` is routed to now.
fn routed<'a>(
    inboxes: &'a [mpsc::Sender<ZoneMsg>],
    link: &Link,
) -> Option<&'a mpsc::Sender<ZoneMsg>> {
    inboxes.get(usize::from(link.zone()))
}
