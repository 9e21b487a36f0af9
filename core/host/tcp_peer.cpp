// SPDX-License-Identifier: Apache-2.0
#include "core/host/tcp_peer.h"

#include "core/base/fd.h"

#include <dirent.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstring>
#include <memory>
#include <string>
#include <optional>
#include <string_view>
#include <utility>

namespace authwall {

namespace {

// The descriptors of `pid` that are sockets, with their inodes.
Result<std::vector<std::pair<int, uint64_t>>> socket_fds(pid_t pid)
{
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    struct CloseDir {
        void operator()(DIR* d) const { ::closedir(d); }
    };
    std::unique_ptr<DIR, CloseDir> d(::opendir(dir.c_str()));
    if (!d)
        return Error::sys("list the open files of", dir, errno);
    std::vector<std::pair<int, uint64_t>> sockets;
    char target[64];
    while (const dirent* e = ::readdir(d.get())) {
        std::string_view name = e->d_name;
        int fd = -1;
        if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc())
            continue; // . and ..
        ssize_t n = ::readlinkat(::dirfd(d.get()), e->d_name, target, sizeof(target) - 1);
        if (n <= 0)
            continue; // closed meanwhile
        std::string_view link(target, static_cast<size_t>(n));
        if (!link.starts_with("socket:[") || !link.ends_with("]"))
            continue;
        uint64_t inode = 0;
        auto digits = link.substr(8, link.size() - 9);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), inode);
        if (ec == std::errc() && end == digits.data() + digits.size())
            sockets.emplace_back(fd, inode);
    }
    return sockets;
}

} // namespace

Result<std::set<uint64_t>> socket_inodes(pid_t pid)
{
    auto fds = socket_fds(pid);
    if (!fds)
        return fds.error();
    std::set<uint64_t> inodes;
    for (const auto& [fd, inode] : *fds)
        inodes.insert(inode);
    return inodes;
}

namespace {

TcpConnection connection_of(const inet_diag_msg& m)
{
    auto address = [&](const __be32* words) {
        std::array<uint8_t, 16> bytes{};
        if (m.idiag_family == AF_INET) {
            bytes[10] = bytes[11] = 0xff; // the data plane's v4-mapped form
            std::memcpy(bytes.data() + 12, words, 4);
        } else {
            std::memcpy(bytes.data(), words, 16);
        }
        return IpAddress(bytes);
    };
    TcpConnection c;
    c.inode = m.idiag_inode;
    c.local = address(m.id.idiag_src);
    c.local_port = ntohs(m.id.idiag_sport);
    c.peer = address(m.id.idiag_dst);
    c.peer_port = ntohs(m.id.idiag_dport);
    return c;
}

Status request_dump(int sock, uint8_t family, uint32_t seq)
{
    struct {
        nlmsghdr header;
        inet_diag_req_v2 request;
    } message{};
    message.header.nlmsg_len = sizeof(message);
    message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    message.header.nlmsg_seq = seq;
    message.request.sdiag_family = family;
    message.request.sdiag_protocol = IPPROTO_TCP;
    message.request.idiag_states = 1U << TCP_ESTABLISHED;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(sock, &message, sizeof(message), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0)
        return Error::sys("send", "sock_diag dump request", errno);
    return {};
}

// One family's established TCP sockets, read to the end of the dump; those
// with an inode of `inodes` are kept.
Status read_dump(int sock, uint32_t seq, const std::set<uint64_t>& inodes, std::vector<TcpConnection>& out)
{
    std::vector<nlmsghdr> buf(65536 / sizeof(nlmsghdr)); // aligned for the headers read into it
    for (;;) {
        ssize_t n = ::recv(sock, buf.data(), buf.size() * sizeof(nlmsghdr), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return Error::sys("read", "sock_diag dump", n < 0 ? errno : EPROTO);
        auto len = static_cast<unsigned>(n);
        // NLMSG_NEXT casts through char*; the buffer is aligned for nlmsghdr
        // and every message starts NLMSG_ALIGN (4) bytes in, which it needs.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-align"
        for (auto* h = buf.data(); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
#pragma GCC diagnostic pop
            if (h->nlmsg_seq != seq)
                continue;
            if (h->nlmsg_type == NLMSG_DONE)
                return {};
            if (h->nlmsg_type == NLMSG_ERROR) {
                const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
                return Error::sys("dump", "established TCP sockets (sock_diag)", e->error ? -e->error : EPROTO);
            }
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg)))
                continue;
            const auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
            if (inodes.contains(m->idiag_inode))
                out.push_back(connection_of(*m));
        }
    }
}

// The ports and addresses of a connected TCP socket of this process, as
// sock_diag's exact lookup takes them; false when `fd` is no such socket.
bool own_socket_id(int fd, inet_diag_req_v2& req)
{
    int domain = 0, type = 0, protocol = 0;
    socklen_t size = sizeof(int);
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size) != 0 || (domain != AF_INET && domain != AF_INET6) ||
        ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0 || type != SOCK_STREAM ||
        ::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &size) != 0 || protocol != IPPROTO_TCP)
        return false;
    sockaddr_storage local{}, peer{};
    socklen_t local_size = sizeof(local), peer_size = sizeof(peer);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0)
        return false; // not connected
    req.sdiag_family = static_cast<uint8_t>(domain);
    req.sdiag_protocol = IPPROTO_TCP;
    req.idiag_states = 1U << TCP_ESTABLISHED;
    auto put = [&](const sockaddr_storage& a, __be16& port, __be32* address) {
        if (domain == AF_INET) {
            const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
            port = v4.sin_port;
            std::memcpy(address, &v4.sin_addr, 4);
        } else {
            const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
            port = v6.sin6_port;
            std::memcpy(address, &v6.sin6_addr, 16);
        }
    };
    put(local, req.id.idiag_sport, req.id.idiag_src);
    put(peer, req.id.idiag_dport, req.id.idiag_dst);
    req.id.idiag_cookie[0] = req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    return true;
}

// The established TCP connection behind this process's descriptor `fd`
// (socket inode `inode`), asked of sock_diag by its addresses and ports:
// one hash lookup in the kernel, where a dump walks the whole established
// table (about 2.5 ms a family with 262144 buckets, on every login).
// nullopt when it is not one, or no longer established.
Result<std::optional<TcpConnection>> own_connection(int sock, int fd, uint64_t inode, uint32_t seq)
{
    struct {
        nlmsghdr header;
        inet_diag_req_v2 request;
    } message{};
    if (!own_socket_id(fd, message.request))
        return std::optional<TcpConnection>();
    message.header.nlmsg_len = sizeof(message);
    message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    message.header.nlmsg_flags = NLM_F_REQUEST;
    message.header.nlmsg_seq = seq;
    if (::send(sock, &message, sizeof(message), 0) < 0)
        return Error::sys("send", "sock_diag lookup", errno);
    alignas(nlmsghdr) char buf[4096];
    ssize_t n;
    do
        n = ::recv(sock, buf, sizeof(buf), 0);
    while (n < 0 && errno == EINTR);
    const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
    if (n <= 0 || !NLMSG_OK(h, static_cast<unsigned>(n)) || h->nlmsg_seq != seq)
        return Error::sys("read", "sock_diag lookup", n < 0 ? errno : EPROTO);
    if (h->nlmsg_type == NLMSG_ERROR) {
        int err = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
        if (err == ENOENT)
            return std::optional<TcpConnection>(); // closed, or not established
        return Error::sys("look up", "a TCP socket (sock_diag)", err ? err : EPROTO);
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg)))
        return Error::sys("read", "sock_diag lookup", EPROTO);
    const auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
    // The descriptor may have been closed and its number reused meanwhile:
    // only the socket the inode names counts.
    if (m->idiag_state != TCP_ESTABLISHED || m->idiag_inode != inode)
        return std::optional<TcpConnection>();
    return std::optional<TcpConnection>(connection_of(*m));
}

} // namespace

Result<std::vector<TcpConnection>> established_tcp(const std::set<uint64_t>& inodes)
{
    std::vector<TcpConnection> out;
    if (inodes.empty())
        return out;
    Fd sock(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!sock)
        return Error::sys("open", "a sock_diag netlink socket", errno);
    uint32_t seq = 0;
    for (uint8_t family : {AF_INET, AF_INET6}) {
        if (auto st = request_dump(sock.get(), family, ++seq); !st)
            return st.error();
        if (auto st = read_dump(sock.get(), seq, inodes, out); !st)
            return st.error();
    }
    return out;
}

Result<std::vector<TcpConnection>> own_established_tcp()
{
    auto fds = socket_fds(::getpid());
    if (!fds)
        return fds.error();
    std::vector<TcpConnection> out;
    Fd sock;
    uint32_t seq = 0;
    for (const auto& [fd, inode] : *fds) {
        if (!sock) {
            sock.reset(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
            if (!sock)
                return Error::sys("open", "a sock_diag netlink socket", errno);
        }
        auto c = own_connection(sock.get(), fd, inode, ++seq);
        if (!c)
            return c.error();
        if (*c)
            out.push_back(**c);
    }
    return out;
}

Result<IpAddress> login_peer_address(pid_t pid)
{
    Result<std::vector<TcpConnection>> connections = std::vector<TcpConnection>();
    if (pid == ::getpid()) {
        connections = own_established_tcp();
    } else {
        auto inodes = socket_inodes(pid);
        if (!inodes)
            return inodes.error();
        connections = established_tcp(*inodes);
    }
    if (!connections)
        return connections.error();
    const std::string who = "the login process " + std::to_string(pid);
    if (connections->empty())
        return Error::msg("find the remote address of", who,
                          "it holds no established TCP connection (rhost=kernel is for network logins such as sshd)");
    const IpAddress peer = connections->front().peer;
    for (const auto& c : *connections)
        if (c.peer != peer)
            return Error::msg("find the remote address of", who,
                              "its TCP connections lead to " + peer.str() + " and " + c.peer.str() +
                                  ": which one is the login's is not known");
    return peer;
}

} // namespace authwall
