// SPDX-License-Identifier: Apache-2.0
// authctl watch without an event log reads the journal: an entry's
// AUTHWALL_ fields become the event log's JSON object, with its types.
#include <boost/test/unit_test.hpp>

#include "authctl/journal_events.h"

#include <algorithm>

using namespace authctl;

BOOST_AUTO_TEST_SUITE(journal_events)

BOOST_AUTO_TEST_CASE(a_close_event_reads_as_the_event_log_writes_it)
{
    auto e = journal_event({"AUTHWALL_EVENT=close", "AUTHWALL_SESSION=4419", "AUTHWALL_USER=alice", "AUTHWALL_UID=1001",
                            "AUTHWALL_RHOST=", "AUTHWALL_POLICY=ops", "AUTHWALL_DURATION_S=12",
                            "AUTHWALL_BYTES_OUT=18446744073709551615", "AUTHWALL_DETAIL=a = b"},
                           1'700'000'000'123'456);
    BOOST_TEST(e["event"] == "close");
    BOOST_TEST(e["session"].is_number_unsigned());
    BOOST_TEST(e["session"].get<uint64_t>() == 4419u);
    BOOST_TEST(e["uid"].get<uint32_t>() == 1001u);
    BOOST_TEST(e["user"] == "alice");
    BOOST_TEST(e["rhost"].is_null());
    BOOST_TEST(e["duration_s"].get<uint64_t>() == 12u);
    BOOST_TEST(e["bytes_out"].get<uint64_t>() == UINT64_MAX);
    BOOST_TEST(e["detail"] == "a = b"); // only the first '=' separates
    BOOST_TEST(e["time"] == "2023-11-14T22:13:20.123Z");
}

BOOST_AUTO_TEST_CASE(a_decision_event_keeps_its_strings_and_numbers)
{
    auto e = journal_event({"AUTHWALL_EVENT=deny", "AUTHWALL_VERDICT=deny", "AUTHWALL_PORT=7789",
                            "AUTHWALL_PROTOCOL=tcp", "AUTHWALL_ADDRESS=127.0.0.1", "AUTHWALL_RULE=3",
                            "AUTHWALL_RULE_SOURCE=/etc/authwall/policies.d/ops.toml:4:10", "AUTHWALL_PID=77"},
                           0);
    BOOST_TEST(e["port"].get<uint16_t>() == 7789);
    BOOST_TEST(e["rule"].get<uint32_t>() == 3u);
    BOOST_TEST(e["pid"].get<uint32_t>() == 77u);
    BOOST_TEST(e["address"] == "127.0.0.1");
    BOOST_TEST(e["rule_source"] == "/etc/authwall/policies.d/ops.toml:4:10");
}

BOOST_AUTO_TEST_CASE(what_is_not_authwalls_or_not_a_number_is_left_out)
{
    auto e = journal_event({"MESSAGE=authwall: deny", "_PID=12", "AUTHWALL_=x", "AUTHWALL_UID=-1", "AUTHWALL_PORT=80x",
                            "AUTHWALL_SESSION=", "AUTHWALL_NOEQUALS", "AUTHWALL_EVENT=open"},
                           0);
    BOOST_TEST(!e.contains("message"));
    BOOST_TEST(!e.contains("_pid"));
    BOOST_TEST(!e.contains(""));
    BOOST_TEST(!e.contains("uid"));
    BOOST_TEST(!e.contains("port"));
    BOOST_TEST(!e.contains("session"));
    BOOST_TEST(!e.contains("noequals"));
    BOOST_TEST(e["event"] == "open");
}

BOOST_AUTO_TEST_CASE(every_event_name_is_known)
{
    for (const char* name : {"open", "close", "revoke", "reaped", "expired", "deny", "audit", "log"})
        BOOST_TEST((std::find(journal_event_names().begin(), journal_event_names().end(), name) !=
                    journal_event_names().end()));
}

BOOST_AUTO_TEST_SUITE_END()
