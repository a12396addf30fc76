//! Tests of the zone's gameplay phase, driving a [`Zone`] with real control frames.

use glam::{Vec2, Vec3};

use super::super::{
    ConnectionId, PlayerTransfer, TRANSFER_FORMAT_VERSION, Zone, ZoneConfig, ZonePlacement,
};
use crate::control::{self, ClientControl, DisconnectReason, FrameDecoder, ServerControl};
use crate::entity::{CharacterState, EntityId};
use crate::gameplay::content::AbilityId;
use crate::gameplay::messages::{
    AbilityRequest, CombatEvent, CombatEventKind, InventoryOp, InventoryRequest, WireTarget,
};
use crate::session::Transmit;
use crate::session::server::{ConnectionState, ServerEvent};
use crate::time::Tick;
use crate::world::{Rect, WorldLayout, ZoneId};

// Ids of the default content (abilities are numbered in file order).
const STRIKE: AbilityId = AbilityId(0);
const CHARGE: AbilityId = AbilityId(3);
const SELF_HEAL: AbilityId = AbilityId(4);
/// View tick meaning "the zone's current tick".
const NOW: Tick = Tick(u32::MAX);

struct Player {
    id: ConnectionId,
    entity: EntityId,
    decoder: FrameDecoder,
}

fn zone() -> Zone {
    Zone::new(ZoneConfig::default()).expect("valid zone")
}

fn login(zone: &mut Zone, x_m: f32, y_m: f32) -> Player {
    let id = zone.connect(0);
    send(
        zone,
        id,
        &ClientControl::Login {
            protocol_version: crate::PROTOCOL_VERSION,
            token: "t".into(),
        },
    );
    let _ = zone.drain_events().count();
    let entity = zone
        .accept_login_at(id, CharacterState::at(Vec3::new(x_m, y_m, 0.0)))
        .expect("login pending");
    Player {
        id,
        entity,
        decoder: FrameDecoder::new(),
    }
}

fn send(zone: &mut Zone, id: ConnectionId, message: &ClientControl) {
    let mut frame = Vec::new();
    control::encode_frame(message, &mut frame).expect("encodable");
    zone.handle_stream(id, 0, &frame);
}

fn strike(zone: &mut Zone, p: &Player, request: u32, target: EntityId, view_tick: Tick) {
    use_ability(
        zone,
        p,
        request,
        STRIKE,
        WireTarget::Entity(target),
        view_tick,
    );
}

fn use_ability(
    zone: &mut Zone,
    p: &Player,
    request: u32,
    ability: AbilityId,
    target: WireTarget,
    view_tick: Tick,
) {
    let view_tick = if view_tick == NOW {
        zone.tick()
    } else {
        view_tick
    };
    send(
        zone,
        p.id,
        &ClientControl::UseAbility(AbilityRequest {
            request,
            ability,
            target,
            view_tick,
            view_fraction: 0.0,
        }),
    );
}

fn inventory(zone: &mut Zone, p: &Player, request: u32, op: InventoryOp) {
    send(
        zone,
        p.id,
        &ClientControl::Inventory(InventoryRequest { request, op }),
    );
}

/// Control messages sent to `p` since the last call (datagrams are skipped).
fn received(zone: &mut Zone, p: &mut Player) -> Vec<ServerControl> {
    let mut out = Vec::new();
    while let Some(t) = zone.poll_transmit(p.id) {
        if let Transmit::Stream(bytes) = t {
            p.decoder.push(&bytes);
            while let Some(m) = p
                .decoder
                .next_message::<ServerControl>()
                .expect("server frames decode")
            {
                out.push(m);
            }
        }
    }
    out
}

fn combat(messages: &[ServerControl]) -> Vec<CombatEvent> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerControl::Combat(events) => Some(events.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn ability_refusal(messages: &[ServerControl]) -> Option<Option<String>> {
    messages.iter().find_map(|m| match m {
        ServerControl::AbilityResult(r) => Some(r.refusal.as_ref().map(|f| f.kind.clone())),
        _ => None,
    })
}

fn inventory_refusal(messages: &[ServerControl]) -> Option<Option<String>> {
    messages.iter().find_map(|m| match m {
        ServerControl::InventoryResult(r) => Some(r.refusal.as_ref().map(|f| f.kind.clone())),
        _ => None,
    })
}

fn refusals(zone: &mut Zone) -> Vec<(ConnectionId, &'static str, u32)> {
    zone.drain_events()
        .filter_map(|(id, e)| match e {
            ServerEvent::Refused { kind, strikes, .. } => Some((id, kind, strikes)),
            _ => None,
        })
        .collect()
}

fn health(zone: &Zone, p: &Player) -> u32 {
    zone.character_gameplay(p.id)
        .expect("logged in")
        .pools
        .health()
}

fn ticks(zone: &mut Zone, n: u32) {
    for _ in 0..n {
        zone.run_tick();
    }
}

/// Runs `n` ticks while `p` sends one idle input per tick (the server only steps a
/// character through its inputs).
fn ticks_with_inputs(zone: &mut Zone, p: &Player, first_seq: &mut u32, n: u32) {
    use crate::codec::input_codec::{InputBatch, encode_input_datagram};
    use crate::input::MoveInput;
    let mut datagram = Vec::new();
    for _ in 0..n {
        let mut batch = InputBatch::new(*first_seq);
        assert!(batch.push(MoveInput::default()));
        encode_input_datagram(*first_seq as u16, None, &batch, &mut datagram);
        *first_seq += 1;
        let now_us = zone.config().tick_rate.tick_start_us(zone.tick().next());
        zone.handle_datagram(p.id, now_us, &datagram);
        zone.run_tick();
    }
}

#[test]
fn the_test_ids_name_the_default_content() {
    let content = ZoneConfig::default().gameplay.content;
    assert_eq!(content.ability_id("strike"), Some(STRIKE));
    assert_eq!(content.ability_id("charge"), Some(CHARGE));
    assert_eq!(content.ability_id("self_heal"), Some(SELF_HEAL));
}

#[test]
fn login_sends_the_content_hash_inventory_and_pools() {
    let mut z = zone();
    let mut a = login(&mut z, 0.0, 0.0);
    let messages = received(&mut z, &mut a);
    let expected = ZoneConfig::default().gameplay.content.hash();
    assert!(
        matches!(&messages[0], ServerControl::Welcome { content_hash, .. } if *content_hash == expected),
        "welcome first, with the content hash: {:?}",
        messages.first()
    );
    let inventory = messages
        .iter()
        .find_map(|m| match m {
            ServerControl::Inventory(v) => Some(v),
            _ => None,
        })
        .expect("inventory after login");
    let content = &ZoneConfig::default().gameplay.content;
    let kit: u64 = content
        .rules()
        .starting_items
        .iter()
        .map(|(_, q)| u64::from(*q))
        .sum();
    let held: u64 = inventory
        .bag
        .iter()
        .flatten()
        .map(|s| u64::from(s.quantity))
        .sum();
    assert_eq!(held, kit);
    let resources = messages
        .iter()
        .find_map(|m| match m {
            ServerControl::Resources(v) => Some(v),
            _ => None,
        })
        .expect("pools after login");
    assert!(!resources.dead);
    assert!(resources.pools.iter().all(|p| p.current == p.max));
}

#[test]
fn a_hit_target_is_critical_in_the_world_frame_for_its_tick() {
    use crate::replication::PriorityCategory;
    let mut z = zone();
    let caster = login(&mut z, 0.0, 0.0);
    let target = login(&mut z, 2.0, 0.0);
    ticks(&mut z, 2);
    let category = |z: &Zone, e: EntityId| z.world_frame().get(e).map(|f| f.category);
    assert_eq!(category(&z, target.entity), Some(PriorityCategory::High));
    strike(&mut z, &caster, 7, target.entity, NOW);
    ticks(&mut z, 1);
    assert_eq!(
        category(&z, target.entity),
        Some(PriorityCategory::Critical)
    );
    assert_eq!(category(&z, caster.entity), Some(PriorityCategory::High));
    ticks(&mut z, 1);
    assert_eq!(
        category(&z, target.entity),
        Some(PriorityCategory::High),
        "one tick only"
    );
}

#[test]
fn a_strike_in_range_damages_and_is_seen_by_parties_and_near_observers_only() {
    let mut z = zone();
    let mut caster = login(&mut z, 0.0, 0.0);
    let mut target = login(&mut z, 2.0, 0.0);
    let mut near = login(&mut z, 10.0, 0.0);
    let mut far = login(&mut z, 200.0, 0.0);
    // Strike on a tick right after an observer flush, so observers wait.
    let interval = z.config().gameplay.observer_interval_ticks;
    while (z.tick().0 + 1) % interval != 1 || z.tick().0 < 2 {
        ticks(&mut z, 1);
    }
    for p in [&mut caster, &mut target, &mut near, &mut far] {
        let _ = received(&mut z, p);
    }
    let before = health(&z, &target);
    let (caster_entity, target_entity) = (caster.entity, target.entity);
    strike(&mut z, &caster, 7, target.entity, NOW);
    ticks(&mut z, 1);
    let to_caster = received(&mut z, &mut caster);
    assert_eq!(ability_refusal(&to_caster), Some(None), "{to_caster:?}");
    assert_eq!(health(&z, &target), before - 12);
    let to_target = received(&mut z, &mut target);
    assert!(
        combat(&received(&mut z, &mut near)).is_empty(),
        "observers get events at the next flush, not at once"
    );
    ticks(&mut z, interval - 1);
    let to_near = received(&mut z, &mut near);
    for (name, messages) in [
        ("caster", &to_caster),
        ("target", &to_target),
        ("near", &to_near),
    ] {
        let events = combat(messages);
        assert!(
            events.iter().any(|e| e.target == target_entity
                && e.source == caster_entity
                && e.kind == CombatEventKind::Damage { amount: 12 }
                && e.target_health == before - 12),
            "{name} sees the damage: {events:?}"
        );
    }
    assert!(combat(&received(&mut z, &mut far)).is_empty());
    // Observers at any distance get the health in the target's replicated state.
    let flags = z.entity_state(target_entity).expect("replicated").flags;
    let g = z.character_gameplay(target.id).expect("target");
    assert_eq!(
        crate::entity_flags::health_percent_of(flags),
        crate::entity_flags::health_percent(g.pools.health(), g.pools.health_max())
    );
    assert!(crate::entity_flags::health_percent_of(flags) < 100);
    // The caster paid its stamina and was told.
    let stamina = z
        .config()
        .gameplay
        .content
        .pool_id("stamina")
        .expect("stamina pool");
    let g = z.character_gameplay(caster.id).expect("caster");
    assert_eq!(g.pools.current(stamina), g.pools.max(stamina) - 10);
}

#[test]
fn the_global_cooldown_refuses_and_strikes_then_expires() {
    let mut z = zone();
    let mut caster = login(&mut z, 0.0, 0.0);
    let target = login(&mut z, 1.0, 0.0);
    ticks(&mut z, 1);
    let _ = z.drain_events().count();
    strike(&mut z, &caster, 1, target.entity, NOW);
    ticks(&mut z, 1);
    let _ = received(&mut z, &mut caster);
    strike(&mut z, &caster, 2, target.entity, NOW);
    ticks(&mut z, 1);
    let messages = received(&mut z, &mut caster);
    assert_eq!(
        ability_refusal(&messages),
        Some(Some("ability_global_cooldown".to_owned()))
    );
    let refused = refusals(&mut z);
    assert_eq!(refused, vec![(caster.id, "ability_global_cooldown", 1)]);
    // 1 s global cooldown = 30 ticks.
    ticks(&mut z, 30);
    let _ = received(&mut z, &mut caster);
    strike(&mut z, &caster, 3, target.entity, NOW);
    ticks(&mut z, 1);
    assert_eq!(ability_refusal(&received(&mut z, &mut caster)), Some(None));
}

#[test]
fn a_burst_of_requests_in_one_tick_is_judged_by_the_cooldown_and_struck() {
    let mut z = zone();
    let mut caster = login(&mut z, 0.0, 0.0);
    let target = login(&mut z, 1.0, 0.0);
    ticks(&mut z, 1);
    let _ = z.drain_events().count();
    let before = health(&z, &target);
    for request in 1..=5 {
        strike(&mut z, &caster, request, target.entity, NOW);
    }
    ticks(&mut z, 1);
    let answers: Vec<Option<String>> = received(&mut z, &mut caster)
        .iter()
        .filter_map(|m| match m {
            ServerControl::AbilityResult(r) => Some(r.refusal.as_ref().map(|f| f.kind.clone())),
            _ => None,
        })
        .collect();
    let gcd = Some("ability_global_cooldown".to_owned());
    assert_eq!(
        answers,
        vec![None, gcd.clone(), gcd.clone(), gcd.clone(), gcd]
    );
    assert_eq!(health(&z, &target), before - 12, "one hit");
    let strikes: Vec<u32> = refusals(&mut z).iter().map(|r| r.2).collect();
    assert_eq!(strikes, vec![1, 2, 3, 4]);
}

#[test]
fn a_target_that_left_is_refused_without_a_strike() {
    let mut z = zone();
    let mut caster = login(&mut z, 0.0, 0.0);
    ticks(&mut z, 1);
    let _ = z.drain_events().count();
    let _ = received(&mut z, &mut caster);
    strike(&mut z, &caster, 1, EntityId(9999), NOW);
    ticks(&mut z, 1);
    assert_eq!(
        ability_refusal(&received(&mut z, &mut caster)),
        Some(Some("ability_target_gone".to_owned()))
    );
    assert_eq!(
        refusals(&mut z),
        vec![(caster.id, "ability_target_gone", 0)]
    );
}

#[test]
fn a_flood_of_requests_in_one_tick_is_answered_and_struck() {
    let mut z = zone();
    let mut p = login(&mut z, 0.0, 0.0);
    ticks(&mut z, 1);
    let _ = z.drain_events().count();
    let _ = received(&mut z, &mut p);
    let max = super::MAX_REQUESTS_PER_TICK;
    for request in 0..max + 2 {
        inventory(&mut z, &p, request, InventoryOp::Swap { a: 0, b: 1 });
    }
    ticks(&mut z, 1);
    let answers: Vec<Option<String>> = received(&mut z, &mut p)
        .iter()
        .filter_map(|m| match m {
            ServerControl::InventoryResult(r) => Some(r.refusal.as_ref().map(|f| f.kind.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len() as u32, max + 2, "every request is answered");
    assert!(answers[..max as usize].iter().all(Option::is_none));
    assert!(
        answers[max as usize..]
            .iter()
            .all(|a| a.as_deref() == Some("request_flood"))
    );
    assert_eq!(refusals(&mut z).len(), 2);
}

#[test]
fn a_view_one_tick_ahead_counts_as_the_present() {
    let mut z = zone();
    let mut caster = login(&mut z, 0.0, 0.0);
    let target = login(&mut z, 1.0, 0.0);
    ticks(&mut z, 3);
    let _ = received(&mut z, &mut caster);
    let ahead = z.tick().next().next(); // the tick being run, plus one
    strike(&mut z, &caster, 1, target.entity, ahead);
    ticks(&mut z, 1);
    assert_eq!(ability_refusal(&received(&mut z, &mut caster)), Some(None));
}

#[test]
fn the_dead_cannot_use_items() {
    let mut z = zone();
    let mut p = login(&mut z, 0.0, 0.0);
    ticks(&mut z, 1);
    let content = z.config().gameplay.content.clone();
    let potion = content.item_id("health_potion").expect("potion");
    let g = z.character_gameplay_mut(p.id).expect("player");
    let h = g.pools.health();
    g.pools.damage(h, 0);
    let slot = (0..g.inventory.bag_slots())
        .find(|s| g.inventory.bag_slot(*s).is_some_and(|st| st.item == potion))
        .expect("potions in the kit");
    let count = g.inventory.count(potion);
    let _ = received(&mut z, &mut p);
    inventory(&mut z, &p, 1, InventoryOp::Use { slot });
    ticks(&mut z, 1);
    assert_eq!(
        inventory_refusal(&received(&mut z, &mut p)),
        Some(Some("inventory_caster_dead".to_owned()))
    );
    let g = z.character_gameplay(p.id).expect("player");
    assert_eq!(g.inventory.count(potion), count, "nothing consumed");
}

#[test]
fn damage_over_time_ticks_name_their_caster() {
    let mut config = ZoneConfig::default();
    let content = config.gameplay.content.clone();
    config.gameplay.class = content.class_id("mage").expect("mage in the content");
    let fireball = content
        .ability_id("fireball")
        .expect("fireball in the content");
    // The caster stands beyond the observer radius: it sees the burns as their source.
    config.gameplay.observer_radius_m = 5.0;
    let mut z = Zone::new(config).expect("valid zone");
    let mut mage = login(&mut z, 0.0, 0.0);
    let mut target = login(&mut z, 10.0, 0.0);
    ticks(&mut z, 1);
    let _ = received(&mut z, &mut mage);
    use_ability(
        &mut z,
        &mage,
        1,
        fireball,
        WireTarget::Entity(target.entity),
        NOW,
    );
    // 1.5 s cast, then 4 ticks of burn 1 s apart: 6 s is plenty.
    let mut events = Vec::new();
    for _ in 0..180 {
        ticks(&mut z, 1);
        events.extend(combat(&received(&mut z, &mut mage)));
        let _ = received(&mut z, &mut target);
    }
    let burns: Vec<&CombatEvent> = events
        .iter()
        .filter(|e| e.target == target.entity && e.kind == CombatEventKind::Damage { amount: 4 })
        .collect();
    assert_eq!(
        burns.len(),
        4,
        "the caster sees every burn tick: {events:?}"
    );
    assert!(
        burns
            .iter()
            .all(|e| e.source == mage.entity && e.ability == Some(fireball))
    );
}

#[test]
fn out_of_range_and_unaffordable_requests_are_refused_without_effect() {
    let mut z = zone();
    let mut caster = login(&mut z, 0.0, 0.0);
    let target = login(&mut z, 10.0, 0.0);
    ticks(&mut z, 1);
    let _ = received(&mut z, &mut caster);
    let before = health(&z, &target);
    strike(&mut z, &caster, 1, target.entity, NOW);
    ticks(&mut z, 1);
    assert_eq!(
        ability_refusal(&received(&mut z, &mut caster)),
        Some(Some("ability_out_of_range".to_owned()))
    );
    assert_eq!(health(&z, &target), before);
    // Drain the caster's mana, then ask for a heal.
    let mana = z
        .config()
        .gameplay
        .content
        .pool_id("mana")
        .expect("mana pool");
    let g = z.character_gameplay_mut(caster.id).expect("caster");
    let have = g.pools.current(mana);
    g.pools.spend(&[(mana, have)], 0).expect("spend all mana");
    use_ability(&mut z, &caster, 2, SELF_HEAL, WireTarget::SelfTarget, NOW);
    ticks(&mut z, 1);
    assert_eq!(
        ability_refusal(&received(&mut z, &mut caster)),
        Some(Some("ability_not_enough_resources".to_owned()))
    );
}

#[test]
fn lag_compensation_rewinds_to_the_view_within_the_clamp() {
    let mut z = zone();
    let mut caster = login(&mut z, 0.0, 0.0);
    let target = login(&mut z, 2.0, 0.0);
    // The target stands at 2 m for 10 ticks, then is at 10 m.
    ticks(&mut z, 10);
    let seen_at = z.tick();
    assert!(z.set_character(target.id, CharacterState::at(Vec3::new(10.0, 0.0, 0.0))));
    ticks(&mut z, 6); // 200 ms later
    let _ = received(&mut z, &mut caster);
    strike(&mut z, &caster, 1, target.entity, seen_at);
    ticks(&mut z, 1);
    assert_eq!(
        ability_refusal(&received(&mut z, &mut caster)),
        Some(None),
        "the caster saw the target at 2 m 200 ms ago: a hit"
    );
    // The same view, now 1 s old: evaluated at the 400 ms clamp, where the target was at
    // 10 m.
    ticks(&mut z, 30);
    let _ = received(&mut z, &mut caster);
    strike(&mut z, &caster, 2, target.entity, seen_at);
    ticks(&mut z, 1);
    assert_eq!(
        ability_refusal(&received(&mut z, &mut caster)),
        Some(Some("ability_out_of_range".to_owned()))
    );
    // A view in the future is a cheat.
    let future = Tick(z.tick().0 + 5);
    ticks(&mut z, 30);
    let _ = received(&mut z, &mut caster);
    strike(&mut z, &caster, 3, target.entity, Tick(future.0 + 100));
    ticks(&mut z, 1);
    assert_eq!(
        ability_refusal(&received(&mut z, &mut caster)),
        Some(Some("ability_bad_view_time".to_owned()))
    );
}

#[test]
fn death_then_respawn_at_the_spawn_point_after_the_delay() {
    let mut z = zone();
    let mut caster = login(&mut z, 0.0, 0.0);
    let mut target = login(&mut z, 1.0, 0.0);
    ticks(&mut z, 1);
    let g = z.character_gameplay_mut(target.id).expect("target");
    let h = g.pools.health();
    g.pools.damage(h - 5, 0);
    let _ = received(&mut z, &mut target);
    strike(&mut z, &caster, 1, target.entity, NOW);
    ticks(&mut z, 1);
    let events = combat(&received(&mut z, &mut target));
    assert!(
        events
            .iter()
            .any(|e| e.kind == CombatEventKind::Died && e.target_health == 0)
    );
    assert!(
        z.character_gameplay(target.id)
            .expect("target")
            .pools
            .is_dead()
    );
    let dead_at = z.tick();
    // 10 s respawn delay = 300 ticks.
    let mut respawned_at = None;
    for _ in 0..320 {
        ticks(&mut z, 1);
        let events = combat(&received(&mut z, &mut target));
        if events.iter().any(|e| e.kind == CombatEventKind::Respawned) {
            respawned_at = Some(z.tick());
            break;
        }
    }
    let respawned_at = respawned_at.expect("respawned within 320 ticks");
    let waited = respawned_at.since(dead_at);
    assert!(
        (299..=301).contains(&waited),
        "respawned after {waited} ticks"
    );
    let g = z.character_gameplay(target.id).expect("target");
    assert!(!g.pools.is_dead());
    assert_eq!(
        g.pools.health(),
        g.pools.max(z.config().gameplay.content.health_pool())
    );
    let at = z.character(target.id).expect("character").position_m;
    assert_eq!(at, z.config().spawn_position_m);
    let _ = received(&mut z, &mut caster);
}

#[test]
fn charge_knocks_the_first_character_on_the_ray_back() {
    let mut z = zone();
    let mut caster = login(&mut z, 0.0, 0.0);
    let target = login(&mut z, 3.0, 0.0);
    let bystander = login(&mut z, 0.0, 3.0);
    ticks(&mut z, 2);
    let _ = received(&mut z, &mut caster);
    use_ability(
        &mut z,
        &caster,
        1,
        CHARGE,
        WireTarget::Direction([1.0, 0.0, 0.0]),
        NOW,
    );
    ticks(&mut z, 1);
    let messages = received(&mut z, &mut caster);
    assert_eq!(ability_refusal(&messages), Some(None));
    assert!(
        combat(&messages)
            .iter()
            .any(|e| e.target == target.entity
                && matches!(e.kind, CombatEventKind::KnockedBack { .. })),
        "{messages:?}"
    );
    let mut seq = 0;
    ticks_with_inputs(&mut z, &target, &mut seq, 60);
    let x = z.character(target.id).expect("target").position_m.x;
    assert!(
        (5.5..=8.5).contains(&x),
        "knocked from 3 m to about 7 m, at {x}"
    );
    let by = z.character(bystander.id).expect("bystander").position_m;
    assert_eq!(by, Vec3::new(0.0, 3.0, 0.0), "not on the ray: untouched");
}

#[test]
fn inventory_results_follow_the_new_contents_and_conserve_items() {
    let mut z = zone();
    let mut p = login(&mut z, 0.0, 0.0);
    ticks(&mut z, 1);
    let _ = received(&mut z, &mut p);
    let pid = p.id;
    let total = |z: &Zone| {
        z.character_gameplay(pid)
            .expect("player")
            .inventory
            .total_items()
    };
    let before = total(&z);
    let first = z
        .character_gameplay(p.id)
        .expect("player")
        .inventory
        .bag_slot(0)
        .cloned()
        .expect("kit in slot 0");
    inventory(&mut z, &p, 1, InventoryOp::Move { from: 0, to: 23 });
    ticks(&mut z, 1);
    let messages = received(&mut z, &mut p);
    let view_at = messages
        .iter()
        .position(|m| matches!(m, ServerControl::Inventory(_)))
        .expect("new contents sent");
    let result_at = messages
        .iter()
        .position(|m| matches!(m, ServerControl::InventoryResult(_)))
        .expect("result sent");
    assert!(view_at < result_at, "contents before the result");
    assert_eq!(inventory_refusal(&messages), Some(None));
    let inv = &z.character_gameplay(p.id).expect("player").inventory;
    assert_eq!(inv.bag_slot(23), Some(&first));
    assert_eq!(inv.bag_slot(0), None);
    assert_eq!(total(&z), before);
    // Failure paths answer with a kind and change nothing.
    for (op, kind) in [
        (InventoryOp::Move { from: 999, to: 1 }, "inventory_bad_slot"),
        (InventoryOp::Move { from: 0, to: 1 }, "inventory_empty_slot"),
        (
            InventoryOp::Split {
                from: 23,
                to: 0,
                quantity: 0,
            },
            "inventory_zero_quantity",
        ),
    ] {
        inventory(&mut z, &p, 2, op);
        ticks(&mut z, 1);
        let messages = received(&mut z, &mut p);
        assert_eq!(
            inventory_refusal(&messages),
            Some(Some(kind.to_owned())),
            "{op:?}"
        );
        assert!(
            !messages
                .iter()
                .any(|m| matches!(m, ServerControl::Inventory(_)))
        );
        assert_eq!(total(&z), before);
    }
}

#[test]
fn using_a_potion_consumes_it_and_heals() {
    let mut z = zone();
    let mut p = login(&mut z, 0.0, 0.0);
    ticks(&mut z, 1);
    let content = z.config().gameplay.content.clone();
    let potion = content.item_id("health_potion").expect("potion in content");
    let g = z.character_gameplay_mut(p.id).expect("player");
    g.pools.damage(60, 0);
    let slot = (0..g.inventory.bag_slots())
        .find(|s| g.inventory.bag_slot(*s).is_some_and(|st| st.item == potion))
        .expect("potions in the kit");
    let count = g.inventory.count(potion);
    let hurt = g.pools.health();
    let _ = received(&mut z, &mut p);
    inventory(&mut z, &p, 1, InventoryOp::Use { slot });
    ticks(&mut z, 1);
    assert_eq!(inventory_refusal(&received(&mut z, &mut p)), Some(None));
    let g = z.character_gameplay(p.id).expect("player");
    assert_eq!(g.inventory.count(potion), count - 1);
    assert_eq!(g.pools.health(), hurt + 50);
}

#[test]
fn repeated_tampering_is_kicked_and_honest_players_are_untouched() {
    let mut z = zone();
    let mut cheater = login(&mut z, 0.0, 0.0);
    let mut honest = login(&mut z, 1.0, 0.0);
    ticks(&mut z, 1);
    let _ = z.drain_events().count();
    let kick_above = z.config().gameplay.strikes.kick_above;
    let mut closed = None;
    for i in 0..=kick_above {
        inventory(&mut z, &cheater, i, InventoryOp::Swap { a: 5000, b: 0 });
        ticks(&mut z, 1);
        if let Some((_, e)) = z
            .drain_events()
            .find(|(id, e)| *id == cheater.id && matches!(e, ServerEvent::Closed { .. }))
        {
            closed = Some((i, e));
            break;
        }
    }
    let (at, event) = closed.expect("the cheater is closed");
    assert_eq!(at, kick_above, "kicked on strike {}", kick_above + 1);
    assert_eq!(
        event,
        ServerEvent::Closed {
            reason: DisconnectReason::Kicked
        }
    );
    let messages = received(&mut z, &mut cheater);
    assert!(
        messages.iter().any(|m| matches!(
            m,
            ServerControl::Disconnect {
                reason: DisconnectReason::Kicked,
                message
            } if message.contains("inventory_bad_slot")
        )),
        "{messages:?}"
    );
    assert!(matches!(
        z.connection(honest.id).expect("honest").state(),
        ConnectionState::Active { .. }
    ));
    assert_eq!(
        z.character_gameplay(honest.id)
            .expect("honest")
            .strikes
            .total(),
        0
    );
    let _ = received(&mut z, &mut honest);
}

/// Zones 0 and 1 of a 200 m x 100 m world cut in two at x = 100 m.
fn two_zones() -> (Zone, Zone) {
    let layout = WorldLayout::new(Rect::new(Vec2::ZERO, Vec2::new(200.0, 100.0)), 2, 1, 30.0)
        .expect("valid layout");
    let zone = |i| {
        Zone::new(ZoneConfig {
            placement: Some(ZonePlacement::new(layout, ZoneId(i))),
            ..ZoneConfig::default()
        })
        .expect("valid zone")
    };
    (zone(0), zone(1))
}

#[test]
fn gameplay_state_moves_with_the_player_at_a_handoff() {
    let (mut a, mut b) = two_zones();
    let p = login(&mut a, 50.0, 50.0);
    a.run_tick();
    let g = a.character_gameplay_mut(p.id).expect("player");
    g.pools.damage(30, 0);
    g.inventory.swap(0, 1).expect("swap");
    let expected = g.clone();
    assert!(a.set_character(p.id, CharacterState::at(Vec3::new(150.0, 50.0, 0.0))));
    a.run_tick();
    let departures: Vec<_> = a.drain_departures().collect();
    assert_eq!(departures.len(), 1);
    let transfer = a.take_player(p.id).expect("transfer");
    b.run_tick();
    b.insert_player(p.id, transfer).expect("inserted");
    let arrived = b.character_gameplay(p.id).expect("gameplay arrived");
    assert_eq!(arrived.pools.health(), expected.pools.health());
    assert_eq!(arrived.inventory, expected.inventory);
    assert_eq!(arrived.abilities, expected.abilities);
    // The new zone knows the entity as a target.
    let mut caster = login(&mut b, 150.0, 51.0);
    b.run_tick();
    let _ = received(&mut b, &mut caster);
    strike(&mut b, &caster, 1, p.entity, NOW);
    b.run_tick();
    assert_eq!(ability_refusal(&received(&mut b, &mut caster)), Some(None));
}

#[test]
fn an_encoded_transfer_decodes_to_the_same_player_and_bad_bytes_are_refused() {
    let (mut a, mut b) = two_zones();
    let p = login(&mut a, 50.0, 50.0);
    a.run_tick();
    let g = a.character_gameplay_mut(p.id).expect("player");
    g.pools.damage(30, 0);
    let expected = g.clone();
    assert!(a.set_character(p.id, CharacterState::at(Vec3::new(150.0, 50.0, 0.0))));
    a.run_tick();
    assert_eq!(a.drain_departures().count(), 1);
    let transfer = a.take_player(p.id).expect("transfer");
    let bytes = transfer.encode().expect("encoded");
    assert_eq!(bytes[0], TRANSFER_FORMAT_VERSION);
    let decoded = PlayerTransfer::decode(&bytes).expect("decoded");
    assert_eq!(decoded.entity(), transfer.entity());
    assert_eq!(decoded.character(), transfer.character());
    assert_eq!(decoded.from(), ZoneId(0));
    assert_eq!(decoded.connection().state(), transfer.connection().state());
    assert_eq!(decoded.connection().stats(), transfer.connection().stats());
    b.run_tick();
    b.insert_player(p.id, decoded).expect("inserted");
    let arrived = b.character_gameplay(p.id).expect("gameplay arrived");
    assert_eq!(arrived.pools.health(), expected.pools.health());
    assert_eq!(arrived.inventory, expected.inventory);

    let mut other_version = bytes.clone();
    other_version[0] = TRANSFER_FORMAT_VERSION + 1;
    let refused = PlayerTransfer::decode(&other_version).expect_err("other version");
    assert!(refused.contains("format version"), "{refused}");
    assert!(
        PlayerTransfer::decode(&[])
            .expect_err("empty")
            .contains("empty")
    );
    let truncated = PlayerTransfer::decode(&bytes[..bytes.len() / 2]).expect_err("truncated");
    assert!(truncated.contains("does not decode"), "{truncated}");
}

#[test]
fn a_zone_run_starts_its_ids_in_its_own_slot_of_the_residue_class() {
    let zone = |run| {
        let (_, mut z) = two_zones();
        z.start_ids_for_run(run).expect("fresh zone");
        z
    };
    let mut first = zone(7);
    let mut second = zone(8);
    let (a, b) = (first.connect(0), second.connect(0));
    // Zone 1 of 2 keeps its residue class (odd ids are zone 0's: k * 2 + 1).
    assert_eq!(a.0 % 2, 0);
    assert_eq!(b.0 % 2, 0);
    assert_eq!(
        b.0 - a.0,
        2 * Zone::IDS_PER_RUN,
        "the next run starts a slot later"
    );
    // Once ids were handed out, the start cannot move.
    assert!(first.start_ids_for_run(9).is_err());
}

#[test]
fn ghosts_of_a_neighbour_that_stops_exporting_leave_after_the_silence() {
    let (mut a, mut b) = two_zones();
    // Near the border of zone 1: a ghost there.
    let p = login(&mut a, 95.0, 50.0);
    a.run_tick();
    b.set_ghosts(&a.border_export(ZoneId(1)))
        .expect("neighbour");
    assert!(b.is_ghost(p.entity));
    let silence_ticks = (super::super::GHOST_SILENCE_S * 30.0) as u32;
    // Exports every tick: it stays.
    for _ in 0..silence_ticks + 10 {
        a.run_tick();
        b.set_ghosts(&a.border_export(ZoneId(1)))
            .expect("neighbour");
        b.run_tick();
    }
    assert!(b.is_ghost(p.entity));
    // Zone 0 falls silent (its process died): the ghost leaves after the silence.
    for _ in 0..silence_ticks {
        b.run_tick();
    }
    assert!(b.is_ghost(p.entity), "not before the silence is over");
    for _ in 0..2 {
        b.run_tick();
    }
    assert!(!b.is_ghost(p.entity));
    assert!(b.entity_state(p.entity).is_none());
}
