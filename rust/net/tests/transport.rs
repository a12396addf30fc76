//! A client whose QUIC connection is closed under it, without a disconnect frame, learns why
//! from the QUIC close code, long before its session's own idle timeout would fire.

mod common;

use std::sync::Arc;
use std::time::Duration;

use mmo_core::control::DisconnectReason;
use mmo_core::session::client::{ClientConfig, ClientEvent, ClientState};
use mmo_net::client::NetClient;
use mmo_net::tls::{ServerCert, ServerTrust};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_without_a_frame_reaches_the_session_with_its_code() {
    tokio::time::timeout(Duration::from_secs(20), async {
        // A bare QUIC server: it accepts, reads the login, and closes with `Kicked`.
        let cert = ServerCert::self_signed(&["localhost"]).unwrap();
        let mut server_config =
            quinn::ServerConfig::with_crypto(mmo_net::tls::quic_server_crypto(&cert).unwrap());
        Arc::get_mut(&mut server_config.transport)
            .unwrap()
            .max_concurrent_bidi_streams(1u32.into());
        let endpoint =
            quinn::Endpoint::server(server_config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let connection = endpoint.accept().await.unwrap().await.unwrap();
            let (_send, mut recv) = connection.accept_bi().await.unwrap();
            let mut buf = [0u8; 256];
            let _ = recv.read(&mut buf).await.unwrap();
            let code = u32::from(DisconnectReason::Kicked.code());
            connection.close(code.into(), b"removed by an operator");
            endpoint.wait_idle().await;
        });

        // The session's own idle timeout is a minute: only the transport can explain a
        // disconnect within the test's time.
        let config = ClientConfig {
            idle_timeout_us: 60_000_000,
            ..ClientConfig::default()
        };
        let mut client = NetClient::connect(
            addr,
            "localhost",
            ServerTrust::Pinned(cert.fingerprint()),
            config,
            "token",
        )
        .await
        .unwrap();
        let mut seen = None;
        for _ in 0..500 {
            client.pump();
            if let Some(ClientEvent::Disconnected { reason, message }) = client.poll_event() {
                seen = Some((reason, message));
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (reason, message) = seen.expect("the session learnt of the close");
        assert_eq!(reason, DisconnectReason::Kicked);
        assert!(message.contains("operator"), "{message}");
        assert_eq!(client.state(), ClientState::Closed);
        let stats = client.stats();
        assert!(
            stats.packets_sent > 0 && stats.udp_bytes_out > 0,
            "{stats:?}"
        );
        assert!(stats.session_bytes_out > 0, "the login was sent: {stats:?}");
        assert!((0.0..=1.0).contains(&stats.loss_ratio));
        server.await.unwrap();
    })
    .await
    .expect("finished within 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipping_verification_connects_to_any_certificate() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let cert = ServerCert::self_signed(&["localhost"]).unwrap();
        let server = mmo_net::server::Server::start(mmo_net::server::ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            mmo_core::zone::ZoneConfig::default(),
            cert,
            Arc::new(mmo_net::auth::StaticTokens::new().with("t", "a")),
        ))
        .await
        .unwrap();
        let mut client = NetClient::connect(
            server.local_addr(),
            "localhost",
            ServerTrust::DangerousSkipVerification,
            ClientConfig::default(),
            "t",
        )
        .await
        .unwrap();
        let mut welcomed = false;
        for _ in 0..500 {
            client.pump();
            if let Some(ClientEvent::Welcome { .. }) = client.poll_event() {
                welcomed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(welcomed);
        assert!(client.stats().rtt_us > 0);
        client.disconnect(Duration::from_secs(1)).await;
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 20 s");
}

/// A full-size snapshot must fit a QUIC datagram from the first packet on: QUIC paths
/// start at 1200-byte packets, and path MTU discovery may never raise them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_size_snapshot_fits_a_datagram_of_the_smallest_quic_path() {
    let server = common::start_server(mmo_net::gateway::GatewayConfig::default()).await;
    let (_endpoint, connection) =
        common::raw_connection(server.local_addr(), server.fingerprint()).await;
    let limit = connection
        .max_datagram_size()
        .expect("datagrams are enabled");
    let snapshot = mmo_core::codec::entity_state::SnapshotConfig::default().max_len_bytes;
    eprintln!("QUIC datagram limit at connect: {limit} bytes; snapshot limit {snapshot}");
    assert!(
        snapshot <= limit,
        "a {snapshot}-byte snapshot does not fit the {limit}-byte datagram limit"
    );
    server.shutdown(std::time::Duration::from_secs(1)).await;
}
