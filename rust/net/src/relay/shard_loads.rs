//! Shard loads in the fleet's directory, and the gateways' placement of new connections
//! by them (issue 14, "Shards"; `crate::shard` for shards and lanes).
//!
//! Keys (under `mmo:<world>:`):
//!
//! | key | value |
//! |---|---|
//! | `shard_loads` | hash: field `<zone id>.<shard>` = `<players logged in>\|<unix ms written>`, written every [`LOADS_EVERY_MS`] by the zone process running that instance, deleted when it stops; an entry older than [`LOAD_FRESH_MS`] is a shard that no longer runs |
//! | `shards_wanted` | hash: field `<zone id>` = how many shards the zone should have (`directory`); only ever raised, by gateways |
//!
//! **Zone processes** ([`publish_loads`]) write their instances' player counts and read
//! everyone's, which tells their [`Lanes`] which shards run (crossings and border exports).
//!
//! **Gateways** ([`ShardPlacement::place`]) pick the shard of the home zone a new
//! connection starts in: the running shard with the fewest players (its published count
//! plus the connections this gateway sent it in the last [`SENT_MEMORY_MS`], ties to the
//! lowest shard) whose count is under the cap. When every shard is at the cap the gateway
//! asks for a new lane: it raises every zone's `shards_wanted` to one more than the home
//! zone's highest running shard (spares take them lowest shard first and the home zone's
//! first; a lane whose other zones have no process yet sends crossings to their shard 0,
//! `crate::shard`), and the connection
//! waits, reading the loads every [`WAIT_POLL_MS`], for a shard with room (a spare zone
//! process takes the new shard: `directory::take_free_zone`), at most [`WAIT_FOR_SHARD_MS`];
//! past that it goes to the least loaded shard over the cap, and for
//! [`NO_SPARE_BACKOFF_MS`] the gateway places over the cap at once instead of waiting
//! again (logged: no spare took the shard). Without loads (no zone process has written
//! yet) or with Redis unreachable a connection starts in shard 0, as in a world without
//! shards. The cap is checked where players enter the world; a crossing is never
//! refused, so a shard of another zone can pass it (its lane is full).

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
/// How long a gateway counts a connection it placed on top of the shard's published
/// load (by then the shard's own count includes it), ms.
pub const SENT_MEMORY_MS: u64 = 2_000;
/// A gateway reads the loads again when its copy is older than this, ms.
pub const REFRESH_AFTER_MS: u64 = 500;
/// How often a connection waiting for a new shard reads the loads, ms.
pub const WAIT_POLL_MS: u64 = 100;
/// The longest a connection waits for a new shard, ms.
pub const WAIT_FOR_SHARD_MS: u64 = 3_000;
/// After a wait for a new shard timed out, how long a gateway places over the cap without
/// waiting, ms.
pub const NO_SPARE_BACKOFF_MS: u64 = 30_000;

/// The loads hash's key.
fn loads_key(world: &str) -> String {
    format!("mmo:{world}:shard_loads")
}

/// Raises the wanted shard count of each zone `ARGV[2..]` to `ARGV[1]` where it is lower;
/// returns how many it raised.
const RAISE_WANTED: &str = r"
local wanted = tonumber(ARGV[1])
local raised = 0
for i = 2, #ARGV do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if wanted > current then
    redis.call('HSET', KEYS[1], ARGV[i], wanted)
    raised = raised + 1
  end
end
return raised
";

/// One running shard's published load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardLoad {
    /// Which shard.
    pub shard: ZoneShard,
    /// Players logged in on it.
    pub players: u32,
}

fn now_unix_ms() -> u64 {
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
    connection: &mut redis::aio::MultiplexedConnection,
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
fn parse_entry(field: &str, value: &str) -> Option<(ShardLoad, u64)> {
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

/// A zone process's loads task: every [`LOADS_EVERY_MS`] writes the player count of each
/// of `local` (instances of a world of `lanes.zone_count()` zones, counts in `players` by
/// instance) and reads every shard's load into `lanes`. Redis errors are logged (at most
/// every 10 s) and retried; the task never ends by itself.
pub(crate) async fn publish_loads(
    mut connection: redis::aio::MultiplexedConnection,
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
                let running: Vec<u16> = loads
                    .iter()
                    .filter(|l| l.shard.zone < zone_count)
                    .map(|l| l.shard.instance(zone_count))
                    .collect();
                for shard in 1..MAX_SHARDS_PER_ZONE {
                    for zone in 0..zone_count {
                        let instance = ZoneShard { zone, shard }.instance(zone_count);
                        lanes.set_running(
                            instance,
                            local.contains(&instance) || running.contains(&instance),
                        );
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
    connection: &mut redis::aio::MultiplexedConnection,
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

/// What a gateway remembers between placements.
#[derive(Debug, Default)]
struct PlacementState {
    /// The home zone's running shards and their published loads, as last read.
    loads: Vec<ShardLoad>,
    read_at: Option<Instant>,
    /// Connections placed recently: (shard, when).
    sent: Vec<(u16, Instant)>,
    /// No spare took a requested shard: place over the cap without waiting until then.
    no_spare_until: Option<Instant>,
}

/// A gateway's placement of new connections on the shards of the home zone (module docs).
pub struct ShardPlacement {
    connection: redis::aio::MultiplexedConnection,
    world: String,
    home_zone: u16,
    zone_count: u16,
    cap: u32,
    state: tokio::sync::Mutex<PlacementState>,
}

impl std::fmt::Debug for ShardPlacement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardPlacement")
            .field("world", &self.world)
            .field("home_zone", &self.home_zone)
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

/// Where a placement put a connection, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    /// A running shard under the cap.
    UnderCap(u16),
    /// A shard the gateway asked for, once it ran.
    NewShard(u16),
    /// Every shard was at the cap and no new one came in time: the least loaded.
    OverCap(u16),
    /// No shard loads known (or Redis unreachable): shard 0.
    Unknown,
}

impl Placed {
    /// The shard placed on.
    #[must_use]
    pub fn shard(self) -> u16 {
        match self {
            Placed::UnderCap(s) | Placed::NewShard(s) | Placed::OverCap(s) => s,
            Placed::Unknown => 0,
        }
    }
}

impl ShardPlacement {
    /// Placement on the shards of `home_zone` (of `zone_count` zones) of `world`, at most
    /// `cap` players a shard, with the directory at `redis_url`.
    ///
    /// # Errors
    /// A bad Redis URL or Redis unreachable; a cap of 0.
    pub async fn connect(
        redis_url: &str,
        world: &str,
        home_zone: u16,
        zone_count: u16,
        cap: u32,
    ) -> Result<ShardPlacement, NetError> {
        if cap == 0 {
            return Err(NetError::Config(
                "fleet.shard_cap must be at least 1".into(),
            ));
        }
        Ok(ShardPlacement {
            connection: super::directory::connect(redis_url).await?,
            world: world.to_owned(),
            home_zone,
            zone_count,
            cap,
            state: tokio::sync::Mutex::new(PlacementState::default()),
        })
    }

    /// The zone instance a new connection starts in (module docs), counted as sent there.
    pub async fn place(&self) -> u16 {
        let placed = self.place_shard().await;
        let shard = placed.shard();
        let outcome = match placed {
            Placed::UnderCap(_) => "under_cap",
            Placed::NewShard(_) => "new_shard",
            Placed::OverCap(_) => "over_cap",
            Placed::Unknown => "unknown",
        };
        metrics::counter!(crate::metrics::SHARD_PLACEMENTS_TOTAL, "outcome" => outcome)
            .increment(1);
        ZoneShard {
            zone: self.home_zone,
            shard,
        }
        .instance(self.zone_count)
    }

    /// [`ShardPlacement::place`]'s decision.
    pub async fn place_shard(&self) -> Placed {
        let started = Instant::now();
        let mut requested = false;
        loop {
            let mut state = self.state.lock().await;
            let stale = state
                .read_at
                .is_none_or(|at| at.elapsed() >= Duration::from_millis(REFRESH_AFTER_MS));
            if stale || requested {
                self.refresh(&mut state).await;
            }
            let now = Instant::now();
            state
                .sent
                .retain(|(_, at)| now.duration_since(*at) < Duration::from_millis(SENT_MEMORY_MS));
            if state.loads.is_empty() {
                return Placed::Unknown;
            }
            let effective = |state: &PlacementState, load: &ShardLoad| {
                let sent = state
                    .sent
                    .iter()
                    .filter(|(s, _)| *s == load.shard.shard)
                    .count() as u32;
                load.players.saturating_add(sent)
            };
            let least = state
                .loads
                .iter()
                .map(|l| (effective(&state, l), l.shard.shard))
                .min();
            let Some((players, shard)) = least else {
                return Placed::Unknown;
            };
            if players < self.cap {
                state.sent.push((shard, now));
                if !requested {
                    return Placed::UnderCap(shard);
                }
                tracing::info!(
                    zone = self.home_zone,
                    shard,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "connection placed on a new shard"
                );
                return Placed::NewShard(shard);
            }
            let waited_out = started.elapsed() >= Duration::from_millis(WAIT_FOR_SHARD_MS);
            let backing_off = state.no_spare_until.is_some_and(|until| now < until);
            let highest = state.loads.iter().map(|l| l.shard.shard).max().unwrap_or(0);
            if waited_out || backing_off || highest + 1 >= MAX_SHARDS_PER_ZONE {
                if waited_out {
                    state.no_spare_until = Some(now + Duration::from_millis(NO_SPARE_BACKOFF_MS));
                    tracing::warn!(
                        zone = self.home_zone,
                        cap = self.cap,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "every shard is at the cap and no spare zone process took a new one: placing over the cap"
                    );
                }
                state.sent.push((shard, now));
                return Placed::OverCap(shard);
            }
            if !requested {
                self.request_shards(highest + 2).await;
                requested = true;
            }
            drop(state);
            tokio::time::sleep(Duration::from_millis(WAIT_POLL_MS)).await;
        }
    }

    /// Reads the home zone's shard loads (keeps the last copy when Redis fails).
    async fn refresh(&self, state: &mut PlacementState) {
        let mut connection = self.connection.clone();
        let read = tokio::time::timeout(
            Duration::from_millis(500),
            read_loads(&mut connection, &self.world),
        )
        .await;
        match read {
            Ok(Ok(loads)) => {
                state.loads = loads
                    .into_iter()
                    .filter(|l| l.shard.zone == self.home_zone)
                    .collect();
                state.read_at = Some(Instant::now());
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "shard loads not read: placing by the last copy")
            }
            Err(_) => tracing::warn!(
                "shard loads: no answer from Redis in 500 ms: placing by the last copy"
            ),
        }
    }

    /// Asks for lane `count - 1`: raises every zone's wanted shard count to `count`
    /// (a lane is a shard of every zone, so players keep it across borders).
    async fn request_shards(&self, count: u16) {
        let mut connection = self.connection.clone();
        let mut raise = redis::cmd("EVAL");
        raise
            .arg(RAISE_WANTED)
            .arg(1)
            .arg(super::directory::shards_wanted_key(&self.world))
            .arg(count);
        for zone in 0..self.zone_count {
            raise.arg(zone);
        }
        let raised: Result<i64, _> = raise.query_async(&mut connection).await;
        match raised {
            Ok(raised) => tracing::info!(
                zone = self.home_zone,
                shards = count,
                zones_raised = raised,
                cap = self.cap,
                "every shard of the home zone is at the cap: asked for a new lane"
            ),
            Err(e) => tracing::warn!(error = %e, "new shard not requested (Redis)"),
        }
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
