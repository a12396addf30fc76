//! The zone threads of one process, started and stopped together: what a server that holds
//! its QUIC connections ([`crate::server::Server`]) and a zone process whose connections
//! are relayed by gateways ([`crate::relay::ZoneProcess`]) have in common.
//!
//! [`ZoneSet::start`] builds one [`Zone`] per zone of the layout (or one for the whole
//! world), gives each its inbox and peer channel, and runs each on its own thread (the
//! `zone_thread` module) on one shared tick schedule.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mmo_core::world::ZoneId;
use mmo_core::zone::{ConnectionId, Zone, ZoneConfig, ZonePlacement};
use tokio::sync::{mpsc, oneshot};

use crate::NetError;
use crate::chat::ChatHub;
use crate::server::ServerConfig;
use crate::zone_thread::{Inspect, PeerMsg, Shared, ZoneMsg};

/// The running zone threads of a process.
#[derive(Debug)]
pub(crate) struct ZoneSet {
    /// Inbox of each zone thread, indexed by zone id.
    pub(crate) inboxes: Arc<[mpsc::Sender<ZoneMsg>]>,
    /// Empty once the zones were stopped.
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Stops every zone at once (used on drop; shutdown goes through the inboxes).
    stop: tokio::sync::watch::Sender<bool>,
    /// The chat hub of every zone (operator mutes).
    pub(crate) chat: ChatHub,
    /// The instant tick 0 started (the zones' clock; datagrams are stamped with it).
    pub(crate) start: Instant,
}

impl ZoneSet {
    /// Starts one thread per zone of `config` (its zone, layout, store, chat and channel
    /// settings; the QUIC fields are not read). `relay_tick` is woken after each tick's
    /// transmits (see `Shared::relay_tick`).
    pub(crate) fn start(
        config: &ServerConfig,
        relay_tick: Option<Arc<tokio::sync::Notify>>,
    ) -> Result<ZoneSet, NetError> {
        check_config(config)?;
        let zones = build_zones(config)?;
        let mut inboxes = Vec::with_capacity(zones.len());
        let mut inbox_rxs = Vec::with_capacity(zones.len());
        let mut peers = Vec::with_capacity(zones.len());
        let mut peer_rxs = Vec::with_capacity(zones.len());
        for _ in &zones {
            let (tx, rx) = mpsc::channel(config.inbox_capacity);
            inboxes.push(tx);
            inbox_rxs.push(rx);
            let (tx, rx) = mpsc::unbounded_channel();
            peers.push(tx);
            peer_rxs.push(rx);
        }
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let peers: Arc<[mpsc::UnboundedSender<PeerMsg>]> = peers.into();
        let chat = ChatHub::new(config.chat, peers.clone(), config.chat_bridge.clone());
        let shared = Shared {
            authority: config.authority.clone(),
            accounts: Arc::new(Mutex::new(Default::default())),
            chat: chat.clone(),
            peers,
            start: Instant::now(),
            border_backlog: (0..zones.len()).map(|_| AtomicUsize::new(0)).collect(),
            stop: stop_rx,
            store: config.store.clone(),
            save_interval: config.save_interval,
            save_versions: Arc::new(Mutex::new(Default::default())),
            relay_tick,
        };
        let mut threads = Vec::with_capacity(zones.len());
        for ((zone, inbox_rx), peer_rx) in zones.into_iter().zip(inbox_rxs).zip(peer_rxs) {
            let name = format!("mmo-zone-{}", zone.zone_id().0);
            let shared = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(name)
                .spawn(move || crate::zone_thread::run(zone, shared, inbox_rx, peer_rx));
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

/// The ids of the zones [`build_zones`] makes for `config`.
pub(crate) fn zone_ids(config: &ServerConfig) -> Vec<u16> {
    match config.layout {
        Some(layout) => layout.zones().map(|id| id.0).collect(),
        None => vec![0],
    }
}

/// One [`Zone`] per zone of the layout (placement set), or one for the whole world.
pub(crate) fn build_zones(config: &ServerConfig) -> Result<Vec<Zone>, NetError> {
    let Some(layout) = config.layout else {
        return Ok(vec![
            Zone::new(config.zone.clone()).map_err(NetError::Config)?,
        ]);
    };
    layout
        .zones()
        .map(|id| {
            let zone = ZoneConfig {
                placement: Some(ZonePlacement::new(layout, id)),
                ..config.zone.clone()
            };
            Zone::new(zone).map_err(|e| NetError::Config(format!("zone {}: {e}", id.0)))
        })
        .collect()
}
