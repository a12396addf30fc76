// The Unreal plugin's engine-free helpers (unreal-plugin/MMOCore/Source/MMOCore/Private/Logic:
// mmo::ue units, event router, entity registry, diagnostics) over mmo.hpp, against a real
// server: exact cm <-> m, axis and yaw conversions; then two clients A and B log in, and A's
// router must hand each real event to the right handler: the welcome to the connection
// handler, B's spawn to the entity handler (kept in an EntityRegistry), A's strike on B to the
// ability and combat handlers, an item move to the inventory handler, the pools to the
// resources handler, and the goodbye to the connection handler.
//
// Usage: unreal_logic_client HOST PORT FINGERPRINT_HEX TOKEN_A TOKEN_B
//
// Ends with "N passed, N failed" (tests/c/check.h) and "unreal_logic_client: ok ..." on
// success. Every wait is bounded. Built by tests/integration/unreal_plugin.rs with g++ and
// clang++ under ASan + UBSan.
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "Logic/Diagnostics.h"
#include "Logic/EntityRegistry.h"
#include "Logic/EventRouter.h"
#include "Logic/Units.h"
#include "check.h"
#include "mmo.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using mmo::ue::EventChannel;

constexpr auto kTimeout = std::chrono::seconds(10);
constexpr auto kSettle = std::chrono::milliseconds(300);
constexpr uint16_t kStrike = 0;
constexpr uint32_t kStrikeDamage = 12;
constexpr uint32_t kEmptySlot = 23;

/// An engine-free stand-in for FVector's shape (X, Y, Z doubles, three-argument ctor).
struct VecCm {
    double X = 0, Y = 0, Z = 0;
    VecCm() = default;
    VecCm(double x, double y, double z) : X(x), Y(y), Z(z) {}
};

[[noreturn]] void fail(const std::string &what) {
    std::fprintf(stderr, "unreal_logic_client: FAIL: %s\n", what.c_str());
    std::printf("%d passed, %d failed\n", check_passed, check_failed + 1);
    std::exit(1);
}

void require(bool ok, const std::string &what) {
    if (!ok) {
        fail(what);
    }
}

void check_units() {
    // Scalars and vectors: same axes, only the scale changes; these are exact in float.
    CHECK(mmo::cm_to_m(150.0f) == 1.5f);
    CHECK(mmo::m_to_cm(1.5f) == 150.0f);
    const mmo_vec3 core = mmo::ue::location_to_core(VecCm(12345.0, -250.0, 88.0));
    CHECK(core.x == 123.45f);
    CHECK(core.y == -2.5f);
    CHECK(core.z == 0.88f);
    const VecCm back = mmo::ue::location_from_core<VecCm>(mmo_vec3{1.5f, -2.25f, 0.5f});
    CHECK(back.X == 150.0 && back.Y == -225.0 && back.Z == 50.0);
    CHECK(mmo::ue::distance_to_core(250.0) == 2.5f);
    CHECK(mmo::ue::distance_from_core(2.5f) == 250.0);
    CHECK(mmo::ue::speed_from_core(6.0f) == 600.0);
    // X forward stays X forward, Y right stays Y right, Z up stays Z up.
    const mmo_vec3 forward = mmo::ue::location_to_core(VecCm(100.0, 0.0, 0.0));
    CHECK(forward.x == 1.0f && forward.y == 0.0f && forward.z == 0.0f);
    const mmo_vec3 right = mmo::ue::location_to_core(VecCm(0.0, 100.0, 0.0));
    CHECK(right.x == 0.0f && right.y == 1.0f && right.z == 0.0f);
    const mmo_vec3 up = mmo::ue::location_to_core(VecCm(0.0, 0.0, 100.0));
    CHECK(up.x == 0.0f && up.y == 0.0f && up.z == 1.0f);

    // Yaw: Unreal degrees (any) -> core radians in [0, 2*pi).
    CHECK(mmo::ue::deg_to_rad(180.0) == mmo::ue::kPi);
    CHECK(mmo::ue::deg_to_rad(90.0) == mmo::ue::kPi / 2.0);
    CHECK(mmo::ue::rad_to_deg(mmo::ue::kPi) == 180.0);
    CHECK(mmo::ue::yaw_deg_to_core_rad(0.0) == 0.0f);
    CHECK(mmo::ue::yaw_deg_to_core_rad(90.0) == static_cast<float>(mmo::ue::kPi / 2.0));
    CHECK(mmo::ue::yaw_deg_to_core_rad(-90.0) == static_cast<float>(mmo::ue::kPi * 1.5));
    CHECK(mmo::ue::yaw_deg_to_core_rad(450.0) == static_cast<float>(mmo::ue::kPi / 2.0));
    CHECK(mmo::ue::yaw_deg_to_core_rad(360.0) == 0.0f);
    CHECK(mmo::ue::yaw_deg_to_core_rad(-360.0) == 0.0f);
    // Core radians -> Unreal degrees in (-180, 180].
    CHECK(mmo::ue::core_rad_to_yaw_deg(0.0f) == 0.0);
    CHECK(std::fabs(mmo::ue::core_rad_to_yaw_deg(static_cast<float>(mmo::ue::kPi * 1.5)) + 90.0) < 1e-5);
    CHECK(std::fabs(mmo::ue::core_rad_to_yaw_deg(static_cast<float>(mmo::ue::kPi / 2.0)) - 90.0) < 1e-5);
    // Round trips through the float radians stay within float precision.
    for (double deg = -179.0; deg <= 180.0; deg += 7.0) {
        const double round_trip = mmo::ue::core_rad_to_yaw_deg(mmo::ue::yaw_deg_to_core_rad(deg));
        CHECK(std::fabs(round_trip - deg) < 1e-4);
    }
    // Input quantization: a full forward axis, facing 90 degrees (a quarter turn).
    mmo::Result<mmo_move_input> input =
        mmo::ue::controls_to_input(1.0f, 0.0f, 90.0, MMO_BUTTON_SPRINT);
    CHECK(input.ok());
    if (input.ok()) {
        CHECK(input->forward_q == 127 && input->right_q == 0);
        CHECK(input->yaw_q == 16384);
        CHECK(input->buttons == MMO_BUTTON_SPRINT);
    }
    CHECK(mmo::ue::controls_to_input(0.0f, 0.0f, 0.0, 0x80).code() == MMO_RESULT_INVALID_ARGUMENT);

    // Diagnostics: the start-up check and its error text.
    CHECK(mmo::ue::abi_check().empty());
    const std::string mismatch = mmo::ue::abi_mismatch_message(7, 2);
    CHECK(mismatch.find("ABI version 7") != std::string::npos);
    CHECK(mismatch.find("MMO_ABI_VERSION 2") != std::string::npos);
    CHECK(mismatch.find("ci/package-plugin.sh") != std::string::npos);
    CHECK(mmo::ue::abi_mismatch_message(2, 2).empty());
}

void check_router_rules() {
    mmo::ue::EventRouter router;
    int first = 0, second = 0;
    CHECK(router.subscribe(EventChannel::Chat, nullptr) == 0);
    mmo::ue::EventRouter::SubscriptionId self = 0;
    self = router.subscribe(EventChannel::Chat, [&](const mmo::ClientEvent &) {
        ++first;
        CHECK(router.unsubscribe(self)); // a handler may stop itself
    });
    router.subscribe(EventChannel::Chat, [&](const mmo::ClientEvent &) {
        ++second;
        router.subscribe(EventChannel::Chat, [&](const mmo::ClientEvent &) { ++second; });
    });
    mmo::ClientEvent chat;
    chat.event.kind = MMO_CLIENT_EVENT_KIND_CHAT;
    CHECK(router.dispatch(chat) == 2);
    CHECK(first == 1 && second == 1);
    CHECK(router.handler_count(EventChannel::Chat) == 2); // self gone, one added
    CHECK(!router.unsubscribe(self));
    mmo::ClientEvent none;
    CHECK(router.dispatch(none) == 0);
    CHECK(router.unrouted() == 1);
    CHECK(mmo::ue::channel_of(MMO_CLIENT_EVENT_KIND_INVENTORY_CHANGED) == EventChannel::Inventory);
    CHECK(mmo::ue::channel_of(MMO_CLIENT_EVENT_KIND_DISCONNECTED) == EventChannel::Connection);
    CHECK(mmo::ue::channel_of(MMO_CLIENT_EVENT_KIND_REJOINED) == EventChannel::Connection);
    CHECK(mmo::ue::channel_of(MMO_CLIENT_EVENT_KIND_RESUMED) == EventChannel::Connection);
}

/// One client with a router whose handlers record what each channel received.
struct Player {
    const char *name;
    mmo::Client client;
    mmo::ue::EventRouter router;
    /// What each handler was given, per channel.
    std::vector<mmo::ClientEvent> heard[mmo::ue::kEventChannelCount];
    mmo::ue::EntityRegistry<int> entities;
    uint32_t entity_id = 0;
    mmo_vec3 spawn_m{};

    void subscribe_all() {
        for (std::size_t c = 0; c < mmo::ue::kEventChannelCount; ++c) {
            const EventChannel channel = static_cast<EventChannel>(c);
            router.subscribe(channel, [this, c, channel](const mmo::ClientEvent &e) {
                // The router gave this handler only its channel's kinds.
                CHECK(mmo::ue::channel_of(e.kind()) == channel);
                heard[c].push_back(e);
            });
        }
        router.subscribe(EventChannel::Entity, [this](const mmo::ClientEvent &e) {
            if (e.kind() == MMO_CLIENT_EVENT_KIND_ENTITY_SPAWNED) {
                CHECK(entities.add(e.event.entity_id, e.event.archetype, 1));
            } else {
                CHECK(entities.remove(e.event.entity_id).has_value());
            }
        });
        router.subscribe(EventChannel::Connection, [this](const mmo::ClientEvent &e) {
            if (e.kind() == MMO_CLIENT_EVENT_KIND_WELCOME) {
                entity_id = e.event.entity_id;
                spawn_m = e.event.spawn.position_m;
            }
        });
    }
    const std::vector<mmo::ClientEvent> &on(EventChannel c) const {
        return heard[static_cast<std::size_t>(c)];
    }
    const mmo::ClientEvent *find(EventChannel c, const std::function<bool(const mmo::ClientEvent &)> &want) const {
        for (const mmo::ClientEvent &e : on(c)) {
            if (want(e)) {
                return &e;
            }
        }
        return nullptr;
    }
    void pump() {
        mmo::Result<std::size_t> n = router.pump(client);
        require(n.ok(), std::string(name) + " pump: " + n.message() + " (" + mmo::last_error() + ")");
    }
};

void wait_until(Player &a, Player &b, const std::string &what, const std::function<bool()> &done) {
    const Clock::time_point deadline = Clock::now() + kTimeout;
    for (;;) {
        a.pump();
        b.pump();
        if (done()) {
            return;
        }
        require(Clock::now() < deadline, "timed out waiting for " + what);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

bool is(const mmo::ClientEvent &e, mmo_client_event_kind kind) { return e.kind() == kind; }

} // namespace

int main(int argc, char **argv) {
    if (argc != 6) {
        fail("usage: unreal_logic_client HOST PORT FINGERPRINT_HEX TOKEN_A TOKEN_B");
    }
    const long port = std::strtol(argv[2], nullptr, 10);
    require(port > 0 && port <= 65535, std::string("bad port ") + argv[2]);
    check_units();
    check_router_rules();

    mmo_client_config config = mmo::default_client_config();
    config.server_fingerprint_hex = argv[3];
    mmo::Result<mmo::Client> made_a = mmo::Client::create(config);
    mmo::Result<mmo::Client> made_b = mmo::Client::create(config);
    require(made_a.ok() && made_b.ok(), "create: " + mmo::last_error());
    Player a{"A", std::move(made_a).value(), {}, {}, {}, 0, {}};
    Player b{"B", std::move(made_b).value(), {}, {}, {}, 0, {}};
    a.subscribe_all();
    b.subscribe_all();
    require(a.client.connect(argv[1], static_cast<uint16_t>(port), argv[4]).ok(), "A connect");

    // A's welcome reaches A's connection handler, the pools its resources handler and the
    // inventory its inventory handler.
    wait_until(a, b, "A's welcome, pools and inventory", [&] {
        return a.entity_id != 0 && !a.on(EventChannel::Resources).empty() &&
               !a.on(EventChannel::Inventory).empty();
    });
    CHECK(is(a.on(EventChannel::Connection).front(), MMO_CLIENT_EVENT_KIND_WELCOME));
    CHECK(is(a.on(EventChannel::Resources).front(), MMO_CLIENT_EVENT_KIND_RESOURCES_CHANGED));
    CHECK(is(a.on(EventChannel::Inventory).front(), MMO_CLIENT_EVENT_KIND_INVENTORY_CHANGED));

    // B logs in: A's entity handler hears B's spawn, and the registry keeps it.
    require(b.client.connect(argv[1], static_cast<uint16_t>(port), argv[5]).ok(), "B connect");
    wait_until(a, b, "B's spawn in A's view", [&] { return b.entity_id != 0 && a.entities.contains(b.entity_id); });
    const mmo::ClientEvent *spawn = a.find(EventChannel::Entity, [&](const mmo::ClientEvent &e) {
        return is(e, MMO_CLIENT_EVENT_KIND_ENTITY_SPAWNED) && e.event.entity_id == b.entity_id;
    });
    CHECK(spawn != nullptr);
    if (spawn != nullptr) {
        // Where A sees B spawn, in Unreal units, is B's own welcome position scaled by 100
        // (within the snapshot quantization, a centimetre).
        const VecCm seen = mmo::ue::location_from_core<VecCm>(spawn->event.position_m);
        const VecCm own = mmo::ue::location_from_core<VecCm>(b.spawn_m);
        CHECK(std::fabs(seen.X - own.X) <= 1.0 && std::fabs(seen.Y - own.Y) <= 1.0 &&
              std::fabs(seen.Z - own.Z) <= 1.0);
    }
    const Clock::time_point settle_end = Clock::now() + kSettle;
    wait_until(a, b, "the settle time", [&] { return Clock::now() >= settle_end; });

    // A strikes B: the answer to A's ability handler, the damage to both combat handlers.
    mmo::Result<uint32_t> strike = a.client.use_ability(kStrike, mmo::target_entity(b.entity_id));
    require(strike.ok(), "use_ability: " + mmo::last_error());
    const uint32_t strike_id = *strike;
    auto damage_to_b = [&](const mmo::ClientEvent &e) {
        return e.event.combat_kind == MMO_COMBAT_KIND_DAMAGE && e.event.target_entity_id == b.entity_id;
    };
    wait_until(a, b, "the strike's answer and damage", [&] {
        return a.find(EventChannel::Ability, [&](const mmo::ClientEvent &e) { return e.event.request == strike_id; }) &&
               a.find(EventChannel::Combat, damage_to_b) && b.find(EventChannel::Combat, damage_to_b);
    });
    const mmo::ClientEvent *answer =
        a.find(EventChannel::Ability, [&](const mmo::ClientEvent &e) { return e.event.request == strike_id; });
    CHECK(answer->event.accepted == 1 && answer->event.ability_id == kStrike);
    const mmo::ClientEvent *hit = a.find(EventChannel::Combat, damage_to_b);
    CHECK(is(*hit, MMO_CLIENT_EVENT_KIND_COMBAT));
    CHECK(hit->event.amount == kStrikeDamage);
    CHECK(hit->event.source_entity_id == a.entity_id);
    CHECK(hit->event.has_ability == 1 && hit->event.ability_id == kStrike);
    // B's resources handler hears its lower health.
    wait_until(a, b, "B's pools after the hit", [&] { return b.on(EventChannel::Resources).size() >= 2; });

    // A moves bag slot 0 to an empty slot: the inventory handler hears the change and the
    // accepted answer; nothing of it leaks to other channels.
    const std::size_t inventory_before = a.on(EventChannel::Inventory).size();
    mmo::Result<uint32_t> move = a.client.inventory_op(mmo::inventory::move(0, kEmptySlot));
    require(move.ok(), "inventory_op: " + mmo::last_error());
    const uint32_t move_id = *move;
    wait_until(a, b, "the move's answer", [&] {
        return a.find(EventChannel::Inventory, [&](const mmo::ClientEvent &e) {
                   return is(e, MMO_CLIENT_EVENT_KIND_INVENTORY_RESULT) && e.event.request == move_id;
               }) != nullptr;
    });
    const std::vector<mmo::ClientEvent> &inv = a.on(EventChannel::Inventory);
    CHECK(inv.size() >= inventory_before + 2);
    CHECK(is(inv[inventory_before], MMO_CLIENT_EVENT_KIND_INVENTORY_CHANGED));
    CHECK(is(inv.back(), MMO_CLIENT_EVENT_KIND_INVENTORY_RESULT) && inv.back().event.accepted == 1);
    mmo::Result<mmo_item_slot> moved = a.client.inventory_slot(kEmptySlot);
    CHECK(moved.ok() && moved->present == 1);

    // Counters match what the handlers heard; nothing was unrouted.
    CHECK(a.router.unrouted() == 0);
    for (std::size_t c = 0; c < mmo::ue::kEventChannelCount; ++c) {
        CHECK(a.router.routed(static_cast<EventChannel>(c)) == a.heard[c].size());
    }
    const std::string stats = [&] {
        mmo::Result<mmo_connection_stats> s = a.client.stats();
        return s.ok() ? mmo::ue::format_stats(*s) : std::string();
    }();
    CHECK(stats.find("MMO rtt ") == 0);

    // Both leave: the goodbye reaches the connection handlers.
    require(a.client.disconnect().ok() && b.client.disconnect().ok(), "disconnect");
    auto bye = [](const Player &p) {
        return p.find(EventChannel::Connection, [](const mmo::ClientEvent &e) {
            return is(e, MMO_CLIENT_EVENT_KIND_DISCONNECTED);
        });
    };
    wait_until(a, b, "both goodbyes", [&] { return bye(a) != nullptr && bye(b) != nullptr; });
    CHECK(bye(a)->event.disconnect_reason == MMO_DISCONNECT_REASON_CLIENT_QUIT);
    CHECK(bye(b)->event.disconnect_reason == MMO_DISCONNECT_REASON_CLIENT_QUIT);

    std::printf("unreal_logic_client: ok a=%" PRIu32 " b=%" PRIu32 " damage=%" PRIu32
                " entity_events=%zu inventory_events=%zu\n",
                a.entity_id, b.entity_id, hit->event.amount, a.on(EventChannel::Entity).size(),
                a.on(EventChannel::Inventory).size());
    return CHECK_REPORT();
}
