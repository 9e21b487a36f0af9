// SPDX-License-Identifier: Apache-2.0
#include <boost/test/unit_test.hpp>

#include "authctl/pam_stack.h"

using namespace authwall;

namespace {
std::filesystem::path fixture(const char* name)
{
    return std::filesystem::path(AUTHWALL_SOURCE_DIR) / "tests" / "fixtures" / "pam" / name;
}

std::vector<std::string> errors(const std::vector<Finding>& findings)
{
    std::vector<std::string> out;
    for (const auto& f : findings)
        if (f.level == Finding::Level::Error)
            out.push_back(f.message);
    return out;
}
} // namespace

BOOST_AUTO_TEST_SUITE(pam_stack)

BOOST_AUTO_TEST_CASE(includes_are_followed_in_order)
{
    auto stack = pam_session_stack(fixture("good"), "sshd");
    BOOST_REQUIRE(stack.ok());
    std::vector<std::string> modules;
    for (const auto& l : *stack)
        modules.push_back(l.module);
    BOOST_TEST(modules ==
               (std::vector<std::string>{"pam_loginuid.so", "pam_permit.so", "pam_deny.so", "pam_permit.so",
                                         "pam_unix.so", "pam_systemd.so", "pam_authwall.so", "pam_motd.so"}));
    BOOST_TEST((*stack)[1].control == "[default=1]");
    BOOST_TEST((*stack)[5].dash);
}

BOOST_AUTO_TEST_CASE(good_stack_has_no_errors)
{
    auto findings = check_pam_stack(*pam_session_stack(fixture("good"), "sshd"));
    BOOST_TEST(errors(findings).empty());
}

BOOST_AUTO_TEST_CASE(optional_does_not_enforce)
{
    auto e = errors(check_pam_stack(*pam_session_stack(fixture("optional"), "sshd")));
    BOOST_REQUIRE_EQUAL(e.size(), 1u);
    BOOST_TEST(e[0].find("control 'optional'") != std::string::npos);
    BOOST_TEST(e[0].find("common-session:3") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(before_pam_systemd_is_an_error)
{
    auto e = errors(check_pam_stack(*pam_session_stack(fixture("before-systemd"), "sshd")));
    BOOST_REQUIRE_EQUAL(e.size(), 1u);
    BOOST_TEST(e[0].find("runs before pam_systemd.so") != std::string::npos);
}

// libpam reads a service missing from /etc/pam.d from /usr/lib/pam.d
// (Debian's systemd-user); its includes still come from /etc/pam.d.
BOOST_AUTO_TEST_CASE(a_service_only_in_the_vendor_directory_is_found)
{
    auto stack = pam_session_stack(fixture("good"), "systemd-user", fixture("vendor"));
    BOOST_REQUIRE(stack.ok());
    bool authwall = false;
    for (const auto& l : *stack)
        authwall |= l.module.find("pam_authwall.so") != std::string::npos;
    BOOST_TEST(authwall);
    BOOST_TEST(stack->front().file.find("vendor/systemd-user") != std::string::npos);
    BOOST_TEST(!pam_session_stack(fixture("good"), "systemd-user", "").ok());
}

BOOST_AUTO_TEST_CASE(missing_through_substack_is_an_error)
{
    auto e = errors(check_pam_stack(*pam_session_stack(fixture("missing"), "sshd")));
    BOOST_REQUIRE_EQUAL(e.size(), 1u);
    BOOST_TEST(e[0] == "pam_authwall.so is not in the session stack: logins are not enforced");
}

BOOST_AUTO_TEST_CASE(unreadable_service_is_reported)
{
    auto stack = pam_session_stack(fixture("good"), "nosuchservice");
    BOOST_REQUIRE(!stack.ok());
    BOOST_TEST(stack.error().message().find("nosuchservice: No such file or directory") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
