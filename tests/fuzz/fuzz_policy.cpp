// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: policy TOML text → model → compiled entries → read-back.
// Any crash, sanitizer report, or a compiled policy that the read-back
// cannot describe is a bug.
#include "core/policy/compiler.h"
#include "core/policy/policy_file.h"
#include "core/policy/view.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto load = authwall::parse_policy_text(text, "fuzz.toml");
    for (const auto& e : load.errors)
        if (e.message.empty())
            __builtin_trap(); // every diagnostic must say something
    if (!load.ok())
        return 0;
    auto compiled =
        authwall::compile_policies(load.policies, authwall::Fallback{}, {}, authwall::CompileLimits{200000});
    if (!compiled)
        return 0;
    auto views = authwall::describe_generation(compiled->entries, {});
    if (views.size() != load.policies.size() + 1) // + the fallback
        __builtin_trap();
    return 0;
}
