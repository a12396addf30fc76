//! The names of every metric the network layer and the zones record, in one place.
//!
//! Recording goes through the `metrics` facade: with no recorder installed (tests, tools)
//! every record is a no-op. `mmo-server` installs a Prometheus recorder and serves it on
//! `/metrics`; [`describe`] gives each metric its help text and unit there.
//!
//! Labels are bounded: `zone` (a zone id, `3`; a shard other than 0 is `<zone>.<shard>`,
//! `3.1`: `crate::shard`), `reason` / `kind` / `outcome` (fixed snake_case
//! sets). Nothing is labelled per client or per address.

/// Histogram, seconds, label `zone`: wall time of one zone tick (inputs, movement,
/// replication, encode, hand-off to the writers).
pub const TICK_DURATION_SECONDS: &str = "mmo_tick_duration_seconds";
/// Gauge, seconds, label `zone`: the longest tick since the server started.
pub const TICK_DURATION_MAX_SECONDS: &str = "mmo_tick_duration_max_seconds";
/// Counter, label `zone`: ticks whose replication was skipped because the zone fell too far
/// behind (their simulation still ran: inputs are applied at their ticks).
pub const TICKS_SKIPPED_TOTAL: &str = "mmo_ticks_skipped_total";
/// Counter, label `zone`: ticks replicated at a degraded level (each snapshot carried fewer
/// records than its budget allowed, far tiers first; see `mmo_core::replication::overload`).
pub const REPLICATION_DEGRADED_TICKS_TOTAL: &str = "mmo_replication_degraded_ticks_total";
/// Gauge, label `zone`: the replication overload level, 0 (normal) to 3.
pub const REPLICATION_DEGRADE_LEVEL: &str = "mmo_replication_degrade_level";
/// Gauge, bytes, label `zone`: heap of the connections' snapshot histories (records of
/// the snapshots in flight, per-entity baselines), from capacities, sampled each second.
pub const REPLICATION_HISTORIES_BYTES: &str = "mmo_replication_histories_bytes";
/// Gauge, bytes, label `zone`: heap of the clients' replication views (visible sets,
/// priority queues), from capacities, sampled each second.
pub const REPLICATION_VIEWS_BYTES: &str = "mmo_replication_views_bytes";
/// Gauge, bytes, label `zone`: heap of the replication state all clients share (interest
/// grid, world frame, replication threads' scratch and record caches), sampled each second.
pub const REPLICATION_SHARED_BYTES: &str = "mmo_replication_shared_bytes";
/// Gauge, label `zone`: players logged in to the zone (CCU per zone).
pub const ZONE_PLAYERS: &str = "mmo_zone_players";
/// Counter, label `event`: what the fleet relay (`crate::relay`) did: `batch_sent`,
/// `batch_received`, `batch_refused` (undecodable or another format version),
/// `publish_failed`, `publish_timeout` (NATS's buffer stayed full: batch dropped),
/// `relay_failed` (the relay task ended: the process exits), `batch_unencodable`, `foreign_gateway` (a batch for another
/// gateway), `stream_refused` (a broken reliable stream: the connection is ended),
/// `wrong_direction` (a stream item only the other side sends: ignored), `peer_timeout` (the other process
/// stopped acknowledging), `zone_silent` (gateway: no batch from a zone process for 3 s,
/// heartbeat included, and no restart possible or a restart unanswered: the client is
/// closed), `rejoin_started` (gateway: such a session restarted in the zone's next process,
/// `RELAY_FORMAT.md` section 7), `rejoined` (gateway: a restart's `LoggedIn` arrived),
/// `rejoin_opened` (zone side: a `Rejoin` opened a connection), `client_framing_broken`
/// (gateway: a client's control stream broke the frame rules during a restart: closed),
/// `resume_asked` (gateway: a new connection's first frame was a `Resume`, sent on as item
/// 0 `Resume`, `RELAY_FORMAT.md` section 8), `resume_abandoned` (gateway: its client left
/// before an answer: forgotten without an end), `resumed` and `resume_refused` (zone side: a
/// session here continued over the new connection, or its client missed more than is
/// kept), `outbox_full` (gateway: a client's outbox), `open_refused`
/// (zone side: a new connection answered with an end, the zone's inbox being full or
/// closed), `opened` and `ended` (relayed connections the zone side created, refused ones
/// included, and forgot),
/// `gateway_ended` (connections the gateway side forgot); handoffs between zone processes:
/// `handoff_sent`, `handoff_resent`, `handed_out` (accepted), `handoff_refused` (refused,
/// and with a directory recorded aborted: the player stays here and is closed, saved),
/// `handoff_tail_dropped` (the sender's unacknowledged bytes were over 256 KiB: left out
/// of the handoff),
/// `handoff_kept` (unanswered after 2 s and recorded aborted in the directory: the player
/// stays here and is closed, saved), `handoff_found_taken` (unanswered, but the directory
/// records it taken: handed over), `handoff_unanswered` (undecided after 10 s, or no
/// directory: the connection was ended unsaved), `handed_in`, `handoff_in_refused`,
/// `handoff_revoked` (claimed here but not taken after all: turned to aborted), `moved` (gateway: a connection switched to its new
/// zone process), `moved_without_sender` (gateway: the process a session was handed from
/// fell silent after the receiver took it: switched to the receiver by its `TakenOver`), `stale_incarnation` (gateway: an item of an old or unknown stream
/// incarnation, ignored), `peer_sent`, `peer_refused` (an undecodable peer message),
/// `peer_unencodable`, `peer_wrong_zone` (a border export for a zone not run here),
/// `chat_not_relayed` (a chat delivery for a player in another process: dropped); account
/// presence (zone side): `presence_kick_sent` (a kick of an account's older session
/// published), `presence_kicked` (a session here closed on a kick), `presence_takeover` (a
/// login took the key of an older session not released within 3 s), `presence_still_saving`
/// (a login refused because its account's previous session, closed, was still being saved
/// after 3 s), `presence_lost` (a renewal found a session's key taken: the session is
/// closed).
pub const RELAY_EVENTS_TOTAL: &str = "mmo_relay_events_total";
/// Gauge: relayed connections the process's relay knows (open, or ended and not yet
/// forgotten by both sides).
pub const RELAY_CONNECTIONS: &str = "mmo_relay_connections";
/// Counter, bytes: relay batches published to NATS.
pub const RELAY_BYTES_SENT_TOTAL: &str = "mmo_relay_bytes_sent_total";
/// Counter: movement inputs never received, skipped over after a bounded wait (sampled
/// from the sessions once a second and when a player leaves a zone).
pub const INPUTS_SKIPPED_TOTAL: &str = "mmo_inputs_skipped_total";
/// Counter: extra inputs the zones took in one tick to drain a standing input backlog
/// (`mmo_core::session::input_queue`); each is one tick in which a character stepped twice.
pub const INPUTS_DRAINED_TOTAL: &str = "mmo_inputs_drained_total";
/// Counter: ticks in which an active session took no input (its character stood still for
/// the tick): the hitches delivery jitter costs, clients sending one input per tick.
pub const INPUT_STARVED_TICKS_TOTAL: &str = "mmo_input_starved_ticks_total";
/// Gauge, label `role` (`all`, `gateway`, `zone`): 1 for the role this process runs, set
/// at start, so a scraper (the load tester's per-role figures) knows what it reads.
pub const PROCESS_ROLE: &str = "mmo_process_role";
/// Histogram, seconds: how long a handoff to another zone process waited for its
/// answer, from its first publication (the player's session is in neither zone
/// meanwhile); one given up unanswered counts as its 2 s.
pub const HANDOFF_ANSWER_SECONDS: &str = "mmo_handoff_answer_seconds";
/// Histogram, seconds (gateway): how long restarting a session whose zone process fell
/// silent took, from the `Rejoin` (3 s after the silence began) to the new process's
/// `LoggedIn`.
pub const REJOIN_SECONDS: &str = "mmo_rejoin_seconds";
/// Counter, label `outcome` (`under_cap`, `new_shard`, `over_cap`, `unknown`): where a
/// gateway placed new connections among the home zone's shards (`crate::relay`'s
/// `shard_loads`): a shard under the cap, a shard started because every one was at the
/// cap, the least loaded over the cap (no new shard in time), shard 0 for want of loads.
pub const SHARD_PLACEMENTS_TOTAL: &str = "mmo_shard_placements_total";
/// Gauge: open QUIC connections on the endpoint (handshaking ones included: what
/// [`crate::gateway::GatewayConfig::max_connections`] caps).
pub const CONNECTIONS: &str = "mmo_connections";
/// Counter, label `outcome` (`accepted`, `refused_full`, `refused_rate`, `retry`, `failed`):
/// incoming QUIC handshakes.
pub const HANDSHAKES_TOTAL: &str = "mmo_handshakes_total";
/// Counter, label `outcome` (`accepted`, or a [`DisconnectReason`] name): logins decided.
///
/// [`DisconnectReason`]: mmo_core::control::DisconnectReason
pub const LOGINS_TOTAL: &str = "mmo_logins_total";
/// Counter, label `reason` (a [`DisconnectReason`] name): connections closed by the server
/// or the client, by reason.
///
/// [`DisconnectReason`]: mmo_core::control::DisconnectReason
pub const DISCONNECTS_TOTAL: &str = "mmo_disconnects_total";
/// Counter, bytes: everything received from clients (datagrams and control stream).
pub const BYTES_IN_TOTAL: &str = "mmo_bytes_in_total";
/// Counter, bytes: everything sent to clients.
pub const BYTES_OUT_TOTAL: &str = "mmo_bytes_out_total";
/// Histogram, bytes per second: each client's received bytes per second, sampled once a
/// second per client (bytes in per client).
pub const CLIENT_BYTES_IN_PER_SECOND: &str = "mmo_client_bytes_in_per_second";
/// Histogram, bytes per second: each client's sent bytes per second, sampled once a second
/// per client (bytes out per client).
pub const CLIENT_BYTES_OUT_PER_SECOND: &str = "mmo_client_bytes_out_per_second";
/// Counter, label `reason`: datagrams dropped by the server: `unauthenticated` (from a
/// connection not logged in, dropped before the zone), `rate_limited` (over the
/// connection's `max_datagrams_per_s`), `inbox_full` (the zone's inbox),
/// `outbox_full` (a connection's outbox, at the tick), `stale` (waited in the outbox longer
/// than about a tick, 50 ms: superseded by a newer one), `send_failed` (QUIC would not send
/// it: too large for the path, or the peer's datagram buffer).
pub const DATAGRAMS_DROPPED_TOTAL: &str = "mmo_datagrams_dropped_total";
/// Counter, label `kind` (a validation rejection kind): inputs and requests rejected by
/// server-side validation.
pub const VALIDATION_REJECTIONS_TOTAL: &str = "mmo_validation_rejections_total";
/// Counter, label `reason` (`protocol_violation` or `protocol_mismatch`): connections the
/// zone closed for breaking the protocol (bad frames, bad datagrams, messages out of order,
/// a wrong protocol version).
pub const PROTOCOL_VIOLATIONS_TOTAL: &str = "mmo_protocol_violations_total";
/// Counter, label `zone`: players this zone handed to a neighbour (in this process or
/// another).
pub const ZONE_HANDOFFS_TOTAL: &str = "mmo_zone_handoffs_total";
/// Counter, label `urgency` (`periodic`, `now`): character records offered to the
/// character store (a record offered again after a refusal counts again).
pub const CHARACTER_RECORDS_OFFERED_TOTAL: &str = "mmo_character_records_offered_total";
/// Counter, label `urgency`: save batches the character store refused because its backlog
/// was full (the zone keeps the characters dirty and offers them again).
pub const CHARACTER_SAVE_BATCHES_REFUSED_TOTAL: &str = "mmo_character_save_batches_refused_total";
/// Counter, label `outcome` (`loaded`, `bad_record`, `unavailable`, or a
/// [`DisconnectReason`] name of the store's refusal): character loads at login.
///
/// [`DisconnectReason`]: mmo_core::control::DisconnectReason
pub const CHARACTER_LOADS_TOTAL: &str = "mmo_character_loads_total";

/// Registers the help text and unit of every metric above with the installed recorder.
/// Call once after installing it.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        INPUTS_SKIPPED_TOTAL,
        "Movement inputs never received, skipped over after a bounded wait"
    );
    describe_counter!(
        INPUTS_DRAINED_TOTAL,
        "Extra inputs taken in one tick to drain a standing input backlog"
    );
    describe_counter!(
        INPUT_STARVED_TICKS_TOTAL,
        "Ticks in which an active session took no input"
    );
    describe_gauge!(
        PROCESS_ROLE,
        "1 for the role this process runs (label role: all, gateway or zone)"
    );
    describe_histogram!(
        TICK_DURATION_SECONDS,
        Unit::Seconds,
        "Wall time of one zone tick"
    );
    describe_gauge!(
        TICK_DURATION_MAX_SECONDS,
        Unit::Seconds,
        "Longest zone tick since start"
    );
    describe_counter!(
        TICKS_SKIPPED_TOTAL,
        "Ticks simulated without replication because the zone fell behind"
    );
    describe_counter!(
        REPLICATION_DEGRADED_TICKS_TOTAL,
        "Ticks replicated at a degraded overload level (fewer records, far tiers first)"
    );
    describe_gauge!(
        REPLICATION_DEGRADE_LEVEL,
        "Replication overload level, 0 (normal) to 3"
    );
    describe_gauge!(
        REPLICATION_HISTORIES_BYTES,
        "Heap of the snapshot histories (records in flight, per-entity baselines), bytes"
    );
    describe_gauge!(
        REPLICATION_VIEWS_BYTES,
        "Heap of the clients' replication views (visible sets, priority queues), bytes"
    );
    describe_gauge!(
        REPLICATION_SHARED_BYTES,
        "Heap of the replication state shared by clients (grid, frame, caches), bytes"
    );
    describe_gauge!(ZONE_PLAYERS, "Players logged in, per zone");
    describe_gauge!(CONNECTIONS, "Open QUIC connections");
    describe_histogram!(
        HANDOFF_ANSWER_SECONDS,
        Unit::Seconds,
        "Wait of a handoff to another zone process for its answer"
    );
    describe_histogram!(
        REJOIN_SECONDS,
        Unit::Seconds,
        "Restart of a session whose zone process fell silent, from Rejoin to LoggedIn"
    );
    describe_counter!(
        SHARD_PLACEMENTS_TOTAL,
        "New connections placed on the home zone's shards, by outcome"
    );
    describe_counter!(HANDSHAKES_TOTAL, "Incoming QUIC handshakes by outcome");
    describe_counter!(LOGINS_TOTAL, "Logins decided, by outcome");
    describe_counter!(DISCONNECTS_TOTAL, "Connections closed, by reason");
    describe_counter!(BYTES_IN_TOTAL, Unit::Bytes, "Bytes received from clients");
    describe_counter!(BYTES_OUT_TOTAL, Unit::Bytes, "Bytes sent to clients");
    describe_histogram!(
        CLIENT_BYTES_IN_PER_SECOND,
        Unit::Bytes,
        "Bytes per second received from each client, sampled each second"
    );
    describe_histogram!(
        CLIENT_BYTES_OUT_PER_SECOND,
        Unit::Bytes,
        "Bytes per second sent to each client, sampled each second"
    );
    describe_counter!(DATAGRAMS_DROPPED_TOTAL, "Datagrams dropped, by reason");
    describe_counter!(
        VALIDATION_REJECTIONS_TOTAL,
        "Inputs and requests rejected by validation, by kind"
    );
    describe_counter!(
        PROTOCOL_VIOLATIONS_TOTAL,
        "Connections closed for protocol violations"
    );
    describe_counter!(ZONE_HANDOFFS_TOTAL, "Players handed to a neighbour zone");
    describe_counter!(
        CHARACTER_RECORDS_OFFERED_TOTAL,
        "Character records offered to the store, by urgency"
    );
    describe_counter!(
        CHARACTER_SAVE_BATCHES_REFUSED_TOTAL,
        "Save batches the character store refused (backlog full), by urgency"
    );
    describe_counter!(
        CHARACTER_LOADS_TOTAL,
        "Character loads at login, by outcome"
    );
}
