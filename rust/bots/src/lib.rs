//! `mmo-loadtest`: headless bots that load an MMO Netcore server over real QUIC, on the
//! same client session the C ABI uses ([`mmo_net::client::NetClient`]), in a process of
//! their own.
//!
//! The scenario (the seed's): each bot logs in, then runs `iterations` iterations of
//! { pick a direction and walk (inputs at the tick rate, as a real client sends them every
//! tick), every 10th iteration "use an ability", every 20th "open the inventory", then
//! idle inputs until the iteration's second is over }, and logs out gracefully. Abilities
//! and the inventory are **no-ops** until the gameplay messages exist: they are only counted
//! (`abilities_requested`, `inventory_opens`). See [`scenario`].
//!
//! Use from code: [`run`] with [`LoadOptions`] and a [`Target`]; tests use
//! [`Target::Direct`] against an in-process [`mmo_net::server::Server`], with no HTTP.
//!
//! Modules: [`options`] (settings), [`target`] (where bots go), `access` (credentials and
//! the QUIC connect), [`login`] (the HTTP login), [`spawn`] (a child `mmo-server`), `bot`
//! (one bot), [`scenario`], [`prometheus`] (the metrics text parser), [`server_figures`]
//! (server figures from `/metrics`), [`report`], `progress`, `run` (orchestration), [`cli`].
//!
//! Not done: bots do not exercise abilities, inventory, chat or zone transfer (no such
//! messages yet); one run drives one server.

mod access;
mod bot;
pub mod cli;
mod error;
pub mod login;
pub mod options;
mod progress;
pub mod prometheus;
pub mod report;
mod run;
pub mod scenario;
pub mod server_figures;
pub mod spawn;
pub mod target;

pub use error::LoadError;
pub use options::LoadOptions;
pub use report::Report;
pub use run::run;
pub use target::{DirectTarget, Target, TokenSource};
