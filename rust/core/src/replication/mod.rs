//! Replication: interest management and per-client priority under a byte budget.
//!
//! * [`SpatialGrid`] (`grid.rs`): spatial hash over XY; radius queries (sorted by id, or
//!   unsorted with dense per-entity slots for per-client tables).
//! * [`TierConfig`] / [`TierTable`] (`tiers.rs`): distance tiers → send intervals in ticks
//!   (default 30 Hz within 50 m, 10 Hz within 200 m, 2 Hz beyond) and per-tier priority
//!   weights (default 1000 / 10 / 2, so the near tier dominates a crowded budget; the
//!   reasoning is in `tiers.rs`).
//! * [`PriorityCategory`] and the accumulator (`priority.rs`): growth `category weight ×
//!   tier priority weight` per tick, reset on send; order Critical first, then accumulator,
//!   then id.
//! * [`ByteBudget`] (`budget.rs`): token bucket, `budget_bytes_per_s / tick_hz` per tick,
//!   bounded carry, debt for overshoot, so the long-run rate never exceeds the budget.
//! * `client_view.rs`: per-client visible set, entered/left lists, the [`Plan`].
//! * [`Replicator`] (`replicator.rs`): the facade — `update_entity`, `add_client`,
//!   `plan_tick` / `plan_tick_limited`, `commit`, `select_within_budget`.
//!
//! Everything is deterministic: outputs are sorted by id or by unique integer keys, hash
//! maps are only used for lookups (never iterated), and priorities are integers. Nothing here reads a clock; the tick is an argument.
//!
//! Not done yet (honest list):
//! * Planning is single-threaded; clients are independent given the grid, so a driver can
//!   later split clients over threads, but no API for that exists yet.
//! * Distance is horizontal only (XY); there is no occlusion or vertical culling.
//! * Category weights are fixed constants, not configuration (tier weights are configured).
//! * Per-client slot tables take 4 bytes per grid slot (entities present at once), so
//!   memory is clients × entities × 4 B (4 MB for 1000 × 1000).
//! * The viewer's own entity is excluded from its visible set, assuming the codec sends the
//!   owner's state separately; revisit when the snapshot codec lands.
//! * Grid cells are never freed once created.

mod budget;
mod client_view;
mod config;
mod error;
mod grid;
mod priority;
mod replicator;
mod tiers;

pub use budget::ByteBudget;
pub use client_view::{Plan, Viewer};
pub use config::ReplicationConfig;
pub use error::{ConfigError, ReplicationError};
pub(crate) use grid::MixMap;
pub use grid::{CellSizeError, GridHit, SpatialGrid};
pub use priority::{ACCUMULATOR_MAX, PriorityCategory, accumulate, key_entity, send_order_key};
pub use replicator::{ClientId, Replicator};
pub use tiers::{DistanceTier, ResolvedTier, TierConfig, TierTable};

#[cfg(test)]
mod tests;
