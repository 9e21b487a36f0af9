// SPDX-License-Identifier: Apache-2.0
// Data plane cost, measured side by side in one run and printed as ratios:
// what a process pays (connect() rate, TCP and UDP request/response, small
// UDP sends, iperf3 throughput) and what each hook costs per run (the
// kernel's bpf_stats), from a process in
//   baseline  no programs attached
//   floor     do-nothing programs on the same hooks (bench/floor.bpf.c)
//   floor + socket storage lookup: packet hooks that only look up a
//             socket's storage (the least per-socket memory can cost)
//   rules10   a session whose policy has 10 rules
//   rules10k  a session whose policy has 10 000 rules
//   audit     a session whose policy is rules10's in audit mode: what it
//             would refuse passes, counted and reported (issue #17)
//   outside   authwall's programs attached, the process in no session
//   user layer (docs/SECURITY.md): the process runs as a confined user —
//     in a session whose policy is the user's (one lookup by uid more),
//     in a session whose policy is another (a second decision),
//     in no session (the user layer alone, as under the user manager)
// Scenarios are interleaved over several rounds; medians are reported with
// the spread (lowest-highest ratio over the rounds).
// Needs root. Uses throwaway cgroups and a pin directory, like the tests.
#include "bench/harness.h"
#include "core/dataplane/pins.h"
#include "core/policy/policy_file.h"
#include "floor.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

using namespace authwall;
using namespace authwall::bench;
namespace fs = std::filesystem;

namespace {

int g_connects = 20000;
int g_exchanges = 20000;
int g_rounds = 5;
int g_iperf_seconds = 2;

// iperf3 client throughput (bits/s) against a server in the same netns.
double throughput()
{
    pid_t server = fork();
    if (server == 0) {
        int devnull = ::open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("iperf3", "iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", "5201", static_cast<char*>(nullptr));
        _exit(127);
    }
    usleep(200000);
    std::string cmd = "iperf3 -c 127.0.0.1 -p 5201 -t " + std::to_string(g_iperf_seconds) +
                      " -J 2>/dev/null | sed -n '/\"sum_received\"/,/}/p' | grep -m1 bits_per_second";
    FILE* f = popen(cmd.c_str(), "r");
    char buf[256] = {};
    double bps = -1;
    if (f && fgets(buf, sizeof(buf), f)) {
        const char* colon = std::strchr(buf, ':');
        if (colon)
            bps = std::atof(colon + 1);
    }
    if (f)
        pclose(f);
    kill(server, SIGKILL);
    waitpid(server, nullptr, 0);
    return bps;
}

using Clock = std::chrono::steady_clock;

double per_second(int n, Clock::time_point start)
{
    std::chrono::duration<double> d = Clock::now() - start;
    return n / d.count();
}

sockaddr_in loopback(uint16_t port)
{
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

// Two connected sockets of `type` over loopback, both ends in this process.
std::pair<int, int> loopback_pair(int type)
{
    auto any = loopback(0);
    socklen_t len = sizeof(any);
    int a = ::socket(AF_INET, type | SOCK_CLOEXEC, 0), b = -1;
    if (a < 0 || ::bind(a, reinterpret_cast<sockaddr*>(&any), sizeof(any)) != 0 ||
        ::getsockname(a, reinterpret_cast<sockaddr*>(&any), &len) != 0)
        _exit(3);
    if (type == SOCK_STREAM) {
        int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::listen(a, 1) != 0 || ::connect(c, reinterpret_cast<sockaddr*>(&any), sizeof(any)) != 0)
            _exit(3);
        b = ::accept4(a, nullptr, nullptr, SOCK_CLOEXEC);
        ::close(a);
        return {c, b};
    }
    b = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto bany = loopback(0);
    socklen_t blen = sizeof(bany);
    if (::bind(b, reinterpret_cast<sockaddr*>(&bany), sizeof(bany)) != 0 ||
        ::getsockname(b, reinterpret_cast<sockaddr*>(&bany), &blen) != 0 ||
        ::connect(a, reinterpret_cast<sockaddr*>(&bany), sizeof(bany)) != 0 ||
        ::connect(b, reinterpret_cast<sockaddr*>(&any), sizeof(any)) != 0)
        _exit(3);
    return {a, b};
}

// Request/response of one byte each way: transactions per second.
double request_response(int type)
{
    auto [client, server] = loopback_pair(type);
    char c = 'x';
    auto start = Clock::now();
    for (int i = 0; i < g_exchanges; ++i)
        if (::send(client, &c, 1, 0) != 1 || ::recv(server, &c, 1, 0) != 1 || ::send(server, &c, 1, 0) != 1 ||
            ::recv(client, &c, 1, 0) != 1)
            _exit(4);
    double rate = per_second(g_exchanges, start);
    ::close(client);
    ::close(server);
    return rate;
}

// Unconnected 64-byte datagrams through sendto(): sends per second.
double small_udp_sends()
{
    auto to = loopback(0);
    socklen_t len = sizeof(to);
    int sink = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (::bind(sink, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0 ||
        ::getsockname(sink, reinterpret_cast<sockaddr*>(&to), &len) != 0)
        _exit(5);
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char buf[64] = {};
    auto start = Clock::now();
    for (int i = 0; i < g_exchanges; ++i)
        if (::sendto(s, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != sizeof(buf) ||
            ::recv(sink, buf, sizeof(buf), 0) != sizeof(buf))
            _exit(5);
    double rate = per_second(g_exchanges, start);
    ::close(s);
    ::close(sink);
    return rate;
}

// One 64-byte query per socket, as a stub resolver sends one: socket(),
// sendto(), the sink receives, close(). Queries per second: what a socket
// that lives for one datagram pays, its first datagram's full path.
double one_datagram_sockets()
{
    auto to = loopback(0);
    socklen_t len = sizeof(to);
    int sink = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (::bind(sink, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0 ||
        ::getsockname(sink, reinterpret_cast<sockaddr*>(&to), &len) != 0)
        _exit(5);
    char buf[64] = {};
    int queries = g_connects;
    auto start = Clock::now();
    for (int i = 0; i < queries; ++i) {
        int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0 || ::sendto(s, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != sizeof(buf) ||
            ::recv(sink, buf, sizeof(buf), 0) != sizeof(buf))
            _exit(5);
        ::close(s);
    }
    double rate = per_second(queries, start);
    ::close(sink);
    return rate;
}

// connect() calls per second to closed loopback ports, each to another port
// than the last 32 766 connects of the whole bench (`g_next_port` moves on
// in the parent): every destination is new to the programs' decision cache,
// as a first connect to an address is. The warm case is connect_rate (one
// destination all along). Ports stay below the ephemeral range: a connect
// to the port the kernel picks as its own source port opens (TCP's
// simultaneous open with itself) instead of being refused.
constexpr int kColdPorts = 32767;
int g_next_port = 0;
double connect_rate_cold(int connects)
{
    sockaddr_in to = loopback(0);
    int port = g_next_port;
    auto start = Clock::now();
    for (int i = 0; i < connects; ++i) {
        port = port % kColdPorts + 1;
        to.sin_port = htons(static_cast<uint16_t>(port));
        int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0 || errno != ECONNREFUSED)
            _exit(2);
        ::close(s);
    }
    return per_second(connects, start);
}

// The hooks whose cost per run is reported, by the program name suffix.
const std::vector<std::string> kHooks = {"egress", "ingress", "connect4", "sendmsg4", "sock_create"};

struct RunStats {
    uint64_t ns = 0, runs = 0;
};

RunStats prog_stats(int fd)
{
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
        die("read program info");
    return {info.run_time_ns, info.run_cnt};
}

// The programs of a run: hook name -> program fd.
using Programs = std::map<std::string, int>;

// authwall's programs, from the links the installer pinned.
Programs authwall_programs(const fs::path& pin_dir)
{
    Programs out;
    for (const auto& hook : kHooks)
        if (int fd = linked_program(pin_dir, "aw_" + hook); fd >= 0)
            out[hook] = fd;
    return out;
}

std::map<std::string, RunStats> snapshot(const Programs& progs)
{
    std::map<std::string, RunStats> out;
    for (const auto& [hook, fd] : progs)
        out[hook] = prog_stats(fd);
    return out;
}

struct Workload {
    const char* name;
    std::function<double()> run;
    std::function<void()> after = {}; // in the parent, after each run
};

struct Scenario {
    const char* name;
    fs::path cgroup;
    uid_t uid;
    const Programs* programs; // whose bpf_stats are its hooks' cost (none: baseline)
    std::map<std::string, std::vector<double>> rates;
    std::map<std::string, std::map<std::string, RunStats>> hook_cost;                     // workload -> hook -> runs
    std::map<std::string, std::map<std::string, std::vector<RunStats>>> hook_rounds = {}; // the same, per round
};

void run_round(Scenario& s, const std::vector<Workload>& workloads)
{
    for (const auto& w : workloads) {
        std::map<std::string, RunStats> before;
        if (s.programs)
            before = snapshot(*s.programs);
        s.rates[w.name].push_back(in_child(s.cgroup, w.run, s.uid));
        if (w.after)
            w.after();
        if (!s.programs)
            continue;
        for (const auto& [hook, after] : snapshot(*s.programs)) {
            RunStats round{after.ns - before[hook].ns, after.runs - before[hook].runs};
            auto& cost = s.hook_cost[w.name][hook];
            cost.ns += round.ns;
            cost.runs += round.runs;
            s.hook_rounds[w.name][hook].push_back(round);
        }
    }
}

double ns_per_run(const RunStats& r)
{
    return r.runs ? static_cast<double>(r.ns) / static_cast<double>(r.runs) : 0;
}

void print_rates(const std::vector<Scenario>& scenarios, const std::vector<Workload>& workloads)
{
    for (const auto& w : workloads) {
        const auto& base = scenarios[0].rates.at(w.name);
        double b = median(base);
        std::printf("\n%-30s %14s %8s %16s\n", w.name, "per second", "ratio", "spread");
        for (const auto& s : scenarios) {
            const auto& v = s.rates.at(w.name);
            auto [lo, hi] = std::minmax_element(v.begin(), v.end());
            std::printf("%-30s %14.0f %8.3f %7.3f-%-7.3f\n", s.name, median(v), median(v) / b, *lo / b, *hi / b);
        }
    }
}

// One table per workload: each hook's ns per run over every round, and its
// ratio to the same hook's do-nothing program in the same workload: the
// median of the rounds' ratios and their spread (lowest-highest).
void print_hook_costs(const std::vector<Scenario>& scenarios, const Scenario& floor,
                      const std::vector<Workload>& workloads)
{
    std::printf("\nns per program run (bpf_stats, all rounds) and the ratio to the do-nothing floor in the same "
                "round: median (lowest-highest)\n");
    for (const auto& w : workloads) {
        const auto& floor_cost = floor.hook_cost.at(w.name);
        const auto& floor_rounds = floor.hook_rounds.at(w.name);
        std::printf("\n%-30s", w.name);
        for (const auto& hook : kHooks)
            if (floor_cost.at(hook).runs)
                std::printf(" %24s", hook.c_str());
        std::printf("\n");
        for (const auto& s : scenarios) {
            if (!s.programs)
                continue;
            std::printf("%-30s", s.name);
            for (const auto& hook : kHooks) {
                if (ns_per_run(floor_cost.at(hook)) == 0)
                    continue;
                const auto& costs = s.hook_cost.at(w.name);
                auto it = costs.find(hook);
                if (it == costs.end()) {
                    std::printf(" %24s", "-");
                    continue;
                }
                const auto& rounds = s.hook_rounds.at(w.name).at(hook);
                const auto& floors = floor_rounds.at(hook);
                std::vector<double> ratios;
                for (size_t r = 0; r < rounds.size() && r < floors.size(); ++r)
                    if (ns_per_run(floors[r]) > 0 && rounds[r].runs)
                        ratios.push_back(ns_per_run(rounds[r]) / ns_per_run(floors[r]));
                if (ratios.empty()) {
                    std::printf(" %24s", "-");
                    continue;
                }
                auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
                std::printf(" %5.0f %5.2fx %5.2f-%-5.2f", ns_per_run(it->second), median(ratios), *lo, *hi);
            }
            std::printf("\n");
        }
    }
}

// Programs of bench/floor.bpf.c named `prefix`*, attached to their own
// cgroup (outside the bench root).
class Floor {
  public:
    Floor(const fs::path& cgroup, const std::string& prefix) : cgroup_(cgroup)
    {
        if (!cgroup_create(cgroup_).ok())
            die("create the floor cgroup");
        skel_ = bench_floor__open_and_load();
        if (!skel_)
            die("load the floor programs");
        int fd = ::open(cgroup_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        bpf_program* prog = nullptr;
        bpf_object__for_each_program(prog, skel_->obj)
        {
            std::string name = bpf_program__name(prog);
            if (name.rfind(prefix, 0) != 0)
                continue;
            bpf_link* link = bpf_program__attach_cgroup(prog, fd);
            if (!link)
                die("attach the floor programs");
            links_.push_back(link);
            programs_[name.substr(prefix.size())] = bpf_program__fd(prog);
        }
        ::close(fd);
    }
    ~Floor()
    {
        for (auto* l : links_)
            bpf_link__destroy(l);
        bench_floor__destroy(skel_);
        cgroup_remove_tree(cgroup_).ok();
    }
    Floor(const Floor&) = delete;
    Floor& operator=(const Floor&) = delete;
    const Programs& programs() const { return programs_; }
    const fs::path& cgroup() const { return cgroup_; }

  private:
    fs::path cgroup_;
    bench_floor* skel_ = nullptr;
    std::vector<bpf_link*> links_;
    Programs programs_;
};

} // namespace

int main(int argc, char** argv)
{
    bool quick = false;
    if (int rc = parse_bench_args(argc, argv, "bench_datapath",
                                  "per-packet and per-connect cost of authwall's programs, as ratios to no programs "
                                  "and to do-nothing programs",
                                  &quick);
        rc >= 0)
        return rc;
    if (quick) {
        g_connects = 3000;
        g_exchanges = 3000;
        g_rounds = 3;
        g_iperf_seconds = 1;
    }
    int stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (stats < 0)
        die("enable bpf_stats (BPF_ENABLE_STATS)");
    BenchRoot bench;
    Floor floor(bench.plain_cgroup().string() + "-floor", "floor_");
    Floor lookup(bench.plain_cgroup().string() + "-lookup", "lookup_");
    auto compiled = bench.install_policy_text(policy_with_rules("p10", 10) + policy_with_rules("p10k", 10000) +
                                              policy_with_rules("q10", 10) + "[policy.a10]\nmode = \"audit\"\n" +
                                              policy_with_rules("a10", 10));
    auto s10 = bench.cgroup("s10"), s10k = bench.cgroup("s10k"), outside = bench.cgroup("outside");
    auto audit = bench.cgroup("audit");
    bench.open_session(s10, compiled.ids.at("p10"));
    bench.open_session(audit, compiled.ids.at("a10"));
    bench.open_session(s10k, compiled.ids.at("p10k"));
    // Two confined users (uids no account uses): one held to p10, the
    // sessions' policy, one to q10, another policy of the same size.
    constexpr uid_t same_user = 4242001, other_user = 4242002;
    if (!bench.maps().set_user(same_user, compiled.ids.at("p10")).ok() ||
        !bench.maps().set_user(other_user, compiled.ids.at("q10")).ok())
        die("cannot write the users map");
    Programs ours = authwall_programs(bench.pin_dir());

    std::vector<Workload> workloads = {
        {"connect() refused, one port", [] { return connect_rate(g_connects); }},
        {"connect() refused, new ports", [] { return connect_rate_cold(g_connects); },
         [] { g_next_port = (g_next_port + g_connects) % kColdPorts; }},
        {"TCP request/response", [] { return request_response(SOCK_STREAM); }},
        {"UDP request/response", [] { return request_response(SOCK_DGRAM); }},
        {"UDP sendto 64 B", small_udp_sends},
        {"UDP one datagram per socket", one_datagram_sockets},
        {"TCP bulk bit/s (iperf3)", throughput},
    };
    std::vector<Scenario> scenarios = {
        {"baseline (no programs)", bench.plain_cgroup(), 0, nullptr, {}, {}},
        {"floor (do-nothing programs)", floor.cgroup(), 0, &floor.programs(), {}, {}},
        {"floor + socket storage lookup", lookup.cgroup(), 0, &lookup.programs(), {}, {}},
        {"session, 10 rules", s10, 0, &ours, {}, {}},
        {"session, 10 000 rules", s10k, 0, &ours, {}, {}},
        {"session, 10 rules, audit mode", audit, 0, &ours, {}, {}},
        {"outside any session", outside, 0, &ours, {}, {}},
        {"session + user, same policy", s10, same_user, &ours, {}, {}},
        {"session + user, other policy", s10, other_user, &ours, {}, {}},
        {"user layer only", outside, other_user, &ours, {}, {}}};
    std::printf("bench_datapath: %d rounds, %d connects and %d exchanges per workload, iperf3 %d s; %zu trie "
                "entries installed\n",
                g_rounds, g_connects, g_exchanges, g_iperf_seconds, compiled.entries.size());
    for (int r = 0; r < g_rounds; ++r) {
        for (auto& s : scenarios)
            run_round(s, workloads);
        std::fprintf(stderr, "round %d/%d done\n", r + 1, g_rounds);
    }
    print_rates(scenarios, workloads);
    print_hook_costs(scenarios, scenarios[1], workloads);
    ::close(stats);
    return 0;
}
