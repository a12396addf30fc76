//! A PostgreSQL (and Redis) cluster of a test's own, started with `ci/services.sh` in a temp
//! dir and stopped on drop: for tests that stop the database on purpose, which must never
//! happen to the shared one other tests use.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::TempDir;

/// Runs `ci/services.sh <command> <dir>`; panics naming the command when it fails.
pub fn services(command: &str, dir: &Path) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ci/services.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(command)
        .arg(dir)
        .status()
        .expect("run ci/services.sh");
    assert!(status.success(), "ci/services.sh {command} failed");
}

/// Our own cluster. See the module docs.
pub struct Cluster {
    dir: TempDir,
}

impl Cluster {
    /// Starts PostgreSQL and Redis in a fresh temp dir.
    pub fn start(tag: &str) -> Cluster {
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.path()).expect("create the cluster dir");
        services("start", dir.path());
        Cluster { dir }
    }

    /// The PostgreSQL URL (its maintenance database, superuser `mmo`).
    pub fn url(&self) -> String {
        let env = std::fs::read_to_string(self.dir.path().join("env")).expect("the env file");
        env.lines()
            .find_map(|l| l.strip_prefix("export MMO_TEST_POSTGRES_URL="))
            .expect("the env file names the URL")
            .to_owned()
    }

    /// Stops PostgreSQL (fast shutdown); the data stays.
    pub fn stop_postgres(&self) {
        services("pg-stop", self.dir.path());
    }

    /// Starts PostgreSQL again on the same port and data.
    pub fn start_postgres(&self) {
        services("pg-start", self.dir.path());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        services("stop", self.dir.path());
    }
}

/// The value of the Prometheus sample `name_and_labels` (e.g.
/// `mmo_persistence_backlog_records` or `name{kind="x"}`) in `text`, 0 when absent.
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}
