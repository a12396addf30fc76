//! 20 bots, 20 iterations of 0.1 s each, against an in-process `mmo_net::server::Server` on
//! 127.0.0.1 (real QUIC, tokens from `StaticTokens`, no HTTP): everyone connects, snapshots
//! arrive, inputs are acknowledged, abilities and inventory operations are answered, nobody
//! is kicked, and the JSON report has every documented field.

use std::sync::Arc;
use std::time::Duration;

use mmo_core::zone::ZoneConfig;
use mmo_loadtest::{DirectTarget, LoadOptions, Report, Target, TokenSource};
use mmo_net::auth::StaticTokens;
use mmo_net::server::{Server, ServerConfig};
use mmo_net::tls::ServerCert;

const BOTS: usize = 20;

/// Every key the report promises (issue 4 item 4).
const FIELDS: &[&str] = &[
    "bots",
    "ccu_peak",
    "connect_failures",
    "connect_failure_reasons",
    "handshakes_per_s",
    "connect_ms_p50",
    "connect_ms_p99",
    "input_to_ack_ms_p50",
    "input_to_ack_ms_p95",
    "input_to_ack_ms_p99",
    "snapshot_delivery_ratio",
    "bytes_per_s_up_p50",
    "bytes_per_s_up_p99",
    "bytes_per_s_down_p50",
    "bytes_per_s_down_p99",
    "abilities_requested",
    "inventory_opens",
    "abilities",
    "inventory_ops",
    "combat_events",
    "damage_events",
    "bots_kicked",
    "disconnect_reasons",
    "server_tick_p50_ms_upper_bound",
    "server_tick_p99_ms_upper_bound",
    "server_tick_max_ms",
    "server_ticks_skipped",
    "server_replication_degraded_ticks",
    "light_bots",
    "bots_cpu_cores",
    "bots_cores_available",
    "void",
    "server_cpu_cores",
    "server_rss_mib",
    "server_memory_per_player_kib",
    "duration_s",
    "seed",
    "machine",
];

/// An in-process server accepting the tokens `bot-0` .. `bot-{n-1}`, and the direct target
/// the bots reach it by (their tokens are `bot-<index>`).
/// Runs the load test (failing the test past 60 s or when it cannot be set up), then shuts
/// `server` down.
async fn run_then_stop(server: Server, options: &LoadOptions, target: Target) -> Report {
    let report = tokio::time::timeout(Duration::from_secs(60), mmo_loadtest::run(options, target))
        .await
        .expect("the run finished within 60 s")
        .expect("the run was set up");
    server.shutdown(Duration::from_secs(2)).await;
    report
}

async fn server_with_tokens_for(n: usize) -> (Server, Target) {
    let mut tokens = StaticTokens::new();
    for i in 0..n {
        tokens = tokens.with(&format!("bot-{i}"), &format!("account-{i}"));
    }
    let cert = ServerCert::self_signed(&["localhost"]).unwrap();
    let server = Server::start(ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        ZoneConfig::default(),
        cert,
        Arc::new(tokens),
    ))
    .await
    .unwrap();
    let target = Target::Direct(DirectTarget {
        quic_addr: server.local_addr(),
        fingerprint: server.fingerprint(),
        tokens: TokenSource::bot_names(),
        metrics_http: None,
    });
    (server, target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_bots_against_an_in_process_server() {
    let (server, target) = server_with_tokens_for(BOTS).await;
    let options = LoadOptions {
        bots: BOTS,
        iterations: 20,
        iteration: Duration::from_millis(100),
        seed: 42,
        ..LoadOptions::default()
    };
    let report = run_then_stop(server, &options, target).await;
    eprintln!("{}", report.to_table());

    assert_eq!(report.bots, BOTS);
    assert_eq!(report.connected, BOTS, "{}", report.to_table());
    assert_eq!(report.connect_failures, 0);
    assert_eq!(report.ccu_peak, BOTS);
    assert!(report.failure().is_none());
    let ratio = report
        .snapshot_delivery_ratio
        .expect("snapshots were counted");
    assert!(ratio > 0.9, "delivery ratio {ratio}");
    let p99 = report
        .input_to_ack_ms_p99
        .expect("inputs were acknowledged");
    assert!(p99 > 0.0);
    assert!(report.input_to_ack_samples > 0);
    assert!(report.connect_ms_p50.is_some() && report.handshakes_per_s.is_some());
    assert!(report.bytes_per_s_down_p50.unwrap() > 0.0);
    assert!(report.bytes_per_s_up_p50.unwrap() > 0.0);
    // 20 iterations: two ability steps (the 10th and 20th) and one inventory step each.
    assert_eq!(report.abilities_requested, 2 * BOTS as u64);
    assert_eq!(report.inventory_opens, BOTS as u64);
    let a = &report.abilities;
    let skipped: u64 = a.skipped_by_reason.values().sum();
    assert_eq!(a.requests + skipped, report.abilities_requested, "{a:?}");
    // Every bot's first ability step has full pools and nothing on cooldown: it is sent.
    assert!(a.requests >= BOTS as u64, "{a:?}");
    assert_eq!(a.unanswered, 0, "{a:?}");
    assert_eq!(a.ok + a.refused, a.requests, "{a:?}");
    assert!(a.ok > 0, "{a:?}");
    assert_eq!(a.refused, a.refused_by_kind.values().sum::<u64>(), "{a:?}");
    assert!(a.result_ms_p50.unwrap() > 0.0 && a.result_ms_p99.unwrap() >= a.result_ms_p50.unwrap());
    // The first inventory step swaps slot 0 with the empty slot 23 of the starting kit.
    let inv = &report.inventory_ops;
    assert_eq!(inv.requests, BOTS as u64, "{inv:?}");
    assert_eq!(inv.ok, BOTS as u64, "{inv:?}");
    assert_eq!((inv.refused, inv.unanswered), (0, 0), "{inv:?}");
    assert!(inv.result_ms_p99.unwrap() > 0.0);
    // A strike or a heal lands on someone: every bot casts at the shared spawn point.
    assert!(report.combat_events > 0, "{}", report.to_table());
    assert_eq!(report.bots_kicked, 0);
    assert_eq!(report.disconnect_reasons.get("client_quit"), Some(&BOTS));
    // No metrics endpoint: server figures are null, with a note, never invented.
    assert_eq!(report.server_cpu_cores, None);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("no metrics endpoint"))
    );
    assert_eq!(report.seed, 42);
    assert!(report.machine.cores >= 1);

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let object = json.as_object().expect("one JSON object");
    for field in FIELDS {
        assert!(object.contains_key(*field), "JSON report lacks {field}");
    }
    assert!(object["server_tick_p99_ms_upper_bound"].is_null());
    assert_eq!(object["machine"]["cores"], report.machine.cores);
    assert!(object["abilities"]["refused_by_kind"].is_object());
    assert_eq!(object["inventory_ops"]["ok"], BOTS);
    let table = report.to_table();
    assert!(table.contains("input_to_ack_ms"));
    assert!(table.contains("abilities sent / ok / refused"), "{table}");
    assert!(table.contains("inventory_ops result_ms"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_bots_are_served_and_measure_input_to_ack() {
    let (server, target) = server_with_tokens_for(12).await;
    let options = LoadOptions {
        bots: 12,
        // 2.5 s: the steady phase passes the 1 s a CPU figure needs.
        iterations: 25,
        iteration: Duration::from_millis(100),
        light_with_full_sample: Some(3),
        ..LoadOptions::default()
    };
    let report = run_then_stop(server, &options, target).await;
    assert_eq!(report.connected, 12, "{}", report.to_table());
    assert!(report.failure().is_none(), "{:?}", report.failure());
    // A sample of 3 of the 12 decodes everything.
    assert_eq!(report.light_bots, 9);
    assert!(report.input_to_ack_samples > 0);
    assert!(report.input_to_ack_ms_p50.is_some_and(|ms| ms > 0.0));
    let ratio = report.snapshot_delivery_ratio.expect("counted");
    assert!(ratio > 0.9, "delivery ratio {ratio}");
    assert!(
        report.bots_cpu_cores.is_some(),
        "the bots' CPU is measured here"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_with_unknown_tokens_are_connect_failures_with_a_reason() {
    // Only bot-0 has a valid token.
    let (server, target) = server_with_tokens_for(1).await;
    let options = LoadOptions {
        bots: 3,
        iterations: 1,
        iteration: Duration::from_millis(200),
        ..LoadOptions::default()
    };
    let report = run_then_stop(server, &options, target).await;
    assert_eq!(report.connected, 1);
    assert_eq!(report.connect_failures, 2);
    assert_eq!(
        report.connect_failure_reasons.get("refused_bad_token"),
        Some(&2)
    );
    let why = report.failure().expect("connect failures fail the run");
    assert!(why.contains("refused_bad_token"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duration_cap_stops_the_bots_and_they_log_out() {
    let (server, target) = server_with_tokens_for(5).await;
    // 100 iterations of 0.3 s would take 30 s; the cap ends the run after 1.5 s.
    let options = LoadOptions {
        bots: 5,
        iterations: 100,
        iteration: Duration::from_millis(300),
        duration_cap: Some(Duration::from_millis(1_500)),
        ..LoadOptions::default()
    };
    let report = run_then_stop(server, &options, target).await;
    assert_eq!(report.connected, 5);
    assert_eq!(report.disconnect_reasons.get("client_quit"), Some(&5));
    assert!(
        report.notes.iter().any(|n| n.contains("stopped early")),
        "{:?}",
        report.notes
    );
    // Stopped long before the 10th iteration of any bot.
    assert_eq!(report.abilities_requested, 0);
}
