//! Login rate limits shared by the gateways of a fleet, in Redis: a password guesser that
//! spreads its attempts over several gateways meets the same limits as one that uses one.
//!
//! The same limits as each process's own [`crate::accounts::LoginLimiter`]
//! (`failed_logins_per_account_per_min`, `logins_per_address_per_min`), counted in fixed
//! windows of one minute that start at a key's first event:
//!
//! | key (under `mmo:<world>:limit:`) | counts |
//! |---|---|
//! | `address:<ip>` | login and registration attempts from the address |
//! | `account:<name>` | failed logins of the account, and logins being checked (reserved before the password is checked, given back when it was right), so concurrent guesses cannot pass the check together |
//!
//! Each check-and-count is one Lua step: a key at its limit refuses (with the milliseconds
//! its window has left, rounded up to seconds in the answer) without counting. The local
//! limiter still runs first in each process. Redis unreachable: the fleet's limits are
//! skipped (logged at warn, at most every 30 s) and only the local ones hold, so an outage
//! of the directory does not lock players out.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::accounts::AccountError;

/// Longest wait for one Redis call, ms.
const REDIS_CALL_MS: u64 = 500;

/// Counts one event when the key is below `ARGV[1]` (the window of `ARGV[2]` ms starts at
/// the first). Answers `{1, window left ms}` when counted, `{0, window left ms}` when
/// refused.
const COUNT: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    left = tonumber(ARGV[2])
  end
  return {0, left}
end
redis.call('INCR', KEYS[1])
if n == 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {1, redis.call('PTTL', KEYS[1])}
";

/// Gives one reserved event back (the caller checks that its window has not ended).
const UNCOUNT: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
";

/// The outcome of one check-and-count.
enum Counted {
    /// Counted; the window has this long left, ms.
    Yes { left_ms: u64 },
    /// At the limit: not counted; the window has this long left, ms.
    Refused { left_ms: u64 },
}

/// The fleet's limits for one world (see the module docs).
pub struct FleetLimits {
    redis: redis::aio::ConnectionManager,
    count_script: redis::Script,
    uncount_script: redis::Script,
    prefix: String,
    failures_per_account: u32,
    attempts_per_address: u32,
    window_ms: u64,
    /// When an unreachable Redis was last logged.
    last_outage_log: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for FleetLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetLimits")
            .field("prefix", &self.prefix)
            .field("failures_per_account", &self.failures_per_account)
            .field("attempts_per_address", &self.attempts_per_address)
            .finish_non_exhaustive()
    }
}

/// A login attempt reserved in the fleet's account count: it stays counted (a failure)
/// unless [`FleetAttempt::release`]d.
#[derive(Debug)]
#[must_use = "an attempt not released counts as a failure"]
pub struct FleetAttempt {
    key: String,
    /// When the window it was counted in ends; `None`: not counted (Redis was
    /// unreachable), nothing to give back.
    window_ends: Option<Instant>,
}

impl FleetLimits {
    /// The limits of `settings` for `world` at `redis_url`.
    ///
    /// # Errors
    /// A bad URL or Redis unreachable.
    pub async fn connect(
        redis_url: &str,
        world: &str,
        settings: &crate::service_settings::AccountSettings,
    ) -> Result<FleetLimits, String> {
        Ok(FleetLimits {
            redis: crate::gateway_registry::connection_manager(redis_url).await?,
            count_script: redis::Script::new(COUNT),
            uncount_script: redis::Script::new(UNCOUNT),
            prefix: format!("mmo:{world}:limit"),
            failures_per_account: settings.failed_logins_per_account_per_min.max(1),
            attempts_per_address: settings.logins_per_address_per_min.max(1),
            window_ms: 60_000,
            last_outage_log: Mutex::new(None),
        })
    }

    /// One check-and-count of `key` against `limit` (`None`: Redis could not be asked).
    async fn count(&self, key: &str, limit: u32) -> Option<Counted> {
        let mut redis = self.redis.clone();
        let mut invocation = self.count_script.prepare_invoke();
        invocation.key(key).arg(limit).arg(self.window_ms);
        let call = invocation.invoke_async::<(i64, i64)>(&mut redis);
        match crate::gateway_registry::within_as("login limits Redis", REDIS_CALL_MS, call).await {
            Ok((counted, left_ms)) => {
                let left_ms = u64::try_from(left_ms).unwrap_or(0);
                Some(if counted == 1 {
                    Counted::Yes { left_ms }
                } else {
                    Counted::Refused { left_ms }
                })
            }
            Err(e) => {
                self.outage(&e);
                None
            }
        }
    }

    fn outage(&self, error: &str) {
        let mut last = self
            .last_outage_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(30)) {
            tracing::warn!(%error, "the fleet's login limits are unavailable: only this process's own hold");
            *last = Some(Instant::now());
        }
    }

    /// Counts an attempt from `address`; refused when it made its limit in this window.
    ///
    /// # Errors
    /// [`AccountError::RateLimited`] with the seconds the window has left.
    pub async fn attempt_from(&self, address: Option<IpAddr>) -> Result<(), AccountError> {
        let Some(address) = address else {
            return Ok(());
        };
        let key = format!("{}:address:{address}", self.prefix);
        match self.count(&key, self.attempts_per_address).await {
            None | Some(Counted::Yes { .. }) => Ok(()),
            Some(Counted::Refused { left_ms }) => Err(AccountError::RateLimited {
                scope: "from this address",
                retry_after_s: left_ms.div_ceil(1000).max(1),
            }),
        }
    }

    /// Reserves a login attempt of `account` (see the module docs).
    ///
    /// # Errors
    /// [`AccountError::RateLimited`] when its failed and running attempts reached the limit.
    pub async fn reserve_account(&self, account: &str) -> Result<FleetAttempt, AccountError> {
        let key = format!("{}:account:{account}", self.prefix);
        match self.count(&key, self.failures_per_account).await {
            None => Ok(FleetAttempt {
                key,
                window_ends: None,
            }),
            Some(Counted::Yes { left_ms }) => Ok(FleetAttempt {
                key,
                window_ends: Some(Instant::now() + Duration::from_millis(left_ms)),
            }),
            Some(Counted::Refused { left_ms }) => Err(AccountError::RateLimited {
                scope: "for this account",
                retry_after_s: left_ms.div_ceil(1000).max(1),
            }),
        }
    }

    /// The reserved attempt did not fail on its credentials: it no longer counts (unless it
    /// was never counted, or its window ended: a new window's count is not touched).
    pub async fn release(&self, attempt: FleetAttempt) {
        if attempt
            .window_ends
            .is_none_or(|ends| Instant::now() >= ends)
        {
            return;
        }
        let mut redis = self.redis.clone();
        let mut invocation = self.uncount_script.prepare_invoke();
        invocation.key(&attempt.key);
        let call = invocation.invoke_async::<i64>(&mut redis);
        if let Err(e) =
            crate::gateway_registry::within_as("login limits Redis", REDIS_CALL_MS, call).await
        {
            self.outage(&e);
        }
    }
}
