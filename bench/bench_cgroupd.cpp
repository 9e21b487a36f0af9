// SPDX-License-Identifier: Apache-2.0
// authwall-cgroupd latencies, measured on the real daemon:
//   start: exec until the daemon logs "started" (configuration, the full
//          start-up sweep, the inotify watches), with 10 000 and 100 000
//          sessions open (--quick: 1 000 and 10 000); median of 3 rounds;
//   reap: a login session's processes are killed (no close); time until its
//         record is gone — with 10 000 other sessions open;
//   enroll: 1 000 container cgroups created at once; time until all are
//         enrolled (map entries present).
// Needs root; throwaway cgroup tree, private pins sized for the largest
// phase, run directory on tmpfs (/dev/shm, as /run is on production hosts).
// Everything is removed at exit, also when the bench dies on the way.
#include "bench/harness.h"
#include "core/policy/policy_file.h"
#include "core/policy/index.h"
#include "core/session/record.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

using namespace authwall;
using namespace authwall::bench;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string read_text(const fs::path& file)
{
    std::ifstream in(file);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// What the bench makes beyond BenchRoot's own cgroups: the daemon, session
// processes, the session cgroups and the run directory. die() ends the run
// with exit(), which destroys statics but not locals, so this lives in a
// static and undoes everything either way.
class Teardown {
  public:
    ~Teardown() { run(); }
    void run()
    {
        stop_daemon();
        for (pid_t p : children_) {
            kill(p, SIGKILL);
            waitpid(p, nullptr, 0);
        }
        children_.clear();
        for (auto it = cgroups_.rbegin(); it != cgroups_.rend(); ++it)
            ::rmdir(it->c_str()); // gone already (reaped) is fine
        cgroups_.clear();
        std::error_code ec;
        if (!dir_.empty())
            fs::remove_all(dir_, ec);
        dir_.clear();
    }
    void stop_daemon()
    {
        if (daemon_ > 0) {
            kill(daemon_, SIGTERM);
            waitpid(daemon_, nullptr, 0);
        }
        daemon_ = -1;
    }
    void set_dir(const fs::path& dir) { dir_ = dir; }
    void set_daemon(pid_t pid) { daemon_ = pid; }
    void add_child(pid_t pid) { children_.push_back(pid); }
    void reaped_child(pid_t pid) { std::erase(children_, pid); }
    void add_cgroup(const fs::path& cg) { cgroups_.push_back(cg); }

  private:
    pid_t daemon_ = -1;
    std::vector<pid_t> children_;
    std::vector<fs::path> cgroups_;
    fs::path dir_;
};

// Starts authwall-cgroupd and returns once it logged "started", with the
// time that took. The bench's sessions are all alive and recorded, so a
// sweep that reaps, enrolls or repairs anything is a bug: the run stops.
double start_daemon(const fs::path& dir, Teardown& teardown)
{
    fs::path log = dir / "cgroupd.log";
    std::error_code ec;
    fs::remove(log, ec);
    auto t0 = Clock::now();
    pid_t daemon = fork();
    if (daemon < 0)
        die("fork");
    if (daemon == 0) {
        std::string cmd = std::string("exec ") + AUTHWALL_CGROUPD_BIN + " --config " +
                          (dir / "authwall.toml").string() + " 2>" + log.string();
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    teardown.set_daemon(daemon);
    for (;;) {
        std::string text = read_text(log);
        if (auto at = text.find("cgroupd: started"); at != std::string::npos) {
            double took = ms_since(t0);
            std::string line = text.substr(at, text.find('\n', at) - at);
            if (line.find("started: 0 reaped, 0 enrolled, 0 records repaired") == std::string::npos)
                die("the start-up sweep changed live sessions: " + line);
            return took;
        }
        if (waitpid(daemon, nullptr, WNOHANG) == daemon) {
            teardown.set_daemon(-1);
            die("cgroupd exited before it started: " + text);
        }
        if (ms_since(t0) > 300000)
            die("cgroupd did not start within 300 s: " + text);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

struct Spread {
    double median = 0, min = 0, max = 0;
};

Spread spread_of(const std::vector<double>& v)
{
    return {median(v), *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end())};
}

} // namespace

int main(int argc, char** argv)
{
    int small = 10000, large = 100000, reaps = 50, containers = 1000;
    const int rounds = 3;
    bool quick = false;
    if (int rc = parse_bench_args(argc, argv, "bench_cgroupd",
                                  "start-up sweep at 10 000 and 100 000 sessions; reap latency with many "
                                  "sessions open; enrollment of many containers at once",
                                  &quick);
        rc >= 0)
        return rc;
    if (quick) {
        small = 1000;
        large = 10000;
        reaps = 10;
        containers = 200;
    }
    // Statics: destroyed by exit() too (teardown first, then the root).
    static BenchRoot bench(static_cast<uint32_t>(large + containers + reaps + 1024));
    static Teardown teardown;
    char tmpl[] = "/dev/shm/authwall-bench-cgd-XXXXXX";
    if (!mkdtemp(tmpl))
        die("mkdtemp in /dev/shm");
    fs::path dir = tmpl;
    teardown.set_dir(dir);
    chmod(dir.c_str(), 0755);
    std::string rel = bench.root().lexically_relative(bench.mount().mount_point).string();
    Config config;
    config.pin_dir = bench.pin_dir();
    config.run_dir = dir / "run";
    config.enforcement_roots = {bench.root()};
    auto compiled = bench.install_policy_text(
        "[policy.ssh]\nmatch.services = [\"sshd\"]\n[policy.tenant]\nmatch.cgroups = [\"" + rel + "/tenants/*\"]\n",
        &config);
    std::ofstream(dir / "authwall.toml") << "pin_dir = \"" << config.pin_dir.string() << "\"\nrun_dir = \""
                                         << config.run_dir.string() << "\"\nenforcement_roots = [\""
                                         << bench.root().string() << "\"]\n";
    const uint32_t ssh = compiled.ids.at("ssh");
    auto add_session = [&](const fs::path& cg, SessionKind kind) {
        return bench.add_recorded_session(cg, kind, ssh, "ssh", config.run_dir);
    };

    // Background sessions (containers: they stay when empty), as PAM or
    // cgroupd leave them: cgroup, entry, record.
    fs::path bg = bench.cgroup("background");
    int made = 0;
    double setup_ms = 0;
    auto grow_to = [&](int total) {
        auto t0 = Clock::now();
        for (; made < total; ++made) {
            fs::path cg = bg / ("s" + std::to_string(made));
            if (auto st = cgroup_create(cg); !st)
                die(st.error().message());
            teardown.add_cgroup(cg);
            add_session(cg, SessionKind::Container);
        }
        setup_ms += ms_since(t0);
    };
    auto startup_rounds = [&] {
        std::vector<double> ms;
        for (int r = 0; r < rounds; ++r) {
            ms.push_back(start_daemon(dir, teardown));
            teardown.stop_daemon();
        }
        return spread_of(ms);
    };

    grow_to(small);
    Spread start_small = startup_rounds();

    start_daemon(dir, teardown);
    // Reap latency: a session whose only process is killed.
    std::vector<double> reap_ms;
    fs::path logins = bench.cgroup("logins");
    for (int i = 0; i < reaps; ++i) {
        fs::path cg = logins / ("l" + std::to_string(i));
        cgroup_create(cg).ok();
        teardown.add_cgroup(cg);
        pid_t p = fork();
        if (p == 0) {
            cgroup_move_pid(cg, getpid()).ok();
            pause();
            _exit(0);
        }
        teardown.add_child(p);
        while (true) { // the process is in before the session exists, as with PAM
            std::ifstream ev(cg / "cgroup.procs");
            std::string pid;
            if (ev >> pid)
                break;
        }
        uint64_t id = add_session(cg, SessionKind::Login);
        std::this_thread::sleep_for(std::chrono::milliseconds(20)); // cgroupd has seen the record
        auto t0 = Clock::now();
        kill(p, SIGKILL);
        waitpid(p, nullptr, 0);
        teardown.reaped_child(p);
        while (fs::exists(record_path(config.run_dir, id))) {
            if (ms_since(t0) > 10000)
                die("session " + std::to_string(id) + " was not reaped");
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        reap_ms.push_back(ms_since(t0));
    }

    // Enrollment: many container cgroups at once.
    fs::path tenants = bench.cgroup("tenants");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto t0 = Clock::now();
    std::vector<fs::path> ctrs;
    for (int i = 0; i < containers; ++i) {
        ctrs.push_back(tenants / ("ctr-" + std::to_string(i)));
        cgroup_create(ctrs.back()).ok();
        teardown.add_cgroup(ctrs.back());
    }
    double mkdir_ms = ms_since(t0);
    std::vector<uint64_t> ctr_ids;
    for (const auto& cg : ctrs) {
        uint64_t id = *cgroup_id(cg);
        ctr_ids.push_back(id);
        while (true) {
            auto s = bench.maps().lookup_session(id);
            if (s && s->has_value())
                break;
            if (ms_since(t0) > 30000)
                die("container " + cg.string() + " was not enrolled");
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }
    double enroll_ms = ms_since(t0);
    // The runtime removes them: cgroupd reaps their sessions, so that the
    // next start-up rounds see only the background sessions.
    for (const auto& cg : ctrs)
        ::rmdir(cg.c_str());
    auto removed = Clock::now();
    for (uint64_t id : ctr_ids)
        while (fs::exists(record_path(config.run_dir, id))) {
            if (ms_since(removed) > 30000)
                die("container session " + std::to_string(id) + " was not reaped after its rmdir");
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    teardown.stop_daemon();

    double small_setup_ms = setup_ms;
    grow_to(large);
    Spread start_large = startup_rounds();
    double large_setup_ms = setup_ms;

    auto cleanup_t0 = Clock::now();
    teardown.run();
    double cleanup_ms = ms_since(cleanup_t0);

    std::printf("bench_cgroupd: start-up at %d and %d sessions, %d reaps and %d containers with %d open\n\n", small,
                large, reaps, containers, small);
    std::printf("cgroupd start, exec to \"started\" (full sweep), median of %d rounds (min-max):\n", rounds);
    for (auto [n, s] : {std::pair{small, start_small}, std::pair{large, start_large}})
        std::printf("  %6d sessions   %7.0f ms  (%.0f-%.0f)   %5.1f us/session\n", n, s.median, s.min, s.max,
                    s.median * 1000.0 / n);
    std::printf("  (goal: <= 2000 ms at 100 000)\n");
    std::printf("reap latency        p50 %.1f ms   p99 %.1f ms   (goal: p99 < 100 ms)\n", percentile(reap_ms, 0.5),
                percentile(reap_ms, 0.99));
    std::printf("enroll %d at once   all enrolled after %.0f ms (mkdir of all: %.0f ms)   (goal: < 1000 ms)\n",
                containers, enroll_ms, mkdir_ms);
    std::printf("set-up (cgroup + entry + record): %d sessions in %.1f s, %d in %.1f s; removal of all %.1f s\n", small,
                small_setup_ms / 1000, large, large_setup_ms / 1000, cleanup_ms / 1000);
    return 0;
}
