//! `mmo_client`: a whole client session over real QUIC in one handle (the C face of
//! `mmo_net::client::NetClient`), for engines that do not want to run their own network
//! stack: connect, send inputs, poll events, sample remote entities, read the predicted
//! local character and the connection's stats. Gameplay (abilities, inventory, pools,
//! cooldowns) is in `client/gameplay.rs`.
//!
//! The handle owns a small tokio runtime (one worker thread named `mmo-client`, plus the
//! runtime's blocking threads for name resolution) that does the socket I/O. The session
//! itself lives in the handle and is driven only by the caller's calls, on the caller's
//! thread: tokio threads never call back into the caller, and no call waits for the
//! network. The longest wait is `mmo_client_free`, which gives the disconnect at most
//! [`FREE_WAIT`] to go out and the runtime at most [`FREE_WAIT`] to stop.
//!
//! Life of a handle (one handle is one session; make a new handle to reconnect):
//!
//! 1. `mmo_client_new` validates the config (the pinned fingerprint is required).
//! 2. `mmo_client_connect` starts resolving and connecting in the background and returns.
//! 3. Once per frame, `mmo_client_poll_event` in a loop until it reports no event; it pumps
//!    the connection whenever its queue is empty. The first event is `WELCOME` (inputs may
//!    be sent from then on) or `DISCONNECTED` (reason `CONNECT_FAILED`, `BAD_TOKEN`...).
//! 4. Once per simulation tick, `mmo_client_send_input`; once per rendered frame,
//!    `mmo_client_advance_visual`, `mmo_client_local_state` and `mmo_client_sample_entity`.
//! 5. `mmo_client_disconnect` leaves cleanly; the `DISCONNECTED` event (reason
//!    `CLIENT_QUIT`) follows once the connection is closed (within [`DISCONNECT_GRACE`]).
//! 6. `mmo_client_free`.
//!
//! A QUIC connection that ends without a disconnect frame (server gone, QUIC idle timeout,
//! refused as full) still ends the session: mmo-net hands the QUIC close reason to it, and
//! the `DISCONNECTED` event carries that reason.
//!
//! In a fleet, a connection whose gateway died falls silent instead: after about a second
//! of `mmo_client_server_silent_ms`, `mmo_client_resume` makes a connection to another
//! gateway in the background (the session is pumped meanwhile) and moves the session onto
//! it (`NetClient::adopt`); the `RESUMED` event follows, or `DISCONNECTED`.
//!
//! Not done yet: movement and snapshot settings are the core's defaults (the server does
//! not send its own yet).

pub mod chat;
pub mod config;
pub mod event;
pub mod gameplay;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::ffi::{CStr, c_char};
use std::net::SocketAddr;
use std::time::Duration;

use mmo_core::control;
use mmo_core::entity::EntityId;
use mmo_core::session::client::{ClientConfig, ClientEvent, ClientState};
use mmo_core::validation::validate_input;
use mmo_net::NetError;
use mmo_net::client::{ConnectOptions, NetClient, ResumeConnection, ResumeDialer};
use mmo_net::tls::Fingerprint;
use tokio::sync::oneshot;

use crate::boundary::{self, FfiError, Out, OutSlice};
use crate::interpolator::mmo_interp_output;
use crate::result::mmo_result;
use crate::types::{mmo_character_state, mmo_move_input, mmo_vec3};

use config::{ClientSettings, mmo_client_config};
use event::{mmo_client_event, mmo_disconnect_reason};

/// Longest time a graceful close (disconnect frame delivered, connection closed, endpoint
/// idle) may take before the `DISCONNECTED` event is reported anyway.
pub const DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// Longest time `mmo_client_free` waits for the runtime's threads to stop; work still
/// running after it is abandoned (the threads exit on their own).
pub const FREE_WAIT: Duration = Duration::from_millis(20);

/// Longest wait for the host name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a client handle is (`mmo_client_connection_state`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_connection_state {
    /// Made, `mmo_client_connect` not called yet.
    Idle = 0,
    /// Resolving the host and doing the QUIC handshake.
    Connecting = 1,
    /// Connected, login sent, waiting for the welcome.
    LoggingIn = 2,
    /// Logged in: inputs may be sent.
    Active = 3,
    /// The session is over; the connection is being closed (the `DISCONNECTED` event is
    /// reported when it is).
    Closing = 4,
    /// Over: the `DISCONNECTED` event was queued.
    Closed = 5,
}

/// Counters and estimates of a client connection (`mmo_client_stats`; the struct is not
/// named after the function, which C would not allow). They stay readable
/// after the session ends (the last values).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct mmo_connection_stats {
    /// Smoothed round-trip time, microseconds (0 before the first sample).
    pub rtt_us: u64,
    /// Snapshot datagrams received (applied, stale or undecodable; a duplicate counts
    /// twice).
    pub snapshots_received: u64,
    /// Snapshots the server sent between the first and the newest one received, by their
    /// sequence numbers (`snapshots_received / snapshots_expected` is the delivery ratio).
    pub snapshots_expected: u64,
    /// Snapshots applied.
    pub snapshots_applied: u64,
    /// Snapshots dropped as older than one already applied.
    pub snapshots_stale: u64,
    /// Snapshots that could not be applied (undecodable, lost baseline).
    pub snapshots_undecodable: u64,
    /// Bytes received (datagrams and control stream).
    pub bytes_in: u64,
    /// Bytes sent (datagrams and control stream).
    pub bytes_out: u64,
    /// Input datagrams sent.
    pub datagrams_out: u64,
    /// Input datagrams dropped because the send queue was full.
    pub datagrams_dropped: u64,
    /// Prediction corrections.
    pub corrections: u64,
    /// QUIC's smoothed round-trip time of the path, microseconds.
    pub path_rtt_us: u64,
    /// QUIC packets declared lost / QUIC packets sent (0 before anything was sent).
    pub packet_loss_ratio: f64,
    /// UDP bytes received, QUIC overhead and retransmissions included.
    pub udp_bytes_in: u64,
    /// UDP bytes sent, QUIC overhead and retransmissions included.
    pub udp_bytes_out: u64,
}

/// The local character (`mmo_client_local_state`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct mmo_local_state {
    /// The controlled entity.
    pub entity_id: u32,
    /// The predicted simulation state after the newest input.
    pub predicted: mmo_character_state,
    /// Where to draw the character: predicted position plus the smoothed correction,
    /// metres.
    pub render_position_m: mmo_vec3,
    /// The smoothed correction offset still being decayed, metres.
    pub visual_offset_m: mmo_vec3,
}

/// Where the connection is (internal).
enum Conn {
    Idle,
    /// The connect task runs on the runtime; its result arrives on `result`.
    Connecting {
        result: oneshot::Receiver<Result<NetClient, String>>,
        task: tokio::task::JoinHandle<()>,
    },
    Connected(Box<NetClient>),
    /// The close task runs; `event` (the `DISCONNECTED` one) is queued when it is done.
    Closing {
        done: oneshot::Receiver<()>,
        event: (mmo_client_event, String),
    },
    Closed,
}

impl Conn {
    fn name(&self) -> &'static str {
        match self {
            Conn::Idle => "idle (not connected yet)",
            Conn::Connecting { .. } => "connecting",
            Conn::Connected(net) => match net.state() {
                ClientState::LoggingIn => "logging in",
                ClientState::Active => "active",
                ClientState::Closed => "closing",
            },
            Conn::Closing { .. } => "closing",
            Conn::Closed => "closed",
        }
    }
}

/// Opaque client session handle. See the module docs.
pub struct mmo_client {
    /// Invariant: `Some` until the handle is dropped.
    runtime: Option<tokio::runtime::Runtime>,
    settings: ClientSettings,
    conn: Conn,
    /// Events converted and waiting for `mmo_client_poll_event`, oldest first.
    queue: VecDeque<(mmo_client_event, String)>,
    /// Text of the event most recently returned by `mmo_client_poll_event`.
    text: String,
    /// The newest stats read from the session (kept after it ends).
    stats: mmo_connection_stats,
    /// `mmo_client_resume`'s connection, being made on the runtime.
    resuming: Option<oneshot::Receiver<Result<ResumeConnection, String>>>,
}

impl mmo_client {
    fn runtime(&self) -> Result<&tokio::runtime::Runtime, FfiError> {
        self.runtime
            .as_ref()
            .ok_or_else(|| FfiError::new(mmo_result::InvalidState, "the client is shutting down"))
    }

    /// The connected session, or `MMO_RESULT_INVALID_STATE` naming the state.
    fn net(&mut self, what: &str) -> Result<&mut NetClient, FfiError> {
        let state = self.conn.name();
        match &mut self.conn {
            Conn::Connected(net) => Ok(net),
            _ => Err(FfiError::new(
                mmo_result::InvalidState,
                format!("{what} needs a connected client; the client is {state}"),
            )),
        }
    }

    fn state(&self) -> mmo_connection_state {
        match &self.conn {
            Conn::Idle => mmo_connection_state::Idle,
            Conn::Connecting { .. } => mmo_connection_state::Connecting,
            Conn::Connected(net) => match net.state() {
                ClientState::LoggingIn => mmo_connection_state::LoggingIn,
                ClientState::Active => mmo_connection_state::Active,
                ClientState::Closed => mmo_connection_state::Closing,
            },
            Conn::Closing { .. } => mmo_connection_state::Closing,
            Conn::Closed => mmo_connection_state::Closed,
        }
    }

    /// Moves the connection forward without waiting: picks up the connect result, feeds
    /// received bytes to the session and queues its events, or finishes a close.
    fn pump(&mut self) {
        match &mut self.conn {
            Conn::Idle | Conn::Closed => {}
            Conn::Connecting { result, .. } => match result.try_recv() {
                Ok(Ok(net)) => {
                    self.conn = Conn::Connected(Box::new(net));
                    self.pump_connected();
                }
                Ok(Err(message)) => {
                    self.queue.push_back(event::disconnected(
                        mmo_disconnect_reason::ConnectFailed,
                        message,
                    ));
                    self.conn = Conn::Closed;
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
                Err(oneshot::error::TryRecvError::Closed) => {
                    self.queue.push_back(event::disconnected(
                        mmo_disconnect_reason::ConnectFailed,
                        "the connect task ended without a result".to_owned(),
                    ));
                    self.conn = Conn::Closed;
                }
            },
            Conn::Connected(_) => self.pump_connected(),
            Conn::Closing { done, .. } => {
                let finished = !matches!(done.try_recv(), Err(oneshot::error::TryRecvError::Empty));
                if finished
                    && let Conn::Closing { event, .. } =
                        std::mem::replace(&mut self.conn, Conn::Closed)
                {
                    self.queue.push_back(event);
                }
            }
        }
    }

    fn pump_connected(&mut self) {
        let Some(runtime) = self.runtime.as_ref() else {
            return;
        };
        let Conn::Connected(net) = &mut self.conn else {
            return;
        };
        // Quinn calls made while pumping find the runtime they belong to.
        let _context = runtime.enter();
        if let Some(resuming) = &mut self.resuming {
            let made = match resuming.try_recv() {
                Ok(made) => Some(made),
                Err(oneshot::error::TryRecvError::Empty) => None,
                Err(oneshot::error::TryRecvError::Closed) => {
                    Some(Err("the resume task ended without a result".to_owned()))
                }
            };
            if made.is_some() {
                self.resuming = None;
            }
            // A session closed meanwhile (disconnect, a stalled stream) reports its own
            // reason below; the new connection is dropped.
            if let Some(made) = made.filter(|_| net.state() == ClientState::Active) {
                let adopted = made.and_then(|connection| {
                    net.adopt(connection)
                        .map_err(|e| format!("the session cannot resume: {e}"))
                });
                if let Err(message) = adopted {
                    // The old connection is failing and no other took the session: over.
                    net.session_mut().disconnect();
                    self.begin_close(event::disconnected(
                        mmo_disconnect_reason::ConnectFailed,
                        message,
                    ));
                    return;
                }
            }
        }
        net.pump();
        let mut ended = None;
        while let Some(e) = net.poll_event() {
            match e {
                ClientEvent::Disconnected { .. } => ended = Some(event::to_c(e)),
                other => self.queue.push_back(event::to_c(other)),
            }
        }
        self.stats = stats_of(net);
        if net.state() == ClientState::Closed {
            let ended = ended.unwrap_or_else(|| {
                // The session queues a `Disconnected` whenever it closes; this is a guard.
                event::disconnected(
                    mmo_disconnect_reason::ProtocolViolation,
                    "the session closed without a reason".to_owned(),
                )
            });
            self.begin_close(ended);
        }
    }

    /// Hands the connection to a close task on the runtime; `event` is queued when the
    /// close is done.
    fn begin_close(&mut self, event: (mmo_client_event, String)) {
        self.resuming = None;
        let Some(runtime) = self.runtime.as_ref() else {
            return;
        };
        let Conn::Connected(net) = std::mem::replace(&mut self.conn, Conn::Closed) else {
            return;
        };
        let (done_tx, done) = oneshot::channel();
        runtime.spawn(async move {
            net.disconnect(DISCONNECT_GRACE).await;
            let _ = done_tx.send(());
        });
        self.conn = Conn::Closing { done, event };
    }
}

impl Drop for mmo_client {
    /// Leaves best-effort: the disconnect frame and the QUIC close are sent within
    /// [`FREE_WAIT`] (the caller's thread waits that long at most), then the runtime stops.
    /// Inside another tokio runtime (a Rust caller) waiting is not allowed: the close is
    /// handed to the runtime's background shutdown and may not go out, and the server then
    /// notices the departure by its idle timeout.
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let connected = match std::mem::replace(&mut self.conn, Conn::Closed) {
            Conn::Connected(net) => Some(net),
            _ => None,
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            if let Some(net) = connected {
                runtime.spawn(async move { net.disconnect(DISCONNECT_GRACE).await });
            }
            runtime.shutdown_background();
            return;
        }
        if let Some(net) = connected {
            // `disconnect` queues the frame and the CONNECTION_CLOSE at once; the wait
            // lets the endpoint driver put them on the wire.
            runtime.block_on(async move {
                let _ = tokio::time::timeout(FREE_WAIT, net.disconnect(FREE_WAIT)).await;
            });
        }
        runtime.shutdown_timeout(FREE_WAIT);
    }
}

fn stats_of(net: &NetClient) -> mmo_connection_stats {
    let s = net.session().stats();
    let quic = net.stats();
    mmo_connection_stats {
        rtt_us: s.rtt_us,
        snapshots_received: s.snapshots_received,
        snapshots_expected: s.snapshots_expected,
        snapshots_applied: s.snapshots_applied,
        snapshots_stale: s.snapshots_stale,
        snapshots_undecodable: s.snapshots_undecodable,
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        datagrams_out: s.datagrams_out,
        datagrams_dropped: quic.datagrams_dropped,
        corrections: s.corrections,
        path_rtt_us: quic.rtt_us,
        packet_loss_ratio: quic.loss_ratio,
        udp_bytes_in: quic.udp_bytes_in,
        udp_bytes_out: quic.udp_bytes_out,
    }
}

/// The one call of `NetClient::connect` (the trust argument changes in one place here).
async fn connect_net(
    server: SocketAddr,
    server_name: &str,
    pin: Fingerprint,
    config: ClientConfig,
    token: &str,
) -> Result<NetClient, NetError> {
    NetClient::connect(
        server,
        server_name,
        mmo_net::tls::ServerTrust::Pinned(pin),
        config,
        token,
    )
    .await
}

/// Resolves `host` and connects; the error text names the step that failed.
async fn connect_task(
    host: String,
    port: u16,
    settings: ClientSettings,
    token: String,
) -> Result<NetClient, String> {
    let server = resolve(&host, port).await?;
    let server_name = settings.server_name.unwrap_or(host);
    connect_net(server, &server_name, settings.pin, settings.session, &token)
        .await
        .map_err(|e| format!("could not connect to {server}: {e}"))
}

/// Resolves `host` (a name or an IP literal); the error text names it.
async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| format!("host {host:?} resolved to no address")),
        Ok(Err(e)) => Err(format!("host {host:?} did not resolve: {e}")),
        Err(_) => Err(format!("host {host:?} did not resolve in time")),
    }
}

/// Resolves `host` and makes the connection a resumption moves the session onto; the
/// error text names the step that failed.
async fn resume_task(
    dialer: ResumeDialer,
    host: String,
    port: u16,
    settings: ClientSettings,
) -> Result<ResumeConnection, String> {
    let server = resolve(&host, port).await?;
    let server_name = settings.server_name.unwrap_or(host);
    dialer
        .dial(
            server,
            &server_name,
            mmo_net::tls::ServerTrust::Pinned(settings.pin),
            &ConnectOptions::default(),
        )
        .await
        .map_err(|e| format!("could not connect to {server} to resume: {e}"))
}

/// Refuses an empty host or port 0 (`mmo_client_connect`, `mmo_client_resume`).
fn check_address(host: &str, port: u16) -> Result<(), FfiError> {
    if host.is_empty() {
        return Err(FfiError::invalid("host", "is empty"));
    }
    if port == 0 {
        return Err(FfiError::invalid("port", "is 0"));
    }
    Ok(())
}

/// Reads a required NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string valid for the call.
unsafe fn arg_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, FfiError> {
    if ptr.is_null() {
        return Err(FfiError::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| FfiError::invalid(name, "is not valid UTF-8"))
}

/// Creates a client with `*config` (copied, strings included). Nothing is sent until
/// `mmo_client_connect`. On success `*out` receives a new handle owned by the caller: free
/// it with `mmo_client_free`.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_CONFIG` (missing or malformed
/// fingerprint, out-of-range field; the last error names it), `MMO_RESULT_SYSTEM_ERROR`
/// (the runtime's thread could not be started). Thread-safe (creates independent state).
///
/// # Safety
/// `config` must be NULL or readable, its string fields NULL or NUL-terminated; `out` NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_new(
    config: *const mmo_client_config,
    out: *mut *mut mmo_client,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or readable.
        let config = unsafe { boundary::in_ref(config, "config") }?;
        let out = Out::new(out, "out")?;
        // SAFETY: the string fields are NULL or NUL-terminated per the caller.
        let settings = unsafe { config.validate() }?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mmo-client")
            .enable_all()
            .build()
            .map_err(|e| {
                FfiError::new(
                    mmo_result::SystemError,
                    format!("the client's runtime could not start: {e}"),
                )
            })?;
        let client = mmo_client {
            runtime: Some(runtime),
            settings,
            conn: Conn::Idle,
            queue: VecDeque::new(),
            text: String::new(),
            stats: mmo_connection_stats::default(),
            resuming: None,
        };
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(boundary::into_handle(client)) };
        Ok(())
    })
}

/// Frees a client. NULL is a no-op. A connected client sends its disconnect frame
/// best-effort (call `mmo_client_disconnect` and wait for the `DISCONNECTED` event for a
/// clean leave); the runtime is given at most 20 ms to stop, then abandoned (its threads
/// exit on their own). The handle must not be used afterwards.
///
/// # Safety
/// `client` must be NULL or a live handle from `mmo_client_new`, not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_free(client: *mut mmo_client) {
    boundary::guard_value((), || {
        // SAFETY: per the caller, NULL or a live handle from `mmo_client_new`.
        unsafe { boundary::free_handle(client) }
    });
}

/// Starts connecting to `host`:`port` (a name or an IP literal) and logging in with
/// `token`, and returns at once: `MMO_RESULT_OK` means started. The outcome comes from
/// `mmo_client_poll_event`: `WELCOME`, or `DISCONNECTED` with reason `CONNECT_FAILED`
/// (resolution, handshake, certificate pin), `BAD_TOKEN`, etc. and a message.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ARGUMENT` (empty host, port 0,
/// strings not UTF-8, token longer than 4096 bytes), `MMO_RESULT_INVALID_STATE` (connect was
/// already called on this handle: one handle is one session). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `host` and `token` NULL or NUL-terminated
/// strings (copied, not retained).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_connect(
    client: *mut mmo_client,
    host: *const c_char,
    port: u16,
    token: *const c_char,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        // SAFETY: per the caller, NULL or NUL-terminated.
        let host = unsafe { arg_str(host, "host") }?;
        // SAFETY: per the caller, NULL or NUL-terminated.
        let token = unsafe { arg_str(token, "token") }?;
        check_address(host, port)?;
        if token.len() > control::MAX_TOKEN_LEN_BYTES {
            return Err(FfiError::invalid(
                "token",
                format!(
                    "is {} bytes, at most {}",
                    token.len(),
                    control::MAX_TOKEN_LEN_BYTES
                ),
            ));
        }
        if !matches!(c.conn, Conn::Idle) {
            return Err(FfiError::new(
                mmo_result::InvalidState,
                format!(
                    "connect was already called (the client is {}); one handle is one \
                     session: make a new one to reconnect",
                    c.conn.name()
                ),
            ));
        }
        let (result_tx, result) = oneshot::channel();
        let work = connect_task(host.to_owned(), port, c.settings.clone(), token.to_owned());
        let task = c.runtime()?.spawn(async move {
            let _ = result_tx.send(work.await);
        });
        c.conn = Conn::Connecting { result, task };
        Ok(())
    })
}

/// Returns the next event: `*out_has_event` = 1 and `*out` written, or `*out_has_event` = 0
/// (and `*out` untouched) when there is none. Whenever no event is queued the call first
/// pumps the connection (picks up the connect result, feeds received datagrams and control
/// bytes to the session, checks its idle timeout, sends what it queued), so call it once per
/// frame in a loop until it reports no event. Never waits.
///
/// The text of a chat, disconnected or refused gameplay result event is read with
/// `mmo_client_event_text` until the next call of this function. Polling an idle client (before connect) reports no event.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`. Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out` and `out_has_event` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_poll_event(
    client: *mut mmo_client,
    out: *mut mmo_client_event,
    out_has_event: *mut u8,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        let out = Out::new(out, "out")?;
        let out_has_event = Out::new(out_has_event, "out_has_event")?;
        if c.queue.is_empty() {
            c.pump();
        }
        match c.queue.pop_front() {
            Some((event, text)) => {
                c.text = text;
                // SAFETY: valid per the caller.
                unsafe { out.write(event) };
                // SAFETY: valid per the caller.
                unsafe { out_has_event.write(1) };
            }
            None => {
                c.text.clear();
                // SAFETY: valid per the caller.
                unsafe { out_has_event.write(0) };
            }
        }
        Ok(())
    })
}

/// Writes the text of the event most recently returned by `mmo_client_poll_event` (a chat
/// line, a disconnect message or a refusal `"<kind>: <message>"`; empty for other kinds or
/// when it returned none) into `buf`
/// as NUL-terminated UTF-8. Valid until the next `mmo_client_poll_event`.
///
/// `*out_len` receives the length without the NUL, also on `MMO_RESULT_BUFFER_TOO_SMALL`
/// (then the buffer needs `*out_len + 1` bytes and is untouched); `buf` may be NULL when
/// `len` is 0. `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `buf` NULL or writable for `len` bytes;
/// `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_event_text(
    client: *const mmo_client,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let c = unsafe { boundary::in_ref(client, "client") }?;
        // SAFETY: per the caller, `buf`/`len` and `out_len` are valid.
        unsafe { boundary::write_str(&c.text, buf, len, out_len) }
    })
}

/// Runs one predicted simulation tick with `*input` (applied to the local character at
/// once) and sends it with the unacknowledged inputs before it. Call once per simulation
/// tick (the server's rate, 30 Hz by default), after the `WELCOME` event.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ARGUMENT` (an input the server
/// would reject: axis -128, vector longer than 1, unknown button bits),
/// `MMO_RESULT_INVALID_STATE` (not logged in: before the welcome or after the session
/// ended). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `input` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_send_input(
    client: *mut mmo_client,
    input: *const mmo_move_input,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        // SAFETY: per the caller, NULL or readable.
        let input = unsafe { boundary::in_ref(input, "input") }?;
        let input = (*input).into();
        validate_input(&input).map_err(|r| FfiError::invalid("input", r))?;
        let net = c.net("sending input")?;
        if net.send_input(input).is_none() {
            return Err(FfiError::new(
                mmo_result::InvalidState,
                "sending input needs a logged-in client (wait for the WELCOME event)",
            ));
        }
        Ok(())
    })
}

/// Sends a chat line on `channel` (an `mmo_chat_channel` value); the text is at most 512
/// bytes of UTF-8. The same as `mmo_client_chat_send` without a recipient (so not for
/// whispers).
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ENUM` (channel),
/// `MMO_RESULT_INVALID_ARGUMENT` (text not UTF-8 or too long, a whisper),
/// `MMO_RESULT_INVALID_STATE` (not logged in). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `text` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_send_chat(
    client: *mut mmo_client,
    channel: u32,
    text: *const c_char,
) -> mmo_result {
    // SAFETY: forwarded under the same contract (a NULL recipient).
    unsafe { chat::mmo_client_chat_send(client, channel, std::ptr::null(), text) }
}

/// Decays the local character's visual correction by a rendered frame of `dt_s` seconds
/// (call once per rendered frame; visual only). Does nothing before the welcome.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ARGUMENT` (`dt_s` negative or
/// non-finite), `MMO_RESULT_INVALID_STATE` (not connected). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_advance_visual(
    client: *mut mmo_client,
    dt_s: f32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        if boundary::finite(dt_s, "dt_s")? < 0.0 {
            return Err(FfiError::invalid("dt_s", "must be >= 0"));
        }
        c.net("advancing the visual correction")?
            .session_mut()
            .advance_visual(dt_s);
        Ok(())
    })
}

/// Writes the local character (predicted state, render position with the smoothed
/// correction) to `*out`.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_STATE` (before the welcome or
/// after the session ended). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_local_state(
    client: *mut mmo_client,
    out: *mut mmo_local_state,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        let out = Out::new(out, "out")?;
        let session = c.net("reading the local character")?.session();
        let (Some(predictor), Some(entity)) = (session.predictor(), session.entity_id()) else {
            return Err(FfiError::new(
                mmo_result::InvalidState,
                "the local character exists after the WELCOME event",
            ));
        };
        let value = mmo_local_state {
            entity_id: entity.0,
            predicted: predictor.predicted().into(),
            render_position_m: predictor.render_position_m().into(),
            visual_offset_m: predictor.visual_offset_m().into(),
        };
        // SAFETY: valid per the caller.
        unsafe { out.write(value) };
        Ok(())
    })
}

/// Writes the number of remote entities in view to `*out` (0 when not connected).
///
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_entity_count(
    client: *const mmo_client,
    out: *mut usize,
) -> mmo_result {
    // SAFETY: per the caller, `client` is NULL or a live handle, `out` NULL or writable.
    unsafe {
        boundary::getter(client, "client", out, |c| match &c.conn {
            Conn::Connected(net) => net.session().remote_ids().count(),
            _ => 0,
        })
    }
}

/// Copies the ids of the remote entities in view (ascending) into `out_ids`, at most
/// `capacity`; `*out_count` receives the number in view. `out_ids` may be NULL when
/// `capacity` is 0.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_BUFFER_TOO_SMALL` (more in view than
/// `capacity`; `*out_count` is still written with the number needed). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out_ids` NULL or writable for `capacity`
/// elements; `out_count` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_entity_ids(
    client: *const mmo_client,
    out_ids: *mut u32,
    capacity: usize,
    out_count: *mut usize,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let c = unsafe { boundary::in_ref(client, "client") }?;
        let out_ids = OutSlice::new(out_ids, capacity, "out_ids")?;
        let out_count = Out::new(out_count, "out_count")?;
        let ids: Vec<u32> = match &c.conn {
            Conn::Connected(net) => net.session().remote_ids().map(|id| id.0).collect(),
            _ => Vec::new(),
        };
        // SAFETY: valid per the caller.
        unsafe { out_count.write(ids.len()) };
        // SAFETY: valid for `capacity` elements per the caller.
        unsafe { out_ids.write(&ids) }
    })
}

/// Writes where remote entity `entity_id` should be drawn now (interpolated in the past by
/// the adaptive delay, extrapolated when late) to `*out`, advancing its render clock to the
/// client's current time. Call once per rendered frame per entity.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_NOT_FOUND` (not in view),
/// `MMO_RESULT_EMPTY` (no state yet), `MMO_RESULT_INVALID_STATE` (not connected). Game
/// thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_sample_entity(
    client: *mut mmo_client,
    entity_id: u32,
    out: *mut mmo_interp_output,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        let out = Out::new(out, "out")?;
        let net = c.net("sampling an entity")?;
        let id = EntityId(entity_id);
        if net.session().remote_archetype(id).is_none() {
            return Err(FfiError::new(
                mmo_result::NotFound,
                format!("entity {entity_id} is not in view"),
            ));
        }
        let now_us = net.now_us();
        let sampled = net.session_mut().sample_entity(id, now_us).ok_or_else(|| {
            FfiError::new(
                mmo_result::Empty,
                format!("entity {entity_id} has no state yet"),
            )
        })?;
        // SAFETY: valid per the caller.
        unsafe { out.write(sampled.into()) };
        Ok(())
    })
}

/// Writes the connection's counters to `*out` (zeros before the connection; the last
/// values after it ended).
///
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_stats(
    client: *const mmo_client,
    out: *mut mmo_connection_stats,
) -> mmo_result {
    // SAFETY: per the caller, `client` is NULL or a live handle, `out` NULL or writable.
    unsafe {
        boundary::getter(client, "client", out, |c| match &c.conn {
            Conn::Connected(net) => stats_of(net),
            _ => c.stats,
        })
    }
}

/// Writes where the client is to `*out`.
///
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_connection_state(
    client: *const mmo_client,
    out: *mut mmo_connection_state,
) -> mmo_result {
    // SAFETY: per the caller, `client` is NULL or a live handle, `out` NULL or writable.
    unsafe { boundary::getter(client, "client", out, mmo_client::state) }
}

/// Starts continuing the session over a new connection to `host`:`port` (another gateway
/// of the fleet, or the same address behind a load balancer) and returns at once:
/// `MMO_RESULT_OK` means started. Call it when the connection seems lost: nothing at all
/// came over it for about a second (`mmo_client_server_silent_ms`). Calling it again
/// while the first resumption waits for its answer tries another connection within the
/// first attempt's 5 s. The session, its entity and its prediction stay; keep polling
/// and sending inputs meanwhile. The outcome comes from `mmo_client_poll_event`:
/// `RESUMED`, or `DISCONNECTED` (reason `CONNECT_FAILED` when the new connection could not
/// be made, `SERVICE_UNAVAILABLE` or `TIMEOUT` when no server took the session over; log
/// in again with a new handle). The new server is trusted by the config's pinned
/// fingerprint (a fleet's gateways share one certificate).
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ARGUMENT` (empty host, port 0,
/// not UTF-8), `MMO_RESULT_INVALID_STATE` (not an active session; a resume already being
/// made; or the server gave no resumption token: a single server gives none, the last
/// error says which). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `host` NULL or a NUL-terminated string (copied,
/// not retained).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_resume(
    client: *mut mmo_client,
    host: *const c_char,
    port: u16,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        // SAFETY: per the caller, NULL or NUL-terminated.
        let host = unsafe { arg_str(host, "host") }?;
        check_address(host, port)?;
        if c.resuming.is_some() {
            return Err(FfiError::new(
                mmo_result::InvalidState,
                "a resume is being made already",
            ));
        }
        let settings = c.settings.clone();
        let host = host.to_owned();
        let runtime = c.runtime()?.handle().clone();
        // Checked now, so the caller hears at once that the session cannot resume.
        let dialer = c
            .net("resume")?
            .resume_dialer()
            .map_err(|e| FfiError::new(mmo_result::InvalidState, e.to_string()))?;
        let (result_tx, result) = oneshot::channel();
        runtime.spawn(async move {
            let _ = result_tx.send(resume_task(dialer, host, port, settings).await);
        });
        c.resuming = Some(result);
        Ok(())
    })
}

/// Writes to `*out_ms` how long nothing at all came over the connection, milliseconds (0
/// before a connection): no snapshot, no control bytes, not even QUIC's acknowledgements
/// of the inputs sent every tick. About a second means the gateway or the path is gone
/// (`mmo_client_resume`); a gateway whose zone process died still acknowledges, and
/// restarts the session itself (`REJOINED`).
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`. Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out_ms` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_server_silent_ms(
    client: *const mmo_client,
    out_ms: *mut u64,
) -> mmo_result {
    // SAFETY: per the caller, `client` is NULL or a live handle, `out_ms` NULL or writable.
    unsafe {
        boundary::getter(client, "client", out_ms, |c| match &c.conn {
            Conn::Connected(net) => {
                u64::try_from(net.server_silent_for().as_millis()).unwrap_or(u64::MAX)
            }
            _ => 0,
        })
    }
}

/// Starts leaving cleanly and returns at once: the disconnect frame is sent and the
/// connection closed in the background; the `DISCONNECTED` event (reason `CLIENT_QUIT`)
/// follows from `mmo_client_poll_event` once it is closed (within 2 s). While connecting,
/// the attempt is abandoned and the event follows at once. Calling it again, or after the
/// session ended, does nothing.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_STATE` (connect was never
/// called). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_disconnect(client: *mut mmo_client) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        match &mut c.conn {
            Conn::Idle => Err(FfiError::new(
                mmo_result::InvalidState,
                "disconnect needs a connect first (the client is idle)",
            )),
            Conn::Connecting { task, .. } => {
                task.abort();
                c.queue.push_back(event::disconnected(
                    mmo_disconnect_reason::ClientQuit,
                    "disconnected by the player before the connection was made".to_owned(),
                ));
                c.conn = Conn::Closed;
                Ok(())
            }
            Conn::Connected(net) => {
                net.session_mut().disconnect();
                c.resuming = None;
                c.pump_connected();
                Ok(())
            }
            Conn::Closing { .. } | Conn::Closed => Ok(()),
        }
    })
}
