// SPDX-License-Identifier: Apache-2.0
// The rule catalog: where each rule in force was written. A decision event
// names its rule by the policy's kernel id and the rule's number within the
// policy (aw_event.rule); the loader publishes the catalog of the policies
// in force to <run_dir>/rules.json beside the policy index, so the events it
// writes, `authctl policy show` and `authctl watch` can say "file:line" and
// quote the rule. Not read by the PAM module.
#pragma once

#include "core/base/result.h"
#include "core/policy/policy.h"

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace authwall {

struct RuleSource {
    std::string policy;    // the policy's name
    std::string direction; // "egress", "ingress" or "bind"
    Verdict verdict = Verdict::Allow;
    std::string text; // as written
    std::string file;
    unsigned line = 0;
    unsigned column = 0;
    bool log = false;

    std::string where() const; // "file:line:column"
};

class RuleCatalog {
  public:
    // Every numbered rule of `policies`, under its policy's id in `ids`; the
    // unmatched fallback's rules under AW_POLICY_FALLBACK when it names one.
    static RuleCatalog build(const std::vector<Policy>& policies, const std::map<std::string, uint32_t>& ids,
                             const Fallback& fallback);

    const RuleSource* find(uint32_t policy_id, uint32_t rule) const;
    const std::map<std::pair<uint32_t, uint32_t>, RuleSource>& rules() const { return rules_; }

    std::string to_json() const;
    static Result<RuleCatalog> from_json(const std::string& text, const std::string& source);

  private:
    std::map<std::pair<uint32_t, uint32_t>, RuleSource> rules_; // (policy id, rule number)
};

std::filesystem::path rule_catalog_path(const std::filesystem::path& run_dir);
Status write_rule_catalog(const std::filesystem::path& run_dir, const RuleCatalog& catalog);
// Refuses a catalog not owned by `owner` or writable by others.
Result<RuleCatalog> read_rule_catalog(const std::filesystem::path& run_dir, uid_t owner = 0);

} // namespace authwall
