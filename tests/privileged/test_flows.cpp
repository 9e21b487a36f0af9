// SPDX-License-Identifier: Apache-2.0
// Flows that outlive a change: the packet hooks remember per socket what
// they found (docs/ARCHITECTURE.md, "Per-socket memory"), and every change
// userspace makes must still reach a flow already running at its next
// packet: a revoked login or user, a reloaded policy, a session enrolled
// around a process that already had its socket. Each case has its control:
// the same flow, without the change, keeps delivering.
#include <boost/test/unit_test.hpp>

#include "core/base/fd.h"
#include "tests/support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;

namespace {

const char* kPolicy = R"(
[policy.web]
[policy.web.egress]
default = "deny"
allow = ["127.0.0.1 tcp", "127.0.0.1 udp"]
)";

const char* kNoUdp = R"(
[policy.web]
[policy.web.egress]
default = "deny"
allow = ["127.0.0.1 tcp"]
)";

const char* kNoTcp = R"(
[policy.web]
[policy.web.egress]
default = "deny"
allow = ["127.0.0.1 udp"]
)";

// A uid no account uses, held to a user layer by the tests that need one.
constexpr uid_t kUser = 4242101;

// A socket of the test process (outside every session) on 127.0.0.1 and a
// free port, that collects what arrives.
class Receiver {
  public:
    explicit Receiver(int type) : fd_(::socket(AF_INET, type | SOCK_CLOEXEC, 0))
    {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(a);
        BOOST_REQUIRE(fd_.valid());
        BOOST_REQUIRE_EQUAL(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
        BOOST_REQUIRE_EQUAL(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
        port_ = ntohs(a.sin_port);
        if (type == SOCK_STREAM)
            BOOST_REQUIRE_EQUAL(::listen(fd_.get(), 4), 0);
    }
    uint16_t port() const { return port_; }

    // Everything that arrived within `ms` (on the first accepted connection
    // for TCP).
    std::string drain(int ms)
    {
        int fd = fd_.get();
        Fd conn;
        int type = 0;
        socklen_t tl = sizeof(type);
        ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl);
        if (type == SOCK_STREAM) {
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, ms) <= 0)
                return "";
            conn = Fd(::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
            fd = conn.get();
        }
        std::string got;
        char buf[256];
        for (;;) {
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, ms) <= 0)
                break;
            ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
            if (n <= 0)
                break;
            got.append(buf, static_cast<size_t>(n));
        }
        return got;
    }

  private:
    Fd fd_;
    uint16_t port_ = 0;
};

// A probe in two steps: it sends "a", waits for the test to make its change,
// then sends "b" on the same socket and lingers while the kernel delivers
// (or drops) it. `change` runs between the two.
class TwoSteps {
  public:
    TwoSteps()
    {
        BOOST_REQUIRE_EQUAL(::pipe2(ready_, O_CLOEXEC), 0);
        BOOST_REQUIRE_EQUAL(::pipe2(go_, O_CLOEXEC), 0);
    }
    ~TwoSteps()
    {
        for (int fd : {ready_[0], ready_[1], go_[0], go_[1]})
            ::close(fd);
    }

    // Runs the probe (connected socket of `type` to 127.0.0.1:port) in
    // `cgroup` as `who`; returns its result (0, or errno of a failed step).
    int run(const fs::path& cgroup, const ProbeIdentity& who, int type, uint16_t port,
            const std::function<void()>& change)
    {
        int result = -1;
        std::thread probe([&] { result = run_probe_as(cgroup, who, [&] { return converse(type, port); }); });
        char c = 0;
        bool ready = ::read(ready_[0], &c, 1) == 1;
        if (ready)
            change();
        (void)!::write(go_[1], "g", 1);
        probe.join();
        BOOST_TEST(ready);
        return result;
    }

  private:
    int converse(int type, uint16_t port)
    {
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int s = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
        if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0)
            return errno;
        if (::send(s, "a", 1, 0) != 1)
            return errno;
        usleep(50 * 1000);
        (void)!::write(ready_[1], "r", 1);
        char c = 0;
        if (::read(go_[0], &c, 1) != 1)
            return EPIPE;
        // A send on a flow the data plane now refuses still succeeds (the
        // packet is dropped after the syscall), so only the receiver knows.
        ::send(s, "b", 1, MSG_NOSIGNAL);
        usleep(300 * 1000);
        ::close(s);
        return 0;
    }

    int ready_[2];
    int go_[2];
};

// connect() to a listener of the probe's own on 127.0.0.1:port, `times`
// times; 0, or the first errno.
int connect_to_own_listener(uint16_t port, int times)
{
    int l = tcp_listen("127.0.0.1", port);
    if (l < 0)
        return 10000 - l;
    int rc = 0;
    for (int i = 0; i < times && rc == 0; ++i)
        rc = tcp_connect("127.0.0.1", port);
    ::close(l);
    return rc;
}

// The bytes of option memory the kernel charges a socket: where it charges
// the packet hooks' memory of it (bench_memory).
uint32_t option_memory(int fd)
{
    uint32_t info[SK_MEMINFO_VARS] = {};
    socklen_t len = sizeof(info);
    if (::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &len) != 0)
        return ~0u;
    return info[SK_MEMINFO_OPTMEM];
}

// Keeps the calling process on one CPU: the hooks notice a socket sending
// again per CPU (lib/sock_cache.bpf.h, datagram_senders).
bool stay_on_one_cpu()
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    return ::sched_setaffinity(0, sizeof(one), &one) == 0;
}

// How the socket of received_by_a_remembering_socket comes to remember A.
enum class Remembers {
    connected,   // connected to A, sent to A, then disconnected
    unconnected, // never connected: sent to A twice with sendto()
};

// A UDP socket (in `netns`, on `local`) that takes a datagram from A after
// it sent to A (`how`), while its memory stays, then takes what A, B1
// (another port) and B2 (another address) send. Returns the bits of what
// arrived: 1 A's first, 2 B1's, 4 B2's, 8 A's after; or a negative errno
// (-ENOMEM: an unconnected socket that sent twice has no memory). The
// senders live in the test process, outside every session.
int received_by_a_remembering_socket(const fs::path& cgroup, const std::string& netns, const char* local, int a, int b1,
                                     int b2, Remembers how, bool expect_memory)
{
    int up[2], down[2];
    BOOST_REQUIRE_EQUAL(::pipe2(up, O_CLOEXEC), 0);
    BOOST_REQUIRE_EQUAL(::pipe2(down, O_CLOEXEC), 0);
    auto port_of = [](int fd) {
        sockaddr_in at{};
        socklen_t len = sizeof(at);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&at), &len);
        return at;
    };
    std::thread senders([&] {
        sockaddr_in to{};
        bool ok = ::read(up[0], &to, sizeof(to)) == sizeof(to);
        auto send_to = [&](int fd, const char* what) {
            ::sendto(fd, what, 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
        };
        if (ok)
            send_to(a, "1");
        (void)!::write(down[1], "g", 1);
        char c = 0;
        if (ok && ::read(up[0], &c, 1) == 1) {
            send_to(b1, "x");
            send_to(b2, "y");
            send_to(a, "2");
        }
        (void)!::write(down[1], "g", 1);
    });
    int result = run_probe(cgroup, netns, [&] {
        // Bound to a port of its own choosing: a socket bound to port 0
        // gives its port up when it disconnects.
        sockaddr_in me{};
        me.sin_family = AF_INET;
        ::inet_pton(AF_INET, local, &me.sin_addr);
        int probe = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (probe < 0 || ::bind(probe, reinterpret_cast<sockaddr*>(&me), sizeof(me)) != 0)
            return -errno;
        me = port_of(probe);
        ::close(probe);
        int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in peer = port_of(a);
        auto* to = reinterpret_cast<sockaddr*>(&peer);
        if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&me), sizeof(me)) != 0 || !stay_on_one_cpu())
            return -errno;
        if (how == Remembers::connected && (::connect(s, to, sizeof(peer)) != 0 || ::send(s, "a", 1, 0) != 1))
            return -errno;
        if (how == Remembers::unconnected) {
            if (::sendto(s, "a", 1, 0, to, sizeof(peer)) != 1)
                return -errno;
            if (option_memory(s) != 0)
                return -EEXIST; // a socket that sent once has no memory yet
            if (::sendto(s, "a", 1, 0, to, sizeof(peer)) != 1)
                return -errno;
            if (expect_memory && option_memory(s) == 0)
                return -ENOMEM;
        }
        me = port_of(s);
        char c = 0;
        if (::write(up[1], &me, sizeof(me)) != sizeof(me) || ::read(down[0], &c, 1) != 1)
            return -EPIPE;
        int got = 0;
        auto take = [&](int ms) {
            char buf[8];
            for (pollfd p{s, POLLIN, 0}; poll(&p, 1, ms) > 0;)
                if (::recv(s, buf, sizeof(buf), 0) == 1)
                    got |= buf[0] == '1' ? 1 : buf[0] == 'x' ? 2 : buf[0] == 'y' ? 4 : buf[0] == '2' ? 8 : 0;
        };
        take(300);
        sockaddr unspec{};
        unspec.sa_family = AF_UNSPEC;
        if (how == Remembers::connected && ::connect(s, &unspec, sizeof(unspec)) != 0)
            return -errno;
        if (::write(up[1], "d", 1) != 1 || ::read(down[0], &c, 1) != 1)
            return -EPIPE;
        take(300);
        return got;
    });
    // The probe is gone: the senders read the end of the pipe, not a hang,
    // if it failed before telling its port.
    ::close(up[1]);
    senders.join();
    for (int fd : {up[0], down[0], down[1]})
        ::close(fd);
    return result;
}

} // namespace

BOOST_AUTO_TEST_SUITE(flows)

BOOST_AUTO_TEST_CASE(revoking_a_login_cuts_its_established_tcp_flow)
{
    Sandbox box(kPolicy);
    auto id = box.open_session("s1", "web");
    auto s1 = box.root() / "s1";
    {
        Receiver control(SOCK_STREAM);
        BOOST_TEST(TwoSteps().run(s1, {}, SOCK_STREAM, control.port(), [] {}) == 0);
        BOOST_TEST(control.drain(500) == "ab");
    }
    Receiver rx(SOCK_STREAM);
    BOOST_TEST(TwoSteps().run(s1, {}, SOCK_STREAM, rx.port(), [&] {
        BOOST_REQUIRE(box.maps().set_session_flags(id, AW_SESSION_REVOKED, 0).ok());
    }) == 0);
    BOOST_TEST(rx.drain(500) == "a");
}

BOOST_AUTO_TEST_CASE(revoking_a_user_cuts_their_established_tcp_flow_outside_any_login)
{
    Sandbox box(kPolicy);
    auto outside = box.make_cgroup("outside");
    auto ids = box.maps().active_policy_ids();
    BOOST_REQUIRE(ids.ok());
    BOOST_REQUIRE(box.maps().set_user(kUser, ids->at("web")).ok());
    ProbeIdentity user{kUser, kUser, kUser};
    {
        Receiver control(SOCK_STREAM);
        BOOST_TEST(TwoSteps().run(outside, user, SOCK_STREAM, control.port(), [] {}) == 0);
        BOOST_TEST(control.drain(500) == "ab");
    }
    Receiver rx(SOCK_STREAM);
    BOOST_TEST(TwoSteps().run(outside, user, SOCK_STREAM, rx.port(), [&] {
        BOOST_REQUIRE(box.maps().set_user(kUser, ids->at("web"), AW_USER_REVOKED).ok());
    }) == 0);
    BOOST_TEST(rx.drain(500) == "a");
    BOOST_REQUIRE(box.maps().remove_user(kUser).ok());
}

// A connected UDP socket sends without sendmsg(): only the egress packet
// hook sees its datagrams, and it must see the new policy at once.
BOOST_AUTO_TEST_CASE(a_reload_reaches_a_connected_udp_flow_at_its_next_datagram)
{
    Sandbox box(kPolicy);
    box.open_session("s1", "web");
    auto s1 = box.root() / "s1";
    {
        Receiver control(SOCK_DGRAM);
        BOOST_TEST(TwoSteps().run(s1, {}, SOCK_DGRAM, control.port(), [] {}) == 0);
        BOOST_TEST(control.drain(300) == "ab");
    }
    Receiver rx(SOCK_DGRAM);
    BOOST_TEST(TwoSteps().run(s1, {}, SOCK_DGRAM, rx.port(), [&] { box.install_policies(kNoUdp); }) == 0);
    BOOST_TEST(rx.drain(300) == "a");
}

// What a socket remembers of a datagram flow is that flow: its peer's
// address and port, its local port, its protocol (the key read straight
// from a plain UDP datagram, or from the parser). After a session's socket
// took A's datagrams and disconnected, its memory stays, and datagrams from
// another port and another address are decided, not passed as A's: the
// policy admits only A's, as replies (over a veth: loopback flows are the
// sender's to govern). The same for a socket never connected, which is
// given its memory at its second datagram out (and not at its first).
// Control: outside any session, all arrive.
BOOST_AUTO_TEST_CASE(a_remembered_datagram_flow_is_no_other_flow)
{
    std::string suffix = unique_suffix();
    NetNs session_ns("awf-s-" + suffix), peers("awf-p-" + suffix);
    link_netns(session_ns, "awfs" + suffix, "10.204.0.1/24", peers, "awfp" + suffix, "10.204.0.2/24");
    BOOST_REQUIRE_EQUAL(peers.exec("ip addr add 10.204.0.3/24 dev awfp" + suffix), 0);
    // The senders' sockets, made in the peers' namespace.
    auto bound = [&](const char* address) {
        Fd here(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
        Fd there(::open(("/run/netns/" + peers.name()).c_str(), O_RDONLY | O_CLOEXEC));
        BOOST_REQUIRE(here.valid() && there.valid());
        BOOST_REQUIRE_EQUAL(::setns(there.get(), CLONE_NEWNET), 0);
        Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_in at{};
        at.sin_family = AF_INET;
        ::inet_pton(AF_INET, address, &at.sin_addr);
        int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&at), sizeof(at));
        BOOST_REQUIRE_EQUAL(::setns(here.get(), CLONE_NEWNET), 0);
        BOOST_REQUIRE_EQUAL(rc, 0);
        return fd;
    };
    Fd a = bound("10.204.0.2"), b1 = bound("10.204.0.2"), b2 = bound("10.204.0.3");
    sockaddr_in at{};
    socklen_t len = sizeof(at);
    BOOST_REQUIRE_EQUAL(::getsockname(a.get(), reinterpret_cast<sockaddr*>(&at), &len), 0);
    Sandbox box("[policy.web]\n[policy.web.egress]\ndefault = \"deny\"\nallow = [\"10.204.0.2 udp " +
                std::to_string(ntohs(at.sin_port)) + "\"]\n[policy.web.ingress]\ndefault = \"deny\"\n");
    auto outside = box.make_cgroup("outside");
    box.open_session("s1", "web");
    for (Remembers how : {Remembers::connected, Remembers::unconnected}) {
        BOOST_TEST_CONTEXT((how == Remembers::connected ? "connected, then not" : "never connected"))
        {
            BOOST_TEST(received_by_a_remembering_socket(outside, session_ns.name(), "10.204.0.1", a.get(), b1.get(),
                                                        b2.get(), how, false) == 1 + 2 + 4 + 8);
            BOOST_TEST(received_by_a_remembering_socket(box.root() / "s1", session_ns.name(), "10.204.0.1", a.get(),
                                                        b1.get(), b2.get(), how, true) == 1 + 8);
        }
    }
}

// A container enrolled while its process already holds a socket: the
// socket was outside authwall, and its next datagram is the session's.
BOOST_AUTO_TEST_CASE(a_session_enrolled_around_a_running_socket_holds_its_next_datagram)
{
    Sandbox box(kNoUdp);
    auto c1 = box.make_cgroup("c1");
    {
        Receiver control(SOCK_DGRAM);
        BOOST_TEST(TwoSteps().run(c1, {}, SOCK_DGRAM, control.port(), [] {}) == 0);
        BOOST_TEST(control.drain(300) == "ab");
    }
    Receiver rx(SOCK_DGRAM);
    BOOST_TEST(TwoSteps().run(c1, {}, SOCK_DGRAM, rx.port(), [&] { box.open_session("c1", "web"); }) == 0);
    BOOST_TEST(rx.drain(300) == "a");
}

// connect() decisions are remembered per policy and generation
// (docs/ARCHITECTURE.md, "Rules and their lookup"): a destination connected
// to before is decided anew after a reload and after a revocation. Control:
// a reload that keeps the rule leaves the same connect allowed.
BOOST_AUTO_TEST_CASE(a_remembered_connect_decision_gives_way_to_a_reload_and_a_revocation)
{
    Sandbox box(kPolicy);
    auto id = box.open_session("s1", "web");
    auto s1 = box.root() / "s1";
    auto connect = [&](int times) {
        return run_probe(s1, "new", [times] { return connect_to_own_listener(8080, times); });
    };
    BOOST_TEST(connect(3) == 0);
    box.install_policies(kPolicy);
    BOOST_TEST(connect(1) == 0); // control: the same rules in a new generation
    box.install_policies(kNoTcp);
    BOOST_TEST(connect(1) == EPERM);
    box.install_policies(kPolicy);
    BOOST_TEST(connect(3) == 0);

    // Revocation: a socket made before it (a revoked login can make no
    // new one) connects to where its session connected a moment ago.
    int ready[2], go[2];
    BOOST_REQUIRE_EQUAL(::pipe2(ready, O_CLOEXEC), 0);
    BOOST_REQUIRE_EQUAL(::pipe2(go, O_CLOEXEC), 0);
    int result = -1;
    std::thread probe([&] {
        result = run_probe(s1, "new", [&] {
            int l = tcp_listen("127.0.0.1", 8080);
            if (l < 0)
                return 10000 - l;
            int rc = tcp_connect("127.0.0.1", 8080);
            int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (rc != 0 || s < 0)
                return rc ? rc : errno;
            char c = 0;
            if (::write(ready[1], "r", 1) != 1 || ::read(go[0], &c, 1) != 1)
                return EPIPE;
            sockaddr_in to{};
            to.sin_family = AF_INET;
            to.sin_port = htons(8080);
            to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return ::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0 ? 0 : errno;
        });
    });
    char c = 0;
    bool probe_ready = ::read(ready[0], &c, 1) == 1;
    if (probe_ready)
        BOOST_CHECK(box.maps().set_session_flags(id, AW_SESSION_REVOKED, 0).ok());
    (void)!::write(go[1], "g", 1);
    probe.join();
    for (int fd : {ready[0], ready[1], go[0], go[1]})
        ::close(fd);
    BOOST_TEST(probe_ready);
    BOOST_TEST(result == EPERM);
}

// A process outside authwall has its verdict remembered; once its cgroup is
// enrolled, its next connect() is the session's. Control: the same connects
// before the enrollment pass.
BOOST_AUTO_TEST_CASE(a_process_remembered_outside_is_held_at_its_next_connect_once_enrolled)
{
    Sandbox box(kNoTcp);
    auto c1 = box.make_cgroup("c1");
    auto connect = [&] { return run_probe(c1, "new", [] { return connect_to_own_listener(8080, 3); }); };
    BOOST_TEST(connect() == 0);
    BOOST_TEST(connect() == 0);
    box.open_session("c1", "web");
    BOOST_TEST(connect() == EPERM);
}

// What one process was allowed is remembered for its cgroup and uid only:
// another session, or a confined user in the same session, asking the same
// at the same generation is judged by its own policy. Controls: the first
// process again, and the same connect from a session whose policy allows it.
BOOST_AUTO_TEST_CASE(a_remembered_connect_decision_is_not_another_process_s)
{
    Sandbox box(std::string(kPolicy) + R"(
[policy.closed]
[policy.closed.egress]
default = "deny"
allow = ["127.0.0.1 udp"]
)");
    auto ids = box.maps().active_policy_ids();
    BOOST_REQUIRE(ids.ok());
    BOOST_REQUIRE(box.maps().set_user(kUser, ids->at("closed")).ok()); // before: no change comes between the probes
    box.open_session("s1", "web");
    box.open_session("s2", "closed");
    auto s1 = box.root() / "s1", s2 = box.root() / "s2";
    auto connect_from = [](const fs::path& cgroup, const ProbeIdentity& who) {
        return run_probe_as(
            cgroup, who, [] { return connect_to_own_listener(8080, 2); }, "new");
    };
    BOOST_TEST(connect_from(s1, {}) == 0);
    BOOST_TEST(connect_from(s2, {}) == EPERM);
    BOOST_TEST(connect_from(s1, {kUser, kUser, kUser}) == EPERM);
    BOOST_TEST(connect_from(s1, {}) == 0);
    BOOST_REQUIRE(box.maps().remove_user(kUser).ok());
}

// A session's sockets count their established traffic in their own memory
// and add it to the session's counters in batches (docs/ARCHITECTURE.md,
// "Per-socket memory"): the last batch when the socket closes. Fewer
// datagrams than a batch, on a connected socket: all of them are in the
// session's counters once the socket is closed.
BOOST_AUTO_TEST_CASE(a_connected_socket_counts_every_datagram_by_the_time_it_is_closed)
{
    Sandbox box(kPolicy);
    auto id = box.open_session("s1", "web");
    auto s1 = box.root() / "s1";
    Receiver rx(SOCK_DGRAM);
    constexpr int kDatagrams = 10;
    constexpr size_t kPayload = 100;
    uint16_t port = rx.port();
    BOOST_REQUIRE_EQUAL(run_probe_as(s1, {},
                                     [port] {
                                         sockaddr_in to{};
                                         to.sin_family = AF_INET;
                                         to.sin_port = htons(port);
                                         to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                                         int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                                         if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0)
                                             return errno;
                                         char payload[kPayload] = {};
                                         for (int i = 0; i < kDatagrams; ++i)
                                             if (::send(s, payload, sizeof(payload), 0) != sizeof(payload))
                                                 return errno;
                                         ::close(s);
                                         return 0;
                                     }),
                        0);
    BOOST_TEST(rx.drain(300).size() == kDatagrams * kPayload);
    auto st = box.maps().session_stats(id);
    BOOST_REQUIRE(st.ok());
    // Each datagram is payload + 8 (UDP) + 20 (IPv4) bytes on the wire.
    BOOST_TEST(st->packets_out == static_cast<uint64_t>(kDatagrams));
    BOOST_TEST(st->bytes_out == kDatagrams * (kPayload + 28));
}

// The same for a socket that is never connected (sendto()), which is given
// its memory at its second datagram: the first is counted on the full
// path, the others in the socket's memory.
BOOST_AUTO_TEST_CASE(an_unconnected_socket_counts_every_datagram_by_the_time_it_is_closed)
{
    Sandbox box(kPolicy);
    auto id = box.open_session("s1", "web");
    auto s1 = box.root() / "s1";
    Receiver rx(SOCK_DGRAM);
    constexpr int kDatagrams = 10;
    constexpr size_t kPayload = 100;
    uint16_t port = rx.port();
    BOOST_REQUIRE_EQUAL(run_probe_as(s1, {},
                                     [port] {
                                         sockaddr_in to{};
                                         to.sin_family = AF_INET;
                                         to.sin_port = htons(port);
                                         to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                                         auto* at = reinterpret_cast<sockaddr*>(&to);
                                         int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                                         if (s < 0 || !stay_on_one_cpu())
                                             return errno;
                                         char payload[kPayload] = {};
                                         for (int i = 0; i < kDatagrams; ++i)
                                             if (::sendto(s, payload, sizeof(payload), 0, at, sizeof(to)) !=
                                                 sizeof(payload))
                                                 return errno;
                                         if (option_memory(s) == 0)
                                             return ENOMEM; // counted on the full path only: not this test
                                         ::close(s);
                                         return 0;
                                     }),
                        0);
    BOOST_TEST(rx.drain(300).size() == kDatagrams * kPayload);
    auto st = box.maps().session_stats(id);
    BOOST_REQUIRE(st.ok());
    BOOST_TEST(st->packets_out == static_cast<uint64_t>(kDatagrams));
    BOOST_TEST(st->bytes_out == kDatagrams * (kPayload + 28));
}

// The same for TCP, over more packets than a batch: every byte sent is in
// the session's counters once the connection is closed, with at least the
// 40 bytes of IPv4 and TCP headers of every packet counted.
BOOST_AUTO_TEST_CASE(a_tcp_connection_counts_every_byte_by_the_time_it_is_closed)
{
    Sandbox box(kPolicy);
    auto id = box.open_session("s1", "web");
    auto s1 = box.root() / "s1";
    Receiver rx(SOCK_STREAM);
    constexpr int kWrites = 200;
    constexpr size_t kPayload = 1000;
    uint16_t port = rx.port();
    std::string got;
    std::thread reader([&] { got = rx.drain(1000); });
    int rc = run_probe_as(s1, {}, [port] {
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0)
            return errno;
        int one = 1;
        ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char payload[kPayload] = {};
        for (int i = 0; i < kWrites; ++i) {
            if (::send(s, payload, sizeof(payload), MSG_NOSIGNAL) != sizeof(payload))
                return errno;
            usleep(100); // separate segments, many more than a batch
        }
        ::close(s);
        return 0;
    });
    reader.join();
    BOOST_REQUIRE_EQUAL(rc, 0);
    BOOST_REQUIRE_EQUAL(got.size(), kWrites * kPayload);
    usleep(200 * 1000); // the closing handshake
    auto st = box.maps().session_stats(id);
    BOOST_REQUIRE(st.ok());
    BOOST_TEST_MESSAGE("out " << st->packets_out << " packets, " << st->bytes_out << " bytes; in " << st->packets_in
                              << " packets, " << st->bytes_in << " bytes");
    BOOST_TEST(st->packets_out > 64u);
    BOOST_TEST(st->bytes_out >= kWrites * kPayload + 40 * st->packets_out);
    BOOST_TEST(st->bytes_out <= kWrites * kPayload + 80 * st->packets_out);
    BOOST_TEST(st->packets_in > 0u);
    BOOST_TEST(st->bytes_in >= 40 * st->packets_in);
    BOOST_TEST(st->bytes_in <= 80 * st->packets_in);
}

BOOST_AUTO_TEST_SUITE_END()
