//! Behavioural tests of the link conditioner. Seeded, so every statistical check is
//! deterministic; tolerances are still set wide enough to hold for any reasonable seed.

use super::*;

/// Sends `count` packets, one every `spacing_us`, each carrying its index, and drains the
/// link completely. Returns `(delivery time, index)` in delivery order.
fn run(config: LinkConfig, seed: u64, count: u32, spacing_us: u64) -> (Vec<(u64, u32)>, LinkStats) {
    let mut link = LinkConditioner::new(config, seed).expect("test configs are valid");
    let mut out = Vec::new();
    let drain = |link: &mut LinkConditioner, now_us: u64, out: &mut Vec<(u64, u32)>| {
        while let Some(p) = link.poll_deliver(now_us) {
            let index = u32::from_le_bytes(p[..4].try_into().expect("4-byte payloads"));
            out.push((now_us, index));
        }
    };
    for i in 0..count {
        let now_us = u64::from(i) * spacing_us;
        // Deliver everything due before this send, at its exact due time.
        while let Some(at_us) = link.next_delivery_us().filter(|&t| t <= now_us) {
            drain(&mut link, at_us, &mut out);
        }
        link.send(now_us, i.to_le_bytes().to_vec());
    }
    while let Some(at_us) = link.next_delivery_us() {
        drain(&mut link, at_us, &mut out);
    }
    (out, link.stats())
}

#[test]
fn perfect_link_is_lossless_and_in_order() {
    let (out, stats) = run(LinkConfig::perfect(), 1, 1000, 1000);
    assert_eq!(out.len(), 1000);
    for (i, &(at_us, index)) in out.iter().enumerate() {
        assert_eq!(index as usize, i);
        assert_eq!(
            at_us,
            u64::from(index) * 1000,
            "zero latency means same-time delivery"
        );
    }
    assert_eq!(stats.sent, 1000);
    assert_eq!(stats.delivered, 1000);
    assert_eq!(
        stats.lost + stats.dropped_queue + stats.duplicated + stats.reordered,
        0
    );
}

#[test]
fn same_seed_same_deliveries_different_seed_differs() {
    let config = LinkConfig::bad_mobile();
    let a = run(config, 99, 2000, 16_666);
    let b = run(config, 99, 2000, 16_666);
    assert_eq!(a, b);
    let c = run(config, 100, 2000, 16_666);
    assert_ne!(a.0, c.0);
}

#[test]
fn latency_never_below_base() {
    let config = LinkConfig {
        latency_us: 50_000,
        jitter_us: 30_000,
        reorder_probability: 0.05,
        reorder_extra_us: 20_000,
        duplicate_probability: 0.05,
        ..LinkConfig::perfect()
    };
    let (out, _) = run(config, 3, 5000, 5_000);
    for &(at_us, index) in &out {
        let sent_us = u64::from(index) * 5_000;
        assert!(
            at_us >= sent_us + 50_000,
            "packet {index} after {} us",
            at_us - sent_us
        );
        assert!(at_us <= sent_us + 50_000 + 30_000 + 20_000);
    }
}

#[test]
fn loss_rate_is_close_to_configured() {
    let config = LinkConfig {
        loss_probability: 0.1,
        ..LinkConfig::perfect()
    };
    let n = 20_000;
    let (out, stats) = run(config, 5, n, 1000);
    let rate = stats.lost as f64 / f64::from(n);
    // Binomial sd is about 0.0021 here; 0.01 is almost 5 sd.
    assert!((rate - 0.1).abs() < 0.01, "loss rate {rate}");
    assert_eq!(stats.delivered as usize, out.len());
    assert_eq!(stats.delivered + stats.lost, u64::from(n));
}

#[test]
fn duplication_and_reordering_are_observed() {
    let config = LinkConfig {
        duplicate_probability: 0.05,
        reorder_probability: 0.05,
        reorder_extra_us: 50_000,
        latency_us: 10_000,
        ..LinkConfig::perfect()
    };
    let n = 4000;
    let (out, stats) = run(config, 11, n, 10_000);
    let dup_rate = stats.duplicated as f64 / f64::from(n);
    assert!(
        (dup_rate - 0.05).abs() < 0.015,
        "duplication rate {dup_rate}"
    );
    assert_eq!(out.len() as u64, u64::from(n) + stats.duplicated);
    // A packet held back by 50 ms at 10 ms spacing lands after the next few packets.
    assert!(stats.reordered > 100, "reordered {}", stats.reordered);
    let inversions = out.windows(2).filter(|w| w[1].1 < w[0].1).count();
    assert!(inversions > 100, "inversions {inversions}");
}

#[test]
fn jitter_alone_reorders_when_larger_than_spacing() {
    let config = LinkConfig {
        jitter_us: 40_000,
        ..LinkConfig::perfect()
    };
    let (_, stats) = run(config, 8, 1000, 10_000);
    assert!(stats.reordered > 50, "reordered {}", stats.reordered);
    let calm = LinkConfig {
        jitter_us: 5_000,
        ..LinkConfig::perfect()
    };
    let (_, calm_stats) = run(calm, 8, 1000, 10_000);
    assert_eq!(
        calm_stats.reordered, 0,
        "jitter below spacing cannot reorder"
    );
}

/// Longest run of consecutive lost indices.
fn longest_loss_run(out: &[(u64, u32)], n: u32) -> usize {
    let mut received = vec![false; n as usize];
    for &(_, i) in out {
        received[i as usize] = true;
    }
    let (mut best, mut run) = (0, 0);
    for r in received {
        run = if r { 0 } else { run + 1 };
        best = best.max(run);
    }
    best
}

#[test]
fn burst_loss_produces_runs() {
    let n = 20_000;
    let bursty = LinkConfig {
        burst: Some(BurstLoss {
            p_enter_bad: 0.01,
            p_exit_bad: 0.1,
            loss_in_bad: 1.0,
        }),
        ..LinkConfig::perfect()
    };
    let (out, stats) = run(bursty, 21, n, 1000);
    assert_eq!(stats.lost, stats.lost_in_burst);
    // Stationary Bad share is 0.01 / (0.01 + 0.1) = 9 %.
    let rate = stats.lost as f64 / f64::from(n);
    assert!((0.06..0.12).contains(&rate), "burst loss rate {rate}");
    let bursty_run = longest_loss_run(&out, n);

    // Independent loss at the same average rate almost never produces such runs.
    let independent = LinkConfig {
        loss_probability: rate,
        ..LinkConfig::perfect()
    };
    let (out_i, _) = run(independent, 21, n, 1000);
    let independent_run = longest_loss_run(&out_i, n);
    assert!(bursty_run >= 20, "longest burst run {bursty_run}");
    assert!(
        independent_run < 10,
        "longest independent run {independent_run}"
    );
}

#[test]
fn bandwidth_cap_queues_and_drops() {
    // 10 kB/s, 1000-byte packets take 100 ms each; the queue holds 3 packets.
    let config = LinkConfig {
        bandwidth_bytes_per_s: Some(10_000),
        max_queue_bytes: 3000,
        ..LinkConfig::perfect()
    };
    let mut link = LinkConditioner::new(config, 0).unwrap();
    for _ in 0..5 {
        link.send(0, vec![0; 1000]);
    }
    let stats = link.stats();
    assert_eq!(
        stats.dropped_queue, 2,
        "two packets overflow the 3000-byte queue"
    );
    let mut times = Vec::new();
    while let Some(at_us) = link.next_delivery_us() {
        link.poll_deliver(at_us).unwrap();
        times.push(at_us);
    }
    assert_eq!(times, vec![100_000, 200_000, 300_000]);
    // Once the queue drained, sending works again.
    link.send(400_000, vec![0; 1000]);
    assert_eq!(link.next_delivery_us(), Some(500_000));
}

#[test]
fn in_flight_bound_holds() {
    let config = LinkConfig {
        latency_us: 1_000_000,
        max_in_flight_packets: 10,
        ..LinkConfig::perfect()
    };
    let mut link = LinkConditioner::new(config, 0).unwrap();
    for i in 0..100u64 {
        link.send(i, vec![0; 8]);
    }
    assert_eq!(link.in_flight(), 10);
    assert_eq!(link.stats().dropped_queue, 90);
    assert_eq!(
        link.poll_deliver(999_999),
        None,
        "nothing before the latency"
    );
}

#[test]
fn invalid_config_is_refused() {
    let config = LinkConfig {
        loss_probability: -0.1,
        ..LinkConfig::perfect()
    };
    assert_eq!(
        LinkConditioner::new(config, 0).unwrap_err().field,
        "loss_probability"
    );
}
