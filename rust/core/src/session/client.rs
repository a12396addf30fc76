//! The client session: logs in over the control stream, predicts the local character with
//! the same movement step as the server, sends inputs redundantly in datagrams, and turns
//! snapshot datagrams into reconciliation of the local character and interpolation buffers
//! for remote entities.
//!
//! Sans-IO: the driver (the QUIC driver, the C ABI's runtime, the test harness) feeds bytes
//! in and sends what [`ClientSession::poll_transmit`] returns. The game calls
//! [`ClientSession::send_input`] once per simulation tick and samples remote entities at its
//! render time with [`ClientSession::sample_entity`].
//!
//! Known limit: a server-side change to the local character (a knockback) reaches the client
//! with the next acknowledged input; a client that sends no inputs sees none.

use std::collections::{BTreeMap, VecDeque};

use glam::Vec3;

use crate::codec::baseline::{ApplyOutcome, ReceivedHistory};
use crate::codec::entity_state::{Quantization, SnapshotConfig};
use crate::codec::input_codec::{InputBatch, MAX_INPUTS, encode_input_datagram};
use crate::codec::packet::{PacketHeader, PacketKind};
use crate::codec::snapshot::{DecodedSnapshot, SnapshotCodec};
use crate::control::{
    self, ChatChannel, ClientControl, DisconnectReason, FrameDecoder, ServerControl,
};
use crate::entity::{CharacterState, EntityId};
use crate::gameplay::content::AbilityId;
use crate::gameplay::messages::{
    AbilityRequest, AbilityResult, CombatEvent, InventoryOp, InventoryRequest, InventoryResult,
    InventoryView, ResourceView, WireTarget,
};
use crate::input::MoveInput;
use crate::interpolation::{InterpOutput, InterpSample, InterpolationBuffer, InterpolationConfig};
use crate::movement::MovementConfig;
use crate::prediction::{PredictionConfig, Predictor, ReconcileOutcome};
use crate::time::{Tick, TickRate};

use super::Transmit;
use super::client_gameplay::ClientGameplay;
pub use super::client_gameplay::CooldownLeft;

/// Configuration of a [`ClientSession`]. Movement and snapshot settings must match the
/// server's.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// The movement rules (the server's).
    pub movement: MovementConfig,
    /// Prediction history and correction smoothing.
    pub prediction: PredictionConfig,
    /// Remote-entity interpolation.
    pub interpolation: InterpolationConfig,
    /// Snapshot quantization (the server's).
    pub snapshot: SnapshotConfig,
    /// Most inputs repeated in each input datagram, `1..=16`.
    pub redundant_inputs: usize,
    /// Give up when nothing was heard from the server for this long.
    pub idle_timeout_us: u64,
    /// What the session does with snapshots.
    pub snapshots: SnapshotHandling,
}

/// What a [`ClientSession`] does with the snapshots it receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SnapshotHandling {
    /// Decode everything: reconcile the local character, track and interpolate remote
    /// entities (a game).
    #[default]
    Full,
    /// Read the fixed part only (tick, acknowledged input, own state) and acknowledge the
    /// datagram; reconcile the local character; skip leaves and entity records, so no
    /// remote entity is ever known. For load-test bots: the server does the same work for
    /// such a client (its acknowledgements move baselines as usual), the client almost
    /// none. Not for a game: the acknowledgements claim states the client never read.
    HeaderOnly,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            movement: MovementConfig::default(),
            prediction: PredictionConfig::default(),
            interpolation: InterpolationConfig::default(),
            snapshot: SnapshotConfig::default(),
            redundant_inputs: MAX_INPUTS,
            idle_timeout_us: 10_000_000,
            snapshots: SnapshotHandling::Full,
        }
    }
}

/// Something the game should react to.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// Logged in; the local character exists from now on.
    Welcome {
        /// The entity the client controls.
        entity_id: EntityId,
        /// Where it starts.
        spawn: CharacterState,
        /// SHA-256 of the server's gameplay content.
        content_hash: [u8; 32],
    },
    /// The server answered an ability request (see also
    /// [`ClientSession::cooldown_left`]).
    AbilityResult(AbilityResult),
    /// The server answered an inventory request; on success the new contents arrived just
    /// before as [`ClientEvent::Inventory`].
    InventoryResult(InventoryResult),
    /// The inventory changed (also after login).
    Inventory(InventoryView),
    /// The local character's pools changed (also after login).
    Resources(ResourceView),
    /// Something happened in combat near the local character (or to it).
    Combat(CombatEvent),
    /// A remote entity came into view: spawn its actor.
    EntityEntered {
        /// Its id.
        id: EntityId,
        /// Which actor class.
        archetype: u16,
        /// Where it is.
        position_m: Vec3,
    },
    /// A remote entity left the view: destroy its actor.
    EntityLeft {
        /// Its id.
        id: EntityId,
    },
    /// The server disagreed with the prediction; it was corrected and smoothed.
    Corrected {
        /// Distance between predicted and authoritative position, metres.
        position_error_m: f32,
        /// Inputs replayed.
        replayed_inputs: usize,
    },
    /// A chat line.
    Chat {
        /// Who said it (character name).
        from_name: String,
        /// The speaker's entity when in this client's zone, else `EntityId(0)`.
        from_entity: EntityId,
        /// Where.
        channel: ChatChannel,
        /// What.
        text: String,
    },
    /// The server refused this client's chat line, join or leave.
    ChatRefused {
        /// Why (stable kind; `kind.as_str()` is `chat_muted`, ...).
        kind: control::ChatRefusalKind,
        /// Detail (for a mute, until when).
        message: String,
    },
    /// The server restarted the session from the character's last save (the zone process
    /// that ran it stopped; `WIRE_FORMAT.md`, 8.9). Every remote entity left just before
    /// (an [`ClientEvent::EntityLeft`] each), unanswered requests will not be answered, and
    /// the local character continues from `spawn` as `entity_id`. The inventory and pools
    /// follow as after the welcome.
    Rejoined {
        /// The entity the client controls from now on.
        entity_id: EntityId,
        /// Where the character stands (its last saved state).
        spawn: CharacterState,
        /// SHA-256 of the new process's gameplay content (as in the welcome).
        content_hash: [u8; 32],
    },
    /// The session continues over a new connection ([`ClientSession::begin_resume`],
    /// `WIRE_FORMAT.md` 8.10): same entity, same prediction; what the server sent meanwhile
    /// follows, the control messages the server missed were sent again.
    Resumed,
    /// The session is over.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
        /// Detail from the server, or a local explanation.
        message: String,
    },
}

/// Counters and estimates of a session.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClientStats {
    /// Smoothed round-trip time, microseconds (0 before the first sample).
    pub rtt_us: u64,
    /// Snapshots applied.
    pub snapshots_applied: u64,
    /// Snapshots dropped as older than one already applied.
    pub snapshots_stale: u64,
    /// Snapshots that could not be applied because a baseline was gone.
    pub snapshots_undecodable: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Bytes received (datagrams and stream).
    pub bytes_in: u64,
    /// Bytes sent (datagrams and stream).
    pub bytes_out: u64,
    /// Prediction corrections.
    pub corrections: u64,
    /// Snapshots the server sent from the first one received to the newest one received,
    /// by their sequence numbers (so `received / expected` is the delivery ratio; snapshots
    /// lost before the first or after the newest are not known to the client).
    pub snapshots_expected: u64,
    /// Snapshot datagrams received with a decodable header (applied, stale or undecodable
    /// payload; a duplicate counts twice).
    pub snapshots_received: u64,
}

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Login sent, waiting for the welcome.
    LoggingIn,
    /// Playing.
    Active,
    /// Over.
    Closed,
}

/// The snapshot sequence numbers received so far (extended), for
/// [`ClientStats::snapshots_expected`].
#[derive(Clone, Copy, Debug)]
struct SnapshotSeqRange {
    /// Oldest received since the welcome or the last rejoin.
    first: u64,
    /// Newest received since then.
    newest: u64,
    /// Expected in the sessions before the last rejoin.
    earlier_expected: u64,
}

#[derive(Debug)]
struct RemoteEntity {
    archetype: u16,
    buffer: InterpolationBuffer,
    /// The newest replicated flags byte ([`crate::entity_flags`]: on ground, health).
    flags: u8,
}

/// Bytes as lowercase hex, for log lines.
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Send times of recent input datagrams, for RTT samples from the server's acks.
const SEND_TIMES: usize = 64;

/// One client session. See the module docs.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: ClientState,
    control: FrameDecoder,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
    codec: SnapshotCodec,
    received: ReceivedHistory,
    /// The newest applied snapshot. Invariant: never holds a partially decoded one.
    decoded: DecodedSnapshot,
    /// Decode target; swapped into `decoded` only when the snapshot was applied.
    decoding: DecodedSnapshot,
    /// Present once welcomed.
    predictor: Option<Predictor>,
    entity_id: Option<EntityId>,
    rate: TickRate,
    remotes: BTreeMap<EntityId, RemoteEntity>,
    /// Extended seq of the next input datagram.
    next_datagram_seq: u64,
    /// `(seq, sent_at_us)` of recent datagrams, indexed by `seq % SEND_TIMES`.
    send_times: [(u64, u64); SEND_TIMES],
    newest_acked_datagram: Option<u16>,
    /// Extended sequence numbers of the first and the newest snapshot received since the
    /// welcome or the last rejoin.
    snapshot_seq_range: Option<SnapshotSeqRange>,
    last_heard_us: u64,
    last_server_tick: Option<Tick>,
    stats: ClientStats,
    datagram: Vec<u8>,
    gameplay: ClientGameplay,
    /// Continuing the session over a new connection (token, counts, kept frames).
    resumption: super::resumption::Resumption,
    /// A `Resume` frame to send before anything else.
    resume_frame: Option<Vec<u8>>,
}

impl ClientSession {
    /// A session that logs in with `token`; the login frame is queued at once.
    ///
    /// Fails with a message naming the bad field when the configuration is invalid.
    pub fn new(now_us: u64, config: ClientConfig, token: &str) -> Result<Self, String> {
        config.movement.validate().map_err(|e| e.to_string())?;
        config.prediction.validate().map_err(|e| e.to_string())?;
        config.interpolation.validate().map_err(|e| e.to_string())?;
        let quantization = Quantization::new(config.snapshot).map_err(|e| e.to_string())?;
        if !(1..=MAX_INPUTS).contains(&config.redundant_inputs) {
            return Err(format!("redundant_inputs must be in 1..={MAX_INPUTS}"));
        }
        if token.len() > control::MAX_TOKEN_LEN_BYTES {
            return Err(format!(
                "token is longer than {} bytes",
                control::MAX_TOKEN_LEN_BYTES
            ));
        }
        let mut session = ClientSession {
            config,
            state: ClientState::LoggingIn,
            control: FrameDecoder::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            codec: SnapshotCodec::new(quantization),
            received: ReceivedHistory::new(),
            decoded: DecodedSnapshot::default(),
            decoding: DecodedSnapshot::default(),
            predictor: None,
            entity_id: None,
            rate: TickRate::DEFAULT,
            remotes: BTreeMap::new(),
            next_datagram_seq: 0,
            send_times: [(u64::MAX, 0); SEND_TIMES],
            newest_acked_datagram: None,
            snapshot_seq_range: None,
            last_heard_us: now_us,
            last_server_tick: None,
            stats: ClientStats::default(),
            datagram: Vec::with_capacity(256),
            gameplay: ClientGameplay::default(),
            resumption: super::resumption::Resumption::default(),
            resume_frame: None,
        };
        session.send_control(&ClientControl::Login {
            protocol_version: crate::PROTOCOL_VERSION,
            token: token.to_owned(),
        });
        Ok(session)
    }

    /// Where the session is.
    #[must_use]
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// The controlled entity, once welcomed.
    #[must_use]
    pub fn entity_id(&self) -> Option<EntityId> {
        self.entity_id
    }

    /// Counters and estimates.
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        let mut stats = self.stats;
        stats.corrections = self.predictor.as_ref().map_or(0, Predictor::corrections);
        stats
    }

    /// The predictor of the local character, once welcomed.
    #[must_use]
    pub fn predictor(&self) -> Option<&Predictor> {
        self.predictor.as_ref()
    }

    /// The server tick of the newest applied snapshot.
    #[must_use]
    pub fn last_server_tick(&self) -> Option<Tick> {
        self.last_server_tick
    }

    /// Remote entities currently in view, ascending id.
    pub fn remote_ids(&self) -> impl Iterator<Item = EntityId> + '_ {
        self.remotes.keys().copied()
    }

    /// Archetype of a remote entity in view.
    #[must_use]
    pub fn remote_archetype(&self, id: EntityId) -> Option<u16> {
        self.remotes.get(&id).map(|r| r.archetype)
    }

    /// The newest applied snapshot as decoded (for diagnostics and measurements; with
    /// [`SnapshotHandling::HeaderOnly`] it stays empty).
    #[must_use]
    pub fn last_snapshot(&self) -> &DecodedSnapshot {
        &self.decoded
    }

    /// The owner state of the newest applied snapshot that carried one, as decoded (both
    /// snapshot handlings; for diagnostics and tests).
    #[must_use]
    pub fn last_owner_state(&self) -> Option<&CharacterState> {
        self.received.newest_owner()
    }

    /// A remote entity's health as a percentage of its maximum (`0..=100`, 0 = dead), from
    /// its newest snapshot record ([`crate::entity_flags`]).
    #[must_use]
    pub fn remote_health_percent(&self, id: EntityId) -> Option<u8> {
        self.remotes
            .get(&id)
            .map(|r| crate::entity_flags::health_percent_of(r.flags))
    }

    /// The interpolation buffer of a remote entity in view (its render clock and delay).
    #[must_use]
    pub fn remote_buffer(&self, id: EntityId) -> Option<&InterpolationBuffer> {
        self.remotes.get(&id).map(|r| &r.buffer)
    }

    /// Where remote entity `id` should be drawn at `now_us` (advances its render clock).
    pub fn sample_entity(&mut self, id: EntityId, now_us: u64) -> Option<InterpOutput> {
        self.remotes.get_mut(&id)?.buffer.sample(now_us)
    }

    /// Runs one predicted simulation tick: the input is applied to the local character at
    /// once and sent (with the unacknowledged ones before it) in a datagram. Returns the
    /// input's sequence number, or `None` before the welcome or after close.
    ///
    /// Contract: `input` comes from [`MoveInput::from_controls`] or is otherwise valid for
    /// [`crate::validation::validate_input`]; the server drops invalid inputs, so predicting one
    /// would only cause a correction.
    pub fn send_input(&mut self, now_us: u64, input: MoveInput) -> Option<u32> {
        if self.state != ClientState::Active {
            return None;
        }
        debug_assert!(
            crate::validation::validate_input(&input).is_ok(),
            "invalid input {input:?}: build it with MoveInput::from_controls"
        );
        let predictor = self.predictor.as_mut()?;
        let seq = predictor.push_input(input);
        let unacked = predictor.unacked_inputs();
        let skip = unacked.len().saturating_sub(self.config.redundant_inputs);
        let mut batch: Option<InputBatch> = None;
        for (s, i) in unacked.skip(skip) {
            let b = batch.get_or_insert_with(|| InputBatch::new(s));
            // At most `redundant_inputs <= MAX_INPUTS` inputs are pushed.
            let pushed = b.push(i);
            debug_assert!(pushed);
        }
        let batch = batch?;
        let datagram_seq = self.next_datagram_seq;
        self.next_datagram_seq += 1;
        encode_input_datagram(
            datagram_seq as u16,
            self.received.ack_fields(),
            &batch,
            &mut self.datagram,
        );
        self.send_times[(datagram_seq % SEND_TIMES as u64) as usize] = (datagram_seq, now_us);
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += self.datagram.len() as u64;
        self.transmits
            .push_back(Transmit::Datagram(self.datagram.clone()));
        Some(seq)
    }

    /// Decays the visual correction offset of the local character by a frame of `dt_s`.
    pub fn advance_visual(&mut self, dt_s: f32) {
        if let Some(p) = self.predictor.as_mut() {
            p.advance_visual(dt_s);
        }
    }

    /// Sends a chat line (at most [`control::MAX_CHAT_LEN_BYTES`]; longer is refused);
    /// `to` names the recipient of a [`ChatChannel::Whisper`] and must be `None` on the
    /// other channels. The server's answer to a refused line is
    /// [`ClientEvent::ChatRefused`].
    pub fn send_chat(
        &mut self,
        channel: ChatChannel,
        to: Option<&str>,
        text: &str,
    ) -> Result<(), String> {
        self.require_active()?;
        crate::chat::check_recipient(channel, to).map_err(|r| r.message)?;
        let message = ClientControl::Chat {
            channel,
            to: to.map(str::to_owned),
            text: text.to_owned(),
        };
        message.validate().map_err(|e| e.to_string())?;
        self.send_control(&message);
        Ok(())
    }

    /// Receives `channel` again (zone or global; the server refuses the others).
    pub fn join_channel(&mut self, channel: ChatChannel) -> Result<(), String> {
        self.require_active()?;
        self.send_control(&ClientControl::ChatJoin(channel));
        Ok(())
    }

    /// Stops receiving `channel` (zone or global; the server refuses the others).
    pub fn leave_channel(&mut self, channel: ChatChannel) -> Result<(), String> {
        self.require_active()?;
        self.send_control(&ClientControl::ChatLeave(channel));
        Ok(())
    }

    /// `ServerExecuteAbility`: asks the server to use `ability` on `target` and returns the
    /// request number its [`ClientEvent::AbilityResult`] will carry. The request states the
    /// server time the player was looking at (the render time of the target's interpolation
    /// buffer, or of any remote entity, or the newest snapshot's tick), so the server can
    /// rewind the target to what the player saw.
    ///
    /// One ability request is in flight at a time: until its answer arrives, another is
    /// refused here (the server would judge a second press from before the answer against a
    /// cooldown the player cannot see yet, and count it as cooldown abuse).
    pub fn use_ability(&mut self, ability: AbilityId, target: WireTarget) -> Result<u32, String> {
        self.require_active()?;
        if let Some(pending) = self.gameplay.pending_ability() {
            return Err(format!(
                "ability request {pending} is awaiting the server's answer"
            ));
        }
        let (view_tick, view_fraction) = self.view_time(match target {
            WireTarget::Entity(id) => Some(id),
            _ => None,
        });
        let request = self.gameplay.next_request();
        self.gameplay.set_pending_ability(request);
        self.send_control(&ClientControl::UseAbility(AbilityRequest {
            request,
            ability,
            target,
            view_tick,
            view_fraction,
        }));
        Ok(request)
    }

    /// Asks the server to stop the cast in progress.
    pub fn cancel_cast(&mut self) -> Result<(), String> {
        self.require_active()?;
        self.send_control(&ClientControl::CancelCast);
        Ok(())
    }

    /// Asks the server for an inventory operation; returns the request number its
    /// [`ClientEvent::InventoryResult`] will carry. Nothing changes locally until the server
    /// answers.
    pub fn inventory_op(&mut self, op: InventoryOp) -> Result<u32, String> {
        self.require_active()?;
        let request = self.gameplay.next_request();
        self.send_control(&ClientControl::Inventory(InventoryRequest { request, op }));
        Ok(request)
    }

    /// The inventory as the server last sent it.
    #[must_use]
    pub fn inventory(&self) -> Option<&InventoryView> {
        self.gameplay.inventory()
    }

    /// The local character's pools as the server last sent them.
    #[must_use]
    pub fn resources(&self) -> Option<&ResourceView> {
        self.gameplay.resources()
    }

    /// The ability request awaiting the server's answer, if any (see
    /// [`ClientSession::use_ability`]).
    #[must_use]
    pub fn pending_ability(&self) -> Option<u32> {
        self.gameplay.pending_ability()
    }

    /// Cooldown left on `ability` at `now_us`, counted from the server's last answer.
    #[must_use]
    pub fn cooldown_left(&self, ability: AbilityId, now_us: u64) -> CooldownLeft {
        self.gameplay.cooldown_left(ability, now_us)
    }

    /// The server's world geometry hash, once welcomed (zeros: a flat world).
    #[must_use]
    pub fn world_hash(&self) -> Option<[u8; 32]> {
        self.gameplay.world_hash()
    }

    /// Whether the client's own world (its config's `movement.geometry`) is the one the
    /// server runs; `None` before the welcome. When false, every obstacle the two disagree
    /// on becomes corrections: load the server's world file.
    #[must_use]
    pub fn world_matches(&self) -> Option<bool> {
        self.world_hash()
            .map(|h| h == self.config.movement.geometry.world_hash())
    }

    /// The server's gameplay content hash, once welcomed.
    #[must_use]
    pub fn content_hash(&self) -> Option<[u8; 32]> {
        self.gameplay.content_hash()
    }

    /// The server time remote entities are being drawn at, as a tick and a fraction.
    fn view_time(&self, target: Option<EntityId>) -> (Tick, f32) {
        let render_us = target
            .and_then(|id| self.remotes.get(&id))
            .and_then(|r| r.buffer.render_time_us())
            .or_else(|| {
                self.remotes
                    .values()
                    .find_map(|r| r.buffer.render_time_us())
            });
        let hz = f64::from(self.rate.hz());
        match render_us {
            Some(us) if us.is_finite() && us >= 0.0 => {
                // Server time is `tick * 1e6 / hz` exactly (`TickRate::tick_start_us`);
                // dividing by the rounded `tick_us` would drift ahead over an hour.
                let ticks = us * hz / 1e6;
                // Render times are far below 2^32 ticks; the cast saturates otherwise.
                let whole = ticks.floor();
                let fraction = ((ticks - whole) as f32).clamp(0.0, 0.999_999);
                (Tick(whole as u32), fraction)
            }
            _ => (self.last_server_tick.unwrap_or_default(), 0.0),
        }
    }

    /// `Err("not logged in")` unless the session is active (requests need a welcome).
    fn require_active(&self) -> Result<(), String> {
        if self.state == ClientState::Active {
            Ok(())
        } else {
            Err("not logged in".to_owned())
        }
    }

    /// Leaves: tells the server and closes the session.
    pub fn disconnect(&mut self) {
        if self.state == ClientState::Closed {
            return;
        }
        self.send_control(&ClientControl::Disconnect);
        self.finish(
            DisconnectReason::ClientQuit,
            "disconnected by the player".to_owned(),
        );
    }

    fn finish(&mut self, reason: DisconnectReason, message: String) {
        self.state = ClientState::Closed;
        self.events
            .push_back(ClientEvent::Disconnected { reason, message });
    }

    fn send_control(&mut self, message: &ClientControl) {
        let len_bytes = super::queue_control(message, &mut self.transmits);
        if len_bytes > 0
            && let Some(Transmit::Stream(frame)) = self.transmits.back()
        {
            self.resumption.sent_frame(frame);
        }
        self.stats.bytes_out += len_bytes as u64;
    }

    /// True between [`ClientSession::begin_resume`] and `Resumed` (or the session's end).
    #[must_use]
    pub fn is_resuming(&self) -> bool {
        self.state != ClientState::Closed && self.resumption.awaiting_since_us().is_some()
    }

    /// True when the session can continue over a new connection
    /// ([`ClientSession::begin_resume`]): it is active and the server sent a resumption
    /// token (a fleet's gateways do; a single server does not).
    #[must_use]
    pub fn can_resume(&self) -> bool {
        self.state == ClientState::Active && self.resumption.token().is_some()
    }

    /// The server's last resumption token (`None` before one came; for diagnostics and
    /// tests: the session presents it by itself in [`ClientSession::begin_resume`]).
    #[must_use]
    pub fn resume_token(&self) -> Option<&[u8]> {
        self.resumption.token()
    }

    /// The connection was lost and a new one is open (`WIRE_FORMAT.md`, 8.10): the next
    /// transmit is the `Resume` frame, the first bytes of the new control stream. Until
    /// `Resumed` arrives no other control frame is sent (they are kept and go after it,
    /// with the ones the server missed); datagrams go on. The part of a server frame the
    /// lost connection delivered is forgotten (the server sends the frame again). Without
    /// `Resumed` within [`super::resumption::RESUME_ANSWER_TIMEOUT_US`] of the first
    /// attempt the session closes with `timeout`. May be called again for another new
    /// connection while waiting (the deadline stays the first attempt's).
    ///
    /// # Errors
    /// A message when the session cannot resume ([`ClientSession::can_resume`] is false).
    pub fn begin_resume(&mut self, now_us: u64) -> Result<(), String> {
        if self.state != ClientState::Active {
            return Err("only an active session can resume".to_owned());
        }
        let Some(token) = self.resumption.token() else {
            return Err(
                "the server gave no resumption token (a single server does not)".to_owned(),
            );
        };
        let resume = ClientControl::Resume {
            protocol_version: crate::PROTOCOL_VERSION,
            token: token.to_vec(),
            received_bytes: self.resumption.received_bytes(),
        };
        let mut frame = Vec::new();
        control::encode_frame(&resume, &mut frame).map_err(|e| e.to_string())?;
        self.control = FrameDecoder::new();
        // Every control frame queued is kept; they go after `Resumed`, from the server's
        // count.
        self.transmits
            .retain(|t| matches!(t, Transmit::Datagram(_)));
        self.stats.bytes_out += frame.len() as u64;
        self.resume_frame = Some(frame);
        self.resumption.await_answer(now_us);
        Ok(())
    }

    /// `Resumed`: sends again the control frames the server did not take, then carries on.
    /// Only the first after [`ClientSession::begin_resume`] counts: when an earlier attempt
    /// was taken over but its answer lost, the server sends that answer again (it is among
    /// the bytes the client missed) before the new one, and the client, having sent
    /// nothing in between, was answered the same count by both.
    fn on_resumed(&mut self, received_frames: u64) {
        if self.resumption.awaiting_since_us().is_none() {
            // The answer to an earlier attempt, sent again among what this client missed
            // before the answer to its last one: the client acted on the first.
            return;
        }
        match self.resumption.frames_from(received_frames) {
            Ok(frames) => {
                // Frames queued while waiting are among these.
                self.transmits
                    .retain(|t| matches!(t, Transmit::Datagram(_)));
                for frame in frames.into_iter().rev() {
                    self.stats.bytes_out += frame.len() as u64;
                    self.transmits.push_front(Transmit::Stream(frame));
                }
                self.events.push_back(ClientEvent::Resumed);
            }
            Err(e) => self.finish(
                DisconnectReason::ServiceUnavailable,
                format!("the session cannot resume: {e}"),
            ),
        }
    }

    /// Bytes received on the control stream.
    pub fn handle_stream(&mut self, now_us: u64, bytes: &[u8]) {
        if self.state == ClientState::Closed {
            return;
        }
        self.last_heard_us = now_us;
        self.stats.bytes_in += bytes.len() as u64;
        self.control.push(bytes);
        while self.state != ClientState::Closed {
            let buffered_bytes = self.control.buffered_len_bytes();
            match self.control.next_message::<ServerControl>() {
                Ok(Some(message)) => {
                    self.resumption
                        .took_frame(buffered_bytes - self.control.buffered_len_bytes());
                    self.on_control(message, now_us);
                }
                Ok(None) => break,
                Err(e) => {
                    self.finish(
                        DisconnectReason::ProtocolViolation,
                        format!("control stream: {e}"),
                    );
                }
            }
        }
    }

    fn on_control(&mut self, message: ServerControl, now_us: u64) {
        match message {
            ServerControl::Welcome {
                protocol_version,
                entity_id,
                tick,
                tick_rate_hz,
                spawn,
                content_hash,
                movement,
                world_hash,
            } => {
                if self.state != ClientState::LoggingIn {
                    self.finish(
                        DisconnectReason::ProtocolViolation,
                        "second welcome".to_owned(),
                    );
                    return;
                }
                if let Err(e) = control::check_protocol_version(protocol_version) {
                    self.finish(DisconnectReason::ProtocolMismatch, e.to_string());
                    return;
                }
                let rate = match TickRate::new(tick_rate_hz) {
                    Ok(rate) => rate,
                    Err(e) => {
                        self.finish(DisconnectReason::ProtocolViolation, e.to_string());
                        return;
                    }
                };
                // The server's settings, over the client's own copy of the world.
                let movement = MovementConfig {
                    geometry: self.config.movement.geometry.clone(),
                    ..movement
                };
                let ours = movement.geometry.world_hash();
                if ours != world_hash {
                    tracing::warn!(
                        server = %Hex(&world_hash),
                        client = %Hex(&ours),
                        "the server simulates another world geometry: expect corrections at \
                         every obstacle until the client loads the server's world file"
                    );
                }
                self.gameplay.set_world_hash(world_hash);
                let predictor = Predictor::new(movement, rate, spawn, self.config.prediction);
                match predictor {
                    Ok(p) => {
                        self.predictor = Some(p);
                        self.entity_id = Some(entity_id);
                        self.rate = rate;
                        self.last_server_tick = Some(tick);
                        self.state = ClientState::Active;
                        self.gameplay.set_content_hash(content_hash);
                        self.events.push_back(ClientEvent::Welcome {
                            entity_id,
                            spawn,
                            content_hash,
                        });
                    }
                    Err(e) => self.finish(DisconnectReason::ProtocolViolation, e.to_string()),
                }
            }
            ServerControl::Rejoined {
                entity_id,
                tick,
                tick_rate_hz,
                spawn,
                content_hash,
            } => self.on_rejoined(entity_id, tick, tick_rate_hz, spawn, content_hash),
            ServerControl::Chat {
                from_name,
                from_entity,
                channel,
                text,
            } => {
                self.events.push_back(ClientEvent::Chat {
                    from_name,
                    from_entity,
                    channel,
                    text,
                });
            }
            ServerControl::ChatRefused { kind, message } => {
                self.events
                    .push_back(ClientEvent::ChatRefused { kind, message });
            }
            ServerControl::Disconnect { reason, message } => self.finish(reason, message),
            ServerControl::AbilityResult(result) => {
                self.gameplay.on_ability_result(&result, now_us);
                self.events.push_back(ClientEvent::AbilityResult(result));
            }
            ServerControl::InventoryResult(result) => {
                self.events.push_back(ClientEvent::InventoryResult(result));
            }
            ServerControl::Inventory(view) => {
                self.gameplay.set_inventory(view.clone());
                self.events.push_back(ClientEvent::Inventory(view));
            }
            ServerControl::Resources(view) => {
                self.gameplay.set_resources(view.clone());
                self.events.push_back(ClientEvent::Resources(view));
            }
            ServerControl::Combat(events) => {
                self.events
                    .extend(events.into_iter().map(ClientEvent::Combat));
            }
            ServerControl::ResumeToken { token } => self.resumption.set_token(token),
            ServerControl::Resumed { received_frames } => self.on_resumed(received_frames),
        }
    }

    /// `Rejoined`: forgets the ended session's snapshots, remote entities and unanswered
    /// requests, and continues from `spawn` (`WIRE_FORMAT.md`, 8.9). Input sequence numbers
    /// go on, so inputs sent before the message and after it never collide at the server.
    fn on_rejoined(
        &mut self,
        entity_id: EntityId,
        tick: Tick,
        tick_rate_hz: u32,
        spawn: CharacterState,
        content_hash: [u8; 32],
    ) {
        if self.state != ClientState::Active {
            self.finish(
                DisconnectReason::ProtocolViolation,
                "rejoined before the welcome".to_owned(),
            );
            return;
        }
        if tick_rate_hz != self.rate.hz() {
            self.finish(
                DisconnectReason::ProtocolViolation,
                format!(
                    "rejoined at {tick_rate_hz} Hz; the session ran at {} Hz",
                    self.rate.hz()
                ),
            );
            return;
        }
        // Every input so far counts as acknowledged: the new session ignores the datagrams
        // sent before `RejoinAccepted`, so none of them is simulated from the saved state.
        let reset = self
            .predictor
            .as_mut()
            .is_some_and(|predictor| predictor.reset(spawn));
        if !reset {
            self.finish(
                DisconnectReason::ProtocolViolation,
                "rejoined with a non-finite state".to_owned(),
            );
            return;
        }
        for id in std::mem::take(&mut self.remotes).into_keys() {
            self.events.push_back(ClientEvent::EntityLeft { id });
        }
        // The new session numbers its snapshots from scratch: nothing of the old one may
        // serve as a baseline, and an empty history acknowledges nothing, which is what
        // tells the server this client reset.
        self.received = ReceivedHistory::new();
        self.decoded = DecodedSnapshot::default();
        self.decoding = DecodedSnapshot::default();
        self.snapshot_seq_range = None;
        self.entity_id = Some(entity_id);
        self.last_server_tick = Some(tick);
        self.gameplay.forget_requests();
        self.gameplay.set_content_hash(content_hash);
        // The server takes this client's datagrams from here on (the low 16 bits are the
        // header's seq). Its control frames are numbered from this one (frame 0).
        self.resumption.restart_numbering();
        self.send_control(&ClientControl::RejoinAccepted {
            next_datagram_seq: self.next_datagram_seq as u16,
        });
        self.events.push_back(ClientEvent::Rejoined {
            entity_id,
            spawn,
            content_hash,
        });
    }

    /// A datagram received from the server. Undecodable datagrams are counted and dropped
    /// (the server is trusted to be correct; a corrupt one is not worth dying for).
    pub fn handle_datagram(&mut self, now_us: u64, datagram: &[u8]) {
        if self.state != ClientState::Active {
            return;
        }
        self.last_heard_us = now_us;
        self.stats.bytes_in += datagram.len() as u64;
        let Ok((header, payload)) = PacketHeader::decode(datagram) else {
            self.stats.snapshots_undecodable += 1;
            return;
        };
        if header.kind != PacketKind::Snapshot {
            self.stats.snapshots_undecodable += 1;
            return;
        }
        self.count_snapshot_seq(header.seq);
        if self.config.snapshots == SnapshotHandling::HeaderOnly {
            self.handle_snapshot_head(now_us, header, payload);
            return;
        }
        match self
            .received
            .on_snapshot(&self.codec, header.seq, payload, &mut self.decoding)
        {
            Ok(ApplyOutcome::Applied) => std::mem::swap(&mut self.decoded, &mut self.decoding),
            Ok(ApplyOutcome::Stale) => {
                self.stats.snapshots_stale += 1;
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "snapshot not applied");
                self.stats.snapshots_undecodable += 1;
                return;
            }
        }
        self.stats.snapshots_applied += 1;
        if let Some(ack) = header.ack {
            self.on_datagram_ack(now_us, ack.ack);
        }
        self.apply_decoded(now_us);
    }

    /// [`SnapshotHandling::HeaderOnly`]: the fixed part, reconciliation, the ack.
    fn handle_snapshot_head(&mut self, now_us: u64, header: PacketHeader, payload: &[u8]) {
        let head = match self
            .received
            .on_snapshot_head(&self.codec, header.seq, payload)
        {
            Ok(Some(head)) => head,
            Ok(None) => {
                self.stats.snapshots_stale += 1;
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "snapshot head not decoded");
                self.stats.snapshots_undecodable += 1;
                return;
            }
        };
        self.stats.snapshots_applied += 1;
        if let Some(ack) = header.ack {
            self.on_datagram_ack(now_us, ack.ack);
        }
        self.last_server_tick = Some(head.tick);
        if let (Some(owner), Some(predictor)) = (head.owner, self.predictor.as_mut())
            && let Err(e) = predictor.reconcile(head.ack_input_seq, &owner)
        {
            tracing::debug!(error = %e, "server state not reconciled");
        }
    }

    fn count_snapshot_seq(&mut self, seq: u16) {
        self.stats.snapshots_received += 1;
        let range = match self.snapshot_seq_range {
            None => SnapshotSeqRange {
                first: u64::from(seq),
                newest: u64::from(seq),
                earlier_expected: self.stats.snapshots_expected,
            },
            Some(range) => {
                let seq = crate::codec::packet::unwrap_seq(seq, range.newest);
                SnapshotSeqRange {
                    first: range.first.min(seq),
                    newest: range.newest.max(seq),
                    ..range
                }
            }
        };
        self.snapshot_seq_range = Some(range);
        self.stats.snapshots_expected = range.earlier_expected + range.newest - range.first + 1;
    }

    fn on_datagram_ack(&mut self, now_us: u64, ack: u16) {
        let newer = self
            .newest_acked_datagram
            .is_none_or(|prev| crate::codec::packet::seq_more_recent(ack, prev));
        if !newer {
            return;
        }
        self.newest_acked_datagram = Some(ack);
        let (seq, sent_us) = self.send_times[usize::from(ack) % SEND_TIMES];
        if seq as u16 != ack || sent_us > now_us {
            return;
        }
        let sample_us = now_us - sent_us;
        self.stats.rtt_us = if self.stats.rtt_us == 0 {
            sample_us
        } else {
            // RFC 6298 style smoothing, weight 1/8.
            (self.stats.rtt_us * 7 + sample_us) / 8
        };
    }

    fn apply_decoded(&mut self, now_us: u64) {
        let decoded = &self.decoded;
        self.last_server_tick = Some(decoded.tick);
        if let (Some(owner), Some(predictor)) = (decoded.owner, self.predictor.as_mut()) {
            match predictor.reconcile(decoded.ack_input_seq, &owner) {
                Ok(ReconcileOutcome::Corrected {
                    replayed_inputs,
                    position_error_m,
                    ..
                }) => {
                    self.events.push_back(ClientEvent::Corrected {
                        position_error_m,
                        replayed_inputs,
                    });
                }
                Ok(ReconcileOutcome::Resynced {
                    replayed_inputs, ..
                }) => {
                    self.events.push_back(ClientEvent::Corrected {
                        position_error_m: 0.0,
                        replayed_inputs,
                    });
                }
                Ok(ReconcileOutcome::Confirmed | ReconcileOutcome::Stale) => {}
                Err(e) => tracing::debug!(error = %e, "server state not reconciled"),
            }
        }
        for id in &decoded.leaves {
            if self.remotes.remove(id).is_some() {
                self.events.push_back(ClientEvent::EntityLeft { id: *id });
            }
        }
        let server_time_us = self.rate.tick_start_us(decoded.tick);
        let q = self.codec.quantization();
        for record in &decoded.entities {
            let state = q.dequantize(&record.state);
            let sample = InterpSample {
                position_m: state.position_m,
                yaw_rad: state.yaw_rad,
            };
            let remote = match self.remotes.entry(record.id) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let Ok(buffer) = InterpolationBuffer::new(self.config.interpolation) else {
                        // The configuration was validated in `new`.
                        continue;
                    };
                    let archetype = record.enter_archetype.unwrap_or(0);
                    self.events.push_back(ClientEvent::EntityEntered {
                        id: record.id,
                        archetype,
                        position_m: state.position_m,
                    });
                    e.insert(RemoteEntity {
                        archetype,
                        buffer,
                        flags: record.state.flags,
                    })
                }
            };
            if let Some(archetype) = record.enter_archetype {
                remote.archetype = archetype;
            }
            remote.flags = record.state.flags;
            remote.buffer.push(server_time_us, now_us, sample);
        }
    }

    /// The next thing to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(frame) = self.resume_frame.take() {
            return Some(Transmit::Stream(frame));
        }
        if self.resumption.awaiting_since_us().is_some() {
            // Control frames wait for `Resumed`.
            let datagram = self
                .transmits
                .iter()
                .position(|t| matches!(t, Transmit::Datagram(_)))?;
            return self.transmits.remove(datagram);
        }
        self.transmits.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`ClientSession::handle_timeout`] must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let idle_us = self.last_heard_us + self.config.idle_timeout_us;
        let resume_us = self
            .resumption
            .awaiting_since_us()
            .map_or(u64::MAX, |since_us| {
                since_us + super::resumption::RESUME_ANSWER_TIMEOUT_US
            });
        (self.state != ClientState::Closed).then_some(idle_us.min(resume_us))
    }

    /// The transport under the session is gone (the QUIC connection closed or failed): the
    /// session closes with `reason` and emits [`ClientEvent::Disconnected`], unless it was
    /// already closed (a disconnect frame that arrived first keeps its reason).
    pub fn transport_closed(&mut self, reason: DisconnectReason, message: String) {
        if self.state != ClientState::Closed {
            self.finish(reason, message);
        }
    }

    /// Ends the session if the server has been silent for too long.
    pub fn handle_timeout(&mut self, now_us: u64) {
        if self.state != ClientState::Closed
            && self.resumption.awaiting_since_us().is_some_and(|since_us| {
                now_us >= since_us + super::resumption::RESUME_ANSWER_TIMEOUT_US
            })
        {
            self.finish(
                DisconnectReason::Timeout,
                "the server did not answer the resumption".to_owned(),
            );
        }
        if self.state != ClientState::Closed
            && now_us >= self.last_heard_us + self.config.idle_timeout_us
        {
            self.finish(
                DisconnectReason::Timeout,
                "nothing heard from the server".to_owned(),
            );
        }
    }
}
