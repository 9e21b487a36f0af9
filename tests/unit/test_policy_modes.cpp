// SPDX-License-Identifier: Apache-2.0
// Audit mode, logged rules and rule numbers, from the policy text to the
// compiled entries and the rule catalog.
#include <boost/test/unit_test.hpp>

#include "core/policy/catalog.h"
#include "core/policy/compiler.h"
#include "core/policy/config.h"
#include "core/policy/policy_file.h"

#include <arpa/inet.h>

#include <cstring>

using namespace authwall;

namespace {

const char* kPolicy = R"([policy.ops]
mode = "audit"
[policy.ops.egress]
default = "deny"
allow = ["10.0.0.0/8 tcp 22",
         { rule = "10.1.0.0/16 tcp 443", log = true }]
deny = ["10.9.9.9"]
[policy.ops.bind]
allow = ["tcp 8080"]

[policy.dev]
[policy.dev.egress]
allow = ["any"]
)";

std::vector<Policy> parse(const std::string& text)
{
    auto load = parse_policy_text(text, "/etc/p.toml");
    for (const auto& e : load.errors)
        BOOST_TEST_MESSAGE(e.str());
    BOOST_REQUIRE(load.ok());
    return load.policies;
}

std::string first_error(const std::string& text)
{
    auto load = parse_policy_text(text, "p.toml");
    return load.errors.empty() ? "" : load.errors[0].str();
}

const Policy& named(const std::vector<Policy>& policies, const std::string& name)
{
    for (const auto& p : policies)
        if (p.name == name)
            return p;
    BOOST_FAIL("no policy " + name);
    return policies.front();
}

const CompiledEntry* meta_of(const CompiledPolicies& c, uint32_t id)
{
    for (const auto& e : c.entries)
        if (ntohl(e.key.policy_id) == id && e.key.dir == AW_DIR_META)
            return &e;
    return nullptr;
}

} // namespace

BOOST_AUTO_TEST_SUITE(policy_modes)

BOOST_AUTO_TEST_CASE(mode_log_and_rule_numbers_are_read)
{
    auto policies = parse(kPolicy);
    const auto& ops = named(policies, "ops");
    BOOST_TEST(ops.audit);
    BOOST_TEST(!named(policies, "dev").audit);
    // Numbered in the order they are read: egress allow, egress deny, bind.
    BOOST_REQUIRE_EQUAL(ops.egress.allow.size(), 2u);
    BOOST_TEST(ops.egress.allow[0].id == 1u);
    BOOST_TEST(!ops.egress.allow[0].log);
    BOOST_TEST(ops.egress.allow[1].id == 2u);
    BOOST_TEST(ops.egress.allow[1].log);
    BOOST_TEST(ops.egress.allow[1].line == 6u); // where its rule string is
    BOOST_TEST(ops.egress.deny[0].id == 3u);
    BOOST_TEST(ops.bind.allow[0].id == 4u);
    BOOST_TEST(named(policies, "dev").egress.allow[0].id == 1u); // per policy
}

BOOST_AUTO_TEST_CASE(bad_mode_and_rule_tables_name_the_place)
{
    BOOST_TEST(first_error("[policy.a]\nmode = \"warn\"\n") ==
               "p.toml:2:8: policy.a.mode must be \"enforce\" or \"audit\"");
    BOOST_TEST(first_error("[policy.a.egress]\nallow = [{ rule = \"tcp 22\", log = 1 }]\n") ==
               "p.toml:2:35: policy.a.egress.allow: log must be true or false");
    BOOST_TEST(first_error("[policy.a.egress]\nallow = [{ log = true }]\n") ==
               "p.toml:2:10: policy.a.egress.allow: a rule table needs rule = \"...\"");
    BOOST_TEST(first_error("[policy.a.egress]\nallow = [{ rule = \"tcp 22\", lg = true }]\n") ==
               "p.toml:2:29: unknown key 'lg' in policy.a.egress.allow (expected one of: rule, log)");
    BOOST_TEST(first_error("[policy.a.egress]\nallow = [{ rule = \"tcp 99999\" }]\n") ==
               "p.toml:2:24: in rule \"tcp 99999\": '99999' is not a port (1-65535)");
    BOOST_TEST(first_error("[policy.a.egress]\nallow = [22]\n") ==
               "p.toml:2:10: policy.a.egress.allow must contain rules: strings, or tables { rule = \"...\", log = "
               "true }");
}

BOOST_AUTO_TEST_CASE(compiled_entries_carry_mode_rule_numbers_and_log)
{
    auto c = compile_policies(parse(kPolicy), Fallback{});
    BOOST_REQUIRE(c.ok());
    uint32_t ops = c->ids.at("ops"), dev = c->ids.at("dev");
    BOOST_TEST((meta_of(*c, ops)->value.flags & AW_POLICY_AUDIT) != 0u);
    BOOST_TEST((meta_of(*c, dev)->value.flags & AW_POLICY_AUDIT) == 0u);
    BOOST_TEST((meta_of(*c, AW_POLICY_FALLBACK)->value.flags & AW_POLICY_AUDIT) == 0u);
    int seen = 0;
    for (const auto& e : c->entries) {
        if (ntohl(e.key.policy_id) != ops || e.key.dir != AW_DIR_EGRESS)
            continue;
        uint16_t port = ntohs(e.key.port);
        if (port == 443) {
            BOOST_TEST(e.value.rule == 2u);
            BOOST_TEST(e.value.rule_flags == AW_RULE_LOG);
            ++seen;
        } else if (port == 22) {
            BOOST_TEST(e.value.rule == 1u);
            BOOST_TEST(e.value.rule_flags == 0u);
            ++seen;
        } else if (e.value.verdict == AW_VERDICT_DENY) {
            BOOST_TEST(e.value.rule == 3u);
            ++seen;
        }
    }
    BOOST_TEST(seen == 3);
}

BOOST_AUTO_TEST_CASE(the_configuration_overrides_every_mode)
{
    auto cfg = parse_config_text("mode = \"audit\"\n", "a.toml");
    BOOST_REQUIRE(cfg.ok());
    BOOST_REQUIRE(cfg.config.audit_override.has_value());
    auto policies = parse(kPolicy);
    Fallback fallback{Fallback::Kind::Deny, {}};
    apply_mode_override(policies, fallback, cfg.config.audit_override);
    auto c = compile_policies(policies, fallback);
    BOOST_REQUIRE(c.ok());
    BOOST_TEST((meta_of(*c, c->ids.at("dev"))->value.flags & AW_POLICY_AUDIT) != 0u);
    BOOST_TEST((meta_of(*c, AW_POLICY_FALLBACK)->value.flags & AW_POLICY_AUDIT) != 0u);

    policies = parse(kPolicy);
    apply_mode_override(policies, fallback, parse_config_text("mode = \"enforce\"\n", "a.toml").config.audit_override);
    BOOST_TEST(!named(policies, "ops").audit);
    BOOST_TEST(!fallback.audit);

    policies = parse(kPolicy);
    apply_mode_override(policies, fallback, parse_config_text("", "a.toml").config.audit_override);
    BOOST_TEST(named(policies, "ops").audit); // unset: each policy's own

    auto bad = parse_config_text("mode = \"learn\"\n", "a.toml");
    BOOST_REQUIRE_EQUAL(bad.errors.size(), 1u);
    BOOST_TEST(bad.errors[0].str() ==
               "a.toml:1:8: mode must be \"audit\" or \"enforce\" (or absent: each policy's own)");
}

BOOST_AUTO_TEST_CASE(the_catalog_says_where_each_rule_was_written)
{
    auto policies = parse(kPolicy);
    auto c = compile_policies(policies, Fallback{Fallback::Kind::Policy, "dev"});
    BOOST_REQUIRE(c.ok());
    auto catalog = RuleCatalog::build(policies, c->ids, Fallback{Fallback::Kind::Policy, "dev"});
    const RuleSource* r = catalog.find(c->ids.at("ops"), 2);
    BOOST_REQUIRE(r);
    BOOST_TEST(r->where() == "/etc/p.toml:6:19");
    BOOST_TEST(r->text == "10.1.0.0/16 tcp 443");
    BOOST_TEST(r->direction == "egress");
    BOOST_TEST(r->log);
    BOOST_TEST(catalog.find(c->ids.at("ops"), 4)->direction == "bind");
    BOOST_TEST(catalog.find(AW_POLICY_FALLBACK, 1)->policy == "dev"); // the unmatched fallback names dev
    BOOST_TEST(!catalog.find(c->ids.at("ops"), 5));

    auto back = RuleCatalog::from_json(catalog.to_json(), "rules.json");
    BOOST_REQUIRE(back.ok());
    BOOST_TEST(back->rules().size() == catalog.rules().size());
    BOOST_TEST(back->find(c->ids.at("ops"), 2)->where() == "/etc/p.toml:6:19");
    BOOST_TEST(!RuleCatalog::from_json("{\"version\": 2, \"rules\": []}", "x").ok());
    BOOST_TEST(!RuleCatalog::from_json("[", "x").ok());
}

BOOST_AUTO_TEST_SUITE_END()
