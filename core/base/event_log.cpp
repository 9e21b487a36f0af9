// SPDX-License-Identifier: Apache-2.0
#include "core/base/event_log.h"

#include "core/base/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace authwall {

Status append_event_line(const std::filesystem::path& path, const std::string& line)
{
    Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640));
    if (!fd)
        return Error::sys("append to event log", path.string(), errno);
    std::string text = line + "\n";
    ssize_t n = ::write(fd.get(), text.data(), text.size());
    if (n < 0)
        return Error::sys("append to event log", path.string(), errno);
    if (static_cast<size_t>(n) != text.size())
        return Error::msg("append to event log", path.string(), "short write");
    return {};
}

} // namespace authwall
