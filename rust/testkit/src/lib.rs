//! `mmo-testkit`: drive the sans-IO core of MMO Netcore through time and a bad network,
//! deterministically.
//!
//! - [`clock::VirtualClock`]: the only clock tests use; time is passed into the core as
//!   `now_us`.
//! - [`link::LinkConditioner`]: one direction of a simulated link (latency, jitter, loss,
//!   Gilbert-Elliott burst loss, duplication, reordering, bandwidth cap), seeded with ChaCha8
//!   so a failing run replays exactly from its seed. [`link::LinkPair`] bundles the two
//!   directions of a client/server connection.
//!
//! - [`harness::Harness`]: a zone and client sessions over link pairs, stepped on the
//!   virtual clock: the whole client/server loop without a socket.
//! - [`world_harness::WorldHarness`]: every zone of a world layout and client sessions, with
//!   handoffs across borders and border ghosts carried between neighbours.
//! - [`services`]: the PostgreSQL, Redis and NATS of `ci/services.sh` for integration tests
//!   (where they are, or why a test is skipped).

pub mod clock;
pub mod harness;
pub mod link;
pub mod services;
pub mod world_harness;

pub use clock::VirtualClock;
pub use harness::{Harness, HarnessClient, InputSource, ReliableLink};
pub use link::{BurstLoss, LinkConditioner, LinkConfig, LinkConfigError, LinkPair, LinkStats};
pub use world_harness::{Handoff, WorldClient, WorldHarness};

#[cfg(test)]
mod interp_over_link;
