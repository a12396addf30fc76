//! The `mmo-server` binary: reads the settings, starts the server, prints one READY line on
//! stdout (`MMO_SERVER_READY quic=<addr> http=<addr> fingerprint=<hex>`), and runs until
//! SIGTERM or Ctrl-C, then shuts down gracefully and exits 0. Everything else goes to
//! stderr. Exit status: 2 for a bad setting, 1 for any other start-up failure, and 1 after
//! a zone process lost a zone's lease in the fleet's directory (it shuts down: another
//! process may own the zone now) or a gateway's or zone process's relay stopped.

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
    // Installed before the READY line: a SIGTERM sent as soon as it is read must find the
    // handler, not the default action (termination by signal).
    let mut signal = ShutdownSignal::install();
    // A spare zone process (`--zones auto`) can wait in `App::start` for a long time: a
    // signal meanwhile stops it there, before it takes a zone.
    let started = tokio::select! {
        started = App::start(settings) => started,
        () = signal.wait() => {
            tracing::info!("stopped before start-up finished");
            return ExitCode::SUCCESS;
        }
    };
    let app = match started {
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
    let lost = tokio::select! {
        () = signal.wait() => None,
        reason = app.failed() => Some(reason),
        () = app.retired() => {
            tracing::info!("every shard here merged into another: nothing left to run, stopping");
            None
        }
    };
    if let Some(reason) = &lost {
        tracing::error!(%reason, "this process can no longer serve: shutting down");
        eprintln!("mmo-server: {reason}");
    }
    app.shutdown(SHUTDOWN_GRACE).await;
    if lost.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// SIGTERM and SIGINT (Ctrl-C), listened for from [`ShutdownSignal::install`] on (off unix:
/// Ctrl-C, listened for from [`ShutdownSignal::wait`] on).
struct ShutdownSignal {
    /// SIGTERM's stream; `None` when its handler could not be installed (logged).
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    /// SIGINT's stream; `None` when its handler could not be installed (logged).
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(stream) => Some(stream),
                Err(e) => {
                    tracing::warn!(error = %e, "{name} handler not installed");
                    None
                }
            };
            ShutdownSignal {
                term: install(SignalKind::terminate(), "SIGTERM"),
                interrupt: install(SignalKind::interrupt(), "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        {
            ShutdownSignal {}
        }
    }

    /// Resolves on the first of the signals (again on a later one when called again).
    async fn wait(&mut self) {
        #[cfg(unix)]
        {
            /// A signal that never comes stands in for a stream that is missing.
            async fn next(stream: Option<&mut tokio::signal::unix::Signal>) {
                match stream {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            if self.term.is_none() && self.interrupt.is_none() {
                let _ = tokio::signal::ctrl_c().await;
                tracing::info!("Ctrl-C received");
                return;
            }
            tokio::select! {
                () = next(self.term.as_mut()) => tracing::info!("SIGTERM received"),
                () = next(self.interrupt.as_mut()) => tracing::info!("SIGINT received"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C received");
        }
    }
}
