//! Entity id to per-client handle, as one sorted array: what `SentHistory` looks up for a
//! record whose key hint misses (or that has no key), and on enters and leaves.
//!
//! A hash map would be O(1), but each lookup is a random access into a table that is cold
//! when the client's turn comes (a thousand clients' tables do not fit any cache), two
//! cache misses per record. The sorted array of (id, handle) pairs is 8 bytes per entity
//! (5 KiB for 640 visible entities, against about 16 KiB for the map), and the lookups of
//! one snapshot come in ascending id order, so a binary search touches lines the previous
//! one brought in. Inserts and removals move the tail (a few KiB) and happen only when an
//! entity enters or leaves the client's view.

use crate::entity::EntityId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Pair {
    id: EntityId,
    handle: u32,
}

/// See the module docs.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct HandleIndex {
    /// Ascending by id, ids unique.
    pairs: Vec<Pair>,
}

impl HandleIndex {
    #[inline]
    fn position(&self, id: EntityId) -> Result<usize, usize> {
        self.pairs.binary_search_by_key(&id, |p| p.id)
    }

    /// The handle of `id`.
    #[inline]
    pub(crate) fn get(&self, id: EntityId) -> Option<u32> {
        self.position(id)
            .ok()
            .and_then(|i| self.pairs.get(i))
            .map(|p| p.handle)
    }

    /// True when `id` has a handle.
    #[inline]
    pub(crate) fn contains(&self, id: EntityId) -> bool {
        self.position(id).is_ok()
    }

    /// The handle of `id`, given by `make` if it has none.
    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, id: EntityId, make: impl FnOnce() -> u32) -> u32 {
        match self.position(id) {
            Ok(i) => self.pairs.get(i).map_or(0, |p| p.handle),
            Err(i) => {
                let handle = make();
                self.pairs.insert(i, Pair { id, handle });
                handle
            }
        }
    }

    /// Removes `id`, returning its handle.
    pub(crate) fn remove(&mut self, id: EntityId) -> Option<u32> {
        let i = self.position(id).ok()?;
        let handle = self.pairs.remove(i).handle;
        // Give back what a crowd that left leaves behind.
        if self.pairs.capacity() > 2 * self.pairs.len().max(64) {
            self.pairs
                .shrink_to(self.pairs.len() + self.pairs.len() / 2);
        }
        Some(handle)
    }

    /// Heap bytes held (capacity).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.pairs.capacity() * std::mem::size_of::<Pair>()
    }

    /// Number of ids.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pairs.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any sequence of inserts and removals agrees with a map.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((any::<bool>(), 1u32..200), 0..400)) {
            let mut index = HandleIndex::default();
            let mut model = BTreeMap::new();
            for (n, (insert, id)) in ops.into_iter().enumerate() {
                let id = EntityId(id);
                if insert {
                    let got = index.get_or_insert_with(id, || n as u32);
                    let want = *model.entry(id).or_insert(n as u32);
                    prop_assert_eq!(got, want);
                } else {
                    prop_assert_eq!(index.remove(id), model.remove(&id));
                }
                prop_assert_eq!(index.len(), model.len());
            }
            for (id, handle) in &model {
                prop_assert_eq!(index.get(*id), Some(*handle));
                prop_assert!(index.contains(*id));
            }
        }
    }
}
