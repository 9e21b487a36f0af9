// SPDX-License-Identifier: Apache-2.0
#include "bench/harness.h"

#include "core/session/service.h"

#include <grp.h>

#include "core/session/login.h"

#include "core/policy/policy_file.h"
#include "core/policy/index.h"
#include "core/session/record.h"
#include "core/base/time.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace authwall::bench {

int linked_program(const std::filesystem::path& pin_dir, const std::string& name)
{
    for (const auto& entry : std::filesystem::directory_iterator(pin_dir / "links")) {
        std::string link_name = entry.path().filename().string();
        if (link_name.substr(0, link_name.find('@')) != name)
            continue;
        int link = bpf_obj_get(entry.path().c_str());
        bpf_link_info info{};
        uint32_t len = sizeof(info);
        if (link < 0 || bpf_obj_get_info_by_fd(link, &info, &len) != 0)
            die("read link " + link_name);
        ::close(link);
        return bpf_prog_get_fd_by_id(info.prog_id);
    }
    return -1;
}

namespace fs = std::filesystem;

void die(const std::string& what)
{
    std::fprintf(stderr, "bench: %s\n", what.c_str());
    std::exit(1);
}

namespace {
void lo_up()
{
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    ioctl(s, SIOCGIFFLAGS, &ifr);
    ifr.ifr_flags |= IFF_UP;
    ioctl(s, SIOCSIFFLAGS, &ifr);
    ::close(s);
}
} // namespace

std::vector<double> collect_from_child(const std::function<void(const std::function<void(double)>& emit)>& body)
{
    int p[2];
    if (pipe(p) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        ::close(p[0]);
        body([&](double v) { (void)!::write(p[1], &v, sizeof(v)); });
        _exit(0);
    }
    ::close(p[1]);
    std::vector<double> out;
    double v = 0;
    while (::read(p[0], &v, sizeof(v)) == sizeof(v))
        out.push_back(v);
    ::close(p[0]);
    waitpid(pid, nullptr, 0);
    return out;
}

double in_child(const fs::path& cgroup, const std::function<double()>& fn, uid_t uid)
{
    auto values = collect_from_child([&](const std::function<void(double)>& emit) {
        if (!cgroup_move_pid(cgroup, getpid()).ok() || unshare(CLONE_NEWNET) != 0)
            _exit(1);
        lo_up();
        if (uid != 0 && (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0))
            _exit(1);
        emit(fn());
    });
    return values.empty() ? -1 : values.front();
}

int parse_bench_args(int argc, char** argv, const char* name, const char* what, bool* quick)
{
    *quick = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick") {
            *quick = true;
            continue;
        }
        std::printf("usage: %s [--quick]\n  %s\n", name, what);
        return a == "--help" ? 0 : 2;
    }
    return -1;
}

double connect_rate(int connects)
{
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < connects; ++i) {
        int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0 || errno != ECONNREFUSED)
            _exit(2);
        ::close(s);
    }
    std::chrono::duration<double> d = std::chrono::steady_clock::now() - start;
    return connects / d.count();
}

double percentile(std::vector<double> v, double q)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

namespace {
class NullSink final : public EventSink {
  public:
    void session_event(const std::string&, const SessionRecord&, const std::string&, const SessionTally*) override {}
};
} // namespace

std::vector<double> open_close_latencies(const Config& config, int iterations, const std::string& rhost)
{
    auto out = collect_from_child([&](const std::function<void(double)>& emit) {
        NullSink sink;
        OpenRequest req{"nobody", "sshd", rhost, "pts/0", getpid(), ""};
        for (int i = 0; i < iterations; ++i) {
            auto t0 = std::chrono::steady_clock::now();
            auto opened = open_login_session(req, config, RhostMode::Lax, sink);
            if (opened.error)
                _exit(2);
            auto closed = close_login_session(CloseHint{opened.result->record->id, opened.result->cgroup_mount},
                                              getpid(), "nobody", config, sink);
            if (!closed || !closed->closed)
                _exit(3);
            emit(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
    });
    if (static_cast<int>(out.size()) != iterations)
        die("measurement child failed after " + std::to_string(out.size()) + " cycles");
    return out;
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

std::string policy_with_rules(const std::string& name, int rules)
{
    std::string text =
        "[policy." + name + ".egress]\ndefault = \"deny\"\nallow = [\"127.0.0.1 tcp\", \"127.0.0.1 udp\"";
    text.reserve(static_cast<size_t>(rules) * 28);
    for (int i = 2; i < rules; ++i)
        text += ", \"10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) + "." +
                std::to_string(i & 255) + " tcp " + std::to_string(1 + i % 60000) + "\"";
    return text + "]\n";
}

BenchRoot::BenchRoot(uint32_t max_sessions)
{
    if (geteuid() != 0)
        die("needs root");
    auto mount = find_cgroup2_mount();
    if (!mount)
        die(mount.error().message());
    mount_ = *mount;
    std::string suffix = std::to_string(getpid());
    root_ = mount_.mount_point / ("authwall-bench-" + suffix);
    plain_ = mount_.mount_point / ("authwall-bench-plain-" + suffix);
    pins_ = "/sys/fs/bpf/authwall-bench-" + suffix;
    run_dir_ = fs::temp_directory_path() / ("authwall-bench-run-" + suffix);
    for (const auto& p : {root_, plain_})
        if (auto st = cgroup_create(p); !st)
            die(st.error().message());
    DatapathOptions opt;
    opt.pin_dir = pins_;
    opt.enforcement_roots = {root_};
    opt.max_sessions = max_sessions;
    auto report = install_datapath(opt);
    if (!report)
        die(report.error().message());
    auto maps = PinnedMaps::open(pins_);
    if (!maps)
        die(maps.error().message());
    maps_.emplace(std::move(maps).value());
}

BenchRoot::~BenchRoot()
{
    maps_.reset();
    uninstall_datapath(pins_).ok();
    for (auto it = made_.rbegin(); it != made_.rend(); ++it)
        cgroup_remove_tree(*it).ok();
    cgroup_remove_tree(root_).ok();
    cgroup_remove_tree(plain_).ok();
    std::error_code ec;
    fs::remove_all(run_dir_, ec);
}

fs::path BenchRoot::cgroup(const std::string& name)
{
    fs::path p = root_ / name;
    if (auto st = cgroup_create(p); !st)
        die(st.error().message());
    made_.push_back(p);
    return p;
}

fs::path BenchRoot::plain_cgroup()
{
    return plain_;
}

void BenchRoot::open_session(const fs::path& cgroup, uint32_t policy_id)
{
    add_recorded_session(cgroup, SessionKind::Login, policy_id, "#" + std::to_string(policy_id), run_dir_);
}

CompiledPolicies BenchRoot::install_policy_text(const std::string& toml, const Config* index_for)
{
    auto load = parse_policy_text(toml, "bench");
    if (!load.ok())
        die(load.errors[0].str());
    auto known = maps_->policy_ids();
    auto compiled = compile_policies(load.policies, Fallback{}, known ? *known : std::map<std::string, uint32_t>{});
    if (!compiled)
        die(compiled.error().message());
    if (auto st = maps_->install_policies(*compiled); !st)
        die(st.error().message());
    if (index_for)
        if (auto st =
                write_policy_index(index_for->run_dir, build_policy_index(load.policies, compiled->ids, *index_for));
            !st)
            die(st.error().message());
    return std::move(compiled).value();
}

uint64_t BenchRoot::add_recorded_session(const fs::path& cgroup, SessionKind kind, uint32_t policy_id,
                                         const std::string& policy, const fs::path& run_dir)
{
    OpenSpec spec;
    spec.record.id = *cgroup_id(cgroup);
    spec.record.kind = kind;
    spec.record.user = "nobody";
    spec.record.service = "sshd";
    spec.record.policy = policy;
    spec.record.policy_id = policy_id;
    spec.record.cgroup = cgroup.string();
    spec.level = *cgroup_level(mount_, cgroup);
    struct NoEvents final : EventSink {
        void session_event(const std::string&, const SessionRecord&, const std::string&, const SessionTally*) override
        {
        }
    } events;
    PinnedSessionStore store(&*maps_, run_dir, false, linked_login_extras());
    auto rec = SessionService(store, events).open(std::move(spec));
    if (!rec)
        die(rec.error().message());
    return rec->id;
}

} // namespace authwall::bench
