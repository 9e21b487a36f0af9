// Rule strings of the policy language: "ADDR[/LEN] [PROTO [PORT[-PORT]]]"
// ("icmp TYPE" / "icmpv6 TYPE" for an ICMP type: "any icmp echo-request"),
// "PROTO [PORT[-PORT]]" (any address), or "any". PROTO is a name (tcp, udp,
// icmp, icmpv6, sctp, udplite) or "proto N" for IP protocol N: a bare number
// is an error, since "10.0.0.0/8 22" reads like port 22. Examples:
//   "10.20.0.0/16 tcp 22"   "10.0.0.53 udp 53"   "2001:db8::/32 tcp 443-444"
//   "169.254.169.254"       "tcp 1-1023"         "any icmp"   "10.0.0.0/8 proto 47"
#pragma once

#include "core/base/net.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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
    unsigned line = 0; // where it was written (0 = not from a file)
    unsigned column = 0;
    uint32_t id = 0;  // its number within its policy (1..), in events; 0 = not numbered
    bool log = false; // report every match ({ rule = "...", log = true })

    std::string str() const; // canonical form: "proto N" for a protocol without a name
    // True when every flow this rule matches is also matched by `other`.
    bool covered_by(const Rule& other) const;
};

struct RuleError {
    size_t column = 0; // 1-based, within the rule string
    std::string message;
};

// Parses one rule; on error fills `error` (column + message) and returns nullopt.
std::optional<Rule> parse_rule(std::string_view text, RuleError* error = nullptr);

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
