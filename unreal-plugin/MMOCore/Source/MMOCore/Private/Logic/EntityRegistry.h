// The entity manager's bookkeeping: which engine object (a handle: an actor pointer, a
// weak pointer, an index...) stands for which remote entity id, and its archetype.
//
// Plain C++17 (the standard library only). The subsystem spawns and destroys the actors;
// this only answers "is it known, what stands for it, what is left to clean up". Ordered
// by entity id, so iteration (and so spawn/destroy order on shutdown) is deterministic.
#ifndef MMO_UE_LOGIC_ENTITY_REGISTRY_H
#define MMO_UE_LOGIC_ENTITY_REGISTRY_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace mmo {
namespace ue {

/// Remote entity id -> (archetype, handle of what represents it).
template <class Handle>
class EntityRegistry {
public:
    /// One known entity.
    struct Entry {
        /// The archetype the server gave at spawn (picks the actor class).
        uint16_t archetype = 0;
        /// What represents it in the engine.
        Handle handle{};
    };

    /// Records `entity_id`; false (and nothing changes) when it is already known: the
    /// library reports a spawn once per entering the view, so a second one is a bug to log.
    bool add(uint32_t entity_id, uint16_t archetype, Handle handle) {
        return entries_.emplace(entity_id, Entry{archetype, std::move(handle)}).second;
    }

    /// Forgets `entity_id` and returns what represented it (to destroy), or none when it
    /// was not known.
    std::optional<Entry> remove(uint32_t entity_id) {
        auto it = entries_.find(entity_id);
        if (it == entries_.end()) {
            return std::nullopt;
        }
        Entry entry = std::move(it->second);
        entries_.erase(it);
        return entry;
    }

    /// The entry of `entity_id`, or null.
    const Entry *find(uint32_t entity_id) const {
        auto it = entries_.find(entity_id);
        return it == entries_.end() ? nullptr : &it->second;
    }

    bool contains(uint32_t entity_id) const { return entries_.count(entity_id) != 0; }
    std::size_t size() const noexcept { return entries_.size(); }
    bool empty() const noexcept { return entries_.empty(); }

    /// Calls `visit(entity_id, entry)` for each, in entity id order.
    template <class F>
    void for_each(F &&visit) const {
        for (const auto &pair : entries_) {
            visit(pair.first, pair.second);
        }
    }

    /// Forgets every entity and returns them (in id order) for the caller to destroy: the
    /// end of a session despawns everything.
    std::vector<std::pair<uint32_t, Entry>> take_all() {
        std::vector<std::pair<uint32_t, Entry>> all;
        all.reserve(entries_.size());
        for (auto &pair : entries_) {
            all.emplace_back(pair.first, std::move(pair.second));
        }
        entries_.clear();
        return all;
    }

private:
    std::map<uint32_t, Entry> entries_;
};

} // namespace ue
} // namespace mmo

#endif // MMO_UE_LOGIC_ENTITY_REGISTRY_H
