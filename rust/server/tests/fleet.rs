//! The fleet roles as real processes: one `mmo-server --role zone` (or two splitting the
//! world's zones) and two `mmo-server --role gateway` sharing a data directory (JWT
//! secret, certificate, SQLite database) and a real NATS server. Players log in over a gateway's HTTP, play through its QUIC
//! endpoint, see each other across gateways, and hear why when processes stop.
//!
//! Needs `MMO_TEST_NATS_URL` and `MMO_TEST_REDIS_URL` (`ci/services.sh`; skipped without
//! them unless `MMO_REQUIRE_SERVICES=1`).

use std::time::Duration;

use mmo_core::control::DisconnectReason;
use mmo_core::session::client::ClientEvent;
use mmo_testkit::services::{installed_server, service_url};

mod common;

use common::process::{ServerProcess, ZoneRoleProcess, assert_stopped_cleanly};
use common::{TempDir, connect_client, wait_for_event_within as wait_for};

/// The NATS and Redis the fleet runs on, or `None` (the test is skipped).
fn fleet_services() -> Option<(String, String)> {
    Some((
        service_url("MMO_TEST_NATS_URL")?,
        service_url("MMO_TEST_REDIS_URL")?,
    ))
}

/// A zone process and two gateways of a fresh world sharing a fresh data directory, with
/// the dev accounts alice (pw1) and bob (pw2).
struct Fleet {
    _dir: TempDir,
    zone: ZoneRoleProcess,
    gateway_1: ServerProcess,
    gateway_2: ServerProcess,
    /// The zone process's arguments (to start a replacement).
    zone_args: Vec<String>,
}

/// The dev accounts every fleet process knows.
const FLEET_ENV: [(&str, &str); 1] = [("MMO_DEV_ACCOUNTS", "alice:pw1,bob:pw2,carol:pw3")];

impl Fleet {
    /// Starts the fleet; `zone_extra` are more arguments for the zone process.
    fn start(tag: &str, nats_url: &str, redis_url: &str, zone_extra: &[&str]) -> Fleet {
        Fleet::start_with(tag, nats_url, redis_url, zone_extra, &[])
    }

    /// [`Fleet::start`] with more arguments for the gateways too.
    fn start_with(
        tag: &str,
        nats_url: &str,
        redis_url: &str,
        zone_extra: &[&str],
        gateway_extra: &[&str],
    ) -> Fleet {
        let dir = TempDir::new(tag);
        let data = dir.path().join("data");
        let data = data.to_str().unwrap();
        let world = format!(
            "{tag}-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let args = |role: &'static str| {
            vec![
                "--role",
                role,
                "--nats-url",
                nats_url,
                "--redis-url",
                redis_url,
                "--world",
                world.as_str(),
                "--data-dir",
                data,
                "--http-addr",
                "127.0.0.1:0",
                "--quic-addr",
                "127.0.0.1:0",
            ]
        };
        let mut zone_args = args("zone");
        zone_args.extend_from_slice(zone_extra);
        // The zone process first: it creates the data directory's secret and database.
        let zone = ZoneRoleProcess::start(&zone_args, &FLEET_ENV, None);
        let mut gateway_args = args("gateway");
        gateway_args.extend_from_slice(gateway_extra);
        let gateway_1 = ServerProcess::start(&gateway_args, &FLEET_ENV, None);
        let gateway_2 = ServerProcess::start(&gateway_args, &FLEET_ENV, None);
        Fleet {
            zone_args: zone_args.iter().map(|a| (*a).to_owned()).collect(),
            _dir: dir,
            zone,
            gateway_1,
            gateway_2,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_processes_relay_players_to_one_zone_process() {
    let Some((url, redis_url)) = fleet_services() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(90), async {
        let Fleet {
            _dir,
            zone,
            gateway_1,
            gateway_2,
            ..
        } = Fleet::start("fleet", &url, &redis_url, &[]);
        assert!(
            zone.ready_line.contains("role=zone") && !zone.ready_line.contains("quic="),
            "{}",
            zone.ready_line
        );
        assert_ne!(gateway_1.quic, gateway_2.quic);
        assert_eq!(
            gateway_1.fingerprint, gateway_2.fingerprint,
            "one certificate"
        );

        // A zone process serves the operations routes only: players log in at gateways.
        let http = reqwest::Client::new();
        let zone_base = format!("http://{}", zone.http);
        assert_eq!(
            http.get(format!("{zone_base}/readyz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let zone_login = http
            .post(format!("{zone_base}/v1/login"))
            .json(&serde_json::json!({"username": "alice", "password": "pw1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(zone_login.status(), 404);

        // Alice logs in and plays through gateway 1, Bob through gateway 2.
        let alice_login = gateway_1.login("alice", "pw1").await;
        // Placement names the least loaded gateway (both are empty: either); any gateway
        // serves any player.
        assert!(
            [gateway_1.quic.to_string(), gateway_2.quic.to_string()]
                .contains(&alice_login.quic_addr),
            "{}",
            alice_login.quic_addr
        );
        // Its answer lists the other gateway to resume at (once both have refreshed their
        // registry entries, at most a second apart).
        let mut answer = alice_login.clone();
        for _ in 0..30 {
            if !answer.resume_addrs.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            answer = gateway_1.login("alice", "pw1").await;
        }
        let other = if answer.quic_addr == gateway_1.quic.to_string() {
            gateway_2.quic
        } else {
            gateway_1.quic
        };
        assert_eq!(
            answer.resume_addrs,
            vec![other.to_string()],
            "the login answer lists the other gateway for resumption"
        );
        let bob_login = gateway_2.login("bob", "pw2").await;
        let mut alice =
            connect_client(gateway_1.quic, gateway_1.fingerprint, &alice_login.token).await;
        let mut bob = connect_client(gateway_2.quic, gateway_2.fingerprint, &bob_login.token).await;
        let welcomed = |e: &ClientEvent| matches!(e, ClientEvent::Welcome { .. });
        let alice_entity = match wait_for(&mut alice, Duration::from_secs(10), welcomed).await {
            Some(ClientEvent::Welcome { entity_id, .. }) => entity_id,
            other => panic!("Alice not welcomed through gateway 1: {other:?}"),
        };
        assert!(
            wait_for(&mut bob, Duration::from_secs(10), welcomed)
                .await
                .is_some(),
            "Bob welcomed through gateway 2"
        );
        let sees_alice = wait_for(
            &mut bob,
            Duration::from_secs(10),
            |e| matches!(e, ClientEvent::EntityEntered { id, .. } if *id == alice_entity),
        )
        .await;
        assert!(sees_alice.is_some(), "Bob, on another gateway, sees Alice");

        let metrics = reqwest::get(format!("{zone_base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("mmo_relay_events_total{event=\"opened\"} 2"),
            "the zone process opened two relayed connections"
        );

        // Gateway 1 stops: Alice is told `ServerShutdown`; the zone process ends her
        // session, and Bob sees her leave.
        assert_stopped_cleanly(gateway_1.terminate(Duration::from_secs(15)), "gateway 1");
        let alice_end = wait_for(&mut alice, Duration::from_secs(5), |e| {
            matches!(e, ClientEvent::Disconnected { .. })
        })
        .await;
        assert!(
            matches!(
                alice_end,
                Some(ClientEvent::Disconnected {
                    reason: DisconnectReason::ServerShutdown,
                    ..
                })
            ),
            "{alice_end:?}"
        );
        let alice_left = wait_for(
            &mut bob,
            Duration::from_secs(5),
            |e| matches!(e, ClientEvent::EntityLeft { id } if *id == alice_entity),
        )
        .await;
        assert!(alice_left.is_some(), "Bob saw Alice leave");

        // The zone process stops: Bob hears `ServerShutdown` through gateway 2.
        assert_stopped_cleanly(zone.terminate(Duration::from_secs(20)), "the zone process");
        let bob_end = wait_for(&mut bob, Duration::from_secs(5), |e| {
            matches!(e, ClientEvent::Disconnected { .. })
        })
        .await;
        assert!(
            matches!(
                bob_end,
                Some(ClientEvent::Disconnected {
                    reason: DisconnectReason::ServerShutdown,
                    ..
                })
            ),
            "{bob_end:?}"
        );
        assert_stopped_cleanly(gateway_2.terminate(Duration::from_secs(15)), "gateway 2");
    })
    .await
    .expect("finished within 90 s");
}

#[test]
fn a_relay_role_without_nats_or_a_zone_role_without_redis_is_refused_at_start() {
    let output = common::server_command(&["--role", "gateway"])
        .output()
        .expect("runs mmo-server");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--nats-url"), "{stderr}");
    let output = common::server_command(&["--role", "zone", "--nats-url", "nats://127.0.0.1:1"])
        .output()
        .expect("runs mmo-server");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--redis-url") && stderr.contains("directory"),
        "{stderr}"
    );
}

/// Alice as a test plays her: logged in through a gateway, her bag as it was shown after
/// login, and where she stands after walking and standing.
struct Played {
    client: mmo_net::client::NetClient,
    bag: mmo_core::gameplay::messages::InventoryView,
    stood_at_m: glam::Vec3,
}

/// Logs Alice in through `gateway` and waits for her welcome and bag.
async fn alice_logs_in(
    gateway: &ServerProcess,
) -> (
    mmo_net::client::NetClient,
    mmo_core::gameplay::messages::InventoryView,
) {
    let login = gateway.login("alice", "pw1").await;
    let mut client = connect_client(gateway.quic, gateway.fingerprint, &login.token).await;
    assert!(
        wait_for(&mut client, Duration::from_secs(10), |e| matches!(
            e,
            ClientEvent::Welcome { .. }
        ))
        .await
        .is_some(),
        "Alice welcomed"
    );
    let bag = alice_bag(&mut client).await;
    (client, bag)
}

/// Walks `client` forward for `walk_ticks` ticks of 33 ms, then lets it stand for
/// `stand_ticks`, pumping it; no event on the way may be a disconnect.
async fn walk_forward(client: &mut mmo_net::client::NetClient, walk_ticks: u32, stand_ticks: u32) {
    let walk = mmo_core::input::MoveInput::from_controls(
        1.0,
        0.0,
        0.0,
        mmo_core::input::Buttons::default(),
    );
    let mut tick = tokio::time::interval(Duration::from_millis(33));
    for i in 0..walk_ticks + stand_ticks {
        tick.tick().await;
        client.pump();
        while let Some(e) = client.poll_event() {
            assert!(
                !matches!(e, ClientEvent::Disconnected { .. }),
                "still playing: {e:?}"
            );
        }
        client.send_input(if i < walk_ticks {
            walk
        } else {
            mmo_core::input::MoveInput::default()
        });
    }
}

/// Logs Alice in through `gateway`, waits for her welcome and bag, walks her forward for
/// `walk_ticks` ticks and lets her stand for `stand_ticks` (ticks of 33 ms).
async fn alice_walks(gateway: &ServerProcess, walk_ticks: u32, stand_ticks: u32) -> Played {
    let (mut client, bag) = alice_logs_in(gateway).await;
    walk_forward(&mut client, walk_ticks, stand_ticks).await;
    let stood_at_m = client
        .session()
        .predictor()
        .expect("a welcomed client predicts")
        .predicted()
        .position_m;
    assert!(
        stood_at_m.truncate().length() > 1.0,
        "Alice walked: {stood_at_m}"
    );
    Played {
        client,
        bag,
        stood_at_m,
    }
}

/// The bag shown to `client` after its login.
async fn alice_bag(
    client: &mut mmo_net::client::NetClient,
) -> mmo_core::gameplay::messages::InventoryView {
    match wait_for(client, Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::Inventory(_))
    })
    .await
    {
        Some(ClientEvent::Inventory(bag)) => bag,
        other => panic!("Alice's inventory after login: {other:?}"),
    }
}

/// Logs Alice in again through `gateway`: where she appears, and her bag.
async fn alice_returns(
    gateway: &ServerProcess,
) -> (
    mmo_core::entity::CharacterState,
    mmo_core::gameplay::messages::InventoryView,
) {
    let login = gateway.login("alice", "pw1").await;
    let mut again = connect_client(gateway.quic, gateway.fingerprint, &login.token).await;
    let welcome = wait_for(&mut again, Duration::from_secs(10), |e| {
        matches!(e, ClientEvent::Welcome { .. })
    })
    .await;
    let Some(ClientEvent::Welcome { spawn, .. }) = welcome else {
        panic!("Alice welcomed again: {welcome:?}");
    };
    let bag = alice_bag(&mut again).await;
    (spawn, bag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_whose_gateway_is_killed_logs_in_again_through_another_with_nothing_lost() {
    let Some((url, redis_url)) = fleet_services() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(90), async {
        let Fleet {
            _dir,
            zone,
            gateway_1,
            gateway_2,
            ..
        } = Fleet::start("fleet-kill", &url, &redis_url, &[]);
        let alice = alice_walks(&gateway_1, 30, 30).await;

        // Gateway 1 dies without a word; Alice logs in again through gateway 2 at once.
        gateway_1.kill_hard();
        let started = std::time::Instant::now();
        let (spawn, bag_after) = alice_returns(&gateway_2).await;
        let waited = started.elapsed();
        println!("welcomed again through gateway 2 {waited:?} after gateway 1 was killed");
        assert!(
            waited < Duration::from_secs(3),
            "back in the game within 3 s of the kill, not {waited:?}"
        );
        assert!(
            (spawn.position_m - alice.stood_at_m).length() < 0.05,
            "Alice continues where she stood: {} vs {}",
            spawn.position_m,
            alice.stood_at_m
        );
        assert_eq!(bag_after, alice.bag, "nothing lost or duplicated");
        assert_stopped_cleanly(zone.terminate(Duration::from_secs(20)), "the zone process");
        drop(gateway_2);
    })
    .await
    .expect("finished within 90 s");
}

/// Gateway 1 is killed with -9 under Alice while she plays. Her client notices the silence
/// and resumes the same session through gateway 2 (`WIRE_FORMAT.md` 8.10): no new login,
/// same entity, an inventory request she sent into the dead connection is answered once,
/// a chat line the zone process wrote into it meanwhile reaches her once, and she walks
/// on; a later login finds her bag unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_whose_gateway_is_killed_resumes_her_session_through_another_within_3_s() {
    let Some((url, redis_url)) = fleet_services() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(90), async {
        let Fleet {
            _dir,
            zone,
            gateway_1,
            gateway_2,
            ..
        } = Fleet::start("fleet-resume", &url, &redis_url, &[]);
        let Played {
            mut client, bag, ..
        } = alice_walks(&gateway_1, 30, 10).await;
        let entity = client.session().entity_id();
        assert!(
            client.session().can_resume(),
            "a fleet gives a resumption token"
        );
        // Bob plays through gateway 2; what he says after the kill goes into Alice's dead
        // connection and must reach her once, sent again at the resumption.
        let bob_login = gateway_2.login("bob", "pw2").await;
        let mut bob = connect_client(gateway_2.quic, gateway_2.fingerprint, &bob_login.token).await;
        assert!(
            wait_for(&mut bob, Duration::from_secs(10), |e| matches!(
                e,
                ClientEvent::Welcome { .. }
            ))
            .await
            .is_some(),
            "Bob welcomed"
        );
        let said = "said while Alice's gateway was dead";

        gateway_1.kill_hard();
        let killed = std::time::Instant::now();
        // She stands and plays on; a request goes into the dead connection.
        let request = client
            .session_mut()
            .inventory_op(mmo_core::gameplay::messages::InventoryOp::Move { from: 999, to: 0 })
            .expect("active");
        let mut tick = tokio::time::interval(Duration::from_millis(33));
        // Until Alice's zone process wrote Bob's line to her (her dead connection).
        bob.session_mut()
            .send_chat(mmo_core::control::ChatChannel::Global, None, said)
            .expect("Bob may chat");
        bob.pump();
        while client.server_silent_for() < Duration::from_secs(1) {
            bob.pump();
            tick.tick().await;
            client.pump();
            client.send_input(mmo_core::input::MoveInput::default());
            assert!(
                killed.elapsed() < Duration::from_secs(5),
                "the silence is noticed"
            );
        }
        client
            .resume(
                gateway_2.quic,
                "localhost",
                mmo_net::tls::ServerTrust::Pinned(gateway_2.fingerprint),
                &mmo_net::client::ConnectOptions::default(),
            )
            .await
            .expect("QUIC handshake with gateway 2");
        let mut answered = 0;
        let mut heard = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut resumed_after = None;
        while std::time::Instant::now() < deadline
            && (resumed_after.is_none() || answered == 0 || heard == 0)
        {
            tick.tick().await;
            client.pump();
            while let Some(e) = client.poll_event() {
                match e {
                    ClientEvent::Resumed => resumed_after = Some(killed.elapsed()),
                    ClientEvent::InventoryResult(r) if r.request == request => answered += 1,
                    ClientEvent::Chat { text, .. } if text == said => heard += 1,
                    ClientEvent::Welcome { .. }
                    | ClientEvent::Rejoined { .. }
                    | ClientEvent::Disconnected { .. } => panic!("the same session goes on: {e:?}"),
                    _ => {}
                }
            }
            client.send_input(mmo_core::input::MoveInput::default());
        }
        // A second answer to the request would come within a tick or two.
        let quiet = std::time::Instant::now() + Duration::from_secs(1);
        while std::time::Instant::now() < quiet {
            tick.tick().await;
            client.pump();
            while let Some(e) = client.poll_event() {
                match e {
                    ClientEvent::InventoryResult(r) if r.request == request => answered += 1,
                    ClientEvent::Chat { text, .. } if text == said => heard += 1,
                    _ => {}
                }
            }
            client.send_input(mmo_core::input::MoveInput::default());
        }
        let resumed_after = resumed_after.expect("resumed through gateway 2");
        println!("resumed through gateway 2 {resumed_after:?} after gateway 1 was killed");
        assert!(
            resumed_after < Duration::from_secs(3),
            "playing again within 3 s of the kill, not {resumed_after:?}"
        );
        assert_eq!(
            answered, 1,
            "the request sent into the dead connection, answered once"
        );
        assert_eq!(
            heard, 1,
            "Bob's line, written into the dead connection, heard once"
        );
        assert_eq!(client.session().entity_id(), entity, "the same entity");

        // She walks on: the zone process takes her inputs and she applies its snapshots.
        let applied_before = client.session().stats().snapshots_applied;
        let at_m = client
            .session()
            .predictor()
            .expect("predicting")
            .predicted()
            .position_m;
        walk_forward(&mut client, 30, 10).await;
        let stats = client.session().stats();
        assert!(
            stats.snapshots_applied > applied_before + 20,
            "snapshots through gateway 2: {} then {}",
            applied_before,
            stats.snapshots_applied
        );
        let walked_to_m = client
            .session()
            .predictor()
            .expect("predicting")
            .predicted()
            .position_m;
        assert!(
            (walked_to_m - at_m).truncate().length() > 1.0,
            "she walked on"
        );
        let server_at_m = client
            .session()
            .last_owner_state()
            .expect("the server's word on her")
            .position_m;
        assert!(
            (server_at_m - walked_to_m).length() < 0.5,
            "the server agrees: {server_at_m} vs {walked_to_m}"
        );
        client.disconnect(Duration::from_secs(2)).await;
        bob.disconnect(Duration::from_secs(2)).await;
        let (_, bag_after) = alice_returns(&gateway_2).await;
        assert_eq!(bag_after, bag, "nothing lost or duplicated");
        assert_stopped_cleanly(zone.terminate(Duration::from_secs(20)), "the zone process");
        drop(gateway_2);
    })
    .await
    .expect("finished within 90 s");
}

/// The zone process runs with `--zones auto` and a second one waits as a spare; the first
/// is killed with -9. Its client stays connected: the gateway notices the silence, the
/// spare takes the zone once the dead process's lease expires, and the gateway has Alice's
/// session restarted there from the last save (`Rejoined`): she plays on, nothing
/// duplicated; a later login finds the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_process_killed_with_kill_9_is_replaced_by_a_spare_and_its_players_play_on_from_the_last_save()
 {
    let Some((url, redis_url)) = fleet_services() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(90), async {
        let fleet = Fleet::start(
            "fleet-zone-kill",
            &url,
            &redis_url,
            &["--save-interval-s", "1", "--zones", "auto"],
        );
        let Fleet {
            _dir,
            zone,
            gateway_1,
            zone_args,
            ..
        } = fleet;
        // A spare with the same arguments finds the world's one zone taken and waits.
        let args: Vec<&str> = zone_args.iter().map(String::as_str).collect();
        let spare = common::process::Pending::spawn(&args, &FLEET_ENV, None);
        // Walking for a second, then standing 2.5 s: saves every second record where.
        let mut alice = alice_walks(&gateway_1, 30, 75).await;
        let entity_before = alice.client.session().entity_id();
        assert!(
            spare.still_waiting(Duration::from_millis(100)),
            "the spare does not run the zone while its process lives"
        );

        // The zone process dies without a word: the gateway notices its silence and has
        // the session restarted by the spare once it owns the zone.
        zone.kill_hard();
        let killed = std::time::Instant::now();
        // A request sent once the gateway began the restart (3 s of silence) waits for
        // the new process and is answered there, after `Rejoined`.
        let mut request = None;
        let mut events = Vec::new();
        // Her gateway lives: QUIC keeps answering her pings, so a client that resumes
        // after a second of silence (the Unreal plugin) leaves her connection alone.
        let mut most_silent = Duration::ZERO;
        while killed.elapsed() < Duration::from_secs(10) {
            alice.client.pump();
            most_silent = most_silent.max(alice.client.server_silent_for());
            while let Some(e) = alice.client.poll_event() {
                events.push((killed.elapsed(), e));
            }
            if request.is_none() && killed.elapsed() > Duration::from_millis(3300) {
                let op = mmo_core::gameplay::messages::InventoryOp::Move { from: 999, to: 0 };
                request = Some(alice.client.session_mut().inventory_op(op).expect("sent"));
            }
            let answered = events.iter().any(
                |(_, e)| matches!(e, ClientEvent::InventoryResult(r) if Some(r.request) == request),
            );
            if answered
                || events
                    .iter()
                    .any(|(_, e)| matches!(e, ClientEvent::Disconnected { .. }))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let Some((
            rejoined_after,
            ClientEvent::Rejoined {
                entity_id, spawn, ..
            },
        )) = events
            .iter()
            .find(|(_, e)| matches!(e, ClientEvent::Rejoined { .. }))
            .cloned()
        else {
            panic!("Alice's session restarted: {events:?}");
        };
        println!(
            "client rejoined {rejoined_after:?} after the zone process was killed; \
             longest silence of her connection meanwhile {most_silent:?}"
        );
        assert!(
            most_silent < Duration::from_millis(800),
            "the live gateway kept answering: silent for {most_silent:?} at most"
        );
        assert!(
            rejoined_after < Duration::from_secs(8),
            "playing again within 8 s of the kill, not {rejoined_after:?}"
        );
        assert_ne!(
            Some(entity_id),
            entity_before,
            "a new entity in the new process"
        );
        assert_eq!(alice.client.session().entity_id(), Some(entity_id));
        assert!(
            (spawn.position_m - alice.stood_at_m).length() < 0.05,
            "from the last save: {} vs {}",
            spawn.position_m,
            alice.stood_at_m
        );
        let after_rejoin: Vec<&ClientEvent> = events
            .iter()
            .skip_while(|(_, e)| !matches!(e, ClientEvent::Rejoined { .. }))
            .map(|(_, e)| e)
            .collect();
        let answer = after_rejoin.iter().find_map(|e| match e {
            ClientEvent::InventoryResult(r) if Some(r.request) == request => Some(r),
            _ => None,
        });
        assert!(
            answer.is_some_and(|r| r
                .refusal
                .as_ref()
                .is_some_and(|f| f.kind == "inventory_bad_slot")),
            "the request sent during the restart answered by the new process: {events:?}"
        );
        let bag = after_rejoin.iter().find_map(|e| match e {
            ClientEvent::Inventory(bag) => Some(bag.clone()),
            _ => None,
        });
        assert_eq!(bag.as_ref(), Some(&alice.bag), "nothing lost or duplicated");
        let replacement =
            tokio::task::spawn_blocking(move || spare.zone_ready(Duration::from_secs(20)))
                .await
                .expect("joined")
                .expect("the spare runs the zone");

        // She walks on in the new process: its snapshots reach her (it waited for her
        // reset), they acknowledge her inputs, and her position moves.
        let applied_before = alice.client.session().stats().snapshots_applied;
        walk_forward(&mut alice.client, 45, 0).await;
        let session = alice.client.session();
        assert!(
            session.stats().snapshots_applied > applied_before + 10,
            "snapshots of the new process applied: {} then {}",
            applied_before,
            session.stats().snapshots_applied
        );
        let predictor = session.predictor().expect("predicting");
        assert!(
            predictor.last_acked_seq() + 30 > predictor.next_seq(),
            "the new process acknowledges her inputs: acked {} of {}",
            predictor.last_acked_seq(),
            predictor.next_seq()
        );
        assert!(
            (predictor.predicted().position_m - spawn.position_m).length() > 1.0,
            "she walked on from {}",
            spawn.position_m
        );
        alice.client.disconnect(Duration::from_secs(2)).await;

        // A later login finds her bag as it was: nothing duplicated by the restart.
        let (_, bag_after) = alice_returns(&gateway_1).await;
        assert_eq!(bag_after, alice.bag, "nothing lost or duplicated");
        // A spare that is told to stop while it waits stops at once.
        let idle_spare = common::process::Pending::spawn(&args, &FLEET_ENV, None);
        assert!(idle_spare.still_waiting(Duration::from_secs(1)));
        let asked = std::time::Instant::now();
        assert_stopped_cleanly(
            idle_spare.terminate(Duration::from_secs(5)),
            "a waiting spare (SIGTERM)",
        );
        println!("waiting spare stopped {:?} after SIGTERM", asked.elapsed());
        assert_stopped_cleanly(
            replacement.terminate(Duration::from_secs(20)),
            "the replacement",
        );
    })
    .await
    .expect("finished within 90 s");
}

/// `args` as the `&str`s the process helpers take.
fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Two zone processes split a two-zone world (`[world] zone_columns = 2`: the border is at
/// x = 0, where characters appear, in zone 1). Alice walks west into zone 0, run by the
/// other process, without reconnecting; the process she left is killed with -9 and she
/// plays on; her logout is saved by the process she is in, and after a replacement takes
/// zone 1 she logs in again where she stood, her bag unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_in_another_zone_process_plays_on_when_the_one_she_left_is_killed() {
    let Some((url, redis_url)) = fleet_services() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(90), async {
        let split = SplitWorld::new("two-zones", &url, &redis_url);
        // Zone 1 (where characters appear) first: it creates the secret and the database.
        let zone_1_args = split.zone_args("1");
        let zone_1 = ZoneRoleProcess::start(&refs(&zone_1_args), &FLEET_ENV, None);
        let zone_0 = ZoneRoleProcess::start(&refs(&split.zone_args("0")), &FLEET_ENV, None);
        let gateway = ServerProcess::start(&refs(&split.args("gateway")), &FLEET_ENV, None);

        let (mut client, bag) = alice_logs_in(&gateway).await;
        // Forward, facing -X.
        let west = mmo_core::input::MoveInput::from_controls(
            1.0,
            0.0,
            std::f32::consts::PI,
            mmo_core::input::Buttons::default(),
        );
        let idle = mmo_core::input::MoveInput::default();
        let mut events = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(33));
        // West for 3 s, then stand 1.5 s (zone 0's process saves her every second).
        for i in 0..135 {
            tick.tick().await;
            client.pump();
            while let Some(e) = client.poll_event() {
                events.push(e);
            }
            client.send_input(if i < 90 { west } else { idle });
        }
        let stood_at_m = client
            .session()
            .predictor()
            .expect("welcomed")
            .predicted()
            .position_m;
        assert!(
            stood_at_m.x < -5.0,
            "Alice walked into zone 0: {stood_at_m}"
        );

        // The process she left dies; hers goes on (more than the gateway's 3 s of silence).
        zone_1.kill_hard();
        let applied_before = client.session().stats().snapshots_applied;
        for _ in 0..120 {
            tick.tick().await;
            client.pump();
            while let Some(e) = client.poll_event() {
                events.push(e);
            }
            client.send_input(idle);
        }
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, ClientEvent::Disconnected { .. })),
            "Alice was never disconnected: {:?}",
            events.last()
        );
        let stats = client.session().stats();
        assert_eq!(
            stats.corrections, 0,
            "her prediction agreed with both processes"
        );
        assert!(
            stats.snapshots_applied > applied_before + 60,
            "snapshots kept coming from zone 0's process: {applied_before} -> {}",
            stats.snapshots_applied
        );
        client.disconnect(Duration::from_secs(2)).await;

        // A replacement takes zone 1 once the dead process's lease expires; Alice logs in
        // again (at zone 1's process, which hands her to zone 0's) where she stood.
        let replacement = replacement_for(&zone_1_args).await;
        let (spawn, bag_after) = alice_returns(&gateway).await;
        assert!(
            (spawn.position_m - stood_at_m).length() < 0.05,
            "saved by zone 0's process where she stood: {} vs {stood_at_m}",
            spawn.position_m
        );
        assert_eq!(bag_after, bag, "nothing lost or duplicated");
        for process in [replacement, zone_0] {
            assert_stopped_cleanly(
                process.terminate(Duration::from_secs(20)),
                "the zone process",
            );
        }
        drop(gateway);
    })
    .await
    .expect("finished within 90 s");
}

/// A two-zone world (`zone_columns = 2`; zone 1 holds the spawn point) whose zones run in
/// separate processes, saving every second, over one data directory.
struct SplitWorld {
    dir: TempDir,
    world: String,
    url: String,
    redis_url: String,
}

impl SplitWorld {
    /// Its files in a new temporary directory; `tag` starts the world's name.
    fn new(tag: &str, url: &str, redis_url: &str) -> SplitWorld {
        let dir = TempDir::new(&format!("fleet-{tag}"));
        std::fs::create_dir_all(dir.path()).unwrap();
        std::fs::write(dir.path().join("world.toml"), "[world]\nzone_columns = 2\n").unwrap();
        let world = format!(
            "{tag}-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        SplitWorld {
            dir,
            world,
            url: url.to_owned(),
            redis_url: redis_url.to_owned(),
        }
    }

    /// The flags of a process of `role`.
    fn args(&self, role: &str) -> Vec<String> {
        let config = self.dir.path().join("world.toml");
        let data = self.dir.path().join("data");
        [
            "--config",
            config.to_str().unwrap(),
            "--role",
            role,
            "--nats-url",
            &self.url,
            "--redis-url",
            &self.redis_url,
            "--world",
            &self.world,
            "--data-dir",
            data.to_str().unwrap(),
            "--http-addr",
            "127.0.0.1:0",
            "--quic-addr",
            "127.0.0.1:0",
            "--save-interval-s",
            "1",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect()
    }

    /// The flags of the zone process running `zone`.
    fn zone_args(&self, zone: &str) -> Vec<String> {
        let mut a = self.args("zone");
        a.extend(["--zones".to_owned(), zone.to_owned()]);
        a
    }
}

/// A zone process started with `args` once the killed one's lease expired (tried every
/// 200 ms, for at most 20 s).
async fn replacement_for(args: &[String]) -> ZoneRoleProcess {
    let killed = std::time::Instant::now();
    loop {
        if let Some(process) = ZoneRoleProcess::try_start(&refs(args), &FLEET_ENV, None) {
            return process;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "a replacement zone process starts within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Logs `name` in at `gateway`: the status and the JSON answer.
async fn log_in(gateway: &ServerProcess, name: &str, password: &str) -> (u16, serde_json::Value) {
    gateway
        .post(
            "/v1/login",
            serde_json::json!({"username": name, "password": password}),
        )
        .await
}

/// Connects with a 200 login answer (to the gateway it names) and waits for the welcome.
async fn play(
    answer: &serde_json::Value,
    fingerprint: mmo_net::tls::Fingerprint,
) -> (mmo_net::client::NetClient, std::net::SocketAddr) {
    let addr: std::net::SocketAddr = answer["quic_addr"]
        .as_str()
        .expect("quic_addr")
        .parse()
        .expect("an ip:port");
    let token = answer["token"].as_str().expect("token");
    let mut client = connect_client(addr, fingerprint, token).await;
    assert!(
        wait_for(&mut client, Duration::from_secs(10), |e| matches!(
            e,
            ClientEvent::Welcome { .. }
        ))
        .await
        .is_some(),
        "welcomed through {addr}"
    );
    (client, addr)
}

/// Two gateways of a world of at most 2 players (`--max-players 2`). Alice's login is sent
/// to one gateway, Bob's (once Alice shows in its count) to the other; Carol's, with the
/// world full, waits in the queue (202, position 1, a refresh token); an unknown ticket is
/// 404; once Bob leaves, Carol's poll lets her in with a token and a gateway, and she plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_go_to_the_least_loaded_gateway_and_wait_in_a_queue_when_the_world_is_full() {
    let Some((url, redis_url)) = fleet_services() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(90), async {
        let fleet = Fleet::start_with("queue", &url, &redis_url, &[], &["--max-players", "2"]);
        let fingerprint = fleet.gateway_1.fingerprint;
        let gateways = [fleet.gateway_1.quic, fleet.gateway_2.quic];

        let (status, alice_login) = log_in(&fleet.gateway_1, "alice", "pw1").await;
        assert_eq!(status, 200, "{alice_login}");
        let (mut alice, alice_at) = play(&alice_login, fingerprint).await;
        assert!(
            gateways.contains(&alice_at),
            "{alice_at} is a gateway of the fleet"
        );
        // Both gateways rewrite their entries every second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (status, bob_login) = log_in(&fleet.gateway_1, "bob", "pw2").await;
        assert_eq!(status, 200, "{bob_login}");
        let (bob, bob_at) = play(&bob_login, fingerprint).await;
        assert!(gateways.contains(&bob_at));
        assert_ne!(
            bob_at, alice_at,
            "Bob was sent to the gateway without a player"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;

        let (status, queued) = log_in(&fleet.gateway_2, "carol", "pw3").await;
        assert_eq!(status, 202, "the world is full: {queued}");
        assert_eq!(queued["queued"], true);
        assert_eq!(queued["position"], 1);
        assert_eq!(queued["queue_length"], 1);
        assert!(queued.get("token").is_none(), "no login token while queued");
        assert!(
            queued["refresh_token"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "the refresh token the login issued is not lost: {queued}"
        );
        let ticket = queued["ticket"].as_str().expect("ticket").to_owned();
        let (status, unknown) = fleet
            .gateway_1
            .post("/v1/login/queue", serde_json::json!({"ticket": "nope"}))
            .await;
        assert_eq!(status, 404, "{unknown}");
        assert_eq!(unknown["error"], "ticket_unknown");
        let (status, still) = fleet
            .gateway_1
            .post("/v1/login/queue", serde_json::json!({"ticket": ticket}))
            .await;
        assert_eq!(
            status, 202,
            "still waiting (any gateway answers polls): {still}"
        );
        assert_eq!(still["position"], 1);

        // Bob leaves; Carol is let in once the gateways count one player.
        bob.disconnect(Duration::from_secs(2)).await;
        let left = std::time::Instant::now();
        let let_in = loop {
            let (status, answer) = fleet
                .gateway_2
                .post("/v1/login/queue", serde_json::json!({"ticket": ticket}))
                .await;
            match status {
                200 => break answer,
                202 => {}
                _ => panic!("poll answered {status}: {answer}"),
            }
            assert!(
                left.elapsed() < Duration::from_secs(15),
                "Carol let in within 15 s of Bob leaving"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let waited = left.elapsed();
        let (mut carol, carol_at) = play(&let_in, fingerprint).await;
        assert!(gateways.contains(&carol_at));
        println!("Carol let in {waited:?} after Bob left");
        let metrics = fleet.gateway_2.metrics().await;
        assert!(
            metrics.contains("mmo_login_placements_total{outcome=\"queued\"} 1"),
            "the queued login is counted"
        );
        for client in [&mut alice, &mut carol] {
            client.pump();
        }
        alice.disconnect(Duration::from_secs(2)).await;
        carol.disconnect(Duration::from_secs(2)).await;
    })
    .await
    .expect("finished within 90 s");
}

/// A zone process with `--agones` reports its lifecycle to the Agones SDK sidecar's REST
/// API. No Agones runs here: the test answers on a local port as the sidecar does
/// (`AGONES_SDK_HTTP_PORT`) and records the calls, which must be the documented ones in
/// order: Ready (as a spare, before the zone), the `mmo-zones` label and Allocate once the
/// zone runs, health pings every 2 s, Shutdown at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_process_under_agones_reports_ready_allocated_health_and_shutdown() {
    let Some((url, redis_url)) = fleet_services() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let calls: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let record = |calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>| {
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  body: axum::body::Bytes| async move {
                let body: serde_json::Value =
                    serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                calls
                    .lock()
                    .unwrap()
                    .push(format!("{method} {} {body}", uri.path()));
                axum::Json(serde_json::json!({}))
            }
        };
        let sidecar = axum::Router::new().fallback(record(calls.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        tokio::spawn(async move { axum::serve(listener, sidecar).await });

        let dir = TempDir::new("agones");
        let data = dir.path().join("data");
        let world = format!("agones-{port}");
        let args = [
            "--role",
            "zone",
            "--zones",
            "auto",
            "--agones",
            "--nats-url",
            &url,
            "--redis-url",
            &redis_url,
            "--world",
            &world,
            "--data-dir",
            data.to_str().unwrap(),
            "--http-addr",
            "127.0.0.1:0",
        ];
        let mut env = FLEET_ENV.to_vec();
        env.push(("AGONES_SDK_HTTP_PORT", port.as_str()));
        let zone = ZoneRoleProcess::start(&args, &env, None);
        // Two health periods.
        tokio::time::sleep(Duration::from_millis(4500)).await;
        assert_stopped_cleanly(zone.terminate(Duration::from_secs(20)), "the zone process");

        let calls = calls.lock().unwrap().clone();
        let at = |call: &str| {
            calls
                .iter()
                .position(|c| c == call)
                .unwrap_or_else(|| panic!("no `{call}` among {calls:?}"))
        };
        let ready = at("POST /ready {}");
        let label = at(r#"PUT /metadata/label {"key":"mmo-zones","value":"0"}"#);
        let allocate = at("POST /allocate {}");
        let shutdown = at("POST /shutdown {}");
        assert!(
            ready < label && label < allocate && allocate < shutdown,
            "in order: {calls:?}"
        );
        assert_eq!(shutdown, calls.len() - 1, "shutdown last: {calls:?}");
        let health = calls.iter().filter(|c| *c == "POST /health {}").count();
        assert!(health >= 2, "health pings every 2 s: {calls:?}");
        assert!(
            calls.iter().all(|c| c.starts_with("POST /ready")
                || c.starts_with("POST /health")
                || c.starts_with("PUT /metadata/label")
                || c.starts_with("POST /allocate")
                || c.starts_with("POST /shutdown")),
            "only documented calls: {calls:?}"
        );
    })
    .await
    .expect("finished within 60 s");
}

/// The login limits are the fleet's, not each gateway's: 5 failed passwords for Bob spread
/// over both gateways (3 and 2) lock his account at either (429 `rate_limited` with a
/// retry delay), the right password included, while Alice still logs in; per gateway
/// (the old limits) gateway 1 would have seen 3 failures only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_spread_over_gateways_meet_one_limit() {
    let Some((url, redis_url)) = fleet_services() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let fleet = Fleet::start("limits", &url, &redis_url, &[]);
        for (i, gateway) in [
            &fleet.gateway_1,
            &fleet.gateway_2,
            &fleet.gateway_1,
            &fleet.gateway_2,
            &fleet.gateway_1,
        ]
        .into_iter()
        .enumerate()
        {
            let (status, answer) = log_in(gateway, "bob", "wrong").await;
            assert_eq!(status, 401, "failure {i}: {answer}");
        }
        let (status, answer) = log_in(&fleet.gateway_1, "bob", "pw2").await;
        assert_eq!(status, 429, "locked across the fleet: {answer}");
        assert_eq!(answer["error"], "rate_limited");
        assert!(
            answer["retry_after_s"]
                .as_u64()
                .is_some_and(|s| (1..=60).contains(&s)),
            "{answer}"
        );
        let (status, _) = log_in(&fleet.gateway_2, "bob", "pw2").await;
        assert_eq!(status, 429, "at the other gateway too");
        let (status, answer) = log_in(&fleet.gateway_2, "alice", "pw1").await;
        assert_eq!(status, 200, "another account is not affected: {answer}");
    })
    .await
    .expect("finished within 60 s");
}

/// A child process killed (and reaped) when dropped.
struct KilledOnDrop(std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Redis ACL users `docs/fleet.md` gives each role, on a Redis of this test's own
/// whose default user is off (ACL file from the documentation's template, with this test's
/// world): a zone process and a gateway run on them (Alice logs in, is placed by the
/// queue's script, and plays; the zone process's chat bridge subscribes; no process logs a
/// refused command), and each user is refused the other role's keys (a gateway cannot take
/// a zone's lease or write an account's presence; a zone process cannot write the gateway
/// registry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_runs_on_redis_users_limited_to_their_roles_keys() {
    let Some((url, _)) = fleet_services() else {
        return;
    };
    let Some(redis_server) = installed_server("redis-server") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("redis-acl");
        std::fs::create_dir_all(dir.path()).unwrap();
        let world = format!(
            "acl-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        // The template of docs/fleet.md ("Redis users"), between its markers.
        let doc = include_str!("../../../docs/fleet.md");
        let template = doc
            .split("<!-- redis-acl -->")
            .nth(1)
            .and_then(|rest| rest.split("<!-- end -->").next())
            .expect("docs/fleet.md marks its Redis ACL template")
            .lines()
            .filter(|l| l.starts_with("user "))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("<world>", &world)
            .replace("<zone password>", "zone-secret")
            .replace("<gateway password>", "gateway-secret");
        let acl = dir.path().join("users.acl");
        std::fs::write(&acl, template + "\n").unwrap();
        let port = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            socket.local_addr().unwrap().port()
        };
        // Killed when the test ends, passed or not (its output would hold the test's open).
        let _redis = KilledOnDrop(
            std::process::Command::new(redis_server)
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--aclfile")
                .arg(&acl)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("redis-server starts"),
        );
        let zone_url = format!("redis://mmo-zone:zone-secret@127.0.0.1:{port}/");
        let gateway_url = format!("redis://mmo-gateway:gateway-secret@127.0.0.1:{port}/");
        let mut as_gateway = None;
        for _ in 0..50 {
            if let Ok(client) = redis::Client::open(gateway_url.as_str())
                && let Ok(c) = client.get_multiplexed_async_connection().await
            {
                as_gateway = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut as_gateway = as_gateway.expect("the gateway user connects");

        let data = dir.path().join("data");
        let args = |role: &'static str, redis_url: &str| -> Vec<String> {
            [
                "--role",
                role,
                "--nats-url",
                &url,
                "--redis-url",
                redis_url,
                "--world",
                &world,
                "--data-dir",
                data.to_str().unwrap(),
                "--http-addr",
                "127.0.0.1:0",
                "--quic-addr",
                "127.0.0.1:0",
            ]
            .iter()
            .map(|a| (*a).to_owned())
            .collect()
        };
        let zone_args = args("zone", &zone_url);
        let gateway_args = args("gateway", &gateway_url);
        let zone_log = dir.path().join("zone.log");
        let gateway_log = dir.path().join("gateway.log");
        let zone = ZoneRoleProcess::start(&refs(&zone_args), &FLEET_ENV, Some(&zone_log));
        let gateway = ServerProcess::start(&refs(&gateway_args), &FLEET_ENV, Some(&gateway_log));
        let (status, login) = log_in(&gateway, "alice", "pw1").await;
        assert_eq!(status, 200, "{login}");
        let (alice, _) = play(&login, gateway.fingerprint).await;
        let metrics = gateway.metrics().await;
        assert!(
            metrics.contains("mmo_login_placements_total{outcome=\"let_in\"} 1"),
            "placed by the queue's script, not let in for want of Redis"
        );
        assert!(!metrics.contains("outcome=\"unavailable\""));
        assert!(
            metrics.contains("mmo_shard_placements_total{outcome=\"under_cap\"} 1"),
            "placed on a shard by the loads the zone process wrote and the gateway read: {}",
            metrics
                .lines()
                .filter(|l| l.contains("shard"))
                .collect::<Vec<_>>()
                .join("; ")
        );

        // Each user is refused the other role's keys.
        let refused = |result: redis::RedisResult<()>| {
            result
                .err()
                .is_some_and(|e| e.to_string().to_ascii_uppercase().contains("NOPERM"))
        };
        let lease: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("mmo:{world}:zone:0:owner"))
            .arg("forged")
            .query_async(&mut as_gateway)
            .await;
        assert!(refused(lease), "a gateway cannot take a zone's lease");
        let presence: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("mmo:{world}:account:alice"))
            .arg("forged")
            .query_async(&mut as_gateway)
            .await;
        assert!(
            refused(presence),
            "a gateway cannot write an account's presence"
        );
        let read: redis::RedisResult<Option<String>> = redis::cmd("GET")
            .arg(format!("mmo:{world}:account:alice"))
            .query_async(&mut as_gateway)
            .await;
        assert!(
            read.as_ref().is_ok_and(Option::is_some),
            "a gateway reads presence (the queue lets reconnections in): {read:?}"
        );
        let mut as_zone = redis::Client::open(zone_url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let registry: redis::RedisResult<()> = redis::cmd("HSET")
            .arg(format!("mmo:{world}:gateways"))
            .arg("forged")
            .arg("0|0|1.2.3.4:5")
            .query_async(&mut as_zone)
            .await;
        assert!(
            refused(registry),
            "a zone process cannot write the gateway registry"
        );
        // Zone processes decide handoffs (`RELAY_FORMAT.md` 5, "Deciding"); gateways cannot.
        let record = format!("mmo:{world}:transfer:{:016x}", 1);
        let decided: redis::RedisResult<()> = redis::cmd("SET")
            .arg(&record)
            .arg("aborted")
            .arg("PX")
            .arg(1_000)
            .query_async(&mut as_zone)
            .await;
        assert!(
            decided.is_ok(),
            "a zone process records a handoff's decision: {decided:?}"
        );
        let forged: redis::RedisResult<()> = redis::cmd("SET")
            .arg(&record)
            .arg("taken 0000000000000001")
            .query_async(&mut as_gateway)
            .await;
        assert!(refused(forged), "a gateway cannot decide a handoff");
        // Gateways ask for shards, spares read what they asked for (and a merging shard
        // lowers it).
        let wanted = format!("mmo:{world}:shards_wanted");
        let asked: redis::RedisResult<()> = redis::cmd("HSET")
            .arg(&wanted)
            .arg("0")
            .arg("1")
            .query_async(&mut as_gateway)
            .await;
        assert!(asked.is_ok(), "a gateway asks for shards: {asked:?}");
        let read: redis::RedisResult<std::collections::HashMap<String, String>> =
            redis::cmd("HGETALL")
                .arg(&wanted)
                .query_async(&mut as_zone)
                .await;
        assert!(
            read.is_ok(),
            "a zone process reads the shards wanted: {read:?}"
        );
        let forged: redis::RedisResult<()> = redis::cmd("HSET")
            .arg(format!("mmo:{world}:shard_loads"))
            .arg("0.0")
            .arg("0|0")
            .query_async(&mut as_gateway)
            .await;
        assert!(refused(forged), "a gateway cannot write shard loads");

        alice.disconnect(Duration::from_secs(2)).await;
        let logs = [
            std::fs::read_to_string(&zone_log).unwrap_or_default(),
            std::fs::read_to_string(&gateway_log).unwrap_or_default(),
        ];
        assert!(
            logs[0].contains("chat: subscribed to Redis"),
            "the zone process's chat bridge subscribed"
        );
        for log in &logs {
            assert!(
                !log.to_ascii_uppercase().contains("NOPERM"),
                "no command refused by the ACLs: {log}"
            );
        }
        assert_stopped_cleanly(zone.terminate(Duration::from_secs(20)), "the zone process");
        assert_stopped_cleanly(gateway.terminate(Duration::from_secs(20)), "the gateway");
    })
    .await
    .expect("finished within 60 s");
}

/// Which process a handoff test kills with `-9`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KilledSide {
    /// The zone process handing the player over.
    Sender,
    /// The one taking her.
    Receiver,
}

/// A zone process killed with `-9` the moment its handoff is on NATS (seen by a
/// subscriber of the receiving zone's peer subject, at the same time as the receiver).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_whose_sender_is_killed_as_it_is_sent_leaves_one_owner_and_nothing_lost() {
    handoff_with_a_kill(KilledSide::Sender).await;
}

/// The same with the receiver killed as the handoff reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_whose_receiver_is_killed_as_it_arrives_leaves_one_owner_and_nothing_lost() {
    handoff_with_a_kill(KilledSide::Receiver).await;
}

/// Two zone processes split a two-zone world (zone 1 holds the spawn point); Alice walks
/// east into zone 1, moves a stack in her bag and stands while zone 1's process saves her,
/// then walks west into zone 0, and one side of that handoff is killed as the handoff
/// message is published. Whatever the race gives (she plays on, or her client is told and
/// disconnected), exactly one owner remains: she logs in again, once a replacement took
/// the dead process's zone, with the moved stack where she moved it and nothing else
/// changed, from a position on her walk west.
async fn handoff_with_a_kill(killed: KilledSide) {
    use futures_util::StreamExt;
    let Some((url, redis_url)) = fleet_services() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(120), async {
        let split = SplitWorld::new("handoff-kill", &url, &redis_url);
        let zone_1_args = split.zone_args("1");
        let zone_0_args = split.zone_args("0");
        let zone_1 = ZoneRoleProcess::start(&refs(&zone_1_args), &FLEET_ENV, None);
        let zone_0 = ZoneRoleProcess::start(&refs(&zone_0_args), &FLEET_ENV, None);
        let gateway = ServerProcess::start(&refs(&split.args("gateway")), &FLEET_ENV, None);
        // Handoffs into zone 0 arrive on its peer subject (border exports too).
        let nats = async_nats::connect(&url).await.unwrap();
        let mut peer = nats
            .subscribe(format!("mmo.{}.peer.zone.0", split.world))
            .await
            .unwrap();
        nats.flush().await.unwrap();

        let (mut client, first_bag) = alice_logs_in(&gateway).await;
        let east = mmo_core::input::MoveInput::from_controls(
            1.0,
            0.0,
            0.0,
            mmo_core::input::Buttons::default(),
        );
        let west = mmo_core::input::MoveInput::from_controls(
            1.0,
            0.0,
            std::f32::consts::PI,
            mmo_core::input::Buttons::default(),
        );
        let idle = mmo_core::input::MoveInput::default();
        let mut tick = tokio::time::interval(Duration::from_millis(33));
        let mut events = Vec::new();
        // East into zone 1 for 2 s, a stack moved to the last slot, 1.5 s standing (zone 1's
        // process saves both): a lost save would show in where she returns and her bag.
        let from = first_bag
            .bag
            .iter()
            .position(Option::is_some)
            .expect("an item");
        let to = first_bag
            .bag
            .iter()
            .rposition(Option::is_none)
            .expect("an empty slot");
        for i in 0..105 {
            tick.tick().await;
            client.pump();
            while let Some(e) = client.poll_event() {
                events.push(e);
            }
            client.send_input(if i < 60 { east } else { idle });
            if i == 60 {
                client
                    .session_mut()
                    .inventory_op(mmo_core::gameplay::messages::InventoryOp::Move {
                        from: from as u32,
                        to: to as u32,
                    })
                    .expect("active");
            }
        }
        let bag = events
            .iter()
            .rev()
            .find_map(|e| match e {
                ClientEvent::Inventory(view) => Some(view.clone()),
                _ => None,
            })
            .expect("the bag after the move");
        assert!(
            bag.bag[to].is_some() && bag.bag[from].is_none(),
            "the stack moved"
        );
        let start_m = client.session().predictor().unwrap().predicted().position_m;
        assert!(start_m.x > 3.0, "Alice walked east into zone 1: {start_m}");
        let (mut zone_1, mut zone_0) = (Some(zone_1), Some(zone_0));
        let mut ticks = 0;
        let mut killed_at: Option<std::time::Instant> = None;
        // Snapshots applied in the last second of the run, which ends 6.5 s after the kill
        // (past the gateway's 3 s zone silence).
        let mut late_snapshots = None;
        let snapshots = |c: &mmo_net::client::NetClient| c.session().stats().snapshots_applied;
        while ticks < 600 && killed_at.is_none_or(|at| at.elapsed() < Duration::from_millis(6_500))
        {
            tokio::select! {
                Some(message) = peer.next() => {
                    let handoff = matches!(
                        mmo_core::relay::PeerMessage::decode(&message.payload),
                        Ok(mmo_core::relay::PeerMessage::Handoff(_))
                    );
                    if handoff && zone_1.is_some() && zone_0.is_some() {
                        match killed {
                            KilledSide::Sender => zone_1.take().unwrap().kill_hard(),
                            KilledSide::Receiver => zone_0.take().unwrap().kill_hard(),
                        }
                        killed_at = Some(std::time::Instant::now());
                    }
                }
                _ = tick.tick() => {
                    ticks += 1;
                    client.pump();
                    while let Some(e) = client.poll_event() {
                        events.push(e);
                    }
                    client.send_input(west);
                    if late_snapshots.is_none()
                        && killed_at.is_some_and(|at| at.elapsed() >= Duration::from_millis(5_500))
                    {
                        late_snapshots = Some(snapshots(&client));
                    }
                }
            }
        }
        assert!(
            zone_1.is_none() || zone_0.is_none(),
            "a handoff was seen and one side killed"
        );
        let late_snapshots = snapshots(&client) - late_snapshots.expect("ran past the kill");
        let walked_to_m = client.session().predictor().unwrap().predicted().position_m;
        let disconnected = events
            .iter()
            .any(|e| matches!(e, ClientEvent::Disconnected { .. }));
        let rejoined = events
            .iter()
            .any(|e| matches!(e, ClientEvent::Rejoined { .. }));
        println!(
            "{killed:?} killed; Alice disconnected: {disconnected}, rejoined: {rejoined}, \
             snapshots in the last second: {late_snapshots}; at {walked_to_m}"
        );
        if killed == KilledSide::Sender {
            // The receiver had the handoff and the sender's lease was still current: it
            // claimed and took her, and the gateway switched to it when the sender fell
            // silent (`TakenOver`), so the same session plays on.
            assert!(
                !disconnected && !rejoined,
                "the receiver's session goes on: {:?}",
                events.last()
            );
            assert!(
                late_snapshots >= 15,
                "snapshots keep coming from the receiver: {late_snapshots} in the last second"
            );
        }
        if !disconnected {
            client.disconnect(Duration::from_secs(2)).await;
        }

        // A replacement takes the dead process's zone once its lease expires.
        let dead_args = match killed {
            KilledSide::Sender => &zone_1_args,
            KilledSide::Receiver => &zone_0_args,
        };
        let replacement = replacement_for(dead_args).await;
        let (spawn, bag_after) = alice_returns(&gateway).await;
        assert_eq!(
            bag_after, bag,
            "the moved stack is where it was moved, nothing lost or duplicated"
        );
        // Saved somewhere on her walk west from where she stood in zone 1 (by whichever
        // process owned her last), not back at the spawn point.
        let on_path = spawn.position_m.x <= start_m.x + 0.05
            && spawn.position_m.x >= walked_to_m.x.min(start_m.x) - 0.5
            && (spawn.position_m.y - start_m.y).abs() < 0.5;
        assert!(
            on_path,
            "Alice returns on her path: {} (from {start_m} to {walked_to_m})",
            spawn.position_m
        );
        for process in [Some(replacement), zone_0, zone_1].into_iter().flatten() {
            assert_stopped_cleanly(
                process.terminate(Duration::from_secs(20)),
                "the zone process",
            );
        }
        drop(gateway);
    })
    .await
    .expect("finished within 120 s");
}
