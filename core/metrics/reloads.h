// SPDX-License-Identifier: Apache-2.0
// The loader's record of policy reloads (run_dir/policy-reloads.json):
// how many succeeded and failed, and when the last of each was. Written
// atomically by authwall-loader after every load; read by authctl metrics
// and cgroupd's metrics file. It lives in run_dir (a tmpfs), so it starts
// again at boot, as the data plane does.
#pragma once

#include "core/base/result.h"

#include <cstdint>
#include <filesystem>
#include <optional>

namespace authwall {

struct ReloadRecord {
    uint64_t succeeded = 0, failed = 0;
    uint64_t last_success_ns = 0, last_failure_ns = 0; // CLOCK_REALTIME; 0: never
};

std::filesystem::path reload_record_path(const std::filesystem::path& run_dir);

// The record, or nullopt when no loader wrote one; an error for a file
// that exists but cannot be read or parsed.
Result<std::optional<ReloadRecord>> read_reload_record(const std::filesystem::path& run_dir);

// Adds one load's result (now) to the record and writes it atomically.
// An unreadable record starts again from zero.
Result<ReloadRecord> record_reload(const std::filesystem::path& run_dir, bool succeeded);

} // namespace authwall
