// SPDX-License-Identifier: Apache-2.0
// Reading a compiled generation back into policies, as the kernel holds
// them: for `authctl policy show` and for tests that compare intent with
// what was installed. Port blocks are folded back into ranges.
#pragma once

#include "core/policy/compiler.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace authwall {

struct RuleView {
    Verdict verdict = Verdict::Allow;
    Rule rule;          // prefix, protocol, ports, id (its number in the policy), log
    std::string source; // "file:line:column" where it was written, when known (RuleCatalog)
};

struct DirectionView {
    Verdict default_verdict = Verdict::Allow;
    std::vector<RuleView> rules; // denies first, then allows, each sorted
};

struct PolicyView {
    uint32_t id = 0;
    std::string name; // "(unmatched)" for the fallback
    DirectionView egress, ingress, bind;
    bool ingress_from_rhost_only = false;
    bool deny_raw = false;
    uint64_t denied_families = 0;
    bool audit = false;
    size_t entries = 0; // trie entries of this policy
    // From the published policy index, when known: who the policy is for.
    std::optional<PolicyMatch> match;
    int priority = 0;
    uint64_t max_duration_s = 0;
};

// `names` maps id → name (from policy_names); unnamed ids show as "#id".
std::vector<PolicyView> describe_generation(const std::vector<CompiledEntry>& entries,
                                            const std::map<uint32_t, std::string>& names);

std::string format_policy(const PolicyView& p); // indented text, one rule a line

} // namespace authwall
