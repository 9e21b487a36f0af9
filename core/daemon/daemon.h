// SPDX-License-Identifier: Apache-2.0
// What authwall-loader and authwall-cgroupd share besides confinement: the
// flags every daemon takes, the logger, the configuration as flags,
// environment and file make it, the signal and event loop, and the lock
// that keeps one instance of each daemon per installation.
#pragma once

#include "core/base/fd.h"
#include "core/base/result.h"
#include "core/daemon/confinement.h"
#include "core/policy/config.h"

#include <sys/types.h>

#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace authwall {

// The flags of every daemon: --config, --pin-dir, --run-dir, --cgroup-root,
// --debug, --seccomp (env AUTHWALL_SECCOMP).
struct DaemonFlags {
    ConfigOverrides config;
    bool debug = false;
    std::string seccomp;
};

// Adds them to `app`, with --version; `roots_help` says what --cgroup-root
// means to this daemon.
void add_daemon_flags(CLI::App& app, DaemonFlags& flags, const std::string& roots_help);
// Parses the command line: nullopt to go on, else the exit status (0 after
// --help or --version; 2, the usage-error status of every authwall
// program, after a message for anything it refuses).
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);
// The process-wide logger, on stderr: plain lines when the journal captures
// stderr (it adds the time), timestamps otherwise.
void start_logging(const std::string& name, bool debug);
// authwall.toml, the environment and the flags (resolve_config); every
// error is logged, and nullopt returned.
std::optional<ResolvedConfig> load_daemon_config(const DaemonFlags& flags);
SeccompMode seccomp_mode(const DaemonFlags& flags);

// The event loop of a daemon: epoll over its descriptors and a signalfd.
// SIGHUP calls the hang-up handler; SIGTERM and SIGINT end run().
class EventLoop {
  public:
    // Blocks SIGHUP, SIGTERM and SIGINT: call it before installing anything,
    // so a signal during start-up is neither lost nor interrupts it.
    static void block_signals();
    static Result<EventLoop> create();

    void on_readable(int fd, std::function<void()> handler);
    void on_hangup(std::function<void()> handler) { hangup_ = std::move(handler); }
    // Runs until SIGTERM or SIGINT; `after_each` runs after every batch of
    // ready descriptors. Returns the signal that ended it.
    int run(const std::function<void()>& after_each = {});

  private:
    EventLoop(Fd epoll, Fd signals) : epoll_(std::move(epoll)), signals_(std::move(signals)) {}
    Fd epoll_;
    Fd signals_;
    std::map<int, std::function<void()>> handlers_;
    std::function<void()> hangup_;
};

// One instance of a daemon per installation: an exclusive flock(2) on
// <run_dir>/<name>.lock, held for the life of the process, with its pid and
// pin directory written in it (authctl status reads it), and a second one on
// a directory of the pin directory, `pin_lock` (the loader: the pin
// directory itself; cgroupd: its maps/), so that a second instance with
// another run directory is refused too. A pin lock that does not exist yet
// (the first start of a fresh pin directory) is not taken. A second instance
// is refused, naming the first.
class InstanceLock {
  public:
    static Result<InstanceLock> take(const std::filesystem::path& run_dir, const std::string& name,
                                     const std::filesystem::path& pin_dir, const std::filesystem::path& pin_lock);
    // The pid that holds the lock now, or nullopt when no instance runs.
    static std::optional<pid_t> holder(const std::filesystem::path& run_dir, const std::string& name);
    static std::filesystem::path path(const std::filesystem::path& run_dir, const std::string& name);

  private:
    InstanceLock(Fd fd, Fd pin_fd) : fd_(std::move(fd)), pin_fd_(std::move(pin_fd)) {}
    Fd fd_;
    Fd pin_fd_;
};

} // namespace authwall
