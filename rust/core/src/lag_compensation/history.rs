//! The server's bounded per-entity hitbox history and rewinding targets into the past.

use std::collections::{BTreeMap, VecDeque};

use crate::entity::EntityId;
use crate::time::Tick;

use super::capsule::{Capsule, Ray, ray_vs_capsule};
use super::config::{LagCompensationConfig, LagCompensationConfigError};

/// Why a target could not be rewound. The tick and fraction come from the shooter's client,
/// so every one of these is an expected outcome, not a bug.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum RewindError {
    /// The entity has no history at all (never recorded, removed, or pruned away).
    #[error("entity {entity:?} has no hitbox history")]
    UnknownEntity {
        /// The entity asked for.
        entity: EntityId,
    },
    /// The entity has history, but not at the requested time (spawned later, or gone).
    #[error("entity {entity:?} has no hitbox at tick {tick:?}")]
    NoHistory {
        /// The entity asked for.
        entity: EntityId,
        /// The requested tick.
        tick: Tick,
    },
    /// The requested time is further back than the configured clamp.
    #[error("rewind of {requested_ms} ms exceeds the {max_ms} ms limit")]
    BeyondClamp {
        /// How far back the request reaches, milliseconds (rounded up).
        requested_ms: u32,
        /// The configured `max_rewind_ms`.
        max_ms: u32,
    },
    /// The requested time is after the newest recorded tick.
    #[error("tick {requested:?} is after the current tick {current:?}")]
    FromFuture {
        /// The requested tick.
        requested: Tick,
        /// The newest recorded tick.
        current: Tick,
    },
    /// The fraction is not a finite number in `[0, 1)`.
    #[error("rewind fraction {fraction} is not in [0, 1)")]
    InvalidFraction {
        /// The rejected fraction.
        fraction: f32,
    },
}

/// Why a hitbox could not be recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Recording this new entity would exceed `max_entities`.
    #[error("hitbox history is full ({max_entities} entities)")]
    TooManyEntities {
        /// The configured bound.
        max_entities: usize,
    },
}

/// Bounded hitbox history of every lag-compensated entity, keyed by tick.
///
/// The zone records each entity's capsule once per tick, after the movement step. When a
/// shot arrives, the shooter's client states the tick (and fraction of a tick) it was
/// rendering remote entities at; [`HitboxHistory::rewound`] reconstructs a target's capsule
/// at that time, refusing anything older than `max_rewind_ms` before the current tick.
///
/// Invariants: each entity's ring holds at most `max_history_ticks` samples in strictly
/// increasing tick order, none older than `current - (max_history_ticks - 1)`; at most
/// `max_entities` entities; entities are kept in a `BTreeMap` so iteration is deterministic.
#[derive(Clone, Debug)]
pub struct HitboxHistory {
    config: LagCompensationConfig,
    entities: BTreeMap<EntityId, VecDeque<(Tick, Capsule)>>,
    /// Newest tick recorded for any entity; `None` before the first record.
    current_tick: Option<Tick>,
}

impl HitboxHistory {
    /// An empty history.
    pub fn new(config: LagCompensationConfig) -> Result<Self, LagCompensationConfigError> {
        config.validate()?;
        Ok(HitboxHistory {
            config,
            entities: BTreeMap::new(),
            current_tick: None,
        })
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &LagCompensationConfig {
        &self.config
    }

    /// Newest tick recorded for any entity.
    #[must_use]
    pub fn current_tick(&self) -> Option<Tick> {
        self.current_tick
    }

    /// Records `entity`'s hitbox at `tick`. Moving to a newer tick prunes samples that fell
    /// out of the window and forgets entities left with none.
    ///
    /// Contract: per entity, ticks are recorded in increasing order (recording the same tick
    /// again replaces it) and the capsule is valid ([`Capsule::is_valid`]). A sample older
    /// than the entity's newest or outside the window is a caller bug: `debug_assert!`, then
    /// ignored.
    pub fn record(
        &mut self,
        tick: Tick,
        entity: EntityId,
        capsule: Capsule,
    ) -> Result<(), RecordError> {
        debug_assert!(capsule.is_valid(), "invalid capsule {capsule:?}");
        if self.current_tick.is_none_or(|current| tick > current) {
            self.current_tick = Some(tick);
            self.prune(tick);
        }
        let oldest_kept = self.oldest_kept_tick();
        if tick < oldest_kept {
            debug_assert!(false, "record at {tick:?} is older than the window");
            return Ok(());
        }
        let capacity = self.config.max_history_ticks as usize;
        let entities_len = self.entities.len();
        let ring = match self.entities.get_mut(&entity) {
            Some(ring) => ring,
            None => {
                if entities_len >= self.config.max_entities {
                    return Err(RecordError::TooManyEntities {
                        max_entities: self.config.max_entities,
                    });
                }
                self.entities
                    .entry(entity)
                    .or_insert_with(|| VecDeque::with_capacity(capacity))
            }
        };
        match ring.back_mut() {
            Some((newest, slot)) if *newest == tick => *slot = capsule,
            Some((newest, _)) if *newest > tick => {
                debug_assert!(false, "record at {tick:?} after {newest:?} for {entity:?}");
            }
            _ => {
                if ring.len() >= capacity {
                    ring.pop_front();
                }
                ring.push_back((tick, capsule));
            }
        }
        Ok(())
    }

    /// Forgets `entity` (despawned, left the zone). Returns whether it had history.
    pub fn remove(&mut self, entity: EntityId) -> bool {
        self.entities.remove(&entity).is_some()
    }

    /// Number of tracked entities.
    #[must_use]
    pub fn entity_count(&self) -> usize {
        self.entities.len()
    }

    /// Samples held for `entity` (0 when unknown).
    #[must_use]
    pub fn sample_count(&self, entity: EntityId) -> usize {
        self.entities.get(&entity).map_or(0, VecDeque::len)
    }

    /// Samples held for all entities together.
    #[must_use]
    pub fn total_samples(&self) -> usize {
        self.entities.values().map(VecDeque::len).sum()
    }

    /// The oldest tick still held for `entity`.
    #[must_use]
    pub fn oldest_tick(&self, entity: EntityId) -> Option<Tick> {
        self.entities
            .get(&entity)
            .and_then(|ring| ring.front())
            .map(|(tick, _)| *tick)
    }

    /// The newest recorded capsule of `entity`.
    #[must_use]
    pub fn latest(&self, entity: EntityId) -> Option<Capsule> {
        self.entities
            .get(&entity)
            .and_then(|ring| ring.back())
            .map(|(_, capsule)| *capsule)
    }

    /// `entity`'s capsule at `tick + fraction`, interpolated between the recorded samples
    /// around that time (samples need not be on consecutive ticks).
    ///
    /// `tick` and `fraction` come from the shooter's client: a fraction outside `[0, 1)`, a
    /// time after the current tick or more than `max_rewind_ms` before it are refused with a
    /// typed error, never a panic.
    pub fn rewound(
        &self,
        entity: EntityId,
        tick: Tick,
        fraction: f32,
    ) -> Result<Capsule, RewindError> {
        if !(0.0..1.0).contains(&fraction) {
            return Err(RewindError::InvalidFraction { fraction });
        }
        let current = self
            .current_tick
            .ok_or(RewindError::UnknownEntity { entity })?;
        if tick > current || (tick == current && fraction > 0.0) {
            return Err(RewindError::FromFuture {
                requested: tick,
                current,
            });
        }
        let rewind_ticks = f64::from(current.since(tick)) - f64::from(fraction);
        let rewind_us = rewind_ticks * 1e6 / f64::from(self.config.tick_rate.hz());
        if rewind_us > f64::from(self.config.max_rewind_ms) * 1000.0 {
            // Bounded by the tick range, so the cast cannot lose more than saturation.
            let requested_ms = (rewind_us / 1000.0).ceil().min(f64::from(u32::MAX)) as u32;
            return Err(RewindError::BeyondClamp {
                requested_ms,
                max_ms: self.config.max_rewind_ms,
            });
        }
        let ring = self
            .entities
            .get(&entity)
            .ok_or(RewindError::UnknownEntity { entity })?;
        let after = ring.partition_point(|(t, _)| *t <= tick);
        let no_history = RewindError::NoHistory { entity, tick };
        let (from_tick, from) = *ring
            .get(after.checked_sub(1).ok_or(no_history)?)
            .ok_or(no_history)?;
        match ring.get(after) {
            Some(&(to_tick, to)) => {
                // from_tick <= tick < to_tick, so the span is at least one tick.
                let span = f64::from(to_tick.since(from_tick));
                let into = f64::from(tick.since(from_tick)) + f64::from(fraction);
                Ok(from.lerp(&to, (into / span) as f32))
            }
            // No later sample: the entity's last tick. Only that exact tick (and the fraction
            // after it) is known; an entity not recorded since then has no hitbox later.
            None if from_tick == tick => Ok(from),
            None => Err(no_history),
        }
    }

    /// Rewinds `target` to the time the shooter saw (`shooter_view_tick + fraction`) and
    /// casts `ray` against it: `Ok(Some(distance_m))` on a hit, `Ok(None)` on a miss.
    pub fn hit_test_rewound(
        &self,
        shooter_view_tick: Tick,
        fraction: f32,
        target: EntityId,
        ray: &Ray,
    ) -> Result<Option<f32>, RewindError> {
        let capsule = self.rewound(target, shooter_view_tick, fraction)?;
        Ok(ray_vs_capsule(
            &capsule,
            ray.origin_m,
            ray.dir,
            ray.max_dist_m,
        ))
    }

    fn oldest_kept_tick(&self) -> Tick {
        let current = self.current_tick.unwrap_or_default();
        Tick(current.0.saturating_sub(self.config.max_history_ticks - 1))
    }

    /// Drops samples older than the window ending at `current` and empty entities.
    fn prune(&mut self, current: Tick) {
        let oldest_kept = Tick(current.0.saturating_sub(self.config.max_history_ticks - 1));
        self.entities.retain(|_, ring| {
            while ring.front().is_some_and(|(t, _)| *t < oldest_kept) {
                ring.pop_front();
            }
            !ring.is_empty()
        });
    }
}
