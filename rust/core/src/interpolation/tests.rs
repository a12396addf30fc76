//! Scenario tests of remote-entity interpolation: driven frame by frame with explicit
//! arrival times (deterministic pseudo-random jitter), no clocks.

use glam::Vec3;

use super::*;

const FRAME_US: u64 = 16_667;

fn assert_near(a: Vec3, b: Vec3) {
    assert!(a.distance(b) < 1e-5, "{a} vs {b}");
}

fn buffer() -> InterpolationBuffer {
    InterpolationBuffer::new(InterpolationConfig::default()).unwrap()
}

fn at(x: f32, y: f32, yaw_rad: f32) -> InterpSample {
    InterpSample {
        position_m: Vec3::new(x, y, 0.0),
        yaw_rad,
    }
}

/// xorshift64*: deterministic jitter without a dependency.
struct Rng(u64);
impl Rng {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound.max(1)
    }
}

/// One packet: when the server stamped it, when it arrives, what it carries.
#[derive(Clone, Copy)]
struct Arrival {
    server_us: u64,
    arrival_us: u64,
    sample: InterpSample,
}

/// One rendered frame.
#[derive(Clone, Copy, Debug)]
struct Frame {
    now_us: u64,
    out: InterpOutput,
    render_us: f64,
    target_delay_us: f64,
    effective_delay_us: f64,
}

/// Delivers `arrivals` (any order; sorted by arrival here) and renders a frame every
/// `FRAME_US` from `start_us` to `end_us`.
fn run(
    buffer: &mut InterpolationBuffer,
    mut arrivals: Vec<Arrival>,
    start_us: u64,
    end_us: u64,
) -> Vec<Frame> {
    arrivals.sort_by_key(|a| a.arrival_us);
    let mut next = 0;
    let mut frames = Vec::new();
    let mut now_us = start_us;
    while now_us < end_us {
        while let Some(a) = arrivals.get(next).filter(|a| a.arrival_us <= now_us) {
            buffer.push(a.server_us, a.arrival_us, a.sample);
            next += 1;
        }
        let out = buffer.sample(now_us);
        // Frames before the render clock starts (fewer than two samples) are not recorded.
        if let (Some(out), Some(render_us), Some(effective_delay_us)) =
            (out, buffer.render_time_us(), buffer.effective_delay_us())
        {
            frames.push(Frame {
                now_us,
                out,
                render_us,
                target_delay_us: buffer.target_delay_us(),
                effective_delay_us,
            });
        }
        now_us += FRAME_US;
    }
    frames
}

/// Samples of an entity moving at `velocity` m/s, sent at `hz` from server time 0 for
/// `duration_us`, arriving after `latency_us` plus uniform jitter in `[0, jitter_us]`.
fn stream(
    velocity: Vec3,
    hz: u64,
    duration_us: u64,
    latency_us: u64,
    jitter_us: u64,
    seed: u64,
) -> Vec<Arrival> {
    let mut rng = Rng(seed | 1);
    (0..)
        .map(|i| i * 1_000_000 / hz)
        .take_while(|&t| t < duration_us)
        .map(|server_us| Arrival {
            server_us,
            arrival_us: server_us + latency_us + rng.next_below(jitter_us + 1),
            sample: InterpSample {
                position_m: velocity * (server_us as f32 * 1e-6),
                yaw_rad: 0.0,
            },
        })
        .collect()
}

fn assert_monotonic(frames: &[Frame]) {
    for w in frames.windows(2) {
        assert!(
            w[1].render_us >= w[0].render_us,
            "render time went back at {} us: {} -> {}",
            w[1].now_us,
            w[0].render_us,
            w[1].render_us
        );
    }
}

#[test]
fn interpolates_exactly_between_samples() {
    let mut b = buffer();
    assert_eq!(b.sample_at(0.0), None);
    assert_eq!(b.push(0, 50_000, at(0.0, 0.0, 0.0)), PushOutcome::Accepted);
    assert_eq!(
        b.push(100_000, 150_000, at(1.0, -0.4, 1.0)),
        PushOutcome::Accepted
    );
    let mid = b.sample_at(50_000.0).unwrap();
    assert_near(mid.position_m, Vec3::new(0.5, -0.2, 0.0));
    assert!((mid.yaw_rad - 0.5).abs() < 1e-6);
    assert!(!mid.extrapolating);
    let quarter = b.sample_at(25_000.0).unwrap();
    assert_near(quarter.position_m, Vec3::new(0.25, -0.1, 0.0));
    assert_eq!(b.sample_at(0.0).unwrap().position_m, Vec3::ZERO);
    assert_eq!(
        b.sample_at(100_000.0).unwrap().position_m,
        Vec3::new(1.0, -0.4, 0.0)
    );
    // Before the first sample: hold it.
    assert_eq!(b.sample_at(-1e6).unwrap().position_m, Vec3::ZERO);
}

#[test]
fn yaw_interpolates_along_the_short_arc() {
    let mut b = buffer();
    b.push(0, 0, at(0.0, 0.0, 6.0));
    b.push(100_000, 100_000, at(0.0, 0.0, 0.2));
    let yaw = b.sample_at(50_000.0).unwrap().yaw_rad;
    let expected = wrap_angle_rad(6.0 + (0.2 + std::f32::consts::TAU - 6.0) / 2.0);
    assert!((yaw - expected).abs() < 1e-5, "{yaw} vs {expected}");
}

#[test]
fn steady_stream_renders_on_the_track_one_interval_behind() {
    let velocity = Vec3::new(3.0, 1.0, 0.0);
    let mut b = buffer();
    let frames = run(
        &mut b,
        stream(velocity, 30, 4_000_000, 50_000, 0, 1),
        50_000,
        3_900_000,
    );
    assert_monotonic(&frames);
    for f in frames.iter().filter(|f| f.now_us > 500_000) {
        assert!(!f.out.extrapolating, "extrapolating at {}", f.now_us);
        let expected = velocity * (f.render_us * 1e-6) as f32;
        assert!(
            f.out.position_m.distance(expected) < 1e-3,
            "off the track at {}",
            f.now_us
        );
        // One send interval (33.3 ms) behind the server, as the delay formula says.
        assert!(
            (f.effective_delay_us - 33_333.0).abs() < 1_000.0,
            "delay {} at {}",
            f.effective_delay_us,
            f.now_us
        );
        let server_now = f.now_us as f64 - 50_000.0;
        assert!((server_now - f.render_us - f.effective_delay_us).abs() < 1.0);
    }
}

#[test]
fn delay_grows_with_jitter_and_shrinks_back() {
    let velocity = Vec3::new(4.0, 0.0, 0.0);
    // Clean for 3 s, 0..60 ms of jitter until 8 s, clean again until 20 s.
    let mut arrivals = stream(velocity, 30, 20_000_000, 50_000, 0, 1);
    let mut rng = Rng(77);
    for a in &mut arrivals {
        if (3_000_000..8_000_000).contains(&a.server_us) {
            a.arrival_us += rng.next_below(60_001);
        }
    }
    let mut b = buffer();
    let frames = run(&mut b, arrivals, 50_000, 20_000_000);
    assert_monotonic(&frames);
    let at_time = |t_us: u64| {
        *frames
            .iter()
            .find(|f| f.now_us >= t_us)
            .expect("run covers the time")
    };
    let calm = at_time(3_000_000);
    let jittery = at_time(8_000_000);
    let recovered = at_time(19_900_000);
    assert!(
        calm.target_delay_us < 40_000.0,
        "calm {}",
        calm.target_delay_us
    );
    assert!(
        jittery.target_delay_us > calm.target_delay_us + 40_000.0,
        "jitter should raise the delay: {} vs {}",
        jittery.target_delay_us,
        calm.target_delay_us
    );
    assert!(
        jittery.effective_delay_us > calm.effective_delay_us + 30_000.0,
        "the render clock follows: {} vs {}",
        jittery.effective_delay_us,
        calm.effective_delay_us
    );
    assert!(
        recovered.target_delay_us < calm.target_delay_us + 5_000.0,
        "the delay shrinks back: {}",
        recovered.target_delay_us
    );
    assert!(
        (recovered.effective_delay_us - recovered.target_delay_us).abs() < 2_000.0,
        "the render clock converged: {} vs {}",
        recovered.effective_delay_us,
        recovered.target_delay_us
    );
    // Once adapted, the jittery stream rarely starves the renderer.
    let late_jitter: Vec<_> = frames
        .iter()
        .filter(|f| (6_000_000..8_000_000).contains(&f.now_us))
        .collect();
    let starved = late_jitter.iter().filter(|f| f.out.extrapolating).count();
    assert!(
        starved * 20 < late_jitter.len(),
        "{starved} of {} frames extrapolated",
        late_jitter.len()
    );
}

#[test]
fn extrapolation_is_bounded_then_holds() {
    let velocity = Vec3::new(5.0, 0.0, 0.0);
    let mut b = buffer();
    // Samples stop after 1 s; keep rendering for another second.
    let arrivals = stream(velocity, 30, 1_000_000, 50_000, 0, 1);
    let newest = arrivals.last().unwrap().sample.position_m;
    let frames = run(&mut b, arrivals, 50_000, 2_100_000);
    assert_monotonic(&frames);
    let max_x = newest.x + 5.0 * 0.25;
    for f in &frames {
        assert!(
            f.out.position_m.x <= max_x + 1e-3,
            "x {} at {}",
            f.out.position_m.x,
            f.now_us
        );
    }
    let tail: Vec<_> = frames.iter().filter(|f| f.now_us > 1_700_000).collect();
    assert!(tail.iter().all(|f| f.out.extrapolating));
    assert!(
        tail.iter()
            .all(|f| (f.out.position_m.x - max_x).abs() < 1e-3),
        "holds"
    );
    // Extrapolation actually moved it past the newest sample on the way.
    assert!(frames.iter().any(|f| f.out.extrapolating
        && f.out.position_m.x > newest.x + 0.1
        && f.out.position_m.x < max_x - 0.1));
}

#[test]
fn teleport_snaps_instead_of_sweeping() {
    let mut b = buffer();
    b.push(0, 0, at(0.0, 0.0, 0.0));
    b.push(100_000, 100_000, at(0.5, 0.0, 0.0));
    b.push(200_000, 200_000, at(100.0, 0.0, 0.0)); // 99.5 m: beyond teleport_distance_m
    b.push(300_000, 300_000, at(100.5, 0.0, 0.0));
    assert_eq!(b.sample_at(150_000.0).unwrap().position_m.x, 0.5, "holds");
    assert_eq!(b.sample_at(199_999.0).unwrap().position_m.x, 0.5);
    assert_eq!(
        b.sample_at(200_000.0).unwrap().position_m.x,
        100.0,
        "then snaps"
    );
    assert_eq!(
        b.sample_at(250_000.0).unwrap().position_m.x,
        100.25,
        "then interpolates"
    );

    // Short hop, implausible speed: 5 m in 33 ms is 150 m/s.
    let mut fast = buffer();
    fast.push(0, 0, at(0.0, 0.0, 0.0));
    fast.push(33_333, 33_333, at(5.0, 0.0, 0.0));
    assert_eq!(fast.sample_at(20_000.0).unwrap().position_m.x, 0.0);
    // And no velocity is inferred across the teleport: past the newest sample it holds.
    let past = fast.sample_at(100_000.0).unwrap();
    assert!(past.extrapolating);
    assert_eq!(past.position_m.x, 5.0);
}

#[test]
fn out_of_order_duplicates_and_stale_samples_are_handled() {
    let mut b = buffer();
    assert_eq!(b.push(0, 50_000, at(0.0, 0.0, 0.0)), PushOutcome::Accepted);
    assert_eq!(
        b.push(200_000, 250_000, at(2.0, 0.0, 0.0)),
        PushOutcome::Accepted
    );
    // Arrives late but is still ahead of anything rendered: slotted in between.
    assert_eq!(
        b.push(100_000, 260_000, at(1.5, 0.0, 0.0)),
        PushOutcome::Accepted
    );
    assert_eq!(b.sample_at(150_000.0).unwrap().position_m.x, 1.75);
    assert_eq!(
        b.push(100_000, 270_000, at(9.0, 0.0, 0.0)),
        PushOutcome::Duplicate
    );
    assert_eq!(
        b.push(200_000, 270_000, at(9.0, 0.0, 0.0)),
        PushOutcome::Duplicate
    );
    assert_eq!(b.len(), 3);
    assert_eq!(
        b.sample_at(150_000.0).unwrap().position_m.x,
        1.75,
        "unchanged"
    );

    // Render past 200 ms of server time, then a sample from before that is stale.
    let mut now = 270_000;
    while b.render_time_us().is_none_or(|t| t < 200_000.0) {
        b.sample(now);
        now += FRAME_US;
    }
    assert_eq!(b.push(150_000, now, at(9.0, 0.0, 0.0)), PushOutcome::Stale);
    assert_eq!(b.push(0, now, at(9.0, 0.0, 0.0)), PushOutcome::Stale);
    assert!(b.sample(now).unwrap().position_m.x >= 2.0 - 1e-6);

    assert_eq!(
        b.push(300_000, now, at(f32::NAN, 0.0, 0.0)),
        PushOutcome::Invalid
    );
    assert_eq!(
        b.push(300_000, now, at(0.0, 0.0, f32::INFINITY)),
        PushOutcome::Invalid
    );
}

#[test]
fn sparse_2hz_updates_still_interpolate_smoothly() {
    // A distant entity zigzagging at 2 Hz: 2 m forward and 1 m sideways per sample.
    let mut rng = Rng(5);
    let arrivals: Vec<Arrival> = (0..40u64)
        .map(|i| {
            let server_us = i * 500_000;
            Arrival {
                server_us,
                arrival_us: server_us + 80_000 + rng.next_below(20_001),
                sample: at(2.0 * i as f32, (i % 2) as f32, 0.0),
            }
        })
        .collect();
    let mut b = buffer();
    let frames = run(&mut b, arrivals, 80_000, 19_500_000);
    assert_monotonic(&frames);
    assert!(
        (b.interval_us() - 500_000.0).abs() < 1.0,
        "{}",
        b.interval_us()
    );
    let max_speed_mps = (4.0f32 + 1.0).sqrt() / 0.5;
    let max_step_m = max_speed_mps * (FRAME_US as f32 * 1e-6) * 1.1 + 1e-4;
    let settled: Vec<_> = frames.iter().filter(|f| f.now_us > 2_000_000).collect();
    for w in settled.windows(2) {
        let step = w[1].out.position_m.distance(w[0].out.position_m);
        assert!(!w[1].out.extrapolating, "starved at {}", w[1].now_us);
        assert!(step <= max_step_m, "jump of {step} m at {}", w[1].now_us);
        assert!(step > 0.0, "stalled at {}", w[1].now_us);
        assert!(
            w[1].out.position_m.x > w[0].out.position_m.x,
            "forward motion"
        );
    }
}

#[test]
fn send_rate_drop_from_30hz_to_2hz_adapts() {
    let velocity = Vec3::new(3.0, 0.0, 0.0);
    let mut arrivals = stream(velocity, 30, 3_000_000, 50_000, 0, 1);
    arrivals.extend((6..40u64).map(|i| i * 500_000).map(|server_us| Arrival {
        server_us,
        arrival_us: server_us + 50_000,
        sample: InterpSample {
            position_m: velocity * (server_us as f32 * 1e-6),
            yaw_rad: 0.0,
        },
    }));
    let mut b = buffer();
    let frames = run(&mut b, arrivals, 50_000, 19_000_000);
    assert_monotonic(&frames);
    assert!(b.interval_us() > 450_000.0, "{}", b.interval_us());
    let late: Vec<_> = frames.iter().filter(|f| f.now_us > 12_000_000).collect();
    assert!(late.iter().all(|f| !f.out.extrapolating), "adapted to 2 Hz");
    for f in late {
        let expected = velocity * (f.render_us * 1e-6) as f32;
        assert!(f.out.position_m.distance(expected) < 1e-3);
    }
}

#[test]
fn server_clock_change_resyncs_after_repeated_outliers() {
    let mut b = buffer();
    for a in stream(Vec3::X, 30, 1_000_000, 50_000, 0, 1) {
        b.push(a.server_us, a.arrival_us, a.sample);
    }
    b.sample(1_050_000);
    let jump_us = 3_600_000_000;
    let now = 1_100_000;
    assert_eq!(
        b.push(jump_us, now, at(7.0, 0.0, 0.0)),
        PushOutcome::Outlier
    );
    assert_eq!(
        b.push(jump_us + 33_333, now, at(7.0, 0.0, 0.0)),
        PushOutcome::Outlier
    );
    assert_eq!(
        b.push(jump_us + 66_666, now, at(7.0, 0.0, 0.0)),
        PushOutcome::Resynced
    );
    assert_eq!(b.len(), 1);
    assert_eq!(b.sample(now + FRAME_US).unwrap().position_m.x, 7.0);
    // A single wild timestamp among good ones is just ignored.
    let mut c = buffer();
    c.push(0, 50_000, at(0.0, 0.0, 0.0));
    assert_eq!(
        c.push(u64::MAX, 60_000, at(1.0, 0.0, 0.0)),
        PushOutcome::Outlier
    );
    assert_eq!(
        c.push(33_333, 83_333, at(1.0, 0.0, 0.0)),
        PushOutcome::Accepted
    );
}

#[test]
fn buffer_is_bounded() {
    let mut b = buffer();
    for i in 0..1000u64 {
        b.push(i * 33_333, i * 33_333, at(i as f32 * 0.1, 0.0, 0.0));
    }
    assert_eq!(b.len(), InterpolationConfig::default().capacity);
    assert_eq!(b.newest_server_time_us(), Some(999 * 33_333));
    b.clear();
    assert!(b.is_empty());
    assert_eq!(b.sample(0), None);
}

#[test]
fn hostile_timestamps_never_panic() {
    let mut b = buffer();
    for (server, arrival) in [
        (u64::MAX, 0),
        (0, u64::MAX),
        (u64::MAX, u64::MAX),
        (u64::MAX - 1, 5),
        (1, 1),
    ] {
        let _ = b.push(server, arrival, at(1.0, 2.0, 3.0));
        let _ = b.sample(arrival);
        let _ = b.sample(0);
        let _ = b.sample(u64::MAX);
    }
}
