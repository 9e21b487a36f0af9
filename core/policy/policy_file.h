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
    std::vector<Policy> policies;
    std::vector<PolicyDiagnostic> errors;
    bool ok() const { return errors.empty(); }
};

// Parses policy TOML text; `file` names it in diagnostics.
PolicyLoad parse_policy_text(std::string_view text, const std::string& file);

// Refuses a file (or directory) not owned by root (or by `owner`) or writable
// by group or others: a policy an unprivileged user can edit is no policy.
Status check_trusted_path(const std::filesystem::path& path, uid_t owner = 0);

// check_trusted_path, then the whole file; on failure, one diagnostic.
Result<std::string> read_trusted_file(const std::filesystem::path& path, uid_t owner = 0);

// Reads one file after check_trusted_path.
PolicyLoad load_policy_file(const std::filesystem::path& path, uid_t owner = 0);

// Reads every *.toml of a directory, in name order; one bad file makes the
// whole load fail (errors of every file are reported).
PolicyLoad load_policy_dir(const std::filesystem::path& dir, uid_t owner = 0);

} // namespace authwall
