// Event routing of the plugin: the client session's events (mmo::ClientEvent) dispatched by
// kind to the handlers that registered for that channel (the subsystem's connection
// delegates and entity manager, the movement, combat, inventory and resource components).
//
// Plain C++17 (the standard library and mmo.hpp only): the UObjects subscribe lambdas and
// this decides who hears what, so tests route real events from a real server without the
// engine. Used from one thread (the game thread), like the client handle.
#ifndef MMO_UE_LOGIC_EVENT_ROUTER_H
#define MMO_UE_LOGIC_EVENT_ROUTER_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "mmo.hpp"

namespace mmo {
namespace ue {

/// Who an event is for. Every event kind the library reports belongs to exactly one.
enum class EventChannel : uint8_t {
    /// WELCOME, REJOINED, RESUMED and DISCONNECTED: the session's start, its restart from
    /// the last save by another zone process, its continuation over a new connection, and
    /// its end.
    Connection = 0,
    /// ENTITY_SPAWNED and ENTITY_DESPAWNED: remote entities entering and leaving the view.
    Entity,
    /// CORRECTION: the server disagreed with the local prediction.
    Correction,
    /// CHAT: a chat line.
    Chat,
    /// ABILITY_RESULT: the answer to a use_ability request.
    Ability,
    /// INVENTORY_RESULT and INVENTORY_CHANGED: answers and new contents.
    Inventory,
    /// RESOURCES_CHANGED: the local character's pools.
    Resources,
    /// COMBAT: damage, heals, effects near (or on) the local character.
    Combat,
};

/// Number of channels.
inline constexpr std::size_t kEventChannelCount = 8;

/// The channel of an event kind; none for MMO_CLIENT_EVENT_KIND_NONE and for kinds this
/// build does not know (a newer library), which are counted as unrouted, not dropped
/// silently.
inline std::optional<EventChannel> channel_of(mmo_client_event_kind kind) noexcept {
    switch (kind) {
    case MMO_CLIENT_EVENT_KIND_WELCOME:
    case MMO_CLIENT_EVENT_KIND_REJOINED:
    case MMO_CLIENT_EVENT_KIND_RESUMED:
    case MMO_CLIENT_EVENT_KIND_DISCONNECTED: return EventChannel::Connection;
    case MMO_CLIENT_EVENT_KIND_ENTITY_SPAWNED:
    case MMO_CLIENT_EVENT_KIND_ENTITY_DESPAWNED: return EventChannel::Entity;
    case MMO_CLIENT_EVENT_KIND_CORRECTION: return EventChannel::Correction;
    case MMO_CLIENT_EVENT_KIND_CHAT:
    case MMO_CLIENT_EVENT_KIND_CHAT_REFUSED: return EventChannel::Chat;
    case MMO_CLIENT_EVENT_KIND_ABILITY_RESULT: return EventChannel::Ability;
    case MMO_CLIENT_EVENT_KIND_INVENTORY_RESULT:
    case MMO_CLIENT_EVENT_KIND_INVENTORY_CHANGED: return EventChannel::Inventory;
    case MMO_CLIENT_EVENT_KIND_RESOURCES_CHANGED: return EventChannel::Resources;
    case MMO_CLIENT_EVENT_KIND_COMBAT: return EventChannel::Combat;
    case MMO_CLIENT_EVENT_KIND_NONE: break;
    }
    return std::nullopt;
}

/// The stable lower-case name of a channel ("connection", "combat"...), for logs.
inline const char *channel_name(EventChannel channel) noexcept {
    switch (channel) {
    case EventChannel::Connection: return "connection";
    case EventChannel::Entity: return "entity";
    case EventChannel::Correction: return "correction";
    case EventChannel::Chat: return "chat";
    case EventChannel::Ability: return "ability";
    case EventChannel::Inventory: return "inventory";
    case EventChannel::Resources: return "resources";
    case EventChannel::Combat: return "combat";
    }
    return "unknown";
}

/// Dispatches events to the handlers of their channel, in subscription order.
///
/// A handler may subscribe or unsubscribe (itself included) while it runs: a handler added
/// during a dispatch first hears the next event; one removed is not called again.
class EventRouter {
public:
    /// A handler of one channel's events.
    using Handler = std::function<void(const mmo::ClientEvent &)>;
    /// Names a subscription for unsubscribe(); never 0 (0 is "no subscription").
    using SubscriptionId = uint64_t;

    /// Calls `handler` for every later event of `channel`; returns its id (never 0).
    /// An empty handler is refused with id 0.
    SubscriptionId subscribe(EventChannel channel, Handler handler) {
        if (!handler) {
            return 0;
        }
        const SubscriptionId id = ++last_id_;
        entries_.push_back(std::make_unique<Entry>(Entry{id, channel, true, std::move(handler)}));
        return id;
    }

    /// Stops a subscription; false when `id` is unknown (or already stopped).
    bool unsubscribe(SubscriptionId id) {
        for (const std::unique_ptr<Entry> &entry : entries_) {
            if (entry->id == id && entry->active) {
                // The entry (and the handler, which may be the one running) is destroyed
                // by compact() once no dispatch is running.
                entry->active = false;
                stopped_ = true;
                compact();
                return true;
            }
        }
        return false;
    }

    /// Handlers currently subscribed to `channel`.
    std::size_t handler_count(EventChannel channel) const noexcept {
        std::size_t count = 0;
        for (const std::unique_ptr<Entry> &entry : entries_) {
            count += (entry->channel == channel && entry->active) ? 1 : 0;
        }
        return count;
    }

    /// Sends `event` to its channel's handlers; returns how many were called (0 for an
    /// event without a channel, which is counted in unrouted()).
    std::size_t dispatch(const mmo::ClientEvent &event) {
        const std::optional<EventChannel> channel = channel_of(event.kind());
        if (!channel) {
            ++unrouted_;
            return 0;
        }
        ++routed_[static_cast<std::size_t>(*channel)];
        ++depth_;
        // Index loop over the size at entry: handlers added now wait for the next event.
        // Entries are heap-allocated, so a push_back during a call moves only pointers and
        // the running handler stays where it is.
        const std::size_t end = entries_.size();
        std::size_t called = 0;
        for (std::size_t i = 0; i < end; ++i) {
            Entry &entry = *entries_[i];
            if (entry.channel != *channel || !entry.active) {
                continue;
            }
            entry.handler(event);
            ++called;
        }
        --depth_;
        compact();
        return called;
    }

    /// Polls every queued event of `client` and dispatches each; returns how many events
    /// were polled, or the failed poll's status (events before it were dispatched).
    mmo::Result<std::size_t> pump(mmo::Client &client) {
        std::size_t polled = 0;
        for (;;) {
            mmo::Result<std::optional<mmo::ClientEvent>> next = client.poll_event();
            if (!next.ok()) {
                return next.status();
            }
            if (!next->has_value()) {
                return polled;
            }
            ++polled;
            dispatch(**next);
        }
    }

    /// Events dispatched on `channel` so far (whether or not anyone listened).
    uint64_t routed(EventChannel channel) const noexcept {
        return routed_[static_cast<std::size_t>(channel)];
    }
    /// Events that had no channel.
    uint64_t unrouted() const noexcept { return unrouted_; }

private:
    struct Entry {
        SubscriptionId id;
        EventChannel channel;
        /// False once unsubscribed (the entry is removed when no dispatch is running).
        bool active;
        /// Not empty (subscribe refuses empty handlers).
        Handler handler;
    };

    /// Removes stopped entries, unless a dispatch is running (its handler may be one).
    void compact() {
        if (depth_ != 0 || !stopped_) {
            return;
        }
        std::size_t kept = 0;
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            if (entries_[i]->active) {
                entries_[kept++] = std::move(entries_[i]);
            }
        }
        entries_.resize(kept);
        stopped_ = false;
    }

    /// Subscriptions in order, each on the heap so it never moves while its handler runs.
    std::vector<std::unique_ptr<Entry>> entries_;
    /// Some entry is stopped and waits for compact().
    bool stopped_ = false;
    /// Last id handed out (ids start at 1).
    SubscriptionId last_id_ = 0;
    /// Nesting of dispatch() calls (handlers may dispatch); compaction waits for 0.
    unsigned depth_ = 0;
    std::array<uint64_t, kEventChannelCount> routed_{};
    uint64_t unrouted_ = 0;
};

} // namespace ue
} // namespace mmo

#endif // MMO_UE_LOGIC_EVENT_ROUTER_H
