//! Helpers the integration tests share: a global metrics recorder whose counters add up
//! across snapshots, a server with fixed tokens, honest and raw clients.

#![allow(dead_code)] // Each test binary uses a different subset.

pub mod player;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use glam::{Vec2, Vec3};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use mmo_core::control::DisconnectReason;
use mmo_core::entity::EntityId;
use mmo_core::movement::ZoneBounds;
use mmo_core::session::client::{ClientConfig, ClientEvent};
use mmo_core::world::{Rect, ZoneId};
use mmo_core::zone::ZoneConfig;
use mmo_net::auth::StaticTokens;
use mmo_net::client::{ConnectOptions, NetClient};
use mmo_net::gateway::GatewayConfig;
use mmo_net::server::{Server, ServerConfig};
use mmo_net::tls::{Fingerprint, ServerCert, ServerTrust};

/// (metric name, sorted labels) -> running total.
type Totals = HashMap<(String, Vec<(String, String)>), u64>;

struct Recorder {
    snapshotter: Snapshotter,
    /// Snapshots reset the recorder's counters, so totals are kept here.
    totals: Mutex<Totals>,
}

fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<Recorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other recorder in this test binary");
        Recorder {
            snapshotter,
            totals: Mutex::new(HashMap::new()),
        }
    })
}

/// Installs the recorder (call before starting servers).
pub fn install_recorder() {
    let _ = recorder();
}

/// The total of counter `name` with exactly `labels`, over the whole test binary.
pub fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    let r = recorder();
    let mut totals = r.totals.lock().unwrap();
    for (key, _, _, value) in r.snapshotter.snapshot().into_vec() {
        if let DebugValue::Counter(n) = value {
            let mut l: Vec<(String, String)> = key
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            l.sort();
            *totals.entry((key.key().name().to_owned(), l)).or_default() += n;
        }
    }
    let mut want: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    want.sort();
    totals.get(&(name.to_owned(), want)).copied().unwrap_or(0)
}

/// Polls `counter(name, labels)` until it reaches `at_least` or `within` passes; returns the
/// last value.
pub async fn wait_counter(
    name: &str,
    labels: &[(&str, &str)],
    at_least: u64,
    within: Duration,
) -> u64 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let n = counter(name, labels);
        if n >= at_least || tokio::time::Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Tokens `t0`..`t19` for accounts `p0`..`p19`.
pub fn tokens() -> StaticTokens {
    (0..20).fold(StaticTokens::new(), |t, i| {
        t.with(&format!("t{i}"), &format!("p{i}"))
    })
}

/// A server on 127.0.0.1 with [`tokens`] and `gateway`.
pub async fn start_server(gateway: GatewayConfig) -> Server {
    install_recorder();
    let cert = ServerCert::self_signed(&["localhost"]).unwrap();
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        ZoneConfig::default(),
        cert,
        Arc::new(tokens()),
    );
    config.gateway = gateway;
    Server::start(config).await.unwrap()
}

/// Connects a client with `token`.
pub async fn connect(
    server: &Server,
    token: &str,
    options: &ConnectOptions,
) -> Result<NetClient, mmo_net::NetError> {
    NetClient::connect_with(
        server.local_addr(),
        "localhost",
        ServerTrust::Pinned(server.fingerprint()),
        options,
        ClientConfig::default(),
        token,
    )
    .await
}

/// Pumps `client` until an event matches `want` (returned) or `within` passes (`None`).
pub async fn wait_event(
    client: &mut NetClient,
    within: Duration,
    want: impl Fn(&ClientEvent) -> bool,
) -> Option<ClientEvent> {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        client.pump();
        while let Some(e) = client.poll_event() {
            if want(&e) {
                return Some(e);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// The reason of a `Disconnected` event.
pub fn disconnected(e: &ClientEvent) -> Option<DisconnectReason> {
    match e {
        ClientEvent::Disconnected { reason, .. } => Some(*reason),
        _ => None,
    }
}

/// Logs in with `token` and asserts the welcome arrives within 5 s, then leaves.
pub async fn assert_serves_honest_client(server: &Server, token: &str) {
    let mut client = connect(server, token, &ConnectOptions::default())
        .await
        .expect("an honest client connects");
    let welcome = wait_event(&mut client, Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::Welcome { .. })
    })
    .await;
    assert!(
        welcome.is_some(),
        "the honest client {token} was not welcomed"
    );
    client.disconnect(Duration::from_secs(1)).await;
}

/// A raw quinn connection to `addr`, pinning `pin`, with no session on it.
pub async fn raw_connection(
    addr: SocketAddr,
    pin: Fingerprint,
) -> (quinn::Endpoint, quinn::Connection) {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(
        mmo_net::tls::quic_client_crypto(ServerTrust::Pinned(pin)).unwrap(),
    ));
    let connection = endpoint
        .connect(addr, "localhost")
        .unwrap()
        .await
        .expect("raw handshake");
    (endpoint, connection)
}

/// The application close code a connection ended with (`None` for other ends).
pub async fn close_code(connection: &quinn::Connection, within: Duration) -> Option<u64> {
    match tokio::time::timeout(within, connection.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(close)) => Some(close.error_code.into_inner()),
        Ok(other) => panic!("connection ended otherwise: {other}"),
        Err(_) => None,
    }
}

/// A 200 m x 100 m world centred on the origin and a zone config bounded by it whose
/// players appear 4 m west of x = 0 (the border when the world is cut in two at x = 0 with
/// `WorldLayout::new(world, 2, 1, 30.0)`).
pub fn border_world() -> (Rect, ZoneConfig) {
    let world = Rect::new(Vec2::new(-100.0, -50.0), Vec2::new(100.0, 50.0));
    let mut zone = ZoneConfig {
        spawn_position_m: Vec3::new(-4.0, 0.0, 0.0),
        ..ZoneConfig::default()
    };
    zone.movement.bounds = ZoneBounds {
        min_xy_m: world.min_xy_m,
        max_xy_m: world.max_xy_m,
    };
    (world, zone)
}

/// The template of new characters in a `MemoryStore`: the content's first class and race,
/// its starting kit, at the zone's spawn position.
pub fn character_template(zone: &ZoneConfig) -> mmo_core::persist::CharacterRecord {
    let content = &zone.gameplay.content;
    mmo_core::persist::CharacterRecord {
        character_id: 0,
        account_id: 0,
        name: String::new(),
        race: content.races()[0].id.clone(),
        class: content.classes()[0].id.clone(),
        level: 1,
        experience: 0,
        zone_id: 0,
        position_m: zone.spawn_position_m,
        yaw_rad: 0.0,
        pools: Vec::new(),
        inventory: mmo_core::zone::persistence::starting_inventory(content),
        version: 0,
    }
}

/// A server config on 127.0.0.1 (any port) for `zone` with `tokens` and a fresh
/// self-signed certificate, and the trust that pins it.
pub fn pinned_config(zone: &ZoneConfig, tokens: StaticTokens) -> (ServerConfig, ServerTrust) {
    let cert = ServerCert::self_signed(&["localhost"]).unwrap();
    let trust = ServerTrust::Pinned(cert.fingerprint());
    let config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        zone.clone(),
        cert,
        Arc::new(tokens),
    );
    (config, trust)
}

/// Connects a [`player::Player`] with `token`, predicting with `zone`'s movement rules.
pub async fn connect_player(
    server: &Server,
    trust: ServerTrust,
    zone: &ZoneConfig,
    token: &str,
) -> player::Player {
    let client_config = ClientConfig {
        movement: zone.movement.clone(),
        ..ClientConfig::default()
    };
    let client = NetClient::connect(
        server.local_addr(),
        "localhost",
        trust,
        client_config,
        token,
    )
    .await
    .unwrap();
    player::Player::new(client)
}

/// What runs zones a test can look into: a [`Server`] or a
/// [`mmo_net::relay::ZoneProcess`].
pub trait InspectZones {
    /// How many zones run.
    fn zones(&self) -> usize;
    /// Runs `f` on `zone`'s thread (see `Server::inspect_zone`).
    fn inspect<R: Send + 'static>(
        &self,
        zone: ZoneId,
        f: impl FnOnce(&mmo_core::zone::Zone, &[mmo_core::zone::ConnectionId]) -> R + Send + 'static,
    ) -> impl std::future::Future<Output = Option<R>>;
}

impl InspectZones for Server {
    fn zones(&self) -> usize {
        self.zone_count()
    }
    fn inspect<R: Send + 'static>(
        &self,
        zone: ZoneId,
        f: impl FnOnce(&mmo_core::zone::Zone, &[mmo_core::zone::ConnectionId]) -> R + Send + 'static,
    ) -> impl std::future::Future<Output = Option<R>> {
        self.inspect_zone(zone, f)
    }
}

impl InspectZones for mmo_net::relay::ZoneProcess {
    fn zones(&self) -> usize {
        self.zone_count()
    }
    fn inspect<R: Send + 'static>(
        &self,
        zone: ZoneId,
        f: impl FnOnce(&mmo_core::zone::Zone, &[mmo_core::zone::ConnectionId]) -> R + Send + 'static,
    ) -> impl std::future::Future<Output = Option<R>> {
        self.inspect_zone(zone, f)
    }
}

/// The zone whose thread holds `entity`'s connection, if any.
pub async fn zone_of(server: &impl InspectZones, entity: EntityId) -> Option<ZoneId> {
    for z in 0..server.zones() as u16 {
        let here = server
            .inspect(ZoneId(z), move |zone, ids| {
                ids.iter()
                    .any(|id| zone.connection(*id).and_then(|c| c.entity()) == Some(entity))
            })
            .await
            .unwrap_or(false);
        if here {
            return Some(ZoneId(z));
        }
    }
    None
}
