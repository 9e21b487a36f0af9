// SPDX-License-Identifier: Apache-2.0
// The reference counts of the mirror's address elements: several sessions
// may share a login address, and only the last one's end removes it.
// <run_dir>/nft/addr-<address>/<id>, each file holding the session's
// deadline, guarded by <run_dir>/nft/lock. Internal to core/nft.
#pragma once

#include "core/base/fd.h"
#include "core/base/net.h"
#include "core/base/result.h"
#include "core/nft/mirror.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace authwall::nft {

class AddrRefs {
  public:
    // Takes the lock (blocking) for the life of the object.
    static Result<AddrRefs> lock(const std::filesystem::path& run_dir);
    // Adds the session; returns the latest deadline among the address's
    // sessions (0 = one of them has none).
    uint64_t add(const IpAddress& a, uint64_t id, uint64_t deadline_ns);
    // Removes the session; returns how many sessions keep the address.
    size_t remove(const IpAddress& a, uint64_t id);
    // Replaces every count with the expected sessions.
    void rebuild(const std::vector<MirrorSession>& expected);

  private:
    std::filesystem::path addr_dir(const IpAddress& a) const { return dir_ / ("addr-" + a.str()); }
    size_t count(const IpAddress& a) const;
    uint64_t latest_deadline(const IpAddress& a) const;

    std::filesystem::path dir_;
    Fd lock_;
};

} // namespace authwall::nft
