// SPDX-License-Identifier: Apache-2.0
// authctl policy test's decision on compiled entries: rules, defaults,
// audit mode, the fallback, inbound flows (the privileged authctl_cli suite
// holds it to the kernel's own decisions).
#include <boost/test/unit_test.hpp>

#include "authctl/explain.h"
#include "core/policy/policy_file.h"

#include <netinet/in.h>

using namespace authwall;

namespace {

struct Compiled {
    CompiledPolicies c;
    explicit Compiled(const std::string& text, Fallback fallback = {})
    {
        auto load = parse_policy_text(text, "p.toml");
        for (const auto& e : load.errors)
            BOOST_TEST_MESSAGE(e.str());
        BOOST_REQUIRE(load.ok());
        auto compiled = compile_policies(load.policies, fallback);
        BOOST_REQUIRE(compiled.ok());
        c = *compiled;
    }
    LayerVerdict decide(const std::string& policy, const std::string& to, uint8_t proto, uint16_t port,
                        uint8_t dir = AW_DIR_EGRESS, std::optional<IpAddress> rhost = std::nullopt) const
    {
        EntryIndex index(c.entries);
        TestFlow f{dir, *IpAddress::parse(to), proto, port};
        uint32_t id = c.ids.count(policy) ? c.ids.at(policy) : 4242; // 4242: not in force
        return decide_flow(index, id, f, rhost);
    }
};

const char* kPolicy = R"([policy.web]
[policy.web.egress]
default = "deny"
allow = ["10.0.0.0/8 tcp 1024-65535", { rule = "10.1.0.0/16 udp 53", log = true }, "10.2.0.0/16 udp"]
deny = ["10.9.0.0/16 tcp 8080"]
[policy.web.ingress]
from_rhost_only = true

[policy.trial]
mode = "audit"
[policy.trial.egress]
default = "deny"
deny = ["192.0.2.1"]
)";

} // namespace

BOOST_AUTO_TEST_SUITE(explain)

BOOST_AUTO_TEST_CASE(rules_defaults_and_their_numbers)
{
    Compiled p(kPolicy);
    auto v = p.decide("web", "10.9.1.1", IPPROTO_TCP, 8080);
    BOOST_TEST(v.verdict() == "deny");
    BOOST_TEST(v.reason == "rule");
    BOOST_TEST(v.rule == 4u);
    v = p.decide("web", "10.9.1.1", IPPROTO_TCP, 8081); // in the range, in its blocks
    BOOST_TEST(v.verdict() == "allow");
    BOOST_TEST(v.rule == 1u);
    BOOST_TEST(v.allowed_by == "rule");
    v = p.decide("web", "10.9.1.1", IPPROTO_TCP, 1023);
    BOOST_TEST(v.verdict() == "deny");
    BOOST_TEST(v.reason == "default");
    BOOST_TEST(v.rule == 0u);
    v = p.decide("web", "10.1.2.3", IPPROTO_UDP, 53);
    BOOST_TEST(v.verdict() == "allow");
    BOOST_TEST(v.log);
}

BOOST_AUTO_TEST_CASE(audit_mode_reports_what_would_be_refused)
{
    Compiled p(kPolicy);
    auto v = p.decide("trial", "192.0.2.1", IPPROTO_TCP, 443);
    BOOST_TEST(v.verdict() == "audit");
    BOOST_TEST(v.reason == "rule");
    BOOST_TEST(v.rule == 1u);
    BOOST_TEST(p.decide("trial", "198.51.100.1", IPPROTO_TCP, 443).verdict() == "audit"); // the default
}

BOOST_AUTO_TEST_CASE(inbound_flows_and_the_fallback)
{
    Compiled p(kPolicy, Fallback{Fallback::Kind::Deny, {}});
    auto rhost = IpAddress::parse("192.0.2.7");
    auto v = p.decide("web", "192.0.2.7", IPPROTO_TCP, 22, AW_DIR_INGRESS, rhost);
    BOOST_TEST(v.verdict() == "allow");
    BOOST_TEST(v.allowed_by == "rhost");
    v = p.decide("web", "192.0.2.8", IPPROTO_TCP, 22, AW_DIR_INGRESS, rhost);
    BOOST_TEST(v.verdict() == "deny");
    BOOST_TEST(v.reason == "not-rhost");
    // A datagram from a peer the egress rules reach is a reply (the peer's
    // port is not part of the question: its address and protocol decide).
    v = p.decide("web", "10.2.0.1", IPPROTO_UDP, 40000, AW_DIR_INGRESS, rhost);
    BOOST_TEST(v.allowed_by == "reply");
    v = p.decide("web", "10.3.0.1", IPPROTO_UDP, 40000, AW_DIR_INGRESS, rhost);
    BOOST_TEST(v.verdict() == "deny");
    // A policy id not in force: the fallback (deny) decides, as in the kernel.
    v = p.decide("gone", "10.0.0.1", IPPROTO_TCP, 2000);
    BOOST_TEST(v.verdict() == "deny");
    BOOST_TEST(v.policy_id == AW_POLICY_FALLBACK);
}

// $rhost rules decide only for the login's own address; a deny among them
// wins over an allow of the direction's rules.
BOOST_AUTO_TEST_CASE(rhost_rules_follow_the_login_address)
{
    Compiled c(R"([policy.r.egress]
default = "deny"
allow = ["$rhost tcp 22", "10.0.0.0/8 tcp 80"]
deny = ["$rhost tcp 80"]
[policy.r.ingress]
default = "deny"
allow = ["$rhost tcp 8080"]
)");
    auto rhost = IpAddress::parse("10.1.2.3");
    auto v = c.decide("r", "10.1.2.3", IPPROTO_TCP, 22, AW_DIR_EGRESS, rhost);
    BOOST_TEST(!v.refused);
    BOOST_TEST(v.rule == 1u);
    BOOST_TEST(c.decide("r", "10.1.2.4", IPPROTO_TCP, 22, AW_DIR_EGRESS, rhost).refused);
    BOOST_TEST(c.decide("r", "10.1.2.3", IPPROTO_TCP, 22).refused); // a session without rhost
    auto denied = c.decide("r", "10.1.2.3", IPPROTO_TCP, 80, AW_DIR_EGRESS, rhost);
    BOOST_TEST(denied.refused);
    BOOST_TEST(denied.rule == 3u);
    BOOST_TEST(!c.decide("r", "10.1.2.4", IPPROTO_TCP, 80, AW_DIR_EGRESS, rhost).refused);
    BOOST_TEST(!c.decide("r", "10.1.2.3", IPPROTO_TCP, 8080, AW_DIR_INGRESS, rhost).refused);
    BOOST_TEST(c.decide("r", "10.1.2.4", IPPROTO_TCP, 8080, AW_DIR_INGRESS, rhost).refused);
}

BOOST_AUTO_TEST_SUITE_END()
