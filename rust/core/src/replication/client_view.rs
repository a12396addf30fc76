//! Per-client replication state: the visible set with a priority accumulator and last-sent
//! tick per entity, the byte budget, and the plan produced each tick.
//!
//! Each tick ([`ClientView::plan`]):
//! 1. query the grid around the viewer (area of interest + hysteresis), sorted by id;
//! 2. merge with the previous visible set (both sorted by id, one linear pass): ids only in
//!    the query and within the area of interest *enter*, ids only in the old set *leave*,
//!    ids in both keep their accumulator and last-sent tick;
//! 3. for every visible entity: pick its distance tier, grow its accumulator, and if it is
//!    *eligible* (never sent, Critical, or its tier's interval elapsed since its last send)
//!    push its packed send-order key;
//! 4. sort the keys: that is the candidate list.
//!
//! All buffers live in the view and are reused, so a steady-state tick does not allocate.

use glam::Vec3;

use super::budget::ByteBudget;
use super::grid::{GridHit, SpatialGrid};
use super::priority::{self, PriorityCategory};
use super::tiers::TierTable;
use crate::entity::EntityId;
use crate::time::Tick;

/// What a client looks from: its own entity (followed as it moves) or a fixed point (a
/// spectator camera, a client still loading).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Viewer {
    /// Follow this entity's position. The entity itself is never in its own visible set
    /// (the owner's state travels separately, losslessly). If it is not in the replicator,
    /// the last known position is used; if there is none, nothing is visible.
    Entity(EntityId),
    /// A fixed position, metres.
    Position(Vec3),
}

/// The outcome of planning one tick for one client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The planned tick.
    pub tick: Tick,
    /// Bytes the client's budget allows this tick (zero while the bucket is in debt).
    pub budget_bytes: u32,
    /// Eligible visible entities in send order: Critical first, then highest accumulated
    /// priority first, ties by ascending id. Encode from the front until the datagram or
    /// `budget_bytes` is full, then report what was written with `commit`.
    pub candidates: Vec<EntityId>,
    /// Entities that entered the area of interest this tick, ascending id.
    pub entered: Vec<EntityId>,
    /// Entities that left the area of interest (or were removed) this tick, ascending id.
    pub left: Vec<EntityId>,
    /// Filled only by `select_within_budget`: the prefix of `candidates` that fit the
    /// budget at the caller's per-entity estimate (already committed). Empty otherwise.
    pub selected: Vec<EntityId>,
}

/// `last_sent_tick` value of an entity never sent to this client.
const NEVER_SENT: u32 = u32::MAX;

/// One visible entity as seen by one client.
#[derive(Clone, Copy, Debug)]
struct VisibleEntry {
    id: EntityId,
    /// Priority accumulated since the last send; `<= priority::ACCUMULATOR_MAX`.
    accumulator: u32,
    /// Tick of the last send, or `NEVER_SENT`.
    last_sent_tick: u32,
}

/// Read-only inputs shared by every client's plan in one tick.
pub(crate) struct PlanContext<'a> {
    pub grid: &'a SpatialGrid<PriorityCategory>,
    pub tiers: &'a TierTable,
    pub aoi_sq_m2: f32,
    pub query_radius_m: f32,
}

/// Replication state of one client. See the module docs for the per-tick algorithm.
#[derive(Clone, Debug)]
pub(crate) struct ClientView {
    viewer: Viewer,
    last_viewer_position_m: Option<Vec3>,
    /// Invariant: sorted by strictly increasing id.
    visible: Vec<VisibleEntry>,
    /// Scratch for the next visible set (swapped with `visible`).
    next_visible: Vec<VisibleEntry>,
    hits: Vec<GridHit<PriorityCategory>>,
    keys: Vec<u64>,
    budget: ByteBudget,
    last_plan_tick: Option<Tick>,
    /// The tick planned and not yet committed.
    pending: Option<Tick>,
    plan: Plan,
}

impl ClientView {
    pub(crate) fn new(viewer: Viewer, budget: ByteBudget) -> Self {
        ClientView {
            viewer,
            last_viewer_position_m: None,
            visible: Vec::new(),
            next_visible: Vec::new(),
            hits: Vec::new(),
            keys: Vec::new(),
            budget,
            last_plan_tick: None,
            pending: None,
            plan: Plan::default(),
        }
    }

    pub(crate) fn set_viewer(&mut self, viewer: Viewer) {
        self.viewer = viewer;
    }

    pub(crate) fn plan_ref(&self) -> &Plan {
        &self.plan
    }

    pub(crate) fn visible_count(&self) -> usize {
        self.visible.len()
    }

    /// Plans `tick`; see the module docs. Planning the same tick twice re-ranks without
    /// growing accumulators or refilling the budget.
    pub(crate) fn plan(&mut self, tick: Tick, ctx: &PlanContext<'_>) -> &Plan {
        let elapsed = match self.last_plan_tick {
            Some(last) => tick.since(last),
            None => 1,
        };
        debug_assert!(
            self.last_plan_tick.is_none_or(|last| tick >= last),
            "ticks must not go backwards"
        );
        self.last_plan_tick = Some(tick.max(self.last_plan_tick.unwrap_or(tick)));
        self.pending = Some(tick);

        let (viewer_position_m, self_id) = match self.viewer {
            Viewer::Entity(id) => (ctx.grid.get(id).map(|(p, _)| p), Some(id)),
            Viewer::Position(p) => (Some(p), None),
        };
        if viewer_position_m.is_some() {
            self.last_viewer_position_m = viewer_position_m;
        }
        match self.last_viewer_position_m {
            Some(p) => ctx
                .grid
                .query_radius_hits(p, ctx.query_radius_m, &mut self.hits),
            None => self.hits.clear(),
        }

        let ClientView {
            visible,
            next_visible,
            hits,
            keys,
            budget,
            plan,
            ..
        } = self;
        plan.tick = tick;
        plan.budget_bytes = budget.refill(tick);
        plan.candidates.clear();
        plan.entered.clear();
        plan.left.clear();
        plan.selected.clear();
        next_visible.clear();
        keys.clear();

        let mut score = |mut entry: VisibleEntry, hit: &GridHit<PriorityCategory>, grow: u32| {
            let tier = ctx.tiers.tier(ctx.tiers.tier_for(hit.distance_sq_m2));
            entry.accumulator =
                priority::accumulate(entry.accumulator, hit.data, tier.rate_hz, grow);
            let eligible = entry.last_sent_tick == NEVER_SENT
                || hit.data == PriorityCategory::Critical
                || tick.since(Tick(entry.last_sent_tick)) >= tier.interval_ticks;
            if eligible {
                keys.push(priority::send_order_key(
                    entry.id,
                    hit.data,
                    entry.accumulator,
                ));
            }
            next_visible.push(entry);
        };

        let (mut i, mut j) = (0, 0);
        loop {
            let hit = hits.get(j);
            if hit.is_some_and(|h| Some(h.id) == self_id) {
                j += 1;
                continue;
            }
            match (visible.get(i), hit) {
                (None, None) => break,
                (Some(old), Some(h)) if old.id == h.id => {
                    score(*old, h, elapsed);
                    i += 1;
                    j += 1;
                }
                (Some(old), h) if h.is_none_or(|h| old.id < h.id) => {
                    plan.left.push(old.id);
                    i += 1;
                }
                (_, Some(h)) => {
                    if h.distance_sq_m2 <= ctx.aoi_sq_m2 {
                        plan.entered.push(h.id);
                        let fresh = VisibleEntry {
                            id: h.id,
                            accumulator: 0,
                            last_sent_tick: NEVER_SENT,
                        };
                        score(fresh, h, 1);
                    }
                    j += 1;
                }
                // Unreachable: (Some, None) is taken by the `left` arm.
                (Some(_), None) => break,
            }
        }
        std::mem::swap(visible, next_visible);
        keys.sort_unstable();
        plan.candidates
            .extend(keys.iter().map(|&k| priority::key_entity(k)));
        plan
    }

    /// Records what the last plan actually sent: `sent` get their accumulator reset and
    /// their last-sent tick set; `bytes_used` (the whole datagram) is charged to the budget.
    /// Returns false when there is no uncommitted plan. Ids not in the visible set are a
    /// caller bug (debug assertion) and are ignored.
    pub(crate) fn commit(&mut self, sent: &[EntityId], bytes_used: u32) -> bool {
        let Some(tick) = self.pending.take() else {
            return false;
        };
        for &id in sent {
            match self.visible.binary_search_by_key(&id, |e| e.id) {
                Ok(index) => {
                    let entry = &mut self.visible[index];
                    entry.accumulator = 0;
                    entry.last_sent_tick = tick.0;
                }
                Err(_) => debug_assert!(false, "committed {id:?}, which is not visible"),
            }
        }
        self.budget.spend(bytes_used);
        true
    }

    /// Estimate-based selection for callers without an encoder: takes candidates in order
    /// while `estimated_bytes_per_entity` still fits the budget, then commits them.
    pub(crate) fn select_and_commit(&mut self, estimated_bytes_per_entity: u32) -> bool {
        let per_entity = estimated_bytes_per_entity.max(1);
        let fit = (self.plan.budget_bytes / per_entity) as usize;
        let n = fit.min(self.plan.candidates.len());
        let mut selected = std::mem::take(&mut self.plan.selected);
        selected.clear();
        selected.extend_from_slice(&self.plan.candidates[..n]);
        let ok = self.commit(&selected, n as u32 * per_entity);
        self.plan.selected = selected;
        ok
    }
}
