//! Tests of `zone::persistence` and `zone::transfer`.

use std::collections::BTreeMap;

use glam::Vec3;

use super::*;
use crate::control::{self, ClientControl, ServerControl};
use crate::gameplay::messages::{InventoryOp, InventoryRequest};
use crate::session::Transmit;
use crate::zone::{PendingTransfer, ZoneConfig};

fn content() -> Content {
    Content::default_content().expect("built-in content")
}

fn base_record(zone: &Zone) -> CharacterRecord {
    let c = &zone.config().gameplay.content;
    CharacterRecord {
        character_id: 7,
        account_id: 3,
        name: "Alice".into(),
        race: c.races()[0].id.clone(),
        class: c.classes()[0].id.clone(),
        level: 4,
        experience: 99,
        zone_id: 0,
        position_m: Vec3::new(3.0, 4.0, 0.0),
        yaw_rad: 1.25,
        pools: Vec::new(),
        inventory: starting_inventory(c),
        version: 5,
    }
}

/// A connection with its login pending.
fn pending(zone: &mut Zone) -> ConnectionId {
    crate::zone::test_support::pending_login(zone)
}

fn send_request(zone: &mut Zone, id: ConnectionId, request: u32, op: InventoryOp) {
    let mut bytes = Vec::new();
    control::encode_frame(
        &ClientControl::Inventory(InventoryRequest { request, op }),
        &mut bytes,
    )
    .expect("encodable");
    zone.handle_stream(id, 0, &bytes);
}

/// Control messages sent to `id` since the last call (each transmit holds whole frames).
fn received(zone: &mut Zone, id: ConnectionId) -> Vec<ServerControl> {
    let mut decoder = control::FrameDecoder::new();
    let mut out = Vec::new();
    while let Some(t) = zone.poll_transmit(id) {
        if let Transmit::Stream(bytes) = t {
            decoder.push(&bytes);
            while let Some(m) = decoder.next_message().expect("server frames decode") {
                out.push(m);
            }
        }
    }
    out
}

fn results(messages: &[ServerControl]) -> Vec<(u32, Option<String>)> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerControl::InventoryResult(r) => {
                Some((r.request, r.refusal.as_ref().map(|f| f.kind.clone())))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn starting_inventory_is_the_starting_kit() {
    let c = content();
    let records = starting_inventory(&c);
    let total: u64 = records.iter().map(|r| u64::from(r.quantity)).sum();
    let expected: u64 = c
        .rules()
        .starting_items
        .iter()
        .map(|&(_, q)| u64::from(q))
        .sum();
    assert_eq!(total, expected);
    assert!(records.windows(2).all(|w| w[0].slot < w[1].slot));
    assert!(records.iter().all(|r| c.item_id(&r.item).is_some()));
}

#[test]
fn a_record_round_trips_through_a_login() {
    let mut zone = Zone::new(ZoneConfig::default()).expect("valid");
    let c = zone.config().gameplay.content.clone();
    let mut record = base_record(&zone);
    // An equipped item and a bag item with properties, and a damaged pool.
    let equippable = c
        .items()
        .iter()
        .find(|d| d.equip_slot.is_some())
        .expect("the default content has equipment");
    let slot = equippable.equip_slot.expect("checked");
    record.inventory.push(SlotRecord {
        slot: EQUIPMENT_SLOT_BASE + slot.index() as u32,
        item: equippable.id.clone(),
        quantity: 1,
        properties: BTreeMap::from([("enchant".to_owned(), "fire".to_owned())]),
    });
    let health = &c.pools()[usize::from(c.health_pool().0)];
    record.pools = vec![(health.id.clone(), 40.0)];
    let id = pending(&mut zone);
    let entity = zone
        .accept_login_record(id, &record)
        .expect("valid record")
        .expect("login pending");
    assert_eq!(
        zone.character(id).map(|s| s.position_m),
        Some(record.position_m)
    );
    let g = zone.character_gameplay(id).expect("gameplay");
    assert_eq!(g.pools.health(), 40);
    let snap = zone.character_record(id, &record).expect("logged in");
    assert_eq!(snap.inventory, record.inventory);
    assert_eq!(snap.position_m, record.position_m);
    assert_eq!(snap.yaw_rad, record.yaw_rad);
    assert_eq!(
        (
            snap.character_id,
            snap.name.as_str(),
            snap.level,
            snap.version
        ),
        (7, "Alice", 4, 5)
    );
    // Every pool is listed; those the record did not name are full.
    assert_eq!(snap.pools.len(), c.pools().len());
    for (name, value) in &snap.pools {
        let pool = c.pool_id(name).expect("content pool");
        let expected = if *name == health.id {
            40.0
        } else {
            g.pools.max(pool) as f32
        };
        assert_eq!(*value, expected, "{name}");
    }
    assert_eq!(
        zone.entity_state(entity).map(|s| s.position_m),
        Some(record.position_m)
    );
    // No login pending any more.
    assert_eq!(zone.accept_login_record(id, &record), Ok(None));
}

#[test]
fn unknown_ids_are_refused_by_name() {
    let mut zone = Zone::new(ZoneConfig::default()).expect("valid");
    let id = pending(&mut zone);
    let good = base_record(&zone);
    let mut bad = good.clone();
    bad.class = "necromancer".into();
    let e = zone.accept_login_record(id, &bad).expect_err("class");
    assert!(e.contains("`necromancer`"), "{e}");
    let mut bad = good.clone();
    bad.race = "dragon".into();
    let e = zone.accept_login_record(id, &bad).expect_err("race");
    assert!(e.contains("`dragon`"), "{e}");
    let mut bad = good.clone();
    bad.inventory.push(SlotRecord {
        slot: 30,
        item: "unobtainium".into(),
        quantity: 1,
        properties: BTreeMap::new(),
    });
    let e = zone.accept_login_record(id, &bad).expect_err("item");
    assert!(e.contains("`unobtainium`") && e.contains("slot 30"), "{e}");
    let mut bad = good.clone();
    bad.inventory.push(SlotRecord {
        slot: EQUIPMENT_SLOT_BASE + 50,
        item: good.inventory[0].item.clone(),
        quantity: 1,
        properties: BTreeMap::new(),
    });
    assert!(zone.accept_login_record(id, &bad).is_err());
    // Nothing was spawned by the refusals; the good record still logs in.
    assert!(zone.character(id).is_none());
    assert!(
        zone.accept_login_record(id, &good)
            .expect("valid")
            .is_some()
    );
}

#[test]
fn pools_are_clamped_and_unknown_pools_ignored() {
    let mut zone = Zone::new(ZoneConfig::default()).expect("valid");
    let c = zone.config().gameplay.content.clone();
    let mut record = base_record(&zone);
    let health = c.pools()[usize::from(c.health_pool().0)].id.clone();
    record.pools = vec![(health, 1.0e9), ("sanity".into(), 3.0)];
    let id = pending(&mut zone);
    zone.accept_login_record(id, &record)
        .expect("valid")
        .expect("pending");
    let g = zone.character_gameplay(id).expect("gameplay");
    assert_eq!(g.pools.health(), g.pools.health_max());
}

#[test]
fn the_dead_respawn_at_the_spawn_point_with_full_pools() {
    let config = ZoneConfig {
        spawn_position_m: Vec3::new(-5.0, 2.0, 0.0),
        ..ZoneConfig::default()
    };
    let mut zone = Zone::new(config).expect("valid");
    let c = zone.config().gameplay.content.clone();
    let mut record = base_record(&zone);
    record.pools = c.pools().iter().map(|p| (p.id.clone(), 0.0)).collect();
    let id = pending(&mut zone);
    zone.accept_login_record(id, &record)
        .expect("valid")
        .expect("pending");
    assert_eq!(
        zone.character(id).map(|s| s.position_m),
        Some(Vec3::new(-5.0, 2.0, 0.0))
    );
    let g = zone.character_gameplay(id).expect("gameplay");
    assert!(!g.pools.is_dead());
    for i in 0..c.pools().len() {
        let pool = crate::gameplay::content::PoolId(i as u16);
        assert_eq!(g.pools.current(pool), g.pools.max(pool));
    }
    // A dead live character is saved as it is.
    let now_ms = zone.now_ms();
    let g = zone.character_gameplay_mut(id).expect("gameplay");
    g.pools.damage(u32::MAX, now_ms);
    let snap = zone.character_record(id, &record).expect("logged in");
    let health = &c.pools()[usize::from(c.health_pool().0)].id;
    assert!(snap.pools.iter().any(|(n, v)| n == health && *v == 0.0));
}

/// Two logged-in players `distance_m` apart, giving allowed at once or held for commit.
fn two_players(distance_m: f32, await_commit: bool) -> (Zone, ConnectionId, ConnectionId) {
    let mut zone = Zone::new(ZoneConfig::default()).expect("valid");
    zone.set_transfers_await_commit(await_commit);
    let mut a = base_record(&zone);
    a.position_m = Vec3::new(0.0, 0.0, 0.0);
    let mut b = a.clone();
    b.character_id = 8;
    b.position_m = Vec3::new(distance_m, 0.0, 0.0);
    b.inventory.clear();
    let (ia, ib) = (pending(&mut zone), pending(&mut zone));
    zone.accept_login_record(ia, &a)
        .expect("valid")
        .expect("pending");
    zone.accept_login_record(ib, &b)
        .expect("valid")
        .expect("pending");
    zone.run_tick();
    received(&mut zone, ia);
    received(&mut zone, ib);
    (zone, ia, ib)
}

fn entity(zone: &Zone, id: ConnectionId) -> crate::entity::EntityId {
    zone.connection(id)
        .and_then(|c| c.entity())
        .expect("logged in")
}

fn total(zone: &Zone, ids: &[ConnectionId]) -> u64 {
    ids.iter()
        .map(|&id| {
            zone.character_gameplay(id)
                .expect("gameplay")
                .inventory
                .total_items()
        })
        .sum()
}

#[test]
fn give_waits_for_the_commit_and_conserves_items() {
    let (mut zone, a, b) = two_players(2.0, true);
    let before = total(&zone, &[a, b]);
    let slot = zone
        .character_record(a, &base_record(&zone))
        .expect("logged in")
        .inventory[0]
        .clone();
    let to = entity(&zone, b);
    send_request(
        &mut zone,
        a,
        11,
        InventoryOp::Give {
            slot: slot.slot,
            quantity: 1,
            to,
        },
    );
    zone.run_tick();
    let pending = zone.drain_transfers();
    assert_eq!(
        pending,
        vec![PendingTransfer {
            giver: a,
            receiver: b,
            request: 11
        }]
    );
    assert!(
        results(&received(&mut zone, a)).is_empty(),
        "not answered before the commit"
    );
    assert_eq!(total(&zone, &[a, b]), before, "conserved");
    let item = zone
        .config()
        .gameplay
        .content
        .item_id(&slot.item)
        .expect("known");
    assert_eq!(
        zone.character_gameplay(b)
            .expect("gameplay")
            .inventory
            .count(item),
        1
    );
    zone.finish_transfer(&pending[0], Ok(()));
    let to_a = received(&mut zone, a);
    assert_eq!(results(&to_a), vec![(11, None)]);
    assert!(
        to_a.iter()
            .any(|m| matches!(m, ServerControl::Inventory(_)))
    );
    let to_b = received(&mut zone, b);
    assert!(to_b.iter().any(|m| matches!(m, ServerControl::Inventory(v) if v.bag.iter().flatten().any(|s| s.item == item))));
    // A failed commit is reported, and the items stay moved.
    send_request(
        &mut zone,
        a,
        12,
        InventoryOp::Give {
            slot: slot.slot,
            quantity: 1,
            to,
        },
    );
    zone.run_tick();
    let pending = zone.drain_transfers();
    assert_eq!(pending.len(), 1);
    zone.finish_transfer(&pending[0], Err("database down".into()));
    let r = results(&received(&mut zone, a));
    assert_eq!(r, vec![(12, Some("inventory_not_saved".to_owned()))]);
    assert_eq!(total(&zone, &[a, b]), before);
}

#[test]
fn give_without_a_store_is_answered_at_once() {
    let (mut zone, a, b) = two_players(1.0, false);
    let slot = zone
        .character_record(a, &base_record(&zone))
        .expect("in")
        .inventory[0]
        .slot;
    let to = entity(&zone, b);
    send_request(
        &mut zone,
        a,
        3,
        InventoryOp::Give {
            slot,
            quantity: 1,
            to,
        },
    );
    zone.run_tick();
    assert!(zone.drain_transfers().is_empty());
    assert_eq!(results(&received(&mut zone, a)), vec![(3, None)]);
}

#[test]
fn give_refusals() {
    let (mut zone, a, b) = two_players(6.0, true);
    let before = total(&zone, &[a, b]);
    let slot = zone
        .character_record(a, &base_record(&zone))
        .expect("in")
        .inventory[0]
        .slot;
    let (ea, eb) = (entity(&zone, a), entity(&zone, b));
    let cases = [
        (
            1,
            InventoryOp::Give {
                slot,
                quantity: 1,
                to: eb,
            },
            "inventory_target_out_of_range",
            false,
        ),
        (
            2,
            InventoryOp::Give {
                slot,
                quantity: 1,
                to: crate::entity::EntityId(999),
            },
            "inventory_target_gone",
            false,
        ),
        (
            3,
            InventoryOp::Give {
                slot,
                quantity: 1,
                to: ea,
            },
            "inventory_bad_target",
            true,
        ),
    ];
    for (request, op, kind, struck) in cases {
        send_request(&mut zone, a, request, op);
        zone.run_tick();
        assert_eq!(
            results(&received(&mut zone, a)),
            vec![(request, Some(kind.to_owned()))]
        );
        let refused: Vec<_> = zone
            .drain_events()
            .filter_map(|(_, e)| match e {
                crate::session::server::ServerEvent::Refused { kind, struck, .. } => {
                    Some((kind, struck))
                }
                _ => None,
            })
            .collect();
        assert_eq!(refused, vec![(kind, struck)]);
    }
    // In range now: a bad slot (struck) and a full receiver bag (not struck).
    assert!(zone.set_character(b, CharacterState::at(Vec3::new(1.0, 0.0, 0.0))));
    send_request(
        &mut zone,
        a,
        4,
        InventoryOp::Give {
            slot: 5000,
            quantity: 1,
            to: eb,
        },
    );
    zone.run_tick();
    assert_eq!(
        results(&received(&mut zone, a)),
        vec![(4, Some("inventory_bad_slot".into()))]
    );
    let c = zone.config().gameplay.content.clone();
    let filler = c
        .items()
        .iter()
        .find(|d| d.max_stack == 1)
        .expect("an unstackable item");
    let filler_id = c.item_id(&filler.id).expect("known");
    let g = zone.character_gameplay_mut(b).expect("gameplay");
    while g.inventory.add(&*c, &ItemStack::new(filler_id, 1)).is_ok() {}
    send_request(
        &mut zone,
        a,
        5,
        InventoryOp::Give {
            slot,
            quantity: 1,
            to: eb,
        },
    );
    zone.run_tick();
    assert_eq!(
        results(&received(&mut zone, a)),
        vec![(5, Some("inventory_full".into()))]
    );
    assert!(zone.drain_transfers().is_empty());
    // The receiver started empty: the giver still has everything.
    assert_eq!(
        zone.character_gameplay(a)
            .expect("gameplay")
            .inventory
            .total_items(),
        before,
        "refusals change nothing"
    );
}
