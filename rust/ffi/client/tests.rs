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
