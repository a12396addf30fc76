//! The command-line flags of `mmo-loadtest`, and how they become [`LoadOptions`] and a
//! [`Target`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::capacity::Prices;
use crate::options::PlanRequest;
use crate::{LoadError, LoadOptions, Target};

/// Headless QUIC bots against an MMO Netcore server; prints a report.
#[derive(Clone, Debug, Parser)]
#[command(name = "mmo-loadtest", version, about)]
pub struct Cli {
    /// Bots to run.
    #[arg(long, default_value_t = 100)]
    pub bots: usize,
    /// Bots started per second.
    #[arg(long, default_value_t = 200.0)]
    pub ramp_per_s: f64,
    /// Scenario iterations per bot.
    #[arg(long, default_value_t = 100)]
    pub iterations: u32,
    /// Length of one iteration, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub iteration_s: f64,
    /// Cap on the whole run, seconds: then every bot logs out.
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Seed of the bots' walking directions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Inputs per second (the server's tick rate).
    #[arg(long, default_value_t = 30)]
    pub tick_rate_hz: u32,
    /// Tokio worker threads for the bots.
    #[arg(long, default_value_t = 2)]
    pub worker_threads: usize,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Start a local mmo-server for the run (killed at the end).
    #[arg(long, conflicts_with = "http", required_unless_present = "http")]
    pub spawn_server: bool,
    /// The mmo-server binary for --spawn-server (default: next to this executable).
    #[arg(long, requires = "spawn_server")]
    pub server_bin: Option<PathBuf>,
    /// Seconds a spawned server has to print its ready line.
    #[arg(long, default_value_t = 60.0)]
    pub server_ready_timeout_s: f64,
    /// host:port of a running server's HTTP API.
    #[arg(long)]
    pub http: Option<String>,
    /// Bots start over a disc of this radius (metres) around the spawn point instead of
    /// at one point: passed to a spawned server as --spawn-spread-m (a running server has
    /// its own [gameplay] spawn_spread_m).
    #[arg(long, default_value_t = 0.0, requires = "spawn_server")]
    pub spawn_spread_m: f32,
    /// Light bots: read only each snapshot's tick, input ack and own state, and acknowledge
    /// it (the server's work is the same, the bots' far less), except --full-sample bots
    /// that decode everything. Light bots see no other entity, so their ability steps heal.
    #[arg(long)]
    pub light: bool,
    /// With --light: how many bots decode everything (spread over the indices).
    #[arg(long, default_value_t = 50, requires = "light")]
    pub full_sample: usize,
    /// host:port of another process's HTTP endpoint (a fleet's zone process, another
    /// gateway) whose /metrics the report adds as that process's figures (tick, CPU,
    /// memory); repeat for several.
    #[arg(long = "also-metrics", value_name = "HOST:PORT")]
    pub also_metrics: Vec<String>,
    /// Also write the report as a self-contained HTML page with plots (CCU, players, tick
    /// and CPU per process over time, the input-to-ack CDF). The file is created before
    /// the run, so a path that cannot be written fails at once.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Plan a fleet for this many concurrent players from the run's per-player figures,
    /// per role (cores at 70 % CPU, memory, egress).
    #[arg(long)]
    pub plan_ccu: Option<u64>,
    /// With --plan-ccu: the price of one core for a month, USD (an input, not a
    /// measurement; give all three prices or none).
    #[arg(long, requires = "plan_ccu")]
    pub usd_per_core_month: Option<f64>,
    /// With --plan-ccu: the price of one GiB of memory for a month, USD.
    #[arg(long, requires = "plan_ccu")]
    pub usd_per_gib_memory_month: Option<f64>,
    /// With --plan-ccu: the price of one GiB of egress to the internet, USD.
    #[arg(long, requires = "plan_ccu")]
    pub usd_per_gib_egress: Option<f64>,
    /// With the prices: monthly players per peak concurrent player, for the cost per
    /// monthly player.
    #[arg(long, requires = "usd_per_core_month")]
    pub monthly_players_per_ccu: Option<f64>,
}

fn seconds(flag: &str, s: f64) -> Result<Duration, LoadError> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            LoadError::BadOption(format!(
                "--{flag} must be a positive number of seconds, got {s}"
            ))
        })
}

impl Cli {
    /// `--plan-ccu` and its prices, or an error naming a price that is missing.
    fn plan(&self) -> Result<Option<PlanRequest>, LoadError> {
        let Some(ccu) = self.plan_ccu else {
            return Ok(None);
        };
        let given = [
            ("--usd-per-core-month", self.usd_per_core_month),
            ("--usd-per-gib-memory-month", self.usd_per_gib_memory_month),
            ("--usd-per-gib-egress", self.usd_per_gib_egress),
        ];
        let prices = match given {
            [(_, Some(core)), (_, Some(memory)), (_, Some(egress))] => Some(Prices {
                usd_per_core_month: core,
                usd_per_gib_memory_month: memory,
                usd_per_gib_egress: egress,
                monthly_players_per_ccu: self.monthly_players_per_ccu,
            }),
            [(_, None), (_, None), (_, None)] => None,
            _ => {
                let missing: Vec<&str> = given
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(flag, _)| *flag)
                    .collect();
                return Err(LoadError::BadOption(format!(
                    "give all three prices or none: missing {}",
                    missing.join(", ")
                )));
            }
        };
        Ok(Some(PlanRequest { ccu, prices }))
    }

    /// The run's options (`progress_allowed`: whether stdout is a terminal).
    pub fn options(&self, progress_allowed: bool) -> Result<LoadOptions, LoadError> {
        Ok(LoadOptions {
            plan: self.plan()?,
            bots: self.bots,
            ramp_per_s: self.ramp_per_s,
            iterations: self.iterations,
            iteration: seconds("iteration-s", self.iteration_s)?,
            duration_cap: self
                .duration_s
                .map(|s| seconds("duration-s", s))
                .transpose()?,
            seed: self.seed,
            tick_rate_hz: self.tick_rate_hz,
            progress: !self.no_progress && progress_allowed,
            stop_on_ctrl_c: true,
            server_ready_timeout: seconds("server-ready-timeout-s", self.server_ready_timeout_s)?,
            worker_threads: self.worker_threads.max(1),
            light_with_full_sample: self.light.then_some(self.full_sample),
            also_metrics: self.also_metrics.clone(),
            spawn_spread_m: if self.spawn_spread_m.is_finite()
                && (0.0..=10_000.0).contains(&self.spawn_spread_m)
            {
                self.spawn_spread_m
            } else {
                return Err(LoadError::BadOption(format!(
                    "--spawn-spread-m {} must be within 0..=10000 metres",
                    self.spawn_spread_m
                )));
            },
        })
    }

    /// The target.
    #[must_use]
    pub fn target(&self) -> Target {
        match &self.http {
            Some(http_addr) => Target::Http {
                http_addr: http_addr.clone(),
            },
            None => Target::SpawnServer {
                server_bin: self.server_bin.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn also_metrics_repeats() {
        let cli = Cli::try_parse_from([
            "mmo-loadtest",
            "--http",
            "127.0.0.1:8080",
            "--also-metrics",
            "127.0.0.1:9100",
            "--also-metrics",
            "127.0.0.1:9101",
        ])
        .unwrap();
        let o = cli.options(false).unwrap();
        assert_eq!(o.also_metrics, vec!["127.0.0.1:9100", "127.0.0.1:9101"]);
        let none = Cli::try_parse_from(["mmo-loadtest", "--spawn-server"]).unwrap();
        assert!(none.options(false).unwrap().also_metrics.is_empty());
    }

    #[test]
    fn a_plan_needs_all_three_prices_or_none() {
        let base = [
            "mmo-loadtest",
            "--http",
            "127.0.0.1:8080",
            "--plan-ccu",
            "10000",
        ];
        let cli = Cli::try_parse_from(base).unwrap();
        let plan = cli.options(false).unwrap().plan.unwrap();
        assert_eq!(plan.ccu, 10_000);
        assert_eq!(plan.prices, None);
        let partial = Cli::try_parse_from(base.into_iter().chain([
            "--usd-per-core-month",
            "20",
            "--usd-per-gib-egress",
            "0.05",
        ]))
        .unwrap();
        let err = partial.options(false).unwrap_err().to_string();
        assert!(err.contains("--usd-per-gib-memory-month"), "{err}");
        let full = Cli::try_parse_from(base.into_iter().chain([
            "--usd-per-core-month",
            "20",
            "--usd-per-gib-memory-month",
            "3",
            "--usd-per-gib-egress",
            "0.05",
            "--monthly-players-per-ccu=-1",
        ]))
        .unwrap();
        let err = full
            .options(false)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("--monthly-players-per-ccu"), "{err}");
        // Prices without a plan are refused by the parser.
        assert!(
            Cli::try_parse_from([
                "mmo-loadtest",
                "--spawn-server",
                "--usd-per-core-month",
                "1"
            ])
            .is_err()
        );
    }

    #[test]
    fn defaults_are_the_seed_scenario() {
        let cli = Cli::try_parse_from(["mmo-loadtest", "--spawn-server"]).unwrap();
        let o = cli.options(false).unwrap();
        assert_eq!(o.bots, 100);
        assert_eq!(o.ramp_per_s, 200.0);
        assert_eq!(o.iterations, 100);
        assert_eq!(o.iteration, Duration::from_secs(1));
        assert_eq!(o.tick_rate_hz, 30);
        assert_eq!(o.duration_cap, None);
        assert!(matches!(
            cli.target(),
            Target::SpawnServer { server_bin: None }
        ));
        assert_eq!(cli.worker_threads, 2);
    }

    #[test]
    fn a_target_is_required_and_bad_numbers_are_named() {
        assert!(Cli::try_parse_from(["mmo-loadtest"]).is_err());
        assert!(
            Cli::try_parse_from(["mmo-loadtest", "--spawn-server", "--http", "127.0.0.1:1"])
                .is_err()
        );
        let cli = Cli::try_parse_from([
            "mmo-loadtest",
            "--http",
            "127.0.0.1:8080",
            "--duration-s=-1",
        ])
        .unwrap();
        let err = cli.options(true).unwrap_err();
        assert!(err.to_string().contains("--duration-s"), "{err}");
        assert!(matches!(cli.target(), Target::Http { .. }));
    }
}
