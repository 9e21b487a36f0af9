// SPDX-License-Identifier: Apache-2.0
// Session records: the fast parser (what cgroupd's start reads by the
// hundred thousand) against the full one it defers to, and the listing of
// a run directory.
#include <boost/test/unit_test.hpp>

#include "core/session/record.h"
#include "core/base/time.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

using namespace authwall;
namespace fs = std::filesystem;

namespace {

// What a parser made of a text: the record as to_json writes it, or the error.
std::string outcome(const Result<SessionRecord>& r)
{
    return r ? to_json(*r) : "error: " + r.error().message();
}

SessionRecord login_record()
{
    SessionRecord r;
    r.id = 123456;
    r.correlation = "0123456789abcdef0123456789abcdef";
    r.kind = SessionKind::Login;
    r.user = "alice";
    r.uid = 1001;
    r.service = "sshd";
    r.rhost = "192.0.2.7";
    r.tty = "ssh";
    r.policy = "ops";
    r.policy_id = 3;
    r.cgroup = "/sys/fs/cgroup/unified/authwall/alice-1a2b3c";
    r.origin_cgroup = "/sys/fs/cgroup/unified/system.slice/ssh.service";
    r.leader_pid = 4242;
    r.opened_ns = 1795418085326582500ULL;
    r.opened_at = rfc3339_utc(r.opened_ns);
    r.max_duration_s = 7200;
    return r;
}

struct TempDir {
    fs::path path;
    TempDir()
    {
        char tmpl[] = "/tmp/authwall-unit-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir()
    {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(session_record)

BOOST_AUTO_TEST_CASE(the_fast_parser_reads_what_to_json_writes_as_the_full_one_does)
{
    std::vector<SessionRecord> records;
    records.push_back(login_record());
    auto container = login_record();
    container.kind = SessionKind::Container;
    container.user.clear();
    container.uid = 0;
    container.rhost.reset();
    container.tty.clear();
    container.unit = "libpod-0123.scope";
    container.leader_pid = 0;
    container.max_duration_s = 0;
    records.push_back(container);
    auto extremes = login_record();
    extremes.id = std::numeric_limits<uint64_t>::max();
    extremes.uid = std::numeric_limits<uint32_t>::max();
    extremes.policy_id = std::numeric_limits<uint32_t>::max();
    extremes.leader_pid = std::numeric_limits<pid_t>::max();
    extremes.opened_ns = std::numeric_limits<uint64_t>::max();
    extremes.max_duration_s = 0;
    extremes.policy = "";
    records.push_back(extremes);
    auto handed = login_record(); // what an SSO module handed through the PAM environment
    handed.auth_correlation = "8f14e45f-ceea-467f-a0e6-ab1f2c3d4e5f";
    handed.auth_claims = "amr=pwd+otp,acr=urn:mfa,sub=alice@example.org";
    records.push_back(handed);
    for (const auto& r : records) {
        auto text = to_json(r);
        auto fast = detail::record_from_json_fast(text);
        BOOST_REQUIRE_MESSAGE(fast, text);
        BOOST_TEST(to_json(*fast) == text);
        BOOST_TEST(outcome(detail::record_from_json_full(text, "t")) == text);
        BOOST_TEST(outcome(record_from_json(text, "t")) == text);
    }
    // Compact, without the optional fields, unknown fields of plain kinds.
    std::string compact = R"({"version":1,"id":7,"correlation":"c","kind":"login","user":"u","uid":5,)"
                          R"("service":"s","rhost":null,"policy":"p","policy_id":0,"cgroup":"/x",)"
                          R"("opened_at":"t","future":"x","later":12,"gone":null})";
    auto fast = detail::record_from_json_fast(compact);
    BOOST_REQUIRE(fast);
    BOOST_TEST(to_json(*fast) == outcome(detail::record_from_json_full(compact, "t")));
    BOOST_TEST(fast->tty.empty());
    BOOST_TEST(fast->leader_pid == 0);
    BOOST_TEST(fast->max_duration_s == 0u);
}

BOOST_AUTO_TEST_CASE(anything_else_goes_to_the_full_parser)
{
    const std::string good = to_json(login_record());
    auto replace = [&](const std::string& from, const std::string& to) {
        auto text = good;
        auto at = text.find(from);
        BOOST_REQUIRE(at != std::string::npos);
        return text.replace(at, from.size(), to);
    };
    const std::vector<std::string> others = {
        replace(R"("user": "alice")", R"("user": "al\"ice")"),             // an escape: still a record
        replace(R"("user": "alice")", "\"user\": \"al\xc3\xaf\x63\x65\""), // UTF-8: still a record
        replace(R"("user": "alice")", "\"user\": \"al\xc3\""),             // broken UTF-8
        replace(R"("tty": "ssh")", "\"tty\": \"a\tb\""),                   // a raw control character
        replace(R"("rhost": "192.0.2.7",)", ""),                           // a required field missing
        replace(R"("uid": 1001)", R"("uid": "1001")"),                     // wrong types
        replace(R"("tty": "ssh")", R"("tty": null)"),
        replace(R"("rhost": "192.0.2.7")", R"("rhost": 7)"),
        replace(R"("leader_pid": 4242)", R"("leader_pid": -1)"), // numbers that are not unsigned integers
        replace(R"("opened_ns": 1795418085326582500)", R"("opened_ns": 1.5)"),
        replace(R"("opened_ns": 1795418085326582500)", R"("opened_ns": 1e3)"),
        replace(R"("policy_id": 3)", R"("policy_id": 03)"),
        replace(R"("id": 123456)", R"("id": 18446744073709551616)"), // u64 overflow
        replace(R"("uid": 1001)", R"("uid": 4294967296)"),           // above u32
        replace(R"("leader_pid": 4242)", R"("leader_pid": 2147483648)"),
        replace(R"("version": 1)", R"("version": 2)"),
        replace(R"("uid": 1001)", R"("uid": 1001, "uid": 1002)"),     // a duplicate key
        replace(R"("tty": "ssh")", R"("tty": "ssh", "x": {"a": 1})"), // nesting, other kinds
        replace(R"("tty": "ssh")", R"("tty": "ssh", "x": [1])"),
        replace(R"("tty": "ssh")", R"("tty": "ssh", "x": true)"),
        good + "x",                      // trailing text
        "\xef\xbb\xbf" + good,           // a byte order mark
        good.substr(0, good.size() / 2), // truncated
        "",
        "[]",
        "{}",
        "null",
    };
    for (const auto& text : others) {
        BOOST_TEST(!detail::record_from_json_fast(text), text);
        BOOST_TEST(outcome(record_from_json(text, "t")) == outcome(detail::record_from_json_full(text, "t")), text);
    }
    BOOST_TEST(record_from_json(others[1], "t").ok());
    auto escaped = record_from_json(others[0], "t");
    BOOST_REQUIRE(escaped);
    BOOST_TEST(escaped->user == "al\"ice");
    auto missing = record_from_json(others[4], "t");
    BOOST_REQUIRE(!missing);
    BOOST_TEST(missing.error().message().find("rhost") != std::string::npos, missing.error().message());
}

BOOST_AUTO_TEST_CASE(listing_reads_every_record_and_skips_the_rest)
{
    TempDir run;
    auto a = login_record();
    auto b = login_record();
    b.id = 654321;
    b.user = "bob\"by"; // the full parser's case, listed all the same
    BOOST_REQUIRE(write_record(run.path, a).ok());
    BOOST_REQUIRE(write_record(run.path, b).ok());
    std::ofstream(sessions_dir(run.path) / "999.json") << "{ not json";
    std::ofstream(sessions_dir(run.path) / "1.json.tmp.abcd") << to_json(a);
    std::ofstream(sessions_dir(run.path) / ".json") << to_json(a);
    fs::create_directory(sessions_dir(run.path) / "2.json");
    auto listed = list_records(run.path);
    BOOST_REQUIRE(listed.ok());
    std::map<uint64_t, std::string> by_id;
    for (const auto& r : *listed)
        by_id[r.id] = to_json(r);
    BOOST_TEST(by_id.size() == 2u);
    BOOST_TEST(by_id[a.id] == to_json(a));
    BOOST_TEST(by_id[b.id] == to_json(b));

    auto read = read_record(run.path, b.id);
    BOOST_REQUIRE(read.ok());
    BOOST_TEST(to_json(*read) == to_json(b));
    auto gone = read_record(run.path, 42);
    BOOST_REQUIRE(!gone.ok());
    BOOST_TEST(gone.error().err == ENOENT);

    TempDir empty;
    auto none = list_records(empty.path / "never-made");
    BOOST_REQUIRE(none.ok());
    BOOST_TEST(none->empty());
}

BOOST_AUTO_TEST_SUITE_END()
