//! The server's settings and where they come from.
//!
//! Layers, each overriding the one before: built-in safe defaults ([`ServerSettings::default`],
//! which run with no file at all), then an optional TOML file (`--config <FILE>` or
//! `MMO_CONFIG`), then `MMO_*` environment variables, then command-line flags ([`Cli`]).
//! [`load`] merges them and [`ServerSettings::validate`] checks the result; every error names
//! the option and the bad value ([`ConfigError`]), and the binary exits with status 2.
//!
//! The environment layer is read here rather than by clap, so tests can hand it a table
//! instead of the process environment.
//!
//! | flag | env | TOML key | default |
//! |---|---|---|---|
//! | `--config` | `MMO_CONFIG` | - | none |
//! | `--quic-addr` | `MMO_QUIC_ADDR` | `quic_addr` | `0.0.0.0:7777` |
//! | `--http-addr` | `MMO_HTTP_ADDR` | `http_addr` | `127.0.0.1:8080` |
//! | `--data-dir` | `MMO_DATA_DIR` | `data_dir` | `mmo-data` |
//! | `--tick-rate-hz` | `MMO_TICK_RATE_HZ` | `tick_rate_hz` | 30 |
//! | `--max-connections` | `MMO_MAX_CONNECTIONS` | `max_connections` | 5000 |
//! | `--handshake-burst` | `MMO_HANDSHAKE_BURST` | `handshake_burst` | 20 |
//! | `--handshake-refill-per-s` | `MMO_HANDSHAKE_REFILL_PER_S` | `handshake_refill_per_s` | 10 |
//! | `--retry-above-pending-handshakes` | `MMO_RETRY_ABOVE_PENDING_HANDSHAKES` | `retry_above_pending_handshakes` | 256 |
//! | `--udp-buffer-bytes` | `MMO_UDP_BUFFER_BYTES` | `udp_buffer_bytes` | 8388608 (8 MiB) |
//! | `--cert-file` | `MMO_CERT_FILE` | `cert_file` | none (self-signed, kept in `data_dir`) |
//! | `--key-file` | `MMO_KEY_FILE` | `key_file` | none (self-signed) |
//! | `--server-name` | `MMO_SERVER_NAME` | `server_names` | `localhost` |
//! | `--jwt-secret-file` | `MMO_JWT_SECRET_FILE` | `jwt_secret_file` | `<data_dir>/jwt_secret` |
//! | `--token-ttl-s` | `MMO_TOKEN_TTL_S` | `token_ttl_s` | 900 |
//! | `--dev-open-login` | `MMO_DEV_OPEN_LOGIN` | `dev_open_login` | false |
//! | - | `MMO_DEV_ACCOUNTS` (`name:pw,..`) | `[[dev_accounts]]` | none |
//! | `--log-format` | `MMO_LOG_FORMAT` | `log_format` | `text` |
//! | - | - | `[world]` | 4000 x 4000 m, 1 x 1 zones, 30 m border |
//! | `--content-file` | `MMO_CONTENT_FILE` | `[gameplay] content_file` | the built-in content |
//! | `--kick-above-strikes` | `MMO_KICK_ABOVE_STRIKES` | `[gameplay] kick_above_strikes` | 20 |
//! | `--spawn-spread-m` | `MMO_SPAWN_SPREAD_M` | `[gameplay] spawn_spread_m` | 0 (everyone at the spawn point) |
//! | `--replication-threads` | `MMO_REPLICATION_THREADS` | `[zone] replication_threads` | 0 (auto: one per zone plus its share of the cores the zone threads leave) |
//! | `--snapshot-budget-bytes-per-s` | `MMO_SNAPSHOT_BUDGET_BYTES_PER_S` | `[zone] snapshot_budget_bytes_per_s` | 10000 (snapshot payload per client; egress is most of a fleet's cost) |
//! | `--input-drain-after-ticks` | `MMO_INPUT_DRAIN_AFTER_TICKS` | `[zone] input_drain_after_ticks` | 30 (a player's input queue holding an input after every tick this long takes one extra; 0: never) |
//! | `--database-url` | `MMO_DATABASE_URL` | `[storage] database_url` | SQLite in `<data_dir>/mmo.db` |
//! | `--save-interval-s` | `MMO_SAVE_INTERVAL_S` | `[storage] save_interval_s` | 30 |
//! | `--redis-url` | `MMO_REDIS_URL` | `[chat] redis_url` | none (in-process chat) |
//! | - | `MMO_CHAT_REDIS_PREFIX` | `[chat] redis_prefix` | `mmo` |
//! | `--logins-per-address-per-min` | `MMO_LOGINS_PER_ADDRESS_PER_MIN` | `[accounts] logins_per_address_per_min` | 60 |
//! | `--role` | `MMO_ROLE` | `[fleet] role` | `all` (see [`crate::fleet_settings`]) |
//! | `--nats-url` | `MMO_NATS_URL` | `[fleet] nats_url` | none (needed by `gateway` and `zone`) |
//! | `--world` | `MMO_WORLD` | `[fleet] world` | `default` |
//! | `--nats-user` | `MMO_NATS_USER` | `[fleet] nats_user` | none |
//! | `--nats-password-file` | `MMO_NATS_PASSWORD_FILE` | `[fleet] nats_password_file` | none |
//! | `--nats-ca-file` | `MMO_NATS_CA_FILE` | `[fleet] nats_ca_file` | none (plain TCP) |
//! | `--zones` | `MMO_ZONES` | `[fleet] zones` | all zones of the layout (zone role only; comma-separated ids, or `auto`: one zone no other process runs, waiting as a spare until one is free) |
//! | `--agones` | `MMO_AGONES` | `[fleet] agones` | false (zone role: report to the Agones SDK sidecar) |
//! | `--max-players` | `MMO_MAX_PLAYERS` | `[fleet] max_players` | none: no login queue (gateway role with `--redis-url`) |
//! | `--shard-cap` | `MMO_SHARD_CAP` | `[fleet] shard_cap` | 900 for gateways, none for zone processes (gateway and zone roles with `--redis-url`: sessions per shard; gateways place new logins by it and ask for a new lane when the home zone's shards are full; zone processes given it merge a shard nobody needs by it) |
//! | `--shard-merge-after-s` | `MMO_SHARD_MERGE_AFTER_S` | `[fleet] shard_merge_after_s` | 60 (zone role: seconds a shard must have been mergeable before its players move to another shard and it is given back) |
//! | `--public-quic-addr` | `MMO_PUBLIC_QUIC_ADDR` | `[fleet] public_quic_addr` | the bound QUIC address (gateway role) |
//!
//! The other keys of `[storage]`, `[accounts]` and `[chat]` are in
//! [`crate::service_settings`].
//! | - | - | `[gameplay]` | class and race of new characters: the content's first; strikes forgiven one per 5000 ms; rewind clamp 400 ms |
//!
//! The gateway settings (`max_connections`, `handshake_burst`, `handshake_refill_per_s`,
//! `retry_above_pending_handshakes`, `udp_buffer_bytes`) become the QUIC endpoint's
//! [`mmo_net::gateway::GatewayConfig`] (see [`crate::app::gateway_config`]): the connection
//! cap (past it, clients are refused with `ServerFull`), the per-address handshake rate (a
//! token bucket: `handshake_burst` at once, `handshake_refill_per_s` sustained; a load test
//! running many bots from one address must raise both), the number of handshakes in
//! progress past which unvalidated addresses must answer a QUIC Retry (0: always), and the
//! UDP socket buffers asked of the OS.
//!
//! `[world]` cuts the world into zones, each on its own thread (see [`crate::zones`]).
//!
//! `[gameplay]` names the content file (classes, abilities, items; format in
//! `mmo_core::gameplay::content`; loaded and validated at start, an error names the file and
//! the entry), the class and race of new characters (until accounts own characters), and the
//! anti-cheat policy: a player with more than `kick_above_strikes` strikes is kicked (0: never),
//! one strike is forgiven per `strike_forgive_ms`; `max_rewind_ms` clamps lag compensation.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use mmo_core::time::TickRate;

pub use crate::service_settings::{AccountSettings, ChatSettings, StorageSettings};
use serde::{Deserialize, Serialize};

/// Longest account name accepted anywhere (dev accounts, login requests), bytes.
pub const MAX_ACCOUNT_NAME_BYTES: usize = 64;
/// Longest password accepted anywhere, bytes.
pub const MAX_PASSWORD_BYTES: usize = 256;
/// Longest token lifetime, seconds (one day).
pub const MAX_TOKEN_TTL_S: u64 = 86_400;
/// Most concurrent connections that can be configured.
pub const MAX_MAX_CONNECTIONS: u32 = 1_000_000;
/// Most zone columns or rows.
pub const MAX_ZONE_GRID: u32 = 64;
/// Most handshakes per address that can be configured (burst, or per second).
pub const MAX_HANDSHAKE_RATE: u32 = 1_000_000;
/// Most handshakes in progress that can be configured as the Retry threshold.
pub const MAX_RETRY_ABOVE_PENDING_HANDSHAKES: u32 = 1_000_000;
/// Smallest UDP socket buffer that can be asked for, bytes (64 KiB).
pub const MIN_UDP_BUFFER_BYTES: u64 = 64 << 10;
/// Largest UDP socket buffer that can be asked for, bytes (1 GiB).
pub const MAX_UDP_BUFFER_BYTES: u64 = 1 << 30;

/// How log records are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected `text` or `json`".into()),
        }
    }
}

/// An account that may log in with a fixed password (development and tests; real accounts
/// live in a database, not done yet).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevAccount {
    /// Account name (1..=64 bytes: letters, digits, `_`, `-`, `.`).
    pub name: String,
    /// Its password (1..=256 bytes).
    pub password: String,
}

impl std::fmt::Debug for DevAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is never printed.
        f.debug_struct("DevAccount")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The world's extent (centred on the origin) and how it is cut into zones, each simulated
/// on its own thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorldSettings {
    /// World size along X and Y, metres (each > 0 and finite).
    pub size_m: [f32; 2],
    /// Zones along X (1..=64).
    pub zone_columns: u32,
    /// Zones along Y (1..=64).
    pub zone_rows: u32,
    /// Width of the band along a zone border where neighbours see each other, metres
    /// (>= 0, less than half a zone's width and height).
    pub border_m: f32,
}

impl Default for WorldSettings {
    fn default() -> Self {
        WorldSettings {
            size_m: [4000.0, 4000.0],
            zone_columns: 1,
            zone_rows: 1,
            border_m: 30.0,
        }
    }
}

/// Per-zone settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZoneSettings {
    /// Threads that replicate one zone's connections each tick, the zone's own thread
    /// included (0..=64). 0: automatic, the zone's thread plus its share of the cores left
    /// over by the zone threads (`1 + (cores - zones) / zones`; zones replicate on the same
    /// schedule, so the spare cores are split between them).
    pub replication_threads: u32,
    /// Ticks in a row a player's input queue may keep an input after each tick before the
    /// next tick takes one extra (0..=600; 0: never): a standing backlog is a tick of
    /// latency that absorbs no jitter (`mmo_core::session::input_queue`). Smaller drains
    /// sooner and makes characters change pace more often.
    pub input_drain_after_ticks: u32,
    /// Long-run snapshot payload budget per client, bytes per second
    /// ([`MIN_SNAPSHOT_BUDGET_BYTES_PER_S`]..=[`MAX_SNAPSHOT_BUDGET_BYTES_PER_S`]). Each
    /// client also receives QUIC's overhead on top (about 1,600 B/s measured at 30 Hz).
    /// Fewer bytes mean far entities refresh less often; egress is most of what a fleet
    /// costs (`docs/performance.md`, "Fleet capacity").
    pub snapshot_budget_bytes_per_s: u32,
}

/// Smallest `[zone] snapshot_budget_bytes_per_s`: about 66 bytes a tick at 30 Hz.
pub const MIN_SNAPSHOT_BUDGET_BYTES_PER_S: u32 = 2_000;
/// Largest `[zone] snapshot_budget_bytes_per_s`.
pub const MAX_SNAPSHOT_BUDGET_BYTES_PER_S: u32 = 1_000_000;

impl Default for ZoneSettings {
    fn default() -> Self {
        ZoneSettings {
            replication_threads: 0,
            snapshot_budget_bytes_per_s: mmo_core::replication::ReplicationConfig::default()
                .budget_bytes_per_s,
            input_drain_after_ticks: mmo_core::session::input_queue::InputQueueConfig::default()
                .drain_after_ticks,
        }
    }
}

/// Largest `[zone] input_drain_after_ticks` (20 s at 30 Hz).
pub const MAX_INPUT_DRAIN_AFTER_TICKS: u32 = 600;

impl ZoneSettings {
    /// The thread count for a world of `zone_threads` zones on `cores` usable cores.
    #[must_use]
    pub fn replication_threads_for(&self, zone_threads: usize, cores: usize) -> usize {
        match self.replication_threads {
            0 => (1 + cores.saturating_sub(zone_threads) / zone_threads.max(1)).clamp(1, 64),
            n => n as usize,
        }
    }
}

/// Gameplay settings: content, new characters, anti-cheat, lag compensation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GameplaySettings {
    /// Content TOML file; `None`: the content built into the server.
    pub content_file: Option<PathBuf>,
    /// Class id of new characters; empty: the content's first class.
    pub class: String,
    /// Race id of new characters; empty: the content's first race.
    pub race: String,
    /// Kick a player with more strikes than this (0: never kick).
    pub kick_above_strikes: u32,
    /// One strike is forgiven per this many ms (0: never).
    pub strike_forgive_ms: u32,
    /// Furthest a target is rewound for hit validation, ms (0..=1000).
    pub max_rewind_ms: u32,
    /// New characters start within this many metres of the spawn point (0..=10000; 0:
    /// all at the point), at a place chosen from the account or character name (see
    /// [`crate::spawn_area`]).
    pub spawn_spread_m: f32,
}

impl Default for GameplaySettings {
    fn default() -> Self {
        GameplaySettings {
            content_file: None,
            class: String::new(),
            race: String::new(),
            kick_above_strikes: 20,
            strike_forgive_ms: 5_000,
            max_rewind_ms: 400,
            spawn_spread_m: 0.0,
        }
    }
}

/// Longest rewind clamp that can be configured, ms.
pub const MAX_REWIND_MS: u32 = 1_000;

impl GameplaySettings {
    /// Loads and validates the content and the character defaults; errors name the option,
    /// the file and the offending entry.
    pub fn load(&self) -> Result<mmo_core::zone::ZoneGameplayConfig, ConfigError> {
        use mmo_core::gameplay::content::{ClassId, Content, RaceId};
        let content = match &self.content_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    error(
                        "gameplay.content_file",
                        path.display(),
                        format!("cannot read: {e}"),
                    )
                })?;
                Content::from_toml(&text).map_err(|e| {
                    error(
                        "gameplay.content_file",
                        path.display(),
                        format!("invalid content: {e}"),
                    )
                })?
            }
            None => Content::default_content().map_err(|e| {
                error(
                    "gameplay.content_file",
                    "<built-in>",
                    format!("invalid content: {e}"),
                )
            })?,
        };
        let class = if self.class.is_empty() {
            ClassId(0)
        } else {
            content.class_id(&self.class).ok_or_else(|| {
                error(
                    "gameplay.class",
                    &self.class,
                    "no such class in the content",
                )
            })?
        };
        let race = if self.race.is_empty() {
            RaceId(0)
        } else {
            content
                .race_id(&self.race)
                .ok_or_else(|| error("gameplay.race", &self.race, "no such race in the content"))?
        };
        if self.max_rewind_ms > MAX_REWIND_MS {
            return Err(error(
                "gameplay.max_rewind_ms",
                self.max_rewind_ms,
                format!("must be within 0..={MAX_REWIND_MS}"),
            ));
        }
        let config = mmo_core::zone::ZoneGameplayConfig {
            content: std::sync::Arc::new(content),
            class,
            race,
            max_rewind_ms: self.max_rewind_ms,
            strikes: mmo_core::gameplay::strikes::StrikeConfig {
                kick_above: self.kick_above_strikes,
                forgive_interval_ms: self.strike_forgive_ms,
            },
            ..mmo_core::zone::ZoneGameplayConfig::default()
        };
        config.validate().map_err(|m| error("gameplay", "-", m))?;
        Ok(config)
    }
}

/// Every setting of the server. See the module docs for the sources and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// UDP address of the QUIC endpoint.
    pub quic_addr: SocketAddr,
    /// TCP address of the HTTP endpoint (login, metrics, health).
    pub http_addr: SocketAddr,
    /// Directory for the generated certificate and JWT secret; created if missing.
    pub data_dir: PathBuf,
    /// Simulation rate, Hz (within [`TickRate::MIN_HZ`]..=[`TickRate::MAX_HZ`]).
    pub tick_rate_hz: u32,
    /// Open connections at most, handshaking ones included (1..=1,000,000); past it a
    /// client is refused with `ServerFull`.
    pub max_connections: u32,
    /// Handshakes one address (IPv4, or IPv6 /64) may start at once after a quiet period
    /// (1..=1,000,000).
    pub handshake_burst: u32,
    /// Handshakes per second one address may start, sustained (1..=1,000,000). Attempts
    /// over the rate are ignored (the client's handshake times out).
    pub handshake_refill_per_s: u32,
    /// Handshakes in progress from which on an unvalidated address must answer a QUIC
    /// Retry first (0..=1,000,000; 0: always).
    pub retry_above_pending_handshakes: u32,
    /// Size asked for the UDP socket's receive and send buffers, bytes (64 KiB..=1 GiB; the
    /// OS may grant less, and the server warns then).
    pub udp_buffer_bytes: u64,
    /// Operator certificate chain, PEM. Set together with `key_file`, or neither (then a
    /// self-signed certificate is generated once and kept in `data_dir`).
    pub cert_file: Option<PathBuf>,
    /// Operator private key, PEM.
    pub key_file: Option<PathBuf>,
    /// Names (DNS or IP) of a generated self-signed certificate; at least one.
    pub server_names: Vec<String>,
    /// HMAC secret of the login tokens (file content as is, at least 32 bytes; a configured
    /// file must exist). `None`: `<data_dir>/jwt_secret`, generated (32 random bytes, mode
    /// 0600) when missing.
    pub jwt_secret_file: Option<PathBuf>,
    /// Lifetime of issued tokens, seconds (1..=86400).
    pub token_ttl_s: u64,
    /// Development only: any account name logs in with the password `dev_password`.
    pub dev_open_login: bool,
    /// Accounts with fixed passwords (development and tests).
    pub dev_accounts: Vec<DevAccount>,
    /// Log format on stderr.
    pub log_format: LogFormat,
    /// World layout.
    pub world: WorldSettings,
    /// Per-zone settings (replication threads).
    pub zone: ZoneSettings,
    /// Content, new characters, anti-cheat.
    pub gameplay: GameplaySettings,
    /// Database and saving.
    pub storage: StorageSettings,
    /// Accounts, passwords, tokens, login limits.
    pub accounts: AccountSettings,
    /// Chat channels, limits, Redis.
    pub chat: ChatSettings,
    /// This process's role in the fleet and the NATS server between the roles.
    pub fleet: crate::fleet_settings::FleetSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            quic_addr: SocketAddr::from(([0, 0, 0, 0], 7777)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("mmo-data"),
            tick_rate_hz: TickRate::DEFAULT.hz(),
            max_connections: 5000,
            handshake_burst: 20,
            handshake_refill_per_s: 10,
            retry_above_pending_handshakes: 256,
            udp_buffer_bytes: 8 << 20,
            cert_file: None,
            key_file: None,
            server_names: vec!["localhost".to_owned()],
            jwt_secret_file: None,
            token_ttl_s: 900,
            dev_open_login: false,
            dev_accounts: Vec::new(),
            log_format: LogFormat::Text,
            world: WorldSettings::default(),
            zone: ZoneSettings::default(),
            gameplay: GameplaySettings::default(),
            storage: StorageSettings::default(),
            accounts: AccountSettings::default(),
            chat: ChatSettings::default(),
            fleet: crate::fleet_settings::FleetSettings::default(),
        }
    }
}

/// A setting with a bad value, or a source that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The option, in all the spellings it has (`--tick-rate-hz / MMO_TICK_RATE_HZ /
    /// tick_rate_hz`), or the file.
    pub option: String,
    /// The offending value as given (passwords are never shown).
    pub value: String,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid value '{}' for {}: {}",
            self.value, self.option, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// The spellings of an option: flag (if any), environment variable, TOML key.
fn option_name(key: &str) -> String {
    let env = format!("MMO_{}", key.to_ascii_uppercase());
    match key {
        "dev_accounts" => "MMO_DEV_ACCOUNTS / [[dev_accounts]]".to_owned(),
        "server_names" => "--server-name / MMO_SERVER_NAME / server_names".to_owned(),
        k if k.starts_with("world.") => format!("[world] {}", &k["world.".len()..]),
        "gameplay.content_file" => {
            "--content-file / MMO_CONTENT_FILE / [gameplay] content_file".to_owned()
        }
        "zone.replication_threads" | "replication_threads" => {
            "--replication-threads / MMO_REPLICATION_THREADS / [zone] replication_threads"
                .to_owned()
        }
        "zone.snapshot_budget_bytes_per_s" | "snapshot_budget_bytes_per_s" => {
            "--snapshot-budget-bytes-per-s / MMO_SNAPSHOT_BUDGET_BYTES_PER_S / [zone] \
             snapshot_budget_bytes_per_s"
                .to_owned()
        }
        "zone.input_drain_after_ticks" | "input_drain_after_ticks" => {
            "--input-drain-after-ticks / MMO_INPUT_DRAIN_AFTER_TICKS / [zone] \
             input_drain_after_ticks"
                .to_owned()
        }
        "gameplay.spawn_spread_m" | "spawn_spread_m" => {
            "--spawn-spread-m / MMO_SPAWN_SPREAD_M / [gameplay] spawn_spread_m".to_owned()
        }
        "gameplay.kick_above_strikes" | "kick_above_strikes" => {
            "--kick-above-strikes / MMO_KICK_ABOVE_STRIKES / [gameplay] kick_above_strikes"
                .to_owned()
        }
        k if k.starts_with("gameplay") => {
            format!("[gameplay] {}", k.trim_start_matches("gameplay."))
        }
        "storage.database_url" | "database_url" => {
            "--database-url / MMO_DATABASE_URL / [storage] database_url".to_owned()
        }
        "storage.save_interval_s" | "save_interval_s" => {
            "--save-interval-s / MMO_SAVE_INTERVAL_S / [storage] save_interval_s".to_owned()
        }
        "chat.redis_url" | "redis_url" => {
            "--redis-url / MMO_REDIS_URL / [chat] redis_url".to_owned()
        }
        "chat.redis_prefix" | "chat_redis_prefix" => {
            "MMO_CHAT_REDIS_PREFIX / [chat] redis_prefix".to_owned()
        }
        "fleet.role" | "role" => "--role / MMO_ROLE / [fleet] role".to_owned(),
        "fleet.nats_url" | "nats_url" => "--nats-url / MMO_NATS_URL / [fleet] nats_url".to_owned(),
        "fleet.world" | "world_name" => "--world / MMO_WORLD / [fleet] world".to_owned(),
        "fleet.nats_user" | "nats_user" => "--nats-user / MMO_NATS_USER / [fleet] nats_user".to_owned(),
        "fleet.nats_password_file" | "nats_password_file" => {
            "--nats-password-file / MMO_NATS_PASSWORD_FILE / [fleet] nats_password_file".to_owned()
        }
        "fleet.nats_ca_file" | "nats_ca_file" => {
            "--nats-ca-file / MMO_NATS_CA_FILE / [fleet] nats_ca_file".to_owned()
        }
        "fleet.zones" | "zones" => "--zones / MMO_ZONES / [fleet] zones".to_owned(),
        "fleet.agones" | "agones" => "--agones / MMO_AGONES / [fleet] agones".to_owned(),
        "fleet.max_players" | "max_players" => {
            "--max-players / MMO_MAX_PLAYERS / [fleet] max_players".to_owned()
        }
        "fleet.shard_cap" | "shard_cap" => {
            "--shard-cap / MMO_SHARD_CAP / [fleet] shard_cap".to_owned()
        }
        "fleet.shard_merge_after_s" | "shard_merge_after_s" => {
            "--shard-merge-after-s / MMO_SHARD_MERGE_AFTER_S / [fleet] shard_merge_after_s"
                .to_owned()
        }
        "fleet.public_quic_addr" | "public_quic_addr" => {
            "--public-quic-addr / MMO_PUBLIC_QUIC_ADDR / [fleet] public_quic_addr".to_owned()
        }
        "accounts.logins_per_address_per_min" | "logins_per_address_per_min" => {
            "--logins-per-address-per-min / MMO_LOGINS_PER_ADDRESS_PER_MIN / [accounts] logins_per_address_per_min".to_owned()
        }
        k if k.contains('.') => {
            let (section, key) = k.split_once('.').unwrap_or(("", k));
            format!("[{section}] {key}")
        }
        k => format!("--{} / {env} / {k}", k.replace('_', "-")),
    }
}

pub(crate) fn error(
    key: &str,
    value: impl std::fmt::Display,
    message: impl Into<String>,
) -> ConfigError {
    ConfigError {
        option: option_name(key),
        value: value.to_string(),
        message: message.into(),
    }
}

/// Whether `name` is an acceptable account name (1..=64 bytes of letters, digits, `_`,
/// `-`, `.`).
#[must_use]
pub fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ACCOUNT_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl ServerSettings {
    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        TickRate::new(self.tick_rate_hz).map_err(|_| {
            error(
                "tick_rate_hz",
                self.tick_rate_hz,
                format!(
                    "must be within {}..={} Hz",
                    TickRate::MIN_HZ,
                    TickRate::MAX_HZ
                ),
            )
        })?;
        if self.max_connections == 0 || self.max_connections > MAX_MAX_CONNECTIONS {
            return Err(error(
                "max_connections",
                self.max_connections,
                format!("must be within 1..={MAX_MAX_CONNECTIONS}"),
            ));
        }
        for (key, value) in [
            ("handshake_burst", self.handshake_burst),
            ("handshake_refill_per_s", self.handshake_refill_per_s),
        ] {
            if value == 0 || value > MAX_HANDSHAKE_RATE {
                return Err(error(
                    key,
                    value,
                    format!("must be within 1..={MAX_HANDSHAKE_RATE}"),
                ));
            }
        }
        if self.retry_above_pending_handshakes > MAX_RETRY_ABOVE_PENDING_HANDSHAKES {
            return Err(error(
                "retry_above_pending_handshakes",
                self.retry_above_pending_handshakes,
                format!(
                    "must be within 0..={MAX_RETRY_ABOVE_PENDING_HANDSHAKES} (0: always Retry)"
                ),
            ));
        }
        if !(MIN_UDP_BUFFER_BYTES..=MAX_UDP_BUFFER_BYTES).contains(&self.udp_buffer_bytes) {
            return Err(error(
                "udp_buffer_bytes",
                self.udp_buffer_bytes,
                format!(
                    "must be within {MIN_UDP_BUFFER_BYTES}..={MAX_UDP_BUFFER_BYTES} bytes (64 KiB..=1 GiB)"
                ),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(error("data_dir", "(empty)", "must not be empty"));
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), Some(_)) | (None, None) => {}
            (Some(c), None) => {
                return Err(error(
                    "key_file",
                    "(unset)",
                    format!(
                        "missing: --cert-file {} is set, so --key-file is needed too",
                        c.display()
                    ),
                ));
            }
            (None, Some(k)) => {
                return Err(error(
                    "cert_file",
                    "(unset)",
                    format!(
                        "missing: --key-file {} is set, so --cert-file is needed too",
                        k.display()
                    ),
                ));
            }
        }
        if self.server_names.is_empty() {
            return Err(error(
                "server_names",
                "(empty)",
                "at least one name is needed",
            ));
        }
        if let Some(bad) = self
            .server_names
            .iter()
            .find(|n| n.is_empty() || n.len() > 253 || n.contains(char::is_whitespace))
        {
            return Err(error(
                "server_names",
                bad,
                "a DNS name or IP address (1..=253 characters, no spaces)",
            ));
        }
        if self.token_ttl_s == 0 || self.token_ttl_s > MAX_TOKEN_TTL_S {
            return Err(error(
                "token_ttl_s",
                self.token_ttl_s,
                format!("must be within 1..={MAX_TOKEN_TTL_S} seconds"),
            ));
        }
        let mut names = BTreeSet::new();
        for account in &self.dev_accounts {
            if !valid_account_name(&account.name) {
                return Err(error(
                    "dev_accounts",
                    &account.name,
                    format!(
                        "an account name is 1..={MAX_ACCOUNT_NAME_BYTES} bytes of letters, digits, `_`, `-`, `.`"
                    ),
                ));
            }
            if account.password.is_empty() || account.password.len() > MAX_PASSWORD_BYTES {
                return Err(error(
                    "dev_accounts",
                    &account.name,
                    format!("the password must be 1..={MAX_PASSWORD_BYTES} bytes"),
                ));
            }
            if !names.insert(account.name.as_str()) {
                return Err(error("dev_accounts", &account.name, "listed twice"));
            }
        }
        self.world.validate()?;
        let spread = self.gameplay.spawn_spread_m;
        if !(spread.is_finite() && (0.0..=crate::spawn_area::MAX_SPREAD_M).contains(&spread)) {
            return Err(error(
                "gameplay.spawn_spread_m",
                spread,
                format!(
                    "must be a number within 0..={} metres",
                    crate::spawn_area::MAX_SPREAD_M
                ),
            ));
        }
        if self.zone.replication_threads > 64 {
            return Err(error(
                "zone.replication_threads",
                self.zone.replication_threads,
                "must be within 0..=64 (0: automatic)",
            ));
        }
        if !(MIN_SNAPSHOT_BUDGET_BYTES_PER_S..=MAX_SNAPSHOT_BUDGET_BYTES_PER_S)
            .contains(&self.zone.snapshot_budget_bytes_per_s)
        {
            return Err(error(
                "zone.snapshot_budget_bytes_per_s",
                self.zone.snapshot_budget_bytes_per_s,
                format!(
                    "must be within \
                     {MIN_SNAPSHOT_BUDGET_BYTES_PER_S}..={MAX_SNAPSHOT_BUDGET_BYTES_PER_S} bytes/s"
                ),
            ));
        }
        if self.zone.input_drain_after_ticks > MAX_INPUT_DRAIN_AFTER_TICKS {
            return Err(error(
                "zone.input_drain_after_ticks",
                self.zone.input_drain_after_ticks,
                format!("must be within 0..={MAX_INPUT_DRAIN_AFTER_TICKS} (0: never)"),
            ));
        }
        self.storage.validate()?;
        self.accounts.validate()?;
        self.chat.validate()?;
        self.fleet.validate()?;
        if self.fleet.role == crate::fleet_settings::Role::Zone && self.chat.redis_url.is_none() {
            return Err(error(
                "redis_url",
                "(none)",
                "the zone role needs Redis: the fleet's directory, where it holds a lease on each zone it runs",
            ));
        }
        if let Some(max) = self.fleet.max_players
            && self.chat.redis_url.is_none()
        {
            return Err(error(
                "fleet.max_players",
                max,
                "the login queue is kept in Redis: set --redis-url too",
            ));
        }
        self.gameplay.load().map(|_| ())
    }

    /// The JWT secret file: the configured one, or `<data_dir>/jwt_secret`.
    #[must_use]
    pub fn jwt_secret_path(&self) -> PathBuf {
        self.jwt_secret_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("jwt_secret"))
    }

    /// The validated tick rate (call [`ServerSettings::validate`] first; falls back to the
    /// default for an invalid value).
    #[must_use]
    pub fn tick_rate(&self) -> TickRate {
        TickRate::new(self.tick_rate_hz).unwrap_or(TickRate::DEFAULT)
    }
}

impl WorldSettings {
    /// Checks the world layout; the error names the bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let [x, y] = self.size_m;
        if !(x.is_finite() && y.is_finite() && x > 0.0 && y > 0.0) {
            return Err(error(
                "world.size_m",
                format!("[{x}, {y}]"),
                "both sizes must be finite and > 0 metres",
            ));
        }
        for (key, n) in [
            ("world.zone_columns", self.zone_columns),
            ("world.zone_rows", self.zone_rows),
        ] {
            if n == 0 || n > MAX_ZONE_GRID {
                return Err(error(key, n, format!("must be within 1..={MAX_ZONE_GRID}")));
            }
        }
        let zone_x_m = x / self.zone_columns as f32;
        let zone_y_m = y / self.zone_rows as f32;
        let limit_m = zone_x_m.min(zone_y_m) / 2.0;
        if !(self.border_m.is_finite() && self.border_m >= 0.0 && self.border_m < limit_m) {
            return Err(error(
                "world.border_m",
                self.border_m,
                format!(
                    "must be >= 0 and less than half a zone ({zone_x_m} x {zone_y_m} m), so < {limit_m} m"
                ),
            ));
        }
        Ok(())
    }
}

/// The command line. Every option also has an environment variable and a TOML key (see the
/// module docs); flags override both.
#[derive(Clone, Debug, Default, Parser)]
#[command(
    name = "mmo-server",
    version,
    about = "MMO Netcore dedicated server: QUIC game endpoint, HTTP login, metrics and health",
    after_help = "Precedence: built-in defaults < TOML file < MMO_* environment < flags.\n\
                  Dev accounts: TOML [[dev_accounts]] name = \"..\", password = \"..\", or \
                  MMO_DEV_ACCOUNTS=\"alice:pw1,bob:pw2\".\n\
                  World layout: TOML [world] size_m = [4000, 4000], zone_columns = 1, \
                  zone_rows = 1, border_m = 30 (one thread per zone).\n\
                  Gameplay: TOML [gameplay] content_file, class, race, kick_above_strikes = 20, \
                  strike_forgive_ms = 5000, max_rewind_ms = 400.\n\
                  Once both listeners are bound, one line is printed on stdout:\n\
                  MMO_SERVER_READY quic=<addr> http=<addr> fingerprint=<hex>\n\
                  Logs go to stderr; RUST_LOG sets the filter (default info)."
)]
pub struct Cli {
    /// TOML settings file [env: MMO_CONFIG] [default: none]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// UDP address of the QUIC game endpoint [env: MMO_QUIC_ADDR] [default: 0.0.0.0:7777]
    #[arg(long, value_name = "ADDR")]
    pub quic_addr: Option<SocketAddr>,
    /// TCP address of the HTTP endpoint: /v1/login, /metrics, /healthz, /readyz
    /// [env: MMO_HTTP_ADDR] [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Directory for the generated certificate and JWT secret, created if missing
    /// [env: MMO_DATA_DIR] [default: mmo-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Simulation rate, 10..=60 Hz [env: MMO_TICK_RATE_HZ] [default: 30]
    #[arg(long, value_name = "HZ")]
    pub tick_rate_hz: Option<u32>,
    /// Open connections at most (handshaking ones included), 1..=1000000; past it clients
    /// are refused with ServerFull [env: MMO_MAX_CONNECTIONS] [default: 5000]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<u32>,
    /// Handshakes one address (IPv4, or IPv6 /64) may start at once, 1..=1000000; raise it
    /// for load tests from one address [env: MMO_HANDSHAKE_BURST] [default: 20]
    #[arg(long, value_name = "N")]
    pub handshake_burst: Option<u32>,
    /// Handshakes per second one address may start, sustained, 1..=1000000; attempts over
    /// the rate are ignored [env: MMO_HANDSHAKE_REFILL_PER_S] [default: 10]
    #[arg(long = "handshake-refill-per-s", value_name = "N")]
    pub handshake_refill_per_s: Option<u32>,
    /// Handshakes in progress from which on unvalidated addresses must answer a QUIC Retry,
    /// 0..=1000000 (0: always) [env: MMO_RETRY_ABOVE_PENDING_HANDSHAKES] [default: 256]
    #[arg(long, value_name = "N")]
    pub retry_above_pending_handshakes: Option<u32>,
    /// UDP socket receive and send buffer size asked of the OS, 65536..=1073741824 bytes
    /// (Linux caps it at net.core.rmem_max / wmem_max; a warning says so)
    /// [env: MMO_UDP_BUFFER_BYTES] [default: 8388608 (8 MiB)]
    #[arg(long, value_name = "BYTES")]
    pub udp_buffer_bytes: Option<u64>,
    /// Operator certificate chain, PEM; needs --key-file [env: MMO_CERT_FILE]
    /// [default: none: a self-signed certificate generated once and kept as
    /// DATA_DIR/server.crt.pem and DATA_DIR/server.key.pem]
    #[arg(long, value_name = "FILE")]
    pub cert_file: Option<PathBuf>,
    /// Operator private key, PEM; needs --cert-file [env: MMO_KEY_FILE] [default: none]
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Names of the self-signed certificate (repeat or comma-separate)
    /// [env: MMO_SERVER_NAME] [default: localhost]
    #[arg(long = "server-name", value_name = "NAME", value_delimiter = ',')]
    pub server_names: Vec<String>,
    /// HMAC secret of login tokens (at least 32 bytes; must exist) [env: MMO_JWT_SECRET_FILE]
    /// [default: DATA_DIR/jwt_secret, generated with mode 0600 if missing]
    #[arg(long, value_name = "FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// Lifetime of issued login tokens, 1..=86400 s [env: MMO_TOKEN_TTL_S] [default: 900]
    #[arg(long = "token-ttl-s", value_name = "SECONDS")]
    pub token_ttl_s: Option<u64>,
    /// DEVELOPMENT ONLY: any username logs in with the password `dev_password`
    /// [env: MMO_DEV_OPEN_LOGIN] [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub dev_open_login: Option<bool>,
    /// Log format on stderr [env: MMO_LOG_FORMAT] [default: text]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Gameplay content TOML (classes, abilities, items) [env: MMO_CONTENT_FILE]
    /// [default: built in]
    #[arg(long, value_name = "FILE")]
    pub content_file: Option<PathBuf>,
    /// Kick a player with more anti-cheat strikes than this; 0 never kicks
    /// [env: MMO_KICK_ABOVE_STRIKES] [default: 20]
    #[arg(long, value_name = "N")]
    pub kick_above_strikes: Option<u32>,
    /// New characters start within this many metres of the spawn point, 0..=10000
    /// [env: MMO_SPAWN_SPREAD_M] [default: 0]
    #[arg(long, value_name = "M")]
    pub spawn_spread_m: Option<f32>,
    /// Threads replicating one zone's connections, the zone's thread included, 0..=64;
    /// 0: one plus the zone's share of the cores the zone threads leave
    /// [env: MMO_REPLICATION_THREADS] [default: 0]
    #[arg(long, value_name = "N")]
    pub replication_threads: Option<u32>,
    /// Ticks a player's input queue may keep an input after every tick before the next
    /// takes one extra, 0..=600; 0: never [env: MMO_INPUT_DRAIN_AFTER_TICKS] [default: 30]
    #[arg(long, value_name = "TICKS")]
    pub input_drain_after_ticks: Option<u32>,
    /// Snapshot payload budget per client, 2000..=1000000 bytes/s
    /// [env: MMO_SNAPSHOT_BUDGET_BYTES_PER_S] [default: 10000]
    #[arg(long, value_name = "BYTES")]
    pub snapshot_budget_bytes_per_s: Option<u32>,
    /// Database: sqlite://<path> or postgres://user:pass@host:port/db
    /// [env: MMO_DATABASE_URL] [default: SQLite in <data_dir>/mmo.db]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Dirty characters are saved this often, 1..=3600 s [env: MMO_SAVE_INTERVAL_S]
    /// [default: 30]
    #[arg(long = "save-interval-s", value_name = "SECONDS")]
    pub save_interval_s: Option<u64>,
    /// Redis for cross-process chat and presence, and the fleet's directory (needed by the
    /// zone role), redis://host:port/ [env: MMO_REDIS_URL] [default: none, in-process chat]
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Login attempts one IP address may make per minute, 1..=100000 (load tests from one
    /// address raise it) [env: MMO_LOGINS_PER_ADDRESS_PER_MIN] [default: 60]
    #[arg(long = "logins-per-address-per-min", value_name = "N")]
    pub logins_per_address_per_min: Option<u32>,
    /// This process's role: all (everything in one process), gateway (QUIC connections
    /// and logins, relayed to the zone process over NATS) or zone (the zones)
    /// [env: MMO_ROLE] [default: all]
    #[arg(long, value_name = "ROLE")]
    pub role: Option<crate::fleet_settings::Role>,
    /// NATS server between gateways and zone processes, nats://host:port; needed by the
    /// gateway and zone roles [env: MMO_NATS_URL] [default: none]
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,
    /// The world's name in the fleet's NATS subjects (the same in every process of one
    /// world) [env: MMO_WORLD] [default: default]
    #[arg(long = "world", value_name = "NAME")]
    pub world_name: Option<String>,
    /// NATS user of this process; needs --nats-password-file [env: MMO_NATS_USER]
    /// [default: none]
    #[arg(long, value_name = "USER")]
    pub nats_user: Option<String>,
    /// File holding the NATS user's password [env: MMO_NATS_PASSWORD_FILE] [default: none]
    #[arg(long, value_name = "FILE")]
    pub nats_password_file: Option<PathBuf>,
    /// PEM certificate authority of the NATS server: the connection must be TLS
    /// [env: MMO_NATS_CA_FILE] [default: none, plain TCP]
    #[arg(long, value_name = "FILE")]
    pub nats_ca_file: Option<PathBuf>,
    /// Zone role: the ids of the layout's zones this process runs, comma-separated (other
    /// zone processes of the world run the rest), or `auto` (one zone no other process
    /// runs; a spare waits until one is free) [env: MMO_ZONES] [default: all zones]
    #[arg(long, value_name = "IDS")]
    pub zones: Option<String>,
    /// Zone role: report to the Agones SDK sidecar (Ready, Allocate, health, Shutdown)
    /// [env: MMO_AGONES] [default: false]
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub agones: Option<bool>,
    /// Gateway role with --redis-url: players the world holds at once; logins past it wait
    /// in a queue [env: MMO_MAX_PLAYERS] [default: none, no queue]
    #[arg(long, value_name = "N")]
    pub max_players: Option<u32>,
    /// Gateway and zone roles with --redis-url: sessions per shard; gateways place new
    /// logins by it, zone processes given it merge shards nobody needs by it
    /// [env: MMO_SHARD_CAP] [default: 900 for gateways; zone processes: none, no merging]
    #[arg(long, value_name = "N")]
    pub shard_cap: Option<u32>,
    /// Zone role: seconds a shard must have been mergeable before its players move to
    /// another shard and it is given back [env: MMO_SHARD_MERGE_AFTER_S] [default: 60]
    #[arg(long, value_name = "S")]
    pub shard_merge_after_s: Option<u64>,
    /// Gateway role: the QUIC address clients reach this gateway at, as the fleet's login
    /// answers give it (ip:port) [env: MMO_PUBLIC_QUIC_ADDR] [default: the bound address]
    #[arg(long, value_name = "ADDR")]
    pub public_quic_addr: Option<SocketAddr>,
}

/// Reads the TOML file at `path` over the defaults.
pub fn read_file(path: &Path) -> Result<ServerSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        option: "--config / MMO_CONFIG".into(),
        value: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    parse_toml(&text).map_err(|message| ConfigError {
        option: "--config / MMO_CONFIG".into(),
        value: path.display().to_string(),
        message,
    })
}

/// Parses TOML settings over the defaults; unknown keys are refused with their name.
pub fn parse_toml(text: &str) -> Result<ServerSettings, String> {
    toml::from_str(text).map_err(|e: toml::de::Error| match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", e.message())
        }
        None => e.message().to_owned(),
    })
}

fn parse_env<T>(
    key: &str,
    raw: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    parse(raw.trim()).map_err(|message| error(key, raw, message))
}

fn from_str<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| e.to_string())
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true/false (or 1/0, yes/no, on/off)".into()),
    }
}

/// Parses `MMO_DEV_ACCOUNTS` (`name:password,name:password`).
fn parse_dev_accounts(s: &str) -> Result<Vec<DevAccount>, String> {
    s.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (name, password) = item
                .split_once(':')
                .ok_or_else(|| "each entry is name:password, separated by commas".to_owned())?;
            Ok(DevAccount {
                name: name.trim().to_owned(),
                password: password.to_owned(),
            })
        })
        .collect()
}

/// Applies the `MMO_*` variables `env` knows about over `settings`.
pub fn apply_env(
    settings: &mut ServerSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let get = |key: &str| env(&format!("MMO_{}", key.to_ascii_uppercase()));
    if let Some(v) = get("quic_addr") {
        settings.quic_addr = parse_env("quic_addr", &v, from_str)?;
    }
    if let Some(v) = get("http_addr") {
        settings.http_addr = parse_env("http_addr", &v, from_str)?;
    }
    if let Some(v) = get("data_dir") {
        settings.data_dir = PathBuf::from(v);
    }
    if let Some(v) = get("tick_rate_hz") {
        settings.tick_rate_hz = parse_env("tick_rate_hz", &v, from_str)?;
    }
    if let Some(v) = get("max_connections") {
        settings.max_connections = parse_env("max_connections", &v, from_str)?;
    }
    if let Some(v) = get("handshake_burst") {
        settings.handshake_burst = parse_env("handshake_burst", &v, from_str)?;
    }
    if let Some(v) = get("handshake_refill_per_s") {
        settings.handshake_refill_per_s = parse_env("handshake_refill_per_s", &v, from_str)?;
    }
    if let Some(v) = get("retry_above_pending_handshakes") {
        settings.retry_above_pending_handshakes =
            parse_env("retry_above_pending_handshakes", &v, from_str)?;
    }
    if let Some(v) = get("udp_buffer_bytes") {
        settings.udp_buffer_bytes = parse_env("udp_buffer_bytes", &v, from_str)?;
    }
    if let Some(v) = get("cert_file") {
        settings.cert_file = Some(PathBuf::from(v));
    }
    if let Some(v) = get("key_file") {
        settings.key_file = Some(PathBuf::from(v));
    }
    if let Some(v) = get("server_name") {
        settings.server_names = v.split(',').map(|s| s.trim().to_owned()).collect();
    }
    if let Some(v) = get("jwt_secret_file") {
        settings.jwt_secret_file = Some(PathBuf::from(v));
    }
    if let Some(v) = get("token_ttl_s") {
        settings.token_ttl_s = parse_env("token_ttl_s", &v, from_str)?;
    }
    if let Some(v) = get("dev_open_login") {
        settings.dev_open_login = parse_env("dev_open_login", &v, parse_bool)?;
    }
    if let Some(v) = get("dev_accounts") {
        // Never echo the passwords back: the error shows only the variable.
        settings.dev_accounts =
            parse_dev_accounts(&v).map_err(|m| error("dev_accounts", "<hidden>", m))?;
    }
    if let Some(v) = get("log_format") {
        settings.log_format = parse_env("log_format", &v, LogFormat::parse)?;
    }
    if let Some(v) = get("content_file") {
        settings.gameplay.content_file = Some(PathBuf::from(v));
    }
    if let Some(v) = get("spawn_spread_m") {
        settings.gameplay.spawn_spread_m = parse_env("spawn_spread_m", &v, from_str)?;
    }
    if let Some(v) = get("replication_threads") {
        settings.zone.replication_threads = parse_env("replication_threads", &v, from_str)?;
    }
    if let Some(v) = get("snapshot_budget_bytes_per_s") {
        settings.zone.snapshot_budget_bytes_per_s =
            parse_env("snapshot_budget_bytes_per_s", &v, from_str)?;
    }
    if let Some(v) = get("input_drain_after_ticks") {
        settings.zone.input_drain_after_ticks = parse_env("input_drain_after_ticks", &v, from_str)?;
    }
    if let Some(v) = get("kick_above_strikes") {
        settings.gameplay.kick_above_strikes = parse_env("kick_above_strikes", &v, from_str)?;
    }
    if let Some(v) = get("database_url") {
        settings.storage.database_url = Some(v);
    }
    if let Some(v) = get("save_interval_s") {
        settings.storage.save_interval_s = parse_env("save_interval_s", &v, from_str)?;
    }
    if let Some(v) = get("redis_url") {
        settings.chat.redis_url = Some(v);
    }
    if let Some(v) = get("chat_redis_prefix") {
        settings.chat.redis_prefix = v;
    }
    if let Some(v) = get("logins_per_address_per_min") {
        settings.accounts.logins_per_address_per_min =
            parse_env("logins_per_address_per_min", &v, from_str)?;
    }
    if let Some(v) = get("role") {
        settings.fleet.role = parse_env("role", &v, from_str)?;
    }
    if let Some(v) = get("nats_url") {
        settings.fleet.nats_url = Some(v);
    }
    if let Some(v) = get("world") {
        settings.fleet.world = v;
    }
    if let Some(v) = get("nats_user") {
        settings.fleet.nats_user = Some(v);
    }
    if let Some(v) = get("nats_password_file") {
        settings.fleet.nats_password_file = Some(PathBuf::from(v));
    }
    if let Some(v) = get("nats_ca_file") {
        settings.fleet.nats_ca_file = Some(PathBuf::from(v));
    }
    if let Some(v) = get("zones") {
        settings.fleet.zones = Some(crate::fleet_settings::parse_zone_list(&v)?);
    }
    if let Some(v) = get("agones") {
        settings.fleet.agones = parse_env("agones", &v, parse_bool)?;
    }
    if let Some(v) = get("max_players") {
        settings.fleet.max_players = Some(parse_env("max_players", &v, from_str)?);
    }
    if let Some(v) = get("shard_cap") {
        settings.fleet.shard_cap = Some(parse_env("shard_cap", &v, from_str)?);
    }
    if let Some(v) = get("shard_merge_after_s") {
        settings.fleet.shard_merge_after_s = Some(parse_env("shard_merge_after_s", &v, from_str)?);
    }
    if let Some(v) = get("public_quic_addr") {
        settings.fleet.public_quic_addr = Some(parse_env("public_quic_addr", &v, from_str)?);
    }
    Ok(())
}

/// Applies the flags that were given over `settings`.
///
/// # Errors
/// A flag whose value does not parse (`--zones`), naming it.
pub fn apply_cli(settings: &mut ServerSettings, cli: &Cli) -> Result<(), ConfigError> {
    if let Some(v) = cli.quic_addr {
        settings.quic_addr = v;
    }
    if let Some(v) = cli.http_addr {
        settings.http_addr = v;
    }
    if let Some(v) = &cli.data_dir {
        settings.data_dir = v.clone();
    }
    if let Some(v) = cli.tick_rate_hz {
        settings.tick_rate_hz = v;
    }
    if let Some(v) = cli.max_connections {
        settings.max_connections = v;
    }
    if let Some(v) = cli.handshake_burst {
        settings.handshake_burst = v;
    }
    if let Some(v) = cli.handshake_refill_per_s {
        settings.handshake_refill_per_s = v;
    }
    if let Some(v) = cli.retry_above_pending_handshakes {
        settings.retry_above_pending_handshakes = v;
    }
    if let Some(v) = cli.udp_buffer_bytes {
        settings.udp_buffer_bytes = v;
    }
    if let Some(v) = &cli.cert_file {
        settings.cert_file = Some(v.clone());
    }
    if let Some(v) = &cli.key_file {
        settings.key_file = Some(v.clone());
    }
    if !cli.server_names.is_empty() {
        settings.server_names = cli.server_names.clone();
    }
    if let Some(v) = &cli.jwt_secret_file {
        settings.jwt_secret_file = Some(v.clone());
    }
    if let Some(v) = cli.token_ttl_s {
        settings.token_ttl_s = v;
    }
    if let Some(v) = cli.dev_open_login {
        settings.dev_open_login = v;
    }
    if let Some(v) = cli.log_format {
        settings.log_format = v;
    }
    if let Some(v) = &cli.content_file {
        settings.gameplay.content_file = Some(v.clone());
    }
    if let Some(v) = cli.spawn_spread_m {
        settings.gameplay.spawn_spread_m = v;
    }
    if let Some(v) = cli.replication_threads {
        settings.zone.replication_threads = v;
    }
    if let Some(v) = cli.snapshot_budget_bytes_per_s {
        settings.zone.snapshot_budget_bytes_per_s = v;
    }
    if let Some(v) = cli.input_drain_after_ticks {
        settings.zone.input_drain_after_ticks = v;
    }
    if let Some(v) = cli.kick_above_strikes {
        settings.gameplay.kick_above_strikes = v;
    }
    if let Some(v) = &cli.database_url {
        settings.storage.database_url = Some(v.clone());
    }
    if let Some(v) = cli.save_interval_s {
        settings.storage.save_interval_s = v;
    }
    if let Some(v) = &cli.redis_url {
        settings.chat.redis_url = Some(v.clone());
    }
    if let Some(v) = cli.logins_per_address_per_min {
        settings.accounts.logins_per_address_per_min = v;
    }
    if let Some(v) = cli.role {
        settings.fleet.role = v;
    }
    if let Some(v) = &cli.nats_url {
        settings.fleet.nats_url = Some(v.clone());
    }
    if let Some(v) = &cli.world_name {
        settings.fleet.world = v.clone();
    }
    if let Some(v) = &cli.nats_user {
        settings.fleet.nats_user = Some(v.clone());
    }
    if let Some(v) = &cli.nats_password_file {
        settings.fleet.nats_password_file = Some(v.clone());
    }
    if let Some(v) = &cli.nats_ca_file {
        settings.fleet.nats_ca_file = Some(v.clone());
    }
    if let Some(v) = &cli.zones {
        settings.fleet.zones = Some(crate::fleet_settings::parse_zone_list(v)?);
    }
    if let Some(v) = cli.agones {
        settings.fleet.agones = v;
    }
    if let Some(v) = cli.max_players {
        settings.fleet.max_players = Some(v);
    }
    if let Some(v) = cli.shard_cap {
        settings.fleet.shard_cap = Some(v);
    }
    if let Some(v) = cli.shard_merge_after_s {
        settings.fleet.shard_merge_after_s = Some(v);
    }
    if let Some(v) = cli.public_quic_addr {
        settings.fleet.public_quic_addr = Some(v);
    }
    Ok(())
}

/// Merges every layer (defaults < file < `env` < `cli`) and validates the result. `env`
/// looks up an environment variable (the process environment in the binary, a table in
/// tests).
pub fn load(
    cli: &Cli,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServerSettings, ConfigError> {
    let file = cli
        .config
        .clone()
        .or_else(|| env("MMO_CONFIG").map(PathBuf::from));
    let mut settings = match file {
        Some(path) => read_file(&path)?,
        None => ServerSettings::default(),
    };
    apply_env(&mut settings, env)?;
    apply_cli(&mut settings, cli)?;
    settings.validate()?;
    Ok(settings)
}

/// Looks up `key` in the process environment (a value that is not UTF-8 counts as unset).
#[must_use]
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::CommandFactory;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let table: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| table.get(k).cloned()
    }

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("mmo-server").chain(args.iter().copied())).unwrap()
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "mmo-server-config-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_apply_with_no_file_env_or_flags() {
        let settings = load(&cli(&[]), &env_of(&[])).unwrap();
        assert_eq!(settings, ServerSettings::default());
        assert_eq!(settings.quic_addr.to_string(), "0.0.0.0:7777");
        assert_eq!(settings.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.data_dir, PathBuf::from("mmo-data"));
        assert_eq!(settings.tick_rate_hz, 30);
        assert_eq!(settings.max_connections, 5000);
        assert_eq!(settings.handshake_burst, 20);
        assert_eq!(settings.handshake_refill_per_s, 10);
        assert_eq!(settings.retry_above_pending_handshakes, 256);
        assert_eq!(settings.udp_buffer_bytes, 8 * 1024 * 1024);
        assert_eq!(settings.token_ttl_s, 900);
        assert!(!settings.dev_open_login);
        assert_eq!(settings.server_names, vec!["localhost".to_owned()]);
        assert_eq!(
            settings.jwt_secret_path(),
            PathBuf::from("mmo-data/jwt_secret")
        );
        assert_eq!(settings.world.size_m, [4000.0, 4000.0]);
        assert_eq!(
            (settings.world.zone_columns, settings.world.zone_rows),
            (1, 1)
        );
        assert_eq!(settings.world.border_m, 30.0);
    }

    #[test]
    fn file_then_env_then_flags_take_precedence() {
        let path = temp_file(
            "precedence",
            r#"
                tick_rate_hz = 20
                max_connections = 100
                handshake_burst = 30
                handshake_refill_per_s = 40
                retry_above_pending_handshakes = 50
                udp_buffer_bytes = 1048576
                token_ttl_s = 60
                http_addr = "127.0.0.1:9000"
                [[dev_accounts]]
                name = "alice"
                password = "pw-file"
                [world]
                zone_columns = 2
            "#,
        );
        let path_str = path.to_str().unwrap();
        let env = env_of(&[
            ("MMO_CONFIG", path_str),
            ("MMO_MAX_CONNECTIONS", "200"),
            ("MMO_TOKEN_TTL_S", "120"),
            ("MMO_HANDSHAKE_REFILL_PER_S", "41"),
            ("MMO_RETRY_ABOVE_PENDING_HANDSHAKES", "0"),
            ("MMO_UDP_BUFFER_BYTES", "2097152"),
        ]);
        let settings = load(
            &cli(&[
                "--token-ttl-s",
                "300",
                "--handshake-refill-per-s",
                "42",
                "--udp-buffer-bytes",
                "4194304",
            ]),
            &env,
        )
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        // File only.
        assert_eq!(settings.tick_rate_hz, 20);
        assert_eq!(settings.http_addr.to_string(), "127.0.0.1:9000");
        assert_eq!(settings.dev_accounts[0].name, "alice");
        assert_eq!(settings.world.zone_columns, 2);
        assert_eq!(
            settings.world.zone_rows, 1,
            "unset world keys keep defaults"
        );
        assert_eq!(settings.handshake_burst, 30);
        // Env over file.
        assert_eq!(settings.max_connections, 200);
        assert_eq!(settings.retry_above_pending_handshakes, 0);
        // Flag over env over file.
        assert_eq!(settings.token_ttl_s, 300);
        assert_eq!(settings.handshake_refill_per_s, 42);
        assert_eq!(settings.udp_buffer_bytes, 4 << 20);
        // Untouched defaults.
        assert_eq!(settings.quic_addr.to_string(), "0.0.0.0:7777");
    }

    #[test]
    fn config_flag_wins_over_env_and_env_accounts_replace_the_file_table() {
        let path = temp_file(
            "accounts",
            "[[dev_accounts]]\nname = \"alice\"\npassword = \"a\"\n",
        );
        let env = env_of(&[
            ("MMO_CONFIG", "/nonexistent/ignored.toml"),
            ("MMO_DEV_ACCOUNTS", "bob:pw1,carol:pw:2"),
            ("MMO_DEV_OPEN_LOGIN", "yes"),
            ("MMO_SERVER_NAME", "a.example, 10.0.0.1"),
        ]);
        let settings = load(&cli(&["--config", path.to_str().unwrap()]), &env).unwrap();
        std::fs::remove_file(&path).unwrap();
        let names: Vec<&str> = settings
            .dev_accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(names, ["bob", "carol"]);
        assert_eq!(settings.dev_accounts[1].password, "pw:2");
        assert!(settings.dev_open_login);
        assert_eq!(settings.server_names, ["a.example", "10.0.0.1"]);
        let off = load(&cli(&["--dev-open-login=false"]), &env).unwrap_err();
        // MMO_CONFIG points nowhere and no --config: the file is named.
        assert!(
            off.to_string().contains("/nonexistent/ignored.toml"),
            "{off}"
        );
    }

    #[test]
    fn replication_threads_come_from_every_layer_and_default_to_the_spare_cores() {
        let defaults = load(&cli(&[]), &env_of(&[])).unwrap();
        assert_eq!(defaults.zone.replication_threads, 0);
        // Automatic: spare cores plus the zone's own thread, at least one.
        assert_eq!(defaults.zone.replication_threads_for(1, 2), 2);
        assert_eq!(defaults.zone.replication_threads_for(4, 2), 1);
        // Four zones on 16 cores split the 12 spare ones: 4 threads each, 16 in all.
        assert_eq!(defaults.zone.replication_threads_for(4, 16), 4);
        assert_eq!(defaults.zone.replication_threads_for(1, 200), 64);
        let from_env = load(&cli(&[]), &env_of(&[("MMO_REPLICATION_THREADS", "3")])).unwrap();
        assert_eq!(from_env.zone.replication_threads_for(1, 2), 3);
        let from_flag = load(
            &cli(&["--replication-threads", "5"]),
            &env_of(&[("MMO_REPLICATION_THREADS", "3")]),
        )
        .unwrap();
        assert_eq!(from_flag.zone.replication_threads, 5);
        let file = parse_toml("[zone]\nreplication_threads = 2\n").unwrap();
        assert_eq!(file.zone.replication_threads, 2);
        // The input drain, likewise; out of range is named.
        assert_eq!(defaults.zone.input_drain_after_ticks, 30);
        let file = parse_toml("[zone]\ninput_drain_after_ticks = 0\n").unwrap();
        assert_eq!(file.zone.input_drain_after_ticks, 0);
        let from_env = load(&cli(&[]), &env_of(&[("MMO_INPUT_DRAIN_AFTER_TICKS", "12")])).unwrap();
        assert_eq!(from_env.zone.input_drain_after_ticks, 12);
        let from_flag = load(
            &cli(&["--input-drain-after-ticks", "5"]),
            &env_of(&[("MMO_INPUT_DRAIN_AFTER_TICKS", "12")]),
        )
        .unwrap();
        assert_eq!(from_flag.zone.input_drain_after_ticks, 5);
        // The snapshot budget, likewise.
        assert_eq!(defaults.zone.snapshot_budget_bytes_per_s, 10_000);
        let from_env = load(
            &cli(&[]),
            &env_of(&[("MMO_SNAPSHOT_BUDGET_BYTES_PER_S", "5000")]),
        )
        .unwrap();
        assert_eq!(from_env.zone.snapshot_budget_bytes_per_s, 5_000);
        let file = parse_toml("[zone]\nsnapshot_budget_bytes_per_s = 20000\n").unwrap();
        assert_eq!(file.zone.snapshot_budget_bytes_per_s, 20_000);
        for bad in ["1999", "1000001"] {
            let err =
                load(&cli(&["--snapshot-budget-bytes-per-s", bad]), &env_of(&[])).unwrap_err();
            assert!(
                err.to_string().contains("snapshot_budget_bytes_per_s"),
                "{err}"
            );
        }
        let err = load(&cli(&["--input-drain-after-ticks", "601"]), &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("input_drain_after_ticks"), "{err}");
        let err = load(&cli(&["--replication-threads", "65"]), &env_of(&[])).unwrap_err();
        assert!(err.option.contains("--replication-threads"), "{err}");
        assert_eq!(err.value, "65");
        let spread = load(&cli(&[]), &env_of(&[("MMO_SPAWN_SPREAD_M", "40")])).unwrap();
        assert_eq!(spread.gameplay.spawn_spread_m, 40.0);
        let err = load(&cli(&["--spawn-spread-m", "NaN"]), &env_of(&[])).unwrap_err();
        assert!(err.option.contains("--spawn-spread-m"), "{err}");
    }

    #[test]
    fn gameplay_settings_load_the_content_and_name_what_is_wrong() {
        let config = GameplaySettings::default().load().unwrap();
        assert_eq!(config.strikes.kick_above, 20);
        let err = load(
            &cli(&["--content-file", "/nonexistent/content.toml"]),
            &env_of(&[]),
        )
        .unwrap_err();
        assert!(err.option.contains("--content-file"), "{err}");
        assert!(err.to_string().contains("cannot read"), "{err}");
        let bad = temp_file(
            "bad-content",
            &mmo_core::gameplay::content::DEFAULT_CONTENT_TOML
                .replace("cost = { stamina = 10 }", "cost = { stamna = 10 }"),
        );
        let err = load(
            &cli(&[]),
            &env_of(&[("MMO_CONTENT_FILE", bad.to_str().unwrap())]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("abilities.strike.cost.stamna"),
            "{err}"
        );
        let _ = std::fs::remove_file(bad);
        let mut settings = ServerSettings::default();
        settings.gameplay.class = "necromancer".into();
        let err = settings.validate().unwrap_err();
        assert!(err.option.contains("[gameplay] class"), "{err}");
        assert_eq!(err.value, "necromancer");
        let settings = load(&cli(&["--kick-above-strikes", "3"]), &env_of(&[])).unwrap();
        assert_eq!(settings.gameplay.kick_above_strikes, 3);
        let err = parse_toml(
            "[gameplay]
kick_above_strike = 2
",
        )
        .unwrap_err();
        assert!(err.contains("kick_above_strike"), "{err}");
        let mut settings = ServerSettings::default();
        settings.gameplay.max_rewind_ms = 5000;
        assert!(
            settings
                .validate()
                .unwrap_err()
                .option
                .contains("max_rewind_ms")
        );
    }

    #[test]
    fn unknown_toml_keys_are_refused_by_name() {
        let err = parse_toml("quic_adr = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.contains("quic_adr"), "{err}");
        let err = parse_toml("[world]\nzone_colums = 2\n").unwrap_err();
        assert!(err.contains("zone_colums"), "{err}");
        let err = parse_toml("[[dev_accounts]]\nname = \"a\"\npasword = \"b\"\n").unwrap_err();
        assert!(err.contains("pasword"), "{err}");
    }

    #[test]
    fn bad_values_name_the_option_and_the_value() {
        let err = load(&cli(&["--tick-rate-hz", "500"]), &env_of(&[])).unwrap_err();
        assert!(err.option.contains("--tick-rate-hz"), "{err}");
        assert_eq!(err.value, "500");
        let err = load(&cli(&[]), &env_of(&[("MMO_QUIC_ADDR", "nowhere")])).unwrap_err();
        assert!(err.to_string().contains("MMO_QUIC_ADDR"), "{err}");
        assert!(err.to_string().contains("nowhere"), "{err}");
        let err = load(&cli(&["--cert-file", "c.pem"]), &env_of(&[])).unwrap_err();
        assert!(err.option.contains("--key-file"), "{err}");
        let err = load(&cli(&["--max-connections", "0"]), &env_of(&[])).unwrap_err();
        assert!(err.option.contains("--max-connections"), "{err}");
        for (flag, value) in [
            ("--handshake-burst", "0"),
            ("--handshake-refill-per-s", "0"),
            ("--handshake-refill-per-s", "1000001"),
            ("--retry-above-pending-handshakes", "1000001"),
            ("--udp-buffer-bytes", "1024"),
            ("--udp-buffer-bytes", "2147483648"),
        ] {
            let err = load(&cli(&[flag, value]), &env_of(&[])).unwrap_err();
            assert!(err.option.contains(flag), "{flag}: {err}");
            assert_eq!(err.value, value, "{err}");
        }
        let err = load(&cli(&[]), &env_of(&[("MMO_HANDSHAKE_BURST", "lots")])).unwrap_err();
        assert!(err.to_string().contains("MMO_HANDSHAKE_BURST"), "{err}");
        assert!(err.to_string().contains("lots"), "{err}");
        let err = parse_toml("udp_buffer_byte = 1\n").unwrap_err();
        assert!(err.contains("udp_buffer_byte"), "{err}");
        let err = load(&cli(&[]), &env_of(&[("MMO_DEV_ACCOUNTS", "nopassword")])).unwrap_err();
        assert!(err.option.contains("MMO_DEV_ACCOUNTS"), "{err}");
        let err = load(
            &cli(&[]),
            &env_of(&[("MMO_DEV_ACCOUNTS", "a:secret,a:other")]),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let mut settings = ServerSettings::default();
        settings.world.border_m = 2500.0;
        let err = settings.validate().unwrap_err();
        assert!(err.option.contains("border_m"), "{err}");
        settings.world = WorldSettings {
            zone_rows: 0,
            ..WorldSettings::default()
        };
        assert!(
            settings
                .validate()
                .unwrap_err()
                .option
                .contains("zone_rows")
        );
    }

    #[test]
    fn help_documents_every_option_with_its_default_and_env_var() {
        let help = Cli::command().render_long_help().to_string();
        let defaults = ServerSettings::default();
        for needle in [
            "--config",
            "MMO_CONFIG",
            "--quic-addr",
            "MMO_QUIC_ADDR",
            &defaults.quic_addr.to_string(),
            "--http-addr",
            "MMO_HTTP_ADDR",
            &defaults.http_addr.to_string(),
            "--data-dir",
            "MMO_DATA_DIR",
            "[default: mmo-data]",
            "--tick-rate-hz",
            "MMO_TICK_RATE_HZ",
            &format!("[default: {}]", defaults.tick_rate_hz),
            "--max-connections",
            "MMO_MAX_CONNECTIONS",
            &format!("[default: {}]", defaults.max_connections),
            "--handshake-burst",
            "MMO_HANDSHAKE_BURST",
            &format!("[default: {}]", defaults.handshake_burst),
            "--handshake-refill-per-s",
            "MMO_HANDSHAKE_REFILL_PER_S",
            &format!("[default: {}]", defaults.handshake_refill_per_s),
            "--retry-above-pending-handshakes",
            "MMO_RETRY_ABOVE_PENDING_HANDSHAKES",
            &format!("[default: {}]", defaults.retry_above_pending_handshakes),
            "--udp-buffer-bytes",
            "MMO_UDP_BUFFER_BYTES",
            &format!("[default: {}", defaults.udp_buffer_bytes),
            "--cert-file",
            "--key-file",
            "--server-name",
            "[default: localhost]",
            "--jwt-secret-file",
            "--token-ttl-s",
            &format!("[default: {}]", defaults.token_ttl_s),
            "--dev-open-login",
            "MMO_DEV_OPEN_LOGIN",
            "MMO_DEV_ACCOUNTS",
            "--log-format",
            "[world]",
            "MMO_SERVER_READY",
        ] {
            assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
        }
        assert!(!help.contains("not enforced"), "{help}");
    }
}
