// Data plane cost, measured side by side in one run and printed as ratios:
// connect() rate on loopback and TCP throughput (iperf3) from a process in
//   baseline  no programs attached
//   rules10   a session whose policy has 10 rules
//   rules10k  a session whose policy has 10 000 rules
//   outside   programs attached, the process in no session
// Scenarios are interleaved over several rounds; medians are reported.
// Needs root. Uses a throwaway cgroup and pin directory, like the tests.
#include "core/cgroup.h"
#include "core/datapath.h"
#include "core/maps.h"
#include "core/policy_compiler.h"
#include "core/policy_file.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

using namespace authwall;
namespace fs = std::filesystem;

namespace {

int g_connects = 20000;
int g_rounds = 5;
int g_iperf_seconds = 2;

void die(const std::string& what)
{
    std::fprintf(stderr, "bench: %s\n", what.c_str());
    std::exit(1);
}

void lo_up()
{
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    ioctl(s, SIOCGIFFLAGS, &ifr);
    ifr.ifr_flags |= IFF_UP;
    ioctl(s, SIOCSIFFLAGS, &ifr);
    ::close(s);
}

// Runs fn in a child placed in `cgroup` and a fresh netns; returns its double.
double in_child(const fs::path& cgroup, const std::function<double()>& fn)
{
    int p[2];
    if (pipe(p) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        ::close(p[0]);
        if (!cgroup_move_pid(cgroup, getpid()).ok() || unshare(CLONE_NEWNET) != 0)
            _exit(1);
        lo_up();
        double v = fn();
        (void)!::write(p[1], &v, sizeof(v));
        _exit(0);
    }
    ::close(p[1]);
    double v = -1;
    if (::read(p[0], &v, sizeof(v)) != sizeof(v))
        v = -1;
    ::close(p[0]);
    waitpid(pid, nullptr, 0);
    return v;
}

// connect() calls per second to a closed loopback port (each is refused by
// the stack with a RST, after every hook has run).
double connect_rate()
{
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < g_connects; ++i) {
        int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0 || errno != ECONNREFUSED)
            _exit(2);
        ::close(s);
    }
    std::chrono::duration<double> d = std::chrono::steady_clock::now() - start;
    return g_connects / d.count();
}

// iperf3 client throughput (bits/s) against a server in the same netns.
double throughput()
{
    pid_t server = fork();
    if (server == 0) {
        int devnull = ::open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("iperf3", "iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", "5201", static_cast<char*>(nullptr));
        _exit(127);
    }
    usleep(200000);
    std::string cmd = "iperf3 -c 127.0.0.1 -p 5201 -t " + std::to_string(g_iperf_seconds) +
                      " -J 2>/dev/null | sed -n '/\"sum_received\"/,/}/p' | grep -m1 bits_per_second";
    FILE* f = popen(cmd.c_str(), "r");
    char buf[256] = {};
    double bps = -1;
    if (f && fgets(buf, sizeof(buf), f)) {
        const char* colon = std::strchr(buf, ':');
        if (colon)
            bps = std::atof(colon + 1);
    }
    if (f)
        pclose(f);
    kill(server, SIGKILL);
    waitpid(server, nullptr, 0);
    return bps;
}

std::string policy_with_rules(int rules)
{
    // The traffic measured (127.0.0.1 tcp) matches one allow; the rest are
    // other /32s and ports, as a large real policy would have.
    std::string text = "[policy.p" + std::to_string(rules) + ".egress]\ndefault = \"deny\"\nallow = [\"127.0.0.1 tcp\"";
    for (int i = 1; i < rules; ++i)
        text += ", \"10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) + "." +
                std::to_string(i & 255) + " tcp " + std::to_string(1 + i % 60000) + "\"";
    return text + "]\n";
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

} // namespace

int main(int argc, char** argv)
{
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick") {
            g_connects = 3000;
            g_rounds = 3;
            g_iperf_seconds = 1;
        } else if (a == "--help") {
            std::printf("usage: bench_datapath [--quick]\n  measures connect() rate and TCP throughput with and "
                        "without authwall's programs; prints ratios\n");
            return 0;
        }
    }
    if (geteuid() != 0)
        die("needs root");
    auto mount = find_cgroup2_mount();
    if (!mount)
        die(mount.error().message());
    std::string suffix = std::to_string(getpid());
    fs::path root = mount->mount_point / ("authwall-bench-" + suffix);
    fs::path plain = mount->mount_point / ("authwall-bench-plain-" + suffix);
    fs::path pins = "/sys/fs/bpf/authwall-bench-" + suffix;
    for (auto p : {root, plain, root / "s10", root / "s10k", root / "outside"})
        if (auto st = cgroup_create(p); !st)
            die(st.error().message());

    DatapathOptions opt;
    opt.pin_dir = pins;
    opt.enforcement_roots = {root};
    auto report = install_datapath(opt);
    if (!report)
        die(report.error().message());
    auto maps = PinnedMaps::open(pins);
    if (!maps)
        die(maps.error().message());
    auto load = parse_policy_text(policy_with_rules(10) + policy_with_rules(10000), "bench");
    if (!load.ok())
        die(load.errors[0].str());
    auto compiled = compile_policies(load.policies, Fallback{});
    if (!compiled)
        die(compiled.error().message());
    if (auto st = maps->install_policies(*compiled); !st)
        die(st.error().message());
    for (auto [cg, name] : {std::pair{root / "s10", "p10"}, std::pair{root / "s10k", "p10000"}}) {
        SessionEntry e;
        e.policy_id = compiled->ids.at(name);
        if (auto st = maps->insert_session(*cgroup_id(cg), *cgroup_level(*mount, cg), e); !st)
            die(st.error().message());
    }

    struct Scenario {
        const char* name;
        fs::path cgroup;
        std::vector<double> rate, bps;
    };
    std::vector<Scenario> scenarios = {{"baseline (no programs)", plain, {}, {}},
                                       {"session, 10 rules", root / "s10", {}, {}},
                                       {"session, 10 000 rules", root / "s10k", {}, {}},
                                       {"outside any session", root / "outside", {}, {}}};
    std::printf("bench_datapath: %d connects x %d rounds, iperf3 %d s; %zu trie entries installed\n", g_connects,
                g_rounds, g_iperf_seconds, compiled->entries.size());
    for (int r = 0; r < g_rounds; ++r) {
        for (auto& s : scenarios) {
            s.rate.push_back(in_child(s.cgroup, connect_rate));
            s.bps.push_back(in_child(s.cgroup, throughput));
        }
        std::fprintf(stderr, "round %d/%d done\n", r + 1, g_rounds);
    }

    double base_rate = median(scenarios[0].rate), base_bps = median(scenarios[0].bps);
    std::printf("\n%-26s %14s %8s %14s %8s\n", "scenario", "connect/s", "ratio", "TCP Gbit/s", "ratio");
    for (auto& s : scenarios) {
        double rate = median(s.rate), bps = median(s.bps);
        std::printf("%-26s %14.0f %8.3f %14.2f %8.3f\n", s.name, rate, rate / base_rate, bps / 1e9, bps / base_bps);
    }

    uninstall_datapath(pins).ok();
    for (auto p : {root / "s10", root / "s10k", root / "outside", root, plain})
        cgroup_remove_tree(p).ok();
    return 0;
}
