// SPDX-License-Identifier: Apache-2.0
#include "tests/support.h"

#include "core/dataplane/pins.h"
#include "core/policy/compiler.h"
#include "core/session/service.h"

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <fstream>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

namespace authwall::test {

namespace fs = std::filesystem;

bool privileged_required()
{
    const char* v = std::getenv("AUTHWALL_REQUIRE_PRIVILEGED");
    return v && std::string(v) == "1";
}

std::string privileged_unavailable_reason()
{
    if (geteuid() != 0)
        return "needs root (BPF, cgroups, network namespaces)";
    if (auto st = check_environment(); !st)
        return st.error().message();
    if (auto st = prepare_pin_dir("/sys/fs/bpf/authwall-probe-" + unique_suffix()); !st)
        return st.error().message();
    uninstall_datapath("/sys/fs/bpf/authwall-probe-" + unique_suffix()).ok();
    return {};
}

void require_privileged_or_exit(const char* binary)
{
    std::string why = privileged_unavailable_reason();
    if (why.empty())
        return;
    if (privileged_required()) {
        std::cerr << binary << ": FAILED: privileged tests cannot run here: " << why
                  << " (AUTHWALL_REQUIRE_PRIVILEGED=1 turns this skip into a failure)\n";
        std::exit(1);
    }
    std::cerr << binary << ": SKIPPED: " << why << "\n";
    std::exit(77);
}

std::string unique_suffix()
{
    return std::to_string(getpid());
}

namespace {
void bring_lo_up()
{
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    ::close(s);
}

bool to_sockaddr(const std::string& address, uint16_t port, sockaddr_storage& ss, socklen_t& len)
{
    std::memset(&ss, 0, sizeof(ss));
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, address.c_str(), &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        len = sizeof(*a4);
        return true;
    }
    if (inet_pton(AF_INET6, address.c_str(), &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        len = sizeof(*a6);
        return true;
    }
    return false;
}
} // namespace

int run_probe(const fs::path& cgroup, const std::string& netns, const std::function<int()>& probe)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        ::close(pipefd[0]);
        int result = 0;
        if (!cgroup.empty()) {
            if (auto st = cgroup_move_pid(cgroup, getpid()); !st) {
                std::fprintf(stderr, "probe: %s\n", st.error().message().c_str());
                _exit(99);
            }
        }
        if (netns == "new") {
            if (unshare(CLONE_NEWNET) != 0)
                _exit(98);
            bring_lo_up();
        } else if (!netns.empty()) {
            int fd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
                _exit(97);
            ::close(fd);
        }
        result = probe();
        if (::write(pipefd[1], &result, sizeof(result)) != sizeof(result))
            _exit(96);
        _exit(0);
    }
    ::close(pipefd[1]);
    int result = -1;
    ssize_t n = ::read(pipefd[0], &result, sizeof(result));
    ::close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (n != sizeof(result)) {
        if (WIFSIGNALED(status))
            return -1000 - WTERMSIG(status);
        return -2000 - (WIFEXITED(status) ? WEXITSTATUS(status) : 0);
    }
    return result;
}

int run_probe_as(const fs::path& cgroup, const ProbeIdentity& who, const std::function<int()>& probe,
                 const std::string& netns)
{
    return run_probe(cgroup, netns, [&]() {
        if (setgroups(0, nullptr) != 0 || setresgid(who.gid, who.gid, who.gid) != 0 ||
            setresuid(who.ruid, who.euid, who.euid) != 0)
            return -3000 - errno;
        return probe();
    });
}

namespace {
// A non-blocking TCP connect, from `source` when it is not empty; 0 or errno
// (ETIMEDOUT when no answer came within timeout_ms).
int connect_tcp(const std::string& source, const std::string& address, uint16_t port, int timeout_ms)
{
    sockaddr_storage src{}, dst{};
    socklen_t src_len = 0, dst_len = 0;
    if (!to_sockaddr(address, port, dst, dst_len))
        return EINVAL;
    if (!source.empty() && (!to_sockaddr(source, 0, src, src_len) || src.ss_family != dst.ss_family))
        return EINVAL;
    int s = ::socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return errno;
    int err = 0;
    if (!source.empty() && ::bind(s, reinterpret_cast<sockaddr*>(&src), src_len) != 0)
        err = errno;
    else if (::connect(s, reinterpret_cast<sockaddr*>(&dst), dst_len) != 0)
        err = errno;
    if (err == EINPROGRESS) {
        pollfd p{s, POLLOUT, 0};
        if (poll(&p, 1, timeout_ms) <= 0) {
            err = ETIMEDOUT;
        } else {
            socklen_t el = sizeof(err);
            getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
        }
    }
    ::close(s);
    return err;
}
} // namespace

int tcp_connect(const std::string& address, uint16_t port, int timeout_ms)
{
    return connect_tcp("", address, port, timeout_ms);
}

int tcp_connect_from(const std::string& source, const std::string& address, uint16_t port, int timeout_ms)
{
    return connect_tcp(source, address, port, timeout_ms);
}

int udp_send(const std::string& address, uint16_t port)
{
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (!to_sockaddr(address, port, ss, len))
        return EINVAL;
    int s = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return errno;
    char byte = 'x';
    int rc = static_cast<int>(::sendto(s, &byte, 1, 0, reinterpret_cast<sockaddr*>(&ss), len));
    int err = rc == 1 ? 0 : errno;
    ::close(s);
    return err;
}

int tcp_bind(const std::string& address, uint16_t port)
{
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (!to_sockaddr(address, port, ss, len))
        return EINVAL;
    int s = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return errno;
    int rc = ::bind(s, reinterpret_cast<sockaddr*>(&ss), len);
    int err = rc == 0 ? 0 : errno;
    ::close(s);
    return err;
}

int open_socket(int family, int type, int protocol)
{
    int s = ::socket(family, type | SOCK_CLOEXEC, protocol);
    if (s < 0)
        return errno;
    ::close(s);
    return 0;
}

int connect_with_listener(const std::string& listen_on, const std::string& target, uint16_t port)
{
    int l = tcp_listen(listen_on, port);
    if (l < 0)
        return 10000 - l;
    int rc = tcp_connect(target, port);
    ::close(l);
    return rc;
}

int tcp_listen(const std::string& address, uint16_t port)
{
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (!to_sockaddr(address, port, ss, len))
        return -EINVAL;
    int s = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(s, 64) != 0) {
        int err = errno;
        ::close(s);
        return -err;
    }
    return s;
}

Listeners::Listeners(const fs::path& cgroup, const std::string& netns, const std::string& address,
                     std::initializer_list<uint16_t> ports)
{
    int ready[2];
    BOOST_REQUIRE_EQUAL(pipe2(ready, O_CLOEXEC), 0);
    pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) {
        ::close(ready[0]);
        ::close(ready[1]);
        BOOST_FAIL("fork: " << std::strerror(errno));
    }
    if (pid_ == 0) {
        ::close(ready[0]);
        // Dies with the test (a ctest timeout kills it with SIGKILL): its
        // sockets must not keep the netns and cgroup alive.
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(1);
        char ok = '0';
        if (cgroup.empty() || cgroup_move_pid(cgroup, getpid()).ok()) {
            int fd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
            if (fd >= 0 && setns(fd, CLONE_NEWNET) == 0) {
                ok = '1';
                for (auto port : ports)
                    if (tcp_listen(address, port) < 0)
                        ok = '0';
            }
        }
        (void)!::write(ready[1], &ok, 1);
        while (true)
            pause();
    }
    ::close(ready[1]);
    char ok = 0;
    ssize_t n = ::read(ready[0], &ok, 1);
    ::close(ready[0]);
    if (n != 1 || ok != '1') {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        BOOST_FAIL("the listener in netns " + netns + " did not start");
    }
}

Listeners::~Listeners()
{
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
}

bool wait_until(const std::function<bool()>& done, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (done())
            return true;
        usleep(10000);
    }
    return done();
}

int sh(const std::string& command)
{
    int rc = std::system(command.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string sh_output(const std::string& command)
{
    std::string out;
    FILE* f = popen(command.c_str(), "r");
    if (!f)
        return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        out.append(buf, n);
    pclose(f);
    return out;
}

std::vector<Policy> parse_policies_or_fail(const std::string& toml)
{
    PolicyLoad load = parse_policy_text(toml, "test.toml");
    for (const auto& e : load.errors)
        BOOST_TEST_MESSAGE(e.str());
    BOOST_REQUIRE_MESSAGE(load.ok(), "test policy does not parse");
    return load.policies;
}

Sandbox::Sandbox(const std::string& policy_toml, Fallback fallback)
{
    auto mount = find_cgroup2_mount();
    BOOST_REQUIRE_MESSAGE(mount.ok(), "cgroup2 mount");
    mount_ = *mount;
    std::string suffix = unique_suffix();
    root_ = mount_.mount_point / ("authwall-test-" + suffix);
    pin_dir_ = fs::path("/sys/fs/bpf") / ("authwall-test-" + suffix);
    run_dir_ = fs::temp_directory_path() / ("authwall-test-run-" + suffix);
    // Leftovers of a crashed earlier run of this pid are removed first.
    uninstall_datapath(pin_dir_).ok();
    if (fs::exists(root_)) {
        cgroup_kill(root_).ok();
        usleep(100000);
        cgroup_remove_tree(root_).ok();
    }
    BOOST_REQUIRE(cgroup_create(root_).ok());

    DatapathOptions opt;
    opt.pin_dir = pin_dir_;
    opt.enforcement_roots = {root_};
    opt.events_per_sec = 1000;
    auto report = install_datapath(opt);
    BOOST_REQUIRE_MESSAGE(report.ok(), (report.ok() ? "" : report.error().message()));
    report_ = *report;
    auto maps = PinnedMaps::open(pin_dir_);
    BOOST_REQUIRE_MESSAGE(maps.ok(), (maps.ok() ? "" : maps.error().message()));
    maps_.emplace(std::move(maps).value());
    install_policies(policy_toml, fallback);
}

void Sandbox::install_policies(const std::string& policy_toml, Fallback fallback)
{
    auto policies = parse_policies_or_fail(policy_toml);
    auto known = maps_->policy_ids();
    BOOST_REQUIRE(known.ok());
    auto compiled = compile_policies(policies, fallback, *known);
    BOOST_REQUIRE_MESSAGE(compiled.ok(), (compiled.ok() ? "" : compiled.error().message()));
    auto st = maps_->install_policies(*compiled);
    BOOST_REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.error().message()));
}

Sandbox::~Sandbox()
{
    maps_.reset();
    auto st = uninstall_datapath(pin_dir_);
    if (!st)
        std::cerr << "sandbox cleanup: " << st.error().message() << "\n";
    cgroup_kill(root_).ok();
    for (int i = 0; i < 50; ++i) {
        if (cgroup_remove_tree(root_).ok())
            break;
        usleep(20000);
    }
    std::error_code ec;
    fs::remove_all(run_dir_, ec);
}

fs::path Sandbox::make_cgroup(const std::string& name)
{
    fs::path p = root_ / name;
    std::error_code ec;
    fs::create_directories(p, ec);
    BOOST_REQUIRE_MESSAGE(!ec, "create cgroup " + p.string() + ": " + ec.message());
    return p;
}

uint64_t Sandbox::id_of(const fs::path& cgroup)
{
    auto id = cgroup_id(cgroup);
    BOOST_REQUIRE(id.ok());
    return *id;
}

uint64_t Sandbox::open_session(const std::string& name, const std::string& policy, std::optional<std::string> rhost)
{
    return open_test_session(*maps_, mount_, run_dir_, make_cgroup(name), policy, std::move(rhost));
}

uint64_t open_test_session(PinnedMaps& maps, const CgroupMount& mount, const fs::path& run_dir, const fs::path& cgroup,
                           const std::string& policy, std::optional<std::string> rhost)
{
    auto ids = maps.active_policy_ids();
    BOOST_REQUIRE(ids.ok());
    BOOST_REQUIRE_MESSAGE(ids->count(policy), "policy " + policy + " is in force");
    OpenSpec spec;
    if (rhost) {
        spec.rhost = IpAddress::parse(*rhost);
        BOOST_REQUIRE(spec.rhost.has_value());
        spec.record.rhost = spec.rhost->str();
    }
    auto id = cgroup_id(cgroup);
    BOOST_REQUIRE(id.ok());
    spec.record.id = *id;
    spec.record.uid = 4242;
    spec.record.user = "sandbox";
    spec.record.service = "test";
    spec.record.policy = policy;
    spec.record.policy_id = ids->at(policy);
    spec.record.cgroup = cgroup.string();
    auto level = cgroup_level(mount, cgroup);
    BOOST_REQUIRE(level.ok());
    spec.level = *level;
    struct NoEvents final : EventSink {
        void session_event(const std::string&, const SessionRecord&, const std::string&, const SessionTally*) override
        {
        }
    } events;
    PinnedSessionStore store(&maps, run_dir, false, linked_login_extras());
    auto rec = SessionService(store, events).open(std::move(spec));
    BOOST_REQUIRE_MESSAGE(rec.ok(), (rec.ok() ? "" : rec.error().message()));
    return rec->id;
}

NetNs::NetNs(const std::string& name) : name_(name)
{
    sh("ip netns del " + name_ + " 2>/dev/null");
    BOOST_REQUIRE_EQUAL(sh("ip netns add " + name_), 0);
    exec("ip link set lo up");
}

NetNs::~NetNs()
{
    sh("ip netns del " + name_ + " 2>/dev/null");
}

int NetNs::exec(const std::string& command) const
{
    return sh("ip netns exec " + name_ + " sh -c '" + command + "'");
}

void link_netns(const NetNs& a, const std::string& a_if, const std::string& a_cidr, const NetNs& b,
                const std::string& b_if, const std::string& b_cidr)
{
    BOOST_REQUIRE_EQUAL(
        sh("ip link add " + a_if + " netns " + a.name() + " type veth peer name " + b_if + " netns " + b.name()), 0);
    BOOST_REQUIRE_EQUAL(a.exec("ip addr add " + a_cidr + " dev " + a_if + " && ip link set " + a_if + " up"), 0);
    BOOST_REQUIRE_EQUAL(b.exec("ip addr add " + b_cidr + " dev " + b_if + " && ip link set " + b_if + " up"), 0);
}

} // namespace authwall::test

namespace authwall::test {

std::string proc_status_field(pid_t pid, const std::string& field)
{
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(field + ":", 0) == 0) {
            auto v = line.substr(field.size() + 1);
            v.erase(0, v.find_first_not_of(" \t"));
            return v;
        }
    return "";
}

bool is_confined(pid_t pid, std::initializer_list<int> dropped)
{
    if (proc_status_field(pid, "Seccomp") != "2" || proc_status_field(pid, "NoNewPrivs") != "1")
        return false;
    for (const char* set : {"CapEff", "CapBnd"}) {
        auto bits = std::stoull(proc_status_field(pid, set), nullptr, 16);
        for (int cap : dropped)
            if (bits & (1ull << cap))
                return false;
    }
    return true;
}

InNetns::InNetns(const NetNs& ns)
{
    saved_ = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = ::open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC);
    BOOST_REQUIRE(saved_ >= 0 && fd >= 0);
    BOOST_REQUIRE_EQUAL(setns(fd, CLONE_NEWNET), 0);
    ::close(fd);
}

InNetns::~InNetns()
{
    setns(saved_, CLONE_NEWNET);
    ::close(saved_);
}

} // namespace authwall::test
