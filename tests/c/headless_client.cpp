// A headless game client over the C++ wrapper (mmo::Client): connects to a real server,
// waits for the welcome, walks forward for 2 s at 30 Hz, checks that the predicted
// character moved without a large correction and that snapshots arrived, then leaves
// cleanly and waits for the DISCONNECTED event with reason CLIENT_QUIT.
//
// Usage: headless_client HOST PORT FINGERPRINT_HEX TOKEN [--expect-disconnect=REASON]
//
// With --expect-disconnect=REASON (a snake_case name such as connect_failed or bad_token)
// it only connects and checks that the session ends with that reason, without hanging.
//
// Prints one summary line ("headless_client: ok ...") and exits 0, or prints
// "headless_client: FAIL: ..." and exits 1. Built by tests/integration/headless_client.rs
// with gcc and clang under ASan + UBSan.
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "mmo.hpp"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kTickHz = 30;
constexpr int kWalkTicks = 2 * kTickHz;
constexpr auto kTick = std::chrono::microseconds(1000000 / kTickHz);
constexpr auto kWelcomeTimeout = std::chrono::seconds(10);
constexpr auto kDisconnectTimeout = std::chrono::seconds(5);
constexpr float kMinWalkM = 3.0f;
constexpr float kLargeCorrectionM = 0.5f;

[[noreturn]] void fail(const std::string &what) {
    std::fprintf(stderr, "headless_client: FAIL: %s\n", what.c_str());
    std::fflush(stderr);
    std::exit(1);
}

std::string detail(const mmo::Status &status) {
    return status.message() + " (" + mmo::last_error() + ")";
}

/// Polls until an event of `kind` (or DISCONNECTED) arrives or `timeout` passes.
mmo::ClientEvent wait_for(mmo::Client &client, mmo_client_event_kind kind,
                          Clock::duration timeout, float &max_correction_m) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        for (;;) {
            mmo::Result<std::optional<mmo::ClientEvent>> polled = client.poll_event();
            if (!polled.ok()) {
                fail("poll_event: " + detail(polled.status()));
            }
            if (!polled->has_value()) {
                break;
            }
            mmo::ClientEvent event = std::move(**polled);
            if (event.kind() == MMO_CLIENT_EVENT_KIND_CORRECTION) {
                max_correction_m = std::fmax(max_correction_m, event.event.position_error_m);
            }
            if (event.kind() == kind || event.kind() == MMO_CLIENT_EVENT_KIND_DISCONNECTED) {
                return event;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    fail("no event of kind " + std::to_string(static_cast<unsigned>(kind)) + " in time");
}

std::string disconnect_text(const mmo::ClientEvent &event) {
    return std::string(mmo::disconnect_reason_name(event.event.disconnect_reason)) + ": " +
           event.text;
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fail("usage: headless_client HOST PORT FINGERPRINT_HEX TOKEN "
             "[--expect-disconnect=REASON]");
    }
    const char *host = argv[1];
    const long port = std::strtol(argv[2], nullptr, 10);
    if (port <= 0 || port > 65535) {
        fail(std::string("bad port ") + argv[2]);
    }
    const char *expect_prefix = "--expect-disconnect=";
    const char *expected_reason = nullptr;
    if (argc == 6) {
        if (std::strncmp(argv[5], expect_prefix, std::strlen(expect_prefix)) != 0) {
            fail(std::string("unknown option ") + argv[5]);
        }
        expected_reason = argv[5] + std::strlen(expect_prefix);
    }
    if (!mmo::abi_compatible()) {
        fail("the library's ABI version differs from the header's");
    }

    mmo_client_config config = mmo::default_client_config();
    config.server_fingerprint_hex = argv[3];
    mmo::Result<mmo::Client> made = mmo::Client::create(config);
    if (!made.ok()) {
        fail("create: " + detail(made.status()));
    }
    mmo::Client client = std::move(made).value();
    if (const mmo::Status s = client.connect(host, static_cast<uint16_t>(port), argv[4]);
        !s.ok()) {
        fail("connect: " + detail(s));
    }

    float max_correction_m = 0.0f;
    const mmo::ClientEvent welcome =
        wait_for(client, MMO_CLIENT_EVENT_KIND_WELCOME, kWelcomeTimeout, max_correction_m);
    if (expected_reason != nullptr) {
        if (welcome.kind() != MMO_CLIENT_EVENT_KIND_DISCONNECTED) {
            fail(std::string("expected a disconnect (") + expected_reason +
                 "), got event kind " + std::to_string(static_cast<unsigned>(welcome.kind())));
        }
        const char *reason = mmo::disconnect_reason_name(welcome.event.disconnect_reason);
        if (std::strcmp(reason, expected_reason) != 0 || welcome.text.empty()) {
            fail(std::string("expected disconnect ") + expected_reason + ", got " +
                 disconnect_text(welcome));
        }
        std::printf("headless_client: ok disconnect=%s message=\"%s\"\n", reason,
                    welcome.text.c_str());
        return 0;
    }
    if (welcome.kind() != MMO_CLIENT_EVENT_KIND_WELCOME) {
        fail("disconnected instead of welcomed: " + disconnect_text(welcome));
    }

    mmo::Result<mmo_local_state> start = client.local_state();
    if (!start.ok()) {
        fail("local_state after welcome: " + detail(start.status()));
    }
    mmo::Result<mmo_move_input> walk = mmo::move_input_from_controls(1.0f, 0.0f, 0.0f, 0);
    if (!walk.ok()) {
        fail("move_input_from_controls: " + detail(walk.status()));
    }

    // Walk forward at 30 Hz for 2 s, polling every frame.
    Clock::time_point next_tick = Clock::now();
    for (int tick = 0; tick < kWalkTicks; ++tick) {
        for (;;) {
            mmo::Result<std::optional<mmo::ClientEvent>> polled = client.poll_event();
            if (!polled.ok()) {
                fail("poll_event: " + detail(polled.status()));
            }
            if (!polled->has_value()) {
                break;
            }
            const mmo::ClientEvent &event = **polled;
            if (event.kind() == MMO_CLIENT_EVENT_KIND_CORRECTION) {
                max_correction_m = std::fmax(max_correction_m, event.event.position_error_m);
            } else if (event.kind() == MMO_CLIENT_EVENT_KIND_DISCONNECTED) {
                fail("disconnected while walking: " + disconnect_text(event));
            }
        }
        if (const mmo::Status s = client.send_input(*walk); !s.ok()) {
            fail("send_input: " + detail(s));
        }
        if (const mmo::Status s = client.advance_visual(1.0f / kTickHz); !s.ok()) {
            fail("advance_visual: " + detail(s));
        }
        next_tick += kTick;
        std::this_thread::sleep_until(next_tick);
    }

    mmo::Result<mmo_local_state> end = client.local_state();
    if (!end.ok()) {
        fail("local_state after walking: " + detail(end.status()));
    }
    const float moved_m = end->predicted.position_m.x - start->predicted.position_m.x;
    if (!(moved_m > kMinWalkM)) {
        fail("the predicted character moved " + std::to_string(moved_m) + " m forward, want > " +
             std::to_string(kMinWalkM));
    }
    if (max_correction_m > kLargeCorrectionM) {
        fail("a large correction happened: " + std::to_string(max_correction_m) + " m");
    }
    mmo::Result<mmo_connection_stats> stats = client.stats();
    if (!stats.ok()) {
        fail("stats: " + detail(stats.status()));
    }
    if (stats->snapshots_received < 10 || stats->snapshots_expected < stats->snapshots_applied) {
        fail("too few snapshots: received " + std::to_string(stats->snapshots_received) +
             ", expected " + std::to_string(stats->snapshots_expected));
    }

    // Snapshots came every tick: the server is not silent. A single server gives no
    // resumption token, so resuming is refused at once, naming why.
    mmo::Result<uint64_t> silent_ms = client.server_silent_ms();
    if (!silent_ms.ok() || *silent_ms > 1000) {
        fail("server_silent_ms while playing: " +
             (silent_ms.ok() ? std::to_string(*silent_ms) : detail(silent_ms.status())));
    }
    if (const mmo::Status s = client.resume(host, static_cast<uint16_t>(port));
        s.code() != MMO_RESULT_INVALID_STATE ||
        mmo::last_error().find("resumption token") == std::string::npos) {
        fail("resume against a single server: " + detail(s) + ", want INVALID_STATE naming the "
             "missing resumption token");
    }

    if (const mmo::Status s = client.disconnect(); !s.ok()) {
        fail("disconnect: " + detail(s));
    }
    const mmo::ClientEvent bye = wait_for(client, MMO_CLIENT_EVENT_KIND_DISCONNECTED,
                                          kDisconnectTimeout, max_correction_m);
    if (bye.event.disconnect_reason != MMO_DISCONNECT_REASON_CLIENT_QUIT) {
        fail("left with " + disconnect_text(bye) + ", want client_quit");
    }
    mmo::Result<mmo_connection_state> state = client.state();
    if (!state.ok() || *state != MMO_CONNECTION_STATE_CLOSED) {
        fail("the client is not closed after the disconnected event");
    }

    std::printf("headless_client: ok entity=%" PRIu32 " moved_m=%.2f max_correction_m=%.3f "
                "snapshots=%" PRIu64 "/%" PRIu64 " rtt_us=%" PRIu64 " corrections=%" PRIu64
                " bytes_in=%" PRIu64 " bytes_out=%" PRIu64 " disconnect=%s\n",
                welcome.event.entity_id, static_cast<double>(moved_m),
                static_cast<double>(max_correction_m), stats->snapshots_received,
                stats->snapshots_expected, stats->rtt_us, stats->corrections, stats->bytes_in,
                stats->bytes_out, mmo::disconnect_reason_name(bye.event.disconnect_reason));
    return 0;
}
