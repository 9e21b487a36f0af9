// SPDX-License-Identifier: Apache-2.0
#include "core/daemon/confinement.h"

#include <linux/capability.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>

namespace authwall {

Result<SeccompMode> parse_seccomp_mode(std::string_view text)
{
    if (text == "kill")
        return SeccompMode::Kill;
    if (text == "log")
        return SeccompMode::Log;
    if (text == "off")
        return SeccompMode::Off;
    return Error::msg("parse", "seccomp mode", "'" + std::string(text) + "' is not kill, log or off");
}

const char* seccomp_mode_name(SeccompMode mode)
{
    switch (mode) {
    case SeccompMode::Kill:
        return "kill";
    case SeccompMode::Log:
        return "log";
    case SeccompMode::Off:
        return "off";
    }
    return "?";
}

Status keep_only_capabilities(std::span<const int> keep)
{
    int last = CAP_LAST_CAP;
    if (std::ifstream f("/proc/sys/kernel/cap_last_cap"); f)
        f >> last;
    auto kept = [&](int cap) { return std::find(keep.begin(), keep.end(), cap) != keep.end(); };
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return Error::sys("set", "no_new_privs", errno);
    for (int cap = 0; cap <= last; ++cap) {
        // EINVAL: a capability this kernel does not know; EPERM: we lack
        // CAP_SETPCAP, so the bounding set cannot shrink (checked below).
        if (!kept(cap) && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL && errno != EPERM)
            return Error::sys("drop", "capability " + std::to_string(cap) + " from the bounding set", errno);
    }
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);

    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
    if (::syscall(SYS_capget, &header, data) != 0)
        return Error::sys("read", "capabilities", errno);
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
        uint32_t mask = 0;
        for (int cap : keep)
            if (cap / 32 == i)
                mask |= 1u << (cap % 32);
        data[i].permitted &= mask;
        data[i].effective &= mask;
        data[i].inheritable = 0;
    }
    if (::syscall(SYS_capset, &header, data) != 0)
        return Error::sys("reduce", "capabilities", errno);
    return {};
}

// clang-format off
const std::string_view kDaemonBaseSyscalls[] = {
    // memory, threads' bookkeeping, time, exit
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "futex", "set_robust_list", "rseq",
    "set_tid_address", "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "getrandom",
    "sched_yield", "exit", "exit_group", "restart_syscall", "rt_sigreturn", "rt_sigprocmask", "rt_sigaction",
    "sigaltstack", "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "capget",
    "prlimit64", "uname", "tgkill", // abort() raises through tgkill
    // files and directories
    "read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "close", "fstat", "newfstatat", "statx",
    "statfs", "fstatfs", "openat", "access", "faccessat", "faccessat2", "getdents64", "fcntl", "dup", "dup3",
    "ioctl", "readlink", "readlinkat", "rename", "renameat", "renameat2", "unlink", "unlinkat", "mkdir",
    "mkdirat", "fsync", "fdatasync", "fchmod", "chmod", "fchmodat", "ftruncate", "flock",
    // event loop
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "poll", "ppoll", "select", "pselect6", "timerfd_create",
    "timerfd_settime", "timerfd_gettime", "signalfd4", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
    // sd_notify, the journal, syslog, netlink
    "socket", "connect", "bind", "sendmsg", "sendto", "recvmsg", "recvfrom", "getsockname", "getsockopt",
    "setsockopt", "shutdown", "memfd_create",
};
// clang-format on
const size_t kDaemonBaseSyscallCount = std::size(kDaemonBaseSyscalls);

Status install_syscall_allowlist(std::initializer_list<std::span<const std::string_view>> lists, SeccompMode mode)
{
    if (mode == SeccompMode::Off)
        return {};
    struct CtxDeleter {
        void operator()(void* c) const { seccomp_release(c); }
    };
    std::unique_ptr<void, CtxDeleter> ctx(
        seccomp_init(mode == SeccompMode::Kill ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_LOG));
    if (!ctx)
        return Error::msg("create", "seccomp filter", "seccomp_init failed");
    for (auto allowed : lists)
        for (auto name : allowed) {
            int nr = seccomp_syscall_resolve_name(std::string(name).c_str());
            if (nr == __NR_SCMP_ERROR)
                continue; // not a system call on this architecture
            if (int r = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0); r < 0)
                return Error::sys("allow", std::string(name), -r);
        }
    if (int r = seccomp_load(ctx.get()); r < 0)
        return Error::sys("load", "seccomp filter", -r);
    return {};
}

Status confine_daemon(std::span<const int> keep, std::span<const std::string_view> syscalls, SeccompMode mode)
{
    if (auto st = keep_only_capabilities(keep); !st)
        return st;
    return install_syscall_allowlist({std::span(kDaemonBaseSyscalls, kDaemonBaseSyscallCount), syscalls}, mode);
}

} // namespace authwall
