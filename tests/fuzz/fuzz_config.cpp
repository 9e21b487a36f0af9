// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the configuration (authwall.toml), which every binary
// reads, the PAM module inside sshd at each login among them, and the
// policy index (policies.json, published by the loader and resolved by the
// PAM module at each login). Whatever the bytes: a result or diagnostics
// that say something, never a crash; an index that parses serialises to
// JSON that parses back to the same index. The first byte picks the parser.
#include "core/policy/config.h"
#include "core/policy/index.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size == 0)
        return 0;
    std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (data[0] & 1) {
        auto index = authwall::policy_index_from_json(text, "fuzz.json");
        if (!index)
            return 0;
        auto json = authwall::to_json(*index);
        auto again = authwall::policy_index_from_json(json, "fuzz-again.json");
        if (!again || authwall::to_json(*again) != json)
            __builtin_trap();
        return 0;
    }
    auto load = authwall::parse_config_text(text, "fuzz.toml");
    for (const auto& e : load.errors)
        if (e.message.empty())
            __builtin_trap();
    return 0;
}
