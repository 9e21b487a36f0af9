// SPDX-License-Identifier: Apache-2.0
#include "core/base/identity.h"

#include <cstdio>

namespace authwall {

std::optional<std::string> username_problem(std::string_view user)
{
    if (user.empty())
        return "is empty";
    if (user.size() > 32)
        return "is longer than 32 characters";
    if (user == "." || user == "..")
        return "is a path component";
    if (user[0] == '-' || user[0] == '.')
        return "starts with '" + std::string(1, user[0]) + "'";
    for (size_t i = 0; i < user.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(user[i]);
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                  c == '-' || (c == '$' && i + 1 == user.size());
        if (!ok) {
            char what[16];
            if (c < 0x20 || c >= 0x7f)
                std::snprintf(what, sizeof(what), "byte 0x%02x", c);
            else
                std::snprintf(what, sizeof(what), "'%c'", c);
            return "contains " + std::string(what) + " at position " + std::to_string(i + 1);
        }
    }
    return std::nullopt;
}

Result<RhostResult> normalize_rhost(std::string_view rhost, RhostMode mode)
{
    RhostResult out;
    if (rhost.empty()) {
        out.note = "local login (no PAM_RHOST)";
        return out;
    }
    std::string_view text = rhost;
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
        text = text.substr(1, text.size() - 2);
    // A zone id names the interface of a link-local address; the address
    // itself is what packets carry.
    if (auto pct = text.find('%'); pct != std::string_view::npos && text.find(':') != std::string_view::npos)
        text = text.substr(0, pct);
    if (auto a = IpAddress::parse(text)) {
        out.address = *a; // v4-mapped already normalises to the IPv4 form
        return out;
    }
    std::string why = "PAM_RHOST '" + printable(rhost) + "' is not an IP address";
    if (mode == RhostMode::Strict)
        return Error::msg("normalise", "PAM_RHOST", why + " (rhost=strict)");
    out.note = why + "; the session has no remote address (rhost=lax)";
    return out;
}

RhostResult rhost_from_peer(const IpAddress& peer, std::string_view pam_rhost)
{
    RhostResult out;
    out.address = peer;
    auto given = normalize_rhost(pam_rhost, RhostMode::Lax);
    if (given && given->address && *given->address != peer)
        out.note = "PAM_RHOST " + given->address->str() + " is not the peer of the login's connection, " + peer.str() +
                   ", which is used (rhost=kernel)";
    return out;
}

namespace {

bool auth_tag_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == ':' || c == '=' || c == '+' || c == '/' || c == '@' || c == ',';
}

} // namespace

AuthTag sanitize_auth_tag(std::string_view name, const std::optional<std::string>& raw, size_t max)
{
    AuthTag out;
    if (!raw || raw->empty())
        return out;
    const std::string& text = *raw;
    std::string what = std::string(name) + " '" + printable(text) + "'";
    if (text.size() > max) {
        out.note =
            what + " is " + std::to_string(text.size()) + " bytes, more than " + std::to_string(max) + ": not recorded";
        return out;
    }
    for (size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (!auth_tag_char(c)) {
            char hex[8];
            std::snprintf(hex, sizeof(hex), "0x%02x", c);
            out.note = what + " has byte " + hex + " at position " + std::to_string(i + 1) +
                       " (allowed: A-Z a-z 0-9 - . _ : = + / @ ,): not recorded";
            return out;
        }
    }
    out.value = text;
    return out;
}

std::string printable(std::string_view text, size_t max)
{
    std::string out;
    for (size_t i = 0; i < text.size() && i < max; ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c >= 0x7f || c == '\\') {
            char hex[8];
            std::snprintf(hex, sizeof(hex), "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    if (text.size() > max)
        out += "...";
    return out;
}

} // namespace authwall
