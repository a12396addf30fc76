//! Where accounts and characters are kept: one [`Store`] over two backends, SQLite (the
//! embedded default, a file in the data directory, WAL mode) and PostgreSQL (deployments;
//! the seed's schema with hash-partitioned `players` and `inventory`), both through sqlx.
//!
//! - Schema: versioned migrations under `rust/server/migrations/{sqlite,postgres}`, embedded
//!   in the binary and applied by [`Store::open`].
//! - Queries are written per backend in the concept's file: [`accounts`] (accounts and
//!   refresh tokens) and [`characters`] (characters, inventories, batched saves, with the
//!   inventory row diff of a save in `inventory_rows`).
//! - Reads that may be stale (character lists) go to the read replica when one is
//!   configured; everything else to the primary.
//! - Errors are [`StoreError`]s; [`StoreError::is_retryable`] tells an outage (retry later)
//!   from a refusal (a name taken, a limit reached).

pub mod accounts;
pub mod characters;
mod inventory_rows;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::service_settings::redact_url;

/// How long a query waits for a pooled connection before the store reports itself
/// unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, one file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"` (metric labels, logs).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// What went wrong in the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or failed mid-way (connection refused, timeout, I/O).
    /// Retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique name is taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An account already has the most characters it may have.
    #[error("limit reached: {0}")]
    LimitReached(String),
    /// Stored data cannot be read back (a corrupt row); names the row.
    #[error("bad stored data: {0}")]
    Corrupt(String),
    /// Data to be written is unacceptable (a name that is not a valid character name, a
    /// quantity that does not fit the column); names the record.
    #[error("invalid data: {0}")]
    Invalid(String),
    /// The schema could not be brought up to date.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The URL or options are unusable.
    #[error("bad database configuration: {0}")]
    Config(String),
}

impl StoreError {
    /// Whether trying again later may succeed (an outage), as opposed to a refusal.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// `unavailable`, `conflict`, ... (metric labels).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Conflict(_) => "conflict",
            StoreError::LimitReached(_) => "limit_reached",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Invalid(_) => "invalid",
            StoreError::Migration(_) => "migration",
            StoreError::Config(_) => "config",
        }
    }
}

/// Maps a sqlx error: unique violations become [`StoreError::Conflict`] with `what`, the
/// database's transient errors (see [`transient_db_error`]) and everything about reaching
/// the database [`StoreError::Unavailable`], the rest of its refusals
/// [`StoreError::Corrupt`].
pub(crate) fn map_err(what: &str, e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(what.to_owned())
        }
        sqlx::Error::Database(db) if transient_db_error(db.as_ref()) => {
            StoreError::Unavailable(format!("{what}: {}", db.message()))
        }
        sqlx::Error::Database(db) => StoreError::Corrupt(format!("{what}: {}", db.message())),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(format!("{what}: {e}")),
        _ => StoreError::Unavailable(format!("{what}: {e}")),
    }
}

/// Whether a database error is an outage rather than a refusal: PostgreSQL's connection
/// exceptions (SQLSTATE class 08), insufficient resources (53), operator intervention (57:
/// shutting down, terminated by the administrator), system errors (58) and serialization
/// failures or deadlocks (40001, 40P01); SQLite's busy and locked (primary codes 5 and 6),
/// I/O error and full disk (10, 13).
fn transient_db_error(db: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // Extended result codes; the primary code is the low byte.
        return code
            .parse::<i32>()
            .is_ok_and(|extended| matches!(extended & 0xff, 5 | 6 | 10 | 13));
    }
    ["08", "53", "57", "58"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == "40001"
        || code == "40P01"
}

/// The pools of one backend. Invariant: `read` is the primary's pool unless a replica is
/// configured (PostgreSQL only).
#[derive(Clone, Debug)]
pub(crate) enum Pools {
    Sqlite(SqlitePool),
    Postgres { primary: PgPool, read: PgPool },
}

/// Accounts and characters. Cloning is cheap (the pools are shared). See the module docs.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pools: Pools,
}

impl Store {
    /// The default database URL: SQLite in `<data_dir>/mmo.db`.
    #[must_use]
    pub fn sqlite_url_in(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("mmo.db").display())
    }

    /// Connects to `url` (`sqlite://path` creates the file; `postgres://...`), with an
    /// optional PostgreSQL read replica, `max_connections` per pool, and applies the
    /// migrations. Errors name the database (password hidden).
    pub async fn open(
        url: &str,
        read_replica_url: Option<&str>,
        max_connections: u32,
    ) -> Result<Store, StoreError> {
        let shown = redact_url(url);
        if url.starts_with("sqlite:") {
            if read_replica_url.is_some() {
                return Err(StoreError::Config(
                    "a read replica needs a PostgreSQL primary".into(),
                ));
            }
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("{shown}: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(ACQUIRE_TIMEOUT)
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|e| StoreError::Unavailable(format!("{shown}: {e}")))?;
            sqlx::migrate!("migrations/sqlite")
                .run(&pool)
                .await
                .map_err(|e| StoreError::Migration(format!("{shown}: {e}")))?;
            return Ok(Store {
                pools: Pools::Sqlite(pool),
            });
        }
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let primary = pg_pool(url, max_connections).await?;
            sqlx::migrate!("migrations/postgres")
                .run(&primary)
                .await
                .map_err(|e| StoreError::Migration(format!("{shown}: {e}")))?;
            let read = match read_replica_url {
                Some(replica) => pg_pool(replica, max_connections).await?,
                None => primary.clone(),
            };
            return Ok(Store {
                pools: Pools::Postgres { primary, read },
            });
        }
        Err(StoreError::Config(format!(
            "{shown}: the URL must start with sqlite:// or postgres://"
        )))
    }

    /// Which backend this is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Sqlite(_) => Backend::Sqlite,
            Pools::Postgres { .. } => Backend::Postgres,
        }
    }

    /// One round trip to the primary.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let result = match &self.pools {
            Pools::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
            Pools::Postgres { primary, .. } => {
                sqlx::query("SELECT 1").execute(primary).await.map(|_| ())
            }
        };
        result.map_err(|e| map_err("ping", e))
    }

    /// Closes the pools (waits for connections in use to be returned).
    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite(pool) => pool.close().await,
            Pools::Postgres { primary, read } => {
                primary.close().await;
                read.close().await;
            }
        }
    }
}

async fn pg_pool(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    let shown = redact_url(url);
    let options =
        PgConnectOptions::from_str(url).map_err(|e| StoreError::Config(format!("{shown}: {e}")))?;
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Unavailable(format!("{shown}: {e}")))
}
