//! Priority categories, the per-client priority accumulator and the send order.
//!
//! Every tick an entity stays in a client's area of interest, its accumulator grows by
//! `category weight × tier priority_weight` (integers, so the order is exactly reproducible;
//! see `tiers.rs` for why the tier weight is separate from the tier rate); it is
//! reset to zero when the entity is sent. An entity that the byte budget keeps out keeps
//! growing until it outranks the ones that were just sent, which is what makes the scheme
//! starvation-free.
//!
//! The planner (`client_view.rs`) does not store or increment accumulators: it computes
//! `category weight × tier weight × ticks since the last send` (one tick at entering) as a
//! `u64`, only for the queue fronts it compares, and does not saturate. [`accumulate`] and
//! [`send_order_key`] describe the same order for callers and tests (with saturation at
//! [`ACCUMULATOR_MAX`]).
//!
//! Send order: [`PriorityCategory::Critical`] entities first (they are meant for a handful
//! of entities such as the client's current target or a boss), then by accumulated priority,
//! highest first, ties broken by ascending [`EntityId`]. The three keys are packed into one
//! `u64` so a per-client sort is a plain integer sort.

use serde::{Deserialize, Serialize};

use crate::entity::EntityId;

/// How important an entity is to replicate, independent of distance.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[repr(u8)]
pub enum PriorityCategory {
    /// Always eligible (ignores the distance tier's interval) and always ordered before the
    /// other categories. Use sparingly: if Critical entities alone fill the byte budget,
    /// the others wait.
    Critical = 0,
    /// Combat-relevant entities: other players, aggressive NPCs, projectiles.
    High = 1,
    /// Ordinary NPCs and interactive objects.
    #[default]
    Medium = 2,
    /// Ambient and cosmetic entities.
    Low = 3,
}

impl PriorityCategory {
    /// All categories, most important first.
    pub const ALL: [PriorityCategory; 4] = [
        PriorityCategory::Critical,
        PriorityCategory::High,
        PriorityCategory::Medium,
        PriorityCategory::Low,
    ];

    /// The base weight: the accumulator grows by `base_weight() × tier priority_weight` per
    /// tick.
    /// Critical 8, High 4, Medium 2, Low 1.
    #[must_use]
    pub const fn base_weight(self) -> u32 {
        match self {
            PriorityCategory::Critical => 8,
            PriorityCategory::High => 4,
            PriorityCategory::Medium => 2,
            PriorityCategory::Low => 1,
        }
    }

    /// The category with numeric value `raw` (as sent through the C ABI), or `None`.
    #[must_use]
    pub const fn from_u8(raw: u8) -> Option<Self> {
        match raw {
            0 => Some(PriorityCategory::Critical),
            1 => Some(PriorityCategory::High),
            2 => Some(PriorityCategory::Medium),
            3 => Some(PriorityCategory::Low),
            _ => None,
        }
    }
}

/// Largest accumulator value; accumulation saturates here (at the default near weight of
/// 1000, after about 5 hours of a High entity never being sent; at the largest allowed
/// weight, after about 15 minutes of a Critical one, which is always sent first anyway).
/// Saturated entities tie and fall back to the id order.
pub const ACCUMULATOR_MAX: u32 = (1 << 31) - 1;

/// The accumulator after `elapsed_ticks` more ticks in `category` and a tier of
/// `tier_weight` (its priority weight).
#[must_use]
#[inline]
pub fn accumulate(
    accumulator: u32,
    category: PriorityCategory,
    tier_weight: u32,
    elapsed_ticks: u32,
) -> u32 {
    let growth =
        u64::from(category.base_weight()) * u64::from(tier_weight) * u64::from(elapsed_ticks);
    (u64::from(accumulator) + growth).min(u64::from(ACCUMULATOR_MAX)) as u32
}

/// Packs the send order into one integer: ascending order of the key is the send order
/// (Critical first, then higher accumulator first, then lower id first).
#[must_use]
#[inline]
pub fn send_order_key(id: EntityId, category: PriorityCategory, accumulator: u32) -> u64 {
    let not_critical = u64::from(category != PriorityCategory::Critical);
    let inverted = u64::from(ACCUMULATOR_MAX - accumulator.min(ACCUMULATOR_MAX));
    (not_critical << 63) | (inverted << 32) | u64::from(id.0)
}

/// The entity id stored in a key made by [`send_order_key`].
#[must_use]
#[inline]
pub fn key_entity(key: u64) -> EntityId {
    EntityId(key as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_orders_critical_then_priority_then_id() {
        let crit_low_acc = send_order_key(EntityId(9), PriorityCategory::Critical, 0);
        let high_acc = send_order_key(EntityId(1), PriorityCategory::Low, ACCUMULATOR_MAX);
        let mid_acc_a = send_order_key(EntityId(2), PriorityCategory::High, 500);
        let mid_acc_b = send_order_key(EntityId(3), PriorityCategory::Medium, 500);
        let mut keys = vec![mid_acc_b, high_acc, mid_acc_a, crit_low_acc];
        keys.sort_unstable();
        let ids: Vec<u32> = keys.into_iter().map(|k| key_entity(k).0).collect();
        assert_eq!(ids, vec![9, 1, 2, 3]);
    }

    #[test]
    fn accumulation_saturates() {
        assert_eq!(accumulate(0, PriorityCategory::High, 10, 3), 120);
        assert_eq!(
            accumulate(ACCUMULATOR_MAX - 1, PriorityCategory::Critical, 30, 1000),
            ACCUMULATOR_MAX
        );
    }

    #[test]
    fn raw_values_round_trip() {
        for c in PriorityCategory::ALL {
            assert_eq!(PriorityCategory::from_u8(c as u8), Some(c));
        }
        assert_eq!(PriorityCategory::from_u8(4), None);
    }
}
