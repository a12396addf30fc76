//! The C++ gameplay client (`tests/c/gameplay_client.cpp`, over `mmo::Client`) against a
//! real `mmo_net` server started in this process on 127.0.0.1 with the default content:
//! built with g++ and clang++ under ASan + UBSan (the helpers of `c_programs.rs`), it logs
//! two players in, has one strike the other and checks both see the damage, moves an item
//! and has a bad move refused, and must exit 0. The server must have seen both players.

use mmo_net::auth::StaticTokens;

use super::c_programs::{self, Program};
use super::live_server::{assert_players_leave, describe, run_watched, runtime, start_server};

const PROGRAM: Program = Program {
    source: "tests/c/gameplay_client.cpp",
    std: "-std=c++17",
};

const TOKEN_A: &str = "gameplay-a";
const TOKEN_B: &str = "gameplay-b";

#[test]
fn the_cpp_gameplay_client_strikes_and_moves_items_against_a_real_server() {
    let lib = c_programs::static_library();
    let out_dir = c_programs::profile_dir().join("c-tests");
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    let runtime = runtime();
    let tokens = StaticTokens::new()
        .with(TOKEN_A, "alice")
        .with(TOKEN_B, "bob");
    let server = start_server(&runtime, tokens);
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
        let (out, most_players) = run_watched(&exe, &args, &runtime, &server);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let describe = format!("{compiler}: {}", describe(&out));
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
        assert_players_leave(&runtime, &server);
        ran += 1;
    }
    assert!(ran > 0, "no C++ compiler found: nothing was checked");
    runtime.block_on(server.shutdown(std::time::Duration::from_millis(500)));
}
