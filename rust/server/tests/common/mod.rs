//! Helpers shared by the server's integration tests (each test file is its own process, so
//! metric counts of one file are not disturbed by another's clients).

#![allow(dead_code)] // Each test file uses a different subset.

pub mod cluster;
pub mod db;
// The same test player as mmo-net's tests (one file, compiled into both test suites).
#[path = "../../../net/tests/common/player.rs"]
pub mod player;
pub mod process;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mmo_core::session::client::{ClientConfig, ClientEvent};
use mmo_net::client::NetClient;
use mmo_net::tls::Fingerprint;
use mmo_server::config::ServerSettings;

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh path (not created) tagged `tag`.
    pub fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "mmo-server-test-{tag}-{}-{nanos}",
            std::process::id()
        ));
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Connects a client trusting `fingerprint` and logging in with `token` (the one place
/// that calls `NetClient::connect`).
pub async fn connect_client(addr: SocketAddr, fingerprint: Fingerprint, token: &str) -> NetClient {
    NetClient::connect(
        addr,
        "localhost",
        mmo_net::tls::ServerTrust::Pinned(fingerprint),
        ClientConfig::default(),
        token,
    )
    .await
    .expect("QUIC handshake with the pinned certificate")
}

/// Pumps `client` until an event matches `want` (returning it) or 5 s pass.
pub async fn wait_for_event(
    client: &mut NetClient,
    want: impl Fn(&ClientEvent) -> bool,
) -> Option<ClientEvent> {
    wait_for_event_within(client, Duration::from_secs(5), want).await
}

/// Pumps `client` until an event matches `want` (returning it) or `within` passes.
pub async fn wait_for_event_within(
    client: &mut NetClient,
    within: Duration,
    want: impl Fn(&ClientEvent) -> bool,
) -> Option<ClientEvent> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        client.pump();
        while let Some(event) = client.poll_event() {
            if want(&event) {
                return Some(event);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// The binary with a clean environment and `args`.
pub fn server_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mmo-server"));
    command.env_clear().env("RUST_LOG", "info").args(args);
    command
}

/// Settings for an in-process server on ephemeral loopback ports keeping its files in
/// `data_dir`.
pub fn loopback_settings(data_dir: PathBuf) -> ServerSettings {
    ServerSettings {
        quic_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir,
        ..ServerSettings::default()
    }
}
