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
//! A metric missing from a scrape gives `None` (JSON `null`) and a note; nothing is made up.

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
    /// Why a figure is missing or how to read it.
    pub notes: Vec<String>,
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
}
