//! End to end through the real binaries: builds `mmo-server`, then runs the `mmo-loadtest`
//! binary with `--spawn-server --json`: 200 bots for 20 iterations of 0.5 s against the
//! server it spawns (each uses two abilities and one inventory operation), and checks the
//! JSON report it prints and the HTML page it writes (`--html`).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Bots in the run.
const BOTS: u64 = 200;

fn workspace_root() -> PathBuf {
    // rust/bots -> the workspace root.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// Builds `mmo-server` (debug) and returns its path.
fn build_server() -> PathBuf {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "mmo-server"]).current_dir(&root);
    // The variables cargo set for this test describe this package, not the build: a
    // build script that watches one (ring's watches CARGO_MANIFEST_DIR) would otherwise
    // rebuild, and again at the next ordinary build.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_")
            || matches!(
                key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
            )
        {
            build.env_remove(key);
        }
    }
    let status = build.status().unwrap();
    assert!(status.success(), "cargo build -p mmo-server failed");
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target_dir
        .join("debug")
        .join(format!("mmo-server{}", std::env::consts::EXE_SUFFIX))
}

fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {report:#}"))
}

#[test]
fn two_hundred_bots_for_ten_seconds_against_the_real_server() {
    let server_bin = build_server();
    let bots = BOTS.to_string();
    let html_dir = tempfile::tempdir().unwrap();
    let html_path = html_dir.path().join("report.html");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmo-loadtest"))
        .args([
            "--spawn-server",
            "--server-bin",
            server_bin.to_str().unwrap(),
            "--bots",
            &bots,
            "--ramp-per-s",
            "200",
            "--iterations",
            "20",
            "--iteration-s",
            "0.5",
            "--duration-s",
            "30",
            "--json",
            "--no-progress",
            "--html",
            html_path.to_str().unwrap(),
            "--plan-ccu",
            "10000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read both pipes on threads so neither can fill up while we wait.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mmo-loadtest did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    assert!(
        status.success(),
        "{status}\nstdout: {stdout}\nstderr: {stderr}"
    );

    // One JSON object on stdout.
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"));
    // The figures, for `--nocapture` (measured, not asserted: debug builds are slow).
    println!("{report:#}");
    assert_eq!(report["bots"], BOTS, "{report:#}");
    assert_eq!(report["connected"], BOTS, "{report:#}");
    assert_eq!(report["connect_failures"], 0, "{report:#}");
    assert_eq!(report["ccu_peak"], BOTS, "{report:#}");
    let delivery = number(&report, "snapshot_delivery_ratio");
    assert!(delivery >= 0.95, "snapshot delivery {delivery}: {report:#}");
    assert!(number(&report, "input_to_ack_ms_p99") > 0.0, "{report:#}");
    // Every bot's 10th and 20th iterations use an ability, its 20th asks for an inventory
    // operation; the server answers them, and kicks nobody.
    // (A loaded machine may let the 30 s cap stop late bots before their 20th iteration.)
    assert!(
        number(&report, "abilities_requested") >= BOTS as f64,
        "{report:#}"
    );
    assert!(number(&report, "inventory_opens") > 0.0, "{report:#}");
    let abilities = &report["abilities"];
    assert!(number(abilities, "requests") >= BOTS as f64, "{report:#}");
    assert!(number(abilities, "ok") > 0.0, "{report:#}");
    assert!(
        number(abilities, "ok") + number(abilities, "refused")
            > 0.9 * number(abilities, "requests"),
        "{report:#}"
    );
    assert!(number(abilities, "result_ms_p99") > 0.0, "{report:#}");
    let inventory = &report["inventory_ops"];
    assert!(number(inventory, "requests") > 0.0, "{report:#}");
    assert!(number(inventory, "ok") > 0.0, "{report:#}");
    // A swap with an empty slot of the starting kit cannot be refused.
    assert_eq!(inventory["refused"], 0, "{report:#}");
    assert_eq!(report["bots_kicked"], 0, "{report:#}");
    assert!(
        report["disconnect_reasons"].get("kicked").is_none(),
        "{report:#}"
    );
    assert_eq!(
        report["disconnect_reasons"]["client_quit"], BOTS,
        "{report:#}"
    );
    // The server's figures, scraped from its /metrics, are measured.
    assert!(
        number(&report, "server_tick_p99_ms_upper_bound") > 0.0,
        "{report:#}"
    );
    assert!(number(&report, "server_tick_max_ms") > 0.0, "{report:#}");
    assert!(number(&report, "server_ticks_skipped") >= 0.0, "{report:#}");
    assert!(number(&report, "server_rss_mib") > 0.0, "{report:#}");
    // The per-role figures and the plan come from the same scrapes.
    assert_eq!(report["server_role"], "all", "{report:#}");
    assert!(
        number(&report["server_traffic"], "client_bytes_out_per_s") > 0.0,
        "{report:#}"
    );
    let roles = report["roles"].as_array().expect("roles is an array");
    assert_eq!(roles.len(), 1, "{report:#}");
    assert!(
        number(&roles[0], "cpu_millicores_per_player") > 0.0,
        "{report:#}"
    );
    let plan = &report["capacity"];
    assert_eq!(plan["ccu"], 10_000, "{report:#}");
    assert!(number(&plan["roles"][0], "cores") > 0.0, "{report:#}");
    assert!(plan["cost"].is_null(), "no prices given: {report:#}");
    // The timeline saw every bot connected at once and the server's players.
    let ccu = report["timeline"]["ccu"].as_array().expect("ccu points");
    let most = ccu.iter().filter_map(|p| p["active"].as_u64()).max();
    assert_eq!(most, Some(BOTS), "{report:#}");
    let server_line = &report["timeline"]["processes"][0];
    assert_eq!(server_line["role"], "all", "{report:#}");
    assert!(
        server_line["points"]
            .as_array()
            .expect("points")
            .iter()
            .any(|p| p["zone_players"].as_f64() == Some(BOTS as f64)),
        "{report:#}"
    );
    let cdf = report["input_to_ack_cdf"].as_array().expect("cdf points");
    assert_eq!(cdf.last().map(|p| p["fraction"].as_f64()), Some(Some(1.0)));
    assert!(
        cdf.windows(2)
            .all(|w| number(&w[0], "ms") <= number(&w[1], "ms")),
        "{report:#}"
    );
    // The HTML page: its four timelines and the CDF are drawn with data.
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert_eq!(html.matches("<svg").count(), 5, "{html}");
    assert!(!html.contains("no data"), "{html}");
    assert!(html.contains("Plan for 10000 concurrent players"), "{html}");
    let notes = report["notes"].as_array().expect("notes is an array");
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().is_some_and(|n| n.contains("server stopped"))),
        "{report:#}"
    );
}
