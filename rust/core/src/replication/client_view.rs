//! Per-client replication state: the visible set with a priority accumulator and last-sent
//! tick per entity, the byte budget, and the plan produced each tick.
//!
//! Each tick ([`ClientView::plan`]):
//! 1. query the grid around the viewer (area of interest + hysteresis), in grid order (no
//!    sort);
//! 2. one pass over the hits, building the next visible set in hit order: each hit is
//!    matched to its previous entry through a per-client table indexed by the grid's dense
//!    entity *slot* (no hashing, no sort); a match keeps its accumulator and last-sent tick
//!    (and the old entry is marked taken), a hit not found and within the area of interest
//!    *enters*. Each entry gets its distance tier and grown accumulator, and if it is
//!    *eligible* (never sent, Critical, or its tier's interval elapsed since its last send)
//!    pushes its packed send-order key. The grid's order barely changes between ticks, so
//!    the old set is read almost sequentially and the new one written sequentially;
//! 3. one pass over the old set: entries not taken *leave* (an id removed and re-added to
//!    the grid between two plans, which changes its slot, is recognised and keeps its
//!    state, as before);
//! 4. keep the `k` best keys, where `k` is the caller's limit (the zone asks for as many as
//!    its budget can carry): `select_nth_unstable` then a sort of those `k` only, so a tick
//!    costs O(visible + k log k) instead of O(visible log visible). Keys are unique (they
//!    contain the id), so the result is exactly the prefix of the fully sorted order;
//! 5. sort the (short) entered and left lists by id.
//!
//! The visible set's order depends on the grid's history, but nothing observable depends
//! on it: candidates are ordered by their unique keys, entered/left by id. All buffers live
//! in the view and are reused, so a steady-state tick does not allocate.

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
    /// `budget_bytes` is full, then report what was written with `commit`. After
    /// `plan_tick_limited`, only the first `max_candidates` of that order.
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

/// `slot_index` value of a slot with no visible entry.
const NO_ENTRY: u32 = u32::MAX;

/// One visible entity as seen by one client.
#[derive(Clone, Copy, Debug)]
struct VisibleEntry {
    id: EntityId,
    /// The entity's grid slot when it was last seen; `TAKEN` in the old set once the plan
    /// has moved the entry to the new set.
    slot: u32,
    /// Priority accumulated since the last send; `<= priority::ACCUMULATOR_MAX`.
    accumulator: u32,
    /// Tick of the last send, or `NEVER_SENT`.
    last_sent_tick: u32,
    /// Distance tier at the last plan.
    tier: u8,
    category: PriorityCategory,
}

/// `VisibleEntry::slot` of an old entry already moved to the new set.
const TAKEN: u32 = u32::MAX;

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
    /// In the order of the last query's hits; at most one entry per id.
    visible: Vec<VisibleEntry>,
    /// Scratch for the next visible set (swapped with `visible`).
    next_visible: Vec<VisibleEntry>,
    /// Grid slot → index into `visible`, or `NO_ENTRY`. Invariant after a plan: for every
    /// `i`, `slot_index[visible[i].slot] == i`; every other slot holds `NO_ENTRY`.
    slot_index: Vec<u32>,
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
            slot_index: Vec::new(),
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

    /// Plans `tick`; see the module docs. `max_candidates` receives the tick's budget in
    /// bytes and returns how many candidates to rank (`usize::MAX` for all). Planning the
    /// same tick twice re-ranks without growing accumulators or refilling the budget.
    pub(crate) fn plan(
        &mut self,
        tick: Tick,
        ctx: &PlanContext<'_>,
        max_candidates: impl FnOnce(u32) -> usize,
    ) -> &Plan {
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
                .query_radius_hits_unsorted(p, ctx.query_radius_m, &mut self.hits),
            None => self.hits.clear(),
        }

        let ClientView {
            visible,
            next_visible,
            slot_index,
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
        keys.clear();
        next_visible.clear();
        if slot_index.len() < ctx.grid.slot_capacity() {
            slot_index.resize(ctx.grid.slot_capacity(), NO_ENTRY);
        }

        // Pass 1: hits in grid order → the next visible set, entered ids and keys.
        for hit in hits.iter() {
            if Some(hit.id) == self_id {
                continue;
            }
            let slot = hit.slot as usize;
            let tier_index = ctx.tiers.tier_for(hit.distance_sq_m2);
            let tier = ctx.tiers.tier(tier_index);
            let (accumulator, last_sent_tick) = match visible.get_mut(slot_index[slot] as usize) {
                Some(old) if old.id == hit.id => {
                    old.slot = TAKEN;
                    (
                        priority::accumulate(
                            old.accumulator,
                            hit.data,
                            tier.priority_weight,
                            elapsed,
                        ),
                        old.last_sent_tick,
                    )
                }
                _ if hit.distance_sq_m2 <= ctx.aoi_sq_m2 => {
                    plan.entered.push(hit.id);
                    (
                        priority::accumulate(0, hit.data, tier.priority_weight, 1),
                        NEVER_SENT,
                    )
                }
                // In the hysteresis ring and not visible before: does not enter.
                _ => continue,
            };
            let eligible = last_sent_tick == NEVER_SENT
                || hit.data == PriorityCategory::Critical
                || tick.since(Tick(last_sent_tick)) >= tier.interval_ticks;
            if eligible {
                keys.push(priority::send_order_key(hit.id, hit.data, accumulator));
            }
            slot_index[slot] = next_visible.len() as u32;
            next_visible.push(VisibleEntry {
                id: hit.id,
                slot: hit.slot,
                accumulator,
                last_sent_tick,
                tier: tier_index,
                category: hit.data,
            });
        }

        // Pass 2: old entries not taken leave.
        for old in visible.iter() {
            if old.slot == TAKEN {
                continue;
            }
            // Unless a hit reused the slot (its index then points at an entry with it).
            let index = slot_index[old.slot as usize];
            if next_visible
                .get(index as usize)
                .is_none_or(|e| e.slot != old.slot)
            {
                slot_index[old.slot as usize] = NO_ENTRY;
            }
            if !Self::carry_over_readded(
                old,
                next_visible,
                slot_index,
                plan,
                keys,
                ctx,
                tick,
                elapsed,
            ) {
                plan.left.push(old.id);
            }
        }
        std::mem::swap(visible, next_visible);

        // Top k only: O(n) selection, then sort k keys.
        let k = max_candidates(plan.budget_bytes).min(keys.len());
        if k == 0 {
            keys.clear();
        } else if k < keys.len() {
            keys.select_nth_unstable(k - 1);
            keys.truncate(k);
        }
        keys.sort_unstable();
        plan.candidates
            .extend(keys.iter().map(|&k| priority::key_entity(k)));
        plan.entered.sort_unstable();
        plan.left.sort_unstable();
        plan
    }

    /// `old` was not seen by this plan. If its id is back in the grid under another slot
    /// (removed and re-added since the last plan) and this plan entered it as a new entry,
    /// that entry takes over the old state as if the id had never left: it is no longer
    /// "entered", and its key is recomputed. Rare: costs one hash lookup per leaving entity.
    /// (If it came back inside the hysteresis ring rather than the area of interest, it was
    /// not entered and simply leaves.)
    #[allow(clippy::too_many_arguments)]
    fn carry_over_readded(
        old: &VisibleEntry,
        next_visible: &mut [VisibleEntry],
        slot_index: &[u32],
        plan: &mut Plan,
        keys: &mut Vec<u64>,
        ctx: &PlanContext<'_>,
        tick: Tick,
        elapsed: u32,
    ) -> bool {
        let Some(slot) = ctx.grid.slot_of(old.id) else {
            return false;
        };
        if slot == old.slot {
            return false;
        }
        let Some(new) = next_visible.get_mut(slot_index[slot as usize] as usize) else {
            return false;
        };
        if new.id != old.id || new.slot != slot {
            return false;
        }
        let tier = ctx.tiers.tier(new.tier);
        new.accumulator =
            priority::accumulate(old.accumulator, new.category, tier.priority_weight, elapsed);
        new.last_sent_tick = old.last_sent_tick;
        if let Some(pos) = plan.entered.iter().position(|&id| id == old.id) {
            plan.entered.swap_remove(pos);
        }
        if let Some(pos) = keys.iter().position(|&k| priority::key_entity(k) == old.id) {
            keys.swap_remove(pos);
        }
        let eligible = new.last_sent_tick == NEVER_SENT
            || new.category == PriorityCategory::Critical
            || tick.since(Tick(new.last_sent_tick)) >= tier.interval_ticks;
        if eligible {
            keys.push(priority::send_order_key(
                new.id,
                new.category,
                new.accumulator,
            ));
        }
        true
    }

    /// Records what the last plan actually sent: `sent` get their accumulator reset and
    /// their last-sent tick set; `bytes_used` (the whole datagram) is charged to the budget.
    /// Returns false when there is no uncommitted plan. Ids not in the visible set are a
    /// caller bug (debug assertion) and are ignored.
    pub(crate) fn commit(
        &mut self,
        grid: &SpatialGrid<PriorityCategory>,
        sent: &[EntityId],
        bytes_used: u32,
    ) -> bool {
        let Some(tick) = self.pending.take() else {
            return false;
        };
        for &id in sent {
            let by_slot = grid
                .slot_of(id)
                .and_then(|slot| self.slot_index.get(slot as usize))
                .map(|&index| index as usize)
                .filter(|&index| self.visible.get(index).is_some_and(|e| e.id == id));
            // Not found by slot only if the id left the grid since the plan: scan.
            let found = by_slot.or_else(|| self.visible.iter().position(|e| e.id == id));
            match found {
                Some(index) => {
                    let entry = &mut self.visible[index];
                    entry.accumulator = 0;
                    entry.last_sent_tick = tick.0;
                }
                None => debug_assert!(false, "committed {id:?}, which is not visible"),
            }
        }
        self.budget.spend(bytes_used);
        true
    }

    /// Estimate-based selection for callers without an encoder: takes candidates in order
    /// while `estimated_bytes_per_entity` still fits the budget, then commits them.
    pub(crate) fn select_and_commit(
        &mut self,
        grid: &SpatialGrid<PriorityCategory>,
        estimated_bytes_per_entity: u32,
    ) -> bool {
        let per_entity = estimated_bytes_per_entity.max(1);
        let fit = (self.plan.budget_bytes / per_entity) as usize;
        let n = fit.min(self.plan.candidates.len());
        let mut selected = std::mem::take(&mut self.plan.selected);
        selected.clear();
        selected.extend_from_slice(&self.plan.candidates[..n]);
        let ok = self.commit(grid, &selected, n as u32 * per_entity);
        self.plan.selected = selected;
        ok
    }
}
