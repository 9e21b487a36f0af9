// SPDX-License-Identifier: Apache-2.0
// Whole small files: read with read(2) (the proc and cgroup files, the
// session records, the policy index and the configuration the login path
// reads; no iostreams there: in a fresh login process the first
// std::ifstream builds the C++ locale, which cost more than the read
// itself), and written atomically.
#pragma once

#include "core/base/result.h"

#include <filesystem>
#include <string>

namespace authwall {

// The file's contents; an error "read PATH: <errno>" if it cannot be opened
// or read.
Result<std::string> read_text_file(const std::filesystem::path& path);

// Writes `text` to `path` atomically with `mode` (a temporary file beside
// it, fsync, rename; never through a symlink), creating parent directories
// 0755.
Status write_file_atomic(const std::filesystem::path& path, const std::string& text, unsigned mode);

} // namespace authwall
