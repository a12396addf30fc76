//! World geometry: the static collision of a level, shared by the server and the predicting
//! client so both move characters against the level the player sees.
//!
//! - [`format`]: the file's contents as plain types and the rules they obey;
//! - [`file`]: the bytes (`WORLD_FORMAT.md`, next to this module), loading with errors that
//!   name the file, tile and field, and the content hash sent in the welcome;
//! - [`collision`]: the loaded world behind parry3d's bounding-volume hierarchy, and the
//!   queries the movement step asks (capsule sweeps, terrain height, line traces).
//!
//! Not covered (out of scope for format version 1, said in `WORLD_FORMAT.md`): moving
//! geometry, heightfield holes, surface materials, collision between characters.

pub mod collision;
pub mod file;
pub mod format;

pub use collision::{CapsuleShape, CollisionBuildError, CollisionWorld, SweepHit, TerrainSample};
pub use file::{LoadedWorld, WorldLoadError, content_hash, decode, encode, load};
pub use format::{
    Heightfield, Mesh, Pose, ShapeKind, StaticShape, Tile, TileCoord, TileRef, WorldFile,
    WorldFormatError,
};

#[cfg(test)]
mod tests;
