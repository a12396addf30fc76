//! The Prometheus exposition served on `GET /metrics`.
//!
//! One [`PrometheusRecorder`](metrics_exporter_prometheus::PrometheusRecorder) is installed as the process's global `metrics` recorder, the
//! first time [`global`] is called (later calls, e.g. a second [`crate::app::App`] in one
//! test process, share it). Histograms get explicit buckets: the tick duration (and a
//! handoff's wait for its answer) from 0.25 ms to 1 s, fine between 1 and 10 ms and coarse
//! past the 33 ms of a 30 Hz tick; the per-client bytes/s histograms from 100 B/s to
//! 1 MB/s. Other histograms use the exporter's default buckets.
//!
//! Two process gauges are read at scrape time, not recorded: `process_cpu_seconds_total`
//! (user + system CPU, from `/proc/self/stat`) and `process_resident_memory_bytes` (from
//! `/proc/self/statm`). They exist on Linux only; elsewhere they are absent from the output.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Bucket upper bounds of `mmo_tick_duration_seconds`, seconds: fine within a 30 Hz tick's
/// budget, then coarse up to 1 s so an overloaded zone's ticks are still measured (a
/// quantile past the last finite bucket could only be reported as "more than that").
pub const TICK_BUCKETS_S: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.010, 0.015, 0.020, 0.033,
    0.050, 0.075, 0.100, 0.150, 0.250, 0.500, 1.0,
];
/// Bucket upper bounds of the per-client bytes/s histograms.
pub const CLIENT_BYTES_PER_SECOND_BUCKETS: &[f64] = &[
    100.0,
    500.0,
    1_000.0,
    2_000.0,
    5_000.0,
    10_000.0,
    20_000.0,
    50_000.0,
    100_000.0,
    250_000.0,
    1_000_000.0,
];

/// A recorder with this crate's buckets (not installed).
#[must_use]
pub fn build_recorder() -> metrics_exporter_prometheus::PrometheusRecorder {
    let builder = PrometheusBuilder::new();
    let with_buckets = builder
        .set_buckets_for_metric(
            Matcher::Full(mmo_net::metrics::TICK_DURATION_SECONDS.to_owned()),
            TICK_BUCKETS_S,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(mmo_net::metrics::HANDOFF_ANSWER_SECONDS.to_owned()),
                TICK_BUCKETS_S,
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(mmo_net::metrics::CLIENT_BYTES_IN_PER_SECOND.to_owned()),
                CLIENT_BYTES_PER_SECOND_BUCKETS,
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(mmo_net::metrics::CLIENT_BYTES_OUT_PER_SECOND.to_owned()),
                CLIENT_BYTES_PER_SECOND_BUCKETS,
            )
        });
    match with_buckets {
        Ok(b) => b.build_recorder(),
        // Only an empty bucket list is refused; the lists above are not empty.
        Err(e) => {
            tracing::error!(error = %e, "metric buckets refused; using defaults");
            PrometheusBuilder::new().build_recorder()
        }
    }
}

/// The handle of the global recorder, installing it (and describing `mmo-net`'s metrics)
/// on the first call.
pub fn global() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "another metrics recorder is installed; /metrics will show only the process gauges"
                );
            }
            mmo_net::metrics::describe();
            handle
        })
        .clone()
}

/// The full exposition: the recorder's metrics, then the process gauges.
#[must_use]
pub fn render(handle: &PrometheusHandle) -> String {
    handle.run_upkeep();
    let mut text = handle.render();
    process::append(&mut text);
    text
}

#[cfg(target_os = "linux")]
mod process {
    //! `/proc/self` readers (Linux).

    use std::fmt::Write;

    /// `sysconf` for a name, `None` when unknown.
    fn sysconf(name: libc::c_int) -> Option<u64> {
        // SAFETY: sysconf takes an integer name and touches no memory of ours.
        let v = unsafe { libc::sysconf(name) };
        u64::try_from(v).ok().filter(|v| *v > 0)
    }

    /// User + system CPU seconds of this process.
    fn cpu_seconds() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) may contain spaces; fields after it are plain.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After `)`: state is field 3, so utime (14) and stime (15) are at 11 and 12.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let ticks_per_s = sysconf(libc::_SC_CLK_TCK)?;
        Some((utime + stime) as f64 / ticks_per_s as f64)
    }

    /// Resident set size, bytes.
    fn resident_bytes() -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * sysconf(libc::_SC_PAGESIZE)?)
    }

    /// Appends both gauges (each only when it could be read).
    pub(super) fn append(text: &mut String) {
        if let Some(cpu_s) = cpu_seconds() {
            let _ = write!(
                text,
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
                 # TYPE process_cpu_seconds_total counter\n\
                 process_cpu_seconds_total {cpu_s}\n"
            );
        }
        if let Some(rss) = resident_bytes() {
            let _ = write!(
                text,
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                 # TYPE process_resident_memory_bytes gauge\n\
                 process_resident_memory_bytes {rss}\n"
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod process {
    //! No process gauges outside Linux.

    /// Appends nothing.
    pub(super) fn append(_text: &mut String) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_histogram_uses_the_configured_buckets() {
        let recorder = build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!(mmo_net::metrics::TICK_DURATION_SECONDS, "zone" => "0")
                .record(0.003);
            metrics::histogram!(mmo_net::metrics::TICK_DURATION_SECONDS, "zone" => "0").record(0.2);
        });
        let text = render(&handle);
        assert!(
            text.contains("mmo_tick_duration_seconds_bucket{zone=\"0\",le=\"0.00025\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("mmo_tick_duration_seconds_bucket{zone=\"0\",le=\"0.003\"} 1"),
            "{text}"
        );
        // An overloaded tick still lands in a finite bucket.
        assert!(
            text.contains("mmo_tick_duration_seconds_bucket{zone=\"0\",le=\"0.15\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mmo_tick_duration_seconds_bucket{zone=\"0\",le=\"0.25\"} 2"),
            "{text}"
        );
        #[cfg(target_os = "linux")]
        {
            assert!(text.contains("process_cpu_seconds_total "), "{text}");
            assert!(text.contains("process_resident_memory_bytes "), "{text}");
        }
    }
}
