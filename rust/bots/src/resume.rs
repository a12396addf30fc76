//! A bot whose gateway falls silent resumes its session through another gateway of the
//! fleet, as a game client would (`RELAY_FORMAT.md` section 8, `WIRE_FORMAT.md` 8.10): the
//! login answer's `resume_addrs` name the other gateways; after [`RESUME_AFTER`] of
//! transport silence the bot dials the next one (round robin, each dial bounded by
//! [`DIAL_TIMEOUT`]) and adopts the new connection; the session's `Resumed` ends the gap.
//!
//! Measured per bot: attempts (dials started), dials that failed, sessions resumed, and
//! each gap from the last datagram heard before the silence to `Resumed`, in µs. A bot
//! without `resume_addrs` (a single server, or a direct token) never tries.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mmo_net::client::{ConnectOptions, NetClient};
use mmo_net::tls::ServerTrust;

use crate::tally::new_histogram;

/// Transport silence after which a bot resumes elsewhere (the Unreal plugin's default
/// `ResumeAfterSilenceMs`).
pub(crate) const RESUME_AFTER: Duration = Duration::from_secs(1);
/// Longest wait for one dial (QUIC handshake) to another gateway.
pub(crate) const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a bot can resume: the other gateways its login answer named, and the pin.
#[derive(Clone, Debug)]
pub(crate) struct ResumeTargets {
    /// Other gateways, in the login answer's order.
    pub addrs: Vec<SocketAddr>,
    /// The certificate pin (the fleet's gateways share one certificate).
    pub trust: ServerTrust,
    /// The server name sent as SNI.
    pub server_name: &'static str,
}

/// What one bot's resumptions measured.
#[derive(Debug)]
pub(crate) struct ResumeTally {
    /// Dials started.
    pub attempts: u64,
    /// Dials that failed or timed out (or whose connection could not be adopted).
    pub dial_failures: u64,
    /// Sessions resumed (`Resumed` received).
    pub resumed: u64,
    /// Last datagram before the silence to `Resumed`, µs.
    pub gap_us: Histogram<u64>,
}

impl ResumeTally {
    pub(crate) fn new() -> Self {
        ResumeTally {
            attempts: 0,
            dial_failures: 0,
            resumed: 0,
            gap_us: new_histogram(),
        }
    }
}

/// A bot's resumption state.
#[derive(Debug)]
pub(crate) struct Resumer {
    targets: ResumeTargets,
    /// The next target to dial (an index into `targets.addrs`, modulo its length).
    next: usize,
    /// The last datagram before the current silence (set at the first dial).
    silent_since: Option<Instant>,
    /// Not before this instant is another gateway dialled (a failed dial, or an adopted
    /// connection that has not answered `Resumed` yet).
    retry_at: Option<Instant>,
}

impl Resumer {
    pub(crate) fn new(targets: ResumeTargets) -> Self {
        Resumer {
            targets,
            next: 0,
            silent_since: None,
            retry_at: None,
        }
    }

    /// Called every tick: dials the next gateway once the transport was silent for
    /// [`RESUME_AFTER`]; another after [`RESUME_AFTER`] more while neither the dial nor
    /// the adopted connection brought `Resumed` (the session allows another attempt until
    /// its 5 s answer deadline). The dial is awaited in the bot's tick (at most
    /// [`DIAL_TIMEOUT`]): its inputs wait meanwhile, as they would go nowhere.
    pub(crate) async fn poll(&mut self, client: &mut NetClient, tally: &mut ResumeTally) {
        let now = Instant::now();
        let silent_for = client.server_silent_for();
        if self.targets.addrs.is_empty()
            || silent_for < RESUME_AFTER
            || !(client.session().can_resume() || client.session().is_resuming())
            || self.retry_at.is_some_and(|at| now < at)
        {
            return;
        }
        self.silent_since.get_or_insert(now - silent_for);
        let addr = self.targets.addrs[self.next % self.targets.addrs.len()];
        self.next += 1;
        tally.attempts += 1;
        let Ok(dialer) = client.resume_dialer() else {
            tally.dial_failures += 1;
            return;
        };
        let dialed = tokio::time::timeout(
            DIAL_TIMEOUT,
            dialer.dial(
                addr,
                self.targets.server_name,
                self.targets.trust,
                &ConnectOptions::default(),
            ),
        )
        .await;
        let adopted = match dialed {
            Ok(Ok(connection)) => client.adopt(connection).is_ok(),
            Ok(Err(_)) | Err(_) => false,
        };
        if !adopted {
            tally.dial_failures += 1;
        }
        self.retry_at = Some(Instant::now() + RESUME_AFTER);
    }

    /// The session said `Resumed`: the gap is over.
    pub(crate) fn resumed(&mut self, tally: &mut ResumeTally) {
        tally.resumed += 1;
        self.retry_at = None;
        if let Some(since) = self.silent_since.take() {
            let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
            // Auto-resizing: recording cannot fail for a finite u64.
            let _ = tally.gap_us.record(us.max(1));
        }
    }
}
