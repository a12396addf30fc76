//! One headless bot: connects (HTTP login or direct token, QUIC handshake, welcome), plays
//! the scenario at the tick rate (pump, drain events, the iteration's gameplay request if
//! due, one input, every tick), waits a bounded time for the results of its last requests,
//! logs out gracefully, and measures what the report needs.
//!
//! Input-to-ack latency: the send time of input `k` to the arrival of the first snapshot
//! datagram after whose handling `predictor().last_acked_seq() >= k` (the arrival is taken
//! by the client's reading task when QUIC hands the datagram over, see
//! [`NetClient::pump_with`]), so the figure does not include the wait until the bot's next
//! tick.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glam::Vec3;
use hdrhistogram::Histogram;
use mmo_core::control::DisconnectReason;
use mmo_core::entity::EntityId;
use mmo_core::input::MoveInput;
use mmo_core::session::client::{ClientEvent, ClientSession, ClientState, SnapshotHandling};
use mmo_net::client::NetClient;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::access::Access;
use crate::gameplay::{AbilityChoice, GameplayIds, choose_ability, choose_inventory_op};
use crate::progress::Counters;
use crate::resume::{ResumeTally, Resumer};
use crate::scenario::Scenario;
use crate::tally::GameplayTally;

/// Longest wait for the welcome after the QUIC handshake.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a graceful disconnect to flush.
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);
/// Longest wait after the last iteration for the results of requests still unanswered.
const RESULT_GRACE: Duration = Duration::from_secs(2);
/// The disconnect reason recorded for a bot that logged out itself.
pub(crate) const LOGOUT: &str = "client_quit";

/// What a bot is told by the run.
#[derive(Clone, Debug)]
pub(crate) struct BotPlan {
    pub iterations: u32,
    pub iteration: Duration,
    pub tick: Duration,
    pub seed: u64,
    /// The content's ids the bots play with.
    pub gameplay: Arc<GameplayIds>,
    /// `Some(FullSample)`: light bots (header-only snapshots) except a sample that decodes
    /// everything; `None`: every bot decodes everything.
    pub full_sample: Option<FullSample>,
}

/// Which bots of a light run decode everything: `sample` of the `bots`, spread evenly over
/// the indices (all of them when `sample >= bots`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FullSample {
    pub sample: usize,
    pub bots: usize,
}

impl FullSample {
    /// Bot `index` decodes everything when `floor((index + 1) * sample / bots)` steps past
    /// `floor(index * sample / bots)`: exactly `min(sample, bots)` of the indices `0..bots`.
    pub(crate) fn is_full(&self, index: usize) -> bool {
        let bots = self.bots.max(1);
        (index + 1) * self.sample / bots > index * self.sample / bots
    }
}

impl BotPlan {
    /// How bot `index` handles snapshots.
    pub(crate) fn snapshots_of(&self, index: usize) -> SnapshotHandling {
        match self.full_sample {
            Some(s) if !s.is_full(index) => SnapshotHandling::HeaderOnly,
            _ => SnapshotHandling::Full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FullSample;

    #[test]
    fn the_full_sample_has_exactly_its_size() {
        for (sample, bots) in [(50, 1000), (50, 99), (50, 120), (3, 12), (0, 10), (80, 20)] {
            let s = FullSample { sample, bots };
            let full = (0..bots).filter(|&i| s.is_full(i)).count();
            assert_eq!(full, sample.min(bots), "{sample} of {bots}");
        }
    }
}

/// Bytes and the active time they were counted over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ActiveBytes {
    /// Bytes.
    pub bytes: u64,
    /// Seconds the session was active.
    pub active_s: f64,
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
    /// Prediction corrections the session counted.
    pub corrections: u64,
    /// Session payload bytes per second over the active time (`None` when never active).
    pub bytes_up_per_s: Option<f64>,
    pub bytes_down_per_s: Option<f64>,
    /// UDP bytes per second (QUIC overhead, acks and retransmissions included).
    pub udp_bytes_up_per_s: Option<f64>,
    pub udp_bytes_down_per_s: Option<f64>,
    /// UDP bytes received over the whole connection, and the active time they are divided
    /// by, seconds (`None` when never active): the report's fleet-wide egress rate sums these.
    pub udp_down: Option<ActiveBytes>,
    /// Gameplay requests, results and combat events.
    pub gameplay: GameplayTally,
    /// How the session ended (`client_quit` for a graceful logout), once connected.
    pub disconnect_reason: Option<String>,
    /// The server's message when it ended the session.
    pub disconnect_message: Option<String>,
    /// Resumptions through another gateway.
    pub resumes: ResumeTally,
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
        corrections: 0,
        bytes_up_per_s: None,
        bytes_down_per_s: None,
        udp_bytes_up_per_s: None,
        udp_bytes_down_per_s: None,
        udp_down: None,
        gameplay: GameplayTally::new(),
        disconnect_reason: None,
        disconnect_message: None,
        resumes: ResumeTally::new(),
    };
    let connected = connect(index, &access, plan.tick, plan.snapshots_of(index)).await;
    outcome.connect_ended = Instant::now();
    Counters::bump(&counters.attempted);
    match connected {
        Ok((client, resumer)) => {
            outcome.connect = Ok(outcome.connect_ended - connect_started);
            Counters::bump(&counters.connected);
            counters.activate();
            play(client, resumer, index, &plan, &counters, stop, &mut outcome).await;
            counters.deactivate();
        }
        Err(failure) => outcome.connect = Err(failure),
    }
    Counters::bump(&counters.done);
    outcome
}

use crate::tally::new_histogram;

/// Login, QUIC handshake, and the welcome (pumping at the tick rate meanwhile).
async fn connect(
    index: usize,
    access: &Access,
    tick: Duration,
    snapshots: SnapshotHandling,
) -> Result<(NetClient, Resumer), (String, String)> {
    let (mut client, targets) = access
        .connect(index, snapshots)
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
            ClientState::Active => return Ok((client, Resumer::new(targets))),
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
    mut resumer: Resumer,
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
    let mut ended_by_server: Option<(DisconnectReason, String)> = None;
    // One loop over ticks for the whole scenario, so every tick sends one input; the
    // iteration a tick belongs to is decided by time (iteration `i` covers
    // `[i, i + 1) * plan.iteration` after the start), as the scenario's "1 s" is wall time.
    let started = Instant::now();
    let mut current: Option<(u32, crate::scenario::IterationPlan)> = None;
    let (mut ability_due, mut inventory_due) = (false, false);
    loop {
        every.tick().await;
        let elapsed = started.elapsed();
        let i = (elapsed.as_secs_f64() / plan.iteration.as_secs_f64().max(1e-6)) as u32;
        if i >= plan.iterations || *stop.borrow() {
            break;
        }
        if current.as_ref().is_none_or(|(at, _)| *at != i) {
            let step = scenario.plan(i);
            ability_due = step.use_ability;
            inventory_due = step.open_inventory;
            current = Some((i, step));
        }
        client.pump_with(|session, arrived| {
            record_acks(session, arrived, &mut pending, &mut outcome.ack_latency_us);
        });
        if drain_events(&mut client, &mut outcome.gameplay, &mut ended_by_server) {
            resumer.resumed(&mut outcome.resumes);
        }
        if ended_by_server.is_some() || client.state() == ClientState::Closed {
            break;
        }
        resumer.poll(&mut client, &mut outcome.resumes).await;
        if std::mem::take(&mut ability_due) {
            ability_step(&mut client, &plan.gameplay, &mut outcome.gameplay);
        }
        if std::mem::take(&mut inventory_due) {
            inventory_step(&mut client, &plan.gameplay, &mut outcome.gameplay);
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
    // The last iteration's requests get their results (bounded), idling meanwhile.
    let grace_ends = Instant::now() + RESULT_GRACE;
    while ended_by_server.is_none()
        && client.state() == ClientState::Active
        && outcome.gameplay.waiting()
        && Instant::now() < grace_ends
    {
        every.tick().await;
        client.pump_with(|session, arrived| {
            record_acks(session, arrived, &mut pending, &mut outcome.ack_latency_us);
        });
        if drain_events(&mut client, &mut outcome.gameplay, &mut ended_by_server) {
            resumer.resumed(&mut outcome.resumes);
        }
        if let Some(seq) = client.send_input(idle) {
            pending.push_back((seq, Instant::now()));
        }
    }
    Counters::bump(&counters.leaving);
    let active_s = active_since.elapsed().as_secs_f64();
    let stats = client.session().stats();
    outcome.snapshots_received = stats.snapshots_received;
    outcome.snapshots_expected = stats.snapshots_expected;
    outcome.corrections = stats.corrections;
    if active_s > 0.0 {
        outcome.bytes_up_per_s = Some(stats.bytes_out as f64 / active_s);
        outcome.bytes_down_per_s = Some(stats.bytes_in as f64 / active_s);
        // The UDP counters also cover the handshake and login before the active time: a
        // small overestimate on short runs.
        let quic = client.stats();
        outcome.udp_bytes_up_per_s = Some(quic.udp_bytes_out as f64 / active_s);
        outcome.udp_bytes_down_per_s = Some(quic.udp_bytes_in as f64 / active_s);
        outcome.udp_down = Some(ActiveBytes {
            bytes: quic.udp_bytes_in,
            active_s,
        });
    }
    outcome.disconnect_reason = Some(match ended_by_server {
        Some((reason, message)) => {
            outcome.disconnect_message = Some(message);
            reason.as_str().to_owned()
        }
        None if client.state() == ClientState::Closed => "connection_lost".to_owned(),
        None => LOGOUT.to_owned(),
    });
    client.disconnect(DISCONNECT_GRACE).await;
}

/// Polls every queued event: results and combat events go to the tally, a disconnect to
/// `ended_by_server`; true when the session said `Resumed`.
fn drain_events(
    client: &mut NetClient,
    tally: &mut GameplayTally,
    ended_by_server: &mut Option<(DisconnectReason, String)>,
) -> bool {
    let now = Instant::now();
    let mut resumed = false;
    while let Some(event) = client.poll_event() {
        match event {
            ClientEvent::Resumed => resumed = true,
            ClientEvent::Disconnected { reason, message } => {
                *ended_by_server = Some((reason, message));
            }
            ClientEvent::AbilityResult(r) => {
                tally.abilities.answered(r.request, r.refusal.as_ref(), now);
            }
            ClientEvent::InventoryResult(r) => {
                tally.inventory.answered(r.request, r.refusal.as_ref(), now);
            }
            ClientEvent::Combat(e) => tally.combat(&e),
            // The session keeps the inventory and pools it shows; the bot reads them there.
            _ => {}
        }
    }
    resumed
}

/// Whether the server plays the content the bot resolved its ids in.
fn same_content(client: &NetClient, ids: &GameplayIds) -> bool {
    client.session().content_hash() == Some(ids.content_hash)
}

/// The iteration's ability: strike the nearest remote entity in reach, else heal itself
/// (see [`choose_ability`]), or a skip with its reason.
fn ability_step(client: &mut NetClient, ids: &GameplayIds, tally: &mut GameplayTally) {
    if !same_content(client, ids) {
        tally.abilities.skipped("content_mismatch");
        return;
    }
    let now_us = client.now_us();
    let session = client.session_mut();
    let Some(me_m) = session.predictor().map(|p| p.predicted().position_m) else {
        tally.abilities.skipped("not_active");
        return;
    };
    let in_view: Vec<EntityId> = session.remote_ids().collect();
    // Sampling, as a frame would, also sets the render time the request reports as its
    // view time (the lag compensation rewinds the target to it). An entity drawn past its
    // newest sample (extrapolated) may have left already: not a target.
    let remotes: Vec<(EntityId, Vec3)> = in_view
        .into_iter()
        .filter_map(|id| {
            let seen = session.sample_entity(id, now_us)?;
            (!seen.extrapolating).then_some((id, seen.position_m))
        })
        .collect();
    let choice = choose_ability(ids, me_m, &remotes, session.resources(), |a| {
        session.cooldown_left(a, now_us)
    });
    match choice {
        AbilityChoice::Use { ability, target } => match session.use_ability(ability, target) {
            Ok(request) => tally.abilities.sent(request, Instant::now()),
            Err(_) if session.pending_ability().is_some() => {
                tally.abilities.skipped("awaiting_answer");
            }
            Err(_) => tally.abilities.skipped("not_active"),
        },
        AbilityChoice::Skip(reason) => tally.abilities.skipped(reason),
    }
}

/// The iteration's inventory operation (see [`choose_inventory_op`]) on the inventory the
/// server last sent, or a skip with its reason. One operation at a time: a step while the
/// previous one is unanswered is skipped, as the bag it would be chosen on is stale.
fn inventory_step(client: &mut NetClient, ids: &GameplayIds, tally: &mut GameplayTally) {
    if !same_content(client, ids) {
        tally.inventory.skipped("content_mismatch");
        return;
    }
    if tally.inventory.waiting() {
        tally.inventory.skipped("previous_unanswered");
        return;
    }
    let session = client.session_mut();
    let Some(view) = session.inventory() else {
        tally.inventory.skipped("no_inventory_yet");
        return;
    };
    // The cycle index: operations sent so far (saturating far beyond any run's length).
    let step = u32::try_from(tally.inventory.sent).unwrap_or(u32::MAX);
    match choose_inventory_op(ids, view, step) {
        Ok(op) => match session.inventory_op(op) {
            Ok(request) => tally.inventory.sent(request, Instant::now()),
            Err(_) => tally.inventory.skipped("not_active"),
        },
        Err(reason) => tally.inventory.skipped(reason),
    }
}

/// Records the latency of every pending input the snapshot just handled acknowledged: from
/// its send to `arrived`, the snapshot datagram's arrival.
fn record_acks(
    session: &ClientSession,
    arrived: Instant,
    pending: &mut VecDeque<(u32, Instant)>,
    latencies_us: &mut Histogram<u64>,
) {
    let Some(acked) = session.predictor().map(|p| p.last_acked_seq()) else {
        return;
    };
    while let Some(&(seq, sent)) = pending.front() {
        if seq > acked {
            break;
        }
        pending.pop_front();
        let us =
            u64::try_from(arrived.saturating_duration_since(sent).as_micros()).unwrap_or(u64::MAX);
        // Auto-resizing: recording cannot fail for a finite u64.
        let _ = latencies_us.record(us.max(1));
    }
}
