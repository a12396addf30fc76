//! The seed's bot scenario, one iteration at a time: pick a direction and walk, every 10th
//! iteration use an ability, every 20th open the inventory, and fill the rest of the
//! iteration with idle inputs.
//!
//! Abilities and the inventory are no-ops for now (the gameplay messages do not exist
//! yet): the bot only counts how often it would have asked, and the report shows those
//! counts as `abilities_requested` and `inventory_opens`.

use std::f32::consts::TAU;
use std::time::Duration;

use mmo_core::input::{Buttons, MoveInput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Every this many iterations a bot "uses an ability" (the 10th, 20th, ...).
pub const ABILITY_EVERY: u32 = 10;
/// Every this many iterations a bot "opens the inventory" (the 20th, 40th, ...).
pub const INVENTORY_EVERY: u32 = 20;
/// The share of an iteration spent walking; the rest is idle inputs.
pub const WALK_FRACTION: f64 = 0.5;

/// What a bot does in one iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IterationPlan {
    /// The walking input (full forward, facing a random yaw).
    pub walk: MoveInput,
    /// How long to walk from the start of the iteration.
    pub walk_for: Duration,
    /// Whether to request an ability (a no-op, counted).
    pub use_ability: bool,
    /// Whether to open the inventory (a no-op, counted).
    pub open_inventory: bool,
}

/// One bot's sequence of iterations, reproducible from the run's seed and the bot index.
#[derive(Debug)]
pub struct Scenario {
    rng: ChaCha8Rng,
    iteration: Duration,
}

impl Scenario {
    /// The scenario of bot `bot_index` in a run seeded with `seed`; each iteration lasts
    /// `iteration`.
    #[must_use]
    pub fn new(seed: u64, bot_index: usize, iteration: Duration) -> Self {
        Scenario {
            rng: ChaCha8Rng::seed_from_u64(seed ^ bot_index as u64),
            iteration,
        }
    }

    /// The plan of iteration `index` (0-based). Call once per iteration, in order.
    pub fn plan(&mut self, index: u32) -> IterationPlan {
        let yaw_rad = self.rng.random_range(0.0..TAU);
        let number = index + 1;
        IterationPlan {
            walk: MoveInput::from_controls(1.0, 0.0, yaw_rad, Buttons::default()),
            walk_for: self.iteration.mul_f64(WALK_FRACTION),
            use_ability: number.is_multiple_of(ABILITY_EVERY),
            open_inventory: number.is_multiple_of(INVENTORY_EVERY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hundred_iterations_request_ten_abilities_and_five_inventories() {
        let mut s = Scenario::new(7, 3, Duration::from_secs(1));
        let plans: Vec<IterationPlan> = (0..100).map(|i| s.plan(i)).collect();
        assert_eq!(plans.iter().filter(|p| p.use_ability).count(), 10);
        assert_eq!(plans.iter().filter(|p| p.open_inventory).count(), 5);
        assert!(plans[9].use_ability && !plans[9].open_inventory);
        assert!(plans[19].use_ability && plans[19].open_inventory);
        assert_eq!(plans[0].walk_for, Duration::from_millis(500));
        assert!(plans[0].walk.forward() > 0.99);
    }

    #[test]
    fn the_same_seed_and_bot_give_the_same_walk() {
        let walks = |seed, bot| {
            let mut s = Scenario::new(seed, bot, Duration::from_secs(1));
            (0..5).map(|i| s.plan(i).walk).collect::<Vec<_>>()
        };
        assert_eq!(walks(1, 2), walks(1, 2));
        assert_ne!(walks(1, 2), walks(1, 3));
    }
}
