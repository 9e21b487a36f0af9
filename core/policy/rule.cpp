#include "core/policy/rule.h"

#include <netinet/in.h>

#include <charconv>
#include <vector>

namespace authwall {

namespace {

struct Token {
    std::string_view text;
    size_t column; // 1-based
};

std::vector<Token> tokenize(std::string_view s)
{
    std::vector<Token> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
            ++i;
        size_t start = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\t')
            ++i;
        if (i > start)
            out.push_back({s.substr(start, i - start), start + 1});
    }
    return out;
}

bool has_ports(uint8_t protocol)
{
    return protocol == IPPROTO_TCP || protocol == IPPROTO_UDP || protocol == IPPROTO_SCTP ||
           protocol == IPPROTO_UDPLITE;
}

std::optional<uint16_t> parse_port(std::string_view text)
{
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < 1 || value > 65535)
        return std::nullopt;
    return static_cast<uint16_t>(value);
}

bool is_number(std::string_view text)
{
    return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

// A bare number where a protocol name stands: "10.0.0.0/8 22" once meant IP
// protocol 22, which is never what "port 22" wanted.
RuleError bare_number(const Token& tok)
{
    std::string n(tok.text);
    std::string message = "'" + n + "' is not a protocol name: ";
    if (!parse_port(tok.text))
        return RuleError{tok.column, message + "expected tcp, udp, icmp, icmpv6, sctp, udplite or proto 1-255"};
    message += "write 'tcp " + n + "' or 'udp " + n + "' for a port";
    if (parse_protocol_number(tok.text))
        message += ", 'proto " + n + "' for IP protocol " + n;
    return RuleError{tok.column, message};
}

// The address part, tokens[0]: optional when the rule starts with a
// protocol. Advances `next` past it when it is there.
std::optional<RuleError> read_address(const Token& first, Rule& rule, size_t& next)
{
    bool looks_like_address = first.text == "any" || first.text.find_first_of(".:/") != std::string_view::npos;
    if (looks_like_address) {
        std::string why;
        auto prefix = Prefix::parse(first.text, &why);
        if (!prefix)
            return RuleError{first.column, why};
        rule.prefix = *prefix;
        next = 1;
    } else if (is_number(first.text)) {
        return bare_number(first);
    } else if (first.text != "proto" && !parse_protocol(first.text)) {
        return RuleError{first.column,
                         "'" + std::string(first.text) +
                             "' is neither an address, a prefix, 'any' nor a protocol (tcp, udp, icmp, ..., proto N)"};
    }
    return std::nullopt;
}

// A protocol name, or "proto N" for a protocol by number. Advances `next`
// past what it read.
std::optional<RuleError> read_protocol(const std::vector<Token>& tokens, Rule& rule, size_t& next)
{
    const Token& tok = tokens[next];
    if (tok.text == "proto") {
        if (next + 1 == tokens.size())
            return RuleError{tok.column + tok.text.size(), "'proto' needs an IP protocol number 1-255"};
        const Token& number = tokens[next + 1];
        auto protocol = parse_protocol_number(number.text);
        if (!protocol)
            return RuleError{number.column, "'" + std::string(number.text) + "' is not an IP protocol number (1-255)"};
        rule.protocol = *protocol;
        next += 2;
        return std::nullopt;
    }
    if (is_number(tok.text))
        return bare_number(tok);
    auto protocol = parse_protocol(tok.text);
    if (!protocol)
        return RuleError{tok.column,
                         "'" + std::string(tok.text) +
                             "' is not a protocol: expected tcp, udp, icmp, icmpv6, sctp, udplite or proto 1-255"};
    rule.protocol = *protocol;
    ++next;
    return std::nullopt;
}

// An ICMP or ICMPv6 type, by name or number, stored as the port type + 1
// (the data plane reads the type into the port the same way).
std::optional<RuleError> read_icmp_type(const Token& tok, Rule& rule)
{
    auto type = parse_icmp_type(rule.protocol, tok.text);
    if (!type) {
        std::string what = rule.protocol == IPPROTO_ICMP ? "an ICMP type" : "an ICMPv6 type";
        return RuleError{tok.column, "'" + std::string(tok.text) + "' is not " + what +
                                         " (a name such as echo-request, or a number 0-255; one type per rule)"};
    }
    uint16_t port = icmp_type_port(*type);
    rule.ports = PortRange{port, port};
    return std::nullopt;
}

// PORT or PORT-PORT; 1-65535 is stored as any port.
std::optional<RuleError> read_ports(const Token& tok, Rule& rule)
{
    if (rule.protocol == IPPROTO_ICMP || rule.protocol == IPPROTO_ICMPV6)
        return read_icmp_type(tok, rule);
    if (!has_ports(rule.protocol))
        return RuleError{tok.column, "protocol " + protocol_name(rule.protocol) + " has no ports"};
    auto dash = tok.text.find('-');
    auto lo = parse_port(tok.text.substr(0, dash));
    if (!lo)
        return RuleError{tok.column, "'" + std::string(tok.text.substr(0, dash)) + "' is not a port (1-65535)"};
    auto hi = lo;
    if (dash != std::string_view::npos) {
        hi = parse_port(tok.text.substr(dash + 1));
        if (!hi)
            return RuleError{tok.column + dash + 1,
                             "'" + std::string(tok.text.substr(dash + 1)) + "' is not a port (1-65535)"};
        if (*hi < *lo)
            return RuleError{tok.column, "port range " + std::string(tok.text) + " is reversed"};
    }
    if (!(*lo == 1 && *hi == 65535))
        rule.ports = PortRange{*lo, *hi};
    return std::nullopt;
}

struct IcmpName {
    const char* name;
    uint8_t type;
};

// The types of RFC 792 and RFC 4443 (with RFC 4861's neighbour discovery)
// under the names nft gives them.
constexpr IcmpName kIcmpTypes[] = {
    {"echo-reply", 0},
    {"destination-unreachable", 3},
    {"redirect", 5},
    {"echo-request", 8},
    {"router-advertisement", 9},
    {"router-solicitation", 10},
    {"time-exceeded", 11},
    {"parameter-problem", 12},
    {"timestamp-request", 13},
    {"timestamp-reply", 14},
    {"info-request", 15},
    {"info-reply", 16},
    {"address-mask-request", 17},
    {"address-mask-reply", 18},
};
constexpr IcmpName kIcmpv6Types[] = {
    {"destination-unreachable", 1}, {"packet-too-big", 2},        {"time-exceeded", 3},
    {"parameter-problem", 4},       {"echo-request", 128},        {"echo-reply", 129},
    {"mld-listener-query", 130},    {"mld-listener-report", 131}, {"mld-listener-done", 132},
    {"nd-router-solicit", 133},     {"nd-router-advert", 134},    {"nd-neighbor-solicit", 135},
    {"nd-neighbor-advert", 136},    {"nd-redirect", 137},
};

template <size_t N> const IcmpName* find_icmp(const IcmpName (&table)[N], auto pred)
{
    for (const auto& t : table)
        if (pred(t))
            return &t;
    return nullptr;
}

} // namespace

std::optional<uint8_t> parse_icmp_type(uint8_t protocol, std::string_view text)
{
    auto by_name = [&](const IcmpName& t) { return text == t.name; };
    const IcmpName* hit = protocol == IPPROTO_ICMP ? find_icmp(kIcmpTypes, by_name) : find_icmp(kIcmpv6Types, by_name);
    if (hit)
        return hit->type;
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (!text.empty() && ec == std::errc() && ptr == text.data() + text.size() && value <= 255)
        return static_cast<uint8_t>(value);
    return std::nullopt;
}

uint16_t icmp_request_port(uint8_t protocol, uint8_t type)
{
    if (protocol == IPPROTO_ICMP && (type == 0 || type == 14 || type == 16 || type == 18))
        return icmp_type_port(type == 0 ? 8 : static_cast<uint8_t>(type - 1));
    if (protocol == IPPROTO_ICMPV6 && type == 129)
        return icmp_type_port(128);
    return 0;
}

std::string icmp_type_name(uint8_t protocol, uint8_t type)
{
    auto by_type = [&](const IcmpName& t) { return t.type == type; };
    const IcmpName* hit = protocol == IPPROTO_ICMP ? find_icmp(kIcmpTypes, by_type) : find_icmp(kIcmpv6Types, by_type);
    return hit ? hit->name : std::to_string(type);
}

std::optional<uint8_t> parse_protocol(std::string_view text)
{
    if (text == "tcp")
        return IPPROTO_TCP;
    if (text == "udp")
        return IPPROTO_UDP;
    if (text == "icmp")
        return IPPROTO_ICMP;
    if (text == "icmpv6" || text == "ipv6-icmp")
        return IPPROTO_ICMPV6;
    if (text == "sctp")
        return IPPROTO_SCTP;
    if (text == "udplite")
        return IPPROTO_UDPLITE;
    return std::nullopt;
}

std::optional<uint8_t> parse_protocol_number(std::string_view text)
{
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (!text.empty() && ec == std::errc() && ptr == text.data() + text.size() && value >= 1 && value <= 255)
        return static_cast<uint8_t>(value);
    return std::nullopt;
}

std::string protocol_name(uint8_t protocol)
{
    switch (protocol) {
    case 0:
        return "any";
    case IPPROTO_TCP:
        return "tcp";
    case IPPROTO_UDP:
        return "udp";
    case IPPROTO_ICMP:
        return "icmp";
    case IPPROTO_ICMPV6:
        return "icmpv6";
    case IPPROTO_SCTP:
        return "sctp";
    case IPPROTO_UDPLITE:
        return "udplite";
    default:
        return std::to_string(protocol);
    }
}

std::optional<Rule> parse_rule(std::string_view text, RuleError* error)
{
    auto fail = [&](RuleError e) -> std::optional<Rule> {
        if (error)
            *error = std::move(e);
        return std::nullopt;
    };
    auto tokens = tokenize(text);
    if (tokens.empty())
        return fail({1, "empty rule: expected an address, a prefix, a protocol or 'any'"});

    Rule rule;
    rule.text = std::string(text);
    size_t next = 0;
    if (auto e = read_address(tokens[0], rule, next))
        return fail(std::move(*e));
    if (next < tokens.size())
        if (auto e = read_protocol(tokens, rule, next))
            return fail(std::move(*e));
    if (next < tokens.size()) {
        if (auto e = read_ports(tokens[next], rule))
            return fail(std::move(*e));
        ++next;
    }
    if (next < tokens.size())
        return fail({tokens[next].column, "unexpected '" + std::string(tokens[next].text) +
                                              "': a rule is ADDRESS[/LEN] [PROTOCOL [PORT[-PORT] | ICMP-TYPE]]"});
    return rule;
}

bool Rule::covered_by(const Rule& other) const
{
    if (!other.prefix.contains(prefix))
        return false;
    if (other.protocol != 0 && other.protocol != protocol)
        return false;
    if (other.ports.any())
        return true;
    return !ports.any() && other.ports.first <= ports.first && ports.last <= other.ports.last;
}

std::string Rule::str() const
{
    std::string out = prefix.str();
    // A protocol without a name is written "proto N": a bare number there
    // is an error (it was too easily read as a port).
    if (protocol != 0)
        out += " " + (parse_protocol(protocol_name(protocol)) ? protocol_name(protocol)
                                                              : "proto " + std::to_string(protocol));
    if (!ports.any() && (protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6)) {
        out += " " + icmp_type_name(protocol, static_cast<uint8_t>(ports.first - 1));
    } else if (!ports.any()) {
        out += " " + std::to_string(ports.first);
        if (ports.last != ports.first)
            out += "-" + std::to_string(ports.last);
    }
    return out;
}

} // namespace authwall
