// SPDX-License-Identifier: Apache-2.0
#include "loader/dns_client.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace authwall {

struct DnsClient::Channel {
    ares_channel channel = nullptr;
    bool destroying = false;
    ~Channel()
    {
        if (channel) {
            destroying = true; // ares_destroy calls back every query, cancelled
            ares_destroy(channel);
        }
    }
};

namespace {

struct Query {
    DnsClient* client;
    std::string name;
    const bool* destroying;
};

std::vector<NameAnswer> answers_of(const ares_addrinfo* info)
{
    std::vector<NameAnswer> out;
    for (const ares_addrinfo_node* n = info ? info->nodes : nullptr; n; n = n->ai_next) {
        NameAnswer a;
        a.ttl = std::chrono::seconds(std::max(n->ai_ttl, 0));
        if (n->ai_family == AF_INET) {
            const auto* sin = reinterpret_cast<const sockaddr_in*>(n->ai_addr);
            a.address = IpAddress::v4(ntohl(sin->sin_addr.s_addr));
        } else if (n->ai_family == AF_INET6) {
            const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(n->ai_addr);
            std::array<uint8_t, 16> bytes{};
            std::memcpy(bytes.data(), &sin6->sin6_addr, 16);
            a.address = IpAddress(bytes);
        } else {
            continue;
        }
        out.push_back(a);
    }
    return out;
}

DnsResult result_of(int status, const ares_addrinfo* info)
{
    DnsResult r;
    if (status == ARES_SUCCESS) {
        r.answer = answers_of(info);
        r.kind = r.answer.empty() ? DnsResult::Kind::NotFound : DnsResult::Kind::Answer;
    } else if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
        r.kind = DnsResult::Kind::NotFound; // the server's answer: no such name, or no address
    } else {
        r.kind = DnsResult::Kind::Failed;
        r.error = ares_strerror(status);
    }
    return r;
}

} // namespace

DnsClient::DnsClient(Done done, Fd epoll, Fd timer)
    : done_(std::move(done)), epoll_(std::move(epoll)), timer_(std::move(timer)), channel_(std::make_unique<Channel>())
{
}

DnsClient::~DnsClient() = default;

Result<std::unique_ptr<DnsClient>> DnsClient::create(const DnsSettings& settings, Done done)
{
    static std::once_flag once;
    static int init = ARES_SUCCESS;
    std::call_once(once, [] { init = ares_library_init(ARES_LIB_INIT_ALL); });
    if (init != ARES_SUCCESS)
        return Error::msg("start", "the DNS resolver", ares_strerror(init));
    Fd epoll(epoll_create1(EPOLL_CLOEXEC));
    Fd timer(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!epoll || !timer)
        return Error::sys("start", "the DNS resolver", errno);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = timer.get();
    if (epoll_ctl(epoll.get(), EPOLL_CTL_ADD, timer.get(), &ev) != 0)
        return Error::sys("start", "the DNS resolver", errno);
    std::unique_ptr<DnsClient> client(new DnsClient(std::move(done), std::move(epoll), std::move(timer)));

    ares_options opts{};
    opts.flags = ARES_FLAG_NOSEARCH; // the names of rules are absolute
    opts.lookups = const_cast<char*>("b");
    opts.tries = 2;
    opts.timeout = static_cast<int>(std::max(settings.timeout_ms / 2, 50u));
    opts.sock_state_cb = [](void* data, ares_socket_t fd, int readable, int writable) {
        static_cast<DnsClient*>(data)->socket_state(fd, readable != 0, writable != 0);
    };
    opts.sock_state_cb_data = client.get();
    int mask = ARES_OPT_FLAGS | ARES_OPT_LOOKUPS | ARES_OPT_TRIES | ARES_OPT_TIMEOUTMS | ARES_OPT_SOCK_STATE_CB;
    if (int r = ares_init_options(&client->channel_->channel, &opts, mask); r != ARES_SUCCESS)
        return Error::msg("start", "the DNS resolver", ares_strerror(r));
    if (!settings.servers.empty()) {
        std::string csv;
        for (const auto& s : settings.servers)
            csv += (csv.empty() ? "" : ",") + s.str();
        if (int r = ares_set_servers_ports_csv(client->channel_->channel, csv.c_str()); r != ARES_SUCCESS)
            return Error::msg("use", "DNS servers " + csv, ares_strerror(r));
    }
    return client;
}

void DnsClient::resolve(const std::string& name)
{
    auto* q = new Query{this, name, &channel_->destroying};
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT; // no probing connects: every address counts alike
    ++in_flight_;
    ares_getaddrinfo(
        channel_->channel, name.c_str(), nullptr, &hints,
        [](void* arg, int status, int, ares_addrinfo* info) {
            std::unique_ptr<Query> query(static_cast<Query*>(arg));
            DnsResult r = result_of(status, info);
            ares_freeaddrinfo(info);
            if (!*query->destroying)
                query->client->finished(query->name, std::move(r));
        },
        q);
    arm_timer();
}

void DnsClient::finished(const std::string& name, DnsResult result)
{
    --in_flight_;
    done_(name, std::move(result));
}

void DnsClient::socket_state(int fd, bool readable, bool writable)
{
    if (!readable && !writable) {
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        return;
    }
    epoll_event ev{};
    ev.events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
        epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
}

void DnsClient::arm_timer()
{
    itimerspec its{};
    timeval tv{};
    if (ares_timeout(channel_->channel, nullptr, &tv)) {
        its.it_value.tv_sec = tv.tv_sec;
        its.it_value.tv_nsec = tv.tv_usec * 1000L;
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
            its.it_value.tv_nsec = 1; // due now (zero would disarm)
    }
    timerfd_settime(timer_.get(), 0, &its, nullptr);
}

void DnsClient::process()
{
    std::array<epoll_event, 16> events{};
    int n = epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), 0);
    for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == timer_.get()) {
            uint64_t expirations = 0;
            (void)!::read(fd, &expirations, sizeof(expirations));
            continue;
        }
        bool r = events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP), w = events[i].events & EPOLLOUT;
        ares_process_fd(channel_->channel, r ? fd : ARES_SOCKET_BAD, w ? fd : ARES_SOCKET_BAD);
    }
    ares_process_fd(channel_->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD); // timeouts
    arm_timer();
}

void DnsClient::wait(std::chrono::milliseconds limit, size_t below)
{
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (in_flight_ > below) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return;
        pollfd p{epoll_.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) > 0)
            process();
    }
}

std::string DnsClient::servers() const
{
    ares_addr_port_node* list = nullptr;
    if (ares_get_servers_ports(channel_->channel, &list) != ARES_SUCCESS)
        return "(unknown)";
    std::string out;
    for (auto* s = list; s; s = s->next) {
        std::array<uint8_t, 16> bytes{};
        IpAddress a;
        if (s->family == AF_INET) {
            a = IpAddress::v4(ntohl(s->addr.addr4.s_addr));
        } else {
            std::memcpy(bytes.data(), &s->addr.addr6, 16);
            a = IpAddress(bytes);
        }
        out += (out.empty() ? "" : ", ") + DnsServer{a, static_cast<uint16_t>(s->udp_port ? s->udp_port : 53)}.str();
    }
    ares_free_data(list);
    return out.empty() ? "(none)" : out;
}

} // namespace authwall
