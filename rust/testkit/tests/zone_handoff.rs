//! A player walks across a zone border over simulated links (1 ms steps, seeded) and is
//! handed to the neighbour zone without reconnecting; observers on both sides see what the
//! layout promises.
//!
//! World 200 × 100 m, two zones side by side (x < 100 is zone 0), border 30 m, area of
//! interest 30 m. A starts in zone 0 at x = 30 and walks along +X to x = 140 (zone 1).
//! B stands in zone 1 at x = 115, near the border. C stands in zone 0 at x = 10: outside
//! zone 1's border margin (x >= 70) and, once A walks off, out of A's range.

use glam::{Vec2, Vec3};
use mmo_core::entity::{CharacterState, EntityId};
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::movement::MovementConfig;
use mmo_core::replication::{DistanceTier, ReplicationConfig, TierConfig};
use mmo_core::session::client::{ClientConfig, ClientEvent, ClientSession, ClientState};
use mmo_core::session::server::{ConnectionState, ServerEvent};
use mmo_core::world::{Rect, WorldLayout, ZoneId};
use mmo_core::zone::ZoneConfig;
use mmo_testkit::{LinkConfig, WorldHarness};

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const STOP_X_M: f32 = 140.0;

fn entered(events: &[ClientEvent], id: EntityId) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, ClientEvent::EntityEntered { id: i, .. } if *i == id))
        .count()
}

fn left(events: &[ClientEvent], id: EntityId) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, ClientEvent::EntityLeft { id: i } if *i == id))
        .count()
}

fn sees(session: &ClientSession, id: EntityId) -> bool {
    session.remote_ids().any(|r| r == id)
}

#[test]
fn a_player_walks_into_the_neighbour_zone_without_reconnecting() {
    walk_across(LinkConfig::broadband(), 0x5EED_0004, false);
}

/// The same over a poor mobile link (loss bursts, jitter, duplication, reordering): inputs
/// are redundant and the session's baselines travel with it, so nothing changes.
#[test]
fn the_handoff_holds_over_a_lossy_link() {
    walk_across(LinkConfig::bad_mobile(), 0x5EED_0005, false);
}

/// The same with the transfer and the border exports carried as bytes, as between zone
/// processes: everything the session needs survives the encoding.
#[test]
fn the_handoff_holds_when_the_transfer_crosses_as_bytes() {
    walk_across(LinkConfig::bad_mobile(), 0x5EED_0007, true);
}

fn walk_across(link: LinkConfig, seed: u64, across_processes: bool) {
    let layout = WorldLayout::new(Rect::new(Vec2::ZERO, Vec2::new(200.0, 100.0)), 2, 1, 30.0)
        .expect("valid layout");
    let movement = MovementConfig {
        walk_speed_mps: 10.0,
        sprint_speed_mps: 12.0,
        ..MovementConfig::default()
    };
    let zone_config = ZoneConfig {
        movement: movement.clone(),
        replication: ReplicationConfig {
            area_of_interest_radius_m: 30.0,
            aoi_hysteresis_m: 5.0,
            tiers: TierConfig {
                tiers: vec![DistanceTier {
                    max_distance_m: 20.0,
                    rate_hz: 30,
                    priority_weight: 1000,
                }],
                beyond_rate_hz: 10,
                beyond_priority_weight: 10,
            },
            ..ReplicationConfig::default()
        },
        ..ZoneConfig::default()
    };
    let client_config = ClientConfig {
        movement,
        ..ClientConfig::default()
    };
    let mut h = WorldHarness::new(zone_config, layout, seed).expect("valid world");
    h.across_processes = across_processes;
    let at = |x: f32| CharacterState::at(Vec3::new(x, 50.0, 0.0));
    for (token, x) in [("a", 30.0), ("b", 115.0), ("c", 10.0)] {
        h.add_client(client_config.clone(), link, token, at(x))
            .expect("client added");
    }
    assert_eq!(h.clients[A].zone, ZoneId(0));
    assert_eq!(h.clients[B].zone, ZoneId(1));
    let mut inputs = |index: usize, session: &ClientSession| {
        let x = session
            .predictor()
            .map_or(0.0, |p| p.predicted().position_m.x);
        let forward = if index == A && x < STOP_X_M { 1.0 } else { 0.0 };
        Some(MoveInput::from_controls(
            forward,
            0.0,
            0.0,
            Buttons::default(),
        ))
    };

    // Log in and settle: C sees A (20 m apart), B does not yet (85 m).
    h.run_until(300_000, &mut inputs);
    let a_id = h.clients[A].session.entity_id().expect("A welcomed");
    let b_id = h.clients[B].session.entity_id().expect("B welcomed");
    let a_conn = h.clients[A].connection;

    let mut b_saw_a = false;
    let mut a_saw_b = false;
    let mut applied_at_handoff = None;
    let mut a_states = Vec::new();
    while h.clock.now_us() < 16_000_000 {
        let until = h.clock.now_us() + 20_000;
        h.run_until(until, &mut inputs);
        a_states.push(h.clients[A].session.state());
        // Continuity: once seen, never lost again.
        let b_now = sees(&h.clients[B].session, a_id);
        assert!(b_now || !b_saw_a, "B lost sight of A at {until} us");
        b_saw_a |= b_now;
        let a_now = sees(&h.clients[A].session, b_id);
        assert!(a_now || !a_saw_b, "A lost sight of B at {until} us");
        a_saw_b |= a_now;
        if applied_at_handoff.is_none() && !h.handoffs.is_empty() {
            applied_at_handoff = Some(h.clients[A].session.stats().snapshots_applied);
        }
    }

    // One handoff, from zone 0 to zone 1, and the server holds A in zone 1 now.
    assert_eq!(h.handoffs.len(), 1, "{:?}", h.handoffs);
    let handoff = h.handoffs[0];
    assert_eq!(
        (handoff.client, handoff.from, handoff.to),
        (A, ZoneId(0), ZoneId(1))
    );
    assert!(h.refused_transfers.is_empty(), "{:?}", h.refused_transfers);
    if across_processes {
        assert_eq!(h.transfer_len_bytes.len(), 1);
        eprintln!("transfer: {} bytes", h.transfer_len_bytes[0]);
    }
    assert_eq!(h.clients[A].zone, ZoneId(1));
    assert_eq!(h.zone_of(a_conn), Some(ZoneId(1)));
    let z1 = &h.zones[1];
    assert_eq!(
        z1.connection(a_conn).map(|c| c.state()),
        Some(ConnectionState::Active { entity: a_id })
    );
    let server_x = z1.character(a_conn).expect("A in zone 1").position_m.x;
    assert!((STOP_X_M..STOP_X_M + 5.0).contains(&server_x), "{server_x}");
    assert!(h.zones[0].connection(a_conn).is_none());
    assert!(
        !h.server_events
            .iter()
            .any(|(_, _, e)| matches!(e, ServerEvent::Closed { .. })),
        "no connection closed: {:?}",
        h.server_events
    );

    // A's session: active throughout, no disconnect, no correction, no protocol trouble,
    // snapshots keep coming after the handoff, its entity id unchanged.
    let a = &h.clients[A];
    assert!(a_states.iter().all(|s| *s == ClientState::Active));
    assert!(
        !a.events
            .iter()
            .any(|e| matches!(e, ClientEvent::Disconnected { .. })),
        "A disconnected"
    );
    let stats = a.session.stats();
    assert_eq!(stats.corrections, 0, "prediction corrections: {stats:?}");
    assert_eq!(stats.snapshots_undecodable, 0, "{stats:?}");
    let at_handoff = applied_at_handoff.expect("handoff seen");
    assert!(
        stats.snapshots_applied > at_handoff + 100,
        "snapshots after the handoff: {} then {}",
        at_handoff,
        stats.snapshots_applied
    );
    assert_eq!(a.session.entity_id(), Some(a_id));
    let predicted_x = a
        .session
        .predictor()
        .expect("welcomed")
        .predicted()
        .position_m
        .x;
    assert!(
        (predicted_x - server_x).abs() < 1e-3,
        "{predicted_x} vs {server_x}"
    );

    // B (zone 1, near the border) saw A before, during and after the crossing: one enter,
    // no leave. A saw B (a ghost in zone 0, local in zone 1) the same way.
    let b = &h.clients[B];
    assert!(b_saw_a && sees(&b.session, a_id));
    assert_eq!(entered(&b.events, a_id), 1);
    assert_eq!(left(&b.events, a_id), 0);
    assert!(a_saw_b && sees(&a.session, b_id));
    assert_eq!(entered(&a.events, b_id), 1);
    assert_eq!(left(&a.events, b_id), 0);

    // C (far side of zone 0) saw A, then saw it leave once, for good.
    let c = &h.clients[C];
    assert_eq!(entered(&c.events, a_id), 1);
    assert_eq!(left(&c.events, a_id), 1);
    assert!(!sees(&c.session, a_id));
    // Zone 0 no longer shows A at all (more than 30 m past its border).
    assert!(h.zones[0].entity_state(a_id).is_none());
    assert!(!h.zones[0].is_ghost(a_id));
    // B is a ghost in zone 0 (15 m past the border), A local in zone 1.
    assert!(h.zones[0].is_ghost(b_id));
    assert!(!h.zones[1].is_ghost(a_id));
}

/// What the client knew in the old zone and the new zone does not show leaves at the
/// handoff, once; what both show stays without a leave.
#[test]
fn entities_the_new_zone_does_not_show_leave_at_the_handoff() {
    let layout = WorldLayout::new(Rect::new(Vec2::ZERO, Vec2::new(200.0, 100.0)), 2, 1, 30.0)
        .expect("valid layout");
    // Default area of interest (300 m): in one zone everyone sees everyone.
    let mut h = WorldHarness::new(ZoneConfig::default(), layout, 0x5EED_0006).expect("valid world");
    let at = |x: f32| CharacterState::at(Vec3::new(x, 50.0, 0.0));
    // A walks from 95 to 110; D stands at 50 (beyond zone 1's 30 m border, x < 70);
    // E stands at 80 (within it).
    for (token, x) in [("a", 95.0), ("d", 50.0), ("e", 80.0)] {
        h.add_client(
            ClientConfig::default(),
            LinkConfig::broadband(),
            token,
            at(x),
        )
        .expect("client added");
    }
    let mut inputs = |index: usize, session: &ClientSession| {
        let x = session
            .predictor()
            .map_or(0.0, |p| p.predicted().position_m.x);
        let forward = if index == 0 && x < 110.0 { 1.0 } else { 0.0 };
        Some(MoveInput::from_controls(
            forward,
            0.0,
            0.0,
            Buttons::default(),
        ))
    };
    h.run_until(1_000_000, &mut inputs);
    let d_id = h.clients[1].session.entity_id().expect("D welcomed");
    let e_id = h.clients[2].session.entity_id().expect("E welcomed");
    let a = &h.clients[0];
    assert!(sees(&a.session, d_id) && sees(&a.session, e_id), "before");
    assert!(h.handoffs.is_empty(), "A is still in zone 0");
    h.run_until(8_000_000, &mut inputs);
    assert_eq!(h.handoffs.len(), 1);
    let a = &h.clients[0];
    assert_eq!(a.zone, ZoneId(1));
    assert_eq!(left(&a.events, d_id), 1, "D is not shown by zone 1");
    assert!(!sees(&a.session, d_id));
    assert_eq!(left(&a.events, e_id), 0, "E is a ghost in zone 1");
    assert_eq!(entered(&a.events, e_id), 1);
    assert!(sees(&a.session, e_id));
    assert_eq!(a.session.stats().corrections, 0);
    assert_eq!(a.session.state(), ClientState::Active);
    // D and E, in zone 0, still see A (within zone 0's border, a ghost there now).
    let a_id = a.session.entity_id().expect("welcomed");
    for observer in &h.clients[1..] {
        assert!(sees(&observer.session, a_id));
        assert_eq!(left(&observer.events, a_id), 0);
    }
}
