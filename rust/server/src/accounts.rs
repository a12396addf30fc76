//! Accounts: registration, password checks, refresh tokens and login rate limits, over the
//! [`Store`]. The HTTP handlers ([`crate::http`]) call [`Accounts`] and map its
//! [`AccountError`]s to answers.
//!
//! - Passwords ([`Passwords`]): argon2id with the settings' memory, iterations and lanes,
//!   stored as PHC strings (so a hash made with older parameters still verifies). Hashing
//!   and verifying always run on `tokio::task::spawn_blocking`, at most
//!   [`Passwords::max_concurrent`] at once (each takes `argon2_memory_kib` of memory: the
//!   bound keeps a login burst from taking gigabytes). A login for a name without a
//!   password hash is verified against a fixed dummy hash, so the time of the answer does
//!   not tell whether the name exists. New passwords are [`MIN_PASSWORD_BYTES`]..=
//!   [`MAX_NEW_PASSWORD_BYTES`] bytes; names follow [`valid_account_name`].
//! - Development accounts ([`DevAccounts`]) still log in with their configured passwords;
//!   they get an account row ([`Store::ensure_account`], empty hash) and refresh tokens
//!   like everyone. A name registered with a password is checked only by argon2, never by
//!   the development rules. (A configured development account is checked without argon2,
//!   so its answer is faster: timing reveals development account names, which are not
//!   secret.)
//! - Refresh tokens: [`REFRESH_TOKEN_BYTES`] random bytes as base64url text (no padding);
//!   only their SHA-256 is stored. Using one rotates it (revoked, a successor issued);
//!   presenting a revoked one revokes every refresh token of the account (reuse detection)
//!   and is refused; an expired one is refused.
//! - Rate limits ([`LoginLimiter`]): per account, failed logins per window
//!   (`failed_logins_per_account_per_min`); a login reserves its failure under the
//!   limiter's lock before the password is checked ([`LoginLimiter::reserve_account`]) and
//!   gives it back only when it succeeds (or fails for a reason other than the
//!   credentials), so concurrent guesses cannot pass the check together: at most the limit
//!   of attempts per window are in flight or failed. Per IP address, attempts per window
//!   (`logins_per_address_per_min`, registrations count too). A refused attempt is
//!   answered before any password is checked, with the seconds until the window ends.
//!   Windows are fixed: they start at a key's first event and last [`LoginLimiter::window`].
//!   At a gateway of a fleet the same limits are also counted across every gateway, in
//!   Redis ([`crate::fleet_limits`]).
//!   Memory is bounded: each table holds at most `max_keys` entries; when full, expired
//!   entries are dropped, then the oldest tenth. Under a flood of distinct keys an
//!   account's counter can thus be evicted early; the per-address limit bounds how fast one
//!   address can cause that.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::auth::DevAccounts;
use crate::config::{MAX_ACCOUNT_NAME_BYTES, MAX_PASSWORD_BYTES, valid_account_name};
use crate::service_settings::AccountSettings;
use crate::storage::accounts::RefreshUse;
use crate::storage::{Store, StoreError};

/// Shortest password a new account may have, bytes.
pub const MIN_PASSWORD_BYTES: usize = 8;
/// Longest password a new account may have, bytes.
pub const MAX_NEW_PASSWORD_BYTES: usize = 128;
/// Random bytes in a refresh token.
pub const REFRESH_TOKEN_BYTES: usize = 32;
/// Entries each rate-limit table holds at most (see the module docs).
pub const DEFAULT_MAX_LIMITER_KEYS: usize = 100_000;

/// Why an account operation did not succeed. [`AccountError::kind`] is the `error` of the
/// HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The request is malformed (names the problem).
    #[error("{0}")]
    BadRequest(String),
    /// The account name is taken.
    #[error("{0}")]
    NameTaken(String),
    /// Registration is closed by the settings.
    #[error("registration is closed on this server")]
    RegistrationClosed,
    /// Unknown name or wrong password.
    #[error("unknown username or wrong password")]
    BadCredentials,
    /// Too many attempts; retry after this many seconds.
    #[error("too many login attempts {scope}; retry in {retry_after_s} s")]
    RateLimited {
        /// `for this account` or `from this address`.
        scope: &'static str,
        /// Seconds until the window ends (>= 1).
        retry_after_s: u64,
    },
    /// The refresh token expired.
    #[error("refresh token expired; log in again")]
    RefreshExpired,
    /// The refresh token was revoked (used or logged out); all of the account's are now.
    #[error(
        "refresh token was already used or revoked; every session of the account is revoked, log in again"
    )]
    RefreshRevoked,
    /// No such refresh token.
    #[error("unknown refresh token")]
    RefreshUnknown,
    /// The database is unreachable.
    #[error("{0}")]
    Unavailable(String),
    /// Something that should not happen (a corrupt row, a failed hash).
    #[error("{0}")]
    Internal(String),
}

impl AccountError {
    /// The `error` field of the HTTP answer.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            AccountError::BadRequest(_) => "bad_request",
            AccountError::NameTaken(_) => "name_taken",
            AccountError::RegistrationClosed => "registration_closed",
            AccountError::BadCredentials => "bad_credentials",
            AccountError::RateLimited { .. } => "rate_limited",
            AccountError::RefreshExpired => "refresh_token_expired",
            AccountError::RefreshRevoked => "refresh_token_revoked",
            AccountError::RefreshUnknown => "refresh_token_unknown",
            AccountError::Unavailable(_) => "unavailable",
            AccountError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => AccountError::Unavailable(e.to_string()),
            StoreError::Conflict(m) => AccountError::NameTaken(m),
            other => AccountError::Internal(other.to_string()),
        }
    }
}

/// Checks a new password: [`MIN_PASSWORD_BYTES`]..=[`MAX_NEW_PASSWORD_BYTES`] bytes.
pub fn check_new_password(password: &str) -> Result<(), AccountError> {
    if (MIN_PASSWORD_BYTES..=MAX_NEW_PASSWORD_BYTES).contains(&password.len()) {
        Ok(())
    } else {
        Err(AccountError::BadRequest(format!(
            "a password is {MIN_PASSWORD_BYTES}..={MAX_NEW_PASSWORD_BYTES} bytes, this one {}",
            password.len()
        )))
    }
}

/// Checks an account name ([`valid_account_name`]).
pub fn check_name(name: &str) -> Result<(), AccountError> {
    if valid_account_name(name) {
        Ok(())
    } else {
        Err(AccountError::BadRequest(format!(
            "a username is 1..={MAX_ACCOUNT_NAME_BYTES} bytes of letters, digits, `_`, `-` and `.`"
        )))
    }
}

/// argon2id hashing and verification off the async threads. See the module docs.
#[derive(Debug)]
pub struct Passwords {
    params: Params,
    /// A hash of a random password with `params`; verified against when there is no real
    /// hash, so that case takes as long as a real check.
    dummy_hash: String,
    /// Hashes running at once. Invariant: `max_concurrent` permits.
    permits: Arc<Semaphore>,
    max_concurrent: usize,
}

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(params: Params, password: &[u8]) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| AccountError::Internal(format!("password salt: {e}")))?;
    argon2(params)
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Internal(format!("password hashing: {e}")))
}

fn verify_blocking(stored: &str, password: &[u8]) -> bool {
    match PasswordHash::new(stored) {
        // The parameters come from the stored PHC string.
        Ok(hash) => Argon2::default().verify_password(password, &hash).is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "a stored password hash is not a PHC string");
            false
        }
    }
}

impl Passwords {
    /// Hashing with the settings' argon2id parameters, at most the machine's parallelism
    /// at once. Computes the dummy hash (one hash's time, on this thread: call at start).
    pub fn new(settings: &AccountSettings) -> Result<Passwords, AccountError> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| AccountError::Internal(format!("argon2 parameters: {e}")))?;
        let mut random = [0u8; 32];
        rand::fill(&mut random);
        let dummy_hash = hash_blocking(params.clone(), &random)?;
        let max_concurrent = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Passwords {
            params,
            dummy_hash,
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
        })
    }

    /// How many hashes run at once at most.
    #[must_use]
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// The PHC string of `password` with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, AccountError> {
        let params = self.params.clone();
        let password = password.as_bytes().to_vec();
        self.run(move || hash_blocking(params, &password)).await?
    }

    /// Whether `password` matches `stored` (a PHC string); `None` (no such account, or one
    /// without a password) checks against the dummy hash and answers false.
    pub async fn verify(&self, stored: Option<&str>, password: &str) -> Result<bool, AccountError> {
        let (hash, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash.clone(), false),
        };
        let password = password.as_bytes().to_vec();
        let ok = self.run(move || verify_blocking(&hash, &password)).await?;
        Ok(ok && real)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AccountError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AccountError::Internal("password hashing stopped".into()))?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(|e| AccountError::Internal(format!("password hashing task: {e}")))
    }
}

/// One key's window: when it began and what it counted.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    count: u32,
}

/// Fixed windows per key, at most `max_keys` of them. See the module docs.
#[derive(Debug)]
struct WindowTable<K> {
    windows: HashMap<K, Window>,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone> WindowTable<K> {
    fn new(max_keys: usize) -> Self {
        WindowTable {
            windows: HashMap::new(),
            max_keys: max_keys.max(1),
        }
    }

    /// Seconds until `key`'s window ends when it already counted `limit` events in it.
    fn blocked(&self, key: &K, limit: u32, window: Duration, now: Instant) -> Option<u64> {
        let w = self.windows.get(key)?;
        let elapsed = now.saturating_duration_since(w.start);
        if elapsed >= window || w.count < limit {
            return None;
        }
        let left = window - elapsed;
        Some(left.as_secs() + u64::from(left.subsec_nanos() > 0))
    }

    /// Counts one event of `key`; the start of the window it counted in.
    fn count(&mut self, key: &K, window: Duration, now: Instant) -> Instant {
        if let Some(w) = self.windows.get_mut(key) {
            if now.saturating_duration_since(w.start) >= window {
                *w = Window {
                    start: now,
                    count: 1,
                };
            } else {
                w.count = w.count.saturating_add(1);
            }
            return w.start;
        }
        if self.windows.len() >= self.max_keys {
            self.evict(window, now);
        }
        self.windows.insert(
            key.clone(),
            Window {
                start: now,
                count: 1,
            },
        );
        now
    }

    /// Takes back one event of `key` counted in the window that began at `start` (nothing
    /// when that window has ended or was evicted since).
    fn uncount(&mut self, key: &K, start: Instant) {
        if let Some(w) = self.windows.get_mut(key)
            && w.start == start
        {
            w.count = w.count.saturating_sub(1);
            if w.count == 0 {
                self.windows.remove(key);
            }
        }
    }

    /// Drops expired windows, then, if still full, the oldest tenth.
    fn evict(&mut self, window: Duration, now: Instant) {
        self.windows
            .retain(|_, w| now.saturating_duration_since(w.start) < window);
        if self.windows.len() >= self.max_keys {
            let mut starts: Vec<Instant> = self.windows.values().map(|w| w.start).collect();
            let cut = (self.max_keys / 10).max(1).min(starts.len() - 1);
            let (_, &mut threshold, _) = starts.select_nth_unstable(cut);
            self.windows.retain(|_, w| w.start > threshold);
        }
    }

    fn len(&self) -> usize {
        self.windows.len()
    }
}

/// Login rate limits per account and per address. See the module docs.
#[derive(Debug)]
pub struct LoginLimiter {
    /// Failed logins an account may have per window (>= 1).
    failures_per_account: u32,
    /// Attempts an address may make per window (>= 1).
    attempts_per_address: u32,
    window: Duration,
    tables: Mutex<(WindowTable<String>, WindowTable<IpAddr>)>,
}

impl LoginLimiter {
    /// Limits of `settings` over one-minute windows, [`DEFAULT_MAX_LIMITER_KEYS`] per table.
    #[must_use]
    pub fn from_settings(settings: &AccountSettings) -> Self {
        Self::new(
            settings.failed_logins_per_account_per_min,
            settings.logins_per_address_per_min,
            Duration::from_secs(60),
            DEFAULT_MAX_LIMITER_KEYS,
        )
    }

    /// `failures_per_account` failed logins per account and `attempts_per_address`
    /// attempts per address per `window`, at most `max_keys` entries per table (tests use
    /// short windows and small tables).
    #[must_use]
    pub fn new(
        failures_per_account: u32,
        attempts_per_address: u32,
        window: Duration,
        max_keys: usize,
    ) -> Self {
        LoginLimiter {
            failures_per_account: failures_per_account.max(1),
            attempts_per_address: attempts_per_address.max(1),
            window,
            tables: Mutex::new((WindowTable::new(max_keys), WindowTable::new(max_keys))),
        }
    }

    /// The window length.
    #[must_use]
    pub fn window(&self) -> Duration {
        self.window
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, (WindowTable<String>, WindowTable<IpAddr>)> {
        // A panic while holding the lock cannot leave the counters inconsistent (each
        // update is one assignment), so a poisoned lock is used as is.
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts an attempt from `address`; refused when it made its limit in this window.
    pub fn attempt_from(&self, address: Option<IpAddr>) -> Result<(), AccountError> {
        let Some(address) = address else {
            return Ok(());
        };
        let now = Instant::now();
        let mut tables = self.tables();
        if let Some(retry_after_s) =
            tables
                .1
                .blocked(&address, self.attempts_per_address, self.window, now)
        {
            return Err(AccountError::RateLimited {
                scope: "from this address",
                retry_after_s,
            });
        }
        tables.1.count(&address, self.window, now);
        Ok(())
    }

    /// Reserves a login attempt of `account`: refused when the account's failed and
    /// in-flight attempts of this window reached the limit; otherwise counted as a failure
    /// at once, under the lock, until [`AccountAttempt::release`] gives it back. Dropping
    /// the reservation keeps it counted (a failed login, or one abandoned mid-check).
    pub fn reserve_account(&self, account: &str) -> Result<AccountAttempt<'_>, AccountError> {
        let now = Instant::now();
        let key = account.to_owned();
        let mut tables = self.tables();
        if let Some(retry_after_s) =
            tables
                .0
                .blocked(&key, self.failures_per_account, self.window, now)
        {
            return Err(AccountError::RateLimited {
                scope: "for this account",
                retry_after_s,
            });
        }
        let window_start = tables.0.count(&key, self.window, now);
        Ok(AccountAttempt {
            limiter: self,
            account: key,
            window_start,
        })
    }

    /// Refused when `account` had its limit of failures in this window (a check only: a
    /// login uses [`LoginLimiter::reserve_account`], which checks and counts at once).
    pub fn check_account(&self, account: &str) -> Result<(), AccountError> {
        let now = Instant::now();
        match self.tables().0.blocked(
            &account.to_owned(),
            self.failures_per_account,
            self.window,
            now,
        ) {
            Some(retry_after_s) => Err(AccountError::RateLimited {
                scope: "for this account",
                retry_after_s,
            }),
            None => Ok(()),
        }
    }

    /// Counts a failed login of `account`.
    pub fn failed(&self, account: &str) {
        let now = Instant::now();
        self.tables().0.count(&account.to_owned(), self.window, now);
    }

    /// Entries in the account and address tables.
    #[must_use]
    pub fn len(&self) -> (usize, usize) {
        let tables = self.tables();
        (tables.0.len(), tables.1.len())
    }

    /// Whether both tables are empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

/// A login attempt reserved by [`LoginLimiter::reserve_account`]: counted as a failure of
/// its account unless released.
#[derive(Debug)]
#[must_use = "dropping the reservation counts the attempt as a failure"]
pub struct AccountAttempt<'a> {
    limiter: &'a LoginLimiter,
    account: String,
    /// Start of the window the attempt was counted in.
    window_start: Instant,
}

impl AccountAttempt<'_> {
    /// The attempt did not fail on its credentials: it no longer counts.
    pub fn release(self) {
        self.limiter
            .tables()
            .0
            .uncount(&self.account, self.window_start);
    }
}

/// A new refresh token: its text (given to the client once) and its SHA-256 (stored).
#[must_use]
pub fn new_refresh_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
    rand::fill(&mut bytes);
    let text = URL_SAFE_NO_PAD.encode(bytes);
    (text, Sha256::digest(bytes).into())
}

/// The SHA-256 of the refresh token `text`; `None` when it is not [`REFRESH_TOKEN_BYTES`]
/// bytes of base64url (no such token can exist).
#[must_use]
pub fn refresh_token_digest(text: &str) -> Option<[u8; 32]> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    (bytes.len() == REFRESH_TOKEN_BYTES).then(|| Sha256::digest(&bytes).into())
}

/// A logged-in account: who, and its new refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Account id.
    pub account_id: u64,
    /// Account name (the access token's `sub`).
    pub name: String,
    /// The refresh token's text (base64url).
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in_s: u64,
}

/// Registration, login, refresh and logout. See the module docs.
#[derive(Debug)]
pub struct Accounts {
    store: Store,
    settings: AccountSettings,
    dev: DevAccounts,
    passwords: Passwords,
    limiter: LoginLimiter,
    /// A gateway of a fleet: the limits every gateway shares ([`crate::fleet_limits`]).
    fleet_limits: Option<crate::fleet_limits::FleetLimits>,
}

impl Accounts {
    /// Accounts over `store` with `settings`, the development accounts `dev` and `limiter`
    /// (usually [`LoginLimiter::from_settings`]). Computes the dummy hash (one hash's time).
    pub fn new(
        store: Store,
        settings: AccountSettings,
        dev: DevAccounts,
        limiter: LoginLimiter,
    ) -> Result<Accounts, AccountError> {
        let passwords = Passwords::new(&settings)?;
        Ok(Accounts {
            store,
            settings,
            dev,
            passwords,
            limiter,
            fleet_limits: None,
        })
    }

    /// Also applies the limits every gateway of the fleet shares.
    #[must_use]
    pub fn with_fleet_limits(mut self, limits: crate::fleet_limits::FleetLimits) -> Self {
        self.fleet_limits = Some(limits);
        self
    }

    /// Counts an attempt from `address` here and in the fleet.
    async fn attempt_from(&self, address: Option<IpAddr>) -> Result<(), AccountError> {
        self.limiter.attempt_from(address)?;
        if let Some(fleet) = &self.fleet_limits {
            fleet.attempt_from(address).await?;
        }
        Ok(())
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &AccountSettings {
        &self.settings
    }

    /// The rate limiter.
    #[must_use]
    pub fn limiter(&self) -> &LoginLimiter {
        &self.limiter
    }

    /// Creates the account `name` with `password` (request from `address`); its id.
    pub async fn register(
        &self,
        name: &str,
        password: &str,
        address: Option<IpAddr>,
        now_unix_s: u64,
    ) -> Result<u64, AccountError> {
        if !self.settings.registration_open {
            return Err(AccountError::RegistrationClosed);
        }
        check_name(name)?;
        check_new_password(password)?;
        self.attempt_from(address).await?;
        let hash = self.passwords.hash(password).await?;
        let id = self.store.create_account(name, &hash, now_unix_s).await?;
        tracing::info!(account = name, account_id = id, "account created");
        Ok(id)
    }

    /// Checks `name` and `password` (request from `address`) and issues a refresh token.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        address: Option<IpAddr>,
        now_unix_s: u64,
    ) -> Result<Session, AccountError> {
        if name.is_empty() || password.is_empty() {
            return Err(AccountError::BadRequest(
                "username and password must not be empty".into(),
            ));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(AccountError::BadRequest(format!(
                "password longer than {MAX_PASSWORD_BYTES} bytes"
            )));
        }
        check_name(name)?;
        self.attempt_from(address).await?;
        // The fleet's reservation first: a refusal here then counts nowhere.
        let fleet_attempt = match &self.fleet_limits {
            Some(fleet) => Some(fleet.reserve_account(name).await?),
            None => None,
        };
        let attempt = match self.limiter.reserve_account(name) {
            Ok(attempt) => attempt,
            Err(e) => {
                if let (Some(fleet), Some(reserved)) = (&self.fleet_limits, fleet_attempt) {
                    fleet.release(reserved).await;
                }
                return Err(e);
            }
        };
        let outcome = self.check_credentials(name, password, now_unix_s).await;
        let failed_on_credentials = matches!(outcome, Ok(None));
        if !failed_on_credentials
            && let (Some(fleet), Some(reserved)) = (&self.fleet_limits, fleet_attempt)
        {
            fleet.release(reserved).await;
        }
        match outcome {
            Ok(Some(account_id)) => {
                attempt.release();
                self.open_session(account_id, name, now_unix_s).await
            }
            Ok(None) => {
                // Dropping the reservations counts the failure.
                drop(attempt);
                Err(AccountError::BadCredentials)
            }
            Err(e) => {
                // Not the credentials' fault (e.g. the database is unavailable).
                attempt.release();
                Err(e)
            }
        }
    }

    /// The account id when `password` is `name`'s (or a development account's), `None`
    /// when it is not.
    async fn check_credentials(
        &self,
        name: &str,
        password: &str,
        now_unix_s: u64,
    ) -> Result<Option<u64>, AccountError> {
        let row = self.store.account_by_name(name).await?;
        let with_hash = row.as_ref().filter(|r| !r.password_hash.is_empty());
        let account_id = match with_hash {
            Some(row) => {
                if self
                    .passwords
                    .verify(Some(&row.password_hash), password)
                    .await?
                {
                    Some(row.account_id)
                } else {
                    None
                }
            }
            None if self.dev.check(name, password) => match &row {
                Some(row) => Some(row.account_id),
                None => Some(self.store.ensure_account(name, now_unix_s).await?),
            },
            None => {
                // Takes as long as a real check.
                self.passwords.verify(None, password).await?;
                None
            }
        };
        Ok(account_id)
    }

    /// Issues a refresh token for `account_id` (`name`), which just logged in.
    async fn open_session(
        &self,
        account_id: u64,
        name: &str,
        now_unix_s: u64,
    ) -> Result<Session, AccountError> {
        let (refresh_token, digest) = new_refresh_token();
        let ttl_s = self.settings.refresh_token_ttl_s;
        self.store
            .insert_refresh_token(
                account_id,
                &digest,
                now_unix_s.saturating_add(ttl_s),
                now_unix_s,
            )
            .await?;
        Ok(Session {
            account_id,
            name: name.to_owned(),
            refresh_token,
            refresh_expires_in_s: ttl_s,
        })
    }

    /// Spends the refresh token `text` and issues its successor.
    pub async fn refresh(&self, text: &str, now_unix_s: u64) -> Result<Session, AccountError> {
        let Some(old) = refresh_token_digest(text) else {
            return Err(AccountError::RefreshUnknown);
        };
        let (refresh_token, new) = new_refresh_token();
        let ttl_s = self.settings.refresh_token_ttl_s;
        match self
            .store
            .rotate_refresh_token(&old, &new, now_unix_s.saturating_add(ttl_s), now_unix_s)
            .await?
        {
            RefreshUse::Rotated { account_id, name } => Ok(Session {
                account_id,
                name,
                refresh_token,
                refresh_expires_in_s: ttl_s,
            }),
            RefreshUse::Unknown => Err(AccountError::RefreshUnknown),
            RefreshUse::Expired => Err(AccountError::RefreshExpired),
            RefreshUse::Revoked { account_id } => {
                tracing::warn!(
                    account_id,
                    "a revoked refresh token was presented: every refresh token of the account is revoked"
                );
                Err(AccountError::RefreshRevoked)
            }
        }
    }

    /// Revokes the refresh token `text`; false when it was not a live token.
    pub async fn logout(&self, text: &str) -> Result<bool, AccountError> {
        match refresh_token_digest(text) {
            Some(digest) => Ok(self.store.revoke_refresh_token(&digest).await?),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_32_random_bytes_and_only_their_digest_matches() {
        let (a, digest_a) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "32 bytes of base64url without padding");
        assert_eq!(refresh_token_digest(&a), Some(digest_a));
        assert_eq!(refresh_token_digest("short"), None);
        assert_eq!(refresh_token_digest("not base64 at all!"), None);
    }

    #[test]
    fn new_passwords_are_8_to_128_bytes() {
        assert!(check_new_password("1234567").is_err());
        assert!(check_new_password("12345678").is_ok());
        assert!(check_new_password(&"x".repeat(128)).is_ok());
        let err = check_new_password(&"x".repeat(129)).unwrap_err();
        assert_eq!(err.kind(), "bad_request");
        assert!(err.to_string().contains("129"), "{err}");
    }

    #[test]
    fn the_limiter_refuses_over_the_limit_until_the_window_ends() {
        let limiter = LoginLimiter::new(2, 3, Duration::from_millis(300), 100);
        let address = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..3 {
            limiter.attempt_from(address).unwrap();
        }
        let err = limiter.attempt_from(address).unwrap_err();
        assert!(matches!(
            err,
            AccountError::RateLimited {
                retry_after_s: 1,
                ..
            }
        ));
        // Another address is not affected.
        limiter
            .attempt_from(Some(IpAddr::from([10, 0, 0, 2])))
            .unwrap();
        limiter.failed("alice");
        limiter.check_account("alice").unwrap();
        limiter.failed("alice");
        assert_eq!(
            limiter.check_account("alice").unwrap_err().kind(),
            "rate_limited"
        );
        limiter.check_account("bob").unwrap();
        std::thread::sleep(Duration::from_millis(350));
        limiter.check_account("alice").unwrap();
        limiter.attempt_from(address).unwrap();
    }

    #[test]
    fn concurrent_attempts_cannot_pass_the_account_limit() {
        let limiter = Arc::new(LoginLimiter::new(3, 1000, Duration::from_secs(60), 100));
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let limiter = limiter.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    // Every attempt is in flight (not yet failed) when the others check.
                    let attempt = limiter.reserve_account("alice");
                    barrier.wait();
                    attempt.is_ok()
                })
            })
            .collect();
        let admitted = threads
            .into_iter()
            .map(|t| t.join().expect("no panic"))
            .filter(|&ok| ok)
            .count();
        assert_eq!(admitted, 3, "at most the limit of attempts in flight");
        // The three were dropped unreleased: they count as failures.
        assert_eq!(
            limiter.reserve_account("alice").unwrap_err().kind(),
            "rate_limited"
        );
        // A released attempt gives its slot back.
        let other = LoginLimiter::new(2, 1000, Duration::from_secs(60), 100);
        let first = other.reserve_account("bob").unwrap();
        let second = other.reserve_account("bob").unwrap();
        assert!(other.reserve_account("bob").is_err(), "two in flight");
        first.release();
        let third = other.reserve_account("bob").unwrap();
        drop(second);
        drop(third);
        assert!(other.reserve_account("bob").is_err(), "two failed");
        // Released attempts leave no entry behind.
        let clean = LoginLimiter::new(2, 1000, Duration::from_secs(60), 100);
        clean.reserve_account("carol").unwrap().release();
        assert!(clean.is_empty());
    }

    #[test]
    fn the_limiter_tables_stay_bounded() {
        let limiter = LoginLimiter::new(5, 5, Duration::from_secs(60), 100);
        for i in 0..10_000u32 {
            limiter.failed(&format!("user{i}"));
            limiter
                .attempt_from(Some(IpAddr::from(i.to_be_bytes())))
                .unwrap();
            let (accounts, addresses) = limiter.len();
            assert!(
                accounts <= 100 && addresses <= 100,
                "{accounts} {addresses}"
            );
        }
        // The newest entries survive eviction.
        for _ in 0..4 {
            limiter.failed("user9999");
        }
        assert!(limiter.check_account("user9999").is_err());
    }

    #[tokio::test]
    async fn passwords_hash_and_verify_with_the_settings_parameters() {
        let settings = AccountSettings {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..AccountSettings::default()
        };
        let passwords = Passwords::new(&settings).unwrap();
        let hash = passwords.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(
            passwords
                .verify(Some(&hash), "correct horse")
                .await
                .unwrap()
        );
        assert!(!passwords.verify(Some(&hash), "wrong horse").await.unwrap());
        // No hash: the dummy is checked and the answer is no, whatever the password.
        assert!(!passwords.verify(None, "correct horse").await.unwrap());
        assert!(!passwords.verify(Some("not a phc"), "x").await.unwrap());
    }
}
