// SPDX-License-Identifier: Apache-2.0
// authwall-loader as a process: enforcement survives kill -9, a restart
// re-adopts the pins and swaps programs in place (never attaching twice),
// --uninstall removes everything, and bad environments get one clear sentence.
#include <boost/test/unit_test.hpp>

#include "core/dataplane/pins.h"
#include "tests/support.h"

#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <map>
#include <thread>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;

namespace {

const char* kPolicy = R"(
[policy.web]
[policy.web.egress]
default = "deny"
allow = ["127.0.0.1 tcp 8080"]
)";

class LoaderHarness {
  public:
    LoaderHarness()
    {
        auto mount = find_cgroup2_mount();
        BOOST_REQUIRE(mount.ok());
        mount_ = *mount;
        std::string suffix = unique_suffix();
        root_ = mount_.mount_point / ("authwall-ltest-" + suffix);
        pin_dir_ = "/sys/fs/bpf/authwall-ltest-" + suffix;
        char tmpl[] = "/tmp/authwall-ltest-XXXXXX";
        BOOST_REQUIRE(mkdtemp(tmpl));
        dir_ = tmpl;
        policy_ = dir_ / "policy.toml";
        std::ofstream(policy_) << kPolicy;
        chmod(policy_.c_str(), 0600);
        // An empty configuration of its own: never the host's
        // /etc/authwall/authwall.toml, nor its /run/authwall.
        std::ofstream(dir_ / "authwall.toml") << "";
        chmod((dir_ / "authwall.toml").c_str(), 0644);
        run("--uninstall");
        BOOST_REQUIRE(cgroup_create(root_).ok());
    }
    ~LoaderHarness()
    {
        if (daemon_ > 0) {
            kill(daemon_, SIGKILL);
            waitpid(daemon_, nullptr, 0);
        }
        run("--uninstall");
        cgroup_kill(root_).ok();
        for (int i = 0; i < 50 && !cgroup_remove_tree(root_).ok(); ++i)
            usleep(20000);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string args(const fs::path& run_dir = {}) const
    {
        return "--config " + (dir_ / "authwall.toml").string() + " --run-dir " +
               (run_dir.empty() ? dir_ / "run" : run_dir).string() + " --pin-dir " + pin_dir_.string() +
               " --cgroup-root " + root_.string() + " --policy " + policy_.string();
    }
    // Runs the loader in the foreground; returns its exit status, output in `out`.
    int run(const std::string& extra, std::string* out = nullptr, const fs::path& run_dir = {})
    {
        std::string cmd =
            std::string(AUTHWALL_LOADER_BIN) + " " + args(run_dir) + " " + extra + " 2>&1; echo \"rc=$?\"";
        std::string text = sh_output(cmd);
        BOOST_TEST_MESSAGE("loader " << extra << ": " << text);
        auto at = text.rfind("rc=");
        if (out)
            *out = text.substr(0, at);
        return at == std::string::npos ? -1 : std::stoi(text.substr(at + 3));
    }
    void start_daemon()
    {
        daemon_ = fork();
        BOOST_REQUIRE_GE(daemon_, 0);
        if (daemon_ == 0) {
            std::string cmd = std::string("exec ") + AUTHWALL_LOADER_BIN + " " + args();
            execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        for (int i = 0; i < 100; ++i) {
            if (auto maps = PinnedMaps::open(pin_dir_)) {
                auto ids = maps->active_policy_ids();
                if (ids && ids->count("web"))
                    return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        BOOST_FAIL("loader did not become ready within 5 s");
    }
    void kill_daemon()
    {
        BOOST_REQUIRE_EQUAL(kill(daemon_, SIGKILL), 0);
        int status = 0;
        waitpid(daemon_, &status, 0);
        BOOST_TEST(WIFSIGNALED(status));
        daemon_ = -1;
    }
    pid_t daemon() const { return daemon_; }
    const fs::path& policy_file() const { return policy_; }
    uint64_t open_session(const std::string& name)
    {
        auto maps = PinnedMaps::open(pin_dir_);
        BOOST_REQUIRE(maps.ok());
        auto p = root_ / name;
        BOOST_REQUIRE(cgroup_create(p).ok());
        return open_test_session(*maps, mount_, dir_ / "run", p, "web");
    }
    // program name → (program id, attach count) at the root, from bpftool.
    std::map<std::string, std::pair<int, int>> attached()
    {
        std::map<std::string, std::pair<int, int>> out;
        auto text = sh_output("bpftool -j cgroup show " + root_.string());
        if (text.find_first_not_of(" \n\t") == std::string::npos)
            return out;
        auto j = nlohmann::json::parse(text);
        for (const auto& p : j) {
            auto& slot = out[p.at("name").get<std::string>()];
            slot.first = p.at("id").get<int>();
            slot.second++;
        }
        return out;
    }

    const fs::path& root() const { return root_; }
    const fs::path& pin_dir() const { return pin_dir_; }
    const fs::path& policy() const { return policy_; }
    const fs::path& dir() const { return dir_; }
    void write_config(const std::string& toml) { std::ofstream(dir_ / "authwall.toml") << toml; }

  private:
    CgroupMount mount_;
    fs::path root_, pin_dir_, dir_, policy_;
    pid_t daemon_ = -1;
};

int denied_connect(const fs::path& cgroup)
{
    return run_probe(cgroup, "new", [] { return tcp_connect("127.0.0.2", 8080); });
}

} // namespace

BOOST_AUTO_TEST_SUITE(loader)

BOOST_AUTO_TEST_CASE(kill_9_keeps_enforcement_and_restart_readopts)
{
    LoaderHarness h;
    h.start_daemon();
    auto id = h.open_session("s1");
    BOOST_TEST(denied_connect(h.root() / "s1") == EPERM);
    auto before = h.attached();

    h.kill_daemon();
    BOOST_TEST(denied_connect(h.root() / "s1") == EPERM);

    BOOST_REQUIRE_EQUAL(h.run("--once"), 0);
    auto maps = PinnedMaps::open(h.pin_dir());
    BOOST_REQUIRE(maps.ok());
    BOOST_TEST(maps->lookup_session(id)->has_value());
    BOOST_TEST(denied_connect(h.root() / "s1") == EPERM);

    auto after = h.attached();
    BOOST_TEST(after.size() == before.size());
    BOOST_TEST(after.size() >= 9u);
    for (const auto& [name, slot] : after) {
        BOOST_TEST_CONTEXT(name)
        {
            BOOST_TEST(slot.second == 1); // attached once, never twice
            BOOST_REQUIRE(before.count(name));
            BOOST_TEST(slot.first != before[name].first); // a new program, swapped in place
        }
    }
}

// A second loader on the same installation is refused, naming the first,
// and leaves the data plane as it was; once the first stops, it runs.
BOOST_AUTO_TEST_CASE(a_second_loader_is_refused_while_one_runs)
{
    LoaderHarness h;
    h.start_daemon();
    auto id = h.open_session("s1");
    std::string out;
    BOOST_TEST(h.run("--once", &out) == 1);
    BOOST_TEST(out.find("another instance runs already (pid " + std::to_string(h.daemon())) != std::string::npos, out);
    // Another run directory is not another installation: the pin directory
    // is locked too.
    BOOST_TEST(h.run("--once", &out, h.dir() / "run2") == 1);
    BOOST_TEST(out.find("another instance uses this pin directory") != std::string::npos, out);
    BOOST_TEST(PinnedMaps::open(h.pin_dir())->lookup_session(id)->has_value());
    BOOST_TEST(denied_connect(h.root() / "s1") == EPERM);
    h.kill_daemon();
    BOOST_TEST(h.run("--once", &out) == 0, out);
}

// The command-line conventions of every authwall program: --version, and
// status 2 for a command line it refuses.
BOOST_AUTO_TEST_CASE(daemons_answer_version_and_refuse_bad_usage_with_2)
{
    for (const std::string bin : {AUTHWALL_LOADER_BIN, AUTHWALL_CGROUPD_BIN}) {
        BOOST_TEST_CONTEXT(bin)
        {
            auto name = fs::path(bin).filename().string();
            auto out = sh_output(bin + " --version 2>&1; echo rc=$?");
            BOOST_TEST(out.find(name + " ") == 0u, out);
            BOOST_TEST(out.find("rc=0") != std::string::npos, out);
            out = sh_output(bin + " --no-such-flag 2>&1; echo rc=$?");
            BOOST_TEST(out.find("rc=2") != std::string::npos, out);
            out = sh_output(bin + " --seccomp sometimes 2>&1; echo rc=$?");
            BOOST_TEST(out.find("rc=2") != std::string::npos, out);
        }
    }
}

BOOST_AUTO_TEST_CASE(daemon_confines_itself_after_setup_and_still_reloads)
{
    LoaderHarness h;
    h.start_daemon();
    // CAP_SYS_RESOURCE (24), CAP_DAC_READ_SEARCH (2), CAP_SYS_MODULE (16),
    // CAP_SYS_PTRACE (19) and CAP_SETUID (7) are gone; a seccomp filter is on.
    BOOST_TEST(wait_until([&] { return is_confined(h.daemon(), {24, 2, 16, 19, 7}); }, 3000));
    BOOST_TEST_MESSAGE("CapEff " << proc_status_field(h.daemon(), "CapEff"));
    // A reload under the filter: a new policy set goes in force, the
    // daemon lives on (a call outside the allowlist would have killed it).
    std::ofstream(h.policy_file()) << kPolicy << "\n[policy.added]\n[policy.added.egress]\ndefault = \"deny\"\n";
    BOOST_REQUIRE_EQUAL(kill(h.daemon(), SIGHUP), 0);
    BOOST_TEST(wait_until(
        [&] {
            auto maps = PinnedMaps::open(h.pin_dir());
            if (!maps)
                return false;
            auto ids = maps->active_policy_ids();
            return ids && ids->count("added") > 0;
        },
        5000));
    h.open_session("s1");
    BOOST_TEST(denied_connect(h.root() / "s1") == EPERM); // its ring buffer event is read and logged
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    BOOST_TEST(proc_status_field(h.daemon(), "State").rfind("Z", 0) != 0);
    BOOST_TEST(kill(h.daemon(), 0) == 0);
}

// What the loader writes for a decision says who, what and why. In audit
// mode (here the configuration's override) the connect passes and the log
// names the policy, the rule that would have refused it (file:line:column
// and its text) and the process; back in enforce mode it is refused.
BOOST_AUTO_TEST_CASE(audit_events_name_the_policy_the_rule_and_the_process)
{
    LoaderHarness h;
    auto log = h.dir() / "events.jsonl";
    h.write_config("mode = \"audit\"\nevent_log = \"" + log.string() + "\"\n");
    std::ofstream(h.policy()) << "[policy.web]\n[policy.web.egress]\ndefault = \"deny\"\n"
                                 "allow = [\"127.0.0.1 tcp 8080\"]\ndeny = [\"127.0.0.2 tcp 8080\"]\n";
    h.start_daemon();
    h.open_session("s1");
    BOOST_TEST(denied_connect(h.root() / "s1") == ECONNREFUSED); // passed; nothing listens there

    nlohmann::json event;
    BOOST_TEST(wait_until(
        [&] {
            std::ifstream in(log);
            std::string line;
            while (std::getline(in, line))
                if (auto j = nlohmann::json::parse(line, nullptr, false);
                    !j.is_discarded() && j.value("event", "") == "audit")
                    event = j;
            return !event.is_null();
        },
        5000));
    BOOST_TEST_MESSAGE(event.dump());
    BOOST_TEST(event.value("verdict", "") == "audit");
    BOOST_TEST(event.value("policy", "") == "web");
    BOOST_TEST(event.value("rule", 0) == 2);
    BOOST_TEST(event.value("rule_source", "") == h.policy().string() + ":5:9");
    BOOST_TEST(event.value("rule_text", "") == "127.0.0.2 tcp 8080");
    BOOST_TEST(event.value("reason", "") == "rule");
    BOOST_TEST(event.value("direction", "") == "egress");
    BOOST_TEST(event.value("protocol", "") == "tcp");
    BOOST_TEST(event.value("address", "") == "127.0.0.2");
    BOOST_TEST(event.value("port", 0) == 8080);
    BOOST_TEST(!event.value("process", "").empty());
    BOOST_TEST(event.value("pid", 0) > 0);

    // The override gone, the policy's own mode (enforce) holds after a reload.
    h.write_config("event_log = \"" + log.string() + "\"\n");
    BOOST_REQUIRE_EQUAL(kill(h.daemon(), SIGHUP), 0);
    BOOST_TEST(wait_until([&] { return denied_connect(h.root() / "s1") == EPERM; }, 5000));
}

BOOST_AUTO_TEST_CASE(restart_twice_attaches_once)
{
    LoaderHarness h;
    BOOST_REQUIRE_EQUAL(h.run("--once"), 0);
    BOOST_REQUIRE_EQUAL(h.run("--once"), 0);
    BOOST_REQUIRE_EQUAL(h.run("--once"), 0);
    for (const auto& [name, slot] : h.attached())
        BOOST_TEST_CONTEXT(name)
        {
            BOOST_TEST(slot.second == 1);
        }
}

BOOST_AUTO_TEST_CASE(uninstall_detaches_and_unpins_everything)
{
    LoaderHarness h;
    BOOST_REQUIRE_EQUAL(h.run("--once"), 0);
    h.open_session("s1");
    BOOST_TEST(denied_connect(h.root() / "s1") == EPERM);
    BOOST_REQUIRE_EQUAL(h.run("--uninstall"), 0);
    BOOST_TEST(!fs::exists(h.pin_dir()));
    BOOST_TEST(h.attached().empty());
    BOOST_TEST(denied_connect(h.root() / "s1") == ECONNREFUSED);
}

BOOST_AUTO_TEST_CASE(bad_policy_keeps_the_policy_in_force)
{
    LoaderHarness h;
    BOOST_REQUIRE_EQUAL(h.run("--once"), 0);
    h.open_session("s1");
    std::ofstream(h.policy()) << "[policy.web.egress]\ndefault = \"deny\"\nallow = [\"127.0.0.1 tcp 99999\"]\n";
    std::string out;
    BOOST_TEST(h.run("--once", &out) == 1);
    BOOST_TEST(out.find(h.policy().string() + ":3:") != std::string::npos);
    BOOST_TEST(out.find("'99999' is not a port (1-65535)") != std::string::npos);
    // The earlier generation still holds: 127.0.0.2 denied, 127.0.0.1:8080 allowed.
    BOOST_TEST(denied_connect(h.root() / "s1") == EPERM);
}

BOOST_AUTO_TEST_CASE(bad_environment_gets_one_clear_sentence)
{
    LoaderHarness h; // a throwaway root, so nothing can attach at the host's
    char tmpl[] = "/tmp/authwall-env-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    std::string tmp = tmpl;
    auto loader = [](const std::string& args) {
        std::string text = sh_output(std::string(AUTHWALL_LOADER_BIN) + " " + args + " --once 2>&1; echo rc=$?");
        BOOST_TEST_MESSAGE(text);
        return text;
    };
    std::string policy = " --policy " + h.policy().string() + " --config " +
                         (h.policy().parent_path() / "authwall.toml").string() + " --run-dir " + tmp + "/run";

    auto out = loader("--pin-dir " + tmp + "/pins --cgroup-root " + h.root().string() + policy);
    BOOST_TEST(out.find("is not on a bpf filesystem; put it under /sys/fs/bpf or mount one") != std::string::npos);
    BOOST_TEST(out.find("rc=1") != std::string::npos);
    BOOST_TEST(!fs::exists(tmp + "/pins"));

    out = loader("--pin-dir " + h.pin_dir().string() + " --cgroup-root " + tmp + policy);
    BOOST_TEST(out.find("use enforcement root " + tmp + ": is not a cgroup2 directory") != std::string::npos);
    BOOST_TEST(out.find("rc=1") != std::string::npos);

    // Not root: one sentence saying so, not an errno dump.
    out = sh_output("setpriv --reuid=65534 --regid=65534 --clear-groups " + std::string(AUTHWALL_LOADER_BIN) +
                    " --pin-dir " + h.pin_dir().string() + " --cgroup-root " + h.root().string() + policy +
                    " --once 2>&1; echo rc=$?");
    BOOST_TEST_MESSAGE(out);
    BOOST_TEST(out.find("authwall needs root") != std::string::npos);
    BOOST_TEST(out.find("rc=1") != std::string::npos);
    BOOST_TEST(!fs::exists(h.pin_dir()));

    std::error_code ec;
    fs::remove_all(tmp, ec);
}

BOOST_AUTO_TEST_SUITE_END()
