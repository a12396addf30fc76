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
//!   otherwise only `+ - * /`, comparisons and `sqrt`;
//! - blockers are resolved in the order of [`MovementConfig::blockers`] (a `Vec`), never in
//!   hash-map order.
//!
//! The model: the character is an axis-aligned box `2*radius_m` wide and `2*half_height_m`
//! tall whose base centre is `position_m`. Horizontal velocity approaches the wished
//! velocity at `ground_accel_mps2` (or brakes at `braking_decel_mps2` without input); in the
//! air only `air_control` of the acceleration applies and there is no braking. Gravity always
//! applies, so support is re-detected every tick: the ground plane `ground_z_m` and the tops
//! of blockers set `on_ground`. Blockers are resolved by pushing the character out along the
//! axis of least penetration (ties prefer Z, then X, then Y).
//!
//! Known limits (documented, not bugs): no continuous collision, so a blocker thinner than
//! one tick of travel (`speed * dt`, about 0.2 m when sprinting at 30 Hz) can be tunnelled
//! through; obstacles whose top is less than one tick of penetration above the feet are
//! stepped onto rather than blocking (an implicit small step-up); blockers are tested
//! linearly (fine for tens to hundreds, a zone with thousands needs a spatial index).

use glam::{Vec2, Vec3};
use serde::{Deserialize, Serialize};

use crate::detmath::{approach_xy, sin_cos_from_yaw_q};
use crate::entity::CharacterState;
use crate::input::{AXIS_Q_MAX, MoveInput};

/// Most blockers a [`MovementConfig`] may hold (the step tests each one every tick).
pub const MAX_BLOCKERS: usize = 4096;

/// How many times per step the blocker list is swept to resolve overlaps between several
/// blockers. A fixed count keeps the step bounded and deterministic.
const RESOLVE_PASSES: usize = 4;

/// A static axis-aligned box in world space, metres.
///
/// Invariant (checked by [`MovementConfig::validate`]): finite, `min_m < max_m` on every axis.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aabb {
    /// Lowest corner.
    pub min_m: Vec3,
    /// Highest corner.
    pub max_m: Vec3,
}

impl Aabb {
    /// A box from its two corners (no validation; see [`MovementConfig::validate`]).
    #[must_use]
    pub fn new(min_m: Vec3, max_m: Vec3) -> Self {
        Aabb { min_m, max_m }
    }
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

/// Tuning of the movement step. Client and server must use identical values, or every
/// prediction mismatches. They are not sent at login yet (the welcome carries the tick
/// rate only): a client is configured with the server's values (`WIRE_FORMAT.md` 8.5).
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
    /// Static blockers, resolved in this order. At most [`MAX_BLOCKERS`].
    pub blockers: Vec<Aabb>,
    /// Half the width of the character's box, metres. Finite, `> 0`.
    pub radius_m: f32,
    /// Half the height of the character's box, metres. Finite, `> 0`.
    pub half_height_m: f32,
}

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
            blockers: Vec::new(),
            radius_m: 0.35,
            half_height_m: 0.9,
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
        if self.blockers.len() > MAX_BLOCKERS {
            return Err(bad("blockers", "holds more than MAX_BLOCKERS boxes"));
        }
        for (i, blocker) in self.blockers.iter().enumerate() {
            if !(blocker.min_m.is_finite() && blocker.max_m.is_finite()) {
                return Err(bad(format!("blockers[{i}]"), "must be finite"));
            }
            if !blocker.min_m.cmplt(blocker.max_m).all() {
                return Err(bad(
                    format!("blockers[{i}]"),
                    "must have min_m < max_m on every axis",
                ));
            }
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

    // Semi-implicit Euler.
    let mut position = state.position_m + velocity * dt_s;
    let mut on_ground = false;

    // Ground plane.
    if position.z <= cfg.ground_z_m {
        position.z = cfg.ground_z_m;
        if velocity.z < 0.0 {
            velocity.z = 0.0;
        }
        on_ground = true;
    }

    resolve_blockers(cfg, &mut position, &mut velocity, &mut on_ground);
    clamp_to_bounds(cfg, &mut position, &mut velocity);

    CharacterState {
        position_m: position,
        velocity_mps: velocity,
        yaw_rad: input.yaw_rad(),
        on_ground,
    }
}

/// The axis a blocker overlap is resolved along.
#[derive(Clone, Copy)]
enum PushAxis {
    X,
    Y,
    Z,
}

/// Pushes the character out of every overlapping blocker, in list order, for a fixed number
/// of sweeps. Velocity into a blocker face is zeroed; landing on a top face sets `on_ground`.
fn resolve_blockers(
    cfg: &MovementConfig,
    position: &mut Vec3,
    velocity: &mut Vec3,
    on_ground: &mut bool,
) {
    let r = cfg.radius_m;
    let height_m = 2.0 * cfg.half_height_m;
    for _ in 0..RESOLVE_PASSES {
        let mut moved = false;
        for b in &cfg.blockers {
            // Penetration depths for pushing in the positive / negative direction of each
            // axis. Any depth <= 0 means the boxes are separated (touching is not overlap).
            let push_pos_x = b.max_m.x - (position.x - r);
            let push_neg_x = (position.x + r) - b.min_m.x;
            let push_pos_y = b.max_m.y - (position.y - r);
            let push_neg_y = (position.y + r) - b.min_m.y;
            let push_pos_z = b.max_m.z - position.z;
            let push_neg_z = (position.z + height_m) - b.min_m.z;
            // Written as `!(x > 0)` so NaN counts as "no overlap".
            if !(push_pos_x > 0.0
                && push_neg_x > 0.0
                && push_pos_y > 0.0
                && push_neg_y > 0.0
                && push_pos_z > 0.0
                && push_neg_z > 0.0)
            {
                continue;
            }
            let (depth_x, up_x) = least(push_pos_x, push_neg_x);
            let (depth_y, up_y) = least(push_pos_y, push_neg_y);
            let (depth_z, up_z) = least(push_pos_z, push_neg_z);
            // Ties prefer Z (landing wins over sliding off), then X, then Y.
            let mut axis = PushAxis::Z;
            let mut depth = depth_z;
            if depth_x < depth {
                axis = PushAxis::X;
                depth = depth_x;
            }
            if depth_y < depth {
                axis = PushAxis::Y;
            }
            // Place the character exactly against the face instead of adding the depth, so
            // that repeated contact does not accumulate rounding.
            match (axis, up_x, up_y, up_z) {
                (PushAxis::X, true, _, _) => {
                    position.x = b.max_m.x + r;
                    velocity.x = no_less_than_zero(velocity.x);
                }
                (PushAxis::X, false, _, _) => {
                    position.x = b.min_m.x - r;
                    velocity.x = no_more_than_zero(velocity.x);
                }
                (PushAxis::Y, _, true, _) => {
                    position.y = b.max_m.y + r;
                    velocity.y = no_less_than_zero(velocity.y);
                }
                (PushAxis::Y, _, false, _) => {
                    position.y = b.min_m.y - r;
                    velocity.y = no_more_than_zero(velocity.y);
                }
                (PushAxis::Z, _, _, true) => {
                    position.z = b.max_m.z;
                    velocity.z = no_less_than_zero(velocity.z);
                    *on_ground = true;
                }
                (PushAxis::Z, _, _, false) => {
                    position.z = b.min_m.z - height_m;
                    velocity.z = no_more_than_zero(velocity.z);
                }
            }
            moved = true;
        }
        if !moved {
            break;
        }
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

/// The smaller of two push depths and whether it is the positive direction (ties: positive).
fn least(push_pos: f32, push_neg: f32) -> (f32, bool) {
    if push_neg < push_pos {
        (push_neg, false)
    } else {
        (push_pos, true)
    }
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
mod tests {
    use super::*;
    use crate::input::Buttons;
    use crate::time::TickRate;

    const DT: f32 = 1.0 / 30.0;

    fn input(forward_q: i8, right_q: i8, yaw_q: u16, buttons: u8) -> MoveInput {
        MoveInput {
            forward_q,
            right_q,
            yaw_q,
            buttons: Buttons(buttons),
        }
    }

    fn run(
        cfg: &MovementConfig,
        start: CharacterState,
        i: MoveInput,
        ticks: usize,
    ) -> CharacterState {
        let mut s = start;
        for _ in 0..ticks {
            s = step(cfg, &s, &i, DT);
        }
        s
    }

    fn speed_xy(s: &CharacterState) -> f32 {
        s.velocity_mps.truncate().length()
    }

    /// A small deterministic PRNG so the tests need no extra dependency.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn input(&mut self) -> MoveInput {
            let r = self.next();
            MoveInput {
                forward_q: (r & 0xFF) as u8 as i8,
                right_q: ((r >> 8) & 0xFF) as u8 as i8,
                yaw_q: (r >> 16) as u16,
                // Jump rarely, sprint half the time.
                buttons: Buttons(
                    (((r >> 32) & 1) as u8)
                        | if (r >> 33).is_multiple_of(16) {
                            Buttons::JUMP
                        } else {
                            0
                        },
                ),
            }
        }
    }

    fn arena() -> MovementConfig {
        MovementConfig {
            bounds: ZoneBounds {
                min_xy_m: Vec2::splat(-20.0),
                max_xy_m: Vec2::splat(20.0),
            },
            blockers: vec![
                Aabb::new(Vec3::new(3.0, -2.0, 0.0), Vec3::new(5.0, 2.0, 1.0)),
                Aabb::new(Vec3::new(-8.0, -8.0, 0.0), Vec3::new(-6.0, 8.0, 3.0)),
                Aabb::new(Vec3::new(0.0, 6.0, 0.0), Vec3::new(10.0, 7.0, 0.5)),
            ],
            ..MovementConfig::default()
        }
    }

    #[test]
    fn default_config_is_valid() {
        MovementConfig::default().validate().unwrap();
        arena().validate().unwrap();
    }

    #[test]
    fn validate_names_the_bad_field() {
        let cases: Vec<(MovementConfig, &str)> = vec![
            (
                MovementConfig {
                    walk_speed_mps: -1.0,
                    ..Default::default()
                },
                "walk_speed_mps",
            ),
            (
                MovementConfig {
                    sprint_speed_mps: 2.0,
                    ..Default::default()
                },
                "sprint_speed_mps",
            ),
            (
                MovementConfig {
                    gravity_mps2: f32::NAN,
                    ..Default::default()
                },
                "gravity_mps2",
            ),
            (
                MovementConfig {
                    air_control: 1.5,
                    ..Default::default()
                },
                "air_control",
            ),
            (
                MovementConfig {
                    bounds: ZoneBounds {
                        min_xy_m: Vec2::ZERO,
                        max_xy_m: Vec2::splat(0.5),
                    },
                    ..Default::default()
                },
                "bounds",
            ),
            (
                MovementConfig {
                    blockers: vec![
                        Aabb::new(Vec3::ZERO, Vec3::ONE),
                        Aabb::new(Vec3::ONE, Vec3::ZERO),
                    ],
                    ..Default::default()
                },
                "blockers[1]",
            ),
        ];
        for (cfg, field) in cases {
            let err = cfg.validate().unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().contains(field));
        }
    }

    #[test]
    fn reaches_walk_speed_and_stops() {
        let cfg = MovementConfig::default();
        let s = run(
            &cfg,
            CharacterState::at(Vec3::ZERO),
            input(127, 0, 0, 0),
            30,
        );
        assert_eq!(s.velocity_mps, Vec3::new(4.0, 0.0, 0.0));
        assert!(s.on_ground);
        assert!(s.position_m.x > 3.0);
        let stopped = run(&cfg, s, input(0, 0, 0, 0), 30);
        assert_eq!(stopped.velocity_mps, Vec3::ZERO);
    }

    #[test]
    fn sprint_is_faster() {
        let cfg = MovementConfig::default();
        let walk = run(
            &cfg,
            CharacterState::at(Vec3::ZERO),
            input(127, 0, 0, 0),
            30,
        );
        let sprint = run(
            &cfg,
            CharacterState::at(Vec3::ZERO),
            input(127, 0, 0, Buttons::SPRINT),
            30,
        );
        assert!((speed_xy(&sprint) - 6.5).abs() < 1e-5);
        assert!(sprint.position_m.x > walk.position_m.x);
    }

    #[test]
    fn diagonal_is_normalised_and_follows_yaw() {
        let cfg = MovementConfig::default();
        // Forward + right at yaw 0 goes toward +X+Y at walk speed, not sqrt(2) times it.
        let s = run(
            &cfg,
            CharacterState::at(Vec3::ZERO),
            input(127, 127, 0, 0),
            30,
        );
        assert!((speed_xy(&s) - 4.0).abs() < 1e-5, "{}", speed_xy(&s));
        assert!((s.velocity_mps.x - s.velocity_mps.y).abs() < 1e-5);
        // Facing +Y (a quarter turn), forward moves along +Y.
        let s = run(
            &cfg,
            CharacterState::at(Vec3::ZERO),
            input(127, 0, 16384, 0),
            30,
        );
        assert_eq!(s.velocity_mps, Vec3::new(0.0, 4.0, 0.0));
        assert_eq!(s.yaw_rad, input(0, 0, 16384, 0).yaw_rad());
        // The invalid -128 is treated as -127.
        let a = run(
            &cfg,
            CharacterState::at(Vec3::ZERO),
            input(-128, 0, 0, 0),
            5,
        );
        let b = run(
            &cfg,
            CharacterState::at(Vec3::ZERO),
            input(-127, 0, 0, 0),
            5,
        );
        assert!(a.bits_eq(&b));
    }

    #[test]
    fn jump_rises_falls_and_lands() {
        let cfg = MovementConfig::default();
        let mut s = step(
            &cfg,
            &CharacterState::at(Vec3::ZERO),
            &input(0, 0, 0, Buttons::JUMP),
            DT,
        );
        assert!(!s.on_ground && s.velocity_mps.z > 0.0);
        let mut apex_m = 0.0_f32;
        let mut airborne_ticks = 1;
        // Holding jump must not double-jump in the air.
        while !s.on_ground {
            s = step(&cfg, &s, &input(0, 0, 0, Buttons::JUMP), DT);
            apex_m = apex_m.max(s.position_m.z);
            airborne_ticks += 1;
            assert!(airborne_ticks < 100, "never landed");
        }
        let ideal_apex_m = 5.0 * 5.0 / (2.0 * 9.81);
        assert!((apex_m - ideal_apex_m).abs() < 0.15, "apex {apex_m}");
        let ideal_air_s = 2.0 * 5.0 / 9.81;
        assert!((airborne_ticks as f32 * DT - ideal_air_s).abs() < 0.1);
        assert_eq!(s.position_m.z, 0.0);
        assert_eq!(s.velocity_mps.z, 0.0);
    }

    #[test]
    fn clamped_to_bounds() {
        let cfg = arena();
        let s = run(
            &cfg,
            CharacterState::at(Vec3::new(0.0, -15.0, 0.0)),
            input(127, 0, 0, Buttons::SPRINT),
            200,
        );
        assert_eq!(s.position_m.x, 20.0 - cfg.radius_m);
        assert_eq!(s.velocity_mps.x, 0.0);
        // Moving away from the wall is not blocked.
        let back = step(&cfg, &s, &input(-127, 0, 0, 0), DT);
        assert!(back.position_m.x < s.position_m.x);
    }

    #[test]
    fn blocked_by_a_box() {
        let cfg = arena();
        // Walk +X at y = 0 into the 1 m tall box spanning x 3..5.
        let s = run(
            &cfg,
            CharacterState::at(Vec3::new(0.0, 0.0, 0.0)),
            input(127, 0, 0, 0),
            60,
        );
        assert_eq!(s.position_m.x, 3.0 - cfg.radius_m);
        assert_eq!(s.velocity_mps.x, 0.0);
        assert!(s.on_ground);
        assert_eq!(s.position_m.z, 0.0);
    }

    #[test]
    fn can_stand_on_a_box_and_walk_off() {
        let cfg = arena();
        let mut s = CharacterState {
            on_ground: false,
            ..CharacterState::at(Vec3::new(4.0, 0.0, 3.0))
        };
        s = run(&cfg, s, input(0, 0, 0, 0), 60);
        assert!(s.on_ground);
        assert_eq!(s.position_m.z, 1.0);
        assert_eq!(s.velocity_mps.z, 0.0);
        // Standing still stays exactly on top.
        let still = run(&cfg, s, input(0, 0, 0, 0), 90);
        assert!(still.bits_eq(&s), "{still:?} vs {s:?}");
        // Walking -Y stays on the 4 m deep top for a while, then falls off to the ground.
        s = run(&cfg, s, input(0, -127, 0, 0), 5);
        assert_eq!(s.position_m.z, 1.0);
        s = run(&cfg, s, input(0, -127, 0, 0), 60);
        assert!(s.on_ground);
        assert_eq!(s.position_m.z, 0.0);
        assert!(s.position_m.y < -2.0);
    }

    #[test]
    fn jump_onto_a_box() {
        let cfg = arena();
        let mut s = CharacterState::at(Vec3::new(1.5, 0.0, 0.0));
        // Jump while running +X toward the 1 m box at x = 3.
        s = step(
            &cfg,
            &s,
            &input(127, 0, 0, Buttons::JUMP | Buttons::SPRINT),
            DT,
        );
        let mut landed_on_top = false;
        for _ in 0..40 {
            s = step(&cfg, &s, &input(127, 0, 0, Buttons::SPRINT), DT);
            landed_on_top |= s.on_ground && s.position_m.z == 1.0;
        }
        assert!(landed_on_top);
        // Ran across the 2 m top and dropped back to the ground beyond it.
        assert!(s.on_ground && s.position_m.z == 0.0 && s.position_m.x > 5.0);
    }

    #[test]
    fn long_random_sequence_is_bit_identical() {
        let cfg = arena();
        let dt = TickRate::new(30).unwrap().dt_s();
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let inputs: Vec<MoveInput> = (0..20_000).map(|_| rng.input()).collect();
        let play = || {
            let mut s = CharacterState::at(Vec3::new(1.0, 1.0, 0.0));
            let mut trace = Vec::with_capacity(inputs.len());
            for i in &inputs {
                s = step(&cfg, &s, i, dt);
                trace.push(s);
            }
            trace
        };
        let a = play();
        let b = play();
        for (n, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(x.bits_eq(y), "diverged at tick {n}");
            assert!(x.position_m.is_finite() && x.velocity_mps.is_finite());
            assert!(x.position_m.x.abs() <= 20.0 && x.position_m.y.abs() <= 20.0);
            assert!(x.position_m.z >= 0.0);
        }
        // The sequence actually exercised the blockers and the air.
        assert!(a.iter().any(|s| s.position_m.z >= 0.5 && s.on_ground));
        assert!(a.iter().any(|s| !s.on_ground));
    }

    /// FNV-1a over the bits of every state of a trace.
    fn trace_digest(trace: &[CharacterState]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for s in trace {
            let words = [
                s.position_m.x,
                s.position_m.y,
                s.position_m.z,
                s.velocity_mps.x,
                s.velocity_mps.y,
                s.velocity_mps.z,
                s.yaw_rad,
            ]
            .map(f32::to_bits);
            for w in words.into_iter().chain([u32::from(s.on_ground)]) {
                for b in w.to_le_bytes() {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        h
    }

    /// Golden trace: pins the exact bits the step produces for a fixed input sequence. If
    /// this fails after a change to the step, the change altered simulation results (update
    /// the constant deliberately, client and server must ship together). If it fails on a
    /// new target or compiler with no code change, the step is not portable there: that is
    /// a determinism bug to fix, never a constant to update.
    #[test]
    fn golden_trace_is_stable() {
        let cfg = arena();
        let mut rng = XorShift(0x005E_ED0F_601D);
        let mut s = CharacterState::at(Vec3::new(-3.0, 2.0, 0.0));
        let trace: Vec<CharacterState> = (0..5000)
            .map(|_| {
                s = step(&cfg, &s, &rng.input(), TickRate::DEFAULT.dt_s());
                s
            })
            .collect();
        assert_eq!(
            trace_digest(&trace),
            GOLDEN_TRACE_DIGEST,
            "{:#018x}",
            trace_digest(&trace)
        );
    }

    const GOLDEN_TRACE_DIGEST: u64 = 0xb8f3_5f89_4f17_eb47;

    proptest::proptest! {
        #[test]
        fn step_stays_finite_and_inside(
            x in -30.0_f32..30.0, y in -30.0_f32..30.0, z in 0.0_f32..10.0,
            vx in -40.0_f32..40.0, vy in -40.0_f32..40.0, vz in -60.0_f32..60.0,
            on_ground: bool, forward_q: i8, right_q: i8, yaw_q: u16, buttons: u8,
        ) {
            let cfg = arena();
            let s = CharacterState {
                position_m: Vec3::new(x, y, z),
                velocity_mps: Vec3::new(vx, vy, vz),
                yaw_rad: 0.0,
                on_ground,
            };
            let i = MoveInput { forward_q, right_q, yaw_q, buttons: Buttons(buttons) };
            let n = step(&cfg, &s, &i, DT);
            proptest::prop_assert!(n.position_m.is_finite() && n.velocity_mps.is_finite());
            proptest::prop_assert!(n.position_m.x.abs() <= 20.0 - cfg.radius_m);
            proptest::prop_assert!(n.position_m.y.abs() <= 20.0 - cfg.radius_m);
            proptest::prop_assert!(n.position_m.z >= cfg.ground_z_m);
            proptest::prop_assert!(n.velocity_mps.z >= -cfg.max_fall_speed_mps);
        }
    }
}
