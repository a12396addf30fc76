//! `mmo-net`: the tokio + quinn driver of MMO Netcore. It owns the sockets and the clocks
//! that `mmo-core` deliberately does not, and runs the same loop as the test kit's harness,
//! over real QUIC:
//!
//! - [`tls`]: a self-signed server certificate (rcgen), TLS 1.3 only, ALPN `mmo/1`, and a
//!   client that pins the server certificate by its SHA-256 fingerprint.
//! - [`server`]: a quinn endpoint that accepts connections and bridges each one (its
//!   datagrams and its one bidirectional control stream) to a [`mmo_core::zone::Zone`]
//!   simulating on its own thread at the zone's tick rate, through bounded channels. Nothing
//!   on the tick waits for the network.
//! - [`client`]: a client driver that connects with the pinned certificate, opens the
//!   control stream and bridges a [`mmo_core::session::client::ClientSession`], polled from
//!   the caller's (game) thread.
//!
//! # Not done yet (this is the first slice)
//!
//! - **Address validation**: no QUIC Retry, no per-address handshake rate limit.
//! - **Connection cap**: no limit on concurrent connections (quinn's defaults only).
//! - **UDP buffer sizing**: the OS default socket buffers are used.
//! - **Operator certificates**: no PEM file loading; the server certificate is generated in
//!   memory at start, and clients must be given its fingerprint.
//! - **Metrics**: no Prometheus counters; dropped datagrams and slow connections are only
//!   logged with `tracing`.
//! - **Transport loss on the client**: when the QUIC connection dies without a disconnect
//!   frame, the client session notices only through its own idle timeout (10 s by default).
//! - **Zone transfer, multiple zones, persistence**: one zone per server.

pub mod auth;
mod bridge;
pub mod client;
pub mod metrics;
pub mod server;
pub mod tls;

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
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::Tls(m) => write!(f, "tls: {m}"),
            NetError::Io(e) => write!(f, "io: {e}"),
            NetError::Connection(m) => write!(f, "connection: {m}"),
            NetError::Config(m) => write!(f, "config: {m}"),
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

/// The QUIC transport settings both ends use: datagrams on, a keep-alive well inside the
/// idle timeout.
fn transport_config() -> std::sync::Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(std::time::Duration::from_secs(2)));
    // 10 s, the sessions' own idle timeout; the conversion cannot fail for this value.
    if let Ok(idle) = quinn::IdleTimeout::try_from(std::time::Duration::from_secs(10)) {
        t.max_idle_timeout(Some(idle));
    }
    t.datagram_receive_buffer_size(Some(1 << 20));
    t.datagram_send_buffer_size(1 << 20);
    std::sync::Arc::new(t)
}
