// SPDX-License-Identifier: Apache-2.0
// Reading policy files (TOML). Every problem is reported with file, line,
// column and what was expected; unknown keys are errors, so a typo can never
// silently drop a rule. See docs/POLICY.md for the language.
#pragma once

#include "core/policy/policy.h"
#include "core/base/result.h"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace authwall {

struct PolicyDiagnostic {
    std::string file;
    unsigned line = 0;
    unsigned column = 0;
    std::string message;

    std::string str() const; // "file:line:col: message"
};

struct PolicyLoad {
    std::vector<Policy> policies; // what is compiled and matched to logins
    std::vector<Policy> abstract; // abstract = true: bases only, resolved for `policy show --resolved`
    std::vector<PolicyDiagnostic> errors;
    bool ok() const { return errors.empty(); }
};

// What a load may expand to: a rule with sets and port lists is the cross
// product of its addresses and services, one entry each, so a few lines
// can stand for millions. Counted before compilation, which counts trie
// entries (limits.policy_entries) again.
struct PolicyLoadLimits {
    size_t max_entries = 1'000'000;  // rule entries of every policy together
    size_t max_rule_entries = 65536; // entries of one written rule
};

// Parses policy TOML text; `file` names it in diagnostics. Only the sets
// and bases of this text are known.
PolicyLoad parse_policy_text(std::string_view text, const std::string& file, const PolicyLoadLimits& limits = {});

// Refuses a file (or directory) not owned by root (or by `owner`) or writable
// by group or others: a policy an unprivileged user can edit is no policy.
Status check_trusted_path(const std::filesystem::path& path, uid_t owner = 0);

// check_trusted_path, then the whole file; on failure, one diagnostic.
Result<std::string> read_trusted_file(const std::filesystem::path& path, uid_t owner = 0);

// Reads one file after check_trusted_path. Only its own sets and bases are
// known: check a directory to use the sets of its other files.
PolicyLoad load_policy_file(const std::filesystem::path& path, uid_t owner = 0, const PolicyLoadLimits& limits = {});

// Reads every *.toml of a directory, in name order; one bad file makes the
// whole load fail (errors of every file are reported). Sets and bases are
// shared by every file of the directory.
PolicyLoad load_policy_dir(const std::filesystem::path& dir, uid_t owner = 0, const PolicyLoadLimits& limits = {});

// A policy of `load` by name, abstract ones included; nullptr when none.
const Policy* find_policy(const PolicyLoad& load, const std::string& name);

} // namespace authwall
