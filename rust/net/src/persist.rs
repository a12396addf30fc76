//! Where zone threads get characters from and give them back to: the [`CharacterStore`]
//! the server is started with.
//!
//! The network layer does not know what a database is. A zone thread asks the store for a
//! character once a login's token is accepted ([`CharacterStore::load`]) and spawns it when
//! the answer arrives (the client waits in `LoginPending` meanwhile; the tick never waits).
//! It offers snapshots of changed characters every save interval, at logout and at shutdown
//! ([`CharacterStore::save`]); a full store refuses the batch and the zone offers the
//! characters again later, so nothing is dropped. A cross-player item transfer is offered
//! as one batch with a `committed` channel: the store writes it in one transaction and
//! answers, and only then is the transfer acknowledged to the player.
//!
//! Without a store ([`crate::server::ServerConfig::store`] `None`) every login gets a new
//! character from the zone's defaults and nothing is saved (tests, tools).

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
    /// (`Err` with a message when the store gives up on them, e.g. at shutdown).
    pub committed: Option<oneshot::Sender<Result<(), String>>>,
}

/// Loads and saves characters for the zone threads. Methods are called on zone threads and
/// must return at once.
pub trait CharacterStore: Send + Sync + std::fmt::Debug {
    /// Starts loading the character `grant` names (or the account's default character when
    /// `grant.character_id` is `None`). The answer arrives on the returned channel; a
    /// refusal is sent to the client as its disconnect reason.
    fn load(&self, grant: &LoginGrant) -> oneshot::Receiver<Result<CharacterRecord, LoginRefusal>>;

    /// Queues `batch`. Returns it when the store's backlog is full: the caller keeps the
    /// characters dirty and offers them again later.
    fn save(&self, batch: SaveBatch) -> Result<(), SaveBatch>;
}
