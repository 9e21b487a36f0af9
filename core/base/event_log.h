// SPDX-License-Identifier: Apache-2.0
// The JSON event log (authwall.toml event_log): one JSON object a line,
// appended by every writer (the PAM module, both daemons, authctl).
#pragma once

#include "core/base/result.h"

#include <filesystem>
#include <string>

namespace authwall {

// Appends `line` (one JSON object, without its newline) to `path` with one
// write(2) on an O_APPEND descriptor, so concurrent writers never
// interleave within a line. Never through a symlink (O_NOFOLLOW); the file
// is made 0640 when missing.
Status append_event_line(const std::filesystem::path& path, const std::string& line);

} // namespace authwall
