//! `mmo-bench`: scenario benchmarks that print measured figures as one JSON object.
//!
//! `cargo run --release -p mmo-bench -- <scenario> --json`. Every figure is measured in the
//! run that prints it; nothing is assumed or hard-coded. Targets are compared by people
//! reading the output (and `docs/performance.md`), never asserted in tests.

#![recursion_limit = "256"] // The replication scenario's `json!` object has many fields.

mod alloc_count;
mod pg_scratch;
mod scenario_codec;
mod scenario_logins;
mod scenario_persistence;
mod scenario_prediction;
mod scenario_replication;
mod walk;

use clap::{Parser, ValueEnum};
use mmo_core::codec::entity_state::SnapshotConfig;

#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

/// Command line of `mmo-bench`.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Scenario benchmarks of MMO Netcore (prints measured figures)"
)]
struct Cli {
    /// Which scenario to run.
    scenario: Scenario,
    /// Print one JSON object instead of a human-readable table.
    #[arg(long)]
    json: bool,
    /// Seed of every random choice in the scenario (the same seed gives the same workload).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// PostgreSQL server (`persistence`, `logins`): a URL of a role that may create
    /// databases [env: MMO_TEST_POSTGRES_URL]. `persistence` measures SQLite, and
    /// PostgreSQL too when this is given; `logins` uses it instead of SQLite.
    #[arg(long, env = "MMO_TEST_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// argon2id memory cost of `logins`, KiB.
    #[arg(long, default_value_t = 19_456)]
    argon2_memory_kib: u32,
    /// argon2id iterations of `logins`.
    #[arg(long, default_value_t = 2)]
    argon2_iterations: u32,
    /// Players of `replication` (every one a client).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(2..=20_000))]
    players: u32,
    /// Side of the square the `replication` crowd walks in, metres.
    #[arg(long, default_value_t = 200.0)]
    side_m: f32,
    /// Round trip of the `replication` link, milliseconds (half each way).
    #[arg(long, default_value_t = 100)]
    rtt_ms: u32,
    /// Datagram loss of the `replication` link, percent, each direction.
    #[arg(long, default_value_t = 2.0)]
    loss_percent: f64,
    /// Threads replicating the `replication` zone's clients (1..=64).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
    /// Share delta record bodies between the `replication` zone's clients
    /// (`ZoneConfig::shared_encoding`, off by default).
    #[arg(long)]
    shared_encoding: bool,
    /// Simulated seconds of `replication` before measuring (the clients' visible sets fill
    /// with enter records at first; 15 measures the steady state).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=600))]
    warmup_s: u32,
    /// Bits of the `replication` codec's yaw (4..=16; default: the default configuration's).
    #[arg(long, default_value_t = SnapshotConfig::default().yaw_bits, value_parser = clap::value_parser!(u32).range(4..=16))]
    yaw_bits: u32,
    /// Exp-Golomb order of the `replication` codec's yaw residuals (0..=8; default: the
    /// default configuration's).
    #[arg(long, default_value_t = SnapshotConfig::default().yaw_k, value_parser = clap::value_parser!(u32).range(0..=8))]
    yaw_k: u32,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scenario {
    /// Snapshot codec: 250 moving characters at 30 Hz for 60 s, baselines 6 ticks old.
    Codec,
    /// Acks + interest + priority + encode for 1000 clients over 10 s at the default budget
    /// on a 100 ms / 2 % loss link (`--players`, `--side-m`, `--rtt-ms`, `--loss-percent`).
    Replication,
    /// One predicting client over 150 ms RTT, 30 ms jitter, 5 % loss, 10 % duplication.
    Prediction,
    /// Flushing 1000 dirty characters with inventories, on SQLite and PostgreSQL.
    Persistence,
    /// 1000 password logins at once against a real server (argon2id).
    Logins,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.scenario {
        Scenario::Codec => scenario_codec::run(cli.seed),
        Scenario::Replication => scenario_replication::run(
            cli.seed,
            &scenario_replication::Shape {
                players: cli.players as usize,
                side_m: cli.side_m,
                rtt_ms: cli.rtt_ms,
                loss_percent: cli.loss_percent,
                threads: cli.threads as usize,
                shared_encoding: cli.shared_encoding,
                warmup_s: cli.warmup_s,
                yaw_bits: cli.yaw_bits,
                yaw_k: cli.yaw_k,
            },
        ),
        Scenario::Prediction => scenario_prediction::run(cli.seed),
        Scenario::Persistence => scenario_persistence::run(cli.postgres_url.clone()),
        Scenario::Logins => scenario_logins::run(
            cli.postgres_url.clone(),
            scenario_logins::Argon2Cost {
                memory_kib: cli.argon2_memory_kib,
                iterations: cli.argon2_iterations,
            },
        ),
    };
    match result {
        Ok(figures) => {
            if cli.json {
                println!("{figures}");
            } else {
                print_table(&figures);
            }
        }
        Err(message) => {
            eprintln!("mmo-bench: {message}");
            std::process::exit(1);
        }
    }
}

/// Prints a JSON object of figures as `key  value` lines.
fn print_table(figures: &serde_json::Value) {
    if let Some(map) = figures.as_object() {
        let width = map.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in map {
            println!("{key:<width$}  {value}");
        }
    } else {
        println!("{figures}");
    }
}
