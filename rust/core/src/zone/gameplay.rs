//! The zone's gameplay phase: abilities with lag-compensated targeting, effects, resources,
//! respawns, inventory requests and anti-cheat strikes, run once per tick after movement.
//!
//! Per tick ([`Zone::run_gameplay`], called by [`Zone::run_tick`] between
//! [`Zone::simulate`] and [`Zone::replicate`]), with `now_ms` the tick's start time:
//!
//! 1. every character's hitbox (a capsule at its position) is recorded for this tick;
//! 2. requests are handled in arrival order: ability requests are checked
//!    ([`crate::gameplay::abilities`]) with the target **rewound** to the caster's view time
//!    (the request's `view_tick + view_fraction`, clamped to `max_rewind_ms` before this tick:
//!    a view older than the clamp is evaluated at the clamp), answered with an
//!    `AbilityResult`; inventory requests are applied or refused atomically and answered
//!    with an `InventoryResult` (preceded by the new `Inventory` on success; a `Give` to
//!    another player is answered once the store committed it, see `zone::transfer`);
//! 3. casts that completed are applied (an instant ability at once, while its request is
//!    handled, so a second request in the same tick finds the caster free): entity targets get the effects; self targets the
//!    caster; ground points every character within [`ZoneGameplayConfig::area_radius_m`] of
//!    the point; directions the first character whose rewound capsule the ray from the caster
//!    hits within the ability's range. Knockback launches the target away from the caster
//!    (an impulse the movement rules carry out, so the client reconciles it);
//! 4. timed effects and regeneration advance; the dead respawn at the zone's spawn point
//!    when their delay has passed;
//! 5. owners get `Resources` when a whole point changed; combat events go, batched per
//!    client, to the source and the target at once, and to every player within
//!    [`ZoneGameplayConfig::observer_radius_m`] of the target every
//!    [`ZoneGameplayConfig::observer_interval_ticks`] (10 Hz by default); each target is
//!    replicated at `Critical` priority this tick.
//!
//! **Anti-cheat.** Refusals that an honest client using this library does not produce
//! (input validation failures, abilities that are unknown, off cooldown by more than
//! [`ZoneGameplayConfig::cooldown_grace_ms`], unaffordable, out of range or with a bad target
//! or view time, inventory requests naming slots that do not exist, the same slot twice or a
//! zero quantity, and more than [`MAX_REQUESTS_PER_TICK`] requests in a tick) add a strike ([`crate::gameplay::strikes`]); each is reported as
//! [`ServerEvent::Refused`] for the metric and a log line, and a player above the threshold is
//! closed with [`DisconnectReason::Kicked`]. Input-rate rejections (time dilation) strike at
//! most once per [`INPUT_RATE_STRIKE_GAP_MS`], so an honest catch-up burst counts once.
//! Refusals caused by the game state (dead, already
//! casting, a cooldown within the grace, a target that left the zone (`ability_target_gone`),
//! an empty slot or short stack (a race with the previous request), inventory full, stack
//! limits, using an item while dead) are answered but not struck.
//!
//! Not done: the view time is trusted within the clamp (a low-latency cheater may claim the
//! full `max_rewind_ms`; clamping to the connection's round trip plus interpolation delay
//! would close that); direction abilities with a cast time rewind to the view at the cast's
//! start; observer events
//! waiting for their flush are dropped at a handoff; combat across zone borders (targets are this zone's characters only; a ghost
//! target is refused as `invalid_target`), loot on the ground (a drop destroys the items),
//! interrupting casts on movement, and client-side prediction of cost and cooldown (the
//! client counts down from the server's answers).

use std::sync::Arc;

use glam::Vec3;

use crate::control::{DisconnectReason, ServerControl};
use crate::entity::EntityId;
use crate::gameplay::abilities::{
    AbilityRejection, CompletedCast, EffectEvent, Target, apply_effects,
};
use crate::gameplay::character::CharacterGameplay;
use crate::gameplay::content::{AbilityId, ClassId, Content, RaceId};
use crate::gameplay::inventory::{InventoryError, InventoryErrorKind};
use crate::gameplay::messages::{
    AbilityRequest, AbilityResult, CombatEvent, CombatEventKind, InventoryOp, InventoryRequest,
    InventoryResult, InventoryView, MAX_COMBAT_EVENTS, Refusal, WireTarget,
};
use crate::gameplay::strikes::StrikeConfig;
use crate::lag_compensation::{Capsule, LagCompensationConfig, Ray, RewindError, ray_vs_capsule};
use crate::replication::PriorityCategory;
use crate::session::server::ServerEvent;
use crate::time::{Tick, TickRate};

use super::{ConnectionId, Zone};

/// Gameplay requests handled per connection per tick; more are refused as `request_flood`
/// (a strike each). An honest client sends one every few ticks.
pub const MAX_REQUESTS_PER_TICK: u32 = 8;

/// Input-rate rejections add at most one strike per this many ms.
pub const INPUT_RATE_STRIKE_GAP_MS: u64 = 1_000;

/// Gameplay settings of a zone.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneGameplayConfig {
    /// The content every rule reads (clients are told its hash at login).
    pub content: Arc<Content>,
    /// Class of new characters (until accounts own characters).
    pub class: ClassId,
    /// Race of new characters.
    pub race: RaceId,
    /// Furthest a target is rewound behind the current tick, ms.
    pub max_rewind_ms: u32,
    /// Strike policy.
    pub strikes: StrikeConfig,
    /// Combat events reach players within this distance of the target, metres.
    pub observer_radius_m: f32,
    /// Events a player only observes are sent every this many ticks (`>= 1`); its own
    /// events go out at once.
    pub observer_interval_ticks: u32,
    /// Ground point abilities hit characters within this distance of the point, metres.
    pub area_radius_m: f32,
    /// A cooldown refusal less than this early is not a strike (a request that raced the
    /// cooldown over a jittery network), ms.
    pub cooldown_grace_ms: u32,
    /// Hitbox capsule radius, metres.
    pub hitbox_radius_m: f32,
    /// Hitbox capsule height, metres.
    pub hitbox_height_m: f32,
}

impl Default for ZoneGameplayConfig {
    fn default() -> Self {
        ZoneGameplayConfig {
            // The default content is compiled in and covered by content's tests.
            content: Arc::new(Content::default_content().expect("the built-in content is valid")),
            class: ClassId(0),
            race: RaceId(0),
            max_rewind_ms: 400,
            strikes: StrikeConfig::default(),
            observer_radius_m: 50.0,
            observer_interval_ticks: 3,
            area_radius_m: 5.0,
            cooldown_grace_ms: 250,
            hitbox_radius_m: 0.4,
            hitbox_height_m: 1.8,
        }
    }
}

impl ZoneGameplayConfig {
    /// Checks the settings; the error names the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.content.class(self.class).is_none() {
            return Err(format!(
                "gameplay.class: class {} is not in the content",
                self.class.0
            ));
        }
        if self.content.race(self.race).is_none() {
            return Err(format!(
                "gameplay.race: race {} is not in the content",
                self.race.0
            ));
        }
        if self.observer_interval_ticks == 0 {
            return Err("gameplay.observer_interval_ticks: must be at least 1".to_owned());
        }
        for (name, v) in [
            ("observer_radius_m", self.observer_radius_m),
            ("area_radius_m", self.area_radius_m),
            ("hitbox_radius_m", self.hitbox_radius_m),
            ("hitbox_height_m", self.hitbox_height_m),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("gameplay.{name}: {v} must be finite and above 0"));
            }
        }
        Ok(())
    }

    /// The hitbox history settings for `tick_rate`.
    pub(super) fn lag_compensation(&self, tick_rate: TickRate) -> LagCompensationConfig {
        let mut config = LagCompensationConfig {
            tick_rate,
            max_history_ticks: 0,
            max_rewind_ms: self.max_rewind_ms,
            max_entities: 65_536,
        };
        config.max_history_ticks = config.required_history_ticks();
        config
    }
}

/// A caster's view time: a tick and the fraction of a tick after it.
pub(super) type ViewTime = (Tick, f32);

/// A gameplay request waiting for the tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Request {
    Ability(AbilityRequest),
    Cancel,
    Inventory(InventoryRequest),
}

/// A combat event and where it happened (observers are chosen by distance to `at_m`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Outgoing {
    event: CombatEvent,
    at_m: Vec3,
    /// Connections of the source and the target, always told.
    parties: [Option<ConnectionId>; 2],
}

/// Why a request was refused, and whether it is a strike.
pub(super) struct Refused {
    pub(super) kind: &'static str,
    pub(super) detail: String,
    pub(super) strike: bool,
}

impl Refused {
    /// The refusal as the client is told it.
    pub(super) fn to_wire(&self) -> Refusal {
        Refusal {
            kind: self.kind.to_owned(),
            message: self.detail.clone(),
        }
    }
}

fn ability_refusal(r: &AbilityRejection, now_ms: u64, grace_ms: u32) -> Refused {
    let strike = match r {
        AbilityRejection::CasterDead | AbilityRejection::AlreadyCasting(_) => false,
        AbilityRejection::GlobalCooldown { ready_at_ms }
        | AbilityRejection::Cooldown { ready_at_ms } => {
            ready_at_ms.saturating_sub(now_ms) > u64::from(grace_ms)
        }
        _ => true,
    };
    let kind = match r {
        AbilityRejection::UnknownAbility(_) => "ability_unknown",
        AbilityRejection::CasterDead => "ability_caster_dead",
        AbilityRejection::AlreadyCasting(_) => "ability_already_casting",
        AbilityRejection::GlobalCooldown { .. } => "ability_global_cooldown",
        AbilityRejection::Cooldown { .. } => "ability_cooldown",
        AbilityRejection::TargetMismatch { .. } => "ability_target_mismatch",
        AbilityRejection::InvalidTarget(_) => "ability_invalid_target",
        AbilityRejection::OutOfRange { .. } => "ability_out_of_range",
        AbilityRejection::NotEnoughResources { .. } => "ability_not_enough_resources",
    };
    Refused {
        kind,
        detail: r.to_string(),
        strike,
    }
}

pub(super) fn inventory_refusal(e: &InventoryError) -> Refused {
    use InventoryErrorKind as K;
    let kind = e.kind();
    // Only what no honest client sends: slots that do not exist and degenerate requests. An
    // empty slot or a short stack can be a race with the client's previous request.
    let strike = matches!(kind, K::BadSlot | K::SameSlot | K::ZeroQuantity);
    Refused {
        kind: match kind {
            K::BadSlot => "inventory_bad_slot",
            K::SameSlot => "inventory_same_slot",
            K::EmptySlot => "inventory_empty_slot",
            K::SlotOccupied => "inventory_slot_occupied",
            K::DifferentItem => "inventory_different_item",
            K::NotStackable => "inventory_not_stackable",
            K::PropertiesMismatch => "inventory_properties_mismatch",
            K::StackOverflow => "inventory_stack_overflow",
            K::InsufficientQuantity => "inventory_insufficient_quantity",
            K::ZeroQuantity => "inventory_zero_quantity",
            K::NotUsable => "inventory_not_usable",
            K::NotEquippable => "inventory_not_equippable",
            K::WrongEquipSlot => "inventory_wrong_equip_slot",
            K::UnknownItem => "inventory_unknown_item",
            K::BadItemRules => "inventory_bad_item_rules",
            K::InventoryFull => "inventory_full",
            K::BadBagSize => "inventory_bad_bag_size",
        },
        detail: e.to_string(),
        strike,
    }
}

impl Zone {
    /// The tick's start time in ms (gameplay's clock; deterministic).
    pub(super) fn now_ms(&self) -> u64 {
        self.config.tick_rate.tick_start_us(self.tick) / 1000
    }

    /// Queues a gameplay request of `id` for the next gameplay phase.
    pub(super) fn queue_request(&mut self, id: ConnectionId, request: Request) {
        self.play.requests.push((id, request));
    }

    /// A new character's gameplay state, or `None` (logged) when the content cannot build
    /// one (checked when the zone is created, so this does not happen).
    pub(super) fn new_character(&self) -> Option<CharacterGameplay> {
        let g = &self.config.gameplay;
        match CharacterGameplay::new(&g.content, g.class, g.race, self.now_ms()) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "character not created");
                None
            }
        }
    }

    /// Sends the owner's inventory and pools (after login or a handoff).
    pub(super) fn send_gameplay_state(&mut self, id: ConnectionId) {
        let now_ms = self.now_ms();
        let content = Arc::clone(&self.config.gameplay.content);
        let Some(player) = self.players.get_mut(&id) else {
            return;
        };
        let Some(g) = player.gameplay.as_mut() else {
            return;
        };
        g.last_sent = None;
        let resources = g.take_resource_change(&content, now_ms);
        let inventory = InventoryView::of(&g.inventory);
        player
            .connection
            .send_gameplay(&ServerControl::Inventory(inventory));
        if let Some(view) = resources {
            player
                .connection
                .send_gameplay(&ServerControl::Resources(view));
        }
    }

    /// Records a refusal: strike, event for the driver, kick above the threshold.
    pub(super) fn refuse(&mut self, id: ConnectionId, refused: &Refused) {
        let now_ms = self.now_ms();
        let strikes_config = self.config.gameplay.strikes;
        let Some(player) = self.players.get_mut(&id) else {
            return;
        };
        let Some(g) = player.gameplay.as_mut() else {
            return;
        };
        let outcome = if refused.strike {
            Some(g.strikes.strike(&strikes_config, now_ms))
        } else {
            None
        };
        let strikes =
            outcome.map_or_else(|| g.strikes.current(&strikes_config, now_ms), |o| o.strikes);
        self.events.push((
            id,
            ServerEvent::Refused {
                kind: refused.kind,
                detail: refused.detail.clone(),
                struck: refused.strike,
                strikes,
            },
        ));
        if outcome.is_some_and(|o| o.kick) {
            self.kick_for_strikes(id, strikes, refused.kind);
        }
    }

    /// Closes `id` for having too many strikes; `last` names the last one.
    fn kick_for_strikes(&mut self, id: ConnectionId, strikes: u32, last: &str) {
        let message = format!("kicked by anti-cheat: {strikes} strikes (last: {last})");
        self.close(id, DisconnectReason::Kicked, &message);
    }

    /// Strikes an input the connection rejected (called from event collection).
    pub(super) fn strike_input(&mut self, id: ConnectionId, kind: &'static str, detail: &str) {
        let now_ms = self.now_ms();
        let config = self.config.gameplay.strikes;
        let Some(g) = self.players.get_mut(&id).and_then(|p| p.gameplay.as_mut()) else {
            return;
        };
        // One input-rate strike per second at most: an honest client's catch-up burst after
        // a stall is rejected datagram by datagram but is one event.
        let outcome = if kind == crate::validation::RejectionKind::InputRate.as_str() {
            match g
                .strikes
                .strike_throttled(&config, now_ms, INPUT_RATE_STRIKE_GAP_MS)
            {
                Some(o) => o,
                None => return,
            }
        } else {
            g.strikes.strike(&config, now_ms)
        };
        if outcome.kick {
            self.kick_for_strikes(id, outcome.strikes, &format!("{kind}: {detail}"));
        }
    }

    /// The connection controlling `entity`, if it is a character of this zone.
    pub(super) fn connection_of(&self, entity: EntityId) -> Option<ConnectionId> {
        self.entity_connections.get(&entity).copied()
    }

    fn capsule_at(&self, position_m: Vec3) -> Capsule {
        let g = &self.config.gameplay;
        Capsule::new(position_m, g.hitbox_radius_m, g.hitbox_height_m)
    }

    /// Runs the gameplay phase of the current tick. See the module docs.
    pub fn run_gameplay(&mut self) {
        let tick = self.tick;
        let now_ms = self.now_ms();
        self.record_hitboxes(tick);
        let requests = std::mem::take(&mut self.play.requests);
        let mut per_connection: crate::fast_hash::FastMap<ConnectionId, u32> =
            crate::fast_hash::FastMap::default();
        for (id, request) in &requests {
            // A connection closed earlier in this batch (kicked) gets nothing more done.
            let active = self
                .players
                .get(id)
                .is_some_and(|p| p.connection.entity().is_some());
            if !active {
                continue;
            }
            let count = per_connection.entry(*id).or_insert(0);
            *count += 1;
            if *count > MAX_REQUESTS_PER_TICK {
                let refused = Refused {
                    kind: "request_flood",
                    detail: format!(
                        "more than {MAX_REQUESTS_PER_TICK} gameplay requests in one tick"
                    ),
                    strike: true,
                };
                self.answer_flood(*id, request, &refused);
                self.refuse(*id, &refused);
                continue;
            }
            match *request {
                Request::Ability(r) => self.handle_ability(*id, &r, now_ms),
                Request::Cancel => {
                    if let Some(g) = self.players.get_mut(id).and_then(|p| p.gameplay.as_mut()) {
                        g.abilities.cancel_cast();
                    }
                }
                Request::Inventory(r) => self.handle_inventory(*id, &r),
            }
        }
        self.play.requests = requests;
        self.play.requests.clear();
        self.complete_casts(tick, now_ms);
        self.advance_effects(tick, now_ms);
        self.send_resources(now_ms);
        self.send_combat_events();
    }

    /// Answers a request refused before it was looked at, so the client's request does not
    /// stay unanswered.
    fn answer_flood(&mut self, id: ConnectionId, request: &Request, refused: &Refused) {
        let Some(player) = self.players.get_mut(&id) else {
            return;
        };
        let refusal = Some(refused.to_wire());
        let answer = match *request {
            Request::Ability(r) => ServerControl::AbilityResult(AbilityResult {
                request: r.request,
                ability: r.ability,
                refusal,
                cast_ms: 0,
                global_cooldown_ms: 0,
                cooldown_ms: 0,
            }),
            Request::Inventory(r) => ServerControl::InventoryResult(InventoryResult {
                request: r.request,
                refusal,
            }),
            Request::Cancel => return,
        };
        player.connection.send_gameplay(&answer);
    }

    fn record_hitboxes(&mut self, tick: Tick) {
        let mut capsules = std::mem::take(&mut self.play.scratch_capsules);
        capsules.clear();
        for player in self.players.values() {
            if let (Some(c), Some(entity)) = (&player.character, player.connection.entity()) {
                capsules.push((entity, self.capsule_at(c.position_m)));
            }
        }
        for &(entity, capsule) in &capsules {
            if let Err(e) = self.play.hitboxes.record(tick, entity, capsule) {
                tracing::error!(error = %e, "hitbox not recorded");
            }
        }
        self.play.scratch_capsules = capsules;
    }

    /// The view time of a request clamped to the rewind limit; `Err` for a time in the
    /// future or a bad fraction.
    fn clamp_view(&self, view_tick: Tick, fraction: f32) -> Result<(Tick, f32), String> {
        if !(0.0..1.0).contains(&fraction) {
            return Err(format!("view fraction {fraction} is not in [0, 1)"));
        }
        // Up to one tick ahead is rounding between the client's clock and ours: the present.
        if view_tick > self.tick.next() || (view_tick == self.tick.next() && fraction > 0.0) {
            return Err(format!(
                "view tick {} is after the current tick {}",
                view_tick.0, self.tick.0
            ));
        }
        if view_tick > self.tick || (view_tick == self.tick && fraction > 0.0) {
            return Ok((self.tick, 0.0));
        }
        let max_rewind_ticks = u64::from(self.config.gameplay.max_rewind_ms)
            * u64::from(self.config.tick_rate.hz())
            / 1000;
        let oldest = Tick(
            self.tick
                .0
                .saturating_sub(u32::try_from(max_rewind_ticks).unwrap_or(u32::MAX)),
        );
        if view_tick < oldest {
            Ok((oldest, 0.0))
        } else {
            Ok((view_tick, fraction))
        }
    }

    /// Where `entity` was at the (clamped) view time.
    fn rewound_position(&self, entity: EntityId, view: (Tick, f32)) -> Result<Vec3, RewindError> {
        match self.play.hitboxes.rewound(entity, view.0, view.1) {
            Ok(c) => Ok(c.base_m),
            // Spawned after the view time: its first known position.
            Err(RewindError::NoHistory { .. }) => self
                .play
                .hitboxes
                .latest(entity)
                .map(|c| c.base_m)
                .ok_or(RewindError::UnknownEntity { entity }),
            Err(e) => Err(e),
        }
    }

    fn handle_ability(&mut self, id: ConnectionId, r: &AbilityRequest, now_ms: u64) {
        let content = Arc::clone(&self.config.gameplay.content);
        let grace_ms = self.config.gameplay.cooldown_grace_ms;
        let Some(caster_m) = self
            .players
            .get(&id)
            .and_then(|p| p.character)
            .map(|c| c.position_m)
        else {
            return;
        };
        let result = (|| -> Result<(), Refused> {
            let view = self
                .clamp_view(r.view_tick, r.view_fraction)
                .map_err(|detail| Refused {
                    kind: "ability_bad_view_time",
                    detail,
                    strike: true,
                })?;
            let (target, target_position) = match r.target {
                WireTarget::SelfTarget => (Target::SelfTarget, None),
                WireTarget::Entity(e) => {
                    let position = if self.connection_of(e).is_some() {
                        self.rewound_position(e, view).ok()
                    } else {
                        None
                    };
                    (Target::Entity(e), position)
                }
                WireTarget::GroundPoint(p) => (Target::GroundPoint(Vec3::from_array(p)), None),
                WireTarget::Direction(d) => (Target::Direction(Vec3::from_array(d)), None),
            };
            let Some(player) = self.players.get_mut(&id) else {
                return Ok(());
            };
            let Some(g) = player.gameplay.as_mut() else {
                return Ok(());
            };
            g.abilities
                .check_and_start(
                    &content,
                    r.ability,
                    target,
                    caster_m,
                    target_position,
                    &mut g.pools,
                    now_ms,
                )
                .map_err(|e| match (&e, target, target_position) {
                    // The target left (logged out, crossed into another zone) while the
                    // request travelled: a race an honest client meets, not a strike.
                    (AbilityRejection::InvalidTarget(_), Target::Entity(gone), None) => Refused {
                        kind: "ability_target_gone",
                        detail: format!("entity {} is not in this zone", gone.0),
                        strike: false,
                    },
                    _ => ability_refusal(&e, now_ms, grace_ms),
                })?;
            player.cast_view = Some(view);
            Ok(())
        })();
        let Some(player) = self.players.get_mut(&id) else {
            return;
        };
        let Some(g) = player.gameplay.as_ref() else {
            return;
        };
        let left = |at_ms: u64| u32::try_from(at_ms.saturating_sub(now_ms)).unwrap_or(u32::MAX);
        let cast_ms = match (&result, g.abilities.casting()) {
            (Ok(()), Some(cast)) => left(cast.completes_at_ms),
            _ => 0,
        };
        let answer = AbilityResult {
            request: r.request,
            ability: r.ability,
            refusal: result.as_ref().err().map(Refused::to_wire),
            cast_ms,
            global_cooldown_ms: left(g.abilities.global_ready_at_ms()),
            cooldown_ms: left(g.abilities.ready_at_ms(r.ability)),
        };
        player
            .connection
            .send_gameplay(&ServerControl::AbilityResult(answer));
        match result {
            Err(refused) => self.refuse(id, &refused),
            Ok(()) if cast_ms == 0 => self.complete_cast_of(id, self.tick, now_ms),
            Ok(()) => {}
        }
    }

    fn handle_inventory(&mut self, id: ConnectionId, r: &InventoryRequest) {
        if matches!(r.op, InventoryOp::Give { .. }) {
            // Two players and the store's commit: see `transfer`.
            self.handle_give(id, r);
            return;
        }
        let content = Arc::clone(&self.config.gameplay.content);
        let Some(player) = self.players.get_mut(&id) else {
            return;
        };
        let Some(g) = player.gameplay.as_mut() else {
            return;
        };
        let inv = &mut g.inventory;
        let outcome = if g.pools.is_dead() && matches!(r.op, InventoryOp::Use { .. }) {
            // Would consume the item for nothing (a dead character is not healed).
            Err(Refused {
                kind: "inventory_caster_dead",
                detail: "the dead cannot use items".to_owned(),
                strike: false,
            })
        } else {
            match r.op {
                InventoryOp::Move { from, to } => inv.move_item(from, to),
                InventoryOp::Split { from, to, quantity } => inv.split(from, to, quantity),
                InventoryOp::Merge { from, to } => inv.merge(&*content, from, to).map(|_| ()),
                InventoryOp::Swap { a, b } => inv.swap(a, b),
                InventoryOp::Drop { slot, quantity } => inv.drop_item(slot, quantity).map(|_| ()),
                InventoryOp::Use { slot } => inv.use_item(&*content, slot).map(|item| {
                    let heal = content
                        .item(item)
                        .and_then(|d| d.properties.get("heal"))
                        .and_then(|h| h.parse::<u32>().ok())
                        .unwrap_or(0);
                    if heal > 0 {
                        g.pools.heal(heal);
                    }
                }),
                InventoryOp::Equip { slot } => inv.equip(&*content, slot).map(|_| ()),
                InventoryOp::Unequip { slot, to } => inv.unequip(&*content, slot, to),
                // Handled above.
                InventoryOp::Give { .. } => Ok(()),
            }
            .map_err(|e| inventory_refusal(&e))
        };
        let refused = outcome.err();
        if refused.is_none() {
            let view = InventoryView::of(&g.inventory);
            player
                .connection
                .send_gameplay(&ServerControl::Inventory(view));
        }
        player
            .connection
            .send_gameplay(&ServerControl::InventoryResult(InventoryResult {
                request: r.request,
                refusal: refused.as_ref().map(Refused::to_wire),
            }));
        if let Some(refused) = refused {
            self.refuse(id, &refused);
        }
    }

    /// Applies every cast that completed by `now_ms`.
    fn complete_casts(&mut self, tick: Tick, now_ms: u64) {
        let mut completed: Vec<(ConnectionId, EntityId, CompletedCast, Option<ViewTime>)> =
            Vec::new();
        for (id, player) in &mut self.players {
            let (Some(g), Some(entity)) = (player.gameplay.as_mut(), player.connection.entity())
            else {
                continue;
            };
            if let Some(cast) = g.abilities.poll_cast(now_ms) {
                completed.push((*id, entity, cast, player.cast_view.take()));
            }
        }
        for (caster_id, caster, cast, view) in completed {
            self.apply_completed(tick, now_ms, caster_id, caster, &cast, view);
        }
    }

    /// Completes `id`'s cast if it is due (an instant ability right after it started, so
    /// a second request in the same tick does not find the caster busy).
    fn complete_cast_of(&mut self, id: ConnectionId, tick: Tick, now_ms: u64) {
        let Some(player) = self.players.get_mut(&id) else {
            return;
        };
        let (Some(g), Some(entity)) = (player.gameplay.as_mut(), player.connection.entity()) else {
            return;
        };
        if let Some(cast) = g.abilities.poll_cast(now_ms) {
            let view = player.cast_view.take();
            self.apply_completed(tick, now_ms, id, entity, &cast, view);
        }
    }

    /// Picks the targets of a completed cast and applies it to each.
    fn apply_completed(
        &mut self,
        tick: Tick,
        now_ms: u64,
        caster_id: ConnectionId,
        caster: EntityId,
        cast: &CompletedCast,
        view: Option<ViewTime>,
    ) {
        let Some(caster) = self.players.get(&caster_id).and_then(|p| {
            // A caster killed earlier in this tick lands nothing.
            let alive = p.gameplay.as_ref().is_some_and(|g| !g.pools.is_dead());
            p.character
                .filter(|_| alive)
                .map(|c| (caster, c.position_m))
        }) else {
            return;
        };
        let (caster, caster_m) = caster;
        let targets: Vec<ConnectionId> = match cast.target {
            Target::SelfTarget => vec![caster_id],
            Target::Entity(e) => self.connection_of(e).into_iter().collect(),
            Target::GroundPoint(p) => {
                let r = self.config.gameplay.area_radius_m;
                self.players
                    .iter()
                    .filter(|(id, pl)| {
                        **id != caster_id
                            && pl.character.is_some_and(|c| c.position_m.distance(p) <= r)
                    })
                    .map(|(id, _)| *id)
                    .collect()
            }
            Target::Direction(d) => self
                .first_hit(caster, caster_m, d, cast.ability, view)
                .into_iter()
                .collect(),
        };
        for target_id in targets {
            self.apply_cast(tick, now_ms, caster_id, caster, caster_m, cast, target_id);
        }
    }

    /// The first character (not the caster) hit by the ray of a direction ability, with
    /// targets rewound to the caster's view.
    fn first_hit(
        &self,
        caster: EntityId,
        caster_m: Vec3,
        dir: Vec3,
        ability: AbilityId,
        view: Option<(Tick, f32)>,
    ) -> Option<ConnectionId> {
        let range_m = self.config.gameplay.content.ability(ability)?.range_m;
        let ray = Ray {
            origin_m: caster_m + Vec3::Z * (self.config.gameplay.hitbox_height_m * 0.5),
            dir,
            max_dist_m: range_m,
        };
        let view = view.unwrap_or((self.tick, 0.0));
        let mut best: Option<(f32, ConnectionId)> = None;
        for (id, player) in &self.players {
            let Some(entity) = player.connection.entity() else {
                continue;
            };
            if entity == caster
                || player.character.is_none()
                || player.gameplay.as_ref().is_some_and(|g| g.pools.is_dead())
            {
                continue;
            }
            let capsule = match self.play.hitboxes.rewound(entity, view.0, view.1) {
                Ok(c) => c,
                Err(_) => match self.play.hitboxes.latest(entity) {
                    Some(c) => c,
                    None => continue,
                },
            };
            if let Some(d) = ray_vs_capsule(&capsule, ray.origin_m, ray.dir, ray.max_dist_m)
                && best.is_none_or(|(b, _)| d < b)
            {
                best = Some((d, *id));
            }
        }
        best.map(|(_, id)| id)
    }

    #[allow(clippy::too_many_arguments)] // one cast applied to one target: all distinct
    fn apply_cast(
        &mut self,
        tick: Tick,
        now_ms: u64,
        caster_id: ConnectionId,
        caster: EntityId,
        caster_m: Vec3,
        cast: &CompletedCast,
        target_id: ConnectionId,
    ) {
        let content = Arc::clone(&self.config.gameplay.content);
        let gravity = self.config.movement.gravity_mps2;
        let Some(player) = self.players.get_mut(&target_id) else {
            return;
        };
        let (Some(g), Some(target), Some(character)) = (
            player.gameplay.as_mut(),
            player.connection.entity(),
            player.character.as_mut(),
        ) else {
            return;
        };
        let events = apply_effects(&content, cast, &mut g.pools, &mut g.effects, now_ms);
        if g.pools.is_dead() {
            // The dead finish no cast.
            g.abilities.cancel_cast();
        }
        let health_max = g.pools.max(content.health_pool());
        let health = g.pools.health();
        let at_m = character.position_m;
        for event in events {
            let kind = match event {
                EffectEvent::Damaged { amount, .. } => CombatEventKind::Damage { amount },
                EffectEvent::Healed { amount, .. } => CombatEventKind::Heal { amount },
                EffectEvent::Died { .. } => CombatEventKind::Died,
                EffectEvent::DotApplied { ticks, ability } => {
                    self.play
                        .dot_sources
                        .insert((target, ability), (caster, caster_id));
                    CombatEventKind::DotApplied { ticks }
                }
                EffectEvent::Slowed { factor, until_ms } => CombatEventKind::Slowed {
                    factor,
                    duration_ms: u32::try_from(until_ms.saturating_sub(now_ms)).unwrap_or(u32::MAX),
                },
                EffectEvent::KnockedBack { distance_m } => {
                    let away = (at_m - caster_m) * Vec3::new(1.0, 1.0, 0.0);
                    let dir = match cast.target {
                        Target::Direction(d) if away.length_squared() < 1e-6 => {
                            (d * Vec3::new(1.0, 1.0, 0.0)).normalize_or_zero()
                        }
                        _ => away.normalize_or_zero(),
                    };
                    knock_back(character, dir, distance_m, gravity);
                    CombatEventKind::KnockedBack { distance_m }
                }
            };
            self.play.combat_out.push(Outgoing {
                event: CombatEvent {
                    tick,
                    source: caster,
                    target,
                    ability: Some(cast.ability),
                    kind,
                    target_health: health,
                    target_health_max: health_max,
                },
                at_m,
                parties: [Some(caster_id), Some(target_id)],
            });
        }
        // Health (in the flags byte) and the knockback go out this tick, first in line.
        let mut replicated = super::player_replicated(character, Some(g));
        replicated.category = PriorityCategory::Critical;
        self.net_states.insert(target, replicated);
        self.replication
            .replicator
            .update_entity(target, at_m, PriorityCategory::Critical);
    }

    /// Damage over time, regeneration and respawns.
    fn advance_effects(&mut self, tick: Tick, now_ms: u64) {
        let content = Arc::clone(&self.config.gameplay.content);
        let spawn_m = self.config.spawn_position_m;
        for (id, player) in &mut self.players {
            let (Some(g), Some(entity), Some(character)) = (
                player.gameplay.as_mut(),
                player.connection.entity(),
                player.character.as_mut(),
            ) else {
                continue;
            };
            let events = g.effects.tick(&mut g.pools, now_ms);
            g.pools.tick(now_ms);
            if g.pools.is_dead() {
                g.abilities.cancel_cast();
            }
            let mut kinds: Vec<(CombatEventKind, Option<AbilityId>)> = events
                .into_iter()
                .filter_map(|e| match e {
                    EffectEvent::Damaged { amount, ability } => {
                        Some((CombatEventKind::Damage { amount }, Some(ability)))
                    }
                    EffectEvent::Died { ability } => Some((CombatEventKind::Died, Some(ability))),
                    _ => None,
                })
                .collect();
            if g.pools.respawn_ready_at_ms().is_some_and(|at| now_ms >= at)
                && g.pools.respawn(now_ms).is_ok()
            {
                g.effects.clear();
                g.abilities.cancel_cast();
                *character = crate::entity::CharacterState::at(spawn_m);
                // Nobody may hit the corpse's old position through the rewind.
                self.play.hitboxes.remove(entity);
                kinds.push((CombatEventKind::Respawned, None));
            }
            let health = g.pools.health();
            let health_max = g.pools.max(content.health_pool());
            if !kinds.is_empty() {
                // Keep this tick's category (a hit target is Critical until the next
                // simulation step resets it).
                let mut replicated = super::player_replicated(character, Some(g));
                if let Some(before) = self.net_states.get(&entity) {
                    replicated.category = before.category;
                }
                self.net_states.insert(entity, replicated);
            }
            for (kind, ability) in kinds {
                // A damage over time tick (and the death it causes) belongs to its caster.
                let (source, source_connection) = ability
                    .and_then(|a| self.play.dot_sources.get(&(entity, a)).copied())
                    .map_or((entity, None), |(e, c)| (e, Some(c)));
                self.play.combat_out.push(Outgoing {
                    event: CombatEvent {
                        tick,
                        source,
                        target: entity,
                        ability,
                        kind,
                        target_health: health,
                        target_health_max: health_max,
                    },
                    at_m: character.position_m,
                    parties: [Some(*id), source_connection],
                });
            }
            if g.pools.is_dead() || g.effects.dot_count() == 0 {
                self.play
                    .dot_sources
                    .retain(|(target, _), _| *target != entity);
            }
        }
    }

    fn send_resources(&mut self, now_ms: u64) {
        let content = Arc::clone(&self.config.gameplay.content);
        for player in self.players.values_mut() {
            let Some(g) = player.gameplay.as_mut() else {
                continue;
            };
            if let Some(view) = g.take_resource_change(&content, now_ms) {
                player
                    .connection
                    .send_gameplay(&ServerControl::Resources(view));
            }
        }
    }

    /// Sends each client the combat events it should see. Events where the client is the
    /// source or the target go out this tick; events it only observes (target within
    /// [`ZoneGameplayConfig::observer_radius_m`]) wait in its observer queue (at most
    /// [`MAX_COMBAT_EVENTS`]; more are dropped for it) and go out every
    /// [`ZoneGameplayConfig::observer_interval_ticks`], or with its next own event. A crowd
    /// of N fighters thus costs each observer one message per interval, not one per event.
    fn send_combat_events(&mut self) {
        let out = std::mem::take(&mut self.play.combat_out);
        let radius_sq = self.config.gameplay.observer_radius_m.powi(2);
        let flush_observed = self
            .tick
            .0
            .is_multiple_of(self.config.gameplay.observer_interval_ticks);
        for (id, player) in &mut self.players {
            let Some(me) = player.character.map(|c| c.position_m) else {
                continue;
            };
            if player.connection.entity().is_none() {
                continue;
            }
            let mut own: Vec<CombatEvent> = Vec::new();
            for o in &out {
                if o.parties.contains(&Some(*id)) {
                    own.push(o.event);
                } else if player.observed.len() < MAX_COMBAT_EVENTS
                    && me.distance_squared(o.at_m) <= radius_sq
                {
                    player.observed.push(o.event);
                }
            }
            let observed_due = flush_observed && !player.observed.is_empty();
            if own.is_empty() && !observed_due {
                continue;
            }
            own.append(&mut player.observed);
            for chunk in own.chunks(MAX_COMBAT_EVENTS) {
                player
                    .connection
                    .send_gameplay(&ServerControl::Combat(chunk.to_vec()));
            }
        }
        self.play.combat_out = out;
        self.play.combat_out.clear();
    }
}

/// Launches `character` along `dir` (horizontal, unit or zero) so it lands about
/// `distance_m` away: a small hop whose flight time carries the horizontal speed.
fn knock_back(
    character: &mut crate::entity::CharacterState,
    dir: Vec3,
    distance_m: f32,
    gravity_mps2: f32,
) {
    const HOP_MPS: f32 = 3.0;
    let flight_s = 2.0 * HOP_MPS / gravity_mps2;
    let horizontal_mps = distance_m / flight_s;
    character.velocity_mps = dir * horizontal_mps + Vec3::Z * HOP_MPS;
    character.on_ground = false;
}

#[cfg(test)]
#[path = "gameplay_tests.rs"]
mod tests;
