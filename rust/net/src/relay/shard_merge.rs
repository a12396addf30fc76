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
//! - a shard of another zone than the home zone stays while the home zone's shard of its
//!   lane runs and is not draining (lanes are asked for at the home zone, so they are given
//!   back from there: the other zones' shards of a lane follow);
//! - the target must have sampled its load within the last [`TARGET_FRESH_MS`];
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
//! one's leave). If the gateways raise `shards_wanted` above `k` again meanwhile (the
//! other shards filled up), the drain stops and the shard stays. Once the drain has been
//! published for longer than a load stays fresh (every gateway and zone process has seen
//! it) and three reads in a row found no session (longer than a handoff waits for its
//! answer), the shard is **retired**: the zone process stops cleanly (its leases and load
//! entries given back), and its supervisor (Agones, `ci/fleet.sh`) starts a new spare in
//! its place.

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

/// What a zone process knows when it judges one of its shards: the fleet's fresh loads
/// as just read, and the settings.
#[derive(Clone, Copy, Debug)]
pub struct MergeView<'a> {
    /// Every fresh entry of `shard_loads` (any zone; draining ones marked).
    pub loads: &'a [ShardLoad],
    /// The judged shard's zone's `shards_wanted` count.
    pub wanted: u16,
    /// Sessions a shard holds at most.
    pub cap: u32,
    /// The zone new connections start in.
    pub home_zone: u16,
    /// Now on Redis's clock (the newest sample of `loads` will do), ms since the epoch.
    pub now_unix_ms: u64,
}

/// A target shard must have sampled its load this recently: one that stopped a moment
/// ago would leave every player moved to it without an answer, ms.
pub const TARGET_FRESH_MS: u64 = 1_500;

/// Whether shard `me` (with `my_sessions`) should merge into another shard of its zone
/// (module docs). A shard of another zone than the home zone stays while the home zone's
/// shard of its lane runs and is not draining: lanes are given back from the home zone,
/// where they are asked for.
#[must_use]
pub fn verdict(me: ZoneShard, my_sessions: u32, view: &MergeView<'_>) -> Verdict {
    if me.shard == 0 || view.wanted > me.shard + 1 {
        return Verdict::Keep;
    }
    if me.zone != view.home_zone
        && view.loads.iter().any(|l| {
            l.shard
                == ZoneShard {
                    zone: view.home_zone,
                    shard: me.shard,
                }
                && !l.draining
        })
    {
        return Verdict::Keep;
    }
    if view
        .loads
        .iter()
        .any(|l| l.shard.zone == me.zone && l.shard.shard > me.shard)
    {
        return Verdict::Keep;
    }
    let Some(target) = target(me, view) else {
        return Verdict::Keep;
    };
    let together = u64::from(target.players) + u64::from(my_sessions);
    if together * 100 <= u64::from(view.cap) * u64::from(MERGE_AT_PERCENT_OF_CAP) {
        Verdict::MergeInto(target.shard.shard)
    } else {
        Verdict::Keep
    }
}

/// Where shard `me`'s players would go: the other shard of its zone, not draining and
/// sampled within [`TARGET_FRESH_MS`], with the fewest sessions (ties: the lowest shard).
#[must_use]
pub fn target<'a>(me: ZoneShard, view: &MergeView<'a>) -> Option<&'a ShardLoad> {
    view.loads
        .iter()
        .filter(|l| {
            l.shard.zone == me.zone
                && l.shard != me
                && !l.draining
                && view.now_unix_ms.saturating_sub(l.sampled_unix_ms) <= TARGET_FRESH_MS
        })
        .min_by_key(|l| (l.players, l.shard.shard))
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

    const NOW_MS: u64 = 1_700_000_000_000;

    fn load(zone: u16, shard: u16, players: u32, draining: bool) -> ShardLoad {
        ShardLoad {
            shard: ZoneShard { zone, shard },
            players,
            draining,
            sampled_unix_ms: NOW_MS - 200,
        }
    }

    fn view(loads: &[ShardLoad], wanted: u16, cap: u32) -> MergeView<'_> {
        MergeView {
            loads,
            wanted,
            cap,
            home_zone: 0,
            now_unix_ms: NOW_MS,
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
        assert_eq!(
            verdict(me, 40, &view(&loads, 3, 100)),
            Verdict::MergeInto(1)
        );
        // 30 + 46 = 76 > 75.
        assert_eq!(verdict(me, 46, &view(&loads, 3, 100)), Verdict::Keep);
        // Shard 1 is not the highest: it stays.
        let one = ZoneShard { zone: 0, shard: 1 };
        assert_eq!(verdict(one, 0, &view(&loads, 3, 100)), Verdict::Keep);
        // The gateways want a fourth shard: nothing is given back.
        assert_eq!(verdict(me, 40, &view(&loads, 4, 100)), Verdict::Keep);
        // Shard 0 never merges.
        let zero = ZoneShard { zone: 0, shard: 0 };
        assert_eq!(verdict(zero, 0, &view(&loads, 1, 100)), Verdict::Keep);
        // A draining shard is no target; with none left, it stays.
        let draining = [load(0, 0, 10, true), load(0, 2, 5, false)];
        assert_eq!(verdict(me, 5, &view(&draining, 3, 100)), Verdict::Keep);
        // Nor is one whose last sample is older than 1.5 s (it may have stopped): only
        // shard 0 is left, too full to take shard 2's players.
        let mut stale = load(0, 1, 0, false);
        stale.sampled_unix_ms = NOW_MS - 1_600;
        let with_stale = [load(0, 0, 80, false), stale, load(0, 2, 0, false)];
        assert_eq!(verdict(me, 0, &view(&with_stale, 3, 100)), Verdict::Keep);
        // An empty highest shard merges even at a cap of 1 (0 + 0 <= 0.75).
        let empty = [load(0, 0, 0, false), load(0, 1, 0, false)];
        assert_eq!(
            verdict(ZoneShard { zone: 0, shard: 1 }, 0, &view(&empty, 2, 1)),
            Verdict::MergeInto(0)
        );
    }

    #[test]
    fn another_zones_shard_follows_the_home_zones_lane() {
        let me = ZoneShard { zone: 1, shard: 1 };
        let lane_runs = [
            load(0, 0, 10, false),
            load(0, 1, 10, false),
            load(1, 0, 0, false),
            load(1, 1, 0, false),
        ];
        assert_eq!(verdict(me, 0, &view(&lane_runs, 2, 100)), Verdict::Keep);
        let home_drains = [
            load(0, 0, 10, false),
            load(0, 1, 10, true),
            load(1, 0, 0, false),
            load(1, 1, 0, false),
        ];
        assert_eq!(
            verdict(me, 0, &view(&home_drains, 2, 100)),
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
