//! Plain `#[repr(C)]` value types shared by several handles, with their conversions to and
//! from the core's types. Units live in the names: metres, seconds, radians, microseconds.
//! World axes: X forward, Y right, Z up (Unreal's axes; the plugin only scales cm <-> m).
//!
//! Booleans coming in from C are `uint8_t` (0 or 1, anything else is
//! `MMO_RESULT_INVALID_ARGUMENT`), never C `bool`, so a stray byte can never become an
//! invalid Rust `bool`.

use glam::Vec3;
use mmo_core::entity::CharacterState;
use mmo_core::input::{Buttons, MoveInput};

use crate::boundary::{self, FfiError, Out};
use crate::result::mmo_result;

/// A 3D vector of `float`s (a position in metres, a velocity in m/s...).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct mmo_vec3 {
    /// X (forward).
    pub x: f32,
    /// Y (right).
    pub y: f32,
    /// Z (up).
    pub z: f32,
}

impl From<Vec3> for mmo_vec3 {
    fn from(v: Vec3) -> Self {
        mmo_vec3 {
            x: v.x,
            y: v.y,
            z: v.z,
        }
    }
}

impl mmo_vec3 {
    /// As the core's vector (no check).
    pub(crate) fn to_vec3(self) -> Vec3 {
        Vec3::new(self.x, self.y, self.z)
    }

    /// As the core's vector, refusing NaN and infinities.
    pub(crate) fn finite(self, name: &str) -> Result<Vec3, FfiError> {
        let v = self.to_vec3();
        if v.is_finite() {
            Ok(v)
        } else {
            Err(FfiError::invalid(name, "must be finite"))
        }
    }
}

/// The simulation state of a character (what the movement step reads and writes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct mmo_character_state {
    /// Position of the capsule's base, metres.
    pub position_m: mmo_vec3,
    /// Velocity, metres per second.
    pub velocity_mps: mmo_vec3,
    /// Facing, radians in `[0, 2*pi)`.
    pub yaw_rad: f32,
    /// 1 when standing on walkable support (ground, terrain or a shape), else 0 (other values are invalid).
    pub on_ground: u8,
}

impl From<&CharacterState> for mmo_character_state {
    fn from(s: &CharacterState) -> Self {
        mmo_character_state {
            position_m: s.position_m.into(),
            velocity_mps: s.velocity_mps.into(),
            yaw_rad: s.yaw_rad,
            on_ground: u8::from(s.on_ground),
        }
    }
}

impl mmo_character_state {
    /// As the core's state; `on_ground` must be 0 or 1. Finiteness is left to the core,
    /// which reports it with its own error.
    pub(crate) fn to_core(self, name: &str) -> Result<CharacterState, FfiError> {
        // The field's name is only formatted on failure: this runs every frame
        // (`mmo_predictor_reconcile`), which must not allocate.
        let on_ground = match self.on_ground {
            0 => false,
            1 => true,
            _ => boundary::flag(self.on_ground, &format!("{name}.on_ground"))?,
        };
        Ok(CharacterState {
            position_m: self.position_m.to_vec3(),
            velocity_mps: self.velocity_mps.to_vec3(),
            yaw_rad: self.yaw_rad,
            on_ground,
        })
    }
}

/// Button bit: sprint held.
pub const MMO_BUTTON_SPRINT: u8 = 1;
/// Button bit: jump pressed.
pub const MMO_BUTTON_JUMP: u8 = 2;

// Literals above so that cbindgen can print them; they must equal the core's bits.
const _: () = assert!(MMO_BUTTON_SPRINT == Buttons::SPRINT && MMO_BUTTON_JUMP == Buttons::JUMP);

/// One tick of movement input, quantized exactly as simulated and sent on the wire.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mmo_move_input {
    /// Forward axis, `-127..=127` maps to `-1..=1` (`-128` is invalid).
    pub forward_q: i8,
    /// Right axis, same scale as `forward_q`.
    pub right_q: i8,
    /// Facing, `0..=65535` maps to `[0, 2*pi)`.
    pub yaw_q: u16,
    /// `MMO_BUTTON_*` bits (other bits are invalid).
    pub buttons: u8,
}

impl From<mmo_move_input> for MoveInput {
    fn from(i: mmo_move_input) -> Self {
        MoveInput {
            forward_q: i.forward_q,
            right_q: i.right_q,
            yaw_q: i.yaw_q,
            buttons: Buttons(i.buttons),
        }
    }
}

impl From<MoveInput> for mmo_move_input {
    fn from(i: MoveInput) -> Self {
        mmo_move_input {
            forward_q: i.forward_q,
            right_q: i.right_q,
            yaw_q: i.yaw_q,
            buttons: i.buttons.0,
        }
    }
}

/// Quantizes controls sampled from the device into `*out`, exactly as the core does: NaN
/// axes become 0, axes are clamped to `[-1, 1]`, a (forward, right) vector longer than 1 is
/// scaled to length 1 (a keyboard diagonal passes the server's magnitude check), yaw is
/// wrapped into `[0, 2*pi)` (non-finite yaw becomes 0).
///
/// Returns `MMO_RESULT_NULL_ARGUMENT` when `out` is NULL, `MMO_RESULT_INVALID_ARGUMENT` when
/// `buttons` has bits other than `MMO_BUTTON_*`. Thread-safe; `*out` written only on success.
///
/// # Safety
/// `out` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_move_input_from_controls(
    forward: f32,
    right: f32,
    yaw_rad: f32,
    buttons: u8,
    out: *mut mmo_move_input,
) -> mmo_result {
    boundary::guard(|| {
        let out = Out::new(out, "out")?;
        if buttons & !Buttons::KNOWN != 0 {
            return Err(FfiError::invalid(
                "buttons",
                format!("has unknown bits {:#04x}", buttons & !Buttons::KNOWN),
            ));
        }
        let input = MoveInput::from_controls(forward, right, yaw_rad, Buttons(buttons));
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(input.into()) };
        Ok(())
    })
}
