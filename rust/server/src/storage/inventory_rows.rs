//! Inventory rows as the databases take them, and the diff a save writes.
//!
//! A flush saves whole characters, but between two flushes most of a character's inventory
//! stays as it was (a player walks, one stack changes). [`diff_slots`] compares the rows a
//! save brings with the rows stored for the same characters, so the save deletes and
//! inserts only the rows that vanished, changed or are new, instead of rewriting every row
//! of every character. The stored rows are read inside the saving transaction after the
//! characters' `players` rows were updated, which locks them (PostgreSQL row locks, the
//! SQLite write lock): every writer of a character's inventory (save, create, delete)
//! writes its `players` row first, so nothing changes the rows between the read and the
//! write.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use mmo_core::persist::SlotRecord;
use serde_json::json;

use super::StoreError;
use super::accounts::to_db;
use super::characters::{int_col, invalid};

/// One inventory row as the databases take it (checked conversions done).
pub(super) struct SlotRow {
    pub(super) player_id: i64,
    pub(super) slot: i32,
    pub(super) item: String,
    pub(super) quantity: i32,
    /// The properties as compact JSON with sorted keys (`serde_json` of the `BTreeMap`).
    pub(super) properties_json: String,
}

/// One stored inventory row as read back for a diff: `(player_id, slot, item_id,
/// quantity, properties as JSON text)`. The text is whatever the backend returns: SQLite
/// gives back what was written, PostgreSQL its own JSONB rendering.
pub(super) type StoredSlot = (i64, i64, String, i64, String);

/// What a save writes to bring the stored inventories to the new ones.
#[derive(Default)]
pub(super) struct SlotChanges {
    /// Players none of whose stored rows stays: all their rows are deleted (one index range
    /// each, cheaper than row by row). Ascending, each once.
    pub(super) delete_all_of: Vec<i64>,
    /// Player ids of single rows to delete (parallel to `delete_slots`): stored rows whose
    /// slot is empty now or holds something else, of players with rows that stay.
    pub(super) delete_player_ids: Vec<i64>,
    /// Slots of the single rows to delete.
    pub(super) delete_slots: Vec<i64>,
    /// Rows to insert: slots that were empty or held something else (after the deletes).
    pub(super) insert: Vec<SlotRow>,
    /// Rows that were stored exactly as the save has them and are left alone.
    pub(super) unchanged: usize,
}

/// Appends the rows of `inventory` for `character_id` to `out`; a value that does not fit
/// its column is [`StoreError::Invalid`] naming the character.
pub(super) fn slot_rows(
    character_id: u64,
    inventory: &[SlotRecord],
    out: &mut Vec<SlotRow>,
) -> Result<(), StoreError> {
    let player_id = to_db("character id", character_id)?;
    for slot in inventory {
        let properties_json = serde_json::to_string(&slot.properties)
            .map_err(|e| invalid(character_id, format!("slot {} properties: {e}", slot.slot)))?;
        out.push(SlotRow {
            player_id,
            slot: int_col(character_id, "slot", u64::from(slot.slot))?,
            item: slot.item.clone(),
            quantity: int_col(
                character_id,
                &format!("slot {} quantity", slot.slot),
                u64::from(slot.quantity),
            )?,
            properties_json,
        });
    }
    Ok(())
}

/// `[[player_id, slot, item, quantity, properties_json], ...]` for SQLite's `json_each`.
pub(super) fn slots_json(rows: &[SlotRow]) -> String {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| json!([r.player_id, r.slot, r.item, r.quantity, r.properties_json]))
        .collect();
    serde_json::Value::Array(rows).to_string()
}

/// The stored rows of a save as SQLite returns them: one JSON array of `[player_id, slot,
/// item_id, quantity, properties]` arrays. SQLite keeps whatever type a value was written
/// with, so a row whose values are not an integer slot, a text item, an integer quantity
/// and a text properties is not compared: its player goes into the returned set, and
/// [`diff_slots`] rewrites all that player's rows (as a save did before diffs, which
/// repairs them). Text that is not such an array at all is [`StoreError::Corrupt`].
pub(super) fn stored_slots_from_json(
    text: &str,
) -> Result<(Vec<StoredSlot>, HashSet<i64>), StoreError> {
    let rows: Vec<Vec<serde_json::Value>> = serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!("stored inventory rows of a save do not parse: {e}"))
    })?;
    let mut stored = Vec::with_capacity(rows.len());
    let mut unreadable = HashSet::new();
    for row in rows {
        // The rows were selected by an integer player id, so it reads back as one.
        let Some(player_id) = row.first().and_then(serde_json::Value::as_i64) else {
            return Err(StoreError::Corrupt(format!(
                "stored inventory row without a player id: {row:?}"
            )));
        };
        match (
            row.get(1).and_then(serde_json::Value::as_i64),
            row.get(2).and_then(serde_json::Value::as_str),
            row.get(3).and_then(serde_json::Value::as_i64),
            row.get(4).and_then(serde_json::Value::as_str),
        ) {
            (Some(slot), Some(item), Some(quantity), Some(properties)) => stored.push((
                player_id,
                slot,
                item.to_owned(),
                quantity,
                properties.to_owned(),
            )),
            _ => {
                unreadable.insert(player_id);
            }
        }
    }
    Ok((stored, unreadable))
}

/// True when the stored properties text means the same object as `new_json` (which is
/// compact with sorted keys). Text the store cannot parse counts as different, so the
/// save rewrites the row.
fn same_properties(stored_text: &str, new_json: &str) -> bool {
    if stored_text == new_json {
        return true;
    }
    match serde_json::from_str::<BTreeMap<String, String>>(stored_text) {
        Ok(stored) => serde_json::to_string(&stored).is_ok_and(|text| text == new_json),
        Err(_) => false,
    }
}

/// The deletes and inserts that turn `stored` (the stored rows of the saved characters)
/// into `new` (all their rows after the save). A row in both with the same item, quantity
/// and properties is left alone; a changed slot is deleted and inserted again. Players in
/// `unreadable` (a stored row could not be read) have all their rows deleted and all
/// their new rows inserted.
pub(super) fn diff_slots(
    stored: Vec<StoredSlot>,
    unreadable: &HashSet<i64>,
    new: Vec<SlotRow>,
) -> SlotChanges {
    let mut stored_by_key: HashMap<(i64, i64), StoredSlot> = stored
        .into_iter()
        .map(|row| ((row.0, row.1), row))
        .collect();
    let mut changes = SlotChanges::default();
    // Players with at least one stored row that stays.
    let mut keeping: HashSet<i64> = HashSet::new();
    let mut deleted: Vec<(i64, i64)> = Vec::new();
    for row in new {
        let key = (row.player_id, i64::from(row.slot));
        match stored_by_key.remove(&key) {
            Some((_, _, item, quantity, properties))
                if !unreadable.contains(&key.0)
                    && item == row.item
                    && quantity == i64::from(row.quantity)
                    && same_properties(&properties, &row.properties_json) =>
            {
                changes.unchanged += 1;
                keeping.insert(key.0);
            }
            Some(_) => {
                deleted.push(key);
                changes.insert.push(row);
            }
            None => changes.insert.push(row),
        }
    }
    // Stored rows the save no longer has: the slot is empty now.
    deleted.extend(stored_by_key.into_keys());
    let mut delete_all_of: BTreeSet<i64> = unreadable.iter().copied().collect();
    for (player_id, slot) in deleted {
        if keeping.contains(&player_id) {
            changes.delete_player_ids.push(player_id);
            changes.delete_slots.push(slot);
        } else {
            delete_all_of.insert(player_id);
        }
    }
    changes.delete_all_of = delete_all_of.into_iter().collect();
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(player_id: i64, slot: i32, item: &str, quantity: i32, props: &str) -> SlotRow {
        SlotRow {
            player_id,
            slot,
            item: item.to_owned(),
            quantity,
            properties_json: props.to_owned(),
        }
    }

    fn stored(player_id: i64, slot: i64, item: &str, quantity: i64, props: &str) -> StoredSlot {
        (player_id, slot, item.to_owned(), quantity, props.to_owned())
    }

    /// The single-row deletes, sorted.
    fn deletes(c: &SlotChanges) -> Vec<(i64, i64)> {
        let mut keys: Vec<(i64, i64)> = c
            .delete_player_ids
            .iter()
            .copied()
            .zip(c.delete_slots.iter().copied())
            .collect();
        keys.sort_unstable();
        keys
    }

    fn inserts(c: &SlotChanges) -> Vec<(i64, i32)> {
        c.insert.iter().map(|r| (r.player_id, r.slot)).collect()
    }

    #[test]
    fn unchanged_rows_are_left_alone_and_changes_are_rewritten() {
        let before = vec![
            stored(1, 0, "potion", 3, "{}"),
            stored(1, 1, "bread", 1, r#"{"a":"1"}"#),
            stored(1, 2, "sword", 1, "{}"),
            stored(2, 0, "potion", 1, "{}"),
        ];
        let after = vec![
            row(1, 0, "potion", 3, "{}"),          // same
            row(1, 1, "bread", 1, r#"{"a":"2"}"#), // property changed
            row(1, 3, "sword", 1, "{}"),           // moved from slot 2
            row(2, 0, "bread", 1, "{}"),           // other item
            row(2, 5, "potion", 9, "{}"),          // new
        ];
        let c = diff_slots(before, &HashSet::new(), after);
        assert_eq!(c.unchanged, 1);
        // Player 1 keeps slot 0: its other changed rows go one by one; player 2 keeps
        // nothing: all its rows go at once.
        assert_eq!(deletes(&c), vec![(1, 1), (1, 2)]);
        assert_eq!(c.delete_all_of, vec![2]);
        assert_eq!(inserts(&c), vec![(1, 1), (1, 3), (2, 0), (2, 5)]);
    }

    #[test]
    fn sqlite_rows_of_odd_types_rewrite_their_player() {
        // Player 1: a quantity stored as a real and one stored as text; player 2 fine.
        let text = r#"[[1,0,"potion",2.5,"{}"],[1,1,"bread",1,"{}"],[2,0,"gem",1,"{}"],
            [1,2,"sword","x","{}"]]"#;
        let (stored, unreadable) = stored_slots_from_json(text).unwrap();
        assert_eq!(unreadable, HashSet::from([1]));
        assert_eq!(stored.len(), 2);
        let c = diff_slots(
            stored,
            &unreadable,
            vec![
                row(1, 1, "bread", 1, "{}"), // equal to the readable stored row: still rewritten
                row(2, 0, "gem", 1, "{}"),
            ],
        );
        assert_eq!(c.delete_all_of, vec![1]);
        assert!(deletes(&c).is_empty());
        assert_eq!(inserts(&c), vec![(1, 1)]);
        assert_eq!(c.unchanged, 1);
        assert!(matches!(
            stored_slots_from_json("[[\"x\"]]"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            stored_slots_from_json("{}"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn quantity_alone_is_a_change() {
        let c = diff_slots(
            vec![stored(7, 4, "potion", 3, "{}")],
            &HashSet::new(),
            vec![row(7, 4, "potion", 2, "{}")],
        );
        assert_eq!(c.unchanged, 0);
        assert_eq!(c.delete_all_of, vec![7]);
        assert!(deletes(&c).is_empty());
        assert_eq!(inserts(&c), vec![(7, 4)]);
    }

    #[test]
    fn emptied_inventory_deletes_every_stored_row() {
        let c = diff_slots(
            vec![
                stored(3, 0, "potion", 1, "{}"),
                stored(3, 1, "bread", 1, "{}"),
            ],
            &HashSet::new(),
            Vec::new(),
        );
        assert_eq!(c.delete_all_of, vec![3]);
        assert!(deletes(&c).is_empty() && c.insert.is_empty());
    }

    #[test]
    fn postgres_rendering_of_the_same_properties_is_the_same() {
        // JSONB renders with a space after the colon and orders keys its own way.
        let c = diff_slots(
            vec![stored(
                1,
                0,
                "sword",
                1,
                r#"{"zz": "1", "durability": "50"}"#,
            )],
            &HashSet::new(),
            vec![row(1, 0, "sword", 1, r#"{"durability":"50","zz":"1"}"#)],
        );
        assert_eq!(c.unchanged, 1);
        assert!(deletes(&c).is_empty() && c.delete_all_of.is_empty() && c.insert.is_empty());
    }

    #[test]
    fn unreadable_stored_properties_are_rewritten() {
        let c = diff_slots(
            vec![stored(1, 0, "sword", 1, "not json")],
            &HashSet::new(),
            vec![row(1, 0, "sword", 1, "{}")],
        );
        assert_eq!(c.unchanged, 0);
        assert_eq!(c.delete_all_of, vec![1]);
        assert_eq!(inserts(&c), vec![(1, 0)]);
    }
}
