// SPDX-License-Identifier: Apache-2.0
// Internal to core/policy: policies and sets as written in the files, before
// their sets are expanded and their bases (extends) folded in. Reading
// (policy_file.cpp) fills these per file; resolving (resolve.cpp) needs
// every file of the directory first, since a set or a base may be defined
// in another file than the rule that uses it.
#pragma once

#include "core/policy/policy.h"
#include "core/policy/policy_file.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace authwall::detail {

struct Place {
    std::string file;
    unsigned line = 0;
    unsigned column = 0;
    std::string str() const { return file + ":" + std::to_string(line) + ":" + std::to_string(column); }
};

// A value with the place it was written, so a conflict can name it.
template <class T> struct Written {
    T value{};
    Place at;
};

struct WrittenRule {
    std::string text;
    Place at; // the string's opening quote: a column within the rule is added to it
    bool log = false;
};

struct WrittenDirection {
    std::optional<Written<Verdict>> default_verdict;
    std::vector<WrittenRule> allow;
    std::vector<WrittenRule> deny;
};

struct WrittenPolicy {
    std::string name;
    Place at;
    bool abstract = false;
    std::vector<Written<std::string>> extends;
    // Who the policy is for: never inherited.
    int priority = 0;
    PolicyMatch match;
    bool has_match = false;
    // What it enforces: inherited, the child's own value winning.
    std::optional<Written<bool>> audit;
    WrittenDirection egress, ingress, bind;
    std::optional<Written<bool>> from_rhost_only;
    uint64_t denied_families = 0; // inherited as a union
    bool deny_raw = false;
    std::optional<Written<std::chrono::seconds>> max_duration;
};

struct WrittenSet {
    std::string name;
    Place at;
    std::vector<Written<std::string>> members;
};

// One file's worth.
struct PolicyDocument {
    std::vector<WrittenPolicy> policies;
    std::vector<WrittenSet> sets;
};

// Reads the TOML text of one file; errors go to `errors`.
PolicyDocument read_policy_document(std::string_view text, const std::string& file,
                                    std::vector<PolicyDiagnostic>& errors);

// Every document of a load together: sets resolved, bases folded in, rules
// expanded and numbered, allows that a deny covers reported.
PolicyLoad resolve_documents(const std::vector<PolicyDocument>& documents, std::vector<PolicyDiagnostic> errors,
                             const PolicyLoadLimits& limits);

} // namespace authwall::detail
