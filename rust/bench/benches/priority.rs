//! Criterion microbenchmarks of `mmo_core::replication`: interest query + priority plan +
//! commit, for one client with 250 visible entities and for a full tick of 1000 clients.
//! Plans use `plan_tick_limited` and the default `interest_refresh_ticks` (6), so a
//! benchmark iteration (one tick) includes the refreshes of about a sixth of the clients.
//!
//! `cargo bench -p mmo-bench --bench priority`

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use glam::Vec3;
use mmo_core::entity::EntityId;
use mmo_core::replication::{ClientId, PriorityCategory, ReplicationConfig, Replicator, Viewer};
use mmo_core::time::Tick;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bytes a toy encoder spends per entity; the default 10,000 B/s at 30 Hz fits ~11.
const BYTES_PER_ENTITY: u32 = 30;

fn category(rng: &mut ChaCha8Rng) -> PriorityCategory {
    PriorityCategory::ALL[rng.random_range(1..4)]
}

/// Plans and commits one client the way a server tick would: ranks only what the budget
/// carries (`plan_tick_limited`, as `Zone::replicate` does), sends those candidates.
fn plan_and_commit(r: &mut Replicator, tick: Tick, client: ClientId, sent: &mut Vec<EntityId>) {
    let plan = r
        .plan_tick_limited(tick, client, |budget| (budget / BYTES_PER_ENTITY) as usize)
        .expect("client exists");
    sent.clear();
    sent.extend(plan.candidates.iter());
    let bytes = sent.len() as u32 * BYTES_PER_ENTITY;
    r.commit(client, sent, bytes).expect("planned above");
}

fn one_client_250_visible(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut r = Replicator::new(ReplicationConfig::default()).expect("default is valid");
    for i in 1..=250u32 {
        // Uniform over the 300 m disc.
        let d = 299.0 * rng.random::<f32>().sqrt();
        let a = rng.random_range(0.0..std::f32::consts::TAU);
        r.update_entity(
            EntityId(i),
            Vec3::new(d * a.cos(), d * a.sin(), 0.0),
            category(&mut rng),
        );
    }
    // Plus 750 entities outside the area of interest, still in the grid.
    for i in 251..=1000u32 {
        let x = rng.random_range(400.0..1500.0);
        let y = rng.random_range(-1500.0..1500.0);
        r.update_entity(EntityId(i), Vec3::new(x, y, 0.0), category(&mut rng));
    }
    let client = ClientId(1);
    r.add_client(client, Viewer::Position(Vec3::ZERO))
        .expect("new client");
    let mut sent = Vec::new();
    let mut tick = Tick(0);
    plan_and_commit(&mut r, tick, client, &mut sent);
    assert_eq!(r.visible_count(client).expect("added"), 250);
    c.bench_function("plan_tick_limited+commit, 1 client, 250 visible", |b| {
        b.iter(|| {
            tick = tick.next();
            plan_and_commit(&mut r, black_box(tick), client, &mut sent);
        });
    });
}

fn thousand_clients(c: &mut Criterion) {
    // 1000 players + 1000 NPCs uniform in a 1500 m square: ~250 entities per 300 m disc in
    // the middle, fewer at the edges.
    const SIDE_M: f32 = 1500.0;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut r = Replicator::new(ReplicationConfig::default()).expect("default is valid");
    let mut positions = Vec::new();
    for i in 1..=2000u32 {
        let p = Vec3::new(
            rng.random_range(0.0..SIDE_M),
            rng.random_range(0.0..SIDE_M),
            0.0,
        );
        let cat = if i <= 1000 {
            PriorityCategory::High
        } else {
            category(&mut rng)
        };
        r.update_entity(EntityId(i), p, cat);
        positions.push((EntityId(i), p, cat));
    }
    for i in 1..=1000u32 {
        r.add_client(ClientId(i), Viewer::Entity(EntityId(i)))
            .expect("new client");
    }
    let mut sent = Vec::new();
    let mut tick = Tick(0);
    let clients: Vec<ClientId> = r.clients().collect();
    for &client in &clients {
        plan_and_commit(&mut r, tick, client, &mut sent);
    }
    let visible: usize = clients
        .iter()
        .map(|&c| r.visible_count(c).expect("added"))
        .sum();
    eprintln!(
        "1000 clients: mean visible set {:.0} entities",
        visible as f64 / 1000.0
    );

    let mut group = c.benchmark_group("full tick");
    group.sample_size(20);
    group.bench_function(
        "plan_tick_limited+commit, 1000 clients (2000 entities)",
        |b| {
            b.iter(|| {
                tick = tick.next();
                for &client in &clients {
                    plan_and_commit(&mut r, tick, client, &mut sent);
                }
            });
        },
    );
    group.bench_function("update_entity x2000 (everyone moves 1 m)", |b| {
        let mut step = 0u32;
        b.iter(|| {
            step += 1;
            let dx = if step.is_multiple_of(2) { 1.0 } else { -1.0 };
            for (id, p, cat) in &mut positions {
                p.x += dx;
                r.update_entity(*id, *p, *cat);
            }
        });
    });
    group.finish();
}

/// Criterion's generated group function (`criterion_group!` emits an undocumented `pub fn`).
mod harness {
    #![allow(missing_docs)]
    use super::{one_client_250_visible, thousand_clients};
    criterion::criterion_group!(benches, one_client_250_visible, thousand_clients);
}
criterion_main!(harness::benches);
