//! The world frame: every replicated entity's quantized state for one tick, written once
//! after simulation and read by replication for every client.
//!
//! This is the seam between simulation and replication. The zone writes one frame per tick
//! (`Zone::replicate` begins with it; `Zone::world_frame` shows it); replication reads an
//! entity's state from the frame instead of quantizing it again for each client that gets a
//! record of it (at 1000 clients, about 100 records per client per tick, that is 100,000
//! quantizations per tick instead of 1,000).
//!
//! A frame is plain data: a tick and a dense array of [`FrameEntity`] in ascending id
//! order, with no reference into the zone, serializable with serde (postcard in practice),
//! so it can be sent to another process (what the distributed world will ship for border
//! visibility; neighbours on threads still exchange `BorderExport`s of float states today).
//! A frame that comes from elsewhere is checked with [`WorldFrame::validate`] before use.
//!
//! What it does not hold: derived motion (velocity and acceleration of the codec's
//! prediction). In protocols 5 and 6 those are derived from the baseline each client
//! holds, so they differ per client and are computed per record. Making them canonical
//! (derived from the world's own history, so a record's bits depend only on entity, tick
//! and baseline tick) is the next step of the replication-at-scale work, and changes the
//! wire format.

use serde::{Deserialize, Serialize};

use super::PriorityCategory;
use crate::codec::entity_state::{Quantization, QuantizedState};
use crate::entity::EntityId;
use crate::time::Tick;

/// One replicated entity in a [`WorldFrame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameEntity {
    /// Its id (unique in the world).
    pub id: EntityId,
    /// Sent in enter records: which actor class a client spawns.
    pub archetype: u16,
    /// Replication priority category.
    pub category: PriorityCategory,
    /// The quantized state at the frame's tick.
    pub state: QuantizedState,
}

/// Every replicated entity of a zone (its own and its neighbours' ghosts) at one tick.
///
/// Invariant (checked by [`WorldFrame::validate`] for frames from elsewhere, kept by
/// [`WorldFrame::rebuild`]): ids strictly ascending, so lookups are binary searches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorldFrame {
    /// The tick the states belong to.
    pub tick: Tick,
    /// The entities, ascending id.
    pub entities: Vec<FrameEntity>,
}

/// Why a frame from elsewhere was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Ids are not strictly ascending (or an id is 0, which no entity has).
    #[error(
        "world frame of tick {tick}: entity {id} at index {index} is not above the one before it"
    )]
    Unordered {
        /// The frame's tick.
        tick: u32,
        /// The offending id.
        id: u32,
        /// Its index in `entities`.
        index: usize,
    },
    /// A state this zone's quantization cannot hold (position out of bounds, yaw too big).
    #[error("world frame of tick {tick}: entity {id} has a state outside the quantization bounds")]
    OutOfRange {
        /// The frame's tick.
        tick: u32,
        /// The offending id.
        id: u32,
    },
}

/// An entity found in a frame, with its position there.
#[derive(Clone, Copy, Debug)]
pub struct IndexedEntity<'a> {
    /// Index in the frame's ascending id order (shifts when an entity with a lower id
    /// joins or leaves between frames).
    pub index: usize,
    /// The entity.
    pub entity: &'a FrameEntity,
}

impl WorldFrame {
    /// An empty frame of `tick`.
    #[must_use]
    pub fn new(tick: Tick) -> Self {
        WorldFrame {
            tick,
            entities: Vec::new(),
        }
    }

    /// Replaces the contents with `entities` (any order; sorted here) at `tick`, reusing
    /// the allocation. Duplicate ids are a caller bug (debug assertion); one of them, which
    /// one unspecified, is kept.
    pub fn rebuild(&mut self, tick: Tick, entities: impl IntoIterator<Item = FrameEntity>) {
        self.tick = tick;
        self.entities.clear();
        self.entities.extend(entities);
        self.entities.sort_unstable_by_key(|e| e.id);
        let before = self.entities.len();
        self.entities.dedup_by_key(|e| e.id);
        debug_assert_eq!(
            before,
            self.entities.len(),
            "duplicate ids in a world frame"
        );
    }

    /// The entity with `id`, if present (binary search).
    #[inline]
    #[must_use]
    pub fn get(&self, id: EntityId) -> Option<&FrameEntity> {
        self.get_indexed(id).map(|found| found.entity)
    }

    /// The entity `id` and its index in this frame.
    #[inline]
    #[must_use]
    pub fn get_indexed(&self, id: EntityId) -> Option<IndexedEntity<'_>> {
        let index = self.entities.binary_search_by_key(&id, |e| e.id).ok()?;
        Some(IndexedEntity {
            index,
            entity: self.entities.get(index)?,
        })
    }

    /// Number of entities.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// True when the frame holds no entity.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Checks a frame received from elsewhere against this side's quantization: ids
    /// strictly ascending and non-zero, every state within the bounds.
    pub fn validate(&self, q: &Quantization) -> Result<(), FrameError> {
        let mut prev = 0u32;
        for (index, e) in self.entities.iter().enumerate() {
            if e.id.0 <= prev {
                return Err(FrameError::Unordered {
                    tick: self.tick.0,
                    id: e.id.0,
                    index,
                });
            }
            prev = e.id.0;
            if !q.state_in_range(&e.state) {
                return Err(FrameError::OutOfRange {
                    tick: self.tick.0,
                    id: e.id.0,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use glam::Vec3;

    use super::*;
    use crate::codec::entity_state::{NetEntityState, SnapshotConfig};

    fn entity(q: &Quantization, id: u32, x_m: f32) -> FrameEntity {
        FrameEntity {
            id: EntityId(id),
            archetype: 1,
            category: PriorityCategory::High,
            state: q.quantize_state(&NetEntityState {
                position_m: Vec3::new(x_m, 2.0, 0.5),
                yaw_rad: 1.0,
                flags: 3,
            }),
        }
    }

    #[test]
    fn rebuild_sorts_and_get_finds() {
        let q = Quantization::new(SnapshotConfig::default()).expect("valid");
        let mut f = WorldFrame::default();
        f.rebuild(
            Tick(7),
            [entity(&q, 9, 1.0), entity(&q, 2, 2.0), entity(&q, 5, 3.0)],
        );
        let ids: Vec<u32> = f.entities.iter().map(|e| e.id.0).collect();
        assert_eq!(ids, vec![2, 5, 9]);
        assert_eq!(f.tick, Tick(7));
        assert_eq!(f.get(EntityId(5)).map(|e| e.state.pos_q[0]), Some(300));
        assert!(f.get(EntityId(4)).is_none());
        assert!(f.validate(&q).is_ok());
    }

    #[test]
    fn a_frame_survives_postcard_and_bad_frames_are_named() {
        let q = Quantization::new(SnapshotConfig::default()).expect("valid");
        let mut f = WorldFrame::default();
        f.rebuild(Tick(3), (1..=50).map(|i| entity(&q, i * 3, i as f32)));
        let bytes = postcard::to_allocvec(&f).expect("serializable");
        let back: WorldFrame = postcard::from_bytes(&bytes).expect("deserializable");
        assert_eq!(back, f);
        assert!(back.validate(&q).is_ok());

        let mut unordered = f.clone();
        unordered.entities.swap(3, 4);
        let e = unordered.validate(&q).expect_err("unordered");
        assert!(matches!(e, FrameError::Unordered { index: 4, .. }), "{e}");
        assert!(e.to_string().contains("tick 3"), "{e}");

        let mut far = f.clone();
        far.entities[0].state.pos_q[0] = i32::MAX;
        assert!(matches!(
            far.validate(&q),
            Err(FrameError::OutOfRange { id: 3, .. })
        ));
        let mut yaw = f;
        // The first value past the default 10-bit yaw.
        yaw.entities[1].state.yaw_q = 1 << q.config.yaw_bits;
        assert!(matches!(
            yaw.validate(&q),
            Err(FrameError::OutOfRange { id: 6, .. })
        ));
    }
}
