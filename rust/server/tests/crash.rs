//! Crash safety of the real `mmo-server` binary on its default storage (SQLite in the data
//! dir): after `kill -9` during play and a restart, every character is where the last flush
//! left it, no item is duplicated or lost, and an item transfer is all or nothing — the one
//! acknowledged before the crash is there, the one in flight at the crash is either wholly
//! there or wholly not.

mod common;

use std::time::Duration;

use common::TempDir;
use common::player::Player;
use common::process::ServerProcess;
use mmo_core::gameplay::messages::{InventoryOp, InventoryView};
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::session::client::ClientEvent;

/// One frame of the test clients (30 Hz, the server's default rate).
const FRAME: Duration = Duration::from_millis(33);

async fn join(server: &ServerProcess, name: &str) -> Player {
    let login = server
        .login(name, mmo_server::auth::DEV_OPEN_PASSWORD)
        .await;
    Player::new(common::connect_client(server.quic, server.fingerprint, &login.token).await)
}

/// Runs `frames` frames of every player with `input` for the first one (the others idle).
async fn frames(players: &mut [&mut Player], input: MoveInput, frames: u32) {
    for _ in 0..frames {
        tokio::time::sleep(FRAME).await;
        for (i, p) in players.iter_mut().enumerate() {
            p.tick(
                if i == 0 { input } else { MoveInput::default() },
                1.0 / 30.0,
            );
        }
    }
}

async fn until_ready(players: &mut [&mut Player]) {
    for _ in 0..300 {
        frames(players, MoveInput::default(), 1).await;
        if players
            .iter()
            .all(|p| p.entity().is_some() && p.client.session().inventory().is_some())
        {
            return;
        }
    }
    panic!("players not welcomed with their inventory");
}

fn inventory(p: &Player) -> InventoryView {
    p.client
        .session()
        .inventory()
        .expect("inventory received")
        .clone()
}

fn items(view: &InventoryView) -> u64 {
    view.bag
        .iter()
        .flatten()
        .chain(view.equipped.iter().flatten())
        .map(|s| u64::from(s.quantity))
        .sum()
}

fn spawn_of(p: &Player) -> glam::Vec3 {
    p.events
        .iter()
        .find_map(|e| match e {
            ClientEvent::Welcome { spawn, .. } => Some(spawn.position_m),
            _ => None,
        })
        .expect("welcomed")
}

fn give(p: &mut Player, to: &Player) -> u32 {
    let view = inventory(p);
    let slot = view.bag.iter().position(Option::is_some).expect("an item") as u32;
    let to = to.entity().expect("welcomed");
    p.client
        .session_mut()
        .inventory_op(InventoryOp::Give {
            slot,
            quantity: 1,
            to,
        })
        .expect("active")
}

fn answered(p: &Player, request: u32) -> Option<Option<String>> {
    p.events.iter().find_map(|e| match e {
        ClientEvent::InventoryResult(r) if r.request == request => {
            Some(r.refusal.as_ref().map(|f| f.kind.clone()))
        }
        _ => None,
    })
}

fn start(data_dir: &str) -> ServerProcess {
    ServerProcess::start(
        &[
            "--quic-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
            data_dir,
            "--save-interval-s",
            "1",
            "--dev-open-login",
            "true",
        ],
        &[],
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_beyond_the_last_flush_and_transfers_are_all_or_nothing() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = TempDir::new("crash");
        let data_dir = dir.path().to_str().expect("utf-8 path").to_owned();
        let server = start(&data_dir);
        let mut alice = join(&server, "alice").await;
        let mut bob = join(&server, "bob").await;
        until_ready(&mut [&mut alice, &mut bob]).await;
        let total_before = items(&inventory(&alice)) + items(&inventory(&bob));

        // A transfer acknowledged before the crash (the server answers after its commit).
        let request = give(&mut alice, &bob);
        for _ in 0..200 {
            if answered(&alice, request).is_some() {
                break;
            }
            frames(&mut [&mut alice, &mut bob], MoveInput::default(), 1).await;
        }
        assert_eq!(answered(&alice, request), Some(None), "first give accepted");
        frames(&mut [&mut alice, &mut bob], MoveInput::default(), 5).await;
        let (alice_after_give, bob_after_give) =
            (items(&inventory(&alice)), items(&inventory(&bob)));
        assert_eq!(alice_after_give + bob_after_give, total_before);

        // Alice walks to `stopped`, then stands there for three save intervals: the store
        // has her there. Then she walks on (`walked`) for less than an interval.
        let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        frames(&mut [&mut alice, &mut bob], walk, 45).await;
        frames(&mut [&mut alice, &mut bob], MoveInput::default(), 90).await;
        let stopped = alice.position_m();
        assert!(stopped.distance(spawn_of(&alice)) > 3.0, "alice walked");
        frames(&mut [&mut alice, &mut bob], walk, 15).await;
        let walked = alice.position_m();

        // A transfer in flight at the crash: sent, then the process is killed at once.
        let _in_flight = give(&mut alice, &bob);
        alice.pump();
        bob.pump();
        server.kill_hard();

        let server = start(&data_dir);
        let mut alice2 = join(&server, "alice").await;
        let mut bob2 = join(&server, "bob").await;
        until_ready(&mut [&mut alice2, &mut bob2]).await;

        // Where the last flush left her: on the segment from `stopped` to `walked` (the
        // walk after standing lasted half a save interval, so the last flush may or may not
        // have seen part of it), never before `stopped` and never beyond `walked`.
        let back = spawn_of(&alice2);
        let segment = walked - stopped;
        let along = (back - stopped).dot(segment) / segment.length_squared();
        let off_line = (back - (stopped + segment * along.clamp(0.0, 1.0))).length();
        assert!(
            (-0.01..=1.01).contains(&along) && off_line < 0.05,
            "alice came back at {back}, not between {stopped} and {walked}"
        );

        // No item duplicated or lost; the acknowledged transfer survived; the one in
        // flight is all or nothing.
        let (alice_now, bob_now) = (items(&inventory(&alice2)), items(&inventory(&bob2)));
        assert_eq!(alice_now + bob_now, total_before, "items conserved");
        assert!(
            (alice_now, bob_now) == (alice_after_give, bob_after_give)
                || (alice_now, bob_now) == (alice_after_give - 1, bob_after_give + 1),
            "transfer all or nothing: before the crash {alice_after_give}/{bob_after_give}, \
             after {alice_now}/{bob_now}"
        );
        drop(server);
    })
    .await
    .expect("finished within 120 s");
}
