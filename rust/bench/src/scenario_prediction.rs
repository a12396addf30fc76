//! The `prediction` scenario: one predicting client over a bad link (75 ms one-way latency,
//! so 150 ms RTT, up to 30 ms jitter, 5 % loss and 10 % duplication each way), driven through
//! the test kit's [`Harness`] for 60 s with random legal inputs (walk, sprint, jump, stop).
//!
//! Nothing is unfinished. The render position is recorded once per client input tick (when
//! the harness asks for the input), so steps are per 33 ms client tick, not per render frame.
//!
//! Phases:
//! 1. 60 s of play: `corrections` is the predictor's correction count at the end (legal
//!    inputs only, so the expectation is 0; it is read, not assumed). `normal_max_step_cm`
//!    is the largest per-client-tick step of the rendered position
//!    (`predictor().render_position_m()`, recorded each time the harness asks for an input).
//! 2. A server-side knockback: `Zone::set_character` pushes the character 1.5 m sideways
//!    (+Y) with 6 m/s of sideways velocity, off the ground; play continues for 2 s.
//!    `max_visual_step_cm` is the largest rendered per-tick step from the tick before the
//!    knockback to the end (a snap would show as a step of about the knockback distance);
//!    `knockback_distance_cm` is the injected displacement; `knockback_corrections` the
//!    corrections it caused; `visual_offset_after_cm` what is left of the smoothing offset
//!    2 s later. Then 1 s without inputs, after which `converged_on_server_state` says
//!    whether the prediction equals the server's state bit for bit.
//! 3. Replay cost, measured directly on a [`Predictor`] (no network): each repetition pushes
//!    one input and reconciles the input 10 ticks back against a server state 1 cm off the
//!    stored prediction, which rewinds and replays the 10 inputs after it. Only the
//!    `reconcile` call is timed (`Instant`, into an HDR histogram in ns). Every repetition
//!    is checked to have replayed exactly 10.

use std::cell::RefCell;
use std::time::Instant;

use glam::Vec3;
use mmo_core::entity::CharacterState;
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::movement::MovementConfig;
use mmo_core::prediction::{PredictionConfig, Predictor, ReconcileOutcome};
use mmo_core::session::client::{ClientConfig, ClientEvent, ClientSession};
use mmo_core::time::TickRate;
use mmo_core::zone::ZoneConfig;
use mmo_testkit::harness::Harness;
use mmo_testkit::link::LinkConfig;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::walk::{RandomKeys, ns_histogram, quantile_us, record_ns, round};

/// Seconds of play before the knockback.
const PLAY_S: u64 = 60;
/// Seconds observed after the knockback.
const AFTER_KNOCKBACK_S: u64 = 2;
/// Sideways displacement of the knockback, metres.
const KNOCKBACK_M: f32 = 1.5;
/// Sideways velocity given by the knockback, m/s.
const KNOCKBACK_MPS: f32 = 6.0;
/// Inputs replayed by each timed reconcile.
const REPLAY_LEN: u32 = 10;
/// Timed reconciles (after as many untimed warm-up ones as a tenth of this).
const REPLAY_REPS: u32 = 200_000;

fn max_step_m(rendered: &[Vec3]) -> f32 {
    rendered
        .windows(2)
        .map(|w| (w[1] - w[0]).length())
        .fold(0.0, f32::max)
}

/// Runs the scenario and returns its measured figures as a JSON object.
pub fn run(seed: u64) -> Result<serde_json::Value, String> {
    let link = LinkConfig {
        latency_us: 75_000,
        jitter_us: 30_000,
        loss_probability: 0.05,
        duplicate_probability: 0.10,
        ..LinkConfig::perfect()
    };
    link.validate().map_err(|e| e.to_string())?;
    let mut harness = Harness::new(ZoneConfig::default(), seed)?;
    harness.add_client(ClientConfig::default(), link, "player")?;
    let connection = harness.clients[0].connection;

    let rng = RefCell::new(ChaCha8Rng::seed_from_u64(seed));
    let keys = RefCell::new(RandomKeys::default());
    let rendered: RefCell<Vec<Vec3>> = RefCell::new(Vec::new());
    let mut source = |_: usize, s: &ClientSession| {
        if let Some(p) = s.predictor() {
            rendered.borrow_mut().push(p.render_position_m());
        }
        Some(keys.borrow_mut().next(&mut rng.borrow_mut()))
    };

    // Phase 1: play.
    harness.run_until(PLAY_S * 1_000_000, &mut source);
    let session = &harness.clients[0].session;
    let predictor = session.predictor().ok_or("the client never logged in")?;
    let corrections = predictor.corrections();
    let stats_play = session.stats();
    let inputs_play = harness.clients[0].inputs_sent;
    let frames_before = rendered.borrow().len();
    let normal_max_step_m = max_step_m(&rendered.borrow());

    // Phase 2: knockback.
    let before = *harness
        .zone
        .character(connection)
        .ok_or("no server character")?;
    let mut knocked = before;
    knocked.position_m.y += KNOCKBACK_M;
    knocked.velocity_mps.y += KNOCKBACK_MPS;
    knocked.on_ground = false;
    if !harness.zone.set_character(connection, knocked) {
        return Err("set_character refused".to_owned());
    }
    harness.run_until((PLAY_S + AFTER_KNOCKBACK_S) * 1_000_000, &mut source);
    let client = &harness.clients[0];
    let predictor = client.session.predictor().ok_or("client lost")?;
    let knockback_corrections = predictor.corrections() - corrections;
    let corrected_events = client
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Corrected { .. }))
        .count();
    let max_visual_step_m = max_step_m(&rendered.borrow()[frames_before.saturating_sub(1)..]);
    let rejections = harness
        .zone
        .connection(connection)
        .map_or(0, |c| c.rejections().total());
    let link_up = client.link.client_to_server.stats();
    let link_down = client.link.server_to_client.stats();
    let visual_offset_after_m = predictor.visual_offset_m().length();
    // Then 1 s without inputs so every input is acknowledged: the prediction must equal the
    // server's state bit for bit.
    let end_us = (PLAY_S + AFTER_KNOCKBACK_S + 1) * 1_000_000;
    harness.run_until(end_us, &mut |_: usize, _: &ClientSession| None);
    let predictor = harness.clients[0]
        .session
        .predictor()
        .ok_or("client lost")?;
    let converged = predictor.unacked_inputs().len() == 0
        && harness
            .zone
            .character(connection)
            .is_some_and(|s| predictor.predicted().bits_eq(s));

    // Phase 3: replay cost.
    let (replay_ns, replay_checked) = measure_replay()?;

    Ok(json!({
        "scenario": "prediction",
        "seed": seed,
        "seconds": PLAY_S,
        "latency_one_way_ms": link.latency_us / 1000,
        "jitter_ms": link.jitter_us / 1000,
        "loss": link.loss_probability,
        "duplication": link.duplicate_probability,
        "inputs_sent": inputs_play,
        "corrections": corrections,
        "snapshots_applied": stats_play.snapshots_applied,
        "snapshots_stale": stats_play.snapshots_stale,
        "snapshots_undecodable": stats_play.snapshots_undecodable,
        "rtt_ms": round(stats_play.rtt_us as f64 / 1000.0, 1),
        "server_input_rejections": rejections,
        "datagrams_lost_up": link_up.lost,
        "datagrams_lost_down": link_down.lost,
        "datagrams_duplicated_up": link_up.duplicated,
        "datagrams_duplicated_down": link_down.duplicated,
        "replay_len": REPLAY_LEN,
        "replay_reps": replay_checked,
        "replay_us_p50": round(quantile_us(&replay_ns, 0.5), 3),
        "replay_us_p99": round(quantile_us(&replay_ns, 0.99), 3),
        "replay_us_max": round(quantile_us(&replay_ns, 1.0), 3),
        "knockback_distance_cm": round(f64::from((knocked.position_m - before.position_m).length()) * 100.0, 1),
        "knockback_corrections": knockback_corrections,
        "corrected_events_total": corrected_events,
        "max_visual_step_cm": round(f64::from(max_visual_step_m) * 100.0, 1),
        "normal_max_step_cm": round(f64::from(normal_max_step_m) * 100.0, 1),
        "visual_offset_after_cm": round(f64::from(visual_offset_after_m) * 100.0, 2),
        "converged_on_server_state": converged,
    }))
}

/// Times `REPLAY_REPS` reconciles that each replay `REPLAY_LEN` inputs. Returns the
/// histogram (ns) and the number of timed reconciles that replayed exactly `REPLAY_LEN`.
fn measure_replay() -> Result<(hdrhistogram::Histogram<u64>, u32), String> {
    let rate = TickRate::DEFAULT;
    let mut predictor = Predictor::new(
        MovementConfig::default(),
        rate,
        CharacterState::at(Vec3::ZERO),
        PredictionConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    // The uncorrected path: states after each input by sequence, stepped independently of
    // the predictor (whose stored states get rewritten by every correction).
    let movement = MovementConfig::default();
    let mut history: Vec<CharacterState> = vec![CharacterState::at(Vec3::ZERO)];
    let push = |predictor: &mut Predictor, i: u32, history: &mut Vec<CharacterState>| {
        // Walk in a circle (one degree per tick) so the character stays near the origin.
        let yaw = (i % 360) as f32 * (std::f32::consts::TAU / 360.0);
        let input = MoveInput::from_controls(1.0, 0.0, yaw, Buttons::default());
        let seq = predictor.push_input(input);
        let last = history[history.len() - 1];
        history.push(mmo_core::movement::step(
            &movement,
            &last,
            &input,
            rate.dt_s(),
        ));
        debug_assert_eq!(seq as usize + 1, history.len());
        seq
    };
    for i in 0..REPLAY_LEN {
        push(&mut predictor, i, &mut history);
    }
    let mut histogram = ns_histogram()?;
    let warmup = REPLAY_REPS / 10;
    let mut checked = 0;
    for rep in 0..warmup + REPLAY_REPS {
        let seq = push(&mut predictor, REPLAY_LEN + rep, &mut history);
        let ack = seq - REPLAY_LEN;
        let mut server = history[ack as usize];
        // 1 cm off the uncorrected path, alternating sides: the stored prediction is on the
        // other side (it was replayed from the previous, opposite offset), 2 cm away.
        server.position_m.y += if rep % 2 == 0 { 0.01 } else { -0.01 };
        let started = Instant::now();
        let outcome = predictor.reconcile(ack, &server);
        let elapsed = started.elapsed();
        predictor.advance_visual(rate.dt_s());
        match outcome {
            Ok(ReconcileOutcome::Corrected {
                replayed_inputs, ..
            }) if replayed_inputs == REPLAY_LEN as usize => {
                if rep >= warmup {
                    record_ns(&mut histogram, elapsed);
                    checked += 1;
                }
            }
            other => {
                return Err(format!(
                    "reconcile {rep}: expected a 10-input replay, got {other:?}"
                ));
            }
        }
    }
    Ok((histogram, checked))
}
