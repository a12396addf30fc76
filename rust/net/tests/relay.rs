//! The fleet roles over a real NATS server: gateway processes hold the QUIC connections and
//! zone processes run the sessions (one process for the whole world, or one per zone with a
//! player handed between them), and nothing but NATS connects them.
//!
//! Needs `MMO_TEST_NATS_URL` (`ci/services.sh` starts a server; skipped without it unless
//! `MMO_REQUIRE_SERVICES=1`); the directory test needs `MMO_TEST_REDIS_URL` too, and the
//! others use the directory when it is set. Each test uses its own world name, so tests running at once
//! on one NATS server do not see each other.

mod common;
#[path = "relay/decisions.rs"]
mod decisions;

use std::time::Duration;

use common::{border_world, player::Player, wait_counter, zone_of};
use mmo_core::control::DisconnectReason;
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::session::client::{ClientConfig, ClientEvent, ClientState};
use mmo_core::world::{WorldLayout, ZoneId};
use mmo_core::zone::ZoneConfig;
use mmo_net::auth::StaticTokens;
use mmo_net::client::NetClient;
use mmo_net::relay::{GatewayProcess, RelaySettings, ZoneProcess};
use mmo_net::server::ServerConfig;
use mmo_net::tls::{ServerCert, ServerTrust};
use mmo_testkit::services::{installed_server, service_url};

fn settings(url: &str, world: &str) -> RelaySettings {
    RelaySettings {
        nats_url: url.to_owned(),
        world: format!("{world}-{:08x}", rand_suffix()),
        // The directory when a Redis is at hand (`ci/services.sh` starts one).
        redis_url: std::env::var("MMO_TEST_REDIS_URL").ok(),
        nats_security: None,
        zones: None,
        take_free_zone: false,
        shard_cap: None,
        shard_merge_after: Duration::from_secs(60),
    }
}

/// A per-run suffix, so a rerun against the same NATS server starts clean.
fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// The two-zone border world of the `zones` test, with tokens "a" and "b".
fn config() -> (ServerConfig, ServerTrust, ZoneConfig) {
    let (world, zone) = border_world();
    let cert = ServerCert::self_signed(&["localhost"]).unwrap();
    let trust = ServerTrust::Pinned(cert.fingerprint());
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        zone.clone(),
        cert,
        std::sync::Arc::new(StaticTokens::new().with("a", "alice").with("b", "bob")),
    );
    config.layout = Some(WorldLayout::new(world, 2, 1, 30.0).unwrap());
    (config, trust, zone)
}

async fn connect(
    gateway: &GatewayProcess,
    trust: ServerTrust,
    zone: &ZoneConfig,
    token: &str,
) -> Player {
    let client_config = ClientConfig {
        movement: zone.movement.clone(),
        ..ClientConfig::default()
    };
    let client = NetClient::connect(
        gateway.local_addr(),
        "localhost",
        trust,
        client_config,
        token,
    )
    .await
    .expect("connects through the gateway");
    Player::new(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_on_two_gateways_play_together_in_one_zone_process() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), two_gateways(url))
        .await
        .expect("finished within 60 s");
}

async fn two_gateways(url: String) {
    common::install_recorder();
    let relay = settings(&url, "two-gateways");
    let (config, trust, zone) = config();
    let zones = ZoneProcess::start(&config, relay.clone()).await.unwrap();
    assert_eq!(zones.zone_count(), 2);
    let gateway_1 = GatewayProcess::start(&config, relay.clone()).await.unwrap();
    let gateway_2 = GatewayProcess::start(&config, relay.clone()).await.unwrap();
    assert_ne!(gateway_1.id(), gateway_2.id());

    let tick = Duration::from_micros(zone.tick_rate.tick_us());
    let tick_s = tick.as_secs_f32();
    let mut a = connect(&gateway_1, trust, &zone, "a").await;
    let mut b = connect(&gateway_2, trust, &zone, "b").await;
    let idle = MoveInput::default();
    let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    common::player::until_they_see_each_other(&mut a, &mut b, &mut interval, tick_s).await;
    let a_entity = a.entity().expect("A welcomed through gateway 1");
    let b_entity = b.entity().expect("B welcomed through gateway 2");
    assert!(b.sees(a_entity) && a.sees(b_entity), "they see each other");
    assert_eq!(zones.relayed_connections(), 2);
    assert_eq!(zone_of(&zones, a_entity).await, Some(ZoneId(0)));

    // A walks across the zone border (a handoff between the zone process's threads) while
    // B watches; then both idle while the last snapshots arrive.
    let acked_before = a.client.session().stats().snapshots_applied;
    let mut b_lost_a = 0;
    for i in 0..165 {
        interval.tick().await;
        a.tick(if i < 120 { walk } else { idle }, tick_s);
        b.tick(idle, tick_s);
        if !b.sees(a_entity) {
            b_lost_a += 1;
        }
    }
    let a_position = a.position_m();
    assert!(a_position.x > 5.0, "A walked into zone 1: {a_position}");
    assert_eq!(zone_of(&zones, a_entity).await, Some(ZoneId(1)));
    assert_eq!(a.client.state(), ClientState::Active, "A stayed connected");
    let stats = a.client.session().stats();
    assert_eq!(stats.corrections, 0, "A's prediction agreed with the zones");
    assert_eq!(stats.snapshots_undecodable, 0);
    assert!(
        stats.snapshots_applied > acked_before + 100,
        "A kept receiving snapshots through the relay: {acked_before} -> {}",
        stats.snapshots_applied
    );
    assert_eq!(b_lost_a, 0, "B saw A in every frame");
    let server_a = zones
        .inspect_zone(ZoneId(1), move |zone, ids| {
            ids.iter()
                .find(|id| zone.connection(**id).and_then(|c| c.entity()) == Some(a_entity))
                .and_then(|id| zone.character(*id).copied())
        })
        .await
        .flatten()
        .expect("A's character in zone 1");
    assert!(
        (server_a.position_m - a_position).length() < 1e-3,
        "server {} vs predicted {a_position}",
        server_a.position_m
    );

    // A leaves cleanly: B is told within a second, and the zone process forgets A.
    a.client.disconnect(Duration::from_secs(2)).await;
    assert!(
        sees_leave_within_a_second(&mut b, a_entity, &mut interval, tick_s).await,
        "B got A's leave within a second"
    );
    assert_eq!(
        zone_of(&zones, a_entity).await,
        None,
        "A's session is closed"
    );
    let mut relayed = zones.relayed_connections();
    for _ in 0..150 {
        if relayed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        relayed = zones.relayed_connections();
    }
    assert_eq!(
        relayed, 1,
        "the zone process forgot A's relayed connection; B's remains"
    );

    // The zone process shuts down: B hears `ServerShutdown` through its gateway.
    zones.shutdown(Duration::from_secs(3)).await;
    for _ in 0..150 {
        b.pump();
        if b.client.state() == ClientState::Closed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        b.events.iter().any(|e| matches!(
            e,
            ClientEvent::Disconnected {
                reason: DisconnectReason::ServerShutdown,
                ..
            }
        )),
        "B was told why: {:?}",
        b.events.last()
    );
    gateway_1.shutdown(Duration::from_secs(1)).await;
    gateway_2.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batches_are_refused_and_a_bad_token_is_refused_through_the_relay() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        common::install_recorder();
        let relay = settings(&url, "bad-input");
        let (config, trust, zone) = config();
        let zones = ZoneProcess::start(&config, relay.clone()).await.unwrap();
        let gateway = GatewayProcess::start(&config, relay.clone()).await.unwrap();
        // Garbage, another format version and an empty message on the zone subject.
        let nats = async_nats::connect(url.as_str()).await.unwrap();
        let refused_before =
            common::counter("mmo_relay_events_total", &[("event", "batch_refused")]);
        let subject = format!("mmo.{}.zone.0", relay.world);
        for payload in [vec![1u8, 0xff, 0xff, 0xff], vec![2u8, 0, 0], Vec::new()] {
            nats.publish(subject.clone(), payload.into()).await.unwrap();
        }
        nats.flush().await.unwrap();
        let refused = wait_counter(
            "mmo_relay_events_total",
            &[("event", "batch_refused")],
            refused_before + 3,
            Duration::from_secs(5),
        )
        .await;
        assert!(
            refused >= refused_before + 3,
            "the three bad batches were counted"
        );

        // The relay still works, and a login the zone refuses reaches the client with
        // the zone's reason.
        let client_config = ClientConfig {
            movement: zone.movement.clone(),
            ..ClientConfig::default()
        };
        let mut client = NetClient::connect(
            gateway.local_addr(),
            "localhost",
            trust,
            client_config,
            "forged",
        )
        .await
        .expect("the QUIC handshake with the gateway succeeds");
        let reason = common::wait_event(&mut client, Duration::from_secs(5), |e| {
            common::disconnected(e).is_some()
        })
        .await
        .and_then(|e| common::disconnected(&e));
        assert_eq!(reason, Some(DisconnectReason::BadToken));
        let mut honest = connect(&gateway, trust, &zone, "a").await;
        let welcome = common::wait_event(&mut honest.client, Duration::from_secs(5), |e| {
            matches!(e, ClientEvent::Welcome { .. })
        })
        .await;
        assert!(welcome.is_some(), "an honest client is still welcomed");
        gateway.shutdown(Duration::from_secs(1)).await;
        zones.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("finished within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_zone_process_the_gateway_closes_with_service_unavailable() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        let relay = settings(&url, "no-zones");
        let (config, trust, zone) = config();
        let gateway = GatewayProcess::start(&config, relay).await.unwrap();
        let client_config = ClientConfig {
            movement: zone.movement.clone(),
            ..ClientConfig::default()
        };
        let started = std::time::Instant::now();
        let mut client =
            NetClient::connect(gateway.local_addr(), "localhost", trust, client_config, "a")
                .await
                .expect("the QUIC handshake with the gateway succeeds");
        let reason = common::wait_event(&mut client, Duration::from_secs(20), |e| {
            common::disconnected(e).is_some()
        })
        .await
        .and_then(|e| common::disconnected(&e));
        assert_eq!(reason, Some(DisconnectReason::ServiceUnavailable));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(3) && waited < Duration::from_secs(6),
            "closed after the relay's 3 s opening timeout, not {waited:?}"
        );
        gateway.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_is_owned_by_one_zone_process_at_a_time() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    let Some(redis_url) = service_url("MMO_TEST_REDIS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        let relay = settings(&url, "leases");
        let (config, _, _) = config();
        let first = ZoneProcess::start(&config, relay.clone()).await.unwrap();
        let first_token = first.fencing_token(ZoneId(0)).expect("a lease of zone 0");
        assert!(first.fencing_token(ZoneId(1)).is_some(), "and of zone 1");

        // A second zone process of the same world is refused, naming the zone and owner.
        let refused = ZoneProcess::start(&config, relay.clone())
            .await
            .unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains("zone 0") && message.contains(&format!("{:016x}", first.id())),
            "{message}"
        );

        // Stopped, the first gives its leases back: the next owner gets higher tokens.
        first.shutdown(Duration::from_secs(2)).await;
        let second = ZoneProcess::start(&config, relay.clone()).await.unwrap();
        let second_token = second.fencing_token(ZoneId(0)).unwrap();
        assert!(second_token > first_token, "{second_token} > {first_token}");

        // Someone else takes zone 1's lease: the owner learns it lost the zone.
        let client = redis::Client::open(redis_url.as_str()).unwrap();
        let mut redis = client.get_multiplexed_async_connection().await.unwrap();
        let key = format!("mmo:{}:zone:1:owner", relay.world);
        redis::cmd("SET")
            .arg(&key)
            .arg("00000000000000ff:999")
            .query_async::<()>(&mut redis)
            .await
            .unwrap();
        let reason = tokio::time::timeout(Duration::from_secs(5), second.ownership_lost())
            .await
            .expect("the loss is noticed within a renewal period or two");
        assert!(reason.contains("zone 1"), "{reason}");
        second.shutdown(Duration::from_secs(2)).await;
        let owner: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(
            owner.as_deref(),
            Some("00000000000000ff:999"),
            "a lost lease is not given back over the new owner's"
        );
    })
    .await
    .expect("finished within 30 s");
}

/// Zone 0 and zone 1 of one world run in two zone processes. A walks from zone 0 into zone
/// 1 and back (a handoff between processes each way, through NATS, while one gateway keeps
/// its QUIC connection) and asks for an inventory operation every few ticks on the way; B
/// stays in zone 0 near the border and watches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_walks_into_a_zone_of_another_zone_process_and_back() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    if service_url("MMO_TEST_REDIS_URL").is_none() {
        return;
    }
    tokio::time::timeout(Duration::from_secs(60), across_processes(url))
        .await
        .expect("finished within 60 s");
}

/// Ticks `watcher` idle for at most 30 ticks until it is told `entity` left.
async fn sees_leave_within_a_second(
    watcher: &mut Player,
    entity: mmo_core::entity::EntityId,
    interval: &mut tokio::time::Interval,
    tick_s: f32,
) -> bool {
    for _ in 0..30 {
        interval.tick().await;
        watcher.tick(MoveInput::default(), tick_s);
        if watcher
            .events
            .iter()
            .any(|e| matches!(e, ClientEvent::EntityLeft { id } if *id == entity))
        {
            return true;
        }
    }
    false
}

/// `entity`'s character if `zone` of `process` has its session.
async fn in_zone(
    process: &ZoneProcess,
    zone: u16,
    entity: mmo_core::entity::EntityId,
) -> Option<Option<mmo_core::entity::CharacterState>> {
    process
        .inspect_zone(ZoneId(zone), move |z, ids| {
            ids.iter()
                .find(|id| z.connection(**id).and_then(|c| c.entity()) == Some(entity))
                .and_then(|id| z.character(*id).copied())
        })
        .await
}

async fn across_processes(url: String) {
    use mmo_core::gameplay::messages::InventoryOp;
    common::install_recorder();
    let relay = settings(&url, "across");
    let (config, trust, zone) = config();
    let running = |zone: u16| {
        ZoneProcess::start(
            &config,
            RelaySettings {
                zones: Some(vec![zone]),
                ..relay.clone()
            },
        )
    };
    let zones_0 = running(0).await.unwrap();
    let zones_1 = running(1).await.unwrap();
    assert_eq!((zones_0.zone_count(), zones_1.zone_count()), (1, 1));
    // A third process cannot take zone 1 while the second holds it.
    let refused = running(1).await.unwrap_err();
    assert!(refused.to_string().contains("zone 1"), "{refused}");
    let gateway = GatewayProcess::start(&config, relay.clone()).await.unwrap();

    let tick = Duration::from_micros(zone.tick_rate.tick_us());
    let tick_s = tick.as_secs_f32();
    let mut a = connect(&gateway, trust, &zone, "a").await;
    let mut b = connect(&gateway, trust, &zone, "b").await;
    let idle = MoveInput::default();
    let east = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
    let west = MoveInput::from_controls(-1.0, 0.0, 0.0, Buttons::default());
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    common::player::until_they_see_each_other(&mut a, &mut b, &mut interval, tick_s).await;
    let a_entity = a.entity().expect("A welcomed");
    let b_entity = b.entity().expect("B welcomed");
    assert!(in_zone(&zones_0, 0, a_entity).await.flatten().is_some());
    let handed_out = common::counter("mmo_relay_events_total", &[("event", "handed_out")]);

    // East into zone 1 (the other process), then idle, then west back into zone 0.
    let mut requests = Vec::new();
    let mut b_lost_a = 0;
    let mut a_lost_b = 0;
    let mut seen_in_zone_1 = false;
    for i in 0..330 {
        interval.tick().await;
        let input = match i {
            0..120 => east,
            120..165 => idle,
            165..285 => west,
            _ => idle,
        };
        a.tick(input, tick_s);
        b.tick(idle, tick_s);
        if i % 8 == 0 && a.client.state() == ClientState::Active {
            requests.push(
                a.client
                    .session_mut()
                    .inventory_op(InventoryOp::Swap { a: 0, b: 1 })
                    .expect("active"),
            );
        }
        if !b.sees(a_entity) {
            b_lost_a += 1;
        }
        if !a.sees(b_entity) {
            a_lost_b += 1;
        }
        if i == 150 {
            let there = in_zone(&zones_1, 1, a_entity).await.flatten();
            seen_in_zone_1 = there.is_some();
            assert!(
                in_zone(&zones_0, 0, a_entity).await.flatten().is_none(),
                "A is in one process only"
            );
        }
    }
    for _ in 0..15 {
        interval.tick().await;
        a.tick(idle, tick_s);
        b.tick(idle, tick_s);
    }
    assert!(seen_in_zone_1, "A's session ran in the second zone process");
    let handed_out_now = common::counter("mmo_relay_events_total", &[("event", "handed_out")]);
    assert!(
        handed_out_now >= handed_out + 2,
        "two handoffs between processes: {handed_out} -> {handed_out_now}, refused {}, unanswered {}, position {}",
        common::counter("mmo_relay_events_total", &[("event", "handoff_refused")]),
        common::counter("mmo_relay_events_total", &[("event", "handoff_unanswered")]),
        a.position_m()
    );
    let a_position = a.position_m();
    assert!(
        a_position.x < 0.0,
        "A walked back into zone 0: {a_position}"
    );
    let server_a = in_zone(&zones_0, 0, a_entity)
        .await
        .flatten()
        .expect("A's session is back in the first process");
    // Every input she sent on the way reached a zone: none had to be skipped over (the
    // old process forwards what reaches it during a handoff, and the new one keeps
    // datagrams that overtake the player).
    let skipped = zones_0
        .inspect_zone(ZoneId(0), move |z, ids| {
            ids.iter()
                .find(|id| z.connection(**id).and_then(|c| c.entity()) == Some(a_entity))
                .and_then(|id| z.connection(*id))
                .map(|c| c.stats().inputs_skipped)
        })
        .await
        .flatten();
    assert_eq!(skipped, Some(0), "inputs skipped over by A's session");
    assert!(
        (server_a.position_m - a_position).length() < 1e-3,
        "server {} vs predicted {a_position}",
        server_a.position_m
    );
    assert_eq!(a.client.state(), ClientState::Active, "A stayed connected");
    let stats = a.client.session().stats();
    assert_eq!(
        stats.corrections, 0,
        "A's prediction agreed with both processes"
    );
    assert_eq!(stats.snapshots_undecodable, 0);
    assert_eq!(
        b_lost_a, 0,
        "B saw A in every frame, across the process border"
    );
    assert_eq!(a_lost_b, 0, "A saw B in every frame");
    // Every inventory request was answered exactly once, through both processes.
    let mut answered: Vec<u32> = a
        .events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::InventoryResult(r) => Some(r.request),
            _ => None,
        })
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, requests, "each request answered once");

    // A leaves: the first process ends its session, B is told.
    a.client.disconnect(Duration::from_secs(2)).await;
    assert!(
        sees_leave_within_a_second(&mut b, a_entity, &mut interval, tick_s).await,
        "B got A's leave within a second"
    );
    gateway.shutdown(Duration::from_secs(1)).await;
    zones_0.shutdown(Duration::from_secs(2)).await;
    zones_1.shutdown(Duration::from_secs(2)).await;
}

/// Two zone processes split the border world over one in-memory store (a shared database).
/// Alice walks into zone 1, run by the second process, and logs in again: the new
/// connection lands in zone 0's process, which kicks her older session in the other process
/// through the account's fleet-wide presence and loads her character only after that
/// session's logout save committed (the store holds the commit back for a while): she
/// starts where she stood, the older client hears `duplicate_login`, and her presence key
/// is gone once she logs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_login_closes_the_session_in_another_zone_process_and_starts_from_its_save() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    let Some(redis_url) = service_url("MMO_TEST_REDIS_URL") else {
        return;
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        relogin_across_processes(url, redis_url, SlowStore::No),
    )
    .await
    .expect("finished within 60 s");
}

/// Ticks `players` idle until each is welcomed and has its bag (at most 10 s).
async fn until_ready(
    players: &mut [&mut Player],
    interval: &mut tokio::time::Interval,
    tick_s: f32,
) {
    for _ in 0..300 {
        interval.tick().await;
        for p in players.iter_mut() {
            p.tick(MoveInput::default(), tick_s);
        }
        if players
            .iter()
            .all(|p| p.entity().is_some() && p.client.session().inventory().is_some())
        {
            return;
        }
    }
    panic!("players not welcomed");
}

/// Two zone processes and a store whose commits of the older session's logout save are held
/// back longer than the 3 s after which a login would take an unreleased key over: the
/// key is marked as closing, so the new login is refused (`service_unavailable`, "still
/// being saved") instead of loading a character the store has not written yet; once the
/// store commits, Alice logs in again where she stood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_is_refused_while_the_older_session_is_still_being_saved() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    let Some(redis_url) = service_url("MMO_TEST_REDIS_URL") else {
        return;
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        relogin_across_processes(url, redis_url, SlowStore::Yes),
    )
    .await
    .expect("finished within 60 s");
}

/// The border world split between two zone processes (zone 0 and zone 1) over one
/// in-memory store (a shared database) saving every `save_interval`, a gateway, and a
/// ticker at the zones' rate.
struct SplitWorld {
    relay: RelaySettings,
    /// What the zone processes run with (zone 1's again after it died).
    config: ServerConfig,
    store: std::sync::Arc<mmo_net::persist::MemoryStore>,
    zones_0: ZoneProcess,
    zones_1: ZoneProcess,
    gateway: GatewayProcess,
    trust: ServerTrust,
    zone: ZoneConfig,
    interval: tokio::time::Interval,
    tick_s: f32,
}

async fn split_world(url: &str, tag: &str, save_interval: Duration) -> SplitWorld {
    common::install_recorder();
    let relay = settings(url, tag);
    let (mut config, trust, zone) = config();
    let store = std::sync::Arc::new(mmo_net::persist::MemoryStore::new(
        common::character_template(&zone),
    ));
    config.store = Some(store.clone());
    config.save_interval = save_interval;
    let running = |zone: u16| {
        ZoneProcess::start(
            &config,
            RelaySettings {
                zones: Some(vec![zone]),
                ..relay.clone()
            },
        )
    };
    let zones_0 = running(0).await.unwrap();
    let zones_1 = running(1).await.unwrap();
    let gateway = GatewayProcess::start(&config, relay.clone()).await.unwrap();
    let tick = Duration::from_micros(zone.tick_rate.tick_us());
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    SplitWorld {
        relay,
        config,
        store,
        zones_0,
        zones_1,
        gateway,
        trust,
        zone,
        interval,
        tick_s: tick.as_secs_f32(),
    }
}

/// The decision record of the one handoff of `world` (`RELAY_FORMAT.md` section 5,
/// "Deciding").
async fn the_handoff_record(redis_url: &str, world: &str) -> String {
    let mut redis = redis::Client::open(redis_url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let records: Vec<String> = redis::cmd("KEYS")
        .arg(format!("mmo:{world}:transfer:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "one handoff: {records:?}");
    redis::cmd("GET")
        .arg(&records[0])
        .query_async(&mut redis)
        .await
        .unwrap()
}

/// Whether the store holds the logout save's commit past the takeover delay.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SlowStore {
    No,
    Yes,
}

async fn relogin_across_processes(url: String, redis_url: String, slow: SlowStore) {
    // No periodic save: only the older session's logout save can carry her position.
    let SplitWorld {
        relay,
        config: _,
        store,
        zones_0,
        zones_1,
        gateway,
        trust,
        zone,
        mut interval,
        tick_s,
    } = split_world(&url, "relogin", Duration::from_secs(3600)).await;
    let kicked_before = common::counter("mmo_relay_events_total", &[("event", "presence_kicked")]);
    let key = format!("mmo:{}:account:alice", relay.world);
    let mut redis = redis::Client::open(redis_url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    let mut old = connect(&gateway, trust, &zone, "a").await;
    until_ready(&mut [&mut old], &mut interval, tick_s).await;
    let east = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
    for _ in 0..150 {
        interval.tick().await;
        old.tick(east, tick_s);
        if old.position_m().x > 8.0 {
            break;
        }
    }
    for _ in 0..30 {
        interval.tick().await;
        old.tick(MoveInput::default(), tick_s);
    }
    let left_at = old.position_m();
    let entity = old.entity().expect("welcomed");
    assert!(
        in_zone(&zones_1, 1, entity).await.flatten().is_some(),
        "alice's session runs in the second process, at {left_at}"
    );
    assert_eq!(
        store.character_of("alice").expect("created").version,
        0,
        "nothing saved yet"
    );

    // The store holds its commit answers back for a second: the older session is closed
    // at once, but the new one waits for the commit of its logout save.
    store.set_hold_commits(true);
    let mut new = connect(&gateway, trust, &zone, "a").await;
    for _ in 0..45 {
        interval.tick().await;
        new.tick(MoveInput::default(), tick_s);
        old.tick(MoveInput::default(), tick_s);
    }
    assert!(
        old.events.iter().any(|e| matches!(
            e,
            ClientEvent::Disconnected {
                reason: DisconnectReason::DuplicateLogin,
                ..
            }
        )),
        "the older session was closed as a duplicate login: {:?}",
        old.events.last()
    );
    assert!(
        new.entity().is_none(),
        "the new session waits for the older one's logout save to commit"
    );
    if slow == SlowStore::Yes {
        // Past the 3 s a live older session would be taken over after.
        let mut refused = None;
        for _ in 0..150 {
            interval.tick().await;
            new.tick(MoveInput::default(), tick_s);
            refused = new.events.iter().find_map(|e| match e {
                ClientEvent::Disconnected { reason, message } => Some((*reason, message.clone())),
                _ => None,
            });
            if refused.is_some() {
                break;
            }
        }
        let (reason, message) = refused.expect("the new login is refused, not let in");
        assert_eq!(reason, DisconnectReason::ServiceUnavailable);
        assert!(message.contains("still being saved"), "{message}");
        assert!(
            new.entity().is_none(),
            "never welcomed with an unsaved character"
        );
        let held: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(
            held.as_deref().is_some_and(|v| v.ends_with("/closing")),
            "the older session's key is marked closing, not taken over: {held:?}"
        );
        // The store writes it; Alice tries again.
        assert!(store.release_commits() >= 1, "the logout save waited");
        store.set_hold_commits(false);
        new = connect(&gateway, trust, &zone, "a").await;
    } else {
        assert!(store.release_commits() >= 1, "the logout save waited");
        store.set_hold_commits(false);
    }
    until_ready(&mut [&mut new], &mut interval, tick_s).await;
    for _ in 0..10 {
        interval.tick().await;
        new.tick(MoveInput::default(), tick_s);
        old.tick(MoveInput::default(), tick_s);
    }
    assert!(
        (new.position_m() - left_at).length() < 0.05,
        "the new session starts at {} but alice stood at {left_at}",
        new.position_m()
    );
    assert!(
        common::counter("mmo_relay_events_total", &[("event", "presence_kicked")]) > kicked_before,
        "the kick went through the fleet's presence"
    );
    let new_entity = new.entity().expect("welcomed");
    assert!(
        in_zone(&zones_1, 1, new_entity).await.flatten().is_some(),
        "the new session was handed to the process running where she stood"
    );

    // She logs out: the process she is in releases her key once her save is committed.
    new.client.disconnect(Duration::from_secs(2)).await;
    let mut held: Option<String> = Some(String::new());
    for _ in 0..50 {
        held = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        if held.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        held, None,
        "alice's presence key is released after her logout"
    );
    assert!(
        store.character_of("alice").expect("saved").version >= 2,
        "both sessions' logouts were saved"
    );
    gateway.shutdown(Duration::from_secs(1)).await;
    zones_0.shutdown(Duration::from_secs(2)).await;
    zones_1.shutdown(Duration::from_secs(2)).await;
}

/// A presence key naming a session nobody runs any more (its zone process died with it):
/// a login of that account waits for the kick's answer for 3 s, takes the key over and
/// plays; the key names the new session then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_takes_over_a_presence_key_that_nobody_releases() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    let Some(redis_url) = service_url("MMO_TEST_REDIS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        common::install_recorder();
        let relay = settings(&url, "takeover");
        let (config, trust, zone) = config();
        let zones = ZoneProcess::start(&config, relay.clone()).await.unwrap();
        let gateway = GatewayProcess::start(&config, relay.clone()).await.unwrap();
        let key = format!("mmo:{}:account:alice", relay.world);
        let mut redis = redis::Client::open(redis_url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let stale = "00000000deadbeef:1";
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(stale)
            .arg("PX")
            .arg(60_000)
            .query_async(&mut redis)
            .await
            .unwrap();
        let takeovers =
            common::counter("mmo_relay_events_total", &[("event", "presence_takeover")]);
        let started = std::time::Instant::now();
        let tick = Duration::from_micros(zone.tick_rate.tick_us());
        let mut interval = tokio::time::interval(tick);
        let mut alice = connect(&gateway, trust, &zone, "a").await;
        until_ready(&mut [&mut alice], &mut interval, tick.as_secs_f32()).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(2_900),
            "the login waited for the older session's release first: {waited:?}"
        );
        assert!(
            common::counter("mmo_relay_events_total", &[("event", "presence_takeover")])
                > takeovers,
            "counted as a takeover"
        );
        let held: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        let held = held.expect("the key names alice's session");
        assert_ne!(held, stale);
        assert!(
            held.starts_with(&format!("{:016x}:", gateway.id())),
            "the key names a connection of the gateway: {held}"
        );
        alice.client.disconnect(Duration::from_secs(2)).await;
        gateway.shutdown(Duration::from_secs(1)).await;
        zones.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("finished within 60 s");
}

/// A handoff whose receiving zone process is dead (dropped without giving anything back,
/// as after `kill -9`): the sender resends it for 2 s, then records it aborted in the
/// directory (nobody claimed it), keeps the player, and closes her with
/// `service_unavailable`, saving her where she crossed; the dead process can no longer
/// take her. Once another process runs zone 1, she logs in again from that save with her
/// bag, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_to_a_dead_zone_process_is_aborted_and_the_player_is_saved_where_she_crossed() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    let Some(redis_url) = service_url("MMO_TEST_REDIS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let SplitWorld {
            relay,
            config,
            store,
            zones_0,
            zones_1,
            gateway,
            trust,
            zone,
            mut interval,
            tick_s,
        } = split_world(&url, "dead-receiver", Duration::from_secs(1)).await;
        let kept_before = common::counter("mmo_relay_events_total", &[("event", "handoff_kept")]);

        // Alice walks to just before the border (x = 0) and stands through a save.
        let mut alice = connect(&gateway, trust, &zone, "a").await;
        until_ready(&mut [&mut alice], &mut interval, tick_s).await;
        let bag = alice.client.session().inventory().cloned();
        let east = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        for _ in 0..150 {
            interval.tick().await;
            alice.tick(east, tick_s);
            if alice.position_m().x > -1.5 {
                break;
            }
        }
        for _ in 0..60 {
            interval.tick().await;
            alice.tick(MoveInput::default(), tick_s);
        }
        let stood_at = alice.position_m();
        let saved = store.character_of("alice").expect("saved every second");
        assert!(
            (saved.position_m - stood_at).length() < 0.05 && stood_at.x < 0.0,
            "saved where she stands, in zone 0: {} vs {stood_at}",
            saved.position_m
        );

        // The process of zone 1 dies; she walks across the border into its zone.
        drop(zones_1);
        let mut ended = None;
        for _ in 0..200 {
            interval.tick().await;
            alice.tick(east, tick_s);
            ended = alice.events.iter().find_map(|e| match e {
                ClientEvent::Disconnected { reason, .. } => Some(*reason),
                _ => None,
            });
            if ended.is_some() {
                break;
            }
        }
        assert_eq!(
            ended,
            Some(DisconnectReason::ServiceUnavailable),
            "the sender kept her and closed her: {:?}",
            alice.events.last()
        );
        assert!(
            common::counter("mmo_relay_events_total", &[("event", "handoff_kept")]) > kept_before,
            "counted as kept"
        );
        assert_eq!(
            the_handoff_record(&redis_url, &relay.world).await,
            "aborted"
        );

        // Saved by the sender as she logged out: where she crossed, past where she stood.
        let mut after = None;
        for _ in 0..60 {
            interval.tick().await;
            after = store
                .character_of("alice")
                .filter(|r| r.version > saved.version);
            if after.is_some() {
                break;
            }
        }
        let after = after.expect("a logout save by the sender within 2 s");
        assert!(
            after.position_m.x > stood_at.x + 1.0,
            "saved where she crossed: {} (stood at {stood_at})",
            after.position_m
        );

        // Another process takes zone 1 once the dead one's lease expired; she comes back
        // from the sender's save.
        let mut zones_1 = None;
        for _ in 0..100 {
            let started = ZoneProcess::start(
                &config,
                RelaySettings {
                    zones: Some(vec![1]),
                    ..relay.clone()
                },
            )
            .await;
            if let Ok(process) = started {
                zones_1 = Some(process);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let zones_1 = zones_1.expect("zone 1 taken over within 10 s");
        let mut again = connect(&gateway, trust, &zone, "a").await;
        until_ready(&mut [&mut again], &mut interval, tick_s).await;
        assert!(
            (again.position_m() - after.position_m).length() < 0.05,
            "back from the sender's save: {} vs {}",
            again.position_m(),
            after.position_m
        );
        assert_eq!(
            again.client.session().inventory().cloned(),
            bag,
            "her bag, once"
        );
        again.client.disconnect(Duration::from_secs(2)).await;
        gateway.shutdown(Duration::from_secs(1)).await;
        zones_0.shutdown(Duration::from_secs(2)).await;
        zones_1.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("finished within 60 s");
}

/// Shards and lanes (`mmo_net::shard`): one zone process runs both zones of the border
/// world (their shard 0) and two spares wait; the gateway's cap is one player per shard.
/// Alice lands on shard 0 of the home zone; Bob, past the cap, makes the gateway ask for
/// lane 1, the spares take zone 0's and zone 1's shard 1, and Bob starts on the first.
/// Bob walks east and stays in his lane: his session runs on zone 1's shard 1, not in the
/// first process, and across the border the two lanes never see each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_player_past_the_shard_cap_starts_a_new_lane_and_keeps_it_across_zones() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    let Some(redis) = service_url("MMO_TEST_REDIS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), shards(url, redis))
        .await
        .expect("finished within 60 s");
}

/// Reads the fresh shard loads until `want` (zone, shard) pairs are all there (at most
/// 10 s).
async fn until_shards_run(redis: &str, world: &str, want: &[(u16, u16)]) {
    let client = redis::Client::open(redis).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    for _ in 0..100 {
        let loads = mmo_net::relay::shard_loads::read_loads(&mut connection, world)
            .await
            .unwrap();
        if want.iter().all(|&(zone, shard)| {
            loads
                .iter()
                .any(|l| (l.shard.zone, l.shard.shard) == (zone, shard))
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("shards {want:?} not running in 10 s");
}

async fn shards(url: String, redis: String) {
    common::install_recorder();
    let relay = settings(&url, "shards");
    let (config, trust, zone) = config();
    let main = ZoneProcess::start(&config, relay.clone()).await.unwrap();
    assert_eq!(main.zone_labels(), ["0", "1"]);
    let spare = || {
        let config = config.clone();
        let relay = RelaySettings {
            take_free_zone: true,
            ..relay.clone()
        };
        tokio::spawn(async move { ZoneProcess::start(&config, relay).await.unwrap() })
    };
    let spares = [spare(), spare()];
    let gateway = GatewayProcess::start(
        &config,
        RelaySettings {
            shard_cap: Some(1),
            ..relay.clone()
        },
    )
    .await
    .unwrap();
    until_shards_run(&redis, &relay.world, &[(0, 0), (1, 0)]).await;

    let tick = Duration::from_micros(zone.tick_rate.tick_us());
    let tick_s = tick.as_secs_f32();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let idle = MoveInput::default();
    let new_shard =
        |outcome| common::counter("mmo_shard_placements_total", &[("outcome", outcome)]);
    let (under_before, new_before) = (new_shard("under_cap"), new_shard("new_shard"));
    let mut a = connect(&gateway, trust, &zone, "a").await;
    let started = std::time::Instant::now();
    let mut b = connect(&gateway, trust, &zone, "b").await;
    for _ in 0..300 {
        if a.entity().is_some() && b.entity().is_some() {
            break;
        }
        interval.tick().await;
        a.tick(idle, tick_s);
        b.tick(idle, tick_s);
    }
    let (a_entity, b_entity) = (
        a.entity().expect("A welcomed"),
        b.entity().expect("B welcomed"),
    );
    println!(
        "B (past the cap) welcomed {} ms after connecting on a new shard",
        started.elapsed().as_millis()
    );
    assert_eq!(
        new_shard("under_cap"),
        under_before + 1,
        "A placed under the cap"
    );
    assert_eq!(
        new_shard("new_shard"),
        new_before + 1,
        "B placed on a new shard"
    );
    // The spares took lane 1: zone 0's shard 1 first (the home zone), then zone 1's.
    let mut taken = Vec::new();
    for spare in spares {
        taken.push(
            tokio::time::timeout(Duration::from_secs(10), spare)
                .await
                .expect("each spare took a shard within 10 s")
                .unwrap(),
        );
    }
    taken.sort_by_key(ZoneProcess::zone_labels);
    let [shard_0_1, shard_1_1] = <[ZoneProcess; 2]>::try_from(taken).unwrap();
    assert_eq!(shard_0_1.zone_labels(), ["0.1"]);
    assert_eq!(shard_1_1.zone_labels(), ["1.1"]);
    // Zone 0's shard 1 is instance 2 of the 2-zone world, zone 1's is instance 3.
    assert!(
        in_zone(&main, 0, a_entity).await.flatten().is_some(),
        "A on shard 0"
    );
    assert!(
        in_zone(&shard_0_1, 2, b_entity).await.flatten().is_some(),
        "B on shard 1"
    );
    until_shards_run(&redis, &relay.world, &[(0, 1), (1, 1)]).await;
    // Every process reads the loads each second: let the lanes learn that 1.1 runs.
    for _ in 0..45 {
        interval.tick().await;
        a.tick(idle, tick_s);
        b.tick(idle, tick_s);
    }
    let mut saw_each_other = 0;

    // Bob walks east into zone 1: lane 1 runs there, so he goes to its shard 1.
    let east = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
    for i in 0..150 {
        interval.tick().await;
        a.tick(idle, tick_s);
        b.tick(if i < 120 { east } else { idle }, tick_s);
        if a.sees(b_entity) || b.sees(a_entity) {
            saw_each_other += 1;
        }
    }
    assert!(
        b.position_m().x > 0.0,
        "B walked into zone 1: {}",
        b.position_m()
    );
    assert!(
        in_zone(&shard_1_1, 3, b_entity).await.flatten().is_some(),
        "B's session runs on zone 1's shard 1"
    );
    assert!(
        in_zone(&main, 1, b_entity).await.flatten().is_none(),
        "not on zone 1's shard 0"
    );
    assert_eq!(
        saw_each_other, 0,
        "lanes do not see each other across the border either"
    );
    assert_eq!(b.client.state(), ClientState::Active, "B stayed connected");
    assert_eq!(b.client.session().stats().corrections, 0);

    gateway.shutdown(Duration::from_secs(1)).await;
    for process in [main, shard_0_1, shard_1_1] {
        process.shutdown(Duration::from_secs(2)).await;
    }
}

/// The gateways' placement against a real Redis, without QUIC: two gateways place 20
/// connections at once on a home zone whose shard 0 holds 5 sessions and shard 1 holds 8,
/// with a cap of 10, while a stand-in for the zone processes publishes each shard's
/// sessions as they arrive (its base plus the placements made on it). Exactly the 7 free
/// places are taken; the others make the gateways ask for lane 2 in every zone; a "spare"
/// starts shard 2 after 0.5 s and takes 10 more; the last 3 wait out the 3 s and go over
/// the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_placing_at_once_fill_each_shard_to_the_cap_and_ask_for_a_lane() {
    use mmo_net::relay::shard_placement::{Placed, ShardPlacement};
    let Some(redis) = service_url("MMO_TEST_REDIS_URL") else {
        return;
    };
    let world = format!("placement-{:08x}", rand_suffix());
    let client = redis::Client::open(redis.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let bases = std::sync::Arc::new(std::sync::Mutex::new(vec![
        ("0.0", 5u32),
        ("0.1", 8),
        ("1.0", 0),
    ]));
    // The zone processes' stand-in: every 100 ms, each shard's base plus the placements
    // recorded on it, stamped now. Like a zone, it counts a placement once it is
    // `REGISTER_MARGIN_MS` old (what the placement script assumes of a load).
    let publisher = {
        let mut connection = connection.clone();
        let world = world.clone();
        let bases = bases.clone();
        tokio::spawn(async move {
            loop {
                let placed: Vec<(String, f64)> = redis::cmd("ZRANGE")
                    .arg(format!("mmo:{world}:shard_placed:0"))
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut connection)
                    .await
                    .unwrap();
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis();
                #[allow(clippy::cast_precision_loss)] // ms since 1970: below 2^52.
                let counted_before_ms = (now_ms
                    - u128::from(mmo_net::relay::shard_placement::REGISTER_MARGIN_MS))
                    as f64;
                let entries = bases.lock().unwrap().clone();
                let mut write = redis::cmd("HSET");
                write.arg(format!("mmo:{world}:shard_loads"));
                for (field, base) in entries {
                    let shard = field.strip_prefix("0.").unwrap_or("-");
                    let on_it = placed
                        .iter()
                        .filter(|(m, at_ms)| {
                            m.split(':').next() == Some(shard) && *at_ms <= counted_before_ms
                        })
                        .count() as u32;
                    write.arg(field).arg(format!("{}|{now_ms}", base + on_it));
                }
                let () = write.query_async(&mut connection).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let gateways = [
        std::sync::Arc::new(
            ShardPlacement::connect(&redis, &world, 0, 2, 10)
                .await
                .unwrap(),
        ),
        std::sync::Arc::new(
            ShardPlacement::connect(&redis, &world, 0, 2, 10)
                .await
                .unwrap(),
        ),
    ];
    let placing: Vec<_> = (0..20)
        .map(|i| {
            let gateway = gateways[i % 2].clone();
            tokio::spawn(async move { gateway.place_shard().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A spare takes zone 0's shard 2, which the gateways asked for.
    let wanted: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("mmo:{world}:shards_wanted"))
        .query_async(&mut connection)
        .await
        .unwrap();
    bases.lock().unwrap().push(("0.2", 0));
    let mut placed = Vec::new();
    for p in placing {
        placed.push(p.await.unwrap());
    }
    publisher.abort();
    let count = |f: &dyn Fn(&Placed) -> bool| placed.iter().filter(|p| f(p)).count();
    assert_eq!(
        wanted.get("0").zip(wanted.get("1")),
        Some((&"3".to_owned(), &"3".to_owned())),
        "lane 2 asked for in every zone: {wanted:?}"
    );
    assert_eq!(count(&|p| *p == Placed::UnderCap(0)), 5, "{placed:?}");
    assert_eq!(count(&|p| *p == Placed::UnderCap(1)), 2, "{placed:?}");
    assert_eq!(count(&|p| *p == Placed::NewShard(2)), 10, "{placed:?}");
    assert_eq!(count(&|p| matches!(p, Placed::OverCap(_))), 3, "{placed:?}");
}

/// A shard nobody needs merges into another (`mmo_net::relay::shard_merge`): with a cap of
/// 4, four players fill shard 0 of the home zone and the fifth starts shard 1 on a spare;
/// two of the four leave, so shards 0 and 1 together hold 3, three quarters of the cap.
/// After the (here one-second) wait the fifth player is moved to shard 0 without losing
/// her connection, sees the two others there, the gateways' wanted count falls back to
/// one shard, and once the drain has been published for 4 s and three reads found the
/// shard empty, the spare's process says it is retired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_nobody_needs_merges_into_another_and_its_process_retires() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    let Some(redis) = service_url("MMO_TEST_REDIS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), merging(url, redis))
        .await
        .expect("finished within 60 s");
}

async fn merging(url: String, redis: String) {
    common::install_recorder();
    let relay = RelaySettings {
        shard_cap: Some(4),
        shard_merge_after: Duration::from_secs(1),
        ..settings(&url, "merge")
    };
    let (mut config, trust, zone) = config();
    config.authority = std::sync::Arc::new(
        StaticTokens::new()
            .with("a", "alice")
            .with("b", "bob")
            .with("c", "carol")
            .with("d", "dave")
            .with("e", "erin"),
    );
    let main = ZoneProcess::start(&config, relay.clone()).await.unwrap();
    let spare = {
        let config = config.clone();
        let relay = RelaySettings {
            take_free_zone: true,
            ..relay.clone()
        };
        tokio::spawn(async move { ZoneProcess::start(&config, relay).await.unwrap() })
    };
    let gateway = GatewayProcess::start(&config, relay.clone()).await.unwrap();
    until_shards_run(&redis, &relay.world, &[(0, 0), (1, 0)]).await;

    let tick = Duration::from_micros(zone.tick_rate.tick_us());
    let tick_s = tick.as_secs_f32();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let idle = MoveInput::default();
    let mut players: Vec<Player> = Vec::new();
    for token in ["a", "b", "c", "d", "e"] {
        let mut p = connect(&gateway, trust, &zone, token).await;
        for _ in 0..300 {
            if p.entity().is_some() {
                break;
            }
            interval.tick().await;
            p.tick(idle, tick_s);
            for other in &mut players {
                other.tick(idle, tick_s);
            }
        }
        assert!(p.entity().is_some(), "{token} welcomed");
        players.push(p);
    }
    let spare = tokio::time::timeout(Duration::from_secs(10), spare)
        .await
        .expect("the spare took shard 1 within 10 s")
        .unwrap();
    assert_eq!(spare.zone_labels(), ["0.1"]);
    let e_entity = players[4].entity().unwrap();
    let (a_entity, b_entity) = (players[0].entity().unwrap(), players[1].entity().unwrap());
    assert!(
        in_zone(&spare, 2, e_entity).await.flatten().is_some(),
        "E started on shard 1"
    );
    // C and D leave: shards 0 and 1 now hold 2 + 1 = 3, three quarters of the cap.
    let mut e = players.pop().unwrap();
    let d = players.pop().unwrap();
    let c = players.pop().unwrap();
    c.client.disconnect(Duration::from_secs(2)).await;
    d.client.disconnect(Duration::from_secs(2)).await;
    let mut retired_after_ticks = None;
    {
        let retired = spare.retired();
        tokio::pin!(retired);
        for i in 0..450 {
            tokio::select! {
                () = &mut retired, if retired_after_ticks.is_none() => retired_after_ticks = Some(i),
                _ = interval.tick() => {
                    e.tick(idle, tick_s);
                    for p in &mut players {
                        p.tick(idle, tick_s);
                    }
                    if retired_after_ticks.is_some() && e.sees(a_entity) && e.sees(b_entity) {
                        break;
                    }
                }
            }
        }
    }
    assert!(retired_after_ticks.is_some(), "the spare's process retired");
    assert!(
        in_zone(&main, 0, e_entity).await.flatten().is_some(),
        "E's session moved to shard 0"
    );
    assert!(
        e.sees(a_entity) && e.sees(b_entity),
        "E sees A and B on shard 0"
    );
    assert!(players[0].sees(e_entity), "A sees E");
    assert_eq!(
        e.client.state(),
        ClientState::Active,
        "E kept her connection"
    );
    assert_eq!(e.client.session().stats().corrections, 0);
    let wanted: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("mmo:{}:shards_wanted", relay.world))
        .query_async(
            &mut redis::Client::open(redis.as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(wanted.get("0").map(String::as_str), Some("1"), "{wanted:?}");

    spare.shutdown(Duration::from_secs(2)).await;
    gateway.shutdown(Duration::from_secs(1)).await;
    main.shutdown(Duration::from_secs(2)).await;
}

/// A `redis-server` of the test's own on a free port, killed when dropped.
struct OwnRedis {
    child: std::process::Child,
    url: String,
}

impl OwnRedis {
    /// Starts one (`None`: no `redis-server` installed, and services are not required).
    fn start() -> Option<OwnRedis> {
        let binary = installed_server("redis-server")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        Some(OwnRedis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        })
    }

    /// A connection once the server accepts them (at most 5 s).
    async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        for _ in 0..50 {
            if let Ok(c) = client.get_multiplexed_async_connection().await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("redis-server at {} did not accept a connection", self.url);
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The directory's connections reconnect by themselves: Redis drops every client
/// connection (`CLIENT KILL`) twice, 3 s apart, and the zone process keeps its leases
/// (renewed through new connections) instead of taking the failed renewals for a lost
/// zone after 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_process_keeps_its_leases_when_redis_drops_its_connections() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    let Some(own) = OwnRedis::start() else { return };
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut admin = own.connection().await;
        let relay = RelaySettings {
            redis_url: Some(own.url.clone()),
            ..settings(&url, "reconnect")
        };
        let (config, _, _) = config();
        let process = ZoneProcess::start(&config, relay.clone()).await.unwrap();
        let token = process.fencing_token(ZoneId(0)).unwrap();
        for _ in 0..2 {
            let killed: i64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .query_async(&mut admin)
                .await
                .unwrap();
            assert!(killed > 0, "the zone process's connections were dropped");
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        // 6 s after the first drop: past a lease's 5 s without renewal.
        let lost = tokio::time::timeout(Duration::from_millis(500), process.ownership_lost()).await;
        assert!(lost.is_err(), "the leases are still held: {lost:?}");
        let owner: Option<String> = redis::cmd("GET")
            .arg(format!("mmo:{}:zone:0:owner", relay.world))
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(owner, Some(format!("{:016x}:{token}", process.id())));
        let ttl_ms: i64 = redis::cmd("PTTL")
            .arg(format!("mmo:{}:zone:0:owner", relay.world))
            .query_async(&mut admin)
            .await
            .unwrap();
        assert!(
            ttl_ms > 3_000,
            "renewed within the last 2 s: {ttl_ms} ms left"
        );
        process.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("finished within 30 s");
}

/// A connection that presents a `Resume` nobody issued (or a broken one) is refused with a
/// reason, and the session whose place it might take plays on: a forged token is closed
/// `service_unavailable` after the gateway's 3 s opening wait (no zone process answers), a
/// `Resume` of another protocol version reaches a zone as a login and is refused
/// `protocol_mismatch`, one with a token over 64 bytes `protocol_violation`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_broken_resume_is_refused_and_the_real_session_plays_on() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(40), async {
        let relay = settings(&url, "forged-resume");
        let (config, trust, zone) = config();
        let ServerTrust::Pinned(pin) = trust else {
            panic!("the test pins the certificate");
        };
        let zones = ZoneProcess::start(&config, relay.clone()).await.unwrap();
        let gateway = GatewayProcess::start(&config, relay).await.unwrap();
        let mut alice = connect(&gateway, trust, &zone, "a").await;
        let tick = Duration::from_micros(zone.tick_rate.tick_us());
        let mut interval = tokio::time::interval(tick);
        while alice.entity().is_none() {
            interval.tick().await;
            alice.tick(MoveInput::default(), tick.as_secs_f32());
        }
        assert!(alice.client.session().can_resume(), "a token came");

        let resume = |protocol_version: u16, token_len: usize| {
            let mut token = vec![1u8];
            token.resize(token_len, 0x5a);
            let mut frame = Vec::new();
            mmo_core::control::encode_frame(
                &mmo_core::control::ClientControl::Resume {
                    protocol_version,
                    token,
                    received_bytes: 0,
                },
                &mut frame,
            )
            .unwrap();
            frame
        };
        // Before the forged `Resume` is sent: the gateway's 3 s count from its first sending.
        let started = std::time::Instant::now();
        let mut attempts = Vec::new();
        for frame in [
            resume(mmo_core::PROTOCOL_VERSION, 17),
            resume(mmo_core::PROTOCOL_VERSION + 1, 17),
            resume(mmo_core::PROTOCOL_VERSION, 65),
        ] {
            let (endpoint, connection) = common::raw_connection(gateway.local_addr(), pin).await;
            let (mut send, _recv) = connection.open_bi().await.expect("control stream");
            send.write_all(&frame).await.expect("written");
            attempts.push((endpoint, connection, send));
        }
        let applied_before = alice.client.session().stats().snapshots_applied;
        let mut codes = Vec::new();
        for (_, connection, _) in &attempts {
            // Alice plays meanwhile.
            let mut closed = Box::pin(common::close_code(connection, Duration::from_secs(8)));
            let code = loop {
                tokio::select! {
                    code = &mut closed => break code,
                    _ = interval.tick() => alice.tick(MoveInput::default(), tick.as_secs_f32()),
                }
            };
            codes.push((code, started.elapsed()));
        }
        assert_eq!(
            codes.iter().map(|(code, _)| *code).collect::<Vec<_>>(),
            vec![
                Some(u64::from(DisconnectReason::ServiceUnavailable.code())),
                Some(u64::from(DisconnectReason::ProtocolMismatch.code())),
                Some(u64::from(DisconnectReason::ProtocolViolation.code())),
            ],
            "forged, other version, token too long"
        );
        let forged_after = codes[0].1;
        assert!(
            forged_after >= Duration::from_secs(3) && forged_after < Duration::from_secs(6),
            "the forged one waited for the 3 s opening timeout, not {forged_after:?}"
        );
        assert_eq!(alice.client.state(), ClientState::Active, "Alice plays on");
        assert!(
            alice.client.session().stats().snapshots_applied > applied_before + 30,
            "her snapshots kept coming"
        );
        drop(attempts);
        alice.client.disconnect(Duration::from_secs(1)).await;
        gateway.shutdown(Duration::from_secs(1)).await;
        zones.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 40 s");
}
