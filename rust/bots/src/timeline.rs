//! The run over time, for the HTML report's plots: the bots' CCU and each scraped
//! process's tick, CPU and players, sampled every [`SAMPLE_EVERY`] from the first launch
//! until the bots are done.
//!
//! Each process is scraped by its own task, so a slow process delays only its own points.
//! A point covers the interval since that process's previous scrape:
//!
//! - `tick_p99_ms_upper_bound`: upper bound of the `mmo_tick_duration_seconds` bucket
//!   holding the 99th percentile of the ticks in the interval (summed over zones; `None`
//!   when no tick was observed or the process runs no zone);
//! - `cpu_cores`: `process_cpu_seconds_total` delta over the interval's wall time;
//! - `zone_players`, `connections`: the gauges at the scrape.
//!
//! A scrape that fails or takes longer than [`SCRAPE_TIMEOUT`] leaves a gap (a point with
//! no value, which breaks the process's lines; the next point covers the longer interval)
//! and is counted in `failed_scrapes`; nothing is filled in.
//!
//! A 1 s interval holds about 30 ticks at 30 Hz, so its "p99" is about its slowest tick.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::progress::Counters;
use crate::server_figures::{
    self, CONNECTIONS, CPU_SECONDS, TICK_HISTOGRAM, TimedScrape, ZONE_PLAYERS,
};

/// How often the CCU is read and every process scraped.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// A scrape slower than this is abandoned (a gap in that process's line).
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// The bots connected at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CcuPoint {
    /// Seconds since the first launch.
    pub t_s: f64,
    /// Bots welcomed and not yet gone.
    pub active: usize,
}

/// One process's figures over one sampling interval (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ProcessPoint {
    /// Seconds since the first launch, at the interval's end.
    pub t_s: f64,
    /// Tick p99 in the interval, bucket upper bound, ms.
    pub tick_p99_ms_upper_bound: Option<f64>,
    /// CPU in the interval, cores.
    pub cpu_cores: Option<f64>,
    /// Players in its zones at the scrape.
    pub zone_players: Option<f64>,
    /// Open QUIC connections at the scrape.
    pub connections: Option<f64>,
}

/// One process's line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessTimeline {
    /// Its HTTP address.
    pub http: String,
    /// Its role, from its last successful scrape.
    pub role: Option<String>,
    /// Its points, in time order.
    pub points: Vec<ProcessPoint>,
    /// Scrapes that failed or timed out.
    pub failed_scrapes: u32,
}

/// The whole run over time.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timeline {
    /// The sampling interval, seconds.
    pub sample_every_s: f64,
    /// The bots' CCU.
    pub ccu: Vec<CcuPoint>,
    /// The scraped processes (the target's first, then `--also-metrics` in order).
    pub processes: Vec<ProcessTimeline>,
}

/// The point for the interval between two scrapes of one process.
#[must_use]
pub fn point_between(previous: &TimedScrape, now: &TimedScrape, started: Instant) -> ProcessPoint {
    let (a, b) = (&previous.scrape, &now.scrape);
    let wall_s = (now.at - previous.at).as_secs_f64();
    let tick_p99_ms_upper_bound = match (a.histogram(TICK_HISTOGRAM), b.histogram(TICK_HISTOGRAM)) {
        (Some(before), Some(after)) => {
            let delta = after.delta(&before);
            (delta.count() > 0.0)
                .then(|| delta.quantile_upper_bound(0.99))
                .flatten()
                .filter(|s| s.is_finite())
                .map(|s| s * 1e3)
        }
        _ => None,
    };
    let cpu_cores = match (a.sum(CPU_SECONDS), b.sum(CPU_SECONDS)) {
        (Some(c0), Some(c1)) if wall_s > 0.0 => Some((c1 - c0).max(0.0) / wall_s),
        _ => None,
    };
    ProcessPoint {
        t_s: now.at.saturating_duration_since(started).as_secs_f64(),
        tick_p99_ms_upper_bound,
        cpu_cores,
        zone_players: b.sum(ZONE_PLAYERS),
        connections: b.sum(CONNECTIONS),
    }
}

/// The sampling tasks of a run; [`Recorder::finish`] stops them and gives the timeline.
pub(crate) struct Recorder {
    stop: watch::Sender<bool>,
    ccu: tokio::task::JoinHandle<Vec<CcuPoint>>,
    processes: Vec<tokio::task::JoinHandle<ProcessTimeline>>,
}

impl Recorder {
    /// Starts sampling `counters` and the processes at `targets` (`host:port` of their
    /// HTTP endpoints), times measured from `started`.
    pub(crate) fn start(
        started: Instant,
        counters: Arc<Counters>,
        client: Option<reqwest::Client>,
        targets: Vec<String>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let ccu = {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let mut points = Vec::new();
                let mut ticker = tokio::time::interval(SAMPLE_EVERY);
                loop {
                    tokio::select! {
                        biased;
                        _ = stopped.changed() => break,
                        _ = ticker.tick() => points.push(CcuPoint {
                            t_s: started.elapsed().as_secs_f64(),
                            active: Counters::get(&counters.active),
                        }),
                    }
                }
                points
            })
        };
        let processes = match client {
            Some(client) => targets
                .into_iter()
                .map(|http| {
                    tokio::spawn(sample_process(
                        client.clone(),
                        http,
                        started,
                        stopped.clone(),
                    ))
                })
                .collect(),
            None => Vec::new(),
        };
        Recorder {
            stop,
            ccu,
            processes,
        }
    }

    /// Stops sampling; the points so far.
    pub(crate) async fn finish(self) -> Timeline {
        let _ = self.stop.send(true);
        let ccu = self.ccu.await.unwrap_or_default();
        let mut processes = Vec::with_capacity(self.processes.len());
        for task in self.processes {
            if let Ok(line) = task.await {
                processes.push(line);
            }
        }
        Timeline {
            sample_every_s: SAMPLE_EVERY.as_secs_f64(),
            ccu,
            processes,
        }
    }
}

async fn sample_process(
    client: reqwest::Client,
    http: String,
    started: Instant,
    mut stopped: watch::Receiver<bool>,
) -> ProcessTimeline {
    let mut line = ProcessTimeline {
        http,
        role: None,
        points: Vec::new(),
        failed_scrapes: 0,
    };
    let mut previous: Option<TimedScrape> = None;
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            _ = ticker.tick() => {}
        }
        let scraped =
            tokio::time::timeout(SCRAPE_TIMEOUT, server_figures::scrape(&client, &line.http)).await;
        let Ok(Ok(now)) = scraped else {
            line.failed_scrapes += 1;
            line.points.push(ProcessPoint {
                t_s: started.elapsed().as_secs_f64(),
                tick_p99_ms_upper_bound: None,
                cpu_cores: None,
                zone_players: None,
                connections: None,
            });
            continue;
        };
        if let Some(role) = now
            .scrape
            .label_of_one(server_figures::PROCESS_ROLE, "role")
        {
            line.role = Some(role.to_owned());
        }
        if let Some(previous) = &previous {
            line.points.push(point_between(previous, &now, started));
        }
        previous = Some(now);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::Scrape;

    #[test]
    fn a_point_covers_the_interval_between_two_scrapes() {
        let started = Instant::now();
        let at = |s: u64, text: &str| TimedScrape {
            scrape: Scrape::parse(text).unwrap(),
            at: started + Duration::from_secs(s),
        };
        let a = at(
            1,
            "mmo_tick_duration_seconds_bucket{le=\"0.002\"} 100\n\
             mmo_tick_duration_seconds_bucket{le=\"0.010\"} 100\n\
             mmo_tick_duration_seconds_bucket{le=\"+Inf\"} 100\n\
             process_cpu_seconds_total 3\n",
        );
        let b = at(
            3,
            "mmo_tick_duration_seconds_bucket{le=\"0.002\"} 150\n\
             mmo_tick_duration_seconds_bucket{le=\"0.010\"} 160\n\
             mmo_tick_duration_seconds_bucket{le=\"+Inf\"} 160\n\
             process_cpu_seconds_total 4\n\
             mmo_zone_players{zone=\"0\"} 7\n\
             mmo_connections 9\n",
        );
        let p = point_between(&a, &b, started);
        assert_eq!(p.t_s, 3.0);
        // 60 new ticks, 10 of them above 2 ms: p99 in the 10 ms bucket.
        assert_eq!(p.tick_p99_ms_upper_bound, Some(10.0));
        assert_eq!(p.cpu_cores, Some(0.5));
        assert_eq!(p.zone_players, Some(7.0));
        assert_eq!(p.connections, Some(9.0));
        // No tick in the interval (or no zone at all): no tick figure, not zero.
        let c = at(4, "process_cpu_seconds_total 4\n");
        let q = point_between(&b, &c, started);
        assert_eq!(q.tick_p99_ms_upper_bound, None);
        assert_eq!(q.cpu_cores, Some(0.0));
        assert_eq!(q.zone_players, None);
    }
}
