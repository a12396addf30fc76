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

    /// Starts both counters at `first_k` (before any id was handed out), so a zone that
    /// runs again after a restart does not hand out the ids of its previous run.
    ///
    /// # Errors
    /// Ids were handed out already, or `first_k` is past the last id of the residue class.
    pub(super) fn start_at(&mut self, first_k: u32) -> Result<(), String> {
        if self.connections != 0 || self.entities != 0 {
            return Err("ids were handed out already".to_owned());
        }
        if first_k > u32::MAX / self.stride {
            return Err(format!(
                "first id number {first_k} is past the residue class"
            ));
        }
        self.connections = first_k;
        self.entities = first_k;
        Ok(())
    }

    /// How many ids of each kind the residue class holds.
    pub(super) fn capacity(&self) -> u32 {
        u32::MAX / self.stride
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
