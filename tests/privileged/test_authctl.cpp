// authctl against real pins: revoke, show, status, and the --json outputs
// compared with golden files (volatile fields normalised). No daemon runs:
// authctl works from the pins and records alone.
#include <boost/test/unit_test.hpp>

#include "tests/login_world.h"
#include "tests/support.h"

#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;

namespace {

const char* kPolicies = R"(
[policy.web]
match.cgroups = []
[policy.web.egress]
default = "deny"
allow = ["127.0.0.1 tcp 9"]
)";

std::string run_authctl(const LoginWorld& w, const std::string& args)
{
    return sh_output(std::string(AUTHWALL_AUTHCTL_BIN) + " --config " + w.config().string() + " " + args + " 2>&1");
}

// Replaces what differs from run to run with stable placeholders.
void normalise(nlohmann::json& j, const LoginWorld& w)
{
    if (j.is_object()) {
        for (auto& [k, v] : j.items()) {
            if (k == "id" || k == "opened_ns" || k == "correlation" || k == "opened_at" || k == "uid" ||
                k == "policy_id")
                v = "<" + k + ">";
            else if (v.is_string()) {
                std::string s = v.get<std::string>();
                auto at = s.find(w.root().string());
                if (at != std::string::npos)
                    v = s.replace(at, w.root().string().size(), "<root>");
                if (k == "user")
                    v = "<user>";
                if (k == "source") // file:line:column of a rule, in the world's temporary directory
                    v = "<dir>/" + fs::path(s).filename().string();
            } else
                normalise(v, w);
        }
    } else if (j.is_array()) {
        for (auto& v : j)
            normalise(v, w);
    }
}

void check_golden(const std::string& name, const std::string& output, const LoginWorld& w)
{
    auto j = nlohmann::json::parse(output);
    normalise(j, w);
    fs::path golden = fs::path(AUTHWALL_SOURCE_DIR) / "tests" / "golden" / name;
    if (std::getenv("AUTHWALL_UPDATE_GOLDEN")) {
        std::ofstream(golden) << j.dump(2) << "\n";
        return;
    }
    std::ifstream in(golden);
    BOOST_REQUIRE_MESSAGE(in, "golden file " + golden.string() + " (AUTHWALL_UPDATE_GOLDEN=1 writes it)");
    std::ostringstream expected;
    expected << in.rdbuf();
    BOOST_TEST(j.dump(2) + "\n" == expected.str());
}

} // namespace

BOOST_AUTO_TEST_SUITE(authctl_cli)

BOOST_AUTO_TEST_CASE(revoke_makes_the_next_connect_fail_at_once)
{
    LoginWorld w(kPolicies);
    auto cg = w.root() / "ctr";
    BOOST_REQUIRE(cgroup_create(cg).ok());
    auto out = run_authctl(w, "enroll --cgroup " + cg.string() + " --policy web");
    BOOST_REQUIRE_MESSAGE(out.find("enrolled") != std::string::npos, out);
    auto id = *cgroup_id(cg);
    BOOST_TEST(run_probe(cg, "new", [] { return tcp_connect("127.0.0.1", 9); }) == ECONNREFUSED);
    out = run_authctl(w, "revoke " + std::to_string(id));
    BOOST_TEST(out.find("revoked session " + std::to_string(id)) != std::string::npos);
    BOOST_TEST(run_probe(cg, "new", [] { return tcp_connect("127.0.0.1", 9); }) == EPERM);
    BOOST_TEST(w.events().back().find("\"event\":\"revoke\"") != std::string::npos);

    // --kill ends the processes too.
    auto sleeper = fork();
    if (sleeper == 0) {
        cgroup_move_pid(cg, getpid()).ok();
        execlp("sleep", "sleep", "300", static_cast<char*>(nullptr));
        _exit(127);
    }
    usleep(100000);
    out = run_authctl(w, "revoke --kill " + std::to_string(id));
    BOOST_TEST(out.find("killed the processes of " + cg.string()) != std::string::npos);
    int status = 0;
    BOOST_TEST(waitpid(sleeper, &status, 0) == sleeper);
    BOOST_TEST((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));

    BOOST_TEST(run_authctl(w, "revoke 12345 2>&1; echo rc=$?").find("no such session") != std::string::npos);
}

// enroll and unenroll go through the session service like every other
// path: an open and a close event, no session replaced by another, and an
// unenrolled cgroup is no longer held by the policy.
BOOST_AUTO_TEST_CASE(enroll_and_unenroll_are_sessions_like_any_other)
{
    LoginWorld w(kPolicies);
    auto cg = w.root() / "ctr";
    BOOST_REQUIRE(cgroup_create(cg).ok());
    auto id = std::to_string(*cgroup_id(cg));
    BOOST_REQUIRE(
        run_authctl(w, "enroll --login --uid 4242 --cgroup " + cg.string() + " --policy web --rhost 192.0.2.1")
            .find("enrolled") != std::string::npos);
    BOOST_TEST(w.events().back().find("\"event\":\"open\"") != std::string::npos, w.events().back());
    BOOST_TEST(run_probe(cg, "new", [] { return tcp_connect("127.0.0.2", 9); }) == EPERM);

    // A second enroll of the same cgroup is refused and changes nothing:
    // the login with its rhost does not become a root container session.
    auto out = run_authctl(w, "enroll --cgroup " + cg.string() + " --policy web 2>&1; echo rc=$?");
    BOOST_TEST(out.find("is a session already") != std::string::npos, out);
    BOOST_TEST(out.find("rc=1") != std::string::npos, out);
    auto shown = nlohmann::json::parse(run_authctl(w, "show --json " + id));
    BOOST_TEST(shown.at("rhost") == "192.0.2.1");
    BOOST_TEST(shown.at("kind") == "login");
    BOOST_TEST(shown.at("uid") == 4242);

    out = run_authctl(w, "unenroll --cgroup " + cg.string());
    BOOST_TEST(out.find("unenrolled " + cg.string()) != std::string::npos, out);
    BOOST_TEST(w.events().back().find("\"event\":\"close\"") != std::string::npos, w.events().back());
    BOOST_TEST(!fs::exists(w.run_dir() / "sessions" / (id + ".json")));
    // Control: the same connect is no longer refused.
    BOOST_TEST(run_probe(cg, "new", [] { return tcp_connect("127.0.0.2", 9); }) == ECONNREFUSED);
    out = run_authctl(w, "unenroll --cgroup " + cg.string() + " 2>&1; echo rc=$?");
    BOOST_TEST(out.find("is no session") != std::string::npos, out);
}

// One instance of each daemon per installation: a second one is refused,
// naming the first; authctl status names the daemon that holds the lock,
// and never a process that only has the daemon's name.
BOOST_AUTO_TEST_CASE(one_daemon_per_installation_and_status_asks_the_lock)
{
    LoginWorld w(kPolicies);
    auto daemons = [&] { return nlohmann::json::parse(run_authctl(w, "status --json")).at("daemons"); };
    // Control: a process named like the daemon, holding no lock.
    fs::path impostor = w.dir() / "authwall-cgroupd";
    fs::copy_file("/bin/sleep", impostor);
    Background fake(impostor.string() + " 60");
    BOOST_TEST(daemons().at("authwall-cgroupd").at("running") == false);

    {
        Cgroupd first(w);
        auto d = daemons().at("authwall-cgroupd");
        BOOST_TEST(d.at("running") == true);
        BOOST_TEST(d.at("pid") == first.pid());
        BOOST_TEST(daemons().at("authwall-loader").at("running") == false);
        auto out = sh_output(std::string(AUTHWALL_CGROUPD_BIN) + " --config " + w.config().string() +
                             " --once 2>&1; echo rc=$?");
        BOOST_TEST(out.find("another instance runs already (pid " + std::to_string(first.pid())) != std::string::npos,
                   out);
        BOOST_TEST(out.find("rc=1") != std::string::npos, out);
    }
    BOOST_TEST(daemons().at("authwall-cgroupd").at("running") == false);
    // Once the first is gone, the next one starts.
    auto out =
        sh_output(std::string(AUTHWALL_CGROUPD_BIN) + " --config " + w.config().string() + " --once 2>&1; echo rc=$?");
    BOOST_TEST(out.find("rc=0") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(json_outputs_match_the_golden_files)
{
    LoginWorld w(kPolicies);
    auto cg = w.root() / "ctr";
    BOOST_REQUIRE(cgroup_create(cg).ok());
    BOOST_REQUIRE(
        run_authctl(w, "enroll --cgroup " + cg.string() + " --policy web --rhost 192.0.2.1").find("enrolled") !=
        std::string::npos);
    auto id = *cgroup_id(cg);
    BOOST_TEST(run_probe(cg, "new", [] { return tcp_connect("127.0.0.2", 9); }) == EPERM);
    check_golden("sessions.json", run_authctl(w, "sessions --json"), w);
    check_golden("show.json", run_authctl(w, "show --json " + std::to_string(id)), w);
    check_golden("policy-show.json", run_authctl(w, "policy show --json"), w);

    auto status = nlohmann::json::parse(run_authctl(w, "status --json"));
    BOOST_TEST(status.at("installed") == true);
    BOOST_TEST(status.at("maps").at("sessions").at("entries") == 1);
    BOOST_TEST(status.at("maps").at("users").at("max_entries") == 65536); // the user layer's capacity
    BOOST_TEST(status.at("links").size() >= 9u);
    for (const auto& l : status.at("links"))
        BOOST_TEST(l.at("cgroup") == w.root().string());
}

BOOST_AUTO_TEST_CASE(errors_and_exit_codes)
{
    LoginWorld w(kPolicies);
    BOOST_TEST(run_authctl(w, "show 42 2>&1; echo rc=$?").find("no such session") != std::string::npos);
    BOOST_TEST(run_authctl(w, "show 42 >/dev/null; echo rc=$?").find("rc=1") != std::string::npos);
    BOOST_TEST(run_authctl(w, "frobnicate >/dev/null; echo rc=$?").find("rc=2") != std::string::npos);
    auto typo = run_authctl(w, "sesions 2>&1; echo rc=$?");
    BOOST_TEST(typo.find("unknown command 'sesions' (did you mean 'sessions'?)") != std::string::npos, typo);
    BOOST_TEST(typo.find("rc=2") != std::string::npos, typo);
    BOOST_TEST(run_authctl(w, "frobnicate 2>&1").find("unknown command 'frobnicate' (authctl --help lists them)") !=
               std::string::npos);
    BOOST_TEST(run_authctl(w, "--version; echo rc=$?").find("authctl 0.") == 0u);
    BOOST_TEST(run_authctl(w, "--pin-dir /sys/fs/bpf/nothing-here sessions 2>&1; echo rc=$?")
                   .find("authwall is not installed under this pin directory") != std::string::npos);
    // A non-root user gets the session records, and a word on what needs root.
    auto cg = w.root() / "ctr";
    BOOST_REQUIRE(cgroup_create(cg).ok());
    BOOST_REQUIRE(run_authctl(w, "enroll --cgroup " + cg.string() + " --policy web").find("enrolled") !=
                  std::string::npos);
    auto as_nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups " + std::string(AUTHWALL_AUTHCTL_BIN) +
                     " --config " + w.config().string();
    auto out = sh_output(as_nobody + " sessions 2>&1; echo rc=$?");
    BOOST_TEST(out.find("traffic, denials and enforcement need root") != std::string::npos);
    BOOST_TEST(out.find(std::to_string(*cgroup_id(cg)) + "  ") != std::string::npos);
    BOOST_TEST(out.find("rc=0") != std::string::npos);
    out = sh_output(as_nobody + " show 1 2>&1; echo rc=$?");
    BOOST_TEST(out.find("reading the pins needs root") != std::string::npos);
    BOOST_TEST(out.find("rc=1") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(watch_shows_live_events)
{
    LoginWorld w(R"([policy.ops]
match.services = ["authwall-test"]
)");
    fs::path out = w.dir() / "watch.out";
    pid_t watcher = fork();
    if (watcher == 0) {
        std::string cmd = std::string("exec ") + AUTHWALL_AUTHCTL_BIN + " --config " + w.config().string() +
                          " watch --count 2 > " + out.string() + " 2>&1";
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    usleep(300000); // the watcher is at the end of the log
    BOOST_TEST(w.pam(w.user() + " --rhost 192.0.2.8").find("close: PAM_SUCCESS") != std::string::npos);
    int status = 0;
    for (int i = 0; i < 300 && waitpid(watcher, &status, WNOHANG) == 0; ++i)
        usleep(10000);
    if (waitpid(watcher, &status, WNOHANG) == 0) {
        kill(watcher, SIGKILL);
        waitpid(watcher, &status, 0);
    }
    auto text = sh_output("cat " + out.string());
    BOOST_TEST_MESSAGE(text);
    BOOST_TEST(text.find(" open    session=") != std::string::npos);
    BOOST_TEST(text.find(" close   session=") != std::string::npos);
    BOOST_TEST(text.find("user=" + w.user() + " rhost=192.0.2.8 policy=ops") != std::string::npos);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

BOOST_AUTO_TEST_CASE(doctor_on_a_good_and_three_broken_pam_stacks)
{
    LoginWorld w(kPolicies);
    fs::path fixtures = fs::path(AUTHWALL_SOURCE_DIR) / "tests" / "fixtures" / "pam";
    auto doctor = [&](const char* stack) {
        return run_authctl(w, "doctor --pam sshd --pam-dir " + (fixtures / stack).string() + " ; echo rc=$?");
    };
    auto out = doctor("good");
    BOOST_TEST_MESSAGE(out);
    BOOST_TEST(out.find("ok    pins: authwall is installed") != std::string::npos);
    BOOST_TEST(out.find("ok    pam: control 'required' fails the login when enforcement fails") != std::string::npos);
    BOOST_TEST(out.find("rc=0") != std::string::npos);
    out = doctor("optional");
    BOOST_TEST(out.find("ERROR pam: control 'optional'") != std::string::npos);
    BOOST_TEST(out.find("rc=1") != std::string::npos);
    out = doctor("before-systemd");
    BOOST_TEST(out.find("runs before pam_systemd.so") != std::string::npos);
    BOOST_TEST(out.find("rc=1") != std::string::npos);
    out = doctor("missing");
    BOOST_TEST(out.find("ERROR pam: pam_authwall.so is not in the session stack") != std::string::npos);
    BOOST_TEST(out.find("rc=1") != std::string::npos);
    auto j =
        nlohmann::json::parse(run_authctl(w, "doctor --json --pam sshd --pam-dir " + (fixtures / "good").string()));
    BOOST_TEST(j.at("ok") == true);
}

BOOST_AUTO_TEST_SUITE_END()
