// Compiles policies into the entries of one policy trie generation.
//
// Semantics the data plane relies on (see bpf/authwall_abi.h):
// - every entry's prefix covers (policy, dir, proto, port) fully;
// - within one such class, an allow prefix covered by a deny prefix is
//   dropped, so the longest match in a class carries the right verdict;
// - port ranges are expanded to single ports (1-65535 is "any port");
// - the fallback policy is compiled under id AW_POLICY_FALLBACK.
#pragma once

#include "core/dataplane/abi.h"
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

// `known_ids` keeps ids stable by name: a policy already known keeps its id,
// a new one gets the next free id above every known one.
Result<CompiledPolicies> compile_policies(const std::vector<Policy>& policies, const Fallback& fallback,
                                          const std::map<std::string, uint32_t>& known_ids = {},
                                          const CompileLimits& limits = {});

aw_rule_key make_rule_key(uint32_t policy_id, uint8_t dir, uint8_t proto, uint16_t port_host, const Prefix& prefix);

} // namespace authwall
