// SPDX-License-Identifier: Apache-2.0
// The policy index: what the loader publishes, after each successful
// install, to /run/authwall/policies.json — the match criteria of the
// policies *in force*, with their kernel ids, the unmatched fallback and the
// exempt users. The PAM module resolves a login against it, so it agrees
// with the kernel's generation and never parses policy TOML inside sshd.
#pragma once

#include "core/policy/config.h"
#include "core/base/net.h"
#include "core/policy/policy.h"
#include "core/base/result.h"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace authwall {

struct IndexedPolicy {
    std::string name;
    uint32_t id = 0;
    int priority = 0;
    PolicyMatch match;
    uint64_t max_duration_s = 0;
};

struct PolicyIndex {
    int version = 1;
    std::vector<IndexedPolicy> policies; // highest priority first, then by name
    Fallback unmatched;
    std::vector<std::string> exempt_users;
    std::vector<std::string> exempt_groups;
};

PolicyIndex build_policy_index(const std::vector<Policy>& policies, const std::map<std::string, uint32_t>& ids,
                               const Config& config);
std::string to_json(const PolicyIndex& index);
Result<PolicyIndex> policy_index_from_json(const std::string& text, const std::string& source);

std::filesystem::path policy_index_path(const std::filesystem::path& run_dir);
Status write_policy_index(const std::filesystem::path& run_dir, const PolicyIndex& index);
// Refuses an index not owned by root or writable by others.
Result<PolicyIndex> read_policy_index(const std::filesystem::path& run_dir, uid_t owner = 0);

struct LoginFacts {
    std::string user;
    std::vector<std::string> groups; // every group of the user (NSS)
    std::string service;
    std::optional<IpAddress> rhost;
};

// The highest-priority policy whose match accepts the login; nullopt when
// none does (the unmatched fallback applies). An empty match accepts no one.
const IndexedPolicy* resolve_policy(const PolicyIndex& index, const LoginFacts& login);
// The policy of the user layer: the highest-priority policy that confines
// the *user*, wherever their processes run. `services` is not consulted (a
// policy for sshd logins confines its users' cron jobs and user services
// too); a policy that names users or groups claims those; one that names
// neither but names services claims every user; one that claims only by
// `rhosts` claims no user (a process outside a login comes from no
// address). nullptr: the unmatched fallback applies.
const IndexedPolicy* resolve_user_policy(const PolicyIndex& index, const LoginFacts& user);
bool is_exempt(const PolicyIndex& index, const LoginFacts& login);
// Whether an exemption or a policy's match names a group: only then do the
// functions above read LoginFacts::groups.
bool names_groups(const PolicyIndex& index);

// Every group name of `user` (primary included), via NSS.
Result<std::vector<std::string>> user_groups(const std::string& user, gid_t primary);

} // namespace authwall
