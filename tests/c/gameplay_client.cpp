// Gameplay over the C++ wrapper (mmo::Client) against a real server: two clients A and B
// log in at the same spawn point; A strikes B (ability 0 of the default content) and both
// must see the damage, B's health must drop; then A moves its first bag slot to slot 23 and
// reads the inventory back, and a move from slot 999 must be refused as
// "inventory_bad_slot". Both leave cleanly.
//
// Usage: gameplay_client HOST PORT FINGERPRINT_HEX TOKEN_A TOKEN_B
//
// Prints one summary line ("gameplay_client: ok ...") and exits 0, or prints
// "gameplay_client: FAIL: ..." and exits 1. Every wait is bounded. Built by
// tests/integration/gameplay_client.rs with gcc and clang under ASan + UBSan.
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mmo.hpp"

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kLoginTimeout = std::chrono::seconds(10);
constexpr auto kAnswerTimeout = std::chrono::seconds(5);
/// Time for A's interpolation buffer of B to fill, so the server can rewind B.
constexpr auto kSettle = std::chrono::milliseconds(300);
constexpr uint16_t kStrike = 0;
constexpr uint32_t kStrikeDamage = 12;
constexpr uint32_t kHealthPool = 0;
constexpr uint32_t kEmptySlot = 23;
constexpr uint32_t kBadSlot = 999;

[[noreturn]] void fail(const std::string &what) {
    std::fprintf(stderr, "gameplay_client: FAIL: %s\n", what.c_str());
    std::fflush(stderr);
    std::exit(1);
}

std::string detail(const mmo::Status &status) {
    return status.message() + " (" + mmo::last_error() + ")";
}

void require(bool ok, const std::string &what) {
    if (!ok) {
        fail(what);
    }
}

/// One client and everything it has been told so far.
struct Player {
    const char *name;
    mmo::Client client;
    std::vector<mmo::ClientEvent> events;
    std::set<uint32_t> in_view;
    uint32_t entity_id = 0;
    bool welcomed = false;
    bool inventory = false;
    bool resources = false;
    bool disconnected = false;

    /// Polls every queued event into `events`.
    void pump() {
        for (;;) {
            mmo::Result<std::optional<mmo::ClientEvent>> polled = client.poll_event();
            require(polled.ok(), std::string(name) + " poll_event: " + detail(polled.status()));
            if (!polled->has_value()) {
                return;
            }
            const mmo::ClientEvent &e = **polled;
            switch (e.kind()) {
            case MMO_CLIENT_EVENT_KIND_WELCOME:
                welcomed = true;
                entity_id = e.event.entity_id;
                break;
            case MMO_CLIENT_EVENT_KIND_ENTITY_SPAWNED: in_view.insert(e.event.entity_id); break;
            case MMO_CLIENT_EVENT_KIND_ENTITY_DESPAWNED: in_view.erase(e.event.entity_id); break;
            case MMO_CLIENT_EVENT_KIND_INVENTORY_CHANGED: inventory = true; break;
            case MMO_CLIENT_EVENT_KIND_RESOURCES_CHANGED: resources = true; break;
            case MMO_CLIENT_EVENT_KIND_DISCONNECTED: disconnected = true; break;
            default: break;
            }
            events.push_back(**polled);
        }
    }

    /// The first event from index `from` on that `want` accepts, if any.
    const mmo::ClientEvent *find(std::size_t from,
                                 const std::function<bool(const mmo::ClientEvent &)> &want) const {
        for (std::size_t i = from; i < events.size(); ++i) {
            if (want(events[i])) {
                return &events[i];
            }
        }
        return nullptr;
    }
};

/// Pumps both players every 5 ms until `done` holds; fails with `what` after `timeout` or
/// when a session ends unexpectedly.
void wait_until(Player &a, Player &b, Clock::duration timeout, const std::string &what,
                const std::function<bool()> &done) {
    const Clock::time_point deadline = Clock::now() + timeout;
    for (;;) {
        a.pump();
        b.pump();
        if (done()) {
            return;
        }
        require(!a.disconnected && !b.disconnected, "a session ended while waiting for " + what);
        if (Clock::now() > deadline) {
            fail("timed out waiting for " + what);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

Player make(const char *name, const mmo_client_config &config) {
    mmo::Result<mmo::Client> made = mmo::Client::create(config);
    require(made.ok(), std::string(name) + " create: " + detail(made.status()));
    return Player{name, std::move(made).value(), {}, {}};
}

uint32_t health(const Player &p) {
    mmo::Result<mmo::Resources> r = p.client.resources();
    require(r.ok(), std::string(p.name) + " resources: " + detail(r.status()));
    require(r->pools.size() > kHealthPool, std::string(p.name) + " has no health pool");
    require(r->pools[kHealthPool].pool_id == kHealthPool, "pool 0 is not pool id 0");
    return r->pools[kHealthPool].current;
}

mmo_item_slot slot(const Player &p, uint32_t index) {
    mmo::Result<mmo_item_slot> s = p.client.inventory_slot(index);
    require(s.ok(), "inventory_slot " + std::to_string(index) + ": " + detail(s.status()));
    return *s;
}

bool is_damage_to(const mmo::ClientEvent &e, uint32_t target) {
    return e.kind() == MMO_CLIENT_EVENT_KIND_COMBAT &&
           e.event.combat_kind == MMO_COMBAT_KIND_DAMAGE && e.event.target_entity_id == target;
}

/// Sends `op` for `p` (paired with `other` for pumping) and returns its answer.
mmo::ClientEvent inventory_answer(Player &p, Player &other, const mmo_inventory_op &op,
                                  const std::string &what) {
    const std::size_t mark = p.events.size();
    mmo::Result<uint32_t> request = p.client.inventory_op(op);
    require(request.ok(), what + ": " + detail(request.status()));
    const uint32_t id = *request;
    auto answer = [&, id](const mmo::ClientEvent &e) {
        return e.kind() == MMO_CLIENT_EVENT_KIND_INVENTORY_RESULT && e.event.request == id;
    };
    wait_until(p, other, kAnswerTimeout, "the answer to " + what,
               [&] { return p.find(mark, answer) != nullptr; });
    return *p.find(mark, answer);
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 6) {
        fail("usage: gameplay_client HOST PORT FINGERPRINT_HEX TOKEN_A TOKEN_B");
    }
    const char *host = argv[1];
    const long port = std::strtol(argv[2], nullptr, 10);
    require(port > 0 && port <= 65535, std::string("bad port ") + argv[2]);
    require(mmo::abi_compatible(), "the library's ABI version differs from the header's");

    mmo_client_config config = mmo::default_client_config();
    config.server_fingerprint_hex = argv[3];
    Player a = make("A", config);
    Player b = make("B", config);
    for (Player *p : {&a, &b}) {
        const char *token = p == &a ? argv[4] : argv[5];
        const mmo::Status s = p->client.connect(host, static_cast<uint16_t>(port), token);
        require(s.ok(), std::string(p->name) + " connect: " + detail(s));
    }

    // Both logged in, with their inventory and pools, and A sees B.
    wait_until(a, b, kLoginTimeout, "both logins, inventories, resources and B in A's view",
               [&] {
                   return a.welcomed && b.welcomed && a.inventory && b.inventory &&
                          a.resources && b.resources && a.in_view.count(b.entity_id) == 1;
               });
    const Clock::time_point settle_end = Clock::now() + kSettle;
    wait_until(a, b, kSettle + kAnswerTimeout, "the settle time",
               [&] { return Clock::now() >= settle_end; });

    // Both see the same content.
    mmo::Result<std::array<uint8_t, MMO_CONTENT_HASH_LEN_BYTES>> hash_a = a.client.content_hash();
    mmo::Result<std::array<uint8_t, MMO_CONTENT_HASH_LEN_BYTES>> hash_b = b.client.content_hash();
    require(hash_a.ok() && hash_b.ok(), "content_hash: " + mmo::last_error());
    require(*hash_a == *hash_b, "A and B got different content hashes");
    require(*hash_a != std::array<uint8_t, MMO_CONTENT_HASH_LEN_BYTES>{}, "zero content hash");

    // A strikes B.
    const uint32_t health_before = health(b);
    const std::size_t mark_a = a.events.size();
    const std::size_t mark_b = b.events.size();
    mmo::Result<uint32_t> strike = a.client.use_ability(kStrike, mmo::target_entity(b.entity_id));
    require(strike.ok(), "use_ability: " + detail(strike.status()));
    const uint32_t strike_id = *strike;
    auto strike_answer = [strike_id](const mmo::ClientEvent &e) {
        return e.kind() == MMO_CLIENT_EVENT_KIND_ABILITY_RESULT && e.event.request == strike_id;
    };
    const uint32_t target = b.entity_id;
    auto hit = [target](const mmo::ClientEvent &e) { return is_damage_to(e, target); };
    wait_until(a, b, kAnswerTimeout, "A's ability result",
               [&] { return a.find(mark_a, strike_answer) != nullptr; });
    const mmo::ClientEvent answer = *a.find(mark_a, strike_answer);
    require(answer.event.accepted == 1, "the strike was refused: " + answer.text);
    require(answer.event.ability_id == kStrike, "the result names another ability");
    wait_until(a, b, kAnswerTimeout, "the damage event on B seen by A and by B", [&] {
        return a.find(mark_a, hit) != nullptr && b.find(mark_b, hit) != nullptr;
    });
    const mmo::ClientEvent seen_by_a = *a.find(mark_a, hit);
    const mmo::ClientEvent seen_by_b = *b.find(mark_b, hit);
    require(seen_by_a.event.source_entity_id == a.entity_id, "the damage's source is not A");
    require(seen_by_a.event.has_ability == 1 && seen_by_a.event.ability_id == kStrike,
            "the damage does not name the strike");
    require(seen_by_a.event.amount == kStrikeDamage,
            "the strike did " + std::to_string(seen_by_a.event.amount) + " damage, want " +
                std::to_string(kStrikeDamage));
    require(seen_by_b.event.target_health == seen_by_a.event.target_health,
            "A and B disagree on B's health after the hit");
    require(seen_by_a.event.target_health < seen_by_a.event.target_health_max,
            "B's health after the hit is not below its maximum");
    // B's pools follow (a RESOURCES_CHANGED event), showing the lower health.
    wait_until(a, b, kAnswerTimeout, "B's health to drop in its resources", [&] {
        return b.find(mark_b,
                      [](const mmo::ClientEvent &e) {
                          return e.kind() == MMO_CLIENT_EVENT_KIND_RESOURCES_CHANGED;
                      }) != nullptr &&
               health(b) < health_before;
    });
    const uint32_t health_after = health(b);
    // A sees B's health in B's replicated state too (the snapshots carry it).
    const uint32_t expected_percent = (health_after * 100 + seen_by_a.event.target_health_max - 1) /
                                      seen_by_a.event.target_health_max;
    wait_until(a, b, kAnswerTimeout, "B's health percent in A's snapshots", [&] {
        mmo::Result<uint8_t> pct = a.client.entity_health(b.entity_id);
        return pct.ok() && *pct < 100;
    });
    mmo::Result<uint8_t> b_percent = a.client.entity_health(b.entity_id);
    require(b_percent.ok(), "entity_health: " + detail(b_percent.status()));
    require(static_cast<uint32_t>(*b_percent) == expected_percent,
            "A sees B at " + std::to_string(*b_percent) + " %, want " +
                std::to_string(expected_percent) + " %");
    mmo::Result<uint8_t> nobody = a.client.entity_health(0xFFFFFFF0u);
    require(!nobody.ok() && nobody.status().code() == MMO_RESULT_NOT_FOUND,
            "the health of an entity not in view is NOT_FOUND");
    mmo::Result<mmo::Cooldown> cooldown = a.client.ability_cooldown(kStrike);
    require(cooldown.ok(), "ability_cooldown: " + detail(cooldown.status()));
    require(cooldown->global_ms <= answer.event.global_cooldown_ms,
            "the global cooldown grew after the answer");

    // A moves its first bag slot to an empty one.
    mmo::Result<std::size_t> slots = a.client.inventory_slot_count();
    require(slots.ok(), "inventory_slot_count: " + detail(slots.status()));
    require(*slots > kEmptySlot, "the bag has only " + std::to_string(*slots) + " slots");
    const mmo_item_slot first = slot(a, 0);
    require(first.present == 1 && first.quantity > 0, "bag slot 0 is empty at start");
    require(slot(a, kEmptySlot).present == 0, "bag slot 23 is not empty at start");
    const mmo::ClientEvent moved =
        inventory_answer(a, b, mmo::inventory::move(0, kEmptySlot), "the move 0 -> 23");
    require(moved.event.accepted == 1, "the move was refused: " + moved.text);
    const mmo_item_slot now_last = slot(a, kEmptySlot);
    require(now_last.present == 1 && now_last.item_id == first.item_id &&
                now_last.quantity == first.quantity,
            "slot 23 does not hold what slot 0 held");
    require(slot(a, 0).present == 0, "slot 0 is not empty after the move");

    // A bad slot is refused with its kind.
    const mmo::ClientEvent refused =
        inventory_answer(a, b, mmo::inventory::move(kBadSlot, 1), "the move 999 -> 1");
    require(refused.event.accepted == 0, "a move from slot 999 was accepted");
    require(refused.refusal_kind() == "inventory_bad_slot",
            "refused as \"" + refused.refusal_kind() + "\", want inventory_bad_slot (" +
                refused.text + ")");

    // Both leave cleanly.
    for (Player *p : {&a, &b}) {
        const mmo::Status s = p->client.disconnect();
        require(s.ok(), std::string(p->name) + " disconnect: " + detail(s));
    }
    const Clock::time_point deadline = Clock::now() + kAnswerTimeout;
    while (!(a.disconnected && b.disconnected)) {
        require(Clock::now() < deadline, "the DISCONNECTED events did not come");
        a.pump();
        b.pump();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (const Player *p : {&a, &b}) {
        const mmo::ClientEvent &bye = p->events.back();
        require(bye.kind() == MMO_CLIENT_EVENT_KIND_DISCONNECTED &&
                    bye.event.disconnect_reason == MMO_DISCONNECT_REASON_CLIENT_QUIT,
                std::string(p->name) + " left with " +
                    mmo::disconnect_reason_name(bye.event.disconnect_reason) + ": " + bye.text);
    }

    std::printf("gameplay_client: ok a=%" PRIu32 " b=%" PRIu32 " damage=%" PRIu32
                " b_health=%" PRIu32 "->%" PRIu32 " moved_item=%" PRIu32 " refused=%s\n",
                a.entity_id, b.entity_id, seen_by_a.event.amount, health_before, health_after,
                first.item_id, refused.refusal_kind().c_str());
    return 0;
}
