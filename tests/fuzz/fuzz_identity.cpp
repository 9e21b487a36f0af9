// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: what crosses the PAM boundary. A user name accepted by
// username_problem must be safe as a path component and a cgroup name; an
// address from normalize_rhost must print to a form that normalises back to
// itself; printable() never lets a control or non-ASCII byte through; a
// value sanitize_auth_tag keeps is the input, within its limit and its
// character set, and its note is printable.
#include "core/base/identity.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);

    if (!authwall::username_problem(text)) {
        if (text.empty() || text.size() > 32 || text == "." || text == ".." || text[0] == '-' || text[0] == '.')
            __builtin_trap();
        for (char c : text)
            if (c == '/' || c == '\0' || c == '\n' || static_cast<unsigned char>(c) < 0x20 ||
                static_cast<unsigned char>(c) >= 0x7f)
                __builtin_trap();
    }

    for (auto mode : {authwall::RhostMode::Lax, authwall::RhostMode::Strict}) {
        auto r = authwall::normalize_rhost(text, mode);
        if (!r) {
            if (mode == authwall::RhostMode::Lax) // lax never fails: junk is "no address"
                __builtin_trap();
            continue;
        }
        if (r->address) {
            auto again = authwall::normalize_rhost(r->address->str(), authwall::RhostMode::Strict);
            if (!again || !again->address || again->address->str() != r->address->str())
                __builtin_trap();
        }
    }

    auto tag = authwall::sanitize_auth_tag(authwall::kAuthClaimsVar, std::string(text), authwall::kAuthClaimsMax);
    if (tag.value) {
        if (*tag.value != text || tag.value->empty() || tag.value->size() > authwall::kAuthClaimsMax)
            __builtin_trap();
        for (char c : *tag.value)
            if (!std::strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._:=+/@,", c) || c == '\0')
                __builtin_trap();
    } else if (!text.empty() && tag.note.empty()) {
        __builtin_trap(); // a value set and not kept always says why
    }
    for (char c : tag.note)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            __builtin_trap();

    auto shown = authwall::printable(text);
    for (char c : shown)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            __builtin_trap();
    return 0;
}
