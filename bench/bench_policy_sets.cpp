// SPDX-License-Identifier: Apache-2.0
// Named sets at scale: 100 sets shared by 1 000 policies against the same
// rules written inline, one rule string per entry. Each round reads the
// text (sets resolved, rules expanded), compiles and swaps the generation,
// both variants interleaved; medians and the ratio sets / inline. Both give
// the same trie entries (checked). Needs root; throwaway cgroup and pins.
#include "bench/harness.h"
#include "core/policy/compiler.h"
#include "core/policy/policy_file.h"

#include <chrono>
#include <cstdio>

using namespace authwall;
using namespace authwall::bench;

namespace {

constexpr int kSets = 100, kPolicies = 1000, kRulesPerPolicy = 5, kPrefixesPerSet = 4;

std::string prefix(int set, int i)
{
    return "10." + std::to_string(set) + "." + std::to_string(i) + ".0/24";
}

// Policy p uses sets p, p+7, p+14, ... (mod 100), each with tcp {22,443}.
int set_of(int policy, int rule)
{
    return (policy + 7 * rule) % kSets;
}

std::string with_sets()
{
    std::string out = "[sets]\n";
    for (int s = 0; s < kSets; ++s) {
        out += "net" + std::to_string(s) + " = [";
        for (int i = 0; i < kPrefixesPerSet; ++i)
            out += std::string(i ? ", " : "") + "\"" + prefix(s, i) + "\"";
        out += "]\n";
    }
    out += "admin = \"tcp {22,443}\"\n";
    for (int p = 0; p < kPolicies; ++p) {
        out += "[policy.p" + std::to_string(p) + ".egress]\ndefault = \"deny\"\nallow = [";
        for (int r = 0; r < kRulesPerPolicy; ++r)
            out += std::string(r ? ", " : "") + "\"@net" + std::to_string(set_of(p, r)) + " @admin\"";
        out += "]\n";
    }
    return out;
}

std::string inline_rules()
{
    std::string out;
    for (int p = 0; p < kPolicies; ++p) {
        out += "[policy.p" + std::to_string(p) + ".egress]\ndefault = \"deny\"\nallow = [";
        bool first = true;
        for (int r = 0; r < kRulesPerPolicy; ++r)
            for (int i = 0; i < kPrefixesPerSet; ++i)
                for (int port : {22, 443}) {
                    out += std::string(first ? "" : ", ") + "\"" + prefix(set_of(p, r), i) + " tcp " +
                           std::to_string(port) + "\"";
                    first = false;
                }
        out += "]\n";
    }
    return out;
}

struct Times {
    std::vector<double> read_ms, compile_ms, swap_ms;
    size_t entries = 0;
};

void one_round(BenchRoot& bench, const std::string& text, Times& t)
{
    using clock = std::chrono::steady_clock;
    auto ms = [](clock::time_point a, clock::time_point b) {
        return std::chrono::duration<double, std::milli>(b - a).count();
    };
    auto t0 = clock::now();
    auto load = parse_policy_text(text, "bench.toml");
    auto t1 = clock::now();
    if (!load.ok())
        die(load.errors[0].str());
    auto known = bench.maps().policy_ids();
    auto compiled = compile_policies(load.policies, Fallback{}, known ? *known : std::map<std::string, uint32_t>{});
    auto t2 = clock::now();
    if (!compiled)
        die(compiled.error().message());
    if (auto st = bench.maps().install_policies(*compiled); !st)
        die(st.error().message());
    auto t3 = clock::now();
    t.read_ms.push_back(ms(t0, t1));
    t.compile_ms.push_back(ms(t1, t2));
    t.swap_ms.push_back(ms(t2, t3));
    t.entries = compiled->entries.size();
}

void print_row(const char* name, const Times& t, double base_total)
{
    double r = median(t.read_ms), c = median(t.compile_ms), s = median(t.swap_ms);
    std::printf("%-8s %10.1f %12.1f %9.1f %10.1f %8.2f %9zu\n", name, r, c, s, r + c + s,
                base_total > 0 ? (r + c + s) / base_total : 1.0, t.entries);
}

} // namespace

int main(int argc, char** argv)
{
    int rounds = 7;
    bool quick = false;
    if (int rc = parse_bench_args(argc, argv, "bench_policy_sets",
                                  "read+compile+swap: 100 named sets shared by 1 000 policies vs inline rules", &quick);
        rc >= 0)
        return rc;
    if (quick)
        rounds = 3;
    BenchRoot bench;
    const std::string sets_text = with_sets(), inline_text = inline_rules();
    Times sets, inline_;
    for (int r = 0; r < rounds; ++r) {
        // Interleaved, the order alternating, so drift touches both alike.
        if (r % 2 == 0) {
            one_round(bench, inline_text, inline_);
            one_round(bench, sets_text, sets);
        } else {
            one_round(bench, sets_text, sets);
            one_round(bench, inline_text, inline_);
        }
        std::fprintf(stderr, "round %d/%d done\n", r + 1, rounds);
    }
    if (sets.entries != inline_.entries)
        die("the two variants compiled to different entries: " + std::to_string(sets.entries) + " vs " +
            std::to_string(inline_.entries));
    std::printf("bench_policy_sets: %d sets, %d policies x %d rules (%d prefixes x 2 ports each); %d rounds, medians\n",
                kSets, kPolicies, kRulesPerPolicy, kPrefixesPerSet, rounds);
    std::printf("text: %zu bytes with sets, %zu inline\n\n", sets_text.size(), inline_text.size());
    std::printf("%-8s %10s %12s %9s %10s %8s %9s\n", "variant", "read ms", "compile ms", "swap ms", "total ms", "ratio",
                "entries");
    double base = median(inline_.read_ms) + median(inline_.compile_ms) + median(inline_.swap_ms);
    print_row("inline", inline_, base);
    print_row("sets", sets, base);
    return 0;
}
