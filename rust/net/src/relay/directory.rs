//! The fleet's directory in Redis: which zone process owns which zone, as leases with
//! fencing tokens.
//!
//! Keys (under `mmo:<world>:`):
//!
//! | key | value |
//! |---|---|
//! | `zone:<zone id>:owner` | shard 0 of the zone: `<zone process id, 16 hex digits>:<fencing token>`, expiring after [`LEASE_MS`] unless renewed |
//! | `zone:<zone id>:shard:<k>:owner` | the same for the zone's shard `k` (1 to 15; `crate::shard`) |
//! | `zone:<zone id>:fence` | the zone's fencing counter: every lease taken on any of its shards increments it, so tokens are unique among a zone's shards (they also number the shards' entity-id runs) |
//! | `shards_wanted` | hash: field `<zone id>` = how many shards the gateways asked that zone to have (`shard_loads`); spares take the missing ones |
//! | `transfer:<transfer id, 16 hex digits>` | a handoff's decision, `taken <process>` or `aborted`, for 60 s (`transfer`) |
//! | `epoch_unix_us` | the world's tick 0, µs since the Unix epoch: set once by the first zone process ([`world_epoch_unix_us`]), so every process numbers ticks alike |
//!
//! Leases are per zone instance (a zone's shard, `crate::shard`). A zone process takes the
//! lease of every instance it runs before it serves anyone ([`ZoneLeases::acquire`]:
//! refused, naming the owner, while another process holds one; [`take_free_zone`]: the
//! first zone nobody holds, else a shard the gateways asked for that nobody holds, waiting
//! as a spare until there is one),
//! renews them every [`RENEW_EVERY_MS`] (over a connection that reconnects by itself, each
//! call limited to 500 ms), and gives them back when it stops. Taking and
//! renewing are Lua scripts, so each is one atomic step in Redis. A renewal that finds
//! another value under the key, or that has not succeeded for [`LEASE_MS`] (Redis
//! unreachable: the lease may have expired and been taken), means ownership is lost: the
//! process must stop acting as the owner ([`ZoneLeases::lost`] resolves).
//!
//! The fencing token grows with every lease of a zone, so a consumer can refuse a process
//! acting on an older lease: a zone process taking a player handed over from zone `z`
//! checks that the sender's `<process>:<token>` is what `zone:<z>:owner` holds now, in the
//! same atomic step as it records the handoff's decision ([`Fencing::claim_transfer`],
//! key `transfer:<id>`). Not done yet: gateways do not check it (they route by subjects,
//! which only the zone's current owner subscribes to after a clean handover) and saves do
//! not carry it.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::NetError;
use crate::shard::{MAX_SHARDS_PER_ZONE, ZoneShard};

mod transfer;
pub use transfer::{DECISION_MEMORY_MS, TransferDecision};

/// How long a lease lasts without renewal, ms.
pub const LEASE_MS: u64 = 5_000;
/// How often a lease is renewed, ms.
pub const RENEW_EVERY_MS: u64 = 1_000;

/// Takes the owner key when free: `{1, token}`; else `{0, current value, its ttl in ms}`.
const ACQUIRE: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  return {0, current, redis.call('PTTL', KEYS[1])}
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return {1, tostring(token), 0}
";

/// Extends the lease when the key still holds our value: 1, else 0.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Deletes the key when it still holds our value.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// One lease held: the zone instance, its key and the value it holds.
#[derive(Clone, Debug)]
struct Lease {
    /// The zone instance (`crate::shard`).
    zone: u16,
    key: String,
    value: String,
    token: u64,
}

/// Fencing checks against the directory (see the module docs); cheap to clone.
#[derive(Clone)]
pub struct Fencing {
    connection: redis::aio::ConnectionManager,
    world: String,
    zone_count: u16,
    tokens: Vec<(u16, u64)>,
}

impl std::fmt::Debug for Fencing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fencing")
            .field("world", &self.world)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl Fencing {
    /// This process's fencing token for zone instance `zone` (`None`: not taken here).
    #[must_use]
    pub fn token(&self, zone: u16) -> Option<u64> {
        self.tokens
            .iter()
            .find(|(z, _)| *z == zone)
            .map(|(_, t)| *t)
    }
}

/// The leases of one zone process; see the module docs.
#[derive(Debug)]
pub struct ZoneLeases {
    connection: redis::aio::ConnectionManager,
    world: String,
    zone_count: u16,
    leases: Vec<Lease>,
    renewer: tokio::task::JoinHandle<()>,
    lost: watch::Receiver<Option<String>>,
}

impl ZoneLeases {
    /// Takes the lease of each of the zone instances `zones` of `world` (a world of
    /// `zone_count` zones) for `process` at `redis_url`.
    ///
    /// # Errors
    /// Redis unreachable; or a zone already owned: [`NetError::Config`] naming the zone,
    /// the owner and when its lease expires (the leases taken before it are given back).
    pub async fn acquire(
        redis_url: &str,
        world: &str,
        process: u64,
        zone_count: u16,
        zones: impl IntoIterator<Item = u16>,
    ) -> Result<ZoneLeases, NetError> {
        Self::try_acquire_on(connect(redis_url).await?, world, process, zone_count, zones)
            .await?
            .map_err(NetError::Config)
    }

    /// [`ZoneLeases::acquire`] over an open connection, telling a zone owned by another
    /// process (`Ok(Err(why))`) from Redis being unreachable (`Err`).
    async fn try_acquire_on(
        mut connection: redis::aio::ConnectionManager,
        world: &str,
        process: u64,
        zone_count: u16,
        zones: impl IntoIterator<Item = u16>,
    ) -> Result<Result<ZoneLeases, String>, NetError> {
        let mut leases = Vec::new();
        for zone in zones {
            let shard = ZoneShard::of_instance(zone, zone_count);
            let key = owner_key(world, shard);
            let fence = format!("mmo:{world}:zone:{}:fence", shard.zone);
            let answer: (i64, String, i64) = redis::cmd("EVAL")
                .arg(ACQUIRE)
                .arg(2)
                .arg(&key)
                .arg(&fence)
                .arg(format!("{process:016x}"))
                .arg(LEASE_MS)
                .query_async(&mut connection)
                .await
                .map_err(|e| NetError::Connection(format!("fleet directory Redis: {e}")))?;
            match answer {
                (1, token, _) => {
                    let token: u64 = token.parse().map_err(|_| {
                        NetError::Connection(format!("fleet directory: bad token {token:?}"))
                    })?;
                    leases.push(Lease {
                        zone,
                        value: format!("{process:016x}:{token}"),
                        key,
                        token,
                    });
                }
                (_, owner, ttl_ms) => {
                    release_all(&mut connection, &leases).await;
                    return Ok(Err(format!(
                        "zone {} of world `{world}` is owned by zone process {owner} (its lease \
                         expires in {ttl_ms} ms unless renewed): one zone process per zone",
                        shard.label()
                    )));
                }
            }
        }
        let (lost_tx, lost) = watch::channel(None);
        let renewer = tokio::spawn(renew(connection.clone(), leases.clone(), lost_tx));
        Ok(Ok(ZoneLeases {
            connection,
            world: world.to_owned(),
            zone_count,
            leases,
            renewer,
            lost,
        }))
    }

    /// What the relay needs to check fencing tokens: a Redis connection, the world, this
    /// process's tokens.
    #[must_use]
    pub fn fencing(&self) -> Fencing {
        Fencing {
            connection: self.connection.clone(),
            world: self.world.clone(),
            zone_count: self.zone_count,
            tokens: self.leases.iter().map(|l| (l.zone, l.token)).collect(),
        }
    }

    /// The fencing token of zone instance `zone`'s lease, if this process holds it.
    #[must_use]
    pub fn token(&self, zone: u16) -> Option<u64> {
        self.leases.iter().find(|l| l.zone == zone).map(|l| l.token)
    }

    /// Resolves with the reason once a lease is lost (never, while they are all held).
    pub async fn lost(&self) -> String {
        let mut lost = self.lost.clone();
        loop {
            if let Some(reason) = lost.borrow_and_update().clone() {
                return reason;
            }
            if lost.changed().await.is_err() {
                // The renewer ended without a loss (released): never resolves.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stops renewing and gives every lease back (a lease lost meanwhile is left alone).
    pub async fn release(mut self) {
        self.renewer.abort();
        release_all(&mut self.connection, &self.leases).await;
    }
}

impl Drop for ZoneLeases {
    fn drop(&mut self) {
        // Dropped without `release`: the leases expire after `LEASE_MS`.
        self.renewer.abort();
    }
}

/// How often a spare zone process looks for a zone without a process, ms.
pub const SPARE_POLL_MS: u64 = 500;

/// Takes the lease of the first of `zones` (in order) that no process holds, for
/// `process`; else of the first shard the gateways asked for (`shards_wanted`: lowest
/// shard first, and within a shard the home zone `home` first, then the zones in order)
/// that no process holds. While there is none, waits as a spare,
/// trying again every [`SPARE_POLL_MS`] (a zone whose process died is free once its lease
/// expires, at most [`LEASE_MS`] after the last renewal). Never gives up; Redis errors are
/// logged and retried. Returns the zone instance taken (`crate::shard`).
///
/// # Errors
/// A bad Redis URL.
pub async fn take_free_zone(
    redis_url: &str,
    world: &str,
    process: u64,
    zones: &[u16],
    home: u16,
) -> Result<(u16, ZoneLeases), NetError> {
    // Below 2^16 zones by the layout's own limits.
    let zone_count = zones.len() as u16;
    let mut told_spare = false;
    let mut last_error_log: Option<Instant> = None;
    let mut connection: Option<redis::aio::ConnectionManager> = None;
    loop {
        let mut reached = true;
        if connection.is_none() {
            match connect(redis_url).await {
                Ok(c) => connection = Some(c),
                Err(NetError::Config(message)) => return Err(NetError::Config(message)),
                Err(_) => reached = false,
            }
        }
        if let Some(open) = connection.clone() {
            // Free zones first; then the shards the gateways asked for (a failed read of
            // those, e.g. a Redis user without read access to them, only skips them).
            let mut candidates: Vec<u16> = zones.to_vec();
            match wanted_shards(open.clone(), world, zone_count, home).await {
                Ok(wanted) => candidates.extend(wanted),
                Err(e) => {
                    if last_error_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(world, error = %e, "the shards the gateways want not read: looking for free zones only");
                        last_error_log = Some(Instant::now());
                    }
                }
            }
            for zone in candidates {
                match ZoneLeases::try_acquire_on(open.clone(), world, process, zone_count, [zone])
                    .await
                {
                    Ok(Ok(leases)) => {
                        let label = ZoneShard::of_instance(zone, zone_count).label();
                        if told_spare {
                            tracing::warn!(
                                zone = %label,
                                world,
                                "spare zone process takes a zone or shard without a process"
                            );
                        }
                        return Ok((zone, leases));
                    }
                    // Held by another process: the next one.
                    Ok(Err(_)) => {}
                    Err(_) => {
                        // Opened again next round.
                        connection = None;
                        reached = false;
                        break;
                    }
                }
            }
        }
        if !reached {
            if last_error_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                tracing::error!(
                    world,
                    "fleet directory unreachable: cannot look for a free zone"
                );
                last_error_log = Some(Instant::now());
            }
        } else if !told_spare {
            tracing::info!(
                world,
                zones = zones.len(),
                "every zone and wanted shard of the world has a process: waiting as a spare"
            );
            told_spare = true;
        }
        tokio::time::sleep(Duration::from_millis(SPARE_POLL_MS)).await;
    }
}

/// The instances of the shards (1 and up) the gateways asked for (the `shards_wanted`
/// hash, each count capped at [`MAX_SHARDS_PER_ZONE`]): lowest shard first, within one the
/// home zone first, then the zones in order.
async fn wanted_shards(
    mut connection: redis::aio::ConnectionManager,
    world: &str,
    zone_count: u16,
    home: u16,
) -> Result<Vec<u16>, NetError> {
    let wanted: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(shards_wanted_key(world))
        .query_async(&mut connection)
        .await
        .map_err(|e| NetError::Connection(format!("fleet directory Redis: {e}")))?;
    let by_zone: Vec<(u16, u16)> = wanted
        .iter()
        .filter_map(|(zone, count)| Some((zone.parse().ok()?, count.parse().ok()?)))
        .filter(|&(zone, _)| zone < zone_count)
        .collect();
    let mut shards: Vec<ZoneShard> = by_zone
        .into_iter()
        .flat_map(|(zone, count)| {
            (1..count.min(MAX_SHARDS_PER_ZONE)).map(move |shard| ZoneShard { zone, shard })
        })
        .collect();
    shards.sort_unstable_by_key(|s| (s.shard, s.zone != home, s.zone));
    Ok(shards.into_iter().map(|s| s.instance(zone_count)).collect())
}

/// The owner key of a zone instance's lease (module docs).
pub(super) fn owner_key(world: &str, shard: ZoneShard) -> String {
    if shard.shard == 0 {
        format!("mmo:{world}:zone:{}:owner", shard.zone)
    } else {
        format!(
            "mmo:{world}:zone:{}:shard:{}:owner",
            shard.zone, shard.shard
        )
    }
}

/// The hash of how many shards each zone should have (module docs).
pub(super) fn shards_wanted_key(world: &str) -> String {
    format!("mmo:{world}:shards_wanted")
}

/// A connection to the directory's Redis that reconnects by itself after Redis restarts
/// or the link drops (`ConnectionManager`; a call made while it is down fails, the next
/// ones go through once it is back). The first connection must succeed within
/// [`CONNECT_TIMEOUT_MS`].
pub(super) async fn connect(redis_url: &str) -> Result<redis::aio::ConnectionManager, NetError> {
    let client = redis::Client::open(redis_url)
        .map_err(|e| NetError::Config(format!("fleet directory Redis URL: {e}")))?;
    tokio::time::timeout(
        Duration::from_millis(CONNECT_TIMEOUT_MS),
        client.get_connection_manager(),
    )
    .await
    .map_err(|_| {
        NetError::Connection(format!(
            "fleet directory Redis: no connection in {CONNECT_TIMEOUT_MS} ms"
        ))
    })?
    .map_err(|e| NetError::Connection(format!("fleet directory Redis: {e}")))
}

/// The longest wait for the directory's first connection, ms.
pub const CONNECT_TIMEOUT_MS: u64 = 3_000;
/// The longest wait for one renewal call: a Redis that does not answer counts as
/// unreachable, so the lease's loss is still declared in time, ms.
const RENEW_CALL_TIMEOUT_MS: u64 = 500;

/// The world's tick 0 (µs since the Unix epoch): the value under `mmo:<world>:epoch_unix_us`,
/// set to now by the first process that asks.
///
/// # Errors
/// Redis unreachable, or a value there that is not a number.
pub async fn world_epoch_unix_us(redis_url: &str, world: &str) -> Result<u64, NetError> {
    let mut connection = connect(redis_url).await?;
    let key = format!("mmo:{world}:epoch_unix_us");
    let now_unix_us = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_err(|e| NetError::Config(format!("system clock before 1970: {e}")))?
        .as_micros() as u64;
    let _: Option<String> = redis::cmd("SET")
        .arg(&key)
        .arg(now_unix_us)
        .arg("NX")
        .query_async(&mut connection)
        .await
        .map_err(|e| NetError::Connection(format!("fleet directory Redis: {e}")))?;
    let value: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .map_err(|e| NetError::Connection(format!("fleet directory Redis: {e}")))?;
    value.parse().map_err(|_| {
        NetError::Config(format!(
            "fleet directory: {key} holds {value:?}, not a number"
        ))
    })
}

async fn release_all(connection: &mut redis::aio::ConnectionManager, leases: &[Lease]) {
    for lease in leases {
        let released: Result<i64, _> = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(&lease.key)
            .arg(&lease.value)
            .query_async(connection)
            .await;
        if let Err(e) = released {
            tracing::warn!(zone = lease.zone, error = %e, "zone lease not given back (it expires by itself)");
        }
    }
}

/// Renews every lease each [`RENEW_EVERY_MS`] until one is lost; then says why on `lost`.
async fn renew(
    mut connection: redis::aio::ConnectionManager,
    leases: Vec<Lease>,
    lost: watch::Sender<Option<String>>,
) {
    let mut every = tokio::time::interval(Duration::from_millis(RENEW_EVERY_MS));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed_at = Instant::now();
    loop {
        every.tick().await;
        let mut all_held = true;
        let mut reached = true;
        for lease in &leases {
            let mut renew = redis::cmd("EVAL");
            renew
                .arg(RENEW)
                .arg(1)
                .arg(&lease.key)
                .arg(&lease.value)
                .arg(LEASE_MS);
            let call = renew.query_async::<i64>(&mut connection);
            let held: Result<i64, String> = match tokio::time::timeout(
                Duration::from_millis(RENEW_CALL_TIMEOUT_MS),
                call,
            )
            .await
            {
                Ok(answer) => answer.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer in {RENEW_CALL_TIMEOUT_MS} ms")),
            };
            match held {
                Ok(1) => {}
                Ok(_) => {
                    let reason = format!(
                        "the lease of zone {} was taken over (key {} no longer holds {})",
                        lease.zone, lease.key, lease.value
                    );
                    tracing::error!(%reason, "zone ownership lost");
                    let _ = lost.send(Some(reason));
                    all_held = false;
                    break;
                }
                Err(e) => {
                    tracing::warn!(zone = lease.zone, error = %e, "zone lease not renewed");
                    reached = false;
                }
            }
        }
        if !all_held {
            return;
        }
        if reached {
            renewed_at = Instant::now();
        } else if renewed_at.elapsed() >= Duration::from_millis(LEASE_MS) {
            let reason = format!(
                "the zone leases could not be renewed for {} ms (Redis unreachable): they may \
                 have expired and been taken",
                renewed_at.elapsed().as_millis()
            );
            tracing::error!(%reason, "zone ownership lost");
            let _ = lost.send(Some(reason));
            return;
        }
    }
}
