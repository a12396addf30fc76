//! The character controller against real geometry: ledges stepped up and refused, stairs
//! and slopes followed down, walkable and steep ramps, walls slid along, heightfields
//! followed and steep ones refused, and no thin wall ever tunnelled.

use std::sync::Arc;

use glam::{Quat, Vec2, Vec3};

use super::controller::SKIN_M;
use super::*;
use crate::geometry::{CollisionWorld, Heightfield, LoadedWorld, Mesh, Tile, TileCoord, WorldFile};
use crate::input::Buttons;

const DT: f32 = 1.0 / 30.0;

fn walk(forward_q: i8, yaw_q: u16, buttons: u8) -> MoveInput {
    MoveInput {
        forward_q,
        right_q: 0,
        yaw_q,
        buttons: Buttons(buttons),
    }
}

/// A world of one 256 m tile at the origin holding `shapes`, `meshes` and `heightfields`.
fn world(
    shapes: Vec<StaticShape>,
    meshes: Vec<Mesh>,
    heightfields: Vec<Heightfield>,
) -> Arc<CollisionWorld> {
    let file = WorldFile {
        tile_size_m: 256.0,
        tiles: vec![Tile {
            coord: TileCoord { x: 0, y: 0 },
            heightfields,
            shapes,
            meshes,
        }],
    };
    let loaded = LoadedWorld::from_world(file).expect("a valid test world");
    CollisionWorld::build(&loaded, |_| true).expect("builds")
}

fn cfg_in(geometry: Arc<CollisionWorld>) -> MovementConfig {
    MovementConfig {
        geometry,
        ..MovementConfig::default()
    }
}

fn boxed(id: u32, min: Vec3, max: Vec3) -> StaticShape {
    StaticShape {
        id,
        pose: Pose::at((min + max) * 0.5),
        kind: ShapeKind::Box {
            half_extents_m: (max - min) * 0.5,
        },
    }
}

/// A ramp mesh 4 m wide (Y 8..12) rising along +X from `x0` over `run_m` to `rise_m`, with a
/// flat top 4 m long after it.
fn ramp(id: u32, x0: f32, run_m: f32, rise_m: f32) -> Mesh {
    Mesh {
        id,
        pose: Pose::at(Vec3::new(x0, 8.0, 0.0)),
        vertices_m: vec![
            Vec3::new(0.0, 0.0, 0.0),
            Vec3::new(run_m, 0.0, rise_m),
            Vec3::new(run_m, 4.0, rise_m),
            Vec3::new(0.0, 4.0, 0.0),
            Vec3::new(run_m + 4.0, 0.0, rise_m),
            Vec3::new(run_m + 4.0, 4.0, rise_m),
        ],
        triangles: vec![[0, 1, 2], [0, 2, 3], [1, 4, 5], [1, 5, 2]],
    }
}

/// Runs `ticks` steps of `input`, counting what the controller did.
fn run(
    cfg: &MovementConfig,
    mut s: CharacterState,
    input: MoveInput,
    ticks: usize,
    stats: &mut StepStats,
) -> CharacterState {
    for _ in 0..ticks {
        s = step_counted(cfg, &s, &input, DT, stats);
    }
    s
}

#[test]
fn ledges_under_the_step_height_are_walked_up_and_a_higher_one_blocks() {
    let cfg = cfg_in(world(
        vec![
            // A 0.2 m curb at y 0..4, a 0.4 m step at y 10..14, a 0.6 m ledge at y 20..24.
            boxed(1, Vec3::new(10.0, 0.0, 0.0), Vec3::new(14.0, 4.0, 0.2)),
            boxed(2, Vec3::new(10.0, 10.0, 0.0), Vec3::new(14.0, 14.0, 0.4)),
            boxed(3, Vec3::new(10.0, 20.0, 0.0), Vec3::new(14.0, 24.0, 0.6)),
        ],
        vec![],
        vec![],
    ));
    // The curb is lower than the capsule's half-sphere: its edge is stood on and the
    // capsule rolls up over it, no step-up needed.
    let mut stats = StepStats::default();
    let s = run(
        &cfg,
        CharacterState::at(Vec3::new(8.0, 2.0, 0.0)),
        walk(127, 0, 0),
        30,
        &mut stats,
    );
    assert!(s.on_ground && s.position_m.x > 10.0, "{s:?}");
    assert!((s.position_m.z - (0.2 + SKIN_M)).abs() < 2e-3, "{s:?}");
    // The step meets the capsule's straight side: a step-up.
    let mut stats = StepStats::default();
    let s = run(
        &cfg,
        CharacterState::at(Vec3::new(8.0, 12.0, 0.0)),
        walk(127, 0, 0),
        30,
        &mut stats,
    );
    assert!(stats.step_ups >= 1, "{stats:?}");
    assert!(s.on_ground && s.position_m.x > 10.0, "{s:?}");
    assert!((s.position_m.z - (0.4 + SKIN_M)).abs() < 2e-3, "{s:?}");
    // The ledge is higher than max_step_height_m (0.45): blocked.
    let mut stats = StepStats::default();
    let s = run(
        &cfg,
        CharacterState::at(Vec3::new(8.0, 22.0, 0.0)),
        walk(127, 0, 0),
        30,
        &mut stats,
    );
    assert_eq!(stats.step_ups, 0, "{stats:?}");
    assert_eq!(s.position_m.z, 0.0);
    assert!(s.position_m.x < 10.0 - cfg.radius_m, "{s:?}");
    assert!(stats.slides > 0, "{stats:?}");
}

#[test]
fn stairs_are_walked_down_on_the_ground_every_tick() {
    // Five 0.2 m steps going down along +X from a 1 m landing.
    let mut shapes = Vec::new();
    for i in 0..5u8 {
        let x0 = 10.0 + f32::from(i);
        let top = 1.0 - 0.2 * f32::from(i);
        shapes.push(boxed(
            u32::from(i) + 1,
            Vec3::new(x0, 0.0, 0.0),
            Vec3::new(x0 + 1.0, 4.0, top),
        ));
    }
    shapes.push(boxed(
        9,
        Vec3::new(5.0, 0.0, 0.0),
        Vec3::new(10.0, 4.0, 1.0),
    ));
    let cfg = cfg_in(world(shapes, vec![], vec![]));
    let mut s = CharacterState::at(Vec3::new(8.0, 2.0, 1.0 + SKIN_M));
    let mut stats = StepStats::default();
    let mut lowest_z = f32::MAX;
    for _ in 0..60 {
        s = step_counted(&cfg, &s, &walk(127, 0, 0), DT, &mut stats);
        assert!(s.on_ground, "left the stairs: {s:?}");
        lowest_z = lowest_z.min(s.position_m.z);
    }
    assert!(stats.snaps >= 4, "{stats:?}");
    assert_eq!(lowest_z, 0.0, "reached the floor");
    assert!(s.position_m.x > 15.0);
}

#[test]
fn a_walkable_ramp_is_climbed_and_a_steep_one_is_not() {
    // 20 degrees (rise 1.46 over 4 m) and 60 degrees (rise 3.46 over 2 m).
    let gentle = cfg_in(world(vec![], vec![ramp(1, 10.0, 4.0, 1.456)], vec![]));
    let steep = cfg_in(world(vec![], vec![ramp(1, 10.0, 2.0, 3.464)], vec![]));
    let start = CharacterState::at(Vec3::new(8.0, 10.0, 0.0));

    let mut stats = StepStats::default();
    let s = run(&gentle, start, walk(127, 0, 0), 60, &mut stats);
    assert!(s.on_ground, "{s:?}");
    assert!(s.position_m.x > 14.5, "crossed the ramp: {s:?}");
    assert!(
        (s.position_m.z - (1.456 + SKIN_M)).abs() < 2e-3,
        "on the top: {s:?}"
    );

    let mut stats = StepStats::default();
    let s = run(&steep, start, walk(127, 0, 0), 60, &mut stats);
    assert!(s.position_m.z < 0.5, "did not climb: {s:?}");
    assert!(s.position_m.x < 10.5, "{s:?}");
    assert!(stats.slides > 0, "{stats:?}");
}

#[test]
fn walking_diagonally_into_a_wall_slides_along_it() {
    // A wall along X at y = 10, turned 0 degrees; the character walks at 45 degrees into it.
    let cfg = cfg_in(world(
        vec![boxed(
            1,
            Vec3::new(0.0, 10.0, 0.0),
            Vec3::new(60.0, 10.5, 3.0),
        )],
        vec![],
        vec![],
    ));
    let mut stats = StepStats::default();
    let start = CharacterState::at(Vec3::new(5.0, 8.0, 0.0));
    // Yaw 45 degrees: a quarter of the way to 90 (16384 per quarter turn in yaw_q units).
    let s = run(&cfg, start, walk(127, 8192, 0), 90, &mut stats);
    assert!(stats.slides > 0, "{stats:?}");
    assert!(
        s.position_m.y < 10.0 - cfg.radius_m,
        "stayed in front: {s:?}"
    );
    // Along the wall at the wish's X part, 4 m/s · cos 45 degrees.
    assert!(s.position_m.x > 12.0, "kept going along the wall: {s:?}");
    assert!(
        (s.velocity_mps.x - 4.0 * std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-2,
        "{s:?}"
    );
}

#[test]
fn a_rotated_wall_blocks_where_it_stands() {
    // A 5 cm wall, 80 m long, turned 45 degrees about Z, centred at (20, 20).
    let wall = StaticShape {
        id: 1,
        pose: Pose {
            position_m: Vec3::new(20.0, 20.0, 1.5),
            rotation: Quat::from_rotation_z(std::f32::consts::FRAC_PI_4),
        },
        kind: ShapeKind::Box {
            half_extents_m: Vec3::new(0.025, 40.0, 1.5),
        },
    };
    let cfg = cfg_in(world(vec![wall], vec![], vec![]));
    let mut stats = StepStats::default();
    let s = run(
        &cfg,
        CharacterState::at(Vec3::new(16.0, 20.0, 0.0)),
        walk(127, 0, Buttons::SPRINT),
        90,
        &mut stats,
    );
    // The wall's plane is x - 20 = -(y - 20): the character stays on the x + y < 40 side.
    assert!(s.position_m.x + s.position_m.y < 40.0, "{s:?}");
}

/// A heightfield over x, y in 0..64, 1 m spacing, shaped by `height(c, r)` (metres).
fn hills(height: impl Fn(usize, usize) -> f32) -> Heightfield {
    let columns = 65u16;
    let rows = 65u16;
    let scale = 0.001;
    let mut heights = Vec::new();
    for r in 0..usize::from(rows) {
        for c in 0..usize::from(columns) {
            // Heights in 0..=65 m at 1 mm steps; rounding is part of the test data.
            heights.push((height(c, r) / scale).round() as u16);
        }
    }
    Heightfield {
        id: 100,
        origin_m: Vec2::ZERO,
        spacing_m: Vec2::ONE,
        columns,
        rows,
        height_scale_m: scale,
        height_offset_m: 0.0,
        heights,
    }
}

#[test]
fn gentle_terrain_is_followed_and_a_steep_hillside_stops_the_walk() {
    // A 15 degree slope rising along +X (0.268 m per metre), and a 60 degree wall of earth
    // rising along +X beyond x = 40.
    let field = hills(|c, _| {
        let x = c as f32;
        if x <= 40.0 {
            0.268 * x
        } else {
            0.268 * 40.0 + 1.732 * (x - 40.0)
        }
    });
    let cfg = cfg_in(world(vec![], vec![], vec![field]));
    let mut s = CharacterState::at(Vec3::new(20.0, 30.0, 5.36));
    let mut stats = StepStats::default();
    for _ in 0..240 {
        s = step_counted(&cfg, &s, &walk(127, 0, 0), DT, &mut stats);
        let ground = cfg
            .geometry
            .terrain(s.position_m.truncate())
            .expect("over it");
        if s.position_m.x < 39.0 {
            assert!(s.on_ground, "{s:?}");
            assert_eq!(s.position_m.z, ground.height_m, "follows the surface");
        }
    }
    assert!(stats.terrain_blocks > 0, "{stats:?}");
    assert!(s.position_m.x < 40.5, "stopped at the steep part: {s:?}");
    assert!(s.position_m.x > 39.0, "{s:?}");
    // Walking back down is free, and stays on the ground (snapping down the slope).
    let back = run(&cfg, s, walk(127, 32768, 0), 60, &mut stats);
    assert!(back.on_ground && back.position_m.x < 35.0, "{back:?}");
}

#[test]
fn a_character_falls_onto_terrain_and_lands() {
    let cfg = cfg_in(world(vec![], vec![], vec![hills(|_, _| 5.0)]));
    let mut s = CharacterState {
        on_ground: false,
        ..CharacterState::at(Vec3::new(10.0, 10.0, 20.0))
    };
    let mut stats = StepStats::default();
    s = run(&cfg, s, walk(0, 0, 0), 90, &mut stats);
    assert!(
        s.on_ground && s.position_m.z == 5.0 && s.velocity_mps.z == 0.0,
        "{s:?}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// A 5 cm wall is never crossed: sprinting at it from any point in front, at any angle
    /// that reaches it, with any extra speed up to 60 m/s (far above sprint) and with
    /// jumps, the character stays on its side.
    #[test]
    fn a_thin_wall_is_never_tunnelled(
        y in 60.0_f32..140.0,
        x in 5.0_f32..19.0,
        yaw_q in 0u16..16384,
        flip in proptest::bool::ANY,
        extra_mps in 0.0_f32..60.0,
        jump in proptest::bool::ANY,
    ) {
        let wall = boxed(1, Vec3::new(19.975, 0.0, 0.0), Vec3::new(20.025, 200.0, 3.0));
        let cfg = cfg_in(world(vec![wall], vec![], vec![]));
        // Heading +X, between -45 and +45 degrees.
        let yaw_q = if flip { 0u16.wrapping_sub(yaw_q / 2) } else { yaw_q / 2 };
        let mut s = CharacterState::at(Vec3::new(x.min(19.0 - cfg.radius_m), y, 0.0));
        s.velocity_mps = Vec3::new(extra_mps, 0.0, 0.0);
        let buttons = Buttons::SPRINT | if jump { Buttons::JUMP } else { 0 };
        for _ in 0..90 {
            s = step(&cfg, &s, &walk(127, yaw_q, buttons), DT);
            // Never through, and never into it beyond parry's tolerance.
            proptest::prop_assert!(
                s.position_m.x + cfg.radius_m < 19.975 + 1e-3,
                "crossed into the wall: {:?}", s
            );
        }
    }
}
