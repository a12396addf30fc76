//! Conversions between a stored [`CharacterRecord`] and a zone's live character (its
//! [`CharacterState`] and [`CharacterGameplay`]), so a login spawns the saved character and
//! the driver can snapshot it for write-behind saving.
//!
//! Records name content by string id (`"warrior"`, `"potion"`, `"health"`); the live state
//! by the numeric ids of the loaded content. At load:
//! * a class, race or item the content does not know refuses the record with a message
//!   naming it (the login is refused; nothing is silently dropped), as do a non-finite
//!   position, yaw or pool value and a slot that does not exist or breaks the item's rules;
//! * a pool the record does not name starts full; a pool name the content does not know is
//!   ignored with a warning (the record's documented rule); values are clamped to
//!   `0..=max` and restored in whole points (regeneration resumes after the pool's regen
//!   delay, as after spending);
//! * a position outside the zone's movement bounds spawns at the zone's spawn point;
//! * **the dead**: a character is saved with its pools as they are, so a character that
//!   died and logged out is stored with 0 health. At load, a record with 0 health (less
//!   than one whole point) respawns at the zone's spawn point with every pool full.
//!
//! A snapshot ([`Zone::character_record`]) takes position, yaw, zone id, pools (whole
//! points, every content pool) and inventory from the live state; ids, name, level,
//! experience and version are copied from the caller's base record (the zone knows none of
//! them). Cooldowns, timed effects and strikes are not saved.

use glam::Vec3;

use crate::entity::{CharacterState, EntityId};
use crate::gameplay::character::CharacterGameplay;
use crate::gameplay::content::Content;
use crate::gameplay::inventory::{EquipSlot, Inventory, ItemStack, SlotRef};
use crate::persist::{CharacterRecord, EQUIPMENT_SLOT_BASE, SlotRecord};

use crate::session::server::ConnectionState;

use super::{ConnectionId, Zone};

/// The content's starting kit as records (what a new character's bag holds), for the
/// character template of a store. Empty (with an error log) only if the content cannot
/// build a bag, which content validation rules out.
#[must_use]
pub fn starting_inventory(content: &Content) -> Vec<SlotRecord> {
    let rules = content.rules();
    let mut inventory = match Inventory::new(rules.bag_slots) {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "starting inventory: rules.bag_slots");
            return Vec::new();
        }
    };
    for &(item, quantity) in &rules.starting_items {
        if let Err(e) = inventory.add(content, &ItemStack::new(item, quantity)) {
            tracing::error!(error = %e, "starting inventory: rules.starting_items");
        }
    }
    inventory_records(content, &inventory)
}

/// The record slot number of an inventory slot.
#[must_use]
pub fn record_slot(slot: SlotRef) -> u32 {
    match slot {
        SlotRef::Bag(b) => b,
        // At most 9 equipment slots: fits.
        SlotRef::Equip(e) => EQUIPMENT_SLOT_BASE + e.index() as u32,
    }
}

/// The inventory slot of a record slot number; `None` for an equipment number past the
/// last equipment slot.
#[must_use]
pub fn slot_of_record(slot: u32) -> Option<SlotRef> {
    if slot < EQUIPMENT_SLOT_BASE {
        Some(SlotRef::Bag(slot))
    } else {
        EquipSlot::ALL
            .get((slot - EQUIPMENT_SLOT_BASE) as usize)
            .map(|&e| SlotRef::Equip(e))
    }
}

/// Every occupied slot of `inventory` as records, ascending by slot.
#[must_use]
pub fn inventory_records(content: &Content, inventory: &Inventory) -> Vec<SlotRecord> {
    inventory
        .occupied_slots()
        .map(|(slot, stack)| SlotRecord {
            slot: record_slot(slot),
            // Items in an inventory are in the content (checked when placed); a stale id
            // is written as `#N`, which a later load refuses by name.
            item: content
                .item(stack.item)
                .map_or_else(|| format!("#{}", stack.item.0), |d| d.id.clone()),
            quantity: stack.quantity,
            properties: stack.properties.clone(),
        })
        .collect()
}

/// Builds a bag with the content's size from `records`. Fails naming the slot and item.
pub fn inventory_from_records(
    content: &Content,
    records: &[SlotRecord],
) -> Result<Inventory, String> {
    let mut inventory =
        Inventory::new(content.rules().bag_slots).map_err(|e| format!("rules.bag_slots: {e}"))?;
    for r in records {
        let item = content.item_id(&r.item).ok_or_else(|| {
            format!(
                "inventory slot {}: item `{}` is not in the content",
                r.slot, r.item
            )
        })?;
        let slot = slot_of_record(r.slot).ok_or_else(|| {
            format!(
                "inventory slot {}: no such equipment slot (holding `{}`)",
                r.slot, r.item
            )
        })?;
        let stack = ItemStack {
            item,
            quantity: r.quantity,
            properties: r.properties.clone(),
        };
        inventory
            .place(content, slot, stack)
            .map_err(|e| format!("inventory slot {} (`{}`): {e}", r.slot, r.item))?;
    }
    Ok(inventory)
}

/// A live character restored from a record: where it stands and its gameplay state.
#[derive(Clone, Debug)]
pub struct Restored {
    /// Position and yaw (the spawn point for the dead and for positions out of bounds).
    pub state: CharacterState,
    /// Class, race, pools and inventory from the record; fresh cooldowns and strikes.
    pub gameplay: CharacterGameplay,
    /// True when the record was dead and the character respawned with full pools.
    pub respawned: bool,
}

/// Restores `record` for a zone with `content`, spawning the dead (and positions outside
/// `bounds`) at `spawn_m`. Fails with a message naming what the content does not know or
/// what is malformed.
pub fn restore(
    content: &Content,
    record: &CharacterRecord,
    spawn_m: Vec3,
    in_bounds: impl Fn(Vec3) -> bool,
    now_ms: u64,
) -> Result<Restored, String> {
    let class = content
        .class_id(&record.class)
        .ok_or_else(|| format!("class `{}` is not in the content", record.class))?;
    let race = content
        .race_id(&record.race)
        .ok_or_else(|| format!("race `{}` is not in the content", record.race))?;
    if !(record.position_m.is_finite() && record.yaw_rad.is_finite()) {
        return Err(format!(
            "position {:?} / yaw {} is not finite",
            record.position_m, record.yaw_rad
        ));
    }
    let mut gameplay = CharacterGameplay::new(content, class, race, now_ms)?;
    gameplay.inventory = inventory_from_records(content, &record.inventory)?;
    let mut values = Vec::with_capacity(record.pools.len());
    for (name, value) in &record.pools {
        if !value.is_finite() {
            return Err(format!("pool `{name}` has the value {value}"));
        }
        match content.pool_id(name) {
            Some(pool) => values.push((pool, *value)),
            None => tracing::warn!(
                character = record.character_id,
                pool = %name,
                "saved pool is not in the content; it starts full"
            ),
        }
    }
    let health = content.health_pool();
    let dead = values.iter().any(|&(p, v)| p == health && v < 1.0);
    let mut state = CharacterState::at(record.position_m);
    state.yaw_rad = record.yaw_rad;
    if dead {
        // Full pools (as built) at the spawn point.
        state = CharacterState::at(spawn_m);
    } else {
        let costs: Vec<_> = values
            .iter()
            .map(|&(pool, v)| {
                let max = gameplay.pools.max(pool);
                // Clamped to 0..=max before the cast, so it fits.
                let kept = v.clamp(0.0, max as f32).floor() as u32;
                (pool, max - kept.min(max))
            })
            .filter(|&(_, deficit)| deficit > 0)
            .collect();
        // Affordable: every deficit is at most the full pool it is taken from (a pool named
        // twice keeps its last value below, so sum each pool once).
        let mut once: Vec<(crate::gameplay::content::PoolId, u32)> = Vec::new();
        for (pool, deficit) in costs {
            match once.iter_mut().find(|(p, _)| *p == pool) {
                Some(entry) => entry.1 = deficit,
                None => once.push((pool, deficit)),
            }
        }
        gameplay
            .pools
            .spend(&once, now_ms)
            .map_err(|e| format!("pools: {e}"))?;
        if !in_bounds(state.position_m) {
            tracing::warn!(
                character = record.character_id,
                position = ?record.position_m,
                "saved position is outside the zone's bounds; spawning at the spawn point"
            );
            state = CharacterState::at(spawn_m);
        }
    }
    Ok(Restored {
        state,
        gameplay,
        respawned: dead,
    })
}

/// The record of a live character: `base` with position, yaw, zone id, pools and inventory
/// replaced from the live state.
#[must_use]
pub fn snapshot(
    content: &Content,
    base: &CharacterRecord,
    state: &CharacterState,
    gameplay: &CharacterGameplay,
    zone_id: u16,
) -> CharacterRecord {
    let pools = content
        .pools()
        .iter()
        .enumerate()
        .map(|(i, def)| {
            // Pool ids are dense u16 indices (checked on load).
            let pool = crate::gameplay::content::PoolId(i as u16);
            (def.id.clone(), gameplay.pools.current(pool) as f32)
        })
        .collect();
    CharacterRecord {
        zone_id,
        position_m: state.position_m,
        yaw_rad: state.yaw_rad,
        pools,
        inventory: inventory_records(content, &gameplay.inventory),
        ..base.clone()
    }
}

impl Zone {
    /// Accepts a pending login with the character of `record` (see the module docs):
    /// spawns it at its saved position with its pools and inventory. `Ok(None)` when no
    /// login is pending on `id`; `Err` (nothing changed) when the record names something
    /// the content does not know or is malformed.
    pub fn accept_login_record(
        &mut self,
        id: ConnectionId,
        record: &CharacterRecord,
    ) -> Result<Option<EntityId>, String> {
        if !self
            .players
            .get(&id)
            .is_some_and(|p| p.connection.state() == ConnectionState::LoginPending)
        {
            return Ok(None);
        }
        let bounds = self.config.movement.bounds;
        let in_bounds = |p: Vec3| {
            p.x >= bounds.min_xy_m.x
                && p.y >= bounds.min_xy_m.y
                && p.x <= bounds.max_xy_m.x
                && p.y <= bounds.max_xy_m.y
        };
        let restored = restore(
            &self.config.gameplay.content,
            record,
            self.config.spawn_position_m,
            in_bounds,
            self.now_ms(),
        )
        .map_err(|e| format!("character {}: {e}", record.character_id))?;
        Ok(self.accept_login_with(id, restored.state, Some(restored.gameplay)))
    }

    /// A snapshot of `id`'s character for saving: `base` with the live position, yaw,
    /// zone id, pools and inventory (see the module docs). `None` when `id` is not logged
    /// in here.
    #[must_use]
    pub fn character_record(
        &self,
        id: ConnectionId,
        base: &CharacterRecord,
    ) -> Option<CharacterRecord> {
        let player = self.players.get(&id)?;
        let (state, gameplay) = (player.character.as_ref()?, player.gameplay.as_ref()?);
        Some(snapshot(
            &self.config.gameplay.content,
            base,
            state,
            gameplay,
            self.zone_id().0,
        ))
    }
}

#[cfg(test)]
#[path = "persistence_tests.rs"]
mod tests;
