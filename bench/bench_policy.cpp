// SPDX-License-Identifier: Apache-2.0
// Policy size: compile + swap time, and connect() cost, at 10, 1 000,
// 10 000 and 100 000 rules and for a policy of four port ranges, side by
// side in one run. Ratios are against the 10-rule policy. Then the trie
// entries a port range takes: one per port before ranges were stored as
// blocks, one per block of every size, and one per block of the sizes the
// compiler uses. Needs root; throwaway cgroup and pins.
#include "bench/harness.h"
#include "core/policy/compiler.h"
#include "core/policy/policy_file.h"

#include <chrono>
#include <cstdio>
#include <map>

using namespace authwall;
using namespace authwall::bench;

namespace {

// Four range rules; 127.0.0.1 tcp 9 (what connect_rate reaches) is inside
// the first. Per port, they took 1 023 + 3 x 64 512 entries.
const char* kRangePolicy = R"([policy.p.egress]
default = "deny"
allow = ["127.0.0.1 tcp 1-1023", "10.0.0.0/8 tcp 1024-65535", "10.0.0.0/8 udp 1024-65535"]
deny = ["10.9.0.0/16 tcp 1024-65535"]
)";
constexpr int kRanges = -4; // the range policy's row

void print_range_entries(const std::vector<Policy>& range_policy)
{
    std::printf("\ntrie entries per port range: one per port before; one per block of 2^k ports with every k;\n"
                "one per block of 1, 16, 256 or 4096 ports now (kPortBlockStep %u)\n",
                kPortBlockStep);
    std::printf("%12s %10s %10s %8s\n", "range", "per port", "every k", "now");
    for (auto [first, last] : {std::pair{22, 22}, {443, 444}, {8000, 8999}, {1, 1023}, {1024, 65535}, {1, 65534}}) {
        std::string range = std::to_string(first) + "-" + std::to_string(last);
        PortRange r{static_cast<uint16_t>(first), static_cast<uint16_t>(last)};
        std::printf("%12s %10d %10zu %8zu\n", range.c_str(), last - first + 1, port_blocks(r, 1).size(),
                    port_blocks(r).size());
    }
    auto compiled = compile_policies(range_policy, Fallback{});
    if (!compiled)
        die(compiled.error().message());
    std::printf("the range policy (4 rules): %d entries per port before, %zu now (with 2 meta entries)\n",
                1023 + 3 * 64512 + 2, compiled->entries.size());
}

} // namespace

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
    const std::vector<int> sizes = {10, 1000, 10000, 100000, kRanges};
    std::map<int, std::vector<Policy>> parsed;
    for (int n : sizes) {
        auto load = parse_policy_text(n == kRanges ? kRangePolicy : policy_with_rules("p", n), "bench");
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
        std::string label = n == kRanges ? "4 ranges" : std::to_string(n);
        std::printf("%8s %12.2f %10.2f %12.1f %8s %12.0f %12.3f\n", label.c_str(), c, s, (c + s) / base_total, "", cr,
                    base_rate / cr);
    }
    print_range_entries(parsed[kRanges]);
    return 0;
}
