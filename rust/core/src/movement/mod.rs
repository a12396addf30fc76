//! The deterministic character movement step shared by client prediction and the server.
//!
//! [`step`] advances one [`CharacterState`] by one fixed tick under one quantized
//! [`MoveInput`]. Client and server run the same function on the same integers, so for a
//! given binary the result is bit-identical on both sides; that is what lets prediction
//! compare states with [`CharacterState::bits_eq`].
//!
//! Rules that keep it deterministic:
//! - fixed `dt_s` (from [`crate::time::TickRate::dt_s`]), never a measured frame time;
//! - no transcendental math: trigonometry comes from [`crate::detmath`] on the quantized yaw,
//!   otherwise only `+ - * /`, comparisons and `sqrt`; collision queries go through parry3d
//!   built with `enhanced-determinism`;
//! - collision hits at the same time of impact are taken in element-id order, never in the
//!   order a hierarchy or hash map happens to hold them.
//!
//! The model: the character is a vertical capsule `2*radius_m` wide and `2*half_height_m`
//! tall whose base (the bottom of the lower sphere) is `position_m`. Horizontal velocity
//! approaches the wished velocity at `ground_accel_mps2` (or brakes at `braking_decel_mps2`
//! without input); in the air only `air_control` of the acceleration applies and there is
//! no braking. Gravity always applies, so support is found again every tick. The motion is
//! then carried out by the character controller ([`controller`]): sweep and slide against
//! the world's shapes and meshes, step-up onto ledges up to `max_step_height_m`, walkable
//! floors up to the slope whose normal has `z >= walkable_floor_z`, ground snapping down
//! slopes and steps, terrain following on heightfields, the ground plane `ground_z_m` and
//! the zone's bounds.
//!
//! Characters do not collide with each other: only the world's static geometry blocks
//! them.

pub mod controller;

use std::sync::Arc;

use glam::{Vec2, Vec3};
use serde::{Deserialize, Serialize};

use crate::detmath::{approach_xy, sin_cos_from_yaw_q};
use crate::entity::CharacterState;
use crate::geometry::{CollisionWorld, Pose, ShapeKind, StaticShape};
use crate::input::{AXIS_Q_MAX, MoveInput};

pub use controller::StepStats;

/// Most blocker boxes [`blocker_world`] takes (the C ABI's `mmo_predictor_new` limit).
pub const MAX_BLOCKERS: usize = 4096;

/// A static axis-aligned box in world space, metres: the simple way to give a test, a
/// benchmark or a C caller some obstacles without a world file ([`blocker_world`]).
///
/// Invariant (checked by [`blocker_world`]): finite, `min_m < max_m` on every axis.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aabb {
    /// Lowest corner.
    pub min_m: Vec3,
    /// Highest corner.
    pub max_m: Vec3,
}

impl Aabb {
    /// A box from its two corners (no validation; see [`blocker_world`]).
    #[must_use]
    pub fn new(min_m: Vec3, max_m: Vec3) -> Self {
        Aabb { min_m, max_m }
    }
}

/// A collision world of axis-aligned boxes; box `i` gets element id `i + 1`. The error names
/// the first bad box as `blockers[i]`.
pub fn blocker_world(blockers: &[Aabb]) -> Result<Arc<CollisionWorld>, MovementConfigError> {
    if blockers.len() > MAX_BLOCKERS {
        return Err(bad("blockers", "holds more than MAX_BLOCKERS boxes"));
    }
    let mut shapes = Vec::with_capacity(blockers.len());
    for (i, b) in blockers.iter().enumerate() {
        if !(b.min_m.is_finite() && b.max_m.is_finite()) {
            return Err(bad(format!("blockers[{i}]"), "must be finite"));
        }
        if !b.min_m.cmplt(b.max_m).all() {
            return Err(bad(
                format!("blockers[{i}]"),
                "must have min_m < max_m on every axis",
            ));
        }
        shapes.push(StaticShape {
            // At most MAX_BLOCKERS (4096) boxes, so the id fits.
            id: i as u32 + 1,
            pose: Pose::at((b.min_m + b.max_m) * 0.5),
            kind: ShapeKind::Box {
                half_extents_m: (b.max_m - b.min_m) * 0.5,
            },
        });
    }
    CollisionWorld::from_shapes(&shapes).map_err(|e| {
        let index = e.element_id.saturating_sub(1);
        MovementConfigError {
            field: format!("blockers[{index}]"),
            reason: "parry could not build it",
        }
    })
}

/// The playable XY rectangle of a zone, metres. The character's whole footprint is kept
/// inside it.
///
/// Invariant (checked by [`MovementConfig::validate`]): finite, and each side longer than
/// the character's diameter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneBounds {
    /// Lowest X and Y.
    pub min_xy_m: Vec2,
    /// Highest X and Y.
    pub max_xy_m: Vec2,
}

impl Default for ZoneBounds {
    /// A 4 km by 4 km square centred on the origin.
    fn default() -> Self {
        ZoneBounds {
            min_xy_m: Vec2::splat(-2000.0),
            max_xy_m: Vec2::splat(2000.0),
        }
    }
}

/// Tuning of the movement step, and the world it moves in. Client and server must use
/// identical values, or every prediction mismatches. They are not sent at login yet (the
/// welcome carries the tick rate only): a client is configured with the server's values
/// (`WIRE_FORMAT.md` 8.5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MovementConfig {
    /// Top horizontal speed when walking, m/s. Finite, `> 0`.
    pub walk_speed_mps: f32,
    /// Top horizontal speed when sprinting, m/s. Finite, `>= walk_speed_mps`.
    pub sprint_speed_mps: f32,
    /// Horizontal acceleration toward the wished velocity on the ground, m/s². Finite, `> 0`.
    pub ground_accel_mps2: f32,
    /// Horizontal deceleration on the ground without input, m/s². Finite, `>= 0`.
    pub braking_decel_mps2: f32,
    /// Fraction of `ground_accel_mps2` available in the air, `0..=1`.
    pub air_control: f32,
    /// Downward acceleration, m/s². Finite, `> 0`.
    pub gravity_mps2: f32,
    /// Upward speed given by a jump from the ground, m/s. Finite, `>= 0`.
    pub jump_speed_mps: f32,
    /// Largest downward speed, m/s. Finite, `> 0`.
    pub max_fall_speed_mps: f32,
    /// Height of the ground plane, metres. Finite.
    pub ground_z_m: f32,
    /// Playable rectangle.
    pub bounds: ZoneBounds,
    /// Radius of the character's capsule, metres. Finite, `> 0`.
    pub radius_m: f32,
    /// Half the height of the character's capsule, metres. Finite, `>= radius_m`.
    pub half_height_m: f32,
    /// Highest ledge the character walks up without jumping, metres. Finite,
    /// `0 <= max_step_height_m < 2 * half_height_m`.
    pub max_step_height_m: f32,
    /// Smallest `z` of a surface normal the character can stand on: the cosine of the
    /// steepest walkable slope. `0 < walkable_floor_z <= 1`. The server computes it from its
    /// configured angle and sends these exact bits, so both ends compare the same float.
    pub walkable_floor_z: f32,
    /// The static geometry. Not serialised: a world travels as its file and content hash
    /// (`geometry/WORLD_FORMAT.md`). Default: empty (the ground plane and bounds only).
    #[serde(skip, default = "CollisionWorld::empty")]
    pub geometry: Arc<CollisionWorld>,
}

/// `cos(44.765 degrees)` rounded to `f32`: Unreal's default walkable floor angle, so a
/// level's slopes behave as in the editor.
pub const DEFAULT_WALKABLE_FLOOR_Z: f32 = 0.71;

impl Default for MovementConfig {
    fn default() -> Self {
        MovementConfig {
            walk_speed_mps: 4.0,
            sprint_speed_mps: 6.5,
            ground_accel_mps2: 30.0,
            braking_decel_mps2: 25.0,
            air_control: 0.3,
            gravity_mps2: 9.81,
            jump_speed_mps: 5.0,
            max_fall_speed_mps: 50.0,
            ground_z_m: 0.0,
            bounds: ZoneBounds::default(),
            radius_m: 0.35,
            half_height_m: 0.9,
            max_step_height_m: 0.45,
            walkable_floor_z: DEFAULT_WALKABLE_FLOOR_Z,
            geometry: CollisionWorld::empty(),
        }
    }
}

/// A [`MovementConfig`] field with an unusable value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid movement config: `{field}` {reason}")]
pub struct MovementConfigError {
    /// The offending field, e.g. `walk_speed_mps` or `blockers[3]`.
    pub field: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn bad(field: impl Into<String>, reason: &'static str) -> MovementConfigError {
    MovementConfigError {
        field: field.into(),
        reason,
    }
}

fn check_positive(value: f32, field: &'static str) -> Result<(), MovementConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(bad(field, "must be finite and > 0"))
    }
}

fn check_non_negative(value: f32, field: &'static str) -> Result<(), MovementConfigError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(bad(field, "must be finite and >= 0"))
    }
}

impl MovementConfig {
    /// Checks every field's invariant; the error names the first bad field.
    pub fn validate(&self) -> Result<(), MovementConfigError> {
        check_positive(self.walk_speed_mps, "walk_speed_mps")?;
        check_positive(self.sprint_speed_mps, "sprint_speed_mps")?;
        if self.sprint_speed_mps < self.walk_speed_mps {
            return Err(bad("sprint_speed_mps", "must be >= walk_speed_mps"));
        }
        check_positive(self.ground_accel_mps2, "ground_accel_mps2")?;
        check_non_negative(self.braking_decel_mps2, "braking_decel_mps2")?;
        if !(0.0..=1.0).contains(&self.air_control) {
            return Err(bad("air_control", "must be within 0..=1"));
        }
        check_positive(self.gravity_mps2, "gravity_mps2")?;
        check_non_negative(self.jump_speed_mps, "jump_speed_mps")?;
        check_positive(self.max_fall_speed_mps, "max_fall_speed_mps")?;
        if !self.ground_z_m.is_finite() {
            return Err(bad("ground_z_m", "must be finite"));
        }
        check_positive(self.radius_m, "radius_m")?;
        check_positive(self.half_height_m, "half_height_m")?;
        if self.half_height_m < self.radius_m {
            return Err(bad("half_height_m", "must be >= radius_m (a capsule)"));
        }
        check_non_negative(self.max_step_height_m, "max_step_height_m")?;
        if self.max_step_height_m >= 2.0 * self.half_height_m {
            return Err(bad(
                "max_step_height_m",
                "must be below the character's height (2 * half_height_m)",
            ));
        }
        if !(self.walkable_floor_z > 0.0 && self.walkable_floor_z <= 1.0) {
            return Err(bad("walkable_floor_z", "must be within (0, 1]"));
        }
        let b = self.bounds;
        if !(b.min_xy_m.is_finite() && b.max_xy_m.is_finite()) {
            return Err(bad("bounds", "must be finite"));
        }
        let size = b.max_xy_m - b.min_xy_m;
        let diameter_m = 2.0 * self.radius_m;
        if !(size.x > diameter_m && size.y > diameter_m) {
            return Err(bad(
                "bounds",
                "must be wider than the character (max_xy_m - min_xy_m > 2 * radius_m on X and Y)",
            ));
        }
        Ok(())
    }
}

/// A quantized axis as a float in `[-1, 1]`. The invalid `-128` (rejected by validation on
/// the server) is treated as `-127` so that the step never exceeds its limits.
fn axis(q: i8) -> f32 {
    f32::from(q.max(-AXIS_Q_MAX)) / f32::from(AXIS_Q_MAX)
}

/// Advances `state` by one fixed tick of `dt_s` seconds under `input`.
///
/// Deterministic: the same `cfg`, `state`, `input` and `dt_s` give the same bits on every
/// platform. Input axes form a wish vector relative to `input.yaw_q` whose magnitude is
/// clamped to 1 (a diagonal is no faster than a straight line); sprint selects
/// `sprint_speed_mps`; jump applies only when `state.on_ground`. The result's `yaw_rad` is
/// `input.yaw_rad()`.
///
/// Contract (caller's responsibility, checked with `debug_assert!`): `cfg` passed
/// [`MovementConfig::validate`], `dt_s` is finite and `> 0`, and `state` is finite. Under
/// that contract the result is finite, inside `cfg.bounds` and not below `cfg.ground_z_m`.
#[must_use]
pub fn step(
    cfg: &MovementConfig,
    state: &CharacterState,
    input: &MoveInput,
    dt_s: f32,
) -> CharacterState {
    step_counted(cfg, state, input, dt_s, &mut StepStats::default())
}

/// [`step`], also counting what the controller did (step-ups, slides, snaps) into `stats`:
/// replays use it to show which parts of the controller they exercised.
#[must_use]
pub fn step_counted(
    cfg: &MovementConfig,
    state: &CharacterState,
    input: &MoveInput,
    dt_s: f32,
    stats: &mut StepStats,
) -> CharacterState {
    debug_assert!(
        dt_s.is_finite() && dt_s > 0.0,
        "dt_s must be finite and > 0"
    );
    debug_assert!(
        state.position_m.is_finite() && state.velocity_mps.is_finite(),
        "state must be finite"
    );

    // Wish direction in world space, magnitude <= 1.
    let (sin_yaw, cos_yaw) = sin_cos_from_yaw_q(input.yaw_q);
    let mut forward = axis(input.forward_q);
    let mut right = axis(input.right_q);
    let wish_len_sq = forward * forward + right * right;
    if wish_len_sq > 1.0 {
        let inv_len = 1.0 / wish_len_sq.sqrt();
        forward *= inv_len;
        right *= inv_len;
    }
    let has_input = wish_len_sq > 0.0;
    // Forward is (cos, sin); right is forward turned a quarter toward +Y: (-sin, cos).
    let wish_x = forward * cos_yaw - right * sin_yaw;
    let wish_y = forward * sin_yaw + right * cos_yaw;

    // Horizontal velocity.
    let top_speed_mps = if input.buttons.sprint() {
        cfg.sprint_speed_mps
    } else {
        cfg.walk_speed_mps
    };
    let rate_mps2 = match (state.on_ground, has_input) {
        (true, true) => cfg.ground_accel_mps2,
        (true, false) => cfg.braking_decel_mps2,
        (false, true) => cfg.ground_accel_mps2 * cfg.air_control,
        (false, false) => 0.0,
    };
    let mut velocity = state.velocity_mps;
    let (target_x, target_y) = if has_input {
        (wish_x * top_speed_mps, wish_y * top_speed_mps)
    } else {
        (0.0, 0.0)
    };
    (velocity.x, velocity.y) =
        approach_xy(velocity.x, velocity.y, target_x, target_y, rate_mps2 * dt_s);

    // Vertical velocity: gravity always applies so support is found again every tick.
    if state.on_ground {
        velocity.z = if input.buttons.jump() {
            cfg.jump_speed_mps
        } else {
            0.0
        };
    }
    velocity.z -= cfg.gravity_mps2 * dt_s;
    if velocity.z < -cfg.max_fall_speed_mps {
        velocity.z = -cfg.max_fall_speed_mps;
    }

    // The controller carries the motion out against the world (semi-implicit Euler: the
    // new velocity moves the character).
    let moved = controller::move_character(
        cfg,
        controller::MoveStart {
            position_m: state.position_m,
            velocity_mps: velocity,
            was_on_ground: state.on_ground,
        },
        dt_s,
        stats,
    );
    let mut position = moved.position_m;
    let mut velocity = moved.velocity_mps;
    // A slide along a tilted surface can turn horizontal speed downward.
    if velocity.z < -cfg.max_fall_speed_mps {
        velocity.z = -cfg.max_fall_speed_mps;
    }
    clamp_to_bounds(cfg, &mut position, &mut velocity);

    CharacterState {
        position_m: position,
        velocity_mps: velocity,
        yaw_rad: input.yaw_rad(),
        on_ground: moved.on_ground,
    }
}

/// `v` with negative values replaced by `0.0`.
///
/// Written as a comparison on purpose: `f32::max`/`min` may return either zero when given
/// `-0.0` and `+0.0` (the result can differ between targets, e.g. x86 `maxss` and AArch64
/// `fmaxnm`), which would break bit-exact agreement between client and server.
fn no_less_than_zero(v: f32) -> f32 {
    if v < 0.0 { 0.0 } else { v }
}

/// `v` with positive values replaced by `0.0` (see [`no_less_than_zero`] for why not `min`).
fn no_more_than_zero(v: f32) -> f32 {
    if v > 0.0 { 0.0 } else { v }
}

/// Keeps the footprint inside the zone rectangle; velocity into a wall is zeroed.
fn clamp_to_bounds(cfg: &MovementConfig, position: &mut Vec3, velocity: &mut Vec3) {
    let lo = cfg.bounds.min_xy_m + Vec2::splat(cfg.radius_m);
    let hi = cfg.bounds.max_xy_m - Vec2::splat(cfg.radius_m);
    if position.x < lo.x {
        position.x = lo.x;
        velocity.x = no_less_than_zero(velocity.x);
    } else if position.x > hi.x {
        position.x = hi.x;
        velocity.x = no_more_than_zero(velocity.x);
    }
    if position.y < lo.y {
        position.y = lo.y;
        velocity.y = no_less_than_zero(velocity.y);
    } else if position.y > hi.y {
        position.y = hi.y;
        velocity.y = no_more_than_zero(velocity.y);
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod controller_tests;
