//! The gateway over real QUIC on 127.0.0.1: the connection cap turns a client away with
//! `ServerFull`, clients still connect when every handshake must go through a Retry, and a
//! burst of handshakes from one address beyond its rate is ignored.

mod common;

use std::time::Duration;

use common::*;
use mmo_core::control::DisconnectReason;
use mmo_core::session::client::ClientEvent;
use mmo_net::NetError;
use mmo_net::client::ConnectOptions;
use mmo_net::gateway::GatewayConfig;
use mmo_net::metrics::HANDSHAKES_TOTAL;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_the_connection_cap_is_told_the_server_is_full() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start_server(GatewayConfig {
            max_connections: 2,
            ..GatewayConfig::default()
        })
        .await;
        let options = ConnectOptions::default();
        let welcomed = |e: &ClientEvent| matches!(e, ClientEvent::Welcome { .. });
        let mut a = connect(&server, "t0", &options).await.unwrap();
        let mut b = connect(&server, "t1", &options).await.unwrap();
        assert!(
            wait_event(&mut a, Duration::from_secs(5), welcomed)
                .await
                .is_some()
        );
        assert!(
            wait_event(&mut b, Duration::from_secs(5), welcomed)
                .await
                .is_some()
        );

        let refused_before = counter(HANDSHAKES_TOTAL, &[("outcome", "refused_full")]);
        // The refusal comes right after the handshake: connect either reports it, or the
        // session does.
        match connect(&server, "t2", &options).await {
            Err(NetError::Refused { reason, .. }) => {
                assert_eq!(reason, DisconnectReason::ServerFull)
            }
            Err(other) => panic!("expected ServerFull, got {other}"),
            Ok(mut c) => {
                let event = wait_event(&mut c, Duration::from_secs(5), |e| {
                    disconnected(e).is_some()
                })
                .await
                .expect("the third client is disconnected");
                assert_eq!(
                    disconnected(&event),
                    Some(DisconnectReason::ServerFull),
                    "{event:?}"
                );
                assert!(
                    c.session().entity_id().is_none(),
                    "the third client was never welcomed"
                );
            }
        }
        assert!(counter(HANDSHAKES_TOTAL, &[("outcome", "refused_full")]) > refused_before);

        // A place frees up when a client leaves.
        a.disconnect(Duration::from_secs(1)).await;
        let mut joined = false;
        for _ in 0..30 {
            if let Ok(mut c) = connect(&server, "t3", &options).await
                && wait_event(&mut c, Duration::from_secs(2), welcomed)
                    .await
                    .is_some()
            {
                joined = true;
                c.disconnect(Duration::from_secs(1)).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(joined, "no place freed up after a client left");
        b.disconnect(Duration::from_secs(1)).await;
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_connect_through_a_retry_when_every_handshake_must_validate() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start_server(GatewayConfig {
            retry_above_pending_handshakes: 0,
            ..GatewayConfig::default()
        })
        .await;
        let retries_before = counter(HANDSHAKES_TOTAL, &[("outcome", "retry")]);
        assert_serves_honest_client(&server, "t4").await;
        assert_serves_honest_client(&server, "t5").await;
        let retries = counter(HANDSHAKES_TOTAL, &[("outcome", "retry")]) - retries_before;
        assert!(retries >= 2, "{retries} retries for two clients");
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_over_the_per_address_rate_are_ignored() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start_server(GatewayConfig {
            handshake_burst: 2,
            handshake_refill_per_s: 1,
            ..GatewayConfig::default()
        })
        .await;
        let limited_before = counter(HANDSHAKES_TOTAL, &[("outcome", "refused_rate")]);
        let quick = ConnectOptions {
            connect_timeout: Duration::from_millis(700),
            ..ConnectOptions::default()
        };
        let a = connect(&server, "t6", &quick)
            .await
            .expect("first of the burst");
        let b = connect(&server, "t7", &quick)
            .await
            .expect("second of the burst");
        match connect(&server, "t8", &quick).await {
            Err(NetError::Connection(m)) => assert!(m.contains("timed out"), "{m}"),
            Err(other) => panic!("expected a handshake timeout, got {other}"),
            Ok(_) => panic!("a third handshake within the second was let through"),
        }
        assert!(counter(HANDSHAKES_TOTAL, &[("outcome", "refused_rate")]) > limited_before);
        drop((a, b));
        // One token a second: the address gets in again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_serves_honest_client(&server, "t9").await;
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 30 s");
}
