//! Helpers shared by the integration tests: players that steer like people.

use mmo_core::input::{Buttons, MoveInput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Seeded random walkers: each holds a direction for a while, turns, sometimes sprints,
/// jumps or stops.
pub struct Walkers {
    rng: ChaCha8Rng,
    current: Vec<MoveInput>,
}

impl Walkers {
    pub fn new(seed: u64, count: usize) -> Self {
        Walkers {
            rng: ChaCha8Rng::seed_from_u64(seed),
            current: vec![MoveInput::default(); count],
        }
    }

    pub fn next(&mut self, index: usize) -> MoveInput {
        if self.current.len() <= index {
            self.current.resize(index + 1, MoveInput::default());
        }
        if self.rng.random_bool(0.1) {
            let stop = self.rng.random_bool(0.1);
            let mut buttons = 0;
            if self.rng.random_bool(0.3) {
                buttons |= Buttons::SPRINT;
            }
            if self.rng.random_bool(0.05) {
                buttons |= Buttons::JUMP;
            }
            let (forward, right) = if stop {
                (0.0, 0.0)
            } else {
                (
                    self.rng.random_range(-1.0..=1.0),
                    self.rng.random_range(-1.0..=1.0),
                )
            };
            let yaw = self.rng.random_range(0.0..std::f32::consts::TAU);
            self.current[index] = MoveInput::from_controls(forward, right, yaw, Buttons(buttons));
        }
        self.current[index]
    }
}
