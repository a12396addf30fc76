//! Cross-player item transfers ([`InventoryOp::Give`]): applied in memory at once, and
//! acknowledged to the giver only once the driver's store committed both characters.
//!
//! A `Give` is checked and applied in the gameplay phase like every inventory request
//! (atomic: [`crate::gameplay::inventory::give`] changes both bags or neither). Refusals:
//! `inventory_target_gone` (the receiver is not a logged-in player of this zone: it logged
//! out, crossed a border, or is not a player; a race, no strike), `inventory_bad_target`
//! (giving to oneself; a strike, the library never sends it),
//! `inventory_target_out_of_range` (further than [`GIVE_RANGE_M`]; a race with movement,
//! no strike), `inventory_caster_dead` (no strike), and the inventory refusals of the giver's
//! slot and the receiver's bag (`inventory_full` when the receiver has no room), struck as
//! the other inventory refusals are.
//!
//! On success, with [`Zone::set_transfers_await_commit`] on (the driver has a store), the
//! zone answers nothing yet: it records a [`PendingTransfer`] that the driver takes with
//! [`Zone::drain_transfers`], saves both characters in one transaction, and reports with
//! [`Zone::finish_transfer`]; that sends the giver its `InventoryResult` and both players
//! their new `Inventory`. When the commit fails the giver gets the refusal
//! `inventory_not_saved`, but **the in-memory state stays as applied**: the zone is
//! authoritative, and both characters are saved again by the driver's next flush. With
//! the setting off (the default: no store, tests, tools) the transfer is finished at once.
//!
//! Not done: an answer whose giver left the zone (logout, handoff) before the commit
//! arrived is not delivered (the new inventory is in its next `Inventory` message).

use std::sync::Arc;

use crate::control::ServerControl;
use crate::gameplay::inventory::give;
use crate::gameplay::messages::{
    InventoryOp, InventoryRequest, InventoryResult, InventoryView, Refusal,
};

use super::gameplay::Refused;
use super::{ConnectionId, Zone};

/// Furthest a `Give` reaches: the distance between giver and receiver, metres.
pub const GIVE_RANGE_M: f32 = 5.0;

/// A transfer applied in memory and waiting for the store's commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingTransfer {
    /// Who gave (gets the `InventoryResult`).
    pub giver: ConnectionId,
    /// Who received.
    pub receiver: ConnectionId,
    /// The giver's request number.
    pub request: u32,
}

impl Zone {
    /// Whether transfers wait for [`Zone::finish_transfer`] (on when the driver saves to a
    /// store) or are answered at once (the default).
    pub fn set_transfers_await_commit(&mut self, on: bool) {
        self.play.transfers_await_commit = on;
    }

    /// Transfers applied since the last call, waiting for the commit (empty unless
    /// [`Zone::set_transfers_await_commit`] is on).
    pub fn drain_transfers(&mut self) -> Vec<PendingTransfer> {
        std::mem::take(&mut self.play.transfers)
    }

    /// Answers a transfer once the store's commit is known: the giver gets its
    /// `InventoryResult` (on `Err`, the refusal `inventory_not_saved` with the message; the
    /// items stay moved, see the module docs), both players their inventory. Players that
    /// left get nothing.
    pub fn finish_transfer(&mut self, transfer: &PendingTransfer, committed: Result<(), String>) {
        for id in [transfer.giver, transfer.receiver] {
            if let Some(player) = self.players.get_mut(&id)
                && let Some(g) = player.gameplay.as_ref()
            {
                let view = InventoryView::of(&g.inventory);
                player
                    .connection
                    .send_gameplay(&ServerControl::Inventory(view));
            }
        }
        let refusal = committed.err().map(|message| {
            tracing::error!(
                giver = transfer.giver.0,
                receiver = transfer.receiver.0,
                error = %message,
                "item transfer not committed; it stays applied and is saved with the next flush"
            );
            Refusal {
                kind: "inventory_not_saved".to_owned(),
                message: format!(
                    "the transfer is applied but the store did not commit it yet: {message}"
                ),
            }
        });
        if let Some(player) = self.players.get_mut(&transfer.giver) {
            player
                .connection
                .send_gameplay(&ServerControl::InventoryResult(InventoryResult {
                    request: transfer.request,
                    refusal,
                }));
        }
    }

    /// Handles a `Give` request of `id` (called from the gameplay phase).
    pub(super) fn handle_give(&mut self, id: ConnectionId, r: &InventoryRequest) {
        let InventoryOp::Give { slot, quantity, to } = r.op else {
            return;
        };
        match self.apply_give(id, slot, quantity, to) {
            Ok(receiver) => {
                let pending = PendingTransfer {
                    giver: id,
                    receiver,
                    request: r.request,
                };
                if self.play.transfers_await_commit {
                    self.play.transfers.push(pending);
                } else {
                    self.finish_transfer(&pending, Ok(()));
                }
            }
            Err(refused) => {
                if let Some(player) = self.players.get_mut(&id) {
                    player
                        .connection
                        .send_gameplay(&ServerControl::InventoryResult(InventoryResult {
                            request: r.request,
                            refusal: Some(refused.to_wire()),
                        }));
                }
                self.refuse(id, &refused);
            }
        }
    }

    /// Checks and applies a give; returns the receiver's connection.
    fn apply_give(
        &mut self,
        id: ConnectionId,
        slot: u32,
        quantity: u32,
        to: crate::entity::EntityId,
    ) -> Result<ConnectionId, Refused> {
        let content = Arc::clone(&self.config.gameplay.content);
        let refused = |kind: &'static str, detail: String, strike: bool| Refused {
            kind,
            detail,
            strike,
        };
        let giver = self
            .players
            .get(&id)
            .ok_or_else(|| refused("inventory_target_gone", "the giver left".to_owned(), false))?;
        if giver.connection.entity() == Some(to) {
            return Err(refused(
                "inventory_bad_target",
                format!("entity {} is the giver itself", to.0),
                true,
            ));
        }
        if giver.gameplay.as_ref().is_some_and(|g| g.pools.is_dead()) {
            return Err(refused(
                "inventory_caster_dead",
                "the dead cannot give items".to_owned(),
                false,
            ));
        }
        let giver_m = giver.character.map(|c| c.position_m);
        let receiver = self.connection_of(to).ok_or_else(|| {
            refused(
                "inventory_target_gone",
                format!("entity {} is not a player in this zone", to.0),
                false,
            )
        })?;
        let receiver_m = self
            .players
            .get(&receiver)
            .and_then(|p| p.character)
            .map(|c| c.position_m);
        let (Some(giver_m), Some(receiver_m)) = (giver_m, receiver_m) else {
            return Err(refused(
                "inventory_target_gone",
                format!("entity {} is not a player in this zone", to.0),
                false,
            ));
        };
        let distance_m = giver_m.distance(receiver_m);
        if distance_m > GIVE_RANGE_M {
            return Err(refused(
                "inventory_target_out_of_range",
                format!(
                    "entity {} is {distance_m:.1} m away, more than {GIVE_RANGE_M} m",
                    to.0
                ),
                false,
            ));
        }
        // Two players of one map: take the receiver's state out while both are changed.
        let mut received = self
            .players
            .get_mut(&receiver)
            .and_then(|p| p.gameplay.take())
            .ok_or_else(|| {
                refused(
                    "inventory_target_gone",
                    format!("entity {} has no character yet", to.0),
                    false,
                )
            })?;
        let outcome = match self.players.get_mut(&id).and_then(|p| p.gameplay.as_mut()) {
            Some(g) => give(
                &*content,
                &mut g.inventory,
                slot,
                quantity,
                &mut received.inventory,
            )
            .map(|_| ())
            .map_err(|e| super::gameplay::inventory_refusal(&e)),
            None => Err(refused(
                "inventory_target_gone",
                "the giver has no character".to_owned(),
                false,
            )),
        };
        if let Some(p) = self.players.get_mut(&receiver) {
            p.gameplay = Some(received);
        }
        outcome.map(|()| receiver)
    }
}
