// Session open+close latency (the work pam_authwall.so does), p50 and p99,
// with 0, 1 000 and 10 000 sessions already open, side by side in one run.
// Background sessions are real state: a cgroup, a map entry and a record
// each. cgroupfs mode. Needs root; throwaway cgroup, pins and run dir.
#include "bench/harness.h"
#include "core/policy_file.h"
#include "core/policy_index.h"
#include "core/session_lifecycle.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

using namespace authwall;
using namespace authwall::bench;
namespace fs = std::filesystem;

namespace {

class NullSink final : public EventSink {
  public:
    void session_event(const std::string&, const SessionRecord&, const std::string&) override {}
};

// Runs `iterations` open+close cycles in a child (which is the leader that
// moves in and out); returns the latencies in milliseconds through a pipe.
std::vector<double> measure(const Config& config, int iterations)
{
    auto out = collect_from_child([&](const std::function<void(double)>& emit) {
        NullSink sink;
        OpenRequest req{"nobody", "sshd", "192.0.2.7", "pts/0", getpid()};
        for (int i = 0; i < iterations; ++i) {
            auto t0 = std::chrono::steady_clock::now();
            auto opened = open_login_session(req, config, RhostMode::Lax, sink);
            if (opened.error)
                _exit(2);
            auto closed = close_login_session(opened.result->record->id, getpid(), "nobody", config, sink);
            if (!closed || !closed->closed)
                _exit(3);
            emit(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
    });
    if (static_cast<int>(out.size()) != iterations)
        die("measurement child failed after " + std::to_string(out.size()) + " cycles");
    return out;
}

double percentile(std::vector<double> v, double q)
{
    std::sort(v.begin(), v.end());
    return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

} // namespace

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
        auto ms = measure(config, iterations);
        double p50 = percentile(ms, 0.50), p99 = percentile(ms, 0.99);
        if (size == 0)
            base_p99 = p99;
        std::printf("%10d %10.3f %10.3f %14.2f\n", size, p50, p99, p99 / base_p99);
    }
    std::error_code ec;
    fs::remove_all(tmpl, ec);
    return 0;
}
