//! A scratch PostgreSQL database for one scenario run: created on the server a URL names
//! (a role that may create databases), dropped at the end, so a run never touches existing
//! data.

/// A database `mmo_bench_<tag>_<pid>` on the server of an admin URL.
pub struct ScratchDb {
    admin: sqlx::PgPool,
    name: String,
    /// URL of the scratch database (the admin URL with the database name replaced).
    pub url: String,
}

impl ScratchDb {
    /// Creates the database.
    pub async fn create(admin_url: &str, tag: &str) -> Result<ScratchDb, String> {
        let name = format!("mmo_bench_{tag}_{}", std::process::id());
        let admin = sqlx::PgPool::connect(admin_url)
            .await
            .map_err(|e| format!("PostgreSQL at the given URL: {e}"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&admin)
        .await
        .map_err(|e| e.to_string())?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .map_err(|e| e.to_string())?;
        let url = database_url(admin_url, &name);
        Ok(ScratchDb { admin, name, url })
    }

    /// Drops the database (every pool on it must be closed first).
    pub async fn drop_db(self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.admin)
            .await
        {
            eprintln!("mmo-bench: scratch database {} not dropped: {e}", self.name);
        }
        self.admin.close().await;
    }
}

/// `url` with its database name replaced by `name`.
fn database_url(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
