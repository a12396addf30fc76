//! The `replication` scenario: 1000 players in one zone, crowded into a 200 m x 200 m square,
//! walking like players, every client served at the default budget (10,000 B/s) for 10 s of
//! simulated time at 30 Hz after a 1 s warm-up, over a lossy link. `--players`, `--side-m`,
//! `--rtt-ms` and `--loss-percent` change the shape.
//!
//! The zone and the [`ClientSession`]s are driven directly, without the harness. Logins
//! happen at time 0 over a perfect link; from the first tick each player's link has a fixed
//! one-way latency of half the round trip (50 ms by default) and loses datagrams with the
//! given probability in each direction (2 % by default, independently, seeded); control
//! stream bytes arrive whole after the same latency, never lost. So snapshot baselines have
//! the ages a real client gives them (a round trip plus up to a tick, longer after a loss).
//! Per tick `t` (virtual time `now = tick_start_us(t)`):
//! 1. every client sends one input (steering random walk, see [`Steering`]) into its link;
//!    what the link delivers by `now` reaches the zone (inputs are queued, snapshot acks are
//!    queued for the replication phase);
//! 2. `Zone::advance_tick`, then `Zone::simulate` applies the inputs (timed:
//!    `simulate_us_*`);
//!    `Zone::run_gameplay`: hitbox history, regeneration, effects, resource updates for
//!    every character, with no ability or inventory requests (timed: `gameplay_us_*`);
//! 3. `Zone::replicate`: the world frame, then per client the queued acks, interest,
//!    priority and encoding (timed: `server_us_per_tick_*`);
//! 4. the true position of every character is recorded (truth history, one per tick);
//! 5. every snapshot goes into its client's link; what the link delivers by `now` reaches
//!    the client;
//! 6. 50 sampled observers measure update rates and interpolation error (see below).
//!
//! Left out of the timed figures: decoding input datagrams and queueing their acks
//! (`Zone::handle_datagram`, step 1), which the server does between ticks as datagrams
//! arrive, and everything the clients do.
//!
//! Definitions of the observer figures (measured window only, observers = a seeded sample of
//! 50 clients):
//! * near: an entity other than the observer whose TRUE server position at tick `t` is
//!   within 50 m (horizontally) of the observer's TRUE position at tick `t`;
//! * `near_update_hz` = (records for near entities in the snapshots the observers applied)
//!   / (near entity-ticks / 30): updates received per near entity per second of being near;
//!   `mid_update_hz` (50-200 m) and `far_update_hz` (beyond 200 m) likewise;
//! * `near_position_error_cm`: every tick each observer samples every remote entity it has
//!   (`sample_entity(id, now)`, as a renderer would); for near ones, the distance between the
//!   sampled position and the true server position at that entity's render time
//!   (`remote_buffer(id).render_time_us()`, server time, truth interpolated linearly between
//!   ticks). Mean (and p95) over near entity-ticks that had a render time. Includes
//!   quantization, interpolation, extrapolation and staleness error.

use std::collections::VecDeque;
use std::time::Instant;

use glam::Vec3;
use mmo_core::codec::entity_state::SnapshotConfig;
use mmo_core::entity::{CharacterState, EntityId};
use mmo_core::session::Transmit;
use mmo_core::session::client::{ClientConfig, ClientSession, ClientState};
use mmo_core::session::server::ServerEvent;
use mmo_core::time::{Tick, TickRate};
use mmo_core::zone::{ConnectionId, TickReport, Zone, ZoneConfig};
use mmo_testkit::link::{LinkConditioner, LinkConfig};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::walk::{
    Steering, SteeringConfig, ns_histogram, quantile_sorted, quantile_us, record_ns, round,
};

/// The scenario's shape (command-line options).
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Players in the zone (each one a client).
    pub players: usize,
    /// Side of the square the crowd spawns in and stays in, metres (centred on the origin).
    pub side_m: f32,
    /// Round trip of every player's link, milliseconds (half each way).
    pub rtt_ms: u32,
    /// Datagram loss in each direction, percent.
    pub loss_percent: f64,
    /// Threads replicating the zone's clients.
    pub threads: usize,
    /// `ZoneConfig::shared_encoding`.
    pub shared_encoding: bool,
    /// Bits of the snapshot codec's yaw (`SnapshotConfig::yaw_bits`, both ends).
    pub yaw_bits: u32,
    /// Exp-Golomb order of its yaw residuals (`SnapshotConfig::yaw_k`).
    pub yaw_k: u32,
    /// Simulated seconds before measuring. Every client starts with an empty visible set
    /// and fills it with enter records (about 100 a second in the dense default, so about
    /// 10 s): a short warm-up measures part of that fill, a long one the steady state.
    pub warmup_s: u32,
}
/// Simulated seconds measured.
const MEASURE_S: u32 = 10;
/// The "near" radius, metres (the default 30 Hz distance tier).
const NEAR_M: f32 = 50.0;
/// The edge of the default 10 Hz tier, metres.
const MID_M: f32 = 200.0;
/// Observers sampled for the per-entity figures.
const OBSERVERS: usize = 50;

struct Player {
    session: ClientSession,
    connection: ConnectionId,
    /// Index of its entity in the truth tables (entity ids are dense from 1).
    entity: EntityId,
    walker: Steering,
    /// Snapshot bytes the server sent it in the measured window.
    window_bytes: u64,
    /// Client to server.
    up: Path,
    /// Server to client.
    down: Path,
    /// For observers: ids of the records of every snapshot applied since the last look.
    applied_ids: Option<Vec<EntityId>>,
}

/// One direction of a player's link: datagrams through a seeded conditioner (latency and
/// loss), control stream bytes delivered whole after the same latency.
struct Path {
    datagrams: LinkConditioner,
    stream: VecDeque<(u64, Vec<u8>)>,
    latency_us: u64,
}

impl Path {
    fn new(latency_us: u64, loss_probability: f64, seed: u64) -> Result<Self, String> {
        let config = LinkConfig {
            latency_us,
            loss_probability,
            ..LinkConfig::perfect()
        };
        Ok(Path {
            datagrams: LinkConditioner::new(config, seed).map_err(|e| e.to_string())?,
            stream: VecDeque::new(),
            latency_us,
        })
    }

    fn send(&mut self, now_us: u64, t: Transmit) {
        match t {
            Transmit::Datagram(d) => self.datagrams.send(now_us, d),
            Transmit::Stream(s) => self.stream.push_back((now_us + self.latency_us, s)),
        }
    }

    /// The next thing delivered by `now_us`: stream bytes first, then datagrams.
    fn poll(&mut self, now_us: u64) -> Option<Transmit> {
        if self.stream.front().is_some_and(|(at, _)| *at <= now_us) {
            return self.stream.pop_front().map(|(_, s)| Transmit::Stream(s));
        }
        self.datagrams.poll_deliver(now_us).map(Transmit::Datagram)
    }
}

/// Per-observer bookkeeping.
struct Observer {
    player: usize,
}

/// Sums over the observers and the measured window.
#[derive(Default)]
struct ObserverTotals {
    /// Entity-ticks per distance band (near, mid, far).
    entity_ticks: [u64; 3],
    /// Records received per distance band.
    updates: [u64; 3],
    /// Near entity-ticks with no interpolation sample or render time yet.
    near_unsampled: u64,
    /// Errors of near samples, metres.
    near_errors_m: Vec<f64>,
    /// Effective render delays of near entities, microseconds.
    near_delay_us_sum: f64,
    near_delay_samples: u64,
    /// Remote entities held by the observers, summed over observer-ticks.
    visible_sum: u64,
    observer_ticks: u64,
    /// Samples that were extrapolating (past the newest sample).
    near_extrapolating: u64,
}

/// Hands the zone what `p` sent: at once (`linked` false, the login) or through its link.
fn deliver_to_zone(zone: &mut Zone, p: &mut Player, now_us: u64, linked: bool) {
    while let Some(t) = p.session.poll_transmit() {
        if linked {
            p.up.send(now_us, t);
        } else {
            to_zone(zone, p.connection, now_us, t);
        }
    }
    while let Some(t) = p.up.poll(now_us) {
        to_zone(zone, p.connection, now_us, t);
    }
}

fn to_zone(zone: &mut Zone, connection: ConnectionId, now_us: u64, t: Transmit) {
    match t {
        Transmit::Datagram(d) => zone.handle_datagram(connection, now_us, &d),
        Transmit::Stream(s) => zone.handle_stream(connection, now_us, &s),
    }
}

/// Hands `p` what the zone sent it: at once (`linked` false, the welcome) or through its
/// link.
fn deliver_to_client(zone: &mut Zone, p: &mut Player, now_us: u64, linked: bool, count: bool) {
    while let Some(t) = zone.poll_transmit(p.connection) {
        if let (true, Transmit::Datagram(d)) = (count, &t) {
            p.window_bytes += d.len() as u64;
        }
        if linked {
            p.down.send(now_us, t);
        } else {
            to_client(p, now_us, t);
        }
    }
    while let Some(t) = p.down.poll(now_us) {
        to_client(p, now_us, t);
    }
    // Events are not needed here; drain them so they do not pile up.
    while p.session.poll_event().is_some() {}
}

fn to_client(p: &mut Player, now_us: u64, t: Transmit) {
    match t {
        Transmit::Datagram(d) => {
            let applied = p.session.stats().snapshots_applied;
            p.session.handle_datagram(now_us, &d);
            if let Some(ids) = &mut p.applied_ids
                && p.session.stats().snapshots_applied != applied
            {
                ids.extend(p.session.last_snapshot().entities.iter().map(|r| r.id));
            }
        }
        Transmit::Stream(s) => p.session.handle_stream(now_us, &s),
    }
}

/// True position of entity index `e` at server time `time_us`, interpolated between ticks;
/// `None` before tick 0 or past the newest tick recorded.
fn truth_at(truth: &[Vec<Vec3>], rate: TickRate, e: usize, time_us: f64) -> Option<Vec3> {
    let tick_f = time_us * f64::from(rate.hz()) / 1e6;
    if tick_f.is_nan() || tick_f < 0.0 {
        return None;
    }
    let t0 = tick_f.floor() as usize;
    let frac = (tick_f - t0 as f64) as f32;
    let a = truth.get(t0)?.get(e)?;
    match truth.get(t0 + 1) {
        Some(next) => Some(a.lerp(next[e], frac)),
        // Exactly on (or a hair past) the newest tick.
        None if frac < 1e-3 => Some(*a),
        None => None,
    }
}

fn band(distance_m: f32) -> usize {
    if distance_m < NEAR_M {
        0
    } else if distance_m < MID_M {
        1
    } else {
        2
    }
}

/// Runs the scenario and returns its measured figures as a JSON object.
pub fn run(seed: u64, shape: &Shape) -> Result<serde_json::Value, String> {
    let players_n = shape.players;
    if players_n < 2 || !(shape.side_m.is_finite() && shape.side_m >= 1.0) {
        return Err("replication: --players must be at least 2 and --side-m at least 1".into());
    }
    if !(0.0..=100.0).contains(&shape.loss_percent) {
        return Err("replication: --loss-percent must be within 0..=100".into());
    }
    let one_way_us = u64::from(shape.rtt_ms) * 500;
    let loss = shape.loss_percent / 100.0;
    let snapshot = SnapshotConfig {
        yaw_bits: shape.yaw_bits,
        yaw_k: shape.yaw_k,
        ..SnapshotConfig::default()
    };
    let mut zone = Zone::new(ZoneConfig {
        replication_threads: shape.threads,
        shared_encoding: shape.shared_encoding,
        snapshot,
        ..ZoneConfig::default()
    })?;
    let rate = zone.config().tick_rate;
    let hz = rate.hz();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let steering = SteeringConfig {
        half_side_m: shape.side_m / 2.0,
        dt_s: rate.dt_s(),
        mean_walk_s: 20.0,
        max_stop_s: 4.0,
    };

    // Log everyone in at time 0 over the (instant) control stream.
    let mut players = Vec::with_capacity(players_n);
    for i in 0..players_n {
        let config = ClientConfig {
            snapshot,
            ..ClientConfig::default()
        };
        let session = ClientSession::new(0, config, &format!("bench-{i}"))?;
        let connection = zone.connect(0);
        let link_seed = seed.wrapping_mul(0x9e37_79b9).wrapping_add(2 * i as u64);
        players.push(Player {
            session,
            connection,
            entity: EntityId(0),
            walker: Steering::new(&mut rng),
            window_bytes: 0,
            up: Path::new(one_way_us, loss, link_seed)?,
            down: Path::new(one_way_us, loss, link_seed + 1)?,
            applied_ids: None,
        });
    }
    for p in &mut players {
        deliver_to_zone(&mut zone, p, 0, false);
    }
    let requests: Vec<ConnectionId> = zone
        .drain_events()
        .filter_map(|(c, e)| matches!(e, ServerEvent::LoginRequested { .. }).then_some(c))
        .collect();
    if requests.len() != players_n {
        return Err(format!(
            "{} login requests for {players_n} players",
            requests.len()
        ));
    }
    // Connection ids are dense from 1 in creation order. Each character spawns at a random
    // point of the square, so the clients start predicting from the right place.
    let half = shape.side_m / 2.0;
    let mut truth: Vec<Vec<Vec3>> = Vec::new();
    let mut spawn = vec![Vec3::ZERO; players_n];
    for c in requests {
        let at = Vec3::new(
            rng.random_range(-half..half),
            rng.random_range(-half..half),
            0.0,
        );
        let entity = zone
            .accept_login_at(c, CharacterState::at(at))
            .ok_or_else(|| format!("login of connection {} refused", c.0))?;
        players[c.0 as usize - 1].entity = entity;
        spawn[c.0 as usize - 1] = at;
    }
    // Entity id -> index into the truth tables.
    let max_id = players.iter().map(|p| p.entity.0).max().unwrap_or(0) as usize;
    let mut index_of = vec![usize::MAX; max_id + 1];
    for (i, p) in players.iter().enumerate() {
        index_of[p.entity.0 as usize] = i;
    }
    truth.push(spawn); // tick 0
    for p in &mut players {
        deliver_to_client(&mut zone, p, 0, false, false);
        if p.session.state() != ClientState::Active {
            return Err("a client was not welcomed".to_owned());
        }
    }

    let mut observer_idx: Vec<usize> = (0..players_n).collect();
    observer_idx.shuffle(&mut rng);
    let observers: Vec<Observer> = observer_idx[..OBSERVERS.min(players_n)]
        .iter()
        .map(|&player| Observer { player })
        .collect();
    for o in &observers {
        players[o.player].applied_ids = Some(Vec::new());
    }

    let warmup_ticks = shape.warmup_s * hz;
    let total_ticks = (shape.warmup_s + MEASURE_S) * hz;
    let mut replicate_ns = ns_histogram()?;
    let mut simulate_ns = ns_histogram()?;
    let mut gameplay_ns = ns_histogram()?;
    let mut window = TickReport::default();
    let mut rejected_inputs = 0u64;
    let mut totals = ObserverTotals::default();
    let mut near = vec![0u8; players_n];
    let run_started = Instant::now();

    for t in 1..=total_ticks {
        let now_us = rate.tick_start_us(Tick(t));
        let measuring = t > warmup_ticks;

        // 1. Inputs up.
        for p in &mut players {
            let position_m = p
                .session
                .predictor()
                .map_or(Vec3::ZERO, |pr| pr.predicted().position_m);
            let input = p.walker.next(&mut rng, &steering, position_m);
            p.session.send_input(now_us, input);
            deliver_to_zone(&mut zone, p, now_us, true);
        }
        rejected_inputs += zone
            .drain_events()
            .filter(|(_, e)| matches!(e, ServerEvent::InputRejected(_)))
            .count() as u64;

        // 2-3. Server tick.
        let mut report = TickReport {
            tick: zone.advance_tick(),
            ..TickReport::default()
        };
        let started = Instant::now();
        report.inputs_applied = zone.simulate();
        let simulated = Instant::now();
        zone.run_gameplay();
        let played = Instant::now();
        zone.replicate(&mut report);
        let ticked = Instant::now();
        if zone.tick() != Tick(t) {
            return Err(format!("zone at tick {:?}, expected {t}", zone.tick()));
        }
        if measuring {
            record_ns(&mut simulate_ns, simulated - started);
            record_ns(&mut gameplay_ns, played - simulated);
            record_ns(&mut replicate_ns, ticked - played);
            window.add_replication(&report);
        }

        // 4. Truth.
        let mut row = Vec::with_capacity(players_n);
        for p in &players {
            let c = zone
                .character(p.connection)
                .ok_or("a character disappeared")?;
            row.push(c.position_m);
        }
        truth.push(row);

        // 5. Snapshots down.
        for p in &mut players {
            deliver_to_client(&mut zone, p, now_us, true, measuring);
        }

        // 6. Observers.
        if !measuring {
            // Keep the observers' render clocks running during the warm-up too.
            for o in &observers {
                let s = &mut players[o.player].session;
                let ids: Vec<EntityId> = s.remote_ids().collect();
                for id in ids {
                    s.sample_entity(id, now_us);
                }
            }
            for o in &observers {
                if let Some(ids) = &mut players[o.player].applied_ids {
                    ids.clear();
                }
            }
            continue;
        }
        let row = &truth[t as usize];
        for o in &observers {
            let me = row[o.player];
            for (e, pos) in row.iter().enumerate() {
                if e == o.player {
                    near[e] = u8::MAX;
                    continue;
                }
                let b = band((*pos - me).truncate().length());
                near[e] = b as u8;
                totals.entity_ticks[b] += 1;
            }
            let applied_ids = players[o.player].applied_ids.take().unwrap_or_default();
            for id in &applied_ids {
                let e = index_of.get(id.0 as usize).copied().unwrap_or(usize::MAX);
                if let Some(&b) = near.get(e)
                    && b != u8::MAX
                {
                    totals.updates[b as usize] += 1;
                }
            }
            let mut applied_ids = applied_ids;
            applied_ids.clear();
            players[o.player].applied_ids = Some(applied_ids);
            let s = &mut players[o.player].session;
            let ids: Vec<EntityId> = s.remote_ids().collect();
            totals.visible_sum += ids.len() as u64;
            totals.observer_ticks += 1;
            let mut sampled_near = 0u64;
            for id in ids {
                let out = s.sample_entity(id, now_us);
                let e = index_of.get(id.0 as usize).copied().unwrap_or(usize::MAX);
                if near.get(e) != Some(&0) {
                    continue;
                }
                let Some(out) = out else { continue };
                let Some(buffer) = s.remote_buffer(id) else {
                    continue;
                };
                let Some(render_us) = buffer.render_time_us() else {
                    continue;
                };
                let Some(true_m) = truth_at(&truth, rate, e, render_us) else {
                    continue;
                };
                sampled_near += 1;
                totals
                    .near_errors_m
                    .push(f64::from((out.position_m - true_m).length()));
                if out.extrapolating {
                    totals.near_extrapolating += 1;
                }
                if let Some(d) = buffer.effective_delay_us() {
                    totals.near_delay_us_sum += d;
                    totals.near_delay_samples += 1;
                }
            }
            let near_count = near.iter().filter(|&&b| b == 0).count() as u64;
            totals.near_unsampled += near_count.saturating_sub(sampled_near);
        }
    }
    let run_wall_s = run_started.elapsed().as_secs_f64();
    // Everything the zone owns: the live heap drops by it when the zone is dropped (the
    // clients' sessions stay; every transmit was delivered, so none is in flight).
    let budget_bytes_per_s = zone.config().replication.budget_bytes_per_s;
    let accounted = zone.replication_memory();
    let heap_before = crate::alloc_count::live_bytes();
    drop(zone);
    let zone_heap_bytes = heap_before.saturating_sub(crate::alloc_count::live_bytes());

    let seconds = f64::from(MEASURE_S);
    let mut bytes_per_s: Vec<f64> = players
        .iter()
        .map(|p| p.window_bytes as f64 / seconds)
        .collect();
    bytes_per_s.sort_by(f64::total_cmp);
    let hz_of = |b: usize| {
        let entity_seconds = totals.entity_ticks[b] as f64 / f64::from(hz);
        if entity_seconds > 0.0 {
            totals.updates[b] as f64 / entity_seconds
        } else {
            0.0
        }
    };
    let mut errors = totals.near_errors_m.clone();
    errors.sort_by(f64::total_cmp);
    let mean_error_m = if errors.is_empty() {
        0.0
    } else {
        errors.iter().sum::<f64>() / errors.len() as f64
    };
    let per_snapshot = |v: u64| {
        if window.snapshots_sent == 0 {
            0.0
        } else {
            v as f64 / f64::from(window.snapshots_sent)
        }
    };
    let kib_per_client = |bytes: usize| round(bytes as f64 / 1024.0 / players_n as f64, 1);
    let corrections: u64 = players.iter().map(|p| p.session.stats().corrections).sum();
    // Mean replication time per tick over mean records written per tick.
    let ticks_measured = f64::from(total_ticks - warmup_ticks);
    let ns_per_record = if window.records_written == 0 {
        0.0
    } else {
        replicate_ns.mean() * ticks_measured / f64::from(window.records_written)
    };
    let observer_ticks = totals.observer_ticks.max(1) as f64;

    Ok(json!({
        "scenario": "replication",
        "seed": seed,
        "players": players_n,
        "square_side_m": shape.side_m,
        "link_rtt_ms": shape.rtt_ms,
        "link_loss_percent": shape.loss_percent,
        "replication_threads": shape.threads,
        "tick_rate_hz": hz,
        "warmup_seconds": shape.warmup_s,
        "yaw_bits": shape.yaw_bits,
        "yaw_k": shape.yaw_k,
        "seconds": MEASURE_S,
        "ticks": total_ticks - warmup_ticks,
        "budget_bytes_per_s": budget_bytes_per_s,
        "zone_heap_kib_per_client": round(zone_heap_bytes as f64 / 1024.0 / players_n as f64, 1),
        "replication_accounted_kib_per_client": {
            "histories": kib_per_client(accounted.histories_bytes),
            "views": kib_per_client(accounted.views_bytes),
            "shared": kib_per_client(accounted.shared_bytes),
            "total": kib_per_client(accounted.total_bytes()),
        },
        "replication_accounted_note": "Zone::replication_memory at the end, from buffer capacities: snapshot histories (records in flight, per-entity baselines), client views (visible sets, priority queues), shared (grid, frame, threads' scratch and record caches); the rest of zone_heap_kib_per_client is sessions, input queues and gameplay state",
        "zone_heap_note": "live heap the zone owned at the end (counting allocator: the drop when the zone is dropped), over players: replication state (snapshot histories, client views, grid, frame) plus sessions, input queues and gameplay state",
        "server_us_per_tick_p50": round(quantile_us(&replicate_ns, 0.5), 1),
        "server_us_per_tick_p99": round(quantile_us(&replicate_ns, 0.99), 1),
        "server_us_per_tick_max": round(quantile_us(&replicate_ns, 1.0), 1),
        "server_us_per_tick_note": "wall time of Zone::replicate: world frame, then per client the queued acks, interest, priority and encoding on `replication_threads` threads",
        "ns_per_record": round(ns_per_record, 1),
        "record_bits_mean": round(window.record_bits as f64 / f64::from(window.records_written.max(1)), 2),
        "record_id_bits_mean": round(window.record_id_bits as f64 / f64::from(window.records_written.max(1)), 2),
        "absolute_record_share": round(f64::from(window.absolute_records) / f64::from(window.records_written.max(1)), 3),
        "record_bits_note": "mean bits of an entity record over all snapshots (id gap, head, mask, fields), the id gaps' share of them, and the share of records sent as enter or full records (no baseline)",
        "shared_encoding": shape.shared_encoding,
        "shared_encode_hit_rate": shape.shared_encoding.then(|| round(
            f64::from(window.delta_bodies_shared)
                / f64::from((window.delta_bodies_shared + window.delta_bodies_computed).max(1)),
            3
        )),
        "shared_encode_note": "with --shared-encoding (off by default: slower on this path, see docs/performance.md): delta records whose body (mask, residuals) was copied from another client's record of the same entity, tick and baseline state, over delta records looked up (those computed and then left out of a full datagram included; one cache per replication thread); null when off",
        "simulate_us_p50": round(quantile_us(&simulate_ns, 0.5), 1),
        "simulate_us_p99": round(quantile_us(&simulate_ns, 0.99), 1),
        "gameplay_us_p50": round(quantile_us(&gameplay_ns, 0.5), 1),
        "gameplay_us_p99": round(quantile_us(&gameplay_ns, 0.99), 1),
        "bytes_per_client_per_s_p50": round(quantile_sorted(&bytes_per_s, 0.5), 1),
        "bytes_per_client_per_s_p99": round(quantile_sorted(&bytes_per_s, 0.99), 1),
        "bytes_per_client_per_s_max": round(quantile_sorted(&bytes_per_s, 1.0), 1),
        "bytes_per_snapshot_mean": round(per_snapshot(window.snapshot_bytes), 1),
        "records_per_snapshot_mean": round(per_snapshot(u64::from(window.records_written)), 2),
        "observers": observers.len(),
        "near_m": NEAR_M,
        "near_update_hz": round(hz_of(0), 2),
        "mid_update_hz": round(hz_of(1), 2),
        "far_update_hz": round(hz_of(2), 2),
        "near_entities_mean": round(totals.entity_ticks[0] as f64 / observer_ticks, 1),
        "visible_entities_mean": round(totals.visible_sum as f64 / observer_ticks, 1),
        "near_position_error_cm": round(mean_error_m * 100.0, 1),
        "near_position_error_cm_p95": round(quantile_sorted(&errors, 0.95) * 100.0, 1),
        "near_samples": errors.len(),
        "near_unsampled_entity_ticks": totals.near_unsampled,
        "near_extrapolating_share": round(totals.near_extrapolating as f64 / errors.len().max(1) as f64, 3),
        "near_render_delay_ms_mean": round(totals.near_delay_us_sum / totals.near_delay_samples.max(1) as f64 / 1000.0, 1),
        "inputs_rejected": rejected_inputs,
        "client_corrections_total": corrections,
        "run_wall_s": round(run_wall_s, 2),
    }))
}
