//! A local `mmo-server` child process for `--spawn-server`: found next to this executable
//! (or given), started on loopback with a fresh data directory and the gateway limits a
//! load test from one address needs ([`SpawnSettings::for_load`]), recognised as ready by the
//! one line `MMO_SERVER_READY quic=<addr> http=<addr> fingerprint=<hex>` on its stdout, and
//! stopped with SIGTERM, then SIGKILL after a grace period.
//!
//! The server's stderr (its logs) goes to `server.log` in the temporary directory; when
//! the server fails to start, the error quotes the end of that log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mmo_net::tls::Fingerprint;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::login::parse_fingerprint;
use crate::{LoadError, LoadOptions};

/// The name of the server binary.
pub const SERVER_BIN_NAME: &str = "mmo-server";
/// The marker that starts the ready line.
pub const READY_MARKER: &str = "MMO_SERVER_READY";

/// Connections the spawned server allows beyond the bots.
pub const EXTRA_CONNECTIONS: usize = 100;
/// The largest handshake burst or rate `mmo-server` accepts.
pub const MAX_HANDSHAKE_RATE: u32 = 1_000_000;

/// The settings a spawned server is started with (its flags).
#[derive(Clone, Debug, PartialEq)]
pub struct SpawnSettings {
    /// `--tick-rate-hz`.
    pub tick_rate_hz: u32,
    /// `--max-connections`.
    pub max_connections: usize,
    /// `--handshake-burst`: handshakes one address may start at once.
    pub handshake_burst: u32,
    /// `--handshake-refill-per-s`: handshakes per second one address may start, sustained.
    pub handshake_refill_per_s: u32,
    /// `--spawn-spread-m`: new characters (every bot's) start over a disc of this radius.
    pub spawn_spread_m: f32,
}

impl SpawnSettings {
    /// What a run of `options` needs. Every bot connects from 127.0.0.1, which the server's
    /// per-address handshake limit (by default a burst of 20, then 10 per second) would
    /// otherwise throttle: the burst is the number of bots (all may handshake at once), the
    /// sustained rate at least the ramp rate, and the cap `bots + 100`
    /// ([`EXTRA_CONNECTIONS`]). Burst and rate are clamped to `1..=1,000,000`, the range the
    /// server accepts.
    #[must_use]
    pub fn for_load(options: &LoadOptions) -> Self {
        let clamp = |n: f64| {
            // The float-to-int cast saturates; the clamp keeps it within the server's range.
            (n.ceil() as u64).clamp(1, u64::from(MAX_HANDSHAKE_RATE)) as u32
        };
        SpawnSettings {
            tick_rate_hz: options.tick_rate_hz,
            max_connections: options.bots.saturating_add(EXTRA_CONNECTIONS),
            handshake_burst: clamp(options.bots as f64),
            handshake_refill_per_s: clamp(options.ramp_per_s),
            spawn_spread_m: options.spawn_spread_m,
        }
    }
}

/// What the ready line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    /// The QUIC endpoint.
    pub quic_addr: SocketAddr,
    /// The HTTP API.
    pub http_addr: SocketAddr,
    /// The certificate to pin.
    pub fingerprint: Fingerprint,
}

/// Parses `MMO_SERVER_READY quic=<addr> http=<addr> fingerprint=<hex>`. `None` for a line
/// that is not a ready line; an error for a ready line that is malformed.
pub fn parse_ready_line(line: &str) -> Option<Result<Ready, String>> {
    let rest = line.trim().strip_prefix(READY_MARKER)?;
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some(parse_ready_fields(rest))
}

fn parse_ready_fields(rest: &str) -> Result<Ready, String> {
    let (mut quic, mut http, mut fingerprint) = (None, None, None);
    for field in rest.split_whitespace() {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| format!("ready line field {field:?} is not key=value"))?;
        let addr = || {
            value
                .parse::<SocketAddr>()
                .map_err(|_| format!("ready line {key}={value:?} is not ip:port"))
        };
        match key {
            "quic" => quic = Some(addr()?),
            "http" => http = Some(addr()?),
            "fingerprint" => fingerprint = Some(parse_fingerprint(value)?),
            _ => {} // Later servers may say more.
        }
    }
    Ok(Ready {
        quic_addr: quic.ok_or("ready line without quic=")?,
        http_addr: http.ok_or("ready line without http=")?,
        fingerprint: fingerprint.ok_or("ready line without fingerprint=")?,
    })
}

/// The server binary: `explicit` if given (it must exist), else `mmo-server` next to the
/// running executable (or one directory up, when that is a test binary's `deps/`).
pub fn find_server_bin(explicit: Option<&Path>) -> Result<PathBuf, LoadError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(LoadError::ServerBinaryNotFound(format!(
                "--server-bin {} does not exist or is not a file",
                path.display()
            )))
        };
    }
    let exe = std::env::current_exe()
        .map_err(|e| LoadError::ServerBinaryNotFound(format!("own executable path: {e}")))?;
    let name = format!("{SERVER_BIN_NAME}{}", std::env::consts::EXE_SUFFIX);
    let mut candidates = Vec::new();
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join(&name));
        if dir.file_name().is_some_and(|n| n == "deps")
            && let Some(up) = dir.parent()
        {
            candidates.push(up.join(&name));
        }
    }
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
            LoadError::ServerBinaryNotFound(format!(
                "no {name} next to this executable (looked at {}); build it with \
                 `cargo build -p mmo-server` or pass --server-bin PATH",
                looked.join(", ")
            ))
        })
}

/// A running child server. Stop it with [`SpawnedServer::stop`]; dropped, it is killed.
#[derive(Debug)]
pub struct SpawnedServer {
    child: Child,
    /// What its ready line said.
    pub ready: Ready,
    /// Holds the data directory and `server.log` (removed when dropped).
    dir: tempfile::TempDir,
}

impl SpawnedServer {
    /// Starts `server_bin` on loopback (`--quic-addr 127.0.0.1:0 --http-addr 127.0.0.1:0
    /// --data-dir <fresh> --dev-open-login --logins-per-address-per-min 100000`, then
    /// `settings` as `--tick-rate-hz`
    /// `--max-connections` `--handshake-burst` `--handshake-refill-per-s`) and waits up to
    /// `ready_timeout` for its ready line.
    pub async fn start(
        server_bin: &Path,
        settings: &SpawnSettings,
        ready_timeout: Duration,
    ) -> Result<SpawnedServer, LoadError> {
        let dir = tempfile::Builder::new()
            .prefix("mmo-loadtest-")
            .tempdir()
            .map_err(|e| LoadError::Io(format!("temporary directory: {e}")))?;
        let data_dir = dir.path().join("data");
        std::fs::create_dir(&data_dir)
            .map_err(|e| LoadError::Io(format!("{}: {e}", data_dir.display())))?;
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| LoadError::Io(format!("{}: {e}", log_path.display())))?;
        let mut command = Command::new(server_bin);
        // The settings below are the whole configuration: none inherited from the user's
        // environment (a stray MMO_CONFIG or MMO_JWT_SECRET_FILE must not leak in).
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MMO_") {
                command.env_remove(&name);
            }
        }
        // Its own process group: a Ctrl-C in the terminal reaches the load tester, which
        // logs the bots out and then stops the server, instead of both at once.
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command
            .arg("--quic-addr")
            .arg("127.0.0.1:0")
            .arg("--http-addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--dev-open-login")
            // Every bot logs in from 127.0.0.1.
            .arg("--logins-per-address-per-min")
            .arg("100000")
            .arg("--tick-rate-hz")
            .arg(settings.tick_rate_hz.to_string())
            .arg("--max-connections")
            .arg(settings.max_connections.to_string())
            .arg("--handshake-burst")
            .arg(settings.handshake_burst.to_string())
            .arg("--handshake-refill-per-s")
            .arg(settings.handshake_refill_per_s.to_string())
            .arg("--spawn-spread-m")
            .arg(settings.spawn_spread_m.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                LoadError::ServerStart(format!("could not start {}: {e}", server_bin.display()))
            })?;
        let Some(stdout) = child.stdout.take() else {
            return Err(LoadError::ServerStart("server stdout not captured".into()));
        };
        let mut lines = BufReader::new(stdout).lines();
        let waited = tokio::time::timeout(ready_timeout, async {
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if let Some(ready) = parse_ready_line(&line) {
                            return ready.map_err(|m| format!("bad ready line {line:?}: {m}"));
                        }
                    }
                    Ok(None) => return Err("it closed its stdout (exited?)".to_owned()),
                    Err(e) => return Err(format!("reading its stdout: {e}")),
                }
            }
        })
        .await;
        let ready = match waited {
            Ok(Ok(ready)) => ready,
            Ok(Err(why)) => {
                let status = exit_status_after(&mut child, Duration::from_secs(2)).await;
                return Err(LoadError::ServerStart(format!(
                    "{} did not become ready: {why}; {status}; {}",
                    server_bin.display(),
                    log_tail(&log_path)
                )));
            }
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(LoadError::ServerStart(format!(
                    "{} printed no {READY_MARKER} line within {:?}; {}",
                    server_bin.display(),
                    ready_timeout,
                    log_tail(&log_path)
                )));
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(SpawnedServer { child, ready, dir })
    }

    /// The temporary directory (data and `server.log`).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends SIGTERM, waits up to `grace` for the exit, then SIGKILLs. Returns how it ended.
    pub async fn stop(mut self, grace: Duration) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            return format!("server had already exited ({status})");
        }
        terminate(&self.child);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => format!("server stopped ({status})"),
            _ => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                format!("server did not stop within {grace:?} of SIGTERM: killed")
            }
        }
    }
}

/// Sends SIGTERM to `child` (nothing when it has exited).
#[cfg(unix)]
fn terminate(child: &Child) {
    let Some(pid) = child.id() else {
        return;
    };
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; `pid` is our own
    // child, not yet reaped (`id()` is `None` after `wait`), so it names no other process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// No SIGTERM off Unix: the grace period passes and the child is killed.
#[cfg(not(unix))]
fn terminate(_child: &Child) {}

async fn exit_status_after(child: &mut Child, wait: Duration) -> String {
    match tokio::time::timeout(wait, child.wait()).await {
        Ok(Ok(status)) => status.to_string(),
        _ => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            "still running: killed".to_owned()
        }
    }
}

/// The last lines of the server's log, for error messages.
fn log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(10)..];
            format!("its stderr ended with:\n{}", tail.join("\n"))
        }
        _ => "its stderr was empty".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_parse_and_other_lines_are_ignored() {
        let fp = "ab".repeat(32);
        let line =
            format!("MMO_SERVER_READY quic=127.0.0.1:4433 http=127.0.0.1:8080 fingerprint={fp}\n");
        let ready = parse_ready_line(&line).unwrap().unwrap();
        assert_eq!(ready.quic_addr.port(), 4433);
        assert_eq!(ready.http_addr.port(), 8080);
        assert_eq!(ready.fingerprint.to_hex(), fp);
        assert!(parse_ready_line("listening on 127.0.0.1").is_none());
        assert!(parse_ready_line("MMO_SERVER_READYX quic=1").is_none());
        let missing = parse_ready_line("MMO_SERVER_READY quic=127.0.0.1:1 http=127.0.0.1:2");
        assert!(missing.unwrap().unwrap_err().contains("fingerprint"));
        let bad = parse_ready_line(&format!(
            "MMO_SERVER_READY quic=x http=127.0.0.1:2 fingerprint={fp}"
        ));
        assert!(bad.unwrap().unwrap_err().contains("quic"));
    }

    #[test]
    fn the_spawned_server_admits_every_bot_from_one_address() {
        let options = LoadOptions {
            bots: 1000,
            ramp_per_s: 250.5,
            ..LoadOptions::default()
        };
        let settings = SpawnSettings::for_load(&options);
        assert_eq!(settings.max_connections, 1100);
        assert_eq!(settings.handshake_burst, 1000);
        assert_eq!(settings.handshake_refill_per_s, 251);
        assert_eq!(settings.tick_rate_hz, 30);
        let huge = SpawnSettings::for_load(&LoadOptions {
            bots: 5_000_000,
            ramp_per_s: 1e12,
            ..LoadOptions::default()
        });
        assert_eq!(huge.handshake_burst, MAX_HANDSHAKE_RATE);
        assert_eq!(huge.handshake_refill_per_s, MAX_HANDSHAKE_RATE);
        let slow = SpawnSettings::for_load(&LoadOptions {
            bots: 1,
            ramp_per_s: 0.1,
            ..LoadOptions::default()
        });
        assert_eq!((slow.handshake_burst, slow.handshake_refill_per_s), (1, 1));
    }

    #[test]
    fn a_missing_explicit_binary_is_named() {
        let err = find_server_bin(Some(Path::new("/nonexistent/mmo-server"))).unwrap_err();
        assert_eq!(err.code(), "server_binary_not_found");
        assert!(err.to_string().contains("/nonexistent/mmo-server"));
    }
}
