// SPDX-License-Identifier: Apache-2.0
// authwall-cgroupd against real cgroups: reaping sessions whose processes
// died without a close, ending sessions at max_duration, enrolling
// container cgroups by path, and repairing state at start.
#include <boost/test/unit_test.hpp>

#include "tests/login_world.h"
#include "tests/support.h"
#include "core/base/time.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

size_t count_events(const LoginWorld& w, const std::string& event)
{
    size_t n = 0;
    for (const auto& e : w.events())
        n += e.find("\"event\":\"" + event + "\"") != std::string::npos;
    return n;
}

const char* kLoginPolicy = R"(
[policy.ops]
match.services = ["authwall-test"]
[policy.ops.egress]
default = "deny"
)";

} // namespace

BOOST_AUTO_TEST_SUITE(cgroupd)

BOOST_AUTO_TEST_CASE(killed_session_is_reaped_within_a_second)
{
    LoginWorld w(kLoginPolicy);
    Cgroupd daemon(w);
    HeldSession session(w);
    BOOST_REQUIRE_EQUAL(w.records().size(), 1u);
    uint64_t id = w.records()[0].id;

    // sshd killed: no close_session ever runs.
    auto killed_at = Clock::now();
    BOOST_REQUIRE_EQUAL(kill(session.pid(), SIGKILL), 0);
    BOOST_REQUIRE(wait_until([&] { return w.records().empty(); }, 3000));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed_at).count();
    BOOST_TEST_MESSAGE("reaped after " << took << " ms");
    BOOST_TEST(took < 1000);
    BOOST_TEST(!w.maps().lookup_session(id)->has_value());
    BOOST_TEST(w.session_cgroups().empty());
    // The event is journalled after the record and the nft element are gone.
    BOOST_TEST(wait_until([&] { return count_events(w, "reaped") == 1u; }, 1000));
    // Reaped under its seccomp filter and reduced capabilities (no
    // CAP_SYS_ADMIN 21, CAP_SYS_MODULE 16, CAP_SYS_PTRACE 19), still alive.
    BOOST_TEST(is_confined(daemon.pid(), {21, 16, 19}));
    BOOST_TEST(wait_until(
        [&] { return daemon.log().find("reaped session " + std::to_string(id)) != std::string::npos; }, 1000));
}

BOOST_AUTO_TEST_CASE(normal_close_is_not_reported_as_reaped)
{
    LoginWorld w(kLoginPolicy);
    Cgroupd daemon(w);
    for (int i = 0; i < 5; ++i)
        BOOST_TEST(w.pam(w.user()).find("close: PAM_SUCCESS") != std::string::npos);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    BOOST_TEST(count_events(w, "open") == 5u);
    BOOST_TEST(count_events(w, "close") == 5u);
    BOOST_TEST(count_events(w, "reaped") == 0u);
}

BOOST_AUTO_TEST_CASE(session_past_max_duration_is_ended)
{
    LoginWorld w(R"(
[policy.short]
match.services = ["authwall-test"]
[policy.short.session]
max_duration = "2s"
)");
    Cgroupd daemon(w);
    auto opened = Clock::now();
    HeldSession session(w);
    BOOST_REQUIRE_EQUAL(w.records().size(), 1u);
    BOOST_TEST(w.records()[0].max_duration_s == 2u);
    // The session's processes are killed at expiry; entry and record go.
    int status = 0;
    BOOST_REQUIRE(wait_until([&] { return session.exited(&status); }, 6000));
    auto lived = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - opened).count();
    BOOST_TEST_MESSAGE("session lived " << lived << " ms");
    BOOST_TEST(WIFSIGNALED(status));
    BOOST_TEST(lived >= 1900);
    BOOST_REQUIRE(wait_until([&] { return w.records().empty(); }, 2000));
    BOOST_TEST(w.maps().list_sessions()->empty());
    BOOST_TEST(count_events(w, "expired") == 1u);
    BOOST_TEST(count_events(w, "reaped") == 0u);
}

BOOST_AUTO_TEST_CASE(two_tenants_are_enrolled_by_path_and_kept_apart)
{
    // Globs are relative to the cgroup2 mount; the world's root is ours.
    std::string base;
    {
        auto mount = find_cgroup2_mount();
        BOOST_REQUIRE(mount.ok());
        base = "authwall-login-" + unique_suffix();
    }
    LoginWorld w("[policy.tenant-a]\nmatch.cgroups = [\"" + base +
                 "/tenant-a/*\"]\n"
                 "[policy.tenant-a.egress]\ndefault = \"deny\"\nallow = [\"10.203.1.1 tcp 8001\"]\n"
                 "[policy.tenant-b]\nmatch.cgroups = [\"" +
                 base +
                 "/tenant-b/*\"]\n"
                 "[policy.tenant-b.egress]\ndefault = \"deny\"\nallow = [\"10.203.2.1 tcp 8002\"]\n");
    std::string s = unique_suffix();
    NetNs svc("awt-svc-" + s), ta("awt-ta-" + s), tb("awt-tb-" + s);
    link_netns(svc, "awsa" + s, "10.203.1.1/24", ta, "awa" + s, "10.203.1.2/24");
    link_netns(svc, "awsb" + s, "10.203.2.1/24", tb, "awb" + s, "10.203.2.2/24");
    BOOST_REQUIRE_EQUAL(ta.exec("ip route add default via 10.203.1.1"), 0);
    BOOST_REQUIRE_EQUAL(tb.exec("ip route add default via 10.203.2.1"), 0);
    // The two services, in the service namespace, outside any session.
    Listeners services("", svc.name(), "0.0.0.0", {8001, 8002});

    Cgroupd daemon(w);
    // A container runtime creates the cgroups; nobody runs an authwall command.
    BOOST_REQUIRE(cgroup_create(w.root() / "tenant-a").ok());
    BOOST_REQUIRE(cgroup_create(w.root() / "tenant-b").ok());
    BOOST_REQUIRE(cgroup_create(w.root() / "tenant-a" / "ctr-1").ok());
    BOOST_REQUIRE(cgroup_create(w.root() / "tenant-b" / "ctr-1").ok());
    BOOST_REQUIRE(wait_until([&] { return w.records().size() == 2; }, 3000));
    for (const auto& r : w.records())
        BOOST_TEST((r.kind == SessionKind::Container));

    auto ctr_a = w.root() / "tenant-a" / "ctr-1", ctr_b = w.root() / "tenant-b" / "ctr-1";
    BOOST_TEST(run_probe(ctr_a, ta.name(), [] { return tcp_connect("10.203.1.1", 8001); }) == 0);
    BOOST_TEST(run_probe(ctr_a, ta.name(), [] { return tcp_connect("10.203.2.1", 8002); }) == EPERM);
    BOOST_TEST(run_probe(ctr_b, tb.name(), [] { return tcp_connect("10.203.2.1", 8002); }) == 0);
    BOOST_TEST(run_probe(ctr_b, tb.name(), [] { return tcp_connect("10.203.1.1", 8001); }) == EPERM);
    // Control: from an unenrolled cgroup, tenant A's namespace reaches both.
    auto plain = w.root() / "plain";
    BOOST_REQUIRE(cgroup_create(plain).ok());
    BOOST_TEST(run_probe(plain, ta.name(), [] { return tcp_connect("10.203.2.1", 8002); }) == 0);

    // The runtime removes a container: its session goes with it.
    BOOST_REQUIRE(cgroup_remove_tree(ctr_a).ok());
    BOOST_TEST(wait_until([&] { return w.records().size() == 1; }, 3000));
}

// A runtime that starts a process before cgroupd sees the cgroup: the
// cgroup is enrolled all the same, and the open event says traffic before
// enrollment was not policed.
BOOST_AUTO_TEST_CASE(enrollment_after_processes_started_is_reported)
{
    std::string base = "authwall-login-" + unique_suffix();
    LoginWorld w("[policy.late]\nmatch.cgroups = [\"" + base +
                 "/late/*\"]\n"
                 "[policy.late.egress]\ndefault = \"deny\"\n");
    BOOST_REQUIRE_EQUAL(w.root().filename().string(), base);
    auto ctr = w.root() / "late" / "ctr-1";
    BOOST_REQUIRE(cgroup_create(w.root() / "late").ok());
    BOOST_REQUIRE(cgroup_create(ctr).ok());
    Background sleeper("exec sleep 30");
    BOOST_REQUIRE(cgroup_move_pid(ctr, sleeper.pid()).ok());

    auto out = sh_output(std::string(AUTHWALL_CGROUPD_BIN) + " --config " + w.config().string() + " --once 2>&1");
    BOOST_TEST(out.find("started: 0 reaped, 1 enrolled") != std::string::npos, out);
    auto records = w.records();
    BOOST_REQUIRE_EQUAL(records.size(), 1u);
    BOOST_TEST(records[0].cgroup == ctr.string());
    auto events = w.events();
    BOOST_REQUIRE_EQUAL(events.size(), 1u);
    BOOST_TEST(events[0].find("after processes had started in it") != std::string::npos, events[0]);
    // The process already inside is policed from now on.
    BOOST_TEST(run_probe(ctr, "new", [] { return tcp_connect("127.0.0.1", 9); }) == EPERM);
    kill(-sleeper.pid(), SIGKILL);
    BOOST_REQUIRE(wait_until([&] { return !cgroup_populated(ctr); }, 3000));
    BOOST_REQUIRE(cgroup_remove_tree(w.root() / "late").ok());
}

// cgroupd's sweep lists the sessions map in chunks: the same entries as
// one by one, past a chunk of 4 096 too.
BOOST_AUTO_TEST_CASE(the_batched_listing_of_sessions_is_the_whole_map)
{
    LoginWorld w(kLoginPolicy);
    auto maps = w.maps();
    BOOST_REQUIRE(maps.list_sessions_batch()->empty());
    SessionEntry e;
    e.policy_id = maps.active_policy_ids()->at("ops");
    std::vector<uint64_t> ids;
    for (uint64_t i = 0; i < 5000; ++i) {
        ids.push_back(0x7fff'0000'0000'0000ULL + i); // no cgroup has such an id
        e.uid = static_cast<uint32_t>(i);
        BOOST_REQUIRE(maps.insert_session(ids.back(), 2, e).ok());
    }
    auto sorted = [](std::vector<std::pair<uint64_t, SessionEntry>> v) {
        std::vector<std::pair<uint64_t, uint32_t>> out;
        for (const auto& [id, entry] : v)
            out.emplace_back(id, entry.uid);
        std::sort(out.begin(), out.end());
        return out;
    };
    auto batched = maps.list_sessions_batch();
    auto one_by_one = maps.list_sessions();
    BOOST_REQUIRE(batched.ok() && one_by_one.ok());
    BOOST_TEST(batched->size() == 5000u);
    BOOST_TEST(sorted(*batched) == sorted(*one_by_one));
    for (uint64_t id : ids)
        BOOST_REQUIRE(maps.remove_session(id).ok());
}

// The start-up sweep's walk also sets up the watches for what was there
// before cgroupd started: a login opened earlier is reaped as soon as its
// processes die, and a container made below a directory that existed before
// the start is enrolled at once (the backstop sweep is 60 s away).
BOOST_AUTO_TEST_CASE(what_existed_before_the_start_is_watched)
{
    std::string base = "authwall-login-" + unique_suffix();
    LoginWorld w(std::string(kLoginPolicy) + "[policy.tenant]\nmatch.cgroups = [\"" + base + "/tenants/*\"]\n");
    BOOST_REQUIRE_EQUAL(w.root().filename().string(), base);
    BOOST_REQUIRE(cgroup_create(w.root() / "tenants").ok());
    HeldSession session(w);
    BOOST_REQUIRE_EQUAL(w.records().size(), 1u);
    uint64_t id = w.records()[0].id;

    Cgroupd daemon(w);
    BOOST_REQUIRE_EQUAL(kill(session.pid(), SIGKILL), 0);
    BOOST_TEST(wait_until([&] { return w.records().empty(); }, 1000));
    BOOST_TEST(!w.maps().lookup_session(id)->has_value());

    auto ctr = w.root() / "tenants" / "ctr-1";
    BOOST_REQUIRE(cgroup_create(ctr).ok());
    BOOST_REQUIRE(wait_until([&] { return w.records().size() == 1u; }, 1000));
    BOOST_TEST((w.records()[0].kind == SessionKind::Container));
    BOOST_TEST(w.records()[0].cgroup == ctr.string());
    BOOST_REQUIRE(cgroup_remove_tree(ctr).ok());
    BOOST_TEST(wait_until([&] { return w.records().empty(); }, 1000));
    BOOST_REQUIRE(cgroup_remove_tree(w.root() / "tenants").ok());
}

// The periodic sweep (and SIGHUP's) runs after the daemon confined itself,
// within its system call allowlist, and repairs what no inotify event
// reports: an entry whose cgroup went before any watch knew of it.
BOOST_AUTO_TEST_CASE(periodic_sweeps_run_confined_and_reap_what_events_missed)
{
    LoginWorld w(kLoginPolicy);
    HeldSession session(w); // a live login for every sweep to look at
    Cgroupd daemon(w, "--sweep-seconds 1");
    auto maps = w.maps();
    auto mount = find_cgroup2_mount();
    auto gone = w.root() / "gone";
    BOOST_REQUIRE(cgroup_create(gone).ok());
    uint64_t gone_id = *cgroup_id(gone);
    SessionEntry e;
    e.policy_id = maps.active_policy_ids()->at("ops");
    e.flags = AW_SESSION_CONTAINER;
    BOOST_REQUIRE(maps.insert_session(gone_id, *cgroup_level(*mount, gone), e).ok());
    BOOST_REQUIRE(cgroup_remove_tree(gone).ok()); // no record, no watch: only a sweep finds it
    BOOST_TEST(wait_until([&] { return !maps.lookup_session(gone_id)->has_value(); }, 3000));
    BOOST_TEST(wait_until([&] { return count_events(w, "reaped") == 1u; }, 1000));
    BOOST_REQUIRE_EQUAL(kill(daemon.pid(), SIGHUP), 0);
    BOOST_TEST(wait_until([&] { return daemon.log().find("SIGHUP, full sweep") != std::string::npos; }, 1000));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500)); // another periodic sweep
    BOOST_TEST(is_confined(daemon.pid(), {21, 16, 19}));
    BOOST_TEST(w.records().size() == 1u); // the login, untouched
}

BOOST_AUTO_TEST_CASE(restart_repairs_what_a_kill_9_left)
{
    LoginWorld w(kLoginPolicy);
    auto maps = w.maps();
    auto mount = find_cgroup2_mount();
    // An entry whose cgroup died while cgroupd was down.
    auto dead = w.root() / "dead";
    BOOST_REQUIRE(cgroup_create(dead).ok());
    uint64_t dead_id = *cgroup_id(dead);
    SessionEntry e;
    e.policy_id = maps.active_policy_ids()->at("ops");
    BOOST_REQUIRE(maps.insert_session(dead_id, *cgroup_level(*mount, dead), e).ok());
    BOOST_REQUIRE(cgroup_remove_tree(dead).ok());
    // An entry whose writer died before writing its record.
    auto orphan = w.root() / "orphan";
    BOOST_REQUIRE(cgroup_create(orphan).ok());
    uint64_t orphan_id = *cgroup_id(orphan);
    e.flags = AW_SESSION_CONTAINER;
    BOOST_REQUIRE(maps.insert_session(orphan_id, *cgroup_level(*mount, orphan), e).ok());
    // A record whose entry is gone.
    SessionRecord stale;
    stale.id = 999999999;
    stale.user = "ghost";
    stale.cgroup = (w.root() / "ghost").string();
    BOOST_REQUIRE(write_record(w.run_dir(), stale).ok());
    // A PAM open between its insert and its record (the leader not moved
    // in yet): not repaired, not reaped, not revoked.
    auto opening = w.root() / "opening";
    BOOST_REQUIRE(cgroup_create(opening).ok());
    uint64_t opening_id = *cgroup_id(opening);
    SessionEntry young;
    young.policy_id = e.policy_id;
    young.opened_ns = realtime_ns();
    BOOST_REQUIRE(maps.insert_session(opening_id, *cgroup_level(*mount, opening), young).ok());

    auto out = sh_output(std::string(AUTHWALL_CGROUPD_BIN) + " --config " + w.config().string() + " --once 2>&1");
    BOOST_TEST_MESSAGE(out);
    BOOST_TEST(out.find("started: 1 reaped, 0 enrolled, 1 records repaired") != std::string::npos);
    BOOST_TEST(!maps.lookup_session(dead_id)->has_value());
    auto records = w.records();
    BOOST_REQUIRE_EQUAL(records.size(), 1u);
    BOOST_TEST(records[0].id == orphan_id);
    BOOST_TEST((records[0].kind == SessionKind::Container));
    BOOST_TEST(records[0].policy == "ops");
    auto still = maps.lookup_session(opening_id);
    BOOST_REQUIRE(still.ok() && still->has_value());
    BOOST_TEST(((*still)->flags & AW_SESSION_REVOKED) == 0u);
    BOOST_TEST(is_cgroup2_dir(opening));
    BOOST_REQUIRE(maps.remove_session(opening_id).ok());
    BOOST_REQUIRE(cgroup_remove_tree(opening).ok());
    // And a second start finds nothing to do.
    out = sh_output(std::string(AUTHWALL_CGROUPD_BIN) + " --config " + w.config().string() + " --once 2>&1");
    BOOST_TEST(out.find("started: 0 reaped, 0 enrolled, 0 records repaired") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
