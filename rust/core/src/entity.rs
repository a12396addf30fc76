//! Entity identity and the state the movement step and the replication carry.
//!
//! World convention (Unreal's axes, so the plugin only scales cm <-> m): metres, X forward,
//! Y right, Z up; yaw in radians about +Z, 0 = +X, positive turns from +X toward +Y.

use glam::Vec3;
use serde::{Deserialize, Serialize};

/// Identifies an entity within one server process. 0 is never a valid id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityId(pub u32);

/// The full simulation state of a character: what the movement step reads and writes.
///
/// The client's own character is compared bit for bit against the server's copy, so this is
/// sent losslessly for the owner; other clients receive a quantized copy (see `codec`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CharacterState {
    /// Position of the capsule's base, metres.
    pub position_m: Vec3,
    /// Velocity, metres per second.
    pub velocity_mps: Vec3,
    /// Facing, radians in `[0, 2*pi)`, derived from the last input's quantized yaw.
    pub yaw_rad: f32,
    /// True when standing on walkable support: the ground plane, a heightfield or a shape.
    pub on_ground: bool,
}

impl CharacterState {
    /// A character standing still at `position_m`.
    #[must_use]
    pub fn at(position_m: Vec3) -> Self {
        CharacterState {
            position_m,
            velocity_mps: Vec3::ZERO,
            yaw_rad: 0.0,
            on_ground: true,
        }
    }

    /// Bit-for-bit equality (distinguishes `0.0` from `-0.0` and compares NaN payloads), the
    /// comparison reconciliation uses: a deterministic step reproduces the exact bits.
    #[must_use]
    pub fn bits_eq(&self, other: &CharacterState) -> bool {
        let a = self.position_m.to_array().map(f32::to_bits);
        let b = other.position_m.to_array().map(f32::to_bits);
        let va = self.velocity_mps.to_array().map(f32::to_bits);
        let vb = other.velocity_mps.to_array().map(f32::to_bits);
        a == b
            && va == vb
            && self.yaw_rad.to_bits() == other.yaw_rad.to_bits()
            && self.on_ground == other.on_ground
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_eq_distinguishes_signed_zero() {
        let a = CharacterState::at(Vec3::new(0.0, 1.0, 2.0));
        let mut b = a;
        assert!(a.bits_eq(&b));
        b.position_m.x = -0.0;
        assert!(a == b, "PartialEq treats -0.0 == 0.0");
        assert!(!a.bits_eq(&b));
    }
}
