//! `mmo-server`: the dedicated server, as a library (for tests and tools) under the
//! `mmo-server` binary.
//!
//! - [`config`]: settings from defaults, a TOML file, the environment and flags;
//!   [`service_settings`]: its `[storage]`, `[accounts]` and `[chat]` sections;
//!   [`fleet_settings`]: `[fleet]`, the process's role (all, gateway, zone).
//! - [`auth`]: JWT login tokens (issuer and the QUIC server's authority), dev accounts.
//! - [`accounts`]: registration, argon2id passwords, refresh tokens, login rate limits.
//! - [`http`]: accounts, login, token refresh, characters, `/metrics`, `/healthz`, `/readyz`
//!   on their own port.
//! - [`metrics`]: the Prometheus recorder and process gauges.
//! - [`storage`]: accounts and characters in SQLite or PostgreSQL (sqlx, migrations).
//! - [`persistence`]: write-behind saving of characters (the zones' character store).
//! - [`chat_redis`]: chat across server processes through Redis pub/sub, with presence.
//! - [`spawn_area`]: where new characters start (the spawn point, or a disc around it).
//! - [`zones`]: the world's zones behind the QUIC endpoint, one thread each, or the
//!   gateway or zone half of a fleet (`docs/fleet.md`).
//! - [`app`]: starts and stops all of it.
//!
//! Not done: saving cooldowns, running effects and strikes; say across zone borders.

pub mod accounts;
pub mod agones;
pub mod app;
pub mod auth;
pub mod chat_redis;
pub mod config;
pub mod fleet_limits;
pub mod fleet_login;
pub mod fleet_settings;
pub mod gateway_registry;
pub mod http;
pub mod login_queue;
pub mod metrics;
pub mod persistence;
pub mod service_settings;
pub mod spawn_area;
pub mod storage;
pub mod zones;
