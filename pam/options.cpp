// SPDX-License-Identifier: Apache-2.0
#include "pam/options.h"

namespace authwall {

Result<PamOptions> parse_pam_options(const std::vector<std::string>& args)
{
    PamOptions o;
    for (const auto& a : args) {
        if (a == "fail=closed" || a == "fail=open") {
            o.fail_closed = a == "fail=closed";
            o.fail_explicit = true;
        } else if (a == "rhost=lax")
            o.rhost = RhostMode::Lax;
        else if (a == "rhost=strict")
            o.rhost = RhostMode::Strict;
        else if (a == "rhost=kernel")
            o.rhost = RhostMode::Kernel;
        else if (a.starts_with("config=") && a.size() > 7 && a[7] == '/') {
            o.config = a.substr(7);
            o.config_explicit = true;
        } else if (a == "debug")
            o.debug = true;
        else if (a == "user_only")
            o.user_only = true;
        else
            return Error::msg("parse module arguments", "'" + printable(a) + "'",
                              "unknown argument (expected fail=closed|open, rhost=lax|strict|kernel, config=/PATH, "
                              "user_only, debug)");
    }
    return o;
}

} // namespace authwall
