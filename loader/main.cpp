// SPDX-License-Identifier: Apache-2.0
// authwall-loader: installs the data plane, keeps the policies in force,
// drains decision events (denials, audits, logged matches) to the log. All enforcement state lives in the pins:
// stopping or killing this process changes nothing for traffic.
#include "core/host/cgroup.h"
#include "core/policy/config.h"
#include "core/dataplane/datapath.h"
#include "core/dataplane/events.h"
#include "core/dataplane/maps.h"
#include "core/metrics/reloads.h"
#include "core/nft/mirror.h"
#include "core/dataplane/pins.h"
#include "core/policy/compiler.h"
#include "core/policy/policy_file.h"
#include "core/policy/catalog.h"
#include "core/policy/index.h"
#include "core/session/record.h"
#include "core/session/events.h"
#include "core/base/event_log.h"
#include "core/daemon/confinement.h"
#include "core/daemon/daemon.h"
#include "loader/decision_log.h"
#include "loader/policy_names.h"
#include "loader/session_answers.h"
#include "loader/syscalls.h"
#include "core/base/time.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <linux/capability.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

using namespace authwall;
namespace fs = std::filesystem;

namespace {

struct Options {
    fs::path config_path;
    bool config_explicit = false;
    Config config;                          // after flags and environment were applied
    std::optional<Fallback> unmatched_flag; // --unmatched wins over the file, on reload too
    fs::path policy;                        // file or directory
    bool once = false;
    bool uninstall = false;
    bool debug = false;
    int reload_delay_ms = 300; // debounce of file-change reloads
    SeccompMode seccomp = SeccompMode::Kill;
    // The policies of the last good load, compiled again when the
    // addresses of their DNS names change.
    std::vector<Policy> policies;
    std::unique_ptr<PolicyNames> names; // null: DNS names allow nothing (logged)
    // The DNS answers sessions receive (null: pins of an older data plane).
    std::unique_ptr<SessionAnswers> answers;
};

std::string env_or(const char* name, std::string fallback)
{
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : std::move(fallback);
}

bool journal_available()
{
    return ::access("/run/systemd/journal/socket", W_OK) == 0;
}

// Where each rule in force was written: for the events this loader writes
// and for authctl (<run_dir>/rules.json).
void publish_rules(const Options& opt, const std::vector<Policy>& policies, const CompiledPolicies& compiled,
                   DecisionLog* log)
{
    auto catalog = RuleCatalog::build(policies, compiled.ids, opt.config.unmatched);
    if (auto st = write_rule_catalog(opt.config.run_dir, catalog); !st)
        spdlog::warn("policy: {}; events still name rules by number", st.error().message());
    if (!log)
        return;
    std::map<uint32_t, std::string> names{{AW_POLICY_FALLBACK, "(unmatched)"}};
    for (const auto& [name, id] : compiled.ids)
        names[id] = name;
    log->policies_changed(std::move(names), std::move(catalog));
}

// Compiles the policies with the addresses their DNS names have now and
// installs them; on error (logged) the generation in force stays.
std::optional<CompiledPolicies> compile_and_install(PinnedMaps& maps, const Options& opt,
                                                    const std::vector<Policy>& policies,
                                                    const std::map<std::string, uint32_t>& known)
{
    NameAddresses names = opt.names ? opt.names->addresses() : NameAddresses{};
    auto compiled =
        compile_policies(policies, opt.config.unmatched, known, CompileLimits{opt.config.policy_entries}, names);
    if (!compiled) {
        spdlog::error("policy: {}; the policies in force are kept", compiled.error().message());
        return std::nullopt;
    }
    if (auto st = maps.install_policies(*compiled); !st) {
        spdlog::error("policy: {}; the policies in force are kept", st.error().message());
        return std::nullopt;
    }
    return std::move(compiled).value();
}

// The configuration is read again on every load: unmatched, the limits and
// the DNS timings may change on reload. False (logged) when it is bad.
bool reread_config(Options& opt)
{
    ConfigLoad cfg = load_config(opt.config_path, opt.config_explicit);
    if (!cfg.ok()) {
        for (const auto& e : cfg.errors)
            spdlog::error("config: {}", e.str());
        spdlog::error("config: the policies in force are kept");
        return false;
    }
    if (cfg.config.pin_dir != opt.config.pin_dir && !opt.config_explicit)
        spdlog::debug("config: pin_dir differs from the running one; restart to apply");
    opt.config.unmatched = opt.unmatched_flag ? *opt.unmatched_flag : cfg.config.unmatched;
    opt.config.policy_entries = cfg.config.policy_entries;
    opt.config.audit_override = cfg.config.audit_override;
    // The resolver's servers are read once, before confinement.
    if (cfg.config.dns.servers != opt.config.dns.servers)
        spdlog::warn("config: dns.servers differs from the running one; restart to apply");
    auto servers = opt.config.dns.servers;
    opt.config.dns = cfg.config.dns;
    opt.config.dns.servers = servers;
    return true;
}

// Loads, compiles and installs the policies; on any error the generation in
// force stays, and the error is logged once here.
bool load_policies(PinnedMaps& maps, Options& opt, DecisionLog* log)
{
    if (!reread_config(opt))
        return false;
    PolicyLoad load;
    std::error_code ec;
    PolicyLoadLimits limits; // sets expand: bounded before compilation too
    limits.max_entries = opt.config.policy_entries;
    if (fs::is_directory(opt.policy, ec))
        load = load_policy_dir(opt.policy, 0, limits);
    else
        load = load_policy_file(opt.policy, 0, limits);
    if (!load.ok()) {
        for (const auto& e : load.errors)
            spdlog::error("policy: {}", e.str());
        spdlog::error("policy: {} error(s) in {}; the policies in force are kept", load.errors.size(),
                      opt.policy.string());
        return false;
    }
    auto known = maps.policy_ids();
    if (!known) {
        spdlog::error("policy: {}", known.error().message());
        return false;
    }
    apply_mode_override(load.policies, opt.config.unmatched, opt.config.audit_override);
    if (opt.names)
        opt.names->use(load.policies, opt.config.dns);
    else if (!policy_names(load.policies).empty())
        spdlog::error("policy: the rules name DNS names but the resolver did not start; they allow nothing");
    auto compiled = compile_and_install(maps, opt, load.policies, *known);
    if (!compiled) {
        if (opt.names) // back to the names of the policies still in force
            opt.names->use(opt.policies, opt.config.dns);
        return false;
    }
    // Publish what is now in force, for PAM to resolve logins against.
    if (auto st = write_policy_index(opt.config.run_dir, build_policy_index(load.policies, compiled->ids, opt.config));
        !st)
        spdlog::error("policy: {}; logins cannot be resolved until it is written", st.error().message());
    publish_rules(opt, load.policies, *compiled, log);
    if (opt.answers) {
        opt.answers->set_rules(policy_name_rules(load.policies, compiled->ids, opt.config.unmatched));
        opt.answers->set_settings(opt.config.dns);
    }
    spdlog::info("policy: {} polic{} from {} in force ({} trie entries, {} shadowed allows dropped)",
                 load.policies.size(), load.policies.size() == 1 ? "y" : "ies", opt.policy.string(),
                 compiled->entries.size(), compiled->dropped_shadowed);
    opt.policies = std::move(load.policies);
    return true;
}

// The addresses of the DNS names changed: the last good policies again,
// with the new addresses, swapped in like any reload.
void recompile_for_names(PinnedMaps& maps, Options& opt)
{
    auto known = maps.policy_ids();
    if (!known) {
        spdlog::error("dns: {}", known.error().message());
        return;
    }
    if (auto compiled = compile_and_install(maps, opt, opt.policies, *known))
        spdlog::info("dns: the addresses of the rules' names changed; {} trie entries in force",
                     compiled->entries.size());
}

// Loads the policies and adds the result to the reload record that
// authctl metrics reads (core/metrics/reloads.h).
bool load_and_record(PinnedMaps& maps, Options& opt, DecisionLog* log)
{
    bool loaded = load_policies(maps, opt, log);
    if (auto recorded = record_reload(opt.config.run_dir, loaded); !recorded)
        spdlog::warn("loader: policy reload not recorded: {}", recorded.error().message());
    return loaded;
}

Status confine_loader(const Options& opt)
{
    // CAP_BPF: new policy tries; CAP_SYS_ADMIN: reading the generation in
    // force back by map id; CAP_PERFMON: BPF object info; CAP_NET_ADMIN:
    // the nftables table (only with the mirror on).
    std::vector<int> keep{CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN};
    if (opt.config.nft_mirror)
        keep.push_back(CAP_NET_ADMIN);
    if (auto st = confine_daemon(keep, kLoaderSyscalls, opt.seccomp); !st)
        return st;
    spdlog::debug("loader: confined (seccomp {})", seccomp_mode_name(opt.seccomp));
    return {};
}

int run_uninstall(const Options& opt)
{
    auto report = uninstall_datapath(opt.config.pin_dir);
    if (!report) {
        spdlog::error("loader: {}", report.error().message());
        return 1;
    }
    spdlog::info("loader: detached {} link(s), removed {} pin(s) under {}", report->links_detached,
                 report->pins_removed, opt.config.pin_dir.string());
    if (opt.config.nft_mirror) {
        if (auto st = nft_delete_table(); !st) {
            spdlog::error("loader: {}", st.error().message());
            return 1;
        }
        spdlog::info("loader: removed nftables table inet {}", kNftTable);
    }
    return 0;
}

// Watches the policy file or directory and the configuration file; returns
// an inotify fd (or an invalid one, with a warning, when it cannot).
Fd watch_files(const Options& opt)
{
    Fd fd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!fd) {
        spdlog::warn("loader: no file watching ({}); SIGHUP still reloads", std::strerror(errno));
        return fd;
    }
    constexpr uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_ATTRIB;
    std::error_code ec;
    fs::path policy_dir = fs::is_directory(opt.policy, ec) ? opt.policy : opt.policy.parent_path();
    if (inotify_add_watch(fd.get(), policy_dir.c_str(), mask) < 0)
        spdlog::warn("loader: cannot watch {}: {}", policy_dir.string(), std::strerror(errno));
    if (!opt.config_path.empty() && opt.config_path.parent_path() != policy_dir &&
        fs::exists(opt.config_path.parent_path(), ec))
        inotify_add_watch(fd.get(), opt.config_path.parent_path().c_str(), mask);
    return fd;
}

DatapathOptions datapath_options(const Options& opt)
{
    DatapathOptions dp;
    dp.pin_dir = opt.config.pin_dir;
    dp.enforcement_roots = opt.config.enforcement_roots;
    dp.max_sessions = opt.config.max_sessions;
    dp.events_per_sec = opt.config.events_per_sec;
    dp.deny_unknown_cgroups = opt.config.deny_unknown_cgroups;
    dp.debug_log = [](const std::string& line) { spdlog::debug("libbpf: {}", line); };
    return dp;
}

// One loader per installation (core/daemon/daemon.h). The pin directory is
// made (and checked, with the rest of what an install needs) before it is
// locked, so that the first start of a fresh one is locked too.
std::optional<InstanceLock> lock_instance(const Options& opt)
{
    if (auto st = prepare_install(datapath_options(opt)); !st) {
        spdlog::error("loader: {}", st.error().message());
        return std::nullopt;
    }
    auto lock = InstanceLock::take(opt.config.run_dir, "authwall-loader", opt.config.pin_dir, opt.config.pin_dir);
    if (!lock) {
        spdlog::error("loader: {}", lock.error().message());
        return std::nullopt;
    }
    return std::move(lock).value();
}

// Installs (or re-adopts) the data plane and logs what it did.
bool install(const Options& opt)
{
    auto report = install_datapath(datapath_options(opt));
    if (!report) {
        spdlog::error("loader: {}", report.error().message());
        return false;
    }
    for (const auto& l : report->links) {
        const char* what = l.action == LinkState::Action::Attached  ? "attached"
                           : l.action == LinkState::Action::Updated ? "replaced program on"
                                                                    : "detached stale";
        spdlog::debug("loader: {} {} at cgroup {}", what, l.program, l.cgroup_id);
    }
    spdlog::info("loader: data plane {} at {} root(s), pins in {}", report->maps_adopted ? "re-adopted" : "installed",
                 opt.config.enforcement_roots.size(), opt.config.pin_dir.string());
    if (!report->lsm_socket_create)
        spdlog::warn("loader: socket families other than inet/inet6 (packet, netlink, ...) cannot be refused: {}",
                     report->lsm_unavailable);
    if (opt.config.nft_mirror) {
        // The sets exist before the first login; cgroupd fills and repairs them.
        if (auto st = nft_ensure_table(); !st) {
            spdlog::error("loader: nft_mirror is on but the table cannot be made: {}", st.error().message());
            return false;
        }
        spdlog::info("loader: nftables mirror: table inet {} ready", kNftTable);
    }
    return true;
}

// DNS names: the sessions' answers, and the resolver's answers and timers.
void watch_names(EventLoop& loop, PinnedMaps& maps, Options& opt)
{
    if (opt.answers)
        loop.on_readable(opt.answers->epoll_fd(), [&opt] {
            opt.answers->poll();
            if (opt.names)
                opt.names->note_session_answers(opt.answers->counts());
        });
    if (opt.names)
        for (int fd : opt.names->fds())
            loop.on_readable(fd, [&maps, &opt] {
                if (opt.names->ready())
                    recompile_for_names(maps, opt);
            });
}

// The running loader: drains decision events, reloads on SIGHUP and on file
// changes (debounced: editors write in several steps), until SIGTERM.
int serve(PinnedMaps& maps, Options& opt, Fd inotify, DecisionLog& log)
{
    auto reader = EventReader::open(opt.config.pin_dir, [&log](const DecisionEvent& e) { log.write(e); });
    auto loop = EventLoop::create();
    Fd debounce(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!reader || !loop || !debounce) {
        spdlog::error("loader: cannot set up the event loop: {}", !reader ? reader.error().message()
                                                                  : !loop ? loop.error().message()
                                                                          : std::strerror(errno));
        return 1;
    }
    auto reload = [&](const char* why) {
        sd_notify(0, "RELOADING=1");
        spdlog::info("loader: {}, reloading policies", why);
        load_and_record(maps, opt, &log);
        sd_notify(0, "READY=1");
    };
    loop->on_hangup([&] { reload("SIGHUP"); });
    loop->on_readable(reader->epoll_fd(), [&] {
        if (auto r = reader->poll(0); !r)
            spdlog::warn("loader: {}", r.error().message());
    });
    watch_names(*loop, maps, opt);
    if (inotify) {
        loop->on_readable(inotify.get(), [&] {
            char buf[4096];
            while (read(inotify.get(), buf, sizeof(buf)) > 0) {
            }
            itimerspec its{};
            its.it_value.tv_sec = opt.reload_delay_ms / 1000;
            its.it_value.tv_nsec = (opt.reload_delay_ms % 1000) * 1'000'000L;
            timerfd_settime(debounce.get(), 0, &its, nullptr);
        });
        loop->on_readable(debounce.get(), [&] {
            uint64_t expirations = 0;
            if (read(debounce.get(), &expirations, sizeof(expirations)) == sizeof(expirations))
                reload("policy files changed");
        });
    }
    // Setup is done: from here on the loader only reloads policies, reads
    // the ring buffer and logs. It keeps the capabilities that needs and
    // the system calls it was seen to make (loader/syscalls.h).
    if (auto st = confine_loader(opt); !st) {
        spdlog::error("loader: cannot confine itself: {}", st.error().message());
        return 1;
    }
    sd_notifyf(0, "READY=1\nSTATUS=enforcing, pins in %s\nMAINPID=%d", opt.config.pin_dir.c_str(), getpid());
    spdlog::info("loader: running (SIGHUP reloads the policies; stopping leaves enforcement in place)");
    loop->run();
    sd_notify(0, "STOPPING=1");
    (void)reader->poll(0); // last events; errors do not matter now
    spdlog::info("loader: stopping; enforcement stays in place (authwall-loader --uninstall removes it)");
    return 0;
}

int run(Options& opt)
{
    // Signals are taken before anything is installed, so a SIGHUP during
    // start-up is not lost and SIGTERM never interrupts a half-made install.
    EventLoop::block_signals();
    if (!install(opt))
        return 1;
    auto maps = PinnedMaps::open(opt.config.pin_dir);
    if (!maps) {
        spdlog::error("loader: {}", maps.error().message());
        return 1;
    }
    // Watch the files before the first load: a change made while it runs
    // queues an event (one more reload) instead of being lost until the
    // next change or SIGHUP.
    Fd inotify = opt.once ? Fd() : watch_files(opt);
    if (auto answers = SessionAnswers::open(opt.config.pin_dir, *maps); !answers)
        spdlog::error("dns: {}; rules that name hosts allow only what the loader resolves", answers.error().message());
    else
        opt.answers = std::move(answers).value();
    // The resolver reads /etc/resolv.conf now, before confinement.
    if (auto names = PolicyNames::create(opt.config.dns, opt.config.run_dir))
        opt.names = std::move(names).value();
    else
        spdlog::error("dns: {}; rules that name hosts allow nothing", names.error().message());
    DecisionLog log(journal_available(), opt.config.event_log, opt.config.run_dir);
    bool policies_loaded = load_and_record(*maps, opt, &log);
    if (!policies_loaded && !maps->has_active_policies())
        spdlog::error("loader: no policy is in force; sessions are denied until a valid policy loads");
    if (opt.once)
        return policies_loaded ? 0 : 1;
    return serve(*maps, opt, std::move(inotify), log);
}

// The flags only the loader takes; what they override in the configuration.
struct LoaderFlags {
    std::string policy, unmatched;
    uint32_t max_sessions = 0, events_per_sec = 0;
    bool deny_unknown = false;
};

void add_loader_flags(CLI::App& app, LoaderFlags& f, Options& opt)
{
    app.add_option("--policy", f.policy,
                   std::string("policy file or directory of *.toml (env AUTHWALL_POLICY; default ") +
                       kDefaultPolicyDir + ")");
    app.add_option("--unmatched", f.unmatched, "for sessions no policy claims: pass, deny or a policy name");
    app.add_option("--max-sessions", f.max_sessions, "capacity of the sessions map")->check(CLI::Range(1u, 1u << 22));
    app.add_option("--events-per-sec", f.events_per_sec, "denial events per second and CPU (0 = none)");
    app.add_flag("--deny-unknown-cgroups", f.deny_unknown,
                 "refuse traffic of cgroups that are no session (only for roots that hold nothing else)");
    app.add_option("--reload-delay-ms", opt.reload_delay_ms, "quiet time after a file change before reloading")
        ->capture_default_str();
    app.add_flag("--once", opt.once, "install, load the policies and exit (no event loop); exit 1 if they fail");
    app.add_flag("--uninstall", opt.uninstall, "detach every program and remove every pin, then exit");
}

// Applies the loader's flags over the configuration; false (logged) on a
// value no flag check could refuse.
bool apply_loader_flags(const CLI::App& app, LoaderFlags& f, Options& opt)
{
    Config& c = opt.config;
    if (f.policy.empty())
        f.policy = env_or("AUTHWALL_POLICY", "");
    opt.policy = f.policy.empty() ? c.policy_dir : fs::path(f.policy);
    if (!f.unmatched.empty()) {
        if (f.unmatched == "pass")
            opt.unmatched_flag = Fallback{Fallback::Kind::Pass, {}};
        else if (f.unmatched == "deny")
            opt.unmatched_flag = Fallback{Fallback::Kind::Deny, {}};
        else if (valid_policy_name(f.unmatched))
            opt.unmatched_flag = Fallback{Fallback::Kind::Policy, f.unmatched};
        else {
            spdlog::error("loader: --unmatched must be pass, deny or a policy name, not '{}'", f.unmatched);
            return false;
        }
        c.unmatched = *opt.unmatched_flag;
    }
    if (f.max_sessions)
        c.max_sessions = f.max_sessions;
    if (app.count("--events-per-sec"))
        c.events_per_sec = f.events_per_sec;
    if (f.deny_unknown)
        c.deny_unknown_cgroups = true;
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    Options opt;
    CLI::App app{"authwall-loader: loads and attaches the authwall data plane and keeps the policies in force.\n"
                 "Stopping it leaves enforcement in place; --uninstall removes it.\n"
                 "Settings come from the flags, then the environment, then the configuration file.",
                 "authwall-loader"};
    app.get_formatter()->column_width(34);
    DaemonFlags flags;
    LoaderFlags loader_flags;
    add_daemon_flags(app, flags,
                     "cgroup2 directory to enforce at, repeatable (env AUTHWALL_CGROUP_ROOTS, ':'-separated; "
                     "default: the cgroup2 root)");
    add_loader_flags(app, loader_flags, opt);
    if (auto done = parse_command_line(app, argc, argv))
        return *done;
    start_logging("authwall-loader", flags.debug);
    opt.debug = flags.debug;
    opt.seccomp = seccomp_mode(flags);

    // First, so that an unprivileged run gets this one sentence, not an
    // error about a file it cannot read.
    if (auto st = check_environment(); !st) {
        spdlog::error("loader: {}", st.error().message());
        return 1;
    }
    auto resolved = load_daemon_config(flags);
    if (!resolved)
        return 1;
    opt.config_path = resolved->config_path;
    opt.config_explicit = resolved->config_explicit;
    opt.config = resolved->load.config;
    if (!apply_loader_flags(app, loader_flags, opt))
        return 2;
    if (opt.config.enforcement_roots.empty() && !opt.uninstall) {
        auto mount = find_cgroup2_mount();
        if (!mount) {
            spdlog::error("loader: {}", mount.error().message());
            return 1;
        }
        opt.config.enforcement_roots.push_back(mount->mount_point);
    }
    if (opt.uninstall)
        return run_uninstall(opt);
    auto lock = lock_instance(opt);
    if (!lock)
        return 1;
    try {
        return run(opt);
    } catch (const std::exception& e) {
        spdlog::critical("loader: {}", e.what());
        return 1;
    }
}
