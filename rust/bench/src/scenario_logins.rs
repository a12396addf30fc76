//! The `logins` scenario: 1,000 password logins arriving at once (the target: all
//! succeed, p99 reported), against a real `mmo-server` (in-process `App`, real HTTP on
//! loopback, real argon2id checks, SQLite in a temporary directory, or a scratch PostgreSQL
//! database on the server `--postgres-url` names).
//!
//! Set-up (untimed): the server starts with the default argon2id cost (19 MiB, 2
//! iterations, 1 lane, unless `--argon2-memory-kib` / `--argon2-iterations` say otherwise)
//! and the per-address login limit raised to its maximum (every bot comes from 127.0.0.1);
//! [`ACCOUNTS`] accounts are registered over `POST /v1/accounts`, 16 at a time.
//!
//! Timed: every account's `POST /v1/login` is started at the same moment (one task each, a
//! connection each). Each request's latency (send to complete answer) goes into a
//! histogram; the wall time from the start to the last answer gives the rate. Every answer
//! is checked: 200 with a token, else counted as a failure with its status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mmo_server::app::App;
use mmo_server::config::ServerSettings;
use serde_json::json;

use crate::pg_scratch::ScratchDb;
use crate::walk::{ns_histogram, quantile_us, record_ns, round};

/// Accounts registered and logged in at once.
const ACCOUNTS: usize = 1_000;
/// Password of every bench account.
const PASSWORD: &str = "bench-password-123";

/// The argon2id cost to run with.
#[derive(Clone, Copy, Debug)]
pub struct Argon2Cost {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
}

async fn run_async(
    postgres_url: Option<String>,
    cost: Argon2Cost,
) -> Result<serde_json::Value, String> {
    let dir = std::env::temp_dir().join(format!("mmo-bench-logins-{}", std::process::id()));
    let mut settings = ServerSettings {
        quic_addr: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        http_addr: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        data_dir: dir.clone(),
        ..ServerSettings::default()
    };
    settings.accounts.argon2_memory_kib = cost.memory_kib;
    settings.accounts.argon2_iterations = cost.iterations;
    settings.accounts.logins_per_address_per_min = 100_000;
    let scratch = match &postgres_url {
        Some(admin_url) => Some(ScratchDb::create(admin_url, "logins").await?),
        None => None,
    };
    settings.storage.database_url = scratch.as_ref().map(|db| db.url.clone());
    let backend = if scratch.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let app = App::start(settings).await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", app.http_addr());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())?;
    let run_id = std::process::id();
    let names: Vec<String> = (0..ACCOUNTS).map(|i| format!("b{run_id}x{i}")).collect();
    let registered = Instant::now();
    for chunk in names.chunks(16) {
        let mut tasks = Vec::new();
        for name in chunk {
            let client = client.clone();
            let url = format!("{base}/v1/accounts");
            let body = json!({"username": name, "password": PASSWORD});
            tasks.push(tokio::spawn(async move {
                client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status())
            }));
        }
        for task in tasks {
            let status = task
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            if status.as_u16() != 201 {
                return Err(format!("registration answered {status}"));
            }
        }
    }
    let register_s = registered.elapsed().as_secs_f64();
    let start = Arc::new(tokio::sync::Barrier::new(ACCOUNTS + 1));
    let mut tasks = Vec::with_capacity(ACCOUNTS);
    for name in &names {
        let client = client.clone();
        let url = format!("{base}/v1/login");
        let body = json!({"username": name, "password": PASSWORD});
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let sent = Instant::now();
            let answer = client.post(url).json(&body).send().await;
            let ok = match answer {
                Ok(r) if r.status().as_u16() == 200 => r
                    .json::<serde_json::Value>()
                    .await
                    .map(|v| v["token"].as_str().is_some_and(|t| !t.is_empty()))
                    .unwrap_or(false),
                _ => false,
            };
            (ok, sent.elapsed())
        }));
    }
    start.wait().await;
    let burst = Instant::now();
    let mut histogram = ns_histogram()?;
    let mut ok = 0usize;
    for task in tasks {
        let (success, elapsed) = task.await.map_err(|e| e.to_string())?;
        record_ns(&mut histogram, elapsed);
        ok += usize::from(success);
    }
    let burst_s = burst.elapsed().as_secs_f64();
    app.shutdown(Duration::from_secs(5)).await;
    if let Some(db) = scratch {
        db.drop_db().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(json!({
        "backend": backend,
        "argon2": {"algorithm": "argon2id", "memory_kib": cost.memory_kib,
                   "iterations": cost.iterations, "parallelism": 1},
        "accounts": ACCOUNTS,
        "register_wall_s": round(register_s, 2),
        "logins_ok": ok,
        "logins_failed": ACCOUNTS - ok,
        "burst_wall_s": round(burst_s, 2),
        "logins_per_s": round(ACCOUNTS as f64 / burst_s, 1),
        "login_p50_ms": round(quantile_us(&histogram, 0.5) / 1_000.0, 1),
        "login_p99_ms": round(quantile_us(&histogram, 0.99) / 1_000.0, 1),
        "login_max_ms": round(histogram.max() as f64 / 1_000_000.0, 1),
    }))
}

/// Runs the scenario (see the module docs).
pub fn run(postgres_url: Option<String>, cost: Argon2Cost) -> Result<serde_json::Value, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(run_async(postgres_url, cost))
}
