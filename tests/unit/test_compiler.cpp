// SPDX-License-Identifier: Apache-2.0
#include <boost/test/unit_test.hpp>

#include "core/policy/compiler.h"
#include "core/policy/policy_file.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <random>

using namespace authwall;

namespace {

std::vector<Policy> parse(const std::string& text)
{
    auto load = parse_policy_text(text, "t.toml");
    for (const auto& e : load.errors)
        BOOST_TEST_MESSAGE(e.str());
    BOOST_REQUIRE(load.ok());
    return load.policies;
}

const CompiledEntry* find(const CompiledPolicies& c, uint32_t id, uint8_t dir, uint8_t proto, uint16_t port,
                          const std::string& prefix, uint8_t port_bits = 0)
{
    auto key = make_rule_key(id, dir, proto, port, *Prefix::parse(prefix), port_bits);
    for (const auto& e : c.entries)
        if (std::memcmp(&e.key, &key, sizeof(key)) == 0)
            return &e;
    return nullptr;
}

} // namespace

BOOST_AUTO_TEST_SUITE(compiler)

BOOST_AUTO_TEST_CASE(small_policy_compiles_to_the_expected_entries)
{
    auto policies = parse(R"(
[policy.ops]
[policy.ops.egress]
default = "deny"
allow = ["10.20.0.0/16 tcp 22", "10.0.0.53 udp 53", "2001:db8::/32 tcp 443-444"]
deny = ["169.254.169.254"]
[policy.ops.ingress]
from_rhost_only = true
[policy.ops.bind]
deny = ["tcp 4096-8191"]
[policy.ops.sockets]
deny_families = ["packet", "raw"]
)");
    auto c = compile_policies(policies, Fallback{});
    BOOST_REQUIRE(c.ok());
    uint32_t id = c->ids.at("ops");
    BOOST_TEST(id == 1u);

    // meta + 4 egress (443 and 444 are two single ports) + 1 deny + 1 bind
    // (4096-8191 is one block) + fallback meta
    BOOST_TEST(c->entries.size() == 1u + 4u + 1u + 1u + 1u);

    auto meta = find(*c, id, AW_DIR_META, 0, 0, "any");
    BOOST_REQUIRE(meta);
    BOOST_TEST(meta->value.verdict == AW_VERDICT_DENY);
    BOOST_TEST(meta->value.ingress_default == AW_VERDICT_DENY); // implied by from_rhost_only
    BOOST_TEST(meta->value.bind_default == AW_VERDICT_ALLOW);
    // The probe classes: egress has (proto, port) allows and an (any, any)
    // deny, bind a block of 4096 ports and no single port, ingress no rule
    // at all.
    BOOST_TEST(meta->value.flags ==
               (AW_POLICY_INGRESS_FROM_RHOST | AW_POLICY_DENY_RAW | AW_POLICY_HAS_CLASS(AW_DIR_EGRESS, AW_CLASS_PORT) |
                AW_POLICY_HAS_CLASS(AW_DIR_EGRESS, AW_CLASS_ANY) | AW_POLICY_HAS_BLOCKS(AW_DIR_BIND) |
                AW_POLICY_BLOCK_SIZE(12)));
    BOOST_TEST(meta->value.denied_families == (1ULL << AF_PACKET));
    BOOST_TEST(meta->key.prefixlen == AW_RULE_KEY_FIXED_BITS);

    auto ssh = find(*c, id, AW_DIR_EGRESS, IPPROTO_TCP, 22, "10.20.0.0/16");
    BOOST_REQUIRE(ssh);
    BOOST_TEST(ssh->value.verdict == AW_VERDICT_ALLOW);
    BOOST_TEST(ssh->key.prefixlen == AW_RULE_KEY_FIXED_BITS + 96 + 16);
    BOOST_TEST(ssh->key.policy_id == htonl(id));
    BOOST_TEST(ssh->key.port == htons(22));

    BOOST_TEST(find(*c, id, AW_DIR_EGRESS, IPPROTO_TCP, 443, "2001:db8::/32"));
    BOOST_TEST(find(*c, id, AW_DIR_EGRESS, IPPROTO_TCP, 444, "2001:db8::/32"));
    auto meta_ip = find(*c, id, AW_DIR_EGRESS, 0, 0, "169.254.169.254");
    BOOST_REQUIRE(meta_ip);
    BOOST_TEST(meta_ip->value.verdict == AW_VERDICT_DENY);
    BOOST_TEST(find(*c, id, AW_DIR_BIND, IPPROTO_TCP, 4096, "any", 12));
    BOOST_TEST(!find(*c, id, AW_DIR_BIND, IPPROTO_TCP, 4096, "any"));

    auto fallback = find(*c, AW_POLICY_FALLBACK, AW_DIR_META, 0, 0, "any");
    BOOST_REQUIRE(fallback);
    BOOST_TEST(fallback->value.verdict == AW_VERDICT_ALLOW); // unmatched = pass
}

BOOST_AUTO_TEST_CASE(allow_covered_by_deny_of_the_same_class_is_dropped)
{
    // The parser refuses such policies; the compiler must still be right
    // for callers that build policies in code.
    Policy p;
    p.name = "p";
    for (auto text : {"10.1.2.0/24 tcp 22", "10.1.2.3 tcp 22", "10.9.0.0/16"})
        p.egress.allow.push_back(*parse_rule(text));
    for (auto text : {"10.1.0.0/16 tcp 22", "10.9.9.0/24"})
        p.egress.deny.push_back(*parse_rule(text));
    std::vector<Policy> policies{p};
    auto c = compile_policies(policies, Fallback{});
    BOOST_REQUIRE(c.ok());
    uint32_t id = c->ids.at("p");
    BOOST_TEST(!find(*c, id, AW_DIR_EGRESS, IPPROTO_TCP, 22, "10.1.2.0/24"));
    BOOST_TEST(!find(*c, id, AW_DIR_EGRESS, IPPROTO_TCP, 22, "10.1.2.3"));
    BOOST_TEST(find(*c, id, AW_DIR_EGRESS, IPPROTO_TCP, 22, "10.1.0.0/16"));
    // A deny inside an allow stays: it is the longer match.
    BOOST_TEST(find(*c, id, AW_DIR_EGRESS, 0, 0, "10.9.0.0/16"));
    BOOST_TEST(find(*c, id, AW_DIR_EGRESS, 0, 0, "10.9.9.0/24")->value.verdict == AW_VERDICT_DENY);
    BOOST_TEST(c->dropped_shadowed == 2u);
}

BOOST_AUTO_TEST_CASE(ids_are_stable_by_name)
{
    auto policies = parse("[policy.a]\n[policy.b]\n[policy.c]\n");
    std::map<std::string, uint32_t> known{{"b", 7}, {"gone", 9}};
    auto c = compile_policies(policies, Fallback{}, known);
    BOOST_REQUIRE(c.ok());
    BOOST_TEST(c->ids.at("b") == 7u);
    BOOST_TEST(c->ids.at("a") >= 10u); // never reuses an id, even of a removed policy
    BOOST_TEST(c->ids.at("c") >= 10u);
    BOOST_TEST(c->ids.at("a") != c->ids.at("c"));
}

BOOST_AUTO_TEST_CASE(fallback_kinds)
{
    auto policies = parse("[policy.strict.egress]\ndefault = \"deny\"\n");
    auto deny = compile_policies(policies, Fallback{Fallback::Kind::Deny, {}});
    BOOST_REQUIRE(deny.ok());
    auto m = find(*deny, AW_POLICY_FALLBACK, AW_DIR_META, 0, 0, "any");
    BOOST_REQUIRE(m);
    BOOST_TEST(m->value.verdict == AW_VERDICT_DENY);
    BOOST_TEST(m->value.bind_default == AW_VERDICT_DENY);

    auto named = compile_policies(policies, Fallback{Fallback::Kind::Policy, "strict"});
    BOOST_REQUIRE(named.ok());
    BOOST_TEST(find(*named, AW_POLICY_FALLBACK, AW_DIR_META, 0, 0, "any")->value.verdict == AW_VERDICT_DENY);

    auto missing = compile_policies(policies, Fallback{Fallback::Kind::Policy, "nope"});
    BOOST_REQUIRE(!missing.ok());
    BOOST_TEST(missing.error().message() == "compile policy nope: named as the unmatched policy but not defined");
}

BOOST_AUTO_TEST_CASE(entry_limit_is_enforced_with_advice)
{
    auto policies = parse("[policy.wide.egress]\nallow = [\"any tcp 1024-65000\"]\n");
    size_t entries = port_blocks(PortRange{1024, 65000}).size() + 2; // a meta entry, and the fallback's
    BOOST_TEST(compile_policies(policies, Fallback{}, {}, CompileLimits{entries}).ok());
    auto c = compile_policies(policies, Fallback{}, {}, CompileLimits{entries - 1});
    BOOST_REQUIRE(!c.ok());
    BOOST_TEST(c.error().message().find("more than " + std::to_string(entries - 1) + " trie entries") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(port_ranges_are_aligned_blocks)
{
    BOOST_TEST((port_blocks(PortRange{}) == std::vector<PortBlock>{{0, 0}})); // any port
    BOOST_TEST((port_blocks(PortRange{22, 22}) == std::vector<PortBlock>{{22, 0}}));
    BOOST_TEST((port_blocks(PortRange{65535, 65535}) == std::vector<PortBlock>{{65535, 0}}));
    // Blocks of every size: the fewest entries.
    BOOST_TEST((port_blocks(PortRange{1024, 65535}, 1) ==
                std::vector<PortBlock>{{1024, 10}, {2048, 11}, {4096, 12}, {8192, 13}, {16384, 14}, {32768, 15}}));
    BOOST_TEST(port_blocks(PortRange{1, 1023}, 1).size() == 10u);  // 1, 2-3, ..., 512-1023
    BOOST_TEST(port_blocks(PortRange{1, 65534}, 1).size() == 30u); // the worst case
    // Blocks of 1, 16, 256 and 4096 ports (kPortBlockStep 4): 1024-4095 in
    // 12 blocks of 256, then 15 of 4096.
    auto hex = port_blocks(PortRange{1024, 65535}, 4);
    BOOST_REQUIRE_EQUAL(hex.size(), 27u);
    BOOST_TEST((hex.front() == PortBlock{1024, 8}));
    BOOST_TEST((hex[12] == PortBlock{4096, 12}));
    BOOST_TEST((hex.back() == PortBlock{61440, 12}));
    BOOST_TEST(port_blocks(PortRange{1, 1023}, 4).size() == 33u);
    BOOST_TEST(port_blocks(PortRange{1, 65534}, 4).size() == 104u);

    // Random ranges (and every range of a small window): each port of the
    // range lies in exactly one block, no other port does, every block is
    // aligned to its size and of an allowed size, and the count stays in
    // its bound (30 entries for every size, 104 for a step of 4).
    std::mt19937 rng(17);
    std::vector<PortRange> ranges;
    for (int i = 0; i < 1000; ++i) {
        auto a = static_cast<uint16_t>(1 + rng() % 65535), b = static_cast<uint16_t>(1 + rng() % 65535);
        ranges.push_back(PortRange{std::min(a, b), std::max(a, b)});
    }
    for (uint16_t a = 1; a <= 70; ++a)
        for (uint16_t b = a; b <= 70; ++b)
            ranges.push_back(PortRange{a, b});
    std::vector<uint8_t> hits(65536);
    for (unsigned step : {1u, 2u, 4u, kPortBlockStep})
        for (const auto& r : ranges) {
            std::fill(hits.begin(), hits.end(), 0);
            auto blocks = port_blocks(r, step);
            BOOST_TEST(blocks.size() <= (step == 1 ? 30u : step == 2 ? 44u : 104u));
            for (const auto& block : blocks) {
                BOOST_TEST(block.bits <= AW_PORT_BLOCK_BITS_MAX);
                BOOST_TEST(block.bits % step == 0u);
                BOOST_TEST(block.first % (1u << block.bits) == 0u);
                for (uint32_t p = block.first; p < block.first + (1u << block.bits); ++p)
                    ++hits[p];
            }
            bool exact = true;
            for (uint32_t p = 0; p < hits.size(); ++p)
                exact &= hits[p] == ((p >= r.first && p <= r.last) ? 1 : 0);
            BOOST_TEST(exact, "range " << r.first << "-" << r.last << ", step " << step);
        }
}

namespace {

// What the data plane's match_rules decides (bpf/lib/decision.bpf.h), over
// the compiled entries: the probes the meta flags ask for, each the longest
// address match among the entries of its class; any DENY wins.
uint8_t simulated_match(const CompiledPolicies& c, uint32_t id, uint8_t dir, uint8_t proto, uint16_t port,
                        const IpAddress& addr)
{
    const CompiledEntry* meta = find(c, id, AW_DIR_META, 0, 0, "any");
    BOOST_REQUIRE(meta);
    uint32_t classes = meta->value.flags;
    auto probe = [&](uint8_t p, uint16_t first, uint8_t bits) -> uint8_t {
        const CompiledEntry* best = nullptr;
        aw_rule_key want = make_rule_key(id, dir, p, first, Prefix(), bits);
        for (const auto& e : c.entries) {
            if (std::memcmp(&e.key.policy_id, &want.policy_id, offsetof(aw_rule_key, addr) - 4) != 0)
                continue;
            std::array<uint8_t, 16> bytes{};
            std::memcpy(bytes.data(), e.key.addr, 16);
            if (!Prefix(IpAddress(bytes), e.key.prefixlen - AW_RULE_KEY_FIXED_BITS).contains(addr))
                continue;
            if (!best || e.key.prefixlen > best->key.prefixlen)
                best = &e;
        }
        return best ? best->value.verdict : uint8_t{AW_VERDICT_NONE};
    };
    std::vector<uint8_t> seen;
    if (proto && port && (classes & AW_POLICY_HAS_CLASS(dir, AW_CLASS_PORT)))
        seen.push_back(probe(proto, port, 0));
    if (proto && port && (classes & AW_POLICY_HAS_BLOCKS(dir)))
        for (unsigned bits = 1; bits <= AW_PORT_BLOCK_BITS_MAX; ++bits)
            if (classes & AW_POLICY_BLOCK_SIZE(bits))
                seen.push_back(probe(proto, static_cast<uint16_t>(port & (0xffffu << bits)), bits));
    if (proto && (classes & AW_POLICY_HAS_CLASS(dir, AW_CLASS_PROTO)))
        seen.push_back(probe(proto, 0, 0));
    if (classes & AW_POLICY_HAS_CLASS(dir, AW_CLASS_ANY))
        seen.push_back(probe(0, 0, 0));
    if (std::count(seen.begin(), seen.end(), AW_VERDICT_DENY))
        return AW_VERDICT_DENY;
    return std::count(seen.begin(), seen.end(), AW_VERDICT_ALLOW) ? AW_VERDICT_ALLOW : AW_VERDICT_NONE;
}

bool rule_matches(const Rule& r, uint8_t proto, uint16_t port, const IpAddress& addr)
{
    return r.prefix.contains(addr) && (r.protocol == 0 || r.protocol == proto) &&
           (r.ports.any() || (port >= r.ports.first && port <= r.ports.last));
}

} // namespace

// The meaning of the rules (docs/POLICY.md): a deny that matches wins, then
// an allow that matches. Random policies of nested prefixes and overlapping
// ranges, compiled to blocks, decide every flow as the rules say: a deny port
// inside an allowed range, a range denied inside a longer allowed prefix,
// an allow range straddling a deny block.
BOOST_AUTO_TEST_CASE(blocks_decide_as_the_rules_say)
{
    const char* prefixes[] = {"any", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3", "2001:db8::/32"};
    const uint8_t protocols[] = {0, IPPROTO_TCP, IPPROTO_TCP, IPPROTO_UDP};
    const char* addrs[] = {"10.1.2.3", "10.1.2.4", "10.1.9.9", "10.200.0.1", "192.0.2.1", "2001:db8::1"};
    std::mt19937 rng(6);
    auto random_rule = [&] {
        Rule r;
        r.prefix = *Prefix::parse(prefixes[rng() % std::size(prefixes)]);
        r.protocol = protocols[rng() % std::size(protocols)];
        if (r.protocol && rng() % 4) {
            auto a = static_cast<uint16_t>(1 + rng() % 300), b = static_cast<uint16_t>(1 + rng() % 300);
            if (rng() % 3 == 0)
                b = a;
            r.ports = PortRange{std::min(a, b), std::max(a, b)};
        }
        return r;
    };
    size_t flows = 0, denied = 0, allowed = 0, wrong = 0, dropped = 0;
    for (int round = 0; round < 40; ++round) {
        Policy p;
        p.name = "p";
        for (unsigned i = 0, n = 1 + rng() % 6; i < n; ++i)
            p.egress.allow.push_back(random_rule());
        for (unsigned i = 0, n = rng() % 4; i < n; ++i) {
            Rule d = random_rule();
            // Often a deny over an allow: the same protocol and ports (or
            // a part of them) for a shorter prefix, so both fall into the
            // same classes and the allow is the longer match there.
            const Rule& a = p.egress.allow[rng() % p.egress.allow.size()];
            size_t depth = std::find_if(std::begin(prefixes), std::end(prefixes),
                                        [&](const char* x) { return *Prefix::parse(x) == a.prefix; }) -
                           std::begin(prefixes);
            if (rng() % 2 && depth > 0 && depth < 5) {
                d = a;
                d.prefix = *Prefix::parse(prefixes[rng() % depth]);
                if (!a.ports.any() && rng() % 2)
                    d.ports.first = static_cast<uint16_t>(a.ports.first + (a.ports.last - a.ports.first) / 2);
            }
            p.egress.deny.push_back(d);
        }
        auto c = compile_policies({p}, Fallback{});
        BOOST_REQUIRE(c.ok());
        uint32_t id = c->ids.at("p");
        dropped += c->dropped_shadowed;
        for (const char* a : addrs)
            for (uint8_t proto : {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP})
                for (uint16_t port = 1; port <= 310; port += 1 + (proto == IPPROTO_ICMP) * 400) {
                    auto addr = *IpAddress::parse(a);
                    uint16_t flow_port = proto == IPPROTO_ICMP ? 0 : port;
                    uint8_t want = AW_VERDICT_NONE;
                    for (const auto& r : p.egress.allow)
                        if (rule_matches(r, proto, flow_port, addr))
                            want = AW_VERDICT_ALLOW;
                    for (const auto& r : p.egress.deny)
                        if (rule_matches(r, proto, flow_port, addr))
                            want = AW_VERDICT_DENY;
                    uint8_t got = simulated_match(*c, id, AW_DIR_EGRESS, proto, flow_port, addr);
                    if (got != want && wrong++ == 0)
                        BOOST_TEST(got == want,
                                   "round " << round << " " << a << " proto " << int(proto) << " port " << flow_port);
                    ++flows;
                    denied += want == AW_VERDICT_DENY;
                    allowed += want == AW_VERDICT_ALLOW;
                }
    }
    BOOST_TEST(wrong == 0u);
    // The random policies exercised both outcomes.
    BOOST_TEST(denied > flows / 20);
    BOOST_TEST(allowed > flows / 20);
    BOOST_TEST(dropped > 20u); // allows the longest match would have let win
    BOOST_TEST_MESSAGE(flows << " flows, " << dropped << " allow entries dropped");
}

BOOST_AUTO_TEST_SUITE_END()
