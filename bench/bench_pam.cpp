// Session open+close latency (the work pam_authwall.so does), p50 and p99,
// with 0, 1 000 and 10 000 sessions already open, side by side in one run;
// then the user layer's cost at open (looking up and writing users[uid]):
// the same cycles with the layer off and on, in interleaved rounds.
// Background sessions are real state: a cgroup, a map entry and a record
// each. cgroupfs mode. Needs root; throwaway cgroup, pins and run dir.
#include "bench/harness.h"
#include "core/policy_file.h"
#include "core/policy_index.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

using namespace authwall;
using namespace authwall::bench;
namespace fs = std::filesystem;

int main(int argc, char** argv)
{
    int iterations = 400;
    std::vector<int> sizes = {0, 1000, 10000};
    bool quick = false;
    if (int rc =
            parse_bench_args(argc, argv, "bench_pam", "session open+close latency with 0, 1000 and 10000 open", &quick);
        rc >= 0)
        return rc;
    if (quick) {
        iterations = 100;
        sizes = {0, 1000, 3000};
    }
    BenchRoot bench;
    char tmpl[] = "/tmp/authwall-bench-run-XXXXXX";
    if (!mkdtemp(tmpl))
        die("mkdtemp");
    Config config;
    config.pin_dir = bench.pin_dir();
    config.run_dir = fs::path(tmpl);
    config.enforcement_roots = {bench.root()};
    config.exempt_users = {"root"};

    auto compiled = bench.install_policy_text(
        "[policy.ssh]\nmatch.services = [\"sshd\"]\n[policy.ssh.egress]\ndefault = \"deny\"\n", &config);
    // Background sessions, added up to each size in turn.
    fs::path background = bench.cgroup("background");
    int open_now = 0;
    std::printf("bench_pam: %d open+close cycles per size (cgroupfs mode)\n\n", iterations);
    std::printf("%10s %10s %10s %14s\n", "sessions", "p50 ms", "p99 ms", "p99 vs 0");
    double base_p99 = 0;
    for (int size : sizes) {
        for (; open_now < size; ++open_now) {
            fs::path cg = background / ("s" + std::to_string(open_now));
            if (auto st = cgroup_create(cg); !st)
                die(st.error().message());
            bench.add_recorded_session(cg, "login", compiled.ids.at("ssh"), "ssh", config.run_dir);
        }
        auto ms = open_close_latencies(config, iterations, "192.0.2.7");
        double p50 = percentile(ms, 0.50), p99 = percentile(ms, 0.99);
        if (size == 0)
            base_p99 = p99;
        std::printf("%10d %10.3f %10.3f %14.2f\n", size, p50, p99, p99 / base_p99);
    }
    // The cycles log in as nobody (uid 65534), outside the layer's default
    // uid range: bring it in for the "on" side.
    Config off = config, on = config;
    off.user_layer = false;
    on.users_max_uid = 65534;
    const int rounds = quick ? 3 : 7;
    std::vector<double> p50_off, p50_on, p99_off, p99_on;
    for (int r = 0; r < rounds; ++r) {
        auto a = open_close_latencies(off, iterations / 2, "192.0.2.7");
        auto b = open_close_latencies(on, iterations / 2, "192.0.2.7");
        p50_off.push_back(percentile(a, 0.50));
        p99_off.push_back(percentile(a, 0.99));
        p50_on.push_back(percentile(b, 0.50));
        p99_on.push_back(percentile(b, 0.99));
    }
    std::vector<double> ratios;
    for (int r = 0; r < rounds; ++r)
        ratios.push_back(p50_on[static_cast<size_t>(r)] / p50_off[static_cast<size_t>(r)]);
    auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
    std::printf("\nuser layer at open+close (%d rounds of %d, medians): off p50 %.3f ms p99 %.3f ms; "
                "on p50 %.3f ms p99 %.3f ms; p50 on/off %.3f (rounds %.3f-%.3f)\n",
                rounds, iterations / 2, median(p50_off), median(p99_off), median(p50_on), median(p99_on),
                median(ratios), *lo, *hi);
    std::error_code ec;
    fs::remove_all(tmpl, ec);
    return 0;
}
