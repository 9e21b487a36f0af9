// SPDX-License-Identifier: Apache-2.0
// Ingress pinned to the login's address, across two network namespaces
// joined by a veth pair: server (the session's listener) and client (two
// addresses: the session's rhost and another).
#include <boost/test/unit_test.hpp>

#include "core/dataplane/events.h"
#include "tests/support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <sched.h>

#include <set>
#include <string>

using namespace authwall;
using namespace authwall::test;

namespace {

const char* kPolicy = R"(
[policy.bastion]
[policy.bastion.ingress]
from_rhost_only = true
)";

// TCP connect over IPv6 from a chosen source address, the SYN carrying an
// extension header (hop-by-hop or destination options, one PadN option);
// 0 or errno.
int connect6_with_option_header(const char* source, const char* target, uint16_t port, int header)
{
    int s = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const unsigned char padn[8] = {0 /* next header: set by the kernel */, 0 /* 8 bytes */, 1, 4, 0, 0, 0, 0};
    if (header != 0 && ::setsockopt(s, IPPROTO_IPV6, header, padn, sizeof(padn)) != 0)
        return errno;
    sockaddr_in6 src{};
    src.sin6_family = AF_INET6;
    inet_pton(AF_INET6, source, &src.sin6_addr);
    if (::bind(s, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0)
        return errno;
    sockaddr_in6 dst{};
    dst.sin6_family = AF_INET6;
    dst.sin6_port = htons(port);
    inet_pton(AF_INET6, target, &dst.sin6_addr);
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
    Listeners listener(s1, server.name(), "0.0.0.0", {2022});

    std::vector<DecisionEvent> events;
    auto reader = EventReader::open(box.pin_dir(), [&](const DecisionEvent& e) { events.push_back(e); });
    BOOST_REQUIRE(reader.ok());

    int from_rhost = run_probe("", client.name(), [] { return tcp_connect_from("10.201.0.2", "10.201.0.1", 2022); });
    int from_other = run_probe("", client.name(), [] { return tcp_connect_from("10.201.0.3", "10.201.0.1", 2022); });
    // Loopback flows start on this host: the pin to the rhost does not apply.
    int over_loopback = run_probe(s1, server.name(), [] { return tcp_connect("127.0.0.1", 2022); });
    BOOST_REQUIRE(reader->poll(100).ok());
    // Control: with the session gone, the other address gets in too.
    auto id = box.id_of(s1);
    BOOST_REQUIRE(box.maps().remove_session(id).ok());
    int after_close = run_probe("", client.name(), [] { return tcp_connect_from("10.201.0.3", "10.201.0.1", 2022); });

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

// An IPv6 option header in front of the TCP header must not disguise an
// inbound SYN from another address as a datagram reply.
BOOST_AUTO_TEST_CASE(ipv6_extension_headers_do_not_hide_a_syn)
{
    Sandbox box(kPolicy);
    std::string suffix = unique_suffix();
    NetNs server("awt-srv6-" + suffix);
    NetNs client("awt-cli6-" + suffix);
    std::string veth_s = "a6s" + suffix, veth_c = "a6c" + suffix;
    BOOST_REQUIRE_EQUAL(sh("ip link add " + veth_s + " netns " + server.name() + " type veth peer name " + veth_c +
                           " netns " + client.name()),
                        0);
    BOOST_REQUIRE_EQUAL(
        server.exec("ip -6 addr add fd00:201::1/64 dev " + veth_s + " nodad && ip link set " + veth_s + " up"), 0);
    BOOST_REQUIRE_EQUAL(client.exec("ip -6 addr add fd00:201::2/64 dev " + veth_c + " nodad && ip -6 addr add " +
                                    "fd00:201::3/64 dev " + veth_c + " nodad && ip link set " + veth_c + " up"),
                        0);

    box.open_session("s1", "bastion", "fd00:201::2");
    auto s1 = box.root() / "s1";
    Listeners listener(s1, server.name(), "::", {2022});

    std::vector<DecisionEvent> events;
    auto reader = EventReader::open(box.pin_dir(), [&](const DecisionEvent& e) { events.push_back(e); });
    BOOST_REQUIRE(reader.ok());

    auto probe = [&](const char* source, int header) {
        return run_probe("", client.name(),
                         [=] { return connect6_with_option_header(source, "fd00:201::1", 2022, header); });
    };
    int rhost_plain = probe("fd00:201::2", 0);
    int rhost_hopopts = probe("fd00:201::2", IPV6_HOPOPTS);
    int other_plain = probe("fd00:201::3", 0);
    int other_hopopts = probe("fd00:201::3", IPV6_HOPOPTS);
    int other_dstopts = probe("fd00:201::3", IPV6_DSTOPTS);
    BOOST_REQUIRE(reader->poll(100).ok());
    // Control: without the session the option headers get through.
    BOOST_REQUIRE(box.maps().remove_session(box.id_of(s1)).ok());
    int after_close = probe("fd00:201::3", IPV6_DSTOPTS);

    BOOST_TEST(rhost_plain == 0);
    BOOST_TEST(rhost_hopopts == 0); // the headers are walked, not refused
    BOOST_TEST(other_plain == ETIMEDOUT);
    BOOST_TEST(other_hopopts == ETIMEDOUT);
    BOOST_TEST(other_dstopts == ETIMEDOUT);
    BOOST_TEST(after_close == 0);
    BOOST_REQUIRE(!events.empty());
    for (const auto& e : events) {
        BOOST_TEST(e.reason == static_cast<unsigned>(AW_REASON_NOT_RHOST));
        BOOST_TEST(e.address.str() == "fd00:201::3");
        BOOST_TEST(e.port == 2022);
        BOOST_TEST(e.proto == static_cast<unsigned>(IPPROTO_TCP));
    }
}

// "$rhost tcp 2022" in ingress lets the login's own address in on that
// port only, under a default of deny; a $rhost deny wins over a rule of
// the whole subnet. The session logged in from 10.201.0.2; 10.201.0.3 is the
// other host. The control: with the session gone, each refused SYN gets in.
BOOST_AUTO_TEST_CASE(rhost_rules_let_the_login_address_in_on_their_ports)
{
    Sandbox box(R"(
[policy.back]
[policy.back.ingress]
default = "deny"
allow = ["$rhost tcp 2022", "10.201.0.0/24 tcp 2024"]
deny = ["$rhost tcp 2024"]
)");
    std::string suffix = unique_suffix();
    NetNs server("awt-srvr-" + suffix);
    NetNs client("awt-clir-" + suffix);
    std::string veth_s = "ars" + suffix, veth_c = "arc" + suffix;
    BOOST_REQUIRE_EQUAL(sh("ip link add " + veth_s + " netns " + server.name() + " type veth peer name " + veth_c +
                           " netns " + client.name()),
                        0);
    BOOST_REQUIRE_EQUAL(server.exec("ip addr add 10.201.0.1/24 dev " + veth_s + " && ip link set " + veth_s + " up"),
                        0);
    BOOST_REQUIRE_EQUAL(client.exec("ip addr add 10.201.0.2/24 dev " + veth_c + " && ip addr add 10.201.0.3/24 dev " +
                                    veth_c + " && ip link set " + veth_c + " up"),
                        0);

    box.open_session("s1", "back", "10.201.0.2");
    auto s1 = box.root() / "s1";
    Listeners listener(s1, server.name(), "0.0.0.0", {2022, 2023, 2024});

    std::vector<DecisionEvent> events;
    auto reader = EventReader::open(box.pin_dir(), [&](const DecisionEvent& e) { events.push_back(e); });
    BOOST_REQUIRE(reader.ok());

    auto probe = [&](const char* source, uint16_t port) {
        return run_probe("", client.name(), [=] { return tcp_connect_from(source, "10.201.0.1", port); });
    };
    int rhost_allowed = probe("10.201.0.2", 2022);
    int other_allowed_port = probe("10.201.0.3", 2022);
    int rhost_other_port = probe("10.201.0.2", 2023);
    int rhost_denied = probe("10.201.0.2", 2024);
    int other_subnet = probe("10.201.0.3", 2024);
    BOOST_REQUIRE(reader->poll(100).ok());
    BOOST_REQUIRE(box.maps().remove_session(box.id_of(s1)).ok());
    int after_close_other = probe("10.201.0.3", 2022);
    int after_close_denied = probe("10.201.0.2", 2024);

    BOOST_TEST(rhost_allowed == 0);
    BOOST_TEST(other_allowed_port == ETIMEDOUT); // the SYN is dropped at the listener's ingress
    BOOST_TEST(rhost_other_port == ETIMEDOUT);
    BOOST_TEST(rhost_denied == ETIMEDOUT);
    BOOST_TEST(other_subnet == 0);
    BOOST_TEST(after_close_other == 0);
    BOOST_TEST(after_close_denied == 0);
    // Each refusal says why: the default for the other host and the other
    // port, the $rhost deny (rule 3) for the login's address on 2024.
    std::set<std::string> seen;
    for (const auto& e : events) {
        BOOST_TEST(e.hook == static_cast<unsigned>(AW_HOOK_INGRESS));
        seen.insert(e.address.str() + " " + std::to_string(e.port) + " " + std::to_string(e.reason) + " " +
                    std::to_string(e.rule));
    }
    std::string by_default = std::to_string(AW_REASON_DEFAULT) + " 0";
    std::string by_rule = std::to_string(AW_REASON_RULE) + " 3";
    BOOST_TEST(seen == (std::set<std::string>{"10.201.0.3 2022 " + by_default, "10.201.0.2 2023 " + by_default,
                                              "10.201.0.2 2024 " + by_rule}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
