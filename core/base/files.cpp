// SPDX-License-Identifier: Apache-2.0
#include "core/base/files.h"

#include "core/base/fd.h"
#include "core/base/time.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace authwall {

namespace fs = std::filesystem;

Result<std::string> read_text_file(const std::filesystem::path& path)
{
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        return Error::sys("read", path.string(), errno);
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return Error::sys("read", path.string(), errno);
        }
        if (n == 0)
            return text;
        text.append(buf, static_cast<size_t>(n));
    }
}

Status write_file_atomic(const fs::path& path, const std::string& text, unsigned mode)
{
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec)
        return Error::sys("create directory", path.parent_path().string(), ec.value());
    fs::path tmp = path;
    tmp += ".tmp." + random_hex(4);
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd)
        return Error::sys("create", tmp.string(), errno);
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0) {
            int err = errno;
            ::unlink(tmp.c_str());
            return Error::sys("write", tmp.string(), err);
        }
        done += static_cast<size_t>(n);
    }
    if (::fchmod(fd.get(), mode) != 0 || ::fsync(fd.get()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return Error::sys("sync", tmp.string(), err);
    }
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return Error::sys("rename to", path.string(), err);
    }
    return {};
}

} // namespace authwall
