// SPDX-License-Identifier: Apache-2.0
#include "authctl/listing.h"

#include "core/base/identity.h"
#include "core/base/time.h"

#include <pwd.h>

#include <charconv>

namespace authctl {

using namespace authwall;

std::optional<OutputFormat> output_format(std::string_view name)
{
    if (name == "short")
        return OutputFormat::Short;
    if (name == "wide")
        return OutputFormat::Wide;
    if (name == "json")
        return OutputFormat::Json;
    return std::nullopt;
}

bool ListOptions::selects(uint32_t session_uid, std::string_view session_policy) const
{
    if (uid && *uid != session_uid)
        return false;
    return !policy || *policy == session_policy;
}

Result<uint32_t> resolve_user(const std::string& text)
{
    passwd pw{};
    passwd* found = nullptr;
    char buf[4096];
    if (!text.empty() && getpwnam_r(text.c_str(), &pw, buf, sizeof(buf), &found) == 0 && found)
        return static_cast<uint32_t>(pw.pw_uid);
    uint32_t uid = 0;
    const char* end = text.data() + text.size();
    auto [at, ec] = std::from_chars(text.data(), end, uid);
    // (uid_t)-1 is no user: chown(2) and setresuid(2) read it as "unchanged".
    if (!text.empty() && ec == std::errc() && at == end && uid != UINT32_MAX)
        return uid;
    return Error::msg("--user", printable(text), "is neither a user NSS knows nor a uid");
}

std::string utc_seconds_text(uint64_t realtime_ns)
{
    std::string text = rfc3339_utc(realtime_ns); // "2026-12-03T06:15:37.123Z"
    if (auto dot = text.find('.'); dot != std::string::npos)
        text.erase(dot, text.size() - 1 - dot);
    return text;
}

std::vector<std::vector<std::string>> table_rows(std::vector<std::vector<std::string>> rows, bool legend)
{
    if (!legend && !rows.empty())
        rows.erase(rows.begin());
    return rows;
}

} // namespace authctl
