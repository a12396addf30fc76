//! Scenario tests of rewinding and hit-testing against the hitbox history.

use glam::Vec3;

use super::*;
use crate::entity::EntityId;
use crate::time::{Tick, TickRate};

const TARGET: EntityId = EntityId(7);
const SPEED_MPS: f32 = 5.0;

fn config_60hz() -> LagCompensationConfig {
    LagCompensationConfig {
        tick_rate: TickRate::new(60).unwrap(),
        ..LagCompensationConfig::default()
    }
}

/// Target strafing along +Y at 5 m/s from the origin, recorded at 60 Hz up to `last_tick`.
fn strafing_history(last_tick: u32) -> HitboxHistory {
    let mut history = HitboxHistory::new(config_60hz()).unwrap();
    for t in 0..=last_tick {
        history.record(Tick(t), TARGET, capsule_at_tick(t)).unwrap();
    }
    history
}

fn capsule_at_tick(t: u32) -> Capsule {
    Capsule::new(Vec3::new(10.0, SPEED_MPS * t as f32 / 60.0, 0.0), 0.4, 1.8)
}

/// A shot from the shooter at the origin toward the chest of a capsule.
fn shot_at(capsule: &Capsule) -> Ray {
    let shooter = Vec3::new(0.0, 0.0, 1.5);
    Ray {
        origin_m: shooter,
        dir: capsule.base_m + Vec3::Z * 1.2 - shooter,
        max_dist_m: 100.0,
    }
}

#[test]
fn hit_where_the_shooter_saw_the_target_is_accepted() {
    let history = strafing_history(120);
    // The shooter was rendering the target 12 ticks (200 ms) ago.
    let seen = capsule_at_tick(108);
    let hit = history
        .hit_test_rewound(Tick(108), 0.0, TARGET, &shot_at(&seen))
        .unwrap();
    assert!(
        hit.is_some(),
        "shot at the seen position must hit the rewound target"
    );
    // Without rewinding, the target has moved 1 m and the same shot misses the present one.
    let present = history.latest(TARGET).unwrap();
    let aim = shot_at(&seen);
    assert_eq!(
        ray_vs_capsule(&present, aim.origin_m, aim.dir, aim.max_dist_m),
        None
    );
}

#[test]
fn shot_at_the_present_position_misses_the_rewound_target() {
    let history = strafing_history(120);
    let present = history.latest(TARGET).unwrap();
    let miss = history
        .hit_test_rewound(Tick(108), 0.0, TARGET, &shot_at(&present))
        .unwrap();
    assert_eq!(
        miss, None,
        "the shooter could not have seen the target there"
    );
}

#[test]
fn rewind_interpolates_between_ticks() {
    let history = strafing_history(120);
    let mid = history.rewound(TARGET, Tick(100), 0.25).unwrap();
    let expected_y = SPEED_MPS * 100.25 / 60.0;
    assert!((mid.base_m.y - expected_y).abs() < 1e-4, "{}", mid.base_m.y);
    assert_eq!(
        history.rewound(TARGET, Tick(100), 0.0).unwrap(),
        capsule_at_tick(100)
    );
    assert_eq!(
        history.rewound(TARGET, Tick(120), 0.0).unwrap(),
        capsule_at_tick(120)
    );
    // A hit between two ticks: aim at the interpolated position.
    let seen = history.rewound(TARGET, Tick(110), 0.5).unwrap();
    let hit = history.hit_test_rewound(Tick(110), 0.5, TARGET, &shot_at(&seen));
    assert!(matches!(hit, Ok(Some(_))));
}

#[test]
fn rewind_across_a_gap_in_recording_uses_tick_distance() {
    let mut history = HitboxHistory::new(config_60hz()).unwrap();
    history
        .record(Tick(10), TARGET, Capsule::new(Vec3::ZERO, 0.4, 1.8))
        .unwrap();
    history
        .record(Tick(14), TARGET, Capsule::new(Vec3::X * 4.0, 0.4, 1.8))
        .unwrap();
    let c = history.rewound(TARGET, Tick(11), 0.5).unwrap();
    assert!((c.base_m.x - 1.5).abs() < 1e-5, "{}", c.base_m.x);
}

#[test]
fn rewind_beyond_the_clamp_is_refused() {
    let history = strafing_history(120);
    // 400 ms at 60 Hz is 24 ticks: exactly 24 is allowed, 25 is not.
    assert!(history.rewound(TARGET, Tick(96), 0.0).is_ok());
    assert_eq!(
        history.rewound(TARGET, Tick(95), 0.5),
        Err(RewindError::BeyondClamp {
            requested_ms: 409,
            max_ms: 400
        })
    );
    assert!(history.rewound(TARGET, Tick(95), 0.0).is_err());
    assert!(matches!(
        history.hit_test_rewound(Tick(0), 0.0, TARGET, &shot_at(&capsule_at_tick(0))),
        Err(RewindError::BeyondClamp { .. })
    ));
}

#[test]
fn hostile_requests_get_typed_errors() {
    let history = strafing_history(120);
    assert_eq!(
        history.rewound(TARGET, Tick(121), 0.0),
        Err(RewindError::FromFuture {
            requested: Tick(121),
            current: Tick(120)
        })
    );
    assert!(matches!(
        history.rewound(TARGET, Tick(120), 0.5),
        Err(RewindError::FromFuture { .. })
    ));
    assert!(matches!(
        history.rewound(TARGET, Tick(u32::MAX), 0.0),
        Err(RewindError::FromFuture { .. })
    ));
    for fraction in [1.0, -0.1, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            history.rewound(TARGET, Tick(110), fraction),
            Err(RewindError::InvalidFraction { .. })
        ));
    }
    assert_eq!(
        history.rewound(EntityId(99), Tick(110), 0.0),
        Err(RewindError::UnknownEntity {
            entity: EntityId(99)
        })
    );
    let empty = HitboxHistory::new(config_60hz()).unwrap();
    assert!(matches!(
        empty.rewound(TARGET, Tick(0), 0.0),
        Err(RewindError::UnknownEntity { .. })
    ));
}

#[test]
fn entity_spawned_later_or_gone_has_no_history_then() {
    let mut history = strafing_history(120);
    let late = EntityId(8);
    for t in 110..=115 {
        history.record(Tick(t), late, capsule_at_tick(t)).unwrap();
    }
    assert_eq!(
        history.rewound(late, Tick(105), 0.0),
        Err(RewindError::NoHistory {
            entity: late,
            tick: Tick(105)
        })
    );
    assert!(
        history.rewound(late, Tick(115), 0.5).is_ok(),
        "within its last tick"
    );
    assert_eq!(
        history.rewound(late, Tick(117), 0.0),
        Err(RewindError::NoHistory {
            entity: late,
            tick: Tick(117)
        })
    );
}

#[test]
fn history_is_bounded_and_old_ticks_are_pruned() {
    let history = strafing_history(10_000);
    let max = config_60hz().max_history_ticks as usize;
    assert_eq!(history.sample_count(TARGET), max);
    assert_eq!(history.total_samples(), max);
    // The oldest tick kept is exactly max - 1 behind the present.
    let oldest = Tick(10_000 - (max as u32 - 1));
    assert_eq!(history.oldest_tick(TARGET), Some(oldest));
    // Everything inside the clamp is still there.
    assert!(history.rewound(TARGET, Tick(10_000 - 24), 0.0).is_ok());
}

#[test]
fn entities_no_longer_recorded_are_forgotten() {
    let mut history = strafing_history(100);
    let other = EntityId(9);
    history
        .record(Tick(101), other, capsule_at_tick(0))
        .unwrap();
    // TARGET is no longer recorded; once its last sample leaves the window it is dropped.
    for t in 102..=200 {
        history.record(Tick(t), other, capsule_at_tick(0)).unwrap();
    }
    assert_eq!(history.entity_count(), 1);
    assert_eq!(history.sample_count(TARGET), 0);
}

#[test]
fn removing_an_entity() {
    let mut history = strafing_history(60);
    assert!(history.remove(TARGET));
    assert!(!history.remove(TARGET));
    assert_eq!(history.entity_count(), 0);
    assert_eq!(
        history.rewound(TARGET, Tick(60), 0.0),
        Err(RewindError::UnknownEntity { entity: TARGET })
    );
    assert_eq!(history.latest(TARGET), None);
}

#[test]
fn entity_count_is_bounded() {
    let config = LagCompensationConfig {
        max_entities: 2,
        ..config_60hz()
    };
    let mut history = HitboxHistory::new(config).unwrap();
    let c = capsule_at_tick(0);
    history.record(Tick(0), EntityId(1), c).unwrap();
    history.record(Tick(0), EntityId(2), c).unwrap();
    assert_eq!(
        history.record(Tick(0), EntityId(3), c),
        Err(RecordError::TooManyEntities { max_entities: 2 })
    );
    // Existing entities keep recording.
    history.record(Tick(1), EntityId(1), c).unwrap();
    assert!(history.remove(EntityId(2)));
    history.record(Tick(1), EntityId(3), c).unwrap();
}

#[test]
fn recording_the_same_tick_replaces() {
    let mut history = HitboxHistory::new(config_60hz()).unwrap();
    history.record(Tick(5), TARGET, capsule_at_tick(0)).unwrap();
    history
        .record(Tick(5), TARGET, capsule_at_tick(60))
        .unwrap();
    assert_eq!(history.sample_count(TARGET), 1);
    assert_eq!(history.latest(TARGET), Some(capsule_at_tick(60)));
}
