// Texts the plugin shows people: the ABI mismatch error of the module's start-up and the
// netcode stats of the `mmo.stats` console overlay.
//
// Plain C++17 (the standard library and mmo.hpp only), so the exact wording is tested
// without the engine.
#ifndef MMO_UE_LOGIC_DIAGNOSTICS_H
#define MMO_UE_LOGIC_DIAGNOSTICS_H

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>

#include "mmo.hpp"

namespace mmo {
namespace ue {

/// Empty when the linked library's ABI version equals the header's; otherwise the error
/// the module logs, naming both versions and how to fix it.
inline std::string abi_mismatch_message(uint32_t library_abi_version,
                                        uint32_t header_abi_version) {
    if (library_abi_version == header_abi_version) {
        return std::string();
    }
    return "MMOCore: the linked mmo library has ABI version " +
           std::to_string(library_abi_version) +
           " but the plugin was compiled against mmo.h with MMO_ABI_VERSION " +
           std::to_string(header_abi_version) +
           "; the plugin stays disabled. Rebuild the library and copy the matching header "
           "(bash ci/package-plugin.sh).";
}

/// The linked library against this header: empty when compatible.
inline std::string abi_check() { return abi_mismatch_message(mmo_abi_version(), MMO_ABI_VERSION); }

/// The netcode stats, one line each (round trips in ms, loss in percent, bytes, snapshot
/// delivery, corrections), as the `mmo.stats` overlay shows them.
inline std::string format_stats(const mmo_connection_stats &stats) {
    char text[512];
    const double delivery_percent =
        stats.snapshots_expected == 0
            ? 100.0
            : 100.0 * static_cast<double>(stats.snapshots_received) /
                  static_cast<double>(stats.snapshots_expected);
    std::snprintf(text, sizeof text,
                  "MMO rtt %.1f ms (path %.1f ms), loss %.2f %%\n"
                  "snapshots %" PRIu64 "/%" PRIu64 " (%.1f %%), applied %" PRIu64
                  ", stale %" PRIu64 ", undecodable %" PRIu64 "\n"
                  "bytes in %" PRIu64 " out %" PRIu64 " (udp in %" PRIu64 " out %" PRIu64
                  "), inputs sent %" PRIu64 " dropped %" PRIu64 ", corrections %" PRIu64,
                  static_cast<double>(stats.rtt_us) / 1000.0,
                  static_cast<double>(stats.path_rtt_us) / 1000.0,
                  stats.packet_loss_ratio * 100.0, stats.snapshots_received,
                  stats.snapshots_expected, delivery_percent, stats.snapshots_applied,
                  stats.snapshots_stale, stats.snapshots_undecodable, stats.bytes_in,
                  stats.bytes_out, stats.udp_bytes_in, stats.udp_bytes_out,
                  stats.datagrams_out, stats.datagrams_dropped, stats.corrections);
    return std::string(text);
}

} // namespace ue
} // namespace mmo

#endif // MMO_UE_LOGIC_DIAGNOSTICS_H
