//! Accounts and refresh tokens in the [`Store`](super::Store).
//!
//! An account is a unique name and an argon2id password hash (a PHC string). Development
//! accounts from the settings get a row too (with an empty hash, so no password ever matches
//! it here), so their characters are stored like everyone's.
//!
//! A refresh token is stored only as its SHA-256, with its account, expiry and a revoked
//! flag. [`Store::rotate_refresh_token`] spends one in a transaction that starts with the
//! write (so concurrent uses of one token serialise on its row: exactly one rotates it, the
//! others see it revoked).

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

/// What presenting a refresh token did ([`Store::rotate_refresh_token`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshUse {
    /// It was valid: it is now revoked and its successor stored.
    Rotated {
        /// The account.
        account_id: u64,
        /// Its name.
        name: String,
    },
    /// No such token.
    Unknown,
    /// It expired (nothing changed).
    Expired,
    /// It had been revoked already (spent or logged out): every refresh token of the
    /// account is now revoked (reuse detection).
    Revoked {
        /// The account whose tokens were revoked.
        account_id: u64,
    },
}

/// The spent token's account id and name.
type Spent = Option<(i64, String)>;
/// An unspent token's account id, expiry and revoked flag.
type Found = Option<(i64, i64, bool)>;

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

    /// Stores the refresh token whose SHA-256 is `token_sha256` for `account_id`, expiring
    /// at `expires_at_unix_s`; the account's expired tokens are deleted on the way (so the
    /// table holds only live or revoked-but-unexpired tokens).
    pub async fn insert_refresh_token(
        &self,
        account_id: u64,
        token_sha256: &[u8; 32],
        expires_at_unix_s: u64,
        now_unix_s: u64,
    ) -> Result<(), StoreError> {
        let account = to_db("account_id", account_id)?;
        let expires = to_db("expires_at", expires_at_unix_s)?;
        let now = to_db("now", now_unix_s)?;
        let what = "refresh token insert";
        match &self.pools {
            Pools::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(|e| map_err(what, e))?;
                sqlx::query("DELETE FROM refresh_tokens WHERE account_id = ? AND expires_at < ?")
                    .bind(account)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_sha256, account_id, expires_at, revoked) VALUES (?, ?, ?, 0)",
                )
                .bind(&token_sha256[..])
                .bind(account)
                .bind(expires)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_err(what, e))?;
                tx.commit().await.map_err(|e| map_err(what, e))
            }
            Pools::Postgres { primary, .. } => {
                let mut tx = primary.begin().await.map_err(|e| map_err(what, e))?;
                sqlx::query("DELETE FROM refresh_tokens WHERE account_id = $1 AND expires_at < $2")
                    .bind(account)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_sha256, account_id, expires_at, revoked) VALUES ($1, $2, $3, FALSE)",
                )
                .bind(&token_sha256[..])
                .bind(account)
                .bind(expires)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_err(what, e))?;
                tx.commit().await.map_err(|e| map_err(what, e))
            }
        }
    }

    /// Spends the refresh token `old_sha256` at `now_unix_s`: when it is live, revokes it
    /// and stores `new_sha256` (same account, expiring at `new_expires_at_unix_s`) in the
    /// same transaction; when it was revoked already, revokes all the account's tokens. See
    /// [`RefreshUse`].
    pub async fn rotate_refresh_token(
        &self,
        old_sha256: &[u8; 32],
        new_sha256: &[u8; 32],
        new_expires_at_unix_s: u64,
        now_unix_s: u64,
    ) -> Result<RefreshUse, StoreError> {
        let new_expires = to_db("expires_at", new_expires_at_unix_s)?;
        let now = to_db("now", now_unix_s)?;
        let what = "refresh token rotation";
        // Both branches: spend (write first), then either insert the successor or classify.
        let (spent, found): (Spent, Found) = match &self.pools {
            Pools::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(|e| map_err(what, e))?;
                let spent: Option<i64> = sqlx::query_scalar(
                    "UPDATE refresh_tokens SET revoked = 1 WHERE token_sha256 = ? AND revoked = 0 AND expires_at >= ? RETURNING account_id",
                )
                .bind(&old_sha256[..])
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| map_err(what, e))?;
                let result = if let Some(account) = spent {
                    sqlx::query(
                        "INSERT INTO refresh_tokens (token_sha256, account_id, expires_at, revoked) VALUES (?, ?, ?, 0)",
                    )
                    .bind(&new_sha256[..])
                    .bind(account)
                    .bind(new_expires)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
                    let name: String = sqlx::query_scalar("SELECT name FROM accounts WHERE id = ?")
                        .bind(account)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| map_err(what, e))?;
                    (Some((account, name)), None)
                } else {
                    let found: Option<(i64, i64, bool)> = sqlx::query_as(
                        "SELECT account_id, expires_at, revoked FROM refresh_tokens WHERE token_sha256 = ?",
                    )
                    .bind(&old_sha256[..])
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
                    if let Some((account, _, true)) = found {
                        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE account_id = ?")
                            .bind(account)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| map_err(what, e))?;
                    }
                    (None, found)
                };
                tx.commit().await.map_err(|e| map_err(what, e))?;
                result
            }
            Pools::Postgres { primary, .. } => {
                let mut tx = primary.begin().await.map_err(|e| map_err(what, e))?;
                let spent: Option<i64> = sqlx::query_scalar(
                    "UPDATE refresh_tokens SET revoked = TRUE WHERE token_sha256 = $1 AND NOT revoked AND expires_at >= $2 RETURNING account_id",
                )
                .bind(&old_sha256[..])
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| map_err(what, e))?;
                let result = if let Some(account) = spent {
                    sqlx::query(
                        "INSERT INTO refresh_tokens (token_sha256, account_id, expires_at, revoked) VALUES ($1, $2, $3, FALSE)",
                    )
                    .bind(&new_sha256[..])
                    .bind(account)
                    .bind(new_expires)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
                    let name: String =
                        sqlx::query_scalar("SELECT name FROM accounts WHERE id = $1")
                            .bind(account)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(|e| map_err(what, e))?;
                    (Some((account, name)), None)
                } else {
                    let found: Option<(i64, i64, bool)> = sqlx::query_as(
                        "SELECT account_id, expires_at, revoked FROM refresh_tokens WHERE token_sha256 = $1",
                    )
                    .bind(&old_sha256[..])
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
                    if let Some((account, _, true)) = found {
                        sqlx::query(
                            "UPDATE refresh_tokens SET revoked = TRUE WHERE account_id = $1",
                        )
                        .bind(account)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_err(what, e))?;
                    }
                    (None, found)
                };
                tx.commit().await.map_err(|e| map_err(what, e))?;
                result
            }
        };
        if let Some((account, name)) = spent {
            return Ok(RefreshUse::Rotated {
                account_id: id_from_db("refresh_tokens.account_id", account)?,
                name,
            });
        }
        Ok(match found {
            None => RefreshUse::Unknown,
            Some((account, _, true)) => RefreshUse::Revoked {
                account_id: id_from_db("refresh_tokens.account_id", account)?,
            },
            // Live but not spent by the update: expired.
            Some((_, _, false)) => RefreshUse::Expired,
        })
    }

    /// Revokes the refresh token `token_sha256`; false when there is no live such token.
    pub async fn revoke_refresh_token(&self, token_sha256: &[u8; 32]) -> Result<bool, StoreError> {
        let result = match &self.pools {
            Pools::Sqlite(pool) => sqlx::query(
                "UPDATE refresh_tokens SET revoked = 1 WHERE token_sha256 = ? AND revoked = 0",
            )
            .bind(&token_sha256[..])
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
            Pools::Postgres { primary, .. } => sqlx::query(
                "UPDATE refresh_tokens SET revoked = TRUE WHERE token_sha256 = $1 AND NOT revoked",
            )
            .bind(&token_sha256[..])
            .execute(primary)
            .await
            .map(|r| r.rows_affected()),
        };
        Ok(result.map_err(|e| map_err("refresh token revocation", e))? > 0)
    }

    /// Revokes every refresh token of `account_id`; how many were live.
    pub async fn revoke_account_refresh_tokens(&self, account_id: u64) -> Result<u64, StoreError> {
        let account = to_db("account_id", account_id)?;
        let result = match &self.pools {
            Pools::Sqlite(pool) => sqlx::query(
                "UPDATE refresh_tokens SET revoked = 1 WHERE account_id = ? AND revoked = 0",
            )
            .bind(account)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
            Pools::Postgres { primary, .. } => sqlx::query(
                "UPDATE refresh_tokens SET revoked = TRUE WHERE account_id = $1 AND NOT revoked",
            )
            .bind(account)
            .execute(primary)
            .await
            .map(|r| r.rows_affected()),
        };
        result.map_err(|e| map_err("refresh token revocation", e))
    }
}
