// SPDX-License-Identifier: Apache-2.0
// What `authctl sessions` and `authctl users` share: the output format
// (-o short|wide|json, --json), the legend (--no-legend) and the filters
// (--user, --policy). Apart from the commands so the unit tests link it.
#pragma once

#include "core/base/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authctl {

enum class OutputFormat { Short, Wide, Json };

// "short", "wide", "json" (the values -o takes).
std::optional<OutputFormat> output_format(std::string_view name);

struct ListOptions {
    OutputFormat format = OutputFormat::Short;
    bool legend = true;                // the header line of a table (--no-legend drops it)
    std::optional<uint32_t> uid;       // --user: only this user's sessions
    std::optional<std::string> policy; // --policy: only sessions under this policy (as listed)
    bool json() const { return format == OutputFormat::Json; }
    bool wide() const { return format == OutputFormat::Wide; }
    // Whether a session of `session_uid` under `session_policy` passes the filters.
    bool selects(uint32_t session_uid, std::string_view session_policy) const;
};

// The value of --user: a name NSS knows, else a decimal uid. A name is
// looked up first, as id(1) does.
authwall::Result<uint32_t> resolve_user(const std::string& text);

// The second a session opened, as the tables write it: RFC 3339 in UTC
// without the milliseconds the JSON carries ("2026-12-03T06:15:37Z").
std::string utc_seconds_text(uint64_t realtime_ns);

// The rows a table prints: `rows` starts with its header, which goes when
// the legend is off.
std::vector<std::vector<std::string>> table_rows(std::vector<std::vector<std::string>> rows, bool legend);

} // namespace authctl
