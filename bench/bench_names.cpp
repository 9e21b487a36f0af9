// SPDX-License-Identifier: Apache-2.0
// DNS names at scale (issue #18), measured side by side in one run:
//   resolve  the loader's resolver (loader/policy_names.h) asking a local
//            dnsmasq for 1 000 names of two addresses each: time per
//            round, names that got addresses, trie entries compiled
//   swap     compile + install of the policy with those names' addresses
//            (what the loader does when addresses change) against the
//            same policy with the 2 000 addresses written inline; both
//            give the same trie entries (checked); ratio names / inline
//   connect  a connect() allowed by a name rule (the name resolved by
//            dnsmasq to 127.0.0.1) against one allowed by the address
//            rule: aw_connect4's ns per run (bpf_stats) and the connect()
//            rate, ratio name / address. The same trie entries by
//            construction: expect ~1.0.
// Rounds interleave the variants, the order alternating; medians with the
// spread (lowest-highest of the rounds). Needs root and /usr/sbin/dnsmasq
// (Debian's dnsmasq-base). Uses a throwaway cgroup, pin directory,
// temporary directory and dnsmasq, removed on exit, also after a failure.
#include "bench/harness.h"
#include "core/policy/compiler.h"
#include "core/policy/policy_file.h"
#include "loader/policy_names.h"

#include <bpf/bpf.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

using namespace authwall;
using namespace authwall::bench;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
    int names = 1000, rounds = 7, connects = 20000;
    bool json = false;
};

double ms_since(Clock::time_point t0)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string name_of(int i)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "n%04d.bench.internal", i);
    return buf;
}

// Name i stands for 10.a.b.1 and 10.a.b.2 (a.b = i in base 256).
std::string address_of(int i, int host)
{
    return "10." + std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) + "." + std::to_string(host);
}

// dnsmasq answering from a hosts file on 127.0.0.1:port; the TTL outlasts
// the run, so no answer expires while it is measured.
class Dnsmasq {
  public:
    Dnsmasq(const fs::path& dir, int names, uint16_t port) : port_(port)
    {
        std::ofstream hosts(dir / "hosts");
        hosts << "127.0.0.1 loop.bench.internal\n";
        for (int i = 0; i < names; ++i)
            hosts << address_of(i, 1) << ' ' << name_of(i) << '\n' << address_of(i, 2) << ' ' << name_of(i) << '\n';
        hosts.close();
        pid_ = fork();
        if (pid_ == 0) {
            std::string p = "--port=" + std::to_string(port), h = "--addn-hosts=" + (dir / "hosts").string(),
                        log = "--log-facility=" + (dir / "dnsmasq.log").string();
            execl("/usr/sbin/dnsmasq", "dnsmasq", "--keep-in-foreground", "--listen-address=127.0.0.1",
                  "--bind-interfaces", "--no-resolv", "--no-hosts", "--local-ttl=3600", "--user=root",
                  "--pid-file=", p.c_str(), h.c_str(), log.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        std::string listening = "ss -Hlun 'sport = :" + std::to_string(port) + "' | grep -q 127.0.0.1";
        for (int i = 0; i < 100; ++i) {
            if (std::system(listening.c_str()) == 0)
                return;
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                die("dnsmasq exited at start (see " + (dir / "dnsmasq.log").string() + ")");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        stop(); // die() would leave it running: this object is not constructed yet
        die("dnsmasq did not listen on 127.0.0.1:" + std::to_string(port) + " within 5 s");
    }
    ~Dnsmasq() { stop(); }
    Dnsmasq(const Dnsmasq&) = delete;
    Dnsmasq& operator=(const Dnsmasq&) = delete;
    uint16_t port() const { return port_; }

  private:
    void stop()
    {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

    uint16_t port_;
    pid_t pid_ = -1;
};

// At namespace scope so that std::exit, which is how die() stops, tears
// them down too: a failure leaves no dnsmasq, pins or cgroups behind.
std::optional<BenchRoot> g_bench;
std::unique_ptr<Dnsmasq> g_dns;
fs::path g_dir;

void cleanup_dir()
{
    std::error_code ec;
    if (!g_dir.empty())
        fs::remove_all(g_dir, ec);
}

std::vector<Policy> parse(const std::string& text)
{
    auto load = parse_policy_text(text, "bench.toml");
    if (!load.ok())
        die(load.errors[0].str());
    return load.policies;
}

// One policy, "p": one rule per name, or its two addresses inline.
std::string names_policy(int names)
{
    std::string out = "[policy.p.egress]\ndefault = \"deny\"\nallow = [";
    for (int i = 0; i < names; ++i)
        out += std::string(i ? ", " : "") + "\"" + name_of(i) + " tcp 443\"";
    return out + "]\n";
}

std::string inline_policy(int names)
{
    std::string out = "[policy.p.egress]\ndefault = \"deny\"\nallow = [";
    for (int i = 0; i < names; ++i)
        out +=
            std::string(i ? ", " : "") + "\"" + address_of(i, 1) + " tcp 443\", \"" + address_of(i, 2) + " tcp 443\"";
    return out + "]\n";
}

// ---- resolve ---------------------------------------------------------

struct Resolved {
    NameAddresses addresses;
    double ms = 0;
};

// A resolver of its own each round, so every name is asked afresh, as at
// the loader's start or when a load brings new names.
Resolved resolve(const std::vector<Policy>& policies, const DnsSettings& settings)
{
    auto names = PolicyNames::create(settings, g_dir);
    if (!names)
        die(names.error().message());
    auto t0 = Clock::now();
    (*names)->use(policies, settings);
    // What use() left unanswered comes from the event loop, as in the
    // loader: until every name has its two addresses (or 30 s).
    Resolved out;
    out.addresses = (*names)->addresses();
    auto complete = [&] {
        return std::all_of(out.addresses.begin(), out.addresses.end(),
                           [](const auto& kv) { return kv.second.size() >= 2; });
    };
    while (!complete() && ms_since(t0) < 30000) {
        std::vector<pollfd> fds;
        for (int fd : (*names)->fds())
            fds.push_back({fd, POLLIN, 0});
        if (::poll(fds.data(), fds.size(), 100) > 0)
            (*names)->ready();
        out.addresses = (*names)->addresses();
    }
    out.ms = ms_since(t0);
    return out;
}

size_t answered(const NameAddresses& addresses)
{
    return static_cast<size_t>(
        std::count_if(addresses.begin(), addresses.end(), [](const auto& kv) { return !kv.second.empty(); }));
}

// ---- swap ------------------------------------------------------------

struct Swap {
    std::vector<double> ms;
    size_t entries = 0;
};

void swap_round(const std::vector<Policy>& policies, const NameAddresses& addresses, Swap& out)
{
    auto known = g_bench->maps().policy_ids();
    auto t0 = Clock::now();
    auto compiled = compile_policies(policies, Fallback{}, known ? *known : std::map<std::string, uint32_t>{},
                                     CompileLimits{}, addresses);
    if (!compiled)
        die(compiled.error().message());
    if (auto st = g_bench->maps().install_policies(*compiled); !st)
        die(st.error().message());
    out.ms.push_back(ms_since(t0));
    out.entries = compiled->entries.size();
}

struct ResolveSwap {
    std::vector<double> resolve_ms, answered;
    size_t addresses = 0;
    Swap names, inline_;
};

ResolveSwap run_resolve_swap(const Args& args, const DnsSettings& settings)
{
    const auto with_names = parse(names_policy(args.names)), inline_rules = parse(inline_policy(args.names));
    ResolveSwap out;
    for (int r = 0; r < args.rounds; ++r) {
        Resolved got = resolve(with_names, settings);
        out.resolve_ms.push_back(got.ms);
        out.answered.push_back(static_cast<double>(answered(got.addresses)));
        out.addresses = 0;
        for (const auto& [name, list] : got.addresses)
            out.addresses += list.size();
        if (r % 2 == 0) {
            swap_round(inline_rules, {}, out.inline_);
            swap_round(with_names, got.addresses, out.names);
        } else {
            swap_round(with_names, got.addresses, out.names);
            swap_round(inline_rules, {}, out.inline_);
        }
        std::fprintf(stderr, "resolve+swap round %d/%d done\n", r + 1, args.rounds);
    }
    if (out.names.entries != out.inline_.entries)
        die("names and inline compiled to different entries: " + std::to_string(out.names.entries) + " vs " +
            std::to_string(out.inline_.entries) + " (did every name get its two addresses?)");
    return out;
}

// ---- connect ---------------------------------------------------------

// aw_connect4, from the link the installer pinned.
int connect4_program(const fs::path& pin_dir)
{
    int fd = linked_program(pin_dir, "aw_connect4");
    if (fd < 0)
        die("no aw_connect4 link under " + (pin_dir / "links").string());
    return fd;
}

std::pair<uint64_t, uint64_t> run_stats(int prog)
{
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog, &info, &len) != 0)
        die("read program info");
    return {info.run_time_ns, info.run_cnt};
}

struct ConnectSide {
    const char* name;
    fs::path cgroup;
    std::vector<double> ns_per_run, rate;
};

void connect_round(ConnectSide& side, int prog, int connects)
{
    auto [ns0, runs0] = run_stats(prog);
    double rate = in_child(side.cgroup, [connects] { return connect_rate(connects); });
    auto [ns1, runs1] = run_stats(prog);
    // connect_rate stops at the first connect() not refused by the stack
    // (EPERM: the rule did not allow it), and no value comes back.
    if (rate <= 0)
        die(std::string("a connect() under the ") + side.name + " rule was not allowed");
    side.rate.push_back(rate);
    side.ns_per_run.push_back(runs1 > runs0 ? static_cast<double>(ns1 - ns0) / static_cast<double>(runs1 - runs0) : 0);
}

// Policies "byname" ("loop.bench.internal tcp 9", the name resolved by
// dnsmasq) and "byaddr" ("127.0.0.1 tcp 9"), installed beside "p" with its
// names so that the trie holds what the resolve part measured.
std::pair<ConnectSide, ConnectSide> run_connect(const Args& args, const DnsSettings& settings, size_t* entries)
{
    auto policies = parse(names_policy(args.names) +
                          "[policy.byname.egress]\ndefault = \"deny\"\nallow = [\"loop.bench.internal tcp 9\"]\n"
                          "[policy.byaddr.egress]\ndefault = \"deny\"\nallow = [\"127.0.0.1 tcp 9\"]\n");
    Resolved got = resolve(policies, settings);
    if (got.addresses["loop.bench.internal"].empty())
        die("dnsmasq gave no address for loop.bench.internal");
    Swap installed;
    swap_round(policies, got.addresses, installed);
    *entries = installed.entries;
    auto ids = g_bench->maps().policy_ids();
    if (!ids)
        die(ids.error().message());
    ConnectSide by_name{"name", g_bench->cgroup("byname"), {}, {}};
    ConnectSide by_addr{"address", g_bench->cgroup("byaddr"), {}, {}};
    g_bench->open_session(by_name.cgroup, ids->at("byname"));
    g_bench->open_session(by_addr.cgroup, ids->at("byaddr"));
    int prog = connect4_program(g_bench->pin_dir());
    for (int r = 0; r < args.rounds; ++r) {
        ConnectSide& first = r % 2 == 0 ? by_addr : by_name;
        ConnectSide& second = r % 2 == 0 ? by_name : by_addr;
        connect_round(first, prog, args.connects);
        connect_round(second, prog, args.connects);
        std::fprintf(stderr, "connect round %d/%d done\n", r + 1, args.rounds);
    }
    ::close(prog);
    return {std::move(by_name), std::move(by_addr)};
}

// ---- output ----------------------------------------------------------

struct Stat {
    double median = 0, lo = 0, hi = 0;
};

Stat stat_of(const std::vector<double>& v)
{
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    return {median(v), v.empty() ? 0 : *lo, v.empty() ? 0 : *hi};
}

// The rounds' ratios a[i] / b[i]: their median and spread.
Stat ratio_of(const std::vector<double>& a, const std::vector<double>& b)
{
    std::vector<double> r;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i)
        if (b[i] > 0)
            r.push_back(a[i] / b[i]);
    return stat_of(r);
}

nlohmann::json to_json(const Stat& s)
{
    return {{"median", s.median}, {"min", s.lo}, {"max", s.hi}};
}

struct Report {
    const Args* args;
    const ResolveSwap* rs;
    const ConnectSide *by_name, *by_addr;
    size_t connect_entries = 0;
};

void print_json(const Report& r)
{
    const auto& rs = *r.rs;
    nlohmann::json j = {{"names", r.args->names},
                        {"rounds", r.args->rounds},
                        {"resolve",
                         {{"ms", to_json(stat_of(rs.resolve_ms))},
                          {"names_answered", to_json(stat_of(rs.answered))},
                          {"addresses", rs.addresses},
                          {"entries", rs.names.entries}}},
                        {"swap",
                         {{"inline_ms", to_json(stat_of(rs.inline_.ms))},
                          {"names_ms", to_json(stat_of(rs.names.ms))},
                          {"ratio_names_inline", to_json(ratio_of(rs.names.ms, rs.inline_.ms))},
                          {"entries", rs.names.entries}}},
                        {"connect",
                         {{"connects", r.args->connects},
                          {"entries", r.connect_entries},
                          {"address_ns_per_run", to_json(stat_of(r.by_addr->ns_per_run))},
                          {"name_ns_per_run", to_json(stat_of(r.by_name->ns_per_run))},
                          {"ratio_ns_name_address", to_json(ratio_of(r.by_name->ns_per_run, r.by_addr->ns_per_run))},
                          {"address_per_second", to_json(stat_of(r.by_addr->rate))},
                          {"name_per_second", to_json(stat_of(r.by_name->rate))},
                          {"ratio_rate_name_address", to_json(ratio_of(r.by_name->rate, r.by_addr->rate))}}}};
    std::printf("%s\n", j.dump(2).c_str());
}

// decimals: 1 for times, 0 for counts and rates.
void print_row(const char* what, const std::vector<double>& v, const std::vector<double>* base, int decimals)
{
    Stat s = stat_of(v);
    std::printf("%-34s %10.*f %10.*f-%-10.*f", what, decimals, s.median, decimals, s.lo, decimals, s.hi);
    if (base) {
        Stat q = ratio_of(v, *base);
        std::printf(" %6.3f (%.3f-%.3f)", q.median, q.lo, q.hi);
    }
    std::printf("\n");
}

void print_table(const Report& r)
{
    const auto& rs = *r.rs;
    std::printf("bench_names: %d names x 2 addresses from dnsmasq; %d rounds, medians (spread lowest-highest; "
                "ratio: median of the rounds' ratios)\n\n",
                r.args->names, r.args->rounds);
    std::printf("%-34s %10s %21s  %s\n", "resolve (PolicyNames::use)", "median", "spread", "");
    print_row("time ms", rs.resolve_ms, nullptr, 1);
    print_row("names that got addresses", rs.answered, nullptr, 0);
    std::printf("%-34s %10zu\n%-34s %10zu\n\n", "addresses (last round)", rs.addresses, "trie entries compiled",
                rs.names.entries);
    std::printf("%-34s %10s %21s  %s\n", "swap (compile + install) ms", "median", "spread", "ratio to inline");
    print_row("inline (2 addresses per name)", rs.inline_.ms, nullptr, 1);
    print_row("names (their resolved addresses)", rs.names.ms, &rs.inline_.ms, 1);
    std::printf("%-34s %10zu (both)\n\n", "trie entries", rs.names.entries);
    std::printf("connect() allowed, %d per round, %zu trie entries installed\n", r.args->connects, r.connect_entries);
    std::printf("%-34s %10s %21s  %s\n", "aw_connect4 ns per run (bpf_stats)", "median", "spread", "ratio to address");
    print_row("address rule", r.by_addr->ns_per_run, nullptr, 1);
    print_row("name rule", r.by_name->ns_per_run, &r.by_addr->ns_per_run, 1);
    std::printf("%-34s %10s %21s  %s\n", "connect() per second", "median", "spread", "ratio to address");
    print_row("address rule", r.by_addr->rate, nullptr, 0);
    print_row("name rule", r.by_name->rate, &r.by_addr->rate, 0);
}

// ---- arguments -------------------------------------------------------

int usage(int rc)
{
    std::printf("usage: bench_names [--quick] [--names N] [--rounds R] [--connects C] [--json]\n"
                "  DNS names: resolving N names (1000) from a local dnsmasq, the swap of their addresses vs the\n"
                "  same addresses inline, and connect() under a name rule vs an address rule. Needs root.\n"
                "  --quick is --rounds 3 --connects 3000.\n");
    return rc;
}

// Returns an exit code to stop with, or -1 to go on.
int parse_args(int argc, char** argv, Args& args)
{
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        int* target = a == "--names"      ? &args.names
                      : a == "--rounds"   ? &args.rounds
                      : a == "--connects" ? &args.connects
                                          : nullptr;
        if (a == "--help")
            return usage(0);
        if (a == "--json") {
            args.json = true;
        } else if (a == "--quick") {
            args.rounds = 3;
            args.connects = 3000;
        } else if (target && i + 1 < argc) {
            char* end = nullptr;
            long v = std::strtol(argv[++i], &end, 10);
            if (*end != '\0' || v < 1 || v > (a == "--names" ? 65536 : 10'000'000)) {
                std::fprintf(stderr, "bench_names: %s: not a count in range: %s\n", a.c_str(), argv[i]);
                return 2;
            }
            *target = static_cast<int>(v);
        } else {
            std::fprintf(stderr, "bench_names: unknown or incomplete argument: %s\n", a.c_str());
            return usage(2);
        }
    }
    return -1;
}

} // namespace

int main(int argc, char** argv)
{
    Args args;
    if (int rc = parse_args(argc, argv, args); rc >= 0)
        return rc;
    if (geteuid() != 0)
        die("needs root");
    if (::access("/usr/sbin/dnsmasq", X_OK) != 0)
        die("/usr/sbin/dnsmasq is missing (Debian's dnsmasq-base)");
    spdlog::set_level(spdlog::level::warn); // the resolver logs every name's first answer at info
    int stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (stats < 0)
        die("enable bpf_stats (BPF_ENABLE_STATS)");
    g_dir = fs::temp_directory_path() / ("authwall-bench-names-" + std::to_string(getpid()));
    fs::create_directories(g_dir);
    std::atexit(cleanup_dir);
    g_bench.emplace();
    g_dns = std::make_unique<Dnsmasq>(g_dir, args.names, static_cast<uint16_t>(20000 + getpid() % 20000));
    DnsSettings settings;
    settings.servers = {*parse_dns_server("127.0.0.1:" + std::to_string(g_dns->port()))};
    settings.timeout_ms = 5000; // an upper bound: use() returns once every name is answered
    ResolveSwap rs = run_resolve_swap(args, settings);
    Report report{&args, &rs, nullptr, nullptr};
    auto [by_name, by_addr] = run_connect(args, settings, &report.connect_entries);
    report.by_name = &by_name;
    report.by_addr = &by_addr;
    if (args.json)
        print_json(report);
    else
        print_table(report);
    ::close(stats);
    return 0;
}
