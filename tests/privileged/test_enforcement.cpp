// SPDX-License-Identifier: Apache-2.0
// The data plane against the real kernel: what a process in a session
// cgroup can and cannot do, and that everything else is untouched.
#include <boost/test/unit_test.hpp>

#include "core/dataplane/events.h"
#include "core/base/fd.h"
#include "tests/support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;

namespace {

const char* kPolicy = R"(
[policy.web]
[policy.web.egress]
default = "deny"
allow = ["127.0.0.1 tcp", "::1 tcp", "127.0.0.1 udp 53", "::1 udp 53"]
deny = ["127.0.0.1 tcp 2222"]

[policy.web.bind]
deny = ["tcp 1-1023"]

[policy.web.sockets]
deny_families = ["packet", "raw"]
)";

} // namespace

BOOST_AUTO_TEST_SUITE(enforcement)

BOOST_AUTO_TEST_CASE(connect4_denied_gets_eperm_allowed_connects)
{
    Sandbox box(kPolicy);
    box.open_session("s1", "web");
    auto s1 = box.root() / "s1";

    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 8080); }) == 0);
    BOOST_TEST(run_probe(s1, "new", [] { return tcp_connect("127.0.0.2", 8080); }) == EPERM);
    // Explicit deny beats the allow of 127.0.0.1 tcp.
    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 2222); }) == EPERM);
}

BOOST_AUTO_TEST_CASE(connect6_denied_gets_eperm_allowed_connects)
{
    Sandbox box(kPolicy);
    box.open_session("s1", "web");
    auto s1 = box.root() / "s1";

    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("::1", "::1", 8080); }) == 0);
    BOOST_TEST(run_probe(s1, "new", [] { return tcp_connect("2001:db8::1", 8080); }) == EPERM);
    // An IPv6 socket aimed at a v4-mapped address meets the IPv4 rules.
    BOOST_TEST(run_probe(s1, "new", [] { return tcp_connect("::ffff:127.0.0.2", 8080); }) == EPERM);
}

// A port range is stored as aligned blocks of 2^k ports (bpf/authwall_abi.h):
// connects inside the range pass at both edges and in between, one port
// below it is refused, and a port or a block denied inside it is refused.
// The control: from a cgroup that is no session, the refused connects reach
// their listeners.
BOOST_AUTO_TEST_CASE(port_ranges_allow_inside_refuse_outside_and_keep_their_denies)
{
    Sandbox box(R"(
[policy.ranges.egress]
default = "deny"
allow = ["127.0.0.1 tcp 1024-65535", "::1 tcp 1024-65535"]
deny = ["127.0.0.1 tcp 20000", "127.0.0.1 tcp 24576-24591"]
)");
    box.open_session("s1", "ranges");
    auto s1 = box.root() / "s1";
    auto control = box.make_cgroup("not-a-session");

    for (uint16_t port : {1024, 1025, 19999, 20001, 24575, 24592, 65534, 65535})
        BOOST_TEST(run_probe(s1, "new", [port] { return connect_with_listener("127.0.0.1", "127.0.0.1", port); }) == 0,
                   "port " << port);
    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("::1", "::1", 65535); }) == 0);
    for (uint16_t port : {1023, 1, 22, 20000, 24576, 24583, 24591}) {
        BOOST_TEST(run_probe(s1, "new", [port] { return connect_with_listener("127.0.0.1", "127.0.0.1", port); }) ==
                       EPERM,
                   "port " << port);
        BOOST_TEST(
            run_probe(control, "new", [port] { return connect_with_listener("127.0.0.1", "127.0.0.1", port); }) == 0,
            "control, port " << port);
    }
    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("::1", "::1", 1023); }) == EPERM);
}

// Named sets, port lists and extends compile to what the kernel enforces:
// a set-based allow opens exactly its ports on its addresses, a base's deny
// holds in the child against the child's own allow of the block around it,
// and the base's default of deny holds. The control: from a cgroup that is
// no session, every refused connect reaches its listener.
BOOST_AUTO_TEST_CASE(set_and_extends_rules_are_enforced)
{
    Sandbox box(R"(
[sets]
local = ["127.0.0.1", "::1"]
web = "tcp {8080,8443,9000-9009}"

[policy.baseline]
abstract = true
[policy.baseline.egress]
default = "deny"
deny = ["127.0.0.1 tcp 9005"]

[policy.child]
extends = ["baseline"]
[policy.child.egress]
allow = ["@local @web"]
)");
    box.open_session("s1", "child");
    auto s1 = box.root() / "s1";
    auto control = box.make_cgroup("not-a-session");

    for (uint16_t port : {8080, 8443, 9000, 9009})
        BOOST_TEST(run_probe(s1, "new", [port] { return connect_with_listener("127.0.0.1", "127.0.0.1", port); }) == 0,
                   "port " << port);
    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("::1", "::1", 8443); }) == 0);
    // Outside the list: the base's default; port 9005: the base's deny.
    for (uint16_t port : {8081, 9010, 9005}) {
        BOOST_TEST(run_probe(s1, "new", [port] { return connect_with_listener("127.0.0.1", "127.0.0.1", port); }) ==
                       EPERM,
                   "port " << port);
        BOOST_TEST(
            run_probe(control, "new", [port] { return connect_with_listener("127.0.0.1", "127.0.0.1", port); }) == 0,
            "control, port " << port);
    }
    // An address outside the set, on a port of the set.
    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("127.0.0.2", "127.0.0.2", 8080); }) == EPERM);
    BOOST_TEST(run_probe(control, "new", [] { return connect_with_listener("127.0.0.2", "127.0.0.2", 8080); }) == 0);
}

// "$rhost tcp 8080" opens that port on the login's own address only: the
// session logged in from 127.0.0.5 reaches 127.0.0.5:8080, not 127.0.0.6
// nor another port; a session of the same policy without an rhost reaches
// none. The control: from a cgroup that is no session, each refused connect
// reaches its listener.
BOOST_AUTO_TEST_CASE(rhost_rules_open_the_login_address_only)
{
    Sandbox box(R"(
[policy.back.egress]
default = "deny"
allow = ["$rhost tcp {8080,8443}"]
)");
    box.open_session("s1", "back", std::string("127.0.0.5"));
    box.open_session("s2", "back");
    auto s1 = box.root() / "s1";
    auto s2 = box.root() / "s2";
    auto control = box.make_cgroup("not-a-session");

    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("127.0.0.5", "127.0.0.5", 8080); }) == 0);
    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("127.0.0.5", "127.0.0.5", 8443); }) == 0);
    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("127.0.0.6", "127.0.0.6", 8080); }) == EPERM);
    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("127.0.0.5", "127.0.0.5", 8081); }) == EPERM);
    BOOST_TEST(run_probe(s2, "new", [] { return connect_with_listener("127.0.0.5", "127.0.0.5", 8080); }) == EPERM);
    BOOST_TEST(run_probe(control, "new", [] { return connect_with_listener("127.0.0.6", "127.0.0.6", 8080); }) == 0);
    BOOST_TEST(run_probe(control, "new", [] { return connect_with_listener("127.0.0.5", "127.0.0.5", 8081); }) == 0);
}

BOOST_AUTO_TEST_CASE(process_outside_any_session_is_untouched)
{
    Sandbox box(kPolicy);
    box.open_session("s1", "web");
    auto other = box.make_cgroup("not-a-session");

    // Programs run for this cgroup too, but it is no session: the denied
    // destination gets the network's own answer, not EPERM.
    BOOST_TEST(run_probe(other, "new", [] { return tcp_connect("127.0.0.2", 8080); }) == ECONNREFUSED);
    BOOST_TEST(run_probe(other, "new", [] { return tcp_bind("127.0.0.1", 80); }) == 0);
    BOOST_TEST(run_probe(other, "new", [] { return open_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP); }) == 0);
}

BOOST_AUTO_TEST_CASE(udp_sendmsg_to_denied_destination_fails)
{
    Sandbox box(kPolicy);
    box.open_session("s1", "web");
    auto s1 = box.root() / "s1";

    BOOST_TEST(run_probe(s1, "new", [] { return udp_send("127.0.0.1", 53); }) == 0);
    BOOST_TEST(run_probe(s1, "new", [] { return udp_send("127.0.0.1", 54); }) == EPERM);
    BOOST_TEST(run_probe(s1, "new", [] { return udp_send("::1", 53); }) == 0);
    BOOST_TEST(run_probe(s1, "new", [] { return udp_send("::1", 54); }) == EPERM);
}

BOOST_AUTO_TEST_CASE(bind_to_denied_port_fails)
{
    Sandbox box(kPolicy);
    box.open_session("s1", "web");
    auto s1 = box.root() / "s1";

    BOOST_TEST(run_probe(s1, "new", [] { return tcp_bind("127.0.0.1", 80); }) == EPERM);
    BOOST_TEST(run_probe(s1, "new", [] { return tcp_bind("::1", 443); }) == EPERM);
    BOOST_TEST(run_probe(s1, "new", [] { return tcp_bind("127.0.0.1", 8080); }) == 0);
}

BOOST_AUTO_TEST_CASE(denied_socket_families_fail)
{
    Sandbox box(kPolicy);
    box.open_session("s1", "web");
    auto s1 = box.root() / "s1";

    BOOST_TEST(run_probe(s1, "new", [] { return open_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP); }) == EPERM);
    BOOST_TEST(run_probe(s1, "new", [] { return open_socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6); }) == EPERM);
    BOOST_TEST(run_probe(s1, "new", [] { return open_socket(AF_INET, SOCK_STREAM, 0); }) == 0);

    int packet = run_probe(s1, "new", [] { return open_socket(AF_PACKET, SOCK_RAW, htons(0x0003)); });
    if (box.report().lsm_socket_create) {
        BOOST_TEST(packet == EPERM);
    } else {
        // Without BPF LSM the loader must say so rather than pretend.
        BOOST_TEST(packet == 0);
        BOOST_TEST(!box.report().lsm_unavailable.empty());
        BOOST_TEST_MESSAGE("AF_PACKET not refusable on this kernel: " << box.report().lsm_unavailable);
    }
}

// A raw socket writing TCP segments has no connect() to be judged at: the
// packet hook judges each segment by the egress rules.
BOOST_AUTO_TEST_CASE(raw_tcp_segments_meet_the_egress_rules)
{
    Sandbox box(R"(
[policy.rawok]
[policy.rawok.egress]
default = "deny"
allow = ["127.0.0.1 tcp 9"]
)");
    box.open_session("s1", "rawok");
    auto s1 = box.root() / "s1";
    auto other = box.make_cgroup("not-a-session");

    auto send_syn = [](const char* target, uint16_t port) {
        int s = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
        if (s < 0)
            return errno;
        unsigned char tcp[20] = {};
        tcp[0] = 0x9c; // source port 40000
        tcp[1] = 0x40;
        tcp[2] = static_cast<unsigned char>(port >> 8);
        tcp[3] = static_cast<unsigned char>(port & 0xff);
        tcp[12] = 5 << 4; // data offset: 5 words
        tcp[13] = 0x02;   // SYN
        sockaddr_in dst{};
        dst.sin_family = AF_INET;
        inet_pton(AF_INET, target, &dst.sin_addr);
        ssize_t n = ::sendto(s, tcp, sizeof(tcp), 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst));
        int err = n == static_cast<ssize_t>(sizeof(tcp)) ? 0 : errno;
        ::close(s);
        return err;
    };
    std::vector<DecisionEvent> events;
    auto reader = EventReader::open(box.pin_dir(), [&](const DecisionEvent& e) { events.push_back(e); });
    BOOST_REQUIRE(reader.ok());

    BOOST_TEST(run_probe(s1, "new", [&] { return send_syn("127.0.0.1", 9); }) == 0);
    BOOST_TEST(run_probe(s1, "new", [&] { return send_syn("127.0.0.1", 22); }) == EPERM);
    BOOST_TEST(run_probe(s1, "new", [&] { return send_syn("127.0.0.2", 9); }) == EPERM);
    BOOST_TEST(run_probe(other, "new", [&] { return send_syn("127.0.0.2", 9); }) == 0);
    BOOST_REQUIRE(reader->poll(100).ok());
    BOOST_REQUIRE_EQUAL(events.size(), 2u);
    BOOST_TEST(events[0].hook == static_cast<unsigned>(AW_HOOK_EGRESS));
    BOOST_TEST(events[0].proto == static_cast<unsigned>(IPPROTO_TCP));
    BOOST_TEST(events[0].port == 22);
    BOOST_TEST(events[1].address.str() == "127.0.0.2");
}

BOOST_AUTO_TEST_CASE(child_cgroup_inherits_the_session_policy)
{
    Sandbox box(kPolicy);
    box.open_session("s1", "web");
    auto nested = box.make_cgroup("s1/user.slice/app/deeper");

    BOOST_TEST(run_probe(nested, "new", [] { return tcp_connect("127.0.0.2", 8080); }) == EPERM);
    BOOST_TEST(run_probe(nested, "new", [] { return tcp_bind("127.0.0.1", 22); }) == EPERM);
    BOOST_TEST(run_probe(nested, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 8080); }) == 0);
}

// Sessions opened at the same moment at different depths each mark their
// level in one shared word: none may lose another's (a lost level hides every
// session at that depth from the programs).
BOOST_AUTO_TEST_CASE(sessions_opened_at_once_at_different_depths_are_all_enforced)
{
    Sandbox box(kPolicy);
    constexpr int kDepths = 8;
    std::vector<fs::path> cgroups;
    std::string path = "d";
    for (int i = 0; i < kDepths; ++i, path += "/d")
        cgroups.push_back(box.make_cgroup(path + "/s"));
    for (const auto& cg : cgroups) // control: no session yet, the stack answers
        BOOST_TEST(run_probe(cg, "new", [] { return tcp_connect("127.0.0.2", 8080); }) == ECONNREFUSED);
    auto ids = box.maps().active_policy_ids();
    BOOST_REQUIRE(ids.ok());
    std::vector<pid_t> openers;
    for (const auto& cg : cgroups) {
        auto id = box.id_of(cg);
        auto level = cgroup_level(box.mount(), cg);
        BOOST_REQUIRE(level.ok());
        pid_t pid = fork();
        if (pid == 0) {
            SessionEntry e;
            e.policy_id = ids->at("web");
            _exit(box.maps().insert_session(id, *level, e).ok() ? 0 : 1);
        }
        openers.push_back(pid);
    }
    for (pid_t pid : openers) {
        int status = 0;
        waitpid(pid, &status, 0);
        BOOST_TEST(status == 0);
    }
    for (const auto& cg : cgroups)
        BOOST_TEST(run_probe(cg, "new", [] { return tcp_connect("127.0.0.2", 8080); }) == EPERM, cg.string());
}

BOOST_AUTO_TEST_CASE(revoked_session_is_cut_off)
{
    Sandbox box(kPolicy);
    auto id = box.open_session("s1", "web");
    auto s1 = box.root() / "s1";
    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 8080); }) == 0);
    BOOST_REQUIRE(box.maps().set_session_flags(id, AW_SESSION_REVOKED, 0).ok());
    BOOST_TEST(run_probe(s1, "new", [] { return tcp_connect("127.0.0.1", 8080); }) == EPERM);
    BOOST_TEST(run_probe(s1, "new", [] { return open_socket(AF_INET, SOCK_DGRAM, 0); }) == EPERM);
}

BOOST_AUTO_TEST_CASE(removed_session_entry_stops_enforcement)
{
    Sandbox box(kPolicy);
    auto id = box.open_session("s1", "web");
    auto s1 = box.root() / "s1";
    BOOST_TEST(run_probe(s1, "new", [] { return tcp_connect("127.0.0.2", 8080); }) == EPERM);
    BOOST_REQUIRE(box.maps().remove_session(id).ok());
    BOOST_TEST(!box.maps().lookup_session(id)->has_value());
    BOOST_TEST(run_probe(s1, "new", [] { return tcp_connect("127.0.0.2", 8080); }) == ECONNREFUSED);
}

BOOST_AUTO_TEST_CASE(policy_removed_by_reload_falls_back_to_unmatched)
{
    Sandbox box(kPolicy, Fallback{Fallback::Kind::Deny, {}});
    box.open_session("s1", "web");
    auto s1 = box.root() / "s1";
    BOOST_TEST(run_probe(s1, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 8080); }) == 0);
    box.install_policies(R"([policy.other])", Fallback{Fallback::Kind::Deny, {}});
    BOOST_TEST(run_probe(s1, "new", [] { return tcp_connect("127.0.0.1", 8080); }) == EPERM);
    BOOST_TEST(run_probe(s1, "new", [] { return tcp_bind("127.0.0.1", 8080); }) == EPERM);
}

BOOST_AUTO_TEST_CASE(counters_move_by_the_traffic_sent)
{
    Sandbox box(kPolicy);
    auto id = box.open_session("s1", "web");
    auto s1 = box.root() / "s1";
    auto before = box.maps().session_stats(id);
    BOOST_REQUIRE(before.ok());
    BOOST_TEST(before->bytes_out == 0u);

    constexpr int kDatagrams = 10;
    constexpr size_t kPayload = 1000;
    int rc = run_probe(s1, "new", [] {
        int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(53);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        char payload[kPayload] = {};
        for (int i = 0; i < kDatagrams; ++i)
            if (::sendto(s, payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0)
                return errno;
        ::close(s);
        return 0;
    });
    BOOST_REQUIRE_EQUAL(rc, 0);
    auto after = box.maps().session_stats(id);
    BOOST_REQUIRE(after.ok());
    // Each datagram is payload + 8 (UDP) + 20 (IPv4) bytes on the wire.
    BOOST_TEST(after->packets_out == static_cast<uint64_t>(kDatagrams));
    BOOST_TEST(after->bytes_out == kDatagrams * (kPayload + 28));
    BOOST_TEST(after->denied_total() == 0u);
}

BOOST_AUTO_TEST_CASE(one_denied_connect_gives_exactly_one_event)
{
    Sandbox box(kPolicy);
    auto id = box.open_session("s1", "web");
    auto child = box.make_cgroup("s1/child");
    auto child_id = box.id_of(child);

    std::vector<DecisionEvent> events;
    auto reader = EventReader::open(box.pin_dir(), [&](const DecisionEvent& e) { events.push_back(e); });
    BOOST_REQUIRE(reader.ok());
    BOOST_REQUIRE(reader->poll(0).ok()); // drain anything older

    int pid = run_probe(child, "new", [] {
        int rc = tcp_connect("127.0.0.2", 8080);
        return rc == EPERM ? static_cast<int>(getpid()) : -rc;
    });
    BOOST_REQUIRE_GT(pid, 0);

    for (int i = 0; i < 20 && events.empty(); ++i)
        BOOST_REQUIRE(reader->poll(50).ok());
    BOOST_REQUIRE(reader->poll(200).ok()); // nothing else may follow
    BOOST_REQUIRE_EQUAL(events.size(), 1u);
    const auto& e = events[0];
    BOOST_TEST(e.session_id == id);
    BOOST_TEST(e.cgroup_id == child_id);
    BOOST_TEST(e.pid == static_cast<uint32_t>(pid));
    BOOST_TEST(e.hook == static_cast<unsigned>(AW_HOOK_CONNECT4));
    BOOST_TEST(e.reason == static_cast<unsigned>(AW_REASON_DEFAULT));
    BOOST_TEST(e.address.str() == "127.0.0.2");
    BOOST_TEST(e.port == 8080);
    BOOST_TEST(e.proto == static_cast<unsigned>(IPPROTO_TCP));
    BOOST_TEST(e.family == static_cast<unsigned>(AF_INET));

    auto stats = box.maps().session_stats(id);
    BOOST_REQUIRE(stats.ok());
    BOOST_TEST(stats->denied[AW_HOOK_CONNECT4] == 1u);
    BOOST_TEST(stats->denied_total() == 1u);
}

BOOST_AUTO_TEST_CASE(event_flood_is_rate_limited)
{
    Sandbox box(kPolicy);
    box.open_session("s1", "web");
    auto s1 = box.root() / "s1";
    size_t received = 0;
    auto reader = EventReader::open(box.pin_dir(), [&](const DecisionEvent&) { ++received; });
    BOOST_REQUIRE(reader.ok());
    // The sandbox allows 1000 events per second and CPU; 5000 denials in a
    // burst must leave most of them counted as suppressed, not queued.
    auto start = std::chrono::steady_clock::now();
    int rc = run_probe(s1, "new", [] {
        for (int i = 0; i < 5000; ++i)
            if (udp_send("127.0.0.1", 54) != EPERM)
                return 1;
        return 0;
    });
    BOOST_REQUIRE_EQUAL(rc, 0);
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start).count();
    while (true) {
        auto n = reader->poll(100);
        BOOST_REQUIRE(n.ok());
        if (*n == 0)
            break;
    }
    auto suppressed = box.maps().events_suppressed();
    BOOST_REQUIRE(suppressed.ok());
    BOOST_TEST(received + *suppressed == 5000u);
    // Budget: 1000 per one-second window per CPU.
    uint64_t windows = static_cast<uint64_t>(seconds) + 1;
    uint64_t cpus = std::thread::hardware_concurrency();
    BOOST_TEST(received <= 1000u * windows * cpus);
    BOOST_TEST(received > 0u);
    BOOST_TEST(*suppressed > 0u);
}

// A setuid-root helper started from a session runs as root, in the
// session's cgroup: it is policed like the session (cgroup BPF decides by
// cgroup, not by user). The helper is a private setuid copy of python3,
// run as nobody with a group of its own: only that group may execute it, so
// no other user of the machine can borrow it while it exists.
BOOST_AUTO_TEST_CASE(setuid_root_helper_started_in_a_session_is_policed)
{
    Sandbox box(kPolicy);
    box.open_session("s1", "web");
    auto s1 = box.root() / "s1";
    auto outside = box.make_cgroup("not-a-session");

    // A filesystem that honours setuid bits (a nosuid /tmp does not).
    fs::path base;
    for (const fs::path& candidate : {fs::path("/tmp"), fs::path("/var/tmp"), fs::current_path()}) {
        struct statvfs vfs {};
        if (statvfs(candidate.c_str(), &vfs) == 0 && !(vfs.f_flag & ST_NOSUID)) {
            base = candidate;
            break;
        }
    }
    BOOST_REQUIRE_MESSAGE(!base.empty(), "/tmp, /var/tmp and the build tree are all mounted nosuid");
    const gid_t helper_gid = 3900000000u + static_cast<gid_t>(getpid() % 100000);
    BOOST_REQUIRE_MESSAGE(getgrgid(helper_gid) == nullptr, "gid " << helper_gid << " belongs to a group here");

    // The helper exists on disk only while it is made: it is opened, then
    // unlinked with its directory, and executed through the descriptor, so
    // nothing setuid is left behind even if the test is killed.
    fs::path dir = base / ("authwall-setuid-" + unique_suffix());
    fs::path helper = dir / "helper";
    struct Remove {
        fs::path dir;
        ~Remove()
        {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } remove{dir};
    fs::remove_all(dir);
    BOOST_REQUIRE(fs::create_directory(dir));
    BOOST_REQUIRE_EQUAL(chmod(dir.c_str(), 0700), 0);
    fs::copy_file(fs::canonical("/usr/bin/python3"), helper);
    BOOST_REQUIRE_EQUAL(chown(helper.c_str(), 0, helper_gid), 0);
    BOOST_REQUIRE_EQUAL(chmod(helper.c_str(), 04710), 0);
    Fd helper_fd(::open(helper.c_str(), O_RDONLY | O_CLOEXEC));
    BOOST_REQUIRE(helper_fd);
    fs::remove_all(dir);
    BOOST_REQUIRE(!fs::exists(dir));

    // Exit status: 200 if not running as root, else the errno of the
    // attempt (0 on success).
    const std::string program = R"PY(
import os, socket, sys
if os.geteuid() != 0:
    sys.exit(200)
try:
    if sys.argv[1] == "connect":
        socket.create_connection(("127.0.0.2", 9), timeout=2)
    else:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sys.exit(0)
except OSError as e:
    sys.exit(e.errno or 100)
)PY";
    auto as_nobody = [&](const fs::path& cgroup, const char* what) {
        return run_probe(cgroup, "new", [&] {
            pid_t child = fork();
            if (child == 0) {
                if (setgroups(0, nullptr) != 0 || setgid(helper_gid) != 0 || setuid(65534) != 0)
                    _exit(201);
                const char* args[] = {"helper", "-I", "-c", program.c_str(), what, nullptr};
                const char* env[] = {nullptr};
                execveat(helper_fd.get(), "", const_cast<char* const*>(args), const_cast<char* const*>(env),
                         AT_EMPTY_PATH);
                _exit(202);
            }
            int status = 0;
            waitpid(child, &status, 0);
            return WIFEXITED(status) ? WEXITSTATUS(status) : 300;
        });
    };
    BOOST_TEST(as_nobody(s1, "connect") == EPERM);
    BOOST_TEST(as_nobody(s1, "raw") == EPERM);
    // Control: the same helper outside any session is root and unpoliced.
    BOOST_TEST(as_nobody(outside, "connect") == ECONNREFUSED);
    BOOST_TEST(as_nobody(outside, "raw") == 0);
}

BOOST_AUTO_TEST_SUITE_END()
