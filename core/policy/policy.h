// SPDX-License-Identifier: Apache-2.0
// The policy model: what an operator writes, before compilation.
#pragma once

#include "core/base/abi.h"
#include "core/policy/rule.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace authwall {

enum class Verdict : uint8_t { Allow = AW_VERDICT_ALLOW, Deny = AW_VERDICT_DENY };
const char* verdict_name(Verdict v);

struct RuleSet {
    Verdict default_verdict = Verdict::Allow;
    std::vector<Rule> allow;
    std::vector<Rule> deny;
};

struct PolicyMatch {
    std::vector<std::string> users;
    std::vector<std::string> groups;
    std::vector<std::string> services;
    std::vector<Prefix> rhosts;
    std::vector<std::string> cgroups; // globs, for container enrollment
};

struct Policy {
    std::string name;
    int priority = 0;
    PolicyMatch match;
    RuleSet egress;
    RuleSet ingress;
    bool ingress_from_rhost_only = false;
    RuleSet bind;
    uint64_t denied_families = 0; // bit n = address family n
    bool deny_raw = false;        // SOCK_RAW in AF_INET / AF_INET6
    std::optional<std::chrono::seconds> max_duration;
    // mode = "audit": decided as in enforce mode, but what would be refused
    // passes and is reported (events with verdict "audit", counters).
    bool audit = false;
    std::string source; // "file:line" where it was defined, for messages
    // The bases it extends, as written (their rules and defaults are
    // already folded in: docs/POLICY.md, "Composition").
    std::vector<std::string> extends;
    bool abstract = false; // abstract = true: a base only, never given to a login
};

// What a session that no policy claims (or whose policy was removed) gets.
struct Fallback {
    enum class Kind { Pass, Deny, Policy } kind = Kind::Pass;
    std::string policy; // with Kind::Policy
    bool audit = false; // Kind::Deny in audit mode (a named policy has its own mode)
};

// The configuration's mode override (Config::audit_override) applied to
// every policy and the fallback.
void apply_mode_override(std::vector<Policy>& policies, Fallback& fallback, std::optional<bool> audit);

// "packet" → AF_PACKET, ...; "raw" is not a family (see Policy::deny_raw).
std::optional<int> parse_socket_family(std::string_view name);
std::string socket_family_name(int family);
// What `deny_families` names: each family of the bitmask by name, then "raw".
std::vector<std::string> denied_family_names(uint64_t denied_families, bool deny_raw);

// "8h", "90m", "1h30m", "2d", "45s".
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

bool valid_policy_name(std::string_view name);

} // namespace authwall
