// SPDX-License-Identifier: Apache-2.0
// pam_authwall.so through a real PAM stack (pam_start_confdir with a service
// file of the test), with exact return codes and the exact logged messages.
#include <boost/test/unit_test.hpp>

#include "tests/login_world.h"
#include "tests/support.h"

#include <dlfcn.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;

namespace {

const char* kPolicies = R"(
[policy.ops]
priority = 10
match.services = ["authwall-test"]
[policy.ops.egress]
default = "deny"
allow = ["127.0.0.1 tcp 9"]
)";

bool has(const std::string& text, const std::string& what)
{
    return text.find(what) != std::string::npos;
}

// A connect probe run inside the session by the harness (bash /dev/tcp).
std::string connect_probe(const std::string& address, int port)
{
    return "--exec \"bash -c 'exec 3<>/dev/tcp/" + address + "/" + std::to_string(port) + "' 2>&1 | sed s/^/probe:/\"";
}

} // namespace

BOOST_AUTO_TEST_SUITE(pam)

BOOST_AUTO_TEST_CASE(module_exports_exactly_the_two_entry_points_and_loads)
{
    auto out = sh_output(std::string("nm -D --defined-only ") + AUTHWALL_PAM_MODULE + " | awk '{print $3}'");
    BOOST_TEST(out == "pam_sm_close_session\npam_sm_open_session\n");
    void* handle = dlopen(AUTHWALL_PAM_MODULE, RTLD_NOW | RTLD_LOCAL);
    BOOST_REQUIRE_MESSAGE(handle, dlerror());
    BOOST_TEST(dlsym(handle, "pam_sm_open_session") != nullptr);
    BOOST_TEST(dlsym(handle, "pam_sm_close_session") != nullptr);
    BOOST_TEST(dlsym(handle, "pam_sm_authenticate") == nullptr);
    dlclose(handle);
}

BOOST_AUTO_TEST_CASE(open_and_close_create_and_remove_everything)
{
    LoginWorld w(kPolicies);
    auto out = w.pam(w.user() + " --rhost 192.0.2.5 --hold < /dev/null --exec 'cat /proc/self/cgroup | sed s/^/cg:/'");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "close: PAM_SUCCESS"));
    BOOST_TEST(has(out, "cg:0::/" + w.root().filename().string() + "/authwall/" + w.user() + "-"));
    auto events = w.events();
    BOOST_REQUIRE_EQUAL(events.size(), 2u);
    BOOST_TEST(has(events[0], "\"event\":\"open\""));
    BOOST_TEST(has(events[0], "\"policy\":\"ops\""));
    BOOST_TEST(has(events[0], "\"rhost\":\"192.0.2.5\""));
    BOOST_TEST(has(events[1], "\"event\":\"close\""));
    // Same correlation id on both.
    auto corr = events[0].substr(events[0].find("\"correlation\""), 48);
    BOOST_TEST(has(events[1], corr));
    // Nothing left: no record, no entry, no cgroup.
    BOOST_TEST(w.records().empty());
    BOOST_TEST(w.maps().list_sessions()->empty());
    BOOST_TEST(w.session_cgroups().empty());
}

BOOST_AUTO_TEST_CASE(session_is_enforced_while_open)
{
    LoginWorld w(kPolicies);
    // Inside the session: 127.0.0.1:9 is allowed (refused by the stack, no
    // listener), 127.0.0.2:9 is denied by the policy (EPERM).
    auto out = w.pam(w.user() + " " + connect_probe("127.0.0.2", 9));
    BOOST_TEST(has(out, "probe:bash: connect: Operation not permitted"));
    out = w.pam(w.user() + " " + connect_probe("127.0.0.1", 9));
    BOOST_TEST(has(out, "probe:bash: connect: Connection refused"));
    // The module ignores its host's environment, which the user may shape.
    out = sh_output("env AUTHWALL_MOUNTINFO=/dev/null AUTHWALL_PIN_DIR=/nonexistent AUTHWALL_CONFIG=/nonexistent "
                    "AUTHWALL_RUN_DIR=/nonexistent " AUTHWALL_PAM_HARNESS " " +
                    (w.dir() / "pam.d").string() + " " + w.service() + " " + w.user() + " " +
                    connect_probe("127.0.0.2", 9) + " 2>&1");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "probe:bash: connect: Operation not permitted"));
    // And the record says what the session was.
    out = w.pam(w.user() + " --rhost ::ffff:192.0.2.9 --no-close");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    auto records = w.records();
    BOOST_REQUIRE_EQUAL(records.size(), 1u);
    const auto& r = records[0];
    BOOST_TEST(r.version == 1);
    BOOST_TEST(r.user == w.user());
    BOOST_TEST(r.service == w.service());
    BOOST_TEST(r.rhost.value_or("") == "192.0.2.9"); // v4-mapped normalised
    BOOST_TEST(r.policy == "ops");
    BOOST_TEST(r.correlation.size() == 32u);
    BOOST_TEST(r.opened_at.size() == 24u); // 2026-11-23T01:40:20.371Z
    auto entry = w.maps().lookup_session(r.id);
    BOOST_REQUIRE(entry.ok() && entry->has_value());
    BOOST_TEST((*entry)->uid == r.uid);
    BOOST_TEST((*entry)->rhost->str() == "192.0.2.9");
}

// authpf-style accounting: the close event says how long the login lasted
// and what it did, here one connect the policy refused.
BOOST_AUTO_TEST_CASE(the_close_event_tallies_the_session)
{
    LoginWorld w(kPolicies);
    auto out = w.pam(w.user() + " " + connect_probe("127.0.0.2", 9));
    BOOST_TEST(has(out, "probe:bash: connect: Operation not permitted"));
    BOOST_TEST(has(out, "close: PAM_SUCCESS"));
    nlohmann::json close;
    for (const auto& line : w.events())
        if (auto j = nlohmann::json::parse(line, nullptr, false); !j.is_discarded() && j.value("event", "") == "close")
            close = j;
    BOOST_TEST_MESSAGE(close.dump());
    BOOST_REQUIRE(close.is_object());
    BOOST_TEST(close.value("denied", -1) == 1);
    BOOST_TEST(close.value("audited", -1) == 0);
    BOOST_TEST(close.contains("duration_s"));
    BOOST_TEST(close.contains("bytes_in"));
    BOOST_TEST(close.contains("packets_out"));
    for (const auto& line : w.events()) // the open event has no tally
        if (line.find("\"event\":\"open\"") != std::string::npos)
            BOOST_TEST(line.find("duration_s") == std::string::npos);
}

// `su` inside a session runs the session stack again: it must neither move
// out of the enforced cgroup nor, at its close, end the enclosing session.
BOOST_AUTO_TEST_CASE(login_inside_a_session_stays_in_it)
{
    LoginWorld w(kPolicies);
    fs::path inner = w.dir() / "inner.sh";
    {
        std::ofstream f(inner);
        f << "sed s/^/outer:/ /proc/self/cgroup\n"
          << AUTHWALL_PAM_HARNESS << " " << (w.dir() / "pam.d").string() << " " << w.service() << " " << w.user()
          << " --exec 'sed s/^/inner:/ /proc/self/cgroup; bash -c \"exec 3<>/dev/tcp/127.0.0.2/9\" 2>&1 | sed "
             "s/^/probe:/' | sed s/^/nested-/\n"
          << "ls " << (w.run_dir() / "sessions").string() << " | sed s/^/left:/\n";
    }
    auto out = w.pam(w.user() + " --exec 'sh " + inner.string() + "'");
    auto line = [&](const std::string& tag) {
        auto at = out.find(tag);
        return at == std::string::npos ? std::string()
                                       : out.substr(at + tag.size(), out.find('\n', at) - at - tag.size());
    };
    BOOST_TEST(has(out, "nested-open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "nested-close: PAM_SUCCESS"));
    BOOST_TEST(has(out, "login of " + w.user() + " inside session "));
    BOOST_REQUIRE(!line("outer:0::").empty());
    BOOST_TEST(line("inner:0::") == line("outer:0::")); // not moved
    BOOST_TEST(has(out, "nested-probe:bash: connect: Operation not permitted"));
    BOOST_TEST(has(out, "left:")); // the outer session outlived the inner close
    BOOST_TEST(has(out, "close: PAM_SUCCESS"));
    BOOST_TEST(w.records().empty());
    BOOST_TEST(w.maps().list_sessions()->empty());
    auto events = w.events();
    BOOST_TEST(events.size() == 2u); // the outer open and close only
}

BOOST_AUTO_TEST_CASE(close_from_another_process_uses_the_record)
{
    LoginWorld w(kPolicies);
    auto out = w.pam(w.user() + " --close-in-child");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "close(child): PAM_SUCCESS"));
    BOOST_TEST(w.records().empty());
    BOOST_TEST(w.maps().list_sessions()->empty());
    BOOST_TEST(w.session_cgroups().empty());
}

BOOST_AUTO_TEST_CASE(leftover_processes_are_revoked_then_killed_at_close)
{
    LoginWorld w(kPolicies);
    // A background process that outlives the login (nohup-style).
    // Its argument is unique to this test run, so that no other `sleep` on
    // the machine can be mistaken for it.
    std::string duration = "300." + unique_suffix();
    auto out = w.pam(w.user() + " --exec 'setsid sleep " + duration + " >/dev/null 2>&1 < /dev/null &'");
    BOOST_TEST(has(out, "close: PAM_SUCCESS"));
    BOOST_TEST(has(w.events().back(), "left-over processes killed"));
    BOOST_TEST(w.session_cgroups().empty());
    BOOST_TEST(sh("pgrep -xf 'sleep " + duration + "' >/dev/null") != 0);
}

BOOST_AUTO_TEST_CASE(bad_username_is_refused)
{
    LoginWorld w(kPolicies);
    auto out = w.pam("../etc");
    BOOST_TEST(has(out, "open: PAM_USER_UNKNOWN"));
    BOOST_TEST(has(out, "refuse user '../etc': starts with '.'"));
    out = w.pam("'ev il'");
    BOOST_TEST(has(out, "open: PAM_USER_UNKNOWN"));
    BOOST_TEST(has(out, "refuse user 'ev il': contains ' ' at position 3"));
    out = w.pam("nosuchuser-authwall");
    BOOST_TEST(has(out, "open: PAM_USER_UNKNOWN"));
    BOOST_TEST(has(out, "refuse user 'nosuchuser-authwall': unknown to NSS"));
    BOOST_TEST(w.records().empty());
}

BOOST_AUTO_TEST_CASE(junk_rhost_per_mode)
{
    LoginWorld w(kPolicies, "rhost=strict");
    auto out = w.pam(w.user() + " --rhost 'evil.example.com;rm'");
    BOOST_TEST(has(out, "open: PAM_PERM_DENIED"));
    BOOST_TEST(has(out, "PAM_RHOST 'evil.example.com;rm' is not an IP address (rhost=strict)"));
    out = w.pam(w.user() + " --rhost fe80::1%eth0"); // zone ids are fine
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));

    w.set_pam_args("rhost=lax");
    out = w.pam(w.user() + " --rhost 'evil.example.com' --no-close");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "the session has no remote address (rhost=lax)"));
    BOOST_REQUIRE_EQUAL(w.records().size(), 1u);
    BOOST_TEST(!w.records()[0].rhost.has_value());
}

BOOST_AUTO_TEST_CASE(missing_or_untrusted_configuration_fails_closed)
{
    LoginWorld w(kPolicies);
    fs::path config = w.config();

    w.set_pam_args("config=/nonexistent/authwall.toml");
    auto out = w.pam(w.user());
    BOOST_TEST(has(out, "open: PAM_SESSION_ERR"));
    BOOST_TEST(has(out, "session refused (fail=closed): read configuration /nonexistent/authwall.toml: "
                        "/nonexistent/authwall.toml:0:0: read /nonexistent/authwall.toml: No such file or directory"));

    w.set_pam_args("config=/nonexistent/authwall.toml fail=open");
    out = w.pam(w.user());
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "SESSION NOT ENFORCED (fail=open)"));

    w.set_pam_args("");
    chmod(config.c_str(), 0666);
    out = w.pam(w.user());
    BOOST_TEST(has(out, "open: PAM_SESSION_ERR"));
    BOOST_TEST(has(out, "is writable by group or others (chmod go-w it)"));
    chmod(config.c_str(), 0644);

    // The published index must be root's too.
    fs::path index = w.run_dir() / "policies.json";
    BOOST_REQUIRE_EQUAL(chown(index.c_str(), 65534, 65534), 0);
    out = w.pam(w.user());
    BOOST_TEST(has(out, "open: PAM_SESSION_ERR"));
    BOOST_TEST(has(out, "policies.json: is owned by uid 65534, not by uid 0"));
    BOOST_REQUIRE_EQUAL(chown(index.c_str(), 0, 0), 0);
    BOOST_TEST(has(w.pam(w.user()), "open: PAM_SUCCESS"));
    BOOST_TEST(w.records().empty());
}

BOOST_AUTO_TEST_CASE(unknown_module_argument_is_a_service_error)
{
    LoginWorld w(kPolicies, "fial=open");
    auto out = w.pam(w.user());
    BOOST_TEST(has(out, "open: PAM_SERVICE_ERR"));
    BOOST_TEST(has(out, "parse module arguments 'fial=open': unknown argument"));
}

BOOST_AUTO_TEST_CASE(exempt_users_get_no_session_even_with_the_loader_gone)
{
    LoginWorld w(kPolicies, "debug", "exempt_users = [\"root\", \"" + std::string("awt") + unique_suffix() + "\"]\n");
    auto out = w.pam(w.user() + " --no-close");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "is exempt: no session"));
    BOOST_TEST(w.records().empty());
    // No published policies (loader never ran or its run dir is gone): an
    // exempt user still logs in; anyone else is refused (fail=closed).
    fs::remove(w.run_dir() / "policies.json");
    BOOST_TEST(has(w.pam(w.user()), "open: PAM_SUCCESS"));
    out = w.pam("root");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
}

BOOST_AUTO_TEST_CASE(loader_never_ran_fails_closed_for_others)
{
    LoginWorld w(kPolicies);
    fs::remove(w.run_dir() / "policies.json");
    auto out = w.pam(w.user());
    BOOST_TEST(has(out, "open: PAM_SESSION_ERR"));
    BOOST_TEST(has(out, "authwall-loader has not published the policies in force (is it running?)"));
}

// [pam] fail in authwall.toml decides when the module line does not; a
// fail= on the line wins.
BOOST_AUTO_TEST_CASE(pam_fail_of_the_configuration_applies_unless_the_line_says)
{
    LoginWorld w(kPolicies, "", "[pam]\nfail = \"open\"\n");
    fs::remove(w.run_dir() / "policies.json");
    auto out = w.pam(w.user());
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "SESSION NOT ENFORCED (fail=open): "));
    w.set_pam_args("fail=closed");
    out = w.pam(w.user());
    BOOST_TEST(has(out, "open: PAM_SESSION_ERR"));
    BOOST_TEST(has(out, "session refused (fail=closed): "));
}

#ifndef AUTHWALL_SANITIZED // valgrind cannot run AddressSanitizer-instrumented programs
BOOST_AUTO_TEST_CASE(valgrind_memcheck_is_clean_on_open_close)
{
    LoginWorld w(kPolicies);
    std::string cmd = std::string("valgrind --quiet --error-exitcode=99 --leak-check=full "
                                  "--errors-for-leak-kinds=definite,indirect --suppressions=" AUTHWALL_SOURCE_DIR
                                  "/tests/valgrind.supp ") +
                      AUTHWALL_PAM_HARNESS + " " + (w.dir() / "pam.d").string() + " " + w.service() + " " + w.user() +
                      " --rhost 192.0.2.5 2>&1; echo rc=$?";
    auto out = sh_output(cmd);
    BOOST_TEST_MESSAGE(out);
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "close: PAM_SUCCESS"));
    BOOST_TEST(has(out, "rc=0")); // 99 on any memcheck error or definite/indirect leak
    BOOST_TEST(w.records().empty());
}
#endif

BOOST_AUTO_TEST_SUITE_END()
