//! A zone's simulation, sans-IO: the server tick that applies validated inputs, steps
//! movement, and replicates to every connection within its byte budget.
//!
//! The dedicated server runs one [`Zone`] per thread; the test kit's harness and the scenario
//! benchmarks drive the same type with a virtual clock. Per tick, in this order:
//! 1. each logged-in connection's queued inputs are stepped through the movement rules, once
//!    per input, in sequence order (so the server state after input `n` is what the client
//!    predicted for `n`);
//! 2. positions go to the replicator (spatial grid + per-client priority);
//! 3. each connection gets one snapshot: its own character losslessly, then the highest
//!    priority entities whose estimated size fits both the budget and the datagram, encoded
//!    against the baselines the client acknowledged; what was written is committed back to
//!    the replicator so unsent entities keep accumulating priority.
//!
//! Iteration is over a `BTreeMap` keyed by connection id, so a run is deterministic.

use std::collections::BTreeMap;

use glam::Vec3;

use crate::codec::entity_state::{NetEntityState, Quantization, SnapshotConfig};
use crate::codec::snapshot::{EntityRecordIn, SnapshotCodec, WrittenRecord};
use crate::control::DisconnectReason;
use crate::entity::{CharacterState, EntityId};
use crate::fast_hash::FastMap;
use crate::input::MoveInput;
use crate::movement::{self, MovementConfig};
use crate::replication::{ClientId, PriorityCategory, ReplicationConfig, Replicator, Viewer};
use crate::session::Transmit;
use crate::session::server::{ServerConnection, ServerConnectionConfig, ServerEvent};
use crate::time::{Tick, TickRate};

/// Identifies a connection within a zone (assigned by [`Zone::connect`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u32);

/// Archetype sent in enter records for player characters.
pub const PLAYER_ARCHETYPE: u16 = 1;

/// Flag bit in the replicated `flags` byte: the character stands on the ground.
pub const FLAG_ON_GROUND: u8 = 1;

/// Everything a zone needs; `Default` runs with no file at all.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneConfig {
    /// Simulation rate.
    pub tick_rate: TickRate,
    /// Movement rules (clients must use the same).
    pub movement: MovementConfig,
    /// Interest, tiers and budgets.
    pub replication: ReplicationConfig,
    /// Snapshot quantization and datagram size (clients must use the same).
    pub snapshot: SnapshotConfig,
    /// Per-connection tuning. Its input-rate tick rate is overwritten with `tick_rate`.
    pub connection: ServerConnectionConfig,
    /// Where new characters appear.
    pub spawn_position_m: Vec3,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        ZoneConfig {
            tick_rate: TickRate::DEFAULT,
            movement: MovementConfig::default(),
            replication: ReplicationConfig::default(),
            snapshot: SnapshotConfig::default(),
            connection: ServerConnectionConfig::default(),
            spawn_position_m: Vec3::ZERO,
        }
    }
}

#[derive(Debug)]
struct Player {
    connection: ServerConnection,
    /// The character, once logged in.
    character: Option<CharacterState>,
}

/// Per-tick measurements, for metrics and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// The tick simulated.
    pub tick: Tick,
    /// Inputs simulated.
    pub inputs_applied: u32,
    /// Snapshots sent.
    pub snapshots_sent: u32,
    /// Entity records written over all snapshots.
    pub records_written: u32,
    /// Snapshot bytes over all connections.
    pub snapshot_bytes: u64,
}

/// One zone. See the module docs.
#[derive(Debug)]
pub struct Zone {
    config: ZoneConfig,
    tick: Tick,
    codec: SnapshotCodec,
    replicator: Replicator,
    players: BTreeMap<ConnectionId, Player>,
    /// Current replicated state of every entity, for snapshot records. Looked up once per
    /// record written (about 100k times per tick at 1000 clients), so it uses the
    /// crate's fast integer hasher (`fast_hash`) rather than SipHash; never iterated.
    net_states: FastMap<EntityId, NetEntityState>,
    next_connection: u32,
    next_entity: u32,
    events: Vec<(ConnectionId, ServerEvent)>,
    scratch_inputs: Vec<(u32, MoveInput)>,
    scratch_candidates: Vec<EntityId>,
    scratch_records: Vec<EntityRecordIn>,
    scratch_written: Vec<WrittenRecord>,
    scratch_sent: Vec<EntityId>,
    scratch_datagram: Vec<u8>,
}

impl Zone {
    /// A zone at tick 0 with no connections. Fails with a message naming the bad setting.
    pub fn new(mut config: ZoneConfig) -> Result<Self, String> {
        config
            .movement
            .validate()
            .map_err(|e| format!("movement: {e}"))?;
        config.connection.input_rate.tick_rate = config.tick_rate;
        let mut replication = config.replication.clone();
        replication.tick_rate = config.tick_rate;
        config.replication = replication;
        let replicator =
            Replicator::new(config.replication.clone()).map_err(|e| format!("replication: {e}"))?;
        let quantization =
            Quantization::new(config.snapshot).map_err(|e| format!("snapshot: {e}"))?;
        // Probe the connection settings once so `connect` cannot fail later.
        ServerConnection::new(0, config.connection).map_err(|e| format!("connection: {e}"))?;
        Ok(Zone {
            config,
            tick: Tick(0),
            codec: SnapshotCodec::new(quantization),
            replicator,
            players: BTreeMap::new(),
            net_states: FastMap::default(),
            next_connection: 1,
            next_entity: 1,
            events: Vec::new(),
            scratch_inputs: Vec::new(),
            scratch_candidates: Vec::new(),
            scratch_records: Vec::new(),
            scratch_written: Vec::new(),
            scratch_sent: Vec::new(),
            scratch_datagram: Vec::with_capacity(1500),
        })
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &ZoneConfig {
        &self.config
    }

    /// The last simulated tick.
    #[must_use]
    pub fn tick(&self) -> Tick {
        self.tick
    }

    /// Connections, logged in or not.
    #[must_use]
    pub fn connection_count(&self) -> usize {
        self.players.len()
    }

    /// A new connection, waiting for its login.
    pub fn connect(&mut self, now_us: u64) -> ConnectionId {
        let id = ConnectionId(self.next_connection);
        self.next_connection += 1;
        // The settings were validated in `new` with the same config.
        let connection = ServerConnection::new(now_us, self.config.connection)
            .unwrap_or_else(|e| unreachable!("connection config validated in Zone::new: {e}"));
        self.players.insert(
            id,
            Player {
                connection,
                character: None,
            },
        );
        id
    }

    /// The connection's state machine, for inspection.
    #[must_use]
    pub fn connection(&self, id: ConnectionId) -> Option<&ServerConnection> {
        self.players.get(&id).map(|p| &p.connection)
    }

    /// The authoritative character of a logged-in connection.
    #[must_use]
    pub fn character(&self, id: ConnectionId) -> Option<&CharacterState> {
        self.players.get(&id)?.character.as_ref()
    }

    /// Overrides a character's state (a knockback, a teleport, a respawn). The client sees
    /// the change through reconciliation.
    pub fn set_character(&mut self, id: ConnectionId, state: CharacterState) -> bool {
        match self.players.get_mut(&id) {
            Some(Player {
                character: Some(c), ..
            }) => {
                *c = state;
                true
            }
            _ => false,
        }
    }

    /// Bytes received on a connection's control stream.
    pub fn handle_stream(&mut self, id: ConnectionId, now_us: u64, bytes: &[u8]) {
        if let Some(p) = self.players.get_mut(&id) {
            p.connection.handle_stream(now_us, bytes);
            self.collect_events(id);
        }
    }

    /// A datagram received on a connection.
    pub fn handle_datagram(&mut self, id: ConnectionId, now_us: u64, bytes: &[u8]) {
        if let Some(p) = self.players.get_mut(&id) {
            p.connection.handle_datagram(now_us, bytes);
            self.collect_events(id);
        }
    }

    fn collect_events(&mut self, id: ConnectionId) {
        if let Some(p) = self.players.get_mut(&id) {
            while let Some(event) = p.connection.poll_event() {
                self.events.push((id, event));
            }
        }
    }

    /// Events of all connections since the last call, in arrival order.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, (ConnectionId, ServerEvent)> {
        self.events.drain(..)
    }

    /// Accepts a pending login (after the driver verified the token): spawns the character
    /// at the zone's spawn point.
    pub fn accept_login(&mut self, id: ConnectionId) -> Option<EntityId> {
        self.accept_login_at(id, CharacterState::at(self.config.spawn_position_m))
    }

    /// Accepts a pending login and spawns the character as `spawn` (a saved position, a
    /// zone-transfer arrival). Returns `None` when no login is pending on `id`.
    pub fn accept_login_at(&mut self, id: ConnectionId, spawn: CharacterState) -> Option<EntityId> {
        let player = self.players.get_mut(&id)?;
        let entity = EntityId(self.next_entity);
        if !player
            .connection
            .accept_login(entity, self.tick, self.config.tick_rate, spawn)
        {
            return None;
        }
        self.next_entity += 1;
        player.character = Some(spawn);
        self.replicator
            .update_entity(entity, spawn.position_m, PriorityCategory::High);
        self.net_states.insert(entity, net_state(&spawn));
        // The client id mirrors the connection id; both are unique within the zone.
        if let Err(e) = self
            .replicator
            .add_client(ClientId(id.0), Viewer::Entity(entity))
        {
            tracing::error!(error = %e, "replication client not added");
        }
        Some(entity)
    }

    /// Closes a connection with a reason (the disconnect frame is still queued for sending).
    pub fn close(&mut self, id: ConnectionId, reason: DisconnectReason, message: &str) {
        if let Some(p) = self.players.get_mut(&id) {
            p.connection.close(reason, message);
            self.collect_events(id);
        }
    }

    /// Removes a connection and its character; call after its transmits were flushed.
    pub fn remove(&mut self, id: ConnectionId) {
        if let Some(p) = self.players.remove(&id) {
            if let Some(entity) = p.connection.entity() {
                self.replicator.remove_entity(entity);
                self.net_states.remove(&entity);
            }
            self.replicator.remove_client(ClientId(id.0));
        }
    }

    /// The next thing to send on a connection.
    pub fn poll_transmit(&mut self, id: ConnectionId) -> Option<Transmit> {
        self.players.get_mut(&id)?.connection.poll_transmit()
    }

    /// Closes connections whose deadlines passed.
    pub fn handle_timeouts(&mut self, now_us: u64) {
        let ids: Vec<ConnectionId> = self.players.keys().copied().collect();
        for id in ids {
            if let Some(p) = self.players.get_mut(&id)
                && p.connection.poll_timeout().is_some_and(|t| now_us >= t)
            {
                p.connection.handle_timeout(now_us);
            }
            self.collect_events(id);
        }
    }

    /// Runs one tick: [`Zone::advance_tick`], [`Zone::simulate`], [`Zone::replicate`]. See
    /// the module docs.
    pub fn run_tick(&mut self) -> TickReport {
        let mut report = TickReport {
            tick: self.advance_tick(),
            ..TickReport::default()
        };
        report.inputs_applied = self.simulate();
        self.replicate(&mut report);
        report
    }

    /// Starts the next tick and returns it. [`Zone::run_tick`] does this; call it directly
    /// only to run (and time) the phases one by one.
    pub fn advance_tick(&mut self) -> Tick {
        self.tick = self.tick.next();
        self.tick
    }

    /// Steps every character through its queued inputs; returns the inputs applied.
    pub fn simulate(&mut self) -> u32 {
        let dt_s = self.config.tick_rate.dt_s();
        let mut applied = 0;
        for player in self.players.values_mut() {
            let (Some(character), Some(entity)) =
                (player.character.as_mut(), player.connection.entity())
            else {
                continue;
            };
            player
                .connection
                .take_inputs_for_tick(&mut self.scratch_inputs);
            for (_, input) in &self.scratch_inputs {
                *character = movement::step(&self.config.movement, character, input, dt_s);
                applied += 1;
            }
            self.replicator
                .update_entity(entity, character.position_m, PriorityCategory::High);
            self.net_states.insert(entity, net_state(character));
        }
        applied
    }

    /// Sends every logged-in connection its snapshot for the current tick.
    pub fn replicate(&mut self, report: &mut TickReport) {
        let tick = self.tick;
        let fixed_bytes = 64; // header + owner state + record count, rounded up
        for (id, player) in &mut self.players {
            if player.connection.entity().is_none() {
                continue;
            }
            let client = ClientId(id.0);
            // Take candidates in priority order while their estimated size fits: the
            // replicator ranks only that many (a top-k selection, not a full sort).
            let max_len_bytes = self.config.snapshot.max_len_bytes;
            let record_bits = player.connection.estimated_record_bits().max(1) as usize;
            let fit = |budget_bytes: u32| {
                let room_bytes = (budget_bytes as usize).min(max_len_bytes);
                (room_bytes.saturating_sub(fixed_bytes) * 8) / record_bits
            };
            let Ok(plan) = self.replicator.plan_tick_limited(tick, client, fit) else {
                continue;
            };
            for left in &plan.left {
                player.connection.forget_entity(*left);
            }
            self.scratch_candidates.clear();
            self.scratch_candidates.extend_from_slice(&plan.candidates);
            self.scratch_candidates.sort_unstable();
            self.scratch_records.clear();
            for &entity in &self.scratch_candidates {
                if let Some(state) = self.net_states.get(&entity) {
                    self.scratch_records.push(EntityRecordIn {
                        id: entity,
                        state: *state,
                        base: player.connection.record_base(entity, PLAYER_ARCHETYPE),
                    });
                }
            }
            let sent = player.connection.send_snapshot(
                &self.codec,
                tick,
                player.character.as_ref(),
                &self.scratch_records,
                &mut self.scratch_datagram,
                &mut self.scratch_written,
            );
            match sent {
                Ok(encoded) => {
                    self.scratch_sent.clear();
                    self.scratch_sent
                        .extend(self.scratch_written.iter().map(|w| w.id));
                    if let Err(e) =
                        self.replicator
                            .commit(client, &self.scratch_sent, encoded.len_bytes as u32)
                    {
                        tracing::error!(error = %e, "replication commit refused");
                    }
                    report.snapshots_sent += 1;
                    report.records_written += encoded.records_written as u32;
                    report.snapshot_bytes += encoded.len_bytes as u64;
                }
                Err(e) => tracing::error!(error = %e, connection = id.0, "snapshot not encoded"),
            }
        }
    }
}

/// The replicated view of a character.
#[must_use]
pub fn net_state(c: &CharacterState) -> NetEntityState {
    NetEntityState {
        position_m: c.position_m,
        yaw_rad: c.yaw_rad,
        flags: if c.on_ground { FLAG_ON_GROUND } else { 0 },
    }
}
