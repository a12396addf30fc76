//! How one bot gets in: its credentials (an HTTP login, or a token given directly), then
//! the QUIC connection on the same client session the C ABI uses.

use std::net::SocketAddr;

use mmo_core::session::client::{ClientConfig, SnapshotHandling};
use mmo_net::client::NetClient;
use mmo_net::tls::Fingerprint;

use crate::login;
use crate::resume::ResumeTargets;
use crate::target::{TokenSource, bot_name};

/// The server name sent as SNI (the pin, not the name, identifies the server).
const SERVER_NAME: &str = "localhost";

/// Where bots get their credentials (resolved from a [`crate::Target`]).
#[derive(Clone, Debug)]
pub(crate) enum Access {
    /// `POST /v1/login` at `http_base`.
    Http {
        client: reqwest::Client,
        http_base: String,
    },
    /// A fixed endpoint and a token per bot.
    Direct {
        quic_addr: SocketAddr,
        fingerprint: Fingerprint,
        tokens: TokenSource,
    },
}

/// A failure to get in, with a short code for the report.
#[derive(Clone, Debug)]
pub(crate) struct ConnectFailure {
    pub code: String,
    pub message: String,
}

impl Access {
    /// Logs bot `index` in (if needed) and connects it, handling snapshots as `snapshots`
    /// says, with where it can resume its session. The session is still logging in.
    pub(crate) async fn connect(
        &self,
        index: usize,
        snapshots: SnapshotHandling,
    ) -> Result<(NetClient, ResumeTargets), ConnectFailure> {
        let (quic_addr, fingerprint, token, resume_addrs) = match self {
            Access::Http { client, http_base } => {
                let granted = login::login(client, http_base, &bot_name(index))
                    .await
                    .map_err(|f| ConnectFailure {
                        code: f.code,
                        message: f.message,
                    })?;
                (
                    granted.quic_addr,
                    granted.fingerprint,
                    granted.token,
                    granted.resume_addrs,
                )
            }
            Access::Direct {
                quic_addr,
                fingerprint,
                tokens,
            } => (*quic_addr, *fingerprint, tokens.token(index), Vec::new()),
        };
        let client = connect_quic(quic_addr, fingerprint, &token, snapshots)
            .await
            .map_err(|e| ConnectFailure {
                code: "quic_connect".into(),
                message: format!("{quic_addr}: {e}"),
            })?;
        let targets = ResumeTargets {
            addrs: resume_addrs,
            trust: mmo_net::tls::ServerTrust::Pinned(fingerprint),
            server_name: SERVER_NAME,
        };
        Ok((client, targets))
    }
}

/// The one place a bot opens its QUIC connection (the certificate is pinned by
/// `fingerprint`).
async fn connect_quic(
    quic_addr: SocketAddr,
    fingerprint: Fingerprint,
    token: &str,
    snapshots: SnapshotHandling,
) -> Result<NetClient, mmo_net::NetError> {
    NetClient::connect(
        quic_addr,
        SERVER_NAME,
        mmo_net::tls::ServerTrust::Pinned(fingerprint),
        ClientConfig {
            snapshots,
            ..ClientConfig::default()
        },
        token,
    )
    .await
}
