//! Character storage against both backends: one suite of test functions, each run on
//! SQLite (a temp dir) and on PostgreSQL (a fresh database per test; see `common::db` for
//! the skip rule).

mod common;

use std::collections::BTreeMap;

use glam::Vec3;
use mmo_core::persist::{CharacterRecord, EQUIPMENT_SLOT_BASE, SlotRecord};
use mmo_server::storage::characters::NewCharacter;
use mmo_server::storage::{Backend, Store, StoreError};

use common::db::TestDb;

const NOW_S: u64 = 1_700_000_000;

fn slot(slot: u32, item: &str, quantity: u32, properties: &[(&str, &str)]) -> SlotRecord {
    SlotRecord {
        slot,
        item: item.into(),
        quantity,
        properties: properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn new_character(name: &str) -> NewCharacter {
    NewCharacter {
        name: name.into(),
        race: "human".into(),
        class: "warrior".into(),
        zone_id: 1,
        position_m: Vec3::new(1.5, -2.25, 0.0),
        yaw_rad: 0.5,
        inventory: vec![slot(0, "potion", 3, &[])],
    }
}

/// A changed copy of `record` at `version`: moved, hurt, with a new inventory.
fn changed(record: &CharacterRecord, version: u64) -> CharacterRecord {
    let mut next = record.clone();
    next.version = version;
    next.level = 3;
    next.experience = 1234;
    next.zone_id = 2;
    next.position_m = Vec3::new(10.1, 20.2, 0.3 * version as f32);
    next.yaw_rad = -1.25;
    next.pools = vec![("health".into(), 48.5), ("mana".into(), 0.1)];
    next.inventory = vec![
        slot(0, "potion", 2, &[]),
        slot(4, "gem", 1, &[("cut", "brilliant"), ("colour", "red")]),
        slot(
            EQUIPMENT_SLOT_BASE + 2,
            "iron_sword",
            1,
            &[("durability", "87"), ("crafter", "Alice")],
        ),
    ];
    next
}

async fn create_list_delete(store: Store, _db: &TestDb) {
    let a = store.ensure_account("acc_a", NOW_S).await.unwrap();
    let b = store.ensure_account("acc_b", NOW_S).await.unwrap();
    let alice = store
        .create_character(a, &new_character("Alice"), 2, NOW_S)
        .await
        .unwrap();
    assert_eq!(alice.account_id, a);
    assert_eq!(alice.version, 0);
    let taken = store
        .create_character(b, &new_character("Alice"), 2, NOW_S)
        .await;
    assert_eq!(
        taken,
        Err(StoreError::Conflict(
            "character name `Alice` is taken".into()
        ))
    );
    let bob = store
        .create_character(a, &new_character("Bob"), 2, NOW_S)
        .await
        .unwrap();
    let third = store
        .create_character(a, &new_character("Carol"), 2, NOW_S)
        .await;
    assert!(
        matches!(third, Err(StoreError::LimitReached(_))),
        "{third:?}"
    );
    let bad = store
        .create_character(a, &new_character("9lives"), 5, NOW_S)
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");

    let list = store.list_characters(a).await.unwrap();
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Alice", "Bob"]);
    assert_eq!(list[0].character_id, alice.character_id);
    assert_eq!((list[0].level, list[0].zone_id), (1, 1));
    assert!(store.list_characters(b).await.unwrap().is_empty());

    // Another account cannot delete it; its owner can, and the name is free again.
    assert!(!store.delete_character(b, alice.character_id).await.unwrap());
    assert!(store.delete_character(a, alice.character_id).await.unwrap());
    assert!(!store.delete_character(a, alice.character_id).await.unwrap());
    assert_eq!(
        store.load_character(alice.character_id).await.unwrap(),
        None
    );
    let list = store.list_characters(a).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].character_id, bob.character_id);
    let again = store
        .create_character(b, &new_character("Alice"), 2, NOW_S)
        .await
        .unwrap();
    assert_ne!(
        again.character_id, alice.character_id,
        "ids are never reused"
    );
    assert_eq!(
        store.first_character_id(b).await.unwrap(),
        Some(again.character_id)
    );
}

async fn load_what_was_created(store: Store, _db: &TestDb) {
    let a = store.ensure_account("acc", NOW_S).await.unwrap();
    let mut new = new_character("Dana");
    new.inventory
        .push(slot(EQUIPMENT_SLOT_BASE, "cap", 1, &[("dye", "blue")]));
    let created = store.create_character(a, &new, 3, NOW_S).await.unwrap();
    assert_eq!(created.inventory, new.inventory);
    let loaded = store.load_character(created.character_id).await.unwrap();
    assert_eq!(loaded, Some(created));
}

async fn save_round_trip(store: Store, _db: &TestDb) {
    let a = store.ensure_account("acc", NOW_S).await.unwrap();
    let created = store
        .create_character(a, &new_character("Erin"), 3, NOW_S)
        .await
        .unwrap();
    let next = changed(&created, 1);
    let report = store
        .save_characters(std::slice::from_ref(&next), NOW_S + 30)
        .await
        .unwrap();
    assert_eq!(report.written, 1);
    assert!(report.stale.is_empty() && report.missing.is_empty());
    let loaded = store
        .load_character(created.character_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        loaded, next,
        "position, pools and inventory read back exactly"
    );
    // Only what changed is rewritten: slot 0 moves to 7, slot 4 stays, the sword's
    // durability drops; the stored inventory is exactly the new one.
    let mut moved = changed(&created, 2);
    moved.inventory[0].slot = 7;
    moved.inventory.sort_by_key(|s| s.slot);
    if let Some(sword) = moved.inventory.iter_mut().find(|s| s.item == "iron_sword") {
        sword.properties.insert("durability".into(), "86".into());
    }
    let report = store
        .save_characters(std::slice::from_ref(&moved), NOW_S + 45)
        .await
        .unwrap();
    assert_eq!(report.written, 1);
    let loaded = store.load_character(created.character_id).await.unwrap();
    assert_eq!(
        loaded,
        Some(moved),
        "moved slot, kept slot, changed property"
    );
    // An emptied inventory is saved as empty.
    let mut bare = changed(&created, 3);
    bare.inventory.clear();
    store
        .save_characters(&[bare.clone()], NOW_S + 60)
        .await
        .unwrap();
    let loaded = store.load_character(created.character_id).await.unwrap();
    assert_eq!(loaded, Some(bare));
}

/// One save of three characters: one keeps part of its inventory (single rows go), one
/// changes every row (all its rows go at once), one changes nothing in it; each reads back
/// exactly.
async fn mixed_inventory_changes_in_one_save(store: Store, _db: &TestDb) {
    let a = store.ensure_account("acc", NOW_S).await.unwrap();
    let mut records = Vec::new();
    for name in ["Ada", "Bo", "Cy"] {
        let created = store
            .create_character(a, &new_character(name), 3, NOW_S)
            .await
            .unwrap();
        records.push(changed(&created, 1));
    }
    store.save_characters(&records, NOW_S + 1).await.unwrap();
    let mut next: Vec<CharacterRecord> = records.clone();
    for r in &mut next {
        r.version = 2;
        r.position_m.x += 1.0;
    }
    // Ada: the gem goes, the potion stack grows, the sword stays.
    next[0].inventory.retain(|s| s.item != "gem");
    next[0].inventory[0].quantity = 5;
    // Bo: every row changes.
    for s in &mut next[1].inventory {
        s.quantity += 1;
    }
    // Cy: inventory unchanged (only moved).
    let report = store.save_characters(&next, NOW_S + 2).await.unwrap();
    assert_eq!(report.written, 3);
    for r in &next {
        assert_eq!(
            store.load_character(r.character_id).await.unwrap().as_ref(),
            Some(r),
            "{} reads back as saved",
            r.name
        );
    }
}

async fn version_rule(store: Store, _db: &TestDb) {
    let a = store.ensure_account("acc", NOW_S).await.unwrap();
    let created = store
        .create_character(a, &new_character("Finn"), 3, NOW_S)
        .await
        .unwrap();
    let id = created.character_id;
    let v2 = changed(&created, 2);
    assert_eq!(
        store
            .save_characters(std::slice::from_ref(&v2), NOW_S)
            .await
            .unwrap()
            .written,
        1
    );

    // Equal and older versions are stale and change nothing.
    let mut equal = changed(&created, 2);
    equal.level = 99;
    let mut older = changed(&created, 1);
    older.level = 98;
    for record in [equal, older] {
        let report = store.save_characters(&[record], NOW_S).await.unwrap();
        assert_eq!((report.written, report.stale.clone()), (0, vec![id]));
    }
    assert_eq!(store.load_character(id).await.unwrap(), Some(v2));

    // Newer is written; within one slice the highest version of an id counts.
    let v3 = changed(&created, 3);
    let mut v4 = changed(&created, 4);
    v4.level = 7;
    let report = store
        .save_characters(&[v4.clone(), v3], NOW_S)
        .await
        .unwrap();
    assert_eq!((report.written, report.stale), (1, vec![id]));
    assert_eq!(store.load_character(id).await.unwrap(), Some(v4));
}

async fn one_transaction(store: Store, _db: &TestDb) {
    let a = store.ensure_account("acc", NOW_S).await.unwrap();
    let first = store
        .create_character(a, &new_character("Gina"), 3, NOW_S)
        .await
        .unwrap();
    let second = store
        .create_character(a, &new_character("Hugo"), 3, NOW_S)
        .await
        .unwrap();
    let good = changed(&first, 1);

    // A quantity the INT column cannot hold: found after the players were updated.
    let mut too_many = changed(&second, 1);
    too_many.inventory[0].quantity = u32::MAX;
    let result = store
        .save_characters(&[good.clone(), too_many], NOW_S)
        .await;
    assert!(
        matches!(&result, Err(StoreError::Invalid(m)) if m.contains(&second.character_id.to_string())),
        "{result:?}"
    );
    // A quantity the database refuses (CHECK quantity >= 1), while inserting inventory.
    let mut none = changed(&second, 1);
    none.inventory[0].quantity = 0;
    let result = store.save_characters(&[good.clone(), none], NOW_S).await;
    assert!(result.is_err(), "{result:?}");
    assert!(!result.unwrap_err().is_retryable());

    // Nothing of either slice was written.
    assert_eq!(
        store.load_character(first.character_id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.load_character(second.character_id).await.unwrap(),
        Some(second)
    );
    // And the good record alone is.
    assert_eq!(
        store
            .save_characters(std::slice::from_ref(&good), NOW_S)
            .await
            .unwrap()
            .written,
        1
    );
    assert_eq!(
        store.load_character(first.character_id).await.unwrap(),
        Some(good)
    );
}

async fn deleted_are_missing(store: Store, _db: &TestDb) {
    let a = store.ensure_account("acc", NOW_S).await.unwrap();
    let kept = store
        .create_character(a, &new_character("Ivy"), 3, NOW_S)
        .await
        .unwrap();
    let gone = store
        .create_character(a, &new_character("Jack"), 3, NOW_S)
        .await
        .unwrap();
    assert!(store.delete_character(a, gone.character_id).await.unwrap());
    let report = store
        .save_characters(&[changed(&kept, 1), changed(&gone, 1)], NOW_S)
        .await
        .unwrap();
    assert_eq!(report.written, 1);
    assert_eq!(report.missing, vec![gone.character_id]);
    assert!(report.stale.is_empty());
}

async fn corrupt_rows_name_the_character(store: Store, db: &TestDb) {
    let a = store.ensure_account("acc", NOW_S).await.unwrap();
    let created = store
        .create_character(a, &new_character("Kim"), 3, NOW_S)
        .await
        .unwrap();
    let sql = match store.backend() {
        // Valid JSON (the column is JSONB) of the wrong shape.
        Backend::Postgres => "UPDATE players SET pools = '{\"health\": \"full\"}'",
        Backend::Sqlite => "UPDATE players SET pools = 'not json'",
    };
    db.execute(sql).await;
    let result = store.load_character(created.character_id).await;
    assert!(
        matches!(&result, Err(StoreError::Corrupt(m)) if m.contains(&format!("character {}", created.character_id))),
        "{result:?}"
    );
}

/// A stored inventory row the save cannot compare (on SQLite a quantity kept as a real
/// or as text; PostgreSQL's typed columns cannot hold one, so there a property object of
/// the wrong shape) does not stop the save: the character's rows are rewritten and read
/// back as saved.
async fn odd_stored_rows_are_rewritten_by_the_next_save(store: Store, db: &TestDb) {
    let a = store.ensure_account("acc", NOW_S).await.unwrap();
    let created = store
        .create_character(a, &new_character("Lou"), 3, NOW_S)
        .await
        .unwrap();
    let first = changed(&created, 1);
    store
        .save_characters(std::slice::from_ref(&first), NOW_S + 1)
        .await
        .unwrap();
    let sql = match store.backend() {
        Backend::Postgres => "UPDATE inventory SET properties = '{\"n\": 1}'",
        Backend::Sqlite => "UPDATE inventory SET quantity = CASE slot WHEN 0 THEN 2.5 ELSE 'x' END",
    };
    db.execute(sql).await;
    let mut next = first.clone();
    next.version = 2;
    let report = store
        .save_characters(std::slice::from_ref(&next), NOW_S + 2)
        .await
        .unwrap();
    assert_eq!(report.written, 1);
    assert_eq!(
        store.load_character(created.character_id).await.unwrap(),
        Some(next)
    );
}

/// Lists come from the read pool: with a replica (here another database) that has not
/// seen a character, the list does not show it; loads (primary) do.
async fn lists_use_the_read_pool(store: Store, db: &TestDb) {
    if store.backend() != Backend::Postgres {
        return;
    }
    let replica = TestDb::postgres("replica").await.unwrap();
    replica.open().await.close().await;
    let with_replica = Store::open(&db.url, Some(&replica.url), 2).await.unwrap();
    let a = with_replica.ensure_account("acc", NOW_S).await.unwrap();
    let created = with_replica
        .create_character(a, &new_character("Lena"), 3, NOW_S)
        .await
        .unwrap();
    assert!(with_replica.list_characters(a).await.unwrap().is_empty());
    assert_eq!(store.list_characters(a).await.unwrap().len(), 1);
    assert!(
        with_replica
            .load_character(created.character_id)
            .await
            .unwrap()
            .is_some()
    );
    with_replica.close().await;
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDb::sqlite(stringify!($name));
                    let store = db.open().await;
                    super::$name(store.clone(), &db).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    let store = db.open().await;
                    super::$name(store.clone(), &db).await;
                    store.close().await;
                }
            )*
        }
    };
}

on_both_backends!(
    create_list_delete,
    load_what_was_created,
    save_round_trip,
    mixed_inventory_changes_in_one_save,
    version_rule,
    one_transaction,
    deleted_are_missing,
    corrupt_rows_name_the_character,
    odd_stored_rows_are_rewritten_by_the_next_save,
);

#[tokio::test]
async fn postgres_lists_use_the_read_pool() {
    let Some(db) = TestDb::postgres("readpool").await else {
        return;
    };
    let store = db.open().await;
    lists_use_the_read_pool(store.clone(), &db).await;
    store.close().await;
}
