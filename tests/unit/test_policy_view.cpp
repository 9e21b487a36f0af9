// SPDX-License-Identifier: Apache-2.0
#include <boost/test/unit_test.hpp>

#include "core/policy/policy_file.h"
#include "core/policy/view.h"

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace authwall;

BOOST_AUTO_TEST_SUITE(policy_view)

BOOST_AUTO_TEST_CASE(read_back_folds_ports_and_keeps_meaning)
{
    auto load = parse_policy_text(R"(
[policy.ops.egress]
default = "deny"
allow = ["10.20.0.0/16 tcp 22", "2001:db8::/32 tcp 443-445", "any udp 53"]
deny = ["169.254.169.254"]
[policy.ops.ingress]
from_rhost_only = true
[policy.ops.bind]
deny = ["tcp 1-1023"]
[policy.ops.sockets]
deny_families = ["packet", "raw"]
)",
                                  "t.toml");
    BOOST_REQUIRE(load.ok());
    auto c = compile_policies(load.policies, Fallback{Fallback::Kind::Deny, {}});
    BOOST_REQUIRE(c.ok());
    auto views = describe_generation(c->entries, {{c->ids.at("ops"), "ops"}});
    BOOST_REQUIRE_EQUAL(views.size(), 2u);
    BOOST_TEST(views[0].name == "(unmatched)");
    BOOST_TEST((views[0].egress.default_verdict == Verdict::Deny));
    const auto& ops = views[1];
    BOOST_TEST(ops.name == "ops");
    // Each rule with its number in the policy (the order it was read in).
    BOOST_TEST(format_policy(ops) == "policy ops (id 1, 40 entries, mode enforce)\n"
                                     "  egress: default deny\n"
                                     "    deny 169.254.169.254  #4\n"
                                     "    allow 10.20.0.0/16 tcp 22  #1\n"
                                     "    allow 2001:db8::/32 tcp 443-445  #2\n"
                                     "    allow any udp 53  #3\n"
                                     "  ingress: default deny, from_rhost_only\n"
                                     "  bind: default allow\n"
                                     "    deny any tcp 1-1023  #5\n"
                                     "  sockets: deny packet, raw\n");
}

BOOST_AUTO_TEST_CASE(shipped_policies_parse_and_compile)
{
    namespace fs = std::filesystem;
    size_t files = 0;
    for (const auto& entry : fs::directory_iterator(AUTHWALL_POLICIES_DIR)) {
        if (entry.path().extension() != ".toml")
            continue;
        ++files;
        std::ifstream in(entry.path());
        std::ostringstream text;
        text << in.rdbuf();
        BOOST_TEST_CONTEXT(entry.path().filename().string())
        {
            auto load = parse_policy_text(text.str(), entry.path().string());
            for (const auto& e : load.errors)
                BOOST_TEST_MESSAGE(e.str());
            BOOST_TEST(load.ok());
            BOOST_TEST(!load.policies.empty());
            BOOST_TEST(compile_policies(load.policies, Fallback{}).ok());
        }
    }
    BOOST_TEST(files >= 4u); // default, bastion, tenants, default-deny
}

BOOST_AUTO_TEST_SUITE_END()
