// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: rule strings. A rule that parses must print to a
// canonical form that parses back to the same rule.
#include "core/policy/rule.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);
    authwall::RuleError error;
    auto rule = authwall::parse_rule(text, &error);
    if (!rule) {
        if (error.message.empty() || error.column == 0 || error.column > size + 1)
            __builtin_trap();
        return 0;
    }
    auto again = authwall::parse_rule(rule->str());
    if (!again || again->prefix != rule->prefix || again->protocol != rule->protocol || again->ports != rule->ports)
        __builtin_trap();
    return 0;
}
