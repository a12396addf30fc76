//! Sans-IO sessions: the client session and the server's per-connection state, which carry
//! inputs up and snapshots down without owning a socket or a clock.
//!
//! A driver (the tokio + quinn driver in `mmo-net`, or the test kit's harness over a link
//! conditioner) feeds received bytes in with `handle_datagram(now_us, bytes)` and
//! `handle_stream(now_us, bytes)`, sends whatever `poll_transmit(now_us)` returns, reacts to
//! `poll_event()`, and wakes up at `poll_timeout()`. quinn-proto's `Connection` is the model.

pub mod client;
pub mod input_queue;
pub mod server;
#[cfg(test)]
mod tests;

/// Something a session wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// An unreliable datagram (inputs up, snapshots down).
    Datagram(Vec<u8>),
    /// Bytes for the reliable, ordered control stream (one or more control frames).
    Stream(Vec<u8>),
}
