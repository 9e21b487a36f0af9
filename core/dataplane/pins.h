// SPDX-License-Identifier: Apache-2.0
// The pinned-object layout under the pin directory (default /sys/fs/bpf/authwall):
//   maps/<map name>                 every map of the data plane
//   links/<program>@<cgroup id>      one bpf_link per program and enforcement root
// This layout is a stable contract (docs/INTEGRATIONS.md).
#pragma once

#include "core/base/result.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace authwall {

inline constexpr const char* kDefaultPinDir = "/sys/fs/bpf/authwall";

inline constexpr std::array<std::string_view, 11> kProgramNames{
    "aw_connect4",    "aw_connect6", "aw_sendmsg4", "aw_sendmsg6",      "aw_bind4",        "aw_bind6",
    "aw_sock_create", "aw_ingress",  "aw_egress",   "aw_socket_create", "aw_sock_release",
};

// Attached only where the kernel supports it (BPF LSM with BTF).
inline constexpr std::string_view kLsmProgramName = "aw_socket_create";

// The pinned maps, in the order of kMapNames; code names a map by this
// enum, so a misspelt map fails to compile. unit.abi_layout holds both
// lists to the BPF object.
enum class MapId : unsigned {
    Sessions,
    SessionStats,
    SessionLevels,
    PolicyGen,
    PolicyNames,
    Events,
    EventBudget,
    Settings,
    Users,
    Generation,
    PolicyTotals,
    Refusals,
    NamesSeen,
    DnsQueries,
    DnsAnswers,
};

inline constexpr std::array<std::string_view, 15> kMapNames{
    "sessions",      "session_stats", "session_levels", "policy_gen",  "policy_names",
    "events",        "event_budget",  "settings",       "users",       "generation",
    "policy_totals", "refusals",      "names_seen",     "dns_queries", "dns_answers",
};

// Maps of the object that are never pinned: the programs' own caches (per
// socket, of the syscall hooks' decisions, of the sockets that sent a
// datagram lately), which a new object starts afresh.
inline constexpr std::array<std::string_view, 3> kUnpinnedMaps{"sock_cache", "decisions", "datagram_senders"};

inline constexpr bool is_unpinned_map(std::string_view name)
{
    for (auto m : kUnpinnedMaps)
        if (m == name)
            return true;
    return false;
}

inline constexpr std::string_view map_name(MapId map)
{
    return kMapNames[static_cast<size_t>(map)];
}
static_assert(map_name(MapId::Sessions) == "sessions" && map_name(MapId::SessionStats) == "session_stats" &&
              map_name(MapId::SessionLevels) == "session_levels" && map_name(MapId::PolicyGen) == "policy_gen" &&
              map_name(MapId::PolicyNames) == "policy_names" && map_name(MapId::Events) == "events" &&
              map_name(MapId::EventBudget) == "event_budget" && map_name(MapId::Settings) == "settings" &&
              map_name(MapId::Users) == "users" && map_name(MapId::Generation) == "generation" &&
              map_name(MapId::PolicyTotals) == "policy_totals" && map_name(MapId::Refusals) == "refusals" &&
              map_name(MapId::NamesSeen) == "names_seen" && map_name(MapId::DnsQueries) == "dns_queries" &&
              map_name(MapId::DnsAnswers) == "dns_answers");

inline std::filesystem::path map_pin_path(const std::filesystem::path& pin_dir, std::string_view map)
{
    return pin_dir / "maps" / std::string(map);
}

inline std::filesystem::path link_pin_path(const std::filesystem::path& pin_dir, std::string_view prog,
                                           uint64_t cgroup_id)
{
    return pin_dir / "links" / (std::string(prog) + "@" + std::to_string(cgroup_id));
}

struct LinkPin {
    std::filesystem::path path;
    std::string program;
    uint64_t cgroup_id = 0;
};

// Parses "aw_connect4@1234"; nullopt for anything else.
std::optional<LinkPin> parse_link_pin_name(const std::filesystem::path& path);

// True when `path` is on a bpf filesystem.
bool is_bpffs(const std::filesystem::path& path);

// Makes sure `pin_dir` can hold pins: mounts bpffs on /sys/fs/bpf when the
// directory lives there and nothing is mounted yet, creates the directory
// (0700) and refuses one not owned by root or writable by others.
Status prepare_pin_dir(const std::filesystem::path& pin_dir);

} // namespace authwall
