// SPDX-License-Identifier: Apache-2.0
// DNS names in rules: what parses as a name and what is refused where, how
// a name's addresses compile, the [dns] settings, and the name table's
// timing (TTL floor and ceiling, refresh, grace, staleness) on a clock the
// test moves.
#include <boost/test/unit_test.hpp>

#include "core/policy/compiler.h"
#include "core/policy/config.h"
#include "core/policy/policy_file.h"
#include "loader/names.h"
#include "loader/session_answers.h"

#include <netinet/in.h>

#include <algorithm>

using namespace authwall;
using namespace std::chrono_literals;

namespace {

std::string first_error(const std::string& text)
{
    auto load = parse_policy_text(text, "p.toml");
    return load.errors.empty() ? "" : load.errors.front().str();
}

IpAddress ip(const char* text)
{
    return *IpAddress::parse(text);
}

DnsSettings settings()
{
    DnsSettings s;
    s.min_ttl_sec = 5;
    s.max_ttl_sec = 600;
    s.grace_sec = 30;
    s.stale_sec = 120;
    return s;
}

std::vector<IpAddress> in_force(NameTable& t, const std::string& name, NameTable::Clock::time_point now)
{
    return t.in_force(now)[name];
}

} // namespace

BOOST_AUTO_TEST_SUITE(dns_names)

BOOST_AUTO_TEST_CASE(names_parse_in_lower_case_and_bad_ones_say_why)
{
    BOOST_TEST(*parse_dns_name("DB.Prod.Internal.") == "db.prod.internal");
    BOOST_TEST(*parse_dns_name("*.s3.amazonaws.com") == "*.s3.amazonaws.com");
    BOOST_TEST(*parse_dns_name("*.internal") == "*.internal");
    BOOST_TEST(*parse_dns_name("xn--bcher-kva.example") == "xn--bcher-kva.example");
    std::string why;
    for (const char* bad : {"db..internal", ".db.internal", "db.-x.internal", "db.x-.internal", "a*.example.com",
                            "db.*.example.com", "db_1.example.com", "host.123", "*.", "localhost"}) {
        BOOST_TEST_CONTEXT(bad)
        {
            BOOST_TEST(!parse_dns_name(bad, &why));
            BOOST_TEST(why.find("is not a DNS name") != std::string::npos);
        }
    }
    BOOST_TEST(!parse_dns_name(std::string(64, 'a') + ".example.com", &why));
    BOOST_TEST(why.find("63") != std::string::npos);

    auto rule = parse_rule("db.prod.internal tcp 5432");
    BOOST_REQUIRE(rule);
    BOOST_TEST(rule->host == "db.prod.internal");
    BOOST_TEST(rule->protocol == IPPROTO_TCP);
    BOOST_TEST(rule->str() == "db.prod.internal tcp 5432");
    // A bad IPv4 address stays a bad address, not a name.
    RuleError e;
    BOOST_TEST(!parse_rule("10.0.0.300 tcp 22", &e));
    BOOST_TEST(e.message.find("DNS") == std::string::npos);
    BOOST_TEST(!parse_rule("db..internal tcp 22", &e));
    BOOST_TEST(e.column == 1u);
}

BOOST_AUTO_TEST_CASE(names_allow_in_egress_and_ingress_only)
{
    BOOST_TEST(first_error("[policy.p.egress]\nallow = [\"db.example.com tcp 5432\"]\n"
                           "[policy.p.ingress]\nallow = [\"mon.example.com tcp 9100\"]\n") == "");
    BOOST_TEST(first_error("[policy.p.egress]\ndeny = [\"db.example.com\"]\n").find("p.toml:2:") == 0);
    BOOST_TEST(first_error("[policy.p.egress]\ndeny = [\"db.example.com\"]\n").find("can only allow") !=
               std::string::npos);
    BOOST_TEST(first_error("[policy.p.bind]\nallow = [\"db.example.com tcp 80\"]\n").find("only in egress") !=
               std::string::npos);
    BOOST_TEST(first_error("[policy.p.egress]\nallow = [\"*.example.com tcp 443\"]\n") == "");
    BOOST_TEST(
        first_error("[sets]\ndb = [\"db.example.com\"]\n[policy.p.egress]\nallow = [\"@db\"]\n").find("not in sets") !=
        std::string::npos);
    // A name is not covered by an address deny: both stand.
    BOOST_TEST(first_error("[policy.p.egress]\nallow = [\"db.example.com tcp 5432\"]\ndeny = [\"10.0.0.0/8\"]\n") ==
               "");
    // ... but "deny any" covers it, as it covers every address.
    BOOST_TEST(first_error("[policy.p.egress]\nallow = [\"db.example.com tcp 5432\"]\ndeny = [\"any\"]\n")
                   .find("can never match") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_name_compiles_to_one_host_entry_per_address_and_none_without)
{
    auto load = parse_policy_text("[policy.p.egress]\ndefault = \"deny\"\nallow = [\"db.example.com tcp 5432\"]\n"
                                  "deny = [\"10.0.0.6 tcp 5432\"]\n",
                                  "p.toml");
    BOOST_REQUIRE(load.ok());
    auto without = compile_policies(load.policies, Fallback{});
    BOOST_REQUIRE(without.ok());
    NameAddresses names{{"db.example.com", {ip("10.0.0.5"), ip("2001:db8::5"), ip("10.0.0.6")}}};
    auto with = compile_policies(load.policies, Fallback{}, {}, {}, names);
    BOOST_REQUIRE(with.ok());
    // Three addresses, one each; the one a deny covers is dropped.
    BOOST_TEST(with->entries.size() == without->entries.size() + 2);
    BOOST_TEST(with->dropped_shadowed == 1u);
    size_t hosts = 0;
    for (const auto& e : with->entries)
        if (e.key.dir == AW_DIR_EGRESS && e.value.verdict == AW_VERDICT_ALLOW) {
            BOOST_TEST(e.key.prefixlen == AW_RULE_KEY_FIXED_BITS + 128u);
            BOOST_TEST(e.value.rule == 1u);
            ++hosts;
        }
    BOOST_TEST(hosts == 2u);
}

BOOST_AUTO_TEST_CASE(dns_settings_parse_and_refuse_bad_values)
{
    auto c = parse_config_text("[dns]\nservers = [\"127.0.0.1:5353\", \"::1\", \"[2001:db8::53]:53\", \"10.0.0.53\"]\n"
                               "min_ttl_sec = 2\nmax_ttl_sec = 60\ngrace_sec = 0\nstale_sec = 10\n",
                               "a.toml");
    BOOST_REQUIRE(c.ok());
    BOOST_REQUIRE_EQUAL(c.config.dns.servers.size(), 4u);
    BOOST_TEST(c.config.dns.servers[0].str() == "127.0.0.1:5353");
    BOOST_TEST(c.config.dns.servers[1].str() == "[::1]:53");
    BOOST_TEST(c.config.dns.servers[2].str() == "[2001:db8::53]:53");
    BOOST_TEST(c.config.dns.servers[3].str() == "10.0.0.53:53");
    BOOST_TEST(c.config.dns.grace_sec == 0u);
    for (const char* bad : {"[dns]\nservers = [\"dns.example.com\"]\n", "[dns]\nservers = [\"10.0.0.1:0\"]\n",
                            "[dns]\nservers = [\"[::1\"]\n", "[dns]\nmin_ttl_sec = 0\n",
                            "[dns]\nmin_ttl_sec = 100\nmax_ttl_sec = 10\n", "[dns]\nttl = 5\n", "dns = 5\n"}) {
        BOOST_TEST_CONTEXT(bad)
        {
            auto load = parse_config_text(bad, "a.toml");
            BOOST_REQUIRE(!load.ok());
            BOOST_TEST(load.errors.front().str().find("a.toml:") == 0);
        }
    }
}

BOOST_AUTO_TEST_CASE(answers_are_refreshed_before_their_ttl_and_kept_for_the_grace)
{
    NameTable t(settings());
    auto t0 = NameTable::Clock::now();
    t.want({"db.example.com"}, t0);
    BOOST_REQUIRE_EQUAL(t.due(t0).size(), 1u);
    t.asked("db.example.com");
    BOOST_TEST(t.due(t0).empty());
    BOOST_TEST(t.pending());
    t.answered("db.example.com", {{ip("10.0.0.5"), 60s}, {ip("10.0.0.7"), 20s}}, t0);
    BOOST_TEST(!t.pending());
    BOOST_TEST(in_force(t, "db.example.com", t0).size() == 2u);
    // Asked again at 3/4 of the shortest TTL (20 s): at 15 s.
    BOOST_TEST(t.due(t0 + 14s).empty());
    BOOST_TEST(t.due(t0 + 15s).size() == 1u);
    BOOST_TEST((*t.next_event(t0) == t0 + 15s));
    // The name moves to .6: .5 stays for its TTL (60 s) + grace (30 s),
    // .7 for 20 s + 30 s, counted from the last answer that held them.
    t.answered("db.example.com", {{ip("10.0.0.6"), 60s}}, t0 + 15s);
    BOOST_TEST(in_force(t, "db.example.com", t0 + 49s).size() == 3u);
    BOOST_TEST(in_force(t, "db.example.com", t0 + 50s).size() == 2u); // .7 left
    BOOST_TEST(in_force(t, "db.example.com", t0 + 89s).size() == 2u);
    auto left = in_force(t, "db.example.com", t0 + 90s);
    BOOST_TEST(left.size() == 1u);
    BOOST_TEST(left.front().str() == "10.0.0.6");
}

BOOST_AUTO_TEST_CASE(ttls_are_clamped_to_the_floor_and_the_ceiling)
{
    NameTable t(settings());
    auto t0 = NameTable::Clock::now();
    t.want({"a.example.com", "b.example.com"}, t0);
    t.answered("a.example.com", {{ip("10.0.0.1"), 0s}}, t0);     // floor: 5 s
    t.answered("b.example.com", {{ip("10.0.0.2"), 86400s}}, t0); // ceiling: 600 s
    BOOST_TEST(in_force(t, "a.example.com", t0 + 34s).size() == 1u);
    BOOST_TEST(in_force(t, "a.example.com", t0 + 35s).empty());
    BOOST_TEST(in_force(t, "b.example.com", t0 + 629s).size() == 1u);
    BOOST_TEST(in_force(t, "b.example.com", t0 + 630s).empty());
}

BOOST_AUTO_TEST_CASE(a_failing_server_keeps_the_last_answer_until_stale_and_backs_off)
{
    NameTable t(settings());
    auto t0 = NameTable::Clock::now();
    t.want({"db.example.com"}, t0);
    t.answered("db.example.com", {{ip("10.0.0.5"), 10s}}, t0);
    // TTL + grace would end at 40 s; failing, it stays until 120 s.
    t.failed("db.example.com", "timeout", t0 + 8s);
    BOOST_TEST(t.entry("db.example.com")->error == "timeout");
    BOOST_TEST((t.entry("db.example.com")->refresh_at == t0 + 13s)); // the floor
    t.failed("db.example.com", "timeout", t0 + 13s);
    BOOST_TEST((t.entry("db.example.com")->refresh_at == t0 + 23s)); // doubled
    BOOST_TEST(in_force(t, "db.example.com", t0 + 119s).size() == 1u);
    BOOST_TEST(in_force(t, "db.example.com", t0 + 120s).empty());
    // Back-off is bounded.
    for (int i = 0; i < 20; ++i)
        t.failed("db.example.com", "timeout", t0 + 200s);
    BOOST_TEST((t.entry("db.example.com")->refresh_at == t0 + 260s));
    // An answer ends the failure.
    t.answered("db.example.com", {{ip("10.0.0.8"), 10s}}, t0 + 300s);
    BOOST_TEST(t.entry("db.example.com")->error.empty());
    BOOST_TEST(in_force(t, "db.example.com", t0 + 300s).size() == 1u);
}

BOOST_AUTO_TEST_CASE(no_such_name_is_an_answer_and_unwanted_names_are_forgotten)
{
    NameTable t(settings());
    auto t0 = NameTable::Clock::now();
    t.want({"db.example.com", "old.example.com"}, t0);
    t.answered("db.example.com", {{ip("10.0.0.5"), 10s}}, t0);
    t.not_found("db.example.com", t0 + 5s);
    // Not a failure: no staleness, only TTL + grace from the last answer.
    BOOST_TEST(in_force(t, "db.example.com", t0 + 39s).size() == 1u);
    BOOST_TEST(in_force(t, "db.example.com", t0 + 40s).empty());
    BOOST_TEST((t.entry("db.example.com")->refresh_at == t0 + 10s));
    // An empty answer is the same.
    t.answered("db.example.com", {}, t0 + 10s);
    BOOST_TEST(t.entry("db.example.com")->failures == 0u);
    t.want({"db.example.com"}, t0 + 11s);
    BOOST_TEST(!t.entry("old.example.com"));
    BOOST_TEST(t.in_force(t0 + 11s).count("old.example.com") == 0u);
    // A late answer for a forgotten name changes nothing.
    t.answered("old.example.com", {{ip("10.0.0.9"), 10s}}, t0 + 12s);
    BOOST_TEST(!t.entry("old.example.com"));
}

BOOST_AUTO_TEST_CASE(an_answer_is_capped_at_max_addresses)
{
    DnsSettings s = settings();
    s.max_addresses = 2;
    NameTable t(s);
    auto t0 = NameTable::Clock::now();
    t.want({"rr.example.com"}, t0);
    t.answered("rr.example.com", {{ip("10.0.0.1"), 10s}, {ip("10.0.0.2"), 10s}, {ip("10.0.0.3"), 10s}}, t0);
    BOOST_TEST(in_force(t, "rr.example.com", t0).size() == 2u);
    auto state = t.state(t0);
    BOOST_TEST(state.at("names").at(0).at("addresses").size() == 2u);
}

namespace {

// A DNS response as a server sends it: the question, then each record with
// a pointer to the question's name (or to the previous CNAME's target).
struct Response {
    std::vector<uint8_t> bytes;
    explicit Response(const std::string& name, uint8_t flags_lo = 0x80, uint16_t questions = 1)
    {
        bytes = {0x12, 0x34, 0x81, flags_lo, 0, static_cast<uint8_t>(questions), 0, 0, 0, 0, 0, 0};
        append_name(name);
        bytes.insert(bytes.end(), {0, 1, 0, 1});
    }
    void append_name(const std::string& name)
    {
        size_t at = 0;
        while (at < name.size()) {
            size_t dot = std::min(name.find('.', at), name.size());
            bytes.push_back(static_cast<uint8_t>(dot - at));
            bytes.insert(bytes.end(), name.begin() + at, name.begin() + dot);
            at = dot + 1;
        }
        bytes.push_back(0);
    }
    void record(uint16_t type, uint32_t ttl, const std::vector<uint8_t>& data, uint16_t owner = 12)
    {
        bytes[7]++; // ANCOUNT (fewer than 256 here)
        bytes.insert(bytes.end(),
                     {static_cast<uint8_t>(0xc0 | owner >> 8), static_cast<uint8_t>(owner & 0xff),
                      static_cast<uint8_t>(type >> 8), static_cast<uint8_t>(type), 0, 1,
                      static_cast<uint8_t>(ttl >> 24), static_cast<uint8_t>(ttl >> 16), static_cast<uint8_t>(ttl >> 8),
                      static_cast<uint8_t>(ttl), 0, static_cast<uint8_t>(data.size())});
        bytes.insert(bytes.end(), data.begin(), data.end());
    }
    std::optional<DnsResponse> parse() const { return parse_dns_response(bytes.data(), bytes.size()); }
};

std::vector<std::string> addresses(const DnsResponse& r)
{
    std::vector<std::string> out;
    for (const auto& a : r.answer)
        out.push_back(a.address.str() + "/" + std::to_string(a.ttl.count()));
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(responses_give_the_name_asked_and_its_addresses_after_cnames)
{
    Response r("Web1.Test.Internal");
    r.record(1, 30, {10, 0, 0, 5});
    r.record(28, 60, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5});
    auto p = r.parse();
    BOOST_REQUIRE(p);
    BOOST_TEST(p->name == "web1.test.internal");
    BOOST_TEST(addresses(*p) == (std::vector<std::string>{"10.0.0.5/30", "2001:db8::5/60"}));

    // A CNAME to another name, whose address follows: the address answers
    // the name asked.
    Response c("www.example.com");
    size_t target = c.bytes.size() + 12;
    std::vector<uint8_t> cname{3, 'c', 'd', 'n', 3, 'n', 'e', 't', 0};
    c.record(5, 300, cname);
    c.record(1, 20, {192, 0, 2, 7}, static_cast<uint16_t>(target));
    p = c.parse();
    BOOST_REQUIRE(p);
    BOOST_TEST(p->name == "www.example.com");
    BOOST_TEST(addresses(*p) == (std::vector<std::string>{"192.0.2.7/20"}));

    // A response without records: the name, no address.
    auto empty = Response("a.example.com").parse();
    BOOST_TEST((empty && empty->answer.empty()));
    // Not a response, an error, two questions, cut short: nothing.
    Response query("a.example.com");
    query.bytes[2] = 0x01; // QR clear
    BOOST_TEST(!query.parse());
    BOOST_TEST(!Response("a.example.com", 0x83).parse()); // NXDOMAIN
    BOOST_TEST(!Response("a.example.com", 0x80, 2).parse());
    Response cut("a.example.com");
    cut.record(1, 30, {10, 0, 0, 5});
    cut.bytes.resize(cut.bytes.size() - 3);
    auto partial = cut.parse();
    BOOST_TEST((!partial || partial->answer.empty()));
    BOOST_TEST(!parse_dns_response(cut.bytes.data(), 11));
}

BOOST_AUTO_TEST_CASE(names_match_exactly_or_strictly_under_a_wildcard)
{
    BOOST_TEST(name_matches("db.example.com", "db.example.com"));
    BOOST_TEST(!name_matches("db.example.com", "x.db.example.com"));
    BOOST_TEST(name_matches("*.example.com", "db.example.com"));
    BOOST_TEST(name_matches("*.example.com", "a.b.example.com"));
    BOOST_TEST(!name_matches("*.example.com", "example.com"));
    BOOST_TEST(!name_matches("*.example.com", "badexample.com"));
    BOOST_TEST(!name_matches("*.example.com", "example.com.evil.net"));
}

BOOST_AUTO_TEST_CASE(policy_name_rules_carry_each_rule_and_its_services)
{
    auto load = parse_policy_text("[sets]\nweb = [\"tcp 80\", \"tcp 443\"]\n"
                                  "[policy.p.egress]\nallow = [\"10.0.0.1\", \"*.example.com @web\"]\n"
                                  "[policy.p.ingress]\nallow = [\"mon.example.com udp 161-162\"]\n"
                                  "[policy.q.egress]\nallow = [\"10.0.0.2\"]\n",
                                  "p.toml");
    BOOST_REQUIRE(load.ok());
    auto rules = policy_name_rules(load.policies, {{"p", 7}, {"q", 8}}, Fallback{Fallback::Kind::Policy, "p"});
    BOOST_REQUIRE_EQUAL(rules.size(), 2u); // p, and p again as the fallback; q has no name
    const auto& p = rules.at(7);
    BOOST_REQUIRE_EQUAL(p.size(), 3u);
    BOOST_TEST(p[0].pattern == "*.example.com");
    BOOST_TEST(p[0].grant.rule == 2u);
    BOOST_TEST(p[0].grant.dir == AW_DIR_EGRESS);
    BOOST_TEST(p[0].grant.proto == IPPROTO_TCP);
    BOOST_TEST(p[0].grant.port_first == 80);
    BOOST_TEST(p[1].grant.port_first == 443);
    BOOST_TEST(p[2].pattern == "mon.example.com");
    BOOST_TEST(p[2].grant.dir == AW_DIR_INGRESS);
    BOOST_TEST((p[2].grant.port_first == 161 && p[2].grant.port_last == 162));
    BOOST_TEST(rules.at(AW_POLICY_FALLBACK).size() == 3u);
}

BOOST_AUTO_TEST_CASE(grants_merge_without_repeats_up_to_four_and_expired_ones_go)
{
    auto grant = [](uint32_t rule, uint16_t port) {
        aw_name_grant g{};
        g.rule = rule;
        g.proto = IPPROTO_TCP;
        g.port_first = g.port_last = port;
        g.dir = AW_DIR_EGRESS;
        return g;
    };
    aw_name_seen seen{};
    BOOST_TEST(merge_grants(seen, std::nullopt, {grant(1, 80), grant(1, 443)}, 1000, 10) == 0u);
    BOOST_TEST(seen.expires_ns == 1000u);
    BOOST_TEST(seen.grants[1].port_first == 443);
    BOOST_TEST(seen.grants[2].rule == 0u);
    // A later answer for another name: both kept, the later expiry.
    aw_name_seen again{};
    BOOST_TEST(merge_grants(again, seen, {grant(2, 22), grant(1, 80)}, 900, 20) == 0u);
    BOOST_TEST(again.expires_ns == 1000u);
    BOOST_TEST(again.grants[0].rule == 2u);
    BOOST_TEST(again.grants[1].port_first == 80);
    BOOST_TEST(again.grants[2].port_first == 443);
    BOOST_TEST(again.grants[3].rule == 0u);
    // More than four: the newest kept, the rest counted.
    aw_name_seen full{};
    BOOST_TEST(merge_grants(full, again, {grant(3, 1), grant(3, 2)}, 900, 20) == 1u);
    BOOST_TEST(full.grants[0].rule == 3u);
    BOOST_TEST(full.grants[3].port_first == 80);
    // What had expired is not carried over.
    aw_name_seen fresh{};
    BOOST_TEST(merge_grants(fresh, full, {grant(4, 5)}, 3000, 2000) == 0u);
    BOOST_TEST(fresh.expires_ns == 3000u);
    BOOST_TEST(fresh.grants[1].rule == 0u);
}

BOOST_AUTO_TEST_CASE(observe_from_defaults_to_loopback_and_takes_prefixes)
{
    auto c = parse_config_text("", "a.toml");
    BOOST_REQUIRE_EQUAL(c.config.dns.observe_from.size(), 2u);
    BOOST_TEST(c.config.dns.observe_from[0].contains(ip("127.0.0.53")));
    BOOST_TEST(c.config.dns.observe_from[1].contains(ip("::1")));
    BOOST_TEST(!c.config.dns.observe_from[0].contains(ip("10.0.0.53")));
    c = parse_config_text("[dns]\nobserve_from = [\"10.0.0.53\", \"2001:db8::/64\"]\n", "a.toml");
    BOOST_REQUIRE(c.ok());
    BOOST_TEST(c.config.dns.observe_from.size() == 2u);
    BOOST_TEST(!parse_config_text("[dns]\nobserve_from = [\"nope\"]\n", "a.toml").ok());
}

BOOST_AUTO_TEST_SUITE_END()
