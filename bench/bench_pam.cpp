// SPDX-License-Identifier: Apache-2.0
// What a login costs, two ways, side by side in one run:
//
// 1. The real login through libpam. A driver that links only libpam and
//    libc (bench/pam_login_driver.c, like login, su or cron) forks a fresh
//    child per sample, which runs pam_start_confdir + pam_open_session +
//    pam_close_session + pam_end on a service file naming the build-tree
//    pam_authwall.so (with the bench's private configuration, pins and run
//    directory), so the module and everything it pulls in are loaded anew
//    each time, as sshd does for every connection. The same with pam_permit
//    alone is the reference. Interleaved rounds, for two hosts: a bare one
//    (login, su, cron) and one that already has Debian sshd's libraries
//    (libsystemd, libaudit, libcap, libz).
// 2. The core path: session open+close as pam_authwall.so does it, without
//    PAM, p50 and p99 with 0, 1 000 and 10 000 sessions already open; then
//    the user layer's cost at open (looking up and writing users[uid]): the
//    same cycles with the layer off and on, in interleaved rounds.
//    Background sessions are real state: a cgroup, a map entry and a record
//    each.
//
// The run directory is a private tmpfs, as /run is in production. cgroupfs
// mode. Needs root; throwaway cgroups, pins, run directory and PAM
// configuration (never /etc/authwall or /etc/pam.d).
#include "bench/harness.h"
#include "core/policy/policy_file.h"
#include "core/policy/index.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

using namespace authwall;
using namespace authwall::bench;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& path, const std::string& text)
{
    std::ofstream out(path);
    out << text;
    if (!out)
        die("write " + path.string());
    chmod(path.c_str(), 0644);
}

// A private tmpfs, unmounted and removed with the object.
class TmpfsDir {
  public:
    TmpfsDir()
    {
        char tmpl[] = "/tmp/authwall-bench-run-XXXXXX";
        if (!mkdtemp(tmpl))
            die("mkdtemp");
        path_ = tmpl;
        if (::mount("tmpfs", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=256m") != 0)
            die(std::string("mount tmpfs: ") + std::strerror(errno));
    }
    ~TmpfsDir()
    {
        ::umount2(path_.c_str(), MNT_DETACH);
        ::rmdir(path_.c_str());
    }
    TmpfsDir(const TmpfsDir&) = delete;
    TmpfsDir& operator=(const TmpfsDir&) = delete;
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

struct LoginSamples {
    std::vector<double> start_ms, cycle_ms;
};

// One run of the driver: `samples` logins, each in a fresh process.
LoginSamples run_driver(const fs::path& confdir, int samples, const std::vector<std::string>& preload)
{
    std::string cmd = std::string(AUTHWALL_PAM_LOGIN_DRIVER) + " " + confdir.string() + " sshd nobody 192.0.2.7 " +
                      std::to_string(samples);
    for (const auto& lib : preload)
        cmd += " --preload " + lib;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (!p)
        die("popen " + cmd);
    LoginSamples out;
    std::string text;
    char line[512];
    while (std::fgets(line, sizeof(line), p)) {
        double start = 0, cycle = 0;
        if (std::sscanf(line, "%lf %lf", &start, &cycle) == 2) {
            out.start_ms.push_back(start);
            out.cycle_ms.push_back(cycle);
        } else {
            text += line;
        }
    }
    int rc = ::pclose(p);
    // Thrown, not die(): the pins, cgroups and tmpfs are removed on the way out.
    if (rc != 0 || static_cast<int>(out.cycle_ms.size()) != samples)
        throw std::runtime_error("the login driver failed (" + confdir.string() + "): " + text);
    return out;
}

struct Side {
    std::vector<double> start_p50, cycle_p50; // per round
    LoginSamples all;                         // pooled, for p99
    void add(const LoginSamples& s)
    {
        start_p50.push_back(percentile(s.start_ms, 0.50));
        cycle_p50.push_back(percentile(s.cycle_ms, 0.50));
        all.start_ms.insert(all.start_ms.end(), s.start_ms.begin(), s.start_ms.end());
        all.cycle_ms.insert(all.cycle_ms.end(), s.cycle_ms.begin(), s.cycle_ms.end());
    }
};

std::string spread(const std::vector<double>& v)
{
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.3f (%.3f-%.3f)", median(v), *lo, *hi);
    return buf;
}

// The real login through libpam, pam_authwall.so against pam_permit.so.
void bench_libpam(BenchRoot& bench, const Config& config, bool quick)
{
    char tmpl[] = "/tmp/authwall-bench-pam-XXXXXX";
    if (!mkdtemp(tmpl))
        die("mkdtemp");
    fs::path dir = tmpl;
    struct RemovedAtExit {
        fs::path path;
        ~RemovedAtExit()
        {
            std::error_code ec;
            fs::remove_all(path, ec);
        }
    } removed{dir};
    fs::path conf = dir / "authwall.toml";
    // The user layer is on for the bench's user (nobody is outside the
    // default uid range), as it is for a regular user's login.
    write_file(conf, "pin_dir = \"" + bench.pin_dir().string() + "\"\nrun_dir = \"" + config.run_dir.string() +
                         "\"\nenforcement_roots = [\"" + bench.root().string() +
                         "\"]\nexempt_users = [\"root\"]\n[users]\nmax_uid = 65534\n");
    fs::create_directories(dir / "authwall");
    fs::create_directories(dir / "permit");
    write_file(dir / "authwall" / "sshd",
               std::string("session required ") + AUTHWALL_PAM_MODULE + " config=" + conf.string() + "\n");
    write_file(dir / "permit" / "sshd", "session required pam_permit.so\n");

    struct Host {
        const char* name;
        std::vector<std::string> preload;
    };
    const std::vector<Host> hosts = {
        {"bare host (login, su, cron: libpam and libc only)", {}},
        {"sshd's host (libsystemd, libaudit, libcap, libz already loaded)",
         {"libsystemd.so.0", "libaudit.so.1", "libcap.so.2", "libz.so.1"}},
    };
    const int rounds = quick ? 3 : 7;
    const int samples = quick ? 15 : 40;
    std::printf("real login through libpam: pam_start_confdir + open + close + pam_end, one fresh process per "
                "login; %d interleaved rounds of %d logins per side\n",
                rounds, samples);
    for (const auto& host : hosts) {
        Side permit, authwall;
        for (int r = 0; r < rounds; ++r) {
            // Alternate which side goes first, so neither always runs on a
            // warmer cache.
            if (r % 2 == 0) {
                permit.add(run_driver(dir / "permit", samples, host.preload));
                authwall.add(run_driver(dir / "authwall", samples, host.preload));
            } else {
                authwall.add(run_driver(dir / "authwall", samples, host.preload));
                permit.add(run_driver(dir / "permit", samples, host.preload));
            }
        }
        std::vector<double> start_ratio, cycle_ratio, cycle_added;
        for (size_t r = 0; r < permit.cycle_p50.size(); ++r) {
            start_ratio.push_back(authwall.start_p50[r] / permit.start_p50[r]);
            cycle_ratio.push_back(authwall.cycle_p50[r] / permit.cycle_p50[r]);
            cycle_added.push_back(authwall.cycle_p50[r] - permit.cycle_p50[r]);
        }
        double permit_p99 = percentile(permit.all.cycle_ms, 0.99),
               authwall_p99 = percentile(authwall.all.cycle_ms, 0.99);
        std::printf("\n  %s\n", host.name);
        std::printf("  %-13s %-28s %-10s %-28s %-10s\n", "module", "pam_start p50 ms (rounds)", "p99 ms",
                    "whole login p50 ms (rounds)", "p99 ms");
        std::printf("  %-13s %-28s %-10.3f %-28s %-10.3f\n", "pam_permit", spread(permit.start_p50).c_str(),
                    percentile(permit.all.start_ms, 0.99), spread(permit.cycle_p50).c_str(), permit_p99);
        std::printf("  %-13s %-28s %-10.3f %-28s %-10.3f\n", "pam_authwall", spread(authwall.start_p50).c_str(),
                    percentile(authwall.all.start_ms, 0.99), spread(authwall.cycle_p50).c_str(), authwall_p99);
        std::printf("  authwall/permit: pam_start p50 %s, whole login p50 %s\n", spread(start_ratio).c_str(),
                    spread(cycle_ratio).c_str());
        std::printf("  authwall adds %s ms over pam_permit at p50 (rounds), %.3f ms at p99\n",
                    spread(cycle_added).c_str(), authwall_p99 - permit_p99);
    }
    std::printf("\n");
}

// The core path: open+close as the module does it, without PAM.
void bench_core(BenchRoot& bench, const Config& config, const CompiledPolicies& compiled, bool quick)
{
    int iterations = 400;
    std::vector<int> sizes = {0, 1000, 10000};
    if (quick) {
        iterations = 100;
        sizes = {0, 1000, 3000};
    }
    // Background sessions, added up to each size in turn.
    fs::path background = bench.cgroup("background");
    int open_now = 0;
    std::printf("core path: %d open+close cycles per size (cgroupfs mode, run directory on tmpfs)\n\n", iterations);
    std::printf("%10s %10s %10s %14s\n", "sessions", "p50 ms", "p99 ms", "p99 vs 0");
    double base_p99 = 0;
    for (int size : sizes) {
        for (; open_now < size; ++open_now) {
            fs::path cg = background / ("s" + std::to_string(open_now));
            if (auto st = cgroup_create(cg); !st)
                die(st.error().message());
            bench.add_recorded_session(cg, SessionKind::Login, compiled.ids.at("ssh"), "ssh", config.run_dir);
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
}

} // namespace

int main(int argc, char** argv)
{
    // --login / --core run one part only; --cycles N runs only N core
    // cycles and prints nothing else (for `strace -c -f`: the difference
    // between N and 0 cycles is what N cycles cost). The common arguments
    // follow.
    bool login = true, core = true;
    int cycles = -1;
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--login") == 0)
            core = false;
        else if (std::strcmp(argv[i], "--core") == 0)
            login = false;
        else if (std::strcmp(argv[i], "--cycles") == 0 && i + 1 < argc)
            cycles = std::atoi(argv[++i]);
        else
            rest.push_back(argv[i]);
    }
    bool quick = false;
    if (int rc = parse_bench_args(static_cast<int>(rest.size()), rest.data(), "bench_pam [--login|--core|--cycles N]",
                                  "a real login through libpam (pam_authwall.so against pam_permit.so), then "
                                  "session open+close latency with 0, 1000 and 10000 open",
                                  &quick);
        rc >= 0)
        return rc;
    BenchRoot bench;
    TmpfsDir run_dir;
    Config config;
    config.pin_dir = bench.pin_dir();
    config.run_dir = run_dir.path();
    config.enforcement_roots = {bench.root()};
    config.exempt_users = {"root"};
    auto compiled = bench.install_policy_text(
        "[policy.ssh]\nmatch.services = [\"sshd\"]\n[policy.ssh.egress]\ndefault = \"deny\"\n", &config);
    if (cycles >= 0) {
        auto ms = cycles ? open_close_latencies(config, cycles, "192.0.2.7") : std::vector<double>{};
        std::printf("%d core cycles, p50 %.3f ms\n", cycles, percentile(ms, 0.50));
        return 0;
    }
    std::printf("bench_pam\n\n");
    if (login) {
        try {
            bench_libpam(bench, config, quick);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "bench: %s\n", e.what());
            return 1;
        }
    }
    if (core)
        bench_core(bench, config, compiled, quick);
    return 0;
}
