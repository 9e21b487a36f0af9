// SPDX-License-Identifier: Apache-2.0
#include "core/nft/refcounts.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <fstream>

namespace authwall::nft {

namespace fs = std::filesystem;

Result<AddrRefs> AddrRefs::lock(const fs::path& run_dir)
{
    AddrRefs r;
    r.dir_ = run_dir / "nft";
    std::error_code ec;
    fs::create_directories(r.dir_, ec);
    if (ec)
        return Error::sys("create", r.dir_.string(), ec.value());
    ::chmod(r.dir_.c_str(), 0700);
    r.lock_ = Fd(::open((r.dir_ / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!r.lock_)
        return Error::sys("open", (r.dir_ / "lock").string(), errno);
    if (::flock(r.lock_.get(), LOCK_EX) != 0)
        return Error::sys("lock", (r.dir_ / "lock").string(), errno);
    return r;
}

uint64_t AddrRefs::add(const IpAddress& a, uint64_t id, uint64_t deadline_ns)
{
    std::error_code ec;
    fs::create_directories(addr_dir(a), ec);
    std::ofstream(addr_dir(a) / std::to_string(id)) << deadline_ns << "\n";
    return latest_deadline(a);
}

size_t AddrRefs::remove(const IpAddress& a, uint64_t id)
{
    std::error_code ec;
    fs::remove(addr_dir(a) / std::to_string(id), ec);
    size_t left = count(a);
    if (left == 0)
        fs::remove(addr_dir(a), ec);
    return left;
}

void AddrRefs::rebuild(const std::vector<MirrorSession>& expected)
{
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_, ec))
        if (entry.path().filename().string().starts_with("addr-"))
            fs::remove_all(entry.path(), ec);
    for (const auto& s : expected)
        if (s.rhost)
            add(*s.rhost, s.id, s.deadline_ns);
}

size_t AddrRefs::count(const IpAddress& a) const
{
    std::error_code ec;
    size_t n = 0;
    for (auto it = fs::directory_iterator(addr_dir(a), ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        ++n;
    return n;
}

uint64_t AddrRefs::latest_deadline(const IpAddress& a) const
{
    std::error_code ec;
    uint64_t latest = 1;
    for (auto it = fs::directory_iterator(addr_dir(a), ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        uint64_t d = 0;
        std::ifstream(it->path()) >> d;
        if (d == 0)
            return 0;
        latest = std::max(latest, d);
    }
    return latest;
}

} // namespace authwall::nft
