//! The pieces both drivers share: the task that writes a session's transmits to a QUIC
//! connection, and the task that reads the control stream.

use std::time::Duration;

use mmo_core::session::Transmit;
use tokio::sync::mpsc;

/// How long a closing writer waits for the peer to read the control stream to its end
/// (so the last frame, usually a disconnect reason, arrives) before closing the connection.
const LINGER: Duration = Duration::from_secs(2);

/// Application close code of a clean close.
pub(crate) const CLOSE_OK: u32 = 0;

/// Writes transmits in order until the channel closes (the session is over) or the
/// connection fails: datagrams with `send_datagram` (dropped, not queued, when they cannot
/// be sent), stream bytes with `write_all`. Then finishes the control stream, waits up to
/// [`LINGER`] for the peer to read it, and closes the connection.
pub(crate) async fn write_transmits(
    connection: quinn::Connection,
    mut send: quinn::SendStream,
    mut transmits: mpsc::Receiver<Transmit>,
) {
    while let Some(t) = transmits.recv().await {
        match t {
            Transmit::Datagram(d) => match connection.send_datagram(d.into()) {
                Ok(()) => {}
                Err(quinn::SendDatagramError::ConnectionLost(_)) => return,
                Err(e) => tracing::debug!(error = %e, "datagram dropped"),
            },
            Transmit::Stream(s) => {
                if let Err(e) = send.write_all(&s).await {
                    tracing::debug!(error = %e, "control stream write failed");
                    return;
                }
            }
        }
    }
    if send.finish().is_ok() {
        let _ = tokio::time::timeout(LINGER, send.stopped()).await;
    }
    connection.close(CLOSE_OK.into(), b"closed");
}

/// Reads the control stream and sends each chunk, wrapped by `wrap`, on `to` (waiting for
/// room: the stream's flow control pushes back on the peer) until the stream ends or fails,
/// or the receiver is gone.
pub(crate) async fn read_stream<M>(
    mut recv: quinn::RecvStream,
    to: mpsc::Sender<M>,
    wrap: impl Fn(Vec<u8>) -> M,
) {
    let mut buf = vec![0u8; crate::STREAM_READ_BYTES];
    loop {
        match recv.read(&mut buf).await {
            Ok(Some(n)) => {
                if to.send(wrap(buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "control stream read ended");
                return;
            }
        }
    }
}
