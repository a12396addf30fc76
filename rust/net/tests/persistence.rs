//! Zone-side persistence over real QUIC on 127.0.0.1 with the in-memory store: characters
//! load from the store at login, are saved at logout, periodically (increasing versions)
//! and despite a full store, an item transfer is acknowledged only after its commit, and
//! the save state follows a player across a zone border.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::player::Player;
use common::{border_world, character_template, connect_player, pinned_config};
use mmo_core::gameplay::messages::InventoryOp;
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::session::client::ClientEvent;
use mmo_core::world::WorldLayout;
use mmo_core::zone::ZoneConfig;
use mmo_net::auth::StaticTokens;
use mmo_net::persist::{MemoryStore, SaveUrgency};
use mmo_net::server::Server;
use mmo_net::tls::ServerTrust;

struct Setup {
    server: Server,
    trust: ServerTrust,
    zone: ZoneConfig,
    store: Arc<MemoryStore>,
}

/// A server with a `MemoryStore`, tokens "a" (alice) and "b" (bob); with `two_zones`, a
/// 200 m x 100 m world cut at x = 0 with players appearing 4 m west of the border.
async fn setup(save_interval: Duration, two_zones: bool) -> Setup {
    let (world, zone) = border_world();
    let store = Arc::new(MemoryStore::new(character_template(&zone)));
    let (mut config, trust) = pinned_config(
        &zone,
        StaticTokens::new().with("a", "alice").with("b", "bob"),
    );
    if two_zones {
        config.layout = Some(WorldLayout::new(world, 2, 1, 30.0).unwrap());
    }
    config.store = Some(store.clone());
    config.save_interval = save_interval;
    let server = Server::start(config).await.unwrap();
    Setup {
        server,
        trust,
        zone,
        store,
    }
}

async fn connect(s: &Setup, token: &str) -> Player {
    connect_player(&s.server, s.trust, &s.zone, token).await
}

fn tick(s: &Setup) -> (Duration, f32) {
    let tick = Duration::from_micros(s.zone.tick_rate.tick_us());
    (tick, tick.as_secs_f32())
}

/// Drives `players` with `input` for `frames` ticks.
async fn run_frames(s: &Setup, players: &mut [&mut Player], input: MoveInput, frames: u32) {
    let (tick, tick_s) = tick(s);
    for _ in 0..frames {
        tokio::time::sleep(tick).await;
        for p in players.iter_mut() {
            p.tick(input, tick_s);
        }
    }
}

/// Idles until every player is welcomed and has its inventory.
async fn until_ready(s: &Setup, players: &mut [&mut Player]) {
    for _ in 0..300 {
        run_frames(s, players, MoveInput::default(), 1).await;
        if players
            .iter()
            .all(|p| p.entity().is_some() && p.client.session().inventory().is_some())
        {
            return;
        }
    }
    panic!("players not welcomed");
}

/// Waits (idling the players) until `f` holds.
async fn wait_for(s: &Setup, players: &mut [&mut Player], what: &str, f: impl Fn() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        run_frames(s, players, MoveInput::default(), 1).await;
    }
    panic!("timed out waiting for {what}");
}

/// The inventory result of `request` the player got, if any.
fn result_of(p: &Player, request: u32) -> Option<Option<String>> {
    p.events.iter().find_map(|e| match e {
        ClientEvent::InventoryResult(r) if r.request == request => {
            Some(r.refusal.as_ref().map(|f| f.kind.clone()))
        }
        _ => None,
    })
}

/// Items in a record.
fn items(r: &mmo_core::persist::CharacterRecord) -> u64 {
    r.inventory.iter().map(|s| u64::from(s.quantity)).sum()
}

/// The first occupied bag slot and the last bag slot (empty with the starting kit).
fn slots(p: &Player) -> (u32, u32) {
    let view = p.client.session().inventory().expect("inventory");
    let first = view.bag.iter().position(Option::is_some).expect("an item") as u32;
    (first, view.bag.len() as u32 - 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_character_is_saved_at_logout_and_comes_back_where_it_left() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let s = setup(Duration::from_millis(300), false).await;
        let mut a = connect(&s, "a").await;
        until_ready(&s, &mut [&mut a]).await;
        let loaded = s
            .store
            .character_of("alice")
            .expect("created at first login");
        assert_eq!(loaded.version, 0);
        assert_eq!(a.position_m(), s.zone.spawn_position_m);
        // Walk, then move an item to the last bag slot.
        let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        run_frames(&s, &mut [&mut a], walk, 30).await;
        let (from, to) = slots(&a);
        let request = a
            .client
            .session_mut()
            .inventory_op(InventoryOp::Move { from, to })
            .expect("active");
        for _ in 0..100 {
            if result_of(&a, request).is_some() {
                break;
            }
            run_frames(&s, &mut [&mut a], MoveInput::default(), 1).await;
        }
        assert_eq!(result_of(&a, request), Some(None), "move applied");
        run_frames(&s, &mut [&mut a], MoveInput::default(), 20).await;
        // Periodic saves happened, with increasing versions.
        let store = s.store.clone();
        wait_for(&s, &mut [&mut a], "a periodic save", move || {
            store
                .batches()
                .iter()
                .any(|(u, _)| *u == SaveUrgency::Periodic)
        })
        .await;
        let periodic: Vec<u64> = s
            .store
            .batches()
            .iter()
            .filter(|(u, _)| *u == SaveUrgency::Periodic)
            .flat_map(|(_, r)| r.iter().map(|r| r.version))
            .collect();
        assert!(
            periodic.windows(2).all(|w| w[0] < w[1]) && periodic[0] >= 1,
            "versions increase: {periodic:?}"
        );
        let left_at = a.position_m();
        assert!(
            left_at.x > s.zone.spawn_position_m.x + 1.0,
            "walked: {left_at}"
        );
        a.client.disconnect(Duration::from_secs(2)).await;
        let store = s.store.clone();
        let saved = loop {
            let r = store.character_of("alice").expect("stored");
            if r.inventory.iter().any(|slot| slot.slot == to) {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            (saved.position_m - left_at).length() < 0.05,
            "saved {} vs left at {left_at}",
            saved.position_m
        );
        assert!(saved.version > loaded.version);
        assert!(!saved.inventory.iter().any(|slot| slot.slot == from));
        assert_eq!(items(&saved), items(&loaded), "a move keeps every item");
        // Back again: where it left, with that inventory.
        let mut again = connect(&s, "a").await;
        until_ready(&s, &mut [&mut again]).await;
        assert!((again.position_m() - saved.position_m).length() < 0.05);
        let view = again.client.session().inventory().expect("inventory");
        assert!(view.bag[to as usize].is_some() && view.bag[from as usize].is_none());
        s.server.shutdown(Duration::from_secs(3)).await;
    })
    .await
    .expect("finished within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_does_not_lose_the_logout_save() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let s = setup(Duration::from_millis(300), false).await;
        let mut a = connect(&s, "a").await;
        until_ready(&s, &mut [&mut a]).await;
        let loaded = s.store.character_of("alice").expect("created");
        s.store.set_refuse_saves(true);
        let walk = MoveInput::from_controls(0.0, 1.0, 0.0, Buttons::default());
        run_frames(&s, &mut [&mut a], walk, 30).await;
        run_frames(&s, &mut [&mut a], MoveInput::default(), 10).await;
        let left_at = a.position_m();
        a.client.disconnect(Duration::from_secs(2)).await;
        // Refused (at least the logout batch), nothing written.
        let store = s.store.clone();
        for _ in 0..100 {
            if store.refused_batches() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(s.store.refused_batches() >= 1);
        assert_eq!(s.store.character_of("alice"), Some(loaded.clone()));
        // The store recovers: the queued logout save is offered again.
        s.store.set_refuse_saves(false);
        let saved = loop {
            let r = s.store.character_of("alice").expect("stored");
            if r.version > loaded.version {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!((saved.position_m - left_at).length() < 0.05);
        s.server.shutdown(Duration::from_secs(3)).await;
    })
    .await
    .expect("finished within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_give_is_acknowledged_after_its_commit_and_conserves_items() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let s = setup(Duration::from_secs(3600), false).await;
        let mut a = connect(&s, "a").await;
        let mut b = connect(&s, "b").await;
        until_ready(&s, &mut [&mut a, &mut b]).await;
        let (ra, rb) = (
            s.store.character_of("alice").expect("a"),
            s.store.character_of("bob").expect("b"),
        );
        let before = items(&ra) + items(&rb);
        s.store.set_hold_commits(true);
        let (slot, _) = slots(&a);
        let to = b.entity().expect("welcomed");
        let request = a
            .client
            .session_mut()
            .inventory_op(InventoryOp::Give {
                slot,
                quantity: 1,
                to,
            })
            .expect("active");
        let store = s.store.clone();
        wait_for(&s, &mut [&mut a, &mut b], "the transfer batch", move || {
            store.batches().iter().any(|(_, r)| r.len() == 2)
        })
        .await;
        run_frames(&s, &mut [&mut a, &mut b], MoveInput::default(), 15).await;
        assert_eq!(
            result_of(&a, request),
            None,
            "not answered before the commit"
        );
        assert_eq!(s.store.release_commits(), 1);
        for _ in 0..200 {
            if result_of(&a, request).is_some() {
                break;
            }
            run_frames(&s, &mut [&mut a, &mut b], MoveInput::default(), 1).await;
        }
        assert_eq!(
            result_of(&a, request),
            Some(None),
            "acknowledged after the commit"
        );
        let (sa, sb) = (
            s.store.character_of("alice").expect("a"),
            s.store.character_of("bob").expect("b"),
        );
        assert_eq!(items(&sa) + items(&sb), before, "conserved in the store");
        assert_eq!(items(&sb), items(&rb) + 1);
        assert!(sa.version > ra.version && sb.version > rb.version);
        // Both views show it.
        let b_total: u32 = b
            .client
            .session()
            .inventory()
            .expect("inventory")
            .bag
            .iter()
            .flatten()
            .map(|s| s.quantity)
            .sum();
        assert_eq!(u64::from(b_total), items(&sb));
        s.server.shutdown(Duration::from_secs(3)).await;
    })
    .await
    .expect("finished within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_save_state_follows_a_handoff_and_shutdown_saves_everyone() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let s = setup(Duration::from_secs(3600), true).await;
        let mut a = connect(&s, "a").await;
        until_ready(&s, &mut [&mut a]).await;
        let loaded = s.store.character_of("alice").expect("created");
        // Walk from zone 0 into zone 1 (the border is 4 m east).
        let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        for _ in 0..150 {
            run_frames(&s, &mut [&mut a], walk, 1).await;
            if a.position_m().x > 8.0 {
                break;
            }
        }
        run_frames(&s, &mut [&mut a], MoveInput::default(), 30).await;
        let left_at = a.position_m();
        assert!(left_at.x > 5.0, "{left_at}");
        // Shutdown saves it (from zone 1, which got the save state at the handoff).
        s.server.shutdown(Duration::from_secs(3)).await;
        let saved = s.store.character_of("alice").expect("stored");
        assert_eq!(saved.zone_id, 1);
        assert!(saved.version > loaded.version);
        assert!((saved.position_m - left_at).length() < 0.05);
        assert!(
            s.store
                .batches()
                .iter()
                .all(|(u, _)| *u == SaveUrgency::Now),
            "no periodic save with a one-hour interval"
        );
    })
    .await
    .expect("finished within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relogin_from_another_zone_starts_where_the_old_session_left() {
    tokio::time::timeout(Duration::from_secs(60), async {
        // No periodic save: only the old session's logout save can carry its position.
        let s = setup(Duration::from_secs(3600), true).await;
        let mut old = connect(&s, "a").await;
        until_ready(&s, &mut [&mut old]).await;
        let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        for _ in 0..150 {
            run_frames(&s, &mut [&mut old], walk, 1).await;
            if old.position_m().x > 8.0 {
                break;
            }
        }
        run_frames(&s, &mut [&mut old], MoveInput::default(), 30).await;
        let left_at = old.position_m();
        assert!(left_at.x > 5.0, "walked into zone 1: {left_at}");
        let stored = s.store.character_of("alice").expect("created");
        assert_eq!(stored.version, 0, "nothing saved yet");

        // The same account logs in again; the new connection lands in zone 0 and the old
        // session, in zone 1, is kicked. The new one must load only after the kicked
        // session's logout save, so it starts where alice stood.
        let mut new = connect(&s, "a").await;
        until_ready(&s, &mut [&mut new, &mut old]).await;
        run_frames(&s, &mut [&mut new, &mut old], MoveInput::default(), 10).await;
        assert!(
            (new.position_m() - left_at).length() < 0.05,
            "the new session starts at {} but alice stood at {left_at}",
            new.position_m()
        );
        assert!(
            old.events.iter().any(|e| matches!(
                e,
                ClientEvent::Disconnected {
                    reason: mmo_core::control::DisconnectReason::DuplicateLogin,
                    ..
                }
            )),
            "the old session was closed as a duplicate login"
        );
        s.server.shutdown(Duration::from_secs(3)).await;
    })
    .await
    .expect("finished within 60 s");
}
