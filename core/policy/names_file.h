// SPDX-License-Identifier: Apache-2.0
// <run_dir>/names.json: the DNS names of the rules in force and the
// addresses each stands for now, as authwall-loader publishes them
// (loader/names.h), for authctl to decide flows as the kernel does.
#pragma once

#include "core/base/result.h"
#include "core/policy/compiler.h"

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace authwall {

std::filesystem::path names_file_path(const std::filesystem::path& run_dir);

// One name as the loader published it.
struct PublishedName {
    std::string name;
    std::vector<IpAddress> addresses; // in force now (grace and staleness included)
    unsigned failures = 0;            // its queries that failed in a row, since its last answer
};

// What the loader did with the DNS answers sessions received to their own
// queries (loader/session_answers.h), since it started: every answer the
// data plane handed over, those it ignored (from a server outside
// dns.observe_from, for a name no rule allows, malformed), and the
// addresses it granted to sessions.
struct SessionAnswerCounts {
    uint64_t answers = 0, ignored = 0, granted = 0;
};

struct PublishedNames {
    std::vector<PublishedName> names; // of the rules in force
    std::optional<SessionAnswerCounts> session_answers;
};

// What the loader published; nullopt when it published nothing (no file).
// Refuses a file not owned by `owner` or writable by others.
Result<std::optional<PublishedNames>> read_published_names(const std::filesystem::path& run_dir, uid_t owner = 0);

// The addresses of each name; empty when no loader published any (no
// file). Refuses a file not owned by `owner` or writable by others.
Result<NameAddresses> read_name_addresses(const std::filesystem::path& run_dir, uid_t owner = 0);

} // namespace authwall
