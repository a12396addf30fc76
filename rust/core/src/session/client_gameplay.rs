//! The client's copy of its gameplay state, as the server last stated it: inventory, pools,
//! cooldowns, plus request numbering. Owned by [`super::client::ClientSession`].
//!
//! Nothing here is predicted: the inventory and pools are replaced by every
//! `Inventory`/`Resources` message, and cooldowns restart from every `AbilityResult` (the
//! server reports the time left when it decided, so the countdown here is reconciled with
//! the server on every answer; it runs late by about half a round trip).

use std::collections::BTreeMap;

use crate::gameplay::content::AbilityId;
use crate::gameplay::messages::{AbilityResult, InventoryView, ResourceView};

/// Cooldown ends of one ability, client clock, microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CooldownEnds {
    global_us: u64,
    own_us: u64,
}

/// See the module docs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientGameplay {
    /// Number of the next request (ability or inventory), starting at 1.
    next_request: u32,
    inventory: Option<InventoryView>,
    resources: Option<ResourceView>,
    /// When the global cooldown ends, client clock, µs.
    global_ends_us: u64,
    cooldowns: BTreeMap<AbilityId, CooldownEnds>,
    /// Content hash from the welcome.
    content_hash: Option<[u8; 32]>,
    /// World geometry hash from the welcome (kept here beside the content hash: both say
    /// what the server runs, for the game to compare with what it loaded).
    world_hash: Option<[u8; 32]>,
    /// The ability request awaiting its answer, if any.
    pending_ability: Option<u32>,
}

/// Time left on an ability, milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CooldownLeft {
    /// Global cooldown left (applies to abilities that use it).
    pub global_ms: u32,
    /// The ability's own cooldown left.
    pub own_ms: u32,
}

impl ClientGameplay {
    /// Takes the next request number (never 0).
    pub(crate) fn next_request(&mut self) -> u32 {
        self.next_request = self.next_request.wrapping_add(1).max(1);
        self.next_request
    }

    pub(crate) fn set_pending_ability(&mut self, request: u32) {
        self.pending_ability = Some(request);
    }

    /// The ability request awaiting its answer, if any.
    #[must_use]
    pub fn pending_ability(&self) -> Option<u32> {
        self.pending_ability
    }

    /// Forgets what a restarted session will not answer: the pending ability request and
    /// the cooldowns (the new session reports its own with its answers). Request numbers go
    /// on; the inventory and pools stay until the new session sends them.
    pub(crate) fn forget_requests(&mut self) {
        self.pending_ability = None;
        self.global_ends_us = 0;
        self.cooldowns.clear();
    }

    pub(crate) fn set_content_hash(&mut self, hash: [u8; 32]) {
        self.content_hash = Some(hash);
    }

    pub(crate) fn set_world_hash(&mut self, hash: [u8; 32]) {
        self.world_hash = Some(hash);
    }

    pub(crate) fn set_inventory(&mut self, view: InventoryView) {
        self.inventory = Some(view);
    }

    pub(crate) fn set_resources(&mut self, view: ResourceView) {
        self.resources = Some(view);
    }

    /// Restarts the countdowns from the server's answer received at `now_us`.
    pub(crate) fn on_ability_result(&mut self, result: &AbilityResult, now_us: u64) {
        if self.pending_ability == Some(result.request) {
            self.pending_ability = None;
        }
        self.global_ends_us = now_us + u64::from(result.global_cooldown_ms) * 1000;
        let ends = self.cooldowns.entry(result.ability).or_default();
        ends.global_us = self.global_ends_us;
        ends.own_us = now_us + u64::from(result.cooldown_ms) * 1000;
    }

    /// The server's content hash (from the welcome).
    #[must_use]
    pub fn content_hash(&self) -> Option<[u8; 32]> {
        self.content_hash
    }

    /// The server's world geometry hash (from the welcome; zeros for a flat world).
    #[must_use]
    pub fn world_hash(&self) -> Option<[u8; 32]> {
        self.world_hash
    }

    /// The inventory as the server last sent it.
    #[must_use]
    pub fn inventory(&self) -> Option<&InventoryView> {
        self.inventory.as_ref()
    }

    /// The pools as the server last sent them.
    #[must_use]
    pub fn resources(&self) -> Option<&ResourceView> {
        self.resources.as_ref()
    }

    /// Cooldown left on `ability` at `now_us` (zeros for an ability never answered).
    #[must_use]
    pub fn cooldown_left(&self, ability: AbilityId, now_us: u64) -> CooldownLeft {
        let left_ms = |end_us: u64| {
            u32::try_from(end_us.saturating_sub(now_us).div_ceil(1000)).unwrap_or(u32::MAX)
        };
        let own_us = self.cooldowns.get(&ability).map_or(0, |c| c.own_us);
        CooldownLeft {
            global_ms: left_ms(self.global_ends_us),
            own_ms: left_ms(own_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdowns_restart_from_each_answer() {
        let mut g = ClientGameplay::default();
        let ability = AbilityId(2);
        assert_eq!(g.cooldown_left(ability, 0), CooldownLeft::default());
        let result = AbilityResult {
            request: 1,
            ability,
            refusal: None,
            cast_ms: 0,
            global_cooldown_ms: 1000,
            cooldown_ms: 8000,
        };
        g.set_pending_ability(1);
        g.on_ability_result(&result, 1_000_000);
        assert_eq!(
            g.pending_ability(),
            None,
            "the answer clears the pending request"
        );
        let left = g.cooldown_left(ability, 1_500_000);
        assert_eq!(left.global_ms, 500);
        assert_eq!(left.own_ms, 7500);
        assert_eq!(g.cooldown_left(AbilityId(3), 1_500_000).own_ms, 0);
        assert_eq!(
            g.cooldown_left(ability, 10_000_000),
            CooldownLeft::default()
        );
    }

    #[test]
    fn request_numbers_start_at_one_and_skip_zero() {
        let mut g = ClientGameplay::default();
        assert_eq!(g.next_request(), 1);
        assert_eq!(g.next_request(), 2);
        g.next_request = u32::MAX;
        assert_eq!(g.next_request(), 1);
    }
}
