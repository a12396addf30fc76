//! A real QUIC connection on 127.0.0.1: a server and two clients log in, client A walks for
//! two seconds, and prediction, the server and client B's view of A agree.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::player::Player;
use mmo_core::entity::{CharacterState, EntityId};
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::session::client::{ClientConfig, ClientEvent, ClientState};
use mmo_core::zone::ZoneConfig;
use mmo_net::auth::StaticTokens;
use mmo_net::client::NetClient;
use mmo_net::server::{Server, ServerConfig};
use mmo_net::tls::{Fingerprint, ServerCert, ServerTrust};

async fn server_character(server: &Server, entity: EntityId) -> Option<(CharacterState, u32)> {
    server
        .inspect(move |zone, ids| {
            let id = ids
                .iter()
                .copied()
                .find(|id| zone.connection(*id).and_then(|c| c.entity()) == Some(entity))?;
            Some((*zone.character(id)?, zone.connection(id)?.last_input_seq()))
        })
        .await
        .flatten()
}

async fn run() {
    let zone_config = ZoneConfig::default();
    let tick = Duration::from_micros(zone_config.tick_rate.tick_us());
    let tick_s = tick.as_secs_f32();
    let cert = ServerCert::self_signed(&["localhost"]).unwrap();
    let pin = ServerTrust::Pinned(cert.fingerprint());
    let server = Server::start(ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        zone_config,
        cert,
        Arc::new(
            StaticTokens::new()
                .with("player-a", "alice")
                .with("player-b", "bob"),
        ),
    ))
    .await
    .unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());

    let connect = |token: &'static str| async move {
        Player::new(
            NetClient::connect(addr, "localhost", pin, ClientConfig::default(), token)
                .await
                .unwrap(),
        )
    };
    let mut a = connect("player-a").await;
    let mut b = connect("player-b").await;

    let idle = MoveInput::default();
    let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    // Log in (both welcomed within 5 s).
    for _ in 0..150 {
        interval.tick().await;
        a.tick(idle, tick_s);
        b.tick(idle, tick_s);
        if a.entity().is_some() && b.entity().is_some() {
            break;
        }
    }
    let a_entity = a.entity().expect("A welcomed");
    let b_entity = b.entity().expect("B welcomed");
    assert_ne!(a_entity, b_entity);

    // A walks forward for 2 s of ticks; B stands still.
    let start_position = a
        .client
        .session()
        .predictor()
        .unwrap()
        .predicted()
        .position_m;
    for _ in 0..60 {
        interval.tick().await;
        a.tick(walk, tick_s);
        b.tick(idle, tick_s);
    }
    // Both stand still for 1.5 s: idle inputs (carrying the redundant copies of the last
    // moving ones) until the character has braked; an idle step at rest is a fixed point.
    for _ in 0..45 {
        interval.tick().await;
        a.tick(idle, tick_s);
        b.tick(idle, tick_s);
    }

    let predicted = *a.client.session().predictor().unwrap().predicted();
    let (server_a, simulated) = server_character(&server, a_entity)
        .await
        .expect("A's character on the server");
    assert!(
        (predicted.position_m - start_position).length() > 5.0,
        "A barely moved: {start_position} -> {}",
        predicted.position_m
    );
    assert_eq!(predicted.velocity_mps.length(), 0.0, "A came to rest");
    assert!(
        simulated + 5 >= a.inputs_sent,
        "the server simulated {simulated} of {} inputs",
        a.inputs_sent
    );
    assert!(
        predicted.bits_eq(&server_a),
        "predicted {predicted:?} != server {server_a:?}"
    );
    assert_eq!(a.client.session().predictor().unwrap().corrections(), 0);
    assert!(
        !a.events
            .iter()
            .any(|e| matches!(e, ClientEvent::Corrected { .. })),
        "A saw a correction"
    );

    // B saw A enter and draws it where the server has it.
    assert!(
        b.events
            .iter()
            .any(|e| matches!(e, ClientEvent::EntityEntered { id, .. } if *id == a_entity)),
        "B never saw A: {:?}",
        b.events
    );
    let now_us = b.client.now_us();
    let seen = b
        .client
        .session_mut()
        .sample_entity(a_entity, now_us)
        .expect("A in B's view");
    let error_m = (seen.position_m - server_a.position_m).length();
    assert!(
        error_m < 0.1,
        "B draws A at {} but the server has {} ({error_m} m off)",
        seen.position_m,
        server_a.position_m
    );

    // Clean disconnects: A leaves; the server retires its connection; then shutdown tells B.
    a.client.disconnect(Duration::from_secs(3)).await;
    let mut a_gone = false;
    for _ in 0..100 {
        interval.tick().await;
        b.tick(idle, tick_s);
        if server_character(&server, a_entity).await.is_none() {
            a_gone = true;
            break;
        }
    }
    assert!(a_gone, "the server still has A's connection");
    server.shutdown(Duration::from_secs(3)).await;
    for _ in 0..100 {
        b.pump();
        if b.client.state() == ClientState::Closed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        b.events.iter().any(|e| matches!(
            e,
            ClientEvent::Disconnected {
                reason: mmo_core::control::DisconnectReason::ServerShutdown,
                ..
            }
        )),
        "B was not told of the shutdown: {:?}",
        b.events
    );
    b.client.disconnect(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_over_real_quic_on_loopback() {
    tokio::time::timeout(Duration::from_secs(20), run())
        .await
        .expect("the loopback test finished within 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pinning_another_certificate_is_refused() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let cert = ServerCert::self_signed(&["localhost"]).unwrap();
        let server = Server::start(ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            ZoneConfig::default(),
            cert,
            Arc::new(StaticTokens::new()),
        ))
        .await
        .unwrap();
        let other = ServerCert::self_signed(&["localhost"])
            .unwrap()
            .fingerprint();
        let result = NetClient::connect(
            server.local_addr(),
            "localhost",
            ServerTrust::Pinned(other),
            ClientConfig::default(),
            "player",
        )
        .await;
        assert!(result.is_err(), "a wrong pin must fail the handshake");
        let wrong: Fingerprint = Fingerprint([0; 32]);
        assert!(
            NetClient::connect(
                server.local_addr(),
                "localhost",
                ServerTrust::Pinned(wrong),
                ClientConfig::default(),
                "player",
            )
            .await
            .is_err()
        );
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 10 s");
}
