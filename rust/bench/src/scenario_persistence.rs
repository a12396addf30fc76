//! The `persistence` scenario: how long the write-behind saver's flush takes, on each
//! backend, for 1,000 dirty characters with inventories (the target: p99 <= 50 ms
//! on PostgreSQL and SQLite).
//!
//! Set-up (untimed): a fresh database per backend (SQLite in a temporary directory;
//! PostgreSQL when a URL is given with `--postgres-url` or `MMO_TEST_POSTGRES_URL`: a new
//! database `mmo_bench_<pid>` created there and dropped at the end), 100 accounts with 10
//! characters each, every character with [`BAG_ROWS`] bag stacks (each with a property)
//! and one equipped item.
//!
//! Timed, in two phases of [`FLUSHES`] calls of `Store::save_characters` with all 1,000
//! records, each call after every record was changed (version + 1, position and pools
//! moved) and:
//!
//! - `one_stack`: one stack's quantity and a property of it changed (what a flush usually
//!   carries: the store rewrites only the inventory rows that differ, one per character);
//! - `every_row`: every stack's quantity changed, so every inventory row of every character
//!   is rewritten (11,000 rows deleted and inserted: the worst case of a flush).
//!
//! Each call is one transaction, as the saver does it. Every call is checked to have
//! written all 1,000 records (none stale, none missing), and after each phase every 97th
//! character is read back and compared with its last record.

use std::collections::BTreeMap;
use std::time::Instant;

use glam::Vec3;
use mmo_core::persist::{CharacterRecord, EQUIPMENT_SLOT_BASE, SlotRecord};
use mmo_server::storage::Store;
use mmo_server::storage::characters::NewCharacter;
use serde_json::json;

use crate::pg_scratch::ScratchDb;
use crate::walk::{ns_histogram, quantile_us, record_ns, round};

/// Characters per flush.
const CHARACTERS: usize = 1_000;
/// Characters per account.
const PER_ACCOUNT: usize = 10;
/// Bag stacks per character (plus one equipped item).
const BAG_ROWS: u32 = 10;
/// Timed flushes per backend (after 3 untimed ones).
const FLUSHES: usize = 100;

fn inventory(seed: u32) -> Vec<SlotRecord> {
    let mut rows: Vec<SlotRecord> = (0..BAG_ROWS)
        .map(|slot| SlotRecord {
            slot,
            item: if slot % 2 == 0 { "potion" } else { "bread" }.to_owned(),
            quantity: 1 + (seed + slot) % 5,
            properties: BTreeMap::from([("durability".to_owned(), format!("{}", 50 + slot))]),
        })
        .collect();
    rows.push(SlotRecord {
        slot: EQUIPMENT_SLOT_BASE,
        item: "sword".to_owned(),
        quantity: 1,
        properties: BTreeMap::new(),
    });
    rows
}

/// Runs the flush loop on `store`; figures for one backend.
async fn measure(store: &Store) -> Result<serde_json::Value, String> {
    let now = 1_800_000_000;
    let mut records: Vec<CharacterRecord> = Vec::with_capacity(CHARACTERS);
    for account in 0..CHARACTERS / PER_ACCOUNT {
        let account_id = store
            .create_account(&format!("bench{account}"), "", now)
            .await
            .map_err(|e| e.to_string())?;
        for n in 0..PER_ACCOUNT {
            let new = NewCharacter {
                name: format!("Bench{account}x{n}"),
                race: "human".to_owned(),
                class: "warrior".to_owned(),
                zone_id: 0,
                position_m: Vec3::ZERO,
                yaw_rad: 0.0,
                inventory: inventory(n as u32),
            };
            let record = store
                .create_character(account_id, &new, PER_ACCOUNT as u32, now)
                .await
                .map_err(|e| e.to_string())?;
            records.push(record);
        }
    }
    let one_stack = flush_phase(store, &mut records, now, Change::OneStack).await?;
    let every_row = flush_phase(store, &mut records, now, Change::EveryRow).await?;
    Ok(json!({
        "flushes_per_phase": FLUSHES,
        "characters_per_flush": CHARACTERS,
        "inventory_rows_per_character": BAG_ROWS + 1,
        "one_stack": one_stack,
        "every_row": every_row,
    }))
}

/// What changes in each character's inventory between two flushes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    /// One stack's quantity and one of its properties.
    OneStack,
    /// Every stack's quantity.
    EveryRow,
}

/// Changes every record, flushes; [`FLUSHES`] timed rounds after 3 untimed ones. Then
/// reads back every 97th character and checks it is its last record.
async fn flush_phase(
    store: &Store,
    records: &mut [CharacterRecord],
    now: u64,
    change: Change,
) -> Result<serde_json::Value, String> {
    let mut histogram = ns_histogram()?;
    for round_n in 0..FLUSHES + 3 {
        for (i, r) in records.iter_mut().enumerate() {
            r.version += 1;
            r.position_m += Vec3::new(0.5, 0.25, 0.0);
            r.pools = vec![("health".to_owned(), 100.0 - (round_n % 50) as f32)];
            match change {
                Change::OneStack => {
                    let row = &mut r.inventory[round_n % BAG_ROWS as usize];
                    row.quantity = 1 + (row.quantity + 1) % 5;
                    row.properties
                        .insert("durability".to_owned(), format!("{}", (i + round_n) % 100));
                }
                Change::EveryRow => {
                    for row in &mut r.inventory {
                        row.quantity = 1 + row.quantity % 5;
                    }
                }
            }
        }
        let started = Instant::now();
        let report = store
            .save_characters(records, now + round_n as u64)
            .await
            .map_err(|e| e.to_string())?;
        let elapsed = started.elapsed();
        if report.written != CHARACTERS || !report.stale.is_empty() || !report.missing.is_empty() {
            return Err(format!(
                "flush {round_n} wrote {} of {CHARACTERS} (stale {:?}, missing {:?})",
                report.written, report.stale, report.missing
            ));
        }
        if round_n >= 3 {
            record_ns(&mut histogram, elapsed);
        }
    }
    for record in records.iter().step_by(97) {
        let stored = store
            .load_character(record.character_id)
            .await
            .map_err(|e| e.to_string())?;
        if stored.as_ref() != Some(record) {
            return Err(format!(
                "character {} read back as {stored:?}, saved as {record:?}",
                record.character_id
            ));
        }
    }
    Ok(json!({
        "flush_p50_ms": round(quantile_us(&histogram, 0.5) / 1_000.0, 2),
        "flush_p99_ms": round(quantile_us(&histogram, 0.99) / 1_000.0, 2),
        "flush_max_ms": round(histogram.max() as f64 / 1_000_000.0, 2),
        "flush_mean_ms": round(histogram.mean() / 1_000_000.0, 2),
    }))
}

async fn run_async(postgres_url: Option<String>) -> Result<serde_json::Value, String> {
    let dir = std::env::temp_dir().join(format!("mmo-bench-persistence-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let sqlite = Store::open(&Store::sqlite_url_in(&dir), None, 4)
        .await
        .map_err(|e| e.to_string())?;
    let sqlite_figures = measure(&sqlite).await;
    sqlite.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    let mut figures = json!({ "sqlite": sqlite_figures? });
    match postgres_url {
        Some(admin_url) => {
            let scratch = ScratchDb::create(&admin_url, "persistence").await?;
            let pg = Store::open(&scratch.url, None, 4)
                .await
                .map_err(|e| e.to_string())?;
            let pg_figures = measure(&pg).await;
            pg.close().await;
            scratch.drop_db().await;
            figures["postgres"] = pg_figures?;
        }
        None => {
            figures["postgres"] =
                json!("not measured: give --postgres-url or MMO_TEST_POSTGRES_URL");
        }
    }
    Ok(figures)
}

/// Runs the scenario (see the module docs).
pub fn run(postgres_url: Option<String>) -> Result<serde_json::Value, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(run_async(postgres_url))
}
