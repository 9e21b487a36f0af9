// SPDX-License-Identifier: Apache-2.0
// DNS names in rules, end to end: the real loader resolves them through a
// real DNS server (dnsmasq on loopback, on a port of the test's own, with a
// hosts file the test rewrites) and the kernel enforces the addresses. A
// name that moves is followed within its TTL + 1 s; the old address stays
// for the grace period, then is refused; a name no rule allows stays
// refused; when the server dies the last good addresses stay until stale.
#include <boost/test/unit_test.hpp>

#include "core/dataplane/pins.h"
#include "tests/support.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <initializer_list>
#include <fstream>
#include <iterator>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint16_t kPort = 7101; // nothing listens: allowed = ECONNREFUSED, refused = EPERM

// dnsmasq answering from a hosts file with TTL 2, on 127.0.0.1:port (of
// the named network namespace `netns`, if set).
class Dnsmasq {
  public:
    Dnsmasq(fs::path dir, uint16_t port, std::string netns = "")
        : dir_(std::move(dir)), port_(port), netns_(std::move(netns))
    {
    }
    ~Dnsmasq() { stop(); }

    void hosts(const std::string& text)
    {
        std::ofstream(dir_ / "hosts") << text;
        if (pid_ > 0)
            kill(pid_, SIGHUP); // dnsmasq reads its hosts files again
    }
    void start()
    {
        pid_ = fork();
        if (pid_ == 0) {
            std::string port = "--port=" + std::to_string(port_), hosts = "--addn-hosts=" + (dir_ / "hosts").string(),
                        log = "--log-facility=" + (dir_ / "dnsmasq.log").string();
            if (!netns_.empty()) {
                std::string cmd = "exec ip netns exec " + netns_ +
                                  " /usr/sbin/dnsmasq --keep-in-foreground --listen-address=127.0.0.1 "
                                  "--bind-interfaces --no-resolv --no-hosts --local-ttl=2 --log-queries --user=root "
                                  "--pid-file= " +
                                  port + " " + hosts + " " + log;
                execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
                _exit(127);
            }
            execl("/usr/sbin/dnsmasq", "dnsmasq", "--keep-in-foreground", "--listen-address=127.0.0.1",
                  "--bind-interfaces", "--no-resolv", "--no-hosts", "--local-ttl=2", "--log-queries", "--user=root",
                  "--pid-file=", port.c_str(), hosts.c_str(), log.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        std::string listening = (netns_.empty() ? "" : "ip netns exec " + netns_ + " ") +
                                "ss -Hlun 'sport = :" + std::to_string(port_) + "' | grep -q 127.0.0.1";
        BOOST_REQUIRE_MESSAGE(wait_until([&] { return sh(listening) == 0; }, 5000), "dnsmasq did not start");
    }
    void stop()
    {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

  private:
    fs::path dir_;
    uint16_t port_;
    std::string netns_;
    pid_t pid_ = -1;
};

// Sends an A query for `name` on `fd` (to `server`, or where fd is
// connected when null) and waits for an answer: 0 once it came, else an
// errno.
int query(int fd, const std::string& name, const sockaddr_in* server)
{
    unsigned char* msg = nullptr;
    int length = 0;
    if (ares_create_query(name.c_str(), 1 /* IN */, 1 /* A */, static_cast<unsigned short>(getpid()), 1, &msg, &length,
                          0) != ARES_SUCCESS)
        return EINVAL;
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int err = 0;
    if (sendto(fd, msg, static_cast<size_t>(length), 0, reinterpret_cast<const sockaddr*>(server),
               server ? sizeof(*server) : 0) < 0)
        err = errno;
    unsigned char answer[1024];
    if (!err && recv(fd, answer, sizeof(answer), 0) < 12)
        err = errno ? errno : EPROTO;
    ares_free_string(msg);
    return err;
}

// Asks 127.0.0.1:53 for `name`'s A record from a socket bound to
// 127.0.0.1:`local_port` (0: any) and waits for the answer (for use inside a
// probe): 0 once it came, else an errno.
int ask_dns(const std::string& name, uint16_t local_port = 0)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in local{}, server{};
    local.sin_family = server.sin_family = AF_INET;
    local.sin_addr.s_addr = server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    local.sin_port = htons(local_port);
    server.sin_port = htons(53);
    int err = bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ? errno : query(fd, name, &server);
    close(fd);
    return err;
}

// As a stub resolver does: one socket connected to 127.0.0.1:53 asks for
// each name in turn (its memory lets its datagrams pass after the first,
// the watch must still see them); 0 once every answer came, else an errno.
int ask_dns_connected(const std::vector<std::string>& names)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in server{};
    server.sin_family = AF_INET;
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    server.sin_port = htons(53);
    int err = connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof(server)) != 0 ? errno : 0;
    for (const auto& name : names)
        if (!err)
            err = query(fd, name, nullptr);
    close(fd);
    return err;
}

// Connects to address:kPort, again for up to `wait_ms` while refused by
// policy (the loader writes what an answer gave a moment after it came).
int connect_soon(const char* address, int wait_ms)
{
    int err = tcp_connect(address, kPort);
    for (int waited = 0; err == EPERM && waited < wait_ms; waited += 20) {
        usleep(20'000);
        err = tcp_connect(address, kPort);
    }
    return err;
}

// The real loader on a private root, pin directory and run directory,
// named after `tag`.
struct LoaderRun {
    fs::path root, pins, dir;
    pid_t pid = -1;
    LoaderRun(const CgroupMount& mount, const std::string& tag)
    {
        std::string suffix = unique_suffix(), tmpl = "/tmp/authwall-" + tag + "-XXXXXX";
        BOOST_REQUIRE(mkdtemp(tmpl.data())); // the last step: nothing is left behind when it fails
        root = mount.mount_point / ("authwall-" + tag + "-" + suffix);
        pins = "/sys/fs/bpf/authwall-" + tag + "-" + suffix;
        dir = tmpl;
    }
    // The run directory readable by all, an empty policies.d, the root
    // cgroup and, below it, `cgroups` (for sessions).
    void prepare(std::initializer_list<const char*> cgroups) const
    {
        chmod(dir.c_str(), 0755);
        fs::create_directory(dir / "policies.d");
        chmod((dir / "policies.d").c_str(), 0755);
        BOOST_REQUIRE(cgroup_create(root).ok());
        for (const char* c : cgroups)
            BOOST_REQUIRE(cgroup_create(root / c).ok());
    }
    ~LoaderRun()
    {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
        uninstall_datapath(pins).ok();
        cgroup_remove_tree(root).ok();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    void start()
    {
        pid = fork();
        if (pid == 0) {
            std::string cmd = std::string("exec ") + AUTHWALL_LOADER_BIN + " --pin-dir " + pins.string() +
                              " --cgroup-root " + root.string() + " --policy " + (dir / "policies.d").string() +
                              " --run-dir " + (dir / "run").string() + " --config " + (dir / "authwall.toml").string() +
                              " --debug 2>" + (dir / "loader.log").string();
            execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
    }
    // The pins, once the loader installed `policy` (loading the programs
    // takes seconds under emulation: up to 30 s).
    PinnedMaps installed(const std::string& policy) const
    {
        std::optional<PinnedMaps> maps;
        BOOST_REQUIRE_MESSAGE(wait_until(
                                  [&] {
                                      auto m = PinnedMaps::open(pins);
                                      if (!m || !m->active_policy_ids() || !m->active_policy_ids()->count(policy))
                                          return false;
                                      maps.emplace(std::move(m).value());
                                      return true;
                                  },
                                  30000),
                              "the loader did not install the policy: " << log());
        return std::move(*maps);
    }
    // root/name made a session of `policy`.
    void open_session(PinnedMaps& maps, const CgroupMount& mount, const std::string& name,
                      const std::string& policy) const
    {
        open_test_session(maps, mount, dir / "run", root / name, policy);
    }
    // The command line of authctl on this loader's pins, run directory and
    // configuration, with `args`.
    std::string authctl(const std::string& args) const
    {
        return std::string(AUTHWALL_AUTHCTL_BIN) + " --pin-dir " + pins.string() + " --run-dir " +
               (dir / "run").string() + " --config " + (dir / "authwall.toml").string() + " " + args;
    }
    // (Boost.Test builds a check's message before the check: the file may
    // not be there yet.)
    std::string log() const
    {
        std::ifstream in(dir / "loader.log");
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }
};

void write_file(const fs::path& path, const std::string& text)
{
    std::ofstream(path) << text;
    chmod(path.c_str(), 0644);
}

double seconds_since(Clock::time_point t)
{
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// Whether dnsmasq is here; when not, the test skips (fails where
// privileged tests are required).
bool have_dnsmasq()
{
    if (::access("/usr/sbin/dnsmasq", X_OK) == 0)
        return true;
    BOOST_REQUIRE_MESSAGE(!privileged_required(), "dnsmasq (Debian's dnsmasq-base) is not installed");
    BOOST_TEST_MESSAGE("skipped: dnsmasq (Debian's dnsmasq-base) is not installed");
    return false;
}

// The answer first (10000 + its errno when none came), then the connect.
int ask_then_connect(const char* name, const char* address)
{
    if (int err = ask_dns(name))
        return 10000 + err;
    return connect_soon(address, 1000);
}

} // namespace

BOOST_AUTO_TEST_SUITE(names)

BOOST_AUTO_TEST_CASE(a_name_in_a_rule_follows_its_dns_answers_with_grace_and_staleness)
{
    if (!have_dnsmasq())
        return;
    auto mount = find_cgroup2_mount();
    BOOST_REQUIRE(mount.ok());
    LoaderRun loader(*mount, "names");
    loader.prepare({"s1"});

    uint16_t dns_port = static_cast<uint16_t>(20000 + getpid() % 20000);
    Dnsmasq dns(loader.dir, dns_port);
    dns.hosts("127.0.0.2 db.test.internal\n127.0.0.4 other.test.internal\n");
    dns.start();
    // TTL 2 from dnsmasq; grace 3 s; a failing server's last answer stays 8 s.
    write_file(loader.dir / "authwall.toml", "[dns]\nservers = [\"127.0.0.1:" + std::to_string(dns_port) +
                                                 "\"]\nmin_ttl_sec = 1\ngrace_sec = 3\nstale_sec = 8\ntimeout_ms = "
                                                 "400\n");
    write_file(loader.dir / "policies.d" / "db.toml",
               "[policy.db]\nmatch.users = [\"nobody\"]\n[policy.db.egress]\ndefault = \"deny\"\n"
               "allow = [\"db.test.internal tcp 7101\"]\n");
    loader.start();

    PinnedMaps maps = loader.installed("db");
    loader.open_session(maps, *mount, "s1", "db");
    auto connect = [&](const char* address) {
        return run_probe(loader.root / "s1", "", [address] { return tcp_connect(address, kPort); });
    };

    // The name's address is allowed from the first generation on; another
    // address, and the address of a name no rule allows, are refused. The
    // controls: the same connects from outside the session reach the stack.
    BOOST_TEST(connect("127.0.0.2") == ECONNREFUSED);
    BOOST_TEST(connect("127.0.0.3") == EPERM);
    BOOST_TEST(connect("127.0.0.4") == EPERM);
    BOOST_TEST(run_probe("", "", [] { return tcp_connect("127.0.0.3", kPort); }) == ECONNREFUSED);
    BOOST_TEST(run_probe("", "", [] { return tcp_connect("127.0.0.4", kPort); }) == ECONNREFUSED);
    // Because the load waited for the first answer: no generation without
    // the address came before (nor after, since the answer has not changed).
    BOOST_TEST(loader.log().find("names changed") == std::string::npos,
               "the first generation did not hold the name's address: " << loader.log());

    // The name moves: followed within TTL + 1 s; the old address stays for
    // the grace period (after its TTL), then goes.
    auto moved = Clock::now();
    dns.hosts("127.0.0.3 db.test.internal\n127.0.0.4 other.test.internal\n");
    BOOST_TEST(wait_until([&] { return connect("127.0.0.3") == ECONNREFUSED; }, 3000),
               "the new address is not allowed within TTL + 1 s: " << loader.log());
    BOOST_TEST_MESSAGE("the new address was allowed " << seconds_since(moved) << " s after the move");
    BOOST_TEST(connect("127.0.0.2") == ECONNREFUSED); // in its grace period
    BOOST_TEST(wait_until([&] { return connect("127.0.0.2") == EPERM; }, 8000), "the old address stayed");
    double gone = seconds_since(moved);
    BOOST_TEST_MESSAGE("the old address was refused " << gone << " s after the move");
    BOOST_TEST(gone >= 3.0); // grace_sec, at least (its TTL came first)
    BOOST_TEST(connect("127.0.0.4") == EPERM);

    // authctl policy test decides from the files as the kernel does, with
    // the addresses the loader published; and from the kernel (--live).
    std::string authctl = loader.authctl("policy test --user nobody --json --to ");
    for (std::string where : {" --policies " + (loader.dir / "policies.d").string(), std::string(" --live")}) {
        BOOST_TEST_CONTEXT(where)
        {
            auto allowed = nlohmann::json::parse(sh_output(authctl + "127.0.0.3 tcp 7101" + where));
            BOOST_TEST(allowed.at("verdict") == "allow");
            BOOST_TEST(allowed.at("layers").at(0).at("rule_text") == "db.test.internal tcp 7101");
            auto refused = nlohmann::json::parse(sh_output(authctl + "127.0.0.4 tcp 7101" + where));
            BOOST_TEST(refused.at("verdict") == "deny");
        }
    }

    // Metrics: the name resolved, to one address (the old one is gone).
    std::string metrics = loader.authctl("metrics");
    std::string text = sh_output(metrics);
    BOOST_TEST(text.find("authwall_dns_names{state=\"resolved\"} 1\n") != std::string::npos, text);
    BOOST_TEST(text.find("authwall_dns_names{state=\"failing\"} 0\n") != std::string::npos, text);
    BOOST_TEST(text.find("authwall_dns_addresses 1\n") != std::string::npos, text);

    // The server dies: the last good answer stays past TTL + grace (5 s)
    // until it is stale (8 s after it came), logged, then is refused.
    dns.stop();
    auto died = Clock::now();
    BOOST_TEST(
        wait_until([&] { return loader.log().find("its last good addresses (127.0.0.3) stay") != std::string::npos; },
                   5000),
        loader.log());
    BOOST_TEST(wait_until(
                   [&] {
                       text = sh_output(metrics);
                       return text.find("authwall_dns_names{state=\"failing\"} 1\n") != std::string::npos;
                   },
                   2000),
               text);
    BOOST_TEST(text.find("authwall_dns_addresses 1\n") != std::string::npos, text); // until stale
    while (seconds_since(died) < 6.0) {
        BOOST_TEST_REQUIRE(connect("127.0.0.3") == ECONNREFUSED);
        usleep(200'000);
    }
    BOOST_TEST(wait_until([&] { return connect("127.0.0.3") == EPERM; }, 6000), "a stale address stayed");
    BOOST_TEST_MESSAGE("the stale address was refused " << seconds_since(died) << " s after the server died");
    auto state = nlohmann::json::parse(sh_output("cat " + (loader.dir / "run" / "names.json").string()));
    BOOST_TEST(state.at("names").at(0).at("name") == "db.test.internal");
    BOOST_TEST(state.at("names").at(0).at("failures").get<int>() >= 1);
    BOOST_TEST(state.at("names").at(0).at("addresses").empty());
}

BOOST_AUTO_TEST_CASE(a_session_s_own_dns_answers_open_what_a_wildcard_allows_for_that_session_only)
{
    if (!have_dnsmasq())
        return;
    auto mount = find_cgroup2_mount();
    BOOST_REQUIRE(mount.ok());
    LoaderRun loader(*mount, "answers");
    loader.prepare({"s1", "s2"});

    // The sessions and their resolver in a network namespace of their own:
    // dnsmasq on its 127.0.0.1:53.
    NetNs ns("awans" + unique_suffix().substr(0, 8));
    Dnsmasq dns(loader.dir, 53, ns.name());
    dns.hosts("127.0.0.5 web1.test.internal\n127.0.0.6 web1.other.internal\n127.0.0.8 web3.test.internal\n"
              "127.0.0.9 web4.test.internal\n");
    dns.start();
    write_file(loader.dir / "authwall.toml", "[dns]\nmin_ttl_sec = 1\ngrace_sec = 1\n");
    write_file(loader.dir / "policies.d" / "web.toml", "[policy.web.egress]\ndefault = \"deny\"\n"
                                                       "allow = [\"*.test.internal tcp 7101\", \"udp 53\", "
                                                       "\"loopback udp 7102\"]\n");
    loader.start();
    PinnedMaps maps = loader.installed("web");
    loader.open_session(maps, *mount, "s1", "web");
    loader.open_session(maps, *mount, "s2", "web");
    auto in = [&](const char* session, std::function<int()> probe) {
        return run_probe(loader.root / session, ns.name(), std::move(probe));
    };

    // Before any answer: refused; the control, from outside the sessions in
    // the same namespace, reaches the stack.
    BOOST_TEST(in("s1", [] { return tcp_connect("127.0.0.5", kPort); }) == EPERM);
    BOOST_TEST(run_probe("", ns.name(), [] { return tcp_connect("127.0.0.5", kPort); }) == ECONNREFUSED);
    // s1 asks for a name under the wildcard: the address is s1's.
    BOOST_TEST(in("s1", [] { return ask_then_connect("web1.test.internal", "127.0.0.5"); }) == ECONNREFUSED);
    BOOST_TEST(in("s1", [] { return tcp_connect("127.0.0.5", kPort); }) == ECONNREFUSED);
    // ... and s1's only: s2, under the same policy, never asked.
    BOOST_TEST(in("s2", [] { return tcp_connect("127.0.0.5", kPort); }) == EPERM);
    // The second answer to a socket connected to the server counts too
    // (the watch sees every datagram of a session whose policy has names).
    BOOST_TEST(in("s1", [] { return tcp_connect("127.0.0.9", kPort); }) == EPERM);
    BOOST_TEST(in("s1", [] {
                   if (int err = ask_dns_connected({"web3.test.internal", "web4.test.internal"}))
                       return 10000 + err;
                   return connect_soon("127.0.0.9", 1000);
               }) == ECONNREFUSED);
    // A name outside the wildcard opens nothing (waited for as long).
    BOOST_TEST(in("s1", [] { return ask_then_connect("web1.other.internal", "127.0.0.6"); }) == EPERM);
    // An answer nobody asked for opens nothing either: s1 forges one to
    // itself, from another server on loopback (127.0.0.3:53), as a
    // confined user can.
    BOOST_TEST(in("s1", [] {
                   int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                   sockaddr_in self{};
                   self.sin_family = AF_INET;
                   self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                   self.sin_port = htons(7102);
                   if (bind(fd, reinterpret_cast<sockaddr*>(&self), sizeof(self)) != 0)
                       return errno + 10000;
                   pid_t forger = fork();
                   if (forger == 0) {
                       unsigned char* msg = nullptr;
                       int length = 0;
                       ares_create_query("web2.test.internal", 1, 1, 7, 1, &msg, &length, 0);
                       std::vector<unsigned char> answer(msg, msg + length);
                       answer[2] |= 0x80;
                       answer[7] = 1;
                       answer.insert(answer.end(), {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 7});
                       int out = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                       sockaddr_in from{}, to = self;
                       from.sin_family = AF_INET;
                       from.sin_addr.s_addr = inet_addr("127.0.0.3");
                       from.sin_port = htons(53);
                       bind(out, reinterpret_cast<sockaddr*>(&from), sizeof(from));
                       sendto(out, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
                       _exit(0);
                   }
                   waitpid(forger, nullptr, 0);
                   unsigned char buf[512];
                   timeval tv{1, 0};
                   setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                   if (recv(fd, buf, sizeof(buf), 0) < 12)
                       return errno + 20000; // it must have arrived, to mean anything
                   return connect_soon("127.0.0.7", 1000);
               }) == EPERM);
    // Metrics: three answers used (web1, web3, web4: one address each),
    // one ignored (web1.other.internal); the forged one never reached the
    // loader (no query of s1's matched it).
    std::string metrics = loader.authctl("metrics");
    std::string text;
    BOOST_TEST(wait_until(
                   [&] {
                       text = sh_output(metrics);
                       return text.find("authwall_dns_session_answers_total{result=\"ignored\"} 1\n") !=
                              std::string::npos;
                   },
                   3000),
               text);
    BOOST_TEST(text.find("authwall_dns_session_answers_total{result=\"used\"} 3\n") != std::string::npos, text);
    BOOST_TEST(text.find("authwall_dns_session_grants_total 3\n") != std::string::npos, text);

    // The answer's TTL (2 s) and the grace (1 s) pass: refused again.
    BOOST_TEST(wait_until([&] { return in("s1", [] { return tcp_connect("127.0.0.5", kPort); }) == EPERM; }, 6000),
               "the answered address outlived its TTL and grace");
}

BOOST_AUTO_TEST_SUITE_END()
