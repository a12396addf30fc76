//! `mmo-server`: the dedicated server, as a library (for tests and tools) under the
//! `mmo-server` binary.
//!
//! - [`config`]: settings from defaults, a TOML file, the environment and flags.
//! - [`auth`]: JWT login tokens (issuer and the QUIC server's authority), dev accounts.
//! - [`http`]: `/v1/login`, `/metrics`, `/healthz`, `/readyz` on their own port.
//! - [`metrics`]: the Prometheus recorder and process gauges.
//! - [`persistence`]: write-behind saving of characters (the zones' character store).
//! - [`zones`]: the world's zones behind the QUIC endpoint, one thread each.
//! - [`app`]: starts and stops all of it.
//!
//! # Not done yet
//!
//! - Multiple zones: `[world]` is validated but one zone simulates everything.
//! - Real accounts (a database): only dev accounts log in.

pub mod app;
pub mod auth;
pub mod config;
pub mod http;
pub mod metrics;
pub mod persistence;
pub mod service_settings;
pub mod storage;
pub mod zones;
