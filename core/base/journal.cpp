// SPDX-License-Identifier: Apache-2.0
#include "core/base/journal.h"

#include "core/base/fd.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

namespace authwall {

std::string journal_datagram(const JournalFields& fields)
{
    std::string out;
    for (const auto& [name, value] : fields) {
        out += name;
        if (value.find('\n') == std::string::npos) {
            out += '=';
            out += value;
        } else {
            out += '\n';
            uint64_t size = value.size();
            for (int i = 0; i < 8; ++i)
                out += static_cast<char>((size >> (8 * i)) & 0xff);
            out += value;
        }
        out += '\n';
    }
    return out;
}

Status journal_send(const JournalFields& fields, const std::string& socket)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket.size() >= sizeof(addr.sun_path))
        return Error::msg("send to the journal", socket, "the socket path is too long");
    std::memcpy(addr.sun_path, socket.c_str(), socket.size() + 1);
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd)
        return Error::sys("create socket for", socket, errno);
    std::string datagram = journal_datagram(fields);
    if (::sendto(fd.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr),
                 sizeof(addr)) < 0)
        return Error::sys("send to the journal", socket, errno);
    return {};
}

} // namespace authwall
