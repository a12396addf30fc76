//! The running server: the zones behind the QUIC endpoint and the HTTP endpoint, started
//! and stopped together.
//!
//! [`App::start`] creates the data directory, loads (or generates) the JWT secret and the
//! certificate (the operator's PEM files, or a self-signed one kept in the data directory
//! so its fingerprint survives restarts), opens the database ([`Store`]: SQLite in the data
//! directory unless `[storage] database_url` names PostgreSQL) and starts the write-behind
//! [`Saver`], starts the zones ([`crate::zones::start_zones`]) with the saver as their
//! character store, and the HTTP server, and marks the server ready.
//!
//! [`App::shutdown`] is graceful: `/readyz` turns 503, the QUIC endpoint stops accepting,
//! every client is told `ServerShutdown` and each zone finishes its tick and offers its
//! characters' last state; the saver writes everything (for at most [`SAVE_ON_SHUTDOWN`],
//! then what is left goes to the unsaved file), the database is closed, then HTTP stops.
//! The zones never wait for HTTP or the database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mmo_net::NetError;
use mmo_net::gateway::GatewayConfig;
use mmo_net::tls::{Fingerprint, ServerCert};
use tokio::sync::oneshot;

use crate::auth::{DevAccounts, JwtAuthority, SecretError, TokenIssuer};
use crate::config::{ConfigError, ServerSettings};
use crate::fleet_settings::Role;
use crate::http::{HttpState, OpsState};
use crate::persistence::{Saver, SaverConfig};
use crate::service_settings::redact_url;
use crate::storage::Store;
use crate::storage::characters::NewCharacter;
use crate::zones::Zones;

/// How long [`App::shutdown`] keeps trying to save the last characters before it writes
/// them to the unsaved file.
pub const SAVE_ON_SHUTDOWN: Duration = Duration::from_secs(10);

/// What a new character starts as (its name is chosen at creation): the configured class
/// and race, the content's starting kit, at the spawn point in the zone that owns it.
fn new_character_template(
    settings: &ServerSettings,
    gameplay: &mmo_core::zone::ZoneGameplayConfig,
) -> Result<NewCharacter, NetError> {
    let content = &gameplay.content;
    let name_of = |what: &str, id: Option<&str>| {
        id.map(str::to_owned)
            .ok_or_else(|| NetError::Config(format!("the configured {what} is not in the content")))
    };
    let spawn_m = mmo_core::zone::ZoneConfig::default().spawn_position_m;
    let layout = crate::zones::world_layout(&settings.world)?;
    Ok(NewCharacter {
        name: String::new(),
        race: name_of("race", content.race(gameplay.race).map(|r| r.id.as_str()))?,
        class: name_of(
            "class",
            content.class(gameplay.class).map(|c| c.id.as_str()),
        )?,
        zone_id: layout.zone_at(spawn_m).0,
        position_m: spawn_m,
        yaw_rad: 0.0,
        inventory: mmo_core::zone::persistence::starting_inventory(content),
    })
}

/// Why the server did not start.
#[derive(Debug)]
pub enum StartError {
    /// A setting is invalid (exit status 2).
    Config(ConfigError),
    /// The data directory could not be created.
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The JWT secret could not be read or created.
    Secret(SecretError),
    /// The certificate could not be loaded or generated.
    Certificate(String),
    /// The QUIC endpoint or the zone did not start.
    Quic(NetError),
    /// The database or the accounts could not be set up.
    Storage(String),
    /// A gateway could not register in the fleet's directory (Redis).
    Fleet(String),
    /// The HTTP listener could not be bound.
    Http {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
}

impl StartError {
    /// The process exit status for this error: 2 for configuration errors, else 1.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) => 2,
            _ => 1,
        }
    }
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::DataDir { path, source } => {
                write!(f, "cannot create data dir {}: {source}", path.display())
            }
            StartError::Secret(e) => write!(f, "{e}"),
            StartError::Certificate(m) => write!(f, "certificate: {m}"),
            StartError::Quic(e) => write!(f, "QUIC endpoint: {e}"),
            StartError::Storage(m) => write!(f, "storage: {m}"),
            StartError::Fleet(m) => write!(f, "fleet directory: {m}"),
            StartError::Http { addr, source } => {
                write!(f, "cannot bind the HTTP endpoint on {addr}: {source}")
            }
        }
    }
}

impl std::error::Error for StartError {}

/// A running server. See the module docs.
#[derive(Debug)]
pub struct App {
    zones: Option<Zones>,
    /// The write-behind saver; taken by [`App::shutdown`] after the zones stopped.
    saver: Option<Saver>,
    store: Store,
    /// This process's part in the fleet.
    role: Role,
    /// `None` in the zone role (no QUIC endpoint).
    quic_addr: Option<SocketAddr>,
    http_addr: SocketAddr,
    /// `None` in the zone role.
    fingerprint: Option<Fingerprint>,
    /// True from the end of [`App::start`] until [`App::shutdown`] begins (shared with
    /// `/readyz`).
    ready: Arc<AtomicBool>,
    issuer: Arc<TokenIssuer>,
    http_stop: Option<oneshot::Sender<()>>,
    http_task: Option<tokio::task::JoinHandle<()>>,
    /// A gateway of a fleet: its registry entry's refresh task (stopped, and the entry
    /// deleted, first at shutdown).
    fleet_login: Option<(
        Arc<crate::fleet_login::FleetLogin>,
        tokio::task::JoinHandle<()>,
    )>,
    /// A zone process run by Agones: the sidecar and the health pings' task.
    agones: Option<(crate::agones::AgonesSdk, tokio::task::JoinHandle<()>)>,
}

/// Serves `router` on `listener` until the returned sender is used (or dropped).
fn spawn_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (http_stop, stopped) = oneshot::channel::<()>();
    let http_task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = crate::http::serve(listener, router, shutdown).await {
            tracing::error!(error = %e, "HTTP endpoint failed");
        }
    });
    (http_stop, http_task)
}

/// The server certificate: the operator's PEM files when `--cert-file`/`--key-file` are set
/// ([`ServerCert::from_pem_files`]), else the persistent self-signed identity in the data
/// dir ([`ServerCert::load_or_generate`]: generated once for `server_names`, then the same
/// fingerprint across restarts). Errors name the file and the problem.
fn load_certificate(settings: &ServerSettings) -> Result<ServerCert, StartError> {
    let loaded = match (&settings.cert_file, &settings.key_file) {
        (Some(cert), Some(key)) => ServerCert::from_pem_files(cert, key),
        // `validate` refused one file without the other: this is neither.
        _ => {
            let names: Vec<&str> = settings.server_names.iter().map(String::as_str).collect();
            ServerCert::load_or_generate(&settings.data_dir, &names)
        }
    };
    loaded.map_err(|e| StartError::Certificate(e.to_string()))
}

/// The QUIC endpoint's gate for `settings` (validated): the connection cap, the per-address
/// handshake rate, the Retry threshold and the UDP buffers from the settings; the rest
/// (rate table size, control stream timeout) at `mmo-net`'s defaults.
#[must_use]
pub fn gateway_config(settings: &ServerSettings) -> GatewayConfig {
    // Validated values are at most 1,000,000 (counts) and 1 GiB (bytes), so they fit a
    // usize of 32 bits or more; the fallback is never taken there.
    let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    GatewayConfig {
        max_connections: to_usize(settings.max_connections.into()),
        handshake_burst: settings.handshake_burst,
        handshake_refill_per_s: settings.handshake_refill_per_s,
        retry_above_pending_handshakes: to_usize(settings.retry_above_pending_handshakes.into()),
        udp_buffer_bytes: to_usize(settings.udp_buffer_bytes),
        ..GatewayConfig::default()
    }
}

impl App {
    /// Starts everything (see the module docs). Must be called within a multi-threaded
    /// tokio runtime with I/O and time enabled.
    pub async fn start(settings: ServerSettings) -> Result<App, StartError> {
        settings.validate().map_err(StartError::Config)?;
        if settings.dev_accounts.is_empty()
            && !settings.dev_open_login
            && !settings.accounts.registration_open
        {
            tracing::warn!(
                "registration is closed and no dev accounts are configured: only accounts \
                 already in the database can log in"
            );
        }
        if settings.dev_open_login {
            tracing::warn!(
                "!!! DEV OPEN LOGIN IS ON: ANY USERNAME LOGS IN WITH THE PASSWORD `{}`. NEVER USE THIS IN PRODUCTION !!!",
                crate::auth::DEV_OPEN_PASSWORD
            );
        }
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| StartError::DataDir {
            path: settings.data_dir.clone(),
            source,
        })?;
        // Before anything slow (the database): Agones counts missed health pings from the
        // pod's start.
        let agones = if settings.fleet.role == Role::Zone && settings.fleet.agones {
            let sdk = crate::agones::AgonesSdk::from_env().map_err(StartError::Fleet)?;
            let health = sdk.spawn_health();
            // Ready before looking for a zone: a spare is the Fleet's Ready buffer.
            if let Err(e) = sdk.ready().await {
                health.abort();
                return Err(StartError::Fleet(e));
            }
            tracing::info!(
                "Agones: ready, health pings every {:?}",
                crate::agones::HEALTH_EVERY
            );
            Some((sdk, health))
        } else {
            None
        };
        let secret = match &settings.jwt_secret_file {
            Some(path) => crate::auth::load_secret(path),
            None => crate::auth::load_or_create_secret(&settings.jwt_secret_path()),
        }
        .map_err(StartError::Secret)?;
        let cert = load_certificate(&settings)?;
        let metrics = crate::metrics::global();
        let listener = tokio::net::TcpListener::bind(settings.http_addr)
            .await
            .map_err(|source| StartError::Http {
                addr: settings.http_addr,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| StartError::Http {
            addr: settings.http_addr,
            source,
        })?;
        let database_url = settings
            .storage
            .database_url
            .clone()
            .unwrap_or_else(|| Store::sqlite_url_in(&settings.data_dir));
        let store = Store::open(
            &database_url,
            settings.storage.read_replica_url.as_deref(),
            settings.storage.max_connections,
        )
        .await
        .map_err(|e| StartError::Storage(e.to_string()))?;
        tracing::info!(database = %redact_url(&database_url), backend = store.backend().as_str(), "storage open");
        let gameplay = settings.gameplay.load().map_err(StartError::Config)?;
        let template = new_character_template(&settings, &gameplay).map_err(StartError::Quic)?;
        let spawn = crate::spawn_area::SpawnArea {
            center_m: template.position_m,
            spread_m: settings.gameplay.spawn_spread_m,
            layout: crate::zones::world_layout(&settings.world).map_err(StartError::Quic)?,
        };
        let role = settings.fleet.role;
        // A gateway holds no characters: the zone process loads and saves them.
        let saver = (role != Role::Gateway).then(|| {
            Saver::start(
                store.clone(),
                SaverConfig {
                    // Validated to be at most 10,000,000, so it fits any usize of 32 bits
                    // or more.
                    max_backlog_records: usize::try_from(settings.storage.max_backlog_records)
                        .unwrap_or(usize::MAX),
                    template: template.clone(),
                    spawn,
                    max_characters_per_account: settings.accounts.max_characters_per_account,
                    data_dir: settings.data_dir.clone(),
                },
            )
        });
        // Before anything can wait (a spare zone process may wait long for a zone), so a
        // scraper always knows the role.
        metrics::gauge!(mmo_net::metrics::PROCESS_ROLE, "role" => role.as_str()).set(1.0);
        let ready = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(OpsState {
            ready: ready.clone(),
            metrics,
        });
        // A zone process serves its operations routes from the start: with `--zones auto`
        // it may wait a long time as a spare before it runs a zone (not ready meanwhile).
        let mut listener = Some(listener);
        let mut http = None;
        if role == Role::Zone
            && let Some(listener) = listener.take()
        {
            http = Some(spawn_http(listener, crate::http::ops_router(ops.clone())));
        }
        // `mmo_net::server::Server::start` validates it again (a `Quic` error if bad).
        let gateway = gateway_config(&settings);
        let zones = crate::zones::start_zones(
            &settings,
            cert,
            Arc::new(JwtAuthority::new(&secret)),
            gateway,
            saver
                .clone()
                .map(|saver| Arc::new(saver) as Arc<dyn mmo_net::persist::CharacterStore>),
        )
        .await
        .map_err(StartError::Quic)?;
        let quic_addr = zones.quic_addr();
        let fingerprint = zones.fingerprint();
        let issuer = Arc::new(TokenIssuer::new(&secret, settings.token_ttl_s));
        if let (Some((sdk, _)), crate::zones::Running::ZoneProcess(process)) =
            (&agones, zones.running())
        {
            // Never scaled down or replaced by an update while it runs its zones.
            sdk.allocate_for(&process.zone_labels())
                .await
                .map_err(StartError::Fleet)?;
            tracing::info!(zones = ?process.zone_labels(), "Agones: allocated");
        }
        let fleet_login = match (zones.running(), &settings.chat.redis_url) {
            (crate::zones::Running::Gateway(gateway), Some(url)) => Some(
                crate::fleet_login::FleetLogin::start(url, &settings.fleet, gateway)
                    .await
                    .map_err(StartError::Fleet)?,
            ),
            _ => None,
        };
        let router = match (listener.is_some(), quic_addr, fingerprint) {
            (false, _, _) => None,
            (true, Some(quic_addr), Some(fingerprint)) => {
                let mut accounts = crate::accounts::Accounts::new(
                    store.clone(),
                    settings.accounts.clone(),
                    DevAccounts::new(&settings.dev_accounts, settings.dev_open_login),
                    crate::accounts::LoginLimiter::from_settings(&settings.accounts),
                )
                .map_err(|e| StartError::Storage(e.to_string()))?;
                if role == Role::Gateway
                    && let Some(url) = &settings.chat.redis_url
                {
                    let limits = crate::fleet_limits::FleetLimits::connect(
                        url,
                        &settings.fleet.world,
                        &settings.accounts,
                    )
                    .await
                    .map_err(StartError::Fleet)?;
                    accounts = accounts.with_fleet_limits(limits);
                }
                Some(crate::http::router(Arc::new(HttpState {
                    issuer: issuer.clone(),
                    authority: Arc::new(JwtAuthority::new(&secret)),
                    accounts: Arc::new(accounts),
                    content: gameplay.content.clone(),
                    new_character: template,
                    spawn,
                    quic_addr,
                    fingerprint_hex: fingerprint.to_hex(),
                    ops,
                    fleet: fleet_login.as_ref().map(|(login, _)| login.clone()),
                })))
            }
            // The zone role serves these already (above).
            (true, _, _) => Some(crate::http::ops_router(ops)),
        };
        if let (Some(listener), Some(router)) = (listener, router) {
            http = Some(spawn_http(listener, router));
        }
        // Set above for every role (the zone role's before its zones, the others' here).
        let (http_stop, http_task) = http.expect("the HTTP endpoint was started");
        ready.store(true, Ordering::Release);
        tracing::info!(role = role.as_str(), quic_addr = ?quic_addr, %http_addr, fingerprint = ?fingerprint.map(|f| f.to_hex()), "server ready");
        Ok(App {
            zones: Some(zones),
            saver,
            role,
            store,
            quic_addr,
            http_addr,
            fingerprint,
            ready,
            issuer,
            http_stop: Some(http_stop),
            http_task: Some(http_task),
            fleet_login,
            agones,
        })
    }

    /// The bound UDP address of the QUIC endpoint (`None` in the zone role, which has
    /// none: its players connect to gateways).
    #[must_use]
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.quic_addr
    }

    /// This process's role in the fleet.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The bound TCP address of the HTTP endpoint.
    #[must_use]
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The certificate fingerprint clients pin (`None` in the zone role).
    #[must_use]
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        self.fingerprint
    }

    /// The token issuer (the one `/v1/login` uses).
    #[must_use]
    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    /// A login token for `account` as `/v1/login` would give it, creating the account's row
    /// (like a dev account's, without a password) when it has none. For tools and tests
    /// that skip the password check; the token plays the account's default character.
    pub async fn token_for(&self, account: &str) -> Result<String, String> {
        let now_s = mmo_net::auth::unix_now_s();
        self.store
            .ensure_account(account, now_s)
            .await
            .map_err(|e| e.to_string())?;
        self.issuer.issue(account, now_s).map_err(|e| e.to_string())
    }

    /// Resolves with the reason when this process can no longer serve as its role
    /// should (see [`Zones::failed`]): it must stop (`mmo-server` shuts down and exits
    /// with 1). Never resolves for the `all` role.
    pub async fn failed(&self) -> String {
        match &self.zones {
            Some(zones) => zones.failed().await,
            None => std::future::pending().await,
        }
    }

    /// Resolves once this zone process's shards were all merged into others (see
    /// [`Zones::retired`]): `mmo-server` stops cleanly and exits with 0.
    pub async fn retired(&self) {
        match &self.zones {
            Some(zones) => zones.retired().await,
            None => std::future::pending().await,
        }
    }

    /// The zones (for inspection).
    #[must_use]
    pub fn zones(&self) -> Option<&Zones> {
        self.zones.as_ref()
    }

    /// The line printed on stdout once the listeners are bound:
    /// `MMO_SERVER_READY quic=<addr> http=<addr> fingerprint=<hex> role=<role>`; a zone
    /// process, which has no QUIC endpoint, leaves out `quic` and `fingerprint`.
    #[must_use]
    pub fn ready_line(&self) -> String {
        match (self.quic_addr, self.fingerprint) {
            (Some(quic), Some(fingerprint)) => format!(
                "MMO_SERVER_READY quic={quic} http={} fingerprint={} role={}",
                self.http_addr,
                fingerprint.to_hex(),
                self.role.as_str()
            ),
            _ => format!(
                "MMO_SERVER_READY http={} role={}",
                self.http_addr,
                self.role.as_str()
            ),
        }
    }

    /// Stops gracefully (see the module docs), waiting up to `grace` for QUIC connections
    /// to close and up to `grace` for HTTP requests in flight.
    pub async fn shutdown(mut self, grace: Duration) {
        tracing::info!("shutting down");
        self.ready.store(false, Ordering::Release);
        if let Some((login, refresher)) = self.fleet_login.take() {
            // No login is sent here any more.
            refresher.abort();
            login.registry.deregister().await;
        }
        if let Some(zones) = self.zones.take() {
            // The zones offer their last saves while they stop.
            zones.shutdown(grace).await;
        }
        if let Some(saver) = self.saver.take() {
            let report = saver.shutdown(SAVE_ON_SHUTDOWN).await;
            if report.unsaved > 0 {
                tracing::error!(
                    ?report,
                    "characters NOT saved at shutdown: kept in the unsaved file, offered again at the next start"
                );
            } else {
                tracing::info!(?report, "characters saved");
            }
        }
        self.store.close().await;
        if let Some((sdk, health)) = self.agones.take() {
            health.abort();
            match sdk.shutdown().await {
                Ok(()) => tracing::info!("Agones: shutdown reported"),
                Err(e) => tracing::warn!(error = %e, "Agones: shutdown not reported"),
            }
        }
        if let Some(stop) = self.http_stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.http_task.take()
            && tokio::time::timeout(grace, task).await.is_err()
        {
            tracing::warn!("HTTP requests still running after the grace period; dropped");
        }
        tracing::info!("shut down");
    }
}

impl Drop for App {
    /// An app dropped without [`App::shutdown`] still stops: not ready, HTTP told to stop,
    /// and the zones stop as their server is dropped.
    fn drop(&mut self) {
        self.ready.store(false, Ordering::Release);
        if let Some((_, health)) = &self.agones {
            health.abort();
        }
        if let Some((_, refresher)) = &self.fleet_login {
            // The entry goes stale after 3 s and is no longer chosen.
            refresher.abort();
        }
        if let Some(stop) = self.http_stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_settings_become_the_gateway_config() {
        let settings = ServerSettings {
            max_connections: 300,
            handshake_burst: 200,
            handshake_refill_per_s: 1000,
            retry_above_pending_handshakes: 0,
            udp_buffer_bytes: 1 << 20,
            ..ServerSettings::default()
        };
        let gateway = gateway_config(&settings);
        assert_eq!(gateway.max_connections, 300);
        assert_eq!(gateway.handshake_burst, 200);
        assert_eq!(gateway.handshake_refill_per_s, 1000);
        assert_eq!(gateway.retry_above_pending_handshakes, 0);
        assert_eq!(gateway.udp_buffer_bytes, 1 << 20);
        assert!(gateway.validate().is_ok());
        // The defaults agree with mmo-net's.
        let defaults = gateway_config(&ServerSettings::default());
        let net = GatewayConfig::default();
        assert_eq!(defaults.max_connections, net.max_connections);
        assert_eq!(defaults.handshake_burst, net.handshake_burst);
        assert_eq!(defaults.handshake_refill_per_s, net.handshake_refill_per_s);
        assert_eq!(
            defaults.retry_above_pending_handshakes,
            net.retry_above_pending_handshakes
        );
        assert_eq!(defaults.udp_buffer_bytes, net.udp_buffer_bytes);
    }
}
