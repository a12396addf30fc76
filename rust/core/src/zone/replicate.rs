//! The zone's replication phase: after simulation and gameplay, one world frame, then one
//! snapshot per logged-in connection.
//!
//! Per tick ([`ZoneReplication::write_frame`], then [`ZoneReplication::replicate`]):
//! 1. the world frame: every replicated entity (local characters and neighbours' ghosts)
//!    quantized once, in ascending id order ([`WorldFrame`]);
//! 2. per connection, in connection-id order: the snapshot acks that arrived since the last
//!    tick are applied (they are queued on arrival, see
//!    [`crate::session::snapshot_stream`]); the replicator plans the tick (interest refresh
//!    when due, leaves, the best candidates the budget can carry); entities that left are
//!    forgotten (leave records); the candidates' states are read from the frame and coded
//!    against the client's baselines; what was written is committed back to the replicator
//!    so unsent entities keep accumulating priority.
//!
//! Everything a client's snapshot depends on is the frame, the grid and that client's own
//! state, so clients are independent given the frame: [`ZoneConfig::replication_threads`]
//! threads (the zone's own and scoped workers spawned for the phase) each take a contiguous
//! chunk of the connections, and the datagrams are bit for bit those of one thread (a test
//! compares). Workers are spawned per tick (tens of microseconds against a phase of
//! milliseconds); a persistent pool would save that and is not done.

use std::collections::BTreeMap;

use super::{ConnectionId, Player, Replicated, TickReport, ZoneConfig};
use crate::codec::record_cache::RecordCache;
use crate::codec::snapshot::{QuantizedRecordIn, SnapshotCodec, WrittenRecord};
use crate::entity::EntityId;
use crate::fast_hash::FastMap;
use crate::replication::{
    ClientTick, FrameEntity, Replicator, SharedPlanning, WorldFrame, overload,
};
use crate::session::snapshot_stream::EncodeBuffers;
use crate::time::Tick;

/// Bytes of a snapshot besides its records, rounded up: header, owner state, counts.
const FIXED_SNAPSHOT_BYTES: usize = 64;

/// The replication side of a zone: the frame, the replicator (interest, priority,
/// budgets of every client) and the encoder with its scratch buffers.
#[derive(Debug)]
pub(super) struct ZoneReplication {
    pub(super) codec: SnapshotCodec,
    pub(super) replicator: Replicator,
    /// The last frame written.
    pub(super) frame: WorldFrame,
    /// The zone thread's buffers.
    scratch: Scratch,
    /// One set per extra worker thread.
    worker_scratch: Vec<Scratch>,
    /// Overload level (`replication::overload`): above 0, each snapshot's records fill at
    /// most `budget_share_percent(level)` % of the budget's per-tick record bytes.
    pub(super) overload_level: u8,
}

/// Buffers reused from client to client and tick to tick (no allocation per client).
#[derive(Debug, Default)]
struct Scratch {
    candidates: Vec<EntityId>,
    records: Vec<QuantizedRecordIn>,
    written: Vec<WrittenRecord>,
    sent: Vec<EntityId>,
    datagram: Vec<u8>,
    visible: Vec<EntityId>,
    /// Delta record bodies shared between this thread's clients.
    cache: RecordCache,
}

impl Scratch {
    fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        (self.candidates.capacity() + self.sent.capacity() + self.visible.capacity())
            * size_of::<EntityId>()
            + self.records.capacity() * size_of::<QuantizedRecordIn>()
            + self.written.capacity() * size_of::<WrittenRecord>()
            + self.datagram.capacity()
            + self.cache.heap_bytes()
    }
}

impl ZoneReplication {
    pub(super) fn new(codec: SnapshotCodec, replicator: Replicator) -> Self {
        ZoneReplication {
            codec,
            replicator,
            frame: WorldFrame::default(),
            scratch: Scratch::default(),
            worker_scratch: Vec::new(),
            overload_level: 0,
        }
    }

    /// Heap bytes of what every client shares: the grid, the frame, the threads' scratch
    /// and record caches (capacities).
    pub(super) fn shared_heap_bytes(&self) -> usize {
        self.replicator.grid_heap_bytes()
            + self.frame.entities.capacity() * std::mem::size_of::<FrameEntity>()
            + self.scratch.heap_bytes()
            + self
                .worker_scratch
                .iter()
                .map(Scratch::heap_bytes)
                .sum::<usize>()
    }

    /// Writes the frame of `tick` from the current replicated states (the map is iterated
    /// in no particular order; the frame sorts by id, so the result is deterministic).
    pub(super) fn write_frame(&mut self, tick: Tick, states: &FastMap<EntityId, Replicated>) {
        let q = self.codec.quantization();
        self.frame.rebuild(
            tick,
            states.iter().map(|(&id, r)| FrameEntity {
                id,
                archetype: r.archetype,
                category: r.category,
                state: q.quantize_state(&r.state),
            }),
        );
    }

    /// Sends every logged-in connection its snapshot for `tick` from the current frame,
    /// spreading the connections over `config.replication_threads` threads (this one and
    /// scoped workers) in contiguous chunks of connection-id order. The datagrams are the
    /// same whatever the thread count: a connection's snapshot depends only on the frame,
    /// the shared grid (read-only here) and its own state.
    pub(super) fn replicate(
        &mut self,
        tick: Tick,
        config: &ZoneConfig,
        players: &mut BTreeMap<ConnectionId, Player>,
        report: &mut TickReport,
    ) {
        let ZoneReplication {
            codec,
            replicator,
            frame,
            scratch,
            worker_scratch,
            overload_level,
        } = self;
        let (shared, clients) = replicator.client_ticks();
        // Pair each logged-in player with its replication client (both ascending by id;
        // client ids mirror connection ids).
        let mut work: Vec<ClientWork<'_>> = Vec::with_capacity(clients.len());
        let mut clients = clients.into_iter().peekable();
        for (id, player) in players.iter_mut() {
            while clients.next_if(|c| c.client().0 < id.0).is_some() {}
            let Some(view) = clients.next_if(|c| c.client().0 == id.0) else {
                continue;
            };
            if player.connection.entity().is_none()
                || player.resume_after.is_some_and(|last| tick <= last)
            {
                continue;
            }
            work.push(ClientWork {
                id: *id,
                player,
                view,
            });
        }
        let pass = Pass {
            tick,
            max_len_bytes: config.snapshot.max_len_bytes,
            shared_encoding: config.shared_encoding,
            degraded_room_bytes: (*overload_level > 0).then(|| {
                let per_tick_bytes = (u64::from(config.replication.budget_bytes_per_s)
                    / u64::from(config.tick_rate.hz().max(1)))
                    as usize;
                // The share is of the bytes left for records after the fixed part, so every
                // level still sends some records whatever the tick rate.
                FIXED_SNAPSHOT_BYTES
                    + per_tick_bytes.saturating_sub(FIXED_SNAPSHOT_BYTES)
                        * overload::budget_share_percent(*overload_level)
                        / 100
            }),
            codec,
            frame,
            shared: &shared,
        };
        let threads = config.replication_threads.clamp(1, MAX_REPLICATION_THREADS);
        // Below this many clients per thread, the spawns cost more than they save.
        let chunk_len = work.len().div_ceil(threads).max(MIN_CLIENTS_PER_THREAD);
        if work.len() <= chunk_len {
            pass.run(&mut work, scratch, report);
            return;
        }
        if worker_scratch.len() < threads - 1 {
            worker_scratch.resize_with(threads - 1, Scratch::default);
        }
        let pass = &pass;
        std::thread::scope(|s| {
            let mut chunks = work.chunks_mut(chunk_len);
            let first = chunks.next();
            let workers: Vec<_> = chunks
                .zip(worker_scratch.iter_mut())
                .map(|(chunk, scratch)| {
                    s.spawn(move || {
                        let mut part = TickReport::default();
                        pass.run(chunk, scratch, &mut part);
                        part
                    })
                })
                .collect();
            if let Some(chunk) = first {
                pass.run(chunk, scratch, report);
            }
            for worker in workers {
                match worker.join() {
                    Ok(part) => {
                        report.add_replication(&part);
                    }
                    // A panic in a worker is a bug; carry it to the zone thread as it is.
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
    }
}

/// The sent history's hint key of the entity at `index` in the frame: stable while no
/// entity with a lower id joins or leaves the frame, and a stale one only costs a search.
fn frame_key(index: usize) -> Option<u32> {
    u32::try_from(index).ok()
}

/// Most threads one zone's replication uses.
pub const MAX_REPLICATION_THREADS: usize = 64;
/// Fewest clients worth a thread of their own.
const MIN_CLIENTS_PER_THREAD: usize = 16;

/// One connection's part of a tick.
struct ClientWork<'a> {
    id: ConnectionId,
    player: &'a mut Player,
    view: ClientTick<'a>,
}

/// What every connection's replication reads this tick (shared by the threads).
struct Pass<'a> {
    tick: Tick,
    max_len_bytes: usize,
    /// [`ZoneConfig::shared_encoding`].
    shared_encoding: bool,
    /// At an overload level above 0: the bytes a snapshot may fill: its fixed part plus the
    /// level's share of what the budget's per-tick rate leaves for records (not of the
    /// budget's balance, which grows while snapshots are kept small).
    degraded_room_bytes: Option<usize>,
    codec: &'a SnapshotCodec,
    frame: &'a WorldFrame,
    shared: &'a SharedPlanning<'a>,
}

impl Pass<'_> {
    /// Replicates `work` in order with `scratch`, adding to `report`.
    fn run(&self, work: &mut [ClientWork<'_>], scratch: &mut Scratch, report: &mut TickReport) {
        let tick = self.tick;
        if self.shared_encoding {
            scratch.cache.fit(self.frame.len());
        }
        for ClientWork { id, player, view } in work.iter_mut() {
            if player.connection.holds_snapshots() {
                // A rejoined client that has not reset yet (`ServerConnection::rejoining`).
                continue;
            }
            player.connection.process_acks();
            // Take candidates in priority order while their estimated size fits: the
            // replicator ranks only that many (a top-k selection, not a full sort).
            let delta_bits = player.connection.estimated_record_bits().max(1) as usize;
            let room_bytes = |budget_bytes: u32| {
                (budget_bytes as usize)
                    .min(self.max_len_bytes)
                    .min(self.degraded_room_bytes.unwrap_or(usize::MAX))
            };
            let fit = |budget_bytes: u32| {
                (room_bytes(budget_bytes).saturating_sub(FIXED_SNAPSHOT_BYTES) * 8) / delta_bits
            };
            let plan = view.plan_limited(self.shared, tick, fit);
            // The datagram stops growing where the budget does, so a snapshot whose records
            // came out larger than estimated does not put the client's budget in debt (the
            // fixed part is always sent: it carries the input acknowledgement).
            let len_limit_bytes = room_bytes(plan.budget_bytes);
            for left in &plan.left {
                player.connection.forget_entity(*left);
            }
            scratch.candidates.clear();
            scratch.candidates.extend_from_slice(&plan.candidates);
            if let Some(known) = player.handoff_known.take() {
                // First plan after a handoff: what the client knew and this zone does not
                // show leaves now; the rest keeps its baselines.
                view.visible_ids(&mut scratch.visible);
                for id in known {
                    if scratch.visible.binary_search(&id).is_err() {
                        player.connection.forget_entity(id);
                    }
                }
            }
            // The kept candidates (the top of the priority order, as many as the estimate
            // fits) are coded in id order. When their records come out larger than
            // estimated, the encoder skips the ones that no longer fit, in id order, not
            // priority order; they keep their priority for the next tick. Cutting in
            // priority order by each record's kind (an enter or full record costs several
            // deltas) was tried: looking the bases up in priority order instead of id order
            // made the phase 10-20 % slower.
            scratch.candidates.sort_unstable();
            scratch.records.clear();
            for &entity in &scratch.candidates {
                if let Some(found) = self.frame.get_indexed(entity) {
                    let key = frame_key(found.index);
                    scratch.records.push(QuantizedRecordIn {
                        id: entity,
                        state: found.entity.state,
                        base: player
                            .connection
                            .record_base(entity, key, found.entity.archetype),
                        key,
                    });
                }
            }
            let sent = player.connection.send_snapshot(
                self.codec,
                tick,
                player.character.as_ref(),
                &scratch.records,
                Some(len_limit_bytes),
                EncodeBuffers {
                    datagram: &mut scratch.datagram,
                    written: &mut scratch.written,
                    cache: self.shared_encoding.then_some(&mut scratch.cache),
                },
            );
            match sent {
                Ok(encoded) => {
                    scratch.sent.clear();
                    scratch.sent.extend(scratch.written.iter().map(|w| w.id));
                    if let Err(e) =
                        view.commit(self.shared, &scratch.sent, encoded.len_bytes as u32)
                    {
                        tracing::error!(error = %e, "replication commit refused");
                    }
                    report.snapshots_sent += 1;
                    report.records_written += encoded.records_written as u32;
                    report.snapshot_bytes += encoded.len_bytes as u64;
                    report.record_bits += encoded.record_bits as u64;
                    report.record_id_bits += encoded.id_bits as u64;
                    report.absolute_records += encoded.absolute_records as u32;
                }
                Err(e) => tracing::error!(error = %e, connection = id.0, "snapshot not encoded"),
            }
        }
        let counts = scratch.cache.take_counts();
        // At most records per tick (far below 2^32).
        report.delta_bodies_shared += counts.hits as u32;
        report.delta_bodies_computed += counts.misses as u32;
    }
}

#[cfg(test)]
mod tests {
    use glam::Vec3;

    use crate::entity::CharacterState;
    use crate::input::{Buttons, MoveInput};
    use crate::session::Transmit;
    use crate::session::client::{ClientConfig, ClientSession};
    use crate::zone::{ConnectionId, Zone, ZoneConfig};

    /// A client logged in to `zone` at `at_m` with `config`: its login frames delivered and
    /// accepted (the welcome not yet delivered to the session).
    fn logged_in(
        zone: &mut Zone,
        config: ClientConfig,
        at_m: Vec3,
    ) -> (ConnectionId, ClientSession) {
        let mut session = ClientSession::new(0, config, "token").expect("valid");
        let id = zone.connect(0);
        while let Some(Transmit::Stream(s)) = session.poll_transmit() {
            zone.handle_stream(id, 0, &s);
        }
        zone.accept_login_at(id, CharacterState::at(at_m))
            .expect("login pending");
        (id, session)
    }

    /// Every datagram of a 2 s run of 80 walking clients (perfect link), in send order per
    /// connection, with `threads` replication threads, sharing record bodies or not.
    fn datagrams(threads: usize, shared_encoding: bool) -> Vec<Vec<u8>> {
        run(threads, 0, shared_encoding).0
    }

    /// [`datagrams`] at overload `level`, and the records written over the run.
    fn run(threads: usize, level: u8, shared_encoding: bool) -> (Vec<Vec<u8>>, u64) {
        let mut zone = Zone::new(ZoneConfig {
            replication_threads: threads,
            shared_encoding,
            ..ZoneConfig::default()
        })
        .expect("valid");
        zone.set_overload_level(level);
        let mut clients = Vec::new();
        for i in 0..80u32 {
            let at = Vec3::new((i % 9) as f32 * 7.0, (i / 9) as f32 * 6.0, 0.0);
            clients.push(logged_in(&mut zone, ClientConfig::default(), at));
        }
        let _ = zone.drain_events().count();
        let mut out = Vec::new();
        let mut records = 0u64;
        for tick in 1..=60u32 {
            let now_us = zone
                .config()
                .tick_rate
                .tick_start_us(crate::time::Tick(tick));
            for (i, (id, session)) in clients.iter_mut().enumerate() {
                while let Some(t) = zone.poll_transmit(*id) {
                    match t {
                        Transmit::Datagram(d) => {
                            session.handle_datagram(now_us, &d);
                            out.push(d);
                        }
                        Transmit::Stream(s) => session.handle_stream(now_us, &s),
                    }
                }
                let turn = ((tick as usize + i * 7) % 40) as f32 / 40.0 * std::f32::consts::TAU;
                let input = MoveInput::from_controls(1.0, 0.0, turn, Buttons::default());
                session.send_input(now_us, input);
                while let Some(t) = session.poll_transmit() {
                    match t {
                        Transmit::Datagram(d) => zone.handle_datagram(*id, now_us, &d),
                        Transmit::Stream(s) => zone.handle_stream(*id, now_us, &s),
                    }
                }
            }
            records += u64::from(zone.run_tick().records_written);
        }
        (out, records)
    }

    #[test]
    fn threads_and_shared_encoding_send_the_same_datagrams_as_one_thread() {
        let one = datagrams(1, false);
        assert!(one.len() >= 80 * 55, "{} datagrams", one.len());
        // Past the first snapshots, deltas against acknowledged baselines dominate.
        assert!(one.iter().skip(80 * 10).all(|d| d.len() > 40));
        for (threads, shared) in [(2, false), (3, false), (5, false), (1, true), (3, true)] {
            assert!(
                datagrams(threads, shared) == one,
                "{threads} threads (shared encoding {shared}) differ from one"
            );
        }
    }

    #[test]
    fn overload_levels_shed_records() {
        let (_, full) = run(1, 0, false);
        let (_, shed) = run(1, crate::replication::overload::MAX_LEVEL, false);
        // 80 clients 7 m apart see all 79 others: their budgets, not the crowd, bound the
        // records, so the level's share shows.
        assert!(full > 80 * 50 * 40, "{full} records at level 0");
        assert!(
            shed * 100 < full * 40,
            "level 3 wrote {shed} records, level 0 {full}"
        );
    }

    #[test]
    fn the_highest_overload_level_still_sends_records_at_60_hz() {
        let mut zone = Zone::new(ZoneConfig {
            tick_rate: crate::time::TickRate::new(60).expect("valid rate"),
            ..ZoneConfig::default()
        })
        .expect("valid");
        zone.set_overload_level(crate::replication::overload::MAX_LEVEL);
        for i in 0..10u32 {
            let at = Vec3::new(i as f32, 0.0, 0.0);
            logged_in(&mut zone, ClientConfig::default(), at);
        }
        // 10,000 B/s at 60 Hz is 166 bytes a tick: 25 % of what the fixed part leaves.
        let records: u32 = (0..30).map(|_| zone.run_tick().records_written).sum();
        assert!(records > 0, "no record at the highest level");
    }

    #[test]
    fn a_tick_without_replication_applies_inputs_and_sends_nothing() {
        let mut zone = Zone::new(ZoneConfig::default()).expect("valid");
        let (id, mut session) = logged_in(&mut zone, ClientConfig::default(), Vec3::ZERO);
        while let Some(t) = zone.poll_transmit(id) {
            if let Transmit::Stream(s) = t {
                session.handle_stream(0, &s);
            }
        }
        let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        for _ in 0..3 {
            session.send_input(0, walk);
        }
        while let Some(t) = session.poll_transmit() {
            if let Transmit::Datagram(d) = t {
                zone.handle_datagram(id, 0, &d);
            }
        }
        let mut applied = 0;
        for _ in 0..3 {
            let report = zone.run_tick_without_replication();
            applied += report.inputs_applied;
            assert_eq!(report.snapshots_sent, 0);
        }
        assert_eq!(applied, 3, "every queued input applied at its tick");
        assert!(zone.character(id).expect("logged in").position_m.x > 0.0);
        assert_eq!(zone.tick(), crate::time::Tick(3));
        assert!(
            std::iter::from_fn(|| zone.poll_transmit(id))
                .all(|t| !matches!(t, Transmit::Datagram(_))),
            "no snapshot"
        );
    }

    #[test]
    fn a_header_only_client_acknowledges_and_reconciles_without_tracking_entities() {
        use crate::session::client::SnapshotHandling;
        let mut zone = Zone::new(ZoneConfig::default()).expect("valid");
        let mut clients = Vec::new();
        for (i, snapshots) in [SnapshotHandling::Full, SnapshotHandling::HeaderOnly]
            .into_iter()
            .enumerate()
        {
            let config = ClientConfig {
                snapshots,
                ..ClientConfig::default()
            };
            let (id, session) = logged_in(&mut zone, config, Vec3::new(i as f32 * 3.0, 0.0, 0.0));
            clients.push((id, session, 0usize));
        }
        let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        for tick in 1..=40u32 {
            let now_us = zone
                .config()
                .tick_rate
                .tick_start_us(crate::time::Tick(tick));
            for (id, session, bytes) in &mut clients {
                while let Some(t) = zone.poll_transmit(*id) {
                    match t {
                        Transmit::Datagram(d) => {
                            *bytes += d.len();
                            session.handle_datagram(now_us, &d);
                        }
                        Transmit::Stream(s) => session.handle_stream(now_us, &s),
                    }
                }
                session.send_input(now_us, walk);
                while let Some(t) = session.poll_transmit() {
                    match t {
                        Transmit::Datagram(d) => zone.handle_datagram(*id, now_us, &d),
                        Transmit::Stream(s) => zone.handle_stream(*id, now_us, &s),
                    }
                }
            }
            zone.run_tick();
        }
        let (full, light) = (&clients[0], &clients[1]);
        assert_eq!(
            full.1.remote_ids().count(),
            1,
            "the full client sees the other"
        );
        assert_eq!(
            light.1.remote_ids().count(),
            0,
            "the light client tracks nothing"
        );
        assert!(light.1.stats().snapshots_applied >= 35);
        let acked = light.1.predictor().expect("welcomed").last_acked_seq();
        assert!(acked >= 35, "inputs acknowledged up to {acked}");
        assert_eq!(light.1.stats().corrections, 0);
        // The server codes the light client's snapshots as it does the full one's: deltas
        // against acknowledged baselines, about the same size.
        let ratio = light.2 as f64 / full.2 as f64;
        assert!((0.8..1.25).contains(&ratio), "bytes light/full = {ratio}");
    }
}
