//! The bot's gameplay decisions, as pure functions of what its session shows: which ability
//! to use at what (strike the nearest remote entity in reach, else heal itself), and which
//! inventory operation to ask for so the bag stays valid (swap, split the wolf pelts, merge
//! them back).
//!
//! A bot is a well-behaved client: it does not send a request the server's last answers say
//! will be refused for a cooldown or missing resources (those refusals count as anti-cheat
//! strikes on the server); it skips the step and the report counts the skip by reason.
//! Requests the bot cannot predict (a target that moved out of range, a cast in progress)
//! are sent, and their refusals are counted by kind.

use glam::Vec3;
use mmo_core::entity::EntityId;
use mmo_core::gameplay::content::{AbilityId, Content, ItemId, PoolId};
use mmo_core::gameplay::messages::{InventoryOp, InventoryView, ResourceView, WireTarget};
use mmo_core::session::client_gameplay::CooldownLeft;

/// The ability used on a remote entity in reach.
pub const STRIKE: &str = "strike";
/// The ability used on the bot itself when no entity is in reach.
pub const SELF_HEAL: &str = "self_heal";
/// The stackable item the inventory operations split and merge.
pub const SPLIT_ITEM: &str = "wolf_pelt";
/// Taken off the strike's range when choosing a target: the bot sees its own predicted
/// position and remote entities' interpolated ones, the server checks its own position
/// against the target rewound to the bot's view time, so they differ by up to a few ticks
/// of movement, metres.
pub const REACH_MARGIN_M: f32 = 0.5;

/// What the bot knows about one ability, from the content.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AbilitySpec {
    pub id: AbilityId,
    /// Cost per pool (points).
    pub cost: Vec<(PoolId, u32)>,
    /// Whether it waits for (and starts) the global cooldown.
    pub global_cooldown: bool,
}

impl AbilitySpec {
    fn of(content: &Content, name: &str) -> Result<Self, String> {
        let id = content
            .ability_id(name)
            .ok_or_else(|| format!("the content has no ability `{name}`"))?;
        // `ability_id` returned an id of this content.
        let def = content
            .ability(id)
            .ok_or_else(|| format!("the content's ability `{name}` has no definition"))?;
        Ok(AbilitySpec {
            id,
            cost: def.cost.clone(),
            global_cooldown: def.global_cooldown,
        })
    }
}

/// The ids and rules of the content the bots play, resolved by name once per run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GameplayIds {
    pub strike: AbilitySpec,
    /// A remote entity within this distance is struck, metres (range less the margin).
    pub strike_reach_m: f32,
    pub self_heal: AbilitySpec,
    /// The item split and merged.
    pub split_item: ItemId,
    /// The content's hash: bots skip gameplay on a server announcing another one.
    pub content_hash: [u8; 32],
}

impl GameplayIds {
    /// Resolves [`STRIKE`], [`SELF_HEAL`] and [`SPLIT_ITEM`] in `content`; the error names
    /// the missing entry.
    pub fn from_content(content: &Content) -> Result<Self, String> {
        let strike = AbilitySpec::of(content, STRIKE)?;
        let range_m = content.ability(strike.id).map_or(0.0, |d| d.range_m);
        let split_item = content
            .item_id(SPLIT_ITEM)
            .ok_or_else(|| format!("the content has no item `{SPLIT_ITEM}`"))?;
        Ok(GameplayIds {
            strike,
            strike_reach_m: (range_m - REACH_MARGIN_M).max(0.0),
            self_heal: AbilitySpec::of(content, SELF_HEAL)?,
            split_item,
            content_hash: content.hash(),
        })
    }
}

/// What to do at an ability step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum AbilityChoice {
    /// Send this request.
    Use {
        ability: AbilityId,
        target: WireTarget,
    },
    /// Send nothing, for this reason (a report label).
    Skip(&'static str),
}

/// Strike the nearest of `remotes` (id, position) within reach of `me_m`, else heal
/// oneself; skipped while dead, before the first pools arrive, on cooldown (per the
/// server's last answers, `cooldown`) or without the resources.
pub(crate) fn choose_ability(
    ids: &GameplayIds,
    me_m: Vec3,
    remotes: &[(EntityId, Vec3)],
    resources: Option<&ResourceView>,
    cooldown: impl Fn(AbilityId) -> CooldownLeft,
) -> AbilityChoice {
    let nearest = remotes
        .iter()
        .map(|&(id, at_m)| (id, me_m.distance(at_m)))
        .filter(|&(_, d)| d.is_finite() && d <= ids.strike_reach_m)
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let (spec, target) = match nearest {
        Some((id, _)) => (&ids.strike, WireTarget::Entity(id)),
        None => (&ids.self_heal, WireTarget::SelfTarget),
    };
    let Some(resources) = resources else {
        return AbilityChoice::Skip("no_resources_yet");
    };
    if resources.dead {
        return AbilityChoice::Skip("dead");
    }
    let left = cooldown(spec.id);
    if spec.global_cooldown && left.global_ms > 0 {
        return AbilityChoice::Skip("global_cooldown");
    }
    if left.own_ms > 0 {
        return AbilityChoice::Skip("cooldown");
    }
    let affordable = spec.cost.iter().all(|&(pool, need)| {
        resources
            .pools
            .iter()
            .find(|p| p.pool == pool)
            .is_some_and(|p| p.current >= need)
    });
    if !affordable {
        return AbilityChoice::Skip("not_enough_resources");
    }
    AbilityChoice::Use {
        ability: spec.id,
        target,
    }
}

/// The inventory operation of the bot's `step`-th inventory step (0-based), chosen so it
/// succeeds on `view` and keeps the bag valid. The cycle is swap, split, merge: when the
/// split item lies in two stacks, merge the smaller onto the larger (the planned merge, or
/// a repair after a missed answer); otherwise steps `0 mod 3` swap the first and the last
/// bag slot (one of them holds something) and the others split half of the largest stack
/// of the split item into the first empty slot. `Err` names why nothing fits (a report
/// label).
pub(crate) fn choose_inventory_op(
    ids: &GameplayIds,
    view: &InventoryView,
    step: u32,
) -> Result<InventoryOp, &'static str> {
    let slot = |i: usize| u32::try_from(i).map_err(|_| "bag_too_large");
    let mut stacks: Vec<(usize, u32)> = view
        .bag
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
        .filter(|(_, s)| s.item == ids.split_item)
        .map(|(i, s)| (i, s.quantity))
        .collect();
    // Largest first; ties by slot, so the choice is deterministic.
    stacks.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if let [(to, _), .., (from, _)] = stacks[..] {
        return Ok(InventoryOp::Merge {
            from: slot(from)?,
            to: slot(to)?,
        });
    }
    if step.is_multiple_of(3) {
        let last = view.bag.len().checked_sub(1).ok_or("empty_bag")?;
        if last > 0 && (view.bag[0].is_some() || view.bag[last].is_some()) {
            return Ok(InventoryOp::Swap {
                a: 0,
                b: slot(last)?,
            });
        }
    }
    let Some(&(from, quantity)) = stacks.first() else {
        return Err("no_split_item");
    };
    if quantity < 2 {
        return Err("split_item_single");
    }
    let to = view
        .bag
        .iter()
        .position(Option::is_none)
        .ok_or("bag_full")?;
    Ok(InventoryOp::Split {
        from: slot(from)?,
        to: slot(to)?,
        quantity: quantity / 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmo_core::gameplay::character::CharacterGameplay;
    use mmo_core::gameplay::content::{ClassId, RaceId};
    use mmo_core::gameplay::messages::PoolValue;

    fn content() -> Content {
        Content::default_content().unwrap()
    }

    fn pools(content: &Content, current: u32) -> ResourceView {
        ResourceView {
            pools: content
                .pools()
                .iter()
                .enumerate()
                .map(|(i, _)| PoolValue {
                    pool: PoolId(i as u16),
                    current,
                    max: 100,
                })
                .collect(),
            dead: false,
            respawn_in_ms: 0,
        }
    }

    fn ready(_: AbilityId) -> CooldownLeft {
        CooldownLeft::default()
    }

    #[test]
    fn strikes_the_nearest_entity_in_reach_else_heals_itself() {
        let c = content();
        let ids = GameplayIds::from_content(&c).unwrap();
        assert_eq!(ids.strike.id, c.ability_id("strike").unwrap());
        assert_eq!(ids.strike_reach_m, 2.5);
        let full = pools(&c, 100);
        let remotes = [
            (EntityId(7), Vec3::new(2.0, 0.0, 0.0)),
            (EntityId(3), Vec3::new(0.0, 1.0, 0.0)),
            (EntityId(9), Vec3::new(30.0, 0.0, 0.0)),
        ];
        assert_eq!(
            choose_ability(&ids, Vec3::ZERO, &remotes, Some(&full), ready),
            AbilityChoice::Use {
                ability: ids.strike.id,
                target: WireTarget::Entity(EntityId(3)),
            }
        );
        assert_eq!(
            choose_ability(&ids, Vec3::ZERO, &remotes[2..], Some(&full), ready),
            AbilityChoice::Use {
                ability: ids.self_heal.id,
                target: WireTarget::SelfTarget,
            }
        );
    }

    #[test]
    fn skips_what_the_server_would_refuse_as_a_strike() {
        let c = content();
        let ids = GameplayIds::from_content(&c).unwrap();
        let choose = |r: Option<&ResourceView>, cd: CooldownLeft| {
            choose_ability(&ids, Vec3::ZERO, &[], r, |_| cd)
        };
        let ok = CooldownLeft::default();
        assert_eq!(choose(None, ok), AbilityChoice::Skip("no_resources_yet"));
        let mut dead = pools(&c, 100);
        dead.dead = true;
        assert_eq!(choose(Some(&dead), ok), AbilityChoice::Skip("dead"));
        let full = pools(&c, 100);
        let gcd = CooldownLeft {
            global_ms: 300,
            own_ms: 0,
        };
        assert_eq!(
            choose(Some(&full), gcd),
            AbilityChoice::Skip("global_cooldown")
        );
        let own = CooldownLeft {
            global_ms: 0,
            own_ms: 4000,
        };
        assert_eq!(choose(Some(&full), own), AbilityChoice::Skip("cooldown"));
        assert_eq!(
            choose(Some(&pools(&c, 5)), ok),
            AbilityChoice::Skip("not_enough_resources")
        );
    }

    #[test]
    fn inventory_ops_succeed_on_the_starting_kit_and_keep_it() {
        let c = content();
        let ids = GameplayIds::from_content(&c).unwrap();
        // The starting kit exactly as the server builds it.
        let mut inv = CharacterGameplay::new(&c, ClassId(0), RaceId(0), 0)
            .unwrap()
            .inventory;
        let total = inv.total_items();
        let mut ops = Vec::new();
        for step in 0..9 {
            let op = choose_inventory_op(&ids, &InventoryView::of(&inv), step).unwrap();
            ops.push(op.name());
            match op {
                InventoryOp::Swap { a, b } => inv.swap(a, b).unwrap(),
                InventoryOp::Split { from, to, quantity } => {
                    inv.split(from, to, quantity).unwrap();
                }
                InventoryOp::Merge { from, to } => {
                    inv.merge(&c, from, to).unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
            assert_eq!(inv.total_items(), total, "after {op:?}");
            inv.check_invariants(&c).unwrap();
        }
        assert_eq!(
            ops,
            [
                "swap", "split", "merge", "swap", "split", "merge", "swap", "split", "merge"
            ]
        );
    }

    #[test]
    fn a_bag_without_the_split_item_says_why() {
        let c = content();
        let ids = GameplayIds::from_content(&c).unwrap();
        let empty = InventoryView {
            bag: vec![None; 24],
            equipped: Vec::new(),
        };
        assert_eq!(choose_inventory_op(&ids, &empty, 1), Err("no_split_item"));
        assert_eq!(choose_inventory_op(&ids, &empty, 0), Err("no_split_item"));
    }
}
