// SPDX-License-Identifier: Apache-2.0
#include "core/dataplane/datapath.h"

#include "core/base/abi.h" // before the skeleton: its .rodata view uses the ABI structs
#include "authwall.skel.h"
#include "core/host/cgroup.h"
#include "core/dataplane/maps.h"
#include "core/dataplane/pins.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include <cstdarg>
#include <fstream>
#include <sstream>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>

namespace authwall {

namespace {

struct SkeletonDeleter {
    void operator()(authwall_bpf* skel) const { authwall_bpf__destroy(skel); }
};
using Skeleton = std::unique_ptr<authwall_bpf, SkeletonDeleter>;

struct LinkDeleter {
    void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
using Link = std::unique_ptr<bpf_link, LinkDeleter>;

// libbpf prints through one global callback; route it to the caller's
// debug sink for the duration of an install (serialised by a mutex).
std::mutex g_print_mutex;
std::function<void(const std::string&)>* g_print_sink = nullptr;
std::string g_last_warning;

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args)
{
    // Whole: a verifier log comes in one message, and its end says why.
    va_list again;
    va_copy(again, args);
    int n = vsnprintf(nullptr, 0, format, again);
    va_end(again);
    std::string line(n > 0 ? static_cast<size_t>(n) : 0, '\0');
    if (n > 0)
        vsnprintf(line.data(), line.size() + 1, format, args);
    while (!line.empty() && line.back() == '\n')
        line.pop_back();
    if (level == LIBBPF_WARN)
        g_last_warning = line;
    if (g_print_sink && *g_print_sink)
        (*g_print_sink)(line);
    return 0;
}

class PrintScope {
  public:
    explicit PrintScope(std::function<void(const std::string&)>* sink) : lock_(g_print_mutex)
    {
        g_print_sink = sink;
        g_last_warning.clear();
        previous_ = libbpf_set_print(libbpf_print);
    }
    ~PrintScope()
    {
        libbpf_set_print(previous_);
        g_print_sink = nullptr;
    }
    PrintScope(const PrintScope&) = delete;
    PrintScope& operator=(const PrintScope&) = delete;

  private:
    std::lock_guard<std::mutex> lock_;
    libbpf_print_fn_t previous_ = nullptr;
};

bool has_capabilities()
{
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &hdr, data) != 0)
        return false;
    auto has = [&](int cap) { return (data[cap / 32].effective >> (cap % 32)) & 1u; };
    return has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_NET_ADMIN));
}

bpf_program* program_by_name(bpf_object* obj, std::string_view name)
{
    return bpf_object__find_program_by_name(obj, std::string(name).c_str());
}

std::string load_failure_hint(int err)
{
    if (err == EPERM || err == EACCES)
        return "loading BPF programs needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)";
    if (err == EINVAL || err == EOPNOTSUPP || err == ENOTSUP)
        return "this kernel refused the programs (needs Linux 5.15+ with CONFIG_CGROUP_BPF; run with --debug for "
               "the verifier log)";
    if (!g_last_warning.empty())
        return "libbpf: " + g_last_warning;
    return {};
}

} // namespace

bool bpf_lsm_available(std::string* why)
{
    auto say = [&](std::string text) {
        if (why)
            *why = std::move(text);
        return false;
    };
    if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0)
        return say("the kernel has no BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF)");
    std::ifstream in("/sys/kernel/security/lsm");
    std::string list;
    if (!in || !std::getline(in, list))
        return say("cannot read the active LSM list (/sys/kernel/security/lsm; mount securityfs)");
    std::string item;
    std::istringstream items(list);
    while (std::getline(items, item, ','))
        if (item == "bpf")
            return true;
    return say("BPF LSM is not active (add bpf to the kernel's lsm= list; active: " + list + ")");
}

Status check_environment()
{
    if (!has_capabilities())
        return Error::msg("check", "privileges",
                          "authwall needs root (CAP_SYS_ADMIN, or CAP_BPF with CAP_NET_ADMIN) to load BPF programs");
    auto mount = find_cgroup2_mount();
    if (!mount)
        return mount.error();
    if (!is_cgroup2_dir(mount->mount_point))
        return Error::msg("check", mount->mount_point.string(), "is listed as cgroup2 but is not one");
    // bpf() may be compiled out or disabled for everyone.
    LIBBPF_OPTS(bpf_map_create_opts, opts);
    Fd probe(bpf_map_create(BPF_MAP_TYPE_ARRAY, "aw_probe", 4, 4, 1, &opts));
    if (!probe) {
        int err = errno;
        if (err == ENOSYS)
            return Error::msg("check", "kernel", "this kernel has no BPF support (CONFIG_BPF_SYSCALL)");
        return Error::sys("check", "bpf()", err,
                          "the kernel refuses BPF maps (kernel.unprivileged_bpf_disabled, "
                          "lockdown, or a seccomp filter)");
    }
    return {};
}

Status prepare_install(const DatapathOptions& options)
{
    if (auto st = check_environment(); !st)
        return st;
    if (options.enforcement_roots.empty())
        return Error::msg("install", "data plane", "no enforcement root cgroup configured");
    auto mount = find_cgroup2_mount();
    if (!mount)
        return mount.error();
    for (const auto& root : options.enforcement_roots)
        if (!is_cgroup2_dir(root))
            return Error::msg("use enforcement root", root.string(),
                              "is not a cgroup2 directory (the cgroup2 hierarchy is at " + mount->mount_point.string() +
                                  ")");
    return prepare_pin_dir(options.pin_dir);
}

namespace {

// Points every shared map of the object at its pin: libbpf reuses a pinned
// map, or creates and pins it. libbpf's internal maps (.rodata, ...) and
// the programs' own caches are not pinned: a new object starts them afresh.
Status pin_maps(bpf_object* obj, const std::filesystem::path& pin_dir, InstallReport& report)
{
    bpf_map* map = nullptr;
    bpf_object__for_each_map(map, obj)
    {
        const char* name = bpf_map__name(map);
        if (std::strchr(name, '.') || is_unpinned_map(name))
            continue;
        auto path = map_pin_path(pin_dir, name);
        if (::access(path.c_str(), F_OK) == 0)
            report.maps_adopted = true;
        if (bpf_map__set_pin_path(map, path.c_str()) != 0)
            return Error::sys("set pin path of map", name, errno);
    }
    return {};
}

// Opens the object with its maps pinned and sized, and loads it.
Result<Skeleton> open_and_load(const DatapathOptions& options, bool with_lsm, InstallReport& report)
{
    Skeleton skel(authwall_bpf__open());
    if (!skel)
        return Error::sys("open BPF object", "authwall", errno);
    if (!with_lsm)
        bpf_program__set_autoload(program_by_name(skel->obj, kLsmProgramName), false);
    if (auto st = pin_maps(skel->obj, options.pin_dir, report); !st)
        return st.error();
    bpf_map__set_max_entries(skel->maps.sessions, options.max_sessions);
    bpf_map__set_max_entries(skel->maps.session_stats, options.max_sessions);
    bpf_map__set_max_entries(skel->maps.users, options.max_sessions);
    if (int err = authwall_bpf__load(skel.get()); err != 0) {
        int e = -err;
        std::string hint = load_failure_hint(e);
        if (report.maps_adopted && g_last_warning.find("couldn't reuse pinned map") != std::string::npos)
            hint = "the maps pinned under " + options.pin_dir.string() +
                   " have another layout or size (an older authwall or other limits); run "
                   "authwall-loader --uninstall first";
        return Error::sys("load BPF programs", "authwall", e, hint);
    }
    return skel;
}

// The object loaded, with the LSM program where the kernel takes it. Some
// kernels (lockdown, sandboxes) refuse LSM and tracing programs even to
// root while cgroup programs load fine: then it goes on without it.
Result<Skeleton> load_object(const DatapathOptions& options, InstallReport& report)
{
    report.lsm_socket_create = bpf_lsm_available(&report.lsm_unavailable);
    auto loaded = open_and_load(options, report.lsm_socket_create, report);
    if (!loaded && report.lsm_socket_create) {
        report.lsm_socket_create = false;
        report.lsm_unavailable = "the kernel refused to load the BPF LSM program (" + errno_name(loaded.error().err) +
                                 "; lockdown or a sandbox forbids LSM and tracing programs)";
        loaded = open_and_load(options, false, report);
    }
    return loaded;
}

// Refuses pins of another ABI, then writes this installation's settings.
Status write_install_settings(const DatapathOptions& options)
{
    auto maps = PinnedMaps::open(options.pin_dir);
    if (!maps)
        return maps.error();
    auto current = maps->settings();
    if (!current)
        return current.error();
    if (current->abi_version != 0 && current->abi_version != AW_ABI_VERSION)
        return Error::msg("adopt pins", options.pin_dir.string(),
                          "they were written with ABI " + std::to_string(current->abi_version) + ", this is ABI " +
                              std::to_string(AW_ABI_VERSION) + "; run authwall-loader --uninstall first");
    aw_settings settings{};
    settings.abi_version = AW_ABI_VERSION;
    settings.unknown_verdict = options.deny_unknown_cgroups ? AW_VERDICT_DENY : AW_VERDICT_ALLOW;
    settings.events_per_sec = options.events_per_sec;
    return maps->write_settings(settings);
}

// One program at one root: the program swapped onto the link already
// pinned (no moment without a program, never attached twice), or attached
// and its link pinned.
Result<LinkState> attach_one(bpf_program* prog, std::string_view prog_name, const std::filesystem::path& root,
                             int root_fd, uint64_t cgid, const std::filesystem::path& pin_dir)
{
    auto pin = link_pin_path(pin_dir, prog_name, cgid);
    LinkState state{std::string(prog_name), cgid, pin, LinkState::Action::Attached};
    if (::access(pin.c_str(), F_OK) == 0) {
        Link link(bpf_link__open(pin.c_str()));
        if (!link)
            return Error::sys("open pinned link", pin.string(), errno);
        if (bpf_link__update_program(link.get(), prog) != 0)
            return Error::sys("replace program on link", pin.string(), errno);
        state.action = LinkState::Action::Updated;
        return state;
    }
    Link link(bpf_program__attach_cgroup(prog, root_fd));
    if (!link)
        return Error::sys("attach " + std::string(prog_name) + " to", root.string(), errno);
    if (bpf_link__pin(link.get(), pin.c_str()) != 0)
        return Error::sys("pin link", pin.string(), errno);
    return state;
}

// Every program at every root; the pin names of the links, in `wanted`.
Status attach_all(bpf_object* obj, const DatapathOptions& options, InstallReport& report, std::set<std::string>& wanted)
{
    for (const auto& root : options.enforcement_roots) {
        auto cgid = cgroup_id(root);
        if (!cgid)
            return cgid.error();
        auto dir = open_directory(root);
        if (!dir)
            return dir.error();
        for (auto prog_name : kProgramNames) {
            if (prog_name == kLsmProgramName && !report.lsm_socket_create)
                continue;
            bpf_program* prog = program_by_name(obj, prog_name);
            if (!prog)
                return Error::msg("find program", std::string(prog_name), "missing from the BPF object");
            auto state = attach_one(prog, prog_name, root, dir->get(), *cgid, options.pin_dir);
            if (!state)
                return state.error();
            wanted.insert(state->pin.filename().string());
            report.links.push_back(*state);
        }
    }
    return {};
}

// Detaches and unpins the links of roots no longer configured.
Status detach_stale(const std::filesystem::path& pin_dir, const std::set<std::string>& wanted, InstallReport& report)
{
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(pin_dir / "links", ec)) {
        if (wanted.count(entry.path().filename().string()))
            continue;
        auto pin = parse_link_pin_name(entry.path());
        Link link(bpf_link__open(entry.path().c_str()));
        if (link)
            bpf_link__detach(link.get());
        if (::unlink(entry.path().c_str()) != 0)
            return Error::sys("remove stale link pin", entry.path().string(), errno);
        if (pin)
            report.links.push_back({pin->program, pin->cgroup_id, entry.path(), LinkState::Action::Detached});
    }
    return {};
}

} // namespace

Result<InstallReport> install_datapath(const DatapathOptions& options)
{
    if (auto st = prepare_install(options); !st)
        return st.error();
    auto sink = options.debug_log;
    PrintScope print_scope(&sink);
    InstallReport report;
    auto skel = load_object(options, report);
    if (!skel)
        return skel.error();
    if (auto st = write_install_settings(options); !st)
        return st.error();
    std::set<std::string> wanted;
    if (auto st = attach_all((*skel)->obj, options, report, wanted); !st)
        return st.error();
    if (auto st = detach_stale(options.pin_dir, wanted, report); !st)
        return st.error();
    return report;
}

Result<std::vector<LinkState>> list_links(const std::filesystem::path& pin_dir)
{
    std::vector<LinkState> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(pin_dir / "links", ec))
        if (auto pin = parse_link_pin_name(entry.path()))
            out.push_back({pin->program, pin->cgroup_id, entry.path(), LinkState::Action::Attached});
    if (ec && ec != std::errc::no_such_file_or_directory)
        return Error::sys("list links", (pin_dir / "links").string(), ec.value());
    return out;
}

Result<UninstallReport> uninstall_datapath(const std::filesystem::path& pin_dir)
{
    UninstallReport report;
    std::error_code ec;
    if (!std::filesystem::exists(pin_dir, ec))
        return report;
    // Links first: once they are gone no program runs, then the maps.
    for (const auto& entry : std::filesystem::directory_iterator(pin_dir / "links", ec)) {
        Link link(bpf_link__open(entry.path().c_str()));
        if (link && bpf_link__detach(link.get()) == 0)
            ++report.links_detached;
        if (::unlink(entry.path().c_str()) != 0)
            return Error::sys("remove link pin", entry.path().string(), errno);
        ++report.pins_removed;
    }
    for (const auto& entry : std::filesystem::directory_iterator(pin_dir / "maps", ec)) {
        if (::unlink(entry.path().c_str()) != 0)
            return Error::sys("remove map pin", entry.path().string(), errno);
        ++report.pins_removed;
    }
    for (auto dir : {pin_dir / "links", pin_dir / "maps", pin_dir})
        if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
            return Error::sys("remove pin directory", dir.string(), errno,
                              errno == ENOTEMPTY ? "it holds pins authwall did not create" : "");
    return report;
}

} // namespace authwall
