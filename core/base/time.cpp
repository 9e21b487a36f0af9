// SPDX-License-Identifier: Apache-2.0
#include "core/base/time.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

namespace authwall {

uint64_t realtime_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

std::string rfc3339_utc(uint64_t ns)
{
    time_t secs = static_cast<time_t>(ns / 1'000'000'000ULL);
    tm utc{};
    gmtime_r(&secs, &utc);
    char buf[32];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &utc);
    char out[48];
    std::snprintf(out, sizeof(out), "%s.%03lluZ", buf, static_cast<unsigned long long>((ns / 1'000'000ULL) % 1000));
    return out;
}

std::string random_hex(size_t bytes)
{
    std::string raw(bytes, '\0');
    size_t got = 0;
    while (got < bytes) {
        ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += static_cast<size_t>(n);
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes * 2);
    for (unsigned char c : raw) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

} // namespace authwall
