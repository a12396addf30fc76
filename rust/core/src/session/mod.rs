//! Sans-IO sessions: the client session and the server's per-connection state, which carry
//! inputs up and snapshots down without owning a socket or a clock.
//!
//! A driver (the tokio + quinn driver in `mmo-net`, or the test kit's harness over a link
//! conditioner) feeds received bytes in with `handle_datagram(now_us, bytes)` and
//! `handle_stream(now_us, bytes)`, sends whatever `poll_transmit(now_us)` returns, reacts to
//! `poll_event()`, and wakes up at `poll_timeout()`. quinn-proto's `Connection` is the model.

pub mod client;
pub mod client_gameplay;
pub mod input_queue;
pub mod resumption;
pub mod server;
pub mod snapshot_stream;
#[cfg(test)]
mod tests;

/// Something a session wants sent.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Transmit {
    /// An unreliable datagram (inputs up, snapshots down).
    Datagram(Vec<u8>),
    /// Bytes for the reliable, ordered control stream (one or more control frames).
    Stream(Vec<u8>),
}

/// Encodes `message` as a control frame and queues it on `transmits`; returns the bytes
/// queued (0 when the message could not be encoded, which only an oversized message causes:
/// callers validate field limits first, so that is logged as a bug, not returned).
fn queue_control<T: serde::Serialize>(
    message: &T,
    transmits: &mut std::collections::VecDeque<Transmit>,
) -> usize {
    let mut frame = Vec::new();
    match crate::control::encode_frame(message, &mut frame) {
        Ok(()) => {
            let len_bytes = frame.len();
            transmits.push_back(Transmit::Stream(frame));
            len_bytes
        }
        Err(e) => {
            tracing::error!(error = %e, "control message not encodable");
            0
        }
    }
}
