//! The [`Replicator`] facade: one spatial grid of entities plus one [`ClientView`] per
//! client, driven tick by tick by the server (sans-IO: the tick is an argument).
//!
//! Per tick and client: `plan_tick` (or `plan_tick_limited`, which ranks only the best `k`)
//! → encode `plan.candidates` from the front → `commit` with the ids actually written and
//! the datagram's size. Or, without an encoder at hand,
//! `select_within_budget` does all three with a per-entity size estimate.

use std::collections::BTreeMap;

use glam::Vec3;
use serde::{Deserialize, Serialize};

use super::budget::ByteBudget;
use super::client_view::{ClientView, PlanContext};
use super::grid::SpatialGrid;
use super::{
    ConfigError, Plan, PriorityCategory, ReplicationConfig, ReplicationError, TierTable, Viewer,
};
use crate::entity::EntityId;
use crate::time::Tick;

/// Identifies a client (a connection) of the replicator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub u32);

/// Interest management and replication priority for every client of one zone.
#[derive(Clone, Debug)]
pub struct Replicator {
    config: ReplicationConfig,
    tiers: TierTable,
    /// Every replicated entity, with its category as payload.
    grid: SpatialGrid<PriorityCategory>,
    /// Ordered by id, so iteration (e.g. by a driver planning all clients) is deterministic.
    clients: BTreeMap<ClientId, ClientView>,
}

impl Replicator {
    /// A replicator with no entities and no clients, or the reason `config` is invalid.
    pub fn new(config: ReplicationConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let tiers = TierTable::new(&config.tiers, config.tick_rate)?;
        let grid = SpatialGrid::new(config.cell_size_m)
            .map_err(|_| ConfigError::new("cell_size_m", "must be finite and positive"))?;
        Ok(Replicator {
            config,
            tiers,
            grid,
            clients: BTreeMap::new(),
        })
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &ReplicationConfig {
        &self.config
    }

    /// The resolved distance tiers.
    #[must_use]
    pub fn tiers(&self) -> &TierTable {
        &self.tiers
    }

    /// The entity grid (read-only), e.g. for other interest queries.
    #[must_use]
    pub fn grid(&self) -> &SpatialGrid<PriorityCategory> {
        &self.grid
    }

    /// Adds the entity or updates its position and category. Call whenever it moves (every
    /// tick for moving entities). Only X and Y matter for interest.
    pub fn update_entity(&mut self, id: EntityId, position_m: Vec3, category: PriorityCategory) {
        self.grid.insert(id, position_m, category);
    }

    /// Removes the entity; it appears in `left` of every client that saw it at their next
    /// plan. Returns false when it was not present.
    pub fn remove_entity(&mut self, id: EntityId) -> bool {
        let Some(slot) = self.grid.slot_of(id) else {
            return false;
        };
        // O(clients): each client checks its slot table, so the removal needs no scan of
        // any visible set and is reported at the client's next plan, refresh or not.
        for view in self.clients.values_mut() {
            view.note_removed(id, slot);
        }
        self.grid.remove(id)
    }

    /// Number of entities.
    #[must_use]
    pub fn entity_count(&self) -> usize {
        self.grid.len()
    }

    /// Heap bytes of the clients' views (visible sets, priority queues, budgets), from
    /// their buffers' capacities.
    #[must_use]
    pub fn views_heap_bytes(&self) -> usize {
        self.clients.values().map(ClientView::heap_bytes).sum()
    }

    /// Heap bytes of the interest grid (estimated from capacities).
    #[must_use]
    pub fn grid_heap_bytes(&self) -> usize {
        self.grid.heap_bytes()
    }

    /// Adds a client looking from `viewer`, with an empty visible set and an empty byte
    /// budget.
    pub fn add_client(&mut self, client: ClientId, viewer: Viewer) -> Result<(), ReplicationError> {
        if self.clients.contains_key(&client) {
            return Err(ReplicationError::DuplicateClient(client));
        }
        let budget = ByteBudget::new(
            self.config.budget_bytes_per_s,
            self.config.max_carry_ticks,
            self.config.tick_rate,
        );
        // Stagger the interest refreshes by client id, so that about 1 / N of the clients
        // query the grid on any one tick.
        let phase = client.0 % self.config.interest_refresh_ticks.max(1);
        self.clients
            .insert(client, ClientView::new(viewer, budget, phase));
        Ok(())
    }

    /// Changes what the client looks from (possession, spectating, a teleport of a fixed
    /// camera). Takes effect at the next plan, which refreshes interest whatever the
    /// refresh schedule.
    pub fn set_viewer(&mut self, client: ClientId, viewer: Viewer) -> Result<(), ReplicationError> {
        self.view_mut(client)?.set_viewer(viewer);
        Ok(())
    }

    /// Forgets the client. Returns false when it was not present.
    pub fn remove_client(&mut self, client: ClientId) -> bool {
        self.clients.remove(&client).is_some()
    }

    /// Client ids in ascending order.
    pub fn clients(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.clients.keys().copied()
    }

    /// Number of entities currently in the client's visible set.
    pub fn visible_count(&self, client: ClientId) -> Result<usize, ReplicationError> {
        self.clients
            .get(&client)
            .map(ClientView::visible_count)
            .ok_or(ReplicationError::UnknownClient(client))
    }

    /// The ids in the client's visible set into `out` (cleared first), ascending; O(visible).
    /// For occasional use (a zone handoff compares what the client knew with what the new
    /// zone shows), not per tick.
    pub fn visible_ids(
        &self,
        client: ClientId,
        out: &mut Vec<EntityId>,
    ) -> Result<(), ReplicationError> {
        self.clients
            .get(&client)
            .ok_or(ReplicationError::UnknownClient(client))?
            .visible_ids(out);
        Ok(())
    }

    /// Plans `tick` for `client`: entered/left lists and the ordered send candidates. Ticks
    /// must not go backwards; skipped ticks are accounted for (accumulators grow and the
    /// budget refills by the elapsed ticks). Follow with [`Replicator::commit`].
    pub fn plan_tick(&mut self, tick: Tick, client: ClientId) -> Result<&Plan, ReplicationError> {
        self.plan_tick_limited(tick, client, |_| usize::MAX)
    }

    /// Like [`Replicator::plan_tick`], but ranks only the best `max_candidates(budget_bytes)`
    /// candidates (the closure gets the tick's [`Plan::budget_bytes`]): `plan.candidates` is
    /// exactly the first that many of the full order. A caller that can only send what its
    /// budget carries saves ranking the rest: between interest refreshes a plan costs
    /// O(k log groups + removals), not O(visible).
    pub fn plan_tick_limited(
        &mut self,
        tick: Tick,
        client: ClientId,
        max_candidates: impl FnOnce(u32) -> usize,
    ) -> Result<&Plan, ReplicationError> {
        let ctx = plan_context(&self.config, &self.grid, &self.tiers);
        let view = self
            .clients
            .get_mut(&client)
            .ok_or(ReplicationError::UnknownClient(client))?;
        Ok(view.plan(tick, &ctx, max_candidates))
    }

    /// The client's most recent plan.
    pub fn plan(&self, client: ClientId) -> Result<&Plan, ReplicationError> {
        self.clients
            .get(&client)
            .map(ClientView::plan_ref)
            .ok_or(ReplicationError::UnknownClient(client))
    }

    /// Reports what the last plan's datagram carried: `sent_ids` (any order; each must be a
    /// candidate or visible entity of that plan) get their accumulator reset and last-sent
    /// tick set, everything else keeps accumulating; `bytes_used` (the whole datagram, even
    /// beyond `budget_bytes`) is charged to the budget. One commit per plan.
    pub fn commit(
        &mut self,
        client: ClientId,
        sent_ids: &[EntityId],
        bytes_used: u32,
    ) -> Result<(), ReplicationError> {
        let view = self
            .clients
            .get_mut(&client)
            .ok_or(ReplicationError::UnknownClient(client))?;
        if view.commit(&self.grid, sent_ids, bytes_used) {
            Ok(())
        } else {
            Err(ReplicationError::NothingPlanned(client))
        }
    }

    /// Estimate-based mode for callers that bring their own encoder: plans `tick`, takes
    /// candidates in order while `estimated_bytes_per_entity` (0 counts as 1) still fits the
    /// tick's budget, commits them as sent with `count × estimate` bytes, and returns the
    /// plan with [`Plan::selected`] filled. Do not call `commit` afterwards.
    pub fn select_within_budget(
        &mut self,
        tick: Tick,
        client: ClientId,
        estimated_bytes_per_entity: u32,
    ) -> Result<&Plan, ReplicationError> {
        let per_entity = estimated_bytes_per_entity.max(1);
        self.plan_tick_limited(tick, client, |budget| (budget / per_entity) as usize)?;
        let view = self
            .clients
            .get_mut(&client)
            .ok_or(ReplicationError::UnknownClient(client))?;
        let committed = view.select_and_commit(&self.grid, per_entity);
        debug_assert!(committed, "plan_tick just left a pending plan");
        Ok(view.plan_ref())
    }

    /// Every client's state for this tick's planning, ascending client id, next to the
    /// shared, read-only planning context (the grid and tiers): clients are independent
    /// given the context, so a caller may plan and commit disjoint clients on different
    /// threads ([`ClientTick::plan_limited`], [`ClientTick::commit`]). Results are the same
    /// as [`Replicator::plan_tick_limited`] and [`Replicator::commit`] client by client.
    pub fn client_ticks(&mut self) -> (SharedPlanning<'_>, Vec<ClientTick<'_>>) {
        let shared = SharedPlanning {
            ctx: plan_context(&self.config, &self.grid, &self.tiers),
        };
        let clients = self
            .clients
            .iter_mut()
            .map(|(&client, view)| ClientTick { client, view })
            .collect();
        (shared, clients)
    }

    fn view_mut(&mut self, client: ClientId) -> Result<&mut ClientView, ReplicationError> {
        self.clients
            .get_mut(&client)
            .ok_or(ReplicationError::UnknownClient(client))
    }
}

/// What every client's plan of a tick reads: the grid, the tiers and the interest radii.
fn plan_context<'a>(
    config: &ReplicationConfig,
    grid: &'a SpatialGrid<PriorityCategory>,
    tiers: &'a TierTable,
) -> PlanContext<'a> {
    let radius = config.area_of_interest_radius_m;
    PlanContext {
        grid,
        tiers,
        aoi_sq_m2: radius * radius,
        query_radius_m: radius + config.aoi_hysteresis_m,
        refresh_ticks: config.interest_refresh_ticks,
    }
}

/// The read-only part of a tick's planning, shared by every client (see
/// [`Replicator::client_ticks`]). `Sync`: one per tick, read from every worker thread.
#[derive(Clone, Copy)]
pub struct SharedPlanning<'a> {
    ctx: PlanContext<'a>,
}

/// One client's replication state, borrowed for this tick's planning (see
/// [`Replicator::client_ticks`]). `Send`: each can be handed to a different thread.
pub struct ClientTick<'a> {
    client: ClientId,
    view: &'a mut ClientView,
}

impl ClientTick<'_> {
    /// The client.
    #[must_use]
    pub fn client(&self) -> ClientId {
        self.client
    }

    /// As [`Replicator::plan_tick_limited`] for this client.
    pub fn plan_limited(
        &mut self,
        shared: &SharedPlanning<'_>,
        tick: Tick,
        max_candidates: impl FnOnce(u32) -> usize,
    ) -> &Plan {
        self.view.plan(tick, &shared.ctx, max_candidates)
    }

    /// As [`Replicator::commit`] for this client.
    pub fn commit(
        &mut self,
        shared: &SharedPlanning<'_>,
        sent_ids: &[EntityId],
        bytes_used: u32,
    ) -> Result<(), ReplicationError> {
        if self.view.commit(shared.ctx.grid, sent_ids, bytes_used) {
            Ok(())
        } else {
            Err(ReplicationError::NothingPlanned(self.client))
        }
    }

    /// As [`Replicator::visible_ids`] for this client.
    pub fn visible_ids(&self, out: &mut Vec<EntityId>) {
        self.view.visible_ids(out);
    }
}
