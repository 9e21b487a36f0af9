// SPDX-License-Identifier: Apache-2.0
#include "core/metrics/reloads.h"

#include "core/base/files.h"
#include "core/base/time.h"

#include <nlohmann/json.hpp>

#include <cerrno>

namespace authwall {

std::filesystem::path reload_record_path(const std::filesystem::path& run_dir)
{
    return run_dir / "policy-reloads.json";
}

Result<std::optional<ReloadRecord>> read_reload_record(const std::filesystem::path& run_dir)
{
    auto path = reload_record_path(run_dir);
    auto text = read_text_file(path);
    if (!text) {
        if (text.error().err == ENOENT)
            return std::optional<ReloadRecord>();
        return text.error();
    }
    auto j = nlohmann::json::parse(*text, nullptr, false);
    ReloadRecord r;
    auto number = [&](const char* key, uint64_t& into) {
        auto it = j.find(key);
        if (it == j.end() || !it->is_number_unsigned())
            return false;
        into = it->get<uint64_t>();
        return true;
    };
    if (!j.is_object() || !number("succeeded", r.succeeded) || !number("failed", r.failed) ||
        !number("last_success_ns", r.last_success_ns) || !number("last_failure_ns", r.last_failure_ns))
        return Error::msg("read", path.string(), "not a policy reload record (written by authwall-loader)");
    return std::optional<ReloadRecord>(r);
}

Result<ReloadRecord> record_reload(const std::filesystem::path& run_dir, bool succeeded)
{
    auto current = read_reload_record(run_dir);
    ReloadRecord r = current && *current ? **current : ReloadRecord{};
    uint64_t now = realtime_ns();
    if (succeeded) {
        ++r.succeeded;
        r.last_success_ns = now;
    } else {
        ++r.failed;
        r.last_failure_ns = now;
    }
    nlohmann::json j{{"version", 1},
                     {"succeeded", r.succeeded},
                     {"failed", r.failed},
                     {"last_success_ns", r.last_success_ns},
                     {"last_failure_ns", r.last_failure_ns}};
    if (auto st = write_file_atomic(reload_record_path(run_dir), j.dump() + "\n", 0644); !st)
        return st.error();
    return r;
}

} // namespace authwall
