//! The server's state for one client connection: login handshake on the control stream,
//! input datagrams through validation into the input queue, and snapshot datagrams built
//! against the baselines the client acknowledged.
//!
//! It owns no socket and no clock. The zone (see [`crate::zone`]) calls it once per tick to
//! take the inputs to simulate and to send a snapshot; the driver feeds it received bytes and
//! drains [`ServerConnection::poll_transmit`] and [`ServerConnection::poll_event`].
//!
//! Wire data is never trusted: an undecodable control frame or datagram closes the
//! connection with [`DisconnectReason::ProtocolViolation`] (over QUIC, datagrams are
//! authenticated, so only a broken or hostile client sends one); a rejected input is dropped,
//! counted by kind and reported as [`ServerEvent::InputRejected`].

use std::collections::VecDeque;

use crate::codec::CodecError;
use crate::codec::ack::ReceiveTracker;
use crate::codec::input_codec::decode_input_payload;
use crate::codec::packet::{PacketHeader, PacketKind};
use crate::codec::snapshot::{EncodeReport, RecordBase, RecordSource, SnapshotCodec, SnapshotIn};
use crate::control::{
    self, ChatChannel, ClientControl, DisconnectReason, FrameDecoder, ServerControl, WelcomeTerms,
};
use crate::entity::{CharacterState, EntityId};
use crate::gameplay::messages::{AbilityRequest, InventoryRequest};
use crate::input::MoveInput;
use crate::time::{Tick, TickRate};
use crate::validation::{
    InputRateConfig, InputRateLimiter, Rejection, RejectionCounts, SequenceGuard,
    SequenceGuardConfig, SequenceVerdict, validate_input,
};

use super::Transmit;
use super::input_queue::{InputQueue, InputQueueConfig, Inserted};
use super::snapshot_stream::{EncodeBuffers, SnapshotStream};

/// Tuning of a [`ServerConnection`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerConnectionConfig {
    /// Input queue tuning.
    pub input_queue: InputQueueConfig,
    /// Input-rate limit (speed hacks by time dilation). Its tick rate must be the zone's.
    pub input_rate: InputRateConfig,
    /// Input sequence monotonicity.
    pub sequence: SequenceGuardConfig,
    /// Close the connection when nothing was heard for this long.
    pub idle_timeout_us: u64,
    /// Close the connection when no login arrived within this long of its creation.
    pub login_timeout_us: u64,
    /// Close the connection with `ServiceUnavailable` when its login, once received, was
    /// neither accepted nor refused within this long: the server's own work (token check,
    /// character load, a duplicate login's wait) has a deadline of its own, longer than the
    /// client's, so a slow database under a login burst does not turn logins into timeouts.
    /// Default 9 s: under the reference client's 10 s idle timeout (it hears nothing while it
    /// waits), so the client learns why instead of timing out itself.
    pub login_pending_timeout_us: u64,
}

impl Default for ServerConnectionConfig {
    fn default() -> Self {
        ServerConnectionConfig {
            input_queue: InputQueueConfig::default(),
            input_rate: InputRateConfig::default(),
            sequence: SequenceGuardConfig::default(),
            idle_timeout_us: 10_000_000,
            login_timeout_us: 5_000_000,
            login_pending_timeout_us: 9_000_000,
        }
    }
}

/// Something the zone or the driver must react to.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerEvent {
    /// The client asks to log in with `token` (its protocol version already matched). Answer
    /// with [`ServerConnection::accept_login`] or [`ServerConnection::close`].
    LoginRequested {
        /// The session token to verify.
        token: String,
    },
    /// The client said something (not yet checked against the chat rules:
    /// [`crate::chat`]).
    Chat {
        /// Where.
        channel: ChatChannel,
        /// The whisper's recipient (within the name length limit).
        to: Option<String>,
        /// What (within the length limit).
        text: String,
    },
    /// The client asks to receive `channel` again.
    ChatJoin(ChatChannel),
    /// The client asks to stop receiving `channel`.
    ChatLeave(ChatChannel),
    /// An input was refused by validation (it was dropped and counted).
    InputRejected(Rejection),
    /// The client asks to use an ability (the zone answers; the driver never sees it).
    AbilityRequested(AbilityRequest),
    /// The client asks to stop its cast (handled by the zone).
    CastCancelRequested,
    /// The client asks for an inventory operation (handled by the zone).
    InventoryRequested(InventoryRequest),
    /// The zone refused a gameplay request or an input as a likely cheat: for the
    /// `validation_rejections_total{kind}` metric and a structured log line. Emitted by
    /// [`crate::zone::Zone`], not by the connection.
    Refused {
        /// Stable kind label (`ability_cooldown`, `inventory_bad_slot`, `input_rate`...).
        kind: &'static str,
        /// What was wrong.
        detail: String,
        /// Whether this refusal added a strike (a likely cheat) or was an honest race
        /// (a cooldown within the grace, a target that left, a full bag).
        struck: bool,
        /// The player's strikes after this one.
        strikes: u32,
    },
    /// The connection is closed; the driver should close the transport after flushing.
    Closed {
        /// Why.
        reason: DisconnectReason,
    },
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConnectionState {
    /// Waiting for the client's login message.
    AwaitingLogin,
    /// Login sent to the driver for verification.
    LoginPending,
    /// Logged in and controlling `entity`.
    Active {
        /// The controlled entity.
        entity: EntityId,
    },
    /// Closed for `reason`; nothing more is accepted.
    Closed {
        /// Why.
        reason: DisconnectReason,
    },
}

/// Most control bytes a rejoining session buffers before its character is loaded (the
/// client plays on meanwhile); beyond, the session is closed as a protocol violation.
pub const MAX_REJOIN_BACKLOG_BYTES: usize = 64 * 1024;

/// Where a restarted session is in its rejoin (`WIRE_FORMAT.md`, 8.9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RejoinPhase {
    /// A session opened by the client's login (the usual case), or a rejoin finished.
    #[default]
    None,
    /// Created by [`ServerConnection::rejoining`]: its character is loading; accepting it
    /// sends `Rejoined` instead of `Welcome`. Datagrams are ignored.
    Loading,
    /// `Rejoined` sent, `RejoinAccepted` not received: the client's datagrams still belong
    /// to the session that ended (their acknowledgements name its snapshots, their inputs
    /// were predicted from its state), so they are ignored, and no snapshot is sent.
    AwaitingClient,
    /// `RejoinAccepted` received: input datagrams whose header `seq` is at or after
    /// `first_datagram_seq` are the client's after its reset; older ones (overtaken on the
    /// way) are still ignored, until a datagram [`REJOIN_REORDER_WINDOW`] past it ends the
    /// rejoin.
    Reset {
        /// The header `seq` of the client's first input datagram after its reset.
        first_datagram_seq: u16,
    },
}

/// How far (in input datagram seqs) past its first datagram after a reset a rejoined
/// client's datagrams must be before the rejoin ends ([`RejoinPhase::Reset`]): older ones
/// cannot be on their way any more.
pub const REJOIN_REORDER_WINDOW: u16 = 1024;

/// Counters of one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnectionStats {
    /// Datagrams received (valid or not).
    pub datagrams_in: u64,
    /// Bytes received in datagrams and on the stream.
    pub bytes_in: u64,
    /// Bytes queued for sending in datagrams and on the stream.
    pub bytes_out: u64,
    /// Snapshots sent.
    pub snapshots_sent: u64,
    /// Datagrams ignored because they arrived before login completed, or (a rejoined
    /// session) were sent before the client's reset.
    pub datagrams_before_login: u64,
    /// Inputs dropped because the queue was full.
    pub inputs_overflowed: u64,
    /// Inputs never received, skipped over after a bounded wait.
    pub inputs_skipped: u64,
    /// Extra inputs taken in a tick to drain a standing backlog (one per drain; see
    /// [`crate::session::input_queue`]).
    pub inputs_drained: u64,
    /// Ticks of the active session that took no input (the character stood still).
    pub input_starved_ticks: u64,
}

/// One client connection, server side. See the module docs.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ServerConnection {
    config: ServerConnectionConfig,
    state: ConnectionState,
    control: FrameDecoder,
    transmits: VecDeque<Transmit>,
    /// Not carried by a serialized transfer: the zone drains a connection's events after
    /// every call into it (see `Zone::take_player`).
    #[serde(skip)]
    events: VecDeque<ServerEvent>,
    /// Tracks the client's input datagram seqs, to acknowledge them in snapshot headers.
    input_datagrams: ReceiveTracker,
    /// Snapshot sequence, baselines and the acks waiting for the replication phase.
    snapshots: SnapshotStream,
    inputs: InputQueue,
    rate: InputRateLimiter,
    sequence: SequenceGuard,
    created_us: u64,
    last_heard_us: u64,
    /// When the login arrived (`LoginPending` since).
    login_requested_us: u64,
    rejections: RejectionCounts,
    stats: ConnectionStats,
    /// A session restarted from the last save by another zone process.
    rejoin: RejoinPhase,
    /// Control frames of the client decoded: since the `Login` (frame 0), or since the
    /// `RejoinAccepted` (frame 0) after a rejoin. A resumption's `Resumed` carries it.
    frames_in: u64,
}

impl ServerConnection {
    /// A new connection created at `now_us`, waiting for the client's login.
    ///
    /// Fails with a message naming the bad field when the configuration is invalid.
    pub fn new(now_us: u64, config: ServerConnectionConfig) -> Result<Self, String> {
        let rate = InputRateLimiter::new(config.input_rate).map_err(|e| e.to_string())?;
        let sequence = SequenceGuard::new(config.sequence).map_err(|e| e.to_string())?;
        if config.input_queue.capacity == 0 || config.input_queue.max_per_tick == 0 {
            return Err(
                "input_queue.capacity and input_queue.max_per_tick must be at least 1".to_owned(),
            );
        }
        Ok(ServerConnection {
            config,
            state: ConnectionState::AwaitingLogin,
            control: FrameDecoder::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            input_datagrams: ReceiveTracker::new(),
            snapshots: SnapshotStream::new(),
            inputs: InputQueue::new(config.input_queue),
            rate,
            sequence,
            created_us: now_us,
            last_heard_us: now_us,
            login_requested_us: now_us,
            rejections: RejectionCounts::default(),
            stats: ConnectionStats::default(),
            rejoin: RejoinPhase::None,
            frames_in: 0,
        })
    }

    /// A connection created at `now_us` for a session another zone process ran until it
    /// stopped: the client logged in there, so no `Login` is awaited. The login is pending
    /// from now on (the driver loads the character and calls
    /// [`ServerConnection::accept_login`], which then sends `Rejoined`).
    ///
    /// Fails with a message naming the bad field when the configuration is invalid.
    pub fn rejoining(now_us: u64, config: ServerConnectionConfig) -> Result<Self, String> {
        let mut connection = ServerConnection::new(now_us, config)?;
        connection.state = ConnectionState::LoginPending;
        connection.rejoin = RejoinPhase::Loading;
        Ok(connection)
    }

    /// Where the connection is in a rejoin ([`RejoinPhase::None`] for a usual session).
    #[must_use]
    pub fn rejoin_phase(&self) -> RejoinPhase {
        self.rejoin
    }

    /// True while no snapshot may be sent: a rejoined client has not said yet that it
    /// forgot the ended session's snapshots ([`RejoinPhase::AwaitingClient`]).
    #[must_use]
    pub fn holds_snapshots(&self) -> bool {
        matches!(
            self.rejoin,
            RejoinPhase::Loading | RejoinPhase::AwaitingClient
        )
    }

    /// Whether an input datagram with header `seq` belongs to the session (not to the one a
    /// rejoin replaced); ends the rejoin once the client is far enough past its reset.
    fn datagram_is_current(&mut self, seq: u16) -> bool {
        match self.rejoin {
            RejoinPhase::None => true,
            RejoinPhase::Loading | RejoinPhase::AwaitingClient => false,
            RejoinPhase::Reset { first_datagram_seq } => {
                let past = seq.wrapping_sub(first_datagram_seq);
                if past >= 0x8000 {
                    return false;
                }
                if past >= REJOIN_REORDER_WINDOW {
                    self.rejoin = RejoinPhase::None;
                }
                true
            }
        }
    }

    /// Where the connection is.
    #[must_use]
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// The controlled entity, once logged in.
    #[must_use]
    pub fn entity(&self) -> Option<EntityId> {
        match self.state {
            ConnectionState::Active { entity } => Some(entity),
            _ => None,
        }
    }

    /// True once closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self.state, ConnectionState::Closed { .. })
    }

    /// Counters (the input queue's read from the queue itself).
    #[must_use]
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            inputs_skipped: self.inputs.skipped_inputs(),
            inputs_drained: self.inputs.drained_inputs(),
            input_starved_ticks: self.inputs.starved_ticks(),
            ..self.stats
        }
    }

    /// Validation rejections by kind.
    #[must_use]
    pub fn rejections(&self) -> &RejectionCounts {
        &self.rejections
    }

    /// Last input sequence simulated for this client.
    #[must_use]
    pub fn last_input_seq(&self) -> u32 {
        self.inputs.last_consumed_seq()
    }

    /// Bytes received on the control stream.
    pub fn handle_stream(&mut self, now_us: u64, bytes: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.last_heard_us = now_us;
        self.stats.bytes_in += bytes.len() as u64;
        self.control.push(bytes);
        if self.rejoin == RejoinPhase::Loading {
            // A rejoining client plays on: its requests are read once the session is back
            // (`accept_login`).
            if self.control.buffered_len_bytes() > MAX_REJOIN_BACKLOG_BYTES {
                self.close(
                    DisconnectReason::ProtocolViolation,
                    "control stream backlog while the session restarts",
                );
            }
            return;
        }
        self.read_control();
    }

    /// Handles every whole message the control stream buffered.
    fn read_control(&mut self) {
        loop {
            match self.control.next_message::<ClientControl>() {
                Ok(Some(message)) => {
                    // A rejoined client numbers its frames from its `RejoinAccepted`.
                    if !self.holds_snapshots() {
                        self.frames_in += 1;
                    }
                    self.on_control(message);
                }
                Ok(None) => break,
                Err(e) => {
                    self.close(
                        DisconnectReason::ProtocolViolation,
                        &format!("control stream: {e}"),
                    );
                    break;
                }
            }
            if self.is_closed() {
                break;
            }
        }
    }

    fn on_control(&mut self, message: ClientControl) {
        if let Err(e) = message.validate() {
            self.close(DisconnectReason::ProtocolViolation, &e.to_string());
            return;
        }
        match (self.state, message) {
            (
                ConnectionState::AwaitingLogin,
                ClientControl::Login {
                    protocol_version,
                    token,
                },
            ) => {
                if let Err(e) = control::check_protocol_version(protocol_version) {
                    self.close(DisconnectReason::ProtocolMismatch, &e.to_string());
                    return;
                }
                self.state = ConnectionState::LoginPending;
                // `handle_stream` set `last_heard_us` to this chunk's arrival.
                self.login_requested_us = self.last_heard_us;
                self.events.push_back(ServerEvent::LoginRequested { token });
            }
            (ConnectionState::Active { .. }, ClientControl::Chat { channel, to, text }) => {
                self.events
                    .push_back(ServerEvent::Chat { channel, to, text });
            }
            (ConnectionState::Active { .. }, ClientControl::ChatJoin(channel)) => {
                self.events.push_back(ServerEvent::ChatJoin(channel));
            }
            (ConnectionState::Active { .. }, ClientControl::ChatLeave(channel)) => {
                self.events.push_back(ServerEvent::ChatLeave(channel));
            }
            (ConnectionState::Active { .. }, ClientControl::UseAbility(request)) => {
                self.events
                    .push_back(ServerEvent::AbilityRequested(request));
            }
            (ConnectionState::Active { .. }, ClientControl::CancelCast) => {
                self.events.push_back(ServerEvent::CastCancelRequested);
            }
            (ConnectionState::Active { .. }, ClientControl::Inventory(request)) => {
                self.events
                    .push_back(ServerEvent::InventoryRequested(request));
            }
            (
                ConnectionState::Active { .. },
                ClientControl::RejoinAccepted { next_datagram_seq },
            ) if self.rejoin == RejoinPhase::AwaitingClient => {
                self.rejoin = RejoinPhase::Reset {
                    first_datagram_seq: next_datagram_seq,
                };
                // The client numbers its frames again from this one (frame 0).
                self.frames_in = 1;
            }
            (
                ConnectionState::AwaitingLogin,
                ClientControl::Resume {
                    protocol_version, ..
                },
            ) => {
                // A fleet's gateway takes a resumption before any session sees it: here it
                // reached a server that cannot continue the session.
                if let Err(e) = control::check_protocol_version(protocol_version) {
                    self.close(DisconnectReason::ProtocolMismatch, &e.to_string());
                } else {
                    self.close(
                        DisconnectReason::ServiceUnavailable,
                        "this server cannot resume the session: log in again",
                    );
                }
            }
            (_, ClientControl::Disconnect) => {
                self.close(DisconnectReason::ClientQuit, "client quit");
            }
            (state, message) => {
                let detail = format!("{} not allowed while {:?}", message_name(&message), state);
                self.close(DisconnectReason::ProtocolViolation, &detail);
            }
        }
    }

    /// The session continues over a new connection (a resumption, `WIRE_FORMAT.md` 8.10):
    /// the start of a client frame the lost connection delivered is forgotten (the client
    /// sends the frame again) and `Resumed` tells the client how many of its frames were
    /// taken. The driver feeds every control chunk that came over the lost connection
    /// first. Returns false, changing nothing, unless the session is active.
    pub fn resume(&mut self) -> bool {
        if !matches!(self.state, ConnectionState::Active { .. }) {
            return false;
        }
        self.control = FrameDecoder::new();
        self.send_control(&ServerControl::Resumed {
            received_frames: self.frames_in,
        });
        true
    }

    /// Accepts the pending login: the client controls `entity`, spawned as `spawn` at `tick`;
    /// the welcome carries `terms` (content hash, movement settings, world hash).
    /// Returns false, changing nothing, unless a login is pending: the connection may have
    /// closed while the token was being verified, which is a race, not a caller mistake.
    pub fn accept_login(
        &mut self,
        entity: EntityId,
        tick: Tick,
        rate: TickRate,
        spawn: CharacterState,
        terms: &WelcomeTerms,
    ) -> bool {
        if self.state != ConnectionState::LoginPending {
            return false;
        }
        self.state = ConnectionState::Active { entity };
        // The idle clock restarts at the welcome: the client sent nothing while it waited,
        // and a login answered late (up to `login_pending_timeout_us`) must still leave it a
        // whole idle timeout. `tick`'s start is on the driver's clock (tick 0 starts at 0).
        self.last_heard_us = self.last_heard_us.max(rate.tick_start_us(tick));
        if self.rejoin == RejoinPhase::Loading {
            self.rejoin = RejoinPhase::AwaitingClient;
            self.send_control(&ServerControl::Rejoined {
                entity_id: entity,
                tick,
                tick_rate_hz: rate.hz(),
                spawn,
                content_hash: terms.content_hash,
            });
            // What the client sent while its character loaded.
            self.read_control();
        } else {
            self.send_control(&ServerControl::Welcome {
                protocol_version: crate::PROTOCOL_VERSION,
                entity_id: entity,
                tick,
                tick_rate_hz: rate.hz(),
                spawn,
                content_hash: terms.content_hash,
                movement: terms.movement.clone(),
                world_hash: terms.world_hash,
            });
        }
        true
    }

    /// Sends a gameplay message (result, inventory, resources, combat events) to this
    /// client; ignored unless logged in.
    pub fn send_gameplay(&mut self, message: &ServerControl) {
        if matches!(self.state, ConnectionState::Active { .. }) {
            self.send_control(message);
        }
    }

    /// Sends a chat line to this client (ignored unless logged in); `from_entity` is
    /// `EntityId(0)` for a speaker outside this zone.
    pub fn send_chat(
        &mut self,
        from_name: &str,
        from_entity: EntityId,
        channel: ChatChannel,
        text: &str,
    ) {
        if matches!(self.state, ConnectionState::Active { .. }) {
            self.send_control(&ServerControl::Chat {
                from_name: from_name.to_owned(),
                from_entity,
                channel,
                text: text.to_owned(),
            });
        }
    }

    /// Tells this client its chat line, join or leave was refused (ignored unless logged
    /// in).
    pub fn send_chat_refused(&mut self, kind: control::ChatRefusalKind, message: &str) {
        if matches!(self.state, ConnectionState::Active { .. }) {
            self.send_control(&ServerControl::ChatRefused {
                kind,
                message: message.to_owned(),
            });
        }
    }

    /// Tells the client why, then closes. Idempotent: the first reason wins.
    pub fn close(&mut self, reason: DisconnectReason, message: &str) {
        if self.is_closed() {
            return;
        }
        tracing::debug!(reason = reason.as_str(), message, "closing connection");
        self.send_control(&ServerControl::Disconnect {
            reason,
            message: message.to_owned(),
        });
        self.state = ConnectionState::Closed { reason };
        self.events.push_back(ServerEvent::Closed { reason });
    }

    fn send_control(&mut self, message: &ServerControl) {
        self.stats.bytes_out += super::queue_control(message, &mut self.transmits) as u64;
    }

    /// A datagram received from the client (`now_us`: when it arrived; one handed over late
    /// can be older than what was heard since, and never moves `last_heard_us` back).
    pub fn handle_datagram(&mut self, now_us: u64, datagram: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.last_heard_us = self.last_heard_us.max(now_us);
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += datagram.len() as u64;
        if let Err(e) = self.on_datagram(now_us, datagram) {
            self.close(
                DisconnectReason::ProtocolViolation,
                &format!("datagram: {e}"),
            );
        }
    }

    fn on_datagram(&mut self, now_us: u64, datagram: &[u8]) -> Result<(), CodecError> {
        let (header, payload) = PacketHeader::decode(datagram)?;
        if header.kind != PacketKind::Input {
            return Err(CodecError::ValueOutOfRange {
                field: "datagram kind (client sent a snapshot)",
            });
        }
        let batch = decode_input_payload(payload)?;
        if !matches!(self.state, ConnectionState::Active { .. }) {
            self.stats.datagrams_before_login += 1;
            return Ok(());
        }
        if !self.datagram_is_current(header.seq) {
            // Sent before the client's reset (`RejoinPhase`).
            self.stats.datagrams_before_login += 1;
            return Ok(());
        }
        self.input_datagrams.record(header.seq);
        if let Some(ack) = header.ack {
            // Processed in the replication phase (see `snapshot_stream`).
            self.snapshots.queue_ack(ack);
        }
        // New inputs only: redundant copies of inputs already seen are expected.
        let mut fresh: [(u32, MoveInput); crate::codec::input_codec::MAX_INPUTS] =
            [(0, MoveInput::default()); crate::codec::input_codec::MAX_INPUTS];
        let mut fresh_len = 0;
        for (seq, input) in batch.iter() {
            match self.sequence.check(seq) {
                Ok(SequenceVerdict::New { .. }) => {}
                Ok(SequenceVerdict::Duplicate) => continue,
                Err(rejection) => {
                    self.reject(rejection);
                    continue;
                }
            }
            if let Err(rejection) = validate_input(&input) {
                self.reject(rejection);
                continue;
            }
            // The batch holds at most MAX_INPUTS inputs, so the index is in bounds.
            fresh[fresh_len] = (seq, input);
            fresh_len += 1;
        }
        if fresh_len == 0 {
            return Ok(());
        }
        let admission = self.rate.admit(now_us, fresh_len as u32);
        if let Some(rejection) = admission.rejection() {
            self.reject(rejection);
        }
        for &(seq, input) in fresh.iter().take(admission.accepted as usize) {
            if self.inputs.insert(seq, input) == Inserted::Overflow {
                self.stats.inputs_overflowed += 1;
            }
        }
        Ok(())
    }

    fn reject(&mut self, rejection: Rejection) {
        self.rejections.record(rejection.kind);
        tracing::debug!(kind = rejection.kind.as_str(), detail = %rejection.detail, "input rejected");
        self.events.push_back(ServerEvent::InputRejected(rejection));
    }

    /// Takes the inputs to simulate this tick, in order, into `out` (cleared first).
    pub fn take_inputs_for_tick(&mut self, out: &mut Vec<(u32, MoveInput)>) {
        if matches!(self.state, ConnectionState::Active { .. }) {
            self.inputs.take_for_tick(out);
        } else {
            out.clear();
        }
    }

    /// Applies the snapshot acks received since the last replication (see
    /// [`crate::session::snapshot_stream`]). Call at the start of the client's replication,
    /// before [`ServerConnection::record_base`], and process nothing else until
    /// [`ServerConnection::send_snapshot`] (the bases must match the snapshot baseline it
    /// writes; it processes acks queued meanwhile only after sending).
    pub fn process_acks(&mut self) {
        self.snapshots.process_acks();
    }

    /// How entity `id` must be coded in the next snapshot (after
    /// [`ServerConnection::process_acks`]).
    #[must_use]
    pub fn record_base(&self, id: EntityId, key: Option<u32>, archetype: u16) -> RecordBase {
        self.snapshots.record_base(id, key, archetype)
    }

    /// Heap bytes of this connection's replication state: its snapshot history (sent
    /// records in flight, per-entity baselines) and queued acknowledgements.
    #[must_use]
    pub fn replication_heap_bytes(&self) -> usize {
        self.snapshots.heap_bytes()
    }

    /// The client must forget `id` (it left the area of interest or was removed): a leave
    /// record is repeated until delivered.
    pub fn forget_entity(&mut self, id: EntityId) {
        self.snapshots.forget_entity(id);
    }

    /// Estimated encoded size of one entity record, bits (running mean of what was sent).
    #[must_use]
    pub fn estimated_record_bits(&self) -> u32 {
        self.snapshots.estimated_record_bits()
    }

    /// Encodes and queues this tick's snapshot: `owner` losslessly, then `records` (ids
    /// strictly ascending, bases from [`ServerConnection::record_base`]) until the datagram is
    /// full or the records fill `len_limit_bytes` (the client's byte budget; see
    /// [`SnapshotIn::len_limit_bytes`]), into `out` (`out.written` receives the records
    /// that made it in). Returns the encoder's report.
    pub fn send_snapshot<R: RecordSource>(
        &mut self,
        codec: &SnapshotCodec,
        tick: Tick,
        owner: Option<&CharacterState>,
        records: &[R],
        len_limit_bytes: Option<usize>,
        mut out: EncodeBuffers<'_>,
    ) -> Result<EncodeReport, CodecError> {
        let snap = SnapshotIn {
            owner_baseline: None,
            len_limit_bytes,
            // Filled in by the stream.
            seq: 0,
            ack: self.input_datagrams.ack_fields(),
            tick,
            ack_input_seq: self.inputs.last_consumed_seq(),
            baseline_seq: None,
            owner: owner.copied(),
        };
        let report = self.snapshots.encode_next(codec, snap, records, &mut out)?;
        self.stats.snapshots_sent += 1;
        self.stats.bytes_out += out.datagram.len() as u64;
        self.transmits
            .push_back(Transmit::Datagram(out.datagram.clone()));
        Ok(report)
    }

    /// The next thing to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When [`ServerConnection::handle_timeout`] must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            ConnectionState::Closed { .. } => None,
            ConnectionState::AwaitingLogin => Some(
                (self.created_us + self.config.login_timeout_us)
                    .min(self.last_heard_us + self.config.idle_timeout_us),
            ),
            // The client waits for the welcome without sending anything: only the server's
            // own deadline applies.
            ConnectionState::LoginPending => {
                Some(self.login_requested_us + self.config.login_pending_timeout_us)
            }
            ConnectionState::Active { .. } => {
                Some(self.last_heard_us + self.config.idle_timeout_us)
            }
        }
    }

    /// Closes the connection if a deadline passed.
    pub fn handle_timeout(&mut self, now_us: u64) {
        match self.state {
            ConnectionState::Closed { .. } => {}
            ConnectionState::AwaitingLogin
                if now_us >= self.created_us + self.config.login_timeout_us =>
            {
                self.close(DisconnectReason::Timeout, "no login in time");
            }
            ConnectionState::LoginPending
                if now_us >= self.login_requested_us + self.config.login_pending_timeout_us =>
            {
                self.close(
                    DisconnectReason::ServiceUnavailable,
                    "the server did not finish the login in time",
                );
            }
            ConnectionState::LoginPending => {}
            _ if now_us >= self.last_heard_us + self.config.idle_timeout_us => {
                self.close(DisconnectReason::Timeout, "nothing heard from the client");
            }
            _ => {}
        }
    }
}

fn message_name(message: &ClientControl) -> &'static str {
    match message {
        ClientControl::Login { .. } => "login",
        ClientControl::Chat { .. } => "chat",
        ClientControl::ChatJoin(_) => "chat_join",
        ClientControl::ChatLeave(_) => "chat_leave",
        ClientControl::Disconnect => "disconnect",
        ClientControl::UseAbility(_) => "use_ability",
        ClientControl::CancelCast => "cancel_cast",
        ClientControl::Inventory(_) => "inventory",
        ClientControl::RejoinAccepted { .. } => "rejoin_accepted",
        ClientControl::Resume { .. } => "resume",
    }
}
