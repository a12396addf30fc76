//! Error paths, through the binary and the library: a server binary that does not exist,
//! one that exits without printing its ready line, and an `--html` path that cannot be
//! written.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mmo_loadtest::{LoadOptions, Target};

#[test]
fn an_html_path_that_cannot_be_written_fails_before_the_run() {
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mmo-loadtest"))
        .args([
            "--http",
            "127.0.0.1:9",
            "--html",
            "/nonexistent/dir/report.html",
            "--no-progress",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--html /nonexistent/dir/report.html"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    // No bot was started: the error came before any login attempt.
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_binary_names_a_missing_server_binary_and_exits_non_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_mmo-loadtest"))
        .args([
            "--spawn-server",
            "--server-bin",
            "/nonexistent/dir/mmo-server",
            "--bots",
            "1",
            "--no-progress",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server_binary_not_found")
            && stderr.contains("/nonexistent/dir/mmo-server"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_exits_without_a_ready_line_is_a_clear_error() {
    // `true` is a real program that exits at once, printing nothing.
    let Some(exits) = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    else {
        panic!("no `true` program on this machine");
    };
    let options = LoadOptions {
        bots: 1,
        server_ready_timeout: Duration::from_secs(20),
        ..LoadOptions::default()
    };
    let err = mmo_loadtest::run(
        &options,
        Target::SpawnServer {
            server_bin: Some(exits),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "server_start");
    let text = err.to_string();
    assert!(
        text.contains("did not become ready") && text.contains("exit status"),
        "{text}"
    );
}
