//! The server's gate: what happens to each incoming QUIC connection attempt before any zone
//! work is spent on it.
//!
//! In order, for each [`quinn::Incoming`]:
//!
//! 1. **Address validation.** While at least [`GatewayConfig::retry_above_pending_handshakes`]
//!    handshakes are in progress, an attempt from an address not yet validated is answered
//!    with a QUIC Retry (stateless: a spoofed source never comes back with the token, and
//!    costs us one small packet). A validated attempt goes on.
//! 2. **Per-address handshake rate.** A token bucket per source address (IPv4 address, or
//!    IPv6 /64, since one host usually owns a whole /64), [`HandshakeLimiter`]. Over the
//!    limit the attempt is ignored: no packet is sent back (nothing to amplify, nothing to
//!    learn), the client's handshake times out. The table is bounded: when full, the entry
//!    inserted first is evicted (its address starts again with a full bucket, which gives it
//!    at most one more burst), so a flood of spoofed addresses cannot grow it.
//! 3. **Connection cap.** When [`GatewayConfig::max_connections`] connections are open
//!    (handshaking ones included), the attempt is refused with a reason the client can see:
//!    the handshake is completed and the connection closed at once with application close
//!    code [`DisconnectReason::ServerFull`] and the text "server full". This costs one TLS
//!    handshake, which is small next to a player's zone work, and the client gets a precise
//!    reason instead of a generic `CONNECTION_REFUSED`. Such refusals are themselves
//!    bounded: past [`MAX_REFUSALS_IN_FLIGHT`] at once, further attempts get quinn's
//!    `refuse()` (a transport `CONNECTION_REFUSED`, which the client also reports as
//!    [`DisconnectReason::ServerFull`]).
//!
//! The decision is sans-IO ([`Gateway::admit`], time as an argument) and unit-tested here;
//! the server's accept loop carries it out.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mmo_core::control::DisconnectReason;

use crate::NetError;
use crate::token_bucket::TokenBucket;

/// At most this many "server full" handshakes are completed at once; attempts beyond it are
/// refused without a handshake.
pub const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// The gate's settings. The defaults are safe for a public server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Open connections (handshaking, waiting for login, or playing) at most. Default 5000.
    pub max_connections: usize,
    /// Handshakes one address may start at once after a quiet period. Default 20.
    pub handshake_burst: u32,
    /// Handshakes per second one address may start, sustained. Default 10. Load testers
    /// that run many bots from one address must raise it.
    pub handshake_refill_per_s: u32,
    /// Addresses whose handshake rate is tracked at most. Default 65 536.
    pub rate_table_capacity: usize,
    /// Handshakes in progress from which on unvalidated addresses must answer a QUIC Retry
    /// (0: always). Default 256.
    pub retry_above_pending_handshakes: usize,
    /// How long a client has, after the QUIC handshake, to open its control stream; then
    /// the connection is closed with [`DisconnectReason::Timeout`]. Default 5 s.
    pub control_stream_timeout: Duration,
    /// Size asked for the UDP socket's receive and send buffers, bytes. Default 8 MiB. The
    /// OS may grant less (Linux caps at `net.core.rmem_max` / `wmem_max`); a warning says so.
    pub udp_buffer_bytes: usize,
    /// Datagrams per second one logged-in connection may send, sustained (the burst is one
    /// second's worth); the rest are dropped before they reach the zone and counted as
    /// `rate_limited`, so one client cannot fill the zone's shared inbox. Default 120 (four
    /// times a 30 Hz client's input rate).
    pub max_datagrams_per_s: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_connections: 5_000,
            handshake_burst: 20,
            handshake_refill_per_s: 10,
            rate_table_capacity: 65_536,
            retry_above_pending_handshakes: 256,
            control_stream_timeout: Duration::from_secs(5),
            udp_buffer_bytes: 8 << 20,
            max_datagrams_per_s: 120,
        }
    }
}

impl GatewayConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), NetError> {
        let bad = |field: &str, why: &str| Err(NetError::Config(format!("gateway.{field} {why}")));
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if self.handshake_burst == 0 {
            return bad("handshake_burst", "must be at least 1");
        }
        if self.handshake_refill_per_s == 0 {
            return bad("handshake_refill_per_s", "must be at least 1");
        }
        if self.rate_table_capacity == 0 {
            return bad("rate_table_capacity", "must be at least 1");
        }
        if self.control_stream_timeout.is_zero() {
            return bad("control_stream_timeout", "must be positive");
        }
        if self.udp_buffer_bytes == 0 {
            return bad("udp_buffer_bytes", "must be positive");
        }
        if self.max_datagrams_per_s == 0 {
            return bad("max_datagrams_per_s", "must be at least 1");
        }
        Ok(())
    }
}

/// What to do with one incoming connection attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Complete the handshake.
    Accept,
    /// Answer with a QUIC Retry (address validation).
    Retry,
    /// Over the per-address rate: ignore (send nothing).
    RateLimited,
    /// At the connection cap: complete the handshake and close with
    /// [`DisconnectReason::ServerFull`].
    FullClose,
    /// At the cap with [`MAX_REFUSALS_IN_FLIGHT`] refusals already running: `refuse()`.
    FullRefuse,
}

impl Admission {
    /// The [`crate::metrics::HANDSHAKES_TOTAL`] `outcome` label of a refusal (`None` for
    /// [`Admission::Accept`], whose outcome is known after the handshake).
    #[must_use]
    pub fn outcome(self) -> Option<&'static str> {
        match self {
            Admission::Accept => None,
            Admission::Retry => Some("retry"),
            Admission::RateLimited => Some("refused_rate"),
            Admission::FullClose | Admission::FullRefuse => Some("refused_full"),
        }
    }
}

/// Counts the connection tasks keep up to date while the gate reads them.
#[derive(Debug, Default)]
pub(crate) struct GatewayCounts {
    /// Open connections, from acceptance to the end (handshaking ones included).
    pub(crate) live: AtomicUsize,
    /// Accepted connections whose handshake is not finished.
    pub(crate) pending_handshakes: AtomicUsize,
    /// "Server full" handshakes running.
    pub(crate) refusals: AtomicUsize,
}

/// One unit of one of the [`GatewayCounts`], given back when dropped.
#[derive(Debug)]
pub(crate) struct CountGuard {
    counts: Arc<GatewayCounts>,
    which: fn(&GatewayCounts) -> &AtomicUsize,
    /// Also move the [`crate::metrics::CONNECTIONS`] gauge.
    gauge: bool,
}

impl CountGuard {
    pub(crate) fn live(counts: &Arc<GatewayCounts>) -> Self {
        metrics::gauge!(crate::metrics::CONNECTIONS).increment(1.0);
        Self::take(counts, |c| &c.live, true)
    }

    pub(crate) fn pending(counts: &Arc<GatewayCounts>) -> Self {
        Self::take(counts, |c| &c.pending_handshakes, false)
    }

    pub(crate) fn refusal(counts: &Arc<GatewayCounts>) -> Self {
        Self::take(counts, |c| &c.refusals, false)
    }

    fn take(
        counts: &Arc<GatewayCounts>,
        which: fn(&GatewayCounts) -> &AtomicUsize,
        gauge: bool,
    ) -> Self {
        which(counts).fetch_add(1, Ordering::AcqRel);
        CountGuard {
            counts: counts.clone(),
            which,
            gauge,
        }
    }
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        (self.which)(&self.counts).fetch_sub(1, Ordering::AcqRel);
        if self.gauge {
            metrics::gauge!(crate::metrics::CONNECTIONS).decrement(1.0);
        }
    }
}

/// A snapshot of the counts an admission decision reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    /// Open connections.
    pub live_connections: usize,
    /// Handshakes in progress.
    pub pending_handshakes: usize,
    /// "Server full" handshakes in progress.
    pub refusals_in_flight: usize,
}

impl GatewayCounts {
    pub(crate) fn load(&self) -> Load {
        Load {
            live_connections: self.live.load(Ordering::Acquire),
            pending_handshakes: self.pending_handshakes.load(Ordering::Acquire),
            refusals_in_flight: self.refusals.load(Ordering::Acquire),
        }
    }
}

/// The admission policy (see the module docs). Sans-IO: time and load are arguments.
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    limiter: HandshakeLimiter,
}

impl Gateway {
    /// A gate with `config` (validated).
    pub fn new(config: GatewayConfig) -> Result<Self, NetError> {
        config.validate()?;
        let limiter = HandshakeLimiter::new(
            config.handshake_burst,
            config.handshake_refill_per_s,
            config.rate_table_capacity,
        );
        Ok(Gateway { config, limiter })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Decides about an attempt from `ip` at `now_us` under `load`. `retry_possible` is
    /// whether the attempt's address is unvalidated and a Retry may be sent
    /// (`!remote_address_validated() && may_retry()`).
    pub fn admit(
        &mut self,
        ip: IpAddr,
        retry_possible: bool,
        now_us: u64,
        load: Load,
    ) -> Admission {
        if retry_possible && load.pending_handshakes >= self.config.retry_above_pending_handshakes {
            return Admission::Retry;
        }
        if !self.limiter.admit(ip, now_us) {
            return Admission::RateLimited;
        }
        if load.live_connections >= self.config.max_connections {
            return if load.refusals_in_flight < MAX_REFUSALS_IN_FLIGHT {
                Admission::FullClose
            } else {
                Admission::FullRefuse
            };
        }
        Admission::Accept
    }
}

/// The reason and text a "server full" close carries.
pub(crate) const FULL_REASON: DisconnectReason = DisconnectReason::ServerFull;
/// See [`FULL_REASON`].
pub(crate) const FULL_TEXT: &str = "server full";

/// Per-address token buckets for new handshakes, in a bounded table.
#[derive(Debug)]
pub struct HandshakeLimiter {
    burst: u32,
    refill_per_s: u32,
    capacity: usize,
    /// Bucket per address key.
    buckets: HashMap<IpAddr, TokenBucket>,
    /// The keys of `buckets` in insertion order; each key is in both or neither, so the
    /// front is the entry to evict.
    order: VecDeque<IpAddr>,
}

impl HandshakeLimiter {
    /// Buckets of `burst` handshakes refilling at `refill_per_s`, for at most `capacity`
    /// addresses (each at least 1; [`GatewayConfig::validate`] checks).
    #[must_use]
    pub fn new(burst: u32, refill_per_s: u32, capacity: usize) -> Self {
        HandshakeLimiter {
            burst: burst.max(1),
            refill_per_s: refill_per_s.max(1),
            capacity: capacity.max(1),
            buckets: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The key an address is limited under: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by
    /// its /64 prefix.
    #[must_use]
    pub fn key(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    IpAddr::V6(segments.into())
                }
            },
        }
    }

    /// Takes one handshake token for `ip` at `now_us`; false when it has none left.
    pub fn admit(&mut self, ip: IpAddr, now_us: u64) -> bool {
        let key = Self::key(ip);
        if !self.buckets.contains_key(&key) {
            if self.buckets.len() >= self.capacity
                && let Some(oldest) = self.order.pop_front()
            {
                self.buckets.remove(&oldest);
            }
            self.buckets
                .insert(key, TokenBucket::new(self.burst, self.refill_per_s, now_us));
            self.order.push_back(key);
        }
        match self.buckets.get_mut(&key) {
            Some(bucket) => bucket.take(now_us),
            // Inserted just above.
            None => true,
        }
    }

    /// Addresses tracked.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no address is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_burst_is_admitted_then_the_refill_rate() {
        let mut limiter = HandshakeLimiter::new(20, 10, 100);
        for i in 0..20 {
            assert!(limiter.admit(A, 0), "handshake {i} of the burst");
        }
        assert!(!limiter.admit(A, 0));
        // Another address has its own bucket.
        assert!(limiter.admit(B, 0));
        // 10/s: one token per 100 ms.
        assert!(!limiter.admit(A, 99_999));
        assert!(limiter.admit(A, 100_000));
        assert!(!limiter.admit(A, 100_000));
        // A long quiet period refills to the burst, not beyond.
        let later = 3_600_000_000;
        let admitted = (0..100).filter(|_| limiter.admit(A, later)).count();
        assert_eq!(admitted, 20);
        // Time going backwards refills nothing.
        assert!(!limiter.admit(A, 0));
    }

    #[test]
    fn the_table_is_bounded_and_evicts_the_oldest_entry() {
        let mut limiter = HandshakeLimiter::new(1, 1, 3);
        for last in 1..=200u8 {
            assert!(limiter.admit(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), 0));
            assert!(limiter.len() <= 3);
        }
        assert_eq!(limiter.len(), 3);
        // 10.0.0.200 is still tracked (its token is spent); 10.0.0.1 was evicted long ago
        // and starts again with a full bucket.
        assert!(!limiter.admit(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 200)), 0));
        assert!(limiter.admit(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 0));
        assert_eq!(limiter.len(), 3);
    }

    #[test]
    fn ipv6_is_limited_per_64_and_mapped_ipv4_as_ipv4() {
        let mut limiter = HandshakeLimiter::new(2, 1, 100);
        let a: IpAddr = "2001:db8:1:2::1".parse::<Ipv6Addr>().unwrap().into();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse::<Ipv6Addr>().unwrap().into();
        let c: IpAddr = "2001:db8:1:3::1".parse::<Ipv6Addr>().unwrap().into();
        assert!(limiter.admit(a, 0));
        assert!(limiter.admit(b, 0));
        assert!(!limiter.admit(a, 0), "same /64");
        assert!(limiter.admit(c, 0), "another /64");
        let mapped: IpAddr = Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped().into();
        assert_eq!(HandshakeLimiter::key(mapped), A);
    }

    #[test]
    fn admission_order_is_retry_then_rate_then_cap() {
        let config = GatewayConfig {
            max_connections: 2,
            handshake_burst: 1,
            retry_above_pending_handshakes: 4,
            ..GatewayConfig::default()
        };
        let mut gate = Gateway::new(config).unwrap();
        let calm = Load::default();
        let busy = Load {
            pending_handshakes: 4,
            ..Load::default()
        };
        // Under handshake load an unvalidated attempt is sent a Retry, spending no token.
        assert_eq!(gate.admit(A, true, 0, busy), Admission::Retry);
        assert_eq!(gate.admit(A, false, 0, busy), Admission::Accept);
        // The token is spent: the next attempt from A is rate limited.
        assert_eq!(gate.admit(A, false, 0, calm), Admission::RateLimited);
        // Below the threshold no Retry is asked.
        let full = Load {
            live_connections: 2,
            ..Load::default()
        };
        assert_eq!(gate.admit(B, true, 0, full), Admission::FullClose);
        let flooded = Load {
            live_connections: 2,
            refusals_in_flight: MAX_REFUSALS_IN_FLIGHT,
            ..Load::default()
        };
        assert_eq!(
            gate.admit(B, false, 1_000_000, flooded),
            Admission::FullRefuse
        );
        assert_eq!(Admission::FullClose.outcome(), Some("refused_full"));
        assert_eq!(Admission::Accept.outcome(), None);

        // Threshold 0: every unvalidated attempt must validate.
        let mut always = Gateway::new(GatewayConfig {
            retry_above_pending_handshakes: 0,
            ..GatewayConfig::default()
        })
        .unwrap();
        assert_eq!(always.admit(A, true, 0, calm), Admission::Retry);
        assert_eq!(always.admit(A, false, 0, calm), Admission::Accept);
    }

    #[test]
    fn bad_settings_are_named() {
        let err = Gateway::new(GatewayConfig {
            max_connections: 0,
            ..GatewayConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("max_connections"), "{err}");
        let err = GatewayConfig {
            handshake_refill_per_s: 0,
            ..GatewayConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("handshake_refill_per_s"), "{err}");
    }
}
