// Exercises include/mmo.hpp (the C++ RAII wrappers) from C++17 and C++20 with
// -fno-exceptions -fno-rtti: compiled with g++ and clang++ under ASan + UBSan by
// tests/integration/c_programs.rs. Prints "N passed, N failed".
//
// Covers: RAII and move semantics of every handle (moved-from handles are empty and fail
// with NULL_ARGUMENT instead of crashing; ASan's leak check proves every handle is freed),
// Status/Result (ok, code, message, last_error), prediction + reconciliation, interpolation,
// the codec round trip and replication through the wrappers, spans over C arrays, std::array
// and std::vector, validation, and the cm <-> m conversions with round trips.
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../c/check.h"
#include "mmo.hpp"

namespace {

bool near_f(float a, float b, float tol) { return std::fabs(a - b) <= tol; }

// Compile-time properties of the wrappers.
static_assert(!std::is_copy_constructible<mmo::Predictor>::value, "handles are move-only");
static_assert(!std::is_copy_assignable<mmo::Predictor>::value, "handles are move-only");
static_assert(std::is_nothrow_move_constructible<mmo::Predictor>::value, "");
static_assert(std::is_nothrow_move_assignable<mmo::Predictor>::value, "");
static_assert(!std::is_copy_constructible<mmo::Interpolator>::value, "");
static_assert(std::is_nothrow_move_constructible<mmo::Interpolator>::value, "");
static_assert(!std::is_copy_constructible<mmo::SnapshotWriter>::value, "");
static_assert(std::is_nothrow_move_constructible<mmo::SnapshotWriter>::value, "");
static_assert(!std::is_copy_constructible<mmo::SnapshotReader>::value, "");
static_assert(std::is_nothrow_move_constructible<mmo::SnapshotReader>::value, "");
static_assert(!std::is_copy_constructible<mmo::Replicator>::value, "");
static_assert(std::is_nothrow_move_assignable<mmo::Replicator>::value, "");
static_assert(sizeof(mmo::Predictor) == sizeof(void *), "a handle is one pointer");
static_assert(mmo::cm_to_m(250.0f) == 2.5f, "constexpr conversion");
static_assert(mmo::m_to_cm(2.5f) == 250.0f, "constexpr conversion");
static_assert(mmo::Status().ok(), "default status is OK");
static_assert(!mmo::Status(MMO_RESULT_EMPTY).ok(), "");

// A stand-in for Unreal's FVector (double components, constructor from X, Y, Z).
struct FVectorLike {
    double X = 0.0;
    double Y = 0.0;
    double Z = 0.0;
    FVectorLike() = default;
    FVectorLike(double x, double y, double z) : X(x), Y(y), Z(z) {}
};

void sanitizer_is_active() {
    char *p = static_cast<char *>(std::malloc(16));
    CHECK(p != nullptr);
    // The byte just past a 16-byte block is ASan's redzone: poisoned only under ASan.
    CHECK(__asan_address_is_poisoned(p + 16) == 1);
    std::free(p);
}

void versions() {
    CHECK(mmo_abi_version() == MMO_ABI_VERSION);
    CHECK(mmo::abi_compatible());
}

void units() {
    // Scalars.
    CHECK(mmo::cm_to_m(100.0f) == 1.0f);
    CHECK(mmo::m_to_cm(1.0f) == 100.0f);
    CHECK(mmo::cm_to_m(-12345.0) == -123.45);
    CHECK(mmo::cm_to_m(0.0f) == 0.0f);

    // Vectors: mmo_vec3 both ways.
    const mmo_vec3 cm{150.0f, -20.0f, 88.0f};
    const mmo_vec3 m = mmo::cm_to_m(cm);
    CHECK(m.x == 1.5f && m.y == -0.2f && near_f(m.z, 0.88f, 1e-7f));
    const mmo_vec3 back = mmo::m_to_cm(m);
    CHECK(near_f(back.x, cm.x, 1e-4f) && near_f(back.y, cm.y, 1e-4f) &&
          near_f(back.z, cm.z, 1e-4f));

    // Round trips over a range of magnitudes (a zone is +-8192 m = +-819,200 cm): relative
    // error within 2 float ulps both ways.
    int bad = 0;
    for (int i = -1000; i <= 1000; i++) {
        const float v_cm = static_cast<float>(i) * 819.2f + 0.37f;
        const float rt_cm = mmo::m_to_cm(mmo::cm_to_m(v_cm));
        const float v_m = static_cast<float>(i) * 8.192f - 0.0041f;
        const float rt_m = mmo::cm_to_m(mmo::m_to_cm(v_m));
        if (std::fabs(rt_cm - v_cm) > 2.5e-7f * std::fabs(v_cm) ||
            std::fabs(rt_m - v_m) > 2.5e-7f * std::fabs(v_m)) {
            bad++;
        }
    }
    CHECK(bad == 0);
    // Whole centimetres survive cm -> m -> cm exactly after rounding (what a replicated
    // position at 1 cm precision needs).
    for (int i = -819200; i <= 819200; i += 4099) {
        const float v_cm = static_cast<float>(i);
        CHECK(std::lround(mmo::m_to_cm(mmo::cm_to_m(v_cm))) == i);
    }

    // Unreal-like vectors (double components).
    const FVectorLike actor_cm(12345.0, -678.9, 100.0);
    const mmo_vec3 actor_m = mmo::from_unreal_cm(actor_cm);
    CHECK(near_f(actor_m.x, 123.45f, 1e-5f) && near_f(actor_m.y, -6.789f, 1e-6f) &&
          actor_m.z == 1.0f);
    const FVectorLike rt = mmo::to_unreal_cm<FVectorLike>(actor_m);
    CHECK(std::fabs(rt.X - actor_cm.X) < 1e-3 && std::fabs(rt.Y - actor_cm.Y) < 1e-4 &&
          std::fabs(rt.Z - actor_cm.Z) < 1e-9);
}

void spans() {
    uint32_t c_array[4] = {1, 2, 3, 4};
    mmo::span<uint32_t> a(c_array);
    CHECK(a.size() == 4 && a.data() == c_array && a[3] == 4 && !a.empty());
    CHECK(a.size_bytes() == sizeof c_array);
    CHECK(a.first(2).size() == 2 && a.first(10).size() == 4);
    std::array<uint8_t, 8> arr{};
    mmo::span<uint8_t> b(arr);
    CHECK(b.size() == 8 && b.data() == arr.data());
    const std::vector<uint8_t> vec(5, 7);
    mmo::span<const uint8_t> c(vec);
    CHECK(c.size() == 5 && c[4] == 7);
    mmo::span<const uint32_t> d(a); // span<T> -> span<const T>
    CHECK(d.size() == 4 && d[0] == 1);
    uint32_t sum = 0;
    for (uint32_t v : d) {
        sum += v;
    }
    CHECK(sum == 10);
    mmo::span<const uint8_t> empty;
    CHECK(empty.empty() && empty.data() == nullptr);
}

void status_and_result() {
    mmo::Status ok;
    CHECK(ok.ok() && static_cast<bool>(ok) && ok.code() == MMO_RESULT_OK);
    CHECK(ok.message() == "success");
    mmo::Status empty(MMO_RESULT_EMPTY);
    CHECK(!empty.ok() && empty.code() == MMO_RESULT_EMPTY);
    CHECK(empty.message() == mmo::result_message(MMO_RESULT_EMPTY));
    CHECK(!empty.message().empty() && empty.message() != ok.message());
    CHECK(empty != ok && empty == mmo::Status(MMO_RESULT_EMPTY));
    CHECK(mmo::result_message(static_cast<mmo_result>(4321)) == "unknown result code");

    mmo::Result<int> value(42);
    CHECK(value.ok() && *value == 42 && value.value() == 42 && value.code() == MMO_RESULT_OK);
    mmo::Result<int> failure{mmo::Status(MMO_RESULT_NOT_FOUND)};
    CHECK(!failure.ok() && !failure && failure.code() == MMO_RESULT_NOT_FOUND);
    CHECK(failure.value_or(7) == 7 && value.value_or(7) == 42);
    CHECK(failure.status() == mmo::Status(MMO_RESULT_NOT_FOUND));
    CHECK(failure.message() == mmo::result_message(MMO_RESULT_NOT_FOUND));

    // A failing call through the wrappers: code, message and the detailed last error.
    mmo_replication_config bad = mmo::default_replication_config();
    bad.area_of_interest_radius_m = 100.0f;
    mmo::Result<mmo::Replicator> r = mmo::Replicator::create(bad);
    CHECK(!r.ok() && r.code() == MMO_RESULT_INVALID_CONFIG);
    CHECK(mmo::last_error().find("area_of_interest_radius_m") != std::string::npos);
    CHECK(r.message() == "the configuration is invalid");
}

mmo::Predictor make_predictor() {
    mmo_character_state initial{};
    initial.on_ground = 1;
    mmo::Result<mmo::Predictor> p = mmo::Predictor::create(
        mmo::default_movement_config(), mmo::default_prediction_config(), initial);
    CHECK(p.ok());
    return std::move(p).value();
}

void predictor() {
    mmo::Predictor p = make_predictor();
    CHECK(p.valid() && p.get() != nullptr);

    mmo::Result<mmo_move_input> input = mmo::move_input_from_controls(1.0f, 0.0f, 0.0f, 0);
    CHECK(input.ok() && input->forward_q == 127);
    CHECK(mmo::move_input_from_controls(0.0f, 0.0f, 0.0f, 0x80).code() ==
          MMO_RESULT_INVALID_ARGUMENT);

    std::array<mmo_character_state, 5> states{};
    for (uint32_t i = 0; i < 5; i++) {
        mmo::Result<uint32_t> seq = p.push_input(*input);
        CHECK(seq.ok() && *seq == i + 1);
        mmo::Result<mmo_character_state> s = p.predicted();
        CHECK(s.ok());
        states[i] = s.value_or(mmo_character_state{});
    }
    CHECK(states[4].position_m.x > 0.0f);

    mmo::Result<mmo_reconcile_result> confirmed = p.reconcile(2, states[1]);
    CHECK(confirmed.ok() && confirmed->outcome == MMO_RECONCILE_OUTCOME_CONFIRMED);

    std::array<mmo_move_input, 8> unacked{};
    mmo::Result<mmo::UnackedInputs> u = p.unacked_inputs(unacked);
    CHECK(u.ok() && u->count == 3 && u->first_seq == 3);
    CHECK(unacked[0].forward_q == 127);

    // The server put input 3 half a metre (50 cm) to the right: corrected; the offset
    // hides the jump and decays.
    mmo_character_state server = states[2];
    server.position_m.y += mmo::cm_to_m(50.0f);
    mmo::Result<mmo_reconcile_result> corrected = p.reconcile(3, server);
    CHECK(corrected.ok() && corrected->outcome == MMO_RECONCILE_OUTCOME_CORRECTED);
    CHECK(corrected.ok() && corrected->replayed_inputs == 2);
    mmo::Result<mmo_vec3> offset = p.visual_offset();
    CHECK(offset.ok() && near_f(mmo::m_to_cm(offset->y), -50.0f, 0.1f));
    CHECK(p.advance_visual(0.1f).ok());
    mmo::Result<mmo_vec3> decayed = p.visual_offset();
    CHECK(decayed.ok() && near_f(decayed->y, offset->y / 2.0f, 1e-3f));
    mmo::Result<mmo_vec3> render = p.render_position();
    mmo::Result<mmo_character_state> predicted = p.predicted();
    CHECK(render.ok() && predicted.ok() &&
          near_f(render->y, predicted->position_m.y + decayed->y, 1e-5f));

    // Errors through the wrappers.
    CHECK(p.reconcile(99, server).code() == MMO_RESULT_ACK_AHEAD);
    CHECK(p.advance_visual(-1.0f).code() == MMO_RESULT_INVALID_ARGUMENT);
    mmo_character_state nan_state = server;
    nan_state.position_m.x = std::nanf("");
    CHECK(p.reset(nan_state).code() == MMO_RESULT_INVALID_ARGUMENT);
    CHECK(p.reset(server).ok());
    mmo_movement_config bad_movement = mmo::default_movement_config();
    bad_movement.walk_speed_mps = -1.0f;
    mmo_character_state initial{};
    CHECK(mmo::Predictor::create(bad_movement, mmo::default_prediction_config(), initial)
              .code() == MMO_RESULT_INVALID_CONFIG);
    CHECK(mmo::last_error().find("walk_speed_mps") != std::string::npos);
    // Blockers through a span.
    mmo_aabb blockers[1] = {{{5.0f, -1.0f, 0.0f}, {6.0f, 1.0f, 2.0f}}};
    CHECK(mmo::Predictor::create(mmo::default_movement_config(),
                                 mmo::default_prediction_config(), initial, blockers)
              .ok());

    // Move semantics: construction and assignment transfer the handle; the moved-from
    // wrapper is empty and its calls fail with NULL_ARGUMENT instead of crashing.
    mmo_predictor *raw = p.get();
    mmo::Predictor q(std::move(p));
    CHECK(q.get() == raw && !p.valid() && p.get() == nullptr); // NOLINT(bugprone-use-after-move)
    CHECK(p.push_input(*input).code() == MMO_RESULT_NULL_ARGUMENT);
    CHECK(p.predicted().code() == MMO_RESULT_NULL_ARGUMENT);
    mmo::Predictor r = make_predictor();
    r = std::move(q); // frees r's old handle (ASan's leak check would see it otherwise)
    CHECK(r.get() == raw && !q.valid());
    mmo::Predictor &alias = r; // (an alias: -Wself-move rejects the direct spelling)
    r = std::move(alias);      // self-move keeps the handle
    CHECK(r.get() == raw);
    mmo::Predictor empty;
    CHECK(!empty && empty.get() == nullptr);
    // release() hands ownership back to C.
    mmo_predictor *released = r.release();
    CHECK(released == raw && !r.valid());
    mmo_predictor_free(released);
}

void interpolator() {
    mmo::Result<mmo::Interpolator> made =
        mmo::Interpolator::create(mmo::default_interpolation_config());
    CHECK(made.ok());
    mmo::Interpolator it = std::move(made).value();
    CHECK(it.sample(0).code() == MMO_RESULT_EMPTY);
    const uint64_t tick_us = 33333;
    int between = 0;
    for (uint64_t k = 0; k < 30; k++) {
        const uint64_t server_time = 1000000 + k * tick_us;
        // The game hands positions in centimetres: 50 cm per tick along X.
        const mmo_vec3 pos = mmo::cm_to_m(mmo_vec3{50.0f * static_cast<float>(k), 300.0f, 0.0f});
        mmo::Result<mmo_push_outcome> outcome = it.push(server_time, server_time + 50000, pos, 0.0f);
        CHECK(outcome.ok() && *outcome == MMO_PUSH_OUTCOME_ACCEPTED);
        for (uint64_t frame = 0; frame < 2; frame++) {
            mmo::Result<mmo_interp_output> o = it.sample(server_time + 50000 + frame * 16000);
            CHECK(o.ok());
            if (!o.ok()) {
                continue;
            }
            const mmo_vec3 drawn_cm = mmo::m_to_cm(o->position_m);
            CHECK(near_f(drawn_cm.y, 300.0f, 1e-3f));
            CHECK(drawn_cm.x <= 50.0f * static_cast<float>(k) + 0.01f);
            const float ticks = drawn_cm.x / 50.0f;
            if (k >= 10 && ticks - std::floor(ticks) > 0.05f && ticks - std::floor(ticks) < 0.95f) {
                between++;
            }
        }
    }
    CHECK(between >= 10);
    CHECK(it.clear().ok());
    CHECK(it.sample(5000000).code() == MMO_RESULT_EMPTY);

    mmo_interpolation_config bad = mmo::default_interpolation_config();
    bad.capacity = 0;
    CHECK(mmo::Interpolator::create(bad).code() == MMO_RESULT_INVALID_CONFIG);

    mmo::Interpolator other;
    other = std::move(it);
    CHECK(other.valid() && !it.valid()); // NOLINT(bugprone-use-after-move)
    CHECK(it.clear().code() == MMO_RESULT_NULL_ARGUMENT);
}

void codec() {
    const mmo_snapshot_config config = mmo::default_snapshot_config();
    mmo::Result<mmo::SnapshotWriter> w = mmo::SnapshotWriter::create(config);
    mmo::Result<mmo::SnapshotReader> r = mmo::SnapshotReader::create(config);
    CHECK(w.ok() && r.ok());
    if (!w.ok() || !r.ok()) {
        return;
    }
    mmo::SnapshotWriter writer = std::move(w).value();
    mmo::SnapshotReader reader = std::move(r).value();

    // Entities placed in centimetres, as the game knows them.
    std::vector<mmo_snapshot_entity_in> entities(3);
    for (std::size_t i = 0; i < entities.size(); i++) {
        entities[i] = mmo_snapshot_entity_in{};
        entities[i].position_m =
            mmo::cm_to_m(mmo_vec3{1000.0f * static_cast<float>(i) + 12.3f, -456.7f, 89.0f});
        entities[i].yaw_rad = 0.5f * static_cast<float>(i);
        entities[i].entity_id = static_cast<uint32_t>(100 - i);
        entities[i].archetype = static_cast<uint16_t>(i);
    }
    mmo_character_state owner{};
    owner.position_m = mmo_vec3{1.0f, 2.0f, 3.0f};
    owner.on_ground = 0;
    std::vector<uint8_t> datagram(config.max_len_bytes);
    mmo::Result<mmo_snapshot_report> report = writer.encode(7, 0, &owner, entities, datagram);
    CHECK(report.ok() && report->records_written == 3);
    if (!report.ok()) {
        return;
    }
    std::array<uint32_t, 8> ids{};
    mmo::Result<std::size_t> written = writer.written_ids(ids);
    CHECK(written.ok() && *written == 3 && ids[0] == 98 && ids[2] == 100);

    mmo::Result<mmo_snapshot_info> info =
        reader.receive(mmo::span<const uint8_t>(datagram.data(), report->len_bytes));
    CHECK(info.ok() && info->outcome == MMO_SNAPSHOT_OUTCOME_APPLIED && info->tick == 7);
    CHECK(info.ok() && info->has_owner == 1 && info->owner.position_m.z == 3.0f);
    for (std::size_t i = 0; info.ok() && i < info->entity_count; i++) {
        mmo::Result<mmo_snapshot_entity> e = reader.entity(i);
        CHECK(e.ok());
        if (!e.ok()) {
            continue;
        }
        const mmo_snapshot_entity_in &src = entities[100 - e->entity_id];
        const mmo_vec3 got_cm = mmo::m_to_cm(e->position_m);
        const mmo_vec3 want_cm = mmo::m_to_cm(src.position_m);
        // 0.01 m precision: within half a centimetre.
        CHECK(near_f(got_cm.x, want_cm.x, 0.51f) && near_f(got_cm.y, want_cm.y, 0.51f) &&
              near_f(got_cm.z, want_cm.z, 0.51f));
        CHECK(e->entered == 1 && e->archetype == src.archetype);
    }
    CHECK(reader.entity(3).code() == MMO_RESULT_INVALID_ARGUMENT);

    // Inputs back to the server, acknowledging the snapshot.
    std::array<mmo_move_input, 2> inputs{};
    inputs[0].forward_q = 100;
    inputs[1].right_q = -100;
    std::array<uint8_t, 256> input_dgram{};
    mmo::Result<std::size_t> len = reader.encode_input(10, inputs, input_dgram);
    CHECK(len.ok() && *len > 0);
    mmo::Result<mmo_input_batch> batch =
        writer.receive_input(mmo::span<const uint8_t>(input_dgram.data(), len.value_or(0)));
    CHECK(batch.ok() && batch->first_seq == 10 && batch->count == 2 &&
          batch->inputs[1].right_q == -100);
    CHECK(writer.remove_entity(99).ok());
    report = writer.encode(8, 11, nullptr, mmo::span<const mmo_snapshot_entity_in>(entities.data(), 1),
                           datagram);
    CHECK(report.ok() && report->leaves_written == 1);
    info = reader.receive(mmo::span<const uint8_t>(datagram.data(), report.ok() ? report->len_bytes : 0));
    CHECK(info.ok() && info->leave_count == 1 && info->ack_input_seq == 11);
    std::array<uint32_t, 1> leaves{};
    mmo::Result<std::size_t> nleaves = reader.leaves(leaves);
    CHECK(nleaves.ok() && *nleaves == 1 && leaves[0] == 99);
    mmo::Result<mmo_snapshot_entity> delta = reader.entity(0);
    CHECK(delta.ok() && delta->entity_id == 100 && delta->entered == 0);

    // Errors: small buffers, garbage.
    std::array<uint8_t, 4> tiny{};
    CHECK(writer.encode(9, 11, nullptr, entities, tiny).code() == MMO_RESULT_BUFFER_TOO_SMALL);
    CHECK(reader.encode_input(12, inputs, tiny).code() == MMO_RESULT_BUFFER_TOO_SMALL);
    const std::array<uint8_t, 16> garbage{{0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0xFA, 0xF9, 0xF8, 0xF7,
                                           0xF6, 0xF5, 0xF4, 0xF3, 0xF2, 0xF1, 0xF0}};
    CHECK(reader.receive(garbage).code() == MMO_RESULT_DECODE_FAILED);
    CHECK(writer.receive_input(garbage).code() == MMO_RESULT_DECODE_FAILED);
    std::array<uint32_t, 0> none{};
    CHECK(reader.leaves(none).code() == MMO_RESULT_BUFFER_TOO_SMALL);

    mmo_snapshot_config bad = config;
    bad.yaw_bits = 2;
    CHECK(mmo::SnapshotWriter::create(bad).code() == MMO_RESULT_INVALID_CONFIG);
    CHECK(mmo::SnapshotReader::create(bad).code() == MMO_RESULT_INVALID_CONFIG);

    mmo::SnapshotReader moved(std::move(reader));
    CHECK(moved.valid() && !reader.valid()); // NOLINT(bugprone-use-after-move)
    CHECK(reader.receive(garbage).code() == MMO_RESULT_NULL_ARGUMENT);
    mmo_snapshot_writer *raw = writer.release();
    CHECK(raw != nullptr && !writer.valid());
    mmo_snapshot_writer_free(raw);
}

void replicator() {
    mmo::Result<mmo::Replicator> made = mmo::Replicator::create(mmo::default_replication_config());
    CHECK(made.ok());
    if (!made.ok()) {
        return;
    }
    mmo::Replicator rep = std::move(made).value();
    // Positions from the game in centimetres.
    CHECK(rep.update_entity(1, mmo::cm_to_m(mmo_vec3{12000.0f, 0.0f, 0.0f}), mmo::Category::Medium)
              .ok()); // 120 m
    CHECK(rep.update_entity(2, mmo::cm_to_m(mmo_vec3{1000.0f, 0.0f, 0.0f}), mmo::Category::Medium)
              .ok()); // 10 m
    CHECK(rep.update_entity(3, mmo::cm_to_m(mmo_vec3{0.0f, 18000.0f, 0.0f}),
                            mmo::Category::Critical)
              .ok()); // 180 m
    CHECK(rep.update_entity(0, mmo_vec3{}, mmo::Category::Low).code() ==
          MMO_RESULT_INVALID_ARGUMENT);
    CHECK(rep.update_entity(4, mmo_vec3{}, static_cast<mmo::Category>(9)).code() ==
          MMO_RESULT_INVALID_ENUM);
    CHECK(rep.add_client(7, mmo::viewer_position(mmo_vec3{})).ok());
    CHECK(rep.add_client(7, mmo::viewer_position(mmo_vec3{})).code() ==
          MMO_RESULT_ALREADY_EXISTS);

    for (uint32_t tick = 0; tick < 6; tick++) {
        mmo::Result<mmo_plan_info> plan = rep.plan_tick(tick, 7);
        CHECK(plan.ok());
        CHECK(rep.commit(7, mmo::span<const uint32_t>(), 0).ok());
    }
    mmo::Result<mmo_plan_info> plan = rep.plan_tick(6, 7);
    CHECK(plan.ok() && plan->candidate_count == 3);
    std::array<uint32_t, 8> order{};
    mmo::Result<std::size_t> n = rep.plan_ids(7, mmo::PlanList::Candidates, order);
    // Critical first although farthest, then near before far.
    CHECK(n.ok() && *n == 3 && order[0] == 3 && order[1] == 2 && order[2] == 1);
    CHECK(rep.commit(7, mmo::span<const uint32_t>(order.data(), 1), 60).ok());
    CHECK(rep.commit(7, {}, 0).code() == MMO_RESULT_EMPTY);

    mmo::Result<mmo_plan_info> sel = rep.select_within_budget(7, 7, 10000);
    CHECK(sel.ok() && sel->selected_count <= 1);
    std::array<uint32_t, 1> one{};
    std::array<uint32_t, 0> zero{};
    // A budget selection ranks only the candidates that fit (top-k), so the list's length
    // is what the plan reports: with a 1-byte estimate every eligible entity fits, and the
    // near one (30 Hz tier) is eligible on every tick.
    mmo::Result<mmo_plan_info> sel2 = rep.select_within_budget(8, 7, 1);
    CHECK(sel2.ok() && sel2->candidate_count >= 1);
    CHECK(rep.plan_ids(7, mmo::PlanList::Candidates, zero).code() ==
          MMO_RESULT_BUFFER_TOO_SMALL);
    mmo::Result<std::size_t> fits = rep.plan_ids(7, mmo::PlanList::Candidates, one);
    CHECK(sel2.ok() && fits.ok() == (sel2->candidate_count <= 1));
    CHECK(rep.plan_ids(7, static_cast<mmo::PlanList>(12), order).code() ==
          MMO_RESULT_INVALID_ENUM);
    CHECK(rep.plan_ids(8, mmo::PlanList::Left, order).code() == MMO_RESULT_NOT_FOUND);
    CHECK(rep.set_viewer(7, mmo::viewer_entity(2)).ok());
    CHECK(rep.remove_entity(1).ok());
    CHECK(rep.remove_entity(1).code() == MMO_RESULT_NOT_FOUND);
    CHECK(rep.remove_client(7).ok());
    CHECK(rep.remove_client(7).code() == MMO_RESULT_NOT_FOUND);

    mmo::Replicator other;
    other = std::move(rep);
    CHECK(other.valid() && !rep.valid()); // NOLINT(bugprone-use-after-move)
    CHECK(rep.plan_tick(1, 1).code() == MMO_RESULT_NULL_ARGUMENT);
}

void validation() {
    const mmo_vec3 origin{};
    const mmo_vec3 far = mmo::cm_to_m(mmo_vec3{10000.0f, 0.0f, 0.0f}); // 100 m
    mmo::Result<mmo_rejection_kind> k = mmo::check_speed(origin, far, 1.0f, 7.0f, 0.1f);
    CHECK(k.ok() && *k == MMO_REJECTION_KIND_SPEED);
    CHECK(std::strcmp(mmo::rejection_kind_name(*k), "speed") == 0);
    CHECK(std::strcmp(mmo::rejection_kind_name(static_cast<mmo_rejection_kind>(99)), "") == 0);
    k = mmo::check_teleport(origin, far, 50.0f);
    CHECK(k.ok() && *k == MMO_REJECTION_KIND_TELEPORT);
    k = mmo::check_resource_cost(10.0, 20.0);
    CHECK(k.ok() && *k == MMO_REJECTION_KIND_RESOURCE_COST);
    k = mmo::check_cooldown(10, 5);
    CHECK(k.ok() && *k == MMO_REJECTION_KIND_NONE);
    k = mmo::check_range(origin, far, 50.0f);
    CHECK(k.ok() && *k == MMO_REJECTION_KIND_RANGE);
    mmo_move_input input{};
    input.forward_q = -128;
    k = mmo::validate_input(input);
    CHECK(k.ok() && *k == MMO_REJECTION_KIND_AXIS_OUT_OF_RANGE);
}

struct Sink {
    int records = 0;
};

void log() {
    Sink sink;
    CHECK(mmo::set_log_callback(
              [](void *user, uint32_t, const char *, const char *) {
                  static_cast<Sink *>(user)->records++;
              },
              &sink)
              .ok());
    CHECK(mmo::set_log_level(MMO_LOG_LEVEL_DEBUG).ok());
    CHECK(mmo::set_log_level(static_cast<mmo_log_level>(6)).code() == MMO_RESULT_INVALID_ENUM);
    {
        mmo::Result<mmo::Interpolator> it =
            mmo::Interpolator::create(mmo::default_interpolation_config());
        CHECK(it.ok());
        const mmo_vec3 pos{};
        for (uint64_t k = 0; it.ok() && k < 5; k++) {
            CHECK(it->push(1000000 + k * 33333, 1050000 + k * 33333, pos, 0.0f).ok());
        }
        for (uint64_t k = 0; it.ok() && k < 3; k++) {
            CHECK(it->push(700000000 + k * 33333, 1300000 + k * 33333, pos, 0.0f).ok());
        }
    }
    mmo::Result<std::size_t> delivered = mmo::poll_log();
    CHECK(delivered.ok() && *delivered >= 1 && static_cast<int>(*delivered) == sink.records);
    CHECK(mmo::set_log_callback(nullptr, nullptr).ok());
}

} // namespace

int main() {
    sanitizer_is_active();
    versions();
    units();
    spans();
    status_and_result();
    predictor();
    interpolator();
    codec();
    replicator();
    validation();
    log();
    return CHECK_REPORT();
}
