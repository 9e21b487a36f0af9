// Ingress pinned to the login's address, across two network namespaces
// joined by a veth pair: server (the session's listener) and client (two
// addresses: the session's rhost and another).
#include <boost/test/unit_test.hpp>

#include "core/events.h"
#include "tests/support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <sched.h>

using namespace authwall;
using namespace authwall::test;

namespace {

const char* kPolicy = R"(
[policy.bastion]
[policy.bastion.ingress]
from_rhost_only = true
)";

// TCP connect from a chosen source address; 0 or errno.
int connect_from(const char* source, const char* target, uint16_t port)
{
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, source, &src.sin_addr);
    if (::bind(s, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0)
        return errno;
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    inet_pton(AF_INET, target, &dst.sin_addr);
    int err = ::connect(s, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
        pollfd p{s, POLLOUT, 0};
        if (poll(&p, 1, 1500) <= 0) {
            err = ETIMEDOUT;
        } else {
            socklen_t len = sizeof(err);
            getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
        }
    }
    ::close(s);
    return err;
}

} // namespace

BOOST_AUTO_TEST_SUITE(ingress)

BOOST_AUTO_TEST_CASE(only_the_login_address_reaches_the_session_listener)
{
    Sandbox box(kPolicy);
    std::string suffix = unique_suffix();
    NetNs server("awt-srv-" + suffix);
    NetNs client("awt-cli-" + suffix);
    std::string veth_s = "aws" + suffix, veth_c = "awc" + suffix;
    BOOST_REQUIRE_EQUAL(sh("ip link add " + veth_s + " netns " + server.name() + " type veth peer name " + veth_c +
                           " netns " + client.name()),
                        0);
    BOOST_REQUIRE_EQUAL(server.exec("ip addr add 10.201.0.1/24 dev " + veth_s + " && ip link set " + veth_s + " up"),
                        0);
    BOOST_REQUIRE_EQUAL(client.exec("ip addr add 10.201.0.2/24 dev " + veth_c + " && ip addr add 10.201.0.3/24 dev " +
                                    veth_c + " && ip link set " + veth_c + " up"),
                        0);

    box.open_session("s1", "bastion", "10.201.0.2");
    auto s1 = box.root() / "s1";

    // The session's listener lives in the server namespace until killed.
    int ready[2];
    BOOST_REQUIRE_EQUAL(pipe(ready), 0);
    pid_t listener = fork();
    BOOST_REQUIRE_GE(listener, 0);
    if (listener == 0) {
        ::close(ready[0]);
        if (!cgroup_move_pid(s1, getpid()).ok())
            _exit(2);
        int fd = ::open(("/run/netns/" + server.name()).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
            _exit(3);
        int l = tcp_listen("0.0.0.0", 2022);
        char ok = l >= 0 ? '1' : '0';
        (void)!::write(ready[1], &ok, 1);
        while (true)
            pause();
    }
    ::close(ready[1]);
    char ok = 0;
    BOOST_REQUIRE_EQUAL(::read(ready[0], &ok, 1), 1);
    ::close(ready[0]);
    BOOST_REQUIRE_EQUAL(ok, '1');

    std::vector<DenialEvent> events;
    auto reader = EventReader::open(box.pin_dir(), [&](const DenialEvent& e) { events.push_back(e); });
    BOOST_REQUIRE(reader.ok());

    int from_rhost = run_probe("", client.name(), [] { return connect_from("10.201.0.2", "10.201.0.1", 2022); });
    int from_other = run_probe("", client.name(), [] { return connect_from("10.201.0.3", "10.201.0.1", 2022); });
    // Loopback flows start on this host: the pin to the rhost does not apply.
    int over_loopback = run_probe(s1, server.name(), [] { return tcp_connect("127.0.0.1", 2022); });
    BOOST_REQUIRE(reader->poll(100).ok());
    // Control: with the session gone, the other address gets in too.
    auto id = box.id_of(s1);
    BOOST_REQUIRE(box.maps().remove_session(id).ok());
    int after_close = run_probe("", client.name(), [] { return connect_from("10.201.0.3", "10.201.0.1", 2022); });

    kill(listener, SIGKILL);
    waitpid(listener, nullptr, 0);

    BOOST_TEST(from_rhost == 0);
    BOOST_TEST(from_other == ETIMEDOUT); // the SYN is dropped at the listener's ingress
    BOOST_TEST(over_loopback == 0);
    BOOST_TEST(after_close == 0);
    BOOST_REQUIRE(!events.empty()); // the SYN and its retransmissions
    for (const auto& e : events) {
        BOOST_TEST(e.hook == static_cast<unsigned>(AW_HOOK_INGRESS));
        BOOST_TEST(e.reason == static_cast<unsigned>(AW_REASON_NOT_RHOST));
        BOOST_TEST(e.address.str() == "10.201.0.3");
        BOOST_TEST(e.port == 2022); // the local port reached, not the peer's
    }
}

BOOST_AUTO_TEST_SUITE_END()
