//! Tests of the `mmo_client` exports through the `extern "C"` functions: the boundary rules
//! (NULL, bad configs, state errors, panics, `_free(NULL)`) and real sessions against an
//! in-process `mmo_net` server on 127.0.0.1.
//!
//! Tests that make a client handle start its tokio runtime (threads, epoll, sockets),
//! which Miri cannot run: they are `#[cfg_attr(miri, ignore)]`. The config and NULL checks
//! run under Miri.

use std::ffi::{CStr, CString, c_char};
use std::ptr::{null, null_mut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::*;
use super::event::*;
use super::*;
use crate::boundary::test_hooks::panic_next_call;
use crate::interpolator::mmo_interpolation_config;
use crate::result::{mmo_last_error_message, mmo_result};

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    let mut len = 0usize;
    // SAFETY: `buf` holds 512 bytes and `len` is a live local.
    let r = unsafe { mmo_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(r, mmo_result::Ok);
    // SAFETY: on success the buffer holds a NUL-terminated string.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

fn default_config() -> mmo_client_config {
    let mut c = std::mem::MaybeUninit::uninit();
    // SAFETY: out pointer to a live local, written on success (asserted).
    unsafe {
        assert_eq!(mmo_client_config_default(c.as_mut_ptr()), mmo_result::Ok);
        c.assume_init()
    }
}

/// `mmo_client_new` with `config`; the result code and the handle (NULL on failure).
fn try_new(config: &mmo_client_config) -> (mmo_result, *mut mmo_client) {
    let mut out = null_mut();
    // SAFETY: pointers to live locals; the config's strings outlive the call.
    let r = unsafe { mmo_client_new(config, &mut out) };
    (r, out)
}

const SOME_PIN: &str = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

#[test]
fn fingerprint_hex_parses_both_cases_and_names_what_is_wrong() {
    let pin = parse_fingerprint(SOME_PIN).unwrap();
    assert_eq!(pin.0[0], 0x00);
    assert_eq!(pin.0[1], 0x11);
    assert_eq!(pin.0[31], 0xff);
    assert_eq!(pin.to_hex(), SOME_PIN.to_lowercase());
    assert!(
        parse_fingerprint("abc")
            .unwrap_err()
            .contains("64 hex digits")
    );
    let mut bad = SOME_PIN.to_owned();
    bad.replace_range(10..11, "g");
    assert!(
        parse_fingerprint(&bad)
            .unwrap_err()
            .contains("character 10 is not a hex digit")
    );
    // A sign is not a digit (a bare integer parser would take "+f").
    let mut signed = SOME_PIN.to_owned();
    signed.replace_range(0..1, "+");
    assert!(parse_fingerprint(&signed).is_err());
    // A multi-byte character of the right total length is refused, not split.
    let mut wide = SOME_PIN[..62].to_owned();
    wide.push('é');
    assert!(parse_fingerprint(&wide).is_err());
}

#[test]
fn bad_configs_are_refused_with_the_field_named() {
    let pin = CString::new(SOME_PIN).unwrap();
    let short = CString::new("abcd").unwrap();
    let non_hex = CString::new("z".repeat(64)).unwrap();
    let spaced = CString::new("my server").unwrap();
    let invalid_utf8 = [0xffu8 as c_char, 0];
    let base = mmo_client_config {
        server_fingerprint_hex: pin.as_ptr(),
        ..default_config()
    };
    let cases: Vec<(mmo_client_config, &str)> = vec![
        (default_config(), "`server_fingerprint_hex` is required"),
        (
            mmo_client_config {
                server_fingerprint_hex: short.as_ptr(),
                ..base
            },
            "expected 64 hex digits",
        ),
        (
            mmo_client_config {
                server_fingerprint_hex: non_hex.as_ptr(),
                ..base
            },
            "is not a hex digit",
        ),
        (
            mmo_client_config {
                server_fingerprint_hex: invalid_utf8.as_ptr(),
                ..base
            },
            "not valid UTF-8",
        ),
        (
            mmo_client_config {
                server_name: spaced.as_ptr(),
                ..base
            },
            "`server_name` contains ' '",
        ),
        (
            mmo_client_config {
                idle_timeout_ms: 0,
                ..base
            },
            "`idle_timeout_ms` = 0",
        ),
        (
            mmo_client_config {
                redundant_inputs: 17,
                ..base
            },
            "`redundant_inputs` = 17",
        ),
        (
            mmo_client_config {
                interpolation: mmo_interpolation_config {
                    capacity: 1,
                    ..base.interpolation
                },
                ..base
            },
            "`interpolation`",
        ),
    ];
    for (config, expected) in cases {
        let (r, out) = try_new(&config);
        assert_eq!(r, mmo_result::InvalidConfig, "{expected}");
        assert!(out.is_null(), "no handle on failure");
        let text = last_error();
        assert!(text.contains(expected), "{text:?} lacks {expected:?}");
    }
    // SAFETY: NULL pointers are what is tested.
    unsafe {
        assert_eq!(
            mmo_client_config_default(null_mut()),
            mmo_result::NullArgument
        );
        assert_eq!(mmo_client_new(null(), null_mut()), mmo_result::NullArgument);
        assert_eq!(mmo_client_new(&base, null_mut()), mmo_result::NullArgument);
        assert_eq!(last_error(), "`out` is NULL");
    }
}

#[test]
fn null_client_is_reported_by_every_export_and_free_null_is_a_no_op() {
    let input = mmo_move_input::default();
    let text = c"hi";
    let mut event = mmo_client_event::default();
    let mut flag = 0u8;
    let mut n = 0usize;
    let mut local = mmo_local_state::default();
    let mut sample = mmo_interp_output::default();
    let mut stats = mmo_connection_stats::default();
    let mut state = mmo_connection_state::Idle;
    let mut silent_ms = 0u64;
    // SAFETY: the client is NULL (what is tested); the other pointers are live locals.
    unsafe {
        mmo_client_free(null_mut());
        let codes = [
            mmo_client_connect(null_mut(), text.as_ptr(), 1, text.as_ptr()),
            mmo_client_poll_event(null_mut(), &mut event, &mut flag),
            mmo_client_event_text(null(), null_mut(), 0, &mut n),
            mmo_client_send_input(null_mut(), &input),
            mmo_client_send_chat(null_mut(), 0, text.as_ptr()),
            mmo_client_advance_visual(null_mut(), 0.0),
            mmo_client_local_state(null_mut(), &mut local),
            mmo_client_entity_count(null(), &mut n),
            mmo_client_entity_ids(null(), null_mut(), 0, &mut n),
            mmo_client_sample_entity(null_mut(), 1, &mut sample),
            mmo_client_stats(null(), &mut stats),
            mmo_client_connection_state(null(), &mut state),
            mmo_client_disconnect(null_mut()),
            mmo_client_resume(null_mut(), text.as_ptr(), 1),
            mmo_client_server_silent_ms(null(), &mut silent_ms),
        ];
        for (i, code) in codes.into_iter().enumerate() {
            assert_eq!(code, mmo_result::NullArgument, "export #{i}");
            assert_eq!(last_error(), "`client` is NULL", "export #{i}");
        }
    }
}

/// A handle with a pin nobody serves, for the state tests.
fn new_client() -> *mut mmo_client {
    let pin = CString::new(SOME_PIN).unwrap();
    let config = mmo_client_config {
        server_fingerprint_hex: pin.as_ptr(),
        ..default_config()
    };
    let (r, client) = try_new(&config);
    assert_eq!(r, mmo_result::Ok, "{}", last_error());
    assert!(!client.is_null());
    client
}

fn state_of(client: *const mmo_client) -> mmo_connection_state {
    let mut state = mmo_connection_state::Closed;
    // SAFETY: a live handle and a live local.
    let r = unsafe { mmo_client_connection_state(client, &mut state) };
    assert_eq!(r, mmo_result::Ok);
    state
}

/// One poll; the event and its text when there was one.
fn poll(client: *mut mmo_client) -> Option<(mmo_client_event, String)> {
    let mut event = mmo_client_event::default();
    let mut has = 7u8;
    // SAFETY: a live handle and live locals.
    let r = unsafe { mmo_client_poll_event(client, &mut event, &mut has) };
    assert_eq!(r, mmo_result::Ok, "{}", last_error());
    match has {
        0 => None,
        1 => {
            let mut len = 0usize;
            // SAFETY: a size query (NULL buffer, length 0) with a live `len`.
            let r = unsafe { mmo_client_event_text(client, null_mut(), 0, &mut len) };
            assert!(r == mmo_result::BufferTooSmall || (r == mmo_result::Ok && len == 0));
            assert_eq!(len, event.text_len_bytes);
            let mut buf = vec![0 as c_char; len + 1];
            // SAFETY: `buf` holds `len + 1` bytes.
            let r = unsafe { mmo_client_event_text(client, buf.as_mut_ptr(), buf.len(), &mut len) };
            assert_eq!(r, mmo_result::Ok);
            // SAFETY: NUL-terminated on success.
            let text = unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_str()
                .unwrap()
                .to_owned();
            Some((event, text))
        }
        other => panic!("out_has_event = {other}"),
    }
}

#[test]
#[cfg_attr(miri, ignore = "starts a tokio runtime (threads, epoll)")]
fn calls_out_of_state_are_state_errors_and_connect_twice_is_refused() {
    let client = new_client();
    let host = c"127.0.0.1";
    let token = c"t";
    let input = mmo_move_input::default();
    let mut local = mmo_local_state::default();
    let mut stats = mmo_connection_stats {
        rtt_us: 99,
        ..Default::default()
    };
    // SAFETY: a live handle; the other pointers are live locals or C string literals.
    unsafe {
        assert_eq!(state_of(client), mmo_connection_state::Idle);
        // Poll before connect: no event, nothing written but the flag.
        assert!(poll(client).is_none());
        assert_eq!(
            mmo_client_send_input(client, &input),
            mmo_result::InvalidState
        );
        assert!(last_error().contains("idle"), "{}", last_error());
        assert_eq!(
            mmo_client_local_state(client, &mut local),
            mmo_result::InvalidState
        );
        assert_eq!(mmo_client_disconnect(client), mmo_result::InvalidState);
        assert_eq!(
            mmo_client_resume(client, host.as_ptr(), 1),
            mmo_result::InvalidState
        );
        assert!(last_error().contains("idle"), "{}", last_error());
        assert_eq!(
            mmo_client_resume(client, c"".as_ptr(), 1),
            mmo_result::InvalidArgument
        );
        assert_eq!(
            mmo_client_resume(client, host.as_ptr(), 0),
            mmo_result::InvalidArgument
        );
        let mut silent_ms = 7u64;
        assert_eq!(
            mmo_client_server_silent_ms(client, &mut silent_ms),
            mmo_result::Ok
        );
        assert_eq!(silent_ms, 0, "no connection yet");
        assert_eq!(mmo_client_stats(client, &mut stats), mmo_result::Ok);
        assert_eq!(stats, mmo_connection_stats::default());
        // Bad arguments are refused before anything starts.
        assert_eq!(
            mmo_client_connect(client, c"".as_ptr(), 1, token.as_ptr()),
            mmo_result::InvalidArgument
        );
        assert_eq!(
            mmo_client_connect(client, host.as_ptr(), 0, token.as_ptr()),
            mmo_result::InvalidArgument
        );
        assert_eq!(
            mmo_client_connect(client, host.as_ptr(), 9, null()),
            mmo_result::NullArgument
        );
        let long_token = CString::new("x".repeat(5000)).unwrap();
        assert_eq!(
            mmo_client_connect(client, host.as_ptr(), 9, long_token.as_ptr()),
            mmo_result::InvalidArgument
        );
        assert_eq!(state_of(client), mmo_connection_state::Idle);
        // Port 9 (discard) on loopback: nobody answers QUIC there.
        assert_eq!(
            mmo_client_connect(client, host.as_ptr(), 9, token.as_ptr()),
            mmo_result::Ok
        );
        assert_eq!(
            mmo_client_connect(client, host.as_ptr(), 9, token.as_ptr()),
            mmo_result::InvalidState
        );
        assert!(last_error().contains("already called"), "{}", last_error());
        assert_eq!(
            mmo_client_send_input(client, &input),
            mmo_result::InvalidState
        );
        // An invalid input is refused as an argument error whatever the state.
        let bad = mmo_move_input {
            forward_q: -128,
            ..input
        };
        assert_eq!(
            mmo_client_send_input(client, &bad),
            mmo_result::InvalidArgument
        );
        // Leaving while connecting ends at once with CLIENT_QUIT.
        assert_eq!(mmo_client_disconnect(client), mmo_result::Ok);
        let (event, text) = poll(client).expect("the disconnected event");
        assert_eq!(event.kind, mmo_client_event_kind::Disconnected);
        assert_eq!(event.disconnect_reason, mmo_disconnect_reason::ClientQuit);
        assert!(text.contains("before the connection was made"), "{text}");
        assert_eq!(state_of(client), mmo_connection_state::Closed);
        assert!(poll(client).is_none());
        assert_eq!(mmo_client_disconnect(client), mmo_result::Ok, "idempotent");
        mmo_client_free(client);
    }
}

#[test]
#[cfg_attr(miri, ignore = "starts a tokio runtime (threads, epoll)")]
fn a_panic_inside_a_client_export_is_caught() {
    let client = new_client();
    let mut event = mmo_client_event::default();
    let mut has = 0u8;
    panic_next_call();
    // SAFETY: a live handle and live locals.
    let r = unsafe { mmo_client_poll_event(client, &mut event, &mut has) };
    assert_eq!(r, mmo_result::Panic);
    assert!(last_error().contains("forced by test hook"));
    // SAFETY: a live handle, freed once.
    unsafe { mmo_client_free(client) };
}

/// A real server on 127.0.0.1 with one token, on its own runtime.
struct TestServer {
    runtime: tokio::runtime::Runtime,
    server: Option<mmo_net::server::Server>,
}

impl TestServer {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let cert = mmo_net::tls::ServerCert::self_signed(&["localhost"]).unwrap();
        let server = runtime
            .block_on(mmo_net::server::Server::start(
                mmo_net::server::ServerConfig::new(
                    "127.0.0.1:0".parse().unwrap(),
                    mmo_core::zone::ZoneConfig::default(),
                    cert,
                    Arc::new(mmo_net::auth::StaticTokens::new().with("good-token", "alice")),
                ),
            ))
            .unwrap();
        TestServer {
            runtime,
            server: Some(server),
        }
    }

    fn server(&self) -> &mmo_net::server::Server {
        self.server.as_ref().unwrap()
    }

    fn logged_in_players(&self) -> usize {
        self.runtime
            .block_on(self.server().inspect(|zone, ids| {
                ids.iter()
                    .filter(|id| zone.connection(**id).and_then(|c| c.entity()).is_some())
                    .count()
            }))
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime
                .block_on(server.shutdown(Duration::from_millis(200)));
        }
    }
}

fn client_for(server: &TestServer, pin_hex: &str) -> *mut mmo_client {
    let pin = CString::new(pin_hex).unwrap();
    let name = c"localhost";
    let config = mmo_client_config {
        server_fingerprint_hex: pin.as_ptr(),
        server_name: name.as_ptr(),
        ..default_config()
    };
    let (r, client) = try_new(&config);
    assert_eq!(r, mmo_result::Ok, "{}", last_error());
    let _ = server;
    client
}

/// Polls every 5 ms until `want` accepts an event or `timeout` passes; every event seen is
/// returned, in order.
fn poll_until(
    client: *mut mmo_client,
    timeout: Duration,
    want: impl Fn(&mmo_client_event) -> bool,
) -> Vec<(mmo_client_event, String)> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        while let Some(e) = poll(client) {
            let done = want(&e.0);
            seen.push(e);
            if done {
                return seen;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no wanted event within {timeout:?}; saw {seen:?}");
}

fn connect(client: *mut mmo_client, port: u16, token: &CStr) {
    // SAFETY: a live handle and C string literals.
    let r = unsafe { mmo_client_connect(client, c"127.0.0.1".as_ptr(), port, token.as_ptr()) };
    assert_eq!(r, mmo_result::Ok, "{}", last_error());
}

#[test]
#[cfg_attr(miri, ignore = "real sockets and threads")]
fn a_session_through_the_c_abi_logs_in_walks_and_leaves_cleanly() {
    let server = TestServer::start();
    let port = server.server().local_addr().port();
    let client = client_for(&server, &server.server().fingerprint().to_hex());
    connect(client, port, c"good-token");
    let seen = poll_until(client, Duration::from_secs(10), |e| {
        e.kind != mmo_client_event_kind::None
            && matches!(
                e.kind,
                mmo_client_event_kind::Welcome | mmo_client_event_kind::Disconnected
            )
    });
    let (welcome, _) = seen.last().unwrap();
    assert_eq!(welcome.kind, mmo_client_event_kind::Welcome, "{seen:?}");
    assert_eq!(state_of(client), mmo_connection_state::Active);
    assert_eq!(server.logged_in_players(), 1);

    let mut start = mmo_local_state::default();
    // SAFETY: a live handle and live locals throughout.
    unsafe {
        assert_eq!(mmo_client_local_state(client, &mut start), mmo_result::Ok);
        assert_eq!(start.entity_id, welcome.entity_id);
        assert_eq!(start.predicted.position_m, welcome.spawn.position_m);
        let mut walk = mmo_move_input::default();
        assert_eq!(
            crate::types::mmo_move_input_from_controls(1.0, 0.0, 0.0, 0, &mut walk),
            mmo_result::Ok
        );
        let mut corrections = Vec::new();
        for _ in 0..45 {
            while let Some((e, _)) = poll(client) {
                if e.kind == mmo_client_event_kind::Correction {
                    corrections.push(e.position_error_m);
                }
            }
            assert_eq!(
                mmo_client_send_input(client, &walk),
                mmo_result::Ok,
                "{}",
                last_error()
            );
            assert_eq!(
                mmo_client_advance_visual(client, 1.0 / 30.0),
                mmo_result::Ok
            );
            std::thread::sleep(Duration::from_millis(33));
        }
        let mut now = mmo_local_state::default();
        assert_eq!(mmo_client_local_state(client, &mut now), mmo_result::Ok);
        let moved = now.predicted.position_m.x - start.predicted.position_m.x;
        assert!(moved > 3.0, "walked {moved} m forward in 1.5 s");
        assert!(
            corrections.iter().all(|e| *e < 0.5),
            "large corrections: {corrections:?}"
        );
        let mut stats = mmo_connection_stats::default();
        assert_eq!(mmo_client_stats(client, &mut stats), mmo_result::Ok);
        assert!(stats.snapshots_received > 10, "{stats:?}");
        assert!(
            stats.snapshots_expected >= stats.snapshots_applied,
            "{stats:?}"
        );
        assert!(stats.bytes_in > 0 && stats.bytes_out > 0 && stats.datagrams_out >= 45);
        let mut count = 99usize;
        assert_eq!(mmo_client_entity_count(client, &mut count), mmo_result::Ok);
        assert_eq!(count, 0, "alone in the zone: nobody else in view");
        let mut sample = mmo_interp_output::default();
        assert_eq!(
            mmo_client_sample_entity(client, 12345, &mut sample),
            mmo_result::NotFound
        );

        assert_eq!(mmo_client_disconnect(client), mmo_result::Ok);
        let seen = poll_until(client, Duration::from_secs(5), |e| {
            e.kind == mmo_client_event_kind::Disconnected
        });
        let (bye, text) = seen.last().unwrap();
        assert_eq!(
            bye.disconnect_reason,
            mmo_disconnect_reason::ClientQuit,
            "{text}"
        );
        assert_eq!(state_of(client), mmo_connection_state::Closed);
        // The stats stay readable after the end.
        let mut after = mmo_connection_stats::default();
        assert_eq!(mmo_client_stats(client, &mut after), mmo_result::Ok);
        assert!(after.snapshots_received >= stats.snapshots_received);
        mmo_client_free(client);
    }
    // The server saw the player leave.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.logged_in_players() != 0 {
        assert!(Instant::now() < deadline, "the server still has the player");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets and threads")]
fn freeing_a_connected_handle_tells_the_server_at_once() {
    let server = TestServer::start();
    let port = server.server().local_addr().port();
    let client = client_for(&server, &server.server().fingerprint().to_hex());
    connect(client, port, c"good-token");
    poll_until(client, Duration::from_secs(10), |e| {
        e.kind == mmo_client_event_kind::Welcome
    });
    assert_eq!(server.logged_in_players(), 1);
    let freed = Instant::now();
    // SAFETY: a live handle, not used again.
    unsafe { mmo_client_free(client) };
    let free_took = freed.elapsed();
    assert!(
        free_took < Duration::from_millis(500),
        "free blocked the caller for {free_took:?}"
    );
    // Well inside the server's 10 s idle timeout: the close went out on free.
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.logged_in_players() != 0 {
        assert!(
            Instant::now() < deadline,
            "the server still has the player 3 s after free"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets and threads")]
fn a_wrong_pin_or_token_ends_with_a_clear_disconnected_event() {
    let server = TestServer::start();
    let port = server.server().local_addr().port();

    let wrong_pin = client_for(&server, SOME_PIN);
    connect(wrong_pin, port, c"good-token");
    let seen = poll_until(wrong_pin, Duration::from_secs(15), |e| {
        e.kind == mmo_client_event_kind::Disconnected
    });
    let (event, text) = seen.last().unwrap();
    assert_eq!(
        event.disconnect_reason,
        mmo_disconnect_reason::ConnectFailed
    );
    assert!(text.contains("certificate"), "{text}");
    assert_eq!(seen.len(), 1, "no welcome before: {seen:?}");

    let bad_token = client_for(&server, &server.server().fingerprint().to_hex());
    connect(bad_token, port, c"nobody");
    let seen = poll_until(bad_token, Duration::from_secs(10), |e| {
        e.kind == mmo_client_event_kind::Disconnected
    });
    let (event, text) = seen.last().unwrap();
    assert_eq!(
        event.disconnect_reason,
        mmo_disconnect_reason::BadToken,
        "{text}"
    );
    assert!(text.contains("unknown token"), "{text}");
    // SAFETY: live handles, freed once.
    unsafe {
        mmo_client_free(wrong_pin);
        mmo_client_free(bad_token);
    }
    assert_eq!(server.logged_in_players(), 0);
}

#[test]
fn c_disconnect_reasons_carry_the_protocol_codes() {
    for reason in mmo_core::control::DisconnectReason::ALL {
        assert_eq!(
            mmo_disconnect_reason::from(reason) as u32,
            u32::from(reason.code()),
            "{}",
            reason.as_str()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Gameplay (`gameplay.rs`)
// ---------------------------------------------------------------------------------------

use super::gameplay::*;

fn entity_target(entity_id: u32) -> mmo_ability_target {
    mmo_ability_target {
        kind: mmo_target_kind::Entity as u32,
        entity_id,
        ..Default::default()
    }
}

fn move_op(from: u32, to: u32) -> mmo_inventory_op {
    mmo_inventory_op {
        kind: mmo_inventory_op_kind::Move as u32,
        slot: from,
        to_slot: to,
        ..Default::default()
    }
}

#[test]
fn null_client_is_reported_by_every_gameplay_export() {
    let target = entity_target(1);
    let op = move_op(0, 1);
    let mut request = 0u32;
    let mut pools = [mmo_pool_value::default(); 4];
    let mut n = 0usize;
    let mut flag = 0u8;
    let (mut a, mut b) = (0u32, 0u32);
    let mut slot = mmo_item_slot::default();
    let mut hash = [0u8; MMO_CONTENT_HASH_LEN_BYTES];
    // SAFETY: the client is NULL (what is tested); the other pointers are live locals.
    unsafe {
        let codes = [
            mmo_client_use_ability(null_mut(), 0, &target, &mut request),
            mmo_client_cancel_cast(null_mut()),
            mmo_client_inventory_op(null_mut(), &op, &mut request),
            mmo_client_resources(null(), pools.as_mut_ptr(), 4, &mut n, &mut flag, &mut a),
            mmo_client_ability_cooldown(null(), 0, &mut a, &mut b),
            mmo_client_entity_health(null(), 1, &mut flag),
            mmo_client_inventory_slot_count(null(), &mut n),
            mmo_client_inventory_slot(null(), 0, &mut slot),
            mmo_client_equipment_slot(null(), 0, &mut slot),
            mmo_client_item_properties(null(), 0, 0, null_mut(), 0, &mut n),
            mmo_client_content_hash(null(), hash.as_mut_ptr()),
        ];
        for (i, code) in codes.into_iter().enumerate() {
            assert_eq!(code, mmo_result::NullArgument, "export #{i}");
            assert_eq!(last_error(), "`client` is NULL", "export #{i}");
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "starts a tokio runtime (threads, epoll)")]
fn gameplay_exports_check_their_arguments_and_need_a_connected_client() {
    let client = new_client();
    let target = entity_target(1);
    let op = move_op(0, 1);
    let mut request = 77u32;
    let mut pools = [mmo_pool_value::default(); 4];
    let mut n = 0usize;
    let mut flag = 0u8;
    let (mut a, mut b) = (0u32, 0u32);
    let mut slot = mmo_item_slot::default();
    let mut hash = [0u8; MMO_CONTENT_HASH_LEN_BYTES];
    // SAFETY: a live handle; the other pointers are live locals or deliberately NULL.
    unsafe {
        // NULL outputs and inputs are named.
        // NULL outputs and inputs are named, each checked right after its call.
        let named = |code: mmo_result, text: &str| {
            assert_eq!(code, mmo_result::NullArgument, "{text}");
            assert_eq!(last_error(), text);
        };
        named(
            mmo_client_use_ability(client, 0, null(), &mut request),
            "`target` is NULL",
        );
        named(
            mmo_client_use_ability(client, 0, &target, null_mut()),
            "`out_request` is NULL",
        );
        named(
            mmo_client_inventory_op(client, null(), &mut request),
            "`op` is NULL",
        );
        named(
            mmo_client_inventory_op(client, &op, null_mut()),
            "`out_request` is NULL",
        );
        named(
            mmo_client_resources(client, null_mut(), 4, &mut n, &mut flag, &mut a),
            "`out_pools` is NULL",
        );
        named(
            mmo_client_resources(client, pools.as_mut_ptr(), 4, null_mut(), &mut flag, &mut a),
            "`out_count` is NULL",
        );
        named(
            mmo_client_resources(client, pools.as_mut_ptr(), 4, &mut n, null_mut(), &mut a),
            "`out_dead` is NULL",
        );
        named(
            mmo_client_resources(client, pools.as_mut_ptr(), 4, &mut n, &mut flag, null_mut()),
            "`out_respawn_in_ms` is NULL",
        );
        named(
            mmo_client_ability_cooldown(client, 0, null_mut(), &mut b),
            "`out_global_ms` is NULL",
        );
        named(
            mmo_client_ability_cooldown(client, 0, &mut a, null_mut()),
            "`out_own_ms` is NULL",
        );
        named(
            mmo_client_entity_health(client, 1, null_mut()),
            "`out_percent` is NULL",
        );
        named(
            mmo_client_inventory_slot_count(client, null_mut()),
            "`out` is NULL",
        );
        named(
            mmo_client_inventory_slot(client, 0, null_mut()),
            "`out` is NULL",
        );
        named(
            mmo_client_equipment_slot(client, 0, null_mut()),
            "`out` is NULL",
        );
        named(
            mmo_client_item_properties(client, 0, 0, null_mut(), 0, null_mut()),
            "`out_len` is NULL",
        );
        named(
            mmo_client_item_properties(client, 0, 0, null_mut(), 8, &mut n),
            "`buf` is NULL",
        );
        named(mmo_client_content_hash(client, null_mut()), "`out` is NULL");
        assert_eq!(request, 77, "nothing written on failure");

        // Enum values are checked before the state.
        let bad_target = mmo_ability_target { kind: 4, ..target };
        assert_eq!(
            mmo_client_use_ability(client, 0, &bad_target, &mut request),
            mmo_result::InvalidEnum
        );
        assert!(last_error().contains("target.kind"), "{}", last_error());
        let nan_point = mmo_ability_target {
            kind: mmo_target_kind::Direction as u32,
            point_m: mmo_vec3 {
                x: f32::INFINITY,
                y: 0.0,
                z: 0.0,
            },
            ..target
        };
        assert_eq!(
            mmo_client_use_ability(client, 0, &nan_point, &mut request),
            mmo_result::InvalidArgument
        );
        assert!(last_error().contains("target.point_m"), "{}", last_error());
        let bad_op = mmo_inventory_op { kind: 99, ..op };
        assert_eq!(
            mmo_client_inventory_op(client, &bad_op, &mut request),
            mmo_result::InvalidEnum
        );
        assert!(last_error().contains("op.kind"), "{}", last_error());
        let bad_unequip = mmo_inventory_op {
            kind: mmo_inventory_op_kind::Unequip as u32,
            equip_slot: MMO_EQUIP_SLOT_COUNT,
            ..op
        };
        assert_eq!(
            mmo_client_inventory_op(client, &bad_unequip, &mut request),
            mmo_result::InvalidEnum
        );
        assert_eq!(
            mmo_client_equipment_slot(client, MMO_EQUIP_SLOT_COUNT, &mut slot),
            mmo_result::InvalidEnum
        );
        assert_eq!(
            mmo_client_item_properties(client, 2, 0, null_mut(), 0, &mut n),
            mmo_result::InvalidEnum
        );
        assert!(last_error().contains("container"), "{}", last_error());
        assert_eq!(request, 77, "nothing written on failure");

        // Idle: every gameplay call is a state error naming the state.
        let idle = |code: mmo_result, what: &str| {
            assert_eq!(code, mmo_result::InvalidState, "{what}");
            assert!(last_error().contains("idle"), "{what}: {}", last_error());
        };
        idle(
            mmo_client_use_ability(client, 0, &target, &mut request),
            "mmo_client_use_ability",
        );
        idle(mmo_client_cancel_cast(client), "mmo_client_cancel_cast");
        idle(
            mmo_client_inventory_op(client, &op, &mut request),
            "mmo_client_inventory_op",
        );
        idle(
            mmo_client_resources(client, pools.as_mut_ptr(), 4, &mut n, &mut flag, &mut a),
            "mmo_client_resources",
        );
        idle(
            mmo_client_ability_cooldown(client, 0, &mut a, &mut b),
            "mmo_client_ability_cooldown",
        );
        idle(
            mmo_client_entity_health(client, 1, &mut flag),
            "mmo_client_entity_health",
        );
        idle(
            mmo_client_inventory_slot_count(client, &mut n),
            "mmo_client_inventory_slot_count",
        );
        idle(
            mmo_client_inventory_slot(client, 0, &mut slot),
            "mmo_client_inventory_slot",
        );
        idle(
            mmo_client_equipment_slot(client, 0, &mut slot),
            "mmo_client_equipment_slot",
        );
        idle(
            mmo_client_item_properties(client, 0, 0, null_mut(), 0, &mut n),
            "mmo_client_item_properties",
        );
        idle(
            mmo_client_content_hash(client, hash.as_mut_ptr()),
            "mmo_client_content_hash",
        );
        // Connecting (nobody answers on port 9): still state errors.
        connect(client, 9, c"t");
        assert_eq!(
            mmo_client_use_ability(client, 0, &target, &mut request),
            mmo_result::InvalidState
        );
        assert!(last_error().contains("connecting"), "{}", last_error());
        assert_eq!(mmo_client_cancel_cast(client), mmo_result::InvalidState);
        assert_eq!(
            mmo_client_inventory_op(client, &op, &mut request),
            mmo_result::InvalidState
        );
        assert_eq!(
            mmo_client_content_hash(client, hash.as_mut_ptr()),
            mmo_result::InvalidState
        );
        assert_eq!(request, 77);
        assert_eq!(hash, [0; MMO_CONTENT_HASH_LEN_BYTES]);
        mmo_client_free(client);
    }
}

/// Connects `client` with `token` and polls until the welcome, the inventory and the
/// resources arrived; returns the welcome and the ids of entities that came into view.
fn log_in(client: *mut mmo_client, port: u16, token: &CStr) -> (mmo_client_event, Vec<u32>) {
    connect(client, port, token);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut welcome, mut inventory, mut resources) = (None, false, false);
    let mut spawned = Vec::new();
    while welcome.is_none() || !inventory || !resources {
        assert!(
            Instant::now() < deadline,
            "no welcome, inventory and resources in 10 s"
        );
        while let Some((e, text)) = poll(client) {
            match e.kind {
                mmo_client_event_kind::Welcome => welcome = Some(e),
                mmo_client_event_kind::InventoryChanged => inventory = true,
                mmo_client_event_kind::ResourcesChanged => resources = true,
                mmo_client_event_kind::EntitySpawned => spawned.push(e.entity_id),
                mmo_client_event_kind::Disconnected => panic!("disconnected: {text}"),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (welcome.unwrap(), spawned)
}

/// A server with two accounts (`alice`, `bob`).
fn two_player_server() -> TestServer {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cert = mmo_net::tls::ServerCert::self_signed(&["localhost"]).unwrap();
    let tokens = mmo_net::auth::StaticTokens::new()
        .with("good-token", "alice")
        .with("bob-token", "bob");
    let server = runtime
        .block_on(mmo_net::server::Server::start(
            mmo_net::server::ServerConfig::new(
                "127.0.0.1:0".parse().unwrap(),
                mmo_core::zone::ZoneConfig::default(),
                cert,
                Arc::new(tokens),
            ),
        ))
        .unwrap();
    TestServer {
        runtime,
        server: Some(server),
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets and threads")]
fn gameplay_through_the_c_abi_reads_state_and_gets_answers() {
    let server = two_player_server();
    let port = server.server().local_addr().port();
    let pin = server.server().fingerprint().to_hex();
    let client = client_for(&server, &pin);
    let (welcome, _) = log_in(client, port, c"good-token");
    // SAFETY: a live handle and live locals throughout.
    unsafe {
        // Content hash: the default content's.
        let mut hash = [0u8; MMO_CONTENT_HASH_LEN_BYTES];
        assert_eq!(
            mmo_client_content_hash(client, hash.as_mut_ptr()),
            mmo_result::Ok
        );
        let content = mmo_core::gameplay::content::Content::default_content().unwrap();
        assert_eq!(hash, content.hash());

        // Resources: a size query, then the warrior's pools at full.
        let (mut n, mut dead, mut respawn) = (0usize, 9u8, 9u32);
        assert_eq!(
            mmo_client_resources(client, null_mut(), 0, &mut n, &mut dead, &mut respawn),
            mmo_result::BufferTooSmall
        );
        assert_eq!(n, 3, "health, mana, stamina");
        assert_eq!(
            (dead, respawn),
            (9, 9),
            "only the count is written on a small buffer"
        );
        let mut pools = [mmo_pool_value::default(); 3];
        assert_eq!(
            mmo_client_resources(
                client,
                pools.as_mut_ptr(),
                3,
                &mut n,
                &mut dead,
                &mut respawn
            ),
            mmo_result::Ok
        );
        assert_eq!((dead, respawn), (0, 0));
        assert_eq!(pools[0].pool_id, 0);
        assert!(
            pools[0].max > 0 && pools[0].current == pools[0].max,
            "{pools:?}"
        );

        // Inventory: 24 slots, the starting kit at the front, nothing worn.
        let mut count = 0usize;
        assert_eq!(
            mmo_client_inventory_slot_count(client, &mut count),
            mmo_result::Ok
        );
        assert_eq!(count, 24);
        let mut first = mmo_item_slot::default();
        assert_eq!(
            mmo_client_inventory_slot(client, 0, &mut first),
            mmo_result::Ok
        );
        assert_eq!(first.present, 1);
        assert!(first.quantity >= 1);
        let mut last = mmo_item_slot {
            present: 9,
            ..Default::default()
        };
        assert_eq!(
            mmo_client_inventory_slot(client, 23, &mut last),
            mmo_result::Ok
        );
        assert_eq!(last, mmo_item_slot::default(), "slot 23 starts empty");
        assert_eq!(
            mmo_client_inventory_slot(client, 24, &mut last),
            mmo_result::InvalidArgument
        );
        assert!(last_error().contains("24 slots"), "{}", last_error());
        let mut worn = mmo_item_slot {
            present: 9,
            ..Default::default()
        };
        assert_eq!(
            mmo_client_equipment_slot(client, mmo_equip_slot::MainHand as u32, &mut worn),
            mmo_result::Ok
        );
        assert_eq!(worn.present, 0);
        let mut len = 99usize;
        let mut buf = [0 as c_char; 64];
        assert_eq!(
            mmo_client_item_properties(client, 0, 23, buf.as_mut_ptr(), buf.len(), &mut len),
            mmo_result::Ok
        );
        assert_eq!(len, 0, "an empty slot has no properties");
        assert_eq!(
            mmo_client_item_properties(client, 0, 24, buf.as_mut_ptr(), buf.len(), &mut len),
            mmo_result::InvalidArgument
        );

        // Cooldowns before any answer are zero.
        let (mut global, mut own) = (9u32, 9u32);
        assert_eq!(
            mmo_client_ability_cooldown(client, 0, &mut global, &mut own),
            mmo_result::Ok
        );
        assert_eq!((global, own), (0, 0));

        // Move slot 0 to 23: accepted, the inventory changed before the answer.
        let mut request = 0u32;
        assert_eq!(
            mmo_client_inventory_op(client, &move_op(0, 23), &mut request),
            mmo_result::Ok
        );
        assert!(request > 0);
        let seen = poll_until(client, Duration::from_secs(5), |e| {
            e.kind == mmo_client_event_kind::InventoryResult
        });
        let (result, text) = seen.last().unwrap();
        assert_eq!(result.request, request);
        assert_eq!(result.accepted, 1, "{text}");
        assert!(text.is_empty());
        assert!(
            seen.iter()
                .any(|(e, _)| e.kind == mmo_client_event_kind::InventoryChanged),
            "{seen:?}"
        );
        let mut moved = mmo_item_slot::default();
        assert_eq!(
            mmo_client_inventory_slot(client, 23, &mut moved),
            mmo_result::Ok
        );
        assert_eq!(moved, first);
        assert_eq!(
            mmo_client_inventory_slot(client, 0, &mut moved),
            mmo_result::Ok
        );
        assert_eq!(moved.present, 0);

        // A bad slot is refused by the server with its kind at the start of the text.
        assert_eq!(
            mmo_client_inventory_op(client, &move_op(999, 1), &mut request),
            mmo_result::Ok
        );
        let seen = poll_until(client, Duration::from_secs(5), |e| {
            e.kind == mmo_client_event_kind::InventoryResult
        });
        let (refused, text) = seen.last().unwrap();
        assert_eq!(refused.request, request);
        assert_eq!(refused.accepted, 0);
        assert_eq!(
            &text[..refused.refusal_kind_len_bytes],
            "inventory_bad_slot",
            "{text}"
        );
        assert!(text.starts_with("inventory_bad_slot: "), "{text}");

        // Strike (ability 0) on an entity that does not exist: refused, cooldowns reported.
        assert_eq!(
            mmo_client_use_ability(
                client,
                0,
                &entity_target(welcome.entity_id + 1000),
                &mut request
            ),
            mmo_result::Ok
        );
        let seen = poll_until(client, Duration::from_secs(5), |e| {
            e.kind == mmo_client_event_kind::AbilityResult
        });
        let (answer, text) = seen.last().unwrap();
        assert_eq!(answer.request, request);
        assert_eq!(answer.ability_id, 0);
        assert_eq!(answer.accepted, 0);
        assert!(answer.refusal_kind_len_bytes > 0, "{text}");
        assert!(
            text[..answer.refusal_kind_len_bytes].starts_with("ability_"),
            "{text}"
        );
        // Cancelling when nothing is cast is accepted (the server ignores it).
        assert_eq!(mmo_client_cancel_cast(client), mmo_result::Ok);
        mmo_client_free(client);
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets and threads")]
fn a_strike_between_two_c_clients_reports_combat_to_both() {
    let server = two_player_server();
    let port = server.server().local_addr().port();
    let pin = server.server().fingerprint().to_hex();
    let a = client_for(&server, &pin);
    let b = client_for(&server, &pin);
    let (welcome_a, _) = log_in(a, port, c"good-token");
    let (welcome_b, _) = log_in(b, port, c"bob-token");
    // A sees B come into view.
    let id_b = welcome_b.entity_id;
    let mut count = 0usize;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut ids = [0u32; 8];
        // SAFETY: a live handle and live locals.
        let r = unsafe { mmo_client_entity_ids(a, ids.as_mut_ptr(), ids.len(), &mut count) };
        assert_eq!(r, mmo_result::Ok);
        if ids[..count].contains(&id_b) {
            break;
        }
        assert!(Instant::now() < deadline, "A never saw B");
        while poll(a).is_some() {}
        while poll(b).is_some() {}
        std::thread::sleep(Duration::from_millis(5));
    }
    // Let A's interpolation buffer of B fill so the server can rewind B.
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        while poll(a).is_some() {}
        while poll(b).is_some() {}
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut request = 0u32;
    // SAFETY: a live handle and live locals.
    let r = unsafe { mmo_client_use_ability(a, 0, &entity_target(id_b), &mut request) };
    assert_eq!(r, mmo_result::Ok, "{}", last_error());
    let is_hit = move |e: &mmo_client_event| {
        e.kind == mmo_client_event_kind::Combat
            && e.combat_kind == mmo_combat_kind::Damage
            && e.target_entity_id == id_b
    };
    let seen = poll_until(a, Duration::from_secs(5), is_hit);
    let answer = seen
        .iter()
        .find(|(e, _)| e.kind == mmo_client_event_kind::AbilityResult)
        .unwrap_or_else(|| panic!("no ability result before the hit: {seen:?}"));
    assert_eq!(answer.0.accepted, 1, "{}", answer.1);
    assert_eq!(answer.0.request, request);
    let (hit, _) = seen.last().unwrap();
    assert_eq!(hit.source_entity_id, welcome_a.entity_id);
    assert_eq!(hit.entity_id, id_b);
    assert_eq!((hit.has_ability, hit.ability_id), (1, 0));
    assert_eq!(hit.amount, 12);
    assert_eq!(hit.target_health + 12, hit.target_health_max);
    let seen_b = poll_until(b, Duration::from_secs(5), is_hit);
    assert_eq!(seen_b.last().unwrap().0.target_health, hit.target_health);
    // B's pools show the hit.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut pools = [mmo_pool_value::default(); 3];
        let (mut n, mut dead, mut respawn) = (0usize, 0u8, 0u32);
        // SAFETY: a live handle and live locals.
        let r = unsafe {
            mmo_client_resources(b, pools.as_mut_ptr(), 3, &mut n, &mut dead, &mut respawn)
        };
        assert_eq!(r, mmo_result::Ok);
        if pools[0].current == hit.target_health {
            break;
        }
        assert!(Instant::now() < deadline, "B's health stayed {pools:?}");
        while poll(b).is_some() {}
        std::thread::sleep(Duration::from_millis(5));
    }
    // A sees B's health drop in B's replicated state (the flags byte of its records).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut percent = 0u8;
        // SAFETY: a live handle and a live local.
        let r = unsafe { mmo_client_entity_health(a, hit.target_entity_id, &mut percent) };
        if r == mmo_result::Ok && percent < 100 {
            let expected = (hit.target_health * 100).div_ceil(hit.target_health_max);
            assert_eq!(u32::from(percent), expected, "{hit:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A never saw B's health drop: {r:?}"
        );
        while poll(a).is_some() {}
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut percent = 0u8;
    // SAFETY: a live handle and a live local.
    let r = unsafe { mmo_client_entity_health(a, u32::MAX - 1, &mut percent) };
    assert_eq!(r, mmo_result::NotFound);
    // The cooldown A reads counts down from the answer.
    let (mut global, mut own) = (0u32, 0u32);
    // SAFETY: a live handle and live locals.
    let r = unsafe { mmo_client_ability_cooldown(a, 0, &mut global, &mut own) };
    assert_eq!(r, mmo_result::Ok);
    assert!(global <= answer.0.global_cooldown_ms, "{global}");
    // SAFETY: live handles, freed once.
    unsafe {
        mmo_client_free(a);
        mmo_client_free(b);
    }
}

/// A fleet in-process over the NATS of `ci/services.sh`: one zone process, two gateways.
/// The first gateway's runtime is stopped at once (nothing of it runs or sends again, as
/// when its process is killed): the C client notices the silence and resumes through the
/// second (`WIRE_FORMAT.md` 8.10).
#[test]
#[cfg_attr(miri, ignore = "starts tokio runtimes and needs NATS")]
fn a_c_client_resumes_its_session_through_another_gateway_when_its_own_falls_silent() {
    let Some(nats_url) = mmo_testkit::services::service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cert = mmo_net::tls::ServerCert::self_signed(&["localhost"]).unwrap();
    let pin_hex = cert.fingerprint().to_hex();
    let config = mmo_net::server::ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        mmo_core::zone::ZoneConfig::default(),
        cert,
        Arc::new(mmo_net::auth::StaticTokens::new().with("good-token", "alice")),
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let relay = mmo_net::relay::RelaySettings {
        nats_url,
        world: format!("c-resume-{nanos:08x}"),
        redis_url: None,
        nats_security: None,
        zones: None,
        take_free_zone: false,
        shard_cap: None,
        shard_merge_after: Duration::from_secs(60),
    };
    let (zones, gateway_2) = runtime.block_on(async {
        let zones = mmo_net::relay::ZoneProcess::start(&config, relay.clone())
            .await
            .unwrap();
        let gateway_2 = mmo_net::relay::GatewayProcess::start(&config, relay.clone())
            .await
            .unwrap();
        (zones, gateway_2)
    });
    // Gateway 1 on a runtime of its own, stopped abruptly below: no task of it runs again
    // and nothing more leaves its socket, as when its process is killed.
    let gateway_1_runtime = tokio::runtime::Runtime::new().unwrap();
    let gateway_1 = gateway_1_runtime
        .block_on(mmo_net::relay::GatewayProcess::start(&config, relay))
        .unwrap();
    let pin = CString::new(pin_hex).unwrap();
    let config = mmo_client_config {
        server_fingerprint_hex: pin.as_ptr(),
        server_name: c"localhost".as_ptr(),
        ..default_config()
    };
    let (r, client) = try_new(&config);
    assert_eq!(r, mmo_result::Ok, "{}", last_error());
    connect(client, gateway_1.local_addr().port(), c"good-token");
    poll_until(client, Duration::from_secs(10), |e| {
        e.kind == mmo_client_event_kind::Welcome
    });
    let input = mmo_move_input::default();
    let applied = |client: *mut mmo_client| {
        let mut stats = mmo_connection_stats::default();
        // SAFETY: a live handle and a live local.
        let r = unsafe { mmo_client_stats(client, &mut stats) };
        assert_eq!(r, mmo_result::Ok);
        stats.snapshots_applied
    };
    // Plays a tick: events (none may end the session), an input.
    let play = |client: *mut mmo_client| {
        while let Some((e, text)) = poll(client) {
            assert!(
                !matches!(
                    e.kind,
                    mmo_client_event_kind::Disconnected | mmo_client_event_kind::Welcome
                ),
                "the same session goes on: {e:?} {text}"
            );
        }
        // SAFETY: a live handle and a live local.
        let r = unsafe { mmo_client_send_input(client, &input) };
        assert_eq!(r, mmo_result::Ok, "{}", last_error());
        std::thread::sleep(Duration::from_millis(33));
    };
    for _ in 0..30 {
        play(client);
    }

    // Gateway 1 dies; its connections go silent.
    gateway_1_runtime.shutdown_background();
    drop(gateway_1);
    let silent_since = Instant::now();
    let mut silent_ms = 0u64;
    while silent_ms < 1_000 {
        play(client);
        // SAFETY: a live handle and a live local.
        let r = unsafe { mmo_client_server_silent_ms(client, &mut silent_ms) };
        assert_eq!(r, mmo_result::Ok);
        assert!(
            silent_since.elapsed() < Duration::from_secs(5),
            "silent within 5 s"
        );
    }
    let port = gateway_2.local_addr().port();
    // SAFETY: a live handle and a C string literal.
    let r = unsafe { mmo_client_resume(client, c"127.0.0.1".as_ptr(), port) };
    assert_eq!(r, mmo_result::Ok, "{}", last_error());
    // SAFETY: as above.
    let again = unsafe { mmo_client_resume(client, c"127.0.0.1".as_ptr(), port) };
    assert_eq!(again, mmo_result::InvalidState, "one resume at a time");
    let seen = poll_until(client, Duration::from_secs(5), |e| {
        matches!(
            e.kind,
            mmo_client_event_kind::Resumed | mmo_client_event_kind::Disconnected
        )
    });
    let (last, text) = seen.last().expect("an event");
    assert_eq!(last.kind, mmo_client_event_kind::Resumed, "{text}");
    let before = applied(client);
    for _ in 0..30 {
        play(client);
    }
    assert!(
        applied(client) > before + 10,
        "snapshots through gateway 2: {before} then {}",
        applied(client)
    );
    // SAFETY: a live handle, freed once.
    unsafe {
        assert_eq!(mmo_client_disconnect(client), mmo_result::Ok);
        poll_until(client, Duration::from_secs(5), |e| {
            e.kind == mmo_client_event_kind::Disconnected
        });
        mmo_client_free(client);
    }
    runtime.block_on(async {
        gateway_2.shutdown(Duration::from_millis(200)).await;
        zones.shutdown(Duration::from_millis(200)).await;
    });
}
