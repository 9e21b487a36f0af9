// SPDX-License-Identifier: Apache-2.0
// Reading numbers out of JSON that authwall's own processes wrote (session
// records, the policy index) without trusting that they did: a number must
// be an integer of the right sign and range, never a float or an
// out-of-range value cast into one (undefined behaviour).
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

namespace authwall::json_fields {

// A field that is missing or not what it must be; the message names it.
struct BadField : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// An unsigned integer up to `max`; `fallback` when missing, if given.
inline uint64_t unsigned_field(const nlohmann::json& j, const char* key, uint64_t max,
                               std::optional<uint64_t> fallback = std::nullopt)
{
    auto it = j.find(key);
    if (it == j.end()) {
        if (fallback)
            return *fallback;
        throw BadField(std::string("missing \"") + key + "\"");
    }
    if (!it->is_number_unsigned() || it->get<uint64_t>() > max)
        throw BadField(std::string("\"") + key + "\" is not an unsigned integer up to " + std::to_string(max));
    return it->get<uint64_t>();
}

// A signed integer that fits an int.
inline int int_field(const nlohmann::json& j, const char* key)
{
    auto it = j.find(key);
    if (it == j.end())
        throw BadField(std::string("missing \"") + key + "\"");
    bool fits = false;
    if (it->is_number_unsigned())
        fits = it->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int>::max());
    else if (it->is_number_integer())
        fits = it->get<int64_t>() >= std::numeric_limits<int>::min() &&
               it->get<int64_t>() <= std::numeric_limits<int>::max();
    if (!fits)
        throw BadField(std::string("\"") + key + "\" is not an integer in the range of int");
    return static_cast<int>(it->get<int64_t>());
}

} // namespace authwall::json_fields
