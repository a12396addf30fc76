//! Criterion microbenchmarks for the target "validation adds <= 1 microsecond per input on
//! the server", and for the gameplay request checks:
//!
//! - `input_validation/validate_input`: `mmo_core::validation::validate_input` on one input;
//! - `input_validation/guard_validate_admit_batch3`: the server's per-input validation
//!   path for one datagram of 3 redundant inputs in steady state (1 new, 2 copies already
//!   seen): `SequenceGuard::check` on each, `validate_input` on the new one,
//!   `InputRateLimiter::admit`, as `ServerConnection::handle_datagram` composes them;
//! - `input_validation/decode_batch3`: header and input payload decode of that datagram;
//! - `input_validation/handle_datagram_batch3`: `ServerConnection::handle_datagram` of a
//!   realistic datagram (3 redundant inputs and an ack, built with the client's encoder)
//!   on a logged-in connection, one tick apart: decode, bookkeeping, validation, queueing.
//!   The queue is drained between chunks of 16 datagrams, outside the timed region.
//!
//!   The three `_batch3` benchmarks count 3 elements per iteration: criterion's throughput
//!   (elements/s) gives the per-input cost; divide the time by 3 for time per input.
//! - `gameplay_checks/strike_check_and_start`: `AbilityState::check_and_start` for the
//!   warrior's strike on an entity 2 m away with full pools (fresh state per iteration);
//! - `gameplay_checks/strike_refused_global_cooldown`: the same request refused by the
//!   global cooldown;
//! - `gameplay_checks/inventory_swap`: `Inventory::swap(0, 23)` on the starting kit
//!   (directly, not through the zone: the zone needs a logged-in connection per player);
//! - `gameplay_checks/inventory_swap_view_encode`: the swap plus what the zone sends back
//!   for it (`InventoryView::of` and the control frame of the new inventory).
//!
//! `cargo bench -p mmo-bench --bench validation`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use glam::Vec3;
use mmo_core::codec::input_codec::{InputBatch, decode_input_payload, encode_input_datagram};
use mmo_core::codec::packet::{AckFields, PacketHeader};
use mmo_core::control::{self, ClientControl, ServerControl};
use mmo_core::entity::{CharacterState, EntityId};
use mmo_core::gameplay::abilities::{AbilityState, Target};
use mmo_core::gameplay::character::CharacterGameplay;
use mmo_core::gameplay::content::{ClassId, Content, RaceId};
use mmo_core::gameplay::messages::InventoryView;
use mmo_core::gameplay::resources::ResourcePools;
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::session::server::{ServerConnection, ServerConnectionConfig};
use mmo_core::time::{Tick, TickRate};
use mmo_core::validation::{
    InputRateConfig, InputRateLimiter, SequenceGuard, SequenceGuardConfig, SequenceVerdict,
    validate_input,
};

/// Inputs per datagram: the client's default redundancy.
const REDUNDANT: u32 = 3;
/// Datagrams handled between two drains of the connection's input queue (its capacity is
/// 64 inputs).
const CHUNK: u64 = 16;
/// Datagrams pre-encoded; a fresh connection takes over when they run out.
const DATAGRAMS: u32 = 4096;

fn tick_us() -> u64 {
    TickRate::DEFAULT.tick_us()
}

/// A walking input that varies with `i` (as a player steering does).
fn input(i: u32) -> MoveInput {
    let yaw_rad = (i % 628) as f32 * 0.01;
    MoveInput::from_controls(1.0, 0.25, yaw_rad, Buttons::default())
}

fn input_validation(c: &mut Criterion) {
    let mut g = c.benchmark_group("input_validation");

    let one = input(7);
    g.throughput(Throughput::Elements(1));
    g.bench_function("validate_input", |b| {
        b.iter(|| validate_input(black_box(&one)))
    });

    g.throughput(Throughput::Elements(u64::from(REDUNDANT)));
    let mut guard = SequenceGuard::new(SequenceGuardConfig::default()).expect("default config");
    let mut rate = InputRateLimiter::new(InputRateConfig::default()).expect("default config");
    let inputs: Vec<MoveInput> = (0..64).map(input).collect();
    // Datagram `n` carries inputs `n - 2 ..= n`; one tick passes between datagrams.
    let mut newest = REDUNDANT;
    g.bench_function("guard_validate_admit_batch3", |b| {
        b.iter(|| {
            let now_us = u64::from(newest) * tick_us();
            let mut fresh = 0u32;
            for seq in newest + 1 - REDUNDANT..=newest {
                match guard.check(black_box(seq)) {
                    Ok(SequenceVerdict::New { .. }) => {}
                    Ok(SequenceVerdict::Duplicate) | Err(_) => continue,
                }
                if validate_input(black_box(&inputs[(seq % 64) as usize])).is_ok() {
                    fresh += 1;
                }
            }
            let admission = rate.admit(now_us, fresh);
            newest += 1;
            admission.accepted
        })
    });
    assert_eq!(
        rate.dropped_total(),
        0,
        "a steady client is never throttled"
    );

    let datagrams = encode_datagrams();
    g.bench_function("decode_batch3", |b| {
        let d = &datagrams[100];
        b.iter(|| {
            let (_, payload) = PacketHeader::decode(black_box(d)).expect("valid datagram");
            decode_input_payload(payload).map(|batch| batch.inputs().len())
        })
    });

    let mut conn = logged_in_connection();
    let mut next = 0usize;
    let mut drained = Vec::with_capacity(64);
    g.bench_function("handle_datagram_batch3", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK);
                if next + n as usize > datagrams.len() {
                    conn = logged_in_connection();
                    next = 0;
                }
                let started = Instant::now();
                for d in &datagrams[next..next + n as usize] {
                    let now_us = (next as u64 + 1) * tick_us();
                    conn.handle_datagram(now_us, black_box(d));
                    next += 1;
                }
                total += started.elapsed();
                left -= n;
                loop {
                    conn.take_inputs_for_tick(&mut drained);
                    if drained.is_empty() {
                        break;
                    }
                }
            }
            total
        })
    });
    // The measured path is the accepting one: nothing overflowed, nothing was rejected.
    assert!(!conn.is_closed());
    assert_eq!(conn.stats().inputs_overflowed, 0);
    assert_eq!(conn.rejections().total(), 0);
    g.finish();
}

/// The datagrams a client sends from its third input on: datagram `n` carries inputs
/// `n + 1 ..= n + 3` and acknowledges the server's snapshots, encoded by the client's
/// encoder.
fn encode_datagrams() -> Vec<Vec<u8>> {
    (0..DATAGRAMS)
        .map(|n| {
            let mut batch = InputBatch::new(n + 1);
            for seq in n + 1..=n + REDUNDANT {
                let pushed = batch.push(input(seq));
                assert!(pushed, "3 inputs fit a batch");
            }
            let mut out = Vec::new();
            let ack = AckFields {
                ack: n as u16,
                ack_bits: 0xFFFF_FFFF,
            };
            encode_input_datagram(n as u16, Some(ack), &batch, &mut out);
            out
        })
        .collect()
}

/// A connection past its login, as the zone holds it.
fn logged_in_connection() -> ServerConnection {
    let mut conn =
        ServerConnection::new(0, ServerConnectionConfig::default()).expect("default config");
    let mut login = Vec::new();
    control::encode_frame(
        &ClientControl::Login {
            protocol_version: mmo_core::PROTOCOL_VERSION,
            token: "bench".into(),
        },
        &mut login,
    )
    .expect("a login encodes");
    conn.handle_stream(0, &login);
    let accepted = conn.accept_login(
        EntityId(1),
        Tick(0),
        TickRate::DEFAULT,
        CharacterState::default(),
        &mmo_core::control::WelcomeTerms::default(),
    );
    assert!(accepted, "the login was pending");
    while conn.poll_transmit().is_some() {}
    while conn.poll_event().is_some() {}
    conn
}

fn gameplay_checks(c: &mut Criterion) {
    let content = Content::default_content().expect("the built-in content is valid");
    let (class, race) = (ClassId(0), RaceId(0));
    let strike = content.ability_id("strike").expect("strike exists");
    let abilities = AbilityState::for_character(&content, class, race).expect("warrior");
    let pools = ResourcePools::for_character(&content, class, race, 0).expect("warrior");
    let now_ms = 10_000;
    let target = Target::Entity(EntityId(2));
    let target_m = Some(Vec3::new(2.0, 0.0, 0.0));

    let mut g = c.benchmark_group("gameplay_checks");
    g.throughput(Throughput::Elements(1));
    g.bench_function("strike_check_and_start", |b| {
        b.iter_batched(
            || (abilities.clone(), pools.clone()),
            |(mut a, mut p)| {
                let r = a.check_and_start(
                    &content,
                    black_box(strike),
                    target,
                    Vec3::ZERO,
                    target_m,
                    &mut p,
                    now_ms,
                );
                (a, p, r)
            },
            BatchSize::SmallInput,
        )
    });

    let (mut on_gcd, mut p) = (abilities.clone(), pools.clone());
    on_gcd
        .check_and_start(
            &content,
            strike,
            target,
            Vec3::ZERO,
            target_m,
            &mut p,
            now_ms,
        )
        .expect("the first strike starts");
    on_gcd.poll_cast(now_ms);
    g.bench_function("strike_refused_global_cooldown", |b| {
        b.iter(|| {
            on_gcd
                .check_and_start(
                    &content,
                    black_box(strike),
                    target,
                    Vec3::ZERO,
                    target_m,
                    &mut p,
                    now_ms + 100,
                )
                .is_err()
        })
    });

    let mut inventory = CharacterGameplay::new(&content, class, race, 0)
        .expect("warrior")
        .inventory;
    let last = inventory.bag_slots() - 1;
    // Swapping back and forth: every call is valid (slot 0 or the last holds an item).
    g.bench_function("inventory_swap", |b| {
        b.iter(|| inventory.swap(black_box(0), black_box(last)))
    });
    let mut frame = Vec::with_capacity(1024);
    g.bench_function("inventory_swap_view_encode", |b| {
        b.iter(|| {
            inventory
                .swap(black_box(0), black_box(last))
                .expect("valid swap");
            let view = InventoryView::of(&inventory);
            frame.clear();
            control::encode_frame(&ServerControl::Inventory(view), &mut frame)
                .expect("an inventory encodes");
            frame.len()
        })
    });
    g.finish();
}

/// Criterion's generated group function (`criterion_group!` emits an undocumented `pub fn`).
mod harness {
    #![allow(missing_docs)]
    use super::{gameplay_checks, input_validation};
    criterion::criterion_group!(benches, input_validation, gameplay_checks);
}
criterion_main!(harness::benches);
