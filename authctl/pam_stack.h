// SPDX-License-Identifier: Apache-2.0
// Reading a PAM service's session stack the way libpam does — following
// "@include FILE", "include SERVICE" and "substack SERVICE" — to answer
// whether pam_authwall really enforces: is it a session line, after
// pam_systemd, with a control that fails the login when it fails?
#pragma once

#include "core/base/result.h"

#include <filesystem>
#include <string>
#include <vector>

namespace authwall {

struct PamLine {
    std::string file;
    unsigned line = 0;
    std::string type;    // session, auth, ...
    std::string control; // required, optional, [success=ok default=die], ...
    std::string module;  // as written
    bool dash = false;   // "-session": silently skipped when the module is missing
};

struct Finding {
    enum class Level { Ok, Warning, Error } level;
    std::string message;
};

// The session lines of `service` in order, includes expanded. Like libpam,
// a service missing from `pam_dir` is looked up in `vendor_dir` (Debian
// ships systemd-user in /usr/lib/pam.d); includes resolve in `pam_dir`.
Result<std::vector<PamLine>> pam_session_stack(const std::filesystem::path& pam_dir, const std::string& service,
                                               const std::filesystem::path& vendor_dir = "/usr/lib/pam.d");

// The doctor's verdict on a session stack.
std::vector<Finding> check_pam_stack(const std::vector<PamLine>& stack);

} // namespace authwall
