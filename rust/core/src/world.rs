//! The world's split into zones, sans-IO: a rectangle of `columns × rows` equal zones, each
//! simulated by its own [`Zone`](crate::zone::Zone), and the border margin within which an
//! entity of one zone is also shown (as a *ghost*) by its neighbours.
//!
//! Zones are numbered row-major from the world's lowest corner: zone `row * columns + col`
//! covers X in `[min_x + col·w, min_x + (col+1)·w)` and Y likewise, the last column and row
//! including the world's upper edge. A position outside the world belongs to the nearest
//! zone (clamped), so [`WorldLayout::zone_at`] is total.
//!
//! **Visibility.** An entity at `p` must be seen by its owner zone and by every neighbour
//! whose rectangle is within `border_m` of `p` (Euclidean distance to the rectangle, so a
//! corner neighbour sees a disc around its corner). `border_m` is at most the smaller zone
//! side, so only the 8 neighbours can be within it. For seamless views pick
//! `border_m >= area_of_interest_radius_m` of the replication config: a client near a
//! border sees the neighbour's entities only within `border_m` of the border.
//!
//! **Globally unique ids.** Every zone of a layout allocates [`EntityId`](crate::entity::EntityId)s
//! and [`ConnectionId`](crate::zone::ConnectionId)s from its own residue class:
//! [`WorldLayout::allocated_id`] gives `k · zone_count + zone + 1` for the zone's `k`-th id
//! (`k = 0, 1, …`). Invariant: ids of different zones never collide, 0 is never used, and a
//! one-zone world numbers `1, 2, 3, …` as a lone zone always did. So an entity or a
//! connection keeps its id when it moves to another zone. Each zone can allocate
//! `u32::MAX / zone_count` ids before ids would repeat.

use std::fmt;

use glam::{Vec2, Vec3};

/// Identifies a zone of a [`WorldLayout`] (row-major index, `< zone_count`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ZoneId(pub u16);

/// An axis-aligned XY rectangle, metres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    /// Lowest X and Y.
    pub min_xy_m: Vec2,
    /// Highest X and Y.
    pub max_xy_m: Vec2,
}

impl Rect {
    /// A rectangle from its corners (validated where it is used, e.g. [`WorldLayout::new`]).
    #[must_use]
    pub fn new(min_xy_m: Vec2, max_xy_m: Vec2) -> Self {
        Rect { min_xy_m, max_xy_m }
    }

    /// Horizontal distance from `position_m` (Z ignored) to the rectangle, metres; 0 inside
    /// or on the edge.
    #[must_use]
    pub fn distance_m(&self, position_m: Vec3) -> f32 {
        let p = position_m.truncate();
        let below = self.min_xy_m - p;
        let above = p - self.max_xy_m;
        below.max(above).max(Vec2::ZERO).length()
    }

    /// Width (X) and depth (Y), metres.
    #[must_use]
    pub fn size_m(&self) -> Vec2 {
        self.max_xy_m - self.min_xy_m
    }
}

/// A layout rejected by [`WorldLayout::new`]: `field` names the bad setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutError {
    /// The setting (`world`, `columns`, `rows`, `border_m`).
    pub field: &'static str,
    /// Why it was rejected.
    pub reason: String,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid world layout: `{}` {}", self.field, self.reason)
    }
}

impl std::error::Error for LayoutError {}

/// The world split into equal zones. See the module docs.
///
/// Invariants (checked by [`WorldLayout::new`]): `world` is finite with `min < max` on both
/// axes; `1 <= columns`, `1 <= rows`, `columns × rows <= u16::MAX`; `border_m` is finite,
/// `>= 0` and at most the smaller side of a zone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorldLayout {
    world: Rect,
    columns: u16,
    rows: u16,
    border_m: f32,
}

impl WorldLayout {
    /// A layout of `columns × rows` zones over `world`, or the reason it is invalid.
    pub fn new(world: Rect, columns: u16, rows: u16, border_m: f32) -> Result<Self, LayoutError> {
        let bad = |field, reason: &str| LayoutError {
            field,
            reason: reason.to_owned(),
        };
        if !(world.min_xy_m.is_finite() && world.max_xy_m.is_finite()) {
            return Err(bad("world", "must be finite"));
        }
        if world.min_xy_m.x >= world.max_xy_m.x || world.min_xy_m.y >= world.max_xy_m.y {
            return Err(bad("world", "must have min < max on X and on Y"));
        }
        if columns == 0 {
            return Err(bad("columns", "must be at least 1"));
        }
        if rows == 0 {
            return Err(bad("rows", "must be at least 1"));
        }
        if u32::from(columns) * u32::from(rows) > u32::from(u16::MAX) {
            return Err(LayoutError {
                field: "columns",
                reason: format!(
                    "columns × rows = {} exceeds {} zones",
                    u32::from(columns) * u32::from(rows),
                    u16::MAX
                ),
            });
        }
        let zone_m = world.size_m() / Vec2::new(f32::from(columns), f32::from(rows));
        let smaller_side_m = zone_m.x.min(zone_m.y);
        if !(border_m.is_finite() && border_m >= 0.0) {
            return Err(bad("border_m", "must be finite and >= 0"));
        }
        if border_m > smaller_side_m {
            return Err(LayoutError {
                field: "border_m",
                reason: format!(
                    "{border_m} m exceeds the smaller zone side ({smaller_side_m} m): only \
                     direct neighbours may share a border"
                ),
            });
        }
        Ok(WorldLayout {
            world,
            columns,
            rows,
            border_m,
        })
    }

    /// One zone covering `world` with no border: what a lone zone simulates.
    pub fn single(world: Rect) -> Result<Self, LayoutError> {
        WorldLayout::new(world, 1, 1, 0.0)
    }

    /// The world rectangle.
    #[must_use]
    pub fn world(&self) -> Rect {
        self.world
    }

    /// Zones along X.
    #[must_use]
    pub fn columns(&self) -> u16 {
        self.columns
    }

    /// Zones along Y.
    #[must_use]
    pub fn rows(&self) -> u16 {
        self.rows
    }

    /// The visibility margin, metres.
    #[must_use]
    pub fn border_m(&self) -> f32 {
        self.border_m
    }

    /// Number of zones (`columns × rows`, at most `u16::MAX`).
    #[must_use]
    pub fn zone_count(&self) -> u16 {
        // Checked in `new`: the product fits in u16.
        self.columns * self.rows
    }

    /// Every zone id, ascending.
    pub fn zones(&self) -> impl Iterator<Item = ZoneId> + use<> {
        (0..self.zone_count()).map(ZoneId)
    }

    /// True when `zone` is one of this layout's zones.
    #[must_use]
    pub fn contains_zone(&self, zone: ZoneId) -> bool {
        zone.0 < self.zone_count()
    }

    fn cell(&self, zone: ZoneId) -> Option<(u16, u16)> {
        self.contains_zone(zone)
            .then(|| (zone.0 % self.columns, zone.0 / self.columns))
    }

    fn edge_m(min_m: f32, max_m: f32, index: u16, count: u16) -> f32 {
        if index >= count {
            max_m
        } else {
            min_m + (max_m - min_m) * f32::from(index) / f32::from(count)
        }
    }

    /// The zone that owns `position_m` (Z ignored). Positions outside the world (or NaN)
    /// belong to the nearest zone, so this never fails.
    #[must_use]
    pub fn zone_at(&self, position_m: Vec3) -> ZoneId {
        let w = self.world;
        let index = |p: f32, min: f32, max: f32, count: u16| -> u16 {
            let t = ((p - min) / (max - min) * f32::from(count)).floor();
            // `as` saturates (NaN to 0); the clamp keeps the upper edge in the last cell.
            (t as i64).clamp(0, i64::from(count) - 1) as u16
        };
        let col = index(position_m.x, w.min_xy_m.x, w.max_xy_m.x, self.columns);
        let row = index(position_m.y, w.min_xy_m.y, w.max_xy_m.y, self.rows);
        ZoneId(row * self.columns + col)
    }

    /// The rectangle `zone` owns, or `None` when the id is not in the layout.
    #[must_use]
    pub fn bounds(&self, zone: ZoneId) -> Option<Rect> {
        let (col, row) = self.cell(zone)?;
        let w = self.world;
        let x = |i| Self::edge_m(w.min_xy_m.x, w.max_xy_m.x, i, self.columns);
        let y = |i| Self::edge_m(w.min_xy_m.y, w.max_xy_m.y, i, self.rows);
        Some(Rect::new(
            Vec2::new(x(col), y(row)),
            Vec2::new(x(col + 1), y(row + 1)),
        ))
    }

    /// The up to 8 zones sharing an edge or a corner with `zone`, ascending (empty for an id
    /// not in the layout).
    #[must_use]
    pub fn neighbours(&self, zone: ZoneId) -> Vec<ZoneId> {
        let Some((col, row)) = self.cell(zone) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(8);
        for r in row.saturating_sub(1)..=(row + 1).min(self.rows - 1) {
            for c in col.saturating_sub(1)..=(col + 1).min(self.columns - 1) {
                if (c, r) != (col, row) {
                    out.push(ZoneId(r * self.columns + c));
                }
            }
        }
        out
    }

    /// True when `zone` must see an entity at `position_m`: it owns the position or its
    /// rectangle is within `border_m` of it.
    #[must_use]
    pub fn sees(&self, zone: ZoneId, position_m: Vec3) -> bool {
        self.bounds(zone)
            .is_some_and(|r| r.distance_m(position_m) <= self.border_m)
            || (self.contains_zone(zone) && self.zone_at(position_m) == zone)
    }

    /// The zones that must see an entity at `position_m`, into `out` (cleared first): the
    /// owner first, then every neighbour within `border_m`, ascending.
    pub fn zones_seeing(&self, position_m: Vec3, out: &mut Vec<ZoneId>) {
        out.clear();
        let owner = self.zone_at(position_m);
        out.push(owner);
        for n in self.neighbours(owner) {
            if self.sees(n, position_m) {
                out.push(n);
            }
        }
    }

    /// The `k`-th id (`k = 0, 1, …`) `zone` allocates for entities and connections:
    /// `k · zone_count + zone + 1` (see the module docs), or `None` past `u32::MAX`.
    #[must_use]
    pub fn allocated_id(&self, zone: ZoneId, k: u32) -> Option<u32> {
        k.checked_mul(u32::from(self.zone_count()))?
            .checked_add(u32::from(zone.0) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_by_one() -> WorldLayout {
        WorldLayout::new(Rect::new(Vec2::ZERO, Vec2::new(200.0, 100.0)), 2, 1, 30.0)
            .expect("valid layout")
    }

    fn three_by_three() -> WorldLayout {
        WorldLayout::new(
            Rect::new(Vec2::new(-150.0, -150.0), Vec2::new(150.0, 150.0)),
            3,
            3,
            20.0,
        )
        .expect("valid layout")
    }

    #[test]
    fn zone_at_edges() {
        let l = two_by_one();
        assert_eq!(l.zone_at(Vec3::new(0.0, 0.0, 0.0)), ZoneId(0));
        assert_eq!(l.zone_at(Vec3::new(99.999, 50.0, 0.0)), ZoneId(0));
        assert_eq!(l.zone_at(Vec3::new(100.0, 50.0, 0.0)), ZoneId(1));
        assert_eq!(l.zone_at(Vec3::new(200.0, 100.0, 0.0)), ZoneId(1));
        // Outside the world: the nearest zone.
        assert_eq!(l.zone_at(Vec3::new(-5.0, -5.0, 0.0)), ZoneId(0));
        assert_eq!(l.zone_at(Vec3::new(1e9, 1e9, 0.0)), ZoneId(1));
        assert_eq!(l.zone_at(Vec3::new(f32::NAN, 50.0, 0.0)), ZoneId(0));
        let g = three_by_three();
        assert_eq!(g.zone_at(Vec3::new(0.0, 0.0, 0.0)), ZoneId(4));
        assert_eq!(g.zone_at(Vec3::new(-150.0, 149.0, 0.0)), ZoneId(6));
        assert_eq!(g.zone_at(Vec3::new(50.0, -50.0, 0.0)), ZoneId(5));
        assert_eq!(g.zone_at(Vec3::new(150.0, 150.0, 0.0)), ZoneId(8));
    }

    #[test]
    fn bounds_tile_the_world() {
        let l = two_by_one();
        assert_eq!(
            l.bounds(ZoneId(0)),
            Some(Rect::new(Vec2::ZERO, Vec2::new(100.0, 100.0)))
        );
        assert_eq!(
            l.bounds(ZoneId(1)),
            Some(Rect::new(Vec2::new(100.0, 0.0), Vec2::new(200.0, 100.0)))
        );
        assert_eq!(l.bounds(ZoneId(2)), None);
        let g = three_by_three();
        for z in g.zones() {
            let r = g.bounds(z).expect("zone in layout");
            let centre = ((r.min_xy_m + r.max_xy_m) / 2.0).extend(0.0);
            assert_eq!(g.zone_at(centre), z);
            assert_eq!(g.zone_at(r.min_xy_m.extend(0.0)), z);
        }
    }

    #[test]
    fn neighbours_in_a_grid() {
        let g = three_by_three();
        assert_eq!(
            g.neighbours(ZoneId(4)),
            [0, 1, 2, 3, 5, 6, 7, 8].map(ZoneId).to_vec()
        );
        assert_eq!(g.neighbours(ZoneId(0)), [1, 3, 4].map(ZoneId).to_vec());
        assert_eq!(
            g.neighbours(ZoneId(5)),
            [1, 2, 4, 7, 8].map(ZoneId).to_vec()
        );
        assert!(g.neighbours(ZoneId(9)).is_empty());
        assert_eq!(two_by_one().neighbours(ZoneId(1)), vec![ZoneId(0)]);
        let single = WorldLayout::single(Rect::new(Vec2::ZERO, Vec2::ONE)).expect("valid");
        assert!(single.neighbours(ZoneId(0)).is_empty());
    }

    #[test]
    fn visibility_set() {
        let l = two_by_one();
        let mut out = Vec::new();
        l.zones_seeing(Vec3::new(50.0, 50.0, 0.0), &mut out);
        assert_eq!(out, vec![ZoneId(0)]);
        l.zones_seeing(Vec3::new(70.0, 50.0, 0.0), &mut out);
        assert_eq!(out, vec![ZoneId(0), ZoneId(1)], "exactly border_m away");
        l.zones_seeing(Vec3::new(69.9, 50.0, 0.0), &mut out);
        assert_eq!(out, vec![ZoneId(0)]);
        l.zones_seeing(Vec3::new(120.0, 10.0, 0.0), &mut out);
        assert_eq!(out, vec![ZoneId(1), ZoneId(0)], "owner first");
        // Corner: Euclidean distance to the corner neighbour.
        let g = three_by_three();
        // Zone 4 is [-50, 50]²; (40, 40) is 14.1 m from zone 8's corner (50, 50).
        g.zones_seeing(Vec3::new(40.0, 40.0, 0.0), &mut out);
        assert_eq!(out, [4, 5, 7, 8].map(ZoneId).to_vec());
        // (35, 35) is 21.2 m from the corner: zones 5 and 7 (15 m) but not 8.
        g.zones_seeing(Vec3::new(35.0, 35.0, 0.0), &mut out);
        assert_eq!(out, [4, 5, 7].map(ZoneId).to_vec());
        assert!(g.sees(ZoneId(8), Vec3::new(40.0, 40.0, 0.0)));
        assert!(!g.sees(ZoneId(9), Vec3::new(40.0, 40.0, 0.0)));
    }

    #[test]
    fn ids_are_disjoint_across_zones() {
        let g = three_by_three();
        let mut seen = std::collections::BTreeSet::new();
        for z in g.zones() {
            for k in 0..50 {
                let id = g.allocated_id(z, k).expect("small k");
                assert_ne!(id, 0);
                assert!(seen.insert(id), "id {id} allocated twice");
            }
        }
        let single = WorldLayout::single(Rect::new(Vec2::ZERO, Vec2::ONE)).expect("valid");
        assert_eq!(single.allocated_id(ZoneId(0), 0), Some(1));
        assert_eq!(single.allocated_id(ZoneId(0), 41), Some(42));
        assert_eq!(g.allocated_id(ZoneId(8), u32::MAX / 9), None);
    }

    #[test]
    fn bad_layouts_are_rejected_with_the_field() {
        let world = Rect::new(Vec2::ZERO, Vec2::new(200.0, 100.0));
        let field = |r: Result<WorldLayout, LayoutError>| r.expect_err("invalid").field;
        assert_eq!(field(WorldLayout::new(world, 0, 1, 0.0)), "columns");
        assert_eq!(field(WorldLayout::new(world, 1, 0, 0.0)), "rows");
        assert_eq!(field(WorldLayout::new(world, 1000, 1000, 0.0)), "columns");
        assert_eq!(field(WorldLayout::new(world, 2, 1, -1.0)), "border_m");
        assert_eq!(field(WorldLayout::new(world, 2, 1, f32::NAN)), "border_m");
        // Zones are 100 × 100: a 101 m border would reach past the neighbour.
        let e = WorldLayout::new(world, 2, 1, 101.0).expect_err("too wide");
        assert_eq!(e.field, "border_m");
        assert!(e.to_string().contains("smaller zone side"), "{e}");
        let flat = Rect::new(Vec2::ZERO, Vec2::new(200.0, 0.0));
        assert_eq!(field(WorldLayout::new(flat, 1, 1, 0.0)), "world");
        let inf = Rect::new(Vec2::ZERO, Vec2::new(f32::INFINITY, 1.0));
        assert_eq!(field(WorldLayout::new(inf, 1, 1, 0.0)), "world");
    }
}
