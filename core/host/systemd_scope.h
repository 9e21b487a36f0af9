// SPDX-License-Identifier: Apache-2.0
// Login session cgroups on a host whose init is systemd: a transient scope
// unit in authwall.slice, made over D-Bus (sd-bus) so systemd stays the
// single writer of its cgroup tree. Without systemd as PID 1 the PAM path
// makes a plain directory below the enforcement root instead.
#pragma once

#include "core/base/result.h"

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <string>

namespace authwall {

inline constexpr const char* kSessionSlice = "authwall.slice";

// Whether systemd is the running init: /run/systemd/system exists, which is
// sd_booted()'s test, made here without linking libsystemd (the PAM module
// asks on every login).
inline bool systemd_is_init()
{
    return ::faccessat(AT_FDCWD, "/run/systemd/system/", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

// Starts the transient scope `unit` (e.g. "authwall-alice-1a2b3c.scope")
// in `slice` holding `pid`, and waits (up to `timeout_ms`) until its start
// job has finished: on return the process is in the scope's cgroup.
Status start_transient_scope(const std::string& unit, const std::string& slice, pid_t pid,
                             const std::string& description, int timeout_ms = 10000);

// Stops a unit and waits for the job (its processes are killed per its
// KillMode). A unit that is already gone is fine.
Status stop_unit(const std::string& unit, int timeout_ms = 10000);

} // namespace authwall
