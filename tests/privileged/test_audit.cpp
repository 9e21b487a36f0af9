// SPDX-License-Identifier: Apache-2.0
// Audit mode and logged rules on the real kernel: the connect that enforce
// mode refuses passes in audit mode, is counted as audited and reported
// with the rule that would have refused it; a rule with log = true reports
// every match it allows. Switching modes is a reload like any other.
#include <boost/test/unit_test.hpp>

#include "core/base/fd.h"
#include "core/dataplane/events.h"
#include "tests/support.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

using namespace authwall;
using namespace authwall::test;

namespace {

// Rule numbers follow the order rules are read: egress allow (1), then deny (2).
std::string policy(const std::string& mode)
{
    return R"(
[policy.web]
mode = ")" +
           mode +
           R"("
[policy.web.egress]
default = "deny"
allow = ["127.0.0.1 tcp"]
deny = ["127.0.0.1 tcp 2222"]

[policy.web.sockets]
deny_families = ["raw"]
)";
}
constexpr uint32_t kDenyRule = 2;

} // namespace

BOOST_AUTO_TEST_SUITE(audit)

BOOST_AUTO_TEST_CASE(audit_passes_what_enforce_refuses_and_reports_the_rule)
{
    Sandbox box(policy("enforce"));
    auto id = box.open_session("s1", "web");
    auto cg = box.root() / "s1";
    std::vector<DecisionEvent> events;
    auto reader = EventReader::open(box.pin_dir(), [&](const DecisionEvent& e) { events.push_back(e); });
    BOOST_REQUIRE(reader.ok());

    // Enforce: the deny rule and the default refuse; the allow rule passes.
    BOOST_TEST(run_probe(cg, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 2222); }) == EPERM);
    BOOST_TEST(run_probe(cg, "new", [] { return connect_with_listener("127.0.0.2", "127.0.0.2", 8080); }) == EPERM);
    BOOST_TEST(run_probe(cg, "new", [] { return open_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP); }) == EPERM);
    BOOST_TEST(run_probe(cg, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 8080); }) == 0);
    BOOST_REQUIRE(reader->poll(100).ok());
    BOOST_REQUIRE_EQUAL(events.size(), 3u);
    BOOST_TEST(events[0].verdict == static_cast<unsigned>(AW_EVENT_DENY));
    BOOST_TEST(events[0].rule == kDenyRule);
    BOOST_TEST(events[0].reason == static_cast<unsigned>(AW_REASON_RULE));
    BOOST_TEST(!events[0].comm.empty()); // the connecting task's name
    BOOST_TEST(events[1].rule == 0u);    // the default refused
    BOOST_TEST(events[1].reason == static_cast<unsigned>(AW_REASON_DEFAULT));
    auto enforced = box.maps().session_stats(id);
    BOOST_REQUIRE(enforced.ok());
    BOOST_TEST(enforced->denied_total() == 3u);
    BOOST_TEST(enforced->audited == 0u);

    // The same policy in audit mode, swapped in atomically: the same
    // attempts pass, each counted and reported as audited.
    events.clear();
    box.install_policies(policy("audit"));
    BOOST_TEST(run_probe(cg, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 2222); }) == 0);
    BOOST_TEST(run_probe(cg, "new", [] { return connect_with_listener("127.0.0.2", "127.0.0.2", 8080); }) == 0);
    BOOST_TEST(run_probe(cg, "new", [] { return open_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP); }) == 0);
    BOOST_TEST(run_probe(cg, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 8080); }) == 0);
    // Asked again, it is reported again: an audited allow is never remembered.
    BOOST_TEST(run_probe(cg, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 2222); }) == 0);
    BOOST_REQUIRE(reader->poll(100).ok());
    BOOST_REQUIRE_EQUAL(events.size(), 4u);
    for (const auto& e : events)
        BOOST_TEST(e.verdict == static_cast<unsigned>(AW_EVENT_AUDIT));
    BOOST_TEST(events[0].rule == kDenyRule);
    BOOST_TEST(events[0].port == 2222);
    BOOST_TEST(events[1].reason == static_cast<unsigned>(AW_REASON_DEFAULT));
    BOOST_TEST(events[2].reason == static_cast<unsigned>(AW_REASON_FAMILY));
    BOOST_TEST(events[3].rule == kDenyRule);
    auto audited = box.maps().session_stats(id);
    BOOST_REQUIRE(audited.ok());
    BOOST_TEST(audited->denied_total() == 3u); // unchanged
    BOOST_TEST(audited->audited == 4u);
    // The host's counters say why, by hook and reason, for both verdicts.
    auto why = box.maps().refusals();
    BOOST_REQUIRE(why.ok());
    BOOST_TEST(why->denied[AW_HOOK_CONNECT4][AW_REASON_RULE] == 1u);
    BOOST_TEST(why->denied[AW_HOOK_CONNECT4][AW_REASON_DEFAULT] == 1u);
    BOOST_TEST(why->denied[AW_HOOK_SOCK_CREATE][AW_REASON_FAMILY] == 1u);
    BOOST_TEST(why->audited[AW_HOOK_CONNECT4][AW_REASON_RULE] == 2u);
    BOOST_TEST(why->audited[AW_HOOK_CONNECT4][AW_REASON_DEFAULT] == 1u);
    BOOST_TEST(why->audited[AW_HOOK_SOCK_CREATE][AW_REASON_FAMILY] == 1u);

    // Back to enforce: refused again at once.
    box.install_policies(policy("enforce"));
    BOOST_TEST(run_probe(cg, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 2222); }) == EPERM);
}

// A revoked session is refused in audit mode too: revocation is the
// operator's act, not the policy's decision.
BOOST_AUTO_TEST_CASE(audit_mode_never_lets_a_revoked_session_through)
{
    Sandbox box(policy("audit"));
    auto id = box.open_session("s1", "web");
    auto cg = box.root() / "s1";
    // Passed (nothing listens in the probe's fresh network namespace).
    BOOST_TEST(run_probe(cg, "new", [] { return tcp_connect("127.0.0.2", 8080); }) == ECONNREFUSED);
    BOOST_REQUIRE(box.maps().set_session_flags(id, AW_SESSION_REVOKED, 0).ok());
    BOOST_TEST(run_probe(cg, "new", [] { return tcp_connect("127.0.0.2", 8080); }) == EPERM);
    BOOST_TEST(run_probe(cg, "new", [] { return tcp_connect("127.0.0.1", 8080); }) == EPERM);
}

BOOST_AUTO_TEST_CASE(a_logged_rule_reports_every_match_it_allows)
{
    Sandbox box(R"(
[policy.web]
[policy.web.egress]
default = "deny"
allow = [{ rule = "127.0.0.1 tcp 8080", log = true }, "127.0.0.1 tcp 8081"]
)");
    box.open_session("s1", "web");
    auto cg = box.root() / "s1";
    std::vector<DecisionEvent> events;
    auto reader = EventReader::open(box.pin_dir(), [&](const DecisionEvent& e) { events.push_back(e); });
    BOOST_REQUIRE(reader.ok());

    BOOST_TEST(run_probe(cg, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 8080); }) == 0);
    BOOST_TEST(run_probe(cg, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 8080); }) == 0);
    BOOST_TEST(run_probe(cg, "new", [] { return connect_with_listener("127.0.0.1", "127.0.0.1", 8081); }) ==
               0); // not logged
    BOOST_REQUIRE(reader->poll(100).ok());
    BOOST_REQUIRE_EQUAL(events.size(), 2u);
    for (const auto& e : events) {
        BOOST_TEST(e.verdict == static_cast<unsigned>(AW_EVENT_LOG));
        BOOST_TEST(e.rule == 1u);
        BOOST_TEST(e.port == 8080);
    }
}

BOOST_AUTO_TEST_SUITE_END()
