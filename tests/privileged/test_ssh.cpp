// SPDX-License-Identifier: Apache-2.0
// End to end: a real sshd on a loopback port, with UsePAM and a PAM stack
// that ends in the build-tree pam_authwall.so. sshd runs in a private mount
// namespace in which /etc/pam.d is a directory of the test, so the host's
// PAM configuration is never touched. Logins are real password logins.
#include <boost/test/unit_test.hpp>

#include "tests/login_world.h"
#include "tests/support.h"

#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <thread>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;

namespace {

const char* kPassword = "Aw-test-pass-1";

const char* kPolicies = R"(
[policy.ssh-users]
priority = 10
match.services = ["sshd"]
[policy.ssh-users.egress]
default = "deny"
allow = ["127.0.0.1 tcp 7788"]
[policy.ssh-users.ingress]
from_rhost_only = true
)";

class Sshd {
  public:
    // `pam_args` go on the module line; `use_dns`: sshd resolves the
    // client's address, and PAM_RHOST is a host name.
    explicit Sshd(const LoginWorld& w, const std::string& pam_args = "", bool use_dns = false) : w_(w)
    {
        port_ = static_cast<int>(20000 + getpid() % 20000);
        fs::path dir = w.dir();
        fs::create_directories(dir / "sshd-pam.d");
        auto write = [](const fs::path& p, const std::string& text) {
            std::ofstream(p) << text;
            chmod(p.c_str(), 0644);
        };
        write(dir / "sshd-pam.d" / "sshd", "auth required pam_unix.so\naccount required pam_unix.so\n"
                                           "session required " +
                                               std::string(AUTHWALL_PAM_MODULE) + " config=" + w.config().string() +
                                               " " + pam_args + "\n");
        write(dir / "sshd-pam.d" / "other", "auth required pam_deny.so\naccount required pam_deny.so\n"
                                            "session required pam_deny.so\n");
        if (!fs::exists(dir / "hostkey")) // a second sshd of the world keeps the first one's key
            BOOST_REQUIRE_EQUAL(sh("ssh-keygen -q -t ed25519 -N '' -f " + (dir / "hostkey").string()), 0);
        write(dir / "sshd_config", "Port " + std::to_string(port_) + "\nListenAddress 127.0.0.1\nHostKey " +
                                       (dir / "hostkey").string() + "\nPidFile " + (dir / "sshd.pid").string() +
                                       "\nUsePAM yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
                                       "PubkeyAuthentication no\nPermitRootLogin no\nStrictModes no\nUseDNS " +
                                       std::string(use_dns ? "yes" : "no") +
                                       "\n"
                                       "MaxStartups 200\nMaxSessions 200\nPrintMotd no\nAllowUsers " +
                                       w.user() + "\nLogLevel VERBOSE\n");
        if (!fs::exists("/run/sshd"))
            fs::create_directory("/run/sshd"); // the package's own privilege separation directory
        pid_ = fork();
        BOOST_REQUIRE_GE(pid_, 0);
        if (pid_ == 0) {
            std::string cmd = "mount --bind " + (dir / "sshd-pam.d").string() +
                              " /etc/pam.d && exec /usr/sbin/sshd -D -f " + (dir / "sshd_config").string() + " -E " +
                              (dir / "sshd.log").string();
            execlp("unshare", "unshare", "--mount", "--propagation", "private", "sh", "-c", cmd.c_str(),
                   static_cast<char*>(nullptr));
            _exit(127);
        }
        BOOST_REQUIRE_MESSAGE(
            wait_until([&] { return sh("ss -ltn | grep -q '127.0.0.1:" + std::to_string(port_) + " '") == 0; }, 10000),
            "sshd did not start: " + log());
    }
    ~Sshd()
    {
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
    }
    std::string log() const { return sh_output("cat " + (w_.dir() / "sshd.log").string() + " 2>&1"); }
    // The ssh command line for a password login running `command`.
    std::string ssh(const std::string& command) const
    {
        return std::string("sshpass -p ") + kPassword + " ssh -p " + std::to_string(port_) +
               " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
               " -o PreferredAuthentications=password -o PubkeyAuthentication=no " +
               w_.user() + "@127.0.0.1 '" + command + "'";
    }

  private:
    const LoginWorld& w_;
    int port_ = 0;
    pid_t pid_ = -1;
};

// Inside the session: a denied and an allowed connect, then the cgroup.
const char* kSessionProbe = "bash -c \"exec 3<>/dev/tcp/127.0.0.2/7788\" 2>&1 | sed s/^/denied:/; "
                            "bash -c \"exec 3<>/dev/tcp/127.0.0.1/7788 && echo allowed:connected\" 2>&1; "
                            "sed s/^/cgroup:/ /proc/self/cgroup";

} // namespace

BOOST_AUTO_TEST_SUITE(ssh)

BOOST_AUTO_TEST_CASE(password_login_is_enforced_and_cleaned_up_at_logout)
{
    LoginWorld w(kPolicies);
    w.set_password(kPassword);
    Sshd sshd(w);
    int listener = tcp_listen("127.0.0.1", 7788);
    BOOST_REQUIRE_GE(listener, 0);

    fs::path out = w.dir() / "ssh.out";
    pid_t client = fork();
    if (client == 0) {
        std::string cmd =
            sshd.ssh(std::string(kSessionProbe) + "; echo READY; sleep 4") + " > " + out.string() + " 2>&1";
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    bool ready = wait_until([&] { return sh_output("cat " + out.string()).find("READY") != std::string::npos; }, 20000);
    std::string text = sh_output("cat " + out.string());
    BOOST_TEST_MESSAGE("session output:\n" << text);
    if (!ready)
        BOOST_TEST_MESSAGE("sshd log:\n" << sshd.log());
    BOOST_REQUIRE(ready);
    BOOST_TEST(text.find("denied:bash: connect: Operation not permitted") != std::string::npos);
    BOOST_TEST(text.find("allowed:connected") != std::string::npos);
    BOOST_TEST(text.find("cgroup:0::/" + w.root().filename().string() + "/authwall/" + w.user() + "-") !=
               std::string::npos);

    // While logged in: authctl shows the session, enforced, with its address.
    auto json = nlohmann::json::parse(
        sh_output(std::string(AUTHWALL_AUTHCTL_BIN) + " --pin-dir " + w.pin_dir().string() + " sessions --json"));
    BOOST_REQUIRE_EQUAL(json.at("sessions").size(), 1u);
    const auto& s = json.at("sessions")[0];
    BOOST_TEST(s.at("user") == w.user());
    BOOST_TEST(s.at("policy") == "ssh-users");
    BOOST_TEST(s.at("rhost") == "127.0.0.1");
    BOOST_TEST(s.at("enforced") == true);
    BOOST_TEST(s.at("denied").get<int>() >= 1);
    BOOST_REQUIRE_EQUAL(w.records().size(), 1u);

    int status = 0;
    waitpid(client, &status, 0);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    // Logout: entry, record and cgroup go.
    BOOST_TEST(wait_until([&] { return w.records().empty(); }, 10000));
    BOOST_TEST(wait_until([&] { return w.maps().list_sessions()->empty(); }, 5000));
    BOOST_TEST(wait_until([&] { return w.session_cgroups().empty(); }, 5000));
    // The close event is written last, after the record is gone.
    BOOST_TEST(wait_until([&] { return w.events().size() >= 2; }, 5000));
    auto events = w.events();
    BOOST_REQUIRE_EQUAL(events.size(), 2u);
    BOOST_TEST(events[0].find("\"event\":\"open\"") != std::string::npos);
    BOOST_TEST(events[1].find("\"event\":\"close\"") != std::string::npos);
    ::close(listener);
}

// rhost=kernel through sshd: the module runs in sshd's privileged monitor,
// which holds the client's connection. With UseDNS, PAM_RHOST is a host
// name, which rhost=lax can only drop; the kernel's peer is the address.
BOOST_AUTO_TEST_CASE(rhost_kernel_login_gets_the_address_of_its_connection)
{
    if (sh_output("getent hosts 127.0.0.1").empty()) {
        BOOST_TEST_MESSAGE("skipped: 127.0.0.1 has no name here, PAM_RHOST would be the address anyway");
        return;
    }
    LoginWorld w(kPolicies);
    w.set_password(kPassword);
    // The control first: rhost=lax has only the name, and no address.
    for (std::string mode : {"rhost=lax", "rhost=kernel"}) {
        BOOST_TEST_CONTEXT(mode)
        {
            Sshd sshd(w, mode, true);
            fs::path out = w.dir() / "ssh.out";
            Background client(sshd.ssh("echo READY; sleep 3") + " > " + out.string() + " 2>&1");
            bool ready =
                wait_until([&] { return sh_output("cat " + out.string()).find("READY") != std::string::npos; }, 20000);
            if (!ready)
                BOOST_TEST_MESSAGE("sshd log:\n" << sshd.log());
            BOOST_REQUIRE(ready);
            // sshd's monitor opens the PAM session beside the child that
            // runs the command: the record may land just after READY.
            std::vector<SessionRecord> records;
            wait_until(
                [&] {
                    records = w.records();
                    return !records.empty();
                },
                5000);
            BOOST_REQUIRE_EQUAL(records.size(), 1u);
            std::string want = mode == "rhost=kernel" ? "127.0.0.1" : "(none)";
            BOOST_TEST(records[0].rhost.value_or("(none)") == want);
            auto entry = w.maps().lookup_session(records[0].id);
            BOOST_REQUIRE(entry.ok() && entry->has_value());
            // What from_rhost_only lets in.
            BOOST_TEST(((*entry)->rhost ? (*entry)->rhost->str() : "(none)") == want);
            int status = 0;
            BOOST_TEST(wait_until([&] { return client.exited(&status); }, 20000));
            BOOST_TEST(wait_until([&] { return w.records().empty(); }, 10000));
        }
    }
}

BOOST_AUTO_TEST_CASE(fifty_concurrent_logins_are_all_enforced_and_cleaned_up)
{
    LoginWorld w(kPolicies);
    w.set_password(kPassword);
    Sshd sshd(w);
    constexpr int kLogins = 50;
    std::vector<pid_t> clients;
    for (int i = 0; i < kLogins; ++i) {
        fs::path out = w.dir() / ("ssh-" + std::to_string(i) + ".out");
        pid_t c = fork();
        if (c == 0) {
            std::string cmd = sshd.ssh(std::string(kSessionProbe) + "; sleep 2") + " > " + out.string() + " 2>&1";
            execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        clients.push_back(c);
    }
    // At some moment many of them are open at once, each its own session.
    size_t most = 0;
    wait_until(
        [&] {
            auto sessions = w.maps().list_sessions();
            most = std::max(most, sessions ? sessions->size() : 0);
            return most >= kLogins;
        },
        30000);
    BOOST_TEST_MESSAGE("most sessions open at once: " << most);
    BOOST_TEST(most >= 10u);

    int ok = 0;
    for (auto c : clients) {
        int status = 0;
        waitpid(c, &status, 0);
        ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    BOOST_TEST(ok == kLogins);
    int enforced = 0;
    for (int i = 0; i < kLogins; ++i) {
        auto text = sh_output("cat " + (w.dir() / ("ssh-" + std::to_string(i) + ".out")).string());
        enforced += text.find("denied:bash: connect: Operation not permitted") != std::string::npos;
    }
    BOOST_TEST(enforced == kLogins);
    BOOST_TEST(wait_until([&] { return w.records().empty(); }, 20000));
    BOOST_TEST(wait_until([&] { return w.maps().list_sessions()->empty(); }, 5000));
    BOOST_TEST(wait_until([&] { return w.session_cgroups().empty(); }, 5000));
    auto events = w.events();
    size_t opens = 0, closes = 0;
    for (const auto& e : events) {
        opens += e.find("\"event\":\"open\"") != std::string::npos;
        closes += e.find("\"event\":\"close\"") != std::string::npos;
    }
    BOOST_TEST(opens == static_cast<size_t>(kLogins));
    BOOST_TEST(closes == static_cast<size_t>(kLogins));
}

BOOST_AUTO_TEST_SUITE_END()
