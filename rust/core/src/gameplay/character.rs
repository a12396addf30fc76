//! Everything gameplay knows about one player character on the server: class and race, its
//! pools, cooldowns and cast, timed effects, inventory and anti-cheat strikes. The zone
//! keeps one per logged-in player and moves it with the player at a handoff.

use crate::gameplay::abilities::{AbilityState, TimedEffects};
use crate::gameplay::content::{ClassId, Content, RaceId};
use crate::gameplay::inventory::{Inventory, ItemStack};
use crate::gameplay::messages::{PoolValue, ResourceView};
use crate::gameplay::resources::ResourcePools;
use crate::gameplay::strikes::StrikeCounter;

/// One character's gameplay state. See the module docs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CharacterGameplay {
    /// Class (from the content).
    pub class: ClassId,
    /// Race (from the content).
    pub race: RaceId,
    /// Health, mana, stamina...
    pub pools: ResourcePools,
    /// Cooldowns and the cast in progress.
    pub abilities: AbilityState,
    /// Damage over time and slows running on it.
    pub effects: TimedEffects,
    /// Bag and equipment.
    pub inventory: Inventory,
    /// Anti-cheat strikes.
    pub strikes: StrikeCounter,
    /// The pools last sent to the owner (whole points and death), to send only changes.
    pub last_sent: Option<ResourceView>,
}

impl CharacterGameplay {
    /// A fresh character of `class` and `race` at `now_ms`: full pools, nothing on cooldown,
    /// the content's starting kit in the bag. Fails with a message naming the bad id.
    pub fn new(
        content: &Content,
        class: ClassId,
        race: RaceId,
        now_ms: u64,
    ) -> Result<Self, String> {
        let pools = ResourcePools::for_character(content, class, race, now_ms)
            .map_err(|e| format!("character pools: {e}"))?;
        let abilities = AbilityState::for_character(content, class, race)
            .ok_or_else(|| format!("class {} or race {} is not in the content", class.0, race.0))?;
        let rules = content.rules();
        let mut inventory =
            Inventory::new(rules.bag_slots).map_err(|e| format!("rules.bag_slots: {e}"))?;
        for &(item, quantity) in &rules.starting_items {
            inventory
                .add(content, &ItemStack::new(item, quantity))
                .map_err(|e| format!("rules.starting_items: {e}"))?;
        }
        Ok(CharacterGameplay {
            class,
            race,
            pools,
            abilities,
            effects: TimedEffects::new(),
            inventory,
            strikes: StrikeCounter::new(now_ms),
            last_sent: None,
        })
    }

    /// The owner's view of the pools at `now_ms`.
    #[must_use]
    pub fn resource_view(&self, content: &Content, now_ms: u64) -> ResourceView {
        let pools = (0..content.pools().len())
            .map(|i| {
                // Pool ids are dense u16 indices (checked on load).
                let pool = crate::gameplay::content::PoolId(i as u16);
                PoolValue {
                    pool,
                    current: self.pools.current(pool),
                    max: self.pools.max(pool),
                }
            })
            .collect();
        let respawn_in_ms = self
            .pools
            .respawn_ready_at_ms()
            .map_or(0, |at| at.saturating_sub(now_ms));
        ResourceView {
            pools,
            dead: self.pools.is_dead(),
            respawn_in_ms: u32::try_from(respawn_in_ms).unwrap_or(u32::MAX),
        }
    }

    /// The pools' view if whole points or death changed since the last one taken; records
    /// it as sent. `respawn_in_ms` alone changing does not count. Called every tick for
    /// every player, so the comparison reads the pools in place and a view is built only
    /// when something changed.
    pub fn take_resource_change(&mut self, content: &Content, now_ms: u64) -> Option<ResourceView> {
        let unchanged = self.last_sent.as_ref().is_some_and(|last| {
            last.dead == self.pools.is_dead()
                && last.pools.len() == content.pools().len()
                && last.pools.iter().all(|p| {
                    p.current == self.pools.current(p.pool) && p.max == self.pools.max(p.pool)
                })
        });
        if unchanged {
            return None;
        }
        let view = self.resource_view(content, now_ms);
        self.last_sent = Some(view.clone());
        Some(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_character_carries_the_starting_kit_and_full_pools() {
        let content = Content::default_content().unwrap();
        let c = CharacterGameplay::new(&content, ClassId(0), RaceId(0), 0).unwrap();
        assert_eq!(c.inventory.bag_slots(), content.rules().bag_slots);
        for &(item, quantity) in &content.rules().starting_items {
            assert_eq!(c.inventory.count(item), u64::from(quantity));
        }
        c.inventory.check_invariants(&content).unwrap();
        let view = c.resource_view(&content, 0);
        assert_eq!(view.pools.len(), content.pools().len());
        assert!(view.pools.iter().all(|p| p.current == p.max && p.max > 0));
        assert!(!view.dead);
    }

    #[test]
    fn resource_changes_are_sent_once() {
        let content = Content::default_content().unwrap();
        let mut c = CharacterGameplay::new(&content, ClassId(0), RaceId(0), 0).unwrap();
        assert!(c.take_resource_change(&content, 0).is_some());
        assert!(c.take_resource_change(&content, 10).is_none());
        c.pools.damage(5, 20);
        let view = c.take_resource_change(&content, 20).unwrap();
        assert_eq!(
            view.pools[usize::from(content.health_pool().0)].current,
            c.pools.health()
        );
        assert!(c.take_resource_change(&content, 30).is_none());
    }

    #[test]
    fn unknown_class_is_refused_with_a_message() {
        let content = Content::default_content().unwrap();
        let e = CharacterGameplay::new(&content, ClassId(999), RaceId(0), 0).unwrap_err();
        assert!(e.contains("class"), "{e}");
    }
}
