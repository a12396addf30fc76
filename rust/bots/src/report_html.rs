//! The report as one self-contained HTML page (`--html FILE`): the figures of the JSON
//! report in tables, and plots of the run over time (CCU, players per process, tick p99 and
//! CPU per process) and of the input-to-ack distribution. Inline SVG (`svg_chart`), no
//! script and no external file.

use std::fmt::Write as _;

use crate::report::{ProcessFigures, Report};
use crate::svg_chart::{Chart, Point, Series, escape, line_chart};
use crate::timeline::ProcessTimeline;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1100px}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;\
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\
.notes li{margin:.3em 0}svg{display:block;margin:1em 0}";

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |x| format!("{x:.decimals$}"))
}

fn table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// A process's name in legends: its role and address.
fn process_name(line: &ProcessTimeline) -> String {
    format!("{} {}", line.role.as_deref().unwrap_or("?"), line.http)
}

/// One line per process that has any value (a gateway has no tick line).
fn process_series(
    report: &Report,
    value: impl Fn(&crate::timeline::ProcessPoint) -> Option<f64>,
) -> Vec<Series> {
    report
        .timeline
        .processes
        .iter()
        .filter(|line| line.points.iter().any(|p| value(p).is_some()))
        .map(|line| Series {
            name: process_name(line),
            points: line
                .points
                .iter()
                .map(|p| Point {
                    x: p.t_s,
                    y: value(p),
                })
                .collect(),
        })
        .collect()
}

/// One row of the processes table.
fn process_row(p: &ProcessFigures) -> Vec<String> {
    vec![
        p.http.clone(),
        p.role.clone().unwrap_or_else(|| "-".into()),
        format!(
            "{} / {} / {}",
            num(p.tick_p50_ms_upper_bound, 2),
            num(p.tick_p99_ms_upper_bound, 2),
            num(p.tick_max_ms, 1)
        ),
        format!("{} / {}", num(p.ticks_skipped, 0), num(p.degraded_ticks, 0)),
        num(p.cpu_cores, 2),
        num(p.rss_mib, 0),
        num(p.activity.zone_players, 0),
        num(p.activity.connections, 0),
        format!(
            "{} ({})",
            num(p.activity.handoffs, 0),
            num(p.activity.handoffs_to_other_processes, 0)
        ),
        format!(
            "{} / {}",
            num(p.activity.inputs_drained, 0),
            num(p.activity.input_starved_ticks, 0)
        ),
        num(p.traffic.client_bytes_out_per_s, 0),
        num(p.traffic.nats_bytes_sent_per_s, 0),
    ]
}

/// The page.
#[must_use]
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>mmo-loadtest: {} bots</title><style>{STYLE}</style></head><body>\
         <h1>mmo-loadtest: {} bots</h1>",
        report.bots, report.bots
    );
    if let Some(failure) = report.failure() {
        let _ = write!(out, "<p><strong>Failed:</strong> {}</p>", escape(&failure));
    }
    if report.void {
        out.push_str(
            "<p><strong>VOID:</strong> the bots were starved of CPU; latency figures measure \
             the load tester, not the server.</p>",
        );
    }
    out.push_str("<h2>Run</h2>");
    let summary = [
        (
            "bots / connected / CCU peak",
            format!(
                "{} / {} / {}",
                report.bots, report.connected, report.ccu_peak
            ),
        ),
        ("connect failures", report.connect_failures.to_string()),
        (
            "input-to-ack ms p50 / p95 / p99",
            format!(
                "{} / {} / {}",
                num(report.input_to_ack_ms_p50, 1),
                num(report.input_to_ack_ms_p95, 1),
                num(report.input_to_ack_ms_p99, 1)
            ),
        ),
        (
            "input-to-ack samples",
            report.input_to_ack_samples.to_string(),
        ),
        (
            "snapshot delivery ratio",
            num(report.snapshot_delivery_ratio, 4),
        ),
        ("corrections", report.corrections.to_string()),
        (
            "connect ms p50 / p99",
            format!(
                "{} / {}",
                num(report.connect_ms_p50, 1),
                num(report.connect_ms_p99, 1)
            ),
        ),
        (
            "UDP bytes/s per client down p50 / p99",
            format!(
                "{} / {}",
                num(report.udp_bytes_per_s_down_p50, 0),
                num(report.udp_bytes_per_s_down_p99, 0)
            ),
        ),
        (
            "disconnect reasons",
            report
                .disconnect_reasons
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "steady phase s / run s",
            format!(
                "{} / {:.1}",
                num(report.steady_phase_s, 1),
                report.duration_s
            ),
        ),
        (
            "bots' CPU cores (of available) / machine cores",
            format!(
                "{} ({}) / {}",
                num(report.bots_cpu_cores, 2),
                report.bots_cores_available,
                report.machine.cores
            ),
        ),
        ("seed", report.seed.to_string()),
    ];
    let rows: Vec<Vec<String>> = summary
        .into_iter()
        .map(|(k, v)| vec![k.to_owned(), v])
        .collect();
    table(&mut out, &["figure", "value"], &rows);

    out.push_str("<h2>Over time</h2>");
    let ccu = [Series {
        name: "bots connected".into(),
        points: report
            .timeline
            .ccu
            .iter()
            .map(|p| Point {
                x: p.t_s,
                y: Some(p.active as f64),
            })
            .collect(),
    }];
    let charts: [(&str, &str, Vec<Series>); 4] = [
        ("CCU (bots connected)", "bots", ccu.to_vec()),
        (
            "Players per process (zones' players; a gateway's connections)",
            "players",
            process_series(report, |p| p.zone_players.or(p.connections)),
        ),
        (
            "Tick p99 per process and second (about its slowest tick; bucket upper bound)",
            "ms",
            process_series(report, |p| p.tick_p99_ms_upper_bound),
        ),
        (
            "CPU per process",
            "cores",
            process_series(report, |p| p.cpu_cores),
        ),
    ];
    for (title, y_label, series) in &charts {
        out.push_str(&line_chart(&Chart {
            title,
            x_label: "seconds since the first bot's launch",
            y_label,
            series,
        }));
    }
    let cdf = [Series {
        name: "input-to-ack".into(),
        points: report
            .input_to_ack_cdf
            .iter()
            .map(|p| Point {
                x: p.ms,
                y: Some(p.fraction),
            })
            .collect(),
    }];
    out.push_str("<h2>Latency</h2>");
    out.push_str(&line_chart(&Chart {
        title: "Input-to-ack CDF (all bots)",
        x_label: "ms",
        y_label: "fraction at or below",
        series: &cdf,
    }));

    out.push_str("<h2>Processes (steady phase)</h2>");
    // The target's figures in the shape of the others'.
    let target = ProcessFigures {
        http: "target".to_owned(),
        tick_p50_ms_upper_bound: report.server_tick_p50_ms_upper_bound,
        tick_p99_ms_upper_bound: report.server_tick_p99_ms_upper_bound,
        tick_max_ms: report.server_tick_max_ms,
        ticks_skipped: report.server_ticks_skipped,
        degraded_ticks: report.server_replication_degraded_ticks,
        role: report.server_role.clone(),
        activity: report.server_activity,
        traffic: report.server_traffic,
        cpu_cores: report.server_cpu_cores,
        rss_mib: report.server_rss_mib,
        memory_per_player_kib: report.server_memory_per_player_kib,
        notes: Vec::new(),
    };
    let rows: Vec<Vec<String>> = std::iter::once(&target)
        .chain(report.processes.iter())
        .map(process_row)
        .collect();
    table(
        &mut out,
        &[
            "process",
            "role",
            "tick ms p50 / p99 / max",
            "ticks skipped / degraded",
            "CPU cores",
            "RSS MiB",
            "players",
            "connections",
            "handoffs (to other processes)",
            "inputs drained / starved ticks",
            "client payload B/s",
            "NATS out B/s",
        ],
        &rows,
    );

    out.push_str("<h2>Per player, by role</h2>");
    let rows: Vec<Vec<String>> = report
        .roles
        .iter()
        .map(|r| {
            vec![
                r.role.clone(),
                r.processes.to_string(),
                num(r.cpu_millicores_per_player, 2),
                num(r.memory_kib_per_player, 0),
                num(r.client_payload_bytes_per_s_per_player, 0),
                num(r.nats_bytes_per_s_per_player, 0),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "role",
            "processes",
            "CPU millicores",
            "memory KiB",
            "client payload B/s",
            "NATS B/s",
        ],
        &rows,
    );
    if let Some(plan) = &report.capacity {
        let _ = write!(
            out,
            "<h2>Plan for {} concurrent players</h2><p>Cores sized for {:.0} % CPU; memory \
             scaled from the run (fixed overhead included); egress at the planned CCU all \
             month. Prices are inputs, not measurements.</p>",
            plan.ccu,
            plan.cpu_target_share * 100.0
        );
        let mut rows: Vec<Vec<String>> = plan
            .roles
            .iter()
            .map(|r| {
                vec![
                    r.role.clone(),
                    format!("{:.1}", r.cores),
                    format!("{:.1}", r.memory_gib),
                ]
            })
            .collect();
        rows.push(vec![
            "client egress GiB/month".into(),
            format!("{:.0}", plan.egress_gib_per_month),
            String::new(),
        ]);
        rows.push(vec![
            "NATS GiB/month (in cluster)".into(),
            format!("{:.0}", plan.nats_gib_per_month),
            String::new(),
        ]);
        table(&mut out, &["role", "cores", "memory GiB"], &rows);
        if let (Some(c), Some(p)) = (&plan.cost, &plan.prices) {
            let rows = vec![
                vec![
                    format!("compute at ${}/core-month", p.usd_per_core_month),
                    format!("{:.0}", c.compute_usd),
                ],
                vec![
                    format!("memory at ${}/GiB-month", p.usd_per_gib_memory_month),
                    format!("{:.0}", c.memory_usd),
                ],
                vec![
                    format!("egress at ${}/GiB", p.usd_per_gib_egress),
                    format!("{:.0}", c.egress_usd),
                ],
                vec!["total".into(), format!("{:.0}", c.total_usd)],
                vec![
                    "per concurrent player".into(),
                    format!("{:.3}", c.usd_per_concurrent_player),
                ],
                vec![
                    "per monthly player".into(),
                    num(c.usd_per_monthly_player, 4),
                ],
            ];
            table(&mut out, &["monthly cost", "USD"], &rows);
        }
        for note in &plan.notes {
            let _ = write!(out, "<p>{}</p>", escape(note));
        }
    }
    out.push_str("<h2>Notes</h2><ul class=\"notes\">");
    for note in &report.notes {
        let _ = write!(out, "<li>{}</li>", escape(note));
    }
    for line in &report.timeline.processes {
        if line.failed_scrapes > 0 {
            let _ = write!(
                out,
                "<li>{}: {} scrapes failed or timed out (gaps in its lines)</li>",
                escape(&line.http),
                line.failed_scrapes
            );
        }
    }
    out.push_str("</ul></body></html>\n");
    out
}
