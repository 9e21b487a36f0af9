// SPDX-License-Identifier: Apache-2.0
// The policy index: what the PAM module resolves each login against
// (/run/authwall/policies.json). Built from the shipped bastion policies,
// serialised and read back; which policy a login gets; and what a corrupt or
// hostile index is refused for.
#include <boost/test/unit_test.hpp>

#include "core/policy/compiler.h"
#include "core/policy/policy_file.h"
#include "core/policy/index.h"

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace authwall;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path)
{
    std::ifstream in(path);
    BOOST_REQUIRE_MESSAGE(in, "cannot read " + path.string());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

PolicyIndex bastion_index()
{
    auto load = parse_policy_text(read_text(fs::path(AUTHWALL_POLICIES_DIR) / "bastion.toml"), "bastion.toml");
    BOOST_REQUIRE(load.ok());
    auto compiled = compile_policies(load.policies, Fallback{});
    BOOST_REQUIRE(compiled.ok());
    Config config;
    config.exempt_groups = {"breakglass"};
    return build_policy_index(load.policies, compiled->ids, config);
}

// The index the loader would publish for these policies.
PolicyIndex index_of(const std::string& toml)
{
    auto load = parse_policy_text(toml, "t.toml");
    BOOST_REQUIRE(load.ok());
    auto compiled = compile_policies(load.policies, Fallback{});
    BOOST_REQUIRE(compiled.ok());
    return build_policy_index(load.policies, compiled->ids, Config{});
}

std::string resolved(const PolicyIndex& index, LoginFacts login)
{
    const IndexedPolicy* p = resolve_policy(index, login);
    return p ? p->name : "(unmatched)";
}

std::string refusal(const std::string& json)
{
    auto index = policy_index_from_json(json, "policies.json");
    return index ? std::string("accepted") : index.error().message();
}

const char* kMinimal = R"({"version": 1, "unmatched": "pass", "exempt_users": [], "exempt_groups": [],
  "policies": [{"name": "p", "id": 1, "priority": 5, "max_duration_s": 60,
                "match": {"users": [], "groups": [], "services": ["sshd"], "rhosts": [], "cgroups": []}}]})";

} // namespace

BOOST_AUTO_TEST_SUITE(policy_index)

BOOST_AUTO_TEST_CASE(round_trips_through_json)
{
    auto index = bastion_index();
    BOOST_REQUIRE_EQUAL(index.policies.size(), 2u);
    BOOST_TEST(index.policies[0].name == "bastion-admins"); // highest priority first
    BOOST_TEST(index.policies[0].max_duration_s == 8 * 3600u);
    auto json = to_json(index);
    auto back = policy_index_from_json(json, "policies.json");
    BOOST_REQUIRE(back.ok());
    BOOST_TEST(to_json(*back) == json);
    BOOST_TEST(back->exempt_users == std::vector<std::string>{"root"});
    BOOST_TEST(back->exempt_groups == std::vector<std::string>{"breakglass"});
}

BOOST_AUTO_TEST_CASE(a_login_gets_the_highest_priority_policy_that_matches_it)
{
    auto index = bastion_index();
    auto ip = IpAddress::parse("192.0.2.10");
    BOOST_TEST(resolved(index, {"alice", {"alice", "bastion-admins"}, "sshd", ip}) == "bastion-admins");
    BOOST_TEST(resolved(index, {"bob", {"bob"}, "sshd", ip}) == "bastion-users");
    // Groups pick among sshd logins only: the admin group on the console is
    // not a bastion login.
    BOOST_TEST(resolved(index, {"alice", {"alice", "bastion-admins"}, "login", std::nullopt}) == "(unmatched)");
    BOOST_TEST(is_exempt(index, {"root", {"root"}, "sshd", ip}));
    BOOST_TEST(is_exempt(index, {"carol", {"carol", "breakglass"}, "sshd", ip}));
    BOOST_TEST(!is_exempt(index, {"bob", {"bob"}, "sshd", ip}));
}

// The PAM module reads a user's groups from NSS only when something
// consults them.
BOOST_AUTO_TEST_CASE(groups_are_needed_only_when_named)
{
    auto index = bastion_index(); // a policy matches bastion-admins, breakglass is exempt
    BOOST_TEST(names_groups(index));
    index.exempt_groups.clear();
    BOOST_TEST(names_groups(index));
    for (auto& p : index.policies)
        p.match.groups.clear();
    BOOST_TEST(!names_groups(index));
    index.exempt_groups = {"breakglass"};
    BOOST_TEST(names_groups(index));
    BOOST_TEST(!names_groups(PolicyIndex{}));
}

// The user layer: the policy a user is held to wherever their processes run
// (user manager, cron, at, a process moved out of the login's cgroup).
BOOST_AUTO_TEST_CASE(the_user_layer_ignores_services_and_is_never_claimed_by_address_alone)
{
    auto index = bastion_index();
    auto user_policy = [&](LoginFacts facts) {
        const IndexedPolicy* p = resolve_user_policy(index, facts);
        return p ? p->name : std::string("(none)");
    };
    // bastion-users names only a service: it confines every user, also in
    // their cron jobs and console logins.
    BOOST_TEST(user_policy({"bob", {"bob"}, "cron", std::nullopt}) == "bastion-users");
    BOOST_TEST(user_policy({"alice", {"alice", "bastion-admins"}, "login", std::nullopt}) == "bastion-admins");

    index = index_of(R"(
[policy.office]
priority = 100
match.rhosts = ["192.0.2.0/24"]
[policy.alice]
priority = 10
match.users = ["alice"]
match.rhosts = ["198.51.100.0/24"]
[policy.nobody]
)");
    auto office = IpAddress::parse("192.0.2.7");
    // The login from the office gets the office policy; the user layer
    // cannot (a process outside a login comes from no address).
    BOOST_TEST(resolved(index, {"bob", {"bob"}, "sshd", office}) == "office");
    BOOST_TEST(user_policy({"bob", {"bob"}, "sshd", office}) == "(none)");
    BOOST_TEST(user_policy({"alice", {"alice"}, "sshd", office}) == "alice");
}

BOOST_AUTO_TEST_CASE(users_groups_and_rhosts_are_alternatives_services_a_condition)
{
    auto index = index_of(R"(
[policy.ops]
priority = 10
match.users = ["alice"]
match.groups = ["ops"]
match.rhosts = ["192.0.2.0/24", "2001:db8::/32"]
match.services = ["sshd"]
[policy.anyone-ssh]
match.services = ["sshd"]
[policy.nobody]
)");
    auto other = IpAddress::parse("198.51.100.1");
    BOOST_TEST(resolved(index, {"alice", {"alice"}, "sshd", other}) == "ops");
    BOOST_TEST(resolved(index, {"bob", {"bob", "ops"}, "sshd", other}) == "ops");
    BOOST_TEST(resolved(index, {"bob", {"bob"}, "sshd", IpAddress::parse("192.0.2.77")}) == "ops");
    BOOST_TEST(resolved(index, {"bob", {"bob"}, "sshd", IpAddress::parse("2001:db8::5")}) == "ops");
    BOOST_TEST(resolved(index, {"bob", {"bob"}, "sshd", other}) == "anyone-ssh");
    BOOST_TEST(resolved(index, {"alice", {"alice"}, "su", other}) == "(unmatched)");
    // An empty match accepts no one.
    for (const auto& p : index.policies)
        if (p.name == "nobody")
            BOOST_TEST(resolve_policy(index, {"nobody", {}, "", std::nullopt}) == nullptr);
}

BOOST_AUTO_TEST_CASE(a_corrupt_index_is_refused_with_a_reason)
{
    BOOST_TEST(refusal(kMinimal) == "accepted");
    auto with = [](const std::string& from, const std::string& to) {
        std::string s = kMinimal;
        auto at = s.find(from);
        BOOST_REQUIRE(at != std::string::npos);
        return s.replace(at, from.size(), to);
    };
    BOOST_TEST(refusal(with("\"version\": 1", "\"version\": 2")).find("unknown version 2") != std::string::npos);
    BOOST_TEST(refusal(with("\"version\": 1", "\"version\": 1.0")).find("\"version\" is not an unsigned integer") !=
               std::string::npos);
    // Numbers are never cast: a float, a negative id, a priority beyond int.
    BOOST_TEST(refusal(with("\"id\": 1", "\"id\": 1e30")).find("\"id\" is not an unsigned integer") !=
               std::string::npos);
    BOOST_TEST(refusal(with("\"id\": 1", "\"id\": -1")).find("\"id\"") != std::string::npos);
    BOOST_TEST(refusal(with("\"id\": 1", "\"id\": 4294967296")).find("\"id\"") != std::string::npos);
    BOOST_TEST(refusal(with("\"priority\": 5", "\"priority\": 2147483648")).find("\"priority\"") != std::string::npos);
    BOOST_TEST(refusal(with("\"priority\": 5", "\"priority\": 5.5")).find("\"priority\"") != std::string::npos);
    BOOST_TEST(refusal(with("\"priority\": 5", "\"priority\": -7")) == "accepted");
    BOOST_TEST(refusal(with("\"priority\": 5", "\"priority\": -2147483648")) == "accepted");
    BOOST_TEST(refusal(with("\"priority\": 5", "\"priority\": -2147483649")).find("\"priority\"") != std::string::npos);
    BOOST_TEST(refusal(with("\"priority\": 5", "\"priority\": 18446744073709551615")).find("\"priority\"") !=
               std::string::npos);
    BOOST_TEST(refusal(with("\"max_duration_s\": 60", "\"max_duration_s\": -60")).find("\"max_duration_s\"") !=
               std::string::npos);
    BOOST_TEST(refusal(with("\"rhosts\": []", "\"rhosts\": [\"300.1.1.1/8\"]")).find("bad rhost prefix") !=
               std::string::npos);
    BOOST_TEST(refusal("[]").find("not a JSON object") != std::string::npos);
    BOOST_TEST(refusal(with("\"policies\": [{", "\"policies\": [7, {")).find("not a JSON object") != std::string::npos);
    BOOST_TEST(refusal("{\"version\": 1").find("parse error") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_fuzzing_seed_is_a_valid_index)
{
    // tests/fuzz/corpus/config/index.json: its first byte picks the parser.
    auto text = read_text(fs::path(AUTHWALL_SOURCE_DIR) / "tests/fuzz/corpus/config/index.json");
    BOOST_REQUIRE(!text.empty() && text[0] == '1');
    auto index = policy_index_from_json(text.substr(1), "index.json");
    BOOST_REQUIRE_MESSAGE(index.ok(), (index ? std::string() : index.error().message()));
    BOOST_TEST(resolved(*index, {"alice", {"alice"}, "sshd", IpAddress::parse("203.0.113.1")}) == "bastion-admins");
}

BOOST_AUTO_TEST_SUITE_END()
