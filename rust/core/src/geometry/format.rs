//! The world file's contents as plain types, and the rules every field must satisfy
//! (`WORLD_FORMAT.md`, "What a reader checks"). [`WorldFile::validate`] is the one place
//! those rules live: the reader calls it after parsing and the writer before writing, so a
//! file this crate writes is one it reads back.

use std::collections::HashSet;

use glam::{Quat, Vec2, Vec3};

/// The only world format version this build reads and writes.
pub const WORLD_FORMAT_VERSION: u16 = 1;
/// The file's first 8 bytes.
pub const WORLD_MAGIC: [u8; 8] = *b"MMOWORLD";
/// Largest file accepted, bytes.
pub const MAX_WORLD_FILE_BYTES: usize = 256 << 20;
/// Most tiles in a file.
pub const MAX_TILES: usize = 65_536;
/// Most heightfields in a tile.
pub const MAX_HEIGHTFIELDS_PER_TILE: usize = 64;
/// Most shapes in a tile.
pub const MAX_SHAPES_PER_TILE: usize = 65_536;
/// Most meshes in a tile.
pub const MAX_MESHES_PER_TILE: usize = 4096;
/// Most samples in one heightfield (`columns · rows`).
pub const MAX_HEIGHTFIELD_SAMPLES: usize = 4_194_304;
/// Most points of a convex hull.
pub const MAX_HULL_POINTS: usize = 256;
/// Most vertices of a mesh.
pub const MAX_MESH_VERTICES: usize = 65_536;
/// Most triangles of a mesh.
pub const MAX_MESH_TRIANGLES: usize = 131_072;
/// Largest tile coordinate magnitude.
pub const MAX_TILE_COORD: i32 = 1_000_000;
/// Largest local coordinate, half extent or radius, metres.
pub const MAX_LOCAL_M: f32 = 5000.0;
/// Smallest half extent or radius, metres.
pub const MIN_EXTENT_M: f32 = 0.001;

/// A whole world file.
#[derive(Clone, Debug, PartialEq)]
pub struct WorldFile {
    /// Side of every tile, metres, `1..=10000`.
    pub tile_size_m: f32,
    /// Tiles, sorted by (`y`, `x`) strictly ascending.
    pub tiles: Vec<Tile>,
}

/// A tile's coordinates: tile `(x, y)` covers `[x · size, (x + 1) · size)` on X, likewise Y.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileCoord {
    /// Row (compared first, so tiles sort row by row).
    pub y: i32,
    /// Column.
    pub x: i32,
}

/// One tile's elements.
#[derive(Clone, Debug, PartialEq)]
pub struct Tile {
    /// Where the tile is.
    pub coord: TileCoord,
    /// Landscape pieces.
    pub heightfields: Vec<Heightfield>,
    /// Simple shapes.
    pub shapes: Vec<StaticShape>,
    /// Triangle meshes.
    pub meshes: Vec<Mesh>,
}

/// A grid of 16-bit height samples (`WORLD_FORMAT.md`, "Heightfield").
#[derive(Clone, Debug, PartialEq)]
pub struct Heightfield {
    /// Element id, unique in the file.
    pub id: u32,
    /// X and Y of sample (column 0, row 0), metres.
    pub origin_m: Vec2,
    /// Distance between samples along X and Y, metres, each `0.01..=1000`.
    pub spacing_m: Vec2,
    /// Samples along X, `>= 2`.
    pub columns: u16,
    /// Samples along Y, `>= 2`.
    pub rows: u16,
    /// Metres per height unit, `(0, 1]`.
    pub height_scale_m: f32,
    /// Height of raw value 0, metres.
    pub height_offset_m: f32,
    /// `columns · rows` raw heights, row-major (`r · columns + c`).
    pub heights: Vec<u16>,
}

impl Heightfield {
    /// Height of sample `(c, r)` in metres, computed as the format says.
    #[must_use]
    pub fn sample_height_m(&self, c: usize, r: usize) -> f32 {
        let raw = self.heights[r * usize::from(self.columns) + c];
        self.height_offset_m + f32::from(raw) * self.height_scale_m
    }

    /// The XY extent: the corner opposite `origin_m`, metres.
    #[must_use]
    pub fn far_corner_m(&self) -> Vec2 {
        let cells = Vec2::new(
            f32::from(self.columns.saturating_sub(1)),
            f32::from(self.rows.saturating_sub(1)),
        );
        self.origin_m + cells * self.spacing_m
    }
}

/// A placement: where a shape's or mesh's local origin is, and how it is turned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pose {
    /// Translation, metres.
    pub position_m: Vec3,
    /// Rotation `[x, y, z, w]`, squared length within `[0.999, 1.001]` (normalised on use).
    pub rotation: Quat,
}

impl Pose {
    /// No rotation, at `position_m`.
    #[must_use]
    pub fn at(position_m: Vec3) -> Self {
        Pose {
            position_m,
            rotation: Quat::IDENTITY,
        }
    }

    /// The rotation divided by its length, computed in `f32` as the format says.
    #[must_use]
    pub fn unit_rotation(&self) -> Quat {
        let q = self.rotation;
        let len = (q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w).sqrt();
        Quat::from_xyzw(q.x / len, q.y / len, q.z / len, q.w / len)
    }

    /// A local point in world space.
    #[must_use]
    pub fn apply(&self, local_m: Vec3) -> Vec3 {
        self.position_m + self.unit_rotation() * local_m
    }
}

/// The kinds of simple shape.
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeKind {
    /// A box of the given half extents, centred on the pose.
    Box {
        /// Half extents along local X, Y, Z, metres.
        half_extents_m: Vec3,
    },
    /// A sphere centred on the pose.
    Sphere {
        /// Radius, metres.
        radius_m: f32,
    },
    /// A capsule along local Z, centred on the pose.
    Capsule {
        /// Half the segment between the sphere centres, metres.
        half_length_m: f32,
        /// Radius, metres.
        radius_m: f32,
    },
    /// The convex hull of local points.
    Convex {
        /// 4..=256 local points, metres.
        points_m: Vec<Vec3>,
    },
}

impl ShapeKind {
    /// The tag written in the file.
    #[must_use]
    pub fn tag(&self) -> u8 {
        match self {
            ShapeKind::Box { .. } => 1,
            ShapeKind::Sphere { .. } => 2,
            ShapeKind::Capsule { .. } => 3,
            ShapeKind::Convex { .. } => 4,
        }
    }
}

/// A simple static shape.
#[derive(Clone, Debug, PartialEq)]
pub struct StaticShape {
    /// Element id, unique in the file.
    pub id: u32,
    /// Placement.
    pub pose: Pose,
    /// What it is.
    pub kind: ShapeKind,
}

/// A triangle mesh.
#[derive(Clone, Debug, PartialEq)]
pub struct Mesh {
    /// Element id, unique in the file.
    pub id: u32,
    /// Placement.
    pub pose: Pose,
    /// Local vertices, metres.
    pub vertices_m: Vec<Vec3>,
    /// Vertex indices, three distinct per triangle.
    pub triangles: Vec<[u32; 3]>,
}

/// A rule of the format that a world breaks: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {reason}", tile.as_ref().map(|t| format!("{t}: ")).unwrap_or_default())]
pub struct WorldFormatError {
    /// The tile the field is in; `None` for the file header.
    pub tile: Option<TileRef>,
    /// The field, e.g. `shapes[12].half_extents_m.y`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A tile named in an error: its index in the file and, once read, its coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRef {
    /// Position in the file, from 0.
    pub index: usize,
    /// Coordinates, when they were read.
    pub coord: Option<TileCoord>,
}

impl std::fmt::Display for TileRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.coord {
            Some(c) => write!(f, "tile {} (x {}, y {})", self.index, c.x, c.y),
            None => write!(f, "tile {}", self.index),
        }
    }
}

/// Builds errors for one tile.
struct Checker {
    tile: Option<TileRef>,
}

impl Checker {
    fn err(&self, field: impl Into<String>, reason: impl Into<String>) -> WorldFormatError {
        WorldFormatError {
            tile: self.tile,
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn within(&self, field: &str, v: f32, lo: f32, hi: f32) -> Result<(), WorldFormatError> {
        // Written so that NaN fails.
        if v.is_finite() && v >= lo && v <= hi {
            Ok(())
        } else {
            Err(self.err(field, format!("must be within {lo}..={hi} (is {v})")))
        }
    }

    fn finite(&self, field: &str, v: f32) -> Result<(), WorldFormatError> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(self.err(field, format!("must be finite (is {v})")))
        }
    }

    fn vec3_within(&self, field: &str, v: Vec3, lo: f32, hi: f32) -> Result<(), WorldFormatError> {
        self.within(&format!("{field}.x"), v.x, lo, hi)?;
        self.within(&format!("{field}.y"), v.y, lo, hi)?;
        self.within(&format!("{field}.z"), v.z, lo, hi)
    }

    fn pose(&self, field: &str, pose: &Pose) -> Result<(), WorldFormatError> {
        for (axis, v) in [("x", pose.position_m.x), ("y", pose.position_m.y)] {
            self.finite(&format!("{field}.position_m.{axis}"), v)?;
        }
        self.finite(&format!("{field}.position_m.z"), pose.position_m.z)?;
        let q = pose.rotation;
        for (axis, v) in [("x", q.x), ("y", q.y), ("z", q.z), ("w", q.w)] {
            self.finite(&format!("{field}.rotation.{axis}"), v)?;
        }
        let len_sq = q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w;
        if !(0.999..=1.001).contains(&len_sq) {
            return Err(self.err(
                format!("{field}.rotation"),
                format!("squared length must be within 0.999..=1.001 (is {len_sq})"),
            ));
        }
        Ok(())
    }

    /// An element's XY bounding box must be centred in the tile and no larger than it.
    fn ownership(
        &self,
        field: &str,
        tile_size_m: f32,
        coord: TileCoord,
        min_xy_m: Vec2,
        max_xy_m: Vec2,
    ) -> Result<(), WorldFormatError> {
        let size = max_xy_m - min_xy_m;
        if size.x > tile_size_m || size.y > tile_size_m {
            return Err(self.err(
                field,
                format!(
                    "XY bounding box {:.3} x {:.3} m is larger than the tile ({tile_size_m} m): split it",
                    size.x, size.y
                ),
            ));
        }
        let centre = (min_xy_m + max_xy_m) * 0.5;
        let owner = tile_of(tile_size_m, centre);
        if owner != coord {
            return Err(self.err(
                field,
                format!(
                    "XY bounding box centre ({:.3}, {:.3}) is in tile (x {}, y {}), not this one",
                    centre.x, centre.y, owner.x, owner.y
                ),
            ));
        }
        Ok(())
    }
}

/// The tile containing an XY point.
#[must_use]
pub fn tile_of(tile_size_m: f32, xy_m: Vec2) -> TileCoord {
    let t = (xy_m / tile_size_m).floor();
    // Saturating casts: a point beyond the coordinate range lands in an out-of-range tile,
    // which the ownership check then reports.
    TileCoord {
        x: t.x as i32,
        y: t.y as i32,
    }
}

/// Corners of a local box rotated into world space, for bounding boxes.
fn box_corners(half_m: Vec3) -> [Vec3; 8] {
    let mut out = [Vec3::ZERO; 8];
    for (i, corner) in out.iter_mut().enumerate() {
        *corner = Vec3::new(
            if i & 1 == 0 { -half_m.x } else { half_m.x },
            if i & 2 == 0 { -half_m.y } else { half_m.y },
            if i & 4 == 0 { -half_m.z } else { half_m.z },
        );
    }
    out
}

/// The XY bounding box of world-space points.
fn xy_bounds(points: impl Iterator<Item = Vec3>) -> (Vec2, Vec2) {
    let mut lo = Vec2::splat(f32::INFINITY);
    let mut hi = Vec2::splat(f32::NEG_INFINITY);
    for p in points {
        lo = lo.min(p.truncate());
        hi = hi.max(p.truncate());
    }
    (lo, hi)
}

impl StaticShape {
    /// The shape's XY bounding box in world space (conservative for spheres and capsules).
    #[must_use]
    pub fn xy_bounds_m(&self) -> (Vec2, Vec2) {
        match &self.kind {
            ShapeKind::Box { half_extents_m } => xy_bounds(
                box_corners(*half_extents_m)
                    .into_iter()
                    .map(|c| self.pose.apply(c)),
            ),
            ShapeKind::Sphere { radius_m } => {
                let c = self.pose.position_m.truncate();
                (c - Vec2::splat(*radius_m), c + Vec2::splat(*radius_m))
            }
            ShapeKind::Capsule {
                half_length_m,
                radius_m,
            } => {
                let (lo, hi) = xy_bounds(
                    [Vec3::Z * *half_length_m, Vec3::Z * -*half_length_m]
                        .into_iter()
                        .map(|c| self.pose.apply(c)),
                );
                (lo - Vec2::splat(*radius_m), hi + Vec2::splat(*radius_m))
            }
            ShapeKind::Convex { points_m } => {
                xy_bounds(points_m.iter().map(|p| self.pose.apply(*p)))
            }
        }
    }
}

impl WorldFile {
    /// Checks every rule of the format; the error names the first broken one.
    pub fn validate(&self) -> Result<(), WorldFormatError> {
        let header = Checker { tile: None };
        header.within("tile_size_m", self.tile_size_m, 1.0, 10_000.0)?;
        if self.tiles.len() > MAX_TILES {
            return Err(header.err("tile_count", format!("must be <= {MAX_TILES}")));
        }
        let mut ids = HashSet::new();
        let mut previous: Option<TileCoord> = None;
        for (index, tile) in self.tiles.iter().enumerate() {
            let c = Checker {
                tile: Some(TileRef {
                    index,
                    coord: Some(tile.coord),
                }),
            };
            for (name, v) in [("tile_x", tile.coord.x), ("tile_y", tile.coord.y)] {
                if v.unsigned_abs() > MAX_TILE_COORD.unsigned_abs() {
                    return Err(c.err(name, format!("must be within ±{MAX_TILE_COORD}")));
                }
            }
            if previous.is_some_and(|p| p >= tile.coord) {
                return Err(c.err(
                    "tile_y, tile_x",
                    "tiles must be sorted by (tile_y, tile_x) strictly ascending",
                ));
            }
            previous = Some(tile.coord);
            self.validate_tile(&c, tile, &mut ids)?;
        }
        Ok(())
    }

    fn validate_tile(
        &self,
        c: &Checker,
        tile: &Tile,
        ids: &mut HashSet<u32>,
    ) -> Result<(), WorldFormatError> {
        if tile.heightfields.len() > MAX_HEIGHTFIELDS_PER_TILE {
            return Err(c.err(
                "heightfield_count",
                format!("must be <= {MAX_HEIGHTFIELDS_PER_TILE}"),
            ));
        }
        if tile.shapes.len() > MAX_SHAPES_PER_TILE {
            return Err(c.err("shape_count", format!("must be <= {MAX_SHAPES_PER_TILE}")));
        }
        if tile.meshes.len() > MAX_MESHES_PER_TILE {
            return Err(c.err("mesh_count", format!("must be <= {MAX_MESHES_PER_TILE}")));
        }
        let mut unique = |field: String, id: u32| {
            if ids.insert(id) {
                Ok(())
            } else {
                Err(c.err(field, format!("id {id} is used twice in the file")))
            }
        };
        for (i, h) in tile.heightfields.iter().enumerate() {
            let f = format!("heightfields[{i}]");
            unique(format!("{f}.id"), h.id)?;
            self.validate_heightfield(c, &f, tile.coord, h)?;
        }
        for (i, s) in tile.shapes.iter().enumerate() {
            let f = format!("shapes[{i}]");
            unique(format!("{f}.id"), s.id)?;
            self.validate_shape(c, &f, tile.coord, s)?;
        }
        for (i, m) in tile.meshes.iter().enumerate() {
            let f = format!("meshes[{i}]");
            unique(format!("{f}.id"), m.id)?;
            self.validate_mesh(c, &f, tile.coord, m)?;
        }
        Ok(())
    }

    fn validate_heightfield(
        &self,
        c: &Checker,
        f: &str,
        coord: TileCoord,
        h: &Heightfield,
    ) -> Result<(), WorldFormatError> {
        c.finite(&format!("{f}.origin_m.x"), h.origin_m.x)?;
        c.finite(&format!("{f}.origin_m.y"), h.origin_m.y)?;
        c.within(&format!("{f}.spacing_m.x"), h.spacing_m.x, 0.01, 1000.0)?;
        c.within(&format!("{f}.spacing_m.y"), h.spacing_m.y, 0.01, 1000.0)?;
        if h.columns < 2 {
            return Err(c.err(format!("{f}.columns"), "must be >= 2"));
        }
        if h.rows < 2 {
            return Err(c.err(format!("{f}.rows"), "must be >= 2"));
        }
        let samples = usize::from(h.columns) * usize::from(h.rows);
        if samples > MAX_HEIGHTFIELD_SAMPLES {
            return Err(c.err(
                format!("{f}.rows"),
                format!("columns · rows must be <= {MAX_HEIGHTFIELD_SAMPLES}"),
            ));
        }
        if h.heights.len() != samples {
            return Err(c.err(
                format!("{f}.heights"),
                format!(
                    "holds {} samples, columns · rows is {samples}",
                    h.heights.len()
                ),
            ));
        }
        if !(h.height_scale_m.is_finite() && h.height_scale_m > 0.0 && h.height_scale_m <= 1.0) {
            return Err(c.err(
                format!("{f}.height_scale_m"),
                format!("must be > 0 and <= 1 (is {})", h.height_scale_m),
            ));
        }
        c.finite(&format!("{f}.height_offset_m"), h.height_offset_m)?;
        let top_m = h.height_offset_m + f32::from(u16::MAX) * h.height_scale_m;
        c.finite(&format!("{f}.height_offset_m"), top_m)?;
        let far = h.far_corner_m();
        c.finite(&format!("{f}.origin_m"), far.x + far.y)?;
        c.ownership(f, self.tile_size_m, coord, h.origin_m, far)
    }

    fn validate_shape(
        &self,
        c: &Checker,
        f: &str,
        coord: TileCoord,
        s: &StaticShape,
    ) -> Result<(), WorldFormatError> {
        c.pose(&format!("{f}.pose"), &s.pose)?;
        match &s.kind {
            ShapeKind::Box { half_extents_m } => {
                c.vec3_within(
                    &format!("{f}.half_extents_m"),
                    *half_extents_m,
                    MIN_EXTENT_M,
                    MAX_LOCAL_M,
                )?;
            }
            ShapeKind::Sphere { radius_m } => {
                c.within(
                    &format!("{f}.radius_m"),
                    *radius_m,
                    MIN_EXTENT_M,
                    MAX_LOCAL_M,
                )?;
            }
            ShapeKind::Capsule {
                half_length_m,
                radius_m,
            } => {
                c.within(
                    &format!("{f}.half_length_m"),
                    *half_length_m,
                    0.0,
                    MAX_LOCAL_M,
                )?;
                c.within(
                    &format!("{f}.radius_m"),
                    *radius_m,
                    MIN_EXTENT_M,
                    MAX_LOCAL_M,
                )?;
            }
            ShapeKind::Convex { points_m } => {
                if !(4..=MAX_HULL_POINTS).contains(&points_m.len()) {
                    return Err(c.err(
                        format!("{f}.point_count"),
                        format!("must be within 4..={MAX_HULL_POINTS}"),
                    ));
                }
                for (i, p) in points_m.iter().enumerate() {
                    c.vec3_within(&format!("{f}.points_m[{i}]"), *p, -MAX_LOCAL_M, MAX_LOCAL_M)?;
                }
                if !has_volume(points_m) {
                    return Err(c.err(
                        format!("{f}.points_m"),
                        "the points have no volume (all on one plane, line or point)",
                    ));
                }
            }
        }
        let (lo, hi) = s.xy_bounds_m();
        c.ownership(f, self.tile_size_m, coord, lo, hi)
    }

    fn validate_mesh(
        &self,
        c: &Checker,
        f: &str,
        coord: TileCoord,
        m: &Mesh,
    ) -> Result<(), WorldFormatError> {
        c.pose(&format!("{f}.pose"), &m.pose)?;
        if !(3..=MAX_MESH_VERTICES).contains(&m.vertices_m.len()) {
            return Err(c.err(
                format!("{f}.vertex_count"),
                format!("must be within 3..={MAX_MESH_VERTICES}"),
            ));
        }
        if !(1..=MAX_MESH_TRIANGLES).contains(&m.triangles.len()) {
            return Err(c.err(
                format!("{f}.triangle_count"),
                format!("must be within 1..={MAX_MESH_TRIANGLES}"),
            ));
        }
        for (i, v) in m.vertices_m.iter().enumerate() {
            c.vec3_within(
                &format!("{f}.vertices_m[{i}]"),
                *v,
                -MAX_LOCAL_M,
                MAX_LOCAL_M,
            )?;
        }
        let count = m.vertices_m.len();
        for (i, t) in m.triangles.iter().enumerate() {
            if t.iter().any(|&v| v as usize >= count) {
                return Err(c.err(
                    format!("{f}.triangles[{i}]"),
                    format!("index out of range (vertex_count {count})"),
                ));
            }
            if t[0] == t[1] || t[1] == t[2] || t[0] == t[2] {
                return Err(c.err(
                    format!("{f}.triangles[{i}]"),
                    "the three indices must be distinct",
                ));
            }
        }
        let (lo, hi) = xy_bounds(m.vertices_m.iter().map(|v| m.pose.apply(*v)));
        c.ownership(f, self.tile_size_m, coord, lo, hi)
    }
}

/// Whether points span a volume: some four of them are not coplanar. Relative tolerance
/// against the points' extent, so a hull flattened to rounding error is refused too.
fn has_volume(points: &[Vec3]) -> bool {
    let Some(&a) = points.first() else {
        return false;
    };
    let extent = points.iter().fold(0.0_f32, |m, p| m.max((*p - a).length()));
    if extent <= 0.0 {
        return false;
    }
    let eps = extent * 1e-4;
    let Some(&b) = points.iter().find(|p| (**p - a).length() > eps) else {
        return false;
    };
    let ab = b - a;
    let Some(&c) = points
        .iter()
        .find(|p| ab.cross(**p - a).length() > eps * ab.length())
    else {
        return false;
    };
    let normal = ab.cross(c - a);
    let normal_len = normal.length();
    points
        .iter()
        .any(|p| (normal.dot(*p - a) / normal_len).abs() > eps)
}
