//! Zone set-up: everything between the settings and the running simulation, in one place
//! ([`start_zones`]).
//!
//! The `[world]` settings become a [`WorldLayout`]: a `size_m[0] x size_m[1]` rectangle
//! centred on the origin (new characters appear at the origin), cut into
//! `zone_columns x zone_rows` equal zones, neighbours seeing each other across a
//! `border_m` band. The movement bounds are the world rectangle.
//!
//! By `[fleet] role`: `all` runs one [`mmo_net::server::Server`] (one QUIC endpoint) with
//! every zone on its own thread, handing players across borders on the same connection;
//! `zone` runs the same zones as a [`ZoneProcess`] whose connections gateways relay over
//! NATS; `gateway` runs only the QUIC endpoint, a [`GatewayProcess`] relaying to the zone
//! process (see `docs/fleet.md`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mmo_core::movement::ZoneBounds;
use mmo_core::world::{Rect, WorldLayout};
use mmo_core::zone::ZoneConfig;
use mmo_net::NetError;
use mmo_net::auth::LoginAuthority;
use mmo_net::gateway::GatewayConfig;
use mmo_net::persist::CharacterStore;
use mmo_net::relay::{GatewayProcess, ZoneProcess};
use mmo_net::server::{Server, ServerConfig};
use mmo_net::tls::{Fingerprint, ServerCert};

use crate::config::{ServerSettings, WorldSettings};

/// What runs the game in this process, by role.
#[derive(Debug)]
pub enum Running {
    /// `all`: the zones behind this process's QUIC endpoint.
    Server(Server),
    /// `zone`: the zones, serving gateways' connections.
    ZoneProcess(ZoneProcess),
    /// `gateway`: the QUIC endpoint, relaying to the zone process.
    Gateway(GatewayProcess),
}

/// The running zones behind the QUIC endpoint, or this process's half of a fleet.
#[derive(Debug)]
pub struct Zones {
    running: Running,
    world: WorldSettings,
}

/// Starts what `settings.fleet.role` runs (`settings` already validated): the zones on
/// `settings.quic_addr` (`all`), the zones alone (`zone`) or the QUIC endpoint alone
/// (`gateway`), presenting `cert`, deciding logins with `authority`, admitting connections
/// through `gateway`, and loading and saving characters through `store` every `[storage]
/// save_interval_s` (`None`: the gateway role, which holds no characters). Must be called
/// within a tokio runtime.
pub async fn start_zones(
    settings: &ServerSettings,
    cert: ServerCert,
    authority: Arc<dyn LoginAuthority>,
    gateway: GatewayConfig,
    store: Option<Arc<dyn CharacterStore>>,
) -> Result<Zones, NetError> {
    let layout = world_layout(&settings.world)?;
    // Validated with the settings; loading again cannot fail unless the file changed.
    let gameplay = settings
        .gameplay
        .load()
        .map_err(|e| NetError::Config(e.to_string()))?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let replication_threads = settings
        .zone
        .replication_threads_for(usize::from(layout.zone_count()), cores);
    let mut zone = ZoneConfig {
        tick_rate: settings.tick_rate(),
        gameplay,
        replication_threads,
        ..ZoneConfig::default()
    };
    zone.connection.input_queue.drain_after_ticks = settings.zone.input_drain_after_ticks;
    zone.replication.budget_bytes_per_s = settings.zone.snapshot_budget_bytes_per_s;
    zone.movement.bounds = ZoneBounds {
        min_xy_m: layout.world().min_xy_m,
        max_xy_m: layout.world().max_xy_m,
    };
    let mut config = ServerConfig {
        gateway,
        ..ServerConfig::new(settings.quic_addr, zone, cert, authority)
    };
    config.layout = (layout.zone_count() > 1).then_some(layout);
    config.store = store;
    config.save_interval = Duration::from_secs(settings.storage.save_interval_s);
    config.chat = crate::chat_redis::chat_config(&settings.chat);
    config.chat_bridge =
        crate::chat_redis::bridge_from_settings(&settings.chat).map_err(NetError::Config)?;
    tracing::info!(
        zones = layout.zone_count(),
        columns = layout.columns(),
        rows = layout.rows(),
        border_m = layout.border_m(),
        replication_threads,
        "world layout"
    );
    let relay = settings
        .fleet
        .relay(settings.chat.redis_url.as_deref())
        .map_err(|e| NetError::Config(e.to_string()))?;
    let running = match relay {
        None => Running::Server(Server::start(config).await?),
        Some(relay) => match settings.fleet.role {
            crate::fleet_settings::Role::Gateway => {
                Running::Gateway(GatewayProcess::start(&config, relay).await?)
            }
            _ => Running::ZoneProcess(ZoneProcess::start(&config, relay).await?),
        },
    };
    Ok(Zones {
        running,
        world: settings.world.clone(),
    })
}

/// The layout of `world` (validated settings; the layout checks again and names the field).
pub fn world_layout(world: &WorldSettings) -> Result<WorldLayout, NetError> {
    let half = glam::Vec2::new(world.size_m[0], world.size_m[1]) * 0.5;
    let columns = u16::try_from(world.zone_columns).map_err(|_| {
        NetError::Config(format!(
            "world.zone_columns {} is too large",
            world.zone_columns
        ))
    })?;
    let rows = u16::try_from(world.zone_rows).map_err(|_| {
        NetError::Config(format!("world.zone_rows {} is too large", world.zone_rows))
    })?;
    WorldLayout::new(Rect::new(-half, half), columns, rows, world.border_m)
        .map_err(|e| NetError::Config(format!("world: {e}")))
}

impl Zones {
    /// The bound UDP address of the QUIC endpoint (`None` in the zone role, which has
    /// none).
    #[must_use]
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        match &self.running {
            Running::Server(s) => Some(s.local_addr()),
            Running::Gateway(g) => Some(g.local_addr()),
            Running::ZoneProcess(_) => None,
        }
    }

    /// The fingerprint clients pin (`None` in the zone role).
    #[must_use]
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        match &self.running {
            Running::Server(s) => Some(s.fingerprint()),
            Running::Gateway(g) => Some(g.fingerprint()),
            Running::ZoneProcess(_) => None,
        }
    }

    /// The world layout the zones were started with.
    #[must_use]
    pub fn world(&self) -> &WorldSettings {
        &self.world
    }

    /// Resolves with the reason when this process can no longer serve: a zone process
    /// lost a zone's lease in the fleet's directory, or a relay (gateway or zone process)
    /// stopped. Never resolves for `all`, nor while everything is well.
    pub async fn failed(&self) -> String {
        match &self.running {
            Running::ZoneProcess(z) => tokio::select! {
                reason = z.ownership_lost() => format!("lost zone ownership: {reason}"),
                () = z.relay_failed() => "the relay stopped (NATS subscription closed)".to_owned(),
            },
            Running::Gateway(g) => {
                g.relay_failed().await;
                "the relay stopped (NATS subscription closed)".to_owned()
            }
            Running::Server(_) => std::future::pending().await,
        }
    }

    /// Resolves once a zone process's shards were all merged into others and emptied
    /// (`mmo_net::relay::shard_merge`): it should stop cleanly. Never resolves otherwise.
    pub async fn retired(&self) {
        match &self.running {
            Running::ZoneProcess(z) => z.retired().await,
            Running::Gateway(_) | Running::Server(_) => std::future::pending().await,
        }
    }

    /// What runs the game here (for inspection in tests and admin tools).
    #[must_use]
    pub fn running(&self) -> &Running {
        &self.running
    }

    /// Stops accepting, tells every client [`ServerShutdown`], finishes the tick, and waits
    /// up to `grace` for the connections to close.
    ///
    /// [`ServerShutdown`]: mmo_core::control::DisconnectReason::ServerShutdown
    pub async fn shutdown(self, grace: Duration) {
        match self.running {
            Running::Server(s) => s.shutdown(grace).await,
            Running::ZoneProcess(z) => z.shutdown(grace).await,
            Running::Gateway(g) => g.shutdown(grace).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_settings_become_a_layout_centred_on_the_origin() {
        let single = world_layout(&WorldSettings::default()).unwrap();
        assert_eq!(single.zone_count(), 1);
        assert_eq!(single.world().min_xy_m, glam::Vec2::splat(-2000.0));
        let grid = world_layout(&WorldSettings {
            size_m: [400.0, 200.0],
            zone_columns: 2,
            zone_rows: 2,
            border_m: 20.0,
        })
        .unwrap();
        assert_eq!(grid.zone_count(), 4);
        assert_eq!(grid.world().max_xy_m, glam::Vec2::new(200.0, 100.0));
        // The origin, where characters appear, is a corner shared by the four zones.
        let mut seeing = Vec::new();
        grid.zones_seeing(glam::Vec3::ZERO, &mut seeing);
        assert_eq!(seeing.len(), 4);
        let too_wide = world_layout(&WorldSettings {
            size_m: [100.0, 100.0],
            zone_columns: 2,
            zone_rows: 1,
            border_m: 80.0,
        });
        assert!(too_wide.unwrap_err().to_string().contains("border"));
    }
}
