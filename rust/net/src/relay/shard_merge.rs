//! When a shard is no longer needed: its players move to another shard of the zone and
//! the shard is given back (issue 14, "Shards": "players can be moved between shards of a
//! zone"; [`crate::shard`] for shards and lanes).
//!
//! A zone process running shard `k > 0` of zone `z` decides, each time it reads the shard
//! loads ([`super::shard_loads`], every second), with [`verdict`]:
//!
//! - only the zone's **highest** running shard merges, and only while the gateways want no
//!   more shards than it (`shards_wanted` of `z` is at most `k + 1`), so shards are given
//!   back from the top and a spare never takes back a shard just given back;
//! - it merges into the other running, not draining, shard of `z` with the fewest
//!   sessions (ties: the lowest shard) when the two together hold at most three quarters
//!   of the cap ([`MERGE_AT_PERCENT_OF_CAP`]): well below the cap at which gateways ask for
//!   a new lane, so a lane is not merged and asked for again in turns.
//!
//! The verdict must hold for the zone's `shard_merge_after` (a fleet setting; a minute by
//! default) before anything happens ([`MergeClock`]). Then the shard **drains**: its load
//! entry says `draining` (gateways place nobody there, lanes send crossings elsewhere), the
//! zone's `shards_wanted` falls to `k` (if it still is `k + 1`), and every second its zone
//! thread moves every logged-in player to the target shard, a handoff at the player's
//! own position (the client keeps its connection; the other shard's players appear, this
//! one's leave). Once the shard has held no session for two reads in a row it is
//! **retired**: the zone process stops cleanly (its leases and load entries given back),
//! and its supervisor (Agones, `ci/fleet.sh`) starts a new spare in its place.

use std::time::{Duration, Instant};

use super::shard_loads::ShardLoad;
use crate::shard::ZoneShard;

/// Two shards merge when together they hold at most this share of the cap, percent.
pub const MERGE_AT_PERCENT_OF_CAP: u32 = 75;

/// What [`verdict`] decided for one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The shard stays.
    Keep,
    /// Its players should move to this shard of the same zone.
    MergeInto(u16),
}

/// Whether shard `me` (with `my_sessions`) should merge into another shard of its zone,
/// given the zone's fresh loads `zone_loads` (every running shard of the zone, `me`
/// included or not, draining ones marked), the zone's `shards_wanted` count `wanted` and
/// the cap (module docs).
#[must_use]
pub fn verdict(
    me: ZoneShard,
    my_sessions: u32,
    zone_loads: &[ShardLoad],
    wanted: u16,
    cap: u32,
) -> Verdict {
    if me.shard == 0 || wanted > me.shard + 1 {
        return Verdict::Keep;
    }
    let others = zone_loads
        .iter()
        .filter(|l| l.shard.zone == me.zone && l.shard != me);
    if others.clone().any(|l| l.shard.shard > me.shard) {
        return Verdict::Keep;
    }
    let Some(target) = others
        .filter(|l| !l.draining)
        .min_by_key(|l| (l.players, l.shard.shard))
    else {
        return Verdict::Keep;
    };
    let together = u64::from(target.players) + u64::from(my_sessions);
    if together * 100 <= u64::from(cap) * u64::from(MERGE_AT_PERCENT_OF_CAP) {
        Verdict::MergeInto(target.shard.shard)
    } else {
        Verdict::Keep
    }
}

/// How long a shard's verdict has said "merge" (reset by any other verdict).
#[derive(Debug, Default)]
pub struct MergeClock {
    since: Option<Instant>,
}

impl MergeClock {
    /// Records this read's verdict; true once it has said "merge" for `after` without a
    /// break.
    pub fn merge_due(&mut self, verdict: Verdict, now: Instant, after: Duration) -> bool {
        match verdict {
            Verdict::Keep => {
                self.since = None;
                false
            }
            Verdict::MergeInto(_) => now.duration_since(*self.since.get_or_insert(now)) >= after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(zone: u16, shard: u16, players: u32, draining: bool) -> ShardLoad {
        ShardLoad {
            shard: ZoneShard { zone, shard },
            players,
            draining,
        }
    }

    #[test]
    fn only_the_highest_shard_merges_into_the_emptiest_when_both_fit_three_quarters() {
        let me = ZoneShard { zone: 0, shard: 2 };
        let loads = [
            load(0, 0, 40, false),
            load(0, 1, 30, false),
            load(0, 2, 40, false),
            load(1, 0, 0, false),
        ];
        // 30 + 40 = 70 <= 75 of 100: into shard 1, the emptiest of zone 0.
        assert_eq!(verdict(me, 40, &loads, 3, 100), Verdict::MergeInto(1));
        // 30 + 46 = 76 > 75.
        assert_eq!(verdict(me, 46, &loads, 3, 100), Verdict::Keep);
        // Shard 1 is not the highest: it stays.
        let one = ZoneShard { zone: 0, shard: 1 };
        assert_eq!(verdict(one, 0, &loads, 3, 100), Verdict::Keep);
        // The gateways want a fourth shard: nothing is given back.
        assert_eq!(verdict(me, 40, &loads, 4, 100), Verdict::Keep);
        // Shard 0 never merges.
        let zero = ZoneShard { zone: 0, shard: 0 };
        assert_eq!(verdict(zero, 0, &loads, 1, 100), Verdict::Keep);
        // A draining shard is no target; with none left, it stays.
        let draining = [load(0, 0, 10, true), load(0, 2, 5, false)];
        assert_eq!(verdict(me, 5, &draining, 3, 100), Verdict::Keep);
        // An empty highest shard merges even at a cap of 1 (0 + 0 <= 0.75).
        let empty = [load(0, 0, 0, false), load(0, 1, 0, false)];
        assert_eq!(
            verdict(ZoneShard { zone: 0, shard: 1 }, 0, &empty, 2, 1),
            Verdict::MergeInto(0)
        );
    }

    #[test]
    fn a_merge_is_due_only_after_an_unbroken_run_of_merge_verdicts() {
        let mut clock = MergeClock::default();
        let t0 = Instant::now();
        let after = Duration::from_secs(60);
        let merge = Verdict::MergeInto(0);
        assert!(!clock.merge_due(merge, t0, after));
        assert!(!clock.merge_due(merge, t0 + Duration::from_secs(59), after));
        assert!(clock.merge_due(merge, t0 + Duration::from_secs(60), after));
        assert!(!clock.merge_due(Verdict::Keep, t0 + Duration::from_secs(61), after));
        assert!(!clock.merge_due(merge, t0 + Duration::from_secs(62), after));
        assert!(clock.merge_due(merge, t0 + Duration::from_secs(122), after));
    }
}
