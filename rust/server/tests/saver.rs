//! The write-behind saver over a real SQLite store: coalescing, the backlog bound,
//! `committed` answers, loads (the default character, refusals) and the unsaved file.

mod common;

use std::time::{Duration, Instant};

use glam::Vec3;
use mmo_core::control::DisconnectReason;
use mmo_core::persist::{CharacterRecord, SlotRecord};
use mmo_net::auth::LoginGrant;
use mmo_net::persist::{CharacterStore, SaveBatch, SaveUrgency};
use mmo_server::persistence::{
    REPLAYING_FILE, Saver, SaverConfig, UNSAVED_FILE, default_character_name,
};
use mmo_server::storage::Store;
use mmo_server::storage::characters::NewCharacter;
use tokio::sync::oneshot;

use common::TempDir;
use common::db::TestDb;

const NOW_S: u64 = 1_700_000_000;

fn template() -> NewCharacter {
    NewCharacter {
        name: String::new(),
        race: "human".into(),
        class: "warrior".into(),
        zone_id: 1,
        position_m: Vec3::new(3.0, 4.0, 0.0),
        yaw_rad: 0.0,
        inventory: vec![SlotRecord {
            slot: 0,
            item: "potion".into(),
            quantity: 5,
            properties: Default::default(),
        }],
    }
}

fn config(dir: &TempDir, max_backlog_records: usize) -> SaverConfig {
    SaverConfig {
        max_backlog_records,
        template: template(),
        spawn: mmo_server::spawn_area::SpawnArea::at_point(template().position_m),
        max_characters_per_account: 3,
        data_dir: dir.path().to_owned(),
    }
}

async fn character(store: &Store, account: &str, name: &str) -> CharacterRecord {
    let id = store.ensure_account(account, NOW_S).await.unwrap();
    let mut new = template();
    new.name = name.into();
    store.create_character(id, &new, 3, NOW_S).await.unwrap()
}

fn at_version(record: &CharacterRecord, version: u64) -> CharacterRecord {
    let mut next = record.clone();
    next.version = version;
    next.position_m = Vec3::new(version as f32, 1.0, 2.0);
    next.experience = version * 10;
    next
}

fn batch(records: Vec<CharacterRecord>, urgency: SaveUrgency) -> SaveBatch {
    SaveBatch {
        records,
        urgency,
        committed: None,
    }
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn setup(tag: &str) -> (TestDb, TempDir, Store) {
    let db = TestDb::sqlite(tag);
    let dir = TempDir::new(tag);
    std::fs::create_dir_all(dir.path()).unwrap();
    let store = db.open().await;
    (db, dir, store)
}

#[tokio::test]
async fn coalesces_and_keeps_the_highest_version() {
    let (_db, dir, store) = setup("coalesce").await;
    let record = character(&store, "acc", "Anna").await;
    let saver = Saver::start(store.clone(), config(&dir, 100));
    for version in [1, 3, 2] {
        let sent = saver.save(batch(
            vec![at_version(&record, version)],
            SaveUrgency::Periodic,
        ));
        assert!(sent.is_ok());
    }
    assert_eq!(
        saver.backlog_records(),
        1,
        "three saves of one character coalesce"
    );
    wait_until(|| saver.backlog_records() == 0).await;
    let stored = store.load_character(record.character_id).await.unwrap();
    assert_eq!(stored, Some(at_version(&record, 3)));
    let report = saver.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.unsaved, 0);
}

#[tokio::test]
async fn a_full_backlog_returns_the_batch() {
    let (_db, dir, store) = setup("full").await;
    let a = character(&store, "acc", "Bert").await;
    let b = character(&store, "acc", "Cleo").await;
    let c = character(&store, "acc", "Dirk").await;
    // A closed pool: every flush fails (an outage), so the records stay pending.
    let saver = Saver::start(store.clone(), config(&dir, 2));
    store.close().await;
    let first = saver.save(batch(
        vec![at_version(&a, 1), at_version(&b, 1)],
        SaveUrgency::Now,
    ));
    assert!(first.is_ok());
    let refused = saver.save(batch(vec![at_version(&c, 1)], SaveUrgency::Periodic));
    let returned = refused.expect_err("the backlog is full");
    assert_eq!(returned.records, vec![at_version(&c, 1)]);
    // A newer version of a pending character replaces it: accepted.
    assert!(
        saver
            .save(batch(vec![at_version(&a, 2)], SaveUrgency::Periodic))
            .is_ok()
    );
    assert_eq!(saver.backlog_records(), 2);
    // A `Now` batch (logout, shutdown) of a new character is taken past the bound.
    assert!(
        saver
            .save(batch(vec![at_version(&c, 2)], SaveUrgency::Now))
            .is_ok(),
        "a Now batch is never refused by the backlog bound"
    );
    assert_eq!(saver.backlog_records(), 3);

    // Shutdown cannot save them either: they go to the unsaved file.
    let report = saver.shutdown(Duration::from_millis(300)).await;
    assert_eq!(report.unsaved, 3);
    let text = std::fs::read_to_string(dir.path().join(UNSAVED_FILE)).unwrap();
    let mut saved: Vec<CharacterRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    saved.sort_by_key(|r| r.character_id);
    assert_eq!(
        saved,
        vec![at_version(&a, 2), at_version(&b, 1), at_version(&c, 2)]
    );

    // The next start offers them again and renames the file once they are saved.
    let store = Store::open(&_db.url, None, 2).await.unwrap();
    let saver = Saver::start(store.clone(), config(&dir, 10));
    wait_until(|| saver.backlog_records() == 0).await;
    assert_eq!(
        store.load_character(a.character_id).await.unwrap(),
        Some(at_version(&a, 2))
    );
    assert_eq!(
        store.load_character(b.character_id).await.unwrap(),
        Some(at_version(&b, 1))
    );
    assert_eq!(
        store.load_character(c.character_id).await.unwrap(),
        Some(at_version(&c, 2))
    );
    wait_until(|| !dir.path().join(REPLAYING_FILE).exists()).await;
    assert!(!dir.path().join(UNSAVED_FILE).exists());
    saver.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn committed_is_answered_after_the_commit() {
    let (_db, dir, store) = setup("committed").await;
    let giver = character(&store, "acc1", "Elsa").await;
    let taker = character(&store, "acc2", "Fred").await;
    let saver = Saver::start(store.clone(), config(&dir, 100));
    let (tx, rx) = oneshot::channel();
    let sent = saver.save(SaveBatch {
        records: vec![at_version(&giver, 5), at_version(&taker, 7)],
        urgency: SaveUrgency::Now,
        committed: Some(tx),
    });
    assert!(sent.is_ok());
    let answer = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("answered")
        .expect("not dropped");
    assert_eq!(answer, Ok(()));
    // Both are stored by the time of the answer.
    assert_eq!(
        store
            .load_character(giver.character_id)
            .await
            .unwrap()
            .unwrap()
            .version,
        5
    );
    assert_eq!(
        store
            .load_character(taker.character_id)
            .await
            .unwrap()
            .unwrap()
            .version,
        7
    );
    // A bad record fails its own unit only, and goes to the unsaved file.
    let mut bad = at_version(&giver, 6);
    bad.inventory[0].quantity = u32::MAX;
    let (tx, rx) = oneshot::channel();
    let good = at_version(&taker, 8);
    assert!(
        saver
            .save(batch(vec![good.clone()], SaveUrgency::Periodic))
            .is_ok()
    );
    assert!(
        saver
            .save(SaveBatch {
                records: vec![bad.clone()],
                urgency: SaveUrgency::Now,
                committed: Some(tx),
            })
            .is_ok()
    );
    let answer = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .unwrap()
        .unwrap();
    assert!(answer.is_err(), "{answer:?}");
    wait_until(|| saver.backlog_records() == 0).await;
    assert_eq!(
        store.load_character(taker.character_id).await.unwrap(),
        Some(good)
    );
    let text = std::fs::read_to_string(dir.path().join(UNSAVED_FILE)).unwrap();
    let unsaved: CharacterRecord = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(unsaved, bad);
    saver.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_committed_unit_with_a_stale_record_is_answered_err() {
    let (_db, dir, store) = setup("stale-unit").await;
    let giver = character(&store, "acc1", "Gina").await;
    let taker = character(&store, "acc2", "Hugo").await;
    let saver = Saver::start(store.clone(), config(&dir, 100));
    // A newer session already saved the giver at version 10.
    assert!(
        saver
            .save(batch(vec![at_version(&giver, 10)], SaveUrgency::Now))
            .is_ok()
    );
    wait_until(|| saver.backlog_records() == 0).await;
    let (tx, rx) = oneshot::channel();
    let sent = saver.save(SaveBatch {
        records: vec![at_version(&giver, 5), at_version(&taker, 7)],
        urgency: SaveUrgency::Now,
        committed: Some(tx),
    });
    assert!(sent.is_ok());
    let answer = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("answered")
        .expect("not dropped");
    let message = answer.expect_err("a unit not written in full is not committed");
    assert!(
        message.contains(&giver.character_id.to_string()),
        "names the stale character: {message}"
    );
    assert_eq!(
        store.load_character(giver.character_id).await.unwrap(),
        Some(at_version(&giver, 10)),
        "the newer record stays"
    );
    saver.shutdown(Duration::from_secs(5)).await;
}

async fn load(
    saver: &Saver,
    account: &str,
    character_id: Option<u64>,
) -> Result<CharacterRecord, mmo_net::auth::LoginRefusal> {
    let grant = LoginGrant {
        account: account.into(),
        character_id,
    };
    tokio::time::timeout(Duration::from_secs(10), saver.load(&grant))
        .await
        .expect("answered")
        .expect("not dropped")
}

#[tokio::test]
async fn load_creates_the_default_character_and_refuses_others() {
    let (_db, dir, store) = setup("load").await;
    store.ensure_account("zoe.player", NOW_S).await.unwrap();
    // The derived name is taken by someone else: digits are appended.
    let other = character(&store, "other", "zoeplayer").await;
    let saver = Saver::start(store.clone(), config(&dir, 100));

    let created = load(&saver, "zoe.player", None).await.unwrap();
    assert_eq!(created.name, "zoeplayer2");
    assert_eq!(created.position_m, template().position_m);
    assert_eq!(created.inventory, template().inventory);
    assert_eq!(created.version, 0);
    let again = load(&saver, "zoe.player", None).await.unwrap();
    assert_eq!(again, created, "the same character, not a second one");
    let by_id = load(&saver, "zoe.player", Some(created.character_id))
        .await
        .unwrap();
    assert_eq!(by_id, created);

    let refused = load(&saver, "zoe.player", Some(other.character_id))
        .await
        .unwrap_err();
    assert_eq!(refused.reason, DisconnectReason::BadToken);
    assert_eq!(
        refused.message,
        format!(
            "character {} does not belong to account zoe.player",
            other.character_id
        )
    );
    let refused = load(&saver, "zoe.player", Some(999_999)).await.unwrap_err();
    assert_eq!(refused.message, "character 999999 does not exist");
    let refused = load(&saver, "nobody", None).await.unwrap_err();
    assert_eq!(
        (refused.reason, refused.message.as_str()),
        (DisconnectReason::BadToken, "unknown account")
    );

    // A pending newer record is what a re-login gets.
    store.close().await;
    let newer = at_version(&created, 4);
    assert!(
        saver
            .save(batch(vec![newer], SaveUrgency::Periodic))
            .is_ok()
    );
    let refused = load(&saver, "zoe.player", None).await.unwrap_err();
    assert_eq!(refused.reason, DisconnectReason::ServiceUnavailable);
    saver.shutdown(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn default_characters_start_spread_over_the_spawn_disc() {
    let (_db, dir, store) = setup("spread").await;
    let mut config = config(&dir, 100);
    config.spawn.spread_m = 30.0;
    let spawn = config.spawn;
    let saver = Saver::start(store.clone(), config);
    let mut starts = Vec::new();
    for account in ["ann", "ben", "cyd"] {
        store.ensure_account(account, NOW_S).await.unwrap();
        let created = load(&saver, account, None).await.unwrap();
        assert_eq!(created.position_m, spawn.point_for(account), "{account}");
        let offset_m = (created.position_m - template().position_m)
            .truncate()
            .length();
        assert!(offset_m <= 30.0 + 1e-3, "{account} starts {offset_m} m out");
        starts.push(created.position_m);
    }
    assert!(
        starts[0] != starts[1] && starts[1] != starts[2],
        "{starts:?}"
    );
    saver.shutdown(Duration::from_millis(200)).await;
}

#[test]
fn default_names_are_valid_character_names() {
    assert_eq!(default_character_name("zoe.player", 0), "zoeplayer");
    assert_eq!(default_character_name("zoe.player", 1), "zoeplayer2");
    assert_eq!(default_character_name("42", 0), "C42");
    assert_eq!(default_character_name("a", 0), "a0");
    let long = default_character_name(&"x".repeat(40), 11);
    assert_eq!(long.len(), 24);
    assert!(long.ends_with("12"));
    for name in [long, default_character_name("...", 0)] {
        assert!(mmo_core::persist::valid_character_name(&name), "{name}");
    }
}
