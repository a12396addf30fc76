//! The zone threads of one process, started and stopped together: what a server that holds
//! its QUIC connections ([`crate::server::Server`]) and a zone process whose connections
//! are relayed by gateways ([`crate::relay::ZoneProcess`]) have in common.
//!
//! [`ZoneSet::start`] builds one [`Zone`] per zone of the layout (or one for the whole
//! world), gives each its inbox and peer channel, and runs each on its own thread (the
//! `zone_thread` module) on one shared tick schedule.
//!
//! **In a fleet** ([`FleetPart`]) a zone process runs only some zones of the layout. The
//! others are run by other processes: their inboxes here are closed, and what the local
//! zones send to their peer channels (players handed over, border exports, kicks, chat)
//! waits in [`ZoneSet::remote`] for the relay, which carries handoffs and border exports
//! to the owning process over NATS and drops the rest. Every process of the world numbers
//! ticks from the world's epoch (a wall-clock instant shared through the fleet's
//! directory), so tick `n` covers the same interval everywhere and a handed-over session's
//! tick numbers stay meaningful.
//!
//! Everything here is indexed by **zone instance** ([`crate::shard`]): in a fleet a zone
//! can have several shards, each its own zone thread, and the tables hold every shard's
//! instance id (`MAX_SHARDS_PER_ZONE` per zone); outside a fleet the instance ids are the
//! zone ids.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use mmo_core::world::ZoneId;
use mmo_core::zone::{ConnectionId, Zone, ZoneConfig, ZonePlacement};
use tokio::sync::{mpsc, oneshot};

use crate::NetError;
use crate::chat::ChatHub;
use crate::server::ServerConfig;
use crate::zone_thread::{AccountRegistry, Inspect, PeerMsg, Shared, ZoneMsg};

/// A zone process's part of a world run by several processes.
#[derive(Clone, Debug)]
pub(crate) struct FleetPart {
    /// The zone instances run here (`crate::shard`); the others are remote.
    pub(crate) local_instances: Vec<u16>,
    /// The world's tick 0, µs since the Unix epoch.
    pub(crate) epoch_unix_us: u64,
    /// Each local instance's run number (its lease's fencing token, unique among the
    /// shards of a zone): where its ids start (`Zone::start_ids_for_run`).
    pub(crate) runs: Vec<(u16, u64)>,
    /// Account presence across the world's zone processes (`None`: this process's
    /// registry only).
    pub(crate) presence: Option<crate::relay::FleetPresence>,
}

/// What local zones send towards one remote zone instance.
pub(crate) struct RemotePeer {
    /// The remote zone instance's id.
    pub(crate) zone: u16,
    /// Its peer channel's receiving end.
    pub(crate) messages: mpsc::UnboundedReceiver<PeerMsg>,
}

impl std::fmt::Debug for RemotePeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotePeer")
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

/// The running zone threads of a process.
#[derive(Debug)]
pub(crate) struct ZoneSet {
    /// Inbox of each zone thread, indexed by zone instance.
    pub(crate) inboxes: Arc<[mpsc::Sender<ZoneMsg>]>,
    /// Empty once the zones were stopped.
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Stops every zone at once (used on drop; shutdown goes through the inboxes).
    stop: tokio::sync::watch::Sender<bool>,
    /// The chat hub of every zone (operator mutes).
    pub(crate) chat: ChatHub,
    /// The instant tick 0 started (the zones' clock; datagrams are stamped with it).
    pub(crate) start: Instant,
    /// Peer channel of each zone instance (remote ones end in [`ZoneSet::remote`]).
    pub(crate) peers: Arc<[mpsc::UnboundedSender<PeerMsg>]>,
    /// Whether each zone instance runs here.
    pub(crate) local: Vec<bool>,
    /// Account -> connection of every logged-in player of this process.
    pub(crate) accounts: AccountRegistry,
    /// Border exports waiting in each zone instance's peer channel.
    pub(crate) border_backlog: Arc<[AtomicUsize]>,
    /// Sessions on each zone instance, logged in or logging in (the fleet's shard loads).
    pub(crate) players: Arc<[AtomicUsize]>,
    /// Which zone instances run in the fleet (lanes; shard 0 only outside a fleet).
    pub(crate) lanes: crate::shard::Lanes,
    /// What local zones send to remote ones; taken by the relay.
    pub(crate) remote: Vec<RemotePeer>,
}

impl ZoneSet {
    /// Starts one thread per zone of `config` (its zone, layout, store, chat and channel
    /// settings; the QUIC fields are not read). `relay_tick` is woken after each tick's
    /// transmits (see `Shared::relay_tick`).
    pub(crate) fn start(
        config: &ServerConfig,
        relay_tick: Option<Arc<tokio::sync::Notify>>,
        fleet: Option<&FleetPart>,
    ) -> Result<ZoneSet, NetError> {
        check_config(config)?;
        let all_ids = zone_ids(config);
        // Below 2^16 zones by the layout's own limits.
        let zone_count = all_ids.len() as u16;
        let instances =
            crate::shard::instance_count(zone_count, fleet.is_some()).map_err(NetError::Config)?;
        let local: Vec<bool> = match fleet {
            Some(part) => {
                for &id in &part.local_instances {
                    if id >= instances {
                        return Err(NetError::Config(format!(
                            "fleet.zones: zone {id} is not a zone of the world layout (zones 0 to {})",
                            all_ids.len().saturating_sub(1)
                        )));
                    }
                }
                if part.local_instances.is_empty() {
                    return Err(NetError::Config("fleet.zones is empty".into()));
                }
                (0..instances)
                    .map(|id| part.local_instances.contains(&id))
                    .collect()
            }
            None => vec![true; usize::from(instances)],
        };
        let (start, first_tick) = match fleet {
            Some(part) => world_clock(part.epoch_unix_us, config.zone.tick_rate.tick_us())?,
            None => (Instant::now(), 0),
        };
        let local_ids: Vec<u16> = (0..instances).filter(|&i| local[usize::from(i)]).collect();
        let mut zones = Vec::with_capacity(local_ids.len());
        for &instance in &local_ids {
            let mut zone = build_zone(config, instance % zone_count.max(1))?;
            zone.start_at_tick(mmo_core::time::Tick(first_tick))
                .map_err(NetError::Config)?;
            let run = fleet.and_then(|part| {
                part.runs
                    .iter()
                    .find(|(id, _)| *id == instance)
                    .map(|(_, run)| *run)
            });
            if let Some(run) = run {
                zone.start_ids_for_run(run).map_err(NetError::Config)?;
            }
            zones.push((instance, zone));
        }
        let mut inboxes = Vec::with_capacity(usize::from(instances));
        let mut inbox_rxs = Vec::with_capacity(zones.len());
        let mut peers = Vec::with_capacity(usize::from(instances));
        let mut peer_rxs = Vec::with_capacity(zones.len());
        let mut remote = Vec::new();
        for id in 0..instances {
            let (tx, rx) = mpsc::channel(if local[usize::from(id)] {
                config.inbox_capacity
            } else {
                1
            });
            inboxes.push(tx);
            let (peer_tx, peer_rx) = mpsc::unbounded_channel();
            peers.push(peer_tx);
            if local[usize::from(id)] {
                inbox_rxs.push(rx);
                peer_rxs.push(peer_rx);
            } else {
                // A remote instance's inbox is closed here: nothing is queued for it.
                drop(rx);
                remote.push(RemotePeer {
                    zone: id,
                    messages: peer_rx,
                });
            }
        }
        let lanes = crate::shard::Lanes::new(zone_count, instances);
        for &id in &local_ids {
            lanes.set_running(id, true);
        }
        let players: Arc<[AtomicUsize]> = (0..instances).map(|_| AtomicUsize::new(0)).collect();
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let peers: Arc<[mpsc::UnboundedSender<PeerMsg>]> = peers.into();
        let chat = ChatHub::new(config.chat, peers.clone(), config.chat_bridge.clone());
        let accounts: AccountRegistry = Arc::new(Mutex::new(Default::default()));
        let border_backlog: Arc<[AtomicUsize]> =
            (0..instances).map(|_| AtomicUsize::new(0)).collect();
        let shared = Shared {
            authority: config.authority.clone(),
            accounts: accounts.clone(),
            chat: chat.clone(),
            peers: peers.clone(),
            start,
            border_backlog: border_backlog.clone(),
            stop: stop_rx,
            store: config.store.clone(),
            save_interval: config.save_interval,
            save_versions: Arc::new(Mutex::new(Default::default())),
            relay_tick,
            presence: fleet.and_then(|part| part.presence.clone()),
            players: players.clone(),
            lanes: lanes.clone(),
        };
        let mut threads = Vec::with_capacity(zones.len());
        for (((instance, zone), inbox_rx), peer_rx) in
            zones.into_iter().zip(inbox_rxs).zip(peer_rxs)
        {
            let label = crate::shard::ZoneShard::of_instance(instance, zone_count).label();
            let name = format!("mmo-zone-{label}");
            let shared = shared.clone();
            let spawned = std::thread::Builder::new().name(name).spawn(move || {
                crate::zone_thread::run(zone, instance, shared, inbox_rx, peer_rx);
            });
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    // Stop the zones already running before reporting.
                    let _ = stop.send(true);
                    return Err(e.into());
                }
            }
        }
        Ok(ZoneSet {
            inboxes: inboxes.into(),
            threads,
            stop,
            chat,
            start: shared.start,
            peers,
            local,
            accounts,
            border_backlog,
            remote,
            players,
            lanes,
        })
    }

    /// Runs `f` on `zone`'s thread between ticks, with the zone and the ids of its live
    /// connections, and returns its result (`None` when there is no such zone or it has
    /// stopped).
    pub(crate) async fn inspect_zone<R: Send + 'static>(
        &self,
        zone: ZoneId,
        f: impl FnOnce(&Zone, &[ConnectionId]) -> R + Send + 'static,
    ) -> Option<R> {
        let inbox = self.inboxes.get(usize::from(zone.0))?;
        let (reply, result) = oneshot::channel();
        let job: Inspect = Box::new(move |zone, ids| {
            let _ = reply.send(f(zone, ids));
        });
        inbox.send(ZoneMsg::Inspect(job)).await.ok()?;
        result.await.ok()
    }

    /// Tells every zone to close its connections (with `ServerShutdown`), offer its
    /// characters' last saves and stop, and waits for the threads.
    pub(crate) async fn shutdown(&mut self) {
        for inbox in self.inboxes.iter() {
            let _ = inbox.send(ZoneMsg::Shutdown).await;
        }
        for thread in std::mem::take(&mut self.threads) {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// True until [`ZoneSet::shutdown`].
    pub(crate) fn is_running(&self) -> bool {
        !self.threads.is_empty()
    }

    /// Tells every zone to stop at once, without waiting (works even when inboxes are
    /// full).
    pub(crate) fn stop_now(&self) {
        let _ = self.stop.send(true);
    }
}

/// The zones' clock in a fleet: the instant of the world's tick 0 (`epoch_unix_us`) on this
/// process's monotonic clock, and the tick running now.
///
/// # Errors
/// An epoch more than a second in the future (clocks apart: the process would wait), or so
/// old that tick numbers no longer fit 32 bits (about 4.5 years at 30 Hz).
pub(crate) fn world_clock(epoch_unix_us: u64, tick_us: u64) -> Result<(Instant, u32), NetError> {
    let now_unix_us = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|e| NetError::Config(format!("system clock before 1970: {e}")))?
        .as_micros() as u64;
    if epoch_unix_us > now_unix_us.saturating_add(1_000_000) {
        return Err(NetError::Config(format!(
            "the world's epoch is {} ms in the future of this machine's clock: synchronise the clocks (NTP)",
            (epoch_unix_us - now_unix_us) / 1000
        )));
    }
    let elapsed_us = now_unix_us.saturating_sub(epoch_unix_us);
    let tick = elapsed_us / tick_us.max(1);
    let tick = u32::try_from(tick).map_err(|_| {
        NetError::Config(format!(
            "the world's epoch is {} days old: tick numbers would not fit 32 bits; start the world under a new name",
            elapsed_us / 86_400_000_000
        ))
    })?;
    let start = Instant::now()
        .checked_sub(Duration::from_micros(elapsed_us))
        .ok_or_else(|| {
            NetError::Config(
                "the world's epoch is older than this machine's monotonic clock".into(),
            )
        })?;
    Ok((start, tick))
}

/// Checks the settings the zone threads need: positive channel capacities, and a positive
/// save interval when a character store is set.
pub(crate) fn check_config(config: &ServerConfig) -> Result<(), NetError> {
    if config.inbox_capacity == 0 || config.outbox_capacity == 0 {
        return Err(NetError::Config(
            "channel capacities must be positive".into(),
        ));
    }
    if config.store.is_some() && config.save_interval.is_zero() {
        return Err(NetError::Config(
            "save_interval must be positive when a character store is set".into(),
        ));
    }
    Ok(())
}

/// The ids of the zones of `config`'s layout (`[0]` without one).
pub(crate) fn zone_ids(config: &ServerConfig) -> Vec<u16> {
    match config.layout {
        Some(layout) => layout.zones().map(|id| id.0).collect(),
        None => vec![0],
    }
}

/// The [`Zone`] of zone `id` of the layout (placement set), or the whole world's (no
/// layout; `id` is 0).
fn build_zone(config: &ServerConfig, id: u16) -> Result<Zone, NetError> {
    let Some(layout) = config.layout else {
        return Zone::new(config.zone.clone()).map_err(NetError::Config);
    };
    let zone = ZoneConfig {
        placement: Some(ZonePlacement::new(layout, ZoneId(id))),
        ..config.zone.clone()
    };
    Zone::new(zone).map_err(|e| NetError::Config(format!("zone {id}: {e}")))
}
