//! UDP sockets for the QUIC endpoints, bound here (with socket2) rather than by quinn so
//! their kernel buffers can be sized: a server receiving thousands of clients' datagrams
//! between two reads of its socket drops them when the receive buffer is the OS default
//! (about 200 KiB on Linux).

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use crate::NetError;

/// Binds a non-blocking UDP socket on `addr` and asks for `buffer_bytes` of receive and send
/// buffer. What the OS granted is read back; when it is less than asked a warning is logged
/// (on Linux the cap is `net.core.rmem_max` / `net.core.wmem_max`). Returns the socket and
/// the granted (receive, send) sizes.
pub fn bind_udp(
    addr: SocketAddr,
    buffer_bytes: usize,
) -> Result<(std::net::UdpSocket, usize, usize), NetError> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Dual-stack where the OS allows it, so `[::]` also serves IPv4 clients.
        let _ = socket.set_only_v6(false);
    }
    // Failures to size the buffers are not fatal: the read-back below reports the result.
    if let Err(e) = socket.set_recv_buffer_size(buffer_bytes) {
        tracing::warn!(error = %e, "SO_RCVBUF not set");
    }
    if let Err(e) = socket.set_send_buffer_size(buffer_bytes) {
        tracing::warn!(error = %e, "SO_SNDBUF not set");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let recv_bytes = socket.recv_buffer_size()?;
    let send_bytes = socket.send_buffer_size()?;
    if recv_bytes < buffer_bytes || send_bytes < buffer_bytes {
        tracing::warn!(
            %addr,
            asked_bytes = buffer_bytes,
            receive_bytes = recv_bytes,
            send_bytes,
            "UDP socket buffers smaller than asked: the OS capped them (on Linux raise \
             net.core.rmem_max and net.core.wmem_max, e.g. `sysctl -w net.core.rmem_max=8388608`); \
             datagrams may be dropped under load"
        );
    } else {
        tracing::debug!(%addr, receive_bytes = recv_bytes, send_bytes, "UDP socket buffers");
    }
    Ok((socket.into(), recv_bytes, send_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_and_reports_granted_buffer_sizes() {
        let (socket, recv_bytes, send_bytes) =
            bind_udp("127.0.0.1:0".parse().unwrap(), 256 * 1024).unwrap();
        assert!(socket.local_addr().unwrap().port() != 0);
        assert!(recv_bytes > 0 && send_bytes > 0);
        // A socket can talk once bound.
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"ping", socket.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 8];
        let mut got = None;
        for _ in 0..100 {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    got = Some((n, from));
                    break;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        let (n, from) = got.expect("datagram received");
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(from, peer.local_addr().unwrap());
    }
}
