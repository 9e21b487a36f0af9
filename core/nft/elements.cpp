// SPDX-License-Identifier: Apache-2.0
#include "core/nft/elements.h"

#include "core/base/time.h"

#include <linux/netfilter/nf_tables.h>

#include <array>
#include <cstring>
#include <string_view>
#include <utility>

namespace authwall::nft {

namespace {

void put_id(std::vector<uint8_t>& key, uint64_t id)
{
    // cgroupsv2 is host-endian, as `socket cgroupv2` loads it.
    uint8_t raw[8];
    std::memcpy(raw, &id, sizeof(id));
    key.insert(key.end(), raw, raw + 8);
}

void put_addr(std::vector<uint8_t>& key, const IpAddress& a)
{
    const auto& b = a.bytes();
    if (a.is_v4())
        key.insert(key.end(), b.begin() + 12, b.end());
    else
        key.insert(key.end(), b.begin(), b.end());
}

} // namespace

Elem session_elem(uint64_t id)
{
    Elem e{"sessions", {}, "sessions " + std::to_string(id)};
    put_id(e.key, id);
    return e;
}

Elem pair_elem(uint64_t id, const IpAddress& a)
{
    Elem e{a.is_v4() ? "sessions_v4" : "sessions_v6", {}, {}};
    e.label = e.set + " " + std::to_string(id) + " . " + a.str();
    put_id(e.key, id);
    put_addr(e.key, a);
    return e;
}

Elem addr_elem(const IpAddress& a)
{
    Elem e{a.is_v4() ? "session_addrs_v4" : "session_addrs_v6", {}, {}};
    e.label = e.set + " " + a.str();
    put_addr(e.key, a);
    return e;
}

IpAddress addr_from(const uint8_t* p, size_t len)
{
    std::array<uint8_t, 16> b{};
    if (len == 4) {
        b[10] = b[11] = 0xff;
        std::memcpy(b.data() + 12, p, 4);
    } else {
        std::memcpy(b.data(), p, 16);
    }
    return IpAddress(b);
}

Op del(Elem e)
{
    return Op{NFT_MSG_DELSETELEM, std::move(e), 0, {}};
}

uint64_t timeout_ms_until(uint64_t deadline_ns)
{
    uint64_t now = realtime_ns();
    if (deadline_ns == 0)
        return kNftDefaultTimeoutS * 1000;
    if (deadline_ns <= now + 1'000'000'000ULL)
        return 1000;
    return (deadline_ns - now) / 1'000'000;
}

// nft reads back a comment of up to 128 bytes (NFTNL_UDATA_COMMENT_MAXLEN):
// a longer one would list but not load again from `nft list ruleset`. The
// authentication's correlation, then its claims, are added each only when
// whole: a cut token would join the wrong authentication.
std::string comment_of(const MirrorSession& s)
{
    constexpr size_t kMax = 127; // and its NUL
    std::string c = "user=" + (s.user.empty() ? std::string("-") : s.user) + " policy=" + s.policy +
                    " session=" + std::to_string(s.id);
    c = c.substr(0, kMax);
    const std::pair<std::string_view, const std::string*> extras[] = {{" auth=", &s.auth_correlation},
                                                                      {" claims=", &s.auth_claims}};
    for (const auto& [key, value] : extras)
        if (!value->empty() && c.size() + key.size() + value->size() <= kMax)
            c.append(key).append(*value);
    return c;
}

std::vector<Op> add_ops(const MirrorSession& s, uint64_t addr_deadline_ns)
{
    std::vector<Op> ops;
    uint64_t timeout = timeout_ms_until(s.deadline_ns);
    std::string comment = comment_of(s);
    ops.push_back({NFT_MSG_NEWSETELEM, session_elem(s.id), timeout, comment});
    if (s.rhost) {
        ops.push_back({NFT_MSG_NEWSETELEM, pair_elem(s.id, *s.rhost), timeout, comment});
        ops.push_back({NFT_MSG_NEWSETELEM, addr_elem(*s.rhost), timeout_ms_until(addr_deadline_ns), comment});
    }
    return ops;
}

} // namespace authwall::nft
