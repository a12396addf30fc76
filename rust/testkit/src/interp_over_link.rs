//! End-to-end check of the kit with a core consumer: a remote entity's snapshots cross a
//! seeded bad mobile link into an interpolation buffer rendered at 60 fps.

use glam::Vec3;
use mmo_core::interpolation::{InterpSample, InterpolationBuffer, InterpolationConfig};

use crate::clock::VirtualClock;
use crate::link::{LinkConditioner, LinkConfig};

const SNAPSHOT_US: u64 = 33_333;
const FRAME_US: u64 = 16_667;

fn encode(server_time_us: u64, position_m: Vec3) -> Vec<u8> {
    let mut bytes = server_time_us.to_le_bytes().to_vec();
    for v in position_m.to_array() {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

fn decode(bytes: &[u8]) -> Option<(u64, Vec3)> {
    let time = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let mut xyz = [0f32; 3];
    for (i, v) in xyz.iter_mut().enumerate() {
        let at = 8 + 4 * i;
        *v = f32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
    }
    Some((time, Vec3::from_array(xyz)))
}

/// The entity's true path: 4 m/s along X, weaving 1 m/s on Y every other second.
fn truth(server_time_us: f64) -> Vec3 {
    let t_s = (server_time_us * 1e-6) as f32;
    let whole = t_s.floor();
    let weave = if whole as i64 % 2 == 0 {
        t_s - whole
    } else {
        1.0 - (t_s - whole)
    };
    Vec3::new(4.0 * t_s, weave, 0.0)
}

#[test]
fn remote_entity_over_bad_mobile_link_renders_smoothly() {
    let mut link = LinkConditioner::new(LinkConfig::bad_mobile(), 2024).expect("valid preset");
    let mut buffer = InterpolationBuffer::new(InterpolationConfig::default()).expect("valid");
    let mut clock = VirtualClock::new(0);
    let end_us = 30_000_000;
    let mut next_snapshot_us = 0;
    let mut next_frame_us = 0;
    let mut last_render = f64::MIN;
    let (mut frames, mut starved, mut worst_interp_error_m) = (0u32, 0u32, 0f32);
    while clock.now_us() < end_us {
        let now_us = clock.now_us();
        if now_us == next_snapshot_us {
            // Server and client clocks share an epoch here; the buffer must not assume so.
            link.send(now_us, encode(now_us, truth(now_us as f64)));
            next_snapshot_us += SNAPSHOT_US;
        }
        while let Some(bytes) = link.poll_deliver(now_us) {
            let (server_time_us, position_m) = decode(&bytes).expect("well-formed");
            let sample = InterpSample {
                position_m,
                yaw_rad: 0.0,
            };
            buffer.push(server_time_us, now_us, sample);
        }
        if now_us == next_frame_us {
            next_frame_us += FRAME_US;
            if let (Some(out), Some(render)) = (buffer.sample(now_us), buffer.render_time_us()) {
                assert!(render >= last_render, "render time went back at {now_us}");
                last_render = render;
                if now_us > 3_000_000 {
                    frames += 1;
                    if out.extrapolating {
                        starved += 1;
                    } else {
                        // Between two samples of a path whose corners are at whole seconds.
                        worst_interp_error_m =
                            worst_interp_error_m.max(out.position_m.distance(truth(render)));
                    }
                }
            }
        }
        let wake_us = [
            next_snapshot_us,
            next_frame_us,
            link.next_delivery_us().unwrap_or(u64::MAX),
        ]
        .into_iter()
        .min()
        .unwrap_or(u64::MAX);
        clock.advance_to(wake_us);
    }
    let stats = link.stats();
    assert!(
        stats.lost > 0 && stats.reordered > 0,
        "the link misbehaved: {stats:?}"
    );
    assert!(
        starved * 50 < frames,
        "{starved} of {frames} frames extrapolated"
    );
    assert!(
        worst_interp_error_m < 0.1,
        "worst interpolation error {worst_interp_error_m} m"
    );
}
