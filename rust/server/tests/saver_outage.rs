//! A PostgreSQL outage under the saver: a PostgreSQL cluster of this test's own is stopped
//! for ~3 s while characters are saved; the saves are kept (backlog and error metrics
//! rise), and after the restart everything is written and nothing is lost.
//!
//! Needs `ci/services.sh` (PostgreSQL installed or installable); follows the services
//! rule of `common::db` (skipped without `MMO_TEST_POSTGRES_URL` unless required).

mod common;

use std::time::{Duration, Instant};

use glam::Vec3;
use mmo_core::persist::{CharacterRecord, SlotRecord};
use mmo_net::persist::{CharacterStore, SaveBatch, SaveUrgency};
use mmo_server::persistence::{BACKLOG_RECORDS, ERRORS_TOTAL, Saver, SaverConfig};
use mmo_server::storage::Store;
use mmo_server::storage::characters::NewCharacter;
use tokio::sync::oneshot;

use common::TempDir;
use common::cluster::{Cluster, metric};
use common::db::postgres_server_url;

const CHARACTERS: usize = 20;

fn changed(record: &CharacterRecord, version: u64) -> CharacterRecord {
    let mut next = record.clone();
    next.version = version;
    next.position_m = Vec3::new(version as f32, 0.5, 0.25);
    next.pools = vec![("health".into(), 10.0 * version as f32)];
    next.inventory.push(SlotRecord {
        slot: 7,
        item: "gem".into(),
        quantity: u32::try_from(version).unwrap(),
        properties: [("cut".to_owned(), "oval".to_owned())].into(),
    });
    next
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_survive_a_postgres_outage() {
    if postgres_server_url().is_none() {
        return;
    }
    let handle = mmo_server::metrics::global();
    let cluster = Cluster::start("saver-outage");
    let store = Store::open(&cluster.url(), None, 4).await.unwrap();
    let account = store.ensure_account("outage", 1).await.unwrap();
    let mut characters = Vec::new();
    for i in 0..CHARACTERS {
        let new = NewCharacter {
            name: format!("Hero{i}"),
            race: "human".into(),
            class: "warrior".into(),
            zone_id: 1,
            position_m: Vec3::ZERO,
            yaw_rad: 0.0,
            inventory: Vec::new(),
        };
        characters.push(store.create_character(account, &new, 100, 1).await.unwrap());
    }
    let data = TempDir::new("outage-data");
    std::fs::create_dir_all(data.path()).unwrap();
    let saver = Saver::start(
        store.clone(),
        SaverConfig {
            max_backlog_records: 1000,
            template: NewCharacter {
                name: String::new(),
                race: "human".into(),
                class: "warrior".into(),
                zone_id: 1,
                position_m: Vec3::ZERO,
                yaw_rad: 0.0,
                inventory: Vec::new(),
            },
            spawn: mmo_server::spawn_area::SpawnArea::at_point(Vec3::ZERO),
            max_characters_per_account: 3,
            data_dir: data.path().to_owned(),
        },
    );

    cluster.stop_postgres();
    let outage_started = Instant::now();
    // Periodic saves of everyone, then a transfer-like batch of two with `committed`.
    let first: Vec<CharacterRecord> = characters.iter().map(|c| changed(c, 1)).collect();
    assert!(
        saver
            .save(SaveBatch {
                records: first,
                urgency: SaveUrgency::Periodic,
                committed: None
            })
            .is_ok()
    );
    let pair = vec![changed(&characters[0], 2), changed(&characters[1], 2)];
    let (tx, mut rx) = oneshot::channel();
    assert!(
        saver
            .save(SaveBatch {
                records: pair,
                urgency: SaveUrgency::Now,
                committed: Some(tx)
            })
            .is_ok()
    );
    // Saves keep being accepted during the outage (coalesced per character).
    let mut expected: Vec<CharacterRecord> = characters.iter().map(|c| changed(c, 1)).collect();
    expected[0] = changed(&characters[0], 2);
    expected[1] = changed(&characters[1], 2);
    // At least 3 s, and until a flush has failed: the first attempt waits for a
    // connection up to the store's acquire timeout (5 s) before it reports the outage.
    let error_label = format!("{ERRORS_TOTAL}{{kind=\"unavailable\"}}");
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(rx.try_recv().is_err(), "not committed during the outage");
        assert_eq!(saver.backlog_records(), CHARACTERS, "everything is kept");
        let text = mmo_server::metrics::render(&handle);
        assert_eq!(metric(&text, BACKLOG_RECORDS), CHARACTERS as f64, "{text}");
        let failed = metric(&text, &error_label) >= 1.0;
        if failed && outage_started.elapsed() >= Duration::from_secs(3) {
            break;
        }
        assert!(
            outage_started.elapsed() < Duration::from_secs(15),
            "no failed flush reported: {text}"
        );
    }

    cluster.start_postgres();
    let answer = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .expect("committed after the restart")
        .expect("answered");
    assert_eq!(answer, Ok(()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while saver.backlog_records() > 0 {
        assert!(Instant::now() < deadline, "backlog drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for record in &expected {
        let stored = store.load_character(record.character_id).await.unwrap();
        assert_eq!(stored.as_ref(), Some(record), "nothing lost");
    }
    let text = mmo_server::metrics::render(&handle);
    assert_eq!(metric(&text, BACKLOG_RECORDS), 0.0);
    let report = saver.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.unsaved, 0);
    assert!(
        !data
            .path()
            .join(mmo_server::persistence::UNSAVED_FILE)
            .exists()
    );
    store.close().await;
}
