//! Id allocation of one zone: connection and entity ids from the zone's residue class, so
//! the zones of one world never hand out the same id (see [`crate::world`]).

/// The next connection and entity ids. Ids are `k * stride + offset` for the `k`-th id of
/// each kind; stride and offset are 1 and 1 without placement (ids `1, 2, 3, …`).
#[derive(Clone, Copy, Debug)]
pub(super) struct IdAllocator {
    /// Connection ids allocated so far.
    connections: u32,
    /// Entity ids allocated so far.
    entities: u32,
    stride: u32,
    offset: u32,
}

impl IdAllocator {
    /// Ids `k * stride + offset`. Ids repeat only after `u32::MAX / stride` allocations.
    pub(super) fn new(stride: u32, offset: u32) -> Self {
        IdAllocator {
            connections: 0,
            entities: 0,
            stride,
            offset,
        }
    }

    fn id(&self, k: u32) -> u32 {
        k.wrapping_mul(self.stride).wrapping_add(self.offset)
    }

    /// A new connection id.
    pub(super) fn next_connection(&mut self) -> u32 {
        let id = self.id(self.connections);
        self.connections = self.connections.wrapping_add(1);
        id
    }

    /// The id the next entity gets; [`IdAllocator::take_entity`] uses it up.
    pub(super) fn peek_entity(&self) -> u32 {
        self.id(self.entities)
    }

    /// Uses up the id [`IdAllocator::peek_entity`] gave.
    pub(super) fn take_entity(&mut self) {
        self.entities = self.entities.wrapping_add(1);
    }
}
