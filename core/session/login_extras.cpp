// SPDX-License-Identifier: Apache-2.0
// The login extras linked into the program (authwall_core): the daemons,
// authctl, the tests and the benches call core/nft/mirror.cpp and
// core/host/systemd_scope.cpp directly. pam_authwall.so has its own, which
// loads them from helper libraries (pam/lazy_extras.cpp).
#include "core/nft/mirror.h"
#include "core/session/mirror.h"
#include "core/session/login.h"
#include "core/host/systemd_scope.h"

namespace authwall {

namespace {

class LinkedLoginExtras final : public LoginExtras {
  public:
    Status nft_mirror_add(const std::filesystem::path& run_dir, const SessionRecord& record) override
    {
        return authwall::nft_mirror_add(run_dir, mirror_session_of(record));
    }
    Status nft_mirror_remove(const std::filesystem::path& run_dir, const SessionRecord& record) override
    {
        auto m = mirror_session_of(record);
        return authwall::nft_mirror_remove(run_dir, m.id, m.rhost);
    }
    Result<MirrorRepair> nft_mirror_repair(const std::filesystem::path& run_dir, const PinnedMaps& maps) override
    {
        auto expected = mirror_expected(maps, run_dir);
        if (!expected)
            return expected.error();
        auto drift = nft_reconcile(run_dir, *expected);
        if (!drift)
            return drift.error();
        return MirrorRepair{drift->table_missing, drift->missing.size(), drift->stray.size()};
    }
    Status start_transient_scope(const std::string& unit, const std::string& slice, pid_t pid,
                                 const std::string& description) override
    {
        return authwall::start_transient_scope(unit, slice, pid, description);
    }
    Status stop_unit(const std::string& unit) override { return authwall::stop_unit(unit); }
};

} // namespace

LoginExtras& linked_login_extras()
{
    static LinkedLoginExtras extras;
    return extras;
}

OpenOutcome open_login_session(const OpenRequest& request, const Config& config, RhostMode rhost_mode,
                               EventSink& events)
{
    return open_login_session(request, config, rhost_mode, events, linked_login_extras());
}

Result<CloseResult> close_login_session(const CloseHint& hint, pid_t caller, const std::string& user,
                                        const Config& config, EventSink& events)
{
    return close_login_session(hint, caller, user, config, events, linked_login_extras());
}

} // namespace authwall
