//! `mmo-net`: the tokio + quinn driver of MMO Netcore. It owns the sockets and the clocks
//! that `mmo-core` deliberately does not, and runs the same loop as the test kit's harness,
//! over real QUIC:
//!
//! - [`tls`]: the server certificate (operator PEM files, or self-signed with rcgen and kept
//!   in a data directory), TLS 1.3 only, ALPN `mmo/1`, and a client that pins the server
//!   certificate by its SHA-256 fingerprint ([`tls::ServerTrust`]).
//! - [`udp`]: UDP sockets bound with sized kernel buffers.
//! - [`gateway`]: what each incoming connection attempt goes through: QUIC Retry under
//!   handshake load, a per-address handshake rate limit, a cap on open connections (refused
//!   with [`DisconnectReason::ServerFull`]).
//! - [`server`]: a quinn endpoint that bridges each accepted connection (its datagrams and
//!   its one bidirectional control stream) to the [`mmo_core::zone::Zone`]s of a world, each
//!   simulating on its own thread at the zone's tick rate, through bounded channels. A
//!   player crossing a zone border is handed to the neighbour zone on the same connection,
//!   and characters near a border are visible from both sides. Nothing on the tick waits
//!   for the network or another zone.
//! - [`client`]: a client driver that connects with the pinned certificate, opens the
//!   control stream and bridges a [`mmo_core::session::client::ClientSession`], polled from
//!   the caller's (game) thread; a lost QUIC connection is delivered to the session with its
//!   reason.
//! - [`metrics`]: the names of everything recorded (Prometheus via `mmo-server`).
//!
//! Every QUIC application close carries a [`DisconnectReason`] code (see the `bridge`
//! module's notes, mirrored in [`server`] and [`client`]).
//!
//! # Not done yet
//!
//! - **Zones across processes**: all zones of a world run in one server process; nothing
//!   hands a player to another machine. No persistence (a later issue).
//! - **A connection lost during its handoff** (the loss reaches the old zone after the
//!   player left it, or the new zone before it arrived) is ended by the session's idle
//!   timeout (10 s), not at once.
//! - **Handshake rate per address is not shared** between server processes, and the gateway
//!   does not learn from login failures (no ban list).
//! - **Protocol-violation detail**: [`metrics::PROTOCOL_VIOLATIONS_TOTAL`] is labelled by
//!   the disconnect reason only; the core does not report which rule was broken.
//! - **Server-side QUIC statistics**: bytes per client are the session's payload bytes, not
//!   QUIC's UDP bytes (the client's [`client::NetClientStats`] has both).

use mmo_core::control::DisconnectReason;

pub mod auth;
mod bridge;
pub mod chat;
pub mod client;
pub mod gateway;
pub mod metrics;
pub mod persist;
pub mod relay;
pub mod server;
pub mod shard;
pub mod tls;
mod token_bucket;
pub mod udp;
mod zone_set;
mod zone_thread;

/// What can go wrong setting up or running an endpoint.
#[derive(Debug)]
pub enum NetError {
    /// Certificate generation or TLS configuration failed.
    Tls(String),
    /// A socket could not be bound or used.
    Io(std::io::Error),
    /// The QUIC handshake or connection failed.
    Connection(String),
    /// A bad setting (the message names it).
    Config(String),
    /// The server refused the connection or closed it during the handshake, with this
    /// reason (e.g. [`DisconnectReason::ServerFull`]).
    Refused {
        /// The server's reason.
        reason: DisconnectReason,
        /// The server's text, or a local explanation.
        message: String,
    },
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::Tls(m) => write!(f, "tls: {m}"),
            NetError::Io(e) => write!(f, "io: {e}"),
            NetError::Connection(m) => write!(f, "connection: {m}"),
            NetError::Config(m) => write!(f, "config: {m}"),
            NetError::Refused { reason, message } => {
                write!(f, "refused by the server: {} ({message})", reason.as_str())
            }
        }
    }
}

impl std::error::Error for NetError {}

impl From<std::io::Error> for NetError {
    fn from(e: std::io::Error) -> Self {
        NetError::Io(e)
    }
}

/// Reads of the control stream are at most this many bytes at a time.
const STREAM_READ_BYTES: usize = 16 * 1024;

/// QUIC datagram send buffer per connection, bytes: three full-size (1200-byte) datagrams,
/// about a tick of a client at the default budget plus a burst; older ones are dropped by
/// quinn when congestion control holds the queue (not counted: quinn does not report it).
const DATAGRAM_SEND_BUFFER_BYTES: usize = 4 * 1024;
/// QUIC datagram receive buffer per connection, bytes: a task drains it as datagrams
/// arrive, so it only fills while that task is starved; 64 KiB is a few hundred inputs.
const DATAGRAM_RECEIVE_BUFFER_BYTES: usize = 64 * 1024;

/// The QUIC transport settings both ends use: datagrams on, a keep-alive well inside the
/// idle timeout, and exactly one bidirectional stream (the control stream, which the client
/// opens): a peer opening more, or any unidirectional stream, breaks QUIC's stream limits
/// and is closed by quinn.
fn transport_config() -> std::sync::Arc<quinn::TransportConfig> {
    transport_config_with_keep_alive(std::time::Duration::from_secs(2))
}

/// How often an idle client pings its server: the server's acknowledgements then arrive at
/// least this often, so a client that hears nothing at all for a second knows the server
/// (in a fleet, its gateway) or the path is gone (`client::NetClient::server_silent_for`).
/// A playing client sends inputs every tick, which need no ping.
const CLIENT_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_millis(250);

/// [`transport_config`] for the client's end: pings every [`CLIENT_KEEP_ALIVE`].
fn client_transport_config() -> std::sync::Arc<quinn::TransportConfig> {
    transport_config_with_keep_alive(CLIENT_KEEP_ALIVE)
}

fn transport_config_with_keep_alive(
    keep_alive: std::time::Duration,
) -> std::sync::Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(1u32.into());
    t.max_concurrent_uni_streams(0u32.into());
    t.keep_alive_interval(Some(keep_alive));
    // 10 s, the sessions' own idle timeout; the conversion cannot fail for this value.
    if let Ok(idle) = quinn::IdleTimeout::try_from(std::time::Duration::from_secs(10)) {
        t.max_idle_timeout(Some(idle));
    }
    // Small datagram buffers: quinn drops the oldest datagram when one is full, so the
    // newest snapshot (or input) wins instead of waiting behind seconds of stale ones (1 MiB
    // held 100 s of a 10 kB/s snapshot stream). See the constants.
    t.datagram_receive_buffer_size(Some(DATAGRAM_RECEIVE_BUFFER_BYTES));
    t.datagram_send_buffer_size(DATAGRAM_SEND_BUFFER_BYTES);
    std::sync::Arc::new(t)
}
