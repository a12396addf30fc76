//! Gameplay over an `mmo_client`: ability and inventory requests, and the state the server
//! last stated (pools, inventory and equipment, cooldowns, content hash), as plain C types.
//!
//! The client never decides: `mmo_client_use_ability` and `mmo_client_inventory_op` only
//! send a request and return its number; the answer is an `ABILITY_RESULT` or
//! `INVENTORY_RESULT` event carrying that number. What the reading functions return is
//! what the server last sent (`INVENTORY_CHANGED` and `RESOURCES_CHANGED` events say when
//! it changed); cooldowns count down on the client's clock from the server's last answer.
//!
//! Ids are the content's dense numeric ids (file order of the server's content; with the
//! default content ability 0 is `strike`, pool 0 `health`, 1 `mana`, 2 `stamina`). The
//! client does not hold the content itself, only its hash (`mmo_client_content_hash`), so
//! names of abilities, items and pools are not available here (not done: a content export
//! for clients).
//!
//! Item properties are read as text (`mmo_client_item_properties`): one `key=value` line
//! per property, sorted by key, each ending in `\n`, not escaped (content keeps `=` out of
//! keys and line breaks out of both).

use std::ffi::c_char;
use std::fmt::Write as _;

use mmo_core::entity::EntityId;
use mmo_core::gameplay::content::AbilityId;
use mmo_core::gameplay::inventory::{EquipSlot, ItemStack};
use mmo_core::gameplay::messages::{InventoryOp, InventoryView, WireTarget};

use super::{Conn, mmo_client};
use crate::boundary::{self, FfiError, Out, OutSlice};
use crate::result::mmo_result;
use crate::types::mmo_vec3;

/// Length of the content hash (`mmo_client_content_hash`), bytes.
pub const MMO_CONTENT_HASH_LEN_BYTES: usize = 32;

/// What an ability is aimed at (`mmo_ability_target.kind`, a plain `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_target_kind {
    /// The caster itself.
    SelfTarget = 0,
    /// Another entity: `entity_id`.
    Entity = 1,
    /// A point on the ground: `point_m`, metres.
    GroundPoint = 2,
    /// A direction from the caster: `point_m` as a vector (need not be normalised).
    Direction = 3,
}

/// What an ability is aimed at.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct mmo_ability_target {
    /// A `mmo_target_kind` value.
    pub kind: u32,
    /// The target entity (kind `MMO_TARGET_KIND_ENTITY`); ignored otherwise.
    pub entity_id: u32,
    /// The ground point in metres (kind `MMO_TARGET_KIND_GROUND_POINT`) or the direction
    /// (kind `MMO_TARGET_KIND_DIRECTION`); finite; ignored otherwise.
    pub point_m: mmo_vec3,
}

impl mmo_ability_target {
    fn to_core(self) -> Result<WireTarget, FfiError> {
        Ok(match self.kind {
            k if k == mmo_target_kind::SelfTarget as u32 => WireTarget::SelfTarget,
            k if k == mmo_target_kind::Entity as u32 => {
                WireTarget::Entity(mmo_core::entity::EntityId(self.entity_id))
            }
            k if k == mmo_target_kind::GroundPoint as u32 => {
                WireTarget::GroundPoint(self.point_m.finite("target.point_m")?.to_array())
            }
            k if k == mmo_target_kind::Direction as u32 => {
                WireTarget::Direction(self.point_m.finite("target.point_m")?.to_array())
            }
            other => return Err(FfiError::invalid_enum("target.kind", other)),
        })
    }
}

/// An equipment slot (`mmo_inventory_op.equip_slot`, `mmo_client_equipment_slot`; plain
/// `uint32_t` values). There are `MMO_EQUIP_SLOT_COUNT` of them, numbered from 0.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_equip_slot {
    /// Helmet, hat.
    Head = 0,
    /// Body armour.
    Chest = 1,
    /// Trousers, leg armour.
    Legs = 2,
    /// Boots.
    Feet = 3,
    /// Gloves.
    Hands = 4,
    /// Weapon in the main hand.
    MainHand = 5,
    /// Shield or second weapon.
    OffHand = 6,
    /// Necklace, amulet.
    Neck = 7,
    /// A ring.
    Ring = 8,
}

/// Number of equipment slots (`mmo_equip_slot` values are `0..MMO_EQUIP_SLOT_COUNT`).
pub const MMO_EQUIP_SLOT_COUNT: u32 = 9;

/// The core's equipment slot for a C value (`name` is the argument named in the error).
fn equip_slot(value: u32, name: &str) -> Result<EquipSlot, FfiError> {
    // The C values are the positions in `EquipSlot::ALL` (checked by a test).
    usize::try_from(value)
        .ok()
        .and_then(|i| EquipSlot::ALL.get(i).copied())
        .ok_or_else(|| FfiError::invalid_enum(name, value))
}

/// An inventory operation (`mmo_inventory_op.kind`, a plain `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_inventory_op_kind {
    /// Move the whole stack in `slot` to the empty `to_slot`.
    Move = 0,
    /// Move `quantity` items (less than the stack) from `slot` to the empty `to_slot`.
    Split = 1,
    /// Put as much of the stack in `slot` onto the same item in `to_slot` as fits.
    Merge = 2,
    /// Exchange `slot` and `to_slot`.
    Swap = 3,
    /// Destroy `quantity` items of `slot`.
    Drop = 4,
    /// Consume one usable item of `slot`.
    Use = 5,
    /// Wear the item in `slot` (what was worn goes to `slot`).
    Equip = 6,
    /// Take off what is worn in `equip_slot` into the bag slot `to_slot`.
    Unequip = 7,
    /// Give `quantity` items of `slot` to the player character whose entity id is in
    /// `to_slot` (within 5 m). With a character store, the result arrives once the server
    /// saved both characters.
    Give = 8,
}

/// An inventory operation on the local character's own inventory. Slots are bag slot
/// indices; fields a kind does not name are ignored. Slot numbers are checked by the
/// server (a bad one is refused with kind `inventory_bad_slot`), not here.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mmo_inventory_op {
    /// A `mmo_inventory_op_kind` value.
    pub kind: u32,
    /// The source slot (move, split, merge, drop, use, equip; swap's first slot).
    pub slot: u32,
    /// The destination slot (move, split, merge, unequip; swap's second slot); for give,
    /// the receiver's entity id.
    pub to_slot: u32,
    /// How many items (split, drop, give).
    pub quantity: u32,
    /// The equipment slot (unequip), a `mmo_equip_slot` value.
    pub equip_slot: u32,
}

impl mmo_inventory_op {
    fn to_core(self) -> Result<InventoryOp, FfiError> {
        let (slot, to, quantity) = (self.slot, self.to_slot, self.quantity);
        const K_MOVE: u32 = mmo_inventory_op_kind::Move as u32;
        const K_SPLIT: u32 = mmo_inventory_op_kind::Split as u32;
        const K_MERGE: u32 = mmo_inventory_op_kind::Merge as u32;
        const K_SWAP: u32 = mmo_inventory_op_kind::Swap as u32;
        const K_DROP: u32 = mmo_inventory_op_kind::Drop as u32;
        const K_USE: u32 = mmo_inventory_op_kind::Use as u32;
        const K_EQUIP: u32 = mmo_inventory_op_kind::Equip as u32;
        const K_UNEQUIP: u32 = mmo_inventory_op_kind::Unequip as u32;
        const K_GIVE: u32 = mmo_inventory_op_kind::Give as u32;
        Ok(match self.kind {
            K_MOVE => InventoryOp::Move { from: slot, to },
            K_SPLIT => InventoryOp::Split {
                from: slot,
                to,
                quantity,
            },
            K_MERGE => InventoryOp::Merge { from: slot, to },
            K_SWAP => InventoryOp::Swap { a: slot, b: to },
            K_DROP => InventoryOp::Drop { slot, quantity },
            K_USE => InventoryOp::Use { slot },
            K_EQUIP => InventoryOp::Equip { slot },
            K_UNEQUIP => InventoryOp::Unequip {
                slot: equip_slot(self.equip_slot, "op.equip_slot")?,
                to,
            },
            K_GIVE => InventoryOp::Give {
                slot,
                quantity,
                to: EntityId(to),
            },
            other => return Err(FfiError::invalid_enum("op.kind", other)),
        })
    }
}

/// One pool's value (`mmo_client_resources`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mmo_pool_value {
    /// Which pool (the content's pool id; default content: 0 health, 1 mana, 2 stamina).
    pub pool_id: u16,
    /// Current points.
    pub current: u32,
    /// Maximum points.
    pub max: u32,
}

/// One inventory or equipment slot (`mmo_client_inventory_slot`,
/// `mmo_client_equipment_slot`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mmo_item_slot {
    /// 1 when the slot holds items, 0 when it is empty (then the other fields are 0).
    pub present: u8,
    /// The content's item id.
    pub item_id: u32,
    /// How many (1 or more when present).
    pub quantity: u32,
    /// Number of per-instance properties (read them with `mmo_client_item_properties`).
    pub property_count: u32,
}

/// Where an item slot is (`mmo_client_item_properties`, a plain `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_item_container {
    /// A bag slot index.
    Bag = 0,
    /// A `mmo_equip_slot` value.
    Equipment = 1,
}

fn item_slot(stack: Option<&ItemStack>) -> mmo_item_slot {
    match stack {
        None => mmo_item_slot::default(),
        Some(s) => mmo_item_slot {
            present: 1,
            item_id: s.item.0,
            quantity: s.quantity,
            property_count: u32::try_from(s.properties.len()).unwrap_or(u32::MAX),
        },
    }
}

/// The connected session of `c`, or `MMO_RESULT_INVALID_STATE` naming what needed it.
fn session<'a>(
    c: &'a mmo_client,
    what: &str,
) -> Result<&'a mmo_core::session::client::ClientSession, FfiError> {
    match &c.conn {
        Conn::Connected(net) => Ok(net.session()),
        _ => Err(FfiError::new(
            mmo_result::InvalidState,
            format!(
                "{what} needs a connected client; the client is {}",
                c.conn.name()
            ),
        )),
    }
}

/// The inventory the server last sent, or the state error.
fn inventory<'a>(c: &'a mmo_client, what: &str) -> Result<&'a InventoryView, FfiError> {
    session(c, what)?.inventory().ok_or_else(|| {
        FfiError::new(
            mmo_result::Empty,
            format!("{what}: the server has not sent the inventory yet (it follows the WELCOME)"),
        )
    })
}

/// The stack in bag slot `index`, or `MMO_RESULT_INVALID_ARGUMENT`.
fn bag_slot(view: &InventoryView, index: u32) -> Result<Option<&ItemStack>, FfiError> {
    usize::try_from(index)
        .ok()
        .and_then(|i| view.bag.get(i))
        .map(Option::as_ref)
        .ok_or_else(|| {
            FfiError::invalid(
                "index",
                format!("= {index}, the bag has {} slots", view.bag.len()),
            )
        })
}

/// The stack worn in `slot`.
fn worn(view: &InventoryView, slot: EquipSlot) -> Option<&ItemStack> {
    view.equipped.get(slot.index()).and_then(Option::as_ref)
}

/// Asks the server to use ability `ability_id` on `*target`; `*out_request` receives the
/// request number the `ABILITY_RESULT` event will carry. The request also tells the server
/// what time the player was looking at, so it can rewind the target (lag compensation).
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ENUM` (`target->kind`),
/// `MMO_RESULT_INVALID_ARGUMENT` (non-finite `point_m` for a ground point or direction),
/// `MMO_RESULT_INVALID_STATE` (not logged in). Unknown abilities, range, cooldowns and
/// costs are the server's to refuse (in the result event). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `target` NULL or readable; `out_request` NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_use_ability(
    client: *mut mmo_client,
    ability_id: u16,
    target: *const mmo_ability_target,
    out_request: *mut u32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        // SAFETY: per the caller, NULL or readable.
        let target = unsafe { boundary::in_ref(target, "target") }?.to_core()?;
        let out_request = Out::new(out_request, "out_request")?;
        let request = c
            .net("using an ability")?
            .session_mut()
            .use_ability(AbilityId(ability_id), target)
            .map_err(|e| {
                FfiError::new(mmo_result::InvalidState, format!("using an ability: {e}"))
            })?;
        c.pump_connected();
        // SAFETY: valid per the caller.
        unsafe { out_request.write(request) };
        Ok(())
    })
}

/// Asks the server to stop the cast in progress (nothing happens when there is none; no
/// answer event follows).
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_STATE` (not logged in). Game
/// thread only.
///
/// # Safety
/// `client` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_cancel_cast(client: *mut mmo_client) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        c.net("cancelling a cast")?
            .session_mut()
            .cancel_cast()
            .map_err(|e| {
                FfiError::new(mmo_result::InvalidState, format!("cancelling a cast: {e}"))
            })?;
        c.pump_connected();
        Ok(())
    })
}

/// Asks the server for an inventory operation; `*out_request` receives the request number
/// the `INVENTORY_RESULT` event will carry. Nothing changes locally until the server
/// answers (on success an `INVENTORY_CHANGED` event comes first).
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ENUM` (`op->kind`, or
/// `op->equip_slot` of an unequip), `MMO_RESULT_INVALID_STATE` (not logged in). Slots and
/// quantities are the server's to refuse (in the result event). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `op` NULL or readable; `out_request` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_inventory_op(
    client: *mut mmo_client,
    op: *const mmo_inventory_op,
    out_request: *mut u32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        // SAFETY: per the caller, NULL or readable.
        let op = unsafe { boundary::in_ref(op, "op") }?.to_core()?;
        let out_request = Out::new(out_request, "out_request")?;
        let request = c
            .net("an inventory operation")?
            .session_mut()
            .inventory_op(op)
            .map_err(|e| {
                FfiError::new(
                    mmo_result::InvalidState,
                    format!("an inventory operation: {e}"),
                )
            })?;
        c.pump_connected();
        // SAFETY: valid per the caller.
        unsafe { out_request.write(request) };
        Ok(())
    })
}

/// Copies the local character's pools as the server last sent them (in pool order) into
/// `out_pools`, at most `capacity`; `*out_count` receives the number of pools, `*out_dead`
/// 1 while the character is dead (else 0), `*out_respawn_in_ms` the time until the respawn
/// while dead (else 0). `out_pools` may be NULL when `capacity` is 0.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_BUFFER_TOO_SMALL` (more pools than
/// `capacity`; only `*out_count` is written, with the number needed),
/// `MMO_RESULT_INVALID_STATE` (not connected), `MMO_RESULT_EMPTY` (the server has not sent
/// them yet; they follow the `WELCOME`, announced by `RESOURCES_CHANGED`). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out_pools` NULL or writable for `capacity`
/// elements; the other outputs NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_resources(
    client: *const mmo_client,
    out_pools: *mut mmo_pool_value,
    capacity: usize,
    out_count: *mut usize,
    out_dead: *mut u8,
    out_respawn_in_ms: *mut u32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let c = unsafe { boundary::in_ref(client, "client") }?;
        let out_pools = OutSlice::new(out_pools, capacity, "out_pools")?;
        let out_count = Out::new(out_count, "out_count")?;
        let out_dead = Out::new(out_dead, "out_dead")?;
        let out_respawn_in_ms = Out::new(out_respawn_in_ms, "out_respawn_in_ms")?;
        let view = session(c, "reading the resources")?
            .resources()
            .ok_or_else(|| {
                FfiError::new(
                    mmo_result::Empty,
                    "the server has not sent the resources yet (they follow the WELCOME)",
                )
            })?;
        // SAFETY: valid per the caller.
        unsafe { out_count.write(view.pools.len()) };
        let pools = view.pools.iter().map(|p| mmo_pool_value {
            pool_id: p.pool.0,
            current: p.current,
            max: p.max,
        });
        // SAFETY: valid for `capacity` elements per the caller.
        unsafe { out_pools.write_iter(pools) }?;
        // SAFETY: valid per the caller.
        unsafe { out_dead.write(u8::from(view.dead)) };
        // SAFETY: valid per the caller.
        unsafe { out_respawn_in_ms.write(if view.dead { view.respawn_in_ms } else { 0 }) };
        Ok(())
    })
}

/// Writes remote entity `entity_id`'s health as a percentage of its maximum to
/// `*out_percent` (`0..=100`, 0 = dead), from its newest snapshot record: health travels in
/// the replicated state at the entity's priority, so it also follows regeneration. (The
/// local character's pools are `mmo_client_resources`.)
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_NOT_FOUND` (not in view),
/// `MMO_RESULT_INVALID_STATE` (not connected). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out_percent` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_entity_health(
    client: *const mmo_client,
    entity_id: u32,
    out_percent: *mut u8,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let c = unsafe { boundary::in_ref(client, "client") }?;
        let out_percent = Out::new(out_percent, "out_percent")?;
        let Conn::Connected(net) = &c.conn else {
            return Err(FfiError::new(
                mmo_result::InvalidState,
                format!(
                    "reading an entity's health needs a connected client; the client is {}",
                    c.conn.name()
                ),
            ));
        };
        let percent = net
            .session()
            .remote_health_percent(EntityId(entity_id))
            .ok_or_else(|| {
                FfiError::new(
                    mmo_result::NotFound,
                    format!("entity {entity_id} is not in view"),
                )
            })?;
        // SAFETY: valid per the caller.
        unsafe { out_percent.write(percent) };
        Ok(())
    })
}

/// Writes the cooldowns left on ability `ability_id` now, counted down on the client's
/// clock from the server's last `ABILITY_RESULT` (0 for an ability never answered):
/// `*out_global_ms` the global cooldown, `*out_own_ms` the ability's own.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_STATE` (not connected). Game
/// thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; the outputs NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_ability_cooldown(
    client: *const mmo_client,
    ability_id: u16,
    out_global_ms: *mut u32,
    out_own_ms: *mut u32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let c = unsafe { boundary::in_ref(client, "client") }?;
        let out_global_ms = Out::new(out_global_ms, "out_global_ms")?;
        let out_own_ms = Out::new(out_own_ms, "out_own_ms")?;
        let Conn::Connected(net) = &c.conn else {
            return Err(FfiError::new(
                mmo_result::InvalidState,
                format!(
                    "reading a cooldown needs a connected client; the client is {}",
                    c.conn.name()
                ),
            ));
        };
        let left = net
            .session()
            .cooldown_left(AbilityId(ability_id), net.now_us());
        // SAFETY: valid per the caller.
        unsafe { out_global_ms.write(left.global_ms) };
        // SAFETY: valid per the caller.
        unsafe { out_own_ms.write(left.own_ms) };
        Ok(())
    })
}

/// Writes the number of bag slots of the inventory the server last sent to `*out`.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_STATE` (not connected),
/// `MMO_RESULT_EMPTY` (the server has not sent the inventory yet; it follows the
/// `WELCOME`, announced by `INVENTORY_CHANGED`). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_inventory_slot_count(
    client: *const mmo_client,
    out: *mut usize,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let c = unsafe { boundary::in_ref(client, "client") }?;
        let out = Out::new(out, "out")?;
        let count = inventory(c, "reading the inventory")?.bag.len();
        // SAFETY: valid per the caller.
        unsafe { out.write(count) };
        Ok(())
    })
}

/// Writes bag slot `index` (`0..mmo_client_inventory_slot_count`) of the inventory the
/// server last sent to `*out` (`present` 0 for an empty slot).
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ARGUMENT` (`index` past the
/// bag), `MMO_RESULT_INVALID_STATE` (not connected), `MMO_RESULT_EMPTY` (no inventory
/// yet). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_inventory_slot(
    client: *const mmo_client,
    index: u32,
    out: *mut mmo_item_slot,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let c = unsafe { boundary::in_ref(client, "client") }?;
        let out = Out::new(out, "out")?;
        let view = inventory(c, "reading an inventory slot")?;
        let value = item_slot(bag_slot(view, index)?);
        // SAFETY: valid per the caller.
        unsafe { out.write(value) };
        Ok(())
    })
}

/// Writes what is worn in equipment slot `slot` (a `mmo_equip_slot` value) to `*out`
/// (`present` 0 when nothing is).
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ENUM` (`slot`),
/// `MMO_RESULT_INVALID_STATE` (not connected), `MMO_RESULT_EMPTY` (no inventory yet). Game
/// thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_equipment_slot(
    client: *const mmo_client,
    slot: u32,
    out: *mut mmo_item_slot,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let c = unsafe { boundary::in_ref(client, "client") }?;
        let out = Out::new(out, "out")?;
        let slot = equip_slot(slot, "slot")?;
        let view = inventory(c, "reading an equipment slot")?;
        let value = item_slot(worn(view, slot));
        // SAFETY: valid per the caller.
        unsafe { out.write(value) };
        Ok(())
    })
}

/// Writes the per-instance properties of the stack in a slot (`container` a
/// `mmo_item_container` value; `index` a bag slot index or a `mmo_equip_slot` value) into
/// `buf` as NUL-terminated UTF-8: one `key=value` line per property, sorted by key, each
/// ending in `\n` (empty for an empty slot or a stack without properties). Not escaped.
///
/// `*out_len` receives the length without the NUL, also on `MMO_RESULT_BUFFER_TOO_SMALL`
/// (then the buffer needs `*out_len + 1` bytes and is untouched); `buf` may be NULL when
/// `len` is 0. Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ENUM` (`container`,
/// or `index` for equipment), `MMO_RESULT_INVALID_ARGUMENT` (bag `index` past the bag),
/// `MMO_RESULT_INVALID_STATE` (not connected), `MMO_RESULT_EMPTY` (no inventory yet). Game
/// thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `buf` NULL or writable for `len` bytes;
/// `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_item_properties(
    client: *const mmo_client,
    container: u32,
    index: u32,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let c = unsafe { boundary::in_ref(client, "client") }?;
        // NULL checks up front, before the state (write_str repeats them).
        Out::new(out_len, "out_len")?;
        OutSlice::new(buf.cast::<u8>(), len, "buf")?;
        let view = match container {
            k if k == mmo_item_container::Bag as u32
                || k == mmo_item_container::Equipment as u32 =>
            {
                inventory(c, "reading item properties")?
            }
            other => return Err(FfiError::invalid_enum("container", other)),
        };
        let stack = if container == mmo_item_container::Bag as u32 {
            bag_slot(view, index)?
        } else {
            worn(view, equip_slot(index, "index")?)
        };
        let mut text = String::new();
        for (key, value) in stack.iter().flat_map(|s| s.properties.iter()) {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{key}={value}");
        }
        // SAFETY: per the caller, `buf`/`len` and `out_len` are valid.
        unsafe { boundary::write_str(&text, buf, len, out_len) }
    })
}

/// Writes the SHA-256 hash of the server's gameplay content (from the welcome) to `out`,
/// `MMO_CONTENT_HASH_LEN_BYTES` (32) bytes. Compare it with the hash of the content the
/// game ships to detect a client whose ids would not match the server's.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_STATE` (not connected),
/// `MMO_RESULT_EMPTY` (before the `WELCOME`). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `out` NULL or writable for 32 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_content_hash(
    client: *const mmo_client,
    out: *mut u8,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let c = unsafe { boundary::in_ref(client, "client") }?;
        let out = OutSlice::new(out, MMO_CONTENT_HASH_LEN_BYTES, "out")?;
        let hash = session(c, "reading the content hash")?
            .content_hash()
            .ok_or_else(|| {
                FfiError::new(
                    mmo_result::Empty,
                    "the content hash arrives with the WELCOME event",
                )
            })?;
        // SAFETY: valid for 32 bytes per the caller.
        unsafe { out.write(&hash) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_equip_slots_are_the_core_positions() {
        assert_eq!(EquipSlot::ALL.len() as u32, MMO_EQUIP_SLOT_COUNT);
        for (i, slot) in EquipSlot::ALL.iter().enumerate() {
            assert_eq!(equip_slot(i as u32, "slot").unwrap(), *slot);
            assert_eq!(slot.index(), i);
        }
        assert_eq!(
            equip_slot(MMO_EQUIP_SLOT_COUNT, "slot").unwrap_err().code,
            mmo_result::InvalidEnum
        );
        assert_eq!(mmo_equip_slot::Ring as u32 + 1, MMO_EQUIP_SLOT_COUNT);
    }

    #[test]
    fn every_op_kind_converts_and_unknown_kinds_are_refused() {
        let op = |kind: mmo_inventory_op_kind| mmo_inventory_op {
            kind: kind as u32,
            slot: 1,
            to_slot: 2,
            quantity: 3,
            equip_slot: mmo_equip_slot::MainHand as u32,
        };
        use mmo_inventory_op_kind as K;
        let cases = [
            (K::Move, InventoryOp::Move { from: 1, to: 2 }),
            (
                K::Split,
                InventoryOp::Split {
                    from: 1,
                    to: 2,
                    quantity: 3,
                },
            ),
            (K::Merge, InventoryOp::Merge { from: 1, to: 2 }),
            (K::Swap, InventoryOp::Swap { a: 1, b: 2 }),
            (
                K::Drop,
                InventoryOp::Drop {
                    slot: 1,
                    quantity: 3,
                },
            ),
            (K::Use, InventoryOp::Use { slot: 1 }),
            (K::Equip, InventoryOp::Equip { slot: 1 }),
            (
                K::Unequip,
                InventoryOp::Unequip {
                    slot: EquipSlot::MainHand,
                    to: 2,
                },
            ),
            (
                K::Give,
                InventoryOp::Give {
                    slot: 1,
                    quantity: 3,
                    to: EntityId(2),
                },
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(op(kind).to_core().unwrap(), want, "{kind:?}");
        }
        let bad = mmo_inventory_op {
            kind: 9,
            ..op(K::Move)
        };
        assert_eq!(bad.to_core().unwrap_err().code, mmo_result::InvalidEnum);
        let bad_slot = mmo_inventory_op {
            equip_slot: 9,
            ..op(K::Unequip)
        };
        let err = bad_slot.to_core().unwrap_err();
        assert_eq!(err.code, mmo_result::InvalidEnum);
        assert!(err.message.contains("op.equip_slot"), "{}", err.message);
    }

    #[test]
    fn targets_convert_and_non_finite_points_are_refused() {
        let t = |kind: mmo_target_kind| mmo_ability_target {
            kind: kind as u32,
            entity_id: 7,
            point_m: mmo_vec3 {
                x: 1.0,
                y: 2.0,
                z: 3.0,
            },
        };
        assert_eq!(
            t(mmo_target_kind::SelfTarget).to_core().unwrap(),
            WireTarget::SelfTarget
        );
        assert_eq!(
            t(mmo_target_kind::Entity).to_core().unwrap(),
            WireTarget::Entity(mmo_core::entity::EntityId(7))
        );
        assert_eq!(
            t(mmo_target_kind::GroundPoint).to_core().unwrap(),
            WireTarget::GroundPoint([1.0, 2.0, 3.0])
        );
        assert_eq!(
            t(mmo_target_kind::Direction).to_core().unwrap(),
            WireTarget::Direction([1.0, 2.0, 3.0])
        );
        let nan = mmo_ability_target {
            point_m: mmo_vec3 {
                x: f32::NAN,
                y: 0.0,
                z: 0.0,
            },
            ..t(mmo_target_kind::GroundPoint)
        };
        assert_eq!(nan.to_core().unwrap_err().code, mmo_result::InvalidArgument);
        // A NaN point is ignored when the kind does not use it.
        let entity = mmo_ability_target {
            kind: mmo_target_kind::Entity as u32,
            ..nan
        };
        assert!(entity.to_core().is_ok());
        let unknown = mmo_ability_target {
            kind: 4,
            ..t(mmo_target_kind::Entity)
        };
        assert_eq!(unknown.to_core().unwrap_err().code, mmo_result::InvalidEnum);
    }
}
