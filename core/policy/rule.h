// SPDX-License-Identifier: Apache-2.0
// Rule strings of the policy language: "ADDR[/LEN] [PROTO [PORTS]]"
// ("icmp TYPE" / "icmpv6 TYPE" for an ICMP type: "any icmp echo-request"),
// "PROTO [PORTS]" (any address), or "any". PROTO is a name (tcp, udp,
// icmp, icmpv6, sctp, udplite) or "proto N" for IP protocol N: a bare number
// is an error, since "10.0.0.0/8 22" reads like port 22. PORTS is a port, a
// range or a list "{22,443,8000-8100}". The address may be a keyword (any,
// loopback, link-local) or a named address set "@mgmt"; the protocol and
// ports may be a named service set "@web" (docs/POLICY.md). Examples:
//   "10.20.0.0/16 tcp 22"   "10.0.0.53 udp 53"   "2001:db8::/32 tcp 443-444"
//   "169.254.169.254"       "tcp 1-1023"         "any icmp"   "10.0.0.0/8 proto 47"
//   "@mgmt tcp {22,443}"    "@mgmt @web"         "loopback tcp 5432"
//   "db.prod.internal tcp 5432" (a DNS name: the addresses the loader
//   resolves it to, docs/POLICY.md "DNS names")
// One written rule expands to the cross product of its addresses and its
// (protocol, ports) pairs: one Rule per pair, all with the written rule's
// number, text and place.
#pragma once

#include "core/base/net.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authwall {

struct PortRange {
    uint16_t first = 0; // 0,0 = any port
    uint16_t last = 0;
    bool any() const { return first == 0; }
    auto operator<=>(const PortRange&) const = default;
};

struct Rule {
    Prefix prefix;        // "any" = ::/0 (both families)
    uint8_t protocol = 0; // IPPROTO_*, 0 = any
    PortRange ports;
    std::string text;  // as written, for messages
    std::string file;  // where it was written ("" = the policy's own file)
    unsigned line = 0; // (0 = not from a file)
    unsigned column = 0;
    uint32_t id = 0;  // its number within its policy (1..), in events; 0 = not numbered
    bool log = false; // report every match ({ rule = "...", log = true })
    // "$rhost ...": the address is the login's own (its rhost), whatever
    // it is; `prefix` is unused (any). Egress and ingress only.
    bool rhost = false;
    // A DNS name ("db.prod.internal"; "*.example.com" for the names under
    // it), lower case, no final dot: the rule holds for the addresses the
    // loader resolves it to, whatever they are now; `prefix` is unused.
    std::string host;

    std::string str() const; // canonical form: "proto N" for a protocol without a name
    // True when every flow this rule matches is also matched by `other`.
    bool covered_by(const Rule& other) const;
};

struct RuleError {
    size_t column = 0; // 1-based, within the rule string
    std::string message;
};

// Parses one rule that is one entry (no set, no list, no keyword standing
// for two prefixes); on error fills `error` (column + message) and returns
// nullopt.
std::optional<Rule> parse_rule(std::string_view text, RuleError* error = nullptr);

// A protocol with its ports: the part of a rule after the address.
struct Service {
    uint8_t protocol = 0; // 0 = any
    PortRange ports;
    auto operator<=>(const Service&) const = default;
};

// A named set ([sets] in a policy file), its references already expanded:
// addresses ("@mgmt" where an address stands) or services ("@web" where a
// protocol stands).
struct NamedSet {
    enum class Kind { Address, Service } kind = Kind::Address;
    std::vector<Prefix> addresses;
    std::vector<Service> services;
    bool broken = false; // its definition has errors (reported there)
};
const char* set_kind_name(NamedSet::Kind kind); // "an address set", "a service set"

// Looks a set up by name (without '@'); nullptr when none is defined.
using SetLookup = std::function<const NamedSet*(std::string_view name)>;

// One written rule, expanded: addresses × services, every entry with the
// rule's text. An empty `sets` knows no set. At most `max_entries` entries
// (more is an error at column 1).
std::optional<std::vector<Rule>> parse_rule_entries(std::string_view text, const SetLookup& sets, RuleError* error,
                                                    size_t max_entries = 65536);

// One member of a set definition: an address term (a prefix, a keyword, an
// address set) or a service term (PROTO [PORTS], a service set). Appends to
// `into`, whose kind the first member decides (`first` = true).
std::optional<RuleError> parse_set_member(std::string_view text, const SetLookup& sets, NamedSet& into, bool first);

// A DNS name as a rule's address: letters, digits and '-' in labels of
// 1-63 characters, at least two labels, at most 253 characters, a last label
// that is not all digits; "*." first for every name under a domain. Returns
// it in lower case without a final '.', or nullopt with `why`.
std::optional<std::string> parse_dns_name(std::string_view text, std::string* why = nullptr);
bool is_wildcard_name(std::string_view host); // "*.example.com"

// "tcp" → 6, "udp" → 17, "icmp" → 1, "icmpv6" → 58, "sctp" → 132, "udplite" → 136.
std::optional<uint8_t> parse_protocol(std::string_view text);
// "1".."255": the number after "proto".
std::optional<uint8_t> parse_protocol_number(std::string_view text);
std::string protocol_name(uint8_t protocol);

// ICMP (protocol 1) and ICMPv6 (58) types: "echo-request", "packet-too-big",
// ... (nft's names) or a number 0-255. A rule and the data plane hold type T
// as the port T + 1 (port 0 is "any"): "icmp echo-request" is port 9.
std::optional<uint8_t> parse_icmp_type(uint8_t protocol, std::string_view text);
std::string icmp_type_name(uint8_t protocol, uint8_t type); // the name, or the number
constexpr uint16_t icmp_type_port(uint8_t type)
{
    return static_cast<uint16_t>(type + 1);
}
// The port of the request an ICMP reply answers (echo-reply: echo-request),
// 0 for a type that answers none: what makes an inbound ICMP datagram a
// reply (bpf/lib/packet.bpf.h, icmp_request_port).
uint16_t icmp_request_port(uint8_t protocol, uint8_t type);

} // namespace authwall
