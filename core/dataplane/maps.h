// SPDX-License-Identifier: Apache-2.0
// Access to the pinned maps: the session table, per-session counters, policy
// generations and settings. Every binary (loader, PAM module, cgroupd,
// authctl) goes through this; it needs only the pins, not the daemons.
#pragma once

#include "core/base/abi.h"
#include "core/base/fd.h"
#include "core/base/net.h"
#include "core/dataplane/pins.h"
#include "core/policy/compiler.h"
#include "core/base/result.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace authwall {

struct SessionEntry {
    uint32_t policy_id = AW_POLICY_FALLBACK;
    uint32_t uid = 0;
    uint32_t flags = 0;
    std::optional<IpAddress> rhost;
    uint64_t opened_ns = 0; // CLOCK_REALTIME

    aw_session to_abi() const;
    static SessionEntry from_abi(const aw_session& s);
};

// The user layer of one confined user (the users map, keyed by uid).
struct UserEntry {
    uint32_t policy_id = AW_POLICY_FALLBACK;
    uint32_t flags = 0;    // AW_USER_*
    uint64_t armed_ns = 0; // CLOCK_REALTIME of the last write
    uint64_t denied = 0;   // denials by the user layer (read-only here)
    uint64_t audited = 0;  // its would-be denials in audit mode (read-only here)
};

struct SessionStats {
    uint64_t bytes_in = 0, bytes_out = 0, packets_in = 0, packets_out = 0;
    std::array<uint64_t, AW_HOOK_COUNT> denied{};
    uint64_t audited = 0; // would-be denials passed in audit mode
    uint64_t denied_total() const;
};

// What ended sessions counted, by policy (policy_totals), and the fold
// brackets summed over every policy: a read between two equal snapshots of
// `folds_done` during which `folds_begun == folds_done` saw no fold half done.
struct FoldedTotals {
    uint64_t folds_begun = 0, folds_done = 0;
    std::map<uint32_t, SessionStats> by_policy; // policies with a session folded
};

// Refusals (and audited would-be refusals) by hook and reason, summed over
// the CPUs (the refusals map).
struct RefusalCounts {
    std::array<std::array<uint64_t, AW_REASON_COUNT>, AW_HOOK_COUNT> denied{}, audited{};
};

const char* hook_name(unsigned hook);
const char* reason_name(unsigned reason);
const char* layer_name(unsigned layer); // "login", "user"
// The rule set a hook consults: "egress", "ingress", "bind" or "socket".
const char* hook_direction(unsigned hook);
const char* event_verdict_name(unsigned verdict); // "deny", "audit", "log"

class PinnedMaps {
  public:
    // Opens every map pinned under pin_dir/maps (policy_totals if it is
    // there: pins of an older loader lack it until it runs again). Fails
    // with a sentence that says whether the loader never ran or the pins
    // are unreadable.
    static Result<PinnedMaps> open(const std::filesystem::path& pin_dir);
    // Opens only `maps` now, with the same errors; any
    // other map is opened on its first use (map_fd). For a caller that
    // touches a few maps once, as a login does: a pin opened is a path walk
    // in bpffs and a file descriptor. A map added to kMapNames is opened
    // this way with no other change.
    static Result<PinnedMaps> open(const std::filesystem::path& pin_dir, std::initializer_list<MapId> maps);

    // --- sessions -------------------------------------------------------
    // Inserts or replaces the session of `cgroup_id`, whose cgroup sits at
    // `level`. Counters are created first and the level marked, so the
    // data plane sees a complete session from its first packet.
    Status insert_session(uint64_t cgroup_id, int level, const SessionEntry& entry);
    // Removes the session and its counters; a missing session is not an error.
    Status remove_session(uint64_t cgroup_id);
    // Ends a session's life in the maps: its counters are added to its
    // policy's totals (policy_totals), then it is removed as above. The
    // session service removes every session this way, so a policy's
    // counters never go backwards; pins without policy_totals (an older
    // loader) only remove.
    Status retire_session(uint64_t cgroup_id);
    Result<FoldedTotals> policy_totals() const;
    Result<std::optional<SessionEntry>> lookup_session(uint64_t cgroup_id) const;
    Result<std::vector<std::pair<uint64_t, SessionEntry>>> list_sessions() const;
    // The same list read in chunks (BPF_MAP_LOOKUP_BATCH): a few syscalls
    // for any number of sessions instead of two per session, and an entry
    // present throughout is listed exactly once while others come and go.
    // Falls back to list_sessions() where the kernel has no batch reads.
    Result<std::vector<std::pair<uint64_t, SessionEntry>>> list_sessions_batch() const;
    Status set_session_flags(uint64_t cgroup_id, uint32_t set, uint32_t clear);
    Result<SessionStats> session_stats(uint64_t cgroup_id) const;

    // --- the user layer -------------------------------------------------
    // Writes the user layer of `uid` (never root: refused). Its denial
    // counter is kept when the entry already exists.
    Status set_user(uint32_t uid, uint32_t policy_id, uint32_t flags = 0);
    // Removes it; a missing entry is not an error.
    Status remove_user(uint32_t uid);
    Result<std::optional<UserEntry>> lookup_user(uint32_t uid) const;
    Result<std::vector<std::pair<uint32_t, UserEntry>>> list_users() const;

    // --- policies -------------------------------------------------------
    // Policy name → id, as recorded by the last installed generation (and
    // every earlier one: ids of removed policies are kept, never reused).
    Result<std::map<std::string, uint32_t>> policy_ids() const;
    Result<std::map<std::string, uint32_t>> active_policy_ids() const;
    // Whether the policy `name` is in force under `id`: one lookup in
    // policy_names, whatever the number of policies.
    Result<bool> policy_in_force(const std::string& name, uint32_t id) const;
    // Builds a new trie from `compiled` and swaps it in with one update of
    // policy_gen; the kernel waits for running programs before returning.
    Status install_policies(const CompiledPolicies& compiled);
    // Reads the active generation back (every entry of the trie in force).
    Result<std::vector<CompiledEntry>> read_active_policies() const;
    bool has_active_policies() const;

    // --- DNS names, per session -----------------------------------------
    // What DNS answers gave a session for `address` (names_seen), written
    // by the loader only; nullopt when nothing. Pins without names_seen (an
    // older loader) fail with EBADF.
    Result<std::optional<aw_name_seen>> name_seen(uint64_t session_id, const IpAddress& address) const;
    Status write_name_seen(uint64_t session_id, const IpAddress& address, const aw_name_seen& seen);

    // --- settings -------------------------------------------------------
    Result<aw_settings> settings() const;
    Status write_settings(const aw_settings& s);
    Result<uint64_t> events_suppressed() const;
    // Zero when the pins predate the refusals map.
    Result<RefusalCounts> refusals() const;

    // Moves the data plane's generation on: what the programs remember per
    // socket is used only while the generation is unchanged. Every writer
    // above calls it after its change; it fails only when the map cannot be
    // written, and then the change may not reach established flows.
    Status advance_generation();

    // The map's descriptor, opened now if it was not (open() with a list);
    // -1 for a pin that cannot be opened (the operation on it then fails
    // with EBADF).
    int map_fd(MapId map) const;

    struct Fill {
        uint64_t entries = 0;
        uint32_t max_entries = 0;
    };
    // How full a hash map is (entries counted by walking its keys).
    Result<Fill> fill(MapId map) const;

  private:
    Status mark_session_level(int level);

    std::filesystem::path pin_dir_;
    // One slot per name of kMapNames; mutable: opened on first use. On the
    // heap: GCC 12 mistakes the destruction of a Result<PinnedMaps> holding
    // the array inline for a free of an unallocated pointer.
    mutable std::vector<Fd> fds_ = std::vector<Fd>(kMapNames.size());
};

} // namespace authwall
