// MMO Netcore C++ API: header-only RAII wrappers over the C ABI in mmo.h.
//
// C++17, no exceptions and no RTTI needed (builds with -fno-exceptions -fno-rtti):
//
// - Handles (Predictor, Interpolator, SnapshotWriter, SnapshotReader, Replicator,
//   Client) are move-only owners of the C handles; the destructor calls the matching mmo_*_free.
//   A moved-from handle is empty (`valid()` false); calling a method on it is a
//   MMO_RESULT_NULL_ARGUMENT status, not a crash.
// - Fallible calls return `mmo::Status` or `mmo::Result<T>` ([[nodiscard]]): `ok()`,
//   `code()` (the mmo_result), `message()` (mmo_result_message text); `mmo::last_error()`
//   is the per-thread detail text of the latest failure. Nothing throws.
// - Buffers are `mmo::span<T>` (C++17 has no std::span): pointer + size, built from a
//   C array, std::array, any container with data()/size(), or (pointer, size).
// - Units: the library uses metres (and m/s); Unreal uses centimetres. Convert with
//   mmo::cm_to_m / mmo::m_to_cm (scalars, mmo_vec3, or any vector type with X/Y/Z members
//   such as FVector via from_unreal_cm / to_unreal_cm): this is the ONE place where the
//   factor 100 lives.
// - Threading is the C ABI's: a handle is used from one thread at a time (the game thread).
#ifndef MMO_HPP
#define MMO_HPP

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mmo.h"

namespace mmo {

// ---------------------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------------------

/// True when the linked library has the ABI this header was generated for. Refuse to run
/// otherwise.
inline bool abi_compatible() noexcept { return mmo_abi_version() == MMO_ABI_VERSION; }

// ---------------------------------------------------------------------------------------
// Units: centimetres (Unreal) <-> metres (the library). The only place with the factor.
// ---------------------------------------------------------------------------------------

/// Centimetres per metre.
inline constexpr float kCentimetresPerMetre = 100.0f;

/// Centimetres (or cm/s) to metres (or m/s).
constexpr float cm_to_m(float cm) noexcept { return cm / kCentimetresPerMetre; }
/// Metres (or m/s) to centimetres (or cm/s).
constexpr float m_to_cm(float m) noexcept { return m * kCentimetresPerMetre; }
/// Centimetres to metres, double precision (Unreal's FVector components are doubles).
constexpr double cm_to_m(double cm) noexcept {
    return cm / static_cast<double>(kCentimetresPerMetre);
}
/// Metres to centimetres, double precision.
constexpr double m_to_cm(double m) noexcept {
    return m * static_cast<double>(kCentimetresPerMetre);
}

/// A vector in centimetres to metres (component-wise).
constexpr mmo_vec3 cm_to_m(const mmo_vec3 &v_cm) noexcept {
    return mmo_vec3{cm_to_m(v_cm.x), cm_to_m(v_cm.y), cm_to_m(v_cm.z)};
}
/// A vector in metres to centimetres (component-wise).
constexpr mmo_vec3 m_to_cm(const mmo_vec3 &v_m) noexcept {
    return mmo_vec3{m_to_cm(v_m.x), m_to_cm(v_m.y), m_to_cm(v_m.z)};
}

/// Any vector type with X, Y, Z members (Unreal's FVector), in centimetres, to mmo_vec3 in
/// metres. Same axes (X forward, Y right, Z up): only the scale changes.
template <class V>
constexpr auto from_unreal_cm(const V &v_cm) noexcept
    -> decltype(static_cast<double>(v_cm.X), static_cast<double>(v_cm.Y),
                static_cast<double>(v_cm.Z), mmo_vec3{}) {
    return mmo_vec3{static_cast<float>(cm_to_m(static_cast<double>(v_cm.X))),
                    static_cast<float>(cm_to_m(static_cast<double>(v_cm.Y))),
                    static_cast<float>(cm_to_m(static_cast<double>(v_cm.Z)))};
}

/// mmo_vec3 in metres to a vector type with X, Y, Z members (Unreal's FVector), in
/// centimetres. `V` must be constructible from three components (FVector(X, Y, Z)) or an
/// aggregate of three.
template <class V>
constexpr V to_unreal_cm(const mmo_vec3 &v_m) noexcept {
    using C = std::remove_cv_t<std::remove_reference_t<decltype(std::declval<V &>().X)>>;
    return V{static_cast<C>(m_to_cm(static_cast<double>(v_m.x))),
             static_cast<C>(m_to_cm(static_cast<double>(v_m.y))),
             static_cast<C>(m_to_cm(static_cast<double>(v_m.z)))};
}

// ---------------------------------------------------------------------------------------
// span
// ---------------------------------------------------------------------------------------

/// A non-owning view of `size()` contiguous `T`s (a tiny C++17 stand-in for std::span).
template <class T>
class span {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;

    constexpr span() noexcept = default;
    constexpr span(T *data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <std::size_t N>
    constexpr span(T (&array)[N]) noexcept : data_(array), size_(N) {}
    /// From a container with data() and size() (std::vector, std::array, std::string,
    /// TArray through a small adapter...), or another span of a convertible type.
    template <class C,
              class = std::enable_if_t<
                  !std::is_array<std::remove_reference_t<C>>::value &&
                  std::is_convertible<decltype(std::declval<C &>().data()), T *>::value>,
              class = decltype(static_cast<std::size_t>(std::declval<C &>().size()))>
    constexpr span(C &&container) noexcept
        : data_(container.data()), size_(static_cast<std::size_t>(container.size())) {}

    constexpr T *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr std::size_t size_bytes() const noexcept { return size_ * sizeof(T); }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T &operator[](std::size_t i) const noexcept {
        assert(i < size_);
        return data_[i];
    }
    constexpr T *begin() const noexcept { return data_; }
    constexpr T *end() const noexcept { return data_ + size_; }
    /// The first `n` elements (`n` is clamped to the size).
    constexpr span first(std::size_t n) const noexcept {
        return span(data_, n < size_ ? n : size_);
    }

private:
    T *data_ = nullptr;
    std::size_t size_ = 0;
};

// ---------------------------------------------------------------------------------------
// Status and Result
// ---------------------------------------------------------------------------------------

/// The fixed description of a result code (mmo_result_message), e.g. "success".
inline std::string result_message(mmo_result code) {
    std::size_t len = 0;
    // A size query answers BUFFER_TOO_SMALL with the length.
    (void)mmo_result_message(static_cast<uint32_t>(code), nullptr, 0, &len);
    std::string text(len + 1, '\0');
    if (mmo_result_message(static_cast<uint32_t>(code), &text[0], text.size(), &len) !=
        MMO_RESULT_OK) {
        return std::string();
    }
    text.resize(len);
    return text;
}

/// The calling thread's last error text (mmo_last_error_message): details of the latest
/// failed call on this thread, such as the offending config field. Empty before any.
inline std::string last_error() {
    std::size_t len = 0;
    (void)mmo_last_error_message(nullptr, 0, &len);
    std::string text(len + 1, '\0');
    if (mmo_last_error_message(&text[0], text.size(), &len) != MMO_RESULT_OK) {
        return std::string();
    }
    text.resize(len);
    return text;
}

/// Outcome of a call that returns nothing else.
class [[nodiscard]] Status {
public:
    constexpr Status() noexcept = default;
    constexpr explicit Status(mmo_result code) noexcept : code_(code) {}

    constexpr bool ok() const noexcept { return code_ == MMO_RESULT_OK; }
    constexpr explicit operator bool() const noexcept { return ok(); }
    constexpr mmo_result code() const noexcept { return code_; }
    /// The code's fixed description; see mmo::last_error() for the details.
    std::string message() const { return result_message(code_); }

    friend constexpr bool operator==(Status a, Status b) noexcept { return a.code_ == b.code_; }
    friend constexpr bool operator!=(Status a, Status b) noexcept { return a.code_ != b.code_; }

private:
    mmo_result code_ = MMO_RESULT_OK;
};

/// A value or the status of why there is none. Check ok() before value().
template <class T>
class [[nodiscard]] Result {
public:
    /// Success.
    Result(T value) : value_(std::move(value)) {}
    /// Failure (`status` must not be OK).
    Result(Status status) noexcept : status_(status) {
        assert(!status.ok() && "a Result without a value needs a failure status");
        if (status_.ok()) {
            status_ = Status(MMO_RESULT_EMPTY);
        }
    }

    bool ok() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }
    mmo_result code() const noexcept { return status_.code(); }
    Status status() const noexcept { return status_; }
    std::string message() const { return status_.message(); }

    /// The value; only valid when ok() (asserted).
    T &value() & noexcept {
        assert(ok());
        return *value_;
    }
    const T &value() const & noexcept {
        assert(ok());
        return *value_;
    }
    T &&value() && noexcept {
        assert(ok());
        return std::move(*value_);
    }
    T &operator*() & noexcept { return value(); }
    const T &operator*() const & noexcept { return value(); }
    T *operator->() noexcept { return &value(); }
    const T *operator->() const noexcept { return &value(); }
    /// The value, or `fallback` on failure.
    T value_or(T fallback) const & { return ok() ? *value_ : std::move(fallback); }

private:
    std::optional<T> value_;
    Status status_;
};

namespace detail {

/// Calls a C function writing one output; the output is returned only on success.
template <class T, class F>
Result<T> out(F &&call) {
    T value{};
    const mmo_result code = call(&value);
    if (code != MMO_RESULT_OK) {
        return Status(code);
    }
    return value;
}

/// Move-only owner of a C handle freed with `Free`.
template <class H, void (*Free)(H *)>
class Owner {
public:
    Owner() noexcept = default;
    explicit Owner(H *handle) noexcept : handle_(handle) {}
    Owner(const Owner &) = delete;
    Owner &operator=(const Owner &) = delete;
    Owner(Owner &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Owner &operator=(Owner &&other) noexcept {
        if (this != &other) {
            reset();
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    ~Owner() { reset(); }

    /// The C handle (still owned here), or NULL when empty.
    H *get() const noexcept { return handle_; }
    /// Gives up ownership: the caller must free the returned handle.
    H *release() noexcept { return std::exchange(handle_, nullptr); }
    /// Frees the handle now (no-op when empty).
    void reset() noexcept {
        Free(handle_); // _free(NULL) is a no-op
        handle_ = nullptr;
    }
    bool valid() const noexcept { return handle_ != nullptr; }
    explicit operator bool() const noexcept { return valid(); }

private:
    H *handle_ = nullptr;
};

} // namespace detail

// ---------------------------------------------------------------------------------------
// Defaults and small value helpers
// ---------------------------------------------------------------------------------------

/// The core's default movement config (metres, m/s).
inline mmo_movement_config default_movement_config() noexcept {
    mmo_movement_config c{};
    (void)mmo_movement_config_default(&c);
    return c;
}
/// The default predictor config (30 Hz, 128 inputs, 0.1 s half-life, 5 m snap).
inline mmo_prediction_config default_prediction_config() noexcept {
    mmo_prediction_config c{};
    (void)mmo_prediction_config_default(&c);
    return c;
}
/// The default interpolation config.
inline mmo_interpolation_config default_interpolation_config() noexcept {
    mmo_interpolation_config c{};
    (void)mmo_interpolation_config_default(&c);
    return c;
}
/// The default snapshot (codec) config.
inline mmo_snapshot_config default_snapshot_config() noexcept {
    mmo_snapshot_config c{};
    (void)mmo_snapshot_config_default(&c);
    return c;
}
/// The default replication config.
inline mmo_replication_config default_replication_config() noexcept {
    mmo_replication_config c{};
    (void)mmo_replication_config_default(&c);
    return c;
}

/// Quantizes device controls exactly as the core does (see mmo_move_input_from_controls).
inline Result<mmo_move_input> move_input_from_controls(float forward, float right,
                                                       float yaw_rad, uint8_t buttons) {
    return detail::out<mmo_move_input>([&](mmo_move_input *o) {
        return mmo_move_input_from_controls(forward, right, yaw_rad, buttons, o);
    });
}

// ---------------------------------------------------------------------------------------
// Predictor
// ---------------------------------------------------------------------------------------

/// Where the unacknowledged inputs copied by Predictor::unacked_inputs start.
struct UnackedInputs {
    std::size_t count = 0;  ///< Inputs written to the caller's span.
    uint32_t first_seq = 0; ///< Sequence of the first one (0 when none).
};

/// Client-side prediction and reconciliation of the local character (mmo_predictor).
class Predictor {
public:
    Predictor() noexcept = default;

    /// A predictor starting at `initial` (metres). Configs and blockers are copied.
    static Result<Predictor> create(const mmo_movement_config &movement,
                                    const mmo_prediction_config &config,
                                    const mmo_character_state &initial,
                                    span<const mmo_aabb> blockers = {}) {
        mmo_predictor *raw = nullptr;
        const mmo_result code = mmo_predictor_new(&movement, blockers.data(), blockers.size(),
                                                  &config, &initial, &raw);
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        return Predictor(raw);
    }

    /// Applies `input` now; returns its sequence number (send it with the input).
    Result<uint32_t> push_input(const mmo_move_input &input) {
        return detail::out<uint32_t>(
            [&](uint32_t *o) { return mmo_predictor_push_input(h_.get(), &input, o); });
    }
    /// The predicted state after the newest input.
    Result<mmo_character_state> predicted() const {
        return detail::out<mmo_character_state>(
            [&](mmo_character_state *o) { return mmo_predictor_predicted(h_.get(), o); });
    }
    /// Reconciles with the server's state after input `ack_input_seq`.
    Result<mmo_reconcile_result> reconcile(uint32_t ack_input_seq,
                                           const mmo_character_state &server_state) {
        return detail::out<mmo_reconcile_result>([&](mmo_reconcile_result *o) {
            return mmo_predictor_reconcile(h_.get(), ack_input_seq, &server_state, o);
        });
    }
    /// Decays the visual correction offset by `dt_s` seconds of render time.
    Status advance_visual(float dt_s) {
        return Status(mmo_predictor_advance_visual(h_.get(), dt_s));
    }
    /// The visual correction offset, metres.
    Result<mmo_vec3> visual_offset() const {
        return detail::out<mmo_vec3>(
            [&](mmo_vec3 *o) { return mmo_predictor_visual_offset(h_.get(), o); });
    }
    /// Where to draw the character (predicted + visual offset), metres.
    Result<mmo_vec3> render_position() const {
        return detail::out<mmo_vec3>(
            [&](mmo_vec3 *o) { return mmo_predictor_render_position(h_.get(), o); });
    }
    /// Forgets the history and continues from `state` (teleport, respawn, zone transfer).
    Status reset(const mmo_character_state &state) {
        return Status(mmo_predictor_reset(h_.get(), &state));
    }
    /// Copies the newest unacknowledged inputs (oldest first) into `out`.
    Result<UnackedInputs> unacked_inputs(span<mmo_move_input> out) const {
        UnackedInputs u;
        const mmo_result code = mmo_predictor_unacked_inputs(h_.get(), out.data(), out.size(),
                                                             &u.count, &u.first_seq);
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        return u;
    }

    mmo_predictor *get() const noexcept { return h_.get(); }
    mmo_predictor *release() noexcept { return h_.release(); }
    bool valid() const noexcept { return h_.valid(); }
    explicit operator bool() const noexcept { return valid(); }

private:
    explicit Predictor(mmo_predictor *raw) noexcept : h_(raw) {}
    detail::Owner<mmo_predictor, mmo_predictor_free> h_;
};

// ---------------------------------------------------------------------------------------
// Interpolator
// ---------------------------------------------------------------------------------------

/// Interpolation buffer of one remote entity (mmo_interpolator).
class Interpolator {
public:
    Interpolator() noexcept = default;

    static Result<Interpolator> create(const mmo_interpolation_config &config) {
        mmo_interpolator *raw = nullptr;
        const mmo_result code = mmo_interpolator_new(&config, &raw);
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        return Interpolator(raw);
    }

    /// Stores a server state (metres) stamped `server_time_us`, arrived at `arrival_now_us`.
    Result<mmo_push_outcome> push(uint64_t server_time_us, uint64_t arrival_now_us,
                                  const mmo_vec3 &position_m, float yaw_rad) {
        return detail::out<mmo_push_outcome>([&](mmo_push_outcome *o) {
            return mmo_interpolator_push(h_.get(), server_time_us, arrival_now_us, &position_m,
                                         yaw_rad, o);
        });
    }
    /// Advances the render clock to `now_us`; where to draw. MMO_RESULT_EMPTY before any
    /// sample.
    Result<mmo_interp_output> sample(uint64_t now_us) {
        return detail::out<mmo_interp_output>(
            [&](mmo_interp_output *o) { return mmo_interpolator_sample(h_.get(), now_us, o); });
    }
    /// Forgets all samples and clock estimates.
    Status clear() { return Status(mmo_interpolator_clear(h_.get())); }

    mmo_interpolator *get() const noexcept { return h_.get(); }
    mmo_interpolator *release() noexcept { return h_.release(); }
    bool valid() const noexcept { return h_.valid(); }
    explicit operator bool() const noexcept { return valid(); }

private:
    explicit Interpolator(mmo_interpolator *raw) noexcept : h_(raw) {}
    detail::Owner<mmo_interpolator, mmo_interpolator_free> h_;
};

// ---------------------------------------------------------------------------------------
// Snapshot codec
// ---------------------------------------------------------------------------------------

/// Server-side codec state for one client (mmo_snapshot_writer).
class SnapshotWriter {
public:
    SnapshotWriter() noexcept = default;

    static Result<SnapshotWriter> create(const mmo_snapshot_config &config) {
        mmo_snapshot_writer *raw = nullptr;
        const mmo_result code = mmo_snapshot_writer_new(&config, &raw);
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        return SnapshotWriter(raw);
    }

    /// Encodes the next snapshot into `datagram` (config.max_len_bytes always suffices).
    /// `owner` may be NULL.
    Result<mmo_snapshot_report> encode(uint32_t tick, uint32_t ack_input_seq,
                                       const mmo_character_state *owner,
                                       span<const mmo_snapshot_entity_in> entities,
                                       span<uint8_t> datagram) {
        return detail::out<mmo_snapshot_report>([&](mmo_snapshot_report *o) {
            return mmo_snapshot_writer_encode(h_.get(), tick, ack_input_seq, owner,
                                              entities.data(), entities.size(), datagram.data(),
                                              datagram.size(), o);
        });
    }
    /// Copies the ids the last encode wrote into `out`; returns how many.
    Result<std::size_t> written_ids(span<uint32_t> out) const {
        return detail::out<std::size_t>([&](std::size_t *n) {
            return mmo_snapshot_writer_written_ids(h_.get(), out.data(), out.size(), n);
        });
    }
    /// The client must forget `entity_id` (a leave record is sent until delivered).
    Status remove_entity(uint32_t entity_id) {
        return Status(mmo_snapshot_writer_remove_entity(h_.get(), entity_id));
    }
    /// Decodes an input datagram from this client (processing its snapshot ack).
    Result<mmo_input_batch> receive_input(span<const uint8_t> datagram) {
        return detail::out<mmo_input_batch>([&](mmo_input_batch *o) {
            return mmo_snapshot_writer_receive_input(h_.get(), datagram.data(), datagram.size(),
                                                     o);
        });
    }

    mmo_snapshot_writer *get() const noexcept { return h_.get(); }
    mmo_snapshot_writer *release() noexcept { return h_.release(); }
    bool valid() const noexcept { return h_.valid(); }
    explicit operator bool() const noexcept { return valid(); }

private:
    explicit SnapshotWriter(mmo_snapshot_writer *raw) noexcept : h_(raw) {}
    detail::Owner<mmo_snapshot_writer, mmo_snapshot_writer_free> h_;
};

/// Client-side codec state (mmo_snapshot_reader).
class SnapshotReader {
public:
    SnapshotReader() noexcept = default;

    static Result<SnapshotReader> create(const mmo_snapshot_config &config) {
        mmo_snapshot_reader *raw = nullptr;
        const mmo_result code = mmo_snapshot_reader_new(&config, &raw);
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        return SnapshotReader(raw);
    }

    /// Decodes a snapshot datagram; applies it when newer than the current one.
    Result<mmo_snapshot_info> receive(span<const uint8_t> datagram) {
        return detail::out<mmo_snapshot_info>([&](mmo_snapshot_info *o) {
            return mmo_snapshot_reader_receive(h_.get(), datagram.data(), datagram.size(), o);
        });
    }
    /// Entity record `index` of the current snapshot.
    Result<mmo_snapshot_entity> entity(std::size_t index) const {
        return detail::out<mmo_snapshot_entity>([&](mmo_snapshot_entity *o) {
            return mmo_snapshot_reader_entity(h_.get(), index, o);
        });
    }
    /// Copies the current snapshot's leave ids into `out`; returns how many.
    Result<std::size_t> leaves(span<uint32_t> out) const {
        return detail::out<std::size_t>([&](std::size_t *n) {
            return mmo_snapshot_reader_leaves(h_.get(), out.data(), out.size(), n);
        });
    }
    /// Encodes an input datagram (inputs `first_seq`.., plus the snapshot acks) into
    /// `datagram` (256 bytes always suffice); returns its length.
    Result<std::size_t> encode_input(uint32_t first_seq, span<const mmo_move_input> inputs,
                                     span<uint8_t> datagram) {
        return detail::out<std::size_t>([&](std::size_t *n) {
            return mmo_snapshot_reader_encode_input(h_.get(), first_seq, inputs.data(),
                                                    inputs.size(), datagram.data(),
                                                    datagram.size(), n);
        });
    }

    mmo_snapshot_reader *get() const noexcept { return h_.get(); }
    mmo_snapshot_reader *release() noexcept { return h_.release(); }
    bool valid() const noexcept { return h_.valid(); }
    explicit operator bool() const noexcept { return valid(); }

private:
    explicit SnapshotReader(mmo_snapshot_reader *raw) noexcept : h_(raw) {}
    detail::Owner<mmo_snapshot_reader, mmo_snapshot_reader_free> h_;
};

// ---------------------------------------------------------------------------------------
// Replicator
// ---------------------------------------------------------------------------------------

/// Replication priority category.
enum class Category : uint32_t {
    Critical = MMO_PRIORITY_CATEGORY_CRITICAL,
    High = MMO_PRIORITY_CATEGORY_HIGH,
    Medium = MMO_PRIORITY_CATEGORY_MEDIUM,
    Low = MMO_PRIORITY_CATEGORY_LOW,
};

/// A list of a client's current plan.
enum class PlanList : uint32_t {
    Candidates = MMO_PLAN_LIST_CANDIDATES,
    Entered = MMO_PLAN_LIST_ENTERED,
    Left = MMO_PLAN_LIST_LEFT,
    Selected = MMO_PLAN_LIST_SELECTED,
};

/// A viewer following entity `entity_id`.
inline mmo_viewer viewer_entity(uint32_t entity_id) noexcept {
    mmo_viewer v{};
    v.kind = MMO_VIEWER_KIND_ENTITY;
    v.entity_id = entity_id;
    return v;
}
/// A viewer at a fixed position (metres).
inline mmo_viewer viewer_position(const mmo_vec3 &position_m) noexcept {
    mmo_viewer v{};
    v.kind = MMO_VIEWER_KIND_POSITION;
    v.position_m = position_m;
    return v;
}

/// Replication priority and area of interest of one zone (mmo_replicator).
class Replicator {
public:
    Replicator() noexcept = default;

    static Result<Replicator> create(const mmo_replication_config &config) {
        mmo_replicator *raw = nullptr;
        const mmo_result code = mmo_replicator_new(&config, &raw);
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        return Replicator(raw);
    }

    /// Adds or moves entity `entity_id` (metres).
    Status update_entity(uint32_t entity_id, const mmo_vec3 &position_m, Category category) {
        return Status(mmo_replicator_update_entity(h_.get(), entity_id, &position_m,
                                                   static_cast<uint32_t>(category)));
    }
    Status remove_entity(uint32_t entity_id) {
        return Status(mmo_replicator_remove_entity(h_.get(), entity_id));
    }
    Status add_client(uint32_t client_id, const mmo_viewer &viewer) {
        return Status(mmo_replicator_add_client(h_.get(), client_id, &viewer));
    }
    Status set_viewer(uint32_t client_id, const mmo_viewer &viewer) {
        return Status(mmo_replicator_set_viewer(h_.get(), client_id, &viewer));
    }
    Status remove_client(uint32_t client_id) {
        return Status(mmo_replicator_remove_client(h_.get(), client_id));
    }
    /// Encoder mode: plans `tick` for the client; then read the lists and commit() once.
    Result<mmo_plan_info> plan_tick(uint32_t tick, uint32_t client_id) {
        return detail::out<mmo_plan_info>([&](mmo_plan_info *o) {
            return mmo_replicator_plan_tick(h_.get(), tick, client_id, o);
        });
    }
    /// Encoder mode: what the planned tick's datagram carried.
    Status commit(uint32_t client_id, span<const uint32_t> sent_ids, uint32_t bytes_used) {
        return Status(mmo_replicator_commit(h_.get(), client_id, sent_ids.data(),
                                            sent_ids.size(), bytes_used));
    }
    /// Estimate mode: plans, selects within the budget and commits.
    Result<mmo_plan_info> select_within_budget(uint32_t tick, uint32_t client_id,
                                               uint32_t estimated_bytes_per_entity) {
        return detail::out<mmo_plan_info>([&](mmo_plan_info *o) {
            return mmo_replicator_select_within_budget(h_.get(), tick, client_id,
                                                       estimated_bytes_per_entity, o);
        });
    }
    /// Copies a list of the client's most recent plan into `out`; returns its length.
    Result<std::size_t> plan_ids(uint32_t client_id, PlanList list, span<uint32_t> out) const {
        return detail::out<std::size_t>([&](std::size_t *n) {
            return mmo_replicator_plan_ids(h_.get(), client_id, static_cast<uint32_t>(list),
                                           out.data(), out.size(), n);
        });
    }

    mmo_replicator *get() const noexcept { return h_.get(); }
    mmo_replicator *release() noexcept { return h_.release(); }
    bool valid() const noexcept { return h_.valid(); }
    explicit operator bool() const noexcept { return valid(); }

private:
    explicit Replicator(mmo_replicator *raw) noexcept : h_(raw) {}
    detail::Owner<mmo_replicator, mmo_replicator_free> h_;
};

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// The stable snake_case label of a rejection kind ("none", "speed"...), or "" for a value
/// that names no kind.
inline const char *rejection_kind_name(mmo_rejection_kind kind) noexcept {
    const char *name = mmo_rejection_kind_name(static_cast<uint32_t>(kind));
    return name != nullptr ? name : "";
}

inline Result<mmo_rejection_kind> validate_input(const mmo_move_input &input) {
    return detail::out<mmo_rejection_kind>(
        [&](mmo_rejection_kind *o) { return mmo_validate_input(&input, o); });
}
inline Result<mmo_rejection_kind> check_speed(const mmo_vec3 &prev_pos_m,
                                              const mmo_vec3 &new_pos_m, float elapsed_s,
                                              float max_speed_mps, float tolerance_frac) {
    return detail::out<mmo_rejection_kind>([&](mmo_rejection_kind *o) {
        return mmo_check_speed(&prev_pos_m, &new_pos_m, elapsed_s, max_speed_mps,
                               tolerance_frac, o);
    });
}
inline Result<mmo_rejection_kind> check_teleport(const mmo_vec3 &prev_pos_m,
                                                 const mmo_vec3 &new_pos_m, float max_jump_m) {
    return detail::out<mmo_rejection_kind>([&](mmo_rejection_kind *o) {
        return mmo_check_teleport(&prev_pos_m, &new_pos_m, max_jump_m, o);
    });
}
inline Result<mmo_rejection_kind> check_resource_cost(double available, double cost) {
    return detail::out<mmo_rejection_kind>(
        [&](mmo_rejection_kind *o) { return mmo_check_resource_cost(available, cost, o); });
}
inline Result<mmo_rejection_kind> check_cooldown(uint64_t now_us, uint64_t ready_at_us) {
    return detail::out<mmo_rejection_kind>(
        [&](mmo_rejection_kind *o) { return mmo_check_cooldown(now_us, ready_at_us, o); });
}
inline Result<mmo_rejection_kind> check_range(const mmo_vec3 &origin_m,
                                              const mmo_vec3 &target_m, float max_range_m) {
    return detail::out<mmo_rejection_kind>([&](mmo_rejection_kind *o) {
        return mmo_check_range(&origin_m, &target_m, max_range_m, o);
    });
}

// ---------------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------------

/// Sets (NULL: clears) the log callback; records are delivered by poll_log().
inline Status set_log_callback(mmo_log_callback callback, void *user_data) {
    return Status(mmo_set_log_callback(callback, user_data));
}
/// Sets the most verbose level recorded.
inline Status set_log_level(mmo_log_level level) {
    return Status(mmo_set_log_level(static_cast<uint32_t>(level)));
}
/// Delivers up to `max_records` queued records (0: all) to the callback on this thread;
/// returns how many.
inline Result<std::size_t> poll_log(std::size_t max_records = 0) {
    return detail::out<std::size_t>(
        [&](std::size_t *n) { return mmo_poll_log(max_records, n); });
}


// ---------------------------------------------------------------------------------------
// Client: a whole network session (mmo_client)
// ---------------------------------------------------------------------------------------

/// The default client config: set `server_fingerprint_hex` (required) before create().
inline mmo_client_config default_client_config() noexcept {
    mmo_client_config c{};
    (void)mmo_client_config_default(&c);
    return c;
}

/// The stable snake_case name of a disconnect reason ("client_quit", "bad_token",
/// "connect_failed"...), or "unknown".
inline const char *disconnect_reason_name(mmo_disconnect_reason reason) noexcept {
    switch (reason) {
    case MMO_DISCONNECT_REASON_NONE: return "none";
    case MMO_DISCONNECT_REASON_CLIENT_QUIT: return "client_quit";
    case MMO_DISCONNECT_REASON_SERVER_SHUTDOWN: return "server_shutdown";
    case MMO_DISCONNECT_REASON_PROTOCOL_MISMATCH: return "protocol_mismatch";
    case MMO_DISCONNECT_REASON_BAD_TOKEN: return "bad_token";
    case MMO_DISCONNECT_REASON_SERVER_FULL: return "server_full";
    case MMO_DISCONNECT_REASON_PROTOCOL_VIOLATION: return "protocol_violation";
    case MMO_DISCONNECT_REASON_TIMEOUT: return "timeout";
    case MMO_DISCONNECT_REASON_KICKED: return "kicked";
    case MMO_DISCONNECT_REASON_DUPLICATE_LOGIN: return "duplicate_login";
    case MMO_DISCONNECT_REASON_SERVICE_UNAVAILABLE: return "service_unavailable";
    case MMO_DISCONNECT_REASON_CONNECT_FAILED: return "connect_failed";
    }
    return "unknown";
}

/// One client event with its text (the chat line or the disconnect message; empty for
/// other kinds), copied so it outlives the next poll.
struct ClientEvent {
    mmo_client_event event{};
    std::string text;

    mmo_client_event_kind kind() const noexcept { return event.kind; }
    /// A refused ability or inventory result, or a CHAT_REFUSED event: the stable refusal
    /// kind ("inventory_bad_slot", "chat_muted"...); empty otherwise.
    std::string refusal_kind() const {
        return text.substr(0, std::min(text.size(), event.refusal_kind_len_bytes));
    }
    /// A CHAT event: the sender's character name.
    std::string chat_from() const {
        if (event.kind != MMO_CLIENT_EVENT_KIND_CHAT) return std::string();
        return text.substr(0, std::min(text.size(), event.chat_from_len_bytes));
    }
    /// A CHAT event: the line without the sender's name.
    std::string chat_line() const {
        if (event.kind != MMO_CLIENT_EVENT_KIND_CHAT) return std::string();
        const size_t skip = event.chat_from_len_bytes + 2; // "<name>: "
        return skip <= text.size() ? text.substr(skip) : std::string();
    }
};

/// Ability targets (mmo_ability_target).
inline mmo_ability_target target_self() noexcept {
    mmo_ability_target t{};
    t.kind = MMO_TARGET_KIND_SELF_TARGET;
    return t;
}
inline mmo_ability_target target_entity(uint32_t entity_id) noexcept {
    mmo_ability_target t{};
    t.kind = MMO_TARGET_KIND_ENTITY;
    t.entity_id = entity_id;
    return t;
}
/// A point on the ground, metres.
inline mmo_ability_target target_ground_point(const mmo_vec3 &point_m) noexcept {
    mmo_ability_target t{};
    t.kind = MMO_TARGET_KIND_GROUND_POINT;
    t.point_m = point_m;
    return t;
}
/// A direction from the caster (need not be normalised).
inline mmo_ability_target target_direction(const mmo_vec3 &direction) noexcept {
    mmo_ability_target t{};
    t.kind = MMO_TARGET_KIND_DIRECTION;
    t.point_m = direction;
    return t;
}

/// Inventory operations (mmo_inventory_op); slots are bag slot indices.
namespace inventory {
inline mmo_inventory_op make(uint32_t kind, uint32_t slot, uint32_t to_slot, uint32_t quantity,
                             uint32_t equip_slot) noexcept {
    mmo_inventory_op op{};
    op.kind = kind;
    op.slot = slot;
    op.to_slot = to_slot;
    op.quantity = quantity;
    op.equip_slot = equip_slot;
    return op;
}
inline mmo_inventory_op move(uint32_t from, uint32_t to) noexcept {
    return make(MMO_INVENTORY_OP_KIND_MOVE, from, to, 0, 0);
}
inline mmo_inventory_op split(uint32_t from, uint32_t to, uint32_t quantity) noexcept {
    return make(MMO_INVENTORY_OP_KIND_SPLIT, from, to, quantity, 0);
}
inline mmo_inventory_op merge(uint32_t from, uint32_t to) noexcept {
    return make(MMO_INVENTORY_OP_KIND_MERGE, from, to, 0, 0);
}
inline mmo_inventory_op swap(uint32_t a, uint32_t b) noexcept {
    return make(MMO_INVENTORY_OP_KIND_SWAP, a, b, 0, 0);
}
inline mmo_inventory_op drop(uint32_t slot, uint32_t quantity) noexcept {
    return make(MMO_INVENTORY_OP_KIND_DROP, slot, 0, quantity, 0);
}
inline mmo_inventory_op use(uint32_t slot) noexcept {
    return make(MMO_INVENTORY_OP_KIND_USE, slot, 0, 0, 0);
}
inline mmo_inventory_op equip(uint32_t slot) noexcept {
    return make(MMO_INVENTORY_OP_KIND_EQUIP, slot, 0, 0, 0);
}
inline mmo_inventory_op unequip(mmo_equip_slot equip_slot, uint32_t to) noexcept {
    return make(MMO_INVENTORY_OP_KIND_UNEQUIP, 0, to, 0, static_cast<uint32_t>(equip_slot));
}
} // namespace inventory

/// The local character's pools as the server last sent them (mmo_client_resources).
struct Resources {
    std::vector<mmo_pool_value> pools;
    bool dead = false;
    uint32_t respawn_in_ms = 0;
};

/// Cooldowns left on an ability (mmo_client_ability_cooldown), milliseconds.
struct Cooldown {
    uint32_t global_ms = 0;
    uint32_t own_ms = 0;
};

/// A client session over QUIC (mmo_client): connect(), then once per frame poll_event()
/// until it returns no event, send_input() once per simulation tick, local_state() and
/// sample_entity() per rendered frame; disconnect() and wait for the DISCONNECTED event
/// to leave cleanly. The destructor frees the handle (waiting at most ~20 ms).
class Client {
public:
    Client() noexcept = default;

    /// A client with `config` (copied, strings included).
    static Result<Client> create(const mmo_client_config &config) {
        mmo_client *raw = nullptr;
        const mmo_result code = mmo_client_new(&config, &raw);
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        return Client(raw);
    }

    /// Starts connecting and logging in; returns at once (the outcome is an event).
    Status connect(const char *host, uint16_t port, const char *token) {
        return Status(mmo_client_connect(h_.get(), host, port, token));
    }
    /// The next event, or an empty optional when there is none (pumps the connection).
    Result<std::optional<ClientEvent>> poll_event() {
        ClientEvent e;
        uint8_t has = 0;
        const mmo_result code = mmo_client_poll_event(h_.get(), &e.event, &has);
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        if (has == 0) {
            return std::optional<ClientEvent>();
        }
        if (e.event.text_len_bytes > 0) {
            std::string text(e.event.text_len_bytes + 1, '\0');
            std::size_t len = 0;
            const mmo_result t = mmo_client_event_text(h_.get(), &text[0], text.size(), &len);
            if (t != MMO_RESULT_OK) {
                return Status(t);
            }
            text.resize(len);
            e.text = std::move(text);
        }
        return std::optional<ClientEvent>(std::move(e));
    }
    /// Predicts one tick with `input` and sends it (after the WELCOME event).
    Status send_input(const mmo_move_input &input) {
        return Status(mmo_client_send_input(h_.get(), &input));
    }
    /// Sends a chat line (at most 512 bytes of UTF-8) on a channel without recipient.
    Status send_chat(mmo_chat_channel channel, const char *text) {
        return Status(mmo_client_send_chat(h_.get(), static_cast<uint32_t>(channel), text));
    }
    /// Sends a chat line; `recipient` names a whisper's recipient (nullptr otherwise).
    Status chat_send(mmo_chat_channel channel, const char *recipient, const char *text) {
        return Status(
            mmo_client_chat_send(h_.get(), static_cast<uint32_t>(channel), recipient, text));
    }
    /// Whispers `text` to the character `recipient`.
    Status whisper(const char *recipient, const char *text) {
        return chat_send(MMO_CHAT_CHANNEL_WHISPER, recipient, text);
    }
    /// Receives the zone or global channel again.
    Status chat_join(mmo_chat_channel channel) {
        return Status(mmo_client_chat_join(h_.get(), static_cast<uint32_t>(channel)));
    }
    /// Stops receiving the zone or global channel.
    Status chat_leave(mmo_chat_channel channel) {
        return Status(mmo_client_chat_leave(h_.get(), static_cast<uint32_t>(channel)));
    }
    /// Decays the local character's visual correction by a rendered frame.
    Status advance_visual(float dt_s) {
        return Status(mmo_client_advance_visual(h_.get(), dt_s));
    }
    /// The predicted local character and where to draw it (metres).
    Result<mmo_local_state> local_state() {
        return detail::out<mmo_local_state>(
            [&](mmo_local_state *o) { return mmo_client_local_state(h_.get(), o); });
    }
    /// Remote entities in view.
    Result<std::size_t> entity_count() const {
        return detail::out<std::size_t>(
            [&](std::size_t *o) { return mmo_client_entity_count(h_.get(), o); });
    }
    /// Copies the ids in view into `out`; returns how many are in view.
    Result<std::size_t> entity_ids(span<uint32_t> out) const {
        return detail::out<std::size_t>([&](std::size_t *n) {
            return mmo_client_entity_ids(h_.get(), out.data(), out.size(), n);
        });
    }
    /// Where to draw remote entity `entity_id` now.
    Result<mmo_interp_output> sample_entity(uint32_t entity_id) {
        return detail::out<mmo_interp_output>([&](mmo_interp_output *o) {
            return mmo_client_sample_entity(h_.get(), entity_id, o);
        });
    }
    /// Counters (rtt, snapshot delivery, bytes, corrections).
    Result<mmo_connection_stats> stats() const {
        return detail::out<mmo_connection_stats>(
            [&](mmo_connection_stats *o) { return mmo_client_stats(h_.get(), o); });
    }
    /// Where the client is.
    Result<mmo_connection_state> state() const {
        return detail::out<mmo_connection_state>(
            [&](mmo_connection_state *o) { return mmo_client_connection_state(h_.get(), o); });
    }
    /// Starts continuing the session over a new connection to `host`:`port` (after about a
    /// second of `server_silent_ms`); the RESUMED or DISCONNECTED event follows.
    Status resume(const char *host, uint16_t port) {
        return Status(mmo_client_resume(h_.get(), host, port));
    }
    /// How long nothing came from the server, milliseconds.
    Result<uint64_t> server_silent_ms() const {
        return detail::out<uint64_t>(
            [&](uint64_t *o) { return mmo_client_server_silent_ms(h_.get(), o); });
    }
    /// Starts leaving cleanly; the DISCONNECTED event (CLIENT_QUIT) follows.
    Status disconnect() { return Status(mmo_client_disconnect(h_.get())); }

    // Gameplay: requests return their number (echoed by the result event); the readers
    // return what the server last sent.

    /// Asks the server to use `ability_id` on `target`; returns the request number.
    Result<uint32_t> use_ability(uint16_t ability_id, const mmo_ability_target &target) {
        return detail::out<uint32_t>([&](uint32_t *o) {
            return mmo_client_use_ability(h_.get(), ability_id, &target, o);
        });
    }
    /// Asks the server to stop the cast in progress.
    Status cancel_cast() { return Status(mmo_client_cancel_cast(h_.get())); }
    /// Asks the server for an inventory operation; returns the request number.
    Result<uint32_t> inventory_op(const mmo_inventory_op &op) {
        return detail::out<uint32_t>(
            [&](uint32_t *o) { return mmo_client_inventory_op(h_.get(), &op, o); });
    }
    /// The local character's pools (MMO_RESULT_EMPTY before the server sent them).
    Result<Resources> resources() const {
        Resources r;
        std::size_t count = 0;
        uint8_t dead = 0;
        uint32_t respawn_in_ms = 0;
        mmo_result code =
            mmo_client_resources(h_.get(), nullptr, 0, &count, &dead, &respawn_in_ms);
        if (code == MMO_RESULT_BUFFER_TOO_SMALL) {
            r.pools.resize(count);
            code = mmo_client_resources(h_.get(), r.pools.data(), r.pools.size(), &count,
                                        &dead, &respawn_in_ms);
        }
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        r.pools.resize(count);
        r.dead = dead != 0;
        r.respawn_in_ms = respawn_in_ms;
        return r;
    }
    /// A remote entity's health, percent of its maximum (0 = dead), from its snapshots.
    Result<uint8_t> entity_health(uint32_t entity_id) const {
        uint8_t percent = 0;
        const mmo_result code = mmo_client_entity_health(h_.get(), entity_id, &percent);
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        return percent;
    }
    /// Cooldowns left on `ability_id` now.
    Result<Cooldown> ability_cooldown(uint16_t ability_id) const {
        Cooldown c;
        const mmo_result code =
            mmo_client_ability_cooldown(h_.get(), ability_id, &c.global_ms, &c.own_ms);
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        return c;
    }
    /// Bag slots of the inventory (MMO_RESULT_EMPTY before the server sent it).
    Result<std::size_t> inventory_slot_count() const {
        return detail::out<std::size_t>(
            [&](std::size_t *o) { return mmo_client_inventory_slot_count(h_.get(), o); });
    }
    /// Bag slot `index`.
    Result<mmo_item_slot> inventory_slot(uint32_t index) const {
        return detail::out<mmo_item_slot>(
            [&](mmo_item_slot *o) { return mmo_client_inventory_slot(h_.get(), index, o); });
    }
    /// What is worn in `slot`.
    Result<mmo_item_slot> equipment_slot(mmo_equip_slot slot) const {
        return detail::out<mmo_item_slot>([&](mmo_item_slot *o) {
            return mmo_client_equipment_slot(h_.get(), static_cast<uint32_t>(slot), o);
        });
    }
    /// The properties of a stack, one "key=value\n" line each.
    Result<std::string> item_properties(mmo_item_container container, uint32_t index) const {
        const uint32_t c = static_cast<uint32_t>(container);
        std::size_t len = 0;
        mmo_result code = mmo_client_item_properties(h_.get(), c, index, nullptr, 0, &len);
        if (code != MMO_RESULT_BUFFER_TOO_SMALL) {
            return Status(code == MMO_RESULT_OK ? MMO_RESULT_EMPTY : code);
        }
        std::string text(len + 1, '\0');
        code = mmo_client_item_properties(h_.get(), c, index, &text[0], text.size(), &len);
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        text.resize(len);
        return text;
    }
    /// SHA-256 of the server's gameplay content (after the WELCOME).
    Result<std::array<uint8_t, MMO_CONTENT_HASH_LEN_BYTES>> content_hash() const {
        std::array<uint8_t, MMO_CONTENT_HASH_LEN_BYTES> hash{};
        const mmo_result code = mmo_client_content_hash(h_.get(), hash.data());
        if (code != MMO_RESULT_OK) {
            return Status(code);
        }
        return hash;
    }

    mmo_client *get() const noexcept { return h_.get(); }
    mmo_client *release() noexcept { return h_.release(); }
    bool valid() const noexcept { return h_.valid(); }
    explicit operator bool() const noexcept { return valid(); }

private:
    explicit Client(mmo_client *raw) noexcept : h_(raw) {}
    detail::Owner<mmo_client, mmo_client_free> h_;
};

} // namespace mmo

#endif // MMO_HPP
