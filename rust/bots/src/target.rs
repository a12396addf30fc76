//! Which server a run loads, and how its bots get in: a local `mmo-server` the run spawns,
//! a running server's HTTP API, or (for tests and tools) a QUIC address, a certificate
//! fingerprint and a token per bot with no HTTP at all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mmo_net::tls::Fingerprint;

/// The server to load.
#[derive(Clone, Debug)]
pub enum Target {
    /// Start a local `mmo-server` child process (killed at the end), log in over its HTTP
    /// API and scrape its metrics.
    SpawnServer {
        /// The binary; `None` looks for `mmo-server` next to the running executable.
        server_bin: Option<PathBuf>,
    },
    /// A running server's HTTP API at `host:port`: bots log in with `POST /v1/login`, the
    /// metrics come from `GET /metrics`.
    Http {
        /// `host:port` of the HTTP API.
        http_addr: String,
    },
    /// A QUIC endpoint and the tokens it accepts: no HTTP login.
    Direct(DirectTarget),
}

/// A QUIC endpoint reached without the HTTP login.
#[derive(Clone, Debug)]
pub struct DirectTarget {
    /// The server's QUIC address.
    pub quic_addr: SocketAddr,
    /// Its certificate fingerprint (pinned).
    pub fingerprint: Fingerprint,
    /// The token bot `i` presents.
    pub tokens: TokenSource,
    /// `host:port` of an HTTP server with `GET /metrics`, if there is one; without it the
    /// server figures of the report are `null`.
    pub metrics_http: Option<String>,
}

/// The token each bot presents, by bot index.
#[derive(Clone)]
pub struct TokenSource(Arc<dyn Fn(usize) -> String + Send + Sync>);

impl TokenSource {
    /// Tokens made by `f` from the bot index.
    pub fn new(f: impl Fn(usize) -> String + Send + Sync + 'static) -> Self {
        TokenSource(Arc::new(f))
    }

    /// `bot-0`, `bot-1`, ... (the bots' usernames, used as tokens).
    #[must_use]
    pub fn bot_names() -> Self {
        TokenSource::new(bot_name)
    }

    /// Bot `index`'s token.
    #[must_use]
    pub fn token(&self, index: usize) -> String {
        (self.0)(index)
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSource(..)")
    }
}

/// The username of bot `index`: `bot-<index>`.
#[must_use]
pub fn bot_name(index: usize) -> String {
    format!("bot-{index}")
}
