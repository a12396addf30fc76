//! Where zone threads get characters from and give them back to: the [`CharacterStore`]
//! the server is started with.
//!
//! The network layer does not know what a database is. A zone thread asks the store for a
//! character once a login's token is accepted ([`CharacterStore::load`]) and spawns it when
//! the answer arrives (the client waits in `LoginPending` meanwhile; the tick never waits).
//! It offers snapshots of changed characters every save interval, at logout and at shutdown
//! ([`CharacterStore::save`]); a full store refuses a periodic batch and the zone offers
//! the characters again later, so nothing is dropped. Logout, transfer and shutdown
//! batches (`Now`) are few and a store takes them even past its backlog bound. A cross-player item transfer is offered
//! as one batch with a `committed` channel: the store writes it in one transaction and
//! answers, and only then is the transfer acknowledged to the player.
//!
//! Without a store ([`crate::server::ServerConfig::store`] `None`) every login gets a new
//! character from the zone's defaults and nothing is saved (tests, tools).
//!
//! [`MemoryStore`] is a real in-memory store (not durable) for tools and tests;
//! `mmo-server` runs a database-backed store (SQLite or PostgreSQL) behind the same trait.

use mmo_core::persist::CharacterRecord;
use tokio::sync::oneshot;

use crate::auth::{LoginGrant, LoginRefusal};

/// How soon a batch should be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveUrgency {
    /// Periodic save of dirty characters: written with the next flush.
    Periodic,
    /// Logout, transfer or shutdown: written at once.
    Now,
}

/// Character records to save together.
#[derive(Debug)]
pub struct SaveBatch {
    /// The records, at most one per character.
    pub records: Vec<CharacterRecord>,
    /// How soon.
    pub urgency: SaveUrgency,
    /// When set, the records are written in one transaction and the outcome is sent here
    /// (`Err` with a message when the store gives up on them, e.g. at shutdown, or when
    /// they were not all written because the store held a newer version of one).
    pub committed: Option<oneshot::Sender<Result<(), String>>>,
}

/// Loads and saves characters for the zone threads. Methods are called on zone threads and
/// must return at once.
pub trait CharacterStore: Send + Sync + std::fmt::Debug {
    /// Starts loading the character `grant` names (or the account's default character when
    /// `grant.character_id` is `None`). The answer arrives on the returned channel; a
    /// refusal is sent to the client as its disconnect reason.
    fn load(&self, grant: &LoginGrant) -> oneshot::Receiver<Result<CharacterRecord, LoginRefusal>>;

    /// Queues `batch`. Returns it when the store cannot take it: a `Periodic` batch when
    /// the store's backlog is full (the caller keeps the characters dirty and offers them
    /// again later). A store should take `Now` batches (logout, transfer, shutdown) even
    /// past its backlog bound, so a character's last save is never refused by a long
    /// outage; a store that hands one back anyway (a closed or deliberately refusing store)
    /// gets it offered again by the zone while the zone runs and up to its shutdown retry.
    fn save(&self, batch: SaveBatch) -> Result<(), SaveBatch>;
}

/// A real, in-memory [`CharacterStore`] for tools and tests: not durable (everything is
/// lost with the process). `mmo-server` uses its database-backed store instead.
///
/// * `load`: the account's first character (by id); on the first load of an account it is
///   created from the template (a new id, the account name, version 0). With
///   `grant.character_id` set, that character if it belongs to the account, otherwise a
///   [`crate::auth::LoginRefusal::bad_token`] refusal naming the problem.
/// * `save`: each record replaces the stored one only when its version is higher (the
///   version rule of [`CharacterRecord::version`]); the batch's `committed` channel is
///   answered `Ok` at once (the whole batch is applied under one lock: a transaction). A
///   `committed` batch is all or nothing: when one of its records is not newer than the
///   stored one, none is applied and it is answered `Err`.
///   [`MemoryStore::set_refuse_saves`] makes it hand batches back as a full store does.
#[derive(Debug)]
pub struct MemoryStore {
    template: CharacterRecord,
    inner: std::sync::Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    /// Character id -> the last record stored.
    characters: std::collections::BTreeMap<u64, CharacterRecord>,
    /// Account name -> account id.
    accounts: std::collections::BTreeMap<String, u64>,
    /// Every batch accepted, in order (records only).
    batches: Vec<(SaveUrgency, Vec<CharacterRecord>)>,
    refuse_saves: bool,
    refused: u64,
    /// While `Some`, commit answers wait here until [`MemoryStore::release_commits`].
    held_commits: Option<Vec<oneshot::Sender<Result<(), String>>>>,
}

impl MemoryStore {
    /// A store whose new characters are copies of `template` (its ids, name and version
    /// are replaced).
    #[must_use]
    pub fn new(template: CharacterRecord) -> Self {
        MemoryStore {
            template,
            inner: std::sync::Mutex::new(MemoryInner::default()),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // Every critical section leaves the maps consistent, so a poisoned lock is usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stored record of `character_id`.
    #[must_use]
    pub fn character(&self, character_id: u64) -> Option<CharacterRecord> {
        self.inner().characters.get(&character_id).cloned()
    }

    /// The stored record of `account`'s first character.
    #[must_use]
    pub fn character_of(&self, account: &str) -> Option<CharacterRecord> {
        let inner = self.inner();
        let account_id = *inner.accounts.get(account)?;
        inner
            .characters
            .values()
            .find(|c| c.account_id == account_id)
            .cloned()
    }

    /// Puts `record` in the store as it is (a test's setup).
    pub fn insert(&self, record: CharacterRecord) {
        self.inner().characters.insert(record.character_id, record);
    }

    /// Every batch accepted so far, in order.
    #[must_use]
    pub fn batches(&self) -> Vec<(SaveUrgency, Vec<CharacterRecord>)> {
        self.inner().batches.clone()
    }

    /// While `true`, every `save` hands its batch back (a full backlog).
    pub fn set_refuse_saves(&self, refuse: bool) {
        self.inner().refuse_saves = refuse;
    }

    /// While `true`, transfer commits are applied but not answered until
    /// [`MemoryStore::release_commits`] (a slow database, for tests of the ordering).
    pub fn set_hold_commits(&self, hold: bool) {
        let mut inner = self.inner();
        if hold {
            inner.held_commits.get_or_insert_with(Vec::new);
        }
    }

    /// Answers the held commits `Ok` and stops holding; returns how many there were.
    pub fn release_commits(&self) -> usize {
        let held = self.inner().held_commits.take().unwrap_or_default();
        let n = held.len();
        for tx in held {
            let _ = tx.send(Ok(()));
        }
        n
    }

    /// Batches handed back so far.
    #[must_use]
    pub fn refused_batches(&self) -> u64 {
        self.inner().refused
    }

    fn load_now(&self, grant: &LoginGrant) -> Result<CharacterRecord, LoginRefusal> {
        let mut inner = self.inner();
        let next_account = inner.accounts.len() as u64 + 1;
        let account_id = *inner
            .accounts
            .entry(grant.account.clone())
            .or_insert(next_account);
        if let Some(id) = grant.character_id {
            return match inner.characters.get(&id) {
                Some(c) if c.account_id == account_id => Ok(c.clone()),
                Some(_) => Err(LoginRefusal::bad_token(format!(
                    "character {id} does not belong to account {}",
                    grant.account
                ))),
                None => Err(LoginRefusal::bad_token(format!(
                    "character {id} does not exist"
                ))),
            };
        }
        if let Some(c) = inner
            .characters
            .values()
            .find(|c| c.account_id == account_id)
        {
            return Ok(c.clone());
        }
        let character_id = inner.characters.keys().next_back().map_or(1, |k| k + 1);
        let record = CharacterRecord {
            character_id,
            account_id,
            name: grant.account.clone(),
            version: 0,
            ..self.template.clone()
        };
        inner.characters.insert(character_id, record.clone());
        Ok(record)
    }
}

impl CharacterStore for MemoryStore {
    fn load(&self, grant: &LoginGrant) -> oneshot::Receiver<Result<CharacterRecord, LoginRefusal>> {
        let (tx, rx) = oneshot::channel();
        // The receiver is alive (returned below).
        let _ = tx.send(self.load_now(grant));
        rx
    }

    fn save(&self, batch: SaveBatch) -> Result<(), SaveBatch> {
        let mut inner = self.inner();
        if inner.refuse_saves {
            inner.refused += 1;
            return Err(batch);
        }
        let stale: Vec<u64> = batch
            .records
            .iter()
            .filter(|r| {
                inner
                    .characters
                    .get(&r.character_id)
                    .is_some_and(|stored| stored.version >= r.version)
            })
            .map(|r| r.character_id)
            .collect();
        if !stale.is_empty()
            && let Some(committed) = batch.committed
        {
            drop(inner);
            let _ = committed.send(Err(format!(
                "not committed: the store holds a newer version of characters {stale:?}"
            )));
            return Ok(());
        }
        for record in &batch.records {
            let newer = inner
                .characters
                .get(&record.character_id)
                .is_none_or(|stored| stored.version < record.version);
            if newer {
                inner.characters.insert(record.character_id, record.clone());
            }
        }
        inner.batches.push((batch.urgency, batch.records));
        let committed = batch.committed;
        if let Some(held) = inner.held_commits.as_mut() {
            held.extend(committed);
            return Ok(());
        }
        drop(inner);
        if let Some(committed) = committed {
            // The zone may have stopped waiting; nothing to do then.
            let _ = committed.send(Ok(()));
        }
        Ok(())
    }
}
