//! Per-client replication state: the visible set, per-group send queues, the byte budget,
//! and the plan produced each tick.
//!
//! A tick's cost is O(records chosen × log groups + removals + small), not O(visible): the
//! visible set is only re-read at an *interest refresh*, every
//! [`interest_refresh_ticks`](super::ReplicationConfig::interest_refresh_ticks) ticks.
//!
//! **Lazy priority.** An entry's accumulator is not stored: it is `category weight × tier
//! weight × age`, where age is the ticks since its last send (or, for an entry never sent,
//! since the tick before it entered, so it is one tick's growth on the tick it enters —
//! exactly what the old per-tick increment gave). It is computed only for the entries the
//! selection looks at. The product is a `u64` and never saturates (at most 80,000 × 2³²),
//! so the order is exact; when an entry changes tier, its whole age is weighed at the new
//! tier (the old per-tick increment weighed each tick at that tick's tier).
//!
//! **Groups.** Entries are grouped by (tier, category, sent before or not). Within a group
//! every accumulator grows at the same rate, so the send order within the group is
//! "oldest last send first, ties by id": each group is a queue ordered by (age origin, id).
//! Sent entries move to the back of their group's queue on `commit`, so appending keeps the
//! order. In a queue of sent entries the ones whose tier interval has elapsed are a prefix;
//! never-sent and Critical entries are always eligible.
//!
//! Each tick ([`ClientView::plan`]):
//! 1. removals noted since the last plan ([`ClientView::note_removed`], called by the
//!    replicator for the clients that see the entity) leave now — unless the id is back in
//!    the grid (removed and re-added, under a new slot), which keeps its state;
//! 2. if the refresh is due (every `interest_refresh_ticks` ticks, staggered by client id so
//!    the grid queries spread over ticks; at the first plan; after `set_viewer`): query the
//!    grid around the viewer (area of interest + hysteresis) and match each hit to its entry
//!    through a per-client table indexed by the grid's dense entity *slot* (no hashing). A
//!    match whose tier or category changed moves to its new group's queue (merged in order);
//!    a hit not found and within the area of interest *enters*; entries not seen *leave*.
//!    Between refreshes, the visible set and each entry's tier and category are reused:
//!    enter and leave caused by movement (and tier or category changes) show up to
//!    `interest_refresh_ticks − 1` ticks late;
//! 3. select the best `k` eligible entries (`k` is the caller's limit): a k-way merge of
//!    the groups' eligible fronts with a small heap keyed by (Critical first, accumulator
//!    descending, id). Keys are unique (they contain the id), so the result is exactly the
//!    prefix of the fully sorted order;
//! 4. sort the (short) entered and left lists by id.
//!
//! Selection reads only the queues, never the entries: outside a refresh every queued item
//! is valid. `commit` puts the sent ids in a small hash table, takes them out of the queue
//! prefixes the selection consumed (one compaction pass per group, reading only queue
//! items) and appends them to their groups in `sent` order, so the only per-entry access
//! is the update of each sent entry; a sent non-candidate or a removal takes its entry's
//! item out by binary search on the key. Inside a refresh, items of
//! moved or departed entries are left stale (recognised by a per-entry token) and dropped
//! before the refresh ends. All buffers live in the view and are reused,
//! so a steady-state tick does not allocate. Nothing observable depends on the order of the
//! grid's hits: queues are ordered by unique integer keys, entered/left by id.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use glam::Vec3;

use super::budget::ByteBudget;
use super::grid::SpatialGrid;
use super::priority::PriorityCategory;
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
    /// Entities that entered the area of interest this tick, ascending id (movement is
    /// noticed at interest refreshes only; see the module docs).
    pub entered: Vec<EntityId>,
    /// Entities that left the area of interest (noticed at an interest refresh) or were
    /// removed (noticed at the next plan) this tick, ascending id.
    pub left: Vec<EntityId>,
    /// Filled only by `select_within_budget`: the prefix of `candidates` that fit the
    /// budget at the caller's per-entity estimate (already committed). Empty otherwise.
    pub selected: Vec<EntityId>,
}

/// Fewest elements a scratch buffer keeps room for when shrunk.
const SCRATCH_MIN: usize = 16;

/// Shrinks `v` to twice its length when it holds room for more than four times that.
fn shrink_vec<T>(v: &mut Vec<T>) {
    if v.capacity() > 4 * v.len().max(SCRATCH_MIN) {
        v.shrink_to(2 * v.len().max(SCRATCH_MIN));
    }
}

/// [`shrink_vec`] for a queue.
fn shrink_deque<T>(v: &mut VecDeque<T>) {
    if v.capacity() > 4 * v.len().max(SCRATCH_MIN) {
        v.shrink_to(2 * v.len().max(SCRATCH_MIN));
    }
}

/// `slot_index` value of a slot with no visible entry.
const NO_ENTRY: u32 = u32::MAX;

/// `commit`'s table value of an id already handled (a duplicate in `sent`).
const USED: u32 = u32::MAX - 1;

/// One visible entity as seen by one client (or a free entry when `!alive`).
#[derive(Clone, Copy, Debug)]
struct Entry {
    id: EntityId,
    /// The entity's grid slot.
    slot: u32,
    /// Origin of the age: tick of the last send, or the tick it entered if never sent
    /// (the age then counts one more tick).
    since: u32,
    /// Matches the token of the entry's one valid queue item; bumped whenever that item
    /// goes stale (send, group change, leave). Never reset, also across reuse of the entry.
    token: u32,
    /// Refresh epoch that last saw the entry.
    seen: u32,
    tier: u8,
    category: PriorityCategory,
    sent: bool,
    alive: bool,
}

impl Entry {
    fn group(&self) -> usize {
        group_index(self.tier, self.category, self.sent)
    }
}

fn group_index(tier: u8, category: PriorityCategory, sent: bool) -> usize {
    (usize::from(tier) * 4 + category as usize) * 2 + usize::from(sent)
}

/// A queued entry; a queue is sorted by `key()` (age origin, then id).
#[derive(Clone, Copy, Debug)]
struct QueueItem {
    since: u32,
    id: u32,
    entry: u32,
    token: u32,
}

impl QueueItem {
    fn key(&self) -> u64 {
        (u64::from(self.since) << 32) | u64::from(self.id)
    }
}

/// The queue of one (tier, category, sent) group.
#[derive(Clone, Debug, Default)]
struct Group {
    items: VecDeque<QueueItem>,
    /// Stale items in `items`; zero outside a refresh.
    stale: u32,
}

impl Group {
    /// Position of the valid item of `entry` (which must be queued here at or after
    /// `from`; the items from `from` on are sorted and hold no key below those before).
    fn position_of(&self, entries: &[Entry], entry: u32, from: usize) -> Option<usize> {
        let e = &entries[entry as usize];
        let key = (u64::from(e.since) << 32) | u64::from(e.id.0);
        let (mut lo, mut hi) = (from, self.items.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.items[mid].key() < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo..self.items.len())
            .take_while(|&i| self.items[i].key() == key)
            .find(|&i| self.items[i].entry == entry && self.items[i].token == e.token)
    }
}

/// Read-only inputs shared by every client's plan in one tick.
#[derive(Clone, Copy)]
pub(crate) struct PlanContext<'a> {
    pub grid: &'a SpatialGrid<PriorityCategory>,
    pub tiers: &'a TierTable,
    pub aoi_sq_m2: f32,
    pub query_radius_m: f32,
    pub refresh_ticks: u32,
}

/// Replication state of one client. See the module docs for the per-tick algorithm.
#[derive(Clone, Debug)]
pub(crate) struct ClientView {
    viewer: Viewer,
    last_viewer_position_m: Option<Vec3>,
    /// Stagger of the refresh schedule: refresh when `(tick + phase) % refresh_ticks == 0`.
    phase: u32,
    last_refresh: Option<Tick>,
    force_refresh: bool,
    epoch: u32,
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Grid slot → index into `entries`, or `NO_ENTRY`. Invariant: for every alive entry
    /// `i`, `slot_index[entries[i].slot] == i`; every other slot holds `NO_ENTRY`.
    slot_index: Vec<u32>,
    groups: Vec<Group>,
    /// Removed entities (id, slot) this client saw, noted since the last plan.
    pending_removals: Vec<(EntityId, u32)>,
    /// Grid hits of the last refresh (the buffer itself lives only during a refresh).
    last_hits_len: usize,
    moved: Vec<u32>,
    /// Per group, how many front items the current plan's selection consumed (its
    /// candidates), for `commit`.
    consumed: Vec<usize>,
    /// `commit`'s small open-addressing table: sent id + 1 (0 = empty slot) → entry index.
    sent_keys: Vec<u64>,
    sent_entries: Vec<u32>,
    merge_scratch: VecDeque<QueueItem>,
    cursors: Vec<usize>,
    heap: BinaryHeap<Reverse<(u128, u32)>>,
    budget: ByteBudget,
    last_plan_tick: Option<Tick>,
    /// The tick planned and not yet committed.
    pending: Option<Tick>,
    plan: Plan,
}

impl ClientView {
    pub(crate) fn new(viewer: Viewer, budget: ByteBudget, phase: u32) -> Self {
        ClientView {
            viewer,
            last_viewer_position_m: None,
            phase,
            last_refresh: None,
            force_refresh: true,
            epoch: 0,
            entries: Vec::new(),
            free: Vec::new(),
            slot_index: Vec::new(),
            groups: Vec::new(),
            pending_removals: Vec::new(),
            last_hits_len: 0,
            moved: Vec::new(),
            consumed: Vec::new(),
            sent_keys: Vec::new(),
            sent_entries: Vec::new(),
            merge_scratch: VecDeque::new(),
            cursors: Vec::new(),
            heap: BinaryHeap::new(),
            budget,
            last_plan_tick: None,
            pending: None,
            plan: Plan::default(),
        }
    }

    /// Changes the viewer; the next plan refreshes interest whatever the schedule.
    pub(crate) fn set_viewer(&mut self, viewer: Viewer) {
        self.viewer = viewer;
        self.force_refresh = true;
    }

    pub(crate) fn plan_ref(&self) -> &Plan {
        &self.plan
    }

    /// Heap bytes held, from the buffers' capacities.
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.entries.capacity() * size_of::<Entry>()
            + self.free.capacity() * size_of::<u32>()
            + self.slot_index.capacity() * size_of::<u32>()
            + self.groups.capacity() * size_of::<Group>()
            + self
                .groups
                .iter()
                .map(|g| g.items.capacity() * size_of::<QueueItem>())
                .sum::<usize>()
            + self.pending_removals.capacity() * size_of::<(EntityId, u32)>()
            + self.moved.capacity() * size_of::<u32>()
            + self.consumed.capacity() * size_of::<usize>()
            + self.sent_keys.capacity() * size_of::<u64>()
            + self.sent_entries.capacity() * size_of::<u32>()
            + self.merge_scratch.capacity() * size_of::<QueueItem>()
            + self.cursors.capacity() * size_of::<usize>()
            + self.heap.capacity() * size_of::<Reverse<(u128, u32)>>()
            + (self.plan.candidates.capacity()
                + self.plan.entered.capacity()
                + self.plan.left.capacity()
                + self.plan.selected.capacity())
                * size_of::<EntityId>()
    }

    pub(crate) fn visible_count(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// The visible set's ids into `out` (cleared first), ascending. O(visible).
    pub(crate) fn visible_ids(&self, out: &mut Vec<EntityId>) {
        out.clear();
        out.extend(self.entries.iter().filter(|e| e.alive).map(|e| e.id));
        out.sort_unstable();
    }

    /// The entity `id` (at grid `slot`) is being removed from the grid: if this client sees
    /// it, it leaves at the next plan (unless it is back in the grid by then). O(1).
    pub(crate) fn note_removed(&mut self, id: EntityId, slot: u32) {
        if let Some(&index) = self.slot_index.get(slot as usize)
            && self
                .entries
                .get(index as usize)
                .is_some_and(|e| e.alive && e.id == id)
        {
            self.pending_removals.push((id, slot));
        }
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
        debug_assert!(
            self.last_plan_tick.is_none_or(|last| tick >= last),
            "ticks must not go backwards"
        );
        self.last_plan_tick = Some(tick.max(self.last_plan_tick.unwrap_or(tick)));
        self.pending = Some(tick);
        self.plan.tick = tick;
        self.plan.budget_bytes = self.budget.refill(tick);
        self.plan.candidates.clear();
        self.plan.entered.clear();
        self.plan.left.clear();
        self.plan.selected.clear();
        if self.slot_index.len() < ctx.grid.slot_capacity() {
            self.slot_index.resize(ctx.grid.slot_capacity(), NO_ENTRY);
        }
        let group_count = ctx.tiers.tiers().len() * 8;
        if self.groups.len() < group_count {
            self.groups.resize_with(group_count, Group::default);
        }

        self.apply_removals(ctx);
        let refresh_ticks = ctx.refresh_ticks.max(1);
        let due = self.force_refresh
            || match self.last_refresh {
                None => true,
                Some(last) => {
                    last != tick
                        && (tick.since(last) >= refresh_ticks
                            || (tick.0 % refresh_ticks + self.phase % refresh_ticks)
                                .is_multiple_of(refresh_ticks))
                }
            };
        if due {
            self.refresh(tick, ctx);
        }
        let k = max_candidates(self.plan.budget_bytes);
        self.select(tick, ctx, k);
        self.plan.entered.sort_unstable();
        self.plan.left.sort_unstable();
        &self.plan
    }

    /// Step 1 of the plan: noted removals leave (or are re-slotted if back in the grid).
    ///
    /// Two passes, so that entities removed and re-added into each other's slots (19 back
    /// in 38's old slot and 38 in 19's) keep their own entries: first every noted entry is
    /// found through its old slot and that slot is cleared, then each is re-slotted or
    /// leaves. Re-slotting while still looking up old slots would overwrite the mapping of
    /// an entry not yet looked up.
    fn apply_removals(&mut self, ctx: &PlanContext<'_>) {
        let mut removals = std::mem::take(&mut self.pending_removals);
        // Pass 1: (id, old slot) -> (id, entry index) for entries still as noted; each
        // entry once (its old slot is cleared when found, so a repeat finds nothing).
        removals.retain_mut(|(id, slot)| {
            let index = self.slot_index[*slot as usize];
            let found = self
                .entries
                .get(index as usize)
                .is_some_and(|e| e.alive && e.id == *id && e.slot == *slot);
            if found {
                self.slot_index[*slot as usize] = NO_ENTRY;
                *slot = index;
            }
            found
        });
        // Pass 2.
        for &(id, index) in &removals {
            match ctx.grid.slot_of(id) {
                // Removed and re-added since: keeps its state under the new slot (which no
                // other visible entry maps to: its previous holder was removed too, and
                // was cleared in pass 1).
                Some(new_slot) => {
                    self.slot_index[new_slot as usize] = index;
                    self.entries[index as usize].slot = new_slot;
                }
                None => {
                    self.plan.left.push(id);
                    self.free_entry(index, true);
                }
            }
        }
        removals.clear();
        self.pending_removals = removals;
    }

    /// Frees entry `index`; its queue item is removed at once if `eager`, else left stale
    /// (a refresh compacts before it ends).
    fn free_entry(&mut self, index: u32, eager: bool) {
        let group = self.entries[index as usize].group();
        if eager {
            self.unqueue(group, index);
        } else {
            self.groups[group].stale += 1;
        }
        let entry = &mut self.entries[index as usize];
        entry.alive = false;
        entry.token = entry.token.wrapping_add(1);
        let slot = entry.slot;
        if self.slot_index[slot as usize] == index {
            self.slot_index[slot as usize] = NO_ENTRY;
        }
        self.free.push(index);
    }

    /// Removes the valid item of `entry` from `group` (binary search by key).
    fn unqueue(&mut self, group: usize, entry: u32) {
        let g = &mut self.groups[group];
        match g.position_of(&self.entries, entry, 0) {
            Some(position) => {
                g.items.remove(position);
            }
            None => debug_assert!(false, "entry {entry} not queued in group {group}"),
        }
    }

    /// Step 2 of the plan: the grid query, enter/leave, tier and category changes.
    fn refresh(&mut self, tick: Tick, ctx: &PlanContext<'_>) {
        self.force_refresh = false;
        self.last_refresh = Some(tick);
        self.epoch = self.epoch.wrapping_add(1);
        let epoch = self.epoch;

        let (viewer_position_m, self_id) = match self.viewer {
            Viewer::Entity(id) => (ctx.grid.get(id).map(|(p, _)| p), Some(id)),
            Viewer::Position(p) => (Some(p), None),
        };
        if viewer_position_m.is_some() {
            self.last_viewer_position_m = viewer_position_m;
        }
        // The hits live only during a refresh (every few ticks): allocated here at last
        // time's size and freed at the end, not kept per client between refreshes.
        let mut hits = Vec::with_capacity(self.last_hits_len);
        if let Some(p) = self.last_viewer_position_m {
            ctx.grid
                .query_radius_hits_unsorted(p, ctx.query_radius_m, &mut hits);
        }
        self.last_hits_len = hits.len();

        self.moved.clear();
        for hit in &hits {
            if Some(hit.id) == self_id {
                continue;
            }
            let tier = ctx.tiers.tier_for(hit.distance_sq_m2);
            let index = self.slot_index[hit.slot as usize];
            match self.entries.get_mut(index as usize) {
                Some(e) if e.alive && e.id == hit.id => {
                    e.seen = epoch;
                    if e.tier != tier || e.category != hit.data {
                        self.groups[e.group()].stale += 1;
                        e.token = e.token.wrapping_add(1);
                        e.tier = tier;
                        e.category = hit.data;
                        self.moved.push(index);
                    }
                }
                _ if hit.distance_sq_m2 <= ctx.aoi_sq_m2 => {
                    let entry = Entry {
                        id: hit.id,
                        slot: hit.slot,
                        since: tick.0,
                        token: 0,
                        seen: epoch,
                        tier,
                        category: hit.data,
                        sent: false,
                        alive: true,
                    };
                    let index = match self.free.pop() {
                        Some(i) => {
                            let token = self.entries[i as usize].token.wrapping_add(1);
                            self.entries[i as usize] = Entry { token, ..entry };
                            i
                        }
                        None => {
                            self.entries.push(entry);
                            (self.entries.len() - 1) as u32
                        }
                    };
                    self.slot_index[hit.slot as usize] = index;
                    self.plan.entered.push(hit.id);
                    self.moved.push(index);
                }
                // In the hysteresis ring and not visible before: does not enter.
                _ => {}
            }
        }

        // Entries not seen leave.
        for index in 0..self.entries.len() as u32 {
            let e = &self.entries[index as usize];
            if e.alive && e.seen != epoch {
                self.plan.left.push(e.id);
                self.free_entry(index, false);
            }
        }

        // Queue the moved and entered entries, in order, group by group.
        let mut moved = std::mem::take(&mut self.moved);
        let entries = &self.entries;
        moved.sort_unstable_by_key(|&i| {
            let e = &entries[i as usize];
            (e.group(), e.since, e.id.0)
        });
        let mut start = 0;
        while start < moved.len() {
            let group = self.entries[moved[start] as usize].group();
            let end = start
                + moved[start..]
                    .iter()
                    .take_while(|&&i| self.entries[i as usize].group() == group)
                    .count();
            self.insert_sorted(group, &moved[start..end]);
            start = end;
        }
        moved.clear();
        self.moved = moved;

        // Drop the stale items, so that selection never has to check; give back what the
        // queues no longer need (merges swap buffers between queues and the scratch, and
        // a crowd passing through a group leaves its capacity behind).
        for group in &mut self.groups {
            if group.stale > 0 {
                let entries = &self.entries;
                group
                    .items
                    .retain(|it| entries[it.entry as usize].token == it.token);
                group.stale = 0;
            }
            shrink_deque(&mut group.items);
        }
        shrink_deque(&mut self.merge_scratch);
        shrink_vec(&mut self.moved);
        shrink_vec(&mut self.plan.entered);
        shrink_vec(&mut self.plan.left);
    }

    /// Queues `batch` (entry indices, sorted by key, all of `group`, tokens already
    /// bumped) into `group`: appended when they all sort after the back (the usual case),
    /// merged otherwise.
    fn insert_sorted(&mut self, group: usize, batch: &[u32]) {
        let entries = &self.entries;
        let item = |i: u32| {
            let e = &entries[i as usize];
            QueueItem {
                since: e.since,
                id: e.id.0,
                entry: i,
                token: e.token,
            }
        };
        let g = &mut self.groups[group];
        let first = item(batch[0]);
        if g.items.back().is_none_or(|b| b.key() <= first.key()) {
            g.items.extend(batch.iter().map(|&i| item(i)));
            return;
        }
        let out = &mut self.merge_scratch;
        out.clear();
        let mut new = batch.iter().map(|&i| item(i)).peekable();
        for old in g.items.drain(..) {
            while let Some(n) = new.next_if(|n| n.key() < old.key()) {
                out.push_back(n);
            }
            out.push_back(old);
        }
        out.extend(new);
        std::mem::swap(&mut g.items, out);
    }

    /// Step 3 of the plan: the best `k` eligible entries into `plan.candidates`.
    fn select(&mut self, tick: Tick, ctx: &PlanContext<'_>, k: usize) {
        let ClientView {
            groups,
            cursors,
            heap,
            plan,
            consumed,
            ..
        } = self;
        heap.clear();
        cursors.clear();
        cursors.resize(groups.len(), 0);
        consumed.clear();
        consumed.resize(groups.len(), 0);
        if k == 0 {
            return;
        }
        // Outside a refresh no queue holds a stale item, so entries are not read here.
        debug_assert!(groups.iter().all(|g| g.stale == 0));
        // The item at `position`, if eligible, with its key.
        let front = |g: &Group, group: usize, position: usize| -> Option<(usize, u128)> {
            let tier_index = (group / 8) as u8;
            let category = PriorityCategory::ALL[(group / 2) % 4];
            let sent = group % 2 == 1;
            let it = g.items.get(position)?;
            let tier = ctx.tiers.tier(tier_index);
            let age = tick.since(Tick(it.since)) + u32::from(!sent);
            if sent && category != PriorityCategory::Critical && age < tier.interval_ticks {
                return None;
            }
            let accumulator = u64::from(category.base_weight())
                * u64::from(tier.priority_weight)
                * u64::from(age);
            let not_critical = u128::from(category != PriorityCategory::Critical);
            let key = (not_critical << 96)
                | (u128::from(u64::MAX - accumulator) << 32)
                | u128::from(it.id);
            Some((position, key))
        };
        for (group, g) in groups.iter().enumerate() {
            if let Some((position, key)) = front(g, group, 0) {
                cursors[group] = position;
                heap.push(Reverse((key, group as u32)));
            }
        }
        while plan.candidates.len() < k {
            let Some(Reverse((key, group))) = heap.pop() else {
                break;
            };
            let group = group as usize;
            plan.candidates.push(EntityId(key as u32));
            consumed[group] = cursors[group] + 1;
            if let Some((position, key)) = front(&groups[group], group, cursors[group] + 1) {
                cursors[group] = position;
                heap.push(Reverse((key, group as u32)));
            }
        }
    }

    /// Records what the last plan actually sent: `sent` restart their age and move to the
    /// back of their group's queue; `bytes_used` (the whole datagram) is charged to the
    /// budget. Returns false when there is no uncommitted plan. Ids not in the visible set
    /// are a caller bug (debug assertion) and are ignored.
    pub(crate) fn commit(
        &mut self,
        grid: &SpatialGrid<PriorityCategory>,
        sent: &[EntityId],
        bytes_used: u32,
    ) -> bool {
        let Some(tick) = self.pending.take() else {
            return false;
        };
        let mut moved = std::mem::take(&mut self.moved);
        moved.clear();
        // 1. The sent ids in a small hash table (cache-resident: no per-id lookup in the
        //    grid or the client's tables).
        let bits = (2 * sent.len().max(1))
            .next_power_of_two()
            .trailing_zeros()
            .max(4);
        let mask = (1usize << bits) - 1;
        let home = |id: u32| ((u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 40) as usize;
        self.sent_keys.clear();
        self.sent_keys.resize(mask + 1, 0);
        self.sent_entries.clear();
        self.sent_entries.resize(mask + 1, NO_ENTRY);
        let find = |keys: &[u64], id: u32| -> (usize, bool) {
            let mut i = home(id) & mask;
            loop {
                match keys[i] {
                    0 => return (i, false),
                    k if k == u64::from(id) + 1 => return (i, true),
                    _ => i = (i + 1) & mask,
                }
            }
        };
        for &id in sent {
            let (i, present) = find(&self.sent_keys, id.0);
            if !present {
                self.sent_keys[i] = u64::from(id.0) + 1;
            }
        }
        // 2. Take the sent candidates out of the queue prefixes the selection consumed (one
        //    compaction pass each, reading only the queues) and note their entries.
        for (group, &count) in self.consumed.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let items = &mut self.groups[group].items;
            let mut write = 0;
            for read in 0..count {
                let it = items[read];
                let (i, present) = find(&self.sent_keys, it.id);
                if present {
                    self.sent_entries[i] = it.entry;
                } else {
                    items[write] = it;
                    write += 1;
                }
            }
            items.drain(write..count);
        }
        self.consumed.clear();
        // ... in `sent` order (duplicates dropped); other visible entities (rare) are
        // found through the grid's slot and unqueued by binary search.
        for &id in sent {
            let (i, _) = find(&self.sent_keys, id.0);
            let entry = self.sent_entries[i];
            if entry == USED {
                continue;
            }
            self.sent_entries[i] = USED;
            if entry != NO_ENTRY {
                moved.push(entry);
                continue;
            }
            let by_slot = grid
                .slot_of(id)
                .and_then(|slot| self.slot_index.get(slot as usize))
                .copied()
                .filter(|&index| {
                    self.entries
                        .get(index as usize)
                        .is_some_and(|e| e.alive && e.id == id)
                });
            // Not found by slot only if the id left the grid since the plan: scan.
            let found = by_slot.or_else(|| {
                self.entries
                    .iter()
                    .position(|e| e.alive && e.id == id)
                    .map(|i| i as u32)
            });
            match found {
                Some(index) => {
                    let group = self.entries[index as usize].group();
                    self.unqueue(group, index);
                    moved.push(index);
                }
                None => debug_assert!(false, "committed {id:?}, which is not visible"),
            }
        }
        // 3. Restart their age and append them to their (sent) group, in `sent` order
        //    (ascending id from `Zone::replicate`; otherwise each is inserted in order).
        for &index in &moved {
            let e = &mut self.entries[index as usize];
            e.token = e.token.wrapping_add(1);
            e.since = tick.0;
            e.sent = true;
            let item = QueueItem {
                since: e.since,
                id: e.id.0,
                entry: index,
                token: e.token,
            };
            let items = &mut self.groups[e.group()].items;
            if items.back().is_none_or(|b| b.key() <= item.key()) {
                items.push_back(item);
            } else {
                // Planned and committed twice in one tick: insert in order.
                let position = items.partition_point(|it| it.key() < item.key());
                items.insert(position, item);
            }
        }
        moved.clear();
        self.moved = moved;
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
