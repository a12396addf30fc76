//! Helpers of the tests that run a C or C++ client program against a real `mmo_net` server
//! started in this process on 127.0.0.1: the server, the program run under the sanitizers
//! while the server is watched, and the server's view of its players.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmo_core::zone::ZoneConfig;
use mmo_net::auth::StaticTokens;
use mmo_net::server::{Server, ServerConfig};
use mmo_net::tls::ServerCert;

use super::c_programs;

/// Longest a program run may take (a hang is a failure, not a stuck test).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A one-worker runtime for the server.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("test runtime")
}

/// A server on 127.0.0.1 (any port) with the default zone, accepting `tokens`.
pub(crate) fn start_server(runtime: &tokio::runtime::Runtime, tokens: StaticTokens) -> Server {
    let cert = ServerCert::self_signed(&["localhost"]).expect("certificate");
    runtime
        .block_on(Server::start(ServerConfig::new(
            "127.0.0.1:0".parse().expect("address"),
            ZoneConfig::default(),
            cert,
            Arc::new(tokens),
        )))
        .expect("server starts")
}

/// Players with a character in the zone now.
pub(crate) fn players_in_zone(runtime: &tokio::runtime::Runtime, server: &Server) -> usize {
    runtime
        .block_on(server.inspect(|zone, ids| {
            ids.iter()
                .filter(|id| zone.connection(**id).and_then(|c| c.entity()).is_some())
                .count()
        }))
        .unwrap_or(0)
}

/// Runs `exe` with `args` under the sanitizers; while it runs, records the most players the
/// server had in its zone at once. Returns the output and that count.
pub(crate) fn run_watched(
    exe: &Path,
    args: &[String],
    runtime: &tokio::runtime::Runtime,
    server: &Server,
) -> (Output, usize) {
    let mut child = Command::new(exe)
        .args(args)
        .env("ASAN_OPTIONS", c_programs::ASAN_OPTIONS)
        .env("UBSAN_OPTIONS", c_programs::UBSAN_OPTIONS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", exe.display()));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut most_players = 0;
    loop {
        most_players = most_players.max(players_in_zone(runtime, server));
        if child.try_wait().expect("wait for the program").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (
        child.wait_with_output().expect("program output"),
        most_players,
    )
}

/// Waits (up to 5 s) until the server has no player left: clients that leave cleanly are
/// let go without waiting for a timeout.
pub(crate) fn assert_players_leave(runtime: &tokio::runtime::Runtime, server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while players_in_zone(runtime, server) > 0 {
        assert!(Instant::now() < deadline, "the server still has a player");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A program's exit status and output, for failure messages.
pub(crate) fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
