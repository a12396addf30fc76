//! The client driver: one QUIC connection to a server, trusted as [`ServerTrust`] says, and
//! the [`ClientSession`] it carries.
//!
//! The session lives in [`NetClient`], on the caller's thread (the game thread): nothing
//! here blocks it. Tokio tasks read the connection (datagrams, control stream) into a
//! bounded inbox and write the session's transmits from a bounded outbox;
//! [`NetClient::pump`] moves bytes between those channels and the session.
//!
//! When the QUIC connection ends under a live session (the server vanished, timed out, or
//! closed without a disconnect frame), the reading task delivers that to the session after
//! the last control bytes, with [`ClientSession::transport_closed`]: an application close
//! carries its [`DisconnectReason`] code (so a client the server turned away sees
//! [`DisconnectReason::ServerFull`]), an idle timeout is [`DisconnectReason::Timeout`], so
//! the game gets [`ClientEvent::Disconnected`] within the QUIC idle timeout. The client
//! closes its own connection with [`DisconnectReason::ClientQuit`] (also when dropped), or
//! [`DisconnectReason::Timeout`] when the server stops reading its control stream.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmo_core::control::DisconnectReason;
use mmo_core::input::MoveInput;
use mmo_core::session::client::{ClientConfig, ClientEvent, ClientSession, ClientState};
use tokio::sync::mpsc;

use crate::NetError;
use crate::bridge::Link;
use crate::tls::ServerTrust;

/// Capacity of the inbox (datagrams and stream chunks waiting for [`NetClient::pump`]).
const INBOX_CAPACITY: usize = 1_024;
/// Capacity of the outbox (transmits waiting for the writer task).
const OUTBOX_CAPACITY: usize = 1_024;

/// Connection settings beyond the session's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Size asked for the UDP socket's receive and send buffers, bytes. Default 1 MiB.
    pub udp_buffer_bytes: usize,
    /// Longest wait for the QUIC handshake. Default 10 s.
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            udp_buffer_bytes: 1 << 20,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Transport and session counters of a [`NetClient`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NetClientStats {
    /// QUIC's smoothed round-trip time, microseconds.
    pub rtt_us: u64,
    /// QUIC packets sent.
    pub packets_sent: u64,
    /// QUIC packets declared lost.
    pub packets_lost: u64,
    /// `packets_lost / packets_sent` (0 before anything was sent).
    pub loss_ratio: f64,
    /// Payload bytes the session received (datagrams and control stream).
    pub session_bytes_in: u64,
    /// Payload bytes the session sent.
    pub session_bytes_out: u64,
    /// UDP bytes received (QUIC headers, acks, retransmissions included).
    pub udp_bytes_in: u64,
    /// UDP bytes sent.
    pub udp_bytes_out: u64,
    /// Datagrams dropped locally: outbox or inbox full, or not sendable.
    pub datagrams_dropped: u64,
}

enum Inbound {
    /// A datagram and when the reading task received it.
    Datagram(Vec<u8>, Instant),
    Stream(Vec<u8>),
    /// The QUIC connection ended, for this reason.
    Closed(DisconnectReason, String),
}

/// A connected client. See the module docs.
#[derive(Debug)]
pub struct NetClient {
    session: ClientSession,
    endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    inbox: mpsc::Receiver<Inbound>,
    outbox: Option<mpsc::Sender<crate::bridge::Queued>>,
    writer: tokio::task::JoinHandle<()>,
    link: Arc<Link>,
    start: Instant,
    /// When the last UDP datagram of the connection arrived (data or QUIC's own
    /// acknowledgements), seen at a pump.
    last_heard: Instant,
    /// The connection's count of UDP datagrams received at the last pump.
    udp_datagrams_in: u64,
    /// The connection a resumption replaced, open until `Resumed` (closing it earlier
    /// could end the session before the new connection took it).
    stale: Option<quinn::Connection>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Inbound::Datagram(d, _) => write!(f, "Datagram({} bytes)", d.len()),
            Inbound::Stream(s) => write!(f, "Stream({} bytes)", s.len()),
            Inbound::Closed(r, m) => write!(f, "Closed({}: {m})", r.as_str()),
        }
    }
}

/// A connection error during connect: the server's refusal when it gave a reason.
fn connect_error(error: &quinn::ConnectionError) -> NetError {
    let refused = match error {
        quinn::ConnectionError::ApplicationClosed(_) => true,
        quinn::ConnectionError::ConnectionClosed(c) => {
            c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED
        }
        _ => false,
    };
    if refused {
        let (reason, message) = crate::bridge::reason_of(error, DisconnectReason::ServerShutdown);
        NetError::Refused { reason, message }
    } else {
        NetError::Connection(error.to_string())
    }
}

impl NetClient {
    /// Connects to `server` with [`ConnectOptions::default`]; see [`NetClient::connect_with`].
    pub async fn connect(
        server: SocketAddr,
        server_name: &str,
        trust: ServerTrust,
        config: ClientConfig,
        token: &str,
    ) -> Result<NetClient, NetError> {
        Self::connect_with(
            server,
            server_name,
            trust,
            &ConnectOptions::default(),
            config,
            token,
        )
        .await
    }

    /// Connects to `server`, trusting it as `trust` says (`server_name` is sent as SNI),
    /// opens the control stream and sends the login with `token`. Returns once the QUIC
    /// handshake is done; the session is [`ClientState::LoggingIn`] until the welcome
    /// arrives (see [`NetClient::pump`]). A server that refuses or closes the connection
    /// during the handshake gives [`NetError::Refused`] with its reason (a refusal that
    /// arrives just after can also come as [`ClientEvent::Disconnected`]). Must be called
    /// within a tokio runtime with I/O and time enabled.
    pub async fn connect_with(
        server: SocketAddr,
        server_name: &str,
        trust: ServerTrust,
        options: &ConnectOptions,
        config: ClientConfig,
        token: &str,
    ) -> Result<NetClient, NetError> {
        if trust == ServerTrust::DangerousSkipVerification {
            tracing::warn!(
                %server,
                "ServerTrust::DangerousSkipVerification: the server's certificate is NOT checked; \
                 the server is not authenticated and anyone on the network path can impersonate \
                 it. Development only: pin the server's fingerprint instead"
            );
        }
        let bind: SocketAddr = match server {
            SocketAddr::V4(a) if a.ip().is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(a) if a.ip().is_loopback() => (Ipv6Addr::LOCALHOST, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let session = ClientSession::new(0, config, token).map_err(NetError::Config)?;
        let (socket, _, _) = crate::udp::bind_udp(bind, options.udp_buffer_bytes)?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        let wired = dial(&endpoint, server, server_name, trust, options).await?;
        let start = Instant::now();
        let mut client = NetClient {
            session,
            endpoint,
            connection: wired.connection,
            inbox: wired.inbox,
            outbox: Some(wired.outbox),
            writer: wired.writer,
            link: wired.link,
            start,
            last_heard: start,
            udp_datagrams_in: 0,
            stale: None,
        };
        // The login frame.
        client.flush();
        Ok(client)
    }

    /// Continues the session over a new connection to `server` (another gateway of the
    /// fleet, or the same one again) after the current one was lost or fell silent
    /// (`WIRE_FORMAT.md` 8.10; see [`NetClient::server_silent_for`]): the session, its
    /// prediction and its entity stay; [`ClientEvent::Resumed`] follows once the server
    /// took it over, or [`ClientEvent::Disconnected`] if it cannot (no answer within 5 s,
    /// or a refusal). Returns once the QUIC handshake is done and the `Resume` is queued.
    ///
    /// # Errors
    /// [`NetError::Config`] when the session cannot resume (not active, or the server gave
    /// no resumption token: a single server does not); a connection error as for
    /// [`NetClient::connect_with`] (the session then goes on waiting over the old
    /// connection, and may be resumed again).
    pub async fn resume(
        &mut self,
        server: SocketAddr,
        server_name: &str,
        trust: ServerTrust,
        options: &ConnectOptions,
    ) -> Result<(), NetError> {
        let connection = self
            .resume_dialer()?
            .dial(server, server_name, trust, options)
            .await?;
        self.adopt(connection)
    }

    /// [`NetClient::resume`] in two steps, for a caller that cannot wait on the client
    /// (the C ABI pumps it every frame meanwhile): this checks that the session can resume
    /// and returns what makes the new connection ([`ResumeDialer::dial`], which needs
    /// nothing of the client: run it on the runtime); [`NetClient::adopt`] then moves the
    /// session onto the connection.
    ///
    /// # Errors
    /// [`NetError::Config`] when the session cannot resume (see [`NetClient::resume`]).
    pub fn resume_dialer(&self) -> Result<ResumeDialer, NetError> {
        if !self.session.can_resume() {
            return Err(NetError::Config(
                "the session cannot resume: not active, or the server gave no resumption token \
                 (a single server gives none)"
                    .into(),
            ));
        }
        Ok(ResumeDialer {
            endpoint: self.endpoint.clone(),
        })
    }

    /// Moves the session onto `connection` (from [`ResumeDialer::dial`]) and sends
    /// its `Resume`.
    ///
    /// # Errors
    /// [`NetError::Config`] when the session can no longer resume (it closed meanwhile).
    pub fn adopt(&mut self, connection: ResumeConnection) -> Result<(), NetError> {
        let ResumeConnection(wired) = connection;
        self.session
            .begin_resume(self.now_us())
            .map_err(NetError::Config)?;
        let old = std::mem::replace(&mut self.connection, wired.connection);
        if let Some(older) = self.stale.replace(old) {
            crate::bridge::close_with(&older, DisconnectReason::ClientQuit, "resumed elsewhere");
        }
        self.inbox = wired.inbox;
        self.outbox = Some(wired.outbox);
        self.writer.abort();
        self.writer = wired.writer;
        self.link = wired.link;
        // The new connection's silence counts from now.
        self.last_heard = Instant::now();
        self.udp_datagrams_in = 0;
        self.flush();
        Ok(())
    }

    /// How long nothing at all came over the connection, as seen at the last
    /// [`NetClient::pump`]: no snapshot, no control bytes, not even QUIC's acknowledgements
    /// of the inputs sent every tick. A second of that means the path or the server (in a
    /// fleet, the gateway) is gone: time to [`NetClient::resume`]. A live gateway whose
    /// zone process died still acknowledges, so this stays low while the gateway restarts
    /// the session (`Rejoined`), as it should.
    #[must_use]
    pub fn server_silent_for(&self) -> Duration {
        self.last_heard.elapsed()
    }

    /// Microseconds since the connection was made (the session's clock).
    #[must_use]
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Feeds everything received so far to the session, checks its timeout, and hands its
    /// transmits to the writer. Never blocks; call it every frame.
    pub fn pump(&mut self) {
        self.pump_with(|_, _| {});
    }

    /// [`NetClient::pump`], calling `after_datagram` after each datagram the session
    /// handled, with the session and the instant the datagram arrived (taken by the reading
    /// task when QUIC handed it over, before it waited in the inbox for this pump). A
    /// measurement such as input-to-ack uses the arrival, not the pump, so its resolution
    /// is not the caller's frame time.
    pub fn pump_with(&mut self, mut after_datagram: impl FnMut(&ClientSession, Instant)) {
        let now_us = self.now_us();
        let udp_datagrams_in = self.connection.stats().udp_rx.datagrams;
        if udp_datagrams_in != self.udp_datagrams_in {
            self.udp_datagrams_in = udp_datagrams_in;
            self.last_heard = Instant::now();
        }
        while let Ok(inbound) = self.inbox.try_recv() {
            match inbound {
                Inbound::Datagram(d, arrived) => {
                    self.session.handle_datagram(now_us, &d);
                    after_datagram(&self.session, arrived);
                }
                Inbound::Stream(s) => self.session.handle_stream(now_us, &s),
                Inbound::Closed(reason, message) => self.session.transport_closed(reason, message),
            }
        }
        if self.session.poll_timeout().is_some_and(|t| now_us >= t) {
            self.session.handle_timeout(now_us);
        }
        if !self.session.is_resuming()
            && let Some(stale) = self.stale.take()
        {
            crate::bridge::close_with(&stale, DisconnectReason::ClientQuit, "resumed elsewhere");
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

    /// Datagrams dropped locally (outbox or inbox full, or not sendable).
    #[must_use]
    pub fn datagrams_dropped(&self) -> u64 {
        self.link.datagrams_dropped()
    }

    /// Transport and session counters (QUIC's RTT and packet loss, bytes, drops).
    #[must_use]
    pub fn stats(&self) -> NetClientStats {
        let quic = self.connection.stats();
        let session = self.session.stats();
        let packets_sent = quic.path.sent_packets;
        let packets_lost = quic.path.lost_packets;
        NetClientStats {
            rtt_us: quic.path.rtt.as_micros() as u64,
            packets_sent,
            packets_lost,
            loss_ratio: if packets_sent == 0 {
                0.0
            } else {
                packets_lost as f64 / packets_sent as f64
            },
            session_bytes_in: session.bytes_in,
            session_bytes_out: session.bytes_out,
            udp_bytes_in: quic.udp_rx.bytes,
            udp_bytes_out: quic.udp_tx.bytes,
            datagrams_dropped: self.link.datagrams_dropped(),
        }
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
        crate::bridge::close_with(&self.connection, DisconnectReason::ClientQuit, "bye");
        let _ = tokio::time::timeout_at(deadline, self.endpoint.wait_idle()).await;
    }

    fn flush(&mut self) {
        while let Some(t) = self.session.poll_transmit() {
            let Some(outbox) = &self.outbox else {
                continue;
            };
            match outbox.try_send(crate::bridge::Queued::now(t)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(q)) if q.is_datagram() => {
                    self.link.drop_datagram("outbox_full");
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // Only a stalled connection fills 1024 control frames: the server
                    // stopped reading, which is as good as silent.
                    tracing::warn!("control stream backlog: closing");
                    let reason = DisconnectReason::Timeout;
                    self.link.set_close_reason(reason);
                    crate::bridge::close_with(&self.connection, reason, "control stream backlog");
                    self.session
                        .transport_closed(reason, "the server stopped reading".to_owned());
                    self.outbox = None;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => self.outbox = None,
            }
        }
    }
}

impl Drop for NetClient {
    /// A client dropped without [`NetClient::disconnect`] still tells the server why (no
    /// effect when the connection is already closed).
    fn drop(&mut self) {
        crate::bridge::close_with(&self.connection, DisconnectReason::ClientQuit, "dropped");
    }
}

/// Makes the new connection a session resumes over ([`NetClient::resume_dialer`]).
#[derive(Clone, Debug)]
pub struct ResumeDialer {
    endpoint: quinn::Endpoint,
}

impl ResumeDialer {
    /// Connects to `server` as [`NetClient::connect_with`] does (the QUIC handshake and
    /// the control stream; nothing is sent yet).
    ///
    /// # Errors
    /// As for [`NetClient::connect_with`].
    pub async fn dial(
        self,
        server: SocketAddr,
        server_name: &str,
        trust: ServerTrust,
        options: &ConnectOptions,
    ) -> Result<ResumeConnection, NetError> {
        dial(&self.endpoint, server, server_name, trust, options)
            .await
            .map(ResumeConnection)
    }
}

/// A new connection to resume a session over ([`ResumeDialer::dial`]).
#[derive(Debug)]
pub struct ResumeConnection(Wired);

/// One QUIC connection's control stream and tasks.
#[derive(Debug)]
struct Wired {
    connection: quinn::Connection,
    inbox: mpsc::Receiver<Inbound>,
    outbox: mpsc::Sender<crate::bridge::Queued>,
    writer: tokio::task::JoinHandle<()>,
    link: Arc<Link>,
}

/// Connects `endpoint` to `server`, trusting it as `trust` says, opens the control stream
/// and starts the connection's reading and writing tasks.
async fn dial(
    endpoint: &quinn::Endpoint,
    server: SocketAddr,
    server_name: &str,
    trust: ServerTrust,
    options: &ConnectOptions,
) -> Result<Wired, NetError> {
    let mut client_config = quinn::ClientConfig::new(crate::tls::quic_client_crypto(trust)?);
    client_config.transport_config(crate::client_transport_config());
    let connecting = endpoint
        .connect_with(client_config, server, server_name)
        .map_err(|e| NetError::Connection(e.to_string()))?;
    let connection = match tokio::time::timeout(options.connect_timeout, connecting).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(connect_error(&e)),
        Err(_) => return Err(NetError::Connection("handshake timed out".into())),
    };
    if let Some(e) = connection.close_reason() {
        return Err(connect_error(&e));
    }
    let (send, recv) = connection.open_bi().await.map_err(|e| connect_error(&e))?;
    let link = Arc::new(Link::new(DisconnectReason::ClientQuit, false));
    let (inbox_tx, inbox) = mpsc::channel(INBOX_CAPACITY);
    let (outbox, outbox_rx) = mpsc::channel(OUTBOX_CAPACITY);
    let writer = tokio::spawn(crate::bridge::write_transmits(
        connection.clone(),
        send,
        outbox_rx,
        link.clone(),
    ));
    let stream_reader = tokio::spawn(crate::bridge::read_stream(
        recv,
        inbox_tx.clone(),
        Inbound::Stream,
        || {},
    ));
    tokio::spawn(read_datagrams(
        connection.clone(),
        inbox_tx,
        stream_reader,
        link.clone(),
    ));
    Ok(Wired {
        connection,
        inbox,
        outbox,
        writer,
        link,
    })
}

/// Reads datagrams into the inbox (dropped when it is full) until the connection ends;
/// then, after the control stream reader has delivered its last bytes (so a disconnect frame
/// keeps its reason), tells the session why the connection ended.
async fn read_datagrams(
    connection: quinn::Connection,
    inbox: mpsc::Sender<Inbound>,
    stream_reader: tokio::task::JoinHandle<()>,
    link: Arc<Link>,
) {
    let error = loop {
        match connection.read_datagram().await {
            Ok(d) => {
                if inbox
                    .try_send(Inbound::Datagram(d.to_vec(), Instant::now()))
                    .is_err()
                {
                    link.drop_datagram("inbox_full");
                }
            }
            Err(e) => break e,
        }
    };
    let (reason, message) = crate::bridge::reason_of(&error, DisconnectReason::ServerShutdown);
    tracing::debug!(reason = reason.as_str(), %message, "connection ended");
    let _ = stream_reader.await;
    let _ = inbox.send(Inbound::Closed(reason, message)).await;
}
