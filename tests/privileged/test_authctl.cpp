// SPDX-License-Identifier: Apache-2.0
// authctl against real pins: revoke, show, status, and the --json outputs
// compared with golden files (volatile fields normalised). No daemon runs:
// authctl works from the pins and records alone.
#include <boost/test/unit_test.hpp>

#include "tests/login_world.h"
#include "tests/support.h"

#include "core/base/time.h"

#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
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

// The ids of a sessions --json output.
std::set<uint64_t> session_ids(const std::string& output)
{
    std::set<uint64_t> out;
    auto j = nlohmann::json::parse(output); // kept: a range-for over at() of a temporary would dangle
    for (const auto& s : j.at("sessions"))
        out.insert(s.at("id").get<uint64_t>());
    return out;
}

std::vector<std::string> lines_of(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

// A table row split on whitespace, as awk splits it.
std::vector<std::string> fields_of(const std::string& line)
{
    std::vector<std::string> out;
    std::istringstream in(line);
    for (std::string f; in >> f;)
        out.push_back(f);
    return out;
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
        // Another run directory is not another installation: the pin
        // directory is locked too.
        out = sh_output(std::string(AUTHWALL_CGROUPD_BIN) + " --config " + w.config().string() + " --run-dir " +
                        (w.dir() / "run2").string() + " --once 2>&1; echo rc=$?");
        BOOST_TEST(out.find("another instance uses this pin directory") != std::string::npos, out);
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
    auto shown = nlohmann::json::parse(run_authctl(w, "show --json " + std::to_string(id)));
    BOOST_TEST(shown.at("opened_at") == rfc3339_utc(shown.at("opened_ns").get<uint64_t>()));
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

// logrotate's rule (dist/logrotate.d/authwall) renames the log and lets the
// next writer create a new one: watch goes on with the new file.
BOOST_AUTO_TEST_CASE(watch_follows_a_rotated_log)
{
    LoginWorld w(R"([policy.ops]
match.services = ["authwall-test"]
)");
    fs::path log = w.dir() / "events.jsonl";
    fs::path out = w.dir() / "watch.out";
    pid_t watcher = fork();
    if (watcher == 0) {
        std::string cmd = std::string("exec ") + AUTHWALL_AUTHCTL_BIN + " --config " + w.config().string() +
                          " watch --count 4 > " + out.string() + " 2>&1";
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    usleep(300000); // the watcher is at the end of the log
    BOOST_TEST(w.pam(w.user() + " --rhost 192.0.2.8").find("close: PAM_SUCCESS") != std::string::npos);
    usleep(300000); // the watcher has read both events of the first login
    fs::rename(log, w.dir() / "events.jsonl.1");
    BOOST_TEST(w.pam(w.user() + " --rhost 192.0.2.9").find("close: PAM_SUCCESS") != std::string::npos);
    BOOST_TEST(fs::exists(log)); // created again by the second login's open
    int status = 0;
    for (int i = 0; i < 300 && waitpid(watcher, &status, WNOHANG) == 0; ++i)
        usleep(10000);
    if (waitpid(watcher, &status, WNOHANG) == 0) {
        kill(watcher, SIGKILL);
        waitpid(watcher, &status, 0);
    }
    auto text = sh_output("cat " + out.string());
    BOOST_TEST_MESSAGE(text);
    BOOST_TEST(text.find("rhost=192.0.2.8") != std::string::npos);
    BOOST_TEST(text.find("rhost=192.0.2.9") != std::string::npos); // only in the new log
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

// Two logins of the world's user (policy ops, service authwall-test) and a
// container enrolled for uid 4242 (policy web): what sessions' filters,
// legend and formats, and revoke --user, make of them.
const char* kTwoPolicies = R"(
[policy.ops]
match.services = ["authwall-test"]

[policy.web]
match.cgroups = []
[policy.web.egress]
default = "deny"
allow = ["127.0.0.1 tcp 9"]
)";

struct ThreeSessions {
    LoginWorld w{kTwoPolicies};
    HeldSession first{w, "--rhost 192.0.2.5"};
    HeldSession second{w, "--rhost 192.0.2.6"};
    fs::path container = w.root() / "ctr";
    uint64_t container_id = 0;
    std::map<uint64_t, fs::path> logins; // id -> cgroup
    uint32_t uid = 0;

    ThreeSessions()
    {
        BOOST_REQUIRE(cgroup_create(container).ok());
        BOOST_REQUIRE(
            run_authctl(w, "enroll --uid 4242 --cgroup " + container.string() + " --policy web").find("enrolled") !=
            std::string::npos);
        container_id = *cgroup_id(container);
        for (const auto& r : w.records())
            if (r.kind == SessionKind::Login) {
                logins[r.id] = r.cgroup;
                uid = r.uid;
            }
        BOOST_REQUIRE_EQUAL(logins.size(), 2u);
    }
    std::set<uint64_t> login_ids() const
    {
        std::set<uint64_t> out;
        for (const auto& [id, cg] : logins)
            out.insert(id);
        return out;
    }
    std::string as_nobody(const std::string& args) const
    {
        return sh_output("setpriv --reuid=65534 --regid=65534 --clear-groups " + std::string(AUTHWALL_AUTHCTL_BIN) +
                         " --config " + w.config().string() + " " + args);
    }
};

bool has(const std::string& text, const std::string& what)
{
    return text.find(what) != std::string::npos;
}

BOOST_FIXTURE_TEST_CASE(sessions_are_filtered_by_user_and_policy, ThreeSessions)
{
    std::set<uint64_t> all = login_ids(), only_container{container_id};
    all.insert(container_id);
    BOOST_TEST(session_ids(run_authctl(w, "sessions --json")) == all);
    BOOST_TEST(session_ids(run_authctl(w, "sessions --json --user " + w.user())) == login_ids());
    BOOST_TEST(session_ids(run_authctl(w, "sessions --json --user " + std::to_string(uid))) == login_ids());
    BOOST_TEST(session_ids(run_authctl(w, "sessions -o json --user 4242")) == only_container);
    BOOST_TEST(session_ids(run_authctl(w, "sessions --json --policy web")) == only_container);
    BOOST_TEST(session_ids(run_authctl(w, "sessions --json --policy ops")) == login_ids());
    BOOST_TEST(session_ids(run_authctl(w, "sessions --json --policy ops --user 4242")).empty());
    BOOST_TEST(run_authctl(w, "sessions --policy ops --user 4242") == "no matching sessions\n");
    BOOST_TEST(run_authctl(w, "sessions --no-legend --policy nothing-here") == "");
    auto rows = lines_of(run_authctl(w, "sessions --no-legend --user " + w.user()));
    BOOST_REQUIRE_EQUAL(rows.size(), 2u);
    for (const auto& row : rows)
        BOOST_TEST(logins.count(std::stoull(fields_of(row).at(0))) == 1u, row);
    auto out = run_authctl(w, "sessions --user no-such-user-x 2>&1; echo rc=$?");
    BOOST_TEST(has(out, "is neither a user NSS knows nor a uid"), out);
    BOOST_TEST(has(out, "rc=1"), out);

    // Without root: the records, filtered alike.
    BOOST_TEST(session_ids(as_nobody("sessions --json --user " + w.user())) == login_ids());
    BOOST_TEST(session_ids(as_nobody("sessions -o json --policy web")) == only_container);
    rows = lines_of(as_nobody("sessions --no-legend --policy web 2>/dev/null"));
    BOOST_REQUIRE_EQUAL(rows.size(), 1u);
    BOOST_TEST(fields_of(rows[0]).at(0) == std::to_string(container_id));
}

BOOST_FIXTURE_TEST_CASE(sessions_legend_and_output_formats, ThreeSessions)
{
    auto table = lines_of(run_authctl(w, "sessions"));
    BOOST_REQUIRE_EQUAL(table.size(), 4u);
    BOOST_TEST(fields_of(table[0]) == (std::vector<std::string>{"ID", "USER", "KIND", "RHOST", "POLICY", "AGE", "IN",
                                                                "OUT", "DENIED", "ENFORCED"}));
    for (const char* args : {"sessions --no-legend", "sessions -o short --no-legend"}) {
        auto bare = lines_of(run_authctl(w, args));
        BOOST_REQUIRE_EQUAL(bare.size(), 3u);
        std::vector<uint64_t> ids;
        for (const auto& row : bare) {
            BOOST_TEST(fields_of(row).size() == 10u, row);
            ids.push_back(std::stoull(fields_of(row).at(0)));
        }
        BOOST_TEST(std::is_sorted(ids.begin(), ids.end())); // by id, not in the hash map's order
    }

    auto json = nlohmann::json::parse(run_authctl(w, "sessions -o json"));
    BOOST_TEST(json == nlohmann::json::parse(run_authctl(w, "sessions --json")));
    std::map<uint64_t, nlohmann::json> by_id;
    for (const auto& s : json.at("sessions")) {
        by_id[s.at("id").get<uint64_t>()] = s;
        BOOST_TEST(s.at("opened_at") == rfc3339_utc(s.at("opened_ns").get<uint64_t>()));
        BOOST_TEST(s.at("service") == (s.at("id") == container_id ? "authctl" : "authwall-test"));
    }

    auto wide = lines_of(run_authctl(w, "sessions -o wide"));
    BOOST_REQUIRE_EQUAL(wide.size(), 4u);
    BOOST_TEST(fields_of(wide[0]) ==
               (std::vector<std::string>{"ID", "USER", "UID", "KIND", "RHOST", "SERVICE", "POLICY", "OPENED", "AGE",
                                         "IN", "OUT", "DENIED", "CGROUP", "ENFORCED"}));
    for (size_t i = 1; i < wide.size(); ++i) {
        auto f = fields_of(wide[i]);
        BOOST_REQUIRE_EQUAL(f.size(), 14u);
        const auto& s = by_id.at(std::stoull(f[0]));
        BOOST_TEST(f[2] == std::to_string(s.at("uid").get<uint32_t>()));
        BOOST_TEST(f[3] == s.at("kind").get<std::string>());
        BOOST_TEST(f[4] == (s.at("rhost").is_null() ? "-" : s.at("rhost").get<std::string>()));
        BOOST_TEST(f[5] == s.at("service").get<std::string>());
        BOOST_TEST(f[6] == s.at("policy").get<std::string>());
        std::string opened = s.at("opened_at");
        BOOST_TEST(f[7] == opened.substr(0, 19) + "Z"); // the second, without the milliseconds
        BOOST_TEST(f[12] == s.at("cgroup").get<std::string>());
        BOOST_TEST(f[13] == "yes");
    }
    BOOST_TEST(lines_of(run_authctl(w, "sessions -o wide --no-legend --user 4242")).size() == 1u);

    auto out = run_authctl(w, "sessions -o tall 2>&1; echo rc=$?");
    BOOST_TEST(has(out, "tall not in {short,wide,json}"), out);
    BOOST_TEST(has(out, "rc=2"), out);
    out = run_authctl(w, "sessions --json -o wide 2>&1; echo rc=$?");
    BOOST_TEST(has(out, "--json excludes --output"), out);
    BOOST_TEST(has(out, "rc=2"), out);
    BOOST_TEST(has(run_authctl(w, "sessions --user 2>&1; echo rc=$?"), "rc=2"));
}

BOOST_FIXTURE_TEST_CASE(users_legend_and_output_formats, ThreeSessions)
{
    auto table = lines_of(run_authctl(w, "users"));
    BOOST_REQUIRE_GE(table.size(), 2u);
    BOOST_TEST(fields_of(table[0]) ==
               (std::vector<std::string>{"UID", "USER", "POLICY", "REVOKED", "ARMED", "DENIED"}));
    auto bare = lines_of(run_authctl(w, "users --no-legend"));
    BOOST_REQUIRE_EQUAL(bare.size(), table.size() - 1);
    auto row = std::find_if(bare.begin(), bare.end(),
                            [&](const std::string& l) { return fields_of(l).at(0) == std::to_string(uid); });
    BOOST_REQUIRE(row != bare.end());
    BOOST_TEST(fields_of(*row) ==
               (std::vector<std::string>{std::to_string(uid), w.user(), "ops", "no", fields_of(*row).at(4), "0"}));
    auto wide = lines_of(run_authctl(w, "users -o wide"));
    BOOST_TEST(fields_of(wide.at(0)) == (std::vector<std::string>{"UID", "USER", "POLICY", "POLICY_ID", "REVOKED",
                                                                  "ARMED_AT", "ARMED", "DENIED"}));
    auto json = nlohmann::json::parse(run_authctl(w, "users -o json"));
    BOOST_TEST(json.at("users").size() == bare.size());
    BOOST_TEST(has(run_authctl(w, "users --json -o short 2>&1; echo rc=$?"), "rc=2"));
}

// revoke --user revokes every session of the user, each login, and says
// how many; another uid's session is untouched (the control).
BOOST_FIXTURE_TEST_CASE(revoking_a_user_revokes_each_of_their_logins, ThreeSessions)
{
    auto connect9 = [] { return tcp_connect("127.0.0.1", 9); };
    for (const auto& [id, cg] : logins)
        BOOST_TEST(run_probe(cg, "new", connect9) == ECONNREFUSED);
    BOOST_TEST(run_probe(container, "new", connect9) == ECONNREFUSED);

    auto out = run_authctl(w, "revoke --user " + std::to_string(uid) + " 2>&1; echo rc=$?");
    for (const auto& [id, cg] : logins)
        BOOST_TEST(has(out, "revoked session " + std::to_string(id)), out);
    BOOST_TEST(has(out, "revoked 2 sessions of " + w.user()), out);
    BOOST_TEST(!has(out, "revoked session " + std::to_string(container_id)), out);
    BOOST_TEST(has(out, "rc=0"), out);
    auto listed = nlohmann::json::parse(run_authctl(w, "sessions --json"));
    BOOST_TEST(listed.at("sessions").size() == 3u);
    for (const auto& s : listed.at("sessions"))
        BOOST_TEST(s.at("revoked") == (s.at("id") != container_id), s.dump());
    for (const auto& [id, cg] : logins)
        BOOST_TEST(run_probe(cg, "new", connect9) == EPERM);
    BOOST_TEST(run_probe(container, "new", connect9) == ECONNREFUSED);
    auto rows = lines_of(run_authctl(w, "users --no-legend"));
    BOOST_TEST(std::any_of(rows.begin(), rows.end(), [&](const std::string& l) {
        auto f = fields_of(l);
        return f.at(0) == std::to_string(uid) && f.at(3) == "yes";
    }));
    out = run_authctl(w, "revoke --user " + w.user() + " --undo");
    BOOST_TEST(has(out, "lifted the revocation of " + w.user()), out);
}

// The completions ask authctl itself for session ids and policy names, with
// the command line's --config: bash's and fish's offer the live ones.
BOOST_FIXTURE_TEST_CASE(completions_offer_live_session_ids_and_policy_names, ThreeSessions)
{
    fs::path completions = fs::path(AUTHWALL_SOURCE_DIR) / "completions";
    std::set<std::string> ids{std::to_string(container_id)}, policies{"ops", "web"};
    for (const auto& [id, cg] : logins)
        ids.insert(std::to_string(id));
    auto bash = [&](const std::string& words) {
        auto out = sh_output("bash -c '. " + (completions / "authctl.bash").string() + "; COMP_WORDS=(" +
                             AUTHWALL_AUTHCTL_BIN + " --config " + w.config().string() + " " + words +
                             " \"\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _authctl; printf \"%s\\n\" "
                             "\"${COMPREPLY[@]}\"'");
        auto lines = lines_of(out);
        return std::set<std::string>(lines.begin(), lines.end());
    };
    BOOST_TEST(bash("show") == ids);
    BOOST_TEST(bash("revoke") == ids);
    BOOST_TEST(bash("enroll --policy") == policies);
    BOOST_TEST(bash("sessions --policy") == policies);
    BOOST_TEST(bash("policy show") == policies);

    if (sh("command -v fish >/dev/null") != 0) {
        BOOST_TEST_MESSAGE("fish is not installed (scripts/install-deps): its completion is not asked");
        BOOST_TEST(std::getenv("AUTHWALL_REQUIRE_PRIVILEGED") == nullptr);
        return;
    }
    auto fish = [&](const std::string& line) {
        auto out = sh_output("PATH=" + fs::path(AUTHWALL_AUTHCTL_BIN).parent_path().string() +
                             ":$PATH fish --no-config -c \". " + (completions / "authctl.fish").string() +
                             "; complete -C 'authctl --config " + w.config().string() + " " + line + "'\" | cut -f1");
        auto lines = lines_of(out);
        return std::set<std::string>(lines.begin(), lines.end());
    };
    BOOST_TEST(fish("show ") == ids);
    BOOST_TEST(fish("enroll --policy ") == policies);
    BOOST_TEST(fish("policy show ") == policies);
}

// authctl policy test --live says what the kernel does: for each flow, the
// verdict it prints is what a real connect from a login of that policy
// meets (EPERM for deny; for allow, nothing listens: refused by the stack).
BOOST_AUTO_TEST_CASE(policy_test_predicts_what_the_kernel_decides)
{
    LoginWorld w(R"(
[policy.web]
match.services = ["authwall-test"]
[policy.web.egress]
default = "deny"
allow = ["127.0.0.0/8 tcp 1000-2000"]
deny = ["127.0.0.2 tcp 1500"]
)");
    const std::pair<const char*, int> flows[] = {{"127.0.0.1", 9},    {"127.0.0.1", 1000}, {"127.0.0.2", 1500},
                                                 {"127.0.0.2", 1501}, {"127.0.0.3", 2000}, {"127.0.0.3", 2001}};
    int denied = 0;
    for (const auto& [address, port] : flows) {
        BOOST_TEST_CONTEXT(address << " tcp " << port)
        {
            auto text = run_authctl(w, "policy test --live --json --user " + w.user() + " --service " + w.service() +
                                           " --to " + address + " tcp " + std::to_string(port));
            auto j = nlohmann::json::parse(text, nullptr, false);
            BOOST_REQUIRE_MESSAGE(!j.is_discarded(), text);
            std::string verdict = j.value("verdict", "");
            auto out = w.pam(w.user() + " --exec \"bash -c 'exec 3<>/dev/tcp/" + address + "/" + std::to_string(port) +
                             "' 2>&1 | sed s/^/probe:/\"");
            bool eperm = out.find("Operation not permitted") != std::string::npos;
            BOOST_TEST((verdict == "deny") == eperm, verdict << " / " << out);
            BOOST_TEST((out.find("Connection refused") != std::string::npos) == !eperm);
            denied += eperm;
            if (port == 1500) { // the deny rule, named by its place
                BOOST_TEST(j["layers"][0].value("rule", 0) == 2);
                BOOST_TEST(j["layers"][0].value("rule_text", "") == "127.0.0.2 tcp 1500");
                BOOST_TEST(j["layers"][0].value("rule_source", "").find(":7:") != std::string::npos);
            }
        }
    }
    BOOST_TEST(denied == 3); // 9 (default), 1500 (rule), 2001 (default); the others were allowed
}

// The same for $rhost rules, from a login whose PAM_RHOST is 127.0.0.2:
// policy test --rhost says what that login's connects meet.
BOOST_AUTO_TEST_CASE(policy_test_predicts_the_kernel_on_rhost_rules)
{
    LoginWorld w(R"(
[policy.back]
match.services = ["authwall-test"]
[policy.back.egress]
default = "deny"
allow = ["$rhost tcp 1000-2000"]
deny = ["$rhost tcp 1500"]
)");
    const std::pair<const char*, int> flows[] = {
        {"127.0.0.2", 1000}, {"127.0.0.2", 1500}, {"127.0.0.2", 2001}, {"127.0.0.3", 1000}};
    int denied = 0;
    for (const auto& [address, port] : flows) {
        BOOST_TEST_CONTEXT(address << " tcp " << port)
        {
            auto text = run_authctl(w, "policy test --live --json --user " + w.user() + " --service " + w.service() +
                                           " --rhost 127.0.0.2 --to " + address + " tcp " + std::to_string(port));
            auto j = nlohmann::json::parse(text, nullptr, false);
            BOOST_REQUIRE_MESSAGE(!j.is_discarded(), text);
            std::string verdict = j.value("verdict", "");
            auto out = w.pam(w.user() + " --rhost 127.0.0.2 --exec \"bash -c 'exec 3<>/dev/tcp/" + address + "/" +
                             std::to_string(port) + "' 2>&1 | sed s/^/probe:/\"");
            bool eperm = out.find("Operation not permitted") != std::string::npos;
            BOOST_TEST((verdict == "deny") == eperm, verdict << " / " << out);
            BOOST_TEST((out.find("Connection refused") != std::string::npos) == !eperm);
            denied += eperm;
        }
    }
    BOOST_TEST(denied == 3); // 1500 (the $rhost deny), 2001 and another address (default)
}

// authctl watch --user/--policy/--event: only the events asked for, in
// the order logged; a decision event says who, what and why.
BOOST_AUTO_TEST_CASE(watch_filters_by_user_policy_and_event)
{
    char tmpl[] = "/tmp/authwall-watch-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    fs::path dir = tmpl;
    std::ofstream(dir / "events.jsonl")
        << R"({"event":"open","user":"alice","uid":1001,"policy":"ops","session":7})"
           "\n"
           R"({"event":"deny","user":"alice","uid":1001,"policy":"ops","direction":"egress","protocol":"tcp",)"
           R"("address":"10.9.9.9","port":22,"hook":"connect4","reason":"rule","rule":3,"rule_text":"10.9.0.0/16",)"
           R"("rule_source":"/etc/authwall/policies.d/ops.toml:9:5","process":"ssh","pid":42})"
           "\n"
           R"({"event":"audit","user":"bob","uid":1002,"policy":"trial","reason":"default"})"
           "\n"
           R"({"event":"deny","uid":1001,"policy":"dev","reason":"default"})"
           "\n"
           R"({"event":"close","user":"alice","uid":1001,"policy":"ops","session":7})"
           "\n";
    std::ofstream(dir / "authwall.toml") << "event_log = \"" << (dir / "events.jsonl").string() << "\"\n";
    auto watch = [&](const std::string& args) {
        return sh_output("timeout 5 " + std::string(AUTHWALL_AUTHCTL_BIN) + " --config " +
                         (dir / "authwall.toml").string() + " watch --from-start " + args + " 2>&1");
    };
    // alice by name (uid 1001's deny without a name counts by uid), deny only.
    auto out = watch("--count 1 --user alice --event deny");
    BOOST_TEST(
        out.find("deny    alice policy=ops layer=login egress tcp 10.9.9.9 port 22 hook=connect4 "
                 "reason=rule process=ssh[42] rule #3 \"10.9.0.0/16\" (/etc/authwall/policies.d/ops.toml:9:5)") !=
            std::string::npos,
        out);
    out = watch("--count 2 --json --user 1001 --event deny");
    BOOST_TEST(std::count(out.begin(), out.end(), '\n') == 2);
    BOOST_TEST(out.find("\"policy\":\"dev\"") != std::string::npos, out);
    out = watch("--count 2 --json --policy ops --event open,close");
    BOOST_TEST(out.find("\"event\":\"open\"") < out.find("\"event\":\"close\""), out);
    BOOST_TEST(out.find("deny") == std::string::npos, out);
    out = watch("--count 1 --json --event audit");
    BOOST_TEST(out.find("\"user\":\"bob\"") != std::string::npos, out);
    BOOST_TEST(watch("--event denied; echo rc=$?").find("rc=2") != std::string::npos); // not an event name
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
