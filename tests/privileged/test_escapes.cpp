// SPDX-License-Identifier: Apache-2.0
// The user is the boundary (docs/SECURITY.md, "Escapes considered"): a
// confined user's processes are held to the user's policy wherever they run
// — outside the login's cgroup (where systemd's user manager, cron and at
// put them), after logout, moved out by root, as a setuid-root helper — and
// a connect must pass both the login's policy and the user's. Every attempt
// has a control: the same attempt by a user no policy confines succeeds.
//
// On this host (no systemd) "outside the login" is a sibling cgroup below
// the test's enforcement root, placed there by root as systemd would; the
// real user manager, cron and at run in vmtests/tests/70-escapes.sh.
#include <boost/test/unit_test.hpp>

#include "tests/login_world.h"
#include "tests/support.h"

#include <pwd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <sys/stat.h>

#include <fstream>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& text, const std::string& what)
{
    return text.find(what) != std::string::npos;
}

// The world is made before its user's name is known: a placeholder policy,
// then the real ones through the loader.
const char* kPlaceholder = "[policy.placeholder]\nmatch.users = [\"placeholder\"]\n";

void reload(const LoginWorld& w, const std::string& policies)
{
    std::ofstream(w.dir() / "policies.d" / "test.toml") << policies;
    auto out =
        sh_output(std::string(AUTHWALL_LOADER_BIN) + " --config " + w.config().string() + " --once 2>&1; echo rc=$?");
    BOOST_REQUIRE_MESSAGE(has(out, "rc=0"), out);
}

// Policies claim the world's user by name: a second user is unconfined.
std::string policies_for(const std::string& user)
{
    return R"(
[policy.held]
priority = 10
match.users = [")" +
           user + R"("]
[policy.held.egress]
default = "deny"
allow = ["127.0.0.1 tcp 9"]
[policy.held.sockets]
deny_families = ["raw"]
)";
}

// A throwaway account, removed at scope exit.
class OtherUser {
  public:
    OtherUser() : name_("awc" + unique_suffix())
    {
        sh("userdel " + name_ + " >/dev/null 2>&1");
        BOOST_REQUIRE_EQUAL(sh("useradd -M -s /bin/bash " + name_), 0);
        passwd* pw = getpwnam(name_.c_str());
        BOOST_REQUIRE(pw);
        who_ = {pw->pw_uid, pw->pw_uid, pw->pw_gid};
    }
    ~OtherUser() { sh("userdel " + name_ + " >/dev/null 2>&1"); }
    OtherUser(const OtherUser&) = delete;
    OtherUser& operator=(const OtherUser&) = delete;
    const std::string& name() const { return name_; }
    const ProbeIdentity& who() const { return who_; }

  private:
    std::string name_;
    ProbeIdentity who_;
};

ProbeIdentity identity_of(const std::string& user)
{
    passwd* pw = getpwnam(user.c_str());
    BOOST_REQUIRE(pw);
    return {pw->pw_uid, pw->pw_uid, pw->pw_gid};
}

uid_t uid_of(const std::string& user)
{
    return identity_of(user).ruid;
}

// A cgroup below the world's enforcement root, outside any login: where the
// user manager (user@UID.service) or cron.service would run a process.
fs::path outside_cgroup(const LoginWorld& w, const std::string& name)
{
    fs::path cg = w.root() / name;
    BOOST_REQUIRE(cgroup_create(cg).ok());
    return cg;
}

int connect_as(const fs::path& cgroup, const ProbeIdentity& who, const std::string& address)
{
    return run_probe_as(cgroup, who, [&] { return tcp_connect(address, 9, 1000); });
}

// A PAM service file in the world's pam.d with the world's module line.
void add_service(const LoginWorld& w, const std::string& service)
{
    std::ifstream in(w.dir() / "pam.d" / w.service());
    std::string line;
    std::getline(in, line);
    std::ofstream(w.dir() / "pam.d" / service) << line << "\n";
}

// The harness run from inside `cgroup` (as cron.service or user@.service
// would run their PAM stack), through a script: no quoting of quotes.
std::string pam_in(const LoginWorld& w, const fs::path& cgroup, const std::string& service, const std::string& args)
{
    fs::path script = w.dir() / "pam-in.sh";
    std::ofstream(script) << "echo $$ > " << (cgroup / "cgroup.procs").string() << " && exec " << AUTHWALL_PAM_HARNESS
                          << " " << (w.dir() / "pam.d").string() << " " << service << " " << args << "\n";
    std::string out = sh_output("sh " + script.string() + " 2>&1");
    BOOST_TEST_MESSAGE("pam_harness (" << service << ") " << args << ":\n" << out);
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(escapes)

// The user manager's services, a process left running after logout, a
// process root (or systemd, on the user's request) moved out of the login:
// all outside the login's cgroup, all still held to the user's policy.
BOOST_AUTO_TEST_CASE(the_users_processes_outside_the_login_are_held_during_and_after_it)
{
    LoginWorld w(kPlaceholder);
    OtherUser other;
    reload(w, policies_for(w.user()));
    auto user = identity_of(w.user());
    fs::path manager = outside_cgroup(w, "user-manager.service");

    // Before any login since the pins were made, the user layer is unarmed.
    BOOST_TEST(!w.maps().lookup_user(user.ruid)->has_value());
    {
        HeldSession login(w, "--rhost 192.0.2.5");
        auto entry = w.maps().lookup_user(user.ruid);
        BOOST_REQUIRE(entry.ok() && entry->has_value());
        // Outside the login, during it.
        BOOST_TEST(connect_as(manager, user, "127.0.0.2") == EPERM);
        BOOST_TEST(connect_as(manager, user, "127.0.0.1") == ECONNREFUSED);        // allowed: nothing listens
        BOOST_TEST(connect_as(manager, other.who(), "127.0.0.2") == ECONNREFUSED); // control
        BOOST_TEST(has(login.close(), "close: PAM_SUCCESS"));
    }
    // After logout: the layer stays armed, what the user left running is held.
    BOOST_TEST(w.maps().lookup_user(user.ruid)->has_value());
    BOOST_TEST(connect_as(manager, user, "127.0.0.2") == EPERM);
    BOOST_TEST(connect_as(manager, other.who(), "127.0.0.2") == ECONNREFUSED);
    // UDP too (sendmsg), and each refusal counted on the user.
    BOOST_TEST(run_probe_as(manager, user, [] { return udp_send("127.0.0.2", 9); }) == EPERM);
    BOOST_TEST(run_probe_as(manager, other.who(), [] { return udp_send("127.0.0.2", 9); }) == 0);
    auto entry = w.maps().lookup_user(user.ruid);
    BOOST_REQUIRE(entry.ok() && entry->has_value());
    BOOST_TEST((*entry)->denied >= 3u);
}

// cron, atd and the user manager run PAM with their own services: the user
// layer is armed (nothing else needed a login first) and no login cgroup is
// made, so a job is held where it runs, and nothing is killed at its close.
BOOST_AUTO_TEST_CASE(cron_at_and_the_user_manager_arm_the_user_layer_without_a_login)
{
    LoginWorld w(kPlaceholder);
    OtherUser other;
    reload(w, policies_for(w.user()));
    auto user = identity_of(w.user());
    for (std::string service : {"cron", "atd", "systemd-user"})
        add_service(w, service);
    fs::path cron = outside_cgroup(w, "cron.service");
    BOOST_TEST(!w.maps().lookup_user(user.ruid)->has_value());

    // The job, as cron runs it: PAM session open as root, then the command
    // with the user's credentials, in cron.service's cgroup.
    fs::path job = w.dir() / "job.sh";
    std::ofstream(job) << "exec 3<>/dev/tcp/127.0.0.2/9\n";
    ::chmod(job.c_str(), 0755);
    ::chmod(w.dir().c_str(), 0755);
    auto as_user = [&](const std::string& u, const std::string&) {
        return "--exec 'setpriv --reuid " + u + " --regid " + u + " --init-groups bash " + job.string() +
               " 2>&1 | sed s/^/job:/'";
    };
    auto out = pam_in(w, cron, "cron", w.user() + " " + as_user(w.user(), "exec 3<>/dev/tcp/127.0.0.2/9"));
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, job.string() + ": connect: Operation not permitted"));
    BOOST_TEST(has(out, "close: PAM_SUCCESS"));
    BOOST_TEST(w.records().empty());         // no login session
    BOOST_TEST(w.session_cgroups().empty()); // no login cgroup
    BOOST_TEST(w.maps().lookup_user(user.ruid)->has_value());
    // Control: the same job of an unconfined user connects (refused by the
    // stack: nothing listens).
    out = pam_in(w, cron, "cron", other.name() + " " + as_user(other.name(), "exec 3<>/dev/tcp/127.0.0.2/9"));
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, job.string() + ": connect: Connection refused"));
    BOOST_TEST(!w.maps().lookup_user(uid_of(other.name()))->has_value());

    // An at job and the user manager: the same.
    for (std::string service : {"atd", "systemd-user"}) {
        out = pam_in(w, cron, service, w.user() + " " + as_user(w.user(), "exec 3<>/dev/tcp/127.0.0.2/9"));
        BOOST_TEST(has(out, "open: PAM_SUCCESS"));
        BOOST_TEST(has(out, job.string() + ": connect: Operation not permitted"));
    }
    BOOST_TEST(w.records().empty());
}

// The non-interactive stack carries user_only (pam-auth-update's profile):
// sudo, cron, at arm the user layer and make no login session, and
// unmatched = "deny" refuses none of them — a root `sudo -u` of an unclaimed
// account still works — while a confined user's job is held.
BOOST_AUTO_TEST_CASE(a_user_only_stack_arms_the_user_layer_and_is_not_refused_by_unmatched)
{
    LoginWorld w(kPlaceholder, "", "unmatched = \"deny\"\n");
    OtherUser other;
    reload(w, policies_for(w.user()));
    {
        std::ifstream in(w.dir() / "pam.d" / w.service());
        std::string line;
        std::getline(in, line);
        std::ofstream(w.dir() / "pam.d" / "sudo") << line << " user_only\n";
    }
    fs::path outside = outside_cgroup(w, "a-root-shell");
    fs::path job = w.dir() / "job.sh";
    std::ofstream(job) << "exec 3<>/dev/tcp/127.0.0.2/9\n";
    ::chmod(job.c_str(), 0755);
    ::chmod(w.dir().c_str(), 0755);
    auto as_user = [&](const std::string& u) {
        return "--exec 'setpriv --reuid " + u + " --regid " + u + " --init-groups bash " + job.string() +
               " 2>&1 | sed s/^/job:/'";
    };
    // The unclaimed user: a login is refused, a user-only session is not.
    BOOST_TEST(has(w.pam(other.name()), "open: PAM_PERM_DENIED"));
    auto out = pam_in(w, outside, "sudo", other.name() + " " + as_user(other.name()));
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    // unmatched = "deny" is the user layer's fallback: the unclaimed user's
    // processes reach nothing.
    BOOST_TEST(has(out, job.string() + ": connect: Operation not permitted"));
    // The confined user: held by their own policy, no login session.
    out = pam_in(w, outside, "sudo", w.user() + " " + as_user(w.user()));
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, job.string() + ": connect: Operation not permitted"));
    BOOST_TEST(w.records().empty());
    BOOST_TEST(w.session_cgroups().empty());
    auto entry = w.maps().lookup_user(uid_of(w.user()));
    BOOST_REQUIRE(entry.ok() && entry->has_value());
    BOOST_TEST((*entry)->policy_id != AW_POLICY_FALLBACK);
    // An account outside [users] min_uid..max_uid (a system account) gets no
    // user layer and is not refused: root's sudo -u of a service account.
    out = pam_in(w, outside, "sudo", "nobody --exec 'true'");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(!w.maps().lookup_user(65534)->has_value());
}

// A login whose policy differs from the user's: a connect must pass both.
BOOST_AUTO_TEST_CASE(a_connect_must_pass_the_login_and_the_user_layer)
{
    LoginWorld w(kPlaceholder);
    reload(w, R"(
[policy.office]
priority = 100
match.rhosts = ["192.0.2.0/24"]
[policy.office.egress]
default = "deny"
allow = ["127.0.0.1 tcp 9", "127.0.0.4 tcp 9"]

[policy.user]
priority = 10
match.users = [")" +
                  w.user() + R"("]
[policy.user.egress]
default = "deny"
allow = ["127.0.0.1 tcp 9", "127.0.0.3 tcp 9"]
)");
    auto user = identity_of(w.user());
    HeldSession login(w, "--rhost 192.0.2.5");
    auto records = w.records();
    BOOST_REQUIRE_EQUAL(records.size(), 1u);
    BOOST_TEST(records[0].policy == "office");
    fs::path in_login = records[0].cgroup;
    fs::path outside = outside_cgroup(w, "elsewhere");
    // 127.0.0.1: both allow. 127.0.0.3: only the user's. 127.0.0.4: only the login's.
    BOOST_TEST(connect_as(in_login, user, "127.0.0.1") == ECONNREFUSED);
    BOOST_TEST(connect_as(in_login, user, "127.0.0.3") == EPERM); // the login layer refuses
    BOOST_TEST(connect_as(in_login, user, "127.0.0.4") == EPERM); // the user layer refuses
    BOOST_TEST(connect_as(outside, user, "127.0.0.3") == ECONNREFUSED);
    BOOST_TEST(connect_as(outside, user, "127.0.0.4") == EPERM);
    // Root in the login is held by the login layer only (root has no user layer).
    BOOST_TEST(connect_as(in_login, ProbeIdentity{}, "127.0.0.4") == ECONNREFUSED);
    auto entry = w.maps().lookup_user(user.ruid);
    BOOST_REQUIRE(entry.ok() && entry->has_value());
    BOOST_TEST((*entry)->denied == 2u); // the two refusals of the user layer
    login.close();
}

// A setuid-root program keeps the caller's real uid: it stays in its user's
// layer outside any login (raw sockets included); an unconfined user's does not.
BOOST_AUTO_TEST_CASE(a_setuid_root_helper_outside_any_login_is_held_by_the_real_uid)
{
    LoginWorld w("");
    OtherUser other;
    reload(w, policies_for(w.user()));
    BOOST_TEST(has(w.pam(w.user()), "open: PAM_SUCCESS")); // a login arms the layer, and ends
    fs::path outside = outside_cgroup(w, "elsewhere");
    ProbeIdentity helper = identity_of(w.user());
    helper.euid = 0;
    ProbeIdentity control = other.who();
    control.euid = 0;
    BOOST_TEST(connect_as(outside, helper, "127.0.0.2") == EPERM);
    BOOST_TEST(connect_as(outside, control, "127.0.0.2") == ECONNREFUSED);
    auto raw = [] { return open_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP); };
    BOOST_TEST(run_probe_as(outside, helper, raw) == EPERM);
    BOOST_TEST(run_probe_as(outside, control, raw) == 0);
}

// unmatched = "deny": a login no policy claims is refused (not given a
// deny-everything session), and the user layer of an unclaimed user is
// deny-everything, so nothing they schedule gets out either.
BOOST_AUTO_TEST_CASE(unmatched_deny_refuses_the_login)
{
    LoginWorld w(R"(
[policy.someone-else]
match.users = ["someone-else"]
)",
                 "", "unmatched = \"deny\"\n");
    auto out = w.pam(w.user());
    BOOST_TEST(has(out, "open: PAM_PERM_DENIED"));
    BOOST_TEST(
        has(out, "session refused: refuse login of " + w.user() + ": no policy claims it and unmatched = \"deny\""));
    BOOST_TEST(w.records().empty());
    BOOST_TEST(w.session_cgroups().empty());
}

// Root and exempt users are never in the user layer; the kernel map takes
// no uid 0 even when asked.
BOOST_AUTO_TEST_CASE(root_and_exempt_users_have_no_user_layer)
{
    LoginWorld w(R"(
[policy.everyone]
match.services = ["authwall-test"]
[policy.everyone.egress]
default = "deny"
)",
                 "", "exempt_users = [\"root\", \"awt-placeholder\"]\n");
    auto st = w.maps().set_user(0, 1);
    BOOST_REQUIRE(!st.ok());
    BOOST_TEST(st.error().message() == "confine user uid 0: root is never in the user layer (exempt_users)");
    BOOST_TEST(has(w.pam("root"), "open: PAM_SUCCESS"));
    BOOST_TEST(w.maps().list_users()->empty());
    // A non-exempt user of the same policy is armed.
    BOOST_TEST(has(w.pam(w.user()), "open: PAM_SUCCESS"));
    BOOST_TEST(w.maps().list_users()->size() == 1u);
}

// A user layer that cannot be written refuses the login under fail=closed,
// with the reason; fail=open lets it through and says so.
BOOST_AUTO_TEST_CASE(a_full_users_map_fails_closed)
{
    LoginWorld w(R"(
[policy.everyone]
match.services = ["authwall-test"]
)",
                 "", "[limits]\nmax_sessions = 1\n");
    BOOST_REQUIRE(w.maps().set_user(4242424, 1).ok()); // the only slot
    auto out = w.pam(w.user());
    BOOST_TEST(has(out, "open: PAM_SESSION_ERR"));
    BOOST_TEST(has(out, "session refused (fail=closed): confine user uid " + std::to_string(uid_of(w.user()))));
    BOOST_TEST(has(out, "the users map is full"));
    BOOST_TEST(w.records().empty());
    w.set_pam_args("fail=open");
    out = w.pam(w.user());
    BOOST_TEST(has(out, "SESSION NOT ENFORCED (fail=open): confine user"));
}

// authctl revoke --user: every process of the user is cut off wherever it
// runs, each of their logins is revoked, and new logins (cron jobs too) are
// refused until --undo. Another user is untouched.
BOOST_AUTO_TEST_CASE(revoking_a_user_cuts_off_every_process_and_refuses_logins_until_lifted)
{
    LoginWorld w(kPlaceholder);
    OtherUser other;
    reload(w, policies_for(w.user()));
    auto user = identity_of(w.user());
    auto authctl = [&](const std::string& args) {
        return sh_output(std::string(AUTHWALL_AUTHCTL_BIN) + " --config " + w.config().string() + " " + args +
                         " 2>&1; echo rc=$?");
    };
    HeldSession login(w, "--rhost 192.0.2.5");
    auto records = w.records();
    BOOST_REQUIRE_EQUAL(records.size(), 1u);
    fs::path in_login = records[0].cgroup;
    fs::path outside = outside_cgroup(w, "elsewhere");
    BOOST_TEST(connect_as(outside, user, "127.0.0.1") == ECONNREFUSED); // allowed: nothing listens

    auto out = authctl("revoke --user " + w.user());
    BOOST_TEST(has(out, "revoked user " + w.user()), out);
    BOOST_TEST(has(out, "revoked session " + std::to_string(records[0].id)), out);
    BOOST_TEST(has(out, "rc=0"));
    BOOST_TEST(connect_as(outside, user, "127.0.0.1") == EPERM);
    BOOST_TEST(connect_as(in_login, user, "127.0.0.1") == EPERM);
    BOOST_TEST(connect_as(in_login, ProbeIdentity{}, "127.0.0.1") == EPERM); // the login itself is revoked
    BOOST_TEST(connect_as(outside, other.who(), "127.0.0.1") == ECONNREFUSED);
    out = w.pam(w.user());
    BOOST_TEST(has(out, "open: PAM_PERM_DENIED"));
    BOOST_TEST(has(out, "the user is revoked (authctl revoke --user " + w.user() + " --undo lifts it)"));

    out = authctl("revoke --user " + w.user() + " --undo");
    BOOST_TEST(has(out, "lifted the revocation of " + w.user()), out);
    BOOST_TEST(connect_as(outside, user, "127.0.0.1") == ECONNREFUSED);
    BOOST_TEST(has(w.pam(w.user()), "open: PAM_SUCCESS"));
    BOOST_TEST(has(authctl("revoke --user " + w.user() + " --undo"), "the user is not revoked"));
    BOOST_TEST(has(authctl("revoke"), "rc=2"));
    login.close();
}

// sshd started with `ip netns exec` sees a fresh /sys without cgroup2 or
// bpffs: the login is refused with the cause named, not "no pin".
BOOST_AUTO_TEST_CASE(a_login_service_under_ip_netns_exec_is_told_why)
{
    LoginWorld w(kPlaceholder);
    NetNs ns("awesc" + unique_suffix());
    std::string out = sh_output("ip netns exec " + ns.name() + " " + AUTHWALL_PAM_HARNESS + " " +
                                (w.dir() / "pam.d").string() + " " + w.service() + " " + w.user() + " 2>&1");
    BOOST_TEST_MESSAGE(out);
    BOOST_TEST(has(out, "open: PAM_SESSION_ERR"));
    BOOST_TEST(has(out, "with neither cgroup2 nor the bpffs holding " + w.pin_dir().string() + " mounted"));
    BOOST_TEST(has(out, "ip netns exec"));
    // authctl doctor --pam sshd finds an sshd started that way (a copy of
    // sleep named sshd stands in for it), and says nothing once it is gone.
    fs::path fake = w.dir() / "sshd";
    fs::copy_file("/bin/sleep", fake);
    std::string doctor = std::string(AUTHWALL_AUTHCTL_BIN) + " --config " + w.config().string() +
                         " doctor --json --pam sshd --pam-dir " + (w.dir() / "pam.d").string();
    {
        Background sshd("exec ip netns exec " + ns.name() + " " + fake.string() + " 30");
        BOOST_REQUIRE(wait_until(
            [&] { return sh_output("cat /proc/" + std::to_string(sshd.pid()) + "/comm") == "sshd\n"; }, 3000));
        out = sh_output(doctor);
        BOOST_TEST_MESSAGE(out);
        BOOST_TEST(has(out, "sshd (pid " + std::to_string(sshd.pid()) + "): process " + std::to_string(sshd.pid()) +
                                " runs with neither cgroup2 nor the bpffs"));
    }
    out = sh_output(doctor);
    BOOST_TEST(!has(out, "runs with neither cgroup2"));
    // nsenter into the same netns keeps the mounts: the login works.
    out = sh_output("nsenter --net=/run/netns/" + ns.name() + " " + AUTHWALL_PAM_HARNESS + " " +
                    (w.dir() / "pam.d").string() + " " + w.service() + " " + w.user() + " 2>&1");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
}

BOOST_AUTO_TEST_SUITE_END()
