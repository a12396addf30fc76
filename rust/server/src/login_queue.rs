//! Placement and the login queue of a fleet, in Redis: which gateway a login is sent to,
//! and, when the world holds its `[fleet] max_players`, a place in a queue instead of a
//! failure.
//!
//! Keys (under `mmo:<world>:`; the gateways' are written by [`crate::gateway_registry`]):
//!
//! | key | holds |
//! |---|---|
//! | `gateways` (hash) | each gateway's open connections, last write and public address |
//! | `gateways:placed` (hash) | logins sent to each gateway since its last write (reset by its next write, whose connection count includes those that connected by then) |
//! | `queue` (sorted set) | waiting logins: member = SHA-256 (hex) of the ticket, score = its number in arrival order (from `queue:seq`, so ties cannot reorder the queue) |
//! | `queue:seq` | the last number given |
//! | `queue:entered` (hash) | member -> when it entered, unix ms |
//! | `queue:seen` (sorted set) | the same members, score = when the ticket was last shown, unix ms |
//! | `queue:stats` (hash) | `last_admit_ms`, `gap_ms`: when a waiting login was last let in, and the average gap between two such admissions |
//! | `queue:ticket:<SHA-256 hex of the ticket>` | JSON [`QueuedLogin`]: who waits, expiring [`TICKET_TTL_MS`] after the ticket was last shown |
//! | `queue:admitted:<SHA-256 hex of the ticket>` | the gateway a polled ticket was let in to, for [`TICKET_TTL_MS`]: a repeated poll gets the same answer |
//!
//! **One step** (a Lua script, per login or poll, timed by Redis's clock, `TIME`, so the
//! gateways' clocks need not agree): the players in the world are the fresh
//! gateways' (written within [`crate::gateway_registry::STALE_MS`]) connections plus the
//! logins placed on them since; waiting logins whose ticket was not shown for
//! [`TICKET_TTL_MS`] leave; the login enters the queue if it is not in it; it is let in when
//! its rank (0 first) is below the free places (`max_players` minus the players; without
//! `max_players` always) and then placed on the fresh gateway with the fewest connections
//! plus placements (ties: the lowest id), whose placement count goes up by one. So a login
//! arriving while others wait queues behind them, a login arriving at a world with room and
//! nobody waiting is let in at once, and a burst of logins within one refresh spreads over
//! the gateways. An account whose presence key exists (it plays, or its session is still
//! being closed: a reconnection) is let in without waiting. Only a new login enters the
//! queue: a poll whose login left it (its ticket was not shown in time) is told so, and a
//! poll repeated after its login was let in gets the same gateway again. A client that takes longer than a refresh (1 s) to connect after its login
//! is counted by neither (the world can briefly hold a few more than `max_players`; each
//! gateway's connection cap still bounds its process).
//!
//! **Estimated wait**: the position times the average gap between the last admissions of
//! logins that waited (an exponential average, weight 0.2 for the newest gap); unknown
//! (`None`) until two such admissions happened. It is an estimate: a burst of logouts
//! shortens it, a full world where nobody leaves makes it grow with every poll that finds
//! no room.
//!
//! **Tickets** are 32 random bytes (base64url, no padding), shown only to the player who
//! waits, who presents it to `POST /v1/login/queue` at least every [`TICKET_TTL_MS`]
//! (the answer says to come back after [`POLL_AFTER_S`]); Redis holds only its SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A waiting login whose ticket was not shown for this long leaves the queue, ms.
pub const TICKET_TTL_MS: u64 = 30_000;
/// A waiting player polls again after this long, seconds.
pub const POLL_AFTER_S: u64 = 5;
/// Random bytes in a ticket.
pub const TICKET_BYTES: usize = 32;
/// Longest wait for one Redis call, ms.
const REDIS_CALL_MS: u64 = 500;

/// One placement step (see the module docs). Keys: queue, seen, stats, gateways, placed,
/// seq, entered, the ticket's admission marker. Arguments: member, capacity (-1: none),
/// freshness ms, ticket lifetime ms, `enter` or `poll`, `1` when the account is in the
/// world (its presence key exists: read before the step, since a gateway may only read
/// presence keys and a script's keys count as written).
/// Returns strings: `{outcome, position, queue length, oldest wait ms, average gap ms or
/// -1, gateway address, players}`; outcome `1` let in (position 0, the gateway's address),
/// `0` queued, `2` let in with no gateway fresh (the caller's own takes it), `3` a poll of
/// a member not in the queue (it left: its ticket was not shown in time).
const PLACE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local capacity = tonumber(ARGV[2])
local fresh_ms = tonumber(ARGV[3])
local players = 0
local best_id, best_addr, best_load = nil, nil, nil
local entries = redis.call('HGETALL', KEYS[4])
for i = 1, #entries, 2 do
  local id, value = entries[i], entries[i + 1]
  local connections, updated, addr = string.match(value, '^(%d+)|(%d+)|(.+)$')
  if connections and now - tonumber(updated) <= fresh_ms then
    local load = tonumber(connections) + tonumber(redis.call('HGET', KEYS[5], id) or '0')
    players = players + load
    if best_load == nil or load < best_load or (load == best_load and id < best_id) then
      best_id, best_addr, best_load = id, addr, load
    end
  end
end
local function oldest_wait()
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)
  if oldest[1] then
    return now - tonumber(redis.call('HGET', KEYS[7], oldest[1]) or tostring(now))
  end
  return 0
end
-- A poll repeated after its login was let in gets the same answer.
local admitted = redis.call('GET', KEYS[8])
if admitted then
  local outcome = '1'
  if admitted == '' then
    outcome = '2'
  end
  return {outcome, '0', tostring(redis.call('ZCARD', KEYS[1])), tostring(oldest_wait()), '-1',
    admitted, tostring(players)}
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
for _, m in ipairs(gone) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
  redis.call('HDEL', KEYS[7], m)
end
if not redis.call('ZSCORE', KEYS[1], member) then
  if ARGV[5] ~= 'enter' then
    return {'3', '0', tostring(redis.call('ZCARD', KEYS[1])), tostring(oldest_wait()), '-1', '',
      tostring(players)}
  end
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[6]), member)
  redis.call('HSET', KEYS[7], member, tostring(now))
end
local entered = tonumber(redis.call('HGET', KEYS[7], member) or tostring(now))
redis.call('ZADD', KEYS[2], now, member)
local rank = redis.call('ZRANK', KEYS[1], member)
-- A player whose account is in the world already (reconnecting) does not wait.
if ARGV[6] == '1' then
  capacity = -1
end
if capacity < 0 or rank < capacity - players then
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('HDEL', KEYS[7], member)
  if now > entered then
    local last = tonumber(redis.call('HGET', KEYS[3], 'last_admit_ms') or '0')
    if last > 0 and now >= last then
      local gap = now - last
      local average = tonumber(redis.call('HGET', KEYS[3], 'gap_ms') or tostring(gap))
      redis.call('HSET', KEYS[3], 'gap_ms', tostring(math.floor(average * 0.8 + gap * 0.2)))
    end
    redis.call('HSET', KEYS[3], 'last_admit_ms', tostring(now))
  end
  local left = redis.call('ZCARD', KEYS[1])
  if left == 0 then
    -- The next queue starts its estimate afresh.
    redis.call('DEL', KEYS[3])
  end
  local outcome, address = '2', ''
  if best_id then
    redis.call('HINCRBY', KEYS[5], best_id, 1)
    outcome, address = '1', best_addr
  end
  if ARGV[5] ~= 'enter' then
    redis.call('SET', KEYS[8], address, 'PX', ARGV[4])
  end
  return {outcome, '0', tostring(left), tostring(oldest_wait()), '-1', address, tostring(players)}
end
local gap = redis.call('HGET', KEYS[3], 'gap_ms') or '-1'
return {'0', tostring(rank + 1), tostring(redis.call('ZCARD', KEYS[1])), tostring(oldest_wait()),
  gap, '', tostring(players)}
";

/// Gauge: logins waiting in the world's queue, as this gateway last saw it.
pub const QUEUE_LENGTH: &str = "mmo_login_queue_length";
/// Gauge, seconds: how long the login first in line had waited, as this gateway last saw
/// it (the scaling signal: the seed adds capacity past 30 s).
pub const QUEUE_OLDEST_WAIT_SECONDS: &str = "mmo_login_queue_oldest_wait_seconds";

/// Gauge: players in the world as the gateways' registry counted them at the last step.
pub const FLEET_PLAYERS: &str = "mmo_fleet_players";

/// Publishes what one placement step saw.
#[allow(clippy::cast_precision_loss)] // Gauges; far below 2^52.
fn record_queue(queue_length: u64, oldest_wait_ms: u64, players: u64) {
    metrics::gauge!(QUEUE_LENGTH).set(queue_length as f64);
    metrics::gauge!(QUEUE_OLDEST_WAIT_SECONDS).set(oldest_wait_ms as f64 / 1000.0);
    metrics::gauge!(FLEET_PLAYERS).set(players as f64);
}

/// Who waits behind a ticket: what the token is issued for once let in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedLogin {
    /// The account.
    pub account: String,
    /// The character the token binds (`POST /v1/characters/{id}/session`), or `None`
    /// for the account's default character.
    pub character_id: Option<u64>,
}

/// A login's place in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// The ticket to poll with (only in the answer to the login that entered the queue
    /// and in later answers to it).
    pub ticket: String,
    /// 1 for the next login to be let in.
    pub position: u64,
    /// Logins waiting, this one included.
    pub queue_length: u64,
    /// Estimated seconds until it is let in (`None`: no estimate yet; see the module docs).
    pub estimated_wait_s: Option<u64>,
    /// How long the login first in line has waited, ms (the scaling signal).
    pub oldest_wait_ms: u64,
}

/// The outcome of a login or a poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Let in: issue the token now, for this gateway (its public QUIC address; `None`: no
    /// gateway is fresh in the registry, the one that answers takes it).
    LetIn(Option<String>),
    /// Waiting.
    Queued(Waiting),
}

/// Placement and the queue of one world (see the module docs).
#[derive(Clone)]
pub struct LoginQueue {
    /// Reconnects by itself after Redis restarts or the network fails.
    redis: redis::aio::ConnectionManager,
    place_script: redis::Script,
    world: String,
    /// `None`: nobody ever waits (placement only).
    max_players: Option<u64>,
}

impl std::fmt::Debug for LoginQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginQueue")
            .field("world", &self.world)
            .field("max_players", &self.max_players)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a ticket, lowercase hex.
fn ticket_hash(ticket: &str) -> String {
    Sha256::digest(ticket.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs a Redis call within [`REDIS_CALL_MS`].
async fn within<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    crate::gateway_registry::within_as("login queue Redis", REDIS_CALL_MS, call).await
}

/// Whether a step is a new login (which may enter the queue) or a poll (which may not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepKind {
    Enter,
    Poll,
}

impl LoginQueue {
    /// Placement and the queue of `world` at `redis_url`, for a world of `max_players`
    /// (`None`: no queue).
    ///
    /// # Errors
    /// A bad URL or Redis unreachable.
    pub async fn connect(
        redis_url: &str,
        world: &str,
        max_players: Option<u32>,
    ) -> Result<LoginQueue, String> {
        Ok(LoginQueue {
            redis: crate::gateway_registry::connection_manager(redis_url).await?,
            place_script: redis::Script::new(PLACE),
            world: world.to_owned(),
            max_players: max_players.map(u64::from),
        })
    }

    fn key(&self, name: &str) -> String {
        format!("mmo:{}:{name}", self.world)
    }

    fn ticket_key(&self, hash: &str) -> String {
        self.key(&format!("queue:ticket:{hash}"))
    }

    /// One placement step for the member `hash` of `account`: `None` for a poll whose
    /// member left the queue.
    async fn step(
        &self,
        hash: &str,
        account: &str,
        kind: StepKind,
    ) -> Result<Option<Admission>, String> {
        let mut redis = self.redis.clone();
        let in_world: bool = within(
            redis::cmd("EXISTS")
                .arg(mmo_net::relay::account_presence_key(&self.world, account))
                .query_async(&mut redis),
        )
        .await?;
        let mut invocation = self.place_script.prepare_invoke();
        invocation
            .key(self.key("queue"))
            .key(self.key("queue:seen"))
            .key(self.key("queue:stats"))
            .key(self.key("gateways"))
            .key(self.key("gateways:placed"))
            .key(self.key("queue:seq"))
            .key(self.key("queue:entered"))
            .key(self.key(&format!("queue:admitted:{hash}")))
            .arg(hash)
            .arg(
                self.max_players
                    .map_or(-1, |m| i64::try_from(m).unwrap_or(i64::MAX)),
            )
            .arg(crate::gateway_registry::STALE_MS)
            .arg(TICKET_TTL_MS)
            .arg(match kind {
                StepKind::Enter => "enter",
                StepKind::Poll => "poll",
            })
            .arg(if in_world { "1" } else { "0" });
        let answer: Vec<String> = within(invocation.invoke_async(&mut redis)).await?;
        let number = |i: usize| -> i64 { answer.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
        let queue_length = u64::try_from(number(2)).unwrap_or(0);
        let oldest_wait_ms = u64::try_from(number(3)).unwrap_or(0);
        record_queue(
            queue_length,
            oldest_wait_ms,
            u64::try_from(number(6)).unwrap_or(0),
        );
        Ok(match number(0) {
            1 => Some(Admission::LetIn(answer.get(5).cloned())),
            2 => Some(Admission::LetIn(None)),
            3 => None,
            _ => {
                let position = u64::try_from(number(1)).unwrap_or(0);
                Some(Admission::Queued(Waiting {
                    ticket: String::new(),
                    position,
                    queue_length,
                    estimated_wait_s: u64::try_from(number(4))
                        .ok()
                        .map(|gap_ms| position.saturating_mul(gap_ms) / 1000),
                    oldest_wait_ms,
                }))
            }
        })
    }

    /// A new login of `who`: let in (and placed), or queued with a fresh ticket.
    ///
    /// # Errors
    /// Redis unreachable or too slow.
    pub async fn enter(&self, who: &QueuedLogin) -> Result<Admission, String> {
        let ticket = URL_SAFE_NO_PAD.encode(rand::random::<[u8; TICKET_BYTES]>());
        let hash = ticket_hash(&ticket);
        let admission = self
            .step(&hash, &who.account, StepKind::Enter)
            .await?
            .ok_or_else(|| "login queue: a new login was not placed".to_owned())?;
        let Admission::Queued(mut waiting) = admission else {
            return Ok(admission);
        };
        let mut redis = self.redis.clone();
        let record = serde_json::to_string(who).map_err(|e| format!("login queue ticket: {e}"))?;
        within(
            redis::cmd("SET")
                .arg(self.ticket_key(&hash))
                .arg(record)
                .arg("PX")
                .arg(TICKET_TTL_MS)
                .query_async::<()>(&mut redis),
        )
        .await?;
        waiting.ticket = ticket;
        Ok(Admission::Queued(waiting))
    }

    /// A poll with `ticket`: who waits and whether it is let in now (a poll repeated after
    /// it was let in is answered the same); `None` for a ticket that is unknown, expired or
    /// whose login left the queue.
    ///
    /// # Errors
    /// Redis unreachable or too slow.
    pub async fn poll(&self, ticket: &str) -> Result<Option<(QueuedLogin, Admission)>, String> {
        let hash = ticket_hash(ticket);
        let key = self.ticket_key(&hash);
        let mut redis = self.redis.clone();
        let record: Option<String> =
            within(redis::cmd("GET").arg(&key).query_async(&mut redis)).await?;
        let Some(record) = record else {
            return Ok(None);
        };
        let Ok(who) = serde_json::from_str::<QueuedLogin>(&record) else {
            return Ok(None);
        };
        let Some(admission) = self.step(&hash, &who.account, StepKind::Poll).await? else {
            return Ok(None);
        };
        // Shown: the ticket lives on (after admission too, for repeated polls).
        within(
            redis::cmd("PEXPIRE")
                .arg(&key)
                .arg(TICKET_TTL_MS)
                .query_async::<()>(&mut redis),
        )
        .await?;
        Ok(Some((
            who,
            match admission {
                Admission::Queued(mut waiting) => {
                    waiting.ticket = ticket.to_owned();
                    Admission::Queued(waiting)
                }
                let_in => let_in,
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway_registry::GatewayRegistry;

    /// The Redis of `ci/services.sh`, or `None` (skipped) unless `MMO_REQUIRE_SERVICES=1`.
    fn redis_url() -> Option<String> {
        match std::env::var("MMO_TEST_REDIS_URL") {
            Ok(url) => Some(url),
            Err(_) => {
                assert_ne!(
                    std::env::var("MMO_REQUIRE_SERVICES").as_deref(),
                    Ok("1"),
                    "MMO_TEST_REDIS_URL not set but MMO_REQUIRE_SERVICES=1"
                );
                None
            }
        }
    }

    fn world(tag: &str) -> String {
        format!("{tag}-{:016x}", rand::random::<u64>())
    }

    fn who(account: &str) -> QueuedLogin {
        QueuedLogin {
            account: account.to_owned(),
            character_id: None,
        }
    }

    fn queued(admission: Admission) -> Waiting {
        match admission {
            Admission::Queued(waiting) => waiting,
            Admission::LetIn(at) => panic!("let in (to {at:?}) instead of queued"),
        }
    }

    #[tokio::test]
    async fn logins_spread_over_the_gateways_by_connections_plus_placements() {
        let Some(url) = redis_url() else { return };
        let world = world("placement");
        let quiet = GatewayRegistry::connect(&url, &world, 1).await.unwrap();
        let busy = GatewayRegistry::connect(&url, &world, 2).await.unwrap();
        quiet
            .refresh("10.0.0.1:7777".parse().unwrap(), 3)
            .await
            .unwrap();
        busy.refresh("10.0.0.2:7777".parse().unwrap(), 5)
            .await
            .unwrap();
        let queue = LoginQueue::connect(&url, &world, None).await.unwrap();
        let mut sent = Vec::new();
        for i in 0..4 {
            match queue.enter(&who(&format!("p{i}"))).await.unwrap() {
                Admission::LetIn(Some(at)) => sent.push(at),
                other => panic!("without max_players everyone is let in: {other:?}"),
            }
        }
        // 3 + 2 placed ties 5 (the lowest id wins), then 3 + 3 > 5.
        assert_eq!(
            sent,
            [
                "10.0.0.1:7777",
                "10.0.0.1:7777",
                "10.0.0.1:7777",
                "10.0.0.2:7777"
            ]
        );
        // A refresh says the placed logins arrived: the counts start again from it.
        quiet
            .refresh("10.0.0.1:7777".parse().unwrap(), 9)
            .await
            .unwrap();
        assert_eq!(
            queue.enter(&who("p4")).await.unwrap(),
            Admission::LetIn(Some("10.0.0.2:7777".to_owned()))
        );
    }

    #[tokio::test]
    async fn waiting_logins_are_let_in_in_order_as_places_free_up() {
        let Some(url) = redis_url() else { return };
        let world = world("queue");
        let gateway = GatewayRegistry::connect(&url, &world, 7).await.unwrap();
        let at: std::net::SocketAddr = "10.0.0.7:7777".parse().unwrap();
        gateway.refresh(at, 1).await.unwrap();
        let queue = LoginQueue::connect(&url, &world, Some(1)).await.unwrap();
        let a = queued(queue.enter(&who("a")).await.unwrap());
        let b = queued(queue.enter(&who("b")).await.unwrap());
        let c = queued(queue.enter(&who("c")).await.unwrap());
        assert_eq!((a.position, b.position, c.position), (1, 2, 3));
        assert_eq!(c.queue_length, 3);
        assert_eq!(a.estimated_wait_s, None, "nobody was let in yet");
        assert_ne!(a.ticket, b.ticket);
        assert_eq!(queue.poll("no such ticket").await.unwrap(), None);

        // A place frees up: B asks first but A is ahead.
        gateway.refresh(at, 0).await.unwrap();
        let (who_b, still) = queue.poll(&b.ticket).await.unwrap().unwrap();
        assert_eq!(who_b, who("b"));
        assert_eq!(queued(still).position, 2);
        let (who_a, admitted) = queue.poll(&a.ticket).await.unwrap().unwrap();
        assert_eq!(who_a, who("a"));
        assert_eq!(admitted, Admission::LetIn(Some(at.to_string())));
        assert_eq!(
            queue.poll(&a.ticket).await.unwrap(),
            Some((who("a"), Admission::LetIn(Some(at.to_string())))),
            "a repeated poll (the answer was lost) gets the same answer, not a new place"
        );
        // A's placement fills the place until the gateway's next refresh.
        let (_, still) = queue.poll(&b.ticket).await.unwrap().unwrap();
        assert_eq!(queued(still).position, 1);

        // A left again before connecting: B is let in; then C has an estimate.
        gateway.refresh(at, 0).await.unwrap();
        let (_, admitted) = queue.poll(&b.ticket).await.unwrap().unwrap();
        assert!(matches!(admitted, Admission::LetIn(Some(_))));
        let (_, waiting) = queue.poll(&c.ticket).await.unwrap().unwrap();
        let waiting = queued(waiting);
        assert_eq!((waiting.position, waiting.queue_length), (1, 1));
        assert!(
            waiting.estimated_wait_s.is_some(),
            "two admissions of waiting logins give a rate"
        );
        assert!(waiting.oldest_wait_ms < 60_000);

        // An account already in the world (its presence key is set: it reconnects) does
        // not wait, even in a full world.
        let mut redis = crate::gateway_registry::connection_manager(&url)
            .await
            .unwrap();
        let () = redis::cmd("SET")
            .arg(mmo_net::relay::account_presence_key(&world, "d"))
            .arg("00000000000000aa:1")
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(matches!(
            queue.enter(&who("d")).await.unwrap(),
            Admission::LetIn(Some(_))
        ));
        assert!(matches!(
            queue.enter(&who("e")).await.unwrap(),
            Admission::Queued(_)
        ));
    }

    #[test]
    fn a_ticket_is_stored_only_as_its_hash() {
        let hash = ticket_hash("abc");
        assert_eq!(
            hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(ticket_hash("abd"), hash);
    }
}
