//! Data-driven gameplay definitions: resource pools, classes, races, abilities and items,
//! loaded from one TOML document with [`Content::from_toml`] and validated on load.
//!
//! # File format
//!
//! The document starts with `version = 1` ([`CONTENT_VERSION`]; any other version is refused
//! with [`ContentErrorKind::UnsupportedVersion`]). An optional `[rules]` table holds
//! `global_cooldown_ms` (1000), `respawn_delay_ms` (10000), `bag_slots` (24) and
//! `starting_items = { item = quantity }` (none; the kit must fit in the bag). Then arrays of tables, in any order:
//! `[[pools]]`, `[[classes]]`, `[[races]]`, `[[abilities]]`, `[[items]]`. See
//! `rust/core/data/content.toml` (also [`DEFAULT_CONTENT_TOML`]) for an example. Fields
//! (defaults in parentheses; unknown fields are refused):
//!
//! - pools: `id`, `max` (>= 1), `regen_per_s` (0), `regen_delay_ms` (0);
//! - classes: `id`, `name`, `pool_max = { pool = max }` (none), `abilities = [id]` (none);
//! - races: `id`, `name`, `pool_bonus = { pool = signed points }` (none), `abilities` (none);
//! - abilities: `id`, `cost = { pool = points }` (free), `global_cooldown` (false),
//!   `cooldown_ms` (0), `cast_time_ms` (0), `range_m` (0), `target` (`self`, `entity`,
//!   `ground_point`, `direction`), `effects = [{ kind = ..., ... }]` (at least one):
//!   `damage`/`heal` with `amount`, `damage_over_time` with `per_tick`, `ticks`,
//!   `interval_ms`, `slow` with `factor`, `duration_ms`, `knockback` with `distance_m`;
//! - items: `id`, `name`, `max_stack` (1), `equip_slot` (none; see [`EquipSlot`]),
//!   `usable` (false), `properties = { key = "string" }` (none).
//!
//! Ids are strings in the file (`[a-z0-9_]`, 1..=64 bytes, unique per section) and get dense
//! numeric ids ([`PoolId`], [`ClassId`], [`RaceId`], [`AbilityId`], [`ItemId`]) in file order,
//! starting at 0. A pool with id `health` is required: damage, heal and death act on it.
//!
//! Every validation error names the offending entry and field as a path, e.g.
//! `abilities.fireball.cost.manna: unknown pool "manna"` (see [`ContentError`]).
//!
//! # Hash
//!
//! [`Content::hash`] is the SHA-256 of a canonical encoding of the *validated* content, not of
//! the text, so whitespace, comments and the order of keys inside a table do not change it.
//! The canonical form is: the ASCII bytes `mmo-content\0`, then the postcard encoding
//! (varint integers, length-prefixed UTF-8 strings, `f32` as 4 little-endian bytes with `-0.0`
//! normalised to `0.0`, `Option` as a 0/1 tag) of the [`Content`] fields in declaration order:
//! version, rules, pools, classes, races, abilities, items. Entries keep file order (their
//! numeric ids depend on it); costs and pool modifiers are sorted by [`PoolId`]; item
//! properties are sorted by key. Any change of a value, an id or an entry's position changes
//! the hash.
//!
//! Not done yet: loading from a path (the server reads the file and passes the text),
//! interpreting item properties (they are opaque strings for game code), and localised names.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The only content format version this build reads.
pub const CONTENT_VERSION: u32 = 1;

/// The default content shipped with the core (`rust/core/data/content.toml`).
pub const DEFAULT_CONTENT_TOML: &str = include_str!("../../data/content.toml");

/// Longest accepted string id, bytes.
pub const MAX_ID_LEN_BYTES: usize = 64;

/// Longest accepted ability range, metres.
pub const MAX_RANGE_M: f32 = 1000.0;

/// Longest accepted knockback distance, metres.
pub const MAX_KNOCKBACK_M: f32 = 100.0;

/// Dense id of a resource pool (index into [`Content::pools`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PoolId(pub u16);

/// Dense id of a class (index into [`Content::classes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClassId(pub u16);

/// Dense id of a race (index into [`Content::races`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RaceId(pub u16);

/// Dense id of an ability (index into [`Content::abilities`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AbilityId(pub u16);

/// Dense id of an item (index into [`Content::items`]): the inventory's item id.
pub use super::inventory::ItemId;

/// Global rules.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rules {
    /// Length of the global cooldown started by abilities with `global_cooldown = true`, ms.
    pub global_cooldown_ms: u32,
    /// Time between death and the earliest respawn, ms.
    pub respawn_delay_ms: u32,
    /// Bag slots of a new character, `1..=`[`super::inventory::MAX_BAG_SLOTS`].
    pub bag_slots: u32,
    /// What a new character carries, in item order. Invariant: every quantity is `>= 1`
    /// and the whole kit fits in `bag_slots` (checked on load).
    pub starting_items: Vec<(ItemId, u32)>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            global_cooldown_ms: 1000,
            respawn_delay_ms: 10_000,
            bag_slots: 24,
            starting_items: Vec::new(),
        }
    }
}

/// A resource pool (health, mana, stamina...).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolDef {
    /// String id from the file.
    pub id: String,
    /// Default maximum, points. Invariant: `>= 1`.
    pub max: u32,
    /// Regeneration, points per second.
    pub regen_per_s: u32,
    /// Regeneration pauses this long after the pool is spent from or damaged, ms.
    pub regen_delay_ms: u32,
}

/// A playable class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassDef {
    /// String id from the file.
    pub id: String,
    /// Display name. Invariant: non-empty.
    pub name: String,
    /// Starting maxima that replace the pool defaults, sorted by pool. Invariant: each `>= 1`.
    pub pool_max: Vec<(PoolId, u32)>,
    /// Abilities the class knows, in file order, without duplicates.
    pub abilities: Vec<AbilityId>,
}

/// A playable race.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RaceDef {
    /// String id from the file.
    pub id: String,
    /// Display name. Invariant: non-empty.
    pub name: String,
    /// Points added to (or, negative, removed from) pool maxima, sorted by pool.
    pub pool_bonus: Vec<(PoolId, i32)>,
    /// Extra abilities the race knows, in file order, without duplicates.
    pub abilities: Vec<AbilityId>,
}

/// What an ability is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum TargetKind {
    /// The caster itself; no range check.
    SelfOnly,
    /// Another entity, within range.
    Entity,
    /// A point on the ground, within range.
    GroundPoint,
    /// A direction from the caster (a skillshot); no range check at cast time.
    Direction,
}

impl TargetKind {
    /// The name used in the file and in logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::SelfOnly => "self",
            TargetKind::Entity => "entity",
            TargetKind::GroundPoint => "ground_point",
            TargetKind::Direction => "direction",
        }
    }

    fn parse(s: &str) -> Option<TargetKind> {
        match s {
            "self" => Some(TargetKind::SelfOnly),
            "entity" => Some(TargetKind::Entity),
            "ground_point" => Some(TargetKind::GroundPoint),
            "direction" => Some(TargetKind::Direction),
            _ => None,
        }
    }
}

/// One effect of an ability on its target.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Effect {
    /// Instant damage to health. Invariant: `amount >= 1`.
    Damage {
        /// Points.
        amount: u32,
    },
    /// Instant heal of health. Invariant: `amount >= 1`.
    Heal {
        /// Points.
        amount: u32,
    },
    /// Damage every `interval_ms`, `ticks` times, the first one `interval_ms` after it lands.
    /// Invariant: all fields `>= 1`.
    DamageOverTime {
        /// Points per tick.
        per_tick: u32,
        /// Number of ticks.
        ticks: u32,
        /// Time between ticks, ms.
        interval_ms: u32,
    },
    /// Movement speed multiplied by `factor` for `duration_ms`. Invariant: `0 < factor < 1`,
    /// `duration_ms >= 1`.
    Slow {
        /// Speed multiplier.
        factor: f32,
        /// Duration, ms.
        duration_ms: u32,
    },
    /// The target is pushed away from the caster. Invariant: `0 < distance_m <= 100`.
    Knockback {
        /// Distance, metres.
        distance_m: f32,
    },
}

/// An ability.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AbilityDef {
    /// String id from the file.
    pub id: String,
    /// Cost per pool, sorted by pool. Invariant: each amount `>= 1`, pools distinct.
    pub cost: Vec<(PoolId, u32)>,
    /// Whether casting it starts (and is blocked by) the global cooldown.
    pub global_cooldown: bool,
    /// The ability's own cooldown, ms.
    pub cooldown_ms: u32,
    /// Time from start to completion, ms (0 = instant).
    pub cast_time_ms: u32,
    /// Maximum distance to an entity or ground point target, metres. Invariant: finite,
    /// `0..=MAX_RANGE_M`.
    pub range_m: f32,
    /// What it is aimed at.
    pub target: TargetKind,
    /// Effects, in file order. Invariant: non-empty.
    pub effects: Vec<Effect>,
}

/// An equipment slot (the inventory's).
pub use super::inventory::EquipSlot;

/// An item.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ItemDef {
    /// String id from the file.
    pub id: String,
    /// Display name. Invariant: non-empty.
    pub name: String,
    /// Most items of this kind in one stack. Invariant: `>= 1`.
    pub max_stack: u32,
    /// Where it is worn, if equippable.
    pub equip_slot: Option<EquipSlot>,
    /// Whether it can be used (consumed or activated).
    pub usable: bool,
    /// Free-form properties for game code, sorted by key. Invariant: keys non-empty.
    pub properties: BTreeMap<String, String>,
}

/// Why content was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentErrorKind {
    /// Not valid TOML, or a field has the wrong type, is missing or is unknown.
    Parse,
    /// `version` is missing or not [`CONTENT_VERSION`].
    UnsupportedVersion,
    /// An id is empty, too long or has characters outside `[a-z0-9_]`.
    InvalidId,
    /// Two entries of one section share an id.
    DuplicateId,
    /// A reference names a pool, ability or slot that does not exist.
    UnknownReference,
    /// A value is out of its allowed range.
    InvalidValue,
    /// A required entry (the `health` pool) is missing.
    Missing,
}

impl ContentErrorKind {
    /// Stable `snake_case` name for logs and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ContentErrorKind::Parse => "parse",
            ContentErrorKind::UnsupportedVersion => "unsupported_version",
            ContentErrorKind::InvalidId => "invalid_id",
            ContentErrorKind::DuplicateId => "duplicate_id",
            ContentErrorKind::UnknownReference => "unknown_reference",
            ContentErrorKind::InvalidValue => "invalid_value",
            ContentErrorKind::Missing => "missing",
        }
    }
}

/// A content loading error: the kind, the path of the offending entry and field (e.g.
/// `abilities.fireball.cost.manna`; empty for whole-document errors) and a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ContentError {
    /// What went wrong.
    pub kind: ContentErrorKind,
    /// `section.entry_id.field[.key]`, or empty.
    pub path: String,
    /// Human-readable specifics.
    pub message: String,
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

fn err(
    kind: ContentErrorKind,
    path: impl Into<String>,
    message: impl Into<String>,
) -> ContentError {
    ContentError {
        kind,
        path: path.into(),
        message: message.into(),
    }
}

/// Validated gameplay content. Built only by [`Content::from_toml`], so every invariant
/// documented on the definitions holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Content {
    version: u32,
    rules: Rules,
    pools: Vec<PoolDef>,
    classes: Vec<ClassDef>,
    races: Vec<RaceDef>,
    abilities: Vec<AbilityDef>,
    items: Vec<ItemDef>,
    /// Not part of the hash (derived from `pools`).
    #[serde(skip)]
    health: PoolId,
}

// ---- raw file shapes -------------------------------------------------------------------

#[derive(Deserialize)]
struct RawVersion {
    version: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContent {
    #[allow(dead_code)] // read by `RawVersion` first
    version: u32,
    #[serde(default)]
    rules: Option<RawRules>,
    #[serde(default)]
    pools: Vec<RawPool>,
    #[serde(default)]
    classes: Vec<RawClass>,
    #[serde(default)]
    races: Vec<RawRace>,
    #[serde(default)]
    abilities: Vec<RawAbility>,
    #[serde(default)]
    items: Vec<RawItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    global_cooldown_ms: Option<u32>,
    respawn_delay_ms: Option<u32>,
    bag_slots: Option<u32>,
    #[serde(default)]
    starting_items: BTreeMap<String, u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    id: String,
    max: u32,
    #[serde(default)]
    regen_per_s: u32,
    #[serde(default)]
    regen_delay_ms: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    id: String,
    name: String,
    #[serde(default)]
    pool_max: BTreeMap<String, u32>,
    #[serde(default)]
    abilities: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRace {
    id: String,
    name: String,
    #[serde(default)]
    pool_bonus: BTreeMap<String, i32>,
    #[serde(default)]
    abilities: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAbility {
    id: String,
    #[serde(default)]
    cost: BTreeMap<String, u32>,
    #[serde(default)]
    global_cooldown: bool,
    #[serde(default)]
    cooldown_ms: u32,
    #[serde(default)]
    cast_time_ms: u32,
    #[serde(default)]
    range_m: f32,
    target: String,
    effects: Vec<RawEffect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEffect {
    kind: String,
    amount: Option<u32>,
    per_tick: Option<u32>,
    ticks: Option<u32>,
    interval_ms: Option<u32>,
    factor: Option<f32>,
    duration_ms: Option<u32>,
    distance_m: Option<f32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: String,
    name: String,
    #[serde(default = "one")]
    max_stack: u32,
    equip_slot: Option<String>,
    #[serde(default)]
    usable: bool,
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

/// A TOML or shape error, with the 1-based line it points at when known.
fn parse_error(text: &str, e: &toml::de::Error) -> ContentError {
    let line = e
        .span()
        .and_then(|s| text.get(..s.start))
        .map(|before| format!(" (line {})", before.matches('\n').count() + 1))
        .unwrap_or_default();
    err(
        ContentErrorKind::Parse,
        "",
        format!("{}{line}", e.message().trim_end()),
    )
}

fn one() -> u32 {
    1
}

// ---- validation -------------------------------------------------------------------------

fn check_id(section: &str, index: usize, id: &str) -> Result<(), ContentError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(err(
            ContentErrorKind::InvalidId,
            format!("{section}[{index}].id"),
            format!("invalid id {id:?}: expected 1..={MAX_ID_LEN_BYTES} bytes of [a-z0-9_]"),
        ))
    }
}

/// Checks ids and uniqueness of one section; returns the ids in file order.
fn index_ids<'a>(
    section: &str,
    ids: impl Iterator<Item = &'a str>,
    limit: usize,
) -> Result<Vec<&'a str>, ContentError> {
    let mut seen: Vec<&str> = Vec::new();
    for (i, id) in ids.enumerate() {
        check_id(section, i, id)?;
        if seen.contains(&id) {
            return Err(err(
                ContentErrorKind::DuplicateId,
                format!("{section}.{id}"),
                format!("duplicate id {id:?}"),
            ));
        }
        seen.push(id);
    }
    if seen.len() > limit {
        return Err(err(
            ContentErrorKind::InvalidValue,
            section,
            format!("{} entries, at most {limit} allowed", seen.len()),
        ));
    }
    Ok(seen)
}

/// Builds the rules; the starting kit must name known items and fit in the bag.
fn validate_rules(r: &RawRules, items: &[ItemDef]) -> Result<Rules, ContentError> {
    let d = Rules::default();
    let bag_slots = r.bag_slots.unwrap_or(d.bag_slots);
    if !(1..=super::inventory::MAX_BAG_SLOTS).contains(&bag_slots) {
        return Err(err(
            ContentErrorKind::InvalidValue,
            "rules.bag_slots",
            format!(
                "must be in 1..={}, got {bag_slots}",
                super::inventory::MAX_BAG_SLOTS
            ),
        ));
    }
    let mut starting_items = Vec::with_capacity(r.starting_items.len());
    let mut slots_needed: u64 = 0;
    for (item, &quantity) in &r.starting_items {
        let path = format!("rules.starting_items.{item}");
        let Some(index) = items.iter().position(|i| i.id == *item) else {
            return Err(err(
                ContentErrorKind::UnknownReference,
                path,
                format!("no item with id {item:?}"),
            ));
        };
        if quantity == 0 {
            return Err(err(ContentErrorKind::InvalidValue, path, "must be >= 1"));
        }
        // Item count is bounded by u32::MAX (checked when indexing).
        starting_items.push((ItemId(index as u32), quantity));
        slots_needed += u64::from(quantity.div_ceil(items[index].max_stack));
    }
    if slots_needed > u64::from(bag_slots) {
        return Err(err(
            ContentErrorKind::InvalidValue,
            "rules.starting_items",
            format!("the kit needs {slots_needed} bag slots, the bag has {bag_slots}"),
        ));
    }
    starting_items.sort_by_key(|(id, _)| *id);
    Ok(Rules {
        global_cooldown_ms: r.global_cooldown_ms.unwrap_or(d.global_cooldown_ms),
        respawn_delay_ms: r.respawn_delay_ms.unwrap_or(d.respawn_delay_ms),
        bag_slots,
        starting_items,
    })
}

fn find(ids: &[&str], id: &str) -> Option<usize> {
    ids.iter().position(|x| *x == id)
}

fn check_name(path: String, name: &str) -> Result<String, ContentError> {
    if name.trim().is_empty() {
        Err(err(
            ContentErrorKind::InvalidValue,
            path,
            "name must not be empty",
        ))
    } else {
        Ok(name.to_owned())
    }
}

fn pool_ref(pools: &[&str], path: String, id: &str) -> Result<PoolId, ContentError> {
    match find(pools, id) {
        // In range: the pool section was checked to hold at most u16::MAX entries.
        Some(i) => Ok(PoolId(i as u16)),
        None => Err(err(
            ContentErrorKind::UnknownReference,
            path,
            format!("unknown pool {id:?}"),
        )),
    }
}

fn ability_refs(
    abilities: &[&str],
    path: String,
    list: &[String],
) -> Result<Vec<AbilityId>, ContentError> {
    let mut out = Vec::with_capacity(list.len());
    for name in list {
        let Some(i) = find(abilities, name) else {
            return Err(err(
                ContentErrorKind::UnknownReference,
                path,
                format!("unknown ability {name:?}"),
            ));
        };
        // In range: the ability section holds at most u16::MAX entries.
        let id = AbilityId(i as u16);
        if out.contains(&id) {
            return Err(err(
                ContentErrorKind::DuplicateId,
                path,
                format!("ability {name:?} listed twice"),
            ));
        }
        out.push(id);
    }
    Ok(out)
}

/// `-0.0` becomes `0.0` so the hash does not depend on the sign of zero.
fn norm(x: f32) -> f32 {
    x + 0.0
}

fn effect(path: &str, raw: &RawEffect) -> Result<Effect, ContentError> {
    let need = |field: &str, v: Option<u32>| -> Result<u32, ContentError> {
        match v {
            Some(v) if v >= 1 => Ok(v),
            Some(_) => Err(err(
                ContentErrorKind::InvalidValue,
                format!("{path}.{field}"),
                "must be >= 1",
            )),
            None => Err(err(
                ContentErrorKind::Parse,
                format!("{path}.{field}"),
                format!("missing field for effect kind {:?}", raw.kind),
            )),
        }
    };
    let needf = |field: &str, v: Option<f32>| -> Result<f32, ContentError> {
        v.map(norm).ok_or_else(|| {
            err(
                ContentErrorKind::Parse,
                format!("{path}.{field}"),
                format!("missing field for effect kind {:?}", raw.kind),
            )
        })
    };
    let allowed: &[&str] = match raw.kind.as_str() {
        "damage" | "heal" => &["amount"],
        "damage_over_time" => &["per_tick", "ticks", "interval_ms"],
        "slow" => &["factor", "duration_ms"],
        "knockback" => &["distance_m"],
        other => {
            return Err(err(
                ContentErrorKind::InvalidValue,
                format!("{path}.kind"),
                format!(
                    "unknown effect kind {other:?} (expected damage, heal, damage_over_time, slow or knockback)"
                ),
            ));
        }
    };
    let present = [
        ("amount", raw.amount.is_some()),
        ("per_tick", raw.per_tick.is_some()),
        ("ticks", raw.ticks.is_some()),
        ("interval_ms", raw.interval_ms.is_some()),
        ("factor", raw.factor.is_some()),
        ("duration_ms", raw.duration_ms.is_some()),
        ("distance_m", raw.distance_m.is_some()),
    ];
    if let Some((field, _)) = present.iter().find(|(f, set)| *set && !allowed.contains(f)) {
        return Err(err(
            ContentErrorKind::Parse,
            format!("{path}.{field}"),
            format!("field not used by effect kind {:?}", raw.kind),
        ));
    }
    Ok(match raw.kind.as_str() {
        "damage" => Effect::Damage {
            amount: need("amount", raw.amount)?,
        },
        "heal" => Effect::Heal {
            amount: need("amount", raw.amount)?,
        },
        "damage_over_time" => Effect::DamageOverTime {
            per_tick: need("per_tick", raw.per_tick)?,
            ticks: need("ticks", raw.ticks)?,
            interval_ms: need("interval_ms", raw.interval_ms)?,
        },
        "slow" => {
            let factor = needf("factor", raw.factor)?;
            if !(factor.is_finite() && factor > 0.0 && factor < 1.0) {
                return Err(err(
                    ContentErrorKind::InvalidValue,
                    format!("{path}.factor"),
                    format!("{factor} is outside 0 < factor < 1"),
                ));
            }
            Effect::Slow {
                factor,
                duration_ms: need("duration_ms", raw.duration_ms)?,
            }
        }
        _ => {
            let distance_m = needf("distance_m", raw.distance_m)?;
            if !(distance_m.is_finite() && distance_m > 0.0 && distance_m <= MAX_KNOCKBACK_M) {
                return Err(err(
                    ContentErrorKind::InvalidValue,
                    format!("{path}.distance_m"),
                    format!("{distance_m} is outside 0 < distance_m <= {MAX_KNOCKBACK_M}"),
                ));
            }
            Effect::Knockback { distance_m }
        }
    })
}

impl Content {
    /// Parses and validates a content document. Errors name the entry and field.
    pub fn from_toml(text: &str) -> Result<Content, ContentError> {
        let version: RawVersion = toml::from_str(text).map_err(|e| parse_error(text, &e))?;
        match version.version {
            Some(toml::Value::Integer(v)) if v == i64::from(CONTENT_VERSION) => {}
            Some(other) => {
                return Err(err(
                    ContentErrorKind::UnsupportedVersion,
                    "version",
                    format!(
                        "content version {other} is not supported (this build reads version {CONTENT_VERSION})"
                    ),
                ));
            }
            None => {
                return Err(err(
                    ContentErrorKind::UnsupportedVersion,
                    "version",
                    format!("missing; expected `version = {CONTENT_VERSION}` at the top"),
                ));
            }
        }
        let raw: RawContent = toml::from_str(text).map_err(|e| parse_error(text, &e))?;
        Self::validate(raw)
    }

    /// The default content ([`DEFAULT_CONTENT_TOML`]).
    pub fn default_content() -> Result<Content, ContentError> {
        Content::from_toml(DEFAULT_CONTENT_TOML)
    }

    fn validate(raw: RawContent) -> Result<Content, ContentError> {
        use ContentErrorKind::{InvalidValue, Missing};
        let u16_max = usize::from(u16::MAX);
        let pool_ids = index_ids("pools", raw.pools.iter().map(|p| p.id.as_str()), u16_max)?;
        index_ids(
            "classes",
            raw.classes.iter().map(|c| c.id.as_str()),
            u16_max,
        )?;
        index_ids("races", raw.races.iter().map(|r| r.id.as_str()), u16_max)?;
        let ability_ids = index_ids(
            "abilities",
            raw.abilities.iter().map(|a| a.id.as_str()),
            u16_max,
        )?;
        let item_limit = usize::try_from(u32::MAX).unwrap_or(usize::MAX);
        index_ids("items", raw.items.iter().map(|i| i.id.as_str()), item_limit)?;

        let mut pools = Vec::with_capacity(raw.pools.len());
        for p in &raw.pools {
            if p.max == 0 {
                return Err(err(
                    InvalidValue,
                    format!("pools.{}.max", p.id),
                    "must be >= 1",
                ));
            }
            pools.push(PoolDef {
                id: p.id.clone(),
                max: p.max,
                regen_per_s: p.regen_per_s,
                regen_delay_ms: p.regen_delay_ms,
            });
        }
        let Some(health) = find(&pool_ids, "health") else {
            return Err(err(
                Missing,
                "pools.health",
                "a pool with id \"health\" is required",
            ));
        };
        // In range: at most u16::MAX pools.
        let health = PoolId(health as u16);

        let mut abilities = Vec::with_capacity(raw.abilities.len());
        for a in &raw.abilities {
            let path = format!("abilities.{}", a.id);
            let mut cost = Vec::with_capacity(a.cost.len());
            for (pool, &amount) in &a.cost {
                let id = pool_ref(&pool_ids, format!("{path}.cost.{pool}"), pool)?;
                if amount == 0 {
                    return Err(err(
                        InvalidValue,
                        format!("{path}.cost.{pool}"),
                        "must be >= 1",
                    ));
                }
                cost.push((id, amount));
            }
            cost.sort_by_key(|(id, _)| *id);
            if !(a.range_m.is_finite() && (0.0..=MAX_RANGE_M).contains(&a.range_m)) {
                return Err(err(
                    InvalidValue,
                    format!("{path}.range_m"),
                    format!("{} is outside 0..={MAX_RANGE_M}", a.range_m),
                ));
            }
            let Some(target) = TargetKind::parse(&a.target) else {
                return Err(err(
                    InvalidValue,
                    format!("{path}.target"),
                    format!(
                        "unknown target kind {:?} (expected self, entity, ground_point or direction)",
                        a.target
                    ),
                ));
            };
            if a.effects.is_empty() {
                return Err(err(
                    InvalidValue,
                    format!("{path}.effects"),
                    "must not be empty",
                ));
            }
            let effects = a
                .effects
                .iter()
                .enumerate()
                .map(|(i, e)| effect(&format!("{path}.effects[{i}]"), e))
                .collect::<Result<Vec<_>, _>>()?;
            abilities.push(AbilityDef {
                id: a.id.clone(),
                cost,
                global_cooldown: a.global_cooldown,
                cooldown_ms: a.cooldown_ms,
                cast_time_ms: a.cast_time_ms,
                range_m: norm(a.range_m),
                target,
                effects,
            });
        }

        let mut classes = Vec::with_capacity(raw.classes.len());
        for c in &raw.classes {
            let path = format!("classes.{}", c.id);
            let mut pool_max = Vec::with_capacity(c.pool_max.len());
            for (pool, &max) in &c.pool_max {
                let id = pool_ref(&pool_ids, format!("{path}.pool_max.{pool}"), pool)?;
                if max == 0 {
                    return Err(err(
                        InvalidValue,
                        format!("{path}.pool_max.{pool}"),
                        "must be >= 1",
                    ));
                }
                pool_max.push((id, max));
            }
            pool_max.sort_by_key(|(id, _)| *id);
            classes.push(ClassDef {
                id: c.id.clone(),
                name: check_name(format!("{path}.name"), &c.name)?,
                pool_max,
                abilities: ability_refs(&ability_ids, format!("{path}.abilities"), &c.abilities)?,
            });
        }

        let mut races = Vec::with_capacity(raw.races.len());
        for r in &raw.races {
            let path = format!("races.{}", r.id);
            let mut pool_bonus = Vec::with_capacity(r.pool_bonus.len());
            for (pool, &bonus) in &r.pool_bonus {
                let id = pool_ref(&pool_ids, format!("{path}.pool_bonus.{pool}"), pool)?;
                pool_bonus.push((id, bonus));
            }
            pool_bonus.sort_by_key(|(id, _)| *id);
            races.push(RaceDef {
                id: r.id.clone(),
                name: check_name(format!("{path}.name"), &r.name)?,
                pool_bonus,
                abilities: ability_refs(&ability_ids, format!("{path}.abilities"), &r.abilities)?,
            });
        }

        let mut items = Vec::with_capacity(raw.items.len());
        for it in raw.items {
            let path = format!("items.{}", it.id);
            if it.max_stack == 0 {
                return Err(err(
                    InvalidValue,
                    format!("{path}.max_stack"),
                    "must be >= 1",
                ));
            }
            let equip_slot = match &it.equip_slot {
                None => None,
                Some(s) => Some(EquipSlot::parse(s).ok_or_else(|| {
                    err(
                        ContentErrorKind::UnknownReference,
                        format!("{path}.equip_slot"),
                        format!("unknown slot {s:?}"),
                    )
                })?),
            };
            if it.properties.keys().any(|k| k.is_empty()) {
                return Err(err(
                    InvalidValue,
                    format!("{path}.properties"),
                    "property keys must not be empty",
                ));
            }
            items.push(ItemDef {
                name: check_name(format!("{path}.name"), &it.name)?,
                id: it.id,
                max_stack: it.max_stack,
                equip_slot,
                usable: it.usable,
                properties: it.properties,
            });
        }

        let rules = match &raw.rules {
            Some(r) => validate_rules(r, &items)?,
            None => Rules::default(),
        };

        Ok(Content {
            version: CONTENT_VERSION,
            rules,
            pools,
            classes,
            races,
            abilities,
            items,
            health,
        })
    }

    /// SHA-256 of the canonical encoding described in the module docs.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"mmo-content\0");
        // Serialising plain structs, strings, integers and floats into a Vec cannot fail.
        let bytes = postcard::to_allocvec(self).unwrap_or_default();
        hasher.update(&bytes);
        hasher.finalize().into()
    }

    /// The format version (always [`CONTENT_VERSION`]).
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Global rules.
    #[must_use]
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The `health` pool.
    #[must_use]
    pub fn health_pool(&self) -> PoolId {
        self.health
    }

    /// All pools, indexed by [`PoolId`].
    #[must_use]
    pub fn pools(&self) -> &[PoolDef] {
        &self.pools
    }

    /// All classes, indexed by [`ClassId`].
    #[must_use]
    pub fn classes(&self) -> &[ClassDef] {
        &self.classes
    }

    /// All races, indexed by [`RaceId`].
    #[must_use]
    pub fn races(&self) -> &[RaceDef] {
        &self.races
    }

    /// All abilities, indexed by [`AbilityId`].
    #[must_use]
    pub fn abilities(&self) -> &[AbilityDef] {
        &self.abilities
    }

    /// All items, indexed by [`ItemId`].
    #[must_use]
    pub fn items(&self) -> &[ItemDef] {
        &self.items
    }

    /// The pool `id`, if it exists.
    #[must_use]
    pub fn pool(&self, id: PoolId) -> Option<&PoolDef> {
        self.pools.get(usize::from(id.0))
    }

    /// The class `id`, if it exists.
    #[must_use]
    pub fn class(&self, id: ClassId) -> Option<&ClassDef> {
        self.classes.get(usize::from(id.0))
    }

    /// The race `id`, if it exists.
    #[must_use]
    pub fn race(&self, id: RaceId) -> Option<&RaceDef> {
        self.races.get(usize::from(id.0))
    }

    /// The ability `id`, if it exists.
    #[must_use]
    pub fn ability(&self, id: AbilityId) -> Option<&AbilityDef> {
        self.abilities.get(usize::from(id.0))
    }

    /// The item `id`, if it exists.
    #[must_use]
    pub fn item(&self, id: ItemId) -> Option<&ItemDef> {
        usize::try_from(id.0).ok().and_then(|i| self.items.get(i))
    }

    /// The numeric id of pool `id`.
    #[must_use]
    pub fn pool_id(&self, id: &str) -> Option<PoolId> {
        // In range: at most u16::MAX entries (checked on load).
        self.pools
            .iter()
            .position(|p| p.id == id)
            .map(|i| PoolId(i as u16))
    }

    /// The numeric id of class `id`.
    #[must_use]
    pub fn class_id(&self, id: &str) -> Option<ClassId> {
        // In range: at most u16::MAX entries (checked on load).
        self.classes
            .iter()
            .position(|c| c.id == id)
            .map(|i| ClassId(i as u16))
    }

    /// The numeric id of race `id`.
    #[must_use]
    pub fn race_id(&self, id: &str) -> Option<RaceId> {
        // In range: at most u16::MAX entries (checked on load).
        self.races
            .iter()
            .position(|r| r.id == id)
            .map(|i| RaceId(i as u16))
    }

    /// The numeric id of ability `id`.
    #[must_use]
    pub fn ability_id(&self, id: &str) -> Option<AbilityId> {
        // In range: at most u16::MAX entries (checked on load).
        self.abilities
            .iter()
            .position(|a| a.id == id)
            .map(|i| AbilityId(i as u16))
    }

    /// The numeric id of item `id`.
    #[must_use]
    pub fn item_id(&self, id: &str) -> Option<ItemId> {
        // In range: at most u32::MAX entries (checked on load).
        self.items
            .iter()
            .position(|i| i.id == id)
            .map(|i| ItemId(i as u32))
    }
}

/// The inventory reads item rules straight from the loaded content.
impl super::inventory::ItemCatalog for Content {
    fn rules(&self, item: ItemId) -> Option<super::inventory::ItemRules> {
        self.item(item).map(|def| super::inventory::ItemRules {
            max_stack: def.max_stack,
            equip_slot: def.equip_slot,
            usable: def.usable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
version = 1
[[pools]]
id = "health"
max = 100
[[pools]]
id = "mana"
max = 50
[[abilities]]
id = "fireball"
cost = { mana = 10 }
range_m = 30.0
target = "entity"
effects = [{ kind = "damage", amount = 5 }]
"#;

    fn load_err(text: &str) -> ContentError {
        Content::from_toml(text).expect_err("content should be refused")
    }

    #[test]
    fn default_content_loads() {
        let c = Content::default_content().unwrap();
        assert_eq!(c.version(), 1);
        assert_eq!(c.pools().len(), 3);
        assert_eq!(c.pool_id("health"), Some(PoolId(0)));
        assert_eq!(c.health_pool(), PoolId(0));
        assert_eq!(c.pool_id("stamina"), Some(PoolId(2)));
        assert_eq!(c.classes().len(), 2);
        assert_eq!(c.races().len(), 2);
        assert_eq!(c.rules().global_cooldown_ms, 1000);
        // Every target kind and effect kind is exercised by the default content.
        let kinds: Vec<TargetKind> = c.abilities().iter().map(|a| a.target).collect();
        for k in [
            TargetKind::SelfOnly,
            TargetKind::Entity,
            TargetKind::GroundPoint,
            TargetKind::Direction,
        ] {
            assert!(kinds.contains(&k), "{k:?} not exercised");
        }
        let effects: Vec<&Effect> = c.abilities().iter().flat_map(|a| &a.effects).collect();
        assert!(effects.iter().any(|e| matches!(e, Effect::Damage { .. })));
        assert!(effects.iter().any(|e| matches!(e, Effect::Heal { .. })));
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::DamageOverTime { .. }))
        );
        assert!(effects.iter().any(|e| matches!(e, Effect::Slow { .. })));
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::Knockback { .. }))
        );
        let potion = c.item(c.item_id("health_potion").unwrap()).unwrap();
        assert!(potion.max_stack > 1 && potion.usable);
        assert_eq!(
            potion.properties.get("heal").map(String::as_str),
            Some("50")
        );
        let sword = c.item(c.item_id("iron_sword").unwrap()).unwrap();
        assert_eq!(sword.equip_slot, Some(EquipSlot::MainHand));
        assert_eq!(c.item_id("gold_coin"), Some(ItemId(5)));
        let fireball = c.ability(c.ability_id("fireball").unwrap()).unwrap();
        assert_eq!(fireball.cost, vec![(PoolId(1), 20)]);
        let mage = c.class(c.class_id("mage").unwrap()).unwrap();
        assert!(mage.abilities.contains(&c.ability_id("fireball").unwrap()));
        assert_eq!(
            c.race(c.race_id("elf").unwrap()).unwrap().pool_bonus[0],
            (PoolId(0), -10)
        );
    }

    #[test]
    fn version_is_checked_first() {
        let e = load_err("version = 2\nwhatever = 1");
        assert_eq!(e.kind, ContentErrorKind::UnsupportedVersion);
        assert!(e.to_string().contains("version 2 is not supported"), "{e}");
        let e = load_err("[[pools]]\nid = \"health\"\nmax = 1");
        assert_eq!(e.kind, ContentErrorKind::UnsupportedVersion);
        assert_eq!(
            load_err("version = \"1\"").kind,
            ContentErrorKind::UnsupportedVersion
        );
    }

    #[test]
    fn parse_errors() {
        let e = load_err("version = 1\n[[pools]\n");
        assert_eq!(e.kind, ContentErrorKind::Parse);
        assert!(e.message.contains("(line 2)"), "{e}");
        // Shape errors past the version check also carry the line.
        let e = load_err("version = 1\n[[pools]]\nid = 5\nmax = 1\n");
        assert_eq!(e.kind, ContentErrorKind::Parse);
        assert!(e.message.contains("(line 3)"), "{e}");
        let e = load_err(&MINIMAL.replace("max = 50", "max = 50\nmaxx = 3"));
        assert_eq!(e.kind, ContentErrorKind::Parse);
        assert!(e.message.contains("maxx"), "{e}");
        assert_eq!(
            load_err(&MINIMAL.replace("max = 50", "max = -5")).kind,
            ContentErrorKind::Parse
        );
    }

    #[test]
    fn unknown_pool_in_cost_names_entry_and_field() {
        let e = load_err(&MINIMAL.replace("cost = { mana", "cost = { manna"));
        assert_eq!(e.kind, ContentErrorKind::UnknownReference);
        assert_eq!(
            e.to_string(),
            "abilities.fireball.cost.manna: unknown pool \"manna\""
        );
    }

    #[test]
    fn ids_are_checked() {
        let e = load_err(&MINIMAL.replace("id = \"mana\"", "id = \"Mana\""));
        assert_eq!(e.kind, ContentErrorKind::InvalidId);
        assert_eq!(e.path, "pools[1].id");
        let e = load_err(&MINIMAL.replace("id = \"mana\"", "id = \"\""));
        assert_eq!(e.kind, ContentErrorKind::InvalidId);
        let e = load_err(&MINIMAL.replace("id = \"mana\"", "id = \"health\""));
        assert_eq!(e.kind, ContentErrorKind::DuplicateId);
        assert_eq!(e.path, "pools.health");
    }

    #[test]
    fn health_pool_is_required() {
        let e = load_err(&MINIMAL.replace("id = \"health\"", "id = \"life\""));
        assert_eq!(e.kind, ContentErrorKind::Missing);
        assert_eq!(e.path, "pools.health");
    }

    #[test]
    fn pool_values_are_checked() {
        let e = load_err(&MINIMAL.replace("max = 50", "max = 0"));
        assert_eq!(
            (e.kind, e.path.as_str()),
            (ContentErrorKind::InvalidValue, "pools.mana.max")
        );
    }

    #[test]
    fn ability_values_are_checked() {
        let cases = [
            (
                "cost = { mana = 10 }",
                "cost = { mana = 0 }",
                "abilities.fireball.cost.mana",
            ),
            (
                "range_m = 30.0",
                "range_m = -1.0",
                "abilities.fireball.range_m",
            ),
            (
                "range_m = 30.0",
                "range_m = nan",
                "abilities.fireball.range_m",
            ),
            (
                "target = \"entity\"",
                "target = \"enemy\"",
                "abilities.fireball.target",
            ),
            (
                "effects = [{ kind = \"damage\", amount = 5 }]",
                "effects = []",
                "abilities.fireball.effects",
            ),
            (
                "kind = \"damage\"",
                "kind = \"smite\"",
                "abilities.fireball.effects[0].kind",
            ),
            (
                "amount = 5",
                "amount = 0",
                "abilities.fireball.effects[0].amount",
            ),
            (
                "{ kind = \"damage\", amount = 5 }",
                "{ kind = \"slow\", factor = 1.5, duration_ms = 10 }",
                "abilities.fireball.effects[0].factor",
            ),
            (
                "{ kind = \"damage\", amount = 5 }",
                "{ kind = \"knockback\", distance_m = 0.0 }",
                "abilities.fireball.effects[0].distance_m",
            ),
            (
                "{ kind = \"damage\", amount = 5 }",
                "{ kind = \"damage_over_time\", per_tick = 1, ticks = 0, interval_ms = 10 }",
                "abilities.fireball.effects[0].ticks",
            ),
        ];
        for (from, to, path) in cases {
            let e = load_err(&MINIMAL.replace(from, to));
            assert_eq!(e.kind, ContentErrorKind::InvalidValue, "{to}: {e}");
            assert_eq!(e.path, path, "{to}: {e}");
        }
        // A field the effect kind does not use, and a missing one.
        let e = load_err(&MINIMAL.replace("amount = 5", "amount = 5, ticks = 3"));
        assert_eq!(e.path, "abilities.fireball.effects[0].ticks");
        let e = load_err(&MINIMAL.replace("kind = \"damage\", amount = 5", "kind = \"heal\""));
        assert_eq!(e.path, "abilities.fireball.effects[0].amount");
    }

    #[test]
    fn class_and_race_references_are_checked() {
        let base = format!(
            "{MINIMAL}\n[[classes]]\nid = \"mage\"\nname = \"Mage\"\npool_max = {{ mana = 80 }}\nabilities = [\"fireball\"]\n[[races]]\nid = \"elf\"\nname = \"Elf\"\npool_bonus = {{ mana = 5 }}\n"
        );
        assert!(Content::from_toml(&base).is_ok());
        let cases = [
            (
                "pool_max = { mana",
                "pool_max = { ki",
                ContentErrorKind::UnknownReference,
                "classes.mage.pool_max.ki",
            ),
            (
                "mana = 80",
                "mana = 0",
                ContentErrorKind::InvalidValue,
                "classes.mage.pool_max.mana",
            ),
            (
                "[\"fireball\"]",
                "[\"fireblast\"]",
                ContentErrorKind::UnknownReference,
                "classes.mage.abilities",
            ),
            (
                "[\"fireball\"]",
                "[\"fireball\", \"fireball\"]",
                ContentErrorKind::DuplicateId,
                "classes.mage.abilities",
            ),
            (
                "name = \"Mage\"",
                "name = \" \"",
                ContentErrorKind::InvalidValue,
                "classes.mage.name",
            ),
            (
                "pool_bonus = { mana",
                "pool_bonus = { ki",
                ContentErrorKind::UnknownReference,
                "races.elf.pool_bonus.ki",
            ),
        ];
        for (from, to, kind, path) in cases {
            let e = load_err(&base.replace(from, to));
            assert_eq!((e.kind, e.path.as_str()), (kind, path), "{to}: {e}");
        }
    }

    #[test]
    fn item_values_are_checked() {
        let base = format!(
            "{MINIMAL}\n[[items]]\nid = \"sword\"\nname = \"Sword\"\nmax_stack = 1\nequip_slot = \"main_hand\"\nproperties = {{ dmg = \"5\" }}\n"
        );
        let c = Content::from_toml(&base).unwrap();
        assert_eq!(c.items()[0].equip_slot, Some(EquipSlot::MainHand));
        let cases = [
            (
                "max_stack = 1",
                "max_stack = 0",
                ContentErrorKind::InvalidValue,
                "items.sword.max_stack",
            ),
            (
                "\"main_hand\"",
                "\"tail\"",
                ContentErrorKind::UnknownReference,
                "items.sword.equip_slot",
            ),
            (
                "{ dmg = \"5\" }",
                "{ \"\" = \"5\" }",
                ContentErrorKind::InvalidValue,
                "items.sword.properties",
            ),
        ];
        for (from, to, kind, path) in cases {
            let e = load_err(&base.replace(from, to));
            assert_eq!((e.kind, e.path.as_str()), (kind, path), "{to}: {e}");
        }
    }

    #[test]
    fn hash_ignores_formatting_and_follows_values() {
        let a = Content::from_toml(MINIMAL).unwrap().hash();
        let reformatted = MINIMAL
            .replace("max = 100", "max   =   100   # full health")
            .replace("\n[[pools]]", "\n\n# pools\n[[pools]]")
            .replace(
                "range_m = 30.0\ntarget = \"entity\"",
                "target = \"entity\"\nrange_m = 30.0",
            );
        assert_ne!(reformatted, MINIMAL);
        assert_eq!(Content::from_toml(&reformatted).unwrap().hash(), a);
        let changed = MINIMAL.replace("amount = 5", "amount = 6");
        assert_ne!(Content::from_toml(&changed).unwrap().hash(), a);
        // Swapping two entries renumbers them, so the hash changes.
        let swapped = MINIMAL
            .replace("id = \"health\"\nmax = 100", "id = \"tmp\"\nmax = 100")
            .replace("id = \"mana\"\nmax = 50", "id = \"health\"\nmax = 100")
            .replace("id = \"tmp\"\nmax = 100", "id = \"mana\"\nmax = 50");
        assert_ne!(Content::from_toml(&swapped).unwrap().hash(), a);
        let d = Content::default_content().unwrap();
        assert_eq!(d.hash(), d.clone().hash());
        assert_ne!(d.hash(), a);
    }

    #[test]
    fn the_inventory_reads_item_rules_from_the_content() {
        use crate::gameplay::inventory::{Inventory, ItemCatalog, ItemStack};
        let content = Content::default_content().unwrap();
        let stackable = content
            .items()
            .iter()
            .position(|d| d.max_stack > 1)
            .expect("a stackable item in the default content");
        let id = ItemId(stackable as u32);
        // `Content::rules` (the game rules) is another method: call the catalog's.
        let rules = ItemCatalog::rules(&content, id).unwrap();
        assert_eq!(rules.max_stack, content.items()[stackable].max_stack);
        assert!(ItemCatalog::rules(&content, ItemId(u32::MAX)).is_none());
        let mut bag = Inventory::new(4).unwrap();
        bag.add(&content, &ItemStack::new(id, rules.max_stack + 1))
            .unwrap();
        assert_eq!(bag.count(id), u64::from(rules.max_stack) + 1);
        bag.check_invariants(&content).unwrap();
    }
}
