// Units and axes between Unreal and the MMO core: the plugin's ONE place for them.
//
// Both sides use the same axes (X forward, Y right, Z up), so positions only change scale:
// Unreal works in centimetres, the core in metres. The factor itself lives in mmo.hpp
// (mmo::cm_to_m / mmo::m_to_cm / from_unreal_cm / to_unreal_cm); this file adds the yaw
// (Unreal: degrees, normalised to (-180, 180]; core: radians in [0, 2*pi)) and the input
// quantization, and is what every UObject in the plugin calls. Plain C++17 (the standard
// library and mmo.hpp only), so tests run it without the engine.
#ifndef MMO_UE_LOGIC_UNITS_H
#define MMO_UE_LOGIC_UNITS_H

#include <cmath>
#include <cstdint>

#include "mmo.hpp"

namespace mmo {
namespace ue {

/// Pi, double precision.
inline constexpr double kPi = 3.14159265358979323846;

/// Degrees to radians. `deg / 180 * pi`, so 90, 180, 360 map to exactly pi/2, pi, 2*pi.
constexpr double deg_to_rad(double deg) noexcept { return deg / 180.0 * kPi; }
/// Radians to degrees. `rad / pi * 180`, so pi/2, pi, 2*pi map to exactly 90, 180, 360.
constexpr double rad_to_deg(double rad) noexcept { return rad / kPi * 180.0; }

/// An Unreal yaw (degrees, any value) to the core's facing (radians in [0, 2*pi)).
inline float yaw_deg_to_core_rad(double yaw_deg) noexcept {
    double wrapped_deg = std::fmod(yaw_deg, 360.0);
    if (wrapped_deg < 0.0) {
        wrapped_deg += 360.0;
    }
    const float yaw_rad = static_cast<float>(deg_to_rad(wrapped_deg));
    // Rounding to float can land exactly on 2*pi; the core wants [0, 2*pi).
    return yaw_rad >= static_cast<float>(2.0 * kPi) ? 0.0f : yaw_rad;
}

/// The core's facing (radians) to an Unreal yaw (degrees in (-180, 180], as
/// FRotator::GetNormalized gives).
inline double core_rad_to_yaw_deg(float yaw_rad) noexcept {
    double yaw_deg = std::fmod(rad_to_deg(static_cast<double>(yaw_rad)), 360.0);
    if (yaw_deg > 180.0) {
        yaw_deg -= 360.0;
    } else if (yaw_deg <= -180.0) {
        yaw_deg += 360.0;
    }
    return yaw_deg;
}

/// An Unreal location (any type with X, Y, Z in centimetres: FVector) to core metres.
template <class V>
constexpr mmo_vec3 location_to_core(const V &location_cm) noexcept {
    return mmo::from_unreal_cm(location_cm);
}

/// A core position (metres) to an Unreal location type (centimetres: FVector).
template <class V>
constexpr V location_from_core(const mmo_vec3 &position_m) noexcept {
    return mmo::to_unreal_cm<V>(position_m);
}

/// A core speed (m/s) to Unreal units (cm/s).
constexpr double speed_from_core(float speed_mps) noexcept {
    return mmo::m_to_cm(static_cast<double>(speed_mps));
}

/// A core distance (metres) to Unreal units (centimetres).
constexpr double distance_from_core(float distance_m) noexcept {
    return mmo::m_to_cm(static_cast<double>(distance_m));
}

/// An Unreal distance (centimetres) to core metres.
constexpr float distance_to_core(double distance_cm) noexcept {
    return static_cast<float>(mmo::cm_to_m(distance_cm));
}

/// Movement controls as an Unreal game gathers them (axes in [-1, 1], the control yaw in
/// degrees, MMO_BUTTON_* bits) quantized into the core's input exactly as the server
/// simulates it (NaN axes become 0, a non-finite yaw 0). Fails with
/// MMO_RESULT_INVALID_ARGUMENT when `buttons` has bits other than MMO_BUTTON_*.
inline mmo::Result<mmo_move_input> controls_to_input(float forward, float right, double yaw_deg,
                                                     uint8_t buttons) {
    return mmo::move_input_from_controls(forward, right, yaw_deg_to_core_rad(yaw_deg), buttons);
}

} // namespace ue
} // namespace mmo

#endif // MMO_UE_LOGIC_UNITS_H
