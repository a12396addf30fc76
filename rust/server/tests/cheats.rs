//! Anti-cheat end to end: misbehaving clients against the in-process server over real QUIC
//! on 127.0.0.1, with an honest player in the same zone.
//!
//! Cheaters (each kicked by the zone's strike counter, threshold [`KICK_ABOVE`] set with the
//! server's `kick_above_strikes`; input-rate strikes count at most once per second):
//! - `speeder`: inputs at three times the tick rate (time dilation) -> `input_rate`;
//! - `warper`: a hand-encoded input datagram whose move vector is longer than 1 (the
//!   session would refuse to build it, so it drives its own QUIC connection with a raw
//!   [`ClientSession`] for the control stream) -> `input_magnitude`;
//! - `spammer`: a strike at the honest player every 50 ms, far faster than the global
//!   cooldown -> `ability_global_cooldown` (struck when more than the 250 ms grace early);
//! - `sniper`: sprints more than 50 m from the spawn, then strikes the honest player again
//!   and again (each as soon as the last was answered) ->
//!   `ability_out_of_range`;
//! - `hoarder`: moves items out of bag slot 999 -> `inventory_bad_slot`.
//!
//! The honest player walks back and forth near the spawn at the tick rate and casts
//! `self_heal` every 7 s (its cooldown is 6 s). It must end connected, with every answer
//! accepted. `/metrics` must count every cheat kind in `mmo_validation_rejections_total`.
//! Its own test process, so the metric counts are this file's alone.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{TempDir, connect_client, loopback_settings, wait_for_event};
use mmo_core::codec::input_codec::{InputBatch, encode_input_datagram};
use mmo_core::control::DisconnectReason;
use mmo_core::entity::EntityId;
use mmo_core::gameplay::content::{AbilityId, Content};
use mmo_core::gameplay::messages::{InventoryOp, Refusal, WireTarget};
use mmo_core::input::{AXIS_Q_MAX, Buttons, MoveInput};
use mmo_core::session::Transmit;
use mmo_core::session::client::{ClientConfig, ClientEvent, ClientSession, ClientState};
use mmo_net::client::NetClient;
use mmo_net::tls::{Fingerprint, ServerTrust};
use mmo_server::app::App;
use tokio::sync::mpsc;

const TICK_US: u64 = 33_333;
/// The server's strike threshold in this test.
const KICK_ABOVE: u32 = 5;
/// Inventory requests the hoarder sends at once (above the kick threshold).
const BURST: usize = 10;
/// Most missed ticks an honest player catches up on at once.
const MAX_CATCH_UP: u64 = 3;
/// How far the sniper runs before it strikes, metres.
const SNIPER_RUN_M: f32 = 53.0;

fn idle() -> MoveInput {
    MoveInput::from_controls(0.0, 0.0, 0.0, Buttons::default())
}

/// A player on a [`NetClient`], with everything its session said.
struct Player {
    name: &'static str,
    client: NetClient,
    events: Vec<ClientEvent>,
    entity: EntityId,
    /// Inputs sent since `start`.
    inputs_sent: u64,
    start: Instant,
}

impl Player {
    async fn join(app: &App, name: &'static str) -> Player {
        let token = app.token_for(name).await.expect("token issued");
        let mut client = connect_client(
            app.quic_addr().expect("a QUIC endpoint"),
            app.fingerprint().expect("a certificate"),
            &token,
        )
        .await;
        let welcome = wait_for_event(&mut client, |e| {
            matches!(
                e,
                ClientEvent::Welcome { .. } | ClientEvent::Disconnected { .. }
            )
        })
        .await;
        let Some(ClientEvent::Welcome { entity_id, .. }) = welcome else {
            panic!("{name}: expected a welcome, got {welcome:?}");
        };
        Player {
            name,
            client,
            events: Vec::new(),
            entity: entity_id,
            inputs_sent: 0,
            start: Instant::now(),
        }
    }

    fn pump(&mut self) {
        self.client.pump();
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }

    /// Sends `input` until `speedup` inputs per tick of real time have been sent since the
    /// player joined (1 is honest).
    fn send_due_inputs(&mut self, input: MoveInput, speedup: u64) {
        let due = self.start.elapsed().as_micros() as u64 / TICK_US * speedup;
        if speedup == 1 {
            // After a stall of this test process (the machine is shared), skip the missed
            // ticks instead of sending them in a clump the rate limiter would refuse.
            self.inputs_sent = self.inputs_sent.max(due.saturating_sub(MAX_CATCH_UP));
        }
        while self.inputs_sent < due && self.client.state() == ClientState::Active {
            self.client.send_input(input);
            self.inputs_sent += 1;
        }
    }

    /// Sends an ability request; false when the session still awaits the previous answer
    /// (the client library sends one at a time; a cheater simply sends the next one as soon
    /// as it may).
    fn use_ability(&mut self, ability: AbilityId, target: WireTarget) -> bool {
        if self.client.session().pending_ability().is_some() {
            return false;
        }
        self.client
            .session_mut()
            .use_ability(ability, target)
            .unwrap_or_else(|e| panic!("{}: ability not sent: {e}", self.name));
        self.client.pump();
        true
    }

    fn kicked(&self) -> bool {
        disconnect_of(&self.events).is_some()
    }

    /// Refusals in the server's answers.
    fn refusals(&self) -> Vec<&Refusal> {
        refusals_of(&self.events)
    }
}

fn disconnect_of(events: &[ClientEvent]) -> Option<(DisconnectReason, &str)> {
    events.iter().find_map(|e| match e {
        ClientEvent::Disconnected { reason, message } => Some((*reason, message.as_str())),
        _ => None,
    })
}

fn refusals_of(events: &[ClientEvent]) -> Vec<&Refusal> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::AbilityResult(r) => r.refusal.as_ref(),
            ClientEvent::InventoryResult(r) => r.refusal.as_ref(),
            _ => None,
        })
        .collect()
}

/// A client that sends hand-made input datagrams on its own QUIC connection; its control
/// stream still goes through a [`ClientSession`] (login, welcome, the kick).
struct RawCheater {
    connection: quinn::Connection,
    _endpoint: quinn::Endpoint,
    session: ClientSession,
    stream_in: mpsc::UnboundedReceiver<Vec<u8>>,
    events: Vec<ClientEvent>,
    next_seq: u32,
    datagram: Vec<u8>,
    start: Instant,
}

impl RawCheater {
    async fn join(addr: SocketAddr, fingerprint: Fingerprint, token: &str) -> RawCheater {
        let mut endpoint =
            quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).expect("client endpoint");
        let crypto = mmo_net::tls::quic_client_crypto(ServerTrust::Pinned(fingerprint))
            .expect("client TLS config");
        endpoint.set_default_client_config(quinn::ClientConfig::new(crypto));
        let connection = endpoint
            .connect(addr, "localhost")
            .expect("connect started")
            .await
            .expect("QUIC handshake with the pinned certificate");
        let (mut send, mut recv) = connection.open_bi().await.expect("control stream");
        let mut session =
            ClientSession::new(0, ClientConfig::default(), token).expect("session config");
        while let Some(t) = session.poll_transmit() {
            if let Transmit::Stream(bytes) = t {
                send.write_all(&bytes).await.expect("login frame written");
            }
        }
        // Keep the send half open: finishing it would be a disconnect.
        tokio::spawn(async move {
            let _keep = send;
            std::future::pending::<()>().await;
        });
        let (tx, stream_in) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(chunk)) = recv.read_chunk(64 * 1024, true).await {
                if tx.send(chunk.bytes.to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut cheater = RawCheater {
            connection,
            _endpoint: endpoint,
            session,
            stream_in,
            events: Vec::new(),
            next_seq: 0,
            datagram: Vec::new(),
            start: Instant::now(),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while cheater.session.state() == ClientState::LoggingIn && Instant::now() < deadline {
            cheater.pump();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            cheater.session.state(),
            ClientState::Active,
            "warper: no welcome within 5 s: {:?}",
            cheater.events
        );
        cheater
    }

    fn pump(&mut self) {
        let now_us = self.start.elapsed().as_micros() as u64;
        while let Ok(bytes) = self.stream_in.try_recv() {
            self.session.handle_stream(now_us, &bytes);
        }
        if let Some(error) = self.connection.close_reason() {
            // The disconnect frame normally arrives first; otherwise the close code says.
            let reason = match &error {
                quinn::ConnectionError::ApplicationClosed(c) => {
                    u16::try_from(c.error_code.into_inner())
                        .ok()
                        .and_then(|code| DisconnectReason::try_from(code).ok())
                }
                _ => None,
            };
            self.session.transport_closed(
                reason.unwrap_or(DisconnectReason::Timeout),
                error.to_string(),
            );
        }
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
    }

    /// Sends one input whose move vector is (1, 1): longer than 1.
    fn send_oversized_input(&mut self) {
        let input = MoveInput {
            forward_q: AXIS_Q_MAX,
            right_q: AXIS_Q_MAX,
            yaw_q: 0,
            buttons: Buttons::default(),
        };
        let mut batch = InputBatch::new(self.next_seq);
        assert!(batch.push(input), "one input fits a batch");
        encode_input_datagram(self.next_seq as u16, None, &batch, &mut self.datagram);
        self.next_seq += 1;
        // A refused send (connection closed) shows in `pump`.
        let _ = self.connection.send_datagram(self.datagram.clone().into());
    }
}

/// Every `mmo_validation_rejections_total` sample as (kind, count).
async fn rejection_counts(http_addr: SocketAddr) -> (Vec<(String, f64)>, String) {
    let text = reqwest::get(format!("http://{http_addr}/metrics"))
        .await
        .expect("/metrics answered")
        .text()
        .await
        .expect("/metrics body");
    let counts = text
        .lines()
        .filter(|l| l.starts_with("mmo_validation_rejections_total{"))
        .filter_map(|l| {
            let kind = l.split("kind=\"").nth(1)?.split('"').next()?.to_owned();
            let value = l.rsplit(' ').next()?.parse().ok()?;
            Some((kind, value))
        })
        .collect();
    (counts, text)
}

/// The distance in an out-of-range refusal's message ("... target at 53.20 m, ...").
fn refused_distance_m(refusal: &Refusal) -> Option<f32> {
    refusal
        .message
        .split("target at ")
        .nth(1)?
        .split(" m")
        .next()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheaters_are_refused_counted_and_kicked_while_the_honest_player_plays_on() {
    tokio::time::timeout(Duration::from_secs(90), cheaters_and_an_honest_player())
        .await
        .expect("finished within 90 s");
}

/// The id of `name` in the server's (default) content.
fn ability(name: &str) -> AbilityId {
    Content::default_content()
        .expect("the built-in content is valid")
        .ability_id(name)
        .unwrap_or_else(|| panic!("no ability {name} in the default content"))
}

async fn cheaters_and_an_honest_player() {
    let strike = ability("strike");
    let self_heal = ability("self_heal");
    let dir = TempDir::new("cheats");
    let mut settings = loopback_settings(dir.path().join("data"));
    settings.gameplay.kick_above_strikes = KICK_ABOVE;
    let app = App::start(settings).await.expect("server started");
    let mut honest = Player::join(&app, "honest").await;
    let mut speeder = Player::join(&app, "speeder").await;
    let mut spammer = Player::join(&app, "spammer").await;
    let mut sniper = Player::join(&app, "sniper").await;
    let mut hoarder = Player::join(&app, "hoarder").await;
    let warper_token = app.token_for("warper").await.expect("token issued");
    let mut warper = RawCheater::join(
        app.quic_addr().expect("a QUIC endpoint"),
        app.fingerprint().expect("a certificate"),
        &warper_token,
    )
    .await;

    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let mut heals_sent = 0u32;
    let mut bursts_sent = false;
    let mut spam_sent = 0u32;
    let mut warper_sent = 0u32;
    let honest_target = WireTarget::Entity(honest.entity);
    loop {
        let t = start.elapsed();
        for p in [
            &mut honest,
            &mut speeder,
            &mut spammer,
            &mut sniper,
            &mut hoarder,
        ] {
            p.pump();
        }
        warper.pump();

        // Honest: back and forth at 1.2 m/s, one second each way (stays within 1.2 m of
        // the spawn, so within the spammer's reach); self_heal every 7 s.
        let sign = if t.as_secs().is_multiple_of(2) {
            1.0
        } else {
            -1.0
        };
        honest.send_due_inputs(
            MoveInput::from_controls(0.3 * sign, 0.0, 0.0, Buttons::default()),
            1,
        );
        if t >= Duration::from_millis(500 + 7_000 * u64::from(heals_sent)) && heals_sent < 3 {
            assert!(
                honest.use_ability(self_heal, WireTarget::SelfTarget),
                "the honest player's previous heal is still unanswered after 7 s"
            );
            heals_sent += 1;
        }

        // Speed hack: three inputs per tick of real time.
        speeder.send_due_inputs(idle(), 3);

        // Impossible movement: one oversized input per tick.
        let warper_due = (warper.start.elapsed().as_micros() as u64 / TICK_US) as u32;
        while warper_sent < warper_due && warper.session.state() == ClientState::Active {
            warper.send_oversized_input();
            warper_sent += 1;
        }

        // Cooldown spam: a strike every 50 ms from 1 s on (the client library sends one
        // request at a time, so an attempt while the last is unanswered is skipped).
        if t >= Duration::from_secs(1)
            && !spammer.kicked()
            && t >= Duration::from_millis(1_000 + 50 * u64::from(spam_sent))
        {
            // Skipped (and tried again 50 ms later) while the last one is unanswered.
            spammer.use_ability(strike, honest_target);
            spam_sent += 1;
        }
        // Slot tampering, once everyone has settled.
        if !bursts_sent && t >= Duration::from_secs(1) {
            for _ in 0..BURST {
                hoarder
                    .client
                    .session_mut()
                    .inventory_op(InventoryOp::Move { from: 999, to: 0 })
                    .expect("hoarder logged in");
            }
            hoarder.client.pump();
            bursts_sent = true;
        }
        spammer.send_due_inputs(idle(), 1);
        hoarder.send_due_inputs(idle(), 1);

        // Out of range: sprint away, then strike the honest player.
        let run_m = sniper
            .client
            .session()
            .predictor()
            .map_or(0.0, |p| p.predicted().position_m.truncate().length());
        if run_m < SNIPER_RUN_M {
            let sprint = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons(Buttons::SPRINT));
            sniper.send_due_inputs(sprint, 1);
        } else {
            sniper.send_due_inputs(idle(), 1);
            // One strike after another, each as soon as the last was answered.
            if !sniper.kicked() {
                sniper.use_ability(strike, honest_target);
            }
        }

        let cheaters_gone = speeder.kicked()
            && spammer.kicked()
            && sniper.kicked()
            && hoarder.kicked()
            && disconnect_of(&warper.events).is_some();
        if cheaters_gone && heals_sent >= 2 && t >= Duration::from_secs(9) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every cheater was kicked within 60 s: speeder {:?}, spammer {:?} (answers {:?}), \
             sniper {:?} (ran {run_m:.1} m), hoarder {:?}, warper {:?}; heals sent {heals_sent}",
            disconnect_of(&speeder.events),
            disconnect_of(&spammer.events),
            spammer.refusals(),
            disconnect_of(&sniper.events),
            disconnect_of(&hoarder.events),
            disconnect_of(&warper.events),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The honest player's last heal is answered within a second or two.
    let settle = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settle {
        honest.pump();
        honest.send_due_inputs(idle(), 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Every cheater was kicked by the anti-cheat.
    for (name, events) in [
        ("speeder", &speeder.events),
        ("spammer", &spammer.events),
        ("sniper", &sniper.events),
        ("hoarder", &hoarder.events),
        ("warper", &warper.events),
    ] {
        let (reason, message) = disconnect_of(events).expect("checked in the loop");
        assert_eq!(
            reason,
            DisconnectReason::Kicked,
            "{name} closed as {reason:?}: {message}"
        );
        assert!(
            message.contains("anti-cheat"),
            "{name}: kick message {message}"
        );
    }
    // The request cheaters were answered with the refusal they earned.
    for (player, kind) in [
        (&spammer, "ability_global_cooldown"),
        (&sniper, "ability_out_of_range"),
        (&hoarder, "inventory_bad_slot"),
    ] {
        let refusals = player.refusals();
        assert!(
            refusals.iter().filter(|r| r.kind == kind).count() > KICK_ABOVE as usize,
            "{}: expected more than {KICK_ABOVE} {kind} refusals, got {refusals:?}",
            player.name
        );
    }
    let far = sniper
        .refusals()
        .first()
        .and_then(|r| refused_distance_m(r));
    assert!(
        far.is_some_and(|d| d >= 50.0),
        "the sniper struck from 50+ m: {:?}",
        sniper.refusals().first()
    );

    // The honest player plays on, every answer accepted.
    assert_eq!(
        honest.client.state(),
        ClientState::Active,
        "honest player disconnected: {:?}",
        disconnect_of(&honest.events)
    );
    let refused = honest.refusals();
    assert!(refused.is_empty(), "honest player refused: {refused:?}");
    let heals_ok = honest
        .events
        .iter()
        .filter(|e| {
            matches!(e, ClientEvent::AbilityResult(r) if r.ability == self_heal && r.refusal.is_none())
        })
        .count();
    assert!(
        heals_ok >= 2,
        "honest self_heals accepted: {heals_ok} of {heals_sent}"
    );

    // Every kind is counted.
    let (counts, text) = rejection_counts(app.http_addr()).await;
    for kind in [
        "input_rate",
        "input_magnitude",
        "ability_global_cooldown",
        "ability_out_of_range",
        "inventory_bad_slot",
    ] {
        let count = counts
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0.0, |(_, c)| *c);
        assert!(
            count > 0.0,
            "validation_rejections_total{{kind=\"{kind}\"}} is {count}; samples {counts:?}\n{text}"
        );
    }

    honest.client.disconnect(Duration::from_secs(1)).await;
    app.shutdown(Duration::from_secs(1)).await;
}
