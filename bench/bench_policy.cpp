// Policy size: compile + swap time, and connect() cost, at 10, 1 000,
// 10 000 and 100 000 rules, side by side in one run. Ratios are against the
// 10-rule policy. Needs root; throwaway cgroup and pins.
#include "bench/harness.h"
#include "core/policy/policy_file.h"

#include <chrono>
#include <cstdio>
#include <map>

using namespace authwall;
using namespace authwall::bench;

int main(int argc, char** argv)
{
    int connects = 20000, rounds = 5;
    bool quick = false;
    if (int rc =
            parse_bench_args(argc, argv, "bench_policy", "compile+swap time and connect() cost by policy size", &quick);
        rc >= 0)
        return rc;
    if (quick) {
        connects = 3000;
        rounds = 3;
    }
    BenchRoot bench;
    const std::vector<int> sizes = {10, 1000, 10000, 100000};
    std::map<int, std::vector<Policy>> parsed;
    for (int n : sizes) {
        auto load = parse_policy_text(policy_with_rules("p", n), "bench");
        if (!load.ok())
            die(load.errors[0].str());
        parsed[n] = load.policies;
    }
    auto session = bench.cgroup("s");
    std::map<int, std::vector<double>> compile_ms, swap_ms, rate;
    bool session_open = false;
    for (int r = 0; r < rounds; ++r) {
        for (int n : sizes) {
            auto known = bench.maps().policy_ids();
            auto t0 = std::chrono::steady_clock::now();
            auto compiled = compile_policies(parsed[n], Fallback{}, known ? *known : std::map<std::string, uint32_t>{});
            auto t1 = std::chrono::steady_clock::now();
            if (!compiled)
                die(compiled.error().message());
            if (auto st = bench.maps().install_policies(*compiled); !st)
                die(st.error().message());
            auto t2 = std::chrono::steady_clock::now();
            compile_ms[n].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            swap_ms[n].push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
            if (!session_open) {
                bench.open_session(session, compiled->ids.at("p"));
                session_open = true;
            }
            rate[n].push_back(in_child(session, [connects] { return connect_rate(connects); }));
        }
        std::fprintf(stderr, "round %d/%d done\n", r + 1, rounds);
    }
    double base_total = median(compile_ms[10]) + median(swap_ms[10]);
    double base_rate = median(rate[10]);
    std::printf("bench_policy: %d rounds, %d connects per measurement\n\n", rounds, connects);
    std::printf("%8s %12s %10s %12s %8s %12s %12s\n", "rules", "compile ms", "swap ms", "total ratio", "", "connect/s",
                "cost ratio");
    for (int n : sizes) {
        double c = median(compile_ms[n]), s = median(swap_ms[n]), cr = median(rate[n]);
        // cost ratio: time per connect relative to the 10-rule policy
        std::printf("%8d %12.2f %10.2f %12.1f %8s %12.0f %12.3f\n", n, c, s, (c + s) / base_total, "", cr,
                    base_rate / cr);
    }
    return 0;
}
