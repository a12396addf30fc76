//! World file round trips, the golden file, every refusal naming its field, and the
//! collision queries against hand-computed answers.

use glam::{Quat, Vec2, Vec3};

use super::*;

/// The world pinned by `tests/data/world/golden.mmoworld` (described in
/// `tests/data/README.md`): two tiles of 64 m, one of every element kind.
pub(crate) fn golden_world() -> WorldFile {
    let hill = Heightfield {
        id: 1,
        origin_m: Vec2::new(0.0, 0.0),
        spacing_m: Vec2::new(2.0, 2.0),
        columns: 3,
        rows: 3,
        height_scale_m: 0.01,
        height_offset_m: -1.0,
        // Row-major: the middle sample is the top (height -1 + 300 · 0.01 = 2 m).
        heights: vec![100, 100, 100, 100, 300, 100, 100, 100, 100],
    };
    let wall = StaticShape {
        id: 2,
        pose: Pose::at(Vec3::new(10.0, 5.0, 1.5)),
        kind: ShapeKind::Box {
            half_extents_m: Vec3::new(0.025, 4.0, 1.5),
        },
    };
    let ball = StaticShape {
        id: 3,
        pose: Pose::at(Vec3::new(20.0, 20.0, 0.5)),
        kind: ShapeKind::Sphere { radius_m: 0.5 },
    };
    let pillar = StaticShape {
        id: 4,
        pose: Pose {
            position_m: Vec3::new(30.0, 10.0, 1.0),
            rotation: Quat::from_xyzw(0.0, 0.0, 0.382_683_43, 0.923_879_5),
        },
        kind: ShapeKind::Capsule {
            half_length_m: 1.0,
            radius_m: 0.3,
        },
    };
    let rock = StaticShape {
        id: 5,
        pose: Pose::at(Vec3::new(40.0, 40.0, 0.0)),
        kind: ShapeKind::Convex {
            points_m: vec![
                Vec3::new(-1.0, -1.0, 0.0),
                Vec3::new(1.0, -1.0, 0.0),
                Vec3::new(0.0, 1.0, 0.0),
                Vec3::new(0.0, 0.0, 1.5),
            ],
        },
    };
    let ramp = Mesh {
        id: 6,
        pose: Pose::at(Vec3::new(80.0, 10.0, 0.0)),
        vertices_m: vec![
            Vec3::new(0.0, 0.0, 0.0),
            Vec3::new(4.0, 0.0, 1.0),
            Vec3::new(4.0, 2.0, 1.0),
            Vec3::new(0.0, 2.0, 0.0),
        ],
        triangles: vec![[0, 1, 2], [0, 2, 3]],
    };
    WorldFile {
        tile_size_m: 64.0,
        tiles: vec![
            Tile {
                coord: TileCoord { x: 0, y: 0 },
                heightfields: vec![hill],
                shapes: vec![wall, ball, pillar, rock],
                meshes: vec![],
            },
            Tile {
                coord: TileCoord { x: 1, y: 0 },
                heightfields: vec![],
                shapes: vec![],
                meshes: vec![ramp],
            },
        ],
    }
}

const GOLDEN: &[u8] = include_bytes!("../../../../tests/data/world/golden.mmoworld");

#[test]
fn the_golden_file_decodes_to_the_golden_world_and_back() {
    let world = golden_world();
    assert_eq!(decode(GOLDEN).expect("golden file decodes"), world);
    assert_eq!(encode(&world).expect("golden world encodes"), GOLDEN);
}

/// Rewrites the golden file; run only on a deliberate format change (and bump the version):
/// `cargo test -p mmo-core geometry::tests::regenerate -- --ignored`.
#[test]
#[ignore = "writes tests/data/world/golden.mmoworld"]
fn regenerate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/world");
    std::fs::create_dir_all(&dir).expect("create tests/data/world");
    let bytes = encode(&golden_world()).expect("golden world encodes");
    std::fs::write(dir.join("golden.mmoworld"), bytes).expect("write golden file");
}

#[test]
fn load_names_the_file_and_hashes_its_bytes() {
    let dir = std::env::temp_dir().join(format!("mmo-world-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = dir.join("good.mmoworld");
    std::fs::write(&good, GOLDEN).expect("write");
    let loaded = load(&good).expect("loads");
    assert_eq!(loaded.world, golden_world());
    assert_eq!(loaded.hash, content_hash(GOLDEN));
    assert_ne!(loaded.hash, content_hash(&GOLDEN[..GOLDEN.len() - 1]));

    let bad = dir.join("bad.mmoworld");
    std::fs::write(&bad, &GOLDEN[..GOLDEN.len() - 3]).expect("write");
    let message = load(&bad).expect_err("truncated").to_string();
    assert!(message.starts_with(&bad.display().to_string()), "{message}");
    assert!(message.contains("tile 1 (x 1, y 0)"), "{message}");
    assert!(message.contains("meshes[0].triangles[1]"), "{message}");

    let missing = dir.join("missing.mmoworld");
    let message = load(&missing).expect_err("missing").to_string();
    assert!(
        message.contains("missing.mmoworld: cannot read"),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// Decodes `bytes` and returns the error's text.
fn refusal(bytes: &[u8]) -> String {
    decode(bytes).expect_err("must be refused").to_string()
}

/// The golden world, changed by `edit`, must be refused with a message containing `expect`.
fn refused_after(edit: impl FnOnce(&mut WorldFile), expect: &str) {
    let mut world = golden_world();
    edit(&mut world);
    let message = world.validate().expect_err("must be refused").to_string();
    assert!(
        message.contains(expect),
        "{message:?} should contain {expect:?}"
    );
}

#[test]
fn header_errors_are_named() {
    assert!(refusal(b"MMOWOR").contains("magic: file ends"));
    let mut wrong_magic = GOLDEN.to_vec();
    wrong_magic[0] = b'X';
    assert!(refusal(&wrong_magic).contains("magic: not a world file"));
    let mut version = GOLDEN.to_vec();
    version[8] = 2;
    assert!(refusal(&version).contains("version: is 2; this build reads version 1 only"));
    let mut flags = GOLDEN.to_vec();
    flags[10] = 1;
    assert!(refusal(&flags).contains("flags: must be 0"));
    let mut trailing = GOLDEN.to_vec();
    trailing.push(0);
    assert!(refusal(&trailing).contains("1 trailing bytes"));
    let mut huge_count = GOLDEN.to_vec();
    huge_count[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(refusal(&huge_count).contains("tile_count: must be <= 65536"));
}

#[test]
fn a_bad_shape_tag_names_tile_and_shape() {
    // The first shape of tile 0 follows the header (20 bytes), the tile's head (20 bytes)
    // and the 3x3 heightfield (4 + 8 + 8 + 2 + 2 + 4 + 4 + 18 = 50 bytes), then its id.
    let mut bytes = GOLDEN.to_vec();
    let tag_at = 20 + 20 + 50 + 4;
    assert_eq!(bytes[tag_at], 1, "the wall is a box");
    bytes[tag_at] = 9;
    let message = refusal(&bytes);
    assert!(
        message.contains("tile 0 (x 0, y 0): shapes[0].kind: unknown shape kind 9"),
        "{message}"
    );
}

#[test]
fn field_rules_are_enforced_with_names() {
    refused_after(
        |w| w.tile_size_m = 0.5,
        "tile_size_m: must be within 1..=10000",
    );
    refused_after(|w| w.tiles.swap(0, 1), "tiles must be sorted");
    refused_after(
        |w| w.tiles[1].meshes[0].id = 2,
        "tile 1 (x 1, y 0): meshes[0].id: id 2 is used twice",
    );
    refused_after(
        |w| {
            w.tiles[0].heightfields[0].heights.pop();
        },
        "heightfields[0].heights: holds 8 samples, columns · rows is 9",
    );
    refused_after(
        |w| w.tiles[0].heightfields[0].spacing_m.y = f32::NAN,
        "heightfields[0].spacing_m.y: must be within 0.01..=1000",
    );
    refused_after(
        |w| w.tiles[0].heightfields[0].height_scale_m = 0.0,
        "heightfields[0].height_scale_m: must be > 0 and <= 1",
    );
    refused_after(
        |w| {
            w.tiles[0].shapes[0].kind = ShapeKind::Box {
                half_extents_m: Vec3::new(0.025, -1.0, 1.5),
            }
        },
        "tile 0 (x 0, y 0): shapes[0].half_extents_m.y: must be within 0.001..=5000",
    );
    refused_after(
        |w| w.tiles[0].shapes[1].pose.rotation = Quat::from_xyzw(0.0, 0.0, 0.0, 0.9),
        "shapes[1].pose.rotation: squared length must be within 0.999..=1.001",
    );
    refused_after(
        |w| w.tiles[0].shapes[1].pose.position_m.z = f32::INFINITY,
        "shapes[1].pose.position_m.z: must be finite",
    );
    refused_after(
        |w| {
            w.tiles[0].shapes[3].kind = ShapeKind::Convex {
                points_m: vec![
                    Vec3::ZERO,
                    Vec3::X,
                    Vec3::Y,
                    Vec3::new(1.0, 1.0, 0.0),
                    Vec3::new(0.5, 0.5, 0.0),
                ],
            }
        },
        "shapes[3].points_m: the points have no volume",
    );
    refused_after(
        |w| w.tiles[1].meshes[0].triangles[1] = [0, 2, 4],
        "meshes[0].triangles[1]: index out of range (vertex_count 4)",
    );
    refused_after(
        |w| w.tiles[1].meshes[0].triangles[0] = [0, 1, 1],
        "meshes[0].triangles[0]: the three indices must be distinct",
    );
    // Ownership: the ball moved into the next tile, and a wall longer than a tile.
    refused_after(
        |w| w.tiles[0].shapes[1].pose.position_m.x = 70.0,
        "shapes[1]: XY bounding box centre (70.000, 20.000) is in tile (x 1, y 0), not this one",
    );
    refused_after(
        |w| {
            w.tiles[0].shapes[0].kind = ShapeKind::Box {
                half_extents_m: Vec3::new(0.025, 40.0, 1.5),
            }
        },
        "shapes[0]: XY bounding box 0.050 x 80.000 m is larger than the tile (64 m): split it",
    );
    // A rotation counts: the pillar turned on its side is 2.6 m long in XY, still fine,
    // but a box rotated 45 degrees reaches further than its half extents.
    let mut world = golden_world();
    world.tiles[0].shapes[0].kind = ShapeKind::Box {
        half_extents_m: Vec3::new(23.0, 23.0, 1.0),
    };
    world.tiles[0].shapes[0].pose.position_m = Vec3::new(32.0, 32.0, 1.0);
    world.validate().expect("46 m square fits a 64 m tile");
    world.tiles[0].shapes[0].pose.rotation = Quat::from_rotation_z(std::f32::consts::FRAC_PI_4);
    let message = world
        .validate()
        .expect_err("rotated it spans 65 m")
        .to_string();
    assert!(message.contains("larger than the tile"), "{message}");
}

#[test]
fn every_truncation_is_refused_without_a_panic() {
    for len in 0..GOLDEN.len() {
        let message = refusal(&GOLDEN[..len]);
        assert!(message.contains("file ends at byte"), "{len}: {message}");
    }
}

fn built(world: &WorldFile) -> std::sync::Arc<CollisionWorld> {
    let loaded = LoadedWorld::from_world(world.clone()).expect("valid");
    CollisionWorld::build(&loaded, |_| true).expect("builds")
}

const CHARACTER: CapsuleShape = CapsuleShape {
    half_length_m: 0.55,
    radius_m: 0.35,
};

#[test]
fn a_capsule_sweep_stops_at_the_thin_wall_with_its_normal() {
    let world = built(&golden_world());
    assert_eq!(world.element_count(), 5);
    assert_eq!(world.heightfield_count(), 1);
    // Centre 1 m up, moving +X by 4 m from x = 7 into the wall's face at x = 9.975.
    let hit = world
        .cast_capsule(
            CHARACTER,
            Vec3::new(7.0, 5.0, 1.0),
            Vec3::new(4.0, 0.0, 0.0),
            0.01,
        )
        .expect("the wall is in the way");
    assert_eq!(hit.element_id, 2);
    let stop_x = 7.0 + 4.0 * hit.fraction;
    assert!(
        (stop_x - (9.975 - 0.35 - 0.01)).abs() < 1e-3,
        "stops a skin short of the face: {stop_x}"
    );
    assert!(
        (hit.normal - Vec3::NEG_X).length() < 1e-3,
        "{:?}",
        hit.normal
    );
    // Moving away from the wall while touching it is free.
    let touching = Vec3::new(9.975 - 0.35 - 0.005, 5.0, 1.0);
    assert_eq!(
        world.cast_capsule(CHARACTER, touching, Vec3::new(-1.0, 0.0, 0.0), 0.01),
        None
    );
    // Passing beside it is free too.
    assert_eq!(
        world.cast_capsule(
            CHARACTER,
            Vec3::new(7.0, 10.0, 1.0),
            Vec3::new(4.0, 0.0, 0.0),
            0.01
        ),
        None
    );
}

#[test]
fn equal_times_of_impact_go_to_the_lowest_id() {
    let mut world = golden_world();
    let mut twin = world.tiles[0].shapes[0].clone();
    twin.id = 1000;
    // The twin first in the file: the answer must not depend on the order.
    world.tiles[0].shapes.insert(0, twin);
    let collision = built(&world);
    let hit = collision
        .cast_capsule(
            CHARACTER,
            Vec3::new(7.0, 5.0, 1.0),
            Vec3::new(4.0, 0.0, 0.0),
            0.01,
        )
        .expect("hit");
    assert_eq!(hit.element_id, 2);
}

#[test]
fn terrain_heights_are_looked_up_on_the_formats_triangles() {
    let world = built(&golden_world());
    // Samples: corners 0 m, centre (2, 2) 2 m.
    let at = |x: f32, y: f32| world.terrain(Vec2::new(x, y)).expect("over the hill");
    assert!((at(2.0, 2.0).height_m - 2.0).abs() < 1e-5);
    assert!((at(0.0, 0.0).height_m).abs() < 1e-5);
    // On the diagonal (c, r)-(c+1, r+1) of cell (0, 0): halfway up.
    assert!((at(1.0, 1.0).height_m - 1.0).abs() < 1e-5);
    // Off the diagonal in cell (0, 0), lower triangle (u >= v): (0,0) 0, (2,0) 0, (2,2) 2,
    // so height = v · 2 / 2... at (1.5, 0.5) that is 0.5.
    assert!((at(1.5, 0.5).height_m - 0.5).abs() < 1e-5);
    let n = at(1.5, 0.5).normal;
    assert!(
        (n - Vec3::new(0.0, -1.0, 1.0).normalize()).length() < 1e-5,
        "{n:?}"
    );
    assert_eq!(world.terrain(Vec2::new(-0.1, 1.0)), None);
    assert_eq!(world.terrain(Vec2::new(4.1, 1.0)), None);
    // parry's heightfield shape, used by traces, has the same surface.
    for (x, y) in [(0.3, 1.7), (1.5, 0.5), (3.2, 2.9), (2.0, 2.0), (3.9, 0.1)] {
        let hit = world
            .line_trace(Vec3::new(x, y, 10.0), Vec3::new(x, y, -10.0))
            .expect("the trace meets the hill");
        assert_eq!(hit.element_id, 1);
        let traced_z = 10.0 - 20.0 * hit.fraction;
        let looked_up = at(x, y).height_m;
        assert!(
            (traced_z - looked_up).abs() < 1e-4,
            "({x}, {y}): trace {traced_z} lookup {looked_up}"
        );
    }
}

#[test]
fn traces_see_rotated_shapes_and_meshes() {
    let world = built(&golden_world());
    // The mesh ramp rises 1 m over 4 m from x = 80: at x = 82 it is 0.5 m high.
    let hit = world
        .line_trace(Vec3::new(82.0, 11.0, 5.0), Vec3::new(82.0, 11.0, -5.0))
        .expect("ramp");
    assert_eq!(hit.element_id, 6);
    assert!((5.0 - 10.0 * hit.fraction - 0.5).abs() < 1e-4);
    // The pillar (capsule radius 0.3 around x = 30, y = 10, turned about Z, which leaves a
    // vertical capsule where it was).
    let hit = world
        .line_trace(Vec3::new(25.0, 10.0, 1.0), Vec3::new(35.0, 10.0, 1.0))
        .expect("pillar");
    assert_eq!(hit.element_id, 4);
    assert!((25.0 + 10.0 * hit.fraction - 29.7).abs() < 1e-4);
    assert_eq!(
        world.line_trace(Vec3::new(50.0, 50.0, 5.0), Vec3::new(50.0, 50.0, 4.0)),
        None
    );
}

#[test]
fn building_only_some_tiles_leaves_the_others_out() {
    let loaded = LoadedWorld::from_world(golden_world()).expect("valid");
    let world = CollisionWorld::build(&loaded, |c| c.x == 1).expect("builds");
    assert_eq!(world.element_count(), 1);
    assert_eq!(world.heightfield_count(), 0);
    assert!(CollisionWorld::empty().is_empty());
    // Equal content, equal worlds; other tiles kept, another world.
    assert_eq!(
        *world,
        *CollisionWorld::build(&loaded, |c| c.x == 1).expect("builds")
    );
    assert_ne!(
        *world,
        *CollisionWorld::build(&loaded, |_| true).expect("builds")
    );
    assert_ne!(*world, *CollisionWorld::empty());
}
