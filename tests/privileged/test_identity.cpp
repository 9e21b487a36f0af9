// SPDX-License-Identifier: Apache-2.0
// A login identity that can be trusted and correlated, through the real
// module and libpam (pam_start_confdir): rhost=kernel takes the address from
// the peer of the connection the login process holds, and what an earlier
// module puts in the PAM environment reaches the record, the events and the
// nft comment, sanitised.
#include <boost/test/unit_test.hpp>

#include "tests/login_world.h"
#include "tests/support.h"

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;

namespace {

// The login's policy by its address (the highest priority that matches
// wins): near for loopback, far for the documentation range PAM_RHOST
// claims, any for the rest.
const char* kPolicies = R"(
[policy.near]
priority = 30
match.rhosts = ["127.0.0.0/8", "::1/128"]
[policy.near.egress]
default = "allow"
[policy.far]
priority = 20
match.rhosts = ["192.0.2.0/24"]
[policy.far.egress]
default = "allow"
[policy.any]
priority = 10
match.services = ["authwall-test", "authwall-env"]
[policy.any.egress]
default = "allow"
)";

bool has(const std::string& text, const std::string& what)
{
    return text.find(what) != std::string::npos;
}

void write(const fs::path& p, const std::string& text)
{
    std::ofstream(p) << text;
    chmod(p.c_str(), 0644);
}

// The harness on `service` of the world's pam.d.
std::string harness(const LoginWorld& w, const std::string& service, const std::string& args,
                    const std::string& env = "")
{
    std::string cmd = env + " " + AUTHWALL_PAM_HARNESS + " " + (w.dir() / "pam.d").string() + " " + service + " " +
                      w.user() + " " + args + " 2>&1";
    auto out = sh_output(cmd);
    BOOST_TEST_MESSAGE("pam_harness " << service << " " << args << ":\n" << out);
    return out;
}

// A listener the harness connects to; the connection waits in its queue.
struct LoopbackListener {
    int fd = -1;
    uint16_t port = 0;
    explicit LoopbackListener(const std::string& address)
    {
        for (int i = 0; i < 50 && fd < 0; ++i) {
            port = static_cast<uint16_t>(30000 + (getpid() * 7 + i * 131) % 20000);
            fd = tcp_listen(address, port);
        }
    }
    ~LoopbackListener()
    {
        if (fd >= 0)
            ::close(fd);
    }
};

// The stack an SSO module and authwall make: pam_env hands the values.
void env_stack(const LoginWorld& w)
{
    write(w.dir() / "env.conf", "AUTHWALL_AUTH_CORRELATION DEFAULT=sso-8f14e45f-ceea\n"
                                "AUTHWALL_AUTH_CLAIMS DEFAULT=amr=pwd+otp,acr=mfa\n");
    write(w.dir() / "pam.d" / "authwall-env",
          "session required pam_env.so readenv=0 user_readenv=0 conffile=" + (w.dir() / "env.conf").string() +
              "\nsession required " + AUTHWALL_PAM_MODULE + " config=" + w.config().string() + "\n");
}

} // namespace

BOOST_AUTO_TEST_SUITE(identity)

BOOST_AUTO_TEST_CASE(rhost_kernel_takes_the_peer_of_the_login_connection)
{
    LoginWorld w(kPolicies, "rhost=kernel");
    LoopbackListener v4("127.0.0.1");
    BOOST_REQUIRE_GE(v4.fd, 0);
    // PAM_RHOST claims 192.0.2.5; the connection the login holds comes from
    // (leads to) 127.0.0.1: the kernel's address decides the policy.
    auto out = w.pam(w.user() + " --rhost 192.0.2.5 --connect 127.0.0.1 " + std::to_string(v4.port) + " --no-close");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "PAM_RHOST 192.0.2.5 is not the peer of the login's connection, 127.0.0.1, which is used "
                        "(rhost=kernel)"));
    auto records = w.records();
    BOOST_REQUIRE_EQUAL(records.size(), 1u);
    BOOST_TEST(records[0].rhost.value_or("-") == "127.0.0.1");
    BOOST_TEST(records[0].policy == "near");
    auto entry = w.maps().lookup_session(records[0].id);
    BOOST_REQUIRE(entry.ok() && entry->has_value());
    BOOST_TEST((*entry)->rhost->str() == "127.0.0.1"); // what from_rhost_only compares with

    // Control: the same login under rhost=lax believes PAM_RHOST.
    w.set_pam_args("rhost=lax");
    out = w.pam(w.user() + " --rhost 192.0.2.5 --connect 127.0.0.1 " + std::to_string(v4.port) + " --no-close");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    bool far = false;
    for (const auto& r : w.records())
        far = far || (r.policy == "far" && r.rhost.value_or("") == "192.0.2.5");
    BOOST_TEST(far);
}

BOOST_AUTO_TEST_CASE(rhost_kernel_finds_an_ipv6_peer)
{
    LoginWorld w(kPolicies, "rhost=kernel");
    LoopbackListener v6("::1");
    if (v6.fd < 0) {
        BOOST_TEST_MESSAGE("skipped: no IPv6 loopback here");
        return;
    }
    auto out = w.pam(w.user() + " --connect ::1 " + std::to_string(v6.port) + " --no-close");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(!has(out, "is not the peer")); // no PAM_RHOST: nothing to compare
    auto records = w.records();
    BOOST_REQUIRE_EQUAL(records.size(), 1u);
    BOOST_TEST(records[0].rhost.value_or("-") == "::1");
    BOOST_TEST(records[0].policy == "near");
}

BOOST_AUTO_TEST_CASE(rhost_kernel_without_a_connection_fails_as_fail_says)
{
    LoginWorld w(kPolicies, "rhost=kernel");
    auto out = w.pam(w.user() + " --rhost 192.0.2.5");
    BOOST_TEST(has(out, "open: PAM_SESSION_ERR"));
    BOOST_TEST(has(out, "session refused (fail=closed): rhost=kernel user " + w.user() +
                            ": find the remote address of the login process"));
    BOOST_TEST(has(out, "holds no established TCP connection"));
    BOOST_TEST(w.records().empty());
    BOOST_TEST(w.maps().list_sessions()->empty());

    // Not held to it: an exempt user (root at the console must never be
    // locked out) and a user-only stack (the user layer has no address).
    out = w.pam("root --rhost 192.0.2.5");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    w.set_pam_args("rhost=kernel user_only");
    out = w.pam(w.user());
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(w.records().empty());

    w.set_pam_args("rhost=kernel fail=open");
    out = w.pam(w.user() + " --rhost 192.0.2.5");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "SESSION NOT ENFORCED (fail=open): rhost=kernel"));
    BOOST_TEST(w.records().empty());
}

// pam_env, as an administrator would set the values, before the module.
BOOST_AUTO_TEST_CASE(values_from_pam_env_reach_the_record_and_the_events)
{
    LoginWorld w(kPolicies);
    env_stack(w);
    // While the login is open: its record, and the listing scripts read.
    auto listed = w.dir() / "listed.json";
    std::string authctl = std::string(AUTHWALL_AUTHCTL_BIN) + " --config " + w.config().string() + " --pin-dir " +
                          w.pin_dir().string() + " --run-dir " + w.run_dir().string() + " sessions -o json > " +
                          listed.string();
    auto out = harness(w, "authwall-env",
                       "--rhost 192.0.2.5 --hold < /dev/null --exec 'cat " + (w.run_dir() / "sessions").string() +
                           "/*.json; " + authctl + "'");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "close: PAM_SUCCESS"));
    BOOST_TEST(has(out, "\"auth_correlation\": \"sso-8f14e45f-ceea\""));
    BOOST_TEST(has(out, "\"auth_claims\": \"amr=pwd+otp,acr=mfa\""));
    auto sessions = nlohmann::json::parse(std::ifstream(listed), nullptr, false).value("sessions", nlohmann::json());
    BOOST_REQUIRE_EQUAL(sessions.size(), 1u);
    BOOST_TEST(sessions[0].at("auth_correlation") == "sso-8f14e45f-ceea");
    BOOST_TEST(sessions[0].at("auth_claims") == "amr=pwd+otp,acr=mfa");
    auto events = w.events();
    BOOST_REQUIRE_EQUAL(events.size(), 2u);
    for (const auto& line : events) {
        auto e = nlohmann::json::parse(line);
        BOOST_TEST(e.value("auth_correlation", "") == "sso-8f14e45f-ceea");
        BOOST_TEST(e.value("auth_claims", "") == "amr=pwd+otp,acr=mfa");
    }
}

BOOST_AUTO_TEST_CASE(the_nft_elements_carry_them_in_their_comment)
{
    NetNs ns("awt-id-" + unique_suffix());
    InNetns in(ns);
    LoginWorld w(kPolicies, "", "nft_mirror = true\n");
    env_stack(w);
    auto out = harness(w, "authwall-env", "--rhost 192.0.2.5 --no-close");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    auto records = w.records();
    BOOST_REQUIRE_EQUAL(records.size(), 1u);
    auto listed = sh_output("nft list set inet authwall sessions_v4");
    BOOST_TEST(has(listed, "comment \"user=" + w.user() + " policy=far session=" + std::to_string(records[0].id) +
                               " auth=sso-8f14e45f-ceea claims=amr=pwd+otp,acr=mfa\""),
               listed);
}

// A stand-in for an SSO module (tests/pam/pam_putenv_test.cpp) hands hostile
// values; and the login service's own process environment is never read.
BOOST_AUTO_TEST_CASE(hostile_values_are_not_recorded_and_the_process_environment_is_ignored)
{
    LoginWorld w(kPolicies);
    std::string overlong(200, 'x');
    write(w.dir() / "pam.d" / "authwall-env",
          std::string("session required ") + AUTHWALL_PAM_PUTENV_TEST +
              " AUTHWALL_AUTH_CORRELATION=tok%0aAUTHWALL_EVENT=close AUTHWALL_AUTH_CLAIMS=" + overlong +
              "\nsession required " + AUTHWALL_PAM_MODULE + " config=" + w.config().string() + "\n");
    auto out = harness(w, "authwall-env", "--no-close", "env AUTHWALL_AUTH_CORRELATION=from-the-process");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "AUTHWALL_AUTH_CORRELATION 'tok\\x0aAUTHWALL_EVENT=close' has byte 0x0a at position 4"));
    BOOST_TEST(has(out, "AUTHWALL_AUTH_CLAIMS '" + std::string(64, 'x') + "...' is 200 bytes, more than 128"));
    auto records = w.records();
    BOOST_REQUIRE_EQUAL(records.size(), 1u);
    BOOST_TEST(records[0].auth_correlation.empty());
    BOOST_TEST(records[0].auth_claims.empty());

    // Invalid UTF-8 in one, a good value in the other: the good one stays.
    write(w.dir() / "pam.d" / "authwall-env",
          std::string("session required ") + AUTHWALL_PAM_PUTENV_TEST +
              " AUTHWALL_AUTH_CORRELATION=ok-4711 AUTHWALL_AUTH_CLAIMS=caf%c3%a9%ff" + "\nsession required " +
              AUTHWALL_PAM_MODULE + " config=" + w.config().string() + "\n");
    out = harness(w, "authwall-env", "--no-close");
    BOOST_TEST(has(out, "open: PAM_SUCCESS"));
    BOOST_TEST(has(out, "AUTHWALL_AUTH_CLAIMS 'caf\\xc3\\xa9\\xff' has byte 0xc3 at position 4"));
    bool found = false;
    for (const auto& r : w.records())
        found = found || (r.auth_correlation == "ok-4711" && r.auth_claims.empty());
    BOOST_TEST(found);
    for (const auto& line : w.events())
        BOOST_TEST(!has(line, "AUTHWALL_EVENT=close")); // nothing forged into the log
}

BOOST_AUTO_TEST_SUITE_END()
