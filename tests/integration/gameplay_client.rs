//! The C++ gameplay client (`tests/c/gameplay_client.cpp`, over `mmo::Client`) against a
//! real `mmo_net` server started in this process on 127.0.0.1 with the default content:
//! built with g++ and clang++ under ASan + UBSan (the helpers of `c_programs.rs`), it logs
//! two players in, has one strike the other and checks both see the damage, moves an item
//! and has a bad move refused, and must exit 0. The server must have seen both players.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmo_core::zone::ZoneConfig;
use mmo_net::auth::StaticTokens;
use mmo_net::server::{Server, ServerConfig};
use mmo_net::tls::ServerCert;

use super::c_programs::{self, Program};

const PROGRAM: Program = Program {
    source: "tests/c/gameplay_client.cpp",
    std: "-std=c++17",
};

const TOKEN_A: &str = "gameplay-a";
const TOKEN_B: &str = "gameplay-b";

/// Longest a run may take (a hang is a failure, not a stuck test).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn start_server(runtime: &tokio::runtime::Runtime) -> Server {
    let cert = ServerCert::self_signed(&["localhost"]).expect("certificate");
    let tokens = StaticTokens::new()
        .with(TOKEN_A, "alice")
        .with(TOKEN_B, "bob");
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
fn players_in_zone(runtime: &tokio::runtime::Runtime, server: &Server) -> usize {
    runtime
        .block_on(server.inspect(|zone, ids| {
            ids.iter()
                .filter(|id| zone.connection(**id).and_then(|c| c.entity()).is_some())
                .count()
        }))
        .unwrap_or(0)
}

#[test]
fn the_cpp_gameplay_client_strikes_and_moves_items_against_a_real_server() {
    let lib = c_programs::static_library();
    let out_dir = c_programs::profile_dir().join("c-tests");
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("test runtime");
    let server = start_server(&runtime);
    let args = [
        "127.0.0.1".to_owned(),
        server.local_addr().port().to_string(),
        server.fingerprint().to_hex(),
        TOKEN_A.to_owned(),
        TOKEN_B.to_owned(),
    ];

    let in_ci = std::env::var_os("CI").is_some();
    let mut ran = 0;
    for compiler in ["gcc", "clang"] {
        if !c_programs::have(compiler) {
            assert!(
                !in_ci,
                "{compiler} is missing under CI: ci/test.sh installs it"
            );
            println!("note: {compiler} not found, its build is skipped");
            continue;
        }
        let exe = c_programs::compile(compiler, &PROGRAM, &lib, &out_dir);
        let mut child = Command::new(&exe)
            .args(&args)
            .env("ASAN_OPTIONS", c_programs::ASAN_OPTIONS)
            .env("UBSAN_OPTIONS", c_programs::UBSAN_OPTIONS)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the gameplay client");
        let deadline = Instant::now() + RUN_TIMEOUT;
        let mut most_players = 0;
        loop {
            most_players = most_players.max(players_in_zone(&runtime, &server));
            if child.try_wait().expect("wait for the client").is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("client output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let describe = format!(
            "{compiler}: status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{compiler}: {stdout}");
        assert!(out.status.success(), "{describe}");
        let summary = stdout
            .lines()
            .find(|l| l.starts_with("gameplay_client: ok "))
            .unwrap_or_else(|| panic!("no summary line\n{describe}"));
        assert!(summary.contains(" damage=12 "), "{summary}");
        assert!(summary.contains(" refused=inventory_bad_slot"), "{summary}");
        assert_eq!(
            most_players, 2,
            "the server never had both players: {describe}"
        );
        // Both left cleanly: the server lets them go without waiting for a timeout.
        let left_by = Instant::now() + Duration::from_secs(5);
        while players_in_zone(&runtime, &server) > 0 {
            assert!(Instant::now() < left_by, "the server still has a player");
            std::thread::sleep(Duration::from_millis(20));
        }
        ran += 1;
    }
    assert!(ran > 0, "no C++ compiler found: nothing was checked");
    runtime.block_on(server.shutdown(Duration::from_millis(500)));
}
