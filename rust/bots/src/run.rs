//! One load test run: resolve the target (spawn a server, or use the one given), launch the
//! bots at the ramp rate, scrape the server's metrics around the steady phase, wait for
//! every bot, stop what was spawned, and build the report.
//!
//! Phases: **connect burst** (from the first launch until every launched bot has been
//! welcomed or failed), **steady phase** (from then until the first bot starts to log out,
//! the duration cap, Ctrl-C, or every bot being done), then the bots' logouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mmo_core::gameplay::content::Content;
use tokio::sync::watch;

use crate::access::Access;
use crate::bot::{self, BotOutcome, BotPlan};
use crate::gameplay::GameplayIds;
use crate::progress::{Counters, Progress};
use crate::report::{Report, RunFacts};
use crate::server_figures::{self, TimedScrape};
use crate::spawn::{SpawnSettings, SpawnedServer, find_server_bin};
use crate::target::Target;
use crate::{LoadError, LoadOptions, login};

/// How often the run looks at the counters while waiting for a phase to end.
const PHASE_POLL: Duration = Duration::from_millis(50);
/// Grace after SIGTERM before a spawned server is killed.
const SERVER_STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs a load test against `target` with `options`. Must be called within a tokio
/// multi-thread runtime (the bots are tasks on it). Fails only when the run could not be
/// set up (bad options, server not started); bots' failures are in the report.
pub async fn run(options: &LoadOptions, target: Target) -> Result<Report, LoadError> {
    options.validate()?;
    let http = || login::http_client().map_err(LoadError::Io);
    match target {
        Target::SpawnServer { server_bin } => {
            let bin = find_server_bin(server_bin.as_deref())?;
            let server = SpawnedServer::start(
                &bin,
                &SpawnSettings::for_load(options),
                options.server_ready_timeout,
            )
            .await?;
            let http_base = server.ready.http_addr.to_string();
            let client = http()?;
            let access = Access::Http {
                client: client.clone(),
                http_base: http_base.clone(),
            };
            let report = drive(options, access, Some((client, http_base))).await;
            let stopped = server.stop(SERVER_STOP_GRACE).await;
            let mut report = report?;
            report.notes.push(stopped);
            Ok(report)
        }
        Target::Http { http_addr } => {
            let client = http()?;
            let access = Access::Http {
                client: client.clone(),
                http_base: http_addr.clone(),
            };
            drive(options, access, Some((client, http_addr))).await
        }
        Target::Direct(direct) => {
            let metrics = match direct.metrics_http {
                Some(base) => Some((http()?, base)),
                None => None,
            };
            let access = Access::Direct {
                quic_addr: direct.quic_addr,
                fingerprint: direct.fingerprint,
                tokens: direct.tokens,
            };
            drive(options, access, metrics).await
        }
    }
}

/// Scrapes every endpoint's `/metrics` at once, so that the processes' figures share one
/// moment (one after the other, a busy fleet's last scrape lagged the first by enough for
/// logouts to start in between); a failed scrape is `None` and a note.
async fn scrape_all(
    endpoints: &[(reqwest::Client, String)],
    notes: &mut Vec<String>,
    when: &str,
) -> Vec<Option<TimedScrape>> {
    let tasks: Vec<_> = endpoints
        .iter()
        .map(|(client, base)| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move { server_figures::scrape(&client, &base).await })
        })
        .collect();
    let mut scrapes = Vec::with_capacity(tasks.len());
    for task in tasks {
        let scraped = task.await.map_err(|e| e.to_string()).and_then(|r| r);
        scrapes.push(match scraped {
            Ok(scrape) => Some(scrape),
            Err(e) => {
                notes.push(format!("metrics scrape {when} failed: {e}"));
                None
            }
        });
    }
    scrapes
}

async fn drive(
    options: &LoadOptions,
    access: Access,
    metrics: Option<(reqwest::Client, String)>,
) -> Result<Report, LoadError> {
    let content = Content::default_content()
        .map_err(|e| LoadError::Content(format!("the built-in content: {e}")))?;
    let gameplay = GameplayIds::from_content(&content)
        .map_err(|e| LoadError::Content(format!("the built-in content: {e}")))?;
    let plan = BotPlan {
        iterations: options.iterations,
        iteration: options.iteration,
        tick: options.tick()?,
        seed: options.seed,
        gameplay: Arc::new(gameplay),
        full_sample: options
            .light_with_full_sample
            .map(|sample| crate::bot::FullSample {
                sample,
                bots: options.bots,
            }),
    };
    let full_sample = plan.full_sample;
    let mut notes = Vec::new();
    if metrics.is_none() {
        notes.push("no metrics endpoint for this target".to_owned());
    }
    // The other processes (`--also-metrics`), scraped at the same moments.
    let others: Vec<(reqwest::Client, String)> = if options.also_metrics.is_empty() {
        Vec::new()
    } else {
        let client = login::http_client().map_err(LoadError::Io)?;
        options
            .also_metrics
            .iter()
            .map(|base| (client.clone(), base.clone()))
            .collect()
    };
    // Every endpoint: the target's first (when it has one), then the others in order.
    let endpoints: Vec<(reqwest::Client, String)> =
        metrics.iter().chain(others.iter()).cloned().collect();
    let baseline = scrape_all(&endpoints, &mut notes, "before the bots").await;

    let counters = Arc::new(Counters::default());
    let (stop_tx, stop) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let mut watchers = Vec::new();
    if let Some(cap) = options.duration_cap {
        let stop_tx = stop_tx.clone();
        watchers.push(tokio::spawn(async move {
            tokio::time::sleep(cap).await;
            let _ = stop_tx.send(true);
        }));
    }
    if options.stop_on_ctrl_c {
        let stop_tx = stop_tx.clone();
        watchers.push(tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop_tx.send(true);
            }
        }));
    }
    let progress = Progress::start(options.progress, options.bots, counters.clone());
    let started = Instant::now();
    let recorder = crate::timeline::Recorder::start(
        started,
        counters.clone(),
        endpoints.first().map(|(client, _)| client.clone()),
        endpoints.iter().map(|(_, base)| base.clone()).collect(),
    );

    // The launcher starts bot `i` at `i / ramp_per_s` seconds.
    let launcher = {
        let counters = counters.clone();
        let stop = stop.clone();
        let (bots, ramp) = (options.bots, options.ramp_per_s);
        tokio::spawn(async move {
            let mut handles = Vec::with_capacity(bots);
            for i in 0..bots {
                let at = started + Duration::from_secs_f64(i as f64 / ramp);
                tokio::time::sleep_until(at.into()).await;
                if *stop.borrow() {
                    break;
                }
                Counters::bump(&counters.launched);
                handles.push(tokio::spawn(bot::run_bot(
                    i,
                    access.clone(),
                    plan.clone(),
                    counters.clone(),
                    stop.clone(),
                )));
            }
            handles
        })
    };

    // Connect burst: until every bot is launched and has connected or failed.
    let stopped = || *stop.borrow();
    let burst_over = || {
        launcher.is_finished()
            && Counters::get(&counters.attempted) >= Counters::get(&counters.launched)
    };
    while !(burst_over() || stopped()) {
        tokio::time::sleep(PHASE_POLL).await;
    }
    let steady_start = scrape_all(&endpoints, &mut notes, "at the steady phase's start").await;
    let steady_started = Instant::now();
    let bots_cpu = crate::self_cpu::CpuMark::now();
    // Steady phase: until the first logout, the cap, Ctrl-C, or every bot done.
    while Counters::get(&counters.leaving) == 0
        && !stopped()
        && Counters::get(&counters.done) < Counters::get(&counters.launched)
    {
        tokio::time::sleep(PHASE_POLL).await;
    }
    let bots_cpu_cores = bots_cpu.cores_since();
    let steady_end = scrape_all(&endpoints, &mut notes, "at the steady phase's end").await;
    let steady_phase = steady_started.elapsed();

    let handles = launcher.await.unwrap_or_default();
    let mut outcomes: Vec<BotOutcome> = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(o) => outcomes.push(o),
            Err(e) => notes.push(format!("a bot task ended abnormally: {e}")),
        }
    }
    let duration = started.elapsed();
    let timeline = recorder.finish().await;
    for w in watchers {
        w.abort();
    }
    progress.finish();
    if *stop.borrow() {
        notes.push("the run was stopped early (duration cap or Ctrl-C): bots logged out".into());
    }
    if outcomes.len() < options.bots {
        notes.push(format!(
            "{} of {} bots were launched before the stop",
            outcomes.len(),
            options.bots
        ));
    }
    let ccu_peak = Counters::get(&counters.ccu_peak);
    // One set of figures per endpoint, in `endpoints` order.
    let mut figures: Vec<server_figures::ServerFigures> = (0..endpoints.len())
        .map(|i| {
            server_figures::figures(
                baseline[i].as_ref(),
                steady_start[i].as_ref(),
                steady_end[i].as_ref(),
                ccu_peak,
            )
        })
        .collect();
    let roles = crate::capacity::role_figures(&figures.iter().collect::<Vec<_>>(), ccu_peak);
    let server = if metrics.is_some() {
        figures.remove(0)
    } else {
        server_figures::figures(None, None, None, ccu_peak)
    };
    let processes = others
        .iter()
        .zip(figures)
        .map(|((_, base), figures)| crate::report::ProcessFigures::new(base.clone(), figures))
        .collect();
    Ok(Report::aggregate(
        &outcomes,
        RunFacts {
            bots: options.bots,
            ccu_peak,
            duration,
            steady_phase: Some(steady_phase),
            seed: options.seed,
            server,
            processes,
            roles,
            plan: options.plan,
            timeline,
            bots_cpu_cores,
            light_bots: full_sample.map_or(0, |s| {
                (0..outcomes.len()).filter(|&i| !s.is_full(i)).count()
            }),
            bot_cores: crate::self_cpu::bot_cores(
                options.worker_threads,
                std::thread::available_parallelism().map_or(1, usize::from),
            ),
            notes,
        },
    ))
}
