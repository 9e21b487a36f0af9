// SPDX-License-Identifier: Apache-2.0
// What a session needs only in some setups, behind an interface.
#pragma once

#include "core/base/result.h"
#include "core/session/record.h"

#include <sys/types.h>

#include <filesystem>
#include <string>

namespace authwall {

class PinnedMaps;

// What a repair of the nft mirror found wrong (and put right).
struct MirrorRepair {
    bool table_missing = false; // the table was gone and is recreated
    size_t missing = 0;         // elements added
    size_t stray = 0;           // elements removed
    bool empty() const { return !table_missing && !missing && !stray; }
};

// What a login needs only in some setups, and which pulls in large
// libraries: the nftables mirror (nft_mirror = true: libnftables, libnftnl,
// libmnl) and systemd's D-Bus API (libsystemd: a transient scope on a
// systemd host where logind made no session, or stopping one from another
// process). The daemons, authctl and the tests link them
// (linked_login_extras(), in authwall_session_extras); pam_authwall.so loads them
// from its helper libraries on first use (pam/helpers.h), so a login that
// needs neither loads neither. An extra that cannot be loaded fails like
// the operation it stands for.
class LoginExtras {
  public:
    virtual ~LoginExtras() = default;
    // nft_mirror_add / nft_mirror_remove of the session `record` describes.
    virtual Status nft_mirror_add(const std::filesystem::path& run_dir, const SessionRecord& record) = 0;
    virtual Status nft_mirror_remove(const std::filesystem::path& run_dir, const SessionRecord& record) = 0;
    // nft_reconcile against mirror_expected (session/mirror.h): the daemons'
    // repair. A login never repairs; the PAM module's extras refuse it.
    virtual Result<MirrorRepair> nft_mirror_repair(const std::filesystem::path& run_dir, const PinnedMaps& maps) = 0;
    // start_transient_scope / stop_unit (core/host/systemd_scope.h).
    virtual Status start_transient_scope(const std::string& unit, const std::string& slice, pid_t pid,
                                         const std::string& description) = 0;
    virtual Status stop_unit(const std::string& unit) = 0;
};

// The extras linked into the program: core/nft/mirror.cpp and
// core/host/systemd_scope.cpp called directly. Defined in
// authwall_session_extras, which the PAM module does not link.
LoginExtras& linked_login_extras();

} // namespace authwall
