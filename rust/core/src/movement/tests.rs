//! The movement step: speeds, jumps, bounds, the controller against boxes, slopes, steps
//! and heightfields, determinism, and a property test that no thin wall is tunnelled.

use super::controller::SKIN_M;
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

fn run(cfg: &MovementConfig, start: CharacterState, i: MoveInput, ticks: usize) -> CharacterState {
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
        geometry: blocker_world(&[
            Aabb::new(Vec3::new(3.0, -2.0, 0.0), Vec3::new(5.0, 2.0, 1.0)),
            Aabb::new(Vec3::new(-8.0, -8.0, 0.0), Vec3::new(-6.0, 8.0, 3.0)),
            Aabb::new(Vec3::new(0.0, 6.0, 0.0), Vec3::new(10.0, 7.0, 0.5)),
        ])
        .expect("valid boxes"),
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
                half_height_m: 0.3,
                ..Default::default()
            },
            "half_height_m",
        ),
        (
            MovementConfig {
                max_step_height_m: 1.8,
                ..Default::default()
            },
            "max_step_height_m",
        ),
        (
            MovementConfig {
                walkable_floor_z: 0.0,
                ..Default::default()
            },
            "walkable_floor_z",
        ),
    ];
    for (cfg, field) in cases {
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.field, field, "{err}");
        assert!(err.to_string().contains(field));
    }
    let err = blocker_world(&[
        Aabb::new(Vec3::ZERO, Vec3::ONE),
        Aabb::new(Vec3::ONE, Vec3::ZERO),
    ])
    .unwrap_err();
    assert_eq!(err.field, "blockers[1]", "{err}");
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
    // Stopped a skin short of the face (the sweep's time of impact is exact to parry's
    // tolerance, about a millimetre).
    assert!(near(s.position_m.x, 3.0 - cfg.radius_m - SKIN_M), "{s:?}");
    assert_eq!(s.velocity_mps.x, 0.0);
    assert!(s.on_ground);
    assert_eq!(s.position_m.z, 0.0);
}

/// Within parry's time-of-impact tolerance of `want`.
fn near(got: f32, want: f32) -> bool {
    (got - want).abs() < 2e-3
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
    // Shapes are stood on a skin above their top.
    assert!(near(s.position_m.z, 1.0 + SKIN_M), "{s:?}");
    assert_eq!(s.velocity_mps.z, 0.0);
    // Standing still stays exactly on top.
    let still = run(&cfg, s, input(0, 0, 0, 0), 90);
    assert!(still.bits_eq(&s), "{still:?} vs {s:?}");
    // Walking -Y stays on the 4 m deep top for a while, then falls off to the ground.
    s = run(&cfg, s, input(0, -127, 0, 0), 5);
    assert!(near(s.position_m.z, 1.0 + SKIN_M), "{s:?}");
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
        landed_on_top |= s.on_ground && near(s.position_m.z, 1.0 + SKIN_M);
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

const GOLDEN_TRACE_DIGEST: u64 = 0x5682_12bd_9739_792a;

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
