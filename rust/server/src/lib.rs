//! `mmo-server`: the dedicated server, as a library (for tests and tools) under the
//! `mmo-server` binary.
//!
//! - [`config`]: settings from defaults, a TOML file, the environment and flags.
//! - [`auth`]: JWT login tokens (issuer and the QUIC server's authority), dev accounts.
//! - [`accounts`]: registration, argon2id passwords, refresh tokens, login rate limits.
//! - [`http`]: accounts, login, token refresh, characters, `/metrics`, `/healthz`, `/readyz`
//!   on their own port.
//! - [`metrics`]: the Prometheus recorder and process gauges.
//! - [`persistence`]: write-behind saving of characters (the zones' character store).
//! - [`zones`]: the world's zones behind the QUIC endpoint, one thread each.
//! - [`app`]: starts and stops all of it.
//!
//! # Not done yet
//!
//! - Multiple zones: `[world]` is validated but one zone simulates everything.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod chat_redis;
pub mod config;
pub mod http;
pub mod metrics;
pub mod persistence;
pub mod service_settings;
pub mod storage;
pub mod zones;
