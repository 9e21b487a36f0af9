// SPDX-License-Identifier: Apache-2.0
// The nftables mirror: `table inet authwall` holds the sessions of the BPF
// sessions map as nft sets, so ordinary nft rules (an authpf-style gateway's
// forward chain, a `socket cgroupv2` output rule) can use them:
//
//   sessions          cgroupsv2                  every active session
//   sessions_v4       cgroupsv2 . ipv4_addr      session . its login address
//   sessions_v6       cgroupsv2 . ipv6_addr
//   session_addrs_v4  ipv4_addr                  login addresses of active
//   session_addrs_v6  ipv6_addr                  sessions (authpf's table)
//
// Elements are written by cgroup id over netlink (libnftnl), never by path:
// nft userspace resolves a cgroupsv2 path under /sys/fs/cgroup, which is
// racy and wrong on hybrid hosts. Each element carries a comment (user,
// policy, session id, and the authentication's correlation and claims
// when a PAM module handed them and they fit) and a safety timeout (the policy's max_duration, else
// one day). One session's update is one netlink transaction of a few
// elements: its cost does not depend on how many sessions exist.
//
// Several sessions may share a login address: the address element is
// reference-counted under <run_dir>/nft/ (one file per session, under one
// lock), so the last close removes it and no other close does.
//
// In this folder: mirror.cpp (the table, one session's add and remove,
// reading the sets), reconcile.cpp (drift and repair), and internal to it
// elements.h (which elements stand for a session, their encoding),
// netlink.h (the transport) and refcounts.h (the address counts).
#pragma once

#include "core/base/net.h"
#include "core/base/result.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace authwall {

inline constexpr const char* kNftTable = "authwall";
inline constexpr uint64_t kNftDefaultTimeoutS = 24 * 3600;

// What the mirror holds for one session.
struct MirrorSession {
    uint64_t id = 0;
    std::string user;   // for the comment
    std::string policy; // for the comment
    std::optional<IpAddress> rhost;
    uint64_t deadline_ns = 0; // CLOCK_REALTIME end of the session (0 = none: one day from now)
    // What an earlier PAM module handed the login (SessionRecord), for the
    // comment: sanitised, so nothing in them needs quoting.
    std::string auth_correlation{};
    std::string auth_claims{};
};

// Creates the table and its sets where missing (idempotent).
Status nft_ensure_table();
// Deletes the table (uninstall, tests); a missing table is fine.
Status nft_delete_table();
bool nft_table_exists();

// One session appears in / disappears from every set it belongs to.
// `run_dir` holds the address reference counts.
Status nft_mirror_add(const std::filesystem::path& run_dir, const MirrorSession& session);
Status nft_mirror_remove(const std::filesystem::path& run_dir, uint64_t id, std::optional<IpAddress> rhost);

// The sets as the kernel holds them.
struct MirrorContents {
    bool table_present = false;
    std::vector<uint64_t> sessions;
    std::vector<std::pair<uint64_t, IpAddress>> sessions_addr; // v4 and v6
    std::vector<IpAddress> session_addrs;                      // v4 and v6
};
Result<MirrorContents> nft_read_mirror();

// What differs between the sets and the sessions that should be there.
struct MirrorDrift {
    bool table_missing = false;
    std::vector<std::string> missing; // "sessions_v4 12345 . 192.0.2.7"
    std::vector<std::string> stray;
    bool empty() const { return !table_missing && missing.empty() && stray.empty(); }
};
MirrorDrift nft_compare(const MirrorContents& actual, const std::vector<MirrorSession>& expected);

// Makes the sets equal `expected` (the active sessions): recreates a
// flushed table, adds what is missing, removes strays, and rebuilds the
// address reference counts. Returns what it found wrong.
Result<MirrorDrift> nft_reconcile(const std::filesystem::path& run_dir, const std::vector<MirrorSession>& expected);

} // namespace authwall
