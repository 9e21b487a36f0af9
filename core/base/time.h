// SPDX-License-Identifier: Apache-2.0
// Wall-clock time as the records and events write it, and random
// identifiers (correlation ids, temporary file names).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace authwall {

// CLOCK_REALTIME in nanoseconds.
uint64_t realtime_ns();
// "2026-11-29T14:47:23.123Z".
std::string rfc3339_utc(uint64_t realtime_ns);
// `bytes` bytes of getrandom(2), as 2 × `bytes` lower-case hex digits.
std::string random_hex(size_t bytes);

} // namespace authwall
