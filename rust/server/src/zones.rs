//! Zone set-up: everything between the settings and the running simulation, in one place
//! ([`start_zones`]).
//!
//! The `[world]` settings become a [`WorldLayout`]: a `size_m[0] x size_m[1]` rectangle
//! centred on the origin (new characters appear at the origin), cut into
//! `zone_columns x zone_rows` equal zones, neighbours seeing each other across a
//! `border_m` band. One [`mmo_net::server::Server`] (one QUIC endpoint) runs every zone on
//! its own thread and hands players across borders on the same connection. The movement
//! bounds are the world rectangle.

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
use mmo_net::server::{Server, ServerConfig};
use mmo_net::tls::{Fingerprint, ServerCert};

use crate::config::{ServerSettings, WorldSettings};

/// The running zones (one, for now) behind the QUIC endpoint.
#[derive(Debug)]
pub struct Zones {
    server: Server,
    world: WorldSettings,
}

/// Starts the zones for `settings` (already validated) on `settings.quic_addr`, presenting
/// `cert`, deciding logins with `authority`, admitting connections through `gateway`, and
/// loading and saving characters through `store` every `[storage] save_interval_s`.
/// Must be called within a tokio runtime.
pub async fn start_zones(
    settings: &ServerSettings,
    cert: ServerCert,
    authority: Arc<dyn LoginAuthority>,
    gateway: GatewayConfig,
    store: Arc<dyn CharacterStore>,
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
    zone.movement.bounds = ZoneBounds {
        min_xy_m: layout.world().min_xy_m,
        max_xy_m: layout.world().max_xy_m,
    };
    let mut config = ServerConfig {
        gateway,
        ..ServerConfig::new(settings.quic_addr, zone, cert, authority)
    };
    config.layout = (layout.zone_count() > 1).then_some(layout);
    config.store = Some(store);
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
    let server = Server::start(config).await?;
    Ok(Zones {
        server,
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
    /// The bound UDP address of the QUIC endpoint.
    #[must_use]
    pub fn quic_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The fingerprint clients pin.
    #[must_use]
    pub fn fingerprint(&self) -> Fingerprint {
        self.server.fingerprint()
    }

    /// The world layout the zones were started with.
    #[must_use]
    pub fn world(&self) -> &WorldSettings {
        &self.world
    }

    /// The server (for inspection in tests and admin tools).
    #[must_use]
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Stops accepting, tells every client [`ServerShutdown`], finishes the tick, and waits
    /// up to `grace` for the connections to close.
    ///
    /// [`ServerShutdown`]: mmo_core::control::DisconnectReason::ServerShutdown
    pub async fn shutdown(self, grace: Duration) {
        self.server.shutdown(grace).await;
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
