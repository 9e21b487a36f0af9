// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: session records (JSON files in the run directory, read
// by cgroupd, authctl and the PAM close path). Whatever the bytes, parsing
// returns a record or an error; a record that parses serialises to JSON
// that parses back to the same record; and where the fast parser returns a
// record, the full parser returns the same one.
#include "core/session/record.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string text(reinterpret_cast<const char*>(data), size);
    if (auto fast = authwall::detail::record_from_json_fast(text)) {
        auto full = authwall::detail::record_from_json_full(text, "fuzz");
        if (!full || authwall::to_json(*full) != authwall::to_json(*fast))
            __builtin_trap();
    }
    auto rec = authwall::record_from_json(text, "fuzz");
    if (!rec)
        return 0;
    auto json = authwall::to_json(*rec);
    auto again = authwall::record_from_json(json, "fuzz-again");
    if (!again || authwall::to_json(*again) != json)
        __builtin_trap();
    return 0;
}
