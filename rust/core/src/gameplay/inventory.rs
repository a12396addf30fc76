//! Inventory rules (issue 5): bag slots, equipment slots and the validated operations a
//! client may request on them, sans-IO and authoritative on the server.
//!
//! The rules are independent of the content loader: the caller supplies per-item
//! [`ItemRules`] (max stack, equipment slot, usable) through an [`ItemCatalog`] (implemented
//! here for `BTreeMap` / `HashMap` of rules; the content module implements it for its
//! definitions).
//!
//! Every operation is validated first and applied only when valid: on any error the
//! inventory is unchanged (atomic), and the error is a typed [`InventoryError`] whose
//! [`InventoryError::kind`] has a stable `snake_case` name for metrics. Slot indices and
//! quantities come from clients and are never trusted: out-of-range indices, a quantity of 0
//! or `u32::MAX` give an error, never a panic.
//!
//! Item conservation: only [`Inventory::use_item`] (one item), [`Inventory::drop_item`] (the
//! returned stack) and [`Inventory::add`] (loot) change how many items exist; [`give`] moves
//! items between two inventories and conserves their sum; every other operation only moves
//! items around inside one inventory.
//!
//! Scope: move, split, merge, swap, drop, use and give act on bag slots; equipment is
//! reached only through [`Inventory::equip`] / [`Inventory::unequip`] (a worn item must be
//! unequipped before it is dropped, used or given). Equipping moves the whole stack.
//!
//! Persistence lists stacks with [`Inventory::occupied_slots`] and restores them with
//! [`Inventory::place`] (the zone's `persistence` module converts to and from records).
//!
//! Not done yet: weight / currency limits.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

use serde::{Deserialize, Serialize};

/// Identifies an item definition (its kind, not one instance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemId(pub u32);

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "item {}", self.0)
    }
}

/// An equipment slot of a character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EquipSlot {
    /// Helmet, hat.
    Head,
    /// Body armour.
    Chest,
    /// Trousers, leg armour.
    Legs,
    /// Boots.
    Feet,
    /// Gloves.
    Hands,
    /// Weapon in the main hand.
    MainHand,
    /// Shield or second weapon.
    OffHand,
    /// Necklace, amulet.
    Neck,
    /// A ring.
    Ring,
}

impl EquipSlot {
    /// Every slot, in declaration order ([`EquipSlot::index`] is the position here).
    pub const ALL: [EquipSlot; 9] = [
        EquipSlot::Head,
        EquipSlot::Chest,
        EquipSlot::Legs,
        EquipSlot::Feet,
        EquipSlot::Hands,
        EquipSlot::MainHand,
        EquipSlot::OffHand,
        EquipSlot::Neck,
        EquipSlot::Ring,
    ];

    /// Stable `snake_case` name (content files, logs). Never changes once released.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EquipSlot::Head => "head",
            EquipSlot::Chest => "chest",
            EquipSlot::Legs => "legs",
            EquipSlot::Feet => "feet",
            EquipSlot::Hands => "hands",
            EquipSlot::MainHand => "main_hand",
            EquipSlot::OffHand => "off_hand",
            EquipSlot::Neck => "neck",
            EquipSlot::Ring => "ring",
        }
    }

    /// Position of this slot in [`EquipSlot::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The slot named `s` (its [`EquipSlot::as_str`]), if any.
    #[must_use]
    pub fn parse(s: &str) -> Option<EquipSlot> {
        EquipSlot::ALL.into_iter().find(|slot| slot.as_str() == s)
    }
}

impl fmt::Display for EquipSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the inventory needs to know about one item definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRules {
    /// Most items one slot may hold. Invariant: `>= 1` (`1` = not stackable); rules with
    /// `0` are refused with [`InventoryError::BadItemRules`].
    pub max_stack: u32,
    /// The one equipment slot this item may be worn in; `None` = not equippable.
    pub equip_slot: Option<EquipSlot>,
    /// Whether [`Inventory::use_item`] may consume it.
    pub usable: bool,
}

/// Looks up the [`ItemRules`] of an item. The content module implements it for its loaded
/// definitions; maps of rules implement it for tests and tools.
pub trait ItemCatalog {
    /// The rules of `item`, or `None` if the item is unknown.
    fn rules(&self, item: ItemId) -> Option<ItemRules>;
}

impl ItemCatalog for BTreeMap<ItemId, ItemRules> {
    fn rules(&self, item: ItemId) -> Option<ItemRules> {
        self.get(&item).copied()
    }
}

impl<S: BuildHasher> ItemCatalog for HashMap<ItemId, ItemRules, S> {
    fn rules(&self, item: ItemId) -> Option<ItemRules> {
        self.get(&item).copied()
    }
}

/// Some quantity of one item, with per-instance properties (durability, enchantments, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ItemStack {
    /// Which item.
    pub item: ItemId,
    /// How many. Invariant inside an [`Inventory`]: `1..=max_stack` of the item.
    pub quantity: u32,
    /// Per-instance properties. Stacks merge only when their properties are equal.
    pub properties: BTreeMap<String, String>,
}

impl ItemStack {
    /// A stack of `quantity` × `item` without properties.
    #[must_use]
    pub fn new(item: ItemId, quantity: u32) -> Self {
        ItemStack {
            item,
            quantity,
            properties: BTreeMap::new(),
        }
    }

    /// Whether `other` may stack onto this one: same item and equal properties.
    #[must_use]
    pub fn stacks_with(&self, other: &ItemStack) -> bool {
        self.item == other.item && self.properties == other.properties
    }
}

/// A slot named in an error: a bag index (as the client sent it) or an equipment slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotRef {
    /// Bag slot index.
    Bag(u32),
    /// Equipment slot.
    Equip(EquipSlot),
}

impl fmt::Display for SlotRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotRef::Bag(i) => write!(f, "bag slot {i}"),
            SlotRef::Equip(s) => write!(f, "equipment slot {s}"),
        }
    }
}

/// Why an inventory operation was refused. The inventory is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// A bag slot index is out of range.
    #[error("bad_slot: bag slot {slot} does not exist (the bag has {bag_slots} slots)")]
    BadSlot {
        /// The index sent.
        slot: u32,
        /// How many bag slots exist.
        bag_slots: u32,
    },
    /// The same slot was named as source and destination.
    #[error("same_slot: {slot} is both source and destination")]
    SameSlot {
        /// The slot.
        slot: SlotRef,
    },
    /// The slot holds nothing.
    #[error("empty_slot: {slot} is empty")]
    EmptySlot {
        /// The slot.
        slot: SlotRef,
    },
    /// The destination must be empty but holds something.
    #[error("slot_occupied: {slot} already holds {item}")]
    SlotOccupied {
        /// The slot.
        slot: SlotRef,
        /// What it holds.
        item: ItemId,
    },
    /// Merging stacks of different items.
    #[error("different_item: cannot merge {from} onto {to}")]
    DifferentItem {
        /// Item of the source stack.
        from: ItemId,
        /// Item of the destination stack.
        to: ItemId,
    },
    /// Merging stacks of an item whose max stack is 1.
    #[error("not_stackable: {item} does not stack")]
    NotStackable {
        /// The item.
        item: ItemId,
    },
    /// Merging stacks whose properties differ.
    #[error("properties_mismatch: the stacks of {item} have different properties")]
    PropertiesMismatch {
        /// The item.
        item: ItemId,
    },
    /// The destination stack is already full.
    #[error("stack_overflow: {slot} already holds {quantity} of {item}, the max stack")]
    StackOverflow {
        /// The destination slot.
        slot: SlotRef,
        /// The item.
        item: ItemId,
        /// Its quantity there (= its max stack).
        quantity: u32,
    },
    /// Asked for more than the slot holds (or, for a split, all of it).
    #[error("insufficient_quantity: {slot} holds {have} of {item}, asked for {wanted}")]
    InsufficientQuantity {
        /// The slot.
        slot: SlotRef,
        /// The item.
        item: ItemId,
        /// Quantity in the slot.
        have: u32,
        /// Quantity asked for.
        wanted: u32,
    },
    /// A quantity of 0 was asked for.
    #[error("zero_quantity: a quantity of 0 was asked for")]
    ZeroQuantity,
    /// The item cannot be used.
    #[error("not_usable: {item} cannot be used")]
    NotUsable {
        /// The item.
        item: ItemId,
    },
    /// The item cannot be equipped at all.
    #[error("not_equippable: {item} cannot be equipped")]
    NotEquippable {
        /// The item.
        item: ItemId,
    },
    /// The item is equippable, but in another slot.
    #[error("wrong_equip_slot: {item} goes in {allowed}, not {wanted}")]
    WrongEquipSlot {
        /// The item.
        item: ItemId,
        /// The slot asked for.
        wanted: EquipSlot,
        /// The slot its rules allow.
        allowed: EquipSlot,
    },
    /// The catalog does not know the item.
    #[error("unknown_item: {item} is not in the item catalog")]
    UnknownItem {
        /// The item.
        item: ItemId,
    },
    /// The catalog's rules for the item are unusable (`max_stack` 0).
    #[error("bad_item_rules: the catalog gives {item} a max stack of 0")]
    BadItemRules {
        /// The item.
        item: ItemId,
    },
    /// Not enough room for the whole stack; nothing was placed.
    #[error("inventory_full: room for {room} of {item}, {wanted} to place")]
    InventoryFull {
        /// The item.
        item: ItemId,
        /// Quantity to place.
        wanted: u32,
        /// Quantity that would have fit (saturated at `u32::MAX`).
        room: u32,
    },
    /// A bag size outside `1..=MAX_BAG_SLOTS`.
    #[error("bad_bag_size: {bag_slots} bag slots, valid range 1..={MAX_BAG_SLOTS}")]
    BadBagSize {
        /// The size asked for.
        bag_slots: u32,
    },
}

/// The kind of an [`InventoryError`], without its details: a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InventoryErrorKind {
    /// [`InventoryError::BadSlot`].
    BadSlot,
    /// [`InventoryError::SameSlot`].
    SameSlot,
    /// [`InventoryError::EmptySlot`].
    EmptySlot,
    /// [`InventoryError::SlotOccupied`].
    SlotOccupied,
    /// [`InventoryError::DifferentItem`].
    DifferentItem,
    /// [`InventoryError::NotStackable`].
    NotStackable,
    /// [`InventoryError::PropertiesMismatch`].
    PropertiesMismatch,
    /// [`InventoryError::StackOverflow`].
    StackOverflow,
    /// [`InventoryError::InsufficientQuantity`].
    InsufficientQuantity,
    /// [`InventoryError::ZeroQuantity`].
    ZeroQuantity,
    /// [`InventoryError::NotUsable`].
    NotUsable,
    /// [`InventoryError::NotEquippable`].
    NotEquippable,
    /// [`InventoryError::WrongEquipSlot`].
    WrongEquipSlot,
    /// [`InventoryError::UnknownItem`].
    UnknownItem,
    /// [`InventoryError::BadItemRules`].
    BadItemRules,
    /// [`InventoryError::InventoryFull`].
    InventoryFull,
    /// [`InventoryError::BadBagSize`].
    BadBagSize,
}

impl InventoryErrorKind {
    /// Every kind, in declaration order (for registering metrics up front).
    pub const ALL: [InventoryErrorKind; 17] = [
        InventoryErrorKind::BadSlot,
        InventoryErrorKind::SameSlot,
        InventoryErrorKind::EmptySlot,
        InventoryErrorKind::SlotOccupied,
        InventoryErrorKind::DifferentItem,
        InventoryErrorKind::NotStackable,
        InventoryErrorKind::PropertiesMismatch,
        InventoryErrorKind::StackOverflow,
        InventoryErrorKind::InsufficientQuantity,
        InventoryErrorKind::ZeroQuantity,
        InventoryErrorKind::NotUsable,
        InventoryErrorKind::NotEquippable,
        InventoryErrorKind::WrongEquipSlot,
        InventoryErrorKind::UnknownItem,
        InventoryErrorKind::BadItemRules,
        InventoryErrorKind::InventoryFull,
        InventoryErrorKind::BadBagSize,
    ];

    /// Stable `snake_case` name, used as a metric label and in logs. Never changes once
    /// released.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            InventoryErrorKind::BadSlot => "bad_slot",
            InventoryErrorKind::SameSlot => "same_slot",
            InventoryErrorKind::EmptySlot => "empty_slot",
            InventoryErrorKind::SlotOccupied => "slot_occupied",
            InventoryErrorKind::DifferentItem => "different_item",
            InventoryErrorKind::NotStackable => "not_stackable",
            InventoryErrorKind::PropertiesMismatch => "properties_mismatch",
            InventoryErrorKind::StackOverflow => "stack_overflow",
            InventoryErrorKind::InsufficientQuantity => "insufficient_quantity",
            InventoryErrorKind::ZeroQuantity => "zero_quantity",
            InventoryErrorKind::NotUsable => "not_usable",
            InventoryErrorKind::NotEquippable => "not_equippable",
            InventoryErrorKind::WrongEquipSlot => "wrong_equip_slot",
            InventoryErrorKind::UnknownItem => "unknown_item",
            InventoryErrorKind::BadItemRules => "bad_item_rules",
            InventoryErrorKind::InventoryFull => "inventory_full",
            InventoryErrorKind::BadBagSize => "bad_bag_size",
        }
    }

    /// Position of this kind in [`InventoryErrorKind::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for InventoryErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl InventoryError {
    /// The kind of this error (its stable metric label is `kind().as_str()`).
    #[must_use]
    pub fn kind(&self) -> InventoryErrorKind {
        match self {
            InventoryError::BadSlot { .. } => InventoryErrorKind::BadSlot,
            InventoryError::SameSlot { .. } => InventoryErrorKind::SameSlot,
            InventoryError::EmptySlot { .. } => InventoryErrorKind::EmptySlot,
            InventoryError::SlotOccupied { .. } => InventoryErrorKind::SlotOccupied,
            InventoryError::DifferentItem { .. } => InventoryErrorKind::DifferentItem,
            InventoryError::NotStackable { .. } => InventoryErrorKind::NotStackable,
            InventoryError::PropertiesMismatch { .. } => InventoryErrorKind::PropertiesMismatch,
            InventoryError::StackOverflow { .. } => InventoryErrorKind::StackOverflow,
            InventoryError::InsufficientQuantity { .. } => InventoryErrorKind::InsufficientQuantity,
            InventoryError::ZeroQuantity => InventoryErrorKind::ZeroQuantity,
            InventoryError::NotUsable { .. } => InventoryErrorKind::NotUsable,
            InventoryError::NotEquippable { .. } => InventoryErrorKind::NotEquippable,
            InventoryError::WrongEquipSlot { .. } => InventoryErrorKind::WrongEquipSlot,
            InventoryError::UnknownItem { .. } => InventoryErrorKind::UnknownItem,
            InventoryError::BadItemRules { .. } => InventoryErrorKind::BadItemRules,
            InventoryError::InventoryFull { .. } => InventoryErrorKind::InventoryFull,
            InventoryError::BadBagSize { .. } => InventoryErrorKind::BadBagSize,
        }
    }
}

/// Looks up `item`'s rules and checks them.
fn rules_of(catalog: &dyn ItemCatalog, item: ItemId) -> Result<ItemRules, InventoryError> {
    let rules = catalog
        .rules(item)
        .ok_or(InventoryError::UnknownItem { item })?;
    if rules.max_stack == 0 {
        return Err(InventoryError::BadItemRules { item });
    }
    Ok(rules)
}

/// Checks that `quantity` is not 0.
fn nonzero(quantity: u32) -> Result<(), InventoryError> {
    if quantity == 0 {
        Err(InventoryError::ZeroQuantity)
    } else {
        Ok(())
    }
}

/// Largest bag an [`Inventory`] may have.
pub const MAX_BAG_SLOTS: u32 = 1024;

/// Where [`Inventory::add`] or [`give`] put (part of) a stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Bag slot index.
    pub slot: u32,
    /// Quantity put there.
    pub quantity: u32,
}

/// What [`Inventory::merge`] moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergeOutcome {
    /// Quantity moved onto the destination stack (`>= 1`).
    pub moved: u32,
    /// Quantity left in the source slot (`0` = the source slot is now empty).
    pub remainder: u32,
}

/// A character's items: a bag of numbered slots and one slot per [`EquipSlot`].
///
/// Invariants (checked by [`Inventory::check_invariants`], kept by every operation):
/// - every stack, in the bag or equipped, has `1 <= quantity <= max_stack` of its item, and
///   its item is in the catalog;
/// - an equipped stack sits in the equipment slot its item's rules name;
/// - the bag has a fixed number of slots, `1..=MAX_BAG_SLOTS`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Inventory {
    /// Bag slots; the length is fixed at construction. `None` = empty.
    bag: Vec<Option<ItemStack>>,
    /// Equipment, indexed by [`EquipSlot::index`]. `None` = nothing worn.
    equipment: [Option<ItemStack>; EquipSlot::ALL.len()],
}

impl Inventory {
    /// An empty inventory with `bag_slots` bag slots (`1..=MAX_BAG_SLOTS`).
    pub fn new(bag_slots: u32) -> Result<Self, InventoryError> {
        if !(1..=MAX_BAG_SLOTS).contains(&bag_slots) {
            return Err(InventoryError::BadBagSize { bag_slots });
        }
        Ok(Inventory {
            bag: vec![None; bag_slots as usize],
            equipment: Default::default(),
        })
    }

    /// Number of bag slots.
    #[must_use]
    pub fn bag_slots(&self) -> u32 {
        // The length is at most MAX_BAG_SLOTS (constructor invariant), so it fits.
        self.bag.len() as u32
    }

    /// The stack in bag slot `slot`, or `None` if empty or out of range.
    #[must_use]
    pub fn bag_slot(&self, slot: u32) -> Option<&ItemStack> {
        self.bag.get(slot as usize).and_then(Option::as_ref)
    }

    /// The stack worn in `slot`, if any.
    #[must_use]
    pub fn equipped(&self, slot: EquipSlot) -> Option<&ItemStack> {
        self.equipment[slot.index()].as_ref()
    }

    /// How many of `item` the inventory holds, bag and equipment together.
    #[must_use]
    pub fn count(&self, item: ItemId) -> u64 {
        self.stacks()
            .filter(|s| s.item == item)
            .map(|s| u64::from(s.quantity))
            .sum()
    }

    /// How many items the inventory holds in all, bag and equipment together.
    #[must_use]
    pub fn total_items(&self) -> u64 {
        self.stacks().map(|s| u64::from(s.quantity)).sum()
    }

    /// Every stack, bag first then equipment.
    fn stacks(&self) -> impl Iterator<Item = &ItemStack> + '_ {
        self.bag.iter().chain(self.equipment.iter()).flatten()
    }

    /// Every occupied slot with its stack: bag slots ascending, then equipment in
    /// [`EquipSlot::ALL`] order (persistence lists stacks by slot with it).
    pub fn occupied_slots(&self) -> impl Iterator<Item = (SlotRef, &ItemStack)> + '_ {
        let bag = self
            .bag
            .iter()
            .enumerate()
            // Bag indices fit u32 (at most MAX_BAG_SLOTS).
            .filter_map(|(i, s)| s.as_ref().map(|s| (SlotRef::Bag(i as u32), s)));
        let worn = EquipSlot::ALL.iter().filter_map(|&e| {
            self.equipment[e.index()]
                .as_ref()
                .map(|s| (SlotRef::Equip(e), s))
        });
        bag.chain(worn)
    }

    /// Puts `stack` into the empty `slot` exactly as given (persistence restoring a saved
    /// inventory; not a client operation). Checked like every other operation: the slot must
    /// exist and be empty, the item be in `catalog`, the quantity be `1..=max_stack`, and an
    /// equipment slot be the one the item's rules allow. On error nothing changes.
    pub fn place(
        &mut self,
        catalog: &dyn ItemCatalog,
        slot: SlotRef,
        stack: ItemStack,
    ) -> Result<(), InventoryError> {
        nonzero(stack.quantity)?;
        let rules = rules_of(catalog, stack.item)?;
        if stack.quantity > rules.max_stack {
            return Err(InventoryError::StackOverflow {
                slot,
                item: stack.item,
                quantity: rules.max_stack,
            });
        }
        match slot {
            SlotRef::Bag(b) => {
                let i = self.vacant(b)?;
                self.bag[i] = Some(stack);
            }
            SlotRef::Equip(e) => {
                match rules.equip_slot {
                    None => return Err(InventoryError::NotEquippable { item: stack.item }),
                    Some(allowed) if allowed != e => {
                        return Err(InventoryError::WrongEquipSlot {
                            item: stack.item,
                            wanted: e,
                            allowed,
                        });
                    }
                    Some(_) => {}
                }
                if let Some(worn) = &self.equipment[e.index()] {
                    return Err(InventoryError::SlotOccupied {
                        slot,
                        item: worn.item,
                    });
                }
                self.equipment[e.index()] = Some(stack);
            }
        }
        Ok(())
    }

    /// Checks the documented invariants against `catalog`; the error names the first
    /// violation. Meant for tests and for data loaded from storage.
    pub fn check_invariants(&self, catalog: &dyn ItemCatalog) -> Result<(), String> {
        if !(1..=MAX_BAG_SLOTS as usize).contains(&self.bag.len()) {
            return Err(format!("the bag has {} slots", self.bag.len()));
        }
        let slots = self
            .bag
            .iter()
            .enumerate()
            .map(|(i, s)| (SlotRef::Bag(i as u32), s))
            .chain(
                EquipSlot::ALL
                    .iter()
                    .map(|&e| (SlotRef::Equip(e), &self.equipment[e.index()])),
            );
        for (slot, stack) in slots {
            let Some(stack) = stack else { continue };
            let rules = rules_of(catalog, stack.item).map_err(|e| format!("{slot}: {e}"))?;
            if stack.quantity == 0 || stack.quantity > rules.max_stack {
                return Err(format!(
                    "{slot}: {} of {}, valid 1..={}",
                    stack.quantity, stack.item, rules.max_stack
                ));
            }
            if let SlotRef::Equip(e) = slot
                && rules.equip_slot != Some(e)
            {
                return Err(format!(
                    "{slot}: {} is equipped there, its rules allow {:?}",
                    stack.item, rules.equip_slot
                ));
            }
        }
        Ok(())
    }

    /// Checks that `slot` is a bag index.
    fn bag_index(&self, slot: u32) -> Result<usize, InventoryError> {
        if (slot as usize) < self.bag.len() {
            Ok(slot as usize)
        } else {
            Err(InventoryError::BadSlot {
                slot,
                bag_slots: self.bag_slots(),
            })
        }
    }

    /// The stack in bag slot `slot`, which must exist and be non-empty.
    fn occupied(&self, slot: u32) -> Result<&ItemStack, InventoryError> {
        let i = self.bag_index(slot)?;
        self.bag[i].as_ref().ok_or(InventoryError::EmptySlot {
            slot: SlotRef::Bag(slot),
        })
    }

    /// Checks that bag slot `slot` exists and is empty.
    fn vacant(&self, slot: u32) -> Result<usize, InventoryError> {
        let i = self.bag_index(slot)?;
        match &self.bag[i] {
            None => Ok(i),
            Some(s) => Err(InventoryError::SlotOccupied {
                slot: SlotRef::Bag(slot),
                item: s.item,
            }),
        }
    }

    /// Checks that `from` and `to` differ.
    fn distinct(from: u32, to: u32) -> Result<(), InventoryError> {
        if from == to {
            Err(InventoryError::SameSlot {
                slot: SlotRef::Bag(from),
            })
        } else {
            Ok(())
        }
    }

    /// Moves the whole stack in bag slot `from` to the empty bag slot `to`.
    pub fn move_item(&mut self, from: u32, to: u32) -> Result<(), InventoryError> {
        Self::distinct(from, to)?;
        self.occupied(from)?;
        let t = self.vacant(to)?;
        let f = from as usize;
        self.bag[t] = self.bag[f].take();
        Ok(())
    }

    /// Moves `quantity` items from bag slot `from` into the empty bag slot `to`, leaving the
    /// rest in `from`. The new stack copies the properties. `quantity` must be less than the
    /// stack (a whole stack is moved with [`Inventory::move_item`]).
    pub fn split(&mut self, from: u32, to: u32, quantity: u32) -> Result<(), InventoryError> {
        Self::distinct(from, to)?;
        nonzero(quantity)?;
        let source = self.occupied(from)?;
        if quantity >= source.quantity {
            return Err(InventoryError::InsufficientQuantity {
                slot: SlotRef::Bag(from),
                item: source.item,
                have: source.quantity,
                wanted: quantity,
            });
        }
        let t = self.vacant(to)?;
        let f = from as usize;
        let mut part = self.bag[f].clone();
        if let (Some(source), Some(part)) = (self.bag[f].as_mut(), part.as_mut()) {
            source.quantity -= quantity;
            part.quantity = quantity;
        }
        self.bag[t] = part;
        Ok(())
    }

    /// Moves as much of the stack in bag slot `from` onto the stack in bag slot `to` as its
    /// max stack allows (same item and equal properties); the remainder stays in `from`.
    pub fn merge(
        &mut self,
        catalog: &dyn ItemCatalog,
        from: u32,
        to: u32,
    ) -> Result<MergeOutcome, InventoryError> {
        Self::distinct(from, to)?;
        let source = self.occupied(from)?;
        let target = self.occupied(to)?;
        if source.item != target.item {
            return Err(InventoryError::DifferentItem {
                from: source.item,
                to: target.item,
            });
        }
        let item = source.item;
        let rules = rules_of(catalog, item)?;
        if rules.max_stack == 1 {
            return Err(InventoryError::NotStackable { item });
        }
        if source.properties != target.properties {
            return Err(InventoryError::PropertiesMismatch { item });
        }
        let room = rules.max_stack.saturating_sub(target.quantity);
        if room == 0 {
            return Err(InventoryError::StackOverflow {
                slot: SlotRef::Bag(to),
                item,
                quantity: target.quantity,
            });
        }
        let moved = room.min(source.quantity);
        let remainder = source.quantity - moved;
        let (f, t) = (from as usize, to as usize);
        if let Some(target) = self.bag[t].as_mut() {
            target.quantity += moved;
        }
        if remainder == 0 {
            self.bag[f] = None;
        } else if let Some(source) = self.bag[f].as_mut() {
            source.quantity = remainder;
        }
        Ok(MergeOutcome { moved, remainder })
    }

    /// Exchanges the contents of bag slots `a` and `b` (either may be empty, not both).
    pub fn swap(&mut self, a: u32, b: u32) -> Result<(), InventoryError> {
        Self::distinct(a, b)?;
        let (i, j) = (self.bag_index(a)?, self.bag_index(b)?);
        if self.bag[i].is_none() && self.bag[j].is_none() {
            return Err(InventoryError::EmptySlot {
                slot: SlotRef::Bag(a),
            });
        }
        self.bag.swap(i, j);
        Ok(())
    }

    /// Removes `quantity` items from bag slot `slot` and returns them (the items leave the
    /// inventory: dropped on the ground, destroyed, sold; the caller decides).
    pub fn drop_item(&mut self, slot: u32, quantity: u32) -> Result<ItemStack, InventoryError> {
        nonzero(quantity)?;
        self.take(slot, quantity)
    }

    /// Removes `quantity` (`>= 1`, validated by the caller) from bag slot `slot`.
    fn take(&mut self, slot: u32, quantity: u32) -> Result<ItemStack, InventoryError> {
        let stack = self.occupied(slot)?;
        if quantity > stack.quantity {
            return Err(InventoryError::InsufficientQuantity {
                slot: SlotRef::Bag(slot),
                item: stack.item,
                have: stack.quantity,
                wanted: quantity,
            });
        }
        let i = slot as usize;
        if quantity == stack.quantity {
            // Checked occupied just above.
            return self.bag[i].take().ok_or(InventoryError::EmptySlot {
                slot: SlotRef::Bag(slot),
            });
        }
        let mut removed = stack.clone();
        removed.quantity = quantity;
        if let Some(stack) = self.bag[i].as_mut() {
            stack.quantity -= quantity;
        }
        Ok(removed)
    }

    /// Consumes one item of the stack in bag slot `slot` if its rules say it is usable, and
    /// returns which item was used (the caller applies its effect).
    pub fn use_item(
        &mut self,
        catalog: &dyn ItemCatalog,
        slot: u32,
    ) -> Result<ItemId, InventoryError> {
        let item = self.occupied(slot)?.item;
        if !rules_of(catalog, item)?.usable {
            return Err(InventoryError::NotUsable { item });
        }
        self.take(slot, 1)?;
        Ok(item)
    }

    /// Wears the stack in bag slot `bag_slot` in the equipment slot its rules name; whatever
    /// was worn there goes to `bag_slot`. Returns the equipment slot used.
    pub fn equip(
        &mut self,
        catalog: &dyn ItemCatalog,
        bag_slot: u32,
    ) -> Result<EquipSlot, InventoryError> {
        let item = self.occupied(bag_slot)?.item;
        let slot = rules_of(catalog, item)?
            .equip_slot
            .ok_or(InventoryError::NotEquippable { item })?;
        let i = bag_slot as usize;
        std::mem::swap(&mut self.bag[i], &mut self.equipment[slot.index()]);
        Ok(slot)
    }

    /// Takes off what is worn in `equip_slot` and puts it in bag slot `to_bag_slot`. If that
    /// bag slot holds an item, the two are swapped, which requires the bag item's rules to
    /// name `equip_slot`.
    pub fn unequip(
        &mut self,
        catalog: &dyn ItemCatalog,
        equip_slot: EquipSlot,
        to_bag_slot: u32,
    ) -> Result<(), InventoryError> {
        let i = self.bag_index(to_bag_slot)?;
        if self.equipment[equip_slot.index()].is_none() {
            return Err(InventoryError::EmptySlot {
                slot: SlotRef::Equip(equip_slot),
            });
        }
        if let Some(incoming) = &self.bag[i] {
            let item = incoming.item;
            match rules_of(catalog, item)?.equip_slot {
                None => return Err(InventoryError::NotEquippable { item }),
                Some(allowed) if allowed != equip_slot => {
                    return Err(InventoryError::WrongEquipSlot {
                        item,
                        wanted: equip_slot,
                        allowed,
                    });
                }
                Some(_) => {}
            }
        }
        std::mem::swap(&mut self.bag[i], &mut self.equipment[equip_slot.index()]);
        Ok(())
    }

    /// Where `stack` would go: onto existing stacks of the same item and properties first
    /// (in slot order), then into empty slots. All of it fits or it is an error.
    fn plan_add(
        &self,
        catalog: &dyn ItemCatalog,
        stack: &ItemStack,
    ) -> Result<Vec<Placement>, InventoryError> {
        nonzero(stack.quantity)?;
        let rules = rules_of(catalog, stack.item)?;
        let mut left = stack.quantity;
        let mut plan = Vec::new();
        let existing = self.bag.iter().enumerate().filter_map(|(i, s)| match s {
            Some(s) if s.stacks_with(stack) => {
                Some((i, rules.max_stack.saturating_sub(s.quantity)))
            }
            _ => None,
        });
        let empty = self
            .bag
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| (i, rules.max_stack));
        let mut room: u32 = 0;
        for (i, space) in existing.chain(empty) {
            room = room.saturating_add(space);
            if left == 0 || space == 0 {
                continue;
            }
            let quantity = space.min(left);
            left -= quantity;
            plan.push(Placement {
                // Bag indices fit u32 (at most MAX_BAG_SLOTS).
                slot: i as u32,
                quantity,
            });
        }
        if left > 0 {
            return Err(InventoryError::InventoryFull {
                item: stack.item,
                wanted: stack.quantity,
                room,
            });
        }
        Ok(plan)
    }

    /// Writes a plan from [`Inventory::plan_add`] (made on this unchanged inventory).
    fn apply_add(&mut self, stack: &ItemStack, plan: &[Placement]) {
        for p in plan {
            let slot = &mut self.bag[p.slot as usize];
            match slot {
                Some(existing) => existing.quantity += p.quantity,
                None => {
                    let mut new = stack.clone();
                    new.quantity = p.quantity;
                    *slot = Some(new);
                }
            }
        }
    }

    /// Puts `stack` (loot, a purchase, a quest reward) in the bag: onto existing stacks of
    /// the same item and properties first, then into empty slots. All or nothing: if it
    /// does not all fit, nothing is placed and the error is
    /// [`InventoryError::InventoryFull`].
    pub fn add(
        &mut self,
        catalog: &dyn ItemCatalog,
        stack: &ItemStack,
    ) -> Result<Vec<Placement>, InventoryError> {
        let plan = self.plan_add(catalog, stack)?;
        self.apply_add(stack, &plan);
        Ok(plan)
    }
}

/// Moves `quantity` items from bag slot `slot` of `from` into `to` (placed as by
/// [`Inventory::add`]). All or nothing: if the receiver has no room, or the request is
/// invalid, neither inventory changes. The sum of both inventories is conserved.
pub fn give(
    catalog: &dyn ItemCatalog,
    from: &mut Inventory,
    slot: u32,
    quantity: u32,
    to: &mut Inventory,
) -> Result<Vec<Placement>, InventoryError> {
    nonzero(quantity)?;
    let source = from.occupied(slot)?;
    if quantity > source.quantity {
        return Err(InventoryError::InsufficientQuantity {
            slot: SlotRef::Bag(slot),
            item: source.item,
            have: source.quantity,
            wanted: quantity,
        });
    }
    let mut moving = source.clone();
    moving.quantity = quantity;
    let plan = to.plan_add(catalog, &moving)?;
    from.take(slot, quantity)?;
    to.apply_add(&moving, &plan);
    Ok(plan)
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;
