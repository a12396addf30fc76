//! Tests of the session state machines against hostile or broken peers: every bad input
//! gets a reason, and nothing panics.

use crate::control::{self, ClientControl, DisconnectReason, FrameDecoder, ServerControl};
use crate::entity::{CharacterState, EntityId};
use crate::input::MoveInput;
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
        [0; 32],
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
        [0; 32]
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
    assert!(c.accept_login(EntityId(1), tick, rate, CharacterState::default(), [0; 32]));
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
    let mut client = ClientSession::new(0, ClientConfig::default(), "token").unwrap();
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
        [0; 32],
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
    for _ in 0..100 {
        server.take_inputs_for_tick(&mut taken);
        all.extend(taken.iter().map(|(s, _)| *s));
    }
    assert_eq!(all, (1..=60).collect::<Vec<u32>>());
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
        server
            .send_snapshot(
                &codec,
                Tick(tick),
                Some(&owner),
                &[] as &[crate::codec::snapshot::EntityRecordIn],
                None,
                EncodeBuffers {
                    datagram: &mut datagram,
                    written: &mut written,
                    cache: None,
                },
            )
            .unwrap();
        let Some(Transmit::Datagram(d)) = server.poll_transmit() else {
            panic!("a snapshot datagram");
        };
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
