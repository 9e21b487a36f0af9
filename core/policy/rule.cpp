// SPDX-License-Identifier: Apache-2.0
#include "core/policy/rule.h"

#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

namespace authwall {

namespace {

struct Token {
    std::string_view text;
    size_t column; // 1-based
};

// Words separated by blanks; a port list "{22, 443}" is one token, blanks
// and all (an unclosed one runs to the end).
std::vector<Token> tokenize(std::string_view s)
{
    std::vector<Token> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
            ++i;
        size_t start = i;
        if (i < s.size() && s[i] == '{') {
            auto close = s.find('}', i);
            i = close == std::string_view::npos ? s.size() : close + 1;
        }
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

// The keywords that stand for prefixes of both families.
std::optional<std::vector<Prefix>> keyword_prefixes(std::string_view word)
{
    auto two = [](const char* a, const char* b) { return std::vector<Prefix>{*Prefix::parse(a), *Prefix::parse(b)}; };
    if (word == "any")
        return std::vector<Prefix>{Prefix()};
    if (word == "loopback")
        return two("127.0.0.0/8", "::1");
    if (word == "link-local")
        return two("169.254.0.0/16", "fe80::/10");
    return std::nullopt;
}

// "@name": the set it names, or an error at the token.
std::optional<RuleError> find_set(const Token& tok, const SetLookup& sets, const NamedSet*& out)
{
    std::string name(tok.text.substr(1));
    out = name.empty() || !sets ? nullptr : sets(name);
    if (name.empty())
        return RuleError{tok.column, "'@' needs a set name: @NAME, defined under [sets]"};
    if (!out)
        return RuleError{tok.column, "unknown set '@" + name + "' (define it under [sets])"};
    if (out->broken)
        return RuleError{tok.column, "set '@" + name + "' has errors (see its definition)"};
    return std::nullopt;
}

// What a rule or a set member is made of: its addresses, its services; each
// absent when not written.
struct Terms {
    bool rhost = false; // $rhost: the login's address
    std::string host;   // a DNS name
    std::optional<std::vector<Prefix>> addresses;
    std::optional<std::vector<Service>> services;
};

// A word with a dot and a letter, no ':' or '/': a DNS name, well formed
// or not ("10.0.0.300" stays a bad address, "db..internal" a bad name).
bool looks_like_name(std::string_view word)
{
    auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*'; };
    return word.find('.') != std::string_view::npos && word.find_first_of(":/") == std::string_view::npos &&
           std::any_of(word.begin(), word.end(), letter);
}

// The address term, tokens[0]: optional when the rule starts with a
// protocol or a service set. Advances `next` past it when it is there.
std::optional<RuleError> read_address(const Token& first, const SetLookup& sets, Terms& terms, size_t& next)
{
    if (first.text.starts_with('@')) {
        const NamedSet* set = nullptr;
        if (auto e = find_set(first, sets, set))
            return e;
        if (set->kind == NamedSet::Kind::Address) {
            terms.addresses = set->addresses;
            next = 1;
        }
        return std::nullopt; // a service set: the service term reads it
    }
    if (first.text == "$rhost") {
        terms.rhost = true;
        terms.addresses = std::vector<Prefix>{Prefix()};
        next = 1;
    } else if (first.text.starts_with('$')) {
        return RuleError{first.column, "unknown variable '" + std::string(first.text) + "': the only one is $rhost"};
    } else if (auto keyword = keyword_prefixes(first.text)) {
        terms.addresses = std::move(*keyword);
        next = 1;
    } else if (looks_like_name(first.text)) {
        std::string why;
        auto host = parse_dns_name(first.text, &why);
        if (!host)
            return RuleError{first.column, why};
        terms.host = std::move(*host);
        terms.addresses = std::vector<Prefix>{Prefix()};
        next = 1;
    } else if (first.text.find_first_of(".:/") != std::string_view::npos) {
        std::string why;
        auto prefix = Prefix::parse(first.text, &why);
        if (!prefix)
            return RuleError{first.column, why};
        terms.addresses = std::vector<Prefix>{*prefix};
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
std::optional<RuleError> read_protocol(const std::vector<Token>& tokens, uint8_t& protocol, size_t& next)
{
    const Token& tok = tokens[next];
    if (tok.text == "proto") {
        if (next + 1 == tokens.size())
            return RuleError{tok.column + tok.text.size(), "'proto' needs an IP protocol number 1-255"};
        const Token& number = tokens[next + 1];
        auto value = parse_protocol_number(number.text);
        if (!value)
            return RuleError{number.column, "'" + std::string(number.text) + "' is not an IP protocol number (1-255)"};
        protocol = *value;
        next += 2;
        return std::nullopt;
    }
    if (is_number(tok.text))
        return bare_number(tok);
    auto value = parse_protocol(tok.text);
    if (!value)
        return RuleError{tok.column,
                         "'" + std::string(tok.text) +
                             "' is not a protocol: expected tcp, udp, icmp, icmpv6, sctp, udplite or proto 1-255"};
    protocol = *value;
    ++next;
    return std::nullopt;
}

// PORT or PORT-PORT at `column`; 1-65535 is stored as any port.
std::optional<RuleError> read_range(std::string_view text, size_t column, std::vector<PortRange>& into)
{
    auto dash = text.find('-');
    auto lo = parse_port(text.substr(0, dash));
    if (!lo)
        return RuleError{column, "'" + std::string(text.substr(0, dash)) + "' is not a port (1-65535)"};
    auto hi = lo;
    if (dash != std::string_view::npos) {
        hi = parse_port(text.substr(dash + 1));
        if (!hi)
            return RuleError{column + dash + 1, "'" + std::string(text.substr(dash + 1)) + "' is not a port (1-65535)"};
        if (*hi < *lo)
            return RuleError{column, "port range " + std::string(text) + " is reversed"};
    }
    into.push_back(*lo == 1 && *hi == 65535 ? PortRange{} : PortRange{*lo, *hi});
    return std::nullopt;
}

// An ICMP or ICMPv6 type, by name or number, stored as the port type + 1
// (the data plane reads the type into the port the same way).
std::optional<RuleError> read_icmp_type(const Token& tok, uint8_t protocol, std::vector<PortRange>& into)
{
    auto type = parse_icmp_type(protocol, tok.text);
    if (!type) {
        std::string what = protocol == IPPROTO_ICMP ? "an ICMP type" : "an ICMPv6 type";
        return RuleError{tok.column, "'" + std::string(tok.text) + "' is not " + what +
                                         " (a name such as echo-request, or a number 0-255; one type per rule)"};
    }
    uint16_t port = icmp_type_port(*type);
    into.push_back(PortRange{port, port});
    return std::nullopt;
}

// "{22, 443, 8000-8100}": every item a port or a range, none empty.
std::optional<RuleError> read_port_list(const Token& tok, std::vector<PortRange>& into)
{
    if (!tok.text.ends_with('}'))
        return RuleError{tok.column, "port list '" + std::string(tok.text) + "' has no closing '}'"};
    std::string_view inner = tok.text.substr(1, tok.text.size() - 2);
    if (inner.find_first_not_of(" \t") == std::string_view::npos)
        return RuleError{tok.column, "empty port list '{}': name at least one port"};
    size_t at = 0;
    while (at <= inner.size()) {
        size_t comma = std::min(inner.find(',', at), inner.size());
        std::string_view item = inner.substr(at, comma - at);
        size_t lead = std::min(item.find_first_not_of(" \t"), item.size());
        item = item.substr(lead);
        item = item.substr(0, item.find_last_not_of(" \t") + 1);
        size_t column = tok.column + 1 + at + lead;
        if (item.empty())
            return RuleError{column, "empty item in port list '" + std::string(tok.text) + "'"};
        if (auto e = read_range(item, column, into))
            return e;
        at = comma + 1;
    }
    return std::nullopt;
}

// The service term from tokens[next]: "@set" of services, or PROTO [PORTS].
std::optional<RuleError> read_service(const std::vector<Token>& tokens, const SetLookup& sets, Terms& terms,
                                      size_t& next)
{
    const Token& tok = tokens[next];
    if (tok.text.starts_with('@')) {
        const NamedSet* set = nullptr;
        if (auto e = find_set(tok, sets, set))
            return e;
        if (set->kind != NamedSet::Kind::Service)
            return RuleError{tok.column, "'" + std::string(tok.text) + "' is " + set_kind_name(set->kind) +
                                             ", where a protocol or a service set is expected"};
        terms.services = set->services;
        ++next;
        return std::nullopt;
    }
    uint8_t protocol = 0;
    if (auto e = read_protocol(tokens, protocol, next))
        return e;
    std::vector<PortRange> ranges;
    if (next < tokens.size() && (protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6)) {
        if (auto e = read_icmp_type(tokens[next], protocol, ranges))
            return e;
        ++next;
    } else if (next < tokens.size()) {
        const Token& ports = tokens[next];
        if (!has_ports(protocol))
            return RuleError{ports.column, "protocol " + protocol_name(protocol) + " has no ports"};
        auto e =
            ports.text.starts_with('{') ? read_port_list(ports, ranges) : read_range(ports.text, ports.column, ranges);
        if (e)
            return e;
        ++next;
    } else {
        ranges.push_back(PortRange{});
    }
    terms.services.emplace();
    for (const auto& r : ranges)
        terms.services->push_back(Service{protocol, r});
    return std::nullopt;
}

// Address term, then service term, then nothing.
std::optional<RuleError> read_terms(const std::vector<Token>& tokens, const SetLookup& sets, Terms& terms)
{
    size_t next = 0;
    if (auto e = read_address(tokens[0], sets, terms, next))
        return e;
    if (next < tokens.size())
        if (auto e = read_service(tokens, sets, terms, next))
            return e;
    if (next < tokens.size())
        return RuleError{tokens[next].column, "unexpected '" + std::string(tokens[next].text) +
                                                  "': a rule is ADDRESS[/LEN] [PROTOCOL [PORTS | ICMP-TYPE]]"};
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

const char* set_kind_name(NamedSet::Kind kind)
{
    return kind == NamedSet::Kind::Address ? "an address set" : "a service set";
}

std::optional<std::vector<Rule>> parse_rule_entries(std::string_view text, const SetLookup& sets, RuleError* error,
                                                    size_t max_entries)
{
    auto fail = [&](RuleError e) -> std::optional<std::vector<Rule>> {
        if (error)
            *error = std::move(e);
        return std::nullopt;
    };
    auto tokens = tokenize(text);
    if (tokens.empty())
        return fail({1, "empty rule: expected an address, a prefix, a protocol or 'any'"});
    Terms terms;
    if (auto e = read_terms(tokens, sets, terms))
        return fail(std::move(*e));
    auto addresses = terms.addresses.value_or(std::vector<Prefix>{Prefix()});
    auto services = terms.services.value_or(std::vector<Service>{Service{}});
    if (addresses.size() * services.size() > max_entries)
        return fail({1, "expands to " + std::to_string(addresses.size()) + " addresses x " +
                            std::to_string(services.size()) + " services, more than " + std::to_string(max_entries) +
                            " entries: split the rule or its sets"});
    std::vector<Rule> out;
    out.reserve(addresses.size() * services.size());
    for (const auto& a : addresses)
        for (const auto& s : services) {
            Rule rule;
            rule.prefix = a;
            rule.protocol = s.protocol;
            rule.ports = s.ports;
            rule.text = std::string(text);
            rule.rhost = terms.rhost;
            rule.host = terms.host;
            out.push_back(std::move(rule));
        }
    return out;
}

std::optional<Rule> parse_rule(std::string_view text, RuleError* error)
{
    auto entries = parse_rule_entries(text, {}, error);
    if (!entries)
        return std::nullopt;
    if (entries->size() != 1) {
        if (error)
            *error = {1, "expands to " + std::to_string(entries->size()) + " entries where one rule is expected"};
        return std::nullopt;
    }
    return std::move(entries->front());
}

std::optional<RuleError> parse_set_member(std::string_view text, const SetLookup& sets, NamedSet& into, bool first)
{
    auto tokens = tokenize(text);
    if (tokens.empty())
        return RuleError{1, "empty set member: expected an address, a prefix, a keyword, a service or @set"};
    Terms terms;
    if (auto e = read_terms(tokens, sets, terms))
        return e;
    if (terms.rhost)
        return RuleError{1, "$rhost stands in rules, not in sets: write '$rhost @set' in the rule"};
    if (!terms.host.empty())
        return RuleError{1, "a DNS name stands in rules, not in sets: write '" + terms.host + " @set' in the rule"};
    if (terms.addresses && terms.services)
        return RuleError{1, "a set holds addresses or services, not both: write '@set PROTOCOL PORTS' in the rule"};
    auto kind = terms.addresses ? NamedSet::Kind::Address : NamedSet::Kind::Service;
    if (first)
        into.kind = kind;
    else if (kind != into.kind)
        return RuleError{1, std::string("'") + std::string(text) + "' does not belong in " + set_kind_name(into.kind) +
                                " (a set holds one kind)"};
    if (terms.addresses)
        into.addresses.insert(into.addresses.end(), terms.addresses->begin(), terms.addresses->end());
    else
        into.services.insert(into.services.end(), terms.services->begin(), terms.services->end());
    return std::nullopt;
}

bool Rule::covered_by(const Rule& other) const
{
    // The login's address, or a name's, lies in a prefix only when that is
    // every address; a name's addresses in a name's only when it is the same.
    bool this_any = rhost || !host.empty(), other_any = other.rhost || !other.host.empty();
    if (this_any || other_any) {
        bool same = rhost == other.rhost && host == other.host;
        if (!same && (other_any || other.prefix.bits() != 0))
            return false;
    } else if (!other.prefix.contains(prefix)) {
        return false;
    }
    if (other.protocol != 0 && other.protocol != protocol)
        return false;
    if (other.ports.any())
        return true;
    return !ports.any() && other.ports.first <= ports.first && ports.last <= other.ports.last;
}

std::string Rule::str() const
{
    std::string out = rhost ? "$rhost" : !host.empty() ? host : prefix.str();
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

std::optional<std::string> parse_dns_name(std::string_view text, std::string* why)
{
    auto fail = [&](std::string message) -> std::optional<std::string> {
        if (why)
            *why = "'" + std::string(text) + "' is not a DNS name: " + std::move(message);
        return std::nullopt;
    };
    std::string name(text);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (name.ends_with('.'))
        name.pop_back();
    std::string_view rest = name;
    if (rest.starts_with("*."))
        rest.remove_prefix(2);
    if (rest.size() > 253 || rest.empty())
        return fail(rest.empty() ? "nothing after '*.'" : "longer than 253 characters");
    if (rest.find('.') == std::string_view::npos && !name.starts_with("*."))
        return fail("a single label (write the full name, e.g. host.example.com)");
    std::string_view label, last;
    for (size_t at = 0; at <= rest.size();) {
        size_t dot = std::min(rest.find('.', at), rest.size());
        label = rest.substr(at, dot - at);
        if (label.empty())
            return fail("an empty label (two dots, or a dot first)");
        if (label.size() > 63)
            return fail("a label longer than 63 characters");
        if (label.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string_view::npos)
            return fail(label.find('*') != std::string_view::npos
                            ? "'*' stands only as the whole first label (*.example.com)"
                            : "labels hold letters, digits and '-' only");
        if (label.front() == '-' || label.back() == '-')
            return fail("a label starts or ends with '-'");
        last = label;
        at = dot + 1;
    }
    if (last.find_first_not_of("0123456789") == std::string_view::npos)
        return fail("its last label is a number (an IPv4 address is four numbers 0-255)");
    return name;
}

bool is_wildcard_name(std::string_view host)
{
    return host.starts_with("*.");
}

} // namespace authwall
