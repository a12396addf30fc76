//! One character's resource pools (health, mana, stamina...): current and maximum values,
//! deterministic regeneration, spending, damage, healing, death and respawn.
//!
//! # Deterministic regeneration
//!
//! Current values are stored in integer *milli-points* (1 point = 1000 milli-points).
//! [`ResourcePools::tick`] regenerates `regen_per_s * elapsed_ms` milli-points per pool (points
//! per second times milliseconds is exactly milli-points), so the result is integer, exact,
//! independent of the tick rate and of how the elapsed time is split into ticks. The visible
//! value ([`ResourcePools::current`]) is `milli / 1000`, rounded down. Call `tick(now_ms)` once
//! per simulation tick, e.g. with the tick's start time
//! ([`crate::time::TickRate::tick_start_us`] divided by 1000).
//!
//! # Rules
//!
//! - Spending from a pool ([`ResourcePools::spend`]) or damaging health pauses that pool's
//!   regeneration until `now_ms + regen_delay_ms`; time spent paused is not regenerated later.
//! - [`ResourcePools::spend`] is all-or-nothing.
//! - Health reaching 0 points kills the character. While dead, spending is refused, damage
//!   and heals do nothing and nothing regenerates.
//! - [`ResourcePools::respawn`] is allowed `respawn_delay_ms` (from the content's rules) after
//!   death and restores every pool to its maximum.
//! - Maxima: the class's `pool_max` replaces the pool default, then the race's `pool_bonus` is
//!   added; the result is clamped to at least 1.
//!
//! Sans-IO: time is always an argument (`now_ms`, milliseconds since an arbitrary epoch that
//! must not go backwards; a `now_ms` earlier than the last one is treated as no time passing).
//!
//! Not done yet: damage types and resistances, absorb shields, regeneration that depends on
//! being in or out of combat, and persisting pools across logins.

use std::fmt;

use crate::gameplay::content::{ClassId, Content, PoolId, RaceId};

/// Milli-points per point.
pub const MILLI_PER_POINT: u64 = 1000;

/// Why a resource operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// The character is dead.
    #[error("the character is dead")]
    Dead,
    /// A pool id outside the content.
    #[error("unknown pool {0:?}")]
    UnknownPool(PoolId),
    /// A class id outside the content.
    #[error("unknown class {0:?}")]
    UnknownClass(ClassId),
    /// A race id outside the content.
    #[error("unknown race {0:?}")]
    UnknownRace(RaceId),
    /// A pool holds less than the cost.
    #[error("not enough {pool:?}: need {need}, have {have}")]
    NotEnough {
        /// The first pool (in cost order) that is short.
        pool: PoolId,
        /// The cost, points.
        need: u32,
        /// The current value, points.
        have: u32,
    },
    /// Respawn requested while alive.
    #[error("the character is not dead")]
    NotDead,
    /// Respawn requested before the respawn delay has passed.
    #[error("respawn not ready until {ready_at_ms} ms")]
    RespawnNotReady {
        /// Earliest respawn time.
        ready_at_ms: u64,
    },
}

impl ResourceError {
    /// Stable `snake_case` name for metrics and logs.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            ResourceError::Dead => "dead",
            ResourceError::UnknownPool(_) => "unknown_pool",
            ResourceError::UnknownClass(_) => "unknown_class",
            ResourceError::UnknownRace(_) => "unknown_race",
            ResourceError::NotEnough { .. } => "not_enough",
            ResourceError::NotDead => "not_dead",
            ResourceError::RespawnNotReady { .. } => "respawn_not_ready",
        }
    }
}

/// Result of [`ResourcePools::damage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DamageOutcome {
    /// Points of health actually removed (at most the health left).
    pub dealt: u32,
    /// True when this damage killed the character.
    pub died: bool,
}

/// One pool of one character.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Pool {
    /// Invariant: `current_milli <= max * MILLI_PER_POINT`.
    current_milli: u64,
    /// Invariant: `>= 1`.
    max: u32,
    regen_per_s: u32,
    regen_delay_ms: u32,
    /// Regeneration resumes at this time.
    regen_paused_until_ms: u64,
}

impl Pool {
    fn max_milli(&self) -> u64 {
        u64::from(self.max) * MILLI_PER_POINT
    }

    fn points(&self) -> u32 {
        // Fits: current_milli <= max * 1000 with max a u32.
        (self.current_milli / MILLI_PER_POINT) as u32
    }
}

/// The resource pools of one character. Indexed by [`PoolId`] of the content it was built
/// from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResourcePools {
    /// One entry per content pool, in [`PoolId`] order.
    pools: Vec<Pool>,
    health: PoolId,
    respawn_delay_ms: u32,
    /// Regeneration has been applied up to this time.
    last_tick_ms: u64,
    /// `Some(time of death)` while dead.
    died_at_ms: Option<u64>,
}

impl fmt::Display for ResourcePools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.pools.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}/{}", p.points(), p.max)?;
        }
        Ok(())
    }
}

impl ResourcePools {
    /// Full pools with the content's default maxima.
    #[must_use]
    pub fn new(content: &Content, now_ms: u64) -> Self {
        let pools = content
            .pools()
            .iter()
            .map(|d| Pool {
                current_milli: u64::from(d.max) * MILLI_PER_POINT,
                max: d.max,
                regen_per_s: d.regen_per_s,
                regen_delay_ms: d.regen_delay_ms,
                regen_paused_until_ms: 0,
            })
            .collect();
        ResourcePools {
            pools,
            health: content.health_pool(),
            respawn_delay_ms: content.rules().respawn_delay_ms,
            last_tick_ms: now_ms,
            died_at_ms: None,
        }
    }

    /// Full pools for a character of `class` and `race` (maxima rule in the module docs).
    pub fn for_character(
        content: &Content,
        class: ClassId,
        race: RaceId,
        now_ms: u64,
    ) -> Result<Self, ResourceError> {
        let class_def = content
            .class(class)
            .ok_or(ResourceError::UnknownClass(class))?;
        let race_def = content.race(race).ok_or(ResourceError::UnknownRace(race))?;
        let mut pools = ResourcePools::new(content, now_ms);
        for &(id, max) in &class_def.pool_max {
            if let Some(p) = pools.pools.get_mut(usize::from(id.0)) {
                p.max = max;
            }
        }
        for &(id, bonus) in &race_def.pool_bonus {
            if let Some(p) = pools.pools.get_mut(usize::from(id.0)) {
                let max = (i64::from(p.max) + i64::from(bonus)).clamp(1, i64::from(u32::MAX));
                // In range: clamped to 1..=u32::MAX just above.
                p.max = max as u32;
            }
        }
        for p in &mut pools.pools {
            p.current_milli = p.max_milli();
        }
        Ok(pools)
    }

    fn pool(&self, id: PoolId) -> Result<&Pool, ResourceError> {
        self.pools
            .get(usize::from(id.0))
            .ok_or(ResourceError::UnknownPool(id))
    }

    /// Current value of `pool`, whole points (0 for an unknown pool).
    #[must_use]
    pub fn current(&self, pool: PoolId) -> u32 {
        self.pool(pool).map_or(0, Pool::points)
    }

    /// Current value of `pool` in milli-points (0 for an unknown pool).
    #[must_use]
    pub fn current_milli(&self, pool: PoolId) -> u64 {
        self.pool(pool).map_or(0, |p| p.current_milli)
    }

    /// Maximum of `pool`, points (0 for an unknown pool).
    #[must_use]
    pub fn max(&self, pool: PoolId) -> u32 {
        self.pool(pool).map_or(0, |p| p.max)
    }

    /// Current health, points.
    #[must_use]
    pub fn health(&self) -> u32 {
        self.current(self.health)
    }

    /// Maximum health, points.
    #[must_use]
    pub fn health_max(&self) -> u32 {
        self.max(self.health)
    }

    /// True while dead (health reached 0 and no respawn yet).
    #[must_use]
    pub fn is_dead(&self) -> bool {
        self.died_at_ms.is_some()
    }

    /// When a respawn becomes allowed, while dead.
    #[must_use]
    pub fn respawn_ready_at_ms(&self) -> Option<u64> {
        self.died_at_ms
            .map(|t| t.saturating_add(u64::from(self.respawn_delay_ms)))
    }

    /// Applies regeneration from the last call up to `now_ms` (see the module docs).
    pub fn tick(&mut self, now_ms: u64) {
        let from_ms = self.last_tick_ms;
        if now_ms <= from_ms {
            return;
        }
        self.last_tick_ms = now_ms;
        if self.is_dead() {
            return;
        }
        for p in &mut self.pools {
            let start_ms = from_ms.max(p.regen_paused_until_ms);
            if now_ms <= start_ms {
                continue;
            }
            let gained = u64::from(p.regen_per_s).saturating_mul(now_ms - start_ms);
            p.current_milli = p.current_milli.saturating_add(gained).min(p.max_milli());
        }
    }

    /// Checks that every cost can be paid, without paying.
    pub fn can_afford(&self, costs: &[(PoolId, u32)]) -> Result<(), ResourceError> {
        if self.is_dead() {
            return Err(ResourceError::Dead);
        }
        for (i, &(id, _)) in costs.iter().enumerate() {
            let p = self.pool(id)?;
            if costs[..i].iter().any(|(other, _)| *other == id) {
                continue; // already checked with the sum below
            }
            // A pool listed more than once must cover the sum of its entries.
            let need: u64 = costs
                .iter()
                .filter(|(other, _)| *other == id)
                .map(|&(_, n)| u64::from(n))
                .sum();
            if p.current_milli < need * MILLI_PER_POINT {
                return Err(ResourceError::NotEnough {
                    pool: id,
                    need: u32::try_from(need).unwrap_or(u32::MAX),
                    have: p.points(),
                });
            }
        }
        Ok(())
    }

    /// Pays every cost or none; pauses regeneration of each pool paid from.
    pub fn spend(&mut self, costs: &[(PoolId, u32)], now_ms: u64) -> Result<(), ResourceError> {
        self.can_afford(costs)?;
        for &(id, need) in costs {
            // Present: can_afford checked every id.
            if let Some(p) = self.pools.get_mut(usize::from(id.0)) {
                p.current_milli = p
                    .current_milli
                    .saturating_sub(u64::from(need) * MILLI_PER_POINT);
                p.regen_paused_until_ms = now_ms.saturating_add(u64::from(p.regen_delay_ms));
            }
        }
        Ok(())
    }

    /// Removes `amount` points of health; kills at 0. Does nothing while dead.
    pub fn damage(&mut self, amount: u32, now_ms: u64) -> DamageOutcome {
        let none = DamageOutcome {
            dealt: 0,
            died: false,
        };
        if self.is_dead() || amount == 0 {
            return none;
        }
        let Some(p) = self.pools.get_mut(usize::from(self.health.0)) else {
            return none;
        };
        let before = p.points();
        p.current_milli = p
            .current_milli
            .saturating_sub(u64::from(amount) * MILLI_PER_POINT);
        p.regen_paused_until_ms = now_ms.saturating_add(u64::from(p.regen_delay_ms));
        let died = p.points() == 0;
        if died {
            p.current_milli = 0;
            self.died_at_ms = Some(now_ms);
        }
        DamageOutcome {
            dealt: before - p.points(),
            died,
        }
    }

    /// Adds up to `amount` points of health (not above the maximum); returns the points
    /// actually healed. Does nothing while dead.
    pub fn heal(&mut self, amount: u32) -> u32 {
        if self.is_dead() {
            return 0;
        }
        let Some(p) = self.pools.get_mut(usize::from(self.health.0)) else {
            return 0;
        };
        let before = p.points();
        p.current_milli = p
            .current_milli
            .saturating_add(u64::from(amount) * MILLI_PER_POINT)
            .min(p.max_milli());
        p.points() - before
    }

    /// Brings a dead character back with every pool full, once the respawn delay has passed.
    pub fn respawn(&mut self, now_ms: u64) -> Result<(), ResourceError> {
        let Some(ready_at_ms) = self.respawn_ready_at_ms() else {
            return Err(ResourceError::NotDead);
        };
        if now_ms < ready_at_ms {
            return Err(ResourceError::RespawnNotReady { ready_at_ms });
        }
        for p in &mut self.pools {
            p.current_milli = p.max_milli();
            p.regen_paused_until_ms = 0;
        }
        self.died_at_ms = None;
        self.last_tick_ms = self.last_tick_ms.max(now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> Content {
        Content::default_content().unwrap()
    }

    fn ids(c: &Content) -> (PoolId, PoolId, PoolId) {
        (
            c.pool_id("health").unwrap(),
            c.pool_id("mana").unwrap(),
            c.pool_id("stamina").unwrap(),
        )
    }

    #[test]
    fn class_and_race_set_maxima() {
        let c = content();
        let (h, m, s) = ids(&c);
        let warrior = c.class_id("warrior").unwrap();
        let mage = c.class_id("mage").unwrap();
        let human = c.race_id("human").unwrap();
        let elf = c.race_id("elf").unwrap();
        let p = ResourcePools::for_character(&c, warrior, human, 0).unwrap();
        assert_eq!((p.max(h), p.max(m), p.max(s)), (160, 20, 120));
        assert_eq!(p.current(h), 160);
        let p = ResourcePools::for_character(&c, mage, elf, 0).unwrap();
        assert_eq!((p.max(h), p.max(m), p.max(s)), (80, 170, 100));
        assert_eq!(
            ResourcePools::for_character(&c, ClassId(9), human, 0),
            Err(ResourceError::UnknownClass(ClassId(9)))
        );
        let e = ResourcePools::for_character(&c, mage, RaceId(9), 0).unwrap_err();
        assert_eq!(e.kind(), "unknown_race");
    }

    #[test]
    fn spend_is_all_or_nothing() {
        let c = content();
        let (_, m, s) = ids(&c);
        let mut p = ResourcePools::new(&c, 0);
        p.spend(&[(m, 60)], 0).unwrap();
        let e = p.spend(&[(s, 10), (m, 50)], 0).unwrap_err();
        assert_eq!(
            e,
            ResourceError::NotEnough {
                pool: m,
                need: 50,
                have: 40
            }
        );
        assert_eq!(e.kind(), "not_enough");
        assert_eq!(p.current(s), 100, "stamina untouched by the refused spend");
        assert_eq!(p.current(m), 40);
        assert_eq!(
            p.spend(&[(PoolId(7), 1)], 0),
            Err(ResourceError::UnknownPool(PoolId(7)))
        );
        // A pool listed twice must cover the sum.
        assert_eq!(
            p.spend(&[(m, 30), (m, 20)], 0),
            Err(ResourceError::NotEnough {
                pool: m,
                need: 50,
                have: 40
            })
        );
        p.spend(&[(s, 10), (m, 40)], 0).unwrap();
        assert_eq!((p.current(s), p.current(m)), (90, 0));
    }

    #[test]
    fn regen_is_exact_and_split_independent() {
        let c = content();
        let (_, m, _) = ids(&c);
        // mana: 5 points/s, 2000 ms delay.
        let mut a = ResourcePools::new(&c, 0);
        a.spend(&[(m, 50)], 0).unwrap();
        let mut b = a.clone();
        a.tick(2000);
        assert_eq!(a.current(m), 50, "paused during the regen delay");
        // 33 ms ticks vs one big step: same milli-points.
        let mut t = 0;
        while t < 5000 {
            t = (t + 33).min(5000);
            b.tick(t);
        }
        a.tick(5000);
        assert_eq!(a.current_milli(m), b.current_milli(m));
        assert_eq!(a.current_milli(m), 50_000 + 5 * 3000);
        a.tick(1_000_000);
        assert_eq!(a.current(m), 100, "capped at max");
    }

    #[test]
    fn regen_delay_restarts_on_each_spend() {
        let c = content();
        let (_, _, s) = ids(&c);
        // stamina: 10 points/s, 1000 ms delay.
        let mut p = ResourcePools::new(&c, 0);
        p.spend(&[(s, 50)], 0).unwrap();
        p.tick(900);
        p.spend(&[(s, 10)], 900).unwrap();
        p.tick(1500);
        assert_eq!(p.current(s), 40, "second spend pushed the pause to 1900");
        p.tick(2400);
        assert_eq!(p.current(s), 45);
    }

    #[test]
    fn damage_heal_death_and_respawn() {
        let c = content();
        let (h, m, _) = ids(&c);
        let mut p = ResourcePools::new(&c, 0);
        assert_eq!(
            p.damage(30, 10),
            DamageOutcome {
                dealt: 30,
                died: false
            }
        );
        assert_eq!(p.heal(50), 30, "heal capped at max");
        p.spend(&[(m, 10)], 10).unwrap();
        let out = p.damage(500, 100);
        assert_eq!(
            out,
            DamageOutcome {
                dealt: 100,
                died: true
            }
        );
        assert!(p.is_dead());
        assert_eq!(p.health(), 0);
        assert_eq!(p.damage(5, 101).dealt, 0);
        assert_eq!(p.heal(5), 0);
        assert_eq!(p.spend(&[(m, 1)], 101), Err(ResourceError::Dead));
        p.tick(9000);
        assert_eq!(p.current(h), 0, "no regen while dead");
        assert_eq!(p.current(m), 90);
        assert_eq!(p.respawn_ready_at_ms(), Some(10_100));
        assert_eq!(
            p.respawn(10_099),
            Err(ResourceError::RespawnNotReady {
                ready_at_ms: 10_100
            })
        );
        p.respawn(10_100).unwrap();
        assert!(!p.is_dead());
        assert_eq!((p.current(h), p.current(m)), (100, 100));
        assert_eq!(p.respawn(10_200), Err(ResourceError::NotDead));
        p.spend(&[(m, 1)], 10_200).unwrap();
    }

    #[test]
    fn damage_pauses_health_regen() {
        let c = content();
        // health: 2 points/s, 5000 ms delay.
        let mut p = ResourcePools::new(&c, 0);
        p.damage(10, 0);
        p.tick(5000);
        assert_eq!(p.health(), 90);
        p.tick(6000);
        assert_eq!(p.health(), 92);
    }
}
