// SPDX-License-Identifier: Apache-2.0
#include "authctl/explain.h"

#include "core/policy/rule.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstring>

namespace authwall {

namespace {

// The bytes of a key that a lookup compares exactly (policy, dir, proto,
// port, port_bits, reserved): everything before the address.
std::string fixed_part(const aw_rule_key& k)
{
    return std::string(reinterpret_cast<const char*>(&k.policy_id), offsetof(aw_rule_key, addr) - 4);
}

struct Match {
    uint8_t verdict = AW_VERDICT_NONE;
    const aw_rule_val* hit = nullptr; // the deny, or the most specific allow
};

// `rhost`: 0, or AW_DIR_RHOST for the direction's $rhost rules.
Match match_rules(const EntryIndex& index, const aw_rule_val& meta, uint32_t id, uint8_t dir, const TestFlow& f,
                  uint8_t rhost = 0)
{
    Match m;
    uint8_t key_dir = dir | rhost;
    uint32_t classes = meta.flags;
    auto take = [&](const aw_rule_val* v) {
        if (!v || m.verdict == AW_VERDICT_DENY)
            return;
        if (v->verdict == AW_VERDICT_DENY || m.verdict != AW_VERDICT_ALLOW) {
            m.verdict = v->verdict;
            m.hit = v;
        }
    };
    if (f.protocol && f.port && (classes & AW_POLICY_HAS_CLASS(dir, AW_CLASS_PORT)))
        take(index.probe(id, key_dir, f.protocol, f.port, 0, f.address));
    if (f.protocol && f.port && (classes & AW_POLICY_HAS_BLOCKS(dir)))
        for (unsigned bits = 1; bits <= AW_PORT_BLOCK_BITS_MAX; ++bits)
            if (classes & AW_POLICY_BLOCK_SIZE(bits))
                take(index.probe(id, key_dir, f.protocol, static_cast<uint16_t>(f.port & (0xffffu << bits)),
                                 static_cast<uint8_t>(bits), f.address));
    if (f.protocol && (classes & AW_POLICY_HAS_CLASS(dir, AW_CLASS_PROTO)))
        take(index.probe(id, key_dir, f.protocol, 0, 0, f.address));
    if (classes & AW_POLICY_HAS_CLASS(dir, AW_CLASS_ANY))
        take(index.probe(id, key_dir, 0, 0, 0, f.address));
    return m;
}

LayerVerdict refused(const aw_rule_val& meta, uint32_t id, const char* reason, uint32_t rule)
{
    LayerVerdict v;
    v.policy_id = id;
    v.refused = true;
    v.audit = meta.flags & AW_POLICY_AUDIT;
    v.reason = reason;
    v.rule = rule;
    return v;
}

LayerVerdict allowed(uint32_t id, const aw_rule_val* hit, const char* by = "default")
{
    LayerVerdict v;
    v.policy_id = id;
    v.allowed_by = hit ? "rule" : by;
    if (hit) {
        v.rule = hit->rule;
        v.log = hit->rule_flags & AW_RULE_LOG;
    }
    return v;
}

// A new inbound flow that no deny refused (admit_inbound in the data plane):
// an allow rule, the login's own address under from_rhost_only, a datagram
// from a peer the egress rules let the session reach (a reply), the default.
LayerVerdict admit_inbound(const EntryIndex& index, const aw_rule_val& meta, uint32_t id, const Match& m,
                           const TestFlow& f, const std::optional<IpAddress>& rhost)
{
    if (m.verdict == AW_VERDICT_ALLOW)
        return allowed(id, m.hit);
    bool pinned = meta.flags & AW_POLICY_INGRESS_FROM_RHOST;
    if (pinned && rhost && *rhost == f.address)
        return allowed(id, nullptr, "rhost");
    if (f.protocol != IPPROTO_TCP) {
        TestFlow reply = f;
        reply.dir = AW_DIR_EGRESS;
        // The peer's port is not known here: its address and protocol decide;
        // an ICMP reply counts as the request it answers.
        reply.port = 0;
        if ((f.protocol == IPPROTO_ICMP || f.protocol == IPPROTO_ICMPV6) && f.port)
            reply.port = icmp_request_port(f.protocol, static_cast<uint8_t>(f.port - 1));
        Match e = match_rules(index, meta, id, AW_DIR_EGRESS, reply);
        if (e.verdict == AW_VERDICT_ALLOW || (e.verdict == AW_VERDICT_NONE && meta.verdict == AW_VERDICT_ALLOW))
            return allowed(id, nullptr, "reply");
    }
    if (!pinned && meta.ingress_default == AW_VERDICT_ALLOW)
        return allowed(id, nullptr);
    return refused(meta, id, pinned ? "not-rhost" : "default", 0);
}

} // namespace

EntryIndex::EntryIndex(const std::vector<CompiledEntry>& entries) : entries_(entries)
{
    for (const auto& e : entries_)
        by_fixed_[fixed_part(e.key)].push_back(&e);
}

const aw_rule_val* EntryIndex::meta(uint32_t policy_id) const
{
    return probe(policy_id, AW_DIR_META, 0, 0, 0, IpAddress());
}

const aw_rule_val* EntryIndex::probe(uint32_t policy_id, uint8_t dir, uint8_t proto, uint16_t port, uint8_t bits,
                                     const IpAddress& address) const
{
    auto it = by_fixed_.find(fixed_part(make_rule_key(policy_id, dir, proto, port, Prefix(), bits)));
    if (it == by_fixed_.end())
        return nullptr;
    const CompiledEntry* best = nullptr;
    for (const CompiledEntry* e : it->second) {
        std::array<uint8_t, 16> bytes{};
        std::memcpy(bytes.data(), e->key.addr, 16);
        if (!Prefix(IpAddress(bytes), e->key.prefixlen - AW_RULE_KEY_FIXED_BITS).contains(address))
            continue;
        if (!best || e->key.prefixlen > best->key.prefixlen)
            best = e;
    }
    return best ? &best->value : nullptr;
}

LayerVerdict decide_flow(const EntryIndex& index, uint32_t policy_id, const TestFlow& flow,
                         const std::optional<IpAddress>& rhost)
{
    uint32_t id = policy_id;
    const aw_rule_val* meta = index.meta(id);
    if (!meta) {
        id = AW_POLICY_FALLBACK;
        meta = index.meta(id);
    }
    if (!meta) {
        LayerVerdict v;
        v.policy_id = policy_id;
        v.refused = true;
        v.reason = "no-policy";
        return v;
    }
    Match m = match_rules(index, *meta, id, flow.dir, flow);
    // The $rhost rules when the flow's address is the login's (decide() in
    // bpf/lib/decision.bpf.h).
    if (m.verdict != AW_VERDICT_DENY && flow.dir != AW_DIR_BIND && (meta->flags & AW_POLICY_HAS_RHOST(flow.dir)) &&
        rhost && *rhost == flow.address) {
        Match r = match_rules(index, *meta, id, flow.dir, flow, AW_DIR_RHOST);
        if (r.verdict == AW_VERDICT_DENY || (r.verdict == AW_VERDICT_ALLOW && m.verdict != AW_VERDICT_ALLOW))
            m = r;
    }
    if (m.verdict == AW_VERDICT_DENY)
        return refused(*meta, id, "rule", m.hit->rule);
    if (flow.dir == AW_DIR_INGRESS)
        return admit_inbound(index, *meta, id, m, flow, rhost);
    if (m.verdict == AW_VERDICT_ALLOW)
        return allowed(id, m.hit);
    uint8_t def = flow.dir == AW_DIR_BIND ? meta->bind_default : meta->verdict;
    return def == AW_VERDICT_ALLOW ? allowed(id, nullptr) : refused(*meta, id, "default", 0);
}

} // namespace authwall
