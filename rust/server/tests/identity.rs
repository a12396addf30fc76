//! The server's TLS identity: the self-signed certificate kept in the data directory
//! (same fingerprint across restarts), the operator's PEM files, and errors naming a
//! missing file. Its own test process, so its client does not count in `server.rs`'s
//! metric assertions.

mod common;

use std::time::Duration;

use common::{TempDir, connect_client, loopback_settings, server_command, wait_for_event};
use mmo_core::session::client::ClientEvent;
use mmo_server::app::App;
use mmo_server::config::ServerSettings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_self_signed_identity_survives_a_restart_and_pem_files_are_used() {
    let dir = TempDir::new("identity");
    let data_dir = dir.path().join("data");

    let first = App::start(loopback_settings(data_dir.clone()))
        .await
        .unwrap();
    let fingerprint = first.fingerprint().expect("a certificate");
    first.shutdown(Duration::from_secs(1)).await;
    let cert_pem = data_dir.join(mmo_net::tls::CERT_FILE_NAME);
    let key_pem = data_dir.join(mmo_net::tls::KEY_FILE_NAME);
    assert!(cert_pem.is_file() && key_pem.is_file(), "identity kept");

    let second = App::start(loopback_settings(data_dir.clone()))
        .await
        .unwrap();
    assert_eq!(
        second.fingerprint().expect("a certificate"),
        fingerprint,
        "same data dir, same fingerprint"
    );
    second.shutdown(Duration::from_secs(1)).await;

    // The operator's files (here: copies of that identity) win over a fresh data dir,
    // which then gets no generated certificate of its own.
    let operator = dir.path().join("operator");
    std::fs::create_dir_all(&operator).unwrap();
    let (cert_file, key_file) = (operator.join("chain.pem"), operator.join("key.pem"));
    std::fs::copy(&cert_pem, &cert_file).unwrap();
    std::fs::copy(&key_pem, &key_file).unwrap();
    let other_data = dir.path().join("other-data");
    let third = App::start(ServerSettings {
        cert_file: Some(cert_file),
        key_file: Some(key_file),
        ..loopback_settings(other_data.clone())
    })
    .await
    .unwrap();
    assert_eq!(
        third.fingerprint().expect("a certificate"),
        fingerprint,
        "the PEM files are served"
    );
    // A client pinning that fingerprint completes the handshake (the server holds the key).
    let token = third.token_for("pem").await.unwrap();
    let mut client = connect_client(
        third.quic_addr().expect("a QUIC endpoint"),
        fingerprint,
        &token,
    )
    .await;
    let welcome = wait_for_event(&mut client, |e| {
        matches!(
            e,
            ClientEvent::Welcome { .. } | ClientEvent::Disconnected { .. }
        )
    })
    .await;
    assert!(
        matches!(welcome, Some(ClientEvent::Welcome { .. })),
        "{welcome:?}"
    );
    assert!(
        !other_data.join(mmo_net::tls::CERT_FILE_NAME).exists(),
        "nothing generated when PEM files are given"
    );
    third.shutdown(Duration::from_secs(1)).await;

    // A missing key file: start-up fails naming it.
    let missing_key = operator.join("missing-key.pem");
    let err = App::start(ServerSettings {
        cert_file: Some(operator.join("chain.pem")),
        key_file: Some(missing_key.clone()),
        ..loopback_settings(other_data)
    })
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string().contains(missing_key.to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn a_missing_pem_file_exits_1_naming_the_file() {
    let dir = TempDir::new("nopem");
    let data_dir = dir.path().join("data");
    let missing = dir.path().join("no-such-chain.pem");
    let key = dir.path().join("key.pem");
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let output = server_command(&[
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--quic-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--cert-file",
        missing.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no-such-chain.pem") && stderr.contains("certificate"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "no READY line");
}
