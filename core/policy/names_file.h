// SPDX-License-Identifier: Apache-2.0
// <run_dir>/names.json: the DNS names of the rules in force and the
// addresses each stands for now, as authwall-loader publishes them
// (loader/names.h), for authctl to decide flows as the kernel does.
#pragma once

#include "core/base/result.h"
#include "core/policy/compiler.h"

#include <sys/types.h>

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

// Every name of the rules in force; nullopt when no loader published any
// (no file). Refuses a file not owned by `owner` or writable by others.
Result<std::optional<std::vector<PublishedName>>> read_published_names(const std::filesystem::path& run_dir,
                                                                       uid_t owner = 0);

// The addresses of each name; empty when no loader published any (no
// file). Refuses a file not owned by `owner` or writable by others.
Result<NameAddresses> read_name_addresses(const std::filesystem::path& run_dir, uid_t owner = 0);

} // namespace authwall
