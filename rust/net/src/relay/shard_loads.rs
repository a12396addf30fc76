//! Shard loads in the fleet's directory: what zone processes publish about their shards
//! and what the gateways' placement ([`super::shard_placement`]) and the lanes
//! ([`crate::shard`]) read (issue 14, "Shards").
//!
//! Keys (under `mmo:<world>:`):
//!
//! | key | value |
//! |---|---|
//! | `shard_loads` | hash: field `<zone id>.<shard>` = `<sessions>\|<unix ms sampled>`, or `<sessions>\|<unix ms sampled>\|draining` for a shard whose players are moving to another shard ([`super::shard_merge`]): the shard's sessions (logged in, or registered and logging in), written every [`LOADS_EVERY_MS`] by the zone process running that instance, deleted when it stops; an entry older than [`LOAD_FRESH_MS`] is a shard that no longer runs |
//!
//! **Zone processes** ([`publish_loads`]) write their instances' loads and read everyone's,
//! which tells their [`Lanes`] which shards run (crossings and border exports: a draining
//! shard counts as not running) and drives the merging of shards nobody needs
//! ([`super::shard_merge`]).

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

/// A shard's field in the loads hash: `<zone id>.<shard>` (shard 0 included, unlike
/// [`ZoneShard::label`]).
fn load_field(shard: ZoneShard) -> String {
    format!("{}.{}", shard.zone, shard.shard)
}

/// One running shard's published load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardLoad {
    /// Which shard.
    pub shard: ZoneShard,
    /// Its sessions (logged in, or registered and logging in).
    pub players: u32,
    /// Its players are moving to another shard: nobody is placed there.
    pub draining: bool,
    /// When the count was sampled: Redis's clock, ms since the Unix epoch.
    pub sampled_unix_ms: u64,
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
            Some(load) => {
                if now_ms.saturating_sub(load.sampled_unix_ms) <= LOAD_FRESH_MS {
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

/// One entry of the loads hash.
pub(super) fn parse_entry(field: &str, value: &str) -> Option<ShardLoad> {
    let (zone, shard) = field.split_once('.')?;
    let (players, rest) = value.split_once('|')?;
    let (written_ms, draining) = match rest.split_once('|') {
        Some((written_ms, "draining")) => (written_ms, true),
        Some(_) => return None,
        None => (rest, false),
    };
    let shard = ZoneShard {
        zone: zone.parse().ok()?,
        shard: shard.parse().ok()?,
    };
    if shard.shard >= MAX_SHARDS_PER_ZONE {
        return None;
    }
    Some(ShardLoad {
        shard,
        players: players.parse().ok()?,
        draining,
        sampled_unix_ms: written_ms.parse().ok()?,
    })
}

/// What a zone process's loads task works with.
pub(crate) struct LoadsTask {
    /// Its own connection to the directory.
    pub(crate) connection: redis::aio::ConnectionManager,
    pub(crate) world: String,
    /// The instances run here.
    pub(crate) local: Vec<u16>,
    /// Sessions on each instance, by instance id (kept by the zone threads).
    pub(crate) players: Arc<[AtomicUsize]>,
    /// Which instances run in the fleet, as this process sees it (written here).
    pub(crate) lanes: Lanes,
    /// Merging shards nobody needs (`None`: never).
    pub(crate) merging: Option<Merging>,
}

/// What merging shards needs ([`super::shard_merge`]).
pub(crate) struct Merging {
    /// The zone threads' inboxes, by instance id (to move their players).
    pub(crate) inboxes: Arc<[tokio::sync::mpsc::Sender<crate::zone_thread::ZoneMsg>]>,
    /// Sessions a shard holds at most (the gateways' `shard_cap`).
    pub(crate) cap: u32,
    /// How long a merge verdict must hold before a shard drains.
    pub(crate) after: Duration,
    /// The zone new connections start in: other zones' shards follow its lanes.
    pub(crate) home_zone: u16,
    /// Set once every instance here has drained and emptied: the process should stop.
    pub(crate) retired: tokio::sync::watch::Sender<bool>,
}

/// One local instance's merging state.
#[derive(Debug, Default)]
struct LocalShard {
    clock: super::shard_merge::MergeClock,
    /// Since when it drains (`None`: it does not).
    draining_since: Option<Instant>,
    /// Reads in a row that found it draining and empty.
    empty_reads: u32,
}

impl LocalShard {
    fn draining(&self) -> bool {
        self.draining_since.is_some()
    }
}

/// A draining shard retires only after this many reads in a row found it empty: longer
/// than a handoff may wait for its answer (2 s), so a player refused by the other shard
/// and put back here is seen.
const EMPTY_READS_TO_RETIRE: u32 = 3;

/// Sets the load entry of each shard `ARGV[i]` to `ARGV[i + 1] .. '|' .. <Redis's time
/// in ms> .. ARGV[i + 2]` (the suffix is empty or `|draining`): every entry is stamped
/// by one clock, the one the gateways' placement script reads.
const WRITE_LOADS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #ARGV - 2, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1] .. '|' .. now .. ARGV[i + 2])
end
return now
";

/// Lowers zone `ARGV[1]`'s wanted shard count to `ARGV[3]` if it still is `ARGV[2]`.
const LOWER_WANTED: &str = r"
if tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') == tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
";

/// A zone process's loads task: every [`LOADS_EVERY_MS`] writes the sessions of each of
/// its instances, reads every shard's load into its lanes, and merges shards nobody needs
/// ([`super::shard_merge`]). Redis errors are logged (at most every 10 s) and retried; the
/// task never ends by itself.
pub(crate) async fn publish_loads(task: LoadsTask) {
    let LoadsTask {
        mut connection,
        world,
        local,
        players,
        lanes,
        merging,
    } = task;
    let zone_count = lanes.zone_count();
    let fields: Vec<(u16, String)> = local
        .iter()
        .map(|&i| {
            let s = ZoneShard::of_instance(i, zone_count);
            (i, load_field(s))
        })
        .collect();
    let mut shards: HashMap<u16, LocalShard> =
        local.iter().map(|&i| (i, LocalShard::default())).collect();
    let sessions_of = |instance: u16| -> u32 {
        players.get(usize::from(instance)).map_or(0, |p| {
            u32::try_from(p.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
        })
    };
    let mut every = tokio::time::interval(Duration::from_millis(LOADS_EVERY_MS));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error_log: Option<Instant> = None;
    loop {
        every.tick().await;
        let mut write = redis::cmd("EVAL");
        write.arg(WRITE_LOADS).arg(1).arg(loads_key(&world));
        for (instance, field) in &fields {
            let draining = shards.get(instance).is_some_and(LocalShard::draining);
            write
                .arg(field)
                .arg(sessions_of(*instance))
                .arg(if draining { "|draining" } else { "" });
        }
        let written: Result<i64, _> = write.query_async(&mut connection).await;
        let read = match written {
            Ok(_) => read_loads(&mut connection, &world).await,
            Err(e) => Err(NetError::Connection(format!("fleet directory Redis: {e}"))),
        };
        let loads = match read {
            Ok(loads) => loads,
            Err(e) => {
                if last_error_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(error = %e, "shard loads not written or read (lanes keep the last view)");
                    last_error_log = Some(Instant::now());
                }
                continue;
            }
        };
        let running: std::collections::HashSet<u16> = loads
            .iter()
            .filter(|l| l.shard.zone < zone_count && !l.draining)
            .map(|l| l.shard.instance(zone_count))
            .chain(
                local
                    .iter()
                    .copied()
                    .filter(|i| !shards.get(i).is_some_and(LocalShard::draining)),
            )
            .collect();
        for shard in 1..MAX_SHARDS_PER_ZONE {
            for zone in 0..zone_count {
                let instance = ZoneShard { zone, shard }.instance(zone_count);
                lanes.set_running(instance, running.contains(&instance));
            }
        }
        if let Some(merging) = &merging {
            merge_step(
                &mut connection,
                &world,
                zone_count,
                &loads,
                &mut shards,
                &sessions_of,
                merging,
            )
            .await;
        }
    }
}

/// One read's merging work for every local shard (see [`super::shard_merge`]).
async fn merge_step(
    connection: &mut redis::aio::ConnectionManager,
    world: &str,
    zone_count: u16,
    loads: &[ShardLoad],
    shards: &mut HashMap<u16, LocalShard>,
    sessions_of: &impl Fn(u16) -> u32,
    merging: &Merging,
) {
    use super::shard_merge::{MergeView, verdict};
    let wanted: HashMap<String, String> = match redis::cmd("HGETALL")
        .arg(super::directory::shards_wanted_key(world))
        .query_async(connection)
        .await
    {
        Ok(wanted) => wanted,
        Err(e) => {
            tracing::debug!(error = %e, "shards wanted not read: no merging this round");
            return;
        }
    };
    let now = Instant::now();
    // Our own entries were just stamped by Redis: the newest sample is Redis's now.
    let now_unix_ms = loads.iter().map(|l| l.sampled_unix_ms).max().unwrap_or(0);
    let retire_after = Duration::from_millis(LOAD_FRESH_MS + LOADS_EVERY_MS);
    for (&instance, state) in shards.iter_mut() {
        let me = ZoneShard::of_instance(instance, zone_count);
        if me.shard == 0 {
            continue;
        }
        let sessions = sessions_of(instance);
        let wanted_here = wanted
            .get(&me.zone.to_string())
            .and_then(|w| w.parse::<u16>().ok())
            .unwrap_or(0);
        if state.draining() && wanted_here > me.shard {
            // The gateways want this shard again (the others filled up): it stays.
            tracing::info!(shard = %me.label(), sessions, "shard wanted again: drain stopped");
            *state = LocalShard::default();
            continue;
        }
        let view = MergeView {
            loads,
            wanted: wanted_here,
            cap: merging.cap,
            home_zone: merging.home_zone,
            now_unix_ms,
        };
        let verdict = verdict(me, sessions, &view);
        if !state.draining() {
            if !state.clock.merge_due(verdict, now, merging.after) {
                continue;
            }
            state.draining_since = Some(now);
            tracing::info!(shard = %me.label(), sessions, ?verdict, "shard no longer needed: its players move to another shard, then it is given back");
            let lowered: Result<i64, _> = redis::cmd("EVAL")
                .arg(LOWER_WANTED)
                .arg(1)
                .arg(super::directory::shards_wanted_key(world))
                .arg(me.zone)
                .arg(me.shard + 1)
                .arg(me.shard)
                .query_async(connection)
                .await;
            if let Err(e) = lowered {
                tracing::warn!(shard = %me.label(), error = %e, "wanted shards not lowered");
            }
        }
        if sessions == 0 {
            state.empty_reads += 1;
            continue;
        }
        state.empty_reads = 0;
        // Players still here (logged in since, crossed in, or put back): move them too,
        // to the emptiest fresh shard (the one a `MergeInto` verdict names).
        let Some(target) = super::shard_merge::target(me, &view) else {
            continue;
        };
        let to = target.shard.instance(zone_count);
        if let Some(inbox) = merging.inboxes.get(usize::from(instance)) {
            let _ = inbox.try_send(crate::zone_thread::ZoneMsg::MoveAll { to });
        }
    }
    let all_retired = shards.values().all(|s| {
        s.draining_since
            .is_some_and(|since| now.duration_since(since) >= retire_after)
            && s.empty_reads >= EMPTY_READS_TO_RETIRE
    });
    if !shards.is_empty() && all_retired {
        merging.retired.send_replace(true);
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
        delete.arg(load_field(s));
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
            Some(ShardLoad {
                shard: ZoneShard { zone: 3, shard: 1 },
                players: 12,
                draining: false,
                sampled_unix_ms: 1_700_000_000_000,
            })
        );
        assert_eq!(
            parse_entry("3.1", "0|5|draining").map(|l| l.draining),
            Some(true)
        );
        for (field, value) in [
            ("3", "1|2"),
            ("3.x", "1|2"),
            ("3.1", "1"),
            ("3.1", "-1|2"),
            ("3.16", "1|2"),
            ("3.1", "1|2|full"),
        ] {
            assert_eq!(parse_entry(field, value), None, "{field} = {value}");
        }
    }
}
