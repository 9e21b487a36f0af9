// SPDX-License-Identifier: Apache-2.0
#include <boost/test/unit_test.hpp>

#include "core/policy/rule.h"

#include <netinet/in.h>

using namespace authwall;

BOOST_AUTO_TEST_SUITE(rules)

BOOST_AUTO_TEST_CASE(addresses_parse_into_the_v4_mapped_form)
{
    auto a = IpAddress::parse("192.0.2.7");
    BOOST_REQUIRE(a.has_value());
    BOOST_TEST(a->is_v4());
    BOOST_TEST(a->str() == "192.0.2.7");
    BOOST_TEST(a->bytes()[10] == 0xff);
    BOOST_TEST(a->bytes()[15] == 7);
    auto mapped = IpAddress::parse("::ffff:192.0.2.7");
    BOOST_REQUIRE(mapped.has_value());
    BOOST_TEST((*mapped == *a));
    auto v6 = IpAddress::parse("2001:db8::1");
    BOOST_REQUIRE(v6.has_value());
    BOOST_TEST(!v6->is_v4());
    BOOST_TEST(v6->str() == "2001:db8::1");
    BOOST_TEST(!IpAddress::parse("192.0.2.256"));
    BOOST_TEST(!IpAddress::parse("example.com"));
    BOOST_TEST(!IpAddress::parse(""));
    BOOST_TEST(!IpAddress::parse("fe80::1%eth0"));
}

BOOST_AUTO_TEST_CASE(prefixes)
{
    std::string why;
    auto p = Prefix::parse("10.20.0.0/16", &why);
    BOOST_REQUIRE(p.has_value());
    BOOST_TEST(p->bits() == 96u + 16u);
    BOOST_TEST(p->str() == "10.20.0.0/16");
    BOOST_TEST(p->contains(*IpAddress::parse("10.20.255.1")));
    BOOST_TEST(!p->contains(*IpAddress::parse("10.21.0.1")));
    BOOST_TEST(!p->contains(*IpAddress::parse("2001:db8::1")));

    auto host = Prefix::parse("10.0.0.53");
    BOOST_REQUIRE(host.has_value());
    BOOST_TEST(host->bits() == 128u);

    auto any = Prefix::parse("any");
    BOOST_REQUIRE(any.has_value());
    BOOST_TEST(any->bits() == 0u);
    BOOST_TEST(any->contains(*IpAddress::parse("10.0.0.1")));
    BOOST_TEST(any->contains(*IpAddress::parse("2001:db8::1")));

    auto v6 = Prefix::parse("2001:db8::/32");
    BOOST_REQUIRE(v6.has_value());
    BOOST_TEST(v6->bits() == 32u);
    BOOST_TEST(v6->contains(*Prefix::parse("2001:db8:1::/48")));
    BOOST_TEST(!Prefix::parse("2001:db8:1::/48")->contains(*v6));

    BOOST_TEST(!Prefix::parse("10.0.0.1/8", &why));
    BOOST_TEST(why == "'10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)");
    BOOST_TEST(!Prefix::parse("10.0.0.0/33", &why));
    BOOST_TEST(why == "prefix length '33' must be 0..32");
    BOOST_TEST(!Prefix::parse("2001:db8::/129", &why));
    BOOST_TEST(why == "prefix length '129' must be 0..128");
    BOOST_TEST(!Prefix::parse("10.0.0.0/", &why));
    BOOST_TEST(!Prefix::parse("bogus/8", &why));
    BOOST_TEST(why == "'bogus' is not an IPv4 or IPv6 address");
}

BOOST_AUTO_TEST_CASE(rule_strings)
{
    auto r = parse_rule("10.20.0.0/16 tcp 22");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->protocol == IPPROTO_TCP);
    BOOST_TEST(r->ports.first == 22);
    BOOST_TEST(r->ports.last == 22);
    BOOST_TEST(r->str() == "10.20.0.0/16 tcp 22");

    r = parse_rule("2001:db8::/32 tcp 443-444");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->ports.first == 443);
    BOOST_TEST(r->ports.last == 444);

    r = parse_rule("169.254.169.254");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->protocol == 0);
    BOOST_TEST(r->ports.any());

    r = parse_rule("tcp 1-1023");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->prefix.bits() == 0u);
    BOOST_TEST(r->ports.last == 1023);

    r = parse_rule("any udp 1-65535"); // the whole range is "any port"
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->ports.any());
    BOOST_TEST(r->str() == "any udp");

    r = parse_rule("  10.0.0.53   udp   53 ");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->str() == "10.0.0.53 udp 53");

    BOOST_TEST(parse_rule("any icmp").has_value());
}

// A protocol by number is "proto N"; the canonical form writes it so, and
// keeps the name of a protocol that has one.
BOOST_AUTO_TEST_CASE(protocols_by_number_are_written_proto_n)
{
    auto r = parse_rule("10.0.0.0/8 proto 47"); // GRE
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->protocol == 47);
    BOOST_TEST(r->ports.any());
    BOOST_TEST(r->str() == "10.0.0.0/8 proto 47");

    r = parse_rule("proto 47");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->prefix.bits() == 0u);
    BOOST_TEST(r->protocol == 47);
    BOOST_TEST(r->str() == "any proto 47");

    r = parse_rule("any proto 6 22"); // a number that has a name: ports as for tcp
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->protocol == IPPROTO_TCP);
    BOOST_TEST(r->ports.first == 22);
    BOOST_TEST(r->str() == "any tcp 22");
    BOOST_TEST(parse_rule(r->str())->protocol == IPPROTO_TCP);

    RuleError e;
    BOOST_TEST(!parse_rule("10.0.0.0/8 proto 47 22", &e));
    BOOST_TEST(e.message == "protocol 47 has no ports");
    BOOST_TEST(!parse_rule("proto", &e));
    BOOST_TEST(e.column == 6u);
    BOOST_TEST(e.message == "'proto' needs an IP protocol number 1-255");
    BOOST_TEST(!parse_rule("any proto 256", &e));
    BOOST_TEST(e.column == 11u);
    BOOST_TEST(e.message == "'256' is not an IP protocol number (1-255)");
    BOOST_TEST(!parse_rule("any proto tcp", &e));
    BOOST_TEST(e.message == "'tcp' is not an IP protocol number (1-255)");
}

// "10.0.0.0/8 22" was read as IP protocol 22, never what a port 22 meant.
BOOST_AUTO_TEST_CASE(a_bare_number_is_not_a_protocol)
{
    RuleError e;
    BOOST_TEST(!parse_rule("10.0.0.0/8 22", &e));
    BOOST_TEST(e.column == 12u);
    BOOST_TEST(e.message ==
               "'22' is not a protocol name: write 'tcp 22' or 'udp 22' for a port, 'proto 22' for IP protocol 22");
    BOOST_TEST(!parse_rule("47", &e));
    BOOST_TEST(e.column == 1u);
    BOOST_TEST(e.message ==
               "'47' is not a protocol name: write 'tcp 47' or 'udp 47' for a port, 'proto 47' for IP protocol 47");
    BOOST_TEST(!parse_rule("any 8080", &e)); // no protocol 8080: only the port advice
    BOOST_TEST(e.column == 5u);
    BOOST_TEST(e.message == "'8080' is not a protocol name: write 'tcp 8080' or 'udp 8080' for a port");
    BOOST_TEST(!parse_rule("10.0.0.1 0", &e));
    BOOST_TEST(e.message ==
               "'0' is not a protocol name: expected tcp, udp, icmp, icmpv6, sctp, udplite or proto 1-255");
}

// ICMP types by nft's names or by number, one per rule, held as the port
// type + 1 (so echo-reply, type 0, is not "any").
BOOST_AUTO_TEST_CASE(icmp_types_are_ports_one_above_the_type)
{
    auto echo = parse_rule("any icmp echo-request");
    BOOST_REQUIRE(echo.has_value());
    BOOST_TEST(echo->protocol == IPPROTO_ICMP);
    BOOST_TEST(echo->ports.first == 9);
    BOOST_TEST(echo->ports.last == 9);
    BOOST_TEST(echo->str() == "any icmp echo-request");
    auto reply = parse_rule("10.0.0.0/8 icmp echo-reply");
    BOOST_REQUIRE(reply.has_value());
    BOOST_TEST(!reply->ports.any());
    BOOST_TEST(reply->ports.first == 1);
    auto by_number = parse_rule("10.0.0.0/8 icmp 13");
    BOOST_REQUIRE(by_number.has_value());
    BOOST_TEST(by_number->ports.first == 14);
    BOOST_TEST(by_number->str() == "10.0.0.0/8 icmp timestamp-request");
    auto unnamed = parse_rule("icmp 200");
    BOOST_REQUIRE(unnamed.has_value());
    BOOST_TEST(unnamed->str() == "any icmp 200");
    auto v6 = parse_rule("2001:db8::/32 icmpv6 packet-too-big");
    BOOST_REQUIRE(v6.has_value());
    BOOST_TEST(v6->ports.first == 3);
    BOOST_TEST(parse_rule("icmpv6 nd-neighbor-solicit")->ports.first == 136);
    // A type covers itself only; "icmp" (any type) covers every type.
    BOOST_TEST(echo->covered_by(*parse_rule("any icmp")));
    BOOST_TEST(!parse_rule("any icmp")->covered_by(*echo));
    BOOST_TEST(!reply->covered_by(*parse_rule("any icmp echo-request")));
    BOOST_TEST(icmp_request_port(IPPROTO_ICMP, 0) == 9);
    BOOST_TEST(icmp_request_port(IPPROTO_ICMPV6, 129) == 129);
    BOOST_TEST(icmp_request_port(IPPROTO_ICMP, 8) == 0);

    RuleError err;
    for (const char* bad : {"icmp echo", "icmp 256", "icmp -1", "icmp 8-10", "icmpv6 echo-request-x",
                            "icmp packet-too-big", "icmpv6 timestamp-request", "tcp echo-request"}) {
        BOOST_TEST(!parse_rule(bad, &err).has_value(), bad);
        BOOST_TEST(!err.message.empty());
    }
    BOOST_TEST(!parse_rule("any icmp echo-request 5", &err));
    BOOST_TEST(err.column == 23u);
    parse_rule("any icmpv6 echo", &err);
    BOOST_TEST(err.column == 12u);
    BOOST_TEST(err.message.find("not an ICMPv6 type") != std::string::npos, err.message);
}

BOOST_AUTO_TEST_CASE(rule_errors_name_the_column)
{
    RuleError e;
    BOOST_TEST(!parse_rule("10.0.0.1 tcp 99999", &e));
    BOOST_TEST(e.column == 14u);
    BOOST_TEST(e.message == "'99999' is not a port (1-65535)");

    BOOST_TEST(!parse_rule("10.0.0.1 tcp 0", &e));
    BOOST_TEST(e.message == "'0' is not a port (1-65535)");

    BOOST_TEST(!parse_rule("10.0.0.1 tcp 30-20", &e));
    BOOST_TEST(e.message == "port range 30-20 is reversed");

    BOOST_TEST(!parse_rule("10.0.0.1 tcp 20-x", &e));
    BOOST_TEST(e.column == 17u);
    BOOST_TEST(e.message == "'x' is not a port (1-65535)");

    BOOST_TEST(!parse_rule("10.0.0.1 tpc 22", &e));
    BOOST_TEST(e.column == 10u);
    BOOST_TEST(e.message == "'tpc' is not a protocol: expected tcp, udp, icmp, icmpv6, sctp, udplite or proto 1-255");

    BOOST_TEST(!parse_rule("10.0.0.1 proto 47 8", &e));
    BOOST_TEST(e.message == "protocol 47 has no ports");

    BOOST_TEST(!parse_rule("10.0.0.1 tcp 22 extra", &e));
    BOOST_TEST(e.column == 17u);
    BOOST_TEST(e.message == "unexpected 'extra': a rule is ADDRESS[/LEN] [PROTOCOL [PORTS | ICMP-TYPE]]");

    BOOST_TEST(!parse_rule("", &e));
    BOOST_TEST(e.message == "empty rule: expected an address, a prefix, a protocol or 'any'");

    BOOST_TEST(!parse_rule("localhost", &e));
    BOOST_TEST(e.message ==
               "'localhost' is neither an address, a prefix, 'any' nor a protocol (tcp, udp, icmp, ..., proto N)");

    BOOST_TEST(!parse_rule("10.0.0.0/40 tcp", &e));
    BOOST_TEST(e.column == 1u);
    BOOST_TEST(e.message == "prefix length '40' must be 0..32");
}

BOOST_AUTO_TEST_SUITE_END()
