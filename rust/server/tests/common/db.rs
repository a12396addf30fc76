//! Test databases: a SQLite file in a temp dir, or a fresh PostgreSQL database on the
//! server `MMO_TEST_POSTGRES_URL` names (dropped again when the [`TestDb`] is dropped).
//!
//! The services rule: without `MMO_TEST_POSTGRES_URL` a PostgreSQL test prints
//! `skipped: MMO_TEST_POSTGRES_URL not set` and returns, unless `MMO_REQUIRE_SERVICES=1`,
//! where it panics with that message.

use std::time::{SystemTime, UNIX_EPOCH};

use mmo_server::storage::Store;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;

use super::TempDir;

/// The PostgreSQL server URL for tests, or `None` (after printing the skip line) when the
/// test should be skipped. Panics when services are required but the URL is unset.
pub fn postgres_server_url() -> Option<String> {
    match std::env::var("MMO_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("MMO_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "MMO_TEST_POSTGRES_URL not set"
            );
            println!("skipped: MMO_TEST_POSTGRES_URL not set");
            None
        }
    }
}

/// `url` with its database (the path) replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    format!("{}/{database}{query}", &base[..host_end])
}

/// A database for one test. See the module docs.
pub struct TestDb {
    /// The URL to open with [`Store::open`].
    pub url: String,
    /// PostgreSQL: the server URL (its maintenance database) and the database to drop.
    postgres: Option<(String, String)>,
    /// SQLite: the directory of the file.
    _dir: Option<TempDir>,
}

impl TestDb {
    /// A SQLite database in a fresh temp dir.
    pub fn sqlite(tag: &str) -> TestDb {
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.path()).expect("create the temp dir");
        TestDb {
            url: Store::sqlite_url_in(dir.path()),
            postgres: None,
            _dir: Some(dir),
        }
    }

    /// A fresh PostgreSQL database on the test server, or `None` when skipped.
    pub async fn postgres(tag: &str) -> Option<TestDb> {
        let server = postgres_server_url()?;
        Some(TestDb::postgres_on(&server, tag).await)
    }

    /// A fresh database on the PostgreSQL server `server_url`.
    pub async fn postgres_on(server_url: &str, tag: &str) -> TestDb {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let name = format!(
            "mmo_t_{}_{}_{}",
            tag.to_ascii_lowercase(),
            std::process::id(),
            nanos % 1_000_000_000_000
        );
        let mut admin = PgConnection::connect(server_url)
            .await
            .expect("connect to the test PostgreSQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        TestDb {
            url: with_database(server_url, &name),
            postgres: Some((server_url.to_owned(), name)),
            _dir: None,
        }
    }

    /// Opens the store (migrations applied), 4 connections.
    pub async fn open(&self) -> Store {
        Store::open(&self.url, None, 4)
            .await
            .expect("open the test store")
    }

    /// Runs `sql` on the database directly (a test's way to damage a row).
    pub async fn execute(&self, sql: &'static str) {
        if self.postgres.is_some() {
            let mut connection = PgConnection::connect(&self.url).await.expect("connect");
            sqlx::raw_sql(sql)
                .execute(&mut connection)
                .await
                .expect("run the SQL");
            let _ = connection.close().await;
        } else {
            let mut connection = SqliteConnection::connect(&self.url).await.expect("connect");
            sqlx::raw_sql(sql)
                .execute(&mut connection)
                .await
                .expect("run the SQL");
            let _ = connection.close().await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Drop may run inside a runtime: drop the database from a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&server).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}
