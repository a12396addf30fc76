//! Tests of the session state machines against hostile or broken peers: every bad input
//! gets a reason, and nothing panics.

use crate::control::{
    self, ClientControl, DisconnectReason, FrameDecoder, ServerControl, WelcomeTerms,
};
use crate::entity::{CharacterState, EntityId};
use crate::input::MoveInput;
use crate::movement::MovementConfig;
use crate::time::{Tick, TickRate};
use crate::validation::RejectionKind;

use super::Transmit;
use super::client::{ClientConfig, ClientEvent, ClientSession, ClientState};
use super::server::{ConnectionState, ServerConnection, ServerConnectionConfig, ServerEvent};

fn frame(message: &ClientControl) -> Vec<u8> {
    let mut out = Vec::new();
    control::encode_frame(message, &mut out).unwrap();
    out
}

fn login(version: u16) -> Vec<u8> {
    frame(&ClientControl::Login {
        protocol_version: version,
        token: "t".into(),
    })
}

fn closed_reason(c: &mut ServerConnection) -> Option<DisconnectReason> {
    let mut reason = None;
    while let Some(e) = c.poll_event() {
        if let ServerEvent::Closed { reason: r } = e {
            reason = Some(r);
        }
    }
    reason
}

/// The disconnect frame the server queued, decoded.
fn sent_disconnect(c: &mut ServerConnection) -> Option<(DisconnectReason, String)> {
    let mut decoder = FrameDecoder::new();
    while let Some(t) = c.poll_transmit() {
        if let Transmit::Stream(bytes) = t {
            decoder.push(&bytes);
        }
    }
    while let Ok(Some(m)) = decoder.next_message::<ServerControl>() {
        if let ServerControl::Disconnect { reason, message } = m {
            return Some((reason, message));
        }
    }
    None
}

fn active_connection() -> ServerConnection {
    let mut c = ServerConnection::new(0, ServerConnectionConfig::default()).unwrap();
    c.handle_stream(0, &login(crate::PROTOCOL_VERSION));
    assert!(matches!(
        c.poll_event(),
        Some(ServerEvent::LoginRequested { .. })
    ));
    c.accept_login(
        EntityId(1),
        Tick(0),
        TickRate::DEFAULT,
        CharacterState::default(),
        &WelcomeTerms::default(),
    );
    assert_eq!(
        c.state(),
        ConnectionState::Active {
            entity: EntityId(1)
        }
    );
    c
}

#[test]
fn protocol_mismatch_is_refused_with_its_reason() {
    let mut c = ServerConnection::new(0, ServerConnectionConfig::default()).unwrap();
    c.handle_stream(0, &login(crate::PROTOCOL_VERSION + 1));
    assert_eq!(
        closed_reason(&mut c),
        Some(DisconnectReason::ProtocolMismatch)
    );
    let (reason, message) = sent_disconnect(&mut c).expect("the client is told why");
    assert_eq!(reason, DisconnectReason::ProtocolMismatch);
    assert!(message.contains("protocol version"), "{message}");
}

#[test]
fn messages_out_of_order_are_protocol_violations() {
    let mut c = ServerConnection::new(0, ServerConnectionConfig::default()).unwrap();
    c.handle_stream(
        0,
        &frame(&ClientControl::Chat {
            channel: control::ChatChannel::Zone,
            to: None,
            text: "hi".into(),
        }),
    );
    assert_eq!(
        closed_reason(&mut c),
        Some(DisconnectReason::ProtocolViolation)
    );

    let mut c = active_connection();
    c.handle_stream(1, &login(crate::PROTOCOL_VERSION));
    assert_eq!(
        closed_reason(&mut c),
        Some(DisconnectReason::ProtocolViolation)
    );
    let (_, message) = sent_disconnect(&mut c).unwrap();
    assert!(message.contains("login not allowed"), "{message}");
}

#[test]
fn garbage_on_the_stream_or_in_a_datagram_closes_with_a_reason() {
    let mut c = active_connection();
    c.handle_stream(1, &[3, 0xFF, 0xFF, 0xFF]);
    assert_eq!(
        closed_reason(&mut c),
        Some(DisconnectReason::ProtocolViolation)
    );

    let mut c = active_connection();
    c.handle_datagram(1, &[0xEE; 40]);
    assert_eq!(
        closed_reason(&mut c),
        Some(DisconnectReason::ProtocolViolation)
    );
    let (_, message) = sent_disconnect(&mut c).unwrap();
    assert!(message.starts_with("datagram:"), "{message}");
    // Closed connections ignore everything afterwards.
    c.handle_datagram(2, &[0; 3]);
    assert_eq!(c.poll_event(), None);
}

#[test]
fn oversized_chat_is_refused() {
    let mut c = active_connection();
    let text = "x".repeat(control::MAX_CHAT_LEN_BYTES + 1);
    c.handle_stream(
        1,
        &frame(&ClientControl::Chat {
            channel: control::ChatChannel::Zone,
            to: None,
            text,
        }),
    );
    assert_eq!(
        closed_reason(&mut c),
        Some(DisconnectReason::ProtocolViolation)
    );
}

#[test]
fn a_login_answered_after_the_client_left_is_ignored() {
    let mut c = ServerConnection::new(0, ServerConnectionConfig::default()).unwrap();
    c.handle_stream(0, &login(crate::PROTOCOL_VERSION));
    assert!(matches!(
        c.poll_event(),
        Some(ServerEvent::LoginRequested { .. })
    ));
    // The client quits while its token is being verified.
    c.handle_stream(1, &frame(&ClientControl::Disconnect));
    assert!(!c.accept_login(
        EntityId(1),
        Tick(0),
        TickRate::DEFAULT,
        CharacterState::default(),
        &WelcomeTerms::default()
    ));
    assert_eq!(
        c.state(),
        ConnectionState::Closed {
            reason: DisconnectReason::ClientQuit
        }
    );
}

#[test]
fn silent_clients_time_out() {
    let mut c = ServerConnection::new(0, ServerConnectionConfig::default()).unwrap();
    let deadline = c.poll_timeout().unwrap();
    c.handle_timeout(deadline - 1);
    assert_eq!(c.state(), ConnectionState::AwaitingLogin);
    c.handle_timeout(deadline);
    assert_eq!(closed_reason(&mut c), Some(DisconnectReason::Timeout));
}

#[test]
fn a_login_accepted_late_leaves_the_client_a_whole_idle_timeout() {
    let config = ServerConnectionConfig::default();
    let mut c = ServerConnection::new(0, config).unwrap();
    c.handle_stream(0, &login(crate::PROTOCOL_VERSION));
    let _ = c.poll_event();
    // Accepted at tick 255 (8.5 s at 30 Hz), after a slow character load.
    let rate = TickRate::new(30).unwrap();
    let tick = Tick(255);
    assert!(c.accept_login(
        EntityId(1),
        tick,
        rate,
        CharacterState::default(),
        &WelcomeTerms::default()
    ));
    let welcomed_us = rate.tick_start_us(tick);
    assert_eq!(c.poll_timeout(), Some(welcomed_us + config.idle_timeout_us));
    c.handle_timeout(10_000_000);
    assert!(matches!(c.state(), ConnectionState::Active { .. }));
}

#[test]
fn a_login_waiting_for_the_server_has_the_servers_deadline_not_the_clients() {
    let config = ServerConnectionConfig::default();
    let mut c = ServerConnection::new(0, config).unwrap();
    // The login arrives after 1 s; the server's work (a slow character load) then takes
    // longer than the client's 5 s login deadline.
    c.handle_stream(1_000_000, &login(crate::PROTOCOL_VERSION));
    assert!(matches!(
        c.poll_event(),
        Some(ServerEvent::LoginRequested { .. })
    ));
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, 1_000_000 + config.login_pending_timeout_us);
    c.handle_timeout(8_000_000);
    assert_eq!(
        c.state(),
        ConnectionState::LoginPending,
        "still waiting at 8 s"
    );
    c.handle_timeout(deadline);
    assert_eq!(
        sent_disconnect(&mut c).map(|(r, _)| r),
        Some(DisconnectReason::ServiceUnavailable)
    );
    assert_eq!(
        closed_reason(&mut c),
        Some(DisconnectReason::ServiceUnavailable)
    );
}

/// A client session logged in against `server`, with every transmit carried across.
fn pair() -> (ClientSession, ServerConnection) {
    pair_with(ClientConfig::default())
}

fn pair_with(config: ClientConfig) -> (ClientSession, ServerConnection) {
    pair_with_terms(config, &WelcomeTerms::default())
}

fn pair_with_terms(
    config: ClientConfig,
    terms: &WelcomeTerms,
) -> (ClientSession, ServerConnection) {
    let mut client = ClientSession::new(0, config, "token").unwrap();
    let mut server = ServerConnection::new(0, ServerConnectionConfig::default()).unwrap();
    while let Some(Transmit::Stream(b)) = client.poll_transmit() {
        server.handle_stream(0, &b);
    }
    assert!(
        matches!(server.poll_event(), Some(ServerEvent::LoginRequested { token }) if token == "token")
    );
    server.accept_login(
        EntityId(9),
        Tick(0),
        TickRate::DEFAULT,
        CharacterState::default(),
        terms,
    );
    while let Some(Transmit::Stream(b)) = server.poll_transmit() {
        client.handle_stream(0, &b);
    }
    assert_eq!(client.state(), ClientState::Active);
    assert!(matches!(
        client.poll_event(),
        Some(ClientEvent::Welcome {
            entity_id: EntityId(9),
            ..
        })
    ));
    (client, server)
}

#[test]
fn the_client_predicts_with_the_settings_of_the_welcome_and_compares_worlds() {
    use crate::geometry::{LoadedWorld, Tile, TileCoord, WorldFile};
    let world = LoadedWorld::from_world(WorldFile {
        tile_size_m: 64.0,
        tiles: vec![Tile {
            coord: TileCoord { x: 0, y: 0 },
            heightfields: vec![],
            shapes: vec![],
            meshes: vec![],
        }],
    })
    .expect("valid");
    let server_movement = MovementConfig {
        walk_speed_mps: 5.5,
        walkable_floor_z: 0.8,
        max_step_height_m: 0.3,
        ..MovementConfig::default()
    };
    let terms = WelcomeTerms {
        content_hash: [1; 32],
        movement: server_movement.clone(),
        world_hash: world.hash,
    };
    // A client with the default settings and no world: it takes the server's settings,
    // and is told its world differs.
    let (client, _server) = pair_with_terms(ClientConfig::default(), &terms);
    let used = client.predictor().expect("welcomed").movement_config();
    assert_eq!(used.walk_speed_mps, 5.5);
    assert_eq!(used.walkable_floor_z.to_bits(), 0.8f32.to_bits());
    assert_eq!(used.max_step_height_m, 0.3);
    assert_eq!(client.world_hash(), Some(world.hash));
    assert_eq!(client.world_matches(), Some(false));
    // A client that loaded the same file matches, and keeps its own copy of the world.
    let geometry = crate::geometry::CollisionWorld::build(&world, |_| true).expect("builds");
    let config = ClientConfig {
        movement: MovementConfig {
            geometry: geometry.clone(),
            ..MovementConfig::default()
        },
        ..ClientConfig::default()
    };
    let (client, _server) = pair_with_terms(config, &terms);
    assert_eq!(client.world_matches(), Some(true));
    let used = client.predictor().expect("welcomed").movement_config();
    assert!(std::sync::Arc::ptr_eq(&used.geometry, &geometry));
    assert_eq!(used.walk_speed_mps, 5.5);
}

#[test]
fn inputs_sent_faster_than_real_time_are_rejected_as_input_rate() {
    let (mut client, mut server) = pair();
    // 3x real time: 90 inputs per second for 4 s.
    let mut now_us = 0;
    for _ in 0..360 {
        now_us += 11_111;
        client.send_input(
            now_us,
            MoveInput::from_controls(1.0, 0.0, 0.0, Default::default()),
        );
        while let Some(t) = client.poll_transmit() {
            if let Transmit::Datagram(d) = t {
                server.handle_datagram(now_us, &d);
            }
        }
    }
    let rejected = server.rejections().get(RejectionKind::InputRate);
    assert!(rejected > 100, "time dilation rejected: {rejected}");
    assert!(server.poll_event().is_some());
    assert!(
        !server.is_closed(),
        "rejection drops inputs; kicking is the strike counter's job"
    );
}

#[test]
fn honest_inputs_flow_into_the_queue_in_order() {
    let (mut client, mut server) = pair();
    for tick in 1..=60u64 {
        let now_us = tick * 33_333;
        client.send_input(
            now_us,
            MoveInput::from_controls(0.5, 0.5, 1.0, Default::default()),
        );
        while let Some(Transmit::Datagram(d)) = client.poll_transmit() {
            server.handle_datagram(now_us, &d);
        }
    }
    assert_eq!(server.rejections().total(), 0);
    let mut taken = Vec::new();
    let mut all = Vec::new();
    let (mut empty_ticks, mut two_input_ticks) = (0u64, 0u64);
    for _ in 0..100 {
        server.take_inputs_for_tick(&mut taken);
        all.extend(taken.iter().map(|(s, _)| *s));
        empty_ticks += u64::from(taken.is_empty());
        two_input_ticks += u64::from(taken.len() == 2);
    }
    assert_eq!(all, (1..=60).collect::<Vec<u32>>());
    // The session's counters follow its queue: every tick that took nothing is starved;
    // 60 queued at once are taken 3 a tick (catch-up) until none is left, so no tick took
    // 2 and nothing was drained.
    let stats = server.stats();
    assert_eq!(stats.input_starved_ticks, empty_ticks);
    assert!(empty_ticks > 0);
    assert_eq!(stats.inputs_drained, two_input_ticks);
    assert_eq!(stats.inputs_skipped, 0);
}

#[test]
fn client_reports_the_servers_disconnect_reason() {
    let (mut client, mut server) = pair();
    server.close(DisconnectReason::ServerShutdown, "maintenance");
    while let Some(t) = server.poll_transmit() {
        if let Transmit::Stream(b) = t {
            client.handle_stream(1, &b);
        }
    }
    assert_eq!(client.state(), ClientState::Closed);
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::Disconnected {
            reason: DisconnectReason::ServerShutdown,
            message: "maintenance".into()
        })
    );
}

#[test]
fn no_input_is_sent_before_the_welcome_or_after_close() {
    let mut client = ClientSession::new(0, ClientConfig::default(), "token").unwrap();
    assert_eq!(client.send_input(1, MoveInput::default()), None);
    let (mut client, _server) = pair();
    assert_eq!(client.send_input(1, MoveInput::default()), Some(1));
    client.disconnect();
    assert_eq!(client.send_input(2, MoveInput::default()), None);
    let datagrams = std::iter::from_fn(|| client.poll_transmit())
        .filter(|t| matches!(t, Transmit::Datagram(_)))
        .count();
    assert_eq!(datagrams, 1, "only the input sent while active");
}

#[test]
fn client_survives_garbage_datagrams() {
    let (mut client, _server) = pair();
    for len in [0, 1, 8, 9, 40, 1200] {
        client.handle_datagram(1, &vec![0xA5; len]);
    }
    assert_eq!(client.state(), ClientState::Active);
    assert_eq!(client.stats().snapshots_undecodable, 6);
}

/// Encodes and queues the snapshot of `tick` on `server` and returns its datagram.
fn send_snapshot_datagram(
    server: &mut ServerConnection,
    codec: &crate::codec::snapshot::SnapshotCodec,
    tick: Tick,
    owner: Option<&CharacterState>,
    records: &[crate::codec::snapshot::EntityRecordIn],
    out: crate::session::snapshot_stream::EncodeBuffers<'_>,
) -> Vec<u8> {
    server
        .send_snapshot(codec, tick, owner, records, None, out)
        .unwrap();
    let Some(Transmit::Datagram(d)) = server.poll_transmit() else {
        panic!("a snapshot datagram");
    };
    d
}

#[test]
fn snapshot_delivery_is_counted_from_sequence_numbers() {
    use crate::codec::entity_state::{Quantization, SnapshotConfig};
    use crate::codec::snapshot::SnapshotCodec;
    use crate::session::snapshot_stream::EncodeBuffers;
    let (mut client, mut server) = pair();
    let codec = SnapshotCodec::new(Quantization::new(SnapshotConfig::default()).unwrap());
    let (mut datagram, mut written) = (Vec::new(), Vec::new());
    let owner = CharacterState::default();
    for tick in 1..=10u32 {
        let d = send_snapshot_datagram(
            &mut server,
            &codec,
            Tick(tick),
            Some(&owner),
            &[],
            EncodeBuffers {
                datagram: &mut datagram,
                written: &mut written,
                cache: None,
            },
        );
        // Snapshots 4 and 7 are lost; 9 arrives twice.
        if tick != 4 && tick != 7 {
            client.handle_datagram(u64::from(tick) * 33_333, &d);
        }
        if tick == 9 {
            client.handle_datagram(u64::from(tick) * 33_333, &d);
        }
    }
    let stats = client.stats();
    assert_eq!(stats.snapshots_expected, 10);
    assert_eq!(stats.snapshots_received, 9);
    client.transport_closed(DisconnectReason::Timeout, "connection lost".into());
    assert_eq!(client.state(), ClientState::Closed);
    let last = std::iter::from_fn(|| client.poll_event()).last();
    assert_eq!(
        last,
        Some(ClientEvent::Disconnected {
            reason: DisconnectReason::Timeout,
            message: "connection lost".into()
        })
    );
    // A second close keeps the first reason and emits nothing.
    client.transport_closed(DisconnectReason::Kicked, "again".into());
    assert_eq!(client.poll_event(), None);
}

#[test]
fn chat_join_and_leave_reach_the_zone_and_refusals_reach_the_client() {
    let mut c = active_connection();
    while c.poll_event().is_some() {}
    c.handle_stream(
        1,
        &frame(&ClientControl::Chat {
            channel: control::ChatChannel::Whisper,
            to: Some("Bob".into()),
            text: "hi".into(),
        }),
    );
    c.handle_stream(
        1,
        &frame(&ClientControl::ChatLeave(control::ChatChannel::Global)),
    );
    c.handle_stream(
        1,
        &frame(&ClientControl::ChatJoin(control::ChatChannel::Global)),
    );
    assert_eq!(
        c.poll_event(),
        Some(ServerEvent::Chat {
            channel: control::ChatChannel::Whisper,
            to: Some("Bob".into()),
            text: "hi".into()
        })
    );
    assert_eq!(
        c.poll_event(),
        Some(ServerEvent::ChatLeave(control::ChatChannel::Global))
    );
    assert_eq!(
        c.poll_event(),
        Some(ServerEvent::ChatJoin(control::ChatChannel::Global))
    );
    while c.poll_transmit().is_some() {}
    c.send_chat_refused(control::ChatRefusalKind::Muted, "muted until 5");
    let Some(super::Transmit::Stream(bytes)) = c.poll_transmit() else {
        panic!("a refusal frame is sent");
    };
    let mut decoder = control::FrameDecoder::new();
    decoder.push(&bytes);
    assert_eq!(
        decoder.next_message::<control::ServerControl>().unwrap(),
        Some(control::ServerControl::ChatRefused {
            kind: control::ChatRefusalKind::Muted,
            message: "muted until 5".into()
        })
    );
}

/// Protocol 6 does not name a delta's baseline on the wire, so a disagreement between the
/// server's history and the client's would decode to wrong states silently. Through the
/// session layer (`ServerConnection` and `ClientSession`, acks riding on input datagrams),
/// with snapshots and input datagrams lost, delayed and reordered, bursts of both, and
/// entities leaving and coming back: every snapshot the client applies holds exactly the
/// states and owner state the server wrote, and none fails to decode. A header-only
/// client (load-test bots) decodes every owner state too.
#[test]
fn the_client_decodes_exactly_what_the_server_wrote_over_a_bad_link() {
    use crate::codec::entity_state::{NetEntityState, Quantization, SnapshotConfig};
    use crate::codec::snapshot::{EntityRecordIn, SnapshotCodec};
    use crate::session::client::SnapshotHandling;
    use crate::session::snapshot_stream::EncodeBuffers;
    for handling in [SnapshotHandling::Full, SnapshotHandling::HeaderOnly] {
        let (mut client, mut server) = pair_with(ClientConfig {
            snapshots: handling,
            ..ClientConfig::default()
        });
        let codec = SnapshotCodec::new(Quantization::new(SnapshotConfig::default()).unwrap());
        let (mut datagram, mut written) = (Vec::new(), Vec::new());
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut gone = [false; 13];
        let (mut late_snapshots, mut late_inputs) = (Vec::new(), Vec::new());
        let (mut snapshot_burst, mut input_burst) = (0, 0);
        let mut checked = 0;
        for tick in 1..=3000u32 {
            let now_us = u64::from(tick) * 33_333;
            let t = tick as f32 / 30.0;
            // Now and then a snapshot without an owner state (its successors' owner state
            // then has no baseline to be coded against).
            let owner = (tick % 23 != 0).then(|| CharacterState {
                position_m: glam::Vec3::new(t * 1.5, (t * 0.3).sin() * 20.0, 0.0),
                velocity_mps: glam::Vec3::new(1.5, (t * 0.3).cos() * 6.0, 0.0),
                yaw_rad: (t * 0.2) % 6.0,
                on_ground: tick % 50 != 0,
            });
            server.process_acks();
            for id in 1..=12u32 {
                if next(100) == 0 {
                    gone[id as usize] = !gone[id as usize];
                    if gone[id as usize] {
                        server.forget_entity(EntityId(id));
                    }
                }
            }
            // Entities sent at different rates (every 4th tick up to every 57th).
            let records: Vec<EntityRecordIn> = (1..=12u32)
                .filter(|&id| !gone[id as usize] && tick % (1 + (id * 7) % 60) == 0)
                .map(|id| EntityRecordIn {
                    id: EntityId(id),
                    state: NetEntityState {
                        position_m: glam::Vec3::new(
                            id as f32 * 10.0 + (t * 0.7 + id as f32).sin() * 30.0,
                            t * id as f32 * 0.2,
                            0.0,
                        ),
                        yaw_rad: t * 0.1 * id as f32,
                        flags: (tick / 90) as u8,
                    },
                    base: server.record_base(EntityId(id), None, 1),
                })
                .collect();
            let d = send_snapshot_datagram(
                &mut server,
                &codec,
                Tick(tick),
                owner.as_ref(),
                &records,
                EncodeBuffers {
                    datagram: &mut datagram,
                    written: &mut written,
                    cache: None,
                },
            );
            let sent_states: Vec<_> = written.iter().map(|w| (w.id, w.state)).collect();
            if snapshot_burst == 0 && next(200) == 0 {
                snapshot_burst = 1 + next(50);
            }
            if snapshot_burst > 0 {
                snapshot_burst -= 1;
            } else if next(10) == 0 {
                // lost
            } else if next(10) == 0 {
                late_snapshots.push(d);
            } else {
                let applied = client.stats().snapshots_applied;
                client.handle_datagram(now_us, &d);
                if client.stats().snapshots_applied > applied {
                    if handling == SnapshotHandling::Full {
                        let got = client.last_snapshot();
                        let got_states: Vec<_> =
                            got.entities.iter().map(|e| (e.id, e.state)).collect();
                        assert_eq!(got_states, sent_states, "tick {tick}");
                        assert_eq!(got.owner.is_some(), owner.is_some(), "tick {tick}");
                    }
                    if let Some(owner) = &owner {
                        let got = client.last_owner_state();
                        assert!(got.is_some_and(|o| o.bits_eq(owner)), "tick {tick}");
                    }
                    checked += 1;
                }
                if next(4) == 0 {
                    for late in late_snapshots.drain(..) {
                        client.handle_datagram(now_us, &late);
                    }
                }
            }
            // The client's input datagram carries its ack of the snapshots.
            client.send_input(now_us, MoveInput::default());
            while let Some(transmit) = client.poll_transmit() {
                let Transmit::Datagram(input) = transmit else {
                    continue;
                };
                if input_burst == 0 && next(150) == 0 {
                    input_burst = 1 + next(70);
                }
                if input_burst > 0 {
                    input_burst -= 1;
                } else if next(10) == 0 {
                    late_inputs.push(input);
                } else if next(12) != 0 {
                    server.handle_datagram(now_us, &input);
                }
                if next(6) == 0 {
                    for late in late_inputs.drain(..) {
                        server.handle_datagram(now_us, &late);
                    }
                }
            }
            while server.poll_transmit().is_some() {}
            while server.poll_event().is_some() {}
            while client.poll_event().is_some() {}
        }
        let stats = client.stats();
        assert_eq!(stats.snapshots_undecodable, 0, "{handling:?}");
        assert!(stats.snapshots_applied > 1500, "{handling:?}: {stats:?}");
        assert!(checked > 1500, "{handling:?}: {checked}");
    }
}

/// A session restarted by another zone process (`WIRE_FORMAT.md`, 8.9): the client resets
/// at `Rejoined` and answers `RejoinAccepted`; the new session sends no snapshot and takes
/// nothing from the client's datagrams sent before that point.
#[test]
fn a_rejoined_session_resets_the_client_and_ignores_what_it_sent_before() {
    use crate::codec::entity_state::{NetEntityState, Quantization, SnapshotConfig};
    use crate::codec::snapshot::{EntityRecordIn, SnapshotCodec};
    use crate::session::server::RejoinPhase;
    use crate::session::snapshot_stream::EncodeBuffers;
    let (mut client, mut old_server) = pair();
    let codec = SnapshotCodec::new(Quantization::new(SnapshotConfig::default()).unwrap());
    let (mut datagram, mut written) = (Vec::new(), Vec::new());
    let owner = CharacterState::default();
    let mut now_us = 0;
    // The old session: snapshots with a remote entity, inputs both ways.
    for tick in 1..=40u32 {
        now_us += 33_333;
        client.send_input(
            now_us,
            MoveInput::from_controls(1.0, 0.0, 0.0, Default::default()),
        );
        while let Some(Transmit::Datagram(d)) = client.poll_transmit() {
            old_server.handle_datagram(now_us, &d);
        }
        old_server.process_acks();
        let records = [EntityRecordIn {
            id: EntityId(5),
            state: NetEntityState {
                position_m: glam::Vec3::new(3.0, 4.0, 0.0),
                yaw_rad: 0.0,
                flags: 0,
            },
            base: old_server.record_base(EntityId(5), None, 1),
        }];
        let d = send_snapshot_datagram(
            &mut old_server,
            &codec,
            Tick(tick),
            Some(&owner),
            &records,
            EncodeBuffers {
                datagram: &mut datagram,
                written: &mut written,
                cache: None,
            },
        );
        client.handle_datagram(now_us, &d);
    }
    while client.poll_event().is_some() {}
    assert_eq!(client.remote_ids().collect::<Vec<_>>(), vec![EntityId(5)]);
    let seq_before = client.predictor().unwrap().next_seq();

    // The old process stops; another restarts the session from the save.
    let mut server =
        ServerConnection::rejoining(now_us, ServerConnectionConfig::default()).unwrap();
    assert_eq!(server.state(), ConnectionState::LoginPending);
    assert_eq!(server.rejoin_phase(), RejoinPhase::Loading);
    // An input sent before the client hears of the rejoin: it was predicted from the old
    // session's state and acknowledges its snapshots, so the new session ignores it.
    now_us += 33_333;
    client.send_input(
        now_us,
        MoveInput::from_controls(0.0, 1.0, 0.0, Default::default()),
    );
    let Some(Transmit::Datagram(before_reset)) = client.poll_transmit() else {
        panic!("an input datagram");
    };
    let saved = CharacterState::at(glam::Vec3::new(50.0, 60.0, 0.0));
    assert!(server.accept_login(
        EntityId(77),
        Tick(900),
        TickRate::DEFAULT,
        saved,
        &WelcomeTerms::default()
    ));
    assert_eq!(server.rejoin_phase(), RejoinPhase::AwaitingClient);
    server.handle_datagram(now_us, &before_reset);
    assert!(server.holds_snapshots(), "the client has not reset yet");
    let mut inputs = Vec::new();
    for _ in 0..6 {
        server.take_inputs_for_tick(&mut inputs);
        assert!(
            inputs.is_empty(),
            "inputs of the old session are not simulated"
        );
    }

    // `Rejoined` reaches the client, which answers `RejoinAccepted`.
    while let Some(t) = server.poll_transmit() {
        if let Transmit::Stream(b) = t {
            client.handle_stream(now_us, &b);
        }
    }
    let events: Vec<_> = std::iter::from_fn(|| client.poll_event()).collect();
    assert_eq!(
        events,
        vec![
            ClientEvent::EntityLeft { id: EntityId(5) },
            ClientEvent::Rejoined {
                entity_id: EntityId(77),
                spawn: saved,
                content_hash: [0; 32],
            }
        ]
    );
    assert_eq!(client.state(), ClientState::Active);
    assert_eq!(client.entity_id(), Some(EntityId(77)));
    assert_eq!(
        client.predictor().unwrap().predicted().position_m,
        saved.position_m
    );
    assert_eq!(client.remote_ids().count(), 0);
    while let Some(t) = client.poll_transmit() {
        if let Transmit::Stream(b) = t {
            server.handle_stream(now_us, &b);
        }
    }
    assert!(matches!(server.rejoin_phase(), RejoinPhase::Reset { .. }));
    assert!(!server.holds_snapshots());
    // The datagram from before the reset, overtaken on the way, is still ignored.
    server.handle_datagram(now_us, &before_reset);
    server.take_inputs_for_tick(&mut inputs);
    assert!(inputs.is_empty());

    // The client's next input acknowledges nothing and is the first the new session runs.
    now_us += 33_333;
    client.send_input(
        now_us,
        MoveInput::from_controls(0.0, 1.0, 0.0, Default::default()),
    );
    let mut sent_seq = 0;
    while let Some(Transmit::Datagram(d)) = client.poll_transmit() {
        let (header, _) = crate::codec::packet::PacketHeader::decode(&d).unwrap();
        assert!(header.ack.is_none(), "a reset client acknowledges nothing");
        sent_seq = header.seq;
        server.handle_datagram(now_us, &d);
    }
    for _ in 0..6 {
        server.take_inputs_for_tick(&mut inputs);
        if !inputs.is_empty() {
            break;
        }
    }
    assert_eq!(
        inputs.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        vec![seq_before + 1],
        "only the input sent after the reset"
    );
    let applied_before = client.stats().snapshots_applied;
    let d = send_snapshot_datagram(
        &mut server,
        &codec,
        Tick(901),
        Some(&saved),
        &[],
        EncodeBuffers {
            datagram: &mut datagram,
            written: &mut written,
            cache: None,
        },
    );
    let (header, _) = crate::codec::packet::PacketHeader::decode(&d).unwrap();
    assert_eq!(
        header.seq, 0,
        "the new session numbers its snapshots afresh"
    );
    assert_eq!(header.ack.map(|a| a.ack), Some(sent_seq));
    client.handle_datagram(now_us, &d);
    assert_eq!(client.stats().snapshots_applied, applied_before + 1);
    assert_eq!(client.last_server_tick(), Some(Tick(901)));
}

#[test]
fn rejoin_accepted_without_a_rejoin_is_a_protocol_violation() {
    let mut c = active_connection();
    c.handle_stream(
        1,
        &frame(&ClientControl::RejoinAccepted {
            next_datagram_seq: 3,
        }),
    );
    assert_eq!(
        closed_reason(&mut c),
        Some(DisconnectReason::ProtocolViolation)
    );
}

#[test]
fn a_rejoin_before_the_welcome_or_at_another_tick_rate_is_a_protocol_violation() {
    let rejoined = |tick_rate_hz: u32| {
        let mut out = Vec::new();
        control::encode_frame(
            &ServerControl::Rejoined {
                entity_id: EntityId(3),
                tick: Tick(1),
                tick_rate_hz,
                spawn: CharacterState::default(),
                content_hash: [0; 32],
            },
            &mut out,
        )
        .unwrap();
        out
    };
    let mut client = ClientSession::new(0, ClientConfig::default(), "token").unwrap();
    client.handle_stream(0, &rejoined(TickRate::DEFAULT.hz()));
    assert!(matches!(
        client.poll_event(),
        Some(ClientEvent::Disconnected { reason: DisconnectReason::ProtocolViolation, message }) if message.contains("before the welcome")
    ));
    let (mut client, _server) = pair();
    client.handle_stream(0, &rejoined(TickRate::DEFAULT.hz() + 1));
    let last = std::iter::from_fn(|| client.poll_event()).last();
    assert!(matches!(
        last,
        Some(ClientEvent::Disconnected { reason: DisconnectReason::ProtocolViolation, message }) if message.contains("Hz")
    ));
}

fn server_frame(message: &ServerControl) -> Vec<u8> {
    let mut out = Vec::new();
    control::encode_frame(message, &mut out).unwrap();
    out
}

fn say(text: &str) -> ServerControl {
    ServerControl::Chat {
        from_name: "Bo".into(),
        from_entity: EntityId(0),
        channel: control::ChatChannel::Say,
        text: text.into(),
    }
}

/// The control stream across a resumption (`WIRE_FORMAT.md` 8.10), with frames lost and
/// cut in both directions when the old connection died: the client reports what it took
/// after the token, the server what it decoded, and each side gets every frame of the
/// other exactly once, in order.
#[test]
fn a_resumed_session_gets_every_control_frame_once_in_both_directions() {
    let (mut client, mut server) = pair();
    assert!(!client.can_resume(), "no token from a single server");
    assert!(client.begin_resume(1).is_err());
    while server.poll_transmit().is_some() {}
    client.handle_stream(
        1,
        &server_frame(&ServerControl::ResumeToken { token: vec![7; 17] }),
    );
    assert!(client.can_resume());
    // Server to client: X arrives, Y arrives in part, Z is lost.
    let (x, y, z) = (
        server_frame(&say("x")),
        server_frame(&say("y")),
        server_frame(&say("z")),
    );
    client.handle_stream(2, &x);
    client.handle_stream(2, &y[..3]);
    // Client to server: A arrives, B arrives in part, C is lost.
    let chat = |client: &mut ClientSession, text: &str| {
        client
            .send_chat(control::ChatChannel::Global, None, text)
            .unwrap();
        match client.poll_transmit() {
            Some(Transmit::Stream(bytes)) => bytes,
            other => panic!("a chat frame: {other:?}"),
        }
    };
    server.handle_stream(3, &chat(&mut client, "a"));
    let b = chat(&mut client, "b");
    server.handle_stream(3, &b[..2]);
    let _lost_c = chat(&mut client, "c");
    // D is written by the game while the client resumes.
    client.begin_resume(4).unwrap();
    client
        .send_chat(control::ChatChannel::Global, None, "d")
        .unwrap();
    let Some(Transmit::Stream(resume)) = client.poll_transmit() else {
        panic!("the Resume frame first");
    };
    assert_eq!(client.poll_transmit(), None, "nothing else before Resumed");
    let mut decoder = FrameDecoder::new();
    decoder.push(&resume);
    let Ok(Some(ClientControl::Resume {
        token,
        received_bytes,
        ..
    })) = decoder.next_message::<ClientControl>()
    else {
        panic!("a Resume frame");
    };
    assert_eq!(token, vec![7; 17]);
    assert_eq!(
        received_bytes,
        x.len() as u64,
        "whole frames after the token"
    );
    // The server side: what the client missed (from its count on), then `Resumed`.
    assert!(server.resume());
    let mut resumed = Vec::new();
    while let Some(t) = server.poll_transmit() {
        if let Transmit::Stream(bytes) = t {
            resumed.extend(bytes);
        }
    }
    let mut decoder = FrameDecoder::new();
    decoder.push(&resumed);
    assert_eq!(
        decoder.next_message::<ServerControl>().unwrap(),
        Some(ServerControl::Resumed { received_frames: 2 }),
        "the login and A"
    );
    while client.poll_event().is_some() {}
    client.handle_stream(5, &y);
    client.handle_stream(5, &z);
    client.handle_stream(5, &resumed);
    let events: Vec<ClientEvent> = std::iter::from_fn(|| client.poll_event()).collect();
    let texts: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Chat { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["y", "z"]);
    assert_eq!(events.last(), Some(&ClientEvent::Resumed));
    while server.poll_event().is_some() {}
    while let Some(t) = client.poll_transmit() {
        if let Transmit::Stream(bytes) = t {
            server.handle_stream(6, &bytes);
        }
    }
    let said: Vec<String> = std::iter::from_fn(|| server.poll_event())
        .filter_map(|e| match e {
            ServerEvent::Chat { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(said, ["b", "c", "d"]);
    assert_eq!(
        server.state(),
        ConnectionState::Active {
            entity: EntityId(9)
        }
    );
}

#[test]
fn a_late_resumed_is_ignored_and_a_resume_to_a_single_server_is_refused_with_a_reason() {
    let (mut client, _) = pair();
    while client.poll_transmit().is_some() {}
    client.handle_stream(
        1,
        &server_frame(&ServerControl::Resumed { received_frames: 0 }),
    );
    assert_eq!(client.state(), ClientState::Active);
    assert_eq!(client.poll_transmit(), None, "nothing sent again");
    let mut server = ServerConnection::new(0, ServerConnectionConfig::default()).unwrap();
    server.handle_stream(
        0,
        &frame(&ClientControl::Resume {
            protocol_version: crate::PROTOCOL_VERSION,
            token: vec![1; 17],
            received_bytes: 0,
        }),
    );
    assert_eq!(
        closed_reason(&mut server),
        Some(DisconnectReason::ServiceUnavailable)
    );
    let mut server = ServerConnection::new(0, ServerConnectionConfig::default()).unwrap();
    server.handle_stream(
        0,
        &frame(&ClientControl::Resume {
            protocol_version: crate::PROTOCOL_VERSION + 1,
            token: vec![1; 65],
            received_bytes: 0,
        }),
    );
    assert_eq!(
        closed_reason(&mut server),
        Some(DisconnectReason::ProtocolViolation),
        "a token over 64 bytes"
    );
}
