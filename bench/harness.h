// SPDX-License-Identifier: Apache-2.0
// Shared plumbing of the benchmarks: a throwaway enforcement root and pin
// directory, children placed in a cgroup and a fresh network namespace, and
// the connect() rate probe.
#pragma once

#include "core/host/cgroup.h"
#include "core/policy/config.h"
#include "core/dataplane/datapath.h"
#include "core/dataplane/maps.h"
#include "core/policy/compiler.h"
#include "core/session/record.h"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace authwall::bench {

[[noreturn]] void die(const std::string& what);

// Runs body in a forked child; every value it emits reaches the parent,
// which returns them once the child exits.
std::vector<double> collect_from_child(const std::function<void(const std::function<void(double)>& emit)>& body);

// Runs fn in a child placed in `cgroup` and a fresh netns with lo up; with
// `uid` (not 0), as that user (real and effective), as a user's process is.
double in_child(const std::filesystem::path& cgroup, const std::function<double()>& fn, uid_t uid = 0);

// Parses the common arguments: --quick (returns true into *quick) and
// --help. Returns an exit code to stop with, or -1 to go on.
int parse_bench_args(int argc, char** argv, const char* name, const char* what, bool* quick);

// connect() calls per second to a closed loopback port (refused by the stack
// with a RST after every hook has run).
double connect_rate(int connects);

// A descriptor of the program `name` (e.g. "aw_connect4") the installer
// attached, from its link pinned under pin_dir/links; -1 when none is.
int linked_program(const std::filesystem::path& pin_dir, const std::string& name);

double median(std::vector<double> v);
double percentile(std::vector<double> v, double q); // q in [0, 1]

// Runs `iterations` session open+close cycles (the work pam_authwall.so
// does) in a child, which is the leader that moves in and out; returns the
// latency of each cycle in milliseconds.
std::vector<double> open_close_latencies(const Config& config, int iterations, const std::string& rhost);

// "10.a.b.c tcp p" rules, all distinct; the measured traffic (127.0.0.1 tcp
// and udp) matches the first two.
std::string policy_with_rules(const std::string& name, int rules);

class BenchRoot {
  public:
    // Creates the root cgroup and installs the data plane, its session maps
    // sized for `max_sessions`.
    explicit BenchRoot(uint32_t max_sessions = DatapathOptions{}.max_sessions);
    ~BenchRoot();
    BenchRoot(const BenchRoot&) = delete;
    BenchRoot& operator=(const BenchRoot&) = delete;

    std::filesystem::path cgroup(const std::string& name); // created below the root
    std::filesystem::path plain_cgroup();                  // outside the root: no programs
    void open_session(const std::filesystem::path& cgroup, uint32_t policy_id);
    // Parses, compiles and installs policy TOML; with `index_for`, also
    // publishes the policy index into its run_dir, as the loader does.
    CompiledPolicies install_policy_text(const std::string& toml, const Config* index_for = nullptr);
    // A session as PAM or cgroupd leave it: entry and record (no process).
    uint64_t add_recorded_session(const std::filesystem::path& cgroup, SessionKind kind, uint32_t policy_id,
                                  const std::string& policy, const std::filesystem::path& run_dir);
    PinnedMaps& maps() { return *maps_; }
    const std::filesystem::path& root() const { return root_; }
    const std::filesystem::path& pin_dir() const { return pins_; }
    const CgroupMount& mount() const { return mount_; }

  private:
    CgroupMount mount_;
    std::filesystem::path root_, plain_, pins_;
    std::vector<std::filesystem::path> made_;
    std::filesystem::path run_dir_; // records of open_session
    std::optional<PinnedMaps> maps_;
};

} // namespace authwall::bench
