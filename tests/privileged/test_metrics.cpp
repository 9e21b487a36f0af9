// SPDX-License-Identifier: Apache-2.0
// authctl metrics and cgroupd's metrics file against real pins, read back
// with the OpenMetrics parser of Debian's python3-prometheus-client
// (openmetrics_to_json.py): the values are those of the traffic and the
// refusals the test made, a policy's counters keep what its sessions
// counted once they are gone, a host without a data plane gets a valid
// exposition with authwall_up 0, and cgroupd replaces its file whole.
#include <boost/test/unit_test.hpp>

#include "core/base/abi.h"
#include "core/metrics/metrics.h"
#include "tests/login_world.h"
#include "tests/support.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <signal.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcntl.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;

namespace {

const char* kPolicies = R"(
[policy.web]
match.cgroups = []
[policy.web.egress]
default = "deny"
allow = ["127.0.0.1 tcp"]
)";

// Logins of the PAM harness's service.
const char* kLoginPolicies = R"(
[policy.ops]
match.services = ["authwall-test"]
[policy.ops.egress]
default = "deny"
allow = ["127.0.0.1 tcp 9"]
)";

constexpr size_t kPayload = 100'000;
constexpr int kRefused = 3;

std::string read_file(const fs::path& path)
{
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The samples of an exposition, as the parser read them; fails the test
// when the parser refuses the text.
nlohmann::json parsed(const std::string& text, const fs::path& dir, const std::string& format = "openmetrics")
{
    fs::path in = dir / "metrics.txt";
    std::ofstream(in) << text;
    fs::path script = fs::path(AUTHWALL_SOURCE_DIR) / "tests" / "privileged" / "openmetrics_to_json.py";
    std::string out = sh_output("/usr/bin/python3 " + script.string() + " " + format + " < " + in.string() + " 2>&1");
    auto j = nlohmann::json::parse(out, nullptr, false);
    BOOST_REQUIRE_MESSAGE(j.is_array(), "the OpenMetrics parser refused the text: " + out + "\n" + text);
    return j;
}

// The value of the sample `name` whose labels include `labels`; NaN when
// there is none.
double value(const nlohmann::json& samples, const std::string& name,
             const std::map<std::string, std::string>& labels = {})
{
    for (const auto& s : samples) {
        if (s.at("name") != name)
            continue;
        bool match = true;
        for (const auto& [k, v] : labels)
            match &= s.at("labels").contains(k) && s.at("labels").at(k) == v;
        if (match)
            return s.at("value").get<double>();
    }
    return std::nan("");
}

struct Run {
    int rc = -1;
    std::string out;
};

// authctl GLOBAL_ARGS metrics [FORMAT_ARGS]
Run authctl_metrics(const std::string& args, const fs::path& dir, const std::string& format_args = "")
{
    fs::path out = dir / "authctl.out";
    std::string rc = sh_output(std::string(AUTHWALL_AUTHCTL_BIN) + " " + args + " metrics " + format_args + " > " +
                               out.string() + " 2>" + (dir / "authctl.err").string() + "; echo $?");
    BOOST_TEST_MESSAGE(read_file(dir / "authctl.err"));
    return {std::stoi(rc), read_file(out)};
}

// In `cgroup`: a TCP connection over loopback carrying kPayload bytes
// (both ends in the session), then kRefused connects the policy refuses.
void make_traffic(const fs::path& cgroup)
{
    int rc = run_probe(cgroup, "", [] {
        int l = tcp_listen("127.0.0.1", 0);
        if (l < 0)
            return -l;
        sockaddr_in a{};
        socklen_t len = sizeof(a);
        getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
        int c = ::socket(AF_INET, SOCK_STREAM, 0);
        if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
            return errno;
        int s = ::accept(l, nullptr, nullptr);
        std::string payload(kPayload, 'x');
        size_t sent = 0, got = 0;
        char buf[65536];
        while (got < kPayload) {
            if (sent < kPayload) {
                ssize_t n = ::send(c, payload.data() + sent, std::min<size_t>(65536, kPayload - sent), MSG_NOSIGNAL);
                if (n < 0)
                    return errno;
                sent += static_cast<size_t>(n);
            }
            ssize_t n = ::recv(s, buf, sizeof(buf), 0);
            if (n <= 0)
                return n == 0 ? EPIPE : errno;
            got += static_cast<size_t>(n);
        }
        ::close(c);
        ::close(s);
        ::close(l);
        return 0;
    });
    BOOST_REQUIRE_EQUAL(rc, 0);
    for (int i = 0; i < kRefused; ++i)
        BOOST_REQUIRE_EQUAL(run_probe(cgroup, "", [] { return tcp_connect("127.0.0.2", 9); }), EPERM);
    usleep(200 * 1000); // the closing handshakes
}

} // namespace

BOOST_AUTO_TEST_SUITE(metrics)

// The values are the traffic the session made; once the session is
// unenrolled (the session service folds its counters into the policy's
// totals) the policy's counters have not gone back.
BOOST_AUTO_TEST_CASE(counters_are_the_traffic_made_and_survive_the_session)
{
    LoginWorld w(kPolicies);
    std::string args = "--config " + w.config().string();
    auto cg = w.root() / "ctr";
    BOOST_REQUIRE(cgroup_create(cg).ok());
    auto before = parsed(authctl_metrics(args, w.dir()).out, w.dir());
    BOOST_TEST(value(before, "authwall_up") == 1);
    BOOST_TEST(value(before, "authwall_denials_total", {{"policy", "web"}, {"hook", "connect4"}}) == 0);
    BOOST_TEST(value(before, "authwall_sessions", {{"policy", "web"}, {"kind", "container"}}) == 0);

    BOOST_REQUIRE(
        sh(std::string(AUTHWALL_AUTHCTL_BIN) + " " + args + " enroll --cgroup " + cg.string() + " --policy web") == 0);
    make_traffic(cg);
    Run run = authctl_metrics(args, w.dir());
    BOOST_REQUIRE_EQUAL(run.rc, 0);
    auto open = parsed(run.out, w.dir());
    const std::map<std::string, std::string> web{{"policy", "web"}};
    BOOST_TEST(value(open, "authwall_sessions", {{"policy", "web"}, {"kind", "container"}}) == 1);
    BOOST_TEST(value(open, "authwall_sessions", {{"policy", "web"}, {"kind", "login"}}) == 0);
    BOOST_TEST(value(open, "authwall_traffic_bytes_total", {{"policy", "web"}, {"direction", "out"}}) >= kPayload);
    BOOST_TEST(value(open, "authwall_traffic_bytes_total", {{"policy", "web"}, {"direction", "in"}}) >= kPayload);
    BOOST_TEST(value(open, "authwall_traffic_packets_total", {{"policy", "web"}, {"direction", "out"}}) > 0);
    BOOST_TEST(value(open, "authwall_denials_total",
                     {{"policy", "web"}, {"direction", "egress"}, {"hook", "connect4"}}) == kRefused);
    BOOST_TEST(value(open, "authwall_denials_total", {{"policy", "web"}, {"hook", "bind4"}}) == 0);
    // Why, for the host: each refusal was the default of deny.
    BOOST_TEST(value(open, "authwall_refusals_total",
                     {{"hook", "connect4"}, {"reason", "default"}, {"verdict", "deny"}, {"direction", "egress"}}) ==
               kRefused);
    BOOST_TEST(std::isnan(value(open, "authwall_refusals_total", {{"reason", "rule"}})));
    BOOST_TEST(std::isnan(value(open, "authwall_refusals_total", {{"verdict", "audit"}})));
    BOOST_TEST(value(open, "authwall_map_entries", {{"map", "sessions"}}) == 1);
    BOOST_TEST(value(open, "authwall_map_capacity", {{"map", "sessions"}}) == 65536);
    BOOST_TEST(value(open, "authwall_events_suppressed_total") >= 0);
    BOOST_TEST(value(open, "authwall_policy_reloads_total", {{"result", "success"}}) == 1);
    BOOST_TEST(value(open, "authwall_policy_reloads_total", {{"result", "failure"}}) == 0);
    double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    double loaded = value(open, "authwall_policy_last_reload_success_timestamp_seconds");
    BOOST_TEST((loaded > now - 300 && loaded <= now), loaded << " against " << now);

    // The same in the Prometheus text format, with the counters' types:
    // node_exporter's textfile collector reads this one.
    run = authctl_metrics(args, w.dir(), "--format prometheus");
    BOOST_REQUIRE_EQUAL(run.rc, 0);
    BOOST_TEST(run.out.find("# EOF") == std::string::npos);
    auto text_format = parsed(run.out, w.dir(), "prometheus");
    BOOST_TEST(value(text_format, "authwall_denials_total", {{"policy", "web"}, {"hook", "connect4"}}) == kRefused);
    BOOST_TEST(value(text_format, "authwall_traffic_bytes_total", {{"policy", "web"}, {"direction", "out"}}) ==
               value(open, "authwall_traffic_bytes_total", {{"policy", "web"}, {"direction", "out"}}));
    for (const auto& s : text_format)
        if (s.at("name").get<std::string>().ends_with("_total"))
            BOOST_TEST(s.at("type") == "counter", s.dump());

    BOOST_REQUIRE(sh(std::string(AUTHWALL_AUTHCTL_BIN) + " " + args + " unenroll --cgroup " + cg.string()) == 0);
    auto closed = parsed(authctl_metrics(args, w.dir()).out, w.dir());
    BOOST_TEST(value(closed, "authwall_sessions", {{"policy", "web"}, {"kind", "container"}}) == 0);
    BOOST_TEST(value(closed, "authwall_map_entries", {{"map", "sessions"}}) == 0);
    for (const char* name : {"authwall_traffic_bytes_total", "authwall_traffic_packets_total"})
        for (const char* dir : {"in", "out"})
            BOOST_TEST(value(closed, name, {{"policy", "web"}, {"direction", dir}}) ==
                           value(open, name, {{"policy", "web"}, {"direction", dir}}),
                       name << " " << dir);
    BOOST_TEST(value(closed, "authwall_denials_total", {{"policy", "web"}, {"hook", "connect4"}}) == kRefused);
    BOOST_TEST(value(closed, "authwall_refusals_total", {{"hook", "connect4"}, {"reason", "default"}}) == kRefused);
}

// The PAM module's close folds too: a login's refusal is still counted in
// its policy once the login is over (without the fold it would be gone
// with the session's counters).
BOOST_AUTO_TEST_CASE(a_login_s_refusal_stays_counted_after_its_close)
{
    LoginWorld w(kLoginPolicies);
    std::string args = "--config " + w.config().string();
    auto out = w.pam(w.user() + " --exec \"bash -c 'exec 3<>/dev/tcp/127.0.0.2/9' 2>&1 | sed s/^/probe:/\"");
    BOOST_TEST(out.find("probe:bash: connect: Operation not permitted") != std::string::npos, out);
    BOOST_TEST(out.find("close: PAM_SUCCESS") != std::string::npos, out);
    BOOST_TEST(w.session_cgroups().empty());
    auto samples = parsed(authctl_metrics(args, w.dir()).out, w.dir());
    BOOST_TEST(value(samples, "authwall_sessions", {{"policy", "ops"}, {"kind", "login"}}) == 0);
    BOOST_TEST(value(samples, "authwall_map_entries", {{"map", "sessions"}}) == 0);
    BOOST_TEST(value(samples, "authwall_denials_total", {{"policy", "ops"}, {"hook", "connect4"}}) == 1);
}

// Pins an older loader made have no policy_totals: authctl and the session
// service work as before (a session's counters go with it) until the
// loader runs again and makes the map.
BOOST_AUTO_TEST_CASE(pins_without_policy_totals_work_until_the_loader_makes_it)
{
    LoginWorld w(kPolicies);
    std::string args = "--config " + w.config().string();
    fs::path totals = w.pin_dir() / "maps" / "policy_totals";
    BOOST_REQUIRE(fs::remove(totals));
    auto cg = w.root() / "ctr";
    BOOST_REQUIRE(cgroup_create(cg).ok());
    BOOST_REQUIRE(
        sh(std::string(AUTHWALL_AUTHCTL_BIN) + " " + args + " enroll --cgroup " + cg.string() + " --policy web") == 0);
    BOOST_REQUIRE_EQUAL(run_probe(cg, "", [] { return tcp_connect("127.0.0.2", 9); }), EPERM);
    BOOST_TEST(sh(std::string(AUTHWALL_AUTHCTL_BIN) + " " + args + " sessions") == 0);
    auto open = parsed(authctl_metrics(args, w.dir()).out, w.dir());
    BOOST_TEST(value(open, "authwall_denials_total", {{"policy", "web"}, {"hook", "connect4"}}) == 1);
    BOOST_REQUIRE(sh(std::string(AUTHWALL_AUTHCTL_BIN) + " " + args + " unenroll --cgroup " + cg.string()) == 0);
    auto closed = parsed(authctl_metrics(args, w.dir()).out, w.dir());
    BOOST_TEST(value(closed, "authwall_map_entries", {{"map", "sessions"}}) == 0);
    BOOST_TEST(value(closed, "authwall_denials_total", {{"policy", "web"}, {"hook", "connect4"}}) == 0);
    BOOST_TEST(sh(std::string(AUTHWALL_LOADER_BIN) + " " + args + " --once") == 0);
    BOOST_TEST(fs::exists(totals));
}

// With nft_mirror on, the mirror's drift as `authctl nft verify` sees it;
// in a network namespace of its own, so the host's ruleset is not touched.
BOOST_AUTO_TEST_CASE(nft_drift_is_what_nft_verify_sees)
{
    NetNs ns("awt-metrics-" + unique_suffix());
    int saved = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int target = ::open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC);
    BOOST_REQUIRE(saved >= 0 && target >= 0);
    BOOST_REQUIRE_EQUAL(setns(target, CLONE_NEWNET), 0);
    ::close(target);
    struct Back {
        int fd;
        ~Back()
        {
            setns(fd, CLONE_NEWNET);
            ::close(fd);
        }
    } back{saved};
    char tmpl[] = "/tmp/authwall-prom-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    fs::path prom = fs::path(tmpl) / "authwall.prom";
    LoginWorld w(kPolicies, "", "nft_mirror = true\n[metrics]\ntextfile = \"" + prom.string() + "\"\n");
    std::string args = "--config " + w.config().string();
    auto cg = w.root() / "ctr";
    BOOST_REQUIRE(cgroup_create(cg).ok());
    BOOST_REQUIRE(
        sh(std::string(AUTHWALL_AUTHCTL_BIN) + " " + args + " enroll --cgroup " + cg.string() + " --policy web") == 0);
    auto in_sync = parsed(authctl_metrics(args, w.dir()).out, w.dir());
    BOOST_TEST(value(in_sync, "authwall_nft_mirror_table_present") == 1);
    BOOST_TEST(value(in_sync, "authwall_nft_mirror_drift_elements", {{"kind", "missing"}}) == 0);
    BOOST_TEST(value(in_sync, "authwall_nft_mirror_drift_elements", {{"kind", "stray"}}) == 0);
    {
        // cgroupd reads the sets for its file under its seccomp filter.
        Cgroupd cgroupd(w);
        BOOST_TEST(wait_until(
            [&] { return read_file(prom).find("authwall_nft_mirror_table_present 1\n") != std::string::npos; }, 3000));
        BOOST_TEST(::kill(cgroupd.pid(), 0) == 0);
    }
    fs::remove_all(tmpl);
    BOOST_REQUIRE_EQUAL(sh("nft flush set inet authwall sessions"), 0);
    auto drifted = parsed(authctl_metrics(args, w.dir()).out, w.dir());
    BOOST_TEST(value(drifted, "authwall_nft_mirror_drift_elements", {{"kind", "missing"}}) == 1);
    BOOST_TEST(sh(std::string(AUTHWALL_AUTHCTL_BIN) + " " + args + " unenroll --cgroup " + cg.string()) == 0);
    BOOST_REQUIRE_EQUAL(sh("nft delete table inet authwall"), 0);
    auto gone = parsed(authctl_metrics(args, w.dir()).out, w.dir());
    BOOST_TEST(value(gone, "authwall_nft_mirror_table_present") == 0);
}

// Sessions ending while metrics are read: every read sees each session's
// counters exactly once, in the session or in its policy's totals, never
// both or neither (the fold's brackets). And a fold whose writer died
// half-way does not stop the reads.
BOOST_AUTO_TEST_CASE(reads_during_folds_count_each_session_once)
{
    Sandbox box(kPolicies);
    uint32_t web = box.maps().policy_ids()->at("web");
    constexpr uint64_t kSessions = 3000, kFake = 0x7100000000ull;
    SessionEntry entry;
    entry.policy_id = web;
    for (uint64_t i = 0; i < kSessions; ++i) {
        BOOST_REQUIRE(box.maps().insert_session(kFake + i, 1, entry).ok());
        aw_stats st{};
        st.bytes_in = 1;
        uint64_t id = kFake + i;
        BOOST_REQUIRE_EQUAL(bpf_map_update_elem(box.maps().map_fd(MapId::SessionStats), &id, &st, BPF_EXIST), 0);
    }
    Config config;
    config.pin_dir = box.pin_dir();
    config.run_dir = box.pin_dir() / "no-run-dir";
    // The closer waits for a read after each batch, so reads and folds
    // overlap however loaded the machine is.
    std::atomic<size_t> reads{0};
    std::thread closer([&] {
        constexpr uint64_t kBatch = 100;
        for (uint64_t i = 0; i < kSessions; ++i) {
            box.maps().retire_session(kFake + i).ok();
            if ((i + 1) % kBatch == 0) {
                size_t seen = reads.load();
                while (reads.load() < seen + 1)
                    std::this_thread::yield();
            }
        }
    });
    size_t wrong = 0;
    for (bool done = false; !done; ++reads) {
        done = box.maps().list_sessions()->empty();
        auto snap = read_metrics(config);
        BOOST_REQUIRE(snap.ok());
        wrong += snap->policies.at(web).counters.bytes_in != kSessions;
    }
    closer.join();
    BOOST_TEST_MESSAGE(reads << " reads while " << kSessions << " sessions were folded");
    BOOST_TEST(reads.load() >= kSessions / 100);
    BOOST_TEST(wrong == 0u);

    // A writer that died between its two brackets: reads still finish, at once.
    int fd = box.maps().map_fd(MapId::PolicyTotals);
    void* mem = mmap(nullptr, sizeof(aw_policy_totals) * (web + 1), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    BOOST_REQUIRE(mem != MAP_FAILED);
    __atomic_fetch_add(&static_cast<aw_policy_totals*>(mem)[web].folds_begun, 1, __ATOMIC_SEQ_CST);
    munmap(mem, sizeof(aw_policy_totals) * (web + 1));
    auto start = std::chrono::steady_clock::now();
    auto snap = read_metrics(config);
    BOOST_REQUIRE(snap.ok());
    BOOST_TEST(snap->policies.at(web).counters.bytes_in == kSessions);
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST(took < 0.5, took << " s");
}

// No pins under the pin directory: exit status 0, a valid exposition that
// says authwall_up 0 and nothing else.
BOOST_AUTO_TEST_CASE(no_data_plane_is_authwall_up_0_and_exit_0)
{
    char tmpl[] = "/tmp/authwall-metrics-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    fs::path dir = tmpl;
    fs::create_directories(dir / "pins");
    std::ofstream(dir / "authwall.toml") << "";
    Run run = authctl_metrics("--config " + (dir / "authwall.toml").string() + " --pin-dir " + (dir / "pins").string() +
                                  " --run-dir " + (dir / "run").string(),
                              dir);
    BOOST_TEST(run.rc == 0);
    auto samples = parsed(run.out, dir);
    BOOST_TEST(value(samples, "authwall_up") == 0);
    BOOST_TEST(samples.size() == 1u, samples.dump());
    fs::remove_all(dir);
}

// cgroupd writes the file at start and every interval_sec, each time a
// whole new file renamed over the old one: a reader polling it meanwhile
// never finds it partial or missing. A session cgroupd reaps leaves its
// refusals in its policy's counters.
BOOST_AUTO_TEST_CASE(cgroupd_replaces_its_metrics_file_whole_every_interval)
{
    char tmpl[] = "/tmp/authwall-prom-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    fs::path prom_dir = tmpl, prom = prom_dir / "authwall.prom";
    // OpenMetrics, whose "# EOF" shows a whole file (the default format is
    // the Prometheus text format, which has no end marker).
    LoginWorld w(kPolicies, "",
                 "[metrics]\ntextfile = \"" + prom.string() + "\"\ninterval_sec = 1\nformat = \"openmetrics\"\n");
    std::string args = "--config " + w.config().string();
    auto cg = w.root() / "ctr";
    BOOST_REQUIRE(cgroup_create(cg).ok());
    BOOST_REQUIRE(
        sh(std::string(AUTHWALL_AUTHCTL_BIN) + " " + args + " enroll --cgroup " + cg.string() + " --policy web") == 0);
    for (int i = 0; i < kRefused; ++i)
        BOOST_REQUIRE_EQUAL(run_probe(cg, "", [] { return tcp_connect("127.0.0.2", 9); }), EPERM);
    Cgroupd cgroupd(w);
    BOOST_REQUIRE(wait_until([&] { return fs::exists(prom); }, 3000));

    using Clock = std::chrono::steady_clock;
    std::vector<std::pair<ino_t, Clock::time_point>> versions;
    size_t reads = 0, partial = 0;
    for (auto end = Clock::now() + std::chrono::milliseconds(3500); Clock::now() < end; ++reads) {
        struct stat st {};
        std::string text = read_file(prom);
        if (::stat(prom.c_str(), &st) != 0 || !text.starts_with("# TYPE authwall_up") || !text.ends_with("# EOF\n"))
            ++partial;
        if (versions.empty() || versions.back().first != st.st_ino)
            versions.emplace_back(st.st_ino, Clock::now());
        usleep(2000);
    }
    BOOST_TEST_MESSAGE(reads << " reads, " << versions.size() << " versions");
    BOOST_TEST(partial == 0u);
    BOOST_TEST(versions.size() >= 3u);
    for (size_t i = 2; i < versions.size(); ++i) { // the first one was there before the loop
        double gap = std::chrono::duration<double>(versions[i].second - versions[i - 1].second).count();
        BOOST_TEST((gap > 0.5 && gap < 2.0), "interval " << gap << " s");
    }
    auto samples = parsed(read_file(prom), w.dir());
    BOOST_TEST(value(samples, "authwall_up") == 1);
    BOOST_TEST(value(samples, "authwall_sessions", {{"policy", "web"}, {"kind", "container"}}) == 1);
    BOOST_TEST(value(samples, "authwall_denials_total", {{"policy", "web"}, {"hook", "connect4"}}) == kRefused);

    // Reaped: the session is gone, its refusals stay counted.
    BOOST_REQUIRE(cgroup_remove_tree(cg).ok());
    BOOST_REQUIRE(wait_until(
        [&] { return read_file(prom).find("{policy=\"web\",kind=\"container\"} 0") != std::string::npos; }, 5000));
    samples = parsed(read_file(prom), w.dir());
    BOOST_TEST(value(samples, "authwall_sessions", {{"policy", "web"}, {"kind", "container"}}) == 0);
    BOOST_TEST(value(samples, "authwall_denials_total", {{"policy", "web"}, {"hook", "connect4"}}) == kRefused);
    // Nothing but the file is left in its directory (no temporary files).
    BOOST_TEST(wait_until(
        [&] { return std::distance(fs::directory_iterator(prom_dir), fs::directory_iterator()) == 1; }, 2000));
    fs::remove_all(prom_dir);
}

BOOST_AUTO_TEST_SUITE_END()
