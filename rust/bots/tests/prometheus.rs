//! Unit tests of the Prometheus text parser (`mmo_loadtest::prometheus`).

use mmo_loadtest::prometheus::{Histogram, Scrape};

const TEXT: &str = r#"# HELP mmo_tick_duration_seconds Wall time of one zone tick
# TYPE mmo_tick_duration_seconds histogram
mmo_tick_duration_seconds_bucket{zone="1",le="0.001"} 10
mmo_tick_duration_seconds_bucket{zone="1",le="0.005"} 18
mmo_tick_duration_seconds_bucket{zone="1",le="+Inf"} 20
mmo_tick_duration_seconds_bucket{zone="2",le="0.001"} 0
mmo_tick_duration_seconds_bucket{zone="2",le="0.005"} 10
mmo_tick_duration_seconds_bucket{zone="2",le="+Inf"} 20
mmo_tick_duration_seconds_sum{zone="1"} 0.05
mmo_tick_duration_seconds_count{zone="1"} 20

mmo_tick_duration_max_seconds{zone="1"} 0.012
mmo_tick_duration_max_seconds{zone="2"} 0.02
process_cpu_seconds_total 12.5
process_resident_memory_bytes 1.048576e8 1700000000000
weird_labels{path="a \"quoted\" \\ back\nslash", empty=""} -3
"#;

#[test]
fn parses_names_labels_values_and_skips_comments() {
    let scrape = Scrape::parse(TEXT).unwrap();
    assert_eq!(scrape.samples.len(), 13);
    let first = &scrape.samples[0];
    assert_eq!(first.name, "mmo_tick_duration_seconds_bucket");
    assert_eq!(first.labels["zone"], "1");
    assert_eq!(first.labels["le"], "0.001");
    assert_eq!(first.value, 10.0);
    assert_eq!(scrape.sum("process_cpu_seconds_total"), Some(12.5));
    assert_eq!(
        scrape.sum("process_resident_memory_bytes"),
        Some(104_857_600.0)
    );
    let weird = scrape.samples.last().unwrap();
    assert_eq!(weird.labels["path"], "a \"quoted\" \\ back\nslash");
    assert_eq!(weird.labels["empty"], "");
    assert_eq!(weird.value, -3.0);
}

#[test]
fn missing_metrics_are_none_not_zero() {
    let scrape = Scrape::parse(TEXT).unwrap();
    assert_eq!(scrape.sum("nope_total"), None);
    assert_eq!(scrape.max("nope"), None);
    assert!(scrape.histogram("nope").is_none());
    assert_eq!(scrape.max("mmo_tick_duration_max_seconds"), Some(0.02));
}

#[test]
fn histogram_buckets_are_summed_over_zones_and_sorted() {
    let h = Scrape::parse(TEXT)
        .unwrap()
        .histogram("mmo_tick_duration_seconds")
        .unwrap();
    assert_eq!(
        h.buckets,
        vec![(0.001, 10.0), (0.005, 28.0), (f64::INFINITY, 40.0)]
    );
    assert_eq!(h.count(), 40.0);
    // 50% of 40 = 20 observations: reached in the 0.005 bucket.
    assert_eq!(h.quantile_upper_bound(0.5), Some(0.005));
    assert_eq!(h.quantile_upper_bound(0.25), Some(0.001));
    // 99% lies past the last finite bound.
    assert_eq!(h.quantile_upper_bound(0.99), Some(f64::INFINITY));
}

#[test]
fn delta_between_scrapes_counts_only_new_observations() {
    let before = Histogram {
        buckets: vec![(0.001, 5.0), (0.005, 5.0), (f64::INFINITY, 5.0)],
    };
    let after = Histogram {
        buckets: vec![(0.001, 6.0), (0.005, 105.0), (f64::INFINITY, 105.0)],
    };
    let d = after.delta(&before);
    assert_eq!(d.count(), 100.0);
    assert_eq!(d.quantile_upper_bound(0.5), Some(0.005));
    assert_eq!(d.quantile_upper_bound(0.01), Some(0.001));
    assert_eq!(before.delta(&before).quantile_upper_bound(0.5), None);
    // A restart (counts went down) never gives negative counts.
    assert_eq!(before.delta(&after).count(), 0.0);
}

#[test]
fn bad_lines_are_errors_naming_the_line() {
    for (text, needle) in [
        ("ok 1\nno_value\n", "no value"),
        ("x{a=\"1\" 2\n", "expected ','"),
        ("x{a=1} 2\n", "not quoted"),
        ("x{a=\"1} 2\n", "unterminated"),
        ("x 1 2 3\n", "unexpected text"),
        ("x abc\n", "bad value"),
        ("x 1 later\n", "bad timestamp"),
        ("bad-name 1\n", "bad metric name"),
    ] {
        let err = Scrape::parse(text).unwrap_err();
        assert!(err.message.contains(needle), "{text:?}: {err}");
    }
    assert_eq!(Scrape::parse("ok 1\nno_value\n").unwrap_err().line, 2);
    assert_eq!(
        Scrape::parse("").unwrap(),
        Scrape {
            samples: Vec::new()
        }
    );
}

#[test]
fn sums_by_one_label_and_reads_an_info_gauge() {
    let scrape = Scrape::parse(
        "mmo_relay_events_total{event=\"handed_out\"} 3\n\
         mmo_relay_events_total{event=\"handed_in\"} 5\n\
         mmo_relay_events_total{event=\"handed_out\",zone=\"2\"} 4\n\
         mmo_process_role{role=\"all\"} 0\n\
         mmo_process_role{role=\"zone\"} 1\n",
    )
    .unwrap();
    assert_eq!(
        scrape.sum_where("mmo_relay_events_total", "event", "handed_out"),
        Some(7.0)
    );
    assert_eq!(
        scrape.sum_where("mmo_relay_events_total", "event", "moved"),
        None
    );
    assert_eq!(
        scrape.label_of_one("mmo_process_role", "role"),
        Some("zone")
    );
    assert_eq!(scrape.label_of_one("mmo_missing", "role"), None);
}
