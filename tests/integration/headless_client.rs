//! The C++ headless client (`tests/c/headless_client.cpp`, over `mmo::Client`) against a
//! real `mmo_net` server started in this process on 127.0.0.1: built with g++ and clang++
//! under ASan + UBSan (the helpers of `c_programs.rs`), it logs in, walks for 2 s, leaves
//! with CLIENT_QUIT, and must exit 0 while the server sees its player log in. Then a wrong
//! pinned fingerprint and an unknown token must each end the program's session with a clear
//! disconnect reason instead of hanging.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmo_core::zone::ZoneConfig;
use mmo_net::auth::StaticTokens;
use mmo_net::server::{Server, ServerConfig};
use mmo_net::tls::ServerCert;

use super::c_programs::{self, Program};

const PROGRAM: Program = Program {
    source: "tests/c/headless_client.cpp",
    std: "-std=c++17",
};

/// The one token the server accepts.
const TOKEN: &str = "headless-token";

/// Longest a run may take (a hang is a failure, not a stuck test).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn start_server(runtime: &tokio::runtime::Runtime) -> Server {
    let cert = ServerCert::self_signed(&["localhost"]).expect("certificate");
    runtime
        .block_on(Server::start(ServerConfig::new(
            "127.0.0.1:0".parse().expect("address"),
            ZoneConfig::default(),
            cert,
            Arc::new(StaticTokens::new().with(TOKEN, "headless")),
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

/// Runs `exe` with `args` under the sanitizers; while it runs, records whether the server
/// ever had a player in its zone. Returns the output and that observation.
fn run(
    exe: &Path,
    args: &[String],
    runtime: &tokio::runtime::Runtime,
    server: &Server,
) -> (Output, bool) {
    let mut child = Command::new(exe)
        .args(args)
        .env("ASAN_OPTIONS", c_programs::ASAN_OPTIONS)
        .env("UBSAN_OPTIONS", c_programs::UBSAN_OPTIONS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the headless client");
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut saw_player = false;
    loop {
        saw_player |= players_in_zone(runtime, server) > 0;
        if child.try_wait().expect("wait for the client").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().expect("client output"), saw_player)
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_cpp_headless_client_plays_a_session_against_a_real_server() {
    let lib = c_programs::static_library();
    let out_dir = c_programs::profile_dir().join("c-tests");
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("test runtime");
    let server = start_server(&runtime);
    let port = server.local_addr().port().to_string();
    let pin = server.fingerprint().to_hex();
    let wrong_pin = "ab".repeat(32);
    let args = |pin: &str, token: &str, expect: Option<&str>| -> Vec<String> {
        let mut a = vec![
            "127.0.0.1".to_owned(),
            port.clone(),
            pin.to_owned(),
            token.to_owned(),
        ];
        if let Some(reason) = expect {
            a.push(format!("--expect-disconnect={reason}"));
        }
        a
    };

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

        let (out, saw_player) = run(&exe, &args(&pin, TOKEN, None), &runtime, &server);
        let stdout = String::from_utf8_lossy(&out.stdout);
        print!("{compiler}: {stdout}");
        assert!(out.status.success(), "{compiler}: {}", describe(&out));
        let summary = stdout
            .lines()
            .find(|l| l.starts_with("headless_client: ok "))
            .unwrap_or_else(|| panic!("{compiler}: no summary line\n{}", describe(&out)));
        assert!(summary.contains(" disconnect=client_quit"), "{summary}");
        assert!(
            saw_player,
            "{compiler}: the server never had the player in its zone"
        );
        // The player left cleanly: the server lets it go without waiting for a timeout.
        let deadline = Instant::now() + Duration::from_secs(5);
        while players_in_zone(&runtime, &server) > 0 {
            assert!(Instant::now() < deadline, "the server still has the player");
            std::thread::sleep(Duration::from_millis(20));
        }

        let (out, _) = run(
            &exe,
            &args(&wrong_pin, TOKEN, Some("connect_failed")),
            &runtime,
            &server,
        );
        print!("{compiler}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(
            out.status.success(),
            "{compiler} wrong pin: {}",
            describe(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("certificate"),
            "the message names the certificate: {}",
            describe(&out)
        );

        let (out, saw_player) = run(
            &exe,
            &args(&pin, "not-a-token", Some("bad_token")),
            &runtime,
            &server,
        );
        print!("{compiler}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(
            out.status.success(),
            "{compiler} bad token: {}",
            describe(&out)
        );
        assert!(!saw_player, "a refused token never gets a character");
        ran += 1;
    }
    assert!(ran > 0, "no C++ compiler found: nothing was checked");
    runtime.block_on(server.shutdown(Duration::from_millis(500)));
}
