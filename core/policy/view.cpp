// SPDX-License-Identifier: Apache-2.0
#include "core/policy/view.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <tuple>

namespace authwall {

namespace {

struct FlatRule {
    uint8_t dir;
    Verdict verdict;
    Prefix prefix;
    uint8_t proto;
    uint32_t first, last; // a port block, host order; 0, 0 = any
    uint32_t rule;        // its number in the policy
    bool log;
};

auto order_key(const FlatRule& r)
{
    return std::make_tuple(r.dir, r.verdict == Verdict::Deny ? 0 : 1, r.proto, r.prefix, r.rule, r.first);
}

// Sorts a policy's entries into rules: runs of adjacent port blocks of one
// rule with the same everything else fold back into its range.
void fold_rules(std::vector<FlatRule>& rules, PolicyView& v)
{
    std::sort(rules.begin(), rules.end(), [](const auto& a, const auto& b) { return order_key(a) < order_key(b); });
    for (size_t i = 0; i < rules.size();) {
        size_t j = i + 1;
        while (j < rules.size() && rules[j].first != 0 && rules[j].dir == rules[i].dir &&
               rules[j].verdict == rules[i].verdict && rules[j].proto == rules[i].proto &&
               rules[j].prefix == rules[i].prefix && rules[j].rule == rules[i].rule &&
               rules[j].first == rules[j - 1].last + 1)
            ++j;
        RuleView rv;
        rv.verdict = rules[i].verdict;
        rv.rule.prefix = rules[i].prefix;
        rv.rule.protocol = rules[i].proto;
        rv.rule.id = rules[i].rule;
        rv.rule.log = rules[i].log;
        rv.rule.rhost = rules[i].dir & AW_DIR_RHOST;
        if (rules[i].first != 0)
            rv.rule.ports = PortRange{static_cast<uint16_t>(rules[i].first), static_cast<uint16_t>(rules[j - 1].last)};
        uint8_t dir = rules[i].dir & ~AW_DIR_RHOST;
        DirectionView& d = dir == AW_DIR_EGRESS ? v.egress : dir == AW_DIR_INGRESS ? v.ingress : v.bind;
        d.rules.push_back(rv);
        i = j;
    }
}

} // namespace

std::vector<PolicyView> describe_generation(const std::vector<CompiledEntry>& entries,
                                            const std::map<uint32_t, std::string>& names)
{
    std::map<uint32_t, PolicyView> views;
    std::map<uint32_t, std::vector<FlatRule>> flat;
    for (const auto& e : entries) {
        uint32_t id = ntohl(e.key.policy_id);
        PolicyView& v = views[id];
        v.id = id;
        ++v.entries;
        if (e.key.dir == AW_DIR_META) {
            v.egress.default_verdict = static_cast<Verdict>(e.value.verdict);
            v.ingress.default_verdict = static_cast<Verdict>(e.value.ingress_default);
            v.bind.default_verdict = static_cast<Verdict>(e.value.bind_default);
            v.ingress_from_rhost_only = e.value.flags & AW_POLICY_INGRESS_FROM_RHOST;
            v.deny_raw = e.value.flags & AW_POLICY_DENY_RAW;
            v.denied_families = e.value.denied_families;
            v.audit = e.value.flags & AW_POLICY_AUDIT;
            continue;
        }
        std::array<uint8_t, 16> addr{};
        std::memcpy(addr.data(), e.key.addr, 16);
        unsigned bits = e.key.prefixlen - AW_RULE_KEY_FIXED_BITS;
        uint32_t first = ntohs(e.key.port);
        uint32_t last = first + (1u << std::min<unsigned>(e.key.port_bits, AW_PORT_BLOCK_BITS_MAX)) - 1;
        flat[id].push_back({e.key.dir, static_cast<Verdict>(e.value.verdict), Prefix(IpAddress(addr), bits),
                            e.key.proto, first, std::min<uint32_t>(last, 65535), e.value.rule,
                            (e.value.rule_flags & AW_RULE_LOG) != 0});
    }
    for (auto& [id, rules] : flat)
        fold_rules(rules, views[id]);
    std::vector<PolicyView> out;
    for (auto& [id, v] : views) {
        auto it = names.find(id);
        v.name = id == AW_POLICY_FALLBACK ? "(unmatched)" : it != names.end() ? it->second : "#" + std::to_string(id);
        out.push_back(std::move(v));
    }
    return out;
}

namespace {

std::string joined(const std::vector<std::string>& items)
{
    std::string out;
    for (const auto& i : items)
        out += (out.empty() ? "" : ", ") + i;
    return out;
}

std::string format_match(const PolicyView& p)
{
    std::string out;
    auto item = [&](const char* name, const std::vector<std::string>& values) {
        if (!values.empty())
            out += std::string(out.empty() ? "" : "; ") + name + " " + joined(values);
    };
    item("users", p.match->users);
    item("groups", p.match->groups);
    item("services", p.match->services);
    std::vector<std::string> rhosts;
    for (const auto& r : p.match->rhosts)
        rhosts.push_back(r.str());
    item("rhosts", rhosts);
    item("cgroups", p.match->cgroups);
    return out.empty() ? "nobody (an empty match accepts no login)" : out;
}

std::string format_rule(const RuleView& r)
{
    std::string out = std::string("    ") + verdict_name(r.verdict) + " " + r.rule.str();
    if (r.rule.id != 0)
        out += "  #" + std::to_string(r.rule.id);
    if (!r.source.empty())
        out += " " + r.source;
    if (r.rule.log)
        out += " (log)";
    return out + "\n";
}

} // namespace

std::string format_policy(const PolicyView& p)
{
    std::string out = "policy " + p.name + " (id " + std::to_string(p.id) + ", " + std::to_string(p.entries) +
                      " entries, mode " + (p.audit ? "audit" : "enforce") + ")\n";
    if (p.match) {
        out += "  match: " + format_match(p) + "\n";
        out += "  priority " + std::to_string(p.priority);
        if (p.max_duration_s)
            out += ", max_duration " + std::to_string(p.max_duration_s) + "s";
        out += "\n";
    }
    auto direction = [&](const char* name, const DirectionView& d, const std::string& extra) {
        out += std::string("  ") + name + ": default " + verdict_name(d.default_verdict) + extra + "\n";
        for (const auto& r : d.rules)
            out += format_rule(r);
    };
    direction("egress", p.egress, "");
    direction("ingress", p.ingress, p.ingress_from_rhost_only ? ", from_rhost_only" : "");
    direction("bind", p.bind, "");
    std::string families;
    for (const auto& name : denied_family_names(p.denied_families, p.deny_raw))
        families += (families.empty() ? "" : ", ") + name;
    if (!families.empty())
        out += "  sockets: deny " + families + "\n";
    return out;
}

} // namespace authwall
