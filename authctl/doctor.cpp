// SPDX-License-Identifier: Apache-2.0
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

// The findings in the order they are reported, each with its area
// ("kernel", "pins", "pam").
struct Findings {
    std::vector<std::pair<std::string, Finding>> list;
    void add(const char* area, Finding::Level level, std::string message)
    {
        list.push_back({area, Finding{level, std::move(message)}});
    }
};

void check_kernel(Findings& findings)
{
    auto mount = find_cgroup2_mount();
    if (mount)
        findings.add("kernel", Finding::Level::Ok, "cgroup2 is mounted at " + mount->mount_point.string());
    else
        findings.add("kernel", Finding::Level::Error, mount.error().message());
    if (::access("/sys/kernel/btf/vmlinux", R_OK) == 0)
        findings.add("kernel", Finding::Level::Ok, "kernel BTF is present");
    else
        findings.add("kernel", Finding::Level::Warning, "no kernel BTF: non-inet socket families cannot be refused");
    std::string why;
    if (bpf_lsm_available(&why))
        findings.add("kernel", Finding::Level::Ok, "BPF LSM is listed among the active LSMs");
    else
        findings.add("kernel", Finding::Level::Warning, why);
}

// bpffs, the pinned maps, and the program links (the LSM one among them).
void check_pins(const std::filesystem::path& pin_dir, Findings& findings)
{
    if (is_bpffs(pin_dir.parent_path()) || is_bpffs(pin_dir))
        findings.add("pins", Finding::Level::Ok, "bpffs is mounted for " + pin_dir.string());
    else
        findings.add("pins", Finding::Level::Error,
                     "no bpffs at " + pin_dir.parent_path().string() +
                         " (mount -t bpf bpf /sys/fs/bpf; authwall-loader does it)");
    auto maps = PinnedMaps::open(pin_dir);
    if (!maps) {
        findings.add("pins", Finding::Level::Error, maps.error().message());
        return;
    }
    findings.add("pins", Finding::Level::Ok, "authwall is installed under " + pin_dir.string());
    auto links = list_links(pin_dir);
    size_t n = links ? links->size() : 0;
    findings.add("pins", n >= 9 ? Finding::Level::Ok : Finding::Level::Error,
                 std::to_string(n) + " program links are pinned" + (n >= 9 ? "" : " (expected at least 9)"));
    bool families = false;
    if (links)
        for (const auto& l : *links)
            families |= l.program == kLsmProgramName;
    if (!families)
        findings.add("pins", Finding::Level::Warning,
                     "the BPF LSM program is not attached: packet, netlink, ... sockets cannot be refused");
}

// The user layer is armed by any PAM session of the user; the
// non-interactive stacks (cron, at, the user manager) arm it for a
// user's first job since boot, before any login.
void check_noninteractive_stacks(const std::string& pam_dir, Findings& findings)
{
    for (const char* other : {"systemd-user", "cron", "atd"}) {
        auto s = pam_session_stack(pam_dir, other);
        if (!s)
            continue; // not installed
        bool present = std::any_of(s->begin(), s->end(), [](const PamLine& l) {
            return l.module.find("pam_authwall.so") != std::string::npos;
        });
        if (present)
            findings.add("pam", Finding::Level::Ok, std::string("pam_authwall.so is in the ") + other + " stack");
        else
            findings.add("pam", Finding::Level::Warning,
                         std::string("pam_authwall.so is not in the ") + other +
                             " stack (common-session-noninteractive): a confined user's " + other +
                             " job runs unconfined until their first login since boot "
                             "(pam-auth-update --enable authwall writes both stacks)");
    }
}

// The service's session stack, the non-interactive stacks when the user
// layer is on, and the service's running processes.
void check_pam(const Context& ctx, const std::string& service, const std::string& pam_dir, Findings& findings)
{
    auto stack = pam_session_stack(pam_dir, service);
    if (!stack) {
        findings.add("pam", Finding::Level::Error, stack.error().message());
    } else {
        for (auto& f : check_pam_stack(*stack))
            findings.list.push_back({"pam", f});
    }
    if (ctx.config.user_layer)
        check_noninteractive_stacks(pam_dir, findings);
    check_service_processes(service, ctx.config.pin_dir, [&](Finding::Level level, std::string message) {
        findings.add("pam", level, std::move(message));
    });
}

// Prints the findings (a table, or JSON); 1 when one of them is an error.
int report(const Context& ctx, const Findings& findings)
{
    bool errors = false;
    nlohmann::json j = nlohmann::json::array();
    for (const auto& [area, f] : findings.list) {
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

} // namespace

int cmd_doctor(const Context& ctx, const std::string& service, const std::string& pam_dir)
{
    Findings findings;
    check_kernel(findings);
    check_pins(ctx.config.pin_dir, findings);
    if (!service.empty())
        check_pam(ctx, service, pam_dir, findings);
    return report(ctx, findings);
}

} // namespace authctl
