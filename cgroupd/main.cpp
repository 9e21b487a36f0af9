// authwall-cgroupd: keeps sessions, records and cgroups in agreement
// (cgroupd/reconciler): reaps sessions whose cgroup died, ends sessions past
// their max_duration, enrolls container cgroups by path. Event-driven
// (inotify on the cgroup tree, cgroup.events and the run directory), with a
// slow full sweep as a backstop.
#include "core/policy/config.h"
#include "cgroupd/reconciler.h"
#include "core/session/events.h"
#include "core/daemon/confinement.h"
#include "cgroupd/syscalls.h"

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <linux/capability.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>

#include <csignal>
#include <cstdlib>

using namespace authwall;
namespace fs = std::filesystem;

namespace {

// Logs each event once (journal and event_log through the sink, stderr here).
class LoggingSink final : public EventSink {
  public:
    explicit LoggingSink(const Config& config) : journal_("authwall-cgroupd", config.event_log) {}
    void session_event(const std::string& event, const SessionRecord& r, const std::string& detail) override
    {
        if (!stderr_journal_)
            spdlog::info("cgroupd: {} session {} ({} {}, policy {}){}{}", event, r.id, kind_name(r.kind),
                         r.user.empty() ? r.cgroup : r.user, r.policy, detail.empty() ? "" : ": ", detail);
        journal_.session_event(event, r, detail);
    }

  private:
    JournalSink journal_;
    bool stderr_journal_ = stderr_is_journal(); // the sink's record is the one line
};

void arm(int timerfd, std::optional<Reconciler::Clock::time_point> when)
{
    itimerspec its{};
    if (when) {
        auto delta = *when - Reconciler::Clock::now();
        auto ns = std::max<long long>(std::chrono::duration_cast<std::chrono::nanoseconds>(delta).count(), 1);
        its.it_value.tv_sec = ns / 1'000'000'000;
        its.it_value.tv_nsec = ns % 1'000'000'000;
    }
    timerfd_settime(timerfd, 0, &its, nullptr);
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"authwall-cgroupd: reaps sessions whose cgroup died, ends sessions past their max_duration,\n"
                 "enrolls container cgroups into policies by path. Settings: flags, environment, configuration."};
    std::string config_path, pin_dir, run_dir;
    std::vector<std::string> roots;
    unsigned sweep_seconds = 60;
    bool debug = false, once = false;
    app.add_option("--config", config_path,
                   std::string("configuration file (env AUTHWALL_CONFIG; default ") + kDefaultConfigPath +
                       ", optional)");
    app.add_option("--pin-dir", pin_dir, "bpffs directory of the pins (env AUTHWALL_PIN_DIR)");
    app.add_option("--run-dir", run_dir, "session records and policy index (env AUTHWALL_RUN_DIR)");
    app.add_option("--cgroup-root", roots, "enforcement roots to watch, repeatable (default: the configuration's)");
    app.add_option("--sweep-seconds", sweep_seconds, "full reconciliation every N seconds, a backstop to inotify")
        ->capture_default_str()
        ->check(CLI::Range(1u, 86400u));
    app.add_flag("--once", once, "reconcile once and exit");
    app.add_flag("--debug", debug, "debug logging");
    const char* seccomp_env = std::getenv("AUTHWALL_SECCOMP");
    std::string seccomp = seccomp_env ? seccomp_env : "kill";
    app.add_option("--seccomp", seccomp, kSeccompOptionHelp)->check(CLI::IsMember({"kill", "log", "off"}));
    CLI11_PARSE(app, argc, argv);

    spdlog::set_default_logger(spdlog::stderr_color_mt("authwall-cgroupd"));
    spdlog::set_pattern(getenv("JOURNAL_STREAM") ? "%^%l%$: %v" : "[%Y-%m-%d %H:%M:%S.%e] %^%l%$: %v");
    spdlog::set_level(debug ? spdlog::level::debug : spdlog::level::info);

    ResolvedConfig resolved = resolve_config({config_path, pin_dir, run_dir, roots});
    if (!resolved.load.ok()) {
        for (const auto& e : resolved.load.errors)
            spdlog::error("config: {}", e.str());
        return 1;
    }
    Config config = resolved.load.config;

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, nullptr);

    LoggingSink sink(config);
    Reconciler reconciler(config, sink);
    if (auto st = reconciler.start(); !st) {
        spdlog::error("cgroupd: {}", st.error().message());
        return 1;
    }
    for (const auto& w : reconciler.take_warnings())
        spdlog::warn("cgroupd: {}", w);
    const auto& s = reconciler.stats();
    spdlog::info("cgroupd: started: {} reaped, {} enrolled, {} records repaired", s.reaped, s.enrolled, s.repaired);
    if (once)
        return 0;

    Fd sfd(signalfd(-1, &mask, SFD_CLOEXEC));
    Fd due(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    Fd sweep(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    Fd ep(epoll_create1(EPOLL_CLOEXEC));
    itimerspec every{};
    every.it_value.tv_sec = every.it_interval.tv_sec = sweep_seconds;
    timerfd_settime(sweep.get(), 0, &every, nullptr);
    for (int fd : {sfd.get(), due.get(), sweep.get(), reconciler.fd()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev);
    }
    arm(due.get(), reconciler.next_deadline());
    // Setup is done: keep what reaping, expiring, enrolling and the mirror
    // need (cgroupd/syscalls.h). CAP_KILL: what is left in an ended session;
    // CAP_DAC_READ_SEARCH: open_by_handle_at (cgroup id to path); CAP_BPF:
    // map writes; CAP_NET_ADMIN: the nftables mirror.
    std::vector<int> keep{CAP_KILL, CAP_DAC_READ_SEARCH, CAP_BPF};
    if (config.nft_mirror)
        keep.push_back(CAP_NET_ADMIN);
    if (Status confined = confine_daemon(keep, kCgroupdSyscalls, *parse_seccomp_mode(seccomp)); !confined) {
        spdlog::error("cgroupd: cannot confine itself: {}", confined.error().message());
        return 1;
    }
    sd_notify(0, "READY=1\nSTATUS=reconciling");

    for (;;) {
        epoll_event events[8];
        int n = epoll_wait(ep.get(), events, 8, -1);
        if (n < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            Status st;
            if (fd == sfd.get()) {
                signalfd_siginfo si{};
                if (read(sfd.get(), &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGHUP) {
                    spdlog::info("cgroupd: SIGHUP, full sweep");
                    st = reconciler.sweep();
                } else {
                    sd_notify(0, "STOPPING=1");
                    spdlog::info("cgroupd: stopping; the next start repairs anything missed meanwhile");
                    return 0;
                }
            } else if (fd == reconciler.fd()) {
                st = reconciler.handle_events();
            } else if (fd == due.get()) {
                uint64_t x;
                (void)!read(due.get(), &x, sizeof(x));
                st = reconciler.run_due();
            } else if (fd == sweep.get()) {
                uint64_t x;
                (void)!read(sweep.get(), &x, sizeof(x));
                st = reconciler.sweep();
            }
            if (!st)
                spdlog::warn("cgroupd: {}", st.error().message());
            for (const auto& w : reconciler.take_warnings())
                spdlog::warn("cgroupd: {}", w);
        }
        arm(due.get(), reconciler.next_deadline());
    }
}
