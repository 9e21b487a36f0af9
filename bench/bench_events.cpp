// SPDX-License-Identifier: Apache-2.0
// What authwall-loader pays per decision event it drains (issue #17): the
// events it writes now carry who and why (the user and correlation id from
// the session's record, the policy's name, the process, the deciding rule's
// file:line:column and text) beside the raw facts the programs report.
// Side by side in one run, interleaved rounds, medians with the spread:
//   raw      the event without those fields (what it carried before #17:
//            ids, hook, reason, address, port)
//   enriched the event as the loader writes it now
// Both write each event to a JSON event log (event_log; the journal is
// off, so both pay the same file append). Needs no root and no BPF.
#include "bench/harness.h"
#include "core/policy/catalog.h"
#include "core/policy/policy_file.h"
#include "core/session/record.h"
#include "loader/decision_log.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <unistd.h>

using namespace authwall;
using namespace authwall::bench;
namespace fs = std::filesystem;

namespace {

constexpr int kSessions = 50;
constexpr int kPolicies = 10;
constexpr int kRulesPerPolicy = 20;

std::string policies_text()
{
    std::string text;
    for (int p = 1; p <= kPolicies; ++p) {
        text += "[policy.team" + std::to_string(p) + ".egress]\ndefault = \"deny\"\nallow = [";
        for (int r = 0; r < kRulesPerPolicy; ++r)
            text += (r ? ", " : "") + std::string("\"10.") + std::to_string(p) + "." + std::to_string(r) +
                    ".0/24 tcp 443\"";
        text += "]\n";
    }
    return text;
}

// A denial as the programs report it: one of the sessions, a rule or the
// default of its policy, a connecting process.
DecisionEvent event(int i, bool with_comm)
{
    DecisionEvent e;
    e.session_id = 1000 + static_cast<uint64_t>(i % kSessions);
    e.cgroup_id = e.session_id;
    e.pid = 4000 + static_cast<uint32_t>(i % 97);
    e.policy_id = 1 + static_cast<uint32_t>(i % kPolicies);
    e.hook = AW_HOOK_CONNECT4;
    e.reason = i % 3 ? AW_REASON_DEFAULT : AW_REASON_RULE;
    e.rule = i % 3 ? 0 : 1 + static_cast<uint32_t>(i % kRulesPerPolicy);
    e.proto = 6;
    e.family = AF_INET;
    e.port = static_cast<uint16_t>(1 + i % 60000);
    e.address = *IpAddress::parse("192.0.2." + std::to_string(i % 250));
    e.uid = 2000 + static_cast<uint32_t>(i % kSessions);
    e.layer = AW_LAYER_LOGIN;
    e.verdict = AW_EVENT_DENY;
    if (with_comm)
        e.comm = "curl";
    return e;
}

double events_per_second(DecisionLog& log, int events, bool with_comm)
{
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < events; ++i)
        log.write(event(i, with_comm));
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    return events / took.count();
}

} // namespace

int main(int argc, char** argv)
{
    bool quick = false;
    if (int rc = parse_bench_args(argc, argv, "bench_events",
                                  "decision events per second written by the loader, with who and why against the "
                                  "raw event",
                                  &quick);
        rc >= 0)
        return rc;
    int events = quick ? 20000 : 100000, rounds = quick ? 3 : 7;
    spdlog::set_level(spdlog::level::warn); // the event, not a log line on stderr, is measured

    fs::path dir = fs::temp_directory_path() / ("authwall-bench-events-" + std::to_string(getpid()));
    fs::path run_dir = dir / "run";
    fs::create_directories(run_dir / "sessions");
    auto load = parse_policy_text(policies_text(), "/etc/authwall/policies.d/teams.toml");
    if (!load.ok())
        die("the bench's policies do not parse");
    std::map<std::string, uint32_t> ids;
    std::map<uint32_t, std::string> names;
    for (size_t i = 0; i < load.policies.size(); ++i) {
        ids[load.policies[i].name] = static_cast<uint32_t>(i + 1);
        names[static_cast<uint32_t>(i + 1)] = load.policies[i].name;
    }
    for (int s = 0; s < kSessions; ++s) {
        SessionRecord r;
        r.id = 1000 + static_cast<uint64_t>(s);
        r.correlation = std::string(32, 'a');
        r.user = "user" + std::to_string(s);
        r.uid = 2000 + static_cast<uint32_t>(s);
        r.service = "sshd";
        r.policy = names[1 + static_cast<uint32_t>(s % kPolicies)];
        r.cgroup = "/sys/fs/cgroup/user.slice/session-" + std::to_string(s) + ".scope";
        if (!write_record(run_dir, r).ok())
            die("write a session record");
    }

    DecisionLog raw(false, dir / "raw.jsonl", dir / "no-run-dir");
    DecisionLog enriched(false, dir / "enriched.jsonl", run_dir);
    enriched.policies_changed(names, RuleCatalog::build(load.policies, ids, Fallback{}));

    // Warm both up (the enriched one reads the records into its cache).
    events_per_second(raw, 2 * kSessions, false);
    events_per_second(enriched, 2 * kSessions, true);
    std::vector<double> raw_rates, enriched_rates, ratios;
    for (int r = 0; r < rounds; ++r) {
        double a = events_per_second(raw, events, false);
        double b = events_per_second(enriched, events, true);
        raw_rates.push_back(a);
        enriched_rates.push_back(b);
        ratios.push_back(b / a);
        fs::remove(dir / "raw.jsonl");
        fs::remove(dir / "enriched.jsonl");
        std::fprintf(stderr, "round %d/%d done\n", r + 1, rounds);
    }
    auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
    std::printf("bench_events: %d rounds of %d denials, %d sessions, %d policies of %d rules\n", rounds, events,
                kSessions, kPolicies, kRulesPerPolicy);
    std::printf("%-44s %14s\n", "", "events/s");
    std::printf("%-44s %14.0f\n", "raw (ids, hook, reason, address, port)", median(raw_rates));
    std::printf("%-44s %14.0f\n", "enriched (user, policy, process, rule)", median(enriched_rates));
    std::printf("enriched / raw: %.3f (%.3f-%.3f)\n", median(ratios), *lo, *hi);
    fs::remove_all(dir);
    return 0;
}
