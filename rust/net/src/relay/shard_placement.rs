//! The gateways' placement of new connections on the shards of the home zone, and their
//! requests for new lanes (issue 14, "Shards"; [`crate::shard`] for shards and lanes,
//! [`super::shard_loads`] for what zone processes publish).
//!
//! Keys (under `mmo:<world>:`), besides `shard_loads`:
//!
//! | key | value |
//! |---|---|
//! | `shard_placed:<zone id>` | sorted set: one member `<shard>:<random u64>` per connection a gateway placed on a shard of that zone, scored by Redis's time in ms; members older than [`PLACED_MEMORY_MS`] are dropped |
//! | `shards_wanted` | hash: field `<zone id>` = how many shards the zone should have (`directory`); raised by gateways, lowered by a shard that merges ([`super::shard_merge`]) |
//!
//! **A placement** ([`ShardPlacement::place`]) reads `shard_loads`, then runs one Lua
//! script in Redis, so gateways never place on one count twice: for each running shard of the home zone (a fresh entry
//! and not draining entry of `shard_loads`) its load is its published sessions plus the placements made since
//! that count was sampled (less [`REGISTER_MARGIN_MS`], the time a placed connection takes
//! to reach its zone and be counted there: a placement in that margin before a sample that
//! the zone had already counted is counted twice, so a shard can look full a few sessions
//! early at a burst); the shard with the lowest load (ties: the
//! lowest shard) takes the connection if that load is under the cap, and the placement is
//! recorded.
//!
//! **At the cap** the gateway asks for a new lane: it raises every zone's `shards_wanted`
//! to one more than the home zone's highest running shard (or, when that shard is
//! draining, to include it again, which stops its drain) (spares take them lowest shard
//! first and the home zone's first, `directory::take_free_zone`), and the connection
//! tries again every [`WAIT_POLL_MS`] for a shard with room, at most
//! [`WAIT_FOR_SHARD_MS`]; past that it goes to the least loaded shard over the cap, and
//! for [`NO_SPARE_BACKOFF_MS`] the gateway places over the cap at once instead of waiting
//! again (logged: no spare took the shard). A lane is asked for once a second at most.
//! Without loads (no zone process has written yet), or with Redis failing (then for a
//! second no call is tried), a connection starts in shard 0, as in a world without shards.
//!
//! The cap is checked where players enter the world; a crossing is never refused, so a
//! shard of another zone can pass it (its lane is full).

use std::time::{Duration, Instant};

use crate::NetError;
use crate::shard::{MAX_SHARDS_PER_ZONE, ZoneShard};

/// How often a connection waiting for a new shard tries again, ms.
pub const WAIT_POLL_MS: u64 = 100;
/// The longest a connection waits for a new shard, ms.
pub const WAIT_FOR_SHARD_MS: u64 = 3_000;
/// After a wait for a new shard timed out, how long a gateway places over the cap without
/// waiting, ms.
pub const NO_SPARE_BACKOFF_MS: u64 = 30_000;
/// How long placements are remembered: longer than a load's publication period plus its
/// freshness, so no placement is forgotten before a load that counts it is read, ms.
pub const PLACED_MEMORY_MS: u64 = 5_000;
/// A placement made this long before a load was sampled is taken to be in that load
/// already (the time from the gateway's decision to the zone registering the session), ms.
pub const REGISTER_MARGIN_MS: u64 = 100;
/// A lane asked for is asked for again after this long (the first request may have
/// failed), ms.
const ASK_AGAIN_MS: u64 = 1_000;
/// After a Redis failure, placements go to shard 0 without calling Redis for this long, ms.
const REDIS_PAUSE_MS: u64 = 1_000;
/// The longest wait for one Redis call, ms.
const CALL_TIMEOUT_MS: u64 = 500;

/// The placement (see the module docs). KEYS: the zone's placements. ARGV: (unused),
/// cap, freshness ms, memory ms, margin ms, a random member suffix, force (1: place on the
/// least loaded shard even over the cap), then for each shard of the home zone in the
/// loads hash its shard, sessions, unix ms sampled and whether it is draining (1 or 0:
/// counted as running, never chosen) (the gateway reads the hash first: its Redis user may
/// only read it, and every key a script is given counts as written).
/// Returns `{outcome, shard, highest running shard}`, outcome -1 no fresh loads, 0 placed
/// under the cap, 1 every shard full (nothing recorded), 2 placed over the cap.
const PLACE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[4]))
local placed = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local best, best_load, highest = -1, 0, -1
for i = 8, #ARGV - 3, 4 do
  local shard, sessions, written = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if now - written <= tonumber(ARGV[3]) and shard > highest then highest = shard end
  if now - written <= tonumber(ARGV[3]) and ARGV[i + 3] == '0' then
      local load = sessions
      local since = written - tonumber(ARGV[5])
      for j = 1, #placed, 2 do
        if tonumber(string.match(placed[j], '^(%d+):')) == shard and tonumber(placed[j + 1]) > since then
          load = load + 1
        end
      end
      if best < 0 or load < best_load or (load == best_load and shard < best) then
        best, best_load = shard, load
      end
  end
end
if best < 0 then return {-1, 0, 0} end
local outcome = 0
if best_load >= tonumber(ARGV[2]) then
  if ARGV[7] ~= '1' then return {1, best, highest} end
  outcome = 2
end
redis.call('ZADD', KEYS[1], now, best .. ':' .. ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {outcome, best, highest}
";

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

/// One Redis call, at most [`CALL_TIMEOUT_MS`].
async fn call<T>(
    query: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, NetError> {
    tokio::time::timeout(Duration::from_millis(CALL_TIMEOUT_MS), query)
        .await
        .map_err(|_| {
            NetError::Connection(format!(
                "fleet directory Redis: no answer in {CALL_TIMEOUT_MS} ms"
            ))
        })?
        .map_err(|e| NetError::Connection(format!("fleet directory Redis: {e}")))
}

/// The key of `zone`'s recent placements (a sorted set).
fn placed_key(world: &str, zone: u16) -> String {
    format!("mmo:{world}:shard_placed:{zone}")
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
    /// No shard loads in the directory, or Redis failing: shard 0.
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

/// What one run of the script said.
enum Answer {
    NoLoads,
    Placed(u16),
    /// Every shard is full; the highest running one, and whether it is draining.
    Full {
        highest: u16,
        highest_draining: bool,
    },
    Over(u16),
}

/// What a gateway remembers between placements.
#[derive(Debug, Default)]
struct PlacementState {
    /// The lane count last asked for, and when.
    lane_asked: Option<(u16, Instant)>,
    /// No spare took a requested shard: place over the cap without waiting until then.
    no_spare_until: Option<Instant>,
    /// Redis failed: shard 0 without calling it until then.
    redis_paused_until: Option<Instant>,
    /// When a Redis failure was last logged (at most one line every 10 s).
    warned_at: Option<Instant>,
}

/// A gateway's placement of new connections on the shards of the home zone (module docs).
pub struct ShardPlacement {
    connection: redis::aio::ConnectionManager,
    world: String,
    home_zone: u16,
    zone_count: u16,
    cap: u32,
    /// Held only between awaits, never across a Redis call.
    state: std::sync::Mutex<PlacementState>,
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

impl ShardPlacement {
    /// Placement on the shards of `home_zone` (of `zone_count` zones) of `world`, at most
    /// `cap` sessions a shard, with the directory at `redis_url` (a connection that
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
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PlacementState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The zone instance a new connection starts in (module docs), recorded there.
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
            let (force, paused) = {
                let state = self.state();
                let now = Instant::now();
                (
                    state.no_spare_until.is_some_and(|until| now < until)
                        || started.elapsed() >= Duration::from_millis(WAIT_FOR_SHARD_MS),
                    state.redis_paused_until.is_some_and(|until| now < until),
                )
            };
            if paused {
                return Placed::Unknown;
            }
            let answer = match self.run_script(force).await {
                Ok(answer) => answer,
                Err(e) => {
                    let mut state = self.state();
                    let now = Instant::now();
                    state.redis_paused_until = Some(now + Duration::from_millis(REDIS_PAUSE_MS));
                    if state
                        .warned_at
                        .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(10))
                    {
                        state.warned_at = Some(now);
                        tracing::warn!(error = %e, "shard placement failed: new connections start in shard 0");
                    }
                    return Placed::Unknown;
                }
            };
            match answer {
                Answer::NoLoads => return Placed::Unknown,
                Answer::Placed(shard) if !waiting => return Placed::UnderCap(shard),
                Answer::Placed(shard) => {
                    tracing::info!(
                        zone = self.home_zone,
                        shard,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "connection placed on a new shard"
                    );
                    return Placed::NewShard(shard);
                }
                Answer::Over(shard) => {
                    let mut state = self.state();
                    let now = Instant::now();
                    if state.no_spare_until.is_none_or(|until| now >= until) {
                        state.no_spare_until =
                            Some(now + Duration::from_millis(NO_SPARE_BACKOFF_MS));
                        tracing::warn!(
                            zone = self.home_zone,
                            cap = self.cap,
                            waited_ms = started.elapsed().as_millis() as u64,
                            "every shard is at the cap and no spare zone process took a new one: placing over the cap"
                        );
                    }
                    return Placed::OverCap(shard);
                }
                Answer::Full {
                    highest,
                    highest_draining,
                } => {
                    // A draining highest shard is wanted back (its drain stops); else
                    // one more than the highest.
                    let count = if highest_draining {
                        highest + 1
                    } else {
                        highest + 2
                    };
                    if count > MAX_SHARDS_PER_ZONE {
                        // No shard left to ask for: the next try places over the cap.
                        self.state().no_spare_until =
                            Some(Instant::now() + Duration::from_millis(NO_SPARE_BACKOFF_MS));
                        continue;
                    }
                    let ask = {
                        let mut state = self.state();
                        let now = Instant::now();
                        match state.lane_asked {
                            Some((asked, at))
                                if asked >= count
                                    && now.duration_since(at)
                                        < Duration::from_millis(ASK_AGAIN_MS) =>
                            {
                                false
                            }
                            _ => {
                                state.lane_asked = Some((count, now));
                                true
                            }
                        }
                    };
                    if ask {
                        self.request_shards(count).await;
                    }
                    waiting = true;
                    tokio::time::sleep(Duration::from_millis(WAIT_POLL_MS)).await;
                }
            }
        }
    }

    /// The home zone's entries of the loads hash, as read: (load, unix ms sampled);
    /// malformed ones are left out (`shard_loads::read_loads` logs them).
    async fn home_loads(&self) -> Result<Vec<super::shard_loads::ShardLoad>, NetError> {
        let mut connection = self.connection.clone();
        let all: std::collections::HashMap<String, String> = call(
            redis::cmd("HGETALL")
                .arg(super::shard_loads::loads_key(&self.world))
                .query_async(&mut connection),
        )
        .await?;
        Ok(all
            .iter()
            .filter_map(|(field, value)| super::shard_loads::parse_entry(field, value))
            .filter(|load| load.shard.zone == self.home_zone)
            .collect())
    }

    /// One run of [`PLACE`] (after reading the loads).
    async fn run_script(&self, force: bool) -> Result<Answer, NetError> {
        let loads = self.home_loads().await?;
        if loads.is_empty() {
            return Ok(Answer::NoLoads);
        }
        let mut connection = self.connection.clone();
        let mut place = redis::cmd("EVAL");
        place
            .arg(PLACE)
            .arg(1)
            .arg(placed_key(&self.world, self.home_zone))
            .arg(self.home_zone)
            .arg(self.cap)
            .arg(super::shard_loads::LOAD_FRESH_MS)
            .arg(PLACED_MEMORY_MS)
            .arg(REGISTER_MARGIN_MS)
            .arg(rand::random::<u64>())
            .arg(if force { "1" } else { "0" });
        for load in &loads {
            place
                .arg(load.shard.shard)
                .arg(load.players)
                .arg(load.sampled_unix_ms)
                .arg(u8::from(load.draining));
        }
        let answer: (i64, i64, i64) = call(place.query_async(&mut connection)).await?;
        let shard = |v: i64| u16::try_from(v).unwrap_or(0);
        Ok(match answer {
            (0, best, _) => Answer::Placed(shard(best)),
            (1, _, highest) => Answer::Full {
                highest: shard(highest),
                highest_draining: loads
                    .iter()
                    .any(|l| l.shard.shard == shard(highest) && l.draining),
            },
            (2, best, _) => Answer::Over(shard(best)),
            _ => Answer::NoLoads,
        })
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
        let raised: Result<i64, NetError> = call(raise.query_async(&mut connection)).await;
        match raised {
            Ok(raised) if raised > 0 => tracing::info!(
                zone = self.home_zone,
                shards = count,
                zones_raised = raised,
                cap = self.cap,
                "every shard of the home zone is at the cap: asked for a new lane"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "new lane not requested"),
        }
    }
}
