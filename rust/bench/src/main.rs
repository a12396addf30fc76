//! `mmo-bench`: scenario benchmarks that print measured figures as one JSON object.
//!
//! `cargo run --release -p mmo-bench -- <scenario> --json`. Every figure is measured in the
//! run that prints it; nothing is assumed or hard-coded. Targets are compared by people
//! reading the output (and the README's performance section), never asserted in tests.

mod scenario_codec;
mod scenario_prediction;
mod scenario_replication;
mod walk;

use clap::{Parser, ValueEnum};

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
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scenario {
    /// Snapshot codec: 250 moving characters at 30 Hz for 60 s, baselines 6 ticks old.
    Codec,
    /// Interest + priority + encode for 1000 clients over 10 s at the default budget.
    Replication,
    /// One predicting client over 150 ms RTT, 30 ms jitter, 5 % loss, 10 % duplication.
    Prediction,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.scenario {
        Scenario::Codec => scenario_codec::run(cli.seed),
        Scenario::Replication => scenario_replication::run(cli.seed),
        Scenario::Prediction => scenario_prediction::run(cli.seed),
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
