//! The C++ headless client (`tests/c/headless_client.cpp`, over `mmo::Client`) against a
//! real `mmo_net` server started in this process on 127.0.0.1: built with g++ and clang++
//! under ASan + UBSan (the helpers of `c_programs.rs`), it logs in, walks for 2 s, leaves
//! with CLIENT_QUIT, and must exit 0 while the server sees its player log in. Then a wrong
//! pinned fingerprint and an unknown token must each end the program's session with a clear
//! disconnect reason instead of hanging.

use mmo_net::auth::StaticTokens;

use super::c_programs::{self, Program};
use super::live_server::{assert_players_leave, describe, run_watched, runtime, start_server};

const PROGRAM: Program = Program {
    source: "tests/c/headless_client.cpp",
    std: "-std=c++17",
};

/// The one token the server accepts.
const TOKEN: &str = "headless-token";

#[test]
fn the_cpp_headless_client_plays_a_session_against_a_real_server() {
    let lib = c_programs::static_library();
    let out_dir = c_programs::profile_dir().join("c-tests");
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    let runtime = runtime();
    let server = start_server(&runtime, StaticTokens::new().with(TOKEN, "headless"));
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

        let (out, most_players) = run_watched(&exe, &args(&pin, TOKEN, None), &runtime, &server);
        let stdout = String::from_utf8_lossy(&out.stdout);
        print!("{compiler}: {stdout}");
        assert!(out.status.success(), "{compiler}: {}", describe(&out));
        let summary = stdout
            .lines()
            .find(|l| l.starts_with("headless_client: ok "))
            .unwrap_or_else(|| panic!("{compiler}: no summary line\n{}", describe(&out)));
        assert!(summary.contains(" disconnect=client_quit"), "{summary}");
        assert!(
            most_players > 0,
            "{compiler}: the server never had the player in its zone"
        );
        assert_players_leave(&runtime, &server);

        let (out, _) = run_watched(
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

        let (out, most_players) = run_watched(
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
        assert_eq!(most_players, 0, "a refused token never gets a character");
        ran += 1;
    }
    assert!(ran > 0, "no C++ compiler found: nothing was checked");
    runtime.block_on(server.shutdown(std::time::Duration::from_millis(500)));
}
