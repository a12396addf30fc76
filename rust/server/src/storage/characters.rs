//! Characters, their inventories and batched saves in the [`Store`](super::Store).
//!
//! - A character is a `players` row (position, pools as JSON, save `version`) and its
//!   occupied `inventory` slots (properties as a JSON object). Names are unique on the
//!   server: on PostgreSQL through the unpartitioned `character_names` table (a partitioned
//!   table cannot have a unique index without its partition key), on SQLite directly.
//! - [`Store::save_characters`] writes a whole slice of records in ONE transaction, and is
//!   written for throughput (a flush of 1,000 characters): on PostgreSQL set-based
//!   statements over `UNNEST` arrays, on SQLite statements over `json_each` of one JSON
//!   document, so either backend runs a handful of statements however many records there
//!   are. A record is written only where the stored version is lower than its own, and of
//!   its inventory only the rows that differ from the stored ones (`inventory_rows`).
//! - Rule for every writer of a character's `inventory` rows: write (and so lock) its
//!   `players` row first, in the same transaction. The save's inventory diff reads the
//!   stored rows after its `UPDATE` of `players`, and relies on nothing changing them in
//!   between (`delete_character` locks the row `FOR UPDATE`; `create_character` writes a
//!   new id).
//! - Values that do not fit a column (a quantity above `i32::MAX`) are
//!   [`StoreError::Invalid`] naming the character, and abort the whole transaction; stored
//!   data that cannot be read back is [`StoreError::Corrupt`] naming the character.

use std::collections::{BTreeMap, HashSet};

use glam::Vec3;
use mmo_core::persist::{CharacterRecord, SlotRecord, valid_character_name};
use serde_json::json;

use super::accounts::{id_from_db, to_db};
use super::inventory_rows::{
    SlotRow, StoredSlot, diff_slots, slot_rows, slots_json, stored_slots_from_json,
};
use super::{Pools, Store, StoreError, map_err};

/// What a new character starts with (its pools start full: the record's list is empty).
#[derive(Clone, Debug, PartialEq)]
pub struct NewCharacter {
    /// Name ([`valid_character_name`]).
    pub name: String,
    /// Content id of the race.
    pub race: String,
    /// Content id of the class.
    pub class: String,
    /// Starting zone.
    pub zone_id: u16,
    /// Starting position, metres.
    pub position_m: Vec3,
    /// Starting facing, radians.
    pub yaw_rad: f32,
    /// Starting inventory (ascending slots, each at most once).
    pub inventory: Vec<SlotRecord>,
}

/// One line of an account's character list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharacterSummary {
    /// Database id.
    pub character_id: u64,
    /// Name.
    pub name: String,
    /// Content id of the race.
    pub race: String,
    /// Content id of the class.
    pub class: String,
    /// Level.
    pub level: u32,
    /// Zone the character was last saved in.
    pub zone_id: u16,
}

/// What one [`Store::save_characters`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaveReport {
    /// Records written (row replaced, inventory brought to the record's).
    pub written: usize,
    /// Ids skipped because the stored version was equal or newer (ascending).
    pub stale: Vec<u64>,
    /// Ids with no stored character (deleted meanwhile; ascending).
    pub missing: Vec<u64>,
}

/// A record's columns as the databases take them (checked conversions done).
struct PlayerRow {
    id: i64,
    race: String,
    class: String,
    level: i32,
    experience: i64,
    position_m: Vec3,
    yaw_rad: f32,
    zone_id: i32,
    pools_json: String,
    version: i64,
}

pub(super) fn invalid(character_id: u64, what: String) -> StoreError {
    StoreError::Invalid(format!("character {character_id}: {what}"))
}

pub(super) fn int_col(character_id: u64, what: &str, value: u64) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| {
        invalid(
            character_id,
            format!("{what} {value} does not fit the column"),
        )
    })
}

fn player_row(record: &CharacterRecord) -> Result<PlayerRow, StoreError> {
    let id = record.character_id;
    if let Some((name, value)) = record.pools.iter().find(|(_, v)| !v.is_finite()) {
        return Err(invalid(id, format!("pool `{name}` is {value}")));
    }
    let finite = record.position_m.is_finite() && record.yaw_rad.is_finite();
    if !finite {
        return Err(invalid(id, "position or yaw is not finite".into()));
    }
    let pools_json = serde_json::to_string(&record.pools)
        .map_err(|e| invalid(id, format!("pools do not serialise: {e}")))?;
    Ok(PlayerRow {
        id: to_db("character id", id)?,
        race: record.race.clone(),
        class: record.class.clone(),
        level: int_col(id, "level", u64::from(record.level))?,
        experience: to_db("experience", record.experience)?,
        position_m: record.position_m,
        yaw_rad: record.yaw_rad,
        zone_id: i32::from(record.zone_id),
        pools_json,
        version: to_db("version", record.version)?,
    })
}

/// The columns of a `players` row as read back (both backends).
struct StoredPlayer {
    id: i64,
    account_id: i64,
    name: String,
    race: String,
    class: String,
    level: i64,
    experience: i64,
    position_m: Vec3,
    yaw_rad: f32,
    zone_id: i64,
    pools_json: String,
    version: i64,
}

/// Reads a stored character back; anything out of range is [`StoreError::Corrupt`] naming it.
fn record_from_db(
    player: StoredPlayer,
    slots: Vec<(i64, String, i64, String)>,
) -> Result<CharacterRecord, StoreError> {
    let character_id = id_from_db("players.id", player.id)?;
    let corrupt = |what: String| StoreError::Corrupt(format!("character {character_id}: {what}"));
    let pools: Vec<(String, f32)> = serde_json::from_str(&player.pools_json)
        .map_err(|e| corrupt(format!("pools `{}`: {e}", player.pools_json)))?;
    let mut inventory = Vec::with_capacity(slots.len());
    for (slot, item, quantity, properties_json) in slots {
        let properties: BTreeMap<String, String> = serde_json::from_str(&properties_json)
            .map_err(|e| corrupt(format!("slot {slot} properties `{properties_json}`: {e}")))?;
        inventory.push(SlotRecord {
            slot: u32::try_from(slot).map_err(|_| corrupt(format!("slot {slot}")))?,
            item,
            quantity: u32::try_from(quantity)
                .map_err(|_| corrupt(format!("slot {slot} quantity {quantity}")))?,
            properties,
        });
    }
    Ok(CharacterRecord {
        character_id,
        account_id: id_from_db("players.account_id", player.account_id)?,
        name: player.name,
        race: player.race,
        class: player.class,
        level: u32::try_from(player.level)
            .map_err(|_| corrupt(format!("level {}", player.level)))?,
        experience: u64::try_from(player.experience)
            .map_err(|_| corrupt(format!("experience {}", player.experience)))?,
        zone_id: u16::try_from(player.zone_id)
            .map_err(|_| corrupt(format!("zone {}", player.zone_id)))?,
        position_m: player.position_m,
        yaw_rad: player.yaw_rad,
        pools,
        inventory,
        version: u64::try_from(player.version)
            .map_err(|_| corrupt(format!("version {}", player.version)))?,
    })
}

fn summary_from_db(
    (id, name, race, class, level, zone_id): (i64, String, String, String, i64, i64),
) -> Result<CharacterSummary, StoreError> {
    let character_id = id_from_db("players.id", id)?;
    let corrupt = |what: String| StoreError::Corrupt(format!("character {character_id}: {what}"));
    Ok(CharacterSummary {
        character_id,
        name,
        race,
        class,
        level: u32::try_from(level).map_err(|_| corrupt(format!("level {level}")))?,
        zone_id: u16::try_from(zone_id).map_err(|_| corrupt(format!("zone {zone_id}")))?,
    })
}

/// SQLite: the players of a save as one JSON array of arrays (positions as the f32's exact
/// f64 value, so they read back bit for bit).
fn players_json(rows: &[PlayerRow]) -> String {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            json!([
                r.id,
                r.race,
                r.class,
                r.level,
                r.experience,
                f64::from(r.position_m.x),
                f64::from(r.position_m.y),
                f64::from(r.position_m.z),
                f64::from(r.yaw_rad),
                r.zone_id,
                r.pools_json,
                r.version
            ])
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

const PG_SELECT_PLAYER: &str = "SELECT id, account_id, name, race, class, level::BIGINT, \
     experience, pos_x, pos_y, pos_z, yaw, zone_id::BIGINT, pools::TEXT, version \
     FROM players WHERE id = $1";
const PG_SELECT_SLOTS: &str = "SELECT slot::BIGINT, item_id, quantity::BIGINT, \
     properties::TEXT FROM inventory WHERE player_id = $1 ORDER BY slot";
const PG_INSERT_SLOTS: &str = "INSERT INTO inventory (player_id, slot, item_id, quantity, \
     properties) SELECT u.player_id, u.slot, u.item_id, u.quantity, u.properties::JSONB \
     FROM UNNEST($1::BIGINT[], $2::INT[], $3::TEXT[], $4::INT[], $5::TEXT[]) \
     AS u(player_id, slot, item_id, quantity, properties)";
/// The stored rows of the characters a save updated, for [`diff_slots`] (row by row: a
/// `json_agg` of them was measured slower).
const PG_SELECT_SLOTS_OF_PLAYERS: &str = "SELECT player_id, slot::BIGINT, item_id, \
     quantity::BIGINT, properties::TEXT FROM inventory WHERE player_id = ANY($1::BIGINT[])";
/// Deletes the rows at `(player_id, slot)` pairs given as two parallel arrays.
const PG_DELETE_SLOTS: &str = "DELETE FROM inventory AS i \
     USING UNNEST($1::BIGINT[], $2::BIGINT[]) AS d(player_id, slot) \
     WHERE i.player_id = d.player_id AND i.slot = d.slot";
const PG_UPDATE_PLAYERS: &str = "UPDATE players AS p SET race = u.race, class = u.class, \
     level = u.level, experience = u.experience, pos_x = u.pos_x, pos_y = u.pos_y, \
     pos_z = u.pos_z, yaw = u.yaw, zone_id = u.zone_id, pools = u.pools::JSONB, \
     version = u.version, last_save = $13 \
     FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::INT[], $5::BIGINT[], \
     $6::REAL[], $7::REAL[], $8::REAL[], $9::REAL[], $10::INT[], $11::TEXT[], $12::BIGINT[]) \
     AS u(id, race, class, level, experience, pos_x, pos_y, pos_z, yaw, zone_id, pools, \
     version) \
     WHERE p.id = u.id AND p.version < u.version RETURNING p.id";

const SQLITE_SELECT_PLAYER: &str = "SELECT id, account_id, name, race, class, level, \
     experience, pos_x, pos_y, pos_z, yaw, zone_id, pools, version \
     FROM players WHERE id = ?";
const SQLITE_SELECT_SLOTS: &str = "SELECT slot, item_id, quantity, properties \
     FROM inventory WHERE player_id = ? ORDER BY slot";
const SQLITE_INSERT_SLOTS: &str = "INSERT INTO inventory (player_id, slot, item_id, \
     quantity, properties) SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, \
     value ->> 4 FROM json_each(?)";
/// The stored rows of the characters a save updated (ids as a JSON array), as ONE JSON
/// array of `[player_id, slot, item_id, quantity, properties]` arrays: sqlx hands SQLite
/// rows over one by one from its worker thread, which costs more than the query.
const SQLITE_SELECT_SLOTS_OF_PLAYERS: &str = "SELECT json_group_array(json_array(player_id, \
     slot, item_id, quantity, properties)) FROM inventory \
     WHERE player_id IN (SELECT value FROM json_each(?))";
/// Deletes the rows at `(player_id, slot)` pairs given as a JSON array of pairs.
const SQLITE_DELETE_SLOTS: &str = "DELETE FROM inventory WHERE (player_id, slot) IN \
     (SELECT value ->> 0, value ->> 1 FROM json_each(?))";
const SQLITE_UPDATE_PLAYERS: &str = "UPDATE players SET race = u.race, class = u.class, \
     level = u.level, experience = u.experience, pos_x = u.pos_x, pos_y = u.pos_y, \
     pos_z = u.pos_z, yaw = u.yaw, zone_id = u.zone_id, pools = u.pools, \
     version = u.version, last_save = ?2 \
     FROM (SELECT value ->> 0 AS id, value ->> 1 AS race, value ->> 2 AS class, \
     value ->> 3 AS level, value ->> 4 AS experience, value ->> 5 AS pos_x, \
     value ->> 6 AS pos_y, value ->> 7 AS pos_z, value ->> 8 AS yaw, value ->> 9 AS zone_id, \
     value ->> 10 AS pools, value ->> 11 AS version FROM json_each(?1)) AS u \
     WHERE players.id = u.id AND players.version < u.version RETURNING players.id";

type PgPlayerTuple = (
    i64,
    i64,
    String,
    String,
    String,
    i64,
    i64,
    f32,
    f32,
    f32,
    f32,
    i64,
    String,
    i64,
);
type SqlitePlayerTuple = (
    i64,
    i64,
    String,
    String,
    String,
    i64,
    i64,
    f64,
    f64,
    f64,
    f64,
    i64,
    String,
    i64,
);

impl Store {
    /// Creates a character for `account_id` (version 0, level 1, pools full) unless the
    /// account already has `max_per_account`. [`StoreError::Conflict`] when the name is
    /// taken, [`StoreError::LimitReached`], [`StoreError::Invalid`] for a bad name or an
    /// unknown account.
    pub async fn create_character(
        &self,
        account_id: u64,
        new: &NewCharacter,
        max_per_account: u32,
        now_unix_s: u64,
    ) -> Result<CharacterRecord, StoreError> {
        if !valid_character_name(&new.name) {
            return Err(StoreError::Invalid(format!(
                "character name `{}`: 2 to 24 ASCII letters and digits, starting with a letter",
                new.name
            )));
        }
        let mut record = CharacterRecord {
            character_id: 0,
            account_id,
            name: new.name.clone(),
            race: new.race.clone(),
            class: new.class.clone(),
            level: 1,
            experience: 0,
            zone_id: new.zone_id,
            position_m: new.position_m,
            yaw_rad: new.yaw_rad,
            pools: Vec::new(),
            inventory: new.inventory.clone(),
            version: 0,
        };
        let row = player_row(&record)?;
        let account = to_db("account id", account_id)?;
        let now = to_db("now", now_unix_s)?;
        let taken = format!("character name `{}` is taken", new.name);
        let limit = || {
            StoreError::LimitReached(format!(
                "account {account_id} already has {max_per_account} characters"
            ))
        };
        let db = |e| map_err("create character", e);
        let id: i64 = match &self.pools {
            Pools::Postgres { primary, .. } => {
                let mut tx = primary.begin().await.map_err(db)?;
                // Serialises creations of one account, so the limit holds.
                let found: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
                        .bind(account)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?;
                if found.is_none() {
                    return Err(StoreError::Invalid(format!(
                        "account {account_id} does not exist"
                    )));
                }
                let count: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM players WHERE account_id = $1")
                        .bind(account)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db)?;
                if count >= i64::from(max_per_account) {
                    return Err(limit());
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO players (account_id, name, race, class, level, experience, \
                     pos_x, pos_y, pos_z, yaw, zone_id, pools, version, last_save) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::JSONB, $13, $14) \
                     RETURNING id",
                )
                .bind(account)
                .bind(&new.name)
                .bind(&row.race)
                .bind(&row.class)
                .bind(row.level)
                .bind(row.experience)
                .bind(row.position_m.x)
                .bind(row.position_m.y)
                .bind(row.position_m.z)
                .bind(row.yaw_rad)
                .bind(row.zone_id)
                .bind(&row.pools_json)
                .bind(row.version)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                sqlx::query("INSERT INTO character_names (name, player_id) VALUES ($1, $2)")
                    .bind(&new.name)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(&taken, e))?;
                let mut slots = Vec::new();
                slot_rows(id_from_db("players.id", id)?, &new.inventory, &mut slots)?;
                pg_insert_slots(&mut tx, &slots).await?;
                tx.commit().await.map_err(db)?;
                id
            }
            Pools::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(db)?;
                // The insert takes the write lock first, so the count after it is exact.
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO players (account_id, name, race, class, level, experience, \
                     pos_x, pos_y, pos_z, yaw, zone_id, pools, version, last_save) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(account)
                .bind(&new.name)
                .bind(&row.race)
                .bind(&row.class)
                .bind(row.level)
                .bind(row.experience)
                .bind(f64::from(row.position_m.x))
                .bind(f64::from(row.position_m.y))
                .bind(f64::from(row.position_m.z))
                .bind(f64::from(row.yaw_rad))
                .bind(row.zone_id)
                .bind(&row.pools_json)
                .bind(row.version)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| match e {
                    sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                        StoreError::Invalid(format!("account {account_id} does not exist"))
                    }
                    e => map_err(&taken, e),
                })?;
                let count: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM players WHERE account_id = ?")
                        .bind(account)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db)?;
                if count > i64::from(max_per_account) {
                    return Err(limit());
                }
                let mut slots = Vec::new();
                slot_rows(id_from_db("players.id", id)?, &new.inventory, &mut slots)?;
                sqlx::query(SQLITE_INSERT_SLOTS)
                    .bind(slots_json(&slots))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                id
            }
        };
        record.character_id = id_from_db("players.id", id)?;
        Ok(record)
    }

    /// The account's characters by id (from the read replica when there is one: a
    /// character created a moment ago may be missing there).
    pub async fn list_characters(
        &self,
        account_id: u64,
    ) -> Result<Vec<CharacterSummary>, StoreError> {
        let account = to_db("account id", account_id)?;
        let rows: Vec<(i64, String, String, String, i64, i64)> = match &self.pools {
            Pools::Postgres { read, .. } => {
                sqlx::query_as(
                    "SELECT id, name, race, class, level::BIGINT, zone_id::BIGINT \
                     FROM players WHERE account_id = $1 ORDER BY id",
                )
                .bind(account)
                .fetch_all(read)
                .await
            }
            Pools::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT id, name, race, class, level, zone_id \
                     FROM players WHERE account_id = ? ORDER BY id",
                )
                .bind(account)
                .fetch_all(pool)
                .await
            }
        }
        .map_err(|e| map_err("list characters", e))?;
        rows.into_iter().map(summary_from_db).collect()
    }

    /// The id of the account's first character (lowest id), from the primary.
    pub async fn first_character_id(&self, account_id: u64) -> Result<Option<u64>, StoreError> {
        let account = to_db("account id", account_id)?;
        let id: Option<i64> = match &self.pools {
            Pools::Postgres { primary, .. } => {
                sqlx::query_scalar(
                    "SELECT min(id) FROM players WHERE account_id = $1 HAVING count(*) > 0",
                )
                .bind(account)
                .fetch_optional(primary)
                .await
            }
            Pools::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT id FROM players WHERE account_id = ? ORDER BY id LIMIT 1",
                )
                .bind(account)
                .fetch_optional(pool)
                .await
            }
        }
        .map_err(|e| map_err("first character", e))?;
        id.map(|id| id_from_db("players.id", id)).transpose()
    }

    /// Deletes the character with its inventory (and name) in one transaction. `false`
    /// when `account_id` has no character `character_id`.
    pub async fn delete_character(
        &self,
        account_id: u64,
        character_id: u64,
    ) -> Result<bool, StoreError> {
        let account = to_db("account id", account_id)?;
        let id = to_db("character id", character_id)?;
        let db = |e| map_err("delete character", e);
        match &self.pools {
            Pools::Postgres { primary, .. } => {
                let mut tx = primary.begin().await.map_err(db)?;
                let owned: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM players WHERE id = $1 AND account_id = $2 FOR UPDATE",
                )
                .bind(id)
                .bind(account)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                if owned.is_none() {
                    return Ok(false);
                }
                for statement in [
                    "DELETE FROM inventory WHERE player_id = $1",
                    "DELETE FROM character_names WHERE player_id = $1",
                    "DELETE FROM players WHERE id = $1",
                ] {
                    sqlx::query(statement)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
                tx.commit().await.map_err(db)?;
                Ok(true)
            }
            Pools::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(db)?;
                let deleted = sqlx::query("DELETE FROM players WHERE id = ? AND account_id = ?")
                    .bind(id)
                    .bind(account)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
                if deleted == 0 {
                    return Ok(false);
                }
                // The foreign key cascades too; explicit, so it holds without it.
                sqlx::query("DELETE FROM inventory WHERE player_id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(true)
            }
        }
    }

    /// The stored character `character_id` (from the primary), `None` when there is none.
    pub async fn load_character(
        &self,
        character_id: u64,
    ) -> Result<Option<CharacterRecord>, StoreError> {
        let id = to_db("character id", character_id)?;
        let db = |e| map_err("load character", e);
        let (player, slots) = match &self.pools {
            Pools::Postgres { primary, .. } => {
                let mut tx = primary.begin().await.map_err(db)?;
                let row: Option<PgPlayerTuple> = sqlx::query_as(PG_SELECT_PLAYER)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                let Some(r) = row else { return Ok(None) };
                let slots = sqlx::query_as(PG_SELECT_SLOTS)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                let player = StoredPlayer {
                    id: r.0,
                    account_id: r.1,
                    name: r.2,
                    race: r.3,
                    class: r.4,
                    level: r.5,
                    experience: r.6,
                    position_m: Vec3::new(r.7, r.8, r.9),
                    yaw_rad: r.10,
                    zone_id: r.11,
                    pools_json: r.12,
                    version: r.13,
                };
                (player, slots)
            }
            Pools::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(db)?;
                let row: Option<SqlitePlayerTuple> = sqlx::query_as(SQLITE_SELECT_PLAYER)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                let Some(r) = row else { return Ok(None) };
                let slots = sqlx::query_as(SQLITE_SELECT_SLOTS)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                // Stored from f32 values, so the narrowing is exact.
                #[allow(clippy::cast_possible_truncation)]
                let player = StoredPlayer {
                    id: r.0,
                    account_id: r.1,
                    name: r.2,
                    race: r.3,
                    class: r.4,
                    level: r.5,
                    experience: r.6,
                    position_m: Vec3::new(r.7 as f32, r.8 as f32, r.9 as f32),
                    yaw_rad: r.10 as f32,
                    zone_id: r.11,
                    pools_json: r.12,
                    version: r.13,
                };
                (player, slots)
            }
        };
        record_from_db(player, slots).map(Some)
    }

    /// Saves `records` in ONE transaction: each record whose stored version is lower than
    /// its own replaces the row, and its inventory replaces the stored one (only the rows
    /// that differ are deleted and inserted); the others are reported `stale`
    /// (stored version equal or newer) or `missing` (no such character). A record that
    /// cannot be written ([`StoreError::Invalid`]) aborts the whole transaction. Duplicate
    /// ids in the slice: the highest version counts, the others are stale.
    pub async fn save_characters(
        &self,
        records: &[CharacterRecord],
        now_unix_s: u64,
    ) -> Result<SaveReport, StoreError> {
        let mut report = SaveReport::default();
        // Highest version per id.
        let mut latest: BTreeMap<u64, &CharacterRecord> = BTreeMap::new();
        for record in records {
            match latest.get(&record.character_id) {
                Some(kept) if kept.version >= record.version => {
                    report.stale.push(record.character_id);
                }
                Some(_) | None => {
                    if latest.insert(record.character_id, record).is_some() {
                        report.stale.push(record.character_id);
                    }
                }
            }
        }
        if latest.is_empty() {
            return Ok(report);
        }
        let rows = latest
            .values()
            .map(|r| player_row(r))
            .collect::<Result<Vec<_>, _>>()?;
        let now = to_db("now", now_unix_s)?;
        let db = |e| map_err("save characters", e);
        let updated: Vec<i64> = match &self.pools {
            Pools::Postgres { primary, .. } => {
                let mut tx = primary.begin().await.map_err(db)?;
                let updated: Vec<i64> = sqlx::query_scalar(PG_UPDATE_PLAYERS)
                    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.race.as_str()).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.class.as_str()).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.level).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.experience).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.position_m.x).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.position_m.y).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.position_m.z).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.yaw_rad).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.zone_id).collect::<Vec<_>>())
                    .bind(
                        rows.iter()
                            .map(|r| r.pools_json.as_str())
                            .collect::<Vec<_>>(),
                    )
                    .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                let slots = updated_slots(&latest, &updated)?;
                let stored: Vec<StoredSlot> = sqlx::query_as(PG_SELECT_SLOTS_OF_PLAYERS)
                    .bind(&updated)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                // Typed columns: every stored row reads, none is unreadable.
                let changes = diff_slots(stored, &HashSet::new(), slots);
                if !changes.delete_all_of.is_empty() {
                    sqlx::query("DELETE FROM inventory WHERE player_id = ANY($1::BIGINT[])")
                        .bind(&changes.delete_all_of)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
                if !changes.delete_slots.is_empty() {
                    sqlx::query(PG_DELETE_SLOTS)
                        .bind(&changes.delete_player_ids)
                        .bind(&changes.delete_slots)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
                pg_insert_slots(&mut tx, &changes.insert).await?;
                let unwritten = unwritten_ids(&rows, &updated);
                let present: Vec<i64> = if unwritten.is_empty() {
                    Vec::new()
                } else {
                    sqlx::query_scalar("SELECT id FROM players WHERE id = ANY($1::BIGINT[])")
                        .bind(&unwritten)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db)?
                };
                tx.commit().await.map_err(db)?;
                classify(&mut report, &rows, &updated, &present)?;
                updated
            }
            Pools::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(db)?;
                let updated: Vec<i64> = sqlx::query_scalar(SQLITE_UPDATE_PLAYERS)
                    .bind(players_json(&rows))
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                let slots = updated_slots(&latest, &updated)?;
                let ids_json = serde_json::Value::from(updated.clone()).to_string();
                let stored_json: String = sqlx::query_scalar(SQLITE_SELECT_SLOTS_OF_PLAYERS)
                    .bind(&ids_json)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?;
                let (stored, unreadable) = stored_slots_from_json(&stored_json)?;
                let changes = diff_slots(stored, &unreadable, slots);
                if !changes.delete_all_of.is_empty() {
                    sqlx::query(
                        "DELETE FROM inventory WHERE player_id IN \
                         (SELECT value FROM json_each(?))",
                    )
                    .bind(serde_json::Value::from(changes.delete_all_of.clone()).to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
                if !changes.delete_slots.is_empty() {
                    let keys: Vec<[i64; 2]> = changes
                        .delete_player_ids
                        .iter()
                        .zip(&changes.delete_slots)
                        .map(|(&player_id, &slot)| [player_id, slot])
                        .collect();
                    sqlx::query(SQLITE_DELETE_SLOTS)
                        .bind(serde_json::Value::from(keys).to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
                if !changes.insert.is_empty() {
                    sqlx::query(SQLITE_INSERT_SLOTS)
                        .bind(slots_json(&changes.insert))
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
                let unwritten = unwritten_ids(&rows, &updated);
                let present: Vec<i64> = if unwritten.is_empty() {
                    Vec::new()
                } else {
                    sqlx::query_scalar(
                        "SELECT id FROM players WHERE id IN (SELECT value FROM json_each(?))",
                    )
                    .bind(serde_json::Value::from(unwritten).to_string())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?
                };
                tx.commit().await.map_err(db)?;
                classify(&mut report, &rows, &updated, &present)?;
                updated
            }
        };
        report.written = updated.len();
        report.stale.sort_unstable();
        Ok(report)
    }
}

/// Inventory rows of the records the update wrote.
fn updated_slots(
    latest: &BTreeMap<u64, &CharacterRecord>,
    updated: &[i64],
) -> Result<Vec<SlotRow>, StoreError> {
    let mut slots = Vec::new();
    for &id in updated {
        let id = id_from_db("players.id", id)?;
        if let Some(record) = latest.get(&id) {
            slot_rows(id, &record.inventory, &mut slots)?;
        }
    }
    Ok(slots)
}

/// Ids of `rows` not in `updated`.
fn unwritten_ids(rows: &[PlayerRow], updated: &[i64]) -> Vec<i64> {
    let updated: HashSet<i64> = updated.iter().copied().collect();
    rows.iter()
        .map(|r| r.id)
        .filter(|id| !updated.contains(id))
        .collect()
}

/// Sorts the records not written into stale (row present) and missing.
fn classify(
    report: &mut SaveReport,
    rows: &[PlayerRow],
    updated: &[i64],
    present: &[i64],
) -> Result<(), StoreError> {
    let present: HashSet<i64> = present.iter().copied().collect();
    for row_id in unwritten_ids(rows, updated) {
        let id = id_from_db("players.id", row_id)?;
        if present.contains(&row_id) {
            report.stale.push(id);
        } else {
            report.missing.push(id);
        }
    }
    Ok(())
}

/// Inserts `slots` with one `INSERT ... SELECT FROM UNNEST` (a `COPY ... FROM STDIN` was
/// measured slower through sqlx on loopback: about 2x for 11,000 rows).
async fn pg_insert_slots(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    slots: &[SlotRow],
) -> Result<(), StoreError> {
    if slots.is_empty() {
        return Ok(());
    }
    sqlx::query(PG_INSERT_SLOTS)
        .bind(slots.iter().map(|s| s.player_id).collect::<Vec<_>>())
        .bind(slots.iter().map(|s| s.slot).collect::<Vec<_>>())
        .bind(slots.iter().map(|s| s.item.as_str()).collect::<Vec<_>>())
        .bind(slots.iter().map(|s| s.quantity).collect::<Vec<_>>())
        .bind(
            slots
                .iter()
                .map(|s| s.properties_json.as_str())
                .collect::<Vec<_>>(),
        )
        .execute(&mut **tx)
        .await
        .map_err(|e| map_err("save inventory", e))?;
    Ok(())
}
