//! The `mmo-server` binary: reads the settings, starts the server, prints one READY line on
//! stdout (`MMO_SERVER_READY quic=<addr> http=<addr> fingerprint=<hex>`), and runs until
//! SIGTERM or Ctrl-C, then shuts down gracefully and exits 0. Everything else goes to
//! stderr. Exit status: 2 for a bad setting, 1 for any other start-up failure.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mmo_server::app::App;
use mmo_server::config::{self, Cli, LogFormat, ServerSettings};

/// How long shutdown waits for clients and HTTP requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    // Bad or unknown flags: clap prints the problem and exits with status 2.
    let cli = Cli::parse();
    let settings = match config::load(&cli, &config::process_env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mmo-server: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mmo-server")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mmo-server: cannot start the tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(settings))
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Err(e) = installed {
        eprintln!("mmo-server: logging not set up: {e}");
    }
}

async fn run(settings: ServerSettings) -> ExitCode {
    let app = match App::start(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            eprintln!("mmo-server: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    {
        let mut stdout = std::io::stdout().lock();
        let printed = writeln!(stdout, "{}", app.ready_line()).and_then(|()| stdout.flush());
        if let Err(e) = printed {
            tracing::warn!(error = %e, "READY line not written to stdout");
        }
    }
    wait_for_signal().await;
    app.shutdown(SHUTDOWN_GRACE).await;
    ExitCode::SUCCESS
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "SIGTERM handler not installed; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received");
    }
}
