//! Client prediction and the server agree exactly over a terrible network.

use mmo_core::session::client::{ClientConfig, ClientEvent};
use mmo_core::zone::ZoneConfig;
use mmo_testkit::harness::Harness;
use mmo_testkit::link::LinkConfig;

use crate::common::Walkers;

fn terrible_link() -> LinkConfig {
    LinkConfig {
        latency_us: 250_000,
        jitter_us: 250_000,
        loss_probability: 0.05,
        duplicate_probability: 0.10,
        ..LinkConfig::perfect()
    }
}

#[test]
fn prediction_and_server_agree_at_250ms_latency_250ms_jitter_5pct_loss_10pct_dup() {
    let mut harness = Harness::new(ZoneConfig::default(), 7).unwrap();
    for i in 0..4 {
        harness
            .add_client(
                ClientConfig::default(),
                terrible_link(),
                &format!("player-{i}"),
            )
            .unwrap();
    }
    let mut walkers = Walkers::new(11, 4);
    let moving_until_us = 20_000_000;
    // Path length of each predicted character, to show the test is not vacuous.
    let mut path_m = [0.0f32; 4];
    let mut last_pos: [Option<glam::Vec3>; 4] = [None; 4];
    harness.run_until(
        moving_until_us,
        &mut |i, s: &mmo_core::session::client::ClientSession| {
            let pos: Option<glam::Vec3> = s.predictor().map(|p| p.predicted().position_m);
            if let (Some(a), Some(b)) = (last_pos[i], pos) {
                let step: glam::Vec3 = b - a;
                path_m[i] += step.length();
            }
            last_pos[i] = pos;
            Some(walkers.next(i))
        },
    );
    // Stand still for 3 s, as a real client does: it keeps sending (idle) inputs every tick,
    // which also carries the redundant copies of the last moving inputs. Once braked, an idle
    // step is a fixed point, so both ends hold the same state however many idle inputs the
    // server has simulated yet.
    let idle = mmo_core::input::MoveInput::default();
    harness.run_until(moving_until_us + 3_000_000, &mut |_, _: &_| Some(idle));

    for (i, client) in harness.clients.iter().enumerate() {
        let predictor = client.session.predictor().expect("logged in");
        assert!(
            client.inputs_sent > 500,
            "client {i} sent only {} inputs",
            client.inputs_sent
        );
        assert_eq!(
            predictor.corrections(),
            0,
            "client {i}: legal inputs must never be corrected"
        );
        assert!(
            !client
                .events
                .iter()
                .any(|e| matches!(e, ClientEvent::Corrected { .. })),
            "client {i} saw a correction event"
        );
        let server = harness
            .zone
            .character(client.connection)
            .expect("server character");
        // Inputs in flight (one-way delay up to 500 ms, 15 ticks) may not be simulated yet.
        let simulated = harness
            .zone
            .connection(client.connection)
            .unwrap()
            .last_input_seq();
        assert!(
            simulated + 16 >= client.inputs_sent,
            "client {i}: the server simulated {simulated} of {} inputs",
            client.inputs_sent
        );
        assert!(
            predictor.predicted().velocity_mps.length() == 0.0,
            "client {i} came to rest"
        );
        assert!(
            predictor.predicted().bits_eq(server),
            "client {i}: predicted {:?} != server {:?}",
            predictor.predicted(),
            server
        );
        // The characters really moved (the test is not vacuous).
        assert!(path_m[i] > 30.0, "client {i} barely moved: {} m", path_m[i]);
        let rejected = harness
            .zone
            .connection(client.connection)
            .unwrap()
            .rejections()
            .total();
        assert_eq!(rejected, 0, "client {i}: honest inputs were rejected");
    }
    let link = harness.clients[0].link.server_to_client.stats();
    assert!(
        link.lost > 0 && link.duplicated > 0 && link.reordered > 0,
        "the link misbehaved: {link:?}"
    );
}
