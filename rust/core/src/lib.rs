//! `mmo-core`: the sans-IO heart of MMO Netcore.
//!
//! Nothing in this crate does I/O or reads a clock: time comes in as an argument (`now_us`,
//! [`time::Tick`]) and bytes come in and go out through plain slices and buffers. Drivers
//! (`mmo-net` with tokio + quinn, the test kit with a virtual clock and a link conditioner)
//! own sockets and time. quinn-proto is the model.
//!
//! Conventions: metres, X forward, Y right, Z up, radians; units in names (`now_us`,
//! `len_bytes`, `speed_mps`). Data from the wire is never trusted: every decoder returns a
//! `Result`, bounds lengths and allocations, and never panics.

pub mod chat;
pub mod codec;
pub mod control;
pub mod detmath;
pub mod entity;
pub mod entity_flags;
pub mod fast_hash;
pub mod gameplay;
pub mod geometry;
pub mod input;
pub mod interpolation;
pub mod lag_compensation;
pub mod movement;
pub mod persist;
pub mod prediction;
pub mod relay;
pub mod replication;
pub mod session;
pub mod time;
pub mod validation;
pub mod world;
pub mod zone;

/// Version of the wire protocol (datagrams and control frames, see `WIRE_FORMAT.md`). A
/// client and server with different versions refuse each other at login with a clear reason.
pub const PROTOCOL_VERSION: u16 = 9;
