//! The pieces both drivers share: the per-connection [`Link`] state the tasks and the session
//! owner both see, the task that writes a session's transmits to a QUIC connection, the task
//! that reads the control stream, and how a QUIC connection error maps to a
//! [`DisconnectReason`].
//!
//! Close codes: every application close either end makes carries a
//! [`DisconnectReason::code`] as its QUIC error code and a short text. The writer closes with
//! the reason recorded on its [`Link`] (the reason of the session's disconnect frame, set
//! before the outbox is dropped), else with the link's default (`ServerShutdown` on the
//! server, `ClientQuit` on the client). [`CLOSE_OK`] (0) is never sent by this crate: it is
//! what quinn sends for a connection dropped without a close, and a peer reading it treats it
//! as "no reason given".

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mmo_core::control::DisconnectReason;
use mmo_core::session::Transmit;
use tokio::sync::mpsc;

/// How long a closing writer waits for the peer to read the control stream to its end
/// (so the last frame, usually a disconnect reason, arrives) before closing the connection.
const LINGER: Duration = Duration::from_secs(2);

/// Longest wait for one control-stream write: a peer that stops reading (a zero receive
/// window, or no reads) must not hold the connection open forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a side whose control stream the peer stopped waits for the peer's own close
/// before closing with [`DisconnectReason::ProtocolViolation`]: a peer that closes the
/// connection (a server refusing a client as full, right after the handshake) may stop
/// the stream in the same packet as its close, and the stop is seen first; closing at once
/// would report this side's reason instead of the peer's.
const PEER_CLOSE_GRACE: Duration = Duration::from_millis(250);

/// Oldest a datagram may be when the writer gets to it; older ones are dropped and counted
/// (`stale`): a snapshot or input that waited longer behind a slow connection is superseded
/// by the next one (about one tick at 30 Hz, plus scheduling slack). Control frames have no
/// age limit (they are reliable and ordered).
pub(crate) const MAX_DATAGRAM_AGE: Duration = Duration::from_millis(50);

/// A transmit and when it was queued for the writer.
#[derive(Debug)]
pub(crate) struct Queued {
    pub transmit: Transmit,
    pub at: Instant,
}

impl Queued {
    /// `transmit`, queued now.
    pub(crate) fn now(transmit: Transmit) -> Self {
        Queued {
            transmit,
            at: Instant::now(),
        }
    }

    /// True for a datagram (the only kind that may be dropped).
    pub(crate) fn is_datagram(&self) -> bool {
        matches!(self.transmit, Transmit::Datagram(_))
    }
}

/// Application close code meaning "no reason given" (quinn's implicit close). Never sent
/// deliberately; see the module docs.
pub(crate) const CLOSE_OK: u32 = 0;

/// State one connection's tasks share with the owner of its session (the zone thread or the
/// [`crate::client::NetClient`]).
#[derive(Debug)]
pub(crate) struct Link {
    /// Code of the reason the writer closes the connection with; 0 until set.
    close_code: AtomicU16,
    /// Used when `close_code` was never set.
    default_reason: DisconnectReason,
    /// Set (server side) once the zone accepted the login: datagrams before that are dropped
    /// by the connection task without reaching the zone.
    logged_in: AtomicBool,
    /// Datagrams this connection dropped, for every reason.
    datagrams_dropped: AtomicU64,
    /// Record drops in the server's metrics (the client records no metrics).
    server_metrics: bool,
    /// Server side: the zone (thread) that owns the session now, where the connection task
    /// sends its datagrams and wake-ups. Switched by the old zone at a handoff.
    zone: AtomicU16,
    /// Server side, once logged in: who the session is (what a relay tells its gateway so
    /// that the session can be restarted elsewhere, `mmo_core::relay::SessionTicket`).
    identity: std::sync::Mutex<Option<SessionIdentity>>,
    /// Server side: the session resumed over another client connection and its zone has
    /// not answered `Resumed` yet (taken once, by whichever zone thread has it then).
    resume_pending: AtomicBool,
}

/// Who a logged-in session is: its account and, with a character store, its character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionIdentity {
    /// The account the login token named.
    pub(crate) account: String,
    /// The character's database id (`None` without a store).
    pub(crate) character_id: Option<u64>,
}

impl Link {
    pub(crate) fn new(default_reason: DisconnectReason, server_metrics: bool) -> Self {
        Link {
            close_code: AtomicU16::new(0),
            default_reason,
            logged_in: AtomicBool::new(false),
            datagrams_dropped: AtomicU64::new(0),
            server_metrics,
            zone: AtomicU16::new(0),
            identity: std::sync::Mutex::new(None),
            resume_pending: AtomicBool::new(false),
        }
    }

    /// Records who the logged-in session is (server side).
    pub(crate) fn set_identity(&self, identity: SessionIdentity) {
        *self
            .identity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(identity);
    }

    /// Who the session is, once [`Link::set_identity`] was called.
    pub(crate) fn identity(&self) -> Option<SessionIdentity> {
        self.identity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The zone that owns the session now (server side).
    pub(crate) fn zone(&self) -> u16 {
        self.zone.load(Ordering::Acquire)
    }

    /// Routes the connection's traffic to `zone` from now on (server side).
    pub(crate) fn set_zone(&self, zone: u16) {
        self.zone.store(zone, Ordering::Release);
    }

    /// The reason the writer will close with (the first one set wins).
    pub(crate) fn set_close_reason(&self, reason: DisconnectReason) {
        let _ =
            self.close_code
                .compare_exchange(0, reason.code(), Ordering::AcqRel, Ordering::Acquire);
    }

    /// The reason set with [`Link::set_close_reason`], else the default.
    pub(crate) fn close_reason(&self) -> DisconnectReason {
        DisconnectReason::try_from(self.close_code.load(Ordering::Acquire))
            .unwrap_or(self.default_reason)
    }

    /// The session must answer a resumption (see `resume_pending`).
    pub(crate) fn ask_resume(&self) {
        self.resume_pending.store(true, Ordering::Release);
    }

    /// A resumption waits for its zone's answer.
    pub(crate) fn is_resume_pending(&self) -> bool {
        self.resume_pending.load(Ordering::Acquire)
    }

    /// True once per [`Link::ask_resume`]: the caller answers it.
    pub(crate) fn take_resume(&self) -> bool {
        self.resume_pending.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn set_logged_in(&self) {
        self.logged_in.store(true, Ordering::Release);
    }

    pub(crate) fn is_logged_in(&self) -> bool {
        self.logged_in.load(Ordering::Acquire)
    }

    /// Counts a dropped datagram; `reason` is a [`crate::metrics::DATAGRAMS_DROPPED_TOTAL`]
    /// label.
    pub(crate) fn drop_datagram(&self, reason: &'static str) {
        self.datagrams_dropped.fetch_add(1, Ordering::Relaxed);
        if self.server_metrics {
            metrics::counter!(crate::metrics::DATAGRAMS_DROPPED_TOTAL, "reason" => reason)
                .increment(1);
        }
    }

    pub(crate) fn datagrams_dropped(&self) -> u64 {
        self.datagrams_dropped.load(Ordering::Relaxed)
    }
}

/// Closes `connection` with `reason`'s code and `text`.
pub(crate) fn close_with(connection: &quinn::Connection, reason: DisconnectReason, text: &str) {
    connection.close(u32::from(reason.code()).into(), text.as_bytes());
}

/// Writes transmits in order until the channel closes (the session is over) or the
/// connection fails: datagrams with `send_datagram` (dropped, not queued, when they cannot
/// be sent, or when they waited longer than [`MAX_DATAGRAM_AGE`] in the channel), stream
/// bytes with `write_all`. Then finishes the control stream, waits up to
/// [`LINGER`] for the peer to read it, and closes the connection with the link's reason.
///
/// A control write that fails because the peer stopped the stream closes the connection
/// with [`DisconnectReason::ProtocolViolation`] unless the peer closes it within
/// [`PEER_CLOSE_GRACE`] (then the peer's reason stands); one that does not complete within
/// [`WRITE_TIMEOUT`] (the peer stopped reading) closes it at once with
/// [`DisconnectReason::Timeout`]. Every way out of this function leaves the connection
/// closed, so a stalled peer cannot keep its slot.
pub(crate) async fn write_transmits(
    connection: quinn::Connection,
    mut send: quinn::SendStream,
    mut transmits: mpsc::Receiver<Queued>,
    link: std::sync::Arc<Link>,
) {
    while let Some(Queued { transmit, at }) = transmits.recv().await {
        match transmit {
            Transmit::Datagram(_) if at.elapsed() > MAX_DATAGRAM_AGE => {
                link.drop_datagram("stale");
            }
            Transmit::Datagram(d) => match connection.send_datagram(d.into()) {
                Ok(()) => {}
                // Already closed: nothing left to close.
                Err(quinn::SendDatagramError::ConnectionLost(_)) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "datagram dropped");
                    link.drop_datagram("send_failed");
                }
            },
            Transmit::Stream(s) => {
                match tokio::time::timeout(WRITE_TIMEOUT, send.write_all(&s)).await {
                    Ok(Ok(())) => {}
                    // The peer closed the connection: its reason stands, nothing to close.
                    Ok(Err(quinn::WriteError::ConnectionLost(_))) => return,
                    Ok(Err(e)) => {
                        if tokio::time::timeout(PEER_CLOSE_GRACE, connection.closed())
                            .await
                            .is_ok()
                        {
                            return;
                        }
                        tracing::debug!(error = %e, "control stream write failed: closing");
                        link.set_close_reason(DisconnectReason::ProtocolViolation);
                        break;
                    }
                    Err(_) => {
                        tracing::debug!("control stream write stalled: closing");
                        link.set_close_reason(DisconnectReason::Timeout);
                        let reason = link.close_reason();
                        close_with(&connection, reason, "control stream not read");
                        return;
                    }
                }
            }
        }
    }
    if send.finish().is_ok() {
        let _ = tokio::time::timeout(LINGER, send.stopped()).await;
    }
    let reason = link.close_reason();
    close_with(&connection, reason, reason.as_str());
}

/// Reads the control stream and sends each chunk, wrapped by `wrap`, on `to` (waiting for
/// room: the stream's flow control pushes back on the peer), calling `after_chunk` once
/// each chunk is queued, until the stream ends or fails, or the receiver is gone.
pub(crate) async fn read_stream<M>(
    mut recv: quinn::RecvStream,
    to: mpsc::Sender<M>,
    wrap: impl Fn(Vec<u8>) -> M,
    after_chunk: impl Fn(),
) {
    let mut buf = vec![0u8; crate::STREAM_READ_BYTES];
    loop {
        match recv.read(&mut buf).await {
            Ok(Some(n)) => {
                if to.send(wrap(buf[..n].to_vec())).await.is_err() {
                    return;
                }
                after_chunk();
            }
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "control stream read ended");
                return;
            }
        }
    }
}

/// Why a QUIC connection ended, as a session reason and a message. An application close
/// with a known code is that reason (its text is the message); an idle timeout is
/// [`DisconnectReason::Timeout`]; a stateless reset (the peer lost its state) or an
/// application close without a known code is `peer_gone`; a transport-level error is
/// [`DisconnectReason::ProtocolViolation`] and a version mismatch
/// [`DisconnectReason::ProtocolMismatch`].
pub(crate) fn reason_of(
    error: &quinn::ConnectionError,
    peer_gone: DisconnectReason,
) -> (DisconnectReason, String) {
    use quinn::ConnectionError as E;
    match error {
        E::ApplicationClosed(close) => {
            let text = String::from_utf8_lossy(&close.reason).into_owned();
            let known = u16::try_from(close.error_code.into_inner())
                .ok()
                .and_then(|code| DisconnectReason::try_from(code).ok());
            match known {
                Some(reason) => (reason, text),
                None if close.error_code.into_inner() == u64::from(CLOSE_OK) => (
                    peer_gone,
                    format!("closed by peer without a reason: {text}"),
                ),
                None => (
                    peer_gone,
                    format!(
                        "closed by peer with unknown code {}: {text}",
                        close.error_code
                    ),
                ),
            }
        }
        E::TimedOut => (
            DisconnectReason::Timeout,
            "QUIC idle timeout: nothing heard from the peer".to_owned(),
        ),
        E::Reset => (peer_gone, "connection reset by peer".to_owned()),
        E::VersionMismatch => (DisconnectReason::ProtocolMismatch, error.to_string()),
        E::ConnectionClosed(close)
            if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
        {
            (
                DisconnectReason::ServerFull,
                "connection refused by the server".to_owned(),
            )
        }
        E::TransportError(_) | E::ConnectionClosed(_) | E::CidsExhausted => {
            (DisconnectReason::ProtocolViolation, error.to_string())
        }
        E::LocallyClosed => (
            DisconnectReason::ClientQuit,
            "closed by this end".to_owned(),
        ),
    }
}
