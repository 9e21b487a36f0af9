// Reading a whole (small) file with read(2): the proc and cgroup files, the
// session records, the policy index and the configuration the login path
// reads. No iostreams there: in a fresh login process the first
// std::ifstream builds the C++ locale, which cost more than the read itself.
#pragma once

#include "core/result.h"

#include <filesystem>
#include <string>

namespace authwall {

// The file's contents; an error "read PATH: <errno>" if it cannot be opened
// or read.
Result<std::string> read_text_file(const std::filesystem::path& path);

} // namespace authwall
