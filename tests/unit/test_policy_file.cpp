// SPDX-License-Identifier: Apache-2.0
#include <boost/test/unit_test.hpp>

#include "core/policy/policy_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace authwall;

namespace {
std::vector<std::string> errors_of(const std::string& text)
{
    std::vector<std::string> out;
    for (const auto& e : parse_policy_text(text, "p.toml").errors)
        out.push_back(e.str());
    return out;
}
} // namespace

BOOST_AUTO_TEST_SUITE(policy_file)

BOOST_AUTO_TEST_CASE(the_design_example_parses)
{
    auto load = parse_policy_text(R"(
[policy.ops]
priority = 100
match.users = ["alice"]
match.groups = ["ops"]
match.services = ["sshd"]
match.rhosts = ["192.0.2.0/24"]
match.cgroups = ["machine.slice/libpod-*.scope"]

[policy.ops.egress]
default = "deny"
allow = ["10.20.0.0/16 tcp 22", "10.0.0.53 udp 53", "2001:db8::/32 tcp 443-444"]
deny  = ["169.254.169.254"]

[policy.ops.ingress]
from_rhost_only = true
allow = []

[policy.ops.bind]
deny = ["tcp 1-1023"]

[policy.ops.sockets]
deny_families = ["packet", "raw"]

[policy.ops.session]
max_duration = "8h"
)",
                                  "ops.toml");
    for (const auto& e : load.errors)
        BOOST_TEST_MESSAGE(e.str());
    BOOST_REQUIRE(load.ok());
    BOOST_REQUIRE_EQUAL(load.policies.size(), 1u);
    const auto& p = load.policies[0];
    BOOST_TEST(p.name == "ops");
    BOOST_TEST(p.priority == 100);
    BOOST_TEST(p.match.users == std::vector<std::string>{"alice"});
    BOOST_TEST(p.match.rhosts.size() == 1u);
    BOOST_TEST(p.egress.allow.size() == 3u);
    BOOST_TEST(p.egress.deny.size() == 1u);
    BOOST_TEST(p.ingress_from_rhost_only);
    BOOST_TEST(p.deny_raw);
    BOOST_TEST(p.max_duration->count() == 8 * 3600);
}

BOOST_AUTO_TEST_CASE(errors_name_file_line_column)
{
    BOOST_TEST(
        errors_of("[policy.a.egress]\nallow = [\"10.0.0.1 tcp 99999\"]\n") ==
        std::vector<std::string>{"p.toml:2:24: in rule \"10.0.0.1 tcp 99999\": '99999' is not a port (1-65535)"});
    BOOST_TEST(errors_of("[policy.a.egress]\ndefualt = \"deny\"\n") ==
               std::vector<std::string>{"p.toml:2:1: unknown key 'defualt' in policy.a.egress (expected one of: "
                                        "default, allow, deny)"});
    BOOST_TEST(errors_of("[policy.a.egress]\ndefault = \"drop\"\n") ==
               std::vector<std::string>{"p.toml:2:11: policy.a.egress.default must be \"allow\" or \"deny\""});
    BOOST_TEST(errors_of("[policy.a.ingress]\nfrom_rhost_only = true\ndefault = \"allow\"\n") ==
               std::vector<std::string>{
                   "p.toml:3:11: policy.a.ingress: default = \"allow\" contradicts from_rhost_only = true"});
    BOOST_TEST(
        errors_of("[policy.a.egress]\nallow = [\"10.0.0.0/8 tcp 22\"]\ndeny = [\"10.0.0.0/8 tcp 22\"]\n") ==
        std::vector<std::string>{"p.toml:2:10: policy.a.egress: \"10.0.0.0/8 tcp 22\" is both allowed and denied"});
    BOOST_TEST(errors_of("[policy.a.egress]\nallow = [\"10.1.2.0/24 tcp 22-23\"]\ndeny = [\"10.0.0.0/8 tcp\"]\n") ==
               std::vector<std::string>{"p.toml:2:10: policy.a.egress: allow \"10.1.2.0/24 tcp 22-23\" can never "
                                        "match: deny \"10.0.0.0/8 tcp\" covers it"});
    // A deny inside an allow is the normal way to carve out: no error.
    BOOST_TEST(errors_of("[policy.a.egress]\nallow = [\"10.0.0.0/8\"]\ndeny = [\"10.9.0.0/16 tcp 22\"]\n").empty());
    BOOST_TEST(errors_of("[policy.a.session]\nmax_duration = \"8 hours\"\n") ==
               std::vector<std::string>{"p.toml:2:16: policy.a.session.max_duration must be a duration such as "
                                        "\"8h\", \"90m\" or \"1h30m\""});
    BOOST_TEST(errors_of("[policy.a.sockets]\ndeny_families = [\"pakcet\"]\n") ==
               std::vector<std::string>{"p.toml:2:18: policy.a.sockets.deny_families: unknown family 'pakcet' "
                                        "(expected raw, packet, inet, inet6, unix, netlink, ...)"});
    BOOST_TEST(errors_of("[policy.\"bad name!\"]\n") ==
               std::vector<std::string>{
                   "p.toml:1:1: policy name 'bad name!' is invalid: use 1-63 letters, digits, '-', '_' or '.'"});
    BOOST_TEST(
        errors_of("[polcy.a]\n") ==
        std::vector<std::string>{"p.toml:1:2: unknown key 'polcy' in the policy file (expected one of: policy, sets)"});
    BOOST_TEST(errors_of("[policy.a]\nmatch.rhosts = [\"192.0.2.0/33\"]\n") ==
               std::vector<std::string>{"p.toml:2:17: policy.a.match.rhosts: prefix length '33' must be 0..32"});
    // A float is refused, never cast (1e300 would be undefined behaviour).
    BOOST_TEST(
        errors_of("[policy.a]\npriority = 1e300\n") ==
        std::vector<std::string>{"p.toml:2:12: policy.a.priority must be an integer between -1000000 and 1000000"});
    BOOST_TEST(errors_of("[policy.a]\npriority = 10.0\n").size() == 1u);
    BOOST_TEST(
        errors_of("[policy.a]\npriority = -inf\n") ==
        std::vector<std::string>{"p.toml:2:12: policy.a.priority must be an integer between -1000000 and 1000000"});
    // The policy's only other number is a duration, written as a string.
    BOOST_TEST(errors_of("[policy.a.session]\nmax_duration = 8.5\n") ==
               std::vector<std::string>{"p.toml:2:16: policy.a.session.max_duration must be a duration such as "
                                        "\"8h\", \"90m\" or \"1h30m\""});
    BOOST_TEST(errors_of("[policy.a.session]\nmax_duration = 28800\n").size() == 1u);
    BOOST_TEST(
        errors_of("[policy.a]\npriority = \"high\"\n") ==
        std::vector<std::string>{"p.toml:2:12: policy.a.priority must be an integer between -1000000 and 1000000"});
}

BOOST_AUTO_TEST_CASE(toml_syntax_errors_are_located)
{
    auto errors = errors_of("[policy.a.egress\nallow = [\n");
    BOOST_REQUIRE_EQUAL(errors.size(), 1u);
    BOOST_TEST(errors[0].rfind("p.toml:1:", 0) == 0);
}

// toml++ 3 reached undefined behaviour on these (core/policy/toml_reader.h); under
// the sanitizers this test fails if it still does.
BOOST_AUTO_TEST_CASE(non_ascii_where_whitespace_may_stand_is_an_error_not_undefined)
{
    auto cyrillic = errors_of("[policy\xd0\x9e]\npriority = 1\n"); // U+041E in a table header
    BOOST_REQUIRE_EQUAL(cyrillic.size(), 1u);
    BOOST_TEST(cyrillic[0].find("p.toml:1:") == 0, cyrillic[0]);
    // After a line-ending backslash in a multi-line string, U+00A7 is text.
    auto load = parse_policy_text("[policy.a]\nx = \"\"\"\\\n\xc2\xa7\"\"\"\n", "p.toml");
    BOOST_TEST(!load.errors.empty()); // x is no key of a policy, but the text parsed
    if (!load.errors.empty())
        BOOST_TEST(load.errors[0].message.find("unknown key 'x'") != std::string::npos, load.errors[0].str());
}

BOOST_AUTO_TEST_CASE(every_error_is_reported_not_just_the_first)
{
    auto errors = errors_of("[policy.a.egress]\nallow = [\"10.0.0.1 tcp 0\", \"bogus\"]\ndeny = [\"1.2.3.4/40\"]\n");
    BOOST_TEST(errors.size() == 3u);
}

BOOST_AUTO_TEST_CASE(untrusted_files_are_refused)
{
    char tmpl[] = "/tmp/authwall-pol-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    std::string dir = tmpl;
    std::string file = dir + "/p.toml";
    std::ofstream(file) << "[policy.a]\n";
    chmod(file.c_str(), 0666);
    auto load = load_policy_file(file, geteuid());
    BOOST_REQUIRE_EQUAL(load.errors.size(), 1u);
    BOOST_TEST(load.errors[0].message == "refuse " + file + ": is writable by group or others (chmod go-w it)");

    chmod(file.c_str(), 0644);
    load = load_policy_file(file, geteuid() + 1);
    BOOST_REQUIRE_EQUAL(load.errors.size(), 1u);
    BOOST_TEST(load.errors[0].message.find("is owned by uid " + std::to_string(geteuid())) != std::string::npos);

    BOOST_TEST(load_policy_file(file, geteuid()).ok());

    // A directory others can write to (and not sticky) could swap the file.
    chmod(dir.c_str(), 0777);
    load = load_policy_file(file, geteuid());
    BOOST_REQUIRE_EQUAL(load.errors.size(), 1u);
    BOOST_TEST(load.errors[0].message ==
               "refuse " + file + ": its directory " + dir + " is writable by group or others");
    chmod(dir.c_str(), 01777); // sticky, like /tmp: others cannot rename our file
    BOOST_TEST(load_policy_file(file, geteuid()).ok());
    chmod(dir.c_str(), 0700);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

BOOST_AUTO_TEST_SUITE_END()
