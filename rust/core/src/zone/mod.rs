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
//!
//! **Zones of a larger world.** With [`ZoneConfig::placement`] set, the zone owns one
//! rectangle of a [`WorldLayout`] and cooperates with its neighbours (each on its own thread;
//! everything below is sans-IO, the driver carries the values between zones):
//! * *Handoff out*: after [`Zone::simulate`], a character more than
//!   [`ZonePlacement::handoff_margin_m`] outside the rectangle (hysteresis, so someone on
//!   the line does not bounce) is reported once by [`Zone::drain_departures`];
//!   [`Zone::take_player`] then removes the player and returns a [`PlayerTransfer`] (its
//!   [`ServerConnection`] with snapshot baselines, input queue and unsent transmits, its
//!   character, the entities its client knows). If the old zone must still see the
//!   character (within `border_m`), it stays there as a ghost of the new owner, so observers
//!   see no leave.
//! * *Handoff in*: [`Zone::insert_player`] continues the session under the same connection
//!   and entity ids: snapshot sequence numbers and delta baselines continue (the first
//!   snapshot is skipped if the zone's tick is not past the last one sent), entities the
//!   client knew and this zone shows keep their baselines (no leave or enter), the others
//!   get a leave at the first snapshot. A ghost of the arriving entity becomes local in
//!   place (same grid entry: no leave or enter for observers).
//! * *Border ghosts*: [`Zone::border_export`] lists this zone's characters within
//!   `border_m` of a neighbour; the neighbour's [`Zone::set_ghosts`] replaces its previous
//!   list from this zone. Ghosts are replicated like local entities (interest, priority,
//!   enter, leave) but never simulated; one missing from a newer list leaves.
//!
//! Contract for the driver: all zones of a world run the same tick rate and tick numbering
//! (tick `n` of every zone covers the same wall-clock interval) and the same movement and
//! snapshot settings; the movement bounds contain the world rectangle (checked). See
//! [`Zone::take_player`] for the per-tick order of calls. Ids are globally unique (see
//! [`crate::world`]): a zone of a layout allocates entity and connection ids from its own
//! residue class; without placement it numbers `1, 2, 3, …` as before.
//!
//! A neighbour that sends no export for [`GHOST_SILENCE_S`] (a zone process that died) has
//! its ghosts leave. Not done: an entity moving between two neighbours of this zone (diagonal layouts) may leave and
//! re-enter once if the old owner's list arrives before the new owner's; the client is not
//! told about the zone change (nothing on the wire needs it).

use std::collections::BTreeMap;

use glam::Vec3;

use crate::codec::entity_state::{NetEntityState, Quantization, SnapshotConfig};
use crate::codec::snapshot::SnapshotCodec;
use crate::control::{DisconnectReason, WelcomeTerms};
use crate::entity::{CharacterState, EntityId};
use crate::fast_hash::FastMap;
use crate::gameplay::character::CharacterGameplay;
use crate::input::MoveInput;
use crate::lag_compensation::{Capsule, HitboxHistory};
use crate::movement::{self, MovementConfig};
use crate::replication::{
    ClientId, PriorityCategory, ReplicationConfig, Replicator, Viewer, WorldFrame,
};
use crate::session::Transmit;
use crate::session::server::{ServerConnection, ServerConnectionConfig, ServerEvent};
use crate::time::{Tick, TickRate};
use crate::world::{Rect, WorldLayout, ZoneId};

mod chat;
mod gameplay;
mod ids;
pub mod persistence;
mod replicate;
mod transfer;

pub use gameplay::ZoneGameplayConfig;
use gameplay::{Outgoing, Request};
use ids::IdAllocator;
use replicate::ZoneReplication;
pub use transfer::{GIVE_RANGE_M, PendingTransfer};

/// Identifies a connection (assigned by [`Zone::connect`]). Unique within a zone, and within
/// a world when zones are placed in one (see [`crate::world`]): a handed-over connection
/// keeps its id in the new zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u32);

/// Archetype sent in enter records for player characters.
pub const PLAYER_ARCHETYPE: u16 = 1;

/// Flag bit in the replicated `flags` byte: the character stands on the ground (the byte's
/// layout is [`crate::entity_flags`]).
pub use crate::entity_flags::FLAG_ON_GROUND;

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
    /// The zone's place in a multi-zone world; `None` (the default) simulates the whole
    /// movement area alone, with no handoff and no ghosts.
    pub placement: Option<ZonePlacement>,
    /// Content, character defaults, lag compensation and anti-cheat settings.
    pub gameplay: ZoneGameplayConfig,
    /// Threads that replicate the zone's connections each tick (the zone's own thread
    /// counts as one), `1..=64`; 1 (the default here) replicates on the zone thread alone.
    /// The dedicated server defaults to one plus the zone's share of the cores the zone
    /// threads leave (`[zone] replication_threads`).
    pub replication_threads: usize,
    /// Share delta record bodies between the clients a thread replicates
    /// (`codec::record_cache`): a body is computed once per (entity, tick, current state,
    /// baseline state) and copied to the other clients with the same. Off by default: in
    /// the replication benchmark (1000 clients, lossy link) three delta records in four
    /// find their body in the cache, yet the phase is 8-14 % *slower* with it, because a
    /// record's arithmetic (~100 ns) costs less than reading a cache entry that other
    /// clients' state has pushed out of the processor's caches. Worth turning on when
    /// records cost more to compute than that (a richer state), never needed for
    /// correctness: the bits are the same either way. A library setting: the dedicated
    /// server leaves it off.
    pub shared_encoding: bool,
}

/// Where a zone sits in a multi-zone world.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZonePlacement {
    /// The world's split (every zone of the world uses the same).
    pub layout: WorldLayout,
    /// This zone (must be in `layout`).
    pub zone: ZoneId,
    /// How far outside its rectangle a character must be before it is handed over, metres
    /// (hysteresis). Finite, `0 <= handoff_margin_m <= layout.border_m()`: a departing
    /// character is still within the border, so the old zone keeps it as a ghost.
    pub handoff_margin_m: f32,
}

impl ZonePlacement {
    /// Zone `zone` of `layout` with a 2 m handoff margin (or the border, if smaller).
    #[must_use]
    pub fn new(layout: WorldLayout, zone: ZoneId) -> Self {
        ZonePlacement {
            layout,
            zone,
            handoff_margin_m: layout.border_m().min(2.0),
        }
    }
}

/// A validated [`ZonePlacement`] with what the tick needs precomputed.
#[derive(Clone, Debug)]
struct Placed {
    layout: WorldLayout,
    zone: ZoneId,
    /// The rectangle this zone owns.
    rect: Rect,
    handoff_margin_m: f32,
}

/// A player to hand over: reported by [`Zone::drain_departures`] after the tick moved its
/// character out of the zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Departure {
    /// The connection to move.
    pub connection: ConnectionId,
    /// The zone that owns the character's position now.
    pub to: ZoneId,
}

/// Everything needed to continue a player's session in another zone: made by
/// [`Zone::take_player`], consumed by [`Zone::insert_player`]. `Send`, so it can cross to the
/// other zone's thread; [`PlayerTransfer::encode`] and [`PlayerTransfer::decode`] carry it
/// to a zone in another process (the same build: the bytes are the in-memory state, see
/// [`TRANSFER_FORMAT_VERSION`]).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct PlayerTransfer {
    /// The session: snapshot sequence and baselines, input queue, validation state,
    /// transmits not yet flushed. Invariant: `Active` controlling `entity`.
    connection: ServerConnection,
    character: CharacterState,
    entity: EntityId,
    from: ZoneId,
    /// The tick of the last snapshot the old zone sent (the new zone sends only after it).
    last_tick: Tick,
    /// Entities the client may know (the old zone's visible set), ascending.
    known: Vec<EntityId>,
    /// Pools, cooldowns, inventory and strikes travel with the character.
    gameplay: Option<CharacterGameplay>,
    /// View time of the cast in progress.
    cast_view: Option<(Tick, f32)>,
}

/// Version of [`PlayerTransfer::encode`]'s bytes: the first byte, then the transfer in
/// postcard. The bytes are the session's in-memory state (connection, baselines, input
/// queue, validation state, character, gameplay), so only processes of one build exchange
/// them; bump this whenever any type inside a transfer changes, and a process refuses a
/// transfer of another version (the sender takes the player back and closes its connection
/// with `service_unavailable`: a fleet is upgraded whole, or under a new world name).
pub const TRANSFER_FORMAT_VERSION: u8 = 3;

impl PlayerTransfer {
    /// The transfer as bytes for a zone in another process: [`TRANSFER_FORMAT_VERSION`],
    /// then postcard.
    ///
    /// # Errors
    /// Only if postcard cannot encode a value (not expected for these types).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        postcard::to_extend(self, vec![TRANSFER_FORMAT_VERSION])
            .map_err(|e| format!("player transfer not encoded: {e}"))
    }

    /// A transfer from [`PlayerTransfer::encode`]'s bytes.
    ///
    /// # Errors
    /// Another format version, or bytes that do not decode, or a transfer whose
    /// connection is not active controlling its entity: named in the message.
    pub fn decode(bytes: &[u8]) -> Result<PlayerTransfer, String> {
        let Some((&version, rest)) = bytes.split_first() else {
            return Err("player transfer: empty".to_owned());
        };
        if version != TRANSFER_FORMAT_VERSION {
            return Err(format!(
                "player transfer: format version {version}, this process reads {TRANSFER_FORMAT_VERSION}"
            ));
        }
        let transfer: PlayerTransfer = postcard::from_bytes(rest)
            .map_err(|e| format!("player transfer: does not decode: {e}"))?;
        if transfer.connection.entity() != Some(transfer.entity) {
            return Err(
                "player transfer: its connection is not active controlling its entity".to_owned(),
            );
        }
        Ok(transfer)
    }

    /// The controlled entity (its id does not change).
    #[must_use]
    pub fn entity(&self) -> EntityId {
        self.entity
    }

    /// The character as the old zone left it.
    #[must_use]
    pub fn character(&self) -> &CharacterState {
        &self.character
    }

    /// The zone it comes from.
    #[must_use]
    pub fn from(&self) -> ZoneId {
        self.from
    }

    /// The session, for inspection.
    #[must_use]
    pub fn connection(&self) -> &ServerConnection {
        &self.connection
    }
}

/// [`Zone::insert_player`] refused a transfer; the transfer is handed back (close its
/// connection or try elsewhere).
#[derive(Debug)]
pub struct TransferRejected {
    /// The transfer, unchanged.
    pub transfer: PlayerTransfer,
    /// Why.
    pub reason: String,
}

/// A neighbour's border list older than this (its newest export's tick, in seconds of
/// ticks) is dropped: its ghosts leave (see [`Zone::set_ghosts`]).
pub const GHOST_SILENCE_S: f32 = 2.0;

/// One entity of a neighbour's border list.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GhostState {
    /// Its (globally unique) id.
    pub id: EntityId,
    /// Its replicated state.
    pub state: NetEntityState,
    /// Sent in enter records.
    pub archetype: u16,
    /// Replication priority.
    pub category: PriorityCategory,
}

/// A zone's entities within the border of one neighbour, after one tick: made by
/// [`Zone::border_export`], applied by the neighbour's [`Zone::set_ghosts`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BorderExport {
    /// The exporting zone (owner of the entities).
    pub from: ZoneId,
    /// The exporting zone's tick.
    pub tick: Tick,
    /// The entities, in connection-id order.
    pub states: Vec<GhostState>,
}

/// A neighbour's entity shown here.
#[derive(Clone, Copy, Debug)]
struct Ghost {
    /// The zone whose lists carry it.
    from: ZoneId,
    /// Only a list exported after this tick can remove it (a character handed over at tick
    /// `T` may be missing from its new owner's list of tick `T`).
    since: Tick,
}

/// The last list applied from one neighbour.
#[derive(Clone, Debug, Default)]
struct GhostList {
    tick: Option<Tick>,
    /// Ascending.
    ids: Vec<EntityId>,
}

/// What a snapshot record needs of an entity, local or ghost.
#[derive(Clone, Copy, Debug)]
struct Replicated {
    state: NetEntityState,
    archetype: u16,
    category: PriorityCategory,
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
            placement: None,
            gameplay: ZoneGameplayConfig::default(),
            replication_threads: 1,
            shared_encoding: false,
        }
    }
}

#[derive(Debug)]
struct Player {
    connection: ServerConnection,
    /// The controlled entity while it is replicated here: set at login or handoff, taken
    /// when the connection closes (the connection's own state forgets it at the close).
    entity: Option<EntityId>,
    /// The character, once logged in.
    character: Option<CharacterState>,
    /// The zone it was reported departing to (reported once until it comes back inside).
    departing: Option<ZoneId>,
    /// After a handoff: no snapshot until the tick is past this one (the old zone's last).
    resume_after: Option<Tick>,
    /// After a handoff, until the first plan here: the entities the client may know; those
    /// not visible here are forgotten (the client gets a leave).
    handoff_known: Option<Vec<EntityId>>,
    /// Gameplay state, once logged in.
    gameplay: Option<CharacterGameplay>,
    /// The view time of the cast in progress (for direction abilities' hit test).
    cast_view: Option<(Tick, f32)>,
    /// Combat events this player observes, waiting for the next observer flush. Invariant:
    /// at most `MAX_COMBAT_EVENTS`.
    observed: Vec<crate::gameplay::messages::CombatEvent>,
}

impl Player {
    fn new(connection: ServerConnection, character: Option<CharacterState>) -> Self {
        Player {
            connection,
            entity: None,
            character,
            departing: None,
            resume_after: None,
            handoff_known: None,
            gameplay: None,
            cast_view: None,
            observed: Vec::new(),
        }
    }
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
    /// Delta records whose body was copied from another client's (shared encoding, see
    /// `codec::record_cache`; always 0 without [`ZoneConfig::shared_encoding`]).
    pub delta_bodies_shared: u32,
    /// Delta records whose body was computed and stored in the record cache (0 without
    /// shared encoding).
    pub delta_bodies_computed: u32,
    /// Bits of all entity records written (ids, heads, masks, fields).
    pub record_bits: u64,
    /// Of those, the bits of the records' id gaps.
    pub record_id_bits: u64,
    /// Records written as enter or full records (no baseline).
    pub absolute_records: u32,
}

impl TickReport {
    /// Adds `part`'s replication counters (snapshots, records, bytes, shared bodies, record
    /// bits): a replication worker thread's part of a tick, or a tick into a benchmark's
    /// window.
    pub fn add_replication(&mut self, part: &TickReport) {
        self.snapshots_sent += part.snapshots_sent;
        self.records_written += part.records_written;
        self.snapshot_bytes += part.snapshot_bytes;
        self.delta_bodies_shared += part.delta_bodies_shared;
        self.delta_bodies_computed += part.delta_bodies_computed;
        self.record_bits += part.record_bits;
        self.record_id_bits += part.record_id_bits;
        self.absolute_records += part.absolute_records;
    }
}

/// One zone. See the module docs.
#[derive(Debug)]
pub struct Zone {
    config: ZoneConfig,
    tick: Tick,
    /// The replication phase: the world frame, interest and priority, snapshot encoding.
    replication: ZoneReplication,
    players: BTreeMap<ConnectionId, Player>,
    /// Current replicated state of every entity (local and ghost): read once per tick into
    /// the world frame (iterated there, then sorted by id, so the order does not matter),
    /// looked up by handoffs, ghosts and gameplay. Invariant: holds exactly the entities in
    /// the replicator's grid.
    net_states: FastMap<EntityId, Replicated>,
    /// Present when the zone is part of a multi-zone world.
    placement: Option<Placed>,
    /// Entities of neighbours shown here. Invariant: each is in `net_states` and in the
    /// `ghost_lists` entry of its `from` zone, and no local character has its id.
    ghosts: FastMap<EntityId, Ghost>,
    /// Per neighbour, the last list applied. Ordered so iteration is deterministic.
    ghost_lists: BTreeMap<ZoneId, GhostList>,
    departures: Vec<Departure>,
    /// Connection and entity ids of this zone's residue class.
    ids: IdAllocator,
    events: Vec<(ConnectionId, ServerEvent)>,
    scratch_inputs: Vec<(u32, MoveInput)>,
    /// Entity -> connection of every local character. Invariant: exactly the players with
    /// an entity.
    entity_connections: FastMap<EntityId, ConnectionId>,
    /// What every welcome tells the client: content hash, movement settings, world hash.
    welcome_terms: WelcomeTerms,
    /// The gameplay phase's state: hitboxes, queued requests, combat events, damage over
    /// time sources, item transfers.
    play: PlayState,
}

/// The gameplay phase's state (see `gameplay.rs` and `transfer.rs`).
#[derive(Debug)]
struct PlayState {
    /// Hitboxes of this zone's characters, for lag-compensated hit tests.
    hitboxes: HitboxHistory,
    /// Gameplay requests waiting for the gameplay phase, in arrival order.
    requests: Vec<(ConnectionId, Request)>,
    /// Combat events of the current gameplay phase.
    combat_out: Vec<Outgoing>,
    /// (target, ability) -> (caster entity, caster connection) of the damage over time
    /// effects running, so their ticks and kills name the caster. Entries of a target go when
    /// it has no damage over time left, dies or leaves.
    dot_sources: FastMap<(EntityId, crate::gameplay::content::AbilityId), (EntityId, ConnectionId)>,
    scratch_capsules: Vec<(EntityId, Capsule)>,
    /// Item transfers applied and waiting for the driver's commit (see `transfer`).
    transfers: Vec<PendingTransfer>,
    /// When true, a transfer is answered only by [`Zone::finish_transfer`]; otherwise at once.
    transfers_await_commit: bool,
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
        let placement = match config.placement {
            None => None,
            Some(p) => Some(place(&p, &config.movement)?),
        };
        config.gameplay.validate()?;
        if !(1..=replicate::MAX_REPLICATION_THREADS).contains(&config.replication_threads) {
            return Err(format!(
                "replication_threads: {} must be within 1..={}",
                config.replication_threads,
                replicate::MAX_REPLICATION_THREADS
            ));
        }
        let hitboxes = HitboxHistory::new(config.gameplay.lag_compensation(config.tick_rate))
            .map_err(|e| format!("gameplay lag compensation: {e}"))?;
        // Builds one character to prove the content can (starting kit, class, race).
        CharacterGameplay::new(
            &config.gameplay.content,
            config.gameplay.class,
            config.gameplay.race,
            0,
        )
        .map_err(|e| format!("gameplay: {e}"))?;
        let welcome_terms = WelcomeTerms {
            content_hash: config.gameplay.content.hash(),
            movement: config.movement.clone(),
            world_hash: config.movement.geometry.world_hash(),
        };
        let (id_stride, id_offset) = match &placement {
            None => (1, 1),
            Some(p) => (u32::from(p.layout.zone_count()), u32::from(p.zone.0) + 1),
        };
        Ok(Zone {
            config,
            tick: Tick(0),
            replication: ZoneReplication::new(SnapshotCodec::new(quantization), replicator),
            players: BTreeMap::new(),
            net_states: FastMap::default(),
            placement,
            ghosts: FastMap::default(),
            ghost_lists: BTreeMap::new(),
            departures: Vec::new(),
            ids: IdAllocator::new(id_stride, id_offset),
            events: Vec::new(),
            scratch_inputs: Vec::new(),
            entity_connections: FastMap::default(),
            welcome_terms,
            play: PlayState {
                hitboxes,
                requests: Vec::new(),
                combat_out: Vec::new(),
                dot_sources: FastMap::default(),
                scratch_capsules: Vec::new(),
                transfers: Vec::new(),
                transfers_await_commit: false,
            },
        })
    }

    /// This zone's id in its world (`ZoneId(0)` without placement).
    #[must_use]
    pub fn zone_id(&self) -> ZoneId {
        self.placement.as_ref().map_or(ZoneId(0), |p| p.zone)
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
        let id = ConnectionId(self.ids.next_connection());
        // The settings were validated in `new` with the same config.
        let connection = ServerConnection::new(now_us, self.config.connection)
            .unwrap_or_else(|e| unreachable!("connection config validated in Zone::new: {e}"));
        self.players.insert(id, Player::new(connection, None));
        id
    }

    /// Creates a connection for a session restarted here from its last save after the zone
    /// process that ran it stopped (see [`ServerConnection::rejoining`]): its login is
    /// pending at once, and accepting it (`accept_login_record`, `accept_login`) sends
    /// `Rejoined` instead of `Welcome`.
    pub fn connect_rejoining(&mut self, now_us: u64) -> ConnectionId {
        let id = ConnectionId(self.ids.next_connection());
        // The settings were validated in `new` with the same config.
        let connection = ServerConnection::rejoining(now_us, self.config.connection)
            .unwrap_or_else(|e| unreachable!("connection config validated in Zone::new: {e}"));
        self.players.insert(id, Player::new(connection, None));
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

    /// The connection's session continues over a new client connection (see
    /// [`ServerConnection::resume`]); false when it is not here or not active.
    pub fn resume(&mut self, id: ConnectionId) -> bool {
        let Some(p) = self.players.get_mut(&id) else {
            return false;
        };
        let resumed = p.connection.resume();
        self.collect_events(id);
        resumed
    }

    /// A datagram received on a connection.
    pub fn handle_datagram(&mut self, id: ConnectionId, now_us: u64, bytes: &[u8]) {
        if let Some(p) = self.players.get_mut(&id) {
            p.connection.handle_datagram(now_us, bytes);
            self.collect_events(id);
        }
    }

    /// Moves a connection's events to the zone's list; gameplay requests go to the
    /// gameplay phase instead, and rejected inputs add an anti-cheat strike.
    fn collect_events(&mut self, id: ConnectionId) {
        while let Some(event) = self
            .players
            .get_mut(&id)
            .and_then(|p| p.connection.poll_event())
        {
            match event {
                ServerEvent::AbilityRequested(r) => self.queue_request(id, Request::Ability(r)),
                ServerEvent::CastCancelRequested => self.queue_request(id, Request::Cancel),
                ServerEvent::InventoryRequested(r) => {
                    self.queue_request(id, Request::Inventory(r));
                }
                ServerEvent::InputRejected(rejection) => {
                    let (kind, detail) = (rejection.kind.as_str(), rejection.detail.clone());
                    self.events
                        .push((id, ServerEvent::InputRejected(rejection)));
                    self.strike_input(id, kind, &detail);
                }
                closed @ ServerEvent::Closed { .. } => {
                    self.retire_entity(id);
                    self.events.push((id, closed));
                }
                other => self.events.push((id, other)),
            }
        }
    }

    /// The gameplay state of `id`'s character (tests, admin, persistence).
    #[must_use]
    pub fn character_gameplay(&self, id: ConnectionId) -> Option<&CharacterGameplay> {
        self.players.get(&id)?.gameplay.as_ref()
    }

    /// Mutable gameplay state of `id`'s character (tests, admin, loot).
    pub fn character_gameplay_mut(&mut self, id: ConnectionId) -> Option<&mut CharacterGameplay> {
        self.players.get_mut(&id)?.gameplay.as_mut()
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
        let gameplay = self.new_character();
        self.accept_login_with(id, spawn, gameplay)
    }

    /// Accepts a pending login with the given character (a new one, or one restored from a
    /// record). `None` when no login is pending on `id`.
    fn accept_login_with(
        &mut self,
        id: ConnectionId,
        spawn: CharacterState,
        gameplay: Option<CharacterGameplay>,
    ) -> Option<EntityId> {
        let entity = EntityId(self.ids.peek_entity());
        let player = self.players.get_mut(&id)?;
        if !player.connection.accept_login(
            entity,
            self.tick,
            self.config.tick_rate,
            spawn,
            &self.welcome_terms,
        ) {
            return None;
        }
        self.ids.take_entity();
        player.entity = Some(entity);
        player.character = Some(spawn);
        self.net_states
            .insert(entity, player_replicated(&spawn, gameplay.as_ref()));
        player.gameplay = gameplay;
        self.entity_connections.insert(entity, id);
        self.send_gameplay_state(id);
        self.replication
            .replicator
            .update_entity(entity, spawn.position_m, PriorityCategory::High);
        // The client id mirrors the connection id; both are unique within the zone.
        if let Err(e) = self
            .replication
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
        self.retire_entity(id);
        if self.players.remove(&id).is_some() {
            self.replication.replicator.remove_client(ClientId(id.0));
        }
    }

    /// Takes the connection's character out of replication and gameplay: observers get a
    /// leave record at their next snapshot. Called when the connection closes (whatever
    /// closed it: the client's `Disconnect`, a kick, a protocol violation, a timeout, a
    /// duplicate login) and when it is removed; the second call finds nothing to do. The
    /// character itself stays with the player for the logout save until [`Zone::remove`].
    fn retire_entity(&mut self, id: ConnectionId) {
        let Some(entity) = self.players.get_mut(&id).and_then(|p| p.entity.take()) else {
            return;
        };
        self.replication.replicator.remove_entity(entity);
        self.net_states.remove(&entity);
        self.forget_local_character(entity);
    }

    /// Drops what this zone keeps about `entity` as one of its own characters: its
    /// connection, its hitboxes, the damage over time running on it. Its replication is the
    /// caller's (a handed-over character may stay as a ghost).
    fn forget_local_character(&mut self, entity: EntityId) {
        self.entity_connections.remove(&entity);
        self.play.hitboxes.remove(entity);
        self.play
            .dot_sources
            .retain(|(target, _), _| *target != entity);
    }

    /// Players reported since the last call whose character left this zone (see
    /// [`Zone::simulate`]); each is reported once while it stays outside. Empty without
    /// placement. Hand each over with [`Zone::take_player`].
    /// A departure whose character came back inside before the call (possible when the
    /// driver runs several ticks between calls) is dropped: only players still departing to
    /// that zone are reported.
    pub fn drain_departures(&mut self) -> std::vec::Drain<'_, Departure> {
        let players = &self.players;
        self.departures.retain(|d| {
            players
                .get(&d.connection)
                .is_some_and(|p| p.departing == Some(d.to))
        });
        self.departures.drain(..)
    }

    /// Removes a logged-in player for a handoff and returns its session; `None` when `id`
    /// is unknown or not logged in. If this zone must still see the character (within
    /// `border_m` of its rectangle) it stays here as a ghost of the zone that owns its
    /// position, so observers here see no leave; otherwise it leaves.
    ///
    /// Per tick, the driver of a multi-zone world calls, for every zone:
    /// 1. apply what neighbours sent since the last tick: [`Zone::insert_player`] for each
    ///    transfer (and route the connection's bytes to this zone from now on; bytes that
    ///    reached the old zone after the take must be forwarded, the control stream is
    ///    ordered), [`Zone::set_ghosts`] for each border export;
    /// 2. the usual: received bytes, [`Zone::handle_timeouts`], [`Zone::drain_events`],
    ///    [`Zone::run_tick`];
    /// 3. [`Zone::drain_departures`], then `take_player` for each and send the transfer
    ///    (with the connection's outbox) to the zone `to`;
    /// 4. for each neighbour, [`Zone::border_export`] and send it there;
    /// 5. flush transmits of the connections still here ([`Zone::poll_transmit`]; a
    ///    transfer carries those not yet flushed).
    pub fn take_player(&mut self, id: ConnectionId) -> Option<PlayerTransfer> {
        // The connection's own events become the zone's now: an encoded transfer carries
        // none.
        self.collect_events(id);
        let player = self.players.get(&id)?;
        let (Some(character), Some(entity)) = (player.character, player.connection.entity()) else {
            return None;
        };
        let mut player = self.players.remove(&id)?;
        self.forget_local_character(entity);
        let client = ClientId(id.0);
        let mut known = Vec::new();
        if let Err(e) = self.replication.replicator.visible_ids(client, &mut known) {
            tracing::error!(error = %e, "handoff: replication client missing");
        }
        // A player still waiting for its first snapshot here carries the old zone's set.
        if let Some(old_known) = player.handoff_known {
            known.extend(old_known);
            known.sort_unstable();
            known.dedup();
        }
        self.replication.replicator.remove_client(client);
        let from = self.zone_id();
        let owner = self
            .placement
            .as_ref()
            .map(|p| p.layout.zone_at(character.position_m))
            .filter(|&owner| owner != from);
        let still_seen = self
            .placement
            .as_ref()
            .is_some_and(|p| p.layout.sees(p.zone, character.position_m));
        match owner {
            Some(owner) if still_seen => {
                self.ghosts.insert(
                    entity,
                    Ghost {
                        from: owner,
                        since: self.tick,
                    },
                );
                let list = self.ghost_lists.entry(owner).or_default();
                if let Err(at) = list.ids.binary_search(&entity) {
                    list.ids.insert(at, entity);
                }
            }
            _ => {
                self.replication.replicator.remove_entity(entity);
                self.net_states.remove(&entity);
            }
        }
        Some(PlayerTransfer {
            connection: player.connection,
            character,
            entity,
            from,
            last_tick: player.resume_after.map_or(self.tick, |t| t.max(self.tick)),
            known,
            gameplay: player.gameplay.take(),
            cast_view: player.cast_view.take(),
        })
    }

    /// Continues a handed-over session here under the same connection id (ids are
    /// globally unique, see [`crate::world`]). Its next snapshot continues the sequence and
    /// baselines. Refused, handing the transfer back, when `id` or the entity is already
    /// local here.
    pub fn insert_player(
        &mut self,
        id: ConnectionId,
        transfer: PlayerTransfer,
    ) -> Result<(), Box<TransferRejected>> {
        let reject =
            |transfer, reason: String| Err(Box::new(TransferRejected { transfer, reason }));
        let entity = transfer.entity;
        if self.players.contains_key(&id) {
            return reject(
                transfer,
                format!("connection {} is already in this zone", id.0),
            );
        }
        if transfer.connection.entity() != Some(entity) {
            return reject(
                transfer,
                "the transferred connection is not active".to_owned(),
            );
        }
        if self.net_states.contains_key(&entity) && !self.ghosts.contains_key(&entity) {
            return reject(
                transfer,
                format!("entity {} is already local here", entity.0),
            );
        }
        if let Some(ghost) = self.ghosts.remove(&entity)
            && let Some(list) = self.ghost_lists.get_mut(&ghost.from)
            && let Ok(at) = list.ids.binary_search(&entity)
        {
            list.ids.remove(at);
        }
        let PlayerTransfer {
            connection,
            character,
            last_tick,
            known,
            gameplay,
            cast_view,
            ..
        } = transfer;
        // Same id as the ghost, if there was one: the grid entry is updated in place.
        self.replication.replicator.update_entity(
            entity,
            character.position_m,
            PriorityCategory::High,
        );
        self.net_states
            .insert(entity, player_replicated(&character, gameplay.as_ref()));
        if let Err(e) = self
            .replication
            .replicator
            .add_client(ClientId(id.0), Viewer::Entity(entity))
        {
            tracing::error!(error = %e, "replication client not added");
        }
        let mut player = Player::new(connection, Some(character));
        player.entity = Some(entity);
        player.resume_after = Some(last_tick);
        player.handoff_known = Some(known);
        player.gameplay = gameplay;
        player.cast_view = cast_view;
        self.players.insert(id, player);
        self.entity_connections.insert(entity, id);
        self.collect_events(id);
        Ok(())
    }

    /// This zone's characters within `border_m` of `neighbour`'s rectangle, for the
    /// neighbour's [`Zone::set_ghosts`]. Empty without placement or for a zone that is not a
    /// neighbour. Call after [`Zone::run_tick`].
    #[must_use]
    pub fn border_export(&self, neighbour: ZoneId) -> BorderExport {
        let mut export = BorderExport {
            from: self.zone_id(),
            tick: self.tick,
            states: Vec::new(),
        };
        let Some(placed) = &self.placement else {
            return export;
        };
        if neighbour == placed.zone {
            return export;
        }
        let Some(rect) = placed.layout.bounds(neighbour) else {
            return export;
        };
        let border_m = placed.layout.border_m();
        for player in self.players.values() {
            if let (Some(c), Some(id)) = (&player.character, player.connection.entity())
                && rect.distance_m(c.position_m) <= border_m
            {
                export.states.push(GhostState {
                    id,
                    state: player_replicated(c, player.gameplay.as_ref()).state,
                    archetype: PLAYER_ARCHETYPE,
                    category: PriorityCategory::High,
                });
            }
        }
        export
    }

    /// Shows a neighbour's border entities here, replacing the previous list from
    /// `export.from`: new ids enter (for the clients that see them), listed ones move, ids
    /// missing from the list leave. Entities local here (a character just handed over) are
    /// skipped; an export older than the last one applied from that zone is ignored. Fails,
    /// changing nothing, without placement or when `export.from` is not a neighbour.
    pub fn set_ghosts(&mut self, export: &BorderExport) -> Result<(), String> {
        let Some(placed) = &self.placement else {
            return Err("set_ghosts: this zone has no placement in a world".to_owned());
        };
        let from = export.from;
        if !placed.layout.neighbours(placed.zone).contains(&from) {
            return Err(format!(
                "set_ghosts: zone {} is not a neighbour of zone {}",
                from.0, placed.zone.0
            ));
        }
        let mut list = self.ghost_lists.remove(&from).unwrap_or_default();
        if list.tick.is_some_and(|t| export.tick < t) {
            self.ghost_lists.insert(from, list);
            return Ok(());
        }
        let mut ids = Vec::with_capacity(export.states.len());
        for g in &export.states {
            match self.ghosts.get_mut(&g.id) {
                Some(ghost) => ghost.from = from,
                None if self.net_states.contains_key(&g.id) => continue,
                None => {
                    self.ghosts.insert(
                        g.id,
                        Ghost {
                            from,
                            since: export.tick,
                        },
                    );
                }
            }
            self.replication
                .replicator
                .update_entity(g.id, g.state.position_m, g.category);
            self.net_states.insert(
                g.id,
                Replicated {
                    state: g.state,
                    archetype: g.archetype,
                    category: g.category,
                },
            );
            ids.push(g.id);
        }
        ids.sort_unstable();
        ids.dedup();
        for &old in &list.ids {
            if ids.binary_search(&old).is_ok() {
                continue;
            }
            let Some(ghost) = self.ghosts.get(&old).copied() else {
                continue;
            };
            if ghost.from != from {
                // Now listed by another neighbour.
                continue;
            }
            if ghost.since < export.tick {
                self.ghosts.remove(&old);
                self.replication.replicator.remove_entity(old);
                self.net_states.remove(&old);
            } else {
                ids.push(old);
            }
        }
        ids.sort_unstable();
        list.ids = ids;
        list.tick = Some(export.tick);
        self.ghost_lists.insert(from, list);
        Ok(())
    }

    /// Number of neighbours' entities shown here.
    #[must_use]
    pub fn ghost_count(&self) -> usize {
        self.ghosts.len()
    }

    /// True when `entity` is a neighbour's entity shown here.
    #[must_use]
    pub fn is_ghost(&self, entity: EntityId) -> bool {
        self.ghosts.contains_key(&entity)
    }

    /// The replicated state of a local or ghost entity.
    #[must_use]
    pub fn entity_state(&self, entity: EntityId) -> Option<NetEntityState> {
        self.net_states.get(&entity).map(|r| r.state)
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
        self.run_gameplay();
        self.replicate(&mut report);
        report
    }

    /// Runs one tick without its replication phase: [`Zone::advance_tick`],
    /// [`Zone::simulate`] and the gameplay phase. A driver whose tick overran calls this for
    /// each tick it cannot replicate in time, so every queued input is still applied at its
    /// tick (inputs never wait for replication); the clients' next snapshot covers the
    /// skipped ones.
    pub fn run_tick_without_replication(&mut self) -> TickReport {
        let mut report = TickReport {
            tick: self.advance_tick(),
            ..TickReport::default()
        };
        report.inputs_applied = self.simulate();
        self.run_gameplay();
        report
    }

    /// Puts a zone that has not run yet at `tick`, so that it keeps a fleet's tick numbering
    /// (every zone process of a world numbers ticks from the world's epoch: see
    /// `docs/fleet.md`). The next [`Zone::run_tick`] runs `tick + 1`.
    ///
    /// # Errors
    /// The zone has connections or already ran a tick (its numbering is in use).
    pub fn start_at_tick(&mut self, tick: Tick) -> Result<(), String> {
        if self.tick != Tick(0) || !self.players.is_empty() {
            return Err(format!(
                "zone {} already runs (tick {}, {} connections): its tick cannot be set",
                self.zone_id().0,
                self.tick.0,
                self.players.len()
            ));
        }
        self.tick = tick;
        Ok(())
    }

    /// Ids a zone run hands out before it reaches the next run's (see
    /// [`Zone::start_ids_for_run`]).
    pub const IDS_PER_RUN: u32 = 1 << 18;

    /// Makes a zone that has not handed out ids yet start its connection and entity ids in
    /// slot `run mod slots` of its residue class, where a slot is [`Zone::IDS_PER_RUN`]
    /// ids and `slots` as many as the class holds (at least 1). A zone process passes its
    /// lease's fencing token, which grows with every run of the zone, so a replacement
    /// does not hand out again the ids of players its predecessor handed to other
    /// processes (until `slots` runs later, or a run that handed out more than a slot).
    ///
    /// # Errors
    /// The zone handed out ids already.
    pub fn start_ids_for_run(&mut self, run: u64) -> Result<(), String> {
        let slots = (self.ids.capacity() / Self::IDS_PER_RUN)
            .saturating_sub(1)
            .max(1);
        let slot = (run % u64::from(slots)) as u32;
        self.ids
            .start_at(slot * Self::IDS_PER_RUN)
            .map_err(|e| format!("zone {}: {e}", self.zone_id().0))
    }

    /// Starts the next tick and returns it. [`Zone::run_tick`] does this; call it directly
    /// only to run (and time) the phases one by one.
    pub fn advance_tick(&mut self) -> Tick {
        self.tick = self.tick.next();
        self.expire_ghost_lists();
        self.tick
    }

    /// A neighbour whose border list is older than [`GHOST_SILENCE_S`] stopped exporting
    /// (its zone process died, or the link to it): its ghosts leave, as if it had sent an
    /// empty list.
    fn expire_ghost_lists(&mut self) {
        let silence_ticks = (GHOST_SILENCE_S * self.config.tick_rate.hz() as f32) as u32;
        let now = self.tick;
        let stale: Vec<ZoneId> = self
            .ghost_lists
            .iter()
            .filter(|(_, list)| {
                !list.ids.is_empty() && list.tick.is_some_and(|t| now.since(t) > silence_ticks)
            })
            .map(|(&from, _)| from)
            .collect();
        for from in stale {
            let empty = BorderExport {
                from,
                tick: now,
                states: Vec::new(),
            };
            if let Err(e) = self.set_ghosts(&empty) {
                tracing::error!(error = %e, "stale border list not cleared");
            }
        }
    }

    /// Steps every character through its queued inputs; returns the inputs applied.
    /// With placement, characters that left the zone are reported for
    /// [`Zone::drain_departures`].
    pub fn simulate(&mut self) -> u32 {
        let dt_s = self.config.tick_rate.dt_s();
        let now_ms = self.config.tick_rate.tick_start_us(self.tick) / 1000;
        let mut applied = 0;
        for (id, player) in &mut self.players {
            let (Some(character), Some(entity)) =
                (player.character.as_mut(), player.connection.entity())
            else {
                continue;
            };
            player
                .connection
                .take_inputs_for_tick(&mut self.scratch_inputs);
            let speed = player
                .gameplay
                .as_ref()
                .map_or(1.0, |g| g.effects.speed_factor(now_ms));
            let dead = player.gameplay.as_ref().is_some_and(|g| g.pools.is_dead());
            for (_, input) in &self.scratch_inputs {
                // The dead do not move; a slow scales the stick (the client does not
                // predict either and is corrected).
                let input = if dead {
                    MoveInput {
                        forward_q: 0,
                        right_q: 0,
                        buttons: crate::input::Buttons(0),
                        ..*input
                    }
                } else if speed < 1.0 {
                    scaled_input(input, speed)
                } else {
                    *input
                };
                *character = movement::step(&self.config.movement, character, &input, dt_s);
                applied += 1;
            }
            self.replication.replicator.update_entity(
                entity,
                character.position_m,
                PriorityCategory::High,
            );
            self.net_states.insert(
                entity,
                player_replicated(character, player.gameplay.as_ref()),
            );
            if let Some(placed) = &self.placement {
                if placed.rect.distance_m(character.position_m) > placed.handoff_margin_m {
                    let to = placed.layout.zone_at(character.position_m);
                    if to != placed.zone && player.departing.is_none() {
                        player.departing = Some(to);
                        self.departures.push(Departure {
                            connection: *id,
                            to,
                        });
                    }
                } else {
                    player.departing = None;
                }
            }
        }
        applied
    }

    /// Writes this tick's world frame, then sends every logged-in connection its snapshot
    /// (see `replicate.rs`).
    pub fn replicate(&mut self, report: &mut TickReport) {
        self.replication.write_frame(self.tick, &self.net_states);
        self.replication
            .replicate(self.tick, &self.config, &mut self.players, report);
    }

    /// Sets the overload level (`0..=`[`crate::replication::overload::MAX_LEVEL`], larger
    /// values are clamped): from the next [`Zone::replicate`] on, each snapshot's records fill
    /// at most [`crate::replication::overload::budget_share_percent`] of the budget's per-tick
    /// record bytes,
    /// so replication costs less and the far tiers lose their updates first. The
    /// driver chooses the level ([`crate::replication::overload::OverloadGovernor`]).
    pub fn set_overload_level(&mut self, level: u8) {
        self.replication.overload_level = level.min(crate::replication::overload::MAX_LEVEL);
    }

    /// The world frame the last [`Zone::replicate`] wrote: every replicated entity's
    /// quantized state at that tick.
    #[must_use]
    pub fn world_frame(&self) -> &WorldFrame {
        &self.replication.frame
    }

    /// Heap bytes of the replication state, by part, from the buffers' capacities (an
    /// estimate: allocator overhead is not counted; the replication benchmark compares it
    /// with a counting allocator).
    #[must_use]
    pub fn replication_memory(&self) -> ReplicationMemory {
        ReplicationMemory {
            histories_bytes: self
                .players
                .values()
                .map(|p| p.connection.replication_heap_bytes())
                .sum(),
            views_bytes: self.replication.replicator.views_heap_bytes(),
            shared_bytes: self.replication.shared_heap_bytes(),
        }
    }
}

/// The replication state's heap, by part (see [`Zone::replication_memory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicationMemory {
    /// Every connection's snapshot history: records of the snapshots in flight, per-entity
    /// baselines, queued acknowledgements.
    pub histories_bytes: usize,
    /// Every client's view: visible set, priority queues, budget, plan.
    pub views_bytes: usize,
    /// Shared by all clients: the interest grid, the world frame, the replication threads'
    /// scratch buffers and record caches.
    pub shared_bytes: usize,
}

impl ReplicationMemory {
    /// All parts.
    #[must_use]
    pub fn total_bytes(&self) -> usize {
        self.histories_bytes + self.views_bytes + self.shared_bytes
    }
}

/// `input` with its stick scaled by `factor` (`0..=1`), sprint cleared.
fn scaled_input(input: &MoveInput, factor: f32) -> MoveInput {
    let scale = |q: i8| (f32::from(q) * factor.clamp(0.0, 1.0)).round() as i8;
    MoveInput {
        forward_q: scale(input.forward_q),
        right_q: scale(input.right_q),
        buttons: crate::input::Buttons(input.buttons.0 & !crate::input::Buttons::SPRINT),
        ..*input
    }
}

/// The replicated view of a player's character: position, yaw, and the flags byte with its
/// health ([`crate::entity_flags`]; full health before gameplay state exists).
fn player_replicated(c: &CharacterState, gameplay: Option<&CharacterGameplay>) -> Replicated {
    let mut state = net_state(c);
    if let Some(g) = gameplay {
        state.flags =
            crate::entity_flags::encode(c.on_ground, g.pools.health(), g.pools.health_max());
    }
    Replicated {
        state,
        archetype: PLAYER_ARCHETYPE,
        category: PriorityCategory::High,
    }
}

/// Validates a placement against the movement rules.
fn place(p: &ZonePlacement, movement: &MovementConfig) -> Result<Placed, String> {
    let rect = p.layout.bounds(p.zone).ok_or_else(|| {
        format!(
            "placement.zone: zone {} is not in the {}-zone layout",
            p.zone.0,
            p.layout.zone_count()
        )
    })?;
    if !(p.handoff_margin_m.is_finite()
        && p.handoff_margin_m >= 0.0
        && p.handoff_margin_m <= p.layout.border_m())
    {
        return Err(format!(
            "placement.handoff_margin_m: {} must be finite and within 0..={} (the border)",
            p.handoff_margin_m,
            p.layout.border_m()
        ));
    }
    let world = p.layout.world();
    let b = movement.bounds;
    if b.min_xy_m.x > world.min_xy_m.x
        || b.min_xy_m.y > world.min_xy_m.y
        || b.max_xy_m.x < world.max_xy_m.x
        || b.max_xy_m.y < world.max_xy_m.y
    {
        return Err(
            "placement: movement.bounds must contain the world rectangle, or characters \
             cannot cross into neighbour zones"
                .to_owned(),
        );
    }
    Ok(Placed {
        layout: p.layout,
        zone: p.zone,
        rect,
        handoff_margin_m: p.handoff_margin_m,
    })
}

/// The replicated view of a character without gameplay state (health shown as full).
#[must_use]
pub fn net_state(c: &CharacterState) -> NetEntityState {
    NetEntityState {
        position_m: c.position_m,
        yaw_rad: c.yaw_rad,
        flags: crate::entity_flags::encode(c.on_ground, 1, 1),
    }
}

/// Helpers the zone's unit tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{ConnectionId, Zone};
    use crate::control::{self, ClientControl};

    /// A new connection that sent its login (events drained): its login is pending.
    pub(crate) fn pending_login(zone: &mut Zone) -> ConnectionId {
        let id = zone.connect(0);
        let mut login = Vec::new();
        control::encode_frame(
            &ClientControl::Login {
                protocol_version: crate::PROTOCOL_VERSION,
                token: "t".into(),
            },
            &mut login,
        )
        .expect("encodable");
        zone.handle_stream(id, 0, &login);
        let _ = zone.drain_events().count();
        id
    }
}

#[cfg(test)]
mod tests {
    use glam::Vec2;

    use super::*;
    use crate::session::server::ConnectionState;

    const BORDER_M: f32 = 30.0;

    fn layout() -> WorldLayout {
        WorldLayout::new(
            Rect::new(Vec2::ZERO, Vec2::new(200.0, 100.0)),
            2,
            1,
            BORDER_M,
        )
        .expect("valid layout")
    }

    fn zone(index: u16) -> Zone {
        Zone::new(ZoneConfig {
            placement: Some(ZonePlacement::new(layout(), ZoneId(index))),
            ..ZoneConfig::default()
        })
        .expect("valid zone")
    }

    /// A logged-in player standing at `(x, 50)`.
    fn player_at(zone: &mut Zone, x_m: f32) -> (ConnectionId, EntityId) {
        let id = test_support::pending_login(zone);
        let entity = zone
            .accept_login_at(id, CharacterState::at(Vec3::new(x_m, 50.0, 0.0)))
            .expect("login pending");
        (id, entity)
    }

    fn move_to(zone: &mut Zone, id: ConnectionId, x_m: f32) {
        assert!(zone.set_character(id, CharacterState::at(Vec3::new(x_m, 50.0, 0.0))));
    }

    #[test]
    fn single_zone_numbers_ids_as_before() {
        let mut z = Zone::new(ZoneConfig::default()).expect("valid");
        let (c1, e1) = player_at(&mut z, 0.0);
        let (c2, e2) = player_at(&mut z, 1.0);
        assert_eq!((c1, c2), (ConnectionId(1), ConnectionId(2)));
        assert_eq!((e1, e2), (EntityId(1), EntityId(2)));
        z.run_tick();
        assert_eq!(z.drain_departures().count(), 0);
        assert!(z.set_ghosts(&z.border_export(ZoneId(1))).is_err());
    }

    #[test]
    fn zones_allocate_disjoint_ids() {
        let (mut a, mut b) = (zone(0), zone(1));
        let ids: Vec<_> = (0..3)
            .flat_map(|i| [player_at(&mut a, 10.0 + i as f32), player_at(&mut b, 150.0)])
            .collect();
        let mut connections: Vec<u32> = ids.iter().map(|(c, _)| c.0).collect();
        let mut entities: Vec<u32> = ids.iter().map(|(_, e)| e.0).collect();
        connections.sort_unstable();
        entities.sort_unstable();
        assert_eq!(connections, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(entities, vec![1, 2, 3, 4, 5, 6]);
        assert!(
            ids.iter()
                .step_by(2)
                .all(|(c, e)| c.0 % 2 == 1 && e.0 % 2 == 1)
        );
    }

    #[test]
    fn departure_waits_for_the_margin_and_is_reported_once() {
        let mut z0 = zone(0);
        let (id, _) = player_at(&mut z0, 95.0);
        z0.run_tick();
        move_to(&mut z0, id, 101.9);
        z0.run_tick();
        assert_eq!(z0.drain_departures().count(), 0, "within the 2 m margin");
        move_to(&mut z0, id, 102.5);
        z0.run_tick();
        let d: Vec<_> = z0.drain_departures().collect();
        assert_eq!(
            d,
            vec![Departure {
                connection: id,
                to: ZoneId(1)
            }]
        );
        z0.run_tick();
        assert_eq!(z0.drain_departures().count(), 0, "reported once");
        // Back inside, out again: reported again.
        move_to(&mut z0, id, 99.0);
        z0.run_tick();
        move_to(&mut z0, id, 103.0);
        z0.run_tick();
        assert_eq!(z0.drain_departures().count(), 1);
    }

    #[test]
    fn a_departure_is_dropped_when_the_character_came_back_before_the_drain() {
        let mut z0 = zone(0);
        let (id, _) = player_at(&mut z0, 95.0);
        z0.run_tick();
        // Two ticks run before the driver drains (a catch-up): out, then back inside.
        move_to(&mut z0, id, 103.0);
        z0.run_tick_without_replication();
        move_to(&mut z0, id, 99.0);
        z0.run_tick_without_replication();
        assert_eq!(z0.drain_departures().count(), 0, "back inside: no handoff");
        move_to(&mut z0, id, 103.0);
        z0.run_tick();
        assert_eq!(z0.drain_departures().count(), 1);
    }

    #[test]
    fn handoff_moves_the_session_and_keeps_a_ghost_behind() {
        let (mut z0, mut z1) = (zone(0), zone(1));
        let (id, entity) = player_at(&mut z0, 95.0);
        // Zone 1 already shows the character as a ghost.
        z0.run_tick();
        z1.run_tick();
        z1.set_ghosts(&z0.border_export(ZoneId(1)))
            .expect("neighbour");
        assert!(z1.is_ghost(entity));
        move_to(&mut z0, id, 103.0);
        z0.run_tick();
        z1.run_tick();
        let Departure { connection, to } = z0.drain_departures().next().expect("departed");
        assert_eq!((connection, to), (id, ZoneId(1)));
        let snapshots_before = z0.connection(id).expect("present").stats().snapshots_sent;
        let transfer = z0.take_player(id).expect("logged in");
        assert_eq!(transfer.entity(), entity);
        assert_eq!(transfer.from(), ZoneId(0));
        assert!(z0.connection(id).is_none());
        assert!(z0.is_ghost(entity), "still within zone 0's border");
        z1.insert_player(id, transfer).expect("accepted");
        assert!(!z1.is_ghost(entity), "local now");
        assert_eq!(
            z1.connection(id).map(ServerConnection::state),
            Some(ConnectionState::Active { entity })
        );
        assert_eq!(
            z1.character(id).map(|c| c.position_m.x),
            Some(103.0),
            "character carried over"
        );
        // Same tick as the old zone's last snapshot: nothing sent yet; then it continues.
        let report = z1.replicate_for_test();
        assert_eq!(report.snapshots_sent, 0);
        z1.run_tick();
        assert_eq!(
            z1.connection(id).expect("present").stats().snapshots_sent,
            snapshots_before + 1
        );
        // Zone 1's next export lists it (as zone 0's ghost); once it is far, it goes.
        z0.set_ghosts(&z1.border_export(ZoneId(0)))
            .expect("neighbour");
        assert!(z0.is_ghost(entity));
        move_to(&mut z1, id, 150.0);
        z1.run_tick();
        z0.run_tick();
        z0.set_ghosts(&z1.border_export(ZoneId(0)))
            .expect("neighbour");
        assert!(!z0.is_ghost(entity));
        assert_eq!(z0.entity_state(entity), None);
    }

    #[test]
    fn handoff_ghost_survives_the_new_owners_export_of_the_same_tick() {
        let (mut z0, mut z1) = (zone(0), zone(1));
        let (id, entity) = player_at(&mut z0, 103.0);
        z0.run_tick();
        z1.run_tick();
        // Zone 1 exported before the player arrived (another thread's order).
        let early = z1.border_export(ZoneId(0));
        let transfer = z0.take_player(id).expect("logged in");
        z0.set_ghosts(&early).expect("neighbour");
        assert!(
            z0.is_ghost(entity),
            "an export of the take's tick cannot remove it"
        );
        // A stale export of zone 0 listing the player reaches zone 1 after the insert.
        let stale = BorderExport {
            from: ZoneId(0),
            tick: z0.tick(),
            states: vec![GhostState {
                id: entity,
                state: net_state(&CharacterState::at(Vec3::new(99.0, 50.0, 0.0))),
                archetype: PLAYER_ARCHETYPE,
                category: PriorityCategory::High,
            }],
        };
        z1.insert_player(id, transfer).expect("accepted");
        z1.set_ghosts(&stale).expect("neighbour");
        assert!(
            !z1.is_ghost(entity),
            "a local character is not overwritten by a ghost"
        );
        assert_eq!(z1.character(id).map(|c| c.position_m.x), Some(103.0));
    }

    #[test]
    fn ghosts_follow_the_lists() {
        let (mut z0, mut z1) = (zone(0), zone(1));
        let (id, entity) = player_at(&mut z0, 75.0);
        z0.run_tick();
        let first = z0.border_export(ZoneId(1));
        assert_eq!(first.states.len(), 1);
        assert!(
            z0.border_export(ZoneId(0)).states.is_empty(),
            "not a neighbour"
        );
        z1.set_ghosts(&first).expect("neighbour");
        assert_eq!(z1.ghost_count(), 1);
        move_to(&mut z0, id, 40.0);
        z0.run_tick();
        let second = z0.border_export(ZoneId(1));
        assert!(second.states.is_empty(), "40 m is outside the 30 m border");
        z1.set_ghosts(&second).expect("neighbour");
        assert_eq!(z1.ghost_count(), 0);
        // An older list arriving late changes nothing.
        z1.set_ghosts(&first).expect("neighbour");
        assert_eq!(z1.ghost_count(), 0);
        assert!(!z1.is_ghost(entity));
        let bad = BorderExport {
            from: ZoneId(1),
            tick: Tick(9),
            states: Vec::new(),
        };
        let e = z1.set_ghosts(&bad).expect_err("own id");
        assert!(e.contains("not a neighbour"), "{e}");
    }

    #[test]
    fn insert_refuses_a_duplicate_connection() {
        let (mut z0, mut z1) = (zone(0), zone(1));
        let (id, _) = player_at(&mut z0, 103.0);
        z0.run_tick();
        let transfer = z0.take_player(id).expect("logged in");
        let other = z1.connect(0);
        let rejected = z1.insert_player(other, transfer).expect_err("id in use");
        assert!(rejected.reason.contains("already"), "{}", rejected.reason);
        assert!(z1.insert_player(id, rejected.transfer).is_ok());
        assert!(z1.take_player(other).is_none(), "not logged in");
    }

    #[test]
    fn bad_placements_are_rejected() {
        let mk = |placement: ZonePlacement, movement: MovementConfig| {
            Zone::new(ZoneConfig {
                placement: Some(placement),
                movement,
                ..ZoneConfig::default()
            })
            .expect_err("invalid")
        };
        let e = mk(
            ZonePlacement::new(layout(), ZoneId(2)),
            MovementConfig::default(),
        );
        assert!(e.contains("placement.zone"), "{e}");
        let mut p = ZonePlacement::new(layout(), ZoneId(0));
        p.handoff_margin_m = BORDER_M + 1.0;
        assert!(
            mk(p, MovementConfig::default()).contains("handoff_margin_m"),
            "margin"
        );
        let mut small = MovementConfig::default();
        small.bounds.max_xy_m = Vec2::new(100.0, 100.0);
        let e = mk(ZonePlacement::new(layout(), ZoneId(0)), small);
        assert!(e.contains("movement.bounds"), "{e}");
    }

    #[test]
    fn the_world_frame_holds_every_local_and_ghost_entity_of_the_tick() {
        let (mut z0, mut z1) = (zone(0), zone(1));
        let (_, a) = player_at(&mut z0, 95.0);
        let (_, b) = player_at(&mut z1, 150.0);
        z0.run_tick();
        z1.run_tick();
        z1.set_ghosts(&z0.border_export(ZoneId(1)))
            .expect("neighbour");
        z1.run_tick();
        let frame = z1.world_frame();
        assert_eq!(frame.tick, z1.tick());
        let mut want = vec![a, b];
        want.sort_unstable();
        let ids: Vec<EntityId> = frame.entities.iter().map(|e| e.id).collect();
        assert_eq!(ids, want);
        let q = z1.replication.codec.quantization();
        for e in &frame.entities {
            let state = z1.entity_state(e.id).expect("replicated");
            assert_eq!(e.state, q.quantize_state(&state));
            assert_eq!(e.archetype, PLAYER_ARCHETYPE);
        }
        assert!(frame.validate(q).is_ok());
    }

    #[test]
    fn a_closed_connection_leaves_observers_before_it_is_removed() {
        for reason in [
            DisconnectReason::ClientQuit,
            DisconnectReason::Kicked,
            DisconnectReason::ProtocolViolation,
            DisconnectReason::Timeout,
            DisconnectReason::DuplicateLogin,
        ] {
            let mut z = Zone::new(ZoneConfig::default()).expect("valid");
            let (leaver, entity) = player_at(&mut z, 10.0);
            let (observer, _) = player_at(&mut z, 12.0);
            z.run_tick();
            let mut visible = Vec::new();
            z.replication
                .replicator
                .visible_ids(ClientId(observer.0), &mut visible)
                .expect("observer");
            assert_eq!(visible, vec![entity]);
            z.close(leaver, reason, "bye");
            assert_eq!(z.entity_state(entity), None, "{reason:?}");
            z.run_tick();
            z.replication
                .replicator
                .visible_ids(ClientId(observer.0), &mut visible)
                .expect("observer");
            assert!(visible.is_empty(), "{reason:?}: still visible");
            // The character stays for the logout save until the driver removes it.
            assert!(z.character(leaver).is_some());
            z.remove(leaver);
            assert!(z.character(leaver).is_none());
        }
    }

    #[test]
    fn transfer_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<PlayerTransfer>();
        assert_send::<BorderExport>();
    }

    impl Zone {
        fn replicate_for_test(&mut self) -> TickReport {
            let mut report = TickReport::default();
            self.replicate(&mut report);
            report
        }
    }
}
