// SPDX-License-Identifier: Apache-2.0
// Policy reload: atomic generation swaps under load, and the loader daemon
// reloading on SIGHUP and on file changes, keeping the old policy when the
// new files are bad.
#include <boost/test/unit_test.hpp>

#include "core/dataplane/pins.h"
#include "tests/support.h"

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <fstream>
#include <thread>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;

namespace {

// Both allow 7001 and deny 7002; they disagree on 7003 and 7004.
const char* kPolicyA = R"(
[policy.flip.egress]
default = "deny"
allow = ["127.0.0.1 tcp 7001", "127.0.0.1 tcp 7003"]
deny = ["127.0.0.1 tcp 7004"]
)";
const char* kPolicyB = R"(
[policy.flip.egress]
default = "allow"
allow = ["127.0.0.1 tcp 7004"]
deny = ["127.0.0.1 tcp 7002", "127.0.0.1 tcp 7003"]
)";

struct FloodResult {
    // [port index][0 = refused by the stack (allowed), 1 = EPERM, 2 = other]
    std::array<std::array<uint32_t, 3>, 4> outcomes{};
};

} // namespace

BOOST_AUTO_TEST_SUITE(reload)

BOOST_AUTO_TEST_CASE(connect_flood_during_100_reloads_never_sees_a_mix_or_a_gap)
{
    Sandbox box(kPolicyA);
    box.open_session("s1", "flip");
    auto s1 = box.root() / "s1";

    int results[2], stop[2];
    BOOST_REQUIRE_EQUAL(pipe(results), 0);
    BOOST_REQUIRE_EQUAL(pipe(stop), 0);
    pid_t flooder = fork();
    BOOST_REQUIRE_GE(flooder, 0);
    if (flooder == 0) {
        ::close(results[0]);
        ::close(stop[1]);
        int rc = run_probe(s1, "new", [&] {
            FloodResult r;
            pollfd p{stop[0], POLLIN, 0};
            while (poll(&p, 1, 0) == 0) {
                for (int i = 0; i < 4; ++i) {
                    int err = tcp_connect("127.0.0.1", static_cast<uint16_t>(7001 + i));
                    r.outcomes[i][err == ECONNREFUSED ? 0 : err == EPERM ? 1 : 2]++;
                }
            }
            (void)!::write(results[1], &r, sizeof(r));
            return 0;
        });
        _exit(rc == 0 ? 0 : 1);
    }
    ::close(results[1]);
    ::close(stop[0]);

    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (int i = 0; i < 100; ++i)
        box.install_policies(i % 2 == 0 ? kPolicyB : kPolicyA);
    ::close(stop[1]);

    FloodResult r;
    BOOST_REQUIRE_EQUAL(::read(results[0], &r, sizeof(r)), static_cast<ssize_t>(sizeof(r)));
    int status = 0;
    waitpid(flooder, &status, 0);
    BOOST_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    uint32_t total = r.outcomes[0][0] + r.outcomes[0][1] + r.outcomes[0][2];
    BOOST_TEST_MESSAGE("connects per port during the reloads: " << total);
    BOOST_TEST(total > 100u);
    // 7001: both allow — never refused by policy (no unfiltered or empty moment either way).
    BOOST_TEST(r.outcomes[0][1] == 0u);
    // 7002: both deny — never through.
    BOOST_TEST(r.outcomes[1][0] == 0u);
    // 7003/7004: either answer, but nothing else.
    for (int i = 0; i < 4; ++i)
        BOOST_TEST_CONTEXT("port " << 7001 + i)
        {
            BOOST_TEST(r.outcomes[i][2] == 0u);
        }
    // Both generations were really in force at some point.
    BOOST_TEST(r.outcomes[2][0] > 0u);
    BOOST_TEST(r.outcomes[2][1] > 0u);
}

BOOST_AUTO_TEST_CASE(loader_reloads_on_file_change_and_sighup_and_keeps_policy_on_error)
{
    auto mount = find_cgroup2_mount();
    BOOST_REQUIRE(mount.ok());
    std::string suffix = unique_suffix();
    fs::path root = mount->mount_point / ("authwall-rtest-" + suffix);
    fs::path pins = "/sys/fs/bpf/authwall-rtest-" + suffix;
    char tmpl[] = "/tmp/authwall-rtest-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    fs::path dir = tmpl;
    fs::path policies = dir / "policies.d";
    fs::create_directory(policies);
    chmod(policies.c_str(), 0755);
    chmod(dir.c_str(), 0755);
    auto write_policy = [&](const std::string& text) {
        // Atomically, as an operator's tooling would (and as editors do).
        fs::path tmp = policies / ".flip.toml.tmp";
        std::ofstream(tmp) << text;
        chmod(tmp.c_str(), 0644);
        fs::rename(tmp, policies / "flip.toml");
    };
    write_policy(kPolicyA);
    BOOST_REQUIRE(cgroup_create(root).ok());
    BOOST_REQUIRE(cgroup_create(root / "s1").ok());

    pid_t loader = fork();
    if (loader == 0) {
        std::string cmd = std::string("exec ") + AUTHWALL_LOADER_BIN + " --pin-dir " + pins.string() +
                          " --cgroup-root " + root.string() + " --policy " + policies.string() + " --run-dir " +
                          (dir / "run").string() + " --config " + (dir / "none.toml").string() +
                          " --reload-delay-ms 100 2>" + (dir / "loader.log").string();
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    struct Cleanup {
        pid_t pid;
        fs::path root, pins, dir;
        ~Cleanup()
        {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
            uninstall_datapath(pins).ok();
            cgroup_remove_tree(root).ok();
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } cleanup{loader, root, pins, dir};

    // --config names a file that does not exist: the loader must refuse.
    BOOST_TEST(wait_until([&] { return waitpid(loader, nullptr, WNOHANG) == loader; }, 3000));
    auto log = sh_output("cat " + (dir / "loader.log").string());
    BOOST_TEST(log.find("none.toml: No such file or directory") != std::string::npos);

    std::ofstream(dir / "authwall.toml") << "unmatched = \"deny\"\n";
    chmod((dir / "authwall.toml").c_str(), 0644);
    loader = fork();
    if (loader == 0) {
        std::string cmd = std::string("exec ") + AUTHWALL_LOADER_BIN + " --pin-dir " + pins.string() +
                          " --cgroup-root " + root.string() + " --policy " + policies.string() + " --run-dir " +
                          (dir / "run").string() + " --config " + (dir / "authwall.toml").string() +
                          " --reload-delay-ms 100 2>" + (dir / "loader.log").string();
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    cleanup.pid = loader;

    std::optional<PinnedMaps> maps;
    BOOST_REQUIRE(wait_until(
        [&] {
            auto m = PinnedMaps::open(pins);
            if (!m)
                return false;
            auto ids = m->active_policy_ids();
            if (!ids || !ids->count("flip"))
                return false;
            maps.emplace(std::move(m).value());
            return true;
        },
        5000));
    open_test_session(*maps, *mount, dir / "run", root / "s1", "flip");
    auto port7003 = [&] { return run_probe(root / "s1", "new", [] { return tcp_connect("127.0.0.1", 7003); }); };
    BOOST_TEST(port7003() == ECONNREFUSED); // policy A allows 7003

    // A file change is picked up without a signal.
    write_policy(kPolicyB);
    BOOST_TEST(wait_until([&] { return port7003() == EPERM; }, 5000));

    // A bad file: logged with its position, and B stays in force.
    write_policy("[policy.flip.egress]\ndefault = \"deny\"\nallow = [\"127.0.0.1 tcp 7003-\"]\n");
    BOOST_TEST(wait_until(
        [&] { return sh_output("cat " + (dir / "loader.log").string()).find("flip.toml:3:") != std::string::npos; },
        5000));
    BOOST_TEST(port7003() == EPERM);
    log = sh_output("cat " + (dir / "loader.log").string());
    BOOST_TEST(log.find("the policies in force are kept") != std::string::npos);

    // SIGHUP reloads too (the configuration as well: unmatched = deny here).
    write_policy(kPolicyA);
    BOOST_TEST(wait_until([&] { return port7003() == ECONNREFUSED; }, 5000));
    BOOST_REQUIRE_EQUAL(kill(loader, SIGHUP), 0);
    BOOST_TEST(wait_until(
        [&] {
            auto text = sh_output("cat " + (dir / "loader.log").string());
            auto hup = text.find("SIGHUP, reloading policies");
            return hup != std::string::npos && text.find("in force", hup) != std::string::npos;
        },
        5000));

    // Removing the session's policy: it falls back to unmatched (deny).
    std::ofstream(policies / "other.toml") << "[policy.other]\n";
    chmod((policies / "other.toml").c_str(), 0644);
    fs::remove(policies / "flip.toml");
    BOOST_TEST(wait_until([&] { return port7003() == EPERM; }, 5000));
    BOOST_TEST(run_probe(root / "s1", "new", [] { return tcp_connect("127.0.0.1", 7001); }) == EPERM);
}

BOOST_AUTO_TEST_CASE(authctl_policy_show_reads_the_kernel_and_check_validates)
{
    Sandbox box(kPolicyA);
    std::string authctl = std::string(AUTHWALL_AUTHCTL_BIN) + " --pin-dir " + box.pin_dir().string();
    auto text = sh_output(authctl + " policy show flip --json");
    auto j = nlohmann::json::parse(text);
    BOOST_REQUIRE_EQUAL(j.at("policies").size(), 1u);
    const auto& p = j.at("policies")[0];
    BOOST_TEST(p.at("name") == "flip");
    BOOST_TEST(p.at("egress").at("default") == "deny");
    auto rules = p.at("egress").at("rules");
    BOOST_REQUIRE_EQUAL(rules.size(), 3u);
    BOOST_TEST(rules[0].at("verdict") == "deny");
    BOOST_TEST(rules[0].at("rule") == "127.0.0.1 tcp 7004");
    BOOST_TEST(rules[1].at("rule") == "127.0.0.1 tcp 7001");
    BOOST_TEST(rules[2].at("rule") == "127.0.0.1 tcp 7003");

    box.install_policies(kPolicyB);
    j = nlohmann::json::parse(sh_output(authctl + " policy show flip --json"));
    BOOST_TEST(j.at("policies")[0].at("egress").at("default") == "allow");

    BOOST_TEST(sh(authctl + " policy show nosuch >/dev/null 2>&1") == 1);

    char tmpl[] = "/tmp/authwall-check-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    std::string good = std::string(tmpl) + "/good.toml", bad = std::string(tmpl) + "/bad.toml";
    std::ofstream(good) << kPolicyA;
    std::ofstream(bad) << "[policy.x.egress]\nallow = [\"10.0.0.0/8 udp 0\"]\n";
    chmod(good.c_str(), 0644);
    chmod(bad.c_str(), 0644);
    BOOST_TEST(sh(std::string(AUTHWALL_AUTHCTL_BIN) + " policy check " + good + " >/dev/null") == 0);
    auto out = sh_output(std::string(AUTHWALL_AUTHCTL_BIN) + " policy check " + bad + " 2>&1; echo rc=$?");
    BOOST_TEST(out.find(bad + ":2:26: in rule \"10.0.0.0/8 udp 0\": '0' is not a port (1-65535)") != std::string::npos);
    BOOST_TEST(out.find("rc=1") != std::string::npos);
    chmod(good.c_str(), 0666);
    out = sh_output(std::string(AUTHWALL_AUTHCTL_BIN) + " policy check " + good + " 2>&1; echo rc=$?");
    BOOST_TEST(out.find("is writable by group or others") != std::string::npos);
    BOOST_TEST(out.find("rc=1") != std::string::npos);
    std::error_code ec;
    fs::remove_all(tmpl, ec);
}

BOOST_AUTO_TEST_SUITE_END()
