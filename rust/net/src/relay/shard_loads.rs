//! Shard loads in the fleet's directory: what zone processes publish about their shards
//! and what the gateways' placement ([`super::shard_placement`]) and the lanes
//! ([`crate::shard`]) read (issue 14, "Shards").
//!
//! Keys (under `mmo:<world>:`):
//!
//! | key | value |
//! |---|---|
//! | `shard_loads` | hash: field `<zone id>.<shard>` = `<sessions>\|<unix ms sampled>`: the shard's sessions (logged in, or registered and logging in), written every [`LOADS_EVERY_MS`] by the zone process running that instance, deleted when it stops; an entry older than [`LOAD_FRESH_MS`] is a shard that no longer runs |
//!
//! **Zone processes** ([`publish_loads`]) write their instances' loads and read everyone's,
//! which tells their [`Lanes`] which shards run (crossings and border exports).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::NetError;
use crate::shard::{Lanes, MAX_SHARDS_PER_ZONE, ZoneShard};

/// How often a zone process writes its instances' loads and reads everyone's, ms.
pub const LOADS_EVERY_MS: u64 = 1_000;
/// A load entry older than this is a shard that no longer runs, ms.
pub const LOAD_FRESH_MS: u64 = 3_000;

/// The loads hash's key.
pub(super) fn loads_key(world: &str) -> String {
    format!("mmo:{world}:shard_loads")
}

/// One running shard's published load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardLoad {
    /// Which shard.
    pub shard: ZoneShard,
    /// Its sessions (logged in, or registered and logging in).
    pub players: u32,
}

pub(super) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The fresh entries of the loads hash (malformed fields are skipped and logged once per
/// read).
///
/// # Errors
/// Redis unreachable.
pub async fn read_loads(
    connection: &mut impl redis::aio::ConnectionLike,
    world: &str,
) -> Result<Vec<ShardLoad>, NetError> {
    let all: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(loads_key(world))
        .query_async(connection)
        .await
        .map_err(|e| NetError::Connection(format!("fleet directory Redis: {e}")))?;
    let now_ms = now_unix_ms();
    let mut loads = Vec::with_capacity(all.len());
    let mut malformed = 0usize;
    for (field, value) in &all {
        match parse_entry(field, value) {
            Some((load, written_ms)) => {
                if now_ms.saturating_sub(written_ms) <= LOAD_FRESH_MS {
                    loads.push(load);
                }
            }
            None => malformed += 1,
        }
    }
    if malformed > 0 {
        tracing::warn!(
            malformed,
            key = %loads_key(world),
            "shard load entries that are not `<zone>.<shard>` = `<players>|<unix ms>`: ignored"
        );
    }
    loads.sort_unstable_by_key(|l| l.shard);
    Ok(loads)
}

/// One entry of the loads hash: the load and when it was written (unix ms).
pub(super) fn parse_entry(field: &str, value: &str) -> Option<(ShardLoad, u64)> {
    let (zone, shard) = field.split_once('.')?;
    let (players, written_ms) = value.split_once('|')?;
    let shard = ZoneShard {
        zone: zone.parse().ok()?,
        shard: shard.parse().ok()?,
    };
    if shard.shard >= MAX_SHARDS_PER_ZONE {
        return None;
    }
    Some((
        ShardLoad {
            shard,
            players: players.parse().ok()?,
        },
        written_ms.parse().ok()?,
    ))
}

/// A zone process's loads task: every [`LOADS_EVERY_MS`] writes the sessions of each of
/// `local` (instances of a world of `lanes.zone_count()` zones, counts in `players` by
/// instance) and reads every shard's load into `lanes`. Redis errors are logged (at most
/// every 10 s) and retried; the task never ends by itself.
pub(crate) async fn publish_loads(
    mut connection: redis::aio::ConnectionManager,
    world: String,
    local: Vec<u16>,
    players: Arc<[AtomicUsize]>,
    lanes: Lanes,
) {
    let zone_count = lanes.zone_count();
    let fields: Vec<(u16, String)> = local
        .iter()
        .map(|&i| {
            let s = ZoneShard::of_instance(i, zone_count);
            (i, format!("{}.{}", s.zone, s.shard))
        })
        .collect();
    let mut every = tokio::time::interval(Duration::from_millis(LOADS_EVERY_MS));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error_log: Option<Instant> = None;
    loop {
        every.tick().await;
        let now_ms = now_unix_ms();
        let mut write = redis::cmd("HSET");
        write.arg(loads_key(&world));
        for (instance, field) in &fields {
            let count = players
                .get(usize::from(*instance))
                .map_or(0, |p| p.load(Ordering::Relaxed));
            write.arg(field).arg(format!("{count}|{now_ms}"));
        }
        let written: Result<i64, _> = write.query_async(&mut connection).await;
        let read = match written {
            Ok(_) => read_loads(&mut connection, &world).await,
            Err(e) => Err(NetError::Connection(format!("fleet directory Redis: {e}"))),
        };
        match read {
            Ok(loads) => {
                let running: std::collections::HashSet<u16> = loads
                    .iter()
                    .filter(|l| l.shard.zone < zone_count)
                    .map(|l| l.shard.instance(zone_count))
                    .chain(local.iter().copied())
                    .collect();
                for shard in 1..MAX_SHARDS_PER_ZONE {
                    for zone in 0..zone_count {
                        let instance = ZoneShard { zone, shard }.instance(zone_count);
                        lanes.set_running(instance, running.contains(&instance));
                    }
                }
            }
            Err(e) => {
                if last_error_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(error = %e, "shard loads not written or read (lanes keep the last view)");
                    last_error_log = Some(Instant::now());
                }
            }
        }
    }
}

/// Deletes the load entries of `local` (a zone process stopping cleanly), so gateways
/// stop placing players there at once instead of after [`LOAD_FRESH_MS`].
pub(crate) async fn remove_loads(
    connection: &mut redis::aio::ConnectionManager,
    world: &str,
    zone_count: u16,
    local: &[u16],
) {
    let mut delete = redis::cmd("HDEL");
    delete.arg(loads_key(world));
    for &i in local {
        let s = ZoneShard::of_instance(i, zone_count);
        delete.arg(format!("{}.{}", s.zone, s.shard));
    }
    let deleted: Result<i64, _> = delete.query_async(connection).await;
    if let Err(e) = deleted {
        tracing::warn!(error = %e, "shard load entries not deleted (they go stale by themselves)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_entries_parse_and_refuse_malformed_ones() {
        assert_eq!(
            parse_entry("3.1", "12|1700000000000"),
            Some((
                ShardLoad {
                    shard: ZoneShard { zone: 3, shard: 1 },
                    players: 12
                },
                1_700_000_000_000
            ))
        );
        for (field, value) in [
            ("3", "1|2"),
            ("3.x", "1|2"),
            ("3.1", "1"),
            ("3.1", "-1|2"),
            ("3.16", "1|2"),
        ] {
            assert_eq!(parse_entry(field, value), None, "{field} = {value}");
        }
    }
}
