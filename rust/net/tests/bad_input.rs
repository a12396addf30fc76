//! Bad input over real QUIC on 127.0.0.1. Each test sends the server something a broken or
//! hostile client might, checks how it was handled (the close reason, the counters), and
//! that the server still serves an honest client afterwards.

mod common;

use std::time::Duration;

use common::*;
use mmo_core::control::{DisconnectReason, MAX_FRAME_LEN_BYTES};
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::session::client::ClientEvent;
use mmo_net::client::ConnectOptions;
use mmo_net::gateway::GatewayConfig;
use mmo_net::metrics::{
    DATAGRAMS_DROPPED_TOTAL, DISCONNECTS_TOTAL, LOGINS_TOTAL, PROTOCOL_VIOLATIONS_TOTAL,
    VALIDATION_REJECTIONS_TOTAL,
};

/// A deterministic byte generator (xorshift), so a failure can be replayed.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_udp_garbage_is_ignored() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start_server(GatewayConfig::default()).await;
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
        for i in 0..2_000usize {
            // Short junk, and full-size datagrams whose first byte claims a QUIC long header
            // (an Initial): the parser must reject them too.
            let len = if i % 2 == 0 {
                1 + (noise.next() % 64) as usize
            } else {
                1_200
            };
            let mut d = noise.bytes(len);
            if i % 4 == 1 {
                d[0] = 0xc0 | (d[0] & 0x0f);
                d[1..5].copy_from_slice(&1u32.to_be_bytes());
            }
            socket.send_to(&d, server.local_addr()).await.unwrap();
        }
        assert_serves_honest_client(&server, "t0").await;
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_before_login_are_dropped_and_the_silent_client_is_closed() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start_server(GatewayConfig {
            control_stream_timeout: Duration::from_secs(1),
            ..GatewayConfig::default()
        })
        .await;
        let dropped_before = counter(DATAGRAMS_DROPPED_TOTAL, &[("reason", "unauthenticated")]);
        let (_endpoint, connection) =
            raw_connection(server.local_addr(), server.fingerprint()).await;
        let mut noise = Noise(7);
        for _ in 0..50 {
            connection.send_datagram(noise.bytes(100).into()).unwrap();
        }
        let dropped = wait_counter(
            DATAGRAMS_DROPPED_TOTAL,
            &[("reason", "unauthenticated")],
            dropped_before + 1,
            Duration::from_secs(5),
        )
        .await;
        assert!(
            dropped > dropped_before,
            "no unauthenticated datagram was counted"
        );
        // It never opens its control stream: closed with Timeout.
        let code = close_code(&connection, Duration::from_secs(5)).await;
        assert_eq!(code, Some(u64::from(DisconnectReason::Timeout.code())));
        assert_serves_honest_client(&server, "t1").await;
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_refused_with_bad_token() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start_server(GatewayConfig::default()).await;
        let refused_before = counter(LOGINS_TOTAL, &[("outcome", "bad_token")]);
        let mut client = connect(&server, "not-a-token", &ConnectOptions::default())
            .await
            .unwrap();
        let event = wait_event(&mut client, Duration::from_secs(5), |e| {
            disconnected(e).is_some()
        })
        .await
        .expect("disconnected");
        assert_eq!(
            disconnected(&event),
            Some(DisconnectReason::BadToken),
            "{event:?}"
        );
        assert!(counter(LOGINS_TOTAL, &[("outcome", "bad_token")]) > refused_before);
        assert_serves_honest_client(&server, "t2").await;
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_control_frame_closes_with_protocol_violation() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start_server(GatewayConfig::default()).await;
        let labels = [("reason", "protocol_violation")];
        let violations_before = counter(PROTOCOL_VIOLATIONS_TOTAL, &labels);
        let disconnects_before = counter(DISCONNECTS_TOTAL, &labels);
        let (_endpoint, connection) =
            raw_connection(server.local_addr(), server.fingerprint()).await;
        let (mut send, _recv) = connection.open_bi().await.unwrap();
        // LEB128 of a length one over the limit, then some of the body it announces.
        let mut len = MAX_FRAME_LEN_BYTES + 1;
        let mut frame = Vec::new();
        while len >= 0x80 {
            frame.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        frame.push(len as u8);
        frame.extend_from_slice(&[0u8; 1024]);
        send.write_all(&frame).await.unwrap();
        let code = close_code(&connection, Duration::from_secs(5)).await;
        assert_eq!(
            code,
            Some(u64::from(DisconnectReason::ProtocolViolation.code()))
        );
        assert!(
            wait_counter(
                PROTOCOL_VIOLATIONS_TOTAL,
                &labels,
                violations_before + 1,
                Duration::from_secs(2)
            )
            .await
                > violations_before
        );
        assert!(counter(DISCONNECTS_TOTAL, &labels) > disconnects_before);
        assert_serves_honest_client(&server, "t3").await;
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_faster_than_real_time_are_rejected_as_input_rate() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start_server(GatewayConfig::default()).await;
        let labels = [("kind", "input_rate")];
        let rejected_before = counter(VALIDATION_REJECTIONS_TOTAL, &labels);
        let mut speeder = connect(&server, "t4", &ConnectOptions::default())
            .await
            .unwrap();
        assert!(
            wait_event(&mut speeder, Duration::from_secs(5), |e| matches!(
                e,
                ClientEvent::Welcome { .. }
            ))
            .await
            .is_some()
        );
        // A whole second of inputs in a few milliseconds, a few times.
        let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        for _ in 0..4 {
            for _ in 0..30 {
                speeder.send_input(walk);
            }
            speeder.pump();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rejected = wait_counter(
            VALIDATION_REJECTIONS_TOTAL,
            &labels,
            rejected_before + 1,
            Duration::from_secs(5),
        )
        .await;
        assert!(
            rejected > rejected_before,
            "no input_rate rejection counted"
        );
        assert_serves_honest_client(&server, "t5").await;
        // The speeder's connection was counted under its own kind; the byte totals are
        // shared with the other tests of this binary, so they are not asserted here.
        speeder.disconnect(Duration::from_secs(1)).await;
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_control_stream_is_closed_anyway() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start_server(GatewayConfig::default()).await;
        // A raw client with a zero receive window: the server can never write to it.
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut transport = quinn::TransportConfig::default();
        transport.stream_receive_window(0u32.into());
        let mut config = quinn::ClientConfig::new(
            mmo_net::tls::quic_client_crypto(mmo_net::tls::ServerTrust::Pinned(
                server.fingerprint(),
            ))
            .unwrap(),
        );
        config.transport_config(std::sync::Arc::new(transport));
        endpoint.set_default_client_config(config);
        let connection = endpoint
            .connect(server.local_addr(), "localhost")
            .unwrap()
            .await
            .unwrap();
        let (mut send, _recv) = connection.open_bi().await.unwrap();
        // The first byte of a frame that never completes: no login arrives.
        send.write_all(&[5]).await.unwrap();
        // The login timeout (5 s) closes the session; its disconnect frame cannot be
        // written, and the stalled write (5 s) closes the connection with Timeout instead
        // of holding it open.
        let code = close_code(&connection, Duration::from_secs(20)).await;
        assert_eq!(code, Some(u64::from(DisconnectReason::Timeout.code())));
        assert_serves_honest_client(&server, "t6").await;
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 30 s");
}
