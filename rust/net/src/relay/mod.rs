//! The fleet's relay over NATS: a **gateway** process holds players' QUIC connections and a
//! **zone process** runs their sessions (login, simulation, replication); the relay carries
//! each connection's datagrams, control-stream bytes and end between them. EVE Online's
//! proxies and sol nodes are the precedent: every invariant of a session (baselines, acks,
//! inputs) lives in the zone process, and a gateway holds no game state.
//!
//! - [`GatewayProcess`] (`gateway_side`): a QUIC endpoint behind the same gate as a single
//!   server ([`crate::gateway`]), whose connections are relayed instead of served.
//! - [`ZoneProcess`] (`zone_side`): the zone threads of a world ([`crate::zone_set`])
//!   whose connections are relayed gateways' connections.
//!
//! The messages and the reliable stream are `mmo_core::relay` (sans-IO, specified in its
//! `RELAY_FORMAT.md`); here are the subjects, the timers and the tasks.
//!
//! **Subjects** (`world` is [`RelaySettings::world`]):
//!
//! | subject | subscriber | carries |
//! |---|---|---|
//! | `mmo.<world>.zone.<zone instance>` | the zone process running the zone instance (a zone's shard, [`crate::shard`]; shard 0's is the zone id) | a connection's first items, until the zone process's own subject is known |
//! | `mmo.<world>.zproc.<process id, 16 hex digits>` | that zone process | everything after (each batch names its sender's subject as `reply_to`) |
//! | `mmo.<world>.gw.<gateway id, 16 hex digits>` | that gateway | everything for its connections |
//! | `mmo.<world>.peer.zone.<zone instance>` | the zone process running the zone instance | handoffs, forwarded datagrams and border exports from other zone processes |
//! | `mmo.<world>.peer.proc.<process id, 16 hex digits>` | that zone process | answers to its handoffs |
//! | `mmo.<world>.peer.kick` | every zone process | kicks of an account's older session (`presence`) |
//!
//! Gateway and zone-process ids are random `u64`s drawn at start, so a restarted process
//! never receives its predecessor's traffic.
//!
//! **Timing.** The zone process sends one batch per gateway after each zone tick (the zone
//! threads wake it once their transmits are in the outboxes) and on a 50 ms timer; the
//! gateway holds client datagrams and control bytes at most 1 ms so that the traffic of
//! that millisecond shares one batch per zone process (one NATS message per datagram cost
//! the NATS server 2.7 times the CPU), and sends on a 20 ms timer too. Stream items not acknowledged within
//! [`RETRANSMIT_AFTER_US`] are sent again. A zone process sends each gateway at least one
//! batch every [`ZONE_HEARTBEAT_US`]; a gateway that hears nothing from a zone process for
//! [`ZONE_SILENCE_US`] has the logged-in sessions it has there restarted from their last
//! save by the zone's next process ([`REJOIN_TIMEOUT_US`], `RELAY_FORMAT.md` section 7) and
//! closes the other clients with `ServiceUnavailable`. An item
//! unacknowledged for
//! [`PEER_TIMEOUT_US`] means the other process is gone: the gateway closes the client with
//! `ServiceUnavailable`, the zone process ends the session as a `Timeout`; an opening not
//! acknowledged within [`OPEN_TIMEOUT_US`] (no zone process runs the home zone) closes the
//! client with `ServiceUnavailable` too.
//!
//! **Ownership**: with [`RelaySettings::redis_url`], a zone process holds a lease with a
//! fencing token for each zone it runs ([`directory`]), all of the layout's or those
//! [`RelaySettings::zones`] names; a process asking for a zone another holds is refused at
//! start, naming the owner, and a process that loses a lease is told
//! ([`ZoneProcess::ownership_lost`]). Every zone process of a world numbers ticks from the
//! world's epoch in the directory.
//!
//! **Account presence** (`presence`, `RELAY_FORMAT.md` section 6; with a directory): one
//! live session per account in the world; a login kicks the older session in whichever
//! zone process runs it and loads the character once that session's logout save committed.
//!
//! **Shards** ([`shard_loads`], [`shard_placement`], [`crate::shard`]): zone processes
//! publish their instances' loads; a gateway places each new connection on the least loaded shard of the
//! home zone under its cap, and asks for a new lane (spares take its shards) when all are
//! full. Players keep their lane across zone borders.
//!
//! **Handoff between processes** (`zone_side::handoff`, `RELAY_FORMAT.md` section 5): a
//! player crossing into a zone of another process moves there with its session; who owns
//! it is decided once in the directory (the receiver's fenced claim or the sender's
//! abort, `directory::transfer`); the gateway switches the connection at the old
//! process's `Moved` item (or at the receiver's `TakenOver` when the old process falls
//! silent), and the connection's streams start again under their next incarnation.
//!
//! # Not done yet (issue 14)
//!
//! - A handoff whose record cannot be read for 10 s (Redis down) or that runs without a
//!   directory is still ended unsaved by the old process. A zone process that stops with
//!   handoffs unanswered drops those players' save states.
//! - Login limits are per gateway; chat deliveries to a player in another process are
//!   dropped. Ids start in a slot chosen by the lease's fencing token; a run that hands
//!   out more than a slot (262,144) can reuse ids of players who moved to other processes
//!   (such a player is closed when it next crosses back).
//! - Shards: players move between shards of a zone only when a shard merges into another
//!   ([`shard_merge`]); there is no operator command to move them.
//! - A gateway crash ends its clients' sessions (after the timeout) instead of resuming
//!   them on another gateway. NATS TLS and per-role users work ([`NatsSecurity`]), and
//!   per-role Redis users (`docs/fleet.md`, "Redis users"); Redis over TLS is not set up.

pub mod directory;
mod gateway_side;
mod presence;
pub mod shard_loads;
pub mod shard_merge;
pub mod shard_placement;
mod zone_side;

pub use gateway_side::GatewayProcess;
pub(crate) use gateway_side::{RelayHandle, serve_relayed};
pub use presence::account_presence_key;
pub(crate) use presence::{FleetPresence, SessionRef};
pub use zone_side::ZoneProcess;

use mmo_core::relay::message::{BATCH_OVERHEAD_BYTES, MAX_BATCH_BYTES};
use mmo_core::relay::{Batch, Item};

use crate::NetError;

/// A stream item not acknowledged after this long is sent again, µs.
pub const RETRANSMIT_AFTER_US: u64 = 200_000;
/// A stream item not acknowledged after this long means the other process is gone, µs.
pub const PEER_TIMEOUT_US: u64 = 10_000_000;
/// Longest wait for the NATS client to take one batch (its buffer is full only while the
/// server is unreachable): past it the batch is dropped and counted, so the relay's timers
/// and the other connections never wait for NATS.
pub(crate) const PUBLISH_DEADLINE: std::time::Duration = std::time::Duration::from_millis(50);

/// A zone process sends each gateway it has connections with at least one batch this often
/// (an empty one when nothing is due), µs.
pub const ZONE_HEARTBEAT_US: u64 = 1_000_000;
/// A gateway that heard nothing from a zone process for this long takes it for dead: it
/// has the sessions it knows restarted from their last save by the zone's next process
/// (`RELAY_FORMAT.md` section 7) and closes the other clients it has there with
/// `ServiceUnavailable`, µs.
pub const ZONE_SILENCE_US: u64 = 3_000_000;

/// A rejoin (a session restarted in the zone's next process, `RELAY_FORMAT.md` section 7)
/// not acknowledged after this long fails: the gateway closes the client with
/// `ServiceUnavailable`. Counted from the rejoin's start, itself [`ZONE_SILENCE_US`] after
/// the zone process fell silent: together 10 s, the client's own idle timeout, µs.
pub const REJOIN_TIMEOUT_US: u64 = 7_000_000;

/// A connection's opening not acknowledged after this long means no zone process runs its
/// home zone: the gateway closes the client with `ServiceUnavailable` (well before the
/// client's own login timeout), µs.
pub const OPEN_TIMEOUT_US: u64 = 3_000_000;

/// Where the relay's NATS server is and which world's subjects to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelaySettings {
    /// The NATS server (`nats://host:port`).
    pub nats_url: String,
    /// The world's name in every subject: 1 to 64 ASCII letters, digits, `-` or `_`.
    pub world: String,
    /// The Redis of the fleet's directory ([`directory`]): a zone process takes the lease
    /// of each zone it runs there before serving, and stops when it loses one. `None`: no
    /// directory (one zone process runs every zone; tests and trials).
    pub redis_url: Option<String>,
    /// How this process proves who it is to NATS and checks the server (`None`: plain TCP,
    /// no credentials: loopback trials only).
    pub nats_security: Option<NatsSecurity>,
    /// Zone role: the zones of the layout this process runs (`None`: all of them). Several
    /// zone processes split a world this way; it needs the directory (`redis_url`).
    pub zones: Option<Vec<u16>>,
    /// Zone role, instead of `zones`: run one zone no other process holds, or else a shard
    /// the gateways asked for, waiting as a spare while there is none
    /// ([`directory::take_free_zone`]). Needs the directory.
    pub take_free_zone: bool,
    /// With the directory: sessions a shard holds at most. Gateways place new connections
    /// by it and ask for a new lane when every shard of the home zone is full
    /// ([`shard_placement`]); zone processes merge a shard nobody needs into another by it
    /// ([`shard_merge`]). `None`: every connection starts in shard 0, and no shard merges.
    pub shard_cap: Option<u32>,
    /// Zone role: how long a shard must have been mergeable before its players move
    /// ([`shard_merge`]).
    pub shard_merge_after: std::time::Duration,
}

/// TLS and credentials towards the NATS server. Give each role its own user, whose
/// permissions allow only the role's subjects (see `docs/fleet.md`, "NATS security").
#[derive(Clone, PartialEq, Eq)]
pub struct NatsSecurity {
    /// User name (`None`: no user and password).
    pub user: Option<String>,
    /// Its password (read from a file by `mmo-server`; never logged).
    pub password: Option<String>,
    /// PEM file of the certificate authority that signed the NATS server's certificate:
    /// when set, the connection must be TLS and the server is checked against it.
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for NatsSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSecurity")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl RelaySettings {
    /// Checks the world name (subjects are built from it).
    ///
    /// # Errors
    /// [`NetError::Config`] naming the field.
    pub fn validate(&self) -> Result<(), NetError> {
        let ok = (1..=64).contains(&self.world.len())
            && self
                .world
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(NetError::Config(format!(
                "fleet.world `{}` must be 1 to 64 ASCII letters, digits, `-` or `_`",
                self.world
            )));
        }
        if self.nats_url.is_empty() {
            return Err(NetError::Config("fleet.nats_url is empty".into()));
        }
        Ok(())
    }

    fn zone_subject(&self, zone: u16) -> String {
        format!("mmo.{}.zone.{zone}", self.world)
    }

    /// Where gateways send a resumption's `Resume` item: every zone process subscribes
    /// (under `zone.>`, so the roles' NATS permissions cover it).
    fn resume_subject(&self) -> String {
        format!("mmo.{}.zone.resume", self.world)
    }

    fn peer_zone_subject(&self, zone: u16) -> String {
        format!("mmo.{}.peer.zone.{zone}", self.world)
    }

    fn peer_kick_subject(&self) -> String {
        format!("mmo.{}.peer.kick", self.world)
    }

    fn peer_process_subject(&self, id: u64) -> String {
        format!("mmo.{}.peer.proc.{id:016x}", self.world)
    }

    fn zone_process_subject(&self, id: u64) -> String {
        format!("mmo.{}.zproc.{id:016x}", self.world)
    }

    fn gateway_subject(&self, id: u64) -> String {
        format!("mmo.{}.gw.{id:016x}", self.world)
    }

    async fn connect(&self, name: &str) -> Result<async_nats::Client, NetError> {
        self.validate()?;
        // Reconnect quickly after an outage (async-nats' default backs off to seconds, longer
        // than a gateway's patience with a silent zone process).
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .reconnect_delay_callback(|attempts| {
                std::time::Duration::from_millis(50 * attempts.clamp(1, 4) as u64)
            });
        if let Some(security) = &self.nats_security {
            if let (Some(user), Some(password)) = (&security.user, &security.password) {
                options = options.user_and_password(user.clone(), password.clone());
            }
            if let Some(ca) = &security.ca_file {
                options = options.add_root_certificates(ca.clone()).require_tls(true);
            }
        }
        options
            .connect(self.nats_url.as_str())
            .await
            .map_err(|e| NetError::Connection(format!("NATS at {}: {e}", self.nats_url)))
    }
}

/// Calls [`RelayHealth::fail`] when dropped armed: a relay task that ends by a panic is
/// reported like one whose subscription closed.
struct FailOnDrop {
    health: RelayHealth,
    armed: bool,
}

impl Drop for FailOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.health.fail("the relay task ended unexpectedly");
        }
    }
}

/// Set once a relay task ended while its process still ran (its NATS subscription
/// closed): see [`GatewayProcess::relay_failed`] and [`ZoneProcess::relay_failed`].
///
/// Also set when a relay task panics ([`FailOnDrop`]). No test makes it fire: async-nats
/// keeps subscriptions across reconnections and ends them only when the client is closed,
/// and a subscription the server's permissions refuse stays open (the refusal is only
/// logged by the server), so this is a safety net.
#[derive(Clone, Debug, Default)]
struct RelayHealth {
    failed: std::sync::Arc<tokio::sync::Notify>,
    failed_flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl RelayHealth {
    /// Records that the relay task ended unexpectedly, with `why`.
    fn fail(&self, why: &str) {
        tracing::error!(%why, "the relay stopped: this process no longer serves");
        count("relay_failed");
        self.failed_flag
            .store(true, std::sync::atomic::Ordering::Release);
        self.failed.notify_waiters();
    }

    /// A guard that reports the relay task's unexpected end (a panic) unless disarmed.
    fn guard(&self) -> FailOnDrop {
        FailOnDrop {
            health: self.clone(),
            armed: true,
        }
    }

    /// Resolves once [`RelayHealth::fail`] was called.
    async fn wait(&self) {
        loop {
            let notified = self.failed.notified();
            if self.failed_flag.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// Counts a relay event (`crate::metrics::RELAY_EVENTS_TOTAL`).
fn count(event: &'static str) {
    metrics::counter!(crate::metrics::RELAY_EVENTS_TOTAL, "event" => event).increment(1);
}

/// Publishes `items` to `subject` in as few batches as fit [`MAX_BATCH_BYTES`]. Never
/// fails: a batch that cannot be published is counted and dropped (datagrams are
/// unreliable, stream items are sent again).
async fn publish(
    client: &async_nats::Client,
    subject: &str,
    gateway: u64,
    reply_to: &str,
    items: Vec<Item>,
) {
    let mut batch = Batch {
        gateway,
        reply_to: reply_to.to_owned(),
        items: Vec::new(),
    };
    let mut len_bytes = BATCH_OVERHEAD_BYTES;
    for item in items {
        let item_len_bytes = Batch::encoded_item_len(&item);
        if !batch.items.is_empty() && len_bytes.saturating_add(item_len_bytes) > MAX_BATCH_BYTES {
            send(client, subject, &batch).await;
            batch.items.clear();
            len_bytes = BATCH_OVERHEAD_BYTES;
        }
        len_bytes = len_bytes.saturating_add(item_len_bytes);
        batch.items.push(item);
    }
    if !batch.items.is_empty() {
        send(client, subject, &batch).await;
    }
}

/// Publishes a batch without items to `subject` (a zone process's heartbeat).
async fn publish_empty(client: &async_nats::Client, subject: &str, gateway: u64, reply_to: &str) {
    let batch = Batch {
        gateway,
        reply_to: reply_to.to_owned(),
        items: Vec::new(),
    };
    send(client, subject, &batch).await;
}

async fn send(client: &async_nats::Client, subject: &str, batch: &Batch) {
    match batch.encode() {
        Ok(bytes) => {
            let len_bytes = bytes.len() as u64;
            let published = tokio::time::timeout(
                PUBLISH_DEADLINE,
                client.publish(subject.to_owned(), bytes.into()),
            )
            .await;
            match published {
                Ok(Ok(())) => {
                    count("batch_sent");
                    metrics::counter!(crate::metrics::RELAY_BYTES_SENT_TOTAL).increment(len_bytes);
                }
                Ok(Err(e)) => {
                    count("publish_failed");
                    tracing::debug!(%subject, error = %e, "relay publish failed");
                }
                Err(_) => {
                    // The client's buffer is full (NATS unreachable): the batch is
                    // dropped (its stream items are sent again), the relay goes on.
                    count("publish_timeout");
                }
            }
        }
        Err(e) => {
            // Only an item larger than a whole batch gets here (the session never writes
            // one): dropped and counted.
            count("batch_unencodable");
            tracing::warn!(%subject, error = %e, "relay batch not encodable");
        }
    }
}

/// Decodes a received batch, counting refusals.
fn decode(payload: &[u8]) -> Option<Batch> {
    match Batch::decode(payload) {
        Ok(batch) => {
            count("batch_received");
            Some(batch)
        }
        Err(e) => {
            count("batch_refused");
            tracing::debug!(error = %e, "relay batch refused");
            None
        }
    }
}
