//! Ability use for one character: the global cooldown, per-ability cooldowns and the cast in
//! progress ([`AbilityState`]), and what a completed ability does to its target
//! ([`apply_effects`], [`TimedEffects`]).
//!
//! # Checks
//!
//! [`AbilityState::check_and_start`] checks, in this order, and returns the first failure as
//! an [`AbilityRejection`]:
//!
//! 1. `unknown_ability`: not in the content, or not known by this character;
//! 2. `caster_dead`;
//! 3. `global_cooldown`: the ability uses the global cooldown and it is running;
//! 4. `cooldown`: the ability's own cooldown is running;
//! 5. `already_casting`: another cast is in progress (cancel it first). Checked after the
//!    cooldowns so that a request sent too early is judged as such (the server's
//!    anti-cheat strikes cooldown abuse, not a busy caster);
//! 6. `target_mismatch`: the [`Target`] variant is not the ability's [`TargetKind`];
//!    `invalid_target`: a position or direction is NaN or infinite, a direction is zero, or an
//!    entity target's position is missing;
//! 7. `out_of_range`: entity or ground point farther than `range_m + RANGE_TOLERANCE_M`
//!    (3D distance from the caster's position);
//! 8. `not_enough_resources`.
//!
//! On success the cost is paid, the global cooldown (if the ability uses it) and the
//! ability's cooldown start at `now_ms`, and a [`Cast`] is in progress until
//! `now_ms + cast_time_ms`; all of it happens together or not at all. Instant abilities
//! (cast time 0) complete at the next [`AbilityState::poll_cast`] with the same `now_ms`.
//! Cancelling a cast refunds nothing and keeps the cooldowns.
//!
//! # Effects
//!
//! [`apply_effects`] applies a completed ability to its target's pools: damage and heal at
//! once; damage over time and slow become [`TimedEffects`] on the target, advanced by
//! [`TimedEffects::tick`]. Knockback is reported as an event for the movement code (the
//! direction is from caster to target); nothing here moves entities.
//!
//! Sans-IO: time is `now_ms` (milliseconds, never going backwards), positions come in as
//! arguments.
//!
//! Not done yet: hit validation of direction (skillshot) abilities against the world and
//! lag compensation, area-of-effect target selection for ground point abilities (the caller
//! picks the targets), interrupting casts on movement or damage, and threat/aggro.

use std::collections::BTreeMap;
use std::fmt;

use glam::Vec3;

use crate::entity::EntityId;
use crate::gameplay::content::{AbilityId, ClassId, Content, Effect, PoolId, RaceId, TargetKind};
use crate::gameplay::resources::{ResourceError, ResourcePools};

/// Extra distance allowed beyond an ability's range, metres: absorbs the small position
/// difference between what the client saw and the server's state.
pub const RANGE_TOLERANCE_M: f32 = 0.5;

/// Shortest accepted direction vector for direction abilities.
pub const MIN_DIRECTION_LEN: f32 = 1e-4;

/// What the client aimed an ability at.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// The caster.
    SelfTarget,
    /// Another entity; its position is passed separately (the server looks it up).
    Entity(EntityId),
    /// A point on the ground, metres.
    GroundPoint(Vec3),
    /// A direction from the caster (need not be normalised, must not be zero).
    Direction(Vec3),
}

impl Target {
    /// The target kind this target is.
    #[must_use]
    pub fn kind(&self) -> TargetKind {
        match self {
            Target::SelfTarget => TargetKind::SelfOnly,
            Target::Entity(_) => TargetKind::Entity,
            Target::GroundPoint(_) => TargetKind::GroundPoint,
            Target::Direction(_) => TargetKind::Direction,
        }
    }
}

/// Why an ability use was refused (checked in the order listed in the module docs).
#[derive(Clone, Debug, PartialEq)]
pub enum AbilityRejection {
    /// Not in the content, or not known by this character.
    UnknownAbility(AbilityId),
    /// The caster is dead.
    CasterDead,
    /// Another cast is in progress.
    AlreadyCasting(AbilityId),
    /// The global cooldown runs until `ready_at_ms`.
    GlobalCooldown {
        /// When it ends.
        ready_at_ms: u64,
    },
    /// The ability's cooldown runs until `ready_at_ms`.
    Cooldown {
        /// When it ends.
        ready_at_ms: u64,
    },
    /// The target is of the wrong kind.
    TargetMismatch {
        /// What the ability needs.
        expected: TargetKind,
        /// What was sent.
        got: TargetKind,
    },
    /// A position or direction is unusable.
    InvalidTarget(&'static str),
    /// The target is too far.
    OutOfRange {
        /// Distance from the caster, metres.
        distance_m: f32,
        /// The ability's range (without tolerance), metres.
        range_m: f32,
    },
    /// A pool is short.
    NotEnoughResources {
        /// The pool.
        pool: PoolId,
        /// Cost, points.
        need: u32,
        /// Current value, points.
        have: u32,
    },
}

impl AbilityRejection {
    /// Every `kind()` name, in check order (for registering metrics up front).
    pub const KINDS: [&'static str; 9] = [
        "unknown_ability",
        "caster_dead",
        "global_cooldown",
        "cooldown",
        "already_casting",
        "target_mismatch",
        "invalid_target",
        "out_of_range",
        "not_enough_resources",
    ];

    /// Stable `snake_case` name, used as a metric label. Never changes once released.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            AbilityRejection::UnknownAbility(_) => "unknown_ability",
            AbilityRejection::CasterDead => "caster_dead",
            AbilityRejection::AlreadyCasting(_) => "already_casting",
            AbilityRejection::GlobalCooldown { .. } => "global_cooldown",
            AbilityRejection::Cooldown { .. } => "cooldown",
            AbilityRejection::TargetMismatch { .. } => "target_mismatch",
            AbilityRejection::InvalidTarget(_) => "invalid_target",
            AbilityRejection::OutOfRange { .. } => "out_of_range",
            AbilityRejection::NotEnoughResources { .. } => "not_enough_resources",
        }
    }
}

impl fmt::Display for AbilityRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.kind())?;
        match self {
            AbilityRejection::UnknownAbility(id) => write!(f, "ability {} unknown", id.0),
            AbilityRejection::CasterDead => f.write_str("the caster is dead"),
            AbilityRejection::AlreadyCasting(id) => write!(f, "casting ability {}", id.0),
            AbilityRejection::GlobalCooldown { ready_at_ms }
            | AbilityRejection::Cooldown { ready_at_ms } => {
                write!(f, "ready at {ready_at_ms} ms")
            }
            AbilityRejection::TargetMismatch { expected, got } => write!(
                f,
                "needs a {} target, got {}",
                expected.as_str(),
                got.as_str()
            ),
            AbilityRejection::InvalidTarget(why) => f.write_str(why),
            AbilityRejection::OutOfRange {
                distance_m,
                range_m,
            } => write!(f, "target at {distance_m:.2} m, range {range_m:.2} m"),
            AbilityRejection::NotEnoughResources { pool, need, have } => {
                write!(f, "pool {} needs {need}, has {have}", pool.0)
            }
        }
    }
}

impl std::error::Error for AbilityRejection {}

/// An ability being cast.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cast {
    /// The ability.
    pub ability: AbilityId,
    /// Its target (a direction is normalised).
    pub target: Target,
    /// The target's position at the start, for entity and ground point targets.
    pub target_position: Option<Vec3>,
    /// When it started, ms.
    pub started_ms: u64,
    /// When it completes, ms. Invariant: `>= started_ms`.
    pub completes_at_ms: u64,
}

/// A cast that reached its completion time: the caller applies its effects.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompletedCast {
    /// The ability.
    pub ability: AbilityId,
    /// Its target.
    pub target: Target,
    /// When it completed, ms.
    pub completed_ms: u64,
}

/// Cooldowns and the cast in progress of one character.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AbilityState {
    /// Abilities this character may use.
    known: Vec<AbilityId>,
    /// The global cooldown ends at this time.
    global_ready_at_ms: u64,
    /// Per-ability cooldown end times; entries in the past are harmless.
    ready_at_ms: BTreeMap<AbilityId, u64>,
    /// The cast in progress.
    cast: Option<Cast>,
}

impl AbilityState {
    /// A character that knows `known` abilities, with nothing on cooldown.
    #[must_use]
    pub fn new(known: Vec<AbilityId>) -> Self {
        AbilityState {
            known,
            global_ready_at_ms: 0,
            ready_at_ms: BTreeMap::new(),
            cast: None,
        }
    }

    /// A character knowing its class's and race's abilities; `None` for unknown ids.
    #[must_use]
    pub fn for_character(content: &Content, class: ClassId, race: RaceId) -> Option<Self> {
        let mut known = content.class(class)?.abilities.clone();
        for a in &content.race(race)?.abilities {
            if !known.contains(a) {
                known.push(*a);
            }
        }
        Some(AbilityState::new(known))
    }

    /// Abilities this character may use.
    #[must_use]
    pub fn known(&self) -> &[AbilityId] {
        &self.known
    }

    /// The cast in progress.
    #[must_use]
    pub fn casting(&self) -> Option<&Cast> {
        self.cast.as_ref()
    }

    /// When the global cooldown ends (in the past when not running).
    #[must_use]
    pub fn global_ready_at_ms(&self) -> u64 {
        self.global_ready_at_ms
    }

    /// When `ability`'s own cooldown ends (0 when never used).
    #[must_use]
    pub fn ready_at_ms(&self, ability: AbilityId) -> u64 {
        self.ready_at_ms.get(&ability).copied().unwrap_or(0)
    }

    /// Runs the checks in the module docs; on success pays the cost, starts the cooldowns and
    /// the cast, and returns the cast. `target_position` is the target entity's position
    /// (required for entity targets, ignored otherwise).
    #[allow(clippy::too_many_arguments)] // each argument is a distinct input of the check
    pub fn check_and_start(
        &mut self,
        content: &Content,
        ability: AbilityId,
        target: Target,
        caster_position: Vec3,
        target_position: Option<Vec3>,
        pools: &mut ResourcePools,
        now_ms: u64,
    ) -> Result<Cast, AbilityRejection> {
        let def = match content.ability(ability) {
            Some(def) if self.known.contains(&ability) => def,
            _ => return Err(AbilityRejection::UnknownAbility(ability)),
        };
        if pools.is_dead() {
            return Err(AbilityRejection::CasterDead);
        }
        if def.global_cooldown && now_ms < self.global_ready_at_ms {
            return Err(AbilityRejection::GlobalCooldown {
                ready_at_ms: self.global_ready_at_ms,
            });
        }
        let ready_at_ms = self.ready_at_ms(ability);
        if now_ms < ready_at_ms {
            return Err(AbilityRejection::Cooldown { ready_at_ms });
        }
        if let Some(cast) = &self.cast {
            return Err(AbilityRejection::AlreadyCasting(cast.ability));
        }
        if target.kind() != def.target {
            return Err(AbilityRejection::TargetMismatch {
                expected: def.target,
                got: target.kind(),
            });
        }
        if !caster_position.is_finite() {
            return Err(AbilityRejection::InvalidTarget(
                "caster position is not finite",
            ));
        }
        let (target, aim) = match target {
            Target::SelfTarget => (target, None),
            Target::Entity(_) => match target_position {
                Some(p) if p.is_finite() => (target, Some(p)),
                Some(_) => {
                    return Err(AbilityRejection::InvalidTarget(
                        "target position is not finite",
                    ));
                }
                None => {
                    return Err(AbilityRejection::InvalidTarget(
                        "target entity has no position",
                    ));
                }
            },
            Target::GroundPoint(p) if p.is_finite() => (target, Some(p)),
            Target::GroundPoint(_) => {
                return Err(AbilityRejection::InvalidTarget(
                    "ground point is not finite",
                ));
            }
            Target::Direction(d) => {
                let len = d.length();
                if !(len.is_finite() && len >= MIN_DIRECTION_LEN) {
                    return Err(AbilityRejection::InvalidTarget(
                        "direction is zero or not finite",
                    ));
                }
                (Target::Direction(d / len), None)
            }
        };
        if let Some(p) = aim {
            let distance_m = caster_position.distance(p);
            if !distance_m.is_finite() || distance_m > def.range_m + RANGE_TOLERANCE_M {
                return Err(AbilityRejection::OutOfRange {
                    distance_m,
                    range_m: def.range_m,
                });
            }
        }
        pools.spend(&def.cost, now_ms).map_err(|e| match e {
            ResourceError::NotEnough { pool, need, have } => {
                AbilityRejection::NotEnoughResources { pool, need, have }
            }
            ResourceError::Dead => AbilityRejection::CasterDead,
            // Content costs only name content pools, and the pools were built from the
            // same content; report anything else as an unknown ability.
            _ => AbilityRejection::UnknownAbility(ability),
        })?;
        if def.global_cooldown {
            self.global_ready_at_ms =
                now_ms.saturating_add(u64::from(content.rules().global_cooldown_ms));
        }
        self.ready_at_ms
            .insert(ability, now_ms.saturating_add(u64::from(def.cooldown_ms)));
        let cast = Cast {
            ability,
            target,
            target_position: aim,
            started_ms: now_ms,
            completes_at_ms: now_ms.saturating_add(u64::from(def.cast_time_ms)),
        };
        self.cast = Some(cast);
        Ok(cast)
    }

    /// The cast in progress if it has completed by `now_ms` (it is then no longer in
    /// progress).
    pub fn poll_cast(&mut self, now_ms: u64) -> Option<CompletedCast> {
        let cast = self.cast?;
        if now_ms < cast.completes_at_ms {
            return None;
        }
        self.cast = None;
        Some(CompletedCast {
            ability: cast.ability,
            target: cast.target,
            completed_ms: now_ms,
        })
    }

    /// Stops the cast in progress (no refund, cooldowns keep running) and returns it.
    pub fn cancel_cast(&mut self) -> Option<Cast> {
        self.cast.take()
    }
}

/// Something that happened to a target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EffectEvent {
    /// Health removed.
    Damaged {
        /// By which ability.
        ability: AbilityId,
        /// Points actually removed.
        amount: u32,
    },
    /// Health restored.
    Healed {
        /// By which ability.
        ability: AbilityId,
        /// Points actually restored.
        amount: u32,
    },
    /// The target died (emitted once, after the damage that killed it).
    Died {
        /// By which ability.
        ability: AbilityId,
    },
    /// A damage over time effect started (or was refreshed).
    DotApplied {
        /// By which ability.
        ability: AbilityId,
        /// Ticks to come.
        ticks: u32,
    },
    /// A slow started.
    Slowed {
        /// Speed multiplier.
        factor: f32,
        /// When it ends, ms.
        until_ms: u64,
    },
    /// The target should be pushed away from the caster.
    KnockedBack {
        /// Distance, metres.
        distance_m: f32,
    },
}

/// A running damage over time effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Dot {
    ability: AbilityId,
    per_tick: u32,
    /// Invariant: `>= 1` while stored.
    remaining_ticks: u32,
    interval_ms: u32,
    next_tick_ms: u64,
}

/// A running slow.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Slow {
    factor: f32,
    until_ms: u64,
}

/// Damage over time and slows running on one target, with their own timing.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimedEffects {
    /// At most one per ability: re-applying refreshes it.
    dots: Vec<Dot>,
    slows: Vec<Slow>,
}

impl TimedEffects {
    /// No effects.
    #[must_use]
    pub fn new() -> Self {
        TimedEffects::default()
    }

    /// Number of running damage over time effects.
    #[must_use]
    pub fn dot_count(&self) -> usize {
        self.dots.len()
    }

    /// Movement speed multiplier at `now_ms`: the strongest running slow, 1.0 without one.
    #[must_use]
    pub fn speed_factor(&self, now_ms: u64) -> f32 {
        self.slows
            .iter()
            .filter(|s| now_ms < s.until_ms)
            .map(|s| s.factor)
            .fold(1.0, f32::min)
    }

    /// Removes everything (on death and respawn).
    pub fn clear(&mut self) {
        self.dots.clear();
        self.slows.clear();
    }

    /// Applies every damage over time tick due by `now_ms` (catching up when called late)
    /// and drops finished effects. Death clears all effects.
    pub fn tick(&mut self, pools: &mut ResourcePools, now_ms: u64) -> Vec<EffectEvent> {
        let mut events = Vec::new();
        self.slows.retain(|s| now_ms < s.until_ms);
        'dots: for dot in &mut self.dots {
            while dot.remaining_ticks > 0 && now_ms >= dot.next_tick_ms {
                dot.remaining_ticks -= 1;
                let out = pools.damage(dot.per_tick, dot.next_tick_ms);
                dot.next_tick_ms = dot.next_tick_ms.saturating_add(u64::from(dot.interval_ms));
                events.push(EffectEvent::Damaged {
                    ability: dot.ability,
                    amount: out.dealt,
                });
                if out.died {
                    events.push(EffectEvent::Died {
                        ability: dot.ability,
                    });
                    break 'dots;
                }
            }
        }
        if pools.is_dead() {
            self.clear();
        } else {
            self.dots.retain(|d| d.remaining_ticks > 0);
        }
        events
    }
}

/// Applies `cast`'s effects to a target's pools and timed effects at `now_ms` and returns
/// what happened. Effects are applied in content order; effects after a killing blow are
/// skipped. Nothing happens to a dead target or for an unknown ability.
pub fn apply_effects(
    content: &Content,
    cast: &CompletedCast,
    target_pools: &mut ResourcePools,
    target_effects: &mut TimedEffects,
    now_ms: u64,
) -> Vec<EffectEvent> {
    let mut events = Vec::new();
    let Some(def) = content.ability(cast.ability) else {
        return events;
    };
    let ability = cast.ability;
    for effect in &def.effects {
        if target_pools.is_dead() {
            break;
        }
        match *effect {
            Effect::Damage { amount } => {
                let out = target_pools.damage(amount, now_ms);
                events.push(EffectEvent::Damaged {
                    ability,
                    amount: out.dealt,
                });
                if out.died {
                    events.push(EffectEvent::Died { ability });
                    target_effects.clear();
                }
            }
            Effect::Heal { amount } => {
                let amount = target_pools.heal(amount);
                events.push(EffectEvent::Healed { ability, amount });
            }
            Effect::DamageOverTime {
                per_tick,
                ticks,
                interval_ms,
            } => {
                let dot = Dot {
                    ability,
                    per_tick,
                    remaining_ticks: ticks,
                    interval_ms,
                    next_tick_ms: now_ms.saturating_add(u64::from(interval_ms)),
                };
                match target_effects
                    .dots
                    .iter_mut()
                    .find(|d| d.ability == ability)
                {
                    Some(existing) => *existing = dot,
                    None => target_effects.dots.push(dot),
                }
                events.push(EffectEvent::DotApplied { ability, ticks });
            }
            Effect::Slow {
                factor,
                duration_ms,
            } => {
                let until_ms = now_ms.saturating_add(u64::from(duration_ms));
                target_effects.slows.push(Slow { factor, until_ms });
                events.push(EffectEvent::Slowed { factor, until_ms });
            }
            Effect::Knockback { distance_m } => {
                events.push(EffectEvent::KnockedBack { distance_m });
            }
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    struct World {
        c: Content,
    }

    impl World {
        fn new() -> Self {
            World {
                c: Content::default_content().unwrap(),
            }
        }
        fn a(&self, id: &str) -> AbilityId {
            self.c.ability_id(id).unwrap()
        }
        fn p(&self, id: &str) -> PoolId {
            self.c.pool_id(id).unwrap()
        }
        fn character(&self, class: &str) -> (AbilityState, ResourcePools) {
            let class = self.c.class_id(class).unwrap();
            let race = self.c.race_id("human").unwrap();
            (
                AbilityState::for_character(&self.c, class, race).unwrap(),
                ResourcePools::for_character(&self.c, class, race, 0).unwrap(),
            )
        }
    }

    const ENEMY: Target = Target::Entity(EntityId(7));
    const ORIGIN: Vec3 = Vec3::ZERO;

    fn near() -> Option<Vec3> {
        Some(Vec3::new(2.0, 0.0, 0.0))
    }

    #[test]
    fn unknown_ability() {
        let w = World::new();
        let (mut s, mut p) = w.character("warrior");
        let e = s
            .check_and_start(&w.c, AbilityId(99), ENEMY, ORIGIN, near(), &mut p, 0)
            .unwrap_err();
        assert_eq!(e.kind(), "unknown_ability");
        // Fireball exists but warriors do not know it.
        let e = s
            .check_and_start(&w.c, w.a("fireball"), ENEMY, ORIGIN, near(), &mut p, 0)
            .unwrap_err();
        assert_eq!(e, AbilityRejection::UnknownAbility(w.a("fireball")));
    }

    #[test]
    fn caster_dead() {
        let w = World::new();
        let (mut s, mut p) = w.character("warrior");
        p.damage(1000, 0);
        let e = s
            .check_and_start(&w.c, w.a("strike"), ENEMY, ORIGIN, near(), &mut p, 0)
            .unwrap_err();
        assert_eq!(e, AbilityRejection::CasterDead);
        assert_eq!(e.to_string(), "caster_dead: the caster is dead");
    }

    #[test]
    fn cast_time_and_already_casting() {
        let w = World::new();
        let (mut s, mut p) = w.character("mage");
        let fireball = w.a("fireball");
        let far = Some(Vec3::new(20.0, 0.0, 0.0));
        let cast = s
            .check_and_start(&w.c, fireball, ENEMY, ORIGIN, far, &mut p, 1000)
            .unwrap();
        assert_eq!((cast.started_ms, cast.completes_at_ms), (1000, 2500));
        let e = s
            .check_and_start(
                &w.c,
                w.a("frost_nova"),
                Target::GroundPoint(Vec3::X),
                ORIGIN,
                None,
                &mut p,
                2200,
            )
            .unwrap_err();
        assert_eq!(e, AbilityRejection::AlreadyCasting(fireball));
        assert_eq!(s.poll_cast(2499), None);
        let done = s.poll_cast(2500).unwrap();
        assert_eq!(
            (done.ability, done.target, done.completed_ms),
            (fireball, ENEMY, 2500)
        );
        assert_eq!(s.poll_cast(2600), None, "completes once");
        assert!(s.casting().is_none());
    }

    #[test]
    fn cancel_cast_keeps_cooldown_and_cost() {
        let w = World::new();
        let (mut s, mut p) = w.character("mage");
        let heal = w.a("self_heal");
        let mana = w.p("mana");
        let before = p.current(mana);
        s.check_and_start(&w.c, heal, Target::SelfTarget, ORIGIN, None, &mut p, 0)
            .unwrap();
        assert_eq!(s.cancel_cast().map(|c| c.ability), Some(heal));
        assert_eq!(p.current(mana), before - 15);
        assert_eq!(s.poll_cast(5000), None);
        assert_eq!(s.ready_at_ms(heal), 6000);
    }

    #[test]
    fn global_cooldown() {
        let w = World::new();
        let (mut s, mut p) = w.character("warrior");
        let strike = w.a("strike");
        s.check_and_start(&w.c, strike, ENEMY, ORIGIN, near(), &mut p, 0)
            .unwrap();
        assert!(s.poll_cast(0).is_some(), "instant cast completes at once");
        let e = s
            .check_and_start(&w.c, strike, ENEMY, ORIGIN, near(), &mut p, 500)
            .unwrap_err();
        assert_eq!(e, AbilityRejection::GlobalCooldown { ready_at_ms: 1000 });
        // Charge does not use the global cooldown.
        s.check_and_start(
            &w.c,
            w.a("charge"),
            Target::Direction(Vec3::X),
            ORIGIN,
            None,
            &mut p,
            500,
        )
        .unwrap();
        s.poll_cast(500).unwrap();
        s.check_and_start(&w.c, strike, ENEMY, ORIGIN, near(), &mut p, 1000)
            .unwrap();
    }

    #[test]
    fn ability_cooldown() {
        let w = World::new();
        let (mut s, mut p) = w.character("mage");
        let nova = w.a("frost_nova");
        let ground = Target::GroundPoint(Vec3::new(10.0, 0.0, 0.0));
        s.check_and_start(&w.c, nova, ground, ORIGIN, None, &mut p, 0)
            .unwrap();
        s.poll_cast(0).unwrap();
        let e = s
            .check_and_start(&w.c, nova, ground, ORIGIN, None, &mut p, 1000)
            .unwrap_err();
        assert_eq!(e, AbilityRejection::Cooldown { ready_at_ms: 8000 });
        assert_eq!(e.kind(), "cooldown");
        s.check_and_start(&w.c, nova, ground, ORIGIN, None, &mut p, 8000)
            .unwrap();
    }

    #[test]
    fn target_kind_mismatch() {
        let w = World::new();
        let (mut s, mut p) = w.character("warrior");
        let e = s
            .check_and_start(
                &w.c,
                w.a("strike"),
                Target::GroundPoint(Vec3::X),
                ORIGIN,
                None,
                &mut p,
                0,
            )
            .unwrap_err();
        assert_eq!(
            e,
            AbilityRejection::TargetMismatch {
                expected: TargetKind::Entity,
                got: TargetKind::GroundPoint
            }
        );
        let e = s
            .check_and_start(&w.c, w.a("self_heal"), ENEMY, ORIGIN, near(), &mut p, 0)
            .unwrap_err();
        assert_eq!(e.kind(), "target_mismatch");
    }

    #[test]
    fn invalid_targets() {
        let w = World::new();
        let (mut s, mut p) = w.character("warrior");
        let strike = w.a("strike");
        let charge = w.a("charge");
        let cases = [
            (strike, ENEMY, ORIGIN, None),
            (strike, ENEMY, ORIGIN, Some(Vec3::NAN)),
            (strike, ENEMY, Vec3::INFINITY, near()),
            (charge, Target::Direction(Vec3::ZERO), ORIGIN, None),
            (
                charge,
                Target::Direction(Vec3::new(f32::NAN, 0.0, 0.0)),
                ORIGIN,
                None,
            ),
        ];
        for (ability, target, caster, target_pos) in cases {
            let e = s
                .check_and_start(&w.c, ability, target, caster, target_pos, &mut p, 0)
                .unwrap_err();
            assert_eq!(
                e.kind(),
                "invalid_target",
                "{target:?} {caster:?} {target_pos:?}"
            );
        }
        let (mut s, mut p) = w.character("mage");
        let e = s
            .check_and_start(
                &w.c,
                w.a("frost_nova"),
                Target::GroundPoint(Vec3::new(0.0, f32::INFINITY, 0.0)),
                ORIGIN,
                None,
                &mut p,
                0,
            )
            .unwrap_err();
        assert_eq!(e.kind(), "invalid_target");
    }

    #[test]
    fn range_with_tolerance() {
        let w = World::new();
        let strike = w.a("strike"); // range 3 m
        let caster = Vec3::new(10.0, 10.0, 0.0);
        let (mut s, mut p) = w.character("warrior");
        let inside = Some(caster + Vec3::new(0.0, 3.0 + RANGE_TOLERANCE_M - 0.01, 0.0));
        s.check_and_start(&w.c, strike, ENEMY, caster, inside, &mut p, 0)
            .unwrap();
        let (mut s, mut p) = w.character("warrior");
        let outside = Some(caster + Vec3::new(0.0, 0.0, 3.0 + RANGE_TOLERANCE_M + 0.01));
        let e = s
            .check_and_start(&w.c, strike, ENEMY, caster, outside, &mut p, 0)
            .unwrap_err();
        match e {
            AbilityRejection::OutOfRange {
                distance_m,
                range_m,
            } => {
                assert!((distance_m - 3.51).abs() < 1e-4, "{distance_m}");
                assert_eq!(range_m, 3.0);
            }
            other => panic!("expected out_of_range, got {other}"),
        }
        // Ground points are range checked too.
        let (mut s, mut p) = w.character("mage");
        let e = s
            .check_and_start(
                &w.c,
                w.a("frost_nova"),
                Target::GroundPoint(Vec3::new(26.0, 0.0, 0.0)),
                ORIGIN,
                None,
                &mut p,
                0,
            )
            .unwrap_err();
        assert_eq!(e.kind(), "out_of_range");
    }

    #[test]
    fn not_enough_resources_changes_nothing() {
        let w = World::new();
        let (mut s, mut p) = w.character("warrior");
        let stamina = w.p("stamina");
        p.spend(&[(stamina, 115)], 0).unwrap();
        let before = (s.clone(), p.clone());
        let e = s
            .check_and_start(&w.c, w.a("strike"), ENEMY, ORIGIN, near(), &mut p, 5000)
            .unwrap_err();
        assert_eq!(
            e,
            AbilityRejection::NotEnoughResources {
                pool: stamina,
                need: 10,
                have: 5
            }
        );
        assert_eq!((s, p), before, "no cost paid, no cooldown, no cast");
    }

    #[test]
    fn check_order() {
        let w = World::new();
        let (mut s, mut p) = w.character("warrior");
        let strike = w.a("strike");
        let stamina = w.p("stamina");
        // On global cooldown, wrong target, out of range and broke: global cooldown wins.
        s.check_and_start(&w.c, strike, ENEMY, ORIGIN, near(), &mut p, 0)
            .unwrap();
        s.poll_cast(0);
        p.spend(&[(stamina, 110)], 0).unwrap();
        let far = Some(Vec3::new(100.0, 0.0, 0.0));
        let bad = Target::GroundPoint(Vec3::new(100.0, 0.0, 0.0));
        let e = s
            .check_and_start(&w.c, strike, bad, ORIGIN, far, &mut p, 10)
            .unwrap_err();
        assert_eq!(e.kind(), "global_cooldown");
        let e = s
            .check_and_start(&w.c, strike, bad, ORIGIN, far, &mut p, 2000)
            .unwrap_err();
        assert_eq!(e.kind(), "target_mismatch");
        let e = s
            .check_and_start(&w.c, strike, ENEMY, ORIGIN, far, &mut p, 2000)
            .unwrap_err();
        assert_eq!(e.kind(), "out_of_range");
        let e = s
            .check_and_start(&w.c, strike, ENEMY, ORIGIN, near(), &mut p, 2000)
            .unwrap_err();
        assert_eq!(e.kind(), "not_enough_resources");
        // Unknown beats dead.
        p.damage(10_000, 2000);
        let e = s
            .check_and_start(&w.c, AbilityId(99), ENEMY, ORIGIN, near(), &mut p, 2000)
            .unwrap_err();
        assert_eq!(e.kind(), "unknown_ability");
        // Every kind name is listed once.
        let mut kinds = AbilityRejection::KINDS.to_vec();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), AbilityRejection::KINDS.len());
    }

    #[test]
    fn each_target_kind_succeeds() {
        let w = World::new();
        let (mut s, mut p) = w.character("warrior");
        let mana = w.p("mana");
        let stamina = w.p("stamina");
        let cast = s
            .check_and_start(&w.c, w.a("strike"), ENEMY, ORIGIN, near(), &mut p, 0)
            .unwrap();
        assert_eq!(cast.target_position, near());
        assert_eq!(p.current(stamina), 110);
        s.poll_cast(0).unwrap();
        let cast = s
            .check_and_start(
                &w.c,
                w.a("charge"),
                Target::Direction(Vec3::new(0.0, 3.0, 0.0)),
                ORIGIN,
                None,
                &mut p,
                0,
            )
            .unwrap();
        assert_eq!(
            cast.target,
            Target::Direction(Vec3::Y),
            "direction normalised"
        );
        s.poll_cast(0).unwrap();
        let cast = s
            .check_and_start(
                &w.c,
                w.a("self_heal"),
                Target::SelfTarget,
                ORIGIN,
                None,
                &mut p,
                1000,
            )
            .unwrap();
        assert_eq!(cast.completes_at_ms, 2000);
        assert_eq!(p.current(mana), 5);
        let (mut s, mut p) = w.character("mage");
        let ground = Vec3::new(0.0, 24.0, 1.0);
        let cast = s
            .check_and_start(
                &w.c,
                w.a("frost_nova"),
                Target::GroundPoint(ground),
                ORIGIN,
                None,
                &mut p,
                0,
            )
            .unwrap();
        assert_eq!(cast.target_position, Some(ground));
    }

    fn complete(w: &World, ability: &str, target: Target) -> CompletedCast {
        CompletedCast {
            ability: w.a(ability),
            target,
            completed_ms: 0,
        }
    }

    #[test]
    fn damage_over_time_ticks_to_completion() {
        let w = World::new();
        let mut target = ResourcePools::new(&w.c, 0); // 100 health
        let mut fx = TimedEffects::new();
        let fireball = w.a("fireball");
        let cast = complete(&w, "fireball", ENEMY);
        let events = apply_effects(&w.c, &cast, &mut target, &mut fx, 0);
        assert_eq!(
            events,
            vec![
                EffectEvent::Damaged {
                    ability: fireball,
                    amount: 30
                },
                EffectEvent::DotApplied {
                    ability: fireball,
                    ticks: 4
                }
            ]
        );
        assert_eq!(target.health(), 70);
        assert!(fx.tick(&mut target, 999).is_empty());
        assert_eq!(fx.tick(&mut target, 1000).len(), 1);
        assert_eq!(target.health(), 66);
        // Called late: the two ticks due by 3000 are caught up.
        let events = fx.tick(&mut target, 3500);
        assert_eq!(events.len(), 2);
        assert_eq!(target.health(), 58);
        assert_eq!(fx.dot_count(), 1);
        fx.tick(&mut target, 4000);
        assert_eq!(target.health(), 54);
        assert_eq!(fx.dot_count(), 0, "finished after 4 ticks");
        assert!(fx.tick(&mut target, 10_000).is_empty());
        assert_eq!(target.health(), 54);
    }

    #[test]
    fn reapplied_dot_refreshes_and_dot_can_kill() {
        let w = World::new();
        let mut target = ResourcePools::new(&w.c, 0);
        let mut fx = TimedEffects::new();
        let cast = complete(&w, "fireball", ENEMY);
        apply_effects(&w.c, &cast, &mut target, &mut fx, 0);
        apply_effects(&w.c, &cast, &mut target, &mut fx, 500);
        assert_eq!(fx.dot_count(), 1);
        assert_eq!(target.health(), 40);
        target.damage(34, 500); // 6 left
        let events = fx.tick(&mut target, 2500);
        assert_eq!(target.health(), 0);
        assert!(target.is_dead());
        assert_eq!(
            events.last(),
            Some(&EffectEvent::Died {
                ability: w.a("fireball")
            })
        );
        assert_eq!(fx.dot_count(), 0, "death clears effects");
    }

    #[test]
    fn slow_knockback_heal_and_death() {
        let w = World::new();
        let mut target = ResourcePools::new(&w.c, 0);
        let mut fx = TimedEffects::new();
        let events = apply_effects(
            &w.c,
            &complete(&w, "frost_nova", Target::GroundPoint(Vec3::X)),
            &mut target,
            &mut fx,
            1000,
        );
        assert_eq!(
            events[1],
            EffectEvent::Slowed {
                factor: 0.5,
                until_ms: 4000
            }
        );
        assert_eq!(fx.speed_factor(3999), 0.5);
        assert_eq!(fx.speed_factor(4000), 1.0);
        let events = apply_effects(
            &w.c,
            &complete(&w, "charge", Target::Direction(Vec3::X)),
            &mut target,
            &mut fx,
            1000,
        );
        assert_eq!(events, vec![EffectEvent::KnockedBack { distance_m: 4.0 }]);
        let heal = w.a("self_heal");
        let events = apply_effects(
            &w.c,
            &complete(&w, "self_heal", Target::SelfTarget),
            &mut target,
            &mut fx,
            1000,
        );
        assert_eq!(
            events,
            vec![EffectEvent::Healed {
                ability: heal,
                amount: 10
            }]
        );
        target.damage(85, 1000); // 15 left
        let strike = w.a("strike");
        let events = apply_effects(
            &w.c,
            &complete(&w, "strike", ENEMY),
            &mut target,
            &mut fx,
            1000,
        );
        assert_eq!(
            events,
            vec![EffectEvent::Damaged {
                ability: strike,
                amount: 12
            },]
        );
        let events = apply_effects(
            &w.c,
            &complete(&w, "strike", ENEMY),
            &mut target,
            &mut fx,
            1100,
        );
        assert_eq!(
            events,
            vec![
                EffectEvent::Damaged {
                    ability: strike,
                    amount: 3
                },
                EffectEvent::Died { ability: strike },
            ]
        );
        assert!(
            apply_effects(
                &w.c,
                &complete(&w, "strike", ENEMY),
                &mut target,
                &mut fx,
                1200
            )
            .is_empty()
        );
    }
}
