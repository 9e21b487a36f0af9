// SPDX-License-Identifier: Apache-2.0
// The contract between pam_authwall.so and its helper libraries, which hold
// what only some logins need and which pulls in large libraries:
//
//   <dir of pam_authwall.so>/pam_authwall/nft_mirror.so     libnftables, libnftnl, libmnl
//   <dir of pam_authwall.so>/pam_authwall/systemd_scope.so  libsystemd (D-Bus)
//
// The directory sits beside the module (as Linux-PAM's pam_filter/ does),
// so the build tree and an installation find their helpers the same way and
// no path is compiled in. Each helper exports one C function returning its
// table; the module refuses a table of another build (`abi`). Helpers are
// built from the same tree with the same compiler and share the C++ runtime
// with the module, so the functions take and return authwall's own types.
// No exception leaves a helper.
#pragma once

#include "core/base/result.h"
#include "core/session/record.h"

#include <sys/types.h>

#include <filesystem>
#include <string>

namespace authwall::pam_helpers {

#ifndef AUTHWALL_VERSION
#error "AUTHWALL_VERSION must be defined (the project's version)"
#endif
// Raise the number when a table or a type it passes changes (2: the
// SessionRecord has the authentication's correlation and claims).
inline constexpr const char kAbi[] = "authwall " AUTHWALL_VERSION " pam helpers 2";
inline constexpr const char kDirectory[] = "pam_authwall";

struct NftMirror {
    const char* abi;
    Status (*add)(const std::filesystem::path& run_dir, const SessionRecord& record);
    Status (*remove)(const std::filesystem::path& run_dir, const SessionRecord& record);
};
inline constexpr const char kNftMirrorFile[] = "nft_mirror.so";
inline constexpr const char kNftMirrorSymbol[] = "authwall_pam_nft_mirror";

struct SystemdScope {
    const char* abi;
    Status (*start_transient_scope)(const std::string& unit, const std::string& slice, pid_t pid,
                                    const std::string& description);
    Status (*stop_unit)(const std::string& unit);
};
inline constexpr const char kSystemdScopeFile[] = "systemd_scope.so";
inline constexpr const char kSystemdScopeSymbol[] = "authwall_pam_systemd_scope";

} // namespace authwall::pam_helpers

extern "C" {
const authwall::pam_helpers::NftMirror* authwall_pam_nft_mirror();
const authwall::pam_helpers::SystemdScope* authwall_pam_systemd_scope();
}
