//! The fleet's gateways in Redis, which placement chooses from.
//!
//! Every gateway process with `--redis-url` writes its entry into the hash
//! `mmo:<world>:gateways` every [`REFRESH_MS`]: field = its id (16 lowercase hex digits),
//! value = `<open QUIC connections>|<unix ms of the write, Redis's clock>|<public QUIC
//! address>`. The same step (a Lua script) resets the gateway's count of logins placed on
//! it since its previous write (`mmo:<world>:gateways:placed`: its connection count now
//! includes those that connected) and deletes entries not rewritten for [`FORGET_MS`]. An
//! entry older than [`STALE_MS`] is not chosen or counted (the gateway is gone or cut off);
//! a gateway that stops deletes its own. Times come from Redis (`TIME`), so the hosts'
//! clocks need not agree. Each refresh also reads the fresh gateways' addresses, which
//! logins answered here list as `resume_addrs` (where a client whose gateway dies resumes
//! its session, `RELAY_FORMAT.md` section 8). Placement itself (the least loaded fresh gateway) and the world's
//! player count are one step with the login queue ([`crate::login_queue`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How often a gateway rewrites its entry, ms.
pub const REFRESH_MS: u64 = 1_000;
/// An entry not rewritten for this long is not chosen or counted, ms.
pub const STALE_MS: u64 = 3_000;
/// An entry not rewritten for this long is deleted, ms.
pub const FORGET_MS: u64 = 60_000;
/// Longest wait for one Redis call, ms.
const REDIS_CALL_MS: u64 = 500;

/// Writes the entry `ARGV[1]` = `ARGV[2]|<now>|ARGV[3]`, resets its placements, deletes
/// entries older than `ARGV[4]` ms; returns the ids deleted and the addresses of the
/// entries at most `ARGV[5]` ms old (this one's included).
const REFRESH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. now .. '|' .. ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[1])
local forgotten = {}
local fresh = {}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local updated, address = string.match(entries[i + 1], '^%d+|(%d+)|(.+)$')
  if updated == nil or now - tonumber(updated) > tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[1], entries[i])
    redis.call('HDEL', KEYS[2], entries[i])
    table.insert(forgotten, entries[i])
  elseif now - tonumber(updated) <= tonumber(ARGV[5]) then
    table.insert(fresh, address)
  end
end
return {forgotten, fresh}
";

/// This gateway's handle on the registry (see the module docs).
#[derive(Clone)]
pub struct GatewayRegistry {
    /// Reconnects by itself after Redis restarts or the network fails.
    redis: redis::aio::ConnectionManager,
    refresh_script: redis::Script,
    key: String,
    placed_key: String,
    id_hex: String,
    /// The fresh gateways' public QUIC addresses at the last refresh (sorted), and when
    /// that refresh succeeded.
    fresh: Arc<std::sync::Mutex<(Option<std::time::Instant>, Vec<String>)>>,
}

impl std::fmt::Debug for GatewayRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayRegistry")
            .field("key", &self.key)
            .field("id", &self.id_hex)
            .finish_non_exhaustive()
    }
}

fn redis_error(e: impl std::fmt::Display) -> String {
    format!("fleet registry Redis: {e}")
}

/// Runs a Redis call within `limit_ms`; errors are prefixed with `what` (`"login queue
/// Redis"`).
pub(crate) async fn within_as<T>(
    what: &str,
    limit_ms: u64,
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    tokio::time::timeout(Duration::from_millis(limit_ms), call)
        .await
        .map_err(|_| format!("{what}: no answer in {limit_ms} ms"))?
        .map_err(|e| format!("{what}: {e}"))
}

/// Runs a registry call within `limit_ms`.
async fn within<T>(
    limit_ms: u64,
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    within_as("fleet registry Redis", limit_ms, call).await
}

/// A connection to `redis_url` that reconnects by itself.
///
/// # Errors
/// A bad URL or Redis unreachable.
pub async fn connection_manager(redis_url: &str) -> Result<redis::aio::ConnectionManager, String> {
    let client = redis::Client::open(redis_url).map_err(redis_error)?;
    within(REDIS_CALL_MS * 4, client.get_connection_manager()).await
}

impl GatewayRegistry {
    /// The registry of `world` at `redis_url`, for the gateway `gateway_id`.
    ///
    /// # Errors
    /// A bad URL or Redis unreachable.
    pub async fn connect(
        redis_url: &str,
        world: &str,
        gateway_id: u64,
    ) -> Result<GatewayRegistry, String> {
        Ok(GatewayRegistry {
            redis: connection_manager(redis_url).await?,
            refresh_script: redis::Script::new(REFRESH),
            key: format!("mmo:{world}:gateways"),
            placed_key: format!("mmo:{world}:gateways:placed"),
            id_hex: format!("{gateway_id:016x}"),
            fresh: Arc::default(),
        })
    }

    /// Writes this gateway's entry now, resets its placements, deletes forgotten entries
    /// (one step).
    ///
    /// # Errors
    /// Redis unreachable or too slow.
    pub async fn refresh(&self, quic_addr: SocketAddr, connections: usize) -> Result<(), String> {
        let mut redis = self.redis.clone();
        let mut invocation = self.refresh_script.prepare_invoke();
        invocation
            .key(&self.key)
            .key(&self.placed_key)
            .arg(&self.id_hex)
            .arg(connections)
            .arg(quic_addr.to_string())
            .arg(FORGET_MS)
            .arg(STALE_MS);
        let (forgotten, mut fresh): (Vec<String>, Vec<String>) =
            within(REDIS_CALL_MS, invocation.invoke_async(&mut redis)).await?;
        fresh.sort();
        *self
            .fresh
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            (Some(std::time::Instant::now()), fresh);
        if !forgotten.is_empty() {
            tracing::info!(gateways = ?forgotten, "fleet registry: silent gateways forgotten");
        }
        Ok(())
    }

    /// Rewrites this gateway's entry every [`REFRESH_MS`] with `connections()` (a task;
    /// abort it before [`GatewayRegistry::deregister`]).
    pub fn spawn_refresh(
        &self,
        quic_addr: SocketAddr,
        connections: Arc<dyn Fn() -> usize + Send + Sync>,
    ) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(REFRESH_MS));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                every.tick().await;
                match registry.refresh(quic_addr, connections()).await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::warn!("fleet registry reachable again");
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::error!(error = %e, "fleet registry not refreshed: logins elsewhere stop sending players here after {STALE_MS} ms");
                    }
                    Err(_) => {}
                }
            }
        })
    }

    /// The public QUIC addresses of the gateways that were fresh at the last refresh (this
    /// one's included); empty before the first refresh and when the last successful one
    /// is older than [`STALE_MS`] (Redis unreachable: the list may be wrong).
    #[must_use]
    pub fn fresh_addresses(&self) -> Vec<String> {
        let fresh = self
            .fresh
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match fresh.0 {
            Some(at) if at.elapsed() <= Duration::from_millis(STALE_MS) => fresh.1.clone(),
            _ => Vec::new(),
        }
    }

    /// Deletes this gateway's entry (at shutdown).
    pub async fn deregister(&self) {
        let mut redis = self.redis.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hdel(&self.key, &self.id_hex)
            .ignore()
            .hdel(&self.placed_key, &self.id_hex)
            .ignore();
        if let Err(e) = within(REDIS_CALL_MS, pipe.query_async::<()>(&mut redis)).await {
            tracing::warn!(error = %e, "fleet registry entry not deleted (ignored once stale)");
        }
    }
}
