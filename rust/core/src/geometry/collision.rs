//! The loaded world's collision, and the queries the movement step asks of it.
//!
//! Shapes and meshes become `parry3d` shapes behind one bounding-volume hierarchy (parry's
//! `Bvh`), so a query touches only the elements near it instead of a linear list.
//! Heightfields are kept as height grids and answered directly ([`CollisionWorld::terrain`]):
//! the movement step follows terrain by looking its height up under the character, which is
//! exact for a grid and far cheaper than casting a capsule against its triangles. Traces
//! ([`CollisionWorld::line_trace`]) see heightfields too, through parry's heightfield shape
//! built on the same triangles.
//!
//! Determinism: parry is built with `enhanced-determinism` (its maths through `libm`, no
//! SIMD-dependent paths), and every query that can meet several elements at the same time of
//! impact picks the lowest element id, so the answer does not depend on the hierarchy's
//! layout or on which tiles a process loaded.

use std::sync::Arc;

use glam::{Vec2, Vec3};
use parry3d::bounding_volume::{Aabb as ParryAabb, BoundingVolume};
use parry3d::math::{Pose as ParryPose, Rot3, Vector as PVec};
use parry3d::partitioning::{Bvh, BvhBuildStrategy};
use parry3d::query::{Ray, ShapeCastOptions, cast_shapes, contact};
use parry3d::shape::{
    HeightField, HeightFieldCellStatus, Segment, Shape, SharedShape, TriMesh, TriMeshFlags,
};
use parry3d::utils::Array2;

use sha2::{Digest, Sha256};

use super::file::LoadedWorld;
use super::format::{Heightfield, Mesh, Pose, ShapeKind, StaticShape, TileCoord};

/// Below this cosine between a motion and a touched surface, the motion counts as along
/// the surface, not into it ([`CollisionWorld::cast_capsule`]).
const PARALLEL_COS: f32 = 1e-3;

/// What a shape cast or trace hit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepHit {
    /// Fraction of the motion travelled before contact, `0..=1`.
    pub fraction: f32,
    /// The surface's normal at the contact, pointing out of the element toward the caster.
    pub normal: Vec3,
    /// The element's id (`WORLD_FORMAT.md`).
    pub element_id: u32,
}

/// The terrain under a point: height and the surface normal there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TerrainSample {
    /// Height of the surface, metres.
    pub height_m: f32,
    /// Unit normal of the triangle the point is over (`z > 0`).
    pub normal: Vec3,
}

/// One shape or mesh in the hierarchy.
struct Element {
    id: u32,
    pose: ParryPose,
    shape: SharedShape,
}

/// A heightfield for direct lookups (parry's copy for traces is in `terrain_shapes`).
struct Terrain {
    source: Heightfield,
    min_xy_m: Vec2,
    max_xy_m: Vec2,
}

/// Static collision of (part of) a world. Cheap to share: clone the [`Arc`].
///
/// Two worlds compare equal when they were built from the same content (the same file and
/// the same tiles kept, or the same shapes): `identity` is a SHA-256 of that.
pub struct CollisionWorld {
    identity: [u8; 32],
    /// SHA-256 of the world file it was built from; zeros when not built from a file.
    file_hash: [u8; 32],
    elements: Vec<Element>,
    bvh: Bvh,
    terrains: Vec<Terrain>,
    /// The heightfields as parry shapes, for traces (same order as `terrains`).
    terrain_shapes: Vec<Element>,
}

impl PartialEq for CollisionWorld {
    fn eq(&self, other: &Self) -> bool {
        self.identity == other.identity
    }
}

impl std::fmt::Debug for CollisionWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollisionWorld")
            .field("elements", &self.elements.len())
            .field("heightfields", &self.terrains.len())
            .finish()
    }
}

fn pv(v: Vec3) -> PVec {
    PVec::new(v.x, v.y, v.z)
}

fn gv(v: PVec) -> Vec3 {
    Vec3::new(v.x, v.y, v.z)
}

fn parry_pose(p: &Pose) -> ParryPose {
    let q = p.unit_rotation();
    ParryPose::from_parts(pv(p.position_m), Rot3::from_xyzw(q.x, q.y, q.z, q.w))
}

/// Why a validated world could still not be built into collision shapes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("element {element_id}: {reason}")]
pub struct CollisionBuildError {
    /// The element's id.
    pub element_id: u32,
    /// What parry refused.
    pub reason: String,
}

impl CollisionWorld {
    /// A world with nothing in it (the flat default: only the movement config's ground
    /// plane and bounds remain).
    #[must_use]
    pub fn empty() -> Arc<Self> {
        Arc::new(CollisionWorld {
            identity: [0; 32],
            file_hash: [0; 32],
            elements: Vec::new(),
            bvh: Bvh::new(),
            terrains: Vec::new(),
            terrain_shapes: Vec::new(),
        })
    }

    /// Builds the collision of every tile of a loaded file for which `keep` is true
    /// (a zone keeps its area plus a border of one tile).
    pub fn build(
        loaded: &LoadedWorld,
        keep: impl Fn(TileCoord) -> bool,
    ) -> Result<Arc<Self>, CollisionBuildError> {
        let mut identity = Sha256::new();
        identity.update(b"mmo-world-tiles\0");
        identity.update(loaded.hash);
        let mut heightfields = Vec::new();
        let mut shapes = Vec::new();
        let mut meshes = Vec::new();
        for tile in loaded.world.tiles.iter().filter(|t| keep(t.coord)) {
            identity.update(tile.coord.x.to_le_bytes());
            identity.update(tile.coord.y.to_le_bytes());
            heightfields.extend(tile.heightfields.iter().cloned());
            shapes.extend(tile.shapes.iter().cloned());
            meshes.extend(tile.meshes.iter().cloned());
        }
        Self::from_parts(
            identity.finalize().into(),
            loaded.hash,
            heightfields,
            &shapes,
            &meshes,
        )
    }

    /// A world of shapes only, not from a file (tests, benchmarks, the C ABI's blocker
    /// boxes). Ids must be unique; the shapes must satisfy the format's field rules.
    pub fn from_shapes(shapes: &[StaticShape]) -> Result<Arc<Self>, CollisionBuildError> {
        let mut identity = Sha256::new();
        identity.update(b"mmo-world-shapes\0");
        // Debug output of f32 round-trips exactly, so this is a canonical description.
        identity.update(format!("{shapes:?}").as_bytes());
        Self::from_parts(identity.finalize().into(), [0; 32], Vec::new(), shapes, &[])
    }

    fn from_parts(
        identity: [u8; 32],
        file_hash: [u8; 32],
        heightfields: Vec<Heightfield>,
        shapes: &[StaticShape],
        meshes: &[Mesh],
    ) -> Result<Arc<Self>, CollisionBuildError> {
        let mut elements = Vec::with_capacity(shapes.len() + meshes.len());
        for s in shapes {
            let shape = match &s.kind {
                ShapeKind::Box { half_extents_m } => {
                    SharedShape::cuboid(half_extents_m.x, half_extents_m.y, half_extents_m.z)
                }
                ShapeKind::Sphere { radius_m } => SharedShape::ball(*radius_m),
                ShapeKind::Capsule {
                    half_length_m,
                    radius_m,
                } => SharedShape::capsule_z(*half_length_m, *radius_m),
                ShapeKind::Convex { points_m } => {
                    let points: Vec<PVec> = points_m.iter().map(|p| pv(*p)).collect();
                    SharedShape::convex_hull(&points).ok_or_else(|| CollisionBuildError {
                        element_id: s.id,
                        reason: "parry could not build the convex hull".into(),
                    })?
                }
            };
            elements.push(Element {
                id: s.id,
                pose: parry_pose(&s.pose),
                shape,
            });
        }
        for m in meshes {
            let vertices: Vec<PVec> = m.vertices_m.iter().map(|v| pv(*v)).collect();
            let mesh = TriMesh::with_flags(vertices, m.triangles.clone(), TriMeshFlags::empty())
                .map_err(|e| CollisionBuildError {
                    element_id: m.id,
                    reason: format!("parry refused the mesh: {e:?}"),
                })?;
            elements.push(Element {
                id: m.id,
                pose: parry_pose(&m.pose),
                shape: SharedShape::new(mesh),
            });
        }
        // Elements in id order: the hierarchy's leaf data is the index, and ties between
        // hits go to the lowest id.
        elements.sort_by_key(|e| e.id);
        let aabbs: Vec<ParryAabb> = elements
            .iter()
            .map(|e| e.shape.compute_aabb(&e.pose))
            .collect();
        let bvh = Bvh::from_leaves(BvhBuildStrategy::Binned, &aabbs);
        let terrain_shapes = heightfields.iter().map(heightfield_element).collect();
        let terrains = heightfields
            .into_iter()
            .map(|h| Terrain {
                min_xy_m: h.origin_m,
                max_xy_m: h.far_corner_m(),
                source: h,
            })
            .collect();
        Ok(Arc::new(CollisionWorld {
            identity,
            file_hash,
            elements,
            bvh,
            terrains,
            terrain_shapes,
        }))
    }

    /// SHA-256 of the world file this was built from (whatever tiles were kept), sent in
    /// the welcome; all zeros for a world not built from a file (empty, or shapes only).
    #[must_use]
    pub fn world_hash(&self) -> [u8; 32] {
        self.file_hash
    }

    /// Shapes and meshes loaded (heightfields not counted).
    #[must_use]
    pub fn element_count(&self) -> usize {
        self.elements.len()
    }

    /// Heightfields loaded.
    #[must_use]
    pub fn heightfield_count(&self) -> usize {
        self.terrains.len()
    }

    /// Whether the world holds nothing at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty() && self.terrains.is_empty()
    }

    /// Sweeps a vertical capsule (segment half length `half_length_m` around `centre_m`,
    /// `radius_m`) along `motion_m` against shapes and meshes (not heightfields), stopping
    /// `skin_m` short of contact (computed as its core segment stopping `radius_m + skin_m`
    /// short, see [`CapsuleShape`]). Returns the earliest hit, ties to the lowest element id.
    /// A contact already within `skin_m` at the start counts only when the motion goes
    /// into it (moving away from a touched wall is free).
    #[must_use]
    pub fn cast_capsule(
        &self,
        capsule: CapsuleShape,
        centre_m: Vec3,
        motion_m: Vec3,
        skin_m: f32,
    ) -> Option<SweepHit> {
        if self.elements.is_empty() {
            return None;
        }
        let shape = capsule.core();
        let start = ParryPose::from_translation(pv(centre_m));
        let end = ParryPose::from_translation(pv(centre_m + motion_m));
        let reach_m = capsule.radius_m + skin_m;
        let swept = shape.compute_swept_aabb(&start, &end).loosened(reach_m);
        let options = ShapeCastOptions {
            max_time_of_impact: 1.0,
            target_distance: reach_m,
            stop_at_penetration: false,
            compute_impact_geometry_on_penetration: true,
        };
        let mut best: Option<SweepHit> = None;
        for leaf in self.bvh.intersect_aabb(&swept) {
            let e = &self.elements[leaf as usize];
            // Shapes parry cannot cast against do not exist here (boxes, balls, capsules,
            // hulls and meshes all are supported), so an error is treated as no hit.
            let Ok(Some(hit)) = cast_shapes(
                &start,
                pv(motion_m),
                &shape,
                &e.pose,
                PVec::ZERO,
                e.shape.as_ref(),
                options,
            ) else {
                continue;
            };
            // The cast's own normal is only as exact as its advancement; the closest points
            // at the impact pose (a separated pair, solved exactly) give the surface's.
            let at_impact =
                ParryPose::from_translation(pv(centre_m + motion_m * hit.time_of_impact));
            let normal = match contact(&at_impact, &shape, &e.pose, e.shape.as_ref(), reach_m) {
                Ok(Some(c)) => -gv(c.normal1),
                _ => -gv(hit.normal1),
            };
            // A touch at the start blocks only motion into the surface: moving away from
            // it, or along it (within a cosine of 0.001, as a touching contact's normal is
            // only as exact as the cast's tolerance), is free.
            if hit.time_of_impact <= 0.0
                && normal.dot(motion_m) >= -PARALLEL_COS * motion_m.length()
            {
                continue;
            }
            let candidate = SweepHit {
                fraction: hit.time_of_impact.clamp(0.0, 1.0),
                normal: normal.normalize_or_zero(),
                element_id: e.id,
            };
            keep_earliest(&mut best, candidate);
        }
        best
    }

    /// Moves a vertical capsule out of every shape or mesh it is closer to than half of
    /// `skin_m`, to `skin_m` away, element by element in id order, in two passes. Sweeps
    /// keep the capsule `skin_m` away, but a slide nearly parallel to a surface can creep
    /// closer by the cast's tolerance; this takes the creep back (and frees a capsule that
    /// started inside a shape, as far as two passes can). Returns the corrected centre.
    #[must_use]
    pub fn push_out(&self, capsule: CapsuleShape, centre_m: Vec3, skin_m: f32) -> Vec3 {
        if self.elements.is_empty() {
            return centre_m;
        }
        let shape = capsule.core();
        let reach_m = capsule.radius_m + skin_m;
        let mut centre = centre_m;
        let mut near: Vec<u32> = Vec::new();
        for _ in 0..2 {
            let pose = ParryPose::from_translation(pv(centre));
            let bounds = shape.compute_aabb(&pose).loosened(reach_m);
            near.clear();
            near.extend(self.bvh.intersect_aabb(&bounds));
            // Corrections are applied one after another, so their order must not depend
            // on the hierarchy's layout: element index order is id order.
            near.sort_unstable();
            let mut moved = false;
            for &leaf in &near {
                let e = &self.elements[leaf as usize];
                let pose = ParryPose::from_translation(pv(centre));
                let Ok(Some(c)) = contact(&pose, &shape, &e.pose, e.shape.as_ref(), reach_m) else {
                    continue;
                };
                // Distance from the capsule's surface: the core's distance less the radius.
                let dist_m = c.dist - capsule.radius_m;
                if dist_m < 0.5 * skin_m {
                    centre -= gv(c.normal1) * (skin_m - dist_m);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        centre
    }

    /// The highest heightfield surface under `xy_m`, if any heightfield covers it.
    #[must_use]
    pub fn terrain(&self, xy_m: Vec2) -> Option<TerrainSample> {
        let mut best: Option<TerrainSample> = None;
        for t in &self.terrains {
            if xy_m.x < t.min_xy_m.x
                || xy_m.y < t.min_xy_m.y
                || xy_m.x > t.max_xy_m.x
                || xy_m.y > t.max_xy_m.y
            {
                continue;
            }
            let sample = sample_heightfield(&t.source, xy_m);
            if best.is_none_or(|b| sample.height_m > b.height_m) {
                best = Some(sample);
            }
        }
        best
    }

    /// A line from `start_m` to `end_m` against everything (heightfields included):
    /// the first hit, ties to the lowest element id. For debugging mismatches between
    /// the server's world and the engine's.
    #[must_use]
    pub fn line_trace(&self, start_m: Vec3, end_m: Vec3) -> Option<SweepHit> {
        let dir = end_m - start_m;
        let ray = Ray::new(pv(start_m), pv(dir));
        let mut best: Option<SweepHit> = None;
        let mut consider = |e: &Element| {
            if let Some(hit) = e.shape.cast_ray_and_get_normal(&e.pose, &ray, 1.0, true) {
                let candidate = SweepHit {
                    fraction: hit.time_of_impact,
                    normal: gv(hit.normal).normalize_or_zero(),
                    element_id: e.id,
                };
                keep_earliest(&mut best, candidate);
            }
        };
        let lo = start_m.min(end_m);
        let hi = start_m.max(end_m);
        let bounds = ParryAabb::new(pv(lo), pv(hi));
        for leaf in self.bvh.intersect_aabb(&bounds) {
            consider(&self.elements[leaf as usize]);
        }
        for e in &self.terrain_shapes {
            consider(e);
        }
        best
    }
}

/// Keeps in `best` the earlier of it and `candidate`: the smaller fraction, ties to the
/// lowest element id (the order client and server agree on whatever tiles they loaded).
fn keep_earliest(best: &mut Option<SweepHit>, candidate: SweepHit) {
    if best.is_none_or(|b| (candidate.fraction, candidate.element_id) < (b.fraction, b.element_id))
    {
        *best = Some(candidate);
    }
}

/// A character's capsule: a vertical segment with a radius.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CapsuleShape {
    /// Half the segment between the sphere centres, metres, `>= 0`.
    pub half_length_m: f32,
    /// Radius, metres, `> 0`.
    pub radius_m: f32,
}

impl CapsuleShape {
    /// The capsule's core segment, centred on the origin. Queries run on the segment with
    /// the radius added to their distances: parry's distance and contact between a rounded
    /// shape and a flat face near touching are only as exact as its penetration solver
    /// (a box 0.4 µm thinner turned a 1.4 mm penetration into an 8 mm gap), while the core
    /// stays a radius away from everything and is solved exactly.
    fn core(self) -> Segment {
        let half = PVec::new(0.0, 0.0, self.half_length_m);
        Segment::new(-half, half)
    }
}

/// The height and normal of a heightfield at a point inside it, on the triangles the format
/// defines (diagonal from sample `(c, r)` to `(c + 1, r + 1)`).
fn sample_heightfield(h: &Heightfield, xy_m: Vec2) -> TerrainSample {
    let local = (xy_m - h.origin_m) / h.spacing_m;
    let max_c = usize::from(h.columns) - 2;
    let max_r = usize::from(h.rows) - 2;
    // Inside the grid (checked by the caller), so the floors are >= 0; the last row and
    // column belong to the cell before them.
    let c = (local.x.floor().max(0.0) as usize).min(max_c);
    let r = (local.y.floor().max(0.0) as usize).min(max_r);
    let u = local.x - c as f32;
    let v = local.y - r as f32;
    let h00 = h.sample_height_m(c, r);
    let h10 = h.sample_height_m(c + 1, r);
    let h01 = h.sample_height_m(c, r + 1);
    let h11 = h.sample_height_m(c + 1, r + 1);
    let sx = h.spacing_m.x;
    let sy = h.spacing_m.y;
    // Lower triangle (c, r), (c+1, r), (c+1, r+1) holds u >= v.
    let (height_m, dzdx, dzdy) = if u >= v {
        let dzdx = (h10 - h00) / sx;
        let dzdy = (h11 - h10) / sy;
        (h00 + (h10 - h00) * u + (h11 - h10) * v, dzdx, dzdy)
    } else {
        let dzdx = (h11 - h01) / sx;
        let dzdy = (h01 - h00) / sy;
        (h00 + (h01 - h00) * v + (h11 - h01) * u, dzdx, dzdy)
    };
    TerrainSample {
        height_m,
        normal: Vec3::new(-dzdx, -dzdy, 1.0).normalize(),
    }
}

/// A heightfield as a parry shape on the same triangles, for traces.
fn heightfield_element(h: &Heightfield) -> Element {
    let columns = usize::from(h.columns);
    let rows = usize::from(h.rows);
    // parry's heightfield is Y-up: its rows (i) run along local Z and its columns (j) along
    // local X, column-major (index i + j · nrows). The pose's rotation is a cyclic
    // permutation of the axes: local X = world Y, local Y (height) = world Z, local Z =
    // world X. So parry's i is our column c (world X)
    // and parry's j our row r (world Y), and index c + r · columns is our row-major index.
    let heights: Vec<f32> = (0..rows)
        .flat_map(|r| (0..columns).map(move |c| (c, r)))
        .map(|(c, r)| h.sample_height_m(c, r))
        .collect();
    let extent = h.far_corner_m() - h.origin_m;
    let mut field = HeightField::new(
        Array2::new(columns, rows, heights),
        PVec::new(extent.y, 1.0, extent.x),
    );
    // Our diagonal runs from (c, r) to (c + 1, r + 1): parry's (i, j) to (i + 1, j + 1),
    // which is its zig-zag subdivision.
    for i in 0..columns - 1 {
        for j in 0..rows - 1 {
            field.set_cell_status(i, j, HeightFieldCellStatus::ZIGZAG_SUBDIVISION);
        }
    }
    let centre = h.origin_m + extent * 0.5;
    // Rotation taking local X to world Y, local Y to world Z and local Z to world X: 120
    // degrees about (1, 1, 1), the quaternion (0.5, 0.5, 0.5, 0.5).
    let rotation = Rot3::from_xyzw(0.5, 0.5, 0.5, 0.5);
    Element {
        id: h.id,
        pose: ParryPose::from_parts(PVec::new(centre.x, centre.y, 0.0), rotation),
        shape: SharedShape::new(field),
    }
}
