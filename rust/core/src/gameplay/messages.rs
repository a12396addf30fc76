//! The gameplay messages of the control stream: ability and inventory requests from the
//! client, and the server's answers and events (results, the owner's resources and
//! inventory, combat events). They travel inside [`crate::control::ClientControl`] and
//! [`crate::control::ServerControl`] and are specified in `codec/WIRE_FORMAT.md` §7.
//!
//! The client never decides: every request carries a client-chosen `request` number that the
//! server's result echoes, and the state the client shows (inventory, pools, cooldowns) is
//! what the server last sent. Positions and directions are plain `[f32; 3]` metres so the
//! byte layout is obvious; the server refuses non-finite values.

use serde::{Deserialize, Serialize};

use crate::entity::EntityId;
use crate::gameplay::content::{AbilityId, PoolId};
use crate::gameplay::inventory::{EquipSlot, Inventory, ItemStack};
use crate::time::Tick;

/// Longest rejection `kind` label, bytes.
pub const MAX_KIND_LEN_BYTES: usize = 64;

/// Longest rejection message, bytes.
pub const MAX_MESSAGE_LEN_BYTES: usize = 512;

/// Most combat events in one [`crate::control::ServerControl::Combat`] message.
pub const MAX_COMBAT_EVENTS: usize = 64;

/// What an ability is aimed at, as sent by the client.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum WireTarget {
    /// The caster.
    SelfTarget,
    /// Another entity.
    Entity(EntityId),
    /// A point on the ground, metres.
    GroundPoint([f32; 3]),
    /// A direction from the caster (need not be normalised).
    Direction([f32; 3]),
}

/// `ServerExecuteAbility`: the client asks to use an ability.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AbilityRequest {
    /// Chosen by the client, echoed in the result.
    pub request: u32,
    /// Which ability.
    pub ability: AbilityId,
    /// At what.
    pub target: WireTarget,
    /// The server tick the client was rendering remote entities at when the player acted
    /// (its interpolation render time): lag compensation rewinds targets to
    /// `view_tick + view_fraction`, within the server's rewind clamp.
    pub view_tick: Tick,
    /// Fraction of a tick after `view_tick`, `[0, 1)`.
    pub view_fraction: f32,
}

/// An inventory operation on the requesting player's own inventory. Slots are bag slot
/// indices. [`InventoryOp::Give`] also reaches another player's bag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InventoryOp {
    /// Move a whole stack to an empty slot.
    Move {
        /// Source slot.
        from: u32,
        /// Empty destination slot.
        to: u32,
    },
    /// Move part of a stack to an empty slot.
    Split {
        /// Source slot.
        from: u32,
        /// Empty destination slot.
        to: u32,
        /// Items to move, less than the stack.
        quantity: u32,
    },
    /// Put as much of one stack onto another of the same item as fits.
    Merge {
        /// Source slot.
        from: u32,
        /// Destination slot.
        to: u32,
    },
    /// Exchange two slots.
    Swap {
        /// One slot.
        a: u32,
        /// The other.
        b: u32,
    },
    /// Remove items (destroyed; there is no loot on the ground yet).
    Drop {
        /// The slot.
        slot: u32,
        /// How many.
        quantity: u32,
    },
    /// Consume one usable item (its `heal` property heals).
    Use {
        /// The slot.
        slot: u32,
    },
    /// Wear the item in `slot` (what was worn goes to `slot`).
    Equip {
        /// The bag slot.
        slot: u32,
    },
    /// Take off what is worn in `slot` into bag slot `to`.
    Unequip {
        /// The equipment slot.
        slot: EquipSlot,
        /// The bag slot.
        to: u32,
    },
    /// Give items to another player nearby (the server's limit is 5 m): placed in the
    /// receiver's bag as loot is. With a character store, the result arrives only once the
    /// store committed both characters in one transaction.
    Give {
        /// The giver's bag slot.
        slot: u32,
        /// How many.
        quantity: u32,
        /// The receiver's entity (a player character).
        to: EntityId,
    },
}

impl InventoryOp {
    /// Stable `snake_case` name for logs.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            InventoryOp::Move { .. } => "move",
            InventoryOp::Split { .. } => "split",
            InventoryOp::Merge { .. } => "merge",
            InventoryOp::Swap { .. } => "swap",
            InventoryOp::Drop { .. } => "drop",
            InventoryOp::Use { .. } => "use",
            InventoryOp::Equip { .. } => "equip",
            InventoryOp::Unequip { .. } => "unequip",
            InventoryOp::Give { .. } => "give",
        }
    }
}

/// An inventory request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryRequest {
    /// Chosen by the client, echoed in the result.
    pub request: u32,
    /// What to do.
    pub op: InventoryOp,
}

/// Why a request was refused: a stable `snake_case` kind (the label of
/// `validation_rejections_total`, e.g. `ability_cooldown`, `inventory_bad_slot`) and a
/// message naming the problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Stable kind, at most [`MAX_KIND_LEN_BYTES`].
    pub kind: String,
    /// Human-readable detail, at most [`MAX_MESSAGE_LEN_BYTES`].
    pub message: String,
}

/// The server's answer to an [`AbilityRequest`]. Cooldowns are the time left when the
/// server decided, so the client can reconcile its own countdown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AbilityResult {
    /// The request's number.
    pub request: u32,
    /// The ability asked for.
    pub ability: AbilityId,
    /// `None` when the cast started; the refusal otherwise.
    pub refusal: Option<Refusal>,
    /// Cast time left, ms (0 for instant abilities and refusals).
    pub cast_ms: u32,
    /// Global cooldown left, ms.
    pub global_cooldown_ms: u32,
    /// This ability's cooldown left, ms.
    pub cooldown_ms: u32,
}

/// The server's answer to an [`InventoryRequest`]. On success a
/// [`crate::control::ServerControl::Inventory`] with the new contents precedes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InventoryResult {
    /// The request's number.
    pub request: u32,
    /// `None` when applied; the refusal otherwise (nothing changed).
    pub refusal: Option<Refusal>,
}

/// The owner's whole inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryView {
    /// Bag slots in order; `None` = empty.
    pub bag: Vec<Option<ItemStack>>,
    /// Equipment, indexed by [`EquipSlot::index`] (always [`EquipSlot::ALL`]`.len()` long).
    pub equipped: Vec<Option<ItemStack>>,
}

impl InventoryView {
    /// The view of `inventory`.
    #[must_use]
    pub fn of(inventory: &Inventory) -> Self {
        InventoryView {
            bag: (0..inventory.bag_slots())
                .map(|s| inventory.bag_slot(s).cloned())
                .collect(),
            equipped: EquipSlot::ALL
                .iter()
                .map(|s| inventory.equipped(*s).cloned())
                .collect(),
        }
    }
}

/// One pool's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolValue {
    /// Which pool.
    pub pool: PoolId,
    /// Current points.
    pub current: u32,
    /// Maximum points.
    pub max: u32,
}

/// The owner's pools, sent whenever a whole point changes (at most once per tick).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceView {
    /// Every pool of the content, in pool order.
    pub pools: Vec<PoolValue>,
    /// True while dead.
    pub dead: bool,
    /// While dead: time until the respawn, ms.
    pub respawn_in_ms: u32,
}

/// What happened in a combat event.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum CombatEventKind {
    /// Health removed.
    Damage {
        /// Points.
        amount: u32,
    },
    /// Health restored.
    Heal {
        /// Points.
        amount: u32,
    },
    /// The target died.
    Died,
    /// A damage over time effect started.
    DotApplied {
        /// Ticks to come.
        ticks: u32,
    },
    /// The target is slowed.
    Slowed {
        /// Speed multiplier.
        factor: f32,
        /// For how long, ms.
        duration_ms: u32,
    },
    /// The target was pushed away.
    KnockedBack {
        /// Distance, metres.
        distance_m: f32,
    },
    /// The target came back to life.
    Respawned,
}

/// A combat event, sent reliably to the caster, the target and the observers near the
/// target (Critical priority: the target's snapshot record is sent first that tick).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CombatEvent {
    /// Server tick it happened.
    pub tick: Tick,
    /// Who caused it (the target itself for respawns and item use).
    pub source: EntityId,
    /// Who it happened to.
    pub target: EntityId,
    /// Which ability (`None` for respawns and items).
    pub ability: Option<AbilityId>,
    /// What happened.
    pub kind: CombatEventKind,
    /// The target's health after it, points.
    pub target_health: u32,
    /// The target's maximum health, points.
    pub target_health_max: u32,
}
