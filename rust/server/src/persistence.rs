//! Write-behind saving: the [`Saver`] the zone threads load characters from and offer
//! snapshots to ([`CharacterStore`]), writing them to the [`Store`] off the tick.
//!
//! - [`CharacterStore::save`] never waits: under a short lock it merges the batch into the
//!   pending records (coalesced by character id, the highest version kept) and wakes the
//!   saver task. A `Periodic` batch is returned when the backlog (pending plus in-flight
//!   records) is at [`SaverConfig::max_backlog_records`] (the zone keeps the characters
//!   dirty and offers them again); one that only replaces pending characters is always
//!   accepted, and one bigger than the whole bound is accepted into an empty backlog.
//!   `Now` batches (logout, transfer, shutdown: few, one per leaving character or
//!   transfer) are ALWAYS accepted, past the bound, so a long outage never turns a
//!   character's last save into a refused one: it ends in the database or, at
//!   [`Saver::shutdown`], in the unsaved file. Only a closed saver (after shutdown) refuses.
//! - The saver task flushes `Periodic` records at most every [`PERIODIC_FLUSH_INTERVAL`] and
//!   `Now` batches at once. Each flush is ONE [`Store::save_characters`] transaction of
//!   everything pending, so the two characters of a transfer batch commit together; its
//!   `committed` sender is answered after the commit. The version rule is per row, so a
//!   `committed` unit one of whose records is stale (the store already held that version
//!   or a newer one, e.g. from a newer session of the character) is only partly written:
//!   its sender is answered `Err` naming the stale characters and the unit is logged at
//!   error; it is NOT rolled back (the other record is newer than the stored one, so
//!   keeping it loses nothing; all-or-nothing would need the version check inside
//!   `Store::save_characters`, not done).
//! - Outage (a retryable error): everything is kept and retried with backoff
//!   ([`RETRY_FIRST`] doubling to [`RETRY_MAX`]); logged at error on the first failure and
//!   then every [`OUTAGE_LOG_INTERVAL`] with the backlog size, at warn on recovery with the
//!   outage's length. Saves keep being accepted up to the bound.
//! - Refusal (a non-retryable error, e.g. a record that does not fit a column): the flush is
//!   retried per unit (each `committed` batch's characters together, every other character
//!   alone) so one bad record does not hold back the others; a unit that is refused again is
//!   logged at error naming its characters and appended to `<data_dir>/`[`UNSAVED_FILE`]
//!   (one JSON record per line), so nothing is dropped silently.
//! - [`Saver::shutdown`] flushes everything pending (retrying until the deadline) and
//!   appends what could not be saved to the unsaved file. [`Saver::start`] offers the
//!   records of an unsaved file again (versions make that safe): the file is first renamed
//!   to [`REPLAYING_FILE`], and renamed `unsaved-characters.replayed-<unix_s>.jsonl` once
//!   all its records are resolved.
//! - [`CharacterStore::load`]: see [`Saver`]'s implementation; a pending or in-flight
//!   record newer than the stored one is returned (a quick re-login sees its last state).
//!   The newest pending/in-flight record is taken both before and after the database read
//!   and the highest version of the three wins, so a flush committing during the read
//!   (old row read, nothing pending any more) cannot hand out the old record.
//! - A re-login while the old session still plays (in any zone of this server) is loaded
//!   only after that session's zone closed it and offered its logout save (see the zone's
//!   `saving` module, "Duplicate logins"), so the new session starts from its last state.
//!   In a fleet the old session may be in another zone process with its own saver: there
//!   the login waits until that process committed the logout save (account presence,
//!   `RELAY_FORMAT.md` section 6), and loads it from the database.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mmo_core::control::DisconnectReason;
use mmo_core::persist::{CharacterRecord, MAX_CHARACTER_NAME_BYTES};
use mmo_net::auth::{LoginGrant, LoginRefusal};
use mmo_net::persist::{CharacterStore, SaveBatch, SaveUrgency};
use tokio::sync::{Notify, oneshot};

use crate::storage::characters::{NewCharacter, SaveReport};
use crate::storage::{Store, StoreError};

/// Gauge: character records waiting to be written (pending plus in flight).
pub const BACKLOG_RECORDS: &str = "mmo_persistence_backlog_records";
/// Histogram: seconds per `save_characters` transaction (label `backend`).
pub const FLUSH_SECONDS: &str = "mmo_persistence_flush_seconds";
/// Counter: records written.
pub const RECORDS_SAVED_TOTAL: &str = "mmo_persistence_records_saved_total";
/// Counter: records skipped because the store held the same or a newer version.
pub const STALE_TOTAL: &str = "mmo_persistence_stale_total";
/// Counter: failed flushes and lost characters (label `kind`: a [`StoreError::kind`], or
/// `missing` for records of deleted characters).
pub const ERRORS_TOTAL: &str = "mmo_persistence_errors_total";

/// Where records that could not be saved are kept, in the data directory.
pub const UNSAVED_FILE: &str = "unsaved-characters.jsonl";
/// The unsaved file while its records are offered again after a start.
pub const REPLAYING_FILE: &str = "unsaved-characters.replaying.jsonl";
/// Shortest time between two flushes of periodic records.
pub const PERIODIC_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// First wait after a failed flush.
pub const RETRY_FIRST: Duration = Duration::from_millis(500);
/// Longest wait between retries.
pub const RETRY_MAX: Duration = Duration::from_secs(10);
/// How often an ongoing outage is logged again.
pub const OUTAGE_LOG_INTERVAL: Duration = Duration::from_secs(30);
/// Names tried for an account's default character before giving up.
const DEFAULT_NAME_ATTEMPTS: u32 = 50;

/// How the saver runs.
#[derive(Clone, Debug)]
pub struct SaverConfig {
    /// Most records waiting (pending plus in flight) before saves are refused.
    pub max_backlog_records: usize,
    /// What an account's default character starts as (`name` is unused: it is derived
    /// from the account name; the position and zone are `spawn`'s for the account).
    pub template: NewCharacter,
    /// Where new characters start.
    pub spawn: crate::spawn_area::SpawnArea,
    /// Most characters per account (for the default character).
    pub max_characters_per_account: u32,
    /// Where the unsaved file lives.
    pub data_dir: PathBuf,
}

/// What [`Saver::shutdown`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Records written during the shutdown.
    pub written: usize,
    /// Records skipped as stale during the shutdown.
    pub stale: usize,
    /// Records of deleted characters.
    pub missing: usize,
    /// Records that could not be saved and went to the unsaved file.
    pub unsaved: usize,
    /// The unsaved file, when records were written to it.
    pub unsaved_path: Option<PathBuf>,
}

/// The write-behind saver (cheap to clone). See the module docs.
#[derive(Clone)]
pub struct Saver {
    shared: Arc<Shared>,
}

impl fmt::Debug for Saver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Saver")
            .field("backend", &self.shared.store.backend())
            .field("backlog_records", &self.backlog_records())
            .finish_non_exhaustive()
    }
}

/// A `committed` sender and the characters (id, version) it waits for.
struct Waiter {
    ids: Vec<u64>,
    tx: oneshot::Sender<Result<(), String>>,
}

/// What the zone threads and the task share.
#[derive(Default)]
struct State {
    /// Records not yet taken by a flush, by character id (highest version).
    pending: HashMap<u64, CharacterRecord>,
    /// A `Now` batch is pending.
    urgent: bool,
    /// Records of the flush under way (for loads and the backlog count).
    in_flight: Arc<Vec<CharacterRecord>>,
    /// Waiters of the pending records.
    waiters: Vec<Waiter>,
    /// Set by [`Saver::shutdown`]: the reply channel and the deadline.
    shutdown: Option<(oneshot::Sender<ShutdownReport>, Instant)>,
    /// No saves accepted, no loads served (shutdown requested).
    closed: bool,
}

impl State {
    fn backlog(&self) -> usize {
        self.pending.len() + self.in_flight.len()
    }

    /// Merges `record`, keeping the highest version of its character.
    fn merge(&mut self, record: CharacterRecord) {
        match self.pending.get(&record.character_id) {
            Some(kept) if kept.version >= record.version => {}
            _ => {
                self.pending.insert(record.character_id, record);
            }
        }
    }
}

struct Shared {
    store: Store,
    config: SaverConfig,
    runtime: tokio::runtime::Handle,
    state: Mutex<State>,
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data that is still consistent
        // (every critical section only moves records between maps).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn unsaved_path(&self) -> PathBuf {
        self.config.data_dir.join(UNSAVED_FILE)
    }
}

fn publish_backlog(state: &State) {
    #[allow(clippy::cast_precision_loss)] // A gauge; far below 2^52.
    metrics::gauge!(BACKLOG_RECORDS).set(state.backlog() as f64);
}

fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn unavailable(message: impl Into<String>) -> LoginRefusal {
    LoginRefusal {
        reason: DisconnectReason::ServiceUnavailable,
        message: message.into(),
    }
}

/// A refusal for a failed query during a load.
fn load_refusal(account: &str, e: &StoreError) -> LoginRefusal {
    if e.is_retryable() {
        tracing::warn!(account, error = %e, "character load failed: storage unavailable");
        unavailable("character storage is unavailable; try again later")
    } else {
        // The details stay in the log: database text is not for the game client.
        tracing::error!(account, error = %e, "character load failed");
        unavailable("your character cannot be loaded right now; try again later")
    }
}

/// The `attempt`-th name tried for `account`'s default character: its ASCII letters and
/// digits, starting with a letter (`C` prepended otherwise), at least 2 and at most
/// [`MAX_CHARACTER_NAME_BYTES`] bytes, digits appended from the second attempt on.
#[must_use]
pub fn default_character_name(account: &str, attempt: u32) -> String {
    let mut base: String = account
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    if !base.starts_with(|c: char| c.is_ascii_alphabetic()) {
        base.insert(0, 'C');
    }
    let suffix = if attempt == 0 {
        String::new()
    } else {
        (attempt + 1).to_string()
    };
    base.truncate(MAX_CHARACTER_NAME_BYTES - suffix.len());
    base.push_str(&suffix);
    while base.len() < 2 {
        base.push('0');
    }
    base
}

/// Appends `records` to the unsaved file (one JSON record per line). On failure the
/// records are logged in full at error level, the last place they can go.
fn append_unsaved(path: &Path, records: &[CharacterRecord]) -> bool {
    let lines: String = records
        .iter()
        .filter_map(|r| serde_json::to_string(r).ok())
        .map(|line| line + "\n")
        .collect();
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| {
            file.write_all(lines.as_bytes())?;
            file.sync_all()
        });
    match written {
        Ok(()) => {
            // Also in the log: where the data directory does not outlive the process (a
            // container's scratch volume), the log collector keeps them.
            tracing::error!(path = %path.display(), records = %lines,
                "characters written to the unsaved-characters file; the records follow");
            true
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, records = %lines,
                "cannot write the unsaved-characters file; the records follow");
            false
        }
    }
}

/// Moves `<dir>/unsaved-characters.jsonl` into the replaying file and reads the latter.
fn take_replay(data_dir: &Path) -> Vec<CharacterRecord> {
    let unsaved = data_dir.join(UNSAVED_FILE);
    let replaying = data_dir.join(REPLAYING_FILE);
    if unsaved.exists() {
        let moved = if replaying.exists() {
            std::fs::read(&unsaved)
                .and_then(|bytes| {
                    let mut file = std::fs::OpenOptions::new().append(true).open(&replaying)?;
                    file.write_all(&bytes)?;
                    file.sync_all()
                })
                .and_then(|()| std::fs::remove_file(&unsaved))
        } else {
            std::fs::rename(&unsaved, &replaying)
        };
        if let Err(e) = moved {
            tracing::error!(path = %unsaved.display(), error = %e,
                "cannot move the unsaved-characters file aside; its records are not offered again");
            return Vec::new();
        }
    }
    let text = match std::fs::read_to_string(&replaying) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::error!(path = %replaying.display(), error = %e, "cannot read unsaved characters");
            return Vec::new();
        }
    };
    let mut records = Vec::new();
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<CharacterRecord>(line) {
            Ok(record) => records.push(record),
            Err(e) => tracing::error!(path = %replaying.display(), line = index + 1, error = %e,
                "unreadable unsaved character record; it stays in the file"),
        }
    }
    tracing::warn!(records = records.len(), path = %replaying.display(),
        "offering characters that could not be saved before again");
    records
}

impl Saver {
    /// Starts the saver task on the current tokio runtime, offering the records of an
    /// unsaved file in `config.data_dir` again first.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[must_use]
    pub fn start(store: Store, config: SaverConfig) -> Saver {
        let replay = take_replay(&config.data_dir);
        let mut state = State::default();
        let replay_ids: HashSet<u64> = replay.iter().map(|r| r.character_id).collect();
        for record in replay {
            state.merge(record);
        }
        state.urgent = !state.pending.is_empty();
        publish_backlog(&state);
        let shared = Arc::new(Shared {
            store,
            config,
            runtime: tokio::runtime::Handle::current(),
            state: Mutex::new(state),
            wake: Notify::new(),
        });
        let task = Task {
            shared: shared.clone(),
            replay: (!replay_ids.is_empty()).then_some(replay_ids),
            outage: None,
            totals: ShutdownReport::default(),
            shutting_down: false,
        };
        shared.runtime.spawn(task.run());
        Saver { shared }
    }

    /// Records waiting to be written (pending plus in flight).
    #[must_use]
    pub fn backlog_records(&self) -> usize {
        self.shared.lock().backlog()
    }

    /// Stops accepting saves and loads, flushes everything pending (retrying until
    /// `deadline` from now), appends what could not be saved to the unsaved file, and
    /// reports. Call after the zones have offered their last batches. The deadline is
    /// checked between attempts: an attempt under way when it passes finishes first (during
    /// an outage that is at most the store's connection wait,
    /// [`crate::storage::ACQUIRE_TIMEOUT`]).
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            if state.closed {
                return ShutdownReport::default();
            }
            state.closed = true;
            state.shutdown = Some((tx, Instant::now() + deadline));
        }
        self.shared.wake.notify_one();
        rx.await.unwrap_or_default()
    }

    async fn load_account(&self, grant: LoginGrant) -> Result<CharacterRecord, LoginRefusal> {
        let shared = &self.shared;
        if shared.lock().closed {
            return Err(unavailable("the server is shutting down"));
        }
        let account = &grant.account;
        let row = shared
            .store
            .account_by_name(account)
            .await
            .map_err(|e| load_refusal(account, &e))?
            .ok_or_else(|| LoginRefusal::bad_token("unknown account"))?;
        let character_id = match grant.character_id {
            Some(id) => id,
            None => match shared
                .store
                .first_character_id(row.account_id)
                .await
                .map_err(|e| load_refusal(account, &e))?
            {
                Some(id) => id,
                None => return self.create_default(row.account_id, account).await,
            },
        };
        // Taken before the read too: a flush committing during the read leaves the old
        // row in `stored` and nothing newer pending afterwards.
        let before = self.newest_unsaved(character_id);
        let stored = shared
            .store
            .load_character(character_id)
            .await
            .map_err(|e| load_refusal(account, &e))?
            .ok_or_else(|| {
                LoginRefusal::bad_token(format!("character {character_id} does not exist"))
            })?;
        if stored.account_id != row.account_id {
            return Err(LoginRefusal::bad_token(format!(
                "character {character_id} does not belong to account {account}"
            )));
        }
        let after = self.newest_unsaved(character_id);
        let mut best = stored;
        for record in [before, after].into_iter().flatten() {
            if record.version > best.version {
                best = record;
            }
        }
        Ok(best)
    }

    /// The highest-version pending or in-flight record of `id`.
    fn newest_unsaved(&self, id: u64) -> Option<CharacterRecord> {
        let state = self.shared.lock();
        state
            .pending
            .get(&id)
            .into_iter()
            .chain(state.in_flight.iter().filter(|r| r.character_id == id))
            .max_by_key(|r| r.version)
            .cloned()
    }

    async fn create_default(
        &self,
        account_id: u64,
        account: &str,
    ) -> Result<CharacterRecord, LoginRefusal> {
        let config = &self.shared.config;
        let mut new = config.template.clone();
        config.spawn.place(&mut new, account);
        for attempt in 0..DEFAULT_NAME_ATTEMPTS {
            new.name = default_character_name(account, attempt);
            match self
                .shared
                .store
                .create_character(
                    account_id,
                    &new,
                    config.max_characters_per_account,
                    now_unix_s(),
                )
                .await
            {
                Ok(record) => {
                    tracing::info!(account, character_id = record.character_id,
                        name = %record.name, "created the account's default character");
                    return Ok(record);
                }
                Err(StoreError::Conflict(_)) => {}
                Err(StoreError::LimitReached(m)) => return Err(LoginRefusal::bad_token(m)),
                Err(e) => return Err(load_refusal(account, &e)),
            }
        }
        Err(LoginRefusal::bad_token(format!(
            "no free character name derived from account {account}"
        )))
    }
}

impl CharacterStore for Saver {
    /// Account by name (`BadToken` "unknown account" if none); with a character id: that
    /// character if the account owns it, else `BadToken`; without: the account's first
    /// character, created from the template when it has none. Storage outage or shutdown:
    /// `ServiceUnavailable`.
    fn load(&self, grant: &LoginGrant) -> oneshot::Receiver<Result<CharacterRecord, LoginRefusal>> {
        let (tx, rx) = oneshot::channel();
        let saver = self.clone();
        let grant = grant.clone();
        self.shared.runtime.spawn(async move {
            let _ = tx.send(saver.load_account(grant).await);
        });
        rx
    }

    fn save(&self, batch: SaveBatch) -> Result<(), SaveBatch> {
        let urgent = batch.urgency == SaveUrgency::Now && !batch.records.is_empty();
        {
            let mut state = self.shared.lock();
            if state.closed {
                return Err(batch);
            }
            let backlog = state.backlog();
            let new_ids = batch
                .records
                .iter()
                .filter(|r| !state.pending.contains_key(&r.character_id))
                .count();
            // The bound is for periodic saves only: `Now` batches are never refused.
            if batch.urgency == SaveUrgency::Periodic
                && new_ids > 0
                && backlog > 0
                && backlog + new_ids > self.shared.config.max_backlog_records
            {
                return Err(batch);
            }
            let SaveBatch {
                records, committed, ..
            } = batch;
            let ids: Vec<u64> = records.iter().map(|r| r.character_id).collect();
            for record in records {
                state.merge(record);
            }
            if let Some(tx) = committed {
                if ids.is_empty() {
                    let _ = tx.send(Ok(()));
                } else {
                    state.waiters.push(Waiter { ids, tx });
                }
            }
            state.urgent |= urgent;
            publish_backlog(&state);
        }
        self.shared.wake.notify_one();
        Ok(())
    }
}

/// An outage under way.
struct Outage {
    since: Instant,
    backoff: Duration,
    retry_at: Instant,
    last_log: Instant,
}

/// How a flush ended.
enum Flushed {
    /// Everything taken was resolved (written, stale, missing or sent to the unsaved file).
    Done,
    /// A retryable error; the records are pending again.
    Retry(StoreError),
}

/// The saver task's own state.
struct Task {
    shared: Arc<Shared>,
    /// Ids offered again from the unsaved file, until all are resolved.
    replay: Option<HashSet<u64>>,
    outage: Option<Outage>,
    /// Counts since shutdown was requested (the report).
    totals: ShutdownReport,
    /// Shutdown was seen (the totals were reset).
    shutting_down: bool,
}

impl Task {
    async fn run(mut self) {
        let mut last_flush = Instant::now();
        loop {
            let (has_pending, urgent, deadline) = {
                let state = self.shared.lock();
                (
                    !state.pending.is_empty(),
                    state.urgent,
                    state.shutdown.as_ref().map(|(_, at)| *at),
                )
            };
            let now = Instant::now();
            if let Some(deadline) = deadline {
                if !self.shutting_down {
                    self.shutting_down = true;
                    self.totals = ShutdownReport::default();
                }
                if !has_pending || now >= deadline {
                    self.finish();
                    return;
                }
                match &self.outage {
                    Some(o) if now < o.retry_at => {
                        tokio::time::sleep_until(o.retry_at.min(deadline).into()).await;
                    }
                    _ => self.flush().await,
                }
                continue;
            }
            let due = match &self.outage {
                Some(o) => Some(o.retry_at),
                None if urgent => Some(now),
                None if has_pending => Some(last_flush + PERIODIC_FLUSH_INTERVAL),
                None => None,
            };
            match due {
                Some(at) if at <= now && has_pending => {
                    last_flush = now;
                    self.flush().await;
                }
                Some(at) if at > now => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = self.shared.wake.notified() => {}
                    }
                }
                _ => self.shared.wake.notified().await,
            }
        }
    }

    /// One flush of everything pending; updates the outage state.
    async fn flush(&mut self) {
        let (records, waiters) = {
            let mut state = self.shared.lock();
            let records: Vec<CharacterRecord> = state.pending.drain().map(|(_, r)| r).collect();
            state.in_flight = Arc::new(records);
            state.urgent = false;
            (state.in_flight.clone(), std::mem::take(&mut state.waiters))
        };
        match self.save_all(records, waiters).await {
            Flushed::Done => {
                if let Some(outage) = self.outage.take() {
                    tracing::warn!(
                        outage_s = outage.since.elapsed().as_secs_f64(),
                        "character storage recovered; the backlog is saved"
                    );
                }
            }
            Flushed::Retry(error) => {
                let backlog = self.shared.lock().backlog();
                let now = Instant::now();
                match &mut self.outage {
                    None => {
                        tracing::error!(%error, backlog_records = backlog,
                            "cannot save characters: storage unavailable; keeping them and retrying");
                        self.outage = Some(Outage {
                            since: now,
                            backoff: RETRY_FIRST,
                            retry_at: now + RETRY_FIRST,
                            last_log: now,
                        });
                    }
                    Some(outage) => {
                        if now.duration_since(outage.last_log) >= OUTAGE_LOG_INTERVAL {
                            tracing::error!(%error, backlog_records = backlog,
                                outage_s = outage.since.elapsed().as_secs_f64(),
                                "character storage still unavailable");
                            outage.last_log = now;
                        }
                        outage.backoff = (outage.backoff * 2).min(RETRY_MAX);
                        outage.retry_at = now + outage.backoff;
                    }
                }
            }
        }
        let state = self.shared.lock();
        publish_backlog(&state);
        drop(state);
        self.check_replay();
    }

    /// Saves `records` in one transaction; on a refusal, unit by unit.
    async fn save_all(
        &mut self,
        records: Arc<Vec<CharacterRecord>>,
        waiters: Vec<Waiter>,
    ) -> Flushed {
        match self.save_once(&records).await {
            Ok(report) => {
                self.resolved(&report, waiters);
                self.shared.lock().in_flight = Arc::new(Vec::new());
                Flushed::Done
            }
            Err(e) if e.is_retryable() => {
                self.requeue(Arc::unwrap_or_clone(records), waiters);
                Flushed::Retry(e)
            }
            Err(e) => {
                tracing::warn!(error = %e, records = records.len(),
                    "a character save was refused; saving unit by unit to find the record");
                let records = Arc::unwrap_or_clone(records);
                self.save_units(records, waiters).await
            }
        }
    }

    async fn save_once(&self, records: &[CharacterRecord]) -> Result<SaveReport, StoreError> {
        let started = Instant::now();
        let result = self
            .shared
            .store
            .save_characters(records, now_unix_s())
            .await;
        let backend = self.shared.store.backend().as_str();
        metrics::histogram!(FLUSH_SECONDS, "backend" => backend)
            .record(started.elapsed().as_secs_f64());
        match &result {
            Ok(report) => {
                metrics::counter!(RECORDS_SAVED_TOTAL).increment(report.written as u64);
                metrics::counter!(STALE_TOTAL).increment(report.stale.len() as u64);
                if !report.missing.is_empty() {
                    metrics::counter!(ERRORS_TOTAL, "kind" => "missing")
                        .increment(report.missing.len() as u64);
                    tracing::warn!(characters = ?report.missing,
                        "records of deleted characters were not saved");
                }
            }
            Err(e) => metrics::counter!(ERRORS_TOTAL, "kind" => e.kind()).increment(1),
        }
        result
    }

    /// After a refused flush: each waiter's characters together, the others alone.
    async fn save_units(&mut self, records: Vec<CharacterRecord>, waiters: Vec<Waiter>) -> Flushed {
        // Unit label per character; waiters sharing a character share a unit.
        let mut unit_of: HashMap<u64, usize> = HashMap::new();
        let mut next_unit = 0;
        for waiter in &waiters {
            let joined: HashSet<usize> = waiter
                .ids
                .iter()
                .filter_map(|id| unit_of.get(id).copied())
                .collect();
            let unit = next_unit;
            next_unit += 1;
            for label in unit_of.values_mut() {
                if joined.contains(label) {
                    *label = unit;
                }
            }
            for id in &waiter.ids {
                unit_of.insert(*id, unit);
            }
        }
        let mut units: HashMap<usize, (Vec<CharacterRecord>, Vec<Waiter>)> = HashMap::new();
        for record in records {
            let unit = *unit_of.entry(record.character_id).or_insert_with(|| {
                next_unit += 1;
                next_unit
            });
            units.entry(unit).or_default().0.push(record);
        }
        for waiter in waiters {
            let unit = waiter.ids.first().and_then(|id| unit_of.get(id)).copied();
            match unit.and_then(|u| units.get_mut(&u)) {
                Some(entry) => entry.1.push(waiter),
                None => {
                    let _ = waiter.tx.send(Ok(()));
                }
            }
        }
        let mut units: Vec<(Vec<CharacterRecord>, Vec<Waiter>)> = units.into_values().collect();
        while let Some((records, waiters)) = units.pop() {
            match self.save_once(&records).await {
                Ok(report) => self.resolved(&report, waiters),
                Err(e) if e.is_retryable() => {
                    self.requeue(records, waiters);
                    for (records, waiters) in units {
                        self.requeue(records, waiters);
                    }
                    return Flushed::Retry(e);
                }
                Err(e) => {
                    let ids: Vec<u64> = records.iter().map(|r| r.character_id).collect();
                    let path = self.shared.unsaved_path();
                    tracing::error!(characters = ?ids, error = %e, path = %path.display(),
                        "characters cannot be saved; their records go to the unsaved file");
                    append_unsaved(&path, &records);
                    self.totals.unsaved += records.len();
                    self.totals.unsaved_path = Some(path);
                    for waiter in waiters {
                        let _ = waiter.tx.send(Err(format!("not saved: {e}")));
                    }
                }
            }
        }
        self.shared.lock().in_flight = Arc::new(Vec::new());
        Flushed::Done
    }

    /// Answers the waiters of a committed save and counts it.
    fn resolved(&mut self, report: &SaveReport, waiters: Vec<Waiter>) {
        self.totals.written += report.written;
        self.totals.stale += report.stale.len();
        self.totals.missing += report.missing.len();
        for waiter in waiters {
            let gone: Vec<u64> = waiter
                .ids
                .iter()
                .copied()
                .filter(|id| report.missing.contains(id))
                .collect();
            let stale: Vec<u64> = waiter
                .ids
                .iter()
                .copied()
                .filter(|id| report.stale.contains(id))
                .collect();
            let answer = if !gone.is_empty() {
                Err(format!("characters {gone:?} no longer exist"))
            } else if !stale.is_empty() {
                tracing::error!(characters = ?waiter.ids, stale = ?stale,
                    "a committed save was written only in part: the store already held a newer version of some of its characters");
                Err(format!(
                    "not committed in full: the store already holds a newer version of characters {stale:?}"
                ))
            } else {
                Ok(())
            };
            let _ = waiter.tx.send(answer);
        }
    }

    /// Puts records and waiters back after a retryable failure.
    fn requeue(&self, records: Vec<CharacterRecord>, waiters: Vec<Waiter>) {
        let mut state = self.shared.lock();
        for record in records {
            state.merge(record);
        }
        state.waiters.extend(waiters);
        state.in_flight = Arc::new(Vec::new());
    }

    /// Renames the replaying file once none of its characters waits any more.
    fn check_replay(&mut self) {
        let Some(ids) = &self.replay else { return };
        let waiting = {
            let state = self.shared.lock();
            ids.iter().any(|id| state.pending.contains_key(id))
        };
        if waiting {
            return;
        }
        self.replay = None;
        let dir = &self.shared.config.data_dir;
        let done = dir.join(format!(
            "unsaved-characters.replayed-{}.jsonl",
            now_unix_s()
        ));
        match std::fs::rename(dir.join(REPLAYING_FILE), &done) {
            Ok(()) => tracing::warn!(path = %done.display(),
                "the characters offered again from the unsaved file are saved"),
            Err(e) => tracing::error!(error = %e, "cannot rename the replayed unsaved file"),
        }
    }

    /// Shutdown: what is still pending goes to the unsaved file; then report.
    fn finish(&mut self) {
        let (records, waiters, reply) = {
            let mut state = self.shared.lock();
            let records: Vec<CharacterRecord> = state.pending.drain().map(|(_, r)| r).collect();
            (
                records,
                std::mem::take(&mut state.waiters),
                state.shutdown.take(),
            )
        };
        if !records.is_empty() {
            let path = self.shared.unsaved_path();
            let ids: Vec<u64> = records.iter().map(|r| r.character_id).collect();
            tracing::error!(characters = ?ids, path = %path.display(),
                "shutdown deadline passed with characters unsaved; their records go to the unsaved file");
            append_unsaved(&path, &records);
            self.totals.unsaved += records.len();
            self.totals.unsaved_path = Some(path);
        }
        for waiter in waiters {
            let _ = waiter
                .tx
                .send(Err("the server shut down before saving".into()));
        }
        publish_backlog(&self.shared.lock());
        self.check_replay();
        if let Some((tx, _)) = reply {
            let _ = tx.send(std::mem::take(&mut self.totals));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_refusals_keep_database_text_from_the_client() {
        let secret = "relation \"players_p3\" does not exist at host db-internal:5432";
        for error in [
            StoreError::Corrupt(secret.into()),
            StoreError::Unavailable(secret.into()),
        ] {
            let refusal = load_refusal("acc", &error);
            assert_eq!(refusal.reason, DisconnectReason::ServiceUnavailable);
            assert!(
                !refusal.message.contains("players_p3") && !refusal.message.contains("db-internal"),
                "database details reach the client: {}",
                refusal.message
            );
        }
        assert_eq!(
            load_refusal("acc", &StoreError::Corrupt(secret.into())).message,
            "your character cannot be loaded right now; try again later"
        );
    }
}
