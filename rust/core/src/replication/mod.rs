//! Replication: interest management and per-client priority under a byte budget.
//!
//! * [`WorldFrame`] (`frame.rs`): every replicated entity's quantized state for one tick,
//!   written once after simulation and read for every client; plain serializable data.
//! * [`overload`]: the overload governor (tick time in, a level out) and the share of each
//!   client's records a level allows, so overload sheds far-tier updates first.
//! * [`SpatialGrid`] (`grid.rs`): spatial hash over XY; radius queries (sorted by id, or
//!   unsorted with dense per-entity slots for per-client tables).
//! * [`TierConfig`] / [`TierTable`] (`tiers.rs`): distance tiers → send intervals in ticks
//!   (default 30 Hz within 50 m, 10 Hz within 200 m, 2 Hz beyond) and per-tier priority
//!   weights (default 1000 / 10 / 2, so the near tier dominates a crowded budget; the
//!   reasoning is in `tiers.rs`).
//! * [`PriorityCategory`] and the accumulator (`priority.rs`): `category weight × tier
//!   priority weight × ticks since the last send`, computed lazily; order Critical first,
//!   then accumulator, then id.
//! * [`ByteBudget`] (`budget.rs`): token bucket, `budget_bytes_per_s / tick_hz` per tick,
//!   bounded carry, debt for overshoot, so the long-run rate never exceeds the budget.
//! * `client_view.rs`: per-client visible set, refreshed from the grid every
//!   `interest_refresh_ticks` (default 6, staggered by client id); per (tier, category)
//!   send queues in least-recently-sent order, so a tick's selection is a k-way merge of
//!   the queue fronts, O(k log groups) rather than O(visible); entered/left lists; the
//!   [`Plan`].
//! * [`Replicator`] (`replicator.rs`): the facade — `update_entity`, `add_client`,
//!   `plan_tick` / `plan_tick_limited`, `commit`, `select_within_budget`; `visible_ids` for
//!   occasional inspection (the zone handoff).
//!
//! Everything is deterministic: outputs are sorted by id or by unique integer keys, hash
//! maps are only used for lookups (never iterated), and priorities are integers. Nothing here reads a clock; the tick is an argument.
//!
//! Not done yet (honest list):
//! * Between interest refreshes, movement is not looked at: enter and leave caused by
//!   movement, and tier or category changes (a target becoming Critical included), show up
//!   to `interest_refresh_ticks - 1` ticks late (removals are reported at the next plan).
//!   A refresh still costs O(visible) for the clients refreshing that tick.
//! * When an entity changes tier, its whole age since the last send is weighed at the new
//!   tier's weight (the old per-tick accumulator weighed each tick at that tick's tier).
//! * `remove_entity` costs O(clients) (one slot-table lookup per client).
//! * What a tick still costs (replication scenario over a lossy link, 1000 clients, ~82
//!   records each, profiled 2026-12-06): planning (refresh, select, commit) is about 35 %
//!   of `Zone::replicate`, the per-record baseline lookups about 40 %, encoding about 25 %;
//!   `docs/performance.md` has the figures. The targets are not met yet.
//! * `interest_refresh_ticks` is not in the C ABI's `mmo_replication_config` yet (the C
//!   replicator uses the default).
//! * [`Replicator::client_ticks`] lets a driver plan disjoint clients on several threads
//!   (the zone does, `ZoneConfig::replication_threads`); spawning the threads is the
//!   driver's business.
//! * Distance is horizontal only (XY); there is no occlusion or vertical culling.
//! * Category weights are fixed constants, not configuration (tier weights are configured).
//! * Per-client slot tables take 4 bytes per grid slot (entities present at once), so
//!   memory is clients × entities × 4 B (4 MB for 1000 × 1000), plus per visible entity a
//!   24 B entry and a 16 B queue item (stale items are dropped within the refresh).
//! * The viewer's own entity is excluded from its visible set: the snapshot carries the
//!   owner's state separately (`WIRE_FORMAT.md` 8.6).
//! * Grid cells are never freed once created.

mod budget;
mod client_view;
mod config;
mod error;
mod frame;
mod grid;
pub mod overload;
mod priority;
mod replicator;
mod tiers;

pub use budget::ByteBudget;
pub use client_view::{Plan, Viewer};
pub use config::ReplicationConfig;
pub use error::{ConfigError, ReplicationError};
pub use frame::{FrameEntity, FrameError, WorldFrame};
pub use grid::{CellSizeError, GridHit, SpatialGrid};
pub use priority::{ACCUMULATOR_MAX, PriorityCategory, accumulate, key_entity, send_order_key};
pub use replicator::{ClientId, ClientTick, Replicator, SharedPlanning};
pub use tiers::{DistanceTier, ResolvedTier, TierConfig, TierTable};

#[cfg(test)]
mod tests;
