//! Chat across two real `mmo-server` processes sharing one real Redis: a global line and a
//! whisper from a client on server A reach a client on server B, B answers with a whisper,
//! and a whisper to a name online nowhere is refused `chat_unknown_recipient`.
//!
//! Needs `MMO_TEST_REDIS_URL` (skipped without it unless `MMO_REQUIRE_SERVICES=1`). Each
//! run uses its own key and channel prefix, so parallel tests never hear each other.

use std::time::{Duration, Instant};

use mmo_core::control::{ChatChannel, ChatRefusalKind};
use mmo_core::session::client::ClientEvent;
use mmo_net::client::NetClient;
use mmo_net::tls::Fingerprint;

mod common;

use common::process::ServerProcess;
use common::{TempDir, connect_client};

/// The Redis URL, or `None` when the test is to be skipped.
fn redis_url() -> Option<String> {
    match std::env::var("MMO_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("MMO_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("skipped: MMO_TEST_REDIS_URL not set")
        }
        _ => {
            println!("skipped: MMO_TEST_REDIS_URL not set");
            None
        }
    }
}

/// A server process on its own data dir (removed after the process).
struct Process {
    server: ServerProcess,
    _dir: TempDir,
}

fn spawn_server(tag: &str, redis: &str, prefix: &str, accounts: &str) -> Process {
    let dir = TempDir::new(tag);
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let server = ServerProcess::start(
        &[
            "--quic-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
            &data_dir,
        ],
        &[
            ("MMO_REDIS_URL", redis),
            ("MMO_CHAT_REDIS_PREFIX", prefix),
            ("MMO_DEV_ACCOUNTS", accounts),
        ],
        None,
    );
    Process { server, _dir: dir }
}

/// Logs `name` in over HTTP and QUIC; returns the client once welcomed.
async fn log_in(process: &Process, name: &str) -> NetClient {
    let login = process.server.login(name, "pw").await;
    let fingerprint = Fingerprint::from_hex(&login.fingerprint_sha256).unwrap();
    let mut client =
        connect_client(login.quic_addr.parse().unwrap(), fingerprint, &login.token).await;
    assert!(
        wait(&mut [&mut client], Duration::from_secs(5), |e| matches!(
            e,
            ClientEvent::Welcome { .. }
        ))
        .await
        .is_some(),
        "{name} welcomed"
    );
    client
}

/// Pumps every client until the first one sees an event matching `want` (returned).
async fn wait(
    clients: &mut [&mut NetClient],
    within: Duration,
    want: impl Fn(&ClientEvent) -> bool,
) -> Option<ClientEvent> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        for (i, c) in clients.iter_mut().enumerate() {
            c.pump();
            while let Some(e) = c.poll_event() {
                if i == 0 && want(&e) {
                    return Some(e);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

fn chat_text<'a>(e: &'a ClientEvent, from: &str, channel: ChatChannel) -> Option<&'a str> {
    match e {
        ClientEvent::Chat {
            from_name,
            channel: c,
            text,
            ..
        } if from_name == from && *c == channel => Some(text),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_and_whisper_cross_processes_through_redis() {
    let Some(redis) = redis_url() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(90), run(&redis))
        .await
        .expect("finished within 90 s");
}

async fn run(redis: &str) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("mmo-test-{}-{nanos}", std::process::id());
    let server_a = spawn_server("chat-a", redis, &prefix, "alice:pw");
    let server_b = spawn_server("chat-b", redis, &prefix, "bob:pw");
    let mut alice = log_in(&server_a, "alice").await;
    let mut bob = log_in(&server_b, "bob").await;

    // Presence is written when each logs in; a whisper needs the other's key. Retry the
    // first whisper until it is delivered (publishing and presence are asynchronous).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut delivered = false;
    while Instant::now() < deadline && !delivered {
        alice
            .session_mut()
            .send_chat(ChatChannel::Whisper, Some("bob"), "psst bob")
            .unwrap();
        delivered = wait(&mut [&mut bob, &mut alice], Duration::from_secs(2), |e| {
            chat_text(e, "alice", ChatChannel::Whisper) == Some("psst bob")
        })
        .await
        .is_some();
    }
    assert!(
        delivered,
        "alice's whisper on server A reached bob on server B"
    );

    // Global from A reaches B.
    alice
        .session_mut()
        .send_chat(ChatChannel::Global, None, "hello everyone")
        .unwrap();
    let got = wait(&mut [&mut bob, &mut alice], Duration::from_secs(10), |e| {
        chat_text(e, "alice", ChatChannel::Global) == Some("hello everyone")
    })
    .await;
    match got {
        Some(ClientEvent::Chat { from_entity, .. }) => {
            assert_eq!(
                from_entity.0, 0,
                "a line from another process has no entity"
            );
        }
        other => panic!("bob did not hear alice's global line: {other:?}"),
    }

    // B whispers back to A.
    bob.session_mut()
        .send_chat(ChatChannel::Whisper, Some("alice"), "hi alice")
        .unwrap();
    assert!(
        wait(&mut [&mut alice, &mut bob], Duration::from_secs(10), |e| {
            chat_text(e, "bob", ChatChannel::Whisper) == Some("hi alice")
        })
        .await
        .is_some(),
        "bob's whisper reached alice"
    );

    // A whisper to a name online nowhere is refused.
    alice
        .session_mut()
        .send_chat(ChatChannel::Whisper, Some("nobody"), "anyone?")
        .unwrap();
    let refused = wait(&mut [&mut alice, &mut bob], Duration::from_secs(10), |e| {
        matches!(e, ClientEvent::ChatRefused { .. })
    })
    .await;
    match refused {
        Some(ClientEvent::ChatRefused { kind, message }) => {
            assert_eq!(kind, ChatRefusalKind::UnknownRecipient);
            assert!(message.contains("nobody"), "{message}");
        }
        other => panic!("expected chat_unknown_recipient, got {other:?}"),
    }
    drop(server_a);
    drop(server_b);
}
