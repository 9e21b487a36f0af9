#include "core/text_file.h"

#include "core/fd.h"

#include <fcntl.h>
#include <unistd.h>

namespace authwall {

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

} // namespace authwall
