// SPDX-License-Identifier: Apache-2.0
// authwall-cgroupd: keeps sessions, records and cgroups in agreement
// (cgroupd/reconciler): reaps sessions whose cgroup died, ends sessions past
// their max_duration, enrolls container cgroups by path. Event-driven
// (inotify on the cgroup tree, cgroup.events and the run directory), with a
// slow full sweep as a backstop.
#include "cgroupd/reconciler.h"
#include "cgroupd/syscalls.h"
#include "core/daemon/confinement.h"
#include "core/daemon/daemon.h"
#include "core/base/files.h"
#include "core/metrics/metrics.h"
#include "core/policy/config.h"
#include "core/session/events.h"

#include <CLI/CLI.hpp>
#include <linux/capability.h>
#include <spdlog/spdlog.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>

using namespace authwall;
namespace fs = std::filesystem;

namespace {

// Logs each event once (journal and event_log through the sink, stderr here).
class LoggingSink final : public EventSink {
  public:
    explicit LoggingSink(const Config& config) : journal_("authwall-cgroupd", config.event_log) {}
    void session_event(const std::string& event, const SessionRecord& r, const std::string& detail,
                       const SessionTally* tally = nullptr) override
    {
        if (!stderr_journal_)
            spdlog::info("cgroupd: {} session {} ({} {}, policy {}){}{}", event, r.id, kind_name(r.kind),
                         r.user.empty() ? r.cgroup : r.user, r.policy, detail.empty() ? "" : ": ", detail);
        journal_.session_event(event, r, detail, tally);
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

void log_warnings(Reconciler& reconciler, const Status& st = {})
{
    if (!st)
        spdlog::warn("cgroupd: {}", st.error().message());
    for (const auto& w : reconciler.take_warnings())
        spdlog::warn("cgroupd: {}", w);
}

// The metrics file ([metrics] textfile): the text of `authctl metrics`,
// written atomically (a temporary file beside it, then rename) at start and
// every interval_sec, so node_exporter never reads half of one. A failure
// is logged when it starts and when it ends, not at every tick.
class MetricsFile {
  public:
    explicit MetricsFile(const Config& config) : config_(config) {}

    Status arm(EventLoop& loop)
    {
        if (config_.metrics_textfile.empty())
            return {};
        timer_ = Fd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
        if (!timer_)
            return Error::sys("create metrics timer", config_.metrics_textfile.string(), errno);
        itimerspec its{};
        its.it_value.tv_nsec = 1; // at once, once the loop runs
        its.it_interval.tv_sec = config_.metrics_interval_sec;
        timerfd_settime(timer_.get(), 0, &its, nullptr);
        loop.on_readable(timer_.get(), [this] {
            uint64_t ticks;
            (void)!read(timer_.get(), &ticks, sizeof(ticks));
            write();
        });
        return {};
    }

  private:
    void write()
    {
        auto text = collect_metrics(config_, config_.metrics_format);
        Status st = text ? write_file_atomic(config_.metrics_textfile, *text, 0644) : Status(text.error());
        std::string error = st ? "" : st.error().message();
        if (!error.empty() && error != last_error_)
            spdlog::warn("cgroupd: metrics: {}{}", error,
                         st.error().err == EACCES ? " (the directory must be writable by root without "
                                                    "CAP_DAC_OVERRIDE, which cgroupd drops)"
                                                  : "");
        else if (error.empty() && !last_error_.empty())
            spdlog::info("cgroupd: metrics: {} written again", config_.metrics_textfile.string());
        last_error_ = error;
    }

    const Config& config_;
    Fd timer_;
    std::string last_error_;
};

// Setup is done: keep what reaping, expiring, enrolling and the mirror need
// (cgroupd/syscalls.h). CAP_KILL: what is left in an ended session;
// CAP_DAC_READ_SEARCH: open_by_handle_at (cgroup id to path); CAP_BPF: map
// writes; CAP_NET_ADMIN: the nftables mirror.
Status confine_cgroupd(const Config& config, SeccompMode seccomp)
{
    std::vector<int> keep{CAP_KILL, CAP_DAC_READ_SEARCH, CAP_BPF};
    if (config.nft_mirror)
        keep.push_back(CAP_NET_ADMIN);
    return confine_daemon(keep, kCgroupdSyscalls, seccomp);
}

// The loop: inotify, the due timer (reaps, expiries) and the periodic sweep.
int serve(Reconciler& reconciler, const Config& config, SeccompMode seccomp, unsigned sweep_seconds)
{
    auto loop = EventLoop::create();
    Fd due(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    Fd sweep(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!loop || !due || !sweep) {
        spdlog::error("cgroupd: cannot set up the event loop: {}",
                      loop ? std::strerror(errno) : loop.error().message());
        return 1;
    }
    itimerspec every{};
    every.it_value.tv_sec = every.it_interval.tv_sec = sweep_seconds;
    timerfd_settime(sweep.get(), 0, &every, nullptr);
    auto drain = [](int fd) {
        uint64_t x;
        (void)!read(fd, &x, sizeof(x));
    };
    loop->on_readable(reconciler.fd(), [&] { log_warnings(reconciler, reconciler.handle_events()); });
    loop->on_readable(due.get(), [&] {
        drain(due.get());
        log_warnings(reconciler, reconciler.run_due());
    });
    loop->on_readable(sweep.get(), [&] {
        drain(sweep.get());
        log_warnings(reconciler, reconciler.sweep());
    });
    loop->on_hangup([&] {
        spdlog::info("cgroupd: SIGHUP, full sweep");
        log_warnings(reconciler, reconciler.sweep());
    });
    arm(due.get(), reconciler.next_deadline());
    MetricsFile metrics(config);
    if (Status armed = metrics.arm(*loop); !armed)
        spdlog::warn("cgroupd: metrics: {}", armed.error().message());
    if (Status confined = confine_cgroupd(config, seccomp); !confined) {
        spdlog::error("cgroupd: cannot confine itself: {}", confined.error().message());
        return 1;
    }
    sd_notify(0, "READY=1\nSTATUS=reconciling");
    loop->run([&] { arm(due.get(), reconciler.next_deadline()); });
    sd_notify(0, "STOPPING=1");
    spdlog::info("cgroupd: stopping; the next start repairs anything missed meanwhile");
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"authwall-cgroupd: reaps sessions whose cgroup died, ends sessions past their max_duration,\n"
                 "enrolls container cgroups into policies by path. Settings: flags, environment, configuration.",
                 "authwall-cgroupd"};
    DaemonFlags flags;
    unsigned sweep_seconds = 60;
    bool once = false;
    add_daemon_flags(app, flags, "enforcement roots to watch, repeatable (default: the configuration's)");
    app.add_option("--sweep-seconds", sweep_seconds, "full reconciliation every N seconds, a backstop to inotify")
        ->capture_default_str()
        ->check(CLI::Range(1u, 86400u));
    app.add_flag("--once", once, "reconcile once and exit");
    if (auto done = parse_command_line(app, argc, argv))
        return *done;
    start_logging("authwall-cgroupd", flags.debug);

    auto resolved = load_daemon_config(flags);
    if (!resolved)
        return 1;
    const Config& config = resolved->load.config;
    EventLoop::block_signals();
    auto lock = InstanceLock::take(config.run_dir, "authwall-cgroupd", config.pin_dir, config.pin_dir / "maps");
    if (!lock) {
        spdlog::error("cgroupd: {}", lock.error().message());
        return 1;
    }
    LoggingSink sink(config);
    Reconciler reconciler(config, sink);
    if (auto st = reconciler.start(); !st) {
        spdlog::error("cgroupd: {}", st.error().message());
        return 1;
    }
    log_warnings(reconciler);
    const auto& s = reconciler.stats();
    spdlog::info("cgroupd: started: {} reaped, {} enrolled, {} records repaired", s.reaped, s.enrolled, s.repaired);
    return once ? 0 : serve(reconciler, config, seccomp_mode(flags), sweep_seconds);
}
