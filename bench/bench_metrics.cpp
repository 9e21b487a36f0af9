// SPDX-License-Identifier: Apache-2.0
// What metrics cost: one read of every metric (core/metrics, what `authctl
// metrics` and cgroupd's file do) with N open sessions, without and with
// the nft mirror's drift (nft_mirror = true: a session record read per
// session and a netlink dump of the sets, in a network namespace of its
// own); and what folding a session's counters into its policy's totals
// adds to its removal (PinnedMaps::retire_session against remove_session,
// on every close). Needs root. Uses a throwaway cgroup and pin directory.
#include "bench/harness.h"
#include "core/metrics/metrics.h"
#include "core/nft/mirror.h"

#include <sched.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

using namespace authwall;
using namespace authwall::bench;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kFakeIds = 0x7000000000ull; // cgroup ids no cgroup has

double ms_since(Clock::time_point start)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The median time of one read_metrics, in milliseconds.
double read_ms(const Config& config, int rounds)
{
    std::vector<double> times;
    for (int i = 0; i < rounds; ++i) {
        auto start = Clock::now();
        auto snap = read_metrics(config);
        times.push_back(ms_since(start));
        if (!snap)
            die(snap.error().message());
    }
    return median(times);
}

void insert_sessions(PinnedMaps& maps, uint32_t policy, uint64_t from, uint64_t to)
{
    SessionEntry e;
    e.policy_id = policy;
    for (uint64_t i = from; i < to; ++i)
        if (auto st = maps.insert_session(kFakeIds + i, 1, e); !st)
            die(st.error().message());
}

// Microseconds per removal of `n` sessions, by remove_session or retire_session.
double removal_us(PinnedMaps& maps, uint32_t policy, int n, bool fold)
{
    insert_sessions(maps, policy, 0, static_cast<uint64_t>(n));
    auto start = Clock::now();
    for (int i = 0; i < n; ++i) {
        uint64_t id = kFakeIds + static_cast<uint64_t>(i);
        if (auto st = fold ? maps.retire_session(id) : maps.remove_session(id); !st)
            die(st.error().message());
    }
    return ms_since(start) * 1000 / n;
}

} // namespace

int main(int argc, char** argv)
{
    bool quick = false;
    if (int rc = parse_bench_args(argc, argv, "bench_metrics",
                                  "one read of every metric with N sessions; the fold's cost on a session's removal",
                                  &quick);
        rc >= 0)
        return rc;
    if (unshare(CLONE_NEWNET) != 0) // the nft table of this bench is its own
        die("unshare the network namespace");
    BenchRoot bench;
    uint32_t policy = bench.install_policy_text(policy_with_rules("p", 10)).ids.at("p");
    Config config;
    config.pin_dir = bench.pin_dir();
    config.run_dir = std::filesystem::temp_directory_path() / ("authwall-bench-metrics-" + std::to_string(getpid()));
    const int rounds = quick ? 3 : 7;
    std::printf("bench_metrics: median of %d reads (ms)\n%10s %12s %16s\n", rounds, "sessions", "metrics",
                "with nft drift");
    uint64_t have = 0;
    for (uint64_t n : {uint64_t{0}, uint64_t{1000}, uint64_t{10000}, quick ? uint64_t{10000} : uint64_t{60000}}) {
        insert_sessions(bench.maps(), policy, have, n);
        have = std::max(have, n);
        config.nft_mirror = false;
        double plain = read_ms(config, rounds);
        if (auto st = nft_ensure_table(); !st)
            die(st.error().message());
        config.nft_mirror = true;
        std::printf("%10llu %12.2f %16.2f\n", static_cast<unsigned long long>(have), plain, read_ms(config, rounds));
    }
    for (uint64_t i = 0; i < have; ++i)
        bench.maps().remove_session(kFakeIds + i).ok();
    nft_delete_table().ok();

    const int n = quick ? 2000 : 20000;
    double removed = removal_us(bench.maps(), policy, n, false);
    double retired = removal_us(bench.maps(), policy, n, true);
    std::printf("\nremoval of a session: %.2f us; with its counters folded into the policy's totals: %.2f us "
                "(x%.2f, %d sessions)\n",
                removed, retired, retired / removed, n);
    std::filesystem::remove_all(config.run_dir);
    return 0;
}
