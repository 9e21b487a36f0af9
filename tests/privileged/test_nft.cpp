// SPDX-License-Identifier: Apache-2.0
// The nftables mirror against the real kernel. Every test runs in a network
// namespace of its own (the test process enters it; the loader, the PAM
// harness and cgroupd inherit it), so `nft flush ruleset` and the rules a
// test writes never reach this host's own ruleset.
#include <boost/test/unit_test.hpp>

#include "core/nft/mirror.h"
#include "tests/login_world.h"
#include "tests/support.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;

namespace {

const char* kPolicy = R"(
[policy.ops]
match.services = ["authwall-test"]
[policy.ops.session]
max_duration = "2h"
)";

const std::string kMirrorOn = "nft_mirror = true\n";

// A session held open by the harness until release() lets it close
// normally (or until scope exit kills it, without a close).
class ClosableSession {
  public:
    ClosableSession(const LoginWorld& w, const std::string& rhost)
        : fifo_(w.dir() / ("release-" + std::to_string(counter_) + ".fifo")),
          out_(w.dir() / ("closable-" + std::to_string(counter_++) + ".out"))
    {
        BOOST_REQUIRE_EQUAL(mkfifo(fifo_.c_str(), 0600), 0);
        proc_.emplace("exec " + std::string(AUTHWALL_PAM_HARNESS) + " " + (w.dir() / "pam.d").string() + " " +
                      w.service() + " " + w.user() + " --rhost " + rhost + " --hold > " + out_.string() + " 2>&1 < " +
                      fifo_.string());
        release_fd_ = ::open(fifo_.c_str(), O_WRONLY | O_CLOEXEC); // meets the harness's stdin
        BOOST_REQUIRE(release_fd_ >= 0);
        BOOST_REQUIRE(wait_until([&] { return output().find("ready") != std::string::npos; }, 5000));
        BOOST_REQUIRE(output().find("open: PAM_SUCCESS") != std::string::npos);
    }
    ~ClosableSession()
    {
        if (release_fd_ >= 0)
            ::close(release_fd_);
    }
    std::string output() const { return sh_output("cat " + out_.string()); }
    pid_t pid() const { return proc_->pid(); }
    // The session id, from the module's open log line.
    uint64_t id() const
    {
        auto out = output();
        auto at = out.find("open session ");
        BOOST_REQUIRE(at != std::string::npos);
        return std::stoull(out.substr(at + 13));
    }
    void release()
    {
        BOOST_REQUIRE_EQUAL(::write(release_fd_, "\n", 1), 1);
        BOOST_REQUIRE(wait_until([&] { return output().find("close: PAM_SUCCESS") != std::string::npos; }, 5000));
    }

  private:
    static inline int counter_ = 0;
    fs::path fifo_, out_;
    int release_fd_ = -1;
    std::optional<Background> proc_;
};

MirrorContents mirror()
{
    auto c = nft_read_mirror();
    if (!c.ok())
        BOOST_FAIL(c.error().message());
    return *c;
}

bool has_session(const MirrorContents& c, uint64_t id)
{
    return std::find(c.sessions.begin(), c.sessions.end(), id) != c.sessions.end();
}

bool has_pair(const MirrorContents& c, uint64_t id, const std::string& addr)
{
    for (const auto& [i, a] : c.sessions_addr)
        if (i == id && a.str() == addr)
            return true;
    return false;
}

bool has_addr(const MirrorContents& c, const std::string& addr)
{
    for (const auto& a : c.session_addrs)
        if (a.str() == addr)
            return true;
    return false;
}

uint64_t id_of_rhost(const LoginWorld& w, const std::string& rhost)
{
    for (const auto& r : w.records())
        if (r.rhost.value_or("") == rhost)
            return r.id;
    BOOST_FAIL("no session from " + rhost);
    return 0;
}

std::string authctl(const LoginWorld& w, const std::string& args)
{
    return sh_output(std::string(AUTHWALL_AUTHCTL_BIN) + " --config " + w.config().string() + " " + args +
                     " 2>&1; echo rc=$?");
}

} // namespace

BOOST_AUTO_TEST_SUITE(nft)

BOOST_AUTO_TEST_CASE(elements_follow_open_close_and_reap)
{
    NetNs ns("awt-nft-" + unique_suffix());
    InNetns in(ns);
    LoginWorld w(kPolicy, "", kMirrorOn);
    BOOST_TEST(nft_table_exists()); // made by the loader
    Cgroupd daemon(w);

    ClosableSession a(w, "192.0.2.7");
    ClosableSession b(w, "192.0.2.7"); // a second login from the same address
    std::optional<ClosableSession> c(std::in_place, w, "2001:db8::7");
    uint64_t ida = a.id(), idb = b.id(), idc = c->id();
    BOOST_REQUIRE(ida != idb);

    auto m = mirror();
    BOOST_TEST(m.sessions.size() == 3u);
    BOOST_TEST(has_session(m, ida));
    BOOST_TEST(has_pair(m, ida, "192.0.2.7"));
    BOOST_TEST(has_pair(m, idb, "192.0.2.7"));
    BOOST_TEST(has_pair(m, idc, "2001:db8::7"));
    BOOST_TEST(has_addr(m, "192.0.2.7"));
    BOOST_TEST(has_addr(m, "2001:db8::7"));
    BOOST_TEST(m.session_addrs.size() == 2u);
    // What an administrator sees: comments and safety timeouts.
    auto listed = sh_output("nft list set inet authwall sessions_v6");
    BOOST_TEST(listed.find("comment \"user=" + w.user() + " policy=ops session=" + std::to_string(idc) + "\"") !=
                   std::string::npos,
               listed);
    BOOST_TEST(listed.find("timeout 1h59m") != std::string::npos, listed); // the time left of max_duration
    auto verify = authctl(w, "nft verify");
    BOOST_TEST(verify.find("nft mirror in sync: 3 session(s)") != std::string::npos, verify);
    BOOST_TEST(verify.find("rc=0") != std::string::npos);

    // The first close from 192.0.2.7 keeps the address: b is still there.
    a.release();
    m = mirror();
    BOOST_TEST(!has_session(m, ida));
    BOOST_TEST(!has_pair(m, ida, "192.0.2.7"));
    BOOST_TEST(has_addr(m, "192.0.2.7"));
    b.release();
    m = mirror();
    BOOST_TEST(!has_session(m, idb));
    BOOST_TEST(!has_addr(m, "192.0.2.7"));
    BOOST_TEST(has_addr(m, "2001:db8::7"));

    // c's processes die without a close: cgroupd reaps it, mirror included.
    kill(-c->pid(), SIGKILL);
    BOOST_TEST(wait_until([&] { return !has_session(mirror(), idc); }, 3000));
    m = mirror();
    BOOST_TEST(m.sessions.empty());
    BOOST_TEST(m.sessions_addr.empty());
    BOOST_TEST(m.session_addrs.empty());
}

BOOST_AUTO_TEST_CASE(flushed_ruleset_and_strays_are_repaired_by_the_reconcile)
{
    NetNs ns("awt-nft-" + unique_suffix());
    InNetns in(ns);
    LoginWorld w(kPolicy, "", kMirrorOn);
    Cgroupd daemon(w);
    HeldSession s(w, "--rhost 198.51.100.4");
    uint64_t id = id_of_rhost(w, "198.51.100.4");
    BOOST_REQUIRE(has_pair(mirror(), id, "198.51.100.4"));

    BOOST_REQUIRE_EQUAL(sh("nft flush ruleset"), 0);
    auto verify = authctl(w, "nft verify --json");
    BOOST_TEST(verify.find("\"table_present\": false") != std::string::npos, verify);
    BOOST_TEST(verify.find("\"in_sync\": false") != std::string::npos);
    BOOST_TEST(verify.find("rc=1") != std::string::npos);

    kill(daemon.pid(), SIGHUP); // a sweep now rather than in a minute
    BOOST_TEST(wait_until([&] { return authctl(w, "nft verify").find("rc=0") != std::string::npos; }, 3000));
    auto m = mirror();
    BOOST_TEST(has_session(m, id));
    BOOST_TEST(has_pair(m, id, "198.51.100.4"));
    BOOST_TEST(has_addr(m, "198.51.100.4"));
    BOOST_TEST(daemon.log().find("nft mirror repaired: table inet authwall recreated, 3 missing element(s) added") !=
                   std::string::npos,
               daemon.log());

    // Someone adds an address by hand: a stray, removed by the next sweep.
    BOOST_REQUIRE_EQUAL(sh("nft add element inet authwall session_addrs_v4 '{ 203.0.113.66 }'"), 0);
    verify = authctl(w, "nft verify");
    BOOST_TEST(verify.find("stray    session_addrs_v4 203.0.113.66") != std::string::npos, verify);
    kill(daemon.pid(), SIGHUP);
    BOOST_TEST(wait_until([&] { return !has_addr(mirror(), "203.0.113.66"); }, 3000));
    BOOST_TEST(has_addr(mirror(), "198.51.100.4"));
}

// (a) An output rule of the administrator's, `socket cgroupv2 level N . ip
// daddr @sessions_v4`, matches the session's own traffic to its login
// address, and nobody else's.
BOOST_AUTO_TEST_CASE(output_rule_on_socket_cgroup_matches_only_the_session)
{
    NetNs ns("awt-nft-" + unique_suffix());
    InNetns in(ns);
    LoginWorld w("[policy.ops]\nmatch.services = [\"authwall-test\"]\n", "", kMirrorOn);
    HeldSession s(w, "--rhost 127.0.0.5");
    auto records = w.records();
    BOOST_REQUIRE_EQUAL(records.size(), 1u);
    fs::path cgroup = records[0].cgroup;
    auto mount = find_cgroup2_mount();
    BOOST_REQUIRE(mount.ok());
    auto level = cgroup_level(*mount, cgroup);
    BOOST_REQUIRE(level.ok());
    BOOST_REQUIRE_EQUAL(sh("nft add chain inet authwall out '{ type filter hook output priority 0; }'"), 0);
    BOOST_REQUIRE_EQUAL(sh("nft add rule inet authwall out socket cgroupv2 level " + std::to_string(*level) +
                           " . ip daddr @sessions_v4 counter drop"),
                        0);
    auto other = w.root() / "not-a-session";
    BOOST_REQUIRE(cgroup_create(other).ok());

    BOOST_TEST(run_probe(cgroup, "", [] { return udp_send("127.0.0.5", 9); }) == EPERM); // the rule
    BOOST_TEST(run_probe(cgroup, "", [] { return udp_send("127.0.0.6", 9); }) == 0);     // not its rhost
    BOOST_TEST(run_probe(other, "", [] { return udp_send("127.0.0.5", 9); }) == 0);      // not the session
    // The same rule does nothing once the session is revoked (it leaves the sets).
    auto out = authctl(w, "revoke " + std::to_string(records[0].id));
    BOOST_TEST(!has_session(mirror(), records[0].id), out);
    BOOST_REQUIRE(cgroup_remove_tree(other).ok());
}

// (b) An authpf-style gateway: client → gateway → server, the gateway's
// forward chain accepting only the login addresses of active sessions.
BOOST_AUTO_TEST_CASE(gateway_forwards_only_logged_in_addresses)
{
    std::string s = unique_suffix();
    NetNs client("awt-gc-" + s), gw("awt-gw-" + s), server("awt-gs-" + s);
    BOOST_REQUIRE_EQUAL(
        sh("ip link add gc" + s + " netns " + client.name() + " type veth peer name gi" + s + " netns " + gw.name()),
        0);
    BOOST_REQUIRE_EQUAL(
        sh("ip link add gs" + s + " netns " + server.name() + " type veth peer name go" + s + " netns " + gw.name()),
        0);
    BOOST_REQUIRE_EQUAL(client.exec("ip addr add 10.210.1.2/24 dev gc" + s +
                                    " && ip -6 addr add fd00:210:1::2/64 dev gc" + s + " nodad && ip link set gc" + s +
                                    " up && ip route add default via 10.210.1.1" +
                                    " && ip -6 route add default via fd00:210:1::1"),
                        0);
    BOOST_REQUIRE_EQUAL(server.exec("ip addr add 10.210.2.2/24 dev gs" + s +
                                    " && ip -6 addr add fd00:210:2::2/64 dev gs" + s + " nodad && ip link set gs" + s +
                                    " up && ip route add default via 10.210.2.1" +
                                    " && ip -6 route add default via fd00:210:2::1"),
                        0);
    BOOST_REQUIRE_EQUAL(gw.exec("ip addr add 10.210.1.1/24 dev gi" + s + " && ip -6 addr add fd00:210:1::1/64 dev gi" +
                                s + " nodad && ip link set gi" + s + " up && ip addr add 10.210.2.1/24 dev go" + s +
                                " && ip -6 addr add fd00:210:2::1/64 dev go" + s + " nodad && ip link set go" + s +
                                " up && sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"),
                        0);
    // The server listens on 8080 (IPv4) and 8086 (IPv6), outside any session.
    struct Services {
        pid_t pid = fork();
        ~Services()
        {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    } services;
    if (services.pid == 0) {
        int fd = ::open(("/run/netns/" + server.name()).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
            _exit(1);
        if (tcp_listen("0.0.0.0", 8080) < 0 || tcp_listen("::", 8086) < 0)
            _exit(2);
        pause();
        _exit(0);
    }

    InNetns in(gw);
    LoginWorld w(kPolicy, "", kMirrorOn);
    BOOST_REQUIRE_EQUAL(
        sh("nft add chain inet authwall gateway '{ type filter hook forward priority 0; policy drop; }'"), 0);
    BOOST_REQUIRE_EQUAL(sh("nft add rule inet authwall gateway ct state established,related accept"), 0);
    BOOST_REQUIRE_EQUAL(sh("nft add rule inet authwall gateway ip saddr @session_addrs_v4 accept"), 0);
    BOOST_REQUIRE_EQUAL(sh("nft add rule inet authwall gateway ip6 saddr @session_addrs_v6 accept"), 0);
    BOOST_REQUIRE(wait_until(
        [&] { return run_probe("", server.name(), [] { return tcp_connect("127.0.0.1", 8080, 200); }) == 0; }, 3000));

    auto v4 = [&] { return run_probe("", client.name(), [] { return tcp_connect("10.210.2.2", 8080, 1000); }); };
    auto v6 = [&] { return run_probe("", client.name(), [] { return tcp_connect("fd00:210:2::2", 8086, 1000); }); };
    BOOST_TEST(v4() == ETIMEDOUT); // nobody logged in: dropped at the gateway
    BOOST_TEST(v6() == ETIMEDOUT);
    {
        ClosableSession login4(w, "10.210.1.2");
        ClosableSession login6(w, "fd00:210:1::2");
        BOOST_TEST(v4() == 0);
        BOOST_TEST(v6() == 0);
        login4.release();
        BOOST_TEST(v4() == ETIMEDOUT); // logout: no longer forwarded
        BOOST_TEST(v6() == 0);
        login6.release();
        BOOST_TEST(v6() == ETIMEDOUT);
    }
}

// pam_authwall.so loads the mirror from its helper (pam_authwall/nft_mirror.so
// beside it) only when the mirror is on. A module whose helper is missing
// refuses the login as fail= says, and says what is missing.
BOOST_AUTO_TEST_CASE(missing_mirror_helper_fails_as_fail_says)
{
    NetNs ns("awt-nft-" + unique_suffix());
    InNetns in(ns);
    LoginWorld w(kPolicy, "", kMirrorOn);
    // The build-tree module, alone in a directory without pam_authwall/.
    fs::path lonely = w.dir() / "lonely";
    fs::create_directories(lonely);
    fs::copy_file(AUTHWALL_PAM_MODULE, lonely / "pam_authwall.so");
    auto line = [&](const std::string& args) {
        std::ofstream(w.dir() / "pam.d" / w.service()) << "session required " << (lonely / "pam_authwall.so").string()
                                                       << " config=" << w.config().string() << " " << args << "\n";
    };
    std::string helper = (lonely / "pam_authwall" / "nft_mirror.so").string();

    line("fail=closed");
    auto out = w.pam(w.user() + " --rhost 192.0.2.7");
    BOOST_TEST(out.find("open: PAM_SESSION_ERR") != std::string::npos, out);
    BOOST_TEST(out.find("session refused (fail=closed): load helper " + helper) != std::string::npos, out);
    BOOST_TEST(out.find("pam_authwall needs it for nft_mirror = true") != std::string::npos, out);
    BOOST_TEST(w.records().empty()); // rolled back
    BOOST_TEST(mirror().sessions.empty());

    line("fail=open");
    out = w.pam(w.user() + " --rhost 192.0.2.7");
    BOOST_TEST(out.find("open: PAM_SUCCESS") != std::string::npos, out);
    BOOST_TEST(out.find("SESSION NOT ENFORCED (fail=open): load helper " + helper) != std::string::npos, out);
    BOOST_TEST(w.records().empty());

    // With the mirror off the helper is never needed.
    auto config = sh_output("grep -v nft_mirror " + w.config().string());
    std::ofstream(w.config()) << config;
    line("fail=closed");
    out = w.pam(w.user() + " --rhost 192.0.2.7");
    BOOST_TEST(out.find("open: PAM_SUCCESS") != std::string::npos, out);
    BOOST_TEST(out.find("close: PAM_SUCCESS") != std::string::npos, out);
    BOOST_TEST(out.find("load helper") == std::string::npos, out);
}

BOOST_AUTO_TEST_SUITE_END()
