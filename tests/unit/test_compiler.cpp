#include <boost/test/unit_test.hpp>

#include "core/policy/compiler.h"
#include "core/policy/policy_file.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

using namespace authwall;

namespace {

std::vector<Policy> parse(const std::string& text)
{
    auto load = parse_policy_text(text, "t.toml");
    for (const auto& e : load.errors)
        BOOST_TEST_MESSAGE(e.str());
    BOOST_REQUIRE(load.ok());
    return load.policies;
}

const CompiledEntry* find(const CompiledPolicies& c, uint32_t id, uint8_t dir, uint8_t proto, uint16_t port,
                          const std::string& prefix)
{
    auto key = make_rule_key(id, dir, proto, port, *Prefix::parse(prefix));
    for (const auto& e : c.entries)
        if (std::memcmp(&e.key, &key, sizeof(key)) == 0)
            return &e;
    return nullptr;
}

} // namespace

BOOST_AUTO_TEST_SUITE(compiler)

BOOST_AUTO_TEST_CASE(small_policy_compiles_to_the_expected_entries)
{
    auto policies = parse(R"(
[policy.ops]
[policy.ops.egress]
default = "deny"
allow = ["10.20.0.0/16 tcp 22", "10.0.0.53 udp 53", "2001:db8::/32 tcp 443-444"]
deny = ["169.254.169.254"]
[policy.ops.ingress]
from_rhost_only = true
[policy.ops.bind]
deny = ["tcp 1-3"]
[policy.ops.sockets]
deny_families = ["packet", "raw"]
)");
    auto c = compile_policies(policies, Fallback{});
    BOOST_REQUIRE(c.ok());
    uint32_t id = c->ids.at("ops");
    BOOST_TEST(id == 1u);

    // meta + 4 egress (443 and 444 expand) + 1 deny + 3 bind + fallback meta
    BOOST_TEST(c->entries.size() == 1u + 4u + 1u + 3u + 1u);

    auto meta = find(*c, id, AW_DIR_META, 0, 0, "any");
    BOOST_REQUIRE(meta);
    BOOST_TEST(meta->value.verdict == AW_VERDICT_DENY);
    BOOST_TEST(meta->value.ingress_default == AW_VERDICT_DENY); // implied by from_rhost_only
    BOOST_TEST(meta->value.bind_default == AW_VERDICT_ALLOW);
    // The probe classes: egress has (proto, port) allows and an (any, any)
    // deny, bind a (proto, port) deny, ingress no rule at all.
    BOOST_TEST(meta->value.flags ==
               (AW_POLICY_INGRESS_FROM_RHOST | AW_POLICY_DENY_RAW | AW_POLICY_HAS_CLASS(AW_DIR_EGRESS, AW_CLASS_PORT) |
                AW_POLICY_HAS_CLASS(AW_DIR_EGRESS, AW_CLASS_ANY) | AW_POLICY_HAS_CLASS(AW_DIR_BIND, AW_CLASS_PORT)));
    BOOST_TEST(meta->value.denied_families == (1ULL << AF_PACKET));
    BOOST_TEST(meta->key.prefixlen == AW_RULE_KEY_FIXED_BITS);

    auto ssh = find(*c, id, AW_DIR_EGRESS, IPPROTO_TCP, 22, "10.20.0.0/16");
    BOOST_REQUIRE(ssh);
    BOOST_TEST(ssh->value.verdict == AW_VERDICT_ALLOW);
    BOOST_TEST(ssh->key.prefixlen == AW_RULE_KEY_FIXED_BITS + 96 + 16);
    BOOST_TEST(ssh->key.policy_id == htonl(id));
    BOOST_TEST(ssh->key.port == htons(22));

    BOOST_TEST(find(*c, id, AW_DIR_EGRESS, IPPROTO_TCP, 443, "2001:db8::/32"));
    BOOST_TEST(find(*c, id, AW_DIR_EGRESS, IPPROTO_TCP, 444, "2001:db8::/32"));
    auto meta_ip = find(*c, id, AW_DIR_EGRESS, 0, 0, "169.254.169.254");
    BOOST_REQUIRE(meta_ip);
    BOOST_TEST(meta_ip->value.verdict == AW_VERDICT_DENY);
    for (uint16_t port = 1; port <= 3; ++port)
        BOOST_TEST(find(*c, id, AW_DIR_BIND, IPPROTO_TCP, port, "any"));

    auto fallback = find(*c, AW_POLICY_FALLBACK, AW_DIR_META, 0, 0, "any");
    BOOST_REQUIRE(fallback);
    BOOST_TEST(fallback->value.verdict == AW_VERDICT_ALLOW); // unmatched = pass
}

BOOST_AUTO_TEST_CASE(allow_covered_by_deny_of_the_same_class_is_dropped)
{
    // The parser refuses such policies; the compiler must still be right
    // for callers that build policies in code.
    Policy p;
    p.name = "p";
    for (auto text : {"10.1.2.0/24 tcp 22", "10.1.2.3 tcp 22", "10.9.0.0/16"})
        p.egress.allow.push_back(*parse_rule(text));
    for (auto text : {"10.1.0.0/16 tcp 22", "10.9.9.0/24"})
        p.egress.deny.push_back(*parse_rule(text));
    std::vector<Policy> policies{p};
    auto c = compile_policies(policies, Fallback{});
    BOOST_REQUIRE(c.ok());
    uint32_t id = c->ids.at("p");
    BOOST_TEST(!find(*c, id, AW_DIR_EGRESS, IPPROTO_TCP, 22, "10.1.2.0/24"));
    BOOST_TEST(!find(*c, id, AW_DIR_EGRESS, IPPROTO_TCP, 22, "10.1.2.3"));
    BOOST_TEST(find(*c, id, AW_DIR_EGRESS, IPPROTO_TCP, 22, "10.1.0.0/16"));
    // A deny inside an allow stays: it is the longer match.
    BOOST_TEST(find(*c, id, AW_DIR_EGRESS, 0, 0, "10.9.0.0/16"));
    BOOST_TEST(find(*c, id, AW_DIR_EGRESS, 0, 0, "10.9.9.0/24")->value.verdict == AW_VERDICT_DENY);
    BOOST_TEST(c->dropped_shadowed == 2u);
}

BOOST_AUTO_TEST_CASE(ids_are_stable_by_name)
{
    auto policies = parse("[policy.a]\n[policy.b]\n[policy.c]\n");
    std::map<std::string, uint32_t> known{{"b", 7}, {"gone", 9}};
    auto c = compile_policies(policies, Fallback{}, known);
    BOOST_REQUIRE(c.ok());
    BOOST_TEST(c->ids.at("b") == 7u);
    BOOST_TEST(c->ids.at("a") >= 10u); // never reuses an id, even of a removed policy
    BOOST_TEST(c->ids.at("c") >= 10u);
    BOOST_TEST(c->ids.at("a") != c->ids.at("c"));
}

BOOST_AUTO_TEST_CASE(fallback_kinds)
{
    auto policies = parse("[policy.strict.egress]\ndefault = \"deny\"\n");
    auto deny = compile_policies(policies, Fallback{Fallback::Kind::Deny, {}});
    BOOST_REQUIRE(deny.ok());
    auto m = find(*deny, AW_POLICY_FALLBACK, AW_DIR_META, 0, 0, "any");
    BOOST_REQUIRE(m);
    BOOST_TEST(m->value.verdict == AW_VERDICT_DENY);
    BOOST_TEST(m->value.bind_default == AW_VERDICT_DENY);

    auto named = compile_policies(policies, Fallback{Fallback::Kind::Policy, "strict"});
    BOOST_REQUIRE(named.ok());
    BOOST_TEST(find(*named, AW_POLICY_FALLBACK, AW_DIR_META, 0, 0, "any")->value.verdict == AW_VERDICT_DENY);

    auto missing = compile_policies(policies, Fallback{Fallback::Kind::Policy, "nope"});
    BOOST_REQUIRE(!missing.ok());
    BOOST_TEST(missing.error().message() == "compile policy nope: named as the unmatched policy but not defined");
}

BOOST_AUTO_TEST_CASE(entry_limit_is_enforced_with_advice)
{
    auto policies = parse("[policy.wide.egress]\nallow = [\"any tcp 1024-65000\"]\n");
    auto c = compile_policies(policies, Fallback{}, {}, CompileLimits{1000});
    BOOST_REQUIRE(!c.ok());
    BOOST_TEST(c.error().message().find("more than 1000 trie entries") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
