//! The relay between gateways and zone processes (the fleet roles, see `docs/fleet.md`):
//! what a gateway and a zone process say to each other about the players whose QUIC
//! connections the gateway holds and whose sessions the zone process runs.
//!
//! A gateway terminates QUIC and relays; the zone process owns the session (login,
//! simulation, replication). Between them travel, per player connection: the client's
//! datagrams and the server's (unreliable, as on QUIC), and the control stream's bytes plus
//! a few connection events, which must arrive in order exactly once although the messaging
//! system between the processes (core NATS) delivers each message at most once. So:
//!
//! - [`message`]: the batch both sides publish, its versioned encoding and its limits;
//! - [`reliable`]: a sequence-numbered, acknowledged, retransmitted stream of
//!   [`message::StreamItem`]s per connection and direction;
//! - [`peer`]: what zone processes say to each other (players handed over, border
//!   exports);
//! - [`frame_cursor`]: where the control frames of a relayed byte stream begin (a session
//!   restarted elsewhere starts at one).
//!
//! Sans-IO like the rest of the crate: time is an argument (`now_us`), and the drivers in
//! `mmo-net` own the NATS client. The format is specified in `RELAY_FORMAT.md` next to this
//! file.

pub mod frame_cursor;
pub mod message;
pub mod peer;
pub mod reliable;

pub use frame_cursor::FrameCursor;
pub use message::{
    Batch, Item, RELAY_FORMAT_VERSION, RelayError, SenderTail, SessionTicket, StreamItem,
    conn_incarnation, conn_number, conn_serial, next_incarnation,
};
pub use peer::{
    Handoff, HandoffAnswer, Kick, PEER_FORMAT_VERSION, PeerError, PeerMessage, SessionReplay,
};
pub use reliable::{AckFields, DueItem, ReliableReceiver, ReliableSender};
