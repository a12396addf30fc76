//! The client driver: one QUIC connection to a server, whose certificate is pinned, and the
//! [`ClientSession`] it carries.
//!
//! The session lives in [`NetClient`], on the caller's thread (the game thread): nothing
//! here blocks it. Tokio tasks read the connection (datagrams, control stream) into a
//! bounded inbox and write the session's transmits from a bounded outbox;
//! [`NetClient::pump`] moves bytes between those channels and the session.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use mmo_core::input::MoveInput;
use mmo_core::session::Transmit;
use mmo_core::session::client::{ClientConfig, ClientEvent, ClientSession, ClientState};
use tokio::sync::mpsc;

use crate::NetError;
use crate::tls::Fingerprint;

/// Capacity of the inbox (datagrams and stream chunks waiting for [`NetClient::pump`]).
const INBOX_CAPACITY: usize = 1_024;
/// Capacity of the outbox (transmits waiting for the writer task).
const OUTBOX_CAPACITY: usize = 1_024;
/// Longest wait for the QUIC handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

enum Inbound {
    Datagram(Vec<u8>),
    Stream(Vec<u8>),
}

/// A connected client. See the module docs.
#[derive(Debug)]
pub struct NetClient {
    session: ClientSession,
    endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    inbox: mpsc::Receiver<Inbound>,
    outbox: Option<mpsc::Sender<Transmit>>,
    writer: tokio::task::JoinHandle<()>,
    start: Instant,
    datagrams_dropped: u64,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Inbound::Datagram(d) => write!(f, "Datagram({} bytes)", d.len()),
            Inbound::Stream(s) => write!(f, "Stream({} bytes)", s.len()),
        }
    }
}

impl NetClient {
    /// Connects to `server`, trusting only the certificate with fingerprint `pin`
    /// (`server_name` is sent as SNI), opens the control stream and sends the login with
    /// `token`. Returns once the QUIC handshake is done; the session is
    /// [`ClientState::LoggingIn`] until the welcome arrives (see [`NetClient::pump`]).
    /// Must be called within a tokio runtime with I/O and time enabled.
    pub async fn connect(
        server: SocketAddr,
        server_name: &str,
        pin: Fingerprint,
        config: ClientConfig,
        token: &str,
    ) -> Result<NetClient, NetError> {
        let bind: SocketAddr = match server {
            SocketAddr::V4(a) if a.ip().is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(a) if a.ip().is_loopback() => (Ipv6Addr::LOCALHOST, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let mut endpoint = quinn::Endpoint::client(bind)?;
        let mut client_config = quinn::ClientConfig::new(crate::tls::quic_client_crypto(pin)?);
        client_config.transport_config(crate::transport_config());
        endpoint.set_default_client_config(client_config);
        let connecting = endpoint
            .connect(server, server_name)
            .map_err(|e| NetError::Connection(e.to_string()))?;
        let connection = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(NetError::Connection(e.to_string())),
            Err(_) => return Err(NetError::Connection("handshake timed out".into())),
        };
        let (send, recv) = connection
            .open_bi()
            .await
            .map_err(|e| NetError::Connection(e.to_string()))?;
        let start = Instant::now();
        let session = ClientSession::new(0, config, token).map_err(NetError::Config)?;
        let (inbox_tx, inbox) = mpsc::channel(INBOX_CAPACITY);
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX_CAPACITY);
        let writer = tokio::spawn(crate::bridge::write_transmits(
            connection.clone(),
            send,
            outbox_rx,
        ));
        tokio::spawn(crate::bridge::read_stream(
            recv,
            inbox_tx.clone(),
            Inbound::Stream,
        ));
        tokio::spawn(read_datagrams(connection.clone(), inbox_tx));
        let mut client = NetClient {
            session,
            endpoint,
            connection,
            inbox,
            outbox: Some(outbox),
            writer,
            start,
            datagrams_dropped: 0,
        };
        // The login frame.
        client.flush();
        Ok(client)
    }

    /// Microseconds since the connection was made (the session's clock).
    #[must_use]
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Feeds everything received so far to the session, checks its timeout, and hands its
    /// transmits to the writer. Never blocks; call it every frame.
    pub fn pump(&mut self) {
        let now_us = self.now_us();
        while let Ok(inbound) = self.inbox.try_recv() {
            match inbound {
                Inbound::Datagram(d) => self.session.handle_datagram(now_us, &d),
                Inbound::Stream(s) => self.session.handle_stream(now_us, &s),
            }
        }
        if self.session.poll_timeout().is_some_and(|t| now_us >= t) {
            self.session.handle_timeout(now_us);
        }
        self.flush();
    }

    /// Applies one predicted tick with `input` and sends it. Returns its sequence number,
    /// or `None` when the session is not [`ClientState::Active`].
    pub fn send_input(&mut self, input: MoveInput) -> Option<u32> {
        let seq = self.session.send_input(self.now_us(), input);
        self.flush();
        seq
    }

    /// The next session event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.session.poll_event()
    }

    /// Where the session is.
    #[must_use]
    pub fn state(&self) -> ClientState {
        self.session.state()
    }

    /// The session, for inspection (prediction, remote entities, stats).
    #[must_use]
    pub fn session(&self) -> &ClientSession {
        &self.session
    }

    /// The session, mutably (sampling remote entities, chat, visual smoothing).
    pub fn session_mut(&mut self) -> &mut ClientSession {
        &mut self.session
    }

    /// This end's UDP address.
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        Ok(self.endpoint.local_addr()?)
    }

    /// Datagrams dropped because the outbox was full.
    #[must_use]
    pub fn datagrams_dropped(&self) -> u64 {
        self.datagrams_dropped
    }

    /// Leaves cleanly: tells the server (a disconnect frame on the control stream), lets
    /// the writer finish the stream, closes the connection, and waits up to `grace` for the
    /// endpoint to go idle.
    pub async fn disconnect(mut self, grace: Duration) {
        self.session.disconnect();
        self.flush();
        // Closing the outbox ends the writer after it wrote the disconnect frame.
        self.outbox = None;
        let deadline = tokio::time::Instant::now() + grace;
        let _ = tokio::time::timeout_at(deadline, &mut self.writer).await;
        self.connection
            .close(crate::bridge::CLOSE_OK.into(), b"bye");
        let _ = tokio::time::timeout_at(deadline, self.endpoint.wait_idle()).await;
    }

    fn flush(&mut self) {
        while let Some(t) = self.session.poll_transmit() {
            let Some(outbox) = &self.outbox else {
                continue;
            };
            match outbox.try_send(t) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(Transmit::Datagram(_))) => {
                    self.datagrams_dropped += 1;
                }
                Err(mpsc::error::TrySendError::Full(Transmit::Stream(_))) => {
                    // Only a stalled connection fills 1024 control frames; it is dead.
                    tracing::warn!("control stream backlog: closing");
                    self.connection
                        .close(2u32.into(), b"control stream backlog");
                    self.outbox = None;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => self.outbox = None,
            }
        }
    }
}

async fn read_datagrams(connection: quinn::Connection, inbox: mpsc::Sender<Inbound>) {
    while let Ok(d) = connection.read_datagram().await {
        if inbox.try_send(Inbound::Datagram(d.to_vec())).is_err() {
            tracing::debug!("client inbox full: datagram dropped");
        }
    }
}
