// SPDX-License-Identifier: Apache-2.0
#include "core/policy/compiler.h"

#include <arpa/inet.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace authwall {

namespace {

std::string_view key_bytes(const aw_rule_key& k)
{
    return {reinterpret_cast<const char*>(&k), sizeof(k)};
}

// The probe classes a direction has rules in (AW_POLICY_HAS_CLASS), and
// the port block sizes it uses (AW_POLICY_HAS_BLOCKS, AW_POLICY_BLOCK_SIZE).
uint32_t rule_classes(uint8_t dir, const RuleSet& set)
{
    uint32_t flags = 0;
    for (const auto* rules : {&set.allow, &set.deny})
        for (const auto& r : *rules) {
            if (r.rhost)
                flags |= AW_POLICY_HAS_RHOST(dir);
            if (r.protocol == 0 || r.ports.any()) {
                flags |= AW_POLICY_HAS_CLASS(dir, r.protocol == 0 ? AW_CLASS_ANY : AW_CLASS_PROTO);
                continue;
            }
            for (const auto& block : port_blocks(r.ports))
                flags |= block.bits == 0 ? AW_POLICY_HAS_CLASS(dir, AW_CLASS_PORT)
                                         : AW_POLICY_HAS_BLOCKS(dir) | AW_POLICY_BLOCK_SIZE(block.bits);
        }
    return flags;
}

class EntryBuilder {
  public:
    EntryBuilder(const CompileLimits& limits, const NameAddresses& names) : limits_(limits), names_(names) {}

    Status add_rules(uint32_t id, uint8_t dir, const RuleSet& set, const std::string& policy_name)
    {
        // Denies first, so allows can be checked against every deny of their class.
        for (const auto& rule : set.deny)
            if (auto st = add(id, dir, rule, Verdict::Deny, policy_name); !st)
                return st;
        for (const auto& rule : set.allow)
            if (auto st = add(id, dir, rule, Verdict::Allow, policy_name); !st)
                return st;
        return {};
    }

    Status add_meta(uint32_t id, const Policy& p)
    {
        CompiledEntry e;
        e.key = make_rule_key(id, AW_DIR_META, 0, 0, Prefix());
        e.value.verdict = static_cast<uint8_t>(p.egress.default_verdict);
        e.value.ingress_default = static_cast<uint8_t>(p.ingress.default_verdict);
        e.value.bind_default = static_cast<uint8_t>(p.bind.default_verdict);
        e.value.flags = (p.ingress_from_rhost_only ? AW_POLICY_INGRESS_FROM_RHOST : 0u) |
                        (p.deny_raw ? AW_POLICY_DENY_RAW : 0u) | (p.audit ? AW_POLICY_AUDIT : 0u) |
                        rule_classes(AW_DIR_EGRESS, p.egress) | rule_classes(AW_DIR_INGRESS, p.ingress) |
                        rule_classes(AW_DIR_BIND, p.bind);
        e.value.denied_families = p.denied_families;
        // Rules on DNS names: the sessions' DNS answers are watched.
        auto named = [](const RuleSet& set) {
            return std::any_of(set.allow.begin(), set.allow.end(), [](const Rule& r) { return !r.host.empty(); });
        };
        e.value.rule_flags = named(p.egress) || named(p.ingress) ? AW_META_NAMES : 0;
        return put(e, p.name);
    }

    size_t dropped() const { return dropped_; }
    std::vector<CompiledEntry> take()
    {
        std::vector<CompiledEntry> out;
        out.reserve(entries_.size());
        for (auto& [k, e] : entries_)
            out.push_back(e);
        return out;
    }

  private:
    Status add(uint32_t id, uint8_t dir, const Rule& rule, Verdict verdict, const std::string& policy_name)
    {
        if (rule.host.empty())
            return add_entries(id, dir, rule, verdict, policy_name);
        // A name: one host entry per address it resolves to now.
        auto addresses = names_.find(rule.host);
        if (addresses == names_.end())
            return {};
        Rule one = rule;
        for (const auto& a : addresses->second) {
            one.prefix = Prefix(a, 128);
            if (auto st = add_entries(id, dir, one, verdict, policy_name); !st)
                return st;
        }
        return {};
    }

    Status add_entries(uint32_t id, uint8_t dir, const Rule& rule, Verdict verdict, const std::string& policy_name)
    {
        for (const auto& block : port_blocks(rule.ports)) {
            CompiledEntry e;
            // A $rhost rule: its own dir, any address (bpf/authwall_abi.h).
            e.key = rule.rhost ? make_rule_key(id, dir | AW_DIR_RHOST, rule.protocol, block.first, Prefix(), block.bits)
                               : make_rule_key(id, dir, rule.protocol, block.first, rule.prefix, block.bits);
            e.value.verdict = static_cast<uint8_t>(verdict);
            e.value.rule = rule.id;
            e.value.rule_flags = rule.log ? AW_RULE_LOG : 0;
            if (verdict == Verdict::Deny) {
                deny_keys_.insert(std::string(key_bytes(e.key)));
            } else if (covered_by_deny(e.key, rule.rhost ? Prefix() : rule.prefix)) {
                ++dropped_;
                continue;
            }
            if (auto st = put(e, policy_name); !st)
                return st;
        }
        return {};
    }

    // A deny of the same class (policy, dir, proto, port block) whose prefix
    // holds the allow's: in that class the longest match would be the allow.
    // A deny of another class (a port inside an allowed block) is found by
    // its own probe and wins there.
    bool covered_by_deny(const aw_rule_key& key, const Prefix& prefix) const
    {
        for (unsigned bits = 0; bits <= prefix.bits(); ++bits) {
            aw_rule_key k = key;
            Prefix shorter(prefix.address(), bits);
            k.prefixlen = AW_RULE_KEY_FIXED_BITS + bits;
            std::memcpy(k.addr, shorter.address().bytes().data(), 16);
            if (deny_keys_.count(std::string(key_bytes(k))))
                return true;
        }
        return false;
    }

    Status put(const CompiledEntry& e, const std::string& policy_name)
    {
        auto [it, inserted] = entries_.try_emplace(std::string(key_bytes(e.key)), e);
        if (!inserted && e.value.verdict == AW_VERDICT_DENY)
            it->second = e; // deny beats allow on the same key
        if (entries_.size() > limits_.max_entries)
            return Error::msg(
                "compile policy", policy_name,
                "more than " + std::to_string(limits_.max_entries) +
                    " trie entries (a port range takes up to 104, one per block of 1, 16, 256 or 4096 ports); raise "
                    "limits.policy_entries or merge rules");
        return {};
    }

    const CompileLimits& limits_;
    const NameAddresses& names_;
    std::unordered_map<std::string, CompiledEntry> entries_;
    std::unordered_set<std::string> deny_keys_;
    size_t dropped_ = 0;
};

Policy fallback_policy(const Fallback& fallback)
{
    Policy p;
    p.name = "(unmatched)";
    Verdict v = fallback.kind == Fallback::Kind::Deny ? Verdict::Deny : Verdict::Allow;
    p.egress.default_verdict = v;
    p.ingress.default_verdict = v;
    p.bind.default_verdict = v;
    p.audit = fallback.audit;
    return p;
}

} // namespace

std::vector<PortBlock> port_blocks(const PortRange& range, unsigned step)
{
    if (range.any())
        return {PortBlock{}};
    std::vector<PortBlock> out;
    uint32_t next = range.first; // 32 bits: the last block may end at 65535
    while (next <= range.last) {
        // The largest block of 2^(a multiple of step) ports that starts
        // aligned at `next` and ends within the range.
        unsigned bits = std::min<unsigned>(std::countr_zero(next), AW_PORT_BLOCK_BITS_MAX);
        bits -= bits % step;
        while (next + (1u << bits) - 1 > range.last)
            bits -= step;
        out.push_back({static_cast<uint16_t>(next), static_cast<uint8_t>(bits)});
        next += 1u << bits;
    }
    return out;
}

aw_rule_key make_rule_key(uint32_t policy_id, uint8_t dir, uint8_t proto, uint16_t port_host, const Prefix& prefix,
                          uint8_t port_bits)
{
    aw_rule_key k{};
    k.prefixlen = AW_RULE_KEY_FIXED_BITS + prefix.bits();
    k.policy_id = htonl(policy_id);
    k.dir = dir;
    k.proto = proto;
    k.port = htons(port_host);
    k.port_bits = port_bits;
    std::memcpy(k.addr, prefix.address().bytes().data(), 16);
    return k;
}

Result<CompiledPolicies> compile_policies(const std::vector<Policy>& policies, const Fallback& fallback,
                                          const std::map<std::string, uint32_t>& known_ids, const CompileLimits& limits,
                                          const NameAddresses& names)
{
    CompiledPolicies out;
    uint32_t next_id = AW_POLICY_FALLBACK + 1;
    for (const auto& [name, id] : known_ids)
        next_id = std::max(next_id, id + 1);

    std::map<std::string, const Policy*> by_name;
    for (const auto& p : policies) {
        if (!valid_policy_name(p.name))
            return Error::msg("compile policy", p.name,
                              "invalid name: use 1-63 characters of letters, digits, '-', '_' and '.'");
        if (!by_name.emplace(p.name, &p).second)
            return Error::msg("compile policy", p.name, "defined twice");
        auto known = known_ids.find(p.name);
        out.ids[p.name] = known != known_ids.end() ? known->second : next_id++;
    }

    EntryBuilder builder(limits, names);
    auto emit = [&](uint32_t id, const Policy& p) -> Status {
        if (auto st = builder.add_meta(id, p); !st)
            return st;
        if (auto st = builder.add_rules(id, AW_DIR_EGRESS, p.egress, p.name); !st)
            return st;
        if (auto st = builder.add_rules(id, AW_DIR_INGRESS, p.ingress, p.name); !st)
            return st;
        return builder.add_rules(id, AW_DIR_BIND, p.bind, p.name);
    };

    for (const auto& p : policies)
        if (auto st = emit(out.ids.at(p.name), p); !st)
            return st.error();

    if (fallback.kind == Fallback::Kind::Policy) {
        auto it = by_name.find(fallback.policy);
        if (it == by_name.end())
            return Error::msg("compile policy", fallback.policy, "named as the unmatched policy but not defined");
        if (auto st = emit(AW_POLICY_FALLBACK, *it->second); !st)
            return st.error();
    } else if (auto st = emit(AW_POLICY_FALLBACK, fallback_policy(fallback)); !st) {
        return st.error();
    }

    out.dropped_shadowed = builder.dropped();
    out.entries = builder.take();
    return out;
}

} // namespace authwall
