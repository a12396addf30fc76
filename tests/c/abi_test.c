/* Exercises the C ABI from C11: compiled with gcc and clang under ASan + UBSan by
 * tests/integration/c_programs.rs. Prints "N passed, N failed".
 *
 * Covers: prediction + reconciliation (confirmed, corrected with a decaying visual offset,
 * stale, ack-ahead, reset, unacked inputs), interpolation (samples between two server states
 * lie on the segment between them), the codec (snapshot writer -> reader within the
 * quantization, input datagram encode/receive, acks turning enters into deltas, leaves),
 * replication priority (Critical first, near before far, budget selection), validation
 * verdicts with typed rejection kinds, the log callback, and every error path: NULL
 * arguments, invalid enum integers, small buffers, invalid configs, garbage datagrams,
 * _free(NULL), result messages for every code, the last error text, and outputs left
 * untouched on failure. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../c/check.h"
#include "mmo.h"

#define SENTINEL 0xAB

/* 1 when all `n` bytes at `p` still hold SENTINEL (the output was not written). */
static int untouched(const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) {
        if (b[i] != SENTINEL) {
            return 0;
        }
    }
    return 1;
}

static int same_input(const mmo_move_input *a, const mmo_move_input *b) {
    /* Field by field: the struct has a padding byte, so memcmp would compare garbage. */
    return a->forward_q == b->forward_q && a->right_q == b->right_q && a->yaw_q == b->yaw_q &&
           a->buttons == b->buttons;
}

static int near_f(float a, float b, float tol) { return fabsf(a - b) <= tol; }

/* The calling thread's last error text (static buffer, valid until the next call). */
static const char *last_error(void) {
    static char buf[512];
    size_t len = 0;
    buf[0] = '\0';
    if (mmo_last_error_message(buf, sizeof buf, &len) != MMO_RESULT_OK) {
        return "(last error unreadable)";
    }
    return buf;
}

static int last_error_contains(const char *needle) {
    const char *text = last_error();
    if (strstr(text, needle) != NULL) {
        return 1;
    }
    fprintf(stderr, "last error \"%s\" does not contain \"%s\"\n", text, needle);
    return 0;
}

static void sanitizer_is_active(void) {
    char *p = (char *)malloc(16);
    CHECK(p != NULL);
    /* The byte just past a 16-byte block is ASan's redzone: poisoned only under ASan. */
    CHECK(__asan_address_is_poisoned(p) == 0);
    CHECK(__asan_address_is_poisoned(p + 16) == 1);
    free(p);
}

static void abi_version(void) {
    CHECK(mmo_abi_version() == MMO_ABI_VERSION);
    CHECK(MMO_VERSION_MAJOR == 0 && MMO_VERSION_MINOR >= 1);
    CHECK(strlen(MMO_VERSION_STRING) >= 5);
}

/* ---------------------------------------------------------------------------------------- */
/* Prediction                                                                               */
/* ---------------------------------------------------------------------------------------- */

static mmo_predictor *new_predictor(void) {
    mmo_movement_config movement;
    mmo_prediction_config config;
    mmo_character_state initial;
    mmo_predictor *p = NULL;
    CHECK_OK(mmo_movement_config_default(&movement));
    CHECK_OK(mmo_prediction_config_default(&config));
    memset(&initial, 0, sizeof initial);
    initial.on_ground = 1;
    CHECK_OK(mmo_predictor_new(&movement, NULL, 0, &config, &initial, &p));
    CHECK(p != NULL);
    return p;
}

static void prediction_and_reconciliation(void) {
    mmo_predictor *p = new_predictor();
    mmo_move_input input;
    mmo_character_state states[6];
    mmo_character_state server;
    mmo_reconcile_result r;
    mmo_vec3 offset, decayed, render;
    mmo_move_input unacked[8];
    size_t count = 0;
    uint32_t first = 0, seq = 0, i;

    CHECK_OK(mmo_move_input_from_controls(1.0f, 0.0f, 0.0f, MMO_BUTTON_SPRINT, &input));
    CHECK(input.forward_q == 127 && input.right_q == 0 && input.buttons == MMO_BUTTON_SPRINT);
    for (i = 1; i <= 6; i++) {
        CHECK_OK(mmo_predictor_push_input(p, &input, &seq));
        CHECK(seq == i);
        CHECK_OK(mmo_predictor_predicted(p, &states[i - 1]));
    }
    CHECK(states[5].position_m.x > states[0].position_m.x);
    CHECK(states[5].position_m.x > 0.0f);

    /* The server agrees with input 2: confirmed, nothing replayed, no visual offset. */
    CHECK_OK(mmo_predictor_reconcile(p, 2, &states[1], &r));
    CHECK(r.outcome == MMO_RECONCILE_OUTCOME_CONFIRMED);
    CHECK(r.replayed_inputs == 0 && r.snapped == 0 && r.position_error_m == 0.0f);
    CHECK_OK(mmo_predictor_visual_offset(p, &offset));
    CHECK(offset.x == 0.0f && offset.y == 0.0f && offset.z == 0.0f);

    /* Unacknowledged inputs are 3..=6, oldest first; a capacity of 2 keeps the newest. */
    CHECK_OK(mmo_predictor_unacked_inputs(p, unacked, 8, &count, &first));
    CHECK(count == 4 && first == 3);
    CHECK(same_input(&unacked[0], &input) && same_input(&unacked[3], &input));
    CHECK_OK(mmo_predictor_unacked_inputs(p, unacked, 2, &count, &first));
    CHECK(count == 2 && first == 5);
    CHECK_OK(mmo_predictor_unacked_inputs(p, NULL, 0, &count, &first));
    CHECK(count == 0);

    /* The server says input 3 ended 0.5 m to the right: corrected, 3 replayed, and the jump
     * is hidden by a visual offset that decays with advance_visual (half-life 0.1 s). */
    server = states[2];
    server.position_m.y += 0.5f;
    CHECK_OK(mmo_predictor_reconcile(p, 3, &server, &r));
    CHECK(r.outcome == MMO_RECONCILE_OUTCOME_CORRECTED);
    CHECK(r.replayed_inputs == 3);
    CHECK(near_f(r.position_error_m, 0.5f, 1e-4f));
    CHECK(r.snapped == 0);
    CHECK_OK(mmo_predictor_predicted(p, &states[5]));
    CHECK(near_f(states[5].position_m.y, 0.5f, 1e-3f));
    CHECK_OK(mmo_predictor_visual_offset(p, &offset));
    CHECK(near_f(offset.y, -0.5f, 1e-3f));
    CHECK_OK(mmo_predictor_render_position(p, &render));
    CHECK(near_f(render.y, states[5].position_m.y + offset.y, 1e-5f));
    CHECK_OK(mmo_predictor_advance_visual(p, 0.1f));
    CHECK_OK(mmo_predictor_visual_offset(p, &decayed));
    CHECK(near_f(decayed.y, offset.y / 2.0f, 1e-3f));
    CHECK_OK(mmo_predictor_advance_visual(p, 0.0f));
    for (i = 0; i < 20; i++) {
        CHECK_OK(mmo_predictor_advance_visual(p, 0.1f));
    }
    CHECK_OK(mmo_predictor_visual_offset(p, &decayed));
    CHECK(fabsf(decayed.y) < 1e-3f);

    /* A duplicate ack is stale, not an error; an ack of an input never pushed is. */
    CHECK_OK(mmo_predictor_reconcile(p, 3, &server, &r));
    CHECK(r.outcome == MMO_RECONCILE_OUTCOME_STALE);
    memset(&r, SENTINEL, sizeof r);
    CHECK_RESULT(mmo_predictor_reconcile(p, 99, &server, &r), MMO_RESULT_ACK_AHEAD);
    CHECK(untouched(&r, sizeof r));
    CHECK(last_error_contains("99"));
    server.velocity_mps.z = NAN;
    CHECK_RESULT(mmo_predictor_reconcile(p, 4, &server, &r), MMO_RESULT_INVALID_ARGUMENT);
    CHECK(untouched(&r, sizeof r));
    server.velocity_mps.z = 0.0f;
    server.on_ground = 2;
    CHECK_RESULT(mmo_predictor_reconcile(p, 4, &server, &r), MMO_RESULT_INVALID_ARGUMENT);
    CHECK(last_error_contains("on_ground"));
    server.on_ground = 1;

    /* Invalid inputs are refused before prediction (the server would reject them). */
    {
        mmo_move_input bad = input;
        uint32_t seq_before = 0xDEADBEEF;
        bad.forward_q = -128;
        CHECK_RESULT(mmo_predictor_push_input(p, &bad, &seq_before), MMO_RESULT_INVALID_ARGUMENT);
        CHECK(seq_before == 0xDEADBEEF);
        bad = input;
        bad.right_q = 127; /* diagonal longer than 1 */
        CHECK_RESULT(mmo_predictor_push_input(p, &bad, &seq_before), MMO_RESULT_INVALID_ARGUMENT);
        bad = input;
        bad.buttons = 0x80;
        CHECK_RESULT(mmo_predictor_push_input(p, &bad, &seq_before), MMO_RESULT_INVALID_ARGUMENT);
        CHECK(seq_before == 0xDEADBEEF);
        CHECK_OK(mmo_predictor_push_input(p, &input, &seq_before));
        CHECK(seq_before == 7);
    }
    CHECK_RESULT(mmo_predictor_advance_visual(p, -1.0f), MMO_RESULT_INVALID_ARGUMENT);
    CHECK_RESULT(mmo_predictor_advance_visual(p, NAN), MMO_RESULT_INVALID_ARGUMENT);
    CHECK_RESULT(mmo_predictor_advance_visual(p, INFINITY), MMO_RESULT_INVALID_ARGUMENT);

    /* Reset: history gone, offset cleared, sequences continue. */
    CHECK_OK(mmo_predictor_reset(p, &server));
    CHECK_OK(mmo_predictor_visual_offset(p, &offset));
    CHECK(offset.x == 0.0f && offset.y == 0.0f && offset.z == 0.0f);
    CHECK_OK(mmo_predictor_unacked_inputs(p, unacked, 8, &count, &first));
    CHECK(count == 0 && first == 0);
    CHECK_OK(mmo_predictor_push_input(p, &input, &seq));
    CHECK(seq == 8);
    server.position_m.x = INFINITY;
    CHECK_RESULT(mmo_predictor_reset(p, &server), MMO_RESULT_INVALID_ARGUMENT);

    mmo_predictor_free(p);
}

static void prediction_errors(void) {
    mmo_movement_config movement, bad_movement;
    mmo_prediction_config config, bad_config;
    mmo_character_state initial, state;
    mmo_predictor *p = new_predictor();
    mmo_predictor *out = (mmo_predictor *)(uintptr_t)0x1; /* must stay untouched */
    mmo_move_input input;
    mmo_reconcile_result r;
    mmo_vec3 v;
    mmo_aabb blocker;
    size_t count;
    uint32_t seq, first;

    CHECK_OK(mmo_movement_config_default(&movement));
    CHECK_OK(mmo_prediction_config_default(&config));
    CHECK(config.tick_rate_hz == 30 && config.history_len == 128);
    CHECK(movement.walk_speed_mps > 0.0f && movement.sprint_speed_mps >= movement.walk_speed_mps);
    memset(&initial, 0, sizeof initial);
    initial.on_ground = 1;
    memset(&input, 0, sizeof input);

    /* NULL arguments, each named in the last error. */
    CHECK_RESULT(mmo_movement_config_default(NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_prediction_config_default(NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_new(NULL, NULL, 0, &config, &initial, &out),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK(last_error_contains("movement"));
    CHECK_RESULT(mmo_predictor_new(&movement, NULL, 1, &config, &initial, &out),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK(last_error_contains("blockers"));
    CHECK_RESULT(mmo_predictor_new(&movement, NULL, 0, NULL, &initial, &out),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_new(&movement, NULL, 0, &config, NULL, &out),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_new(&movement, NULL, 0, &config, &initial, NULL),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK(out == (mmo_predictor *)(uintptr_t)0x1);
    CHECK_RESULT(mmo_predictor_push_input(NULL, &input, &seq), MMO_RESULT_NULL_ARGUMENT);
    CHECK(last_error_contains("predictor"));
    CHECK_RESULT(mmo_predictor_push_input(p, NULL, &seq), MMO_RESULT_NULL_ARGUMENT);
    CHECK(last_error_contains("input"));
    CHECK_RESULT(mmo_predictor_push_input(p, &input, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK(last_error_contains("out_seq"));
    CHECK_RESULT(mmo_predictor_predicted(NULL, &state), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_predicted(p, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_reconcile(NULL, 0, &initial, &r), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_reconcile(p, 0, NULL, &r), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_reconcile(p, 0, &initial, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_advance_visual(NULL, 0.1f), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_visual_offset(NULL, &v), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_visual_offset(p, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_render_position(NULL, &v), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_render_position(p, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_reset(NULL, &initial), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_reset(p, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_unacked_inputs(NULL, NULL, 0, &count, &first),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_unacked_inputs(p, NULL, 4, &count, &first),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_unacked_inputs(p, NULL, 0, NULL, &first),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_predictor_unacked_inputs(p, NULL, 0, &count, NULL),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_move_input_from_controls(0.0f, 0.0f, 0.0f, 0, NULL),
                 MMO_RESULT_NULL_ARGUMENT);

    /* Invalid configs name the field; the output handle is untouched. */
    bad_movement = movement;
    bad_movement.walk_speed_mps = 0.0f;
    CHECK_RESULT(mmo_predictor_new(&bad_movement, NULL, 0, &config, &initial, &out),
                 MMO_RESULT_INVALID_CONFIG);
    CHECK(last_error_contains("walk_speed_mps"));
    bad_movement = movement;
    bad_movement.gravity_mps2 = NAN;
    CHECK_RESULT(mmo_predictor_new(&bad_movement, NULL, 0, &config, &initial, &out),
                 MMO_RESULT_INVALID_CONFIG);
    bad_config = config;
    bad_config.tick_rate_hz = 5;
    CHECK_RESULT(mmo_predictor_new(&movement, NULL, 0, &bad_config, &initial, &out),
                 MMO_RESULT_INVALID_CONFIG);
    bad_config = config;
    bad_config.history_len = 0;
    CHECK_RESULT(mmo_predictor_new(&movement, NULL, 0, &bad_config, &initial, &out),
                 MMO_RESULT_INVALID_CONFIG);
    CHECK(last_error_contains("history_len"));
    bad_config = config;
    bad_config.correction_half_life_s = -1.0f;
    CHECK_RESULT(mmo_predictor_new(&movement, NULL, 0, &bad_config, &initial, &out),
                 MMO_RESULT_INVALID_CONFIG);
    /* An inverted blocker is a config error; a valid one is accepted. */
    memset(&blocker, 0, sizeof blocker);
    blocker.min_m.x = 5.0f;
    blocker.max_m.x = 4.0f;
    blocker.max_m.y = 1.0f;
    blocker.max_m.z = 1.0f;
    CHECK_RESULT(mmo_predictor_new(&movement, &blocker, 1, &config, &initial, &out),
                 MMO_RESULT_INVALID_CONFIG);
    /* Non-finite initial state or a non-0/1 bool: invalid argument. */
    state = initial;
    state.position_m.z = NAN;
    CHECK_RESULT(mmo_predictor_new(&movement, NULL, 0, &config, &state, &out),
                 MMO_RESULT_INVALID_ARGUMENT);
    state = initial;
    state.on_ground = 7;
    CHECK_RESULT(mmo_predictor_new(&movement, NULL, 0, &config, &state, &out),
                 MMO_RESULT_INVALID_ARGUMENT);
    CHECK(out == (mmo_predictor *)(uintptr_t)0x1);
    blocker.max_m.x = 6.0f;
    out = NULL;
    CHECK_OK(mmo_predictor_new(&movement, &blocker, 1, &config, &initial, &out));
    CHECK(out != NULL);
    mmo_predictor_free(out);

    /* Outputs are untouched on failure. */
    memset(&state, SENTINEL, sizeof state);
    CHECK_RESULT(mmo_predictor_predicted(NULL, &state), MMO_RESULT_NULL_ARGUMENT);
    CHECK(untouched(&state, sizeof state));
    memset(&input, SENTINEL, sizeof input);
    CHECK_RESULT(mmo_move_input_from_controls(0.0f, 0.0f, 0.0f, 0x40, &input),
                 MMO_RESULT_INVALID_ARGUMENT);
    CHECK(untouched(&input, sizeof input));
    memset(&v, SENTINEL, sizeof v);
    CHECK_RESULT(mmo_predictor_visual_offset(NULL, &v), MMO_RESULT_NULL_ARGUMENT);
    CHECK(untouched(&v, sizeof v));
    count = 77;
    first = 77;
    CHECK_RESULT(mmo_predictor_unacked_inputs(p, NULL, 0, &count, NULL),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK(count == 77 && first == 77);

    /* Controls: NaN axes become 0, the keyboard diagonal is scaled to length 1 and passes
     * validation, yaw wraps into [0, 2 pi). */
    {
        mmo_rejection_kind kind = 99;
        CHECK_OK(mmo_move_input_from_controls(1.0f, 1.0f, -0.5f, MMO_BUTTON_JUMP, &input));
        CHECK(input.forward_q == input.right_q && input.forward_q > 85 && input.forward_q < 95);
        CHECK(input.yaw_q > 60000);
        CHECK_OK(mmo_validate_input(&input, &kind));
        CHECK(kind == MMO_REJECTION_KIND_NONE);
        CHECK_OK(mmo_move_input_from_controls(NAN, 2.0f, NAN, 0, &input));
        CHECK(input.forward_q == 0 && input.right_q == 127 && input.yaw_q == 0);
    }

    mmo_predictor_free(p);
}

/* ---------------------------------------------------------------------------------------- */
/* Interpolation                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void interpolation(void) {
    mmo_interpolation_config config, bad;
    mmo_interpolator *it = NULL;
    mmo_interpolator *out = (mmo_interpolator *)(uintptr_t)0x1;
    mmo_push_outcome outcome = 99;
    mmo_interp_output o;
    const uint64_t tick_us = 33333;
    uint64_t k;
    int between = 0;
    float last_x = -1e9f;
    mmo_vec3 pos;

    CHECK_OK(mmo_interpolation_config_default(&config));
    CHECK(config.capacity == 32 && config.min_delay_us < config.max_delay_us);
    CHECK_OK(mmo_interpolator_new(&config, &it));

    memset(&o, SENTINEL, sizeof o);
    CHECK_RESULT(mmo_interpolator_sample(it, 0, &o), MMO_RESULT_EMPTY);
    CHECK(untouched(&o, sizeof o));

    /* Server states on the line y = 2x + 1, yaw = 0.01 x, 0.5 m of x per 30 Hz tick
     * (33.5 m/s: below the 50 m/s teleport speed, so samples slide instead of snapping),
     * arriving 50 ms after their stamp, rendered at four frames between arrivals. Every drawn
     * position must be the lerp of two neighbouring samples: on that line, never ahead of
     * the newest sample, never backwards, and strictly between two samples at most frames. */
    for (k = 0; k < 40; k++) {
        uint64_t server_time = 1000000 + k * tick_us;
        uint64_t arrival = server_time + 50000;
        uint64_t frame;
        pos.x = 0.5f * (float)k;
        pos.y = 2.0f * pos.x + 1.0f;
        pos.z = 0.25f;
        CHECK_OK(mmo_interpolator_push(it, server_time, arrival, &pos, 0.01f * pos.x, &outcome));
        CHECK(outcome == MMO_PUSH_OUTCOME_ACCEPTED);
        for (frame = 0; frame < 4; frame++) {
            uint64_t now = arrival + frame * (tick_us / 4);
            CHECK_OK(mmo_interpolator_sample(it, now, &o));
            CHECK(o.position_m.x <= pos.x + 1e-3f);
            CHECK(o.position_m.x >= last_x - 1e-4f);
            CHECK(near_f(o.position_m.y, 2.0f * o.position_m.x + 1.0f, 2e-3f));
            CHECK(near_f(o.position_m.z, 0.25f, 1e-5f));
            CHECK(near_f(o.yaw_rad, 0.01f * o.position_m.x, 1e-4f));
            if (k >= 10) {
                float in_ticks = o.position_m.x / 0.5f;
                float frac = in_ticks - floorf(in_ticks);
                CHECK(o.extrapolating == 0);
                CHECK(o.position_m.x > pos.x - 2.5f);
                if (frac > 0.05f && frac < 0.95f) {
                    between++;
                }
            }
            last_x = o.position_m.x;
        }
    }
    CHECK(between >= 60); /* 3 of the 4 frames of each of the last 30 ticks */

    /* A jump faster than teleport_speed_mps snaps instead of sliding: no frame is drawn
     * half-way across it. */
    {
        uint64_t base = 1000000 + 40 * tick_us;
        uint64_t frame;
        pos.x = 500.0f;
        pos.y = 2.0f * pos.x + 1.0f;
        for (k = 0; k < 8; k++) {
            CHECK_OK(mmo_interpolator_push(it, base + k * tick_us, base + k * tick_us + 50000,
                                           &pos, 0.0f, &outcome));
            for (frame = 0; frame < 4; frame++) {
                CHECK_OK(mmo_interpolator_sample(it, base + k * tick_us + 50000 + frame * 8000,
                                                 &o));
                CHECK(o.position_m.x <= 19.5f + 1e-3f || o.position_m.x == 500.0f);
            }
        }
        CHECK(o.position_m.x == 500.0f);
    }

    /* Pushing what the network produces: a duplicate, a stale sample, a NaN. */
    CHECK_OK(mmo_interpolator_push(it, 1000000 + 47 * tick_us, 1000000 + 47 * tick_us + 50000,
                                   &pos, 0.0f, &outcome));
    CHECK(outcome == MMO_PUSH_OUTCOME_DUPLICATE);
    CHECK_OK(mmo_interpolator_push(it, 1000000 + 2 * tick_us, 1000000 + 48 * tick_us, &pos,
                                   0.0f, &outcome));
    CHECK(outcome == MMO_PUSH_OUTCOME_STALE);
    pos.x = NAN;
    CHECK_OK(mmo_interpolator_push(it, 1000000 + 50 * tick_us, 1000000 + 50 * tick_us + 50000,
                                   &pos, 0.0f, &outcome));
    CHECK(outcome == MMO_PUSH_OUTCOME_INVALID);
    pos.x = 0.0f;
    CHECK_OK(mmo_interpolator_push(it, 1000000 + 50 * tick_us, 1000000 + 50 * tick_us + 50000,
                                   &pos, INFINITY, &outcome));
    CHECK(outcome == MMO_PUSH_OUTCOME_INVALID);

    /* Extrapolation past the newest sample, then clear. */
    CHECK_OK(mmo_interpolator_sample(it, 1000000 + 70 * tick_us, &o));
    CHECK(o.extrapolating == 1);
    CHECK_OK(mmo_interpolator_clear(it));
    CHECK_RESULT(mmo_interpolator_sample(it, 1000000 + 71 * tick_us, &o), MMO_RESULT_EMPTY);

    /* A single sample is returned as is. */
    pos.x = 3.0f;
    pos.y = 4.0f;
    pos.z = 5.0f;
    CHECK_OK(mmo_interpolator_push(it, 9000000, 9050000, &pos, 1.5f, &outcome));
    CHECK(outcome == MMO_PUSH_OUTCOME_ACCEPTED);
    CHECK_OK(mmo_interpolator_sample(it, 9050000, &o));
    CHECK(o.position_m.x == 3.0f && o.position_m.y == 4.0f && o.position_m.z == 5.0f);
    CHECK(near_f(o.yaw_rad, 1.5f, 1e-6f));

    /* Errors. */
    CHECK_RESULT(mmo_interpolation_config_default(NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_interpolator_new(NULL, &out), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_interpolator_new(&config, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_interpolator_push(NULL, 0, 0, &pos, 0.0f, &outcome),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_interpolator_push(it, 0, 0, NULL, 0.0f, &outcome), MMO_RESULT_NULL_ARGUMENT);
    outcome = 42;
    CHECK_RESULT(mmo_interpolator_push(it, 0, 0, &pos, 0.0f, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_interpolator_push(NULL, 0, 0, &pos, 0.0f, &outcome),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK(outcome == 42);
    CHECK_RESULT(mmo_interpolator_sample(NULL, 0, &o), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_interpolator_sample(it, 0, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_interpolator_clear(NULL), MMO_RESULT_NULL_ARGUMENT);
    bad = config;
    bad.capacity = 1;
    CHECK_RESULT(mmo_interpolator_new(&bad, &out), MMO_RESULT_INVALID_CONFIG);
    CHECK(last_error_contains("capacity"));
    bad = config;
    bad.max_delay_us = bad.min_delay_us - 1;
    CHECK_RESULT(mmo_interpolator_new(&bad, &out), MMO_RESULT_INVALID_CONFIG);
    bad = config;
    bad.teleport_distance_m = NAN;
    CHECK_RESULT(mmo_interpolator_new(&bad, &out), MMO_RESULT_INVALID_CONFIG);
    bad = config;
    bad.teleport_speed_mps = 0.0f;
    CHECK_RESULT(mmo_interpolator_new(&bad, &out), MMO_RESULT_INVALID_CONFIG);
    CHECK(out == (mmo_interpolator *)(uintptr_t)0x1);

    mmo_interpolator_free(it);
}

/* ---------------------------------------------------------------------------------------- */
/* Codec                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void codec_round_trip(void) {
    mmo_snapshot_config config, bad;
    mmo_snapshot_writer *w = NULL;
    mmo_snapshot_reader *r = NULL;
    mmo_snapshot_writer *w_out = (mmo_snapshot_writer *)(uintptr_t)0x1;
    mmo_snapshot_reader *r_out = (mmo_snapshot_reader *)(uintptr_t)0x1;
    uint8_t buf[1200];
    uint8_t dgram[256];
    size_t dgram_len = 0;
    mmo_snapshot_report report, before;
    mmo_snapshot_info info;
    mmo_snapshot_entity e;
    mmo_input_batch batch;
    mmo_character_state owner;
    mmo_snapshot_entity_in ents[3];
    mmo_move_input inputs[3];
    uint32_t ids[8];
    size_t count = 0, i;
    const float pos_tol = 0.005f + 1e-4f; /* half the 0.01 m step */
    const float yaw_tol = 3.14159265f / 1024.0f + 1e-4f; /* half a 10-bit step */

    CHECK_OK(mmo_snapshot_config_default(&config));
    CHECK(config.max_len_bytes == 1140 && config.yaw_bits == 10 && config.second_order == 0);
    CHECK(near_f(config.precision_m, 0.01f, 1e-7f));
    CHECK_OK(mmo_snapshot_writer_new(&config, &w));
    CHECK_OK(mmo_snapshot_reader_new(&config, &r));

    memset(&owner, 0, sizeof owner);
    owner.position_m.x = 1.2345f;
    owner.position_m.y = -3.5f;
    owner.velocity_mps.x = 0.7f;
    owner.yaw_rad = 2.0f;
    owner.on_ground = 1;
    memset(ents, 0, sizeof ents);
    ents[0].position_m.x = 10.123f;
    ents[0].position_m.y = 5.456f;
    ents[0].position_m.z = 0.789f;
    ents[0].yaw_rad = 1.0f;
    ents[0].entity_id = 9;
    ents[0].archetype = 3;
    ents[0].flags = 0x5A;
    ents[1].position_m.x = -4.0f;
    ents[1].position_m.y = 2.004f;
    ents[1].position_m.z = 1.0f;
    ents[1].yaw_rad = 6.0f;
    ents[1].entity_id = 7;
    ents[1].archetype = 2;
    ents[2].position_m.x = 100.0f;
    ents[2].position_m.y = -250.5f;
    ents[2].yaw_rad = 0.1f;
    ents[2].entity_id = 12;
    ents[2].archetype = 65535;
    ents[2].flags = 0xFF;

    /* Snapshot 0: the owner (lossless) and three entities (in any order: sorted by id). */
    CHECK_OK(mmo_snapshot_writer_encode(w, 100, 0, &owner, ents, 3, buf, sizeof buf, &report));
    CHECK(report.records_written == 3 && report.records_skipped == 0 && report.seq == 0);
    CHECK(report.len_bytes > 0 && report.len_bytes <= sizeof buf);
    CHECK_OK(mmo_snapshot_writer_written_ids(w, ids, 8, &count));
    CHECK(count == 3 && ids[0] == 7 && ids[1] == 9 && ids[2] == 12);

    CHECK_OK(mmo_snapshot_reader_receive(r, buf, report.len_bytes, &info));
    CHECK(info.outcome == MMO_SNAPSHOT_OUTCOME_APPLIED);
    CHECK(info.tick == 100 && info.ack_input_seq == 0 && info.seq == 0);
    CHECK(info.has_owner == 1 && info.entity_count == 3 && info.leave_count == 0);
    CHECK(memcmp(&info.owner, &owner, sizeof owner) == 0 || /* padding may differ */
          (info.owner.position_m.x == owner.position_m.x &&
           info.owner.position_m.y == owner.position_m.y &&
           info.owner.velocity_mps.x == owner.velocity_mps.x &&
           info.owner.yaw_rad == owner.yaw_rad && info.owner.on_ground == 1));
    for (i = 0; i < 3; i++) {
        const mmo_snapshot_entity_in *src = NULL;
        size_t j;
        CHECK_OK(mmo_snapshot_reader_entity(r, i, &e));
        for (j = 0; j < 3; j++) {
            if (ents[j].entity_id == e.entity_id) {
                src = &ents[j];
            }
        }
        CHECK(src != NULL);
        if (src == NULL) {
            continue;
        }
        CHECK(e.entity_id == ids[i]);
        CHECK(e.entered == 1 && e.archetype == src->archetype && e.flags == src->flags);
        CHECK(near_f(e.position_m.x, src->position_m.x, pos_tol));
        CHECK(near_f(e.position_m.y, src->position_m.y, pos_tol));
        CHECK(near_f(e.position_m.z, src->position_m.z, pos_tol));
        CHECK(near_f(e.yaw_rad, src->yaw_rad, yaw_tol));
    }
    memset(&e, SENTINEL, sizeof e);
    CHECK_RESULT(mmo_snapshot_reader_entity(r, 3, &e), MMO_RESULT_INVALID_ARGUMENT);
    CHECK(untouched(&e, sizeof e));

    /* The same datagram again is stale (not an error). */
    CHECK_OK(mmo_snapshot_reader_receive(r, buf, report.len_bytes, &info));
    CHECK(info.outcome == MMO_SNAPSHOT_OUTCOME_STALE && info.entity_count == 0);

    /* The client sends inputs 41..43 (acknowledging snapshot 0); the server decodes them. */
    memset(inputs, 0, sizeof inputs);
    inputs[0].forward_q = 127;
    inputs[1].forward_q = 127;
    inputs[1].yaw_q = 100;
    inputs[1].buttons = MMO_BUTTON_JUMP;
    inputs[2].right_q = -127;
    inputs[2].buttons = MMO_BUTTON_SPRINT;
    CHECK_OK(mmo_snapshot_reader_encode_input(r, 41, inputs, 3, dgram, sizeof dgram,
                                              &dgram_len));
    CHECK(dgram_len > 0 && dgram_len <= sizeof dgram);
    CHECK_OK(mmo_snapshot_writer_receive_input(w, dgram, dgram_len, &batch));
    CHECK(batch.first_seq == 41 && batch.count == 3);
    CHECK(same_input(&batch.inputs[0], &inputs[0]) && same_input(&batch.inputs[1], &inputs[1]) &&
          same_input(&batch.inputs[2], &inputs[2]));

    /* Snapshot 1 is delta-coded against the acknowledged snapshot 0: records are updates,
     * not enters; entity 7 was removed, so a leave record carries it. */
    CHECK_OK(mmo_snapshot_writer_remove_entity(w, 7));
    CHECK_OK(mmo_snapshot_writer_remove_entity(w, 4242)); /* unknown ids are ignored */
    ents[0].position_m.x += 0.5f;
    CHECK_OK(mmo_snapshot_writer_encode(w, 101, 43, &owner, ents, 1, buf, sizeof buf, &report));
    CHECK(report.records_written == 1 && report.leaves_written == 1 && report.seq == 1);
    CHECK_OK(mmo_snapshot_reader_receive(r, buf, report.len_bytes, &info));
    CHECK(info.outcome == MMO_SNAPSHOT_OUTCOME_APPLIED && info.seq == 1);
    CHECK(info.ack_input_seq == 43 && info.entity_count == 1 && info.leave_count == 1);
    CHECK_OK(mmo_snapshot_reader_entity(r, 0, &e));
    CHECK(e.entity_id == 9 && e.entered == 0 && e.flags == 0x5A);
    CHECK(near_f(e.position_m.x, ents[0].position_m.x, pos_tol));
    count = 99;
    CHECK_RESULT(mmo_snapshot_reader_leaves(r, ids, 0, &count), MMO_RESULT_BUFFER_TOO_SMALL);
    CHECK(count == 99);
    CHECK_OK(mmo_snapshot_reader_leaves(r, ids, 8, &count));
    CHECK(count == 1 && ids[0] == 7);

    /* Without an owner. */
    CHECK_OK(mmo_snapshot_writer_encode(w, 102, 43, NULL, ents, 1, buf, sizeof buf, &report));
    CHECK_OK(mmo_snapshot_reader_receive(r, buf, report.len_bytes, &info));
    CHECK(info.outcome == MMO_SNAPSHOT_OUTCOME_APPLIED && info.has_owner == 0);

    /* Failures consume nothing and write nothing. */
    before = report;
    memset(dgram, SENTINEL, sizeof dgram);
    CHECK_RESULT(mmo_snapshot_writer_encode(w, 103, 43, NULL, ents, 1, dgram, 8, &report),
                 MMO_RESULT_BUFFER_TOO_SMALL);
    CHECK(untouched(dgram, sizeof dgram));
    CHECK(memcmp(&report, &before, sizeof report) == 0);
    CHECK_OK(mmo_snapshot_writer_encode(w, 103, 43, NULL, ents, 1, buf, sizeof buf, &report));
    CHECK(report.seq == 3); /* the failed encode did not consume a sequence */
    {
        mmo_snapshot_entity_in dup[2];
        dup[0] = ents[0];
        dup[1] = ents[0];
        CHECK_RESULT(mmo_snapshot_writer_encode(w, 104, 43, NULL, dup, 2, buf, sizeof buf,
                                                &report),
                     MMO_RESULT_INVALID_ARGUMENT);
        dup[0].entity_id = 0;
        CHECK_RESULT(mmo_snapshot_writer_encode(w, 104, 43, NULL, dup, 1, buf, sizeof buf,
                                                &report),
                     MMO_RESULT_INVALID_ARGUMENT);
        dup[0] = ents[0];
        dup[0].yaw_rad = NAN;
        CHECK_RESULT(mmo_snapshot_writer_encode(w, 104, 43, NULL, dup, 1, buf, sizeof buf,
                                                &report),
                     MMO_RESULT_INVALID_ARGUMENT);
        owner.on_ground = 3;
        CHECK_RESULT(mmo_snapshot_writer_encode(w, 104, 43, &owner, ents, 1, buf, sizeof buf,
                                                &report),
                     MMO_RESULT_INVALID_ARGUMENT);
        owner.on_ground = 1;
    }
    memset(dgram, SENTINEL, sizeof dgram);
    dgram_len = 12345;
    CHECK_RESULT(mmo_snapshot_reader_encode_input(r, 50, inputs, 3, dgram, 4, &dgram_len),
                 MMO_RESULT_BUFFER_TOO_SMALL);
    CHECK(untouched(dgram, sizeof dgram) && dgram_len == 12345);
    CHECK_RESULT(mmo_snapshot_reader_encode_input(r, 50, inputs, MMO_MAX_INPUTS_PER_DATAGRAM + 1,
                                                  dgram, sizeof dgram, &dgram_len),
                 MMO_RESULT_INVALID_ARGUMENT);
    CHECK_OK(mmo_snapshot_reader_encode_input(r, 50, NULL, 0, dgram, sizeof dgram, &dgram_len));
    CHECK_OK(mmo_snapshot_writer_receive_input(w, dgram, dgram_len, &batch));
    CHECK(batch.count == 0);

    /* Garbage and wrong-kind datagrams do not decode; the current snapshot stays. */
    {
        uint8_t garbage[64];
        mmo_snapshot_info kept;
        memset(garbage, 0xFF, sizeof garbage);
        memset(&kept, SENTINEL, sizeof kept);
        CHECK_RESULT(mmo_snapshot_reader_receive(r, garbage, sizeof garbage, &kept),
                     MMO_RESULT_DECODE_FAILED);
        CHECK(untouched(&kept, sizeof kept));
        CHECK_RESULT(mmo_snapshot_reader_receive(r, garbage, 1, &kept), MMO_RESULT_DECODE_FAILED);
        CHECK_RESULT(mmo_snapshot_reader_receive(r, NULL, 0, &kept), MMO_RESULT_DECODE_FAILED);
        CHECK_RESULT(mmo_snapshot_reader_receive(r, dgram, dgram_len, &kept),
                     MMO_RESULT_DECODE_FAILED); /* an input datagram is not a snapshot */
        CHECK_RESULT(mmo_snapshot_reader_receive(r, buf, report.len_bytes / 2, &kept),
                     MMO_RESULT_DECODE_FAILED); /* truncated */
        memset(&batch, SENTINEL, sizeof batch);
        CHECK_RESULT(mmo_snapshot_writer_receive_input(w, garbage, sizeof garbage, &batch),
                     MMO_RESULT_DECODE_FAILED);
        CHECK(untouched(&batch, sizeof batch));
        CHECK_RESULT(mmo_snapshot_writer_receive_input(w, buf, report.len_bytes, &batch),
                     MMO_RESULT_DECODE_FAILED); /* a snapshot is not an input datagram */
        CHECK_RESULT(mmo_snapshot_writer_receive_input(w, NULL, 0, &batch),
                     MMO_RESULT_DECODE_FAILED);
        /* A quick fuzz over truncations and bit flips of a real datagram: never crashes
         * (ASan/UBSan watch), always OK, STALE-as-OK, DECODE_FAILED or UNKNOWN_BASELINE. */
        for (i = 0; i < report.len_bytes * 8 && i < 2000; i++) {
            uint8_t copy[1200];
            mmo_result res;
            memcpy(copy, buf, report.len_bytes);
            copy[i / 8] ^= (uint8_t)(1u << (i % 8));
            res = mmo_snapshot_reader_receive(r, copy, report.len_bytes - (i % 3), &kept);
            CHECK(res == MMO_RESULT_OK || res == MMO_RESULT_DECODE_FAILED ||
                  res == MMO_RESULT_UNKNOWN_BASELINE);
        }
        CHECK_OK(mmo_snapshot_reader_entity(r, 0, &e));
    }

    /* NULL arguments. */
    CHECK_RESULT(mmo_snapshot_config_default(NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_writer_new(NULL, &w_out), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_writer_new(&config, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_new(NULL, &r_out), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_new(&config, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_writer_encode(NULL, 0, 0, NULL, NULL, 0, buf, sizeof buf, &report),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_writer_encode(w, 105, 0, NULL, NULL, 2, buf, sizeof buf, &report),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_writer_encode(w, 105, 0, NULL, NULL, 0, NULL, sizeof buf, &report),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_writer_encode(w, 105, 0, NULL, NULL, 0, buf, sizeof buf, NULL),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_writer_written_ids(NULL, ids, 8, &count), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_writer_written_ids(w, NULL, 8, &count), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_writer_written_ids(w, ids, 8, NULL), MMO_RESULT_NULL_ARGUMENT);
    count = 4242; /* one record was written: capacity 0 is too small, nothing written */
    CHECK_RESULT(mmo_snapshot_writer_written_ids(w, NULL, 0, &count),
                 MMO_RESULT_BUFFER_TOO_SMALL);
    CHECK(count == 4242);
    CHECK_OK(mmo_snapshot_writer_written_ids(w, ids, 1, &count));
    CHECK(count == 1 && ids[0] == 9);
    CHECK_RESULT(mmo_snapshot_writer_remove_entity(NULL, 1), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_writer_receive_input(NULL, dgram, dgram_len, &batch),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_writer_receive_input(w, NULL, 5, &batch), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_writer_receive_input(w, dgram, dgram_len, NULL),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_receive(NULL, buf, report.len_bytes, &info),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_receive(r, NULL, 5, &info), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_receive(r, buf, report.len_bytes, NULL),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_entity(NULL, 0, &e), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_entity(r, 0, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_leaves(NULL, ids, 8, &count), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_leaves(r, NULL, 8, &count), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_leaves(r, ids, 8, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_encode_input(NULL, 1, inputs, 1, dgram, sizeof dgram,
                                                  &dgram_len),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_encode_input(r, 1, NULL, 1, dgram, sizeof dgram, &dgram_len),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_encode_input(r, 1, inputs, 1, NULL, sizeof dgram,
                                                  &dgram_len),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_snapshot_reader_encode_input(r, 1, inputs, 1, dgram, sizeof dgram, NULL),
                 MMO_RESULT_NULL_ARGUMENT);

    /* Invalid configs. */
    bad = config;
    bad.yaw_bits = 40;
    CHECK_RESULT(mmo_snapshot_writer_new(&bad, &w_out), MMO_RESULT_INVALID_CONFIG);
    CHECK(last_error_contains("yaw_bits"));
    CHECK_RESULT(mmo_snapshot_reader_new(&bad, &r_out), MMO_RESULT_INVALID_CONFIG);
    bad = config;
    bad.second_order = 2;
    CHECK_RESULT(mmo_snapshot_writer_new(&bad, &w_out), MMO_RESULT_INVALID_CONFIG);
    CHECK_RESULT(mmo_snapshot_reader_new(&bad, &r_out), MMO_RESULT_INVALID_CONFIG);
    bad = config;
    bad.precision_m = 0.0f;
    CHECK_RESULT(mmo_snapshot_writer_new(&bad, &w_out), MMO_RESULT_INVALID_CONFIG);
    bad = config;
    bad.max_len_bytes = 10;
    CHECK_RESULT(mmo_snapshot_reader_new(&bad, &r_out), MMO_RESULT_INVALID_CONFIG);
    bad = config;
    bad.position_k = 9;
    CHECK_RESULT(mmo_snapshot_writer_new(&bad, &w_out), MMO_RESULT_INVALID_CONFIG);
    CHECK(w_out == (mmo_snapshot_writer *)(uintptr_t)0x1);
    CHECK(r_out == (mmo_snapshot_reader *)(uintptr_t)0x1);

    mmo_snapshot_writer_free(w);
    mmo_snapshot_reader_free(r);
}

/* ---------------------------------------------------------------------------------------- */
/* Replication priority                                                                     */
/* ---------------------------------------------------------------------------------------- */

static int index_of(const uint32_t *ids, size_t n, uint32_t id) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (ids[i] == id) {
            return (int)i;
        }
    }
    return -1;
}

static void replication_priority(void) {
    mmo_replication_config config, bad;
    mmo_replicator *rep = NULL;
    mmo_replicator *out = (mmo_replicator *)(uintptr_t)0x1;
    mmo_viewer viewer;
    mmo_plan_info info;
    mmo_vec3 pos;
    uint32_t cand[16], sel[16];
    size_t ncand = 0, nsel = 0, i;

    CHECK_OK(mmo_replication_config_default(&config));
    CHECK(config.tick_rate_hz == 30 && config.budget_bytes_per_s == 10000);
    CHECK_OK(mmo_replicator_new(&config, &rep));

    /* Far Medium entity (low id), near Medium entity (higher id), a Critical one farther
     * away than both, a Low one, and one outside the area of interest. */
    memset(&pos, 0, sizeof pos);
    pos.x = 120.0f;
    CHECK_OK(mmo_replicator_update_entity(rep, 10, &pos, MMO_PRIORITY_CATEGORY_MEDIUM));
    pos.x = 10.0f;
    CHECK_OK(mmo_replicator_update_entity(rep, 20, &pos, MMO_PRIORITY_CATEGORY_MEDIUM));
    pos.x = 0.0f;
    pos.y = 180.0f;
    CHECK_OK(mmo_replicator_update_entity(rep, 30, &pos, MMO_PRIORITY_CATEGORY_CRITICAL));
    pos.y = -20.0f;
    CHECK_OK(mmo_replicator_update_entity(rep, 40, &pos, MMO_PRIORITY_CATEGORY_LOW));
    pos.y = 900.0f;
    CHECK_OK(mmo_replicator_update_entity(rep, 50, &pos, MMO_PRIORITY_CATEGORY_HIGH));

    memset(&viewer, 0, sizeof viewer);
    viewer.kind = MMO_VIEWER_KIND_POSITION;
    CHECK_OK(mmo_replicator_add_client(rep, 1, &viewer));
    CHECK_RESULT(mmo_replicator_add_client(rep, 1, &viewer), MMO_RESULT_ALREADY_EXISTS);

    /* Encoder mode: plan, read the candidates, commit nothing (so priorities accumulate). */
    CHECK_OK(mmo_replicator_plan_tick(rep, 0, 1, &info));
    CHECK(info.tick == 0 && info.entered_count == 4 && info.left_count == 0);
    CHECK(info.candidate_count >= 3);
    CHECK_OK(mmo_replicator_plan_ids(rep, 1, MMO_PLAN_LIST_CANDIDATES, cand, 16, &ncand));
    CHECK(ncand == info.candidate_count);
    CHECK(ncand > 0 && cand[0] == 30); /* Critical first, although farthest */
    CHECK(index_of(cand, ncand, 50) == -1); /* outside the area of interest */
    CHECK(index_of(cand, ncand, 20) >= 0);
    if (index_of(cand, ncand, 10) >= 0) {
        CHECK(index_of(cand, ncand, 20) < index_of(cand, ncand, 10)); /* near before far */
    }
    CHECK_OK(mmo_replicator_plan_ids(rep, 1, MMO_PLAN_LIST_ENTERED, cand, 16, &ncand));
    CHECK(ncand == 4 && cand[0] == 10 && cand[1] == 20 && cand[2] == 30 && cand[3] == 40);
    CHECK_OK(mmo_replicator_commit(rep, 1, NULL, 0, 0));
    CHECK_RESULT(mmo_replicator_commit(rep, 1, NULL, 0, 0), MMO_RESULT_EMPTY);

    /* A few more ticks without sending anything: near (30 Hz tier) outgrows far (10 Hz). */
    for (i = 1; i <= 6; i++) {
        CHECK_OK(mmo_replicator_plan_tick(rep, (uint32_t)i, 1, &info));
        CHECK_OK(mmo_replicator_commit(rep, 1, NULL, 0, 0));
    }
    CHECK_OK(mmo_replicator_plan_tick(rep, 7, 1, &info));
    CHECK_OK(mmo_replicator_plan_ids(rep, 1, MMO_PLAN_LIST_CANDIDATES, cand, 16, &ncand));
    CHECK(ncand == 4 && cand[0] == 30 && cand[1] == 20);
    CHECK(index_of(cand, ncand, 20) < index_of(cand, ncand, 10));
    CHECK(index_of(cand, ncand, 20) < index_of(cand, ncand, 40)); /* Medium over Low */
    /* Send Critical and near: their priority resets, the others keep theirs. */
    CHECK_OK(mmo_replicator_commit(rep, 1, cand, 2, 100));

    /* Estimate mode: select within the budget; the selection is a prefix of the send order. */
    CHECK_OK(mmo_replicator_select_within_budget(rep, 8, 1, 150, &info));
    CHECK(info.selected_count <= info.candidate_count);
    CHECK(info.selected_count == (info.budget_bytes / 150 < info.candidate_count
                                      ? info.budget_bytes / 150
                                      : info.candidate_count));
    CHECK_OK(mmo_replicator_plan_ids(rep, 1, MMO_PLAN_LIST_CANDIDATES, cand, 16, &ncand));
    CHECK_OK(mmo_replicator_plan_ids(rep, 1, MMO_PLAN_LIST_SELECTED, sel, 16, &nsel));
    CHECK(nsel == info.selected_count);
    CHECK(memcmp(sel, cand, nsel * sizeof sel[0]) == 0);
    CHECK(nsel == 0 || sel[0] == 30);
    CHECK_RESULT(mmo_replicator_commit(rep, 1, NULL, 0, 0), MMO_RESULT_EMPTY); /* committed */
    /* A tiny estimate fits everything; 0 counts as 1. */
    CHECK_OK(mmo_replicator_select_within_budget(rep, 9, 1, 0, &info));
    CHECK(info.selected_count == info.candidate_count);

    /* Too small a buffer: nothing written, retryable. */
    if (info.selected_count > 1) {
        memset(sel, SENTINEL, sizeof sel);
        ncand = 4242;
        CHECK_RESULT(mmo_replicator_plan_ids(rep, 1, MMO_PLAN_LIST_SELECTED, sel, 1, &ncand),
                     MMO_RESULT_BUFFER_TOO_SMALL);
        CHECK(untouched(sel, sizeof sel) && ncand == 4242);
    }

    /* Removal shows in the LEFT list; a viewer change. */
    CHECK_OK(mmo_replicator_remove_entity(rep, 40));
    CHECK_RESULT(mmo_replicator_remove_entity(rep, 40), MMO_RESULT_NOT_FOUND);
    CHECK_OK(mmo_replicator_plan_tick(rep, 10, 1, &info));
    CHECK(info.left_count == 1);
    CHECK_OK(mmo_replicator_plan_ids(rep, 1, MMO_PLAN_LIST_LEFT, cand, 16, &ncand));
    CHECK(ncand == 1 && cand[0] == 40);
    CHECK_OK(mmo_replicator_commit(rep, 1, NULL, 0, 0));
    viewer.kind = MMO_VIEWER_KIND_ENTITY;
    viewer.entity_id = 20;
    CHECK_OK(mmo_replicator_set_viewer(rep, 1, &viewer));
    CHECK_OK(mmo_replicator_plan_tick(rep, 11, 1, &info));
    CHECK_OK(mmo_replicator_plan_ids(rep, 1, MMO_PLAN_LIST_CANDIDATES, cand, 16, &ncand));
    CHECK(index_of(cand, ncand, 20) == -1); /* its own entity is never visible */
    CHECK_OK(mmo_replicator_commit(rep, 1, NULL, 0, 0));

    /* Errors: invalid enum integers, NULLs, unknown ids, invalid arguments and configs. */
    memset(&pos, 0, sizeof pos);
    CHECK_RESULT(mmo_replicator_update_entity(rep, 60, &pos, 4), MMO_RESULT_INVALID_ENUM);
    CHECK(last_error_contains("category"));
    CHECK_RESULT(mmo_replicator_update_entity(rep, 60, &pos, 0xFFFFFFFFu), MMO_RESULT_INVALID_ENUM);
    CHECK_RESULT(mmo_replicator_update_entity(rep, 0, &pos, MMO_PRIORITY_CATEGORY_LOW),
                 MMO_RESULT_INVALID_ARGUMENT);
    pos.x = NAN;
    CHECK_RESULT(mmo_replicator_update_entity(rep, 60, &pos, MMO_PRIORITY_CATEGORY_LOW),
                 MMO_RESULT_INVALID_ARGUMENT);
    pos.x = 0.0f;
    CHECK_RESULT(mmo_replicator_update_entity(NULL, 60, &pos, MMO_PRIORITY_CATEGORY_LOW),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_update_entity(rep, 60, NULL, MMO_PRIORITY_CATEGORY_LOW),
                 MMO_RESULT_NULL_ARGUMENT);
    viewer.kind = 2;
    CHECK_RESULT(mmo_replicator_add_client(rep, 2, &viewer), MMO_RESULT_INVALID_ENUM);
    CHECK_RESULT(mmo_replicator_set_viewer(rep, 1, &viewer), MMO_RESULT_INVALID_ENUM);
    viewer.kind = MMO_VIEWER_KIND_POSITION;
    viewer.position_m.y = INFINITY;
    CHECK_RESULT(mmo_replicator_add_client(rep, 2, &viewer), MMO_RESULT_INVALID_ARGUMENT);
    viewer.position_m.y = 0.0f;
    CHECK_RESULT(mmo_replicator_add_client(NULL, 2, &viewer), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_add_client(rep, 2, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_set_viewer(rep, 99, &viewer), MMO_RESULT_NOT_FOUND);
    CHECK_RESULT(mmo_replicator_set_viewer(NULL, 1, &viewer), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_set_viewer(rep, 1, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_remove_entity(NULL, 1), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_remove_client(NULL, 1), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_remove_client(rep, 99), MMO_RESULT_NOT_FOUND);
    memset(&info, SENTINEL, sizeof info);
    CHECK_RESULT(mmo_replicator_plan_tick(rep, 12, 99, &info), MMO_RESULT_NOT_FOUND);
    CHECK(untouched(&info, sizeof info));
    CHECK_RESULT(mmo_replicator_plan_tick(NULL, 12, 1, &info), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_plan_tick(rep, 12, 1, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_select_within_budget(rep, 12, 99, 10, &info),
                 MMO_RESULT_NOT_FOUND);
    CHECK_RESULT(mmo_replicator_select_within_budget(NULL, 12, 1, 10, &info),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_select_within_budget(rep, 12, 1, 10, NULL),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_commit(NULL, 1, NULL, 0, 0), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_commit(rep, 99, NULL, 0, 0), MMO_RESULT_NOT_FOUND);
    CHECK_RESULT(mmo_replicator_plan_ids(rep, 1, 4, cand, 16, &ncand), MMO_RESULT_INVALID_ENUM);
    CHECK(last_error_contains("list"));
    CHECK_RESULT(mmo_replicator_plan_ids(rep, 99, MMO_PLAN_LIST_LEFT, cand, 16, &ncand),
                 MMO_RESULT_NOT_FOUND);
    CHECK_RESULT(mmo_replicator_plan_ids(NULL, 1, MMO_PLAN_LIST_LEFT, cand, 16, &ncand),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_plan_ids(rep, 1, MMO_PLAN_LIST_LEFT, NULL, 16, &ncand),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_plan_ids(rep, 1, MMO_PLAN_LIST_LEFT, cand, 16, NULL),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replication_config_default(NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_new(NULL, &out), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_replicator_new(&config, NULL), MMO_RESULT_NULL_ARGUMENT);
    bad = config;
    bad.area_of_interest_radius_m = 100.0f;
    CHECK_RESULT(mmo_replicator_new(&bad, &out), MMO_RESULT_INVALID_CONFIG);
    CHECK(last_error_contains("area_of_interest_radius_m"));
    bad = config;
    bad.tick_rate_hz = 0;
    CHECK_RESULT(mmo_replicator_new(&bad, &out), MMO_RESULT_INVALID_CONFIG);
    bad = config;
    bad.budget_bytes_per_s = 0;
    CHECK_RESULT(mmo_replicator_new(&bad, &out), MMO_RESULT_INVALID_CONFIG);
    bad = config;
    bad.cell_size_m = -1.0f;
    CHECK_RESULT(mmo_replicator_new(&bad, &out), MMO_RESULT_INVALID_CONFIG);
    CHECK(out == (mmo_replicator *)(uintptr_t)0x1);

    CHECK_OK(mmo_replicator_remove_client(rep, 1));
    mmo_replicator_free(rep);
}

/* ---------------------------------------------------------------------------------------- */
/* Validation                                                                               */
/* ---------------------------------------------------------------------------------------- */

static void validation(void) {
    mmo_rejection_kind kind = 99;
    mmo_move_input in;
    mmo_vec3 origin, far, nan_v;
    uint32_t k;

    memset(&in, 0, sizeof in);
    memset(&origin, 0, sizeof origin);
    far = origin;
    far.x = 100.0f;
    nan_v = origin;
    nan_v.y = NAN;

    in.forward_q = 90;
    in.right_q = 90;
    CHECK_OK(mmo_validate_input(&in, &kind));
    CHECK(kind == MMO_REJECTION_KIND_NONE);
    in.forward_q = 127;
    in.right_q = 127;
    CHECK_OK(mmo_validate_input(&in, &kind));
    CHECK(kind == MMO_REJECTION_KIND_INPUT_MAGNITUDE);
    in.forward_q = -128;
    in.right_q = 0;
    CHECK_OK(mmo_validate_input(&in, &kind));
    CHECK(kind == MMO_REJECTION_KIND_AXIS_OUT_OF_RANGE);
    in.forward_q = 0;
    in.buttons = 0x80;
    CHECK_OK(mmo_validate_input(&in, &kind));
    CHECK(kind == MMO_REJECTION_KIND_UNKNOWN_BUTTONS);
    in.buttons = MMO_BUTTON_SPRINT | MMO_BUTTON_JUMP;
    CHECK_OK(mmo_validate_input(&in, &kind));
    CHECK(kind == MMO_REJECTION_KIND_NONE);

    CHECK_OK(mmo_check_speed(&origin, &far, 1.0f, 7.0f, 0.1f, &kind));
    CHECK(kind == MMO_REJECTION_KIND_SPEED);
    CHECK_OK(mmo_check_speed(&origin, &far, 20.0f, 7.0f, 0.1f, &kind));
    CHECK(kind == MMO_REJECTION_KIND_NONE);
    CHECK_OK(mmo_check_speed(&origin, &far, 0.0f, 7.0f, 0.1f, &kind));
    CHECK(kind == MMO_REJECTION_KIND_SPEED);
    CHECK_OK(mmo_check_speed(&origin, &nan_v, 1.0f, 7.0f, 0.1f, &kind));
    CHECK(kind == MMO_REJECTION_KIND_NON_FINITE);
    CHECK_OK(mmo_check_teleport(&origin, &far, 50.0f, &kind));
    CHECK(kind == MMO_REJECTION_KIND_TELEPORT);
    CHECK_OK(mmo_check_teleport(&origin, &far, 150.0f, &kind));
    CHECK(kind == MMO_REJECTION_KIND_NONE);
    CHECK_OK(mmo_check_teleport(&origin, &far, NAN, &kind));
    CHECK(kind != MMO_REJECTION_KIND_NONE);
    CHECK_OK(mmo_check_resource_cost(10.0, 25.0, &kind));
    CHECK(kind == MMO_REJECTION_KIND_RESOURCE_COST);
    CHECK_OK(mmo_check_resource_cost(25.0, 25.0, &kind));
    CHECK(kind == MMO_REJECTION_KIND_NONE);
    CHECK_OK(mmo_check_resource_cost(NAN, 1.0, &kind));
    CHECK(kind == MMO_REJECTION_KIND_RESOURCE_COST);
    CHECK_OK(mmo_check_cooldown(5, 10, &kind));
    CHECK(kind == MMO_REJECTION_KIND_COOLDOWN);
    CHECK_OK(mmo_check_cooldown(10, 10, &kind));
    CHECK(kind == MMO_REJECTION_KIND_NONE);
    CHECK_OK(mmo_check_range(&origin, &far, 50.0f, &kind));
    CHECK(kind == MMO_REJECTION_KIND_RANGE);
    CHECK_OK(mmo_check_range(&origin, &far, 150.0f, &kind));
    CHECK(kind == MMO_REJECTION_KIND_NONE);
    CHECK_OK(mmo_check_range(&origin, &nan_v, 150.0f, &kind));
    CHECK(kind == MMO_REJECTION_KIND_NON_FINITE);

    /* Names: every kind has a distinct snake_case label; others give NULL. */
    CHECK(strcmp(mmo_rejection_kind_name(MMO_REJECTION_KIND_NONE), "none") == 0);
    CHECK(strcmp(mmo_rejection_kind_name(MMO_REJECTION_KIND_SPEED), "speed") == 0);
    for (k = 0; k <= MMO_REJECTION_KIND_RANGE; k++) {
        const char *name = mmo_rejection_kind_name(k);
        uint32_t j;
        CHECK(name != NULL && strlen(name) > 0);
        for (j = 0; name != NULL && j < k; j++) {
            CHECK(strcmp(name, mmo_rejection_kind_name(j)) != 0);
        }
    }
    CHECK(mmo_rejection_kind_name(MMO_REJECTION_KIND_RANGE + 1) == NULL);
    CHECK(mmo_rejection_kind_name(0xFFFFFFFFu) == NULL);

    /* NULL arguments; the verdict output is untouched. */
    kind = 1234;
    CHECK_RESULT(mmo_validate_input(NULL, &kind), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_validate_input(&in, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_check_speed(NULL, &far, 1.0f, 7.0f, 0.1f, &kind), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_check_speed(&origin, NULL, 1.0f, 7.0f, 0.1f, &kind),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_check_speed(&origin, &far, 1.0f, 7.0f, 0.1f, NULL),
                 MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_check_teleport(NULL, &far, 1.0f, &kind), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_check_teleport(&origin, NULL, 1.0f, &kind), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_check_teleport(&origin, &far, 1.0f, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_check_resource_cost(1.0, 1.0, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_check_cooldown(1, 1, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_check_range(NULL, &far, 1.0f, &kind), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_check_range(&origin, NULL, 1.0f, &kind), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_check_range(&origin, &far, 1.0f, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK(kind == 1234);
}

/* ---------------------------------------------------------------------------------------- */
/* Results, last error, _free(NULL)                                                         */
/* ---------------------------------------------------------------------------------------- */

static void result_messages_and_last_error(void) {
    static const uint32_t codes[] = {
        MMO_RESULT_OK,
        MMO_RESULT_NULL_ARGUMENT,
        MMO_RESULT_INVALID_ENUM,
        MMO_RESULT_BUFFER_TOO_SMALL,
        MMO_RESULT_INVALID_CONFIG,
        MMO_RESULT_INVALID_ARGUMENT,
        MMO_RESULT_DECODE_FAILED,
        MMO_RESULT_UNKNOWN_BASELINE,
        MMO_RESULT_ACK_AHEAD,
        MMO_RESULT_EMPTY,
        MMO_RESULT_NOT_FOUND,
        MMO_RESULT_ALREADY_EXISTS,
        MMO_RESULT_LOG_UNAVAILABLE,
        MMO_RESULT_PANIC,
    };
    const size_t ncodes = sizeof codes / sizeof codes[0];
    char texts[sizeof codes / sizeof codes[0]][160];
    char buf[160];
    size_t len = 0, i, j;

    for (i = 0; i < ncodes; i++) {
        size_t needed = 0;
        /* Size query: BUFFER_TOO_SMALL with the length. */
        CHECK_RESULT(mmo_result_message(codes[i], NULL, 0, &needed), MMO_RESULT_BUFFER_TOO_SMALL);
        CHECK(needed > 0 && needed < sizeof buf);
        /* Exactly the length (no room for the NUL): too small, buffer untouched. */
        memset(buf, SENTINEL, sizeof buf);
        len = 0;
        CHECK_RESULT(mmo_result_message(codes[i], buf, needed, &len),
                     MMO_RESULT_BUFFER_TOO_SMALL);
        CHECK(len == needed && untouched(buf, sizeof buf));
        /* Enough room. */
        CHECK_OK(mmo_result_message(codes[i], buf, needed + 1, &len));
        CHECK(len == needed && strlen(buf) == needed);
        CHECK(untouched(buf + needed + 1, sizeof buf - needed - 1));
        memcpy(texts[i], buf, needed + 1);
        for (j = 0; j < i; j++) {
            CHECK(strcmp(texts[i], texts[j]) != 0);
        }
    }
    CHECK(strcmp(texts[0], "success") == 0);
    CHECK_OK(mmo_result_message(12345, buf, sizeof buf, &len));
    CHECK(strcmp(buf, "unknown result code") == 0);
    CHECK_RESULT(mmo_result_message(0, buf, sizeof buf, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_result_message(0, NULL, 10, &len), MMO_RESULT_NULL_ARGUMENT);

    /* The last error: set by a failure with details, kept by successes, read repeatedly,
     * and its own small-buffer failure does not replace it. */
    CHECK_RESULT(mmo_prediction_config_default(NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_OK(mmo_last_error_message(buf, sizeof buf, &len));
    CHECK(strcmp(buf, "`out` is NULL") == 0 && len == strlen(buf));
    CHECK(mmo_abi_version() == MMO_ABI_VERSION);
    {
        mmo_prediction_config c;
        CHECK_OK(mmo_prediction_config_default(&c));
    }
    CHECK_RESULT(mmo_last_error_message(NULL, 0, &len), MMO_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == strlen("`out` is NULL"));
    memset(buf, SENTINEL, sizeof buf);
    CHECK_RESULT(mmo_last_error_message(buf, 4, &len), MMO_RESULT_BUFFER_TOO_SMALL);
    CHECK(untouched(buf, sizeof buf));
    CHECK_RESULT(mmo_last_error_message(buf, sizeof buf, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_OK(mmo_last_error_message(buf, sizeof buf, &len));
    CHECK(strcmp(buf, "`out` is NULL") == 0);
    CHECK_RESULT(mmo_set_log_level(17), MMO_RESULT_INVALID_ENUM);
    CHECK_OK(mmo_last_error_message(buf, sizeof buf, &len));
    CHECK(strstr(buf, "17") != NULL && strstr(buf, "level") != NULL);
}

static void free_null_is_a_no_op(void) {
    mmo_predictor_free(NULL);
    mmo_interpolator_free(NULL);
    mmo_snapshot_writer_free(NULL);
    mmo_snapshot_reader_free(NULL);
    mmo_replicator_free(NULL);
    CHECK(1);
}

/* ---------------------------------------------------------------------------------------- */
/* Log callback                                                                             */
/* ---------------------------------------------------------------------------------------- */

struct log_sink {
    int records;
    int resync_seen;
    int bad_level;
};

static void on_log(void *user_data, uint32_t level, const char *target, const char *message) {
    struct log_sink *sink = (struct log_sink *)user_data;
    sink->records++;
    if (level < MMO_LOG_LEVEL_ERROR || level > MMO_LOG_LEVEL_TRACE || target == NULL ||
        message == NULL) {
        sink->bad_level++;
        return;
    }
    if (strstr(target, "interpolation") != NULL && strstr(message, "resync") != NULL &&
        level == MMO_LOG_LEVEL_DEBUG) {
        sink->resync_seen++;
    }
}

static void log_callback(void) {
    struct log_sink sink = {0, 0, 0};
    mmo_interpolation_config config;
    mmo_interpolator *it = NULL;
    mmo_push_outcome outcome;
    mmo_vec3 pos = {1.0f, 2.0f, 3.0f};
    size_t delivered = 99;
    uint64_t k;

    /* No callback yet: polling delivers nothing. */
    CHECK_OK(mmo_poll_log(0, &delivered));
    CHECK(delivered == 0);
    CHECK_RESULT(mmo_poll_log(0, NULL), MMO_RESULT_NULL_ARGUMENT);
    CHECK_RESULT(mmo_set_log_level(MMO_LOG_LEVEL_TRACE + 1), MMO_RESULT_INVALID_ENUM);
    CHECK_RESULT(mmo_set_log_level(0xFFFFFFFFu), MMO_RESULT_INVALID_ENUM);

    CHECK_OK(mmo_set_log_callback(on_log, &sink));
    CHECK_OK(mmo_set_log_level(MMO_LOG_LEVEL_DEBUG));

    /* An interpolator resync (the server clock jumps) logs at DEBUG. */
    CHECK_OK(mmo_interpolation_config_default(&config));
    CHECK_OK(mmo_interpolator_new(&config, &it));
    for (k = 0; k < 10; k++) {
        CHECK_OK(mmo_interpolator_push(it, 1000000 + k * 33333, 1050000 + k * 33333, &pos, 0.0f,
                                       &outcome));
    }
    for (k = 0; k < 3; k++) {
        CHECK_OK(mmo_interpolator_push(it, 500000000 + k * 33333, 1400000 + k * 33333, &pos,
                                       0.0f, &outcome));
        CHECK(outcome == (k < 2 ? MMO_PUSH_OUTCOME_OUTLIER : MMO_PUSH_OUTCOME_RESYNCED));
    }
    mmo_interpolator_free(it);

    /* Nothing reaches the callback before the poll; the poll delivers on this thread. */
    CHECK(sink.records == 0);
    CHECK_OK(mmo_poll_log(0, &delivered));
    CHECK(delivered >= 1 && (int)delivered == sink.records);
    CHECK(sink.resync_seen == 1 && sink.bad_level == 0);
    CHECK_OK(mmo_poll_log(0, &delivered));
    CHECK(delivered == 0);

    /* Above the level: not recorded. */
    CHECK_OK(mmo_set_log_level(MMO_LOG_LEVEL_INFO));
    CHECK_OK(mmo_interpolator_new(&config, &it));
    for (k = 0; k < 3; k++) {
        CHECK_OK(mmo_interpolator_push(it, 1000000 + k * 33333, 1050000 + k * 33333, &pos, 0.0f,
                                       &outcome));
    }
    for (k = 0; k < 3; k++) {
        CHECK_OK(mmo_interpolator_push(it, 900000000 + k * 33333, 1200000 + k * 33333, &pos,
                                       0.0f, &outcome));
    }
    CHECK(outcome == MMO_PUSH_OUTCOME_RESYNCED);
    mmo_interpolator_free(it);
    CHECK_OK(mmo_poll_log(0, &delivered));
    CHECK(delivered == 0 && sink.resync_seen == 1);

    /* Clearing the callback: polls deliver nothing. */
    CHECK_OK(mmo_set_log_callback(NULL, NULL));
    CHECK_OK(mmo_poll_log(0, &delivered));
    CHECK(delivered == 0);
}

int main(void) {
    sanitizer_is_active();
    abi_version();
    prediction_and_reconciliation();
    prediction_errors();
    interpolation();
    codec_round_trip();
    replication_priority();
    validation();
    result_messages_and_last_error();
    free_null_is_a_no_op();
    log_callback();
    return CHECK_REPORT();
}
