// SPDX-License-Identifier: Apache-2.0
// IP addresses and prefixes in the data plane's form: 16 bytes, IPv4 as
// v4-mapped IPv6 (::ffff:a.b.c.d), prefix lengths counted on 128 bits.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace authwall {

class IpAddress {
  public:
    IpAddress() = default;
    explicit IpAddress(const std::array<uint8_t, 16>& bytes) : bytes_(bytes) {}

    static IpAddress v4(uint32_t host_order);
    // Accepts dotted IPv4 and IPv6 text, including v4-mapped (::ffff:1.2.3.4).
    // A zone id ("fe80::1%eth0") is not accepted here; see normalize_rhost.
    static std::optional<IpAddress> parse(std::string_view text);

    bool is_v4() const; // v4-mapped
    const std::array<uint8_t, 16>& bytes() const { return bytes_; }
    std::string str() const; // IPv4 as dotted quad

    auto operator<=>(const IpAddress&) const = default;

  private:
    std::array<uint8_t, 16> bytes_{};
};

class Prefix {
  public:
    Prefix() = default;
    // bits: 0..128 on the 16-byte form; host bits are cleared.
    Prefix(const IpAddress& address, unsigned bits);

    // "10.0.0.0/8", "2001:db8::/32", a bare address (host prefix), "any"
    // (every address of both families). Host bits set ("10.0.0.1/8") is an
    // error: it is almost always a typo. On failure, `error` says why.
    static std::optional<Prefix> parse(std::string_view text, std::string* error = nullptr);

    const IpAddress& address() const { return address_; }
    unsigned bits() const { return bits_; } // on 128 bits
    bool is_v4() const { return bits_ >= 96 && address_.is_v4(); }
    bool contains(const IpAddress& a) const;
    bool contains(const Prefix& other) const;
    std::string str() const;

    auto operator<=>(const Prefix&) const = default;

  private:
    IpAddress address_;
    unsigned bits_ = 0;
};

} // namespace authwall
