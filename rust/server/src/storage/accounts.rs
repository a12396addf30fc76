//! Accounts and refresh tokens in the [`Store`](super::Store).
//!
//! An account is a unique name and an argon2id password hash (a PHC string). Development
//! accounts from the settings get a row too (with an empty hash, so no password ever matches
//! it here), so their characters are stored like everyone's.

use super::{Pools, Store, StoreError, map_err};

/// One account row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRow {
    /// Database id (> 0).
    pub account_id: u64,
    /// Unique name.
    pub name: String,
    /// argon2id PHC string; empty for development accounts.
    pub password_hash: String,
}

/// Database ids are positive `BIGINT`s; a negative one would be a corrupt row.
pub(crate) fn id_from_db(what: &str, id: i64) -> Result<u64, StoreError> {
    u64::try_from(id).map_err(|_| StoreError::Corrupt(format!("{what}: negative id {id}")))
}

/// Ids and times go to the database as `BIGINT`; larger values are refused, not wrapped.
pub(crate) fn to_db(what: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what}: {value} is too large")))
}

impl Store {
    /// Creates an account; [`StoreError::Conflict`] when the name is taken.
    pub async fn create_account(
        &self,
        name: &str,
        password_hash: &str,
        now_unix_s: u64,
    ) -> Result<u64, StoreError> {
        let now = to_db("created_at", now_unix_s)?;
        let what = format!("account name `{name}` is taken");
        let id: i64 = match &self.pools {
            Pools::Sqlite(pool) => sqlx::query_scalar(
                "INSERT INTO accounts (name, password_hash, created_at) VALUES (?, ?, ?) RETURNING id",
            )
            .bind(name)
            .bind(password_hash)
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(|e| map_err(&what, e))?,
            Pools::Postgres { primary, .. } => sqlx::query_scalar(
                "INSERT INTO accounts (name, password_hash, created_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(name)
            .bind(password_hash)
            .bind(now)
            .fetch_one(primary)
            .await
            .map_err(|e| map_err(&what, e))?,
        };
        id_from_db("accounts.id", id)
    }

    /// The account named `name`, if any (from the primary).
    pub async fn account_by_name(&self, name: &str) -> Result<Option<AccountRow>, StoreError> {
        let row: Option<(i64, String, String)> = match &self.pools {
            Pools::Sqlite(pool) => {
                sqlx::query_as("SELECT id, name, password_hash FROM accounts WHERE name = ?")
                    .bind(name)
                    .fetch_optional(pool)
                    .await
            }
            Pools::Postgres { primary, .. } => {
                sqlx::query_as("SELECT id, name, password_hash FROM accounts WHERE name = $1")
                    .bind(name)
                    .fetch_optional(primary)
                    .await
            }
        }
        .map_err(|e| map_err("account lookup", e))?;
        row.map(|(id, name, password_hash)| {
            Ok(AccountRow {
                account_id: id_from_db("accounts.id", id)?,
                name,
                password_hash,
            })
        })
        .transpose()
    }

    /// The id of the development account `name`, creating its row (empty password hash)
    /// when it has none.
    pub async fn ensure_account(&self, name: &str, now_unix_s: u64) -> Result<u64, StoreError> {
        if let Some(row) = self.account_by_name(name).await? {
            return Ok(row.account_id);
        }
        match self.create_account(name, "", now_unix_s).await {
            Ok(id) => Ok(id),
            // Created meanwhile by another request.
            Err(StoreError::Conflict(_)) => self
                .account_by_name(name)
                .await?
                .map(|row| row.account_id)
                .ok_or_else(|| StoreError::Corrupt(format!("account `{name}` vanished"))),
            Err(e) => Err(e),
        }
    }
}
