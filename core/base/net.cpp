// SPDX-License-Identifier: Apache-2.0
#include "core/base/net.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace authwall {

namespace {
constexpr std::array<uint8_t, 12> kV4MappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

std::array<uint8_t, 16> masked(const std::array<uint8_t, 16>& bytes, unsigned bits)
{
    std::array<uint8_t, 16> out{};
    for (unsigned i = 0; i < 16; ++i) {
        if (bits >= 8 * (i + 1))
            out[i] = bytes[i];
        else if (bits > 8 * i)
            out[i] = bytes[i] & static_cast<uint8_t>(0xff << (8 - (bits - 8 * i)));
    }
    return out;
}
} // namespace

IpAddress IpAddress::v4(uint32_t host_order)
{
    std::array<uint8_t, 16> b{};
    std::memcpy(b.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size());
    b[12] = static_cast<uint8_t>(host_order >> 24);
    b[13] = static_cast<uint8_t>(host_order >> 16);
    b[14] = static_cast<uint8_t>(host_order >> 8);
    b[15] = static_cast<uint8_t>(host_order);
    return IpAddress(b);
}

std::optional<IpAddress> IpAddress::parse(std::string_view text)
{
    if (text.empty() || text.size() > INET6_ADDRSTRLEN)
        return std::nullopt;
    std::string s(text);
    in_addr a4{};
    if (inet_pton(AF_INET, s.c_str(), &a4) == 1)
        return v4(ntohl(a4.s_addr));
    in6_addr a6{};
    if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
        std::array<uint8_t, 16> b{};
        std::memcpy(b.data(), a6.s6_addr, 16);
        return IpAddress(b);
    }
    return std::nullopt;
}

bool IpAddress::is_v4() const
{
    return std::memcmp(bytes_.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size()) == 0;
}

std::string IpAddress::str() const
{
    char buf[INET6_ADDRSTRLEN] = {};
    if (is_v4())
        inet_ntop(AF_INET, &bytes_[12], buf, sizeof(buf));
    else
        inet_ntop(AF_INET6, bytes_.data(), buf, sizeof(buf));
    return buf;
}

Prefix::Prefix(const IpAddress& address, unsigned bits)
    : address_(masked(address.bytes(), bits > 128 ? 128 : bits)), bits_(bits > 128 ? 128 : bits)
{
}

std::optional<Prefix> Prefix::parse(std::string_view text, std::string* error)
{
    auto fail = [&](std::string why) -> std::optional<Prefix> {
        if (error)
            *error = std::move(why);
        return std::nullopt;
    };
    if (text == "any")
        return Prefix(IpAddress(), 0);
    auto slash = text.find('/');
    auto addr_text = text.substr(0, slash);
    auto addr = IpAddress::parse(addr_text);
    if (!addr)
        return fail("'" + std::string(addr_text) + "' is not an IPv4 or IPv6 address");
    bool v4_text = addr_text.find(':') == std::string_view::npos;
    unsigned max_len = v4_text ? 32 : 128;
    unsigned len = max_len;
    if (slash != std::string_view::npos) {
        auto len_text = text.substr(slash + 1);
        auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
        if (len_text.empty() || ec != std::errc() || ptr != len_text.data() + len_text.size() || len > max_len)
            return fail("prefix length '" + std::string(len_text) + "' must be 0.." + std::to_string(max_len));
    }
    unsigned bits = v4_text ? 96 + len : len;
    Prefix p(*addr, bits);
    if (p.address_ != *addr)
        return fail("'" + std::string(text) + "' has host bits set (did you mean " + p.str() + "?)");
    return p;
}

bool Prefix::contains(const IpAddress& a) const
{
    return masked(a.bytes(), bits_) == address_.bytes();
}

bool Prefix::contains(const Prefix& other) const
{
    return other.bits_ >= bits_ && contains(other.address_);
}

std::string Prefix::str() const
{
    if (bits_ == 0)
        return "any";
    if (is_v4())
        return bits_ == 128 ? address_.str() : address_.str() + "/" + std::to_string(bits_ - 96);
    return bits_ == 128 ? address_.str() : address_.str() + "/" + std::to_string(bits_);
}

} // namespace authwall
