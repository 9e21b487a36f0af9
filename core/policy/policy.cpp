// SPDX-License-Identifier: Apache-2.0
#include "core/policy/policy.h"

#include <sys/socket.h>

#include <array>
#include <charconv>
#include <utility>

namespace authwall {

namespace {
constexpr std::array<std::pair<std::string_view, int>, 16> kFamilies{{
    {"unix", AF_UNIX},
    {"inet", AF_INET},
    {"inet6", AF_INET6},
    {"netlink", AF_NETLINK},
    {"packet", AF_PACKET},
    {"key", AF_KEY},
    {"appletalk", AF_APPLETALK},
    {"x25", AF_X25},
    {"ax25", AF_AX25},
    {"can", AF_CAN},
    {"tipc", AF_TIPC},
    {"bluetooth", AF_BLUETOOTH},
    {"alg", AF_ALG},
    {"vsock", AF_VSOCK},
    {"xdp", AF_XDP},
    {"rds", AF_RDS},
}};
} // namespace

const char* verdict_name(Verdict v)
{
    return v == Verdict::Allow ? "allow" : "deny";
}

std::optional<int> parse_socket_family(std::string_view name)
{
    for (const auto& [n, f] : kFamilies)
        if (n == name)
            return f;
    return std::nullopt;
}

std::vector<std::string> denied_family_names(uint64_t denied_families, bool deny_raw)
{
    std::vector<std::string> names;
    for (int f = 0; f < 64; ++f)
        if (denied_families & (1ULL << f))
            names.push_back(socket_family_name(f));
    if (deny_raw)
        names.emplace_back("raw");
    return names;
}

std::string socket_family_name(int family)
{
    for (const auto& [n, f] : kFamilies)
        if (f == family)
            return std::string(n);
    return std::to_string(family);
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text)
{
    if (text.empty())
        return std::nullopt;
    long long total = 0;
    size_t i = 0;
    while (i < text.size()) {
        long long value = 0;
        auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + text.size(), value);
        if (ec != std::errc() || ptr == text.data() + i || value < 0)
            return std::nullopt;
        i = static_cast<size_t>(ptr - text.data());
        if (i >= text.size())
            return std::nullopt; // a unit is required
        long long unit = 0;
        switch (text[i]) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            return std::nullopt;
        }
        ++i;
        if (value > (1LL << 40) / unit)
            return std::nullopt;
        total += value * unit;
    }
    if (total <= 0)
        return std::nullopt;
    return std::chrono::seconds(total);
}

bool valid_policy_name(std::string_view name)
{
    if (name.empty() || name.size() >= AW_POLICY_NAME_MAX)
        return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.';
        if (!ok)
            return false;
    }
    return true;
}

void apply_mode_override(std::vector<Policy>& policies, Fallback& fallback, std::optional<bool> audit)
{
    if (!audit)
        return;
    for (auto& p : policies)
        p.audit = *audit;
    fallback.audit = *audit;
}

} // namespace authwall
