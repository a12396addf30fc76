//! Criterion benchmark of the C ABI's overhead: one client frame of prediction (push one
//! input, reconcile a confirmed ack 5 inputs back) through `mmo_predictor_*` (called from
//! Rust through the `mmo` rlib, exactly the code a C caller runs: panic guard, NULL checks,
//! conversions) against the same calls on `mmo_core::prediction::Predictor`. Target: the C
//! ABI within 1.2x of the Rust API. A third variant adds to the Rust path the input check
//! the C ABI makes by contract (`validate_input`, the server's check), to tell the cost of
//! that check from the cost of the boundary itself.
//!
//! `cargo bench -p mmo-bench --bench ffi_overhead`

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use glam::Vec3;
use mmo::predictor::{
    mmo_movement_config, mmo_prediction_config, mmo_predictor, mmo_predictor_free,
    mmo_predictor_new, mmo_predictor_push_input, mmo_predictor_reconcile, mmo_reconcile_outcome,
    mmo_reconcile_result,
};
use mmo::result::mmo_result;
use mmo::types::{mmo_character_state, mmo_move_input};
use mmo_core::entity::CharacterState;
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::movement::{self, MovementConfig};
use mmo_core::prediction::{PredictionConfig, Predictor, ReconcileOutcome};
use mmo_core::time::TickRate;
use mmo_core::validation::validate_input;

/// Inputs between the acknowledged one and the newest (about 150 ms of RTT at 30 Hz).
const LAG: u32 = 5;
/// Length of the ring of uncorrected states (a power of two well above the lag).
const PATH_LEN: usize = 64;

/// The input of tick `i`: walking in a circle, one degree per tick.
fn input_at(i: u32) -> MoveInput {
    let yaw = (i % 360) as f32 * (std::f32::consts::TAU / 360.0);
    MoveInput::from_controls(1.0, 0.0, yaw, Buttons::default())
}

/// What both fixtures share: the uncorrected path of states after each input (what the
/// server will confirm), computed outside the API under test, in the caller's state type.
struct Path<S> {
    movement: MovementConfig,
    dt_s: f32,
    last: CharacterState,
    ring: [S; PATH_LEN],
    i: u32,
}

impl<S: Copy + Default> Path<S> {
    fn new(convert: fn(&CharacterState) -> S) -> Self {
        let start = CharacterState::at(Vec3::ZERO);
        Path {
            movement: MovementConfig::default(),
            dt_s: TickRate::DEFAULT.dt_s(),
            last: start,
            ring: [convert(&start); PATH_LEN],
            i: 0,
        }
    }

    /// The next input; records the state after it under `seq = i + 1`.
    fn next(&mut self, convert: fn(&CharacterState) -> S) -> MoveInput {
        let input = input_at(self.i);
        self.i += 1;
        self.last = movement::step(&self.movement, &self.last, &input, self.dt_s);
        self.ring[self.i as usize % PATH_LEN] = convert(&self.last);
        input
    }

    fn at(&self, seq: u32) -> S {
        self.ring[seq as usize % PATH_LEN]
    }
}

fn same(s: &CharacterState) -> CharacterState {
    *s
}

fn to_c(s: &CharacterState) -> mmo_character_state {
    s.into()
}

/// The Rust API fixture.
struct RustFixture {
    predictor: Predictor,
    path: Path<CharacterState>,
}

impl RustFixture {
    fn new() -> Self {
        let mut f = RustFixture {
            predictor: Predictor::new(
                MovementConfig::default(),
                TickRate::DEFAULT,
                CharacterState::at(Vec3::ZERO),
                PredictionConfig::default(),
            )
            .expect("default configs are valid"),
            path: Path::new(same),
        };
        for _ in 0..LAG {
            let input = f.path.next(same);
            f.predictor.push_input(input);
        }
        f
    }

    /// One frame: push the next input, reconcile the confirmed state `LAG` inputs back.
    /// With `checked`, the input is first validated as `mmo_predictor_push_input` does by
    /// contract (the server's check), separating the cost of that check from the boundary's.
    fn frame(
        &mut self,
        checked: bool,
    ) -> Result<ReconcileOutcome, mmo_core::prediction::ReconcileError> {
        let input = self.path.next(same);
        if checked {
            validate_input(black_box(&input)).expect("valid input");
        }
        let seq = self.predictor.push_input(black_box(input));
        let ack = seq - LAG;
        let server = self.path.at(ack);
        self.predictor.reconcile(ack, black_box(&server))
    }
}

/// The C ABI fixture (owns the handle).
struct FfiFixture {
    predictor: *mut mmo_predictor,
    path: Path<mmo_character_state>,
}

impl FfiFixture {
    fn new() -> Self {
        let movement = mmo_movement_config::from(&MovementConfig::default());
        let config = mmo_prediction_config {
            tick_rate_hz: TickRate::DEFAULT.hz(),
            history_len: PredictionConfig::default().history_len as u32,
            correction_half_life_s: PredictionConfig::default().correction_half_life_s,
            snap_distance_m: PredictionConfig::default().snap_distance_m,
        };
        let initial = to_c(&CharacterState::at(Vec3::ZERO));
        let mut predictor = std::ptr::null_mut();
        // SAFETY: pointers to live locals; `predictor` receives an owned handle.
        let code = unsafe {
            mmo_predictor_new(
                &movement,
                std::ptr::null(),
                0,
                &config,
                &initial,
                &mut predictor,
            )
        };
        assert_eq!(code, mmo_result::Ok);
        let mut f = FfiFixture {
            predictor,
            path: Path::new(to_c),
        };
        for _ in 0..LAG {
            let input = mmo_move_input::from(f.path.next(to_c));
            let mut seq = 0;
            // SAFETY: live handle and locals.
            let code = unsafe { mmo_predictor_push_input(f.predictor, &input, &mut seq) };
            assert_eq!(code, mmo_result::Ok);
        }
        f
    }

    /// One frame, as a C caller writes it.
    fn frame(&mut self) -> (mmo_result, mmo_reconcile_result) {
        let input = mmo_move_input::from(self.path.next(to_c));
        let mut seq = 0u32;
        let mut result = mmo_reconcile_result {
            outcome: mmo_reconcile_outcome::Stale,
            replayed_inputs: 0,
            position_error_m: 0.0,
            snapped: 0,
        };
        // SAFETY: live handle and locals.
        let pushed =
            unsafe { mmo_predictor_push_input(self.predictor, black_box(&input), &mut seq) };
        debug_assert_eq!(pushed, mmo_result::Ok);
        let ack = seq - LAG;
        let server = self.path.at(ack);
        // SAFETY: live handle and locals.
        let code = unsafe {
            mmo_predictor_reconcile(self.predictor, ack, black_box(&server), &mut result)
        };
        (code, result)
    }
}

impl Drop for FfiFixture {
    fn drop(&mut self) {
        // SAFETY: the handle came from `mmo_predictor_new` and is freed once.
        unsafe { mmo_predictor_free(self.predictor) };
    }
}

fn push_and_reconcile(c: &mut Criterion) {
    // Both paths must do the same work: same outcomes on the same inputs.
    let (mut r, mut f) = (RustFixture::new(), FfiFixture::new());
    for _ in 0..100 {
        assert_eq!(r.frame(true), Ok(ReconcileOutcome::Confirmed));
        let (code, result) = f.frame();
        assert_eq!(code, mmo_result::Ok);
        assert_eq!(result.outcome, mmo_reconcile_outcome::Confirmed);
    }

    let mut group = c.benchmark_group("ffi_overhead push_input + reconcile (confirmed)");
    let mut rust = RustFixture::new();
    group.bench_function("rust api", |b| {
        b.iter(|| black_box(rust.frame(false)));
    });
    let mut checked = RustFixture::new();
    group.bench_function("rust api + validate_input", |b| {
        b.iter(|| black_box(checked.frame(true)));
    });
    let mut ffi = FfiFixture::new();
    group.bench_function("c abi", |b| {
        b.iter(|| black_box(ffi.frame()));
    });
    group.finish();
}

/// Criterion's generated group function (`criterion_group!` emits an undocumented `pub fn`).
mod harness {
    #![allow(missing_docs)]
    use super::push_and_reconcile;
    criterion::criterion_group!(benches, push_and_reconcile);
}
criterion_main!(harness::benches);
