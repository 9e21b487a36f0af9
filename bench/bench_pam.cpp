// Session open+close latency (the work pam_authwall.so does), p50 and p99,
// with 0, 1 000 and 10 000 sessions already open, side by side in one run.
// Background sessions are real state: a cgroup, a map entry and a record
// each. cgroupfs mode. Needs root; throwaway cgroup, pins and run dir.
#include "bench/harness.h"
#include "core/policy_file.h"
#include "core/policy_index.h"

#include <sys/wait.h>
#include <unistd.h>

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
    std::error_code ec;
    fs::remove_all(tmpl, ec);
    return 0;
}
