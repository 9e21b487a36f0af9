// authwall-cgroupd latencies, measured on the real daemon:
//   reap: a login session's processes are killed (no close); time until its
//         record is gone — with 10 000 other sessions open;
//   enroll: 1 000 container cgroups created at once; time until all are
//         enrolled (map entries present).
// Needs root; throwaway cgroup tree, pins and run directory.
#include "bench/harness.h"
#include "core/policy_file.h"
#include "core/policy_index.h"
#include "core/session_record.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

} // namespace

int main(int argc, char** argv)
{
    int background = 10000, reaps = 50, containers = 1000;
    bool quick = false;
    if (int rc =
            parse_bench_args(argc, argv, "bench_cgroupd",
                             "reap latency with many sessions open; enrollment of many containers at once", &quick);
        rc >= 0)
        return rc;
    if (quick) {
        background = 1000;
        reaps = 10;
        containers = 200;
    }
    BenchRoot bench;
    char tmpl[] = "/tmp/authwall-bench-cgd-XXXXXX";
    if (!mkdtemp(tmpl))
        die("mkdtemp");
    fs::path dir = tmpl;
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

    // Background sessions (containers: they stay when empty).
    fs::path bg = bench.cgroup("background");
    auto add_session = [&](const fs::path& cg, const char* kind, uint32_t policy) {
        return bench.add_recorded_session(cg, kind, policy, "ssh", config.run_dir);
    };
    for (int i = 0; i < background; ++i) {
        fs::path cg = bg / ("s" + std::to_string(i));
        if (auto st = cgroup_create(cg); !st)
            die(st.error().message());
        add_session(cg, "container", compiled.ids.at("ssh"));
    }

    pid_t daemon = fork();
    if (daemon == 0) {
        std::string cmd = std::string("exec ") + AUTHWALL_CGROUPD_BIN + " --config " +
                          (dir / "authwall.toml").string() + " 2>" + (dir / "cgroupd.log").string();
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    auto started = Clock::now();
    for (;;) {
        std::ifstream in(dir / "cgroupd.log");
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (text.find("cgroupd: started") != std::string::npos)
            break;
        if (ms_since(started) > 60000)
            die("cgroupd did not start: " + text);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    double start_ms = ms_since(started);

    // Reap latency: a session whose only process is killed.
    std::vector<double> reap_ms;
    fs::path logins = bench.cgroup("logins");
    for (int i = 0; i < reaps; ++i) {
        fs::path cg = logins / ("l" + std::to_string(i));
        cgroup_create(cg).ok();
        pid_t p = fork();
        if (p == 0) {
            cgroup_move_pid(cg, getpid()).ok();
            pause();
            _exit(0);
        }
        while (true) { // the process is in before the session exists, as with PAM
            std::ifstream ev(cg / "cgroup.procs");
            std::string pid;
            if (ev >> pid)
                break;
        }
        uint64_t id = add_session(cg, "login", compiled.ids.at("ssh"));
        std::this_thread::sleep_for(std::chrono::milliseconds(20)); // cgroupd has seen the record
        auto t0 = Clock::now();
        kill(p, SIGKILL);
        waitpid(p, nullptr, 0);
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
    std::vector<fs::path> made;
    for (int i = 0; i < containers; ++i) {
        made.push_back(tenants / ("ctr-" + std::to_string(i)));
        cgroup_create(made.back()).ok();
    }
    double mkdir_ms = ms_since(t0);
    for (const auto& cg : made) {
        uint64_t id = *cgroup_id(cg);
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

    kill(daemon, SIGTERM);
    waitpid(daemon, nullptr, 0);
    std::printf("bench_cgroupd: %d background sessions, %d reaps, %d containers\n\n", background, reaps, containers);
    std::printf("cgroupd start (full sweep of %d sessions): %.0f ms\n", background, start_ms);
    std::printf("reap latency        p50 %.1f ms   p99 %.1f ms   (goal: p99 < 100 ms)\n", percentile(reap_ms, 0.5),
                percentile(reap_ms, 0.99));
    std::printf("enroll %d at once   all enrolled after %.0f ms (mkdir of all: %.0f ms)   (goal: < 1000 ms)\n",
                containers, enroll_ms, mkdir_ms);
    std::error_code ec;
    fs::remove_all(dir, ec);
    return 0;
}
