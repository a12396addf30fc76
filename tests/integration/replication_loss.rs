//! Other clients see a player move, and entities entering and leaving the area of interest
//! are delivered under heavy loss.

use glam::Vec3;
use mmo_core::entity::CharacterState;
use mmo_core::input::MoveInput;
use mmo_core::session::client::{ClientConfig, ClientEvent};
use mmo_core::zone::ZoneConfig;
use mmo_testkit::harness::Harness;
use mmo_testkit::link::{BurstLoss, LinkConfig};

fn lossy() -> LinkConfig {
    LinkConfig {
        latency_us: 60_000,
        jitter_us: 30_000,
        loss_probability: 0.2,
        burst: Some(BurstLoss {
            p_enter_bad: 0.02,
            p_exit_bad: 0.3,
            loss_in_bad: 0.9,
        }),
        duplicate_probability: 0.05,
        ..LinkConfig::perfect()
    }
}

#[test]
fn other_clients_see_a_player_move_and_enter_and_leave_under_loss() {
    let mut harness = Harness::new(ZoneConfig::default(), 5).unwrap();
    let watcher = harness
        .add_client(ClientConfig::default(), lossy(), "watcher")
        .unwrap();
    let mover = harness
        .add_client(ClientConfig::default(), lossy(), "mover")
        .unwrap();
    let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Default::default());
    let idle = MoveInput::default();
    // The mover walks for 3 s, then stands still; the watcher stands still.
    let mut source = |i: usize, s: &mmo_core::session::client::ClientSession| {
        let moving = i == 1 && s.predictor().is_some_and(|p| p.next_seq() < 90);
        Some(if moving { walk } else { idle })
    };
    harness.run_until(5_000_000, &mut source);

    let mover_entity = harness.clients[mover].session.entity_id().unwrap();
    let mover_conn = harness.clients[mover].connection;
    let server_pos = harness.zone.character(mover_conn).unwrap().position_m;
    assert!(server_pos.x > 5.0, "the mover walked: {server_pos:?}");
    let now_us = harness.clock.now_us();
    let seen = harness.clients[watcher]
        .session
        .sample_entity(mover_entity, now_us)
        .expect("watcher sees the mover");
    let error_m = (seen.position_m - server_pos).length();
    assert!(
        error_m < 0.02,
        "watcher sees the mover within 2 cm of the truth, got {error_m} m"
    );

    // Teleport the mover far out of the watcher's area of interest: it must leave.
    let far = CharacterState::at(Vec3::new(1500.0, 0.0, 0.0));
    assert!(harness.zone.set_character(mover_conn, far));
    harness.run_until(8_000_000, &mut source);
    assert!(
        harness.clients[watcher]
            .events
            .contains(&ClientEvent::EntityLeft { id: mover_entity }),
        "leave delivered"
    );
    assert!(
        harness.clients[watcher]
            .session
            .remote_ids()
            .all(|id| id != mover_entity)
    );

    // And back: it must enter again, at the right place.
    let near = CharacterState::at(Vec3::new(10.0, 10.0, 0.0));
    assert!(harness.zone.set_character(mover_conn, near));
    harness.run_until(11_000_000, &mut source);
    let enters = harness.clients[watcher]
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::EntityEntered { id, .. } if *id == mover_entity))
        .count();
    assert_eq!(enters, 2, "entered at login and again after coming back");
    let now_us = harness.clock.now_us();
    let seen = harness.clients[watcher]
        .session
        .sample_entity(mover_entity, now_us)
        .unwrap();
    assert!(
        (seen.position_m - near.position_m).length() < 0.02,
        "seen at {:?}",
        seen.position_m
    );
    let lost = harness.clients[watcher].link.server_to_client.stats().lost;
    assert!(lost > 30, "the link really lost snapshots: {lost}");
}
