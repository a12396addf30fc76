//! The real `mmo-server` binary as a child process: started with flags and environment,
//! its READY line read for the bound addresses, stopped with SIGTERM or killed outright
//! (`kill -9`, for crash tests), killed on drop.

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use mmo_net::tls::Fingerprint;
use mmo_server::http::LoginResponse;

use super::server_command;

/// A running server process. See the module docs.
pub struct ServerProcess {
    child: Child,
    /// The QUIC endpoint.
    pub quic: SocketAddr,
    /// The HTTP endpoint.
    pub http: SocketAddr,
    /// The certificate fingerprint to pin.
    pub fingerprint: Fingerprint,
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

/// A running `--role zone` process: no QUIC endpoint, only HTTP.
pub struct ZoneRoleProcess {
    child: Child,
    /// The HTTP endpoint (`/metrics`, `/healthz`, `/readyz`).
    pub http: SocketAddr,
    /// Its READY line.
    pub ready_line: String,
}

impl ZoneRoleProcess {
    /// Starts the binary with `args` (which must ask for the zone role) and `env`, and
    /// waits for its READY line.
    pub fn start(args: &[&str], env: &[(&str, &str)], log_path: Option<&std::path::Path>) -> Self {
        Self::try_start(args, env, log_path).expect("the zone process gets ready")
    }

    /// Like [`ZoneRoleProcess::start`], but `None` when the process exits before its
    /// READY line (it was refused).
    pub fn try_start(
        args: &[&str],
        env: &[(&str, &str)],
        log_path: Option<&std::path::Path>,
    ) -> Option<Self> {
        let (child, line) = spawn_until_ready(args, env, log_path);
        Self::from_line(child, line)
    }

    /// The process whose first line is `line`, if it is a READY line.
    fn from_line(mut child: Child, line: String) -> Option<Self> {
        if !line.starts_with("MMO_SERVER_READY ") {
            // Refused (it exits), or something else went wrong: never wait on a live one.
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        Some(ZoneRoleProcess {
            http: field(&line, "http=").parse().expect("http address"),
            ready_line: line,
            child,
        })
    }

    /// `kill -9`: the process gets no chance to save anything or give its leases back.
    pub fn kill_hard(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, then waits up to `within` for the exit status.
    pub fn terminate(mut self, within: Duration) -> Option<std::process::ExitStatus> {
        terminate(&mut self.child, within)
    }
}

impl Drop for ZoneRoleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A started process whose READY line (or the end of its stdout) has not been read yet.
pub struct Pending {
    /// Taken when the line is read (until then, killed on drop).
    child: Option<Child>,
    first_line: std::sync::mpsc::Receiver<String>,
}

impl Pending {
    /// Starts the binary with `args` and `env` (over a clean environment). Its log goes to
    /// `log_path` when given.
    pub fn spawn(args: &[&str], env: &[(&str, &str)], log_path: Option<&std::path::Path>) -> Self {
        let mut command = server_command(args);
        for (key, value) in env {
            command.env(key, value);
        }
        let stderr = match log_path {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create the log file")),
            None => Stdio::null(),
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start mmo-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, first_line) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        Pending {
            child: Some(child),
            first_line,
        }
    }

    /// Whether the READY line (or the end of stdout) has not come within `within`.
    pub fn still_waiting(&self, within: Duration) -> bool {
        matches!(
            self.first_line.recv_timeout(within),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        )
    }

    /// Waits up to `within` for the READY line (or the end of stdout): the process and
    /// the line.
    fn wait(mut self, within: Duration) -> (Child, String) {
        let line = self
            .first_line
            .recv_timeout(within)
            .expect("READY line (or the end of stdout) in time");
        // Set at spawn, taken only here (which consumes `self`).
        let child = self.child.take().expect("the child is still here");
        (child, line)
    }

    /// SIGTERM before it got ready, then waits up to `within` for the exit status.
    pub fn terminate(mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        terminate(&mut child, within)
    }

    /// The zone process once ready (within `within`); `None` when it exited instead.
    pub fn zone_ready(self, within: Duration) -> Option<ZoneRoleProcess> {
        let (child, line) = self.wait(within);
        ZoneRoleProcess::from_line(child, line)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the binary with `args` and `env` (over a clean environment) and waits up to 30 s
/// for its READY line, which it returns. Its log goes to `log_path` when given.
fn spawn_until_ready(
    args: &[&str],
    env: &[(&str, &str)],
    log_path: Option<&std::path::Path>,
) -> (Child, String) {
    Pending::spawn(args, env, log_path).wait(Duration::from_secs(30))
}

/// SIGTERM to `child`, then waits up to `within` for its exit status.
fn terminate(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    // SAFETY: `kill` with a pid this process spawned and has not reaped, and a valid
    // signal number; it touches no memory.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

impl ServerProcess {
    /// Starts the binary with `args` and `env` (over a clean environment) and waits up to
    /// 30 s for its READY line. Its log goes to `log_path` when given.
    pub fn start(args: &[&str], env: &[(&str, &str)], log_path: Option<&std::path::Path>) -> Self {
        let (child, line) = spawn_until_ready(args, env, log_path);
        assert!(line.starts_with("MMO_SERVER_READY "), "{line}");
        ServerProcess {
            quic: field(&line, "quic=").parse().expect("quic address"),
            http: field(&line, "http=").parse().expect("http address"),
            fingerprint: Fingerprint::from_hex(field(&line, "fingerprint=")).expect("fingerprint"),
            child,
        }
    }

    /// `kill -9`: the process gets no chance to save anything.
    pub fn kill_hard(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, then waits up to `within` for the exit status.
    pub fn terminate(mut self, within: Duration) -> Option<std::process::ExitStatus> {
        terminate(&mut self.child, within)
    }

    /// `POST /v1/login` for `name` with `password`; panics unless it answers 200.
    pub async fn login(&self, name: &str, password: &str) -> LoginResponse {
        let response = reqwest::Client::new()
            .post(format!("http://{}/v1/login", self.http))
            .json(&serde_json::json!({"username": name, "password": password}))
            .send()
            .await
            .expect("HTTP login");
        assert_eq!(response.status(), 200, "login of {name}");
        response.json().await.expect("login JSON")
    }

    /// `POST <path>` with a JSON `body`: the status and the JSON answer.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(format!("http://{}{path}", self.http))
            .json(&body)
            .send()
            .await
            .expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.http))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks the answer of a `terminate`: the process `what` exited in time, with status 0.
pub fn assert_stopped_cleanly(status: Option<std::process::ExitStatus>, what: &str) {
    let status = status.unwrap_or_else(|| panic!("{what} did not exit in time"));
    assert!(status.success(), "{what} exit status {status}");
}
