// SPDX-License-Identifier: Apache-2.0
// The login extras of pam_authwall.so: the nft mirror and systemd's D-Bus
// API, each loaded from its helper library (pam/helpers.h) the first time a
// login needs it, never before. A helper that cannot be loaded is an error
// of the operation that needed it, so the login fails as fail= says.
#pragma once

#include "core/session/login.h"
#include "pam/helpers.h"

namespace authwall {

class LazyLoginExtras final : public LoginExtras {
  public:
    Status nft_mirror_add(const std::filesystem::path& run_dir, const SessionRecord& record) override;
    Status nft_mirror_remove(const std::filesystem::path& run_dir, const SessionRecord& record) override;
    Result<MirrorRepair> nft_mirror_repair(const std::filesystem::path& run_dir, const PinnedMaps& maps) override;
    Status start_transient_scope(const std::string& unit, const std::string& slice, pid_t pid,
                                 const std::string& description) override;
    Status stop_unit(const std::string& unit) override;

  private:
    Result<const pam_helpers::NftMirror*> nft_mirror();
    Result<const pam_helpers::SystemdScope*> systemd_scope();

    const pam_helpers::NftMirror* nft_mirror_ = nullptr;
    const pam_helpers::SystemdScope* systemd_scope_ = nullptr;
};

// Where the helper `file` of this module is: pam_authwall/<file> in the
// directory of the module's own file (symbolic links resolved).
Result<std::filesystem::path> pam_helper_path(const char* file);

} // namespace authwall
