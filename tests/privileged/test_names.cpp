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

#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint16_t kPort = 7101; // nothing listens: allowed = ECONNREFUSED, refused = EPERM

// dnsmasq answering from a hosts file with TTL 2, on 127.0.0.1:port.
class Dnsmasq {
  public:
    Dnsmasq(fs::path dir, uint16_t port) : dir_(std::move(dir)), port_(port) {}
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
            execl("/usr/sbin/dnsmasq", "dnsmasq", "--keep-in-foreground", "--listen-address=127.0.0.1",
                  "--bind-interfaces", "--no-resolv", "--no-hosts", "--local-ttl=2", "--log-queries", "--user=root",
                  "--pid-file=", port.c_str(), hosts.c_str(), log.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        std::string listening = "ss -Hlun 'sport = :" + std::to_string(port_) + "' | grep -q 127.0.0.1";
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
    pid_t pid_ = -1;
};

// The real loader on a private root, pin directory and run directory.
struct LoaderRun {
    fs::path root, pins, dir;
    pid_t pid = -1;
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

} // namespace

BOOST_AUTO_TEST_SUITE(names)

BOOST_AUTO_TEST_CASE(a_name_in_a_rule_follows_its_dns_answers_with_grace_and_staleness)
{
    if (::access("/usr/sbin/dnsmasq", X_OK) != 0) {
        BOOST_REQUIRE_MESSAGE(!privileged_required(), "dnsmasq (Debian's dnsmasq-base) is not installed");
        BOOST_TEST_MESSAGE("skipped: dnsmasq (Debian's dnsmasq-base) is not installed");
        return;
    }
    auto mount = find_cgroup2_mount();
    BOOST_REQUIRE(mount.ok());
    std::string suffix = unique_suffix();
    char tmpl[] = "/tmp/authwall-names-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    LoaderRun loader{mount->mount_point / ("authwall-names-" + suffix), "/sys/fs/bpf/authwall-names-" + suffix, tmpl};
    chmod(tmpl, 0755);
    fs::create_directory(loader.dir / "policies.d");
    chmod((loader.dir / "policies.d").c_str(), 0755);
    BOOST_REQUIRE(cgroup_create(loader.root).ok());
    BOOST_REQUIRE(cgroup_create(loader.root / "s1").ok());

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

    std::optional<PinnedMaps> maps;
    BOOST_REQUIRE_MESSAGE(wait_until(
                              [&] {
                                  auto m = PinnedMaps::open(loader.pins);
                                  if (!m || !m->active_policy_ids() || !m->active_policy_ids()->count("db"))
                                      return false;
                                  maps.emplace(std::move(m).value());
                                  return true;
                              },
                              5000),
                          "the loader did not install the policy: " << loader.log());
    SessionEntry e;
    e.policy_id = maps->active_policy_ids()->at("db");
    auto level = cgroup_level(*mount, loader.root / "s1");
    BOOST_REQUIRE(level.ok());
    BOOST_REQUIRE(maps->insert_session(*cgroup_id(loader.root / "s1"), *level, e).ok());
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
    std::string authctl = std::string(AUTHWALL_AUTHCTL_BIN) + " --pin-dir " + loader.pins.string() + " --run-dir " +
                          (loader.dir / "run").string() + " --config " + (loader.dir / "authwall.toml").string() +
                          " policy test --user nobody --json --to ";
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

    // The server dies: the last good answer stays past TTL + grace (5 s)
    // until it is stale (8 s after it came), logged, then is refused.
    dns.stop();
    auto died = Clock::now();
    BOOST_TEST(
        wait_until([&] { return loader.log().find("its last good addresses (127.0.0.3) stay") != std::string::npos; },
                   5000),
        loader.log());
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

BOOST_AUTO_TEST_SUITE_END()
