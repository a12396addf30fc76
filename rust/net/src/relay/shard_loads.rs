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
//! yet), or with Redis unreachable for [`LOADS_TRUSTED_MS`] (until then the last copy
//! is used), a connection starts in shard 0, as in a world without shards. Only one read
//! of the loads runs at a time (every [`REFRESH_AFTER_MS`], or every [`WAIT_POLL_MS`]
//! while connections wait), and a lane is asked for once (again after a second), so a
//! burst at the cap costs Redis a few calls, not a few per connection. The cap is checked
//! where players enter the world; a crossing is never refused, so a shard of another
//! zone can pass it (its lane is full). It is not exact either: a shard's published count
//! is its logged-in players, at most a second old, and each gateway adds only the
//! connections it sent itself in the last [`SENT_MEMORY_MS`], so a burst through several
//! gateways can take a shard past the cap (measured in `docs/fleet.md`).

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

/// What a gateway remembers between placements.
#[derive(Debug, Default)]
struct PlacementState {
    /// The home zone's running shards and their published loads, as last read.
    loads: Vec<ShardLoad>,
    /// When `loads` was last read successfully.
    read_at: Option<Instant>,
    /// When a read was last tried (successful or not).
    tried_at: Option<Instant>,
    /// Connections placed recently: (shard, when).
    sent: Vec<(u16, Instant)>,
    /// The lane count last asked for, and when.
    lane_asked: Option<(u16, Instant)>,
    /// No spare took a requested shard: place over the cap without waiting until then.
    no_spare_until: Option<Instant>,
    /// When a Redis failure was last logged (at most one line every 10 s).
    warned_at: Option<Instant>,
}

/// What one look at the loads decided.
enum Step {
    Placed(Placed),
    /// Every shard is full: wait for a new one, asking for lane count `ask` first.
    Wait {
        ask: Option<u16>,
    },
}

/// A gateway's placement of new connections on the shards of the home zone (module docs).
pub struct ShardPlacement {
    connection: redis::aio::ConnectionManager,
    world: String,
    home_zone: u16,
    zone_count: u16,
    cap: u32,
    /// Held only between awaits (never across a Redis call).
    state: std::sync::Mutex<PlacementState>,
    /// One read of the loads at a time; the others place by the copy they have.
    reading: tokio::sync::Mutex<()>,
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
    /// A shard with room found while waiting for a new one (the new one, unless a place
    /// freed up meanwhile).
    NewShard(u16),
    /// Every shard was at the cap and no new one came in time: the least loaded.
    OverCap(u16),
    /// No shard loads known (none written yet, or none read for [`LOADS_TRUSTED_MS`]):
    /// shard 0.
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

/// A copy of the loads older than this (Redis unreachable meanwhile) is not used, ms.
pub const LOADS_TRUSTED_MS: u64 = 10_000;
/// A lane asked for is asked for again after this long (the first request may have
/// failed), ms.
const ASK_AGAIN_MS: u64 = 1_000;

impl ShardPlacement {
    /// Placement on the shards of `home_zone` (of `zone_count` zones) of `world`, at most
    /// `cap` players a shard, with the directory at `redis_url` (a connection that
    /// reconnects by itself).
    ///
    /// # Errors
    /// A bad Redis URL or Redis unreachable at start; a cap of 0.
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
            state: std::sync::Mutex::new(PlacementState::default()),
            reading: tokio::sync::Mutex::new(()),
        })
    }

    /// The zone instance a new connection starts in (module docs), counted as sent there.
    pub async fn place(&self) -> u16 {
        let placed = self.place_shard().await;
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
            shard: placed.shard(),
        }
        .instance(self.zone_count)
    }

    /// [`ShardPlacement::place`]'s decision.
    pub async fn place_shard(&self) -> Placed {
        let started = Instant::now();
        let mut waiting = false;
        loop {
            let every_ms = if waiting {
                WAIT_POLL_MS
            } else {
                REFRESH_AFTER_MS
            };
            self.refresh_if_older_than(every_ms).await;
            match self.step(started, waiting) {
                Step::Placed(placed) => return placed,
                Step::Wait { ask } => {
                    if let Some(count) = ask {
                        self.request_shards(count).await;
                    }
                    waiting = true;
                    tokio::time::sleep(Duration::from_millis(WAIT_POLL_MS)).await;
                }
            }
        }
    }

    /// One look at the loads as last read (see the module docs).
    fn step(&self, started: Instant, waiting: bool) -> Step {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        state
            .sent
            .retain(|(_, at)| now.duration_since(*at) < Duration::from_millis(SENT_MEMORY_MS));
        let trusted = state
            .read_at
            .is_some_and(|at| now.duration_since(at) < Duration::from_millis(LOADS_TRUSTED_MS));
        let least = state
            .loads
            .iter()
            .map(|load| {
                let sent = state
                    .sent
                    .iter()
                    .filter(|(s, _)| *s == load.shard.shard)
                    .count() as u32;
                (load.players.saturating_add(sent), load.shard.shard)
            })
            .min();
        let (Some((players, shard)), true) = (least, trusted) else {
            return Step::Placed(Placed::Unknown);
        };
        if players < self.cap {
            state.sent.push((shard, now));
            if !waiting {
                return Step::Placed(Placed::UnderCap(shard));
            }
            tracing::info!(
                zone = self.home_zone,
                shard,
                waited_ms = started.elapsed().as_millis() as u64,
                "connection placed on a new shard"
            );
            return Step::Placed(Placed::NewShard(shard));
        }
        let waited_out = started.elapsed() >= Duration::from_millis(WAIT_FOR_SHARD_MS);
        let backing_off = state.no_spare_until.is_some_and(|until| now < until);
        let highest = state.loads.iter().map(|l| l.shard.shard).max().unwrap_or(0);
        if waited_out || backing_off || highest + 1 >= MAX_SHARDS_PER_ZONE {
            if waited_out && !backing_off {
                state.no_spare_until = Some(now + Duration::from_millis(NO_SPARE_BACKOFF_MS));
                tracing::warn!(
                    zone = self.home_zone,
                    cap = self.cap,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "every shard is at the cap and no spare zone process took a new one: placing over the cap"
                );
            }
            state.sent.push((shard, now));
            return Step::Placed(Placed::OverCap(shard));
        }
        let count = highest + 2;
        let ask = match state.lane_asked {
            Some((asked, at))
                if asked >= count
                    && now.duration_since(at) < Duration::from_millis(ASK_AGAIN_MS) =>
            {
                None
            }
            _ => {
                state.lane_asked = Some((count, now));
                Some(count)
            }
        };
        Step::Wait { ask }
    }

    /// Reads the home zone's shard loads when the last try is older than `max_age_ms`,
    /// unless another placement is reading them now. A failure keeps the last copy (used
    /// for at most [`LOADS_TRUSTED_MS`]) and is logged at most every 10 s.
    async fn refresh_if_older_than(&self, max_age_ms: u64) {
        let Ok(_reading) = self.reading.try_lock() else {
            return;
        };
        let due = {
            let state = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state
                .tried_at
                .is_none_or(|at| at.elapsed() >= Duration::from_millis(max_age_ms))
        };
        if !due {
            return;
        }
        let mut connection = self.connection.clone();
        let read = tokio::time::timeout(
            Duration::from_millis(500),
            read_loads(&mut connection, &self.world),
        )
        .await
        .unwrap_or_else(|_| {
            Err(NetError::Connection(
                "fleet directory Redis: no answer in 500 ms".into(),
            ))
        });
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        state.tried_at = Some(now);
        match read {
            Ok(loads) => {
                state.loads = loads
                    .into_iter()
                    .filter(|l| l.shard.zone == self.home_zone)
                    .collect();
                state.read_at = Some(now);
            }
            Err(e) => {
                if state
                    .warned_at
                    .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(10))
                {
                    state.warned_at = Some(now);
                    tracing::warn!(error = %e, "shard loads not read: placing by the last copy (shard 0 once it is 10 s old)");
                }
            }
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
        let raised = tokio::time::timeout(
            Duration::from_millis(500),
            raise.query_async::<i64>(&mut connection),
        )
        .await;
        match raised {
            Ok(Ok(raised)) if raised > 0 => tracing::info!(
                zone = self.home_zone,
                shards = count,
                zones_raised = raised,
                cap = self.cap,
                "every shard of the home zone is at the cap: asked for a new lane"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "new lane not requested (Redis)"),
            Err(_) => tracing::warn!("new lane not requested: no answer from Redis in 500 ms"),
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
