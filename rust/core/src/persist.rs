//! What of a character outlives its session: the record the server's storage keeps and the
//! zone builds a character from at login and snapshots for write-behind saving.
//!
//! Plain data (sans-IO). Content references are by their stable string ids (`"warrior"`,
//! `"potion"`), not by the numeric ids of one content file, so a record survives edits to
//! the content. Conversions to and from the zone's live state live with the zone
//! (`zone::persistence`).

use std::collections::BTreeMap;

use glam::Vec3;
use serde::{Deserialize, Serialize};

/// Inventory slots at or above this number are equipment: slot
/// `EQUIPMENT_SLOT_BASE + EquipSlot::index()`. Below it, bag slots.
pub const EQUIPMENT_SLOT_BASE: u32 = 1000;

/// Longest character name, bytes.
pub const MAX_CHARACTER_NAME_BYTES: usize = 24;

/// One character as stored. See the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CharacterRecord {
    /// Database id. Invariant: > 0 and never reused.
    pub character_id: u64,
    /// Id of the owning account (> 0).
    pub account_id: u64,
    /// Name, unique on the server ([`valid_character_name`]).
    pub name: String,
    /// Content id of the race.
    pub race: String,
    /// Content id of the class.
    pub class: String,
    /// Level (>= 1).
    pub level: u32,
    /// Experience points.
    pub experience: u64,
    /// Zone the character was in when this record was taken.
    pub zone_id: u16,
    /// Position, metres (world frame).
    pub position_m: Vec3,
    /// Facing, radians.
    pub yaw_rad: f32,
    /// Current value of each pool by content id (`"health" -> 148.0`). A pool the record
    /// does not name starts full; a name the content does not know is ignored with a log.
    pub pools: Vec<(String, f32)>,
    /// Occupied inventory slots, ascending by `slot`, each slot at most once.
    pub inventory: Vec<SlotRecord>,
    /// Save version. Invariant: a store never replaces a stored record with one whose
    /// version is lower or equal; each snapshot a zone takes that differs from the last one
    /// it offered carries the next version. A new character is stored with version 0.
    pub version: u64,
}

/// One occupied inventory slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    /// Bag slot (`< EQUIPMENT_SLOT_BASE`) or equipment slot (see [`EQUIPMENT_SLOT_BASE`]).
    pub slot: u32,
    /// Content id of the item.
    pub item: String,
    /// How many (>= 1).
    pub quantity: u32,
    /// Per-instance properties (stored as a JSON object).
    pub properties: BTreeMap<String, String>,
}

/// Whether `name` is an acceptable character name: 2..=[`MAX_CHARACTER_NAME_BYTES`] bytes,
/// ASCII letters and digits, starting with a letter.
#[must_use]
pub fn valid_character_name(name: &str) -> bool {
    (2..=MAX_CHARACTER_NAME_BYTES).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_names() {
        assert!(valid_character_name("Alice"));
        assert!(valid_character_name("bot0042"));
        assert!(!valid_character_name("a"));
        assert!(!valid_character_name("0abc"));
        assert!(!valid_character_name("Al ice"));
        assert!(!valid_character_name(&"a".repeat(25)));
        assert!(!valid_character_name("Ålice"));
    }
}
