//! Reading and writing the world file's bytes (`WORLD_FORMAT.md`), and its content hash.
//!
//! [`decode`] parses the layout, refusing truncation, unknown versions, bad tags and trailing
//! bytes with the field it was reading, then runs [`WorldFile::validate`]; [`encode`]
//! validates and writes. [`load`] adds the file's name to every error.

use std::path::Path;

use glam::{Quat, Vec2, Vec3};
use sha2::{Digest, Sha256};

use super::format::{
    Heightfield, MAX_HEIGHTFIELD_SAMPLES, MAX_HEIGHTFIELDS_PER_TILE, MAX_HULL_POINTS,
    MAX_MESH_TRIANGLES, MAX_MESH_VERTICES, MAX_MESHES_PER_TILE, MAX_SHAPES_PER_TILE, MAX_TILES,
    MAX_WORLD_FILE_BYTES, Mesh, Pose, ShapeKind, StaticShape, Tile, TileCoord, TileRef,
    WORLD_FORMAT_VERSION, WORLD_MAGIC, WorldFile, WorldFormatError,
};

/// A world file that could not be loaded: which file, and the rule it broke.
#[derive(Debug, thiserror::Error)]
pub enum WorldLoadError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The path as given.
        file: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The bytes break the format.
    #[error("{file}: {error}")]
    Format {
        /// The path as given.
        file: String,
        /// Where and what.
        error: WorldFormatError,
    },
}

/// Reads, checks and hashes a world file.
pub fn load(path: &Path) -> Result<LoadedWorld, WorldLoadError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| WorldLoadError::Io {
        file: file.clone(),
        source,
    })?;
    let world = decode(&bytes).map_err(|error| WorldLoadError::Format { file, error })?;
    Ok(LoadedWorld {
        hash: content_hash(&bytes),
        world,
    })
}

/// A decoded world and the hash of the bytes it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedWorld {
    /// The contents.
    pub world: WorldFile,
    /// SHA-256 of the file's bytes.
    pub hash: [u8; 32],
}

impl LoadedWorld {
    /// A world made in memory (a scene builder, a test), with the hash its file would have.
    pub fn from_world(world: WorldFile) -> Result<Self, WorldFormatError> {
        let bytes = encode(&world)?;
        Ok(LoadedWorld {
            hash: content_hash(&bytes),
            world,
        })
    }
}

/// The world's content hash: SHA-256 of the file's bytes as stored.
#[must_use]
pub fn content_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Encodes a world, after checking it.
pub fn encode(world: &WorldFile) -> Result<Vec<u8>, WorldFormatError> {
    world.validate()?;
    let mut w = Writer(Vec::new());
    w.0.extend_from_slice(&WORLD_MAGIC);
    w.u16(WORLD_FORMAT_VERSION);
    w.u16(0);
    w.f32(world.tile_size_m);
    w.len32(world.tiles.len());
    for tile in &world.tiles {
        w.i32(tile.coord.x);
        w.i32(tile.coord.y);
        w.len32(tile.heightfields.len());
        w.len32(tile.shapes.len());
        w.len32(tile.meshes.len());
        for h in &tile.heightfields {
            w.u32(h.id);
            w.vec2(h.origin_m);
            w.vec2(h.spacing_m);
            w.u16(h.columns);
            w.u16(h.rows);
            w.f32(h.height_scale_m);
            w.f32(h.height_offset_m);
            for &raw in &h.heights {
                w.u16(raw);
            }
        }
        for s in &tile.shapes {
            w.u32(s.id);
            w.0.push(s.kind.tag());
            w.pose(&s.pose);
            match &s.kind {
                ShapeKind::Box { half_extents_m } => w.vec3(*half_extents_m),
                ShapeKind::Sphere { radius_m } => w.f32(*radius_m),
                ShapeKind::Capsule {
                    half_length_m,
                    radius_m,
                } => {
                    w.f32(*half_length_m);
                    w.f32(*radius_m);
                }
                ShapeKind::Convex { points_m } => {
                    // Validated: at most MAX_HULL_POINTS (256) points, so the cast is exact.
                    w.u16(points_m.len() as u16);
                    for p in points_m {
                        w.vec3(*p);
                    }
                }
            }
        }
        for m in &tile.meshes {
            w.u32(m.id);
            w.pose(&m.pose);
            w.len32(m.vertices_m.len());
            w.len32(m.triangles.len());
            for v in &m.vertices_m {
                w.vec3(*v);
            }
            for t in &m.triangles {
                for &i in t {
                    w.u32(i);
                }
            }
        }
    }
    Ok(w.0)
}

/// Decodes and checks a world file's bytes.
pub fn decode(bytes: &[u8]) -> Result<WorldFile, WorldFormatError> {
    let mut r = Reader {
        bytes,
        pos: 0,
        tile: None,
    };
    if bytes.len() > MAX_WORLD_FILE_BYTES {
        return Err(r.err("file", format!("larger than {MAX_WORLD_FILE_BYTES} bytes")));
    }
    if r.take("magic", 8)? != WORLD_MAGIC {
        return Err(r.err("magic", "not a world file (expected ASCII MMOWORLD)"));
    }
    let version = r.u16("version")?;
    if version != WORLD_FORMAT_VERSION {
        return Err(r.err(
            "version",
            format!("is {version}; this build reads version {WORLD_FORMAT_VERSION} only"),
        ));
    }
    let flags = r.u16("flags")?;
    if flags != 0 {
        return Err(r.err("flags", format!("must be 0 (is {flags})")));
    }
    let tile_size_m = r.f32("tile_size_m")?;
    let tile_count = r.count("tile_count", MAX_TILES)?;
    let mut tiles = Vec::with_capacity(tile_count.min(1024));
    for index in 0..tile_count {
        r.tile = Some(TileRef { index, coord: None });
        let x = r.i32("tile_x")?;
        let y = r.i32("tile_y")?;
        let coord = TileCoord { x, y };
        r.tile = Some(TileRef {
            index,
            coord: Some(coord),
        });
        tiles.push(r.tile_body(coord)?);
    }
    r.tile = None;
    if r.pos != bytes.len() {
        return Err(r.err(
            "file",
            format!("{} trailing bytes after the last tile", bytes.len() - r.pos),
        ));
    }
    let world = WorldFile { tile_size_m, tiles };
    world.validate()?;
    Ok(world)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    tile: Option<TileRef>,
}

impl<'a> Reader<'a> {
    fn err(&self, field: impl Into<String>, reason: impl Into<String>) -> WorldFormatError {
        WorldFormatError {
            tile: self.tile,
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn take(&mut self, field: &str, len: usize) -> Result<&'a [u8], WorldFormatError> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.err(
                field,
                format!("file ends at byte {} while reading it", self.bytes.len()),
            ));
        };
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], WorldFormatError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    fn u8(&mut self, field: &str) -> Result<u8, WorldFormatError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &str) -> Result<u16, WorldFormatError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &str) -> Result<u32, WorldFormatError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &str) -> Result<i32, WorldFormatError> {
        Ok(i32::from_le_bytes(self.array(field)?))
    }

    fn f32(&mut self, field: &str) -> Result<f32, WorldFormatError> {
        Ok(f32::from_le_bytes(self.array(field)?))
    }

    fn vec2(&mut self, field: &str) -> Result<Vec2, WorldFormatError> {
        Ok(Vec2::new(self.f32(field)?, self.f32(field)?))
    }

    fn vec3(&mut self, field: &str) -> Result<Vec3, WorldFormatError> {
        Ok(Vec3::new(
            self.f32(field)?,
            self.f32(field)?,
            self.f32(field)?,
        ))
    }

    /// A u32 count, refused above `max` before anything is allocated for it.
    fn count(&mut self, field: &str, max: usize) -> Result<usize, WorldFormatError> {
        let n = self.u32(field)? as usize;
        if n > max {
            return Err(self.err(field, format!("must be <= {max} (is {n})")));
        }
        Ok(n)
    }

    fn pose(&mut self, field: &str) -> Result<Pose, WorldFormatError> {
        let position_m = self.vec3(&format!("{field}.position_m"))?;
        let rf = format!("{field}.rotation");
        let rotation = Quat::from_xyzw(
            self.f32(&rf)?,
            self.f32(&rf)?,
            self.f32(&rf)?,
            self.f32(&rf)?,
        );
        Ok(Pose {
            position_m,
            rotation,
        })
    }

    fn tile_body(&mut self, coord: TileCoord) -> Result<Tile, WorldFormatError> {
        let heightfield_count = self.count("heightfield_count", MAX_HEIGHTFIELDS_PER_TILE)?;
        let shape_count = self.count("shape_count", MAX_SHAPES_PER_TILE)?;
        let mesh_count = self.count("mesh_count", MAX_MESHES_PER_TILE)?;
        let mut heightfields = Vec::with_capacity(heightfield_count);
        for i in 0..heightfield_count {
            heightfields.push(self.heightfield(&format!("heightfields[{i}]"))?);
        }
        let mut shapes = Vec::with_capacity(shape_count.min(4096));
        for i in 0..shape_count {
            shapes.push(self.shape(&format!("shapes[{i}]"))?);
        }
        let mut meshes = Vec::with_capacity(mesh_count.min(256));
        for i in 0..mesh_count {
            meshes.push(self.mesh(&format!("meshes[{i}]"))?);
        }
        Ok(Tile {
            coord,
            heightfields,
            shapes,
            meshes,
        })
    }

    fn heightfield(&mut self, f: &str) -> Result<Heightfield, WorldFormatError> {
        let id = self.u32(&format!("{f}.id"))?;
        let origin_m = self.vec2(&format!("{f}.origin_m"))?;
        let spacing_m = self.vec2(&format!("{f}.spacing_m"))?;
        let columns = self.u16(&format!("{f}.columns"))?;
        let rows = self.u16(&format!("{f}.rows"))?;
        let height_scale_m = self.f32(&format!("{f}.height_scale_m"))?;
        let height_offset_m = self.f32(&format!("{f}.height_offset_m"))?;
        let samples = usize::from(columns) * usize::from(rows);
        if samples > MAX_HEIGHTFIELD_SAMPLES {
            return Err(self.err(
                format!("{f}.rows"),
                format!("columns · rows must be <= {MAX_HEIGHTFIELD_SAMPLES}"),
            ));
        }
        let raw = self.take(&format!("{f}.heights"), samples * 2)?;
        let heights = raw
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        Ok(Heightfield {
            id,
            origin_m,
            spacing_m,
            columns,
            rows,
            height_scale_m,
            height_offset_m,
            heights,
        })
    }

    fn shape(&mut self, f: &str) -> Result<StaticShape, WorldFormatError> {
        let id = self.u32(&format!("{f}.id"))?;
        let tag = self.u8(&format!("{f}.kind"))?;
        let pose = self.pose(&format!("{f}.pose"))?;
        let kind = match tag {
            1 => ShapeKind::Box {
                half_extents_m: self.vec3(&format!("{f}.half_extents_m"))?,
            },
            2 => ShapeKind::Sphere {
                radius_m: self.f32(&format!("{f}.radius_m"))?,
            },
            3 => ShapeKind::Capsule {
                half_length_m: self.f32(&format!("{f}.half_length_m"))?,
                radius_m: self.f32(&format!("{f}.radius_m"))?,
            },
            4 => {
                let n = usize::from(self.u16(&format!("{f}.point_count"))?);
                if !(4..=MAX_HULL_POINTS).contains(&n) {
                    return Err(self.err(
                        format!("{f}.point_count"),
                        format!("must be within 4..={MAX_HULL_POINTS} (is {n})"),
                    ));
                }
                let mut points_m = Vec::with_capacity(n);
                for i in 0..n {
                    points_m.push(self.vec3(&format!("{f}.points_m[{i}]"))?);
                }
                ShapeKind::Convex { points_m }
            }
            other => {
                return Err(self.err(
                    format!("{f}.kind"),
                    format!("unknown shape kind {other} (1 box, 2 sphere, 3 capsule, 4 convex)"),
                ));
            }
        };
        Ok(StaticShape { id, pose, kind })
    }

    fn mesh(&mut self, f: &str) -> Result<Mesh, WorldFormatError> {
        let id = self.u32(&format!("{f}.id"))?;
        let pose = self.pose(&format!("{f}.pose"))?;
        let vertex_count = self.count(&format!("{f}.vertex_count"), MAX_MESH_VERTICES)?;
        let triangle_count = self.count(&format!("{f}.triangle_count"), MAX_MESH_TRIANGLES)?;
        // Both counts are capped (65,536 and 131,072), so these allocations are bounded.
        let mut vertices_m = Vec::with_capacity(vertex_count);
        for i in 0..vertex_count {
            vertices_m.push(self.vec3(&format!("{f}.vertices_m[{i}]"))?);
        }
        let mut triangles = Vec::with_capacity(triangle_count);
        for i in 0..triangle_count {
            let tf = format!("{f}.triangles[{i}]");
            triangles.push([self.u32(&tf)?, self.u32(&tf)?, self.u32(&tf)?]);
        }
        Ok(Mesh {
            id,
            pose,
            vertices_m,
            triangles,
        })
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A count the format stores as u32; validation bounds every count far below u32::MAX.
    fn len32(&mut self, n: usize) {
        self.u32(n as u32);
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn vec2(&mut self, v: Vec2) {
        self.f32(v.x);
        self.f32(v.y);
    }
    fn vec3(&mut self, v: Vec3) {
        self.f32(v.x);
        self.f32(v.y);
        self.f32(v.z);
    }
    fn pose(&mut self, p: &Pose) {
        self.vec3(p.position_m);
        let q = p.rotation;
        for v in [q.x, q.y, q.z, q.w] {
            self.f32(v);
        }
    }
}
