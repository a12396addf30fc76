//! Placement and the login queue of a fleet, in Redis: which gateway a login is sent to,
//! and, when the world holds its `[fleet] max_players`, a place in a queue instead of a
//! failure.
//!
//! Keys (under `mmo:<world>:`; the gateways' are written by [`crate::gateway_registry`]):
//!
//! | key | holds |
//! |---|---|
//! | `gateways` (hash) | each gateway's open connections, last write and public address |
//! | `gateways:placed` (hash) | logins sent to each gateway since its last write (reset by the write, when its connection count has caught up) |
//! | `queue` (sorted set) | waiting logins: member = SHA-256 (hex) of the ticket, score = its number in arrival order (from `queue:seq`, so ties cannot reorder the queue) |
//! | `queue:seq` | the last number given |
//! | `queue:entered` (hash) | member -> when it entered, unix ms |
//! | `queue:seen` (sorted set) | the same members, score = when the ticket was last shown, unix ms |
//! | `queue:stats` (hash) | `last_admit_ms`, `gap_ms`: when a waiting login was last let in, and the average gap between two such admissions |
//! | `queue:ticket:<SHA-256 hex of the ticket>` | JSON [`QueuedLogin`]: who waits, expiring [`TICKET_TTL_MS`] after the ticket was last shown |
//!
//! **One step** (a Lua script, per login or poll): the players in the world are the fresh
//! gateways' (written within [`crate::gateway_registry::STALE_MS`]) connections plus the
//! logins placed on them since; waiting logins whose ticket was not shown for
//! [`TICKET_TTL_MS`] leave; the login enters the queue if it is not in it; it is let in when
//! its rank (0 first) is below the free places (`max_players` minus the players; without
//! `max_players` always) and then placed on the fresh gateway with the fewest connections
//! plus placements (ties: the lowest id), whose placement count goes up by one. So a login
//! arriving while others wait queues behind them, a login arriving at a world with room and
//! nobody waiting is let in at once, and a burst of logins within one refresh spreads over
//! the gateways. A client that takes longer than a refresh (1 s) to connect after its login
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

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::gateway_registry::unix_now_ms;

/// A waiting login whose ticket was not shown for this long leaves the queue, ms.
pub const TICKET_TTL_MS: u64 = 30_000;
/// A waiting player polls again after this long, seconds.
pub const POLL_AFTER_S: u64 = 5;
/// Random bytes in a ticket.
pub const TICKET_BYTES: usize = 32;
/// Longest wait for one Redis call, ms.
const REDIS_CALL_MS: u64 = 500;

/// One placement step (see the module docs). Returns strings: `{outcome, position,
/// queue length, oldest wait ms, average gap ms or -1, gateway address}` where outcome is
/// `1` let in (position 0, the gateway's address last), `0` queued, `2` let in but no
/// gateway is fresh (the caller's own gateway takes it).
const PLACE: &str = r"
local now = tonumber(ARGV[1])
local member = ARGV[2]
local capacity = tonumber(ARGV[3])
local fresh_ms = tonumber(ARGV[4])
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
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]))
for _, m in ipairs(gone) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
  redis.call('HDEL', KEYS[7], m)
end
if not redis.call('ZSCORE', KEYS[1], member) then
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[6]), member)
  redis.call('HSET', KEYS[7], member, tostring(now))
end
local entered = tonumber(redis.call('HGET', KEYS[7], member) or tostring(now))
redis.call('ZADD', KEYS[2], now, member)
local rank = redis.call('ZRANK', KEYS[1], member)
local outcome = 0
local address = ''
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
  if best_id then
    redis.call('HINCRBY', KEYS[5], best_id, 1)
    outcome = 1
    address = best_addr
  else
    outcome = 2
  end
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)
local oldest_wait = 0
if oldest[1] then
  oldest_wait = now - tonumber(redis.call('HGET', KEYS[7], oldest[1]) or tostring(now))
end
local gap = redis.call('HGET', KEYS[3], 'gap_ms') or '-1'
local position = 0
if outcome == 0 then
  position = rank + 1
end
return {tostring(outcome), tostring(position), tostring(redis.call('ZCARD', KEYS[1])),
  tostring(oldest_wait), gap, address}
";

/// Gauge: logins waiting in the world's queue, as this gateway last saw it.
pub const QUEUE_LENGTH: &str = "mmo_login_queue_length";
/// Gauge, seconds: how long the login first in line had waited, as this gateway last saw
/// it (the scaling signal: the seed adds capacity past 30 s).
pub const QUEUE_OLDEST_WAIT_SECONDS: &str = "mmo_login_queue_oldest_wait_seconds";

/// Publishes what one admission step saw.
#[allow(clippy::cast_precision_loss)] // Gauges; far below 2^52.
fn record_queue(queue_length: u64, oldest_wait_ms: u64) {
    metrics::gauge!(QUEUE_LENGTH).set(queue_length as f64);
    metrics::gauge!(QUEUE_OLDEST_WAIT_SECONDS).set(oldest_wait_ms as f64 / 1000.0);
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
    redis: redis::aio::MultiplexedConnection,
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
    tokio::time::timeout(Duration::from_millis(REDIS_CALL_MS), call)
        .await
        .map_err(|_| format!("login queue Redis: no answer in {REDIS_CALL_MS} ms"))?
        .map_err(|e| format!("login queue Redis: {e}"))
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
        let client =
            redis::Client::open(redis_url).map_err(|e| format!("login queue Redis: {e}"))?;
        let redis = within(client.get_multiplexed_async_connection()).await?;
        Ok(LoginQueue {
            redis,
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

    /// One placement step for the member `hash`.
    async fn step(&self, hash: &str) -> Result<Admission, String> {
        let mut redis = self.redis.clone();
        let mut command = redis::cmd("EVAL");
        command
            .arg(PLACE)
            .arg(7)
            .arg(self.key("queue"))
            .arg(self.key("queue:seen"))
            .arg(self.key("queue:stats"))
            .arg(self.key("gateways"))
            .arg(self.key("gateways:placed"))
            .arg(self.key("queue:seq"))
            .arg(self.key("queue:entered"))
            .arg(unix_now_ms())
            .arg(hash)
            .arg(
                self.max_players
                    .map_or(-1, |m| i64::try_from(m).unwrap_or(i64::MAX)),
            )
            .arg(crate::gateway_registry::STALE_MS)
            .arg(TICKET_TTL_MS);
        let answer: Vec<String> = within(command.query_async(&mut redis)).await?;
        let number = |i: usize| -> i64 { answer.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
        let queue_length = u64::try_from(number(2)).unwrap_or(0);
        record_queue(queue_length, u64::try_from(number(3)).unwrap_or(0));
        match number(0) {
            1 => Ok(Admission::LetIn(answer.get(5).cloned())),
            2 => Ok(Admission::LetIn(None)),
            _ => {
                let position = u64::try_from(number(1)).unwrap_or(0);
                Ok(Admission::Queued(Waiting {
                    ticket: String::new(),
                    position,
                    queue_length,
                    estimated_wait_s: u64::try_from(number(4))
                        .ok()
                        .map(|gap_ms| position.saturating_mul(gap_ms) / 1000),
                    oldest_wait_ms: u64::try_from(number(3)).unwrap_or(0),
                }))
            }
        }
    }

    /// A new login of `who`: let in (and placed), or queued with a fresh ticket.
    ///
    /// # Errors
    /// Redis unreachable or too slow.
    pub async fn enter(&self, who: &QueuedLogin) -> Result<Admission, String> {
        let ticket = URL_SAFE_NO_PAD.encode(rand::random::<[u8; TICKET_BYTES]>());
        let hash = ticket_hash(&ticket);
        let admission = self.step(&hash).await?;
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

    /// A poll with `ticket`: who waits and whether it is let in now; `None` for a ticket
    /// that is unknown or expired.
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
        match self.step(&hash).await? {
            Admission::Queued(mut waiting) => {
                within(
                    redis::cmd("PEXPIRE")
                        .arg(&key)
                        .arg(TICKET_TTL_MS)
                        .query_async::<()>(&mut redis),
                )
                .await?;
                waiting.ticket = ticket.to_owned();
                Ok(Some((who, Admission::Queued(waiting))))
            }
            let_in => {
                within(redis::cmd("DEL").arg(&key).query_async::<()>(&mut redis)).await?;
                Ok(Some((who, let_in)))
            }
        }
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
            None,
            "a ticket is spent once"
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
