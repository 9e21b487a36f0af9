// SPDX-License-Identifier: Apache-2.0
#include "core/daemon/daemon.h"

#include "core/base/files.h"

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace authwall {

namespace fs = std::filesystem;

void add_daemon_flags(CLI::App& app, DaemonFlags& flags, const std::string& roots_help)
{
    app.add_option("--config", flags.config.config_path,
                   std::string("configuration file (env AUTHWALL_CONFIG; default ") + kDefaultConfigPath +
                       ", optional)");
    app.add_option("--pin-dir", flags.config.pin_dir, "bpffs directory of the pins (env AUTHWALL_PIN_DIR)");
    app.add_option("--run-dir", flags.config.run_dir,
                   "policy index, session records and the instance lock (env AUTHWALL_RUN_DIR; default /run/authwall)");
    app.add_option("--cgroup-root", flags.config.roots, roots_help);
    app.add_flag("--debug", flags.debug, "debug logging");
    const char* env = std::getenv("AUTHWALL_SECCOMP");
    flags.seccomp = env && *env ? env : "kill";
    app.add_option("--seccomp", flags.seccomp, kSeccompOptionHelp)->check(CLI::IsMember({"kill", "log", "off"}));
    app.set_version_flag("--version", std::string(app.get_name()) + " " + AUTHWALL_VERSION);
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv)
{
    try {
        app.parse(argc, argv);
        return std::nullopt;
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
}

void start_logging(const std::string& name, bool debug)
{
    spdlog::set_default_logger(spdlog::stderr_color_mt(name));
    spdlog::set_pattern(std::getenv("JOURNAL_STREAM") ? "%^%l%$: %v" : "[%Y-%m-%d %H:%M:%S.%e] %^%l%$: %v");
    spdlog::set_level(debug ? spdlog::level::debug : spdlog::level::info);
}

std::optional<ResolvedConfig> load_daemon_config(const DaemonFlags& flags)
{
    ResolvedConfig resolved = resolve_config(flags.config);
    if (resolved.load.ok())
        return resolved;
    for (const auto& e : resolved.load.errors)
        spdlog::error("config: {}", e.str());
    return std::nullopt;
}

SeccompMode seccomp_mode(const DaemonFlags& flags)
{
    auto mode = parse_seccomp_mode(flags.seccomp);
    return mode ? *mode : SeccompMode::Kill; // CLI11 admitted only the three names
}

namespace {

sigset_t daemon_signals()
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    return mask;
}

} // namespace

void EventLoop::block_signals()
{
    sigset_t mask = daemon_signals();
    sigprocmask(SIG_BLOCK, &mask, nullptr);
}

Result<EventLoop> EventLoop::create()
{
    sigset_t mask = daemon_signals();
    Fd signals(signalfd(-1, &mask, SFD_CLOEXEC));
    if (!signals)
        return Error::sys("create", "signalfd", errno);
    Fd epoll(epoll_create1(EPOLL_CLOEXEC));
    if (!epoll)
        return Error::sys("create", "epoll", errno);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = signals.get();
    if (epoll_ctl(epoll.get(), EPOLL_CTL_ADD, signals.get(), &ev) != 0)
        return Error::sys("watch", "signalfd", errno);
    return EventLoop(std::move(epoll), std::move(signals));
}

void EventLoop::on_readable(int fd, std::function<void()> handler)
{
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
        spdlog::warn("event loop: cannot watch descriptor {}: {}", fd, std::strerror(errno));
    handlers_[fd] = std::move(handler);
}

int EventLoop::run(const std::function<void()>& after_each)
{
    for (;;) {
        epoll_event events[8];
        int n = epoll_wait(epoll_.get(), events, 8, -1);
        if (n < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd != signals_.get()) {
                if (auto it = handlers_.find(fd); it != handlers_.end())
                    it->second();
                continue;
            }
            signalfd_siginfo si{};
            if (read(signals_.get(), &si, sizeof(si)) != sizeof(si))
                continue;
            if (si.ssi_signo != SIGHUP)
                return static_cast<int>(si.ssi_signo);
            if (hangup_)
                hangup_();
        }
        if (after_each)
            after_each();
    }
}

fs::path InstanceLock::path(const fs::path& run_dir, const std::string& name)
{
    return run_dir / (name + ".lock");
}

namespace {

// The pin directory's side of the instance lock; an empty Fd when the
// directory is not there yet.
Result<Fd> lock_pin_dir(const std::string& name, const fs::path& pin_dir, const fs::path& pin_lock)
{
    Fd fd(::open(pin_lock.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd)
        return errno == ENOENT ? Fd() : Result<Fd>(Error::sys("open instance lock", pin_lock.string(), errno));
    if (flock(fd.get(), LOCK_EX | LOCK_NB) == 0)
        return fd;
    if (errno != EWOULDBLOCK)
        return Error::sys("lock", pin_lock.string(), errno);
    return Error::msg("start " + name, "for " + pin_dir.string(),
                      "another instance uses this pin directory (with another run directory; " + pin_lock.string() +
                          " is locked)");
}

} // namespace

Result<InstanceLock> InstanceLock::take(const fs::path& run_dir, const std::string& name, const fs::path& pin_dir,
                                        const fs::path& pin_lock)
{
    std::error_code ec;
    fs::create_directories(run_dir, ec);
    fs::path file = path(run_dir, name);
    Fd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd)
        return Error::sys("open instance lock", file.string(), errno);
    if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err != EWOULDBLOCK)
            return Error::sys("lock", file.string(), err);
        auto text = read_text_file(file);
        std::string who = text && !text->empty() ? text->substr(0, text->find('\n')) : "another process";
        return Error::msg("start " + name, "for " + pin_dir.string(),
                          "another instance runs already (pid " + who + ", " + file.string() + ")");
    }
    auto pin_fd = lock_pin_dir(name, pin_dir, pin_lock);
    if (!pin_fd)
        return pin_fd.error();
    std::string text = std::to_string(getpid()) + "\n" + pin_dir.string() + "\n";
    if (ftruncate(fd.get(), 0) != 0 || pwrite(fd.get(), text.data(), text.size(), 0) < 0)
        return Error::sys("write instance lock", file.string(), errno);
    return InstanceLock(std::move(fd), std::move(pin_fd).value());
}

std::optional<pid_t> InstanceLock::holder(const fs::path& run_dir, const std::string& name)
{
    fs::path file = path(run_dir, name);
    Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd)
        return std::nullopt;
    if (flock(fd.get(), LOCK_SH | LOCK_NB) == 0)
        return std::nullopt; // nobody holds it: the daemon is not running
    if (errno != EWOULDBLOCK)
        return std::nullopt;
    auto text = read_text_file(file);
    if (!text)
        return std::nullopt;
    try {
        long pid = std::stol(*text);
        return pid > 0 ? std::optional<pid_t>(static_cast<pid_t>(pid)) : std::nullopt;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

} // namespace authwall
