//! `mmo-loadtest`: headless bots that load an MMO Netcore server over real QUIC, on the
//! same client session the C ABI uses ([`mmo_net::client::NetClient`]), in a process of
//! their own.
//!
//! The scenario (the seed's): each bot logs in, then runs `iterations` iterations of
//! { pick a direction and walk (inputs at the tick rate, as a real client sends them every
//! tick), every 10th iteration use an ability (`strike` on the nearest remote entity in
//! reach, else `self_heal`), every 20th ask for an inventory operation (swap, split, merge
//! in turn), then idle inputs until the iteration's second is over }, waits up to 2 s for
//! its last results, and logs out gracefully. Requests, results (ok, refused by kind),
//! request-to-result times and combat events are counted. See [`scenario`] and `gameplay`.
//!
//! Use from code: [`run`] with [`LoadOptions`] and a [`Target`]; tests use
//! [`Target::Direct`] against an in-process [`mmo_net::server::Server`], with no HTTP.
//!
//! Modules: [`options`] (settings), [`target`] (where bots go), `access` (credentials and
//! the QUIC connect), [`login`] (the HTTP login), [`spawn`] (a child `mmo-server`), `bot`
//! (one bot), `gameplay` (which request to send), `tally` (what a bot counted),
//! [`scenario`], [`self_cpu`] (the bots' own CPU, which voids a starved run), [`prometheus`] (the metrics text parser), [`server_figures`]
//! (server figures from `/metrics`), [`timeline`] (the run over time), [`capacity`]
//! (per-role costs per player and the fleet they imply), [`report`], [`report_html`] and
//! [`svg_chart`] (the HTML page), `progress`, `run` (orchestration), [`cli`].
//!
//! Not done: bots do not chat, change zones, or use the direction and ground abilities;
//! they play the built-in default content (a server announcing another content hash gets
//! no gameplay requests, counted as `content_mismatch` skips); one run drives one server.

mod access;
mod bot;
pub mod capacity;
pub mod cli;
mod error;
mod gameplay;
pub mod login;
pub mod options;
mod progress;
pub mod prometheus;
pub mod report;
pub mod report_html;
mod resume;
mod run;
pub mod scenario;
pub mod self_cpu;
pub mod server_figures;
pub mod spawn;
pub mod svg_chart;
mod tally;
pub mod target;
pub mod timeline;

pub use error::LoadError;
pub use options::LoadOptions;
pub use report::Report;
pub use run::run;
pub use target::{DirectTarget, Target, TokenSource};
