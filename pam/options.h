// SPDX-License-Identifier: Apache-2.0
// The arguments of pam_authwall.so's module line.
#pragma once

#include "core/base/identity.h"
#include "core/base/result.h"
#include "core/policy/config.h"

#include <filesystem>
#include <string>
#include <vector>

namespace authwall {

struct PamOptions {
    bool fail_closed = true;
    bool fail_explicit = false; // fail= given: it overrides [pam] fail of the configuration
    RhostMode rhost = RhostMode::Lax;
    std::filesystem::path config = kDefaultConfigPath;
    bool config_explicit = false;
    bool debug = false;
    // user_only: this stack only arms the user layer (the non-interactive
    // stack: cron, at, sudo, the user manager): no login session is made.
    bool user_only = false;
};

// fail=closed|open rhost=lax|strict|kernel config=PATH user_only debug; anything
// else is an error.
Result<PamOptions> parse_pam_options(const std::vector<std::string>& args);

} // namespace authwall
