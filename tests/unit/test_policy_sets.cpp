// SPDX-License-Identifier: Apache-2.0
// Named sets, port lists, address keywords and composition (extends): what
// a written rule expands to, how it is numbered, and every bad input named
// by file:line:column.
#include <boost/test/unit_test.hpp>

#include "core/policy/catalog.h"
#include "core/policy/compiler.h"
#include "core/policy/policy_file.h"

#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cstring>
#include <filesystem>
#include <fstream>

using namespace authwall;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> errors_of(const std::string& text)
{
    std::vector<std::string> out;
    for (const auto& e : parse_policy_text(text, "p.toml").errors)
        out.push_back(e.str());
    return out;
}

PolicyLoad loaded(const std::string& text)
{
    auto load = parse_policy_text(text, "p.toml");
    for (const auto& e : load.errors)
        BOOST_TEST_MESSAGE(e.str());
    BOOST_REQUIRE(load.ok());
    return load;
}

std::vector<std::string> entries_of(const std::vector<Rule>& rules)
{
    std::vector<std::string> out;
    for (const auto& r : rules)
        out.push_back(r.str() + " #" + std::to_string(r.id));
    return out;
}

// A private policy directory, owned by us and closed to others.
struct PolicyDir {
    fs::path dir;
    PolicyDir()
    {
        char tmpl[] = "/tmp/authwall-sets-XXXXXX";
        BOOST_REQUIRE(mkdtemp(tmpl));
        dir = tmpl;
        chmod(dir.c_str(), 0755);
    }
    ~PolicyDir()
    {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    void write(const std::string& name, const std::string& text)
    {
        std::ofstream(dir / name) << text;
        chmod((dir / name).c_str(), 0644);
    }
    PolicyLoad load() const { return load_policy_dir(dir, geteuid()); }
};

} // namespace

BOOST_AUTO_TEST_SUITE(policy_sets)

BOOST_AUTO_TEST_CASE(a_rule_expands_to_addresses_times_services)
{
    auto load = loaded(R"([sets]
mgmt = ["10.20.0.0/16", "2001:db8:20::/48"]
web = "tcp {80,443}"
[policy.a.egress]
default = "deny"
allow = ["@mgmt tcp 22", "@mgmt @web", "tcp {22,443,8000-8100}", "@web"]
)");
    const auto& allow = load.policies.at(0).egress.allow;
    BOOST_TEST(entries_of(allow) ==
                   (std::vector<std::string>{
                       "10.20.0.0/16 tcp 22 #1", "2001:db8:20::/48 tcp 22 #1", "10.20.0.0/16 tcp 80 #2",
                       "10.20.0.0/16 tcp 443 #2", "2001:db8:20::/48 tcp 80 #2", "2001:db8:20::/48 tcp 443 #2",
                       "any tcp 22 #3", "any tcp 443 #3", "any tcp 8000-8100 #3", "any tcp 80 #4", "any tcp 443 #4"}),
               boost::test_tools::per_element());
    // Every entry keeps the written rule's text and place.
    for (const auto& r : allow) {
        BOOST_TEST(r.file == "p.toml");
        BOOST_TEST(r.line == 6u);
    }
    BOOST_TEST(allow[2].text == "@mgmt @web");
    BOOST_TEST(allow[2].column == 26u);
}

BOOST_AUTO_TEST_CASE(keywords_stand_for_both_families)
{
    auto load = loaded(R"([policy.a.egress]
deny = ["link-local", "loopback tcp 5432", "any udp 53"]
)");
    BOOST_TEST(entries_of(load.policies.at(0).egress.deny) ==
                   (std::vector<std::string>{"169.254.0.0/16 #1", "fe80::/10 #1", "127.0.0.0/8 tcp 5432 #2",
                                             "::1 tcp 5432 #2", "any udp 53 #3"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(sets_include_sets_and_keywords)
{
    auto load = loaded(R"([sets]
office = ["192.0.2.0/24"]
admin = ["@office", "198.51.100.7", "loopback"]
dns = ["udp 53", "tcp 53"]
infra = ["@dns", "tcp 123-124"]
[policy.a.egress]
allow = ["@admin @infra"]
)");
    BOOST_TEST(load.policies.at(0).egress.allow.size() == 4u * 3u);
}

BOOST_AUTO_TEST_CASE(set_errors_name_the_place)
{
    BOOST_TEST(errors_of("[policy.a.egress]\nallow = [\"@nope tcp 22\"]\n") ==
               std::vector<std::string>{
                   "p.toml:2:11: in rule \"@nope tcp 22\": unknown set '@nope' (define it under [sets])"});
    // A set that includes itself, directly or through another set.
    BOOST_TEST(errors_of("[sets]\na = [\"10.0.0.0/8\", \"@a\"]\n") ==
               std::vector<std::string>{"p.toml:2:20: set 'a' includes itself: a -> a"});
    BOOST_TEST(errors_of("[sets]\na = [\"@b\"]\nb = [\"10.0.0.0/8\", \"@a\"]\n") ==
               std::vector<std::string>{"p.toml:3:20: set 'a' includes itself: a -> b -> a"});
    // A rule on a broken set says so, once.
    BOOST_TEST(errors_of("[sets]\na = [\"@a\"]\n[policy.p.egress]\ndeny = [\"@a\"]\n") ==
               (std::vector<std::string>{"p.toml:2:6: set 'a' includes itself: a -> a",
                                         "p.toml:4:10: in rule \"@a\": set '@a' has errors (see its definition)"}));
    // A set of the wrong kind.
    BOOST_TEST(errors_of("[sets]\nmgmt = [\"10.0.0.0/8\"]\n[policy.a.egress]\nallow = [\"10.1.0.0/16 @mgmt\"]\n") ==
               std::vector<std::string>{"p.toml:4:23: in rule \"10.1.0.0/16 @mgmt\": '@mgmt' is an address set, "
                                        "where a protocol or a service set is expected"});
    BOOST_TEST(errors_of("[sets]\nmix = [\"10.0.0.0/8\", \"tcp 22\"]\n") ==
               std::vector<std::string>{"p.toml:2:23: in set 'mix': 'tcp 22' does not belong in an address set (a "
                                        "set holds one kind)"});
    BOOST_TEST(errors_of("[sets]\nr = \"10.0.0.0/8 tcp 22\"\n") ==
               std::vector<std::string>{"p.toml:2:6: in set 'r': a set holds addresses or services, not both: write "
                                        "'@set PROTOCOL PORTS' in the rule"});
    BOOST_TEST(errors_of("[sets]\ne = []\n") ==
               std::vector<std::string>{"p.toml:2:5: sets.e is empty: a rule on it would match nothing"});
    BOOST_TEST(errors_of("[sets]\n\"bad name\" = [\"10.0.0.0/8\"]\n").size() == 1u);
    BOOST_TEST(errors_of("[sets]\nn = 5\n") ==
               std::vector<std::string>{"p.toml:2:5: sets.n must be a string or an array of strings"});
    BOOST_TEST(errors_of("[policy.a.egress]\nallow = [\"@ tcp 22\"]\n").size() == 1u);
}

BOOST_AUTO_TEST_CASE(bad_port_lists_are_errors_at_their_column)
{
    auto rule_error = [](const std::string& rule) {
        auto errors = errors_of("[policy.a.egress]\nallow = [\"" + rule + "\"]\n");
        BOOST_REQUIRE_EQUAL(errors.size(), 1u);
        return errors[0];
    };
    BOOST_TEST(rule_error("tcp {}") == "p.toml:2:15: in rule \"tcp {}\": empty port list '{}': name at least one port");
    BOOST_TEST(rule_error("tcp {80,}") == "p.toml:2:19: in rule \"tcp {80,}\": empty item in port list '{80,}'");
    BOOST_TEST(rule_error("tcp {70000}") == "p.toml:2:16: in rule \"tcp {70000}\": '70000' is not a port (1-65535)");
    BOOST_TEST(rule_error("tcp {80") == "p.toml:2:15: in rule \"tcp {80\": port list '{80' has no closing '}'");
    BOOST_TEST(rule_error("proto 47 {1}") == "p.toml:2:20: in rule \"proto 47 {1}\": protocol 47 has no ports");
    BOOST_TEST(rule_error("tcp {90-80}") == "p.toml:2:16: in rule \"tcp {90-80}\": port range 90-80 is reversed");
    // Blanks inside a list are fine.
    BOOST_TEST(errors_of("[policy.a.egress]\nallow = [\"tcp { 22, 443 }\"]\n").empty());
}

BOOST_AUTO_TEST_CASE(one_written_rule_keeps_one_number_in_the_catalog)
{
    auto load = loaded(R"([sets]
mgmt = ["10.20.0.0/16", "10.30.0.0/16"]
[policy.a.egress]
allow = ["@mgmt tcp {22,443}"]
deny = ["10.20.9.0/24"]
)");
    auto compiled = compile_policies(load.policies, Fallback{});
    BOOST_REQUIRE(compiled.ok());
    auto catalog = RuleCatalog::build(load.policies, compiled->ids, Fallback{});
    uint32_t id = compiled->ids.at("a");
    BOOST_TEST(catalog.rules().size() == 2u);
    const RuleSource* r = catalog.find(id, 1);
    BOOST_REQUIRE(r);
    BOOST_TEST(r->text == "@mgmt tcp {22,443}");
    BOOST_TEST(r->where() == "p.toml:4:10");
    size_t numbered_one = 0;
    for (const auto& e : compiled->entries)
        numbered_one += e.key.dir == AW_DIR_EGRESS && e.value.rule == 1;
    BOOST_TEST(numbered_one == 4u);
}

BOOST_AUTO_TEST_CASE(allow_covered_by_deny_holds_on_the_expansion)
{
    // Every entry covered: an error.
    BOOST_TEST(errors_of("[sets]\nm = [\"10.1.0.0/16\", \"10.2.0.0/16\"]\n[policy.a.egress]\nallow = [\"@m tcp "
                         "22\"]\ndeny = [\"10.0.0.0/8\"]\n") ==
               std::vector<std::string>{"p.toml:4:10: policy.a.egress: allow \"@m tcp 22\" can never match: deny "
                                        "\"10.0.0.0/8\" covers it"});
    // Covered by two denies together.
    BOOST_TEST(errors_of("[sets]\nm = [\"10.1.0.0/16\", \"10.2.0.0/16\"]\n[policy.a.egress]\nallow = [\"@m tcp "
                         "22\"]\ndeny = [\"10.1.0.0/16\", \"10.2.0.0/16\"]\n") ==
               std::vector<std::string>{"p.toml:4:10: policy.a.egress: allow \"@m tcp 22\" can never match: the "
                                        "denies of this direction cover it"});
    // One entry of a set denied: a carve-out, no error.
    BOOST_TEST(errors_of("[sets]\nm = [\"10.1.0.0/16\", \"169.254.169.254\"]\n[policy.a.egress]\nallow = [\"@m\"]\n"
                         "deny = [\"169.254.169.254\"]\n")
                   .empty());
    BOOST_TEST(errors_of("[sets]\nm = [\"10.1.0.0/16\"]\n[policy.a.egress]\nallow = [\"@m tcp 22\"]\ndeny = "
                         "[\"10.1.0.0/16 tcp 22\"]\n") ==
               std::vector<std::string>{"p.toml:4:10: policy.a.egress: \"@m tcp 22\" is both allowed and denied"});
}

BOOST_AUTO_TEST_CASE(expansion_is_bounded)
{
    PolicyLoadLimits limits;
    limits.max_entries = 10;
    auto load = parse_policy_text("[sets]\nw = \"tcp {1,2,3,4,5,6}\"\n[policy.a.egress]\nallow = [\"@w\", \"@w\"]\n",
                                  "p.toml", limits);
    BOOST_REQUIRE_EQUAL(load.errors.size(), 1u);
    BOOST_TEST(load.errors[0].str() ==
               "p.toml:4:16: the policies expand to more than 10 rule entries (limits.policy_entries) at this rule");
    limits = PolicyLoadLimits{};
    limits.max_rule_entries = 5;
    load = parse_policy_text("[policy.a.egress]\nallow = [\"loopback tcp {1,2,3}\"]\n", "p.toml", limits);
    BOOST_REQUIRE_EQUAL(load.errors.size(), 1u);
    BOOST_TEST(load.errors[0].message.find("expands to 2 addresses x 3 services, more than 5 entries") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(sets_are_shared_across_the_files_of_a_directory)
{
    PolicyDir d;
    d.write("00-sets.toml", "[sets]\nmgmt = [\"10.20.0.0/16\"]\nweb = \"tcp {80,443}\"\n");
    d.write("a.toml", "[policy.a.egress]\nallow = [\"@mgmt @web\"]\n");
    d.write("b.toml", "[policy.b.egress]\ndeny = [\"@mgmt\"]\n");
    auto load = d.load();
    for (const auto& e : load.errors)
        BOOST_TEST_MESSAGE(e.str());
    BOOST_REQUIRE(load.ok());
    BOOST_TEST(load.policies.size() == 2u);
    BOOST_TEST(load.policies[0].egress.allow.size() == 2u);
    BOOST_TEST(load.policies[1].egress.deny.size() == 1u);

    // The same name in two files: an error naming both places.
    d.write("z.toml", "\n[sets]\nmgmt = [\"10.99.0.0/16\"]\n");
    load = d.load();
    BOOST_REQUIRE_EQUAL(load.errors.size(), 1u);
    BOOST_TEST(load.errors[0].str() == (d.dir / "z.toml").string() + ":3:1: set 'mgmt' is already defined at " +
                                           (d.dir / "00-sets.toml").string() + ":2:1");
}

BOOST_AUTO_TEST_CASE(extends_folds_in_the_base)
{
    auto load = loaded(R"([policy.base]
abstract = true
mode = "audit"
[policy.base.egress]
default = "deny"
allow = ["10.0.0.53 udp 53"]
deny = ["169.254.169.254"]
[policy.base.sockets]
deny_families = ["packet", "raw"]
[policy.base.session]
max_duration = "8h"

[policy.ops]
extends = ["base"]
mode = "enforce"
match.groups = ["ops"]
[policy.ops.egress]
allow = ["10.20.0.0/16 tcp 22"]
[policy.ops.sockets]
deny_families = ["netlink"]
)");
    BOOST_REQUIRE_EQUAL(load.policies.size(), 1u);
    BOOST_REQUIRE_EQUAL(load.abstract.size(), 1u);
    const Policy& ops = load.policies[0];
    BOOST_TEST(ops.extends == std::vector<std::string>{"base"});
    BOOST_TEST(!ops.audit); // its own mode wins
    BOOST_TEST((ops.egress.default_verdict == Verdict::Deny));
    BOOST_TEST(ops.max_duration->count() == 8 * 3600);
    BOOST_TEST(ops.deny_raw);
    BOOST_TEST(ops.denied_families != 0u);
    // Base first, renumbered in the child; each keeps where it was written.
    BOOST_TEST(entries_of(ops.egress.allow) ==
                   (std::vector<std::string>{"10.0.0.53 udp 53 #1", "10.20.0.0/16 tcp 22 #2"}),
               boost::test_tools::per_element());
    BOOST_TEST(ops.egress.allow[0].line == 6u);
    BOOST_TEST(ops.egress.deny.at(0).id == 3u);
    // The base is resolved too, but never compiled or matched.
    BOOST_TEST(load.abstract[0].abstract);
    BOOST_TEST(find_policy(load, "base") == &load.abstract[0]);
    auto compiled = compile_policies(load.policies, Fallback{});
    BOOST_REQUIRE(compiled.ok());
    BOOST_TEST(compiled->ids.count("base") == 0u);
}

BOOST_AUTO_TEST_CASE(extends_chains_and_diamonds)
{
    auto load = loaded(R"([policy.root.egress]
deny = ["169.254.169.254"]
[policy.left]
extends = ["root"]
egress.allow = ["10.1.0.0/16"]
[policy.right]
extends = ["root"]
egress.allow = ["10.2.0.0/16"]
ingress.from_rhost_only = true
[policy.leaf]
extends = ["left", "right"]
)");
    const Policy* leaf = find_policy(load, "leaf");
    BOOST_REQUIRE(leaf);
    BOOST_TEST(leaf->egress.deny.size() == 1u); // root's deny once, not twice
    BOOST_TEST(leaf->egress.allow.size() == 2u);
    BOOST_TEST(leaf->ingress_from_rhost_only);
    BOOST_TEST((leaf->ingress.default_verdict == Verdict::Deny));
}

BOOST_AUTO_TEST_CASE(a_base_deny_beats_a_child_allow)
{
    // The child's allow of what the base denies can never match: an error.
    BOOST_TEST(errors_of("[policy.base.egress]\ndeny = [\"169.254.0.0/16\"]\n[policy.c]\nextends = [\"base\"]\n"
                         "egress.allow = [\"169.254.169.254 tcp 80\"]\n") ==
               std::vector<std::string>{"p.toml:5:17: policy.c.egress: allow \"169.254.169.254 tcp 80\" can never "
                                        "match: deny \"169.254.0.0/16\" (p.toml:2:9) covers it"});
    // The child's deny over the base's allow narrows it: fine.
    auto load = loaded("[policy.base.egress]\nallow = [\"10.0.0.0/8\"]\n[policy.c]\nextends = [\"base\"]\n"
                       "egress.deny = [\"10.0.0.0/8\"]\n");
    auto compiled = compile_policies(load.policies, Fallback{});
    BOOST_REQUIRE(compiled.ok());
    BOOST_TEST(compiled->dropped_shadowed == 1u);
}

BOOST_AUTO_TEST_CASE(extends_errors_name_the_place)
{
    BOOST_TEST(errors_of("[policy.a]\nextends = [\"nope\"]\n") ==
               std::vector<std::string>{"p.toml:2:12: unknown base policy 'nope' in extends"});
    BOOST_TEST(errors_of("[policy.a]\nextends = [\"a\"]\n") ==
               std::vector<std::string>{"p.toml:2:12: policy 'a' extends itself: a -> a"});
    BOOST_TEST(errors_of("[policy.a]\nextends = [\"b\"]\n[policy.b]\nextends = [\"a\"]\n") ==
               std::vector<std::string>{"p.toml:4:12: policy 'a' extends itself: a -> b -> a"});
    BOOST_TEST(
        errors_of("[policy.a]\nabstract = true\nmatch.users = [\"x\"]\n") ==
        std::vector<std::string>{
            "p.toml:2:12: policy.a: an abstract policy is never given to a login: it takes no match or priority"});
    BOOST_TEST(errors_of("[policy.a]\nextends = \"b\"\n") ==
               std::vector<std::string>{"p.toml:2:11: policy.a.extends must be an array of strings"});
    // An inherited from_rhost_only against the child's default = "allow".
    BOOST_TEST(errors_of("[policy.b.ingress]\nfrom_rhost_only = true\n[policy.a]\nextends = [\"b\"]\n"
                         "ingress.default = \"allow\"\n") ==
               std::vector<std::string>{
                   "p.toml:5:19: policy.a.ingress: default = \"allow\" contradicts from_rhost_only = true"});
    // A base's own error is reported once, not again for every child.
    BOOST_TEST(errors_of("[policy.b.egress]\nallow = [\"@x\"]\n[policy.c1]\nextends = [\"b\"]\n[policy.c2]\n"
                         "extends = [\"b\"]\n")
                   .size() == 1u);
}

BOOST_AUTO_TEST_CASE(bases_may_live_in_other_files)
{
    PolicyDir d;
    d.write("base.toml", "[policy.base]\nabstract = true\n[policy.base.egress]\ndeny = [\"169.254.169.254\"]\n");
    d.write("ops.toml", "[policy.ops]\nextends = [\"base\"]\nmatch.users = [\"alice\"]\n");
    auto load = d.load();
    BOOST_REQUIRE(load.ok());
    auto compiled = compile_policies(load.policies, Fallback{});
    BOOST_REQUIRE(compiled.ok());
    auto catalog = RuleCatalog::build(load.policies, compiled->ids, Fallback{});
    const RuleSource* r = catalog.find(compiled->ids.at("ops"), 1);
    BOOST_REQUIRE(r);
    BOOST_TEST(r->where() == (d.dir / "base.toml").string() + ":4:9"); // where the base wrote it
}

BOOST_AUTO_TEST_CASE(rhost_rules_stand_for_the_login_address)
{
    auto load = loaded(R"([sets]
web = "tcp {80,443}"
[policy.a.egress]
default = "deny"
allow = ["$rhost tcp 22", "$rhost @web"]
[policy.a.ingress]
allow = ["$rhost tcp 8080"]
deny = ["$rhost udp"]
)");
    const Policy& a = load.policies.at(0);
    BOOST_TEST(entries_of(a.egress.allow) ==
                   (std::vector<std::string>{"$rhost tcp 22 #1", "$rhost tcp 80 #2", "$rhost tcp 443 #2"}),
               boost::test_tools::per_element());
    BOOST_TEST(a.ingress.allow.at(0).rhost);
    auto compiled = compile_policies(load.policies, Fallback{});
    BOOST_REQUIRE(compiled.ok());
    uint32_t id = compiled->ids.at("a");
    // Stored under the direction's $rhost dir, any address.
    auto key = make_rule_key(id, AW_DIR_EGRESS | AW_DIR_RHOST, IPPROTO_TCP, 22, Prefix());
    bool found = false;
    uint32_t meta_flags = 0;
    for (const auto& e : compiled->entries) {
        found |= std::memcmp(&e.key, &key, sizeof(key)) == 0 && e.value.verdict == AW_VERDICT_ALLOW;
        if (e.key.dir == AW_DIR_META && e.key.policy_id == htonl(id))
            meta_flags = e.value.flags;
    }
    BOOST_TEST(found);
    BOOST_TEST((meta_flags & AW_POLICY_HAS_RHOST(AW_DIR_EGRESS)) != 0u);
    BOOST_TEST((meta_flags & AW_POLICY_HAS_RHOST(AW_DIR_INGRESS)) != 0u);
}

BOOST_AUTO_TEST_CASE(rhost_errors)
{
    BOOST_TEST(errors_of("[policy.a.bind]\ndeny = [\"$rhost tcp 22\"]\n") ==
               std::vector<std::string>{"p.toml:2:10: in rule \"$rhost tcp 22\": $rhost is the login's remote address, "
                                        "not a local one: only in egress and ingress"});
    BOOST_TEST(errors_of("[policy.a.egress]\nallow = [\"$rhots tcp 22\"]\n") ==
               std::vector<std::string>{
                   "p.toml:2:11: in rule \"$rhots tcp 22\": unknown variable '$rhots': the only one is $rhost"});
    BOOST_TEST(errors_of("[sets]\nr = [\"$rhost\"]\n") ==
               std::vector<std::string>{"p.toml:2:7: in set 'r': $rhost stands in rules, not in sets: write '$rhost "
                                        "@set' in the rule"});
    // Covered: a $rhost allow under a deny of every address, not under a prefix.
    BOOST_TEST(errors_of("[policy.a.egress]\nallow = [\"$rhost tcp 22\"]\ndeny = [\"any tcp\"]\n").size() == 1u);
    BOOST_TEST(errors_of("[policy.a.egress]\nallow = [\"$rhost tcp 22\"]\ndeny = [\"10.0.0.0/8\"]\n").empty());
    // The same, rule against rule.
    auto rhost = parse_rule("$rhost tcp 22");
    BOOST_REQUIRE(rhost.has_value());
    BOOST_TEST(rhost->covered_by(*parse_rule("any tcp")));
    BOOST_TEST(!rhost->covered_by(*parse_rule("10.0.0.0/8")));
    BOOST_TEST(!parse_rule("10.0.0.1 tcp 22")->covered_by(*rhost));
}

BOOST_AUTO_TEST_SUITE_END()
