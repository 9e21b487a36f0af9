// Data plane cost, measured side by side in one run and printed as ratios:
// connect() rate on loopback and TCP throughput (iperf3) from a process in
//   baseline  no programs attached
//   rules10   a session whose policy has 10 rules
//   rules10k  a session whose policy has 10 000 rules
//   outside   programs attached, the process in no session
//   user layer (docs/SECURITY.md): the process runs as a confined user —
//     in a session whose policy is the user's (one lookup by uid more),
//     in a session whose policy is another (a second decision),
//     in no session (the user layer alone, as under the user manager)
// Scenarios are interleaved over several rounds; medians are reported.
// Needs root. Uses a throwaway cgroup and pin directory, like the tests.
#include "bench/harness.h"
#include "core/policy_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

using namespace authwall;
using namespace authwall::bench;

namespace {

int g_connects = 20000;
int g_rounds = 5;
int g_iperf_seconds = 2;

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

} // namespace

int main(int argc, char** argv)
{
    bool quick = false;
    if (int rc = parse_bench_args(argc, argv, "bench_datapath",
                                  "connect() rate and TCP throughput with and without authwall's programs, as ratios",
                                  &quick);
        rc >= 0)
        return rc;
    if (quick) {
        g_connects = 3000;
        g_rounds = 3;
        g_iperf_seconds = 1;
    }
    BenchRoot bench;
    auto compiled = bench.install_policy_text(policy_with_rules("p10", 10) + policy_with_rules("p10k", 10000) +
                                              policy_with_rules("q10", 10));
    auto s10 = bench.cgroup("s10"), s10k = bench.cgroup("s10k"), outside = bench.cgroup("outside");
    bench.open_session(s10, compiled.ids.at("p10"));
    bench.open_session(s10k, compiled.ids.at("p10k"));
    // Two confined users (uids no account uses): one held to p10, the
    // sessions' policy, one to q10, another policy of the same size.
    constexpr uid_t same_user = 4242001, other_user = 4242002;
    if (!bench.maps().set_user(same_user, compiled.ids.at("p10")).ok() ||
        !bench.maps().set_user(other_user, compiled.ids.at("q10")).ok())
        die("cannot write the users map");

    struct Scenario {
        const char* name;
        std::filesystem::path cgroup;
        uid_t uid;
        std::vector<double> rate, bps;
    };
    std::vector<Scenario> scenarios = {{"baseline (no programs)", bench.plain_cgroup(), 0, {}, {}},
                                       {"session, 10 rules", s10, 0, {}, {}},
                                       {"session, 10 000 rules", s10k, 0, {}, {}},
                                       {"outside any session", outside, 0, {}, {}},
                                       {"session + user, same policy", s10, same_user, {}, {}},
                                       {"session + user, other policy", s10, other_user, {}, {}},
                                       {"user layer only", outside, other_user, {}, {}}};
    std::printf("bench_datapath: %d connects x %d rounds, iperf3 %d s; %zu trie entries installed\n", g_connects,
                g_rounds, g_iperf_seconds, compiled.entries.size());
    for (int r = 0; r < g_rounds; ++r) {
        for (auto& s : scenarios) {
            s.rate.push_back(in_child(
                s.cgroup, [] { return connect_rate(g_connects); }, s.uid));
            s.bps.push_back(in_child(s.cgroup, throughput, s.uid));
        }
        std::fprintf(stderr, "round %d/%d done\n", r + 1, g_rounds);
    }
    double base_rate = median(scenarios[0].rate), base_bps = median(scenarios[0].bps);
    std::printf("\n%-30s %14s %8s %14s %8s %16s\n", "scenario", "connect/s", "ratio", "TCP Gbit/s", "ratio",
                "connect spread");
    for (auto& s : scenarios) {
        double rate = median(s.rate), bps = median(s.bps);
        auto [lo, hi] = std::minmax_element(s.rate.begin(), s.rate.end());
        std::printf("%-30s %14.0f %8.3f %14.2f %8.3f %7.3f-%-7.3f\n", s.name, rate, rate / base_rate, bps / 1e9,
                    bps / base_bps, *lo / base_rate, *hi / base_rate);
    }
    // The user layer's own cost: the same session, root (no user layer)
    // against a confined user's process.
    double session = median(scenarios[1].rate);
    std::printf("\nuser layer vs session only (connect/s ratio): same policy %.3f, other policy %.3f\n",
                median(scenarios[4].rate) / session, median(scenarios[5].rate) / session);
    return 0;
}
