//! Criterion microbenchmarks of `mmo_core::prediction::Predictor`: what a client pays per
//! frame when the server agrees (push one input, reconcile a confirmed ack 5 inputs back),
//! and a reconcile that disagrees and replays 10 inputs.
//!
//! `cargo bench -p mmo-bench --bench prediction`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_main};
use glam::Vec3;
use mmo_core::entity::CharacterState;
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::movement::{self, MovementConfig};
use mmo_core::prediction::{PredictionConfig, Predictor, ReconcileOutcome};
use mmo_core::time::TickRate;

/// Inputs between the acknowledged one and the newest in the confirmed case (about 150 ms
/// of RTT at 30 Hz).
const CONFIRMED_LAG: u32 = 5;
/// Inputs replayed in the corrected case.
const REPLAY_LEN: u32 = 10;

/// Length of the ring of uncorrected states (a power of two well above the lags used).
const PATH_LEN: usize = 64;

/// A predictor plus the uncorrected path of states after each input, in a ring indexed by
/// `seq % PATH_LEN` (criterion runs millions of iterations; the ring keeps memory flat).
struct Fixture {
    movement: MovementConfig,
    dt_s: f32,
    predictor: Predictor,
    path: [CharacterState; PATH_LEN],
    i: u32,
}

impl Fixture {
    fn new() -> Self {
        let rate = TickRate::DEFAULT;
        let start = CharacterState::at(Vec3::ZERO);
        Fixture {
            movement: MovementConfig::default(),
            dt_s: rate.dt_s(),
            predictor: Predictor::new(
                MovementConfig::default(),
                rate,
                start,
                PredictionConfig::default(),
            )
            .expect("default configs are valid"),
            path: [start; PATH_LEN],
            i: 0,
        }
    }

    /// Pushes the next input (walking in a circle, one degree per tick); returns its seq.
    fn push(&mut self) -> u32 {
        let yaw = (self.i % 360) as f32 * (std::f32::consts::TAU / 360.0);
        self.i += 1;
        let input = MoveInput::from_controls(1.0, 0.0, yaw, Buttons::default());
        let seq = self.predictor.push_input(black_box(input));
        let last = self.path[(seq as usize - 1) % PATH_LEN];
        self.path[seq as usize % PATH_LEN] =
            movement::step(&self.movement, &last, &input, self.dt_s);
        seq
    }

    /// The uncorrected state after input `seq` (one of the last `PATH_LEN`).
    fn path_at(&self, seq: u32) -> CharacterState {
        self.path[seq as usize % PATH_LEN]
    }
}

fn confirmed_frame(c: &mut Criterion) {
    let mut f = Fixture::new();
    for _ in 0..CONFIRMED_LAG {
        f.push();
    }
    c.bench_function("push_input + reconcile (confirmed, ack 5 behind)", |b| {
        b.iter(|| {
            let seq = f.push();
            let ack = seq - CONFIRMED_LAG;
            let server = f.path_at(ack);
            let outcome = f.predictor.reconcile(ack, black_box(&server));
            debug_assert_eq!(outcome, Ok(ReconcileOutcome::Confirmed));
            black_box(outcome)
        });
    });
}

fn corrected_replay(c: &mut Criterion) {
    let mut f = Fixture::new();
    for _ in 0..REPLAY_LEN {
        f.push();
    }
    let mut rep = 0u64;
    c.bench_function("reconcile (corrected, replays 10 inputs)", |b| {
        // Only the reconcile is timed; pushing the next input is setup.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let seq = f.push();
                let ack = seq - REPLAY_LEN;
                let mut server = f.path_at(ack);
                // Alternating 1 cm offsets: the stored prediction was replayed from the
                // previous (opposite) offset, so it always mismatches.
                rep += 1;
                server.position_m.y += if rep.is_multiple_of(2) { 0.01 } else { -0.01 };
                let started = Instant::now();
                let outcome = f.predictor.reconcile(ack, black_box(&server));
                total += started.elapsed();
                debug_assert!(matches!(
                    outcome,
                    Ok(ReconcileOutcome::Corrected {
                        replayed_inputs: 10,
                        ..
                    })
                ));
                black_box(outcome).ok();
                f.predictor.advance_visual(f.dt_s);
            }
            total
        });
    });
}

/// Criterion's generated group function (`criterion_group!` emits an undocumented `pub fn`).
mod harness {
    #![allow(missing_docs)]
    use super::{confirmed_frame, corrected_replay};
    criterion::criterion_group!(benches, confirmed_frame, corrected_replay);
}
criterion_main!(harness::benches);
