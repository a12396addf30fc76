//! One headless bot: connects (HTTP login or direct token, QUIC handshake, welcome), plays
//! the scenario at the tick rate (pump, one input, drain events, every tick), logs out
//! gracefully, and measures what the report needs.
//!
//! Input-to-ack latency: the send time of input `k` to the first pump after which
//! `predictor().last_acked_seq() >= k`. The bot pumps once per tick, so a sample is late by
//! up to one tick compared with the snapshot's arrival (it is what a game polling at the
//! tick rate sees).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mmo_core::control::DisconnectReason;
use mmo_core::input::MoveInput;
use mmo_core::session::client::{ClientEvent, ClientState};
use mmo_net::client::NetClient;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::access::Access;
use crate::progress::Counters;
use crate::scenario::Scenario;

/// Longest wait for the welcome after the QUIC handshake.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a graceful disconnect to flush.
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);
/// The disconnect reason recorded for a bot that logged out itself.
pub(crate) const LOGOUT: &str = "client_quit";

/// What a bot is told by the run.
#[derive(Clone, Debug)]
pub(crate) struct BotPlan {
    pub iterations: u32,
    pub iteration: Duration,
    pub tick: Duration,
    pub seed: u64,
}

/// What one bot measured.
#[derive(Debug)]
pub(crate) struct BotOutcome {
    /// When the connect attempt started and ended.
    pub connect_started: Instant,
    pub connect_ended: Instant,
    /// `Ok(connect time)` or the failure's reason code and message.
    pub connect: Result<Duration, (String, String)>,
    /// Input-to-ack latencies, microseconds.
    pub ack_latency_us: Histogram<u64>,
    pub snapshots_received: u64,
    pub snapshots_expected: u64,
    /// Session payload bytes per second over the active time (`None` when never active).
    pub bytes_up_per_s: Option<f64>,
    pub bytes_down_per_s: Option<f64>,
    /// UDP bytes per second (QUIC overhead, acks and retransmissions included).
    pub udp_bytes_up_per_s: Option<f64>,
    pub udp_bytes_down_per_s: Option<f64>,
    pub abilities_requested: u64,
    pub inventory_opens: u64,
    /// How the session ended (`client_quit` for a graceful logout), once connected.
    pub disconnect_reason: Option<String>,
}

/// Runs bot `index` to the end. Never panics on network trouble: everything is recorded.
pub(crate) async fn run_bot(
    index: usize,
    access: Access,
    plan: BotPlan,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
) -> BotOutcome {
    let connect_started = Instant::now();
    let mut outcome = BotOutcome {
        connect_started,
        connect_ended: connect_started,
        connect: Err((String::new(), String::new())),
        ack_latency_us: new_histogram(),
        snapshots_received: 0,
        snapshots_expected: 0,
        bytes_up_per_s: None,
        bytes_down_per_s: None,
        udp_bytes_up_per_s: None,
        udp_bytes_down_per_s: None,
        abilities_requested: 0,
        inventory_opens: 0,
        disconnect_reason: None,
    };
    let connected = connect(index, &access, plan.tick).await;
    outcome.connect_ended = Instant::now();
    Counters::bump(&counters.attempted);
    match connected {
        Ok(client) => {
            outcome.connect = Ok(outcome.connect_ended - connect_started);
            Counters::bump(&counters.connected);
            counters.activate();
            play(client, index, &plan, &counters, stop, &mut outcome).await;
            counters.deactivate();
        }
        Err(failure) => outcome.connect = Err(failure),
    }
    Counters::bump(&counters.done);
    outcome
}

fn new_histogram() -> Histogram<u64> {
    // Invariant: 3 significant figures is within hdrhistogram's 0..=5.
    let mut h = Histogram::new(3).expect("sigfig 3 is valid");
    h.auto(true);
    h
}

/// Login, QUIC handshake, and the welcome (pumping at the tick rate meanwhile).
async fn connect(
    index: usize,
    access: &Access,
    tick: Duration,
) -> Result<NetClient, (String, String)> {
    let mut client = access
        .connect(index)
        .await
        .map_err(|f| (f.code, f.message))?;
    let deadline = Instant::now() + WELCOME_TIMEOUT;
    let mut every = tokio::time::interval(tick);
    loop {
        every.tick().await;
        client.pump();
        while let Some(event) = client.poll_event() {
            if let ClientEvent::Disconnected { reason, message } = event {
                return Err((
                    format!("refused_{}", reason.as_str()),
                    format!("bot-{index}: refused before the welcome: {message}"),
                ));
            }
        }
        match client.state() {
            ClientState::Active => return Ok(client),
            ClientState::Closed => {
                return Err((
                    "closed_before_welcome".into(),
                    format!("bot-{index}: session closed before the welcome"),
                ));
            }
            ClientState::LoggingIn if Instant::now() >= deadline => {
                client.disconnect(Duration::ZERO).await;
                return Err((
                    "welcome_timeout".into(),
                    format!("bot-{index}: no welcome within {WELCOME_TIMEOUT:?}"),
                ));
            }
            ClientState::LoggingIn => {}
        }
    }
}

/// The scenario, from the welcome to the logout.
async fn play(
    mut client: NetClient,
    index: usize,
    plan: &BotPlan,
    counters: &Counters,
    stop: watch::Receiver<bool>,
    outcome: &mut BotOutcome,
) {
    let active_since = Instant::now();
    let mut scenario = Scenario::new(plan.seed, index, plan.iteration);
    let mut every = tokio::time::interval(plan.tick);
    every.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut pending: VecDeque<(u32, Instant)> = VecDeque::new();
    let idle = MoveInput::default();
    let mut ended_by_server: Option<DisconnectReason> = None;
    // One loop over ticks for the whole scenario, so every tick sends one input; the
    // iteration a tick belongs to is decided by time (iteration `i` covers
    // `[i, i + 1) * plan.iteration` after the start), as the scenario's "1 s" is wall time.
    let started = Instant::now();
    let mut current: Option<(u32, crate::scenario::IterationPlan)> = None;
    loop {
        every.tick().await;
        let elapsed = started.elapsed();
        let i = (elapsed.as_secs_f64() / plan.iteration.as_secs_f64().max(1e-6)) as u32;
        if i >= plan.iterations || *stop.borrow() {
            break;
        }
        if current.as_ref().is_none_or(|(at, _)| *at != i) {
            let step = scenario.plan(i);
            if step.use_ability {
                outcome.abilities_requested += 1;
            }
            if step.open_inventory {
                outcome.inventory_opens += 1;
            }
            current = Some((i, step));
        }
        client.pump();
        record_acks(&client, &mut pending, &mut outcome.ack_latency_us);
        while let Some(event) = client.poll_event() {
            if let ClientEvent::Disconnected { reason, .. } = event {
                ended_by_server = Some(reason);
            }
        }
        if ended_by_server.is_some() || client.state() == ClientState::Closed {
            break;
        }
        let Some((_, step)) = &current else {
            continue;
        };
        let into_iteration = elapsed.saturating_sub(plan.iteration * i);
        let input = if into_iteration < step.walk_for {
            step.walk
        } else {
            idle
        };
        if let Some(seq) = client.send_input(input) {
            pending.push_back((seq, Instant::now()));
        }
    }
    Counters::bump(&counters.leaving);
    let active_s = active_since.elapsed().as_secs_f64();
    let stats = client.session().stats();
    outcome.snapshots_received = stats.snapshots_received;
    outcome.snapshots_expected = stats.snapshots_expected;
    if active_s > 0.0 {
        outcome.bytes_up_per_s = Some(stats.bytes_out as f64 / active_s);
        outcome.bytes_down_per_s = Some(stats.bytes_in as f64 / active_s);
        // The UDP counters also cover the handshake and login before the active time: a
        // small overestimate on short runs.
        let quic = client.stats();
        outcome.udp_bytes_up_per_s = Some(quic.udp_bytes_out as f64 / active_s);
        outcome.udp_bytes_down_per_s = Some(quic.udp_bytes_in as f64 / active_s);
    }
    outcome.disconnect_reason = Some(match ended_by_server {
        Some(reason) => reason.as_str().to_owned(),
        None if client.state() == ClientState::Closed => "connection_lost".to_owned(),
        None => LOGOUT.to_owned(),
    });
    client.disconnect(DISCONNECT_GRACE).await;
}

/// Records the latency of every pending input the newest applied snapshot acknowledged.
fn record_acks(
    client: &NetClient,
    pending: &mut VecDeque<(u32, Instant)>,
    latencies_us: &mut Histogram<u64>,
) {
    let Some(acked) = client.session().predictor().map(|p| p.last_acked_seq()) else {
        return;
    };
    let now = Instant::now();
    while let Some(&(seq, sent)) = pending.front() {
        if seq > acked {
            break;
        }
        pending.pop_front();
        let us = u64::try_from((now - sent).as_micros()).unwrap_or(u64::MAX);
        // Auto-resizing: recording cannot fail for a finite u64.
        let _ = latencies_us.record(us.max(1));
    }
}
