//! Tests of the C ABI through the exported `extern "C"` functions themselves: the boundary
//! rules (NULL, enums, panics, `_free(NULL)`, outputs untouched on failure, messages) and a
//! round trip through every handle.

use std::ffi::{CStr, c_char, c_void};
use std::ptr::{null, null_mut};

use crate::boundary::test_hooks::panic_next_call;
use crate::interpolator::*;
use crate::log::*;
use crate::predictor::*;
use crate::replicator::*;
use crate::result::*;
use crate::snapshot_reader::*;
use crate::snapshot_writer::*;
use crate::types::*;
use crate::validation::*;
use crate::{MMO_ABI_VERSION, mmo_abi_version};

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

fn defaults() -> (mmo_movement_config, mmo_prediction_config) {
    let mut m = std::mem::MaybeUninit::uninit();
    let mut p = std::mem::MaybeUninit::uninit();
    // SAFETY: out pointers to live locals; written on success, which is asserted.
    unsafe {
        assert_eq!(mmo_movement_config_default(m.as_mut_ptr()), mmo_result::Ok);
        assert_eq!(
            mmo_prediction_config_default(p.as_mut_ptr()),
            mmo_result::Ok
        );
        (m.assume_init(), p.assume_init())
    }
}

fn new_predictor() -> *mut mmo_predictor {
    let (m, p) = defaults();
    let initial = mmo_character_state {
        on_ground: 1,
        ..Default::default()
    };
    let mut out = null_mut();
    // SAFETY: pointers to live locals; no blockers.
    let r = unsafe { mmo_predictor_new(&m, null(), 0, &p, &initial, &mut out) };
    assert_eq!(r, mmo_result::Ok, "{}", last_error());
    assert!(!out.is_null());
    out
}

#[test]
fn abi_version_matches_constant() {
    assert_eq!(mmo_abi_version(), MMO_ABI_VERSION);
    assert_ne!(mmo_core::PROTOCOL_VERSION, 0);
}

#[test]
fn null_arguments_are_reported_and_named() {
    let p = new_predictor();
    let input = mmo_move_input::default();
    let v = mmo_vec3::default();
    let mut seq = 0u32;
    let mut kind = mmo_rejection_kind::None;
    // SAFETY: every pointer is NULL (what is tested) or a live local / handle.
    unsafe {
        let cases: [(mmo_result, &str); 14] = [
            (
                mmo_predictor_push_input(null_mut(), &input, &mut seq),
                "predictor",
            ),
            (mmo_predictor_push_input(p, null(), &mut seq), "input"),
            (mmo_predictor_push_input(p, &input, null_mut()), "out_seq"),
            (mmo_predictor_predicted(p, null_mut()), "out"),
            (
                mmo_predictor_new(null(), null(), 0, null(), null(), null_mut()),
                "movement",
            ),
            (mmo_predictor_advance_visual(null_mut(), 0.1), "predictor"),
            (mmo_interpolator_new(null(), null_mut()), "config"),
            (mmo_snapshot_writer_new(null(), null_mut()), "config"),
            (
                mmo_snapshot_reader_receive(null_mut(), null(), 0, null_mut()),
                "reader",
            ),
            (mmo_replicator_new(null(), null_mut()), "config"),
            (mmo_validate_input(&input, null_mut()), "out_kind"),
            (
                mmo_check_speed(&v, null(), 1.0, 1.0, 0.0, &mut kind),
                "new_pos_m",
            ),
            (mmo_result_message(0, null_mut(), 4, &mut 0), "buf"),
            (mmo_poll_log(0, null_mut()), "out_delivered"),
        ];
        for (i, (r, name)) in cases.into_iter().enumerate() {
            assert_eq!(r, mmo_result::NullArgument, "case {i} (`{name}`)");
        }
        // Names: the last error says which argument was NULL.
        assert_eq!(
            mmo_predictor_push_input(p, &input, null_mut()),
            mmo_result::NullArgument
        );
        assert!(last_error().contains("`out_seq`"), "{}", last_error());
        assert_eq!(seq, 0, "output untouched");
        mmo_predictor_free(p);
    }
}

#[test]
fn invalid_enum_values_are_rejected_on_entry() {
    let mut config = std::mem::MaybeUninit::uninit();
    let mut r = null_mut();
    // SAFETY: pointers to live locals and a live handle.
    unsafe {
        assert_eq!(
            mmo_replication_config_default(config.as_mut_ptr()),
            mmo_result::Ok
        );
        assert_eq!(mmo_replicator_new(config.as_ptr(), &mut r), mmo_result::Ok);
        let pos = mmo_vec3::default();
        assert_eq!(
            mmo_replicator_update_entity(r, 1, &pos, 4),
            mmo_result::InvalidEnum
        );
        assert!(last_error().contains("`category` = 4"), "{}", last_error());
        assert_eq!(
            mmo_replicator_update_entity(r, 1, &pos, u32::MAX),
            mmo_result::InvalidEnum
        );
        let viewer = mmo_viewer {
            kind: 7,
            ..Default::default()
        };
        assert_eq!(
            mmo_replicator_add_client(r, 1, &viewer),
            mmo_result::InvalidEnum
        );
        let mut count = 123usize;
        assert_eq!(
            mmo_replicator_plan_ids(r, 1, 9, null_mut(), 0, &mut count),
            mmo_result::InvalidEnum
        );
        assert_eq!(count, 123, "output untouched");
        assert_eq!(mmo_set_log_level(6), mmo_result::InvalidEnum);
        assert!(mmo_rejection_kind_name(12).is_null());
        mmo_replicator_free(r);
    }
}

#[test]
fn a_panic_inside_any_function_becomes_mmo_result_panic() {
    let p = new_predictor();
    let mut state = mmo_character_state::default();
    let sentinel = mmo_character_state {
        yaw_rad: 42.0,
        ..Default::default()
    };
    state.yaw_rad = 42.0;
    // SAFETY: live handle and locals.
    unsafe {
        panic_next_call();
        assert_eq!(mmo_predictor_predicted(p, &mut state), mmo_result::Panic);
        assert_eq!(state, sentinel, "output untouched by a panic");
        assert!(
            last_error().contains("forced by test hook"),
            "{}",
            last_error()
        );
        // The boundary is not poisoned: the next call works.
        assert_eq!(mmo_predictor_predicted(p, &mut state), mmo_result::Ok);

        panic_next_call();
        assert_eq!(mmo_set_log_level(3), mmo_result::Panic);
        let mut out = null_mut();
        let mut c = std::mem::MaybeUninit::uninit();
        assert_eq!(
            mmo_interpolation_config_default(c.as_mut_ptr()),
            mmo_result::Ok
        );
        panic_next_call();
        assert_eq!(
            mmo_interpolator_new(c.as_ptr(), &mut out),
            mmo_result::Panic
        );
        assert!(out.is_null());
        // Value-returning functions return their documented fallback.
        panic_next_call();
        assert!(mmo_rejection_kind_name(0).is_null());
        // `_free` swallows the panic (the handle is leaked, not double-freed).
        panic_next_call();
        mmo_predictor_free(p);
        mmo_predictor_free(p);
    }
}

#[test]
fn free_null_is_a_no_op() {
    // SAFETY: NULL is the documented no-op.
    unsafe {
        mmo_predictor_free(null_mut());
        mmo_interpolator_free(null_mut());
        mmo_snapshot_writer_free(null_mut());
        mmo_snapshot_reader_free(null_mut());
        mmo_replicator_free(null_mut());
    }
}

#[test]
fn outputs_are_untouched_on_failure_and_config_errors_name_the_field() {
    let (mut m, p) = defaults();
    m.walk_speed_mps = -1.0;
    let initial = mmo_character_state::default();
    let sentinel = 0x1234usize as *mut mmo_predictor;
    let mut out = sentinel;
    // SAFETY: pointers to live locals.
    unsafe {
        assert_eq!(
            mmo_predictor_new(&m, null(), 0, &p, &initial, &mut out),
            mmo_result::InvalidConfig
        );
        assert_eq!(out, sentinel);
        assert!(last_error().contains("walk_speed_mps"), "{}", last_error());

        let (m, mut p) = defaults();
        p.tick_rate_hz = 1000;
        assert_eq!(
            mmo_predictor_new(&m, null(), 0, &p, &initial, &mut out),
            mmo_result::InvalidConfig
        );
        let (m, p) = defaults();
        let bad_bool = mmo_character_state {
            on_ground: 2,
            ..Default::default()
        };
        assert_eq!(
            mmo_predictor_new(&m, null(), 0, &p, &bad_bool, &mut out),
            mmo_result::InvalidArgument
        );
        let bad_blocker = mmo_aabb::default(); // min == max: invalid
        assert_eq!(
            mmo_predictor_new(&m, &bad_blocker, 1, &p, &initial, &mut out),
            mmo_result::InvalidConfig
        );
        assert!(last_error().contains("blockers[0]"), "{}", last_error());
        assert_eq!(
            mmo_predictor_new(&m, null(), 3, &p, &initial, &mut out),
            mmo_result::NullArgument
        );
        assert_eq!(out, sentinel);

        let pred = new_predictor();
        let mut seq = 77u32;
        let cheat = mmo_move_input {
            forward_q: -128,
            ..Default::default()
        };
        assert_eq!(
            mmo_predictor_push_input(pred, &cheat, &mut seq),
            mmo_result::InvalidArgument
        );
        assert_eq!(seq, 77);
        let mut input = mmo_move_input::default();
        assert_eq!(
            mmo_move_input_from_controls(1.0, 0.0, 0.0, 0x80, &mut input),
            mmo_result::InvalidArgument
        );
        assert_eq!(input, mmo_move_input::default());
        mmo_predictor_free(pred);
    }
}

#[test]
fn result_messages_and_buffer_rules() {
    let mut buf = [0x55 as c_char; 128];
    let mut len = 0usize;
    // SAFETY: `buf` holds 64 bytes; `len` is a live local.
    unsafe {
        for code in mmo_result::ALL {
            assert_eq!(
                mmo_result_message(code as u32, buf.as_mut_ptr(), buf.len(), &mut len),
                mmo_result::Ok
            );
            let text = CStr::from_ptr(buf.as_ptr()).to_str().unwrap();
            assert_eq!(text, code.message());
            assert_eq!(len, text.len());
        }
        assert_eq!(
            mmo_result_message(4242, buf.as_mut_ptr(), buf.len(), &mut len),
            mmo_result::Ok
        );
        assert_eq!(
            CStr::from_ptr(buf.as_ptr()).to_str().unwrap(),
            "unknown result code"
        );

        // Size query and a too-small buffer: the length is reported, the buffer untouched.
        let mut small = [0x55 as c_char; 4];
        assert_eq!(
            mmo_result_message(9000, small.as_mut_ptr(), small.len(), &mut len),
            mmo_result::BufferTooSmall
        );
        assert_eq!(len, mmo_result::Panic.message().len());
        assert!(small.iter().all(|&b| b == 0x55));
        assert_eq!(
            mmo_result_message(0, null_mut(), 0, &mut len),
            mmo_result::BufferTooSmall
        );
        assert_eq!(len, "success".len());

        // Reading the last error with a small buffer does not replace it.
        let p = new_predictor();
        assert_eq!(
            mmo_predictor_advance_visual(p, f32::NAN),
            mmo_result::InvalidArgument
        );
        let expected = last_error();
        assert!(expected.contains("dt_s"), "{expected}");
        assert_eq!(
            mmo_last_error_message(small.as_mut_ptr(), small.len(), &mut len),
            mmo_result::BufferTooSmall
        );
        assert_eq!(len, expected.len());
        assert_eq!(last_error(), expected);
        mmo_predictor_free(p);
    }
}

#[test]
fn predictor_round_trip_push_reconcile_confirmed_and_corrected() {
    let p = new_predictor();
    let mut input = mmo_move_input::default();
    let mut seq = 0;
    let mut state = mmo_character_state::default();
    let mut result = std::mem::MaybeUninit::<mmo_reconcile_result>::uninit();
    // SAFETY: live handle and locals.
    unsafe {
        assert_eq!(
            mmo_move_input_from_controls(1.0, 0.0, 0.0, MMO_BUTTON_SPRINT, &mut input),
            mmo_result::Ok
        );
        assert_eq!(input.forward_q, 127);
        let mut states = Vec::new();
        for expected in 1..=5 {
            assert_eq!(
                mmo_predictor_push_input(p, &input, &mut seq),
                mmo_result::Ok
            );
            assert_eq!(seq, expected);
            assert_eq!(mmo_predictor_predicted(p, &mut state), mmo_result::Ok);
            states.push(state);
        }
        assert!(state.position_m.x > 0.0, "moved forward: {state:?}");

        // The server agrees with input 2: confirmed, nothing replayed.
        assert_eq!(
            mmo_predictor_reconcile(p, 2, &states[1], result.as_mut_ptr()),
            mmo_result::Ok
        );
        let r = result.assume_init();
        assert_eq!(r.outcome, mmo_reconcile_outcome::Confirmed);
        assert_eq!(r.replayed_inputs, 0);

        // The unacknowledged inputs are 3..=5.
        let mut unacked = [mmo_move_input::default(); 8];
        let (mut count, mut first) = (0usize, 0u32);
        assert_eq!(
            mmo_predictor_unacked_inputs(p, unacked.as_mut_ptr(), 8, &mut count, &mut first),
            mmo_result::Ok
        );
        assert_eq!((count, first), (3, 3));
        assert_eq!(unacked[0], input);

        // The server says input 3 ended 0.5 m further along Y: corrected, 2 replayed, and
        // the jump is hidden by a visual offset that decays.
        let mut server = states[2];
        server.position_m.y += 0.5;
        assert_eq!(
            mmo_predictor_reconcile(p, 3, &server, result.as_mut_ptr()),
            mmo_result::Ok
        );
        let r = result.assume_init();
        assert_eq!(r.outcome, mmo_reconcile_outcome::Corrected);
        assert_eq!(r.replayed_inputs, 2);
        assert!((r.position_error_m - 0.5).abs() < 1e-4);
        assert_eq!(r.snapped, 0);
        let mut offset = mmo_vec3::default();
        assert_eq!(mmo_predictor_visual_offset(p, &mut offset), mmo_result::Ok);
        assert!((offset.y + 0.5).abs() < 1e-3, "{offset:?}");
        let mut render = mmo_vec3::default();
        assert_eq!(
            mmo_predictor_render_position(p, &mut render),
            mmo_result::Ok
        );
        assert_eq!(mmo_predictor_predicted(p, &mut state), mmo_result::Ok);
        assert!((render.y - (state.position_m.y + offset.y)).abs() < 1e-6);
        assert_eq!(mmo_predictor_advance_visual(p, 0.1), mmo_result::Ok);
        let mut decayed = mmo_vec3::default();
        assert_eq!(mmo_predictor_visual_offset(p, &mut decayed), mmo_result::Ok);
        assert!((decayed.y - offset.y / 2.0).abs() < 1e-3, "half-life 0.1 s");

        // A duplicate is stale; an ack of an input never pushed is a data error.
        assert_eq!(
            mmo_predictor_reconcile(p, 3, &server, result.as_mut_ptr()),
            mmo_result::Ok
        );
        assert_eq!(result.assume_init().outcome, mmo_reconcile_outcome::Stale);
        assert_eq!(
            mmo_predictor_reconcile(p, 99, &server, result.as_mut_ptr()),
            mmo_result::AckAhead
        );
        let mut nan = server;
        nan.velocity_mps.z = f32::NAN;
        assert_eq!(
            mmo_predictor_reconcile(p, 4, &nan, result.as_mut_ptr()),
            mmo_result::InvalidArgument
        );
        assert_eq!(mmo_predictor_reset(p, &server), mmo_result::Ok);
        assert_eq!(mmo_predictor_visual_offset(p, &mut offset), mmo_result::Ok);
        assert_eq!(offset, mmo_vec3::default());
        mmo_predictor_free(p);
    }
}

#[test]
fn interpolation_round_trip() {
    let mut config = std::mem::MaybeUninit::uninit();
    let mut i = null_mut();
    let mut outcome = mmo_push_outcome::Invalid;
    let mut out = mmo_interp_output::default();
    // SAFETY: live handle and locals.
    unsafe {
        assert_eq!(
            mmo_interpolation_config_default(config.as_mut_ptr()),
            mmo_result::Ok
        );
        assert_eq!(
            mmo_interpolator_new(config.as_ptr(), &mut i),
            mmo_result::Ok
        );
        assert_eq!(mmo_interpolator_sample(i, 0, &mut out), mmo_result::Empty);
        // 30 Hz samples moving 1 m per sample along X, each arriving 50 ms after its
        // stamp and rendered right away, as a game loop would.
        let tick_us = 33_333u64;
        let mut last_x = f32::NEG_INFINITY;
        for k in 0..30u64 {
            let pos = mmo_vec3 {
                x: k as f32,
                y: 2.0,
                z: 0.0,
            };
            let server_time = 1_000_000 + k * tick_us;
            let now = server_time + 50_000;
            assert_eq!(
                mmo_interpolator_push(i, server_time, now, &pos, 0.5, &mut outcome),
                mmo_result::Ok
            );
            assert_eq!(outcome, mmo_push_outcome::Accepted);
            assert_eq!(mmo_interpolator_sample(i, now, &mut out), mmo_result::Ok);
            // Drawn in the past: never ahead of the newest sample, never backwards.
            assert!(out.position_m.x <= k as f32 + 1e-4, "k {k}: {out:?}");
            assert!(out.position_m.x >= last_x, "k {k}: {out:?}");
            assert!((out.position_m.y - 2.0).abs() < 1e-5);
            assert!((out.yaw_rad - 0.5).abs() < 1e-5);
            last_x = out.position_m.x;
            if k >= 10 {
                assert_eq!(out.extrapolating, 0, "k {k}: {out:?}");
                assert!(out.position_m.x > k as f32 - 3.0, "k {k}: {out:?}");
            }
        }
        let bad = mmo_vec3 {
            x: f32::NAN,
            y: 0.0,
            z: 0.0,
        };
        assert_eq!(
            mmo_interpolator_push(i, 3_000_000, 3_050_000, &bad, 0.0, &mut outcome),
            mmo_result::Ok
        );
        assert_eq!(outcome, mmo_push_outcome::Invalid);
        assert_eq!(mmo_interpolator_clear(i), mmo_result::Ok);
        assert_eq!(
            mmo_interpolator_sample(i, 3_000_000, &mut out),
            mmo_result::Empty
        );
        mmo_interpolator_free(i);
    }
}

#[test]
fn codec_round_trip_snapshots_inputs_and_acks() {
    let mut config = std::mem::MaybeUninit::uninit();
    let (mut w, mut r) = (null_mut(), null_mut());
    let mut buf = [0u8; 1200];
    let mut report = mmo_snapshot_report::default();
    let mut info = std::mem::MaybeUninit::<mmo_snapshot_info>::uninit();
    // SAFETY: live handles and locals.
    unsafe {
        assert_eq!(
            mmo_snapshot_config_default(config.as_mut_ptr()),
            mmo_result::Ok
        );
        assert_eq!(
            mmo_snapshot_writer_new(config.as_ptr(), &mut w),
            mmo_result::Ok
        );
        assert_eq!(
            mmo_snapshot_reader_new(config.as_ptr(), &mut r),
            mmo_result::Ok
        );
        let owner = mmo_character_state {
            position_m: mmo_vec3 {
                x: 1.25,
                y: -3.5,
                z: 0.0,
            },
            on_ground: 1,
            ..Default::default()
        };
        let entities = |t: f32| {
            [
                mmo_snapshot_entity_in {
                    position_m: mmo_vec3 {
                        x: 10.0 + t,
                        y: 5.0,
                        z: 0.0,
                    },
                    yaw_rad: 1.0,
                    entity_id: 9,
                    archetype: 3,
                    flags: 1,
                },
                mmo_snapshot_entity_in {
                    position_m: mmo_vec3 {
                        x: -4.0,
                        y: 2.0,
                        z: 1.0,
                    },
                    yaw_rad: 0.0,
                    entity_id: 7,
                    archetype: 2,
                    flags: 0,
                },
            ]
        };
        let e0 = entities(0.0);
        assert_eq!(
            mmo_snapshot_writer_encode(
                w,
                100,
                0,
                &owner,
                e0.as_ptr(),
                2,
                buf.as_mut_ptr(),
                buf.len(),
                &mut report
            ),
            mmo_result::Ok
        );
        assert_eq!(report.records_written, 2);
        assert_eq!(report.seq, 0);
        let mut ids = [0u32; 4];
        let mut count = 0usize;
        assert_eq!(
            mmo_snapshot_writer_written_ids(w, ids.as_mut_ptr(), 4, &mut count),
            mmo_result::Ok
        );
        assert_eq!(&ids[..count], &[7, 9]);

        assert_eq!(
            mmo_snapshot_reader_receive(r, buf.as_ptr(), report.len_bytes, info.as_mut_ptr()),
            mmo_result::Ok
        );
        let got = info.assume_init();
        assert_eq!(got.outcome, mmo_snapshot_outcome::Applied);
        assert_eq!((got.tick, got.entity_count, got.has_owner), (100, 2, 1));
        assert_eq!(got.owner, owner, "owner state is lossless");
        let mut e = mmo_snapshot_entity::default();
        assert_eq!(mmo_snapshot_reader_entity(r, 0, &mut e), mmo_result::Ok);
        assert_eq!((e.entity_id, e.entered, e.archetype), (7, 1, 2));
        assert!((e.position_m.x + 4.0).abs() < 0.01 && (e.position_m.z - 1.0).abs() < 0.01);
        assert_eq!(mmo_snapshot_reader_entity(r, 1, &mut e), mmo_result::Ok);
        assert_eq!((e.entity_id, e.flags), (9, 1));
        assert_eq!(
            mmo_snapshot_reader_entity(r, 2, &mut e),
            mmo_result::InvalidArgument
        );
        // The same datagram again is stale.
        assert_eq!(
            mmo_snapshot_reader_receive(r, buf.as_ptr(), report.len_bytes, info.as_mut_ptr()),
            mmo_result::Ok
        );
        assert_eq!(info.assume_init().outcome, mmo_snapshot_outcome::Stale);

        // The client sends inputs (acknowledging snapshot 0); the server decodes them.
        let inputs = [
            mmo_move_input {
                forward_q: 127,
                ..Default::default()
            },
            mmo_move_input {
                forward_q: 127,
                yaw_q: 100,
                buttons: MMO_BUTTON_JUMP,
                ..Default::default()
            },
        ];
        let mut dgram = [0u8; 256];
        let mut len = 0usize;
        assert_eq!(
            mmo_snapshot_reader_encode_input(
                r,
                41,
                inputs.as_ptr(),
                2,
                dgram.as_mut_ptr(),
                dgram.len(),
                &mut len
            ),
            mmo_result::Ok
        );
        let mut batch = mmo_input_batch::default();
        assert_eq!(
            mmo_snapshot_writer_receive_input(w, dgram.as_ptr(), len, &mut batch),
            mmo_result::Ok
        );
        assert_eq!((batch.first_seq, batch.count), (41, 2));
        assert_eq!(&batch.inputs[..2], &inputs);

        // Snapshot 1 is delta-coded against the acknowledged snapshot 0, with a leave.
        assert_eq!(mmo_snapshot_writer_remove_entity(w, 7), mmo_result::Ok);
        let e1 = entities(0.5);
        assert_eq!(
            mmo_snapshot_writer_encode(
                w,
                101,
                42,
                &owner,
                e1.as_ptr(),
                1,
                buf.as_mut_ptr(),
                buf.len(),
                &mut report
            ),
            mmo_result::Ok
        );
        assert_eq!((report.records_written, report.leaves_written), (1, 1));
        assert_eq!(
            mmo_snapshot_reader_receive(r, buf.as_ptr(), report.len_bytes, info.as_mut_ptr()),
            mmo_result::Ok
        );
        let got = info.assume_init();
        assert_eq!(
            (got.ack_input_seq, got.entity_count, got.leave_count),
            (42, 1, 1)
        );
        assert_eq!(mmo_snapshot_reader_entity(r, 0, &mut e), mmo_result::Ok);
        assert_eq!((e.entity_id, e.entered), (9, 0), "a delta, not an enter");
        assert!((e.position_m.x - 10.5).abs() < 0.01);
        assert_eq!(
            mmo_snapshot_reader_leaves(r, ids.as_mut_ptr(), 0, &mut count),
            mmo_result::BufferTooSmall
        );
        assert_eq!(
            mmo_snapshot_reader_leaves(r, ids.as_mut_ptr(), 4, &mut count),
            mmo_result::Ok
        );
        assert_eq!(&ids[..count], &[7]);

        // Failures: a small buffer consumes nothing; garbage does not decode; wrong kinds.
        let mut tiny = [0u8; 8];
        let before = report;
        assert_eq!(
            mmo_snapshot_writer_encode(
                w,
                102,
                42,
                null(),
                e1.as_ptr(),
                1,
                tiny.as_mut_ptr(),
                tiny.len(),
                &mut report
            ),
            mmo_result::BufferTooSmall
        );
        assert_eq!(report, before);
        assert_eq!(
            mmo_snapshot_writer_encode(
                w,
                102,
                42,
                null(),
                e1.as_ptr(),
                1,
                buf.as_mut_ptr(),
                buf.len(),
                &mut report
            ),
            mmo_result::Ok
        );
        assert_eq!(
            report.seq, 2,
            "the failed encode did not consume a sequence"
        );
        let dup = [e1[0], e1[0]];
        assert_eq!(
            mmo_snapshot_writer_encode(
                w,
                103,
                42,
                null(),
                dup.as_ptr(),
                2,
                buf.as_mut_ptr(),
                buf.len(),
                &mut report
            ),
            mmo_result::InvalidArgument
        );
        let garbage = [0xFFu8; 20];
        assert_eq!(
            mmo_snapshot_reader_receive(r, garbage.as_ptr(), garbage.len(), info.as_mut_ptr()),
            mmo_result::DecodeFailed
        );
        assert_eq!(
            mmo_snapshot_reader_receive(r, dgram.as_ptr(), len, info.as_mut_ptr()),
            mmo_result::DecodeFailed,
            "an input datagram is not a snapshot"
        );
        assert_eq!(
            mmo_snapshot_writer_receive_input(w, buf.as_ptr(), report.len_bytes, &mut batch),
            mmo_result::DecodeFailed
        );
        let too_many = [inputs[0]; 17];
        assert_eq!(
            mmo_snapshot_reader_encode_input(
                r,
                1,
                too_many.as_ptr(),
                too_many.len(),
                dgram.as_mut_ptr(),
                dgram.len(),
                &mut len
            ),
            mmo_result::InvalidArgument
        );
        let mut bad = *config.as_ptr();
        bad.yaw_bits = 40;
        let mut w2 = null_mut();
        assert_eq!(
            mmo_snapshot_writer_new(&bad, &mut w2),
            mmo_result::InvalidConfig
        );
        assert!(w2.is_null());
        mmo_snapshot_writer_free(w);
        mmo_snapshot_reader_free(r);
    }
}

#[test]
fn replicator_orders_within_budget() {
    let mut config = std::mem::MaybeUninit::<mmo_replication_config>::uninit();
    let mut r = null_mut();
    let mut info = mmo_plan_info::default();
    // SAFETY: live handle and locals.
    unsafe {
        assert_eq!(
            mmo_replication_config_default(config.as_mut_ptr()),
            mmo_result::Ok
        );
        assert_eq!(mmo_replicator_new(config.as_ptr(), &mut r), mmo_result::Ok);
        for (id, x, category) in [
            (1, 10.0, mmo_priority_category::Low),
            (2, 20.0, mmo_priority_category::Critical),
            (3, 30.0, mmo_priority_category::High),
            (4, 900.0, mmo_priority_category::High), // outside the area of interest
        ] {
            let pos = mmo_vec3 { x, y: 0.0, z: 0.0 };
            assert_eq!(
                mmo_replicator_update_entity(r, id, &pos, category as u32),
                mmo_result::Ok
            );
        }
        let viewer = mmo_viewer {
            kind: mmo_viewer_kind::Position as u32,
            ..Default::default()
        };
        assert_eq!(mmo_replicator_add_client(r, 5, &viewer), mmo_result::Ok);
        assert_eq!(
            mmo_replicator_add_client(r, 5, &viewer),
            mmo_result::AlreadyExists
        );
        assert_eq!(
            mmo_replicator_select_within_budget(r, 0, 6, 100, &mut info),
            mmo_result::NotFound
        );
        // 10,000 B/s at 30 Hz is 333 B on the first tick: 3 entities of 100 B fit.
        assert_eq!(
            mmo_replicator_select_within_budget(r, 0, 5, 100, &mut info),
            mmo_result::Ok
        );
        assert_eq!((info.entered_count, info.selected_count), (3, 3));
        let mut ids = [0u32; 8];
        let mut count = 0;
        assert_eq!(
            mmo_replicator_plan_ids(
                r,
                5,
                mmo_plan_list::Selected as u32,
                ids.as_mut_ptr(),
                1,
                &mut count
            ),
            mmo_result::BufferTooSmall
        );
        assert_eq!(
            mmo_replicator_plan_ids(
                r,
                5,
                mmo_plan_list::Selected as u32,
                ids.as_mut_ptr(),
                8,
                &mut count
            ),
            mmo_result::Ok
        );
        assert_eq!(ids[0], 2, "Critical first: {:?}", &ids[..count]);
        assert_eq!(count, 3);

        // Encoder mode: plan, commit what was written.
        assert_eq!(mmo_replicator_plan_tick(r, 1, 5, &mut info), mmo_result::Ok);
        assert_eq!(
            mmo_replicator_commit(r, 5, ids.as_ptr(), 1, 50),
            mmo_result::Ok
        );
        assert_eq!(
            mmo_replicator_commit(r, 5, ids.as_ptr(), 1, 50),
            mmo_result::Empty
        );
        assert_eq!(mmo_replicator_remove_entity(r, 1), mmo_result::Ok);
        assert_eq!(mmo_replicator_remove_entity(r, 1), mmo_result::NotFound);
        assert_eq!(mmo_replicator_plan_tick(r, 2, 5, &mut info), mmo_result::Ok);
        assert_eq!(info.left_count, 1);
        assert_eq!(mmo_replicator_remove_client(r, 5), mmo_result::Ok);
        assert_eq!(mmo_replicator_remove_client(r, 5), mmo_result::NotFound);
        let mut bad = *config.as_ptr();
        bad.area_of_interest_radius_m = 100.0;
        let mut r2 = null_mut();
        assert_eq!(mmo_replicator_new(&bad, &mut r2), mmo_result::InvalidConfig);
        assert!(last_error().contains("area_of_interest_radius_m"));
        mmo_replicator_free(r);
    }
}

#[test]
fn validation_verdicts_and_names() {
    let mut kind = mmo_rejection_kind::Range;
    let origin = mmo_vec3::default();
    let far = mmo_vec3 {
        x: 100.0,
        y: 0.0,
        z: 0.0,
    };
    // SAFETY: pointers to live locals.
    unsafe {
        let ok = mmo_move_input {
            forward_q: 90,
            right_q: 90,
            ..Default::default()
        };
        assert_eq!(mmo_validate_input(&ok, &mut kind), mmo_result::Ok);
        assert_eq!(kind, mmo_rejection_kind::None);
        let cheat = mmo_move_input {
            forward_q: 127,
            right_q: 127,
            ..Default::default()
        };
        assert_eq!(mmo_validate_input(&cheat, &mut kind), mmo_result::Ok);
        assert_eq!(kind, mmo_rejection_kind::InputMagnitude);
        assert_eq!(
            mmo_check_speed(&origin, &far, 1.0, 7.0, 0.1, &mut kind),
            mmo_result::Ok
        );
        assert_eq!(kind, mmo_rejection_kind::Speed);
        assert_eq!(
            mmo_check_teleport(&origin, &far, 50.0, &mut kind),
            mmo_result::Ok
        );
        assert_eq!(kind, mmo_rejection_kind::Teleport);
        assert_eq!(
            mmo_check_resource_cost(10.0, 25.0, &mut kind),
            mmo_result::Ok
        );
        assert_eq!(kind, mmo_rejection_kind::ResourceCost);
        assert_eq!(
            mmo_check_resource_cost(25.0, 25.0, &mut kind),
            mmo_result::Ok
        );
        assert_eq!(kind, mmo_rejection_kind::None);
        assert_eq!(mmo_check_cooldown(5, 10, &mut kind), mmo_result::Ok);
        assert_eq!(kind, mmo_rejection_kind::Cooldown);
        assert_eq!(
            mmo_check_range(&origin, &far, 150.0, &mut kind),
            mmo_result::Ok
        );
        assert_eq!(kind, mmo_rejection_kind::None);
        let nan = mmo_vec3 {
            x: f32::NAN,
            y: 0.0,
            z: 0.0,
        };
        assert_eq!(
            mmo_check_range(&origin, &nan, 150.0, &mut kind),
            mmo_result::Ok
        );
        assert_eq!(kind, mmo_rejection_kind::NonFinite);

        // Every core kind maps to a distinct value whose name is the core's label.
        let name = |k: u32| CStr::from_ptr(mmo_rejection_kind_name(k)).to_str().unwrap();
        assert_eq!(name(0), "none");
        for k in mmo_core::validation::RejectionKind::ALL {
            assert_eq!(name(mmo_rejection_kind::from(k) as u32), k.as_str());
        }
    }
}

/// One test for everything global about logging (the subscriber, level and callback are
/// process-wide; other tests may log concurrently, so only our own records are checked).
#[test]
fn log_records_reach_the_callback_on_the_polling_thread() {
    unsafe extern "C" fn collect(
        user_data: *mut c_void,
        level: u32,
        target: *const c_char,
        message: *const c_char,
    ) {
        // SAFETY: `user_data` is the `Vec` registered below; strings are valid per contract.
        unsafe {
            let records = &mut *user_data.cast::<Vec<(u32, String, String)>>();
            let target = CStr::from_ptr(target).to_string_lossy().into_owned();
            let message = CStr::from_ptr(message).to_string_lossy().into_owned();
            records.push((level, target, message));
        }
    }
    let mut records: Vec<(u32, String, String)> = Vec::new();
    let mut delivered = 0usize;
    // SAFETY: `records` outlives the registration (cleared at the end of the test).
    unsafe {
        let user_data = (&raw mut records).cast::<c_void>();
        assert_eq!(
            mmo_set_log_callback(Some(collect), user_data),
            mmo_result::Ok
        );
        assert_eq!(
            mmo_set_log_level(mmo_log_level::Debug as u32),
            mmo_result::Ok
        );
        tracing::warn!(answer = 42, "ffi log test");
        tracing::trace!("ffi log test: above the level, not recorded");
        // Nothing is delivered before the poll.
        assert!(records.is_empty());
        assert_eq!(mmo_poll_log(0, &mut delivered), mmo_result::Ok);
        assert!(delivered >= 1);
        let ours: Vec<_> = records
            .iter()
            .filter(|r| r.2.starts_with("ffi log test"))
            .collect();
        assert_eq!(ours.len(), 1, "{records:?}");
        assert_eq!(ours[0].0, mmo_log_level::Warn as u32);
        assert_eq!(ours[0].1, module_path!());
        assert_eq!(ours[0].2, "ffi log test answer=42");

        // Overflow: extra records are dropped and reported once.
        records.clear();
        for i in 0..(MMO_LOG_QUEUE_CAPACITY + 10) {
            tracing::info!(i, "ffi flood");
        }
        assert_eq!(mmo_poll_log(1, &mut delivered), mmo_result::Ok);
        assert_eq!(delivered, 1);
        assert!(records[0].2.contains("log records dropped"), "{records:?}");
        assert_eq!(mmo_poll_log(0, &mut delivered), mmo_result::Ok);

        assert_eq!(mmo_set_log_callback(None, null_mut()), mmo_result::Ok);
        assert_eq!(
            mmo_set_log_level(mmo_log_level::Info as u32),
            mmo_result::Ok
        );
        tracing::warn!("ffi log test after clearing");
        assert_eq!(mmo_poll_log(0, &mut delivered), mmo_result::Ok);
        assert_eq!(delivered, 0);
    }
}
