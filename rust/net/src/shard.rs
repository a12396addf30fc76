//! Zone shards and lanes: several copies of one zone, each with its own players and
//! simulation, run by zone processes of a fleet (issue 14, "Shards").
//!
//! **Instances.** Zone `z`'s shard `k` is the *zone instance* `k × zone count + z` of the
//! world layout: shard 0 of a zone is the zone's own id, so a world without shards has the
//! instance ids it always had. Instance ids are what the net layer routes by (inboxes, peer
//! channels, NATS subjects, relay messages); the simulation (`mmo_core::zone::Zone`) only
//! knows its zone. A zone has at most [`MAX_SHARDS_PER_ZONE`] shards.
//!
//! **Lanes.** Shard `k` of every zone forms lane `k`. A player placed in a lane at login
//! stays in it across zone borders: crossing from shard `k` of zone A goes to shard `k` of
//! zone B when that shard runs somewhere in the fleet, else to shard 0 of B (lane 0 from
//! then on). Border visibility follows the lanes: shard `k` of A exchanges border exports
//! with shard `k` of B only, so shards of one zone never see each other and a shard whose
//! neighbour has no shard `k` shows nothing across that border. [`Lanes`] is a zone
//! process's view of which instances run in the fleet (the directory's shard loads, read
//! every second by `relay::shard_loads`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Most shards one zone can have (shards `0..MAX_SHARDS_PER_ZONE`).
pub const MAX_SHARDS_PER_ZONE: u16 = 16;

/// One shard of one zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZoneShard {
    /// The zone's id in the world layout.
    pub zone: u16,
    /// The shard's index, `0..MAX_SHARDS_PER_ZONE`.
    pub shard: u16,
}

impl ZoneShard {
    /// The instance id of this shard in a world of `zone_count` zones.
    #[must_use]
    pub fn instance(self, zone_count: u16) -> u16 {
        self.shard * zone_count + self.zone
    }

    /// The shard whose instance id is `instance` in a world of `zone_count` zones
    /// (`zone_count` is positive).
    #[must_use]
    pub fn of_instance(instance: u16, zone_count: u16) -> ZoneShard {
        let zone_count = zone_count.max(1);
        ZoneShard {
            zone: instance % zone_count,
            shard: instance / zone_count,
        }
    }

    /// How metrics and logs name it: `3` for shard 0 of zone 3, `3.1` for its shard 1.
    #[must_use]
    pub fn label(self) -> String {
        if self.shard == 0 {
            self.zone.to_string()
        } else {
            format!("{}.{}", self.zone, self.shard)
        }
    }
}

/// How many instance ids a process of a world of `zone_count` zones routes: every shard's
/// in a fleet (`sharded`), the zones' own otherwise.
///
/// # Errors
/// A layout so large that its shards' instance ids would not fit 16 bits.
pub fn instance_count(zone_count: u16, sharded: bool) -> Result<u16, String> {
    if !sharded {
        return Ok(zone_count);
    }
    zone_count.checked_mul(MAX_SHARDS_PER_ZONE).ok_or_else(|| {
        format!(
            "world.layout: {zone_count} zones with {MAX_SHARDS_PER_ZONE} shards each do not fit 16-bit instance ids (at most {} zones in a fleet)",
            u16::MAX / MAX_SHARDS_PER_ZONE
        )
    })
}

/// Which zone instances run in the fleet, as this process last saw it; decides where a
/// player crossing a border goes and which neighbours get border exports (module docs).
/// Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Lanes {
    zone_count: u16,
    /// By instance id.
    running: Arc<[AtomicBool]>,
}

impl Lanes {
    /// A view of `instances` instance ids in which only the zones' shard 0 run (what a
    /// world without shards has) until [`Lanes::set_running`] says otherwise.
    pub(crate) fn new(zone_count: u16, instances: u16) -> Lanes {
        Lanes {
            zone_count: zone_count.max(1),
            running: (0..instances)
                .map(|i| AtomicBool::new(i < zone_count))
                .collect(),
        }
    }

    /// Records whether `instance` runs; shard 0 of every zone always counts as running (a
    /// player must have somewhere to go).
    pub(crate) fn set_running(&self, instance: u16, running: bool) {
        if instance < self.zone_count {
            return;
        }
        if let Some(flag) = self.running.get(usize::from(instance)) {
            flag.store(running, Ordering::Relaxed);
        }
    }

    /// Whether `instance` runs (as last seen).
    pub(crate) fn is_running(&self, instance: u16) -> bool {
        self.running
            .get(usize::from(instance))
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// Where a player leaving instance `from` for zone `to_zone` goes: the same lane's
    /// shard of `to_zone` when it runs, else its shard 0.
    pub(crate) fn crossing(&self, from: u16, to_zone: u16) -> u16 {
        self.border_partner(from, to_zone).unwrap_or(to_zone)
    }

    /// The instance of neighbour zone `to_zone` that instance `from` exchanges border
    /// exports with: the same lane's shard, when it runs.
    pub(crate) fn border_partner(&self, from: u16, to_zone: u16) -> Option<u16> {
        let lane = ZoneShard::of_instance(from, self.zone_count).shard;
        let partner = ZoneShard {
            zone: to_zone,
            shard: lane,
        }
        .instance(self.zone_count);
        self.is_running(partner).then_some(partner)
    }

    /// The world's zone count.
    pub(crate) fn zone_count(&self) -> u16 {
        self.zone_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_of_shard_0_are_the_zone_ids_and_round_trip() {
        for zone in 0..4 {
            for shard in 0..MAX_SHARDS_PER_ZONE {
                let s = ZoneShard { zone, shard };
                let instance = s.instance(4);
                assert_eq!(ZoneShard::of_instance(instance, 4), s);
                if shard == 0 {
                    assert_eq!(instance, zone);
                }
            }
        }
        assert_eq!(ZoneShard { zone: 3, shard: 1 }.instance(4), 7);
        assert_eq!(ZoneShard { zone: 3, shard: 1 }.label(), "3.1");
        assert_eq!(ZoneShard { zone: 3, shard: 0 }.label(), "3");
    }

    #[test]
    fn instance_count_refuses_layouts_whose_shards_overflow() {
        assert_eq!(instance_count(4, false), Ok(4));
        assert_eq!(instance_count(4, true), Ok(64));
        assert_eq!(instance_count(4095, true), Ok(65_520));
        let err = instance_count(4096, true).unwrap_err();
        assert!(
            err.contains("4096 zones") && err.contains("at most 4095"),
            "{err}"
        );
    }

    #[test]
    fn a_crossing_keeps_the_lane_when_the_neighbours_shard_runs() {
        // 2 zones; shard 1 of zone 0 is instance 2, of zone 1 instance 3.
        let lanes = Lanes::new(2, 2 * MAX_SHARDS_PER_ZONE);
        assert_eq!(lanes.crossing(2, 1), 1, "no shard 1 of zone 1: its shard 0");
        assert_eq!(lanes.border_partner(2, 1), None);
        assert_eq!(lanes.border_partner(0, 1), Some(1));
        lanes.set_running(3, true);
        assert_eq!(lanes.crossing(2, 1), 3);
        assert_eq!(lanes.border_partner(2, 1), Some(3));
        assert_eq!(lanes.crossing(0, 1), 1, "lane 0 stays in lane 0");
        lanes.set_running(3, false);
        assert_eq!(lanes.crossing(2, 1), 1);
        // Shard 0 cannot be marked as stopped: players always have somewhere to go.
        lanes.set_running(1, false);
        assert!(lanes.is_running(1));
        assert!(!lanes.is_running(40), "beyond the table");
    }
}
