// Shared plumbing of the benchmarks: a throwaway enforcement root and pin
// directory, children placed in a cgroup and a fresh network namespace, and
// the connect() rate probe.
#pragma once

#include "core/cgroup.h"
#include "core/datapath.h"
#include "core/maps.h"
#include "core/policy_compiler.h"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace authwall::bench {

[[noreturn]] void die(const std::string& what);

// Runs fn in a child placed in `cgroup` and a fresh netns with lo up.
double in_child(const std::filesystem::path& cgroup, const std::function<double()>& fn);

// connect() calls per second to a closed loopback port (refused by the stack
// with a RST after every hook has run).
double connect_rate(int connects);

double median(std::vector<double> v);

// "10.a.b.c tcp p" rules, all distinct; the measured traffic (127.0.0.1 tcp)
// matches the first one.
std::string policy_with_rules(const std::string& name, int rules);

class BenchRoot {
  public:
    BenchRoot(); // creates the root cgroup and installs the data plane
    ~BenchRoot();
    BenchRoot(const BenchRoot&) = delete;
    BenchRoot& operator=(const BenchRoot&) = delete;

    std::filesystem::path cgroup(const std::string& name); // created below the root
    std::filesystem::path plain_cgroup();                   // outside the root: no programs
    void open_session(const std::filesystem::path& cgroup, uint32_t policy_id);
    PinnedMaps& maps() { return *maps_; }
    const std::filesystem::path& root() const { return root_; }
    const std::filesystem::path& pin_dir() const { return pins_; }
    const CgroupMount& mount() const { return mount_; }

  private:
    CgroupMount mount_;
    std::filesystem::path root_, plain_, pins_;
    std::vector<std::filesystem::path> made_;
    std::optional<PinnedMaps> maps_;
};

} // namespace authwall::bench
