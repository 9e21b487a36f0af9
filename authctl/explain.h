// SPDX-License-Identifier: Apache-2.0
// `authctl policy test`: the decision the data plane would take on one flow
// and why, from compiled entries (the policy files compiled here, or the
// generation the kernel holds). The probes are those of
// bpf/lib/decision.bpf.h: the exact port, each port-block size in use, any
// port, any protocol; the longest prefix within each; any deny wins.
#pragma once

#include "core/base/net.h"
#include "core/policy/compiler.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace authwall {

struct TestFlow {
    uint8_t dir = AW_DIR_EGRESS; // AW_DIR_EGRESS, _INGRESS or _BIND
    IpAddress address;           // destination (egress), peer (ingress), local (bind)
    uint8_t protocol = 0;        // IPPROTO_*
    uint16_t port = 0;           // destination, or local for ingress and bind; 0: none
};

struct LayerVerdict {
    uint32_t policy_id = 0; // the policy that decided (AW_POLICY_FALLBACK when it fell back)
    bool refused = false;   // what the policy decided: refused (deny, or audit in audit mode)
    bool audit = false;     // the policy is in audit mode: a refusal passes
    std::string reason;     // rule, default, not-rhost, no-policy; "" when allowed
    uint32_t rule = 0;      // the deciding rule's number; 0: a default
    bool log = false;       // the deciding rule has log = true
    // What allowed it: "rule", "default", "rhost" (the login's own address
    // under from_rhost_only), "reply" (a datagram from a peer the egress
    // rules reach); "" when refused.
    std::string allowed_by;
    // "allow", "deny" or "audit" (refused by the policy, passed in audit mode).
    std::string verdict() const { return !refused ? "allow" : audit ? "audit" : "deny"; }
};

// The compiled entries, indexed for the probes.
class EntryIndex {
  public:
    explicit EntryIndex(const std::vector<CompiledEntry>& entries);
    const aw_rule_val* meta(uint32_t policy_id) const;
    // The longest-prefix entry of (policy, dir, proto, port, bits) that holds
    // `address`, as the trie answers.
    const aw_rule_val* probe(uint32_t policy_id, uint8_t dir, uint8_t proto, uint16_t port, uint8_t bits,
                             const IpAddress& address) const;

  private:
    std::map<std::string, std::vector<const CompiledEntry*>> by_fixed_; // key bytes before the address
    std::vector<CompiledEntry> entries_;
};

// One layer's decision for a session of `policy_id` (falling back to the
// fallback policy as the data plane does). `rhost`: the login's address.
LayerVerdict decide_flow(const EntryIndex& index, uint32_t policy_id, const TestFlow& flow,
                         const std::optional<IpAddress>& rhost);

} // namespace authwall
