// SPDX-License-Identifier: Apache-2.0
// What authctl sessions and users share: -o's values, the filters, --user's
// reading of a name or a uid, the tables' time and legend.
#include <boost/test/unit_test.hpp>

#include "authctl/listing.h"

#include <pwd.h>

using namespace authctl;

BOOST_AUTO_TEST_SUITE(listing)

BOOST_AUTO_TEST_CASE(output_formats_are_the_three_names)
{
    BOOST_TEST((output_format("short") == OutputFormat::Short));
    BOOST_TEST((output_format("wide") == OutputFormat::Wide));
    BOOST_TEST((output_format("json") == OutputFormat::Json));
    BOOST_TEST(!output_format("JSON").has_value());
    BOOST_TEST(!output_format("").has_value());
    BOOST_TEST(!output_format("wid").has_value());
}

BOOST_AUTO_TEST_CASE(filters_select_by_uid_and_policy_together)
{
    ListOptions all;
    BOOST_TEST(all.selects(1001, "ops"));
    ListOptions by_user;
    by_user.uid = 1001;
    BOOST_TEST(by_user.selects(1001, "ops"));
    BOOST_TEST(!by_user.selects(1002, "ops"));
    ListOptions both = by_user;
    both.policy = "web";
    BOOST_TEST(both.selects(1001, "web"));
    BOOST_TEST(!both.selects(1001, "ops"));
    BOOST_TEST(!both.selects(1002, "web"));
    ListOptions fallback;
    fallback.policy = "(unmatched)";
    BOOST_TEST(fallback.selects(0, "(unmatched)"));
    BOOST_TEST(!fallback.selects(0, "unmatched"));
    // The empty name is a filter too, which no listed policy passes.
    ListOptions empty;
    empty.policy = "";
    BOOST_TEST(!empty.selects(0, "ops"));
}

BOOST_AUTO_TEST_CASE(user_is_a_name_nss_knows_or_a_uid)
{
    BOOST_TEST(resolve_user("root").value() == 0u);
    BOOST_TEST(resolve_user("0").value() == 0u);
    // A uid no one has is still a uid: the sessions of a deleted user.
    uint32_t unused = 3'999'999'999u;
    BOOST_REQUIRE(getpwuid(unused) == nullptr);
    BOOST_TEST(resolve_user(std::to_string(unused)).value() == unused);
    if (passwd* nobody = getpwnam("nobody"))
        BOOST_TEST(resolve_user("nobody").value() == nobody->pw_uid);

    for (const char* bad : {"", "no-such-user-authwall", "12ab", "-1", " 1", "1 ", "+5", "4294967295", "4294967296"}) {
        auto r = resolve_user(bad);
        BOOST_TEST(!r.ok(), "'" << bad << "' was taken");
        if (!r.ok())
            BOOST_TEST(r.error().message().find("is neither a user NSS knows nor a uid") != std::string::npos,
                       r.error().message());
    }
    // Untrusted text is shown escaped.
    auto r = resolve_user("a\nb");
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.error().message().find('\n') == std::string::npos, r.error().message());
}

BOOST_AUTO_TEST_CASE(tables_write_the_second_in_utc)
{
    // The record example of docs/INTEGRATIONS.md: opened_at 2026-11-23T01:40:20.371Z.
    BOOST_TEST(utc_seconds_text(1795398020371000000ULL) == "2026-11-23T01:40:20Z");
    BOOST_TEST(utc_seconds_text(0) == "1970-01-01T00:00:00Z");
    BOOST_TEST(utc_seconds_text(999'999'999ULL) == "1970-01-01T00:00:00Z");
}

BOOST_AUTO_TEST_CASE(the_legend_is_the_first_row)
{
    std::vector<std::vector<std::string>> rows{{"ID", "USER"}, {"1", "alice"}, {"2", "bob"}};
    BOOST_TEST(table_rows(rows, true) == rows);
    auto bare = table_rows(rows, false);
    BOOST_REQUIRE_EQUAL(bare.size(), 2u);
    BOOST_TEST(bare[0] == (std::vector<std::string>{"1", "alice"}));
    BOOST_TEST(table_rows({}, false).empty());
}

BOOST_AUTO_TEST_SUITE_END()
