//! "Allocates nothing per frame after warm-up", checked through the C ABI: a counting global
//! allocator (this test binary only) counts the allocations made on the test thread while it
//! runs thousands of client frames through the exported `mmo_*` functions, and requires
//! zero. Not timed.
//!
//! A frame is what the game thread calls every tick: push an input, reconcile the snapshot's
//! ack (mostly confirmed, a correction every 16th frame), advance and read the visual offset,
//! copy the unacknowledged inputs for the input datagram, and push + sample one remote
//! entity's interpolator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use glam::Vec3;
use mmo::interpolator::{
    mmo_interp_output, mmo_interpolation_config, mmo_interpolation_config_default,
    mmo_interpolator, mmo_interpolator_free, mmo_interpolator_new, mmo_interpolator_push,
    mmo_interpolator_sample,
};
use mmo::predictor::{
    mmo_movement_config, mmo_movement_config_default, mmo_prediction_config,
    mmo_prediction_config_default, mmo_predictor, mmo_predictor_advance_visual, mmo_predictor_free,
    mmo_predictor_new, mmo_predictor_push_input, mmo_predictor_reconcile,
    mmo_predictor_render_position, mmo_predictor_unacked_inputs, mmo_reconcile_outcome,
    mmo_reconcile_result,
};
use mmo::result::mmo_result;
use mmo::types::{mmo_character_state, mmo_move_input, mmo_vec3};
use mmo_core::entity::CharacterState;
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::movement::{self, MovementConfig};
use mmo_core::time::TickRate;

/// Counts allocations (and reallocations) made by threads that opted in.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: thread-locals may be gone while a thread shuts down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every method forwards to the system allocator unchanged; the counters are
// const-initialised thread-locals without destructors, so touching them never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread while running `f`.
fn allocations_during(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    COUNT.with(Cell::get)
}

/// Inputs between the acknowledged one and the newest.
const LAG: u32 = 5;
const TICK_US: u64 = 33_333;

struct Client {
    predictor: *mut mmo_predictor,
    remote: *mut mmo_interpolator,
    movement: MovementConfig,
    dt_s: f32,
    /// Uncorrected states after each input (what the server confirms), by `seq % 64`.
    path: [CharacterState; 64],
    last: CharacterState,
    frame: u32,
}

impl Client {
    fn new() -> Self {
        let mut movement = std::mem::MaybeUninit::<mmo_movement_config>::uninit();
        let mut config = std::mem::MaybeUninit::<mmo_prediction_config>::uninit();
        let mut interp = std::mem::MaybeUninit::<mmo_interpolation_config>::uninit();
        let initial = mmo_character_state::from(&CharacterState::at(Vec3::ZERO));
        let (mut predictor, mut remote) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: pointers to live locals; the handles are owned by the returned value.
        unsafe {
            assert_eq!(
                mmo_movement_config_default(movement.as_mut_ptr()),
                mmo_result::Ok
            );
            assert_eq!(
                mmo_prediction_config_default(config.as_mut_ptr()),
                mmo_result::Ok
            );
            assert_eq!(
                mmo_interpolation_config_default(interp.as_mut_ptr()),
                mmo_result::Ok
            );
            assert_eq!(
                mmo_predictor_new(
                    movement.as_ptr(),
                    std::ptr::null(),
                    0,
                    config.as_ptr(),
                    &initial,
                    &mut predictor
                ),
                mmo_result::Ok
            );
            assert_eq!(
                mmo_interpolator_new(interp.as_ptr(), &mut remote),
                mmo_result::Ok
            );
        }
        Client {
            predictor,
            remote,
            movement: MovementConfig::default(),
            dt_s: TickRate::DEFAULT.dt_s(),
            path: [CharacterState::at(Vec3::ZERO); 64],
            last: CharacterState::at(Vec3::ZERO),
            frame: 0,
        }
    }

    /// One game-thread frame through the C ABI.
    fn frame(&mut self) {
        let i = self.frame;
        self.frame += 1;
        let yaw = (i % 360) as f32 * (std::f32::consts::TAU / 360.0);
        let input = MoveInput::from_controls(1.0, 0.0, yaw, Buttons::default());
        self.last = movement::step(&self.movement, &self.last, &input, self.dt_s);
        let c_input = mmo_move_input::from(input);
        let mut seq = 0u32;
        let mut result = std::mem::MaybeUninit::<mmo_reconcile_result>::uninit();
        let mut offset = mmo_vec3::default();
        let mut unacked = [mmo_move_input::default(); 16];
        let (mut count, mut first) = (0usize, 0u32);
        let mut outcome = std::mem::MaybeUninit::uninit();
        let mut drawn = std::mem::MaybeUninit::<mmo_interp_output>::uninit();
        // SAFETY: live handles and locals.
        unsafe {
            assert_eq!(
                mmo_predictor_push_input(self.predictor, &c_input, &mut seq),
                mmo_result::Ok
            );
            self.path[seq as usize % 64] = self.last;
            if seq > LAG {
                let ack = seq - LAG;
                let mut server = mmo_character_state::from(&self.path[ack as usize % 64]);
                let corrected = i.is_multiple_of(16);
                if corrected {
                    server.position_m.y += 0.02;
                }
                assert_eq!(
                    mmo_predictor_reconcile(self.predictor, ack, &server, result.as_mut_ptr()),
                    mmo_result::Ok
                );
                // Moving the server state 2 cm makes this frame a correction (and the next
                // ack, back on the uncorrected path, corrects back): replays run too.
                let outcome = result.assume_init().outcome;
                if corrected {
                    assert_eq!(outcome, mmo_reconcile_outcome::Corrected);
                } else {
                    assert_ne!(outcome, mmo_reconcile_outcome::Stale);
                }
            }
            assert_eq!(
                mmo_predictor_advance_visual(self.predictor, self.dt_s),
                mmo_result::Ok
            );
            assert_eq!(
                mmo_predictor_render_position(self.predictor, &mut offset),
                mmo_result::Ok
            );
            assert_eq!(
                mmo_predictor_unacked_inputs(
                    self.predictor,
                    unacked.as_mut_ptr(),
                    unacked.len(),
                    &mut count,
                    &mut first
                ),
                mmo_result::Ok
            );
            let server_time = 1_000_000 + u64::from(i) * TICK_US;
            let remote_pos = mmo_vec3 {
                x: i as f32 * 0.2,
                y: 3.0,
                z: 0.0,
            };
            assert_eq!(
                mmo_interpolator_push(
                    self.remote,
                    server_time,
                    server_time + 50_000,
                    &remote_pos,
                    0.0,
                    outcome.as_mut_ptr()
                ),
                mmo_result::Ok
            );
            assert_eq!(
                mmo_interpolator_sample(self.remote, server_time + 50_000, drawn.as_mut_ptr()),
                mmo_result::Ok
            );
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // SAFETY: handles from their `_new`, freed once.
        unsafe {
            mmo_predictor_free(self.predictor);
            mmo_interpolator_free(self.remote);
        }
    }
}

#[test]
fn counting_allocator_sees_allocations() {
    // The harness itself works: a Vec on this thread is counted.
    let n = allocations_during(|| {
        let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
        std::hint::black_box(&v);
    });
    assert_eq!(n, 1);
}

#[test]
fn c_abi_frames_allocate_nothing_after_warm_up() {
    let mut client = Client::new();
    // Warm-up: fills the interpolator's buffer and anything sized on first use.
    for _ in 0..500 {
        client.frame();
    }
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            client.frame();
        }
    });
    assert_eq!(n, 0, "{n} allocations in 10,000 frames through the C ABI");
}
