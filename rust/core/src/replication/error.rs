//! Errors of the replication module: configuration errors that name the bad field, and
//! caller errors of the [`Replicator`](super::Replicator) facade.

use super::ClientId;

/// A configuration value is out of range. `field` names the offending field (with the index
/// for list entries, e.g. `tiers.tiers[1].max_distance_m`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid replication config: `{field}` {reason}")]
pub struct ConfigError {
    /// Path of the bad field inside [`ReplicationConfig`](super::ReplicationConfig).
    pub field: String,
    /// Why the value was rejected.
    pub reason: &'static str,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, reason: &'static str) -> Self {
        ConfigError {
            field: field.into(),
            reason,
        }
    }
}

/// A call on the [`Replicator`](super::Replicator) that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicationError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No client with this id was added (or it was removed).
    #[error("unknown replication client {0:?}")]
    UnknownClient(ClientId),
    /// `add_client` was called twice with the same id.
    #[error("replication client {0:?} already exists")]
    DuplicateClient(ClientId),
    /// `commit` was called without a preceding `plan_tick` (or twice for one plan).
    #[error("replication client {0:?} has no planned tick to commit")]
    NothingPlanned(ClientId),
}
