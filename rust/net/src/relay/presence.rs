//! Fleet-wide account presence in the directory's Redis: one live session per account in a
//! world, whichever zone process runs it (`RELAY_FORMAT.md`, section 6).
//!
//! A session is named by its client's connection, [`SessionRef`] (the gateway and its
//! serial for the connection), which stays the same when the session moves between zone
//! processes, so a handoff never rewrites the key. The key `mmo:<world>:account:<account>`
//! holds that name while the session lives.
//!
//! - **Claim** ([`FleetPresence::claim`], a zone thread after accepting a login's token,
//!   before loading the character): one Lua step sets the key when it is free; otherwise
//!   the older session is kicked on `mmo.<world>.peer.kick` (every zone process hears it)
//!   and the claim is tried again every [`CLAIM_POLL_MS`] until the older session's
//!   process releases the key after its logout save committed. After [`KICK_WAIT_MS`] a
//!   key marked closing (below) refuses the login ([`STILL_SAVING`]); any other is taken
//!   over if it still names that older session (that process is gone or does not answer;
//!   a key naming yet another session by then starts the wait again). A claim that could
//!   not reach Redis for [`CLAIM_GIVE_UP_MS`] fails and the login is refused. A claim
//!   whose login ended before the answer was read is abandoned ([`FleetPresence::abandon`]:
//!   released if it had succeeded).
//! - **Closing** ([`FleetPresence::closing`], a zone thread when a session that holds the
//!   key ends and its logout save is offered): the value gets [`CLOSING_SUFFIX`], so a
//!   login waits for the save instead of taking the key over.
//! - **Release** ([`FleetPresence::release`], a zone thread once that logout save
//!   committed): deletes the key if it still names the session, closing or not.
//! - **Moving**: the process a session leaves stops renewing its key
//!   ([`FleetPresence::let_go`]), the one it arrives at starts ([`FleetPresence::hold`]).
//! - **Renewal** (a task, every [`RENEW_EVERY_MS`]): the keys of every session held here
//!   get their expiry ([`PRESENCE_TTL_MS`]) back; a key found naming another session means
//!   a newer login took it after its wait, and the session here is kicked
//!   ([`LocalKick`], closed by the relay with `duplicate_login`); a missing key is set again
//!   unless its session was released while the renewal ran (then it is deleted again).
//!
//! The Redis connection reconnects by itself (`ConnectionManager`); scripts go by their
//! hash (`EVALSHA`), loaded at their first use.
//!
//! Nothing here blocks a zone thread: claims and releases run as tasks on the relay's
//! runtime; a claim's outcome arrives on a oneshot channel the zone polls every tick.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mmo_core::relay::{Kick, PeerMessage};
use tokio::sync::{mpsc, oneshot};

use crate::NetError;

/// Lifetime of a presence key without renewal, ms.
pub const PRESENCE_TTL_MS: u64 = 30_000;
/// How often a zone process renews the keys of its sessions, ms.
pub const RENEW_EVERY_MS: u64 = 10_000;
/// How long a claim waits for the older session's release before taking the key anyway,
/// ms.
pub const KICK_WAIT_MS: u64 = 3_000;
/// How long a claim keeps trying while Redis cannot be reached before the login is
/// refused, ms.
pub const CLAIM_GIVE_UP_MS: u64 = 5_000;
/// A claim tries again this often while the key names an older session, ms.
pub const CLAIM_POLL_MS: u64 = 20;
/// A kick is published again this often while the same older session holds the key, ms.
pub const KICK_RESEND_MS: u64 = 500;
/// Longest wait for one Redis call, ms.
const REDIS_CALL_MS: u64 = 500;
/// Appended to a key's value while its session is closed and its logout save is being
/// committed: a claim neither kicks it nor takes it over.
pub const CLOSING_SUFFIX: &str = "/closing";
/// Why a login is refused when its account's previous session is still being saved.
pub const STILL_SAVING: &str =
    "your previous session is still being saved; log in again in a few seconds";

/// Sets the key when it is free or already ours (`''`); else returns its value.
const CLAIM: &str = r"
local current = redis.call('GET', KEYS[1])
if (not current) or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ''
end
return current
";

/// Renews the key when it names us, closing or not (`''`); sets it to `ARGV[3]` (our value,
/// with the closing mark while we close) when missing (`'+'`); else returns its value.
const RENEW: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] or current == ARGV[1] .. '/closing' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return ''
end
if not current then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
  return '+'
end
return current
";

/// Deletes the key when it names us, closing or not.
const RELEASE: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] or current == ARGV[1] .. '/closing' then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Marks the key as closing when it names us.
const CLOSING: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1] .. '/closing', 'PX', ARGV[2])
  return 1
end
return 0
";

/// Sets the key to us when it still names the older session `ARGV[3]`, or is absent (`''`);
/// else returns its value.
const TAKE_OVER: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[3] or not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ''
end
return current
";

/// The Redis key naming `account`'s live session in `world` (present while it plays; the
/// login queue lets such an account in without waiting: it reconnects).
#[must_use]
pub fn account_presence_key(world: &str, account: &str) -> String {
    format!("mmo:{world}:account:{account}")
}

/// A session in the fleet, named by its client's connection: the gateway holding it and
/// the gateway's serial for it (the same in every incarnation of its streams).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SessionRef {
    pub(crate) gateway: u64,
    pub(crate) conn_serial: u64,
}

impl SessionRef {
    /// The key's value: `<gateway, 16 lowercase hex digits>:<serial, decimal>`.
    pub(crate) fn value(self) -> String {
        format!("{:016x}:{}", self.gateway, self.conn_serial)
    }

    /// The session a key's value names (`None`: not a value [`SessionRef::value`] writes).
    pub(crate) fn parse(value: &str) -> Option<SessionRef> {
        let (gateway, serial) = value.split_once(':')?;
        if gateway.len() != 16 {
            return None;
        }
        Some(SessionRef {
            gateway: u64::from_str_radix(gateway, 16).ok()?,
            conn_serial: serial.parse().ok()?,
        })
    }
}

/// A session of this process whose key a newer login took: the relay closes it with
/// `duplicate_login`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LocalKick {
    pub(crate) account: String,
    pub(crate) session: SessionRef,
}

/// A session whose key this process renews.
#[derive(Clone, Debug)]
struct Held {
    account: String,
    /// Closed; its logout save is being committed (the key carries [`CLOSING_SUFFIX`]).
    closing: bool,
}

impl Held {
    fn new(account: &str) -> Held {
        Held {
            account: account.to_owned(),
            closing: false,
        }
    }
}

/// The presence of one zone process's sessions; cheap to clone (see the module docs).
#[derive(Clone)]
pub(crate) struct FleetPresence {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FleetPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetPresence")
            .field("world", &self.inner.world)
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// Reconnects by itself after Redis restarts or the network fails.
    redis: redis::aio::ConnectionManager,
    claim_script: redis::Script,
    release_script: redis::Script,
    closing_script: redis::Script,
    take_over_script: redis::Script,
    nats: async_nats::Client,
    world: String,
    kick_subject: String,
    /// Where claims and releases run (zone threads have runtimes of their own).
    runtime: tokio::runtime::Handle,
    /// Sessions whose keys this process renews, with their accounts.
    held: Mutex<BTreeMap<SessionRef, Held>>,
    /// Claims and releases running.
    in_flight: std::sync::atomic::AtomicUsize,
    local_kicks: mpsc::UnboundedSender<LocalKick>,
}

impl FleetPresence {
    /// Presence for `world` in the Redis at `redis_url`, kicking over `nats`. Returns the
    /// receiver of [`LocalKick`]s and starts the renewal task (ended by aborting the
    /// returned handle). Call from the relay's runtime.
    ///
    /// # Errors
    /// Redis unreachable or a bad URL.
    pub(crate) async fn start(
        redis_url: &str,
        world: &str,
        kick_subject: String,
        nats: async_nats::Client,
    ) -> Result<
        (
            FleetPresence,
            mpsc::UnboundedReceiver<LocalKick>,
            tokio::task::JoinHandle<()>,
        ),
        NetError,
    > {
        let client = redis::Client::open(redis_url)
            .map_err(|e| NetError::Config(format!("account presence Redis URL: {e}")))?;
        let redis = tokio::time::timeout(
            Duration::from_millis(REDIS_CALL_MS * 4),
            client.get_connection_manager(),
        )
        .await
        .map_err(|_| NetError::Connection("account presence Redis: no answer".into()))?
        .map_err(|e| NetError::Connection(format!("account presence Redis: {e}")))?;
        let (local_kicks, kicks) = mpsc::unbounded_channel();
        let presence = FleetPresence {
            inner: Arc::new(Inner {
                redis,
                claim_script: redis::Script::new(CLAIM),
                release_script: redis::Script::new(RELEASE),
                closing_script: redis::Script::new(CLOSING),
                take_over_script: redis::Script::new(TAKE_OVER),
                nats,
                world: world.to_owned(),
                kick_subject,
                runtime: tokio::runtime::Handle::current(),
                held: Mutex::new(BTreeMap::new()),
                in_flight: std::sync::atomic::AtomicUsize::new(0),
                local_kicks,
            }),
        };
        let renewer = tokio::spawn(presence.clone().renew_forever());
        Ok((presence, kicks, renewer))
    }

    /// Claims `account`'s key for `session`; answered `Ok` once it is ours, `Err` naming
    /// the cause when Redis could not be reached for [`CLAIM_GIVE_UP_MS`]. A claim whose
    /// receiver is gone when it succeeds is released again.
    pub(crate) fn claim(
        &self,
        account: &str,
        session: SessionRef,
    ) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        let account = account.to_owned();
        self.run(move |inner| async move {
            let outcome = inner.claim(&account, session).await;
            if outcome.is_ok() {
                inner.held().insert(session, Held::new(&account));
            }
            if let Err(Ok(())) = tx.send(outcome) {
                // The login was abandoned while claiming.
                inner.release(&account, session).await;
            }
        });
        rx
    }

    /// Gives up a claim whose login ended before its answer was read: no answer can arrive
    /// any more, and the key is released if the claim had already succeeded.
    pub(crate) fn abandon(
        &self,
        mut claim: oneshot::Receiver<Result<(), String>>,
        account: &str,
        session: SessionRef,
    ) {
        claim.close();
        if let Ok(Ok(())) = claim.try_recv() {
            self.release(account, session);
        }
    }

    /// Marks `account`'s key as closing if it still names `session` (closed; its logout save
    /// is being committed): logins wait for its release instead of taking it over.
    pub(crate) fn closing(&self, account: &str, session: SessionRef) {
        let account = account.to_owned();
        self.run(move |inner| async move {
            if let Some(held) = inner.held().get_mut(&session) {
                // A renewal that finds the key missing sets it back closing.
                held.closing = true;
            }
            let key = inner.key(&account);
            if let Err(e) = inner
                .run_script(&inner.closing_script, &key, session, None)
                .await
            {
                tracing::debug!(account, error = %e, "account presence key not marked closing");
            }
        });
    }

    /// Releases `account`'s key if it still names `session` (its logout save committed).
    pub(crate) fn release(&self, account: &str, session: SessionRef) {
        let account = account.to_owned();
        self.run(move |inner| async move {
            inner.release(&account, session).await;
        });
    }

    /// Runs `task` on the relay's runtime, counted until it ends.
    fn run<F, T>(&self, task: T)
    where
        T: FnOnce(Arc<Inner>) -> F,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        use std::sync::atomic::Ordering;
        let inner = self.inner.clone();
        inner.in_flight.fetch_add(1, Ordering::AcqRel);
        let future = task(inner.clone());
        self.inner.runtime.spawn(async move {
            future.await;
            inner.in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }

    /// Waits until no claim or release runs, for at most `limit` (at shutdown, after the
    /// zones released their sessions).
    pub(crate) async fn settle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self
            .inner
            .in_flight
            .load(std::sync::atomic::Ordering::Acquire)
            > 0
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A session arrived from another zone process: its key is renewed here from now on.
    pub(crate) fn hold(&self, account: &str, session: SessionRef) {
        self.inner.held().insert(session, Held::new(account));
    }

    /// A session left for another zone process: its key is renewed there.
    pub(crate) fn let_go(&self, session: SessionRef) {
        self.inner.held().remove(&session);
    }

    /// Renews the held keys every [`RENEW_EVERY_MS`] (never returns).
    async fn renew_forever(self) {
        let mut every = tokio::time::interval(Duration::from_millis(RENEW_EVERY_MS));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            if let Err(e) = self.inner.renew_all().await {
                tracing::warn!(error = %e, "account presence not renewed (keys expire after {PRESENCE_TTL_MS} ms)");
            }
        }
    }
}

impl Inner {
    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<SessionRef, Held>> {
        // Every critical section is one insert, remove or copy: a poisoned map is whole.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn key(&self, account: &str) -> String {
        account_presence_key(&self.world, account)
    }

    /// Runs one script (by its hash, loaded at the first use) on one key with the
    /// session and the key's lifetime (and `extra`), within [`REDIS_CALL_MS`].
    async fn run_script(
        &self,
        script: &redis::Script,
        key: &str,
        session: SessionRef,
        extra: Option<&str>,
    ) -> Result<String, String> {
        let mut redis = self.redis.clone();
        let mut invocation = script.prepare_invoke();
        invocation
            .key(key)
            .arg(session.value())
            .arg(PRESENCE_TTL_MS);
        if let Some(extra) = extra {
            invocation.arg(extra);
        }
        let call = invocation.invoke_async::<redis::Value>(&mut redis);
        let value = tokio::time::timeout(Duration::from_millis(REDIS_CALL_MS), call)
            .await
            .map_err(|_| format!("no answer from Redis in {REDIS_CALL_MS} ms"))?
            .map_err(|e| format!("Redis: {e}"))?;
        Ok(script_string(value))
    }

    async fn claim(&self, account: &str, session: SessionRef) -> Result<(), String> {
        let key = self.key(account);
        let mut started = Instant::now();
        // The older session kicked last and when.
        let mut kicked: Option<(String, Instant)> = None;
        loop {
            match self
                .run_script(&self.claim_script, &key, session, None)
                .await
            {
                Ok(holder) if holder.is_empty() => {
                    if let Some((older, _)) = kicked {
                        let waited_ms =
                            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                        tracing::info!(account, older = %older, waited_ms, "account presence: the older session released its key");
                    }
                    return Ok(());
                }
                Ok(holder) if holder.ends_with(CLOSING_SUFFIX) => {
                    // Closed already; its logout save is being written: never taken over.
                    if started.elapsed() >= Duration::from_millis(KICK_WAIT_MS) {
                        super::count("presence_still_saving");
                        return Err(STILL_SAVING.to_owned());
                    }
                }
                Ok(holder) => {
                    if started.elapsed() >= Duration::from_millis(KICK_WAIT_MS) {
                        match self.take_over(account, &key, session, &holder).await {
                            Ok(true) => return Ok(()),
                            // The key changed meanwhile: wait for its new holder in turn.
                            Ok(false) => started = Instant::now(),
                            Err(e)
                                if started.elapsed() >= Duration::from_millis(CLAIM_GIVE_UP_MS) =>
                            {
                                return Err(format!(
                                    "cannot check where else this account is logged in ({e})"
                                ));
                            }
                            Err(_) => {}
                        }
                        tokio::time::sleep(Duration::from_millis(CLAIM_POLL_MS)).await;
                        continue;
                    }
                    let due = kicked.as_ref().is_none_or(|(older, at)| {
                        *older != holder || at.elapsed() >= Duration::from_millis(KICK_RESEND_MS)
                    });
                    if due {
                        self.kick(account, &holder).await;
                        kicked = Some((holder, Instant::now()));
                    }
                }
                Err(e) if started.elapsed() >= Duration::from_millis(CLAIM_GIVE_UP_MS) => {
                    return Err(format!(
                        "cannot check where else this account is logged in ({e})"
                    ));
                }
                Err(e) => {
                    tracing::debug!(account, error = %e, "account presence claim failed: trying again");
                }
            }
            tokio::time::sleep(Duration::from_millis(CLAIM_POLL_MS)).await;
        }
    }

    /// Takes the key from the older session `holder`, whose process did not release it in
    /// time, if the key still names it (`false`: it names another session now, or none).
    async fn take_over(
        &self,
        account: &str,
        key: &str,
        session: SessionRef,
        holder: &str,
    ) -> Result<bool, String> {
        let current = self
            .run_script(&self.take_over_script, key, session, Some(holder))
            .await?;
        if !current.is_empty() {
            return Ok(false);
        }
        super::count("presence_takeover");
        tracing::warn!(
            account,
            older = holder,
            "account presence: the older session was not released in {KICK_WAIT_MS} ms; its key is taken over"
        );
        Ok(true)
    }

    /// Publishes a kick of the session `holder` names.
    async fn kick(&self, account: &str, holder: &str) {
        let Some(older) = SessionRef::parse(holder) else {
            tracing::warn!(
                account,
                value = holder,
                "account presence key holds an unknown value: waiting for it to be released or taken over"
            );
            return;
        };
        let message = PeerMessage::Kick(Kick {
            account: account.to_owned(),
            gateway: older.gateway,
            conn_serial: older.conn_serial,
        });
        super::zone_side::publish_peer(&self.nats, &self.kick_subject, &message).await;
        super::count("presence_kick_sent");
    }

    async fn release(&self, account: &str, session: SessionRef) {
        // Out of the renewals first: a renewal running meanwhile deletes a key it set back.
        self.held().remove(&session);
        // Tried a few times: a closing key left behind refuses the account's logins until
        // it expires.
        let key = self.key(account);
        for attempt in 1..=5 {
            match self
                .run_script(&self.release_script, &key, session, None)
                .await
            {
                Ok(_) => break,
                Err(e) if attempt == 5 => {
                    tracing::warn!(account, error = %e, "account presence key not released (it expires by itself)");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Renews every held key in one pipeline; kicks the sessions whose keys were taken.
    async fn renew_all(&self) -> Result<(), String> {
        let held: Vec<(SessionRef, Held)> =
            self.held().iter().map(|(s, h)| (*s, h.clone())).collect();
        if held.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (session, entry) in &held {
            let value = session.value();
            let when_missing = if entry.closing {
                format!("{value}{CLOSING_SUFFIX}")
            } else {
                value.clone()
            };
            pipe.cmd("EVAL")
                .arg(RENEW)
                .arg(1)
                .arg(self.key(&entry.account))
                .arg(value)
                .arg(PRESENCE_TTL_MS)
                .arg(when_missing);
        }
        let mut redis = self.redis.clone();
        let answers: Vec<redis::Value> = tokio::time::timeout(
            Duration::from_millis(REDIS_CALL_MS * 4),
            pipe.query_async(&mut redis),
        )
        .await
        .map_err(|_| "no answer from Redis".to_owned())?
        .map_err(|e| format!("Redis: {e}"))?;
        for ((session, Held { account, .. }), answer) in held.into_iter().zip(answers) {
            match script_string(answer).as_str() {
                "" => {}
                // Released (or moved away) while the renewal ran: the renewal must not
                // bring the key back.
                "+" if !self.held().contains_key(&session) => {
                    self.release(&account, session).await;
                }
                "+" => {
                    tracing::warn!(
                        account,
                        "account presence key was missing (expired): set again"
                    );
                }
                newer => {
                    tracing::warn!(
                        account,
                        newer,
                        "account presence key taken by a newer login: closing the session here"
                    );
                    self.held().remove(&session);
                    super::count("presence_lost");
                    let _ = self.local_kicks.send(LocalKick { account, session });
                }
            }
        }
        Ok(())
    }
}

/// A script's string answer (integers and nil, which these scripts do not return as
/// strings, become their text and `""`).
fn script_string(value: redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        redis::Value::SimpleString(s) => s,
        redis::Value::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_value_parses_back_and_other_values_do_not() {
        let session = SessionRef {
            gateway: 0x12c,
            conn_serial: 7,
        };
        assert_eq!(session.value(), "000000000000012c:7");
        assert_eq!(SessionRef::parse(&session.value()), Some(session));
        for bad in [
            "",
            "12c:7",
            "000000000000012c",
            "000000000000012c:x",
            "zzzzzzzzzzzzzzzz:1",
        ] {
            assert_eq!(SessionRef::parse(bad), None, "{bad:?}");
        }
    }
}
