//! The `mmo-loadtest` binary: parses the flags, runs the load test on a multi-thread tokio
//! runtime, prints the report (a table, or one JSON object with `--json`; with `--html FILE`
//! also an HTML page), and exits
//! non-zero when a bot failed to connect or none connected.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use mmo_loadtest::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = match cli.options(std::io::stdout().is_terminal()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mmo-loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = options.validate() {
        eprintln!("mmo-loadtest: {e}");
        return ExitCode::from(2);
    }
    // Opened (not truncated: an earlier report stays until this one replaces it) before the
    // run, so an unwritable path fails now, not after it.
    if let Some(path) = &cli.html
        && let Err(e) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        eprintln!("mmo-loadtest: --html {}: {e}", path.display());
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.worker_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mmo-loadtest: io: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match runtime.block_on(mmo_loadtest::run(&options, cli.target())) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mmo-loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    if let Some(path) = &cli.html
        && let Err(e) = std::fs::write(path, mmo_loadtest::report_html::render(&report))
    {
        eprintln!("mmo-loadtest: --html {}: {e}", path.display());
        return ExitCode::from(2);
    }
    match report.failure() {
        Some(why) => {
            eprintln!("mmo-loadtest: FAILED: {why}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}
