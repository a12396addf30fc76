//! The character controller: carries one tick's motion out against the world.
//!
//! Given the position and the velocity [`super::step`] computed, it runs, in this order:
//!
//! 1. **Sweep and slide** against shapes and meshes: the capsule is swept along the motion
//!    and stops [`SKIN_M`] short of the first hit (ties: lowest element id); the rest of the
//!    motion is projected onto the surface and swept again, at most [`MAX_SLIDES`] times
//!    (whatever is left after that is dropped, so the step is bounded). A walkable hit
//!    (normal `z >= walkable_floor_z`) is ground. A steep hit met while walking is a wall:
//!    the motion slides along its horizontal normal, so walking never climbs a steep
//!    surface. Sweeps are continuous, so no wall is tunnelled through at any speed.
//! 2. **Step-up**: a steep hit met while walking (not jumping) tries to go up at most
//!    `max_step_height_m`, across the rest of the horizontal motion, and down onto a
//!    walkable top; if that lands higher than the character stood, it is taken.
//! 3. **Floor**: the ground plane `ground_z_m` and the heightfields (looked up directly
//!    under the character, [`CollisionWorld::terrain`]) form the floor. Within
//!    [`GROUND_PROBE_M`] of a walkable floor, or below it, the character stands on it. A
//!    steep floor climbed while walking blocks the horizontal motion (the character stays
//!    where it was); a steep floor below the character is slid down.
//! 4. **Ground snapping**: a character that walked (not jumped) off its support this tick
//!    is put down on a walkable shape or floor at most `max_step_height_m` below, so it
//!    follows slopes and stairs down instead of flying off them.
//!
//! A character that starts a tick inside a shape can only move out of it (a sweep that
//! starts in contact blocks only motion into the surface).

use glam::Vec3;

use super::MovementConfig;
use crate::geometry::{CapsuleShape, CollisionWorld};

/// Distance kept between the capsule and any shape, metres.
pub const SKIN_M: f32 = 0.01;
/// Most sweeps per tick in the sweep-and-slide loop.
pub const MAX_SLIDES: usize = 4;
/// How far above a floor (ground plane or heightfield) the character still stands on it,
/// metres.
pub const GROUND_PROBE_M: f32 = 0.02;
/// How much higher than `max_step_height_m` a ledge's top may be found, metres (the
/// support height comes from a cast's contact, exact to parry's tolerance).
const STEP_TOLERANCE_M: f32 = 0.002;
/// Least horizontal progress that makes a step-up worth taking, metres.
const MIN_STEP_PROGRESS_M: f32 = 0.001;

/// What the controller did over a run of steps, for replays and tests that must show
/// which parts they exercised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepStats {
    /// Ledges walked up (step 2).
    pub step_ups: u64,
    /// Slides along steep surfaces (step 1), one per sweep that met one.
    pub slides: u64,
    /// Snaps down onto support (step 4).
    pub snaps: u64,
    /// Ticks a steep heightfield stopped a walk uphill (step 3).
    pub terrain_blocks: u64,
}

/// The controller's input: where the character is and the velocity to move with.
#[derive(Clone, Copy, Debug)]
pub struct MoveStart {
    /// Base of the capsule, metres.
    pub position_m: Vec3,
    /// Velocity for this tick, m/s.
    pub velocity_mps: Vec3,
    /// Whether the character stood on something at the start of the tick.
    pub was_on_ground: bool,
}

/// The controller's result (before the zone's bounds are applied).
#[derive(Clone, Copy, Debug)]
pub struct Moved {
    /// Base of the capsule, metres.
    pub position_m: Vec3,
    /// Velocity with the components into surfaces removed, m/s.
    pub velocity_mps: Vec3,
    /// Standing on walkable support.
    pub on_ground: bool,
}

/// The floor under a point: the ground plane or the highest heightfield there.
#[derive(Clone, Copy)]
struct Floor {
    height_m: f32,
    normal: Vec3,
}

fn floor_at(cfg: &MovementConfig, world: &CollisionWorld, at_m: Vec3) -> Floor {
    let plane = Floor {
        height_m: cfg.ground_z_m,
        normal: Vec3::Z,
    };
    match world.terrain(at_m.truncate()) {
        Some(t) if t.height_m > cfg.ground_z_m => Floor {
            height_m: t.height_m,
            normal: t.normal,
        },
        _ => plane,
    }
}

fn capsule(cfg: &MovementConfig) -> CapsuleShape {
    CapsuleShape {
        half_length_m: cfg.half_height_m - cfg.radius_m,
        radius_m: cfg.radius_m,
    }
}

/// The capsule's centre for a base position.
fn centre(cfg: &MovementConfig, base_m: Vec3) -> Vec3 {
    base_m + Vec3::new(0.0, 0.0, cfg.half_height_m)
}

/// `v` without its component into a surface of normal `n` (nothing if it points away).
fn without_into(v: Vec3, n: Vec3) -> Vec3 {
    let into = v.dot(n);
    if into < 0.0 { v - n * into } else { v }
}

/// Carries one tick's motion out against `cfg.geometry` (see the module docs).
pub fn move_character(
    cfg: &MovementConfig,
    start: MoveStart,
    dt_s: f32,
    stats: &mut StepStats,
) -> Moved {
    let world: &CollisionWorld = &cfg.geometry;
    let shape = capsule(cfg);
    let walking = start.was_on_ground && start.velocity_mps.z <= 0.0;
    let mut pos = start.position_m;
    let mut vel = start.velocity_mps;
    let mut on_ground = false;

    // 1 and 2: sweep and slide, with step-up.
    let mut remaining = vel * dt_s;
    for _ in 0..MAX_SLIDES {
        if remaining == Vec3::ZERO {
            break;
        }
        let Some(hit) = world.cast_capsule(shape, centre(cfg, pos), remaining, SKIN_M) else {
            pos += remaining;
            break;
        };
        pos += remaining * hit.fraction;
        let left = remaining * (1.0 - hit.fraction);
        if support(cfg, world, pos, hit).is_some() {
            on_ground = true;
            vel = without_into(vel, hit.normal);
            remaining = without_into(left, hit.normal);
            continue;
        }
        let horizontal = Vec3::new(left.x, left.y, 0.0);
        if walking
            && horizontal != Vec3::ZERO
            && let Some(stepped) = step_up(cfg, world, shape, pos, horizontal)
        {
            pos = stepped;
            on_ground = true;
            stats.step_ups += 1;
            break;
        }
        // A steep surface met while walking against it is a wall: slide along its
        // horizontal normal, so walking never climbs it.
        let mut normal = hit.normal;
        let flat = Vec3::new(normal.x, normal.y, 0.0).normalize_or_zero();
        if walking && flat != Vec3::ZERO && flat.dot(horizontal) < 0.0 {
            normal = flat;
        }
        vel = without_into(vel, normal);
        remaining = without_into(left, normal);
        stats.slides += 1;
    }

    // Take back any creep into a surface (see `CollisionWorld::push_out`).
    pos = world.push_out(shape, centre(cfg, pos), SKIN_M) - Vec3::new(0.0, 0.0, cfg.half_height_m);

    // 3: the floor (ground plane and heightfields).
    let rising = vel.z > 0.0;
    let floor = floor_at(cfg, world, pos);
    if pos.z < floor.height_m || (!rising && pos.z <= floor.height_m + GROUND_PROBE_M) {
        if floor.normal.z >= cfg.walkable_floor_z {
            pos.z = floor.height_m;
            vel = without_into(vel, Vec3::Z);
            on_ground = true;
        } else {
            let uphill = Vec3::new(floor.normal.x, floor.normal.y, 0.0);
            let motion = pos - start.position_m;
            if walking && motion.dot(uphill) < 0.0 {
                // Walking into a steep hill: stay where the tick started.
                stats.terrain_blocks += 1;
                pos.x = start.position_m.x;
                pos.y = start.position_m.y;
                let back = floor_at(cfg, world, pos);
                if pos.z < back.height_m {
                    pos.z = back.height_m;
                }
                on_ground = on_ground || back.normal.z >= cfg.walkable_floor_z;
                vel = without_into(vel, uphill.normalize_or_zero());
                vel.z = if vel.z < 0.0 { 0.0 } else { vel.z };
            } else {
                // On a steep slope: slide down it.
                if pos.z < floor.height_m {
                    pos.z = floor.height_m;
                }
                vel = without_into(vel, floor.normal);
            }
        }
    }

    // 4: ground snapping.
    if !on_ground && walking {
        let reach_m = cfg.max_step_height_m + SKIN_M;
        let down = Vec3::new(0.0, 0.0, -reach_m);
        let onto_shape = world
            .cast_capsule(shape, centre(cfg, pos), down, SKIN_M)
            .map(|hit| (hit, pos + down * hit.fraction))
            .filter(|(hit, at)| support(cfg, world, *at, *hit).is_some())
            .map(|(_, at)| at.z);
        let floor = floor_at(cfg, world, pos);
        let onto_floor = (floor.normal.z >= cfg.walkable_floor_z
            && floor.height_m >= pos.z - reach_m)
            .then_some(floor.height_m);
        let target = match (onto_shape, onto_floor) {
            (Some(a), Some(b)) => Some(if a >= b { a } else { b }),
            (a, b) => a.or(b),
        };
        if let Some(z) = target {
            pos.z = z;
            vel = without_into(vel, Vec3::Z);
            on_ground = true;
            stats.snaps += 1;
        }
    }

    // The ground plane is the world's floor whatever happened above.
    if pos.z < cfg.ground_z_m {
        pos.z = cfg.ground_z_m;
        vel = without_into(vel, Vec3::Z);
        on_ground = true;
    }
    Moved {
        position_m: pos,
        velocity_mps: vel,
        on_ground,
    }
}

/// How far from the contact, away from the capsule's axis, [`support`] looks for the
/// surface under an edge, metres.
const PERCH_INSET_M: f32 = 0.01;

/// Whether a sweep's hit, with the capsule's base at `base_m` at the time of impact, is
/// something to stand on: a walkable surface, or the edge of one under the capsule's lower
/// half-sphere ("perched": the contact normal is tilted, but the surface just beside the
/// contact, away from the capsule's axis, is walkable). Returns the height of the contact
/// point (the support's height), or `None`.
fn support(
    cfg: &MovementConfig,
    world: &CollisionWorld,
    base_m: Vec3,
    hit: crate::geometry::SweepHit,
) -> Option<f32> {
    let lower_centre = base_m + Vec3::new(0.0, 0.0, cfg.radius_m);
    let contact = lower_centre - hit.normal * (cfg.radius_m + SKIN_M);
    if hit.normal.z >= cfg.walkable_floor_z {
        return Some(contact.z);
    }
    if hit.normal.z <= 0.0 {
        return None;
    }
    let away = Vec3::new(-hit.normal.x, -hit.normal.y, 0.0).normalize_or_zero();
    let probe = contact + away * PERCH_INSET_M;
    world
        .line_trace(
            probe + Vec3::new(0.0, 0.0, 2.0 * SKIN_M),
            probe - Vec3::new(0.0, 0.0, 4.0 * SKIN_M),
        )
        .filter(|under| under.normal.z >= cfg.walkable_floor_z)
        .map(|_| contact.z)
}

/// Tries to walk up a ledge: up at most `max_step_height_m`, across `horizontal`, down onto
/// a walkable top. Returns the base position on the ledge, or `None` when it is no step
/// (too high, no room above, nothing walkable to land on, or no progress).
fn step_up(
    cfg: &MovementConfig,
    world: &CollisionWorld,
    shape: CapsuleShape,
    pos: Vec3,
    horizontal: Vec3,
) -> Option<Vec3> {
    if cfg.max_step_height_m <= 0.0 {
        return None;
    }
    let up = Vec3::new(0.0, 0.0, cfg.max_step_height_m);
    let up_fraction = world
        .cast_capsule(shape, centre(cfg, pos), up, SKIN_M)
        .map_or(1.0, |hit| hit.fraction);
    let raised = pos + up * up_fraction;
    let across_fraction = world
        .cast_capsule(shape, centre(cfg, raised), horizontal, SKIN_M)
        .map_or(1.0, |hit| hit.fraction);
    if horizontal.length() * across_fraction < MIN_STEP_PROGRESS_M {
        return None;
    }
    let moved = raised + horizontal * across_fraction;
    let down = Vec3::new(0.0, 0.0, -(up.z * up_fraction + SKIN_M));
    let land = world.cast_capsule(shape, centre(cfg, moved), down, SKIN_M)?;
    let landed = moved + down * land.fraction;
    // The top, or its edge under the capsule's half-sphere (one tick may carry the capsule
    // only part of the way over the ledge), no higher than a step above where it stood.
    let top_z = support(cfg, world, landed, land)?;
    (top_z <= pos.z + cfg.max_step_height_m + STEP_TOLERANCE_M && landed.z > pos.z)
        .then_some(landed)
}
