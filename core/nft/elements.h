// SPDX-License-Identifier: Apache-2.0
// The encoding of the nftables mirror: which elements of which sets stand
// for a session, their keys (host-endian cgroup ids, network-order
// addresses), labels, timeouts and comments. Internal to core/nft.
#pragma once

#include "core/base/net.h"
#include "core/nft/mirror.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace authwall::nft {

inline constexpr const char* kSets[] = {"sessions", "sessions_v4", "sessions_v6", "session_addrs_v4",
                                        "session_addrs_v6"};

// One element of one set, with the label drift reports use.
struct Elem {
    std::string set;
    std::vector<uint8_t> key;
    std::string label; // "sessions_v4 12345 . 192.0.2.7"
};

Elem session_elem(uint64_t id);
Elem pair_elem(uint64_t id, const IpAddress& a);
Elem addr_elem(const IpAddress& a);
// The address of a key's 4 or 16 address bytes.
IpAddress addr_from(const uint8_t* p, size_t len);

struct Op {
    uint16_t msg; // NFT_MSG_NEWSETELEM or NFT_MSG_DELSETELEM
    Elem elem;
    uint64_t timeout_ms = 0;
    std::string comment;
};

Op del(Elem e);
// The element timeout that ends at `deadline_ns` (CLOCK_REALTIME; 0: the
// default of one day), at least a second.
uint64_t timeout_ms_until(uint64_t deadline_ns);
// "user=alice policy=ssh session=123 auth=TOKEN claims=TAG", at most 127
// characters (nft reads back 128 with the NUL); auth= and claims= only
// when set and whole.
std::string comment_of(const MirrorSession& s);
// The elements one session adds; its address element lasts until
// `addr_deadline_ns`, the latest deadline of the sessions from there.
std::vector<Op> add_ops(const MirrorSession& s, uint64_t addr_deadline_ns);

} // namespace authwall::nft
