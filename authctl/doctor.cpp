// authctl doctor: is this host able to enforce, and does the PAM stack of a
// service really enforce? Exit 0 when nothing is an error, 1 otherwise.
#include "authctl/context.h"

#include "core/host/cgroup.h"
#include "core/dataplane/datapath.h"
#include "core/dataplane/maps.h"
#include "authctl/pam_stack.h"
#include "core/dataplane/pins.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <set>
#include <iostream>

namespace authctl {

using namespace authwall;

namespace {

// Running processes named `name`, one per mount namespace.
std::vector<pid_t> processes_named(const std::string& name)
{
    std::vector<pid_t> out;
    std::set<std::string> namespaces;
    for (pid_t pid : processes_with_comm([&](const std::string& comm) { return comm == name; })) {
        std::error_code ec;
        auto ns = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/mnt", ec);
        if (ec || namespaces.insert(ns.string()).second)
            out.push_back(pid);
    }
    return out;
}

// The login service's processes (sshd for --pam sshd) must see cgroup2 and
// the pins: sshd under `ip netns exec` does not, and every login fails.
void check_service_processes(const std::string& process, const std::filesystem::path& pin_dir,
                             const std::function<void(Finding::Level, std::string)>& add)
{
    auto pids = processes_named(process);
    if (pids.empty()) {
        add(Finding::Level::Ok, "no running " + process + " to check for cgroup2 and the pins");
        return;
    }
    bool bad = false;
    for (pid_t pid : pids) {
        if (auto why = mount_namespace_problem(pid, pin_dir)) {
            add(Finding::Level::Error, process + " (pid " + std::to_string(pid) + "): " + *why);
            bad = true;
        }
    }
    if (!bad)
        add(Finding::Level::Ok, "every running " + process + " sees cgroup2 and the pins");
}

} // namespace

int cmd_doctor(const Context& ctx, const std::string& service, const std::string& pam_dir)
{
    std::vector<std::pair<std::string, Finding>> findings; // (area, finding)
    auto add = [&](const char* area, Finding::Level level, std::string message) {
        findings.push_back({area, Finding{level, std::move(message)}});
    };
    auto mount = find_cgroup2_mount();
    if (mount)
        add("kernel", Finding::Level::Ok, "cgroup2 is mounted at " + mount->mount_point.string());
    else
        add("kernel", Finding::Level::Error, mount.error().message());
    if (::access("/sys/kernel/btf/vmlinux", R_OK) == 0)
        add("kernel", Finding::Level::Ok, "kernel BTF is present");
    else
        add("kernel", Finding::Level::Warning, "no kernel BTF: non-inet socket families cannot be refused");
    std::string why;
    if (bpf_lsm_available(&why))
        add("kernel", Finding::Level::Ok, "BPF LSM is listed among the active LSMs");
    else
        add("kernel", Finding::Level::Warning, why);
    if (is_bpffs(ctx.config.pin_dir.parent_path()) || is_bpffs(ctx.config.pin_dir))
        add("pins", Finding::Level::Ok, "bpffs is mounted for " + ctx.config.pin_dir.string());
    else
        add("pins", Finding::Level::Error,
            "no bpffs at " + ctx.config.pin_dir.parent_path().string() +
                " (mount -t bpf bpf /sys/fs/bpf; authwall-loader does it)");
    auto maps = PinnedMaps::open(ctx.config.pin_dir);
    if (maps) {
        add("pins", Finding::Level::Ok, "authwall is installed under " + ctx.config.pin_dir.string());
        auto links = list_links(ctx.config.pin_dir);
        size_t n = links ? links->size() : 0;
        add("pins", n >= 9 ? Finding::Level::Ok : Finding::Level::Error,
            std::to_string(n) + " program links are pinned" + (n >= 9 ? "" : " (expected at least 9)"));
        bool families = false;
        if (links)
            for (const auto& l : *links)
                families |= l.program == kLsmProgramName;
        if (!families)
            add("pins", Finding::Level::Warning,
                "the BPF LSM program is not attached: packet, netlink, ... sockets cannot be refused");
    } else {
        add("pins", Finding::Level::Error, maps.error().message());
    }
    if (!service.empty()) {
        auto stack = pam_session_stack(pam_dir, service);
        if (!stack) {
            add("pam", Finding::Level::Error, stack.error().message());
        } else {
            for (auto& f : check_pam_stack(*stack))
                findings.push_back({"pam", f});
        }
        // The user layer is armed by any PAM session of the user; the
        // non-interactive stacks (cron, at, the user manager) arm it for a
        // user's first job since boot, before any login.
        if (ctx.config.user_layer)
            for (const char* other : {"systemd-user", "cron", "atd"}) {
                auto s = pam_session_stack(pam_dir, other);
                if (!s)
                    continue; // not installed
                bool present = std::any_of(s->begin(), s->end(), [](const PamLine& l) {
                    return l.module.find("pam_authwall.so") != std::string::npos;
                });
                if (present)
                    add("pam", Finding::Level::Ok, std::string("pam_authwall.so is in the ") + other + " stack");
                else
                    add("pam", Finding::Level::Warning,
                        std::string("pam_authwall.so is not in the ") + other +
                            " stack (common-session-noninteractive): a confined user's " + other +
                            " job runs unconfined until their first login since boot "
                            "(pam-auth-update --enable authwall writes both stacks)");
            }
        check_service_processes(service, ctx.config.pin_dir, [&](Finding::Level level, std::string message) {
            add("pam", level, std::move(message));
        });
    }

    bool errors = false;
    nlohmann::json j = nlohmann::json::array();
    for (const auto& [area, f] : findings) {
        const char* level = f.level == Finding::Level::Ok        ? "ok"
                            : f.level == Finding::Level::Warning ? "warning"
                                                                 : "error";
        errors |= f.level == Finding::Level::Error;
        j.push_back({{"area", area}, {"level", level}, {"message", f.message}});
        if (!ctx.json)
            std::cout << (f.level == Finding::Level::Ok        ? "  ok    "
                          : f.level == Finding::Level::Warning ? "  WARN  "
                                                               : "  ERROR ")
                      << area << ": " << f.message << "\n";
    }
    if (ctx.json)
        std::cout << nlohmann::json{{"version", 1}, {"ok", !errors}, {"findings", j}}.dump(2) << "\n";
    return errors ? 1 : 0;
}

} // namespace authctl
