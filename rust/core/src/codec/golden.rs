//! Golden vectors: frozen datagrams in `tests/data/` (described in `tests/data/README.md`)
//! that pin the wire format. Each test encodes the documented inputs and compares with the
//! frozen bytes, decodes the frozen bytes to the documented values, and re-encodes the
//! decoded values to identical bytes.
//!
//! Regenerate (only when the wire format changes on purpose, with a `PROTOCOL_VERSION`
//! bump): `cargo test -p mmo-core codec::golden::regenerate -- --ignored`.

use std::collections::HashMap;

use glam::Vec3;

use super::entity_state::{NetEntityState, Quantization, QuantizedEntity, SnapshotConfig};
use super::input_codec::{InputBatch, decode_input_payload, encode_input_datagram};
use super::packet::{AckFields, PacketHeader, PacketKind};
use super::snapshot::{
    DecodedSnapshot, EntityRecordIn, NoBaselines, RecordBase, SnapshotCodec, SnapshotIn,
};
use super::snapshot_tests::MapLookup;
use crate::entity::{CharacterState, EntityId};
use crate::input::{Buttons, MoveInput};
use crate::time::Tick;

fn codec() -> SnapshotCodec {
    SnapshotCodec::new(Quantization::new(SnapshotConfig::default()).unwrap())
}

fn state(x: f32, y: f32, z: f32, yaw_rad: f32, flags: u8) -> NetEntityState {
    NetEntityState {
        position_m: Vec3::new(x, y, z),
        yaw_rad,
        flags,
    }
}

fn full_snapshot() -> (SnapshotIn, Vec<EntityId>, Vec<EntityRecordIn>) {
    let snap = SnapshotIn {
        owner_baseline: None,
        len_limit_bytes: None,
        seq: 7,
        ack: Some(AckFields {
            ack: 3,
            ack_bits: 0b101,
        }),
        tick: Tick(1234),
        ack_input_seq: 99,
        baseline_seq: None,
        owner: Some(CharacterState {
            position_m: Vec3::new(10.5, -3.25, 0.0),
            velocity_mps: Vec3::new(5.0, 0.0, -0.0),
            yaw_rad: 1.5,
            on_ground: true,
        }),
    };
    let recs = vec![
        EntityRecordIn {
            id: EntityId(5),
            state: state(100.0, 200.0, 0.0, 0.5, 1),
            base: RecordBase::Enter { archetype: 3 },
        },
        EntityRecordIn {
            id: EntityId(6),
            state: state(-50.25, 12.5, 1.0, 3.0, 0),
            base: RecordBase::Enter { archetype: 3 },
        },
        EntityRecordIn {
            id: EntityId(40),
            state: state(0.0, 0.0, 0.0, 0.0, 0),
            base: RecordBase::Enter { archetype: 700 },
        },
        EntityRecordIn {
            id: EntityId(42),
            state: state(-8192.0, 8192.0, -1024.0, 6.2, 255),
            base: RecordBase::Full,
        },
    ];
    (snap, Vec::new(), recs)
}

/// The state of entity 41 the client is assumed to hold from snapshot seq 4 (tick 1231).
fn entity41_seq4() -> QuantizedEntity {
    QuantizedEntity {
        pos_q: [-819_000, 819_000, -102_400],
        yaw_q: 1000,
        flags: 255,
        vel_fp: [-4000, 4000, 0, 256],
        acc_fp: [10, -10, 0, 0],
        span_ticks: 3,
        tick: Tick(1231),
    }
}

/// The owner state of the delta vector: the full vector's moved 0.1 m along X, the rest
/// unchanged.
fn delta_owner() -> CharacterState {
    CharacterState {
        position_m: Vec3::new(10.6, -3.25, 0.0),
        velocity_mps: Vec3::new(5.0, 0.0, -0.0),
        yaw_rad: 1.5,
        on_ground: true,
    }
}

fn delta_snapshot(
    full: &DecodedSnapshot,
) -> (SnapshotIn, Vec<EntityId>, Vec<EntityRecordIn>, MapLookup) {
    let mut lookup = MapLookup(HashMap::new(), HashMap::new());
    for e in &full.entities {
        lookup.0.insert((e.id, 7), e.state);
    }
    lookup.0.insert((EntityId(41), 4), entity41_seq4());
    if let Some(owner) = full.owner {
        lookup.1.insert(7, owner);
    }
    let base = |id: u32| RecordBase::Delta {
        seq: 7,
        state: lookup.0[&(EntityId(id), 7)],
    };
    let snap = SnapshotIn {
        // Coded against the owner state of snapshot 7 (the full vector's).
        owner_baseline: lookup.1.get(&7).copied(),
        len_limit_bytes: None,
        seq: 13,
        ack: Some(AckFields {
            ack: 9,
            ack_bits: 0xFFFF_FFFF,
        }),
        tick: Tick(1240),
        ack_input_seq: 105,
        baseline_seq: Some(7),
        owner: Some(delta_owner()),
    };
    let recs = vec![
        // Moving: X/Y and yaw change.
        EntityRecordIn {
            id: EntityId(5),
            state: state(101.0, 200.5, 0.0, 0.6, 1),
            base: base(5),
        },
        // Only the flags change.
        EntityRecordIn {
            id: EntityId(40),
            state: state(0.0, 0.0, 0.0, 0.0, 4),
            base: base(40),
        },
        // Against an older baseline (seq 4: the client's newest state of 41 at or before
        // the snapshot baseline 7, which did not carry 41), Z changes too.
        EntityRecordIn {
            id: EntityId(41),
            state: state(-8191.5, 8191.0, -1023.0, 6.0, 255),
            base: RecordBase::Delta {
                seq: 4,
                state: entity41_seq4(),
            },
        },
    ];
    (snap, vec![EntityId(6)], recs, lookup)
}

fn input_batch() -> InputBatch {
    let mut b = InputBatch::new(1000);
    let m = |f: i8, r: i8, y: u16, b: u8| MoveInput {
        forward_q: f,
        right_q: r,
        yaw_q: y,
        buttons: Buttons(b),
    };
    b.push(m(127, 0, 16384, 0));
    b.push(m(127, 0, 16384, 0));
    b.push(m(127, -64, 16400, 0));
    b.push(m(127, -64, 16000, Buttons::SPRINT | Buttons::JUMP));
    b
}

fn encode_full() -> (Vec<u8>, usize) {
    let (snap, leaves, recs) = full_snapshot();
    let mut out = Vec::new();
    let mut written = Vec::new();
    let r = codec()
        .encode(&snap, &leaves, &recs, &mut out, &mut written)
        .unwrap();
    (out, r.records_written)
}

fn decode_full(bytes: &[u8]) -> DecodedSnapshot {
    let (h, payload) = PacketHeader::decode(bytes).unwrap();
    assert_eq!(h.kind, PacketKind::Snapshot);
    let mut dec = DecodedSnapshot::default();
    codec()
        .decode(payload, u64::from(h.seq), &NoBaselines, &mut dec)
        .unwrap();
    dec
}

fn encode_delta(full: &DecodedSnapshot) -> Vec<u8> {
    let (snap, leaves, recs, _) = delta_snapshot(full);
    let mut out = Vec::new();
    let mut written = Vec::new();
    let r = codec()
        .encode(&snap, &leaves, &recs, &mut out, &mut written)
        .unwrap();
    assert_eq!(r.records_written, 3);
    out
}

fn encode_input() -> Vec<u8> {
    let mut out = Vec::new();
    encode_input_datagram(
        300,
        Some(AckFields {
            ack: 13,
            ack_bits: 0x3F,
        }),
        &input_batch(),
        &mut out,
    );
    out
}

#[test]
#[ignore = "rewrites the frozen golden vectors"]
fn regenerate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let (full, _) = encode_full();
    let delta = encode_delta(&decode_full(&full));
    std::fs::write(dir.join("snapshot_full.bin"), &full).unwrap();
    std::fs::write(dir.join("snapshot_delta.bin"), &delta).unwrap();
    std::fs::write(dir.join("input.bin"), encode_input()).unwrap();
}

const SNAPSHOT_FULL: &[u8] = include_bytes!("../../../../tests/data/snapshot_full.bin");
const SNAPSHOT_DELTA: &[u8] = include_bytes!("../../../../tests/data/snapshot_delta.bin");
const INPUT: &[u8] = include_bytes!("../../../../tests/data/input.bin");

/// Re-encodes a decoded snapshot (decoded states become the records' states; decoded
/// baselines are looked up again).
fn reencode(dec: &DecodedSnapshot, ack: Option<AckFields>, lookup: &MapLookup) -> Vec<u8> {
    let c = codec();
    let q = c.quantization();
    let snap = SnapshotIn {
        owner_baseline: dec.baseline_seq.and_then(|b| lookup.1.get(&b)).copied(),
        len_limit_bytes: None,
        seq: dec.seq,
        ack,
        tick: dec.tick,
        ack_input_seq: dec.ack_input_seq,
        baseline_seq: dec.baseline_seq,
        owner: dec.owner,
    };
    let recs: Vec<EntityRecordIn> = dec
        .entities
        .iter()
        .map(|e| EntityRecordIn {
            id: e.id,
            state: q.dequantize(&e.state),
            base: match (e.enter_archetype, e.baseline_seq) {
                (Some(archetype), _) => RecordBase::Enter { archetype },
                (None, None) => RecordBase::Full,
                (None, Some(seq)) => RecordBase::Delta {
                    seq,
                    state: lookup.0[&(e.id, seq)],
                },
            },
        })
        .collect();
    let mut out = Vec::new();
    let mut written = Vec::new();
    c.encode(&snap, &dec.leaves, &recs, &mut out, &mut written)
        .unwrap();
    out
}

#[test]
fn snapshot_full_vector() {
    let (fresh, n) = encode_full();
    assert_eq!(n, 4);
    assert_eq!(
        fresh, SNAPSHOT_FULL,
        "encoder output changed: wire format drift"
    );
    let (h, _) = PacketHeader::decode(SNAPSHOT_FULL).unwrap();
    assert_eq!(h.seq, 7);
    assert_eq!(
        h.ack,
        Some(AckFields {
            ack: 3,
            ack_bits: 0b101
        })
    );
    let dec = decode_full(SNAPSHOT_FULL);
    assert_eq!(dec.tick, Tick(1234));
    assert_eq!(dec.ack_input_seq, 99);
    assert_eq!(dec.baseline_seq, None);
    assert!(
        dec.owner
            .unwrap()
            .bits_eq(&full_snapshot().0.owner.unwrap())
    );
    let ids: Vec<u32> = dec.entities.iter().map(|e| e.id.0).collect();
    assert_eq!(ids, vec![5, 6, 40, 42]);
    let archetypes: Vec<Option<u16>> = dec.entities.iter().map(|e| e.enter_archetype).collect();
    assert_eq!(archetypes, vec![Some(3), Some(3), Some(700), None]);
    assert_eq!(dec.entities[0].state.pos_q, [10_000, 20_000, 0]);
    assert_eq!(dec.entities[1].state.pos_q, [-5025, 1250, 100]);
    assert_eq!(dec.entities[3].state.pos_q, [-819_200, 819_200, -102_400]);
    assert_eq!(dec.entities[3].state.flags, 255);
    assert_eq!(dec.entities[0].state.yaw_q, 81); // 0.5 rad * 1024 / 2pi
    assert_eq!(
        reencode(&dec, h.ack, &MapLookup(HashMap::new(), HashMap::new())),
        SNAPSHOT_FULL
    );
}

#[test]
fn snapshot_delta_vector() {
    let full = decode_full(SNAPSHOT_FULL);
    assert_eq!(
        encode_delta(&full),
        SNAPSHOT_DELTA,
        "encoder output changed: wire format drift"
    );
    let (_, _, _, lookup) = delta_snapshot(&full);
    let (h, payload) = PacketHeader::decode(SNAPSHOT_DELTA).unwrap();
    assert_eq!(h.seq, 13);
    let mut dec = DecodedSnapshot::default();
    codec().decode(payload, 13, &lookup, &mut dec).unwrap();
    assert_eq!(dec.tick, Tick(1240));
    assert_eq!(dec.ack_input_seq, 105);
    assert_eq!(dec.baseline_seq, Some(7));
    assert!(dec.owner.unwrap().bits_eq(&delta_owner()));
    assert_eq!(dec.leaves, vec![EntityId(6)]);
    let got: Vec<(u32, Option<u64>, [i32; 3], u8)> = dec
        .entities
        .iter()
        .map(|e| (e.id.0, e.baseline_seq, e.state.pos_q, e.state.flags))
        .collect();
    assert_eq!(
        got,
        vec![
            (5, Some(7), [10_100, 20_050, 0], 1),
            (40, Some(7), [0, 0, 0], 4),
            (41, Some(4), [-819_150, 819_100, -102_300], 255),
        ]
    );
    // Derived motion of entity 5: moved 100 and 50 steps in 6 ticks.
    assert_eq!(dec.entities[0].state.span_ticks, 6);
    assert_eq!(
        dec.entities[0].state.vel_fp[0],
        (100 * 256 * 10923 + 32768) >> 16
    );
    // The derived motion of every record (WIRE_FORMAT 5.5), as tests/data/README.md lists it.
    let motion: Vec<(u32, [i32; 4], u16, u16)> = dec
        .entities
        .iter()
        .map(|e| (e.id.0, e.state.vel_fp, e.state.span_ticks, e.state.yaw_q))
        .collect();
    assert_eq!(
        motion,
        vec![
            (5, [4267, 2133, 0, 725], 6, 98),
            (40, [0, 0, 0, 0], 6, 0),
            (41, [-4267, 2845, 2845, -626], 9, 978),
        ]
    );
    assert!(dec.entities.iter().all(|e| e.state.acc_fp == [0; 4]));
    // Without the baselines the client fails cleanly: the owner state comes first.
    let mut empty = DecodedSnapshot::default();
    assert_eq!(
        codec().decode(payload, 13, &NoBaselines, &mut empty),
        Err(super::CodecError::UnknownBaseline { entity: 0, seq: 7 })
    );
    // With the owner state of 7 but no entity states: the first delta record fails.
    let owner_only = MapLookup(HashMap::new(), lookup.1.clone());
    assert_eq!(
        codec().decode(payload, 13, &owner_only, &mut empty),
        Err(super::CodecError::UnknownBaseline { entity: 5, seq: 7 })
    );
    assert_eq!(reencode(&dec, h.ack, &lookup), SNAPSHOT_DELTA);
}

#[test]
fn input_vector() {
    assert_eq!(
        encode_input(),
        INPUT,
        "encoder output changed: wire format drift"
    );
    let (h, payload) = PacketHeader::decode(INPUT).unwrap();
    assert_eq!(h.kind, PacketKind::Input);
    assert_eq!(h.seq, 300);
    assert_eq!(
        h.ack,
        Some(AckFields {
            ack: 13,
            ack_bits: 0x3F
        })
    );
    let batch = decode_input_payload(payload).unwrap();
    assert_eq!(batch, input_batch());
    let seqs: Vec<u32> = batch.iter().map(|(s, _)| s).collect();
    assert_eq!(seqs, vec![1000, 1001, 1002, 1003]);
    let mut again = Vec::new();
    encode_input_datagram(h.seq, h.ack, &batch, &mut again);
    assert_eq!(again, INPUT);
}
