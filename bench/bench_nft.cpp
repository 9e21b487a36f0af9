// SPDX-License-Identifier: Apache-2.0
// Session open+close with the nftables mirror off and on, at 0 and 10 000
// sessions, side by side in one run; and, as the baseline of prior art
// (pam_authnft-style), one `nft -f` transaction per open and per close of
// the session's address at the same sizes. Background sessions are real
// state: a cgroup, a map entry, a record and (mirror on) their elements in
// every set. Runs in a private network namespace: the host's ruleset is
// never touched. Needs root.
#include "bench/harness.h"
#include "core/nft/mirror.h"

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>

using namespace authwall;
using namespace authwall::bench;
namespace fs = std::filesystem;

namespace {

// `nft -f` of one command, as a shell-out per session would do it.
void nft_f(const std::string& command)
{
    FILE* p = popen("nft -f -", "w");
    if (!p)
        die("popen nft");
    std::fputs(command.c_str(), p);
    if (pclose(p) != 0)
        die("nft -f failed: " + command);
}

std::vector<double> nft_f_latencies(int iterations)
{
    std::vector<double> out;
    for (int i = 0; i < iterations; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        nft_f("add element inet authwall session_addrs_v4 { 192.0.2.7 timeout 1d }\n");
        nft_f("delete element inet authwall session_addrs_v4 { 192.0.2.7 }\n");
        out.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return out;
}

IpAddress background_addr(int i)
{
    return IpAddress::v4(0x0a000000u | static_cast<uint32_t>(i + 1)); // 10.0.0.1, ...
}

} // namespace

int main(int argc, char** argv)
{
    int iterations = 300;
    int big = 10000;
    bool quick = false;
    if (int rc = parse_bench_args(argc, argv, "bench_nft",
                                  "session open+close with the nft mirror off/on and per-session nft -f, at 0 and "
                                  "10000 sessions",
                                  &quick);
        rc >= 0)
        return rc;
    if (quick) {
        iterations = 80;
        big = 3000;
    }
    if (unshare(CLONE_NEWNET) != 0)
        die("unshare(CLONE_NEWNET): a private network namespace is needed (root?)");
    BenchRoot bench;
    char tmpl[] = "/tmp/authwall-bench-run-XXXXXX";
    if (!mkdtemp(tmpl))
        die("mkdtemp");
    Config off;
    off.pin_dir = bench.pin_dir();
    off.run_dir = fs::path(tmpl);
    off.enforcement_roots = {bench.root()};
    off.exempt_users = {"root"};
    Config on = off;
    on.nft_mirror = true;
    auto compiled = bench.install_policy_text(
        "[policy.ssh]\nmatch.services = [\"sshd\"]\n[policy.ssh.egress]\ndefault = \"deny\"\n", &off);
    if (auto st = nft_ensure_table(); !st)
        die(st.error().message());

    std::printf("bench_nft: %d open+close cycles per cell (cgroupfs mode, private netns)\n\n", iterations);
    std::printf("%-22s %10s %10s %10s\n", "mode", "sessions", "p50 ms", "p99 ms");
    fs::path background = bench.cgroup("background");
    int open_now = 0;
    std::map<std::pair<std::string, int>, std::pair<double, double>> cell;
    for (int size : {0, big}) {
        auto t0 = std::chrono::steady_clock::now();
        for (; open_now < size; ++open_now) {
            fs::path cg = background / ("s" + std::to_string(open_now));
            if (auto st = cgroup_create(cg); !st)
                die(st.error().message());
            uint64_t id =
                bench.add_recorded_session(cg, SessionKind::Login, compiled.ids.at("ssh"), "ssh", off.run_dir);
            MirrorSession m{id, "nobody", "ssh", background_addr(open_now), 0};
            if (auto st = nft_mirror_add(on.run_dir, m); !st)
                die(st.error().message());
        }
        if (size > 0)
            std::fprintf(stderr, "(%d background sessions made in %.1f s)\n", size,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        auto report = [&](const std::string& mode, const std::vector<double>& ms) {
            double p50 = percentile(ms, 0.50), p99 = percentile(ms, 0.99);
            cell[{mode, size}] = {p50, p99};
            std::printf("%-22s %10d %10.3f %10.3f\n", mode.c_str(), size, p50, p99);
            std::fflush(stdout);
        };
        report("mirror off", open_close_latencies(off, iterations, "192.0.2.7"));
        report("mirror on", open_close_latencies(on, iterations, "192.0.2.7"));
        report("nft -f per session", nft_f_latencies(iterations));
    }
    auto ratio = [&](const std::string& mode, int size, int base, bool p99) {
        auto a = cell[{mode, size}], b = cell[{mode, base}];
        return p99 ? a.second / b.second : a.first / b.first;
    };
    std::printf("\nratios (p50 / p99):\n");
    std::printf("  mirror on, %d vs 0 sessions:       %.2f / %.2f   (goal: within 1.5)\n", big,
                ratio("mirror on", big, 0, false), ratio("mirror on", big, 0, true));
    std::printf("  mirror on vs off, at %d sessions:  %.2f / %.2f\n", big,
                cell[{"mirror on", big}].first / cell[{"mirror off", big}].first,
                cell[{"mirror on", big}].second / cell[{"mirror off", big}].second);
    std::printf("  nft -f per session vs mirror on, at %d: %.2f / %.2f\n", big,
                cell[{"nft -f per session", big}].first / cell[{"mirror on", big}].first,
                cell[{"nft -f per session", big}].second / cell[{"mirror on", big}].second);
    std::printf("  nft -f per session, %d vs 0 sessions: %.2f / %.2f\n", big,
                ratio("nft -f per session", big, 0, false), ratio("nft -f per session", big, 0, true));
    std::error_code ec;
    fs::remove_all(tmpl, ec);
    return 0;
}
