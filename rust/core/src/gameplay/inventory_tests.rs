//! Tests of the inventory rules: every operation's success and failure paths, atomicity
//! (a refused operation changes nothing) and a property test of random operation sequences
//! over two inventories checking the invariants and item conservation.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

const POTION: ItemId = ItemId(1); // usable, stacks to 20
const ARROW: ItemId = ItemId(2); // stacks to 99, not usable
const SWORD: ItemId = ItemId(3); // main hand, does not stack
const HELM: ItemId = ItemId(4); // head, does not stack
const ROCK: ItemId = ItemId(5); // stacks to 5, nothing else
const AXE: ItemId = ItemId(6); // main hand, does not stack
const UNKNOWN: ItemId = ItemId(99);
const BROKEN: ItemId = ItemId(100); // max_stack 0 in the catalog

fn catalog() -> BTreeMap<ItemId, ItemRules> {
    let r = |max_stack, equip_slot, usable| ItemRules {
        max_stack,
        equip_slot,
        usable,
    };
    BTreeMap::from([
        (POTION, r(20, None, true)),
        (ARROW, r(99, None, false)),
        (SWORD, r(1, Some(EquipSlot::MainHand), false)),
        (HELM, r(1, Some(EquipSlot::Head), false)),
        (ROCK, r(5, None, false)),
        (AXE, r(1, Some(EquipSlot::MainHand), false)),
        (BROKEN, r(0, None, false)),
    ])
}

fn stack(item: ItemId, quantity: u32) -> ItemStack {
    ItemStack::new(item, quantity)
}

fn with_props(item: ItemId, quantity: u32, key: &str, value: &str) -> ItemStack {
    let mut s = stack(item, quantity);
    s.properties.insert(key.to_owned(), value.to_owned());
    s
}

/// An inventory of `bag_slots` slots with `contents` added in order (each into a fresh slot
/// when it does not stack with an earlier one).
fn inv(bag_slots: u32, contents: &[ItemStack]) -> Inventory {
    let mut inventory = Inventory::new(bag_slots).unwrap();
    for s in contents {
        inventory.add(&catalog(), s).unwrap();
    }
    inventory
}

/// Runs `op` on a copy of `inventory`, asserts it fails with `kind` and changes nothing.
fn refused(
    inventory: &Inventory,
    kind: InventoryErrorKind,
    op: impl FnOnce(&mut Inventory) -> Result<(), InventoryError>,
) {
    let mut copy = inventory.clone();
    let err = op(&mut copy).unwrap_err();
    assert_eq!(err.kind(), kind, "{err}");
    assert_eq!(
        &copy, inventory,
        "a refused operation changed the inventory"
    );
}

#[test]
fn error_kind_names_are_stable_and_unique() {
    let names: Vec<_> = InventoryErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len());
    for (i, k) in InventoryErrorKind::ALL.iter().enumerate() {
        assert_eq!(k.index(), i);
    }
    assert_eq!(InventoryErrorKind::BadSlot.as_str(), "bad_slot");
    assert_eq!(
        InventoryErrorKind::PropertiesMismatch.as_str(),
        "properties_mismatch"
    );
    assert_eq!(EquipSlot::MainHand.as_str(), "main_hand");
    let e = InventoryError::BadSlot {
        slot: 7,
        bag_slots: 4,
    };
    assert_eq!(e.kind(), InventoryErrorKind::BadSlot);
    assert!(e.to_string().starts_with("bad_slot:"), "{e}");
}

#[test]
fn equip_slots_and_catalogs() {
    for (i, slot) in EquipSlot::ALL.iter().enumerate() {
        assert_eq!(slot.index(), i);
    }
    let hashed: std::collections::HashMap<ItemId, ItemRules> = catalog().into_iter().collect();
    let mut i = Inventory::new(2).unwrap();
    i.add(&hashed, &stack(HELM, 1)).unwrap();
    assert_eq!(i.equip(&hashed, 0).unwrap(), EquipSlot::Head);
    assert_eq!(hashed.rules(UNKNOWN), None);
    i.check_invariants(&hashed).unwrap();
}

#[test]
fn bag_size_is_validated() {
    assert_eq!(
        Inventory::new(0).unwrap_err().kind(),
        InventoryErrorKind::BadBagSize
    );
    assert_eq!(
        Inventory::new(MAX_BAG_SLOTS + 1).unwrap_err().kind(),
        InventoryErrorKind::BadBagSize
    );
    assert_eq!(
        Inventory::new(MAX_BAG_SLOTS).unwrap().bag_slots(),
        MAX_BAG_SLOTS
    );
    let i = Inventory::new(4).unwrap();
    assert_eq!(i.bag_slots(), 4);
    assert_eq!(i.total_items(), 0);
    assert!(i.bag_slot(u32::MAX).is_none());
    i.check_invariants(&catalog()).unwrap();
}

#[test]
fn add_fills_existing_stacks_then_empty_slots() {
    let c = catalog();
    let mut i = Inventory::new(4).unwrap();
    assert_eq!(
        i.add(&c, &stack(ARROW, 90)).unwrap(),
        vec![Placement {
            slot: 0,
            quantity: 90
        }]
    );
    i.add(&c, &stack(POTION, 3)).unwrap();
    let placed = i.add(&c, &stack(ARROW, 30)).unwrap();
    assert_eq!(
        placed,
        vec![
            Placement {
                slot: 0,
                quantity: 9
            },
            Placement {
                slot: 2,
                quantity: 21
            }
        ]
    );
    assert_eq!(i.count(ARROW), 120);
    assert_eq!(i.bag_slot(0).unwrap().quantity, 99);
    // Different properties do not stack onto existing stacks.
    let placed = i.add(&c, &with_props(POTION, 2, "q", "fine")).unwrap();
    assert_eq!(
        placed,
        vec![Placement {
            slot: 3,
            quantity: 2
        }]
    );
    assert_eq!(i.count(POTION), 5);
    assert_eq!(i.total_items(), 125);
    i.check_invariants(&c).unwrap();
}

#[test]
fn add_of_unstackable_items_uses_one_slot_each() {
    let c = catalog();
    let mut i = Inventory::new(3).unwrap();
    let placed = i.add(&c, &stack(SWORD, 3)).unwrap();
    assert_eq!(placed.len(), 3);
    assert!(placed.iter().all(|p| p.quantity == 1));
    i.check_invariants(&c).unwrap();
}

#[test]
fn add_failures_place_nothing() {
    let c = catalog();
    let full = inv(2, &[stack(ARROW, 98), stack(POTION, 20)]);
    refused(&full, InventoryErrorKind::InventoryFull, |i| {
        i.add(&c, &stack(ARROW, 2)).map(drop)
    });
    let err = full.clone().add(&c, &stack(ARROW, 2)).unwrap_err();
    assert_eq!(
        err,
        InventoryError::InventoryFull {
            item: ARROW,
            wanted: 2,
            room: 1
        }
    );
    refused(&full, InventoryErrorKind::InventoryFull, |i| {
        i.add(&c, &stack(ROCK, u32::MAX)).map(drop)
    });
    refused(&full, InventoryErrorKind::ZeroQuantity, |i| {
        i.add(&c, &stack(ARROW, 0)).map(drop)
    });
    refused(&full, InventoryErrorKind::UnknownItem, |i| {
        i.add(&c, &stack(UNKNOWN, 1)).map(drop)
    });
    refused(&full, InventoryErrorKind::BadItemRules, |i| {
        i.add(&c, &stack(BROKEN, 1)).map(drop)
    });
    // A huge stack into a large empty bag: room saturates, no overflow, no panic.
    let empty = Inventory::new(MAX_BAG_SLOTS).unwrap();
    refused(&empty, InventoryErrorKind::InventoryFull, |i| {
        i.add(&c, &stack(ARROW, u32::MAX)).map(drop)
    });
}

#[test]
fn move_item_to_an_empty_slot() {
    let mut i = inv(3, &[stack(POTION, 4)]);
    i.move_item(0, 2).unwrap();
    assert!(i.bag_slot(0).is_none());
    assert_eq!(i.bag_slot(2), Some(&stack(POTION, 4)));
    assert_eq!(i.total_items(), 4);
}

#[test]
fn move_item_failures() {
    let i = inv(3, &[stack(POTION, 4), stack(ARROW, 1)]);
    refused(&i, InventoryErrorKind::SlotOccupied, |i| i.move_item(0, 1));
    refused(&i, InventoryErrorKind::EmptySlot, |i| i.move_item(2, 0));
    refused(&i, InventoryErrorKind::BadSlot, |i| i.move_item(0, 3));
    refused(&i, InventoryErrorKind::BadSlot, |i| {
        i.move_item(u32::MAX, 0)
    });
    refused(&i, InventoryErrorKind::SameSlot, |i| i.move_item(0, 0));
}

#[test]
fn split_keeps_properties_on_both_halves() {
    let c = catalog();
    let mut i = inv(3, &[with_props(ARROW, 10, "fletcher", "ann")]);
    i.split(0, 2, 3).unwrap();
    assert_eq!(
        i.bag_slot(0),
        Some(&with_props(ARROW, 7, "fletcher", "ann"))
    );
    assert_eq!(
        i.bag_slot(2),
        Some(&with_props(ARROW, 3, "fletcher", "ann"))
    );
    assert_eq!(i.count(ARROW), 10);
    i.check_invariants(&c).unwrap();
}

#[test]
fn split_failures() {
    let i = inv(3, &[stack(ARROW, 10), stack(POTION, 1)]);
    refused(&i, InventoryErrorKind::InsufficientQuantity, |i| {
        i.split(0, 2, 10)
    });
    refused(&i, InventoryErrorKind::InsufficientQuantity, |i| {
        i.split(0, 2, u32::MAX)
    });
    refused(&i, InventoryErrorKind::InsufficientQuantity, |i| {
        i.split(1, 2, 1)
    });
    refused(&i, InventoryErrorKind::ZeroQuantity, |i| i.split(0, 2, 0));
    refused(&i, InventoryErrorKind::SlotOccupied, |i| i.split(0, 1, 1));
    refused(&i, InventoryErrorKind::EmptySlot, |i| i.split(2, 0, 1));
    refused(&i, InventoryErrorKind::BadSlot, |i| i.split(0, 9, 1));
    refused(&i, InventoryErrorKind::SameSlot, |i| i.split(0, 0, 1));
}

#[test]
fn merge_moves_up_to_the_max_stack_and_leaves_the_remainder() {
    let c = catalog();
    let mut i = Inventory::new(4).unwrap();
    i.add(&c, &stack(POTION, 20)).unwrap();
    i.split(0, 1, 5).unwrap(); // 15 | 5
    i.split(0, 2, 3).unwrap(); // 12 | 5 | 3
    assert_eq!(
        i.merge(&c, 1, 0).unwrap(),
        MergeOutcome {
            moved: 5,
            remainder: 0
        }
    );
    assert!(i.bag_slot(1).is_none());
    assert_eq!(
        i.merge(&c, 2, 0).unwrap(),
        MergeOutcome {
            moved: 3,
            remainder: 0
        }
    );
    i.add(&c, &stack(POTION, 4)).unwrap();
    assert_eq!(i.count(POTION), 24);
    // Slot 0 was full, so the 4 went to the first empty slot.
    assert_eq!(i.bag_slot(1).unwrap().quantity, 4);
    assert_eq!(i.bag_slot(0).unwrap().quantity, 20);
    i.split(0, 2, 2).unwrap(); // 18 | 4 | 2
    assert_eq!(
        i.merge(&c, 1, 0).unwrap(),
        MergeOutcome {
            moved: 2,
            remainder: 2
        }
    );
    assert_eq!(i.bag_slot(1).unwrap().quantity, 2);
    assert_eq!(i.count(POTION), 24);
    i.check_invariants(&c).unwrap();
}

#[test]
fn merge_failures() {
    let c = catalog();
    let mut i = Inventory::new(8).unwrap();
    i.add(&c, &stack(ROCK, 5)).unwrap(); // 0: full stack
    i.add(&c, &stack(ROCK, 2)).unwrap(); // 1
    i.add(&c, &stack(ARROW, 3)).unwrap(); // 2
    i.add(&c, &with_props(ARROW, 3, "q", "fine")).unwrap(); // 3
    i.add(&c, &stack(SWORD, 2)).unwrap(); // 4, 5
    refused(&i, InventoryErrorKind::StackOverflow, |i| {
        i.merge(&c, 1, 0).map(drop)
    });
    refused(&i, InventoryErrorKind::DifferentItem, |i| {
        i.merge(&c, 1, 2).map(drop)
    });
    refused(&i, InventoryErrorKind::PropertiesMismatch, |i| {
        i.merge(&c, 3, 2).map(drop)
    });
    refused(&i, InventoryErrorKind::NotStackable, |i| {
        i.merge(&c, 4, 5).map(drop)
    });
    refused(&i, InventoryErrorKind::EmptySlot, |i| {
        i.merge(&c, 6, 2).map(drop)
    });
    refused(&i, InventoryErrorKind::EmptySlot, |i| {
        i.merge(&c, 2, 6).map(drop)
    });
    refused(&i, InventoryErrorKind::BadSlot, |i| {
        i.merge(&c, 2, 8).map(drop)
    });
    refused(&i, InventoryErrorKind::SameSlot, |i| {
        i.merge(&c, 2, 2).map(drop)
    });
    // Rules gone from the catalog (content changed): unknown_item, nothing moves.
    let empty_catalog = BTreeMap::new();
    refused(&i, InventoryErrorKind::UnknownItem, |i| {
        i.merge(&empty_catalog, 1, 0).map(drop)
    });
}

#[test]
fn swap_exchanges_slots_including_with_an_empty_one() {
    let mut i = inv(3, &[stack(POTION, 4), stack(ARROW, 7)]);
    i.swap(0, 1).unwrap();
    assert_eq!(i.bag_slot(0), Some(&stack(ARROW, 7)));
    assert_eq!(i.bag_slot(1), Some(&stack(POTION, 4)));
    i.swap(2, 0).unwrap();
    assert!(i.bag_slot(0).is_none());
    assert_eq!(i.bag_slot(2), Some(&stack(ARROW, 7)));
    refused(&i, InventoryErrorKind::SameSlot, |i| i.swap(1, 1));
    refused(&i, InventoryErrorKind::BadSlot, |i| i.swap(1, 3));
    let mut two_empty = inv(3, &[stack(POTION, 1)]);
    refused(&two_empty, InventoryErrorKind::EmptySlot, |i| i.swap(1, 2));
    two_empty.swap(0, 2).unwrap();
}

#[test]
fn drop_item_removes_part_or_all_of_a_stack() {
    let mut i = inv(2, &[with_props(ARROW, 10, "q", "fine")]);
    assert_eq!(
        i.drop_item(0, 4).unwrap(),
        with_props(ARROW, 4, "q", "fine")
    );
    assert_eq!(i.count(ARROW), 6);
    assert_eq!(
        i.drop_item(0, 6).unwrap(),
        with_props(ARROW, 6, "q", "fine")
    );
    assert!(i.bag_slot(0).is_none());
    assert_eq!(i.total_items(), 0);
}

#[test]
fn drop_item_failures() {
    let i = inv(2, &[stack(ARROW, 10)]);
    refused(&i, InventoryErrorKind::InsufficientQuantity, |i| {
        i.drop_item(0, 11).map(drop)
    });
    refused(&i, InventoryErrorKind::InsufficientQuantity, |i| {
        i.drop_item(0, u32::MAX).map(drop)
    });
    refused(&i, InventoryErrorKind::ZeroQuantity, |i| {
        i.drop_item(0, 0).map(drop)
    });
    refused(&i, InventoryErrorKind::EmptySlot, |i| {
        i.drop_item(1, 1).map(drop)
    });
    refused(&i, InventoryErrorKind::BadSlot, |i| {
        i.drop_item(2, 1).map(drop)
    });
}

#[test]
fn use_item_consumes_one_usable_item() {
    let c = catalog();
    let mut i = inv(2, &[stack(POTION, 2)]);
    assert_eq!(i.use_item(&c, 0).unwrap(), POTION);
    assert_eq!(i.count(POTION), 1);
    assert_eq!(i.use_item(&c, 0).unwrap(), POTION);
    assert!(i.bag_slot(0).is_none());
    refused(&i, InventoryErrorKind::EmptySlot, |i| {
        i.use_item(&c, 0).map(drop)
    });
}

#[test]
fn use_item_failures() {
    let c = catalog();
    let i = inv(2, &[stack(ARROW, 2)]);
    refused(&i, InventoryErrorKind::NotUsable, |i| {
        i.use_item(&c, 0).map(drop)
    });
    refused(&i, InventoryErrorKind::BadSlot, |i| {
        i.use_item(&c, 2).map(drop)
    });
    refused(&i, InventoryErrorKind::EmptySlot, |i| {
        i.use_item(&c, 1).map(drop)
    });
    refused(&i, InventoryErrorKind::UnknownItem, |i| {
        i.use_item(&BTreeMap::new(), 0).map(drop)
    });
}

#[test]
fn equip_wears_the_item_in_its_slot_and_swaps_with_the_worn_one() {
    let c = catalog();
    let mut i = inv(3, &[stack(SWORD, 1), stack(AXE, 1), stack(HELM, 1)]);
    assert_eq!(i.equip(&c, 0).unwrap(), EquipSlot::MainHand);
    assert_eq!(i.equipped(EquipSlot::MainHand), Some(&stack(SWORD, 1)));
    assert!(i.bag_slot(0).is_none());
    // Equipping the axe puts the sword back where the axe was.
    assert_eq!(i.equip(&c, 1).unwrap(), EquipSlot::MainHand);
    assert_eq!(i.equipped(EquipSlot::MainHand), Some(&stack(AXE, 1)));
    assert_eq!(i.bag_slot(1), Some(&stack(SWORD, 1)));
    assert_eq!(i.equip(&c, 2).unwrap(), EquipSlot::Head);
    assert_eq!(i.total_items(), 3);
    assert_eq!(i.count(AXE), 1);
    i.check_invariants(&c).unwrap();
}

#[test]
fn equip_failures() {
    let c = catalog();
    let i = inv(3, &[stack(POTION, 1)]);
    refused(&i, InventoryErrorKind::NotEquippable, |i| {
        i.equip(&c, 0).map(drop)
    });
    refused(&i, InventoryErrorKind::EmptySlot, |i| {
        i.equip(&c, 1).map(drop)
    });
    refused(&i, InventoryErrorKind::BadSlot, |i| {
        i.equip(&c, 3).map(drop)
    });
    refused(&i, InventoryErrorKind::UnknownItem, |i| {
        i.equip(&BTreeMap::new(), 0).map(drop)
    });
}

#[test]
fn unequip_to_an_empty_slot_or_swapping_with_a_fitting_item() {
    let c = catalog();
    let mut i = inv(3, &[stack(SWORD, 1), stack(AXE, 1)]);
    i.equip(&c, 0).unwrap();
    i.unequip(&c, EquipSlot::MainHand, 2).unwrap();
    assert!(i.equipped(EquipSlot::MainHand).is_none());
    assert_eq!(i.bag_slot(2), Some(&stack(SWORD, 1)));
    i.equip(&c, 2).unwrap();
    // Unequipping onto the axe's slot swaps: the axe is worn, the sword goes to the bag.
    i.unequip(&c, EquipSlot::MainHand, 1).unwrap();
    assert_eq!(i.equipped(EquipSlot::MainHand), Some(&stack(AXE, 1)));
    assert_eq!(i.bag_slot(1), Some(&stack(SWORD, 1)));
    assert_eq!(i.total_items(), 2);
    i.check_invariants(&c).unwrap();
}

#[test]
fn unequip_failures() {
    let c = catalog();
    let mut i = inv(4, &[stack(SWORD, 1), stack(HELM, 1), stack(POTION, 1)]);
    i.equip(&c, 0).unwrap();
    refused(&i, InventoryErrorKind::WrongEquipSlot, |i| {
        i.unequip(&c, EquipSlot::MainHand, 1)
    });
    refused(&i, InventoryErrorKind::NotEquippable, |i| {
        i.unequip(&c, EquipSlot::MainHand, 2)
    });
    refused(&i, InventoryErrorKind::EmptySlot, |i| {
        i.unequip(&c, EquipSlot::Head, 0)
    });
    refused(&i, InventoryErrorKind::BadSlot, |i| {
        i.unequip(&c, EquipSlot::MainHand, 4)
    });
    let err = i.clone().unequip(&c, EquipSlot::MainHand, 1).unwrap_err();
    assert_eq!(
        err,
        InventoryError::WrongEquipSlot {
            item: HELM,
            wanted: EquipSlot::MainHand,
            allowed: EquipSlot::Head
        }
    );
}

#[test]
fn give_moves_items_between_inventories() {
    let c = catalog();
    let mut a = inv(2, &[stack(ARROW, 50)]);
    let mut b = inv(2, &[stack(ARROW, 90)]);
    let placed = give(&c, &mut a, 0, 20, &mut b).unwrap();
    assert_eq!(
        placed,
        vec![
            Placement {
                slot: 0,
                quantity: 9
            },
            Placement {
                slot: 1,
                quantity: 11
            }
        ]
    );
    assert_eq!(a.count(ARROW), 30);
    assert_eq!(b.count(ARROW), 110);
    give(&c, &mut a, 0, 30, &mut b).unwrap();
    assert!(a.bag_slot(0).is_none());
    assert_eq!(b.count(ARROW), 140);
    a.check_invariants(&c).unwrap();
    b.check_invariants(&c).unwrap();
}

#[test]
fn give_to_a_full_receiver_changes_neither() {
    let c = catalog();
    let a = inv(2, &[stack(ARROW, 50), stack(POTION, 3)]);
    let b = inv(1, &[stack(ARROW, 90)]);
    let (mut a2, mut b2) = (a.clone(), b.clone());
    let err = give(&c, &mut a2, 0, 10, &mut b2).unwrap_err();
    assert_eq!(err.kind(), InventoryErrorKind::InventoryFull);
    assert_eq!((&a2, &b2), (&a, &b));
    for (slot, quantity, kind) in [
        (1, 1, InventoryErrorKind::InventoryFull),
        (0, 0, InventoryErrorKind::ZeroQuantity),
        (0, 51, InventoryErrorKind::InsufficientQuantity),
        (0, u32::MAX, InventoryErrorKind::InsufficientQuantity),
        (2, 1, InventoryErrorKind::BadSlot),
        (u32::MAX, 1, InventoryErrorKind::BadSlot),
    ] {
        let err = give(&c, &mut a2, slot, quantity, &mut b2).unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert_eq!((&a2, &b2), (&a, &b));
    }
    let mut with_hole = a.clone();
    with_hole.drop_item(1, 3).unwrap();
    let before = with_hole.clone();
    let err = give(&c, &mut with_hole, 1, 1, &mut b2).unwrap_err();
    assert_eq!(err.kind(), InventoryErrorKind::EmptySlot);
    assert_eq!(with_hole, before);
}

#[test]
fn check_invariants_finds_violations() {
    let c = catalog();
    let mut i = inv(2, &[stack(ARROW, 5)]);
    i.bag[0] = Some(stack(ARROW, 0));
    assert!(i.check_invariants(&c).is_err());
    i.bag[0] = Some(stack(ROCK, 6));
    assert!(i.check_invariants(&c).unwrap_err().contains("bag slot 0"));
    i.bag[0] = Some(stack(UNKNOWN, 1));
    assert!(i.check_invariants(&c).is_err());
    i.bag[0] = None;
    i.equipment[EquipSlot::Head.index()] = Some(stack(SWORD, 1));
    assert!(i.check_invariants(&c).unwrap_err().contains("head"));
    i.equipment[EquipSlot::Head.index()] = Some(stack(HELM, 1));
    i.check_invariants(&c).unwrap();
}

// ---------------------------------------------------------------------------------------
// Property test: random operation sequences over two inventories
// ---------------------------------------------------------------------------------------

/// One operation with arbitrary (often invalid) arguments.
#[derive(Clone, Debug)]
enum Op {
    Move(u32, u32),
    Split(u32, u32, u32),
    Merge(u32, u32),
    Swap(u32, u32),
    Drop(u32, u32),
    Use(u32),
    Equip(u32),
    Unequip(usize, u32),
    Add(ItemStack),
    Give(u32, u32),
}

const BAG_A: u32 = 6;
const BAG_B: u32 = 4;

fn slot_arg() -> impl Strategy<Value = u32> {
    prop_oneof![
        12 => 0..BAG_A,
        2 => BAG_A..BAG_A + 2,
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ]
}

fn quantity_arg() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => 0u32..8,
        2 => 8u32..120,
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ]
}

fn stack_arg() -> impl Strategy<Value = ItemStack> {
    let items = prop_oneof![
        Just(POTION),
        Just(ARROW),
        Just(SWORD),
        Just(HELM),
        Just(ROCK),
        Just(AXE),
        Just(UNKNOWN),
        Just(BROKEN),
    ];
    (items, quantity_arg(), any::<bool>()).prop_map(|(item, quantity, fine)| {
        if fine {
            with_props(item, quantity, "q", "fine")
        } else {
            stack(item, quantity)
        }
    })
}

fn op_arg() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (slot_arg(), slot_arg()).prop_map(|(a, b)| Op::Move(a, b)),
        2 => (slot_arg(), slot_arg(), quantity_arg()).prop_map(|(a, b, q)| Op::Split(a, b, q)),
        2 => (slot_arg(), slot_arg()).prop_map(|(a, b)| Op::Merge(a, b)),
        1 => (slot_arg(), slot_arg()).prop_map(|(a, b)| Op::Swap(a, b)),
        1 => (slot_arg(), quantity_arg()).prop_map(|(s, q)| Op::Drop(s, q)),
        1 => slot_arg().prop_map(Op::Use),
        1 => slot_arg().prop_map(Op::Equip),
        2 => (
            prop_oneof![
                2 => Just(EquipSlot::MainHand.index()),
                1 => Just(EquipSlot::Head.index()),
                1 => 0..EquipSlot::ALL.len(),
            ],
            slot_arg()
        ).prop_map(|(e, s)| Op::Unequip(e, s)),
        3 => stack_arg().prop_map(Op::Add),
        1 => (slot_arg(), quantity_arg()).prop_map(|(s, q)| Op::Give(s, q)),
    ]
}

/// Applies `op` to `me` (and `other` for a give). Returns the change in the number of
/// each item across both inventories that the operation reported, or the error.
fn apply(
    c: &BTreeMap<ItemId, ItemRules>,
    me: &mut Inventory,
    other: &mut Inventory,
    op: &Op,
) -> Result<Option<(ItemId, i64)>, InventoryError> {
    Ok(match op {
        Op::Move(a, b) => me.move_item(*a, *b).map(|()| None)?,
        Op::Split(a, b, q) => me.split(*a, *b, *q).map(|()| None)?,
        Op::Merge(a, b) => me.merge(c, *a, *b).map(|_| None)?,
        Op::Swap(a, b) => me.swap(*a, *b).map(|()| None)?,
        Op::Drop(s, q) => {
            let removed = me.drop_item(*s, *q)?;
            assert_eq!(removed.quantity, *q);
            Some((removed.item, -i64::from(removed.quantity)))
        }
        Op::Use(s) => Some((me.use_item(c, *s)?, -1)),
        Op::Equip(s) => me.equip(c, *s).map(|_| None)?,
        Op::Unequip(e, s) => me.unequip(c, EquipSlot::ALL[*e], *s).map(|()| None)?,
        Op::Add(stack) => {
            let placed = me.add(c, stack)?;
            let total: u64 = placed.iter().map(|p| u64::from(p.quantity)).sum();
            assert_eq!(total, u64::from(stack.quantity));
            Some((stack.item, i64::from(stack.quantity)))
        }
        Op::Give(s, q) => {
            let placed = give(c, me, *s, *q, other)?;
            let total: u64 = placed.iter().map(|p| u64::from(p.quantity)).sum();
            assert_eq!(total, u64::from(*q));
            None
        }
    })
}

const ALL_ITEMS: [ItemId; 8] = [POTION, ARROW, SWORD, HELM, ROCK, AXE, UNKNOWN, BROKEN];

fn counts(a: &Inventory, b: &Inventory) -> BTreeMap<ItemId, i64> {
    ALL_ITEMS
        .iter()
        .map(|&item| (item, (a.count(item) + b.count(item)) as i64))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_keep_invariants_and_conserve_items(
        steps in proptest::collection::vec((any::<bool>(), op_arg()), 1..120)
    ) {
        let c = catalog();
        // Start half full so that valid operations are common among the random ones.
        let mut a = inv(BAG_A, &[stack(ARROW, 150), stack(POTION, 6), stack(SWORD, 1)]);
        let mut b = inv(BAG_B, &[stack(ROCK, 4), stack(AXE, 1), stack(HELM, 1)]);
        let mut expected = counts(&a, &b);
        for (on_a, op) in &steps {
            let (before_a, before_b) = (a.clone(), b.clone());
            let (me, other) = if *on_a { (&mut a, &mut b) } else { (&mut b, &mut a) };
            let total_me = me.total_items();
            let total_other = other.total_items();
            match apply(&c, me, other, op) {
                Ok(delta) => {
                    if let Some((item, d)) = delta {
                        *expected.get_mut(&item).unwrap() += d;
                    }
                    if let Op::Give(_, q) = op {
                        prop_assert_eq!(me.total_items() + u64::from(*q), total_me);
                        prop_assert_eq!(other.total_items(), total_other + u64::from(*q));
                    }
                }
                Err(e) => {
                    // Atomic: a refused operation changes neither inventory.
                    prop_assert_eq!(&a, &before_a, "{:?} -> {}", op, e);
                    prop_assert_eq!(&b, &before_b, "{:?} -> {}", op, e);
                    prop_assert!(!e.kind().as_str().is_empty());
                }
            }
            prop_assert_eq!(a.check_invariants(&c), Ok(()), "after {:?}", op);
            prop_assert_eq!(b.check_invariants(&c), Ok(()), "after {:?}", op);
            prop_assert_eq!(&counts(&a, &b), &expected, "after {:?}", op);
        }
    }
}

/// A scripted sequence like the property test's, with known successes, so the property
/// test's bookkeeping is itself checked on a case where operations do succeed.
#[test]
fn scripted_sequence_conserves_items() {
    let c = catalog();
    let mut a = Inventory::new(BAG_A).unwrap();
    let mut b = Inventory::new(BAG_B).unwrap();
    let ops = [
        (true, Op::Add(stack(ARROW, 150))),
        (true, Op::Add(stack(POTION, 3))),
        (true, Op::Add(stack(SWORD, 1))),
        (true, Op::Split(0, 4, 10)),
        (true, Op::Merge(4, 1)),
        (true, Op::Use(2)),
        (true, Op::Equip(3)),
        (true, Op::Give(0, 40)),
        (false, Op::Drop(0, 5)),
        (true, Op::Unequip(EquipSlot::MainHand.index(), 5)),
        (true, Op::Swap(5, 0)),
    ];
    let mut expected = counts(&a, &b);
    for (on_a, op) in &ops {
        let (me, other) = if *on_a {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let delta = apply(&c, me, other, op).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        if let Some((item, d)) = delta {
            *expected.get_mut(&item).unwrap() += d;
        }
        a.check_invariants(&c).unwrap();
        b.check_invariants(&c).unwrap();
        assert_eq!(counts(&a, &b), expected, "after {op:?}");
    }
    assert_eq!(a.count(ARROW) + b.count(ARROW), 145);
    assert_eq!(b.count(ARROW), 35);
    assert_eq!(a.count(POTION), 2);
    assert_eq!(a.bag_slot(0), Some(&stack(SWORD, 1)));
}
