//! A server-side change to a character (a knockback) reaches the predicting client through
//! the whole loop, is converged on exactly, and is hidden without a visual snap.

use std::cell::RefCell;

use glam::Vec3;
use mmo_core::input::MoveInput;
use mmo_core::session::client::{ClientConfig, ClientEvent};
use mmo_core::zone::ZoneConfig;
use mmo_testkit::harness::Harness;
use mmo_testkit::link::LinkConfig;

#[test]
fn knockback_is_converged_on_without_a_snap() {
    let mut harness = Harness::new(ZoneConfig::default(), 3).unwrap();
    let link = LinkConfig {
        latency_us: 75_000,
        jitter_us: 15_000,
        loss_probability: 0.05,
        ..LinkConfig::perfect()
    };
    harness
        .add_client(ClientConfig::default(), link, "player")
        .unwrap();
    let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Default::default());
    // Render positions seen by the player, one per client tick.
    let rendered: RefCell<Vec<Vec3>> = RefCell::new(Vec::new());
    let mut source = |_: usize, s: &mmo_core::session::client::ClientSession| {
        if let Some(p) = s.predictor() {
            rendered.borrow_mut().push(p.render_position_m());
        }
        Some(walk)
    };
    harness.run_until(3_000_000, &mut source);
    let connection = harness.clients[0].connection;
    let frames_before = rendered.borrow().len();

    // Knock the character 1.5 m sideways and give it a sideways velocity.
    let mut knocked = *harness.zone.character(connection).unwrap();
    knocked.position_m.y += 1.5;
    knocked.velocity_mps.y += 6.0;
    knocked.on_ground = false;
    assert!(harness.zone.set_character(connection, knocked));
    harness.run_until(6_000_000, &mut source);
    harness.run_until(7_000_000, &mut |_, _: &_| None);

    let client = &harness.clients[0];
    let predictor = client.session.predictor().unwrap();
    let corrections: Vec<_> = client
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Corrected { .. }))
        .collect();
    assert_eq!(
        corrections.len(),
        1,
        "exactly one correction, for the knockback: {corrections:?}"
    );
    assert_eq!(predictor.corrections(), 1);
    // Converged exactly on the server's state.
    let server = harness.zone.character(connection).unwrap();
    assert!(
        predictor.predicted().bits_eq(server),
        "{:?} vs {server:?}",
        predictor.predicted()
    );
    assert!(
        predictor.visual_offset_m().length() < 0.001,
        "offset decayed: {:?}",
        predictor.visual_offset_m()
    );

    // No snap: the largest per-frame step of the rendered position after the knockback stays
    // well under the 1.5 m jump (walking moves ~0.13 m per tick; the knockback adds speed).
    let rendered = rendered.borrow();
    let normal_step = rendered[..frames_before]
        .windows(2)
        .map(|w| (w[1] - w[0]).length())
        .fold(0.0, f32::max);
    let max_step = rendered[frames_before..]
        .windows(2)
        .map(|w| (w[1] - w[0]).length())
        .fold(0.0, f32::max);
    assert!(
        normal_step > 0.05,
        "walking moved the character: {normal_step}"
    );
    assert!(
        max_step < 0.75,
        "render step after the knockback {max_step} m: a snap would be >= 1.5 m"
    );
}
