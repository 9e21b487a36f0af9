// SPDX-License-Identifier: Apache-2.0
// Compiles policies into the entries of one policy trie generation.
//
// Semantics the data plane relies on (see bpf/authwall_abi.h):
// - every entry's prefix covers (policy, dir, proto, port) fully;
// - within one such class, an allow prefix covered by a deny prefix is
//   dropped, so the longest match in a class carries the right verdict;
// - port ranges are stored as aligned blocks of 1, 16, 256 or 4096 ports
//   (at most 104 per range; 1-65535 is "any port"), each its own class;
// - the fallback policy is compiled under id AW_POLICY_FALLBACK.
#pragma once

#include "core/base/abi.h"
#include "core/policy/policy.h"
#include "core/base/result.h"

#include <map>
#include <string>
#include <vector>

namespace authwall {

struct CompiledEntry {
    aw_rule_key key{};
    aw_rule_val value{};
};

struct CompiledPolicies {
    std::vector<CompiledEntry> entries;
    std::map<std::string, uint32_t> ids; // policy name → id (stable across reloads)
    size_t dropped_shadowed = 0;         // allow entries removed because a deny covers them
};

struct CompileLimits {
    size_t max_entries = 1'000'000;
};

// The addresses each DNS name of the rules stands for now (the loader's
// resolver keeps them: loader/names.h). A name without addresses here
// allows nothing.
using NameAddresses = std::map<std::string, std::vector<IpAddress>>;

// `known_ids` keeps ids stable by name: a policy already known keeps its id,
// a new one gets the next free id above every known one.
Result<CompiledPolicies> compile_policies(const std::vector<Policy>& policies, const Fallback& fallback,
                                          const std::map<std::string, uint32_t>& known_ids = {},
                                          const CompileLimits& limits = {}, const NameAddresses& names = {});

// A block of 2^bits ports starting at `first` (host order, a multiple of
// 2^bits): how a port range is stored in the trie.
struct PortBlock {
    uint16_t first = 0;
    uint8_t bits = 0;
    bool operator==(const PortBlock&) const = default;
};

// Block sizes are 2^(a multiple of kPortBlockStep): 1, 16, 256 and 4096
// ports. Each block size a policy uses is one more trie probe on a decision
// the syscall hooks have not remembered (~50-90 ns each here), so fewer sizes
// beat fewer entries: with every size (step 1) a range takes at most 30
// entries but a policy of 1-1023 and 1024-65535 cost 1.5 us per decision
// against 156 ns with one entry per port; with step 4, at most 3 more probes
// (~470 ns for that policy) and at most 104 entries per range.
inline constexpr unsigned kPortBlockStep = 4;
// bpf/lib/decision.bpf.h probes exactly the sizes step 4 makes (2^4, 2^8,
// 2^12 ports; 2^0 is the exact port): another step needs its probes changed.
static_assert(kPortBlockStep == 4 && AW_PORT_BLOCK_BITS_MAX < 16);

// The fewest aligned blocks of 2^(a multiple of `step`) ports that cover
// `range` exactly, in port order; any port is the one block {0, 0}.
std::vector<PortBlock> port_blocks(const PortRange& range, unsigned step = kPortBlockStep);

aw_rule_key make_rule_key(uint32_t policy_id, uint8_t dir, uint8_t proto, uint16_t port_host, const Prefix& prefix,
                          uint8_t port_bits = 0);

} // namespace authwall
