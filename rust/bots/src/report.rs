//! The final report of a run: aggregated over bots with hdrhistogram, printed as a table or
//! as one JSON object (`--json`). Every figure is measured; one that could not be is `null`
//! in JSON (`-` in the table) and a note says why.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::bot::BotOutcome;
use crate::capacity::{CapacityPlan, RoleFigures};
use crate::server_figures::{ActivityFigures, ReplicationPerPlayer, ServerFigures, TrafficFigures};
use crate::tally::RequestTally;
use crate::timeline::Timeline;

/// The machine the load tester ran on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Machine {
    /// Cores available to this process (`std::thread::available_parallelism`).
    pub cores: usize,
}

/// The figures of one kind of gameplay request over all bots (abilities, or inventory
/// operations). Field names are the JSON keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RequestFigures {
    /// Requests sent.
    pub requests: u64,
    /// Results without a refusal.
    pub ok: u64,
    /// Results with a refusal.
    pub refused: u64,
    /// Refusals by kind (`ability_global_cooldown`, `ability_out_of_range`, ...).
    pub refused_by_kind: BTreeMap<String, u64>,
    /// Scenario steps that sent nothing, by reason (`cooldown`, `not_enough_resources`,
    /// `dead`, `previous_unanswered`, ...): the bot does not send what the server's last
    /// answers say it would refuse as a strike.
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// Requests without a result when their bot logged out (after up to 2 s of waiting).
    pub unanswered: u64,
    /// Request send to the first tick pump that polls its result, median, ms.
    pub result_ms_p50: Option<f64>,
    /// Request to result, 99th percentile, ms.
    pub result_ms_p99: Option<f64>,
}

/// Sums the bots' tallies of one kind of request.
fn request_figures<'a>(tallies: impl Iterator<Item = &'a RequestTally>) -> RequestFigures {
    let mut f = RequestFigures::default();
    let mut result_us = histogram();
    for t in tallies {
        f.requests += t.sent;
        f.ok += t.ok;
        for (kind, n) in &t.refused {
            f.refused += n;
            *f.refused_by_kind.entry(kind.clone()).or_insert(0) += n;
        }
        for (reason, n) in &t.skipped {
            *f.skipped_by_reason.entry((*reason).to_owned()).or_insert(0) += n;
        }
        f.unanswered += t.unanswered();
        let _ = result_us.add(&t.result_us);
    }
    f.result_ms_p50 = quantile(&result_us, 0.5, 1e-3);
    f.result_ms_p99 = quantile(&result_us, 0.99, 1e-3);
    f
}

/// Resumptions through another gateway (`crate::resume`): bots whose gateway fell silent
/// for 1 s dialled another gateway of their login answer's `resume_addrs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ResumeFigures {
    /// Dials started.
    pub attempts: u64,
    /// Dials that failed or timed out.
    pub dial_failures: u64,
    /// Sessions resumed (`Resumed` received).
    pub resumed: u64,
    /// Bots that resumed at least once.
    pub bots_resumed: u64,
    /// Last datagram heard before the silence to `Resumed`, median, ms.
    pub gap_ms_p50: Option<f64>,
    /// That gap, 99th percentile, ms.
    pub gap_ms_p99: Option<f64>,
    /// That gap, the longest, ms.
    pub gap_ms_max: Option<f64>,
}

impl ResumeFigures {
    fn of<'a>(tallies: impl Iterator<Item = &'a crate::resume::ResumeTally>) -> Self {
        let mut f = ResumeFigures::default();
        let mut gap_us = histogram();
        for t in tallies {
            f.attempts += t.attempts;
            f.dial_failures += t.dial_failures;
            f.resumed += t.resumed;
            f.bots_resumed += u64::from(t.resumed > 0);
            let _ = gap_us.add(&t.gap_us);
        }
        f.gap_ms_p50 = quantile(&gap_us, 0.5, 1e-3);
        f.gap_ms_p99 = quantile(&gap_us, 0.99, 1e-3);
        f.gap_ms_max = (!gap_us.is_empty()).then(|| gap_us.max() as f64 * 1e-3);
        f
    }
}

/// What a run measured. Field names are the JSON keys.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Bots launched.
    pub bots: usize,
    /// Bots that were welcomed.
    pub connected: usize,
    /// The most bots connected at once.
    pub ccu_peak: usize,
    /// Bots that never got a welcome.
    pub connect_failures: usize,
    /// Connect failures by reason code.
    pub connect_failure_reasons: BTreeMap<String, usize>,
    /// One example message per connect failure reason.
    pub connect_failure_examples: BTreeMap<String, String>,
    /// Successful connects per second of the connect burst (first attempt start to last
    /// attempt end). Bots start at `--ramp-per-s`, so this is capped by the ramp: it
    /// measures the server only when it falls clearly below the ramp rate.
    pub handshakes_per_s: Option<f64>,
    /// Connect time (HTTP login + QUIC handshake + welcome), median, ms.
    pub connect_ms_p50: Option<f64>,
    /// Connect time, 99th percentile, ms.
    pub connect_ms_p99: Option<f64>,
    /// Input send to the first pump that sees it acknowledged, median, ms.
    pub input_to_ack_ms_p50: Option<f64>,
    /// Input-to-ack, 95th percentile, ms.
    pub input_to_ack_ms_p95: Option<f64>,
    /// Input-to-ack, 99th percentile, ms.
    pub input_to_ack_ms_p99: Option<f64>,
    /// Input-to-ack samples.
    pub input_to_ack_samples: u64,
    /// Sum of snapshots received over sum of snapshots expected (by sequence numbers).
    pub snapshot_delivery_ratio: Option<f64>,
    /// Prediction corrections of all bots (the server's state of the bot's own character
    /// differed from its prediction), summed.
    pub corrections: u64,
    /// Per-client upload rate of session payload (input datagrams and control frames) over
    /// its active time, median, bytes/s.
    pub bytes_per_s_up_p50: Option<f64>,
    /// Per-client upload payload rate, 99th percentile, bytes/s.
    pub bytes_per_s_up_p99: Option<f64>,
    /// Per-client download payload rate (snapshots and control frames), median, bytes/s.
    pub bytes_per_s_down_p50: Option<f64>,
    /// Per-client download payload rate, 99th percentile, bytes/s.
    pub bytes_per_s_down_p99: Option<f64>,
    /// Per-client upload rate on the wire (UDP payload: QUIC headers, acks, handshake
    /// included), median, bytes/s.
    pub udp_bytes_per_s_up_p50: Option<f64>,
    /// Per-client UDP upload rate, 99th percentile, bytes/s.
    pub udp_bytes_per_s_up_p99: Option<f64>,
    /// Per-client UDP download rate, median, bytes/s.
    pub udp_bytes_per_s_down_p50: Option<f64>,
    /// Per-client UDP download rate, 99th percentile, bytes/s.
    pub udp_bytes_per_s_down_p99: Option<f64>,
    /// UDP bytes all bots received over all their active time, bytes/s per bot: the egress
    /// per player the capacity plan prices (measured on the wire at the clients).
    pub udp_bytes_per_s_down_mean: Option<f64>,
    /// Ability steps the scenario reached (every 10th iteration): each sent a request or
    /// was skipped with a reason.
    pub abilities_requested: u64,
    /// Inventory steps the scenario reached (every 20th iteration): each sent an operation
    /// or was skipped with a reason.
    pub inventory_opens: u64,
    /// Ability requests (`strike`, `self_heal`) and their results.
    pub abilities: RequestFigures,
    /// Inventory operations (swap, split, merge) and their results.
    pub inventory_ops: RequestFigures,
    /// Combat events received by the bots (as caster, target or observer).
    pub combat_events: u64,
    /// Of those, damage events.
    pub damage_events: u64,
    /// Sessions resumed through another gateway after their gateway fell silent.
    pub resumptions: ResumeFigures,
    /// One example of the server's message per disconnect reason other than the bot's
    /// own logout (e.g. which anti-cheat strike kicked a bot).
    pub disconnect_examples: BTreeMap<String, String>,
    /// Bots whose session ended with `kicked` (anti-cheat); any fails the run.
    pub bots_kicked: usize,
    /// How connected bots' sessions ended, by reason (`client_quit`: graceful logout).
    pub disconnect_reasons: BTreeMap<String, usize>,
    /// Upper bound of the histogram bucket holding the server's median tick, ms.
    pub server_tick_p50_ms_upper_bound: Option<f64>,
    /// Upper bound of the bucket holding the server's 99th percentile tick, ms.
    pub server_tick_p99_ms_upper_bound: Option<f64>,
    /// The server's longest tick since it started, ms.
    pub server_tick_max_ms: Option<f64>,
    /// Ticks the server's zones skipped during the steady phase because they fell behind
    /// (skipped ticks appear in no tick quantile).
    pub server_ticks_skipped: Option<f64>,
    /// Ticks the server replicated at a degraded overload level during the steady phase.
    pub server_replication_degraded_ticks: Option<f64>,
    /// Bots that read only each snapshot's fixed part (`--light`); the others decode
    /// everything.
    pub light_bots: usize,
    /// The load tester's own CPU over the steady phase, cores (`getrusage`).
    pub bots_cpu_cores: Option<f64>,
    /// The cores the bots may use (`--worker-threads`, at most the machine's cores).
    pub bots_cores_available: usize,
    /// True when the bots used more than 85 % of their cores: their own ticks ran late,
    /// so latency figures include that and the run does not measure the server.
    pub void: bool,
    /// Server CPU during the steady phase, cores.
    pub server_cpu_cores: Option<f64>,
    /// Server resident memory at peak CCU, MiB.
    pub server_rss_mib: Option<f64>,
    /// Server memory added per connected player, KiB.
    pub server_memory_per_player_kib: Option<f64>,
    /// Of that, the replication state's heap per player, KiB, by part (the server's
    /// accounting; the rest is QUIC and TLS, tasks, sessions, allocator overhead).
    pub server_replication_kib_per_player: Option<ReplicationPerPlayer>,
    /// Wall time of the steady phase the server figures cover, s.
    pub steady_phase_s: Option<f64>,
    /// Wall time from the first bot's launch to the last bot's end, s.
    pub duration_s: f64,
    /// The run's seed.
    pub seed: u64,
    /// This machine.
    pub machine: Machine,
    /// The server's role (`all`, `gateway`, `zone`), from its metrics.
    pub server_role: Option<String>,
    /// The server's players, connections and handoffs over the steady phase.
    pub server_activity: ActivityFigures,
    /// The server's traffic over the steady phase.
    pub server_traffic: TrafficFigures,
    /// The figures of the other processes named with `--also-metrics`, in that order.
    pub processes: Vec<ProcessFigures>,
    /// The target and the `--also-metrics` processes grouped by role, per player
    /// (`capacity`).
    pub roles: Vec<RoleFigures>,
    /// The fleet those figures imply at `--plan-ccu` players.
    pub capacity: Option<CapacityPlan>,
    /// The input-to-ack distribution: the latency at each of [`CDF_FRACTIONS`].
    pub input_to_ack_cdf: Vec<CdfPoint>,
    /// CCU and each process's tick, CPU and players over time (`timeline`).
    pub timeline: Timeline,
    /// How to read the figures, and why any is missing.
    pub notes: Vec<String>,
}

/// One point of a latency distribution: `fraction` of the samples took at most `ms`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CdfPoint {
    /// Latency, ms.
    pub ms: f64,
    /// Share of the samples at or below it, `0..=1`.
    pub fraction: f64,
}

/// The fractions at which the latency distribution is reported: every 2 % up to 98 %, then
/// the tail.
pub const CDF_FRACTIONS: &[f64] = &[
    0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.22, 0.24, 0.26, 0.28, 0.3,
    0.32, 0.34, 0.36, 0.38, 0.4, 0.42, 0.44, 0.46, 0.48, 0.5, 0.52, 0.54, 0.56, 0.58, 0.6, 0.62,
    0.64, 0.66, 0.68, 0.7, 0.72, 0.74, 0.76, 0.78, 0.8, 0.82, 0.84, 0.86, 0.88, 0.9, 0.92, 0.94,
    0.96, 0.98, 0.99, 0.995, 0.999, 0.9999, 1.0,
];

fn cdf(h: &Histogram<u64>, scale: f64) -> Vec<CdfPoint> {
    if h.is_empty() {
        return Vec::new();
    }
    CDF_FRACTIONS
        .iter()
        .map(|&fraction| CdfPoint {
            ms: h.value_at_quantile(fraction) as f64 * scale,
            fraction,
        })
        .collect()
}

/// Another process's figures over the same steady phase (`--also-metrics`), from its
/// `/metrics` as for the server's own (see `server_figures`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessFigures {
    /// Its HTTP address.
    pub http: String,
    /// Upper bound of the bucket holding its median tick, ms (`None`: it has no zones).
    pub tick_p50_ms_upper_bound: Option<f64>,
    /// Upper bound of the bucket holding its 99th percentile tick, ms.
    pub tick_p99_ms_upper_bound: Option<f64>,
    /// Its longest tick since it started, ms.
    pub tick_max_ms: Option<f64>,
    /// Ticks its zones skipped during the steady phase.
    pub ticks_skipped: Option<f64>,
    /// Ticks its zones replicated at a degraded overload level during the steady phase.
    pub degraded_ticks: Option<f64>,
    /// Its role (`all`, `gateway`, `zone`), from its metrics.
    pub role: Option<String>,
    /// Its players, connections and handoffs.
    pub activity: ActivityFigures,
    /// Its traffic.
    pub traffic: TrafficFigures,
    /// Its CPU over the steady phase, cores.
    pub cpu_cores: Option<f64>,
    /// Its resident memory at peak CCU, MiB.
    pub rss_mib: Option<f64>,
    /// Its resident memory growth per player, KiB.
    pub memory_per_player_kib: Option<f64>,
    /// Why any figure is missing.
    pub notes: Vec<String>,
}

impl ProcessFigures {
    /// The figures of the process at `http`.
    #[must_use]
    pub fn new(http: String, figures: ServerFigures) -> Self {
        ProcessFigures {
            http,
            tick_p50_ms_upper_bound: figures.tick_p50_ms_upper_bound,
            tick_p99_ms_upper_bound: figures.tick_p99_ms_upper_bound,
            tick_max_ms: figures.tick_max_ms,
            ticks_skipped: figures.ticks_skipped,
            degraded_ticks: figures.degraded_ticks,
            role: figures.role,
            activity: figures.activity,
            traffic: figures.traffic,
            cpu_cores: figures.cpu_cores,
            rss_mib: figures.rss_mib,
            memory_per_player_kib: figures.memory_per_player_kib,
            notes: figures.notes,
        }
    }
}

/// Everything the run knows besides the bots' outcomes.
pub(crate) struct RunFacts {
    pub bots: usize,
    pub ccu_peak: usize,
    pub duration: Duration,
    pub steady_phase: Option<Duration>,
    pub seed: u64,
    pub server: ServerFigures,
    /// The `--also-metrics` processes' figures.
    pub processes: Vec<ProcessFigures>,
    /// The bots' own CPU over the steady phase, cores.
    pub bots_cpu_cores: Option<f64>,
    /// The cores the bots may use.
    pub bot_cores: usize,
    /// Bots that read only snapshot heads (`--light`).
    pub light_bots: usize,
    /// Per-role figures of every scraped process.
    pub roles: Vec<RoleFigures>,
    /// `--plan-ccu` and its prices.
    pub plan: Option<crate::options::PlanRequest>,
    /// The run over time.
    pub timeline: Timeline,
    pub notes: Vec<String>,
}

/// The disconnect reason of a session ended by the anti-cheat.
const KICKED: &str = "kicked";

fn histogram() -> Histogram<u64> {
    // Invariant: 3 significant figures is within hdrhistogram's 0..=5.
    let mut h = Histogram::new(3).expect("sigfig 3 is valid");
    h.auto(true);
    h
}

fn quantile(h: &Histogram<u64>, q: f64, scale: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 * scale)
}

impl Report {
    pub(crate) fn aggregate(outcomes: &[BotOutcome], facts: RunFacts) -> Report {
        let mut connect_us = histogram();
        let mut ack_us = histogram();
        let mut up = histogram();
        let mut down = histogram();
        let mut udp_up = histogram();
        let mut udp_down = histogram();
        let mut failure_reasons = BTreeMap::new();
        let mut failure_examples = BTreeMap::new();
        let mut disconnect_reasons = BTreeMap::new();
        let mut disconnect_examples = BTreeMap::new();
        let (mut received, mut expected, mut corrections) = (0u64, 0u64, 0u64);
        let (mut abilities, mut inventories) = (0u64, 0u64);
        let (mut combat_events, mut damage_events) = (0u64, 0u64);
        let mut burst: Option<(Instant, Instant)> = None;
        let mut connected = 0usize;
        for o in outcomes {
            burst = Some(match burst {
                None => (o.connect_started, o.connect_ended),
                Some((a, b)) => (a.min(o.connect_started), b.max(o.connect_ended)),
            });
            match &o.connect {
                Ok(d) => {
                    connected += 1;
                    // Auto-resizing histograms accept any u64.
                    let _ = connect_us.record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
                }
                Err((code, message)) => {
                    *failure_reasons.entry(code.clone()).or_insert(0) += 1;
                    failure_examples
                        .entry(code.clone())
                        .or_insert_with(|| message.clone());
                }
            }
            let _ = ack_us.add(&o.ack_latency_us);
            received += o.snapshots_received;
            expected += o.snapshots_expected;
            corrections += o.corrections;
            if let Some(b) = o.bytes_up_per_s {
                let _ = up.record(b.round() as u64);
            }
            if let Some(b) = o.bytes_down_per_s {
                let _ = down.record(b.round() as u64);
            }
            if let Some(b) = o.udp_bytes_up_per_s {
                let _ = udp_up.record(b.round() as u64);
            }
            if let Some(b) = o.udp_bytes_down_per_s {
                let _ = udp_down.record(b.round() as u64);
            }
            abilities += o.gameplay.abilities.steps;
            inventories += o.gameplay.inventory.steps;
            combat_events += o.gameplay.combat_events;
            damage_events += o.gameplay.damage_events;
            if let Some(r) = &o.disconnect_reason {
                *disconnect_reasons.entry(r.clone()).or_insert(0) += 1;
                if let (Some(m), false) = (&o.disconnect_message, r == crate::bot::LOGOUT) {
                    disconnect_examples
                        .entry(r.clone())
                        .or_insert_with(|| m.clone());
                }
            }
        }
        // All bots' bytes over all their active time: a bot that ended early does not weigh
        // its handshake bytes over a short time as much as a per-bot mean would.
        let (down_bytes, down_active_s) = outcomes
            .iter()
            .filter_map(|o| o.udp_down)
            .fold((0u64, 0.0f64), |(b, s), d| (b + d.bytes, s + d.active_s));
        let udp_down_mean = (down_active_s > 0.0).then(|| down_bytes as f64 / down_active_s);
        let capacity = facts.plan.map(|request| {
            crate::capacity::plan(&facts.roles, udp_down_mean, request.ccu, request.prices)
        });
        let handshakes_per_s = burst.and_then(|(a, b)| {
            let s = (b - a).as_secs_f64();
            (connected > 0 && s > 0.0).then(|| connected as f64 / s)
        });
        let mut notes = facts.notes;
        match facts.bots_cpu_cores {
            Some(c) if c > crate::self_cpu::VOID_ABOVE_SHARE * facts.bot_cores as f64 => {
                notes.push(format!(
                    "VOID: the bots used {c:.2} of their {} cores (over 85 %): their own ticks \
                     ran late, so the latency figures measure the load tester, not the server",
                    facts.bot_cores
                ));
            }
            Some(_) => {}
            None => notes.push(
                "bots' CPU not measured (no getrusage here, or a steady phase under 1 s)".into(),
            ),
        }
        if let (Some(bots), Some(server), Some(machine_cores)) = (
            facts.bots_cpu_cores,
            facts.server.cpu_cores,
            crate::self_cpu::machine_cores(),
        ) && bots + server > 0.9 * machine_cores as f64
        {
            notes.push(format!(
                "the machine was saturated: bots {bots:.2} + server {server:.2} cores of \
                 {machine_cores} (over 90 %): latencies include waiting for a core (with an \
                 in-process server, its CPU is counted in the bots' too)"
            ));
        }
        notes.push(
            "input_to_ack_ms: input send to the arrival of the first snapshot datagram that \
             acknowledges it"
                .into(),
        );
        notes.push(
            "abilities / inventory_ops result_ms: request send to the first tick pump that \
             polls its result (resolution one tick)"
                .into(),
        );
        notes.push(
            "server_tick_*_upper_bound: upper bound of the Prometheus bucket holding the \
             quantile, over the steady phase"
                .into(),
        );
        notes.extend(facts.server.notes.iter().cloned());
        Report {
            bots: facts.bots,
            connected,
            ccu_peak: facts.ccu_peak,
            connect_failures: outcomes.len() - connected,
            connect_failure_reasons: failure_reasons,
            connect_failure_examples: failure_examples,
            handshakes_per_s,
            connect_ms_p50: quantile(&connect_us, 0.5, 1e-3),
            connect_ms_p99: quantile(&connect_us, 0.99, 1e-3),
            input_to_ack_ms_p50: quantile(&ack_us, 0.5, 1e-3),
            input_to_ack_ms_p95: quantile(&ack_us, 0.95, 1e-3),
            input_to_ack_ms_p99: quantile(&ack_us, 0.99, 1e-3),
            input_to_ack_samples: ack_us.len(),
            input_to_ack_cdf: cdf(&ack_us, 1e-3),
            snapshot_delivery_ratio: (expected > 0).then(|| received as f64 / expected as f64),
            corrections,
            bytes_per_s_up_p50: quantile(&up, 0.5, 1.0),
            bytes_per_s_up_p99: quantile(&up, 0.99, 1.0),
            bytes_per_s_down_p50: quantile(&down, 0.5, 1.0),
            bytes_per_s_down_p99: quantile(&down, 0.99, 1.0),
            udp_bytes_per_s_up_p50: quantile(&udp_up, 0.5, 1.0),
            udp_bytes_per_s_up_p99: quantile(&udp_up, 0.99, 1.0),
            udp_bytes_per_s_down_p50: quantile(&udp_down, 0.5, 1.0),
            udp_bytes_per_s_down_p99: quantile(&udp_down, 0.99, 1.0),
            udp_bytes_per_s_down_mean: udp_down_mean,
            abilities_requested: abilities,
            inventory_opens: inventories,
            abilities: request_figures(outcomes.iter().map(|o| &o.gameplay.abilities)),
            inventory_ops: request_figures(outcomes.iter().map(|o| &o.gameplay.inventory)),
            combat_events,
            damage_events,
            resumptions: ResumeFigures::of(outcomes.iter().map(|o| &o.resumes)),
            bots_kicked: disconnect_reasons.get(KICKED).copied().unwrap_or(0),
            disconnect_reasons,
            disconnect_examples,
            server_tick_p50_ms_upper_bound: facts.server.tick_p50_ms_upper_bound,
            server_tick_p99_ms_upper_bound: facts.server.tick_p99_ms_upper_bound,
            server_tick_max_ms: facts.server.tick_max_ms,
            server_ticks_skipped: facts.server.ticks_skipped,
            server_replication_degraded_ticks: facts.server.degraded_ticks,
            light_bots: facts.light_bots,
            bots_cpu_cores: facts.bots_cpu_cores,
            bots_cores_available: facts.bot_cores,
            void: facts
                .bots_cpu_cores
                .is_some_and(|c| c > crate::self_cpu::VOID_ABOVE_SHARE * facts.bot_cores as f64),
            server_cpu_cores: facts.server.cpu_cores,
            server_rss_mib: facts.server.rss_mib,
            server_memory_per_player_kib: facts.server.memory_per_player_kib,
            server_replication_kib_per_player: facts.server.replication_per_player_kib,
            steady_phase_s: facts.steady_phase.map(|d| d.as_secs_f64()),
            duration_s: facts.duration.as_secs_f64(),
            seed: facts.seed,
            machine: Machine {
                cores: std::thread::available_parallelism().map_or(1, usize::from),
            },
            server_role: facts.server.role.clone(),
            server_activity: facts.server.activity,
            server_traffic: facts.server.traffic,
            processes: facts.processes,
            roles: facts.roles,
            capacity,
            timeline: facts.timeline,
            notes,
        }
    }

    /// Why the run counts as failed (for a non-zero exit code): no bot connected, a connect
    /// failure, or a session that ended otherwise than by the bot's logout (kicked, timed
    /// out, the server gone).
    #[must_use]
    pub fn failure(&self) -> Option<String> {
        if self.connected == 0 {
            let first = self
                .connect_failure_examples
                .values()
                .next()
                .map_or(String::new(), |m| format!(" (e.g. {m})"));
            return Some(format!("no bot connected{first}"));
        }
        if self.connect_failures > 0 {
            let reasons: Vec<String> = self
                .connect_failure_reasons
                .iter()
                .map(|(r, n)| format!("{r} x{n}"))
                .collect();
            return Some(format!(
                "{} of {} bots failed to connect: {}",
                self.connect_failures,
                self.bots,
                reasons.join(", ")
            ));
        }
        let other_ends: Vec<String> = self
            .disconnect_reasons
            .iter()
            .filter(|(reason, _)| reason.as_str() != crate::bot::LOGOUT)
            .map(|(r, n)| format!("{r} x{n}"))
            .collect();
        if !other_ends.is_empty() {
            return Some(format!(
                "sessions ended otherwise than by logging out: {}",
                other_ends.join(", ")
            ));
        }
        None
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        // Serializing plain structs, maps with string keys and numbers cannot fail.
        serde_json::to_string(self).expect("a report always serializes")
    }

    /// The report as a human-readable table.
    #[must_use]
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "{name:<34} {value}");
        };
        let num = |v: Option<f64>| v.map_or("-".to_owned(), |x| format!("{x:.2}"));
        let map = |m: &BTreeMap<String, usize>| key_values(m);
        let counts = |m: &BTreeMap<String, u64>| key_values(m);
        row("bots", self.bots.to_string());
        row("connected", self.connected.to_string());
        row("ccu_peak", self.ccu_peak.to_string());
        row("connect_failures", self.connect_failures.to_string());
        row(
            "connect_failure_reasons",
            map(&self.connect_failure_reasons),
        );
        row("handshakes_per_s", num(self.handshakes_per_s));
        row(
            "connect_ms p50 / p99",
            format!(
                "{} / {}",
                num(self.connect_ms_p50),
                num(self.connect_ms_p99)
            ),
        );
        row(
            "input_to_ack_ms p50 / p95 / p99",
            format!(
                "{} / {} / {}  ({} samples)",
                num(self.input_to_ack_ms_p50),
                num(self.input_to_ack_ms_p95),
                num(self.input_to_ack_ms_p99),
                self.input_to_ack_samples
            ),
        );
        row(
            "snapshot_delivery_ratio",
            num(self.snapshot_delivery_ratio.map(|r| r * 100.0)) + " %",
        );
        row("corrections", self.corrections.to_string());
        if self.resumptions.attempts > 0 {
            let r = &self.resumptions;
            row(
                "resumed (bots) / dials failed",
                format!("{} ({}) / {}", r.resumed, r.bots_resumed, r.dial_failures),
            );
            row(
                "resume gap_ms p50 / p99 / max",
                format!(
                    "{} / {} / {}",
                    num(r.gap_ms_p50),
                    num(r.gap_ms_p99),
                    num(r.gap_ms_max)
                ),
            );
        }
        row(
            "bytes_per_s_up p50 / p99",
            format!(
                "{} / {}",
                num(self.bytes_per_s_up_p50),
                num(self.bytes_per_s_up_p99)
            ),
        );
        row(
            "bytes_per_s_down p50 / p99",
            format!(
                "{} / {}",
                num(self.bytes_per_s_down_p50),
                num(self.bytes_per_s_down_p99)
            ),
        );
        row(
            "udp_bytes_per_s_up p50 / p99",
            format!(
                "{} / {}",
                num(self.udp_bytes_per_s_up_p50),
                num(self.udp_bytes_per_s_up_p99)
            ),
        );
        row(
            "udp_bytes_per_s_down p50 / p99",
            format!(
                "{} / {}",
                num(self.udp_bytes_per_s_down_p50),
                num(self.udp_bytes_per_s_down_p99)
            ),
        );
        row(
            "abilities_requested (steps)",
            self.abilities_requested.to_string(),
        );
        row("inventory_opens (steps)", self.inventory_opens.to_string());
        for (name, f) in [
            ("abilities", &self.abilities),
            ("inventory_ops", &self.inventory_ops),
        ] {
            row(
                &format!("{name} sent / ok / refused"),
                format!(
                    "{} / {} / {}  ({} unanswered)",
                    f.requests, f.ok, f.refused, f.unanswered
                ),
            );
            row(
                &format!("{name} refused_by_kind"),
                counts(&f.refused_by_kind),
            );
            row(
                &format!("{name} skipped_by_reason"),
                counts(&f.skipped_by_reason),
            );
            row(
                &format!("{name} result_ms p50 / p99"),
                format!("{} / {}", num(f.result_ms_p50), num(f.result_ms_p99)),
            );
        }
        row(
            "combat_events (damage)",
            format!("{} ({})", self.combat_events, self.damage_events),
        );
        row("bots_kicked", self.bots_kicked.to_string());
        row("disconnect_reasons", map(&self.disconnect_reasons));
        row(
            "server tick ms p50 / p99 (bucket ub)",
            format!(
                "{} / {}",
                num(self.server_tick_p50_ms_upper_bound),
                num(self.server_tick_p99_ms_upper_bound)
            ),
        );
        row("server_tick_max_ms", num(self.server_tick_max_ms));
        row("server_ticks_skipped", num(self.server_ticks_skipped));
        row(
            "server_replication_degraded_ticks",
            num(self.server_replication_degraded_ticks),
        );
        row("light_bots", self.light_bots.to_string());
        row(
            "bots cpu cores (of available)",
            format!(
                "{} ({})",
                num(self.bots_cpu_cores),
                self.bots_cores_available
            ),
        );
        row("void (bots starved)", self.void.to_string());
        row("server_cpu_cores", num(self.server_cpu_cores));
        row("server_rss_mib", num(self.server_rss_mib));
        for p in &self.processes {
            row(
                &format!("{}: tick p50 / p99 / max ms", p.http),
                format!(
                    "{} / {} / {}",
                    num(p.tick_p50_ms_upper_bound),
                    num(p.tick_p99_ms_upper_bound),
                    num(p.tick_max_ms)
                ),
            );
            row(
                &format!("{}: cpu cores, rss MiB", p.http),
                format!("{}, {}", num(p.cpu_cores), num(p.rss_mib)),
            );
            row(
                &format!("{}: role, players, handoffs", p.http),
                format!(
                    "{}, {}, {} ({} to other processes)",
                    p.role.as_deref().unwrap_or("-"),
                    num(p.activity.zone_players),
                    num(p.activity.handoffs),
                    num(p.activity.handoffs_to_other_processes)
                ),
            );
            row(
                &format!("{}: client out / NATS out B/s", p.http),
                format!(
                    "{} / {}",
                    num(p.traffic.client_bytes_out_per_s),
                    num(p.traffic.nats_bytes_sent_per_s)
                ),
            );
        }
        for r in &self.roles {
            row(
                &format!("role {} ({}): per player", r.role, r.processes),
                format!(
                    "{} millicores, {} KiB, client payload {} B/s, NATS {} B/s",
                    num(r.cpu_millicores_per_player),
                    num(r.memory_kib_per_player),
                    num(r.client_payload_bytes_per_s_per_player),
                    num(r.nats_bytes_per_s_per_player)
                ),
            );
        }
        if let Some(plan) = &self.capacity {
            for r in &plan.roles {
                row(
                    &format!("plan {} ccu: {}", plan.ccu, r.role),
                    format!("{:.1} cores, {:.1} GiB", r.cores, r.memory_gib),
                );
            }
            row(
                &format!("plan {} ccu: egress GiB/month", plan.ccu),
                format!("{:.0}", plan.egress_gib_per_month),
            );
            if let Some(c) = &plan.cost {
                row(
                    &format!("plan {} ccu: USD/month", plan.ccu),
                    format!(
                        "{:.0} ({:.3} per concurrent player)",
                        c.total_usd, c.usd_per_concurrent_player
                    ),
                );
            }
        }
        row(
            "server_memory_per_player_kib",
            num(self.server_memory_per_player_kib),
        );
        row(
            "server_replication_kib_per_player",
            self.server_replication_kib_per_player.map_or_else(
                || "-".to_string(),
                |r| {
                    format!(
                        "histories {:.1}, views {:.1}, shared {:.1}",
                        r.histories, r.views, r.shared
                    )
                },
            ),
        );
        row("steady_phase_s", num(self.steady_phase_s));
        row("duration_s", format!("{:.2}", self.duration_s));
        row("seed", self.seed.to_string());
        row("machine cores", self.machine.cores.to_string());
        for (code, example) in &self.connect_failure_examples {
            let _ = writeln!(out, "connect failure {code}: {example}");
        }
        for (reason, example) in &self.disconnect_examples {
            let _ = writeln!(out, "disconnect {reason}: {example}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

/// `k=v k=v` of a count map, `-` when empty.
fn key_values<V: std::fmt::Display>(m: &BTreeMap<String, V>) -> String {
    if m.is_empty() {
        "-".to_owned()
    } else {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
