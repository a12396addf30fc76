//! Criterion microbenchmarks of the codec hot paths: the bit packer (write and read) and
//! snapshot encode/decode of 250 moving entities coded against 6-tick-old baselines.
//!
//! `cargo bench -p mmo-bench --bench codec`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use glam::Vec3;
use mmo_core::codec::bits::{BitReader, BitWriter};
use mmo_core::codec::entity_state::{
    NetEntityState, Quantization, QuantizedEntity, SnapshotConfig, derive_velocity,
};
use mmo_core::codec::snapshot::{
    BaselineLookup, DecodedSnapshot, EntityRecordIn, RecordBase, SnapshotCodec, SnapshotIn,
};
use mmo_core::entity::EntityId;
use mmo_core::time::Tick;

const ENTITIES: usize = 250;

fn bits(c: &mut Criterion) {
    // 1000 fields of widths 1..=32 (fixed pseudo-random pattern).
    let fields: Vec<(u32, u32)> = (0..1000u32)
        .map(|i| {
            let n = i.wrapping_mul(2_654_435_761) % 32 + 1;
            (i.wrapping_mul(0x9E37_79B9), n)
        })
        .collect();
    let total_bits: u64 = fields.iter().map(|f| u64::from(f.1)).sum();
    let mut g = c.benchmark_group("bits");
    g.throughput(Throughput::Elements(fields.len() as u64));
    let mut buf = Vec::with_capacity(8192);
    g.bench_function("write_1000_fields", |b| {
        b.iter(|| {
            let mut w = BitWriter::from_vec(std::mem::take(&mut buf));
            for &(v, n) in &fields {
                w.write_bits(black_box(v), n);
            }
            buf = w.finish();
            buf.clear();
        })
    });
    let mut w = BitWriter::new();
    for &(v, n) in &fields {
        w.write_bits(v, n);
    }
    let bytes = w.finish();
    assert_eq!(bytes.len() as u64, total_bits.div_ceil(8));
    g.bench_function("read_1000_fields", |b| {
        b.iter(|| {
            let mut r = BitReader::new(black_box(&bytes));
            let mut acc = 0u32;
            for &(_, n) in &fields {
                acc ^= r.read_bits(n, "f").unwrap_or(0);
            }
            acc
        })
    });
    g.finish();
}

/// Baselines indexed by entity id (all at one seq).
struct VecLookup {
    seq: u64,
    states: Vec<QuantizedEntity>,
}

impl BaselineLookup for VecLookup {
    fn newest_at_or_before(&self, id: EntityId, seq: u64) -> Option<(u64, &QuantizedEntity)> {
        if self.seq > seq {
            return None;
        }
        let state = self.states.get((id.0 as usize).checked_sub(1)?)?;
        Some((self.seq, state))
    }
}

fn walker_state(i: usize, tick: u32) -> NetEntityState {
    let heading = i as f32 * 0.37 + tick as f32 * 0.01 * ((i % 5) as f32 - 2.0);
    let r = 5.0 / 30.0 * tick as f32;
    NetEntityState {
        position_m: Vec3::new(
            (i % 16) as f32 * 10.0 + r * heading.cos(),
            (i / 16) as f32 * 10.0 + r * heading.sin(),
            0.0,
        ),
        yaw_rad: heading,
        flags: 1,
    }
}

fn snapshot(c: &mut Criterion) {
    let q = Quantization::new(SnapshotConfig::default()).expect("default config is valid");
    let codec = SnapshotCodec::new(q);
    // Baselines at ticks 94 (from 88) and the snapshot at tick 100: 6 ticks apart.
    let states: Vec<QuantizedEntity> = (0..ENTITIES)
        .map(|i| {
            let older = q.quantize(&walker_state(i, 88), Tick(88));
            let mut s = q.quantize(&walker_state(i, 94), Tick(94));
            derive_velocity(&mut s, &older, &q.yaw, true);
            s
        })
        .collect();
    let lookup = VecLookup { seq: 94, states };
    let records: Vec<EntityRecordIn> = (0..ENTITIES)
        .map(|i| EntityRecordIn {
            id: EntityId(i as u32 + 1),
            state: walker_state(i, 100),
            base: RecordBase::Delta {
                seq: 94,
                state: lookup.states[i],
            },
        })
        .collect();
    let snap = SnapshotIn {
        owner_baseline: None,
        len_limit_bytes: None,
        seq: 100,
        ack: None,
        tick: Tick(100),
        ack_input_seq: 7,
        baseline_seq: Some(94),
        owner: None,
    };
    let mut out = Vec::with_capacity(1500);
    let mut written = Vec::with_capacity(ENTITIES);
    let report = codec
        .encode(&snap, &[], &records, &mut out, &mut written)
        .expect("fits");
    assert_eq!(report.records_written, ENTITIES);
    let mut g = c.benchmark_group("snapshot");
    g.throughput(Throughput::Elements(ENTITIES as u64));
    g.bench_function("encode_250_delta", |b| {
        b.iter(|| {
            codec
                .encode(
                    black_box(&snap),
                    &[],
                    black_box(&records),
                    &mut out,
                    &mut written,
                )
                .map(|r| r.len_bytes)
        })
    });
    let datagram = out.clone();
    let mut decoded = DecodedSnapshot::default();
    g.bench_function("decode_250_delta", |b| {
        b.iter(|| {
            codec
                .decode(black_box(&datagram[9..]), 100, &lookup, &mut decoded)
                .map(|()| decoded.entities.len())
        })
    });
    g.finish();
}

#[allow(missing_docs)] // criterion_group! generates an undocumented public function.
mod harness {
    use super::{bits, snapshot};
    use criterion::criterion_group;
    criterion_group!(benches, bits, snapshot);
}
criterion_main!(harness::benches);
