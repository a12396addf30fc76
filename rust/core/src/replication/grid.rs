//! A spatial hash grid over the horizontal plane (X forward, Y right; Z is ignored) for
//! interest queries.
//!
//! Space is cut into square cells of `cell_size_m`; only non-empty-ever cells exist, found
//! through a hash map keyed by cell coordinates. Each cell keeps its entries (id, XY
//! position, a small `Copy` payload such as a priority category) in a dense `Vec`, so a
//! radius query gathers the overlapped cells, filters by exact squared distance and sorts by
//! id: the output order never depends on insertion order or hash iteration order.
//!
//! The hash is a fixed splitmix64 finalizer, not SipHash: keys are server-assigned ids and
//! server-computed cell coordinates, never attacker-chosen, and the interest query looks up
//! ~170 cells per client per tick. Cells are never freed once created (a 10 km × 10 km zone
//! at 50 m cells is at most 40,000 small entries).

use crate::fast_hash::FastMap;

use glam::{Vec2, Vec3};

use crate::entity::EntityId;

/// Cell coordinates packed as `(x as u32) << 32 | (y as u32)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct CellKey(u64);

impl CellKey {
    fn new(x: i32, y: i32) -> Self {
        CellKey((u64::from(x as u32) << 32) | u64::from(y as u32))
    }
}

#[derive(Clone, Copy, Debug)]
struct CellEntry<T> {
    id: EntityId,
    slot: u32,
    position_m: Vec2,
    data: T,
}

/// Where an entity lives. Invariant: `cells[cell][index].id` is the entity.
#[derive(Clone, Copy, Debug)]
struct Location {
    cell: u32,
    index: u32,
    slot: u32,
}

/// One result of [`SpatialGrid::query_radius_hits`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridHit<T> {
    /// The entity.
    pub id: EntityId,
    /// The entity's dense slot (see [`SpatialGrid::slot_of`]).
    pub slot: u32,
    /// Squared horizontal distance from the query centre, m².
    pub distance_sq_m2: f32,
    /// The payload stored with the entity.
    pub data: T,
}

/// Error for a cell size that is not finite and positive.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("cell_size_m must be finite and positive, got {0}")]
pub struct CellSizeError(pub f32);

/// Spatial hash over XY of entities with a `Copy` payload `T` (use `()` for none).
#[derive(Clone, Debug)]
pub struct SpatialGrid<T = ()> {
    /// Invariant: finite and positive.
    cell_size_m: f32,
    inv_cell_size: f32,
    cell_index: FastMap<CellKey, u32>,
    /// Cells by index; `cell_index` maps coordinates to these. Never shrinks.
    cells: Vec<Vec<CellEntry<T>>>,
    locations: FastMap<EntityId, Location>,
    /// Slots released by removed entities, reused last-in first-out.
    free_slots: Vec<u32>,
    /// One past the highest slot ever handed out.
    slot_capacity: u32,
}

impl<T: Copy> SpatialGrid<T> {
    /// An empty grid with square cells of `cell_size_m`.
    pub fn new(cell_size_m: f32) -> Result<Self, CellSizeError> {
        if !(cell_size_m.is_finite() && cell_size_m > 0.0) {
            return Err(CellSizeError(cell_size_m));
        }
        Ok(SpatialGrid {
            cell_size_m,
            inv_cell_size: 1.0 / cell_size_m,
            cell_index: FastMap::default(),
            cells: Vec::new(),
            locations: FastMap::default(),
            free_slots: Vec::new(),
            slot_capacity: 0,
        })
    }

    /// The cell edge length, metres.
    #[must_use]
    pub fn cell_size_m(&self) -> f32 {
        self.cell_size_m
    }

    /// Heap bytes held, estimated from capacities (a hash map's slot counted as its key,
    /// value and one control byte).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.cell_index.capacity() * (size_of::<CellKey>() + size_of::<u32>() + 1)
            + self.cells.capacity() * size_of::<Vec<CellEntry<T>>>()
            + self
                .cells
                .iter()
                .map(|c| c.capacity() * size_of::<CellEntry<T>>())
                .sum::<usize>()
            + self.locations.capacity() * (size_of::<EntityId>() + size_of::<Location>() + 1)
            + self.free_slots.capacity() * size_of::<u32>()
    }

    /// Number of entities in the grid.
    #[must_use]
    pub fn len(&self) -> usize {
        self.locations.len()
    }

    /// True when the grid holds no entity.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.locations.is_empty()
    }

    fn cell_coord(&self, v: f32) -> i32 {
        // `as` saturates (and maps NaN to 0), so absurd positions land in edge cells.
        (v * self.inv_cell_size).floor() as i32
    }

    fn cell_of(&self, position_m: Vec2) -> CellKey {
        CellKey::new(self.cell_coord(position_m.x), self.cell_coord(position_m.y))
    }

    fn cell_slot(&mut self, key: CellKey) -> u32 {
        let next = self.cells.len() as u32;
        let slot = *self.cell_index.entry(key).or_insert(next);
        if slot == next {
            self.cells.push(Vec::new());
        }
        slot
    }

    /// One past the highest slot in use or ever used: every [`SpatialGrid::slot_of`] is
    /// below this. Never shrinks.
    #[must_use]
    pub fn slot_capacity(&self) -> usize {
        self.slot_capacity as usize
    }

    /// The entity's dense slot: a small integer unique among the entities present, kept
    /// while the entity stays in the grid and reused after it is removed. Lets per-client
    /// state be indexed by slot instead of hashed by id (check the id: a slot may have been
    /// reused by another entity since).
    #[must_use]
    pub fn slot_of(&self, id: EntityId) -> Option<u32> {
        self.locations.get(&id).map(|loc| loc.slot)
    }

    /// Inserts `id` at `position_m` with `data`, or moves it and replaces its data if it is
    /// already present. Returns true when the entity is new. Only X and Y are used.
    pub fn insert(&mut self, id: EntityId, position_m: Vec3, data: T) -> bool {
        debug_assert!(position_m.is_finite(), "entity {id:?} at {position_m}");
        let position_m = position_m.truncate();
        let key = self.cell_of(position_m);
        let cell = self.cell_slot(key);
        let existing = self.locations.get(&id).copied();
        let slot = if let Some(loc) = existing {
            if loc.cell == cell {
                let entry = &mut self.cells[loc.cell as usize][loc.index as usize];
                entry.position_m = position_m;
                entry.data = data;
                return false;
            }
            self.detach(loc);
            loc.slot
        } else if let Some(free) = self.free_slots.pop() {
            free
        } else {
            self.slot_capacity += 1;
            self.slot_capacity - 1
        };
        let entries = &mut self.cells[cell as usize];
        entries.push(CellEntry {
            id,
            slot,
            position_m,
            data,
        });
        let index = (entries.len() - 1) as u32;
        self.locations.insert(id, Location { cell, index, slot });
        existing.is_none()
    }

    /// Moves an existing entity, keeping its data. Returns false (and does nothing) when
    /// `id` is not in the grid.
    pub fn update_position(&mut self, id: EntityId, position_m: Vec3) -> bool {
        let Some(&loc) = self.locations.get(&id) else {
            return false;
        };
        let data = self.cells[loc.cell as usize][loc.index as usize].data;
        self.insert(id, position_m, data);
        true
    }

    /// Removes `id`; returns false when it was not present.
    pub fn remove(&mut self, id: EntityId) -> bool {
        match self.locations.remove(&id) {
            Some(loc) => {
                self.detach(loc);
                self.free_slots.push(loc.slot);
                true
            }
            None => false,
        }
    }

    /// Takes the entry at `loc` out of its cell (swap-remove) and fixes the location of the
    /// entry that moved into its place. Leaves `locations` for the removed id untouched.
    fn detach(&mut self, loc: Location) {
        let entries = &mut self.cells[loc.cell as usize];
        entries.swap_remove(loc.index as usize);
        if let Some(moved) = entries.get(loc.index as usize)
            && let Some(moved_loc) = self.locations.get_mut(&moved.id)
        {
            moved_loc.index = loc.index;
        }
    }

    /// The position (Z = 0) and payload of `id`, if present.
    #[must_use]
    pub fn get(&self, id: EntityId) -> Option<(Vec3, T)> {
        let loc = self.locations.get(&id)?;
        let e = &self.cells[loc.cell as usize][loc.index as usize];
        Some((e.position_m.extend(0.0), e.data))
    }

    /// Writes to `out` (cleared first) the ids of every entity whose horizontal distance to
    /// `center_m` is at most `radius_m`, sorted by id.
    pub fn query_radius(&self, center_m: Vec3, radius_m: f32, out: &mut Vec<EntityId>) {
        out.clear();
        self.for_each_in_radius(center_m, radius_m, |hit| out.push(hit.id));
        out.sort_unstable();
    }

    /// Like [`SpatialGrid::query_radius`] but with squared distances and payloads; `out` is
    /// cleared first and sorted by id.
    pub fn query_radius_hits(&self, center_m: Vec3, radius_m: f32, out: &mut Vec<GridHit<T>>) {
        self.query_radius_hits_unsorted(center_m, radius_m, out);
        out.sort_unstable_by_key(|h| h.id);
    }

    /// Like [`SpatialGrid::query_radius_hits`] but in an unspecified order (it depends on the
    /// history of inserts and moves, never on hashing): for callers that index the hits by
    /// slot and do not need the sort.
    pub fn query_radius_hits_unsorted(
        &self,
        center_m: Vec3,
        radius_m: f32,
        out: &mut Vec<GridHit<T>>,
    ) {
        out.clear();
        self.for_each_in_radius(center_m, radius_m, |hit| out.push(hit));
    }

    /// Calls `f` for every entity within `radius_m` of `center_m`, in unspecified order.
    fn for_each_in_radius(&self, center_m: Vec3, radius_m: f32, mut f: impl FnMut(GridHit<T>)) {
        // Negative or NaN radius: nothing is within it.
        if radius_m.is_nan() || radius_m < 0.0 || self.cells.is_empty() {
            return;
        }
        let c = center_m.truncate();
        let r2 = radius_m * radius_m;
        let mut visit = |entries: &[CellEntry<T>]| {
            for e in entries {
                let d2 = e.position_m.distance_squared(c);
                if d2 <= r2 {
                    f(GridHit {
                        id: e.id,
                        slot: e.slot,
                        distance_sq_m2: d2,
                        data: e.data,
                    });
                }
            }
        };
        // Pad the cell range by a millimetre so float rounding of `c ± r` never drops a
        // cell holding an entity exactly on the circle.
        let reach = radius_m + 1e-3;
        let (x0, x1) = (self.cell_coord(c.x - reach), self.cell_coord(c.x + reach));
        let (y0, y1) = (self.cell_coord(c.y - reach), self.cell_coord(c.y + reach));
        let span = (i64::from(x1) - i64::from(x0) + 1) * (i64::from(y1) - i64::from(y0) + 1);
        if span >= self.cells.len() as i64 {
            // Fewer cells exist than the query overlaps: scan them all instead.
            for entries in &self.cells {
                visit(entries);
            }
            return;
        }
        for x in x0..=x1 {
            for y in y0..=y1 {
                if let Some(&slot) = self.cell_index.get(&CellKey::new(x, y)) {
                    visit(&self.cells[slot as usize]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute_force(points: &[(u32, f32, f32)], c: Vec2, r: f32) -> Vec<EntityId> {
        let mut ids: Vec<EntityId> = points
            .iter()
            .filter(|(_, x, y)| Vec2::new(*x, *y).distance_squared(c) <= r * r)
            .map(|(id, _, _)| EntityId(*id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    #[test]
    fn insert_move_remove() {
        let mut g: SpatialGrid = SpatialGrid::new(50.0).unwrap();
        assert!(g.insert(EntityId(1), Vec3::new(10.0, 10.0, 5.0), ()));
        assert!(g.insert(EntityId(2), Vec3::new(-10.0, 10.0, 0.0), ()));
        assert!(!g.insert(EntityId(1), Vec3::new(400.0, 0.0, 0.0), ()));
        let mut out = Vec::new();
        g.query_radius(Vec3::ZERO, 100.0, &mut out);
        assert_eq!(out, vec![EntityId(2)]);
        g.query_radius(Vec3::new(400.0, 0.0, 0.0), 1.0, &mut out);
        assert_eq!(out, vec![EntityId(1)]);
        assert!(g.update_position(EntityId(1), Vec3::new(0.0, 0.0, 0.0)));
        assert!(!g.update_position(EntityId(3), Vec3::ZERO));
        g.query_radius(Vec3::ZERO, 100.0, &mut out);
        assert_eq!(out, vec![EntityId(1), EntityId(2)]);
        assert!(g.remove(EntityId(2)));
        assert!(!g.remove(EntityId(2)));
        g.query_radius(Vec3::ZERO, 100.0, &mut out);
        assert_eq!(out, vec![EntityId(1)]);
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn radius_is_horizontal_and_inclusive() {
        let mut g: SpatialGrid<u8> = SpatialGrid::new(50.0).unwrap();
        g.insert(EntityId(7), Vec3::new(30.0, 40.0, 999.0), 3);
        let mut hits = Vec::new();
        g.query_radius_hits(Vec3::new(0.0, 0.0, -50.0), 50.0, &mut hits);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].distance_sq_m2, 2500.0);
        assert_eq!(hits[0].data, 3);
    }

    #[test]
    fn rejects_bad_cell_size() {
        assert!(SpatialGrid::<()>::new(0.0).is_err());
        assert!(SpatialGrid::<()>::new(f32::NAN).is_err());
    }

    proptest! {
        #[test]
        fn matches_brute_force(
            points in proptest::collection::vec((1u32..200, -500f32..500.0, -500f32..500.0), 0..150),
            moves in proptest::collection::vec((1u32..200, -500f32..500.0, -500f32..500.0), 0..50),
            removals in proptest::collection::vec(1u32..200, 0..30),
            cx in -600f32..600.0, cy in -600f32..600.0, r in 0f32..400.0,
            cell in 5f32..120.0,
        ) {
            let mut g: SpatialGrid = SpatialGrid::new(cell).unwrap();
            // Reference model: last position per id, BTreeMap for determinism.
            let mut model = std::collections::BTreeMap::new();
            for &(id, x, y) in points.iter().chain(moves.iter()) {
                g.insert(EntityId(id), Vec3::new(x, y, 0.0), ());
                model.insert(id, (x, y));
            }
            for id in removals {
                prop_assert_eq!(g.remove(EntityId(id)), model.remove(&id).is_some());
            }
            prop_assert_eq!(g.len(), model.len());
            let flat: Vec<(u32, f32, f32)> = model.iter().map(|(&id, &(x, y))| (id, x, y)).collect();
            let mut out = Vec::new();
            g.query_radius(Vec3::new(cx, cy, 0.0), r, &mut out);
            prop_assert_eq!(out, brute_force(&flat, Vec2::new(cx, cy), r));
        }
    }
}
