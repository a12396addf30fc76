//! Two conditioners, one per direction, as a client/server connection sees them.

use super::conditioner::LinkConditioner;
use super::config::{LinkConfig, LinkConfigError};

/// Mixes `seed` so the two directions draw independent streams (splitmix64 finaliser).
fn derive_seed(seed: u64, direction: u64) -> u64 {
    let mut z = seed.wrapping_add(direction.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A duplex link: `client_to_server` carries inputs, `server_to_client` carries snapshots.
/// Each direction has its own config and its own generator derived from one seed.
#[derive(Debug)]
pub struct LinkPair {
    /// Uplink: client to server.
    pub client_to_server: LinkConditioner,
    /// Downlink: server to client.
    pub server_to_client: LinkConditioner,
}

impl LinkPair {
    /// A duplex link with separate configs per direction, seeded from `seed`.
    pub fn new(
        client_to_server: LinkConfig,
        server_to_client: LinkConfig,
        seed: u64,
    ) -> Result<Self, LinkConfigError> {
        Ok(LinkPair {
            client_to_server: LinkConditioner::new(client_to_server, derive_seed(seed, 1))?,
            server_to_client: LinkConditioner::new(server_to_client, derive_seed(seed, 2))?,
        })
    }

    /// A duplex link with the same config both ways (independent randomness per direction).
    pub fn symmetric(config: LinkConfig, seed: u64) -> Result<Self, LinkConfigError> {
        Self::new(config, config, seed)
    }

    /// The earliest pending delivery in either direction.
    #[must_use]
    pub fn next_delivery_us(&self) -> Option<u64> {
        match (
            self.client_to_server.next_delivery_us(),
            self.server_to_client.next_delivery_us(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_are_independent_and_reproducible() {
        let config = LinkConfig {
            jitter_us: 10_000,
            ..LinkConfig::perfect()
        };
        let mut a = LinkPair::symmetric(config, 7).unwrap();
        let mut b = LinkPair::symmetric(config, 7).unwrap();
        a.client_to_server.send(0, vec![1]);
        a.server_to_client.send(0, vec![2]);
        b.client_to_server.send(0, vec![1]);
        b.server_to_client.send(0, vec![2]);
        assert_eq!(a.next_delivery_us(), b.next_delivery_us());
        let up = a.client_to_server.next_delivery_us();
        let down = a.server_to_client.next_delivery_us();
        assert_ne!(up, down, "the two directions should draw different jitter");
        assert_eq!(a.next_delivery_us(), up.min(down));
    }
}
