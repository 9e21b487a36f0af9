// SPDX-License-Identifier: Apache-2.0
// Memory the kernel holds for sessions and confined users, as the kernel
// itself reports it (the `memlock` line of each map's fdinfo: for a hash
// map that is not preallocated, what its elements use now). Printed for an
// empty data plane at the default capacity (65 536), then with N sessions
// (entry + counters) and N users in the user layer, per session and per
// user. Then what the packet hooks' per-socket memory (sock_cache) costs a
// socket that carries a flow: the socket's option memory (SO_MEMINFO
// optmem, where the kernel charges local storage) before and after its
// first packet. Needs root. Uses a throwaway cgroup and pin directory.
#include "bench/harness.h"
#include "core/dataplane/pins.h"

#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

using namespace authwall;
using namespace authwall::bench;

namespace {

// The memlock the kernel reports for the map behind `fd`.
uint64_t map_memory(int fd)
{
    std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
    std::string key;
    uint64_t value = 0;
    while (in >> key) {
        if (key == "memlock:") {
            in >> value;
            return value;
        }
        in.ignore(4096, '\n');
    }
    die("no memlock line in the fdinfo of map fd " + std::to_string(fd));
}

struct Usage {
    uint64_t sessions = 0, stats = 0, users = 0;
    uint64_t total() const { return sessions + stats + users; }
};

Usage usage(const PinnedMaps& maps)
{
    return {map_memory(maps.map_fd(MapId::Sessions)), map_memory(maps.map_fd(MapId::SessionStats)),
            map_memory(maps.map_fd(MapId::Users))};
}

uint32_t optmem(int fd)
{
    uint32_t info[SK_MEMINFO_VARS] = {};
    socklen_t len = sizeof(info);
    if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &len) != 0)
        _exit(3);
    return info[SK_MEMINFO_OPTMEM];
}

// In a child placed in a session: the option memory an established TCP
// socket gains with its first packet (the data plane makes its storage).
double socket_storage_bytes()
{
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uint32_t before = optmem(c);
    if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(l, 1) != 0 ||
        ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::send(c, "x", 1, 0) != 1)
        _exit(2);
    return static_cast<double>(optmem(c) - before);
}

} // namespace

int main(int argc, char** argv)
{
    bool quick = false;
    if (int rc = parse_bench_args(argc, argv, "bench_memory",
                                  "kernel memory of the sessions, counters and user layer, per session and per user",
                                  &quick);
        rc >= 0)
        return rc;
    const int n = quick ? 2000 : 20000;
    BenchRoot bench;
    auto compiled = bench.install_policy_text(policy_with_rules("p", 10));
    uint32_t policy = compiled.ids.at("p");
    long cpus = sysconf(_SC_NPROCESSORS_CONF);

    Usage empty = usage(bench.maps());
    // Entries keyed by made-up cgroup ids at level 1 (the data plane never
    // meets them): what a session costs is its two elements.
    SessionEntry e;
    e.policy_id = policy;
    for (int i = 0; i < n; ++i)
        if (auto st = bench.maps().insert_session(0x7000000000ull + static_cast<uint64_t>(i), 1, e); !st)
            die(st.error().message());
    for (int i = 0; i < n; ++i)
        if (auto st = bench.maps().set_user(4200000 + static_cast<uint32_t>(i), policy); !st)
            die(st.error().message());
    Usage full = usage(bench.maps());

    std::printf("bench_memory: %ld CPUs, capacity 65536 sessions and users, %d of each inserted\n\n", cpus, n);
    std::printf("%-24s %14s %14s %14s\n", "map", "empty (bytes)", "with N (bytes)", "per entry");
    auto row = [&](const char* name, uint64_t a, uint64_t b) {
        std::printf("%-24s %14llu %14llu %14.1f\n", name, static_cast<unsigned long long>(a),
                    static_cast<unsigned long long>(b), static_cast<double>(b - a) / n);
    };
    row("sessions", empty.sessions, full.sessions);
    row("session_stats", empty.stats, full.stats);
    row("users", empty.users, full.users);
    std::printf("\nper session (entry + counters): %.1f B; per confined user: %.1f B; empty data plane: %llu B\n",
                static_cast<double>(full.sessions + full.stats - empty.sessions - empty.stats) / n,
                static_cast<double>(full.users - empty.users) / n, static_cast<unsigned long long>(empty.total()));
    for (int i = 0; i < n; ++i)
        bench.maps().remove_session(0x7000000000ull + static_cast<uint64_t>(i)).ok();

    auto session = bench.cgroup("s");
    bench.open_session(session, policy);
    std::printf("per socket that carries a flow (sock_cache, charged to the socket, freed with it): %.0f B "
                "(the same socket with no programs attached: %.0f B)\n",
                in_child(session, socket_storage_bytes), in_child(bench.plain_cgroup(), socket_storage_bytes));
    return 0;
}
