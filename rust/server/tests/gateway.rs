//! The gateway settings reach the QUIC endpoint: with `max_connections = 1`, a second
//! client is refused with `ServerFull` while the first plays, and admitted once it left.
//! Its own test process, so its clients do not count in `server.rs`'s metric assertions.

mod common;

use std::time::{Duration, Instant};

use common::{TempDir, loopback_settings, wait_for_event};
use mmo_core::control::DisconnectReason;
use mmo_core::session::client::{ClientConfig, ClientEvent};
use mmo_net::NetError;
use mmo_net::client::NetClient;
use mmo_net::tls::ServerTrust;
use mmo_server::app::App;
use mmo_server::config::ServerSettings;

fn is_welcome_or_disconnect(e: &ClientEvent) -> bool {
    matches!(
        e,
        ClientEvent::Welcome { .. } | ClientEvent::Disconnected { .. }
    )
}

/// Connects as `name`: the client once welcomed, or the reason it was refused.
async fn attempt(app: &App, name: &str) -> Result<NetClient, DisconnectReason> {
    let token = app.token_for(name).await.unwrap();
    let connected = NetClient::connect(
        app.quic_addr().expect("a QUIC endpoint"),
        "localhost",
        ServerTrust::Pinned(app.fingerprint().expect("a certificate")),
        ClientConfig::default(),
        &token,
    )
    .await;
    let mut client = match connected {
        Ok(client) => client,
        Err(NetError::Refused { reason, .. }) => return Err(reason),
        Err(other) => panic!("{name}: expected a welcome or a refusal, got {other}"),
    };
    match wait_for_event(&mut client, is_welcome_or_disconnect).await {
        Some(ClientEvent::Welcome { .. }) => Ok(client),
        Some(ClientEvent::Disconnected { reason, .. }) => Err(reason),
        other => panic!("{name}: expected a welcome or a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_is_enforced() {
    let dir = TempDir::new("cap");
    let app = App::start(ServerSettings {
        max_connections: 1,
        ..loopback_settings(dir.path().join("data"))
    })
    .await
    .unwrap();

    let first = attempt(&app, "first").await.expect("the first is welcomed");
    // The cap is reached: the second is refused with ServerFull.
    let second = attempt(&app, "second").await.map(|_| ());
    assert_eq!(second, Err(DisconnectReason::ServerFull));

    // Once the first left, there is room again (its connection may take a moment to
    // close on the server's side).
    first.disconnect(Duration::from_secs(2)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let third = loop {
        match attempt(&app, "third").await {
            Ok(client) => break client,
            Err(reason) => {
                assert_eq!(reason, DisconnectReason::ServerFull);
                assert!(
                    Instant::now() < deadline,
                    "no room 10 s after the first left"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    third.disconnect(Duration::from_secs(1)).await;
    app.shutdown(Duration::from_secs(1)).await;
}
