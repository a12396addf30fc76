//! Lag compensation end to end: a caster strikes a target that walks away from it, over
//! links with 75 ms one-way latency (150 ms RTT), through real client sessions and a zone on
//! the harness's virtual clock.
//!
//! The target walks straight away at 4 m/s from the shared spawn point; the caster stands
//! still. The strike (`strike`, entity target, range 3 m + 0.5 m tolerance) is sent when the
//! target *as drawn on the caster's screen* (its interpolation buffer sampled every
//! millisecond, as a game samples every frame) is within range, while the server's present
//! position is already beyond it. Three runs from the same seed:
//!
//! - the client's own request (view time = its interpolation render time) hits: no refusal,
//!   a `Damage` combat event for the target, and the server distance at the processing tick
//!   is beyond range, so the hit is owed to the rewind;
//! - the same situation with the view time forced to the server's present tick is refused
//!   as `ability_out_of_range` (without lag compensation it would miss);
//! - a view time one second old (beyond the 400 ms clamp) when the target was in range then
//!   but not at the clamp is evaluated at the clamp and refused as `ability_out_of_range`.
//!
//! Requests with a forged view time are encoded by hand (`ClientControl::UseAbility` framed
//! with `encode_frame`) and put on the client's control stream link directly.

use std::collections::BTreeMap;

use glam::Vec3;
use mmo_core::control::{ClientControl, encode_frame};
use mmo_core::entity::EntityId;
use mmo_core::gameplay::content::AbilityId;
use mmo_core::gameplay::messages::{AbilityRequest, AbilityResult, CombatEventKind, WireTarget};
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::session::client::{ClientConfig, ClientEvent, ClientSession, ClientState};
use mmo_core::session::server::ServerEvent;
use mmo_core::time::Tick;
use mmo_core::zone::ZoneConfig;
use mmo_testkit::{Harness, LinkConfig};

const CASTER: usize = 0;
const TARGET: usize = 1;
const STRIKE: AbilityId = AbilityId(0);
/// The strike's range plus the server's tolerance, metres.
const REACH_M: f32 = 3.5;
const ONE_WAY_LATENCY_US: u64 = 75_000;
const SEED: u64 = 0x1A6_C0DE;
/// A request number no session would pick this early (forged requests).
const FORGED_REQUEST: u32 = 9_000;

/// How the strike's view time is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// `ClientSession::use_ability`: the target's interpolation render time.
    Client,
    /// Forged: the server's current tick when sent (no lag compensation).
    PresentTick,
    /// Forged: 30 ticks (1 s) before the server's current tick when sent.
    OneSecondOld,
}

/// What one run saw.
#[derive(Debug)]
struct Outcome {
    result: AbilityResult,
    /// Distance caster to target as drawn on the caster's screen when it acted, metres.
    drawn_m: f32,
    /// Server tick at which the request was processed.
    processed_tick: Tick,
    /// Server tick at send time.
    sent_tick: Tick,
    /// The target's server position after each tick, by tick.
    history: BTreeMap<u32, Vec3>,
    caster_m: Vec3,
    target: EntityId,
    /// Combat events the caster received after sending.
    combat: Vec<(EntityId, CombatEventKind)>,
    /// Server refusals of the caster's connection.
    refusals: Vec<&'static str>,
}

impl Outcome {
    fn distance_at(&self, tick: Tick) -> f32 {
        let p = self
            .history
            .get(&tick.0)
            .unwrap_or_else(|| panic!("no recorded target position at tick {}", tick.0));
        p.distance(self.caster_m)
    }
}

fn walk_away(index: usize, _session: &ClientSession) -> Option<MoveInput> {
    Some(if index == TARGET {
        MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default())
    } else {
        MoveInput::from_controls(0.0, 0.0, 0.0, Buttons::default())
    })
}

fn forge_use_ability(h: &mut Harness, target: EntityId, view_tick: Tick) {
    let mut frame = Vec::new();
    encode_frame(
        &ClientControl::UseAbility(AbilityRequest {
            request: FORGED_REQUEST,
            ability: STRIKE,
            target: WireTarget::Entity(target),
            view_tick,
            view_fraction: 0.0,
        }),
        &mut frame,
    )
    .expect("an ability request encodes");
    let now_us = h.clock.now_us();
    h.clients[CASTER].stream_up.send(now_us, frame);
}

/// Runs the scenario with `view` and returns what happened. Panics with the distances when
/// the situation it needs never arises.
fn run(view: View) -> Outcome {
    let link = LinkConfig {
        latency_us: ONE_WAY_LATENCY_US,
        ..LinkConfig::perfect()
    };
    let mut h = Harness::new(ZoneConfig::default(), SEED).expect("default zone config is valid");
    h.add_client(ClientConfig::default(), link, "caster")
        .expect("caster added");
    h.add_client(ClientConfig::default(), link, "target")
        .expect("target added");
    let caster_conn = h.clients[CASTER].connection;
    let target_conn = h.clients[TARGET].connection;
    let mut history = BTreeMap::new();
    let mut last_tick = h.zone.tick();
    let mut sent: Option<(u32, f32, Tick)> = None;
    let mut processed_tick = None;
    let mut result = None;
    let mut drawn_now_m = f32::NAN;
    let mut combat = Vec::new();
    let mut refusals = Vec::new();
    let mut events_seen = 0;
    let mut server_events_seen = 0;
    let deadline_us: u64 = 10_000_000;
    // Set once the result arrived: keep running a little for the tick's combat events.
    let mut stop_us = deadline_us;

    while h.clock.now_us() < stop_us {
        let now_us = h.clock.now_us() + 1_000;
        h.run_until(now_us, &mut walk_away);
        if h.zone.tick() != last_tick {
            last_tick = h.zone.tick();
            if let Some(c) = h.zone.character(target_conn) {
                history.insert(last_tick.0, c.position_m);
            }
        }
        for (conn, event) in &h.server_events[server_events_seen..] {
            if *conn == caster_conn
                && let ServerEvent::Refused { kind, .. } = event
            {
                refusals.push(*kind);
                processed_tick.get_or_insert(h.zone.tick());
            }
        }
        server_events_seen = h.server_events.len();
        let caster = &mut h.clients[CASTER];
        for event in &caster.events[events_seen..] {
            match event {
                ClientEvent::AbilityResult(r) if sent.is_some_and(|(req, ..)| r.request == req) => {
                    result = Some(r.clone());
                    stop_us = h.clock.now_us() + 200_000;
                }
                ClientEvent::Combat(e) if sent.is_some() => {
                    combat.push((e.target, e.kind));
                    if matches!(e.kind, CombatEventKind::Damage { .. }) {
                        processed_tick.get_or_insert(e.tick);
                    }
                }
                _ => {}
            }
        }
        events_seen = caster.events.len();
        if caster.session.state() != ClientState::Active {
            continue;
        }
        let Some(target) = h.clients[TARGET].session.entity_id() else {
            continue;
        };
        // The game draws the target every frame: this advances its render clock.
        let caster = &mut h.clients[CASTER];
        let Some(drawn) = caster.session.sample_entity(target, now_us) else {
            continue;
        };
        let Some(caster_m) = h.zone.character(caster_conn).map(|c| c.position_m) else {
            continue;
        };
        drawn_now_m = drawn.position_m.distance(caster_m);
        let present_m = h
            .zone
            .character(target_conn)
            .map_or(f32::NAN, |c| c.position_m.distance(caster_m));
        if sent.is_some() {
            continue;
        }
        let fire = match view {
            // Drawn within reach with a margin; the server is already beyond it.
            View::Client | View::PresentTick => {
                drawn.position_m.distance(caster_m) >= 3.0 && present_m > REACH_M + 0.3
            }
            // Far enough that the clamp point (400 ms before processing) is out of reach,
            // near enough that one second before it was in reach.
            View::OneSecondOld => present_m >= 5.6,
        };
        if !fire {
            continue;
        }
        let sent_tick = h.zone.tick();
        let request = match view {
            View::Client => caster
                .session
                .use_ability(STRIKE, WireTarget::Entity(target))
                .expect("the caster is logged in"),
            View::PresentTick => {
                forge_use_ability(&mut h, target, sent_tick);
                FORGED_REQUEST
            }
            View::OneSecondOld => {
                forge_use_ability(&mut h, target, Tick(sent_tick.0.saturating_sub(30)));
                FORGED_REQUEST
            }
        };
        sent = Some((request, drawn_now_m, sent_tick));
    }
    let (_, drawn_m, sent_tick) =
        sent.unwrap_or_else(|| panic!("{view:?}: never fired (drawn distance {drawn_now_m} m)"));
    let result = result.unwrap_or_else(|| panic!("{view:?}: no ability result within 10 s"));
    let caster_m = h
        .zone
        .character(caster_conn)
        .expect("the caster is in the zone")
        .position_m;
    Outcome {
        result,
        drawn_m,
        processed_tick: processed_tick
            .unwrap_or_else(|| panic!("{view:?}: the processing tick was not observed")),
        sent_tick,
        history,
        caster_m,
        target: h.clients[TARGET]
            .session
            .entity_id()
            .expect("the target is logged in"),
        combat,
        refusals,
    }
}

#[test]
fn a_strike_hits_the_target_where_the_caster_saw_it() {
    let o = run(View::Client);
    let server_m = o.distance_at(o.processed_tick);
    let context = format!(
        "drawn {:.2} m when sent at tick {}, server {:.2} m at processing tick {}, result {:?}",
        o.drawn_m, o.sent_tick.0, server_m, o.processed_tick.0, o.result
    );
    assert!(o.drawn_m <= REACH_M, "drawn within reach: {context}");
    assert!(
        server_m > REACH_M,
        "without lag compensation the strike would miss: {context}"
    );
    assert_eq!(o.result.refusal, None, "the strike is accepted: {context}");
    assert!(
        o.refusals.is_empty(),
        "no refusal: {:?}; {context}",
        o.refusals
    );
    assert!(
        o.combat.iter().any(|(t, k)| *t == o.target
            && matches!(k, CombatEventKind::Damage { amount } if *amount > 0)),
        "a Damage event for the target reached the caster: {:?}; {context}",
        o.combat
    );
}

#[test]
fn the_same_strike_evaluated_at_the_present_misses() {
    let o = run(View::PresentTick);
    let at_view_m = o.distance_at(o.sent_tick);
    let context = format!(
        "drawn {:.2} m, server {:.2} m at the forged view tick {}, result {:?}",
        o.drawn_m, at_view_m, o.sent_tick.0, o.result
    );
    assert!(o.drawn_m <= REACH_M, "drawn within reach: {context}");
    assert!(
        at_view_m > REACH_M,
        "beyond reach at the present: {context}"
    );
    let refusal =
        o.result.refusal.as_ref().unwrap_or_else(|| {
            panic!("a strike at the present position must be refused: {context}")
        });
    assert_eq!(refusal.kind, "ability_out_of_range", "{context}");
    assert!(
        refusal
            .message
            .contains(&format!("target at {at_view_m:.2} m")),
        "the target was evaluated at the present tick: {context}"
    );
    assert_eq!(o.refusals, vec!["ability_out_of_range"], "{context}");
    assert!(
        !o.combat
            .iter()
            .any(|(t, k)| *t == o.target && matches!(k, CombatEventKind::Damage { .. })),
        "no damage: {:?}; {context}",
        o.combat
    );
}

#[test]
fn a_view_older_than_the_clamp_is_evaluated_at_the_clamp() {
    let o = run(View::OneSecondOld);
    let view_tick = Tick(o.sent_tick.0 - 30);
    // 400 ms at 30 Hz is 12 ticks before the processing tick.
    let clamp_tick = Tick(o.processed_tick.0 - 12);
    let at_view_m = o.distance_at(view_tick);
    let at_clamp_m = o.distance_at(clamp_tick);
    let context = format!(
        "server {:.2} m at the forged view tick {}, {:.2} m at the clamp tick {} (processed at tick {}), result {:?}",
        at_view_m, view_tick.0, at_clamp_m, clamp_tick.0, o.processed_tick.0, o.result
    );
    assert!(
        at_view_m <= REACH_M,
        "the target was in reach at the forged view time: {context}"
    );
    assert!(
        at_clamp_m > REACH_M,
        "the target is out of reach at the clamp: {context}"
    );
    let refusal = o
        .result
        .refusal
        .as_ref()
        .unwrap_or_else(|| panic!("a view beyond the clamp must not hit: {context}"));
    assert_eq!(refusal.kind, "ability_out_of_range", "{context}");
    assert!(
        refusal
            .message
            .contains(&format!("target at {at_clamp_m:.2} m")),
        "the target was evaluated at the clamp tick, not the view tick: {context}"
    );
    assert_eq!(o.refusals, vec!["ability_out_of_range"], "{context}");
}
