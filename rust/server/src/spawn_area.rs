//! Where new characters start: the spawn point, or a point of a disc around it chosen from
//! the character's key (`[gameplay] spawn_spread_m`), so a crowd of new accounts (a load
//! test, a launch day) does not stack on one spot.
//!
//! The point is a pure function of the key (the account name for an account's default
//! character, the chosen name for one made over HTTP): the same key always starts at the
//! same place, and keys spread uniformly over the disc's area. Hash: 64-bit FNV-1a of the
//! key's bytes, finished with the splitmix64 mixer; its high 32 bits give the radius
//! fraction `u` and the low 32 bits the angle fraction `v`; the offset is
//! `spread_m * sqrt(u)` metres at angle `2 pi v` (uniform in area). The point is clamped to
//! the world rectangle, and its zone is the one that owns it.

use glam::{Vec2, Vec3};
use mmo_core::world::WorldLayout;

use crate::storage::characters::NewCharacter;

/// Largest spread, metres.
pub const MAX_SPREAD_M: f32 = 10_000.0;

/// The spawn point, the spread around it and the world it must stay in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpawnArea {
    /// Centre of the disc, metres.
    pub center_m: Vec3,
    /// Radius of the disc, metres (0: everyone at the centre).
    pub spread_m: f32,
    /// The world (clamping) and its zones (the starting zone).
    pub layout: WorldLayout,
}

impl SpawnArea {
    /// Everyone at `center_m`, in the default world (`[world]` defaults: one zone), for
    /// tests and tools.
    #[must_use]
    pub fn at_point(center_m: Vec3) -> SpawnArea {
        let layout = crate::zones::world_layout(&crate::config::WorldSettings::default())
            // Invariant: the default world settings are valid (checked by the config tests).
            .expect("the default world layout is valid");
        SpawnArea {
            center_m,
            spread_m: 0.0,
            layout,
        }
    }

    /// The start of the character with `key`.
    #[must_use]
    pub fn point_for(&self, key: &str) -> Vec3 {
        if self.spread_m <= 0.0 {
            return self.center_m;
        }
        let h = mix(fnv1a(key.as_bytes()));
        let u = (h >> 32) as f64 / 4_294_967_296.0;
        let v = (h & 0xffff_ffff) as f64 / 4_294_967_296.0;
        let r = f64::from(self.spread_m) * u.sqrt();
        let angle = std::f64::consts::TAU * v;
        let offset = Vec2::new((r * angle.cos()) as f32, (r * angle.sin()) as f32);
        let world = self.layout.world();
        let xy = (self.center_m.truncate() + offset).clamp(world.min_xy_m, world.max_xy_m);
        xy.extend(self.center_m.z)
    }

    /// Sets `new`'s starting position and zone for `key`.
    pub fn place(&self, new: &mut NewCharacter, key: &str) {
        new.position_m = self.point_for(key);
        new.zone_id = self.layout.zone_at(new.position_m).0;
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use mmo_core::world::Rect;

    use super::*;

    fn area(spread_m: f32) -> SpawnArea {
        let world = Rect::new(Vec2::new(-100.0, -100.0), Vec2::new(100.0, 100.0));
        SpawnArea {
            center_m: Vec3::new(0.0, 0.0, 1.0),
            spread_m,
            layout: WorldLayout::new(world, 2, 1, 10.0).expect("valid layout"),
        }
    }

    #[test]
    fn keys_spread_over_the_disc_and_keep_their_point() {
        let a = area(50.0);
        let points: Vec<Vec3> = (0..2000)
            .map(|i| a.point_for(&format!("bot-{i}")))
            .collect();
        assert_eq!(a.point_for("bot-7"), points[7], "deterministic");
        assert!(
            points
                .iter()
                .all(|p| p.truncate().length() <= 50.0 + 1e-3 && p.z == 1.0)
        );
        // Uniform in area: about a quarter within half the radius, none stacked.
        let inner = points
            .iter()
            .filter(|p| p.truncate().length() < 25.0)
            .count();
        assert!((400..600).contains(&inner), "{inner} of 2000 within 25 m");
        let west = points.iter().filter(|p| p.x < 0.0).count();
        assert!((900..1100).contains(&west), "{west} of 2000 west");
        assert_eq!(area(0.0).point_for("bot-1"), Vec3::new(0.0, 0.0, 1.0));
    }

    #[test]
    fn the_point_stays_in_the_world_and_names_its_zone() {
        let a = area(5_000.0);
        for i in 0..200 {
            let p = a.point_for(&format!("k{i}"));
            assert!(p.x.abs() <= 100.0 && p.y.abs() <= 100.0, "{p}");
        }
        let mut new = NewCharacter {
            name: "x".into(),
            race: "human".into(),
            class: "warrior".into(),
            zone_id: 0,
            position_m: Vec3::ZERO,
            yaw_rad: 0.0,
            inventory: Vec::new(),
        };
        for i in 0..50 {
            a.place(&mut new, &format!("k{i}"));
            let want = if new.position_m.x < 0.0 { 0 } else { 1 };
            assert_eq!(new.zone_id, want, "{}", new.position_m);
        }
    }
}
