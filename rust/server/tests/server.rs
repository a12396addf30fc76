//! The server end to end on 127.0.0.1: in process (`App` with real QUIC and HTTP sockets)
//! and as the real `mmo-server` binary (READY line, SIGTERM, exit codes, `--help`).

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use mmo_core::control::DisconnectReason;
use mmo_core::session::client::ClientEvent;
use mmo_net::tls::Fingerprint;
use mmo_server::app::App;
use mmo_server::auth::{Claims, ISSUER, TokenIssuer};
use mmo_server::config::{DevAccount, ServerSettings};
use mmo_server::http::{ErrorResponse, LoginResponse};

mod common;

use common::{TempDir, connect_client, server_command, wait_for_event};

fn is_disconnect(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::Disconnected { .. })
}

async fn refusal_of(
    app: &App,
    fingerprint: Fingerprint,
    token: &str,
) -> (DisconnectReason, String) {
    let mut client = connect_client(
        app.quic_addr().expect("a QUIC endpoint"),
        fingerprint,
        token,
    )
    .await;
    match wait_for_event(&mut client, is_disconnect).await {
        Some(ClientEvent::Disconnected { reason, message }) => (reason, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_over_http_then_play_over_quic() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("app");
        let settings = ServerSettings {
            quic_addr: "127.0.0.1:0".parse().unwrap(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("data"),
            dev_accounts: vec![DevAccount {
                name: "alice".into(),
                password: "pw1".into(),
            }],
            ..ServerSettings::default()
        };
        let app = App::start(settings).await.unwrap();
        assert!(
            dir.path().join("data/jwt_secret").is_file(),
            "secret generated"
        );
        let http = reqwest::Client::new();
        let base = format!("http://{}", app.http_addr());

        for path in ["/healthz", "/readyz"] {
            let status = http
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200, "{path}");
        }

        // A good login.
        let response = http
            .post(format!("{base}/v1/login"))
            .json(&serde_json::json!({"username": "alice", "password": "pw1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let login: LoginResponse = response.json().await.unwrap();
        assert_eq!(login.expires_in_s, 900);
        assert_eq!(
            login.quic_addr,
            app.quic_addr().expect("a QUIC endpoint").to_string()
        );
        assert_eq!(
            login.fingerprint_sha256,
            app.fingerprint().expect("a certificate").to_hex()
        );

        // Wrong password, unknown user: 401 with the JSON error.
        for (user, password) in [("alice", "pw2"), ("mallory", "pw1")] {
            let response = http
                .post(format!("{base}/v1/login"))
                .json(&serde_json::json!({"username": user, "password": password}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401);
            let body: ErrorResponse = response.json().await.unwrap();
            assert_eq!(body.error, "bad_credentials");
            assert!(!body.message.is_empty());
        }

        // Malformed bodies: 400 with the JSON error.
        let oversized = "x".repeat(300);
        let bad_bodies = [
            "{not json".to_owned(),
            r#"{"username": "alice"}"#.to_owned(),
            r#"{"username": "", "password": "pw1"}"#.to_owned(),
            format!(r#"{{"username": "alice", "password": "{oversized}"}}"#),
            format!(
                r#"{{"username": "{}", "password": "pw1"}}"#,
                "a".repeat(8_000)
            ),
        ];
        for body in bad_bodies {
            let response = http
                .post(format!("{base}/v1/login"))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{}", &body[..body.len().min(60)]);
            let error: ErrorResponse = response.json().await.unwrap();
            assert_eq!(error.error, "bad_request");
            assert!(!error.message.is_empty());
        }

        // Play: the token and the fingerprint from the login response.
        let fingerprint =
            Fingerprint::from_hex(&login.fingerprint_sha256).expect("a 64-hex fingerprint");
        let quic_addr: SocketAddr = login.quic_addr.parse().unwrap();
        let mut alice = connect_client(quic_addr, fingerprint, &login.token).await;
        let welcome = wait_for_event(&mut alice, |e| {
            matches!(
                e,
                ClientEvent::Welcome { .. } | ClientEvent::Disconnected { .. }
            )
        })
        .await;
        assert!(
            matches!(welcome, Some(ClientEvent::Welcome { .. })),
            "welcome expected, got {welcome:?}"
        );

        // An expired token and a forged one are refused with BadToken.
        let now_s = mmo_net::auth::unix_now_s();
        let expired = app
            .issuer()
            .issue_claims(&Claims {
                sub: "bob".into(),
                iat: now_s - 1_000,
                exp: now_s - 100,
                iss: ISSUER.into(),
                chr: None,
            })
            .unwrap();
        let (reason, message) = refusal_of(&app, fingerprint, &expired).await;
        assert_eq!(reason, DisconnectReason::BadToken);
        assert!(message.contains("expired"), "{message}");
        let forged = TokenIssuer::new(b"not the server's secret, 32+ bytes", 900)
            .issue("carol", now_s)
            .unwrap();
        let (reason, message) = refusal_of(&app, fingerprint, &forged).await;
        assert_eq!(reason, DisconnectReason::BadToken);
        assert!(message.contains("signature"), "{message}");

        // Metrics: logins by outcome, the HTTP logins, the tick histogram, the process
        // gauges.
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("mmo_logins_total{outcome=\"accepted\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("mmo_logins_total{outcome=\"bad_token\"} 2"),
            "{metrics}"
        );
        assert!(
            metrics.contains("mmo_http_logins_total{outcome=\"ok\"}"),
            "{metrics}"
        );
        // The zone's tick histogram, recorded by mmo-net, with this crate's buckets.
        assert!(
            metrics.contains("mmo_tick_duration_seconds_bucket{zone=\"0\",le=\"0.001\"}"),
            "{metrics}"
        );
        assert!(
            metrics.contains("mmo_tick_duration_max_seconds{zone=\"0\"}"),
            "{metrics}"
        );
        #[cfg(target_os = "linux")]
        assert!(
            metrics.contains("process_resident_memory_bytes"),
            "{metrics}"
        );

        // Shutdown: the player is told ServerShutdown.
        let shutdown = tokio::spawn(app.shutdown(Duration::from_secs(2)));
        match wait_for_event(&mut alice, is_disconnect).await {
            Some(ClientEvent::Disconnected { reason, .. }) => {
                assert_eq!(reason, DisconnectReason::ServerShutdown);
            }
            other => panic!("expected ServerShutdown, got {other:?}"),
        }
        shutdown.await.unwrap();
        assert!(
            http.get(format!("{base}/healthz")).send().await.is_err(),
            "HTTP stopped"
        );
    })
    .await
    .expect("finished within 60 s");
}

/// Reads the READY line from a spawned server's stdout (20 s at most).
fn read_ready_line(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("READY line within 20 s")
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_ready_serves_and_exits_0_on_sigterm() {
    let dir = TempDir::new("bin");
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let mut child = server_command(&[
        "--quic-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--data-dir",
        &data_dir,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let line = read_ready_line(&mut child);
    assert!(line.starts_with("MMO_SERVER_READY "), "{line}");
    let quic: SocketAddr = field(&line, "quic=").parse().unwrap();
    let http_addr: SocketAddr = field(&line, "http=").parse().unwrap();
    assert!(quic.ip().is_loopback() && quic.port() != 0, "{line}");
    assert_eq!(field(&line, "fingerprint=").len(), 64, "{line}");

    let ready = reqwest::get(format!("http://{http_addr}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with the pid of our own child and a valid signal number.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM sent");
    let status = wait_exit(&mut child, Duration::from_secs(15));
    if status.is_none() {
        let _ = child.kill();
    }
    let status = status.expect("exited within 15 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn bad_settings_exit_2_naming_the_option() {
    let dir = TempDir::new("badopt");
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let output = server_command(&["--data-dir", &data_dir, "--tick-rate-hz", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--tick-rate-hz") && stderr.contains("'0'"),
        "{stderr}"
    );

    let output = server_command(&["--data-dir", &data_dir])
        .env("MMO_QUIC_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MMO_QUIC_ADDR"), "{stderr}");

    let output = server_command(&["--max-connections", "many"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--max-connections"));
    assert!(output.stdout.is_empty(), "nothing but READY goes to stdout");
}

#[test]
fn a_taken_http_port_exits_1() {
    let dir = TempDir::new("taken");
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = server_command(&[
        "--data-dir",
        &data_dir,
        "--quic-addr",
        "127.0.0.1:0",
        "--http-addr",
        &addr,
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("HTTP") && stderr.contains(&addr),
        "{stderr}"
    );
}

#[test]
fn help_mentions_every_option() {
    let output = server_command(&["--help"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--config",
        "--quic-addr",
        "--http-addr",
        "--data-dir",
        "--tick-rate-hz",
        "--max-connections",
        "--handshake-burst",
        "--handshake-refill-per-s",
        "--retry-above-pending-handshakes",
        "--udp-buffer-bytes",
        "--cert-file",
        "--key-file",
        "--server-name",
        "--jwt-secret-file",
        "--token-ttl-s",
        "--dev-open-login",
        "--log-format",
        "MMO_DEV_ACCOUNTS",
        "[world]",
    ] {
        assert!(help.contains(option), "--help lacks {option}");
    }
}
