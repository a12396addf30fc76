//! The replicated `flags` byte of an entity record (`codec::entity_state::NetEntityState`):
//! bit 0 says the character stands on the ground, bits 1..=7 carry its health as a percentage
//! of its maximum (0..=100). The codec sends the byte only when it changed, so health reaches
//! every observer with the entity's own replication priority (a damaged target is Critical
//! that tick) at the cost of 8 bits per change.
//!
//! Health percentages round up, so a living character never shows 0 and 0 means dead.

/// Bit 0: the character stands on the ground.
pub const FLAG_ON_GROUND: u8 = 1;

/// Position of the health percentage in the byte.
pub const HEALTH_SHIFT: u8 = 1;

/// The flags byte of a character.
#[must_use]
pub fn encode(on_ground: bool, health: u32, health_max: u32) -> u8 {
    let ground = if on_ground { FLAG_ON_GROUND } else { 0 };
    ground | (health_percent(health, health_max) << HEALTH_SHIFT)
}

/// `health` as a percentage of `health_max`, rounded up, `0..=100` (100 when the maximum is
/// 0: an entity without health).
#[must_use]
pub fn health_percent(health: u32, health_max: u32) -> u8 {
    if health_max == 0 {
        return 100;
    }
    let pct = (u64::from(health.min(health_max)) * 100).div_ceil(u64::from(health_max));
    // At most 100 (health is clamped to the maximum).
    pct as u8
}

/// The health percentage in a flags byte (values above 100 from a hostile peer read as 100).
#[must_use]
pub fn health_percent_of(flags: u8) -> u8 {
    (flags >> HEALTH_SHIFT).min(100)
}

/// The on-ground bit of a flags byte.
#[must_use]
pub fn on_ground(flags: u8) -> bool {
    flags & FLAG_ON_GROUND != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_round_trips_through_the_byte() {
        for (health, max, pct) in [(160, 160, 100), (1, 160, 1), (0, 160, 0), (80, 160, 50)] {
            let flags = encode(true, health, max);
            assert_eq!(health_percent_of(flags), pct, "{health}/{max}");
            assert!(on_ground(flags));
            assert!(!on_ground(encode(false, health, max)));
        }
        assert_eq!(health_percent(5, 0), 100);
        assert_eq!(health_percent(500, 100), 100);
        assert_eq!(health_percent_of(0xFF), 100);
    }
}
