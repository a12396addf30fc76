//! Every way a player can leave, over real QUIC on 127.0.0.1: a clean logout (the client's
//! `Disconnect`), a kick (anti-cheat strikes), a protocol violation, an idle timeout, a
//! duplicate login of the same account, and a logout after a zone handoff (the old zone
//! showed the player as a border ghost). In each, an observer standing next to the player
//! must get a leave record for its entity within a second (one snapshot after the close in
//! practice; the bound leaves room for a loaded machine), and a client that connects
//! afterwards must never be told about the entity (while it is told about the observer, so
//! it does receive entity records).
//!
//! Before the fix, only a bare QUIC close produced the leave: a connection closed by the
//! session forgot its entity before the zone removed it, so the entity stayed in every
//! observer's view as a ghost.

mod common;

use std::time::{Duration, Instant};

use common::player::Player;
use common::{border_world, connect_player, pinned_config, raw_connection, zone_of};
use mmo_core::PROTOCOL_VERSION;
use mmo_core::control::{self, ClientControl, DisconnectReason, ServerControl};
use mmo_core::entity::EntityId;
use mmo_core::gameplay::messages::InventoryOp;
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::session::client::ClientEvent;
use mmo_core::world::{WorldLayout, ZoneId};
use mmo_core::zone::ZoneConfig;
use mmo_net::auth::StaticTokens;
use mmo_net::server::Server;
use mmo_net::tls::ServerTrust;

/// How long an observer may wait for the leave.
const LEAVE_WITHIN: Duration = Duration::from_secs(1);

/// Tokens `t0`..`t5` for accounts `p0`..`p5`.
fn tokens() -> StaticTokens {
    (0..6).fold(StaticTokens::new(), |t, i| {
        t.with(&format!("t{i}"), &format!("p{i}"))
    })
}

struct World {
    server: Server,
    trust: ServerTrust,
    zone: ZoneConfig,
    tick: Duration,
}

impl World {
    async fn start(zone: ZoneConfig, layout: Option<WorldLayout>) -> World {
        let (mut config, trust) = pinned_config(&zone, tokens());
        config.layout = layout;
        let server = Server::start(config).await.expect("server starts");
        let tick = Duration::from_micros(zone.tick_rate.tick_us());
        World {
            server,
            trust,
            zone,
            tick,
        }
    }

    async fn player(&self, token: &str) -> Player {
        connect_player(&self.server, self.trust, &self.zone, token).await
    }

    /// Ticks every player in `players` with `input` until `done` holds, at most `within`.
    async fn run_until(
        &self,
        players: &mut [&mut Player],
        input: MoveInput,
        within: Duration,
        mut done: impl FnMut(&[&mut Player]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + within;
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while Instant::now() < deadline {
            interval.tick().await;
            for p in players.iter_mut() {
                p.tick(input, self.tick.as_secs_f32());
            }
            if done(players) {
                return true;
            }
        }
        false
    }

    /// Ticks `observer` (idle) until it has seen `entity` leave; the time it took.
    async fn leave_seen_within(&self, observer: &mut Player, entity: EntityId) -> Duration {
        let start = Instant::now();
        let left = self
            .run_until(&mut [observer], MoveInput::default(), LEAVE_WITHIN, |p| {
                left_events(&p[0].events, entity) > 0
            })
            .await;
        let took = start.elapsed();
        assert!(
            left,
            "the observer got no leave for entity {} within {LEAVE_WITHIN:?}",
            entity.0
        );
        assert!(
            !observer.sees(entity),
            "entity {} is still in the observer's view after its leave",
            entity.0
        );
        took
    }

    /// A client connecting now (with `token`) is told about `observer_entity` within 3 s and,
    /// over a further second, never about `gone`.
    async fn later_client_never_sees(&self, token: &str, observer: &mut Player, gone: EntityId) {
        let mut later = self.player(token).await;
        let saw_observer = self
            .run_until(
                &mut [observer, &mut later],
                MoveInput::default(),
                Duration::from_secs(3),
                |p| p[0].entity().is_some_and(|e| p[1].sees(e)),
            )
            .await;
        assert!(saw_observer, "the later client never saw the observer");
        self.run_until(
            &mut [observer, &mut later],
            MoveInput::default(),
            Duration::from_secs(1),
            |_| false,
        )
        .await;
        let entered = later
            .events
            .iter()
            .filter(|e| matches!(e, ClientEvent::EntityEntered { id, .. } if *id == gone))
            .count();
        assert_eq!(
            entered, 0,
            "a client connecting after the leave was told about entity {}",
            gone.0
        );
        assert!(!later.sees(gone));
        later.client.disconnect(Duration::from_millis(500)).await;
    }

    /// The end of every test: `observer` gets `entity`'s leave (the time is printed with
    /// `what`), then a client connecting afterwards never hears of it; the server stops.
    async fn leave_then_absent(self, what: &str, mut observer: Player, entity: EntityId) {
        let took = self.leave_seen_within(&mut observer, entity).await;
        eprintln!("{what}: leave seen after {took:?}");
        self.later_client_never_sees("t2", &mut observer, entity)
            .await;
        self.stop().await;
    }

    /// Connects `token` and an observer (`observer_token`) at the spawn point and runs
    /// until each sees the other.
    async fn pair(&self, token: &str, observer_token: &str) -> (Player, Player, EntityId) {
        let mut leaver = self.player(token).await;
        let mut observer = self.player(observer_token).await;
        let met = self
            .run_until(
                &mut [&mut leaver, &mut observer],
                MoveInput::default(),
                Duration::from_secs(5),
                |p| match (p[0].entity(), p[1].entity()) {
                    (Some(a), Some(b)) => p[0].sees(b) && p[1].sees(a),
                    _ => false,
                },
            )
            .await;
        assert!(met, "the two players never saw each other");
        let entity = leaver.entity().expect("welcomed");
        (leaver, observer, entity)
    }

    async fn stop(self) {
        self.server.shutdown(Duration::from_secs(1)).await;
    }
}

fn left_events(events: &[ClientEvent], entity: EntityId) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, ClientEvent::EntityLeft { id } if *id == entity))
        .count()
}

fn disconnect_reason(events: &[ClientEvent]) -> Option<DisconnectReason> {
    events.iter().find_map(common::disconnected)
}

async fn within_limit(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(45), test)
        .await
        .expect("finished within 45 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_logout_reaches_observers_as_a_leave() {
    within_limit(async {
        let world = World::start(ZoneConfig::default(), None).await;
        let (leaver, observer, entity) = world.pair("t0", "t1").await;
        leaver.client.disconnect(Duration::from_millis(500)).await;
        world
            .leave_then_absent("clean logout", observer, entity)
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_reaches_observers_as_a_leave() {
    within_limit(async {
        let mut zone = ZoneConfig::default();
        zone.gameplay.strikes.kick_above = 1;
        let world = World::start(zone, None).await;
        let (mut leaver, observer, entity) = world.pair("t0", "t1").await;
        // Slots that do not exist: each request is a strike; the second is over the limit.
        for _ in 0..3 {
            leaver
                .client
                .session_mut()
                .inventory_op(InventoryOp::Move {
                    from: 60_000,
                    to: 0,
                })
                .expect("logged in");
        }
        // The leaver's client sends the requests as it runs, until it hears the kick.
        world
            .run_until(
                &mut [&mut leaver],
                MoveInput::default(),
                Duration::from_secs(3),
                |p| disconnect_reason(&p[0].events).is_some(),
            )
            .await;
        assert_eq!(
            disconnect_reason(&leaver.events),
            Some(DisconnectReason::Kicked)
        );
        // Timed from when the kick reached the kicked client.
        world.leave_then_absent("kick", observer, entity).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_violation_reaches_observers_as_a_leave() {
    within_limit(async {
        let world = World::start(ZoneConfig::default(), None).await;
        let mut observer = world.player("t1").await;
        let observed = world
            .run_until(
                &mut [&mut observer],
                MoveInput::default(),
                Duration::from_secs(3),
                |p| p[0].entity().is_some(),
            )
            .await;
        assert!(observed, "the observer was not welcomed");
        // A hand-written client: logs in on the control stream, reads its welcome, then
        // sends a second login, which the session answers with ProtocolViolation.
        let (_endpoint, connection) =
            raw_connection(world.server.local_addr(), world.server.fingerprint()).await;
        let (mut send, mut recv) = connection.open_bi().await.expect("control stream");
        let mut login = Vec::new();
        control::encode_frame(
            &ClientControl::Login {
                protocol_version: PROTOCOL_VERSION,
                token: "t0".into(),
            },
            &mut login,
        )
        .expect("encodable");
        send.write_all(&login).await.expect("login sent");
        let mut decoder = control::FrameDecoder::new();
        let mut buf = [0u8; 4096];
        let entity = loop {
            if let Some(message) = decoder
                .next_message::<ServerControl>()
                .expect("the server's frames decode")
            {
                if let ServerControl::Welcome { entity_id, .. } = message {
                    break entity_id;
                }
                continue;
            }
            let n = tokio::time::timeout(Duration::from_secs(5), recv.read(&mut buf))
                .await
                .expect("welcome within 5 s")
                .expect("stream readable")
                .expect("stream open");
            decoder.push(&buf[..n]);
        };
        let seen = world
            .run_until(
                &mut [&mut observer],
                MoveInput::default(),
                Duration::from_secs(3),
                |p| p[0].sees(entity),
            )
            .await;
        assert!(seen, "the observer never saw the raw client's character");
        send.write_all(&login).await.expect("second login sent");
        let took = world.leave_seen_within(&mut observer, entity).await;
        eprintln!("protocol violation: leave seen after {took:?}");
        assert_eq!(
            common::close_code(&connection, Duration::from_secs(3)).await,
            Some(u64::from(DisconnectReason::ProtocolViolation.code()))
        );
        world
            .later_client_never_sees("t2", &mut observer, entity)
            .await;
        world.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_timeout_reaches_observers_as_a_leave() {
    within_limit(async {
        let mut zone = ZoneConfig::default();
        zone.connection.idle_timeout_us = 1_500_000;
        let world = World::start(zone, None).await;
        let (leaver, mut observer, entity) = world.pair("t0", "t1").await;
        // The leaver goes silent (its session sends nothing more; QUIC keeps the
        // connection open): the server's idle timeout closes it.
        let silent_since = Instant::now();
        let left = world
            .run_until(
                &mut [&mut observer],
                MoveInput::default(),
                Duration::from_secs(4),
                |p| left_events(&p[0].events, entity) > 0,
            )
            .await;
        assert!(left, "the observer got no leave after the idle timeout");
        let after_timeout = silent_since
            .elapsed()
            .saturating_sub(Duration::from_micros(world.zone.connection.idle_timeout_us));
        eprintln!("idle timeout: leave seen {after_timeout:?} after the timeout");
        assert!(
            after_timeout < LEAVE_WITHIN,
            "the leave came {after_timeout:?} after the timeout"
        );
        world
            .later_client_never_sees("t2", &mut observer, entity)
            .await;
        drop(leaver);
        world.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_login_replaces_the_entity_instead_of_adding_one() {
    within_limit(async {
        let world = World::start(ZoneConfig::default(), None).await;
        let (mut first, mut observer, old) = world.pair("t0", "t1").await;
        let mut second = world.player("t0").await;
        let took = world.leave_seen_within(&mut observer, old).await;
        eprintln!("duplicate login: old entity's leave seen after {took:?}");
        let replaced = world
            .run_until(
                &mut [&mut first, &mut second, &mut observer],
                MoveInput::default(),
                Duration::from_secs(3),
                |p| p[1].entity().is_some_and(|e| p[2].sees(e)),
            )
            .await;
        assert!(
            replaced,
            "the observer never saw the new session's character"
        );
        assert_eq!(
            disconnect_reason(&first.events),
            Some(DisconnectReason::DuplicateLogin)
        );
        let new = second.entity().expect("welcomed");
        assert_ne!(new, old);
        assert!(
            !observer.sees(old),
            "the old session's character is a ghost"
        );
        world
            .later_client_never_sees("t2", &mut observer, old)
            .await;
        world.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_after_a_zone_handoff_reaches_the_old_zones_observers() {
    within_limit(async {
        let (world_rect, zone) = border_world();
        let layout = WorldLayout::new(world_rect, 2, 1, 30.0).expect("valid layout");
        let world = World::start(zone, Some(layout)).await;
        let (mut walker, mut observer, entity) = world.pair("t0", "t1").await;
        assert_eq!(zone_of(&world.server, entity).await, Some(ZoneId(0)));
        // The walker crosses the border at x = 0 (spawned 4 m west of it) and walks on for
        // about 11 m: owned by zone 1, still within zone 0's 30 m border band, so the
        // observer in zone 0 keeps seeing it as a ghost.
        let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        let start = Instant::now();
        world
            .run_until(&mut [&mut walker], walk, Duration::from_secs(4), |p| {
                p[0].position_m().x > 7.0
            })
            .await;
        let handed_over = loop {
            world
                .run_until(
                    &mut [&mut walker, &mut observer],
                    MoveInput::default(),
                    Duration::from_millis(200),
                    |_| false,
                )
                .await;
            if zone_of(&world.server, entity).await == Some(ZoneId(1)) {
                break true;
            }
            if start.elapsed() > Duration::from_secs(10) {
                break false;
            }
        };
        assert!(handed_over, "the walker was not handed over to zone 1");
        assert!(
            observer.sees(entity),
            "the observer sees the walker's ghost"
        );
        assert_eq!(left_events(&observer.events, entity), 0);
        walker.client.disconnect(Duration::from_millis(500)).await;
        world
            .leave_then_absent(
                "logout after a handoff (the old zone's observer)",
                observer,
                entity,
            )
            .await;
    })
    .await;
}
