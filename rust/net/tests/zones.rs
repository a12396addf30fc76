//! Two zones on two threads behind one QUIC endpoint on 127.0.0.1: player A walks from
//! zone 0 across the border into zone 1 on the same connection while B, standing in zone 0
//! near the border, watches; then the server shuts down and both hear why.

mod common;

use std::time::Duration;

use common::{border_world, connect_player, pinned_config, zone_of};
use mmo_core::control::DisconnectReason;
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::session::client::{ClientEvent, ClientState};
use mmo_core::world::{WorldLayout, ZoneId};
use mmo_core::zone::ZoneConfig;
use mmo_net::auth::StaticTokens;
use mmo_net::server::Server;
use mmo_net::tls::ServerTrust;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_crosses_a_zone_border_on_the_same_connection() {
    tokio::time::timeout(Duration::from_secs(40), run())
        .await
        .expect("finished within 40 s");
}

/// A 200 m x 100 m world centred on the origin, cut at x = 0 into two zones, served on
/// 127.0.0.1 with tokens "a" (alice) and "b" (bob); players appear 4 m west of the border.
async fn two_zone_server() -> (Server, ServerTrust, ZoneConfig) {
    let (world, zone) = border_world();
    let (mut config, trust) = pinned_config(
        &zone,
        StaticTokens::new().with("a", "alice").with("b", "bob"),
    );
    config.layout = Some(WorldLayout::new(world, 2, 1, 30.0).unwrap());
    let server = Server::start(config).await.unwrap();
    assert_eq!(server.zone_count(), 2);
    (server, trust, zone)
}

async fn run() {
    let (server, trust, zone) = two_zone_server().await;
    let tick = Duration::from_micros(zone.tick_rate.tick_us());
    let tick_s = tick.as_secs_f32();
    let mut a = connect_player(&server, trust, &zone, "a").await;
    let mut b = connect_player(&server, trust, &zone, "b").await;
    let idle = MoveInput::default();
    let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    // Both log in at the spawn point in zone 0, 4 m from the border, and see each other.
    common::player::until_they_see_each_other(&mut a, &mut b, &mut interval, tick_s).await;
    let a_entity = a.entity().expect("A welcomed");
    let b_entity = b.entity().expect("B welcomed");
    assert!(b.sees(a_entity), "B sees A before the walk");
    assert_eq!(zone_of(&server, a_entity).await, Some(ZoneId(0)));

    // A walks +X for 4 s (about 15 m: well past the border and its 2 m margin, well within
    // B's view and the 30 m border band); B stands still and must see A the whole time.
    let snapshots_before = a.client.session().stats().snapshots_applied;
    let mut b_lost_a = 0;
    for _ in 0..120 {
        interval.tick().await;
        a.tick(walk, tick_s);
        b.tick(idle, tick_s);
        if !b.sees(a_entity) {
            b_lost_a += 1;
        }
    }
    // Then A stops and both idle for 1.5 s (A comes to rest; the last snapshots arrive).
    for _ in 0..45 {
        interval.tick().await;
        a.tick(idle, tick_s);
        b.tick(idle, tick_s);
        if !b.sees(a_entity) {
            b_lost_a += 1;
        }
    }
    let a_position = a.position_m();
    assert!(
        a_position.x > 5.0,
        "A walked into zone 1 (x > 0 + margin): {a_position}"
    );
    assert_eq!(
        zone_of(&server, a_entity).await,
        Some(ZoneId(1)),
        "zone 1 owns A now"
    );
    assert_eq!(zone_of(&server, b_entity).await, Some(ZoneId(0)));
    assert_eq!(a.client.state(), ClientState::Active, "A stayed connected");
    assert!(
        !a.events
            .iter()
            .any(|e| matches!(e, ClientEvent::Disconnected { .. })),
        "A was never disconnected: {:?}",
        a.events
    );
    let stats = a.client.session().stats();
    assert_eq!(
        stats.corrections, 0,
        "A's prediction agreed with both zones"
    );
    assert_eq!(stats.snapshots_undecodable, 0);
    assert!(
        stats.snapshots_applied > snapshots_before + 100,
        "A kept receiving snapshots across the handoff: {} -> {}",
        snapshots_before,
        stats.snapshots_applied
    );
    assert_eq!(b_lost_a, 0, "B saw A in every frame");
    assert!(
        !b.events
            .iter()
            .any(|e| matches!(e, ClientEvent::EntityLeft { id } if *id == a_entity)),
        "B never got a leave for A"
    );
    assert!(
        a.sees(b_entity),
        "A, now in zone 1, still sees B across the border"
    );
    // The server's authoritative A (in zone 1) is where A predicted it.
    let server_a = server
        .inspect_zone(ZoneId(1), move |zone, ids| {
            ids.iter()
                .find(|id| zone.connection(**id).and_then(|c| c.entity()) == Some(a_entity))
                .and_then(|id| zone.character(*id).copied())
        })
        .await
        .flatten()
        .expect("A's character in zone 1");
    assert!(
        (server_a.position_m - a_position).length() < 1e-3,
        "server {} vs predicted {a_position}",
        server_a.position_m
    );

    // Shutdown reaches both zones' players with its reason.
    server.shutdown(Duration::from_secs(3)).await;
    for _ in 0..100 {
        a.pump();
        b.pump();
        if a.client.state() == ClientState::Closed && b.client.state() == ClientState::Closed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for p in [&a, &b] {
        assert!(
            p.events.iter().any(|e| matches!(
                e,
                ClientEvent::Disconnected {
                    reason: DisconnectReason::ServerShutdown,
                    ..
                }
            )),
            "told why: {:?}",
            p.events.last()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_login_closes_the_first_in_another_zone() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (server, trust, zone) = two_zone_server().await;
        let tick = Duration::from_micros(zone.tick_rate.tick_us());
        let tick_s = tick.as_secs_f32();
        let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        let mut interval = tokio::time::interval(tick);
        // Alice logs in (zone 0) and walks into zone 1.
        let mut first = connect_player(&server, trust, &zone, "a").await;
        for _ in 0..150 {
            interval.tick().await;
            first.tick(walk, tick_s);
            if first.position_m_if_welcomed().is_some_and(|p| p.x > 8.0) {
                break;
            }
        }
        let first_entity = first.entity().expect("first login welcomed");
        for _ in 0..10 {
            interval.tick().await;
            first.tick(MoveInput::default(), tick_s);
        }
        assert_eq!(zone_of(&server, first_entity).await, Some(ZoneId(1)));
        // Alice logs in again: the new connection lands in zone 0, the old one in zone 1
        // is closed with DuplicateLogin.
        let mut second = connect_player(&server, trust, &zone, "a").await;
        for _ in 0..150 {
            interval.tick().await;
            first.pump();
            second.tick(MoveInput::default(), tick_s);
            if first.client.state() == ClientState::Closed && second.entity().is_some() {
                break;
            }
        }
        assert!(
            first.events.iter().any(|e| matches!(
                e,
                ClientEvent::Disconnected {
                    reason: DisconnectReason::DuplicateLogin,
                    ..
                }
            )),
            "the first connection was told why: {:?}",
            first.events.last()
        );
        assert_eq!(second.client.state(), ClientState::Active);
        let second_entity = second.entity().expect("second login welcomed");
        assert_eq!(zone_of(&server, second_entity).await, Some(ZoneId(0)));
        assert_eq!(
            zone_of(&server, first_entity).await,
            None,
            "the old one is gone"
        );
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 30 s");
}
