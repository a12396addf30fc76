//! Zone set-up: everything between the settings and the running simulation, in one place
//! ([`start_zones`]) so multi-zone wiring can replace it without touching the rest.
//!
//! Today one zone simulates the whole world through one [`mmo_net::server::Server`] (one
//! QUIC endpoint, one zone thread). The `[world]` settings (size, zone grid, border) are
//! validated and kept in [`Zones::world`], but not acted on yet: cutting the world into a
//! `zone_columns x zone_rows` grid with hand-offs across `border_m` comes with the
//! multi-zone work.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mmo_core::zone::ZoneConfig;
use mmo_net::NetError;
use mmo_net::auth::LoginAuthority;
use mmo_net::gateway::GatewayConfig;
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
/// `cert`, deciding logins with `authority` and admitting connections through `gateway`.
/// Must be called within a tokio runtime.
pub async fn start_zones(
    settings: &ServerSettings,
    cert: ServerCert,
    authority: Arc<dyn LoginAuthority>,
    gateway: GatewayConfig,
) -> Result<Zones, NetError> {
    let zone = ZoneConfig {
        tick_rate: settings.tick_rate(),
        ..ZoneConfig::default()
    };
    if settings.world.zone_columns * settings.world.zone_rows > 1 {
        tracing::warn!(
            columns = settings.world.zone_columns,
            rows = settings.world.zone_rows,
            "multi-zone worlds are not wired yet: one zone simulates the whole world"
        );
    }
    let server = Server::start(ServerConfig {
        gateway,
        ..ServerConfig::new(settings.quic_addr, zone, cert, authority)
    })
    .await?;
    Ok(Zones {
        server,
        world: settings.world.clone(),
    })
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
