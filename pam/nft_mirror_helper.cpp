// SPDX-License-Identifier: Apache-2.0
// pam_authwall/nft_mirror.so: the nftables mirror for pam_authwall.so,
// loaded when a login opens or closes with nft_mirror = true (pam/helpers.h).
#include "core/nft/mirror.h"
#include "core/session/mirror.h"
#include "pam/helpers.h"

#include <exception>

namespace authwall {

namespace {

template <class F> Status guarded(const char* what, F&& f) noexcept
{
    try {
        return f();
    } catch (const std::exception& e) {
        return Error::msg(what, "nft mirror", e.what());
    } catch (...) {
        return Error::msg(what, "nft mirror", "internal error");
    }
}

Status add(const std::filesystem::path& run_dir, const SessionRecord& record)
{
    return guarded("add to", [&] { return nft_mirror_add(run_dir, mirror_session_of(record)); });
}

Status remove(const std::filesystem::path& run_dir, const SessionRecord& record)
{
    return guarded("remove from", [&] {
        auto m = mirror_session_of(record);
        return nft_mirror_remove(run_dir, m.id, m.rhost);
    });
}

} // namespace

} // namespace authwall

extern "C" __attribute__((visibility("default"))) const authwall::pam_helpers::NftMirror* authwall_pam_nft_mirror()
{
    static const authwall::pam_helpers::NftMirror table{authwall::pam_helpers::kAbi, &authwall::add, &authwall::remove};
    return &table;
}
