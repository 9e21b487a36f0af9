// SPDX-License-Identifier: Apache-2.0
// Confining a daemon once its setup is done: capabilities reduced to what
// its event loop needs, then a seccomp allowlist of system calls. The
// lists belong to each daemon (loader/syscalls.h, cgroupd/syscalls.h);
// this is only the mechanism.
#pragma once

#include "core/base/result.h"

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace authwall {

enum class SeccompMode {
    Kill, // a call outside the allowlist kills the process (the default)
    Log,  // allowed, and logged by the kernel (audit / kmsg): for debugging
    Off,  // no filter
};

// "kill", "log" or "off".
Result<SeccompMode> parse_seccomp_mode(std::string_view text);
const char* seccomp_mode_name(SeccompMode mode);

// Keeps only the capabilities in `keep` (CAP_* numbers) in the effective and
// permitted sets, clears the inheritable and ambient sets and drops every
// other capability from the bounding set; sets no_new_privs. Capabilities
// the process does not have are not gained.
Status keep_only_capabilities(std::span<const int> keep);

// What any of authwall's event-loop daemons makes through glibc, libstdc++,
// spdlog and libsystemd (sd_notify, the journal): memory, files and
// directories, epoll/timerfd/signalfd/inotify, unix and netlink sockets.
// Not in it: anything that starts a process or a thread, mounts, loads
// modules, traces or changes identity.
extern const std::string_view kDaemonBaseSyscalls[];
extern const size_t kDaemonBaseSyscallCount;

// Installs a filter allowing exactly the named system calls (names unknown
// to this architecture or libseccomp are ignored); anything else is handled
// per `mode`. Needs no_new_privs (keep_only_capabilities sets it).
Status install_syscall_allowlist(std::initializer_list<std::span<const std::string_view>> allowed, SeccompMode mode);

// The whole of it for one of authwall's daemons, once its setup is done:
// keep_only_capabilities(keep), then an allowlist of kDaemonBaseSyscalls
// plus the daemon's own `syscalls`.
Status confine_daemon(std::span<const int> keep, std::span<const std::string_view> syscalls, SeccompMode mode);

// The --seccomp option's help, the same for every daemon.
inline constexpr const char* kSeccompOptionHelp =
    "after setup, a system call outside the allowlist: kill (default), log (allow and let the kernel log it; for "
    "debugging) or off (env AUTHWALL_SECCOMP)";

} // namespace authwall
