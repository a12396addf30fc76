//! The server's figures in the report, from its Prometheus `/metrics`: scraped before any
//! bot connects (the baseline), at the start of the steady phase (every bot has tried to
//! connect) and at its end (the first bot starts to log out, or the run is stopped).
//!
//! - Tick p50 / p99: the delta of the histogram `mmo_tick_duration_seconds` between the two
//!   steady scrapes, summed over zones; each quantile is reported as the **upper bound of
//!   the bucket** that holds it (hence `_upper_bound` in the field names), never
//!   interpolated.
//! - Tick max: the gauge `mmo_tick_duration_max_seconds` (largest over zones; since the
//!   server started).
//! - CPU: delta of `process_cpu_seconds_total` over the steady phase's wall time (cores).
//! - Memory: `process_resident_memory_bytes` at peak CCU (the larger of the two steady
//!   scrapes), and `(that - baseline) / ccu_peak` per player; of that, the replication
//!   state's heap by part (`mmo_replication_{histories,views,shared}_bytes`, the server's
//!   own accounting from buffer capacities, sampled each second) at the same scrape, per
//!   player. The rest of the resident memory per player is everything else: QUIC and TLS
//!   state, tasks and channels, sessions, allocator overhead.
//!
//! - Role: the `role` label of `mmo_process_role` (`all`, `gateway`, `zone`).
//! - Activity: players in the process's zones (`mmo_zone_players`) and open QUIC
//!   connections (`mmo_connections`) at the steady phase's end; handoffs to neighbour zones
//!   (`mmo_zone_handoffs_total`), of those the handoffs to other processes accepted there
//!   (`mmo_relay_events_total{event="handed_out"}`), the extra inputs taken to drain
//!   standing input backlogs (`mmo_inputs_drained_total`) and the ticks in which a player
//!   took no input (`mmo_input_starved_ticks_total`), counted over the steady phase.
//! - Traffic, bytes per second over the steady phase: session payload to and from clients
//!   as the process's zones count it (`mmo_bytes_out_total`, `mmo_bytes_in_total`: in a
//!   fleet the zone processes, which encode; a gateway counts none) and relay batches
//!   published to NATS (`mmo_relay_bytes_sent_total`). A counter first seen at the steady
//!   phase's end counts from 0 (counters appear at their first event).
//!
//! A metric missing from a scrape gives `None` (JSON `null`) and a note; nothing is made up.
//! (Activity and traffic metrics absent from a process that has no such part, such as NATS
//! bytes in a single process, are `None` without a note.)

use std::time::Instant;

use crate::prometheus::Scrape;

/// The tick histogram.
pub const TICK_HISTOGRAM: &str = "mmo_tick_duration_seconds";
/// The longest-tick gauge.
pub const TICK_MAX_GAUGE: &str = "mmo_tick_duration_max_seconds";
/// Process CPU seconds (the Prometheus process collector's name).
pub const CPU_SECONDS: &str = "process_cpu_seconds_total";
/// Process resident memory (the Prometheus process collector's name).
pub const RSS_BYTES: &str = "process_resident_memory_bytes";
/// Counter of ticks the zones skipped because they fell behind (summed over zones).
pub const TICKS_SKIPPED: &str = "mmo_ticks_skipped_total";
/// Counter of ticks replicated at a degraded overload level (summed over zones).
pub const DEGRADED_TICKS: &str = "mmo_replication_degraded_ticks_total";
/// The info gauge naming the process's role.
pub const PROCESS_ROLE: &str = "mmo_process_role";
/// Gauge of players in a zone (summed over zones).
pub const ZONE_PLAYERS: &str = "mmo_zone_players";
/// Gauge of open QUIC connections.
pub const CONNECTIONS: &str = "mmo_connections";
/// Counter of handoffs to neighbour zones (summed over zones).
pub const ZONE_HANDOFFS: &str = "mmo_zone_handoffs_total";
/// Counter of extra inputs taken to drain standing input backlogs.
pub const INPUTS_DRAINED: &str = "mmo_inputs_drained_total";
/// Counter of ticks in which an active session took no input.
pub const INPUT_STARVED_TICKS: &str = "mmo_input_starved_ticks_total";
/// Counter of relay events, label `event`.
pub const RELAY_EVENTS: &str = "mmo_relay_events_total";
/// Counter of bytes sent to clients.
pub const BYTES_OUT: &str = "mmo_bytes_out_total";
/// Counter of bytes received from clients.
pub const BYTES_IN: &str = "mmo_bytes_in_total";
/// Counter of relay bytes published to NATS.
pub const RELAY_BYTES_SENT: &str = "mmo_relay_bytes_sent_total";
/// Gauges of the replication state's heap, by part (summed over zones).
pub const REPLICATION_HISTORIES_BYTES: &str = "mmo_replication_histories_bytes";
/// See [`REPLICATION_HISTORIES_BYTES`].
pub const REPLICATION_VIEWS_BYTES: &str = "mmo_replication_views_bytes";
/// See [`REPLICATION_HISTORIES_BYTES`].
pub const REPLICATION_SHARED_BYTES: &str = "mmo_replication_shared_bytes";

/// The shortest steady phase a CPU figure is computed over (a shorter one divides the
/// collector's 10 ms CPU granularity by almost nothing).
pub const MIN_CPU_WINDOW_S: f64 = 1.0;

/// One scrape and when it was taken.
#[derive(Clone, Debug)]
pub struct TimedScrape {
    /// What `/metrics` said.
    pub scrape: Scrape,
    /// When.
    pub at: Instant,
}

/// The server's figures (each `None` when its metric was missing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerFigures {
    /// Upper bound of the bucket holding the median tick, milliseconds.
    pub tick_p50_ms_upper_bound: Option<f64>,
    /// Upper bound of the bucket holding the 99th percentile tick, milliseconds.
    pub tick_p99_ms_upper_bound: Option<f64>,
    /// Longest tick since the server started, milliseconds.
    pub tick_max_ms: Option<f64>,
    /// Ticks the zones skipped during the steady phase (they are in no tick quantile).
    pub ticks_skipped: Option<f64>,
    /// Ticks replicated at a degraded overload level during the steady phase (summed over
    /// zones).
    pub degraded_ticks: Option<f64>,
    /// CPU used during the steady phase, in cores.
    pub cpu_cores: Option<f64>,
    /// Resident memory at peak CCU, MiB.
    pub rss_mib: Option<f64>,
    /// Resident memory added per connected player, KiB.
    pub memory_per_player_kib: Option<f64>,
    /// Of that, the replication state's heap per player, KiB, by part.
    pub replication_per_player_kib: Option<ReplicationPerPlayer>,
    /// The process's role (`all`, `gateway`, `zone`), from `mmo_process_role`.
    pub role: Option<String>,
    /// Players, connections and handoffs.
    pub activity: ActivityFigures,
    /// Bytes per second to clients and to NATS.
    pub traffic: TrafficFigures,
    /// Why a figure is missing or how to read it.
    pub notes: Vec<String>,
}

/// A process's players, connections and handoffs (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ActivityFigures {
    /// Players in its zones at the steady phase's end (`None`: it runs no zone).
    pub zone_players: Option<f64>,
    /// Open QUIC connections at the steady phase's end (`None`: it has no endpoint).
    pub connections: Option<f64>,
    /// Players its zones handed to neighbour zones during the steady phase.
    pub handoffs: Option<f64>,
    /// Of those, handoffs to another process that were accepted there.
    pub handoffs_to_other_processes: Option<f64>,
    /// Ticks in which a character took an extra input to drain a standing input backlog
    /// (`mmo_inputs_drained_total`), over the steady phase.
    pub inputs_drained: Option<f64>,
    /// Ticks in which a player's character took no input and stood still
    /// (`mmo_input_starved_ticks_total`), over the steady phase.
    pub input_starved_ticks: Option<f64>,
}

/// A process's traffic over the steady phase, bytes per second (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct TrafficFigures {
    /// Session payload its zones sent to clients (`None`: it runs no zone).
    pub client_bytes_out_per_s: Option<f64>,
    /// Session payload its zones received from clients.
    pub client_bytes_in_per_s: Option<f64>,
    /// Relay batches published to NATS (`None`: it relays nothing).
    pub nats_bytes_sent_per_s: Option<f64>,
}

/// The replication state's heap per connected player, KiB (the server's accounting).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ReplicationPerPlayer {
    /// Snapshot histories: records of the snapshots in flight, per-entity baselines.
    pub histories: f64,
    /// Replication views: visible sets, priority queues.
    pub views: f64,
    /// Shared by all clients (grid, frame, threads' record caches), divided by players.
    pub shared: f64,
}

/// Gets and parses `http://<http_base>/metrics`.
pub async fn scrape(client: &reqwest::Client, http_base: &str) -> Result<TimedScrape, String> {
    let url = format!("http://{http_base}/metrics");
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url}: {status}"));
    }
    let text = response
        .text()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let scrape = Scrape::parse(&text).map_err(|e| format!("GET {url}: {e}"))?;
    Ok(TimedScrape {
        scrape,
        at: Instant::now(),
    })
}

/// Computes the figures from the scrapes that were taken (any may be missing).
#[must_use]
pub fn figures(
    baseline: Option<&TimedScrape>,
    steady_start: Option<&TimedScrape>,
    steady_end: Option<&TimedScrape>,
    ccu_peak: usize,
) -> ServerFigures {
    let mut f = ServerFigures::default();
    let (Some(start), Some(end)) = (steady_start, steady_end) else {
        f.notes
            .push("server metrics not scraped: server figures are null".into());
        return f;
    };
    let (a, b) = (&start.scrape, &end.scrape);
    match (a.histogram(TICK_HISTOGRAM), b.histogram(TICK_HISTOGRAM)) {
        (Some(before), Some(after)) => {
            let delta = after.delta(&before);
            if delta.count() > 0.0 {
                f.tick_p50_ms_upper_bound =
                    bucket_ms(&mut f.notes, "p50", delta.quantile_upper_bound(0.5));
                f.tick_p99_ms_upper_bound =
                    bucket_ms(&mut f.notes, "p99", delta.quantile_upper_bound(0.99));
            } else {
                f.notes.push(format!(
                    "no {TICK_HISTOGRAM} observations in the steady phase"
                ));
            }
        }
        _ => f
            .notes
            .push(format!("{TICK_HISTOGRAM} missing from /metrics")),
    }
    f.tick_max_ms = b.max(TICK_MAX_GAUGE).map(|s| s * 1e3);
    if f.tick_max_ms.is_none() {
        f.notes
            .push(format!("{TICK_MAX_GAUGE} missing from /metrics"));
    }
    match (a.sum(TICKS_SKIPPED), b.sum(TICKS_SKIPPED)) {
        (Some(s0), Some(s1)) => f.ticks_skipped = Some((s1 - s0).max(0.0)),
        _ => f
            .notes
            .push(format!("{TICKS_SKIPPED} missing from /metrics")),
    }
    match (a.sum(DEGRADED_TICKS), b.sum(DEGRADED_TICKS)) {
        (Some(s0), Some(s1)) => f.degraded_ticks = Some((s1 - s0).max(0.0)),
        // The counter appears at the first degraded tick: absent at the end means none.
        (_, None) => f.degraded_ticks = Some(0.0),
        (None, Some(s1)) => f.degraded_ticks = Some(s1.max(0.0)),
    }
    let wall_s = (end.at - start.at).as_secs_f64();
    f.role = b
        .label_of_one(PROCESS_ROLE, "role")
        .or_else(|| a.label_of_one(PROCESS_ROLE, "role"))
        .map(str::to_owned);
    // Counters appear at their first event: absent at the start means 0 then.
    let delta = |name: &str| Some((b.sum(name)? - a.sum(name).unwrap_or(0.0)).max(0.0));
    let rate = |name: &str| {
        delta(name)
            .filter(|_| wall_s >= MIN_CPU_WINDOW_S)
            .map(|d| d / wall_s)
    };
    // Gauges at the end: every process is scraped at once, so the players of a fleet's
    // processes add up to the players at that moment.
    f.activity = ActivityFigures {
        zone_players: b.sum(ZONE_PLAYERS),
        connections: b.sum(CONNECTIONS),
        handoffs: delta(ZONE_HANDOFFS),
        inputs_drained: delta(INPUTS_DRAINED),
        input_starved_ticks: delta(INPUT_STARVED_TICKS),
        // Counted from 0 like the others; a relay with no such handoff yet has handed out 0.
        handoffs_to_other_processes: match b.sum_where(RELAY_EVENTS, "event", "handed_out") {
            Some(y) => {
                let x = a.sum_where(RELAY_EVENTS, "event", "handed_out");
                Some((y - x.unwrap_or(0.0)).max(0.0))
            }
            None => b.sum(RELAY_EVENTS).map(|_| 0.0),
        },
    };
    f.traffic = TrafficFigures {
        client_bytes_out_per_s: rate(BYTES_OUT),
        client_bytes_in_per_s: rate(BYTES_IN),
        nats_bytes_sent_per_s: rate(RELAY_BYTES_SENT),
    };
    match (a.sum(CPU_SECONDS), b.sum(CPU_SECONDS)) {
        (Some(c0), Some(c1)) if wall_s >= MIN_CPU_WINDOW_S => {
            f.cpu_cores = Some((c1 - c0).max(0.0) / wall_s);
        }
        (Some(_), Some(_)) => f.notes.push(format!(
            "steady phase shorter than {MIN_CPU_WINDOW_S} s: no CPU figure"
        )),
        _ => f.notes.push(format!("{CPU_SECONDS} missing from /metrics")),
    }
    let rss_peak = match (a.sum(RSS_BYTES), b.sum(RSS_BYTES)) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    // The replication parts from the scrape that gave the peak.
    let peak_scrape = match (a.sum(RSS_BYTES), b.sum(RSS_BYTES)) {
        (Some(x), Some(y)) if x > y => a,
        (Some(_), None) => a,
        _ => b,
    };
    let parts = [
        REPLICATION_HISTORIES_BYTES,
        REPLICATION_VIEWS_BYTES,
        REPLICATION_SHARED_BYTES,
    ]
    .map(|name| peak_scrape.sum(name));
    match parts {
        [Some(histories), Some(views), Some(shared)] if ccu_peak > 0 => {
            let per = |bytes: f64| bytes / ccu_peak as f64 / 1024.0;
            f.replication_per_player_kib = Some(ReplicationPerPlayer {
                histories: per(histories),
                views: per(views),
                shared: per(shared),
            });
        }
        [Some(_), Some(_), Some(_)] => {}
        _ => f.notes.push(
            "mmo_replication_*_bytes missing from /metrics: no replication memory breakdown".into(),
        ),
    }
    match rss_peak {
        Some(peak) => {
            f.rss_mib = Some(peak / (1024.0 * 1024.0));
            match baseline.and_then(|s| s.scrape.sum(RSS_BYTES)) {
                Some(base) if ccu_peak > 0 => {
                    f.memory_per_player_kib = Some((peak - base) / ccu_peak as f64 / 1024.0);
                }
                Some(_) => f
                    .notes
                    .push("no player connected: no memory per player".into()),
                None => f
                    .notes
                    .push("no baseline memory before the bots: no memory per player".into()),
            }
        }
        None => f.notes.push(format!("{RSS_BYTES} missing from /metrics")),
    }
    // A gateway runs no zone: its zone figures are absent, not missing.
    if f.role.as_deref() == Some("gateway") {
        let zone_metrics = [
            TICK_HISTOGRAM,
            TICK_MAX_GAUGE,
            TICKS_SKIPPED,
            "mmo_replication_",
        ];
        f.notes
            .retain(|n| !zone_metrics.iter().any(|m| n.contains(m)));
        f.degraded_ticks = None;
    }
    f
}

/// Seconds to milliseconds; an infinite bound (past the last bucket) is `None` with a note.
fn bucket_ms(notes: &mut Vec<String>, which: &str, bound_s: Option<f64>) -> Option<f64> {
    match bound_s {
        Some(s) if s.is_finite() => Some(s * 1e3),
        Some(_) => {
            notes.push(format!(
                "tick {which} lies above the histogram's largest finite bucket"
            ));
            None
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timed(text: &str, at: Instant) -> TimedScrape {
        TimedScrape {
            scrape: Scrape::parse(text).unwrap(),
            at,
        }
    }

    #[test]
    fn figures_come_from_deltas_and_missing_metrics_are_null() {
        let t0 = Instant::now();
        let base = timed("process_resident_memory_bytes 100000000\n", t0);
        let start = timed(
            "mmo_tick_duration_seconds_bucket{zone=\"1\",le=\"0.001\"} 100\n\
             mmo_tick_duration_seconds_bucket{zone=\"1\",le=\"0.004\"} 100\n\
             mmo_tick_duration_seconds_bucket{zone=\"1\",le=\"+Inf\"} 100\n\
             process_cpu_seconds_total 10\n\
             mmo_ticks_skipped_total{zone=\"1\"} 3\n\
             process_resident_memory_bytes 110000000\n",
            t0,
        );
        let end = timed(
            "mmo_tick_duration_seconds_bucket{zone=\"1\",le=\"0.001\"} 150\n\
             mmo_tick_duration_seconds_bucket{zone=\"1\",le=\"0.004\"} 199\n\
             mmo_tick_duration_seconds_bucket{zone=\"1\",le=\"+Inf\"} 200\n\
             process_cpu_seconds_total 15\n\
             mmo_ticks_skipped_total{zone=\"1\"} 10\n\
             mmo_replication_histories_bytes{zone=\"1\"} 2048000\n\
             mmo_replication_histories_bytes{zone=\"2\"} 1024000\n\
             mmo_replication_views_bytes{zone=\"1\"} 1024000\n\
             mmo_replication_shared_bytes{zone=\"1\"} 512000\n\
             process_resident_memory_bytes 110240000\n",
            t0 + Duration::from_secs(10),
        );
        let f = figures(Some(&base), Some(&start), Some(&end), 100);
        assert_eq!(f.tick_p50_ms_upper_bound, Some(1.0));
        assert_eq!(f.tick_p99_ms_upper_bound, Some(4.0));
        assert_eq!(f.tick_max_ms, None);
        assert!(f.notes.iter().any(|n| n.contains(TICK_MAX_GAUGE)));
        assert_eq!(f.cpu_cores, Some(0.5));
        assert_eq!(f.ticks_skipped, Some(7.0));
        assert!((f.rss_mib.unwrap() - 110_240_000.0 / 1_048_576.0).abs() < 1e-9);
        assert!((f.memory_per_player_kib.unwrap() - 102_400.0 / 1024.0).abs() < 1e-9);
        // From the end scrape (the larger RSS), summed over zones, per player.
        assert_eq!(
            f.replication_per_player_kib,
            Some(ReplicationPerPlayer {
                histories: 30.0,
                views: 10.0,
                shared: 5.0,
            })
        );
        assert!(!f.notes.iter().any(|n| n.contains("breakdown")));

        let short = timed(
            "process_cpu_seconds_total 11\n",
            t0 + Duration::from_millis(10),
        );
        let f = figures(Some(&base), Some(&start), Some(&short), 100);
        assert_eq!(f.cpu_cores, None);
        assert!(f.notes.iter().any(|n| n.contains("no CPU figure")));

        let f = figures(Some(&base), Some(&start), Some(&short), 100);
        assert_eq!(f.replication_per_player_kib, None);
        assert!(
            f.notes
                .iter()
                .any(|n| n.contains("no replication memory breakdown"))
        );

        let none = figures(None, None, None, 10);
        assert_eq!(none.cpu_cores, None);
        assert!(!none.notes.is_empty());
    }

    #[test]
    fn role_activity_and_traffic_come_from_the_steady_scrapes() {
        let t0 = Instant::now();
        let start = timed(
            "mmo_process_role{role=\"zone\"} 1\n\
             mmo_zone_handoffs_total{zone=\"1\"} 10\n\
             mmo_zone_handoffs_total{zone=\"2\"} 5\n\
             mmo_relay_bytes_sent_total 1000\n",
            t0,
        );
        let end = timed(
            "mmo_process_role{role=\"zone\"} 1\n\
             mmo_zone_players{zone=\"1\"} 30\n\
             mmo_zone_players{zone=\"2\"} 12\n\
             mmo_zone_handoffs_total{zone=\"1\"} 14\n\
             mmo_zone_handoffs_total{zone=\"2\"} 9\n\
             mmo_relay_events_total{event=\"handed_out\"} 6\n\
             mmo_relay_events_total{event=\"moved\"} 2\n\
             mmo_relay_bytes_sent_total 5000\n\
             mmo_inputs_drained_total 3\n\
             mmo_bytes_out_total 400\n",
            t0 + Duration::from_secs(4),
        );
        let f = figures(None, Some(&start), Some(&end), 42);
        assert_eq!(f.role.as_deref(), Some("zone"));
        assert_eq!(
            f.activity,
            ActivityFigures {
                zone_players: Some(42.0),
                connections: None,
                handoffs: Some(8.0),
                handoffs_to_other_processes: Some(6.0),
                inputs_drained: Some(3.0),
                input_starved_ticks: None,
            }
        );
        assert_eq!(f.traffic.nats_bytes_sent_per_s, Some(1000.0));
        // First seen at the end: counted from 0.
        assert_eq!(f.traffic.client_bytes_out_per_s, Some(100.0));
        assert_eq!(f.traffic.client_bytes_in_per_s, None);
        // A process with relay events but no handoff yet has handed out none.
        let quiet = timed(
            "mmo_relay_events_total{event=\"moved\"} 2\n",
            t0 + Duration::from_secs(4),
        );
        let f = figures(None, Some(&start), Some(&quiet), 42);
        assert_eq!(f.activity.handoffs_to_other_processes, Some(0.0));
        assert_eq!(f.role.as_deref(), Some("zone"));
        // A gateway's missing zone metrics are not worth a note.
        let gateway = timed(
            "mmo_process_role{role=\"gateway\"} 1\nmmo_connections 5\n",
            t0 + Duration::from_secs(4),
        );
        let f = figures(None, Some(&gateway), Some(&gateway), 5);
        assert_eq!(f.activity.connections, Some(5.0));
        assert_eq!(f.degraded_ticks, None);
        assert!(
            !f.notes.iter().any(|n| n.contains(TICK_HISTOGRAM)),
            "{:?}",
            f.notes
        );
        assert!(
            f.notes.iter().any(|n| n.contains(CPU_SECONDS)),
            "{:?}",
            f.notes
        );
    }
}
