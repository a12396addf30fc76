//! Characters, their inventories and batched saves in the [`Store`](super::Store).
//!
//! MINIMAL VERSION written by the accounts work so its character endpoints compile and are
//! tested; it follows the issue 7 contract's signatures exactly and implements only
//! [`Store::create_character`], [`Store::list_characters`] and [`Store::delete_character`].
//! The persistence work owns the real file (loading, batched versioned saves) and replaces
//! this one at merge.

use glam::Vec3;
use mmo_core::persist::{CharacterRecord, SlotRecord};

use super::accounts::{id_from_db, to_db};
use super::{Pools, Store, StoreError, map_err};

/// A character to create. Pools start full (an empty list).
#[derive(Clone, Debug, PartialEq)]
pub struct NewCharacter {
    /// Name ([`mmo_core::persist::valid_character_name`]).
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
    /// Starting inventory, ascending by slot.
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

type SummaryRow = (i64, String, String, String, i64, i64);

fn summary(row: SummaryRow) -> Result<CharacterSummary, StoreError> {
    let (id, name, race, class, level, zone) = row;
    Ok(CharacterSummary {
        character_id: id_from_db("players.id", id)?,
        name,
        race,
        class,
        level: u32::try_from(level)
            .map_err(|_| StoreError::Corrupt(format!("players.level {level} of {id}")))?,
        zone_id: u16::try_from(zone)
            .map_err(|_| StoreError::Corrupt(format!("players.zone_id {zone} of {id}")))?,
    })
}

fn properties_json(slot: &SlotRecord) -> serde_json::Value {
    serde_json::Value::Object(
        slot.properties
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

impl Store {
    /// Creates a character of `account_id` (version 0, level 1, pools full); Conflict when
    /// the name is taken (case-insensitively), LimitReached when the account has
    /// `max_per_account` characters already.
    pub async fn create_character(
        &self,
        account_id: u64,
        new: &NewCharacter,
        max_per_account: u32,
        now_unix_s: u64,
    ) -> Result<CharacterRecord, StoreError> {
        let account = to_db("account_id", account_id)?;
        let now = to_db("now", now_unix_s)?;
        let what = "character creation";
        let taken = format!("character name `{}` is taken", new.name);
        let lower = new.name.to_lowercase();
        let limit = || {
            StoreError::LimitReached(format!(
                "account {account_id} has {max_per_account} characters already"
            ))
        };
        let id: i64 = match &self.pools {
            Pools::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(|e| map_err(what, e))?;
                // The write first: it takes SQLite's write lock, so the count below is exact.
                sqlx::query("INSERT INTO character_names (name, player_id) VALUES (?, 0)")
                    .bind(&lower)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(&taken, e))?;
                let count: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM players WHERE account_id = ?")
                        .bind(account)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| map_err(what, e))?;
                if count >= i64::from(max_per_account) {
                    return Err(limit());
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO players (account_id, name, race, class, level, experience, position_x, position_y, position_z, yaw_rad, zone_id, pools, version, last_save) \
                     VALUES (?, ?, ?, ?, 1, 0, ?, ?, ?, ?, ?, '[]', 0, ?) RETURNING id",
                )
                .bind(account)
                .bind(&new.name)
                .bind(&new.race)
                .bind(&new.class)
                .bind(new.position_m.x)
                .bind(new.position_m.y)
                .bind(new.position_m.z)
                .bind(new.yaw_rad)
                .bind(i32::from(new.zone_id))
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| map_err(what, e))?;
                sqlx::query("UPDATE character_names SET player_id = ? WHERE name = ?")
                    .bind(id)
                    .bind(&lower)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
                for slot in &new.inventory {
                    sqlx::query("INSERT INTO inventory (player_id, slot, item_id, quantity, properties) VALUES (?, ?, ?, ?, ?)")
                        .bind(id)
                        .bind(i64::from(slot.slot))
                        .bind(&slot.item)
                        .bind(i64::from(slot.quantity))
                        .bind(properties_json(slot).to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_err(what, e))?;
                }
                tx.commit().await.map_err(|e| map_err(what, e))?;
                id
            }
            Pools::Postgres { primary, .. } => {
                let mut tx = primary.begin().await.map_err(|e| map_err(what, e))?;
                // Serialises the creations of one account, so the count below is exact.
                sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
                    .bind(account)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
                let count: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM players WHERE account_id = $1")
                        .bind(account)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| map_err(what, e))?;
                if count >= i64::from(max_per_account) {
                    return Err(limit());
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO players (account_id, name, race, class, level, experience, position_x, position_y, position_z, yaw_rad, zone_id, pools, version, last_save) \
                     VALUES ($1, $2, $3, $4, 1, 0, $5, $6, $7, $8, $9, '[]'::jsonb, 0, $10) RETURNING id",
                )
                .bind(account)
                .bind(&new.name)
                .bind(&new.race)
                .bind(&new.class)
                .bind(new.position_m.x)
                .bind(new.position_m.y)
                .bind(new.position_m.z)
                .bind(new.yaw_rad)
                .bind(i32::from(new.zone_id))
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| map_err(what, e))?;
                sqlx::query("INSERT INTO character_names (name, player_id) VALUES ($1, $2)")
                    .bind(&lower)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(&taken, e))?;
                for slot in &new.inventory {
                    sqlx::query("INSERT INTO inventory (player_id, slot, item_id, quantity, properties) VALUES ($1, $2, $3, $4, $5)")
                        .bind(id)
                        .bind(i64::from(slot.slot))
                        .bind(&slot.item)
                        .bind(i64::from(slot.quantity))
                        .bind(sqlx::types::Json(properties_json(slot)))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_err(what, e))?;
                }
                tx.commit().await.map_err(|e| map_err(what, e))?;
                id
            }
        };
        Ok(CharacterRecord {
            character_id: id_from_db("players.id", id)?,
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
        })
    }

    /// The characters of `account_id`, by id (from the read pool).
    pub async fn list_characters(
        &self,
        account_id: u64,
    ) -> Result<Vec<CharacterSummary>, StoreError> {
        let account = to_db("account_id", account_id)?;
        let rows: Vec<SummaryRow> = match &self.pools {
            Pools::Sqlite(pool) => sqlx::query_as(
                "SELECT id, name, race, class, level, zone_id FROM players WHERE account_id = ? ORDER BY id",
            )
            .bind(account)
            .fetch_all(pool)
            .await,
            Pools::Postgres { read, .. } => sqlx::query_as(
                "SELECT id, name, race, class, CAST(level AS BIGINT), CAST(zone_id AS BIGINT) FROM players WHERE account_id = $1 ORDER BY id",
            )
            .bind(account)
            .fetch_all(read)
            .await,
        }
        .map_err(|e| map_err("character list", e))?;
        rows.into_iter().map(summary).collect()
    }

    /// Deletes the character `character_id` of `account_id` (its inventory and name too);
    /// false when the account has no such character.
    pub async fn delete_character(
        &self,
        account_id: u64,
        character_id: u64,
    ) -> Result<bool, StoreError> {
        let account = to_db("account_id", account_id)?;
        let id = to_db("character_id", character_id)?;
        let what = "character deletion";
        match &self.pools {
            Pools::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(|e| map_err(what, e))?;
                let deleted = sqlx::query("DELETE FROM players WHERE id = ? AND account_id = ?")
                    .bind(id)
                    .bind(account)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?
                    .rows_affected();
                if deleted > 0 {
                    sqlx::query("DELETE FROM inventory WHERE player_id = ?")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_err(what, e))?;
                    sqlx::query("DELETE FROM character_names WHERE player_id = ?")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_err(what, e))?;
                }
                tx.commit().await.map_err(|e| map_err(what, e))?;
                Ok(deleted > 0)
            }
            Pools::Postgres { primary, .. } => {
                let mut tx = primary.begin().await.map_err(|e| map_err(what, e))?;
                let deleted = sqlx::query("DELETE FROM players WHERE id = $1 AND account_id = $2")
                    .bind(id)
                    .bind(account)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?
                    .rows_affected();
                if deleted > 0 {
                    sqlx::query("DELETE FROM inventory WHERE player_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_err(what, e))?;
                    sqlx::query("DELETE FROM character_names WHERE player_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_err(what, e))?;
                }
                tx.commit().await.map_err(|e| map_err(what, e))?;
                Ok(deleted > 0)
            }
        }
    }
}
